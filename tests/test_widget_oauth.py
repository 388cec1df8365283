"""The OAuth walkthrough widgets, headless, against the demo's fake Google and Microsoft.

The widgets are driven as a person would: set values, click buttons; ``visit()`` is the
person's browser (it approves, and returns the address the browser ended at or delivers the
answer to the loopback listener). Every message the kernel would send to the browser is kept
by a recording comm, and every widget's state is read at the end, so the secret checks see
what a browser or a saved notebook could see: no token, no client secret, no PKCE verifier.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import comm
import ipywidgets as widgets  # type: ignore[import-untyped]
import pytest

from mailkit.demo import DemoServer
from mailkit.demo.oauth import DEMO_TENANT, GOOGLE_CLIENT_SECRET, MICROSOFT_CLIENT_ID, visit
from mailkit.oauth import GMAIL_SEND_SCOPE, GMAIL_SMTP_SCOPE, GRAPH_SEND_SCOPE, OUTLOOK_SMTP_SCOPE
from mailkit.outcome import Cause
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import OrgSettings
from mailkit.widgets import GoogleWalkthrough, MicrosoftWalkthrough

pytestmark = pytest.mark.timeout(60)

TO = "you@example.org"
#: What the fake's tokens start with, and the demo client's secret: never in a widget.
NEVER_SHOWN = ("fake-at-", "fake-rt-", GOOGLE_CLIENT_SECRET)


# --------------------------------------------------------------------------- recording comm


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def dump(self) -> str:
        return json.dumps(self.messages, default=str)


class RecordingComm:
    """Stands in for the kernel's comm and keeps everything that would go to the browser."""

    kernel = "recording"  # ipywidgets sends only through a comm that has a kernel

    def __init__(self, log: Recorder, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self._log = log
        log.messages.append({"comm_open": kwargs.get("data")})

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self._log.messages.append(data)

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(recorder, **kwargs))
    return recorder


def all_widgets(root: Any) -> Iterator[Any]:
    """``root`` and every widget reachable from it: children, layouts, styles, sub-widgets."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        for name in widget.keys:
            value = getattr(widget, name)
            values = value if isinstance(value, list | tuple) else [value]
            todo.extend(v for v in values if isinstance(v, widgets.Widget))


def shown(panel: Any, recorder: Recorder) -> str:
    states = [w.get_state() for w in all_widgets(panel.widget)]
    return json.dumps(states, default=str) + recorder.dump()


def assert_nothing_secret(panel: Any, recorder: Recorder, *extra: str) -> None:
    text = shown(panel, recorder)
    for needle in (*NEVER_SHOWN, *extra):
        assert needle not in text, f"{needle!r} reached a widget"


def type_into(widget: Any, text: str) -> None:
    """What the browser does when someone types or pastes: a state update from the frontend."""
    widget.set_state({"value": text})


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def demo(fake_oauth_demo: DemoServer) -> DemoServer:
    fake_oauth_demo.oauth.device_interval = 0  # MSAL polls at once: fast tests
    return fake_oauth_demo


@pytest.fixture
def secrets() -> MemorySecretStore:
    return MemorySecretStore()


def demo_org(demo: DemoServer) -> OrgSettings:
    return demo.settings.org(
        api_url=demo.settings.api_url,
        oauth_client_id=MICROSOFT_CLIENT_ID,
        oauth_tenant=DEMO_TENANT,
    )


def google(demo: DemoServer, secrets: MemorySecretStore, **options: Any) -> GoogleWalkthrough:
    return GoogleWalkthrough(
        secrets, org=demo_org(demo), ca_file=demo.settings.ca_file, timeout=20, **options
    )


def microsoft(demo: DemoServer, secrets: MemorySecretStore, **options: Any) -> MicrosoftWalkthrough:
    return MicrosoftWalkthrough(
        secrets,
        org=demo_org(demo),
        authority_base=demo.settings.oauth_url or "",
        ca_file=demo.settings.ca_file,
        timeout=20,
        **options,
    )


def client_json(demo: DemoServer) -> bytes:
    return json.dumps(demo.settings.google_client_config()).encode()


def upload(panel: GoogleWalkthrough, data: bytes, name: str = "client_secret.json") -> None:
    """What choosing a file in the browser's upload dialog sends to the kernel."""
    panel.upload.set_state(
        {
            "value": [
                {
                    "name": name,
                    "type": "application/json",
                    "size": len(data),
                    "last_modified": 0,
                    "content": memoryview(data),
                }
            ]
        }
    )


