"""How many round trips does a test send cost? mailkit vs smtplib behind a latency proxy.

One send = STARTTLS + AUTH PLAIN + one recipient + QUIT against a local aiosmtpd server
(trustme certificate, AUTH PLAIN/LOGIN only after TLS, AUTH required, PIPELINING advertised),
reached through :mod:`latency_proxy`, which delays every chunk by half the round-trip time in
each direction. Wall time divided by the RTT says how many round trips the client spent; the
protocol's minimum for this dialog is derived and printed beside it.

Measured in the same run, interleaved, median of ``--runs``:

* mailkit ``send_plan_async`` against the server with PIPELINING (AUTH PLAIN + MAIL + RCPT +
  DATA in one group, body + QUIT in another);
* Python's ``smtplib`` doing the same send (in a worker thread; it never pipelines);
* mailkit against a second server that does *not* advertise PIPELINING (lock-step dialog).

Then, in the same run, the same send against the real Postfix + Dovecot of the test harness
(``tests/postfix_server.py``; needs root and the packages, otherwise the section says why it
is left out), behind the same kind of proxy. Postfix offers PIPELINING and CHUNKING, so four
clients meet the same server: mailkit with ``BDAT <size> LAST`` pipelined with AUTH, MAIL, RCPT
and QUIT (one group after the second EHLO), mailkit's DATA path (CHUNKING not used), Python's
``smtplib`` (AUTH PLAIN with an initial response, as mailkit) and ``aiosmtplib.send`` (its own
choice of mechanism, named in the table). Each gets its round trips and its ratio to the others.

Exit status 0 when every send succeeded and the server received every message, 1 otherwise.
The speed target is reported, never asserted. Loopback only; nothing touches the network.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_smtp_rtt.py [--rtt-ms 50] [--runs 5]
[--no-postfix]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import shutil
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import aiosmtplib
import trustme
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from latency_proxy import BackgroundLoop, ProxyStats, ThreadedLatencyProxy

from mailkit.message import build_test_message
from mailkit.outcome import Phase
from mailkit.result import TestResult
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security
from mailkit.transcript import Direction

HOST = "127.0.0.1"
USERNAME = "bench@example.com"
SENDER = "bench@example.com"
RECIPIENT = "rcpt@example.org"
CLIENT_NAME = "bench.localhost"  # explicit, so no client looks up its own FQDN
SEND_TIMEOUT = 10.0  # seconds; one send takes well under one
PROXY_LIFETIME = 120.0  # seconds; the proxies close themselves after this at the latest

# The dialog's round trips when the server offers PIPELINING (RFC 2920). The proxy does not
# delay the TCP handshake; over a real network it would add one more round trip in front.
MINIMUM_STEPS: tuple[tuple[str, float], ...] = (
    ("greeting (the server speaks first: one way)", 0.5),
    ("EHLO", 1.0),
    ("STARTTLS", 1.0),
    ("TLS 1.3 handshake (TLS 1.2: 2)", 1.0),
    ("EHLO again, over TLS", 1.0),
    ("AUTH PLAIN + MAIL + RCPT + DATA, one group", 1.0),
    ("message body + QUIT, one group", 1.0),
)
# Without PIPELINING, AUTH, MAIL, RCPT and DATA each wait for their reply (4 instead of 1), and
# QUIT waits for the end-of-data reply (2 instead of 1): four more round trips.
LOCKSTEP_EXTRA = 4.0


def minimum_rtts(tls_version: str, pipelining: bool) -> float:
    total = sum(rtts for _, rtts in MINIMUM_STEPS)
    if tls_version == "TLSv1.2":
        total += 1.0
    return total if pipelining else total + LOCKSTEP_EXTRA


# --------------------------------------------------------------------------- the server


@dataclass
class BenchHandler:
    """aiosmtpd handler: optionally advertises PIPELINING, records what it receives."""

    pipelining: bool
    username: bytes
    password: bytes
    message_ids: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # the 5-argument hook must do this itself
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the final "250 HELP"
        return responses

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        headers = BytesHeaderParser().parsebytes(content)
        self.message_ids.append(str(headers.get("Message-ID", "")))
        return "250 2.0.0 Ok: queued"

    def authenticate(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.username
            and secrets.compare_digest(auth_data.password, self.password)
        )
        return AuthResult(success=ok, handled=False)


async def start_server(handler: BenchHandler, tls: ssl.SSLContext) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()

    def factory() -> SMTPServer:
        return SMTPServer(
            handler,
            hostname="smtp.bench.localhost",
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=handler.authenticate,
            loop=loop,
        )

    server = await loop.create_server(factory, HOST, 0)
    return server, int(server.sockets[0].getsockname()[1])


async def stop_server(server: asyncio.Server) -> None:
    server.close()
    await asyncio.wait_for(server.wait_closed(), 5)


# --------------------------------------------------------------------------- the clients


@dataclass
class Outcome:
    ok: bool
    ms: float
    message_id: str | None
    tls_version: str = ""
    error: str = ""
    result: TestResult | None = None


Client = Callable[[int], Awaitable[Outcome]]


def mailkit_client(
    ca_file: str, password: str, username: str = USERNAME, *, chunking: bool = True
) -> Client:
    """mailkit's send; ``chunking=False`` keeps to DATA even where the server offers BDAT."""

    async def send(port: int) -> Outcome:
        plan = SmtpPlan(
            host=HOST,
            port=port,
            security=Security.STARTTLS,
            auth=AuthType.PLAIN,
            username=username,
            from_address=SENDER,
            ca_file=ca_file,
            connect_timeout=SEND_TIMEOUT,
            command_timeout=SEND_TIMEOUT,
            chunking=chunking,
        )
        started = time.perf_counter()
        result = await send_plan_async(plan, to=[RECIPIENT], password=Secret(password))
        ms = (time.perf_counter() - started) * 1000
        error = ""
        if result.diagnosis is not None:
            d = result.diagnosis
            error = f"{d.phase.value}/{d.kind.value}/{d.cause.value}: {d.title}"
        return Outcome(
            ok=result.ok,
            ms=ms,
            message_id=result.message_id,
            tls_version=result.tls.version if result.tls else "",
            error=error,
            result=result,
        )

    return send


