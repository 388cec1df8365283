"""Issue 5 end to end: consent → token in the secret store → a test send that uses it.

Everything runs against the demo server with its fake OAuth provider, through the same calls a
notebook makes: the consent classes of :mod:`mailkit.oauth` and :func:`mailkit.send_test`, which
finds the stored consent by itself. No token is handed over by hand.
"""

from __future__ import annotations

import json

import pytest

from mailkit.demo import DemoServer
from mailkit.demo.oauth import DEMO_TENANT, MICROSOFT_CLIENT_ID, visit
from mailkit.oauth import (
    GMAIL_SEND_SCOPE,
    GMAIL_SMTP_SCOPE,
    GRAPH_SEND_SCOPE,
    OUTLOOK_SMTP_SCOPE,
    GoogleClientConfig,
    GoogleOAuth,
    MicrosoftOAuth,
    OAuthToken,
)
from mailkit.outcome import Cause, Phase
from mailkit.result import TestResult
from mailkit.secrets import MemorySecretStore
from mailkit.settings import AuthType, Mode, OrgSettings
from mailkit.testsend import send_test

TO = ["audit@example.org"]


@pytest.fixture
def demo(fake_oauth_demo: DemoServer) -> DemoServer:
    fake_oauth_demo.oauth.device_interval = 0  # MSAL polls at once: fast tests
    return fake_oauth_demo


@pytest.fixture
def secrets() -> MemorySecretStore:
    return MemorySecretStore()


def _google(demo: DemoServer, secrets: MemorySecretStore) -> GoogleOAuth:
    config = GoogleClientConfig.load(demo.settings.google_client_config())
    return GoogleOAuth(config, secrets=secrets, ca_file=demo.settings.ca_file)


def _microsoft(demo: DemoServer, secrets: MemorySecretStore) -> MicrosoftOAuth:
    return MicrosoftOAuth(
        MICROSOFT_CLIENT_ID,
        secrets=secrets,
        tenant=DEMO_TENANT,
        authority_base=demo.settings.oauth_url or "",
        ca_file=demo.settings.ca_file,
    )


def _google_consent(demo: DemoServer, secrets: MemorySecretStore, scope: str) -> OAuthToken:
    consent = _google(demo, secrets).start_paste([scope], login_hint="demo@example.com")
    return consent.finish(visit(consent.url, demo.settings.ca_file))


def _microsoft_consent(demo: DemoServer, secrets: MemorySecretStore, scope: str) -> OAuthToken:
    consent = _microsoft(demo, secrets).start_device_code([scope])
    return consent.wait(timeout=10)


def _smtp_org(demo: DemoServer) -> OrgSettings:
    return demo.settings.org(auth=AuthType.XOAUTH2)


def _api_org(demo: DemoServer, mode: Mode) -> OrgSettings:
    return demo.settings.org(mode=mode, api_url=demo.settings.api_url)


def _shown(result: TestResult) -> str:
    """Everything a result lets anyone see: JSON, text, HTML, table, repr."""
    return "\n".join(
        [
            json.dumps(result.as_dict(), default=str),
            result.transcript.to_text(),
            result.transcript.to_html(),
            result.transcript.to_dataframe().to_string(),
            repr(result),
        ]
    )


def _assert_hidden(result: TestResult, *tokens: OAuthToken) -> None:
    shown = _shown(result)
    for token in tokens:
        assert token.access_token.reveal() not in shown
        if token.refresh_token is not None:
            assert token.refresh_token.reveal() not in shown


def _delivered_via(demo: DemoServer) -> list[str]:
    return list(demo.mailbox()["via"])


