"""What every mailkit command shares: the parser class, exit codes, profiles, secret stores,
password sources and output. Only the standard library and mailkit.errors at the top, so a
command module that imports this costs nothing more."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, TextIO

# Only the standard library and mailkit.errors at the top: `mailkit --help` and a usage error
# must start in a blink, so each command imports what it needs (pandas, the keyring, pydantic,
# aiosmtplib) when it runs.
from mailkit.errors import (
    MailkitError,
    ProfileNotFoundError,
    SecretsLockedError,
)

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_CONNECT = 2
EXIT_GREETING = 3
EXIT_TLS = 4
EXIT_AUTH = 5
EXIT_SENDER = 6
EXIT_RECIPIENT = 7
EXIT_DATA = 8
EXIT_OUTCOME_UNKNOWN = 9
#: The server accepted the test message, and the delivery check found it in spam, bounced, or
#: could not search the mailbox (``mailkit test --verify-imap``).
EXIT_NOT_DELIVERED = 10


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors honour ``--json`` and our exit code for bad input."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class UsageError(MailkitError):
    pass


# What a command did besides its output (e.g. "created profile ..."); main() prints it to stderr.
NOTICES: ContextVar[list[str] | None] = ContextVar("mailkit_cli_notices", default=None)


def notice(text: str) -> None:
    notices = NOTICES.get()
    if notices is not None:
        notices.append(text)


def open_store(spec: str | None, *, create: bool = False) -> Any:
    """``--profile`` (or ``MAILKIT_PROFILE``): a profile name or a file path.

    Reading commands never create a profile; writing ones pass ``create`` and say so out loud
    when they did.
    """
    from mailkit.profiles import PROFILE_ENV, locate_profile, open_profile, spec_text

    where = locate_profile(spec)
    if where.exists:
        return open_profile(where)
    if not create:
        given = "--profile" if spec is not None else f"--profile (or {PROFILE_ENV})"
        raise ProfileNotFoundError(
            f"there is no mailkit profile at {where.path}; nothing was created. Check {given}, "
            f"or create the profile first: mailkit profile init {spec_text(where)}"
        )
    store = open_profile(where, create=True)
    notice(f"created profile {store.profile_name!r} at {store.path}")
    return store


def profile_spec(args: argparse.Namespace) -> str | None:
    """``--profile``, else ``MAILKIT_PROFILE``; None when neither names one."""
    from mailkit.profiles import PROFILE_ENV

    spec: str | None = getattr(args, "profile", None)
    return spec or os.environ.get(PROFILE_ENV, "").strip() or None


SECRETS_CHOICES = ("auto", "keyring", "file", "memory", "env", "none")
SECRETS_HELP = (
    "auto (default): the OS keyring where one exists, else the encrypted file beside the "
    "profile (<profile>.secrets, passphrase from MAILKIT_SECRETS_PASSPHRASE or a prompt); "
    "keyring, file, memory, env (MAILKIT_SECRET_* variables) or none"
)


def secret_store(choice: str, where: Any, *, check: bool = False, lazy: bool = True) -> Any:
    """The store ``--secrets`` names, for the profile at ``where`` (a ProfileLocation or None).

    The OS keyring is opened lazily, so a command that meets no secret does not need one. With
    ``check``, an encrypted file that exists is opened at once: a wrong passphrase or a damaged
    file stops the command (exit 1) instead of passing for "no password stored".
    """
    from mailkit.secrets import FileSecretStore, LazySecretStore, keyring_available

    if choice == "none":
        return None
    path = where.secrets_path if where is not None else None
    if choice == "file" or (choice == "auto" and path is not None and not keyring_available()):
        if path is None:
            raise UsageError(
                "--secrets file keeps secrets in an encrypted file beside a profile; "
                "add --profile NAME"
            )
        store = FileSecretStore(path, prompt=True)
        if check and store.exists:
            store.keys()  # reads and decrypts: wrong passphrase / damaged file -> exit 1
        return store
    from mailkit.secrets import secret_store_from_name

    if not lazy:
        return secret_store_from_name(choice)
    return LazySecretStore(lambda: secret_store_from_name(choice))


def add_dns_server(parser: argparse.ArgumentParser) -> None:
    """``--dns-server HOST:PORT``: the one DNS server a command's every lookup asks."""
    parser.add_argument(
        "--dns-server",
        metavar="HOST:PORT",
        help="ask this DNS server for every lookup (default: $MAILKIT_DNS_SERVER, else the "
        "system's resolvers)",
    )


def add_password_source(parser: argparse.ArgumentParser) -> None:
    """``--password-env NAME`` or ``--password-stdin``: never the password itself."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-env", metavar="NAME", help="read the password from this environment variable"
    )
    source.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )


def read_password(args: argparse.Namespace) -> Any:
    from mailkit.secret import Secret

    if args.password_env:
        value = os.environ.get(args.password_env, "")
        if not value:
            raise UsageError(
                f"the environment variable {args.password_env} is not set or empty; export it "
                "first, or use --password-stdin"
            )
        return Secret(value)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError("no password on standard input; pipe it in, e.g. from a vault CLI")
    return Secret(line)


def report(args: argparse.Namespace, out: TextIO, data: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(data, out, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(text + "\n")


def parse_mapping(pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise UsageError(f"--map {pair!r} is not COLUMN=FIELD; write e.g. --map 'E-mail=email'")
        mapping[source.strip()] = target.strip()
    return mapping


def describe(exc: BaseException) -> str:
    if isinstance(exc, SecretsLockedError) and exc.path:
        from mailkit.secrets import PASSPHRASE_ENV

        return (
            f"the encrypted secret store {exc.path} is locked: set {PASSPHRASE_ENV} to its "
            "passphrase, or run the command in a terminal to be asked for it (or choose "
            "another store with --secrets)"
        )
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file; check the path"
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied; check the file's permissions"
    if isinstance(exc, OSError) and not isinstance(exc, MailkitError):
        return f"{getattr(exc, 'filename', None) or 'file'}: {exc.strerror or exc}"
    return str(exc)


PROFILE_HELP = (
    "profile name (kept in your data folder) or file path (.sqlite); default: "
    "$MAILKIT_PROFILE, else 'default'"
)


def add_command(
    sub: Any, name: str, func: Callable[..., int] | None, help_text: str
) -> argparse.ArgumentParser:
    """A (sub)command; groups such as ``users`` have no function of their own."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    if func is not None:
        p.set_defaults(func=func)
    p.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print machine-readable JSON",
    )
    return p
