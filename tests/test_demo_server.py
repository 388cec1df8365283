"""The demo mail server, driven through mailkit's real sender, its mailbox and its command line."""

from __future__ import annotations

import asyncio
import json
import logging
import mailbox
import os
import re
import selectors
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from smtpd_servers import Credentials

from mailkit.demo import (
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DEMO_TOKEN,
    DEMO_USER,
    DIRECTORY_ENV,
    PASSWORD_ENV,
    DemoAccount,
    DemoServer,
    DemoServerError,
    DemoSettings,
    accounts_table,
    default_directory,
    ensure_running,
    message_text,
    read_mailbox,
    read_message,
    settings,
)
from mailkit.message import TEST_BODY_LINES, TEST_SUBJECT
from mailkit.outcome import Cause
from mailkit.result import TestResult
from mailkit.secret import Secret
from mailkit.testsend import send_test

pytestmark = pytest.mark.timeout(60)

RECIPIENT = "bob@example.com"
FAILURES = [a for a in DEMO_ACCOUNTS if a.cause is not None]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    """One server for the sending tests; each finds its own message by Message-ID."""
    with DemoServer(tmp_path_factory.mktemp("demo")) as server:
        yield server.settings


def send(
    demo: DemoSettings,
    account: DemoAccount | str = "demo",
    *,
    starttls: bool = True,
    auth: str = "auto",
    password: str | None = None,
    token: str | None = None,
) -> TestResult:
    """A test send through the real sender, as the given demo account."""
    chosen = demo.account(account)
    return send_test(
        demo.org(starttls, auth=auth),
        demo.user(chosen),
        to=[RECIPIENT],
        password=Secret(password if password is not None else chosen.password),
        token=(lambda: Secret(token)) if token is not None else None,
    )


# --------------------------------------------------------------------------- sending


@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit_tls"])
@pytest.mark.parametrize("auth", ["plain", "login", "cram_md5", "xoauth2"])
def test_every_mechanism_on_both_ports_lands_in_the_mailbox(
    demo: DemoSettings, starttls: bool, auth: str
) -> None:
    result = send_test(
        demo.org(starttls, auth=auth),
        to=[RECIPIENT],
        password=Secret(DEMO_PASSWORD),
        token=(lambda: Secret(DEMO_TOKEN)) if auth == "xoauth2" else None,
    )
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert result.auth_mechanism == auth.upper().replace("_", "-")
    assert result.tls is not None
    assert result.tls.verified_by == f"CA file {demo.ca_file}"

    box = read_mailbox(demo.directory)
    row = box[box["message_id"] == result.message_id]
    assert len(row) == 1
    assert row["auth_user"].iloc[0] == DEMO_USER
    assert row["tls"].iloc[0].startswith("TLSv1.")
    assert row["subject"].iloc[0] == TEST_SUBJECT  # decoded from its encoded-word
    assert row["to"].iloc[0] == RECIPIENT
    assert DEMO_USER in row["from"].iloc[0]
    body = message_text(row["path"].iloc[0])
    for _, line in TEST_BODY_LINES:
        assert line in body


def test_the_settings_token_method_is_a_token_provider(demo: DemoSettings) -> None:
    result = send_test(demo.org(auth="xoauth2"), to=[RECIPIENT], token=demo.token)
    assert result.ok
    assert result.auth_mechanism == "XOAUTH2"


@pytest.mark.parametrize("account", FAILURES, ids=[a.key for a in FAILURES])
@pytest.mark.parametrize("auth", ["auto", "login", "cram_md5"])
def test_each_failure_account_leads_to_its_diagnosis(
    demo: DemoSettings, account: DemoAccount, auth: str
) -> None:
    result = send(demo, account, auth=auth)
    assert not result.ok
    assert result.diagnosis is not None
    assert (result.diagnosis.cause, result.diagnosis.phase) == (account.cause, account.phase)
    scripted = re.match(r"(\d{3})[ -](\d\.\d+\.\d+) ", account.reply or "")
    assert scripted is not None
    assert (result.diagnosis.code, result.diagnosis.enhanced) == (
        int(scripted.group(1)),
        scripted.group(2),
    )


def test_failure_accounts_fail_over_implicit_tls_too(demo: DemoSettings) -> None:
    causes = {a.key: send(demo, a, starttls=False).diagnosis for a in FAILURES}
    assert {k: d.cause if d else None for k, d in causes.items()} == {
        a.key: a.cause for a in FAILURES
    }


