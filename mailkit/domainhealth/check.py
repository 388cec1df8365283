"""Check a sending domain's health over DNS: ``mailkit.domain`` and the audit's domain pass.

Every lookup goes through one :class:`mailkit.dnslookup.DnsClient` — one server
(``--dns-server``), a timeout per query, a cache, concurrent identical lookups shared — so a
domain asked about by ten thousand users is asked of the network once. The records are judged
by the pure modules beside this one.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from mailkit.domainhealth.records import (
    DkimKey,
    DmarcReport,
    DomainHealth,
    DomainQuery,
    MxReport,
    RecordSyntaxError,
    SpfReport,
    dmarc_records,
    is_label_list,
    normal_domain,
    parse_dmarc,
)
from mailkit.domainhealth.rules import COMMON_SELECTORS, domain_findings
from mailkit.domainhealth.spf import Answer, check_host, walk
from mailkit.errors import FieldProblem, SettingsError
from mailkit.fields import is_ip_address

if TYPE_CHECKING:
    from mailkit.dnslookup import DnsClient

__all__ = [
    "API_NAMES",
    "DomainQuery",
    "check_domains",
    "dns_client",
    "domain",
    "domain_async",
    "domain_query",
]

_FAILED: Final = ("timeout", "servfail", "refused", "error")
_LOOPBACK: Final = ("127.0.0.1", "::1")
#: How the API names its arguments in errors; the command line passes its flags instead.
API_NAMES: Final = {
    "domain": "domain",
    "host": "host",
    "provider": "provider",
    "selectors": "selectors",
    "dns_server": "dns_server",
    "timeout": "timeout",
}


def domain_query(
    domain: str,
    *,
    host: str | None = None,
    provider: str | None = None,
    selectors: Iterable[str] = (),
    names: Mapping[str, str] = API_NAMES,
) -> DomainQuery:
    """Validate the arguments of a check; a :class:`SettingsError` names each bad one.

    ``names`` maps argument names to the words of the face (``--host`` on the command line).
    """
    from mailkit.providers import PROVIDERS, provider_for_host

    problems: list[FieldProblem] = []
    text = domain.strip()
    if "@" in text:
        text = text.rpartition("@")[2]
    name = normal_domain(text)
    if name is None:
        problems.append(
            FieldProblem(
                names["domain"],
                f"{domain!r} is not a domain name; give the part of the From address after "
                "the @, e.g. example.com",
            )
        )
    server = host.strip().rstrip(".").lower() if host else None
    if server:
        try:
            ipaddress.ip_address(server.strip("[]"))
            server = server.strip("[]")
        except ValueError:
            # A single label (an intranet's "mailhost") is a host name too.
            if normal_domain(server) is not None or is_label_list(server):
                server = normal_domain(server) or server
            else:
                problems.append(
                    FieldProblem(
                        names["host"],
                        f"{host!r} is neither a host name nor an IP address; give the SMTP "
                        "server, e.g. smtp.example.com",
                    )
                )
    known = {p.id for p in PROVIDERS}
    if provider is not None and provider not in known:
        problems.append(
            FieldProblem(
                names["provider"],
                f"{provider!r} is not a known provider; use one of {', '.join(sorted(known))}",
            )
        )
    wanted: list[str] = []
    for selector in selectors:
        value = selector.strip().lower()
        if not is_label_list(value):
            problems.append(
                FieldProblem(
                    names["selectors"],
                    f"{selector!r} is not a DKIM selector (letters, digits, hyphens, dots), "
                    "e.g. selector1",
                )
            )
        elif value not in wanted:
            wanted.append(value)
    if problems:
        raise SettingsError(problems, context="domain check arguments")
    assert name is not None
    if provider is None and server and not is_ip_address(server):
        found = provider_for_host(server, name)
        provider = found.id if found is not None else None
    return DomainQuery(name, server or None, provider, tuple(wanted))


# --------------------------------------------------------------------------- the checks


async def _mx(name: str, client: DnsClient) -> MxReport:
    answer = await client.query(name, "MX")
    if answer.status in _FAILED:
        return MxReport("unknown", detail=f"the MX lookup failed ({_why(answer)})")
    if answer.status == "nxdomain":
        return MxReport("nxdomain", detail="the domain does not exist")
    hosts = tuple((int(p), str(h)) for p, h in answer.values)
    if not hosts:
        return MxReport("missing", detail="no MX record")
    if any(host in ("", ".") for _p, host in hosts):
        return MxReport("null", hosts, detail="null MX: accepts no mail")
    return MxReport("ok", hosts)


def _why(answer: Answer) -> str:
    detail = getattr(answer, "detail", "")
    return f"{answer.status}: {detail}" if detail else answer.status


async def _addresses(host: str, client: DnsClient) -> tuple[list[str], str]:
    """The host's addresses (itself when it is an address), and why there are none."""
    if is_ip_address(host):
        return [host], ""
    if host == "localhost" or host.endswith(".localhost"):
        return list(_LOOPBACK), ""  # RFC 6761 §6.3: never asked of DNS
    v4, v6 = await asyncio.gather(client.query(host, "A"), client.query(host, "AAAA"))
    found = [str(v) for v in (*v4.values, *v6.values)]
    if found:
        return found, ""
    failed = [a for a in (v4, v6) if a.status in _FAILED]
    if failed:
        return [], f"the address lookup of {host} failed ({_why(failed[0])})"
    return [], f"{host} has no address in DNS"


