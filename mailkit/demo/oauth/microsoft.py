"""The fake Microsoft identity platform (Entra ID) and Graph's ``sendMail``.

MSAL reads the tenant's OpenID configuration, then uses the authorization-code flow with a
loopback redirect (registered as ``http://localhost``; Entra ignores the port) or the device-code
flow. Errors carry ``AADSTS`` numbers and ``error_codes``, tokens an unsigned ``id_token`` and
``client_info`` (MSAL only decodes them, to know the account).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from email import policy
from email.message import EmailMessage
from typing import Any

from mailkit.demo.oauth.core import (
    _PARSER,
    ProviderCore,
    SentMessage,
    TokenRejected,
    _aad,
    _b64url,
    _Client,
    _DeviceCode,
    _first,
    _Grant,
    _oauth_error,
    _scopes,
    _stable_id,
)
from mailkit.demo.oauth.server import _Reply

MICROSOFT_CLIENT_ID = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
DEMO_TENANT = "demo-tenant"
#: Microsoft's redirect for apps that let the user paste the answer back (no local receiver).
NATIVE_CLIENT_REDIRECT = "https://login.microsoftonline.com/common/oauth2/nativeclient"

GRAPH_SEND_SCOPES = frozenset({"Mail.Send", "https://graph.microsoft.com/Mail.Send"})


def _graph_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> _Reply:
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    inner = {"date": now, "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    return _Reply.json(status, body, headers)


class MicrosoftEndpoints(ProviderCore):
    """Microsoft's discovery, token and device-code endpoints and Graph's ``sendMail``."""

    def add_microsoft_client(
        self, client_id: str, redirect_uris: Iterable[str] = ("http://localhost",)
    ) -> None:
        """Register a Microsoft public client ("Mobile and desktop applications" platform).

        As in Entra, a loopback redirect must be registered (``http://localhost`` by default,
        as the setup instructions say); its port is not compared.
        """
        uris = (NATIVE_CLIENT_REDIRECT, *redirect_uris)
        with self._lock:
            self._clients[client_id] = _Client("microsoft", client_id, None, uris)

    def microsoft_authority(self, tenant: str = DEMO_TENANT) -> str:
        """What to pass as MSAL's ``authority`` (with ``instance_discovery=False``)."""
        return f"{self.base_url}/{tenant}"

    def _microsoft_tokens(self, grant: _Grant, nonce: str | None) -> _Reply:
        refresh = "offline_access" in grant.scopes
        access, refresh_token = self._issue(grant, refresh=refresh)
        tenant = grant.tenant or DEMO_TENANT
        oid, tid = _stable_id("user", grant.account.casefold()), _stable_id("tenant", tenant)
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": grant.client_id,
            "iss": f"{self.base_url}/{tid}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "name": grant.account.partition("@")[0],
            "oid": oid,
            "preferred_username": grant.account,
            "sub": _stable_id("sub", grant.client_id, grant.account.casefold()),
            "tid": tid,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": access,
            # Unsigned: MSAL only decodes it, to know the account (and the nonce).
            "id_token": f"{header}.{_b64url(json.dumps(claims).encode())}.",
            "client_info": _b64url(json.dumps({"uid": oid, "utid": tid}).encode()),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return _Reply.json(200, body, {"Cache-Control": "no-store"})

    # -- Microsoft discovery

    def _openid_configuration(self, tenant: str) -> _Reply:
        base = f"{self.base_url}/{tenant}"
        tid = _stable_id("tenant", tenant)
        return _Reply.json(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.base_url}/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
                # Opened by the user's browser: the plain-HTTP loopback origin (no CA to trust).
                "authorization_endpoint": f"{self.browser_url}/{tenant}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid"],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            },
        )

    # -- sign-in

    def _microsoft_client(self, tenant: str, form: Mapping[str, list[str]]) -> _Client | _Reply:
        client_id = _first(form, "client_id") or ""
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or client.provider != "microsoft":
            text = _aad(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
            return _oauth_error(400, "unauthorized_client", text, codes=[700016])
        if _first(form, "client_secret"):
            text = _aad(
                700025,
                "Client is public so neither 'client_assertion' nor "
                "'client_secret' should be presented.",
            )
            return _oauth_error(401, "invalid_client", text, codes=[700025])
        return client

    def _microsoft_token(self, tenant: str, form: Mapping[str, list[str]]) -> _Reply:
        client = self._microsoft_client(tenant, form)
        if isinstance(client, _Reply):
            return client
        grant_type = _first(form, "grant_type")
        if grant_type == "authorization_code":
            code = self._take_code(client, form)
            if code == "used":
                text = _aad(
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new "
                    "valid code or use an existing refresh token.",
                )
                return _oauth_error(400, "invalid_grant", text, codes=[54005])
            if code == "expired":
                text = _aad(
                    70008,
                    "The provided authorization code or refresh token has expired due to "
                    "inactivity. Send a new interactive authorization request for this user "
                    "and resource.",
                )
                return _oauth_error(400, "invalid_grant", text, codes=[70008])
            if isinstance(code, str):
                text = _aad(70000, "The provided value for the 'code' parameter is not valid.")
                return _oauth_error(400, "invalid_grant", text, codes=[70000])
            if code.redirect_uri != _first(form, "redirect_uri"):
                text = _aad(
                    50011,
                    f"The redirect URI '{_first(form, 'redirect_uri')}' specified in the request "
                    "does not match the redirect URI used to request the authorization code.",
                )
                return _oauth_error(400, "invalid_grant", text, codes=[50011])
            if not self._verifier_ok(form, code.challenge):
                text = _aad(
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
                return _oauth_error(400, "invalid_grant", text, codes=[501481])
            return self._microsoft_tokens(code.grant, code.nonce)
        if grant_type == "refresh_token":
            grant = self._refreshable(client, _first(form, "refresh_token"))
            if grant is None:
                text = _aad(
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token "
                    "is needed. The user might have changed or reset their password.",
                )
                return _oauth_error(400, "invalid_grant", text, codes=[50173])
            return self._microsoft_tokens(grant, None)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_poll(client, tenant, _first(form, "device_code") or "")
        text = _aad(70003, f"The app requested an unsupported grant type '{grant_type}'.")
        return _oauth_error(400, "unsupported_grant_type", text, codes=[70003])

    # -- Microsoft's device-code flow

    def _device_code(self, tenant: str, form: Mapping[str, list[str]]) -> _Reply:
        client = self._microsoft_client(tenant, form)
        if isinstance(client, _Reply):
            return client
        device_code = f"fake-dc-{secrets.token_urlsafe(24)}"
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        lifetime = 900
        with self._lock:
            self._devices[device_code] = _DeviceCode(
                client.client_id, _scopes(_first(form, "scope")), tenant, time.time() + lifetime
            )
        uri = f"{self.browser_url}/devicelogin"
        return _Reply.json(
            200,
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": lifetime,
                "interval": self.device_interval,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the "
                f"code {user_code} to authenticate.",
            },
        )

    def _device_poll(self, client: _Client, tenant: str, device_code: str) -> _Reply:
        """The user's answer, as chosen by :attr:`device_outcome`; pending on the first poll."""
        with self._lock:
            device = self._devices.get(device_code)
            if device is not None:
                device.polls += 1
            outcome = self.device_outcome
        if device is None or device.client_id != client.client_id:
            text = _aad(
                70019, "The provided value for the input parameter 'device_code' is not valid."
            )
            return _oauth_error(400, "invalid_grant", text, codes=[70019])
        if outcome == "expire" or device.expires_at <= time.time():
            text = _aad(
                70020,
                "The provided value for the input parameter 'device_code' is not "
                "valid. This device code has expired.",
            )
            return _oauth_error(400, "expired_token", text, codes=[70020])
        if outcome == "decline":
            text = _aad(70000, "The user declined to authorize the request.")
            return _oauth_error(400, "authorization_declined", text, codes=[70000])
        if outcome == "blocked":
            text = _aad(
                53003,
                "Access has been blocked by Conditional Access policies. The "
                "access policy does not allow token issuance.",
            )
            return _oauth_error(400, "access_denied", text, codes=[53003])
        if device.polls == 1:
            text = _aad(
                70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling."
            )
            return _oauth_error(400, "authorization_pending", text, codes=[70016])
        with self._lock:
            self._devices.pop(device_code, None)
        grant = _Grant("microsoft", client.client_id, self.signed_in, device.scopes, tenant)
        return self._microsoft_tokens(grant, None)

    def _graph_send(self, user: str | None, headers: Mapping[str, str], body: bytes) -> _Reply:
        realm = (
            f'Bearer realm="", authorization_uri="{self.base_url}/common/oauth2/authorize", '
            'client_id="00000003-0000-0000-c000-000000000000"'
        )
        token = self._bearer(headers)
        if token is None:
            return _graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
                {"WWW-Authenticate": realm},
            )
        try:
            account = self.check_token(token, GRAPH_SEND_SCOPES)
        except TokenRejected as rejected:
            if rejected.reason == "insufficient_scope":
                return _graph_error(
                    403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                )
            message = {
                "expired": "Lifetime validation failed, the token is expired.",
                "revoked": "Access token has been revoked; sign in again.",
            }.get(rejected.reason, "Access token validation failure. Invalid audience.")
            return _graph_error(
                401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": realm}
            )
        oid = _stable_id("user", account.casefold())
        if user is not None and user.casefold() not in (account.casefold(), oid):
            return _graph_error(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "text/plain":
            try:
                raw = base64.b64decode(b"".join(body.split()), validate=True)
            except ValueError:
                return _graph_error(
                    400,
                    "ErrorMimeContentInvalidBase64String",
                    "Invalid base64 string for MIME content.",
                )
            if not raw.strip():
                return _graph_error(400, "ErrorMimeContentInvalid", "The MIME content is empty.")
        elif content_type == "application/json":
            try:
                raw = _graph_json_to_mime(json.loads(body), account)
            except (ValueError, KeyError, TypeError, AttributeError):
                return _graph_error(400, "ErrorInvalidRequest", "Cannot read the message.")
        else:
            return _graph_error(
                415, "UnsupportedMediaType", f"Content-Type {content_type!r} is not supported."
            )
        parsed = _PARSER.parsebytes(raw, headersonly=True)
        if not any(parsed.get(name) for name in ("To", "Cc", "Bcc")):
            return _graph_error(
                400, "ErrorInvalidRecipients", "At least one recipient isn't valid."
            )
        self._accept(SentMessage("graph", account, raw))
        return _Reply(202, headers={"request-id": str(uuid.uuid4())})


def _graph_json_to_mime(data: Mapping[str, Any], account: str) -> bytes:
    """Graph's JSON message (``{"message": {...}}``) as the MIME a mailbox would store."""
    message = data["message"]
    mime = EmailMessage()

    def addresses(key: str) -> str:
        return ", ".join(r["emailAddress"]["address"] for r in message.get(key) or [])

    sender = (message.get("from") or {}).get("emailAddress", {}).get("address") or account
    mime["From"] = sender
    for header, key in (("To", "toRecipients"), ("Cc", "ccRecipients"), ("Bcc", "bccRecipients")):
        if value := addresses(key):
            mime[header] = value
    mime["Subject"] = str(message.get("subject", ""))
    content = message.get("body") or {}
    subtype = "html" if str(content.get("contentType", "")).lower() == "html" else "plain"
    mime.set_content(str(content.get("content", "")), subtype=subtype)
    return mime.as_bytes(policy=policy.SMTP)
