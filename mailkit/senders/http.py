"""HTTP mail API sends (Gmail API, Microsoft Graph) as a transcript, and the send they share.

:class:`HttpRecorder` is the HTTP counterpart of :class:`mailkit.transcript.Recorder`: it is
told about each request and response and turns them into the same :class:`Row` objects, so a
transcript reads alike whatever way the mail left. It does no I/O. What it shows is chosen, not
filtered: the request line, a few headers (``Authorization`` always as a mask), and a *summary*
of each body — the MIME message only by its size, a token endpoint's form only by its harmless
fields, a JSON answer only by its error or its message id. Then, as with SMTP, every known
secret is scrubbed from every row in the encodings HTTP uses.

:class:`RecordingAdapter` feeds the recorder from inside requests (a transport adapter sees the
final request, headers added by google-auth included). :class:`HttpSend` is what every send over
HTTP shares, EWS's too: the test message, the token, the result from a reply or a failure.
:class:`ApiSender` is the send both APIs share: token, request, answer →
:class:`~mailkit.result.TestResult`; subclasses only say where to POST and how the body looks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import errno
import hashlib
import json
import math
import socket
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import RemoteDisconnected
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter

from mailkit import logguard as _logguard
from mailkit.diagnose import diagnose
from mailkit.errors import OAuthError, SecretStoreError
from mailkit.fields import Priority
from mailkit.message import TestMessage, checked_test_message
from mailkit.outcome import MAX_DETAIL, Diagnosis, Failure, Phase, SendContext, Signal
from mailkit.resolve import Effective
from mailkit.result import TestResult, TlsInfo, TokenProvider
from mailkit.runner import call_provider, run_sync
from mailkit.secret import Secret
from mailkit.senders.tls import ca_file_problem, describe_certificate
from mailkit.transcript import MAX_SHOWN_LINE, Direction, Row, SecretScrubber, Transcript

_logguard.install()  # before google-auth and requests run: no library logs a token

__all__ = [
    "ApiPlan",
    "ApiSender",
    "HttpRecorder",
    "HttpSend",
    "RecordingAdapter",
    "SendStop",
    "api_error",
    "check_ca_file",
    "exception_chain",
    "failure_from_request_error",
    "one_line",
    "request_went_out",
    "retry_after_seconds",
]

#: Request headers worth showing; ``Authorization`` is shown separately, always masked.
SHOWN_REQUEST_HEADERS = ("Content-Type", "Content-Length")
#: Response headers that explain an answer: waiting, why a token failed, the ids support asks for.
SHOWN_RESPONSE_HEADERS = (
    "Content-Type",
    "Retry-After",
    "WWW-Authenticate",
    "request-id",
    "x-ms-request-id",
    "client-request-id",
)
#: Form fields of a token request that are not secret (everything else is shown as hidden).
_SAFE_FORM_FIELDS = frozenset({"grant_type", "client_id", "scope", "redirect_uri", "tenant"})
#: JSON fields of an answer that are safe and useful to show (never tokens or codes).
_SAFE_JSON_FIELDS = ("id", "threadId", "labelIds", "token_type", "expires_in", "scope")
_HIDDEN_VALUE = "<hidden>"


def one_line(text: str, limit: int = MAX_SHOWN_LINE) -> str:
    """``text`` on one line, cut at ``limit`` characters saying how many more there were."""
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works for a plain dict."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def api_error(body: bytes) -> tuple[str | None, str]:
    """The provider's error code and message from an error answer, in the three shapes known.

    Gmail: ``{"error": {"message", "status", "errors": [{"reason"}], "details": [ErrorInfo]}}``
    — the ErrorInfo reason (``ACCESS_TOKEN_EXPIRED``) is the most precise, then the legacy
    reason, then the gRPC status. Graph: ``{"error": {"code", "message"}}``. OAuth endpoints:
    ``{"error": "invalid_grant", "error_description": ...}``.
    """
    data = _json(body)
    if not isinstance(data, dict):
        return None, ""
    error = data.get("error")
    if isinstance(error, str):
        description = data.get("error_description")
        return error, description if isinstance(description, str) else ""
    if not isinstance(error, dict):
        return None, ""
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    code: str | None = None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            code = detail["reason"]
            break
    if code is None:
        for item in error.get("errors") or []:
            if isinstance(item, dict) and isinstance(item.get("reason"), str):
                code = item["reason"]
                break
    if code is None:
        for key in ("status", "code"):
            if isinstance(error.get(key), str):
                code = error[key]
                break
    return code, str(message)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # str.isdigit alone takes "²", which float refuses
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    # Whole seconds, rounded up: advice says "wait 10 seconds", not "wait 9.437 seconds".
    return float(max(0, math.ceil(when.timestamp() - (time.time() if now is None else now))))


# --------------------------------------------------------------------------- the recorder


class HttpRecorder:
    """Builds a transcript from HTTP requests and responses. Pure: it does no I/O.

    ``secrets`` (and any given later with :meth:`add_secret`, e.g. a token fetched during the
    send) are scrubbed from every row.
    """

    def __init__(
        self,
        *,
        secrets: Iterable[Secret] = (),
        on_row: Callable[[Row], None] | None = None,
    ) -> None:
        self.rows: list[Row] = []
        #: The send's one scrubber: rows, the failure, the diagnosis and the result pass it.
        self.scrubber = SecretScrubber(secrets)
        self._scrub = self.scrubber
        self._on_row = on_row
        self._t0 = time.perf_counter()

    def add_secret(self, secret: Secret) -> None:
        self._scrub.add(secret)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret hidden (for a diagnosis quoting the server)."""
        return self._scrub(text)

    def info(self, text: str, phase: Phase = Phase.REQUEST) -> None:
        self._emit(Direction.INFO, phase, None, text, tls=False)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | str | None,
        *,
        phase: Phase = Phase.REQUEST,
        body_summary: str | None = None,
    ) -> None:
        """One request: its line, chosen headers (the bearer masked), a summary of its body."""
        lines = [f"{method.upper()} {url}"]
        authorization = _header(headers, "Authorization")
        if authorization is not None:
            # Only a real scheme word is shown: a bare token has no space, and is hidden whole.
            scheme, space, _rest = authorization.strip().partition(" ")
            shown = scheme if space and scheme.isalpha() and len(scheme) <= 20 else ""
            lines.append(f"Authorization: {shown} <secret hidden>".replace("  ", " "))
        for name in SHOWN_REQUEST_HEADERS:
            value = _header(headers, name)
            if value is not None:
                lines.append(f"{name}: {one_line(self._scrub(value))}")
        raw = body.encode() if isinstance(body, str) else body
        if body_summary is not None:
            lines.append(body_summary)
        elif raw:
            lines.append(self._request_body(raw, _header(headers, "Content-Type") or ""))
        self._emit(Direction.CLIENT, phase, None, "\n".join(lines), tls=url.startswith("https:"))

    def response(
        self,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        phase: Phase = Phase.REQUEST,
        tls: bool = True,
    ) -> None:
        """One answer: status, the headers that explain it, its error or id — never a token."""
        lines = [f"HTTP {status} {reason}".rstrip()]
        for name in SHOWN_RESPONSE_HEADERS:
            value = _header(headers, name)
            if value is not None:
                lines.append(f"{name}: {one_line(self._scrub(value))}")
        if body:
            lines.append(self._response_body(body, _header(headers, "Content-Type") or ""))
        self._emit(Direction.SERVER, phase, status, "\n".join(lines), tls=tls)

    def transcript(self) -> Transcript:
        return Transcript(tuple(self.rows))

    # ------------------------------------------------------------------ bodies

    def _request_body(self, raw: bytes, content_type: str) -> str:
        """A summary of a request body; anything quoted is scrubbed before it is cut."""
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            try:
                fields = parse_qsl(raw.decode("ascii"), keep_blank_values=True)
            except UnicodeDecodeError:
                fields = []
            shown = [f"{k}={v if k in _SAFE_FORM_FIELDS else _HIDDEN_VALUE}" for k, v in fields]
            return f"<form: {one_line(self._scrub('&'.join(shown)))}>"
        data = _json(raw) if kind == "application/json" else None
        if isinstance(data, dict):
            shown = [
                f"{k}: <{len(json.dumps(v)):,} bytes>" for k in list(data)[:10] for v in [data[k]]
            ]
            return f"<JSON {len(raw):,} bytes: {', '.join(shown)}>"
        return f"<body: {len(raw):,} bytes{', ' + kind if kind else ''}>"

    def _response_body(self, raw: bytes, content_type: str) -> str:
        """A summary of an answer's body; the service's words are scrubbed before the cut."""
        data = _json(raw)
        if isinstance(data, dict):
            code, message = api_error(raw)
            if code is not None or message:
                said = f"{code}: {message}" if code and message else code or message
                return f"error {one_line(self._scrub(said))}"
            shown = [
                f"{k}={json.dumps(data[k], ensure_ascii=False)}"
                for k in _SAFE_JSON_FIELDS
                if k in data
            ]
            others = len(data) - len(shown)
            return one_line(
                self._scrub(
                    "<JSON: "
                    + ", ".join(shown + ([f"{others} more field(s) hidden"] if others else []))
                    + ">"
                )
            )
        kind = content_type.split(";")[0].strip().lower()
        if kind == "text/plain":
            return one_line(self._scrub(raw.decode("utf-8", "replace")), 200)
        return f"<body: {len(raw):,} bytes{', ' + kind if kind else ''}>"

    # ------------------------------------------------------------------ rows

    def _emit(
        self, direction: Direction, phase: Phase, code: int | None, text: str, *, tls: bool
    ) -> None:
        row = Row(
            t_ms=round((time.perf_counter() - self._t0) * 1000, 3),
            time=datetime.now(UTC),
            dir=direction,
            phase=phase,
            tls=tls,
            code=code,
            text=self._scrub(text),
        )
        self.rows.append(row)
        if self._on_row is not None:
            self._on_row(row)


