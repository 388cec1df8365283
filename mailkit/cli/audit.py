"""``mailkit audit``: users from a profile, a file or a database, audited; findings out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from mailkit.cli.common import (
    EXIT_OK,
    SECRETS_CHOICES,
    SECRETS_HELP,
    UsageError,
    describe,
    notice,
    open_store,
    parse_mapping,
    profile_spec,
    secret_store,
)

_SEVERITY_RANK = {"critical": 2, "warning": 1, "info": 0}


#: Why missing-secret did not run for users from a file or a database, and what to do.
_SECRETS_NOT_IN_SOURCE = (
    "the users come from {origin}, which holds no passwords",
    "audit the profile itself (mailkit audit --profile NAME, without --csv, --excel or --sql) "
    "to check its users against its secret store",
)


#: The flags of the domain check, as its errors name them.
_DNS_NAMES = {"dns_server": "--dns-server", "timeout": "--dns-timeout"}


def _dns_timeout(args: argparse.Namespace) -> float:
    return 3.0 if args.dns_timeout is None else float(args.dns_timeout)


def _accounts_with_secret(
    choice: str, store: Any, frame: Any
) -> tuple[frozenset[str] | None, tuple[str, str] | None]:
    """Whose password the profile's secret store holds; or None and why it could not be told.

    A wrong passphrase or a damaged file is an error (exit 1), never "not checked".
    """
    from mailkit.errors import SecretFileCorruptError, SecretStoreError, WrongPassphraseError
    from mailkit.profiles import locate_profile
    from mailkit.secrets import accounts_with_secret

    if choice == "none":
        return None, ("--secrets none was given", "leave out --secrets none to check passwords")
    codes = [str(code) for code in frame["user_code"].dropna()]
    try:
        secrets = secret_store(choice, locate_profile(store.path), check=True)
        assert secrets is not None
        return accounts_with_secret(secrets, store.profile_name, ["org", *codes]), None
    except (WrongPassphraseError, SecretFileCorruptError):
        raise
    except SecretStoreError as exc:
        return None, (
            f"the secret store cannot be read ({describe(exc)})",
            "make the secret store readable (see the reason) and audit again",
        )


def _with_secrets_note(findings: Any, not_checked: tuple[str, str]) -> Any:
    """One info row saying missing-secret did not run and why, in every output format."""
    import pandas as pd

    why, fix = not_checked
    note = pd.DataFrame(
        [
            {
                "user_code": "",
                "rule": "secrets-not-checked",
                "severity": "info",
                "message": f"passwords were not checked (missing-secret did not run): {why}",
                "fix": fix,
            }
        ]
    )
    return pd.concat([findings, note[list(findings.columns)]], ignore_index=True)


def cmd_audit(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit audit``: load users from one source, audit them, print or write the findings."""
    from mailkit.audit import audit
    from mailkit.audit.report import export
    from mailkit.audit.sources import users_from_file, users_from_sql, users_from_store
    from mailkit.settings import OrgSettings

    if args.query and not args.sql:
        raise UsageError("--query goes with --sql URL")
    if args.sql and not args.query:
        raise UsageError("--sql needs --query, e.g. --query 'SELECT * FROM users'")
    external = bool(args.csv or args.excel or args.sql)
    spec = args.profile or (None if external else profile_spec(args))
    if not (external or spec):
        raise UsageError("say where the users are: --profile DB, --csv, --excel or --sql")
    if args.format == "xlsx" and not args.output:
        raise UsageError("--format xlsx writes a file: add -o OUT.xlsx")
    if not args.check_domains and (args.dns_server is not None or args.dns_timeout is not None):
        given = "--dns-server" if args.dns_server is not None else "--dns-timeout"
        raise UsageError(f"{given} goes with --check-domains; add --check-domains")
    if args.check_domains:
        from mailkit.domainhealth.check import dns_client

        # Refused before any user is read: a bad server or timeout names its flag.
        dns_client(args.dns_server, _dns_timeout(args), _DNS_NAMES)
    mapping = parse_mapping(args.map)
    store = open_store(spec) if spec else None
    try:
        org = store.get_org() if store is not None else OrgSettings()
        history = store.history_frame() if store is not None else None
        if args.csv or args.excel:
            source = users_from_file(Path(args.csv or args.excel), mapping)
            if source.encoding_note:  # a guessed encoding is said, whatever the format
                notice(f"note: {source.encoding_note}")
        elif args.sql:
            source = users_from_sql(args.sql, args.query, mapping)
        else:
            assert store is not None
            source = users_from_store(store)
        if store is not None and not external:
            accounts, not_checked = _accounts_with_secret(args.secrets, store, source.frame)
        else:
            why, fix = _SECRETS_NOT_IN_SOURCE
            accounts, not_checked = None, (why.format(origin=source.origin), fix)
        domains = None
        if args.check_domains:
            from mailkit.audit.domains import check_user_domains

            domains = check_user_domains(
                org,
                source.frame,
                dns_server=args.dns_server,
                timeout=_dns_timeout(args),
                names=_DNS_NAMES,
            )
        found = audit(
            org,
            source.frame,
            accounts_with_secret=accounts,
            history=history,
            domains=domains,
        )
        # Shown in every format; counted and judged (--fail-on) without the note row.
        findings = found if not_checked is None else _with_secrets_note(found, not_checked)
    finally:
        if store is not None:
            store.close()
    if args.output:
        suffix = {"table": ".csv"}.get(args.format, f".{args.format}")
        target = Path(args.output)
        export(findings, target if target.suffix else target.with_suffix(suffix))
    elif args.format == "json" or args.json:
        records = findings.astype(object).where(findings.notna(), None).to_dict(orient="records")
        json.dump(records, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif args.format == "csv":
        from mailkit.audit.report import write_csv

        write_csv(findings, out)
    elif args.format == "html":
        from mailkit.audit.report import to_html

        out.write(to_html(findings))
    else:
        from mailkit.audit.report import affected_users

        # Counted as the summary, the charts and the dashboard count them.
        out.write(
            f"{len(source.frame)} user(s) from {source.origin}: {len(found)} finding(s) for "
            f"{affected_users(found)} user(s)\n"
        )
        if not_checked is not None:
            out.write(f"Passwords were not checked: {not_checked[0]}; {not_checked[1]}.\n")
        if not findings.empty:
            out.write(findings.to_string(index=False, max_colwidth=70) + "\n")
    if args.fail_on:
        worst = found["severity"].map(_SEVERITY_RANK).max() if not found.empty else -1
        if worst >= _SEVERITY_RANK[args.fail_on]:
            return 1
    return EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_audit)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", metavar="FILE", help="users from a CSV export")
    source.add_argument("--excel", metavar="FILE", help="users from an Excel export")
    source.add_argument("--sql", metavar="URL", help="users from a database (SQLAlchemy URL)")
    parser.add_argument("--query", help="the SQL query that returns the users (with --sql)")
    parser.add_argument(
        "--profile", metavar="DB", help="the org settings and history (and the users, alone)"
    )
    parser.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="map an application's column to a users-table field (repeatable)",
    )
    parser.add_argument(
        "--format", choices=["table", "csv", "json", "xlsx", "html"], default="table"
    )
    parser.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    parser.add_argument(
        "--secrets",
        choices=SECRETS_CHOICES,
        default="auto",
        help="where missing-secret looks for passwords (with --profile as the users' source): "
        + SECRETS_HELP,
    )
    parser.add_argument(
        "--fail-on",
        choices=["critical", "warning"],
        help="exit 1 when findings at or above this severity exist",
    )
    parser.add_argument(
        "--check-domains",
        action="store_true",
        help="also check every user's From domain over DNS (SPF for their server, DMARC, "
        "DKIM, MX): each domain once, many at a time",
    )
    parser.add_argument(
        "--dns-server",
        metavar="HOST:PORT",
        help="with --check-domains: ask this DNS server (default: $MAILKIT_DNS_SERVER, else "
        "the system's resolvers)",
    )
    parser.add_argument(
        "--dns-timeout",
        type=float,
        metavar="S",
        help="with --check-domains: seconds each DNS lookup may take (default 3)",
    )
