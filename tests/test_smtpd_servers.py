"""The test servers do what they claim, shown with low-level clients (raw sockets, smtplib)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import smtplib
import socket
import ssl
import time
import warnings
from collections.abc import Iterator

import pytest
import spnego
from smtpd_servers import (
    SCENARIOS,
    UNRESOLVABLE_HOST,
    Credentials,
    Expectation,
    MailServer,
    ScenarioServer,
    ServerLoop,
    TLSMaterial,
    scenario_options,
    start_scenario,
    stop_scenario,
)

from mailkit.demo import DEMO_ACCOUNTS, DemoServer, DemoSettings
from mailkit.demo.scenarios import FAILURES
from mailkit.outcome import Cause, Phase, Signal

pytestmark = pytest.mark.timeout(15)

REQUIRED_SCENARIOS = {
    "refused_port",
    "dns_failure",
    "silent_server",
    "greeting_421",
    "greeting_554",
    "ehlo_rejected",
    "starttls_not_offered",
    "starttls_454",
    "starttls_injection",
    "implicit_tls_on_plain_port",
    "plain_on_tls_port",
    "untrusted_ca",
    "wrong_host_cert",
    "expired_cert",
    "auth_not_offered",
    "auth_535",
    "gmail_534_app_password",
    "microsoft_535_basic_auth_disabled",
    "auth_454_temporary",
    "sender_rejected_550",
    "relay_denied_550",
    "greylisted_451",
    "too_large_552",
    "disconnect_mid_data",
    "timeout_after_data",
    "malformed_reply",
    "overlong_reply",
    "microsoft_530_5_7_57",
    "mailbox_full_452",
    "oauth_token_rejected",
}


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


class RawClient:
    """A line-level SMTP client on a plain socket: sends exactly what it is given."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext | None = None,
        timeout: float = 3.0,
        server_hostname: str | None = None,
    ) -> None:
        self.host = server_hostname or host
        self.sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
        if context is not None:
            self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        self.buffer = bytearray()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def recv_chunk(self) -> bytes:
        """What the next ``recv`` returns (``b""`` at EOF), after anything already buffered."""
        if self.buffer:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            return chunk
        return self.sock.recv(65536)

    def read_line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(bytes(self.buffer))
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer[:] = rest
        return line + b"\n"

    def reply(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            line = self.read_line().rstrip(b"\r\n").decode()
            lines.append(line)
            if line[3:4] != "-":
                return int(line[:3]), lines

    def command(self, line: str) -> tuple[int, list[str]]:
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self, context: ssl.SSLContext) -> bytes:
        """Upgrade after ``220``; returns (and drops) plaintext that arrived after it."""
        leftover = bytes(self.buffer)
        self.buffer.clear()
        self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        return leftover


@pytest.fixture
def client_context(tls_material: TLSMaterial) -> ssl.SSLContext:
    return tls_material.client_context()


def tls_session(server: ScenarioServer, context: ssl.SSLContext) -> RawClient:
    """Greeting, EHLO, STARTTLS, EHLO: a client ready for AUTH or MAIL."""
    client = RawClient(server.host, server.port)
    assert client.reply()[0] == 220
    assert client.command("EHLO client.example")[0] == 250
    assert client.command("STARTTLS")[0] == 220
    client.starttls(context)
    assert client.command("EHLO client.example")[0] == 250
    return client


# --------------------------------------------------------------------------------------------
# Certificates


def served_certificate(port: int, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_pin_is_the_sha256_of_the_served_certificate(
    smtp_server: MailServer, client_context: ssl.SSLContext
) -> None:
    der = served_certificate(smtp_server.tls_port, client_context)
    assert hashlib.sha256(der).hexdigest() == smtp_server.pin_sha256
    assert len(smtp_server.pin_sha256) == 64


def test_certificate_variants_differ(tls_material: TLSMaterial) -> None:
    pins = {
        tls_material.server.sha256,
        tls_material.wrong_host.sha256,
        tls_material.expired.sha256,
        tls_material.untrusted.sha256,
    }
    assert len(pins) == 4
    assert tls_material.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


# --------------------------------------------------------------------------------------------
# The good server


def starttls_smtp(server: MailServer, context: ssl.SSLContext) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.starttls_port, timeout=5)
    client.starttls(context=context)
    client.ehlo()
    return client


def smtplib_auth(client: smtplib.SMTP, mechanism: str) -> tuple[int, bytes]:
    """One specific mechanism (``login()`` would fall back to others)."""
    if mechanism == "PLAIN":
        return client.auth("PLAIN", client.auth_plain)
    if mechanism == "LOGIN":
        return client.auth("LOGIN", client.auth_login)
    return client.auth("CRAM-MD5", client.auth_cram_md5)


