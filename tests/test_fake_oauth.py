"""The fake OAuth provider, driven with plain requests and with the real client libraries.

Every test talks HTTPS to a real server on loopback; sessions come from
:func:`mailkit.httpclient.session` (``trust_env=False``: ``REQUESTS_CA_BUNDLE`` must not win).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import ssl
import threading
import webbrowser
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiosmtplib
import google.auth.exceptions
import google.auth.transport.requests
import msal
import pytest
import requests
from google_auth_oauthlib.flow import Flow, InstalledAppFlow

from mailkit.demo import (
    DEMO_TENANT,
    DEMO_USER,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    MICROSOFT_CLIENT_ID,
    DemoServer,
    DemoSettings,
    FakeOAuthProvider,
    SignInError,
    TokenRejected,
    read_mailbox,
    read_message,
    visit,
)
from mailkit.httpclient import session

pytestmark = pytest.mark.timeout(60)

MAIL_GOOGLE = "https://mail.google.com/"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
OUTLOOK_SMTP = "https://outlook.office.com/SMTP.Send"
GRAPH_SEND = "Mail.Send"


@pytest.fixture
def http(fake_oauth: FakeOAuthProvider) -> Iterator[requests.Session]:
    with session(fake_oauth.ca_file) as client:
        yield client


def unused_port() -> int:
    """A loopback port nothing listens on (the paste-back flow's redirect target)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def mime(to: str = "bob@example.com", subject: str = "fake api test") -> bytes:
    message = EmailMessage()
    message["From"] = DEMO_USER
    if to:
        message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@example.com>"
    message.set_content("Hello from the fake API test.\n")
    return message.as_bytes()


# --------------------------------------------------------------------------- Google, by hand


class GoogleSignIn:
    """One authorization request against the fake, as an installed app makes it."""

    def __init__(
        self, fake: FakeOAuthProvider, scopes: list[str], *, offline: bool = True, **extra: str
    ) -> None:
        self.fake = fake
        self.verifier, challenge = pkce()
        self.redirect_uri = f"http://127.0.0.1:{unused_port()}/"
        self.state = secrets.token_urlsafe(8)
        params = {
            "response_type": "code",
            "client_id": GOOGLE_CLIENT_ID,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(scopes),
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **({"access_type": "offline"} if offline else {}),
            **extra,
        }
        self.url = f"{fake.base_url}/o/oauth2/auth?{urlencode(params)}"

    def code(self) -> str:
        landed = query(visit(self.url, self.fake.ca_file))
        assert landed["state"] == self.state
        return landed["code"]

    def exchange(
        self, http: requests.Session, code: str, *, verifier: str | None = None, **changes: str
    ) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier or self.verifier,
            **changes,
        }
        return http.post(
            f"{self.fake.base_url}/token", data=data, auth=(GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)
        )


def google_tokens(
    fake: FakeOAuthProvider, http: requests.Session, scopes: list[str]
) -> dict[str, Any]:
    sign_in = GoogleSignIn(fake, scopes)
    response = sign_in.exchange(http, sign_in.code())
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def test_google_code_flow_grants_the_requested_scopes_and_refreshes(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    tokens = google_tokens(fake_oauth, http, [GMAIL_SEND, MAIL_GOOGLE])
    assert tokens["access_token"].startswith("fake-at-")
    assert tokens["refresh_token"].startswith("fake-rt-")
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 3600)
    assert set(tokens["scope"].split()) == {GMAIL_SEND, MAIL_GOOGLE}
    assert fake_oauth.check_token(tokens["access_token"], {GMAIL_SEND}) == DEMO_USER

    fake_oauth.expire_access_tokens()
    with pytest.raises(TokenRejected) as rejected:
        fake_oauth.check_token(tokens["access_token"], {GMAIL_SEND})
    assert rejected.value.reason == "expired"
    # The refresh grant sends the client in the body (as google-auth does).
    refreshed = http.post(
        f"{fake_oauth.base_url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": GOOGLE_CLIENT_ID,
            "client_secret": GOOGLE_CLIENT_SECRET,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert "refresh_token" not in refreshed.json()  # Google keeps the refresh token as it is
    assert fake_oauth.check_token(refreshed.json()["access_token"], {MAIL_GOOGLE}) == DEMO_USER


def test_google_gives_no_refresh_token_without_offline_access(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND], offline=False)
    response = sign_in.exchange(http, sign_in.code())
    assert response.status_code == 200
    assert "refresh_token" not in response.json()


@pytest.mark.parametrize(
    ("problem", "status", "error", "description"),
    [
        ("verifier", 400, "invalid_grant", "Invalid code verifier."),
        ("reuse", 400, "invalid_grant", "Bad Request"),
        ("redirect", 400, "redirect_uri_mismatch", "Bad Request"),
        ("unknown_client", 401, "invalid_client", "The OAuth client was not found."),
        ("wrong_secret", 401, "invalid_client", "Unauthorized"),
        ("no_secret", 400, "invalid_request", "client_secret is missing."),
    ],
)
def test_google_code_exchange_refusals(
    fake_oauth: FakeOAuthProvider,
    http: requests.Session,
    problem: str,
    status: int,
    error: str,
    description: str,
) -> None:
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND])
    code = sign_in.code()
    url = f"{fake_oauth.base_url}/token"
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": sign_in.redirect_uri,
        "code_verifier": sign_in.verifier,
    }
    if problem == "verifier":
        response = sign_in.exchange(http, code, verifier=pkce()[0])
    elif problem == "reuse":
        assert sign_in.exchange(http, code).status_code == 200
        response = sign_in.exchange(http, code)
    elif problem == "redirect":
        response = sign_in.exchange(http, code, redirect_uri="http://127.0.0.1:1/other")
    elif problem == "unknown_client":
        response = http.post(url, data=base, auth=("nobody.apps.googleusercontent.com", "x"))
    elif problem == "wrong_secret":
        response = http.post(url, data=base, auth=(GOOGLE_CLIENT_ID, "not-the-secret"))
    else:
        response = http.post(url, data={**base, "client_id": GOOGLE_CLIENT_ID})
    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}


