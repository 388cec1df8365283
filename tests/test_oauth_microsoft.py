"""Microsoft OAuth (MSAL) against the local fake: device code, loopback, the stored cache."""

from __future__ import annotations

import http.client
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import pytest
from smtpd_servers import TLSMaterial

from mailkit.demo.oauth import DEMO_TENANT, MICROSOFT_CLIENT_ID, FakeOAuthProvider, visit
from mailkit.errors import OAuthConfigError, OAuthError
from mailkit.oauth import (
    GRAPH_SEND_SCOPE,
    OUTLOOK_SMTP_SCOPE,
    MicrosoftCredentials,
    MicrosoftOAuth,
)
from mailkit.oauth.microsoft import TOKEN_KIND
from mailkit.outcome import Cause, Phase
from mailkit.secrets import MemorySecretStore, secret_key


@pytest.fixture
def store() -> MemorySecretStore:
    return MemorySecretStore()


def _oauth(fake: FakeOAuthProvider, store: MemorySecretStore) -> MicrosoftOAuth:
    return MicrosoftOAuth(
        MICROSOFT_CLIENT_ID,
        secrets=store,
        tenant=DEMO_TENANT,
        authority_base=fake.base_url,
        ca_file=fake.ca_file,
    )


@pytest.fixture
def microsoft(fake_oauth: FakeOAuthProvider, store: MemorySecretStore) -> MicrosoftOAuth:
    return _oauth(fake_oauth, store)