def step(context: spnego.ContextProxy, token: bytes | None = None) -> str:
    """One NTLM step, base64 for the SMTP line."""
    out = context.step(token)
    assert out is not None
    return b64(out)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_good_server_accepts_password_mechanisms(
    smtp_server: MailServer, client_context: ssl.SSLContext, mechanism: str
) -> None:
    with starttls_smtp(smtp_server, client_context) as client:
        client.user, client.password = smtp_server.user, smtp_server.password
        assert smtplib_auth(client, mechanism)[0] == 235
        client.sendmail("alice@example.test", ["bob@example.test"], b"Subject: t\r\n\r\nhi\r\n")
    [message] = smtp_server.messages
    assert (message.auth_mechanism, message.auth_user) == (mechanism, smtp_server.user)
    assert message.listener == "starttls"
    assert message.tls
    assert message.rcpt_tos == ("bob@example.test",)
    assert message.message["Subject"] == "t"
    assert smtp_server.auth_mechanisms_used == [mechanism]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_good_server_rejects_a_wrong_password(
    smtp_server: MailServer, client_context: ssl.SSLContext, mechanism: str
) -> None:
    with starttls_smtp(smtp_server, client_context) as client:
        client.user, client.password = smtp_server.user, "wrong-password"
        with pytest.raises(smtplib.SMTPAuthenticationError) as failure:
            smtplib_auth(client, mechanism)
    assert failure.value.smtp_code == 535
    assert [(a.mechanism, a.success) for a in smtp_server.auth_log] == [(mechanism, False)]


def xoauth2(user: str, token: str) -> str:
    return b64(f"user={user}\x01auth=Bearer {token}\x01\x01")


def test_good_server_xoauth2(smtp_server: MailServer, client_context: ssl.SSLContext) -> None:
    with starttls_smtp(smtp_server, client_context) as client:
        code, _ = client.docmd("AUTH", "XOAUTH2 " + xoauth2(smtp_server.user, smtp_server.token))
        assert code == 235
        client.sendmail("alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nx\r\n")
    assert smtp_server.messages[0].auth_mechanism == "XOAUTH2"


def test_good_server_xoauth2_bad_token_dance(
    smtp_server: MailServer, client_context: ssl.SSLContext
) -> None:
    with starttls_smtp(smtp_server, client_context) as client:
        code, challenge = client.docmd("AUTH", "XOAUTH2 " + xoauth2(smtp_server.user, "nope"))
        assert code == 334
        assert json.loads(base64.b64decode(challenge))["status"] == "401"
        code, text = client.docmd("")
        assert code == 535
        assert text.startswith(b"5.7.8")


def test_good_server_ntlm(smtp_server: MailServer, client_context: ssl.SSLContext) -> None:
    ntlm = spnego.client(
        smtp_server.user,
        smtp_server.password,
        hostname="localhost",
        service="SMTP",
        protocol="ntlm",
    )
    with starttls_smtp(smtp_server, client_context) as client:
        code, challenge = client.docmd("AUTH", "NTLM " + step(ntlm))
        assert code == 334
        code, _ = client.docmd(step(ntlm, base64.b64decode(challenge)))
        assert code == 235
        client.sendmail("alice@example.test", ["bob@example.test"], b"Subject: n\r\n\r\nn\r\n")
    [message] = smtp_server.messages
    assert message.auth_mechanism == "NTLM"
    assert message.auth_user is not None
    assert smtp_server.user in message.auth_user


def test_good_server_ntlm_wrong_password(
    smtp_server: MailServer, client_context: ssl.SSLContext
) -> None:
    ntlm = spnego.client(smtp_server.user, "wrong", hostname="localhost", protocol="ntlm")
    with starttls_smtp(smtp_server, client_context) as client:
        code, challenge = client.docmd("AUTH", "NTLM")  # no initial response: empty 334 first
        assert code == 334
        assert challenge == b""
        code, challenge = client.docmd(step(ntlm))
        assert code == 334
        code, _ = client.docmd(step(ntlm, base64.b64decode(challenge)))
        assert code == 535


def test_good_server_requires_starttls_first(smtp_server: MailServer) -> None:
    with RawClient(smtp_server.host, smtp_server.starttls_port) as client:
        assert client.reply()[0] == 220
        _code, ehlo = client.command("EHLO client.example")
        assert "250-STARTTLS" in ehlo
        assert "250-PIPELINING" in ehlo
        assert not any("AUTH" in line for line in ehlo)
        assert client.command("AUTH PLAIN " + b64("\0alice\0secret"))[0] == 530
        assert client.command("MAIL FROM:<alice@example.test>")[0] == 530
    assert smtp_server.auth_log == []
    assert smtp_server.messages == []


def test_good_server_implicit_tls(smtp_server: MailServer, client_context: ssl.SSLContext) -> None:
    with smtplib.SMTP_SSL(
        smtp_server.host, smtp_server.tls_port, context=client_context, timeout=5
    ) as client:
        client.login(smtp_server.user, smtp_server.password)
        client.sendmail("alice@example.test", ["bob@example.test"], b"Subject: s\r\n\r\ns\r\n")
    [message] = smtp_server.messages
    assert (message.listener, message.tls, message.auth_user) == ("tls", True, smtp_server.user)


