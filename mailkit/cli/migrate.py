"""``mailkit migrate``: legacy settings files into a profile, with a report of every change."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from mailkit.cli.common import (
    EXIT_OK,
    SECRETS_CHOICES,
    SECRETS_HELP,
    open_store,
    secret_store,
)


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    from mailkit.legacy import migrate, report_text

    where = _migration_target(args)
    # Lazy: only a legacy file that holds a password needs the secret store to be usable.
    secrets = secret_store(args.secrets, where, check=True)
    profile = where.name if where is not None else "default"
    migration = migrate(
        Path(args.legacy_file), secrets=secrets, profile=profile, drop_password=args.drop_password
    )
    saved_to = None
    if args.profile and not args.dry_run:
        with open_store(args.profile, create=True) as store:
            store.set_org(migration.org)
            saved_to = str(store.path)
    report = migration.report.astype(object).where(migration.report.notna(), None)
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in row.items()} for row in report.to_dict(orient="records")
    ]
    if args.json:
        json.dump(
            {
                "org": migration.org.model_dump(mode="json", exclude_none=True),
                "report": rows,
                "moved_secrets": list(migration.moved_secrets),
                "needs_review": list(migration.warnings),
                "saved_to": saved_to,
            },
            out,
            ensure_ascii=False,
            indent=2,
        )
        out.write("\n")
    else:
        out.write(report_text(migration) + "\n")
        if saved_to:
            out.write(f"\nSaved the migrated org settings to {saved_to}.\n")
        elif not args.profile:
            out.write("\nNothing saved: pass --profile DB to save the migrated settings.\n")
    return EXIT_OK


def _migration_target(args: argparse.Namespace) -> Any:
    """Where ``migrate --profile`` saves, with the name its secrets are filed under."""
    from dataclasses import replace

    from mailkit.profiles import locate_profile, spec_text

    if not args.profile or args.dry_run:
        return None
    where = locate_profile(args.profile)
    if where.exists:
        with open_store(args.profile) as store:  # an existing file keeps its recorded name
            return replace(where, name=store.profile_name)
    if spec_text(where) == where.name:
        # The data folder, so that a moved password can be filed beside the new profile.
        where.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return where


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    parser.set_defaults(func=cmd_migrate)
    parser.add_argument("legacy_file", metavar="LEGACY_FILE")
    parser.add_argument("--profile", metavar="DB", help="save the migrated org settings here")
    parser.add_argument("--dry-run", action="store_true", help="report only, save nothing")
    parser.add_argument(
        "--secrets",
        choices=SECRETS_CHOICES,
        default="auto",
        help="where a password found in the legacy file goes: " + SECRETS_HELP,
    )
    parser.add_argument(
        "--drop-password",
        action="store_true",
        help="leave a legacy password behind (enter it again later) instead of moving it",
    )
