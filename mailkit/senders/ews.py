"""Test sends through Exchange Web Services (mode ``exchange_ews``), with exchangelib.

The test message goes out as one ``CreateItem`` with ``MessageDisposition=SendAndSaveCopy``
(exchangelib's ``Message.send_and_save()``): the same subject and multi-language body as every
other test, the priority as EWS ``Importance``. The EWS URL is the one configured, or found by
Autodiscover (POX ``autodiscover.xml`` and the v2 JSON endpoint, see :func:`autodiscover_steps`).
Sign-in is NTLM (the seeds' ``msn`` / ``ntlm``), Basic, or OAuth with the stored Microsoft
consent; ``auth auto`` asks the server first (one unauthenticated POST, as exchangelib does)
and takes NTLM when it is offered.

Nothing here changes exchangelib for anyone else in the process. exchangelib caches one
``Protocol`` per (endpoint, credentials) in a process-wide table and takes its HTTP adapter from
a class attribute; a send here builds its own uncached protocol (:class:`_SendProtocol`) whose
sessions mount this send's adapter (:class:`EwsAdapter`). That adapter trusts what the settings
say — the CA file, or the pinned SHA-256 checked before a byte is sent — whatever
``REQUESTS_CA_BUNDLE`` says, and tells the send's :class:`EwsRecorder` what goes each way: one
row per request and answer with the SOAP operation, the HTTP status and EWS's ResponseClass and
ResponseCode. Authorization headers show only their scheme; NTLM and Negotiate blobs in
``WWW-Authenticate`` are hidden whole. exchangelib logs requests, with their headers, at DEBUG:
the whole send runs inside :func:`mailkit.logguard.guarded`, so those records are never made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from mailkit import logguard
from mailkit.fields import AuthType, Priority
from mailkit.message import TestMessage
from mailkit.outcome import Failure, Phase, SendContext, Signal
from mailkit.result import TestResult, TlsInfo, TokenProvider
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.http import (
    HttpRecorder,
    HttpSend,
    SendStop,
    check_ca_file,
    exception_chain,
    failure_from_request_error,
    one_line,
    request_went_out,
    retry_after_seconds,
)
from mailkit.senders.tls import describe_certificate
from mailkit.transcript import Row

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

    from mailkit.resolve import Effective

__all__ = [
    "AutodiscoverStep",
    "EwsAdapter",
    "EwsPlan",
    "EwsRecorder",
    "EwsSender",
    "autodiscover_steps",
    "parse_pox",
    "send_ews",
    "send_ews_async",
    "soap_request",
    "soap_response",
]

#: EWS Importance for each priority (the MIME headers say the same to SMTP clients).
IMPORTANCE = {Priority.HIGH: "High", Priority.NORMAL: "Normal", Priority.LOW: "Low"}

_SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_POX_REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
_POX_RESPONSE_SCHEMA = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
#: The unauthenticated first request of ``auth auto``: what the server offers is in its 401.
_PROBE_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<soap:Envelope xmlns:soap="{_SOAP_NS}" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
    '<soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header>'
    "<soap:Body/></soap:Envelope>"
).encode()
#: Authorization schemes whose tokens are hidden whole in WWW-Authenticate.
_BLOB_SCHEMES = ("NTLM", "Negotiate", "Kerberos")
#: Answers that end a send at once: exchangelib would try every schema version on them.
_FINAL_STATUSES = frozenset({403, 404, 405, 410})


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _xml(raw: bytes) -> Element | None:
    """The parsed document, or None for anything that is not well-formed XML (or is hostile:
    defusedxml refuses entity expansion and external references)."""
    if raw.lstrip()[:1] != b"<":
        return None
    from defusedxml import ElementTree  # type: ignore[import-untyped, unused-ignore]
    from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped, unused-ignore]

    try:
        return ElementTree.fromstring(raw)  # type: ignore[no-any-return, unused-ignore]
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return None


def _find(root: Element, name: str) -> Element | None:
    """The first element named ``name`` (any namespace), depth first."""
    for element in root.iter():
        if _local(element.tag) == name:
            return element
    return None


def _text(root: Element, name: str) -> str | None:
    element = _find(root, name)
    return (element.text or "").strip() if element is not None else None


# --------------------------------------------------------------------------- SOAP and POX


@dataclass(frozen=True)
class SoapRequest:
    """What a SOAP request asks: its operation (``CreateItem``) and disposition, if any."""

    operation: str | None
    disposition: str | None = None


def soap_request(raw: bytes) -> SoapRequest:
    """The first element of ``soap:Body`` and its ``MessageDisposition``. Pure."""
    root = _xml(raw)
    body = _find(root, "Body") if root is not None else None
    if body is None or len(body) == 0:
        return SoapRequest(None)
    first = body[0]
    return SoapRequest(_local(first.tag), first.get("MessageDisposition"))


@dataclass(frozen=True)
class SoapResponse:
    """What an EWS answer says: ResponseClass and ResponseCode, a fault, the server version."""

    operation: str | None = None
    response_class: str | None = None
    response_code: str | None = None
    message_text: str | None = None
    #: ``MajorVersion.MinorVersion.MajorBuild.MinorBuild`` from ServerVersionInfo.
    server_version: str | None = None
    #: Seconds an ErrorServerBusy asks to wait (``BackOffMilliseconds`` in its MessageXml).
    back_off: float | None = None
    #: A soap:Fault's faultstring (exchangelib raises the ResponseCode in its detail).
    fault: str | None = None


def soap_response(raw: bytes) -> SoapResponse | None:
    """The EWS answer in ``raw``, or None when it is no SOAP envelope. Pure."""
    root = _xml(raw)
    if root is None or _local(root.tag) != "Envelope":
        return None
    version = _find(root, "ServerVersionInfo")
    server_version = (
        ".".join(
            version.get(part, "?")
            for part in ("MajorVersion", "MinorVersion", "MajorBuildNumber", "MinorBuildNumber")
        )
        if version is not None
        else None
    )
    body = _find(root, "Body")
    first = body[0] if body is not None and len(body) else None
    operation = _local(first.tag) if first is not None else None
    response_class = response_code = message_text = None
    for element in root.iter():
        if element.get("ResponseClass") is not None:
            response_class = element.get("ResponseClass")
            response_code = _text(element, "ResponseCode")
            message_text = _text(element, "MessageText")
            if response_class != "Success":
                break
    fault = None
    if operation == "Fault" and first is not None:
        fault = _text(first, "faultstring")
        response_code = response_code or _text(first, "ResponseCode")
        message_text = message_text or _text(first, "Message")
    back_off = None
    for element in root.iter():
        if _local(element.tag) == "Value" and element.get("Name") == "BackOffMilliseconds":
            try:
                back_off = int((element.text or "").strip()) / 1000
            except ValueError:
                back_off = None
    return SoapResponse(
        operation=operation,
        response_class=response_class,
        response_code=response_code,
        message_text=message_text,
        server_version=server_version,
        back_off=back_off,
        fault=fault,
    )


@dataclass(frozen=True)
class PoxAnswer:
    """An Outlook-schema Autodiscover answer: an EWS URL, a redirect, or an error."""

    ews_url: str | None = None
    redirect_address: str | None = None
    redirect_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    well_formed: bool = True


def parse_pox(raw: bytes) -> PoxAnswer:
    """Read a POX ``autodiscover.xml`` answer. Pure.

    The EWS URL is the ``EwsUrl`` of the ``EXCH`` (internal) protocol, else of ``EXPR``
    (Outlook Anywhere), else of ``WEB``; an ``Action`` of ``redirectAddr`` or ``redirectUrl``
    asks to start over with another address or server.
    """
    root = _xml(raw)
    if root is None or _local(root.tag) != "Autodiscover":
        return PoxAnswer(well_formed=False)
    error = _find(root, "Error")
    if error is not None:
        return PoxAnswer(
            error_code=_text(error, "ErrorCode"), error_message=_text(error, "Message")
        )
    action = _text(root, "Action")
    if action == "redirectAddr":
        return PoxAnswer(redirect_address=_text(root, "RedirectAddr"))
    if action == "redirectUrl":
        return PoxAnswer(redirect_url=_text(root, "RedirectUrl"))
    urls: dict[str, str] = {}
    for protocol in root.iter():
        if _local(protocol.tag) != "Protocol":
            continue
        kind = (_text(protocol, "Type") or "").upper()
        url = _text(protocol, "EwsUrl") or _text(protocol, "ASUrl")
        if kind and url and _text(protocol, "EwsUrl"):
            urls.setdefault(kind, url)
    for kind in ("EXCH", "EXPR", "WEB"):
        if kind in urls:
            return PoxAnswer(ews_url=urls[kind])
    return PoxAnswer(ews_url=next(iter(urls.values()), None))


def pox_request(email: str) -> bytes:
    """The POX request body for ``email`` (the address is validated before it gets here)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<Autodiscover xmlns="{_POX_REQUEST_NS}"><Request>'
        f"<EMailAddress>{_escape(email)}</EMailAddress>"
        f"<AcceptableResponseSchema>{_POX_RESPONSE_SCHEMA}</AcceptableResponseSchema>"
        "</Request></Autodiscover>"
    ).encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class EwsPlan:
    """What an EWS send needs, from the effective settings (no secrets)."""

    from_address: str | None
    from_name: str | None = None
    username: str | None = None
    ews_url: str | None = None
    #: Find the EWS URL by Autodiscover (when no URL is set, it is always tried).
    autodiscover: bool = False
    #: Ask this Autodiscover endpoint only (a POX ``.xml``, a JSON ``autodiscover.json`` URL,
    #: or a server's base URL for both), instead of the lookup from the address's domain.
    autodiscover_url: str | None = None
    auth: AuthType = AuthType.AUTO
    ca_file: str | None = None
    pin_sha256: str | None = None
    tls_min_version: str = "1.2"
    connect_timeout: float = 15.0
    command_timeout: float = 60.0

    @classmethod
    def from_effective(cls, eff: Effective) -> EwsPlan:
        return cls(
            from_address=eff.from_address,
            from_name=eff.from_name,
            username=eff.username,
            ews_url=eff.ews_url,
            autodiscover=eff.ews_autodiscover,
            autodiscover_url=eff.ews_autodiscover_url,
            auth=eff.auth.canonical,
            ca_file=eff.ca_file,
            pin_sha256=eff.tls_pin_sha256,
            tls_min_version=eff.tls_min_version,
            connect_timeout=eff.connect_timeout,
            command_timeout=eff.command_timeout,
        )

    @property
    def trust(self) -> str:
        if self.pin_sha256:
            return "pinned SHA-256"
        return f"CA file {self.ca_file}" if self.ca_file else "system CA store"


