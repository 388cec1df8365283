"""SMTP servers for tests: a well-behaved aiosmtpd server and a library of misbehaving ones.

Everything runs on one asyncio loop in a daemon thread (:class:`ServerLoop`), so a test's own
client - blocking ``smtplib`` or an ``asyncio.run`` around aiosmtplib - never shares a loop with
a server. Listening sockets are bound by us on ``127.0.0.1:0`` and handed to asyncio: no free-port
race, and nothing depends on aiosmtpd's ``Controller``.

* :func:`make_tls_material` - a trusted CA and certificates for the good, wrong-name, expired and
  untrusted cases, generated at run time.
* :class:`MailServer` - aiosmtpd on three listeners (STARTTLS, implicit TLS, plaintext) with
  PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and NTLM, PIPELINING advertised, recording every message.
* :class:`Script` and its actions - a tiny scripted SMTP server: defaults behave, and a scenario
  overrides the replies to a few verbs (``on={"RCPT": [Reply("451 ...")]}``).
* :data:`SCENARIOS` - the named misbehaviours, each with the :class:`Expectation` (phase, signal,
  cause in :mod:`mailkit.outcome` words) a correct sender and diagnosis should arrive at.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import datetime as dt
import hashlib
import hmac
import inspect
import os
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, TypeVar

import spnego
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session
from spnego.exceptions import SpnegoError

from mailkit.demo import scenarios as failures
from mailkit.demo.chunking import ChunkedEnvelope, ChunkingSMTP
from mailkit.demo.scenarios import (
    GMAIL_GREETING,
    GMAIL_HELLO,
    MICROSOFT_GREETING,
    MICROSOFT_HELLO,
    XOAUTH2_ERROR_CHALLENGE,
    Failure,
    QuietSession,
    SubmissionHandler,
)
from mailkit.outcome import Cause, Phase, Signal
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.settings import AuthType, Security

T = TypeVar("T")

HOST = "127.0.0.1"
#: A name that cannot resolve (RFC 2606 reserves ``.invalid``).
UNRESOLVABLE_HOST = "nonexistent.invalid"


# --------------------------------------------------------------------------------------------
# Credentials


@dataclass(frozen=True)
class Credentials:
    """The canary login a test sends; a leak shows up as one of :meth:`leak_forms`."""

    user: str = "alice@example.test"
    password: str = field(default="canary-Pw-5x!Q", repr=False)
    token: str = field(default="canary-Tok-9zZ", repr=False)

    def leak_forms(self) -> list[bytes]:
        """The password and token as a dialog or log could carry them: in clear, as hex, and
        as base64 (standard and URL-safe) at any alignment inside a longer blob - AUTH LOGIN,
        AUTH PLAIN and XOAUTH2 initial responses included."""
        forms: list[bytes] = []
        for secret in (self.password.encode(), self.token.encode()):
            forms += [secret, secret.hex().encode()]
            for offset in range(3):
                # The characters that depend on the secret alone, wherever it starts.
                start, stop = -(-8 * offset // 6), 8 * (offset + len(secret)) // 6
                padded = b"\0" * offset + secret
                for encode in (base64.b64encode, base64.urlsafe_b64encode):
                    forms.append(encode(padded)[start:stop])
        return forms

    def leaks_in(self, data: bytes | str) -> list[bytes]:
        """The leak forms found in ``data`` (empty when it is clean)."""
        blob = data.encode() if isinstance(data, str) else data
        return [form for form in self.leak_forms() if form in blob]


# --------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class CertFiles:
    """A server certificate (chain PEM) and its key on disk, with the leaf's SHA-256 pin."""

    cert_file: Path
    key_file: Path
    #: SHA-256 of the leaf certificate's DER encoding, lower-case hex without separators.
    sha256: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass(frozen=True)
class TLSMaterial:
    """Everything TLS the servers and a client need; the client trusts ``ca_file`` only."""

    ca_file: Path
    #: ``localhost`` and ``127.0.0.1`` (IP SAN), issued by the trusted CA.
    server: CertFiles
    #: ``mail.wrong.example`` only, same trusted CA.
    wrong_host: CertFiles
    #: ``localhost`` and ``127.0.0.1``, trusted CA, ``notAfter`` yesterday.
    expired: CertFiles
    #: ``localhost`` and ``127.0.0.1``, issued by a second CA the client does not trust.
    untrusted: CertFiles
    #: That second CA, for a test that shows trusting it fixes the failure.
    untrusted_ca_file: Path

    @property
    def pin_sha256(self) -> str:
        return self.server.sha256

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the test CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def _write_leaf(directory: Path, name: str, leaf: trustme.LeafCert) -> CertFiles:
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    leaf.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode("ascii"))
    return CertFiles(cert_file, key_file, hashlib.sha256(der).hexdigest())


def make_tls_material(directory: Path) -> TLSMaterial:
    """Generate fresh CAs and certificates under ``directory`` (keys never leave the run)."""
    ca, other_ca = trustme.CA(), trustme.CA(organization_name="Untrusted test CA")
    ca_file, untrusted_ca_file = directory / "ca.pem", directory / "untrusted-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other_ca.cert_pem.write_to_path(str(untrusted_ca_file))
    now = dt.datetime.now(dt.UTC)
    expired = ca.issue_cert(
        "localhost",
        HOST,
        not_before=now - dt.timedelta(days=90),
        not_after=now - dt.timedelta(days=1),
    )
    return TLSMaterial(
        ca_file=ca_file,
        server=_write_leaf(directory, "server", ca.issue_cert("localhost", HOST)),
        wrong_host=_write_leaf(directory, "wrong-host", ca.issue_cert("mail.wrong.example")),
        expired=_write_leaf(directory, "expired", expired),
        untrusted=_write_leaf(directory, "untrusted", other_ca.issue_cert("localhost", HOST)),
        untrusted_ca_file=untrusted_ca_file,
    )


# --------------------------------------------------------------------------------------------
# The loop every server runs on


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free 127.0.0.1 port (asyncio takes it over).

    ``proto`` must say TCP: asyncio sets ``TCP_NODELAY`` only on sockets whose ``proto`` is
    ``IPPROTO_TCP``, and accepted sockets inherit it. Without it, multi-line and pipelined
    replies stall ~40 ms on Nagle + delayed ACK, which would spoil round-trip measurements.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((HOST, 0))
    sock.listen(64)
    return sock


def refusing_socket() -> socket.socket:
    """A socket bound to a free port but not listening: connections to it are refused, and
    while it stays open no other server can take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    return sock


class ServerLoop:
    """An asyncio loop in a daemon thread; the test thread hands it coroutines."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="smtpd-servers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel whatever still runs, then stop and close the loop."""
        if self.loop.is_closed():
            return
        self.call(self._cancel_everything())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _cancel_everything(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.loop.shutdown_asyncgens()


# --------------------------------------------------------------------------------------------
# The good server: aiosmtpd


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the good server accepted."""

    listener: str  # "starttls" | "tls" | "plain"
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # as received after dot-unstuffing, CRLF line ends
    smtputf8: bool  # MAIL FROM carried SMTPUTF8
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    tls: bool
    auth_user: str | None
    auth_mechanism: str | None
    #: The BDAT chunk sizes the message came in (empty: it came with DATA).
    chunks: tuple[int, ...] = ()

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass(frozen=True)
class AuthAttempt:
    """One AUTH exchange the good server finished (successfully or not)."""

    listener: str
    mechanism: str
    user: str | None
    success: bool


@dataclass
class ConnectionLog:
    """Bytes one client connection sent, in the chunks they arrived in (``tls`` per chunk)."""

    listener: str
    chunks: list[tuple[bool, bytes]] = field(default_factory=list)

    def data(self, *, tls: bool | None = None) -> bytes:
        return b"".join(chunk for on_tls, chunk in self.chunks if tls is None or on_tls is tls)

    def lines(self, *, tls: bool | None = None) -> list[bytes]:
        return self.data(tls=tls).splitlines()


