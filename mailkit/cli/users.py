"""``mailkit users import|export``: the users table to and from CSV or Excel."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from mailkit.cli.common import (
    EXIT_OK,
    PROFILE_HELP,
    Parser,
    add_command,
    notice,
    open_store,
    parse_mapping,
    report,
)


def cmd_users_import(args: argparse.Namespace, out: TextIO) -> int:
    from mailkit.userfiles import import_users
    from mailkit.users import read_table

    mapping = parse_mapping(args.map)
    # Read first: a file that cannot be read must not create (or even open) a profile.
    encoding_note = read_table(Path(args.file)).attrs.get("encoding_note", "")
    with open_store(args.profile, create=True) as store:
        count = import_users(store, Path(args.file), mapping=mapping)
        path = str(store.path)
    if encoding_note:
        notice(f"note: {encoding_note}")
    report(
        args, out, {"imported": count, "profile": path}, f"Imported {count} user(s) into {path}."
    )
    return EXIT_OK


def cmd_users_export(args: argparse.Namespace, out: TextIO) -> int:
    from mailkit.userfiles import export_users

    with open_store(args.profile) as store:
        count = export_users(store, Path(args.file))
    report(
        args,
        out,
        {"exported": count, "file": args.file},
        f"Exported {count} user(s) to {args.file}.",
    )
    return EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    users_sub = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    u_import = add_command(
        users_sub, "import", cmd_users_import, "Import users from CSV or Excel (all rows or none)."
    )
    u_import.add_argument("file", metavar="FILE")
    u_import.add_argument("--profile", metavar="DB", help=PROFILE_HELP)
    u_import.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="map an application's column to a users-table field (repeatable)",
    )
    u_export = add_command(users_sub, "export", cmd_users_export, "Export users to CSV or Excel.")
    u_export.add_argument("file", metavar="FILE")
    u_export.add_argument("--profile", metavar="DB", help=PROFILE_HELP)
