"""SMTP test sends on aiosmtplib, recorded byte by byte, with a strict security policy.

aiosmtplib has no hooks, so mailkit records at its protocol: :class:`RecordingProtocol`
subclasses aiosmtplib's ``SMTPProtocol`` and sees every byte written and received, before and
after STARTTLS (asyncio keeps the same protocol object across the TLS upgrade). Each send's own
client, :class:`RecordingSMTP`, builds that protocol for each connection it opens, handing it
the send's :class:`~mailkit.transcript.Recorder`; aiosmtplib itself is left as it is, so any
other use of it in the process neither records nor pipelines.

The subclass adds one thing aiosmtplib lacks: RFC 2920 pipelining. aiosmtplib parses one reply
per read and drops bytes that arrive while no command waits, so a group of commands written at
once would lose replies; :meth:`RecordingProtocol.pipeline` buffers and parses every reply of a
group. With PIPELINING a send with STARTTLS and AUTH PLAIN needs the protocol's minimum round
trips plus at most one.

Policy (PRODUCT.md §1): implicit TLS on 465, otherwise STARTTLS, which is then *required* — a
server that does not offer it gets no AUTH and no MAIL; ``none`` only when chosen, and
credentials over plaintext also need ``allow_plaintext_auth``. Certificates are verified against
the system store, a CA file, or a pinned SHA-256 — never not at all. TLS 1.2 at least.

Each step has its own wait (:class:`Waits`: connect, greeting, each command, end of data, QUIT),
shown in the transcript; ``command_timeout`` / ``--timeout`` replaces them with one. Whatever a
server says passes the send's :class:`~mailkit.transcript.SecretScrubber` before a failure, a
diagnosis or the :class:`TestResult` (which cannot be built without it) holds it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import errno
import hashlib
import inspect
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import spnego
from aiosmtplib import SMTP
from aiosmtplib.auth import auth_plain_encode
from aiosmtplib.errors import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPHeloError,
    SMTPReadTimeoutError,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.protocol import (
    MAX_RESPONSE_LENGTH,
    PERIOD_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

from mailkit.diagnose import diagnose
from mailkit.errors import OAuthError
from mailkit.faces import in_plain_words
from mailkit.message import TestMessage, build_test_message
from mailkit.outcome import MAX_DETAIL, Diagnosis, Failure, Phase, SendContext, Signal
from mailkit.resolve import Effective
from mailkit.result import TestResult, TlsInfo, TokenProvider
from mailkit.secret import Secret
from mailkit.senders.tls import ca_file_problem, describe_certificate
from mailkit.settings import AuthType, Mode, OrgSettings, Priority, Security, host_ascii
from mailkit.transcript import Direction, Recorder, Row, SecretScrubber

#: Password mechanisms in the order ``auto`` prefers them over verified TLS: PLAIN takes one
#: round trip and can be pipelined, and TLS already protects it; LOGIN is the common fallback;
#: CRAM-MD5 and NTLM come last because they force servers to keep reversible passwords.
PREFERRED_OVER_TLS = ("PLAIN", "LOGIN", "CRAM-MD5", "NTLM")
#: Without TLS (only with allow_plaintext_auth) prefer what keeps the password off the wire.
PREFERRED_IN_CLEAR = ("CRAM-MD5", "NTLM", "PLAIN", "LOGIN")

_MECHANISM_OF = {
    AuthType.LOGIN: "LOGIN",
    AuthType.PLAIN: "PLAIN",
    AuthType.CRAM_MD5: "CRAM-MD5",
    AuthType.NTLM: "NTLM",
    AuthType.MSN: "NTLM",
    AuthType.XOAUTH2: "XOAUTH2",
}


# --------------------------------------------------------------------------- the protocol


class _Group:
    """Replies still expected for a pipelined group of commands."""

    def __init__(self, expected: int, future: asyncio.Future[None]) -> None:
        self.expected = expected
        self.responses: list[SMTPResponse] = []
        self.future = future
        #: Set whenever a reply arrives or the group ends, so each reply can have its own wait.
        self.progress = asyncio.Event()

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)
            self.future.exception()  # retrieved: nobody may await it after a timeout
        self.progress.set()

    async def until(self, count: int) -> None:
        """Return once ``count`` replies are in (or raise what ended the group early)."""
        while len(self.responses) < count:
            if self.future.done():
                self.future.result()
                return
            self.progress.clear()
            await self.progress.wait()


class PipelineError(SMTPException):
    """A pipelined group ended early; ``responses`` holds the replies that did arrive."""

    def __init__(self, responses: list[SMTPResponse], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.responses = responses
        self.cause = cause


class RecordingProtocol(SMTPProtocol):
    """aiosmtplib's protocol, recording both directions and able to pipeline.

    ``on_lost`` is told when the connection goes; it is called here rather than handed to
    aiosmtplib, whose callback signature changed between releases.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        recorder: Recorder | None = None,
        greeting_wait: float | None = None,
        on_lost: Callable[[RecordingProtocol], None] | None = None,
    ) -> None:
        super().__init__(loop=loop)
        self.recorder = recorder
        self._greeting_wait = greeting_wait
        self._on_lost = on_lost
        self._greeted = False
        self._group: _Group | None = None
        #: Reply bytes that came after a group had all its replies: the server answered more
        #: often than it was asked (a duplicated reply), so replies no longer pair with commands.
        self.unasked = b""
        #: Done once the connection is gone (TLS close_notify and all).
        self.closed: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.recorder is not None:
            self.recorder.connected()

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        """The first reply on a connection is the greeting, which has a wait of its own."""
        if not self._greeted:
            self._greeted = True
            if self._greeting_wait is not None:
                timeout = self._greeting_wait
        return await super().read_response(timeout=timeout)

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.recorder is not None:
            self.recorder.sent(data)

    def data_received(self, data: bytes) -> None:
        if self.recorder is not None:
            self.recorder.received(data)
        if self._group is not None:
            self._buffer.extend(data)
            self._parse_group()
            return
        super().data_received(data)

    def eof_received(self) -> bool:
        if self._group is not None:
            self._group.fail(SMTPServerDisconnected("Unexpected EOF received"))
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._group is not None:
            self._group.fail(SMTPServerDisconnected("Connection lost"))
        if self.recorder is not None:
            self.recorder.closed()
        super().connection_lost(exc)
        if not self.closed.done():
            self.closed.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self)

    def _parse_group(self) -> None:
        group = self._group
        assert group is not None
        while not group.future.done() and len(group.responses) < group.expected:
            if len(self._buffer) > MAX_RESPONSE_LENGTH:
                del self._buffer[:]
                group.fail(SMTPResponseException(-1, "Response too long"))
                return
            try:
                response = self._read_response_from_buffer()
            except SMTPResponseException as exc:
                group.fail(exc)
                return
            if response is None:
                return
            group.responses.append(response)
            group.progress.set()
        if not group.future.done():
            group.future.set_result(None)
            group.progress.set()

    async def pipeline(
        self, data: bytes, expected: int, timeout: float | Sequence[float] | None
    ) -> list[SMTPResponse]:
        """Write ``data`` (one or more commands) at once and read ``expected`` replies.

        ``timeout`` is each reply's own wait, or one wait per reply (the last repeats): the
        reply to the final dot may take long, the QUIT pipelined behind it only a moment.
        """
        if self._command_lock is None:
            raise SMTPServerDisconnected("Server not connected")
        waits = [timeout] if timeout is None or isinstance(timeout, int | float) else timeout
        async with self._command_lock:
            group = _Group(expected, self._loop.create_future())
            self._group = group
            try:
                self.write(data)
                for count in range(1, expected + 1):
                    wait = waits[min(count, len(waits)) - 1]
                    try:
                        await asyncio.wait_for(group.until(count), wait)
                    except TimeoutError:
                        raise PipelineError(
                            group.responses,
                            SMTPReadTimeoutError("Timed out waiting for the server"),
                        ) from None
                    except SMTPException as exc:
                        raise PipelineError(group.responses, exc) from None
            finally:
                self._group = None
                # Replies nobody asked for must not pair with later commands; they are kept
                # aside so the sender can say the server answered twice.
                self.unasked = bytes(self._buffer).strip()
                del self._buffer[:]
        return list(group.responses)


