"""Ports that misbehave below SMTP: silent, blackholed, resetting, stalling in TLS.

The probe (``mailkit probe``) has to decide quickly although some ports never answer; its
tests and its benchmark need such ports on loopback, made the same way in both, so they are
written once here. Each listens on 127.0.0.1 at a free port; every one of them is served by
one event loop in a daemon thread, started with the first port and stopped by :meth:`close`.

What each stands in for:

- :meth:`MisbehavingPorts.silent`: accepts and never says a word (a server that hangs before
  its greeting, or a firewall that completes the TCP handshake and then drops everything).
  It reads and discards what the client sends, so it also never answers a TLS hello: an
  implicit-TLS port whose server never answers the ClientHello looks exactly like this.
- :meth:`MisbehavingPorts.blackholed`: a listening socket with a backlog of one whose queue is
  already full, so the kernel drops every further SYN and the client's connect never
  completes. Loopback cannot drop packets the way a firewall does; a full accept queue makes
  Linux ignore the SYN instead (with ``tcp_abort_on_overflow`` at its default 0), which is
  what a blackholed port looks like to the client.
- :meth:`MisbehavingPorts.resetting`: accepts, then closes with ``SO_LINGER`` 0, which sends
  a TCP RST instead of a FIN.
- :meth:`MisbehavingPorts.stalls_after_starttls`: greets, offers STARTTLS in its EHLO reply,
  answers ``220`` to STARTTLS, and then never completes (never even answers) the handshake.
- :meth:`MisbehavingPorts.stalls_in_tls`: expects TLS from the first byte, reads the
  ClientHello, sends the first bytes of a ServerHello record, and stalls there.
- :meth:`MisbehavingPorts.slow_greeting`: greets the way Postfix's postscreen does, with a
  first ``220-`` line at once and the last line ``hold`` seconds later (postscreen holds it
  back to catch spambots that talk too early), then plain SMTP without STARTTLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["MisbehavingPorts"]

HOST = "127.0.0.1"
T = TypeVar("T")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _drain_forever(reader: asyncio.StreamReader) -> None:
    """Read and discard until the client leaves, so its writes never block."""
    while await reader.read(65536):
        pass


class MisbehavingPorts:
    """Misbehaving listeners on loopback, for as long as this object is open.

    ``hang`` bounds how long a silent connection is held (a client that never leaves
    cannot keep a thread busy past it).
    """

    def __init__(self, hang: float = 60.0) -> None:
        self.hang = hang
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._sockets: list[socket.socket] = []
        self._writers: set[asyncio.StreamWriter] = set()
        #: Connections each port accepted, by port (the blackholed one accepts none).
        self.accepted: dict[int, int] = {}

    # ------------------------------------------------------------------ the ports

    def silent(self) -> int:
        """A port that accepts and never speaks."""
        return self._serve(self._silent)

    def resetting(self) -> int:
        """A port that accepts and answers with a TCP reset."""
        return self._serve(self._reset)

    def stalls_after_starttls(self) -> int:
        """A port whose STARTTLS gets ``220`` and then a handshake that never progresses."""
        return self._serve(self._starttls_stall)

    def stalls_in_tls(self) -> int:
        """An implicit-TLS port that starts its ServerHello and never finishes it."""
        return self._serve(self._tls_stall)

    def slow_greeting(self, hold: float) -> int:
        """A port whose greeting's last line comes ``hold`` seconds after its first."""

        async def behaviour(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220-slow.example.test ESMTP (mailkit misbehaving port)\r\n")
            await writer.drain()
            await asyncio.sleep(hold)
            writer.write(b"220 slow.example.test ESMTP\r\n")
            await self._plain_smtp(reader, writer, b"250-slow.example.test\r\n250 PIPELINING\r\n")

        return self._serve(behaviour)

    def blackholed(self) -> int:
        """A port whose connects never complete (a full accept queue: SYNs are dropped)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((HOST, 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.settimeout(2.0)
        filler.connect((HOST, port))  # takes the one place in the queue; nobody accepts it
        self._sockets += [listener, filler]
        self.accepted[port] = 0
        return port

    # ------------------------------------------------------------------ behaviours

    async def _silent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _drain_forever(reader)

    async def _reset(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _starttls_stall(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"220 stall.example.test ESMTP (mailkit misbehaving port)\r\n")
        await self._plain_smtp(
            reader,
            writer,
            b"250-stall.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n",
        )

    async def _plain_smtp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ehlo: bytes
    ) -> None:
        """EHLO gets ``ehlo``, QUIT a goodbye, STARTTLS a 220 and then silence."""
        while line := await reader.readline():
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(ehlo)
            elif verb == b"STARTTLS":
                writer.write(b"220 2.0.0 Ready to start TLS\r\n")
                await writer.drain()
                await _drain_forever(reader)  # the ClientHello is read, never answered
                return
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                return
            else:
                writer.write(b"502 5.5.2 Error: command not recognized\r\n")
            await writer.drain()

    async def _tls_stall(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await reader.readexactly(5)  # the ClientHello's record header
        await reader.readexactly(int.from_bytes(header[3:5], "big"))
        # A handshake record of 122 bytes announced, and only its first 4 sent.
        writer.write(bytes([0x16, 0x03, 0x03, 0x00, 0x7A, 0x02, 0x00, 0x00, 0x76]))
        await writer.drain()
        await _drain_forever(reader)

    # ------------------------------------------------------------------ plumbing

    def _serve(self, behaviour: Handler) -> int:
        async def start() -> int:
            port_box: list[int] = []

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                self.accepted[port_box[0]] += 1
                self._writers.add(writer)
                try:
                    async with asyncio.timeout(self.hang):
                        await behaviour(reader, writer)
                except (TimeoutError, OSError, asyncio.IncompleteReadError):
                    pass
                finally:
                    self._writers.discard(writer)
                    writer.transport.abort()

            server = await asyncio.start_server(handle, HOST, 0)
            port: int = server.sockets[0].getsockname()[1]
            port_box.append(port)
            self.accepted[port] = 0
            self._servers.append(server)
            return port

        return self._call(start())

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="misbehaving-ports", daemon=True
            )
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def close(self) -> None:
        """Stop every port and the loop; connections still open are dropped."""
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def stop() -> None:
            for server in self._servers:
                server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for server in self._servers:
                with contextlib.suppress(Exception):
                    await server.wait_closed()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._servers.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
