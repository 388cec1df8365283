"""RFC 7208 SPF: evaluate a record for an address, and walk its whole include tree.

Pure, over an injected ``lookup(name, rdtype)`` coroutine that returns an answer with a
``status`` (ok, nxdomain, nodata, timeout, servfail …) and ``values`` — the shape of
:class:`mailkit.dnslookup.DnsAnswer`, so every query goes through mailkit's one DNS client,
its server, timeouts, cache and counts. No SPF library offers that: pyspf resolves through a
module-global function.

Two questions, two functions. :func:`check_host` is what a receiver does: stop at the first
matching mechanism, with the 10-lookup and 2-void-lookup limits (RFC 7208 §4.6.4) enforced.
:func:`walk` is what an administrator needs: every record in the tree, its syntax, and the
lookups the whole tree costs — a record that passes for one address can still exceed the
limit (and fail everywhere) for the next one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from mailkit.domainhealth.records import (
    RecordSyntaxError,
    SpfRecord,
    SpfTerm,
    parse_spf,
    spf_records,
)

__all__ = ["LOOKUP_LIMIT", "VOID_LIMIT", "Answer", "Lookup", "SpfTree", "check_host", "walk"]

#: DNS-querying terms (include, a, mx, ptr, exists, redirect) one evaluation may use.
LOOKUP_LIMIT: Final = 10
#: Lookups that found nothing (NXDOMAIN or no records) one evaluation may make.
VOID_LIMIT: Final = 2
#: Names one mx or ptr term may resolve.
_NAMES_LIMIT: Final = 10
_FAILED: Final = ("timeout", "servfail", "refused", "error")
_RESULTS: Final = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}


class Answer(Protocol):
    """What a lookup returns (:class:`mailkit.dnslookup.DnsAnswer` is one)."""

    @property
    def status(self) -> str: ...

    @property
    def values(self) -> tuple[Any, ...]: ...


Lookup = Callable[[str, str], Awaitable[Answer]]


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass
class _State:
    lookups: int = 0
    voids: int = 0

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > LOOKUP_LIMIT:
            raise _PermError(f"more than {LOOKUP_LIMIT} DNS lookups")

    def void(self, answer: Answer) -> None:
        if answer.status in ("nxdomain", "nodata"):
            self.voids += 1
            if self.voids > VOID_LIMIT:
                raise _PermError(f"more than {VOID_LIMIT} lookups found nothing")


async def _record(domain: str, lookup: Lookup) -> SpfRecord | None:
    """The domain's one SPF record; None when it has none."""
    answer = await lookup(domain, "TXT")
    if answer.status in _FAILED:
        raise _TempError(f"the TXT lookup of {domain} failed ({answer.status})")
    found = spf_records(str(v) for v in answer.values) if answer.status == "ok" else []
    if not found:
        return None
    if len(found) > 1:
        raise _PermError(f"{domain} has {len(found)} SPF records; receivers accept one")
    try:
        return parse_spf(found[0])
    except RecordSyntaxError as exc:
        raise _PermError(f"{domain}: {exc}") from None


