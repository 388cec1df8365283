"""The notebook widgets, headless: set values, click buttons, check the model, store, output.

Every widget in these tests talks through a recording comm (the ``sent`` fixture, autouse), the
way ipywidgets' own tests swap in a dummy comm: each message the kernel would send to the
browser — the opening state of every widget and every update after it — is kept, so that the
secret checks can search everything a browser (or a saved notebook's widget state) could see.
Typing in the browser is simulated with ``set_state``, the path a frontend update takes.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import comm
import ipywidgets as widgets  # type: ignore[import-untyped]
import pytest
from smtpd_servers import Credentials, MailServer

from mailkit.errors import SecretsLockedError
from mailkit.faces import Face, Where
from mailkit.outcome import Phase
from mailkit.resolve import effective
from mailkit.secret import Secret
from mailkit.secrets import (
    PASSPHRASE_ENV,
    EnvSecretStore,
    FileSecretStore,
    MemorySecretStore,
    secret_key,
)
from mailkit.settings import Mode, OrgSettings, Security, UserSettings
from mailkit.store import Store
from mailkit.transcript import COLUMNS, Direction, Row, Transcript
from mailkit.widgets import (
    OrgForm,
    PassphrasePanel,
    PasswordPanel,
    PresetChooser,
    SmtpSection,
    TestSendPanel,
    UserForm,
    UsersPanel,
)
from mailkit.widgets.common import DESCRIPTION_WIDTH
from mailkit.widgets.modes import EWS_RETIREMENT
from mailkit.widgets.password import SecretInput
from mailkit.widgets.testsend import whose_test

pytestmark = pytest.mark.timeout(60)

CANARY = "canary-Wdg-4u!Rm"


# --------------------------------------------------------------------------- recording comm


class RecordingComm:
    """Stands in for the kernel's comm: keeps what would go to the browser, and the widget."""

    kernel = "recording"  # ipywidgets sends only through a comm that has a kernel

    def __init__(self, log: Recorder, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self._log = log
        log.messages.append({"comm_open": kwargs.get("data")})

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self._log.messages.append(data)

    def on_msg(self, callback: Any) -> None:
        self._log.widgets.append(callback.__self__)  # the widget's own _handle_msg

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.widgets: list[Any] = []

    def dump(self) -> str:
        return json.dumps(self.messages, default=str)

    def states(self) -> str:
        return json.dumps([w.get_state() for w in self.widgets], default=str)


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(recorder, **kwargs))
    return recorder


def leaks(secret: str, data: str) -> list[bytes]:
    """The secret in any form a dialog or a careless log could carry (clear, hex, base64)."""
    return Credentials(password=secret, token="unused-token-xyz").leaks_in(data)


def type_into(widget: Any, text: str) -> None:
    """What the browser does when someone types: a state update from the frontend."""
    widget.set_state({"value": text})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "profile.sqlite", create=True) as opened:
        yield opened


def snapshot(store: Store) -> dict[str, Any]:
    return {
        "org": store.get_org().model_dump(),
        "users": [u.model_dump() for u in store.users()],
    }


# --------------------------------------------------------------------------- org form


def fill(form: OrgForm, **values: Any) -> None:
    for name, value in values.items():
        form.fields[name].input.value = value


def test_org_form_saves_what_was_typed(store: Store) -> None:
    form = OrgForm(store)
    fill(
        form,
        name="Acme Maintenance",
        from_address="it@example.com",
        from_name="Acme IT",
        host="smtp.example.com",
        port="587",
        security="starttls",
        auth="plain",
        username="it@example.com",
        priority="high",
    )
    fill(form, **{"command_timeout": "30"})
    form.fields["routes.work_orders.enabled"].input.value = True
    form.fields[
        "routes.work_orders.recipients"
    ].input.value = "planner@example.com, stores@example.org"
    form.save_button.click()

    org = store.get_org()
    assert "Saved the org settings" in form.status.value
    assert (org.name, org.host, org.port, org.security) == (
        "Acme Maintenance",
        "smtp.example.com",
        587,
        Security.STARTTLS,
    )
    assert org.from_address == "it@example.com"
    assert org.command_timeout == 30
    assert org.routes["work_orders"].enabled
    assert org.routes["work_orders"].recipients == ["planner@example.com", "stores@example.org"]
    assert org.routes["requests"].subject_template == "Request {number}: {title}"
    assert form.org == org
    assert all(not field.error.value for field in form.fields.values())


def test_invalid_port_is_shown_on_the_port_field_and_nothing_is_saved(store: Store) -> None:
    store.set_org(OrgSettings(host="smtp.example.com", port=587))
    before = snapshot(store)
    form = OrgForm(store)
    assert form.fields["port"].input.value == "587"
    fill(form, port="99999", from_name="Changed too")
    form.save_button.click()

    assert "out of range" in form.fields["port"].error.value
    assert "Nothing was saved" in form.status.value
    assert snapshot(store) == before
    assert not form.fields["from_name"].error.value
    assert not form.general.value

    fill(form, port="2525")  # fixed: the message goes, the save goes through
    form.save_button.click()
    assert not form.fields["port"].error.value
    assert store.get_org().port == 2525
    assert store.get_org().from_name == "Changed too"


