"""send_test: effective settings of the org or a user, credentials by account, history."""

from __future__ import annotations

from pathlib import Path

import pytest
from smtpd_servers import MailServer

from mailkit.errors import UnsafeSettingWarning
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.testsend import credential_account, send_test

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def org(smtp_server: MailServer) -> OrgSettings:
    with pytest.warns(UnsafeSettingWarning):
        return OrgSettings(
            host=smtp_server.host,
            port=smtp_server.starttls_port,
            ca_file=str(smtp_server.ca_file),
            username=smtp_server.user,
            from_address="it@example.com",
            from_name="Corp IT",
            connect_timeout=5,
            command_timeout=5,
        )


def test_the_password_belongs_to_whoever_user_name_is_used(org: OrgSettings) -> None:
    inherits = UserSettings(user_code="ann", override_enabled=True, from_address="ann@example.com")
    own = UserSettings(user_code="bob", override_enabled=True, username="bob@example.com")
    switched_off = UserSettings(user_code="cy", override_enabled=False, username="cy@example.com")
    assert credential_account(org, None) == "org"
    assert credential_account(org, inherits) == "org"
    assert credential_account(org, own) == "bob"
    assert credential_account(org, switched_off) == "org"


def test_org_send_uses_the_org_password_and_records_history(
    org: OrgSettings, smtp_server: MailServer, tmp_path: Path
) -> None:
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "org"), smtp_server.password, smtp_server.password)
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_test(org, to=["bob@example.org"], secrets=secrets, store=store)
        history = store.history_frame(None)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert result.auth_mechanism == "PLAIN"
    [message] = smtp_server.messages
    assert message.message["From"].addresses[0].display_name == "Corp IT"
    assert len(history) == 1
    assert history["message_id"].iloc[0] == result.message_id


def test_bi_mode_user_on_smtp_with_own_account_while_org_is_outlook(
    org: OrgSettings, smtp_server: MailServer, tmp_path: Path
) -> None:
    with pytest.warns(UnsafeSettingWarning):  # the loopback server's IP literal, again
        outlook_org = OrgSettings.model_validate({**org.model_dump(), "mode": "outlook"})
    user = UserSettings(
        user_code="acct",
        display_name="Accounting",
        override_enabled=True,
        mode="smtp",
        username=smtp_server.user,
        from_address="accounting@example.com",
    )
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "acct"), smtp_server.password, smtp_server.password)
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_test(outlook_org, user, to=["bob@example.org"], secrets=secrets, store=store)
        failed_org = send_test(outlook_org, to=["bob@example.org"], secrets=secrets, store=store)
        users = store.history_frame("acct")
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert smtp_server.messages[0].mail_from == "accounting@example.com"
    assert failed_org.diagnosis is not None
    # The org itself sends via Outlook: its test is a hand-off, which needs a folder for the .eml.
    assert failed_org.diagnosis.cause.value == "setting_invalid"
    assert failed_org.diagnosis.title == "No folder is set for the EML draft"
    assert list(users["ok"]) == [True]


def test_a_user_without_a_stored_password_is_told_so(org: OrgSettings) -> None:
    user = UserSettings(user_code="dee", override_enabled=True, username="dee", auth="login")
    result = send_test(org, user, to=["bob@example.org"], secrets=MemorySecretStore())
    assert result.diagnosis is not None
    assert result.diagnosis.cause.value == "password_missing"
