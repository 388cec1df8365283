"""RFC 3030 CHUNKING: the test and demo servers' BDAT, and mailkit's sends with it.

The server side is shown with smtplib and raw writes (no mailkit code in the client), so a
mistake in the sender cannot hide a mistake in the server it is tested against.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import Envelope, Session
from smtpd_servers import (
    SCENARIOS,
    Close,
    Credentials,
    MailServer,
    ReadBody,
    Reply,
    Scenario,
    ScenarioServer,
    Script,
    ServerLoop,
    TLSMaterial,
    listening_socket,
    starttls_plan,
    stop_scenario,
)
from test_hostile_servers import echoing_reply, every_output, leaks

from mailkit.demo.chunking import ChunkingSMTP
from mailkit.demo.server import DEMO_USER, DemoServer
from mailkit.outcome import Cause, Kind, Phase
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security
from mailkit.testsend import send_test_async
from mailkit.transcript import Recorder, Row

pytestmark = pytest.mark.timeout(30)


def _client(server: MailServer, *, login: bool = True) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.starttls_port, timeout=10)
    client.starttls(context=server.tls_material.client_context())
    client.ehlo("client.test")
    if login:
        client.login(server.user, server.password)
    return client


def _send(client: smtplib.SMTP, data: bytes, replies: int = 1) -> list[tuple[int, bytes]]:
    """Write ``data`` at once (a pipelined group) and read ``replies`` replies."""
    assert client.sock is not None
    client.sock.sendall(data)
    return [client.getreply() for _ in range(replies)]


def _bdat(body: bytes, last: bool = False) -> bytes:
    return f"BDAT {len(body)}{' LAST' if last else ''}\r\n".encode() + body


@pytest.fixture
def chunking_server(smtp_server: MailServer) -> MailServer:
    smtp_server.chunking = True
    return smtp_server


def test_chunking_is_offered_only_after_starttls_and_only_when_on(smtp_server: MailServer) -> None:
    smtp_server.chunking = True
    with smtplib.SMTP(smtp_server.host, smtp_server.starttls_port, timeout=10) as client:
        client.ehlo("client.test")
        assert not client.has_extn("chunking")  # BDAT would be refused before TLS
        client.starttls(context=smtp_server.tls_material.client_context())
        client.ehlo("client.test")
        assert client.has_extn("chunking")
    smtp_server.chunking = False
    with _client(smtp_server) as client:
        assert not client.has_extn("chunking")
        # A server without CHUNKING does not know the verb at all.
        assert _send(client, b"BDAT 0 LAST\r\n")[0][0] == 500


def test_one_last_chunk_pipelined_with_mail_and_rcpt(chunking_server: MailServer) -> None:
    body = b"Subject: x\r\n\r\n.leading dot stays\r\n.\r\nthe lone dot above is content\r\n"
    with _client(chunking_server) as client:
        group = b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n" + _bdat(body, True)
        replies = _send(client, group, 3)
        assert [code for code, _ in replies] == [250, 250, 250]
        assert b"queued as" in replies[2][1]
    [message] = chunking_server.messages
    assert message.data == body  # no dot-stuffing either way
    assert message.chunks == (len(body),)
    assert message.rcpt_tos == ("b@example.test",)


def test_several_chunks_then_bdat_0_last(chunking_server: MailServer) -> None:
    parts = [b"Subject: chunks\r\n", b"\r\nfirst half, ", b"second half\r\n"]
    with _client(chunking_server) as client:
        _send(client, b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n", 2)
        for part in parts:
            code, text = _send(client, _bdat(part))[0]
            assert (code, text) == (250, f"2.0.0 Ok: {len(part)} octets received".encode())
        assert _send(client, b"BDAT 0 LAST\r\n")[0][0] == 250
        # The transaction is over: a next chunk needs a new MAIL.
        assert _send(client, _bdat(b"x", True))[0][0] == 503
    [message] = chunking_server.messages
    assert message.data == b"".join(parts)
    assert message.chunks == (*(len(p) for p in parts), 0)


def test_a_refused_chunk_is_still_read_never_taken_for_commands(
    chunking_server: MailServer,
) -> None:
    # If the server stopped reading at the refusal, these octets would be answered as commands.
    trap = b"RSET\r\nNOOP\r\nQUIT\r\n"
    with _client(chunking_server) as client:
        replies = _send(client, _bdat(trap, True) + b"NOOP\r\n", 2)
        assert replies[0] == (503, b"5.5.1 Error: need MAIL command")
        assert replies[1][0] == 250  # the NOOP after the chunk, nothing in between
        _send(client, b"MAIL FROM:<a@example.test>\r\n")
        replies = _send(client, _bdat(trap, True) + b"NOOP\r\n", 2)
        assert replies[0] == (503, b"5.5.1 Error: need RCPT command")
        assert replies[1][0] == 250
    assert chunking_server.messages == []


def test_data_after_bdat_is_refused_and_rset_starts_over(chunking_server: MailServer) -> None:
    with _client(chunking_server) as client:
        _send(client, b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n", 2)
        assert _send(client, _bdat(b"Subject: half\r\n"))[0][0] == 250
        code, text = _send(client, b"DATA\r\n")[0]
        assert code == 503
        assert b"DATA after BDAT" in text
        assert _send(client, b"RSET\r\n")[0][0] == 250
        # After RSET: an ordinary DATA transaction, with nothing of the dropped chunk in it.
        client.sendmail("a@example.test", ["b@example.test"], b"Subject: whole\r\n\r\nbody\r\n")
    [message] = chunking_server.messages
    assert message.data.startswith(b"Subject: whole")
    assert message.chunks == ()


@pytest.mark.parametrize(
    "command",
    [b"BDAT\r\n", b"BDAT ten\r\n", b"BDAT 5 MORE\r\n", b"BDAT 5 LAST extra\r\n", b"BDAT -1\r\n"],
)
def test_bdat_syntax_errors(chunking_server: MailServer, command: bytes) -> None:
    with _client(chunking_server) as client:
        code, text = _send(client, command)[0]
        assert (code, text) == (501, b"5.5.4 Syntax: BDAT chunk-size [LAST]")
        assert _send(client, b"NOOP\r\n")[0][0] == 250


def test_a_client_leaving_mid_chunk_delivers_nothing(chunking_server: MailServer) -> None:
    client = _client(chunking_server)
    _send(client, b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n", 2)
    assert client.sock is not None
    client.sock.sendall(b"BDAT 1000 LAST\r\nSubject: cut short\r\n")
    client.sock.shutdown(socket.SHUT_RDWR)
    client.close()
    assert chunking_server.messages == []


# ------------------------------------------------------------------ a bare ChunkingSMTP


class _Keep:
    """The smallest handler: keeps each message it is given."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_EHLO(
        self,
        server: ChunkingSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return server.with_chunking(responses)

    async def handle_DATA(self, server: ChunkingSMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope.original_content or b"")
        return "250 2.0.0 kept"