def smtplib_send(port: int, ca_file: str, password: str, username: str = USERNAME) -> Outcome:
    """The same send with the standard library: EHLO, STARTTLS, EHLO, AUTH PLAIN, MAIL..."""
    started = time.perf_counter()
    # Same work as mailkit inside the timed region: build the message and the TLS context.
    message = build_test_message(sender=SENDER, recipients=[RECIPIENT])
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with smtplib.SMTP(HOST, port, local_hostname=CLIENT_NAME, timeout=SEND_TIMEOUT) as smtp:
        smtp.ehlo()
        smtp.starttls(context=context)
        smtp.ehlo()
        sock = smtp.sock
        tls_version = (sock.version() or "") if isinstance(sock, ssl.SSLSocket) else ""
        smtp.user, smtp.password = username, password
        smtp.auth("PLAIN", smtp.auth_plain, initial_response_ok=True)  # one line, as mailkit
        refused = smtp.sendmail(message.sender, list(message.recipients), message.as_bytes())
        smtp.quit()
    ms = (time.perf_counter() - started) * 1000
    return Outcome(
        ok=not refused,
        ms=ms,
        message_id=message.message_id,
        tls_version=tls_version,
        error=f"refused: {refused}" if refused else "",
    )


def smtplib_client(ca_file: str, password: str, username: str = USERNAME) -> Client:
    async def send(port: int) -> Outcome:
        try:
            return await asyncio.to_thread(smtplib_send, port, ca_file, password, username)
        except (smtplib.SMTPException, OSError) as exc:
            return Outcome(ok=False, ms=0.0, message_id=None, error=f"{type(exc).__name__}: {exc}")

    return send


