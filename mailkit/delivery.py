"""The delivery round trip's values: what to look for, and what was found in the mailbox.

Pure: no sockets, no files. The adapters (:mod:`mailkit.verify.imap`, :mod:`mailkit.verify.api`)
fetch a message's raw bytes and its folder; everything they mean is decided here, so every
header shape (Postfix's and Exchange's Received lines, Gmail's and Microsoft's
Authentication-Results, SpamAssassin's, Rspamd's and Microsoft's spam verdicts, RFC 3464
delivery status notifications) is tested as plain data.

Bounces are read with the standard library's ``email`` package, not flufl.bounce: a DSN's
``message/delivery-status`` part is a block of header fields that ``email`` already splits into
one block per recipient, and what the diagnosis needs — ``Status``, ``Action``,
``Diagnostic-Code`` and the Message-ID of the original message — is exactly those fields;
flufl.bounce answers a different question (which addresses bounced, across hundreds of
non-standard formats) and returns neither the status nor the original Message-ID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mailkit.errors import FieldProblem, SettingsError
from mailkit.secret import Secret

# The email parser loads with the first message read, not with the values: every test send's
# result imports this module (TestResult names DeliveryReport), most never check delivery.
if TYPE_CHECKING:
    from email.message import Message

__all__ = [
    "JUNK_NAMES",
    "AuthCheck",
    "Bounce",
    "DeliveryReport",
    "Hop",
    "MailboxSpec",
    "Placement",
    "SpamVerdict",
    "VerifySpec",
    "auth_results",
    "bounce_of",
    "found_report",
    "junk_folders",
    "parse_imap_url",
    "received_hops",
    "spam_verdict",
]

#: Where mailboxes keep spam when no folder says so with SPECIAL-USE ``\Junk`` (RFC 6154).
JUNK_NAMES = (
    "Junk",
    "Spam",
    "Junk E-mail",
    "Junk Email",
    "[Gmail]/Spam",
    "INBOX.Junk",
    "INBOX.Spam",
)
DEFAULT_TIMEOUT = 120.0
IMAPS_PORT = 993


class Placement(StrEnum):
    """Where the test message ended up, as far as the check could see."""

    INBOX = "inbox"
    JUNK = "junk"
    #: Found in a folder that is neither the inbox nor spam (a rule moved it).
    OTHER = "other"
    #: A delivery status notification says it failed (``Action: failed``).
    BOUNCED = "bounced"
    #: A notification says delivery is still being retried (``Action: delayed``, 4.x.x).
    DELAYED = "delayed"
    NOT_FOUND = "not_found"
    #: The mailbox could not be searched (sign-in refused, unreachable, untrusted certificate).
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class MailboxSpec:
    """A mailbox to search: over IMAPS, or through a mail API with the stored OAuth consent.

    ``kind`` is ``"imap"``, ``"gmail_api"`` or ``"graph"``. For the APIs ``host`` is the API's
    base URL (empty for the provider's own) and no password is used.
    """

    kind: str = "imap"
    host: str = ""
    port: int = IMAPS_PORT
    username: str = ""
    password: Secret | None = field(default=None, repr=False)
    ca_file: str | None = None

    @property
    def label(self) -> str:
        """How reports name the mailbox: never with its password."""
        if self.kind == "imap":
            return f"imaps://{self.username}@{self.host}:{self.port}"
        api = "Gmail API" if self.kind == "gmail_api" else "Microsoft Graph"
        return f"{api} mailbox{' of ' + self.username if self.username else ''}"


@dataclass(frozen=True)
class VerifySpec:
    """``send_test(..., verify=VerifySpec(...))``: where and how long to look for the message.

    ``sender_mailbox`` is searched for a bounce (a DSN comes back to the envelope sender). When
    it is None and the recipient mailbox *is* the sender's (a test sent to oneself, the common
    case), the recipient mailbox is searched for the bounce too; otherwise no bounce is looked
    for and a mail that bounced shows as "not found".
    """

    mailbox: MailboxSpec
    timeout: float = DEFAULT_TIMEOUT
    poll_interval: float = 1.0
    sender_mailbox: MailboxSpec | None = None

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise SettingsError(
                [FieldProblem("verify_timeout", "must be a number of seconds above 0, e.g. 120")],
                "delivery check settings",
            )
        if not self.poll_interval > 0:
            raise SettingsError(
                [FieldProblem("poll_interval", "must be a number of seconds above 0, e.g. 1")],
                "delivery check settings",
            )

    def bounce_mailbox(self, sender: str | None) -> MailboxSpec | None:
        """The mailbox a bounce for a message from ``sender`` would reach, if one is known."""
        if self.sender_mailbox is not None:
            return self.sender_mailbox
        if sender and self.mailbox.username.casefold() == sender.casefold():
            return self.mailbox
        return None


def parse_imap_url(
    url: str, *, password: Secret | None = None, ca_file: str | None = None
) -> MailboxSpec:
    """``imaps://USER@HOST[:PORT]`` as a :class:`MailboxSpec`.

    The user name may itself contain ``@`` (``imaps://bob@example.com@imap.example.com``) or
    spell it ``%40``. A password in the URL is refused: it would end up in shell history and
    process lists; it comes from an environment variable or the caller instead.
    """

    def bad(message: str) -> SettingsError:
        return SettingsError([FieldProblem("verify_imap", message)], "delivery check settings")

    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("imaps", "imap"):
        raise bad(
            f"{url!r} is not an IMAP address; write it as imaps://USER@HOST or "
            "imaps://USER@HOST:PORT, e.g. imaps://bob@example.com@imap.example.com"
        )
    if scheme.lower() == "imap":
        raise bad(
            "plain imap:// would send the mailbox password unencrypted; use imaps:// "
            "(IMAP over TLS, port 993)"
        )
    rest = rest.rstrip("/")
    user, at, hostport = rest.rpartition("@")
    if not at or not user:
        raise bad(
            f"{url!r} names no user; write imaps://USER@HOST, e.g. imaps://bob@imap.example.com"
        )
    if ":" in user.replace("%3A", ":") and not user.count("@"):
        raise bad("put no password in the address; pass it in an environment variable instead")
    host, port = hostport, IMAPS_PORT
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        if tail:
            port = _port(tail.removeprefix(":"), bad)
    elif ":" in hostport:
        host, _, port_text = hostport.rpartition(":")
        port = _port(port_text, bad)
    if not host or any(c.isspace() or c in "/?#" for c in host):
        raise bad(f"{hostport!r} is not a host name; write imaps://USER@HOST[:PORT]")
    return MailboxSpec(
        kind="imap",
        host=host,
        port=port,
        username=_unquote(user),
        password=password,
        ca_file=ca_file,
    )


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


def _port(text: str, bad: Any) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise bad(f"the port {text!r} is not a number from 1 to 65535 (IMAPS uses 993)")
    return int(text)


# -- what was found -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One ``Received`` line, oldest first; ``delay_s`` since the hop before (or the Date)."""

    index: int
    from_host: str
    by_host: str
    protocol: str
    timestamp: datetime | None
    delay_s: float | None
    #: The TLS version and cipher when the line names them (Postfix, Exchange).
    tls: str = ""
    queue_id: str = ""
    raw: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "hop": self.index,
            "from": self.from_host,
            "by": self.by_host,
            "with": self.protocol,
            "time": self.timestamp.isoformat() if self.timestamp else None,
            "delay_s": self.delay_s,
            "tls": self.tls,
            "id": self.queue_id,
        }