def test_cloud_edition_with_a_desktop_mode_is_refused_on_the_mode_field(store: Store) -> None:
    before = snapshot(store)
    form = OrgForm(store)
    fill(form, edition="cloud", mode="outlook")
    form.save_button.click()
    assert "cloud edition sends only through SMTP" in form.fields["mode"].error.value
    assert snapshot(store) == before


def test_route_problems_land_on_the_route_and_new_features_can_be_added(store: Store) -> None:
    form = OrgForm(store)
    form.fields["routes.requests.recipients"].input.value = "desk@example.com\nnot-an-address"
    form.routes.new_name.value = "Bad Name"
    form.routes.add_button.click()
    assert "not a feature name" in form.routes.add_error.value
    form.routes.new_name.value = "invoices"
    form.routes.add_button.click()
    form.fields["routes.invoices.enabled"].input.value = True
    form.fields["routes.invoices.sender"].input.value = "billing@example.com"
    form.save_button.click()
    assert "not a valid address" in form.fields["routes.requests.recipients"].error.value
    assert "invoices" not in store.get_org().routes

    form.reload()  # unsaved edits go; the unsaved feature shows the model's defaults
    assert form.fields["routes.requests.recipients"].input.value == ""
    assert form.fields["routes.invoices.sender"].input.value == "org"
    form.fields["routes.invoices.enabled"].input.value = True
    form.fields["routes.invoices.sender"].input.value = "billing@example.com"

    form.fields["routes.requests.recipients"].input.value = "desk@example.com"
    form.save_button.click()
    routes = store.get_org().routes
    assert routes["invoices"].enabled
    assert routes["invoices"].sender == "billing@example.com"
    assert routes["requests"].recipients == ["desk@example.com"]
    assert list(OrgForm(store).routes.names) == list(routes)  # a stored extra route comes back


def test_a_problem_no_field_claims_goes_to_the_general_area(store: Store) -> None:
    store.put_user(UserSettings(user_code="bob"))
    before = snapshot(store)
    form = OrgForm(store)
    fill(form, edition="cloud")
    form.save_button.click()
    assert "users[bob].user_code" in form.general.value
    assert "email address" in form.general.value
    assert snapshot(store) == before


def test_unsafe_but_valid_settings_save_with_the_warning_shown(store: Store) -> None:
    form = OrgForm(store)
    fill(form, host="192.0.2.10", port="25", security="none")
    form.save_button.click()
    assert "Saved" in form.status.value
    assert "IP address" in form.status.value
    assert "unencrypted" in form.status.value
    assert store.get_org().security is Security.NONE


def test_each_mode_has_its_section(store: Store) -> None:
    form = OrgForm(store)
    sections = form.sections
    assert sections.visible is Mode.SMTP  # unset mode means the SMTP default
    texts: dict[Mode, str] = {}
    for mode in Mode:
        form.fields["mode"].input.value = mode.value
        assert sections.visible is mode
        texts[mode] = " ".join(
            child.value
            for child in sections.sections[mode].children
            if isinstance(child, widgets.HTML)
        )
    assert "cannot sync contacts" in texts[Mode.MAPI]
    assert ".eml" in texts[Mode.OUTLOOK]
    assert "cloud edition forbids" in texts[Mode.OUTLOOK]
    assert ".eml" in texts[Mode.LOTUS_NOTES]
    assert "October 2026" in EWS_RETIREMENT
    assert "April 2027" in EWS_RETIREMENT
    assert "April 2027" in texts[Mode.EXCHANGE_EWS]
    assert "OAuth for Google notebook" in texts[Mode.GMAIL_API]
    assert "device code" in texts[Mode.MICROSOFT_GRAPH]

    fill(form, mode="microsoft_graph", oauth_client_id="1b2c3d4e", oauth_tenant="example.org")
    fill(form, ews_url="http://mail.example.com/EWS/Exchange.asmx")
    form.save_button.click()
    assert "https://" in form.fields["ews_url"].error.value
    fill(form, ews_url="")
    form.save_button.click()
    org = store.get_org()
    assert (org.mode, org.oauth_client_id, org.oauth_tenant) == (
        Mode.MICROSOFT_GRAPH,
        "1b2c3d4e",
        "example.org",
    )


def test_a_corrected_field_loses_its_error_as_soon_as_it_is_right(store: Store) -> None:
    form = OrgForm(store)
    fill(form, port="99999", from_address="not an address")
    form.save_button.click()
    assert "out of range" in form.fields["port"].error.value
    assert form.fields["from_address"].error.value
    assert "2 problem(s)" in form.status.value

    fill(form, port="70000")  # still wrong: the message stays
    assert "out of range" in form.fields["port"].error.value
    type_into(form.fields["port"].input, "2525")  # as the browser sends it: corrected, gone
    assert not form.fields["port"].error.value
    assert form.fields["from_address"].error.value  # not corrected: stays
    assert "1 problem(s)" in form.status.value
    fill(form, from_name="Acme IT")  # an unrelated edit adds no message anywhere
    assert not form.fields["from_name"].error.value

    fill(form, from_address="it@example.com")
    assert not any(field.error.value for field in form.fields.values())
    assert "problems shown are fixed" in form.status.value
    assert store.get_org().port is None  # fixing is not saving
    form.save_button.click()
    assert store.get_org().port == 2525


