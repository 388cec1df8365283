"""From what discovery found to ranked server candidates: pure functions, no I/O.

Each source of discovery (the built-in presets, Mozilla autoconfig, DNS SRV records, the MX
records, Microsoft Autodiscover) hands its raw answer to a parser here; the parsers return
:class:`Candidate` values, and :func:`rank` merges the same server found by several sources
into one candidate that names all of them.

Confidence, 0-100, is how sure discovery is that a candidate is the address's submission
server *before* anything connects to it (the probe then checks). One source gives:

==============  ==  ========================================================================
autoconfig      90  the domain publishes it at ``autoconfig.DOMAIN`` (its owner says so)
well-known      90  the domain publishes it at ``DOMAIN/.well-known/autoconfig``
srv             85  RFC 6186 / RFC 8314 SRV records in the domain's own DNS
autodiscover    85  Microsoft Autodiscover answered for this very address
preset          80  the address's domain is a provider mailkit knows (gmail.com)
mx              75  the domain's MX records point at a provider mailkit knows
ispdb           70  Thunderbird's ISPDB has an entry for the domain (a third party's record)
ispdb-mx        55  the ISPDB entry of the domain that runs the MX hosts (likely the host)
guess           15  ``smtp.DOMAIN`` / ``mail.DOMAIN``: nothing said so; only a probe can tell
==============  ==  ========================================================================

Later servers in one autoconfig file lose 5 points each (the file lists its preference
first). Sources that agree on the same (mode, host, port, security) are independent
evidence: the merged confidence is ``100 - (100 - a) * (100 - b) / 100`` (rounded down),
capped at 99.
Ranking puts servers without transport security last, then orders by confidence, then prefers
implicit TLS to STARTTLS (RFC 8314 §3), then the lower port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from mailkit.fields import AuthType, Mode, Security, is_ip_address
from mailkit.providers import Provider, provider_by_id, provider_for_domain, provider_for_mx

#: Confidence of one source alone (see the module's docstring).
CONFIDENCE: dict[str, int] = {
    "autoconfig": 90,
    "well-known": 90,
    "srv": 85,
    "autodiscover": 85,
    "preset": 80,
    "mx": 75,
    "ispdb": 70,
    "ispdb-mx": 55,
    "guess": 15,
}
SOURCES = tuple(CONFIDENCE)

#: Second-level labels under which registrations are made (``example.co.uk``). Without a
#: public-suffix list this short list covers the common cases; other names use two labels.
TWO_LEVEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "ltd.uk", "plc.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au",
        "co.nz", "org.nz", "net.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "co.za", "org.za",
        "com.br", "net.br", "org.br",
        "com.cn", "net.cn", "org.cn",
        "co.in", "net.in", "org.in",
        "com.mx", "com.ar", "com.tr", "com.tw", "com.hk", "com.sg", "com.my",
        "co.kr", "or.kr", "co.il", "org.il", "co.id", "co.th", "com.ua",
    }
)  # fmt: skip

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_SECURITY_ORDER = {
    Security.IMPLICIT_TLS: 0,
    Security.STARTTLS: 1,
    Security.AUTO: 1,
    Security.NONE: 2,
}
#: Exchange Online's own names: Autodiscover pointing here means the mailbox is in Microsoft 365.
EXCHANGE_ONLINE_HOSTS = ("outlook.office365.com", "outlook.office.com", "outlook.com")


@dataclass(frozen=True)
class Candidate:
    """One way to send as the address: a server, how to secure and sign in, and who said so."""

    mode: Mode
    host: str
    port: int
    security: Security
    #: The sign-in to use (``auto``: a password mechanism mailkit picks from what is offered).
    auth: AuthType
    #: The same advice in words, e.g. "OAuth 2.0 (XOAUTH2); the provider refuses passwords".
    auth_advice: str
    sources: tuple[str, ...]
    confidence: int
    #: The user name to sign in with, when a source says (autoconfig's ``%EMAILADDRESS%``).
    username: str | None = None
    #: The endpoint for HTTP modes (the EWS URL for ``exchange_ews``).
    url: str | None = None
    #: The preset behind it (``microsoft365``), when one is known.
    provider: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[Mode, str, int, Security]:
        """Two candidates with the same key are the same server, whoever found it."""
        return (self.mode, self.host, self.port, self.security)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "host": self.host,
            "port": self.port,
            "security": self.security.value,
            "auth": self.auth.value,
            "auth_advice": self.auth_advice,
            "username": self.username,
            "url": self.url,
            "provider": self.provider,
            "sources": list(self.sources),
            "confidence": self.confidence,
            "notes": list(self.notes),
        }


Outcome = Literal["found", "none", "failed", "malformed", "hostile", "timeout", "skipped"]


@dataclass(frozen=True)
class Parsed:
    """What one answer (a file, a set of records) yielded: candidates, or why none."""

    candidates: tuple[Candidate, ...] = ()
    outcome: Outcome = "found"
    detail: str = ""

    @classmethod
    def nothing(cls, outcome: Outcome, detail: str) -> Parsed:
        return cls((), outcome, detail)


@dataclass(frozen=True)
class SourceReport:
    """One lookup discovery made and how it went, for the report's "where did we look"."""

    source: str
    #: What was asked: a URL, or a DNS name and type.
    target: str
    outcome: Outcome
    detail: str = ""
    found: int = 0
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
            "found": self.found,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