@dataclass(frozen=True)
class AuthCheck:
    """One result of an ``Authentication-Results`` header (RFC 8601): ``spf=pass ...``."""

    method: str
    result: str
    #: What the result is about: ``smtp.mailfrom=...``, ``header.d=...``, ``header.from=...``.
    properties: dict[str, str] = field(default_factory=dict)
    #: The comment or reason given, e.g. ``(p=REJECT sp=REJECT dis=QUARANTINE)``.
    comment: str = ""
    #: Who checked (the header's authserv-id); empty in Microsoft's headers, which omit it.
    authserv_id: str = ""

    @property
    def passed(self) -> bool:
        return self.result == "pass"

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "result": self.result,
            "properties": dict(self.properties),
            "comment": self.comment,
            "authserv_id": self.authserv_id,
        }


@dataclass(frozen=True)
class SpamVerdict:
    """What the receiving side's filters said, from the headers they add."""

    #: Each spam header by its name as the message spells it (a repeated one: the first).
    headers: dict[str, str]
    #: True when a filter flagged the message as spam, False when one said it is not.
    flagged: bool | None = None
    score: float | None = None
    threshold: float | None = None
    #: Microsoft's spam confidence level (-1 to 9; 5 and up goes to Junk).
    scl: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "score": self.score,
            "threshold": self.threshold,
            "scl": self.scl,
            "headers": dict(self.headers),
        }


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification (RFC 3464) about the test message, one recipient's."""

    action: str
    status: str
    final_recipient: str = ""
    diagnostic_code: str = ""
    reporting_mta: str = ""
    remote_mta: str = ""
    #: The Message-ID of the message the notification is about (from its returned headers).
    original_message_id: str = ""
    arrived: datetime | None = None
    subject: str = ""

    @property
    def permanent(self) -> bool:
        return self.action == "failed" or self.status.startswith("5.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "status": self.status,
            "final_recipient": self.final_recipient,
            "diagnostic_code": self.diagnostic_code,
            "reporting_mta": self.reporting_mta,
            "remote_mta": self.remote_mta,
            "original_message_id": self.original_message_id,
            "arrived": self.arrived.isoformat() if self.arrived else None,
        }


