"""The SMTP probe against real servers on loopback: the demo server's two ports, misbehaving
ports (silent, blackholed, resetting, stalling in TLS) and the scenario servers' bad
certificates; and its verdict, which is pure, on hand-made reports.

No assertion here is about time (speed is measured in ``benchmarks/bench_probe.py``): that a
silent port does not hold the verdict is shown by how it is reported ("stopped waiting ...
once the other ports had answered") under a time limit far longer than the test takes.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from smtpd_servers import ScenarioServer

from mailkit.demo import DemoServer, DemoSettings
from mailkit.demo.misbehaving import MisbehavingPorts
from mailkit.errors import SettingsError
from mailkit.faces import Face
from mailkit.probereport import (
    DEFAULT_PORTS,
    Outcome,
    PortReport,
    ProbeReport,
    auth_mechanisms,
    check_arguments,
    decide,
    parse_extensions,
    parse_ports,
)
from mailkit.result import TlsInfo
from mailkit.settings import Security
from mailkit.smtpprobe import probe, probe_async

HOST = "127.0.0.1"
#: Far longer than any probe here takes: a port reported as cut was not waited out.
LONG = 60.0
#: Only what a probe may ever send.
PROBE_VERBS = {"EHLO", "HELO", "STARTTLS", "QUIT"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path_factory.mktemp("probe-demo") / "demo", oauth=False) as server:
        yield server.settings


@pytest.fixture
def bad_ports() -> Iterator[MisbehavingPorts]:
    with MisbehavingPorts() as ports:
        yield ports


def demo_ports(demo: DemoSettings) -> list[int]:
    return [demo.tls_port, demo.starttls_port]


# --------------------------------------------------------------------------- the demo server


def test_demo_server_ports_are_described_and_implicit_tls_wins(demo: DemoSettings) -> None:
    report = probe(
        HOST, demo_ports(demo), ca_file=str(demo.ca_file), tls_ports=[demo.tls_port], timeout=LONG
    )
    implicit, starttls = report.ports
    assert [p.port for p in report.ports] == demo_ports(demo)
    assert implicit.outcome is Outcome.OK
    assert implicit.security is Security.IMPLICIT_TLS
    assert starttls.outcome is Outcome.OK
    assert starttls.security is Security.STARTTLS
    for port in report.ports:
        assert port.greeting.startswith("220 ")
        assert port.trusted
        assert port.cert_problem is None
        assert port.tls is not None
        assert port.tls.version in ("TLSv1.2", "TLSv1.3")
        assert port.tls.cipher
        assert "127.0.0.1" in port.tls.san
        assert "mailkit demo CA" in port.tls.issuer
        assert port.tls.verified_by == f"CA file {demo.ca_file}"
        assert {"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"} <= set(port.auth_after)
        assert {"SIZE", "PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING"} <= set(port.extensions)
        assert port.step_ms("connect") is not None
        assert port.step_ms("tls") is not None
    # Before TLS the STARTTLS port offers STARTTLS and no AUTH; implicit TLS has no "before".
    assert starttls.starttls_offered
    assert starttls.auth_before == ()
    assert "CHUNKING" not in parse_extensions(starttls.ehlo_before)  # only after TLS
    assert implicit.ehlo_before == ()
    assert [name for name, _ in starttls.steps] == [
        "dns",
        "connect",
        "greeting",
        "ehlo",
        "starttls",
        "tls",
        "ehlo_tls",
    ]
    assert [name for name, _ in implicit.steps] == ["dns", "connect", "tls", "greeting", "ehlo"]
    verdict = report.verdict
    assert (verdict.port, verdict.security) == (demo.tls_port, Security.IMPLICIT_TLS)
    assert verdict.trusted
    assert verdict.warnings == ()
    assert any("RFC 8314" in r for r in verdict.reasons)
    assert any("only after TLS" in r for r in verdict.reasons)


def test_an_implicit_tls_port_not_named_is_found_by_a_tls_hello(demo: DemoSettings) -> None:
    """Without ``tls_ports`` the demo's implicit-TLS port starts as plaintext, stays silent,
    and answers the TLS hello tried beside it."""
    report = probe(HOST, demo_ports(demo), ca_file=str(demo.ca_file), tls_ports=(), timeout=LONG)
    implicit = report.port(demo.tls_port)
    assert implicit is not None
    assert implicit.outcome is Outcome.OK
    assert implicit.security is Security.IMPLICIT_TLS
    assert any("expects TLS from the first byte" in note for note in implicit.notes)
    assert report.verdict.port == demo.tls_port


def test_without_its_ca_the_certificate_is_described_and_not_trusted(demo: DemoSettings) -> None:
    report = probe(HOST, demo_ports(demo), tls_ports=[demo.tls_port], timeout=LONG)
    for port in report.ports:
        assert port.cert_problem is not None
        assert "issuer" in port.cert_problem
        assert port.tls is not None
        assert "127.0.0.1" in port.tls.san
        assert port.tls.verified_by == "system CA store"
        assert port.auth_after  # the EHLO after TLS is read over the describing connection
        assert not port.trusted
    verdict = report.verdict
    assert verdict.port == demo.tls_port
    assert not verdict.trusted
    _, warnings = verdict.render(Face.CLI)
    assert any("--ca-file" in w for w in warnings)
    _, widget_warnings = verdict.render(Face.WIDGET)
    assert any("“CA file”" in w for w in widget_warnings)


def test_a_host_name_is_resolved_once_and_verified_by_name(demo: DemoSettings) -> None:
    report = probe("localhost", [demo.starttls_port], ca_file=str(demo.ca_file))
    (port,) = report.ports
    assert port.trusted
    assert port.address == "127.0.0.1"
    assert report.server_name == "localhost"
    assert port.step_ms("dns") is not None


def test_a_certificate_is_checked_against_the_server_name_given(demo: DemoSettings) -> None:
    """An address, verified as another name: the certificate carries no such name."""
    report = probe(
        HOST, [demo.starttls_port], ca_file=str(demo.ca_file), server_name="mail.example.com"
    )
    (port,) = report.ports
    assert port.cert_problem is not None
    assert "mail.example.com" in port.cert_problem


def test_the_report_is_json_a_frame_and_text(demo: DemoSettings) -> None:
    report = probe(
        HOST, demo_ports(demo), ca_file=str(demo.ca_file), tls_ports=[demo.tls_port], timeout=LONG
    )
    data = json.loads(json.dumps(report.as_dict(Face.CLI)))
    assert data["verdict"]["port"] == demo.tls_port
    assert data["verdict"]["security"] == "implicit_tls"
    assert [p["port"] for p in data["ports"]] == demo_ports(demo)
    assert data["ports"][1]["steps_ms"]["starttls"] >= 0
    frame = report.frame()
    assert list(frame["port"]) == demo_ports(demo)
    assert list(frame["recommended"]) == [True, False]
    assert set(frame["tls_version"]) <= {"TLSv1.2", "TLSv1.3"}
    assert frame.loc[1, "auth_before_tls"] == ""
    text = report.text()
    assert f"port {demo.tls_port}: ok, implicit_tls" in text
    assert "Verdict: port" in text


def test_the_async_probe_gives_the_same_verdict(demo: DemoSettings) -> None:
    report = asyncio.run(
        probe_async(HOST, demo_ports(demo), ca_file=str(demo.ca_file), tls_ports=[demo.tls_port])
    )
    assert report.verdict.port == demo.tls_port


# --------------------------------------------------------------------------- ports that misbehave


def test_the_misbehaving_ports_misbehave(bad_ports: MisbehavingPorts) -> None:
    """Controls: each stand-in really does what the probe tests rely on."""
    with socket.create_connection((HOST, bad_ports.silent()), timeout=2) as silent:
        silent.settimeout(0.2)
        with pytest.raises(TimeoutError):
            silent.recv(1)
    blackholed = bad_ports.blackholed()
    with pytest.raises(TimeoutError), socket.create_connection((HOST, blackholed), timeout=0.3):
        pass
    # The reset reaches the client while its connect completes, or at its first read.
    with (
        pytest.raises(ConnectionResetError),
        socket.create_connection((HOST, bad_ports.resetting()), timeout=2) as reset,
    ):
        reset.recv(1)


def test_a_silent_port_is_cut_once_the_others_answered(
    demo: DemoSettings, bad_ports: MisbehavingPorts
) -> None:
    silent = bad_ports.silent()
    report = probe(
        HOST,
        [*demo_ports(demo), silent],
        ca_file=str(demo.ca_file),
        tls_ports=[demo.tls_port],
        timeout=LONG,
        silent_after=0.5,
    )
    cut = report.port(silent)
    assert cut is not None
    assert cut.outcome is Outcome.SILENT
    assert "no greeting came, and no answer to a TLS hello either" in cut.detail
    assert "stopped waiting after 0.5 s, once the other ports had answered" in cut.detail
    assert bad_ports.accepted[silent] == 2  # plaintext, then a TLS hello beside it
    assert report.verdict.port == demo.tls_port
    assert any(f"port {silent}: no greeting" in r for r in report.verdict.reasons)


def test_a_blackholed_port_is_cut_as_unreachable(
    demo: DemoSettings, bad_ports: MisbehavingPorts
) -> None:
    hole = bad_ports.blackholed()
    report = probe(
        HOST, [demo.starttls_port, hole], ca_file=str(demo.ca_file), timeout=LONG, silent_after=0.5
    )
    cut = report.port(hole)
    assert cut is not None
    assert cut.outcome is Outcome.UNREACHABLE
    assert cut.detail.startswith("the TCP connection was not accepted; stopped waiting")
    assert report.verdict.port == demo.starttls_port


def test_a_greeting_held_back_is_cut_with_what_it_said(
    demo: DemoSettings, bad_ports: MisbehavingPorts
) -> None:
    """Postfix's postscreen sends "220-" at once and the last line seconds later."""
    slow = bad_ports.slow_greeting(hold=LONG)
    report = probe(
        HOST, [demo.starttls_port, slow], ca_file=str(demo.ca_file), timeout=LONG, silent_after=0.5
    )
    held = report.port(slow)
    assert held is not None
    assert held.outcome is Outcome.STALLED
    assert held.greeting == "220-slow.example.test ESMTP (mailkit misbehaving port)"
    assert held.detail.startswith("the greeting began but did not finish")
    assert "postscreen" in held.detail
    assert bad_ports.accepted[slow] == 1  # its first line ruled out implicit TLS
    assert report.verdict.port == demo.starttls_port


