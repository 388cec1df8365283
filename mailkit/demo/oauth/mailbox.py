"""The fake's mailboxes: Gmail API and Graph search and read, for the delivery round trip.

What a delivery check through the APIs calls, shaped as the real services answer:

- Gmail API ``GET /gmail/v1/users/{me}/messages?q=...&includeSpamTrash=true`` (``messages`` of
  ``{id, threadId}`` and ``resultSizeEstimate``; no ``messages`` key when nothing matches) and
  ``GET .../messages/{id}?format=raw`` (``raw`` base64url, ``labelIds``, ``internalDate`` in
  milliseconds as a string). ``q`` understands ``rfc822msgid:``, ``from:``, ``{a b}`` (either)
  and ``"phrases"`` / words (searched in the message). Spam and trash are left out unless
  ``includeSpamTrash=true``, as Gmail does.
- Graph ``GET /v1.0/me/messages?$filter=internetMessageId eq '...'`` or ``$search="..."``
  (``value`` of messages with ``id``, ``parentFolderId``, ``receivedDateTime``,
  ``internetMessageId``), ``GET /v1.0/me/messages/{id}/$value`` (the MIME) and
  ``GET /v1.0/me/mailFolders/{inbox|junkemail|sentitems}``.

Reading needs a read scope (Gmail ``gmail.readonly``/``gmail.modify``/``mail.google.com``;
Graph ``Mail.Read``/``Mail.ReadWrite``): a send-only token gets the services' 403. Mail sent
through the fake APIs is filed in the sender's own mailbox (Sent, and Inbox too when sent to
oneself, as both services do); :meth:`MailboxEndpoints.deliver_to` files any message (a spam
copy, a bounce) for tests and the demo.
"""

from __future__ import annotations

import base64
import email
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.utils import getaddresses
from typing import Any

from mailkit.demo.oauth.core import (
    Provider,
    ProviderCore,
    SentMessage,
    TokenRejected,
    _Grant,
    _stable_id,
)
from mailkit.demo.oauth.google import _GOOGLE_REALM, GOOGLE_CLIENT_ID, _gmail_error
from mailkit.demo.oauth.microsoft import DEMO_TENANT, MICROSOFT_CLIENT_ID, _graph_error
from mailkit.demo.oauth.server import _Reply

__all__ = ["GMAIL_READ_SCOPES", "GRAPH_READ_SCOPES", "MailboxEndpoints", "StoredMessage"]

GMAIL_READ_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.modify",
        "https://mail.google.com/",
    }
)
GRAPH_READ_SCOPES = frozenset(
    {
        "Mail.Read",
        "Mail.ReadWrite",
        "https://graph.microsoft.com/Mail.Read",
        "https://graph.microsoft.com/Mail.ReadWrite",
    }
)
#: Graph's well-known folder names, and the Gmail label each stands for.
_FOLDERS = {"inbox": "INBOX", "junkemail": "SPAM", "sentitems": "SENT", "deleteditems": "TRASH"}
_DISPLAY = {"inbox": "Inbox", "junkemail": "Junk Email", "sentitems": "Sent Items"}
_PARSER = email.parser.BytesParser(policy=policy.compat32)


@dataclass
class StoredMessage:
    """One message in a fake mailbox; ``labels`` are Gmail's (INBOX, SPAM, SENT, TRASH)."""

    id: str
    raw: bytes = field(repr=False)
    labels: tuple[str, ...]
    received: datetime

    @property
    def message_id(self) -> str:
        header = _PARSER.parsebytes(self.raw, headersonly=True).get("Message-ID", "")
        return " ".join(str(header).split())


