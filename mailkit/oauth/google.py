"""Google OAuth: the downloaded client JSON, consent with PKCE and ``state``, stored tokens.

Consent uses google-auth-oauthlib's ``Flow`` (PKCE S256 with a fresh verifier, a random
``state``, ``access_type=offline``) and finishes one of two ways:

- **loopback** (:meth:`GoogleOAuth.start_loopback`) when the kernel runs on the user's own
  machine: the browser is sent back to ``http://127.0.0.1:<ephemeral port>/``, where a
  short-lived receiver takes the answer;
- **paste-back** (:meth:`GoogleOAuth.start_paste`) for remote kernels and Binder, where nothing
  on the user's machine can receive the redirect: the redirect goes to ``http://localhost``, the
  browser shows "cannot connect", and the user pastes that page's address back.

Either way the ``state`` is compared before any token request, so an answer to someone else's
sign-in is never exchanged. Tokens and the client secret go to the secret store only.

Scopes: :data:`GMAIL_SEND_SCOPE` (recommended; the Gmail API's ``users.messages.send``) and
:data:`GMAIL_SMTP_SCOPE` (``https://mail.google.com/``, the only scope Gmail's SMTP server takes
for XOAUTH2). The latter is a *restricted* scope: an app published to users outside its own
Google Workspace organisation needs Google's verification and a security assessment, so prefer
the Gmail API with ``gmail.send`` unless the application must speak SMTP.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, cast
from urllib.parse import parse_qs, urlsplit

import requests
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from mailkit import httpclient as http
from mailkit import logguard
from mailkit.errors import FieldProblem, OAuthConfigError, OAuthError
from mailkit.oauth import tokens
from mailkit.oauth.loopback import LoopbackReceiver, unanswered
from mailkit.oauth.tokens import (
    ORG_OWNER,
    REFRESH_MARGIN,
    OAuthCredentials,
    OAuthToken,
    missing_token_error,
    network_error,
    oauth_error,
)
from mailkit.outcome import Phase
from mailkit.secret import Secret
from mailkit.secrets import GOOGLE_TOKEN_KIND, SecretStore, secret_key

__all__ = [
    "GMAIL_SEND_SCOPE",
    "GMAIL_SMTP_SCOPE",
    "GOOGLE_AUTH_URI",
    "GOOGLE_REVOKE_URI",
    "GOOGLE_TOKEN_URI",
    "GoogleClientConfig",
    "GoogleConsent",
    "GoogleCredentials",
    "GoogleOAuth",
]

#: Full mail access; the only scope Gmail's SMTP server accepts for XOAUTH2. Restricted: public
#: apps need Google's verification (and a yearly security assessment) to use it.
GMAIL_SMTP_SCOPE: Final = "https://mail.google.com/"
#: Send-only access for the Gmail API; the recommended scope.
GMAIL_SEND_SCOPE: Final = "https://www.googleapis.com/auth/gmail.send"

GOOGLE_AUTH_URI: Final = "https://accounts.google.com/o/oauth2/auth"
GOOGLE_TOKEN_URI: Final = "https://oauth2.googleapis.com/token"  # noqa: S105  # a URL
GOOGLE_REVOKE_URI: Final = "https://oauth2.googleapis.com/revoke"

#: Secret-store kinds (the last part of :func:`mailkit.secrets.secret_key`).
TOKEN_KIND: Final = GOOGLE_TOKEN_KIND
CLIENT_SECRET_KIND: Final = "google_client_secret"  # noqa: S105  # a key name

#: Where the paste-back flow sends the browser: nothing listens, the address bar keeps the code.
PASTE_REDIRECT_URI: Final = "http://localhost"

_CONSOLE = "Google Cloud Console > APIs & Services > Credentials"
_DOWNLOAD_AGAIN = (
    f"download the client JSON again from {_CONSOLE} (OAuth 2.0 Client IDs, the download button)"
)
_FORMAT: Final = 1


# --------------------------------------------------------------------------- client JSON


@dataclass(frozen=True)
class GoogleClientConfig:
    """An OAuth client from the JSON Google Cloud Console lets you download.

    Only ``client_id`` and the endpoints are shown; the secret is a :class:`Secret`.
    """

    client_id: str
    client_secret: Secret = field(repr=False)
    client_type: Literal["installed", "web"] = "installed"
    auth_uri: str = GOOGLE_AUTH_URI
    token_uri: str = GOOGLE_TOKEN_URI
    revoke_uri: str = GOOGLE_REVOKE_URI
    redirect_uris: tuple[str, ...] = ()
    project_id: str | None = None

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> GoogleClientConfig:
        """Read a client JSON from a file path, a JSON string or an already parsed dict.

        Raises :class:`OAuthConfigError` listing every problem with its fix; a file that is not
        an OAuth client at all (a service-account key, a saved token) is named as what it is.
        """
        data = _read(source)
        problems: list[FieldProblem] = []
        section_name = _section_name(data, problems)
        if section_name is None:
            raise OAuthConfigError("this is not a Google OAuth client JSON", problems)
        section = data[section_name]
        if not isinstance(section, Mapping):
            problems.append(FieldProblem(section_name, f"must be an object; {_DOWNLOAD_AGAIN}"))
            raise OAuthConfigError("the Google OAuth client JSON is not valid", problems)
        client_id = _client_id(section, section_name, problems)
        secret = section.get("client_secret")
        if not isinstance(secret, str) or not secret.strip():
            problems.append(
                FieldProblem(
                    f"{section_name}.client_secret",
                    "is missing or empty; Google's token endpoint requires it even for desktop "
                    f"apps: {_DOWNLOAD_AGAIN}",
                )
            )
        # The consent page opens in the user's browser: a local stand-in (the demo's) may serve
        # it over plain HTTP on loopback, where a browser needs no certificate to trust.
        auth_uri = _https_url(
            section, section_name, "auth_uri", GOOGLE_AUTH_URI, problems, loopback_http=True
        )
        token_uri = _https_url(section, section_name, "token_uri", GOOGLE_TOKEN_URI, problems)
        # Not in Google's download, but honoured when present: the refresh token goes there.
        revoke_uri = _revoke_uri_for(token_uri)
        if section.get("revoke_uri"):
            revoke_uri = _https_url(section, section_name, "revoke_uri", revoke_uri, problems)
        redirects = section.get("redirect_uris", [])
        if not isinstance(redirects, list) or not all(isinstance(u, str) for u in redirects):
            problems.append(FieldProblem(f"{section_name}.redirect_uris", "must be a list of URLs"))
            redirects = []
        if section_name == "web" and not any(_is_loopback(u) for u in redirects):
            problems.append(
                FieldProblem(
                    "web.redirect_uris",
                    "has no http://localhost or http://127.0.0.1 address, so neither the "
                    "loopback nor the paste-back sign-in can finish; create an OAuth client "
                    "of type 'Desktop app' instead (recommended), or add http://localhost "
                    f"to the web client's authorized redirect URIs in {_CONSOLE}",
                )
            )
        if problems:
            raise OAuthConfigError("the Google OAuth client JSON is not valid", problems)
        project = section.get("project_id")
        return cls(
            client_id=cast(str, client_id),
            client_secret=Secret(cast(str, secret).strip()),
            client_type=cast(Literal["installed", "web"], section_name),
            auth_uri=auth_uri,
            token_uri=token_uri,
            revoke_uri=revoke_uri,
            redirect_uris=tuple(redirects),
            project_id=project if isinstance(project, str) else None,
        )

    def to_client_json(self) -> dict[str, Any]:
        """The downloaded-JSON shape ``Flow`` expects; holds the clear secret, never keep it."""
        return {
            self.client_type: {
                "client_id": self.client_id,
                "client_secret": self.client_secret.reveal(),
                "auth_uri": self.auth_uri,
                "token_uri": self.token_uri,
                "redirect_uris": list(self.redirect_uris),
            }
        }


def _read(source: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        text, where = source, "the pasted client JSON"
    else:
        path = Path(source)
        where = f"the file {path.name}"
        # Echo only what looks like a file name: pasted text that is not JSON (a fragment of
        # the client JSON, the bare secret) must not come back in an error or a widget.
        named = isinstance(source, Path) or source.strip().lower().endswith(".json")
        shown = str(path) if named else "the text given"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problem = (
                f"{path} does not exist; {_DOWNLOAD_AGAIN}"
                if named
                else "is neither a JSON object (starting with '{') nor the path of a file that "
                "exists; paste the whole downloaded file or give its path"
            )
            raise OAuthConfigError(
                "the Google OAuth client JSON cannot be read", [FieldProblem("file", problem)]
            ) from None
        except (OSError, ValueError) as exc:  # ValueError: undecodable, or a NUL in the name
            raise OAuthConfigError(
                "the Google OAuth client JSON cannot be read",
                [FieldProblem("file", f"{shown} cannot be read ({type(exc).__name__})")],
            ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # The position only: the text may hold the secret.
        raise OAuthConfigError(
            "the Google OAuth client JSON is not valid JSON",
            [
                FieldProblem(
                    "file",
                    f"{where} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                    f"{_DOWNLOAD_AGAIN} rather than copying it by hand",
                )
            ],
        ) from None
    if not isinstance(data, Mapping):
        raise OAuthConfigError(
            "this is not a Google OAuth client JSON",
            [FieldProblem("file", f"holds a JSON {type(data).__name__}, not an object")],
        )
    return data


_WRONG_FILES: Final = {
    "service_account": (
        "this is a service-account key, not an OAuth client: a service account cannot sign "
        "in as a Gmail user (outside Workspace domain-wide delegation). In "
        f"{_CONSOLE} choose Create credentials > OAuth client ID > Desktop app and download "
        "that JSON"
    ),
    "authorized_user": (
        "this is a saved user token (e.g. from gcloud auth application-default login), not "
        "an OAuth client; download the OAuth client ID JSON (Desktop app) from "
        f"{_CONSOLE}"
    ),
    "external_account": (
        "this is a workload identity federation configuration, not an OAuth client; "
        f"download the OAuth client ID JSON (Desktop app) from {_CONSOLE}"
    ),
}


def _section_name(data: Mapping[str, Any], problems: list[FieldProblem]) -> str | None:
    kind = data.get("type")
    if isinstance(kind, str) and kind in _WRONG_FILES:
        problems.append(FieldProblem("type", _WRONG_FILES[kind]))
        return None
    if "refresh_token" in data or "access_token" in data or "token" in data:
        problems.append(FieldProblem("file", _WRONG_FILES["authorized_user"]))
        return None
    present = [name for name in ("installed", "web") if name in data]
    if len(present) == 1:
        return present[0]
    if len(present) == 2:
        problems.append(
            FieldProblem(
                "installed/web",
                "both sections are present, so it is unclear which client to use; keep one "
                f"({_DOWNLOAD_AGAIN})",
            )
        )
    elif "client_id" in data:
        problems.append(
            FieldProblem(
                "installed",
                "the client fields are not inside an 'installed' (Desktop app) or 'web' "
                f"section as in Google's download; {_DOWNLOAD_AGAIN}",
            )
        )
    else:
        problems.append(
            FieldProblem(
                "installed",
                "neither an 'installed' nor a 'web' section is present, so this is not an "
                f"OAuth client JSON; {_DOWNLOAD_AGAIN}",
            )
        )
    return None


def _client_id(section: Mapping[str, Any], name: str, problems: list[FieldProblem]) -> str | None:
    client_id = section.get("client_id")
    where = f"{name}.client_id"
    if not isinstance(client_id, str) or not client_id.strip():
        problems.append(FieldProblem(where, f"is missing or empty; {_DOWNLOAD_AGAIN}"))
        return None
    client_id = client_id.strip()
    if not client_id.endswith(".apps.googleusercontent.com"):
        hint = (
            " (it looks like a Microsoft application id; use the Microsoft walkthrough)"
            if _looks_like_guid(client_id)
            else ""
        )
        problems.append(
            FieldProblem(
                where,
                f"{client_id!r} is not a Google OAuth client id, which ends with "
                f".apps.googleusercontent.com{hint}",
            )
        )
    return client_id


def _looks_like_guid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(
        c in "0123456789abcdefABCDEF" for c in "".join(parts)
    )


def _https_url(
    section: Mapping[str, Any],
    name: str,
    key: str,
    default: str,
    problems: list[FieldProblem],
    *,
    loopback_http: bool = False,
) -> str:
    value = section.get(key, default)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is not None and loopback_http and _is_loopback(value):
        return cast(str, value)
    if parts is None or parts.scheme != "https" or not parts.hostname:
        problems.append(
            FieldProblem(
                f"{name}.{key}",
                f"must be an https:// URL (Google's is {default}); {_DOWNLOAD_AGAIN}",
            )
        )
        return default
    return cast(str, value)


def _revoke_uri_for(token_uri: str) -> str:
    """Google's revoke endpoint sits next to its token endpoint (also on the local fake)."""
    if token_uri.endswith("/token"):
        return token_uri.removesuffix("/token") + "/revoke"
    return GOOGLE_REVOKE_URI


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in {"localhost", "127.0.0.1"}


