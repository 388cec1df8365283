"""Discovery: from an email address to ranked server candidates, every source at once.

All sources start together and each gets the same time limit; the built-in presets need no
network and are in the report whatever happens, so with no network at all discovery still
answers (with what the presets know) once the limit has passed. A source that fails is a line
in the report's lookups, never an exception.

Who learns what: the domain's own DNS and web server see the lookups a mail client would make;
Thunderbird's ISPDB (``MAILKIT_ISPDB_URL``) sees the domain only; Microsoft's Autodiscover sees
the address only when the domain's MX records already point at Microsoft 365.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from mailkit.discovery.candidates import (
    Candidate,
    DiscoveryReport,
    Outcome,
    Parsed,
    Proposal,
    SourceReport,
    guess_candidates,
    infer_from_mx,
    parse_autoconfig,
    parse_autodiscover,
    preset_for_address,
    propose,
    rank,
    split_address,
    srv_candidates,
)
from mailkit.discovery.fetch import Fetched, Fetcher
from mailkit.dnslookup import DnsClient, parse_dns_server
from mailkit.fields import Mode, Security
from mailkit.runner import run_sync

if TYPE_CHECKING:
    from mailkit.probereport import ProbeReport

#: Thunderbird's ISPDB; set this to a private mirror (or a test server) to ask it instead.
ISPDB_ENV = "MAILKIT_ISPDB_URL"
DEFAULT_ISPDB_URL = "https://autoconfig.thunderbird.net/v1.1/"
#: Exchange Online's Autodiscover v2 root; set this to ask another (a test server).
AUTODISCOVER_ENV = "MAILKIT_AUTODISCOVER_URL"
DEFAULT_AUTODISCOVER_URL = "https://outlook.office365.com/autodiscover/autodiscover.json"
#: The port for https:// URLs that name none, instead of 443: a lab's or a test's local
#: autoconfig server (the ``https_port`` argument wins over it).
HTTPS_PORT_ENV = "MAILKIT_DISCOVER_HTTPS_PORT"
#: Seconds for the whole discovery (every source runs at once, each within this limit).
DEFAULT_TIMEOUT = 5.0

_Found = list[tuple[SourceReport, Parsed]]


def discover(
    email: str,
    *,
    dns_server: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    https_port: int | None = None,
) -> DiscoveryReport:
    """Find the submission settings for ``email``: blocking, also inside a notebook.

    ``dns_server`` (``HOST:PORT``, else ``MAILKIT_DNS_SERVER``, else the system's resolvers)
    answers every lookup, including the names of the web servers asked. ``ca_file`` trusts
    that CA instead of the system's for those web servers; ``https_port`` replaces port 443
    for them (a local test server). Raises ValueError, naming the parameter, for bad input.
    """
    return run_sync(
        discover_async(
            email, dns_server=dns_server, timeout=timeout, ca_file=ca_file, https_port=https_port
        )
    )


async def discover_async(
    email: str,
    *,
    dns_server: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    https_port: int | None = None,
) -> DiscoveryReport:
    """:func:`discover` on the caller's event loop."""
    local, domain = split_address(email)
    address = f"{local}@{domain}"
    if not timeout > 0:
        raise ValueError(f"timeout: {timeout!r} is not a positive number of seconds")
    if dns_server is not None:
        parse_dns_server(dns_server, flag="dns_server")
    if https_port is None and os.environ.get(HTTPS_PORT_ENV):
        text = os.environ[HTTPS_PORT_ENV].strip()
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"{HTTPS_PORT_ENV}: {text!r} is not a port number from 1 to 65535")
        https_port = int(text)
    if https_port is not None and not 0 < https_port < 65536:
        raise ValueError(f"https_port: {https_port!r} is not a port number from 1 to 65535")
    _load_libraries()
    started = time.perf_counter()
    preset = preset_for_address(address)
    lookups: list[SourceReport] = [
        SourceReport("preset", domain, preset.outcome, preset.detail, len(preset.candidates))
    ]
    candidates: list[Candidate] = list(preset.candidates)
    dns = DnsClient(dns_server, timeout=min(timeout, 3.0))
    ispdb = os.environ.get(ISPDB_ENV) or DEFAULT_ISPDB_URL
    autodiscover = os.environ.get(AUTODISCOVER_ENV) or DEFAULT_AUTODISCOVER_URL
    mx_hosts: list[str] = []
    mx_status: list[str] = []
    async with Fetcher(dns, timeout=timeout, ca_file=ca_file, https_port=https_port) as web:

        async def autoconfig(source: str, url: str) -> _Found:
            fetched = await web.get(url)
            return [
                _from_fetch(source, fetched, lambda body: parse_autoconfig(body, address, source))
            ]

        async def srv(service: str) -> _Found:
            name = f"_{service}._tcp.{domain}"
            answer = await dns.query(name, "SRV")
            target = f"{name} SRV"
            if not answer.ok:
                return [
                    (
                        _dns_report("srv", target, answer.status, answer.detail, answer.elapsed_ms),
                        Parsed.nothing("none", ""),
                    )
                ]
            parsed = srv_candidates(service, answer.values, address)
            report = SourceReport(
                "srv",
                target,
                parsed.outcome,
                parsed.detail,
                len(parsed.candidates),
                answer.elapsed_ms,
            )
            return [(report, parsed)]

        async def exchange_online() -> _Found:
            url = f"{autodiscover.rstrip('/')}/v1.0/{quote(address)}?Protocol=EWS"
            fetched = await web.get(url)
            return [
                _from_fetch("autodiscover", fetched, lambda body: parse_autodiscover(body, address))
            ]

        async def mx() -> _Found:
            answer = await dns.query(domain, "MX")
            target = f"{domain} MX"
            mx_status.append(answer.status)
            if not answer.ok:
                return [
                    (
                        _dns_report("mx", target, answer.status, answer.detail, answer.elapsed_ms),
                        Parsed.nothing("none", ""),
                    )
                ]
            mx_hosts.extend(host for _pref, host in answer.values)
            inference = infer_from_mx(mx_hosts, address)
            parsed = inference.parsed
            found: _Found = [
                (
                    SourceReport(
                        "mx",
                        target,
                        parsed.outcome,
                        parsed.detail,
                        len(parsed.candidates),
                        answer.elapsed_ms,
                    ),
                    parsed,
                )
            ]
            followups: list[Awaitable[_Found]] = []
            if inference.ispdb_domain is not None:
                url = ispdb.rstrip("/") + "/" + quote(inference.ispdb_domain)
                source = "ispdb-mx"
                followups.append(autoconfig(source, url))
            if inference.provider is not None and inference.provider.id == "microsoft365":
                followups.append(exchange_online())
            for more in await asyncio.gather(*followups):
                found.extend(more)
            return found

        quoted = quote(address)
        jobs: dict[str, Callable[[], Awaitable[_Found]]] = {
            "autoconfig": lambda: autoconfig(
                "autoconfig",
                f"https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={quoted}",
            ),
            "well-known": lambda: autoconfig(
                "well-known", f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"
            ),
            "ispdb": lambda: autoconfig("ispdb", ispdb.rstrip("/") + "/" + quote(domain)),
            "srv submissions": lambda: srv("submissions"),
            "srv submission": lambda: srv("submission"),
            "mx": mx,
            "autodiscover": lambda: _on_premises(web, domain, address),
        }
        targets = {
            "autoconfig": f"https://autoconfig.{domain}/mail/config-v1.1.xml",
            "well-known": f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
            "ispdb": ispdb.rstrip("/") + "/" + domain,
            "srv submissions": f"_submissions._tcp.{domain} SRV",
            "srv submission": f"_submission._tcp.{domain} SRV",
            "mx": f"{domain} MX",
            "autodiscover": f"https://autodiscover.{domain}/autodiscover/autodiscover.json",
        }
        tasks = {asyncio.ensure_future(job()): name for name, job in jobs.items()}
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    cut_short = bool(pending)
    for task, name in tasks.items():
        if task in pending:
            source = name.split()[0]
            lookups.append(
                SourceReport(
                    source,
                    targets[name],
                    "timeout",
                    f"no answer within {timeout:g} s",
                    0,
                    timeout * 1000,
                )
            )
            continue
        error = task.exception()
        if error is not None:  # one source's surprise must not cost the others' answers
            source = name.split()[0]
            detail = f"{type(error).__name__}: {error}"
            lookups.append(SourceReport(source, targets[name], "failed", detail))
            continue
        for report, parsed in task.result():
            lookups.append(report)
            candidates.extend(parsed.candidates)
    # Guesses only for a domain known to exist: its DNS answered (with no MX, or MX nobody knows).
    exists = bool(mx_status) and mx_status[0] in ("ok", "nodata")
    if exists and not any(c.mode is Mode.SMTP for c in candidates):
        guesses = guess_candidates(domain, address)
        candidates.extend(guesses)
        lookups.append(
            SourceReport(
                "guess",
                domain,
                "found",
                "no source named a server: common names, for a probe to try",
                len(guesses),
            )
        )
    return DiscoveryReport(
        email=address,
        domain=domain,
        candidates=rank(candidates),
        lookups=tuple(lookups),
        elapsed_ms=(time.perf_counter() - started) * 1000,
        cut_short=cut_short,
        mx=tuple(mx_hosts),
    )