@dataclass(frozen=True)
class DiscoveryReport:
    """Everything discovery learnt about one address: ranked candidates and every lookup."""

    email: str
    domain: str
    candidates: tuple[Candidate, ...]
    lookups: tuple[SourceReport, ...] = ()
    elapsed_ms: float = 0.0
    #: Whether the time limit ended some lookups (they are reported as "timeout").
    cut_short: bool = False
    mx: tuple[str, ...] = field(default=())

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def smtp(self) -> tuple[Candidate, ...]:
        """The SMTP candidates, best first: what the probe can check."""
        return tuple(c for c in self.candidates if c.mode is Mode.SMTP)

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "domain": self.domain,
            "mx": list(self.mx),
            "candidates": [c.as_dict() for c in self.candidates],
            "lookups": [s.as_dict() for s in self.lookups],
            "elapsed_ms": round(self.elapsed_ms, 1),
            "cut_short": self.cut_short,
        }

    def to_text(self) -> str:
        """The report as the command line prints it."""
        lines = [f"Settings for {self.email}"]
        if not self.candidates:
            lines.append("  nothing found: enter the server your mail administrator gives you")
        for number, c in enumerate(self.candidates, 1):
            where = c.url or f"{c.host}:{c.port}"
            lines.append(
                f"  {number}. {c.mode.value:<14} {where:<34} {c.security.value:<12} "
                f"confidence {c.confidence:>2}  from {', '.join(c.sources)}"
            )
            lines.append(f"       sign in: {c.auth_advice}")
            if c.username:
                lines.append(f"       user name: {c.username}")
            lines.extend(f"       note: {note}" for note in c.notes)
        lines.append("")
        lines.append(f"Where mailkit looked ({self.elapsed_ms / 1000:.2f} s):")
        for s in self.lookups:
            detail = f" - {s.detail}" if s.detail else ""
            lines.append(f"  {s.source:<12} {s.outcome:<9} {s.target}{detail}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the address


def split_address(email: str, *, field_name: str = "email") -> tuple[str, str]:
    """``(local part, domain)`` of an address; ValueError naming ``field_name`` if it is not one.

    An internationalised domain comes back in its ASCII (IDNA) form, the one DNS, TLS and the
    ``Host`` header use: ``bücher.example`` is ``xn--bcher-kva.example``.
    """
    text = email.strip()
    local, at, domain = text.rpartition("@")
    domain = domain.lower().rstrip(".")
    if not at or not local or not domain:
        raise ValueError(
            f"{field_name}: {email!r} is not an email address; give the full address, "
            "e.g. jane@example.com"
        )
    if any(ch.isspace() for ch in text):
        raise ValueError(f"{field_name}: {email!r} contains a space; give one address")
    if not is_host_name(domain):
        raise ValueError(
            f"{field_name}: the domain {domain!r} of {email!r} is not a valid domain name"
        )
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return local, domain


def is_host_name(name: str, *, labels: int = 2) -> bool:
    """A DNS name of letters, digits, hyphens (and underscores), of at least ``labels`` labels
    (a server may be a single-label name such as ``localhost``; a mail domain may not)."""
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return False
    parts = name.lower().rstrip(".").split(".")
    return len(parts) >= labels and len(name) <= 253 and all(_LABEL.match(x) for x in parts)


def expand(template: str, email: str) -> str:
    """Thunderbird's placeholders: ``%EMAILADDRESS%``, ``%EMAILLOCALPART%``, ``%EMAILDOMAIN%``."""
    local, _, domain = email.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain.lower())
    )


