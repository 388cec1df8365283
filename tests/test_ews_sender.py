"""The EWS sender: the real exchangelib against the local fake Exchange, nothing mocked.

Success with NTLM, Basic and an OAuth token; Autodiscover (JSON v2, POX, the domain's lookup
order down to the SRV record) and its failure at each step; every fault the fake Exchange
gives, diagnosed by phase, kind and cause; TLS trust per send (a second, differently trusted
send in the same process is not affected, and exchangelib's caches and class attributes are
left as they were); and the canary: the password in none of its forms, nor any NTLM message,
in anything a send produces, with the root logger at DEBUG.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.server
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from smtpd_servers import TLSMaterial

from mailkit.demo.dns import DnsServer
from mailkit.demo.ews import FakeExchange
from mailkit.diagnose import diagnose
from mailkit.message import TEST_BODY_LINES, TEST_SUBJECT
from mailkit.outcome import Cause, Failure, Kind, Phase, Signal
from mailkit.resolve import effective
from mailkit.result import TestResult
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.senders.ews import (
    EwsPlan,
    EwsSender,
    autodiscover_steps,
    parse_pox,
    soap_request,
    soap_response,
)
from mailkit.settings import AuthType, OrgSettings, Priority, Provenance, UserSettings
from mailkit.store import Store
from mailkit.testsend import send_test

pytestmark = pytest.mark.timeout(120)

USER = "ews@example.com"
TO = "bob@example.com"


def plan_for(fake: FakeExchange, **changes: object) -> EwsPlan:
    base = EwsPlan(
        from_address=USER,
        username=USER,
        ews_url=fake.ews_url,
        auth=AuthType.NTLM,
        ca_file=str(fake.ca_file),
        command_timeout=20.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def send(
    fake: FakeExchange,
    *,
    to: str = TO,
    password: str | None = None,
    priority: Priority = Priority.NORMAL,
    **changes: object,
) -> TestResult:
    return EwsSender.send(
        plan_for(fake, **changes),
        to=[to],
        password=Secret(fake.password if password is None else password),
        priority=priority,
    )


def transcript_text(result: TestResult) -> str:
    return result.transcript.to_text()


def judged(result: TestResult) -> tuple[Phase, Kind, Cause]:
    assert result.diagnosis is not None, transcript_text(result)
    d = result.diagnosis
    return d.phase, d.kind, d.cause


# --------------------------------------------------------------------------- success


def test_ntlm_send_creates_the_test_message_with_send_and_save_copy(
    fake_exchange: FakeExchange,
) -> None:
    result = send(fake_exchange, priority=Priority.HIGH)
    assert result.ok, transcript_text(result)
    (sent,) = fake_exchange.sent
    assert sent.disposition == "SendAndSaveCopy"
    assert sent.subject == TEST_SUBJECT
    assert sent.body is not None
    assert all(text in sent.body for _, text in TEST_BODY_LINES)
    assert sent.to == (TO,)
    assert sent.importance == "High"
    assert sent.from_ == USER
    assert sent.user == USER
    schemes = {r.auth_scheme for r in fake_exchange.requests if r.operation == "CreateItem"}
    assert schemes == {"NTLM"}
    assert result.auth_mechanism == "NTLM"
    assert result.context.service == "ews"
    assert result.server_reply == "HTTP 200 CreateItem NoError"
    assert result.message_id is not None
    assert result.tls is not None
    assert result.tls.version.startswith("TLSv1.")
    assert result.tls.verified_by == f"CA file {fake_exchange.ca_file}"


def test_basic_send(fake_exchange: FakeExchange) -> None:
    result = send(fake_exchange, auth=AuthType.LOGIN, priority=Priority.LOW)
    assert result.ok, transcript_text(result)
    assert result.auth_mechanism == "BASIC"
    assert fake_exchange.sent[0].importance == "Low"
    create = [r for r in fake_exchange.requests if r.operation == "CreateItem"]
    assert [r.auth_scheme for r in create] == ["Basic"]


def test_auth_auto_takes_ntlm_when_offered_and_basic_when_not(
    fake_exchange: FakeExchange,
) -> None:
    assert send(fake_exchange, auth=AuthType.AUTO).auth_mechanism == "NTLM"
    basic = send(fake_exchange, auth=AuthType.AUTO, ews_url=fake_exchange.ews_url_basic_only)
    assert basic.ok, transcript_text(basic)
    assert basic.auth_mechanism == "BASIC"
    # one unauthenticated question first: its 401 names what the server offers
    assert "auth auto: asking the server which sign-in it offers" in transcript_text(basic)


def test_msn_is_ntlm(fake_exchange: FakeExchange) -> None:
    plan = EwsPlan.from_effective(
        effective(
            OrgSettings(
                mode="exchange_ews", ews_url=fake_exchange.ews_url, auth="msn", from_address=USER
            )
        )
    )
    assert plan.auth is AuthType.NTLM


def test_oauth_token_is_sent_as_bearer(fake_exchange: FakeExchange) -> None:
    token = "eyJ0eXAiOiJKV1QifQ.ews-canary-token.sig"
    fake_exchange.bearer_tokens[token] = USER
    calls: list[int] = []

    def provider() -> Secret:
        calls.append(1)
        return Secret(token)

    result = EwsSender.send(plan_for(fake_exchange, auth=AuthType.XOAUTH2), to=[TO], token=provider)
    assert result.ok, transcript_text(result)
    assert calls == [1]
    assert result.auth_mechanism == "OAUTH"
    create = [r for r in fake_exchange.requests if r.operation == "CreateItem"]
    assert [r.auth_scheme for r in create] == ["Bearer"]
    assert token not in json.dumps(result.as_dict(), default=str)


def test_a_refused_token_is_diagnosed(fake_exchange: FakeExchange) -> None:
    result = EwsSender.send(
        plan_for(fake_exchange, auth=AuthType.XOAUTH2),
        to=[TO],
        token=lambda: Secret("not-a-token-the-fake-knows"),
    )
    assert judged(result) == (Phase.AUTH, Kind.PERMANENT, Cause.OAUTH_TOKEN_INVALID)


# --------------------------------------------------------------------------- the transcript


def test_rows_stream_to_on_row_on_the_callers_thread(fake_exchange: FakeExchange) -> None:
    """A widget gets each row as it is made, on the loop's thread (exchangelib runs in a
    worker thread): the same rows the result's transcript holds."""
    seen: list[tuple[object, int]] = []

    async def run() -> TestResult:
        loop_thread = threading.get_ident()
        result = await EwsSender.send_async(
            plan_for(fake_exchange),
            to=[TO],
            password=Secret(fake_exchange.password),
            on_row=lambda row: seen.append((row, threading.get_ident())),
        )
        await asyncio.sleep(0)  # rows handed over from the worker are delivered
        assert {thread for _, thread in seen} == {loop_thread}
        return result

    result = asyncio.run(run())
    assert result.ok
    assert [row for row, _ in seen] == list(result.transcript.rows)


