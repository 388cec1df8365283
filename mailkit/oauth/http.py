"""The one place mailkit builds an HTTP session for OAuth endpoints and mail APIs.

requests lets ``REQUESTS_CA_BUNDLE`` (set by many machines and corporate images) override a
session's ``verify``. When mailkit is told to trust a specific CA — the demo's local CA for the
fake provider — the session ignores the environment so that CA really is the one used. Without a
CA file the defaults stay, so proxies and the system's trust configuration keep working.
"""

from __future__ import annotations

from pathlib import Path

import requests

#: Seconds to wait for an OAuth endpoint or mail API (connect, read).
TIMEOUT = (10.0, 30.0)


def session(ca_file: Path | str | None = None) -> requests.Session:
    """A session verifying TLS against ``ca_file`` only (if given), else requests' defaults."""
    http = requests.Session()
    if ca_file is not None:
        http.trust_env = False
        http.verify = str(ca_file)
    http.headers["User-Agent"] = "mailkit"
    return http