def test_a_problem_with_the_stored_users_goes_when_its_cause_is_undone(store: Store) -> None:
    store.put_user(UserSettings(user_code="bob"))
    form = OrgForm(store)
    fill(form, edition="cloud")
    form.save_button.click()
    assert "users[bob].user_code" in form.general.value
    fill(form, name="Acme")  # still cloud: the message stays
    assert "users[bob].user_code" in form.general.value
    fill(form, edition="on_premises")
    assert not form.general.value


def test_the_saved_status_goes_stale_on_an_edit_and_not_on_a_load(store: Store) -> None:
    form = OrgForm(store)
    fill(form, host="smtp.example.com")
    assert form.dirty
    form.save_button.click()
    assert "Saved the org settings" in form.status.value
    assert not form.dirty
    form.reload()
    form.load(store.get_org())  # the form's own changes are no edit
    assert not form.dirty
    form.save_button.click()
    type_into(form.fields["from_name"].input, "Acme IT")
    assert form.dirty
    assert "Saved" not in form.status.value
    assert "not saved yet" in form.status.value
    form.save_button.click()
    assert "Saved the org settings" in form.status.value


def test_the_priority_field_says_what_the_seed_says(store: Store) -> None:
    note = OrgForm(store).fields["priority"].note.value
    assert "Leave it at normal" in note
    assert "High only puts a flag" in note


# --------------------------------------------------------------------------- presets


def test_gmail_preset_fills_the_smtp_fields_and_explains_app_passwords(store: Store) -> None:
    form = OrgForm(store)
    form.presets.email.value = "alice@gmail.com"
    form.presets.suggest_button.click()
    smtp = form.sections.smtp.fields
    assert smtp["host"].input.value == "smtp.gmail.com"
    assert smtp["port"].input.value == "587"
    assert smtp["security"].input.value == "starttls"
    assert smtp["auth"].input.value == "xoauth2"
    assert smtp["username"].input.value == "alice@gmail.com"
    assert form.fields["from_address"].input.value == "alice@gmail.com"
    assert "app password" in form.presets.notes.value
    assert form.presets.provider is not None
    assert form.presets.provider.id == "gmail"
    form.save_button.click()
    assert store.get_org().host == "smtp.gmail.com"


def test_unknown_domain_gets_the_usual_submission_settings_and_no_changes() -> None:
    smtp = SmtpSection()
    smtp.fields["host"].load("mail.example.org")
    chooser = PresetChooser(smtp)
    chooser.email.value = "someone@example.org"
    chooser.suggest_button.click()
    assert chooser.provider is None
    assert "No preset is known for example.org" in chooser.notes.value
    assert "587" in chooser.notes.value
    assert "STARTTLS" in chooser.notes.value
    assert smtp.fields["host"].input.value == "mail.example.org"


def test_a_suggestion_replaces_what_the_demo_and_the_last_suggestion_filled_in(
    store: Store, tmp_path: Path
) -> None:
    ca = tmp_path / "demo-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    form = OrgForm(store)
    form.load(  # what the onboarding notebook does with the demo server's settings
        OrgSettings(
            host="localhost",
            port=2587,
            username="demo@demo.test",
            from_address="demo@demo.test",
            ca_file=str(ca),
            tls_pin_sha256="ab" * 32,
        )
    )
    form.presets.email.value = "alice@gmail.com"
    form.presets.suggest_button.click()
    smtp = form.sections.smtp.fields
    shown = {name: field.input.value for name, field in smtp.items()}
    assert shown["host"] == "smtp.gmail.com"
    assert shown["username"] == "alice@gmail.com"
    assert form.fields["from_address"].input.value == "alice@gmail.com"
    assert (shown["ca_file"], shown["tls_pin_sha256"]) == ("", "")

    form.presets.email.value = "bob@contoso.onmicrosoft.com"  # a Microsoft 365 tenant
    form.presets.suggest_button.click()
    assert form.presets.provider is not None
    assert form.presets.provider.id == "microsoft365"
    assert smtp["host"].input.value == "smtp.office365.com"
    assert smtp["username"].input.value == "bob@contoso.onmicrosoft.com"
    assert form.fields["from_address"].input.value == "bob@contoso.onmicrosoft.com"

    type_into(smtp["username"].input, "svc-mailer@contoso.com")  # typed: the person's, kept
    type_into(smtp["ca_file"].input, str(ca))
    form.presets.email.value = "carol@gmail.com"
    form.presets.suggest_button.click()
    assert smtp["username"].input.value == "svc-mailer@contoso.com"
    assert form.fields["from_address"].input.value == "carol@gmail.com"
    assert smtp["ca_file"].input.value == str(ca)
    assert "Kept the CA file you typed" in form.presets.notes.value
    form.save_button.click()
    assert store.get_org().username == "svc-mailer@contoso.com"