def registrable_domain(host: str) -> str:
    """The domain a host name is registered under: the last two labels, or three when the last
    two are a known second-level suffix (:data:`TWO_LEVEL_SUFFIXES`, e.g. ``co.uk``).

    mailkit has no public-suffix list, so ``x.y.example.pvt.k12.ma.us`` comes out as
    ``ma.us``; the ISPDB lookup it feeds then finds nothing, which costs one request.
    """
    labels = host.lower().rstrip(".").split(".")
    if len(labels) >= 3 and ".".join(labels[-2:]) in TWO_LEVEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


# --------------------------------------------------------------------------- presets and MX


def _provider_auth(provider: Provider) -> tuple[AuthType, str]:
    if provider.auth_hint is AuthType.XOAUTH2:
        advice = "OAuth 2.0 (XOAUTH2), advised"
        if provider.app_passwords:
            advice += "; or an app password"
        return AuthType.XOAUTH2, advice
    if provider.app_passwords:
        return provider.auth_hint, "an app password (the account password is refused)"
    return provider.auth_hint, "the account password, inside TLS"


def preset_candidates(provider: Provider, source: str, email: str) -> tuple[Candidate, ...]:
    """The preset's endpoints, preferred first (each later one 5 points lower)."""
    auth, advice = _provider_auth(provider)
    base = CONFIDENCE[source]
    return tuple(
        Candidate(
            mode=Mode.SMTP,
            host=provider.smtp_host,
            port=endpoint.port,
            security=endpoint.security,
            auth=auth,
            auth_advice=advice,
            sources=(source,),
            confidence=max(base - 5 * index, 1),
            username=email,
            provider=provider.id,
            notes=(f"{provider.name}: {provider.notes[0]}",) if provider.notes else (),
        )
        for index, endpoint in enumerate(provider.endpoints)
    )


def preset_for_address(email: str) -> Parsed:
    """The built-in preset for a provider's own address domain (``gmail.com``), if any."""
    provider = provider_for_domain(email)
    if provider is None:
        return Parsed.nothing("none", "not a provider's own domain")
    return Parsed(preset_candidates(provider, "preset", email), detail=provider.name)


@dataclass(frozen=True)
class MxInference:
    """What the MX hosts tell: a known provider, or a domain whose ISPDB entry may help."""

    provider: Provider | None
    #: Ask the ISPDB for this domain (the MX hosts' registrable domain), when no provider is known.
    ispdb_domain: str | None
    parsed: Parsed


