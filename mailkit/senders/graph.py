"""Test sends through Microsoft Graph: ``POST /v1.0/me/sendMail`` with the MIME message.

Graph takes a whole MIME message as base64 text (``Content-Type: text/plain``), so the test
message arrives exactly as built — the same bytes an SMTP test would send — and Graph saves it
to Sent Items. The bearer is a plain ``Authorization`` header on a session that follows
mailkit's trust rules (:func:`mailkit.httpclient.session`).
"""

from __future__ import annotations

import base64

import requests

from mailkit.httpclient import session
from mailkit.secret import Secret
from mailkit.senders.http import ApiSender

#: The real service; ``OrgSettings.api_url`` replaces it (e.g. the demo's fake provider).
GRAPH_BASE = "https://graph.microsoft.com"


class GraphSender(ApiSender):
    """``POST {base}/v1.0/me/sendMail``: 202 Accepted with an empty body on success."""

    default_base = GRAPH_BASE
    oauth_provider = "microsoft"
    label = "Microsoft Graph"

    def endpoint(self) -> str:
        return f"{self.base}/v1.0/me/sendMail"

    def body(self, mime: bytes) -> tuple[bytes, str]:
        return base64.b64encode(mime), "text/plain"

    def session(self, token: Secret) -> requests.Session:
        http = session(self.plan.ca_file)
        http.headers["Authorization"] = f"Bearer {token.reveal()}"
        return http


#: Send the test message through this API (success or a diagnosis; never raises).
send_graph_async = GraphSender.send_async
#: Blocking :data:`send_graph_async`.
send_graph = GraphSender.send
