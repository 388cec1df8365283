"""A private PostgreSQL cluster on loopback: the real server behind the SQL audit source tests.

Everything lives in one temporary directory owned by the ``postgres`` user (data, socket, log);
the server listens on 127.0.0.1 only, on a free port, with ``trust`` authentication, and is
stopped (``-m fast``) when :func:`running_postgres` exits. Use it in a module-scoped fixture;
it applies the availability policy of :func:`require_postgres` (fail in CI, skip elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "BIN_DIR",
    "PostgresServer",
    "require_postgres",
    "running_postgres",
    "unavailable_reason",
]

#: Debian's PostgreSQL 15 binaries (not on PATH: Debian wraps them in pg_ctlcluster).
BIN_DIR = Path("/usr/lib/postgresql/15/bin")
_OS_USER = "postgres"
_TIMEOUT = 30.0  # seconds for any one command; each normally takes well under one


@dataclass(frozen=True)
class PostgresServer:
    """Where a running private cluster listens; ``url`` is a SQLAlchemy URL for ``database``."""

    host: str
    port: int
    user: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{self.database}"


def _binary(name: str) -> Path | None:
    path = BIN_DIR / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def unavailable_reason() -> str | None:
    """Why a private PostgreSQL cannot run here, or None when it can."""
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if _binary(name) is None]
    if missing:
        return (
            f"PostgreSQL 15 ({', '.join(missing)}) not installed under {BIN_DIR}: `make test` "
            "installs them (as root on Debian, from .ci/system-packages.txt)"
        )
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError:
        return f"no {_OS_USER!r} system user: reinstall the postgresql package (`make test`)"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != _OS_USER:
        return "the private PostgreSQL runs as the postgres user: run the tests as root"
    return None


def require_postgres() -> None:
    """Skip without PostgreSQL, but fail under ``CI=true``: CI must never skip it."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"real-server tests cannot run: {reason} (CI=true never skips)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(*args: str) -> None:
    """Run a PostgreSQL binary as the postgres user; a failure shows its output."""
    command = list(args)
    if os.geteuid() == 0:
        command = ["runuser", "-u", _OS_USER, "--", *command]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=_TIMEOUT, check=False, cwd="/"
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )


@contextlib.contextmanager
def running_postgres(
    database: str = "appdb", user: str = "mailkit_test"
) -> Iterator[PostgresServer]:
    """A started cluster with an empty ``database`` owned by superuser ``user``; always stopped."""
    require_postgres()
    directory = Path(tempfile.mkdtemp(prefix="mailkit-postgres-"))
    account = pwd.getpwnam(_OS_USER)
    if os.geteuid() == 0:
        os.chown(directory, account.pw_uid, account.pw_gid)
    data, log = directory / "data", directory / "log"
    pg_ctl = str(BIN_DIR / "pg_ctl")
    started = False
    try:
        _run(
            str(BIN_DIR / "initdb"), "-D", str(data), "-A", "trust", "-U", user,
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off"
        _run(pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "20", "start")
        started = True
        _run(str(BIN_DIR / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database)
        yield PostgresServer("127.0.0.1", port, user, database)
    finally:
        if started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                _run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "20", "stop")
        shutil.rmtree(directory, ignore_errors=True)
