"""Discovery's pure core: parsers never crash and never expand an entity; ranking and merging.

The end-to-end paths (DNS, HTTPS) are in tests/test_discover.py; here the parsers meet what a
hostile or broken server could send, including arbitrary bytes (hypothesis).
"""

from __future__ import annotations

import json

import pytest
from autoconfig_server import BILLION_LAUGHS, XXE, autoconfig_xml
from hypothesis import given
from hypothesis import strategies as st

from mailkit.discovery.candidates import (
    CONFIDENCE,
    MAX_DOCUMENT_BYTES,
    Candidate,
    combine,
    expand,
    infer_from_mx,
    parse_autoconfig,
    parse_autodiscover,
    rank,
    registrable_domain,
    split_address,
    srv_candidates,
)
from mailkit.settings import AuthType, Mode, Security

EMAIL = "jane.doe@example.org"


@given(st.binary(max_size=2048))
def test_autoconfig_parser_takes_any_bytes(body: bytes) -> None:
    parsed = parse_autoconfig(body, EMAIL, "autoconfig")
    assert parsed.outcome in ("found", "none", "malformed", "hostile")
    assert bool(parsed.candidates) == (parsed.outcome == "found")


@given(st.text(max_size=200))
def test_autoconfig_parser_takes_any_text_inside_a_server(text: str) -> None:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    body = autoconfig_xml({"hostname": escaped, "port": escaped, "socketType": escaped})
    parsed = parse_autoconfig(body, EMAIL, "autoconfig")
    for c in parsed.candidates:  # whatever got through is a valid server
        assert 0 < c.port < 65536
        assert c.host
        assert " " not in c.host


@given(st.binary(max_size=512))
def test_autodiscover_parser_takes_any_bytes(body: bytes) -> None:
    parsed = parse_autodiscover(body, EMAIL)
    assert parsed.outcome in ("found", "none", "malformed")


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        XXE,
        # A parameter entity pulling an external DTD.
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
        b"<clientConfig/>",
        # A DTD alone, even without entities.
        b'<?xml version="1.0"?><!DOCTYPE clientConfig SYSTEM "http://127.0.0.1:9/c.dtd">'
        b"<clientConfig/>",
    ],
)
def test_hostile_documents_are_refused_before_anything_is_expanded(body: bytes) -> None:
    parsed = parse_autoconfig(body, EMAIL, "autoconfig")
    assert parsed.outcome == "hostile"
    assert parsed.candidates == ()
    assert "refused" in parsed.detail


def test_an_oversized_document_is_not_parsed() -> None:
    body = b"<clientConfig>" + b" " * MAX_DOCUMENT_BYTES + b"</clientConfig>"
    parsed = parse_autoconfig(body, EMAIL, "autoconfig")
    assert parsed.outcome == "malformed"
    assert "too large" in parsed.detail


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        ({"hostname": "smtp example", "port": 587, "socketType": "STARTTLS"}, "not a host name"),
        ({"hostname": "smtp.example.org", "port": 70000, "socketType": "SSL"}, "not a port"),
        ({"hostname": "smtp.example.org", "port": 587, "socketType": "TLS1.3"}, "socketType"),
    ],
)
def test_a_bad_server_entry_is_skipped_and_named(server: dict[str, object], problem: str) -> None:
    good = {"hostname": "good.example.org", "port": 465, "socketType": "SSL"}
    parsed = parse_autoconfig(autoconfig_xml(server, good), EMAIL, "ispdb")
    assert [c.host for c in parsed.candidates] == ["good.example.org"]
    assert problem in parsed.detail
    alone = parse_autoconfig(autoconfig_xml(server), EMAIL, "ispdb")
    assert alone.outcome == "malformed"


def test_only_smtp_outgoing_servers_count() -> None:
    parsed = parse_autoconfig(
        autoconfig_xml({"type": "exchange", "hostname": "ex.example.org", "port": 443}),
        EMAIL,
        "autoconfig",
    )
    assert parsed.outcome == "none"


def test_not_an_autoconfig_file() -> None:
    parsed = parse_autoconfig(b"<html><body>Welcome</body></html>", EMAIL, "well-known")
    assert parsed.outcome == "malformed"
    assert "<html>" in parsed.detail


