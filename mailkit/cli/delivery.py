"""``mailkit test --verify-imap ...``: the delivery check's flags, read into a VerifySpec.

Kept apart from :mod:`mailkit.cli.test` so the test command only gains a few lines, and so a
test without a delivery check never imports the delivery check's values. Every refusal names
the flag and says what to give instead.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from mailkit.cli.common import UsageError

if TYPE_CHECKING:
    from mailkit.delivery import MailboxSpec, VerifySpec

__all__ = ["add_verify_arguments", "verify_spec"]

#: The most a delivery check may wait; real delays beyond this are a queue to look at.
MAX_VERIFY_TIMEOUT = 3600.0


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "delivery check",
        "after the server accepted the message, look for it in the recipient's mailbox (inbox, "
        "then spam) and report where it landed, its Received chain, Authentication-Results and "
        "spam headers, or the bounce that came back",
    )
    group.add_argument(
        "--verify-imap",
        metavar="imaps://USER@HOST[:PORT]",
        help="the recipient's mailbox over IMAPS (the user name may contain @)",
    )
    group.add_argument(
        "--verify-password-env",
        metavar="NAME",
        help="environment variable holding that mailbox's password",
    )
    group.add_argument(
        "--verify-api",
        choices=("gmail", "graph"),
        help="search the mailbox through the Gmail API or Microsoft Graph with the stored OAuth "
        "consent (it must include read access: gmail.readonly / Mail.Read)",
    )
    group.add_argument(
        "--verify-sender-imap",
        metavar="imaps://USER@HOST[:PORT]",
        help="the sender's mailbox, searched for a bounce (default: the recipient's mailbox "
        "when it is the sender's own)",
    )
    group.add_argument(
        "--verify-sender-password-env",
        metavar="NAME",
        help="environment variable with the sender mailbox's password (default: "
        "--verify-password-env)",
    )
    group.add_argument(
        "--verify-timeout",
        type=float,
        metavar="S",
        help="seconds to keep looking for the message (default 120)",
    )


def verify_spec(args: argparse.Namespace, ca_file: str | None) -> VerifySpec | None:
    """The delivery check the flags ask for, or None without ``--verify-imap``/``--verify-api``.

    ``ca_file`` (``--ca-file`` or the profile's) is trusted for the IMAPS servers as well.
    """
    imap = getattr(args, "verify_imap", None)
    api = getattr(args, "verify_api", None)
    others = [
        flag
        for flag, value in (
            ("--verify-password-env", args.verify_password_env),
            ("--verify-sender-imap", args.verify_sender_imap),
            ("--verify-sender-password-env", args.verify_sender_password_env),
            ("--verify-timeout", args.verify_timeout),
        )
        if value is not None
    ]
    if imap is None and api is None:
        if others:
            raise UsageError(
                f"{others[0]} needs --verify-imap imaps://USER@HOST (or --verify-api gmail|graph)"
                ": it says how to check the mailbox, not which one"
            )
        return None
    if imap is not None and api is not None:
        raise UsageError("give either --verify-imap or --verify-api, not both")
    from mailkit.delivery import DEFAULT_TIMEOUT, MailboxSpec, VerifySpec

    timeout = args.verify_timeout if args.verify_timeout is not None else DEFAULT_TIMEOUT
    if not 0 < timeout <= MAX_VERIFY_TIMEOUT:
        raise UsageError(
            f"--verify-timeout {timeout:g} is not a wait: give the seconds to keep looking for "
            f"the message, more than 0 and at most {MAX_VERIFY_TIMEOUT:g} (e.g. --verify-timeout "
            "120)"
        )
    if api is not None:
        mailbox = MailboxSpec(
            kind="gmail_api" if api == "gmail" else "graph",
            host=args.api_url or "",
            username=args.from_address or "",
            ca_file=ca_file,
        )
        return VerifySpec(mailbox=mailbox, timeout=timeout)
    if args.verify_password_env is None:
        raise UsageError(
            "--verify-imap needs --verify-password-env NAME: the mailbox password comes from an "
            "environment variable, never from the command line"
        )
    mailbox = _imap(
        str(imap), "--verify-imap", args.verify_password_env, "--verify-password-env", ca_file
    )
    sender: MailboxSpec | None = None
    if args.verify_sender_imap is not None:
        sender = _imap(
            args.verify_sender_imap,
            "--verify-sender-imap",
            args.verify_sender_password_env or args.verify_password_env,
            "--verify-sender-password-env"
            if args.verify_sender_password_env
            else "--verify-password-env",
            ca_file,
        )
    return VerifySpec(mailbox=mailbox, timeout=timeout, sender_mailbox=sender)


def _imap(url: str, flag: str, env: str, env_flag: str, ca_file: str | None) -> MailboxSpec:
    from mailkit.delivery import parse_imap_url
    from mailkit.errors import SettingsError
    from mailkit.secret import Secret

    value = os.environ.get(env, "")
    if not value:
        raise UsageError(
            f"{env_flag} {env}: the environment variable is not set or empty; export the "
            "mailbox password in it first"
        )
    try:
        return parse_imap_url(url, password=Secret(value), ca_file=ca_file)
    except SettingsError as exc:
        raise UsageError(f"{flag}: {exc.problems[0].message}") from None