# --------------------------------------------------------------------------- users


@pytest.fixture
def org_store(store: Store) -> Store:
    store.set_org(OrgSettings(host="smtp.example.com", port=587, from_address="it@example.com"))
    return store


def test_inherited_values_show_their_source_and_the_checkbox_unlocks_overrides(
    org_store: Store,
) -> None:
    form = UserForm(org_store)
    fields = form.fields
    assert fields["host"].input.placeholder == "inherit: smtp.example.com (org)"
    assert fields["port"].input.placeholder == "inherit: 587 (org)"
    assert fields["security"].input.options[0] == ("inherit: auto (default)", "")
    assert fields["mode"].input.options[0] == ("inherit: smtp (default)", "")
    assert "from the org settings" in fields["host"].note.value
    assert "default" in fields["security"].note.value
    assert all(form.override_fields[name].disabled for name in form.override_fields)

    fields["user_code"].input.value = "bob"
    fields["override_enabled"].input.value = True
    assert not any(form.override_fields[name].disabled for name in form.override_fields)
    fields["host"].input.value = "relay.example.org"
    fields["security"].input.value = "implicit_tls"
    fields["port"].input.value = "465"
    assert "relay.example.org" in fields["host"].note.value
    assert "this user's override" in fields["host"].note.value
    assert form.effective.provenance["from_address"].value == "org"
    form.save_button.click()

    saved = org_store.get_user("bob")
    assert saved is not None
    assert saved.override_enabled
    assert (saved.host, saved.port, saved.security) == (
        "relay.example.org",
        465,
        Security.IMPLICIT_TLS,
    )
    assert effective(org_store.get_org(), saved).provenance["host"].value == "user"
    assert "Saved user bob" in form.status.value
    assert form.fields["user_code"].disabled  # a stored user keeps its code


def test_user_override_problems_are_inline_and_save_nothing(org_store: Store) -> None:
    before = snapshot(org_store)
    form = UserForm(org_store)
    form.fields["user_code"].input.value = "carol"
    form.fields["override_enabled"].input.value = True
    form.fields["port"].input.value = "465"  # with the org's inherited security? auto: fine
    form.fields["security"].input.value = "starttls"
    form.save_button.click()
    assert "465" in form.fields["security"].error.value
    assert snapshot(org_store) == before


def test_cloud_edition_rules(org_store: Store) -> None:
    org_store.set_org(
        OrgSettings.model_validate({**org_store.get_org().model_dump(), "edition": "cloud"})
    )
    before = snapshot(org_store)
    form = UserForm(org_store)
    assert "Cloud edition" in form.cloud_note.value
    form.fields["user_code"].input.value = "bob"
    form.fields["override_enabled"].input.value = True
    assert form.fields["from_address"].disabled  # From is the user code: not editable
    assert "user code" in form.fields["from_address"].input.placeholder
    form.fields["mode"].input.value = "mapi"
    form.save_button.click()
    assert "email address" in form.fields["user_code"].error.value
    assert "only through SMTP" in form.fields["mode"].error.value
    assert snapshot(org_store) == before

    form.fields["user_code"].input.value = "bob@example.com"
    form.fields["mode"].input.value = ""
    form.save_button.click()
    assert "Saved" in form.status.value
    saved = org_store.get_user("bob@example.com")
    assert saved is not None
    assert effective(org_store.get_org(), saved).from_address == "bob@example.com"
    assert "bob@example.com" in form.fields["from_address"].note.value


def test_users_panel_lists_the_store_and_opens_the_picked_user(org_store: Store) -> None:
    org_store.put_user(UserSettings(user_code="ann", display_name="Ann Lee"))
    org_store.put_user(
        UserSettings(user_code="dan", override_enabled=True, host="relay.example.org")
    )
    panel = UsersPanel(org_store)
    assert [code for _, code in panel.list.options] == ["ann", "dan"]
    assert "Ann Lee" in panel.list.options[0][0]
    panel.list.value = "dan"
    assert panel.selected is not None
    assert panel.selected.user_code == "dan"
    assert panel.form.fields["host"].input.value == "relay.example.org"
    assert not panel.form.fields["host"].disabled

    panel.new_button.click()
    assert panel.selected is None
    assert panel.form.fields["user_code"].input.value == ""
    panel.form.fields["user_code"].input.value = "eve"
    panel.form.save_button.click()
    assert [code for _, code in panel.list.options] == ["ann", "dan", "eve"]
    assert panel.list.value == "eve"
    assert "Saved user eve" in panel.form.status.value


# --------------------------------------------------------------------------- password


def test_a_stock_password_widget_would_echo_the_secret(sent: Recorder) -> None:
    """The control: the recorder sees ipywidgets' echo, so the checks below can fail."""
    stock = widgets.Password()
    type_into(stock, CANARY)
    assert leaks(CANARY, sent.dump())