def expand(spec: str, *, ip: str, sender: str, domain: str, helo: str = "") -> str:
    """RFC 7208 §7 macro expansion of a domain-spec (``%{i}._spf.%{d}``)."""
    local, _, sender_domain = sender.rpartition("@")
    address = ipaddress.ip_address(ip)
    nibbles = ".".join(address.exploded.replace(":", ""))
    dotted = str(address) if address.version == 4 else nibbles
    values = {
        "s": sender,
        "l": local or "postmaster",
        "o": sender_domain,
        "d": domain,
        "i": dotted,
        "p": "unknown",
        "v": "in-addr" if address.version == 4 else "ip6",
        "h": helo or domain,
    }
    out: list[str] = []
    i = 0
    while i < len(spec):
        char = spec[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        nxt = spec[i + 1 : i + 2]
        if nxt in ("%", "_", "-"):
            out.append({"%": "%", "_": " ", "-": "%20"}[nxt])
            i += 2
            continue
        end = spec.index("}", i)
        body = spec[i + 2 : end]
        letter, rest = body[0].lower(), body[1:]
        digits = ""
        while rest[:1].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        reverse = rest[:1].lower() == "r"
        delimiters = (rest[1:] if reverse else rest) or "."
        value = values.get(letter, "")
        parts = [value]
        for delimiter in delimiters:
            parts = [piece for part in parts for piece in part.split(delimiter)]
        if reverse:
            parts.reverse()
        if digits and int(digits) > 0:
            parts = parts[-int(digits) :]
        out.append(".".join(parts))
        i = end + 1
    expanded = "".join(out)
    while len(expanded) > 253 and "." in expanded:  # §7.3: drop labels from the left
        expanded = expanded.split(".", 1)[1]
    return expanded


def _in(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, address: str, bits: int | None) -> bool:
    try:
        other = ipaddress.ip_address(address)
    except ValueError:
        return False
    if other.version != ip.version:
        return False
    prefix = bits if bits is not None else (32 if ip.version == 4 else 128)
    return ip in ipaddress.ip_network(f"{other}/{prefix}", strict=False)


async def _addresses(name: str, version: int, lookup: Lookup, state: _State) -> tuple[str, ...]:
    answer = await lookup(name, "A" if version == 4 else "AAAA")
    if answer.status in _FAILED:
        raise _TempError(f"the address lookup of {name} failed ({answer.status})")
    state.void(answer)
    return tuple(str(v) for v in answer.values)


async def _matches(
    term: SpfTerm,
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    domain: str,
    sender: str,
    lookup: Lookup,
    state: _State,
    depth: int,
) -> bool:
    mechanism = term.mechanism
    if mechanism == "all":
        return True
    if mechanism == "ip4" or mechanism == "ip6":
        bits = term.cidr4 if mechanism == "ip4" else term.cidr6
        return term.value is not None and _in(ip, term.value, bits)
    state.count()
    target = domain
    if term.value is not None:
        target = expand(term.value, ip=str(ip), sender=sender, domain=domain)
    bits = term.cidr4 if ip.version == 4 else term.cidr6
    if mechanism == "include":
        result, why = await _check(ip, target, sender, lookup, state, depth + 1)
        if result == "pass":
            return True
        if result == "temperror":
            raise _TempError(why)
        if result == "permerror":
            raise _PermError(why)  # the include's own reason: a limit, a syntax error …
        if result == "none":
            raise _PermError(f"include:{target}: {target} has no SPF record")
        return False
    if mechanism == "a":
        return any(_in(ip, a, bits) for a in await _addresses(target, ip.version, lookup, state))
    if mechanism == "mx":
        answer = await lookup(target, "MX")
        if answer.status in _FAILED:
            raise _TempError(f"the MX lookup of {target} failed ({answer.status})")
        state.void(answer)
        hosts = [host for _pref, host in answer.values if host not in ("", ".")]
        if len(hosts) > _NAMES_LIMIT:
            raise _PermError(f"mx:{target} names more than {_NAMES_LIMIT} hosts")
        for host in hosts:
            if any(_in(ip, a, bits) for a in await _addresses(host, ip.version, lookup, state)):
                return True
        return False
    if mechanism == "exists":
        answer = await lookup(target, "A")
        if answer.status in _FAILED:
            raise _TempError(f"the lookup of {target} failed ({answer.status})")
        state.void(answer)
        return bool(answer.values)
    # ptr (RFC 7208 says "do not use"; still evaluated): validated reverse names under target.
    answer = await lookup(ip.reverse_pointer, "PTR")
    if answer.status in _FAILED:
        return False  # §5.5: a failed PTR lookup means no match, not an error
    state.void(answer)
    for name in [str(v).rstrip(".").lower() for v in answer.values][:_NAMES_LIMIT]:
        wanted = target.rstrip(".").lower()
        if name == wanted or name.endswith("." + wanted):
            forward = await lookup(name, "A" if ip.version == 4 else "AAAA")
            if any(_in(ip, a, None) for a in forward.values):
                return True
    return False


async def _check(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    domain: str,
    sender: str,
    lookup: Lookup,
    state: _State,
    depth: int,
) -> tuple[str, str]:
    """(result, why) — result as RFC 7208 §2.6 names it."""
    if depth > 2 * LOOKUP_LIMIT:  # a loop would exceed the lookup limit first; belt and braces
        return "permerror", "the include chain loops"
    try:
        record = await _record(domain, lookup)
        if record is None:
            return "none", f"{domain} has no SPF record"
        for term in record.terms:
            if await _matches(term, ip, domain, sender, lookup, state, depth):
                return _RESULTS[term.qualifier], f"{term} in the record of {domain}"
        if record.redirect is not None and record.all_term is None:
            state.count()
            target = expand(record.redirect, ip=str(ip), sender=sender, domain=domain)
            result, why = await _check(ip, target, sender, lookup, state, depth + 1)
            if result == "none":
                return "permerror", f"redirect={target}: {target} has no SPF record"
            return result, why
        return "neutral", f"nothing in the record of {domain} matched"
    except _PermError as exc:
        return "permerror", str(exc)
    except _TempError as exc:
        return "temperror", str(exc)


async def check_host(
    ip: str, domain: str, lookup: Lookup, *, sender: str | None = None
) -> tuple[str, str, int]:
    """RFC 7208 ``check_host()``: (result, why, DNS lookups used) for mail from ``ip``.

    ``sender`` is the envelope sender (``postmaster@DOMAIN`` when not given).
    """
    state = _State()
    address = ipaddress.ip_address(ip)
    result, why = await _check(
        address, domain.rstrip("."), sender or f"postmaster@{domain}", lookup, state, 0
    )
    return result, why, state.lookups


@dataclass
class SpfTree:
    """A whole SPF tree, as :func:`walk` found it."""

    record: SpfRecord | None = None
    #: ok, missing, invalid, unknown (a lookup failed).
    status: str = "missing"
    lookups: int = 0
    #: Terms whose lookup finds nothing (RFC 7208 allows two per evaluation).
    void_lookups: int = 0
    #: Include and redirect targets, in the order met (lower case, no trailing dot).
    includes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: The top-level ``all`` term with its qualifier (``-all``, ``+all`` …), or the one the
    #: redirect target ends with.
    all_term: str | None = None


async def walk(domain: str, lookup: Lookup) -> SpfTree:
    """Every record reachable from ``domain``'s SPF, with the lookups the tree costs.

    Terms with macros are counted but not followed (their target depends on the sender).
    """
    tree = SpfTree()
    seen: set[str] = set()

    async def visit(name: str, top: bool, via: str) -> SpfRecord | None:
        key = name.rstrip(".").lower()
        if key in seen:
            tree.problems.append(f"{via}: {key} is already part of the tree (a loop)")
            return None
        seen.add(key)
        try:
            record = await _record(key, lookup)
        except _TempError as exc:
            tree.failures.append(str(exc))
            return None
        except _PermError as exc:
            tree.problems.append(str(exc))
            return None
        if record is None:
            if not top:
                tree.problems.append(f"{via}: {key} has no SPF record (a permanent error)")
            return None
        for term in record.terms:
            if term.mechanism in ("include", "a", "mx", "ptr", "exists"):
                tree.lookups += 1
            if term.mechanism in ("a", "mx", "exists") and "%" not in (term.value or ""):
                # What a receiver asks for this term (A for an IPv4 sender): nothing there is
                # a void lookup, and more than two fail every message.
                name = (term.value or key).rstrip(".").lower()
                answer = await lookup(name, "MX" if term.mechanism == "mx" else "A")
                if answer.status in ("nxdomain", "nodata"):
                    tree.void_lookups += 1
            if term.mechanism == "include" and term.value and "%" not in term.value:
                tree.includes.append(term.value.rstrip(".").lower())
                await visit(term.value, False, f"include:{term.value} in {key}")
        if record.redirect is not None and record.all_term is None:
            tree.lookups += 1
            if "%" not in record.redirect:
                tree.includes.append(record.redirect.rstrip(".").lower())
                target = await visit(record.redirect, False, f"redirect={record.redirect}")
                if top and target is not None and target.all_term is not None:
                    tree.all_term = target.all_term.qualifier + "all"
        return record

    record = await visit(domain, True, domain)
    tree.record = record
    if record is not None and record.all_term is not None:
        tree.all_term = record.all_term.qualifier + "all"
    if record is None and not tree.problems:
        tree.status = "unknown" if tree.failures else "missing"
    elif tree.problems or tree.lookups > LOOKUP_LIMIT or tree.void_lookups > VOID_LIMIT:
        tree.status = "invalid"
    elif tree.failures:
        tree.status = "unknown"
    else:
        tree.status = "ok"
    return tree