class RecordingSMTP(SMTP):
    """aiosmtplib's client whose every connection gets a :class:`RecordingProtocol`.

    aiosmtplib offers no protocol factory: it builds ``SMTPProtocol`` inside
    ``_create_connection``. That one method is redone here, for this client only, by host and
    port (the only way mailkit connects) with the TLS context it is given; the rest of
    aiosmtplib — EHLO, STARTTLS, AUTH, replies — runs unchanged on top of our protocol.
    """

    def __init__(
        self, *, recorder: Recorder, greeting_wait: float | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder
        self.greeting_wait = greeting_wait
        #: Every protocol this client opened, so a send can wait until each is really closed.
        self.opened: list[RecordingProtocol] = []

    def _lost(self, protocol: RecordingProtocol) -> None:
        if protocol is self.protocol:
            self.close()

    async def _create_connection(self, timeout: float | None) -> SMTPResponse:
        loop = asyncio.get_running_loop()
        if self.sock is not None or self.socket_path is not None:
            raise ValueError("RecordingSMTP connects by host and port only")
        hostname, port = self.hostname or "localhost", self.port or self._get_default_port()
        tls_context: ssl.SSLContext | None = None
        if self.use_tls:
            if self.tls_context is None:
                raise ValueError("RecordingSMTP needs the TLS context for implicit TLS")
            tls_context = self.tls_context
        protocol = RecordingProtocol(
            loop, recorder=self.recorder, greeting_wait=self.greeting_wait, on_lost=self._lost
        )
        self.opened.append(protocol)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(
                    lambda: protocol,
                    host=hostname,
                    port=port,
                    ssl=tls_context,
                    server_hostname=hostname if tls_context is not None else None,
                    ssl_handshake_timeout=timeout if tls_context is not None else None,
                    local_addr=self.source_address,
                ),
                timeout=timeout,
            )
        except TimeoutError as exc:
            raise SMTPConnectTimeoutError(
                f"Timed out connecting to {hostname} on port {port}"
            ) from exc
        except OSError as exc:
            raise SMTPConnectError(f"Error connecting to {hostname} on port {port}: {exc}") from exc
        self.protocol = protocol
        self.transport = transport
        try:
            response = await protocol.read_response(timeout=timeout)
        except SMTPServerDisconnected as exc:
            raise SMTPConnectError(f"Error connecting to {hostname} on port {port}: {exc}") from exc
        except SMTPTimeoutError as exc:
            raise SMTPConnectTimeoutError("Timed out waiting for server ready message") from exc
        if response.code != SMTPStatus.ready:
            raise SMTPConnectResponseError(response.code, response.message)
        return response