# --------------------------------------------------------------------------- the recorder


def _auth_schemes(value: str) -> list[str]:
    """The schemes of a WWW-Authenticate value (``NTLM``, ``Basic realm="x"`` → NTLM, Basic)."""
    schemes = []
    for part in value.split(","):
        word = part.strip().split(" ", 1)[0]
        if word and "=" not in word and word.replace("-", "").isalnum():
            schemes.append(word)
    return schemes


def _shown_challenge(value: str) -> str:
    """A WWW-Authenticate value with every NTLM / Negotiate token hidden whole."""
    shown = []
    for part in value.split(","):
        scheme, _, rest = part.strip().partition(" ")
        if scheme.lower() in (s.lower() for s in _BLOB_SCHEMES) and rest.strip():
            shown.append(f"{scheme} <token hidden>")
        else:
            shown.append(part.strip())
    return ", ".join(shown)


class EwsRecorder(HttpRecorder):
    """:class:`HttpRecorder` that reads SOAP and Autodiscover bodies for what matters.

    A request shows its SOAP operation (``CreateItem, MessageDisposition=SendAndSaveCopy``),
    never its XML; an answer its ResponseClass, ResponseCode and MessageText, the server
    version, or the EWS URL Autodiscover named.
    """

    def _request_body(self, raw: bytes, content_type: str) -> str:
        if b"Autodiscover" in raw[:400] and _local((_xml(raw) or _Empty).tag) == "Autodiscover":
            return f"<POX Autodiscover request, {len(raw):,} bytes>"
        request = soap_request(raw)
        if request.operation is not None:
            how = f", MessageDisposition={request.disposition}" if request.disposition else ""
            return f"<SOAP {request.operation}{how}, {len(raw):,} bytes>"
        return super()._request_body(raw, content_type)

    def _response_body(self, raw: bytes, content_type: str) -> str:
        answer = soap_response(raw)
        if answer is not None:
            parts = [f"SOAP {answer.operation or '(empty body)'}"]
            if answer.response_class:
                parts.append(f"ResponseClass={answer.response_class}")
            if answer.response_code:
                parts.append(f"ResponseCode={answer.response_code}")
            if answer.fault:
                parts.append(f"fault: {answer.fault}")
            if answer.message_text and answer.response_class != "Success":
                parts.append(f"MessageText: {answer.message_text}")
            if answer.back_off is not None:
                parts.append(f"BackOffMilliseconds={answer.back_off * 1000:g}")
            if answer.server_version:
                parts.append(f"server version {answer.server_version}")
            return one_line(self.scrub("; ".join(parts)))
        pox = parse_pox(raw)
        if pox.well_formed:
            if pox.ews_url:
                said = f"EwsUrl {pox.ews_url}"
            elif pox.redirect_address:
                said = f"redirectAddr {pox.redirect_address}"
            elif pox.redirect_url:
                said = f"redirectUrl {pox.redirect_url}"
            elif pox.error_code:
                said = f"Error {pox.error_code}: {pox.error_message or ''}"
            else:
                said = "no EWS URL in the answer"
            return one_line(self.scrub(f"<POX Autodiscover answer: {said}>"))
        json_url = _json_ews_url(raw)
        if json_url is not None:
            return one_line(self.scrub(f"<JSON Autodiscover answer: Url {json_url}>"))
        return super()._response_body(raw, content_type)