def test_transcript_names_operations_and_response_codes_and_hides_ntlm(
    fake_exchange: FakeExchange,
) -> None:
    result = send(fake_exchange)
    text = transcript_text(result)
    assert "<SOAP CreateItem, MessageDisposition=SendAndSaveCopy" in text
    assert "SOAP CreateItemResponse; ResponseClass=Success; ResponseCode=NoError" in text
    assert "Authorization: NTLM <secret hidden>" in text
    assert "WWW-Authenticate: NTLM <token hidden>" in text  # the server's challenge
    assert "TlRMTVNT" not in text  # base64 of "NTLMSSP": no NTLM message of any kind
    rows = result.transcript.rows
    assert all(r.t_ms >= 0 for r in rows)
    assert [r.t_ms for r in rows] == sorted(r.t_ms for r in rows)
    statuses = [r.code for r in rows if r.code is not None]
    assert 401 in statuses
    assert statuses[-1] == 200


def test_soap_and_pox_readers() -> None:
    request = (
        b'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<s:Body><m:CreateItem xmlns:m="urn:m" MessageDisposition="SendAndSaveCopy"/>'
        b"</s:Body></s:Envelope>"
    )
    assert soap_request(request).operation == "CreateItem"
    assert soap_request(request).disposition == "SendAndSaveCopy"
    assert soap_request(b"not xml").operation is None
    fault = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
        b"<faultstring>busy</faultstring><detail><e:ResponseCode xmlns:e='urn:e'>"
        b"ErrorServerBusy</e:ResponseCode><e:MessageXml xmlns:e='urn:e'>"
        b'<t:Value xmlns:t="urn:t" Name="BackOffMilliseconds">2500</t:Value></e:MessageXml>'
        b"</detail></s:Fault></s:Body></s:Envelope>"
    )
    answer = soap_response(fault)
    assert answer is not None
    assert (answer.response_code, answer.back_off, answer.fault) == ("ErrorServerBusy", 2.5, "busy")
    assert soap_response(b"<html/>") is None
    # hostile XML is not expanded, just not read
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Autodiscover>&b;</Autodiscover>'
    )
    assert not parse_pox(bomb).well_formed
    pox = (
        b'<Autodiscover xmlns="urn:a"><Response xmlns="urn:r"><Account><Protocol><Type>EXPR'
        b"</Type><EwsUrl>https://ext/EWS/Exchange.asmx</EwsUrl></Protocol><Protocol><Type>EXCH"
        b"</Type><EwsUrl>https://int/EWS/Exchange.asmx</EwsUrl></Protocol></Account></Response>"
        b"</Autodiscover>"
    )
    assert parse_pox(pox).ews_url == "https://int/EWS/Exchange.asmx"


