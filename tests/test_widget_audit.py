"""The audit dashboard, headless: drive filters and the user list, save, see the audit change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import comm
import pytest

from mailkit.audit import audit
from mailkit.audit.sample import SampleOrg, load_sample, sample_org
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, accounts_with_secret, secret_key
from mailkit.store import Store
from mailkit.widgets import AuditDashboard
from mailkit.widgets.audit import ALL, NO_USER_MODE

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CANARY = "canary-Audit-Wdg-7x"


class _Comm:
    """Keeps every widget's opening state and update, as ipywidgets' DummyComm would drop."""

    kernel = "recording"

    def __init__(self, log: list[Any], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or str(id(self))
        self._log = log
        log.append(kwargs.get("data"))

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self._log.append(data)

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    log: list[Any] = []
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: _Comm(log, **kwargs))
    return log


@pytest.fixture
def sample() -> SampleOrg:
    return sample_org(150, seed=3, now=NOW)


@pytest.fixture
def store(tmp_path: Path, sample: SampleOrg) -> Iterator[Store]:
    with Store.open(tmp_path / "acme.sqlite", profile="acme", create=True) as opened:
        load_sample(opened, sample)
        yield opened


@pytest.fixture
def secrets() -> MemorySecretStore:
    vault = MemorySecretStore()
    vault.set(secret_key("acme", "org"), Secret(CANARY))
    return vault


@pytest.fixture
def dashboard(store: Store, secrets: MemorySecretStore) -> AuditDashboard:
    return AuditDashboard(store, secrets=secrets, now=lambda: NOW)


def codes_with(board: AuditDashboard, rule: str) -> set[str]:
    return set(board.findings.loc[board.findings["rule"] == rule, "user_code"])


def test_the_dashboard_shows_what_audit_finds(
    dashboard: AuditDashboard, store: Store, secrets: MemorySecretStore
) -> None:
    expected = audit(
        store.get_org(),
        store.users_frame(),
        accounts_with_secret=accounts_with_secret(
            secrets, "acme", ["org", *store.users_frame()["user_code"]]
        ),
        history=store.history_frame(),
        now=NOW,
    )
    assert len(dashboard.findings) == len(expected) > 0
    assert sorted(dashboard.findings["rule"]) == sorted(expected["rule"])
    assert f"{len(expected)} of {len(expected)} finding(s)" in dashboard.count.value
    assert dashboard.users_audited == len(store.users())
    assert dashboard.severity.options[0] == (f"all ({len(expected)} findings)", ALL)
    critical = int((expected["severity"] == "critical").sum())
    assert (f"critical ({critical} findings)", "critical") in dashboard.severity.options


def test_filters_narrow_the_table_the_count_and_the_user_list(dashboard: AuditDashboard) -> None:
    total = len(dashboard.findings)
    dashboard.severity.value = "warning"
    assert set(dashboard.visible["severity"]) == {"warning"}
    assert len(dashboard.visible) < total
    assert f"{len(dashboard.visible)} of {total} finding(s)" in dashboard.count.value
    assert "critical" not in dashboard.table.value
    assert set(dashboard.user_list.options) == set(dashboard.visible["user_code"])

    dashboard.severity.value = ALL
    dashboard.mode.value = "mapi"
    assert len(dashboard.visible) > 0
    assert set(dashboard.visible["mode"]) == {"mapi"}
    assert "mapi-no-contact-sync" in set(dashboard.visible["rule"])

    dashboard.mode.value = ALL
    dashboard.rule.value = "gmail-password-auth"
    gmail_users = set(dashboard.visible["user_code"])
    assert gmail_users
    assert set(dashboard.user_list.options) == gmail_users
    assert "gmail.com" in dashboard.table.value

    dashboard.severity.value = "info"  # nothing is both: an empty table, said so
    assert dashboard.visible.empty
    assert "No findings match" in dashboard.table.value
    assert dashboard.user_list.options == ()


def test_picking_a_user_opens_the_form_and_saving_changes_the_findings(
    dashboard: AuditDashboard, store: Store
) -> None:
    dashboard.rule.value = "gmail-password-auth"
    code = dashboard.user_list.options[0]
    dashboard.user_list.value = code
    assert dashboard.selected is not None
    assert dashboard.selected.user_code == code
    form = dashboard.form
    assert form.fields["host"].input.value == "smtp.gmail.com"
    assert form.fields["override_enabled"].input.value is True

    form.fields["auth"].input.value = "xoauth2"  # the finding's fix: OAuth instead of a password
    form.save_button.click()
    assert "Saved user" in form.status.value
    stored = store.get_user(code)
    assert stored is not None
    assert stored.auth is not None
    assert stored.auth.value == "xoauth2"
    assert code not in codes_with(dashboard, "gmail-password-auth")
    assert code not in set(dashboard.user_list.options)
    assert dashboard.rule.value == "gmail-password-auth"  # the filter survives the re-audit


def test_unticking_an_empty_override_clears_override_incomplete(
    dashboard: AuditDashboard,
) -> None:
    dashboard.rule.value = "override-incomplete"
    before = len(dashboard.visible)
    code = dashboard.user_list.options[0]
    dashboard.user_list.value = code
    dashboard.form.fields["override_enabled"].input.value = False
    dashboard.form.save_button.click()
    assert code not in codes_with(dashboard, "override-incomplete")
    assert len(dashboard.visible) == before - 1


def test_a_route_sender_that_is_no_user_opens_an_explained_new_form(
    dashboard: AuditDashboard,
) -> None:
    dashboard.rule.value = "route-sender-unconfigured"
    assert list(dashboard.visible["mode"]) == [NO_USER_MODE]
    dashboard.user_list.value = "PBUYER"
    assert dashboard.selected is None
    assert dashboard.form.fields["user_code"].input.value == "PBUYER"
    assert "not a user of this profile" in dashboard.user_note.value


def test_an_export_as_the_source_shows_what_the_store_refused(
    store: Store, sample: SampleOrg
) -> None:
    board = AuditDashboard(store, users=lambda: sample.users, now=lambda: NOW)
    assert board.users_audited == len(sample.users)
    assert codes_with(board, "invalid-address")
    assert codes_with(board, "duplicate-user-code")
    from_store = AuditDashboard(store, now=lambda: NOW)
    assert not codes_with(from_store, "invalid-address")


def test_the_dashboard_displays_and_holds_no_secret(
    dashboard: AuditDashboard, sent: list[Any]
) -> None:
    view = dashboard._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == dashboard.widget.model_id
    dashboard.severity.value = "critical"
    dashboard.user_list.value = dashboard.user_list.options[0]
    assert sent
    assert CANARY not in json.dumps(sent, default=str)


def test_a_route_sending_as_the_org_shows_the_orgs_mode(dashboard: AuditDashboard) -> None:
    dashboard.rule.value = "route-no-recipients"
    assert list(dashboard.visible["user_code"]) == ["org"]
    assert list(dashboard.visible["mode"]) == ["smtp"]  # the sample org's mode
    dashboard.user_list.value = "org"
    assert "organisation settings" in dashboard.user_note.value
    assert "not a user of this profile" not in dashboard.user_note.value


def test_a_users_own_password_typed_in_the_dashboard_clears_missing_secret(
    dashboard: AuditDashboard, secrets: MemorySecretStore, sent: list[Any]
) -> None:
    dashboard.rule.value = "missing-secret"
    codes = [code for code in dashboard.user_list.options if code != "org"]
    assert codes, "the sample has users with their own account and no password"
    code = codes[0]
    dashboard.user_list.value = code
    form = dashboard.form
    assert form.passwords is not None
    assert "their own account" in form.password_note.value
    assert "No password is stored yet" in form.password_note.value
    form.passwords.password.set_state({"value": CANARY + "-user"})
    form.passwords.confirmation.set_state({"value": CANARY + "-user"})
    form.save_button.click()

    assert secrets.get(secret_key("acme", code)) == Secret(CANARY + "-user")
    assert "and the password" in form.status.value
    assert code not in codes_with(dashboard, "missing-secret")
    assert code not in set(dashboard.user_list.options)
    assert (form.passwords.password.value, form.passwords.confirmation.value) == ("", "")
    assert CANARY not in json.dumps(sent, default=str)
