"""Bulk test-send against the real demo server, counted by a loopback proxy in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pandas as pd
import pytest

from mailkit.audit.bulk import BULK_COLUMNS, bulk_test, bulk_test_async
from mailkit.demo.server import DemoServer, DemoSettings
from mailkit.message import TEST_BODY_LINES, build_test_message
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.senders.smtp.plan import SmtpPlan, TlsContexts
from mailkit.settings import AuthType, Priority, Security, UserSettings
from mailkit.store import Store

pytestmark = pytest.mark.timeout(120)

#: How the 30 users sign in: the working account, and one of each scripted failure.
EXPECTED_CAUSE = {
    "demo": None,
    "wrong-password": "bad_credentials",
    "basic-auth-disabled": "basic_auth_disabled",
    "greylisted": "greylisted",
    "mailbox-full": "mailbox_full",
}


class CountingProxy:
    """Forwards loopback TCP to the server and counts the connections the server holds.

    A connection counts from the moment it reaches the server until one end has closed it. The
    client's end closes only after the server's goodbye (its 221, then over TLS its close_notify,
    which the client answers before closing), so an end from either side means the server has
    let the connection go; waiting for the server's TCP close to travel back through this proxy
    would count, for a moment, a connection the server is done with. Each end is counted the
    instant the proxy's transport sees it, before any newer connection can be counted.
    """

    def __init__(self, port: int) -> None:
        self.upstream_port = port
        self.live = 0
        self.peak = 0
        self.total = 0
        self.port = 0
        self._handlers: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CountingProxy]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            if self._handlers:  # every connection closed, both sockets, before the loop ends
                await asyncio.wait(self._handlers, timeout=10)
            await server.wait_closed()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.total += 1
        self.live += 1
        self.peak = max(self.peak, self.live)
        counted = True

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()

        def closed() -> None:
            nonlocal counted
            if counted:
                self.live -= 1
                counted = False

        for reader in (c_reader, s_reader):
            _on_eof(reader, closed)
        await asyncio.gather(
            pump(c_reader, s_writer), pump(s_reader, c_writer), return_exceptions=True
        )
        closed()  # the proxy gave up on it (a reset, an error)
        for writer in (c_writer, s_writer):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _on_eof(reader: asyncio.StreamReader, callback: Callable[[], None]) -> None:
    """Call ``callback`` when ``reader`` is fed its end, inside the transport's own read
    callback: before the tasks of connections accepted in the same round run."""
    feed_eof = reader.feed_eof

    def fed() -> None:
        feed_eof()
        callback()

    reader.feed_eof = fed  # type: ignore[method-assign]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path / "demo") as server:
        yield server.settings


def make_users(demo: DemoSettings, count: int) -> tuple[list[UserSettings], MemorySecretStore]:
    keys = list(EXPECTED_CAUSE)
    secrets = MemorySecretStore()
    users = []
    for i in range(count):
        account = demo.account(keys[i % len(keys)])
        code = f"u{i:02d}-{account.key}"
        users.append(demo.user(account).model_copy(update={"user_code": code}))
        secrets.set_password(secret_key("default", code), account.password, account.password)
    return users, secrets


def test_thirty_users_all_reported_never_above_the_server_limit(
    demo: DemoSettings, tmp_path: Path
) -> None:
    users, secrets = make_users(demo, 30)
    proxy = CountingProxy(demo.starttls_port)

    async def run(store: Store) -> pd.DataFrame:
        async with proxy.running():
            org = demo.org(port=proxy.port)
            return await bulk_test_async(
                org,
                users,
                to=lambda u: f"rcpt+{u.user_code}@example.org",
                secrets=secrets,
                store=store,
                per_server_limit=3,
                progress=False,
            )

    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        frame = asyncio.run(run(store))
        history = store.history_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(BULK_COLUMNS)
    assert list(frame["user_code"]) == [u.user_code for u in users]
    expected = [EXPECTED_CAUSE[code.split("-", 1)[1]] for code in frame["user_code"]]
    assert [c if isinstance(c, str) else None for c in frame["cause"]] == expected
    assert list(frame["ok"]) == [cause is None for cause in expected]
    assert not frame["cancelled"].any()
    assert frame.loc[frame["ok"], "message_id"].notna().all()
    assert proxy.total == 30
    assert proxy.peak == 3  # the limit was reached, and the server never saw more
    assert frame.attrs["peak_connections"] == {f"localhost:{proxy.port}": 3}
    assert sorted(history["user_code"]) == sorted(u.user_code for u in users)
    assert history["ok"].sum() == frame["ok"].sum() == 6
    # CPU per send: the run's process CPU time over the sends it made.
    assert frame.attrs["sends"] == 30
    assert frame.attrs["cpu_s"] > 0
    assert frame.attrs["cpu_ms_per_send"] == pytest.approx(
        frame.attrs["cpu_s"] * 1000 / 30, abs=0.001
    )
    assert frame.attrs["tls_contexts"] == 1  # 30 sends, one way of trusting: one context


def test_an_exception_in_one_send_becomes_a_row(demo: DemoSettings) -> None:
    users, secrets = make_users(demo, 3)

    def to(user: UserSettings) -> str:
        if user.user_code.startswith("u01"):
            raise RuntimeError("no address for this user")
        return "rcpt@example.org"

    frame = bulk_test(demo.org(), users, to=to, secrets=secrets, progress=False)
    assert list(frame["ok"]) == [True, False, False]
    broken = frame.iloc[1]
    assert broken["cause"] == "server_error"
    assert broken["title"] == "RuntimeError: no address for this user"
    assert frame.iloc[2]["cause"] == "basic_auth_disabled"


def test_cancel_starts_no_further_sends_and_lets_running_ones_finish(demo: DemoSettings) -> None:
    users, secrets = make_users(demo, 10)

    async def run() -> pd.DataFrame:
        cancel = asyncio.Event()
        calls = 0

        def to(user: UserSettings) -> str:
            nonlocal calls
            calls += 1
            if calls == 2:  # the second send is under way: no more may start
                cancel.set()
            return "rcpt@example.org"

        return await bulk_test_async(
            demo.org(),
            users,
            to=to,
            secrets=secrets,
            per_server_limit=2,
            progress=False,
            cancel=cancel,
        )

    frame = asyncio.run(run())
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["cancelled"]) == [False, False] + [True] * 8
    assert list(frame["ok"][:2]) == [True, False]  # demo works, wrong-password is diagnosed
    assert frame["cause"][2:].isna().all()
    assert frame["host"][2:].eq("localhost").all()
    assert frame.attrs["sends"] == 2  # cancelled rows are no sends: CPU is per real send
    assert frame.attrs["cpu_ms_per_send"] == pytest.approx(
        frame.attrs["cpu_s"] * 1000 / 2, abs=0.001
    )


@pytest.mark.parametrize("progress", [True, False])
def test_progress_bar_on_stderr_or_nothing(
    demo: DemoSettings, progress: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    users, secrets = make_users(demo, 5)
    frame = bulk_test(demo.org(), users, to="rcpt@example.org", secrets=secrets, progress=progress)
    assert len(frame) == 5
    err = capsys.readouterr().err
    if progress:
        assert "test sends" in err
        assert "5/5" in err
    else:
        assert err == ""


def _plan(**changes: object) -> SmtpPlan:
    values: dict[str, object] = {
        "host": "mail.example.test",
        "port": 587,
        "security": Security.STARTTLS,
        "auth": AuthType.PLAIN,
        "username": "u",
        "from_address": "u@example.test",
    }
    return SmtpPlan(**{**values, **changes})  # type: ignore[arg-type]


def test_a_run_shares_one_tls_context_per_way_of_trusting(
    tmp_path: Path, demo: DemoSettings
) -> None:
    contexts = TlsContexts()
    system = contexts.for_plan(_plan())
    assert contexts.for_plan(_plan(host="other.example.test", port=465)) is system
    ca = contexts.for_plan(_plan(ca_file=str(demo.ca_file)))
    assert ca is not system
    assert contexts.for_plan(_plan(ca_file=str(demo.ca_file), username="v")) is ca
    pinned = contexts.for_plan(_plan(pin_sha256="a" * 64))
    assert contexts.for_plan(_plan(pin_sha256="b" * 64)) is pinned  # the pin is checked later
    assert pinned.verify_mode is ssl.CERT_NONE
    assert system.verify_mode is ssl.CERT_REQUIRED
    assert contexts.for_plan(_plan(tls_min_version="1.3")) is not system
    assert len(contexts) == 4
    assert contexts.holds(_plan(ca_file=str(demo.ca_file), port=2525))
    assert not contexts.holds(_plan(ca_file=str(tmp_path / "other.pem")))


def test_messages_share_one_encoded_body_byte_for_byte_as_encoding_it_anew() -> None:
    first = build_test_message(sender="a@example.test", recipients=["r@example.org"])
    second = build_test_message(
        sender="b@example.test", recipients=["s@example.org"], priority=Priority.HIGH
    )
    assert first.message.get_payload() is second.message.get_payload()  # encoded once
    fresh = EmailMessage()
    for name, value in second.message.items():
        if not name.lower().startswith(("content-", "mime-")):
            fresh[name] = value
    lines = [f"{language} - {text}" for language, text in TEST_BODY_LINES]
    lines += ["", "If you can read every line above, this mail path keeps Unicode intact."]
    fresh.set_content("\n".join(lines) + "\n", charset="utf-8", cte="quoted-printable")
    assert second.as_bytes() == fresh.as_bytes(policy=SMTP)
    noted = build_test_message(sender="a@example.test", recipients=["r@example.org"], note="N")
    assert b"N\r\n" in noted.as_bytes()
    assert b"N\r\n" not in first.as_bytes()


def test_a_missing_ca_file_is_diagnosed_for_every_user_of_a_run(
    demo: DemoSettings, tmp_path: Path
) -> None:
    """Sharing contexts never skips the check of a CA file that no context could be made of."""
    users, secrets = make_users(demo, 3)
    org = demo.org().model_copy(update={"ca_file": str(tmp_path / "gone.pem")})
    frame = bulk_test(org, users, to="rcpt@example.org", secrets=secrets, progress=False)
    assert not frame["ok"].any()
    assert frame["phase"].eq("setup").all()
    assert frame.attrs["tls_contexts"] == 0