def test_password_mismatch_is_shown_and_both_fields_are_cleared(sent: Recorder) -> None:
    secrets = MemorySecretStore()
    key = secret_key("default", "org")
    panel = PasswordPanel(secrets, key)
    type_into(panel.password, CANARY)
    type_into(panel.confirmation, CANARY + "x")
    panel.save_button.click()
    assert "differ" in panel.confirmation_error.value
    assert (panel.password.value, panel.confirmation.value) == ("", "")
    assert secrets.get(key) is None
    assert not panel.saved

    panel.save_button.click()  # nothing typed
    assert "empty" in panel.password_error.value
    assert not leaks(CANARY, sent.dump())
    assert not leaks(CANARY, sent.states())


def test_matching_password_is_stored_and_leaves_no_trace_in_widgets(sent: Recorder) -> None:
    secrets = MemorySecretStore()
    key = secret_key("default", "org")
    panel = PasswordPanel(secrets, key)
    type_into(panel.password, CANARY)
    type_into(panel.confirmation, CANARY)
    panel.save_button.click()

    assert panel.saved
    assert "Password saved" in panel.status.value
    assert secrets.get(key) == Secret(CANARY)
    assert (panel.password.value, panel.confirmation.value) == ("", "")
    assert any(isinstance(m, dict) and m.get("state") == {"value": ""} for m in sent.messages), (
        "clearing the fields must reach the browser"
    )
    assert not leaks(CANARY, sent.dump())
    assert not leaks(CANARY, sent.states())
    assert CANARY not in repr(panel.widget)


def test_a_users_own_password_is_saved_under_their_account_and_leaves_no_trace(
    org_store: Store, sent: Recorder
) -> None:
    secrets = MemorySecretStore()
    form = UserForm(org_store, secrets=secrets)
    assert form.passwords is not None
    fields = form.fields
    type_into(fields["user_code"].input, "alice")
    fields["display_name"].input.value = "Alice"
    fields["override_enabled"].input.value = True
    type_into(fields["username"].input, "alice")
    assert "their own account (alice)" in form.password_note.value
    type_into(form.passwords.password, CANARY)
    type_into(form.passwords.confirmation, CANARY)
    form.save_button.click()

    key = secret_key("default", "alice")
    assert secrets.get(key) == Secret(CANARY)
    assert "Saved user alice and the password" in form.status.value
    assert (form.passwords.password.value, form.passwords.confirmation.value) == ("", "")
    assert form.has_password is True
    assert "A password is stored" in form.password_note.value
    saved = org_store.get_user("alice")
    assert saved is not None
    assert saved.username == "alice"
    for where in (sent.dump(), sent.states(), repr(form.widget), form.status.value):
        assert not leaks(CANARY, where)

    fields["display_name"].input.value = "Alice Smith"  # boxes left empty: password untouched
    form.save_button.click()
    assert "the password" not in form.status.value
    assert secrets.get(key) == Secret(CANARY)


def test_a_password_that_differs_from_its_confirmation_saves_nothing(
    org_store: Store, sent: Recorder
) -> None:
    secrets = MemorySecretStore()
    form = UserForm(org_store, secrets=secrets)
    assert form.passwords is not None
    type_into(form.fields["user_code"].input, "bob")
    type_into(form.passwords.password, CANARY)
    type_into(form.passwords.confirmation, CANARY + "x")
    form.save_button.click()
    assert "differ" in form.passwords.confirmation_error.value
    assert "Nothing was saved" in form.status.value
    assert (form.passwords.password.value, form.passwords.confirmation.value) == ("", "")
    assert org_store.get_user("bob") is None
    assert secrets.get(secret_key("default", "bob")) is None
    assert form.fields["user_code"].input.value == "bob"  # what was typed is still there

    type_into(form.passwords.password, CANARY)  # typed again, alike: both saved
    type_into(form.passwords.confirmation, CANARY)
    assert not form.passwords.confirmation_error.value
    form.save_button.click()
    assert org_store.get_user("bob") is not None
    assert secrets.get(secret_key("default", "bob")) == Secret(CANARY)
    assert not leaks(CANARY, sent.dump())
    assert not leaks(CANARY, sent.states())


def test_with_invalid_settings_the_password_is_neither_stored_nor_kept(
    org_store: Store, sent: Recorder
) -> None:
    secrets = MemorySecretStore()
    form = UserForm(org_store, secrets=secrets)
    assert form.passwords is not None
    type_into(form.fields["user_code"].input, "carol")
    form.fields["override_enabled"].input.value = True
    type_into(form.fields["port"].input, "99999")
    type_into(form.passwords.password, CANARY)
    type_into(form.passwords.confirmation, CANARY)
    form.save_button.click()
    assert "out of range" in form.fields["port"].error.value
    assert "Type the password again" in form.passwords.password_error.value
    assert (form.passwords.password.value, form.passwords.confirmation.value) == ("", "")
    assert secrets.get(secret_key("default", "carol")) is None
    assert org_store.get_user("carol") is None
    assert not leaks(CANARY, sent.dump())


