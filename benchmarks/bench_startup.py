"""How long until mailkit answers? Start-up of ``import mailkit``, ``mailkit --help`` and a whole
``mailkit test``, against the cost of starting Python with the standard library's SMTP client.

Every command runs as a fresh process (that is what a user or a script pays), ``--runs`` times
after ``--warmup`` unmeasured runs, interleaved round by round so that noise hits all alike;
the table shows the median, the range and the ratio to ``python -c "import smtplib, ssl"``.

``mailkit test`` is timed twice. Once as a real send, end to end: a local aiosmtpd server on
127.0.0.1, started by this script, with STARTTLS (a trustme CA the client trusts through
``--ca-file``), AUTH PLAIN required after TLS, one recipient; its time is start-up *and* the
loopback send, so its ratio is an upper bound on the start-up ratio. Once with the same flags
against a loopback port that refuses the connection: start-up, validation, the connect attempt
and the diagnosis, without a TLS handshake or an SMTP dialog. That is the start-up the goal
means; both are judged against it. Two anchors make the same send: a Python one-liner with
``smtplib`` and, when it is installed, swaks (``swaks --version`` gives its bare start-up).
The server counts the messages it accepted; a run that exits non-zero or loses its message is
a failure (exit status 1). Speed is reported, never asserted. Loopback only.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_startup.py [--runs 15] [--warmup 2]
[--no-swaks]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
USER = "bench@example.com"
PASSWORD_ENV = "MAILKIT_BENCH_PASSWORD"  # noqa: S105  # the variable's name, not a password
#: The goal of issue 12: start-up within this many times ``python -c "import smtplib, ssl"``.
GOAL = 5.0


class _Counter:
    """Accepts every message and counts them: a run whose message never arrived failed."""

    def __init__(self) -> None:
        self.accepted = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.accepted += 1
        return "250 2.0.0 accepted"


def _free_port() -> int:
    # aiosmtpd's Controller cannot take port 0: its readiness check connects to the port given.
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class LocalServer:
    """aiosmtpd with STARTTLS and AUTH PLAIN after TLS, in a thread of this process."""

    def __init__(self, directory: Path) -> None:
        self.password = secrets.token_urlsafe(18)
        ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOST, "localhost").configure_cert(context)
        self.counter = _Counter()
        self.port = _free_port()
        self._controller = Controller(
            self.counter,
            hostname=HOST,
            port=self.port,
            server_hostname="bench.localhost",
            tls_context=context,
            require_starttls=True,
            auth_require_tls=True,
            auth_required=True,
            authenticator=self._authenticate,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and secrets.compare_digest(data.password, self.password.encode())
        )
        return AuthResult(success=ok, handled=False, auth_data=data)

    def __enter__(self) -> LocalServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass
class Command:
    """One command line to time; ``sends`` when each run must deliver one message, ``expect``
    the exit status and a word its output must hold when the command is meant to fail."""

    name: str
    argv: list[str]
    sends: bool = False
    expect: tuple[int, str] | None = None
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _mailkit_argv() -> list[str]:
    """The installed console script, as a user runs it; ``python -m`` where there is none."""
    script = Path(sys.executable).with_name("mailkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mailkit.cli"]


#: ``mailkit test``'s exit status when nothing accepts the connection, and the cause it names.
REFUSED = (2, "connection_refused")


def refusing_socket() -> socket.socket:
    """A loopback port that answers every connection with a reset: bound, never listening.
    Held open for the whole run, so no other process can take the port meanwhile."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    return sock


def commands(server: LocalServer, refused_port: int, swaks: str | None) -> list[Command]:
    python = sys.executable
    mailkit = _mailkit_argv()
    to = ["--to", "bob@example.org", "--from", USER]
    flags = [
        "--security", "starttls", "--auth", "plain", "--username", USER,
        "--ca-file", str(server.ca_file), "--password-env", PASSWORD_ENV, "--secrets", "none",
    ]  # fmt: skip
    mailkit_send = [*mailkit, "test", *to, "--host", HOST, "--port", str(server.port), *flags]
    mailkit_refused = [*mailkit, "test", *to, "--host", HOST, "--port", str(refused_port), *flags]
    smtplib_send = (
        "import os, smtplib, ssl\n"
        f"context = ssl.create_default_context(cafile={str(server.ca_file)!r})\n"
        f"with smtplib.SMTP({HOST!r}, {server.port}, local_hostname='bench.localhost') as s:\n"
        "    s.starttls(context=context)\n"
        f"    s.login({USER!r}, os.environ[{PASSWORD_ENV!r}])\n"
        f"    s.sendmail({USER!r}, ['bob@example.org'], b'Subject: bench\\r\\n\\r\\nhello\\r\\n')\n"
    )
    found = [
        Command('python -c "import smtplib, ssl"', [python, "-c", "import smtplib, ssl"]),
        Command("python -c 'import mailkit'", [python, "-c", "import mailkit"]),
        Command("mailkit --help", [*mailkit, "--help"]),
        Command("mailkit test (refused port)", mailkit_refused, expect=REFUSED),
        Command("mailkit test (a whole send)", mailkit_send, sends=True),
        Command("python smtplib (the same send)", [python, "-c", smtplib_send], sends=True),
    ]
    if swaks is not None:
        swaks_send = [
            swaks, *to, "--server", f"{HOST}:{server.port}", "--tls", "--auth", "PLAIN",
            "--auth-user", USER, "--auth-password", server.password, "--silent", "2",
        ]  # fmt: skip
        found += [
            Command("swaks --version", [swaks, "--version"]),
            Command("swaks (the same send)", swaks_send, sends=True),
        ]
    return found


