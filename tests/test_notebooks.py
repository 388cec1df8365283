"""The kit's notebooks: paired with their text, committed clean, executed, grepped for secrets.

Each notebook is kept twice, as ``NN-name.ipynb`` and as jupytext percent-format
``NN-name.py`` (the source ruff and mypy check); the two must hold the same cells.

Each notebook runs unattended against its own demo mail server (a temporary data directory)
whose password is a canary from MAILKIT_DEMO_PASSWORD; the executed notebook — outputs and
widget state — is written to disk and searched for that canary in clear and encoded.

The notebooks keep their work in named profiles (``demo``, ``demo-acme``, ``demo-migrated``) in
the platformdirs data folder, which the tests point at a temporary one (XDG_DATA_HOME), so a
test never touches the real user's profiles. There is no OS keyring here, as in CI (the
keyring's "fail" backend makes sure of it on any machine): the secrets go to the encrypted file
beside each profile, unlocked by MAILKIT_SECRETS_PASSPHRASE as an unattended run would be.
Every file the run left in the data folder is searched for the canary too.

The OAuth notebooks find a demo server this test started, so the test sees its fake provider:
every token it issued and every PKCE code verifier it received are searched for as well.
"""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path

import pytest
from notebook_runner import (
    NotebookError,
    all_repo_notebooks,
    assert_committed_clean,
    assert_pair_agrees,
    run_notebook,
    saved_outputs_text,
    write_notebook,
)
from test_canary import encoded_forms, file_contents

pytestmark = pytest.mark.timeout(300)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "canary-Notebook-Pw-58q"
#: The sample legacy file's password and key: shown nowhere after the migration.
LEGACY_SECRETS = ("Sample-Only-Not-Real-1", "sample-key-not-real")
PASSPHRASE = "canary-Notebook-Passphrase-4t"


def kit_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A run's environment: its own data folder (profiles, demo server), the file secret store."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(tmp_path / "data"),  # profiles and a demo server of its own
        "MAILKIT_NOTEBOOK_DIR": str(work),
        "MAILKIT_SECRETS_PASSPHRASE": PASSPHRASE,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # never the real keyring
        "MAILKIT_PROFILE": "",
        **extra,
    }


def assert_no_secret_in_files(root: Path, secrets: tuple[str, ...]) -> int:
    """No secret, in any encoding, in any file under ``root``; returns how many were searched."""
    files = file_contents(root)
    for secret in secrets:
        for form in {*encoded_forms(secret), *(f.encode() for f in leak_forms(secret))}:
            for name, data in files.items():
                assert form not in data, f"a secret reached {name} as {form!r}"
    return len(files)


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
        "07-exchange-and-desktop.ipynb",
    } <= names
    for path in all_repo_notebooks():
        assert_committed_clean(path)


@pytest.mark.parametrize("notebook", all_repo_notebooks(), ids=lambda path: path.name)
def test_each_notebook_agrees_with_its_text_source(notebook: Path) -> None:
    assert_pair_agrees(notebook)


