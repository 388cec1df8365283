"""How many round trips does an EWS test send cost? mailkit vs exchangelib's own send.

One send = sign-in + the test message through ``CreateItem`` with ``SendAndSaveCopy``, against
the local fake Exchange (mailkit.demo.ews, HTTPS with its own CA), reached through
:mod:`latency_proxy`, which delays every chunk by half the round-trip time in each direction.
Wall time divided by the RTT says how many round trips the client spent.

Measured in the same run, interleaved, median of ``--runs``, for NTLM and for Basic:

* mailkit's :class:`~mailkit.senders.ews.EwsSender` (Exchange 2013's schema, Sent Items by its
  distinguished id: the sign-in, then one ``CreateItem``);
* the baseline: exchangelib as its documentation shows it — ``Account`` +
  ``Message(...).send_and_save()`` — which first guesses the server version (``ConvertId``)
  and looks up Sent Items (two ``GetFolder``), trusting the fake's CA the way
  ``tests/ews_fixtures.py`` does (per protocol, nothing process-wide).

Each line also gives the HTTP requests the fake saw per send. Exit status 0 when every send
succeeded, 1 otherwise. Speed is reported, never asserted. Loopback only.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_ews_rtt.py [--rtt-ms 50] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from latency_proxy import ThreadedLatencyProxy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ews_fixtures import trust

from mailkit.demo.ews import FakeExchange
from mailkit.secret import Secret
from mailkit.senders.ews import EwsPlan, EwsSender
from mailkit.settings import AuthType

USER = "ews@example.com"
TO = "bob@example.com"
PROXY_LIFETIME = 600.0


@dataclass
class Case:
    name: str
    send: Callable[[str], bool]
    times_ms: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    failures: int = 0


def mailkit_send(fake: FakeExchange, auth: AuthType) -> Callable[[str], bool]:
    def send(url: str) -> bool:
        plan = EwsPlan(
            from_address=USER, username=USER, ews_url=url, auth=auth, ca_file=str(fake.ca_file)
        )
        return EwsSender.send(plan, to=[TO], password=Secret(fake.password)).ok

    return send


def exchangelib_send(fake: FakeExchange, auth_type: str) -> Callable[[str], bool]:
    from exchangelib import (  # type: ignore[import-untyped, unused-ignore]
        DELEGATE,
        Account,
        Configuration,
        Credentials,
        Mailbox,
        Message,
    )
    from exchangelib.protocol import (  # type: ignore[import-untyped, unused-ignore]
        FailFast,
        Protocol,
    )

    def send(url: str) -> bool:
        credentials = Credentials(USER, fake.password)
        config = Configuration(
            service_endpoint=url,
            credentials=credentials,
            auth_type=auth_type,
            retry_policy=FailFast(),
        )
        protocol = trust(Protocol(config=config), fake.ca_file)
        try:
            account = Account(
                primary_smtp_address=USER, config=config, autodiscover=False, access_type=DELEGATE
            )
            Message(
                account=account,
                subject="exchangelib baseline",
                body="baseline",
                to_recipients=[Mailbox(email_address=TO)],
            ).send_and_save()
        finally:
            protocol.close()
            Protocol.clear_cache()  # the next send starts cold, as mailkit's does
        return True

    return send


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from exchangelib import BASIC, NTLM  # type: ignore[import-untyped, unused-ignore]

    with tempfile.TemporaryDirectory() as folder, FakeExchange.with_demo_ca(folder) as fake:
        cases = [
            Case("mailkit EwsSender, NTLM", mailkit_send(fake, AuthType.NTLM)),
            Case("exchangelib send_and_save, NTLM", exchangelib_send(fake, NTLM)),
            Case("mailkit EwsSender, Basic", mailkit_send(fake, AuthType.LOGIN)),
            Case("exchangelib send_and_save, Basic", exchangelib_send(fake, BASIC)),
        ]
        for case in cases:  # warm-up: imports and first connections, not timed
            case.send(fake.ews_url)
        with ThreadedLatencyProxy(
            "127.0.0.1", fake.port, one_way_delay=args.rtt_ms / 2000, lifetime=PROXY_LIFETIME
        ) as proxy:
            url = f"https://127.0.0.1:{proxy.port}/EWS/Exchange.asmx"
            for _ in range(args.runs):
                for case in cases:  # interleaved: drift on the machine hits every case alike
                    fake.reset()
                    start = time.perf_counter()
                    ok = False
                    try:
                        ok = case.send(url)
                    except Exception as exc:  # the baseline raises; reported, not hidden
                        print(f"  {case.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    case.times_ms.append((time.perf_counter() - start) * 1000)
                    case.requests.append(len(fake.requests))
                    case.failures += not ok
    print(f"EWS test send through a {args.rtt_ms:g} ms RTT proxy, median of {args.runs}:")
    baseline: dict[str, float] = {}
    for case in cases:
        median = statistics.median(case.times_ms)
        trips = median / args.rtt_ms
        auth = case.name.rpartition(", ")[2]
        if case.name.startswith("exchangelib"):
            baseline[auth] = median
        print(
            f"  {case.name:34} {median:8.1f} ms  {trips:5.1f} RTT  "
            f"{statistics.median(case.requests):3.0f} requests  failures {case.failures}"
        )
    for case in cases:
        auth = case.name.rpartition(", ")[2]
        if case.name.startswith("mailkit") and auth in baseline:
            ratio = statistics.median(case.times_ms) / baseline[auth]
            print(f"  {auth}: mailkit takes {ratio:.2f}x exchangelib's send_and_save time")
    return 1 if any(case.failures for case in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