def infer_from_mx(mx_hosts: Sequence[str], email: str) -> MxInference:
    """Microsoft 365 (``*.mail.protection.outlook.com``), Google, the other presets; else the
    registrable domain of the most preferred MX host, for an ISPDB lookup."""
    hosts = [h for h in mx_hosts if h]
    if not hosts:
        return MxInference(None, None, Parsed.nothing("none", "no MX records"))
    provider = provider_for_mx(hosts)
    if provider is not None:
        candidates = preset_candidates(provider, "mx", email)
        if provider.id == "microsoft365":
            candidates = tuple(
                replace(c, notes=(*c.notes, "SMTP AUTH is off by default in new tenants; an "
                                  "administrator enables it per mailbox, or use Microsoft Graph"))
                for c in candidates
            )  # fmt: skip
        return MxInference(provider, None, Parsed(candidates, detail=provider.name))
    own = registrable_domain(email.rpartition("@")[2])
    theirs = registrable_domain(hosts[0])
    if theirs == own:
        return MxInference(None, None, Parsed.nothing("none", f"{hosts[0]}: the domain's own"))
    if "." not in theirs:
        return MxInference(None, None, Parsed.nothing("none", f"{hosts[0]}: no provider known"))
    return MxInference(
        None, theirs, Parsed.nothing("none", f"{hosts[0]}: run by {theirs}, asking the ISPDB")
    )


def guess_candidates(domain: str, email: str) -> tuple[Candidate, ...]:
    """Thunderbird-style guesses, for a probe to confirm when no source said anything."""
    advice = "a password, inside TLS (a guess: probe first)"
    return tuple(
        Candidate(
            mode=Mode.SMTP,
            host=f"{prefix}.{domain}",
            port=port,
            security=security,
            auth=AuthType.AUTO,
            auth_advice=advice,
            sources=("guess",),
            confidence=CONFIDENCE["guess"],
            username=email,
        )
        for prefix in ("smtp", "mail")
        for port, security in ((465, Security.IMPLICIT_TLS), (587, Security.STARTTLS))
    )


# --------------------------------------------------------------------------- SRV


def srv_candidates(
    service: str, records: Iterable[tuple[int, int, int, str]], email: str
) -> Parsed:
    """RFC 6186 ``_submission._tcp`` (STARTTLS) or RFC 8314 ``_submissions._tcp`` (implicit TLS)
    records as candidates, lowest priority then highest weight first; a target of ``.`` says
    the service is not offered (RFC 2782)."""
    security = Security.IMPLICIT_TLS if service == "submissions" else Security.STARTTLS
    ordered = sorted(records, key=lambda r: (r[0], -r[1]))
    if ordered and all(not target for _p, _w, _port, target in ordered):
        return Parsed.nothing("none", "the domain says it offers no such service (target '.')")
    found: list[Candidate] = []
    skipped: list[str] = []
    for _priority, _weight, port, target in ordered:
        if not target:
            continue
        if not is_host_name(target, labels=1) or not 0 < port < 65536:
            skipped.append(f"{target or '?'}:{port}")
            continue
        found.append(
            Candidate(
                mode=Mode.SMTP,
                host=target,
                port=port,
                security=security,
                auth=AuthType.AUTO,
                auth_advice="a password, inside TLS (the records do not say which)",
                sources=("srv",),
                confidence=max(CONFIDENCE["srv"] - 5 * len(found), 1),
                username=email,
            )
        )
    detail = f"ignored invalid {', '.join(skipped)}" if skipped else ""
    if not found:
        return Parsed.nothing("malformed" if skipped else "none", detail or "no records")
    return Parsed(tuple(found), detail=detail)


# --------------------------------------------------------------------------- autoconfig XML

_SOCKET_TYPES = {
    "SSL": Security.IMPLICIT_TLS,
    "TLS": Security.IMPLICIT_TLS,
    "STARTTLS": Security.STARTTLS,
    "PLAIN": Security.NONE,
}
#: Thunderbird's ``<authentication>`` values, best first, and what mailkit makes of them.
_AUTH_METHODS: dict[str, tuple[AuthType, str]] = {
    "oauth2": (AuthType.XOAUTH2, "OAuth 2.0 (XOAUTH2)"),
    "password-encrypted": (AuthType.CRAM_MD5, "a password, challenge-response (CRAM-MD5)"),
    "ntlm": (AuthType.NTLM, "Windows sign-in (NTLM)"),
    "password-cleartext": (AuthType.AUTO, "a password (PLAIN or LOGIN), inside TLS"),
    "client-ip-address": (AuthType.NONE, "no sign-in: the server trusts the sender's IP address"),
    "none": (AuthType.NONE, "no sign-in"),
}
_UNSUPPORTED_AUTH = {
    "gssapi": "Kerberos (GSSAPI), which mailkit does not speak",
    "tls-client-cert": "a TLS client certificate, which mailkit does not use",
}
#: Autoconfig files are a few kilobytes; anything far larger is not one.
MAX_DOCUMENT_BYTES = 512 * 1024


