"""A local fake of Google's and Microsoft's OAuth services and of the Gmail API and Graph.

Consent, tokens and API sends can then be shown and tested end to end without a cloud tenant:
the real client libraries (google-auth-oauthlib, msal, requests) talk to it unchanged, because
its paths mirror the real services under one root (``https://127.0.0.1:PORT``)::

    accounts.google.com/o/oauth2/auth           {base}/o/oauth2/auth
    oauth2.googleapis.com/token | /revoke       {base}/token | {base}/revoke
    gmail.googleapis.com                        {base}   (POST /gmail/v1/users/me/messages/send)
    login.microsoftonline.com/{tenant}          {base}/{tenant}  (openid-configuration,
                                                oauth2/v2.0/authorize | token | devicecode)
    graph.microsoft.com                         {base}   (POST /v1.0/me/sendMail)

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

The client ids and the secret below are public demo values, like the demo SMTP password: they
only ever open this fake.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import http.client
import ipaddress
import json
import logging
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, unquote, urlencode, urljoin, urlsplit

import trustme

_log = logging.getLogger(__name__)

BIND_ADDRESS = "127.0.0.1"

GOOGLE_CLIENT_ID = "mailkit-demo.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - a public demo value
GOOGLE_PROJECT_ID = "mailkit-demo"
MICROSOFT_CLIENT_ID = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
DEMO_TENANT = "demo-tenant"
#: Who "signs in" at the consent screen: the demo SMTP server's working account.
DEFAULT_ACCOUNT = "demo@example.com"
#: Microsoft's redirect for apps that let the user paste the answer back (no local receiver).
NATIVE_CLIENT_REDIRECT = "https://login.microsoftonline.com/common/oauth2/nativeclient"

#: Scopes that allow each kind of send (as the real services name them).
GMAIL_API_SCOPES = frozenset(
    {"https://www.googleapis.com/auth/gmail.send", "https://mail.google.com/"}
)
GRAPH_SEND_SCOPES = frozenset({"Mail.Send", "https://graph.microsoft.com/Mail.Send"})
SMTP_SCOPES = frozenset({"https://mail.google.com/", "https://outlook.office.com/SMTP.Send"})

Provider = Literal["google", "microsoft"]
TokenProblem = Literal["invalid", "expired", "revoked", "insufficient_scope"]
ConsentMode = Literal["approve", "access_denied"]
Decision = Literal["ask", "approve", "deny"]
DeviceOutcome = Literal["approve", "decline", "expire", "blocked"]

#: Path segments that are ours, so they are never taken for a Microsoft tenant.
_RESERVED = frozenset({"o", "token", "revoke", "gmail", "upload", "v1.0", "devicelogin", "consent"})
#: How long a consent page waits for Approve or Deny (the real pages: minutes, too).
CONSENT_LIFETIME = 600.0
#: What a consent page says each scope allows (anything else is shown as the scope itself).
_SCOPE_WORDS = {
    "https://www.googleapis.com/auth/gmail.send": "Send email on your behalf (Gmail API)",
    "https://mail.google.com/": "Read, compose, send and delete all your Gmail (used here to "
    "send with SMTP XOAUTH2)",
    "Mail.Send": "Send mail as you (Microsoft Graph)",
    "https://graph.microsoft.com/Mail.Send": "Send mail as you (Microsoft Graph)",
    "https://outlook.office.com/SMTP.Send": "Send email as you with SMTP AUTH",
    "offline_access": "Keep this access until you revoke it (a refresh token)",
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
}
_PARSER = BytesParser(policy=policy.default)


class TokenRejected(Exception):
    """:meth:`FakeOAuthProvider.check_token` refused a token; ``reason`` says why."""

    def __init__(self, reason: TokenProblem) -> None:
        super().__init__(f"token rejected: {reason}")
        self.reason: TokenProblem = reason


class SignInError(Exception):
    """The sign-in page answered with an error page instead of a redirect (as the real ones do
    for an unknown client or a redirect URI that is not registered: there is nowhere safe to
    send the error to)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"sign-in page answered {status}: {error}: {description}")
        self.status, self.error, self.description = status, error, description


@dataclass(frozen=True)
class SentMessage:
    """One message accepted by the fake Gmail API or Graph."""

    api: Literal["gmail_api", "graph"]
    account: str
    raw: bytes = field(repr=False)
    #: The HTTPS connection's TLS version and cipher (for the mailbox's trace header).
    tls: tuple[str, str] | None = None


