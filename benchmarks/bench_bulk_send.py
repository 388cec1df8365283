"""Bulk test-send of 1,000 users: mailkit's bulk send vs a sequential smtplib loop.

Both send through :mod:`latency_proxy` (RTT 50 ms by default) to the embedded demo server,
as the working demo account, STARTTLS + AUTH PLAIN + one recipient. mailkit runs with its
default limits (per server and overall); smtplib sends one user after the other, timed on a
sample (``--smtplib-users``) and extrapolated linearly to the full count, which is printed as
such. The proxy counts open connections (from the client's connect to the client's or the
server's close, whichever comes first), so the benchmark checks that the server never saw more
than the per-server limit at once.

Exit status 0 when every send succeeded, the server received every message and the limit held;
1 otherwise. The speed target (20x) is reported, never asserted. Loopback only.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_bulk_send.py [--rtt-ms 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import smtplib
import ssl
import sys
import tempfile
import time
from pathlib import Path

from latency_proxy import BackgroundLoop, LatencyProxy

from mailkit.audit.bulk import DEFAULT_OVERALL_LIMIT, DEFAULT_PER_SERVER_LIMIT, bulk_test_async
from mailkit.demo.server import DEMO_USER, DemoServer, DemoSettings
from mailkit.message import build_test_message
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import UserSettings

RECIPIENT = "rcpt@example.org"
SEND_TIMEOUT = 30.0
PROXY_LIFETIME = 150.0

#: The connection a proxy task belongs to: [still counted].
_CONNECTION: contextvars.ContextVar[list[bool]] = contextvars.ContextVar("connection")


class CountingLatencyProxy(LatencyProxy):
    """A latency proxy that also counts the connections the server holds at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.live = 0
        self.peak = 0

    def _release(self, token: list[bool]) -> None:
        if token[0]:
            token[0] = False
            self.live -= 1

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        # Opens and closes are both seen at the client's edge of the proxy, which delays
        # neither the TCP handshake nor the client's FIN: the count a server sees behind a link
        # that delays both alike. (Counting at the server's edge would add the FIN's delay to
        # each close but none to each open: an artifact of the undelayed handshake.)
        token = [True]
        _CONNECTION.set(token)  # this handler's own context; its pumps inherit it
        read = c_reader.read

        async def read_and_watch(n: int = -1) -> bytes:
            data = await read(n)
            if not data:
                self._release(token)
            return data

        c_reader.read = read_and_watch  # type: ignore[method-assign]
        self.live += 1
        self.peak = max(self.peak, self.live)
        try:
            await super()._handle(c_reader, c_writer)
        finally:
            self._release(token)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            await super()._pump(reader, writer, upstream=upstream)
        finally:
            if not upstream:  # the server's end of stream reached the client: both let go
                self._release(_CONNECTION.get())


