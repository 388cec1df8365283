"""The embedded demo mail server: every mailkit feature, shown for real, without a mail account.

``mailkit demo-server`` (or :func:`ensure_running` from a notebook) runs aiosmtpd on loopback
with a STARTTLS port and an implicit-TLS port. Its certificate comes from a CA generated at each
start; the notebooks trust that CA (``ca.pem``) through ``OrgSettings.ca_file``, exactly as an
admin trusts a private server. The demo accounts (:data:`DEMO_ACCOUNTS`) sign in with PLAIN,
LOGIN, CRAM-MD5 or XOAUTH2; the failure accounts answer as Gmail, Microsoft 365 and Postfix do,
so every diagnosis they lead to can be seen end to end. Nothing is ever relayed: accepted mail
lands in the demo mailbox, a Maildir (:func:`read_mailbox`).

The demo directory (``MAILKIT_DEMO_DIR`` when set: ``make lab`` gives each run its own, so two
labs, or a lab and the tests, never share a mailbox; otherwise one per user)::

    ca.pem       the CA to trust (new at every start; no private key is ever written)
    demo.json    how to reach the running server (written at start, removed at stop)
    mailbox/     a Maildir (stdlib ``mailbox.Maildir``): tmp/ while a message is written,
                 new/ once it is complete; any mail client can open it

A client that refuses the demo certificate is one line on the console of ``mailkit
demo-server`` (which port, why, what to trust), never a traceback.

Alongside SMTP runs a fake of Google's and Microsoft's OAuth services and of the Gmail API and
Graph (:mod:`mailkit.demo.oauth`), on HTTPS with the same CA (its consent pages on plain HTTP
on loopback, so a browser opens them without that CA): consent, tokens and API sends work
against it with the real client libraries, and the demo SMTP server accepts its tokens
for XOAUTH2. Mail sent through the fake APIs lands in the same mailbox.

The demo passwords are public on purpose (they are printed with the settings), but the server
still treats them as secrets: it never logs them, and aiosmtpd masks AUTH lines in its own log.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hmac
import json
import logging
import mailbox
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import pandas as pd
import platformdirs
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from mailkit.delivery import MailboxSpec, VerifySpec
from mailkit.demo import scenarios
from mailkit.demo.chunking import ChunkingSMTP
from mailkit.demo.dns import DnsServer
from mailkit.demo.ews import scenarios as ews_accounts
from mailkit.demo.ews.server import EwsMessage, FakeExchange
from mailkit.demo.imap import DemoImapServer, is_junk, password_checker
from mailkit.demo.oauth import (
    DEMO_TENANT,
    SMTP_SCOPES,
    FakeOAuthProvider,
    SentMessage,
    TokenRejected,
    google_client_config,
    tls_failure_line,
)
from mailkit.demo.scenarios import Failure, QuietSession, SubmissionHandler
from mailkit.demo.zone import DEMO_DOMAIN, demo_zone
from mailkit.errors import MailkitError
from mailkit.outcome import Cause, Phase
from mailkit.secret import Secret
from mailkit.settings import OrgSettings, UserSettings

#: The server listens here only; ``localhost`` (what the settings name) resolves to it.
BIND_ADDRESS = "127.0.0.1"
DEMO_HOST = "localhost"
DEMO_USER = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a public demo value, printed on purpose
#: Set this to give the demo accounts a password of your own. It is then treated as a secret:
#: never printed and never written to ``demo.json`` (tests run the notebooks with a canary).
PASSWORD_ENV = "MAILKIT_DEMO_PASSWORD"  # noqa: S105 - the variable's name, not a password


def configured_password() -> str | None:
    """The private demo password from :data:`PASSWORD_ENV`, or None for the public one."""
    return os.environ.get(PASSWORD_ENV) or None


#: Mail to this address is flagged as spam and shows in the demo mailbox's Junk folder (IMAP).
SPAM_TRAP = "spamtrap@example.com"
DEMO_TOKEN = "demo-token"  # noqa: S105 - the demo XOAUTH2 bearer token, public too
SETTINGS_FILE = "demo.json"
CA_FILE = "ca.pem"
MAILBOX_DIR = "mailbox"

#: How long a client may stay idle before the server hangs up (seconds).
IDLE_TIMEOUT = 120.0
#: How long :func:`settings` waits for a running server's greeting (seconds).
PROBE_TIMEOUT = 2.0

T = TypeVar("T")

#: One line per event a person at the demo console should see (``mailkit demo-server`` shows
#: this logger at INFO; inside a kernel nothing is printed).
_log = logging.getLogger(__name__)


class DemoServerError(MailkitError, RuntimeError):
    """The demo server cannot start (a port is taken, another demo server owns the directory)."""


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class DemoAccount:
    """One demo sign-in and what a test send with it shows.

    ``failure`` is the refusal the server gives this account, the very one the test suite's
    misbehaving servers give (:mod:`mailkit.demo.scenarios`): its ``phase`` and ``reply`` say
    where the server refuses and with which words; its ``cause`` is the
    :class:`~mailkit.outcome.Cause` mailkit's diagnosis arrives at. ``password_only``: the
    refusal answers password sign-ins only, and XOAUTH2 with the demo token gets through (the
    fix the diagnosis recommends).
    """

    key: str
    user: str
    password: str = field(repr=False)
    shows: str
    failure: Failure | None = None

    @property
    def cause(self) -> Cause | None:
        return self.failure.cause if self.failure else None

    @property
    def phase(self) -> Phase | None:
        return self.failure.phase if self.failure else None

    @property
    def reply(self) -> str | None:
        return self.failure.reply if self.failure else None

    @property
    def password_only(self) -> bool:
        return self.failure.password_only if self.failure else False

    @property
    def display_name(self) -> str:
        return f"Demo: {self.key.replace('-', ' ')}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "user": self.user,
            "password": self.password,
            "shows": self.shows,
            "failure": self.failure.key if self.failure else None,
            "cause": self.cause.value if self.cause else None,
            "phase": self.phase.value if self.phase else None,
            "reply": self.reply,
            "password_only": self.password_only,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoAccount:
        failure: Failure | None = None
        if data.get("cause") and data.get("phase") and data.get("reply"):
            # As written by the server that runs: its words, even if this version's differ.
            failure = Failure(
                str(data.get("failure") or data["cause"]),
                Phase(data["phase"]),
                Cause(data["cause"]),
                str(data["reply"]),
                password_only=bool(data.get("password_only", False)),
            )
        return cls(
            key=str(data["key"]),
            user=str(data["user"]),
            password=str(data["password"]),
            shows=str(data["shows"]),
            failure=failure,
        )


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        "demo",
        DEMO_USER,
        DEMO_PASSWORD,
        "works with every mechanism: the message lands in the demo mailbox",
    ),
    DemoAccount(
        "wrong-password",
        DEMO_USER,
        "wrong-password",
        "any account with a wrong password (or token): 535 5.7.8 at AUTH",
        scenarios.BAD_CREDENTIALS,
    ),
    DemoAccount(
        "app-password",
        "app-password@example.com",
        DEMO_PASSWORD,
        "Gmail's 534 5.7.9 'Application-specific password required' at AUTH (multi-line); "
        "XOAUTH2 with the demo token signs in",
        scenarios.APP_PASSWORD_REQUIRED,
    ),
    DemoAccount(
        "basic-auth-disabled",
        "basic-auth-disabled@example.com",
        DEMO_PASSWORD,
        "Microsoft 365's 535 5.7.139 'SmtpClientAuthentication is disabled for the Tenant' at "
        "AUTH, for every mechanism",
        scenarios.BASIC_AUTH_DISABLED,
    ),
    DemoAccount(
        "greylisted",
        "greylisted@example.com",
        DEMO_PASSWORD,
        "signs in, then 451 4.7.1 greylisting at RCPT (every time: the demo never lets it pass)",
        scenarios.GREYLISTED,
    ),
    DemoAccount(
        "mailbox-full",
        "mailbox-full@example.com",
        DEMO_PASSWORD,
        "signs in, then 452 4.2.2 mailbox full at RCPT",
        scenarios.MAILBOX_FULL,
    ),
    DemoAccount(
        "not-allowed",
        "not-allowed@example.com",
        DEMO_PASSWORD,
        "signs in, then Microsoft's 550 5.7.60 (send-as denied) at MAIL: the account may not "
        "send as its From address",
        scenarios.SEND_AS_DENIED,
    ),
)

#: Every user name the server knows; each signs in with :data:`DEMO_PASSWORD`.
_KNOWN_USERS = frozenset(account.user.casefold() for account in DEMO_ACCOUNTS)
#: The failure accounts' refusals, by user name (``wrong-password`` is the demo user itself).
_SCRIPTED = {
    a.user.casefold(): a.failure for a in DEMO_ACCOUNTS if a.failure and a.user != DEMO_USER
}


def accounts_table(accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS) -> pd.DataFrame:
    """The demo accounts as a table for a notebook: user, password, what it shows, cause."""
    rows = [account.as_dict() for account in accounts]
    rows += [
        _ews_row(account)
        for account in ews_accounts.demo_accounts(DEMO_DOMAIN, DEMO_USER, DEMO_PASSWORD)
    ]
    if configured_password() is not None:
        for row in rows:
            row["password"] = f"(the value of {PASSWORD_ENV})"
    columns = ["key", "user", "password", "shows", "cause", "phase", "reply"]
    return pd.DataFrame(rows, columns=columns)


def _ews_row(account: ews_accounts.EwsDemoAccount) -> dict[str, Any]:
    """An EWS account of the fake Exchange as a row of the accounts table (its refusal is
    named by ``reply``; the diagnosis is the EWS sender's)."""
    return {
        "key": account.key,
        "user": account.user,
        "password": account.password,
        "shows": account.shows,
        "cause": None,
        "phase": None,
        "reply": account.reply,
    }


# --------------------------------------------------------------------------- settings


#: The demo folder of this run: ``make lab`` (and Binder) set it for both the demo server and
#: JupyterLab, so that a lab's notebooks find their own server and nobody else's mailbox.
DIRECTORY_ENV = "MAILKIT_DEMO_DIR"


def default_directory() -> Path:
    """Where the demo server keeps its files unless told otherwise: :data:`DIRECTORY_ENV` when
    set (one folder per ``make lab`` run), else a folder per user."""
    if configured := os.environ.get(DIRECTORY_ENV):
        return Path(configured).expanduser()
    return platformdirs.user_data_path("mailkit", appauthor=False) / "demo"


@dataclass(frozen=True)
class DemoSettings:
    """How to reach a running demo server: what ``demo.json`` holds, plus settings builders."""

    directory: Path
    host: str
    starttls_port: int
    tls_port: int
    ca_file: Path
    mailbox: Path
    pid: int
    started: datetime
    accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS
    #: None when the password is private (:data:`PASSWORD_ENV`): see :meth:`password_secret`.
    password: str | None = field(default=DEMO_PASSWORD, repr=False)
    oauth_token: str = field(default=DEMO_TOKEN, repr=False)
    #: The fake OAuth provider's root (``https://127.0.0.1:PORT``); None when it was turned off
    #: or the server predates it (older ``demo.json``).
    oauth_url: str | None = None
    #: Where its sign-in pages are (``http://127.0.0.1:PORT``: a browser opens them without
    #: the demo CA); None for an older ``demo.json``, whose pages were on ``oauth_url``.
    oauth_browser_url: str | None = None
    #: The demo's DNS server (``127.0.0.1:PORT``, what ``--dns-server`` takes), authoritative
    #: for the demo domain (:mod:`mailkit.demo.zone`); None for an older ``demo.json``.
    dns_server: str | None = None
    #: The fake Exchange's EWS endpoint (``https://127.0.0.1:PORT/EWS/Exchange.asmx``, NTLM
    #: and Basic) and its POX Autodiscover URL (``.../autodiscover/autodiscover.xml``; the JSON
    #: v2 one is ``.../autodiscover/autodiscover.json/v1.0/ADDRESS?Protocol=EWS``); None when
    #: it was turned off or for an older ``demo.json``.
    ews_url: str | None = None
    ews_autodiscover_url: str | None = None
    #: The demo mailbox over IMAPS (:mod:`mailkit.demo.imap`); None when turned off or for an
    #: older ``demo.json``.
    imap_port: int | None = None

    @property
    def api_url(self) -> str:
        """The base URL standing in for ``gmail.googleapis.com`` and ``graph.microsoft.com``."""
        return self._oauth_base()

    def google_client_config(self) -> dict[str, Any]:
        """The demo's Google "Desktop app" client JSON (public demo client id and secret)."""
        return google_client_config(self._oauth_base(), browser_url=self.oauth_browser_url)

    def microsoft_authority(self, tenant: str = DEMO_TENANT) -> str:
        """MSAL's ``authority`` for the demo tenant (use ``instance_discovery=False``)."""
        return f"{self._oauth_base()}/{tenant}"

    def _oauth_base(self) -> str:
        if self.oauth_url is None:
            raise DemoServerError(
                "this demo server runs without the fake OAuth provider; restart it with OAuth "
                "enabled (the default)"
            )
        return self.oauth_url

    def password_secret(self) -> Secret:
        """The accounts' password: the public demo value, or the private one from the env."""
        if self.password is not None:
            return Secret(self.password)
        private = configured_password()
        if private is None:
            raise DemoServerError(
                f"this demo server uses a private password: set {PASSWORD_ENV} to it"
            )
        return Secret(private)

    def account(self, which: DemoAccount | str) -> DemoAccount:
        """An account by key (``"greylisted"``) or user name; the first match wins."""
        if isinstance(which, DemoAccount):
            return which
        for account in self.accounts:
            if which in (account.key, account.user):
                return account
        keys = ", ".join(a.key for a in self.accounts)
        raise KeyError(f"no demo account {which!r}; choose one of: {keys}")

    def org(self, starttls: bool = True, **overrides: Any) -> OrgSettings:
        """Org settings that send through the demo server as the working demo account.

        ``overrides`` replace single fields, e.g. ``auth="cram_md5"``.
        """
        demo = self.account("demo")
        data: dict[str, Any] = {
            "name": "mailkit demo",
            "mode": "smtp",
            "host": self.host,
            "port": self.starttls_port if starttls else self.tls_port,
            "security": "starttls" if starttls else "implicit_tls",
            "ca_file": str(self.ca_file),
            "username": demo.user,
            "from_address": demo.user,
            "from_name": "mailkit demo",
        }
        return OrgSettings.model_validate({**data, **overrides})

    def user(self, which: DemoAccount | str) -> UserSettings:
        """A user who signs in (and sends as) a demo account, overriding the org's account."""
        account = self.account(which)
        return UserSettings(
            user_code=account.user,
            display_name=account.display_name,
            email=account.user,
            override_enabled=True,
            username=account.user,
            from_address=account.user,
        )

    def token(self) -> Secret:
        """The demo OAuth token; pass the method itself as a send's token provider."""
        return Secret(self.oauth_token)

    def verify(self, which: DemoAccount | str = "demo", *, timeout: float = 10.0) -> VerifySpec:
        """A delivery check of the demo mailbox over IMAPS, signed in as ``which``: pass it as
        ``send_test(..., verify=...)``. Mail to :data:`SPAM_TRAP` lands in its Junk folder."""
        if self.imap_port is None:
            raise DemoServerError(
                "this demo server runs without its IMAP mailbox; restart it with IMAP enabled "
                "(the default)"
            )
        mailbox = MailboxSpec(
            host=self.host,
            port=self.imap_port,
            username=self.account(which).user,
            password=self.password_secret(),
            ca_file=str(self.ca_file),
        )
        return VerifySpec(mailbox=mailbox, timeout=timeout, poll_interval=0.2)

    def as_dict(self) -> dict[str, Any]:
        """The ``demo.json`` / ``--json`` shape (passwords included: they are demo values)."""
        return {
            "host": self.host,
            "starttls_port": self.starttls_port,
            "tls_port": self.tls_port,
            "ca_file": str(self.ca_file),
            "mailbox": str(self.mailbox),
            "directory": str(self.directory),
            "pid": self.pid,
            "started": self.started.isoformat(),
            "username": self.account("demo").user,
            "password": self.password,
            "oauth_token": self.oauth_token,
            "oauth_url": self.oauth_url,
            "oauth_browser_url": self.oauth_browser_url,
            "dns_server": self.dns_server,
            "ews_url": self.ews_url,
            "ews_autodiscover_url": self.ews_autodiscover_url,
            "imap_port": self.imap_port,
            "accounts": [account.as_dict() for account in self.accounts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoSettings:
        return cls(
            directory=Path(data["directory"]),
            host=str(data["host"]),
            starttls_port=int(data["starttls_port"]),
            tls_port=int(data["tls_port"]),
            ca_file=Path(data["ca_file"]),
            mailbox=Path(data["mailbox"]),
            pid=int(data["pid"]),
            started=datetime.fromisoformat(data["started"]),
            accounts=tuple(DemoAccount.from_dict(a) for a in data["accounts"]),
            password=None if data.get("password") is None else str(data["password"]),
            oauth_token=str(data["oauth_token"]),
            oauth_url=None if data.get("oauth_url") is None else str(data["oauth_url"]),
            oauth_browser_url=(
                None if data.get("oauth_browser_url") is None else str(data["oauth_browser_url"])
            ),
            dns_server=None if data.get("dns_server") is None else str(data["dns_server"]),
            ews_url=None if data.get("ews_url") is None else str(data["ews_url"]),
            ews_autodiscover_url=(
                None
                if data.get("ews_autodiscover_url") is None
                else str(data["ews_autodiscover_url"])
            ),
            imap_port=None if data.get("imap_port") is None else int(data["imap_port"]),
        )

    def to_text(self) -> str:
        """The settings to use, as the command line prints them."""
        width = max(len(a.user) for a in self.accounts) + 2
        lines = [
            f"mailkit demo mail server (pid {self.pid}) - stop it with Ctrl-C",
            "",
            f"  host            {self.host}",
            f"  STARTTLS port   {self.starttls_port}   (security starttls)",
            f"  TLS port        {self.tls_port}   (security implicit_tls)",
            f"  CA file         {self.ca_file}   (ca_file: trust this CA for the demo)",
            f"  mailbox         {self.mailbox}   (a Maildir: one file per accepted message)",
            f"  settings file   {self.directory / SETTINGS_FILE}",
        ]
        if self.oauth_url is not None:
            lines += [
                f"  OAuth / APIs    {self.oauth_url}   (a local fake of Google's and Microsoft's "
                "sign-in,",
                "                  the Gmail API and Graph: same CA; you sign in as "
                f"{self.account('demo').user})",
            ]
            if self.oauth_browser_url is not None:
                lines.append(
                    f"  sign-in pages   {self.oauth_browser_url}   (consent with Approve / Deny; "
                    "plain HTTP on loopback, no CA needed)"
                )
        if self.imap_port is not None:
            lines.append(
                f"  IMAPS port      {self.imap_port}   (the demo mailbox; mail to {SPAM_TRAP} "
                "lands in Junk)"
            )
        if self.dns_server is not None:
            lines.append(
                f"  DNS server      {self.dns_server}   (--dns-server: the demo domain "
                f"{DEMO_DOMAIN}'s SRV and MX records)"
            )
        if self.ews_url is not None:
            lines += [
                f"  Exchange (EWS)  {self.ews_url}   (a local fake Exchange 2016: NTLM or "
                "Basic, same CA; failure accounts: accounts_table(), keys ews-*)",
                f"  Autodiscover    {self.ews_autodiscover_url}   (POX; autodiscover.json and "
                "autodiscover.svc beside it)",
            ]
        lines += [
            "",
            "Accounts (public demo values; the XOAUTH2 token of every account is "
            f"{self.oauth_token}):",
        ]
        shown = self.password if self.password is not None else f"(${PASSWORD_ENV})"
        for account in self.accounts:
            lines.append(f"  {account.user:<{width}}{shown:<17}{account.shows}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the mailbox

#: :func:`read_mailbox`'s columns, in order.
MAILBOX_COLUMNS = (
    "received",
    "from",
    "to",
    "subject",
    "message_id",
    "size",
    "auth_user",
    "tls",
    "via",
    "path",
)
_TLS_IN_RECEIVED = re.compile(r"\(using (\S+) with cipher")
_AUTH_USER = re.compile(r"smtp\.auth=(\S+)")
_VIA = re.compile(r"\bvia (gmail_api|graph)\b")
_PARSER = BytesParser(policy=policy.default)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, never a part."""
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with open(temporary, "xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _mailbox_path(directory: Path) -> Path:
    """Accept the demo directory or its ``mailbox/`` folder."""
    directory = Path(directory)
    return directory / MAILBOX_DIR if (directory / MAILBOX_DIR).is_dir() else directory


def _messages(box: Path) -> Iterator[tuple[float, str, Path]]:
    """(delivery time, key, file) of every message in the Maildir ``box``, oldest first."""
    if not all((box / folder).is_dir() for folder in ("new", "cur")):
        return iter(())  # no Maildir (yet): nothing was delivered
    maildir = mailbox.Maildir(box, create=False)
    found = []
    for key in maildir.iterkeys():
        with contextlib.suppress(KeyError, OSError):  # taken away while we look
            message = maildir.get_message(key)
            info = message.get_info()
            name = f"{key}{maildir.colon}{info}" if info else key
            found.append((message.get_date(), key, box / message.get_subdir() / name))
    return iter(sorted(found))


def read_mailbox(directory: Path | str) -> pd.DataFrame:
    """Every message the demo server accepted, oldest first, one row each.

    ``directory`` is the demo directory (or its ``mailbox/``, a Maildir any mail client can
    open). Columns: received (UTC), from, to, subject (decoded), message_id, size (bytes on
    disk), auth_user, tls (the TLS version), via (how it arrived: ``smtp``, ``gmail_api`` or
    ``graph``) and path (for :func:`read_message`).
    """
    rows: list[dict[str, Any]] = []
    for _, _, path in _messages(_mailbox_path(Path(directory))):
        try:
            with open(path, "rb") as file:
                headers = _PARSER.parse(file, headersonly=True)
            size = path.stat().st_size
        except FileNotFoundError:  # moved to cur/ or deleted by a mail client meanwhile
            continue
        trace = str(headers.get("Received", ""))
        results = str(headers.get("Authentication-Results", ""))
        tls = _TLS_IN_RECEIVED.search(trace)
        auth = _AUTH_USER.search(results)
        via = _VIA.search(trace)
        received: datetime | None = None
        with contextlib.suppress(ValueError, TypeError, IndexError):
            received = parsedate_to_datetime(trace.rpartition(";")[2].strip())
        rows.append(
            {
                "received": received,
                "from": str(headers.get("From", "")),
                "to": str(headers.get("To", "")),
                "subject": str(headers.get("Subject", "")),
                "message_id": str(headers.get("Message-ID", "")),
                "size": size,
                "auth_user": auth.group(1) if auth else None,
                "tls": tls.group(1) if tls else None,
                "via": via.group(1) if via else "smtp",
                "path": str(path),
            }
        )
    frame = pd.DataFrame(rows, columns=list(MAILBOX_COLUMNS))
    frame["received"] = pd.to_datetime(frame["received"], utc=True)
    frame["size"] = frame["size"].astype("int64")
    return frame


def read_message(path: Path | str) -> EmailMessage:
    """One stored message, parsed with the modern email API (headers decoded)."""
    with open(path, "rb") as file:
        message = _PARSER.parse(file)
    assert isinstance(message, EmailMessage)
    return message


def message_text(message: EmailMessage | Path | str) -> str:
    """The plain-text body as Unicode (charset and transfer encoding undone), or ``""``."""
    if not isinstance(message, EmailMessage):
        message = read_message(message)
    body = message.get_body(preferencelist=("plain",))
    if body is None:
        return ""
    content = body.get_content()
    return content if isinstance(content, str) else ""


# --------------------------------------------------------------------------- the SMTP side


class _DemoSMTP(ChunkingSMTP):
    """aiosmtpd's protocol (with BDAT, offered as Postfix does), known to its server so that
    stopping can close every connection."""

    def __init__(self, handler: _DemoHandler, live: set[_DemoSMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._live = live

    def _create_session(self) -> Session:
        return QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._live.add(self)  # called again after STARTTLS: a set does not mind
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._live.discard(self)
        super().connection_lost(error)

    async def handle_exception(self, error: Exception) -> str:
        """A failed STARTTLS handshake is the client's business: the TLS layer has logged its
        one line (see :func:`_server_context`); aiosmtpd's own would be a traceback."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            if not isinstance(cause, ssl.SSLError) or isinstance(cause, _HANDSHAKE_AGAIN):
                peer = self.session.peer if self.session is not None else None
                _log.info(tls_failure_line("STARTTLS", peer, cause or error))
            return "454 4.7.0 TLS not available due to temporary reason"
        return await super().handle_exception(error)

    @property
    def tls_version(self) -> str | None:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        return ssl_object.version() if isinstance(ssl_object, ssl.SSLObject) else None

    @property
    def tls_cipher(self) -> str | None:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        cipher = ssl_object.cipher() if isinstance(ssl_object, ssl.SSLObject) else None
        return cipher[0] if cipher else None


class _DemoHandler(SubmissionHandler):
    """The accounts' behaviour: who may sign in, and where a failure account refuses.

    CRAM-MD5 and XOAUTH2 come from :class:`~mailkit.demo.scenarios.SubmissionHandler`, as for the
    test servers; this class only says who the demo knows.
    """

    def __init__(
        self, mailbox: Path, password: str, oauth: FakeOAuthProvider | None = None
    ) -> None:
        self.mailbox = mailbox
        self.password = password
        #: XOAUTH2 also accepts this fake's tokens (SMTP scope, issued to the AUTH user).
        self.oauth = oauth
        #: Deliveries come from the SMTP loop and from the fake APIs' threads.
        self._delivering = threading.Lock()

    # -- AUTH

    def password_for(self, user: str) -> bytes | None:
        return self.password.encode()

    def bearer_ok(self, user: str, bearer: bytes) -> bool:
        return hmac.compare_digest(bearer, b"Bearer " + DEMO_TOKEN.encode()) or self._issued_to(
            bearer, user
        )

    def challenges_bad_token(self, user: str) -> bool:
        """An unknown user gets the plain 535 at once, as for a password."""
        return user.casefold() in _KNOWN_USERS

    def sign_in_verdict(
        self,
        server: SMTP,
        mechanism: str,
        user: str,
        ok: bool,
        *,
        refusal: Failure | None = None,
    ) -> AuthResult:
        """Bad credentials first (so a wrong password always reads 535 5.7.8), then the
        failure accounts' refusals at AUTH."""
        if not ok or user.casefold() not in _KNOWN_USERS:
            failure = refusal or scenarios.BAD_CREDENTIALS
            return AuthResult(success=False, handled=False, message=failure.wire)
        script = _SCRIPTED.get(user.casefold())
        oauth = mechanism == "XOAUTH2"
        if (
            script is not None
            and script.phase is Phase.AUTH
            and not (oauth and script.password_only)
        ):
            return AuthResult(success=False, handled=False, message=script.wire)
        return AuthResult(success=True, handled=False, auth_data=user)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """PLAIN and LOGIN: aiosmtpd decodes them and hands over the user name and password."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = hmac.compare_digest(auth_data.password, self.password.encode())
        return self.sign_in_verdict(server, mechanism, user, ok)

    def _issued_to(self, bearer: bytes, user: str) -> bool:
        """A live token of the fake provider with an SMTP scope, issued to ``user``."""
        if self.oauth is None or not bearer.startswith(b"Bearer "):
            return False
        token = bearer[len(b"Bearer ") :].decode("utf-8", "replace").strip()
        try:
            account = self.oauth.check_token(token, SMTP_SCOPES)
        except TokenRejected:
            return False
        return account.casefold() == user.casefold()

    # -- the transaction

    @staticmethod
    def _script(session: Session, phase: Phase) -> str | None:
        script = _SCRIPTED.get(str(session.auth_data).casefold())
        return script.wire if script is not None and script.phase is phase else None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required: sign in with a demo account first"
        if reply := self._script(session, Phase.MAIL):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if reply := self._script(session, Phase.RCPT):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Recipient OK (kept in the demo mailbox, never relayed)"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = datetime.now(UTC)
        queue_id = f"{now:%Y%m%dT%H%M%S%f}Z.{secrets.token_hex(4)}"
        assert isinstance(server, _DemoSMTP)
        trace = self._trace(server, session, envelope, queue_id, now)
        try:
            self._deliver(trace + (envelope.original_content or b""))
        except OSError as exc:
            return f"451 4.3.0 The demo mailbox cannot be written ({exc.strerror}); try again"
        if self.oauth is not None:
            # The demo's recipients have Gmail API and Graph mailboxes too (the fake's), so a
            # delivery check through the APIs finds what was sent over SMTP.
            raw = trace + (envelope.original_content or b"")
            labels = ("SPAM",) if is_junk(raw) else ("INBOX",)
            for recipient in envelope.rcpt_tos:
                self.oauth.deliver_to(recipient, raw, labels=labels)
        return f"250 2.0.0 OK: queued as {queue_id} in the demo mailbox"

    @staticmethod
    def _trace(
        server: _DemoSMTP, session: Session, envelope: Envelope, queue_id: str, now: datetime
    ) -> bytes:
        """Return-Path, Received and Authentication-Results, as a real MTA would prepend."""
        peer = session.peer[0] if isinstance(session.peer, tuple) else BIND_ADDRESS
        helo = session.host_name or "unknown"
        using = f"(using {server.tls_version} with cipher {server.tls_cipher})"
        lines = [
            f"Return-Path: <{envelope.mail_from}>",
            f"Received: from {helo} (localhost [{peer}])",
            f"\t{using}",
            f"\tby {DEMO_HOST} (mailkit demo server) with ESMTPSA id {queue_id};",
            f"\t{format_datetime(now)}",
            f"Authentication-Results: {DEMO_HOST}; auth=pass smtp.auth={session.auth_data}",
        ]
        if any(r.casefold() == SPAM_TRAP for r in envelope.rcpt_tos):
            # The demo's spam rule: its IMAP mailbox files this message into Junk.
            lines += [
                "X-Spam-Flag: YES",
                "X-Spam-Status: Yes, score=9.9 required=5.0 tests=SPAM_TRAP",
            ]
        return "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")

    def deliver_api(self, message: SentMessage) -> None:
        """A message the fake Gmail API or Graph accepted: into the mailbox, marked ``via``."""
        now = datetime.now(UTC)
        queue_id = f"{now:%Y%m%dT%H%M%S%f}Z.{secrets.token_hex(4)}"
        label = "Gmail API" if message.api == "gmail_api" else "Microsoft Graph"
        lines = [
            f"Return-Path: <{message.account}>",
            f"Received: from {BIND_ADDRESS} (localhost [{BIND_ADDRESS}])",
            *([f"\t(using {message.tls[0]} with cipher {message.tls[1]})"] if message.tls else []),
            f"\tby {DEMO_HOST} (mailkit demo {label}) with HTTPSA id {queue_id} via {message.api};",
            f"\t{format_datetime(now)}",
            f"Authentication-Results: {DEMO_HOST}; auth=pass smtp.auth={message.account}",
        ]
        trace = "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")
        self._deliver(trace + message.raw)

    def deliver_ews(self, message: EwsMessage) -> None:
        """A message the fake Exchange sent: into the mailbox, marked ``via ews``."""
        now = datetime.now(UTC)
        queue_id = f"{now:%Y%m%dT%H%M%S%f}Z.{secrets.token_hex(4)}"
        lines = [
            f"Return-Path: <{message.mailbox}>",
            f"Received: from {BIND_ADDRESS} (localhost [{BIND_ADDRESS}])",
            f"\tby {DEMO_HOST} (mailkit demo Exchange) with HTTPSA id {queue_id} via ews;",
            f"\t{format_datetime(now)}",
            f"Authentication-Results: {DEMO_HOST}; auth=pass smtp.auth={message.user}",
        ]
        trace = "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")
        self._deliver(trace + message.as_bytes())

    def _deliver(self, data: bytes) -> None:
        """Into the demo Maildir: ``mailbox.Maildir`` writes the message in ``tmp/`` and moves
        it to ``new/`` whole, so a reader never sees part of one."""
        with self._delivering:
            for folder in ("tmp", "new", "cur"):  # the mailbox may have been emptied by hand
                (self.mailbox / folder).mkdir(parents=True, exist_ok=True)
            mailbox.Maildir(self.mailbox, create=True).add(data)


# --------------------------------------------------------------------------- the server


def _listening_socket(port: int, label: str) -> socket.socket:
    """Bind on loopback ourselves: aiosmtpd's ``Controller(port=0)`` cannot pick a free port.

    ``IPPROTO_TCP`` matters: asyncio sets ``TCP_NODELAY`` only on such sockets (accepted ones
    inherit it); without it multi-line replies stall on Nagle + delayed ACK.
    """
    if not 0 <= port <= 65535:
        raise DemoServerError(f"the {label} port {port} is out of range; use 1-65535, or 0 for any")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":  # rebind a fixed port at once after a restart (TIME_WAIT)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((BIND_ADDRESS, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise DemoServerError(
            f"cannot listen on {BIND_ADDRESS} port {port} for {label} ({exc.strerror}); "
            f"choose another port, or 0 for a free one"
        ) from None
    return sock


def _make_tls(directory: Path) -> trustme.LeafCert:
    """A fresh CA (written as ``ca.pem``) and a server certificate for localhost/127.0.0.1."""
    authority = trustme.CA(organization_name="mailkit demo CA")
    leaf = authority.issue_cert(DEMO_HOST, BIND_ADDRESS, organization_name="mailkit demo server")
    _atomic_write(directory / CA_FILE, authority.cert_pem.bytes())
    return leaf


_HANDSHAKE_AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


def _server_context(leaf: trustme.LeafCert, where: str | None = None) -> ssl.SSLContext:
    """A server context on the demo certificate. With ``where``, a failed handshake on it
    (typically a client that does not trust the demo CA) is one line on the demo console.

    asyncio reports such failures only in debug mode, and aiosmtpd as a traceback; the
    context's ``sslobject_class`` sees every handshake that asyncio (implicit TLS) and aiosmtpd
    (STARTTLS) run through it, without patching either.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    leaf.configure_cert(context)
    if where is not None:
        label = where

        class _Reported(ssl.SSLObject):
            def do_handshake(self) -> None:
                try:
                    super().do_handshake()
                except _HANDSHAKE_AGAIN:
                    raise
                except ssl.SSLError as exc:
                    _log.info(tls_failure_line(label, None, exc))
                    raise

        context.sslobject_class = _Reported
    return context


class DemoServer:
    """The demo server on its own event loop in a background thread.

    A thread of its own lets it run inside a Jupyter kernel (whose loop is already running and
    busy with cells) as well as under the command line. ``start()`` returns once both ports
    accept connections and ``demo.json`` is written; ``stop()`` closes every connection and
    removes ``demo.json``. Also a context manager.
    """

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        starttls_port: int = 0,
        tls_port: int = 0,
        password: str | None = None,
        oauth: bool = True,
        oauth_port: int = 0,
        ews: bool = True,
        ews_port: int = 0,
        imap: bool = True,
        imap_port: int = 0,
    ) -> None:
        """``oauth=False`` leaves out the fake OAuth provider, ``ews=False`` the fake
        Exchange, ``imap=False`` the mailbox over IMAPS."""
        self.directory = Path(directory) if directory is not None else default_directory()
        #: A private password (given, or from MAILKIT_DEMO_PASSWORD) is never written anywhere.
        self._private_password = password or configured_password()
        self._wanted_ports = (starttls_port, tls_port)
        self._oauth_wanted = oauth
        self._oauth_port = oauth_port
        self._oauth: FakeOAuthProvider | None = None
        self._ews_wanted = ews
        self._ews_port = ews_port
        self._ews: FakeExchange | None = None
        self._imap_wanted = imap
        self._imap_port = imap_port
        self._imap: DemoImapServer | None = None
        self._dns: DnsServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._live: set[_DemoSMTP] = set()
        self._settings: DemoSettings | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._settings is not None

    @property
    def settings(self) -> DemoSettings:
        if self._settings is None:
            raise DemoServerError("the demo server is not running; call start() first")
        return self._settings

    @property
    def oauth(self) -> FakeOAuthProvider:
        """The running fake OAuth provider, for tests in this process (modes and hooks)."""
        if self._oauth is None:
            raise DemoServerError(
                "the fake OAuth provider is not running: start() the server, with oauth=True"
            )
        return self._oauth

    @property
    def ews(self) -> FakeExchange:
        """The running fake Exchange, for tests in this process (records and knobs)."""
        if self._ews is None:
            raise DemoServerError(
                "the fake Exchange is not running: start() the server, with ews=True"
            )
        return self._ews

    @property
    def mailbox_path(self) -> Path:
        return self.directory / MAILBOX_DIR

    def mailbox(self) -> pd.DataFrame:
        """The messages received so far (see :func:`read_mailbox`)."""
        return read_mailbox(self.directory)

    def __repr__(self) -> str:
        state = (
            f"ports {self._settings.starttls_port}/{self._settings.tls_port}"
            if self._settings
            else "stopped"
        )
        return f"<DemoServer {self.directory} {state}>"

    # -- lifecycle

    def start(self) -> DemoSettings:
        """Listen on both ports and write ``demo.json``; returns the settings to use."""
        with self._lock:
            if self._settings is not None:
                return self._settings
            other = settings(self.directory)
            if other is not None:
                raise DemoServerError(
                    f"a demo server (pid {other.pid}, ports {other.starttls_port} and "
                    f"{other.tls_port}) already uses {self.directory}; use it "
                    "(mailkit.demo.ensure_running) or stop it first"
                )
            for folder in ("tmp", "new", "cur"):
                (self.mailbox_path / folder).mkdir(parents=True, exist_ok=True)
            sockets: list[socket.socket] = []
            try:
                for port, label in zip(
                    self._wanted_ports, ("STARTTLS", "implicit TLS"), strict=True
                ):
                    sockets.append(_listening_socket(port, label))
            except DemoServerError:
                for sock in sockets:
                    sock.close()
                raise
            ports = [sock.getsockname()[1] for sock in sockets]
            leaf = _make_tls(self.directory)  # only now: a failed start keeps the old CA
            oauth = self._start_oauth(_server_context(leaf), sockets)
            handler = _DemoHandler(
                self.mailbox_path, self._private_password or DEMO_PASSWORD, oauth
            )
            if oauth is not None:
                oauth.on_send = handler.deliver_api
            ews = self._start_ews(_server_context(leaf), sockets, oauth)
            if ews is not None:
                ews.on_send = handler.deliver_ews
            imap_sock = self._imap_socket(sockets, oauth, ews)
            self._run_loop()
            try:
                self._call(self._serve(sockets, leaf, handler))
                self._call(self._open_dns(ports[0], ports[1]))
                if imap_sock is not None:
                    self._call(self._open_imap(imap_sock, leaf))
            except BaseException:
                with contextlib.suppress(Exception):
                    self._call(self._shutdown())
                for sock in [*sockets, *([imap_sock] if imap_sock is not None else [])]:
                    sock.close()
                self._end_loop()
                if oauth is not None:
                    oauth.stop()
                if ews is not None:
                    ews.stop()
                raise
            self._oauth = oauth
            self._ews = ews
            self._settings = DemoSettings(
                directory=self.directory,
                host=DEMO_HOST,
                starttls_port=ports[0],
                tls_port=ports[1],
                ca_file=self.directory / CA_FILE,
                mailbox=self.mailbox_path,
                pid=os.getpid(),
                started=datetime.now(UTC),
                password=None if self._private_password else DEMO_PASSWORD,
                oauth_url=oauth.base_url if oauth is not None else None,
                oauth_browser_url=oauth.browser_url if oauth is not None else None,
                dns_server=self._dns.address if self._dns is not None else None,
                ews_url=ews.ews_url if ews is not None else None,
                ews_autodiscover_url=ews.autodiscover_xml_url if ews is not None else None,
                imap_port=imap_sock.getsockname()[1] if imap_sock is not None else None,
            )
            data = json.dumps(self._settings.as_dict(), ensure_ascii=False, indent=2)
            _atomic_write(self.directory / SETTINGS_FILE, data.encode("utf-8"))
            # A kernel or script that ends without stop() must not leave demo.json behind.
            atexit.register(self.stop)
            return self._settings

    def stop(self) -> None:
        """Remove ``demo.json``, close the ports and every connection, end the thread."""
        with self._lock:
            if self._settings is None:
                return
            if threading.current_thread() is self._thread:
                raise DemoServerError("stop() cannot be called from the demo server's own loop")
            atexit.unregister(self.stop)
            self._remove_settings_file(self._settings)  # first: nobody should find it now
            self._settings = None
            try:
                self._call(self._shutdown())
            finally:
                self._end_loop()
                if self._oauth is not None:
                    self._oauth.stop()
                    self._oauth = None
                if self._ews is not None:
                    self._ews.stop()
                    self._ews = None

    def _start_oauth(
        self, context: ssl.SSLContext, sockets: list[socket.socket]
    ) -> FakeOAuthProvider | None:
        """The fake provider, on the SMTP certificate (one CA for the whole demo)."""
        if not self._oauth_wanted:
            return None
        provider = FakeOAuthProvider(context, self.directory / CA_FILE, port=self._oauth_port)
        try:
            return provider.start()
        except (OSError, OverflowError) as exc:
            for sock in sockets:
                sock.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DemoServerError(
                f"cannot listen on {BIND_ADDRESS} port {self._oauth_port} for the fake OAuth "
                f"provider ({reason}); choose another port, or 0 for a free one"
            ) from None

    def _start_ews(
        self,
        context: ssl.SSLContext,
        sockets: list[socket.socket],
        oauth: FakeOAuthProvider | None,
    ) -> FakeExchange | None:
        """The fake Exchange, on the SMTP certificate, its accounts signing in with the demo
        password (the private one too)."""
        if not self._ews_wanted:
            return None
        fake = FakeExchange(
            context,
            self.directory / CA_FILE,
            port=self._ews_port,
            password=self._private_password or DEMO_PASSWORD,
            domain=DEMO_DOMAIN,
        )
        try:
            return fake.start()
        except (OSError, OverflowError) as exc:
            for sock in sockets:
                sock.close()
            if oauth is not None:
                oauth.stop()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise DemoServerError(
                f"cannot listen on {BIND_ADDRESS} port {self._ews_port} for the fake Exchange "
                f"({reason}); choose another port, or 0 for a free one"
            ) from None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the loop thread

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="mailkit-demo-server", daemon=True
        )
        self._thread.start()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    async def _serve(
        self, sockets: list[socket.socket], leaf: trustme.LeafCert, handler: _DemoHandler
    ) -> None:
        loop = asyncio.get_running_loop()
        starttls_sock, tls_sock = sockets
        context = _server_context(leaf, f"STARTTLS port {starttls_sock.getsockname()[1]}")
        implicit_context = _server_context(leaf, f"TLS port {tls_sock.getsockname()[1]}")

        def protocol(implicit: bool) -> _DemoSMTP:
            per_port: dict[str, Any] = (
                # Every byte is encrypted on this port; aiosmtpd only knows about STARTTLS.
                {"auth_require_tls": False}
                if implicit
                else {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
            )
            return _DemoSMTP(
                handler,
                self._live,
                hostname=DEMO_HOST,
                ident="mailkit demo server",
                enable_SMTPUTF8=True,
                authenticator=handler.authenticate,
                timeout=IDLE_TIMEOUT,
                loop=loop,
                **per_port,
            )

        self._servers = [
            await loop.create_server(lambda: protocol(False), sock=starttls_sock),
            await loop.create_server(lambda: protocol(True), sock=tls_sock, ssl=implicit_context),
        ]

    async def _open_dns(self, starttls_port: int, tls_port: int) -> None:
        """The demo domain's DNS, on this loop: discovery finds the demo as a real domain."""
        dns = DnsServer(demo_zone(starttls_port=starttls_port, tls_port=tls_port))
        await dns.open()
        self._dns = dns

    def _imap_socket(
        self,
        sockets: list[socket.socket],
        oauth: FakeOAuthProvider | None,
        ews: FakeExchange | None,
    ) -> socket.socket | None:
        """The IMAPS port, bound last: if it is taken, everything started so far stops."""
        if not self._imap_wanted:
            return None
        try:
            return _listening_socket(self._imap_port, "IMAPS")
        except DemoServerError:
            for sock in sockets:
                sock.close()
            for fake in (oauth, ews):
                if fake is not None:
                    fake.stop()
            raise

    async def _open_imap(self, sock: socket.socket, leaf: trustme.LeafCert) -> None:
        """The demo mailbox over IMAPS (implicit TLS, the demo CA), on this loop."""
        password = self._private_password or DEMO_PASSWORD
        server = DemoImapServer(
            self.mailbox_path,
            password_checker(password, lambda user: user.casefold() in _KNOWN_USERS),
        )
        await server.start(sock, _server_context(leaf, f"IMAPS port {sock.getsockname()[1]}"))
        self._imap = server

    async def _shutdown(self) -> None:
        if self._imap is not None:
            await self._imap.close()
            self._imap = None
        if self._dns is not None:
            await self._dns.close()
            self._dns = None
        for server in self._servers:
            server.close()
        for connection in list(self._live):
            if isinstance(connection.transport, asyncio.Transport):
                connection.transport.abort()
        await asyncio.sleep(0)
        for server in self._servers:
            await server.wait_closed()
        self._servers = []
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()

    def _remove_settings_file(self, mine: DemoSettings) -> None:
        """Remove ``demo.json`` only if it still describes this server."""
        path = self.directory / SETTINGS_FILE
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text("utf-8"))
            if (data["pid"], data["starttls_port"]) == (mine.pid, mine.starttls_port):
                path.unlink()


# --------------------------------------------------------------------------- finding a server


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process; the port check decides
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _answers_smtp(port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """A whole polite session (greeting, QUIT, 221) so the server logs nothing unusual."""
    try:
        with socket.create_connection((BIND_ADDRESS, port), timeout=timeout) as sock:
            greeting = sock.recv(1024)
            sock.sendall(b"QUIT\r\n")
            with contextlib.suppress(OSError):
                sock.recv(1024)
    except OSError:
        return False
    return greeting.startswith(b"220 ")


def settings(directory: Path | str | None = None) -> DemoSettings | None:
    """The running demo server's settings, or None when none runs for ``directory``.

    ``demo.json`` alone is not proof: a killed server leaves it behind. Its process must be
    alive and its STARTTLS port must greet like an SMTP server.
    """
    base = Path(directory) if directory is not None else default_directory()
    try:
        data = json.loads((base / SETTINGS_FILE).read_text("utf-8"))
        found = DemoSettings.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(found.pid) or not _answers_smtp(found.starttls_port):
        return None
    return found


@dataclass(frozen=True)
class DemoHandle:
    """What :func:`ensure_running` found or started; ``server`` is set only if it started it."""

    settings: DemoSettings
    server: DemoServer | None = None

    @property
    def started_here(self) -> bool:
        return self.server is not None

    def org(self, starttls: bool = True, **overrides: Any) -> OrgSettings:
        return self.settings.org(starttls, **overrides)

    def user(self, which: DemoAccount | str) -> UserSettings:
        return self.settings.user(which)

    def mailbox(self) -> pd.DataFrame:
        return read_mailbox(self.settings.directory)

    def stop(self) -> None:
        """Stop the server if this handle started it; a server found running is left alone."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def ensure_running(directory: Path | str | None = None) -> DemoHandle:
    """The demo server for ``directory``: the one already running (``make lab`` starts one),
    or a new one in this process. Notebooks call this first."""
    found = settings(directory)
    if found is not None:
        return DemoHandle(found)
    server = DemoServer(directory)
    return DemoHandle(server.start(), server)


# --------------------------------------------------------------------------- the foreground


def run_foreground(server: DemoServer, ready: Callable[[DemoSettings], None]) -> None:
    """Start ``server``, call ``ready`` with its settings, serve until SIGINT (Ctrl-C) or
    SIGTERM, then stop cleanly. What ``mailkit demo-server`` runs.

    Events worth a line (a client refusing the demo certificate) go to stderr, one line each.
    """
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s mailkit demo: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("mailkit.demo")
    level = logger.level
    logger.addHandler(console)
    logger.setLevel(logging.INFO)
    try:
        asyncio.run(_serve_until_signalled(server, ready))
    finally:
        logger.removeHandler(console)
        logger.setLevel(level)


async def _serve_until_signalled(server: DemoServer, ready: Callable[[DemoSettings], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            # The loop's own handler wakes it at once, whichever thread the signal hits.
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except NotImplementedError:  # Windows: a plain handler that hands over to the loop
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    try:
        ready(server.start())
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        server.stop()