# --------------------------------------------------------------------------- waits

#: How long a test send waits at each step when nothing overrides it. RFC 5321 §4.5.3.2 gives
#: the minimums a *server-side* client keeps (greeting 5 min, MAIL and RCPT 5, DATA 2, each data
#: block 3, the final dot 10): right for a relay that retries for days, far too long for someone
#: watching a test. A server that works answers in milliseconds, so the waits cover the slow
#: but legitimate cases only.
#: TCP connect (and the handshake of implicit TLS): a reachable host answers in well under a
#: second; 10 s covers a slow VPN or a first DNS lookup.
CONNECT_WAIT = 10.0
#: Twice Postfix postscreen's 6 s greet pause, the longest delay servers add on purpose.
GREETING_WAIT = 12.0
#: Each command (EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA): RCPT may wait on DNS checks
#: (blocklists, SPF, recipient callouts) of a few seconds.
COMMAND_WAIT = 15.0
#: The reply to the final dot follows content scanning (antivirus, spam filters, milters); a
#: timeout there leaves the outcome unknown, the costliest answer, so it waits longest.
END_OF_DATA_WAIT = 60.0
#: QUIT, alone or pipelined behind the message: the message is already decided, so a server
#: that does not say goodbye costs the user a moment at most.
QUIT_WAIT = 3.0
#: The implicit-TLS probe after a silent greeting: a TLS server answers a hello at once.
TLS_PROBE_WAIT = 3.0


@dataclass(frozen=True)
class Waits:
    """The seconds one send waits at each step (see the ``*_WAIT`` defaults for why)."""

    connect: float = CONNECT_WAIT
    greeting: float = GREETING_WAIT
    command: float = COMMAND_WAIT
    end_of_data: float = END_OF_DATA_WAIT
    quit: float = QUIT_WAIT

    def describe(self) -> str:
        def s(value: float) -> str:
            return f"{value:g} s"

        return (
            f"connect {s(self.connect)}, greeting {s(self.greeting)}, each command "
            f"{s(self.command)}, end of data {s(self.end_of_data)}, QUIT {s(self.quit)}"
        )


def _chosen(org: OrgSettings, name: str) -> float | None:
    """An org timeout when it was changed from the settings' default, else None (then each
    phase keeps its own default wait)."""
    value = getattr(org, name)
    default = type(org).model_fields[name].default
    return None if value == default else float(value)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SmtpPlan:
    """Everything one send needs, resolved from the effective settings (no secrets)."""

    host: str
    port: int
    security: Security  # never AUTO: resolved by port
    auth: AuthType
    username: str | None
    from_address: str | None
    from_name: str | None = None
    ca_file: str | None = None
    pin_sha256: str | None = None
    tls_min_version: str = "1.2"
    allow_plaintext_auth: bool = False
    #: Overrides the connect wait (None: :data:`CONNECT_WAIT`, or the command override if lower).
    connect_timeout: float | None = None
    #: An override (``--timeout``, or an org ``command_timeout`` changed from its default):
    #: every reply — greeting, each command, end of data — waits this long. None: per phase.
    command_timeout: float | None = None
    local_hostname: str = "mailkit.localhost"
    mode: Mode = Mode.SMTP

    @property
    def waits(self) -> Waits:
        override = self.command_timeout
        connect = self.connect_timeout
        if connect is None:
            connect = CONNECT_WAIT if override is None else min(CONNECT_WAIT, override)
        if override is None:
            return Waits(connect=connect)
        return Waits(connect, override, override, override, min(QUIT_WAIT, override))

    @classmethod
    def from_effective(cls, eff: Effective) -> SmtpPlan:
        security = eff.security
        if security is Security.AUTO:
            security = Security.IMPLICIT_TLS if eff.port == 465 else Security.STARTTLS
        return cls(
            host=eff.host or "",
            port=eff.port,
            security=security,
            auth=eff.auth,
            username=eff.username,
            from_address=eff.from_address,
            from_name=eff.from_name,
            ca_file=eff.org.ca_file,
            pin_sha256=eff.org.tls_pin_sha256,
            tls_min_version=eff.org.tls_min_version,
            allow_plaintext_auth=eff.org.allow_plaintext_auth,
            connect_timeout=_chosen(eff.org, "connect_timeout"),
            command_timeout=_chosen(eff.org, "command_timeout"),
            mode=eff.mode,
        )

    def context(self, auth: str | None = None) -> SendContext:
        return SendContext(
            host=self.host,
            port=self.port,
            security=self.security.value,
            auth=auth or self.auth.value,
            username=self.username,
            from_address=self.from_address,
            timeout=self.waits.command,
        )


def tls_context(plan: SmtpPlan) -> ssl.SSLContext:
    """Verification always on: system CAs, or the CA file, or (pinned) the fingerprint."""
    # With a pin the chain is not checked at all, so a CA file set beside it is not read.
    context = ssl.create_default_context(cafile=None if plan.pin_sha256 else plan.ca_file)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if plan.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    if plan.pin_sha256:
        # The pin replaces the chain: a self-signed server is trusted by its exact certificate,
        # checked right after the handshake and before a single byte is sent over it.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# --------------------------------------------------------------------------- the send