def test_every_text_source_is_a_notebook_and_is_linted_and_type_checked() -> None:
    """A ``.py`` without its notebook, or a notebook mypy does not know, fails here."""
    notebooks = {path.stem for path in all_repo_notebooks()}
    assert {path.stem for path in NOTEBOOKS.glob("*.py")} == notebooks
    config = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    mypy = config["tool"]["mypy"]
    assert "notebooks" in mypy["files"]
    as_cells = [
        rule
        for rule in mypy["overrides"]
        if "top-level-await" in rule.get("disable_error_code", [])
    ]
    assert as_cells, "pyproject.toml has no mypy override for the notebook sources"
    assert notebooks <= {module for rule in as_cells for module in rule["module"]}, (
        "add the new notebook's name to the notebooks' mypy override in pyproject.toml"
    )
    ignored = config["tool"]["ruff"]["lint"]["per-file-ignores"]["notebooks/*.py"]
    assert set(ignored) <= {"B018", "F704"}, "only notebook idioms are exempt from ruff"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "01-onboarding.ipynb",
            [
                "Created the profile 'demo'",
                "Secrets are kept in the encrypted file",
                "accepted",
                "stored: True",
                "app_password_required",
                "Accounting's own password stored: True",
                "Testing Accounting",
                "their own account",
            ],
        ),
        (
            "02-test-sends.ipynb",
            [
                "the profile 'demo'",
                "Secrets are kept in the encrypted file",
                "basic_auth_disabled",
                "greylisted",
                "Test message accepted",
                "implicit TLS), which RFC 8314 prefers",  # the probe's verdict on the demo
            ],
        ),
        (
            "03-audit-users.ipynb",
            [
                "Created the profile 'demo-acme'",
                "Secrets are kept in the encrypted file",
                "rows refused",
                "invalid-address",
                "gmail-password-auth",
                "still uses a Gmail password: False",
                "the last test send failed (greylisted)",  # the re-audit, after the bulk test
                "test-failed, test-stale",
                "spf-server-not-authorized",  # the sending domains, checked over local DNS
                "dmarc-policy-none",
            ],
        ),
        (
            "07-exchange-and-desktop.ipynb",
            [
                "Created the profile 'demo-exchange'",
                "Secrets are kept in the encrypted file",
                "EWS test accepted: True",
                "send_as_denied",
                "X-Unsent: 1",
                "not mailkit, sends it",
                "mode = exchange_ews",
                "https://exchange.corp.example/EWS/Exchange.asmx",
                "Exchange Online becomes: microsoft_graph",
                "subject: Work order TEST-0001: mailkit route test",
                "route test accepted: True",
            ],
        ),
        (
            "06-migrate-legacy.ipynb",
            [
                "Created the profile 'demo-migrated'",
                "Secrets are kept in the encrypted file",
                "SMTPServerName",
                "moved to the secret store",
                "is a password stored there? True",
            ],
        ),
    ],
)
def test_notebook_runs_unattended_and_keeps_secrets(
    name: str, expected: list[str], tmp_path: Path
) -> None:
    env = kit_env(tmp_path)
    executed = run_notebook(NOTEBOOKS / name, cwd=NOTEBOOKS, env=env, timeout=120)
    saved = tmp_path / name
    write_notebook(executed, saved)
    text = saved.read_text(encoding="utf-8")
    outputs = saved_outputs_text(executed)
    for word in expected:
        assert word in outputs, f"{name}: expected {word!r} in the outputs"
    for secret in (CANARY, PASSPHRASE, *LEGACY_SECRETS):
        for form in leak_forms(secret):
            assert form not in text, f"{name}: a secret reached the saved notebook as {form!r}"
    json.loads(text)  # still a valid notebook
    profiles = tmp_path / "data" / "mailkit"
    assert list(profiles.glob("*.secrets")), "the secrets went to the encrypted file store"
    assert assert_no_secret_in_files(profiles, (CANARY, PASSPHRASE, *LEGACY_SECRETS)) > 2


def test_the_onboarding_profile_stays_across_kernel_restarts(tmp_path: Path) -> None:
    """Two runs, two kernels: the second reopens the profile the first saved, and adds to it."""
    from mailkit.profiles import open_profile
    from mailkit.secrets import FileSecretStore, secret_key

    env = kit_env(tmp_path)
    first = saved_outputs_text(
        run_notebook(NOTEBOOKS / "01-onboarding.ipynb", cwd=NOTEBOOKS, env=env, timeout=120)
    )
    assert "Created the profile 'demo'" in first
    assert "the organisation's server: not set yet" in first
    again = saved_outputs_text(
        run_notebook(NOTEBOOKS / "01-onboarding.ipynb", cwd=NOTEBOOKS, env=env, timeout=120)
    )
    path = tmp_path / "data" / "mailkit" / "demo.sqlite"
    assert f"Reopened the profile 'demo' at {path}" in again
    assert "It holds 3 user(s); the organisation's server: localhost:" in again

    with open_profile(path) as store:
        org = store.get_org()
        codes = {user.user_code for user in store.users()}
        history = store.history_frame()
    assert org.host == "localhost"
    assert {"ann", "accounting"} <= codes
    assert int(history["ok"].sum()) >= 4  # the org's and Accounting's sends, twice
    secrets = FileSecretStore(path.with_suffix(".secrets"), passphrase=PASSPHRASE)
    assert secrets.get(secret_key("demo", "accounting")) is not None  # typed in the user form
    assert secrets.get(secret_key("demo", "org")) is not None


def test_a_locked_secrets_file_stops_the_notebook_with_what_to_do(tmp_path: Path) -> None:
    """No keyring, no passphrase: a clear stop at the unlock cell, never a silent fallback."""
    env = kit_env(tmp_path, MAILKIT_SECRETS_PASSPHRASE="")
    with pytest.raises(NotebookError) as stopped:
        run_notebook(NOTEBOOKS / "01-onboarding.ipynb", cwd=NOTEBOOKS, env=env, timeout=120)
    cell = stopped.value.notebook.cells[stopped.value.cell_index or 0]
    assert "unlock.require()" in cell.source
    assert "SecretsLockedError" in str(stopped.value)
    assert "press Unlock" in str(stopped.value)
    assert not list((tmp_path / "data" / "mailkit").glob("*.secrets"))


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
