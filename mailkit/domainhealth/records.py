"""What a domain's mail records say: SPF and DMARC parsed, and the health report's types.

Pure: text in, values out. Parsers raise :class:`RecordSyntaxError` (a ``ValueError``) with a
message that names the term at fault, because "invalid SPF" helps nobody fix a record; the
lookups that fetch the text live in :mod:`mailkit.domainhealth.check`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FINDING_COLUMNS",
    "DkimKey",
    "DmarcRecord",
    "DmarcReport",
    "DomainFinding",
    "DomainHealth",
    "DomainQuery",
    "MxReport",
    "RecordSyntaxError",
    "Severity",
    "SpfRecord",
    "SpfReport",
    "SpfTerm",
    "dmarc_records",
    "is_label_list",
    "normal_domain",
    "parse_dmarc",
    "parse_spf",
    "spf_records",
]

Severity = Literal["critical", "warning", "info"]

#: A domain finding's fields, in order: the audit's findings with ``domain`` for ``user_code``.
FINDING_COLUMNS: Final[tuple[str, ...]] = ("domain", "rule", "severity", "message", "fix")


class RecordSyntaxError(ValueError):
    """A record that receivers treat as broken (SPF permerror, DMARC ignored)."""


@dataclass(frozen=True)
class DomainFinding:
    """One problem with a sending domain, shaped like an audit finding."""

    domain: str
    rule: str
    severity: Severity
    message: str
    fix: str


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normal_domain(text: str) -> str | None:
    """``text`` as a lower-case ASCII domain name of two labels or more, or None."""
    name = text.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = name.split(".")
    if len(labels) < 2 or len(name) > 253 or not all(_LABEL.match(x) for x in labels):
        return None
    return name


def is_label_list(text: str) -> bool:
    """Dot-separated DNS labels (a DKIM selector, a host name's shape)."""
    return bool(text) and all(_LABEL.match(x) for x in text.split("."))


@dataclass(frozen=True)
class DomainQuery:
    """One check to make: a From domain, and what sends its mail (normalised).

    ``host`` is the sending SMTP (or EWS) server, ``provider`` a preset id from
    :mod:`mailkit.providers` when the provider sends; both None when the path is unknown.
    """

    domain: str
    host: str | None = None
    provider: str | None = None
    selectors: tuple[str, ...] = ()


# --------------------------------------------------------------------------- SPF

_SPF_VERSION = re.compile(r"^v=spf1(?: |$)", re.IGNORECASE)
_MECHANISMS: Final = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
#: Mechanisms that take a domain-spec, and whether it is required.
_DOMAIN_ARG: Final = {"include": True, "exists": True, "a": False, "mx": False, "ptr": False}
_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$", re.DOTALL)
_MACRO = re.compile(r"%(?:\{([slodiphcrtvSLODIPHCRTV])([0-9]*)(r?)([.\-+,/_=]*)\}|[%_\-])")
_QUALIFIERS: Final = "+-~?"


@dataclass(frozen=True)
class SpfTerm:
    """One directive: ``qualifier`` (+ - ~ ?), mechanism and its argument (None: the default)."""

    qualifier: str
    mechanism: str
    value: str | None = None
    cidr4: int | None = None
    cidr6: int | None = None

    def __str__(self) -> str:
        text = ("" if self.qualifier == "+" else self.qualifier) + self.mechanism
        if self.value is not None:
            text += ":" + self.value
        if self.mechanism in ("ip4", "ip6"):  # a single prefix length
            bits = self.cidr4 if self.mechanism == "ip4" else self.cidr6
            return text + (f"/{bits}" if bits is not None else "")
        if self.cidr4 is not None:
            text += f"/{self.cidr4}"
        if self.cidr6 is not None:
            text += f"//{self.cidr6}"
        return text


@dataclass(frozen=True)
class SpfRecord:
    """A parsed ``v=spf1`` record: its directives in order, and its two known modifiers."""

    text: str
    terms: tuple[SpfTerm, ...]
    redirect: str | None = None
    exp: str | None = None

    @property
    def all_term(self) -> SpfTerm | None:
        return next((t for t in self.terms if t.mechanism == "all"), None)


def spf_records(texts: Iterable[str]) -> list[str]:
    """The TXT strings that are SPF records (``v=spf1`` then a space or nothing)."""
    return [text for text in texts if _SPF_VERSION.match(text.strip())]


def check_macro_string(text: str, *, where: str) -> None:
    """Raise unless every ``%`` in ``text`` starts a valid RFC 7208 macro."""
    position = 0
    while (index := text.find("%", position)) != -1:
        match = _MACRO.match(text, index)
        if match is None:
            raise RecordSyntaxError(f"{where}: {text!r} has a '%' that starts no valid macro")
        position = match.end()


def _domain_spec(text: str, *, where: str) -> str:
    if not text:
        raise RecordSyntaxError(f"{where}: the domain is empty")
    check_macro_string(text, where=where)
    if "%" not in text:
        labels = text.rstrip(".").split(".")
        if len(labels) < 2 or any(not label or len(label) > 63 for label in labels):
            raise RecordSyntaxError(f"{where}: {text!r} is not a domain name")
        top = labels[-1]
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", top) or top.isdigit():
            raise RecordSyntaxError(f"{where}: {text!r} does not end in a valid top label")
    return text


def _cidr(text: str, limit: int, *, where: str) -> int:
    if not text.isdigit() or int(text) > limit or (len(text) > 1 and text.startswith("0")):
        raise RecordSyntaxError(f"{where}: /{text} is not a prefix length from 0 to {limit}")
    return int(text)


def _parse_term(word: str) -> SpfTerm:
    qualifier = "+"
    body = word
    if body[:1] in _QUALIFIERS:
        qualifier, body = body[0], body[1:]
    name, sep, arg = body.partition(":")
    cidr_part = ""
    if not sep and "/" in name:  # a/24, mx//64
        name, slash, rest = name.partition("/")
        cidr_part = slash + rest
    mechanism = name.lower()
    where = f"SPF term {word!r}"
    if mechanism not in _MECHANISMS:
        raise RecordSyntaxError(f"{where}: {name!r} is not an SPF mechanism")
    if mechanism == "all":
        if sep or cidr_part:
            raise RecordSyntaxError(f"{where}: 'all' takes no argument")
        return SpfTerm(qualifier, "all")
    if mechanism in ("ip4", "ip6"):
        if not sep:
            raise RecordSyntaxError(f"{where}: {mechanism} needs an address, e.g. {mechanism}:…")
        address, slash, prefix = arg.partition("/")
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise RecordSyntaxError(f"{where}: {address!r} is not an IP address") from None
        if (parsed.version == 4) != (mechanism == "ip4"):
            raise RecordSyntaxError(f"{where}: {address!r} is not an IPv{mechanism[-1]} address")
        limit = 32 if mechanism == "ip4" else 128
        bits = _cidr(prefix, limit, where=where) if slash else None
        return SpfTerm(
            qualifier,
            mechanism,
            address,
            bits if mechanism == "ip4" else None,
            bits if mechanism == "ip6" else None,
        )
    # include, exists, ptr: [":" domain-spec]; a and mx also take a dual CIDR length.
    domain: str | None = None
    if mechanism in ("a", "mx"):
        if sep:
            domain_part, slash, after = arg.partition("/")
            domain = _domain_spec(domain_part, where=where)
            cidr_part = slash + after
    elif sep:
        domain = _domain_spec(arg, where=where)
    elif cidr_part:
        raise RecordSyntaxError(f"{where}: {mechanism} takes no prefix length")
    if domain is None and _DOMAIN_ARG[mechanism]:
        raise RecordSyntaxError(f"{where}: {mechanism} needs a domain, e.g. {mechanism}:…")
    cidr4 = cidr6 = None
    if cidr_part:
        v4, dual, v6 = cidr_part[1:].partition("//")
        if cidr_part.startswith("//"):
            v4, v6, dual = "", cidr_part[2:], "//"
        if v4:
            cidr4 = _cidr(v4, 32, where=where)
        if dual:
            cidr6 = _cidr(v6, 128, where=where)
    return SpfTerm(qualifier, mechanism, domain, cidr4, cidr6)


def parse_spf(text: str) -> SpfRecord:
    """Parse one SPF record; :class:`RecordSyntaxError` names the first broken term."""
    stripped = text.strip()
    if not _SPF_VERSION.match(stripped):
        raise RecordSyntaxError(f"{text!r} does not start with 'v=spf1'")
    terms: list[SpfTerm] = []
    modifiers: dict[str, str] = {}
    for word in stripped.split(" ")[1:]:
        if not word:
            continue
        modifier = _MODIFIER.match(word)
        if modifier and ":" not in modifier.group(1) and "/" not in modifier.group(1):
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in modifiers and name in ("redirect", "exp"):
                raise RecordSyntaxError(f"SPF modifier {name}= appears more than once")
            where = f"SPF modifier {word!r}"
            if name in ("redirect", "exp"):
                _domain_spec(value, where=where)
            else:
                check_macro_string(value, where=where)
            modifiers[name] = value
            continue
        terms.append(_parse_term(word))
    return SpfRecord(
        text=stripped,
        terms=tuple(terms),
        redirect=modifiers.get("redirect"),
        exp=modifiers.get("exp"),
    )


# --------------------------------------------------------------------------- DMARC

_POLICIES: Final = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcRecord:
    """A parsed DMARC record (RFC 7489 §6.3), with the defaults of tags left out."""

    text: str
    policy: str
    subdomain_policy: str | None = None
    pct: int = 100
    adkim: str = "r"
    aspf: str = "r"
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()


def dmarc_records(texts: Iterable[str]) -> list[str]:
    """The TXT strings that claim to be DMARC records (``v=DMARC1`` first)."""
    return [t for t in texts if re.match(r"^\s*v\s*=\s*DMARC1\s*(;|$)", t, re.IGNORECASE)]


def _uris(tag: str, value: str) -> tuple[str, ...]:
    uris = tuple(part.strip() for part in value.split(",") if part.strip())
    for uri in uris:
        if not uri.lower().startswith("mailto:") or "@" not in uri:
            raise RecordSyntaxError(
                f"DMARC {tag}={value!r}: {uri!r} is not a mailto: address (receivers send "
                "reports by mail only)"
            )
    return uris


def parse_dmarc(text: str) -> DmarcRecord:
    """Parse one DMARC record; :class:`RecordSyntaxError` names the tag at fault."""
    parts = [part.strip() for part in text.strip().split(";")]
    if parts and not parts[-1]:
        parts.pop()
    tags: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise RecordSyntaxError(f"DMARC: {part!r} is not tag=value")
        if name in tags:
            raise RecordSyntaxError(f"DMARC: the tag {name}= appears more than once")
        tags[name] = value.strip()
    if next(iter(tags), None) != "v" or tags["v"] != "DMARC1":
        raise RecordSyntaxError("DMARC: the record must start with v=DMARC1")
    if "p" not in tags:
        raise RecordSyntaxError("DMARC: the p= tag (the policy) is missing; it comes second")
    if list(tags)[1] != "p":
        raise RecordSyntaxError("DMARC: p= must follow v=DMARC1 directly")
    policy = tags["p"].lower()
    if policy not in _POLICIES:
        raise RecordSyntaxError(f"DMARC p={tags['p']!r}: use none, quarantine or reject")
    subdomain = tags.get("sp")
    if subdomain is not None and subdomain.lower() not in _POLICIES:
        raise RecordSyntaxError(f"DMARC sp={subdomain!r}: use none, quarantine or reject")
    pct_text = tags.get("pct", "100")
    if not pct_text.isdigit() or int(pct_text) > 100:
        raise RecordSyntaxError(f"DMARC pct={pct_text!r}: use a whole number from 0 to 100")
    modes = {}
    for tag in ("adkim", "aspf"):
        mode = tags.get(tag, "r").lower()
        if mode not in ("r", "s"):
            raise RecordSyntaxError(f"DMARC {tag}={tags[tag]!r}: use r (relaxed) or s (strict)")
        modes[tag] = mode
    return DmarcRecord(
        text=text.strip(),
        policy=policy,
        subdomain_policy=subdomain.lower() if subdomain is not None else None,
        pct=int(pct_text),
        adkim=modes["adkim"],
        aspf=modes["aspf"],
        rua=_uris("rua", tags["rua"]) if "rua" in tags else (),
        ruf=_uris("ruf", tags["ruf"]) if "ruf" in tags else (),
    )


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class MxReport:
    """``status``: ok, null (RFC 7505 "accepts no mail"), missing, nxdomain, or unknown."""

    status: str
    hosts: tuple[tuple[int, str], ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class SpfReport:
    """The domain's SPF record, its whole include tree, and the verdict for the server."""

    #: ok, missing, invalid (several records, a syntax error or a broken include), unknown.
    status: str
    record: str | None = None
    #: DNS-querying terms in the whole tree (RFC 7208 allows 10), and lookups that found nothing.
    lookups: int = 0
    void_lookups: int = 0
    #: The ``all`` that ends the evaluation (``-all``, ``~all`` …), or None.
    all_term: str | None = None
    includes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    #: Whether the sending server may send for the domain; None when not checked.
    authorized: bool | None = None
    #: What was checked: "address 192.0.2.1 of smtp.example.com", "Microsoft 365's include …".
    checked: str = ""
    #: (address, RFC 7208 result) per address of the sending host.
    results: tuple[tuple[str, str], ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class DmarcReport:
    """The DMARC record that applies to the domain and what it asks receivers to do."""

    #: ok, missing, invalid, unknown.
    status: str
    record: str | None = None
    #: Where the record was found: _dmarc.DOMAIN, or the organisational domain's.
    found_at: str | None = None
    policy: str | None = None
    subdomain_policy: str | None = None
    #: The policy a receiver applies to this domain's mail (sp= for a subdomain).
    applied_policy: str | None = None
    pct: int | None = None
    adkim: str | None = None
    aspf: str | None = None
    rua: tuple[str, ...] = ()
    org_domain: str | None = None
    #: SPF / DKIM alignment of the sending path with the From domain; None when not known.
    spf_aligned: bool | None = None
    dkim_aligned: bool | None = None
    detail: str = ""


@dataclass(frozen=True)
class DkimKey:
    """One selector's key: ``status`` ok, missing, revoked (empty p=), invalid or unknown."""

    selector: str
    name: str
    status: str
    #: Expected for the provider (or asked for), rather than found by trying common selectors.
    expected: bool = True
    key_type: str | None = None
    bits: int | None = None
    detail: str = ""
    #: Where the selector's CNAME points, when it is one and no key was found there.
    cname: str | None = None


@dataclass(frozen=True)
class DomainHealth:
    """Everything :func:`mailkit.domain` found about a sending domain."""

    domain: str
    host: str | None
    provider: str | None
    mx: MxReport
    spf: SpfReport
    dmarc: DmarcReport
    dkim: tuple[DkimKey, ...]
    findings: tuple[DomainFinding, ...] = ()
    #: DNS queries this check sent (cache hits not counted).
    queries: int = field(default=0, compare=False)

    @property
    def ok(self) -> bool:
        """No critical or warning finding (info findings are advice)."""
        return not any(f.severity in ("critical", "warning") for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as ``mailkit domain --json`` prints it."""
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def findings_frame(self) -> pd.DataFrame:
        """The findings as a table (the audit's columns, ``domain`` first)."""
        import pandas as pd

        rows = [asdict(f) for f in self.findings]
        return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(check, status, detail) per check, for a table in a notebook or a terminal."""
        mx = ", ".join(f"{p} {h}" for p, h in self.mx.hosts) or self.mx.detail
        spf_detail = self.spf.record or self.spf.detail
        if self.spf.authorized is not None:
            verdict = "authorised" if self.spf.authorized else "NOT authorised"
            spf_detail += f" — {self.spf.checked}: {verdict}"
        rows = [
            ("MX", self.mx.status, mx),
            ("SPF", self.spf.status, f"{spf_detail} ({self.spf.lookups}/10 lookups)"),
            (
                "DMARC",
                self.dmarc.status,
                (self.dmarc.record or self.dmarc.detail)
                + (f" (at {self.dmarc.found_at})" if self.dmarc.found_at else ""),
            ),
        ]
        for key in self.dkim:
            text = f"{key.key_type} {key.bits} bits" if key.status == "ok" else key.detail
            rows.append((f"DKIM {key.selector}", key.status, text))
        return rows

    def summary_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.summary_rows(), columns=["check", "status", "detail"])

    def _repr_html_(self) -> str:
        from html import escape

        head = f"<b>{escape(self.domain)}</b>: " + (
            "healthy" if self.ok else f"{len(self.findings)} finding(s)"
        )
        cells = "".join(
            "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
            for row in self.summary_rows()
        )
        found = "".join(
            f"<li><b>{escape(f.severity)}</b> {escape(f.rule)}: {escape(f.message)} "
            f"<i>Fix:</i> {escape(f.fix)}</li>"
            for f in self.findings
        )
        return f"<p>{head}</p><table>{cells}</table>" + (f"<ul>{found}</ul>" if found else "")