def test_device_code_approved_then_silent_refresh_and_revoke(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    consent = microsoft.start_device_code([OUTLOOK_SMTP_SCOPE])
    assert consent.user_code in consent.message
    assert consent.verification_uri.endswith("/devicelogin")
    assert consent.expires_at > datetime.now(UTC)

    token = consent.wait(timeout=20)

    assert token.provider == "microsoft"
    assert token.account == "demo@example.com"
    assert OUTLOOK_SMTP_SCOPE in token.scopes
    assert fake_oauth.check_token(token.access_token.reveal(), {OUTLOOK_SMTP_SCOPE})
    assert store.get(secret_key("default", "org", TOKEN_KIND)) is not None

    # A new credentials object, as a later process would build it from the store alone.
    credentials = MicrosoftCredentials(store, ca_file=fake_oauth.ca_file)
    provide = credentials.token_provider()
    assert provide() == token.access_token  # MSAL's cache: still valid, no request
    assert credentials.token().account == "demo@example.com"

    fake_oauth.expire_access_tokens()
    fresh = credentials.access_token(force=True)
    assert fresh != token.access_token
    assert fake_oauth.check_token(fresh.reveal(), {OUTLOOK_SMTP_SCOPE}) == "demo@example.com"
    assert MicrosoftCredentials(store, ca_file=fake_oauth.ca_file).access_token() == fresh

    message = credentials.revoke()
    assert "myapps.microsoft.com" in message
    assert "Revoke sessions" in message
    assert store.get(secret_key("default", "org", TOKEN_KIND)) is None
    with pytest.raises(OAuthError) as missing:
        provide()
    assert missing.value.diagnosis.cause is Cause.TOKEN_MISSING


@pytest.mark.parametrize(
    ("outcome", "cause"),
    [
        ("decline", Cause.DEVICE_CODE_DECLINED),
        ("expire", Cause.DEVICE_CODE_EXPIRED),
        ("blocked", Cause.DEVICE_CODE_BLOCKED),
    ],
)
def test_device_code_failures(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider, outcome: str, cause: Cause
) -> None:
    fake_oauth.device_outcome = outcome  # type: ignore[assignment]
    consent = microsoft.start_device_code([GRAPH_SEND_SCOPE])
    with pytest.raises(OAuthError) as caught:
        consent.wait(timeout=20)
    diagnosis = caught.value.diagnosis
    assert diagnosis.cause is cause
    assert diagnosis.phase is Phase.CONSENT
    if outcome == "blocked":
        text = caught.value.diagnosis.to_text().lower()
        assert "conditional access" in text
        assert "browser" in text or "loopback" in text


def test_device_code_wait_times_out(microsoft: MicrosoftOAuth) -> None:
    consent = microsoft.start_device_code()
    with pytest.raises(OAuthError) as caught:
        consent.wait(timeout=0)  # the first poll is still pending
    assert caught.value.diagnosis.cause is Cause.CONSENT_TIMEOUT


def test_auth_code_on_loopback(microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider) -> None:
    consent = microsoft.start_loopback([GRAPH_SEND_SCOPE], timeout=30)
    assert consent.redirect_uri.startswith("http://localhost:")
    assert "response_mode=form_post" in consent.url
    assert "code_challenge_method=S256" in consent.url
    browser = threading.Thread(target=visit, args=(consent.url, fake_oauth.ca_file))
    browser.start()
    token = consent.wait(timeout=20)
    browser.join(10)
    assert fake_oauth.check_token(token.access_token.reveal(), {GRAPH_SEND_SCOPE})
    assert microsoft.credentials().access_token() == token.access_token


def _post(url: str, fields: dict[str, str]) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_forged_answer_is_turned_away_and_the_real_one_still_lands(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    consent = microsoft.start_loopback([GRAPH_SEND_SCOPE], timeout=30)
    assert _post(consent.redirect_uri, {"code": "stolen", "state": "not-ours"}) == 400
    browser = threading.Thread(target=visit, args=(consent.url, fake_oauth.ca_file))
    browser.start()
    token = consent.wait(timeout=20)
    browser.join(10)
    assert fake_oauth.check_token(token.access_token.reveal(), {GRAPH_SEND_SCOPE})


def test_only_a_forged_answer_is_diagnosed_as_state_mismatch(microsoft: MicrosoftOAuth) -> None:
    consent = microsoft.start_loopback(timeout=30)
    assert _post(consent.redirect_uri, {"code": "stolen", "state": "not-ours"}) == 400
    with pytest.raises(OAuthError) as caught:
        consent.wait(timeout=0.5)
    assert caught.value.diagnosis.cause is Cause.STATE_MISMATCH
    assert "turned away" in caught.value.diagnosis.server_text


def test_tampered_code_verifier_is_rejected(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    consent = microsoft.start_loopback(timeout=30)
    consent._flow["code_verifier"] = "x" * 50
    browser = threading.Thread(target=visit, args=(consent.url, fake_oauth.ca_file))
    browser.start()
    with pytest.raises(OAuthError) as caught:
        consent.wait(timeout=20)
    browser.join(10)
    assert caught.value.diagnosis.cause is Cause.PKCE_REJECTED


def test_consent_denied_in_the_browser(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    fake_oauth.consent = "access_denied"
    consent = microsoft.start_loopback(timeout=30)
    browser = threading.Thread(target=visit, args=(consent.url, fake_oauth.ca_file))
    browser.start()
    with pytest.raises(OAuthError) as caught:
        consent.wait(timeout=20)
    browser.join(10)
    assert caught.value.diagnosis.cause is Cause.CONSENT_DENIED


def test_revoked_grant_is_diagnosed_at_refresh(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    microsoft.start_device_code().wait(timeout=20)
    fake_oauth.revoke("demo@example.com")
    with pytest.raises(OAuthError) as caught:
        microsoft.credentials().access_token(force=True)
    assert caught.value.diagnosis.phase is Phase.TOKEN
    assert caught.value.diagnosis.cause is Cause.TOKEN_REVOKED


@pytest.fixture
def short_lived(tls_material: TLSMaterial) -> Iterator[FakeOAuthProvider]:
    server = tls_material.server
    fake = FakeOAuthProvider.from_files(
        server.cert_file, server.key_file, tls_material.ca_file, token_lifetime=30
    )
    with fake:
        yield fake


def test_token_expiring_soon_is_refreshed_first(
    short_lived: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    token = _oauth(short_lived, store).start_device_code().wait(timeout=20)
    first = MicrosoftCredentials(store, ca_file=short_lived.ca_file).token_provider()()
    assert first != token.access_token
    assert short_lived.check_token(first.reveal(), {OUTLOOK_SMTP_SCOPE})


@pytest.mark.parametrize(
    ("client_id", "tenant", "base", "field"),
    [
        ("mailkit-demo.apps.googleusercontent.com", "demo", "https://x.example", "client_id"),
        (MICROSOFT_CLIENT_ID, "a/b", "https://x.example", "tenant"),
        (MICROSOFT_CLIENT_ID, "", "https://x.example", "tenant"),
        (MICROSOFT_CLIENT_ID, "demo", "http://x.example", "authority_base"),
    ],
)
def test_settings_problems(
    store: MemorySecretStore, client_id: str, tenant: str, base: str, field: str
) -> None:
    with pytest.raises(OAuthConfigError) as caught:
        MicrosoftOAuth(client_id, secrets=store, tenant=tenant, authority_base=base)
    assert [p.field for p in caught.value.problems] == [field]


def test_reserved_scopes_are_refused_early(microsoft: MicrosoftOAuth) -> None:
    with pytest.raises(ValueError, match="MSAL adds them"):
        microsoft.start_device_code(["offline_access", GRAPH_SEND_SCOPE])


def test_unknown_client_is_diagnosed(
    fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    oauth = MicrosoftOAuth(
        "00000000-0000-4000-8000-000000000000",
        secrets=store,
        tenant=DEMO_TENANT,
        authority_base=fake_oauth.base_url,
        ca_file=fake_oauth.ca_file,
    )
    with pytest.raises(OAuthError) as caught:
        oauth.start_device_code()
    assert caught.value.diagnosis.cause is Cause.OAUTH_CLIENT_INVALID


def test_reprs_show_no_token(microsoft: MicrosoftOAuth, store: MemorySecretStore) -> None:
    token = microsoft.start_device_code().wait(timeout=20)
    credentials = microsoft.credentials()
    for text in (repr(token), repr(credentials), repr(microsoft), repr(credentials.token())):
        assert token.access_token.reveal() not in text


def test_debug_logging_of_device_code_and_refresh_leaks_nothing(
    microsoft: MicrosoftOAuth, fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        consent = microsoft.start_device_code()
        token = consent.wait(timeout=20)
        fresh = microsoft.credentials().access_token(force=True)
        logging.getLogger("msal.application").warning("response: %s", {"refresh_token": "rt-x"})
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    assert records
    everything = "\n".join(records)
    stored = store.get(secret_key("default", "org", TOKEN_KIND))
    assert stored is not None
    refresh_tokens = re.findall(r"fake-rt-[A-Za-z0-9_-]+", stored.reveal())
    assert refresh_tokens
    for secret in [token.access_token.reveal(), fresh.reveal(), "rt-x", *refresh_tokens]:
        assert secret not in everything
