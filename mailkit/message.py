"""The test message: a multi-language Unicode body, a UTF-8 subject and honest headers.

It is built to show what a real message from the application will look like — several scripts
in subject and body prove the path keeps UTF-8 intact, the priority headers show how clients
will flag it, and the Message-ID lets an admin find it in the server's logs.
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid

from mailkit.fields import Priority, check_address
from mailkit.outcome import Failure, Phase, Signal

#: English, Spanish, Chinese (traditional and simplified) and German, the lines application
#: test tools have long sent, then more scripts (right-to-left, Indic, Thai, emoji) so every
#: common one is exercised.
TEST_BODY_LINES: tuple[tuple[str, str], ...] = (
    ("English", "This is a test message from the mailkit SMTP test."),
    ("Spanish", "Este es un mensaje de prueba."),
    ("Chinese", "這是一條測試消息 / 这是一条测试消息"),
    ("German", "Dies ist eine Testnachricht."),
    ("French", "Ceci est un message de test."),
    ("Russian", "Это тестовое сообщение."),
    ("Greek", "Αυτό είναι ένα δοκιμαστικό μήνυμα."),
    ("Arabic", "هذه رسالة اختبار."),
    ("Hebrew", "זוהי הודעת בדיקה."),
    ("Hindi", "यह एक परीक्षण संदेश है।"),
    ("Japanese", "これはテストメッセージです。"),
    ("Korean", "이것은 테스트 메시지입니다."),
    ("Thai", "นี่คือข้อความทดสอบ"),
    ("Emoji", "✉️ ✅"),
)

#: Short enough to fit one encoded-word: CPython drops the space between folded encoded-words.
TEST_SUBJECT = "mailkit test — Prueba, 测试, Prüfung"

#: The subject of the test messages built in this context, when not :data:`TEST_SUBJECT`: a
#: route test sets its rendered subject template for the one send it makes
#: (:func:`mailkit.testsend.send_route_test_async`), so no sender needs to know about routes.
MESSAGE_SUBJECT: ContextVar[str | None] = ContextVar("mailkit_message_subject", default=None)


@dataclass(frozen=True)
class TestMessage:
    """The message and what the envelope needs to know about it."""

    message: EmailMessage
    sender: str
    recipients: tuple[str, ...]
    #: True when an address needs SMTPUTF8 (a non-ASCII local part).
    smtputf8: bool

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def as_bytes(self) -> bytes:
        """The message as sent: CRLF line ends; UTF-8 headers only when SMTPUTF8 is used."""
        policy = SMTPUTF8 if self.smtputf8 else SMTP
        return self.message.as_bytes(policy=policy)


def _needs_smtputf8(address: str) -> bool:
    local, _, _ = address.rpartition("@")
    return not local.isascii()


def _envelope_address(address: str) -> str:
    """The domain in A-labels (so no SMTPUTF8 is needed just for an IDN domain)."""
    local, _, domain = address.rpartition("@")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


@functools.lru_cache(maxsize=8)
def _content(note: str | None) -> EmailMessage:
    """The body, encoded once per process: every message of a bulk run carries the same text,
    and encoding it (quoted-printable over many scripts) is a good part of building one.
    Header objects and the encoded text are immutable, so messages share them safely."""
    lines = [f"{language} - {text}" for language, text in TEST_BODY_LINES]
    if note:
        lines += ["", note]
    lines += ["", "If you can read every line above, this mail path keeps Unicode intact."]
    content = EmailMessage()
    content.set_content("\n".join(lines) + "\n", charset="utf-8", cte="quoted-printable")
    return content


def checked_test_message(
    *,
    sender: str | None,
    recipients: list[str] | tuple[str, ...],
    sender_name: str | None = None,
    priority: Priority = Priority.NORMAL,
    subject: str | None = None,
) -> TestMessage | Failure:
    """:func:`build_test_message`, or the setup failure every sender reports before sending:
    no From address (``from_address``), or an address that is none (``address: ...``)."""
    if not sender:
        return Failure(Phase.SETUP, Signal.MISSING, detail="from_address")
    try:
        return build_test_message(
            sender=sender,
            recipients=recipients,
            sender_name=sender_name,
            priority=priority,
            subject=subject,
        )
    except ValueError as exc:
        return Failure(Phase.SETUP, Signal.MISSING, detail=f"address: {exc}")


def build_test_message(
    *,
    sender: str,
    recipients: list[str] | tuple[str, ...],
    sender_name: str | None = None,
    priority: Priority = Priority.NORMAL,
    subject: str | None = None,
    now: datetime | None = None,
    note: str | None = None,
) -> TestMessage:
    """Build the test message from ``sender`` to ``recipients`` (validated addresses).

    ``subject`` defaults to the context's :data:`MESSAGE_SUBJECT`, else :data:`TEST_SUBJECT`."""
    subject = subject or MESSAGE_SUBJECT.get() or TEST_SUBJECT
    sender = check_address(sender)
    recipients = tuple(check_address(r) for r in recipients)
    if not recipients:
        raise ValueError("the test message needs at least one recipient; fill in Mail To")
    smtputf8 = any(_needs_smtputf8(a) for a in (sender, *recipients))
    message = EmailMessage()
    envelope_domain = _envelope_address(sender).rpartition("@")[2]
    message["From"] = Address(display_name=sender_name or "", addr_spec=sender)
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid("mailkit", domain=envelope_domain)
    for name, value in priority.headers().items():
        message[name] = value
    message["X-Mailer"] = "mailkit"
    content = _content(note)
    for name, value in content.items():  # parsed header objects: taken as they are
        message[name] = value
    message.set_payload(content.get_payload())
    return TestMessage(
        message=message,
        sender=sender if smtputf8 else _envelope_address(sender),
        recipients=tuple(r if smtputf8 else _envelope_address(r) for r in recipients),
        smtputf8=smtputf8,
    )
