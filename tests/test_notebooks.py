"""The kit's notebooks: committed clean, executed top to bottom, saved, grepped for secrets.

Each notebook runs unattended against its own demo mail server (a temporary data directory)
whose password is a canary from MAILKIT_DEMO_PASSWORD; the executed notebook — outputs and
widget state — is written to disk and searched for that canary in clear and encoded.

The OAuth notebooks find a demo server this test started, so the test sees its fake provider:
every token it issued and every PKCE code verifier it received are searched for as well.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from notebook_runner import (
    all_repo_notebooks,
    assert_committed_clean,
    run_notebook,
    saved_outputs_text,
    write_notebook,
)

pytestmark = pytest.mark.timeout(300)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "canary-Notebook-Pw-58q"
#: The sample legacy file's password and key: shown nowhere after the migration.
LEGACY_SECRETS = ("Sample-Only-Not-Real-1", "sample-key-not-real")


def leak_forms(secret: str) -> list[str]:
    raw = secret.encode()
    forms = [secret]
    for blob in (raw, b"\0demo@example.com\0" + raw):
        forms += [base64.b64encode(blob).decode(), base64.b64encode(blob).decode().rstrip("=")]
    return forms


def test_there_are_notebooks_and_they_are_committed_clean() -> None:
    names = {path.name for path in all_repo_notebooks()}
    assert {
        "01-onboarding.ipynb",
        "02-test-sends.ipynb",
        "03-audit-users.ipynb",
        "04-oauth-google.ipynb",
        "05-oauth-microsoft.ipynb",
        "06-migrate-legacy.ipynb",
    } <= names
    for path in all_repo_notebooks():
        assert_committed_clean(path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("01-onboarding.ipynb", ["accepted", "stored: True", "app_password_required"]),
        ("02-test-sends.ipynb", ["basic_auth_disabled", "greylisted", "Test message accepted"]),
        (
            "03-audit-users.ipynb",
            [
                "rows refused",
                "invalid-address",
                "gmail-password-auth",
                "still uses a Gmail password: False",
                "the last test send failed (greylisted)",  # the re-audit, after the bulk test
                "test-failed, test-stale",
            ],
        ),
        ("06-migrate-legacy.ipynb", ["SMTPServerName", "moved to the secret store"]),
    ],
)
def test_notebook_runs_unattended_and_keeps_secrets(
    name: str, expected: list[str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(tmp_path / "data"),  # a demo server of its own
        "MAILKIT_NOTEBOOK_DIR": str(work),
    }
    executed = run_notebook(NOTEBOOKS / name, cwd=NOTEBOOKS, env=env, timeout=120)
    saved = tmp_path / name
    write_notebook(executed, saved)
    text = saved.read_text(encoding="utf-8")
    outputs = saved_outputs_text(executed)
    for word in expected:
        assert word in outputs, f"{name}: expected {word!r} in the outputs"
    for secret in (CANARY, *LEGACY_SECRETS):
        for form in leak_forms(secret):
            assert form not in text, f"{name}: a secret reached the saved notebook as {form!r}"
    json.loads(text)  # still a valid notebook


def test_the_onboarding_notebook_saved_a_profile(tmp_path: Path) -> None:
    """The newcomer's result is real: an org and two users in the profile, a green history."""
    from mailkit.store import Store

    work = tmp_path / "work"
    work.mkdir()
    env = {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "MAILKIT_NOTEBOOK_DIR": str(work),
    }
    run_notebook(NOTEBOOKS / "01-onboarding.ipynb", cwd=NOTEBOOKS, env=env, timeout=120)
    with Store.open(work / "onboarding.sqlite", profile="onboarding") as store:
        org = store.get_org()
        codes = {user.user_code for user in store.users()}
        history = store.history_frame()
    assert org.host == "localhost"
    assert {"ann", "accounting"} <= codes
    assert bool(history["ok"].any())
    assert CANARY not in (work / "onboarding.sqlite").read_bytes().decode("latin-1")


#: What the fake provider's tokens, device codes and authorization codes start with.
FAKE_PREFIXES = ("fake-at-", "fake-rt-", "fake-dc-", "fake-code-")


@pytest.mark.parametrize(
    ("name", "pkce_sign_ins", "expected"),
    [
        (
            "04-oauth-google.ipynb",
            2,  # paste-back and loopback
            [
                "Signed in as demo@example.com",
                "https://www.googleapis.com/auth/gmail.send",
                "/gmail/v1/users/me/messages/send",
                "AUTH XOAUTH2",
                "Google revoked the grant",
                "token_missing",
            ],
        ),
        (
            "05-oauth-microsoft.ipynb",
            1,  # the browser sign-in; the device code has no verifier
            [
                "Signed in as demo@example.com",
                "Mail.Send",
                "/v1.0/me/sendMail",
                "AUTH XOAUTH2",
                "removed from the token cache",
                "token_missing",
            ],
        ),
    ],
)
def test_oauth_notebook_runs_unattended_and_shows_no_token(
    name: str,
    pkce_sign_ins: int,
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailkit.demo import DemoServer

    monkeypatch.setenv("MAILKIT_DEMO_PASSWORD", CANARY)
    data = tmp_path / "data"
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(data),  # where the notebook's ensure_running() finds our server
        "MAILKIT_NOTEBOOK_DIR": str(work),
        # The demo, even on a machine configured for a real provider:
        "MAILKIT_GOOGLE_CLIENT_JSON": "",
        "MAILKIT_MICROSOFT_CLIENT_ID": "",
    }
    with DemoServer(data / "mailkit" / "demo") as server:
        executed = run_notebook(NOTEBOOKS / name, cwd=NOTEBOOKS, env=env, timeout=120)
        issued = server.oauth.issued_tokens()
        verifiers = list(server.oauth.received_verifiers)
        sent_via = list(server.mailbox()["via"])
    saved = tmp_path / name
    write_notebook(executed, saved)
    text = saved.read_text(encoding="utf-8")
    outputs = saved_outputs_text(executed)
    for word in expected:
        assert word in outputs, f"{name}: expected {word!r} in the outputs"
    assert "widgets" in executed.metadata  # the widget state was saved, and searched
    assert len(sent_via) == 2  # the API send and the SMTP send reached the demo
    assert "smtp" in sent_via
    # Two sign-ins, each with a verifier and tokens: the searches below cannot pass vacuously.
    assert len(verifiers) == pkce_sign_ins
    assert len(issued) >= 3
    for secret in (CANARY, *issued, *verifiers):
        for form in leak_forms(secret):
            assert form not in text, f"{name}: a secret reached the saved notebook as {form!r}"
    for prefix in FAKE_PREFIXES:
        assert prefix not in text, f"{name}: a {prefix}… value reached the saved notebook"
    json.loads(text)
