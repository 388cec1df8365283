"""The fake Exchange server: EWS, Autodiscover, NTLM and Basic on loopback HTTPS.

The real exchangelib talks to it as to an Exchange 2016/2019 server: it probes without
credentials and reads ``WWW-Authenticate``, completes an NTLM handshake bound to the connection
(or sends Basic), guesses the version from the ``ServerVersionInfo`` header of a ``ConvertId``
answer, and sends with ``CreateItem`` / ``SendAndSaveCopy``. The failures of
:mod:`mailkit.demo.ews.scenarios` come back exactly where Exchange gives them.

The HTTP side is the fake OAuth provider's (:mod:`mailkit.demo.oauth.server`): one thread per
connection, keep-alive, TLS negotiated in that thread. Because a connection keeps its thread for
its whole life, per-connection state (the NTLM handshake, who signed in) is a thread-local.

Nothing secret is kept: the fake records who signed in and how, never an Authorization header,
an NTLM message or a password.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import logging
import secrets
import ssl
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from mailkit.demo.ews import autodiscover, soap
from mailkit.demo.ews.ntlm import NtlmAcceptor, NtlmFailed
from mailkit.demo.ews.scenarios import (
    AUTODISCOVER_BY_TRIGGER,
    BACK_OFF_MILLISECONDS,
    LOGIN_FAULTS,
    MAILBOX_FAULTS,
    RECIPIENT_FAULTS,
    REDIRECT_TARGET,
    URL_FAULTS,
    EwsFault,
)
from mailkit.demo.oauth.server import BIND_ADDRESS, TwoPortService, _Handler, _Reply

_log = logging.getLogger("mailkit.demo.ews")

DOMAIN = "example.com"
NETBIOS_DOMAIN = "EXAMPLE"
DEFAULT_PASSWORD = "ews-password"  # noqa: S105 - the fake's public default, printed on purpose
DEFAULT_USER = f"ews@{DOMAIN}"

EWS_PATH = "/EWS/Exchange.asmx"
AUTODISCOVER_SVC_PATH = "/autodiscover/autodiscover.svc"
AUTODISCOVER_XML_PATH = "/autodiscover/autodiscover.xml"
AUTODISCOVER_JSON_PATH = "/autodiscover/autodiscover.json/v1.0/"

#: Which schemes each EWS URL variant offers (``url`` faults are path prefixes).
_SCHEMES = {
    "": ("NTLM", "Basic"),
    "basic-only": ("Basic",),
    "ntlm-only": ("NTLM",),
    # Exchange Online: OAuth first, Basic still named (and refused per tenant).
    "retired": ("Bearer", "Basic"),
}
#: Exchange Online's OAuth challenge (its resource id and Microsoft's sign-in URL).
_BEARER_CHALLENGE = (
    'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'error="invalid_token"'
)
#: What an on-premises Exchange 2016/2019 front end adds to its answers.
_ON_PREMISES_HEADERS = {"X-FEServer": "EXCH01", "X-Powered-By": "ASP.NET"}
#: What Exchange Online's front end adds to its answers (the sender can tell Online by them).
_ONLINE_HEADERS = {
    "X-CalculatedBETarget": "am0pr01mb1234.eurprd01.prod.outlook.com",
    "X-FEServer": "AM0PR01CA0001",
}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class EwsRequest:
    """One HTTP request the fake answered (or left unanswered), without any secret."""

    method: str
    path: str
    query: str
    soap_action: str | None
    #: The SOAP operation (``CreateItem``, ``ConvertId``, ``GetUserSettingsRequestMessage``...).
    operation: str | None
    #: How this request was authenticated: ``NTLM`` (now or earlier on the connection),
    #: ``Basic``, ``Bearer``; None for none (the probe).
    auth_scheme: str | None
    #: Who signed in (an address in the fake's domain), None if nobody did.
    user: str | None
    #: The HTTP status sent; None if the fake stalled or cut the connection instead.
    status: int | None
    response_class: str | None
    response_code: str | None
    #: Requests with the same number came over the same TCP connection.
    connection: int


@dataclass(frozen=True)
class EwsMessage:
    """A message a CreateItem asked Exchange to send (or to save)."""

    item_id: str
    change_key: str
    disposition: str
    subject: str | None
    body: str | None
    body_type: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    importance: str | None
    from_: str | None
    sender: str | None
    #: The mailbox the request acts for (folder mailbox, impersonated, From, or the sign-in).
    mailbox: str
    #: Who signed in.
    user: str
    #: ``(name, value)`` from the item's ``ExtendedProperty`` and ``InternetMessageHeaders``.
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc + self.bcc

    def as_bytes(self) -> bytes:
        """The message as Exchange would transmit it (Bcc left out), for the demo mailbox."""
        from email.message import EmailMessage
        from email.policy import SMTP
        from email.utils import make_msgid

        message = EmailMessage(policy=SMTP)
        message["From"] = self.from_ or self.mailbox
        if self.sender and self.sender != message["From"]:
            message["Sender"] = self.sender
        if self.to:
            message["To"] = ", ".join(self.to)
        if self.cc:
            message["Cc"] = ", ".join(self.cc)
        message["Subject"] = self.subject or ""
        message["Message-ID"] = make_msgid(domain=self.mailbox.rpartition("@")[2] or None)
        if self.importance and self.importance != "Normal":
            message["Importance"] = self.importance
            message["X-Priority"] = "1" if self.importance == "High" else "5"
        subtype = "html" if (self.body_type or "").lower() == "html" else "plain"
        message.set_content(self.body or "", subtype=subtype)
        return message.as_bytes()


# --------------------------------------------------------------------------- connection state


class _Connection(threading.local):
    """This thread's connection: a number, its NTLM handshake and who completed it."""

    _numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self._numbers)
        self.ntlm: NtlmAcceptor | None = None
        self.ntlm_user: str | None = None


