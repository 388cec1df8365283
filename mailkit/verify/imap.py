"""Search a mailbox over IMAPS for the test message, and the sender's mailbox for its bounce.

The adapter half of the delivery check: imapclient does the IMAP, :mod:`mailkit.delivery`
decides what the bytes mean. One sign-in per mailbox; each round selects the inbox, then the
spam folders (SPECIAL-USE ``\\Junk`` first, then the usual names), and searches by the test
message's Message-ID (``UID SEARCH HEADER Message-ID``), until the message or a bounce for it
is found or the time is up.

The password is a :class:`~mailkit.secret.Secret` revealed only for LOGIN. imapclient logs
every command at DEBUG and masks LOGIN itself; a filter that scrubs the password in every
encoding is attached to its loggers for the duration of a check as well, so a notebook that
turns on DEBUG logging to chase a problem cannot print it, whatever imapclient changes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mailkit.delivery import (
    Bounce,
    DeliveryReport,
    MailboxSpec,
    Placement,
    VerifySpec,
    bounce_of,
    found_report,
    junk_folders,
)
from mailkit.transcript import SecretScrubber

if TYPE_CHECKING:
    from imapclient import IMAPClient

__all__ = ["IMAP_LOGGERS", "ImapProblem", "verify_imap"]

#: imapclient's loggers: commands (``imapclient.imapclient``) and imaplib's dialog.
IMAP_LOGGERS = ("imapclient", "imapclient.imapclient", "imapclient.imaplib", "imapclient.util")
#: How many of the newest candidate bounces are read per round.
_BOUNCES_READ = 5


@dataclass(frozen=True)
class ImapProblem(Exception):
    """The mailbox could not be searched; ``kind`` is auth, tls, connect, timeout or protocol."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def verify_imap(
    spec: VerifySpec,
    message_id: str,
    *,
    sent_at: datetime | None,
    sender: str | None = None,
    scrubber: SecretScrubber | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Look for ``message_id`` until it is found, bounces, or ``spec.timeout`` passes.

    Blocking (run it in a thread from async code). Never raises for what the mailbox does: a
    refused sign-in, an untrusted certificate or a dropped connection come back as a report
    with placement ``unchecked`` and the reason, scrubbed of the passwords.
    """
    scrub = scrubber or SecretScrubber()
    for box in (spec.mailbox, spec.sender_mailbox):
        if box is not None and box.password is not None:
            scrub.add(box.password)
    mailbox = spec.mailbox
    bounce_box = spec.bounce_mailbox(sender)
    started = clock()
    deadline = started + spec.timeout
    searched: list[str] = []
    with _scrubbed_logs(scrub):
        try:
            with _signed_in(mailbox, spec.timeout) as client:
                folders = ["INBOX", *junk_folders(_listed(client))]
                searched = folders
                with _maybe_signed_in(bounce_box, mailbox, client, spec.timeout) as bounce_client:
                    while True:
                        for folder in folders:
                            hit = _find(client, folder, message_id)
                            if hit is not None:
                                raw, internal = hit
                                placement = Placement.INBOX if folder == "INBOX" else Placement.JUNK
                                return found_report(
                                    raw,
                                    mailbox=mailbox.label,
                                    message_id=message_id,
                                    folder=folder,
                                    placement=placement,
                                    sent_at=sent_at,
                                    internal_date=internal,
                                    waited_s=clock() - started,
                                    searched=folders,
                                )
                        if bounce_client is not None and bounce_box is not None:
                            bounce = _find_bounce(bounce_client, message_id)
                            if bounce is not None:
                                return DeliveryReport(
                                    mailbox=mailbox.label,
                                    message_id=message_id,
                                    placement=(
                                        Placement.BOUNCED if bounce.permanent else Placement.DELAYED
                                    ),
                                    bounce=bounce,
                                    waited_s=round(clock() - started, 3),
                                    searched=tuple(folders),
                                    bounce_mailbox=bounce_box.label,
                                )
                        now = clock()
                        if now >= deadline:
                            break
                        sleep(min(spec.poll_interval, deadline - now))
        except ImapProblem as problem:
            return DeliveryReport(
                mailbox=mailbox.label,
                message_id=message_id,
                placement=Placement.UNCHECKED,
                waited_s=round(clock() - started, 3),
                searched=tuple(searched),
                error=scrub(problem.detail),
                error_kind=problem.kind,
            )
    return DeliveryReport(
        mailbox=mailbox.label,
        message_id=message_id,
        placement=Placement.NOT_FOUND,
        waited_s=round(clock() - started, 3),
        searched=tuple(searched),
        bounce_mailbox=bounce_box.label if bounce_box is not None else None,
    )


# -- IMAP ----------------------------------------------------------------------------------------


def _context(mailbox: MailboxSpec) -> ssl.SSLContext:
    if mailbox.ca_file:
        try:
            return ssl.create_default_context(cafile=mailbox.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ImapProblem(
                "tls", f"the CA file {mailbox.ca_file} cannot be read: {exc}"
            ) from None
    return ssl.create_default_context()


@contextmanager
def _signed_in(mailbox: MailboxSpec, timeout: float) -> Iterator[IMAPClient]:
    """A signed-in client for ``mailbox``; every failure becomes an :class:`ImapProblem`."""
    from imapclient import IMAPClient  # the delivery check's library: loaded only for one
    from imapclient.exceptions import IMAPClientError, LoginError

    if mailbox.password is None or not mailbox.password.reveal():
        raise ImapProblem("auth", f"no password for {mailbox.label} was given")
    where = f"{mailbox.host}:{mailbox.port}"
    try:
        client = IMAPClient(
            mailbox.host,
            port=mailbox.port,
            ssl=True,
            ssl_context=_context(mailbox),
            timeout=min(timeout, 30.0),
        )
    except ssl.SSLCertVerificationError as exc:
        raise ImapProblem(
            "tls", f"the certificate of {where} is not trusted: {exc.verify_message}"
        ) from None
    except ssl.SSLError as exc:
        raise ImapProblem("tls", f"TLS with {where} failed: {exc.reason or exc}") from None
    except ConnectionRefusedError:
        raise ImapProblem("connect", f"{where} refused the connection") from None
    except TimeoutError:
        raise ImapProblem("timeout", f"{where} did not answer in time") from None
    except socket.gaierror as exc:
        raise ImapProblem("connect", f"{mailbox.host} does not resolve: {exc.strerror}") from None
    except OSError as exc:
        raise ImapProblem("connect", f"cannot connect to {where}: {exc.strerror or exc}") from None
    try:
        try:
            try:
                client.login(mailbox.username, mailbox.password.reveal())
            except UnicodeEncodeError:
                # LOGIN carries ASCII only; AUTHENTICATE PLAIN carries UTF-8 (RFC 4616).
                client.plain_login(mailbox.username, mailbox.password.reveal())
        except LoginError as exc:
            raise ImapProblem(
                "auth", f"{where} refused the sign-in of {mailbox.username}: {_said(exc)}"
            ) from None
        yield client
    except IMAPClientError as exc:
        raise ImapProblem("protocol", f"{where} answered: {_said(exc)}") from None
    except TimeoutError:
        raise ImapProblem("timeout", f"{where} stopped answering") from None
    except OSError as exc:
        raise ImapProblem("connect", f"the connection to {where} broke: {exc}") from None
    finally:
        try:
            client.logout()
        except Exception:  # a failed goodbye changes nothing; close the socket instead
            with contextlib.suppress(Exception):
                client.shutdown()


@contextmanager
def _maybe_signed_in(
    box: MailboxSpec | None, main: MailboxSpec, client: IMAPClient, timeout: float
) -> Iterator[IMAPClient | None]:
    """The client for the bounce mailbox: the same one when it is the same mailbox."""
    if box is None:
        yield None
    elif replace(box, password=None) == replace(main, password=None):
        yield client
    else:
        with _signed_in(box, timeout) as other:
            yield other


def _said(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text[:300]


def _listed(client: IMAPClient) -> list[tuple[tuple[bytes | str, ...], str]]:
    return [(tuple(flags), str(name)) for flags, _delimiter, name in client.list_folders()]


def _find(client: IMAPClient, folder: str, message_id: str) -> tuple[bytes, datetime | None] | None:
    from imapclient.exceptions import IMAPClientError

    try:
        client.select_folder(folder, readonly=True)
    except IMAPClientError:
        return None  # a listed folder that cannot be selected (\Noselect): nothing in it
    uids = client.search(["HEADER", "Message-ID", message_id])
    if not uids:
        return None
    fetched = client.fetch(sorted(uids)[-1:], [b"BODY.PEEK[]", b"INTERNALDATE"])
    for data in fetched.values():
        raw = data.get(b"BODY[]")
        internal = data.get(b"INTERNALDATE")
        if isinstance(raw, bytes):
            return raw, _aware(internal)
    return None


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.astimezone(UTC)


def _find_bounce(client: IMAPClient, message_id: str) -> Bounce | None:
    """A DSN about ``message_id`` in the inbox (bounces are not filed as spam by Postfix or
    Exchange; a server that does so shows the mail as not found)."""
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["TEXT", message_id])
    for uid in sorted(uids, reverse=True)[:_BOUNCES_READ]:
        data = client.fetch([uid], [b"BODY.PEEK[]"]).get(uid, {})
        raw = data.get(b"BODY[]")
        if isinstance(raw, bytes):
            bounce = bounce_of(raw, message_id)
            if bounce is not None:
                return bounce
    return None


# -- logs ----------------------------------------------------------------------------------------


class _ScrubFilter(logging.Filter):
    """Replaces each record's message with its scrubbed rendering (args folded in)."""

    def __init__(self, scrub: SecretScrubber) -> None:
        super().__init__("mailkit.verify")
        self._scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted says nothing
            return False
        record.msg = self._scrub(message)
        record.args = None
        return True


@contextmanager
def _scrubbed_logs(scrub: SecretScrubber) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in IMAP_LOGGERS]
    guard = _ScrubFilter(scrub)
    for logger in loggers:
        logger.addFilter(guard)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(guard)
