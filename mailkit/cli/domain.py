"""``mailkit domain DOMAIN``: what receivers will think of mail From the domain.

Exit codes, as ``mailkit audit``'s: 0 when the check ran, whatever it found (the findings are
the output); 1 for bad arguments, or with ``--fail-on SEVERITY`` when a finding at or above it
exists. A DNS server that does not answer is a ``dns-lookup-failed`` finding (a warning), not
an error: the records that did answer are still judged.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from mailkit.cli.common import EXIT_OK, add_dns_server, report

#: The command line's words for the check's arguments (errors name these).
NAMES = {
    "domain": "DOMAIN",
    "host": "--host",
    "provider": "--provider",
    "selectors": "--dkim-selector",
    "dns_server": "--dns-server",
    "timeout": "--timeout",
}
_RANK = {"critical": 2, "warning": 1, "info": 0}


def cmd_domain(args: argparse.Namespace, out: TextIO) -> int:
    """Check the domain and print the report (a table, or JSON with ``--json``)."""
    from mailkit.domainhealth.check import check_query, dns_client, domain_query
    from mailkit.runner import run_sync

    query = domain_query(
        args.domain,
        host=args.host,
        provider=args.provider,
        selectors=args.dkim_selector or (),
        names=NAMES,
    )
    client = dns_client(args.dns_server, args.timeout, NAMES)
    health = run_sync(check_query(query, client))
    lines = [
        f"{health.domain}: "
        + ("healthy" if health.ok else f"{len(health.findings)} finding(s)")
        + (f" (sending server {health.host})" if health.host else "")
        + (f" (provider {health.provider})" if health.provider else ""),
        "",
    ]
    rows = health.summary_rows()
    width = max(len(check) for check, _s, _d in rows)
    lines += [f"  {check:<{width}}  {status:<8}  {detail}" for check, status, detail in rows]
    for finding in health.findings:
        lines += [
            "",
            f"{finding.severity.upper()} {finding.rule}: {finding.message}",
            f"  Fix: {finding.fix}",
        ]
    report(args, out, health.to_dict(), "\n".join(lines))
    if args.fail_on:
        worst = max((_RANK[f.severity] for f in health.findings), default=-1)
        if worst >= _RANK[args.fail_on]:
            return 1
    return EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_domain)
    parser.add_argument(
        "domain", metavar="DOMAIN", help="the From domain (or a From address) to check"
    )
    parser.add_argument(
        "--host",
        metavar="SMTP_HOST",
        help="the server that sends the mail: SPF must authorise its addresses (a provider's "
        "host, e.g. smtp.office365.com, is checked by the provider's published include)",
    )
    parser.add_argument(
        "--provider",
        metavar="ID",
        help="the provider that sends, when there is no host (microsoft365, google_workspace, "
        "...): its SPF include and DKIM selectors are expected",
    )
    parser.add_argument(
        "--dkim-selector",
        action="append",
        metavar="SELECTOR",
        help="a DKIM selector the server signs with (repeatable); without one, the provider's "
        "and then common selectors are tried",
    )
    add_dns_server(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        metavar="S",
        help="seconds each DNS lookup may take (default 3)",
    )
    parser.add_argument(
        "--fail-on",
        choices=["critical", "warning"],
        help="exit 1 when findings at or above this severity exist",
    )
