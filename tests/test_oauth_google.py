"""Google OAuth against the local fake: client JSON, consent (paste-back, loopback), tokens."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from smtpd_servers import TLSMaterial

from mailkit.demo.oauth import FakeOAuthProvider, TokenRejected, visit
from mailkit.errors import OAuthConfigError, OAuthError
from mailkit.oauth import (
    GMAIL_SEND_SCOPE,
    GMAIL_SMTP_SCOPE,
    GoogleClientConfig,
    GoogleOAuth,
)
from mailkit.oauth.google import CLIENT_SECRET_KIND, TOKEN_KIND
from mailkit.outcome import Cause, Phase
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, secret_key

CANARY = "canary-s3cret-5f1d9a"


@pytest.fixture
def store() -> MemorySecretStore:
    return MemorySecretStore()


@pytest.fixture
def google(fake_oauth: FakeOAuthProvider, store: MemorySecretStore) -> GoogleOAuth:
    config = GoogleClientConfig.load(fake_oauth.google_client_config())
    return GoogleOAuth(config, secrets=store, ca_file=fake_oauth.ca_file)


def _consent_by_paste(google: GoogleOAuth, fake: FakeOAuthProvider, scope: str) -> Any:
    consent = google.start_paste([scope])
    return consent.finish(visit(consent.url, fake.ca_file))


def test_paste_back_stores_refreshes_and_revokes(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    consent = google.start_paste([GMAIL_SEND_SCOPE], login_hint="demo@example.com")
    assert consent.redirect_uri == "http://localhost"
    assert "code_challenge_method=S256" in consent.url
    assert "state=" in consent.url
    assert "code_verifier" not in consent.url

    token = consent.finish(visit(consent.url, fake_oauth.ca_file))

    assert token.provider == "google"
    assert token.scopes == (GMAIL_SEND_SCOPE,)
    assert token.account == "demo@example.com"
    assert token.refresh_token is not None
    assert fake_oauth.check_token(token.access_token.reveal(), {GMAIL_SEND_SCOPE})
    assert store.get(secret_key("default", "org", TOKEN_KIND)) is not None
    assert store.get(secret_key("default", "org", CLIENT_SECRET_KIND)) == Secret(
        "demo-client-secret"
    )

    credentials = google.credentials()
    provide = credentials.token_provider()
    assert provide() == token.access_token  # an hour left: no refresh

    fake_oauth.expire_access_tokens()
    with pytest.raises(TokenRejected):
        fake_oauth.check_token(token.access_token.reveal(), {GMAIL_SEND_SCOPE})
    fresh = credentials.access_token(force=True)
    assert fresh != token.access_token
    assert fake_oauth.check_token(fresh.reveal(), {GMAIL_SEND_SCOPE}) == "demo@example.com"
    stored = credentials.token()
    assert stored.access_token == fresh
    assert stored.refresh_token == token.refresh_token  # Google keeps the refresh token

    message = credentials.revoke()
    assert "revoked" in message
    with pytest.raises(TokenRejected):
        fake_oauth.check_token(fresh.reveal(), {GMAIL_SEND_SCOPE})
    assert store.get(secret_key("default", "org", TOKEN_KIND)) is None
    assert store.get(secret_key("default", "org", CLIENT_SECRET_KIND)) is None
    with pytest.raises(OAuthError) as missing:
        provide()
    assert missing.value.diagnosis.cause is Cause.TOKEN_MISSING


def test_loopback_consent_while_waiting(google: GoogleOAuth, fake_oauth: FakeOAuthProvider) -> None:
    consent = google.start_loopback([GMAIL_SMTP_SCOPE], timeout=30)
    assert consent.redirect_uri.startswith("http://127.0.0.1:")
    browser = threading.Thread(target=visit, args=(consent.url, fake_oauth.ca_file))
    browser.start()
    token = consent.wait(timeout=20)
    browser.join(10)
    assert token.scopes == (GMAIL_SMTP_SCOPE,)
    assert fake_oauth.check_token(token.access_token.reveal(), {GMAIL_SMTP_SCOPE})


def test_loopback_turns_away_a_stray_answer_and_takes_the_real_one(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    consent = google.start_loopback([GMAIL_SMTP_SCOPE], timeout=30)
    stray = urlsplit(consent.redirect_uri)
    connection = http.client.HTTPConnection(stray.hostname or "", stray.port, timeout=10)
    try:
        connection.request("GET", "/?code=someone-elses&state=another-sign-in")
        assert connection.getresponse().status == 400
    finally:
        connection.close()
    browser = threading.Thread(target=visit, args=(consent.url, fake_oauth.ca_file))
    browser.start()
    token = consent.wait(timeout=20)
    browser.join(10)
    assert fake_oauth.check_token(token.access_token.reveal(), {GMAIL_SMTP_SCOPE})


def test_loopback_timeout_is_diagnosed(google: GoogleOAuth) -> None:
    consent = google.start_loopback(timeout=30)
    with pytest.raises(OAuthError) as caught:
        consent.wait(timeout=0.2)
    assert caught.value.diagnosis.cause is Cause.CONSENT_TIMEOUT
    assert caught.value.diagnosis.phase is Phase.CONSENT


@pytest.fixture
def short_lived(tls_material: TLSMaterial) -> Iterator[FakeOAuthProvider]:
    server = tls_material.server
    fake = FakeOAuthProvider.from_files(
        server.cert_file, server.key_file, tls_material.ca_file, token_lifetime=30
    )
    with fake:
        yield fake


def test_token_expiring_within_a_minute_is_refreshed_first(
    short_lived: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    config = GoogleClientConfig.load(short_lived.google_client_config())
    google = GoogleOAuth(config, secrets=store, ca_file=short_lived.ca_file)
    token = _consent_by_paste(google, short_lived, GMAIL_SEND_SCOPE)
    provide = google.credentials().token_provider()
    first = provide()
    assert first != token.access_token  # 30 s left is less than the 60 s margin
    assert google.credentials().token().access_token == first  # persisted
    assert short_lived.check_token(first.reveal(), {GMAIL_SEND_SCOPE})


def test_state_mismatch_is_rejected_before_the_code_is_spent(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    mine = google.start_paste()
    other = google.start_paste()
    landed = visit(other.url, fake_oauth.ca_file)
    with pytest.raises(OAuthError) as caught:
        mine.finish(landed)
    assert caught.value.diagnosis.cause is Cause.STATE_MISMATCH
    # The code was never sent: its rightful sign-in can still redeem it (codes are single-use).
    assert other.finish(landed).access_token


def test_tampered_code_verifier_is_rejected(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    consent = google.start_paste()
    landed = visit(consent.url, fake_oauth.ca_file)
    consent._flow.code_verifier = "x" * 64
    with pytest.raises(OAuthError) as caught:
        consent.finish(landed)
    assert caught.value.diagnosis.cause is Cause.PKCE_REJECTED


def test_access_denied(google: GoogleOAuth, fake_oauth: FakeOAuthProvider) -> None:
    fake_oauth.consent = "access_denied"
    consent = google.start_paste()
    with pytest.raises(OAuthError) as caught:
        consent.finish(visit(consent.url, fake_oauth.ca_file))
    assert caught.value.diagnosis.cause is Cause.CONSENT_DENIED


def test_a_finished_consent_cannot_be_finished_again(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    consent = google.start_paste()
    landed = visit(consent.url, fake_oauth.ca_file)
    consent.finish(landed)
    with pytest.raises(RuntimeError, match="already finished"):
        consent.finish(landed)


def test_revoked_grant_is_diagnosed_at_refresh(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    _consent_by_paste(google, fake_oauth, GMAIL_SEND_SCOPE)
    fake_oauth.revoke()
    with pytest.raises(OAuthError) as caught:
        google.credentials().access_token(force=True)
    assert caught.value.diagnosis.phase is Phase.TOKEN
    assert caught.value.diagnosis.cause is Cause.TOKEN_REVOKED


def test_refresh_without_the_stored_client_secret_says_so(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    _consent_by_paste(google, fake_oauth, GMAIL_SEND_SCOPE)
    store.delete(secret_key("default", "org", CLIENT_SECRET_KIND))
    with pytest.raises(OAuthError) as caught:
        google.credentials().access_token(force=True)
    assert caught.value.diagnosis.cause is Cause.TOKEN_MISSING


def test_pasted_text_without_an_answer_is_refused_without_echo(google: GoogleOAuth) -> None:
    consent = google.start_paste()
    with pytest.raises(OAuthConfigError) as caught:
        consent.finish(f"http://localhost/{CANARY}")
    assert CANARY not in str(caught.value)
    assert caught.value.problems[0].field == "redirected_url"


# --------------------------------------------------------------------------- client JSON


def _client(**section: object) -> dict[str, object]:
    base: dict[str, object] = {
        "client_id": "123-abc.apps.googleusercontent.com",
        "project_id": "p",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "client_secret": CANARY,
        "redirect_uris": ["http://localhost"],
    }
    base.update(section)
    return {"installed": {k: v for k, v in base.items() if v is not None}}


def test_client_json_from_file_string_and_dict(tmp_path: Path) -> None:
    data = _client()
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps(data))
    for source in (data, json.dumps(data), path, str(path)):
        config = GoogleClientConfig.load(source)
        assert config.client_id == "123-abc.apps.googleusercontent.com"
        assert config.client_type == "installed"
        assert config.revoke_uri == "https://oauth2.googleapis.com/revoke"
        assert config.client_secret == Secret(CANARY)
        assert CANARY not in repr(config)


def test_web_client_with_localhost_redirect() -> None:
    data = {"web": _client()["installed"]}
    config = GoogleClientConfig.load(data)
    assert config.client_type == "web"


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (
            {"type": "service_account", "private_key": CANARY, "client_email": "x@y"},
            "type",
            "service-account key",
        ),
        ({"type": "authorized_user", "refresh_token": CANARY}, "type", "saved user token"),
        ({"refresh_token": CANARY, "client_id": "x"}, "file", "saved user token"),
        ({"installed": {}, "web": {}}, "installed/web", "both"),
        (_client()["installed"], "installed", "not inside"),
        ({"something": 1}, "installed", "neither"),
        (_client(client_secret=None), "installed.client_secret", "missing"),
        (_client(client_secret="  "), "installed.client_secret", "missing"),
        (_client(client_id=None), "installed.client_id", "missing"),
        (
            _client(client_id="7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
            "installed.client_id",
            "Microsoft",
        ),
        (_client(token_uri="http://oauth2.googleapis.com/token"), "installed.token_uri", "https"),
        (_client(revoke_uri="http://example.com/revoke"), "installed.revoke_uri", "https"),
        (_client(redirect_uris="http://localhost"), "installed.redirect_uris", "list"),
        (
            {"web": _client(redirect_uris=["https://app.example/cb"])["installed"]},
            "web.redirect_uris",
            "Desktop app",
        ),
        ({"installed": "nope"}, "installed", "object"),
    ],
)
def test_client_json_problems(data: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(OAuthConfigError) as caught:
        GoogleClientConfig.load(data)
    assert isinstance(caught.value, ValueError)
    assert any(p.field == field and words in p.message for p in caught.value.problems), (
        caught.value.problems
    )
    assert CANARY not in str(caught.value)


def test_unreadable_client_json(tmp_path: Path) -> None:
    with pytest.raises(OAuthConfigError, match="does not exist"):
        GoogleClientConfig.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"installed": {"client_secret": "' + CANARY + '",}')
    with pytest.raises(OAuthConfigError) as caught:
        GoogleClientConfig.load(broken)
    assert "not JSON" in str(caught.value)
    assert CANARY not in str(caught.value)
    with pytest.raises(OAuthConfigError, match="JSON list"):
        GoogleClientConfig.load("[1]")


@pytest.mark.parametrize(
    "pasted",
    [
        f'"installed": {{"client_id": "x.apps.googleusercontent.com", "client_secret": '
        f'"{CANARY}"}}',
        CANARY,
        CANARY * 40,  # too long for a file name: OSError rather than FileNotFoundError
        f"{CANARY}\x00",  # not a possible file name at all: ValueError
    ],
)
def test_pasted_text_that_is_not_json_is_not_echoed(pasted: str) -> None:
    with pytest.raises(OAuthConfigError) as caught:
        GoogleClientConfig.load(pasted)
    assert CANARY not in str(caught.value)
    assert [p.field for p in caught.value.problems] == ["file"]


def test_web_client_signs_in_by_paste_back_only(
    fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    section = fake_oauth.google_client_config()["installed"]
    config = GoogleClientConfig.load(
        {"web": {**section, "redirect_uris": ["http://localhost:8080/"]}}
    )
    google = GoogleOAuth(config, secrets=store, ca_file=fake_oauth.ca_file)
    with pytest.raises(OAuthConfigError) as caught:
        google.start_loopback(timeout=5)
    assert [p.field for p in caught.value.problems] == ["client_type"]
    assert "Desktop app" in str(caught.value)
    with google.start_paste() as consent:
        assert consent.redirect_uri == "http://localhost:8080/"  # exactly as registered


# --------------------------------------------------------------------------- secrets stay secret


def test_canary_client_secret_never_shows(
    fake_oauth: FakeOAuthProvider, store: MemorySecretStore
) -> None:
    fake_oauth.add_google_client("canary.apps.googleusercontent.com", CANARY)
    config = GoogleClientConfig.load(
        fake_oauth.google_client_config("canary.apps.googleusercontent.com", CANARY)
    )
    google = GoogleOAuth(config, secrets=store, ca_file=fake_oauth.ca_file)
    consent = google.start_paste()
    token = consent.finish(visit(consent.url, fake_oauth.ca_file))
    credentials = google.credentials()
    shown = [repr(config), str(config), repr(google), repr(consent), repr(token), str(token)]
    shown += [repr(credentials), repr(credentials.token())]
    for text in shown:
        assert CANARY not in text
        assert token.access_token.reveal() not in text

    # A client secret the provider refuses: the diagnosis names the client, not the secret.
    wrong = GoogleClientConfig.load(
        fake_oauth.google_client_config("canary.apps.googleusercontent.com", CANARY + "-old")
    )
    consent = GoogleOAuth(wrong, secrets=store, ca_file=fake_oauth.ca_file).start_paste()
    with pytest.raises(OAuthError) as caught:
        consent.finish(visit(consent.url, fake_oauth.ca_file))
    assert caught.value.diagnosis.cause is Cause.OAUTH_CLIENT_INVALID
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value.diagnosis)


def test_debug_logging_of_a_whole_flow_leaks_nothing(
    google: GoogleOAuth, fake_oauth: FakeOAuthProvider
) -> None:
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    child = logging.getLogger("requests_oauthlib.oauth2_session")
    child_level = child.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    child.setLevel(logging.DEBUG)  # even a logger set to DEBUG explicitly must not leak
    try:
        consent = google.start_paste()
        verifier = consent._flow.code_verifier
        landed = visit(consent.url, fake_oauth.ca_file)
        token = consent.finish(landed)
        credentials = google.credentials()
        fake_oauth.expire_access_tokens()
        fresh = credentials.access_token(force=True)
        logging.getLogger("urllib3.connectionpool").warning(
            "retrying POST body refresh_token=%s",
            token.refresh_token.reveal() if token.refresh_token else "",
        )
        credentials.revoke()
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        child.setLevel(child_level)
    assert records, "the flow logged nothing at all; the test would prove nothing"
    assert token.refresh_token is not None
    secrets = [
        token.access_token.reveal(),
        token.refresh_token.reveal(),
        fresh.reveal(),
        "demo-client-secret",
        verifier,
    ]
    everything = "\n".join(records)
    for secret in secrets:
        assert secret not in everything