async def _spf(query: DomainQuery, client: DnsClient) -> tuple[SpfReport, str]:
    """The SPF report, and how to authorise the sending server when it is not."""
    from mailkit.providers import provider_by_id, sending_auth

    tree = await walk(query.domain, client.query)
    report = SpfReport(
        status=tree.status,
        record=tree.record.text if tree.record else None,
        lookups=tree.lookups,
        void_lookups=tree.void_lookups,
        all_term=tree.all_term,
        includes=tuple(tree.includes),
        problems=tuple(tree.problems),
        detail="; ".join(tree.failures) or ("no SPF record" if tree.status == "missing" else ""),
    )
    if tree.status in ("missing", "unknown"):
        auth = sending_auth(query.provider)
        fix = f"include:{auth.spf_includes[0]}" if auth else ""
        if not fix and query.host:
            found, _why_none = await _addresses(query.host, client)
            fix = " ".join(_ip_term(a) for a in found)
        return report, fix
    auth = sending_auth(query.provider)
    if auth is not None and (query.host is None or not is_ip_address(query.host)):
        name = provider_by_id(query.provider or "").name
        include = auth.spf_includes[0]
        covered = any(i in tree.includes for i in auth.spf_includes)
        checked = f"{name}'s servers (include:{include})"
        fix = f"add include:{include} to the SPF record of {query.domain}, before its all term"
        if tree.status != "ok":
            return _replace(report, checked=checked), fix
        return _replace(report, authorized=covered, checked=checked), fix
    if query.host is None:
        return report, ""
    found, why_none = await _addresses(query.host, client)
    if not found:  # no verdict: the server's addresses are what SPF is checked against
        detail = f"whether it authorises {query.host} could not be checked: {why_none}"
        return _replace(report, status="unknown", checked=query.host, detail=detail), ""
    results = await asyncio.gather(*(check_host(a, query.domain, client.query) for a in found))
    pairs = tuple((a, r[0]) for a, r in zip(found, results, strict=True))
    label = query.host if is_ip_address(query.host) else f"{query.host} ({', '.join(found)})"
    if any(r == "temperror" for _a, r in pairs):
        why = next(r[1] for r in results if r[0] == "temperror")
        detail = f"whether it authorises {label} could not be checked: {why}"
        return _replace(report, status="unknown", checked=label, results=pairs, detail=detail), ""
    missing = [a for a, r in pairs if r != "pass"]
    fix = (
        f"add {' '.join(_ip_term(a) for a in missing)} to the SPF record of {query.domain} "
        "(the addresses the server sends from), before its all term"
    )
    return _replace(report, authorized=not missing, checked=label, results=pairs), fix


def _ip_term(address: str) -> str:
    return f"ip{ipaddress.ip_address(address).version}:{address}"


def _replace(report: SpfReport, **changes: object) -> SpfReport:
    from dataclasses import replace

    return replace(report, **changes)  # type: ignore[arg-type]