def test_a_store_that_refuses_the_password_saves_nothing_and_says_why(
    org_store: Store,
) -> None:
    form = UserForm(org_store, secrets=EnvSecretStore(environ={}))
    assert form.passwords is not None
    type_into(form.fields["user_code"].input, "dan")
    type_into(form.passwords.password, CANARY)
    type_into(form.passwords.confirmation, CANARY)
    form.save_button.click()
    assert "the password was not stored" in form.general.value
    assert "Nothing was saved" in form.status.value
    assert org_store.get_user("dan") is None
    assert CANARY not in form.general.value


def test_a_user_code_that_cannot_name_a_secret_is_said_before_anything_is_saved(
    org_store: Store,
) -> None:
    secrets = MemorySecretStore()
    form = UserForm(org_store, secrets=secrets)
    assert form.passwords is not None
    type_into(form.fields["user_code"].input, "ops:night")  # a valid code; ':' splits keys
    assert "No password can be stored under this user code" in form.password_note.value
    type_into(form.passwords.password, CANARY)
    type_into(form.passwords.confirmation, CANARY)
    form.save_button.click()  # no exception escapes the button
    assert "No password can be stored" in form.fields["user_code"].error.value
    assert org_store.get_user("ops:night") is None
    assert (form.passwords.password.value, form.passwords.confirmation.value) == ("", "")
    form.save_button.click()  # without a password the user itself is fine
    assert org_store.get_user("ops:night") is not None


def test_a_password_typed_for_one_user_never_reaches_another(
    org_store: Store, sent: Recorder
) -> None:
    org_store.put_user(UserSettings(user_code="fay"))
    org_store.put_user(UserSettings(user_code="gus"))
    secrets = MemorySecretStore()
    panel = UsersPanel(org_store, secrets=secrets)
    assert panel.form.passwords is not None
    panel.list.value = "fay"
    type_into(panel.form.passwords.password, CANARY)
    type_into(panel.form.passwords.confirmation, CANARY)
    panel.list.value = "gus"  # picked another user before saving: the boxes are emptied
    assert (panel.form.passwords.password.value, panel.form.passwords.confirmation.value) == (
        "",
        "",
    )
    panel.form.save_button.click()
    assert secrets.get(secret_key("default", "gus")) is None
    assert secrets.get(secret_key("default", "fay")) is None
    assert not leaks(CANARY, sent.dump())


def test_the_password_note_says_when_the_org_account_is_used(org_store: Store) -> None:
    org_store.set_org(OrgSettings(host="smtp.example.com", port=587, username="it@example.com"))
    org_store.put_user(UserSettings(user_code="erin"))
    form = UserForm(org_store, org_store.get_user("erin"), secrets=MemorySecretStore())
    assert "organisation's account (it@example.com)" in form.password_note.value
    assert "No password is stored yet" in form.password_note.value
    form.fields["override_enabled"].input.value = True
    form.fields["username"].input.value = "erin@example.com"
    assert "their own account (erin@example.com)" in form.password_note.value
    assert UserForm(org_store).passwords is None  # no secret store: no password boxes


def test_password_boxes_are_wide_enough_for_their_placeholder(org_store: Store) -> None:
    boxes = [
        *PasswordPanel(MemorySecretStore(), secret_key("default", "org"))
        .widget.children[1]
        .children,
        *(UserForm(org_store, secrets=MemorySecretStore()).passwords.widget.children),  # type: ignore[union-attr]
    ]
    inputs = [box for box in boxes if isinstance(box, SecretInput)]
    assert len(inputs) == 4
    label = int(DESCRIPTION_WIDTH.removesuffix("px"))
    for box in inputs:
        assert str(box.layout.width).endswith("px")
        room = int(box.layout.width.removesuffix("px")) - label
        # 8 px a character is generous for JupyterLab's 13 px sans-serif, plus padding.
        assert room >= 8 * len(box.placeholder) + 16, (box.placeholder, box.layout.width)
    stock = widgets.Password(description="Password", placeholder="type the password")
    assert not stock.layout.width  # the control: ipywidgets' default is what cut it off


def test_saving_a_password_goes_stale_when_a_new_one_is_typed() -> None:
    panel = PasswordPanel(MemorySecretStore(), secret_key("default", "org"))
    type_into(panel.password, CANARY)
    type_into(panel.confirmation, CANARY)
    panel.save_button.click()
    assert "Password saved" in panel.status.value
    type_into(panel.password, "another")
    assert "Password saved" not in panel.status.value
    assert "Not saved yet" in panel.status.value


# --------------------------------------------------------------------------- passphrase

PASSPHRASE = "canary-Passphrase-Wdg-3k"


@pytest.fixture
def secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FileSecretStore]:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    store = FileSecretStore(tmp_path / "demo.secrets")
    yield store
    store.lock()  # the unlock is for the whole process: leave none behind