class _Stop(Exception):
    """The send ends here with this failure (raised inside, turned into a diagnosis).

    ``diagnosis`` is given when someone else already diagnosed it: a token provider's
    :class:`~mailkit.errors.OAuthError` says why the token could not be had.
    """

    def __init__(self, failure: Failure, diagnosis: Diagnosis | None = None) -> None:
        super().__init__(failure.phase.value)
        self.failure = failure
        self.diagnosis = diagnosis


def _root_causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _enhanced(text: str) -> str | None:
    first = text.strip().split(" ", 1)[0] if text.strip() else ""
    parts = first.split(".")
    if len(parts) == 3 and parts[0] in {"2", "4", "5"} and all(p.isdigit() for p in parts):
        return first
    return None


def failure_from_exception(exc: BaseException, phase: Phase, **facts: Any) -> Failure:
    """Classify what aiosmtplib / asyncio / ssl raised into a :class:`Failure`."""
    for cause in _root_causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure(
                Phase.TLS if phase in (Phase.CONNECT, Phase.GREETING, Phase.STARTTLS) else phase,
                Signal.TLS_VERIFY,
                verify_code=cause.verify_code,
                detail=str(cause.verify_message or cause),
                **facts,
            )
        if isinstance(cause, ssl.SSLError):
            return Failure(Phase.TLS, Signal.TLS_PROTOCOL, detail=str(cause), **facts)
        if isinstance(cause, socket.gaierror):
            return Failure(Phase.CONNECT, Signal.DNS, detail=str(cause), **facts)
        if isinstance(cause, ConnectionRefusedError):
            return Failure(Phase.CONNECT, Signal.REFUSED, detail=str(cause), **facts)
        if isinstance(cause, OSError) and cause.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            return Failure(Phase.CONNECT, Signal.UNREACHABLE, detail=str(cause), **facts)
    if isinstance(exc, PipelineError):
        return failure_from_exception(exc.cause, phase, **facts)
    if isinstance(exc, SMTPConnectTimeoutError):
        waiting_for_greeting = "ready message" in str(exc)
        return Failure(
            Phase.GREETING if waiting_for_greeting else Phase.CONNECT,
            Signal.TIMEOUT,
            detail=str(exc),
            **facts,
        )
    if isinstance(exc, SMTPTimeoutError | TimeoutError | asyncio.TimeoutError):
        return Failure(phase, Signal.TIMEOUT, detail=str(exc) or "timed out", **facts)
    if isinstance(exc, SMTPResponseException):
        if exc.code < 0 or "Malformed" in exc.message or "too long" in exc.message:
            # Not cut here: the sender scrubs the server's words first, then cuts them.
            return Failure(phase, Signal.MALFORMED, detail=exc.message, **facts)
        return Failure(
            phase,
            Signal.REPLY,
            code=exc.code,
            enhanced=_enhanced(exc.message),
            text=exc.message,
            **facts,
        )
    if isinstance(exc, SMTPServerDisconnected | ConnectionError | EOFError):
        return Failure(phase, Signal.DISCONNECTED, detail=str(exc), **facts)
    return Failure(phase, Signal.DISCONNECTED, detail=f"{type(exc).__name__}: {exc}", **facts)


def _bounded(failure: Failure) -> Failure:
    """``failure`` with its sender detail cut — only ever applied after scrubbing."""
    if len(failure.detail) <= MAX_DETAIL:
        return failure
    return dataclasses.replace(failure, detail=failure.detail[: MAX_DETAIL - 1] + "…")


def _extra_reply(phase: Phase) -> Failure:
    """The server answered one command twice: replies no longer pair with commands."""
    step = {Phase.RCPT: "RCPT TO", Phase.MAIL: "MAIL FROM", Phase.AUTH: "AUTH"}.get(phase, "")
    return Failure(
        phase,
        Signal.MALFORMED,
        detail=f"duplicate reply: the server answered {step or phase.value} twice",
    )


def _reply_failure(phase: Phase, response: SMTPResponse, **facts: Any) -> Failure:
    return Failure(
        phase,
        Signal.REPLY,
        code=response.code,
        enhanced=_enhanced(response.message),
        text=response.message,
        **facts,
    )


