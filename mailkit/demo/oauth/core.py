"""What the fake Google and Microsoft services share: clients, grants, codes and tokens, the
sign-in request and its consent page, the hooks tests use to make failures.

:class:`ProviderCore` keeps the state (thread-safe: each HTTP connection is answered in its own
thread) and the parts both services do alike; :mod:`.google` and :mod:`.microsoft` add each
service's endpoints and error shapes, and :class:`~mailkit.demo.oauth.FakeOAuthProvider` routes
requests to them.

Why the grants are not oauthlib's server endpoints (``oauthlib.oauth2`` 4.0.1 has them, the
RFC 8628 device endpoint and grant included): what the fake is for is the services' own replies,
which mailkit's diagnosis reads and MSAL acts on: Entra's ``AADSTS`` numbers and
``error_codes`` per reason (a replayed code 54005, an expired one 70008, a wrong verifier
501481), ``authorization_declined``, Google's ``redirect_uri_mismatch`` at the token endpoint,
a replayed code revoking its grant, Entra's loopback-port rule. oauthlib answers in RFC 6749's
generic words; wrapping it would need a validator plus a layer that turns its errors back into
each service's, more code than the checks it would replace. oauthlib does the PKCE S256 check.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from mailkit.demo.oauth.server import BIND_ADDRESS, TwoPortService, _Reply

_log = logging.getLogger(__name__)


#: Who "signs in" at the consent screen: the demo SMTP server's working account.
DEFAULT_ACCOUNT = "demo@example.com"

#: Scopes that allow an SMTP XOAUTH2 sign-in, at Google and at Microsoft.
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
    """RFC 7636 S256, checked by oauthlib's own server-side function."""
    return bool(_VERIFIER.fullmatch(verifier)) and code_challenge_method_s256(verifier, challenge)


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


# --------------------------------------------------------------------------- the core


class ProviderCore(TwoPortService):
    """Google's and Microsoft's sign-in, tokens, Gmail API and Graph send, on loopback HTTPS.

    Thread-safe: the HTTP server answers each connection in its own thread while a test changes
    modes or calls the hooks. Tests set :attr:`consent` and :attr:`device_outcome` to choose
    the answer a user would give; :meth:`expire_access_tokens`, :meth:`revoke` and
    :meth:`fail_next` make the failures that otherwise take an hour or an admin. A context
    manager; ``start()`` / ``stop()`` too.
    """

    service_name = "fake OAuth provider"
    thread_prefix = "mailkit-fake-oauth"
    plain_name = "browser"

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
        super().__init__(context, ca_file, port=port, plain_port=browser_port)
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
        self._clients: dict[str, _Client] = {}
        self._tokens: dict[str, _Token] = {}
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _DeviceCode] = {}
        self._pending: dict[str, _Pending] = {}
        self._injected: list[_Injected] = []
        #: The TLS parameters of the request this thread is answering.
        self._request_tls = threading.local()

    # -- lifecycle

    @property
    def browser_port(self) -> int:
        return self.plain_port

    @property
    def browser_url(self) -> str:
        """The root of the pages a browser opens (consent, device login), plain HTTP on
        loopback: e.g. ``http://127.0.0.1:50124``."""
        return f"http://{BIND_ADDRESS}:{self.browser_port}"

    # -- the answer to a request (the provider routes it)

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
        raise NotImplementedError

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

    # -- the mail APIs

    def _bearer(self, headers: Mapping[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _accept(self, message: SentMessage) -> None:
        message = replace(message, tls=getattr(self._request_tls, "value", None))
        with self._lock:
            self.sent.append(message)
            deliver = self.on_send
        if deliver is not None:
            deliver(message)


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
