"""The delivery round trip against real Postfix delivering to real Dovecot, read over IMAPS.

``send_test(..., verify=...)`` submits the test message to Postfix (STARTTLS, AUTH) and then
searches the recipient's Dovecot mailbox with imapclient: delivered to the inbox, filed into
Junk by a Sieve rule, accepted and discarded (never delivered), and bounced by Dovecot's LMTP
with a real Postfix DSN in the sender's mailbox. Also: a mailbox that refuses the sign-in or
shows an untrusted certificate, and the canary — the IMAP password appears in no output, not
even imapclient's DEBUG log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from mailstack import (
    JUNK_PASSWORD,
    JUNK_USER,
    RECIPIENT,
    RECIPIENT_PASSWORD,
    SENDER,
    SENDER_PASSWORD,
    UNICODE_PASSWORD,
    UNICODE_USER,
    UNKNOWN_USER,
    VOID_RECIPIENT,
    MailStack,
    running_mailstack,
)

from mailkit.delivery import Placement, VerifySpec, parse_imap_url
from mailkit.errors import UnsafeSettingWarning
from mailkit.faces import Face
from mailkit.outcome import Cause, Kind, Phase
from mailkit.result import TestResult
from mailkit.secret import Secret
from mailkit.settings import OrgSettings
from mailkit.testsend import send_test
from mailkit.transcript import secret_forms

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def stack() -> Iterator[MailStack]:
    with running_mailstack() as server:
        yield server


def org(stack: MailStack) -> OrgSettings:
    """The sender's settings; the loopback server is an IP literal, which settings warn about."""
    with pytest.warns(UnsafeSettingWarning):
        return _org(stack)


def _org(stack: MailStack) -> OrgSettings:
    return OrgSettings(
        host=stack.host,
        port=stack.submission_port,
        ca_file=str(stack.ca_file),
        username=SENDER,
        from_address=SENDER,
        connect_timeout=10,
        command_timeout=10,
    )


def spec(
    stack: MailStack,
    user: str = RECIPIENT,
    password: str = RECIPIENT_PASSWORD,
    *,
    timeout: float = 20.0,
    ca_file: str | None = None,
    **changes: Any,
) -> VerifySpec:
    mailbox = parse_imap_url(
        stack.imap_url(user),
        password=Secret(password),
        ca_file=ca_file if ca_file is not None else str(stack.ca_file),
    )
    return VerifySpec(mailbox=mailbox, timeout=timeout, poll_interval=0.2, **changes)


def send(stack: MailStack, to: str, verify: VerifySpec) -> TestResult:
    return send_test(org(stack), to=[to], password=Secret(SENDER_PASSWORD), verify=verify)


def test_delivered_to_the_inbox_with_its_received_chain(stack: MailStack) -> None:
    result = send(stack, RECIPIENT, spec(stack))
    report = result.delivery
    assert report is not None
    assert result.ok, result.diagnosis
    assert result.diagnosis is None
    assert report.placement is Placement.INBOX
    assert report.folder == "INBOX"
    assert report.message_id == result.message_id
    # Postfix's submission hop, then its LMTP hand-off to Dovecot: two Received lines.
    assert len(report.hops) >= 2
    first, last = report.hops[0], report.hops[-1]
    assert "ESMTPSA" in first.protocol.upper()
    assert first.tls.startswith("TLSv1.3")
    assert "LMTP" in last.protocol.upper()
    assert all(h.timestamp is not None and h.delay_s is not None for h in report.hops)
    assert report.arrived is not None
    assert report.latency_s is not None
    assert 0 <= report.latency_s < 20
    assert "Junk" in report.searched  # found by SPECIAL-USE, searched after INBOX
    assert report.searched[0] == "INBOX"
    info = [r.text for r in result.transcript.rows if r.phase.value == "delivery"]
    assert info[0].startswith(f"delivery check: looking for {result.message_id}")
    assert info[1].startswith("delivery check: found in INBOX (inbox) after")
    assert "delivery" in result.timings
    data = result.as_dict()["delivery"]
    assert data["placement"] == "inbox"
    assert data["received"][0]["with"].upper().startswith("ESMTPSA")


def test_filed_into_junk_by_sieve_is_diagnosed_as_spam(stack: MailStack) -> None:
    result = send(stack, JUNK_USER, spec(stack, JUNK_USER, JUNK_PASSWORD))
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.JUNK
    assert report.folder == "Junk"
    assert not result.ok
    d = result.diagnosis
    assert d is not None
    assert (d.phase, d.cause) == (Phase.DELIVERY, Cause.DELIVERED_TO_SPAM)
    assert "spam folder" in d.title