class SmtpTestSender:
    """Runs one test send. Create one per send; :meth:`run` never raises for SMTP trouble."""

    def __init__(
        self,
        plan: SmtpPlan,
        *,
        password: Secret | None = None,
        token: TokenProvider | None = None,
        on_row: Callable[[Row], None] | None = None,
    ) -> None:
        self.plan = plan
        self.password = password
        self.token = token
        self.waits = plan.waits
        #: The send's one scrubber: rows, failures, the diagnosis and the result all pass it.
        self.scrubber = SecretScrubber(
            [s for s in (password,) if s is not None], username=plan.username
        )
        self.recorder = Recorder(
            username=plan.username,
            on_row=on_row,
            tls=plan.security is Security.IMPLICIT_TLS,
            scrubber=self.scrubber,
        )
        self.smtp: RecordingSMTP | None = None
        self.tls: TlsInfo | None = None
        self.mechanism: str | None = None
        #: The server said 354 and waits for a body we will not send: QUIT would be body text.
        self._in_body = False
        #: Built in :meth:`_send`, after the CA file was checked (a bad one is a diagnosis).
        self._context: ssl.SSLContext | None = None

    # ------------------------------------------------------------------ entry

    async def run(self, message: TestMessage) -> TestResult:
        started = datetime.now(UTC)
        clock = asyncio.get_running_loop().time
        t0 = clock()
        reply: str | None = None
        known: Diagnosis | None = None
        try:
            reply = await self._send(message)
            failure = None
        except _Stop as stop:
            failure, known = stop.failure, stop.diagnosis
            if self._may_quit(failure) and self.smtp is not None:
                await self._quit(self.smtp)
        finally:
            await self._close()
        diagnosis = None
        if failure is not None:
            # The server's words reach the diagnosis only scrubbed, and cut only after that.
            failure = _bounded(self.scrubber.scrub_value(failure))
            known = self.scrubber.scrub_value(known)
            diagnosis = known or diagnose(failure, self.plan.context(self._auth_label()))
            if failure.detail and failure.signal not in (Signal.REPLY, Signal.OAUTH):
                # What the client saw, e.g. why a certificate did not verify.
                code = f" (OpenSSL {failure.verify_code})" if failure.verify_code else ""
                # Rows read the same in every face: "CA file", never the Python name.
                detail = in_plain_words(failure.detail)
                self.recorder.info(f"{failure.signal.value}: {detail}{code}", failure.phase)
            self.recorder.info(f"{diagnosis.title} ({diagnosis.cause.value})", failure.phase)
        return TestResult(
            ok=failure is None,
            transcript=self.recorder.transcript(),
            context=self.plan.context(self._auth_label()),
            scrub=self.scrubber,
            diagnosis=diagnosis,
            tls=self.tls,
            auth_mechanism=self.mechanism,
            message_id=message.message_id if failure is None else None,
            server_reply=reply,
            started=started,
            duration_ms=round((clock() - t0) * 1000, 3),
        )

    def _may_quit(self, failure: Failure) -> bool:
        """QUIT after a refusal; never over an untrusted channel or inside a message body, and
        not after a 421: the server is closing the channel itself (RFC 5321 §3.8)."""
        return (
            failure.signal in (Signal.REPLY, Signal.OAUTH)
            and failure.code != 421
            and not self._in_body
        )

    def _auth_label(self) -> str:
        return self.mechanism.lower().replace("-", "_") if self.mechanism else self.plan.auth.value

    async def _close(self) -> None:
        """Close and wait until every connection is gone, so none outlives the event loop."""
        protocols = self.smtp.opened if self.smtp is not None else []
        transports = [p.transport for p in protocols if p.transport is not None]
        if self.smtp is not None:
            self.smtp.close()
        for transport in transports:
            if not transport.is_closing():
                transport.close()
        for protocol in protocols:
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), 2.0)
            except TimeoutError:
                stuck = protocol.transport
                if isinstance(stuck, asyncio.Transport):
                    stuck.abort()  # a peer that never finishes the TLS shutdown
                    await asyncio.sleep(0)

    # ------------------------------------------------------------------ steps

    async def _send(self, message: TestMessage) -> str:
        plan = self.plan
        self._check_setup()
        if plan.security is not Security.NONE:
            try:
                self._context = tls_context(plan)
            except (OSError, ssl.SSLError, ValueError):  # the file changed since the check
                problem = ca_file_problem(plan.ca_file or "") or "cannot be read"
                detail = f"ca_file: {plan.ca_file} {problem}"
                raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=detail)) from None
        self.recorder.info(
            f"connecting to {plan.host} port {plan.port}, security {plan.security.value}"
            + (f" (TLS {plan.tls_min_version}+, {self._trust_label()})" if self._context else ""),
            Phase.CONNECT,
        )
        override = (
            f"every reply waits the {plan.command_timeout:g} s of the command timeout"
            if plan.command_timeout is not None
            else "mailkit's defaults; a command timeout sets one wait for every reply"
        )
        self.recorder.info(f"waits: {self.waits.describe()} ({override})", Phase.CONNECT)
        smtp = RecordingSMTP(
            recorder=self.recorder,
            greeting_wait=self.waits.greeting,
            hostname=host_ascii(plan.host),
            port=plan.port,
            use_tls=plan.security is Security.IMPLICIT_TLS,
            start_tls=False,
            tls_context=self._context,
            local_hostname=plan.local_hostname,
            timeout=self.waits.command,
        )
        self.smtp = smtp
        try:
            await smtp.connect(timeout=self.waits.connect)
        except Exception as exc:  # classified below, never re-raised
            failure = failure_from_exception(exc, self.recorder.phase)
            if failure.phase is Phase.GREETING and failure.signal is Signal.TIMEOUT:
                failure = await self._probe_tls(failure)
            raise _Stop(failure) from None
        if plan.security is Security.IMPLICIT_TLS:
            self._tls_established(smtp)
        await self._ehlo(smtp)
        if plan.security is Security.STARTTLS:
            await self._starttls(smtp)
            await self._ehlo(smtp)
        mechanism = self._choose_mechanism(smtp)
        pipelining = smtp.supports_extension("pipelining")
        if pipelining:
            self.recorder.info("the server offers PIPELINING: commands are sent in groups")
        plain_in_group = mechanism == "PLAIN" and pipelining
        if mechanism is not None and not plain_in_group:
            await self._authenticate(smtp, mechanism)
        return await self._transaction(smtp, message, pipelining, plain_in_group)

    async def _probe_tls(self, failure: Failure) -> Failure:
        """After a silent greeting, see whether the port expects implicit TLS instead.

        A server on an implicit-TLS port waits for a TLS hello and so looks exactly like a
        silent one. One short handshake (nothing is sent over it) tells the two apart.
        """
        if self.plan.security is Security.IMPLICIT_TLS:
            return failure
        context = tls_context(self.plan)
        speaks_tls = False
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host_ascii(self.plan.host),
                    self.plan.port,
                    ssl=context,
                    server_hostname=host_ascii(self.plan.host),
                ),
                timeout=min(TLS_PROBE_WAIT, self.waits.connect),
            )
        except ssl.SSLCertVerificationError:
            speaks_tls = True
        except (OSError, TimeoutError):
            speaks_tls = False
        else:
            speaks_tls = True
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if not speaks_tls:
            return failure
        self.recorder.info(
            f"probe: port {self.plan.port} answers a TLS handshake, so it expects implicit TLS "
            "from the first byte",
            Phase.GREETING,
        )
        return Failure(Phase.GREETING, Signal.TIMEOUT, detail="port speaks implicit TLS")

    def _check_setup(self) -> None:
        plan = self.plan
        if plan.mode is not Mode.SMTP:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="mode"))
        if not plan.host:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="host"))
        if not plan.from_address:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="from_address"))
        if plan.ca_file is not None and plan.security is not Security.NONE and not plan.pin_sha256:
            problem = ca_file_problem(plan.ca_file)
            if problem is not None:
                detail = f"ca_file: {plan.ca_file} {problem}"
                raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=detail))
        auth = plan.auth.canonical
        if auth is AuthType.XOAUTH2 and self.token is None:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="token"))
        if auth not in (AuthType.NONE, AuthType.AUTO, AuthType.XOAUTH2) and not self.password:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="password"))
        sends_credentials = auth is not AuthType.NONE and (self.password or self.token)
        if plan.security is Security.NONE and sends_credentials and not plan.allow_plaintext_auth:
            raise _Stop(Failure(Phase.AUTH, Signal.POLICY, detail="plaintext"))

    def _trust_label(self) -> str:
        if self.plan.pin_sha256:
            return "pinned SHA-256"
        return f"CA file {self.plan.ca_file}" if self.plan.ca_file else "system CA store"

    async def _ehlo(self, smtp: SMTP) -> None:
        self.recorder.phase = Phase.EHLO
        try:
            await smtp.ehlo()
        except SMTPHeloError as exc:
            raise _Stop(failure_from_exception(exc, Phase.EHLO)) from None
        except Exception as exc:
            raise _Stop(failure_from_exception(exc, Phase.EHLO)) from None

    async def _starttls(self, smtp: SMTP) -> None:
        if not smtp.supports_extension("starttls"):
            self.recorder.info(
                "the server did not offer STARTTLS: mailkit sends no credentials and no mail "
                "without TLS and ends the session",
                Phase.STARTTLS,
            )
            await self._quit(smtp)
            raise _Stop(self._facts(smtp, Phase.STARTTLS, Signal.NOT_OFFERED, "STARTTLS"))
        self.recorder.phase = Phase.STARTTLS
        try:
            await smtp.starttls(
                server_hostname=host_ascii(self.plan.host), tls_context=self._context
            )
        except Exception as exc:
            # Until the server said 220 the trouble is STARTTLS itself (no answer, a refusal,
            # a hang-up); after it, the handshake.
            ready = any(
                r.dir is Direction.SERVER and r.phase is Phase.STARTTLS and r.code == 220
                for r in self.recorder.rows
            )
            phase = Phase.TLS if ready else Phase.STARTTLS
            raise _Stop(failure_from_exception(exc, phase)) from None
        self._tls_established(smtp)

    def _tls_established(self, smtp: SMTP) -> None:
        ssl_object = smtp.get_transport_info("ssl_object")
        if ssl_object is None:
            return
        self.recorder.tls_started()
        der = ssl_object.getpeercert(binary_form=True) or b""
        fingerprint = hashlib.sha256(der).hexdigest()
        info = describe_certificate(der, ssl_object, fingerprint, self._trust_label())
        self.tls = info
        until = f", valid until {info.not_after:%Y-%m-%d}" if info.not_after else ""
        self.recorder.info(
            f"TLS established: {info.version}, {info.cipher}; certificate subject {info.subject}, "
            f"issuer {info.issuer}, names {', '.join(info.san) or '-'}{until}",
            Phase.TLS,
        )
        if self.plan.pin_sha256:
            if fingerprint != self.plan.pin_sha256:
                self.recorder.info(
                    f"certificate SHA-256 {fingerprint} differs from the pinned "
                    f"{self.plan.pin_sha256}: nothing more is sent",
                    Phase.TLS,
                )
                raise _Stop(Failure(Phase.TLS, Signal.TLS_PIN, detail=fingerprint))
            self.recorder.info("certificate verified: SHA-256 matches the pin", Phase.TLS)
        else:
            self.recorder.info(
                f"certificate verified for {self.plan.host} by the {self._trust_label()}",
                Phase.TLS,
            )

    def _facts(self, smtp: SMTP, phase: Phase, signal: Signal, detail: str) -> Failure:
        return Failure(
            phase,
            signal,
            detail=detail,
            extensions=frozenset(k.upper() for k in smtp.esmtp_extensions),
            auth_mechanisms=frozenset(m.upper() for m in smtp.server_auth_methods),
        )

    def _choose_mechanism(self, smtp: SMTP) -> str | None:
        """The AUTH mechanism to use, or None to send without AUTH; says why in the transcript."""
        auth = self.plan.auth.canonical
        offered = [m.upper() for m in smtp.server_auth_methods]
        self.recorder.phase = Phase.AUTH
        if auth is AuthType.NONE:
            self.recorder.info("authorization type none: no AUTH")
            return None
        if auth is AuthType.AUTO and not self.password and self.token is None:
            self.recorder.info("no password or token stored: sending without AUTH")
            return None
        if not offered:
            raise _Stop(self._facts(smtp, Phase.AUTH, Signal.NOT_OFFERED, "AUTH"))
        if auth is not AuthType.AUTO:
            wanted = _MECHANISM_OF[auth]
            if wanted not in offered:
                raise _Stop(self._facts(smtp, Phase.AUTH, Signal.NOT_OFFERED, wanted))
            self.recorder.info(
                f"AUTH {wanted}: set in the settings (the server offers {' '.join(offered)})"
            )
            self.mechanism = wanted
            return wanted
        if self.token is not None and "XOAUTH2" in offered:
            self.recorder.info("AUTH XOAUTH2 chosen: an OAuth token is stored and offered")
            self.mechanism = "XOAUTH2"
            return "XOAUTH2"
        encrypted = self.plan.security is not Security.NONE
        order = PREFERRED_OVER_TLS if encrypted else PREFERRED_IN_CLEAR
        for candidate in order:
            if candidate in offered and self.password:
                why = (
                    "over verified TLS it is the first of PLAIN, LOGIN, CRAM-MD5, NTLM the "
                    "server offers"
                    if encrypted
                    else "without TLS, mechanisms that keep the password off the wire come first"
                )
                self.recorder.info(
                    f"AUTH {candidate} chosen (auto): the server offers {' '.join(offered)}; {why}"
                )
                self.mechanism = candidate
                return candidate
        raise _Stop(self._facts(smtp, Phase.AUTH, Signal.NOT_OFFERED, "no usable mechanism"))

    async def _token(self) -> Secret:
        assert self.token is not None
        try:
            # A plain provider may refresh over the network: off the loop (in a notebook the
            # kernel's), or the kernel and this session's timers freeze until it returns.
            provider = self.token
            value: Secret | Awaitable[Secret]
            if inspect.iscoroutinefunction(provider):
                value = provider()
            else:
                value = await asyncio.to_thread(provider)
            token = await value if isinstance(value, Awaitable) else value
        except OAuthError as exc:
            self.recorder.info("no access token: the token provider could not get one")
            failure = Failure(exc.diagnosis.phase, Signal.OAUTH, detail="token provider")
            raise _Stop(failure, exc.diagnosis) from None
        self.recorder.add_secret(token)
        return token

    async def _authenticate(self, smtp: SMTP, mechanism: str) -> None:
        user = self.plan.username or ""
        try:
            if mechanism == "XOAUTH2":
                token = await self._token()
                await smtp.auth_xoauth2(user, token.reveal())
            elif mechanism == "LOGIN":
                assert self.password is not None
                await smtp.auth_login(user, self.password.reveal())
            elif mechanism == "CRAM-MD5":
                assert self.password is not None
                await smtp.auth_crammd5(user, self.password.reveal())
            elif mechanism == "PLAIN":
                assert self.password is not None
                await smtp.auth_plain(user, self.password.reveal())
            elif mechanism == "NTLM":
                await self._auth_ntlm(smtp, user)
        except _Stop:
            raise
        except Exception as exc:
            raise _Stop(failure_from_exception(exc, Phase.AUTH)) from None

    async def _auth_ntlm(self, smtp: SMTP, user: str) -> None:
        assert self.password is not None
        client = spnego.client(
            user,
            self.password.reveal(),
            hostname=host_ascii(self.plan.host),
            service="SMTP",
            protocol="ntlm",
        )
        negotiate = client.step()
        assert negotiate is not None
        response = await smtp.execute_command(b"AUTH", b"NTLM", base64.b64encode(negotiate))
        if response.code != 334:
            raise SMTPAuthenticationError(response.code, response.message)
        challenge = base64.b64decode(response.message.strip() or b"")
        authenticate = client.step(challenge)
        assert authenticate is not None
        response = await smtp.execute_command(base64.b64encode(authenticate))
        if response.code != 235:
            raise SMTPAuthenticationError(response.code, response.message)

    async def _transaction(
        self, smtp: SMTP, message: TestMessage, pipelining: bool, plain_in_group: bool
    ) -> str:
        protocol = smtp.protocol
        assert isinstance(protocol, RecordingProtocol)
        payload = message.as_bytes()
        mail = f"MAIL FROM:<{message.sender}>"
        if smtp.supports_extension("size"):
            mail += f" SIZE={len(payload)}"
        if message.smtputf8:
            if not smtp.supports_extension("smtputf8"):
                raise _Stop(self._facts(smtp, Phase.MAIL, Signal.NOT_OFFERED, "SMTPUTF8"))
            mail += " SMTPUTF8"
        commands: list[tuple[Phase, bytes]] = []
        if plain_in_group:
            assert self.password is not None
            encoded = auth_plain_encode(self.plan.username or "", self.password.reveal())
            commands.append((Phase.AUTH, b"AUTH PLAIN " + encoded + b"\r\n"))
        commands.append((Phase.MAIL, mail.encode() + b"\r\n"))
        commands += [(Phase.RCPT, f"RCPT TO:<{r}>\r\n".encode()) for r in message.recipients]
        commands.append((Phase.DATA, b"DATA\r\n"))
        timeout = self.waits.command
        replies: list[tuple[Phase, SMTPResponse]] = []
        groups = [commands] if pipelining else [[c] for c in commands]
        for group in groups:
            try:
                responses = await protocol.pipeline(
                    b"".join(c for _, c in group), len(group), timeout
                )
            except PipelineError as exc:
                replies += list(zip([p for p, _ in group], exc.responses, strict=False))
                self._check_replies(replies, len(message.recipients))
                phase = group[len(exc.responses)][0]
                raise _Stop(failure_from_exception(exc, phase)) from None
            except Exception as exc:
                raise _Stop(failure_from_exception(exc, group[0][0])) from None
            replies += list(zip([p for p, _ in group], responses, strict=True))
            self._check_replies(replies, len(message.recipients))
            if protocol.unasked and group[-1][0] is not Phase.DATA:
                self._in_body = True  # whatever the server thinks comes next, say no more
                raise _Stop(_extra_reply(group[-1][0]))
        body = normalize_message_line_endings(payload)
        body = PERIOD_REGEX.sub(b"..", body) + b".\r\n"
        end = await self._end_of_data(protocol, body, pipelining)
        return end

    def _check_replies(self, replies: list[tuple[Phase, SMTPResponse]], recipients: int) -> None:
        """Stop at the first reply that ends the transaction (pipelined replies come in order).

        A recipient refusal stops the send only once every recipient was answered and none was
        accepted; DATA is then refused by the server too, but the RCPT reply says why.
        """
        accepted = answered = 0
        refusal: SMTPResponse | None = None
        # Whatever stops the send, a server that said 354 now reads everything as the body.
        self._in_body = any(p is Phase.DATA and r.code == 354 for p, r in replies)
        previous: Phase | None = None
        for phase, response in replies:
            if phase is Phase.DATA and 200 <= response.code < 300 and previous is not None:
                # DATA never answers 2xx: this is the command before it answered twice, and
                # the real answer to DATA (likely 354) is still on its way.
                self._in_body = True
                raise _Stop(_extra_reply(previous))
            previous = phase
            if phase is Phase.AUTH:
                self.mechanism = "PLAIN"
                if response.code != 235:
                    raise _Stop(_reply_failure(Phase.AUTH, response))
            elif phase is Phase.MAIL and response.code != 250:
                raise _Stop(_reply_failure(Phase.MAIL, response))
            elif phase is Phase.RCPT:
                answered += 1
                if response.code in (250, 251):
                    accepted += 1
                elif refusal is None:
                    refusal = response
            elif phase is Phase.DATA:
                if accepted == 0 and refusal is not None:
                    raise _Stop(_reply_failure(Phase.RCPT, refusal))
                if response.code != 354:
                    raise _Stop(_reply_failure(Phase.DATA, response))
        if answered == recipients and accepted == 0 and refusal is not None:
            raise _Stop(_reply_failure(Phase.RCPT, refusal))

    async def _end_of_data(self, protocol: RecordingProtocol, body: bytes, pipelining: bool) -> str:
        quit_with_body = pipelining
        data = body + (b"QUIT\r\n" if quit_with_body else b"")
        # The final dot gets the long wait; a QUIT pipelined behind it the same short one a
        # lone QUIT gets (the message is decided by then).
        waits = [self.waits.end_of_data, self.waits.quit]
        try:
            responses = await protocol.pipeline(data, 2 if quit_with_body else 1, waits)
        except PipelineError as exc:
            if not exc.responses:
                raise _Stop(failure_from_exception(exc, Phase.END_OF_DATA)) from None
            responses = exc.responses  # the message reply came; QUIT's did not: still fine
        except Exception as exc:
            raise _Stop(failure_from_exception(exc, Phase.END_OF_DATA)) from None
        final = responses[0]
        if final.code != 250:
            raise _Stop(_reply_failure(Phase.END_OF_DATA, final))
        if not quit_with_body and self.smtp is not None:
            await self._quit(self.smtp)
        return f"{final.code} {final.message}"

    async def _quit(self, smtp: SMTP) -> None:
        """Say goodbye politely, briefly; a server that does not answer is not a failure."""
        protocol = smtp.protocol
        if not isinstance(protocol, RecordingProtocol) or not smtp.is_connected:
            return
        self.recorder.phase = Phase.QUIT
        with contextlib.suppress(Exception):
            await protocol.pipeline(b"QUIT\r\n", 1, self.waits.quit)


# --------------------------------------------------------------------------- convenience


async def send_plan_async(
    plan: SmtpPlan,
    *,
    to: Sequence[str],
    password: Secret | None = None,
    token: TokenProvider | None = None,
    priority: Priority = Priority.NORMAL,
    on_row: Callable[[Row], None] | None = None,
) -> TestResult:
    """Send the test message with ``plan``; returns success or a diagnosis, never raises."""
    sender = SmtpTestSender(plan, password=password, token=token, on_row=on_row)
    try:
        message = build_test_message(
            sender=plan.from_address or "",
            recipients=list(to),
            sender_name=plan.from_name,
            priority=priority,
        )
    except ValueError as exc:
        failure = Failure(Phase.SETUP, Signal.MISSING, detail=f"address: {exc}")
        failure = _bounded(sender.scrubber.scrub_value(failure))
        return TestResult(
            ok=False,
            transcript=sender.recorder.transcript(),
            context=plan.context(),
            scrub=sender.scrubber,
            diagnosis=diagnose(failure, plan.context()),
        )
    return await sender.run(message)