class _Empty:
    tag = ""


def _json_ews_url(raw: bytes) -> str | None:
    import json

    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and isinstance(data.get("Url"), str):
        return str(data["Url"])
    return None


# --------------------------------------------------------------------------- the adapter


@dataclass
class Exchange:
    """The last request and answer the adapter saw (what a failure is judged by)."""

    method: str
    url: str
    operation: str | None
    status: int | None = None
    reason: str = ""
    answer: SoapResponse | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    error: BaseException | None = None


class EwsAdapter(HTTPAdapter):
    """requests' transport adapter for one send: its trust, its recorder, its timeouts.

    exchangelib mounts one per session (it asks :class:`_SendProtocol` for the session), and
    Autodiscover uses one too. ``verify`` is decided here, not by the session, so neither
    ``REQUESTS_CA_BUNDLE`` nor a caller's session defaults can loosen it.
    """

    def __init__(self, send: EwsSender, **pool: Any) -> None:
        self._send = send
        plan = send.plan
        context = ssl.create_default_context(
            cafile=None if plan.pin_sha256 else plan.ca_file or None
        )
        context.minimum_version = (
            ssl.TLSVersion.TLSv1_3 if plan.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
        )
        if plan.pin_sha256:
            # The pin replaces the chain: checked by urllib3 right after the handshake, before
            # the request (and its Authorization header) is written.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._context = context
        pool.setdefault("max_retries", 0)
        super().__init__(**pool)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        if self._send.plan.pin_sha256:
            kwargs["assert_fingerprint"] = self._send.plan.pin_sha256
        super().init_poolmanager(*args, **kwargs)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        plan = self._send.plan
        if plan.pin_sha256:
            kwargs["verify"] = False
        else:
            kwargs["verify"] = plan.ca_file or True
        timeout = (plan.connect_timeout, plan.command_timeout)
        kwargs["timeout"] = timeout
        return self._send.exchange(
            request, lambda: super(EwsAdapter, self).send(request, *args, **kwargs)
        )

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """Note the TLS session while urllib3 still holds the connection."""
        connection = getattr(resp, "connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, ssl.SSLSocket):
            der = sock.getpeercert(binary_form=True) or b""
            fingerprint = hashlib.sha256(der).hexdigest()
            self._send.note_tls(describe_certificate(der, sock, fingerprint, self._send.plan.trust))
        return super().build_response(req, resp)


# --------------------------------------------------------------------------- autodiscover


@dataclass(frozen=True)
class AutodiscoverStep:
    """One place Autodiscover asks: its name in Microsoft's order, the URL, how it is asked."""

    name: str
    url: str
    #: ``pox`` (authenticated POST of autodiscover.xml), ``json`` (anonymous GET, v2) or
    #: ``redirect`` (an anonymous GET over http whose 302 names the POX URL to ask).
    kind: str


def autodiscover_steps(email: str, explicit_url: str | None = None) -> list[AutodiscoverStep]:
    """Where to look for the EWS URL of ``email``, in Microsoft's documented order. Pure.

    Without ``explicit_url``: the domain's own host, then ``autodiscover.DOMAIN`` (POX), then
    the v2 JSON endpoint there (Exchange 2019 and Exchange Online), then the unauthenticated
    HTTP redirect at ``http://autodiscover.DOMAIN``. (The SCP lookup needs a domain-joined
    machine and Active Directory, which mailkit does not use; the SRV record comes last and is
    :meth:`EwsSender._srv_step`'s.) With ``explicit_url``: that endpoint only — POX for an
    ``.xml`` URL, JSON for an ``autodiscover.json`` URL, the redirect step for an ``http://``
    URL — or, for a bare server URL, the JSON endpoint and then POX there.
    """
    domain = email.rpartition("@")[2].lower()
    json_tail = f"/autodiscover/autodiscover.json/v1.0/{quote(email, safe='@')}?Protocol=EWS"
    if explicit_url:
        parts = urlsplit(explicit_url)
        base = f"{parts.scheme}://{parts.netloc}"
        path = parts.path.rstrip("/")
        if parts.scheme == "http":  # only ever the redirect step: nothing is sent but a GET
            return [AutodiscoverStep("configured HTTP redirect", explicit_url, "redirect")]
        if path.lower().endswith(".xml"):
            return [AutodiscoverStep("configured POX endpoint", explicit_url, "pox")]
        if "autodiscover.json" in path.lower():
            url = explicit_url if "/v1.0/" in path else base + json_tail
            return [AutodiscoverStep("configured JSON endpoint", url, "json")]
        return [
            AutodiscoverStep("configured server, JSON (v2)", base + json_tail, "json"),
            AutodiscoverStep(
                "configured server, POX", base + "/autodiscover/autodiscover.xml", "pox"
            ),
        ]
    return [
        AutodiscoverStep(
            f"POX at {domain}", f"https://{domain}/autodiscover/autodiscover.xml", "pox"
        ),
        AutodiscoverStep(
            f"POX at autodiscover.{domain}",
            f"https://autodiscover.{domain}/autodiscover/autodiscover.xml",
            "pox",
        ),
        AutodiscoverStep(
            f"JSON (v2) at autodiscover.{domain}",
            f"https://autodiscover.{domain}{json_tail}",
            "json",
        ),
        AutodiscoverStep(
            f"HTTP redirect at autodiscover.{domain}",
            f"http://autodiscover.{domain}/autodiscover/autodiscover.xml",
            "redirect",
        ),
    ]


@dataclass(frozen=True)
class _StepOutcome:
    step: AutodiscoverStep
    ews_url: str | None = None
    redirect_address: str | None = None
    redirect_url: str | None = None
    #: Why the step gave no EWS URL, in a few words (also for the diagnosis).
    problem: str = ""
    status: int | None = None
    failure: Failure | None = None


# --------------------------------------------------------------------------- the send


#: How exchangelib's auth words map to mailkit's (the transcript and the context name these).
_EWS_AUTH = {"ntlm": "NTLM", "basic": "basic", "oauth": "OAuth 2.0"}
#: EWS response codes and the phase of the dialog each belongs to (the exit code follows it).
_CODE_PHASE = {
    "ErrorInvalidRecipients": Phase.RCPT,
    "ErrorSendAsDenied": Phase.MAIL,
    "ErrorImpersonateUserDenied": Phase.MAIL,
    "ErrorImpersonationDenied": Phase.MAIL,
}
MAX_AUTODISCOVER_REDIRECTS = 10


class EwsSender(HttpSend):
    """One test send through EWS. :meth:`run` never raises for a failed send."""

    plan: EwsPlan

    def __init__(
        self,
        plan: EwsPlan,
        *,
        password: Secret | None = None,
        token: TokenProvider | None = None,
        on_row: Callable[[Row], None] | None = None,
        srv_lookup: Callable[[str], list[tuple[str, int]]] | None = None,
    ) -> None:
        super().__init__(token=token, on_row=on_row)
        self.plan = plan
        self.password = password
        self._srv_lookup = srv_lookup
        self.recorder = EwsRecorder(
            secrets=[password] if password else (),
            on_row=self._deliver if on_row is not None else None,
        )
        self.last: Exchange | None = None
        #: Schemes the server offered in a 401's WWW-Authenticate (upper-case).
        self.offered: frozenset[str] = frozenset()
        self.auth_used: str | None = None
        self.url: str | None = plan.ews_url
        self._autodiscover_host: str | None = None

    # -- what the adapter reports

    def note_tls(self, info: TlsInfo) -> None:
        if self.tls is not None and self.tls.sha256 == info.sha256:
            return
        self.tls = info
        until = f", valid until {info.not_after:%Y-%m-%d}" if info.not_after else ""
        self.recorder.info(
            f"over TLS: {info.version}, {info.cipher}; certificate subject {info.subject}, "
            f"issuer {info.issuer}, names {', '.join(info.san) or '-'}{until}; checked "
            f"against the {info.verified_by}",
            Phase.TLS,
        )

    def exchange(
        self, request: requests.PreparedRequest, send: Callable[[], requests.Response]
    ) -> requests.Response:
        """Record one request and its answer around ``send`` (the adapter's own send)."""
        raw = request.body.encode() if isinstance(request.body, str) else request.body or b""
        url = request.url or ""
        headers = dict(request.headers)
        self.recorder.request(request.method or "POST", url, headers, raw, phase=Phase.REQUEST)
        current = Exchange(request.method or "POST", url, soap_request(raw).operation)
        self.last = current
        try:
            response = send()
        except OSError as exc:
            current.error = exc
            raise
        # A 401's body is left unread: NTLM's channel binding reads the server certificate from
        # the response's socket, which reading the body to its end closes.
        content = b"" if response.status_code == 401 else response.content
        shown = dict(response.headers)
        for name in list(shown):
            if name.lower() == "www-authenticate":
                offered = response.raw.headers.getlist(name) if response.raw else [shown[name]]
                joined = ", ".join(offered)
                if response.status_code == 401:
                    self.offered = frozenset(s.upper() for s in _auth_schemes(joined))
                shown[name] = _shown_challenge(joined)
        current.status = response.status_code
        current.reason = response.reason or ""
        current.headers = {k.lower(): v for k, v in response.headers.items()}
        current.answer = soap_response(content)
        if current.answer is None and content and len(content) < 4096:
            current.text = content.decode("utf-8", "replace")
        self.recorder.response(
            response.status_code,
            response.reason or "",
            shown,
            content,
            phase=Phase.REQUEST,
            tls=url.startswith("https:"),
        )
        return response

    # -- entry points

    @classmethod
    async def send_async(
        cls,
        plan: EwsPlan,
        *,
        to: Sequence[str],
        password: Secret | None = None,
        token: TokenProvider | None = None,
        priority: Priority = Priority.NORMAL,
        on_row: Callable[[Row], None] | None = None,
        secrets_problem: str | None = None,
    ) -> TestResult:
        """Send the test message through EWS; success or a diagnosis, never raises."""
        sender = cls(plan, password=password, token=token, on_row=on_row)
        return await sender.run(to=to, priority=priority, secrets_problem=secrets_problem)

    @classmethod
    def send(
        cls,
        plan: EwsPlan,
        *,
        to: Sequence[str],
        password: Secret | None = None,
        token: TokenProvider | None = None,
        priority: Priority = Priority.NORMAL,
        on_row: Callable[[Row], None] | None = None,
    ) -> TestResult:
        """Blocking :meth:`send_async` (works inside a notebook's event loop too)."""
        return run_sync(
            cls.send_async(
                plan, to=to, password=password, token=token, priority=priority, on_row=on_row
            )
        )

    def context(self) -> SendContext:
        parts = urlsplit(self.url or "")
        host = parts.hostname or self._autodiscover_host or ""
        auth = self.auth_used or {
            AuthType.NTLM: "ntlm",
            AuthType.LOGIN: "basic",
            AuthType.PLAIN: "basic",
            AuthType.XOAUTH2: "oauth",
        }.get(self.plan.auth, self.plan.auth.value)
        return SendContext(
            host=host,
            port=parts.port or 443,
            security="ssl",
            auth=auth,
            username=self.plan.username,
            from_address=self.plan.from_address,
            timeout=self.plan.command_timeout,
            oauth_provider="microsoft" if auth == "oauth" else None,
            service="ews",
        )

    async def run(
        self,
        *,
        to: Iterable[str],
        priority: Priority = Priority.NORMAL,
        secrets_problem: str | None = None,
    ) -> TestResult:
        async def steps(message: TestMessage) -> str:
            self._check_settings(secrets_problem)
            token = await self._token() if self._wants_token() else None
            return await asyncio.to_thread(self._blocking, message, priority, token)

        return await self.run_steps(to, priority, steps)

    def auth_mechanism(self) -> str | None:
        return self.auth_used.upper() if self.auth_used else None

    # -- before any connection

    def _check_settings(self, secrets_problem: str | None) -> None:
        plan = self.plan
        if not plan.pin_sha256:  # a pin replaces the CA file's trust
            check_ca_file(plan.ca_file)
        if not plan.ews_url and not plan.autodiscover and not plan.autodiscover_url:
            raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail="ews_url"))
        if plan.auth in (AuthType.CRAM_MD5, AuthType.NONE):
            raise SendStop(
                Failure(
                    Phase.SETUP,
                    Signal.MISSING,
                    detail=f"auth {plan.auth.value} cannot sign in to EWS",
                )
            )
        if plan.auth is AuthType.XOAUTH2 or self._wants_token():
            return
        if self.password is None or not self.password:
            if secrets_problem is not None:
                raise SendStop(
                    Failure(Phase.SETUP, Signal.MISSING, detail=f"secrets: {secrets_problem}")
                )
            raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail="password"))
        if not plan.username:
            raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail="username"))

    def _wants_token(self) -> bool:
        if self.plan.auth is AuthType.XOAUTH2:
            return True
        return self.plan.auth is AuthType.AUTO and self.password is None and self.token is not None

    # -- the blocking part, in a worker thread

    def _blocking(self, message: TestMessage, priority: Priority, token: Secret | None) -> str:
        with logguard.guarded():
            if not self.plan.ews_url or self.plan.autodiscover:
                self.url = self._autodiscover(token)
            assert self.url is not None
            auth = self._choose_auth(token)
            return self._create_item(message, priority, auth, token)

    def _session(self, auth: requests.auth.AuthBase | None = None) -> requests.Session:
        http = requests.Session()
        http.trust_env = False  # no REQUESTS_CA_BUNDLE, no .netrc credentials
        http.headers["User-Agent"] = "mailkit"
        adapter = EwsAdapter(self)
        http.mount("https://", adapter)
        http.mount("http://", adapter)
        http.auth = auth
        return http

    def _password_auth(self, scheme: str) -> requests.auth.AuthBase:
        assert self.password is not None
        assert self.plan.username is not None
        if scheme == "ntlm":
            from requests_ntlm import HttpNtlmAuth

            username = self.plan.username
            if "@" in username and "\\" not in username:
                username = "\\" + username  # a UPN, as exchangelib sends it
            return HttpNtlmAuth(username, self.password.reveal())
        # UTF-8, as RFC 7617 has it (requests would send a str as Latin-1, which the scrubber's
        # base64 forms would not match either).
        return requests.auth.HTTPBasicAuth(
            self.plan.username.encode(),
            self.password.reveal().encode(),
        )

    def _request_failure(self, exc: BaseException, *, final: bool = False) -> Failure:
        """A connection-level problem as the SMTP and API senders report it."""
        chain = list(exception_chain(exc))
        # urllib3 checks the pin right after the handshake (assert_fingerprint), before the
        # request is written, and says so in these words.
        if any("fingerprints did not match" in str(c).lower() for c in chain):
            return Failure(Phase.TLS, Signal.TLS_PIN, detail=_fingerprint_said(chain))
        sent = final and request_went_out(exc)
        failure = failure_from_request_error(exc, sent=sent)
        if not final and failure.phase is Phase.END_OF_DATA:
            failure = dataclasses.replace(failure, phase=Phase.REQUEST)
        return failure

    # -- Autodiscover

    def _autodiscover(self, token: Secret | None) -> str:
        address = self.plan.from_address or self.plan.username or ""
        visited: list[str] = []
        outcomes: list[_StepOutcome] = []
        explicit = self.plan.autodiscover_url
        for _ in range(MAX_AUTODISCOVER_REDIRECTS):
            visited.append(address.lower())
            steps = autodiscover_steps(address, explicit)
            self._autodiscover_host = urlsplit(steps[0].url).hostname
            self.recorder.info(
                f"Autodiscover for {address}: "
                + "; ".join(f"{i}. {s.name}" for i, s in enumerate(steps, 1))
                + ("" if explicit else f"; {len(steps) + 1}. DNS SRV _autodiscover._tcp"),
                Phase.REQUEST,
            )
            redirected = None
            for step in steps:
                outcome = self._ask(step, address, token)
                outcomes.append(outcome)
                if outcome.ews_url:
                    self.recorder.info(f"Autodiscover found the EWS URL {outcome.ews_url}")
                    return outcome.ews_url
                if outcome.redirect_address:
                    redirected = outcome.redirect_address
                    break
            else:
                if not explicit:
                    for step in self._srv_steps(address):
                        outcome = self._ask(step, address, token)
                        outcomes.append(outcome)
                        if outcome.ews_url:
                            return outcome.ews_url
            if redirected is None:
                break
            if redirected.lower() in visited:
                outcomes.append(
                    _StepOutcome(steps[-1], problem=f"redirect loop back to {redirected}")
                )
                break
            self.recorder.info(f"Autodiscover redirects to the address {redirected}")
            address = redirected
        raise SendStop(self._autodiscover_failure(outcomes))

    def _srv_steps(self, address: str) -> list[AutodiscoverStep]:
        domain = address.rpartition("@")[2]
        lookup = self._srv_lookup or _srv_records
        try:
            records = lookup(f"_autodiscover._tcp.{domain}")
        except Exception as exc:  # no record, no answer, no server: the step found nothing
            self.recorder.info(f"DNS SRV _autodiscover._tcp.{domain}: {exc or type(exc).__name__}")
            return []
        return [
            AutodiscoverStep(
                f"DNS SRV → {target}",
                f"https://{target}{_port(port)}/autodiscover/autodiscover.xml",
                "pox",
            )
            for target, port in records
        ]

    def _trusted_with_credentials(self, url: str, address: str) -> bool:
        """Whether Autodiscover may sign in at ``url``: a host of the address's own domain, or
        the configured Autodiscover server. An SRV record or an HTTP redirect can name any
        server; Microsoft has clients ask the user before sending credentials there, and
        mailkit, which cannot ask, does not send them (the diagnosis says how to allow it)."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        domain = address.rpartition("@")[2].lower().rstrip(".")
        configured = urlsplit(self.plan.autodiscover_url or "").hostname
        return host == domain or host.endswith("." + domain) or host == (configured or "").lower()

    def _ask(
        self, step: AutodiscoverStep, address: str, token: Secret | None, hops: int = 0
    ) -> _StepOutcome:
        """One Autodiscover step (and the redirects it answers with, ``hops`` so far); a
        failure is a result here, the next step is tried."""
        if hops > MAX_AUTODISCOVER_REDIRECTS:
            return _StepOutcome(step, problem="too many redirects")
        auth = None
        headers = {"Accept": "application/json"} if step.kind == "json" else {}
        if step.kind == "pox" and not self._trusted_with_credentials(step.url, address):
            domain = address.rpartition("@")[2]
            self.recorder.info(
                f"{step.name}: not asked: {urlsplit(step.url).hostname} is outside {domain}, and "
                f"mailkit signs in there only when it is the Autodiscover URL ({step.url})"
            )
            return _StepOutcome(step, problem=f"not asked, outside {domain}")
        if step.kind == "pox":
            if token is not None:
                headers["Authorization"] = f"Bearer {token.reveal()}"
            elif self.password is not None and self.plan.username:
                auth = self._password_auth("ntlm" if self.plan.auth is AuthType.NTLM else "basic")
                if self.plan.auth is AuthType.AUTO:
                    auth = _NtlmOrBasic(self)
        try:
            with self._session(auth) as http:
                if step.kind == "pox":
                    headers["Content-Type"] = "text/xml; charset=utf-8"
                    response = http.post(
                        step.url, data=pox_request(address), headers=headers, allow_redirects=False
                    )
                else:
                    response = http.get(step.url, headers=headers, allow_redirects=False)
        except OSError as exc:
            failure = self._request_failure(exc)
            said = f"{failure.signal.value} ({failure.detail})" if failure.detail else ""
            self.recorder.info(f"{step.name}: {said or failure.signal.value}")
            return _StepOutcome(step, problem=failure.signal.value, failure=failure)
        status = response.status_code
        if step.kind == "redirect":
            location = response.headers.get("Location", "")
            if status in (301, 302, 307, 308) and location.startswith("https://"):
                self.recorder.info(f"{step.name}: redirected to {location}")
                return self._ask(
                    AutodiscoverStep(f"redirected to {location}", location, "pox"),
                    address,
                    token,
                    hops + 1,
                )
            return _StepOutcome(step, problem=f"HTTP {status}, no redirect", status=status)
        if step.kind == "json" and status in (301, 302, 307, 308):
            location = response.headers.get("Location", "")
            if location.startswith("https://"):
                self.recorder.info(f"{step.name}: redirected to {location}")
                return self._ask(
                    AutodiscoverStep(f"redirected to {location}", location, "json"),
                    address,
                    token,
                    hops + 1,
                )
        if status != 200:
            return _StepOutcome(step, problem=f"HTTP {status}", status=status)
        if step.kind == "json":
            url = _json_ews_url(response.content)
            if url is None:
                return _StepOutcome(step, problem="answer without an EWS URL", status=status)
            return _StepOutcome(step, ews_url=url, status=status)
        pox = parse_pox(response.content)
        if not pox.well_formed:
            return _StepOutcome(step, problem="answer is not Autodiscover XML", status=status)
        if pox.error_code:
            return _StepOutcome(
                step, problem=f"Error {pox.error_code} {pox.error_message or ''}", status=status
            )
        if pox.redirect_url and pox.redirect_url.startswith("https://"):
            self.recorder.info(f"{step.name}: redirectUrl {pox.redirect_url}")
            return self._ask(
                AutodiscoverStep(f"redirectUrl {pox.redirect_url}", pox.redirect_url, "pox"),
                address,
                token,
                hops + 1,
            )
        if pox.redirect_address:
            return _StepOutcome(step, redirect_address=pox.redirect_address, status=status)
        if not pox.ews_url:
            return _StepOutcome(step, problem="answer without an EWS URL", status=status)
        return _StepOutcome(step, ews_url=pox.ews_url, status=status)

    def _autodiscover_failure(self, outcomes: list[_StepOutcome]) -> Failure:
        """Every step failed: the report names each; the most telling one decides the cause."""
        said = "; ".join(f"{o.step.name}: {o.problem}" for o in outcomes)
        for outcome in outcomes:
            if outcome.status == 401:
                return Failure(
                    Phase.AUTH,
                    Signal.HTTP,
                    code=401,
                    text=f"Autodiscover refused the credentials at {outcome.step.url}",
                    detail=f"autodiscover: {said}",
                    auth_mechanisms=self.offered,
                )
        return Failure(Phase.REQUEST, Signal.MISSING, detail=f"autodiscover: {said}")

    # -- sign-in

    def _choose_auth(self, token: Secret | None) -> str:
        """NTLM, basic or oauth: as set, or (auth auto) as the server offers."""
        plan = self.plan
        if token is not None:
            self.auth_used = "oauth"
        elif plan.auth is AuthType.NTLM:
            self.auth_used = "ntlm"
        elif plan.auth in (AuthType.LOGIN, AuthType.PLAIN):
            self.auth_used = "basic"
        else:
            self.auth_used = self._probe()
        self.recorder.info(
            f"EWS at {self.url}: signing in with {_EWS_AUTH[self.auth_used]} as "
            f"{plan.username or plan.from_address}; certificate checked against the {plan.trust}",
            Phase.AUTH,
        )
        return self.auth_used

    def _probe(self) -> str:
        """One unauthenticated POST: the 401 names the schemes; NTLM first, as exchangelib."""
        assert self.url is not None
        self.recorder.info("auth auto: asking the server which sign-in it offers", Phase.AUTH)
        try:
            with self._session() as http:
                response = http.post(
                    self.url,
                    data=_PROBE_BODY,
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                    allow_redirects=False,
                )
        except OSError as exc:
            raise SendStop(self._request_failure(exc)) from None
        if response.status_code != 401:
            if response.status_code == 200:
                return "ntlm" if self.password is not None else "basic"
            raise SendStop(self._http_failure())
        if "NTLM" in self.offered:
            return "ntlm"
        if "BASIC" in self.offered:
            return "basic"
        raise SendStop(
            Failure(
                Phase.AUTH,
                Signal.NOT_OFFERED,
                code=401,
                detail="the server offers neither NTLM nor Basic",
                auth_mechanisms=self.offered,
            )
        )

    # -- CreateItem

    def _create_item(
        self, message: TestMessage, priority: Priority, auth: str, token: Secret | None
    ) -> str:
        from exchangelib import (  # type: ignore[import-untyped, unused-ignore]
            BASIC,
            DELEGATE,
            NTLM,
            OAUTH2,
            Account,
            Configuration,
            Credentials,
            Mailbox,
            OAuth2AuthorizationCodeCredentials,
        )
        from exchangelib import Message as EwsMessage  # type: ignore[import-untyped, unused-ignore]
        from exchangelib.errors import (  # type: ignore[import-untyped, unused-ignore]
            EWSError,
            ResponseMessageError,
        )
        from exchangelib.items import (  # type: ignore[import-untyped, unused-ignore]
            SEND_AND_SAVE_COPY,
            SEND_TO_NONE,
        )
        from exchangelib.services import CreateItem  # type: ignore[import-untyped, unused-ignore]
        from exchangelib.version import (  # type: ignore[import-untyped, unused-ignore]
            EXCHANGE_2013,
            Version,
        )
        from oauthlib.oauth2 import OAuth2Token

        plan = self.plan
        assert self.url is not None
        credentials: Any
        if auth == "oauth":
            assert token is not None
            credentials = OAuth2AuthorizationCodeCredentials(
                access_token=OAuth2Token({"access_token": token.reveal(), "token_type": "Bearer"})
            )
        else:
            assert self.password is not None
            assert plan.username is not None
            secret = self.password.reveal()
            # Basic sends the password as UTF-8 (see _password_auth); NTLM needs the text.
            credentials = Credentials(plan.username, secret.encode() if auth == "basic" else secret)
        auth_type = {"ntlm": NTLM, "basic": BASIC, "oauth": OAUTH2}[auth]
        # Exchange 2013's schema, which every supported server (2013 and later, Exchange Online)
        # takes: exchangelib would otherwise spend a round trip guessing the version first.
        config = Configuration(
            service_endpoint=self.url,
            credentials=credentials,
            auth_type=auth_type,
            version=Version(build=EXCHANGE_2013),
        )
        protocol = _protocol_class()(config=config, send=self)
        mime = message.message
        body = mime.get_content() if not mime.is_multipart() else ""
        assert isinstance(body, str)
        self.recorder.info(
            f"CreateItem, MessageDisposition=SendAndSaveCopy: subject {message.message['Subject']}"
            f", {len(message.recipients)} recipient(s), Importance {IMPORTANCE[priority]}",
            Phase.REQUEST,
        )
        try:
            account = _account(Account, plan.from_address or "", protocol, DELEGATE)
            item = EwsMessage(
                account=account,
                subject=str(message.message["Subject"]),
                body=body,
                to_recipients=[Mailbox(email_address=r) for r in message.recipients],
                author=Mailbox(name=plan.from_name or None, email_address=message.sender),
                importance=IMPORTANCE[priority],
                message_id=message.message_id,
            )
            # Message.send_and_save() without its folder look-up: the same CreateItem.
            CreateItem(account=account).get(
                items=[item],
                folder=_sent_items(account),
                message_disposition=SEND_AND_SAVE_COPY,
                send_meeting_invitations=SEND_TO_NONE,
            )
        except (EWSError, OSError, ValueError, KeyError) as exc:
            raise SendStop(self._send_failure(exc, ResponseMessageError)) from None
        except Exception as exc:  # exchangelib's own surprise must not crash the send
            raise SendStop(self._send_failure(exc, ResponseMessageError)) from None
        finally:
            protocol.close()
        last = self.last
        status = f"HTTP {last.status} " if last is not None and last.status else ""
        code = last.answer.response_code if last is not None and last.answer else None
        return f"{status}CreateItem {code or 'NoError'}".strip()

    def _send_failure(self, exc: BaseException, response_error: type[Exception]) -> Failure:
        """What exchangelib raised, judged with what the adapter saw on the wire."""
        last = self.last
        final = last is not None and last.operation == "CreateItem"
        if last is not None and last.error is not None:
            return self._request_failure(last.error, final=final)
        answer = last.answer if last is not None else None
        code = answer.response_code if answer is not None else None
        if code is None and isinstance(exc, response_error):
            name = type(exc).__name__
            code = name if name.startswith("Error") else None
        if code and code != "NoError":
            back_off = getattr(exc, "back_off", None)
            if back_off is None and answer is not None:
                back_off = answer.back_off
            text = (answer.message_text if answer is not None else None) or str(exc)
            return Failure(
                _CODE_PHASE.get(code, Phase.REQUEST),
                Signal.HTTP,
                code=last.status if last is not None else None,
                enhanced=code,
                text=text,
                detail=type(exc).__name__,
                retry_after=back_off,
            )
        if last is not None and last.status is not None and last.status != 200:
            return self._http_failure(exc)
        if isinstance(exc, OSError):
            return self._request_failure(exc, final=final)
        phase = Phase.END_OF_DATA if final else Phase.REQUEST
        return Failure(phase, Signal.MALFORMED, detail=f"{type(exc).__name__}: {exc}")

    def _http_failure(self, exc: BaseException | None = None) -> Failure:
        """An HTTP error answer without an EWS response code (401, 403, 404, 5xx).

        A 401's page is left to exchangelib (see :meth:`exchange`), which reads IIS's
        lock-out words from it and says so in its exception.
        """
        last = self.last
        assert last is not None
        assert last.status is not None
        if last.status == 401:
            said = str(exc) if exc is not None and "locked out" in str(exc) else ""
            return Failure(
                Phase.AUTH,
                Signal.HTTP,
                code=401,
                text=said or last.reason,
                detail=f"auth {self.auth_used or self.plan.auth.value}",
                auth_mechanisms=self.offered,
            )
        headers = last.headers
        online = [
            f"{k}: {headers[k]}" for k in ("x-calculatedbetarget", "x-feserver") if k in headers
        ]
        return Failure(
            Phase.REQUEST,
            Signal.HTTP,
            code=last.status,
            text="\n".join([last.text.strip() or last.reason, *online]).strip(),
            retry_after=retry_after_seconds(headers.get("retry-after")),
        )


class _NtlmOrBasic(requests.auth.AuthBase):
    """auth auto at Autodiscover: NTLM when the server offers it, else Basic (one retry)."""

    def __init__(self, send: EwsSender) -> None:
        self._send = send
        self._ntlm = send._password_auth("ntlm")
        self._basic = send._password_auth("basic")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self._ntlm(request)
        request.register_hook("response", self._fallback)  # type: ignore[no-untyped-call]
        return request

    def _fallback(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or "NTLM" in self._send.offered:
            return response
        if "BASIC" not in self._send.offered or response.request.headers.get("Authorization"):
            return response
        request = response.request.copy()
        self._basic(request)
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        connection = response.connection
        retried: requests.Response = connection.send(request, **kwargs)
        retried.history.append(response)
        return retried


def _port(port: int) -> str:
    return "" if port == 443 else f":{port}"


def _fingerprint_said(chain: list[BaseException]) -> str:
    for cause in chain:
        match = re.search(r'got "?([0-9a-fA-F:]{64,95})"?', str(cause))
        if match:
            return match.group(1).replace(":", "").lower()
    return "certificate SHA-256 differs from the pin"


def _srv_records(name: str) -> list[tuple[str, int]]:
    """The SRV targets for ``name``, best first, through mailkit's one DNS client (so
    ``--dns-server`` / ``MAILKIT_DNS_SERVER`` apply). Runs in the send's worker thread."""
    from mailkit.dnslookup import DnsClient

    answer = asyncio.run(DnsClient().query(name, "SRV"))
    if not answer.ok:
        raise LookupError(f"{answer.status} {answer.detail}".strip())
    records = sorted(answer.values, key=lambda r: (r[0], -r[1]))
    return [(str(target).rstrip("."), int(port)) for _, _, port, target in records]