def test_good_server_plaintext_listener(smtp_server: MailServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.plain_port, timeout=5) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN " + b64("\0a\0b"))[0] == 538
        client.sendmail("alice@example.test", ["bob@example.test"], b"Subject: p\r\n\r\np\r\n")
    smtp_server.plain_auth_allowed = True
    with smtplib.SMTP(smtp_server.host, smtp_server.plain_port, timeout=5) as client:
        client.login(smtp_server.user, smtp_server.password)
    assert [m.auth_user for m in smtp_server.messages] == [None]
    assert smtp_server.auth_log[0].listener == "plain"
    smtp_server.reset()
    assert not smtp_server.plain_auth_allowed
    assert smtp_server.auth_log == []


def test_good_server_require_auth(smtp_server: MailServer, client_context: ssl.SSLContext) -> None:
    smtp_server.require_auth = True
    with starttls_smtp(smtp_server, client_context) as client:
        assert client.mail("alice@example.test")[0] == 530
        client.login(smtp_server.user, smtp_server.password)
        assert client.mail("alice@example.test")[0] == 250


def test_good_server_records_smtputf8(
    smtp_server: MailServer, client_context: ssl.SSLContext
) -> None:
    body = (
        "Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, 你好\r\n"
    ).encode()
    with starttls_smtp(smtp_server, client_context) as client:
        client.login(smtp_server.user, smtp_server.password)
        client.sendmail("jürgen@example.test", ["用户@例子.test"], body, mail_options=["SMTPUTF8"])
    [message] = smtp_server.messages
    assert message.smtputf8
    assert message.mail_from == "jürgen@example.test"
    assert message.rcpt_tos == ("用户@例子.test",)
    assert "你好" in message.message.get_content()


def test_good_server_handles_pipelined_groups(
    smtp_server: MailServer, credentials: Credentials, client_context: ssl.SSLContext
) -> None:
    with RawClient(smtp_server.host, smtp_server.starttls_port) as client:
        client.reply()
        client.command("EHLO client.example")
        assert client.command("STARTTLS")[0] == 220
        client.starttls(client_context)
        client.command("EHLO client.example")
        # RFC 4954 4 / RFC 2920: AUTH with an initial response may lead a group.
        plain = b64(f"\0{credentials.user}\0{credentials.password}")
        client.send(
            f"AUTH PLAIN {plain}\r\nMAIL FROM:<alice@example.test>\r\n"
            "RCPT TO:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n"
        )
        assert [client.reply()[0] for _ in range(5)] == [235, 250, 250, 250, 354]
        client.send("Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert [client.reply()[0] for _ in range(2)] == [250, 221]
    [message] = smtp_server.messages
    assert message.rcpt_tos == ("bob@example.test", "carol@example.test")
    assert message.auth_mechanism == "PLAIN"
    # The server saw each group arrive as one chunk: the client really pipelined.
    [log] = smtp_server.connections
    chunks = [data for tls, data in log.chunks if tls]
    assert any(chunk.startswith(b"AUTH PLAIN") and chunk.endswith(b"DATA\r\n") for chunk in chunks)
    assert b"Subject: piped\r\n\r\nbody\r\n.\r\nQUIT\r\n" in chunks


def test_good_server_pipelined_mail_rcpt_data_without_auth(smtp_server: MailServer) -> None:
    with RawClient(smtp_server.host, smtp_server.plain_port) as client:
        client.reply()
        client.command("EHLO client.example")
        client.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        assert [client.reply()[0] for _ in range(3)] == [250, 250, 354]
        client.send("Subject: p\r\n\r\np\r\n.\r\nQUIT\r\n")
        assert [client.reply()[0] for _ in range(2)] == [250, 221]
    assert len(smtp_server.messages) == 1


def test_good_server_rejects_overlong_message_lines(smtp_server: MailServer) -> None:
    with (
        smtplib.SMTP(smtp_server.host, smtp_server.plain_port, timeout=5) as client,
        pytest.raises(smtplib.SMTPDataError) as failure,
    ):
        client.sendmail("a@example.test", ["b@example.test"], b"X: " + b"y" * 1200 + b"\r\n")
    assert failure.value.smtp_code == 500


@pytest.fixture
def credentials(smtp_credentials: Credentials) -> Credentials:
    return smtp_credentials


def test_credentials_leak_forms_find_auth_blobs(credentials: Credentials) -> None:
    plain = b64("\0" + credentials.user + "\0" + credentials.password)
    assert credentials.leaks_in(f"AUTH PLAIN {plain}\r\n")
    assert credentials.leaks_in("334 \r\n" + xoauth2(credentials.user, credentials.token))
    assert not credentials.leaks_in("AUTH PLAIN " + b64("\0alice\0other") + "\r\n")
    assert "canary" not in repr(credentials)


# --------------------------------------------------------------------------------------------
# The scenario library


def test_scenario_library_is_complete(tls_material: TLSMaterial) -> None:
    assert set(SCENARIOS) >= REQUIRED_SCENARIOS
    for name, build in SCENARIOS.items():
        scenario = build(tls_material)
        assert scenario.name == name
        assert scenario.security in {"starttls", "implicit_tls", "none"}
        if name not in {"starttls_injection", "silent_quit"}:  # a correct client succeeds
            assert scenario.expect is not None, name


def test_unknown_scenario_and_option_fail_loudly(
    server_loop: ServerLoop, tls_material: TLSMaterial
) -> None:
    with pytest.raises(ValueError, match="unknown SMTP scenario"):
        start_scenario(server_loop, tls_material, "no_such_scenario")
    with pytest.raises(TypeError):
        start_scenario(server_loop, tls_material, "auth_535", bogus=1)
    assert scenario_options("sender_rejected_550") == ["mail_reply"]


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=pytest.mark.smtp_scenario(name)) for name in SCENARIOS]
)
def test_every_scenario_starts_from_a_param_marker(
    scenario_server: ScenarioServer, name: str
) -> None:
    """The documented way to run a test over many scenarios; each one starts and stops."""
    assert scenario_server.name == name
    assert scenario_server.port > 0
    if scenario_server.script is not None and not scenario_server.script.implicit_tls:
        with (
            RawClient(scenario_server.host, scenario_server.port, timeout=0.2) as client,
            contextlib.suppress(TimeoutError),  # silent_server says nothing
        ):
            assert client.recv_chunk()[:3] in {b"220", b"421", b"554"}