def test_a_new_secrets_file_takes_its_passphrase_twice_and_unlocks_the_kernel(
    secrets_file: FileSecretStore, sent: Recorder
) -> None:
    panel = PassphrasePanel(secrets_file)
    assert str(secrets_file.path) in panel.store_note.value
    assert not panel.unlocked
    assert panel.confirmation.layout.display != "none"  # a new file: asked twice
    type_into(panel.passphrase, PASSPHRASE)
    type_into(panel.confirmation, PASSPHRASE + "x")
    panel.unlock_button.click()
    assert "differ" in panel.error.value
    assert not panel.unlocked
    assert (panel.passphrase.value, panel.confirmation.value) == ("", "")

    type_into(panel.passphrase, PASSPHRASE)
    type_into(panel.confirmation, PASSPHRASE)
    panel.unlock_button.click()
    assert panel.unlocked
    assert "Unlocked for this kernel" in panel.status.value
    assert panel.form.layout.display == "none"
    other = FileSecretStore(secrets_file.path)  # another panel or send of the same kernel
    other.set_password(secret_key("demo", "org"), CANARY, CANARY)
    assert secrets_file.get(secret_key("demo", "org")) == Secret(CANARY)
    assert PASSPHRASE.encode() not in secrets_file.path.read_bytes()
    for secret in (PASSPHRASE, CANARY):
        assert not leaks(secret, sent.dump())
        assert not leaks(secret, sent.states())


def test_a_wrong_passphrase_is_said_and_unlocks_nothing(
    secrets_file: FileSecretStore, sent: Recorder
) -> None:
    FileSecretStore(secrets_file.path, passphrase=PASSPHRASE).set(
        secret_key("demo", "org"), Secret(CANARY)
    )
    before = secrets_file.path.read_bytes()
    panel = PassphrasePanel(secrets_file)
    assert panel.confirmation.layout.display == "none"  # an existing file: asked once
    assert "Locked" in panel.status.value
    type_into(panel.passphrase, "not-" + PASSPHRASE)
    panel.unlock_button.click()
    assert "passphrase" in panel.error.value.lower()
    assert "wrong" in panel.error.value.lower()
    assert not panel.unlocked
    assert secrets_file.path.read_bytes() == before
    type_into(panel.passphrase, PASSPHRASE)
    assert panel.passphrase.value == PASSPHRASE
    panel.unlock_button.click()
    assert panel.unlocked
    assert not panel.error.value
    assert secrets_file.get(secret_key("demo", "org")) == Secret(CANARY)
    assert not leaks(PASSPHRASE, sent.dump())


def test_the_panel_says_which_store_is_in_use(
    secrets_file: FileSecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = PassphrasePanel(MemorySecretStore())
    assert "in-memory" in memory.store_note.value
    assert memory.unlocked
    assert memory.form.layout.display == "none"
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    by_env = PassphrasePanel(secrets_file)
    assert by_env.unlocked
    assert f"Unlocked by {PASSPHRASE_ENV}" in by_env.status.value
    by_env.require()  # unlocked: a notebook goes on
    monkeypatch.delenv(PASSPHRASE_ENV)
    locked = PassphrasePanel(secrets_file)
    with pytest.raises(SecretsLockedError, match="press Unlock"):
        locked.require()  # locked: Run All stops here, saying what to do


# --------------------------------------------------------------------------- test send


@pytest.fixture
def server_org(smtp_server: MailServer) -> OrgSettings:
    return OrgSettings(
        host="localhost",
        port=smtp_server.starttls_port,
        security="starttls",
        ca_file=str(smtp_server.ca_file),
        username=smtp_server.user,
        from_address="alice@example.com",
        connect_timeout=5,
        command_timeout=5,
    )


def org_secrets(password: str) -> MemorySecretStore:
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "org"), password, password)
    return secrets


def test_test_send_shows_the_live_transcript_and_a_green_card(
    server_org: OrgSettings, smtp_server: MailServer, store: Store, sent: Recorder
) -> None:
    panel = TestSendPanel(
        server_org, secrets=org_secrets(smtp_server.password), profile="default", store=store
    )
    drawn: list[int] = []
    panel.transcript.observe(
        lambda change: drawn.append(change["new"].count("<tr ")), names="value"
    )
    panel.to.value = "bob@example.org"
    panel.send_button.click()

    result = panel.result
    assert result is not None
    assert result.ok, result.diagnosis
    assert panel.last_task is None  # no running loop: it ran to completion
    assert "Test message accepted" in panel.card.value
    assert result.message_id is not None
    assert html.escape(result.message_id) in panel.card.value
    assert len(panel.rows) == len(result.transcript) > 5
    assert drawn[0] == 1
    assert drawn == sorted(drawn)
    assert len(drawn) >= len(panel.rows)
    assert not panel.send_button.disabled
    assert [m.rcpt_tos for m in smtp_server.messages] == [("bob@example.org",)]
    assert store.history_frame(None)["ok"].tolist() == [True]
    assert not leaks(smtp_server.password, sent.dump())
    assert not leaks(smtp_server.password, sent.states())


