"""DNS lookups for discovery and domain health: one resolver, one answer type, one cache.

Every lookup mailkit makes (SRV and MX for discovery; TXT for SPF, DMARC and DKIM; A/AAAA for
a sending host) goes through :class:`DnsClient`, so that ``--dns-server HOST:PORT`` (or
``MAILKIT_DNS_SERVER``) points all of them at one server, every answer has a per-query
timeout, and a name asked twice in one run is asked of the network once. A failed lookup is
an answer too (:class:`DnsAnswer` with a status), never an exception: the callers turn
"no such domain" and "the server did not answer" into different findings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import dns.asyncresolver

#: Names a DNS server for every lookup, as ``--dns-server`` does: ``HOST[:PORT]``.
DNS_SERVER_ENV = "MAILKIT_DNS_SERVER"
DEFAULT_TIMEOUT = 3.0

Status = Literal["ok", "nxdomain", "nodata", "timeout", "servfail", "refused", "error"]


@dataclass(frozen=True)
class DnsAnswer:
    """What one (name, type) lookup found: the records as text, or why there are none."""

    name: str
    rdtype: str
    status: Status
    #: Each record in presentation form (``10 mx.example.com.``); TXT strings joined, unquoted.
    records: tuple[str, ...] = ()
    #: What went wrong, in words, for statuses other than ok / nxdomain / nodata.
    detail: str = ""
    elapsed_ms: float = 0.0
    #: Structured records: (preference, exchange) for MX; (priority, weight, port, target) for
    #: SRV; the address for A/AAAA; the joined string for TXT.
    values: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def missing(self) -> bool:
        """The name or the record type does not exist (a definite answer, not a failure)."""
        return self.status in ("nxdomain", "nodata")


def parse_dns_server(text: str, *, flag: str = "--dns-server") -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) to (address, port); a clear ValueError else.

    ``flag`` names the setting in the error, as the face that read it calls it.
    """
    value = text.strip()
    host, port_text = value, ""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{flag}: {text!r} is not HOST[:PORT]; write [ADDRESS]:PORT for IPv6")
        port_text = rest[1:]
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{flag}: {host!r} is not an IP address; give the DNS server's address, e.g. "
            "127.0.0.1:5353 (a name would need DNS to find DNS)"
        ) from None
    if not port_text:
        return host, 53
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f"{flag}: the port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def dns_server_from_env() -> str | None:
    return os.environ.get(DNS_SERVER_ENV) or None


class DnsClient:
    """Asynchronous lookups with a timeout each, a per-client cache, and a query count.

    ``server``: ``HOST[:PORT]``, else ``MAILKIT_DNS_SERVER``, else the system's resolvers.
    Concurrent lookups of the same (name, type) share one query.
    """

    def __init__(self, server: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server = server if server is not None else dns_server_from_env()
        self.timeout = timeout
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._pending: dict[tuple[str, str], asyncio.Future[DnsAnswer]] = {}
        self._cache: dict[tuple[str, str], DnsAnswer] = {}
        #: How many lookups went to the network (cache hits are not counted).
        self.sent = 0

    def _make_resolver(self) -> dns.asyncresolver.Resolver:
        import dns.asyncresolver

        if self.server is None:
            try:
                resolver = dns.asyncresolver.Resolver()
            except Exception:  # no resolv.conf: an answer of "error" for every lookup
                resolver = dns.asyncresolver.Resolver(configure=False)
        else:
            host, port = parse_dns_server(self.server)
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = port
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout
        resolver.cache = None
        return resolver

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        """Look ``name`` up for ``rdtype`` (``"MX"``, ``"TXT"``, ``"SRV"``, ``"A"`` …)."""
        key = (name.rstrip(".").lower() + ".", rdtype.upper())
        if key in self._cache:
            return self._cache[key]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[DnsAnswer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await self._lookup(*key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: only the waiters care
            raise
        finally:
            self._pending.pop(key, None)
        self._cache[key] = answer
        future.set_result(answer)
        return answer

    async def _lookup(self, name: str, rdtype: str) -> DnsAnswer:
        import dns.exception
        import dns.resolver

        if self._resolver is None:
            self._resolver = self._make_resolver()
        self.sent += 1
        started = time.perf_counter()

        def done(status: Status, detail: str = "", answer: Any = None) -> DnsAnswer:
            records: tuple[str, ...] = ()
            values: tuple[Any, ...] = ()
            if answer is not None:
                records, values = _records(rdtype, answer)
            return DnsAnswer(
                name=name,
                rdtype=rdtype,
                status=status,
                records=records,
                detail=detail,
                elapsed_ms=(time.perf_counter() - started) * 1000,
                values=values,
            )

        try:
            answer = await self._resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return done("nxdomain")
        except dns.resolver.LifetimeTimeout:
            return done("timeout", f"no answer within {self.timeout:g} s")
        except dns.resolver.NoNameservers as exc:
            text = str(exc)
            status: Status = "refused" if "REFUSED" in text else "servfail"
            return done(status, text)
        except dns.exception.DNSException as exc:
            return done("error", str(exc) or type(exc).__name__)
        if answer.rrset is None:
            return done("nodata")
        return done("ok", answer=answer)


def _records(rdtype: str, answer: Any) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    texts: list[str] = []
    values: list[Any] = []
    for rdata in answer:
        if rdtype == "TXT":
            joined = b"".join(rdata.strings).decode("utf-8", "replace")
            texts.append(joined)
            values.append(joined)
        elif rdtype == "MX":
            texts.append(rdata.to_text())
            values.append((int(rdata.preference), rdata.exchange.to_text().rstrip(".").lower()))
        elif rdtype == "SRV":
            texts.append(rdata.to_text())
            target = rdata.target.to_text().rstrip(".").lower()
            values.append((int(rdata.priority), int(rdata.weight), int(rdata.port), target))
        elif rdtype in ("A", "AAAA"):
            texts.append(rdata.address)
            values.append(rdata.address)
        else:
            texts.append(rdata.to_text())
            values.append(rdata.to_text())
    if rdtype == "MX":
        order = sorted(range(len(values)), key=lambda i: values[i])
        return tuple(texts[i] for i in order), tuple(values[i] for i in order)
    return tuple(texts), tuple(values)
