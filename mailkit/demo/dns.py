"""A small authoritative DNS server on loopback: the demo's zone and the tests' zones.

Discovery (SRV, MX) and domain health (SPF, DMARC, DKIM) look records up over the real DNS
protocol; to test them, and to let the demo show a healthy domain, this server answers from
zone files in BIND's master format, over UDP and TCP on one port, as an authoritative server
would: answers with the AA flag, CNAMEs followed inside its zones, NXDOMAIN or an empty answer
(NODATA) with the zone's SOA, REFUSED for names outside its zones, and the TC flag when an
answer does not fit a UDP datagram (dnspython's resolver then asks again over TCP).

Two knobs stand in for a real network: ``latency`` delays every answer (concurrently, as a
distant server would), and ``silent`` names are never answered (a resolver's timeout). Every
query is counted, so a test can prove a name was asked for once.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import dns.message
    import dns.name
    import dns.zone

#: A UDP answer larger than this (without EDNS) is truncated, as RFC 1035 says.
UDP_PLAIN_LIMIT = 512


class DnsServer:
    """Authoritative answers for ``zones`` (origin → zone text) on ``127.0.0.1:port``.

    ``start()``/``stop()`` run it on an event loop of its own in a thread (a kernel's or a
    test's loop is left alone); ``open()``/``close()`` run it on the caller's loop instead (the
    demo server's). ``address`` is what ``--dns-server`` takes.
    """

    def __init__(
        self,
        zones: Mapping[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        silent: Iterable[str] = (),
    ) -> None:
        import dns.name
        import dns.zone

        self.host = host
        self._wanted_port = port
        self.latency = latency
        self._zones: list[dns.zone.Zone] = [
            dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)
            for origin, text in zones.items()
        ]
        # Longest origin first, so a delegated child zone wins over its parent.
        self._zones.sort(key=lambda zone: len(zone.origin or dns.name.root), reverse=True)
        self._silent = {dns.name.from_text(name) for name in silent}
        self._queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- where and what -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the DNS server is not running; call start() or open() first")
        return self._port

    @property
    def address(self) -> str:
        """``HOST:PORT``, the form ``--dns-server`` and ``MAILKIT_DNS_SERVER`` take."""
        return f"{self.host}:{self.port}"

    def queries(self) -> Counter[tuple[str, str]]:
        """How often each (name, type) was asked, e.g. ``("example.com.", "TXT")``."""
        with self._lock:
            return Counter(self._queries)

    def reset_queries(self) -> None:
        with self._lock:
            self._queries.clear()

    # -- running on the caller's loop ------------------------------------------------------

    async def open(self) -> None:
        """Listen on UDP and TCP, on the same port (an ephemeral one when ``port`` is 0)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        port = self._wanted_port
        # The UDP port is chosen first; TCP takes the same number (retried if it is taken).
        for _ in range(20):
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, port)
            )
            chosen = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, chosen)
            except OSError:
                transport.close()
                if port:
                    raise
                continue
            self._transport = transport
            self._port = chosen
            return
        raise OSError("no free port for the DNS server on both UDP and TCP")

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._port = 0

    # -- running in a thread of its own -----------------------------------------------------

    def start(self, timeout: float = 10.0) -> DnsServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.open())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="mailkit-dns", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the DNS server did not start in time")
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- answering ----------------------------------------------------------------------------

    def answer(self, wire: bytes, *, limit: int | None) -> bytes | None:
        """The wire answer to one query, or None to stay silent. ``limit``: UDP's size limit."""
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rcode

        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not a DNS message: a real server drops it too
        if not query.question:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        with self._lock:
            self._queries[(question.name.to_text(), _type_name(question.rdtype))] += 1
        if any(question.name.is_subdomain(name) for name in self._silent):
            return None
        response = self._respond(query, question.name, question.rdtype)
        if limit is None:
            return bytes(response.to_wire())
        payload = max(UDP_PLAIN_LIMIT, query.payload if query.edns >= 0 else UDP_PLAIN_LIMIT)
        try:
            return bytes(response.to_wire(max_size=payload))
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query)
            truncated.flags |= dns.flags.TC | dns.flags.AA
            return truncated.to_wire()

    def _respond(self, query: dns.message.Message, qname: dns.name.Name, rdtype: int) -> Any:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype

        response = dns.message.make_response(query)
        zone = self._zone_for(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        name = qname
        for _ in range(8):  # a CNAME chain inside our zones, as far as it goes
            node = zone.get_node(name)
            if node is None:
                has_children = any(other.is_subdomain(name) for other in zone.nodes)
                if not has_children:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self._add_soa(response, zone)
                return response
            found = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RdataType(rdtype))
            if found is not None:
                response.answer.append(_rrset(name, found))
                return response
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or rdtype == dns.rdatatype.CNAME:
                self._add_soa(response, zone)
                return response
            response.answer.append(_rrset(name, cname))
            name = cname[0].target
            next_zone = self._zone_for(name)
            if next_zone is None:
                return response  # the target is elsewhere: the resolver follows it
            zone = next_zone
        return response

    def _zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        for zone in self._zones:
            if zone.origin is not None and name.is_subdomain(zone.origin):
                return zone
        return None

    @staticmethod
    def _add_soa(response: dns.message.Message, zone: dns.zone.Zone) -> None:
        import dns.rdatatype

        assert zone.origin is not None
        soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
        if soa is not None:
            response.authority.append(_rrset(zone.origin, soa))

    async def _delayed(self, send: Any, wire: bytes, limit: int | None) -> None:
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self.answer(wire, limit=limit)
        if reply is not None:
            send(reply)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(reply: bytes) -> None:
            writer.write(struct.pack("!H", len(reply)) + reply)

        try:
            while True:
                header = await reader.readexactly(2)
                (length,) = struct.unpack("!H", header)
                wire = await reader.readexactly(length)
                await self._delayed(send, wire, None)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        transport = self.transport
        if transport is None:
            return

        def send(reply: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(reply, addr)

        self.server._spawn(self.server._delayed(send, data, UDP_PLAIN_LIMIT))


def _rrset(name: dns.name.Name, rdataset: Any) -> Any:
    import dns.rrset

    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype)
    rrset.update(rdataset)  # type: ignore[no-untyped-call]
    return rrset


def _type_name(rdtype: int) -> str:
    import dns.rdatatype

    return dns.rdatatype.to_text(dns.rdatatype.RdataType(rdtype))