@dataclass
class _Client:
    provider: Provider
    client_id: str
    secret: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()


@dataclass
class _Grant:
    """One consent: every token issued from it dies with it (Google revokes the whole grant)."""

    provider: Provider
    client_id: str
    account: str
    scopes: tuple[str, ...]
    tenant: str | None = None
    revoked: bool = False


@dataclass
class _Token:
    grant: _Grant
    kind: Literal["access", "refresh"]
    expires_at: float | None = None


@dataclass
class _Code:
    grant: _Grant
    redirect_uri: str
    challenge: str
    nonce: str | None
    #: Google issues a refresh token only for ``access_type=offline``.
    offline: bool = True
    used: bool = False
    #: When the code stops working (RFC 6749 4.1.2: short-lived, at most ten minutes).
    expires_at: float = float("inf")


@dataclass
class _DeviceCode:
    client_id: str
    scopes: tuple[str, ...]
    tenant: str
    expires_at: float
    polls: int = 0


@dataclass
class _Pending:
    """A sign-in waiting on the consent page for the user's Approve or Deny."""

    provider: Provider
    tenant: str | None
    query: Mapping[str, list[str]]
    expires_at: float


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait, then close the connection without answering (None: answer).
    hang_up_after: float | None = None

    @classmethod
    def json(cls, status: int, data: object, headers: Mapping[str, str] | None = None) -> _Reply:
        return cls(status, json.dumps(data).encode(), headers=dict(headers or {}))

    @classmethod
    def page(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> _Reply:
        return cls(status, text.encode(), "text/html; charset=utf-8", dict(headers or {}))


@dataclass
class _Injected:
    prefix: str
    #: None: handle the request as usual, then hang up without the answer.
    reply: _Reply | None
    hang_up_after: float = 0.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


#: RFC 7636 4.1: 43 to 128 unreserved characters; the real services refuse anything else.
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def _pkce_ok(verifier: str, challenge: str) -> bool:
    if not _VERIFIER.fullmatch(verifier):
        return False
    expected = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    return secrets.compare_digest(expected, challenge)


def _stable_id(*parts: str) -> str:
    """The same account or tenant gets the same object id across runs (MSAL caches it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mailkit-demo:" + ":".join(parts)))


def _is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")


def _registered_loopback(uri: str, registered: Iterable[str]) -> bool:
    """Entra's loopback rule: a registered ``http://localhost`` (or 127.0.0.1) redirect admits
    any port on the same host and path, as native apps pick a free port at run time."""
    if not _is_loopback_redirect(uri):
        return False
    parts = urlsplit(uri)
    path = parts.path.rstrip("/")
    for known in registered:
        other = urlsplit(known)
        if (
            _is_loopback_redirect(known)
            and other.hostname == parts.hostname
            and other.path.rstrip("/") == path
        ):
            return True
    return False


def _first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _scopes(text: str | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for scope in (text or "").split():
        seen.setdefault(scope, None)
    return tuple(seen)


# --------------------------------------------------------------------------- error shapes


def _oauth_error(status: int, error: str, description: str, *, codes: Iterable[int] = ()) -> _Reply:
    """The token endpoints' error body (RFC 6749 5.2, plus Microsoft's ``error_codes``)."""
    body: dict[str, Any] = {"error": error, "error_description": description}
    if codes := list(codes):
        body |= {
            "error_codes": codes,
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
    return _Reply.json(status, body)


def _aad(code: int, text: str) -> str:
    """Microsoft prefixes every description with its AADSTS number."""
    return f"AADSTS{code}: {text}"


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


def _graph_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> _Reply:
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    inner = {"date": now, "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    return _Reply.json(status, body, headers)


def _default_injected_body(prefix: str, status: int) -> dict[str, Any]:
    """What :meth:`FakeOAuthProvider.fail_next` answers when the test gives no body."""
    if prefix.startswith(("/gmail", "/upload/gmail")):
        if status == 429:
            text, grpc, reason = "Rate Limit Exceeded", "RESOURCE_EXHAUSTED", "rateLimitExceeded"
        elif status >= 500:
            text, grpc, reason = "Backend Error", "UNAVAILABLE", "backendError"
        else:
            text, grpc, reason = "Request failed", "FAILED_PRECONDITION", "failedPrecondition"
        errors = [{"message": text, "domain": "global", "reason": reason}]
        return {"error": {"code": status, "message": text, "errors": errors, "status": grpc}}
    if prefix.startswith("/v1.0"):
        if status == 429:
            code, text = "ApplicationThrottled", "Application is over its MailboxConcurrency limit."
        elif status >= 500:
            code, text = "ServiceNotAvailable", "The service is temporarily unavailable."
        else:
            code, text = "BadRequest", "The request failed."
        return {"error": {"code": code, "message": text}}
    if status == 429:
        return {"error": "temporarily_unavailable", "error_description": "Too many requests."}
    return {"error": "server_error", "error_description": "The service is temporarily unavailable."}


# --------------------------------------------------------------------------- the provider


class FakeOAuthProvider:
    """Google's and Microsoft's sign-in, tokens, Gmail API and Graph send, on loopback HTTPS.

    Thread-safe: the HTTP server answers each connection in its own thread while a test changes
    modes or calls the hooks. Tests set :attr:`consent` and :attr:`device_outcome` to choose
    the answer a user would give; :meth:`expire_access_tokens`, :meth:`revoke` and
    :meth:`fail_next` make the failures that otherwise take an hour or an admin. A context
    manager; ``start()`` / ``stop()`` too.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        ca_file: Path | str,
        *,
        port: int = 0,
        browser_port: int = 0,
        token_lifetime: int = 3600,
        device_interval: int = 1,
        signed_in: str = DEFAULT_ACCOUNT,
    ) -> None:
        """``context`` is a server context whose certificate covers 127.0.0.1 and localhost,
        issued by the CA in ``ca_file`` (which clients must trust). ``port`` is the HTTPS port
        (tokens, APIs), ``browser_port`` the plain-HTTP one for the pages a browser opens."""
        self.context = context
        self.ca_file = Path(ca_file)
        self.token_lifetime = token_lifetime
        #: Seconds an authorization code can be redeemed (the real services: about ten minutes).
        self.code_lifetime = 600.0
        self.device_interval = device_interval
        #: Who signs in at the consent screen and the device-code page.
        self.signed_in = signed_in
        #: ``approve``: the consent page asks (and :func:`visit` presses Approve);
        #: ``access_denied``: the user declines at once, as if they had pressed Deny.
        self.consent: ConsentMode = "approve"
        self.device_outcome: DeviceOutcome = "approve"
        #: Every message the fake APIs accepted, oldest first.
        self.sent: list[SentMessage] = []
        #: Called with each accepted message (the demo server delivers it to its mailbox).
        self.on_send: Callable[[SentMessage], None] | None = None
        #: Every PKCE code verifier the token endpoints received, so tests can look for leaks.
        self.received_verifiers: list[str] = []
        self._port = port
        self._browser_port = browser_port
        self._lock = threading.RLock()
        self._clients: dict[str, _Client] = {}
        self._tokens: dict[str, _Token] = {}
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _DeviceCode] = {}
        self._pending: dict[str, _Pending] = {}
        self._injected: list[_Injected] = []
        #: The TLS parameters of the request this thread is answering.
        self._request_tls = threading.local()
        self._httpd: _Server | None = None
        self._browser_httpd: _Server | None = None
        self._threads: list[threading.Thread] = []
        self.add_google_client(GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)
        self.add_microsoft_client(MICROSOFT_CLIENT_ID)

    @classmethod
    def from_files(
        cls, cert_file: Path | str, key_file: Path | str, ca_file: Path | str, **options: Any
    ) -> FakeOAuthProvider:
        """From a PEM certificate chain and key on disk (e.g. a test session's TLS material)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert_file), str(key_file))
        return cls(context, ca_file, **options)

    @classmethod
    def with_demo_ca(cls, directory: Path | str, **options: Any) -> FakeOAuthProvider:
        """With a fresh local CA; its certificate is written to ``directory/ca.pem`` (the key
        stays in memory, so nothing on disk can issue certificates)."""
        authority = trustme.CA(organization_name="mailkit demo CA")
        leaf = authority.issue_cert("localhost", BIND_ADDRESS, organization_name="mailkit demo")
        ca_file = Path(directory) / "ca.pem"
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_bytes(authority.cert_pem.bytes())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        leaf.configure_cert(context)
        return cls(context, ca_file, **options)

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake OAuth provider is not running; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The root of every token and API endpoint, e.g. ``https://127.0.0.1:50123``."""
        return f"https://{BIND_ADDRESS}:{self.port}"

    @property
    def browser_port(self) -> int:
        if self._browser_httpd is None:
            raise RuntimeError("the fake OAuth provider is not running; call start() first")
        return int(self._browser_httpd.server_address[1])

    @property
    def browser_url(self) -> str:
        """The root of the pages a browser opens (consent, device login), plain HTTP on
        loopback: e.g. ``http://127.0.0.1:50124``."""
        return f"http://{BIND_ADDRESS}:{self.browser_port}"

    def start(self) -> Self:
        """Listen on 127.0.0.1 (never another address) and answer in background threads."""
        with self._lock:
            if self._httpd is None:
                httpd = _Server((BIND_ADDRESS, self._port), self, tls=True)
                try:
                    browser = _Server((BIND_ADDRESS, self._browser_port), self, tls=False)
                except BaseException:
                    httpd.server_close()
                    raise
                self._threads = [
                    threading.Thread(
                        target=server.serve_forever,
                        kwargs={"poll_interval": 0.2},
                        name=f"mailkit-fake-oauth-{name}",
                        daemon=True,
                    )
                    for server, name in ((httpd, "https"), (browser, "browser"))
                ]
                self._httpd, self._browser_httpd = httpd, browser
                for thread in self._threads:
                    thread.start()
        return self

    def stop(self) -> None:
        """Close both ports and every open connection."""
        with self._lock:
            servers = [s for s in (self._httpd, self._browser_httpd) if s is not None]
            threads, self._threads = self._threads, []
            self._httpd = self._browser_httpd = None
        for httpd in servers:
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
        for thread in threads:
            thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"<FakeOAuthProvider {where}>"

    # -- clients and the shapes clients are configured with

    def add_google_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> None:
        """Register a Google "Desktop app" client (loopback redirects are always allowed)."""
        with self._lock:
            self._clients[client_id] = _Client(
                "google", client_id, client_secret, tuple(redirect_uris)
            )

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

    def microsoft_authority(self, tenant: str = DEMO_TENANT) -> str:
        """What to pass as MSAL's ``authority`` (with ``instance_discovery=False``)."""
        return f"{self.base_url}/{tenant}"

    # -- hooks for tests

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (refresh tokens still work)."""
        past = time.time() - 1
        with self._lock:
            for token in self._tokens.values():
                if token.kind == "access":
                    token.expires_at = past

    def revoke(self, account: str | None = None) -> None:
        """Revoke every grant (of ``account``, if given): its access and refresh tokens die,
        as when the user removes the app's access or an admin revokes sessions."""
        with self._lock:
            for token in self._tokens.values():
                if account is None or token.grant.account.casefold() == account.casefold():
                    token.grant.revoked = True

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next request whose path starts with ``path_prefix`` with this, once.

        Without ``json_body`` the body is shaped like the service behind that path (Gmail,
        Graph or a token endpoint). E.g. ``fail_next("/v1.0/me/sendMail", 429,
        headers={"Retry-After": "7"})``.
        """
        body = json_body if json_body is not None else _default_injected_body(path_prefix, status)
        reply = _Reply.json(status, body, headers)
        with self._lock:
            self._injected.append(_Injected(path_prefix, reply))

    def hang_up_next(self, path_prefix: str, *, after: float = 0.0) -> None:
        """Handle the next request under ``path_prefix`` as usual, then lose the answer, once.

        The fake waits ``after`` seconds and closes the connection without replying: the
        message is sent, but the client cannot know it (a proxy or network dropping the
        answer). An ``after`` beyond the client's read timeout makes it give up waiting.
        """
        with self._lock:
            self._injected.append(_Injected(path_prefix, None, after))

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token issued so far (tests search outputs for them)."""
        with self._lock:
            return list(self._tokens)

    def _verifier_ok(self, form: Mapping[str, list[str]], challenge: str) -> bool:
        verifier = _first(form, "code_verifier") or ""
        if verifier:
            with self._lock:
                self.received_verifiers.append(verifier)
        return _pkce_ok(verifier, challenge)

    def check_token(self, token: str, scopes: Iterable[str]) -> str:
        """The account an access token acts for, if it is valid and has one of ``scopes``.

        Raises :class:`TokenRejected` with reason ``invalid``, ``revoked``, ``expired`` or
        ``insufficient_scope``. The demo SMTP server calls this for XOAUTH2.
        """
        with self._lock:
            found = self._tokens.get(token)
            if found is None or found.kind != "access":
                raise TokenRejected("invalid")
            if found.grant.revoked:
                raise TokenRejected("revoked")
            if found.expires_at is not None and found.expires_at <= time.time():
                raise TokenRejected("expired")
            if not set(scopes) & set(found.grant.scopes):
                raise TokenRejected("insufficient_scope")
            return found.grant.account

    # -- issuing

    def _issue(self, grant: _Grant, *, refresh: bool) -> tuple[str, str | None]:
        access = f"fake-at-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens[access] = _Token(grant, "access", time.time() + self.token_lifetime)
            refresh_token: str | None = None
            if refresh:
                refresh_token = f"fake-rt-{secrets.token_urlsafe(24)}"
                self._tokens[refresh_token] = _Token(grant, "refresh")
        return access, refresh_token

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

    def _error_page(self, provider: Provider, status: int, error: str, text: str) -> _Reply:
        """The page a browser shows when the request cannot even be sent back to the app."""
        title = f"Error {status}: {error}"
        page = (
            f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
            f'<p id="error_description">{html.escape(text)}</p>'
        )
        # For visit() and tests: the page says the same to a person. The text may quote the
        # request (a redirect_uri): control characters would split the response's headers,
        # and a header must be Latin-1.
        ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
        one_line = re.sub(r"[\x00-\x1f\x7f]", " ", ascii_text)
        headers = {"X-Fake-OAuth-Error": error, "X-Fake-OAuth-Description": one_line}
        return _Reply.page(status, page, headers)

    def _authorize(
        self,
        provider: Provider,
        tenant: str | None,
        query: Mapping[str, list[str]],
        decision: Decision = "ask",
    ) -> _Reply:
        """The sign-in request: checked, then the consent page (``ask``), then the answer to
        the app once the user pressed Approve or Deny (:meth:`_decide` calls again)."""
        client_id = _first(query, "client_id") or ""
        redirect_uri = _first(query, "redirect_uri") or ""
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or client.provider != provider:
            if provider == "google":
                return self._error_page(
                    provider, 401, "invalid_client", "The OAuth client was not found."
                )
            return self._error_page(
                provider,
                400,
                "unauthorized_client",
                _aad(
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{tenant}'.",
                ),
            )
        if provider == "google":  # a Desktop app client: every loopback redirect is allowed
            registered = _is_loopback_redirect(redirect_uri)
        else:
            registered = _registered_loopback(redirect_uri, client.redirect_uris)
        registered = registered or redirect_uri in client.redirect_uris
        # A space or control character is no URL (and would split the Location header).
        if not registered or re.search(r"[\x00-\x20\x7f]", redirect_uri):
            if provider == "google":
                return self._error_page(
                    provider,
                    400,
                    "redirect_uri_mismatch",
                    f"You can't sign in to this app because it doesn't comply with Google's "
                    f"OAuth 2.0 policy. redirect_uri={redirect_uri}",
                )
            return self._error_page(
                provider,
                400,
                "invalid_request",
                _aad(
                    50011,
                    f"The redirect URI '{redirect_uri}' specified in the request does not match "
                    f"the redirect URIs configured for the application '{client_id}'.",
                ),
            )
        state = _first(query, "state")
        form_post = provider == "microsoft" and _first(query, "response_mode") == "form_post"

        def answer(fields: dict[str, str]) -> _Reply:
            if state is not None:
                fields["state"] = state
            if form_post:
                return _form_post_page(redirect_uri, fields)
            separator = "&" if "?" in redirect_uri else "?"
            return _Reply(302, headers={"Location": redirect_uri + separator + urlencode(fields)})

        challenge = _first(query, "code_challenge")
        if _first(query, "response_type") != "code":
            return answer({"error": "unsupported_response_type", "error_description": "code only"})
        if not challenge or _first(query, "code_challenge_method") != "S256":
            text = "PKCE with code_challenge_method=S256 is required."
            if provider == "microsoft":
                text = _aad(9002325, "Proof Key for Code Exchange is required.")
            return answer({"error": "invalid_request", "error_description": text})
        if self.consent == "access_denied" or decision == "deny":
            if provider == "google":
                return answer({"error": "access_denied"})
            text = _aad(65004, "User declined to consent to access the app.")
            return answer({"error": "access_denied", "error_description": text})
        if decision == "ask":
            return self._consent_page(provider, tenant, query, redirect_uri)
        grant = _Grant(
            provider, client_id, self.signed_in, _scopes(_first(query, "scope")), tenant=tenant
        )
        code = f"fake-code-{secrets.token_urlsafe(18)}"
        with self._lock:
            self._codes[code] = _Code(
                grant,
                redirect_uri,
                challenge,
                _first(query, "nonce"),
                offline=provider == "microsoft" or _first(query, "access_type") == "offline",
                expires_at=time.time() + self.code_lifetime,
            )
        fields = {"code": code}
        if provider == "microsoft":
            oid, tid = (
                _stable_id("user", grant.account.casefold()),
                _stable_id("tenant", tenant or ""),
            )
            fields["client_info"] = _b64url(json.dumps({"uid": oid, "utid": tid}).encode())
        else:
            fields["scope"] = " ".join(grant.scopes)
        return answer(fields)

    def _consent_page(
        self,
        provider: Provider,
        tenant: str | None,
        query: Mapping[str, list[str]],
        redirect_uri: str,
    ) -> _Reply:
        """What a person sees: who signs in, what the app may do, Approve and Deny."""
        ticket = secrets.token_urlsafe(18)
        now = time.time()
        with self._lock:
            for old in [k for k, v in self._pending.items() if v.expires_at <= now]:
                del self._pending[old]
            self._pending[ticket] = _Pending(provider, tenant, dict(query), now + CONSENT_LIFETIME)
        service = "Google" if provider == "google" else "Microsoft"
        scopes = _scopes(_first(query, "scope"))
        items = "".join(
            f"<li>{html.escape(_SCOPE_WORDS.get(scope, scope))}"
            f' <code class="scope">{html.escape(scope)}</code></li>'
            for scope in scopes
        )
        back = urlsplit(redirect_uri)
        back_to = f"{back.scheme}://{back.netloc}{back.path}"
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - mailkit demo ({service})</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; background: #f3f4f6; margin: 0; }}
main {{ max-width: 34rem; margin: 3rem auto; background: #fff; padding: 2rem;
  border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
.banner {{ background: #fff7d6; padding: .5rem .75rem; border-radius: 4px; font-size: .9rem; }}
code {{ font-size: .8rem; color: #555; }}
.buttons {{ display: flex; gap: 1rem; justify-content: flex-end; margin-top: 1.5rem; }}
button {{ font: inherit; padding: .5rem 1.5rem; border-radius: 4px; cursor: pointer;
  border: 1px solid #888; background: #fff; }}
button#approve {{ background: #1a73e8; border-color: #1a73e8; color: #fff; }}
.back {{ font-size: .85rem; color: #555; }}
</style></head>
<body><main>
<p class="banner">mailkit demo: a local stand-in for {service}'s sign-in page. No real account
or password is involved.</p>
<h1>mailkit demo wants to use your account</h1>
<p>Signed in as <strong id="account">{html.escape(self.signed_in)}</strong></p>
<p>If you approve, the app may:</p>
<ul id="scopes">{items}</ul>
<form method="post" action="/consent">
<input type="hidden" name="ticket" value="{ticket}">
<div class="buttons">
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
</div></form>
<p class="back">Either way you go back to the app at {html.escape(back_to)}</p>
</main></body></html>
"""
        # Not to be framed by another page (a click could be stolen), and nothing cached.
        headers = {
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "frame-ancestors 'none'",
            "Cache-Control": "no-store",
        }
        return _Reply.page(200, page, headers)

    def _decide(self, form: Mapping[str, list[str]]) -> _Reply:
        """Approve or Deny pressed on a consent page: answer the app as the real services do."""
        decision = _first(form, "decision")
        if decision not in ("approve", "deny"):
            return _Reply.page(400, "<!doctype html><title>Choose</title><h1>Approve or Deny</h1>")
        with self._lock:
            pending = self._pending.pop(_first(form, "ticket") or "", None)
        if pending is None or pending.expires_at <= time.time():
            return _Reply.page(
                400,
                "<!doctype html><title>Sign-in expired</title><h1>This sign-in has expired or "
                "was already answered</h1><p>Start the sign-in again from the app.</p>",
                {"X-Fake-OAuth-Error": "invalid_request"},
            )
        choice: Decision = "approve" if decision == "approve" else "deny"
        return self._authorize(pending.provider, pending.tenant, pending.query, choice)

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

    def _take_code(self, client: _Client, form: Mapping[str, list[str]]) -> _Code | str:
        """The code, spent now whatever happens next (as the real services do), or why not."""
        with self._lock:
            code = self._codes.get(_first(form, "code") or "")
            if code is None or code.grant.client_id != client.client_id:
                return "unknown"
            if code.used:
                code.grant.revoked = True  # RFC 6749 10.5: a replayed code revokes its tokens
                return "used"
            code.used = True
            if code.expires_at <= time.time():
                return "expired"
            return code

    def _refreshable(self, client: _Client, token: str | None) -> _Grant | None:
        with self._lock:
            found = self._tokens.get(token or "")
            if found is None or found.kind != "refresh" or found.grant.revoked:
                return None
            if found.grant.client_id != client.client_id:
                return None
            return found.grant

    def _google_revoke(self, form: Mapping[str, list[str]]) -> _Reply:
        with self._lock:
            found = self._tokens.get(_first(form, "token") or "")
            if found is None or found.grant.revoked:
                return _oauth_error(400, "invalid_token", "Token expired or revoked")
            found.grant.revoked = True
        return _Reply.json(200, {})

    # -- Microsoft's token endpoint

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

    # -- the mail APIs

    def _bearer(self, headers: Mapping[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

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

    def _accept(self, message: SentMessage) -> None:
        message = replace(message, tls=getattr(self._request_tls, "value", None))
        with self._lock:
            self.sent.append(message)
            deliver = self.on_send
        if deliver is not None:
            deliver(message)


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


def _form_post_page(action: str, fields: Mapping[str, str]) -> _Reply:
    """``response_mode=form_post``: a page whose form posts the answer to the app by itself."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
        for k, v in fields.items()
    )
    page = (
        "<!doctype html><html><head><title>Working...</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="POST" name="hiddenform" action="{html.escape(action)}">{inputs}'
        "<noscript><p>Script is disabled. Click Submit to continue.</p>"
        '<input type="submit" value="Submit"/></noscript></form></body></html>'
    )
    return _Reply.page(200, page)


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


# --------------------------------------------------------------------------- the HTTP server

#: OpenSSL's reasons for a handshake the client ended because it did not accept our certificate.
_CERTIFICATE_REFUSED = (
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "BAD_CERTIFICATE",
    "UNSUPPORTED_CERTIFICATE",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_REVOKED",
)


def tls_failure_line(where: str, peer: object, error: BaseException) -> str:
    """One console line for a failed TLS handshake on the demo (no traceback: a client that
    does not trust the demo CA is an everyday event, not a bug of the server)."""
    reason = getattr(error, "reason", None) or type(error).__name__
    source = ""
    if isinstance(peer, tuple) and len(peer) >= 2:
        source = f" from {peer[0]}:{peer[1]}"
    text = str(reason).replace("_", " ").lower()
    if any(marker in str(reason).upper() for marker in _CERTIFICATE_REFUSED):
        return (
            f"{where}: a client{source} refused the demo certificate ({text}); it must trust "
            "the demo CA (ca.pem in the demo folder)"
        )
    return f"{where}: TLS handshake with a client{source} failed ({text})"


class _HandshakeFailed(Exception):
    """The TLS handshake of a connection failed; it has been reported."""


class _Server(ThreadingHTTPServer):
    """One thread per connection; TLS is negotiated in that thread, not in the accept loop,
    so one slow or broken client cannot hold up the others."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], provider: FakeOAuthProvider, *, tls: bool) -> None:
        self.provider = provider
        #: False: the plain-HTTP port for browser pages (see FakeOAuthProvider.browser_url).
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if not self.tls:
            return sock, address
        wrapped = self.provider.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _HandshakeFailed):
            return  # said in one line already
        # A client that hangs up mid-request is normal (and a test's business, not stderr's).
        _log.debug("fake OAuth: connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mailkit-fake-oauth"
    sys_version = ""
    timeout = 30
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(10)
        try:
            if self.server.tls:
                self.request.do_handshake()
        except ssl.SSLError as exc:
            where = f"HTTPS port {self.server.server_port}"
            _log.info(tls_failure_line(where, self.client_address, exc))
            raise _HandshakeFailed from None
        with self.server.connections_lock:
            self.server.connections.add(self.request)
        super().setup()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines carry codes and tokens in their query strings."""

    def _tls(self) -> tuple[str, str] | None:
        if not isinstance(self.request, ssl.SSLSocket):
            return None
        version, cipher = self.request.version(), self.request.cipher()
        return (version, cipher[0]) if version and cipher else None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.provider._handle(
                self.command, self.path, headers, body, self._tls(), browser=not self.server.tls
            )
        except Exception:
            _log.exception("fake OAuth: %s %s failed", self.command, urlsplit(self.path).path)
            reply = _Reply.json(500, {"error": "server_error", "error_description": "fake bug"})
        if reply.hang_up_after is not None:
            self._hang_up(reply.hang_up_after)
            return
        self.send_response(reply.status)
        if reply.body or reply.status not in (202, 204, 302):
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _hang_up(self, after: float) -> None:
        """Close without a word after ``after`` s (sooner if the client gives up first)."""
        self.close_connection = True
        self.request.settimeout(after)
        with contextlib.suppress(OSError):  # a timeout, or the client closing first
            self.request.recv(1)
        with contextlib.suppress(OSError):
            self.request.shutdown(socket.SHUT_RDWR)

    do_GET = _answer
    do_POST = _answer


# --------------------------------------------------------------------------- the "browser"


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        #: Named submit buttons: (name, value) -> label (the consent page's Approve and Deny).
        self.buttons: dict[tuple[str, str], str] = {}
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name") and values.get("type") == "hidden":
            self.fields[str(values["name"])] = values.get("value") or ""
        elif tag == "button" and values.get("name") and values.get("type", "submit") == "submit":
            self._button = (str(values["name"]), values.get("value") or "")
            self.buttons[self._button] = ""

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self.buttons[self._button] += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None


def _is_loopback_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _request(
    url: str, method: str, body: bytes | None, context: ssl.SSLContext | None, timeout: float
) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def _is_fake_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and _is_loopback_host(parts.hostname)


def visit(
    url: str,
    ca_file: Path | str,
    *,
    follow: bool = True,
    timeout: float = 10.0,
    press: Literal["approve", "deny"] = "approve",
) -> str:
    """Act as the user's browser on a sign-in URL of the fake; return the URL it ended at.

    It GETs ``url`` (the fake only: its plain-HTTP sign-in pages or its HTTPS port on loopback,
    trusting ``ca_file`` alone), presses ``press`` (Approve) on the consent page, then either
    follows the redirect or, for ``response_mode=form_post``, submits the page's form. When
    the app's redirect target is a loopback receiver that listens (``run_local_server``, a
    local redirect server) the request is delivered there, so the waiting app gets its answer;
    when nothing listens (the paste-back flow) or ``follow=False`` the URL is only returned.
    For a form post the returned URL carries the form's fields as its query, so a test can
    paste it back like a redirect. An error page raises :class:`SignInError`.
    """
    if not _is_fake_url(url):
        raise ValueError("visit() only opens the local fake provider (http or https on loopback)")
    context = ssl.create_default_context(cafile=str(ca_file))
    response, body = _request(url, "GET", None, context, timeout)
    pressed = False
    while True:
        if response.status in (301, 302, 303, 307):
            location = response.getheader("Location") or ""
            _deliver(location, "GET", None, follow=follow, timeout=timeout)
            return location
        if response.status >= 400:
            raise SignInError(
                response.status,
                response.getheader("X-Fake-OAuth-Error") or "unknown",
                response.getheader("X-Fake-OAuth-Description") or response.reason,
            )
        reader = _FormReader()
        reader.feed(body.decode("utf-8", "replace"))
        if not reader.action:
            raise SignInError(
                response.status, "no_redirect", "the page neither redirects nor posts"
            )
        if ("decision", press) in reader.buttons and not pressed:
            # The consent page: press the button, as a person would, on the fake's own origin.
            target = urljoin(url, reader.action)
            if not _is_fake_url(target):
                raise SignInError(response.status, "bad_form", "the consent form leaves the fake")
            encoded = urlencode({**reader.fields, "decision": press}).encode()
            response, body = _request(target, "POST", encoded, context, timeout)
            pressed = True
            continue
        encoded_fields = urlencode(reader.fields)
        _deliver(reader.action, "POST", encoded_fields.encode(), follow=follow, timeout=timeout)
        return reader.action + ("&" if "?" in reader.action else "?") + encoded_fields


def _deliver(url: str, method: str, body: bytes | None, *, follow: bool, timeout: float) -> None:
    """Hand the answer to the app's loopback receiver, if one listens; never leave the host."""
    parts = urlsplit(url)
    if not follow or parts.scheme != "http" or not _is_loopback_host(parts.hostname):
        return
    with contextlib.suppress(ConnectionRefusedError):
        _request(url, method, body, None, timeout)