# --------------------------------------------------------------------------- faults

#: (id, what to change, recipient, expected phase, kind, cause, words in the fix)
FAULTS = [
    ("bad password", {"password": "Wr0ng-Passw0rd"}, TO,
     Phase.AUTH, Kind.PERMANENT, Cause.BAD_CREDENTIALS, "locked out"),
    ("bad password basic", {"password": "Wr0ng-Passw0rd", "auth": AuthType.LOGIN}, TO,
     Phase.AUTH, Kind.PERMANENT, Cause.BAD_CREDENTIALS, "password"),
    ("account locked", {"username": "locked@example.com", "from_address": "locked@example.com"},
     TO, Phase.AUTH, Kind.PERMANENT, Cause.ACCOUNT_LOCKED, "Unlock-ADAccount"),
    ("ntlm not offered", {"ews_url": "basic_only"}, TO,
     Phase.AUTH, Kind.CONFIGURATION, Cause.MECHANISM_NOT_OFFERED, "WindowsAuthentication"),
    ("ews disabled", {"username": "ews-disabled@example.com",
                      "from_address": "ews-disabled@example.com"}, TO,
     Phase.REQUEST, Kind.PERMANENT, Cause.EWS_UNAVAILABLE, "EwsEnabled"),
    ("ews retired", {"ews_url": "retired", "auth": AuthType.LOGIN}, TO,
     Phase.REQUEST, Kind.PERMANENT, Cause.EWS_UNAVAILABLE, "microsoft_graph"),
    ("access denied", {"from_address": "denied@example.com"}, TO,
     Phase.REQUEST, Kind.PERMANENT, Cause.API_ACCESS_DENIED, "FullAccess"),
    ("send as denied", {"from_address": "sendas-denied@example.com"}, TO,
     Phase.MAIL, Kind.PERMANENT, Cause.SEND_AS_DENIED, "Send As"),
    ("impersonation denied", {"from_address": "impersonate-denied@example.com"}, TO,
     Phase.MAIL, Kind.PERMANENT, Cause.SEND_AS_DENIED, "ApplicationImpersonation"),
    ("quota exceeded", {"from_address": "quota@example.com"}, TO,
     Phase.REQUEST, Kind.PERMANENT, Cause.MAILBOX_FULL, "Deleted Items"),
    ("server busy", {"from_address": "busy@example.com"}, TO,
     Phase.REQUEST, Kind.TRANSIENT, Cause.RATE_LIMITED, "Wait 5 seconds"),
    ("invalid recipients", {}, "invalid@example.com",
     Phase.RCPT, Kind.PERMANENT, Cause.RECIPIENT_REJECTED, "Mail To"),
    ("cut after CreateItem", {}, "cut@example.com",
     Phase.END_OF_DATA, Kind.OUTCOME_UNKNOWN, Cause.OUTCOME_UNKNOWN, "inbox"),
    ("wrong path", {"ews_url": "wrong_path"}, TO,
     Phase.REQUEST, Kind.CONFIGURATION, Cause.SETTING_INVALID, "/EWS/Exchange.asmx"),
]  # fmt: skip


def _resolve(fake: FakeExchange, changes: dict[str, object]) -> dict[str, object]:
    urls = {
        "basic_only": fake.ews_url_basic_only,
        "retired": fake.ews_url_retired,
        "wrong_path": f"{fake.base_url}/no-such/EWS/Exchange.asmx",
    }
    return {k: urls.get(v, v) if isinstance(v, str) else v for k, v in changes.items()}


@pytest.mark.parametrize(
    ("changes", "to", "phase", "kind", "cause", "fix"),
    [pytest.param(*row[1:], id=row[0]) for row in FAULTS],
)
def test_each_fault_is_diagnosed(
    fake_exchange: FakeExchange,
    changes: dict[str, object],
    to: str,
    phase: Phase,
    kind: Kind,
    cause: Cause,
    fix: str,
) -> None:
    result = send(fake_exchange, to=to, **_resolve(fake_exchange, changes))  # type: ignore[arg-type]
    assert not result.ok
    assert judged(result) == (phase, kind, cause), result.diagnosis
    assert result.diagnosis is not None
    assert fix.lower() in "\n".join(result.diagnosis.fix).lower(), result.diagnosis.fix
    assert result.message_id is None


def test_the_cut_send_reached_the_server(fake_exchange: FakeExchange) -> None:
    """Outcome unknown is honest: the fake did receive the message."""
    result = send(fake_exchange, to="cut@example.com")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.OUTCOME_UNKNOWN
    assert [m.to for m in fake_exchange.sent] == [("cut@example.com",)]