def _load_libraries() -> None:
    """Import the DNS and HTTP libraries before the clock starts: loading them can take a
    second on a cold machine, once per process, and that is not time the sources had."""
    import dns.asyncresolver  # noqa: F401
    import httpx  # noqa: F401


async def _on_premises(web: Fetcher, domain: str, address: str) -> _Found:
    url = (
        f"https://autodiscover.{domain}/autodiscover/autodiscover.json/v1.0/"
        f"{quote(address)}?Protocol=EWS"
    )
    fetched = await web.get(url)
    return [_from_fetch("autodiscover", fetched, lambda body: parse_autodiscover(body, address))]


def _dns_report(
    source: str, target: str, status: str, detail: str, elapsed_ms: float
) -> SourceReport:
    words = {
        "nxdomain": "the name does not exist",
        "nodata": "no such records",
        "timeout": "the DNS server did not answer",
    }
    outcome: Outcome = "failed"
    if status in ("nxdomain", "nodata"):
        outcome = "none"
    elif status == "timeout":
        outcome = "timeout"
    text = words.get(status, f"DNS {status}")
    if detail and status not in ("nxdomain", "nodata"):
        text += f" ({detail})"
    return SourceReport(source, target, outcome, text, 0, elapsed_ms)


def _from_fetch(
    source: str, fetched: Fetched, parse: Callable[[bytes], Parsed]
) -> tuple[SourceReport, Parsed]:
    where = fetched.final_url or fetched.url
    if not fetched.ok:
        outcome: Outcome = "failed"
        if fetched.status in ("not_found", "no_host"):
            outcome = "none"
        elif fetched.status == "timeout" or (
            fetched.status == "dns" and "timeout" in fetched.detail
        ):
            outcome = "timeout"
        report = SourceReport(source, fetched.url, outcome, fetched.detail, 0, fetched.elapsed_ms)
        return report, Parsed.nothing("none", fetched.detail)
    parsed = parse(fetched.body)
    detail = parsed.detail
    if where != fetched.url:
        detail = f"(from {where}) {detail}".strip()
    report = SourceReport(
        source, fetched.url, parsed.outcome, detail, len(parsed.candidates), fetched.elapsed_ms
    )
    return report, parsed