def send(panel: Any) -> Any:
    panel.test.to.value = TO
    panel.test.send_button.click()  # no running loop here: the send completes in click()
    assert panel.test.result is not None, panel.test.error.value
    return panel.test.result


# --------------------------------------------------------------------------- Google


def test_google_upload_paste_back_gmail_api_and_revoke(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    panel = google(demo, secrets)
    assert "Not signed in" in panel.status.value

    upload(panel, client_json(demo))
    assert "mailkit-demo.apps.googleusercontent.com" in panel.config_status.value
    assert panel.upload.value == ()  # the file held the client secret
    assert panel.purpose.value == "gmail_api"
    assert GMAIL_SEND_SCOPE in panel.purpose_note.value

    panel.login_hint.value = "demo@example.com"
    panel.start_button.click()
    url = panel.sign_in_url
    assert url is not None
    assert url in panel.sign_in.value.replace("&amp;", "&")
    assert (
        "text-decoration:underline" in panel.sign_in.value
    )  # JupyterLab leaves widget links plain
    assert panel._consent is not None
    verifier = panel._consent._flow.code_verifier
    assert verifier
    type_into(panel.redirected, visit(url, demo.settings.ca_file))  # the person pastes
    panel.finish_button.click()

    assert panel.redirected.value == ""
    assert panel.signed_in is not None
    assert panel.signed_in.account == "demo@example.com"
    assert panel.signed_in.scopes == (GMAIL_SEND_SCOPE,)
    assert "Signed in as demo@example.com" in panel.status.value
    assert "in-memory secret store" in panel.status.value
    stored = secrets.get(secret_key("default", "org", "google_oauth_token"))
    assert stored is not None
    assert "fake-rt-" in stored.reveal()
    assert secrets.get(secret_key("default", "org", "google_client_secret")) is not None

    result = send(panel)
    assert result.ok, result.diagnosis
    assert list(demo.mailbox()["via"]) == ["gmail_api"]
    assert "Test message accepted" in panel.test.card.value

    panel.revoke_button.click()
    assert "Google revoked the grant" in panel.revoke_status.value
    assert panel.signed_in is None
    assert (panel.test.card.value, panel.test.transcript.value) == ("", "")  # not "accepted"
    assert panel.test.to.value == TO
    assert secrets.get(secret_key("default", "org", "google_oauth_token")) is None
    after = send(panel)
    assert not after.ok
    assert after.diagnosis is not None
    assert after.diagnosis.cause is Cause.TOKEN_MISSING
    assert "token_missing" in panel.test.card.value

    # Signing in again takes the red card away: it no longer describes the stored token.
    panel.start_button.click()
    type_into(panel.redirected, visit(panel.sign_in_url or "", demo.settings.ca_file))
    panel.finish_button.click()
    assert panel.signed_in is not None
    assert (panel.test.card.value, panel.test.transcript.value) == ("", "")
    assert panel.test.result is None
    assert_nothing_secret(panel, sent, verifier)


def test_google_loopback_then_xoauth2_over_smtp(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    panel = google(demo, secrets, client_config=demo.settings.google_client_config())
    assert "given by the notebook" in panel.config_status.value
    panel.purpose.value = "smtp"
    assert "restricted scope" in panel.purpose_note.value
    panel.method.value = "loopback"
    panel.start_button.click()
    assert panel.waiting  # the notebook is free while the browser is away
    assert "Waiting for the browser" in panel.status.value
    visit(panel.sign_in_url or "", demo.settings.ca_file)  # delivers to the listener

    assert panel.join(15)
    assert panel.signed_in is not None
    assert panel.signed_in.scopes == (GMAIL_SMTP_SCOPE,)
    result = send(panel)
    assert result.ok, result.diagnosis
    assert result.auth_mechanism == "XOAUTH2"
    assert list(demo.mailbox()["via"]) == ["smtp"]
    assert "AUTH XOAUTH2" in panel.test.card.value
    assert_nothing_secret(panel, sent)


def test_google_pasted_client_json_problems_are_listed_by_field(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    panel = google(demo, secrets)
    broken = demo.settings.google_client_config()
    broken["installed"]["client_id"] = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    broken["installed"]["token_uri"] = "http://127.0.0.1/token"
    type_into(panel.paste_config, json.dumps(broken))
    panel.use_button.click()

    assert panel.paste_config.value == ""  # emptied, whatever it held
    assert panel.config is None
    errors = panel.config_errors.value
    assert "installed.client_id" in errors
    assert "Microsoft application id" in errors
    assert "installed.token_uri" in errors
    assert "https://" in errors

    type_into(panel.paste_config, json.dumps({"type": "service_account", "private_key": "x"}))
    panel.use_button.click()
    assert "service-account key" in panel.config_errors.value

    panel.start_button.click()  # no client yet: said so, nothing started
    assert panel.sign_in_url is None
    assert "load the OAuth client first" in panel.config_errors.value

    type_into(panel.paste_config, client_json(demo).decode())
    panel.use_button.click()
    assert panel.config is not None
    assert panel.config_errors.value == ""
    assert_nothing_secret(panel, sent)


def test_google_denied_consent_shows_the_diagnosis(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    demo.oauth.consent = "access_denied"
    panel = google(demo, secrets, client_config=demo.settings.google_client_config())
    panel.start_button.click()
    assert not panel.finish(visit(panel.sign_in_url or "", demo.settings.ca_file))

    assert panel.diagnosis is not None
    assert panel.diagnosis.cause is Cause.CONSENT_DENIED
    assert "Not signed in" in panel.status.value
    assert panel.diagnosis.title in panel.card.value
    assert secrets.get(secret_key("default", "org", "google_oauth_token")) is None


def test_google_pasting_something_else_says_what_to_paste(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    panel = google(demo, secrets, client_config=demo.settings.google_client_config())
    panel.start_button.click()
    type_into(panel.redirected, "I approved it")
    panel.finish_button.click()
    assert "address bar" in panel.paste_error.value
    assert panel.signed_in is None
    assert panel.sign_in_url is not None  # try again


def test_a_waiting_sign_in_can_be_cancelled(demo: DemoServer, secrets: MemorySecretStore) -> None:
    panel = google(demo, secrets, client_config=demo.settings.google_client_config())
    panel.method.value = "loopback"
    panel.start_button.click()
    assert panel.waiting
    panel.cancel_button.click()
    assert not panel.waiting
    assert not panel.join(5)
    assert "cancelled" in panel.status.value
    assert panel.diagnosis is None


def test_a_stored_consent_is_shown_by_a_new_walkthrough(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    first = google(demo, secrets, client_config=demo.settings.google_client_config())
    first.start_button.click()
    assert first.finish(visit(first.sign_in_url or "", demo.settings.ca_file))

    again = google(demo, secrets)
    assert again.signed_in is not None
    assert again.signed_in.expires_at > datetime.now(UTC)
    assert "Signed in as demo@example.com" in again.status.value


# --------------------------------------------------------------------------- Microsoft


def test_microsoft_device_code_graph_send_and_revoke(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    panel = microsoft(demo, secrets)
    assert panel.client_id.value == MICROSOFT_CLIENT_ID  # from the org settings
    assert panel.tenant.value == DEMO_TENANT
    assert panel.purpose.value == "microsoft_graph"
    assert panel.method.value == "device_code"

    panel.start_button.click()
    assert panel.user_code is not None
    assert panel.user_code in panel.sign_in.value
    assert (panel.sign_in_url or "").endswith("/devicelogin")
    assert panel.join(15), panel.status.value  # the fake approves after one poll

    assert panel.signed_in is not None
    assert panel.signed_in.scopes[0] == GRAPH_SEND_SCOPE  # MSAL adds offline_access …
    assert "Signed in as demo@example.com" in panel.status.value
    assert panel.sign_in.value == ""
    assert secrets.get(secret_key("default", "org", "microsoft_oauth_token")) is not None
    result = send(panel)
    assert result.ok, result.diagnosis
    assert list(demo.mailbox()["via"]) == ["graph"]

    panel.revoke_button.click()
    assert "removed from the token cache" in panel.revoke_status.value
    assert "myapps.microsoft.com" in panel.revoke_status.value
    assert secrets.get(secret_key("default", "org", "microsoft_oauth_token")) is None
    assert_nothing_secret(panel, sent)


def test_microsoft_browser_sign_in_then_xoauth2_over_smtp(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    panel = microsoft(demo, secrets)
    panel.purpose.value = "smtp"
    assert "SMTP AUTH must still be enabled" in panel.purpose_note.value
    panel.method.value = "loopback"
    panel.start_button.click()
    assert panel.waiting
    visit(panel.sign_in_url or "", demo.settings.ca_file)  # posts the answer to the listener

    assert panel.join(15), panel.status.value
    assert panel.signed_in is not None
    assert panel.signed_in.scopes[0] == OUTLOOK_SMTP_SCOPE
    result = send(panel)
    assert result.ok, result.diagnosis
    assert result.auth_mechanism == "XOAUTH2"
    assert_nothing_secret(panel, sent)


def test_microsoft_declined_device_code_shows_the_diagnosis(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    demo.oauth.device_outcome = "decline"
    panel = microsoft(demo, secrets)
    panel.start_button.click()

    assert not panel.join(15)
    assert panel.diagnosis is not None
    assert panel.diagnosis.cause is Cause.DEVICE_CODE_DECLINED
    assert "declined" in panel.card.value
    assert panel.use_browser_button.layout.display == "none"  # not the tenant's policy


def test_a_tenant_blocking_device_codes_gets_the_browser_sign_in_offered(
    demo: DemoServer, secrets: MemorySecretStore, sent: Recorder
) -> None:
    demo.oauth.device_outcome = "blocked"
    panel = microsoft(demo, secrets)
    panel.start_button.click()
    assert not panel.join(15)

    assert panel.diagnosis is not None
    assert panel.diagnosis.cause is Cause.DEVICE_CODE_BLOCKED
    assert "Use the browser sign-in instead" in panel.card.value
    assert panel.use_browser_button.layout.display is None  # offered

    panel.use_browser_button.click()
    assert panel.method.value == "loopback"
    visit(panel.sign_in_url or "", demo.settings.ca_file)
    assert panel.join(15), panel.status.value
    assert panel.diagnosis is None
    assert panel.card.value == ""
    assert_nothing_secret(panel, sent)


def test_microsoft_settings_problems_are_shown_per_field(secrets: MemorySecretStore) -> None:
    panel = MicrosoftWalkthrough(secrets, client_id="not-a-guid", tenant="two words")
    panel.start_button.click()

    assert "not a Microsoft application (client) id" in panel.client_id_error.value
    assert "is not a tenant" in panel.tenant_error.value
    assert panel.sign_in_url is None
    assert "fix the OAuth settings" in panel.status.value

    panel.client_id.value = MICROSOFT_CLIENT_ID
    panel.tenant.value = DEMO_TENANT
    panel.authority_base = "http://127.0.0.1"
    panel.start_button.click()
    assert panel.client_id_error.value == ""
    assert panel.tenant_error.value == ""
    assert "authority_base" in panel.config_errors.value  # no field of its own: said above


def test_without_an_org_the_test_send_goes_to_the_providers_own_servers(
    secrets: MemorySecretStore,
) -> None:
    panel = MicrosoftWalkthrough(secrets, client_id=MICROSOFT_CLIENT_ID)
    assert panel.tenant.value == "organizations"
    panel.purpose.value = "smtp"
    org = panel.test_org()
    assert (org.host, org.port, org.auth) == ("smtp.office365.com", 587, "xoauth2")
    gmail = GoogleWalkthrough(secrets)
    gmail.purpose.value = "smtp"
    assert gmail.test_org().host == "smtp.gmail.com"
    gmail.purpose.value = "gmail_api"
    assert gmail.test_org().mode == "gmail_api"