def run_once(command: Command, server: LocalServer, env: dict[str, str], *, record: bool) -> None:
    before = server.counter.accepted
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        command.argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)
    problem = None
    if command.expect is not None:
        status, word = command.expect
        said = done.stdout.decode(errors="replace")
        if done.returncode != status or word not in said:
            problem = f"exit {done.returncode}, expected {status} and {word!r} in the output"
    elif done.returncode != 0:
        last = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        problem = f"exit {done.returncode}: {last[-1] if last else '(no output)'}"
    elif command.sends and server.counter.accepted != before + 1:
        problem = "the server received no message"
    if problem is not None:
        command.failures.append(problem)
    elif record:
        command.times.append(elapsed)
        command.cpu.append(cpu)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="measured runs per command")
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured runs per command first (at least 1)"
    )
    parser.add_argument("--no-swaks", action="store_true", help="leave swaks out")
    args = parser.parse_args(argv)
    args.warmup = max(args.warmup, 1)  # the first run compiles and caches every module
    # aiosmtpd 1.4 logs a warning about its own deprecated attribute on every AUTH it handles.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    swaks = None if args.no_swaks else shutil.which("swaks")

    with tempfile.TemporaryDirectory(prefix="mailkit-bench-startup-") as tmp:
        server = LocalServer(Path(tmp))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILKIT_")}
        env[PASSWORD_ENV] = server.password
        env["HOME"] = tmp  # no profile or keyring of the person running the benchmark
        # Compiled modules cached as an installed package has them (pip writes .pyc files), in
        # a folder of this run: the warm-up fills it, the measured runs read it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        with server, refusing_socket() as refused:
            table = commands(server, refused.getsockname()[1], swaks)
            for round_ in range(args.warmup + args.runs):
                for command in table:
                    run_once(command, server, env, record=round_ >= args.warmup)
    report(table, args.runs, args.warmup, swaks)
    return 1 if any(c.failures for c in table) else 0


def report(table: list[Command], runs: int, warmup: int, swaks: str | None) -> None:
    print(
        f"Start-up, fresh process per run: median of {runs} runs after {warmup} warm-up(s), "
        f"interleaved; Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load average "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    print("The sends go to a local aiosmtpd (STARTTLS, AUTH PLAIN, 1 recipient) on loopback;")
    print("the refused port is a loopback port nothing listens on (same flags, no TLS or SMTP).")
    print("CPU ms (user + system of the process) varies less than wall time on a busy machine.")
    anchor = _median(table[0].times)
    anchor_cpu = _median(table[0].cpu)
    print(
        f"\n{'command':<32} {'wall ms':>8} {'range ms':>10} {'ratio':>7} "
        f"{'CPU ms':>8} {'CPU ratio':>9}"
    )
    for command in table:
        if not command.times:
            print(f"{command.name:<32} {'FAILED':>8}")
            continue
        wall, cpu = _median(command.times), _median(command.cpu)
        span = f"{min(command.times) * 1000:.0f}-{max(command.times) * 1000:.0f}"
        print(
            f"{command.name:<32} {wall * 1000:>8.1f} {span:>10} {wall / anchor:>6.2f}x "
            f"{cpu * 1000:>8.1f} {cpu / anchor_cpu:>8.2f}x"
        )
    print(f"\nRatios are to {table[0].name}.")
    if swaks is None:
        print("swaks is not installed: its rows are left out (Debian: apt-get install swaks).")
    by_name = {c.name: c for c in table}
    print(f"Goal (issue 12): mailkit --help and mailkit test within {GOAL:g}x that, in wall time.")
    print("mailkit test's start-up is the refused-port run; the whole send adds the loopback send.")
    print(
        f"CPU time is the steadier measure on a busy machine (load average above {os.cpu_count()}"
        "): a verdict is given for both."
    )
    for name in ("mailkit --help", "mailkit test (refused port)", "mailkit test (a whole send)"):
        command = by_name[name]
        if command.times:
            ratio = _median(command.times) / anchor
            cpu_ratio = _median(command.cpu) / anchor_cpu
            print(
                f"  {name}: {ratio:.2f}x wall ({_verdict(ratio)} the goal of {GOAL:g}x), "
                f"{cpu_ratio:.2f}x CPU ({_verdict(cpu_ratio)} it)"
            )
    swaks_send = by_name.get("swaks (the same send)")
    ours = by_name["mailkit test (a whole send)"]
    if swaks_send is not None and swaks_send.times and ours.times:
        print(
            "  mailkit test / swaks, the same send: "
            f"{_median(ours.times) / _median(swaks_send.times):.2f}x wall"
        )
    for command in table:
        for problem in sorted(set(command.failures)):
            count = command.failures.count(problem)
            print(f"FAILED {command.name} ({count}x): {problem}")


def _verdict(ratio: float) -> str:
    return "meets" if ratio <= GOAL else "MISSES"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


if __name__ == "__main__":
    sys.exit(main())