def test_a_greeting_held_back_within_silent_after_is_waited_for(
    demo: DemoSettings, bad_ports: MisbehavingPorts
) -> None:
    slow = bad_ports.slow_greeting(hold=0.3)
    report = probe(HOST, [demo.starttls_port, slow], ca_file=str(demo.ca_file), timeout=LONG)
    held = report.port(slow)
    assert held is not None
    assert held.outcome is Outcome.OK
    assert held.security is Security.NONE
    assert held.greeting.endswith(" / 220 slow.example.test ESMTP")
    assert held.ehlo_before == ("PIPELINING",)


def test_every_port_silent_waits_for_the_time_limit(bad_ports: MisbehavingPorts) -> None:
    """With no port answering there is nothing to decide from: the time limit ends it."""
    ports = [bad_ports.silent(), bad_ports.blackholed()]
    report = probe(HOST, ports, timeout=0.6, silent_after=0.1)
    assert [p.outcome for p in report.ports] == [Outcome.SILENT, Outcome.UNREACHABLE]
    assert all("gave up after the 0.6 s time limit" in p.detail for p in report.ports)
    assert report.verdict.port is None
    assert report.verdict.summary == "no usable port"


def test_a_resetting_port(bad_ports: MisbehavingPorts) -> None:
    port = bad_ports.resetting()
    report = probe(HOST, [port], timeout=LONG)
    (reset,) = report.ports
    assert reset.outcome is Outcome.RESET
    # The reset may reach the client while its connect completes, or just after.
    assert reset.detail in (
        "the server reset the connection without a greeting",
        "the server reset the connection as soon as it was accepted",
    )
    assert report.verdict.port is None