def test_google_consent_then_xoauth2_over_smtp(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    token = _google_consent(demo, secrets, GMAIL_SMTP_SCOPE)

    result = send_test(_smtp_org(demo), to=TO, secrets=secrets)

    assert result.ok, result.diagnosis
    assert result.auth_mechanism == "XOAUTH2"
    assert _delivered_via(demo) == ["smtp"]
    assert demo.mailbox()["auth_user"].tolist() == ["demo@example.com"]
    _assert_hidden(result, token)


def test_google_consent_then_gmail_api_send(demo: DemoServer, secrets: MemorySecretStore) -> None:
    token = _google_consent(demo, secrets, GMAIL_SEND_SCOPE)

    result = send_test(_api_org(demo, Mode.GMAIL_API), to=TO, secrets=secrets)

    assert result.ok, result.diagnosis
    assert _delivered_via(demo) == ["gmail_api"]
    assert [sent.api for sent in demo.oauth.sent] == ["gmail_api"]
    rows = result.transcript.to_dataframe()
    assert any(text.startswith("POST ") for text in rows["text"])
    _assert_hidden(result, token)


def test_microsoft_device_code_then_xoauth2_over_smtp(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    token = _microsoft_consent(demo, secrets, OUTLOOK_SMTP_SCOPE)

    result = send_test(_smtp_org(demo), to=TO, secrets=secrets)

    assert result.ok, result.diagnosis
    assert result.auth_mechanism == "XOAUTH2"
    _assert_hidden(result, token)


def test_microsoft_device_code_then_graph_send(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    token = _microsoft_consent(demo, secrets, GRAPH_SEND_SCOPE)

    result = send_test(_api_org(demo, Mode.MICROSOFT_GRAPH), to=TO, secrets=secrets)

    assert result.ok, result.diagnosis
    assert _delivered_via(demo) == ["graph"]
    _assert_hidden(result, token)


def test_a_token_about_to_expire_is_refreshed_before_the_send(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    demo.oauth.token_lifetime = 30  # inside the 60 s margin: every send refreshes first
    first = _google_consent(demo, secrets, GMAIL_SEND_SCOPE)

    result = send_test(_api_org(demo, Mode.GMAIL_API), to=TO, secrets=secrets)

    assert result.ok, result.diagnosis
    now = _google(demo, secrets).credentials().token()
    assert now.access_token != first.access_token  # refreshed and stored
    assert demo.oauth.check_token(now.access_token.reveal(), {GMAIL_SEND_SCOPE})
    _assert_hidden(result, first, now)


def test_microsoft_refresh_after_expiry_through_the_stored_msal_cache(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    demo.oauth.token_lifetime = 30
    first = _microsoft_consent(demo, secrets, GRAPH_SEND_SCOPE)

    result = send_test(_api_org(demo, Mode.MICROSOFT_GRAPH), to=TO, secrets=secrets)

    assert result.ok, result.diagnosis
    now = _microsoft(demo, secrets).credentials().token()
    assert now.access_token != first.access_token


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_a_revoked_grant_is_diagnosed_at_the_refresh(
    demo: DemoServer, secrets: MemorySecretStore, provider: str
) -> None:
    demo.oauth.token_lifetime = 30
    if provider == "google":
        token = _google_consent(demo, secrets, GMAIL_SEND_SCOPE)
        org = _api_org(demo, Mode.GMAIL_API)
    else:
        token = _microsoft_consent(demo, secrets, GRAPH_SEND_SCOPE)
        org = _api_org(demo, Mode.MICROSOFT_GRAPH)
    demo.oauth.revoke("demo@example.com")  # the user removed the app's access

    result = send_test(org, to=TO, secrets=secrets)

    assert not result.ok
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.TOKEN_REVOKED
    assert result.diagnosis.phase is Phase.TOKEN
    assert demo.oauth.sent == []
    _assert_hidden(result, token)


def test_a_revoked_access_token_is_refused_by_the_smtp_server(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    token = _google_consent(demo, secrets, GMAIL_SMTP_SCOPE)
    demo.oauth.revoke("demo@example.com")  # still "valid" for an hour in the client's eyes

    result = send_test(_smtp_org(demo), to=TO, secrets=secrets)

    assert not result.ok
    assert result.diagnosis is not None
    assert result.diagnosis.phase is Phase.AUTH
    assert result.diagnosis.cause is Cause.OAUTH_TOKEN_INVALID
    assert demo.mailbox().empty
    _assert_hidden(result, token)


def test_a_token_without_the_api_scope_is_diagnosed(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    token = _microsoft_consent(demo, secrets, OUTLOOK_SMTP_SCOPE)  # SMTP only, then Graph

    result = send_test(_api_org(demo, Mode.MICROSOFT_GRAPH), to=TO, secrets=secrets)

    assert not result.ok
    assert result.diagnosis is not None
    assert result.diagnosis.phase is Phase.REQUEST
    assert result.diagnosis.code == 403
    _assert_hidden(result, token)


def test_without_a_consent_the_api_send_asks_for_one(
    demo: DemoServer, secrets: MemorySecretStore
) -> None:
    result = send_test(_api_org(demo, Mode.GMAIL_API), to=TO, secrets=secrets)

    assert not result.ok
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.TOKEN_MISSING