def test_failure_accounts_with_xoauth2(demo: DemoSettings) -> None:
    """The app-password refusal is about passwords: OAuth is its fix and gets through. The
    others refuse OAuth sign-ins just as they refuse passwords."""
    for account in FAILURES:
        result = send(demo, account, auth="xoauth2", token=DEMO_TOKEN)
        if account.key in ("app-password", "wrong-password"):
            assert result.ok, account.key
        else:
            assert result.diagnosis is not None
            assert result.diagnosis.cause is account.cause, account.key


@pytest.mark.parametrize("auth", ["auto", "plain", "login", "cram_md5"])
@pytest.mark.parametrize("user", [DEMO_USER, "greylisted@example.com", "nobody@example.com"])
def test_a_wrong_password_is_bad_credentials(demo: DemoSettings, user: str, auth: str) -> None:
    org = demo.org(auth=auth, username=user)
    result = send_test(org, to=[RECIPIENT], password=Secret("not-the-demo-password"))
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.BAD_CREDENTIALS
    assert (result.diagnosis.code, result.diagnosis.enhanced) == (535, "5.7.8")


def test_a_wrong_token_is_an_invalid_oauth_token(demo: DemoSettings) -> None:
    result = send(demo, auth="xoauth2", token="expired-token")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.OAUTH_TOKEN_INVALID


def test_starttls_is_required_before_auth_and_mail(demo: DemoSettings) -> None:
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    with smtplib.SMTP(demo.host, demo.starttls_port, timeout=10) as client:
        client.ehlo("client.example.com")
        assert client.has_extn("starttls")
        assert client.has_extn("pipelining")
        assert not client.has_extn("auth")
        assert client.mail(DEMO_USER)[0] == 530
        client.starttls(context=context)
        client.ehlo("client.example.com")
        assert not client.has_extn("starttls")
        assert client.has_extn("pipelining")
        assert set(client.esmtp_features["auth"].split()) == {
            "PLAIN",
            "LOGIN",
            "CRAM-MD5",
            "XOAUTH2",
        }
        code, reply = client.mail(DEMO_USER)
        assert code == 530  # signed in or nothing: a submission server, not a relay
        assert b"Authentication required" in reply


def test_implicit_tls_port_offers_auth_at_once(demo: DemoSettings) -> None:
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    with smtplib.SMTP_SSL(demo.host, demo.tls_port, context=context, timeout=10) as client:
        client.ehlo("client.example.com")
        assert not client.has_extn("starttls")
        assert client.has_extn("pipelining")
        assert "XOAUTH2" in client.esmtp_features["auth"]
        client.login(DEMO_USER, DEMO_PASSWORD)
        assert client.mail(DEMO_USER)[0] == 250


def test_certificate_names_localhost_and_the_loopback_address(demo: DemoSettings) -> None:
    result = send(demo)
    assert result.tls is not None
    assert set(result.tls.san) == {"localhost", "127.0.0.1"}
    assert "mailkit demo CA" in result.tls.issuer


