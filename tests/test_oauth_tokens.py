"""What every OAuth flow shares: token values, the log guard, the loopback receiver, errors."""

from __future__ import annotations

import http.client
import logging
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from mailkit import logguard
from mailkit.demo.oauth import DEMO_TENANT, MICROSOFT_CLIENT_ID, FakeOAuthProvider
from mailkit.errors import OAuthError
from mailkit.httpclient import session
from mailkit.oauth import GMAIL_SEND_SCOPE, MicrosoftOAuth, OAuthToken, loopback
from mailkit.oauth.google import GoogleCredentials
from mailkit.oauth.loopback import LoopbackReceiver
from mailkit.oauth.microsoft import MicrosoftCredentials
from mailkit.oauth.tokens import network_error, oauth_error
from mailkit.outcome import Cause, Phase
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore

JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"


def test_token_repr_shows_masks_and_knows_its_expiry() -> None:
    now = datetime.now(UTC)
    token = OAuthToken(
        provider="google",
        account="a@example.com",
        scopes=(GMAIL_SEND_SCOPE,),
        access_token=Secret("ya29.live-token"),
        expires_at=now + timedelta(seconds=90),
        refresh_token=Secret("1//refresh"),
    )
    assert "ya29" not in repr(token)
    assert "1//refresh" not in repr(token)
    assert not token.expires_within(60, now)
    assert token.expires_within(120, now)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("POST body: grant_type=refresh_token&refresh_token=1//0gabc&client_id=x", "client_id=x"),
        ('{"access_token": "opaque-xyz", "expires_in": 3599}', '"expires_in": 3599'),
        ("{'refresh_token': 'opaque-xyz', 'scope': 's'}", "'scope': 's'"),
        ("Authorization: Bearer opaque-xyz", "Authorization: Bearer"),
        ("code=opaque-xyz&state=abc", "state=abc"),
        ("client_secret=opaque-xyz", "client_secret="),
        ("code_verifier=opaque-xyz", "code_verifier="),
        (f"id token {JWT} seen", "id token"),
        ("token ya29.opaque-xyz used", "used"),
    ],
)
def test_scrub_removes_token_forms(text: str, kept: str) -> None:
    scrubbed = logguard.scrub(text)
    assert "opaque-xyz" not in scrubbed
    assert "1//0gabc" not in scrubbed
    assert JWT not in scrubbed
    assert kept in scrubbed


def test_filter_drops_debug_and_scrubs_arguments_and_tracebacks() -> None:
    guard = logguard.RedactingFilter()
    debug = logging.LogRecord("msal", logging.DEBUG, __file__, 1, "%s", ("x",), None)
    with logguard.guarded():
        assert not guard.filter(debug)
    outside = logging.LogRecord("msal", logging.DEBUG, __file__, 1, "got %s", ("code=xyz",), None)
    assert guard.filter(outside)  # not mailkit's call: kept, and still scrubbed
    assert "xyz" not in outside.getMessage()
    try:
        raise ValueError("refresh_token=opaque-xyz")
    except ValueError:
        info = sys.exc_info()
    record = logging.LogRecord(
        "urllib3.connectionpool", logging.WARNING, __file__, 1, "got %s", ("code=opaque-xyz",), info
    )
    assert guard.filter(record)
    assert "opaque-xyz" not in record.getMessage()
    assert record.exc_text is not None
    assert "opaque-xyz" not in record.exc_text
    assert "ValueError" in record.exc_text


def test_install_is_idempotent_and_covers_new_children() -> None:
    logguard.install()
    logguard.install()
    with logguard.guarded(), logguard.guarded():
        for name in logguard.GUARDED:
            logger = logging.getLogger(name)
            assert logger.filters.count(logguard._FILTER) == 1
            assert logger.getEffectiveLevel() >= logging.INFO
        late = logging.getLogger("msal.some_module_imported_later")
        assert not late.isEnabledFor(logging.DEBUG)  # the parent's level applies
    logguard.install()
    assert late.filters.count(logguard._FILTER) == 1


# --------------------------------------------------------------------------- loopback receiver


@pytest.fixture
def receiver() -> Iterator[LoopbackReceiver]:
    with LoopbackReceiver(lifetime=30).start() as started:
        started.expect_state("s1")
        yield started