#: How many of the best SMTP candidates' hosts the probe checks.
PROBE_TOP = 3


async def probe_candidates_async(
    report: DiscoveryReport,
    *,
    top: int = PROBE_TOP,
    timeout: float = 10.0,
    ca_file: str | None = None,
) -> dict[str, ProbeReport]:
    """Probe the hosts of the ``top`` best SMTP candidates, all at once: host -> report.

    Each host is probed once, on the ports its candidates name (the implicit-TLS ones as
    such, whatever their number: an SRV record may put implicit TLS on any port).
    """
    from mailkit.smtpprobe import probe_async

    ports: dict[str, list[int]] = {}
    implicit: dict[str, list[int]] = {}
    for c in report.smtp()[:top]:
        ports.setdefault(c.host, [])
        implicit.setdefault(c.host, [])
        if c.port not in ports[c.host]:
            ports[c.host].append(c.port)
        if c.security is Security.IMPLICIT_TLS and c.port not in implicit[c.host]:
            implicit[c.host].append(c.port)
    hosts = list(ports)
    reports = await asyncio.gather(
        *(
            probe_async(
                host, ports[host], timeout=timeout, ca_file=ca_file, tls_ports=implicit[host]
            )
            for host in hosts
        )
    )
    return dict(zip(hosts, reports, strict=True))


async def discover_and_probe_async(
    email: str,
    *,
    dns_server: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    https_port: int | None = None,
    probe_timeout: float = 10.0,
    top: int = PROBE_TOP,
) -> tuple[DiscoveryReport, dict[str, ProbeReport], Proposal | None]:
    """Find → probe → propose: the onboarding step in one call (see :func:`propose`)."""
    report = await discover_async(
        email, dns_server=dns_server, timeout=timeout, ca_file=ca_file, https_port=https_port
    )
    probes = await probe_candidates_async(report, top=top, timeout=probe_timeout, ca_file=ca_file)
    return report, probes, propose(report, probes)


def discover_and_probe(
    email: str,
    *,
    dns_server: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: str | None = None,
    https_port: int | None = None,
    probe_timeout: float = 10.0,
    top: int = PROBE_TOP,
) -> tuple[DiscoveryReport, dict[str, ProbeReport], Proposal | None]:
    """Blocking :func:`discover_and_probe_async`; works in a notebook cell too."""
    return run_sync(
        discover_and_probe_async(
            email,
            dns_server=dns_server,
            timeout=timeout,
            ca_file=ca_file,
            https_port=https_port,
            probe_timeout=probe_timeout,
            top=top,
        )
    )
