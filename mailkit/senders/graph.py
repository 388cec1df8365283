"""Test sends through Microsoft Graph: ``POST /v1.0/me/sendMail`` with the MIME message.

Graph takes a whole MIME message as base64 text (``Content-Type: text/plain``), so the test
message arrives exactly as built — the same bytes an SMTP test would send — and Graph saves it
to Sent Items. The bearer is a plain ``Authorization`` header on a session that follows
mailkit's trust rules (:func:`mailkit.oauth.http.session`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import requests

from mailkit.oauth.http import session
from mailkit.secrets import Secret
from mailkit.senders.http import ApiPlan, ApiSender
from mailkit.senders.smtp import TestResult, TokenProvider, run_sync
from mailkit.settings import Priority
from mailkit.transcript import Row

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


async def send_graph_async(
    plan: ApiPlan,
    *,
    to: Sequence[str],
    token: TokenProvider | None,
    priority: Priority = Priority.NORMAL,
    on_row: Callable[[Row], None] | None = None,
) -> TestResult:
    """Send the test message through Microsoft Graph; success or a diagnosis, never raises."""
    sender = GraphSender(plan, token=token, on_row=on_row)
    return await sender.run(to=to, priority=priority)


def send_graph(
    plan: ApiPlan,
    *,
    to: Sequence[str],
    token: TokenProvider | None,
    priority: Priority = Priority.NORMAL,
    on_row: Callable[[Row], None] | None = None,
) -> TestResult:
    """Blocking :func:`send_graph_async` (works inside a notebook's event loop too)."""
    return run_sync(send_graph_async(plan, to=to, token=token, priority=priority, on_row=on_row))