def test_secrets_never_reach_the_log(demo: DemoSettings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for auth in ("plain", "login", "cram_md5"):
        assert send(demo, auth=auth).ok
    assert send(demo, auth="xoauth2", token=DEMO_TOKEN).ok
    assert not send(demo, "app-password").ok
    leaks = Credentials(DEMO_USER, DEMO_PASSWORD, DEMO_TOKEN).leaks_in(caplog.text)
    assert leaks == []
    assert "AUTH PLAIN" in caplog.text  # aiosmtpd did log the dialog, masked
    assert "login_data is deprecated" not in caplog.text


def test_works_from_inside_a_running_event_loop(tmp_path: Path) -> None:
    """A Jupyter kernel's loop is already running when a cell starts the server and sends."""

    async def cell() -> TestResult:
        with DemoServer(tmp_path) as server:
            return send_test(server.settings.org(), to=[RECIPIENT], password=Secret(DEMO_PASSWORD))

    assert asyncio.run(cell()).ok
    assert len(read_mailbox(tmp_path)) == 1


# --------------------------------------------------------------------------- the mailbox


def test_mailbox_files_are_whole_eml_files_with_trace_headers(demo: DemoSettings) -> None:
    result = send(demo)
    box = read_mailbox(demo.directory)
    path = Path(box.loc[box["message_id"] == result.message_id, "path"].iloc[0])
    assert path.parent == demo.mailbox / "new"
    assert path.name in mailbox.Maildir(demo.mailbox, create=False)  # a real Maildir
    assert list((demo.mailbox / "tmp").iterdir()) == []
    message = read_message(path)
    assert message["Return-Path"] == f"<{DEMO_USER}>"
    assert "with ESMTPSA" in str(message["Received"])
    assert f"smtp.auth={DEMO_USER}" in str(message["Authentication-Results"])
    assert str(message["Subject"]) == TEST_SUBJECT
    assert "Это тестовое сообщение." in message_text(message)
    row = box[box["message_id"] == result.message_id].iloc[0]
    assert row["size"] == path.stat().st_size
    assert str(box["received"].dtype).startswith("datetime64")
    assert str(box["received"].dt.tz) == "UTC"


def test_the_mailbox_is_a_maildir_a_mail_client_can_share(tmp_path: Path) -> None:
    """A client that reads the demo mailbox moves a message to cur/ with flags, as Maildir
    clients do: mailkit still finds it, at its new path, and new mail lands beside it."""
    with DemoServer(tmp_path, oauth=False) as server:
        first = send(server.settings)
        box = mailbox.Maildir(server.mailbox_path, create=False)
        (key,) = box.keys()
        seen = box.get_message(key)
        seen.set_subdir("cur")
        seen.add_flag("S")
        box[key] = seen
        second = send(server.settings)
        table = read_mailbox(tmp_path)
    assert list(table["message_id"]) == [first.message_id, second.message_id]
    moved = Path(table["path"].iloc[0])
    assert moved == server.mailbox_path / "cur" / f"{key}:2,S"
    assert Path(table["path"].iloc[1]).parent == server.mailbox_path / "new"
    assert read_message(moved)["Message-ID"] == first.message_id


def test_mailbox_lists_oldest_first_and_accepts_either_directory(demo: DemoSettings) -> None:
    ids = [send(demo).message_id for _ in range(3)]
    box = read_mailbox(demo.mailbox)
    assert list(box["message_id"].iloc[-3:]) == ids
    assert box["received"].is_monotonic_increasing


def test_empty_mailbox_is_an_empty_table(tmp_path: Path) -> None:
    box = read_mailbox(tmp_path)
    assert len(box) == 0
    assert list(box.columns) == [
        "received",
        "from",
        "to",
        "subject",
        "message_id",
        "size",
        "auth_user",
        "tls",
        "via",
        "path",
    ]


def test_refused_mail_is_not_stored(demo: DemoSettings) -> None:
    before = len(read_mailbox(demo.directory))
    for account in FAILURES:
        send(demo, account)
    assert len(read_mailbox(demo.directory)) == before


# --------------------------------------------------------------------------- accounts as data


def test_accounts_are_data_a_notebook_can_show() -> None:
    table = accounts_table()
    assert list(table.columns) == ["key", "user", "password", "shows", "cause", "phase", "reply"]
    assert table["key"].is_unique
    assert set(table["cause"].dropna()) == {
        "bad_credentials",
        "app_password_required",
        "basic_auth_disabled",
        "greylisted",
        "mailbox_full",
        "send_as_denied",
    }
    for account in DEMO_ACCOUNTS:
        assert account.user.endswith("@example.com")
        assert (account.cause is None) == (account.phase is None) == (account.reply is None)
        assert DEMO_PASSWORD not in repr(account)


def test_settings_round_trip_and_hide_secrets_in_repr(demo: DemoSettings) -> None:
    assert DemoSettings.from_dict(json.loads(json.dumps(demo.as_dict()))) == demo
    assert DEMO_PASSWORD not in repr(demo)
    assert DEMO_TOKEN not in repr(demo)
    with pytest.raises(KeyError, match="greylisted"):
        demo.account("no-such-account")
    org = demo.org(starttls=False)
    assert (org.host, org.port, org.security, org.ca_file) == (
        "localhost",
        demo.tls_port,
        "implicit_tls",
        str(demo.ca_file),
    )
    user = demo.user("greylisted")
    assert (user.username, user.from_address, user.override_enabled) == (
        "greylisted@example.com",
        "greylisted@example.com",
        True,
    )


# --------------------------------------------------------------------------- lifecycle


def test_demo_json_lives_exactly_as_long_as_the_server(tmp_path: Path) -> None:
    assert settings(tmp_path) is None
    server = DemoServer(tmp_path)
    started = server.start()
    assert server.start() == started  # a second start() is a no-op
    data = json.loads((tmp_path / "demo.json").read_text("utf-8"))
    assert data["host"] == "localhost"
    assert data["pid"] == os.getpid()
    assert (data["starttls_port"], data["tls_port"]) == (started.starttls_port, started.tls_port)
    assert Path(data["ca_file"]) == tmp_path / "ca.pem"
    assert Path(data["mailbox"]) == tmp_path / "mailbox"
    assert {a["user"] for a in data["accounts"]} >= {DEMO_USER, "greylisted@example.com"}
    assert settings(tmp_path) == started
    server.stop()
    assert not (tmp_path / "demo.json").exists()
    assert settings(tmp_path) is None
    server.stop()  # idempotent
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", started.starttls_port)) != 0


def test_a_stale_demo_json_is_ignored_and_replaced(tmp_path: Path) -> None:
    with DemoServer(tmp_path) as server:
        stale = server.settings.as_dict()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    stale["pid"] = int(dead.stdout)
    (tmp_path / "demo.json").write_text(json.dumps(stale), "utf-8")
    assert settings(tmp_path) is None  # the process is gone (and so is the port)
    with ensure_running(tmp_path) as handle:
        assert handle.started_here
        assert settings(tmp_path) == handle.settings
    assert not (tmp_path / "demo.json").exists()


def test_ensure_running_reuses_a_running_server(tmp_path: Path) -> None:
    with DemoServer(tmp_path) as server:
        handle = ensure_running(tmp_path)
        assert not handle.started_here
        assert handle.settings == server.settings
        handle.stop()  # not ours: leaves the server alone
        assert settings(tmp_path) == server.settings
        result = send_test(handle.org(), to=[RECIPIENT], password=Secret(DEMO_PASSWORD))
        assert result.ok
        assert list(handle.mailbox()["message_id"]) == [result.message_id]


def test_ensure_running_starts_one_when_none_runs(tmp_path: Path) -> None:
    handle = ensure_running(tmp_path)
    try:
        assert handle.started_here
        assert handle.server is not None
        assert handle.server.running
        result = send_test(
            handle.org(), handle.user("demo"), to=[RECIPIENT], password=Secret(DEMO_PASSWORD)
        )
        assert result.ok
    finally:
        handle.stop()
    assert settings(tmp_path) is None


def test_a_second_server_for_the_same_directory_is_refused(tmp_path: Path) -> None:
    with DemoServer(tmp_path), pytest.raises(DemoServerError, match="already uses"):
        DemoServer(tmp_path).start()


@contextmanager
def _taken_port() -> Iterator[int]:
    """A loopback port another socket is listening on, for as long as the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield int(taken.getsockname()[1])


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("tls_port", ""),
        ("oauth_port", " for the fake OAuth"),
        ("ews_port", " for the fake Exchange"),
    ],
)
def test_a_taken_port_is_a_clear_error(tmp_path: Path, option: str, named: str) -> None:
    with _taken_port() as port, pytest.raises(DemoServerError, match=f"port {port}{named}"):
        DemoServer(tmp_path, **{option: port}).start()  # type: ignore[arg-type]
    assert not (tmp_path / "demo.json").exists()


def test_fixed_ports_are_used_as_given(tmp_path: Path) -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            ports.append(free.getsockname()[1])
    with DemoServer(tmp_path, starttls_port=ports[0], tls_port=ports[1]) as server:
        assert (server.settings.starttls_port, server.settings.tls_port) == tuple(ports)


# --------------------------------------------------------------------------- the command line


def _read_line(stream: object, timeout: float) -> str:
    """One line from a child's stdout, or fail after ``timeout`` seconds (never hang)."""
    assert hasattr(stream, "readline")
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not selector.select(timeout):
            pytest.fail(f"no output from mailkit demo-server within {timeout} s")
    line: str = stream.readline()
    return line


@pytest.mark.parametrize(
    ("as_json", "stop_with"),
    [(True, signal.SIGTERM), (False, signal.SIGINT)],
    ids=["json-sigterm", "text-ctrl-c"],
)
def test_command_line_serves_until_signalled(
    tmp_path: Path, as_json: bool, stop_with: signal.Signals
) -> None:
    exe = Path(sys.executable).with_name("mailkit")
    argv = [str(exe), "demo-server", "--dir", str(tmp_path), *(["--json"] if as_json else [])]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            first = _read_line(proc.stdout, 30)
            if as_json:
                printed = DemoSettings.from_dict(json.loads(first))
                assert printed.pid == proc.pid
            else:
                assert first.startswith("mailkit demo mail server")
            found = settings(tmp_path)
            assert found is not None
            assert found.pid == proc.pid
            if as_json:
                assert found == printed
            handle = ensure_running(tmp_path)  # another process's server is reused
            assert not handle.started_here
            result = send_test(handle.org(), to=[RECIPIENT], password=Secret(DEMO_PASSWORD))
            assert result.ok
            proc.send_signal(stop_with)
            code = proc.wait(timeout=20)
            # Not communicate(): it reads the pipes directly and would miss what readline
            # already buffered.
            assert proc.stdout is not None
            assert proc.stderr is not None
            out, err = proc.stdout.read(), proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, err
    assert err == ""
    if not as_json:
        assert str(found.starttls_port) in first + out
    assert not (tmp_path / "demo.json").exists()
    assert list(read_mailbox(tmp_path)["message_id"]) == [result.message_id]


def test_command_line_reports_a_taken_port(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mailkit")
    with _taken_port() as taken:
        port = str(taken)
        argv = [str(exe), "demo-server", "--dir", str(tmp_path), "--starttls-port", port]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith("mailkit: error: cannot listen on 127.0.0.1 port " + port)
    assert "Traceback" not in done.stderr


def test_a_private_password_is_never_printed_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-Demo-Pw-31!"
    monkeypatch.setenv(PASSWORD_ENV, canary)
    with DemoServer(tmp_path) as server:
        demo = server.settings
        assert demo.password is None
        assert demo.password_secret().reveal() == canary
        assert canary not in demo.to_text()
        assert canary not in (tmp_path / "demo.json").read_text()
        assert canary not in accounts_table().to_string()
        good = send_test(demo.org(), to=["bob@example.org"], password=demo.password_secret())
        public = send_test(demo.org(), to=["bob@example.org"], password=Secret(DEMO_PASSWORD))
    assert good.ok, good.diagnosis and good.diagnosis.to_text()
    assert public.diagnosis is not None
    assert public.diagnosis.cause.value == "bad_credentials"


# ---------------------------------------------------------------------- the fake OAuth provider


def test_settings_point_clients_at_the_fake_oauth_provider(demo: DemoSettings) -> None:
    assert demo.oauth_url is not None
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", demo.oauth_url)
    assert demo.api_url == demo.oauth_url
    # The consent page opens in a browser: plain HTTP on loopback, no CA to trust; tokens
    # and APIs stay on HTTPS.
    assert demo.oauth_browser_url is not None
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", demo.oauth_browser_url)
    installed = demo.google_client_config()["installed"]
    assert (installed["auth_uri"], installed["token_uri"]) == (
        f"{demo.oauth_browser_url}/o/oauth2/auth",
        f"{demo.oauth_url}/token",
    )
    assert DemoSettings.from_dict(demo.as_dict()).oauth_browser_url == demo.oauth_browser_url
    assert demo.oauth_browser_url in demo.to_text()
    assert installed["client_secret"] == "demo-client-secret"
    assert demo.microsoft_authority() == f"{demo.oauth_url}/demo-tenant"
    assert demo.microsoft_authority("common") == f"{demo.oauth_url}/common"
    assert json.loads((demo.directory / "demo.json").read_text())["oauth_url"] == demo.oauth_url
    assert demo.oauth_url in demo.to_text()
    # The same CA as SMTP: trusting ca.pem is enough for both.
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    port = int(demo.oauth_url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() is not None


def test_an_older_demo_json_without_oauth_still_reads(demo: DemoSettings) -> None:
    data = demo.as_dict()
    del data["oauth_url"]
    older = DemoSettings.from_dict(data)
    assert older.oauth_url is None
    assert "OAuth" not in older.to_text()
    with pytest.raises(DemoServerError, match="without the fake OAuth provider"):
        older.google_client_config()


def test_the_fake_oauth_provider_can_be_left_out(tmp_path: Path) -> None:
    with DemoServer(tmp_path, oauth=False) as server:
        assert server.settings.oauth_url is None
        with pytest.raises(DemoServerError, match="not running"):
            _ = server.oauth
        result = send(server.settings, auth="xoauth2", token=DEMO_TOKEN)
    assert result.ok


def test_the_fake_oauth_provider_stops_with_the_server(tmp_path: Path) -> None:
    with DemoServer(tmp_path) as server:
        port = server.oauth.port
        assert server.settings.oauth_url == f"https://127.0.0.1:{port}"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_command_line_prints_the_oauth_url(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    exe = Path(sys.executable).with_name("mailkit")
    argv = [str(exe), "demo-server", "--dir", str(tmp_path), "--oauth-port", str(port)]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            first = _read_line(proc.stdout, 30)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
            assert proc.stdout is not None
            lines = (first + proc.stdout.read()).splitlines()
        finally:
            if proc.poll() is None:
                proc.kill()
    oauth = [line for line in lines if line.strip().startswith("OAuth / APIs")]
    assert len(oauth) == 1
    assert f"https://127.0.0.1:{port}" in oauth[0]
    assert "fake of Google's and Microsoft's" in oauth[0]


# ------------------------------------------------------------- a client refusing the certificate


def _refuse_implicit_tls(port: int, context: ssl.SSLContext) -> None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(sock, server_hostname="localhost")


def _refuse_starttls(port: int, context: ssl.SSLContext) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example")
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=context)


def test_a_client_refusing_the_certificate_is_one_console_line(tmp_path: Path) -> None:
    """Implicit TLS, STARTTLS and the fake provider's HTTPS: each refusal is exactly one line
    on the demo console (stderr of ``mailkit demo-server``), and never a traceback."""
    exe = Path(sys.executable).with_name("mailkit")
    argv = [str(exe), "demo-server", "--dir", str(tmp_path), "--json"]
    untrusting = ssl.create_default_context()  # the system's CAs, not the demo's
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            demo = DemoSettings.from_dict(json.loads(_read_line(proc.stdout, 30)))
            assert demo.oauth_url is not None
            https_port = int(demo.oauth_url.rsplit(":", 1)[1])
            _refuse_implicit_tls(demo.tls_port, untrusting)
            _refuse_starttls(demo.starttls_port, untrusting)
            _refuse_implicit_tls(https_port, untrusting)
            _refuse_starttls(demo.starttls_port, untrusting)  # a second time: a second line
            # The server carries on: a client that trusts the CA still sends.
            result = send_test(demo.org(), to=[RECIPIENT], password=demo.password_secret())
            assert result.ok, result.diagnosis and result.diagnosis.to_text()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            assert proc.stderr is not None
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 4, err
    expected = [
        f"TLS port {demo.tls_port}:",
        f"STARTTLS port {demo.starttls_port}:",
        f"HTTPS port {https_port}: a client from 127.0.0.1:",
        f"STARTTLS port {demo.starttls_port}:",
    ]
    for line, where in zip(lines, expected, strict=True):
        assert where in line, line
        assert "refused the demo certificate (tlsv1 alert unknown ca)" in line, line
        assert "it must trust the demo CA" in line


def test_a_handshake_cut_short_is_one_line_too(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mailkit")
    argv = [str(exe), "demo-server", "--dir", str(tmp_path), "--json", "--no-oauth"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            demo = DemoSettings.from_dict(json.loads(_read_line(proc.stdout, 30)))
            with socket.create_connection(("127.0.0.1", demo.tls_port), timeout=10) as sock:
                sock.sendall(b"EHLO plain.text.on.a.tls.port\r\n")  # not a TLS hello
                while sock.recv(100):  # the server gives up on it and hangs up
                    pass
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            assert proc.stderr is not None
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert f"TLS port {demo.tls_port}: TLS handshake with a client failed" in err


def test_the_demo_folder_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make lab`` names each run's folder in MAILKIT_DEMO_DIR; without it, one per user."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(DIRECTORY_ENV, raising=False)
    assert default_directory() == tmp_path / "data" / "mailkit" / "demo"
    runs = [tmp_path / "run-1", tmp_path / "run-2"]
    handles = []
    for run in runs:
        monkeypatch.setenv(DIRECTORY_ENV, str(run))
        assert default_directory() == run
        handles.append(ensure_running())
    try:
        assert [h.settings.directory for h in handles] == runs
        assert handles[0].settings.starttls_port != handles[1].settings.starttls_port
        monkeypatch.setenv(DIRECTORY_ENV, str(runs[0]))
        again = ensure_running()  # found, not started: the same run's server
        assert not again.started_here
        assert again.settings == handles[0].settings
    finally:
        for handle in handles:
            handle.stop()
