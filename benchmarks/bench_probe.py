"""How fast does ``mailkit probe`` reach its verdict? Against a sequential smtplib probe.

The servers: the demo server's two ports (implicit TLS and STARTTLS, trustme certificate,
AUTH after TLS) and, for the first comparison, a silent port that accepts and never speaks
(:class:`mailkit.demo.misbehaving.MisbehavingPorts`). Every port is reached through
:mod:`latency_proxy` (``--rtt-ms``, default 40 ms), so the times are round trips and not
loopback noise.

Measured in the same run, median of ``--runs``:

1. With the silent port: ``mailkit.probe`` of the three ports (time to the verdict), against
   Python's ``smtplib`` probing them one after the other, each: connect, EHLO, STARTTLS, EHLO,
   QUIT (``SMTP_SSL`` for the implicit-TLS port), with ``--timeout`` seconds for the silent
   one (a sequential probe has to wait it out). Ratio printed.
2. Without it: ``mailkit.probe`` of the two answering ports against the slowest of them probed
   alone (by mailkit, and by smtplib for reference).
3. The same two ports when the probe is not told which one is implicit TLS: the cost of
   finding out (a TLS hello tried beside the silent plaintext connection).

Goals, reported and never asserted (issue 14): a verdict in at most 2 s with one silent
port; at most 1.5x the slowest answering port when none is silent. Exit status 0 when every
probe found what it should (the verdict, the silent port reported silent), 1 otherwise.
Loopback only.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_probe.py [--rtt-ms 40] [--runs 5]
[--timeout 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from latency_proxy import ThreadedLatencyProxy

from mailkit.demo import DemoServer
from mailkit.demo.misbehaving import MisbehavingPorts
from mailkit.probereport import Outcome, ProbeReport
from mailkit.settings import Security
from mailkit.smtpprobe import probe

HOST = "127.0.0.1"
SILENT_GOAL_S = 2.0
RATIO_GOAL = 1.5


def smtplib_port(port: int, implicit: bool, ca_file: str, timeout: float) -> tuple[float, str]:
    """One port the way a script with smtplib would probe it: seconds taken and how it ended."""
    started = time.perf_counter()
    context = ssl.create_default_context(cafile=ca_file)
    try:
        client: smtplib.SMTP
        if implicit:
            client = smtplib.SMTP_SSL(HOST, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(HOST, port, timeout=timeout)
        with client:
            client.ehlo()
            if not implicit and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            client.quit()
        ended = "ok"
    except (OSError, smtplib.SMTPException) as exc:
        ended = type(exc).__name__
    return time.perf_counter() - started, ended


def smtplib_sequential(
    ports: list[tuple[int, bool]], ca_file: str, timeout: float
) -> tuple[float, list[str]]:
    started = time.perf_counter()
    ends = [smtplib_port(port, implicit, ca_file, timeout)[1] for port, implicit in ports]
    return time.perf_counter() - started, ends


def timed(run: Callable[[], ProbeReport]) -> tuple[float, ProbeReport]:
    started = time.perf_counter()
    report = run()
    return time.perf_counter() - started, report


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def proxied(port: int, one_way: float) -> Iterator[int]:
    with ThreadedLatencyProxy(HOST, port, one_way_delay=one_way) as proxy:
        yield proxy.port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, default=40.0, help="round trip through the proxy")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="per-port time limit (smtplib's too)"
    )
    args = parser.parse_args(argv)
    one_way = args.rtt_ms / 2000
    good = True
    with (
        tempfile.TemporaryDirectory() as scratch,
        DemoServer(Path(scratch) / "demo", oauth=False) as server,
        MisbehavingPorts() as bad,
    ):
        demo = server.settings
        ca = str(demo.ca_file)
        with (
            proxied(demo.tls_port, one_way) as tls_port,
            proxied(demo.starttls_port, one_way) as starttls_port,
            proxied(bad.silent(), one_way) as silent_port,
        ):
            answering = [tls_port, starttls_port]

            def mailkit(ports: list[int], hint: bool = True) -> ProbeReport:
                return probe(
                    HOST,
                    ports,
                    ca_file=ca,
                    timeout=args.timeout,
                    tls_ports=[tls_port] if hint else (),
                )

            def expected(report: ProbeReport) -> bool:
                verdict = report.verdict
                silent = report.port(silent_port)
                return (
                    verdict.port == tls_port
                    and verdict.security is Security.IMPLICIT_TLS
                    and verdict.trusted
                    and (silent is None or silent.outcome is Outcome.SILENT)
                )

            mailkit(answering)  # warm-up: imports, first handshakes
            with_silent, without, unhinted = [], [], []
            alone: dict[int, list[float]] = {port: [] for port in answering}
            seq_silent, seq_answering = [], []
            smtplib_alone: dict[int, list[float]] = {port: [] for port in answering}
            for _ in range(args.runs):
                seconds, report = timed(lambda: mailkit([*answering, silent_port]))
                with_silent.append(seconds)
                good &= expected(report)
                seconds, report = timed(lambda: mailkit(answering))
                without.append(seconds)
                good &= expected(report)
                seconds, report = timed(lambda: mailkit(answering, hint=False))
                unhinted.append(seconds)
                good &= expected(report)
                for port in answering:
                    alone[port].append(timed(partial(mailkit, [port]))[0])
                    seconds, ended = smtplib_port(port, port == tls_port, ca, args.timeout)
                    smtplib_alone[port].append(seconds)
                    good &= ended == "ok"
                seconds, ends = smtplib_sequential(
                    [(tls_port, True), (starttls_port, False)], ca, args.timeout
                )
                seq_answering.append(seconds)
                good &= ends == ["ok", "ok"]
            # The sequential probe with a silent port waits out its timeout: measured once.
            seconds, ends = smtplib_sequential(
                [(tls_port, True), (starttls_port, False), (silent_port, False)], ca, args.timeout
            )
            seq_silent.append(seconds)
            good &= ends[:2] == ["ok", "ok"] and ends[2] != "ok"

    slowest_alone = max(median(v) for v in alone.values())
    slowest_smtplib = max(median(v) for v in smtplib_alone.values())
    m_silent, m_without = median(with_silent), median(without)
    print(
        f"mailkit probe vs sequential smtplib probe; {args.rtt_ms:g} ms RTT proxy, median of "
        f"{args.runs} (smtplib with the silent port: 1 run), per-port time limit "
        f"{args.timeout:g} s"
    )
    print("")
    print("1. two answering ports + one silent port")
    print(f"   mailkit probe, time to verdict        {m_silent:8.3f} s")
    print(f"   smtplib, one port after another       {median(seq_silent):8.3f} s")
    print(f"   ratio smtplib / mailkit               {median(seq_silent) / m_silent:8.1f} x")
    print("2. two answering ports")
    print(f"   mailkit probe, time to verdict        {m_without:8.3f} s")
    print(f"   slowest port probed alone (mailkit)   {slowest_alone:8.3f} s")
    print(f"   slowest port probed alone (smtplib)   {slowest_smtplib:8.3f} s")
    print(f"   smtplib, one port after another       {median(seq_answering):8.3f} s")
    print(f"   ratio smtplib sequential / mailkit    {median(seq_answering) / m_without:8.1f} x")
    print("3. two answering ports, implicit TLS not named (found by a TLS hello)")
    print(f"   mailkit probe, time to verdict        {median(unhinted):8.3f} s")
    print("")
    silent_met = m_silent <= SILENT_GOAL_S
    ratio = m_without / slowest_alone
    print(
        f"goal: verdict <= {SILENT_GOAL_S:g} s with one silent port: {m_silent:.3f} s "
        f"-> {'met' if silent_met else 'NOT met'}"
    )
    print(
        f"goal: verdict <= {RATIO_GOAL:g}x the slowest answering port (none silent): "
        f"{ratio:.2f}x -> {'met' if ratio <= RATIO_GOAL else 'NOT met'}"
    )
    if not good:
        print("a probe did not find what it should (see above)", file=sys.stderr)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
