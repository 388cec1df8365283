"""Microsoft OAuth with MSAL: device code, authorization code on loopback, a stored token cache.

Two ways to consent, both with MSAL's ``PublicClientApplication`` (a desktop/notebook app has
no client secret to keep):

- **device code** (:meth:`MicrosoftOAuth.start_device_code`): the notebook shows a short code
  and https://microsoft.com/devicelogin; the user signs in on any device. Works from remote
  kernels and Binder. Some tenants block it with Conditional Access (``AADSTS53003``); the
  diagnosis then says so and offers the loopback flow.
- **authorization code with PKCE on a loopback redirect** (:meth:`MicrosoftOAuth.start_loopback`)
  when the kernel runs on the user's machine. The answer is POSTed (``response_mode=form_post``)
  to a short-lived receiver on 127.0.0.1, so the code stays out of the browser history.

MSAL's serialized token cache is the stored state (one JSON :class:`~mailkit.secret.Secret`
with the client id, authority, scopes and the signed-in account), and ``acquire_token_silent``
refreshes from it before a send. MSAL adds ``offline_access``/``openid``/``profile`` by itself.

Every MSAL application is built for one operation and dropped: MSAL remembers failing POSTs
per application object for a minute, which would turn a retry after fixing the cause into the
same cached failure.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import msal
import requests

from mailkit import httpclient as http
from mailkit import logguard
from mailkit.errors import FieldProblem, OAuthConfigError, OAuthError
from mailkit.oauth.loopback import LoopbackReceiver, unanswered
from mailkit.oauth.tokens import (
    ORG_OWNER,
    REFRESH_MARGIN,
    Flow,
    OAuthCredentials,
    OAuthToken,
    missing_token_error,
    network_error,
    oauth_error,
)
from mailkit.outcome import Phase
from mailkit.secret import Secret
from mailkit.secrets import MICROSOFT_TOKEN_KIND, SecretStore, secret_key

__all__ = [
    "GRAPH_SEND_SCOPE",
    "MICROSOFT_AUTHORITY_BASE",
    "OUTLOOK_SMTP_SCOPE",
    "DeviceCodeConsent",
    "MicrosoftConsent",
    "MicrosoftCredentials",
    "MicrosoftOAuth",
]

#: XOAUTH2 to smtp.office365.com (SMTP AUTH must also be enabled for the mailbox).
OUTLOOK_SMTP_SCOPE: Final = "https://outlook.office.com/SMTP.Send"
#: Microsoft Graph ``sendMail`` as the signed-in user.
GRAPH_SEND_SCOPE: Final = "Mail.Send"
MICROSOFT_AUTHORITY_BASE: Final = "https://login.microsoftonline.com"

#: Secret-store kind (the last part of :func:`mailkit.secrets.secret_key`).
TOKEN_KIND: Final = MICROSOFT_TOKEN_KIND
_FORMAT: Final = 1
_RESERVED: Final = frozenset({"openid", "profile", "offline_access"})
_SERVER_REVOCATION = (
    "Microsoft offers apps no endpoint to revoke a refresh token. To end the grant on the "
    "server, the user removes the app at https://myapps.microsoft.com (personal accounts: "
    "https://account.live.com/consent/Manage), or an admin revokes the user's sessions in the "
    "Microsoft Entra admin center (Users > the user > Revoke sessions)."
)

_T = TypeVar("_T")


def _authority(base: str, tenant: str) -> str:
    return f"{base.rstrip('/')}/{tenant}"


def _check_config(client_id: str, tenant: str, authority_base: str) -> None:
    problems: list[FieldProblem] = []
    parts = client_id.strip().split("-")
    if [len(p) for p in parts] != [8, 4, 4, 4, 12] or not all(
        c in "0123456789abcdefABCDEF" for c in "".join(parts)
    ):
        hint = (
            " (that is a Google client id; use the Google walkthrough)"
            if client_id.endswith(".apps.googleusercontent.com")
            else ""
        )
        problems.append(
            FieldProblem(
                "client_id",
                f"{client_id!r} is not a Microsoft application (client) id{hint}; copy the "
                "GUID from Microsoft Entra admin center > App registrations > your app > "
                "Overview",
            )
        )
    if not tenant or any(c in tenant for c in "/?#@ ") or tenant != tenant.strip():
        problems.append(
            FieldProblem(
                "tenant",
                f"{tenant!r} is not a tenant; use the directory (tenant) id or domain, "
                "'organizations' (any work account) or 'consumers' (personal accounts)",
            )
        )
    base = urlsplit(authority_base)
    if base.scheme != "https" or not base.hostname or base.path not in ("", "/"):
        problems.append(
            FieldProblem(
                "authority_base",
                f"{authority_base!r} must be an https:// origin such as "
                f"{MICROSOFT_AUTHORITY_BASE} (MSAL refuses anything else)",
            )
        )
    if problems:
        raise OAuthConfigError("the Microsoft OAuth settings are not valid", problems)


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if not scopes:
        raise ValueError("name at least one scope, e.g. OUTLOOK_SMTP_SCOPE or GRAPH_SEND_SCOPE")
    reserved = _RESERVED & set(scopes)
    if reserved:
        raise ValueError(
            f"leave out {sorted(reserved)}: MSAL adds them itself and refuses them as input"
        )
    return tuple(scopes)


class _Session:
    """An HTTP session and the MSAL application built on it, for one operation."""

    def __init__(
        self,
        client_id: str,
        authority: str,
        ca_file: Path | str | None,
        cache: msal.SerializableTokenCache,
        scopes: Sequence[str],
        flow: Flow,
        phase: Phase,
    ) -> None:
        self.http = http.session(ca_file)
        self.authority = authority
        self.scopes = scopes
        self.flow: Flow = flow
        self.phase = phase
        kwargs: dict[str, Any] = {}
        if urlsplit(authority).hostname != urlsplit(MICROSOFT_AUTHORITY_BASE).hostname:
            kwargs["instance_discovery"] = False  # else MSAL asks Microsoft about this host
        try:
            self.app = self.call(
                lambda: msal.PublicClientApplication(
                    client_id,
                    authority=authority,
                    http_client=self.http,
                    token_cache=cache,
                    **kwargs,
                )
            )
        except ValueError:
            self.http.close()
            tenant = urlsplit(authority).path.strip("/")
            raise OAuthConfigError(
                "Microsoft does not know this tenant",
                [
                    FieldProblem(
                        "tenant",
                        f"{tenant!r} was not found at {urlsplit(authority).hostname}; use the "
                        "directory (tenant) id or a verified domain of the tenant, or "
                        "'organizations' / 'consumers'",
                    )
                ],
            ) from None
        except BaseException:
            self.http.close()
            raise

    def call(self, action: Callable[[], _T]) -> _T:
        """Run an MSAL call; a network failure becomes a diagnosed :class:`OAuthError`."""
        try:
            with logguard.guarded():
                return action()
        except requests.RequestException as exc:
            raise network_error(
                self.phase, exc, url=self.authority, scopes=self.scopes, flow=self.flow
            ) from None

    def error(self, result: Mapping[str, Any]) -> OAuthError:
        return oauth_error(
            self.phase,
            url=self.authority,
            scopes=self.scopes,
            flow=self.flow,
            error=str(result.get("error") or "unknown_error"),
            description=str(result.get("error_description") or ""),
        )

    def close(self) -> None:
        self.http.close()


class MicrosoftOAuth:
    """Consent for one Microsoft account, with its token cache kept in ``secrets``.

    ``tenant`` is the directory id or domain, ``organizations`` or ``consumers``;
    ``authority_base`` is Microsoft's sign-in host (the demo's fake provider in tests and
    notebooks). ``owner`` is ``"org"`` or a user code: whose token this is in the secret store.
    """

    def __init__(
        self,
        client_id: str,
        *,
        secrets: SecretStore,
        tenant: str = "organizations",
        authority_base: str = MICROSOFT_AUTHORITY_BASE,
        profile: str = "default",
        owner: str = ORG_OWNER,
        ca_file: Path | str | None = None,
    ) -> None:
        _check_config(client_id, tenant, authority_base)
        self.client_id = client_id.strip()
        self.tenant = tenant
        self.authority = _authority(authority_base, tenant)
        self.secrets = secrets
        self.profile = profile
        self.owner = owner
        self.ca_file = ca_file

    def _session(self, scopes: Sequence[str], flow: Flow) -> _Session:
        logguard.install()
        return _Session(
            self.client_id,
            self.authority,
            self.ca_file,
            msal.SerializableTokenCache(),
            scopes,
            flow,
            Phase.CONSENT,
        )

    def start_device_code(self, scopes: Sequence[str] = (OUTLOOK_SMTP_SCOPE,)) -> DeviceCodeConsent:
        """Ask for a device code; show its :attr:`~DeviceCodeConsent.message`, then wait."""
        chosen = _check_scopes(scopes)
        session = self._session(chosen, "device_code")
        try:
            flow = session.call(lambda: session.app.initiate_device_flow(scopes=list(chosen)))
            if "user_code" not in flow:
                raise session.error(flow)
        except BaseException:
            session.close()
            raise
        return DeviceCodeConsent(self, session, chosen, flow)

    def start_loopback(
        self,
        scopes: Sequence[str] = (OUTLOOK_SMTP_SCOPE,),
        *,
        login_hint: str | None = None,
        timeout: float = 300.0,
    ) -> MicrosoftConsent:
        """Begin a browser sign-in returning to a receiver on this machine (``timeout`` s).

        Returns at once: show :attr:`MicrosoftConsent.url`, then call
        :meth:`MicrosoftConsent.wait`.
        """
        chosen = _check_scopes(scopes)
        session = self._session(chosen, "loopback")
        receiver = LoopbackReceiver(lifetime=timeout)
        try:
            receiver.start()
            flow = session.app.initiate_auth_code_flow(
                list(chosen),
                redirect_uri=f"http://localhost:{receiver.port}",
                login_hint=login_hint,
                response_mode="form_post",
            )
            receiver.expect_state(str(flow["state"]))
        except BaseException:
            receiver.close()
            session.close()
            raise
        return MicrosoftConsent(self, session, chosen, flow, receiver)

    def credentials(self) -> MicrosoftCredentials:
        """The stored tokens of this account (after consent)."""
        return MicrosoftCredentials(
            self.secrets, profile=self.profile, owner=self.owner, ca_file=self.ca_file
        )

    def _store(self, session: _Session, result: Mapping[str, Any]) -> OAuthToken:
        claims = result.get("id_token_claims") or {}
        username = claims.get("preferred_username") if isinstance(claims, dict) else None
        accounts = session.app.get_accounts(username=username) or session.app.get_accounts()
        if not accounts:
            # Without an account MSAL cannot refresh silently; the provider sent no id token.
            raise session.error(
                {
                    "error": "invalid_response",
                    "error_description": "the token response names no account (no id_token "
                    "or client_info), so the token could not be refreshed later",
                }
            )
        account = accounts[0]
        scopes = tuple(str(result.get("scope") or " ".join(session.scopes)).split())
        cache = session.app.token_cache
        state = {
            "format": _FORMAT,
            "client_id": self.client_id,
            "authority": self.authority,
            "scopes": list(session.scopes),
            "home_account_id": account.get("home_account_id"),
            "username": account.get("username") or username,
            "msal_cache": cache.serialize(),
        }
        self.secrets.set(
            secret_key(self.profile, self.owner, TOKEN_KIND), Secret(json.dumps(state))
        )
        return _token(result, state["username"], scopes)

    def __repr__(self) -> str:
        return f"<MicrosoftOAuth client {self.client_id} at {self.authority}>"


def _token(result: Mapping[str, Any], username: str | None, scopes: tuple[str, ...]) -> OAuthToken:
    refresh = result.get("refresh_token")
    return OAuthToken(
        provider="microsoft",
        account=username,
        scopes=scopes,
        access_token=Secret(str(result["access_token"])),
        expires_at=datetime.now(UTC) + timedelta(seconds=float(result.get("expires_in") or 0)),
        refresh_token=Secret(refresh) if isinstance(refresh, str) else None,
    )


class DeviceCodeConsent:
    """A device-code sign-in in progress: show :attr:`message` (or the code and the link)."""

    def __init__(
        self,
        oauth: MicrosoftOAuth,
        session: _Session,
        scopes: tuple[str, ...],
        flow: dict[str, Any],
    ) -> None:
        self._oauth = oauth
        self._session = session
        self._flow = flow
        self._lock = threading.Lock()
        self._done = False
        self.scopes = scopes
        #: The short code the user types at :attr:`verification_uri`.
        self.user_code: str = flow["user_code"]
        self.verification_uri: str = flow.get("verification_uri") or flow.get(
            "verification_url", ""
        )
        #: Microsoft's own sentence with the code and the link, localised.
        self.message: str = flow.get("message") or (
            f"To sign in, open {self.verification_uri} and enter the code {self.user_code}."
        )
        self.expires_at = datetime.fromtimestamp(float(flow["expires_at"]), UTC)

    def wait(self, timeout: float | None = None) -> OAuthToken:
        """Poll until the user finished, the code expired or ``timeout`` s passed."""
        with self._lock:
            if self._done:
                raise RuntimeError("this sign-in is already finished; start a new one")
            self._done = True
        session = self._session
        deadline = None if timeout is None else time.monotonic() + timeout

        def stop(flow: Mapping[str, Any]) -> bool:
            if float(flow.get("expires_at", 0)) < time.time():
                return True
            return deadline is not None and time.monotonic() >= deadline

        try:
            result = session.call(
                lambda: session.app.acquire_token_by_device_flow(self._flow, exit_condition=stop)
            )
            if "access_token" in result:
                return self._oauth._store(session, result)
            if result.get("error") in ("authorization_pending", "slow_down"):
                expired = float(self._flow.get("expires_at", 0)) < time.time()
                raise session.error(
                    {
                        "error": "expired_token" if expired else "timeout",
                        "error_description": "the device code expired before sign-in finished"
                        if expired
                        else "nobody finished signing in before the time ran out",
                    }
                )
            raise session.error(result)
        finally:
            session.close()

    def close(self) -> None:
        """Stop (the code keeps working at Microsoft until it expires, but nobody collects it)."""
        self._flow["expires_at"] = 0
        self._session.close()

    def __enter__(self) -> DeviceCodeConsent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DeviceCodeConsent at {self.verification_uri}, expires {self.expires_at:%H:%M:%S}>"


class MicrosoftConsent:
    """A browser sign-in in progress: show :attr:`url`, then :meth:`wait`."""

    def __init__(
        self,
        oauth: MicrosoftOAuth,
        session: _Session,
        scopes: tuple[str, ...],
        flow: dict[str, Any],
        receiver: LoopbackReceiver,
    ) -> None:
        self._oauth = oauth
        self._session = session
        self._flow = flow
        self._receiver = receiver
        self._lock = threading.Lock()
        self._done = False
        self.scopes = scopes
        self.url: str = flow["auth_uri"]
        self.redirect_uri: str = flow["redirect_uri"]

    def wait(self, timeout: float | None = None) -> OAuthToken:
        """Block until the browser comes back (or ``timeout`` s), then redeem the code."""
        with self._lock:
            if self._done:
                raise RuntimeError("this sign-in is already finished; start a new one")
            self._done = True
        session = self._session
        try:
            try:
                answer = self._receiver.wait(timeout)
            finally:
                self._receiver.close()
            if answer is None:
                error, description = unanswered(self._receiver)
                raise session.error({"error": error, "error_description": description})
            state = answer.get("state", "")
            if not hmac.compare_digest(state.encode(), str(self._flow["state"]).encode()):
                raise session.error(
                    {
                        "error": "state_mismatch",
                        "error_description": "the answer does not belong to the sign-in "
                        "started here (its state differs)",
                    }
                )
            if "error" in answer:
                raise session.error(answer)
            result = session.call(
                lambda: session.app.acquire_token_by_auth_code_flow(self._flow, dict(answer))
            )
            if "access_token" not in result:
                raise session.error(result)
            return self._oauth._store(session, result)
        finally:
            session.close()

    def close(self) -> None:
        """Stop listening; the sign-in link stops working for mailkit."""
        self._receiver.close()
        self._session.close()

    def __enter__(self) -> MicrosoftConsent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MicrosoftConsent on {self.redirect_uri}, scopes {list(self.scopes)}>"


class MicrosoftCredentials(OAuthCredentials):
    """A Microsoft account's MSAL token cache from the secret store; silent refresh by MSAL."""

    provider = "microsoft"
    kind = TOKEN_KIND

    def _state(self) -> dict[str, Any]:
        stored = self.secrets.get(self.key)
        if stored is None:
            raise missing_token_error(f"no Microsoft token stored as {self.key}", ())
        try:
            state = json.loads(stored.reveal())
            missing = {"client_id", "authority", "scopes", "home_account_id", "msal_cache"}
            if missing - state.keys():
                raise KeyError("incomplete")
        except (ValueError, KeyError, TypeError):
            raise missing_token_error(
                f"the Microsoft token stored as {self.key} is unreadable; sign in again", ()
            ) from None
        return dict(state)

    def token(self) -> OAuthToken:
        state = self._state()
        cache = msal.SerializableTokenCache()
        cache.deserialize(state["msal_cache"])
        found: dict[str, Any] = {}
        for entry in cache.search(
            msal.TokenCache.CredentialType.ACCESS_TOKEN,
            query={"home_account_id": state["home_account_id"]},
        ):
            if int(entry.get("expires_on", 0)) >= int(found.get("expires_on", 0)):
                found = entry
        if not found:
            raise missing_token_error(f"no access token in the cache stored as {self.key}", ())
        return OAuthToken(
            provider="microsoft",
            account=state.get("username"),
            scopes=tuple(state["scopes"]),
            access_token=Secret(found["secret"]),
            expires_at=datetime.fromtimestamp(int(found["expires_on"]), UTC),
            refresh_token=None,
        )

    def access_token(self, *, min_valid: float = REFRESH_MARGIN, force: bool = False) -> Secret:
        with self._lock:
            state = self._state()
            cache = msal.SerializableTokenCache()
            cache.deserialize(state["msal_cache"])
            session = _Session(
                state["client_id"],
                state["authority"],
                self.ca_file,
                cache,
                state["scopes"],
                "refresh",
                Phase.TOKEN,
            )
            try:
                app = session.app
                accounts = [
                    a
                    for a in app.get_accounts()
                    if a.get("home_account_id") == state["home_account_id"]
                ]
                if not accounts:
                    raise missing_token_error(f"no account in the cache stored as {self.key}", ())
                result = session.call(
                    lambda: app.acquire_token_silent_with_error(
                        list(state["scopes"]), accounts[0], force_refresh=force
                    )
                )
                # MSAL refreshes 5 minutes early by itself; a caller may ask for more margin.
                usable = bool(result) and "access_token" in result and not force
                if usable and float(result.get("expires_in") or 0) < min_valid:
                    result = session.call(
                        lambda: app.acquire_token_silent_with_error(
                            list(state["scopes"]), accounts[0], force_refresh=True
                        )
                    )
                if result is None:
                    raise session.error(
                        {
                            "error": "invalid_grant",
                            "error_description": "the stored cache holds no usable refresh "
                            "token; sign in again",
                        }
                    )
                if "access_token" not in result:
                    raise session.error(result)
                if cache.has_state_changed:
                    state["msal_cache"] = cache.serialize()
                    self.secrets.set(self.key, Secret(json.dumps(state)))
                return Secret(str(result["access_token"]))
            finally:
                session.close()

    def revoke(self) -> str:
        """Forget the tokens here; Microsoft has no token revocation endpoint for apps."""
        with self._lock:
            try:
                state = self._state()
            except OAuthError:
                self.secrets.delete(self.key)
                return "No Microsoft token was stored; nothing to remove. " + _SERVER_REVOCATION
            cache = msal.SerializableTokenCache()
            cache.deserialize(state["msal_cache"])
            # Emptied directly: MSAL's remove_account needs an app, and building one needs the
            # network (discovery), which must not stop anyone from forgetting a token.
            for kind in (
                msal.TokenCache.CredentialType.REFRESH_TOKEN,
                msal.TokenCache.CredentialType.ACCESS_TOKEN,
                msal.TokenCache.CredentialType.ID_TOKEN,
                msal.TokenCache.CredentialType.ACCOUNT,
            ):
                query = {"home_account_id": state["home_account_id"]}
                for entry in list(cache.search(kind, query=query)):
                    cache.modify(kind, entry, None)
            self.secrets.delete(self.key)
            who = state.get("username") or "the account"
            return (
                f"The tokens of {who} were removed from the token cache and deleted from "
                f"{self.secrets.name}. " + _SERVER_REVOCATION
            )
