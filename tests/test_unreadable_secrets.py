"""A secret store that cannot be read is said as such, never as "no password is stored".

A locked or wrongly unlocked encrypted secrets file (or any store that fails) leaves it
unknown whether a password exists. Calling that a missing password sends the admin to store
one again, over the real one; so the send stops before signing in and says the store could not
be read, and how to unlock it in the words of the face showing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from smtpd_servers import MailServer

from mailkit.faces import Face, Where
from mailkit.outcome import Cause, Kind, Phase
from mailkit.secret import Secret
from mailkit.secrets import FileSecretStore, secret_key
from mailkit.settings import AuthType, Mode, OrgSettings, Security
from mailkit.testsend import send_test

pytestmark = pytest.mark.timeout(60)

PASSPHRASE = "correct horse battery staple"


def org_for(server: MailServer, **changes: object) -> OrgSettings:
    fields: dict[str, object] = {
        "host": "localhost",
        "port": server.starttls_port,
        "security": Security.STARTTLS,
        "username": server.user,
        "from_address": "erp@corp.local",
        "ca_file": str(server.ca_file),
        **changes,
    }
    return OrgSettings(**fields)


@pytest.fixture
def secrets_file(tmp_path: Path, server_password: str) -> Path:
    """An encrypted file holding the org's real password, then forgotten by this process."""
    path = tmp_path / "acme.secrets"
    store = FileSecretStore(path, passphrase=PASSPHRASE)
    store.set(secret_key("acme", "org"), Secret(server_password))
    store.lock()
    return path


@pytest.fixture
def server_password(smtp_server: MailServer) -> str:
    return smtp_server.password


@pytest.fixture(autouse=True)
def _no_passphrase_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILKIT_SECRETS_PASSPHRASE", raising=False)


@pytest.mark.parametrize("auth", [AuthType.AUTO, AuthType.PLAIN, AuthType.XOAUTH2])
def test_a_locked_secrets_file_is_not_a_missing_password(
    smtp_server: MailServer, secrets_file: Path, auth: AuthType
) -> None:
    smtp_server.require_auth = True
    locked = FileSecretStore(secrets_file)
    result = send_test(
        org_for(smtp_server, auth=auth), to=["ops@plant.internal"], secrets=locked, profile="acme"
    )
    assert not result.ok
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.SECRETS_UNAVAILABLE, result.diagnosis
    assert result.diagnosis.kind is Kind.CONFIGURATION
    assert result.diagnosis.phase is Phase.SETUP
    # Nothing was tried: no connection means no sign-in and no message.
    assert smtp_server.auth_mechanisms_used == []
    assert smtp_server.messages == []


def test_a_wrong_passphrase_says_so(smtp_server: MailServer, secrets_file: Path) -> None:
    wrong = FileSecretStore(secrets_file, passphrase="not the passphrase")
    result = send_test(
        org_for(smtp_server), to=["ops@plant.internal"], secrets=wrong, profile="acme"
    )
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.SECRETS_UNAVAILABLE
    assert "passphrase" in result.diagnosis.explanation.lower()
    assert smtp_server.messages == []


def test_the_same_file_unlocked_sends(smtp_server: MailServer, secrets_file: Path) -> None:
    """The control: the diagnosis above is about the lock, not the settings or the password."""
    smtp_server.require_auth = True
    unlocked = FileSecretStore(secrets_file, passphrase=PASSPHRASE)
    result = send_test(
        org_for(smtp_server), to=["ops@plant.internal"], secrets=unlocked, profile="acme"
    )
    assert result.ok, result.diagnosis
    assert len(smtp_server.messages) == 1


def test_an_api_send_with_a_locked_store_says_the_store(
    smtp_server: MailServer, secrets_file: Path
) -> None:
    """An API mode reads its OAuth consent from the same store: locked is not "no consent"."""
    locked = FileSecretStore(secrets_file)
    org = org_for(smtp_server, mode=Mode.GMAIL_API, host=None, port=None, username=None)
    result = send_test(org, to=["ops@plant.internal"], secrets=locked, profile="acme")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.SECRETS_UNAVAILABLE, result.diagnosis


@pytest.mark.parametrize(
    ("face", "words", "never"),
    [
        (Face.CLI, "MAILKIT_SECRETS_PASSPHRASE", "passphrase panel"),
        (Face.WIDGET, "passphrase panel", "MAILKIT_SECRETS_PASSPHRASE"),
        (Face.PYTHON, "unlock(passphrase)", "passphrase panel"),
    ],
)
def test_the_unlock_step_speaks_the_faces_words(
    smtp_server: MailServer, secrets_file: Path, face: Face, words: str, never: str
) -> None:
    locked = FileSecretStore(secrets_file)
    result = send_test(
        org_for(smtp_server), to=["ops@plant.internal"], secrets=locked, profile="acme"
    )
    assert result.diagnosis is not None
    steps = result.diagnosis.for_face(face, Where("acme", "org")).fix
    assert any(words in step for step in steps), steps
    assert not any(never in step for step in steps), steps