@pytest.mark.parametrize(
    ("methods", "auth"),
    [
        (["password-cleartext"], AuthType.AUTO),
        (["password-encrypted"], AuthType.CRAM_MD5),
        (["NTLM"], AuthType.NTLM),
        (["password-cleartext", "OAuth2"], AuthType.XOAUTH2),
        (["client-IP-address"], AuthType.NONE),
        (["GSSAPI"], AuthType.AUTO),
        ([], AuthType.AUTO),
    ],
)
def test_authentication_methods_map_to_advice(methods: list[str], auth: AuthType) -> None:
    server = {"hostname": "smtp.example.org", "port": 587, "socketType": "STARTTLS"}
    parsed = parse_autoconfig(
        autoconfig_xml({**server, "authentication": methods}), EMAIL, "autoconfig"
    )
    assert parsed.candidates[0].auth is auth
    assert parsed.candidates[0].auth_advice


def test_placeholders() -> None:
    assert expand("%EMAILLOCALPART%@%EMAILDOMAIN%", "Jane.Doe@Example.ORG") == (
        "Jane.Doe@example.org"
    )
    assert expand("%EMAILADDRESS%", EMAIL) == EMAIL


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("mx01.mailhoster.example", "mailhoster.example"),
        ("mx.example.co.uk", "example.co.uk"),
        ("a.b.c.example.com.au", "example.com.au"),
        ("example.com", "example.com"),
        ("mx.example.com.", "example.com"),
    ],
)
def test_registrable_domain_without_a_public_suffix_list(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


def test_srv_orders_by_priority_then_weight_and_skips_invalid_targets() -> None:
    parsed = srv_candidates(
        "submission",
        [(20, 0, 587, "backup.example.org"), (10, 5, 587, "b.example.org"),
         (10, 50, 587, "a.example.org"), (10, 1, 0, "zero.example.org")],
        EMAIL,
    )  # fmt: skip
    assert [c.host for c in parsed.candidates] == [
        "a.example.org",
        "b.example.org",
        "backup.example.org",
    ]
    assert [c.confidence for c in parsed.candidates] == [85, 80, 75]
    assert "zero.example.org:0" in parsed.detail


def test_mx_of_an_unknown_host_on_the_domain_itself_asks_nobody() -> None:
    inference = infer_from_mx(["mail.example.org"], EMAIL)
    assert inference.provider is None
    assert inference.ispdb_domain is None
    hosted = infer_from_mx(["mx1.hoster.net"], EMAIL)
    assert hosted.ispdb_domain == "hoster.net"
    gateway = infer_from_mx(["eu-smtp-inbound-1.mimecast.com"], EMAIL)
    assert gateway.provider is None
    assert gateway.ispdb_domain == "mimecast.com"


def test_autodiscover_answers() -> None:
    error = json.dumps({"ErrorCode": "InternalServerError", "ErrorMessage": "Failed"}).encode()
    assert parse_autodiscover(error, EMAIL).outcome == "none"
    plain = json.dumps({"Protocol": "EWS", "Url": "http://mail.example.org/EWS"}).encode()
    assert parse_autodiscover(plain, EMAIL).outcome == "malformed"
    assert parse_autodiscover(b"[1, 2]", EMAIL).outcome == "malformed"


def candidate(source: str, port: int = 587, security: Security = Security.STARTTLS) -> Candidate:
    return Candidate(
        mode=Mode.SMTP,
        host="smtp.example.org",
        port=port,
        security=security,
        auth=AuthType.AUTO,
        auth_advice="a password",
        sources=(source,),
        confidence=CONFIDENCE[source],
    )


def test_rank_merges_the_same_server_and_puts_plain_text_last() -> None:
    ranked = rank(
        [
            candidate("ispdb"),
            candidate("srv"),
            candidate("srv"),  # the same source twice adds nothing
            candidate("autoconfig", 25, Security.NONE),
            candidate("ispdb", 465, Security.IMPLICIT_TLS),
        ]
    )
    assert [(c.port, c.sources, c.confidence) for c in ranked] == [
        (587, ("ispdb", "srv"), combine(70, 85)),
        (465, ("ispdb",), 70),
        (25, ("autoconfig",), 90),
    ]
    assert combine(70, 85) == 95
    assert combine(99, 99) == 99


def test_equal_confidence_prefers_implicit_tls() -> None:
    ranked = rank([candidate("srv"), candidate("srv", 465, Security.IMPLICIT_TLS)])
    assert [c.port for c in ranked] == [465, 587]


@pytest.mark.parametrize("email", ["jane@localhost", "@example.org", "jane@exa mple.org", ""])
def test_split_address_names_the_field(email: str) -> None:
    with pytest.raises(ValueError, match=r"^Email address: "):
        split_address(email, field_name="Email address")


def test_an_internationalised_domain_is_looked_up_in_its_ascii_form() -> None:
    assert split_address("jürgen@Bücher.example") == ("jürgen", "xn--bcher-kva.example")