@pytest.mark.smtp_scenario("refused_port")
def test_refused_port(scenario_server: ScenarioServer) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((scenario_server.host, scenario_server.port), timeout=2)
    assert scenario_server.expect is not None
    assert scenario_server.expect.cause is Cause.CONNECTION_REFUSED


@pytest.mark.smtp_scenario("dns_failure")
def test_dns_failure(scenario_server: ScenarioServer) -> None:
    assert scenario_server.host == UNRESOLVABLE_HOST
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(scenario_server.host, scenario_server.port)


@pytest.mark.smtp_scenario("silent_server")
def test_silent_server_never_greets(scenario_server: ScenarioServer) -> None:
    with (
        RawClient(scenario_server.host, scenario_server.port, timeout=0.5) as client,
        pytest.raises(TimeoutError),
    ):
        client.recv_chunk()
    assert scenario_server.wait_idle()
    assert scenario_server.sent_lines == []


@pytest.mark.smtp_scenario("greeting_421")
def test_greeting_421(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        code, lines = client.reply()
        assert code == 421
        assert "4.3.2" in lines[0]
        assert client.recv_chunk() == b""


@pytest.mark.smtp_scenario("greeting_554")
def test_greeting_554(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        assert client.reply()[0] == 554
        assert client.command("EHLO client.example")[0] == 503
        assert client.command("QUIT")[0] == 221


@pytest.mark.smtp_scenario("ehlo_rejected")
def test_ehlo_rejected(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        assert client.command("EHLO client.example")[0] == 550
        assert client.command("HELO client.example")[0] == 550


@pytest.mark.smtp_scenario("starttls_not_offered")
def test_starttls_not_offered_tempts_and_records(
    scenario_server: ScenarioServer, credentials: Credentials
) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        _code, ehlo = client.command("EHLO client.example")
        assert "250 AUTH PLAIN LOGIN" in ehlo
        assert not any("STARTTLS" in line for line in ehlo)
        assert client.command("STARTTLS")[0] == 502
        # A bad client falls for it; the record shows exactly what leaked.
        plain = b64(f"\0{credentials.user}\0{credentials.password}")
        assert client.command(f"AUTH PLAIN {plain}")[0] == 235
        assert client.command("MAIL FROM:<alice@example.test>")[0] == 250
    assert scenario_server.wait_idle()
    assert scenario_server.commands == ["EHLO", "STARTTLS", "AUTH", "MAIL"]
    assert credentials.leaks_in(bytes(scenario_server.received_bytes))


@pytest.mark.smtp_scenario("starttls_not_offered")
def test_starttls_not_offered_good_client_sends_nothing(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        assert client.command("QUIT")[0] == 221
    assert scenario_server.received_lines == ["EHLO client.example", "QUIT"]


@pytest.mark.smtp_scenario("starttls_454")
def test_starttls_454(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        assert any("STARTTLS" in line for line in client.command("EHLO client.example")[1])
        assert client.command("STARTTLS")[0] == 454


@pytest.mark.smtp_scenario("starttls_injection")
def test_starttls_injection_correct_client(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        client.send("STARTTLS\r\n")
        first = client.recv_chunk()
        if first == b"220 2.0.0 Ready to start TLS\r\n":  # both lines are one write
            first += client.recv_chunk()
        assert first == b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n"
        client.buffer.clear()  # a correct client drops plaintext received after the 220
        client.starttls(client_context)
        code, ehlo = client.command("EHLO client.example")
        assert code == 250
        assert "250 AUTH PLAIN LOGIN XOAUTH2" in ehlo
        assert client.command("MAIL FROM:<alice@example.test>")[0] == 250
    assert scenario_server.injected_processed is False
    assert scenario_server.tls_established


@pytest.mark.smtp_scenario("starttls_injection")
def test_starttls_injection_detects_a_client_that_used_the_line(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        assert client.command("STARTTLS")[0] == 220
        assert client.starttls(client_context) == b"250 injected\r\n"
        # A vulnerable client reads the leftover "250 injected" as the EHLO reply and goes on.
        client.send("EHLO client.example\r\n")
        client.send("MAIL FROM:<alice@example.test>\r\n")
        assert client.reply()[0] == 250
    assert scenario_server.wait_idle()
    assert scenario_server.injected_processed is True


@pytest.mark.smtp_scenario("implicit_tls_on_plain_port")
def test_implicit_tls_on_plain_port(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    began = time.monotonic()
    with pytest.raises(ssl.SSLError):
        RawClient(scenario_server.host, scenario_server.port, context=client_context)
    assert time.monotonic() - began < 2
    assert scenario_server.security == "implicit_tls"
    assert scenario_server.wait_idle()
    assert scenario_server.sent_lines[0].startswith("220 ")
    assert bytes(scenario_server.received_bytes).startswith(b"\x16\x03")  # a TLS ClientHello


@pytest.mark.smtp_scenario("plain_on_tls_port", hang=5.0)
def test_plain_on_tls_port(scenario_server: ScenarioServer, client_context: ssl.SSLContext) -> None:
    with (
        RawClient(scenario_server.host, scenario_server.port, timeout=0.5) as client,
        pytest.raises(TimeoutError),
    ):
        client.recv_chunk()
    with RawClient(scenario_server.host, scenario_server.port, context=client_context) as client:
        assert client.reply()[0] == 220  # it does speak SMTP - inside TLS
    assert scenario_server.wait_idle()
    assert scenario_server.tls_errors  # the plaintext client's connection never became TLS


def handshake(server: ScenarioServer, context: ssl.SSLContext, *, implicit: bool) -> None:
    """Connect and get to TLS (implicitly or by STARTTLS), then hang up."""
    if implicit:
        RawClient(server.host, server.port, context=context).sock.close()
        return
    with RawClient(server.host, server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        assert client.command("STARTTLS")[0] == 220
        client.starttls(context)


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
@pytest.mark.parametrize(
    ("name", "verify_code"),
    [
        ("untrusted_ca", 20),  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        ("wrong_host_cert", 64),  # X509_V_ERR_IP_ADDRESS_MISMATCH (62 when checked by name)
        ("expired_cert", 10),  # X509_V_ERR_CERT_HAS_EXPIRED
    ],
)
def test_bad_certificates(
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    client_context: ssl.SSLContext,
    name: str,
    verify_code: int,
    implicit: bool,
) -> None:
    server = start_scenario(server_loop, tls_material, name, implicit=implicit)
    try:
        with pytest.raises(ssl.SSLCertVerificationError) as failure:
            handshake(server, client_context, implicit=implicit)
        assert failure.value.verify_code == verify_code
        assert server.wait_idle()
        assert server.tls_errors
        assert not server.tls_established
        assert server.commands == ([] if implicit else ["EHLO", "STARTTLS"])
    finally:
        stop_scenario(server_loop, server)


@pytest.mark.smtp_scenario("wrong_host_cert", implicit=True)
def test_wrong_host_cert_by_name(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as failure:
        RawClient(
            scenario_server.host,
            scenario_server.port,
            context=client_context,
            server_hostname="localhost",
        )
    assert failure.value.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH


@pytest.mark.smtp_scenario("untrusted_ca", implicit=True)
def test_untrusted_ca_is_fine_once_trusted(
    scenario_server: ScenarioServer, tls_material: TLSMaterial
) -> None:
    context = ssl.create_default_context(cafile=str(tls_material.untrusted_ca_file))
    with RawClient(scenario_server.host, scenario_server.port, context=context) as client:
        assert client.reply()[0] == 220


@pytest.mark.smtp_scenario("tls_version_too_old")
def test_tls_version_too_old_alerts(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        assert client.command("STARTTLS")[0] == 220
        with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):
            client.starttls(client_context)
    assert bytes(scenario_server.received_bytes).find(b"\x16\x03") > 0  # the ClientHello


@pytest.mark.smtp_scenario("tls_version_too_old", real_handshake=True)
def test_tls_version_too_old_real_handshake(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        assert client.command("STARTTLS")[0] == 220
        with pytest.raises(ssl.SSLError) as failure:
            client.starttls(client_context)
    assert not isinstance(failure.value, ssl.SSLCertVerificationError)
    # A client that still allows TLS 1.0 gets through: it is the version, nothing else.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client_context.minimum_version = ssl.TLSVersion.TLSv1
    client_context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.command("EHLO client.example")
        client.command("STARTTLS")
        client.starttls(client_context)
        assert client.command("EHLO client.example")[0] == 250
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in {"TLSv1", "TLSv1.1"}


@pytest.mark.smtp_scenario("auth_not_offered")
def test_auth_not_offered(scenario_server: ScenarioServer, client_context: ssl.SSLContext) -> None:
    with tls_session(scenario_server, client_context) as client:
        _code, ehlo = client.command("EHLO client.example")
        assert not any("AUTH" in line for line in ehlo)
        assert client.command("AUTH PLAIN " + b64("\0a\0b"))[0] == 503


@pytest.mark.smtp_scenario("mechanism_not_offered")
def test_mechanism_not_offered(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with tls_session(scenario_server, client_context) as client:
        assert "250 AUTH XOAUTH2 OAUTHBEARER" in client.command("EHLO client.example")[1]
        assert client.command("AUTH PLAIN " + b64("\0a\0b"))[0] == 504


@pytest.mark.smtp_scenario("encryption_required_538")
def test_encryption_required_538(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        assert "250 AUTH PLAIN LOGIN" in client.command("EHLO client.example")[1]
        assert client.command("AUTH PLAIN " + b64("\0a\0b"))[0] == 538


def auth_exchange(client: RawClient, mechanism: str, credentials: Credentials) -> list[str]:
    """Run one AUTH exchange the way a client does; returns the final reply's lines."""
    if mechanism == "PLAIN":
        code, lines = client.command(
            "AUTH PLAIN " + b64(f"\0{credentials.user}\0{credentials.password}")
        )
    elif mechanism == "LOGIN":
        assert client.command("AUTH LOGIN")[0] == 334
        assert client.command(b64(credentials.user))[0] == 334
        code, lines = client.command(b64(credentials.password))
    else:
        code, lines = client.command("AUTH XOAUTH2 " + xoauth2(credentials.user, credentials.token))
        if code == 334:  # Gmail's error challenge: answer with an empty line
            error = json.loads(base64.b64decode(lines[0][4:]))
            assert error["status"] == "401"
            code, lines = client.command("")
    return lines


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
@pytest.mark.parametrize(
    ("name", "final"),
    [
        ("auth_535", "535 5.7.8"),
        ("gmail_534_app_password", "534 5.7.9"),
        ("microsoft_535_basic_auth_disabled", "535 5.7.139"),
        ("auth_454_temporary", "454 4.7.0"),
        ("oauth_token_rejected", "535 5.7.8"),
    ],
)
def test_auth_failures(
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    client_context: ssl.SSLContext,
    credentials: Credentials,
    name: str,
    final: str,
    mechanism: str,
) -> None:
    server = start_scenario(server_loop, tls_material, name)
    try:
        with tls_session(server, client_context) as client:
            lines = auth_exchange(client, mechanism, credentials)
        assert lines[-1].startswith(final)
        assert server.auth_mechanisms == [mechanism]
        if name == "oauth_token_rejected" and mechanism == "XOAUTH2":
            assert server.sent_lines[-len(lines) - 1].startswith("334 ")
    finally:
        stop_scenario(server_loop, server)


def test_gmail_534_is_multiline(
    server_loop: ServerLoop, tls_material: TLSMaterial, client_context: ssl.SSLContext
) -> None:
    server = start_scenario(server_loop, tls_material, "gmail_534_app_password")
    try:
        with tls_session(server, client_context) as client:
            lines = auth_exchange(client, "PLAIN", Credentials())
        assert len(lines) == 2
        assert lines[0].startswith("534-5.7.9 Application-specific")
        assert server.sent_lines[0].endswith("- gsmtp")
    finally:
        stop_scenario(server_loop, server)


@pytest.mark.parametrize(
    ("name", "verb", "reply"),
    [
        ("sender_rejected_550", "MAIL", "553 5.7.1"),
        ("microsoft_550_5_7_60", "MAIL", "550 5.7.60"),
        ("microsoft_530_5_7_57", "MAIL", "530 5.7.57"),
        ("rate_limited_450", "MAIL", "450 4.7.1"),
        ("relay_denied_550", "RCPT", "554 5.7.1"),
        ("recipient_rejected_550", "RCPT", "550 5.1.1"),
        ("greylisted_451", "RCPT", "451 4.7.1"),
        ("mailbox_full_452", "RCPT", "452 4.2.2"),
        ("too_large_552", "END_OF_DATA", "552 5.3.4"),
        ("message_rejected_554", "END_OF_DATA", "554 5.7.1"),
    ],
)
def test_envelope_and_data_rejections(
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    client_context: ssl.SSLContext,
    credentials: Credentials,
    name: str,
    verb: str,
    reply: str,
) -> None:
    server = start_scenario(server_loop, tls_material, name)
    try:
        with tls_session(server, client_context) as client:
            assert auth_exchange(client, "PLAIN", credentials)[-1].startswith("235")
            steps = [
                ("MAIL", "MAIL FROM:<alice@example.test>"),
                ("RCPT", "RCPT TO:<bob@example.test>"),
                ("DATA", "DATA"),
                ("END_OF_DATA", "Subject: s\r\n\r\nbody\r\n."),
            ]
            for step, line in steps:
                code, lines = client.command(line)
                if step == verb:
                    assert lines[-1].startswith(reply)
                    break
                assert code in (250, 354)
        assert server.expect is not None
        assert server.expect.phase.value == verb.lower()
        if verb == "END_OF_DATA":
            assert server.bodies == [b"Subject: s\r\n\r\nbody\r\n"]
    finally:
        stop_scenario(server_loop, server)


@pytest.mark.smtp_scenario(
    "sender_rejected_550", mail_reply="550 5.7.60 SMTP; Client does not have permissions"
)
def test_sender_rejected_option(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with tls_session(scenario_server, client_context) as client:
        assert client.command("MAIL FROM:<boss@example.test>")[1] == [
            "550 5.7.60 SMTP; Client does not have permissions"
        ]
    assert scenario_server.expect is not None
    assert scenario_server.expect.cause is Cause.SEND_AS_DENIED


@pytest.mark.smtp_scenario("too_large_552")
def test_too_large_does_not_advertise_size(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with tls_session(scenario_server, client_context) as client:
        assert not any("SIZE" in line for line in client.command("EHLO client.example")[1])


@pytest.mark.smtp_scenario("disconnect_mid_data")
def test_disconnect_mid_data(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with tls_session(scenario_server, client_context) as client:
        client.command("MAIL FROM:<alice@example.test>")
        client.command("RCPT TO:<bob@example.test>")
        assert client.command("DATA")[0] == 354
        client.send(b"Subject: cut\r\n\r\n" + b"line of the body\r\n" * 20)
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):  # a reset will do too
            assert client.recv_chunk() == b""
    assert scenario_server.wait_idle()
    assert scenario_server.partial_bodies
    assert not scenario_server.bodies


@pytest.mark.smtp_scenario("disconnect_mid_data", at_data_command=True)
def test_disconnect_at_data_command(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with tls_session(scenario_server, client_context) as client:
        client.command("MAIL FROM:<alice@example.test>")
        client.command("RCPT TO:<bob@example.test>")
        client.send("DATA\r\n")
        assert client.recv_chunk() == b""
    assert scenario_server.expect is not None
    assert scenario_server.expect.phase.value == "data"


@pytest.mark.smtp_scenario("timeout_after_data")
def test_timeout_after_data(
    scenario_server: ScenarioServer, client_context: ssl.SSLContext
) -> None:
    with tls_session(scenario_server, client_context) as client:
        client.command("MAIL FROM:<alice@example.test>")
        client.command("RCPT TO:<bob@example.test>")
        assert client.command("DATA")[0] == 354
        client.sock.settimeout(1.0)
        client.send("Subject: t\r\n\r\nbody\r\n.\r\n")
        with pytest.raises(TimeoutError):
            client.recv_chunk()
    assert scenario_server.wait_idle()
    assert scenario_server.bodies == [b"Subject: t\r\n\r\nbody\r\n"]


@pytest.mark.smtp_scenario("malformed_reply")
def test_malformed_reply(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.send("EHLO client.example\r\n")
        assert client.read_line() == b"garbage without a code\r\n"


@pytest.mark.smtp_scenario("overlong_reply")
def test_overlong_reply(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.send("EHLO client.example\r\n")
        assert len(client.read_line()) > 8192


@pytest.mark.smtp_scenario("overlong_reply", endless=True)
def test_overlong_reply_endless(scenario_server: ScenarioServer) -> None:
    with RawClient(scenario_server.host, scenario_server.port) as client:
        client.reply()
        client.send("EHLO client.example\r\n")
        lines = [client.read_line() for _ in range(2000)]
        assert all(line.startswith(b"250-") for line in lines)
    assert scenario_server.wait_idle()


def test_stop_with_a_client_still_connected(
    server_loop: ServerLoop, tls_material: TLSMaterial
) -> None:
    """Stopping a server whose client never left is quick and leaves nothing pending."""
    server = start_scenario(server_loop, tls_material, "silent_server")
    with RawClient(server.host, server.port) as client:
        deadline = time.monotonic() + 2
        while not server.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.active == 1
        began = time.monotonic()
        stop_scenario(server_loop, server)
        assert time.monotonic() - began < 1.5
        assert server.active == 0
        assert client.recv_chunk() == b""


def test_replies_are_not_held_back_by_nagle(smtp_server: MailServer) -> None:
    """aiosmtpd writes a multi-line reply line by line; without TCP_NODELAY on the server's
    sockets each pipelined group would wait ~40 ms for a delayed ACK (and spoil benchmarks)."""
    with RawClient(smtp_server.host, smtp_server.plain_port) as client:
        client.reply()
        best = 1.0
        for _ in range(5):
            began = time.perf_counter()
            client.send("EHLO client.example\r\nNOOP\r\n")
            client.reply()
            client.reply()
            best = min(best, time.perf_counter() - began)
    assert best < 0.02


# --------------------------------------------------------------------------------------------
# One definition: the demo's failure accounts are these scenarios' refusals

#: Each demo failure account and the scenario the tests meet the same refusal in.
DEMO_ACCOUNT_SCENARIOS = {
    "wrong-password": "auth_535",
    "app-password": "gmail_534_app_password",
    "basic-auth-disabled": "microsoft_535_basic_auth_disabled",
    "greylisted": "greylisted_451",
    "mailbox-full": "mailbox_full_452",
    "not-allowed": "microsoft_550_5_7_60",
}


def test_every_demo_failure_account_is_a_scenario_of_the_tests(tls_material: TLSMaterial) -> None:
    failing = {account.key: account for account in DEMO_ACCOUNTS if account.failure is not None}
    assert set(failing) == set(DEMO_ACCOUNT_SCENARIOS)
    for key, name in DEMO_ACCOUNT_SCENARIOS.items():
        scenario = SCENARIOS[name](tls_material)
        assert scenario.failure is failing[key].failure, key  # the same object, not a copy
        assert scenario.expect is not None
        assert (scenario.expect.phase, scenario.expect.cause) == (
            failing[key].phase,
            failing[key].cause,
        )


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path_factory.mktemp("demo"), oauth=False) as server:
        yield server.settings


def refusal_lines(client: RawClient, user: str, password: str, phase: Phase) -> list[str]:
    """Sign in with PLAIN and go on until the step at ``phase``: its reply lines."""
    code, lines = client.command("AUTH PLAIN " + b64(f"\0{user}\0{password}"))
    if phase is Phase.AUTH:
        return lines
    assert code == 235, lines
    code, lines = client.command(f"MAIL FROM:<{user}>")
    if phase is Phase.MAIL:
        return lines
    assert code == 250, lines
    return client.command("RCPT TO:<bob@example.com>")[1]


@pytest.mark.parametrize("key", sorted(DEMO_ACCOUNT_SCENARIOS))
def test_demo_account_and_scenario_say_the_same_words(
    key: str,
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    client_context: ssl.SSLContext,
    demo_server: DemoSettings,
) -> None:
    """On the wire too: both servers refuse with the account's very lines."""
    account = demo_server.account(key)
    assert account.phase is not None
    assert account.reply is not None
    server = start_scenario(server_loop, tls_material, DEMO_ACCOUNT_SCENARIOS[key])
    try:
        with tls_session(server, client_context) as client:
            from_scenario = refusal_lines(client, account.user, account.password, account.phase)
    finally:
        stop_scenario(server_loop, server)
    demo_context = ssl.create_default_context(cafile=str(demo_server.ca_file))
    with RawClient("127.0.0.1", demo_server.starttls_port) as client:
        assert client.reply()[0] == 220
        assert client.command("EHLO client.example")[0] == 250
        assert client.command("STARTTLS")[0] == 220
        client.starttls(demo_context)
        assert client.command("EHLO client.example")[0] == 250
        from_demo = refusal_lines(client, account.user, account.password, account.phase)
    assert from_scenario == from_demo == account.reply.split("\n")


def test_both_servers_sign_in_with_the_same_code() -> None:
    from smtpd_servers import _Handler

    from mailkit.demo.scenarios import SubmissionHandler
    from mailkit.demo.server import _DemoHandler

    for mechanism in ("auth_CRAM__MD5", "auth_XOAUTH2", "handle_EHLO"):
        shared = getattr(SubmissionHandler, mechanism)
        assert getattr(_Handler, mechanism) is shared
        assert getattr(_DemoHandler, mechanism) is shared


def test_every_refusal_of_the_library_is_met_by_a_scenario(tls_material: TLSMaterial) -> None:
    """No refusal is written for the demo alone: each has a scenario the diagnosis is tested on,
    and the scenario expects exactly the refusal's phase and cause."""
    built = [SCENARIOS[name](tls_material) for name in SCENARIOS]
    built.append(SCENARIOS["closing_421"](tls_material, verb="DATA"))
    met = {scenario.failure.key: scenario for scenario in built if scenario.failure is not None}
    assert set(met) == set(FAILURES)
    for key, scenario in met.items():
        assert scenario.failure == FAILURES[key], key
        assert scenario.expect == Expectation(
            FAILURES[key].phase, Signal.REPLY, FAILURES[key].cause
        ), key