def test_accepted_and_discarded_is_not_delivered_within_the_timeout(stack: MailStack) -> None:
    # The recipient's mailbox (bob's) is searched; Postfix dropped the mail for bob@void.test.
    result = send(stack, VOID_RECIPIENT, spec(stack, timeout=2.0))
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.NOT_FOUND
    assert report.waited_s >= 2.0
    assert report.searched == ("INBOX", "Junk")
    d = result.diagnosis
    assert d is not None
    assert d.cause is Cause.NOT_DELIVERED
    assert d.kind is Kind.OUTCOME_UNKNOWN
    assert "--verify-timeout" in d.for_face(Face.CLI).to_text()
    assert result.message_id is not None
    assert result.message_id in d.to_text()


def test_a_bounce_in_the_senders_mailbox_is_found_and_explained(stack: MailStack) -> None:
    sender_box = parse_imap_url(
        stack.imap_url(SENDER), password=Secret(SENDER_PASSWORD), ca_file=str(stack.ca_file)
    )
    result = send(stack, UNKNOWN_USER, spec(stack, sender_mailbox=sender_box))
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.BOUNCED, report
    bounce = report.bounce
    assert bounce is not None
    assert bounce.status == "5.1.1"
    assert bounce.action == "failed"
    assert bounce.final_recipient.lower() == UNKNOWN_USER
    assert "User doesn't exist" in bounce.diagnostic_code
    assert bounce.original_message_id == result.message_id
    assert report.bounce_mailbox == sender_box.label
    d = result.diagnosis
    assert d is not None
    assert d.cause is Cause.BOUNCED_UNKNOWN_RECIPIENT
    assert d.enhanced == "5.1.1"
    assert d.kind is Kind.PERMANENT


def test_a_test_sent_to_oneself_finds_its_own_bounce_without_a_sender_mailbox(
    stack: MailStack,
) -> None:
    """The sender's own mailbox as the one to search: a bounce comes back there."""
    verify = spec(stack, SENDER, SENDER_PASSWORD)
    assert verify.bounce_mailbox(SENDER) == verify.mailbox
    result = send(stack, UNKNOWN_USER, verify)
    assert result.delivery is not None
    assert result.delivery.placement is Placement.BOUNCED
    assert result.delivery.bounce_mailbox == verify.mailbox.label


def test_a_refused_mailbox_sign_in_is_its_own_diagnosis(stack: MailStack) -> None:
    result = send(stack, RECIPIENT, spec(stack, password="not-the-password-81"))
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.UNCHECKED
    assert report.error_kind == "auth"
    d = result.diagnosis
    assert d is not None
    assert d.cause is Cause.MAILBOX_UNCHECKED
    assert d.kind is Kind.CONFIGURATION
    assert "not-the-password-81" not in str(result.as_dict()) + repr(result)


def test_an_untrusted_mailbox_certificate_is_reported_not_skipped(
    stack: MailStack, tmp_path: Any
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = send(stack, RECIPIENT, spec(stack, ca_file=str(other)))
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.UNCHECKED
    assert report.error_kind == "tls"
    assert "not trusted" in report.error
    d = result.diagnosis
    assert d is not None
    assert "--ca-file" in d.for_face(Face.CLI).to_text()


def test_canary_the_imap_password_appears_in_no_output(
    stack: MailStack, caplog: pytest.LogCaptureFixture
) -> None:
    """Result, dict, repr, text, diagnosis and every log record at DEBUG (imapclient logs its
    commands there) are free of the mailbox password in every encoding."""
    caplog.set_level(logging.DEBUG)
    results = [
        send(stack, RECIPIENT, spec(stack)),
        send(stack, VOID_RECIPIENT, spec(stack, timeout=0.5)),
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "LOGIN" in logged  # control: imapclient's dialog was logged at DEBUG
    outputs = [logged]
    for result in results:
        outputs += [
            repr(result),
            str(result.as_dict()),
            result.transcript.to_text(),
            result.delivery.to_text() if result.delivery else "",
            result.diagnosis.to_text() if result.diagnosis else "",
        ]
    text = "\n".join(outputs)
    for form in secret_forms(RECIPIENT_PASSWORD, RECIPIENT):
        assert form not in text, form


def test_a_non_ascii_mailbox_password_signs_in_with_authenticate_plain(
    stack: MailStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = send(stack, UNICODE_USER, spec(stack, UNICODE_USER, UNICODE_PASSWORD))
    assert result.delivery is not None
    assert result.delivery.placement is Placement.INBOX, result.delivery.error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "AUTHENTICATE" in logged  # control: the dialog was logged
    text = logged + repr(result) + str(result.as_dict())
    for form in secret_forms(UNICODE_PASSWORD, UNICODE_USER):
        assert form not in text, form