def _request(port: int, method: str, target: str, body: str | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_receiver_ignores_noise_and_takes_the_first_answer(receiver: LoopbackReceiver) -> None:
    assert _request(receiver.port, "GET", "/favicon.ico") == 404
    assert _request(receiver.port, "GET", "/?code=c0&state=another") == 400
    assert _request(receiver.port, "GET", "/?code=c0") == 400  # no state at all
    assert _request(receiver.port, "GET", "/?code=c1&state=s1") == 200
    assert _request(receiver.port, "POST", "/", "code=c2&state=s1") == 200  # already answered
    assert receiver.wait(1) == {"code": "c1", "state": "s1"}
    assert receiver.foreign == 2


def test_receiver_accepts_form_post(receiver: LoopbackReceiver) -> None:
    assert _request(receiver.port, "POST", "/", "code=c&state=s1&client_info=i") == 200
    assert receiver.wait(1) == {"code": "c", "state": "s1", "client_info": "i"}


def test_receiver_takes_no_answer_before_it_knows_the_state() -> None:
    """Nobody can answer a sign-in whose link does not exist yet."""
    with LoopbackReceiver(lifetime=30).start() as started:
        assert _request(started.port, "GET", "/?code=early&state=guess") == 400
        assert started.wait(0.2) is None
        assert started.foreign == 1
        with pytest.raises(ValueError, match="state"):
            started.expect_state("")


def test_receiver_stops_listening_when_closed() -> None:
    started = LoopbackReceiver(lifetime=30).start()
    port = started.port
    started.close()
    started.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_receiver_drops_an_idle_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser's unused pre-connection must not hold a thread and a socket for ever."""
    default = loopback._Handler.timeout
    assert default is not None
    assert 0 < default <= 60
    monkeypatch.setattr(loopback._Handler, "timeout", 0.3)  # the same mechanism, faster
    with (
        LoopbackReceiver(lifetime=30).start() as started,
        socket.create_connection(("127.0.0.1", started.port), 5) as idle,
    ):
        idle.settimeout(5)
        assert idle.recv(1) == b""  # closed by the receiver, not by our 5 s timeout


def test_receiver_lifetime_is_finite() -> None:
    with LoopbackReceiver(lifetime=0.2).start() as short:
        assert short.wait() is None  # returns after the lifetime, not never


# --------------------------------------------------------------------------- errors


def test_oauth_error_carries_the_diagnosis() -> None:
    error = oauth_error(
        Phase.TOKEN,
        url="https://oauth2.googleapis.com/token",
        scopes=[GMAIL_SEND_SCOPE],
        flow="refresh",
        error="invalid_grant",
        description="Token has been expired or revoked. refresh_token=1//leak",
        status=400,
    )
    assert isinstance(error, OAuthError)
    assert error.diagnosis.cause is Cause.TOKEN_REVOKED
    assert "1//leak" not in str(error)


def test_unreachable_token_endpoint_is_a_connection_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"https://127.0.0.1:{port}/token"
    with session() as http_session, pytest.raises(requests.ConnectionError) as caught:
        http_session.post(url, data={})
    error = network_error(Phase.TOKEN, caught.value, url=url, scopes=[], flow="refresh")
    assert error.diagnosis.cause is Cause.CONNECTION_REFUSED


def test_untrusted_certificate_is_diagnosed(fake_oauth: FakeOAuthProvider) -> None:
    """Without the demo CA the fake's certificate is untrusted, and the diagnosis says so."""
    store = MemorySecretStore()
    oauth = MicrosoftOAuth(
        MICROSOFT_CLIENT_ID,
        secrets=store,
        tenant=DEMO_TENANT,
        authority_base=fake_oauth.base_url,
        ca_file=None,
    )
    with pytest.raises(OAuthError) as caught:
        oauth.start_device_code()
    assert caught.value.diagnosis.cause is Cause.CERTIFICATE_UNTRUSTED


def test_credentials_of_one_stored_token_share_one_refresh_lock() -> None:
    store, other = MemorySecretStore(), MemorySecretStore()
    assert GoogleCredentials(store)._lock is GoogleCredentials(store)._lock
    assert MicrosoftCredentials(store)._lock is MicrosoftCredentials(store)._lock
    assert GoogleCredentials(store)._lock is not MicrosoftCredentials(store)._lock
    assert GoogleCredentials(store)._lock is not GoogleCredentials(other)._lock
    assert GoogleCredentials(store)._lock is not GoogleCredentials(store, owner="u1")._lock


def test_credentials_without_consent_say_token_missing() -> None:
    store = MemorySecretStore()
    for credentials in (GoogleCredentials(store), MicrosoftCredentials(store)):
        with pytest.raises(OAuthError) as caught:
            credentials.token_provider()()
        assert caught.value.diagnosis.cause is Cause.TOKEN_MISSING
        assert "nothing" in credentials.revoke().lower()
