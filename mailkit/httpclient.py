"""The one place mailkit builds an HTTP session for OAuth endpoints and mail APIs.

requests lets ``REQUESTS_CA_BUNDLE`` (set by many machines and corporate images) override a
session's ``verify``. When mailkit is told to trust a specific CA — the demo's local CA for the
fake provider — the session ignores the environment so that CA really is the one used. Without a
CA file the defaults stay, so proxies and the system's trust configuration keep working.

requests has no default timeout, and MSAL calls its ``http_client`` without one, so the
sessions built here add :data:`TIMEOUT` to every request that does not name its own: a silent
provider must end in a diagnosis, not a notebook cell that never finishes.

Every request they send runs inside :func:`mailkit.logguard.guarded`: the HTTP libraries make
no DEBUG record (which could carry a token) while mailkit talks to a provider, and log as their
users configured them the rest of the time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from mailkit import logguard

#: Seconds to wait for an OAuth endpoint or mail API (connect, read).
TIMEOUT = (10.0, 30.0)


class _Session(requests.Session):
    """A session whose requests time out by default."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        with logguard.guarded():
            return super().request(method, url, *args, **kwargs)


def trust(http: requests.Session, ca_file: Path | str | None) -> requests.Session:
    """Make an existing session (e.g. requests-oauthlib's) verify against ``ca_file`` only."""
    if ca_file is not None:
        http.trust_env = False
        http.verify = str(ca_file)
    http.headers["User-Agent"] = "mailkit"
    return http


def session(ca_file: Path | str | None = None) -> requests.Session:
    """A session verifying TLS against ``ca_file`` only (if given), else requests' defaults."""
    return trust(_Session(), ca_file)