def test_a_stalled_answer_times_out_with_the_outcome_unknown(fake_exchange: FakeExchange) -> None:
    fake_exchange.stall_seconds = 10.0
    result = send(fake_exchange, to="stall@example.com", command_timeout=1.0)
    assert judged(result) == (Phase.END_OF_DATA, Kind.OUTCOME_UNKNOWN, Cause.OUTCOME_UNKNOWN)
    assert "timeout" in transcript_text(result)


def test_throttling_keeps_the_back_off(fake_exchange: FakeExchange) -> None:
    result = send(fake_exchange, from_address="busy@example.com")
    assert result.diagnosis is not None
    assert result.diagnosis.enhanced is None or "ErrorServerBusy" in result.diagnosis.server_text
    assert "BackOffMilliseconds=5000" in transcript_text(result)
    assert any("5 seconds" in step for step in result.diagnosis.fix)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused(fake_exchange: FakeExchange) -> None:
    result = send(fake_exchange, ews_url=f"https://127.0.0.1:{_free_port()}/EWS/Exchange.asmx")
    assert judged(result) == (Phase.CONNECT, Kind.CONFIGURATION, Cause.CONNECTION_REFUSED)
    assert any("--ews-url" in s for s in result.diagnosis.for_face("cli").fix)  # type: ignore[union-attr]


def test_name_that_does_not_resolve(fake_exchange: FakeExchange) -> None:
    result = send(fake_exchange, ews_url="https://ews.corp.test/EWS/Exchange.asmx")
    assert judged(result) == (Phase.CONNECT, Kind.CONFIGURATION, Cause.DNS_FAILURE)


@pytest.mark.parametrize(
    ("changes", "cause", "detail"),
    [
        ({"ews_url": None}, Cause.SETTING_INVALID, "EWS URL"),
        ({"auth": AuthType.CRAM_MD5}, Cause.SETTING_INVALID, "cram_md5"),
        ({"username": None}, Cause.SETTING_INVALID, "user name"),
        ({"from_address": None}, Cause.SETTING_INVALID, "missing"),
        ({"ca_file": "/no/such/ca.pem"}, Cause.SETTING_INVALID, "CA file"),
    ],
)
def test_settings_are_refused_before_any_connection(
    fake_exchange: FakeExchange, changes: dict[str, object], cause: Cause, detail: str
) -> None:
    result = send(fake_exchange, **changes)  # type: ignore[arg-type]
    assert judged(result) == (Phase.SETUP, Kind.CONFIGURATION, cause)
    assert result.diagnosis is not None
    assert detail.lower() in result.diagnosis.to_text().lower()
    assert fake_exchange.requests == []


def test_no_password(fake_exchange: FakeExchange) -> None:
    result = EwsSender.send(plan_for(fake_exchange), to=[TO])
    assert judged(result) == (Phase.SETUP, Kind.CONFIGURATION, Cause.PASSWORD_MISSING)
    assert fake_exchange.requests == []


# --------------------------------------------------------------------------- TLS trust


def test_an_untrusted_certificate_is_diagnosed(
    fake_exchange: FakeExchange, tls_material: TLSMaterial
) -> None:
    result = send(fake_exchange, ca_file=str(tls_material.untrusted_ca_file))
    assert judged(result) == (Phase.TLS, Kind.CONFIGURATION, Cause.CERTIFICATE_UNTRUSTED)
    assert fake_exchange.requests == []  # nothing was sent over it


@pytest.mark.parametrize("which", ["expired", "wrong_host"])
def test_expired_and_wrong_host_certificates(tls_material: TLSMaterial, which: str) -> None:
    files = getattr(tls_material, which)
    cause = {"expired": Cause.CERTIFICATE_EXPIRED, "wrong_host": Cause.CERTIFICATE_WRONG_HOST}
    with FakeExchange.from_files(files.cert_file, files.key_file, tls_material.ca_file) as fake:
        result = send(fake)
        assert judged(result) == (Phase.TLS, Kind.CONFIGURATION, cause[which])
        assert fake.requests == []


def test_the_pin_replaces_the_chain_and_is_checked_before_anything_is_sent(
    fake_exchange: FakeExchange, tls_material: TLSMaterial
) -> None:
    pinned = send(fake_exchange, ca_file=None, pin_sha256=tls_material.pin_sha256)
    assert pinned.ok, transcript_text(pinned)
    assert pinned.tls is not None
    assert pinned.tls.verified_by == "pinned SHA-256"
    fake_exchange.reset()
    wrong = send(fake_exchange, ca_file=None, pin_sha256="ab" * 32)
    assert judged(wrong) == (Phase.TLS, Kind.CONFIGURATION, Cause.CERTIFICATE_PIN_MISMATCH)
    assert fake_exchange.requests == []


