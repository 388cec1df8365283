"""The probe against a real Postfix: what an MTA really says, not what a fake believes it says.

Postfix's submission port (STARTTLS required before AUTH) and its implicit-TLS port, with
Dovecot SASL behind both (``tests/postfix_server.py``; fails in CI when Postfix is missing).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from postfix_server import PostfixServer, running_postfix

from mailkit.probereport import Outcome
from mailkit.settings import Security
from mailkit.smtpprobe import probe


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixServer]:
    with running_postfix() as server:
        yield server


def test_postfix_ports_and_verdict(postfix: PostfixServer) -> None:
    report = probe(
        postfix.host,
        [postfix.submission_port, postfix.smtps_port],
        tls_ports=[postfix.smtps_port],
        ca_file=str(postfix.ca_file),
    )
    submission, smtps = report.ports
    assert submission.outcome is Outcome.OK
    assert submission.security is Security.STARTTLS
    assert smtps.outcome is Outcome.OK
    assert smtps.security is Security.IMPLICIT_TLS
    # Postfix with smtpd_tls_auth_only: STARTTLS and no AUTH before TLS; AUTH after it.
    assert submission.starttls_offered
    assert submission.auth_before == ()
    assert {"PLAIN", "LOGIN"} <= set(submission.auth_after)
    assert {"PIPELINING", "SIZE", "8BITMIME", "CHUNKING"} <= set(submission.extensions)
    for port in report.ports:
        assert port.greeting.startswith("220 ")
        assert port.trusted
        assert port.tls is not None
        assert port.tls.version in ("TLSv1.2", "TLSv1.3")
    verdict = report.verdict
    assert (verdict.port, verdict.security) == (postfix.smtps_port, Security.IMPLICIT_TLS)
    assert verdict.trusted
    assert verdict.warnings == ()


DISCONNECT = re.compile(r"postfix/(submission|smtps)/smtpd\[\d+\]: disconnect from \S+ (.*)")


def test_postfix_logs_only_ehlo_starttls_and_quit(postfix: PostfixServer) -> None:
    """Postfix counts each session's commands when it ends: a probe's are EHLO, STARTTLS and
    a polite QUIT, never AUTH or MAIL."""
    before = len(postfix.postfix_log.read_bytes())
    probe(
        postfix.host,
        [postfix.submission_port, postfix.smtps_port],
        tls_ports=[postfix.smtps_port],
        ca_file=str(postfix.ca_file),
    )
    deadline = time.monotonic() + 10
    sessions: dict[str, str] = {}
    while time.monotonic() < deadline and len(sessions) < 2:
        log = postfix.postfix_log.read_bytes()[before:].decode(errors="replace")
        sessions = dict(DISCONNECT.findall(log))
        time.sleep(0.1)
    assert sessions == {
        "submission": "ehlo=2 starttls=1 quit=1 commands=4",
        "smtps": "ehlo=1 quit=1 commands=2",
    }