def _account(account_cls: Any, address: str, protocol: Any, access_type: str) -> Any:
    """An exchangelib Account that uses ``protocol`` and leaves exchangelib's cache as it was.

    ``Account(config=...)`` fetches a protocol from exchangelib's process-wide cache (making one
    if needed); the account is given this send's protocol instead, and a cache entry the call
    made is taken out again, so the next send — or anyone else's code — never inherits this
    send's trust or sessions.
    """
    from exchangelib.protocol import CachingProtocol  # type: ignore[import-untyped, unused-ignore]

    cache = CachingProtocol._protocol_cache
    key = (protocol.config.service_endpoint, protocol.config.credentials)
    with CachingProtocol._protocol_cache_lock:
        before = cache.get(key)
    account = account_cls(
        primary_smtp_address=address,
        config=protocol.config,
        autodiscover=False,
        access_type=access_type,
        default_timezone=_utc(),
        locale="en_US",
    )
    made = account.protocol
    account.protocol = protocol
    with CachingProtocol._protocol_cache_lock:
        if before is None and key in cache and cache[key][0] is made:
            del cache[key]
    if made is not protocol and (before is None or before[0] is not made):
        made.close()
    return account


def _sent_items(account: Any) -> Any:
    """The mailbox's Sent Items by its distinguished id, as Outlook names it in CreateItem.

    Without a folder exchangelib looks the folder up first (two GetFolder round trips before
    every send); the distinguished id with the mailbox is what EWS itself takes.
    """
    from exchangelib.properties import (  # type: ignore[import-untyped, unused-ignore]
        DistinguishedFolderId,
        Mailbox,
    )

    class _SentItemsId(DistinguishedFolderId):  # type: ignore[misc]
        """A distinguished folder id that knows its account (CreateItem checks it)."""

        @property
        def account(self) -> Any:
            return account

    return _SentItemsId(id="sentitems", mailbox=Mailbox(email_address=account.primary_smtp_address))