class RecordingAdapter(HTTPAdapter):
    """requests' transport adapter, telling an :class:`HttpRecorder` what goes each way.

    Mounted on a session it sees the request as sent (after google-auth added its bearer
    header) and the answer before anyone else reads it. ``summarise`` may replace a request
    body's summary (the API senders describe the MIME message by size).
    """

    def __init__(
        self,
        recorder: HttpRecorder,
        *,
        phase: Phase = Phase.REQUEST,
        summarise: Callable[[requests.PreparedRequest], str | None] | None = None,
    ) -> None:
        super().__init__(max_retries=0)
        self.recorder = recorder
        self.phase = phase
        self.summarise = summarise
        #: What the last HTTPS answer's connection established (None before one, or over http).
        self.tls: TlsInfo | None = None
        self._answered_over: TlsInfo | None = None

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.recorder.request(
            request.method or "GET",
            request.url or "",
            request.headers,
            request.body,
            phase=self.phase,
            body_summary=self.summarise(request) if self.summarise else None,
        )
        self._answered_over = None
        response = super().send(request, *args, **kwargs)
        if (tls := self._answered_over) is not None:
            self.tls = tls
            until = f", valid until {tls.not_after:%Y-%m-%d}" if tls.not_after else ""
            self.recorder.info(
                f"over TLS: {tls.version}, {tls.cipher}; certificate subject {tls.subject}, "
                f"issuer {tls.issuer}, names {', '.join(tls.san) or '-'}{until}; checked "
                f"against the {tls.verified_by}",
                Phase.TLS,
            )
        self.recorder.response(
            response.status_code,
            response.reason or "",
            response.headers,
            response.content,
            phase=self.phase,
            tls=(request.url or "").startswith("https:"),
        )
        return response

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """Note the TLS session while urllib3 still holds the connection (its body unread)."""
        connection = getattr(resp, "connection", None)
        sock = getattr(connection, "sock", None)
        if isinstance(sock, ssl.SSLSocket):
            der = sock.getpeercert(binary_form=True) or b""
            verify = getattr(connection, "ca_certs", None)
            trust = f"CA file {verify}" if verify else "system CA store"
            fingerprint = hashlib.sha256(der).hexdigest()
            self._answered_over = describe_certificate(der, sock, fingerprint, trust)
        return super().build_response(req, resp)