def parse_autoconfig(body: bytes, email: str, source: str) -> Parsed:
    """Thunderbird's ``config-v1.1.xml``: every ``outgoingServer type="smtp"`` as a candidate.

    Parsed with defusedxml, so a DTD, an entity declaration or an external reference (billion
    laughs, XXE) ends as a ``hostile`` outcome, and broken XML as ``malformed``: never an
    exception and never an expanded entity.
    """
    import defusedxml  # type: ignore[import-untyped]
    import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]

    if len(body) > MAX_DOCUMENT_BYTES:
        return Parsed.nothing("malformed", f"{len(body)} bytes: too large for an autoconfig file")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except defusedxml.DefusedXmlException as exc:
        return Parsed.nothing(
            "hostile",
            f"refused: the XML declares {_defused_what(exc)}; an autoconfig file never needs "
            "one, so it was not read",
        )
    except SafeET.ParseError as exc:
        return Parsed.nothing("malformed", f"not well-formed XML ({exc})")
    if _local(root.tag) != "clientConfig":
        return Parsed.nothing("malformed", f"not an autoconfig file (root element <{root.tag}>)")
    found: list[Candidate] = []
    problems: list[str] = []
    servers = [
        el
        for provider in root
        if _local(provider.tag) == "emailProvider"
        for el in provider
        if _local(el.tag) == "outgoingServer" and (el.get("type") or "").lower() == "smtp"
    ]
    for server in servers:
        fields: dict[str, list[str]] = {}
        for child in server:
            fields.setdefault(_local(child.tag), []).append((child.text or "").strip())
        host = expand(_first(fields, "hostname"), email).lower().rstrip(".")
        port_text = _first(fields, "port")
        socket_type = _first(fields, "socketType").upper()
        if not is_host_name(host, labels=1) and not is_ip_address(host):
            problems.append(f"hostname {host!r} is not a host name")
            continue
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            problems.append(f"port {port_text!r} of {host} is not a port number")
            continue
        security = _SOCKET_TYPES.get(socket_type)
        if security is None:
            problems.append(f"socketType {socket_type!r} of {host} is not SSL, STARTTLS or plain")
            continue
        auth, advice, notes = _auth_advice(fields.get("authentication", []))
        if security is Security.NONE:
            notes += ("no encryption: the password and the mail would travel in clear text",)
        username_template = _first(fields, "username")
        found.append(
            Candidate(
                mode=Mode.SMTP,
                host=host,
                port=int(port_text),
                security=security,
                auth=auth,
                auth_advice=advice,
                sources=(source,),
                confidence=max(CONFIDENCE[source] - 5 * len(found), 1),
                username=expand(username_template, email) if username_template else None,
                notes=notes,
            )
        )
    detail = "; ".join(problems)
    if not found:
        if problems:
            return Parsed.nothing("malformed", detail)
        return Parsed.nothing("none", "the file lists no SMTP server")
    return Parsed(tuple(found), detail=detail)


def _defused_what(exc: Exception) -> str:
    name = type(exc).__name__
    return {
        "DTDForbidden": "a document type (DTD)",
        "EntitiesForbidden": "entities (an entity-expansion bomb or XXE)",
        "ExternalReferenceForbidden": "an external reference (XXE)",
        "NotSupportedError": "a feature defusedxml does not support",
    }.get(name, name)


def _local(tag: Any) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rpartition("}")[2]


def _first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0]