@dataclass(frozen=True)
class DeliveryReport:
    """The answer to "did it arrive?": where, when, by which path, and what the filters said."""

    mailbox: str
    message_id: str
    placement: Placement
    folder: str | None = None
    arrived: datetime | None = None
    #: Seconds from the send to the arrival the recipient's server stamped.
    latency_s: float | None = None
    hops: tuple[Hop, ...] = ()
    auth: tuple[AuthCheck, ...] = ()
    spam: SpamVerdict | None = None
    bounce: Bounce | None = None
    #: How long the check looked, and in which folders (in order).
    waited_s: float = 0.0
    searched: tuple[str, ...] = ()
    #: The bounce mailbox searched, if any.
    bounce_mailbox: str | None = None
    #: Why the mailbox could not be searched (placement ``unchecked``).
    error: str = ""
    #: What kind of error that was: ``auth``, ``tls``, ``connect``, ``timeout``, ``protocol``.
    error_kind: str = ""

    @property
    def delivered(self) -> bool:
        return self.placement in (Placement.INBOX, Placement.OTHER)

    def auth_result(self, method: str) -> str | None:
        """The first result for ``method`` (``spf``, ``dkim``, ``dmarc``), or None."""
        return next((a.result for a in self.auth if a.method == method), None)

    def hops_table(self) -> list[dict[str, Any]]:
        """The Received chain as rows (hand it to ``pandas.DataFrame`` for a table)."""
        return [hop.as_dict() for hop in self.hops]

    def as_dict(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox,
            "message_id": self.message_id,
            "placement": self.placement.value,
            "folder": self.folder,
            "arrived": self.arrived.isoformat() if self.arrived else None,
            "latency_s": self.latency_s,
            "received": self.hops_table(),
            "authentication_results": [a.as_dict() for a in self.auth],
            "spam": self.spam.as_dict() if self.spam else None,
            "bounce": self.bounce.as_dict() if self.bounce else None,
            "waited_s": self.waited_s,
            "searched": list(self.searched),
            "bounce_mailbox": self.bounce_mailbox,
            "error": self.error,
        }

    def to_text(self) -> str:
        """The report as the command line prints it."""
        lines = [f"Delivery check ({self.mailbox}): {self.placement.value}"]
        if self.folder:
            lines.append(f"  folder: {self.folder}")
        if self.arrived:
            latency = f" (latency {self.latency_s:.1f} s)" if self.latency_s is not None else ""
            lines.append(f"  arrived: {self.arrived.isoformat()}{latency}")
        if self.hops:
            lines.append("  Received chain (oldest first):")
            for hop in self.hops:
                delay = f"+{hop.delay_s:.1f} s" if hop.delay_s is not None else "?"
                lines.append(
                    f"    {hop.index}. {hop.from_host or '?'} -> {hop.by_host or '?'}"
                    f" {hop.protocol} {delay}{' ' + hop.tls if hop.tls else ''}"
                )
        if self.auth:
            checks = ", ".join(f"{a.method}={a.result}" for a in self.auth)
            lines.append(f"  Authentication-Results: {checks}")
        if self.spam is not None:
            verdict = {True: "spam", False: "not spam", None: "no verdict"}[self.spam.flagged]
            score = f", score {self.spam.score}" if self.spam.score is not None else ""
            scl = f", SCL {self.spam.scl}" if self.spam.scl is not None else ""
            lines.append(f"  spam filter: {verdict}{score}{scl}")
        if self.bounce is not None:
            b = self.bounce
            lines.append(
                f"  bounce: {b.action} {b.status} for {b.final_recipient or '?'}"
                f"{': ' + b.diagnostic_code if b.diagnostic_code else ''}"
            )
        if self.placement is Placement.NOT_FOUND:
            lines.append(
                f"  searched {', '.join(self.searched) or 'nothing'} for {self.waited_s:.0f} s"
            )
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