def record_session(
    http: requests.Session,
    recorder: HttpRecorder,
    *,
    phase: Phase = Phase.REQUEST,
    summarise: Callable[[requests.PreparedRequest], str | None] | None = None,
) -> requests.Session:
    """Record every request ``http`` makes (both schemes), e.g. a token refresh at TOKEN."""
    adapter = RecordingAdapter(recorder, phase=phase, summarise=summarise)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


# --------------------------------------------------------------------------- failures


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, urllib3's ``reason``, args."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(nested, BaseException):
                todo.append(nested)


def failure_from_request_error(exc: BaseException, *, sent: bool = False) -> Failure:
    """Classify what requests raised into the same connect / TLS signals SMTP uses.

    ``sent`` says the request went out before the trouble: a read timeout then leaves the
    outcome unknown (the API may have sent the message), which END_OF_DATA expresses.
    """
    chain = list(exception_chain(exc))
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure(
                Phase.TLS,
                Signal.TLS_VERIFY,
                verify_code=cause.verify_code,
                detail=str(cause.verify_message or cause),
            )
    for cause in chain:
        if isinstance(cause, ssl.SSLError):
            return Failure(Phase.TLS, Signal.TLS_PROTOCOL, detail=str(cause))
        if isinstance(cause, socket.gaierror):
            return Failure(Phase.CONNECT, Signal.DNS, detail=str(cause))
        if isinstance(cause, ConnectionRefusedError):
            return Failure(Phase.CONNECT, Signal.REFUSED, detail=str(cause))
        if isinstance(cause, OSError) and cause.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            return Failure(Phase.CONNECT, Signal.UNREACHABLE, detail=str(cause))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure(Phase.CONNECT, Signal.TIMEOUT, detail="no answer when connecting")
    if isinstance(exc, requests.exceptions.Timeout):
        phase = Phase.END_OF_DATA if sent else Phase.REQUEST
        return Failure(phase, Signal.TIMEOUT, detail="no answer to the request in time")
    phase = Phase.END_OF_DATA if sent else Phase.REQUEST
    return Failure(phase, Signal.DISCONNECTED, detail=type(exc).__name__)


