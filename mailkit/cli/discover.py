"""``mailkit discover EMAIL``: the submission settings for an address, ranked, with sources.

Exit codes: 0 candidates found (with ``--probe``: and the probe confirmed a port on one of
them); 1 bad arguments; 2 nothing found (with ``--probe``: no candidate's server answered).
"""

from __future__ import annotations

import argparse
from typing import TextIO

from mailkit.cli.common import EXIT_OK, UsageError, add_dns_server, report

#: Nothing found (or, with ``--probe``, nothing confirmed): a script can tell it from success.
EXIT_NOTHING_FOUND = 2


def _check(args: argparse.Namespace) -> None:
    """Refuse bad flags before any lookup, in the command line's own words."""
    from mailkit.discovery.candidates import split_address
    from mailkit.dnslookup import parse_dns_server

    try:
        split_address(args.email, field_name="EMAIL")
        if args.dns_server is not None:
            parse_dns_server(args.dns_server, flag="--dns-server")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: give a positive number of seconds")
    if args.probe_timeout is not None and not args.probe_timeout > 0:
        raise UsageError(
            f"--probe-timeout {args.probe_timeout:g}: give a positive number of seconds"
        )
    if args.ca_file is not None:
        from mailkit.senders.tls import ca_file_problem

        problem = ca_file_problem(args.ca_file)
        if problem is not None:
            raise UsageError(
                f"--ca-file {args.ca_file} {problem}; give the PEM file of the CA to trust, "
                "or leave --ca-file out to trust the system's CA store"
            )


def cmd_discover(args: argparse.Namespace, out: TextIO) -> int:
    """Run discovery (and the probe with ``--probe``) and print the report."""
    _check(args)
    from mailkit.discovery.run import discover, discover_and_probe

    options = {
        "dns_server": args.dns_server,
        "timeout": args.timeout,
        "ca_file": args.ca_file,
    }
    if not args.probe:
        found = discover(args.email, **options)
        report(args, out, found.as_dict(), found.to_text())
        return EXIT_OK if found.candidates else EXIT_NOTHING_FOUND
    found, probes, proposal = discover_and_probe(
        args.email, probe_timeout=args.probe_timeout or 10.0, **options
    )
    data = found.as_dict()
    data["probes"] = {host: probe.as_dict() for host, probe in probes.items()}
    data["proposal"] = proposal.as_dict() if proposal is not None else None
    lines = [found.to_text(), ""]
    for host, probe in probes.items():
        verdict = probe.verdict
        if verdict.port is None:
            lines.append(f"Probe of {host}: no usable port")
        else:
            security = verdict.security.value if verdict.security else "?"
            lines.append(f"Probe of {host}: port {verdict.port}, {security}")
        reasons, warnings = verdict.render("cli")  # in the command line's words (--ca-file)
        lines.extend(f"  {reason}" for reason in reasons)
        lines.extend(f"  warning: {warning}" for warning in warnings)
    confirmed = proposal is not None and proposal.probe is not None
    if proposal is not None:
        lines += ["", "Proposed settings (and where each came from):"]
        for name, value in proposal.settings().items():
            shown = getattr(value, "value", value)
            origin = proposal.provenance.get(name, "")
            lines.append(f"  {name:<9} {shown!s:<32} {origin}")
    report(args, out, data, "\n".join(lines))
    return EXIT_OK if confirmed else EXIT_NOTHING_FOUND


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_discover)
    parser.add_argument("email", metavar="EMAIL", help="the address to find settings for")
    add_dns_server(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds for the whole discovery; every source runs at once (default 5)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="then probe the best candidates' servers and propose settings from the verdict",
    )
    parser.add_argument(
        "--probe-timeout", type=float, metavar="S", help="seconds per probed port (default 10)"
    )
    parser.add_argument(
        "--ca-file",
        metavar="FILE",
        help="trust this CA (PEM) for autoconfig servers and the probe (a private server)",
    )
