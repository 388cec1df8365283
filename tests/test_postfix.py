"""The private Postfix + Dovecot peer behaves like a real submission server, checked with smtplib.

These pin what mailkit's sender tests rely on: STARTTLS before AUTH on the submission port,
implicit TLS on the other, PLAIN / LOGIN / CRAM-MD5 against Dovecot, the refusals and their
codes, Unicode mail delivered intact, no password in any log, and no process left behind.
"""

from __future__ import annotations

import base64
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
from postfix_server import (
    CANARY_USER,
    DIR_PREFIX,
    PostfixServer,
    reap_stale,
    require_postfix,
    running_postfix,
)

pytestmark = pytest.mark.timeout(60)

SUBJECT = "mailkit test ✉ Prüfung · 测试 · тест · اختبار"
BODY = """\
English: This is a test message from mailkit.
Español: Este es un mensaje de prueba de mailkit. ¿Llegó bien? Año, corazón, pingüino.
中文: 这是来自 mailkit 的测试邮件。
Deutsch: Dies ist eine Testnachricht von mailkit. Grüße aus der Straße.
Русский: Это тестовое сообщение от mailkit.
العربية: هذه رسالة اختبار من mailkit.
עברית: זוהי הודעת בדיקה מ-mailkit.
Ελληνικά: Αυτό είναι ένα δοκιμαστικό μήνυμα από το mailkit.
हिन्दी: यह mailkit का एक परीक्षण संदेश है।
日本語: これは mailkit からのテストメッセージです。
한국어: 이것은 mailkit의 테스트 메시지입니다.
"""


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixServer]:
    with running_postfix() as server:
        yield server


def message(server: PostfixServer, to: str, cte: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = server.user
    msg["To"] = to
    msg["Subject"] = SUBJECT
    msg["Message-ID"] = make_msgid(domain="mailkit.test")
    msg.set_content(BODY, cte=cte)
    return msg


def copy_for(sent: EmailMessage, rcpt: str) -> Callable[[EmailMessage], bool]:
    def matches(candidate: EmailMessage) -> bool:
        return bool(
            candidate["Message-ID"] == sent["Message-ID"] and candidate["Delivered-To"] == rcpt
        )

    return matches


def assert_delivered_intact(server: PostfixServer, sent: EmailMessage) -> None:
    got = server.wait_for_message(copy_for(sent, sent["To"]))
    assert str(got["Subject"]) == SUBJECT
    assert got.get_content() == BODY


def starttls_client(server: PostfixServer) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.submission_port, timeout=10)
    client.starttls(context=server.ssl_context())
    client.ehlo()
    return client


def login_with(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> None:
    """Authenticate with exactly ``mechanism``; smtplib's login() would pick CRAM-MD5 first."""
    client.user, client.password = user, password
    client.auth(mechanism, getattr(client, "auth_" + mechanism.lower().replace("-", "_")))


def encoded_forms(user: str, secret: str) -> list[bytes]:
    """The secret as a log could hold it: clear, hex, base64 (LOGIN) and AUTH PLAIN's blob."""
    raw = secret.encode()
    forms = [raw, raw.hex().encode()]
    for blob in (raw, b"\0" + user.encode() + b"\0" + raw):
        forms += [base64.b64encode(blob), base64.b64encode(blob).rstrip(b"=")]
    return forms


# -- availability policy (no server needed) --------------------------------------------------


@pytest.fixture
def no_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("postfix_server._binary", lambda name: None)


@pytest.mark.usefixtures("no_binaries")
def test_missing_binaries_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="postfix and dovecot not installed"):
        require_postfix()


@pytest.mark.usefixtures("no_binaries")
def test_missing_binaries_skip_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="`make test` installs them"):
        require_postfix()


# -- the STARTTLS submission port ------------------------------------------------------------


@pytest.mark.slow
def test_ehlo_before_starttls_offers_starttls_but_no_auth(postfix: PostfixServer) -> None:
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["AUTH", "MAIL"])
def test_auth_or_mail_before_starttls_is_refused(postfix: PostfixServer, command: str) -> None:
    # Never the real password in clear text, not even over loopback.
    args = {
        "AUTH": "PLAIN " + base64.b64encode(b"\0nobody@example.test\0not-a-secret").decode(),
        "MAIL": f"FROM:<{postfix.user}>",
    }[command]
    with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as client:
        client.ehlo()
        code, text = client.docmd(command, args)
    assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")


@pytest.mark.slow
def test_ehlo_after_starttls_offers_the_mechanisms(postfix: PostfixServer) -> None:
    with starttls_client(postfix) as client:
        assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN", "CRAM-MD5"]
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() == "TLSv1.3"
        # The real peer of mailkit's BDAT path and of the RTT benchmark's CHUNKING figures.
        assert client.has_extn("pipelining")
        assert client.has_extn("chunking")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mechanism", "cte"),
    [("PLAIN", None), ("LOGIN", "8bit"), ("CRAM-MD5", "base64")],
)
def test_auth_after_starttls_sends_unicode_mail(
    postfix: PostfixServer, mechanism: str, cte: str | None
) -> None:
    sent = message(postfix, f"{mechanism.lower()}@example.test", cte)
    with starttls_client(postfix) as client:
        login_with(client, mechanism, postfix.user, postfix.password)
        # 8bit bodies are announced as such; Postfix offers 8BITMIME.
        options = ["BODY=8BITMIME"] if cte == "8bit" else []
        assert client.send_message(sent, mail_options=options) == {}
    assert_delivered_intact(postfix, sent)


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
@pytest.mark.parametrize("user", [CANARY_USER, "nobody@example.test"])
def test_wrong_password_is_535_at_once(postfix: PostfixServer, mechanism: str, user: str) -> None:
    with starttls_client(postfix) as client:
        began = time.monotonic()
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            login_with(client, mechanism, user, "wrong-password")
        failed_after = time.monotonic() - began
    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error == b"5.7.8 Error: authentication failed: (reason unavailable)"
    # Dovecot would answer at its next 500 ms tick without "nodelay", and its per-IP penalty
    # would delay the next AUTH by seconds: the fixture turns both off.
    assert failed_after < 0.45
    began = time.monotonic()
    with starttls_client(postfix) as client:
        login_with(client, mechanism, postfix.user, postfix.password)
    assert time.monotonic() - began < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("port", ["submission", "smtps"])