# --------------------------------------------------------------------------- the send


@dataclass(frozen=True)
class ApiPlan:
    """What an API send needs, from the effective settings (no secrets)."""

    from_address: str | None
    from_name: str | None = None
    username: str | None = None
    #: The API's base URL; empty for the real service (each sender knows its default).
    api_url: str | None = None
    ca_file: str | None = None
    connect_timeout: float = 15.0
    command_timeout: float = 60.0

    @classmethod
    def from_effective(cls, eff: Effective) -> ApiPlan:
        return cls(
            from_address=eff.from_address,
            from_name=eff.from_name,
            username=eff.username,
            api_url=eff.api_url,
            ca_file=eff.ca_file,
            connect_timeout=eff.connect_timeout,
            command_timeout=eff.command_timeout,
        )


class SendStop(Exception):
    """Ends a send early: its failure (diagnosed later) or a diagnosis already made."""

    def __init__(self, failure: Failure | None = None, diagnosis: Diagnosis | None = None) -> None:
        super().__init__("send stopped")
        self.failure = failure
        self.diagnosis = diagnosis


def check_ca_file(ca_file: str | None) -> None:
    """requests raises a bare OSError for a CA path that is not there (and a cryptic one
    for a file that is no PEM): say which setting, which file and what is wrong."""
    problem = ca_file_problem(ca_file) if ca_file is not None else None
    if problem is not None:
        detail = f"ca_file: {ca_file} {problem}"
        raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail=detail))


class _SenderPlan(Protocol):
    @property
    def from_address(self) -> str | None: ...

    @property
    def from_name(self) -> str | None: ...


