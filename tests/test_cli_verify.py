"""``mailkit test --verify-imap ...``: the delivery check on the command line.

Against the real Postfix + Dovecot stack (``tests/mailstack.py``): the report in text and JSON,
the exit codes (0 delivered, 10 in spam or bounced, 9 not found in time), flag errors that
name the flag, and the canary — the mailbox password in no output, also at DEBUG through the
real ``mailkit`` entry point in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from mailstack import (
    JUNK_PASSWORD,
    JUNK_USER,
    RECIPIENT,
    RECIPIENT_PASSWORD,
    SENDER,
    SENDER_PASSWORD,
    UNKNOWN_USER,
    VOID_RECIPIENT,
    MailStack,
    running_mailstack,
)

from mailkit.cli import EXIT_OK, EXIT_OUTCOME_UNKNOWN, EXIT_USAGE, main
from mailkit.cli.common import EXIT_NOT_DELIVERED
from mailkit.demo import DemoServer
from mailkit.demo.oauth import visit
from mailkit.oauth import GMAIL_SEND_SCOPE, GoogleClientConfig, GoogleCredentials, GoogleOAuth
from mailkit.secrets import EnvSecretStore, MemorySecretStore, secret_key
from mailkit.transcript import secret_forms

pytestmark = pytest.mark.timeout(180)

GMAIL_READ = "https://www.googleapis.com/auth/gmail.readonly"


@pytest.fixture(scope="module")
def stack() -> Iterator[MailStack]:
    with running_mailstack() as server:
        yield server


@pytest.fixture(autouse=True)
def passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MK_SEND_PW", SENDER_PASSWORD)
    monkeypatch.setenv("MK_BOX_PW", RECIPIENT_PASSWORD)
    monkeypatch.setenv("MK_JUNK_PW", JUNK_PASSWORD)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def command(stack: MailStack, to: str, *extra: str) -> list[str]:
    return [
        "test",
        "--to", to,
        "--host", stack.host,
        "--port", str(stack.submission_port),
        "--security", "starttls",
        "--username", SENDER,
        "--from", SENDER,
        "--ca-file", str(stack.ca_file),
        "--timeout", "10",
        "--secrets", "none",
        "--password-env", "MK_SEND_PW",
        *extra,
    ]  # fmt: skip


def verify(stack: MailStack, user: str = RECIPIENT, env: str = "MK_BOX_PW") -> list[str]:
    return ["--verify-imap", stack.imap_url(user), "--verify-password-env", env]


def test_delivered_text_report_and_exit_0(stack: MailStack) -> None:
    code, out, _ = run(*command(stack, RECIPIENT, *verify(stack)))
    assert code == EXIT_OK, out
    assert f"Delivery check (imaps://{RECIPIENT}@" in out
    assert "inbox" in out
    assert "Received chain (oldest first):" in out
    assert "ESMTPSA" in out
    assert "OK: the server accepted the test message" in out


def test_json_carries_the_delivery_report(stack: MailStack) -> None:
    code, out, _ = run(
        *command(stack, JUNK_USER, *verify(stack, JUNK_USER, "MK_JUNK_PW"), "--json")
    )
    assert code == EXIT_NOT_DELIVERED
    data = json.loads(out)
    assert data["ok"] is False
    assert data["delivery"]["placement"] == "junk"
    assert data["delivery"]["folder"] == "Junk"
    assert data["delivery"]["received"]
    assert data["diagnosis"]["cause"] == "delivered_to_spam"
    assert data["diagnosis"]["phase"] == "delivery"


def test_not_found_exits_as_outcome_unknown_and_names_the_cli_flag(stack: MailStack) -> None:
    code, out, _ = run(*command(stack, VOID_RECIPIENT, *verify(stack), "--verify-timeout", "1"))
    assert code == EXIT_OUTCOME_UNKNOWN
    assert "Accepted, but not delivered in time" in out
    assert "--verify-timeout" in out
    assert "VerifySpec" not in out


def test_a_bounce_with_the_senders_mailbox(stack: MailStack) -> None:
    code, out, _ = run(
        *command(stack, UNKNOWN_USER, *verify(stack)),
        "--verify-sender-imap", stack.imap_url(SENDER),
        "--verify-sender-password-env", "MK_SEND_PW",
    )  # fmt: skip
    assert code == EXIT_NOT_DELIVERED
    assert "bounce: failed 5.1.1" in out
    assert "Bounced: the recipient's address does not exist" in out


BOX = ["--verify-imap", "imaps://b@h", "--verify-password-env", "MK_BOX_PW"]
FLAG_ERRORS = [
    (["--verify-imap", "imaps://b@h"], "--verify-imap needs --verify-password-env"),
    (["--verify-password-env", "MK_BOX_PW"], "--verify-password-env needs --verify-imap"),
    (["--verify-imap", "imap://b@h", *BOX[2:]], "--verify-imap: plain imap://"),
    (["--verify-imap", "imaps://h", *BOX[2:]], "--verify-imap: 'imaps://h' names no user"),
    ([*BOX[:2], "--verify-password-env", "MK_UNSET_PW"], "--verify-password-env MK_UNSET_PW"),
    ([*BOX, "--verify-timeout", "0"], "--verify-timeout 0 is not a wait"),
    ([*BOX, "--verify-api", "gmail"], "either --verify-imap or --verify-api"),
]


@pytest.mark.parametrize(("extra", "says"), FLAG_ERRORS)
def test_flag_errors_name_the_flag(stack: MailStack, extra: list[str], says: str) -> None:
    code, out, err = run(*command(stack, RECIPIENT, *extra))
    assert code == EXIT_USAGE
    assert says in err, err
    assert out == ""


def test_canary_the_mailbox_password_in_no_output_of_the_real_command_at_debug(
    stack: MailStack,
) -> None:
    """The installed entry point, with the root logger at DEBUG (imapclient logs every IMAP
    command there): stdout, stderr and the log hold no form of the mailbox password."""
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
        "from mailkit.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "MK_SEND_PW": SENDER_PASSWORD, "MK_BOX_PW": RECIPIENT_PASSWORD}
    done = subprocess.run(
        [sys.executable, "-c", script, *command(stack, RECIPIENT, *verify(stack), "--json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert "imapclient" in done.stderr  # control: imapclient's DEBUG lines were printed
    assert "LOGIN" in done.stderr
    for form in secret_forms(RECIPIENT_PASSWORD, RECIPIENT) | secret_forms(SENDER_PASSWORD, SENDER):
        assert form not in done.stdout
        assert form not in done.stderr


@pytest.mark.parametrize(
    ("read", "code", "placement"),
    [(True, EXIT_OK, "inbox"), (False, EXIT_NOT_DELIVERED, "unchecked")],
)
def test_verify_api_searches_the_gmail_mailbox_with_the_stored_consent(
    fake_oauth_demo: DemoServer,
    monkeypatch: pytest.MonkeyPatch,
    read: bool,
    code: int,
    placement: str,
) -> None:
    """The real consent flow (paste mode, against the demo's fake Google), stored where
    ``--secrets env`` reads it; a consent with ``gmail.readonly`` lets the check read the
    mailbox, a send-only one is reported as such (exit 10), never as a crash."""
    demo = fake_oauth_demo.settings
    memory = MemorySecretStore()
    google = GoogleOAuth(
        GoogleClientConfig.load(demo.google_client_config()), secrets=memory, ca_file=demo.ca_file
    )
    consent = google.start_paste([GMAIL_SEND_SCOPE, *([GMAIL_READ] if read else [])])
    token = consent.finish(visit(consent.url, demo.ca_file))
    key = secret_key("default", "org", GoogleCredentials.kind)
    stored = memory.get(key)
    assert stored is not None
    monkeypatch.setenv(EnvSecretStore().env_var_name(key), stored.reveal())
    done, out, err = run(
        "test",
        "--mode", "gmail_api",
        "--api-url", demo.api_url,
        "--ca-file", str(demo.ca_file),
        "--from", "demo@example.com",
        "--to", "demo@example.com",
        "--secrets", "env",
        "--verify-api", "gmail",
        "--verify-timeout", "5",
        "--json",
    )  # fmt: skip
    assert done == code, out + err
    data = json.loads(out)
    assert data["delivery"]["placement"] == placement
    if not read:
        assert "gmail.readonly" in data["delivery"]["error"]
        assert data["diagnosis"]["cause"] == "mailbox_unchecked"
    assert token.access_token.reveal() not in out + err