def test_google_refuses_a_verifier_rfc7636_does_not_allow(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    short = "a" * 42  # RFC 7636 4.1: 43 to 128 characters
    challenge = base64.urlsafe_b64encode(hashlib.sha256(short.encode()).digest())
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND], code_challenge=challenge.rstrip(b"=").decode())
    response = sign_in.exchange(http, sign_in.code(), verifier=short)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_an_authorization_code_expires(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    fake_oauth.code_lifetime = 0
    google = GoogleSignIn(fake_oauth, [GMAIL_SEND])
    late = google.exchange(http, google.code())
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")
    microsoft = MicrosoftSignIn(fake_oauth, [GRAPH_SEND])
    late = microsoft.exchange(http, query(visit(microsoft.url, fake_oauth.ca_file))["code"])
    assert late.status_code == 400
    assert late.json()["error_description"].startswith("AADSTS70008:")


def test_reusing_a_code_revokes_what_it_issued(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND])
    code = sign_in.code()
    first = sign_in.exchange(http, code).json()
    assert sign_in.exchange(http, code).status_code == 400
    with pytest.raises(TokenRejected, match="revoked"):
        fake_oauth.check_token(first["access_token"], {GMAIL_SEND})


def test_google_sign_in_page_errors(fake_oauth: FakeOAuthProvider) -> None:
    unknown = GoogleSignIn(fake_oauth, [GMAIL_SEND], client_id="nobody.apps.googleusercontent.com")
    with pytest.raises(SignInError) as page:
        visit(unknown.url, fake_oauth.ca_file)
    assert (page.value.status, page.value.error) == (401, "invalid_client")

    elsewhere = GoogleSignIn(fake_oauth, [GMAIL_SEND], redirect_uri="https://app.example/cb")
    with pytest.raises(SignInError) as page:
        visit(elsewhere.url, fake_oauth.ca_file)
    assert (page.value.status, page.value.error) == (400, "redirect_uri_mismatch")


def test_google_sign_in_without_pkce_is_sent_back_as_invalid_request(
    fake_oauth: FakeOAuthProvider,
) -> None:
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND], code_challenge="")
    landed = query(visit(sign_in.url, fake_oauth.ca_file))
    assert (landed["error"], landed["state"]) == ("invalid_request", sign_in.state)


def test_google_consent_declined(fake_oauth: FakeOAuthProvider) -> None:
    fake_oauth.consent = "access_denied"
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND])
    landed = visit(sign_in.url, fake_oauth.ca_file)
    assert landed.startswith(sign_in.redirect_uri + "?")
    assert query(landed) == {"error": "access_denied", "state": sign_in.state}


def test_google_revoke_then_refresh_fails(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    tokens = google_tokens(fake_oauth, http, [GMAIL_SEND])
    revoked = http.post(f"{fake_oauth.base_url}/revoke", data={"token": tokens["refresh_token"]})
    assert (revoked.status_code, revoked.json()) == (200, {})
    again = http.post(f"{fake_oauth.base_url}/revoke", data={"token": tokens["refresh_token"]})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_token"
    refreshed = http.post(
        f"{fake_oauth.base_url}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": GOOGLE_CLIENT_ID,
            "client_secret": GOOGLE_CLIENT_SECRET,
        },
    )
    assert refreshed.status_code == 400
    assert refreshed.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    with pytest.raises(TokenRejected, match="revoked"):  # the access token died with it
        fake_oauth.check_token(tokens["access_token"], {GMAIL_SEND})


# --------------------------------------------------------------------------- Gmail API


def gmail_send(
    fake: FakeOAuthProvider, http: requests.Session, token: str | None, raw: bytes, user: str = "me"
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"raw": base64.urlsafe_b64encode(raw).decode()}
    return http.post(
        f"{fake.base_url}/gmail/v1/users/{user}/messages/send", json=body, headers=headers
    )