class HttpSend(ABC):
    """What every send over HTTP shares (the mail APIs and EWS), so each rule is written once:
    rows handed back to the loop's thread, the test message, the access token, and the
    :class:`~mailkit.result.TestResult` made from a reply or a failure. Subclasses make the
    requests; :meth:`run_steps` never raises for a failed send."""

    plan: _SenderPlan
    recorder: HttpRecorder
    #: Failure signals whose detail is not repeated as an info row (the transcript says it).
    quiet_signals: frozenset[Signal] = frozenset({Signal.MISSING})

    def __init__(
        self, *, token: TokenProvider | None, on_row: Callable[[Row], None] | None
    ) -> None:
        self.token = token
        self._on_row = on_row
        #: The loop the send runs on, and its thread: rows made in a worker go back to it.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        #: The TLS session the send's request went over (the result shows it as SMTP's do).
        self.tls: TlsInfo | None = None

    def _deliver(self, row: Row) -> None:
        """Hand ``row`` to ``on_row`` on the loop's thread (the requests run in a worker thread,
        and ``on_row`` is typically a widget, which must not be updated from another thread)."""
        assert self._on_row is not None
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._on_row(row)
        else:
            loop.call_soon_threadsafe(self._on_row, row)

    @abstractmethod
    def context(self) -> SendContext:
        """Where the send went, for the diagnosis."""

    def auth_mechanism(self) -> str | None:
        """The sign-in used, shown on a successful result."""
        return None

    async def run_steps(
        self,
        to: Iterable[str],
        priority: Priority,
        steps: Callable[[TestMessage], Awaitable[str]],
    ) -> TestResult:
        """Build the test message, run ``steps`` with it (the reply to show, or
        :class:`SendStop`), and make the result: success, or the failure diagnosed."""
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        reply: str | None = None
        message: TestMessage | None = None
        failure: Failure | None = None
        diagnosis: Diagnosis | None = None
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        try:
            message = self._message(list(to), priority)
            reply = await steps(message)
        except SendStop as stop:
            failure, diagnosis = stop.failure, stop.diagnosis
        context = self.context()
        scrubber = self.recorder.scrubber
        diagnosis = scrubber.scrub_value(diagnosis)
        if failure is not None:
            # The server's words reach the diagnosis only scrubbed (a body may echo a token).
            failure = scrubber.scrub_value(failure)
            if len(failure.detail) > MAX_DETAIL:  # cut only once scrubbed
                failure = dataclasses.replace(failure, detail=one_line(failure.detail, MAX_DETAIL))
            diagnosis = diagnose(failure, context)
            if failure.detail and failure.signal not in self.quiet_signals:
                code = f" (OpenSSL {failure.verify_code})" if failure.verify_code else ""
                self.recorder.info(f"{failure.signal.value}: {failure.detail}{code}", failure.phase)
        if diagnosis is not None:
            self.recorder.info(f"{diagnosis.title} ({diagnosis.cause.value})", diagnosis.phase)
        ok = diagnosis is None
        return TestResult(
            ok=ok,
            transcript=self.recorder.transcript(),
            context=context,
            scrub=scrubber,
            diagnosis=diagnosis,
            auth_mechanism=self.auth_mechanism() if ok else None,
            message_id=message.message_id if ok and message is not None else None,
            server_reply=reply,
            tls=self.tls,
            started=started,
            duration_ms=round((time.perf_counter() - t0) * 1000, 3),
        )

    def _message(self, to: list[str], priority: Priority) -> TestMessage:
        plan = self.plan
        message = checked_test_message(
            sender=plan.from_address, recipients=to, sender_name=plan.from_name, priority=priority
        )
        if isinstance(message, Failure):
            raise SendStop(message)
        return message

    async def _token(self) -> Secret:
        if self.token is None:
            raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail="token"))
        self.recorder.info(
            "getting an access token (refreshed first if it expires soon)", Phase.TOKEN
        )
        try:
            token = await call_provider(self.token)
        except SecretStoreError as exc:  # the consent is stored where it cannot be read
            raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail=f"secrets: {exc}")) from None
        except OAuthError as exc:
            raise SendStop(diagnosis=exc.diagnosis) from None
        except requests.RequestException as exc:
            raise SendStop(failure_from_request_error(exc)) from None
        except Exception as exc:  # a token source's own bug must not crash the send
            raise SendStop(Failure(Phase.TOKEN, Signal.OAUTH, detail=type(exc).__name__)) from None
        if not isinstance(token, Secret) or not token:
            raise SendStop(Failure(Phase.SETUP, Signal.MISSING, detail="token"))
        self.recorder.add_secret(token)
        return token