def test_a_resetting_implicit_tls_port(bad_ports: MisbehavingPorts) -> None:
    port = bad_ports.resetting()
    (reset,) = probe(HOST, [port], tls_ports=[port], timeout=LONG).ports
    assert reset.outcome is Outcome.RESET
    assert reset.detail in (
        "the server reset the connection during the TLS handshake",
        "the server reset the connection as soon as it was accepted",
    )


def test_a_stall_after_starttls_is_reported_as_stalled(
    demo: DemoSettings, bad_ports: MisbehavingPorts
) -> None:
    stall = bad_ports.stalls_after_starttls()
    report = probe(
        HOST, [demo.starttls_port, stall], ca_file=str(demo.ca_file), timeout=LONG, silent_after=0.5
    )
    stalled = report.port(stall)
    assert stalled is not None
    assert stalled.outcome is Outcome.STALLED
    assert stalled.greeting.startswith("220 stall.example.test")
    assert stalled.starttls_offered
    assert stalled.detail.startswith("the TLS handshake did not complete; stopped waiting 0.5 s")
    assert [name for name, _ in stalled.steps][-1] == "starttls"
    assert report.verdict.port == demo.starttls_port


def test_an_implicit_tls_port_that_stalls_in_the_handshake(
    demo: DemoSettings, bad_ports: MisbehavingPorts
) -> None:
    stall = bad_ports.stalls_in_tls()
    report = probe(
        HOST,
        [demo.starttls_port, stall],
        ca_file=str(demo.ca_file),
        tls_ports=[stall],
        timeout=LONG,
        silent_after=0.5,
    )
    stalled = report.port(stall)
    assert stalled is not None
    assert stalled.outcome is Outcome.SILENT
    assert stalled.detail.startswith("the TLS handshake did not complete; stopped waiting")
    assert report.verdict.port == demo.starttls_port