# -- parsing -------------------------------------------------------------------------------------


def parse_message(raw: bytes) -> Message:
    import email
    from email import policy

    return email.message_from_bytes(raw, policy=policy.compat32)


def found_report(
    raw: bytes,
    *,
    mailbox: str,
    message_id: str,
    folder: str,
    placement: Placement,
    sent_at: datetime | None,
    internal_date: datetime | None = None,
    waited_s: float = 0.0,
    searched: Sequence[str] = (),
) -> DeliveryReport:
    """The report for the test message found in ``folder`` with these bytes.

    Arrival is the newest Received timestamp (stamped by the recipient's own server), else the
    mailbox's INTERNALDATE; latency is arrival minus ``sent_at``, never below 0. Both stamps
    have whole seconds only, so a latency under a second shows as 0 or 1 s.
    """
    message = parse_message(raw)
    hops = received_hops(message.get_all("Received") or (), _date(message.get("Date")))
    stamped = [h.timestamp for h in hops if h.timestamp is not None]
    arrived = stamped[-1] if stamped else internal_date
    latency = None
    if arrived is not None and sent_at is not None:
        latency = round(max((arrived - sent_at).total_seconds(), 0.0), 3)
    return DeliveryReport(
        mailbox=mailbox,
        message_id=message_id,
        placement=placement,
        folder=folder,
        arrived=arrived,
        latency_s=latency,
        hops=hops,
        auth=auth_results(message.get_all("Authentication-Results") or ()),
        spam=spam_verdict(message.items()),
        waited_s=round(waited_s, 3),
        searched=tuple(searched),
    )


