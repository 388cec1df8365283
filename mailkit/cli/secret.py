"""``mailkit secret set|list|delete``: a profile's passwords in its secret store, never shown."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from mailkit.cli.common import (
    EXIT_OK,
    PROFILE_HELP,
    SECRETS_CHOICES,
    SECRETS_HELP,
    Parser,
    UsageError,
    add_command,
    add_password_source,
    notice,
    open_store,
    profile_spec,
    read_password,
    report,
    secret_store,
)


def _secret_target(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(the profile's location, its name, the account) for ``secret set/delete --user``."""
    from mailkit.profiles import locate_profile

    with open_store(profile_spec(args)) as store:
        account = "org"
        if args.user:
            user = store.get_user(args.user)
            if user is None:
                raise UsageError(
                    f"no user {args.user!r} in the profile at {store.path}; check --user (the "
                    "user code), or import the user first (mailkit users import)"
                )
            account = user.user_code
            _note_shared_login(store.get_org(), user)
        return locate_profile(store.path), store.profile_name, account


def _note_shared_login(org: Any, user: Any) -> None:
    """A user who signs in with the org's account sends with the org's password, not this."""
    from mailkit.testsend import credential_account

    if credential_account(org, user) != user.user_code:
        notice(
            f"note: user {user.user_code} signs in with the organisation's account today, so "
            "sends use the organisation's password until the user has a user name of their own"
        )


def cmd_secret_set(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit secret set``: store the org's or a user's password in the profile's store."""
    from mailkit.secrets import secret_key

    if not (args.password_env or args.password_stdin):
        raise UsageError(
            "say where the password comes from: --password-stdin or --password-env NAME "
            "(never as an argument: shell history and process lists keep those)"
        )
    where, profile, account = _secret_target(args)
    password = read_password(args)
    store = secret_store(args.secrets, where, check=True, lazy=False)
    if store is None:
        raise UsageError("--secrets none stores nothing; choose a secret store")
    key = secret_key(profile, account, args.kind)
    store.set(key, password)
    whose = "the organisation's" if account == "org" else f"user {account}'s"
    report(
        args,
        out,
        {"stored": key, "store": store.name, "store_kind": store.kind},
        f"Stored {whose} {args.kind} as {key} in {store.name}.",
    )
    return EXIT_OK


def cmd_secret_delete(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit secret delete``: forget the org's or a user's secret."""
    from mailkit.secrets import secret_key

    where, profile, account = _secret_target(args)
    store = secret_store(args.secrets, where, check=True, lazy=False)
    if store is None:
        raise UsageError("--secrets none holds nothing; choose a secret store")
    key = secret_key(profile, account, args.kind)
    existed = store.get(key) is not None
    store.delete(key)
    text = f"Deleted {key} from {store.name}." if existed else f"{key} was not in {store.name}."
    report(args, out, {"deleted": key if existed else None, "store": store.name}, text)
    return EXIT_OK


def cmd_secret_list(args: argparse.Namespace, out: TextIO) -> int:
    """``mailkit secret list``: which store is in use, and the names of its keys (no values)."""
    from mailkit.profiles import locate_profile
    from mailkit.secrets import secret_key

    with open_store(profile_spec(args)) as profile_store:
        where = locate_profile(profile_store.path)
        profile = profile_store.profile_name
        accounts = ["org", *(u.user_code for u in profile_store.users())]
    store = secret_store(args.secrets, where, check=True, lazy=False)
    if store is None:
        raise UsageError("--secrets none holds nothing; choose a secret store")
    prefix = secret_key(profile, "org").rsplit(":", 2)[0] + ":"
    listed = store.keys()
    if listed is None:  # the OS keyring: ask for every key this profile can have
        from mailkit.oauth import google, microsoft

        kinds = ("password", google.TOKEN_KIND, google.CLIENT_SECRET_KIND, microsoft.TOKEN_KIND)
        listed = []
        for account in accounts:
            for kind in kinds:
                try:
                    key = secret_key(profile, account, kind)
                except ValueError:
                    continue
                if store.get(key) is not None:
                    listed.append(key)
    keys = sorted(k for k in listed if k.startswith(prefix))
    if args.json:
        json.dump(
            {"store": store.name, "store_kind": store.kind, "profile": profile, "keys": keys},
            out,
            ensure_ascii=False,
        )
        out.write("\n")
    else:
        out.write(f"Secret store: {store.name}\n")
        out.write(f"{len(keys)} secret(s) of profile {profile!r} (names only):\n")
        out.writelines(f"  {key}\n" for key in keys)
    return EXIT_OK


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to its ``parser`` (made by mailkit.cli from COMMANDS)."""
    secret_sub = parser.add_subparsers(dest="action", required=True, parser_class=Parser)
    s_set = add_command(
        secret_sub, "set", cmd_secret_set, "Store the org's (or --user's) password."
    )
    s_list = add_command(
        secret_sub, "list", cmd_secret_list, "Show the secret store in use and its key names."
    )
    s_delete = add_command(
        secret_sub, "delete", cmd_secret_delete, "Forget the org's (or --user's) password."
    )
    for sub in (s_set, s_list, s_delete):
        sub.add_argument("--profile", metavar="DB", help=PROFILE_HELP)
        sub.add_argument("--secrets", choices=SECRETS_CHOICES, default="auto", help=SECRETS_HELP)
    for sub in (s_set, s_delete):
        sub.add_argument(
            "--user", metavar="CODE", help="a user's own password (default: the org's)"
        )
        sub.add_argument(
            "--kind",
            default="password",
            help="which secret of the account (default: password)",
        )
    add_password_source(s_set)
