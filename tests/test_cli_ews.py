"""``mailkit test --mode exchange_ews``: the real command against the fake Exchange.

Exit codes by phase (5 for refused credentials, 6 the sender, 7 the recipient, 9 outcome
unknown), Autodiscover from the command line, bad flags named as flags, and no form of the
password in what the command prints.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailkit.cli import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_RECIPIENT,
    EXIT_SENDER,
    EXIT_USAGE,
    main,
)
from mailkit.demo.ews import FakeExchange

pytestmark = pytest.mark.timeout(120)

USER = "ews@example.com"
PASSWORD_ENV = "MAILKIT_TEST_EWS_PW"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def ews_args(
    fake: FakeExchange, *extra: str, sender: str = USER, to: str = "bob@example.com"
) -> list[str]:
    return [
        "test",
        "--mode", "exchange_ews",
        "--username", USER,
        "--password-env", PASSWORD_ENV,
        "--from", sender,
        "--to", to,
        "--ca-file", str(fake.ca_file),
        "--secrets", "none",
        "--timeout", "20",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def password(fake_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, fake_exchange.password)
    return fake_exchange.password


def test_ntlm_send_with_json(fake_exchange: FakeExchange, password: str) -> None:
    code, out, err = run(
        *ews_args(fake_exchange, "--ews-url", fake_exchange.ews_url, "--auth", "ntlm", "--json")
    )
    assert code == EXIT_OK, out + err
    data = json.loads(out)
    assert data["ok"] is True
    assert data["auth_mechanism"] == "NTLM"
    assert data["diagnosis"] is None
    assert data["tls"]["verified_by"].startswith("CA file")
    assert any("CreateItem" in row["text"] for row in data["transcript"])
    assert [m.subject for m in fake_exchange.sent]


def test_autodiscover_from_the_command_line(fake_exchange: FakeExchange, password: str) -> None:
    code, out, err = run(
        *ews_args(
            fake_exchange,
            "--autodiscover",
            "--autodiscover-url",
            fake_exchange.autodiscover_xml_url,
        )
    )
    assert code == EXIT_OK, out + err
    assert f"Autodiscover found the EWS URL {fake_exchange.ews_url}" in out
    assert "OK: the server accepted the test message" in out


@pytest.mark.parametrize(
    ("sender", "to", "code", "cause"),
    [
        ("sendas-denied@example.com", "bob@example.com", EXIT_SENDER, "send_as_denied"),
        (USER, "invalid@example.com", EXIT_RECIPIENT, "recipient_rejected"),
        (USER, "cut@example.com", EXIT_OUTCOME_UNKNOWN, "outcome_unknown"),
    ],
)
def test_exit_code_by_phase(
    fake_exchange: FakeExchange, password: str, sender: str, to: str, code: int, cause: str
) -> None:
    got, out, err = run(
        *ews_args(fake_exchange, "--ews-url", fake_exchange.ews_url, "--json", sender=sender, to=to)
    )
    assert got == code, out + err
    assert json.loads(out)["diagnosis"]["cause"] == cause


def test_refused_credentials_exit_5_in_the_commands_words(
    fake_exchange: FakeExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "Not-The-Passw0rd")
    code, out, err = run(*ews_args(fake_exchange, "--ews-url", fake_exchange.ews_url))
    assert code == EXIT_AUTH, out + err
    assert "EWS refused the sign-in (auth, permanent: bad_credentials)" in out
    assert "--username" in out
    assert "--password-stdin or --password-env NAME" in out  # an ad hoc run: the flags
    assert "username" not in out.replace("--username", "")  # no Python spelling


def test_ntlm_not_offered_exits_5(fake_exchange: FakeExchange, password: str) -> None:
    code, out, err = run(
        *ews_args(fake_exchange, "--ews-url", fake_exchange.ews_url_basic_only, "--auth", "ntlm")
    )
    assert code == EXIT_AUTH, out + err
    assert "mechanism_not_offered" in out
    assert "--auth" in out


def test_no_ews_url_and_no_autodiscover_names_the_flags(
    fake_exchange: FakeExchange, password: str
) -> None:
    code, out, err = run(*ews_args(fake_exchange))
    assert code == EXIT_USAGE, out + err
    assert "--ews-url" in out
    assert "--autodiscover" in out
    assert fake_exchange.requests == []


def test_a_url_that_is_not_https_is_refused_by_its_flag(
    fake_exchange: FakeExchange, password: str
) -> None:
    code, out, err = run(
        *ews_args(fake_exchange, "--ews-url", "http://mail.example.com/EWS/Exchange.asmx")
    )
    assert code == EXIT_USAGE, out
    assert "--ews-url" in err
    assert "https://" in err
    assert fake_exchange.requests == []


def test_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["test", "--help"])
    shown = capsys.readouterr().out
    for flag in ("--ews-url", "--autodiscover", "--autodiscover-url", "exchange_ews"):
        assert flag in shown


@pytest.mark.parametrize("to", ["bob@example.com", "invalid@example.com"])
def test_no_form_of_the_password_in_the_output(
    fake_exchange: FakeExchange, password: str, to: str
) -> None:
    for extra in ((), ("--json",)):
        code, out, err = run(
            *ews_args(fake_exchange, "--ews-url", fake_exchange.ews_url, *extra, to=to)
        )
        assert code == (EXIT_OK if to == "bob@example.com" else EXIT_RECIPIENT), out + err
        text = out + err
        for form in (
            password,
            base64.b64encode(f"{USER}:{password}".encode()).decode(),
            base64.b64encode(password.encode()).decode().rstrip("="),
            password.encode("utf-16-le").decode("latin-1"),
            "TlRMTVNT",
        ):
            assert form not in text


def test_the_installed_entry_point(fake_exchange: FakeExchange, password: str) -> None:
    """The real ``mailkit`` program, as an admin runs it."""
    env = {**os.environ, PASSWORD_ENV: password}
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("mailkit")),
            *ews_args(fake_exchange, "--ews-url", fake_exchange.ews_url, "--json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    assert json.loads(done.stdout)["ok"] is True
    assert password not in done.stdout + done.stderr
