"""The SMTP wire as mailkit sees it: every byte recorded, commands pipelined.

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
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from aiosmtplib import SMTP
from aiosmtplib.errors import (
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPException,
    SMTPReadTimeoutError,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.protocol import (
    MAX_RESPONSE_LENGTH,
    SMTPProtocol,
)
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import SMTPStatus

from mailkit.transcript import Recorder


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