# --------------------------------------------------------------------------- scenario servers


@pytest.mark.parametrize(
    "implicit",
    [
        pytest.param(False, marks=pytest.mark.smtp_scenario("expired_cert"), id="starttls"),
        pytest.param(
            True, marks=pytest.mark.smtp_scenario("expired_cert", implicit=True), id="implicit"
        ),
    ],
)
def test_an_expired_certificate_is_named_and_still_described(
    scenario_server: ScenarioServer, implicit: bool
) -> None:
    number = scenario_server.port
    report = probe(
        HOST,
        [number],
        ca_file=str(scenario_server.ca_file),
        tls_ports=[number] if implicit else (),
        timeout=LONG,
    )
    (port,) = report.ports
    assert port.cert_problem == "certificate has expired"
    assert port.tls is not None
    assert port.tls.not_after is not None
    assert port.tls.not_after < datetime.now(UTC)
    assert "localhost" in port.tls.san
    assert port.outcome is Outcome.OK
    assert not port.trusted
    assert port.security is (Security.IMPLICIT_TLS if implicit else Security.STARTTLS)
    verdict = report.verdict
    assert verdict.port == number
    assert not verdict.trusted
    assert f"the certificate expired on {port.tls.not_after:%Y-%m-%d}" in verdict.warnings[0]
    scenario_server.wait_idle()
    assert set(scenario_server.commands) <= PROBE_VERBS
    assert scenario_server.connections == 2  # the verified try, then the describing one


@pytest.mark.smtp_scenario("wrong_host_cert")
def test_a_certificate_for_another_name(scenario_server: ScenarioServer) -> None:
    report = probe(HOST, [scenario_server.port], ca_file=str(scenario_server.ca_file))
    (port,) = report.ports
    assert port.cert_problem is not None
    assert "mismatch" in port.cert_problem.lower()
    assert port.tls is not None
    assert port.tls.san == ("mail.wrong.example",)
    _, warnings = report.verdict.render(Face.CLI)
    assert "the certificate is for mail.wrong.example" in warnings[0]
    assert "--host" in warnings[0]


@pytest.mark.smtp_scenario("starttls_not_offered")
def test_auth_in_the_clear_without_starttls(scenario_server: ScenarioServer) -> None:
    report = probe(HOST, [scenario_server.port], ca_file=str(scenario_server.ca_file))
    (port,) = report.ports
    assert port.outcome is Outcome.OK
    assert port.security is Security.NONE
    assert port.auth_before == ("PLAIN", "LOGIN")
    assert port.tls is None
    verdict = report.verdict
    assert verdict.security is Security.NONE
    assert "no port offers TLS" in verdict.warnings[0]
    assert any("offers AUTH (PLAIN LOGIN) before TLS" in w for w in verdict.warnings)
    scenario_server.wait_idle()
    assert scenario_server.commands == ["EHLO", "QUIT"]  # no AUTH, no MAIL, ever


@pytest.mark.smtp_scenario("implicit_tls_on_plain_port")
def test_a_plaintext_server_on_an_implicit_tls_port(scenario_server: ScenarioServer) -> None:
    """The TLS hello gets "220 ..." back: the port is tried again in plaintext."""
    port_number = scenario_server.port
    report = probe(
        HOST, [port_number], ca_file=str(scenario_server.ca_file), tls_ports=[port_number]
    )
    (port,) = report.ports
    assert port.outcome is Outcome.OK
    assert port.security is Security.NONE  # this scenario offers no STARTTLS either
    assert any("speaks plaintext SMTP, not TLS from the first byte" in n for n in port.notes)
    assert report.verdict.security is Security.NONE
    assert scenario_server.connections == 2


