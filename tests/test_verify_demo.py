"""The demo's mailbox over IMAPS (mailkit.demo.imap): the round trip a notebook shows.

A test send through the demo SMTP server, verified with imapclient against the demo's IMAP
server: the inbox with its Received chain and Authentication-Results, the spam trap's Junk
folder (SPECIAL-USE ``\\Junk``), a wrong password, and the dialog details imapclient relies on
(literals, UID SEARCH, FETCH BODY.PEEK[] with INTERNALDATE, unknown commands).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailkit.delivery import Placement
from mailkit.demo import DemoServer
from mailkit.demo.server import SPAM_TRAP, DemoSettings
from mailkit.outcome import Cause
from mailkit.result import TestResult
from mailkit.secret import Secret
from mailkit.testsend import send_test
from mailkit.verify.imap import verify_imap

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path_factory.mktemp("demo"), ews=False) as server:
        yield server.settings


def send(demo: DemoSettings, to: str) -> TestResult:
    return send_test(demo.org(), to=[to], password=demo.password_secret(), verify=demo.verify())


def client(demo: DemoSettings) -> IMAPClient:
    assert demo.imap_port is not None
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    imap = IMAPClient(demo.host, port=demo.imap_port, ssl=True, ssl_context=context, timeout=10)
    imap.login(demo.account("demo").user, demo.password_secret().reveal())
    return imap


def test_a_test_send_arrives_in_the_demo_inbox(demo: DemoSettings) -> None:
    result = send(demo, "someone@example.com")
    assert result.ok, result.diagnosis
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.INBOX
    assert report.searched == ("INBOX", "Junk")
    assert report.hops[-1].by_host == "localhost"
    assert report.hops[-1].protocol == "ESMTPSA"
    assert report.hops[-1].tls.startswith("TLSv1.3")
    assert report.auth_result("auth") == "pass"
    assert report.latency_s is not None


def test_mail_to_the_spam_trap_lands_in_junk_with_its_spam_headers(demo: DemoSettings) -> None:
    result = send(demo, SPAM_TRAP)
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.JUNK
    assert report.folder == "Junk"
    assert report.spam is not None
    assert report.spam.flagged is True
    assert report.spam.score == 9.9
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.DELIVERED_TO_SPAM


def test_the_demo_imap_speaks_what_imapclient_needs(demo: DemoSettings) -> None:
    imap = client(demo)
    try:
        folders = imap.list_folders()
        assert [(name, b"\\Junk" in flags) for flags, _, name in folders] == [
            ("INBOX", False),
            ("Junk", True),
        ]
        info = imap.select_folder("INBOX", readonly=True)
        assert info[b"READ-ONLY"] == [b""]
        everything = imap.search(["ALL"])
        assert everything
        assert imap.search(["HEADER", "X-Mailer", "mailkit"]) == everything
        # A non-ASCII criterion travels as a literal (matched against the raw bytes only).
        assert imap.search(["TEXT", "Prüfung-nirgends"], charset="utf-8") == []
        uid = everything[0]
        data = imap.fetch([uid], ["BODY.PEEK[]", "INTERNALDATE", "RFC822.SIZE"])[uid]
        raw = data[b"BODY[]"]
        assert raw.startswith(b"Return-Path:")
        assert data[b"RFC822.SIZE"] == len(raw)
        assert data[b"INTERNALDATE"].year >= 2024
        with pytest.raises(IMAPClientError):
            imap.append("INBOX", b"Subject: x\r\n\r\nx\r\n")  # read-only, not spoken
    finally:
        imap.logout()


def test_a_wrong_password_is_refused(demo: DemoSettings) -> None:
    assert demo.imap_port is not None
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    imap = IMAPClient(demo.host, port=demo.imap_port, ssl=True, ssl_context=context, timeout=10)
    try:
        with pytest.raises(LoginError):
            imap.login(demo.account("demo").user, "not-the-demo-password")
    finally:
        imap.shutdown()


def test_the_verify_spec_uses_the_demo_ca_and_account(demo: DemoSettings) -> None:
    spec = demo.verify(timeout=3)
    assert spec.mailbox.ca_file == str(demo.ca_file)
    assert spec.mailbox.username == demo.account("demo").user
    assert isinstance(spec.mailbox.password, Secret)
    assert spec.timeout == 3
    assert Path(str(demo.ca_file)).is_file()


def test_a_non_ascii_demo_password_signs_in_with_authenticate_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IMAP LOGIN carries ASCII only: the check falls back to AUTHENTICATE PLAIN (UTF-8)."""
    password = "Démo-Pässwort-ß1"
    monkeypatch.setenv("MAILKIT_DEMO_PASSWORD", password)
    with DemoServer(tmp_path / "demo", password=password, oauth=False, ews=False) as server:
        spec = server.settings.verify(timeout=0.3)
        found = verify_imap(spec, "<nowhere@example.com>", sent_at=None)
        wrong = replace(spec, mailbox=replace(spec.mailbox, password=Secret("Démo-falsch-ß")))
        refused = verify_imap(wrong, "<nowhere@example.com>", sent_at=None)
    assert found.placement is Placement.NOT_FOUND, found.error  # signed in and searched
    assert found.searched == ("INBOX", "Junk")
    assert refused.placement is Placement.UNCHECKED
    assert refused.error_kind == "auth"
    assert "Démo-falsch-ß" not in refused.error


def raw_session(demo: DemoSettings, lines: list[bytes]) -> bytes:
    """Send ``lines`` over IMAPS as they are and return everything the server said."""
    import socket

    assert demo.imap_port is not None
    context = ssl.create_default_context(cafile=str(demo.ca_file))
    plain = socket.create_connection(("127.0.0.1", demo.imap_port), timeout=5)
    with context.wrap_socket(plain, server_hostname="localhost") as tls:
        for line in lines:
            tls.sendall(line)
        tls.sendall(b"z LOGOUT\r\n")
        said = b""
        while chunk := tls.recv(65536):
            said += chunk
    return said


def test_the_demo_imap_answers_nonsense_with_bad_and_keeps_serving(demo: DemoSettings) -> None:
    said = raw_session(
        demo,
        [
            b"\r\n",
            b"a1\r\n",
            b'a2 LOGIN "unterminated\r\n',
            b"a3 SELECT INBOX\r\n",  # not signed in
            b"a4 FROBNICATE\r\n",
            b"a5 UID\r\n",
            b"a6 LOGIN demo@example.com wrong\r\n",
            b"a7 APPEND INBOX {999999999}\r\n",
        ],
    )
    assert said.startswith(b"* OK [CAPABILITY IMAP4rev1 SPECIAL-USE")
    assert b"a1 BAD" in said
    assert b"a2 BAD" in said or b"a2 NO" in said
    assert b"a3 NO Sign in first" in said
    assert b"a4 NO Sign in first" in said or b"a4 BAD" in said
    assert b"a5 BAD" in said
    assert b"a6 NO [AUTHENTICATIONFAILED]" in said
    assert b"a7 BAD literal too large" in said
    assert said.rstrip().endswith(b"z OK LOGOUT completed")