def _utc() -> Any:
    from exchangelib import UTC as EWS_UTC  # type: ignore[import-untyped, unused-ignore]

    return EWS_UTC


_PROTOCOL: list[type[Any]] = []


def _protocol_class() -> type[Any]:
    """exchangelib's Protocol, uncached and mounting the send's own adapter (built once)."""
    if _PROTOCOL:
        return _PROTOCOL[0]
    from exchangelib.protocol import (  # type: ignore[import-untyped, unused-ignore]
        CachingProtocol,
        Protocol,
    )

    class _Uncached(CachingProtocol):  # type: ignore[misc]
        """A new protocol per call: nothing of one send is shared with another."""

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            return type.__call__(cls, *args, **kwargs)

    class _SendProtocol(Protocol, metaclass=_Uncached):  # type: ignore[misc]
        def __init__(self, *, config: Any, send: EwsSender) -> None:
            super().__init__(config=config)
            self._send = send
            self.TIMEOUT = send.plan.command_timeout

        def raw_session(
            self,
            prefix: str,
            oauth2_client: Any = None,
            oauth2_session_params: Any = None,
            oauth2_token_endpoint: Any = None,
        ) -> requests.Session:
            session: requests.Session = super().raw_session(
                prefix, oauth2_client, oauth2_session_params, oauth2_token_endpoint
            )
            session.trust_env = False
            session.mount(prefix, EwsAdapter(self._send, pool_block=True, pool_maxsize=1))
            session.headers["User-Agent"] = "mailkit"
            return session

    _PROTOCOL.append(_SendProtocol)
    return _SendProtocol


#: Send the test message through EWS (success or a diagnosis; never raises).
send_ews_async = EwsSender.send_async
#: Blocking :data:`send_ews_async`.
send_ews = EwsSender.send
