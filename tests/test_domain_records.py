"""SPF and DMARC parsing, RFC 7208 macros and evaluation: the pure core of domain health.

The evaluation takes its lookups as an argument; here they come from a table in memory (the
seam the DNS tests replace with the real client and server), so each RFC rule is pinned
exactly: limits, loops, redirects, macros, CIDR lengths. Property tests hold the parsers to
one promise: any text is parsed or refused with :class:`RecordSyntaxError`, nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailkit.domainhealth.keys import dkim_key
from mailkit.domainhealth.records import (
    RecordSyntaxError,
    SpfTerm,
    dmarc_records,
    normal_domain,
    parse_dmarc,
    parse_spf,
    spf_records,
)
from mailkit.domainhealth.spf import LOOKUP_LIMIT, check_host, expand, walk

# --------------------------------------------------------------------------- SPF parsing


def test_a_record_with_every_mechanism_parses() -> None:
    record = parse_spf(
        "v=spf1 +a -mx:mail.example.com/24 ~a//64 ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
        "ptr:example.com exists:%{i}._spf.example.com include:_spf.example.net "
        "redirect=_spf.example.org exp=explain.example.com custom=value"
    )
    assert [str(t) for t in record.terms] == [
        "a",
        "-mx:mail.example.com/24",
        "~a//64",
        "?ip4:192.0.2.0/24",
        "ip6:2001:db8::/32",
        "ptr:example.com",
        "exists:%{i}._spf.example.com",
        "include:_spf.example.net",
    ]
    assert record.redirect == "_spf.example.org"
    assert record.exp == "explain.example.com"
    assert record.all_term is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("v=spf1 ip4:300.1.1.1 -all", "'300.1.1.1' is not an IP address"),
        ("v=spf1 ip4:2001:db8::1 -all", "is not an IPv4 address"),
        ("v=spf1 ip4:192.0.2.0/33 -all", "/33 is not a prefix length from 0 to 32"),
        ("v=spf1 include -all", "include needs a domain"),
        ("v=spf1 include:localhost -all", "is not a domain name"),
        ("v=spf1 include:example.123 -all", "does not end in a valid top label"),
        ("v=spf1 all:example.com", "'all' takes no argument"),
        ("v=spf1 allow:everyone", "'allow' is not an SPF mechanism"),
        ("v=spf1 exists:%{x}.example.com -all", "starts no valid macro"),
        ("v=spf1 redirect=a.example redirect=b.example", "redirect= appears more than once"),
        ("v=spf1 include:example.com/24 -all", "does not end in a valid top label"),
        ("spf1 -all", "does not start with 'v=spf1'"),
    ],
)
def test_syntax_errors_name_the_term(text: str, words: str) -> None:
    with pytest.raises(RecordSyntaxError) as raised:
        parse_spf(text)
    assert words in str(raised.value)


def test_only_v_spf1_strings_are_spf_records() -> None:
    texts = [
        "v=spf1 -all",
        "V=SPF1 mx -all",
        "v=spf10 -all",
        "google-site-verification=x",
        "v=spf1",
    ]
    assert spf_records(texts) == ["v=spf1 -all", "V=SPF1 mx -all", "v=spf1"]


_WORDS = st.sampled_from(
    ["a", "mx", "all", "-all", "~all", "include:", "ip4:", "ip6:", "/", "//", ":", "=", "%{", "}"]
)


@given(st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=8))
def test_any_text_is_parsed_or_refused_cleanly(parts: list[str]) -> None:
    text = "v=spf1 " + " ".join(parts)
    try:
        record = parse_spf(text)
    except RecordSyntaxError:
        return
    # What parses prints back to terms that parse to the same thing.
    for term in record.terms:
        assert parse_spf(f"v=spf1 {term}").terms == (term,)


@given(
    st.sampled_from(["+", "-", "~", "?"]),
    st.sampled_from(["a", "mx"]),
    st.none() | st.sampled_from(["example.com", "mail.example.org", "%{d}"]),
    st.none() | st.integers(0, 32),
    st.none() | st.integers(0, 128),
)
def test_terms_round_trip(
    qualifier: str, mechanism: str, value: str | None, v4: int | None, v6: int | None
) -> None:
    term = SpfTerm(qualifier, mechanism, value, v4, v6)
    assert parse_spf(f"v=spf1 {term}").terms == (term,)


# --------------------------------------------------------------------------- DMARC parsing


def test_a_full_dmarc_record() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=Reject; sp=quarantine; pct=25; adkim=s; aspf=r; "
        "rua=mailto:a@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com; fo=1;"
    )
    assert (record.policy, record.subdomain_policy, record.pct) == ("reject", "quarantine", 25)
    assert (record.adkim, record.aspf) == ("s", "r")
    assert record.rua == ("mailto:a@example.com", "mailto:b@example.net!10m")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("p=reject; v=DMARC1", "must start with v=DMARC1"),
        ("v=DMARC1", "the p= tag (the policy) is missing"),
        ("v=DMARC1; rua=mailto:a@example.com; p=none", "p= must follow v=DMARC1"),
        ("v=DMARC1; p=block", "use none, quarantine or reject"),
        ("v=DMARC1; p=none; sp=maybe", "sp='maybe'"),
        ("v=DMARC1; p=none; pct=150", "pct='150'"),
        ("v=DMARC1; p=none; adkim=x", "adkim='x'"),
        ("v=DMARC1; p=none; rua=https://example.com/r", "is not a mailto: address"),
        ("v=DMARC1; p=none; p=reject", "appears more than once"),
        ("v=DMARC1; p=none; broken", "is not tag=value"),
    ],
)
def test_dmarc_syntax_errors_name_the_tag(text: str, words: str) -> None:
    with pytest.raises(RecordSyntaxError) as raised:
        parse_dmarc(text)
    assert words in str(raised.value)


def test_dmarc_records_are_recognised_by_their_first_tag() -> None:
    texts = ["v=DMARC1; p=none", "v = DMARC1 ; p=none", "p=none; v=DMARC1", "v=spf1 -all"]
    assert dmarc_records(texts) == ["v=DMARC1; p=none", "v = DMARC1 ; p=none"]


@given(st.text(max_size=80))
def test_any_dmarc_text_is_parsed_or_refused_cleanly(text: str) -> None:
    with contextlib.suppress(RecordSyntaxError):
        parse_dmarc("v=DMARC1; p=none; " + text)


def test_domain_names_are_normalised() -> None:
    assert normal_domain("Example.COM.") == "example.com"
    assert normal_domain("bücher.example") == "xn--bcher-kva.example"
    assert normal_domain("localhost") is None
    assert normal_domain("-bad.example") is None
    assert normal_domain("a..example") is None


# --------------------------------------------------------------------------- macros


SENDER = "strong-bad@email.example.com"


@pytest.mark.parametrize(
    ("spec", "expanded"),
    # RFC 7208 §7.4, the examples.
    [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("a%%b%_c%-d", "a%b c%20d"),
    ],
)
def test_macro_expansion_rfc_examples(spec: str, expanded: str) -> None:
    assert expand(spec, ip="192.0.2.3", sender=SENDER, domain="email.example.com") == expanded


def test_macro_expansion_ipv6() -> None:
    assert expand(
        "%{ir}.%{v}._spf.%{d2}", ip="2001:db8::cb01", sender=SENDER, domain="email.example.com"
    ) == ("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Answer:
    status: str
    values: tuple[Any, ...] = ()


def lookups(table: Mapping[tuple[str, str], Any]) -> Any:
    """A lookup over a table; a str value is a failure status, a missing key NXDOMAIN."""
    asked: list[tuple[str, str]] = []

    async def lookup(name: str, rdtype: str) -> Answer:
        key = (name.rstrip(".").lower(), rdtype)
        asked.append(key)
        value = table.get(key)
        if value is None:
            return Answer("nxdomain")
        if isinstance(value, str):
            return Answer(value)
        return Answer("ok" if value else "nodata", value)

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def result(ip: str, domain: str, table: Mapping[tuple[str, str], Any]) -> tuple[str, str, int]:
    return asyncio.run(check_host(ip, domain, lookups(table)))


def test_the_first_matching_mechanism_decides() -> None:
    table = {("example.com", "TXT"): ("v=spf1 -ip4:192.0.2.1 ip4:192.0.2.0/24 ~all",)}
    assert result("192.0.2.1", "example.com", table)[0] == "fail"
    assert result("192.0.2.2", "example.com", table)[0] == "pass"
    assert result("198.51.100.1", "example.com", table)[0] == "softfail"


def test_no_record_is_none_and_no_match_is_neutral() -> None:
    assert result("192.0.2.1", "example.com", {})[0] == "none"
    table = {("example.com", "TXT"): ("v=spf1 ip4:198.51.100.1",)}
    assert result("192.0.2.1", "example.com", table)[0] == "neutral"


def test_a_and_mx_with_cidr_lengths() -> None:
    table = {
        ("example.com", "TXT"): ("v=spf1 a/24 mx//64 -all",),
        ("example.com", "A"): ("192.0.2.10",),
        ("example.com", "MX"): ((10, "mx.example.com"),),
        ("mx.example.com", "AAAA"): ("2001:db8:1::1",),
    }
    assert result("192.0.2.200", "example.com", table)[0] == "pass"
    assert result("2001:db8:1::ffff", "example.com", table)[0] == "pass"
    assert result("2001:db8:2::1", "example.com", table)[0] == "fail"


def test_include_results_map_as_the_rfc_says() -> None:
    base = {("example.com", "TXT"): ("v=spf1 include:other.example -all",)}
    fail_inside = {**base, ("other.example", "TXT"): ("v=spf1 -all",)}
    assert result("192.0.2.1", "example.com", fail_inside)[0] == "fail"  # no match, then -all
    none_inside = dict(base)
    assert result("192.0.2.1", "example.com", none_inside)[0] == "permerror"
    temp_inside = {**base, ("other.example", "TXT"): "timeout"}
    assert result("192.0.2.1", "example.com", temp_inside)[0] == "temperror"


def test_redirect_is_followed_only_without_all() -> None:
    table = {
        ("example.com", "TXT"): ("v=spf1 redirect=_spf.example.com",),
        ("_spf.example.com", "TXT"): ("v=spf1 ip4:192.0.2.1 -all",),
    }
    assert result("192.0.2.1", "example.com", table)[:2] == (
        "pass",
        "ip4:192.0.2.1 in the record of _spf.example.com",
    )
    with_all = {**table, ("example.com", "TXT"): ("v=spf1 ~all redirect=_spf.example.com",)}
    assert result("192.0.2.1", "example.com", with_all)[0] == "softfail"
    dangling = {("example.com", "TXT"): ("v=spf1 redirect=nothing.example",)}
    assert result("192.0.2.1", "example.com", dangling)[0] == "permerror"


def test_the_lookup_limit_and_a_loop() -> None:
    chain = {
        (f"l{i}.example", "TXT"): (f"v=spf1 include:l{i + 1}.example -all",) for i in range(12)
    }
    outcome, why, used = result("192.0.2.1", "l0.example", chain)
    assert outcome == "permerror"
    assert f"more than {LOOKUP_LIMIT} DNS lookups" in why
    assert used == LOOKUP_LIMIT + 1
    loop = {
        ("a.example", "TXT"): ("v=spf1 include:b.example -all",),
        ("b.example", "TXT"): ("v=spf1 include:a.example -all",),
    }
    assert result("192.0.2.1", "a.example", loop)[0] == "permerror"
    tree = asyncio.run(walk("a.example", lookups(loop)))
    assert tree.status == "invalid"
    assert any("a loop" in problem for problem in tree.problems)


def test_more_than_two_void_lookups() -> None:
    table = {("example.com", "TXT"): ("v=spf1 a:n1.example a:n2.example a:n3.example -all",)}
    outcome, why, _ = result("192.0.2.1", "example.com", table)
    assert (outcome, why) == ("permerror", "more than 2 lookups found nothing")
    two = {("example.com", "TXT"): ("v=spf1 a:n1.example a:n2.example -all",)}
    assert result("192.0.2.1", "example.com", two)[0] == "fail"


def test_exists_with_a_macro_and_ptr() -> None:
    table = {
        ("example.com", "TXT"): ("v=spf1 exists:%{ir}.allow.example.com ptr -all",),
        ("1.2.0.192.allow.example.com", "A"): ("127.0.0.2",),
        ("2.2.0.192.in-addr.arpa", "PTR"): ("host.example.com.",),
        ("host.example.com", "A"): ("192.0.2.2",),
    }
    assert result("192.0.2.1", "example.com", table)[0] == "pass"  # exists
    assert result("192.0.2.2", "example.com", table)[0] == "pass"  # validated ptr
    assert result("192.0.2.3", "example.com", table)[0] == "fail"


def test_too_many_mx_hosts() -> None:
    hosts = tuple((10, f"mx{i}.example.com") for i in range(11))
    table = {("example.com", "TXT"): ("v=spf1 mx -all",), ("example.com", "MX"): hosts}
    assert result("192.0.2.1", "example.com", table)[0] == "permerror"


def test_walk_counts_the_whole_tree_and_follows_no_macro() -> None:
    table = {
        ("example.com", "TXT"): ("v=spf1 a mx include:_a.example.com exists:%{i}.x.example -all",),
        ("_a.example.com", "TXT"): ("v=spf1 include:_b.example.com ~all",),
        ("_b.example.com", "TXT"): ("v=spf1 ptr ip4:192.0.2.0/24 -all",),
    }
    lookup = lookups(table)
    tree = asyncio.run(walk("example.com", lookup))
    assert (tree.status, tree.lookups, tree.all_term) == ("ok", 6, "-all")
    assert tree.includes == ["_a.example.com", "_b.example.com"]
    assert not any("x.example" in name for name, _t in lookup.asked)


def test_walk_tells_a_failed_lookup_from_a_missing_record() -> None:
    failed = asyncio.run(walk("example.com", lookups({("example.com", "TXT"): "servfail"})))
    assert failed.status == "unknown"
    assert asyncio.run(walk("example.com", lookups({}))).status == "missing"


# --------------------------------------------------------------------------- DKIM key records


@settings(deadline=None)  # the first example imports dkimpy and cryptography
@given(
    st.one_of(
        st.text(max_size=60),
        st.binary(max_size=300).map(lambda b: "v=DKIM1; k=rsa; p=" + base64.b64encode(b).decode()),
        st.binary(max_size=40).map(
            lambda b: "v=DKIM1; k=ed25519; p=" + base64.b64encode(b).decode()
        ),
    )
)
def test_any_key_record_is_judged_never_raised(text: str) -> None:
    key = dkim_key("s1", "s1._domainkey.example.com", text)
    assert key.status in ("ok", "revoked", "invalid")
    assert key.status != "invalid" or key.detail


def test_key_records_ok_revoked_and_wrong_type() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = ed25519.Ed25519PrivateKey.generate().public_key()
    ed = base64.b64encode(raw.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    spki = base64.b64encode(
        raw.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    name = "s1._domainkey.example.com"
    assert dkim_key("s1", name, f"v=DKIM1; k=ed25519; p={ed}").status == "ok"
    assert dkim_key("s1", name, "v=DKIM1; k=rsa; p=").status == "revoked"
    wrong = dkim_key("s1", name, f"v=DKIM1; k=rsa; p={spki}")  # an Ed25519 key called RSA
    assert wrong.status == "invalid"
    assert dkim_key("s1", name, f"v=DKIM2; p={ed}").detail == "v=DKIM2 (must be DKIM1)"
    assert "k=dsa" in dkim_key("s1", name, f"k=dsa; p={ed}").detail


def test_walk_counts_void_lookups() -> None:
    table = {
        ("example.com", "TXT"): ("v=spf1 a:n1.example mx:n2.example include:_i.example -all",),
        ("_i.example", "TXT"): ("v=spf1 exists:n3.example a:ok.example ~all",),
        ("ok.example", "A"): ("192.0.2.1",),
    }
    tree = asyncio.run(walk("example.com", lookups(table)))
    assert tree.void_lookups == 3
    assert tree.status == "invalid"
    del table[("_i.example", "TXT")]
    table[("_i.example", "TXT")] = ("v=spf1 a:ok.example ~all",)
    assert asyncio.run(walk("example.com", lookups(table))).void_lookups == 2