def test_gmail_send_accepts_a_good_token(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    token = google_tokens(fake_oauth, http, [GMAIL_SEND])["access_token"]
    raw = mime()
    response = gmail_send(fake_oauth, http, token, raw)
    assert response.status_code == 200, response.text
    assert response.json()["labelIds"] == ["SENT"]
    assert {"id", "threadId"} <= response.json().keys()
    assert [(m.api, m.account, m.raw) for m in fake_oauth.sent] == [("gmail_api", DEMO_USER, raw)]
    assert fake_oauth.sent[0].tls is not None
    upload = http.post(
        f"{fake_oauth.base_url}/upload/gmail/v1/users/{DEMO_USER}/messages/send",
        params={"uploadType": "media"},
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"},
    )
    assert upload.status_code == 200, upload.text
    assert len(fake_oauth.sent) == 2


@pytest.mark.parametrize("problem", ["missing", "unknown", "expired", "revoked"])
def test_gmail_send_rejects_a_bad_token_with_401(
    fake_oauth: FakeOAuthProvider, http: requests.Session, problem: str
) -> None:
    token: str | None = google_tokens(fake_oauth, http, [GMAIL_SEND])["access_token"]
    if problem == "missing":
        token = None
    elif problem == "unknown":
        token = "fake-at-never-issued"
    elif problem == "expired":
        fake_oauth.expire_access_tokens()
    else:
        fake_oauth.revoke(DEMO_USER)
    response = gmail_send(fake_oauth, http, token, mime())
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="https://accounts.google')
    if problem != "missing":
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert fake_oauth.sent == []


def test_gmail_send_rejects_insufficient_scope_with_403(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    token = google_tokens(fake_oauth, http, [GMAIL_READONLY])["access_token"]
    response = gmail_send(fake_oauth, http, token, mime())
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["status"] == "PERMISSION_DENIED"
    assert error["errors"][0]["reason"] == "insufficientPermissions"
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    assert "scope" in error["message"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_gmail_send_refuses_other_users_and_messages_without_recipients(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    token = google_tokens(fake_oauth, http, [GMAIL_SEND])["access_token"]
    other = gmail_send(fake_oauth, http, token, mime(), user="someone@example.com")
    assert other.status_code == 403
    assert other.json()["error"]["message"] == f"Delegation denied for {DEMO_USER}"
    nobody = gmail_send(fake_oauth, http, token, mime(to=""))
    assert nobody.status_code == 400
    assert nobody.json()["error"]["message"] == "Recipient address required"
    assert fake_oauth.sent == []


def test_fail_next_answers_once_with_retry_after(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    token = google_tokens(fake_oauth, http, [GMAIL_SEND])["access_token"]
    fake_oauth.fail_next("/gmail/v1/users/me/messages/send", 429, headers={"Retry-After": "7"})
    throttled = gmail_send(fake_oauth, http, token, mime())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert gmail_send(fake_oauth, http, token, mime()).status_code == 200
    fake_oauth.fail_next("/token", 503, {"error": "backend_error"})
    down = http.post(f"{fake_oauth.base_url}/token", data={"grant_type": "refresh_token"})
    assert (down.status_code, down.json()) == (503, {"error": "backend_error"})


# --------------------------------------------------------------------------- Microsoft, by hand


def test_openid_configuration_points_at_the_fake(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    authority = fake_oauth.microsoft_authority()
    assert authority == f"{fake_oauth.base_url}/{DEMO_TENANT}"
    config = http.get(f"{authority}/v2.0/.well-known/openid-configuration").json()
    # The page a browser opens is on the plain-HTTP loopback origin; the rest stays HTTPS.
    browser = f"{fake_oauth.browser_url}/{DEMO_TENANT}"
    assert browser.startswith("http://127.0.0.1:")
    assert config["authorization_endpoint"] == f"{browser}/oauth2/v2.0/authorize"
    assert config["token_endpoint"] == f"{authority}/oauth2/v2.0/token"
    assert config["device_authorization_endpoint"] == f"{authority}/oauth2/v2.0/devicecode"
    assert "form_post" in config["response_modes_supported"]


class MicrosoftSignIn:
    def __init__(self, fake: FakeOAuthProvider, scopes: list[str], **extra: str) -> None:
        self.fake = fake
        self.verifier, challenge = pkce()
        self.redirect_uri = extra.pop("redirect_uri", f"http://localhost:{unused_port()}")
        params = {
            "client_id": MICROSOFT_CLIENT_ID,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": " ".join([*scopes, "offline_access", "openid", "profile"]),
            "state": "s1",
            "nonce": "n1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        self.token_url = f"{fake.microsoft_authority()}/oauth2/v2.0/token"
        self.url = f"{fake.microsoft_authority()}/oauth2/v2.0/authorize?{urlencode(params)}"

    def exchange(
        self, http: requests.Session, code: str, *, verifier: str | None = None, **changes: str
    ) -> requests.Response:
        data = {
            "client_id": MICROSOFT_CLIENT_ID,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier or self.verifier,
            **changes,
        }
        return http.post(self.token_url, data=data)


def claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_microsoft_code_flow_by_hand(fake_oauth: FakeOAuthProvider, http: requests.Session) -> None:
    sign_in = MicrosoftSignIn(fake_oauth, [GRAPH_SEND])
    landed = query(visit(sign_in.url, fake_oauth.ca_file))
    assert {"code", "state", "client_info"} <= landed.keys()
    tokens = sign_in.exchange(http, landed["code"]).json()
    assert tokens["refresh_token"].startswith("fake-rt-")
    id_claims = claims(tokens["id_token"])
    assert (id_claims["preferred_username"], id_claims["nonce"]) == (DEMO_USER, "n1")
    assert id_claims["aud"] == MICROSOFT_CLIENT_ID

    reused = sign_in.exchange(http, landed["code"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_description"].startswith("AADSTS54005:")
    assert reused.json()["error_codes"] == [54005]


@pytest.mark.parametrize(
    ("problem", "status", "error", "aadsts"),
    [
        ("verifier", 400, "invalid_grant", "AADSTS501481:"),
        ("redirect", 400, "invalid_grant", "AADSTS50011:"),
        ("unknown_client", 400, "unauthorized_client", "AADSTS700016:"),
        ("secret", 401, "invalid_client", "AADSTS700025:"),
    ],
)
def test_microsoft_code_exchange_refusals(
    fake_oauth: FakeOAuthProvider,
    http: requests.Session,
    problem: str,
    status: int,
    error: str,
    aadsts: str,
) -> None:
    sign_in = MicrosoftSignIn(fake_oauth, [GRAPH_SEND])
    code = query(visit(sign_in.url, fake_oauth.ca_file))["code"]
    changes = {
        "verifier": {"code_verifier": pkce()[0]},
        "redirect": {"redirect_uri": "http://localhost:1"},
        "unknown_client": {"client_id": "00000000-0000-0000-0000-000000000000"},
        "secret": {"client_secret": "s"},
    }[problem]
    response = sign_in.exchange(http, code, **changes)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_description"].startswith(aadsts)
    if problem == "verifier":
        assert "Code_Verifier does not match" in response.json()["error_description"]


def test_microsoft_sign_in_page_errors(fake_oauth: FakeOAuthProvider) -> None:
    unknown = MicrosoftSignIn(fake_oauth, [GRAPH_SEND], client_id="nobody")
    with pytest.raises(SignInError) as page:
        visit(unknown.url, fake_oauth.ca_file)
    assert page.value.error == "unauthorized_client"
    assert page.value.description.startswith("AADSTS700016:")
    elsewhere = MicrosoftSignIn(fake_oauth, [GRAPH_SEND], redirect_uri="https://app.example/cb")
    with pytest.raises(SignInError) as page:
        visit(elsewhere.url, fake_oauth.ca_file)
    assert page.value.description.startswith("AADSTS50011:")
    split = MicrosoftSignIn(
        fake_oauth, [GRAPH_SEND], redirect_uri="http://127.0.0.1:1/\r\nX-Injected: 1"
    )
    with pytest.raises(SignInError) as page:
        visit(split.url, fake_oauth.ca_file)
    assert page.value.description.startswith("AADSTS50011:")
    assert "\n" not in page.value.description


def test_microsoft_loopback_redirects_must_be_registered_but_any_port_goes(
    fake_oauth: FakeOAuthProvider,
) -> None:
    """Entra's rule for native apps: the registered http://localhost admits every port."""
    for port in (unused_port(), unused_port()):
        sign_in = MicrosoftSignIn(fake_oauth, [GRAPH_SEND], redirect_uri=f"http://localhost:{port}")
        assert visit(sign_in.url, fake_oauth.ca_file, follow=False).startswith(sign_in.redirect_uri)
    for unregistered in (f"http://127.0.0.1:{unused_port()}", "http://localhost:4000/other"):
        sign_in = MicrosoftSignIn(fake_oauth, [GRAPH_SEND], redirect_uri=unregistered)
        with pytest.raises(SignInError) as page:
            visit(sign_in.url, fake_oauth.ca_file)
        assert page.value.description.startswith("AADSTS50011:")
    fake_oauth.add_microsoft_client(MICROSOFT_CLIENT_ID, ["http://127.0.0.1"])
    numeric = MicrosoftSignIn(
        fake_oauth, [GRAPH_SEND], redirect_uri=f"http://127.0.0.1:{unused_port()}"
    )
    assert visit(numeric.url, fake_oauth.ca_file, follow=False).startswith(numeric.redirect_uri)


# --------------------------------------------------------------------------- Graph


def microsoft_tokens(
    fake: FakeOAuthProvider, http: requests.Session, scopes: list[str]
) -> dict[str, Any]:
    sign_in = MicrosoftSignIn(fake, scopes)
    response = sign_in.exchange(http, query(visit(sign_in.url, fake.ca_file))["code"])
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def graph_send(
    fake: FakeOAuthProvider, http: requests.Session, token: str | None, raw: bytes, me: str = "me"
) -> requests.Response:
    headers = {"Content-Type": "text/plain"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    path = "me" if me == "me" else f"users/{me}"
    return http.post(
        f"{fake.base_url}/v1.0/{path}/sendMail", data=base64.b64encode(raw), headers=headers
    )


def test_graph_send_accepts_mime_and_json(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    token = microsoft_tokens(fake_oauth, http, [GRAPH_SEND])["access_token"]
    response = graph_send(fake_oauth, http, token, mime())
    assert (response.status_code, response.content) == (202, b"")
    assert graph_send(fake_oauth, http, token, mime(), me=DEMO_USER).status_code == 202
    as_json = http.post(
        f"{fake_oauth.base_url}/v1.0/me/sendMail",
        json={
            "message": {
                "subject": "json send",
                "body": {"contentType": "Text", "content": "hi"},
                "toRecipients": [{"emailAddress": {"address": "bob@example.com"}}],
            },
            "saveToSentItems": False,
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert as_json.status_code == 202, as_json.text
    assert [m.api for m in fake_oauth.sent] == ["graph"] * 3
    assert b"Subject: json send" in fake_oauth.sent[-1].raw


@pytest.mark.parametrize(
    ("problem", "status", "code", "words"),
    [
        ("missing", 401, "InvalidAuthenticationToken", "empty"),
        ("expired", 401, "InvalidAuthenticationToken", "expired"),
        ("revoked", 401, "InvalidAuthenticationToken", "revoked"),
        ("scope", 403, "ErrorAccessDenied", "Access is denied"),
        ("other_user", 403, "ErrorAccessDenied", "Access is denied"),
        ("base64", 400, "ErrorMimeContentInvalidBase64String", "base64"),
    ],
)
def test_graph_send_refusals(
    fake_oauth: FakeOAuthProvider,
    http: requests.Session,
    problem: str,
    status: int,
    code: str,
    words: str,
) -> None:
    scopes = [OUTLOOK_SMTP] if problem == "scope" else [GRAPH_SEND]
    token: str | None = microsoft_tokens(fake_oauth, http, scopes)["access_token"]
    if problem == "missing":
        token = None
    elif problem == "expired":
        fake_oauth.expire_access_tokens()
    elif problem == "revoked":
        fake_oauth.revoke()
    if problem == "base64":
        response = http.post(
            f"{fake_oauth.base_url}/v1.0/me/sendMail",
            data=b"not base64!",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        )
    else:
        me = "someone@example.com" if problem == "other_user" else "me"
        response = graph_send(fake_oauth, http, token, mime(), me=me)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert words in response.json()["error"]["message"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert fake_oauth.sent == []


def test_graph_throttling_and_server_error_are_one_shot(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    token = microsoft_tokens(fake_oauth, http, [GRAPH_SEND])["access_token"]
    fake_oauth.fail_next("/v1.0/me/sendMail", 429, headers={"Retry-After": "3"})
    fake_oauth.fail_next("/v1.0/", 503)
    throttled = graph_send(fake_oauth, http, token, mime())
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert graph_send(fake_oauth, http, token, mime()).status_code == 503
    assert graph_send(fake_oauth, http, token, mime()).status_code == 202


# --------------------------------------------------------------------------- google-auth-oauthlib


def google_flow(fake: FakeOAuthProvider, scopes: list[str], redirect_uri: str | None) -> Flow:
    # oauthlib builds only https:// consent URLs: the same consent page on the HTTPS port.
    config = fake.google_client_config(browser_pages=False)
    flow: Flow = InstalledAppFlow.from_client_config(config, scopes, redirect_uri=redirect_uri)
    flow.oauth2session.trust_env = False
    flow.oauth2session.verify = str(fake.ca_file)
    return flow


def test_google_flow_paste_back(fake_oauth: FakeOAuthProvider, http: requests.Session) -> None:
    flow = google_flow(fake_oauth, [GMAIL_SEND], f"http://127.0.0.1:{unused_port()}/")
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge_method=S256" in url
    landed = visit(url, fake_oauth.ca_file)  # nothing listens: the user copies the address
    assert query(landed)["state"] == state
    # oauthlib refuses http:// here; run_local_server rewrites the scheme the same way.
    flow.fetch_token(authorization_response=landed.replace("http://", "https://", 1))
    credentials = flow.credentials
    assert fake_oauth.check_token(credentials.token, {GMAIL_SEND}) == DEMO_USER
    assert credentials.refresh_token.startswith("fake-rt-")

    fake_oauth.expire_access_tokens()
    old = credentials.token
    request = google.auth.transport.requests.Request(session=http)
    credentials.refresh(request)
    assert credentials.token != old
    assert fake_oauth.check_token(credentials.token, {GMAIL_SEND}) == DEMO_USER

    fake_oauth.revoke()
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        credentials.refresh(request)


def test_google_flow_wrong_verifier_is_rejected(fake_oauth: FakeOAuthProvider) -> None:
    flow = google_flow(fake_oauth, [GMAIL_SEND], f"http://127.0.0.1:{unused_port()}/")
    url, _ = flow.authorization_url(access_type="offline")
    landed = visit(url, fake_oauth.ca_file)
    flow.code_verifier = pkce()[0]
    with pytest.raises(Exception, match="Invalid code verifier"):
        flow.fetch_token(authorization_response=landed.replace("http://", "https://", 1))


class _FakeBrowser(webbrowser.BaseBrowser):
    """Registered with :mod:`webbrowser` so ``run_local_server`` "opens" the URL with visit()."""

    def __init__(self, ca_file: Path) -> None:
        super().__init__("mailkit-fake-browser")
        self.ca_file = ca_file
        self.threads: list[threading.Thread] = []
        self.landed: list[str] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        # In a thread: the app only starts serving its redirect after open() returns.
        thread = threading.Thread(target=lambda: self.landed.append(visit(url, self.ca_file)))
        thread.start()
        self.threads.append(thread)
        return True


def test_google_flow_run_local_server(fake_oauth: FakeOAuthProvider) -> None:
    browser = _FakeBrowser(fake_oauth.ca_file)
    webbrowser.register(browser.name, None, browser)
    flow = google_flow(fake_oauth, [MAIL_GOOGLE], None)
    assert isinstance(flow, InstalledAppFlow)
    credentials = flow.run_local_server(
        port=0,
        open_browser=True,
        browser=browser.name,
        authorization_prompt_message="",
        timeout_seconds=20,
        access_type="offline",
    )
    for thread in browser.threads:
        thread.join(10)
    assert browser.landed[0].startswith("http://localhost:")
    assert fake_oauth.check_token(credentials.token, {MAIL_GOOGLE}) == DEMO_USER


# --------------------------------------------------------------------------- msal


def msal_app(fake: FakeOAuthProvider, http: requests.Session) -> msal.PublicClientApplication:
    """A fresh app per test: MSAL caches identical failing requests per app object."""
    return msal.PublicClientApplication(
        MICROSOFT_CLIENT_ID,
        authority=fake.microsoft_authority(),
        instance_discovery=False,
        http_client=http,
    )


def device_flow(fake: FakeOAuthProvider, http: requests.Session, scopes: list[str]) -> Any:
    app = msal_app(fake, http)
    flow = app.initiate_device_flow(scopes=scopes)
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{fake.browser_url}/devicelogin"
    return app, app.acquire_token_by_device_flow(flow)


def test_msal_device_flow_approved_after_pending(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    app, result = device_flow(fake_oauth, http, [GRAPH_SEND])  # interval 1: one pending poll
    assert "access_token" in result, result
    assert fake_oauth.check_token(result["access_token"], {GRAPH_SEND}) == DEMO_USER
    assert [a["username"] for a in app.get_accounts()] == [DEMO_USER]


@pytest.mark.parametrize(
    ("outcome", "error", "code"),
    [
        ("decline", "authorization_declined", None),
        ("expire", "expired_token", 70020),
        ("blocked", "access_denied", 53003),
    ],
)
def test_msal_device_flow_refusals(
    fake_oauth: FakeOAuthProvider,
    http: requests.Session,
    outcome: Any,
    error: str,
    code: int | None,
) -> None:
    fake_oauth.device_interval = 0
    fake_oauth.device_outcome = outcome
    _, result = device_flow(fake_oauth, http, [OUTLOOK_SMTP])
    assert result["error"] == error
    if code is not None:
        assert code in result["error_codes"]
    if outcome == "blocked":
        assert result["error_description"].startswith("AADSTS53003: Access has been blocked")


def test_msal_auth_code_form_post_and_silent_refresh(
    fake_oauth: FakeOAuthProvider, http: requests.Session
) -> None:
    fake_oauth.token_lifetime = 60  # MSAL refreshes a cached token that expires within 5 min
    app = msal_app(fake_oauth, http)
    flow = app.initiate_auth_code_flow(
        [GRAPH_SEND], redirect_uri=f"http://localhost:{unused_port()}", response_mode="form_post"
    )
    landed = visit(flow["auth_uri"], fake_oauth.ca_file)
    assert landed.startswith(flow["redirect_uri"] + "?")
    result = app.acquire_token_by_auth_code_flow(flow, query(landed))
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == DEMO_USER
    (account,) = app.get_accounts()

    fake_oauth.expire_access_tokens()
    silent = app.acquire_token_silent([GRAPH_SEND], account=account)
    assert silent is not None
    assert silent["access_token"] != result["access_token"]
    assert fake_oauth.check_token(silent["access_token"], {GRAPH_SEND}) == DEMO_USER

    fake_oauth.revoke()
    failed = app.acquire_token_silent_with_error([GRAPH_SEND], account=account, force_refresh=True)
    assert failed is not None
    assert failed["error"] == "invalid_grant"
    assert failed["error_description"].startswith("AADSTS50173:")


def test_msal_consent_declined(fake_oauth: FakeOAuthProvider, http: requests.Session) -> None:
    fake_oauth.consent = "access_denied"
    app = msal_app(fake_oauth, http)
    flow = app.initiate_auth_code_flow(
        [GRAPH_SEND], redirect_uri=f"http://localhost:{unused_port()}", response_mode="form_post"
    )
    answer = query(visit(flow["auth_uri"], fake_oauth.ca_file))
    assert answer["error"] == "access_denied"
    result = app.acquire_token_by_auth_code_flow(flow, answer)
    assert result["error"] == "access_denied"
    assert result["error_description"].startswith("AADSTS65004:")


def test_visit_delivers_a_form_post_to_a_listening_receiver(fake_oauth: FakeOAuthProvider) -> None:
    received: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                data = b""
                while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
                    data += connection.recv(65536)
                received.append(data)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        thread = threading.Thread(target=serve)
        thread.start()
        fake_oauth.add_microsoft_client(MICROSOFT_CLIENT_ID, ["http://127.0.0.1/cb"])
        sign_in = MicrosoftSignIn(
            fake_oauth,
            [GRAPH_SEND],
            redirect_uri=f"http://127.0.0.1:{port}/cb",
            response_mode="form_post",
        )
        landed = visit(sign_in.url, fake_oauth.ca_file)
        thread.join(10)
    assert landed.startswith(f"http://127.0.0.1:{port}/cb?code=")
    assert received[0].startswith(b"POST /cb HTTP/1.1")
    assert b"code=fake-code-" in received[0]
    with pytest.raises(ValueError, match="local fake"):
        visit("https://accounts.google.com/o/oauth2/auth", fake_oauth.ca_file)


# --------------------------------------------------------------------------- the demo server


async def xoauth2(demo: DemoSettings, user: str, token: str, send: bool = False) -> int:
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    client = aiosmtplib.SMTP(
        hostname=demo.host,
        port=demo.tls_port,
        use_tls=True,
        tls_context=context,
        local_hostname="client.example",
    )
    async with client:
        protocol = client.protocol
        try:
            code = (await client.auth_xoauth2(user, token)).code
        except aiosmtplib.SMTPAuthenticationError as refused:
            code = refused.code
        else:
            if send:
                await client.send_message(_message(user))
    await _gone(protocol)
    return code


async def _gone(protocol: object) -> None:
    """Wait out the TLS shutdown, so no socket outlives ``asyncio.run`` and warns later."""
    for _ in range(200):
        if getattr(protocol, "transport", None) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the demo server never closed the TLS connection")


def _message(user: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = user, "bob@example.com", "xoauth2 demo"
    message.set_content("sent with a token from the fake provider\n")
    return message


def demo_token(server: DemoServer, scopes: list[str]) -> str:
    with session(server.settings.ca_file) as http:
        return str(google_tokens(server.oauth, http, scopes)["access_token"])


def test_demo_smtp_accepts_a_fake_issued_token(fake_oauth_demo: DemoServer) -> None:
    demo = fake_oauth_demo.settings
    token = demo_token(fake_oauth_demo, [MAIL_GOOGLE])
    assert asyncio.run(xoauth2(demo, DEMO_USER.upper(), token, send=True)) == 235
    box = read_mailbox(demo.directory)
    assert list(box["subject"]) == ["xoauth2 demo"]
    assert list(box["via"]) == ["smtp"]


@pytest.mark.parametrize("problem", ["wrong_user", "revoked", "expired", "api_scope"])
def test_demo_smtp_refuses_a_bad_fake_token(fake_oauth_demo: DemoServer, problem: str) -> None:
    demo = fake_oauth_demo.settings
    token = demo_token(fake_oauth_demo, [GMAIL_SEND] if problem == "api_scope" else [MAIL_GOOGLE])
    user = "greylisted@example.com" if problem == "wrong_user" else DEMO_USER
    if problem == "revoked":
        fake_oauth_demo.oauth.revoke()
    elif problem == "expired":
        fake_oauth_demo.oauth.expire_access_tokens()
    assert asyncio.run(xoauth2(demo, user, token)) == 535


def test_demo_smtp_accepts_a_microsoft_device_code_token(fake_oauth_demo: DemoServer) -> None:
    demo = fake_oauth_demo.settings
    fake_oauth_demo.oauth.device_interval = 0
    with session(demo.ca_file) as http:
        app = msal.PublicClientApplication(
            MICROSOFT_CLIENT_ID,
            authority=demo.microsoft_authority(),
            instance_discovery=False,
            http_client=http,
        )
        result = app.acquire_token_by_device_flow(app.initiate_device_flow([OUTLOOK_SMTP]))
    assert asyncio.run(xoauth2(demo, DEMO_USER, result["access_token"])) == 235


def test_api_sends_land_in_the_demo_mailbox(fake_oauth_demo: DemoServer) -> None:
    demo = fake_oauth_demo.settings
    fake = fake_oauth_demo.oauth
    with session(demo.ca_file) as http:
        google = google_tokens(fake, http, [GMAIL_SEND])["access_token"]
        microsoft = microsoft_tokens(fake, http, [GRAPH_SEND])["access_token"]
        assert gmail_send(fake, http, google, mime(subject="via gmail")).status_code == 200
        assert graph_send(fake, http, microsoft, mime(subject="via graph")).status_code == 202
    box = read_mailbox(demo.directory)
    assert list(box["subject"]) == ["via gmail", "via graph"]
    assert list(box["via"]) == ["gmail_api", "graph"]
    assert list(box["auth_user"]) == [DEMO_USER, DEMO_USER]
    assert all(version.startswith("TLSv1.") for version in box["tls"])
    assert read_message(box["path"].iloc[1])["Subject"] == "via graph"


def test_with_demo_ca_writes_only_the_ca_and_listens_on_loopback(tmp_path: Path) -> None:
    with FakeOAuthProvider.with_demo_ca(tmp_path, signed_in="someone@example.com") as fake:
        assert [p.name for p in tmp_path.iterdir()] == ["ca.pem"]
        assert fake.base_url.startswith("https://127.0.0.1:")
        sign_in = GoogleSignIn(fake, [MAIL_GOOGLE])
        landed = visit(sign_in.url, fake.ca_file, follow=False)
        assert landed.startswith(sign_in.redirect_uri)
        with session(fake.ca_file) as http:
            tokens = sign_in.exchange(http, query(landed)["code"]).json()
        assert fake.check_token(tokens["access_token"], {MAIL_GOOGLE}) == "someone@example.com"
        fake.revoke("other@example.com")  # another account's revocation leaves this one alone
        assert fake.check_token(tokens["access_token"], {MAIL_GOOGLE}) == "someone@example.com"
        with pytest.raises(TokenRejected) as rejected:
            fake.check_token(tokens["access_token"], {GRAPH_SEND})
        assert rejected.value.reason == "insufficient_scope"
    assert not fake.running


# --------------------------------------------------------------------------- the consent page


def browser_sign_in(fake: FakeOAuthProvider, scopes: list[str]) -> GoogleSignIn:
    """A Google sign-in whose URL is the plain-HTTP consent page a browser opens."""
    sign_in = GoogleSignIn(fake, scopes)
    sign_in.url = sign_in.url.replace(fake.base_url, fake.browser_url, 1)
    return sign_in


def plain(method: str, url: str, form: dict[str, str] | None = None) -> requests.Response:
    """A browser without the demo CA: plain HTTP, no redirects followed."""
    with requests.Session() as browser:
        browser.trust_env = False
        return browser.request(method, url, data=form, allow_redirects=False, timeout=10)


def consent_ticket(page: str) -> str:
    reader = _FormFields()
    reader.feed(page)
    return reader.fields["ticket"]


class _FormFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("type") == "hidden":
            self.fields[values.get("name") or ""] = values.get("value") or ""


def test_the_consent_page_is_plain_http_on_loopback_and_asks_first(
    fake_oauth: FakeOAuthProvider,
) -> None:
    assert urlsplit(fake_oauth.browser_url).scheme == "http"
    assert urlsplit(fake_oauth.browser_url).hostname == "127.0.0.1"
    sign_in = browser_sign_in(fake_oauth, [GMAIL_SEND, MAIL_GOOGLE])
    page = plain("GET", sign_in.url)
    assert page.status_code == 200  # a page, not a redirect: nothing is granted yet
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["X-Frame-Options"] == "DENY"
    for text in ("Approve", "Deny", DEMO_USER, "Send email on your behalf (Gmail API)", GMAIL_SEND):
        assert text in page.text
    assert "https://" not in page.text.replace(GMAIL_SEND, "").replace(MAIL_GOOGLE, "")
    assert fake_oauth.issued_tokens() == []

    ticket = consent_ticket(page.text)
    approved = plain(
        "POST", f"{fake_oauth.browser_url}/consent", {"ticket": ticket, "decision": "approve"}
    )
    assert approved.status_code == 302
    landed = query(approved.headers["Location"])
    assert approved.headers["Location"].startswith(sign_in.redirect_uri + "?")
    assert landed["state"] == sign_in.state
    with session(fake_oauth.ca_file) as http:  # the code is redeemed on HTTPS as ever
        response = sign_in.exchange(http, landed["code"])
    assert response.status_code == 200, response.text

    again = plain(
        "POST", f"{fake_oauth.browser_url}/consent", {"ticket": ticket, "decision": "approve"}
    )
    assert again.status_code == 400  # a ticket answers once
    assert "expired or was already answered" in again.text


def test_deny_on_the_consent_page_sends_access_denied(fake_oauth: FakeOAuthProvider) -> None:
    sign_in = browser_sign_in(fake_oauth, [GMAIL_SEND])
    ticket = consent_ticket(plain("GET", sign_in.url).text)
    unknown = plain("POST", f"{fake_oauth.browser_url}/consent", {"ticket": ticket})
    assert unknown.status_code == 400  # neither button: ask again, the ticket stays good
    denied = plain(
        "POST", f"{fake_oauth.browser_url}/consent", {"ticket": ticket, "decision": "deny"}
    )
    assert denied.status_code == 302
    assert query(denied.headers["Location"]) == {"error": "access_denied", "state": sign_in.state}
    assert visit(sign_in.url, fake_oauth.ca_file, press="deny").startswith(sign_in.redirect_uri)
    assert fake_oauth.issued_tokens() == []


def test_an_unanswered_consent_page_expires(fake_oauth: FakeOAuthProvider) -> None:
    sign_in = browser_sign_in(fake_oauth, [GMAIL_SEND])
    ticket = consent_ticket(plain("GET", sign_in.url).text)
    with fake_oauth._lock:
        fake_oauth._pending[ticket].expires_at = 0.0
    late = plain(
        "POST", f"{fake_oauth.browser_url}/consent", {"ticket": ticket, "decision": "approve"}
    )
    assert late.status_code == 400


def test_visit_presses_approve_on_either_port(fake_oauth: FakeOAuthProvider) -> None:
    for sign_in in (browser_sign_in(fake_oauth, [MAIL_GOOGLE]), GoogleSignIn(fake_oauth, [])):
        landed = query(visit(sign_in.url, fake_oauth.ca_file))
        assert landed["state"] == sign_in.state
        assert landed["code"].startswith("fake-code-")


def test_the_plain_http_port_serves_no_tokens_or_apis(fake_oauth: FakeOAuthProvider) -> None:
    sign_in = GoogleSignIn(fake_oauth, [GMAIL_SEND])
    code = query(visit(sign_in.url, fake_oauth.ca_file))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": sign_in.redirect_uri,
        "code_verifier": sign_in.verifier,
        "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_CLIENT_SECRET,
    }
    for path in (
        "/token",
        "/revoke",
        f"/{DEMO_TENANT}/oauth2/v2.0/token",
        f"/{DEMO_TENANT}/oauth2/v2.0/devicecode",
        "/gmail/v1/users/me/messages/send",
        "/v1.0/me/sendMail",
    ):
        refused = plain("POST", f"{fake_oauth.browser_url}{path}", form)
        assert refused.status_code == 404, path
        assert fake_oauth.base_url in refused.json()["error_description"]
    config = plain(
        "GET", f"{fake_oauth.browser_url}/{DEMO_TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert config.status_code == 404
    assert fake_oauth.issued_tokens() == []  # the code was never redeemed over plain HTTP
    with session(fake_oauth.ca_file) as http:
        assert sign_in.exchange(http, code).status_code == 200
