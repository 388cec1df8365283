"""``mailkit profile init|import|export``: create a profile, or move one as TOML."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from mailkit.cli.common import (
    EXIT_OK,
    PROFILE_HELP,
    Parser,
    add_command,
    open_store,
    report,
)
from mailkit.errors import (
    ProfileExistsError,
    ProfileNotFoundError,
)


def cmd_profile_init(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit profile init NAME|PATH``: create an empty profile, never over an existing one."""
    from mailkit.profiles import init_profile, locate_profile

    where = locate_profile(args.name)
    if where.exists:
        raise ProfileExistsError(
            f"a mailkit profile already exists at {where.path}; it was left as it is. Use it "
            "with --profile, or choose another name"
        )
    with init_profile(where) as store:
        path, name = store.path, store.profile_name
    report(
        args,
        out,
        {"created": str(path), "profile": name, "secrets_file": str(where.secrets_path)},
        f"Created profile {name!r} at {path}.",
    )
    return EXIT_OK


def cmd_profile_import(args: argparse.Namespace, out: TextIO) -> int:
    """Replace a profile with a TOML export: checked first, shown, backed up, then written."""
    from mailkit.settings import Profile
    from mailkit.store import profile_changes, profile_from_file

    # Parsed before any profile is opened: a bad file neither creates nor touches one.
    imported = profile_from_file(Path(args.file))
    if args.dry_run:
        try:
            store = open_store(args.profile)
        except ProfileNotFoundError:
            changes = profile_changes(Profile(), imported)
            path = "(a new profile)"
        else:
            with store:
                changes = store.import_toml(Path(args.file), dry_run=True).changes
                path = str(store.path)
        data = {"dry_run": True, "profile": path, "changes": changes.as_dict(), "backup": None}
        text = f"Dry run: importing {args.file} into {path} would change:\n{changes.to_text()}"
        report(args, out, data, text + "\nNothing was changed.")
        return EXIT_OK
    with open_store(args.profile, create=True) as store:
        result = store.import_profile(imported)
        path = str(store.path)
    backup = str(result.backup) if result.backup else None
    data = {
        "dry_run": False,
        "profile": path,
        "users": len(imported.users),
        "changes": result.changes.as_dict(),
        "backup": backup,
    }
    if not result.applied:
        text = f"Nothing to import: {args.file} holds the same org and users as {path}."
    else:
        text = (
            f"Imported the org and {len(imported.users)} user(s) from {args.file} into {path}."
            f"\n{result.changes.to_text()}"
        )
        if backup:
            text += (
                f"\nThe profile as it was before is saved in {backup}; to go back, import its "
                f"export or use it as the profile (--profile {backup})."
            )
    report(args, out, data, text)
    return EXIT_OK


def cmd_profile_export(args: argparse.Namespace, out: TextIO) -> int:
    with open_store(args.profile) as store:
        store.export_toml(Path(args.file))
        users = len(store.users())
    message = f"Exported the org and {users} user(s) to {args.file} (secrets are never exported)."
    report(args, out, {"users": users, "file": args.file}, message)
    return EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    prof_sub = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    p_import = add_command(
        prof_sub,
        "import",
        cmd_profile_import,
        "Replace the profile with a TOML file's org and users.",
    )
    p_import.add_argument("file", metavar="FILE.toml")
    p_import.add_argument("--profile", metavar="DB", help=PROFILE_HELP)
    p_import.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the import would change (org fields, users added, removed, changed) "
        "and change nothing",
    )
    p_export = add_command(
        prof_sub, "export", cmd_profile_export, "Write the profile (secrets excluded) to TOML."
    )
    p_export.add_argument("file", metavar="FILE.toml")
    p_export.add_argument("--profile", metavar="DB", help=PROFILE_HELP)
    p_init = add_command(
        prof_sub,
        "init",
        cmd_profile_init,
        "Create an empty profile: a NAME lives in your data folder, a PATH where you say; "
        "an existing profile is never overwritten.",
    )
    p_init.add_argument("name", metavar="NAME|PATH")