async def _dmarc(name: str, client: DnsClient) -> DmarcReport:
    from mailkit.domainhealth.orgdomain import org_domain

    org = org_domain(name)
    places = [name] if org == name else [name, org]
    for place in places:
        where = f"_dmarc.{place}"
        answer = await client.query(where, "TXT")
        if answer.status in _FAILED:
            return DmarcReport(
                "unknown", org_domain=org, detail=f"the lookup of {where} failed ({_why(answer)})"
            )
        found = dmarc_records(str(v) for v in answer.values)
        if not found:
            continue
        if len(found) > 1:
            return DmarcReport(
                "invalid",
                found_at=where,
                org_domain=org,
                detail=f"{len(found)} DMARC records; receivers use none of them",
            )
        try:
            record = parse_dmarc(found[0])
        except RecordSyntaxError as exc:
            return DmarcReport(
                "invalid", record=found[0], found_at=where, org_domain=org, detail=str(exc)
            )
        applied = record.policy
        if place != name:
            applied = record.subdomain_policy or record.policy
        return DmarcReport(
            "ok",
            record=record.text,
            found_at=where,
            policy=record.policy,
            subdomain_policy=record.subdomain_policy,
            applied_policy=applied,
            pct=record.pct,
            adkim=record.adkim,
            aspf=record.aspf,
            rua=record.rua,
            org_domain=org,
        )
    return DmarcReport("missing", org_domain=org, detail="no DMARC record")


async def _dkim_key(name: str, selector: str, client: DnsClient, expected: bool) -> DkimKey:
    from mailkit.domainhealth.keys import dkim_key, looks_like_dkim

    where = f"{selector}._domainkey.{name}"
    answer = await client.query(where, "TXT")
    if answer.status in _FAILED:
        return DkimKey(
            selector, where, "unknown", expected, detail=f"the lookup failed ({_why(answer)})"
        )
    texts = [str(v) for v in answer.values if looks_like_dkim(str(v))]
    if not texts:
        # A provider's selector is a CNAME to its own record: say where it points.
        alias = await client.query(where, "CNAME") if expected else None
        target = str(alias.values[0]).rstrip(".").lower() if alias and alias.values else None
        detail = f"CNAME to {target}, which publishes no key" if target else "no key record"
        return DkimKey(selector, where, "missing", expected, detail=detail, cname=target)
    return dkim_key(selector, where, texts[0], expected=expected)


async def _dkim(query: DomainQuery, client: DnsClient, probe: bool) -> tuple[DkimKey, ...]:
    from mailkit.providers import sending_auth

    auth = sending_auth(query.provider)
    expected = list(query.selectors)
    for selector in auth.dkim_selectors if auth else ():
        if selector not in expected:
            expected.append(selector)
    if expected:
        return tuple(
            await asyncio.gather(*(_dkim_key(query.domain, s, client, True) for s in expected))
        )
    if not probe:
        return ()
    probed = await asyncio.gather(
        *(_dkim_key(query.domain, s, client, False) for s in COMMON_SELECTORS)
    )
    return tuple(key for key in probed if key.status != "missing")


async def check_query(
    query: DomainQuery, client: DnsClient, *, probe_dkim: bool = True
) -> DomainHealth:
    """Check one validated :class:`DomainQuery` with ``client`` (its cache is shared).

    ``probe_dkim``: when no DKIM selector is expected, try the common ones (nine lookups).
    """
    from mailkit.providers import provider_for_mx

    sent = client.sent
    dkim: tuple[DkimKey, ...] = ()
    mx = await _mx(query.domain, client)
    if mx.status == "nxdomain":
        spf, fix = SpfReport("missing"), ""
        dmarc = DmarcReport("missing")
    else:
        if query.provider is None and query.host is None and mx.status == "ok":
            guessed = provider_for_mx(host for _p, host in mx.hosts)
            if guessed is not None:
                query = DomainQuery(query.domain, None, guessed.id, query.selectors)
        (spf, fix), dmarc, dkim = await asyncio.gather(
            _spf(query, client), _dmarc(query.domain, client), _dkim(query, client, probe_dkim)
        )
        dmarc = _with_alignment(dmarc, spf, dkim)
    findings = domain_findings(
        query.domain, mx, spf, dmarc, dkim, authorize_fix=fix, dkim_probed=probe_dkim
    )
    return DomainHealth(
        domain=query.domain,
        host=query.host,
        provider=query.provider,
        mx=mx,
        spf=spf,
        dmarc=dmarc,
        dkim=dkim,
        findings=findings,
        queries=client.sent - sent,
    )


