"""Tokens, the credentials object senders ask for them, and OAuth failures as diagnoses.

A token lives in the secret store only, as one JSON :class:`~mailkit.secret.Secret` per
account and provider; in memory it travels as :class:`OAuthToken`, whose secrets are
:class:`~mailkit.secret.Secret` values, so printing one shows masks.

Every OAuth failure goes through :func:`oauth_error`: a :class:`~mailkit.outcome.Failure` with
:attr:`~mailkit.outcome.Signal.OAUTH` and the provider's ``error`` string, diagnosed by the one
rule table in :mod:`mailkit.diagnose`, raised as :class:`~mailkit.errors.OAuthError`. A network
problem on the way to the token endpoint is diagnosed like any other connection failure.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import requests

from mailkit.diagnose import diagnose
from mailkit.errors import OAuthError
from mailkit.logguard import scrub
from mailkit.outcome import Failure, Phase, SendContext, Signal
from mailkit.secret import Secret
from mailkit.secrets import SecretStore, secret_key

__all__ = [
    "ORG_OWNER",
    "REFRESH_MARGIN",
    "Flow",
    "OAuthCredentials",
    "OAuthToken",
    "TokenSource",
    "missing_token_error",
    "network_error",
    "oauth_error",
]

#: Refresh an access token that expires within this many seconds before handing it out: a
#: send that starts with a token about to lapse would fail half-way (e.g. between EHLO and AUTH).
REFRESH_MARGIN: Final = 60.0

#: The secret-store account of the organisation's own credentials (users use their user code).
ORG_OWNER: Final = "org"

#: How a token was being obtained when a failure happened (``Failure.detail``).
Flow = Literal["auth_code", "device_code", "refresh", "revoke", "loopback", "paste"]

#: What senders call for a token (compatible with ``mailkit.result.TokenProvider``).
TokenSource = Callable[[], Secret]

_SMTP_SCOPES: Final = frozenset(
    {"https://mail.google.com/", "https://outlook.office.com/SMTP.Send"}
)


@dataclass(frozen=True)
class OAuthToken:
    """An access token and what it is for; ``repr`` shows only masks for the secrets."""

    provider: Literal["google", "microsoft"]
    #: Who signed in (an email address), when the provider says so.
    account: str | None
    scopes: tuple[str, ...]
    access_token: Secret
    #: When the access token stops working (timezone-aware, UTC).
    expires_at: datetime
    refresh_token: Secret | None = None

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """Whether the access token is gone (or will be) ``seconds`` from ``now``."""
        current = now or datetime.now(UTC)
        return self.expires_at - current <= timedelta(seconds=seconds)


def auth_for(scopes: Sequence[str]) -> str:
    """The SendContext auth a diagnosis should assume: XOAUTH2 for SMTP scopes, else an API."""
    return "xoauth2" if _SMTP_SCOPES & set(scopes) else "oauth"


def _context(url: str, scopes: Sequence[str]) -> SendContext:
    host = urlsplit(url).hostname or url
    return SendContext(host=host, port=443, security="ssl", auth=auth_for(scopes))


def oauth_error(
    phase: Phase,
    *,
    url: str,
    scopes: Sequence[str],
    flow: Flow,
    error: str,
    description: str = "",
    status: int | None = None,
) -> OAuthError:
    """The :class:`OAuthError` for an OAuth ``error`` answer from the endpoint at ``url``."""
    failure = Failure(
        phase,
        Signal.OAUTH,
        code=status,
        enhanced=error,
        text=scrub(description),
        detail=flow,
    )
    return OAuthError(diagnose(failure, _context(url, scopes)))


def network_error(
    phase: Phase, exc: requests.RequestException, *, url: str, scopes: Sequence[str], flow: Flow
) -> OAuthError:
    """The :class:`OAuthError` for not reaching an OAuth endpoint at all."""
    words = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        signal = Signal.TLS_VERIFY if "CERTIFICATE_VERIFY_FAILED" in words else Signal.TLS_PROTOCOL
    elif isinstance(exc, requests.Timeout):
        signal = Signal.TIMEOUT
    elif "NameResolution" in words or "Name or service not known" in words:
        signal = Signal.DNS
    elif isinstance(exc, requests.ConnectionError):
        signal = Signal.REFUSED
    else:
        signal = Signal.DISCONNECTED
    failure = Failure(phase, signal, text=scrub(f"{type(exc).__name__}: {words}"), detail=flow)
    return OAuthError(diagnose(failure, _context(url, scopes)))


def missing_token_error(what: str, scopes: Sequence[str]) -> OAuthError:
    """The :class:`OAuthError` for an account that never went through consent."""
    failure = Failure(Phase.SETUP, Signal.MISSING, detail=f"token: {what}")
    context = SendContext(host="", port=0, security="ssl", auth=auth_for(scopes))
    return OAuthError(diagnose(failure, context))


_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(store: SecretStore, key: str) -> threading.Lock:
    """One lock per store object and token key, shared by every credentials object built
    for it (by identity: asking a lazy store its name would open it here already)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((id(store), key), threading.Lock())


class OAuthCredentials(ABC):
    """A consented account's tokens in the secret store, refreshed when a send needs them.

    ``secrets``/``profile``/``owner`` say where they live: ``owner`` is ``"org"`` or a user
    code, the account part of :func:`mailkit.secrets.secret_key`. A lock per stored token,
    shared by every instance (each send builds its own), makes one refresh at a time, so a
    bulk send's threads do not each spend the refresh token.
    """

    provider: Literal["google", "microsoft"]
    #: The secret-store kind of the token JSON.
    kind: str

    def __init__(
        self,
        secrets: SecretStore,
        *,
        profile: str = "default",
        owner: str = ORG_OWNER,
        ca_file: Path | str | None = None,
    ) -> None:
        self.secrets = secrets
        self.profile = profile
        self.owner = owner
        #: The CA to trust for the token endpoints (the demo's fake); None: the system's.
        self.ca_file = ca_file
        self.key = secret_key(profile, owner, self.kind)
        self._lock = _lock_for(secrets, self.key)

    @abstractmethod
    def access_token(self, *, min_valid: float = REFRESH_MARGIN, force: bool = False) -> Secret:
        """A valid access token, refreshed first (and stored) when it expires within
        ``min_valid`` seconds or when ``force``; :class:`OAuthError` (phase token) if refused."""

    @abstractmethod
    def token(self) -> OAuthToken:
        """The stored token as it is now, without any network call."""

    @abstractmethod
    def revoke(self) -> str:
        """Revoke what can be revoked, delete the stored token and say what was done."""

    def token_provider(self) -> TokenSource:
        """What a sender calls before signing in (``token=`` of the SMTP and HTTP senders)."""
        return self.access_token

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} in {self.secrets.name}>"
