"""Probe an SMTP server's ports in parallel: what each really offers, then a verdict.

Each port gets its own connection (two when it has to be found out whether it speaks TLS from
the first byte): greeting, EHLO, STARTTLS when offered, the TLS handshake, EHLO again, QUIT.
Nothing else is ever sent: no AUTH, no MAIL, no credentials of any kind.

Time is the point of a probe, so a silent port must not hold the answer. Every port is
watched for progress (a step completed); once at least one port has finished, a port that has
made no progress for ``silent_after`` seconds is cut and reported as silent, unreachable or
stalled, and the verdict is decided from what the others showed. With no port finished, the
probe waits up to ``timeout``.

Certificates are verified as a send would verify them (the system store, or ``ca_file``).
When that fails the port is still described: a second connection, which does not verify, reads
the certificate so the report can say what is wrong with it (expired on which date, issued for
which names). Over that connection only EHLO, STARTTLS and QUIT are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailkit.errors import FieldProblem, SettingsError
from mailkit.fields import Security
from mailkit.probereport import (
    DEFAULT_PORTS,
    Outcome,
    PortReport,
    ProbeReport,
    check_arguments,
    decide,
    parse_extensions,
    parse_ports,
)
from mailkit.result import TlsInfo
from mailkit.runner import run_sync
from mailkit.senders.tls import ca_file_problem, describe_certificate

__all__ = ["IMPLICIT_TLS_PORTS", "probe", "probe_async"]

#: Ports tried with TLS from the first byte unless told otherwise; the others start in
#: plaintext.
IMPLICIT_TLS_PORTS: tuple[int, ...] = (465,)

#: A plaintext port with no greeting after this long (or three times its connect time, when
#: longer) is also tried with implicit TLS, in parallel: a server waiting for a TLS hello looks
#: exactly like a silent one.
TLS_GUESS_AFTER = 0.15

#: How long a QUIT's 221 is waited for; the port's findings are complete before it.
QUIT_WAIT = 0.5

#: Guards against a hostile server: the longest reply line and the most lines in a reply.
LINE_LIMIT = 4096
REPLY_LINES = 200

_WAITING_WORDS = {
    "connect": "the TCP connection was not accepted",
    "tls": "the TLS handshake did not complete",
    "greeting": "no greeting came",
    "ehlo": "no answer to EHLO",
    "starttls": "no answer to STARTTLS",
    "ehlo_tls": "no answer to EHLO after TLS",
    "quit": "no answer to QUIT",
}


class _Ended(Exception):
    """The attempt is over; ``outcome`` and ``detail`` say how."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


@dataclass
class _Attempt:
    """One connection's findings, filled as the dialog goes."""

    implicit: bool
    address: str = ""
    steps: list[tuple[str, float]] = field(default_factory=list)
    waiting_for: str = "connect"
    connected: bool = False
    spoke: bool = False  # the server said something in the protocol tried (greeting, TLS)
    greeting: str = ""
    ehlo_before: tuple[str, ...] = ()
    ehlo_after: tuple[str, ...] = ()
    tls: TlsInfo | None = None
    cert_problem: str | None = None
    security: Security | None = None
    outcome: Outcome | None = None
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    #: The server answered the TLS hello with plaintext (or closed): maybe a plaintext port.
    tls_refused: bool = False
    writer: asyncio.StreamWriter | None = None


@dataclass
class _Target:
    """What every port's probe shares."""

    host: str
    #: Every address the name resolved to, in the order a client tries them.
    addresses: tuple[str, ...]
    server_name: str
    #: Built in a worker thread while the first steps run: the system store takes ~50 ms.
    context: asyncio.Future[ssl.SSLContext]
    trust: str
    timeout: float
    tls_ports: frozenset[int]