def _with_alignment(dmarc: DmarcReport, spf: SpfReport, dkim: tuple[DkimKey, ...]) -> DmarcReport:
    """Whether SPF and DKIM of the sending path align with the From domain (RFC 7489 §3.1).

    mailkit sends with the From address as the envelope sender, so SPF aligns exactly when it
    authorises the server; DKIM aligns when a key the sender is expected to sign with is
    published under the From domain itself (a provider's default key signs for its own
    domain, which does not align).
    """
    from dataclasses import replace

    if dmarc.status != "ok":
        return dmarc
    expected = [k for k in dkim if k.expected]
    dkim_aligned = any(k.status == "ok" for k in expected) if expected else None
    return replace(dmarc, spf_aligned=spf.authorized, dkim_aligned=dkim_aligned)


def dns_client(
    dns_server: str | None, timeout: float, names: Mapping[str, str] = API_NAMES
) -> DnsClient:
    """One DNS client for a check; a :class:`SettingsError` names a bad server or timeout."""
    from mailkit.dnslookup import DnsClient, parse_dns_server

    problems = []
    if dns_server is not None:
        try:
            parse_dns_server(dns_server, flag=names["dns_server"])
        except ValueError as exc:
            flag, _, message = str(exc).partition(": ")
            problems.append(FieldProblem(flag, message))
    if not timeout > 0:
        problems.append(
            FieldProblem(names["timeout"], f"{timeout!r} is not a positive number of seconds")
        )
    if problems:
        raise SettingsError(problems, context="domain check arguments")
    return DnsClient(dns_server, timeout=timeout)


async def domain_async(
    domain: str,
    *,
    host: str | None = None,
    provider: str | None = None,
    selectors: Sequence[str] = (),
    dns_server: str | None = None,
    timeout: float = 3.0,
    client: DnsClient | None = None,
) -> DomainHealth:
    """The health of the sending domain ``domain`` (see :func:`domain`), on the caller's loop."""
    query = domain_query(domain, host=host, provider=provider, selectors=selectors)
    return await check_query(query, client or dns_client(dns_server, timeout))


def domain(
    domain: str,
    *,
    host: str | None = None,
    provider: str | None = None,
    selectors: Sequence[str] = (),
    dns_server: str | None = None,
    timeout: float = 3.0,
) -> DomainHealth:
    """Check what receivers will think of mail From ``domain``: MX, SPF, DMARC and DKIM.

    ``host`` is the SMTP server that sends the mail (its addresses are checked against SPF;
    a provider's host such as ``smtp.office365.com`` is checked by the provider's published
    include instead); ``provider`` names a preset (``microsoft365``, ``google_workspace`` …)
    when there is no host; ``selectors`` are the DKIM selectors the server signs with (the
    provider's are added). ``dns_server`` (``HOST:PORT``) answers every lookup; each waits
    ``timeout`` seconds at most. Findings have the audit's shape, with ``domain`` for the user.
    """
    from mailkit.runner import run_sync

    return run_sync(
        domain_async(
            domain,
            host=host,
            provider=provider,
            selectors=selectors,
            dns_server=dns_server,
            timeout=timeout,
        )
    )


async def check_domains(
    queries: Iterable[DomainQuery],
    client: DnsClient,
    *,
    concurrency: int = 64,
    probe_dkim: bool = False,
) -> dict[DomainQuery, DomainHealth]:
    """Check many domains at once, each distinct query once, ``concurrency`` at a time.

    The client's cache makes a domain's records one lookup each, however many hosts send
    for it.
    """
    limit = asyncio.Semaphore(concurrency)

    async def one(query: DomainQuery) -> tuple[DomainQuery, DomainHealth]:
        async with limit:
            return query, await check_query(query, client, probe_dkim=probe_dkim)

    distinct = list(dict.fromkeys(queries))
    return dict(await asyncio.gather(*(one(q) for q in distinct)))