def test_wrong_password_gives_the_red_card_with_fix_steps(
    server_org: OrgSettings, smtp_server: MailServer, sent: Recorder
) -> None:
    panel = TestSendPanel(lambda: server_org, secrets=org_secrets(CANARY), profile="default")
    panel.to.value = "bob@example.org"
    panel.send_button.click()

    result = panel.result
    assert result is not None
    assert not result.ok
    assert result.diagnosis is not None
    card = panel.card.value
    assert result.diagnosis.phase.value == "auth"
    assert "<ol>" in card
    assert card.count("<li>") >= len(result.diagnosis.fix) >= 1
    assert html.escape(result.diagnosis.title) in card
    shown = result.diagnosis.for_face(Face.WIDGET, Where(profile="default", account="org"))
    assert all(html.escape(step) in card for step in shown.fix)  # in the form's words
    assert "auth" in card
    assert result.diagnosis.cause.value in card
    assert panel.rows
    assert "AUTH" in panel.transcript.value
    assert not smtp_server.messages
    for secret in (CANARY, smtp_server.password):
        assert not leaks(secret, sent.dump())
        assert not leaks(secret, sent.states())


def test_test_send_as_a_user_uses_the_user_override(
    server_org: OrgSettings, smtp_server: MailServer
) -> None:
    user = UserSettings(
        user_code="dora@example.com", override_enabled=True, from_address="dora@example.com"
    )
    panel = TestSendPanel(
        server_org, lambda: user, secrets=org_secrets(smtp_server.password), profile="default"
    )
    panel.to.value = "bob@example.org"
    panel.send_button.click()
    assert panel.result is not None
    assert panel.result.ok
    assert smtp_server.messages[0].mail_from == "dora@example.com"


def test_in_a_running_loop_the_send_is_a_task_and_the_ui_stays_free(
    server_org: OrgSettings, smtp_server: MailServer
) -> None:
    async def notebook() -> None:
        panel = TestSendPanel(
            server_org, secrets=org_secrets(smtp_server.password), profile="default"
        )
        panel.to.value = "bob@example.org"
        panel.send_button.click()
        task = panel.last_task
        assert task is not None
        assert not task.done()
        assert panel.send_button.disabled
        assert panel.result is None
        panel.send_button.click()  # a second click while sending is ignored
        assert panel.last_task is task
        await asyncio.wait_for(task, 30)
        assert panel.result is not None
        assert panel.result.ok
        assert not panel.send_button.disabled
        assert panel.rows
        assert "Test message accepted" in panel.card.value

    asyncio.run(notebook())
    assert len(smtp_server.messages) == 1


def test_the_test_panel_says_whose_settings_and_credentials_it_tests() -> None:
    org = OrgSettings(host="smtp.corp.local", username="it@corp.local")
    alice = UserSettings(user_code="alice", display_name="Alice", email="alice@corp.local")
    own = UserSettings.model_validate(
        {**alice.model_dump(), "override_enabled": True, "username": "alice"}
    )
    assert whose_test(org, None) == (
        "Testing the organisation's settings, signing in with the organisation's account "
        "it@corp.local."
    )
    assert whose_test(org, alice).startswith("Testing Alice (alice@corp.local): the organisation")
    assert "signing in with the organisation's account it@corp.local" in whose_test(org, alice)
    assert "signing in with their own account alice" in whose_test(org, own)
    assert "their own user name;" in whose_test(org, own)
    graph = UserSettings.model_validate({**own.model_dump(), "mode": "microsoft_graph"})
    assert "their own OAuth sign-in" in whose_test(org, graph)

    picked: list[UserSettings | None] = [None]
    panel = TestSendPanel(org, lambda: picked[0], secrets=MemorySecretStore())
    assert "organisation's settings" in panel.who.value
    picked[0] = own
    panel.describe()
    assert "Alice" in panel.who.value
    assert "their own account alice" in panel.who.value


def test_the_transcript_headers_are_words_and_the_dataframe_keeps_its_columns() -> None:
    transcript = Transcript(
        (Row(1.0, datetime.now(UTC), Direction.SERVER, Phase.GREETING, False, 220, "ready"),)
    )
    view = transcript.to_html()
    heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", view)
    assert heads == ["Time (ms)", "Direction", "Phase", "TLS", "Code", "Text"]
    assert list(transcript.to_dataframe().columns) == list(COLUMNS)
    assert "t_ms" in COLUMNS  # the API names stay


# --------------------------------------------------------------------------- display


def test_every_panel_displays_as_its_widget(store: Store) -> None:
    secrets = MemorySecretStore()
    panels = [
        OrgForm(store),
        UserForm(store),
        UsersPanel(store),
        PasswordPanel(secrets, secret_key("default", "org")),
        PassphrasePanel(secrets),
        TestSendPanel(OrgSettings(), secrets=secrets),
        PresetChooser(SmtpSection()),
    ]
    for panel in panels:
        bundle = panel._repr_mimebundle_()
        view = bundle["application/vnd.jupyter.widget-view+json"]
        assert view["model_id"] == panel.widget.model_id
