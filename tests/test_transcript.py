"""The transcript recorder, fed raw bytes: phases, replies kept together, redaction by state."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailkit.outcome import Phase
from mailkit.secret import Secret
from mailkit.transcript import COLUMNS, MAX_REPLY_LINES, Direction, Recorder, secret_forms

USER = "alice@example.test"
PASSWORD = "canary-Pw-5x!Q"
TOKEN = "canary-Tok-9zZ"


def b64(data: bytes | str) -> bytes:
    return base64.b64encode(data.encode() if isinstance(data, str) else data)


def recorder(*, tls: bool = False, greet: bool = True) -> Recorder:
    rec = Recorder(username=USER, secrets=[Secret(PASSWORD), Secret(TOKEN)], tls=tls)
    rec.connected()
    if greet:
        rec.received(b"220 mx.example ESMTP\r\n")
    return rec


def dialog(rec: Recorder, *steps: tuple[str, bytes]) -> None:
    for who, data in steps:
        (rec.sent if who == "C" else rec.received)(data)


def texts(rec: Recorder) -> str:
    return "\n".join(row.text for row in rec.rows)


def assert_no_secret(rec: Recorder) -> None:
    everything = texts(rec)
    for secret in (PASSWORD, TOKEN):
        for form in secret_forms(secret, USER):
            assert form not in everything, form


def test_greeting_ehlo_multiline_reply_stays_together() -> None:
    rec = recorder(greet=False)
    dialog(
        rec,
        ("S", b"220 mx.example ESMTP\r\n"),
        ("C", b"EHLO client.example\r\n"),
        ("S", b"250-mx.example\r\n250-PIPELINING\r\n"),
        ("S", b"250 AUTH PLAIN LOGIN\r\n"),
    )
    assert [(r.dir, r.phase, r.code) for r in rec.rows] == [
        (Direction.SERVER, Phase.GREETING, 220),
        (Direction.CLIENT, Phase.EHLO, None),
        (Direction.SERVER, Phase.EHLO, 250),
    ]
    assert rec.rows[2].text == "250-mx.example\n250-PIPELINING\n250 AUTH PLAIN LOGIN"


def test_auth_plain_initial_response_is_hidden_user_named() -> None:
    rec = recorder()
    dialog(
        rec,
        ("C", b"AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}") + b"\r\n"),
        ("S", b"235 2.7.0 Authentication successful\r\n"),
    )
    assert rec.rows[1].text == f"AUTH PLAIN <password hidden for {USER}>"
    assert rec.rows[2].phase is Phase.AUTH
    assert_no_secret(rec)


def test_auth_login_shows_user_hides_password() -> None:
    rec = recorder()
    dialog(
        rec,
        ("C", b"AUTH LOGIN " + b64(USER) + b"\r\n"),
        ("S", b"334 UGFzc3dvcmQ6\r\n"),
        ("C", b64(PASSWORD) + b"\r\n"),
        ("S", b"235 ok\r\n"),
    )
    shown = [r.text for r in rec.rows[1:]]
    assert shown[0] == f"AUTH LOGIN <user name: {USER}>"
    assert shown[1] == "334 UGFzc3dvcmQ6 (Password:)"
    assert shown[2] == "<password hidden>"
    assert [r.phase for r in rec.rows[1:]] == [Phase.AUTH] * 4
    assert rec.rows[0].phase is Phase.GREETING
    assert_no_secret(rec)


def test_every_line_after_334_is_hidden_whatever_it_is() -> None:
    """A LOGIN dialog where the server asks for the user name after the AUTH line."""
    rec = recorder()
    dialog(
        rec,
        ("C", b"AUTH LOGIN\r\n"),
        ("S", b"334 VXNlcm5hbWU6\r\n"),
        ("C", b64("someone-else") + b"\r\n"),
        ("S", b"334 UGFzc3dvcmQ6\r\n"),
        ("C", b"not even base64 " + PASSWORD.encode() + b"\r\n"),
        ("S", b"535 5.7.8 bad\r\n"),
    )
    client = [r.text for r in rec.rows if r.dir is Direction.CLIENT]
    assert client == ["AUTH LOGIN", "<password hidden>", "<password hidden>"]
    assert_no_secret(rec)


def test_cram_md5_xoauth2_and_ntlm_markers() -> None:
    rec = recorder()
    dialog(
        rec,
        ("C", b"AUTH CRAM-MD5\r\n"),
        ("S", b"334 " + b64("<1.2@mx>") + b"\r\n"),
        ("C", b64(f"{USER} 0123abcd") + b"\r\n"),
        ("S", b"535 no\r\n"),
        ("C", b"AUTH XOAUTH2 " + b64(f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01") + b"\r\n"),
        ("S", b"334 " + b64('{"status":"401"}') + b"\r\n"),
        ("C", b"\r\n"),
        ("S", b"535 5.7.8 token\r\n"),
        ("C", b"AUTH NTLM " + b64(b"NTLMSSP\0\1") + b"\r\n"),
        ("S", b"334 " + b64(b"NTLMSSP\0\2challenge") + b"\r\n"),
        ("C", b64(b"NTLMSSP\0\3response") + b"\r\n"),
        ("S", b"235 ok\r\n"),
    )
    client = [r.text for r in rec.rows if r.dir is Direction.CLIENT]
    assert client == [
        "AUTH CRAM-MD5",
        "<CRAM-MD5 digest hidden>",
        "AUTH XOAUTH2 <token hidden>",
        "<empty response>",
        "AUTH NTLM <NTLM message hidden>",
        "<NTLM message hidden>",
    ]
    server = [r.text for r in rec.rows if r.dir is Direction.SERVER and r.code == 334]
    assert '{"status":"401"}' in server[1]  # the decoded XOAUTH2 error helps the admin
    assert server[2] == "334 <NTLM challenge>"
    assert_no_secret(rec)


def test_pipelined_group_pairs_replies_with_commands() -> None:
    rec = recorder(tls=True)
    dialog(
        rec,
        (
            "C",
            b"AUTH PLAIN "
            + b64(f"\0{USER}\0{PASSWORD}")
            + b"\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n",
        ),
        ("S", b"235 ok\r\n250 sender ok\r\n"),
        ("S", b"250 rcpt ok\r\n354 go ahead\r\n"),
        (
            "C",
            b"From: a@x.test\r\nTo: b@y.test\r\nSubject: hi\r\n\r\nbody\r\n..dot\r\n.\r\nQUIT\r\n",
        ),
        ("S", b"250 2.0.0 queued as 42\r\n221 bye\r\n"),
    )
    server = [(r.phase, r.code) for r in rec.rows if r.dir is Direction.SERVER]
    assert server == [
        (Phase.GREETING, 220),
        (Phase.AUTH, 235),
        (Phase.MAIL, 250),
        (Phase.RCPT, 250),
        (Phase.DATA, 354),
        (Phase.END_OF_DATA, 250),
        (Phase.QUIT, 221),
    ]
    client = [r for r in rec.rows if r.dir is Direction.CLIENT]
    summary = next(r.text for r in client if r.text.startswith("<message"))
    assert "Subject: hi" in summary
    assert "body 13 bytes" in summary  # "body\r\n..dot\r\n" as sent, dot-stuffed
    assert "body\r\n" not in summary
    assert [r.text for r in client][-2:] == [".", "QUIT"]
    assert all(r.tls for r in rec.rows)
    assert_no_secret(rec)


def test_data_sent_before_the_tls_handshake_is_marked_discarded() -> None:
    rec = recorder()
    dialog(
        rec,
        ("C", b"STARTTLS\r\n"),
        ("S", b"220 go ahead\r\n250 injected\r\n"),
    )
    rec.tls_started()
    dialog(rec, ("C", b"EHLO c\r\n"), ("S", b"250 ok\r\n"))
    injected = next(r for r in rec.rows if r.text == "250 injected")
    assert injected.phase is Phase.STARTTLS
    note = rec.rows[rec.rows.index(injected) + 1]
    assert note.dir is Direction.INFO
    assert "discarded" in note.text
    ehlo_reply = rec.rows[-1]
    assert (ehlo_reply.phase, ehlo_reply.tls) == (Phase.EHLO, True)


def test_malformed_and_overlong_lines_are_shown_cut() -> None:
    rec = recorder(greet=False)
    dialog(rec, ("S", b"garbage without a code\r\n"), ("S", b"2" * 100_000))
    assert rec.rows[0].code is None
    assert rec.rows[0].text == "garbage without a code"
    assert len(rec.rows[1].text) < 1000
    assert "bytes without a line end" in rec.rows[1].text


def test_a_server_echoing_the_password_is_scrubbed() -> None:
    rec = recorder(greet=False)
    dialog(rec, ("S", f"535 5.7.8 bad password {PASSWORD} for {USER}\r\n".encode()))
    assert PASSWORD not in texts(rec)
    assert "<secret hidden>" in rec.rows[0].text
    assert USER in rec.rows[0].text


def test_transcript_renderings() -> None:
    rec = recorder(greet=False)
    dialog(rec, ("S", b"220-mx\r\n220 ready\r\n"), ("C", b"EHLO c\r\n"), ("S", b"250 ok\r\n"))
    rec.info("a note")
    transcript = rec.transcript()
    frame = transcript.to_dataframe()
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["dir"]) == ["S", "C", "S", "I"]
    text = transcript.to_text().splitlines()
    assert text[0].endswith("] 220-mx")
    assert text[1] == "220 ready"  # continuation lines unprefixed
    assert text[-1].endswith("] * a note")
    assert "<table" in transcript.to_html()
    assert set(transcript.timings()) == {"greeting", "ehlo"}


@settings(max_examples=200)
@given(chunks=st.lists(st.binary(max_size=200), max_size=20), split=st.integers(0, 50))
def test_arbitrary_server_bytes_never_break_the_recorder(chunks: list[bytes], split: int) -> None:
    rec = recorder(greet=False)
    for chunk in chunks:
        rec.received(chunk[:split])
        rec.received(chunk[split:])
    rec.closed()
    assert all(len(r.text) < 2000 for r in rec.rows)


@settings(max_examples=200)
@given(noise=st.text(max_size=50))
def test_auth_lines_never_leak_whatever_surrounds_them(noise: str) -> None:
    rec = recorder()
    dialog(
        rec,
        ("C", b"AUTH LOGIN\r\n"),
        ("S", b"334 VXNlcm5hbWU6\r\n"),
        ("C", b64(noise + PASSWORD) + b"\r\n"),
        ("S", f"535 {noise}\r\n".encode()),
    )
    assert_no_secret(rec)


@pytest.mark.parametrize("secret", [PASSWORD, TOKEN])
def test_secret_forms_cover_the_wire_encodings(secret: str) -> None:
    forms = secret_forms(secret, USER)
    assert secret in forms
    assert b64(secret).decode() in forms
    assert b64(f"\0{USER}\0{secret}").decode() in forms
    assert b64(f"user={USER}\x01auth=Bearer {secret}\x01\x01").decode() in forms


def test_auth_plain_without_a_user_name_is_scrubbed() -> None:
    """``\\0\\0password`` (no user name set) and an authzid in front are hidden too."""
    rec = Recorder(username=None, secrets=[Secret(PASSWORD)])
    rec.connected()
    for blob in (f"\0\0{PASSWORD}", f"admin\0{USER}\0{PASSWORD}", f"\0x\0{PASSWORD}"):
        rec.received(b"535 5.7.8 you sent " + b64(blob) + b"\r\n")
    shown = texts(rec)
    assert shown.count("<secret hidden>") == 3
    for blob in (f"\0\0{PASSWORD}", f"admin\0{USER}\0{PASSWORD}"):
        assert b64(blob).decode() not in shown


@pytest.mark.parametrize("offset", range(380, 402))
def test_a_secret_astride_the_row_cut_is_scrubbed_before_the_cut(offset: int) -> None:
    rec = recorder(greet=False)
    rec.received(("535 " + "x" * offset + PASSWORD + " tail\r\n").encode())
    shown = texts(rec)
    assert PASSWORD[:6] not in shown
    assert "more characters" in shown or len(shown) <= 400


def test_an_empty_transcript_has_no_timings() -> None:
    assert Recorder().transcript().timings() == {}


def test_an_endless_reply_is_shown_by_its_start_and_end() -> None:
    rec = recorder(greet=False)
    rec.received(b"250-x\r\n" * 5000 + b"250 last\r\n")
    (row,) = rec.rows
    lines = row.text.split("\n")
    assert len(lines) == MAX_REPLY_LINES + 2
    assert lines[-2] == f"… ({5000 - MAX_REPLY_LINES} more lines not shown)"
    assert lines[-1] == "250 last"
