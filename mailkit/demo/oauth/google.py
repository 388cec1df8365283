"""The fake Google: OAuth for a "Desktop app" client and the Gmail API's send.

Google authenticates the client with HTTP Basic on the code exchange and with the body on a
refresh (google-auth-oauthlib does both); it issues a refresh token only for
``access_type=offline``, and revoking any token revokes the whole grant. Gmail API errors carry
``error.status`` (gRPC) and ``error.errors[].reason``, as mailkit's diagnosis expects.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from mailkit.demo.oauth.core import (
    _PARSER,
    ProviderCore,
    SentMessage,
    TokenRejected,
    _b64url_decode,
    _Client,
    _first,
    _Grant,
    _oauth_error,
)
from mailkit.demo.oauth.server import _Reply

GOOGLE_CLIENT_ID = "mailkit-demo.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - a public demo value
GOOGLE_PROJECT_ID = "mailkit-demo"

#: Scopes that allow each kind of send (as the real services name them).
GMAIL_API_SCOPES = frozenset(
    {"https://www.googleapis.com/auth/gmail.send", "https://mail.google.com/"}
)


_GOOGLE_REALM = 'Bearer realm="https://accounts.google.com/"'


def _gmail_error(
    status: int,
    message: str,
    grpc_status: str,
    reason: str,
    *,
    www_authenticate: str | None = None,
    info_reason: str | None = None,
) -> _Reply:
    """Google's API error body: ``error.status`` (gRPC) and ``error.errors[].reason``."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": grpc_status,
    }
    if info_reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": info_reason,
                "domain": "googleapis.com",
                "metadata": {"service": "gmail.googleapis.com", "method": "send"},
            }
        ]
    headers = {"WWW-Authenticate": www_authenticate} if www_authenticate else {}
    return _Reply.json(status, {"error": error}, headers)


