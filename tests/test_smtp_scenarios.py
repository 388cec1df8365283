"""Every misbehaving-server scenario through the real sender: the diagnosis it must reach.

Each case asserts the phase, kind and cause; that the send ended within its timeout budget;
and that the canary password (or token) appears in no transcript, diagnosis or JSON output.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from smtpd_servers import SCENARIOS, Credentials, ScenarioServer

from mailkit.outcome import Cause, Kind, Phase
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security

pytestmark = pytest.mark.timeout(60)

CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 3.0
#: The longest a send may take: connect, a few replies, and the TLS probe after a silent greeting.
BUDGET = CONNECT_TIMEOUT + 2 * COMMAND_TIMEOUT + 5.0 + 2.0

#: What retrying would do, per scenario — the part of the diagnosis the servers do not name.
KINDS: dict[str, Kind] = {
    "refused_port": Kind.CONFIGURATION,
    "dns_failure": Kind.CONFIGURATION,
    "silent_server": Kind.TRANSIENT,
    "greeting_421": Kind.TRANSIENT,
    "greeting_554": Kind.PERMANENT,
    "ehlo_rejected": Kind.PERMANENT,
    "starttls_not_offered": Kind.CONFIGURATION,
    "starttls_454": Kind.TRANSIENT,
    "implicit_tls_on_plain_port": Kind.CONFIGURATION,
    "plain_on_tls_port": Kind.CONFIGURATION,
    "untrusted_ca": Kind.CONFIGURATION,
    "wrong_host_cert": Kind.CONFIGURATION,
    "expired_cert": Kind.CONFIGURATION,
    "tls_version_too_old": Kind.CONFIGURATION,
    "auth_not_offered": Kind.CONFIGURATION,
    "mechanism_not_offered": Kind.CONFIGURATION,
    "encryption_required_538": Kind.CONFIGURATION,
    "auth_535": Kind.PERMANENT,
    "gmail_534_app_password": Kind.CONFIGURATION,
    "microsoft_535_basic_auth_disabled": Kind.CONFIGURATION,
    "auth_454_temporary": Kind.TRANSIENT,
    "oauth_token_rejected": Kind.PERMANENT,
    "sender_rejected_550": Kind.PERMANENT,
    "microsoft_550_5_7_60": Kind.PERMANENT,
    "microsoft_530_5_7_57": Kind.CONFIGURATION,
    "rate_limited_450": Kind.TRANSIENT,
    "relay_denied_550": Kind.PERMANENT,
    "recipient_rejected_550": Kind.PERMANENT,
    "greylisted_451": Kind.TRANSIENT,
    "mailbox_full_452": Kind.TRANSIENT,
    "too_large_552": Kind.PERMANENT,
    "message_rejected_554": Kind.PERMANENT,
    "disconnect_mid_data": Kind.OUTCOME_UNKNOWN,
    "timeout_after_data": Kind.OUTCOME_UNKNOWN,
    "malformed_reply": Kind.PERMANENT,
    "overlong_reply": Kind.PERMANENT,
    "hostile_reply": Kind.PERMANENT,
    "closing_421": Kind.TRANSIENT,
    "duplicate_rcpt_reply": Kind.PERMANENT,
    "garbage_after_dot": Kind.OUTCOME_UNKNOWN,
    "silent_at": Kind.TRANSIENT,
}

#: Scenarios a correct client gets through (their misbehaviour must not become a failure).
SUCCEEDING = frozenset({"starttls_injection", "silent_quit"})

#: Settings some scenarios need to meet their misbehaviour.
PLAN_CHANGES: dict[str, dict[str, Any]] = {
    "encryption_required_538": {"allow_plaintext_auth": True},
    "oauth_token_rejected": {"auth": AuthType.XOAUTH2},
    # With auth auto and no token, a server offering only XOAUTH2 means "no token stored";
    # a mechanism asked for by name that the server lacks is this scenario's point.
    "mechanism_not_offered": {"auth": AuthType.PLAIN},
}

FAILING = sorted(name for name in SCENARIOS if name not in SUCCEEDING)


def test_the_library_has_at_least_25_scenarios_and_a_kind_for_each() -> None:
    assert len(SCENARIOS) >= 25
    assert set(KINDS) | SUCCEEDING == set(SCENARIOS)


def send_to(
    server: ScenarioServer, credentials: Credentials, **changes: Any
) -> tuple[TestResult, float]:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": Security(server.security),
        "auth": AuthType.AUTO,
        "username": credentials.user,
        "from_address": "alice@example.com",
        "ca_file": str(server.ca_file),
        "connect_timeout": CONNECT_TIMEOUT,
        "command_timeout": COMMAND_TIMEOUT,
    }
    plan = SmtpPlan(**{**values, **changes})
    started = time.monotonic()
    result = run_sync(
        send_plan_async(
            plan,
            to=["bob@example.org"],
            password=Secret(credentials.password),
            token=(lambda: Secret(credentials.token)) if plan.auth is AuthType.XOAUTH2 else None,
        )
    )
    return result, time.monotonic() - started


def assert_nothing_leaked(result: TestResult, credentials: Credentials) -> None:
    shown = result.transcript.to_text() + repr(result.as_dict())
    if result.diagnosis is not None:
        shown += result.diagnosis.to_text()
    assert credentials.leaks_in(shown) == []


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.smtp_scenario(n)) for n in FAILING]
)
def test_scenario_is_diagnosed(
    name: str, scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, elapsed = send_to(scenario_server, smtp_credentials, **PLAN_CHANGES.get(name, {}))
    expect = scenario_server.expect
    assert expect is not None
    assert not result.ok
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.kind, diagnosis.cause) == (
        expect.phase,
        KINDS[name],
        expect.cause,
    ), diagnosis.to_text()
    assert diagnosis.fix, "every diagnosis comes with numbered steps"
    assert elapsed < BUDGET
    assert_nothing_leaked(result, smtp_credentials)


@pytest.mark.smtp_scenario("starttls_not_offered")
def test_stripped_starttls_gets_no_auth_and_no_mail(
    scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, _ = send_to(scenario_server, smtp_credentials)
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.STARTTLS_MISSING
    scenario_server.wait_idle()
    assert "AUTH" not in scenario_server.commands
    assert "MAIL" not in scenario_server.commands
    assert smtp_credentials.leaks_in(bytes(scenario_server.received_bytes)) == []


@pytest.mark.smtp_scenario("starttls_injection")
def test_data_injected_after_starttls_is_discarded(
    scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, _ = send_to(scenario_server, smtp_credentials)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert scenario_server.injected_processed is False
    text = result.transcript.to_text()
    assert "250 injected" in text
    assert "discarded" in text
    assert_nothing_leaked(result, smtp_credentials)


@pytest.mark.smtp_scenario("plain_on_tls_port")
def test_the_tls_probe_names_the_real_problem(
    scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, _ = send_to(scenario_server, smtp_credentials)
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.PLAIN_ON_TLS_PORT
    assert "answers a TLS handshake" in result.transcript.to_text()
    assert any("implicit_tls" in step or "465" in step for step in result.diagnosis.fix)


@pytest.mark.smtp_scenario("timeout_after_data")
def test_timeout_after_the_final_dot_may_have_been_delivered(
    scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, _ = send_to(scenario_server, smtp_credentials)
    assert result.diagnosis is not None
    assert result.diagnosis.phase is Phase.END_OF_DATA
    assert "may have been delivered" in result.diagnosis.explanation
    assert result.message_id is None


@pytest.mark.smtp_scenario("microsoft_535_basic_auth_disabled")
def test_microsoft_basic_auth_advice_is_oauth(
    scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, _ = send_to(scenario_server, smtp_credentials, host="localhost")
    assert result.diagnosis is not None
    assert result.diagnosis.enhanced == "5.7.139"
    assert any("OAuth" in step or "xoauth2" in step for step in result.diagnosis.fix)


@pytest.mark.smtp_scenario("expired_cert")
def test_the_transcript_says_why_a_certificate_failed(
    scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    result, _ = send_to(scenario_server, smtp_credentials)
    text = result.transcript.to_text()
    assert "tls_verify: certificate has expired (OpenSSL 10)" in text
    assert scenario_server.auth_mechanisms == []