@pytest.mark.smtp_scenario("greeting_554")
def test_a_refused_session(scenario_server: ScenarioServer) -> None:
    (port,) = probe(HOST, [scenario_server.port]).ports
    assert port.outcome is Outcome.REJECTED
    assert port.greeting.startswith("554")
    assert "refused the session" in port.detail


@pytest.mark.smtp_scenario("overlong_reply", length=20_000)
def test_an_overlong_ehlo_line_is_not_smtp(scenario_server: ScenarioServer) -> None:
    (port,) = probe(HOST, [scenario_server.port]).ports
    assert port.outcome is Outcome.NOT_SMTP
    assert "too long" in port.detail


@pytest.mark.smtp_scenario("malformed_reply")
def test_a_reply_without_a_code_is_not_smtp(scenario_server: ScenarioServer) -> None:
    (port,) = probe(HOST, [scenario_server.port]).ports
    assert port.outcome is Outcome.NOT_SMTP
    assert "garbage without a code" in port.detail


@pytest.mark.smtp_scenario("refused_port")
def test_a_refused_port(scenario_server: ScenarioServer) -> None:
    (port,) = probe(HOST, [scenario_server.port]).ports
    assert port.outcome is Outcome.REFUSED


@pytest.mark.smtp_scenario("dns_failure")
def test_a_name_that_does_not_resolve(scenario_server: ScenarioServer) -> None:
    report = probe(scenario_server.host, [465, 587])
    assert [p.outcome for p in report.ports] == [Outcome.DNS, Outcome.DNS]
    assert "does not resolve" in report.ports[0].detail
    assert report.verdict.port is None


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("ports", "words"),
    [
        ("465,,587", "item 2 is empty"),
        ("465,smtp", "item 2 ('smtp') is not a port number"),
        ("0", "item 1 (0) is out of range"),
        ("465,70000", "item 2 (70000) is out of range"),
        ("", "item 1 is empty"),
    ],
)
def test_bad_ports_name_the_item_and_why(ports: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_ports(ports)


def test_ports_parse_in_order_without_repeats() -> None:
    assert parse_ports(" 587, 465,587 ") == (587, 465)
    assert parse_ports([25, "2525"]) == (25, 2525)
    assert DEFAULT_PORTS == (465, 587, 25, 2525)


def test_bad_arguments_raise_one_error_naming_each() -> None:
    with pytest.raises(SettingsError) as caught:
        check_arguments(" ", "x", 0, float("nan"))
    fields = [p.field for p in caught.value.problems]
    assert fields == ["host", "ports", "timeout", "silent_after"]


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("mail.example.com:587", "has a port in it"),
        ("smtps://mail.example.com", "is not a host name"),
        ("jane@example.com", "an email address goes to discovery"),
        ("mail example.com", "spaces, control characters"),
        ("mail.example.com\x1b[31m", "spaces, control characters"),
    ],
)
def test_a_host_that_is_not_a_host_name_is_refused(host: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        check_arguments(host, DEFAULT_PORTS, 10, 1.5)
    (problem,) = caught.value.problems
    assert problem.field == "host"
    assert words in problem.message


def test_host_and_port_forms_that_are_accepted() -> None:
    assert check_arguments(" [::1] ", 587, 10, 1.5) == ("::1", (587,))
    numbers: list[object] = [465.0, "587"]  # a whole float, as from a spreadsheet
    assert check_arguments("::1", numbers, 10, 1.5) == ("::1", (465, 587))  # type: ignore[arg-type]
    assert check_arguments("mail.example.com", (p for p in [25]), 1, 1) == (
        "mail.example.com",
        (25,),
    )


@pytest.mark.parametrize(
    ("ports", "words"),
    [
        ([465.5], "item 1 (465.5) is not a port number"),
        ([True], "item 1 (True) is not a port number"),
        (range(1, 40), "39 ports is a scan, not a probe; give at most 32"),
    ],
)
def test_odd_port_values_are_refused(ports: object, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_ports(ports)  # type: ignore[arg-type]


def test_tls_ports_from_a_generator_are_all_read(demo: DemoSettings) -> None:
    report = probe(
        HOST,
        demo_ports(demo),
        ca_file=str(demo.ca_file),
        tls_ports=(p for p in [demo.tls_port]),
    )
    implicit = report.port(demo.tls_port)
    assert implicit is not None
    assert implicit.notes == ()  # tried with TLS first: no guess was needed


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SettingsError) as caught:
        probe(HOST, [25], ca_file=str(missing))
    (problem,) = caught.value.problems
    assert problem.field == "ca_file"
    assert "does not exist" in problem.message


def test_bad_tls_ports_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        probe(HOST, [25], tls_ports="465,x")
    assert caught.value.problems[0].field == "tls_ports"


# --------------------------------------------------------------------------- the verdict, pure


def _tls(verified_by: str = "system CA store") -> TlsInfo:
    return TlsInfo(
        version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        subject="CN=mail.example.com",
        issuer="CN=Example CA",
        san=("mail.example.com",),
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
        sha256="ab" * 32,
        verified_by=verified_by,
    )


GOOD_AFTER = ("SIZE 35882577", "AUTH PLAIN LOGIN", "PIPELINING")


def _port(port: int, security: Security, **fields: object) -> PortReport:
    base = PortReport(
        port=port,
        outcome=Outcome.OK,
        security=security,
        greeting="220 mail.example.com ESMTP",
        ehlo_before=("STARTTLS",) if security is Security.STARTTLS else (),
        ehlo_after=GOOD_AFTER if security is not Security.NONE else (),
        tls=_tls() if security is not Security.NONE else None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_implicit_tls_is_preferred_to_starttls() -> None:
    verdict = decide([_port(587, Security.STARTTLS), _port(465, Security.IMPLICIT_TLS)])
    assert (verdict.port, verdict.security) == (465, Security.IMPLICIT_TLS)
    assert verdict.auth == ("PLAIN", "LOGIN")
    assert verdict.trusted


def test_a_trusted_certificate_beats_implicit_tls() -> None:
    ports = [
        _port(465, Security.IMPLICIT_TLS, cert_problem="certificate has expired"),
        _port(587, Security.STARTTLS),
    ]
    verdict = decide(ports)
    assert verdict.port == 587
    assert verdict.trusted
    assert any("certificate fails verification" in r for r in verdict.reasons)
    assert any("port 465: the certificate expired" in w for w in verdict.warnings)


def test_a_submission_port_beats_the_relay_port() -> None:
    verdict = decide([_port(25, Security.STARTTLS), _port(2525, Security.STARTTLS)])
    assert verdict.port == 2525


def test_the_relay_port_alone_is_recommended_with_a_warning() -> None:
    verdict = decide([_port(25, Security.STARTTLS), PortReport(587, Outcome.REFUSED)])
    assert verdict.port == 25
    assert any("port 25 is for relay" in w for w in verdict.warnings)


def test_a_port_with_auth_after_tls_beats_one_without() -> None:
    ports = [
        _port(465, Security.IMPLICIT_TLS, ehlo_after=("SIZE 1000",)),
        _port(587, Security.STARTTLS),
    ]
    verdict = decide(ports)
    assert verdict.port == 587
    assert any("offers no AUTH" in r for r in verdict.reasons)


def test_auth_offered_in_the_clear_is_a_warning() -> None:
    ports = [_port(587, Security.STARTTLS, ehlo_before=("STARTTLS", "AUTH PLAIN LOGIN"))]
    verdict = decide(ports)
    assert verdict.port == 587
    assert "port 587 offers AUTH (PLAIN LOGIN) before TLS" in verdict.warnings[0]


def test_nothing_usable() -> None:
    verdict = decide([PortReport(465, Outcome.REFUSED, detail="connection refused")])
    assert verdict.port is None
    assert verdict.security is None
    assert verdict.reasons == ("port 465: connection refused",)


def test_extensions_parse_both_auth_forms() -> None:
    lines = ("AUTH=LOGIN PLAIN", "AUTH LOGIN CRAM-MD5", "SIZE 10", "8bitmime")
    assert auth_mechanisms(lines) == ("LOGIN", "PLAIN", "CRAM-MD5")
    assert set(parse_extensions(lines)) == {"AUTH", "SIZE", "8BITMIME"}


def test_a_report_without_ports_has_empty_rows() -> None:
    report = ProbeReport("h", (), decide([]))
    assert report.rows() == []
    assert next(iter(report.frame().columns)) == "port"
