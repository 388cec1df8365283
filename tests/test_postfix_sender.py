"""mailkit's test send against a real Postfix with Dovecot SASL on loopback.

The fixture starts a private Postfix + Dovecot (installed by ``make test`` as root on Debian);
in CI a missing server is a failure, never a skip. Postfix advertises PIPELINING, so these
sends also prove the pipelined groups against a real MTA.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from postfix_server import PostfixServer, running_postfix

from mailkit.message import TEST_BODY_LINES, TEST_SUBJECT
from mailkit.outcome import Cause, Kind, Phase
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security
from mailkit.transcript import secret_forms

pytestmark = pytest.mark.timeout(120)

FROM = "maintenance@example.com"


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixServer]:
    with running_postfix() as server:
        yield server


def plan(server: PostfixServer, **changes: Any) -> SmtpPlan:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.submission_port,
        "security": Security.STARTTLS,
        "auth": AuthType.AUTO,
        "username": server.user,
        "from_address": FROM,
        "ca_file": str(server.ca_file),
        "connect_timeout": 10,
        "command_timeout": 10,
    }
    return SmtpPlan(**{**values, **changes})


def send(server: PostfixServer, to: str, password: str | None = None, **changes: Any) -> TestResult:
    secret = Secret(password if password is not None else server.password)
    return run_sync(send_plan_async(plan(server, **changes), to=[to], password=secret))


def delivered(server: PostfixServer, to: str) -> EmailMessage:
    return server.wait_for_message(lambda m: m.get("Delivered-To") == to, timeout=20)


def assert_clean(server: PostfixServer, result: TestResult) -> None:
    text = result.transcript.to_text() + str(result.as_dict())
    for form in secret_forms(server.password, server.user):
        assert form not in text


@pytest.mark.parametrize(
    ("auth", "mechanism", "recipient"),
    [
        (AuthType.PLAIN, "PLAIN", "plain@example.org"),
        (AuthType.LOGIN, "LOGIN", "login@example.org"),
        (AuthType.AUTO, "PLAIN", "auto@example.org"),
        (AuthType.CRAM_MD5, "CRAM-MD5", "cram@example.org"),
    ],
)
def test_starttls_send_is_delivered_with_its_unicode_intact(
    postfix: PostfixServer, auth: AuthType, mechanism: str, recipient: str
) -> None:
    result = send(postfix, recipient, auth=auth)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert result.auth_mechanism == mechanism
    assert result.tls is not None
    assert result.tls.version == "TLSv1.3"
    message = delivered(postfix, recipient)
    assert message["Message-ID"] == result.message_id
    assert message["Subject"] == TEST_SUBJECT
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    for language, line in TEST_BODY_LINES:
        assert f"{language} - {line}" in text
    assert_clean(postfix, result)


def test_implicit_tls_send(postfix: PostfixServer) -> None:
    result = send(
        postfix, "smtps@example.org", port=postfix.smtps_port, security=Security.IMPLICIT_TLS
    )
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    delivered(postfix, "smtps@example.org")


def test_pipelining_is_used_with_postfix(postfix: PostfixServer) -> None:
    result = send(postfix, "pipe@example.org")
    assert result.ok
    assert "PIPELINING" in result.transcript.to_text()
    frame = result.transcript.to_dataframe()
    client = list(frame[frame["dir"] == "C"]["phase"])
    # The pipelined group leaves before any of its replies arrive.
    start = client.index("auth")
    assert client[start : start + 4] == ["auth", "mail", "rcpt", "data"]


def test_wrong_password_is_diagnosed(postfix: PostfixServer) -> None:
    result = send(postfix, "never@example.org", password="canary-Postfix-wrong")
    assert not result.ok
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.kind, result.diagnosis.cause) == (
        Phase.AUTH,
        Kind.PERMANENT,
        Cause.BAD_CREDENTIALS,
    )
    assert result.diagnosis.code == 535
    assert result.diagnosis.enhanced == "5.7.8"
    assert_clean(postfix, result)


def test_auth_before_starttls_is_refused_by_the_server(postfix: PostfixServer) -> None:
    """Forced to speak AUTH in clear (security none + the explicit flag), Postfix refuses it."""
    result = send(
        postfix,
        "clear@example.org",
        security=Security.NONE,
        allow_plaintext_auth=True,
        auth=AuthType.PLAIN,
    )
    assert not result.ok
    assert result.diagnosis is not None
    # Postfix offers no AUTH before STARTTLS, so mailkit stops before sending the password.
    assert (result.diagnosis.phase, result.diagnosis.cause) == (Phase.AUTH, Cause.AUTH_NOT_OFFERED)
    assert "AUTH PLAIN" not in result.transcript.to_text()


def test_mail_before_starttls_gets_530(postfix: PostfixServer) -> None:
    result = send(postfix, "clear@example.org", security=Security.NONE, auth=AuthType.NONE)
    assert result.diagnosis is not None
    assert result.diagnosis.code == 530
    assert (result.diagnosis.phase, result.diagnosis.cause) == (
        Phase.MAIL,
        Cause.ENCRYPTION_REQUIRED,
    )


def test_the_password_never_reaches_the_server_logs(postfix: PostfixServer) -> None:
    assert send(postfix, "logs@example.org").ok
    delivered(postfix, "logs@example.org")
    for path in postfix.log_files():
        data = path.read_text(errors="replace")
        for form in secret_forms(postfix.password, postfix.user):
            assert form not in data, path


def _rows(result: TestResult) -> list[tuple[str, str, int | None, str]]:
    return [
        (r.dir.value, r.phase.value, r.code, r.text)
        for r in result.transcript.rows
        if r.dir.value != "I"
    ]


def test_postfix_takes_the_message_as_one_bdat_last_chunk_in_one_flight(
    postfix: PostfixServer,
) -> None:
    """Postfix offers CHUNKING: AUTH, MAIL, RCPT, the chunk and QUIT leave together."""
    result = send(postfix, "bdat@example.org")
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    rows = _rows(result)
    last_ehlo = max(i for i, row in enumerate(rows) if row[:2] == ("S", "ehlo"))
    flight = rows[last_ehlo + 1 :]
    first_reply = next(i for i, row in enumerate(flight) if row[0] == "S")
    assert [row[1] for row in flight[:first_reply]] == [
        "auth",
        "mail",
        "rcpt",
        "data",
        "data",
        "quit",
    ]
    assert flight[3][3].startswith("BDAT ")
    assert flight[3][3].endswith(" LAST")
    assert [row[1:3] for row in flight[first_reply:]] == [
        ("auth", 235),
        ("mail", 250),
        ("rcpt", 250),
        ("end_of_data", 250),
        ("quit", 221),
    ]
    assert not any(row[2] == 354 for row in rows)
    message = delivered(postfix, "bdat@example.org")
    assert message["Message-ID"] == result.message_id
    body = message.get_body(("plain",))
    assert isinstance(body, EmailMessage)
    for language, line in TEST_BODY_LINES:
        assert f"{language} - {line}" in body.get_content()
    assert_clean(postfix, result)


def test_postfix_with_the_data_path(postfix: PostfixServer) -> None:
    result = send(postfix, "data-path@example.org", chunking=False)
    assert result.ok
    assert any(row[2] == 354 for row in _rows(result))
    assert not any(row[3].startswith("BDAT") for row in _rows(result))
    assert delivered(postfix, "data-path@example.org")["Message-ID"] == result.message_id


def test_a_failed_auth_with_bdat_delivers_nothing_at_postfix(postfix: PostfixServer) -> None:
    """The chunk left with the failed AUTH: Postfix reads it, refuses it, delivers nothing."""
    result = send(postfix, "no-bdat@example.org", password="canary-Postfix-wrong")
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (Phase.AUTH, Cause.BAD_CREDENTIALS)
    rows = _rows(result)
    assert any(row[3].startswith("BDAT ") for row in rows)
    verdicts = [row[2] for row in rows if row[:2] == ("S", "end_of_data")]
    assert verdicts
    assert all(code is not None and code >= 500 for code in verdicts)
    with pytest.raises(TimeoutError):
        postfix.wait_for_message(lambda m: m.get("Delivered-To") == "no-bdat@example.org", 2)
    assert_clean(postfix, result)