def _exchangelib_state() -> tuple[object, ...]:
    from exchangelib.autodiscover import autodiscover_cache  # type: ignore[import-untyped, unused-ignore]
    from exchangelib.protocol import BaseProtocol, CachingProtocol, Protocol  # type: ignore[import-untyped, unused-ignore]

    return (
        BaseProtocol.HTTP_ADAPTER_CLS,
        Protocol.HTTP_ADAPTER_CLS,
        BaseProtocol.TIMEOUT,
        dict(CachingProtocol._protocol_cache),
        len(autodiscover_cache._protocols),
    )


def test_each_send_keeps_its_own_trust_and_changes_nothing_global(
    fake_exchange: FakeExchange, tls_material: TLSMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trusting send, then one with another CA file in the same process: the second is
    refused (the first's trust did not stay behind), a third trusts again (no cached failure),
    and exchangelib's class attributes and caches and the loggers' levels are as before."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_material.untrusted_ca_file))
    import exchangelib  # type: ignore[import-untyped, unused-ignore]  # noqa: F401 - loaded first

    names = ("exchangelib", "spnego", "requests_ntlm", "urllib3", "requests")
    levels = {n: logging.getLogger(n).level for n in names}
    before = _exchangelib_state()
    first = send(fake_exchange)
    second = send(fake_exchange, ca_file=str(tls_material.untrusted_ca_file))
    third = send(fake_exchange)
    assert first.ok, transcript_text(first)
    assert judged(second) == (Phase.TLS, Kind.CONFIGURATION, Cause.CERTIFICATE_UNTRUSTED)
    assert third.ok, transcript_text(third)
    assert _exchangelib_state() == before
    assert {n: logging.getLogger(n).level for n in names} == levels
    # and exchangelib's own Account in the same process still sees the default adapter
    from exchangelib.protocol import BaseProtocol  # type: ignore[import-untyped, unused-ignore]

    assert BaseProtocol.HTTP_ADAPTER_CLS.__module__ == "requests.adapters"


# --------------------------------------------------------------------------- Autodiscover


def test_autodiscover_json_v2_by_server_url(fake_exchange: FakeExchange) -> None:
    result = send(fake_exchange, ews_url=None, autodiscover_url=fake_exchange.base_url)
    assert result.ok, transcript_text(result)
    gets = [r for r in fake_exchange.requests if r.method == "GET"]
    assert gets
    assert gets[0].path.startswith("/autodiscover/autodiscover.json/v1.0/")
    assert f"Autodiscover found the EWS URL {fake_exchange.ews_url}" in transcript_text(result)


def test_autodiscover_pox_with_ntlm(fake_exchange: FakeExchange) -> None:
    result = send(fake_exchange, ews_url=None, autodiscover_url=fake_exchange.autodiscover_xml_url)
    assert result.ok, transcript_text(result)
    pox = [r for r in fake_exchange.requests if r.path == "/autodiscover/autodiscover.xml"]
    assert {r.auth_scheme for r in pox} >= {"NTLM"}
    assert "<POX Autodiscover answer: EwsUrl" in transcript_text(result)


def test_autodiscover_http_redirect_step(fake_exchange: FakeExchange) -> None:
    """Microsoft's redirect step: an anonymous GET over http whose 302 names the POX URL over
    https, where the sign-in happens; nothing but that GET goes over http."""
    result = send(
        fake_exchange, ews_url=None, autodiscover_url=fake_exchange.autodiscover_redirect_url
    )
    assert result.ok, transcript_text(result)
    plain = [r for r in fake_exchange.requests if r.method == "GET"]
    assert [(r.auth_scheme, r.status) for r in plain] == [(None, 302)]
    text = transcript_text(result)
    assert f"GET {fake_exchange.autodiscover_redirect_url}" in text
    assert f"redirected to {fake_exchange.autodiscover_xml_url}" in text


def test_the_retired_endpoint_offers_no_ntlm(fake_exchange: FakeExchange) -> None:
    """Exchange Online challenges with Bearer and Basic: NTLM is refused before any EWS
    answer, auth auto takes Basic and meets the retirement."""
    ntlm = send(fake_exchange, ews_url=fake_exchange.ews_url_retired)
    assert judged(ntlm) == (Phase.AUTH, Kind.CONFIGURATION, Cause.MECHANISM_NOT_OFFERED)
    auto = send(fake_exchange, ews_url=fake_exchange.ews_url_retired, auth=AuthType.AUTO)
    assert judged(auto) == (Phase.REQUEST, Kind.PERMANENT, Cause.EWS_UNAVAILABLE)
    assert auto.diagnosis is not None
    assert "Exchange Online" in auto.diagnosis.title


class _RedirectForever(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        host = self.headers.get("Host", "")
        self.send_header("Location", f"https://{host}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_autodiscover_redirect_loop_ends(tls_material: TLSMaterial) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RedirectForever)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_material.server.cert_file, tls_material.server.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/autodiscover/autodiscover.json"
        result = EwsSender.send(
            EwsPlan(
                from_address=USER,
                username=USER,
                autodiscover_url=url,
                ca_file=str(tls_material.ca_file),
            ),
            to=[TO],
            password=Secret("x-password"),
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.AUTODISCOVER_FAILED
    assert "too many redirects" in result.diagnosis.explanation


def test_autodiscover_follows_a_redirect_address(fake_exchange: FakeExchange) -> None:
    result = send(
        fake_exchange,
        ews_url=None,
        autodiscover_url=fake_exchange.autodiscover_xml_url,
        from_address="ad-redirect@example.com",
    )
    assert result.ok, transcript_text(result)
    assert "redirects to the address demo-redirected@example.com" in transcript_text(result)


@pytest.mark.parametrize(
    ("address", "url", "phase", "cause", "said"),
    [
        ("ad-404", "base", Phase.REQUEST, Cause.AUTODISCOVER_FAILED, "HTTP 404"),
        ("ad-malformed", "base", Phase.REQUEST, Cause.AUTODISCOVER_FAILED, "not Autodiscover XML"),
        ("ad-no-ews", "base", Phase.REQUEST, Cause.AUTODISCOVER_FAILED, "without an EWS URL"),
        ("ad-401", "xml", Phase.AUTH, Cause.BAD_CREDENTIALS, "Autodiscover"),
    ],
)
def test_autodiscover_failing_at_each_step(
    fake_exchange: FakeExchange, address: str, url: str, phase: Phase, cause: Cause, said: str
) -> None:
    where = fake_exchange.base_url if url == "base" else fake_exchange.autodiscover_xml_url
    result = send(
        fake_exchange, ews_url=None, autodiscover_url=where, from_address=f"{address}@example.com"
    )
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (phase, cause)
    assert said in result.diagnosis.to_text()
    assert not [r for r in fake_exchange.requests if r.operation == "CreateItem"]


def test_autodiscover_order_is_microsofts() -> None:
    steps = autodiscover_steps("ann@contoso.example")
    assert [(s.kind, s.url) for s in steps] == [
        ("pox", "https://contoso.example/autodiscover/autodiscover.xml"),
        ("pox", "https://autodiscover.contoso.example/autodiscover/autodiscover.xml"),
        (
            "json",
            "https://autodiscover.contoso.example/autodiscover/autodiscover.json/v1.0/"
            "ann@contoso.example?Protocol=EWS",
        ),
        ("redirect", "http://autodiscover.contoso.example/autodiscover/autodiscover.xml"),
    ]
    assert [s.kind for s in autodiscover_steps("a@b.example", "https://h/x/autodiscover.xml")] == [
        "pox"
    ]
    assert [s.kind for s in autodiscover_steps("a@b.example", "https://h:8443")] == ["json", "pox"]


ZONE = """
$TTL 60
@ IN SOA ns1.corp.test. hostmaster.corp.test. 1 3600 600 86400 60
@ IN NS ns1.corp.test.
ns1 IN A 127.0.0.1
_autodiscover._tcp IN SRV 0 0 {port} localhost.
"""


@pytest.fixture
def corp_exchange(tmp_path: Path) -> Iterator[FakeExchange]:
    """A fake Exchange for the domain corp.test (a name no real DNS answers)."""
    with FakeExchange.with_demo_ca(tmp_path, domain="corp.test") as fake:
        yield fake


def test_autodiscover_walks_the_domains_steps_down_to_the_srv_record(
    corp_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No URL is configured: the domain's hosts do not resolve, and the SRV record (through
    mailkit's DNS client, pointed at a local server as --dns-server would) names a server
    outside the domain. mailkit does not sign in there unasked (Microsoft has clients ask the
    user first); the diagnosis names the server and how to trust it."""
    with DnsServer({"corp.test.": ZONE.format(port=corp_exchange.port)}) as dns_server:
        monkeypatch.setenv("MAILKIT_DNS_SERVER", dns_server.address)
        refused = send(
            corp_exchange,
            ews_url=None,
            autodiscover=True,
            from_address="ews@corp.test",
            username="ews@corp.test",
        )
    text = transcript_text(refused)
    for step in (
        "POST https://corp.test/autodiscover/autodiscover.xml",
        "POST https://autodiscover.corp.test/autodiscover/autodiscover.xml",
        "GET https://autodiscover.corp.test/autodiscover/autodiscover.json/v1.0/",
        "GET http://autodiscover.corp.test/autodiscover/autodiscover.xml",
    ):
        assert step in text
    srv_url = f"https://localhost:{corp_exchange.port}/autodiscover/autodiscover.xml"
    assert "DNS SRV → localhost: not asked: localhost is outside corp.test" in text
    assert f"when it is the Autodiscover URL ({srv_url})" in text
    assert corp_exchange.requests == []  # no credentials went to the SRV record's server
    assert refused.diagnosis is not None
    assert refused.diagnosis.cause is Cause.AUTODISCOVER_FAILED
    assert "DNS SRV → localhost: not asked, outside corp.test" in refused.diagnosis.explanation
    assert "ews_autodiscover_url to that URL" in refused.diagnosis.fix[0]
    # Trusting that server as the Autodiscover URL, the same lookup signs in there.
    trusted = send(
        corp_exchange,
        ews_url=None,
        autodiscover=True,
        autodiscover_url=srv_url,
        from_address="ews@corp.test",
        username="ews@corp.test",
    )
    assert trusted.ok, transcript_text(trusted)


def test_autodiscover_with_no_srv_record_names_every_step(
    corp_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = ZONE.split("_autodiscover")[0]
    with DnsServer({"corp.test.": zone}) as dns_server:
        monkeypatch.setenv("MAILKIT_DNS_SERVER", dns_server.address)
        result = send(corp_exchange, ews_url=None, autodiscover=True, from_address="ews@corp.test")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.AUTODISCOVER_FAILED
    explanation = result.diagnosis.explanation
    assert "POX at corp.test: dns" in explanation
    assert "HTTP redirect at autodiscover.corp.test: dns" in explanation
    assert "DNS SRV _autodiscover._tcp.corp.test" in transcript_text(result)


# --------------------------------------------------------------------------- send_test


def test_send_test_routes_exchange_ews_and_reads_the_stored_password(
    fake_exchange: FakeExchange, tmp_path: Path
) -> None:
    org = OrgSettings(
        mode="exchange_ews",
        ews_url=fake_exchange.ews_url,
        auth="ntlm",
        username=USER,
        from_address=USER,
        ca_file=str(fake_exchange.ca_file),
    )
    secrets = MemorySecretStore()
    secrets.set_password(
        secret_key("default", "org"), fake_exchange.password, fake_exchange.password
    )
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_test(org, to=[TO], secrets=secrets, store=store)
        assert result.ok, transcript_text(result)
        history = store.history_frame(None)
        assert list(history["mode"]) == ["exchange_ews"]
        assert list(history["ok"]) == [True]


def test_a_user_on_another_server_sends_to_its_ews(fake_exchange: FakeExchange) -> None:
    """A user whose override names their own server gets EWS at that server's standard path
    (the audit's ews-exchange-online reads the user's server the same way)."""
    org = OrgSettings(
        mode="exchange_ews",
        ews_url=fake_exchange.ews_url,
        auth="login",
        username=USER,
        from_address=USER,
        ca_file=str(fake_exchange.ca_file),
    )
    user = UserSettings(user_code="ann", override_enabled=True, host="mail2.corp.test")
    eff = effective(org, user)
    assert eff.ews_url == "https://mail2.corp.test/EWS/Exchange.asmx"
    assert eff.provenance["ews_url"] is Provenance.USER
    assert effective(org).provenance["ews_url"] is Provenance.ORG
    assert effective(OrgSettings()).provenance["ews_url"] is Provenance.DEFAULT
    off = effective(org, user.model_copy(update={"override_enabled": False}))
    assert (off.ews_url, off.provenance["ews_url"]) == (fake_exchange.ews_url, Provenance.ORG)
    result = send_test(org, user, to=[TO], password=Secret(fake_exchange.password))
    assert judged(result) == (Phase.CONNECT, Kind.CONFIGURATION, Cause.DNS_FAILURE)
    assert result.context.host == "mail2.corp.test"
    assert fake_exchange.requests == []
    assert send_test(org, None, to=[TO], password=Secret(fake_exchange.password)).ok


# --------------------------------------------------------------------------- the canary

CANARY_PASSWORD = "Cänary-EWS-pa55-7f3e"


def secret_forms(user: str, password: str) -> dict[str, str]:
    """Every form the password could leak in (NTLM's own hashes never reach Python text)."""
    raw = password.encode()
    return {
        "plain": password,
        "base64 user:password": base64.b64encode(f"{user}:{password}".encode()).decode(),
        "base64 password": base64.b64encode(raw).decode().rstrip("="),
        "utf-16le": password.encode("utf-16-le").decode("latin-1"),
        "utf-16le base64": base64.b64encode(password.encode("utf-16-le")).decode().rstrip("="),
        "hex": raw.hex(),
        "NTLM message": "TlRMTVNT",  # base64 of "NTLMSSP\0": any NTLM blob
    }


def leaks(text: str, forms: dict[str, str]) -> list[str]:
    return [name for name, form in forms.items() if form and form in text]


def test_the_leak_search_can_fail() -> None:
    forms = secret_forms(USER, CANARY_PASSWORD)
    planted = (
        f"Authorization: Basic {forms['base64 user:password']} and "
        f"{CANARY_PASSWORD.encode('utf-16-le').decode('latin-1')} NTLM TlRMTVNTUAABAAAA"
    )
    assert set(leaks(planted, forms)) >= {"base64 user:password", "utf-16le", "NTLM message"}


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(f"{record.name}: {text}")


@pytest.fixture
def canary_exchange(tmp_path: Path) -> Iterator[FakeExchange]:
    with FakeExchange.with_demo_ca(tmp_path, password=CANARY_PASSWORD) as fake:
        yield fake


@pytest.mark.parametrize(
    ("auth", "password", "to"),
    [
        (AuthType.NTLM, CANARY_PASSWORD, TO),
        (AuthType.LOGIN, CANARY_PASSWORD, TO),
        (AuthType.AUTO, CANARY_PASSWORD, "invalid@example.com"),
        (AuthType.NTLM, CANARY_PASSWORD + "-wrong", TO),
        (AuthType.LOGIN, CANARY_PASSWORD + "-wrong", TO),
    ],
    ids=["ntlm", "basic", "auto refused recipient", "ntlm refused", "basic refused"],
)
def test_no_form_of_the_password_in_any_output(
    canary_exchange: FakeExchange, auth: AuthType, password: str, to: str
) -> None:
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        result = EwsSender.send(
            dataclasses.replace(
                plan_for(canary_exchange),
                auth=auth,
                autodiscover_url=canary_exchange.autodiscover_xml_url,
                autodiscover=True,
            ),
            to=[to],
            password=Secret(password),
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert result.ok == (password == CANARY_PASSWORD and to == TO)
    outputs = {
        "transcript": transcript_text(result),
        "records": json.dumps(result.transcript.to_records(), default=str, ensure_ascii=False),
        "result": json.dumps(result.as_dict(), default=str, ensure_ascii=False),
        "repr": repr(result),
        "diagnosis": result.diagnosis.to_text() if result.diagnosis else "",
        "cli diagnosis": result.diagnosis.for_face("cli").to_text() if result.diagnosis else "",
        "logs": "\n".join(handler.texts),
    }
    for secret in {password, CANARY_PASSWORD}:
        forms = secret_forms(USER, secret)
        for where, text in outputs.items():
            assert not leaks(text, forms), (where, leaks(text, forms))
    # the control: the handler saw the process's DEBUG records (asyncio's, at least)
    assert handler.texts


# --------------------------------------------------------------------------- kinds


def test_an_exchange_older_than_2013_is_named() -> None:
    context = EwsSender(EwsPlan(from_address=USER, username=USER, ews_url="https://x/")).context()
    failure = Failure(
        Phase.REQUEST, Signal.HTTP, code=500, enhanced="ErrorInvalidServerVersion", text="old"
    )
    d = diagnose(failure, context)
    assert d.cause is Cause.SERVER_ERROR
    assert "older than 2013" in d.title


def test_a_send_is_one_create_item_after_the_sign_in(fake_exchange: FakeExchange) -> None:
    """No version guess and no folder look-up: Basic is one request, NTLM its handshake and
    the CreateItem on the same connection."""
    assert send(fake_exchange, auth=AuthType.LOGIN).ok
    assert [r.operation for r in fake_exchange.requests] == ["CreateItem"]
    fake_exchange.reset()
    assert send(fake_exchange, auth=AuthType.NTLM).ok
    requests = fake_exchange.requests
    assert [(r.operation, r.status) for r in requests] == [
        (None, 401),
        (None, 401),
        ("CreateItem", 200),
    ]
    assert len({r.connection for r in requests[1:]}) == 1  # NTLM is bound to its connection


def test_ews_kinds_follow_the_response_code_not_the_http_status() -> None:
    """Exchange sends SOAP faults with HTTP 500: a refused impersonation is permanent, a busy
    server transient, whatever the status."""
    context = EwsSender(EwsPlan(from_address=USER, username=USER, ews_url="https://x/")).context()
    for code, kind in (
        ("ErrorImpersonateUserDenied", Kind.PERMANENT),
        ("ErrorServerBusy", Kind.TRANSIENT),
        ("ErrorQuotaExceeded", Kind.PERMANENT),
    ):
        d = diagnose(Failure(Phase.REQUEST, Signal.HTTP, code=500, enhanced=code), context)
        assert d.kind is kind, code