# --------------------------------------------------------------------------- the run


@dataclass
class Case:
    """One client against one server: its sends through the proxy and without it."""

    label: str
    client: Client
    handler: BenchHandler
    #: Whether this client pipelines against this server (sets its floor).
    pipelines: bool
    proxy_port: int
    direct_port: int
    outcomes: list[Outcome] = field(default_factory=list)
    direct: list[Outcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        return any(o.ok for o in self.outcomes) and any(o.ok for o in self.direct)

    @property
    def times_ms(self) -> list[float]:
        return [o.ms for o in self.outcomes if o.ok]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def direct_ms(self) -> float:
        return statistics.median(o.ms for o in self.direct if o.ok)

    @property
    def tls_version(self) -> str:
        return next((o.tls_version for o in self.outcomes if o.tls_version), "")

    def median_run(self) -> Outcome | None:
        runs = sorted((o for o in self.outcomes if o.ok), key=lambda o: o.ms)
        return runs[(len(runs) - 1) // 2] if runs else None


async def run_one(case: Case, port: int) -> Outcome:
    """One send, checked: the client says ok and the server received exactly that message."""
    before = len(case.handler.message_ids)
    try:
        outcome = await asyncio.wait_for(case.client(port), SEND_TIMEOUT * 2)
    except TimeoutError:
        outcome = Outcome(ok=False, ms=SEND_TIMEOUT * 2000, message_id=None, error="timed out")
    received = case.handler.message_ids[before:]
    if outcome.ok and received != [outcome.message_id]:
        outcome.ok = False
        outcome.error = f"server received {received!r}, expected [{outcome.message_id!r}]"
    if not outcome.ok:
        case.failures.append(outcome.error or "failed")
    return outcome


async def measure(cases: list[Case], runs: int, warmup: int) -> None:
    for _ in range(warmup):  # imports, first TLS contexts, first handshakes: not counted
        for case in cases:
            await run_one(case, case.direct_port)
    for _ in range(runs):  # interleaved, so drift and noise hit every client alike
        for case in cases:
            case.outcomes.append(await run_one(case, case.proxy_port))
    for _ in range(runs):  # the same sends without the proxy: local processing time
        for case in cases:
            case.direct.append(await run_one(case, case.direct_port))


# --------------------------------------------------------------------------- the report


def print_minimum(tls_version: str) -> None:
    print("Protocol minimum for STARTTLS + AUTH PLAIN + 1 recipient + QUIT, in round trips")
    print("(the proxy does not delay the TCP handshake; a real network adds 1 RTT for it):")
    for step, rtts in MINIMUM_STEPS:
        print(f"  {step:<46} {rtts:>4.1f}")
    pipelined = minimum_rtts("TLSv1.3", True)
    print(f"  {'minimum with PIPELINING, TLS 1.3':<46} {pipelined:>4.1f}")
    print(f"  TLS 1.2 adds one round trip: {pipelined + 1:.1f}.")
    print(
        "  Without PIPELINING AUTH, MAIL, RCPT, DATA each wait for their reply and QUIT for the"
        f"\n  end-of-data reply: +{LOCKSTEP_EXTRA:.0f}, {pipelined + LOCKSTEP_EXTRA:.1f}"
        " (the floor of smtplib, which never pipelines)."
    )
    print(f"  Negotiated here: {tls_version or 'unknown'}.")


def print_table(cases: list[Case], rtt_ms: float, reference: Case) -> None:
    minimum = minimum_rtts(cases[0].tls_version, True)
    header = (
        f"{'client':<34}{'median ms':>10}{'RTTs':>7}{'above min':>10}{'floor':>7}"
        f"{'range ms':>16}{'no-delay ms':>12}{'vs smtplib':>11}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        rtts = case.median_ms / rtt_ms
        floor = minimum_rtts(case.tls_version, case.pipelines)
        spread = f"{min(case.times_ms):.1f}-{max(case.times_ms):.1f}"
        print(
            f"{case.label:<34}{case.median_ms:>10.1f}{rtts:>7.2f}{rtts - minimum:>+10.2f}"
            f"{floor:>7.1f}{spread:>16}{case.direct_ms:>12.1f}"
            f"{case.median_ms / reference.median_ms:>11.2f}"
        )
    print(
        f"RTTs = median wall time / RTT; above min = RTTs - {minimum:.1f} (the protocol minimum);"
    )
    print("floor = the minimum for the dialog that client can run against that server;")
    print("range = fastest and slowest run; no-delay ms = median of the same send without the")
    print("proxy (local processing); vs smtplib = median wall time / smtplib's median wall time.")


def print_transcript(result: TestResult, rtt_ms: float) -> None:
    print("mailkit transcript (median pipelined run; t in ms and in RTTs since connect):")
    for row in result.transcript.rows:
        first, *rest = row.text.split("\n")
        more = f"  (+{len(rest)} lines)" if rest else ""
        text = (first[:66] + "...") if len(first) > 69 else first
        print(
            f"  {row.t_ms:>7.1f} {row.t_ms / rtt_ms:>5.2f}  {row.dir.value} "
            f"{row.phase.value:<11} {'TLS' if row.tls else '   '} {text}{more}"
        )


def print_proxy_stats(name: str, stats: ProxyStats) -> None:
    print(
        f"  proxy {name}: {stats.connections} connections, {stats.chunks} chunks; forwarded"
        f" {stats.late_ms_mean:.2f} ms late on average (max {stats.late_ms_max:.2f};"
        " timer granularity and thread scheduling)"
    )


# --------------------------------------------------------------------------- real Postfix

#: Round trips each client needs against Postfix (TLS 1.3; TLS 1.2 adds one to each): the
#: greeting 0.5, EHLO, STARTTLS, the handshake and EHLO again (4.5), then
POSTFIX_AFTER_TLS: dict[str, float] = {
    # AUTH PLAIN + MAIL + RCPT + BDAT <size> LAST with the message + QUIT: one group.
    "mailkit, BDAT": 1.0,
    # AUTH PLAIN + MAIL + RCPT + DATA, then the body + QUIT.
    "mailkit, DATA": 2.0,
    # AUTH PLAIN, MAIL, RCPT, DATA, the body, QUIT: one at a time.
    "smtplib": 6.0,
    # The same, and CRAM-MD5 (aiosmtplib's first choice when offered) is a challenge and an
    # answer: one more.
    "aiosmtplib.send": 7.0,
}
POSTFIX_BEFORE_AUTH = 4.5


def aiosmtplib_client(ca_file: str, username: str, password: str) -> Client:
    """``aiosmtplib.send`` as its documentation shows it, with STARTTLS and a login."""

    async def send(port: int) -> Outcome:
        started = time.perf_counter()
        message = build_test_message(sender=SENDER, recipients=[RECIPIENT])
        context = ssl.create_default_context(cafile=ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            errors, _ = await aiosmtplib.send(
                message.message,
                sender=message.sender,
                recipients=list(message.recipients),
                hostname=HOST,
                port=port,
                start_tls=True,
                tls_context=context,
                username=username,
                password=password,
                local_hostname=CLIENT_NAME,
                timeout=SEND_TIMEOUT,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Outcome(ok=False, ms=0.0, message_id=None, error=f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        return Outcome(
            ok=not errors,
            ms=ms,
            message_id=message.message_id,
            tls_version="",
            error=f"refused: {errors}" if errors else "",
        )

    return send


@dataclass
class PostfixCase:
    label: str
    key: str
    client: Client
    outcomes: list[Outcome] = field(default_factory=list)
    direct: list[Outcome] = field(default_factory=list)

    @property
    def times_ms(self) -> list[float]:
        return [o.ms for o in self.outcomes if o.ok]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def direct_ms(self) -> float:
        return statistics.median(o.ms for o in self.direct if o.ok)

    def floor(self, tls_version: str) -> float:
        extra = 1.0 if tls_version == "TLSv1.2" else 0.0
        return POSTFIX_BEFORE_AUTH + extra + POSTFIX_AFTER_TLS[self.key]

    def median_run(self) -> Outcome | None:
        runs = sorted((o for o in self.outcomes if o.ok), key=lambda o: o.ms)
        return runs[(len(runs) - 1) // 2] if runs else None


def _postfix_harness() -> Any:
    """The test harness's Postfix module (``tests/postfix_server.py``)."""
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import postfix_server

    return postfix_server


@contextlib.contextmanager
def _postfix() -> Iterator[Any]:
    harness = _postfix_harness()
    harness.reap_stale()
    directory = Path(tempfile.mkdtemp(prefix=harness.DIR_PREFIX))
    server = harness.PostfixServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _delivered(server: Any, expected: int, timeout: float = 30.0) -> int:
    """Messages in Postfix's Maildir, once ``expected`` arrived or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    count = len(server.messages())
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        count = len(server.messages())
    return count


def run_postfix(rtt_ms: float, runs: int, warmup: int) -> int:
    """The four clients against the real Postfix; prints the section, returns 0 or 1."""
    print(f"Real Postfix (tests/postfix_server.py) behind the proxy, RTT {rtt_ms:.1f} ms:")
    reason = _postfix_harness().unavailable_reason()
    if reason is not None:
        print(f"  left out: {reason}")
        return 0
    with _postfix() as server:
        ca_file, user, password = str(server.ca_file), server.user, server.password
        cases = [
            PostfixCase(
                "mailkit, BDAT LAST pipelined",
                "mailkit, BDAT",
                mailkit_client(ca_file, password, user),
            ),
            PostfixCase(
                "mailkit, DATA path",
                "mailkit, DATA",
                mailkit_client(ca_file, password, user, chunking=False),
            ),
            PostfixCase(
                "smtplib (AUTH PLAIN, as mailkit)",
                "smtplib",
                smtplib_client(ca_file, password, user),
            ),
            PostfixCase(
                "aiosmtplib.send (its login: CRAM-MD5)",
                "aiosmtplib.send",
                aiosmtplib_client(ca_file, user, password),
            ),
        ]
        with ThreadedLatencyProxy(
            HOST, server.submission_port, one_way_delay=rtt_ms / 2000, lifetime=PROXY_LIFETIME
        ) as proxy:

            async def measure_postfix() -> None:
                for _ in range(warmup):
                    for case in cases:
                        await case.client(server.submission_port)
                for _ in range(runs):  # interleaved, as above
                    for case in cases:
                        case.outcomes.append(await case.client(proxy.port))
                for _ in range(runs):  # without the proxy: what each client spends locally
                    for case in cases:
                        case.direct.append(await case.client(server.submission_port))

            asyncio.run(measure_postfix())
            stats = proxy.proxy.stats if proxy.proxy is not None else None
        sent = sum(warmup + len(case.times_ms) + sum(o.ok for o in case.direct) for case in cases)
        received = _delivered(server, sent)
    failures = [
        f"{case.label}: {o.error or 'failed'}"
        for case in cases
        for o in case.outcomes + case.direct
        if not o.ok
    ]
    bdat = cases[0]
    tls_version = next((o.tls_version for o in bdat.outcomes if o.tls_version), "")
    if all(case.times_ms for case in cases):
        _print_postfix_table(cases, rtt_ms, tls_version)
        middle = bdat.median_run()
        if middle is not None and middle.result is not None:
            print()
            print_transcript(middle.result, rtt_ms)
        floor = bdat.floor(tls_version)
        counted = [dialog_round_trips(o.result) for o in (middle, cases[1].median_run()) if o]
        print()
        print(
            "Round trips the dialogs took, counted from mailkit's transcripts (each wait for"
            " the server, the greeting as 0.5, the TLS 1.3 handshake as 1):"
            f" BDAT {counted[0]:.1f}, DATA path {counted[-1]:.1f}"
        )
        verdict = "MET" if counted[0] <= floor else "NOT MET"
        print(
            f"Target: a test send against Postfix with CHUNKING in {floor:.1f} round trips"
            f" (the DATA path: {cases[1].floor(tls_version):.1f}): {verdict}"
            f" ({counted[0]:.1f} by the transcript; {bdat.median_ms / rtt_ms:.2f} by wall time,"
            f" {(bdat.median_ms - bdat.direct_ms) / rtt_ms:.2f} net of local time)"
        )
    if stats is not None:
        print_proxy_stats("Postfix", stats)
    print(f"  Postfix delivered {received} of {sent} messages ({tls_version or 'TLS ?'})")
    if received != sent:
        failures.append(f"Postfix delivered {received} of {sent} messages")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


def dialog_round_trips(result: TestResult | None) -> float:
    """Round trips by the transcript: the greeting's half, one per wait for the server after
    the client wrote (a pipelined group is one), one per TLS 1.3 handshake (TLS 1.2: two)."""
    if result is None:
        return float("nan")
    total, waiting = 0.5, False
    for row in result.transcript.rows:
        if row.dir is Direction.CLIENT:
            waiting = True
        elif row.dir is Direction.SERVER and waiting:
            total, waiting = total + 1, False
    if result.tls is not None and any(r.phase is Phase.STARTTLS for r in result.transcript.rows):
        total += 2 if result.tls.version == "TLSv1.2" else 1
    return total


def _print_postfix_table(cases: list[PostfixCase], rtt_ms: float, tls_version: str) -> None:
    bdat, data, smtplib_case, _ = cases
    header = (
        f"{'client':<40}{'median ms':>10}{'RTTs':>7}{'net':>6}{'floor':>7}"
        f"{'vs BDAT':>9}{'vs DATA':>9}{'vs smtplib':>11}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        print(
            f"{case.label:<40}{case.median_ms:>10.1f}{case.median_ms / rtt_ms:>7.2f}"
            f"{(case.median_ms - case.direct_ms) / rtt_ms:>6.2f}"
            f"{case.floor(tls_version):>7.1f}{case.median_ms / bdat.median_ms:>9.2f}"
            f"{case.median_ms / data.median_ms:>9.2f}"
            f"{case.median_ms / smtplib_case.median_ms:>11.2f}"
        )
    print("RTTs = median wall time / RTT; net = the same less the median send without the proxy")
    print("(local work: TLS, Postfix's processes); floor = that client's minimum round trips")
    print("against this Postfix; vs X = median wall time / X's (below 1: faster than X).")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round-trip time (ms)")
    parser.add_argument("--runs", type=int, default=5, help="measured sends per client")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured sends per client")
    parser.add_argument(
        "--no-postfix", action="store_true", help="leave out the real-Postfix section"
    )
    args = parser.parse_args(argv)
    if args.rtt_ms <= 0 or args.runs < 1 or args.warmup < 0:
        parser.error("--rtt-ms must be positive, --runs at least 1, --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rtt_ms: float = args.rtt_ms
    # aiosmtpd 1.4.6 sets its own deprecated Session.login_data after every successful AUTH
    # and logs a warning about it each time; its other warnings stay visible.
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )
    # Server and proxies run in threads of this process. With the default 5 ms GIL switch
    # interval a proxy timer can wait that long for the GIL while a client computes; a short
    # interval keeps the delay close to what was asked for. It applies to every client alike.
    sys.setswitchinterval(0.0005)
    password = secrets.token_urlsafe(18)
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(server_tls)
    started = time.perf_counter()

    with (
        tempfile.TemporaryDirectory(prefix="mailkit-bench-") as tmp,
        BackgroundLoop("smtp-server") as server_loop,
    ):
        ca_file = str(Path(tmp) / "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        piped = BenchHandler(True, USERNAME.encode(), password.encode())
        lockstep = BenchHandler(False, USERNAME.encode(), password.encode())
        server_p, port_p = server_loop.call(start_server(piped, server_tls))
        server_l, port_l = server_loop.call(start_server(lockstep, server_tls))
        delay = rtt_ms / 2000
        try:
            with (
                ThreadedLatencyProxy(
                    HOST, port_p, one_way_delay=delay, lifetime=PROXY_LIFETIME
                ) as proxy_p,
                ThreadedLatencyProxy(
                    HOST, port_l, one_way_delay=delay, lifetime=PROXY_LIFETIME
                ) as proxy_l,
            ):
                mailkit = mailkit_client(ca_file, password)
                smtplib_ = smtplib_client(ca_file, password)
                cases = [
                    Case(
                        "mailkit (server has PIPELINING)",
                        mailkit,
                        piped,
                        True,
                        proxy_p.port,
                        port_p,
                    ),
                    Case("smtplib (same server)", smtplib_, piped, False, proxy_p.port, port_p),
                    Case(
                        "mailkit (server w/o PIPELINING)",
                        mailkit,
                        lockstep,
                        False,
                        proxy_l.port,
                        port_l,
                    ),
                ]
                asyncio.run(measure(cases, args.runs, args.warmup))
                proxies = [("PIPELINING", proxy_p.proxy), ("w/o PIPELINING", proxy_l.proxy)]
        finally:
            server_loop.call(stop_server(server_p))
            server_loop.call(stop_server(server_l))
    elapsed = time.perf_counter() - started

    mailkit_p, smtplib_case, _ = cases
    print(
        f"SMTP test send behind a latency proxy: RTT {rtt_ms:.1f} ms (one way {rtt_ms / 2:.1f} ms),"
        f" {args.runs} runs per client (+{args.warmup} warm-up), median, all in one run"
    )
    print()
    print_minimum(mailkit_p.tls_version)
    print()
    if all(case.measured for case in cases):
        print_table(cases, rtt_ms, smtplib_case)
    else:
        print("No table: a client had no successful send (see FAILED below).")
    print()
    middle = mailkit_p.median_run()
    if middle is not None and middle.result is not None:
        print_transcript(middle.result, rtt_ms)
        print()
    for name, proxy in proxies:
        if proxy is not None:
            print_proxy_stats(name, proxy.stats)
    received = len(piped.message_ids) + len(lockstep.message_ids)
    sends = len(cases) * (args.warmup + 2 * args.runs)
    print(f"  server received {received} of {sends} messages; run took {elapsed:.1f} s")
    print()

    if mailkit_p.times_ms:
        minimum = minimum_rtts(mailkit_p.tls_version, True)
        above = mailkit_p.median_ms / rtt_ms - minimum
        verdict = "MET" if above <= 1.0 else "NOT MET"
        print(
            "Target: mailkit with PIPELINING at most 1 round trip above the minimum"
            f" ({minimum:.1f} RTT): {verdict} ({above:+.2f} RTT)"
        )
    failed = [case for case in cases if case.failures]
    if failed or received != sends:
        for case in failed:
            for failure in case.failures:
                print(f"FAILED {case.label}: {failure}", file=sys.stderr)
        if received != sends:
            print(f"FAILED: the server received {received} of {sends} messages", file=sys.stderr)
        return 1
    print()
    if not args.no_postfix and run_postfix(rtt_ms, args.runs, args.warmup):
        return 1
    print("All sends succeeded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