def _date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        from email.utils import parsedate_to_datetime

        parsed = parsedate_to_datetime(_unfold(str(value)))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unfold(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


# "with Microsoft SMTP Server" is Exchange's protocol, three words long.
_RECEIVED_WORD = re.compile(r"(?i)(?:^|\s)(from|by|via|with|id|for)\s+(Microsoft SMTP Server|\S+)")
# Postfix: "using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384"; Exchange: "version=TLS1_2,
# cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"; Gmail: "version=TLS1_3 cipher=...".
_TLS = re.compile(
    r"(?i)(?<![A-Za-z0-9])(TLSv?1(?:[._][0-3])?|SSLv3)(?![A-Za-z0-9.])"
    r"(?:\s+with\s+cipher\s+|,?\s*cipher=)?([A-Z0-9_-]+(?<!_))?"
)


def _strip_comments(text: str) -> str:
    """``text`` without RFC 5322 comments (nested parentheses), which Received lines are full of."""
    out: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def received_hops(headers: Iterable[str], sent: datetime | None = None) -> tuple[Hop, ...]:
    """The ``Received`` headers (newest first, as in a message) as hops, oldest first.

    Each hop's delay is its timestamp minus the previous hop's; the first hop's is measured
    from the message's ``Date`` when ``sent`` is given. A clock that runs behind gives a
    negative delay, which is kept: it shows the skew instead of hiding it.
    """
    lines = [_unfold(str(h)) for h in headers]
    hops: list[Hop] = []
    previous = sent
    for index, line in enumerate(reversed(lines), 1):
        words, _, date_text = line.rpartition(";")
        if not _:
            words, date_text = line, ""
        stamp = _date(date_text)
        plain = _strip_comments(words)
        parts: dict[str, str] = {}
        for match in _RECEIVED_WORD.finditer(plain):
            parts.setdefault(match.group(1).lower(), match.group(2).strip("<>"))
        tls = _TLS.search(words)
        delay = None
        if stamp is not None and previous is not None:
            delay = round((stamp - previous).total_seconds(), 3)
        hops.append(
            Hop(
                index=index,
                from_host=parts.get("from", ""),
                by_host=parts.get("by", ""),
                protocol=parts.get("with", ""),
                timestamp=stamp,
                delay_s=delay,
                tls=" ".join(g for g in tls.groups() if g) if tls else "",
                queue_id=parts.get("id", "").rstrip(";"),
                raw=line,
            )
        )
        if stamp is not None:
            previous = stamp
    return tuple(hops)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    depth = 0
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth:
            depth -= 1
        if char == separator and not quoted and not depth:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


_METHOD = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z0-9_-]+)")
_PROPERTY = re.compile(r"([A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+|reason|action)\s*=\s*(\"[^\"]*\"|\S+)")
_COMMENT = re.compile(r"\(([^()]*)\)")


def auth_results(headers: Iterable[str]) -> tuple[AuthCheck, ...]:
    """Every method result of every ``Authentication-Results`` header, in header order.

    RFC 8601's ``authserv-id; method=result reason=... ptype.property=value ...``, plus
    Microsoft's form that has no authserv-id and separates with ``;`` without a space.
    """
    checks: list[AuthCheck] = []
    for header in headers:
        segments = _split_outside_quotes(_unfold(str(header)), ";")
        authserv = ""
        if segments and not _METHOD.match(segments[0]):
            authserv = _strip_comments(segments[0]).split()[0] if segments[0].strip() else ""
            segments = segments[1:]
        for segment in segments:
            match = _METHOD.match(segment)
            if match is None:
                continue  # "none", or a segment we cannot read
            method, result = match.group(1).lower(), match.group(2).lower()
            rest = segment[match.end() :]
            comments = " ".join(c.strip() for c in _COMMENT.findall(rest))
            properties: dict[str, str] = {}
            for key, value in _PROPERTY.findall(_strip_comments(rest)):
                properties.setdefault(key.lower(), value.strip('"'))
            checks.append(AuthCheck(method, result, properties, comments, authserv))
    return tuple(checks)