@dataclass
class _Auth:
    """The outcome of checking a request's credentials."""

    user: str | None = None
    scheme: str | None = None
    #: The answer to send instead of serving the request (a challenge or a refusal).
    reply: _Reply | None = None


@dataclass
class _Served:
    """An answer and what the request log says about it."""

    reply: _Reply
    operation: str | None = None
    response_code: str | None = None
    response_class: str | None = None


# --------------------------------------------------------------------------- the server


class _IisHandler(_Handler):
    """The fakes' handler, introducing itself as Exchange's web server does."""

    server_version = "Microsoft-IIS/10.0"

    def version_string(self) -> str:
        return self.server_version


class FakeExchange(TwoPortService):
    """A local Exchange 2016/2019 for tests and the demo: EWS, Autodiscover, NTLM and Basic.

    Every address in ``domain`` signs in with ``password``; the failure addresses and URLs of
    :data:`~mailkit.demo.ews.scenarios.EWS_FAULTS` answer as Exchange does. Thread-safe; a
    context manager; ``start()`` / ``stop()`` too.
    """

    service_name = "fake Exchange"
    thread_prefix = "mailkit-fake-exchange"
    handler_class = _IisHandler

    def __init__(
        self,
        context: ssl.SSLContext,
        ca_file: Path | str,
        *,
        port: int = 0,
        password: str = DEFAULT_PASSWORD,
        domain: str = DOMAIN,
        netbios_domain: str = NETBIOS_DOMAIN,
        version: str = "Exchange2016",
        stall_seconds: float = 30.0,
        http_port: int = 0,
    ) -> None:
        """``context`` is a server context whose certificate covers 127.0.0.1 (and
        localhost), issued by the CA in ``ca_file``, which clients must trust. ``port`` is the
        HTTPS port, ``http_port`` the plain-HTTP one (Autodiscover's redirect step)."""
        if version not in soap.SERVER_VERSIONS:
            raise ValueError(
                f"version must be one of {', '.join(soap.SERVER_VERSIONS)}, not {version!r}"
            )
        super().__init__(context, ca_file, port=port, plain_port=http_port)
        self.domain = domain.lower()
        self.netbios_domain = netbios_domain.upper()
        self.version = soap.SERVER_VERSIONS[version]
        #: How long the ``stall`` fault keeps CreateItem unanswered before hanging up.
        self.stall_seconds = stall_seconds
        #: Bearer tokens accepted (token -> the address it signs in as), for OAuth tests.
        self.bearer_tokens: dict[str, str] = {}
        #: Called with each accepted message (the demo server delivers it to its mailbox).
        self.on_send: Callable[[EwsMessage], None] | None = None
        self._password = password
        self._requests: list[EwsRequest] = []
        self._sent: list[EwsMessage] = []
        self._drafts: list[EwsMessage] = []
        self._connection = _Connection()

    # -- where it answers

    @property
    def http_url(self) -> str:
        """The plain-HTTP root, e.g. ``http://127.0.0.1:50124``."""
        return f"http://{BIND_ADDRESS}:{self.plain_port}"

    @property
    def autodiscover_redirect_url(self) -> str:
        """Autodiscover's HTTP redirect step: a GET here answers 302 to the POX URL over
        HTTPS (what ``http://autodiscover.DOMAIN/autodiscover/autodiscover.xml`` does)."""
        return self.http_url + AUTODISCOVER_XML_PATH

    @property
    def ews_url(self) -> str:
        """The EWS endpoint offering NTLM and Basic."""
        return self.base_url + EWS_PATH

    @property
    def ews_url_basic_only(self) -> str:
        """An EWS endpoint offering Basic only (``ntlm-not-offered``)."""
        return f"{self.base_url}/basic-only{EWS_PATH}"

    @property
    def ews_url_ntlm_only(self) -> str:
        """An EWS endpoint offering NTLM only."""
        return f"{self.base_url}/ntlm-only{EWS_PATH}"

    @property
    def ews_url_retired(self) -> str:
        """Exchange Online after the EWS retirement (``ews-retired``)."""
        return f"{self.base_url}/retired{EWS_PATH}"

    @property
    def autodiscover_svc_url(self) -> str:
        return self.base_url + AUTODISCOVER_SVC_PATH

    @property
    def autodiscover_xml_url(self) -> str:
        return self.base_url + AUTODISCOVER_XML_PATH

    def autodiscover_json_url(self, email: str, protocol: str = "EWS") -> str:
        return f"{self.base_url}{AUTODISCOVER_JSON_PATH}{quote(email)}?Protocol={protocol}"

    @property
    def password(self) -> str:
        return self._password

    def address(self, local_part: str) -> str:
        return f"{local_part}@{self.domain}"

    # -- what happened

    @property
    def requests(self) -> list[EwsRequest]:
        """Every request answered so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def sent(self) -> list[EwsMessage]:
        """Every message CreateItem accepted (and the one the ``cut`` fault received)."""
        with self._lock:
            return list(self._sent)

    @property
    def drafts(self) -> list[EwsMessage]:
        """Every message saved without sending (``MessageDisposition="SaveOnly"``)."""
        with self._lock:
            return list(self._drafts)

    def reset(self) -> None:
        """Forget the requests, sent messages and drafts recorded so far."""
        with self._lock:
            self._requests.clear()
            self._sent.clear()
            self._drafts.clear()

    # -- answering

    def _handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        tls: tuple[str, str] | None,
        *,
        browser: bool = False,
    ) -> _Reply:
        parts = urlsplit(target)
        path = unquote(parts.path)
        variant, rest = _split_variant(path)
        auth = _Auth()
        served: _Served
        lower = rest.lower()
        if browser:  # the plain-HTTP port
            served = _Served(self._plain_http(method, lower))
        elif lower == EWS_PATH.lower() and method == "POST":
            auth = self._authenticate(headers, _SCHEMES.get(variant, _SCHEMES[""]))
            served = _Served(auth.reply) if auth.reply else self._ews(variant, body, auth)
        elif lower == AUTODISCOVER_SVC_PATH.lower() and method == "POST" and not variant:
            auth = self._authenticate(headers, _SCHEMES[""])
            served = _Served(auth.reply) if auth.reply else self._autodiscover_soap(body, auth)
        elif lower == AUTODISCOVER_XML_PATH.lower() and method == "POST" and not variant:
            auth = self._authenticate(headers, _SCHEMES[""])
            served = _Served(auth.reply) if auth.reply else self._autodiscover_pox(body, auth)
        elif lower.startswith(AUTODISCOVER_JSON_PATH) and method == "GET" and not variant:
            served = self._autodiscover_json(rest[len(AUTODISCOVER_JSON_PATH) :], parts.query)
        elif method == "GET" and lower in (EWS_PATH.lower(), AUTODISCOVER_SVC_PATH.lower()):
            # Exchange answers a browser's GET of the service with 401 too (then a WSDL page).
            served = _Served(self._challenge(_SCHEMES.get(variant, _SCHEMES[""])))
        else:
            served = _Served(_Reply(404, b"", "text/html"))
        reply = served.reply
        online = variant in URL_FAULTS and URL_FAULTS[variant].key == "ews-retired"
        for name, value in (_ONLINE_HEADERS if online else _ON_PREMISES_HEADERS).items():
            reply.headers.setdefault(name, value)
        # Every Exchange answer carries an id support staff can look the request up by.
        reply.headers.setdefault("request-id", str(uuid.uuid4()))
        self._record(method, parts, headers, auth, served)
        return reply

    def _plain_http(self, method: str, path: str) -> _Reply:
        """Plain HTTP: Autodiscover's redirect to HTTPS, IIS's "SSL required" for the rest."""
        if path == AUTODISCOVER_XML_PATH.lower() and method == "GET":
            return _Reply(302, b"", "text/html", {"Location": self.autodiscover_xml_url})
        if path in (EWS_PATH.lower(), AUTODISCOVER_SVC_PATH.lower(), AUTODISCOVER_XML_PATH.lower()):
            return _Reply(403, b"403.4 - SSL is required to view this resource.", "text/html")
        return _Reply(404, b"", "text/html")

    def _record(
        self,
        method: str,
        parts: Any,
        headers: Mapping[str, str],
        auth: _Auth,
        served: _Served,
    ) -> None:
        reply = served.reply
        entry = EwsRequest(
            method=method,
            path=parts.path,
            query=parts.query,
            soap_action=headers.get("soapaction"),
            operation=served.operation,
            auth_scheme=auth.scheme if auth.user else None,
            user=auth.user,
            status=None if reply.hang_up_after is not None else reply.status,
            response_class=served.response_class,
            response_code=served.response_code,
            connection=self._connection.number,
        )
        with self._lock:
            self._requests.append(entry)

    # -- authentication

    def _challenge(self, schemes: tuple[str, ...], body: bytes = b"") -> _Reply:
        """401 with one ``WWW-Authenticate`` header per scheme offered (as IIS sends them)."""
        headers: dict[str, str] = {}
        values = {"NTLM": "NTLM", "Basic": f'Basic realm="{BIND_ADDRESS}"'}
        for index, scheme in enumerate(schemes):
            value = values.get(scheme, _BEARER_CHALLENGE)
            # Header names are case-insensitive on the wire; distinct keys give distinct lines.
            headers[_header_name("WWW-Authenticate", index)] = value
        return _Reply(401, body, "text/html", headers=headers)

    def _refused(self, schemes: tuple[str, ...], login: str | None) -> _Reply:
        """The 401 for a refused sign-in: IIS's lock-out page for a locked account."""
        if login is not None and self._local_part(login) in LOGIN_FAULTS:
            fault = LOGIN_FAULTS[self._local_part(login)]
            if fault.http_status == 401 and fault.text:
                return self._challenge(schemes, fault.text.encode())
        return self._challenge(
            schemes, b"401 - Unauthorized: Access is denied due to invalid credentials."
        )

    def _authenticate(self, headers: Mapping[str, str], schemes: tuple[str, ...]) -> _Auth:
        connection = self._connection
        header = headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        scheme = scheme.strip()
        if not header:
            if connection.ntlm_user is not None and "NTLM" in schemes:
                # NTLM authenticates the connection, not the request (IIS's default).
                return _Auth(user=connection.ntlm_user, scheme="NTLM")
            return _Auth(reply=self._challenge(schemes))
        if scheme.lower() in ("ntlm", "negotiate") and "NTLM" in schemes:
            return self._ntlm(token.strip(), schemes)
        if scheme.lower() == "basic" and "Basic" in schemes:
            return self._basic(token.strip(), schemes)
        if scheme.lower() == "bearer":
            user = self.bearer_tokens.get(token.strip())
            if user is None:
                reply = _Reply(
                    401,
                    b"",
                    "text/html",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
                return _Auth(reply=reply)
            return self._signed_in(user, "Bearer", schemes)
        # A scheme this URL does not offer: challenge again with what it does offer.
        return _Auth(reply=self._challenge(schemes))

    def _ntlm(self, token: str, schemes: tuple[str, ...]) -> _Auth:
        connection = self._connection
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return _Auth(reply=self._challenge(schemes))
        connection.ntlm_user = None
        if connection.ntlm is None or not connection.ntlm.waiting:
            connection.ntlm = NtlmAcceptor(self.netbios_domain, self.domain)
            try:
                challenge = connection.ntlm.challenge(raw)
            except NtlmFailed:
                return _Auth(reply=self._challenge(schemes))
            value = "NTLM " + base64.b64encode(challenge).decode()
            return _Auth(reply=_Reply(401, b"", "text/html", {"WWW-Authenticate": value}))
        acceptor = connection.ntlm
        try:
            identity = acceptor.peek_identity(raw)
            login = self._login_address(identity.user, identity.domain)
            if login is None:
                raise NtlmFailed("unknown user")
            acceptor.authenticate(raw, self._password)
        except NtlmFailed:
            connection.ntlm = None
            return _Auth(reply=self._refused(schemes, None))
        connection.ntlm = None
        auth = self._signed_in(login, "NTLM", schemes)
        if auth.reply is None:
            connection.ntlm_user = login
        return auth

    def _basic(self, token: str, schemes: tuple[str, ...]) -> _Auth:
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return _Auth(reply=self._challenge(schemes))
        name, _, password = decoded.partition(":")
        login = self._login_address(name, "")
        good = hmac.compare_digest(password.encode(), self._password.encode())
        if login is None or not good:
            return _Auth(reply=self._refused(schemes, None))
        return self._signed_in(login, "Basic", schemes)

    def _signed_in(self, login: str, scheme: str, schemes: tuple[str, ...]) -> _Auth:
        """The credentials are right; a locked account is refused all the same."""
        fault = LOGIN_FAULTS.get(self._local_part(login))
        if fault is not None and fault.http_status == 401:
            self._connection.ntlm_user = None
            return _Auth(reply=self._refused(schemes, login))
        return _Auth(user=login, scheme=scheme)

    def _login_address(self, name: str, domain: str) -> str | None:
        """The address a sign-in name stands for (``EXAMPLE\\ews``, ``ews@example.com``,
        ``\\ews@example.com``, ``ews``), or None outside the fake's domain."""
        name = name.strip().lstrip("\\")
        if "\\" in name:
            domain, name = name.split("\\", 1)
        if not name:
            return None
        if "@" in name:
            local, _, at = name.rpartition("@")
            return f"{local.lower()}@{self.domain}" if at.lower() == self.domain else None
        if domain and domain.upper() not in (self.netbios_domain, self.domain.upper()):
            return None
        return f"{name.lower()}@{self.domain}"

    def _local_part(self, address: str) -> str:
        local, _, domain = address.strip().lower().rpartition("@")
        return local if domain == self.domain else ""

    # -- EWS

    def _ews(self, variant: str, body: bytes, auth: _Auth) -> _Served:
        assert auth.user is not None
        url_fault = URL_FAULTS.get(variant)
        if url_fault is not None and url_fault.http_status == 403:
            text = (url_fault.text or "").encode()
            return _Served(_Reply(403, text, "text/plain", {"X-BackEndHttpStatus": "403"}))
        login_fault = LOGIN_FAULTS.get(self._local_part(auth.user))
        if login_fault is not None and login_fault.http_status == 403:
            return _Served(_Reply(403, b"", "text/html"))
        try:
            request = soap.envelope(body)
        except soap.RequestError as exc:
            answer = soap.fault(
                "ErrorSchemaValidation",
                f"The request failed schema validation: {exc}",
                schema_error=True,
            )
            return _Served(
                _Reply(500, answer, soap.XML_CONTENT_TYPE), None, "ErrorSchemaValidation"
            )
        operation = request.name
        if operation == "CreateItem":
            return self._create_item(request, auth.user)
        handlers = {
            "ConvertId": self._convert_id,
            "ResolveNames": self._resolve_names,
            "GetFolder": self._get_folder,
        }
        handler = handlers.get(operation)
        if handler is None:
            message = soap.Message(
                "ErrorInvalidOperation", f"The fake Exchange does not implement {operation}."
            )
            return self._messages(operation, [message])
        return handler(request, auth.user)

    def _messages(self, operation: str, messages: list[soap.Message]) -> _Served:
        answer = soap.response(self.version, operation, messages)
        first = messages[0] if messages else soap.Message()
        return _Served(
            _Reply(200, answer, soap.XML_CONTENT_TYPE),
            operation,
            first.code,
            first.response_class,
        )

    def _convert_id(self, request: soap.Envelope, user: str) -> _Served:
        """exchangelib's version guess converts the id ``DUMMY``: Exchange calls it malformed
        (the answer's header still says which version answered)."""
        ids = list(request.operation.iter(soap.tag(soap.TYPES, "AlternateId"))) or [None]
        messages = [soap.Message("ErrorInvalidIdMalformed", "Id is malformed.") for _ in ids]
        return self._messages("ConvertId", messages)

    def _resolve_names(self, request: soap.Envelope, user: str) -> _Served:
        name = soap.text_of(request.operation, "m:UnresolvedEntry") or ""
        local = self._local_part(name)
        if not local:
            message = soap.Message("ErrorNameResolutionNoResults", "No results were found.")
            return self._messages("ResolveNames", [message])
        content = (
            '<m:ResolutionSet TotalItemsInView="1" IncludesLastItemInRange="true">'
            f"<t:Resolution><t:Mailbox><t:Name>{escape(local)}</t:Name>"
            f"<t:EmailAddress>{escape(local)}@{self.domain}</t:EmailAddress>"
            "<t:RoutingType>SMTP</t:RoutingType><t:MailboxType>Mailbox</t:MailboxType>"
            "</t:Mailbox></t:Resolution></m:ResolutionSet>"
        )
        return self._messages("ResolveNames", [soap.Message(content=content)])

    def _get_folder(self, request: soap.Envelope, user: str) -> _Served:
        """Distinguished folders (exchangelib asks for ``root`` and ``sentitems`` before it
        saves a copy of a sent message), and folders by the ids those answers gave."""
        folders: list[tuple[str, str]] = []
        for folder in request.operation.iter(soap.tag(soap.TYPES, "DistinguishedFolderId")):
            name = folder.get("Id") or "root"
            mailbox = soap.text_of(folder, "t:Mailbox/t:EmailAddress") or user
            folders.append((_folder_id(mailbox, name), _FOLDER_NAMES.get(name, name)))
        for folder in request.operation.iter(soap.tag(soap.TYPES, "FolderId")):
            folders.append((folder.get("Id") or "", "Folder"))
        if not folders:
            missing = soap.Message(
                "ErrorFolderNotFound", "The specified folder could not be found in the store."
            )
            return self._messages("GetFolder", [missing])
        messages = [
            soap.Message(
                content=(
                    f"<m:Folders><t:Folder><t:FolderId Id={quoteattr(folder_id)} "
                    'ChangeKey="AQAAABYAAAA="/><t:FolderClass>IPF.Note</t:FolderClass>'
                    f"<t:DisplayName>{escape(display)}</t:DisplayName>"
                    "<t:TotalCount>0</t:TotalCount><t:ChildFolderCount>0</t:ChildFolderCount>"
                    "<t:UnreadCount>0</t:UnreadCount></t:Folder></m:Folders>"
                )
            )
            for folder_id, display in folders
        ]
        return self._messages("GetFolder", messages)

    def _create_item(self, request: soap.Envelope, user: str) -> _Served:
        operation = request.operation
        disposition = operation.get("MessageDisposition") or "SaveOnly"
        folder_mailbox = soap.text_of(
            operation, "m:SavedItemFolderId/t:DistinguishedFolderId/t:Mailbox/t:EmailAddress"
        )
        items = list(operation.iterfind("m:Items/*", {"m": soap.MESSAGES}))
        messages: list[soap.Message] = []
        for item in items:
            message = self._read_message(item, disposition, user, request, folder_mailbox)
            fault = self._mailbox_fault(message, request)
            if fault is None:
                fault = next(
                    (
                        RECIPIENT_FAULTS[self._local_part(a)]
                        for a in message.recipients
                        if self._local_part(a) in RECIPIENT_FAULTS
                    ),
                    None,
                )
            if fault is not None and fault.key == "stall":
                return _Served(_Reply(200, hang_up_after=self.stall_seconds), "CreateItem")
            if fault is not None and fault.key == "cut":
                with self._lock:
                    self._sent.append(message)
                return _Served(_Reply(200, hang_up_after=0.0), "CreateItem")
            if fault is not None and fault.soap_fault:
                values: tuple[tuple[str, str], ...] = ()
                if fault.response_code == "ErrorServerBusy":
                    values = (("BackOffMilliseconds", str(BACK_OFF_MILLISECONDS)),)
                answer = soap.fault(fault.response_code or "", fault.text or "", xml_values=values)
                return _Served(
                    _Reply(500, answer, soap.XML_CONTENT_TYPE),
                    "CreateItem",
                    fault.response_code,
                    "Error",
                )
            if fault is not None:
                messages.append(
                    soap.Message(fault.response_code or "", fault.text, content="<m:Items/>")
                )
                continue
            if not message.recipients and disposition != "SaveOnly":
                messages.append(
                    soap.Message(
                        "ErrorInvalidRecipients",
                        "At least one recipient isn't valid., A message can't be sent because it "
                        "contains no recipients.",
                        content="<m:Items/>",
                    )
                )
                continue
            if disposition == "SaveOnly":  # a draft: kept, not sent
                with self._lock:
                    self._drafts.append(message)
                content = (
                    f'<m:Items><t:Message><t:ItemId Id="{message.item_id}" '
                    f'ChangeKey="{message.change_key}"/></t:Message></m:Items>'
                )
                messages.append(soap.Message(content=content))
                continue
            with self._lock:
                self._sent.append(message)
            if self.on_send is not None:
                try:
                    self.on_send(message)
                except Exception:
                    _log.exception("fake Exchange: delivering a sent message failed")
            # Exchange returns no ItemId for a message it sends (the saved copy gets a new one).
            messages.append(soap.Message(content="<m:Items/>"))
        if not messages:
            messages = [soap.Message("ErrorInvalidRequest", "The request is invalid.")]
        return self._messages("CreateItem", messages)

    def _mailbox_fault(self, message: EwsMessage, request: soap.Envelope) -> EwsFault | None:
        candidates = [message.mailbox, message.from_, message.sender, request.impersonated]
        for address in candidates:
            if address and self._local_part(address) in MAILBOX_FAULTS:
                return MAILBOX_FAULTS[self._local_part(address)]
        return None

    def _read_message(
        self,
        item: Any,
        disposition: str,
        user: str,
        request: soap.Envelope,
        folder_mailbox: str | None,
    ) -> EwsMessage:
        body = item.find(soap.tag(soap.TYPES, "Body"))
        from_ = soap.addresses(item, "t:From")
        sender = soap.addresses(item, "t:Sender")
        mailbox = (
            request.impersonated
            or folder_mailbox
            or (sender[0] if sender else None)
            or (from_[0] if from_ else None)
            or user
        )
        headers: list[tuple[str, str]] = []
        for prop in item.iter(soap.tag(soap.TYPES, "ExtendedProperty")):
            uri = prop.find(soap.tag(soap.TYPES, "ExtendedFieldURI"))
            value = soap.text_of(prop, "t:Value")
            if uri is not None and value is not None:
                name = uri.get("PropertyName") or uri.get("PropertyTag") or "?"
                headers.append((name, value))
        for header in item.iter(soap.tag(soap.TYPES, "InternetMessageHeader")):
            headers.append((header.get("HeaderName") or "?", (header.text or "").strip()))
        return EwsMessage(
            item_id=base64.b64encode(b"AAMkAD" + secrets.token_bytes(30)).decode(),
            change_key=base64.b64encode(secrets.token_bytes(12)).decode(),
            disposition=disposition,
            subject=soap.text_of(item, "t:Subject"),
            body=(body.text or "") if body is not None else None,
            body_type=body.get("BodyType") if body is not None else None,
            to=soap.addresses(item, "t:ToRecipients"),
            cc=soap.addresses(item, "t:CcRecipients"),
            bcc=soap.addresses(item, "t:BccRecipients"),
            importance=soap.text_of(item, "t:Importance"),
            from_=from_[0] if from_ else None,
            sender=sender[0] if sender else None,
            mailbox=mailbox,
            user=user,
            headers=tuple(headers),
        )

    # -- Autodiscover

    def _autodiscover_target(self, address: str) -> tuple[str, str | None]:
        """(what to do, redirect target) for an address: ``ok``, ``unknown`` or a failure."""
        local = self._local_part(address)
        if not local:
            return "unknown", None
        fault = AUTODISCOVER_BY_TRIGGER.get(local)
        if fault is None:
            return "ok", None
        if fault.failure == "redirect":
            return "redirect", self.address(REDIRECT_TARGET)
        return fault.failure, None

    def _xml_failure(self, what: str, operation: str) -> _Served | None:
        """The failures SOAP and POX Autodiscover answer alike: a 404, a 401 challenge, or
        XML cut short; None for the others."""
        if what == "404":
            return _Served(_Reply(404, b"", "text/html"), operation)
        if what == "401":
            return _Served(self._challenge(_SCHEMES[""]), operation)
        if what == "malformed":
            return _Served(
                _Reply(200, autodiscover.MALFORMED_XML, soap.XML_CONTENT_TYPE), operation
            )
        return None

    def _autodiscover_soap(self, body: bytes, auth: _Auth) -> _Served:
        operation = "GetUserSettingsRequestMessage"
        try:
            request = soap.envelope(body)
        except soap.RequestError:
            return _Served(_Reply(400, b"", "text/html"), operation)
        addresses = autodiscover.soap_addresses(request.operation)
        address = addresses[0] if addresses else ""
        what, target = self._autodiscover_target(address)
        if (failed := self._xml_failure(what, operation)) is not None:
            return failed
        if what == "redirect" and target is not None:
            answer = autodiscover.soap_redirect(self.version, target)
            return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "RedirectAddress")
        if what == "unknown":
            answer = autodiscover.soap_unknown_user(self.version, address)
            return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "InvalidUser")
        ews_url = None if what == "no-ews" else self.ews_url
        answer = autodiscover.soap_settings(self.version, address, ews_url, address)
        return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "NoError")

    def _autodiscover_pox(self, body: bytes, auth: _Auth) -> _Served:
        operation = "Autodiscover"
        try:
            address = autodiscover.pox_address(body) or ""
        except soap.RequestError:
            answer = autodiscover.pox_error(600, "Invalid Request")
            return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "600")
        what, target = self._autodiscover_target(address)
        if (failed := self._xml_failure(what, operation)) is not None:
            return failed
        if what == "redirect" and target is not None:
            answer = autodiscover.pox_redirect(target)
            return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "redirectAddr")
        if what == "unknown":
            answer = autodiscover.pox_error(500, "The email address can't be found.")
            return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "500")
        ews_url = None if what == "no-ews" else self.ews_url
        answer = autodiscover.pox_settings(address, ews_url, address, BIND_ADDRESS)
        return _Served(_Reply(200, answer, soap.XML_CONTENT_TYPE), operation, "settings")

    def _autodiscover_json(self, tail: str, query: str) -> _Served:
        operation = "autodiscover.json"
        address = tail.strip("/")
        protocol = next(iter(parse_qs(query).get("Protocol", [])), "")
        if protocol.lower() != "ews":
            answer = autodiscover.json_invalid_protocol(protocol)
            return _Served(_Reply(400, answer, autodiscover.JSON_CONTENT_TYPE), operation)
        what, target = self._autodiscover_target(address)
        if what == "404" or what == "unknown":
            return _Served(_Reply(404, b"", "text/html"), operation)
        if what == "401":
            return _Served(_Reply(401, b"", "text/html"), operation)
        if what == "malformed":
            reply = _Reply(200, autodiscover.MALFORMED_JSON, autodiscover.JSON_CONTENT_TYPE)
            return _Served(reply, operation)
        if what == "redirect" and target is not None:
            location = self.autodiscover_json_url(target)
            return _Served(_Reply(302, b"", "text/html", {"Location": location}), operation)
        url = None if what == "no-ews" else self.ews_url
        answer = autodiscover.json_settings("EWS", url)
        return _Served(_Reply(200, answer, autodiscover.JSON_CONTENT_TYPE), operation)


# --------------------------------------------------------------------------- helpers


_FOLDER_NAMES = {
    "root": "Top of Information Store",
    "sentitems": "Sent Items",
    "inbox": "Inbox",
    "drafts": "Drafts",
    "msgfolderroot": "Top of Information Store",
}


def _folder_id(mailbox: str, name: str) -> str:
    return base64.b64encode(f"AAMkAD:{mailbox.lower()}:{name}".encode()).decode()


def _split_variant(path: str) -> tuple[str, str]:
    """``/basic-only/EWS/Exchange.asmx`` -> (``basic-only``, ``/EWS/Exchange.asmx``)."""
    head, _, tail = path.lstrip("/").partition("/")
    if head.lower() in _SCHEMES or head.lower() in URL_FAULTS:
        return head.lower(), "/" + tail
    return "", path


def _header_name(name: str, index: int) -> str:
    """``name`` in a spelling distinct for each ``index`` (same header, separate lines)."""
    if index == 0:
        return name
    return name[:index].lower() + name[index:] if index < len(name) else name.lower()
