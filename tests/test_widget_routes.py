"""The routes panel and the desktop parts of the forms (issue 13, points 5 and 6), headless:
values set, buttons clicked, a real SMTP server behind the route's sender, the launcher
injected so nothing real is opened."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import date
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from smtpd_servers import MailServer

from mailkit.errors import UnsafeSettingWarning
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import Mode, OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.widgets import OrgForm, RoutesPanel, TestSendPanel

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "w.sqlite", create=True) as opened:
        yield opened


def server_org(server: MailServer, **more: Any) -> OrgSettings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        return OrgSettings.model_validate(
            {
                "host": server.host,
                "port": server.starttls_port,
                "ca_file": str(server.ca_file),
                "username": server.user,
                "from_address": "it@example.com",
                "connect_timeout": 5,
                "command_timeout": 5,
                **more,
            }
        )


def test_each_route_shows_its_filled_subject_or_why_not(store: Store) -> None:
    store.set_org(
        OrgSettings(
            from_address="it@example.com",
            routes={
                "work_orders": {"enabled": True, "recipients": ["crew@example.org"]},
                "requests": {"sender": "ghost", "recipients": []},
            },
        )
    )
    panel = RoutesPanel(
        store.get_org, store.users, secrets=MemorySecretStore(), today=lambda: date(2026, 1, 2)
    )
    assert set(panel.buttons) == {"requests", "purchase_orders", "work_orders"}
    assert "Work order TEST-0001: mailkit route test" in panel.lines["work_orders"].value
    assert "crew@example.org" in panel.lines["work_orders"].value
    assert "&lt;" not in panel.lines["work_orders"].value  # escaped once, not twice
    said = panel.lines["requests"].value
    assert "“Sender” of the requests route" in said
    assert "“Recipients” of the requests route" in said
    assert "routes.requests" not in said  # the form's words, not the model's path
    panel.buttons["requests"].click()
    assert "cannot be tested yet" in panel.error.value
    assert panel.result is None


def test_the_test_button_sends_the_route_as_its_user(store: Store, smtp_server: MailServer) -> None:
    store.set_org(
        server_org(
            smtp_server,
            username="nobody",
            routes={
                "purchase_orders": {
                    "enabled": True,
                    "sender": "buyer",
                    "recipients": ["vendor@example.org"],
                }
            },
        )
    )
    store.put_user(
        UserSettings(
            user_code="buyer",
            override_enabled=True,
            username=smtp_server.user,
            from_address="purchasing@example.com",
        )
    )
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "buyer"), smtp_server.password, smtp_server.password)
    panel = RoutesPanel(store.get_org, store.users, secrets=secrets, store=store)
    panel.buttons["purchase_orders"].click()
    assert panel.result is not None
    assert panel.result.ok, panel.result.diagnosis and panel.result.diagnosis.to_text()
    assert "Test message accepted" in panel.card.value
    assert "mailkit-transcript" in panel.transcript.value
    (received,) = smtp_server.messages
    assert received.mail_from == "purchasing@example.com"
    assert received.rcpt_tos == ("vendor@example.org",)
    subject = message_from_bytes(received.data, policy=default_policy)["Subject"]
    assert subject.startswith("Purchase order TEST-0001")
    assert list(store.history_frame("buyer")["ok"]) == [True]


def test_a_failing_route_shows_the_diagnosis_in_the_forms_words(
    store: Store, smtp_server: MailServer
) -> None:
    smtp_server.require_auth = True
    store.set_org(
        server_org(
            smtp_server,
            auth="plain",
            routes={"requests": {"enabled": True, "recipients": ["desk@example.org"]}},
        )
    )
    panel = RoutesPanel(store.get_org, store.users, secrets=MemorySecretStore())
    panel.buttons["requests"].click()
    assert panel.result is not None
    assert not panel.result.ok
    assert "password_missing" in panel.card.value
    assert "Save password" in panel.card.value  # where the widget face stores a password


def test_a_desktop_hand_off_offers_open_it_and_opens_with_the_launcher(tmp_path: Path) -> None:
    org = OrgSettings(
        mode=Mode.OUTLOOK, from_address="it@example.com", eml_folder=str(tmp_path / "drafts")
    )
    (tmp_path / "drafts").mkdir()
    opened: list[Path] = []
    panel = TestSendPanel(org, secrets=MemorySecretStore(), launcher=opened.append)
    assert panel.open_button.layout.display == "none"
    panel.to.value = "bob@example.org"
    panel.send()
    assert panel.result is not None
    assert panel.result.ok
    assert "written for Outlook" in panel.card.value
    assert panel.open_button.layout.display != "none"
    assert opened == []  # nothing is opened until asked
    panel.open_button.click()
    assert panel.result.eml_path is not None
    assert opened == [Path(panel.result.eml_path)]
    assert "Opened" in panel.state.value


def test_a_launcher_that_fails_is_said_in_the_panel(tmp_path: Path) -> None:
    def broken(path: Path) -> None:
        raise OSError(2, "no program for .eml files")

    org = OrgSettings(mode=Mode.MAPI, from_address="it@example.com", eml_folder=str(tmp_path))
    panel = TestSendPanel(org, secrets=MemorySecretStore(), launcher=broken)
    panel.to.value = "bob@example.org"
    panel.send()
    assert panel.open_eml() is not None
    assert "Not opened" in panel.state.value


def test_a_missing_folder_is_named_by_its_label_in_the_panel(tmp_path: Path) -> None:
    org = OrgSettings(
        mode=Mode.LOTUS_NOTES, from_address="it@example.com", eml_folder=str(tmp_path / "gone")
    )
    panel = TestSendPanel(org, secrets=MemorySecretStore())
    panel.to.value = "bob@example.org"
    panel.send()
    assert "“Folder for test drafts”" in panel.card.value
    assert "eml_folder" not in panel.card.value
    assert panel.open_button.layout.display == "none"


def test_the_org_form_keeps_the_folder_for_test_drafts(store: Store, tmp_path: Path) -> None:
    form = OrgForm(store)
    form.fields["mode"].input.value = "outlook"
    assert form.sections.visible is Mode.OUTLOOK
    form.fields["eml_folder"].input.value = str(tmp_path)
    form.fields["from_address"].input.value = "it@example.com"
    assert form.save(), form.status.value
    assert store.get_org().eml_folder == str(tmp_path)


def test_the_ews_section_shows_the_url_and_the_user_name(store: Store) -> None:
    form = OrgForm(store)
    form.fields["mode"].input.value = "exchange_ews"
    assert form.sections.visible is Mode.EXCHANGE_EWS
    ews = set(labels(form.sections.sections[Mode.EXCHANGE_EWS]))
    assert {"EWS URL", "Autodiscover", "User name", "Authorization"} <= ews
    desktop = set(labels(form.sections.sections[Mode.MAPI]))
    assert "Folder for test drafts" in desktop


def labels(widget: Any) -> Iterator[str]:
    """Every description in a widget tree."""
    if description := getattr(widget, "description", ""):
        yield description
    for child in getattr(widget, "children", ()) or ():
        yield from labels(child)
