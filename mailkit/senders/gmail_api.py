"""Test sends through the Gmail API: ``users.messages.send`` with the raw MIME message.

The bearer is attached by google-auth (``Credentials`` + ``AuthorizedSession``), as Google's own
client libraries do, on a session that follows mailkit's trust rules
(:func:`mailkit.httpclient.trust`). google-auth's retry-on-401 is switched off: the token comes
from mailkit's token provider, which already refreshed it, and a 401 is a diagnosis, not a cue
for another refresh that has nothing to refresh with.
"""

from __future__ import annotations

import base64
import json

import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2.credentials import Credentials

from mailkit.httpclient import trust
from mailkit.message import TestMessage
from mailkit.secret import Secret
from mailkit.senders.http import ApiSender

#: The real service; ``OrgSettings.api_url`` replaces it (e.g. the demo's fake provider).
GMAIL_API_BASE = "https://gmail.googleapis.com"


class GmailApiSender(ApiSender):
    """``POST {base}/gmail/v1/users/me/messages/send`` with ``{"raw": base64url(MIME)}``."""

    default_base = GMAIL_API_BASE
    oauth_provider = "google"
    label = "Gmail API"

    def endpoint(self) -> str:
        return f"{self.base}/gmail/v1/users/me/messages/send"

    def body(self, mime: bytes) -> tuple[bytes, str]:
        raw = base64.urlsafe_b64encode(mime).decode("ascii")
        return json.dumps({"raw": raw}).encode(), "application/json"

    def session(self, token: Secret) -> requests.Session:
        credentials = Credentials(token=token.reveal())  # type: ignore[no-untyped-call]
        http = AuthorizedSession(  # type: ignore[no-untyped-call]
            credentials, refresh_status_codes=(), max_refresh_attempts=0
        )
        return trust(http, self.plan.ca_file)

    def accepted(self, response: requests.Response, message: TestMessage) -> str:
        try:
            data = response.json()
        except ValueError:
            data = {}
        gmail_id = data.get("id") if isinstance(data, dict) else None
        head = f"{response.status_code} {response.reason}".strip()
        return f"{head}: Gmail message id {gmail_id}" if isinstance(gmail_id, str) else head


#: Send the test message through this API (success or a diagnosis; never raises).
send_gmail_api_async = GmailApiSender.send_async
#: Blocking :data:`send_gmail_api_async`.
send_gmail_api = GmailApiSender.send
