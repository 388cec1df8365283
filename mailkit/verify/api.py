"""Search a Gmail or Microsoft 365 mailbox for the test message through the providers' APIs.

The same question as :mod:`mailkit.verify.imap`, for mailboxes mailkit reaches with the stored
OAuth consent instead of a password:

- Gmail API: ``GET /gmail/v1/users/me/messages?q=rfc822msgid:ID&includeSpamTrash=true``, then
  ``GET .../messages/{id}?format=raw``; the ``SPAM`` label means the spam folder. A bounce is a
  message from the mailer daemon or postmaster that quotes the Message-ID.
- Microsoft Graph: ``GET /v1.0/me/messages?$filter=internetMessageId eq 'ID'`` (every folder),
  then ``GET /v1.0/me/messages/{id}/$value`` for the MIME; the well-known folder ``junkemail``
  is the spam folder. A bounce is found with ``$search`` for the Message-ID.

Reading a mailbox needs a read scope (Gmail ``gmail.readonly``, Graph ``Mail.Read``) that a
send-only consent lacks: the provider's 403 becomes a report saying so, not an exception.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from mailkit.delivery import (
    Bounce,
    DeliveryReport,
    MailboxSpec,
    Placement,
    VerifySpec,
    bounce_of,
    found_report,
)
from mailkit.httpclient import session
from mailkit.result import TokenProvider
from mailkit.runner import call_provider
from mailkit.secret import Secret
from mailkit.transcript import SecretScrubber

__all__ = ["GMAIL_API_BASE", "GRAPH_BASE", "verify_api"]

GMAIL_API_BASE = "https://gmail.googleapis.com"
GRAPH_BASE = "https://graph.microsoft.com"
_READ_SCOPE = {
    "gmail_api": "https://www.googleapis.com/auth/gmail.readonly",
    "graph": "Mail.Read",
}


class _Problem(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


async def verify_api(
    spec: VerifySpec,
    message_id: str,
    *,
    sent_at: datetime | None,
    sender: str | None = None,
    token: TokenProvider | None,
    scrubber: SecretScrubber | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DeliveryReport:
    """Look for ``message_id`` in the API mailbox until found, bounced, or ``spec.timeout``.

    The bounce is looked for in the same mailbox when it is the sender's (see
    :meth:`~mailkit.delivery.VerifySpec.bounce_mailbox`). Never raises for what the API
    answers; the access token is scrubbed from every text the report carries.
    """
    scrub = scrubber or SecretScrubber()
    box = spec.mailbox
    started = clock()
    deadline = started + spec.timeout
    folders = ("INBOX", "SPAM") if box.kind == "gmail_api" else ("inbox", "junkemail")
    bounce_box = spec.bounce_mailbox(sender)
    look_for_bounce = bounce_box is not None and bounce_box.kind == box.kind
    try:
        if token is None:
            raise _Problem("auth", f"no OAuth consent is stored for {box.label}")
        secret = await call_provider(token)
        scrub.add(secret)
        client = _Client(box, secret)
        while True:
            hit = await asyncio.to_thread(client.find, message_id)
            if hit is not None:
                raw, folder, placement, internal = hit
                return found_report(
                    raw,
                    mailbox=box.label,
                    message_id=message_id,
                    folder=folder,
                    placement=placement,
                    sent_at=sent_at,
                    internal_date=internal,
                    waited_s=clock() - started,
                    searched=folders,
                )
            if look_for_bounce:
                bounce = await asyncio.to_thread(client.find_bounce, message_id)
                if bounce is not None:
                    return DeliveryReport(
                        mailbox=box.label,
                        message_id=message_id,
                        placement=Placement.BOUNCED if bounce.permanent else Placement.DELAYED,
                        bounce=bounce,
                        waited_s=round(clock() - started, 3),
                        searched=folders,
                        bounce_mailbox=box.label,
                    )
            now = clock()
            if now >= deadline:
                break
            await asyncio.sleep(min(spec.poll_interval, deadline - now))
    except _Problem as problem:
        return DeliveryReport(
            mailbox=box.label,
            message_id=message_id,
            placement=Placement.UNCHECKED,
            waited_s=round(clock() - started, 3),
            searched=folders,
            error=scrub(problem.detail),
            error_kind=problem.kind,
        )
    except Exception as exc:  # the token provider's refusal: a report, never a crash
        return DeliveryReport(
            mailbox=box.label,
            message_id=message_id,
            placement=Placement.UNCHECKED,
            waited_s=round(clock() - started, 3),
            searched=folders,
            error=scrub(f"the stored OAuth consent gave no access token: {exc}"),
            error_kind="auth",
        )
    return DeliveryReport(
        mailbox=box.label,
        message_id=message_id,
        placement=Placement.NOT_FOUND,
        waited_s=round(clock() - started, 3),
        searched=folders,
        bounce_mailbox=box.label if look_for_bounce else None,
    )


class _Client:
    """One mailbox's API calls over mailkit's HTTP session (its CA trust and timeouts)."""

    def __init__(self, box: MailboxSpec, token: Secret) -> None:
        self.box = box
        default = GMAIL_API_BASE if box.kind == "gmail_api" else GRAPH_BASE
        self.base = (box.host or default).rstrip("/")
        self.http = session(box.ca_file)
        self.http.headers["Authorization"] = f"Bearer {token.reveal()}"
        self._folders: dict[str, str] = {}

    def _get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        url = f"{self.base}{path}"
        try:
            response = self.http.get(url, params=params)
        except requests.Timeout:
            raise _Problem("timeout", f"{self.base} did not answer in time") from None
        except requests.exceptions.SSLError as exc:
            raise _Problem("tls", f"TLS with {self.base} failed: {exc}") from None
        except requests.ConnectionError:
            raise _Problem("connect", f"cannot connect to {self.base}") from None
        if response.status_code in (401, 403):
            raise _Problem("auth", self._refused(response))
        if response.status_code >= 400:
            raise _Problem(
                "protocol",
                f"{self.base}{path} answered HTTP {response.status_code}: {_error(response)}",
            )
        return response

    def _refused(self, response: requests.Response) -> str:
        said = _error(response)
        if response.status_code == 403 or "insufficient" in said.lower():
            return (
                f"the stored consent may send but not read the mailbox (HTTP "
                f"{response.status_code}: {said}); sign in again granting "
                f"{_READ_SCOPE[self.box.kind]}"
            )
        return f"the access token was refused (HTTP {response.status_code}: {said})"

    # -- Gmail -----------------------------------------------------------------------------

    def find(self, message_id: str) -> tuple[bytes, str, Placement, datetime | None] | None:
        if self.box.kind == "gmail_api":
            return self._gmail_find(message_id)
        return self._graph_find(message_id)

    def find_bounce(self, message_id: str) -> Bounce | None:
        if self.box.kind == "gmail_api":
            query = f'{{from:mailer-daemon from:postmaster}} "{_bare(message_id)}"'
            for gmail_id in self._gmail_list(query):
                raw, _labels, _internal = self._gmail_raw(gmail_id)
                if (bounce := bounce_of(raw, message_id)) is not None:
                    return bounce
            return None
        data = self._get("/v1.0/me/messages", {"$search": f'"{_bare(message_id)}"', "$top": "10"})
        for item in _values(data):
            raw = self._get(f"/v1.0/me/messages/{item['id']}/$value").content
            if (bounce := bounce_of(raw, message_id)) is not None:
                return bounce
        return None

    def _gmail_list(self, query: str) -> list[str]:
        data = self._get(
            "/gmail/v1/users/me/messages", {"q": query, "includeSpamTrash": "true"}
        ).json()
        messages = data.get("messages", []) if isinstance(data, dict) else []
        return [m["id"] for m in messages if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def _gmail_raw(self, gmail_id: str) -> tuple[bytes, list[str], datetime | None]:
        data = self._get(f"/gmail/v1/users/me/messages/{gmail_id}", {"format": "raw"}).json()
        raw = base64.urlsafe_b64decode(str(data.get("raw", "")) + "==")
        labels = [str(label) for label in data.get("labelIds", [])]
        internal = data.get("internalDate")
        when = (
            datetime.fromtimestamp(int(internal) / 1000, UTC)
            if isinstance(internal, str) and internal.isdigit()
            else None
        )
        return raw, labels, when

    def _gmail_find(self, message_id: str) -> tuple[bytes, str, Placement, datetime | None] | None:
        for gmail_id in self._gmail_list(f"rfc822msgid:{_bare(message_id)}"):
            raw, labels, internal = self._gmail_raw(gmail_id)
            if "SPAM" in labels:
                return raw, "SPAM", Placement.JUNK, internal
            if "INBOX" in labels:
                return raw, "INBOX", Placement.INBOX, internal
            if "SENT" in labels and len(labels) == 1:
                continue  # the sender's own copy, not a delivered one
            return raw, ",".join(labels) or "(no label)", Placement.OTHER, internal
        return None

    # -- Graph -----------------------------------------------------------------------------

    def _graph_folder(self, name: str) -> str:
        """The id of a well-known folder (``inbox``, ``junkemail``, ``sentitems``), cached."""
        if name not in self._folders:
            data = self._get(f"/v1.0/me/mailFolders/{name}").json()
            self._folders[name] = str(data.get("id", "")) if isinstance(data, dict) else ""
        return self._folders[name]

    def _graph_find(self, message_id: str) -> tuple[bytes, str, Placement, datetime | None] | None:
        quoted = message_id.replace("'", "''")
        data = self._get(
            "/v1.0/me/messages",
            {
                "$filter": f"internetMessageId eq '{quoted}'",
                "$select": "id,parentFolderId,receivedDateTime,internetMessageId",
            },
        )
        items = _values(data)
        if not items:
            return None
        for item in items:
            folder_id = str(item.get("parentFolderId", ""))
            if folder_id == self._graph_folder("sentitems"):
                continue  # the sender's own copy
            raw = self._get(f"/v1.0/me/messages/{item['id']}/$value").content
            received = _iso(item.get("receivedDateTime"))
            if folder_id == self._graph_folder("junkemail"):
                return raw, "Junk Email", Placement.JUNK, received
            if folder_id == self._graph_folder("inbox"):
                return raw, "Inbox", Placement.INBOX, received
            return raw, folder_id, Placement.OTHER, received
        return None


def _values(response: requests.Response) -> list[dict[str, Any]]:
    data = response.json()
    values = data.get("value", []) if isinstance(data, dict) else []
    return [v for v in values if isinstance(v, dict) and isinstance(v.get("id"), str)]


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>")


def _error(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:300]
    return str(error or data)[:300]