class GoogleEndpoints(ProviderCore):
    """Google's token and revocation endpoints and the Gmail API's ``messages.send``."""

    def add_google_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> None:
        """Register a Google "Desktop app" client (loopback redirects are always allowed)."""
        with self._lock:
            self._clients[client_id] = _Client(
                "google", client_id, client_secret, tuple(redirect_uris)
            )

    def google_client_config(
        self,
        client_id: str = GOOGLE_CLIENT_ID,
        client_secret: str = GOOGLE_CLIENT_SECRET,
        *,
        browser_pages: bool = True,
    ) -> dict[str, Any]:
        """The client JSON Google Cloud Console lets you download, pointing at this fake.

        Its ``auth_uri`` is the plain-HTTP consent page (:attr:`browser_url`); mailkit's
        Google sign-in accepts that. oauthlib alone builds only https:// consent URLs: for
        google-auth-oauthlib used directly, ``browser_pages=False`` puts the same page on the
        HTTPS port.
        """
        browser_url = self.browser_url if browser_pages else None
        return google_client_config(
            self.base_url, client_id, client_secret, browser_url=browser_url
        )

    def _google_tokens(self, grant: _Grant, *, refresh: bool) -> _Reply:
        access, refresh_token = self._issue(grant, refresh=refresh)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.token_lifetime,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return _Reply.json(200, body, {"Cache-Control": "no-store"})

    # -- Google's token endpoint

    def _google_client(
        self, form: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> _Client | _Reply:
        """HTTP Basic (the code exchange of google-auth-oauthlib) or the body (its refresh)."""
        client_id, secret = _first(form, "client_id"), _first(form, "client_secret")
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return _oauth_error(400, "invalid_request", "Malformed Authorization header.")
            user, _, password = decoded.partition(":")
            client_id, secret = unquote(user), unquote(password)
        with self._lock:
            client = self._clients.get(client_id or "")
        if client is None or client.provider != "google":
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not secret:
            return _oauth_error(400, "invalid_request", "client_secret is missing.")
        if not secrets.compare_digest(secret, client.secret or ""):
            return _oauth_error(401, "invalid_client", "Unauthorized")
        return client

    def _google_token(self, form: Mapping[str, list[str]], headers: Mapping[str, str]) -> _Reply:
        client = self._google_client(form, headers)
        if isinstance(client, _Reply):
            return client
        grant_type = _first(form, "grant_type")
        if grant_type == "authorization_code":
            code = self._take_code(client, form)
            if isinstance(code, str):
                return _oauth_error(400, "invalid_grant", "Bad Request")
            if code.redirect_uri != _first(form, "redirect_uri"):
                return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            if not self._verifier_ok(form, code.challenge):
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
            return self._google_tokens(code.grant, refresh=code.offline)
        if grant_type == "refresh_token":
            grant = self._refreshable(client, _first(form, "refresh_token"))
            if grant is None:
                return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            return self._google_tokens(grant, refresh=False)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _google_revoke(self, form: Mapping[str, list[str]]) -> _Reply:
        with self._lock:
            found = self._tokens.get(_first(form, "token") or "")
            if found is None or found.grant.revoked:
                return _oauth_error(400, "invalid_token", "Token expired or revoked")
            found.grant.revoked = True
        return _Reply.json(200, {})

    def _gmail_send(
        self, user_id: str, upload: bool, headers: Mapping[str, str], body: bytes
    ) -> _Reply:
        token = self._bearer(headers)
        if token is None:
            return _gmail_error(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
                "required",
                www_authenticate=_GOOGLE_REALM,
            )
        try:
            account = self.check_token(token, GMAIL_API_SCOPES)
        except TokenRejected as rejected:
            if rejected.reason == "insufficient_scope":
                scope = " ".join(sorted(GMAIL_API_SCOPES))
                return _gmail_error(
                    403,
                    "Request had insufficient authentication scopes.",
                    "PERMISSION_DENIED",
                    "insufficientPermissions",
                    www_authenticate=(
                        f'{_GOOGLE_REALM}, error="insufficient_scope", scope="{scope}"'
                    ),
                    info_reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                )
            return _gmail_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
                "authError",
                www_authenticate=f'{_GOOGLE_REALM}, error="invalid_token"',
                info_reason="ACCESS_TOKEN_EXPIRED" if rejected.reason == "expired" else None,
            )
        if user_id != "me" and user_id.casefold() != account.casefold():
            return _gmail_error(
                403, f"Delegation denied for {account}", "PERMISSION_DENIED", "forbidden"
            )
        raw: bytes | None
        if upload:
            raw = body or None
        else:
            try:
                text = json.loads(body or b"{}").get("raw")
                raw = _b64url_decode(text) if isinstance(text, str) and text else None
            except (ValueError, AttributeError, TypeError):
                return _gmail_error(
                    400, "Invalid JSON payload received.", "INVALID_ARGUMENT", "invalid"
                )
        if raw is None:
            return _gmail_error(
                400,
                "'raw' RFC822 payload message string or uploading message via /upload/* URL "
                "required",
                "INVALID_ARGUMENT",
                "invalidArgument",
            )
        parsed = _PARSER.parsebytes(raw, headersonly=True)
        if not any(parsed.get(name) for name in ("To", "Cc", "Bcc")):
            return _gmail_error(
                400, "Recipient address required", "INVALID_ARGUMENT", "invalidArgument"
            )
        message_id = secrets.token_hex(8)
        self._accept(SentMessage("gmail_api", account, raw))
        return _Reply.json(200, {"id": message_id, "threadId": message_id, "labelIds": ["SENT"]})


def google_client_config(
    base_url: str,
    client_id: str = GOOGLE_CLIENT_ID,
    client_secret: str = GOOGLE_CLIENT_SECRET,
    *,
    browser_url: str | None = None,
) -> dict[str, Any]:
    """The "Desktop app" client JSON from Google Cloud Console, for the fake at ``base_url``;
    the consent page (``auth_uri``) is on ``browser_url`` when given."""
    return {
        "installed": {
            "client_id": client_id,
            "project_id": GOOGLE_PROJECT_ID,
            "auth_uri": f"{browser_url or base_url}/o/oauth2/auth",
            "token_uri": f"{base_url}/token",
            "auth_provider_x509_cert_url": f"{base_url}/oauth2/v1/certs",
            "client_secret": client_secret,
            "redirect_uris": ["http://localhost"],
        }
    }