class MailboxEndpoints(ProviderCore):
    """The accounts' mailboxes and the API calls that search and read them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mailboxes: dict[str, list[StoredMessage]] = {}
        self._mailbox_lock = threading.Lock()

    def _accept(self, message: SentMessage) -> None:
        super()._accept(message)
        self._file_sent(message.account, message.raw)

    def deliver_to(self, account: str, raw: bytes, *, labels: tuple[str, ...] = ("INBOX",)) -> str:
        """File ``raw`` in ``account``'s mailbox under ``labels`` (``("SPAM",)`` for the spam
        folder); returns the message's API id."""
        stored = StoredMessage(secrets.token_hex(8), raw, labels, datetime.now(UTC))
        with self._mailbox_lock:
            self._mailboxes.setdefault(account.casefold(), []).append(stored)
        return stored.id

    def issue_access_token(
        self, provider: Provider, scopes: tuple[str, ...], account: str | None = None
    ) -> str:
        """An access token of the demo client for ``account`` (default: who signs in) with
        ``scopes``, as a finished consent would give it: for tests and demos of what mailkit's
        own consent does not ask for (the mailbox read scopes)."""
        client = GOOGLE_CLIENT_ID if provider == "google" else MICROSOFT_CLIENT_ID
        tenant = None if provider == "google" else DEMO_TENANT
        grant = _Grant(provider, client, account or self.signed_in, scopes, tenant)
        access, _ = self._issue(grant, refresh=False)
        return access

    def mailbox_of(self, account: str) -> list[StoredMessage]:
        with self._mailbox_lock:
            return list(self._mailboxes.get(account.casefold(), []))

    def _file_sent(self, account: str, raw: bytes) -> None:
        """A sent message in the sender's mailbox: Sent, and Inbox as well when it was sent
        to oneself (Gmail keeps one message with both labels)."""
        head = _PARSER.parsebytes(raw, headersonly=True)
        recipients = {
            address.casefold()
            for _, address in getaddresses(
                [str(v) for name in ("To", "Cc", "Bcc") for v in head.get_all(name) or ()]
            )
        }
        labels = ("SENT", "INBOX") if account.casefold() in recipients else ("SENT",)
        self.deliver_to(account, raw, labels=labels)

    # -- Gmail API --------------------------------------------------------------------------

    def _gmail_reader(self, headers: Mapping[str, str], user_id: str) -> str | _Reply:
        token = self._bearer(headers)
        if token is None:
            return _gmail_error(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
                "required",
                www_authenticate=_GOOGLE_REALM,
            )
        try:
            account = self.check_token(token, GMAIL_READ_SCOPES)
        except TokenRejected as rejected:
            if rejected.reason == "insufficient_scope":
                return _gmail_error(
                    403,
                    "Request had insufficient authentication scopes.",
                    "PERMISSION_DENIED",
                    "insufficientPermissions",
                    www_authenticate=f'{_GOOGLE_REALM}, error="insufficient_scope"',
                    info_reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                )
            return _gmail_error(
                401,
                "Request had invalid authentication credentials.",
                "UNAUTHENTICATED",
                "authError",
                www_authenticate=f'{_GOOGLE_REALM}, error="invalid_token"',
            )
        if user_id != "me" and user_id.casefold() != account.casefold():
            return _gmail_error(
                403, f"Delegation denied for {account}", "PERMISSION_DENIED", "forbidden"
            )
        return account

    def _gmail_list(
        self, user_id: str, query: Mapping[str, list[str]], headers: Mapping[str, str]
    ) -> _Reply:
        account = self._gmail_reader(headers, user_id)
        if isinstance(account, _Reply):
            return account
        q = (query.get("q") or [""])[0]
        spam_trash = (query.get("includeSpamTrash") or ["false"])[0].lower() == "true"
        found = [
            m
            for m in reversed(self.mailbox_of(account))
            if (spam_trash or not {"SPAM", "TRASH"} & set(m.labels)) and _gmail_matches(m, q)
        ]
        data: dict[str, object] = {"resultSizeEstimate": len(found)}
        if found:
            data["messages"] = [{"id": m.id, "threadId": m.id} for m in found]
        return _Reply.json(200, data)

    def _gmail_get(
        self,
        user_id: str,
        gmail_id: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
    ) -> _Reply:
        account = self._gmail_reader(headers, user_id)
        if isinstance(account, _Reply):
            return account
        found = next((m for m in self.mailbox_of(account) if m.id == gmail_id), None)
        if found is None:
            return _gmail_error(404, "Requested entity was not found.", "NOT_FOUND", "notFound")
        data: dict[str, object] = {
            "id": found.id,
            "threadId": found.id,
            "labelIds": list(found.labels),
            "snippet": "",
            "sizeEstimate": len(found.raw),
            "historyId": str(int(time.time())),
            "internalDate": str(int(found.received.timestamp() * 1000)),
        }
        if (query.get("format") or ["full"])[0] == "raw":
            data["raw"] = base64.urlsafe_b64encode(found.raw).decode("ascii")
        return _Reply.json(200, data)

    # -- Graph ----------------------------------------------------------------------------------

    def _graph_reader(self, headers: Mapping[str, str]) -> str | _Reply:
        token = self._bearer(headers)
        if token is None:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            return self.check_token(token, GRAPH_READ_SCOPES)
        except TokenRejected as rejected:
            if rejected.reason == "insufficient_scope":
                return _graph_error(
                    403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                )
            return _graph_error(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            )

    def _graph_messages(self, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> _Reply:
        account = self._graph_reader(headers)
        if isinstance(account, _Reply):
            return account
        messages = self.mailbox_of(account)
        wanted = (query.get("$filter") or [""])[0]
        search = (query.get("$search") or [""])[0].strip().strip('"')
        if wanted:
            match = re.fullmatch(r"\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*", wanted)
            if match is None:
                return _graph_error(400, "BadRequest", f"Invalid filter clause: {wanted}")
            message_id = match.group(1).replace("''", "'")
            messages = [m for m in messages if m.message_id == message_id]
        if search:
            messages = [m for m in messages if search.casefold().encode() in m.raw.lower()]
        value = []
        for m in reversed(messages):
            for index, folder in enumerate(self._graph_folders_of(account, m)):
                value.append(
                    {
                        "id": f"{m.id}.{index}",
                        "parentFolderId": folder,
                        "receivedDateTime": m.received.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "internetMessageId": m.message_id,
                    }
                )
        context = f"{self.base_url}/v1.0/$metadata#users('{account}')/messages"
        return _Reply.json(200, {"@odata.context": context, "value": value})

    def _graph_folders_of(self, account: str, message: StoredMessage) -> list[str]:
        """Graph keeps a copy per folder (a message sent to oneself is in Sent Items and Inbox)."""
        return [
            self._graph_folder_id(account, name)
            for name, label in _FOLDERS.items()
            if label in message.labels
        ]

    def _graph_folder_id(self, account: str, name: str) -> str:
        return base64.urlsafe_b64encode(
            _stable_id("folder", account.casefold(), name).encode()
        ).decode()

    def _graph_value(self, message_id: str, headers: Mapping[str, str]) -> _Reply:
        account = self._graph_reader(headers)
        if isinstance(account, _Reply):
            return account
        plain = message_id.split(".", 1)[0]
        found = next((m for m in self.mailbox_of(account) if m.id == plain), None)
        if found is None:
            return _graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return _Reply(200, found.raw, "text/plain")

    def _graph_mail_folder(self, name: str, headers: Mapping[str, str]) -> _Reply:
        account = self._graph_reader(headers)
        if isinstance(account, _Reply):
            return account
        key = name.lower()
        if key not in _FOLDERS:
            return _graph_error(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return _Reply.json(
            200,
            {
                "id": self._graph_folder_id(account, key),
                "displayName": _DISPLAY.get(key, key),
                "parentFolderId": self._graph_folder_id(account, "msgfolderroot"),
            },
        )


_GMAIL_TERM = re.compile(r'\{([^}]*)\}|"([^"]*)"|(\S+)')


def _gmail_matches(message: StoredMessage, query: str) -> bool:
    """Gmail's search over one message: every term must match; ``{...}`` is any of its terms."""
    for group, phrase, word in _GMAIL_TERM.findall(query):
        if group:
            if not any(_gmail_term(message, term) for term in group.split()):
                return False
        elif not _gmail_term(message, phrase or word, phrase=bool(phrase)):
            return False
    return True


def _gmail_term(message: StoredMessage, term: str, *, phrase: bool = False) -> bool:
    if not phrase and ":" in term:
        key, _, value = term.partition(":")
        head = _PARSER.parsebytes(message.raw, headersonly=True)
        if key.lower() == "rfc822msgid":
            return message.message_id.strip("<>") == value.strip("<>")
        if key.lower() == "from":
            return value.casefold() in str(head.get("From", "")).casefold()
        if key.lower() == "to":
            return value.casefold() in str(head.get("To", "")).casefold()
    return term.casefold().encode() in message.raw.lower()