#: Headers spam filters add, by the filter's own names (case-insensitive).
SPAM_HEADERS = (
    "x-spam-status",
    "x-spam-flag",
    "x-spam-score",
    "x-spam-level",
    "x-spam",
    "x-spamd-result",
    "x-rspamd-score",
    "x-rspamd-action",
    "x-rspamd-server",
    "x-microsoft-antispam",
    "x-forefront-antispam-report",
    "x-ms-exchange-organization-scl",
    "x-ms-exchange-organization-pcl",
    "x-gm-spam",
)

_NUMBER = r"(-?\d+(?:\.\d+)?)"


def spam_verdict(items: Iterable[tuple[str, Any]]) -> SpamVerdict | None:
    """The spam filters' verdict from their headers, or None when no filter left one.

    SpamAssassin: ``X-Spam-Flag: YES``, ``X-Spam-Status: Yes, score=7.1 required=5.0``;
    Rspamd: ``X-Spam: Yes``, ``X-Spamd-Result: default: True [8.10 / 15.00]``,
    ``X-Rspamd-Score``; Microsoft: ``SCL:5`` in ``X-Forefront-Antispam-Report`` or
    ``X-MS-Exchange-Organization-SCL`` (5 and up is junk), ``SFV:SPM``.
    """
    found = [(name, _unfold(str(value))) for name, value in items if name.lower() in SPAM_HEADERS]
    if not found:
        return None
    flagged: bool | None = None
    score: float | None = None
    threshold: float | None = None
    scl: int | None = None

    def say(value: bool) -> None:
        nonlocal flagged
        flagged = bool(value or flagged)

    for name, value in found:
        key, lowered = name.lower(), value.lower()
        if key in ("x-spam-flag", "x-spam"):
            say(lowered.startswith("yes") or lowered.startswith("true"))
        elif key == "x-spam-status":
            say(lowered.startswith("yes"))
            if m := re.search(rf"(?i)\bscore={_NUMBER}", value):
                score = float(m.group(1))
            if m := re.search(rf"(?i)\brequired={_NUMBER}", value):
                threshold = float(m.group(1))
        elif key in ("x-spam-score", "x-rspamd-score"):
            if m := re.match(rf"\s*{_NUMBER}", value):
                score = float(m.group(1)) if score is None else score
        elif key == "x-spamd-result":
            if m := re.search(
                rf"(?i)default:\s*(true|false)\s*\[\s*{_NUMBER}\s*/\s*{_NUMBER}", value
            ):
                say(m.group(1).lower() == "true")
                score, threshold = float(m.group(2)), float(m.group(3))
        elif key == "x-rspamd-action":
            say(lowered in ("reject", "add header", "rewrite subject"))
        elif key in (
            "x-forefront-antispam-report",
            "x-ms-exchange-organization-scl",
            "x-microsoft-antispam",
        ):
            if m := re.search(r"(?i)(?:^|[;\s])SCL:\s*(-?\d+)", value) or (
                re.fullmatch(r"\s*(-?\d+)\s*", value) if key.endswith("-scl") else None
            ):
                scl = int(m.group(1))
                say(scl >= 5)
            if re.search(r"(?i)\bSFV:\s*(SPM|SKS|BLK)\b", value):
                say(True)
            elif re.search(r"(?i)\bSFV:\s*(NSPM|SKN|SFE)\b", value):
                say(False)
    headers: dict[str, str] = {}
    for name, value in found:
        headers.setdefault(name, value)
    return SpamVerdict(headers, flagged, score, threshold, scl)


# -- bounces -------------------------------------------------------------------------------------

_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    if value is None:
        return ""
    text = _unfold(str(value))
    # "rfc822; bob@example.com", "dns; mail.example.com", "smtp; 550 5.1.1 ..."
    kind, sep, rest = text.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else text


