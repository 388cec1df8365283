"""A loopback TCP proxy that adds a fixed one-way delay in each direction.

Every chunk read from one side is written to the other side ``one_way_delay`` seconds after it
arrived, in the order it arrived (a FIFO per direction, so a chunk never overtakes an earlier
one). End of stream travels the same way: it reaches the other side one delay after it was seen.
Round-trip time through the proxy is therefore ``2 * one_way_delay`` plus loopback noise, the
event loop's timer granularity (under 1 ms per leg on Linux) and, when the proxy shares a
process with busy threads, waiting for the GIL; :attr:`ProxyStats.late_ms_mean` shows what it
actually was.

Only data is delayed, not TCP itself: segments are acknowledged by the local kernel on the
proxy's side, without the delay, so TCP effects that depend on acknowledgements (Nagle's
algorithm with delayed ACKs, congestion windows) do not behave as over a real long link.

The TCP handshake itself is *not* delayed: the client's ``connect()`` returns at once and the
proxy opens the upstream connection immediately, so a server greeting reaches the client half a
round trip after the connect. That models "the connection is up, now count the dialog".

Two ways to use it:

* inside a running event loop: ``async with LatencyProxy(host, port, one_way_delay=0.025) as
  proxy: ... proxy.port ...``;
* from synchronous code, or to keep the proxy's timers away from the client's own CPU work:
  ``with ThreadedLatencyProxy(host, port, one_way_delay=0.025) as proxy: ...`` runs it on an
  event loop in a background thread.

Lifetime is bounded: after ``lifetime`` seconds the proxy closes its listener and every
connection by itself, so a forgotten proxy cannot outlive a benchmark. Closing (explicitly,
by the context manager, or by the lifetime) is clean: the listener stops, the pumps are
cancelled, both sockets of every connection are closed and awaited.

Only loopback addresses are accepted, for listening and upstream: the proxy never talks to the
network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = ["BackgroundLoop", "LatencyProxy", "ProxyStats", "ThreadedLatencyProxy"]

T = TypeVar("T")

#: Largest read per chunk; a chunk is delayed and forwarded as one write.
READ_SIZE = 64 * 1024
#: Default bound on a proxy's life, in seconds.
DEFAULT_LIFETIME = 300.0
#: How long closing waits for sockets to finish closing, in seconds.
CLOSE_TIMEOUT = 2.0


@dataclass
class ProxyStats:
    """Counters of what went through the proxy (upstream = client to server)."""

    connections: int = 0
    chunks_up: int = 0
    chunks_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    #: How late chunks were forwarded compared with their due time (timers, GIL), in ms.
    late_ms_total: float = 0.0
    late_ms_max: float = 0.0

    @property
    def chunks(self) -> int:
        return self.chunks_up + self.chunks_down

    @property
    def late_ms_mean(self) -> float:
        return self.late_ms_total / self.chunks if self.chunks else 0.0


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the latency proxy works on loopback only, not {host!r}")


class LatencyProxy:
    """A TCP proxy on loopback delaying each direction by ``one_way_delay`` seconds."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        one_way_delay: float,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        if one_way_delay < 0:
            raise ValueError("one_way_delay must not be negative")
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        _check_loopback(listen_host)
        _check_loopback(upstream_host)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.one_way_delay = one_way_delay
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.lifetime = lifetime
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._expiry: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The port the proxy listens on (known once :meth:`start` returned)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the proxy is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def rtt(self) -> float:
        """The round-trip time the proxy adds, in seconds."""
        return 2 * self.one_way_delay

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the proxy was already started")
        self._server = await asyncio.start_server(self._handle, self.listen_host, self.listen_port)
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(self.lifetime, self._expire)

    def _expire(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def aclose(self) -> None:
        """Stop listening, cut every connection and wait until all is closed."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def wait_closed(self) -> None:
        """Wait until the proxy was closed (explicitly or at the end of its lifetime)."""
        await self._closed.wait()

    async def _close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT)
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=CLOSE_TIMEOUT)
        for writer in list(self._writers):
            writer.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
        self._writers.clear()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CLOSE_TIMEOUT)
        self._closed.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ connections

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        # start_server runs this callback as a task of its own. Closing does not cancel it
        # (Python 3.11's streams log an error for a cancelled callback task); it cancels the
        # pumps, after which this returns by itself, and closing waits for that.
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._writers.add(c_writer)
        self.stats.connections += 1
        try:
            s_reader, s_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            c_writer.close()
            self._writers.discard(c_writer)
            return
        self._writers.add(s_writer)
        try:
            if self._closing is not None:  # closed while connecting upstream
                return
            up = self._spawn(self._pump(c_reader, s_writer, upstream=True))
            down = self._spawn(self._pump(s_reader, c_writer, upstream=False))
            # One direction failing (reset, write error) ends the connection; a clean EOF in
            # one direction leaves the other open (half-close) until it ends too.
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
            for pump in (up, down):
                pump.cancel()
            # Retrieve every outcome: a failed direction just ends the connection.
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            for writer in (c_writer, s_writer):
                writer.close()
            for writer in (c_writer, s_writer):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
                self._writers.discard(writer)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        """Forward one direction: read as it comes, write each chunk one delay later.

        Returns once end of stream was read and forwarded; raises if writing failed.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while True:
                try:
                    data = await reader.read(READ_SIZE)
                except ConnectionError:
                    data = b""
                queue.put_nowait((loop.time() + self.one_way_delay, data))
                if not data:
                    return

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:  # end of stream, delayed like data
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                self._count(upstream, len(data), max(0.0, (loop.time() - due) * 1000))
                writer.write(data)
                await writer.drain()

        reading, delivery = self._spawn(read()), self._spawn(deliver())
        try:
            await asyncio.wait({reading, delivery}, return_when=asyncio.FIRST_EXCEPTION)
            failures = [
                t.exception() for t in (reading, delivery) if t.done() and not t.cancelled()
            ]
            for failure in failures:
                if failure is not None:
                    raise failure
            await delivery
        finally:
            reading.cancel()
            delivery.cancel()

    def _count(self, upstream: bool, size: int, late_ms: float) -> None:
        stats = self.stats
        if upstream:
            stats.chunks_up += 1
            stats.bytes_up += size
        else:
            stats.chunks_down += 1
            stats.bytes_down += size
        stats.late_ms_total += late_ms
        stats.late_ms_max = max(stats.late_ms_max, late_ms)


class BackgroundLoop:
    """An asyncio event loop running in a daemon thread, for servers and proxies."""

    def __init__(self, name: str = "background-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coro`` on the background loop and wait for its result."""
        return self.submit(coro).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what is left, stop the loop, join the thread and close the loop."""
        if not self._thread.is_alive():
            return

        async def cancel_rest() -> None:
            current = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not current]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(cancel_rest(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedLatencyProxy:
    """A :class:`LatencyProxy` on its own event loop thread (usable from synchronous code)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        one_way_delay: float,
        listen_host: str = "127.0.0.1",
        lifetime: float = DEFAULT_LIFETIME,
    ) -> None:
        self._background = BackgroundLoop("latency-proxy")
        self._args = (upstream_host, upstream_port)
        self._kwargs: dict[str, Any] = {
            "one_way_delay": one_way_delay,
            "listen_host": listen_host,
            "lifetime": lifetime,
        }
        self.proxy: LatencyProxy | None = None

    def start(self) -> LatencyProxy:
        self._background.start()

        async def make() -> LatencyProxy:
            proxy = LatencyProxy(*self._args, **self._kwargs)
            await proxy.start()
            return proxy

        self.proxy = self._background.call(make())
        return self.proxy

    @property
    def port(self) -> int:
        if self.proxy is None:
            raise RuntimeError("the proxy is not started")
        return self.proxy.port

    def close(self) -> None:
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                self._background.call(self.proxy.aclose(), CLOSE_TIMEOUT * 3)
        self._background.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