class _PortProbe:
    """The probe of one port: one or two attempts, and when it last made progress."""

    def __init__(self, port: int, target: _Target, started: float) -> None:
        self.port = port
        self.target = target
        self.last_progress = started
        self.attempts: list[_Attempt] = []
        self.chosen: _Attempt | None = None
        self.cut_note = ""
        self.dns_ms: float | None = None
        self._spoke = asyncio.Event()
        self._connected = asyncio.Event()

    # ------------------------------------------------------------------ the port's plan

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.target.timeout):
                if self.port in self.target.tls_ports:
                    await self._implicit_first()
                else:
                    await self._plain_first()
        except TimeoutError:
            self.cut_note = f"gave up after the {self.target.timeout:g} s time limit"

    async def _implicit_first(self) -> None:
        tls = self.chosen = self._attempt(implicit=True)
        await self._session(tls)
        if tls.outcome is not Outcome.OK and tls.tls_refused:
            plain = self._attempt(implicit=False)
            await self._session(plain)
            if plain.spoke:
                plain.notes.append(
                    f"port {self.port} speaks plaintext SMTP, not TLS from the first byte"
                )
                self.chosen = plain

    async def _plain_first(self) -> None:
        """Plaintext first; with no greeting after :data:`TLS_GUESS_AFTER`, a TLS hello on a
        second connection too. Whichever the server answers is the way it speaks."""
        plain = self.chosen = self._attempt(implicit=False)
        plain_task = asyncio.ensure_future(self._session(plain))
        started = time.monotonic()
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait({plain_task, connected}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
        connect_s = time.monotonic() - started
        guess = max(TLS_GUESS_AFTER, 3 * connect_s) - connect_s
        done, _ = await asyncio.wait({plain_task}, timeout=guess)
        if done or plain.spoke:
            await plain_task
            return
        tls = self._attempt(implicit=True)
        tls_task = asyncio.ensure_future(self._session(tls))
        both = (plain_task, tls_task)
        try:
            while not (plain.spoke or tls.spoke) and not all(t.done() for t in both):
                self._spoke.clear()
                waiter = asyncio.ensure_future(self._spoke.wait())
                try:
                    running = {t for t in both if not t.done()}
                    await asyncio.wait({*running, waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            if tls.spoke and not plain.spoke:
                self.chosen = tls
                tls.notes.append(
                    f"port {self.port} expects TLS from the first byte (implicit TLS), "
                    "not plaintext SMTP"
                )
                plain_task.cancel()
                await tls_task
            else:
                tls_task.cancel()
                await plain_task
        finally:
            for task in both:
                task.cancel()
            await asyncio.gather(*both, return_exceptions=True)

    async def _connect(
        self, attempt: _Attempt
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the first address that takes the connection, as a client would."""
        refused = False
        failure: OSError | None = None
        for address in self.target.addresses:
            attempt.address = address
            try:
                return await asyncio.open_connection(address, self.port, limit=LINE_LIMIT * 2)
            except ConnectionRefusedError:
                refused = True
            except OSError as exc:
                failure = failure or exc
        if refused or failure is None:
            raise _Ended(Outcome.REFUSED, "connection refused: nothing listens there")
        raise failure

    def _heard(self, attempt: _Attempt) -> None:
        attempt.spoke = True
        self._spoke.set()

    def _attempt(self, implicit: bool) -> _Attempt:
        attempt = _Attempt(implicit=implicit)
        self.attempts.append(attempt)
        return attempt

    # ------------------------------------------------------------------ one connection

    def _step(self, attempt: _Attempt, name: str, since: float, waiting_for: str) -> float:
        now = time.monotonic()
        attempt.steps.append((name, (now - since) * 1000))
        attempt.waiting_for = waiting_for
        if name == "connect":
            self._connected.set()
        # A second connection's connect shows nothing new about the server: not progress.
        if name != "connect" or attempt is self.attempts[0]:
            self.last_progress = now
        return now

    async def _session(self, attempt: _Attempt, *, describe: bool = False) -> None:
        """One connection's whole dialog; never raises for what the server does."""
        try:
            await self._dialog(attempt, describe)
        except _Ended as end:
            attempt.outcome, attempt.detail = end.outcome, end.detail
        except ssl.SSLCertVerificationError as exc:
            self._heard(attempt)
            attempt.cert_problem = _verify_words(exc)
            attempt.outcome = Outcome.TLS_FAILED
            attempt.detail = f"certificate not trusted: {attempt.cert_problem}"
        except ssl.SSLError as exc:
            attempt.outcome = Outcome.TLS_FAILED
            attempt.detail = f"TLS handshake failed: {_ssl_words(exc)}"
            attempt.tls_refused = attempt.implicit
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
            attempt.outcome = Outcome.RESET
            attempt.detail = _reset_words(attempt, exc)
            attempt.tls_refused = attempt.implicit and attempt.waiting_for == "tls"
        except OSError as exc:
            attempt.outcome = Outcome.UNREACHABLE
            attempt.detail = f"cannot connect: {exc.strerror or type(exc).__name__}"
        finally:
            _abort(attempt)
        if attempt.cert_problem and not describe:
            await self._describe_certificate(attempt)

    async def _describe_certificate(self, failed: _Attempt) -> None:
        """Read the certificate that failed verification over a second, unverified
        connection, so the report can show it; its EHLO after TLS is reported too."""
        seen = _Attempt(implicit=failed.implicit)
        await self._session(seen, describe=True)
        if seen.tls is None:
            failed.notes.append("the certificate could not be read a second time")
            return
        failed.tls = _trusted_as(seen.tls, self.target.trust)
        failed.ehlo_after = seen.ehlo_after
        failed.ehlo_before = failed.ehlo_before or seen.ehlo_before
        failed.greeting = failed.greeting or seen.greeting
        failed.security = seen.security
        failed.outcome = Outcome.OK if seen.outcome is Outcome.OK else failed.outcome
        failed.detail = ""
        failed.notes.append(
            "the certificate was read over a second connection that did not verify it; "
            "nothing but EHLO and QUIT was sent over it"
        )

    async def _dialog(self, attempt: _Attempt, describe: bool) -> None:
        since = time.monotonic()
        reader, writer = await self._connect(attempt)
        attempt.writer = writer
        attempt.connected = True
        since = self._step(attempt, "connect", since, "tls" if attempt.implicit else "greeting")
        if attempt.implicit:
            await self._start_tls(attempt, writer, describe, since)
            since = self._step(attempt, "tls", since, "greeting")
            attempt.security = Security.IMPLICIT_TLS

        def greeting_line(text: str) -> None:
            # A greeting can come line by line, seconds apart (Postfix's postscreen holds the
            # last line back to catch clients that talk too early): each line is progress.
            attempt.greeting = f"{attempt.greeting} / {text}" if attempt.greeting else text
            self._heard(attempt)
            self.last_progress = time.monotonic()

        code, lines = await _read_reply(reader, greeting_line)
        since = self._step(attempt, "greeting", since, "ehlo")
        if code != 220:
            await _quit(reader, writer)
            raise _Ended(Outcome.REJECTED, f"the server refused the session: {lines[0]}")
        ehlo = await _hello(reader, writer, _ehlo_name(writer))
        since = self._step(attempt, "ehlo", since, "starttls")
        if attempt.implicit:
            attempt.ehlo_after = ehlo
        else:
            attempt.ehlo_before = ehlo
            attempt.security = Security.NONE
            if "STARTTLS" in parse_extensions(ehlo):
                writer.write(b"STARTTLS\r\n")
                await writer.drain()
                code, lines = await _read_reply(reader)
                since = self._step(attempt, "starttls", since, "tls")
                if code != 220:
                    attempt.notes.append(f"STARTTLS is offered but refused: {lines[0]}")
                else:
                    await self._start_tls(attempt, writer, describe, since)
                    since = self._step(attempt, "tls", since, "ehlo_tls")
                    attempt.security = Security.STARTTLS
                    attempt.ehlo_after = await _hello(reader, writer, _ehlo_name(writer))
                    since = self._step(attempt, "ehlo_tls", since, "quit")
        attempt.outcome = Outcome.OK
        attempt.waiting_for = "quit"
        await _quit(reader, writer)

    async def _start_tls(
        self, attempt: _Attempt, writer: asyncio.StreamWriter, describe: bool, since: float
    ) -> None:
        # shield: a port cut off while waiting must not cancel the context the others share
        context = _describing_context() if describe else await asyncio.shield(self.target.context)
        try:
            await writer.start_tls(context, server_hostname=self.target.server_name)
        except ssl.SSLCertVerificationError:
            self._step(attempt, "tls", since, "tls")  # the handshake's time, to its verdict
            raise
        self._heard(attempt)
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None:  # pragma: no cover - asyncio always sets it after start_tls
            raise _Ended(Outcome.TLS_FAILED, "TLS started but asyncio shows no TLS session")
        der = ssl_object.getpeercert(binary_form=True) or b""
        attempt.tls = describe_certificate(
            der, ssl_object, hashlib.sha256(der).hexdigest(), self.target.trust
        )

    # ------------------------------------------------------------------ the result

    def report(self, cut: str = "") -> PortReport:
        attempt = self.chosen or (self.attempts[0] if self.attempts else _Attempt(False))
        steps = ([("dns", self.dns_ms)] if self.dns_ms is not None else []) + attempt.steps
        outcome, detail = attempt.outcome, attempt.detail
        if outcome is None:  # cut off, or out of time: say where it stopped
            outcome, detail = _unfinished(attempt, cut or self.cut_note, self)
        return PortReport(
            port=self.port,
            outcome=outcome,
            security=attempt.security if outcome is Outcome.OK else None,
            address=attempt.address,
            greeting=attempt.greeting,
            ehlo_before=attempt.ehlo_before,
            ehlo_after=attempt.ehlo_after,
            tls=attempt.tls,
            cert_problem=attempt.cert_problem,
            detail=detail if outcome is not Outcome.OK else "",
            notes=tuple(attempt.notes),
            steps=tuple(steps),
        )


def _unfinished(attempt: _Attempt, why: str, port: _PortProbe) -> tuple[Outcome, str]:
    tried_tls = any(a.implicit for a in port.attempts) and not attempt.implicit
    waited = _WAITING_WORDS.get(attempt.waiting_for, f"no answer ({attempt.waiting_for})")
    if not any(a.connected for a in port.attempts):
        outcome = Outcome.UNREACHABLE
    elif not any(a.spoke for a in port.attempts):
        outcome = Outcome.SILENT
        if tried_tls:
            waited = "no greeting came, and no answer to a TLS hello either"
    else:
        outcome = Outcome.STALLED
        if attempt.waiting_for == "greeting" and attempt.greeting:
            waited = (
                "the greeting began but did not finish (some servers, such as Postfix's "
                "postscreen, hold its last line back for several seconds on purpose; waiting "
                "longer for silent ports lets it finish)"
            )
    return outcome, f"{waited}; {why}" if why else waited


# ---------------------------------------------------------------------- SMTP on the wire


async def _read_reply(
    reader: asyncio.StreamReader, on_line: Callable[[str], None] | None = None
) -> tuple[int, list[str]]:
    """One SMTP reply: its code and its lines, bounded in size; ``on_line`` sees each line
    as it arrives."""
    lines: list[str] = []
    while len(lines) < REPLY_LINES:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _Ended(Outcome.NOT_SMTP, "the server sent a line too long for SMTP") from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise _Ended(
                    Outcome.NOT_SMTP, f"the server sent {_clean(exc.partial)!r} and closed"
                ) from None
            raise
        if len(raw) > LINE_LIMIT:
            raise _Ended(Outcome.NOT_SMTP, "the server sent a line too long for SMTP")
        text = _clean(raw.rstrip(b"\r\n"))
        if len(text) < 3 or not text[:3].isdigit() or text[3:4] not in ("", " ", "-"):
            if raw[:1] in (b"\x15", b"\x16"):
                raise _Ended(Outcome.NOT_SMTP, "the server answered with TLS, not SMTP")
            raise _Ended(Outcome.NOT_SMTP, f"the server does not speak SMTP: {text[:80]!r}")
        lines.append(text)
        if on_line is not None:
            on_line(text)
        if text[3:4] != "-":
            return int(text[:3]), lines
    raise _Ended(Outcome.NOT_SMTP, f"the server sent a reply of more than {REPLY_LINES} lines")


async def _hello(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str
) -> tuple[str, ...]:
    """EHLO (HELO when EHLO is refused): the extension lines, without the hello line."""
    writer.write(f"EHLO {name}\r\n".encode("ascii"))
    await writer.drain()
    code, lines = await _read_reply(reader)
    if code == 250:
        return tuple(line[4:] for line in lines[1:])
    writer.write(f"HELO {name}\r\n".encode("ascii"))
    await writer.drain()
    helo_code, helo_lines = await _read_reply(reader)
    if helo_code != 250:
        raise _Ended(Outcome.REJECTED, f"EHLO and HELO are refused: {lines[0]} / {helo_lines[0]}")
    return ()


async def _quit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Say goodbye and wait briefly for the 221; the findings are complete already."""
    with contextlib.suppress(Exception):
        writer.write(b"QUIT\r\n")
        await writer.drain()
        async with asyncio.timeout(QUIT_WAIT):
            await _read_reply(reader)


def _abort(attempt: _Attempt) -> None:
    writer, attempt.writer = attempt.writer, None
    if writer is not None:
        writer.transport.abort()


def _ehlo_name(writer: asyncio.StreamWriter) -> str:
    """Our own address as an address literal (RFC 5321 4.1.3): honest, needs no DNS."""
    sockname = writer.get_extra_info("sockname")
    try:
        address = ipaddress.ip_address(sockname[0] if sockname else "127.0.0.1")
    except ValueError:
        return "[127.0.0.1]"
    return f"[IPv6:{address}]" if address.version == 6 else f"[{address}]"


def _clean(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def _verify_words(exc: ssl.SSLCertVerificationError) -> str:
    return str(exc.verify_message or exc.reason or exc)


def _ssl_words(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or type(exc).__name__).replace("_", " ").lower()


def _reset_words(attempt: _Attempt, exc: BaseException) -> str:
    how = "closed" if isinstance(exc, asyncio.IncompleteReadError) else "reset"
    if attempt.waiting_for == "connect":  # accepted, then reset before asyncio saw it
        return f"the server {how} the connection as soon as it was accepted"
    if attempt.waiting_for == "tls":
        return f"the server {how} the connection during the TLS handshake"
    if attempt.waiting_for == "greeting":
        return f"the server {how} the connection without a greeting"
    return f"the server {how} the connection while mailkit waited for the {attempt.waiting_for}"


def _trusted_as(info: TlsInfo, trust: str) -> TlsInfo:
    return TlsInfo(
        version=info.version,
        cipher=info.cipher,
        subject=info.subject,
        issuer=info.issuer,
        san=info.san,
        not_after=info.not_after,
        sha256=info.sha256,
        verified_by=trust,
    )


# ---------------------------------------------------------------------- TLS contexts


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _describing_context() -> ssl.SSLContext:
    """For reading a certificate that already failed verification; never for a send."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# ---------------------------------------------------------------------- the probe


def _tls_ports(ports: Iterable[int | str] | str | int) -> frozenset[int]:
    """The implicit-TLS ports; none for ``""`` or an empty sequence."""
    given: str | int | list[int | str] = ports if isinstance(ports, str | int) else list(ports)
    if given == [] or (isinstance(given, str) and not given.strip()):
        return frozenset()
    try:
        return frozenset(parse_ports(given))
    except ValueError as exc:
        raise SettingsError([FieldProblem("tls_ports", str(exc))], "probe arguments") from None


async def _resolve(host: str, timeout: float) -> tuple[tuple[str, ...], float, str]:
    """The addresses to connect to, in getaddrinfo's order (a send tries them so), the time
    taken, and why there are none. Resolved once for all ports."""
    since = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        return (), (time.monotonic() - since) * 1000, f"no DNS answer within {timeout:g} s"
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return (), (time.monotonic() - since) * 1000, f"the host name does not resolve ({reason})"
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return addresses, (time.monotonic() - since) * 1000, ""


async def _settle(probes: Sequence[_PortProbe], silent_after: float) -> dict[_PortProbe, str]:
    """Run every port; once one has finished, cut those without progress for
    ``silent_after`` s. Returns the cut ports with the reason."""
    tasks = {asyncio.ensure_future(p.run()): p for p in probes}
    pending = set(tasks)
    cut: dict[_PortProbe, str] = {}
    try:
        while pending:
            finished = len(pending) < len(tasks)
            wait = None
            if finished:
                now = time.monotonic()
                oldest = min(tasks[t].last_progress for t in pending)
                wait = max(0.0, oldest + silent_after - now)
            done, pending = await asyncio.wait(
                pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if done or not finished:
                continue
            now = time.monotonic()
            stuck = [t for t in pending if now - tasks[t].last_progress >= silent_after]
            for task in stuck:
                probe = tasks[task]
                heard = any(a.spoke for a in probe.attempts)
                cut[probe] = (
                    f"stopped waiting {silent_after:g} s after its last answer, once the "
                    "other ports had answered"
                    if heard
                    else f"stopped waiting after {silent_after:g} s, once the other ports "
                    "had answered"
                )
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
            pending -= set(stuck)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return cut


async def probe_async(
    host: str,
    ports: Iterable[int | str] | str | int = DEFAULT_PORTS,
    *,
    timeout: float = 10.0,
    ca_file: str | None = None,
    silent_after: float = 1.5,
    server_name: str | None = None,
    tls_ports: Iterable[int | str] | str | int = IMPLICIT_TLS_PORTS,
) -> ProbeReport:
    """Probe ``host``'s SMTP ports in parallel and decide which port and security to use.

    ``ports`` in the order to report them. Those in ``tls_ports`` (465 unless told
    otherwise, e.g. by an SRV record for ``_submissions``) are tried with implicit TLS first,
    the others in plaintext with STARTTLS; each falls back to the other when the server shows
    it speaks it. ``timeout`` caps any one port; ``silent_after`` is how long a port without
    progress is waited for once another port has finished. Certificates are verified against
    the system store, or ``ca_file`` instead; ``server_name`` is the name to verify when
    ``host`` is an address. Network trouble is in the report, never raised; bad arguments raise
    :class:`mailkit.errors.SettingsError` naming each one.
    """
    name, numbers = check_arguments(host, ports, timeout, silent_after)
    implicit = _tls_ports(tls_ports)
    if ca_file is not None and (problem := ca_file_problem(str(ca_file))):
        raise SettingsError(
            [FieldProblem("ca_file", f"{ca_file} {problem}")], context="probe arguments"
        )
    verified_name = (server_name or "").strip() or name
    trust = f"CA file {ca_file}" if ca_file else "system CA store"
    started_at = datetime.now(UTC)
    started = time.monotonic()
    context = asyncio.ensure_future(
        asyncio.to_thread(_verifying_context, str(ca_file) if ca_file else None)
    )
    try:
        addresses, dns_ms, dns_problem = await _resolve(name, timeout)
        if not addresses:
            reports = tuple(
                PortReport(port, Outcome.DNS, detail=dns_problem, steps=(("dns", dns_ms),))
                for port in numbers
            )
        else:
            target = _Target(name, addresses, verified_name, context, trust, timeout, implicit)
            probes = [_PortProbe(port, target, time.monotonic()) for port in numbers]
            for p in probes:
                p.dns_ms = dns_ms
            cut = await _settle(probes, silent_after)
            reports = tuple(p.report(cut.get(p, "")) for p in probes)
    finally:
        await asyncio.gather(context, return_exceptions=True)  # no thread left behind
    elapsed = (time.monotonic() - started) * 1000
    return ProbeReport(
        host=name,
        ports=reports,
        verdict=decide(reports),
        server_name=verified_name,
        trust=trust,
        elapsed_ms=elapsed,
        started=started_at,
    )


def probe(
    host: str,
    ports: Iterable[int | str] | str | int = DEFAULT_PORTS,
    *,
    timeout: float = 10.0,
    ca_file: str | None = None,
    silent_after: float = 1.5,
    server_name: str | None = None,
    tls_ports: Iterable[int | str] | str | int = IMPLICIT_TLS_PORTS,
) -> ProbeReport:
    """Blocking :func:`probe_async`; works in a notebook cell too (its loop is running).

    >>> report = probe("mail.example.com")                        # doctest: +SKIP
    >>> report.verdict.port, report.verdict.security              # doctest: +SKIP
    (465, <Security.IMPLICIT_TLS: 'implicit_tls'>)
    """
    return run_sync(
        probe_async(
            host,
            ports,
            timeout=timeout,
            ca_file=ca_file,
            silent_after=silent_after,
            server_name=server_name,
            tls_ports=tls_ports,
        )
    )
