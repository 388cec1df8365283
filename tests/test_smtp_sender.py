"""The SMTP test sender against a real aiosmtpd server on loopback: auth types, TLS policy."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest
from smtpd_servers import Credentials, MailServer, starttls_plan

from mailkit.message import TEST_BODY_LINES, TEST_SUBJECT
from mailkit.outcome import Cause, Kind, Phase
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security
from mailkit.transcript import Direction, Row

pytestmark = pytest.mark.timeout(60)

FROM = "alice@example.com"
TO = "bob@example.org"


def send(
    plan: SmtpPlan,
    *,
    password: str | None = None,
    token: str | None = None,
    to: tuple[str, ...] = (TO,),
    **kwargs: Any,
) -> TestResult:
    return run_sync(
        send_plan_async(
            plan,
            to=list(to),
            password=Secret(password) if password is not None else None,
            token=(lambda: Secret(token)) if token is not None else None,
            **kwargs,
        )
    )


def assert_clean(result: TestResult, credentials: Credentials) -> None:
    everything = result.transcript.to_text() + repr(result) + str(result.as_dict())
    if result.diagnosis is not None:
        everything += result.diagnosis.to_text()
    assert credentials.leaks_in(everything) == []


def received_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


@pytest.mark.parametrize(
    ("auth", "mechanism"),
    [
        (AuthType.AUTO, "PLAIN"),
        (AuthType.PLAIN, "PLAIN"),
        (AuthType.LOGIN, "LOGIN"),
        (AuthType.CRAM_MD5, "CRAM-MD5"),
        (AuthType.NTLM, "NTLM"),
        (AuthType.MSN, "NTLM"),
    ],
)
def test_password_mechanisms_over_starttls(
    smtp_server: MailServer, smtp_credentials: Credentials, auth: AuthType, mechanism: str
) -> None:
    result = send(starttls_plan(smtp_server, auth=auth), password=smtp_server.password)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert result.auth_mechanism == mechanism
    assert smtp_server.auth_mechanisms_used == [mechanism]
    [message] = smtp_server.messages
    assert (message.listener, message.tls, message.auth_user) == (
        "starttls",
        True,
        smtp_server.user,
    )
    assert message.mail_from == FROM
    assert message.rcpt_tos == (TO,)
    assert message.message["Message-ID"] == result.message_id
    assert_clean(result, smtp_credentials)


def test_auto_explains_its_choice_and_the_dialog_is_complete(
    smtp_server: MailServer, smtp_credentials: Credentials
) -> None:
    result = send(starttls_plan(smtp_server), password=smtp_server.password)
    assert result.ok
    frame = result.transcript.to_dataframe()
    info = " ".join(frame[frame["dir"] == "I"]["text"])
    assert "AUTH PLAIN chosen (auto)" in info
    assert "TLS established" in info
    first_seen = list(dict.fromkeys(frame["phase"]))
    assert first_seen == [
        "connect", "greeting", "ehlo", "starttls", "tls", "auth", "mail", "rcpt", "data",
        "end_of_data", "quit",
    ]  # fmt: skip
    ehlo = frame[(frame["dir"] == "C") & (frame["phase"] == "ehlo")]
    assert list(ehlo["tls"]) == [False, True]  # EHLO again after STARTTLS (RFC 3207)
    replies = frame[frame["dir"] == "S"]
    assert list(replies["phase"])[-6:] == ["auth", "mail", "rcpt", "data", "end_of_data", "quit"]
    client = frame[frame["dir"] == "C"]
    assert client["tls"].iloc[-1]
    assert not client["tls"].iloc[0]
    assert any(text.startswith("<message:") for text in client["text"])
    assert result.tls is not None
    assert result.tls.version.startswith("TLSv1.")
    assert "127.0.0.1" in result.tls.san
    assert result.tls.sha256 == smtp_server.pin_sha256
    assert set(result.timings) >= {"greeting", "ehlo", "auth", "end_of_data"}
    data = result.as_dict()
    assert set(data) >= {
        "ok", "diagnosis", "transcript", "tls", "auth_mechanism", "message_id", "timings",
    }  # fmt: skip
    assert_clean(result, smtp_credentials)


def test_the_message_arrives_with_its_unicode_intact(smtp_server: MailServer) -> None:
    assert send(starttls_plan(smtp_server), password=smtp_server.password).ok
    [received] = smtp_server.messages
    message = received.message
    assert message["Subject"] == TEST_SUBJECT
    body = received_text(message)
    for language, text in TEST_BODY_LINES:
        assert f"{language} - {text}" in body


def test_xoauth2_with_a_token(smtp_server: MailServer, smtp_credentials: Credentials) -> None:
    result = send(starttls_plan(smtp_server, auth=AuthType.XOAUTH2), token=smtp_server.token)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert result.auth_mechanism == "XOAUTH2"
    assert "AUTH XOAUTH2 <token hidden>" in result.transcript.to_text()
    assert_clean(result, smtp_credentials)


def test_auto_prefers_xoauth2_when_a_token_is_given(smtp_server: MailServer) -> None:
    result = send(
        starttls_plan(smtp_server), token=smtp_server.token, password=smtp_server.password
    )
    assert result.auth_mechanism == "XOAUTH2"


def test_a_rejected_token_is_diagnosed(
    smtp_server: MailServer, smtp_credentials: Credentials
) -> None:
    result = send(starttls_plan(smtp_server, auth=AuthType.XOAUTH2), token="canary-Tok-9zZ-expired")
    assert not result.ok
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (
        Phase.AUTH,
        Cause.OAUTH_TOKEN_INVALID,
    )
    assert "<empty response>" in result.transcript.to_text()
    assert smtp_server.messages == []
    assert_clean(result, smtp_credentials)


@pytest.mark.parametrize("auth", [AuthType.PLAIN, AuthType.LOGIN, AuthType.CRAM_MD5, AuthType.NTLM])
def test_wrong_password_is_bad_credentials(
    smtp_server: MailServer, smtp_credentials: Credentials, auth: AuthType
) -> None:
    result = send(starttls_plan(smtp_server, auth=auth), password=smtp_server.password + "-wrong")
    assert not result.ok
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.kind, result.diagnosis.cause) == (
        Phase.AUTH,
        Kind.PERMANENT,
        Cause.BAD_CREDENTIALS,
    )
    assert smtp_server.messages == []
    assert_clean(result, smtp_credentials)


def test_implicit_tls(smtp_server: MailServer, smtp_credentials: Credentials) -> None:
    plan = starttls_plan(smtp_server, port=smtp_server.tls_port, security=Security.IMPLICIT_TLS)
    result = send(plan, password=smtp_server.password)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert all(row.tls for row in result.transcript.rows if row.dir is not Direction.INFO)
    [message] = smtp_server.messages
    assert message.listener == "tls"
    assert_clean(result, smtp_credentials)


def test_pinned_certificate_is_trusted_without_a_ca(smtp_server: MailServer) -> None:
    plan = starttls_plan(smtp_server, ca_file=None, pin_sha256=smtp_server.pin_sha256)
    result = send(plan, password=smtp_server.password)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert "SHA-256 matches the pin" in result.transcript.to_text()


def test_a_wrong_pin_stops_before_anything_is_sent_over_tls(
    smtp_server: MailServer, smtp_credentials: Credentials
) -> None:
    plan = starttls_plan(smtp_server, ca_file=None, pin_sha256="ab" * 32)
    result = send(plan, password=smtp_server.password)
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (
        Phase.TLS,
        Cause.CERTIFICATE_PIN_MISMATCH,
    )
    [connection] = smtp_server.connections
    assert connection.data(tls=True) == b""  # not even EHLO went over the unverified channel
    assert smtp_server.auth_log == []
    assert_clean(result, smtp_credentials)


def test_without_a_ca_file_the_test_ca_is_not_trusted(smtp_server: MailServer) -> None:
    result = send(starttls_plan(smtp_server, ca_file=None), password=smtp_server.password)
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.CERTIFICATE_UNTRUSTED
    assert smtp_server.auth_log == []


def test_security_none_refuses_credentials_without_the_explicit_flag(
    smtp_server: MailServer, smtp_credentials: Credentials
) -> None:
    smtp_server.plain_auth_allowed = True
    plan = starttls_plan(smtp_server, port=smtp_server.plain_port, security=Security.NONE)
    result = send(plan, password=smtp_server.password)
    assert result.diagnosis is not None
    assert (result.diagnosis.kind, result.diagnosis.cause) == (
        Kind.CONFIGURATION,
        Cause.PLAINTEXT_AUTH_REFUSED,
    )
    assert smtp_server.connections == []  # refused before connecting at all
    allowed = send(replace(plan, allow_plaintext_auth=True), password=smtp_server.password)
    assert allowed.ok, allowed.diagnosis and allowed.diagnosis.to_text()
    assert allowed.auth_mechanism == "CRAM-MD5"  # in clear, keep the password off the wire
    assert_clean(allowed, smtp_credentials)


def test_security_none_without_auth_sends_in_clear_when_chosen(smtp_server: MailServer) -> None:
    plan = starttls_plan(
        smtp_server, port=smtp_server.plain_port, security=Security.NONE, auth=AuthType.NONE
    )
    result = send(plan)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert not any(row.tls for row in result.transcript.rows)
    assert smtp_server.messages[0].listener == "plain"


def test_auto_without_credentials_sends_without_auth(smtp_server: MailServer) -> None:
    result = send(starttls_plan(smtp_server))
    assert result.ok
    assert result.auth_mechanism is None
    assert "no password or token stored" in result.transcript.to_text()


def test_server_requiring_auth_diagnoses_the_missing_login(smtp_server: MailServer) -> None:
    smtp_server.require_auth = True
    result = send(starttls_plan(smtp_server))
    assert result.diagnosis is not None
    # Nothing was stored to sign in with (auth auto), so the refusal means: store a password.
    assert (result.diagnosis.phase, result.diagnosis.cause) == (
        Phase.MAIL,
        Cause.PASSWORD_MISSING,
    )


@pytest.mark.parametrize(
    ("auth", "password", "token", "cause"),
    [
        (AuthType.LOGIN, None, None, Cause.PASSWORD_MISSING),
        (AuthType.XOAUTH2, None, None, Cause.TOKEN_MISSING),
    ],
)
def test_missing_credentials_are_configuration(
    smtp_server: MailServer,
    auth: AuthType,
    password: str | None,
    token: str | None,
    cause: Cause,
) -> None:
    result = send(starttls_plan(smtp_server, auth=auth), password=password, token=token)
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.kind, result.diagnosis.cause) == (
        Phase.SETUP,
        Kind.CONFIGURATION,
        cause,
    )
    assert smtp_server.connections == []


def test_smtputf8_recipient(smtp_server: MailServer) -> None:
    result = send(
        starttls_plan(smtp_server), password=smtp_server.password, to=("用户@example.org",)
    )
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    [message] = smtp_server.messages
    assert message.smtputf8
    assert message.rcpt_tos == ("用户@example.org",)


def test_several_recipients_and_rows_arrive_live(smtp_server: MailServer) -> None:
    seen: list[Row] = []
    result = send(
        starttls_plan(smtp_server),
        password=smtp_server.password,
        to=(TO, "carol@example.net"),
        on_row=seen.append,
    )
    assert result.ok
    assert seen == list(result.transcript.rows)
    assert smtp_server.messages[0].rcpt_tos == (TO, "carol@example.net")


def test_pipelined_commands_go_in_one_group(smtp_server: MailServer) -> None:
    """AUTH PLAIN, MAIL, RCPT and DATA leave in one write: one round trip instead of four."""
    assert send(starttls_plan(smtp_server), password=smtp_server.password).ok
    [connection] = smtp_server.connections
    chunks = [chunk for on_tls, chunk in connection.chunks if on_tls]
    group = next(chunk for chunk in chunks if chunk.startswith(b"AUTH PLAIN"))
    assert [line.split(b" ")[0] for line in group.splitlines()] == [
        b"AUTH",
        b"MAIL",
        b"RCPT",
        b"DATA",
    ]


def test_concurrent_sends_keep_their_transcripts_apart(smtp_server: MailServer) -> None:
    async def both() -> list[TestResult]:
        plan = starttls_plan(smtp_server)
        return list(
            await asyncio.gather(
                send_plan_async(plan, to=[TO], password=Secret(smtp_server.password)),
                send_plan_async(plan, to=["carol@example.net"], password=Secret("wrong")),
            )
        )

    good, bad = run_sync(both())
    assert good.ok
    assert not bad.ok
    assert "carol@example.net" not in good.transcript.to_text()
    assert TO not in bad.transcript.to_text()


def test_a_failed_pipelined_auth_never_turns_into_a_message(smtp_server: MailServer) -> None:
    """This server lets MAIL, RCPT and DATA through after the failed AUTH (354): mailkit must
    neither end the body (no message) nor say QUIT inside it."""
    result = send(starttls_plan(smtp_server), password="wrong")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.BAD_CREDENTIALS
    assert smtp_server.messages == []
    client_lines = [r.text for r in result.transcript.rows if r.dir is Direction.CLIENT]
    assert client_lines[-1] == "DATA"  # nothing after it: no body, no dot, no QUIT