def test_rcpt_without_auth_is_refused(postfix: PostfixServer, port: str) -> None:
    client: smtplib.SMTP
    if port == "smtps":
        client = smtplib.SMTP_SSL(
            postfix.host, postfix.smtps_port, timeout=10, context=postfix.ssl_context()
        )
    else:
        client = starttls_client(postfix)
    with client:
        client.ehlo()
        assert client.mail(postfix.user)[0] == 250
        code, text = client.rcpt("bob@example.test")
    assert code == 554
    assert text.startswith(b"5.7.1 ")
    assert text.endswith(b"Access denied")


# -- the implicit-TLS port -------------------------------------------------------------------


@pytest.mark.slow
def test_implicit_tls_auth_plain_sends_unicode_mail(postfix: PostfixServer) -> None:
    sent = message(postfix, "smtps@example.test")
    with smtplib.SMTP_SSL(
        postfix.host, postfix.smtps_port, timeout=10, context=postfix.ssl_context()
    ) as client:
        client.ehlo()
        login_with(client, "PLAIN", postfix.user, postfix.password)
        assert client.send_message(sent) == {}
    assert_delivered_intact(postfix, sent)


@pytest.mark.slow
def test_copies_are_told_apart_by_delivered_to(postfix: PostfixServer) -> None:
    sent = message(postfix, "first@example.test, second@example.org")
    with starttls_client(postfix) as client:
        login_with(client, "PLAIN", postfix.user, postfix.password)
        client.send_message(sent)
    for rcpt in ("first@example.test", "second@example.org"):
        postfix.wait_for_message(copy_for(sent, rcpt))


# -- logs and processes ----------------------------------------------------------------------


@pytest.mark.slow
def test_logs_never_hold_the_password(postfix: PostfixServer) -> None:
    for mechanism in ("PLAIN", "LOGIN", "CRAM-MD5"):
        with starttls_client(postfix) as client:
            login_with(client, mechanism, postfix.user, postfix.password)
    with starttls_client(postfix) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        login_with(client, "LOGIN", postfix.user, "wrong-password")

    # Both logs must show the logins (else this test could not fail); postlogd writes later.
    expected = {
        postfix.postfix_log: f"sasl_method=LOGIN, sasl_username={postfix.user}",
        postfix.dovecot_log: f"passwd-file({postfix.user},127.0.0.1",
    }
    deadline = time.monotonic() + 10
    while not all(path.exists() and text in path.read_text() for path, text in expected.items()):
        assert time.monotonic() < deadline, f"logs never showed {expected}"
        time.sleep(0.05)

    assert sorted(postfix.log_files()) == sorted(expected)
    for path in postfix.log_files():
        data = path.read_bytes()
        for form in encoded_forms(postfix.user, postfix.password):
            assert form not in data, f"the password leaked into {path.name} as {form!r}"


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A parent the daemons' users can traverse (pytest's tmp_path is mode 0700)."""
    parent = Path(tempfile.mkdtemp(prefix="mailkit-test-"))
    parent.chmod(0o711)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


def pgrep(pattern: str) -> bytes:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False).stdout


@pytest.mark.slow
@pytest.mark.parametrize("owner", ["dead", "pid reused"])
def test_a_crashed_run_is_reaped_and_live_runs_are_not(
    postfix: PostfixServer, reachable_dir: Path, owner: str
) -> None:
    """A run that died without stop() leaves daemons; the next run's reap_stale() ends them."""
    directory = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=reachable_dir))
    crashed = PostfixServer(directory)
    crashed.start()
    try:
        assert len(crashed.processes()) > 5
        assert pgrep(directory.name)  # Dovecot's processes name the directory
        assert reap_stale(reachable_dir) == []  # its owner, this process, is alive

        # The owner file names a process that is gone, or a pid now used by another process.
        stale = f"{_dead_pid()} 12345" if owner == "dead" else f"{os.getpid()} 1"
        (directory / "owner.pid").write_text(stale + "\n")
        assert reap_stale(reachable_dir) == [directory]

        assert crashed.processes() == []
        assert pgrep(directory.name) == b""
        assert not directory.exists()
        # The module's server, owned by this live process, was left alone.
        assert reap_stale(postfix.directory.parent) == []
        with smtplib.SMTP(postfix.host, postfix.submission_port, timeout=10) as client:
            assert client.noop()[0] == 250
    finally:
        crashed.stop()
    crashed.stop()  # stopping twice is harmless
