"""A local fake of Google's and Microsoft's OAuth services and of the Gmail API and Graph.

Consent, tokens and API sends can then be shown and tested end to end without a cloud tenant:
the real client libraries (google-auth-oauthlib, msal, requests) talk to it unchanged, because
its paths mirror the real services under one root (``https://127.0.0.1:PORT``)::

    accounts.google.com/o/oauth2/auth           {base}/o/oauth2/auth
    oauth2.googleapis.com/token | /revoke       {base}/token | {base}/revoke
    gmail.googleapis.com                        {base}   (POST /gmail/v1/users/me/messages/send;
                                                GET .../messages?q= and .../messages/{id})
    login.microsoftonline.com/{tenant}          {base}/{tenant}  (openid-configuration,
                                                oauth2/v2.0/authorize | token | devicecode)
    graph.microsoft.com                         {base}   (POST /v1.0/me/sendMail; GET
                                                /v1.0/me/messages, .../$value, mailFolders)

Tokens and APIs are on HTTPS (MSAL refuses an ``http://`` authority, oauthlib an ``http://``
token endpoint), with a certificate for ``127.0.0.1`` and ``localhost`` from a local CA. The
pages a person's browser opens (the consent page with its Approve and Deny buttons, the device
login page) are served on a second port in plain HTTP (``http://127.0.0.1:PORT``): a loopback
origin is a secure context that a browser opens without trusting the demo CA, so no certificate
warning stands between the user and the consent page. Both listen on ``127.0.0.1`` only.
Unattended runs approve with :func:`visit`, which presses Approve the way a person would.
Nothing starts the fake implicitly: a test or the demo server constructs it.
Errors are shaped like the real services' (status, JSON body, ``WWW-Authenticate``), so the
diagnosis mailkit shows for the fake is the one an admin would see for the real thing.

The client ids and the secret are public demo values, like the demo SMTP password: they only
ever open this fake.

One module per part: :mod:`.core` (what both services share: grants, codes, tokens, the consent
page), :mod:`.google`, :mod:`.microsoft`, :mod:`.server` (HTTP) and :mod:`.browser`
(:func:`visit`); :class:`FakeOAuthProvider` here routes each request to its service.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from mailkit.demo.oauth.browser import SignInError, visit
from mailkit.demo.oauth.core import (
    _RESERVED,
    CONSENT_LIFETIME,
    DEFAULT_ACCOUNT,
    SMTP_SCOPES,
    ConsentMode,
    DeviceOutcome,
    SentMessage,
    TokenProblem,
    TokenRejected,
)
from mailkit.demo.oauth.google import (
    GMAIL_API_SCOPES,
    GOOGLE_CLIENT_ID,
    GOOGLE_CLIENT_SECRET,
    GOOGLE_PROJECT_ID,
    GoogleEndpoints,
    google_client_config,
)
from mailkit.demo.oauth.mailbox import GMAIL_READ_SCOPES, GRAPH_READ_SCOPES, MailboxEndpoints
from mailkit.demo.oauth.microsoft import (
    DEMO_TENANT,
    GRAPH_SEND_SCOPES,
    MICROSOFT_CLIENT_ID,
    NATIVE_CLIENT_REDIRECT,
    MicrosoftEndpoints,
)
from mailkit.demo.oauth.server import BIND_ADDRESS, _Reply, tls_failure_line

__all__ = [
    "BIND_ADDRESS",
    "CONSENT_LIFETIME",
    "DEFAULT_ACCOUNT",
    "DEMO_TENANT",
    "GMAIL_API_SCOPES",
    "GMAIL_READ_SCOPES",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "GOOGLE_PROJECT_ID",
    "GRAPH_READ_SCOPES",
    "GRAPH_SEND_SCOPES",
    "MICROSOFT_CLIENT_ID",
    "NATIVE_CLIENT_REDIRECT",
    "SMTP_SCOPES",
    "ConsentMode",
    "DeviceOutcome",
    "FakeOAuthProvider",
    "SentMessage",
    "SignInError",
    "TokenProblem",
    "TokenRejected",
    "google_client_config",
    "tls_failure_line",
    "visit",
]


class FakeOAuthProvider(GoogleEndpoints, MicrosoftEndpoints, MailboxEndpoints):
    """Google's and Microsoft's sign-in, tokens, Gmail API and Graph send, on loopback HTTPS.

    Thread-safe: the HTTP server answers each connection in its own thread while a test changes
    modes or calls the hooks. Tests set :attr:`consent` and :attr:`device_outcome` to choose
    the answer a user would give; :meth:`expire_access_tokens`, :meth:`revoke` and
    :meth:`fail_next` make the failures that otherwise take an hour or an admin. A context
    manager; ``start()`` / ``stop()`` too.
    """

    def __init__(self, context: ssl.SSLContext, ca_file: Path | str, **options: Any) -> None:
        """See :class:`~mailkit.demo.oauth.core.ProviderCore`; the demo's Google and Microsoft
        clients are registered from the start."""
        super().__init__(context, ca_file, **options)
        self.add_google_client(GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)
        self.add_microsoft_client(MICROSOFT_CLIENT_ID)

    # -- routing

    def _handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        tls: tuple[str, str] | None = None,
        *,
        browser: bool = False,
    ) -> _Reply:
        """``browser``: the request came to the plain-HTTP port, which serves only the pages
        a person's browser opens; tokens and API calls never travel there."""
        self._request_tls.value = tls
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        hang_up: float | None = None
        with self._lock:
            for injected in self._injected:
                if path.startswith(injected.prefix):
                    self._injected.remove(injected)
                    if injected.reply is not None:
                        return injected.reply
                    hang_up = injected.hang_up_after
                    break
        if browser and not _browser_page(method, path):
            return _Reply.json(
                404,
                {
                    "error": "not_found",
                    "error_description": f"this port serves the sign-in pages only; tokens and "
                    f"APIs are at {self.base_url}",
                },
            )
        reply = self._route(method, path, query, headers, body)
        if hang_up is not None:
            reply.hang_up_after = hang_up
        return reply

    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Reply:
        form: dict[str, list[str]] = {}
        if method == "POST" and "x-www-form-urlencoded" in headers.get("content-type", ""):
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        if method == "GET" and path == "/o/oauth2/auth":
            return self._authorize("google", None, query)
        if method == "POST" and path == "/consent":
            return self._decide(form)
        if method == "POST" and path == "/token":
            return self._google_token(form, headers)
        if method == "POST" and path == "/revoke":
            return self._google_revoke({**query, **form})
        if method == "POST" and (
            m := re.fullmatch(r"/(upload/)?gmail/v1/users/([^/]+)/messages/send", path)
        ):
            return self._gmail_send(unquote(m.group(2)), bool(m.group(1)), headers, body)
        if method == "GET" and (
            m := re.fullmatch(r"/gmail/v1/users/([^/]+)/messages(?:/([^/]+))?", path)
        ):
            if m.group(2) is None:
                return self._gmail_list(unquote(m.group(1)), query, headers)
            return self._gmail_get(unquote(m.group(1)), unquote(m.group(2)), query, headers)
        if method == "GET" and segments[:2] == ["v1.0", "me"]:
            if segments[2:] == ["messages"]:
                return self._graph_messages(query, headers)
            if len(segments) == 5 and segments[2] == "messages" and segments[4] == "$value":
                return self._graph_value(segments[3], headers)
            if len(segments) == 4 and segments[2] == "mailFolders":
                return self._graph_mail_folder(segments[3], headers)
        if method == "POST" and segments[:1] == ["v1.0"] and segments[-1:] == ["sendMail"]:
            if segments == ["v1.0", "me", "sendMail"]:
                return self._graph_send(None, headers, body)
            if len(segments) == 4 and segments[1] == "users":
                return self._graph_send(segments[2], headers, body)
        if method == "GET" and path == "/devicelogin":
            return _Reply.page(200, "<h1>Fake device login</h1><p>Nothing to do here.</p>")
        if segments and segments[0] not in _RESERVED:
            tenant, rest = segments[0], segments[1:]
            if method == "GET" and rest == ["v2.0", ".well-known", "openid-configuration"]:
                return self._openid_configuration(tenant)
            if method == "GET" and rest == ["oauth2", "v2.0", "authorize"]:
                return self._authorize("microsoft", tenant, query)
            if method == "POST" and rest == ["oauth2", "v2.0", "token"]:
                return self._microsoft_token(tenant, form)
            if method == "POST" and rest == ["oauth2", "v2.0", "devicecode"]:
                return self._device_code(tenant, form)
            if method == "GET" and rest == ["oauth2", "nativeclient"]:
                return _Reply.page(200, "<p>Copy this page's address back into the app.</p>")
        return _Reply.json(404, {"error": "not_found", "error_description": f"no {method} {path}"})


def _browser_page(method: str, path: str) -> bool:
    """A page a person's browser opens: sign-in, consent, device login, the paste-back page."""
    if (method, path) in (("GET", "/o/oauth2/auth"), ("POST", "/consent"), ("GET", "/devicelogin")):
        return True
    segments = path.strip("/").split("/")
    return (
        method == "GET"
        and len(segments) >= 2
        and segments[1:]
        in (
            ["oauth2", "v2.0", "authorize"],
            ["oauth2", "nativeclient"],
        )
    )