class ApiSender(HttpSend):
    """One test send through an HTTP mail API. :meth:`run` never raises for a failed send."""

    plan: ApiPlan
    quiet_signals = frozenset({Signal.HTTP, Signal.MISSING})

    #: The real service's base URL.
    default_base: str
    #: Whose API it is: "google" | "microsoft" (tailors the diagnosis on a test double too).
    oauth_provider: str
    #: The name shown in the transcript ("Gmail API", "Microsoft Graph").
    label: str

    def __init__(
        self,
        plan: ApiPlan,
        *,
        token: TokenProvider | None,
        on_row: Callable[[Row], None] | None = None,
    ) -> None:
        super().__init__(token=token, on_row=on_row)
        self.plan = plan
        self.base = (plan.api_url or self.default_base).rstrip("/")
        self.recorder = HttpRecorder(on_row=self._deliver if on_row is not None else None)

    @classmethod
    async def send_async(
        cls,
        plan: ApiPlan,
        *,
        to: Sequence[str],
        token: TokenProvider | None,
        priority: Priority = Priority.NORMAL,
        on_row: Callable[[Row], None] | None = None,
    ) -> TestResult:
        """Send the test message through this API; success or a diagnosis, never raises."""
        return await cls(plan, token=token, on_row=on_row).run(to=to, priority=priority)

    @classmethod
    def send(
        cls,
        plan: ApiPlan,
        *,
        to: Sequence[str],
        token: TokenProvider | None,
        priority: Priority = Priority.NORMAL,
        on_row: Callable[[Row], None] | None = None,
    ) -> TestResult:
        """Blocking :meth:`send_async` (works inside a notebook's event loop too)."""
        return run_sync(cls.send_async(plan, to=to, token=token, priority=priority, on_row=on_row))

    # -- what subclasses say

    @abstractmethod
    def endpoint(self) -> str:
        """The URL to POST the message to."""

    @abstractmethod
    def body(self, mime: bytes) -> tuple[bytes, str]:
        """The request body for this MIME message, and its Content-Type."""

    @abstractmethod
    def session(self, token: Secret) -> requests.Session:
        """A session that sends ``token`` as its bearer (how is the API's business)."""

    def accepted(self, response: requests.Response, message: TestMessage) -> str:
        """The reply to show for an accepted message."""
        return f"{response.status_code} {response.reason}".strip()

    # -- the send

    def context(self) -> SendContext:
        parts = urlsplit(self.base)
        return SendContext(
            host=parts.hostname or "",
            port=parts.port or 443,
            security="ssl",
            auth="oauth",
            username=self.plan.username,
            from_address=self.plan.from_address,
            timeout=self.plan.command_timeout,
            oauth_provider=self.oauth_provider,
        )

    def _trust(self) -> str:
        return f"CA file {self.plan.ca_file}" if self.plan.ca_file else "system CA store"

    async def run(self, *, to: Iterable[str], priority: Priority = Priority.NORMAL) -> TestResult:
        async def steps(message: TestMessage) -> str:
            check_ca_file(self.plan.ca_file)
            token = await self._token()
            return await asyncio.to_thread(self._post, token, message)

        return await self.run_steps(to, priority, steps)

    def _post(self, token: Secret, message: TestMessage) -> str:
        """The blocking part, run in a thread: one POST, its answer judged."""
        mime = message.as_bytes()
        body, content_type = self.body(mime)
        url = self.endpoint()
        self.recorder.info(
            f"{self.label}: POST over HTTPS to {urlsplit(url).netloc}, certificate checked "
            f"against the {self._trust()}; message {len(mime):,} bytes",
            Phase.REQUEST,
        )

        def summarise(request: requests.PreparedRequest) -> str | None:
            return f"<message: {len(mime):,} bytes MIME, sent as {len(body):,} bytes of base64>"

        try:
            with record_session(self.session(token), self.recorder, summarise=summarise) as http:
                adapter = http.get_adapter(url)
                response = http.post(
                    url,
                    data=body,
                    headers={"Content-Type": content_type},
                    timeout=(self.plan.connect_timeout, self.plan.command_timeout),
                )
                if isinstance(adapter, RecordingAdapter):
                    self.tls = adapter.tls
        except OSError as exc:  # requests' errors are OSErrors; so is an unreadable CA file
            raise SendStop(failure_from_request_error(exc, sent=request_went_out(exc))) from None
        if 200 <= response.status_code < 300:
            return self.accepted(response, message)
        code, text = api_error(response.content)
        scrub = self.recorder.scrub  # a server may echo the token; the diagnosis quotes it
        raise SendStop(
            Failure(
                Phase.REQUEST,
                Signal.HTTP,
                code=response.status_code,
                enhanced=scrub(code) if code else None,
                text=scrub(text or response.reason or ""),
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        )


def request_went_out(exc: BaseException) -> bool:
    """Whether requests failed while waiting for the answer (the request was out).

    ``RemoteDisconnected`` is http.client's "closed without response": raised only once the
    whole request was written, so the API may have acted on it. A reset while the body was
    still going out stays a plain disconnect: that request was never complete.
    """
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
        return True
    return any(isinstance(cause, RemoteDisconnected) for cause in exception_chain(exc))