def _auth_advice(methods: list[str]) -> tuple[AuthType, str, tuple[str, ...]]:
    known = [m.lower() for m in methods if m]
    for method, (auth, advice) in _AUTH_METHODS.items():
        if method in known:
            others = [m for m in known if m != method]
            notes = (f"the server also accepts: {', '.join(others)}",) if others else ()
            return auth, advice, notes
    for method in known:
        if method in _UNSUPPORTED_AUTH:
            return AuthType.AUTO, _UNSUPPORTED_AUTH[method], ()
    return AuthType.AUTO, "a password, inside TLS (the file does not say which)", ()


# --------------------------------------------------------------------------- Autodiscover v2


def parse_autodiscover(body: bytes, email: str) -> Parsed:
    """Autodiscover v2's JSON (``{"Protocol": "EWS", "Url": "https://…/EWS/Exchange.asmx"}``).

    An Exchange Online URL means the mailbox is in Microsoft 365: EWS there is being retired,
    so Microsoft Graph and SMTP with OAuth come first; an on-premises URL is an EWS candidate.
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Parsed.nothing("malformed", f"not JSON ({exc})")
    if not isinstance(data, dict):
        return Parsed.nothing("malformed", "not a JSON object")
    if "ErrorCode" in data:
        code, message = data.get("ErrorCode"), data.get("ErrorMessage", "")
        return Parsed.nothing("none", f"{code}: {message}".strip(": "))
    if not data.get("Url"):
        return Parsed.nothing("none", "the answer names no EWS URL")
    url = str(data["Url"])
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return Parsed.nothing("malformed", f"the EWS URL {url!r} is not an https:// URL")
    host = parts.hostname.lower()
    port = parts.port or 443
    online = any(host == h or host.endswith("." + h) for h in EXCHANGE_ONLINE_HOSTS)
    confidence = CONFIDENCE["autodiscover"]
    if not online:
        ews = Candidate(
            mode=Mode.EXCHANGE_EWS,
            host=host,
            port=port,
            security=Security.IMPLICIT_TLS,
            auth=AuthType.NTLM,
            auth_advice="Windows sign-in (NTLM) with the mailbox's account",
            sources=("autodiscover",),
            confidence=confidence,
            username=email,
            url=url,
        )
        return Parsed((ews,), detail=f"Exchange on-premises: {url}")
    graph = Candidate(
        mode=Mode.MICROSOFT_GRAPH,
        host="graph.microsoft.com",
        port=443,
        security=Security.IMPLICIT_TLS,
        auth=AuthType.XOAUTH2,
        auth_advice="OAuth 2.0 (an app registration with Mail.Send)",
        sources=("autodiscover",),
        confidence=confidence,
        username=email,
        url="https://graph.microsoft.com/v1.0",
        provider="microsoft365",
        notes=("Exchange Online: EWS is being retired there; Microsoft Graph is its successor",),
    )
    smtp = tuple(
        replace(c, sources=("autodiscover",), confidence=confidence - 5 - 5 * i)
        for i, c in enumerate(preset_candidates(provider_by_id("microsoft365"), "mx", email))
    )
    ews = Candidate(
        mode=Mode.EXCHANGE_EWS,
        host=host,
        port=port,
        security=Security.IMPLICIT_TLS,
        auth=AuthType.XOAUTH2,
        auth_advice="OAuth 2.0 (EWS in Exchange Online refuses passwords)",
        sources=("autodiscover",),
        confidence=confidence - 30,
        username=email,
        url=url,
        provider="microsoft365",
        notes=("EWS in Exchange Online is being retired: prefer Microsoft Graph",),
    )
    return Parsed((graph, *smtp, ews), detail=f"Exchange Online: {url}")


# --------------------------------------------------------------------------- merge and rank


def combine(a: int, b: int) -> int:
    """Two independent sources agreeing: ``100 - (100 - a)(100 - b) / 100`` rounded down, at
    most 99 (nothing is certain before a probe)."""
    return min(99, (10000 - (100 - a) * (100 - b)) // 100)


def rank(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """One candidate per server (sources, notes and confidence merged), best first."""
    merged: dict[tuple[Mode, str, int, Security], Candidate] = {}
    for c in candidates:
        seen = merged.get(c.key)
        if seen is None:
            merged[c.key] = c
            continue
        new_sources = tuple(s for s in c.sources if s not in seen.sources)
        confidence = seen.confidence
        if new_sources:
            confidence = combine(seen.confidence, c.confidence)
        # The stronger source's advice stands; the other's fills what it left open.
        lead, other = (seen, c) if seen.confidence >= c.confidence else (c, seen)
        merged[c.key] = replace(
            lead,
            sources=(*seen.sources, *new_sources),
            confidence=confidence,
            username=lead.username or other.username,
            url=lead.url or other.url,
            provider=lead.provider or other.provider,
            notes=tuple(dict.fromkeys((*lead.notes, *other.notes))),
        )
    return tuple(
        sorted(
            merged.values(),
            key=lambda c: (
                c.security is Security.NONE,
                -c.confidence,
                _SECURITY_ORDER[c.security],
                c.port,
                c.host,
            ),
        )
    )


# --------------------------------------------------------------------------- with the probe


@dataclass(frozen=True)
class Proposal:
    """The settings onboarding proposes, each value with where it came from.

    The server and the sign-in come from discovery; the port and the security from the probe's
    verdict when the probe found a usable port on that server (the server's own answer beats
    any file or record), else from discovery too.
    """

    candidate: Candidate
    port: int
    security: Security
    #: Field name (``host``, ``port``, ``security``, ``auth``, ``username``, ``ews_url``) to
    #: its origin in words, e.g. "autoconfig, srv (confidence 98)" or "probe: ...".
    provenance: dict[str, str]
    #: The probe's report for the candidate's host (a :class:`mailkit.probereport.ProbeReport`).
    probe: Any = None

    def settings(self) -> dict[str, Any]:
        """The org settings fields to fill (``OrgSettings(**proposal.settings())`` validates)."""
        c = self.candidate
        values: dict[str, Any] = {"mode": c.mode, "auth": c.auth}
        if c.mode is Mode.EXCHANGE_EWS:
            values["ews_url"] = c.url
        elif c.mode is Mode.SMTP:
            values.update(host=c.host, port=self.port, security=self.security)
        if c.username:
            values["username"] = c.username
        return values

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": {k: getattr(v, "value", v) for k, v in self.settings().items()},
            "provenance": dict(self.provenance),
            "candidate": self.candidate.as_dict(),
            "probe": self.probe.as_dict() if self.probe is not None else None,
        }


def found_by(candidate: Candidate) -> str:
    """``"autoconfig, srv (confidence 98)"``: a candidate's origin, as the form shows it."""
    return f"{', '.join(candidate.sources)} (confidence {candidate.confidence})"