# --------------------------------------------------------------------------- consent


class GoogleOAuth:
    """Consent for one Google account, with its tokens kept in ``secrets``.

    ``owner`` is ``"org"`` or a user code: whose token this is in the secret store.
    ``ca_file`` makes every HTTPS call trust that CA only (the demo's fake provider).
    Storing the client secret here lets :class:`GoogleCredentials` refresh later without the
    client JSON.
    """

    def __init__(
        self,
        config: GoogleClientConfig,
        *,
        secrets: SecretStore,
        profile: str = "default",
        owner: str = ORG_OWNER,
        ca_file: Path | str | None = None,
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.profile = profile
        self.owner = owner
        self.ca_file = ca_file

    def start_paste(
        self, scopes: Sequence[str] = (GMAIL_SEND_SCOPE,), *, login_hint: str | None = None
    ) -> GoogleConsent:
        """Begin a sign-in whose redirect the user pastes back (remote kernels, Binder)."""
        redirect = PASTE_REDIRECT_URI
        if self.config.client_type == "web":
            loopbacks = [u for u in self.config.redirect_uris if _is_loopback(u)]
            if not loopbacks:
                raise OAuthConfigError(
                    "this web client cannot finish a paste-back sign-in",
                    [
                        FieldProblem(
                            "web.redirect_uris",
                            "has no http://localhost or http://127.0.0.1 address; add "
                            f"http://localhost in {_CONSOLE}, or use a 'Desktop app' client",
                        )
                    ],
                )
            redirect = loopbacks[0]
        return GoogleConsent(self, scopes, redirect, login_hint=login_hint, mode="paste")

    def start_loopback(
        self,
        scopes: Sequence[str] = (GMAIL_SEND_SCOPE,),
        *,
        login_hint: str | None = None,
        timeout: float = 300.0,
    ) -> GoogleConsent:
        """Begin a sign-in that returns to a receiver on this machine; listens ``timeout`` s.

        Returns at once: show :attr:`GoogleConsent.url`, then call :meth:`GoogleConsent.wait`.
        Needs a "Desktop app" client: Google lets only those redirect to any loopback port.
        """
        if self.config.client_type == "web":
            # A web client's redirect must match a registered URI exactly, port included, so
            # Google would show redirect_uri_mismatch and the wait would run out.
            raise OAuthConfigError(
                "a web client cannot use the loopback sign-in",
                [
                    FieldProblem(
                        "client_type",
                        "is 'web', whose redirect must match a registered address exactly, "
                        "but the loopback sign-in listens on a new port each time; use the "
                        "paste-back sign-in (start_paste), or create an OAuth client of type "
                        f"'Desktop app' in {_CONSOLE} (recommended)",
                    )
                ],
            )
        receiver = LoopbackReceiver(lifetime=timeout).start()
        redirect = f"http://127.0.0.1:{receiver.port}/"
        try:
            return GoogleConsent(
                self, scopes, redirect, login_hint=login_hint, mode="loopback", receiver=receiver
            )
        except BaseException:
            receiver.close()
            raise

    def credentials(self) -> GoogleCredentials:
        """The stored tokens of this account (after consent)."""
        return GoogleCredentials(
            self.secrets, profile=self.profile, owner=self.owner, ca_file=self.ca_file
        )

    def __repr__(self) -> str:
        return f"<GoogleOAuth client {self.config.client_id} for {self.profile}:{self.owner}>"


class GoogleConsent:
    """One sign-in in progress: show :attr:`url`, then :meth:`wait` or :meth:`finish`."""

    def __init__(
        self,
        oauth: GoogleOAuth,
        scopes: Sequence[str],
        redirect_uri: str,
        *,
        login_hint: str | None,
        mode: Literal["paste", "loopback"],
        receiver: LoopbackReceiver | None = None,
    ) -> None:
        logguard.install()
        if not scopes:
            raise ValueError("name at least one scope, e.g. GMAIL_SEND_SCOPE")
        self._oauth = oauth
        self.scopes = tuple(scopes)
        self.redirect_uri = redirect_uri
        self.mode = mode
        self.login_hint = login_hint
        self._receiver = receiver
        self._lock = threading.Lock()
        self._done = False
        self._flow = Flow.from_client_config(
            oauth.config.to_client_json(), scopes=list(self.scopes), redirect_uri=redirect_uri
        )
        http.trust(self._flow.oauth2session, oauth.ca_file)
        extra = {"login_hint": login_hint} if login_hint else {}
        # prompt=consent: Google returns a refresh token only on consent, so asking again for
        # an account that consented before would otherwise yield no refresh token at all.
        # oauthlib builds only https:// consent URLs; a local stand-in's page on loopback HTTP
        # (the demo's, which a browser opens without a CA to trust) goes through as https and
        # gets its scheme back. The token exchange itself stays on https.
        plain = _is_loopback(oauth.config.auth_uri)
        if plain:
            self._flow.client_config["auth_uri"] = "https" + oauth.config.auth_uri[len("http") :]
        self.url: str
        self.url, self._state = self._flow.authorization_url(prompt="consent", **extra)
        if plain:
            self.url = "http" + self.url[len("https") :]
        if receiver is not None:
            receiver.expect_state(self._state)

    def wait(self, timeout: float | None = None) -> OAuthToken:
        """Loopback mode: block until the browser comes back (or ``timeout``), then finish."""
        if self._receiver is None:
            raise RuntimeError("wait() is for the loopback sign-in; use finish(pasted_url)")
        try:
            answer = self._receiver.wait(timeout)
        finally:
            self._receiver.close()
        if answer is None:
            raise self._error(*unanswered(self._receiver))
        return self._complete(answer)

    def finish(self, redirected_url: str) -> OAuthToken:
        """Finish with the address the browser ended at (pasted from its address bar)."""
        if self._receiver is not None:
            self._receiver.close()
        answer = _answer_from_url(redirected_url)
        return self._complete(answer)

    def close(self) -> None:
        """Stop listening (loopback); the sign-in link stops working for mailkit."""
        if self._receiver is not None:
            self._receiver.close()
        self._flow.oauth2session.close()

    def __enter__(self) -> GoogleConsent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GoogleConsent {self.mode} for {self._oauth.owner}, scopes {list(self.scopes)}>"

    def _error(self, error: str, description: str = "", status: int | None = None) -> Exception:
        return oauth_error(
            Phase.CONSENT,
            url=self._oauth.config.token_uri,
            scopes=self.scopes,
            flow=cast(tokens.Flow, self.mode),
            error=error,
            description=description,
            status=status,
        )

    def _complete(self, answer: Mapping[str, str]) -> OAuthToken:
        with self._lock:
            if self._done:
                raise RuntimeError("this sign-in is already finished; start a new one")
            self._done = True
        try:
            return self._exchange(answer)
        finally:
            self._flow.oauth2session.close()

    def _exchange(self, answer: Mapping[str, str]) -> OAuthToken:
        state = answer.get("state", "")
        if not hmac.compare_digest(state.encode(), self._state.encode()):
            raise self._error(
                "state_mismatch",
                "the answer does not belong to the sign-in started here (its state differs)",
            )
        if "error" in answer:
            raise self._error(answer["error"], answer.get("error_description", ""))
        code = answer.get("code")
        if not code:
            raise self._error("invalid_request", "the answer carries no authorization code")
        config = self._oauth.config
        try:
            with logguard.guarded():
                response = self._flow.fetch_token(code=code, timeout=http.TIMEOUT)
        except OAuth2Error as exc:
            raise self._error(exc.error, exc.description or "", exc.status_code) from None
        except requests.RequestException as exc:
            raise network_error(
                Phase.CONSENT,
                exc,
                url=config.token_uri,
                scopes=self.scopes,
                flow=cast(tokens.Flow, self.mode),
            ) from None
        except (ValueError, Warning) as exc:  # not JSON, or oauthlib's "scope has changed"
            raise self._error("invalid_response", logguard.scrub(str(exc))) from None
        token = _token_from_response(
            dict(response), self.scopes, account=self.login_hint, refresh_token=None
        )
        oauth = self._oauth
        oauth.secrets.set(
            secret_key(oauth.profile, oauth.owner, CLIENT_SECRET_KIND), config.client_secret
        )
        _save(oauth.secrets, secret_key(oauth.profile, oauth.owner, TOKEN_KIND), config, token)
        return token


def _answer_from_url(redirected_url: str) -> dict[str, str]:
    text = redirected_url.strip()
    parts = urlsplit(text)
    params = parse_qs(parts.query or (text if "=" in text and "://" not in text else ""))
    answer = {key: values[0] for key, values in params.items()}
    if not {"code", "error", "state"} & answer.keys():
        # Never echo the text: it may hold a code, or something else the user pasted by mistake.
        raise OAuthConfigError(
            "the pasted text is not the address the sign-in ended at",
            [
                FieldProblem(
                    "redirected_url",
                    "has no code, state or error; after approving, copy the whole address "
                    "from the browser's address bar (it starts with http://localhost/?state= "
                    "and the page itself says it cannot connect) and paste it",
                )
            ],
        )
    return answer


# --------------------------------------------------------------------------- tokens


def _account_from_id_token(id_token: object) -> str | None:
    """The email in an id token's payload, for display only (it is not verified here)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    email = claims.get("email") if isinstance(claims, dict) else None
    return email if isinstance(email, str) else None


def _token_from_response(
    response: Mapping[str, Any],
    requested: Sequence[str],
    *,
    account: str | None,
    refresh_token: Secret | None,
    now: datetime | None = None,
) -> OAuthToken:
    scope = response.get("scope")
    if isinstance(scope, str):
        scopes = tuple(scope.split())
    elif isinstance(scope, list):
        scopes = tuple(str(s) for s in scope)
    else:
        scopes = tuple(requested)
    issued = now or datetime.now(UTC)
    expires_in = float(response.get("expires_in") or 3600)
    new_refresh = response.get("refresh_token")
    return OAuthToken(
        provider="google",
        account=_account_from_id_token(response.get("id_token")) or account,
        scopes=scopes,
        access_token=Secret(str(response["access_token"])),
        expires_at=issued + timedelta(seconds=expires_in),
        # Google sends a new refresh token only at consent; a refresh keeps the old one.
        refresh_token=Secret(new_refresh) if isinstance(new_refresh, str) else refresh_token,
    )


def _save(store: SecretStore, key: str, config: GoogleClientConfig, token: OAuthToken) -> None:
    state = {
        "format": _FORMAT,
        "client_id": config.client_id,
        "token_uri": config.token_uri,
        "revoke_uri": config.revoke_uri,
        "account": token.account,
        "scopes": list(token.scopes),
        "access_token": token.access_token.reveal(),
        "expires_at": token.expires_at.isoformat(),
        "refresh_token": token.refresh_token.reveal() if token.refresh_token else None,
    }
    store.set(key, Secret(json.dumps(state)))


class GoogleCredentials(OAuthCredentials):
    """A Google account's stored tokens; refreshes through the token endpoint when needed."""

    provider = "google"
    kind = TOKEN_KIND

    def _load(self) -> tuple[GoogleClientConfig, OAuthToken]:
        stored = self.secrets.get(self.key)
        if stored is None:
            raise missing_token_error(f"no Google token stored as {self.key}", ())
        try:
            state = json.loads(stored.reveal())
            refresh = state.get("refresh_token")
            token = OAuthToken(
                provider="google",
                account=state.get("account"),
                scopes=tuple(state["scopes"]),
                access_token=Secret(state["access_token"]),
                expires_at=datetime.fromisoformat(state["expires_at"]),
                refresh_token=Secret(refresh) if refresh else None,
            )
            client_secret = self.secrets.get(
                secret_key(self.profile, self.owner, CLIENT_SECRET_KIND)
            )
            config = GoogleClientConfig(
                client_id=state["client_id"],
                client_secret=client_secret or Secret(""),
                token_uri=state["token_uri"],
                revoke_uri=state["revoke_uri"],
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            # No detail: the text is the secret.
            raise missing_token_error(
                f"the Google token stored as {self.key} is unreadable; sign in again", ()
            ) from None
        return config, token

    def token(self) -> OAuthToken:
        return self._load()[1]

    def access_token(self, *, min_valid: float = REFRESH_MARGIN, force: bool = False) -> Secret:
        with self._lock:
            config, token = self._load()
            if not force and not token.expires_within(min_valid):
                return token.access_token
            return self._refresh(config, token).access_token

    def _refresh(self, config: GoogleClientConfig, token: OAuthToken) -> OAuthToken:
        logguard.install()

        def refused(error: str, description: str = "", status: int | None = None) -> Exception:
            return oauth_error(
                Phase.TOKEN,
                url=config.token_uri,
                scopes=token.scopes,
                flow="refresh",
                error=error,
                description=description,
                status=status,
            )

        if token.refresh_token is None:
            raise refused("invalid_grant", "no refresh token is stored; sign in again")
        if not config.client_secret:
            # Google refuses a refresh without it; say which stored piece is gone.
            raise missing_token_error(
                f"no Google client secret is stored for {self.key}; sign in again with the "
                "client JSON",
                token.scopes,
            )
        body = {
            "grant_type": "refresh_token",
            "refresh_token": token.refresh_token.reveal(),
            "client_id": config.client_id,
            "client_secret": config.client_secret.reveal(),
        }
        with http.session(self.ca_file) as session:
            try:
                response = session.post(config.token_uri, data=body)
            except requests.RequestException as exc:
                raise network_error(
                    Phase.TOKEN, exc, url=config.token_uri, scopes=token.scopes, flow="refresh"
                ) from None
        payload = _json(response)
        if response.status_code != 200 or "access_token" not in payload:
            raise refused(
                str(payload.get("error") or f"http_{response.status_code}"),
                str(payload.get("error_description") or ""),
                response.status_code,
            )
        fresh = _token_from_response(
            payload, token.scopes, account=token.account, refresh_token=token.refresh_token
        )
        _save(self.secrets, self.key, config, fresh)
        return fresh

    def revoke(self) -> str:
        """Revoke the grant at Google (the refresh token, which ends its access tokens too)."""
        logguard.install()
        with self._lock:
            try:
                config, token = self._load()
            except OAuthError:  # nothing (readable) stored; a store failure propagates
                self._forget()
                return "No Google token was stored; nothing to revoke."
            secret = token.refresh_token or token.access_token
            with http.session(self.ca_file) as session:
                try:
                    response = session.post(config.revoke_uri, data={"token": secret.reveal()})
                except requests.RequestException as exc:
                    raise network_error(
                        Phase.TOKEN, exc, url=config.revoke_uri, scopes=token.scopes, flow="revoke"
                    ) from None
            payload = _json(response)
            if response.status_code == 200:
                outcome = "Google revoked the grant"
            elif payload.get("error") == "invalid_token":
                outcome = "Google no longer knew the token (it was already revoked or expired)"
            else:
                raise oauth_error(
                    Phase.TOKEN,
                    url=config.revoke_uri,
                    scopes=token.scopes,
                    flow="revoke",
                    error=str(payload.get("error") or f"http_{response.status_code}"),
                    description=str(payload.get("error_description") or ""),
                    status=response.status_code,
                )
            self._forget()
            return (
                f"{outcome}; the stored token and client secret were deleted. The account's "
                "owner can check https://myaccount.google.com/permissions."
            )

    def _forget(self) -> None:
        self.secrets.delete(self.key)
        self.secrets.delete(secret_key(self.profile, self.owner, CLIENT_SECRET_KIND))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
