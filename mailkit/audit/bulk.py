"""Bulk test-send: every user's test message at once, politely, as a DataFrame.

Sends run concurrently, but never more than ``per_server_limit`` at a time to one server
(the ``(host, port)`` of a user's effective settings) nor more than ``overall_limit`` in all:
a mail server that sees a burst of sign-ins from one address may throttle or block it, so the
default per server is conservative. One failure never stops the batch: every user gets a row,
and a send that raises becomes a ``server_error`` row instead of an exception.

A run builds what every send would otherwise build again: the TLS contexts (one per way of
trusting a server; the system store alone costs about 20 ms of CPU to load) are shared by all
its sends, and the test message's encoded body is made once (:mod:`mailkit.message`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from mailkit.outcome import Cause
from mailkit.resolve import effective
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secrets import SecretStore
from mailkit.senders.smtp.plan import TlsContexts
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.testsend import record, send_test_async

__all__ = [
    "BULK_COLUMNS",
    "DEFAULT_OVERALL_LIMIT",
    "DEFAULT_PER_SERVER_LIMIT",
    "bulk_test",
    "bulk_test_async",
]

#: Concurrent sends to one ``(host, port)``. Each user signs in once with their own account, so
#: per-account limits are not at stake; what a server counts is connections from one client
#: address. 16 is a third of Postfix's default per-client limit (``smtpd_client_connection_count_
#: limit`` = 50), leaving room for the office's own traffic. Lower it for a server known to be
#: stricter.
DEFAULT_PER_SERVER_LIMIT = 16
#: Concurrent sends in all, whatever the servers.
DEFAULT_OVERALL_LIMIT = 64

#: The result frame's columns, in order.
BULK_COLUMNS: tuple[str, ...] = (
    "user_code",
    "ok",
    "phase",
    "kind",
    "cause",
    "title",
    "host",
    "port",
    "auth_mechanism",
    "duration_ms",
    "message_id",
    "cancelled",
)

Recipient = str | Callable[[UserSettings], str]
_Server = tuple[str | None, int]


def _server_label(server: _Server) -> str:
    host, port = server
    return f"{host or '?'}:{port}"


def _result_row(user: UserSettings, server: _Server, result: TestResult) -> dict[str, Any]:
    diagnosis = result.diagnosis
    return {
        "user_code": user.user_code,
        "ok": result.ok,
        "phase": diagnosis.phase.value if diagnosis else None,
        "kind": diagnosis.kind.value if diagnosis else None,
        "cause": diagnosis.cause.value if diagnosis else None,
        "title": diagnosis.title if diagnosis else None,
        "host": result.context.host or server[0],
        "port": result.context.port or server[1],
        "auth_mechanism": result.auth_mechanism,
        "duration_ms": result.duration_ms,
        "message_id": result.message_id,
        "cancelled": False,
    }


def _other_row(
    user: UserSettings,
    server: _Server,
    *,
    cancelled: bool,
    title: str | None = None,
    duration_ms: float | None = None,
) -> dict[str, Any]:
    return {
        "user_code": user.user_code,
        "ok": False,
        "phase": None,
        "kind": None,
        "cause": None if cancelled else Cause.SERVER_ERROR.value,
        "title": title,
        "host": server[0],
        "port": server[1],
        "auth_mechanism": None,
        "duration_ms": duration_ms,
        "message_id": None,
        "cancelled": cancelled,
    }


class _Limits:
    """The semaphores and the in-flight counts (whose peaks tests and benchmarks check)."""

    def __init__(self, per_server: int, overall: int) -> None:
        if per_server < 1 or overall < 1:
            raise ValueError("per_server_limit and overall_limit must be at least 1")
        self.per_server = per_server
        self.overall = asyncio.Semaphore(overall)
        self.servers: dict[_Server, asyncio.Semaphore] = {}
        self.live: dict[_Server, int] = {}
        self.peak: dict[_Server, int] = {}

    def semaphore(self, server: _Server) -> asyncio.Semaphore:
        if server not in self.servers:
            self.servers[server] = asyncio.Semaphore(self.per_server)
        return self.servers[server]

    def enter(self, server: _Server) -> None:
        self.live[server] = self.live.get(server, 0) + 1
        self.peak[server] = max(self.peak.get(server, 0), self.live[server])

    def leave(self, server: _Server) -> None:
        self.live[server] -= 1


async def bulk_test_async(
    org: OrgSettings,
    users: Sequence[UserSettings],
    *,
    to: Recipient,
    secrets: SecretStore | None,
    profile: str = "default",
    store: Store | None = None,
    per_server_limit: int = DEFAULT_PER_SERVER_LIMIT,
    overall_limit: int = DEFAULT_OVERALL_LIMIT,
    progress: bool = True,
    cancel: asyncio.Event | None = None,
) -> pd.DataFrame:
    """Send every user's test message concurrently; one row per user, in the users' order.

    ``to`` is one address for all or a function of the user. Setting ``cancel`` starts no
    further send (those rows say ``cancelled``); sends already under way finish. With a
    ``store``, each outcome is appended to the profile's test history (cancelled ones are not).
    ``frame.attrs["peak_connections"]`` maps ``"host:port"`` to the most sends that were under
    way to that server at once; ``frame.attrs["cpu_ms_per_send"]`` is the process CPU time the
    run took divided by the sends it made (``"cpu_s"`` and ``"sends"`` beside it): what a send
    costs this machine, apart from waiting on the network.
    """
    cpu_started = time.process_time()
    limits = _Limits(per_server_limit, overall_limit)
    contexts = TlsContexts()
    bar = tqdm(total=len(users), desc="test sends", unit="user", disable=not progress)
    failed = 0

    async def one(user: UserSettings) -> dict[str, Any]:
        nonlocal failed
        eff = effective(org, user)
        server: _Server = (eff.host.casefold() if eff.host else None, eff.port)
        try:
            async with limits.semaphore(server), limits.overall:
                if cancel is not None and cancel.is_set():
                    return _other_row(user, server, cancelled=True)
                row = await _send_one(
                    org, user, server, limits, to, secrets, profile, store, contexts
                )
        finally:
            bar.update(1)
        if not row["ok"]:
            failed += 1
            bar.set_postfix(failed=failed, refresh=False)
        return row

    try:
        rows = await asyncio.gather(*(one(user) for user in users))
    finally:
        bar.close()
    frame = pd.DataFrame(rows, columns=list(BULK_COLUMNS))
    frame = frame.astype({"ok": bool, "cancelled": bool, "port": "Int64", "duration_ms": float})
    frame.attrs["peak_connections"] = {
        _server_label(server): peak for server, peak in limits.peak.items()
    }
    cpu_s = time.process_time() - cpu_started
    sends = int((~frame["cancelled"]).sum())
    frame.attrs["cpu_s"] = round(cpu_s, 6)
    frame.attrs["sends"] = sends
    frame.attrs["cpu_ms_per_send"] = round(cpu_s * 1000 / sends, 3) if sends else None
    frame.attrs["tls_contexts"] = len(contexts)
    return frame


async def _send_one(
    org: OrgSettings,
    user: UserSettings,
    server: _Server,
    limits: _Limits,
    to: Recipient,
    secrets: SecretStore | None,
    profile: str,
    store: Store | None,
    contexts: TlsContexts,
) -> dict[str, Any]:
    """One send inside its slot; whatever it raises becomes a row."""
    limits.enter(server)
    started = time.perf_counter()
    try:
        recipient = to(user) if callable(to) else to
        result = await send_test_async(
            org, user, to=[recipient], secrets=secrets, profile=profile, tls_contexts=contexts
        )
    except Exception as exc:  # one user's failure must not stop the batch
        title = f"{type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - started) * 1000
        if store is not None:
            store.record_test(
                user_code=user.user_code,
                ok=False,
                mode="smtp",
                host=server[0],
                port=server[1],
                cause=Cause.SERVER_ERROR.value,
                duration_ms=duration_ms,
                detail=title,
            )
        return _other_row(user, server, cancelled=False, title=title, duration_ms=duration_ms)
    finally:
        limits.leave(server)
    if store is not None:
        record(store, result, user_code=user.user_code)
    return _result_row(user, server, result)


def bulk_test(
    org: OrgSettings,
    users: Sequence[UserSettings],
    *,
    to: Recipient,
    secrets: SecretStore | None,
    profile: str = "default",
    store: Store | None = None,
    per_server_limit: int = DEFAULT_PER_SERVER_LIMIT,
    overall_limit: int = DEFAULT_OVERALL_LIMIT,
    progress: bool = True,
) -> pd.DataFrame:
    """Blocking :func:`bulk_test_async` (also inside a notebook's running loop).

    For cancellation use the async form: an :class:`asyncio.Event` belongs to one loop.
    """
    return run_sync(
        bulk_test_async(
            org,
            users,
            to=to,
            secrets=secrets,
            profile=profile,
            store=store,
            per_server_limit=per_server_limit,
            overall_limit=overall_limit,
            progress=progress,
        )
    )