def propose(report: DiscoveryReport, probes: dict[str, Any]) -> Proposal | None:
    """The best settings from discovery and the probes of its hosts (host -> ProbeReport).

    The first SMTP candidate, in rank order, whose host the probe found a usable port on wins;
    without one, the best candidate stands unconfirmed (its provenance says so).
    """
    if not report.candidates:
        return None
    for c in report.smtp():
        probe = probes.get(c.host)
        verdict = getattr(probe, "verdict", None)
        if verdict is None or verdict.port is None or verdict.security is None:
            continue
        origin = found_by(c)
        reason = verdict.reasons[0] if verdict.reasons else "the port that answered best"
        provenance = {
            "host": origin,
            "port": f"probe: {reason}",
            "security": f"probe: {verdict.security.value} on port {verdict.port}",
            "auth": f"{origin}: {c.auth_advice}",
        }
        if c.username:
            provenance["username"] = origin
        return Proposal(c, verdict.port, verdict.security, provenance, probe)
    best = report.candidates[0]
    origin = found_by(best)
    unprobed = "" if best.mode is not Mode.SMTP else " - not confirmed by a probe"
    fields = ["auth", "username"] + (
        ["ews_url"] if best.mode is Mode.EXCHANGE_EWS else ["host", "port", "security"]
    )
    provenance = dict.fromkeys(fields, origin + unprobed)
    if not best.username:
        provenance.pop("username")
    return Proposal(best, best.port, best.security, provenance, probes.get(best.host))