_AUTH_LINE_LIMIT = 16384


@contextlib.contextmanager
def _ntlm_user_file(path: Path) -> Iterator[None]:
    """Point pyspnego's acceptor at our credential file only while it runs, so a client-side
    NTLM context in the test process never finds the canary password through the env var."""
    old = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = old


class _RecordingSMTP(ChunkingSMTP):
    """aiosmtpd's SMTP plus: which listener, what the client sent, long AUTH lines."""

    #: aiosmtpd sizes its StreamReader from this: NTLM and real OAuth tokens need long lines.
    line_length_limit = _AUTH_LINE_LIMIT

    def __init__(self, handler: _Handler, *, listener: str, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        # Back to RFC 5321's limit for message lines (the reader keeps the larger one).
        self.line_length_limit = 1001
        # An instance dict: aiosmtpd's class-level one is shared by every SMTP object.
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit, {"AUTH": _AUTH_LINE_LIMIT}
        )
        self.listener = listener
        self.auth_mechanism: str | None = None
        self.mail_server = handler.server
        self.log: ConnectionLog | None = None

    def _create_session(self) -> Session:
        return QuietSession(self.loop)

    @property
    def on_tls(self) -> bool:
        return (
            self.transport is not None and self.transport.get_extra_info("ssl_object") is not None
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.log is None:  # called again after STARTTLS with the TLS transport
            self.log = ConnectionLog(self.listener)
            self.mail_server.connections.append(self.log)
            self.mail_server._live.add(self)
        else:
            self.auth_mechanism = None  # RFC 3207: forget everything from before TLS
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.mail_server._live.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.log is not None:
            self.log.chunks.append((self.on_tls, data))
        super().data_received(data)


class _Handler(SubmissionHandler):
    """aiosmtpd handler: hooks and the custom AUTH mechanisms of :class:`MailServer`.

    CRAM-MD5 and XOAUTH2 are the demo server's own (:mod:`mailkit.demo.scenarios`); this class
    says who signs in (the canary login) and records every attempt.
    """

    def __init__(self, server: MailServer) -> None:
        self.server = server

    def _record(self, smtp: _RecordingSMTP, mechanism: str, user: str | None, ok: bool) -> None:
        self.server.auth_log.append(AuthAttempt(smtp.listener, mechanism, user, ok))
        if ok:
            smtp.auth_mechanism = mechanism

    def password_for(self, user: str) -> bytes | None:
        return self.server.password.encode() if user == self.server.user else None

    def bearer_ok(self, user: str, bearer: bytes) -> bool:
        expected = b"Bearer " + self.server.token.encode()
        return user == self.server.user and hmac.compare_digest(bearer, expected)

    def sign_in_verdict(
        self,
        server: SMTP,
        mechanism: str,
        user: str,
        ok: bool,
        *,
        refusal: Failure | None = None,
    ) -> AuthResult:
        assert isinstance(server, _RecordingSMTP)
        self._record(server, mechanism, user, ok)
        return super().sign_in_verdict(server, mechanism, user, ok, refusal=refusal)

    def authenticate(
        self, smtp: _RecordingSMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """PLAIN and LOGIN (aiosmtpd decodes them) check the canary login here."""
        assert isinstance(auth_data, LoginPassword)
        user = auth_data.login.decode("utf-8", "replace")
        ok = user == self.server.user and hmac.compare_digest(
            auth_data.password, self.server.password.encode()
        )
        return self.sign_in_verdict(smtp, mechanism, user, ok)

    async def auth_NTLM(self, smtp: _RecordingSMTP, args: list[str]) -> AuthResult:
        """NTLM (MS-SMTPNTLM) with a pyspnego acceptor; initial response optional."""
        with _ntlm_user_file(self.server.ntlm_user_file):
            acceptor = spnego.server(protocol="ntlm")
        if len(args) > 1:
            try:
                negotiate = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await smtp.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            answer = await smtp.challenge_auth(b"", encode_to_b64=False)
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            negotiate = answer
        try:
            challenge = acceptor.step(negotiate)
        except SpnegoError:
            challenge = None
        if challenge is None:
            self._record(smtp, "NTLM", None, False)
            return AuthResult(success=False, handled=False)
        authenticate = await smtp.challenge_auth(challenge)
        if not isinstance(authenticate, bytes):
            return AuthResult(success=False, handled=True)
        try:
            with _ntlm_user_file(self.server.ntlm_user_file):
                acceptor.step(authenticate)
            ok = bool(acceptor.complete)
        except SpnegoError:
            ok = False
        user = str(acceptor.client_principal) if ok else None
        self._record(smtp, "NTLM", user, ok)
        return AuthResult(success=ok, handled=False, auth_data=user)

    async def handle_MAIL(
        self, smtp: _RecordingSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.server.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, smtp: _RecordingSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp: _RecordingSMTP, session: Any, envelope: Any) -> str:
        self.server.messages.append(
            ReceivedMessage(
                listener=smtp.listener,
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=bytes(envelope.original_content),
                smtputf8=bool(envelope.smtp_utf8),
                mail_options=tuple(envelope.mail_options),
                rcpt_options=tuple(envelope.rcpt_options),
                tls=smtp.on_tls,
                auth_user=session.auth_data if session.authenticated else None,
                auth_mechanism=smtp.auth_mechanism if session.authenticated else None,
                chunks=tuple(envelope.chunks) if isinstance(envelope, ChunkedEnvelope) else (),
            )
        )
        return f"250 2.0.0 OK: queued as MK{len(self.server.messages):04d}"


class MailServer:
    """A well-behaved submission server on three listeners, recording what it receives.

    ``starttls_port``: STARTTLS required before MAIL and AUTH (AUTH advertised only after it).
    ``tls_port``: implicit TLS. ``plain_port``: no TLS at all; AUTH is advertised and accepted
    there only while ``plain_auth_allowed`` is true. ``require_auth`` makes MAIL answer 530
    until the client authenticated. ``chunking`` offers RFC 3030 BDAT (after TLS where STARTTLS
    is required). The flags are read per connection and reset by :meth:`reset`.
    """

    host = HOST
    hostname = "localhost"

    def __init__(
        self, loop: ServerLoop, tls: TLSMaterial, credentials: Credentials, directory: Path
    ) -> None:
        self._loop = loop
        self.tls_material = tls
        self.credentials = credentials
        self.ca_file = tls.ca_file
        self.pin_sha256 = tls.pin_sha256
        self.user, self.password, self.token = (
            credentials.user,
            credentials.password,
            credentials.token,
        )
        self.ntlm_user_file = directory / "ntlm-users"
        self.ntlm_user_file.write_text(f":{self.user}:{self.password}\n")
        self.messages: list[ReceivedMessage] = []
        self.auth_log: list[AuthAttempt] = []
        self.connections: list[ConnectionLog] = []
        self.plain_auth_allowed = False
        self.require_auth = False
        self.chunking = False
        self._live: set[_RecordingSMTP] = set()
        self._servers: list[asyncio.Server] = []
        self._handler = _Handler(self)
        self._context = tls.server.server_context()
        self.starttls_port = self.tls_port = self.plain_port = 0

    @property
    def auth_mechanisms_used(self) -> list[str]:
        """Mechanisms of the successful AUTH exchanges, in order."""
        return [attempt.mechanism for attempt in self.auth_log if attempt.success]

    def reset(self) -> None:
        self.messages.clear()
        self.auth_log.clear()
        self.connections.clear()
        self.plain_auth_allowed = False
        self.require_auth = False
        self.chunking = False

    def _smtp(self, listener: str) -> _RecordingSMTP:
        per_listener: dict[str, dict[str, Any]] = {
            "starttls": {"tls_context": self._context, "require_starttls": True},
            "tls": {"auth_require_tls": False},
            "plain": {"auth_require_tls": not self.plain_auth_allowed},
        }
        options = per_listener[listener]
        return _RecordingSMTP(
            self._handler,
            listener=listener,
            hostname=self.hostname,
            ident="mailkit test server",
            enable_SMTPUTF8=True,
            authenticator=self._handler.authenticate,
            chunking=self.chunking,
            timeout=60,
            loop=self._loop.loop,
            **options,
        )

    def start(self) -> None:
        self._loop.call(self._start())

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        ports = []
        for listener, context in (
            ("starttls", None),
            ("tls", self._context),
            ("plain", None),
        ):
            sock = listening_socket()
            ports.append(sock.getsockname()[1])
            server = await loop.create_server(
                lambda listener=listener: self._smtp(listener), sock=sock, ssl=context
            )
            self._servers.append(server)
        self.starttls_port, self.tls_port, self.plain_port = ports

    def stop(self) -> None:
        self._loop.call(self._stop())

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for smtp in list(self._live):
            if isinstance(smtp.transport, asyncio.Transport):
                smtp.transport.abort()
        await asyncio.sleep(0)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


# --------------------------------------------------------------------------------------------
# The scripted server engine


class _Hangup(Exception):
    """End the connection: the client left, went idle, or the script closes it."""


class _Stop(Exception):
    """Skip the rest of this command's actions (the reply is already out)."""


class Action:
    """One step of a scripted reply; :meth:`run` works on the connection."""

    async def run(self, conn: _Conn) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Reply(Action):
    """Send complete SMTP lines; ``text`` separates them with ``\\n``."""

    text: str

    async def run(self, conn: _Conn) -> None:
        await conn.send("".join(f"{line}\r\n" for line in self.text.split("\n")).encode())


@dataclass(frozen=True)
class Raw(Action):
    """Send bytes exactly as given, in one write."""

    data: bytes

    async def run(self, conn: _Conn) -> None:
        await conn.send(self.data)


@dataclass(frozen=True)
class StartTLS(Action):
    """The server side of a TLS handshake: after writing ``ready`` (``220 ...`` for STARTTLS;
    nothing for implicit TLS) in one write. Reading is paused first, so the client's
    ClientHello can only reach the TLS layer; plaintext the client sent before ``ready`` is
    dropped (RFC 3207 4.2) and kept in ``plaintext_after_starttls``. A failed handshake is
    recorded in ``tls_errors`` and ends the connection."""

    context: ssl.SSLContext
    ready: bytes = b""

    async def run(self, conn: _Conn) -> None:
        await conn.start_tls(self.context, self.ready)


@dataclass(frozen=True)
class Hang(Action):
    """Never answer: keep reading (and recording) until the client leaves or ``limit`` s pass."""

    limit: float | None = None

    async def run(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.limit or conn.script.hang_limit)
        while (remaining := deadline - loop.time()) > 0:
            await conn.read_line(timeout=remaining)
        raise _Hangup("hang limit reached")


@dataclass(frozen=True)
class Close(Action):
    """Close the connection (``abort``: at once, with a TCP reset where the kernel sends one)."""

    abort: bool = False

    async def run(self, conn: _Conn) -> None:
        if self.abort:
            conn.transport.abort()
        raise _Hangup("closed by the script")


@dataclass(frozen=True)
class ReadBody(Action):
    """Read message lines up to the final dot - or only until ``max_bytes`` arrived."""

    max_bytes: int | None = None

    async def run(self, conn: _Conn) -> None:
        body = bytearray()
        while True:
            line = await conn.read_line()
            if line in (b".\r\n", b".\n"):
                conn.record.bodies.append(bytes(body))
                return
            body += line
            if self.max_bytes is not None and len(body) >= self.max_bytes:
                conn.record.partial_bodies.append(bytes(body))
                return


@dataclass(frozen=True)
class ReadChunk(Action):
    """RFC 3030 ``BDAT <size> [LAST]``: read the chunk's octets whatever comes next, answer a
    middle chunk, and after the last one run ``end`` (the script's ``END_OF_DATA`` reply)."""

    end: Sequence[Action] = ()

    async def run(self, conn: _Conn) -> None:
        words = conn.arg.split()
        if not words or not words[0].isdigit():
            await conn.send(b"501 5.5.4 Syntax: BDAT count [LAST]\r\n")
            return
        chunk = await conn.read_bytes(int(words[0]))
        conn.chunks.append(chunk)
        if len(words) < 2 or words[1].upper() != "LAST":
            await conn.send(f"250 2.0.0 Ok: {len(chunk)} bytes\r\n".encode())
            return
        conn.record.bodies.append(b"".join(conn.chunks))
        conn.chunks.clear()
        for action in self.end:
            await action.run(conn)


@dataclass(frozen=True)
class EhloReply(Action):
    """The EHLO reply the script describes, for the connection's TLS state."""

    async def run(self, conn: _Conn) -> None:
        words = [conn.script.ehlo_hello, *conn.script.extensions]
        if conn.script.starttls is not None and not conn.tls:
            words.append("STARTTLS")
        if conn.auth_offered:
            words.append(f"AUTH {conn.script.auth}")
        lines = [f"250-{word}" for word in words[:-1]] + [f"250 {words[-1]}"]
        await Reply("\n".join(lines)).run(conn)


@dataclass(frozen=True)
class AuthExchange(Action):
    """The client's side of AUTH for PLAIN, LOGIN, XOAUTH2 (and any mechanism with one
    response), without judging the credentials; the next action is the verdict."""

    async def run(self, conn: _Conn) -> None:
        words = conn.arg.split()
        mechanism = words[0].upper() if words else ""
        if not conn.auth_offered:
            await conn.send(b"503 5.5.1 Error: authentication not enabled\r\n")
            raise _Stop
        if mechanism not in (conn.script.auth or "").upper().split():
            await conn.send(b"504 5.5.4 Unrecognized authentication type\r\n")
            raise _Stop
        conn.auth_mechanism = mechanism
        conn.record.auth_mechanisms.append(mechanism)
        prompts = {"LOGIN": [b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"]}.get(mechanism, [b""])
        if len(words) > 1:  # an initial response answers the first prompt
            prompts = prompts[1:]
        for prompt in prompts:
            await conn.send(b"334 " + prompt + b"\r\n")
            if (await conn.read_line()).strip() == b"*":
                await conn.send(b"501 5.7.0 Authentication aborted\r\n")
                raise _Stop


@dataclass(frozen=True)
class XOAuth2ErrorChallenge(Action):
    """Gmail's answer to a bad XOAUTH2 token: ``334 <base64 JSON>``, then read the client's
    (empty) line. Other mechanisms go straight to the next action."""

    error: bytes = XOAUTH2_ERROR_CHALLENGE

    async def run(self, conn: _Conn) -> None:
        if conn.auth_mechanism == "XOAUTH2":
            await conn.send(b"334 " + base64.b64encode(self.error) + b"\r\n")
            await conn.read_line()


@dataclass(frozen=True)
class InjectionProbe(Action):
    """Before answering the EHLO sent over TLS, wait ``delay`` s for more client bytes. EHLO
    must end a pipelined group, so a client that sends more (or leaves) now has taken the
    plaintext line injected after ``220`` as this EHLO's reply: ``injected_processed``."""

    delay: float = 0.3

    async def run(self, conn: _Conn) -> None:
        acted = await conn.wait_readable(self.delay)
        if acted or conn.record.injected_processed is None:
            conn.record.injected_processed = acted
        if conn.closed:
            raise _Hangup("client left before the EHLO reply")


@dataclass(frozen=True)
class RefuseTLS(Action):
    """What an OpenSSL-based server does when no TLS version is shared: write ``ready``, read
    the client's first TLS record (its ClientHello), answer with a fatal alert record
    (``protocol_version`` = 70) and close. asyncio's own server-side TLS cannot do this: it
    drops a failed handshake without flushing the alert, so the client sees only an EOF."""

    ready: bytes = b"220 2.0.0 Ready to start TLS\r\n"
    alert: int = 70

    async def run(self, conn: _Conn) -> None:
        await conn.send(self.ready)
        header = await conn.read_bytes(5)
        await conn.read_bytes(int.from_bytes(header[3:5], "big"))
        conn.record.tls_errors.append(f"refused the ClientHello with TLS alert {self.alert}")
        await conn.send(bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, self.alert]), record=False)
        raise _Hangup("TLS refused")


@dataclass(frozen=True)
class Flood(Action):
    """Endless ``250-`` continuation lines until the client leaves (bounded in size and time)."""

    max_bytes: int = 4 * 1024 * 1024
    seconds: float = 5.0

    async def run(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        chunk = (b"250-" + b"x" * 74 + b"\r\n") * 64
        sent = 0
        conn.record.sent_lines.append(f"<endless 250- continuation lines, up to {self.max_bytes}>")
        while sent < self.max_bytes and deadline > loop.time():
            await conn.send(chunk, record=False, timeout=deadline - loop.time())
            sent += len(chunk)
        raise _Hangup("flood finished")


@dataclass(frozen=True)
class Script:
    """What a scripted server says. Verbs not in ``on`` get sensible defaults; ``on`` keys are
    verbs (``EHLO``, ``MAIL``, ...), ``VERB_TLS`` for the same verb after TLS, the pseudo-verbs
    ``AUTH_RESULT`` (the verdict after the AUTH exchange) and ``END_OF_DATA`` (the reply to the
    final dot, and to the last BDAT chunk when ``CHUNKING`` is among the ``extensions``), and
    ``*`` for every verb but QUIT."""

    greeting: Sequence[Action] = (Reply("220 mail.example.test ESMTP Postfix (mailkit scenario)"),)
    ehlo_hello: str = "mail.example.test"
    extensions: Sequence[str] = (
        "PIPELINING",
        "SIZE 35882577",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    )
    #: STARTTLS is offered (before TLS) and done with this context.
    starttls: ssl.SSLContext | None = None
    #: AUTH mechanisms advertised after TLS (``None``: no AUTH at all).
    auth: str | None = "PLAIN LOGIN XOAUTH2"
    #: Advertise (and accept) AUTH before TLS too.
    auth_in_clear: bool = False
    on: Mapping[str, Sequence[Action]] = field(default_factory=dict)
    read_timeout: float = 10.0
    hang_limit: float = 15.0
    tls_timeout: float = 10.0

    @property
    def implicit_tls(self) -> bool:
        return bool(self.greeting) and isinstance(self.greeting[0], StartTLS)

    def actions_for(self, conn: _Conn) -> Sequence[Action]:
        verb = conn.verb
        keys = [f"{verb}_TLS"] if conn.tls else []
        keys.append(verb)
        if verb != "QUIT":
            keys.append("*")
        for key in keys:
            if key in self.on:
                return self.on[key]
        return self._default(conn)

    def _default(self, conn: _Conn) -> Sequence[Action]:
        verb = conn.verb
        if verb == "EHLO":
            return (EhloReply(),)
        if verb == "HELO":
            return (Reply(f"250 {self.ehlo_hello.split()[0]}"),)
        if verb == "STARTTLS":
            if self.starttls is None or conn.tls:
                return (Reply("502 5.5.1 Error: command not implemented"),)
            return (StartTLS(self.starttls, b"220 2.0.0 Ready to start TLS\r\n"),)
        if verb == "AUTH":
            verdict = self.on.get("AUTH_RESULT", (Reply("235 2.7.0 Authentication successful"),))
            return (AuthExchange(), *verdict)
        if verb == "DATA":
            end = self.on.get("END_OF_DATA", (Reply("250 2.0.0 Ok: queued as 4F2A1C0B7E"),))
            return (Reply("354 End data with <CR><LF>.<CR><LF>"), ReadBody(), *end)
        if verb == "BDAT" and "CHUNKING" in self.extensions:
            end = self.on.get("END_OF_DATA", (Reply("250 2.0.0 Ok: queued as 4F2A1C0B7E"),))
            return (ReadChunk(end),)
        if verb == "QUIT":
            return Reply("221 2.0.0 Bye"), Close()
        simple = {
            "MAIL": "250 2.1.0 Ok",
            "RCPT": "250 2.1.5 Ok",
            "RSET": "250 2.0.0 Ok",
            "NOOP": "250 2.0.0 Ok",
        }
        return (Reply(simple.get(verb, "502 5.5.2 Error: command not recognized")),)


_LINE_LIMIT = 65536


class _Conn(asyncio.Protocol):
    """One client connection of a :class:`ScenarioServer`: the protocol object asyncio feeds
    (it stays the same across STARTTLS) and the script interpreter for it."""

    def __init__(self, server: ScenarioServer, script: Script) -> None:
        self.server = self.record = server
        self.script = script
        self.buffer = bytearray()
        self.closed = False
        self.tls = False
        self.verb = self.arg = ""
        self.auth_mechanism: str | None = None
        #: BDAT chunks of the message being received.
        self.chunks: list[bytes] = []
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = asyncio.Event()
        self._transport: asyncio.Transport | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self.script.implicit_tls:
            transport.pause_reading()  # the ClientHello is for the TLS layer, not for us
        self.server._spawn(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._readable.set()

    def eof_received(self) -> None:
        self.closed = True
        self._readable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._readable.set()
        self._writable.set()
        self._lost.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # I/O for the actions

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None
        return self._transport

    @property
    def auth_offered(self) -> bool:
        return self.script.auth is not None and (self.tls or self.script.auth_in_clear)

    def _note_received(self, data: bytes) -> None:
        self.record.received_bytes += data
        self.record.received_lines.append(data.rstrip(b"\r\n").decode("utf-8", "replace"))

    async def _more(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for new bytes or EOF; false on timeout."""
        self._readable.clear()
        try:
            async with asyncio.timeout(max(timeout, 0)):
                await self._readable.wait()
        except TimeoutError:
            return False
        return True

    async def wait_readable(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for bytes or EOF; true if either is there."""
        if not self.buffer and not self.closed:
            await self._more(timeout)
        return bool(self.buffer) or self.closed

    async def read_line(self, timeout: float | None = None) -> bytes:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.script.read_timeout)
        while (end := self.buffer.find(b"\n")) < 0:
            if self.closed:
                if self.buffer:
                    self._note_received(bytes(self.buffer))
                    self.buffer.clear()
                raise _Hangup("client closed the connection")
            if len(self.buffer) > _LINE_LIMIT:
                raise _Hangup("client line too long")
            if not await self._more(deadline - loop.time()):
                raise _Hangup("client idle")
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        self._note_received(line)
        return line

    async def read_bytes(self, count: int) -> bytes:
        """Exactly ``count`` raw bytes (kept in ``received_bytes`` only)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.script.read_timeout
        while len(self.buffer) < count:
            if self.closed:
                raise _Hangup("client closed the connection")
            if not await self._more(deadline - loop.time()):
                raise _Hangup("client idle")
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        self.record.received_bytes += data
        return data

    async def send(self, data: bytes, *, record: bool = True, timeout: float | None = None) -> None:
        if self.closed or self.transport.is_closing():
            raise _Hangup("client gone")
        if record:
            self.record.sent_lines.extend(
                line.decode("utf-8", "replace") for line in data.split(b"\r\n")[:-1] or [data]
            )
        self.transport.write(data)
        try:
            async with asyncio.timeout(timeout or self.script.read_timeout):
                await self._writable.wait()
        except TimeoutError as exc:
            raise _Hangup("client does not read") from exc

    async def start_tls(self, context: ssl.SSLContext, ready: bytes) -> None:
        self.transport.pause_reading()
        if ready:
            self.record.sent_lines.extend(
                line.decode("utf-8", "replace") for line in ready.split(b"\r\n")[:-1]
            )
            self.transport.write(ready)
        if self.buffer:  # sent before our 220: must not be read as if it came over TLS
            self.record.plaintext_after_starttls.append(bytes(self.buffer))
            self.buffer.clear()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.script.tls_timeout):
                transport = await loop.start_tls(self.transport, self, context, server_side=True)
        except (OSError, TimeoutError) as exc:
            self.record.tls_errors.append(f"{type(exc).__name__}: {exc}")
            raise _Hangup("TLS handshake failed") from exc
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.tls = True
        ssl_object = transport.get_extra_info("ssl_object")
        self.record.tls_versions.append(ssl_object.version() if ssl_object else "?")

    # the interpreter

    async def run(self, actions: Sequence[Action]) -> None:
        try:
            for action in actions:
                await action.run(self)
        except _Stop:
            pass

    async def serve(self) -> None:
        try:
            await self.run(self.script.greeting)
            while True:
                line = await self.read_line()
                verb, _, arg = line.strip().decode("utf-8", "replace").partition(" ")
                self.verb, self.arg = verb.upper(), arg.strip()
                self.record.commands.append(self.verb)
                await self.run(self.script.actions_for(self))
        except (_Hangup, OSError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        transport = self.transport
        if not transport.is_closing():
            transport.close()
        with contextlib.suppress(TimeoutError):  # a TLS close_notify gets a moment, no more
            async with asyncio.timeout(0.5):
                await self._lost.wait()
        transport.abort()


@dataclass(frozen=True)
class Expectation:
    """What a correct sender observes (phase, signal) and what the diagnosis calls it (cause)."""

    phase: Phase
    signal: Signal
    cause: Cause


@dataclass(frozen=True)
class Scenario:
    """A named misbehaviour: the script (``None``: nothing listens) and what it should yield."""

    name: str
    summary: str
    script: Script | None
    #: ``None``: a correct client succeeds (starttls_injection).
    expect: Expectation | None
    #: The ``mailkit.settings.Security`` a test should use to meet the misbehaviour.
    security: str = "starttls"
    host: str = HOST
    #: The refusal it gives, shared with the demo server's failure accounts (None: it gives
    #: none, or one of its own making).
    failure: Failure | None = None


class ScenarioServer:
    """A running scenario. Attributes are filled by the server thread as the client talks;
    call :meth:`wait_idle` before asserting on what a client that did not QUIT sent."""

    def __init__(self, scenario: Scenario, tls: TLSMaterial, options: Mapping[str, Any]) -> None:
        self.scenario = scenario
        self.name = scenario.name
        self.options = dict(options)
        self.script = scenario.script
        self.expect = scenario.expect
        self.security = scenario.security
        self.host = scenario.host
        self.port = 0
        self.ca_file = tls.ca_file
        self.pin_sha256 = tls.pin_sha256
        #: Every line the client sent (commands, AUTH responses, message lines), CRLF removed.
        self.received_lines: list[str] = []
        self.received_bytes = bytearray()
        #: Upper-case command verbs in order (``EHLO``, ``STARTTLS``, ``AUTH``, ``MAIL``, ...).
        self.commands: list[str] = []
        self.sent_lines: list[str] = []
        self.auth_mechanisms: list[str] = []
        self.bodies: list[bytes] = []
        self.partial_bodies: list[bytes] = []
        self.tls_versions: list[str] = []
        self.tls_errors: list[str] = []
        #: Plaintext a client pipelined behind STARTTLS (dropped unread, as RFC 3207 wants).
        self.plaintext_after_starttls: list[bytes] = []
        self.connections = 0
        #: starttls_injection: did the client act on the injected line? ``None``: not reached.
        self.injected_processed: bool | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._placeholder: socket.socket | None = None

    @property
    def tls_established(self) -> bool:
        return bool(self.tls_versions)

    @property
    def active(self) -> int:
        """Connections still open on the server side."""
        return len(self._tasks)

    def wait_idle(self, timeout: float = 3.0) -> bool:
        """Wait until no client connection is open on the server side."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._tasks

    def _spawn(self, conn: _Conn) -> None:
        self.connections += 1
        task = asyncio.get_running_loop().create_task(conn.serve())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self) -> None:
        if self.script is None:
            self._placeholder = refusing_socket()
            self.port = self._placeholder.getsockname()[1]
            return
        script = self.script
        sock = listening_socket()
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self, script), sock=sock)

    async def _stop(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


def start_scenario(loop: ServerLoop, tls: TLSMaterial, name: str, **options: Any) -> ScenarioServer:
    """Build the named scenario with ``options`` and start it on ``loop``."""
    try:
        build = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown SMTP scenario {name!r}; known: {sorted(SCENARIOS)}") from None
    server = ScenarioServer(build(tls, **options), tls, options)
    loop.call(server._start())
    return server


def stop_scenario(loop: ServerLoop, server: ScenarioServer) -> None:
    loop.call(server._stop())


# --------------------------------------------------------------------------------------------
# The scenarios

ScenarioBuilder = Callable[..., Scenario]
SCENARIOS: dict[str, ScenarioBuilder] = {}

#: Which step each phase's refusal replaces in a :class:`Script` (AUTH: the verdict).
_VERB_OF_PHASE = {
    Phase.EHLO: "EHLO",
    Phase.STARTTLS: "STARTTLS",
    Phase.AUTH: "AUTH_RESULT",
    Phase.MAIL: "MAIL",
    Phase.RCPT: "RCPT",
    Phase.DATA: "DATA",
    Phase.END_OF_DATA: "END_OF_DATA",
}


def _says(failure: Failure, *before: Action) -> tuple[Action, ...]:
    """The refusal as script actions: its reply, then a close when it is a 421."""
    return (*before, Reply(failure.reply), *((Close(),) if failure.closes else ()))


def _expect(failure: Failure) -> Expectation:
    return Expectation(failure.phase, Signal.REPLY, failure.cause)


def scenario(name: str) -> Callable[[ScenarioBuilder], ScenarioBuilder]:
    """Register a builder ``(tls, **options) -> Scenario`` under ``name``."""

    def register(build: ScenarioBuilder) -> ScenarioBuilder:
        SCENARIOS[name] = build
        return build

    return register


def _tls(tls: TLSMaterial, **fields: Any) -> Script:
    """A normal STARTTLS server with the good certificate, changed by ``fields``."""
    return Script(starttls=tls.server.server_context(), **fields)


def _simple(
    name: str,
    summary: str,
    on: Mapping[str, Sequence[Action]],
    expect: Expectation,
    *,
    failure: Failure | None = None,
    **fields: Any,
) -> None:
    """Register a STARTTLS scenario that differs from a good server only in ``on``."""

    def build(tls: TLSMaterial) -> Scenario:
        return Scenario(name, summary, _tls(tls, on=on, **fields), expect, failure=failure)

    SCENARIOS[name] = build


def _refusing(name: str, summary: str, failure: Failure, *before: Action, **fields: Any) -> None:
    """Register a good STARTTLS server that gives ``failure`` at its phase (``before``: what
    it does first, e.g. Gmail's XOAUTH2 challenge)."""
    on = {_VERB_OF_PHASE[failure.phase]: _says(failure, *before)}
    _simple(name, summary, on, _expect(failure), failure=failure, **fields)


@scenario("refused_port")
def _refused_port(tls: TLSMaterial) -> Scenario:
    return Scenario(
        "refused_port",
        "a free port held bound but not listening: the TCP connect is refused",
        None,
        Expectation(Phase.CONNECT, Signal.REFUSED, Cause.CONNECTION_REFUSED),
    )


@scenario("dns_failure")
def _dns_failure(tls: TLSMaterial) -> Scenario:
    return Scenario(
        "dns_failure",
        f"the host is {UNRESOLVABLE_HOST} (RFC 2606): the name does not resolve",
        None,
        Expectation(Phase.CONNECT, Signal.DNS, Cause.DNS_FAILURE),
        host=UNRESOLVABLE_HOST,
    )


@scenario("silent_server")
def _silent_server(tls: TLSMaterial, hang: float = 15.0) -> Scenario:
    return Scenario(
        "silent_server",
        "accepts the connection and never greets",
        Script(greeting=(Hang(hang),)),
        Expectation(Phase.GREETING, Signal.TIMEOUT, Cause.GREETING_TIMEOUT),
    )


_simple(
    "greeting_421",
    "greets with 421 and closes",
    {},
    _expect(failures.GREETING_CLOSING),
    failure=failures.GREETING_CLOSING,
    greeting=_says(failures.GREETING_CLOSING),
)
_simple(
    "greeting_554",
    "greets with 554 and then answers 503 to everything but QUIT (RFC 5321 3.1)",
    {"*": (Reply("503 5.5.1 Error: bad sequence of commands"),)},
    _expect(failures.GREETING_REFUSED),
    failure=failures.GREETING_REFUSED,
    greeting=_says(failures.GREETING_REFUSED),
)
_simple(
    "ehlo_rejected",
    "550 to EHLO and to HELO",
    {"EHLO": _says(failures.EHLO_REJECTED), "HELO": _says(failures.EHLO_REJECTED)},
    _expect(failures.EHLO_REJECTED),
    failure=failures.EHLO_REJECTED,
)


@scenario("starttls_not_offered")
def _starttls_not_offered(tls: TLSMaterial) -> Scenario:
    return Scenario(
        "starttls_not_offered",
        "EHLO without STARTTLS but with AUTH PLAIN LOGIN in clear (stripping); accepts anything",
        Script(auth="PLAIN LOGIN", auth_in_clear=True),
        Expectation(Phase.STARTTLS, Signal.NOT_OFFERED, Cause.STARTTLS_MISSING),
    )


_refusing("starttls_454", "offers STARTTLS, answers it with 454", failures.STARTTLS_REFUSED)


@scenario("starttls_injection")
def _starttls_injection(tls: TLSMaterial, probe_delay: float = 0.3) -> Scenario:
    context = tls.server.server_context()
    ready_and_injected = b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n"
    return Scenario(
        "starttls_injection",
        "'250 injected' follows '220 Ready' in the same plaintext write, then a good TLS session",
        Script(
            starttls=context,
            on={
                "STARTTLS": (StartTLS(context, ready_and_injected),),
                "EHLO_TLS": (InjectionProbe(probe_delay), EhloReply()),
            },
        ),
        None,
    )


@scenario("implicit_tls_on_plain_port")
def _implicit_tls_on_plain_port(tls: TLSMaterial) -> Scenario:
    return Scenario(
        "implicit_tls_on_plain_port",
        "a plaintext SMTP server: a client starting with a TLS handshake reads '220 ...' instead",
        Script(),
        Expectation(Phase.TLS, Signal.TLS_PROTOCOL, Cause.TLS_ON_PLAIN_PORT),
        security="implicit_tls",
    )


@scenario("plain_on_tls_port")
def _plain_on_tls_port(tls: TLSMaterial, hang: float = 15.0) -> Scenario:
    context = tls.server.server_context()
    return Scenario(
        "plain_on_tls_port",
        "implicit TLS only: a plaintext client waits for a greeting that never comes",
        Script(
            greeting=(StartTLS(context), Reply("220 mail.example.test ESMTP ready")),
            tls_timeout=hang,
        ),
        Expectation(Phase.GREETING, Signal.TIMEOUT, Cause.PLAIN_ON_TLS_PORT),
    )


def _bad_certificate(
    name: str, summary: str, certificate: Callable[[TLSMaterial], CertFiles], cause: Cause
) -> None:
    def build(tls: TLSMaterial, implicit: bool = False) -> Scenario:
        context = certificate(tls).server_context()
        if implicit:
            script = Script(greeting=(StartTLS(context), *Script().greeting))
        else:
            script = Script(starttls=context)
        return Scenario(
            name,
            summary + (" (implicit TLS)" if implicit else " (STARTTLS)"),
            script,
            Expectation(Phase.TLS, Signal.TLS_VERIFY, cause),
            security="implicit_tls" if implicit else "starttls",
        )

    SCENARIOS[name] = build


_bad_certificate(
    "untrusted_ca",
    "certificate from a CA the client does not trust",
    lambda tls: tls.untrusted,
    Cause.CERTIFICATE_UNTRUSTED,
)
_bad_certificate(
    "wrong_host_cert",
    "certificate for mail.wrong.example only",
    lambda tls: tls.wrong_host,
    Cause.CERTIFICATE_WRONG_HOST,
)
_bad_certificate(
    "expired_cert",
    "trusted certificate that expired yesterday",
    lambda tls: tls.expired,
    Cause.CERTIFICATE_EXPIRED,
)


@scenario("tls_version_too_old")
def _tls_version_too_old(tls: TLSMaterial, real_handshake: bool = False) -> Scenario:
    """By default the ClientHello gets a ``protocol_version`` alert, as from a server whose
    newest version is TLS 1.1 (a client allowing 1.0 would fail too). ``real_handshake``:
    a genuine TLS 1.0/1.1 server - old clients get through, but a modern client's failure
    shows only as an EOF or reset (asyncio sends no alert)."""
    context = tls.server.server_context()
    with warnings.catch_warnings():  # the ssl module deprecates the old versions themselves
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    on: dict[str, Sequence[Action]] = {} if real_handshake else {"STARTTLS": (RefuseTLS(),)}
    return Scenario(
        "tls_version_too_old",
        "STARTTLS offered, but the server speaks TLS 1.0/1.1 only"
        + (" (real handshake)" if real_handshake else " (protocol_version alert)"),
        Script(starttls=context, on=on),
        Expectation(Phase.TLS, Signal.TLS_PROTOCOL, Cause.TLS_VERSION_REFUSED),
    )


@scenario("auth_not_offered")
def _auth_not_offered(tls: TLSMaterial) -> Scenario:
    return Scenario(
        "auth_not_offered",
        "good STARTTLS, but no AUTH in either EHLO (AUTH gets 503)",
        _tls(tls, auth=None),
        Expectation(Phase.AUTH, Signal.NOT_OFFERED, Cause.AUTH_NOT_OFFERED),
    )


@scenario("mechanism_not_offered")
def _mechanism_not_offered(tls: TLSMaterial, mechanisms: str = "XOAUTH2 OAUTHBEARER") -> Scenario:
    return Scenario(
        "mechanism_not_offered",
        f"AUTH offers only {mechanisms}; anything else gets 504",
        _tls(tls, auth=mechanisms),
        Expectation(Phase.AUTH, Signal.NOT_OFFERED, Cause.MECHANISM_NOT_OFFERED),
    )


@scenario("encryption_required_538")
def _encryption_required_538(tls: TLSMaterial) -> Scenario:
    return Scenario(
        "encryption_required_538",
        "no TLS at all; AUTH advertised in clear but answered 538 5.7.11",
        Script(
            auth="PLAIN LOGIN",
            auth_in_clear=True,
            on={"AUTH": _says(failures.ENCRYPTION_REQUIRED)},
        ),
        _expect(failures.ENCRYPTION_REQUIRED),
        security="none",
        failure=failures.ENCRYPTION_REQUIRED,
    )


_refusing(
    "auth_535",
    "any PLAIN/LOGIN/XOAUTH2 exchange ends in 535 5.7.8",
    failures.BAD_CREDENTIALS,
)
_refusing(
    "gmail_534_app_password",
    "Gmail's multi-line 534 5.7.9 (application-specific password required)",
    failures.APP_PASSWORD_REQUIRED,
    greeting=(Reply(GMAIL_GREETING),),
    ehlo_hello=GMAIL_HELLO,
)
_refusing(
    "microsoft_535_basic_auth_disabled",
    "Microsoft 365's 535 5.7.139 (SMTP AUTH disabled for the tenant)",
    failures.BASIC_AUTH_DISABLED,
    greeting=(Reply(MICROSOFT_GREETING),),
    ehlo_hello=MICROSOFT_HELLO,
)
_refusing(
    "auth_454_temporary",
    "454 4.7.0 temporary authentication failure",
    failures.AUTH_TEMPORARY,
)
_refusing(
    "oauth_token_rejected",
    "Gmail's XOAUTH2 failure: 334 <base64 JSON error>, then 535 5.7.8 after the empty line",
    failures.OAUTH_TOKEN_REJECTED,
    XOAuth2ErrorChallenge(),
    greeting=(Reply(GMAIL_GREETING),),
    ehlo_hello=GMAIL_HELLO,
)


@scenario("sender_rejected_550")
def _sender_rejected_550(
    tls: TLSMaterial, mail_reply: str = failures.SENDER_REJECTED.reply
) -> Scenario:
    cause = Cause.SEND_AS_DENIED if "5.7.60" in mail_reply else Cause.SENDER_REJECTED
    failure = replace(failures.SENDER_REJECTED, cause=cause, reply=mail_reply)
    return Scenario(
        "sender_rejected_550",
        f"MAIL FROM answered {mail_reply.split()[0]} (option mail_reply; 5.7.60: send-as denied)",
        _tls(tls, on={"MAIL": _says(failure)}),
        _expect(failure),
        failure=failure,
    )


_refusing(
    "microsoft_550_5_7_60",
    "Microsoft 365's 550 5.7.60 send-as denied at MAIL",
    failures.SEND_AS_DENIED,
    greeting=(Reply(MICROSOFT_GREETING),),
    ehlo_hello=MICROSOFT_HELLO,
)
_refusing(
    "microsoft_530_5_7_57",
    "Microsoft 365's 530 5.7.57 (not authenticated) at MAIL, whatever happened before",
    failures.NOT_AUTHENTICATED,
    greeting=(Reply(MICROSOFT_GREETING),),
    ehlo_hello=MICROSOFT_HELLO,
)
_refusing(
    "rate_limited_450",
    "Postfix's client message rate limit: 450 4.7.1 at MAIL",
    failures.RATE_LIMITED,
)


@scenario("relay_denied_550")
def _relay_denied_550(tls: TLSMaterial, rcpt_reply: str = failures.RELAY_DENIED.reply) -> Scenario:
    failure = replace(failures.RELAY_DENIED, reply=rcpt_reply)
    return Scenario(
        "relay_denied_550",
        f"RCPT TO answered {rcpt_reply.split()[0]} relay access denied (option rcpt_reply)",
        _tls(tls, on={"RCPT": _says(failure)}),
        _expect(failure),
        failure=failure,
    )


_refusing(
    "recipient_rejected_550", "RCPT TO answered 550 5.1.1 user unknown", failures.RECIPIENT_REJECTED
)
_refusing("greylisted_451", "RCPT TO answered 451 4.7.1 greylisting", failures.GREYLISTED)
_refusing("mailbox_full_452", "RCPT TO answered 452 4.2.2 mailbox full", failures.MAILBOX_FULL)
_refusing(
    "too_large_552",
    "the whole message is read, then the final dot gets 552 5.3.4 (no SIZE advertised)",
    failures.TOO_LARGE,
    extensions=("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"),
)
_refusing(
    "message_rejected_554",
    "the final dot gets 554 5.7.1 (content rejected)",
    failures.MESSAGE_REJECTED,
)


@scenario("disconnect_mid_data")
def _disconnect_mid_data(
    tls: TLSMaterial, after_bytes: int = 64, abort: bool = False, at_data_command: bool = False
) -> Scenario:
    """354, read ``after_bytes`` of the message, close (``abort``: reset). A client sending a
    small message has handed its final dot to the kernel before it can see the close, so it
    cannot know the message was cut: outcome unknown. ``at_data_command``: close instead of
    answering DATA - a disconnect the client can place before any message byte."""
    if at_data_command:
        return Scenario(
            "disconnect_mid_data",
            "the connection closes instead of answering DATA",
            _tls(tls, on={"DATA": (Close(abort),)}),
            Expectation(Phase.DATA, Signal.DISCONNECTED, Cause.DISCONNECTED),
        )
    read = (ReadBody(max_bytes=after_bytes),) if after_bytes else ()
    return Scenario(
        "disconnect_mid_data",
        f"354, then the connection closes after {after_bytes} message bytes",
        _tls(tls, on={"DATA": (Reply("354 End data with <CR><LF>.<CR><LF>"), *read, Close(abort))}),
        Expectation(Phase.END_OF_DATA, Signal.DISCONNECTED, Cause.OUTCOME_UNKNOWN),
    )


@scenario("timeout_after_data")
def _timeout_after_data(tls: TLSMaterial, hang: float = 15.0) -> Scenario:
    return Scenario(
        "timeout_after_data",
        "reads the whole message and the final dot, then never answers",
        _tls(tls, on={"END_OF_DATA": (Hang(hang),)}),
        Expectation(Phase.END_OF_DATA, Signal.TIMEOUT, Cause.OUTCOME_UNKNOWN),
    )


@scenario("malformed_reply")
def _malformed_reply(tls: TLSMaterial, reply: bytes = b"garbage without a code\r\n") -> Scenario:
    return Scenario(
        "malformed_reply",
        "the EHLO reply is a line without a reply code",
        _tls(tls, on={"EHLO": (Raw(reply),)}),
        Expectation(Phase.EHLO, Signal.MALFORMED, Cause.MALFORMED_REPLY),
    )


@scenario("overlong_reply")
def _overlong_reply(tls: TLSMaterial, length: int = 10_000, endless: bool = False) -> Scenario:
    action: Action = Flood() if endless else Raw(b"250-" + b"x" * length + b"\r\n250 OK\r\n")
    return Scenario(
        "overlong_reply",
        "EHLO reply with endless continuation lines"
        if endless
        else f"EHLO reply with a {length}-byte line (aiosmtplib's limit is 8192)",
        _tls(tls, on={"EHLO": (action,)}),
        Expectation(Phase.EHLO, Signal.MALFORMED, Cause.MALFORMED_REPLY),
    )


def scenario_names() -> list[str]:
    return sorted(SCENARIOS)


def scenario_options(name: str) -> list[str]:
    """The keyword options a scenario takes (besides the TLS material)."""
    return list(inspect.signature(SCENARIOS[name]).parameters)[1:]


# --------------------------------------------------------------------------------------------
# Hostile servers: echoed secrets, 421 anywhere, replies that do not pair with commands


#: The verbs a hostile reply can replace, in dialog order (``GREETING``, ``AUTH_RESULT`` and
#: ``END_OF_DATA`` are the pseudo-verbs of :class:`Script`).
HOSTILE_VERBS = (
    "GREETING",
    "EHLO",
    "STARTTLS",
    "AUTH_RESULT",
    "MAIL",
    "RCPT",
    "DATA",
    "END_OF_DATA",
    "QUIT",
)
#: The reply each verb gets from a good server: a hostile ``prefix`` keeps it as the last line.
_GOOD_REPLY = {
    "GREETING": "220 mail.example.test ESMTP",
    "EHLO": "",  # the script's own EHLO reply
    "STARTTLS": "220 2.0.0 Ready to start TLS",
    "AUTH_RESULT": "235 2.7.0 Authentication successful",
    "MAIL": "250 2.1.0 Ok",
    "RCPT": "250 2.1.5 Ok",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    "END_OF_DATA": "250 2.0.0 Ok: queued as 4F2A1C0B7E",
    "QUIT": "221 2.0.0 Bye",
}


def _hostile_actions(tls: TLSMaterial, verb: str, data: bytes) -> dict[str, Sequence[Action]]:
    """``data`` (raw bytes) sent where ``verb``'s reply goes, followed by what a good server
    would do next when ``data`` leaves the reply open (a ``prefix`` of continuation lines)."""
    context = tls.server.server_context()
    good = _GOOD_REPLY[verb].encode()
    completes = not data.endswith(b"-") and not _is_prefix(data)
    tail = b"" if completes else good + b"\r\n"
    if verb == "GREETING":
        return {"GREETING": (Raw(data + tail),)}
    if verb == "EHLO":
        after: tuple[Action, ...] = () if completes else (EhloReply(),)
        return {"EHLO": (Raw(data), *after)}
    if verb == "STARTTLS":
        if completes:
            return {"STARTTLS": (Raw(data),)}
        return {"STARTTLS": (StartTLS(context, data + tail),)}
    if verb == "DATA":
        end = Reply(_GOOD_REPLY["END_OF_DATA"])
        if completes:
            go_ahead = data.rstrip(b"\r\n").split(b"\r\n")[-1].startswith(b"354")
            return {"DATA": (Raw(data), ReadBody(), end) if go_ahead else (Raw(data),)}
        return {"DATA": (Raw(data + tail), ReadBody(), end)}
    if verb == "END_OF_DATA":
        return {"END_OF_DATA": (Raw(data + tail),)}
    if verb == "QUIT":
        return {"QUIT": (Raw(data + tail), Close())}
    return {verb: (Raw(data + tail),)}


def _is_prefix(data: bytes) -> bool:
    """Whether ``data`` is only continuation lines (``NNN-...``): the reply is still open."""
    lines = data.split(b"\r\n")
    return (
        bool(lines)
        and lines[-1] == b""
        and all(len(line) > 3 and line[:3].isdigit() and line[3:4] == b"-" for line in lines[:-1])
    )


@scenario("hostile_reply")
def _hostile_reply(
    tls: TLSMaterial,
    verb: str = "AUTH_RESULT",
    data: bytes = f"{failures.echoed_secret(Credentials().password).reply}\r\n".encode(),
) -> Scenario:
    """Any bytes where one verb's reply goes: an echoed secret, continuation lines in front of
    the good reply (``NNN-...\\r\\n`` only), a final error reply, or a line that is no reply."""
    if verb not in HOSTILE_VERBS:
        raise ValueError(f"verb must be one of {HOSTILE_VERBS}, not {verb!r}")
    on = _hostile_actions(tls, verb, data)
    greeting = on.pop("GREETING", Script().greeting)
    return Scenario(
        "hostile_reply",
        f"the reply to {verb} is replaced by given bytes (default: a 535 echoing the password)",
        _tls(tls, greeting=greeting, on=on),
        Expectation(Phase.AUTH, Signal.REPLY, Cause.BAD_CREDENTIALS),
    )


_VERB_PHASE = {
    "EHLO": Phase.EHLO,
    "STARTTLS": Phase.STARTTLS,
    "AUTH_RESULT": Phase.AUTH,
    "MAIL": Phase.MAIL,
    "RCPT": Phase.RCPT,
    "DATA": Phase.DATA,
    "END_OF_DATA": Phase.END_OF_DATA,
}


@scenario("closing_421")
def _closing_421(tls: TLSMaterial, verb: str = "MAIL") -> Scenario:
    """421 (RFC 5321 3.8: the server closes the channel) as the reply to ``verb``, then close."""
    closing = failures.SHUTTING_DOWN if verb == "DATA" else failures.CLOSING
    failure = closing.at(_VERB_PHASE[verb])
    return Scenario(
        "closing_421",
        f"{verb} answered 421 and the connection closed",
        _tls(tls, on={verb: _says(failure)}),
        _expect(failure),
        failure=failure,
    )


@scenario("duplicate_rcpt_reply")
def _duplicate_rcpt_reply(tls: TLSMaterial, pipelining: bool = True) -> Scenario:
    """RCPT TO answered twice: a client pairing replies with commands one by one would take the
    second 250 for DATA's answer and wait for one that already came."""
    extensions = ("PIPELINING",) if pipelining else ()
    return Scenario(
        "duplicate_rcpt_reply",
        "every RCPT TO gets two 250 replies" + (" (PIPELINING offered)" if pipelining else ""),
        _tls(
            tls,
            extensions=(*extensions, "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"),
            on={"RCPT": (Raw(b"250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"),)},
        ),
        Expectation(Phase.RCPT, Signal.MALFORMED, Cause.MALFORMED_REPLY),
    )


@scenario("garbage_after_dot")
def _garbage_after_dot(tls: TLSMaterial, reply: bytes = b"garbage, not a reply\r\n") -> Scenario:
    return Scenario(
        "garbage_after_dot",
        "the whole message is read, then the final dot gets a line that is not SMTP",
        _tls(tls, on={"END_OF_DATA": (Raw(reply),)}),
        Expectation(Phase.END_OF_DATA, Signal.MALFORMED, Cause.OUTCOME_UNKNOWN),
    )


@scenario("silent_at")
def _silent_at(tls: TLSMaterial, verb: str = "EHLO", hang: float = 15.0) -> Scenario:
    """No answer to ``verb`` (STARTTLS, EHLO, MAIL, RCPT, DATA) until the client gives up."""
    return Scenario(
        "silent_at",
        f"never answers {verb}",
        _tls(tls, on={verb: (Hang(hang),)}),
        Expectation(Phase(verb.lower()), Signal.TIMEOUT, Cause.COMMAND_TIMEOUT),
    )


@scenario("silent_quit")
def _silent_quit(tls: TLSMaterial, hang: float = 15.0, pipelining: bool = True) -> Scenario:
    """Accepts the message, then never answers QUIT: pipelined behind the message when the
    server offers PIPELINING, alone otherwise."""
    extensions = ("PIPELINING",) if pipelining else ()
    return Scenario(
        "silent_quit",
        "a good server that never answers QUIT" + (" (PIPELINING offered)" if pipelining else ""),
        _tls(
            tls,
            extensions=(*extensions, "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"),
            on={"QUIT": (Hang(hang),)},
        ),
        None,
    )


def starttls_plan(server: MailServer, **changes: Any) -> SmtpPlan:
    """The plan of a good send to ``server``: STARTTLS, auth auto as its user, its CA trusted,
    From alice@example.com, 5 s waits; ``changes`` replace fields."""
    plan = SmtpPlan(
        host=server.host,
        port=server.starttls_port,
        security=Security.STARTTLS,
        auth=AuthType.AUTO,
        username=server.user,
        from_address="alice@example.com",
        ca_file=str(server.ca_file),
        connect_timeout=5,
        command_timeout=5,
    )
    return replace(plan, **changes)