@pytest.fixture
def small_server(server_loop: ServerLoop) -> Iterator[tuple[int, _Keep]]:
    """A plaintext ChunkingSMTP that accepts at most 100 octets per message."""
    handler = _Keep()
    sock = listening_socket()

    async def start() -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: ChunkingSMTP(handler, data_size_limit=100, hostname="small", loop=loop),
            sock=sock,
        )

    server = server_loop.call(start())
    yield sock.getsockname()[1], handler

    async def stop() -> None:
        server.close()

    server_loop.call(stop())


def test_size_limit_holds_across_chunks_and_later_chunks_are_refused(
    small_server: tuple[int, _Keep],
) -> None:
    port, handler = small_server
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.test")
        assert client.has_extn("chunking")  # no STARTTLS required here: offered at once
        _send(client, b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n", 2)
        assert _send(client, _bdat(b"x" * 60))[0][0] == 250
        code, text = _send(client, _bdat(b"y" * 60))[0]
        assert code == 552
        assert b"5.3.4" in text
        code, text = _send(client, _bdat(b"z" * 10, True))[0]
        assert code == 503
        assert b"send RSET" in text
        assert _send(client, b"RSET\r\n")[0][0] == 250
        _send(client, b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n", 2)
        assert _send(client, _bdat(b"fits", True))[0] == (250, b"2.0.0 kept")
    assert handler.messages == [b"fits"]


# ------------------------------------------------------------------ the transcript of BDAT


def _message(body: str = "Hello\r\n") -> bytes:
    return (
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: chunked\r\n"
        f"Message-ID: <1@example.test>\r\n\r\n{body}"
    ).encode()


@pytest.mark.parametrize("split", [1, 7, 1000])
def test_transcript_shows_bdat_like_data_and_never_reads_the_chunk_as_commands(
    split: int,
) -> None:
    # Lines in the message that look like commands (and an AUTH one with a canary) must stay
    # inside the summary: the octets are counted, not parsed.
    secret = Secret("canary-Chunk-3k!")
    payload = _message(f"QUIT\r\nAUTH PLAIN {secret.reveal()}\r\n.\r\nRSET\r\n")
    recorder = Recorder(username="alice@example.test", secrets=[secret])
    recorder.connected()
    recorder.received(b"220 ready\r\n")
    group = (
        b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n"
        + f"BDAT {len(payload)} LAST\r\n".encode()
        + payload
        + b"QUIT\r\n"
    )
    for start in range(0, len(group), split):  # however the bytes are cut into writes
        recorder.sent(group[start : start + split])
    recorder.received(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as 4F2\r\n")
    recorder.received(b"221 2.0.0 Bye\r\n")
    rows = [(r.dir.value, r.phase.value, r.code, r.text) for r in recorder.transcript().rows]
    body_size = len(payload) - payload.index(b"\r\n\r\n") - 4
    assert rows[1:] == [
        ("C", "mail", None, "MAIL FROM:<a@example.test>"),
        ("C", "rcpt", None, "RCPT TO:<b@example.test>"),
        ("C", "data", None, f"BDAT {len(payload)} LAST"),
        (
            "C",
            "data",
            None,
            "<message: 4 header fields; From: a@example.test; To: b@example.test; "
            "Subject: chunked; Message-ID: <1@example.test>; "
            f"body {body_size:,} bytes; "
            f"{len(payload):,} bytes in all>",
        ),
        ("C", "quit", None, "QUIT"),
        ("S", "mail", 250, "250 2.1.0 Ok"),
        ("S", "rcpt", 250, "250 2.1.5 Ok"),
        ("S", "end_of_data", 250, "250 2.0.0 Ok: queued as 4F2"),
        ("S", "quit", 221, "221 2.0.0 Bye"),
    ]
    assert secret.reveal() not in recorder.transcript().to_text()


def test_transcript_of_middle_chunks_and_bdat_0_last() -> None:
    payload = _message()
    recorder = Recorder()
    recorder.sent(b"BDAT 10\r\n" + payload[:10])
    recorder.received(b"250 2.0.0 Ok: 10 bytes\r\n")
    recorder.sent(f"BDAT {len(payload) - 10}\r\n".encode() + payload[10:] + b"BDAT 0 LAST\r\n")
    recorder.received(b"250 2.0.0 Ok: more bytes\r\n250 2.0.0 Ok: queued\r\n")
    rows = [(r.dir.value, r.phase.value, r.code, r.text) for r in recorder.transcript().rows]
    assert [row[:3] for row in rows] == [
        ("C", "data", None),
        ("S", "data", 250),
        ("C", "data", None),
        ("C", "data", None),
        ("C", "data", None),  # the summary of the whole message, after the last chunk
        ("S", "data", 250),
        ("S", "end_of_data", 250),
    ]
    assert rows[4][3].startswith("<message: 4 header fields")
    assert rows[4][3].endswith(f"{len(payload):,} bytes in all>")


# ------------------------------------------------------------------ mailkit's sends with BDAT

FROM = "alice@example.com"
TO = "bob@example.org"


def _mailkit_send(plan: SmtpPlan, password: str, to: tuple[str, ...] = (TO,)) -> TestResult:
    return run_sync(send_plan_async(plan, to=list(to), password=Secret(password)))


def _rows(result: TestResult) -> list[tuple[str, str, int | None, str]]:
    return [(r.dir.value, r.phase.value, r.code, r.text) for r in result.transcript.rows]


def test_mailkit_sends_one_bdat_last_in_the_group_after_ehlo(chunking_server: MailServer) -> None:
    result = _mailkit_send(starttls_plan(chunking_server), chunking_server.password)
    assert result.ok, result.diagnosis
    [message] = chunking_server.messages
    assert message.chunks == (len(message.data),)  # one chunk, the whole message
    assert message.auth_mechanism == "PLAIN"
    rows = [row for row in _rows(result) if row[0] != "I"]
    # After the EHLO over TLS, every client line leaves before the first reply: one flight.
    last_ehlo = max(i for i, row in enumerate(rows) if row[:2] == ("S", "ehlo"))
    flight = rows[last_ehlo + 1 :]
    first_reply = next(i for i, row in enumerate(flight) if row[0] == "S")
    assert [row[3].split(" ")[0] for row in flight[:first_reply]] == [
        "AUTH",
        "MAIL",
        "RCPT",
        "BDAT",
        "<message:",
        "QUIT",
    ]
    assert flight[2][3] == f"RCPT TO:<{TO}>"
    assert flight[3][3] == f"BDAT {len(message.data)} LAST"
    assert [row[1:3] for row in flight[first_reply:]] == [
        ("auth", 235),
        ("mail", 250),
        ("rcpt", 250),
        ("end_of_data", 250),
        ("quit", 221),
    ]
    assert not any(row[2] == 354 for row in rows)  # no DATA anywhere
    assert result.server_reply is not None
    assert "queued as" in result.server_reply
    info = [r.text for r in result.transcript.rows if r.dir.value == "I"]
    assert any("CHUNKING" in text and "BDAT" in text for text in info)


def test_mailkit_falls_back_to_data_without_chunking(smtp_server: MailServer) -> None:
    result = _mailkit_send(starttls_plan(smtp_server), smtp_server.password)
    assert result.ok
    [message] = smtp_server.messages
    assert message.chunks == ()
    assert any(row[2] == 354 for row in _rows(result))
    assert not any(row[3].startswith("BDAT") for row in _rows(result))


def test_a_plan_may_keep_to_data_where_chunking_is_offered(chunking_server: MailServer) -> None:
    result = _mailkit_send(starttls_plan(chunking_server, chunking=False), chunking_server.password)
    assert result.ok
    [message] = chunking_server.messages
    assert message.chunks == ()
    assert any(row[2] == 354 for row in _rows(result))


def test_the_message_arrives_the_same_either_way(chunking_server: MailServer) -> None:
    """The same bytes go out with BDAT as with DATA (after the server's dot-unstuffing)."""
    for chunking in (True, False):
        assert _mailkit_send(
            starttls_plan(chunking_server, chunking=chunking), chunking_server.password
        ).ok
    bdat, data = chunking_server.messages
    assert bdat.chunks
    assert not data.chunks

    def without_ids(raw: bytes) -> bytes:
        return b"\r\n".join(
            line for line in raw.split(b"\r\n") if not line.startswith((b"Message-ID:", b"Date:"))
        )

    assert without_ids(bdat.data) == without_ids(data.data)


def test_several_recipients_one_refused(chunking_server: MailServer) -> None:
    result = _mailkit_send(
        starttls_plan(chunking_server),
        chunking_server.password,
        to=(TO, "carol@example.net"),
    )
    assert result.ok
    [message] = chunking_server.messages
    assert message.rcpt_tos == (TO, "carol@example.net")


def test_a_failed_pipelined_auth_is_bad_credentials_and_sends_no_message_where_auth_is_required(
    chunking_server: MailServer, smtp_credentials: Credentials
) -> None:
    chunking_server.require_auth = True
    result = _mailkit_send(starttls_plan(chunking_server), "wrong")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.BAD_CREDENTIALS
    assert result.diagnosis.phase is Phase.AUTH
    assert chunking_server.messages == []
    assert smtp_credentials.leaks_in(result.transcript.to_text()) == []


def test_a_server_that_takes_mail_without_auth_is_named(chunking_server: MailServer) -> None:
    """The message left with the AUTH: a server that takes mail from anyone accepts it even
    though AUTH failed. The diagnosis stays bad credentials, and the transcript says so."""
    result = _mailkit_send(starttls_plan(chunking_server), "wrong")
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.BAD_CREDENTIALS
    [message] = chunking_server.messages
    assert message.auth_user is None
    info = [r.text for r in result.transcript.rows if r.dir.value == "I"]
    assert any("accepted the message although AUTH failed" in text for text in info)
    # QUIT went out with the group: it is not said a second time.
    quits = [r for r in result.transcript.rows if r.dir.value == "C" and r.text == "QUIT"]
    assert len(quits) == 1


def test_the_demo_server_offers_chunking_and_mailkit_uses_it(tmp_path: Path) -> None:
    with DemoServer(tmp_path / "demo") as server:
        demo = server.settings
        result = run_sync(
            send_test_async(
                demo.org(),
                demo.user(DEMO_USER),
                to=["rcpt@example.org"],
                password=demo.password_secret(),
            )
        )
    assert result.ok, result.diagnosis
    assert any(r.text.startswith("BDAT ") for r in result.transcript.rows)


# ------------------------------------------------------------------ failures at BDAT

#: Scenarios from MAIL on, met with CHUNKING offered: the same diagnosis as with DATA.
CHUNKED_SCENARIOS = (
    "sender_rejected_550",
    "microsoft_550_5_7_60",
    "rate_limited_450",
    "relay_denied_550",
    "recipient_rejected_550",
    "greylisted_451",
    "mailbox_full_452",
    "too_large_552",
    "message_rejected_554",
    "timeout_after_data",
    "auth_535",
    "closing_421",
)


@contextlib.contextmanager
def _chunking_scenario(
    server_loop: ServerLoop, tls_material: TLSMaterial, scenario: Scenario
) -> Iterator[ScenarioServer]:
    assert scenario.script is not None
    script = dataclasses.replace(
        scenario.script, extensions=(*scenario.script.extensions, "CHUNKING")
    )
    server = ScenarioServer(dataclasses.replace(scenario, script=script), tls_material, {})
    server_loop.call(server._start())
    try:
        yield server
    finally:
        stop_scenario(server_loop, server)


def _send_to_scenario(server: ScenarioServer, credentials: Credentials) -> TestResult:
    plan = SmtpPlan(
        host=server.host,
        port=server.port,
        security=Security(server.security),
        auth=AuthType.AUTO,
        username=credentials.user,
        from_address=FROM,
        ca_file=str(server.ca_file),
        connect_timeout=3,
        command_timeout=3,
    )
    return _mailkit_send(plan, credentials.password)


@pytest.mark.parametrize("name", CHUNKED_SCENARIOS)
def test_failures_with_bdat_are_diagnosed_as_with_data(
    name: str,
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    smtp_credentials: Credentials,
) -> None:
    scenario = SCENARIOS[name](tls_material)
    with _chunking_scenario(server_loop, tls_material, scenario) as server:
        result = _send_to_scenario(server, smtp_credentials)
        server.wait_idle()
    assert scenario.expect is not None
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.cause) == (scenario.expect.phase, scenario.expect.cause)
    # It really was the chunked path (a server that closes early never reads the BDAT).
    assert any(row.text.startswith("BDAT ") for row in result.transcript.rows)
    assert "DATA" not in server.commands
    assert smtp_credentials.leaks_in(result.transcript.to_text() + diagnosis.to_text()) == []


@pytest.mark.parametrize("abort", [False, True])
def test_a_connection_lost_after_the_last_chunk_went_out_is_outcome_unknown(
    abort: bool,
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    smtp_credentials: Credentials,
) -> None:
    scenario = Scenario(
        "disconnect_in_bdat",
        "reads part of the BDAT chunk, then closes",
        Script(
            starttls=tls_material.server.server_context(),
            on={"BDAT": (ReadBody(max_bytes=64), Close(abort))},
        ),
        None,
    )
    with _chunking_scenario(server_loop, tls_material, scenario) as server:
        result = _send_to_scenario(server, smtp_credentials)
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.kind, diagnosis.cause) == (
        Phase.END_OF_DATA,
        Kind.OUTCOME_UNKNOWN,
        Cause.OUTCOME_UNKNOWN,
    )


def test_a_duplicated_reply_in_the_bdat_group_leaves_the_outcome_unknown(
    server_loop: ServerLoop, tls_material: TLSMaterial, smtp_credentials: Credentials
) -> None:
    """RCPT answered twice: every later reply pairs with the wrong command, so the "250" in
    the message's place may be anything. mailkit does not call that a delivery."""
    scenario = Scenario(
        "duplicate_rcpt_in_bdat_group",
        "RCPT answered twice",
        Script(
            starttls=tls_material.server.server_context(),
            on={"RCPT": (Reply("250 2.1.5 Ok\n250 2.1.5 Ok"),)},
        ),
        None,
    )
    with _chunking_scenario(server_loop, tls_material, scenario) as server:
        result = _send_to_scenario(server, smtp_credentials)
    assert not result.ok
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert diagnosis.kind is Kind.OUTCOME_UNKNOWN


def test_without_pipelining_bdat_goes_alone_after_each_reply(
    server_loop: ServerLoop, tls_material: TLSMaterial, smtp_credentials: Credentials
) -> None:
    scenario = Scenario(
        "chunking_without_pipelining",
        "CHUNKING but no PIPELINING",
        Script(
            starttls=tls_material.server.server_context(),
            extensions=("SIZE 35882577", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"),
        ),
        None,
    )
    with _chunking_scenario(server_loop, tls_material, scenario) as server:
        result = _send_to_scenario(server, smtp_credentials)
        server.wait_idle()
    assert result.ok, result.diagnosis
    assert server.commands[-4:] == ["MAIL", "RCPT", "BDAT", "QUIT"]
    [body] = server.bodies
    assert body.startswith(b"From: ") or b"\r\nFrom: " in body


@pytest.mark.parametrize("mode", ["prefix", "final", "malformed"])
@pytest.mark.parametrize("verb", ["AUTH_RESULT", "MAIL", "RCPT", "END_OF_DATA", "QUIT"])
def test_an_echoed_password_in_the_bdat_group_reaches_no_output(
    verb: str,
    mode: str,
    server_loop: ServerLoop,
    tls_material: TLSMaterial,
    smtp_credentials: Credentials,
) -> None:
    """The replies of the one BDAT group (END_OF_DATA: the reply to the chunk) echo the
    password in every encoding: no output of the send shows it."""
    password = smtp_credentials.password
    scenario = SCENARIOS["hostile_reply"](
        tls_material, verb=verb, data=echoing_reply(verb, mode, password)
    )
    with _chunking_scenario(server_loop, tls_material, scenario) as server:
        rows: list[Row] = []
        plan = dataclasses.replace(
            SmtpPlan(
                host=server.host,
                port=server.port,
                security=Security(server.security),
                auth=AuthType.AUTO,
                username=smtp_credentials.user,
                from_address=FROM,
                ca_file=str(server.ca_file),
            ),
            command_timeout=5.0,
        )
        result = run_sync(
            send_plan_async(plan, to=[TO], password=Secret(password), on_row=rows.append)
        )
        server.wait_idle()
    assert leaks(password, "\n".join(server.sent_lines))  # it really was echoed
    assert any(row.text.startswith("BDAT ") for row in result.transcript.rows)
    for where, text in every_output(result, rows).items():
        assert leaks(password, text) == [], (where, text[:2000])
    if mode == "prefix" and verb in ("END_OF_DATA", "QUIT"):
        assert result.ok, result.diagnosis and result.diagnosis.to_text()
