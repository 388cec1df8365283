"""HTTPS GET for discovery, with every host name resolved through mailkit's DNS client.

Autoconfig and Autodiscover live at names derived from the address (``autoconfig.DOMAIN``,
``autodiscover.DOMAIN``). Resolving them through :class:`mailkit.dnslookup.DnsClient` instead
of the system resolver means ``--dns-server`` answers for *every* lookup discovery makes, and
it is the test seam: a zone whose A records point at 127.0.0.1 sends these requests to a local
HTTPS server. The connection goes to the resolved address while TLS (SNI and certificate
check) and the ``Host`` header use the real name, as a browser would. ``https_port`` replaces
443 for URLs that name no port (the local server's ephemeral port in tests).

Rules, decided here once:
- HTTPS only. Thunderbird also asks ``http://autoconfig.DOMAIN``; mailkit does not, because an
  unencrypted answer could send a password to whoever answered it. A redirect to ``http://``
  is refused the same way.
- At most :data:`MAX_REDIRECTS` redirects, each to an ``https://`` URL, each host resolved anew.
- Bodies above :data:`MAX_BYTES` are cut off and reported, never read whole.
- No proxy settings and no cookies are used; trust is the system's CA store, or ``ca_file``.
- Every request ends by its own timeout, within the fetcher's ``timeout`` from its start:
  each step gets half of the time left (httpx times connect, TLS and each read separately).
  A request cancelled from outside in the middle of its TLS handshake would leave its socket
  to the garbage collector (httpcore closes it on errors, not on cancellation), so the
  caller's overall limit is only a backstop.
"""

from __future__ import annotations

import ipaddress
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin, urlsplit

from mailkit.dnslookup import DnsClient
from mailkit.fields import is_ip_address

if TYPE_CHECKING:
    import httpx

MAX_REDIRECTS = 5
MAX_BYTES = 512 * 1024

FetchStatus = Literal[
    "ok",
    "not_found",
    "http_error",
    "no_host",
    "dns",
    "refused",
    "tls",
    "timeout",
    "too_large",
    "error",
]


@dataclass(frozen=True)
class Fetched:
    """One GET's outcome: the body on 200, else the reason in words."""

    url: str
    status: FetchStatus
    body: bytes = b""
    detail: str = ""
    #: Where the body really came from, after redirects.
    final_url: str = ""
    http_status: int = 0
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Fetcher:
    """GETs over HTTPS, names resolved by ``dns``; one connection pool per discovery run."""

    def __init__(
        self,
        dns: DnsClient,
        *,
        timeout: float = 5.0,
        ca_file: str | None = None,
        https_port: int | None = None,
    ) -> None:
        self.dns = dns
        self.timeout = timeout
        self.ca_file = ca_file
        self.https_port = https_port
        self._client: httpx.AsyncClient | None = None
        self._deadline = 0.0

    async def __aenter__(self) -> Fetcher:
        import httpx

        self._deadline = time.monotonic() + self.timeout
        context = ssl.create_default_context(cafile=self.ca_file)
        self._client = httpx.AsyncClient(
            verify=context,
            timeout=httpx.Timeout(self.timeout),
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": "mailkit", "Accept": "application/xml, application/json"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(self, url: str) -> Fetched:
        started = time.perf_counter()
        result = await self._get(url)
        return _with_time(result, started)

    async def _get(self, url: str) -> Fetched:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(current)
            if parts.scheme != "https" or not parts.hostname:
                return Fetched(url, "refused", detail=f"{current} is not an https:// URL")
            host = parts.hostname
            port = parts.port or self.https_port or 443
            address = await self._address(host)
            if isinstance(address, Fetched):
                return Fetched(url, address.status, detail=address.detail, final_url=current)
            target = f"[{address}]" if ":" in address else address
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            fetched = await self._request(url, current, f"https://{target}:{port}{path}", host)
            if isinstance(fetched, Fetched):
                return fetched
            location = fetched
            current = urljoin(current, location)
        return Fetched(url, "error", detail=f"more than {MAX_REDIRECTS} redirects")

    async def _address(self, host: str) -> str | Fetched:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return host
        statuses = []
        for rdtype in ("A", "AAAA"):
            answer = await self.dns.query(host, rdtype)
            if answer.ok and answer.values:
                return str(answer.values[0])
            if not answer.missing:
                detail = f" ({answer.detail})" if answer.detail else ""
                return Fetched(host, "dns", detail=f"{host}: DNS {answer.status}{detail}")
            statuses.append(answer.status)
        if "nxdomain" in statuses:
            return Fetched(host, "no_host", detail=f"{host} does not exist in DNS")
        return Fetched(host, "no_host", detail=f"{host} has no address in DNS")

    async def _request(self, url: str, current: str, address_url: str, host: str) -> Fetched | str:
        import httpx

        assert self._client is not None, "use the Fetcher as an async context manager"
        left = self._deadline - time.monotonic()
        if left <= 0:
            return Fetched(url, "timeout", detail=f"no answer within {self.timeout:g} s")
        extensions: dict[str, Any] = {} if is_ip_address(host) else {"sni_hostname": host}
        headers = {"Host": urlsplit(current).netloc}
        try:
            async with self._client.stream(
                "GET",
                address_url,
                headers=headers,
                extensions=extensions,
                timeout=httpx.Timeout(max(left / 2, 0.05)),
            ) as response:
                if response.status_code in (301, 302, 303, 307, 308):
                    location = str(response.headers.get("location", ""))
                    if not location:
                        return Fetched(url, "error", detail="a redirect without a Location")
                    return location
                if response.status_code != 200:
                    status: FetchStatus = (
                        "not_found" if response.status_code in (404, 410) else "http_error"
                    )
                    return Fetched(
                        url,
                        status,
                        detail=f"HTTP {response.status_code}",
                        final_url=current,
                        http_status=response.status_code,
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BYTES:
                        return Fetched(
                            url,
                            "too_large",
                            detail=f"more than {MAX_BYTES} bytes",
                            final_url=current,
                        )
                    chunks.append(chunk)
                return Fetched(url, "ok", b"".join(chunks), final_url=current, http_status=200)
        except httpx.TimeoutException:
            return Fetched(url, "timeout", detail=f"no answer within {self.timeout:g} s")
        except httpx.ConnectError as exc:
            text = str(exc)
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
                return Fetched(
                    url, "tls", detail=f"the certificate of {host} is not trusted ({text})"
                )
            return Fetched(url, "refused", detail=f"cannot connect to {host} ({text or 'refused'})")
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            return Fetched(url, "error", detail=f"{type(exc).__name__}: {exc}")


def _with_time(result: Fetched, started: float) -> Fetched:
    from dataclasses import replace

    return replace(result, elapsed_ms=(time.perf_counter() - started) * 1000)