def smtplib_send(port: int, context: ssl.SSLContext, password: str) -> bool:
    """One test send with the standard library (it never pipelines).

    It signs in with AUTH PLAIN and its initial response, one round trip, as mailkit does:
    ``smtplib.login`` would pick CRAM-MD5 first (a challenge, then the answer: two round trips)
    and flatter mailkit by one round trip per send. Like mailkit's bulk run it builds its TLS
    context once for the whole run.
    """
    message = build_test_message(sender=DEMO_USER, recipients=[RECIPIENT])
    with smtplib.SMTP("localhost", port, local_hostname="bench.localhost", timeout=30) as smtp:
        smtp.starttls(context=context)
        smtp.ehlo()
        smtp.user, smtp.password = DEMO_USER, password
        smtp.auth("PLAIN", smtp.auth_plain, initial_response_ok=True)
        refused = smtp.sendmail(message.sender, list(message.recipients), message.as_bytes())
        smtp.quit()
    return not refused


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round-trip time (ms)")
    parser.add_argument("--users", type=int, default=1000, help="users in the bulk send")
    parser.add_argument("--smtplib-users", type=int, default=30, help="smtplib sample size")
    parser.add_argument(
        "--per-server-limit", type=int, default=DEFAULT_PER_SERVER_LIMIT, help="mailkit's limit"
    )
    parser.add_argument("--progress", action="store_true", help="show mailkit's progress bar")
    args = parser.parse_args(argv)
    if args.rtt_ms <= 0 or args.users < 1 or args.smtplib_users < 1 or args.per_server_limit < 1:
        parser.error("--rtt-ms must be positive; --users, --smtplib-users and limits at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.setswitchinterval(0.0005)  # keep the proxy thread's timers close to what was asked
    users = [
        UserSettings(user_code=f"user{i:04d}", email=f"user{i:04d}@example.com")
        for i in range(args.users)
    ]
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="mailkit-bench-bulk-") as tmp,
        DemoServer(Path(tmp) / "demo") as server,
        BackgroundLoop("latency-proxy") as background,
    ):
        demo: DemoSettings = server.settings
        password = demo.password_secret().reveal()

        async def make_proxy() -> CountingLatencyProxy:
            proxy = CountingLatencyProxy(
                "127.0.0.1",
                demo.starttls_port,
                one_way_delay=args.rtt_ms / 2000,
                lifetime=PROXY_LIFETIME,
            )
            await proxy.start()
            return proxy

        proxy = background.call(make_proxy())
        secrets = MemorySecretStore()
        secrets.set_password(secret_key("default", "org"), password, password)
        org = demo.org(port=proxy.port, connect_timeout=SEND_TIMEOUT, command_timeout=SEND_TIMEOUT)

        t0 = time.perf_counter()
        cpu0 = time.thread_time()
        frame = asyncio.run(
            bulk_test_async(
                org,
                users,
                to=RECIPIENT,
                secrets=secrets,
                per_server_limit=args.per_server_limit,
                progress=args.progress,
            )
        )
        mailkit_s = time.perf_counter() - t0
        mailkit_cpu_s = time.thread_time() - cpu0
        mailkit_peak = proxy.peak

        proxy.peak = proxy.live
        t0 = time.perf_counter()
        cpu0 = time.thread_time()
        context = ssl.create_default_context(cafile=str(demo.ca_file))
        smtplib_ok = sum(
            smtplib_send(proxy.port, context, password) for _ in range(args.smtplib_users)
        )
        smtplib_sample_s = time.perf_counter() - t0
        smtplib_cpu_s = time.thread_time() - cpu0
        background.call(proxy.aclose())
        received = sum(1 for _ in (demo.mailbox / "new").iterdir())
        connections = proxy.stats.connections

    elapsed = time.perf_counter() - started
    n = args.users
    smtplib_s = smtplib_sample_s / args.smtplib_users * n
    mailkit_ok = int(frame["ok"].sum())
    speedup = smtplib_s / mailkit_s
    print(
        f"Bulk test-send of {n} users through a latency proxy: RTT {args.rtt_ms:.0f} ms, demo"
        " server (STARTTLS + AUTH PLAIN + 1 recipient), one server (host, port)"
    )
    print()
    header = f"{'client':<44}{'wall s':>9}{'sends/s':>9}{'ok':>7}{'peak conns':>12}"
    print(header)
    print("-" * len(header))
    limits = f"per server {args.per_server_limit}, overall {DEFAULT_OVERALL_LIMIT}"
    print(
        f"{'mailkit bulk_test (' + limits + ')':<44}{mailkit_s:>9.1f}{n / mailkit_s:>9.1f}"
        f"{mailkit_ok:>7}{mailkit_peak:>12}"
    )
    label = f"smtplib sequential (extrapolated from {args.smtplib_users})"
    print(f"{label:<44}{smtplib_s:>9.1f}{n / smtplib_s:>9.1f}{'-':>7}{1:>12}")
    print(
        f"  smtplib measured: {args.smtplib_users} sends in {smtplib_sample_s:.1f} s"
        f" ({smtplib_sample_s / args.smtplib_users * 1000:.0f} ms each, {smtplib_ok} ok);"
        f" x {n}/{args.smtplib_users} = {smtplib_s:.1f} s"
    )
    print(
        f"  mailkit: {mailkit_s / n * args.per_server_limit * 1000:.0f} ms per send"
        f" ({mailkit_s / n * args.per_server_limit * 1000 / args.rtt_ms:.1f} RTT) x {n} sends"
        f" / {args.per_server_limit} at a time"
    )
    print(f"  client-side peak per server: {frame.attrs['peak_connections']}")
    mechanisms = ", ".join(sorted(set(frame["auth_mechanism"].dropna()))) or "none"
    print(f"  AUTH: mailkit signed in with {mechanisms}; smtplib with PLAIN (initial response)")
    print(
        f"  CPU per send, client thread: mailkit {mailkit_cpu_s * 1000 / n:.2f} ms,"
        f" smtplib {smtplib_cpu_s * 1000 / args.smtplib_users:.2f} ms; mailkit's own figure"
        f" (process CPU / sends, which here includes the in-process demo server and proxy):"
        f" {frame.attrs['cpu_ms_per_send']:.2f} ms"
    )
    print(
        f"  proxy: {connections} connections; server received {received} of"
        f" {mailkit_ok + smtplib_ok} messages; run took {elapsed:.1f} s"
    )
    print()
    verdict = "MET" if speedup >= 20 else "NOT MET"
    print(
        f"Speedup mailkit vs smtplib, both with AUTH PLAIN: {speedup:.1f}x"
        f" (target >= 20x with default limits: {verdict})"
    )
    limit_ok = mailkit_peak <= args.per_server_limit
    print(
        f"Server's peak concurrent connections: {mailkit_peak} (limit {args.per_server_limit}:"
        f" {'held' if limit_ok else 'EXCEEDED'})"
    )
    failures = []
    if mailkit_ok != n:
        failures.append(f"mailkit: {n - mailkit_ok} of {n} sends failed")
    if set(frame["auth_mechanism"].dropna()) != {"PLAIN"}:
        failures.append(
            f"mailkit signed in with {mechanisms}, not PLAIN: the ratio compares unlike"
        )
    if smtplib_ok != args.smtplib_users:
        failures.append("smtplib: a send failed")
    if received != mailkit_ok + smtplib_ok:
        failures.append(f"the server received {received} messages")
    if not limit_ok:
        failures.append("the per-server limit was exceeded")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