def bounce_of(raw: bytes, message_id: str) -> Bounce | None:
    """The notification in ``raw`` about the message ``message_id``, or None if it is not one.

    A standard DSN (``multipart/report; report-type=delivery-status``) is read field by field;
    the original Message-ID comes from its returned message or headers. A notification without
    that structure (some old servers') counts only if its text quotes the Message-ID, and its
    status is the first ``X.Y.Z`` code in it.
    """
    from email.message import Message

    message = parse_message(raw)
    wanted = message_id.strip()
    if not wanted:
        return None
    arrived = _date(message.get("Date"))
    subject = _unfold(str(message.get("Subject", "")))
    status_part: Message | None = None
    original_id = ""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            status_part = part
        elif content_type in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(first, Message) and first.get("Message-ID"):
                original_id = _unfold(str(first.get("Message-ID")))
        elif content_type in ("text/rfc822-headers", "message/global-headers"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                headers = parse_message(payload)
                if headers.get("Message-ID"):
                    original_id = _unfold(str(headers.get("Message-ID")))
    if status_part is not None:
        if original_id and original_id != wanted:
            return None
        if not original_id and wanted not in _text_of(message):
            return None
        blocks = [b for b in status_part.get_payload() if isinstance(b, Message)]
        per_message = blocks[0] if blocks else Message()
        recipients = [b for b in blocks[1:] if b.get("Action") or b.get("Status")]
        if not recipients:
            return None
        # A failed recipient says more than a delayed or delivered one.
        order = {"failed": 0, "delayed": 1}
        block = min(recipients, key=lambda b: order.get(_field(b, "Action").lower(), 2))
        return Bounce(
            action=_field(block, "Action").lower(),
            status=_field(block, "Status"),
            final_recipient=_field(block, "Final-Recipient"),
            diagnostic_code=_field(block, "Diagnostic-Code"),
            reporting_mta=_field(per_message, "Reporting-MTA"),
            remote_mta=_field(block, "Remote-MTA"),
            original_message_id=original_id or wanted,
            arrived=arrived,
            subject=subject,
        )
    text = _text_of(message)
    if wanted not in text:
        return None
    sender = str(message.get("From", "")).lower()
    looks_like_bounce = any(w in sender for w in ("mailer-daemon", "postmaster")) or any(
        w in subject.lower() for w in ("undeliver", "delivery status", "returned mail", "failure")
    )
    if not looks_like_bounce:
        return None
    status = _STATUS.search(text)
    code = status.group(1) if status else ""
    return Bounce(
        action="delayed" if code.startswith("4.") else "failed",
        status=code,
        original_message_id=wanted,
        arrived=arrived,
        subject=subject,
        diagnostic_code=_diagnostic_line(text, code),
    )


def _text_of(message: Message) -> str:
    """All text parts and returned headers of ``message``, decoded, for a Message-ID search."""
    chunks: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            chunks.append(payload.decode("utf-8", "replace"))
        elif isinstance(part.get_payload(), list):  # message/* parts hold messages
            chunks.extend(str(m) for m in part.get_payload())
    return "\n".join(chunks)


def _diagnostic_line(text: str, code: str) -> str:
    if not code:
        return ""
    for line in text.splitlines():
        if code in line:
            return line.strip()[:300]
    return ""


def junk_folders(folders: Iterable[tuple[Sequence[bytes | str], str]]) -> list[str]:
    """The spam folders among ``(flags, name)`` pairs, as IMAP LIST returns them.

    Folders flagged ``\\Junk`` (RFC 6154 SPECIAL-USE) come first; then the usual names, in the
    order of :data:`JUNK_NAMES`, matched without regard to case.
    """
    listed = [(tuple(_flag(f) for f in flags), name) for flags, name in folders]
    special = [name for flags, name in listed if "\\junk" in flags]
    by_name = {name.casefold(): name for _, name in listed}
    named = [by_name[n.casefold()] for n in JUNK_NAMES if n.casefold() in by_name]
    return list(dict.fromkeys([*special, *named]))


def _flag(value: bytes | str) -> str:
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else value).lower()
