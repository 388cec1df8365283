"""The delivery check through the Gmail API and Microsoft Graph, against the fake provider.

mailkit's own adapter (:mod:`mailkit.verify.api`, requests through mailkit's HTTP session)
searches the fake's mailboxes, whose endpoints answer as the real ones do
(``users.messages.list?q=rfc822msgid:`` and ``messages.get?format=raw``; Graph's
``/me/messages?$filter=internetMessageId eq '...'``, ``/$value`` and ``mailFolders``):
delivered to the inbox, filed as spam, a bounce from the mailer daemon, nothing found, and a
send-only consent that may not read the mailbox. The access token appears in no output.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest

from mailkit.delivery import DeliveryReport, MailboxSpec, Placement, VerifySpec
from mailkit.demo import DemoServer
from mailkit.demo.oauth import FakeOAuthProvider, visit
from mailkit.demo.server import SPAM_TRAP
from mailkit.oauth import GoogleClientConfig, GoogleOAuth
from mailkit.outcome import Cause
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore
from mailkit.settings import OrgSettings
from mailkit.testsend import send_test
from mailkit.verify.api import verify_api

pytestmark = pytest.mark.timeout(60)

ACCOUNT = "demo@example.com"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GMAIL_READ = "https://www.googleapis.com/auth/gmail.readonly"
GRAPH_SEND = "Mail.Send"
GRAPH_READ = "Mail.Read"
MODES: dict[str, tuple[Literal["google", "microsoft"], tuple[str, str]]] = {
    "gmail_api": ("google", (GMAIL_SEND, GMAIL_READ)),
    "graph": ("microsoft", (GRAPH_SEND, GRAPH_READ)),
}
DSN = (Path(__file__).parent / "data" / "delivery" / "postfix-dsn-5.1.1.eml").read_bytes()
DSN_ID = "<170000.1.mailkit@example.test>"


def token_for(fake: FakeOAuthProvider, kind: str, *, read: bool = True) -> Secret:
    provider, scopes = MODES[kind]
    return Secret(fake.issue_access_token(provider, scopes if read else scopes[:1]))


def spec(fake: FakeOAuthProvider, kind: str, *, timeout: float = 5.0) -> VerifySpec:
    mailbox = MailboxSpec(
        kind=kind, host=fake.base_url, username=ACCOUNT, ca_file=str(fake.ca_file)
    )
    return VerifySpec(mailbox=mailbox, timeout=timeout, poll_interval=0.1)


def org(fake: FakeOAuthProvider, kind: str) -> OrgSettings:
    return OrgSettings(
        mode="gmail_api" if kind == "gmail_api" else "microsoft_graph",
        from_address=ACCOUNT,
        api_url=fake.base_url,
        ca_file=str(fake.ca_file),
    )


@pytest.mark.parametrize("kind", ["gmail_api", "graph"])
def test_a_test_sent_to_oneself_is_found_in_the_inbox(
    fake_oauth: FakeOAuthProvider, kind: str
) -> None:
    token = token_for(fake_oauth, kind)
    result = send_test(
        org(fake_oauth, kind), to=[ACCOUNT], token=lambda: token, verify=spec(fake_oauth, kind)
    )
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    report = result.delivery
    assert report is not None
    assert report.placement is Placement.INBOX
    assert report.message_id == result.message_id
    assert report.hops == ()  # the fake adds no Received line to what it files
    text = repr(result) + str(result.as_dict()) + report.to_text()
    assert token.reveal() not in text


def file_message(fake: FakeOAuthProvider, raw: bytes, labels: tuple[str, ...]) -> None:
    fake.deliver_to(ACCOUNT, raw, labels=labels)


def message(message_id: str, *, spam: bool = False) -> bytes:
    flag = "X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=12.0 required=5.0\r\n" if spam else ""
    return (
        "Received: from mail.example.net by mx.example.com with ESMTPS id 1; "
        "Mon, 7 Dec 2026 02:40:01 +0000\r\n"
        "Authentication-Results: mx.example.com; spf=softfail smtp.mailfrom=example.net; "
        "dkim=none; dmarc=fail header.from=example.net\r\n"
        f"{flag}From: it@example.net\r\nTo: {ACCOUNT}\r\nSubject: mailkit test\r\n"
        f"Date: Mon, 7 Dec 2026 02:40:00 +0000\r\nMessage-ID: {message_id}\r\n\r\nhello\r\n"
    ).encode()


def check(
    fake: FakeOAuthProvider,
    kind: str,
    message_id: str,
    *,
    read: bool = True,
    sender: str | None = None,
    timeout: float = 3.0,
) -> tuple[DeliveryReport, Secret]:
    token = token_for(fake, kind, read=read)
    return asyncio.run(
        verify_api(
            spec(fake, kind, timeout=timeout),
            message_id,
            sent_at=datetime(2026, 12, 7, 2, 40, tzinfo=UTC),
            sender=sender,
            token=lambda: token,
        )
    ), token


@pytest.mark.parametrize("kind", ["gmail_api", "graph"])
def test_a_message_filed_as_spam_is_found_there_with_its_headers(
    fake_oauth: FakeOAuthProvider, kind: str
) -> None:
    file_message(fake_oauth, message("<spam.1@example.net>", spam=True), ("SPAM",))
    report, _ = check(fake_oauth, kind, "<spam.1@example.net>")
    assert report.placement is Placement.JUNK
    assert report.folder in ("SPAM", "Junk Email")
    assert report.auth_result("dmarc") == "fail"
    assert report.spam is not None
    assert report.spam.score == 12.0
    assert report.latency_s == 1.0


@pytest.mark.parametrize("kind", ["gmail_api", "graph"])
def test_a_bounce_from_the_mailer_daemon_is_found_when_the_mailbox_is_the_senders(
    fake_oauth: FakeOAuthProvider, kind: str
) -> None:
    file_message(fake_oauth, DSN, ("INBOX",))
    report, _ = check(fake_oauth, kind, DSN_ID, sender=ACCOUNT)
    assert report.placement is Placement.BOUNCED
    assert report.bounce is not None
    assert report.bounce.status == "5.1.1"
    # Not the sender's mailbox: no bounce is looked for, so it is simply not found.
    report, _ = check(fake_oauth, kind, DSN_ID, sender="someone@else.example", timeout=0.3)
    assert report.placement is Placement.NOT_FOUND


@pytest.mark.parametrize("kind", ["gmail_api", "graph"])
def test_a_send_only_consent_is_reported_with_the_scope_to_grant(
    fake_oauth: FakeOAuthProvider, kind: str
) -> None:
    report, token = check(fake_oauth, kind, "<any@example.net>", read=False)
    assert report.placement is Placement.UNCHECKED
    assert report.error_kind == "auth"
    assert ("gmail.readonly" if kind == "gmail_api" else "Mail.Read") in report.error
    assert token.reveal() not in str(report.as_dict())


def test_no_consent_is_reported_not_raised(fake_oauth: FakeOAuthProvider) -> None:
    report = asyncio.run(verify_api(spec(fake_oauth, "graph"), "<x@y>", sent_at=None, token=None))
    assert report.placement is Placement.UNCHECKED
    assert "no OAuth consent" in report.error


def test_a_spam_placement_through_send_test_is_diagnosed(fake_oauth: FakeOAuthProvider) -> None:
    """Sent to another address (only a Sent copy here); the receiving side filed it as spam."""
    token = token_for(fake_oauth, "gmail_api")
    original = fake_oauth.deliver_to

    def spam_copy(account: str, raw: bytes, *, labels: tuple[str, ...] = ("INBOX",)) -> str:
        original(account, raw, labels=labels)
        return original(account, raw, labels=("SPAM",))  # the recipient's copy, as spam

    fake_oauth.deliver_to = spam_copy  # type: ignore[method-assign]
    result = send_test(
        org(fake_oauth, "gmail_api"),
        to=["other@example.org"],
        token=lambda: token,
        verify=spec(fake_oauth, "gmail_api"),
    )
    assert result.delivery is not None
    assert result.delivery.placement is Placement.JUNK
    assert result.diagnosis is not None
    assert result.diagnosis.cause is Cause.DELIVERED_TO_SPAM


@pytest.mark.parametrize(
    ("to", "placement"), [(ACCOUNT, Placement.INBOX), (SPAM_TRAP, Placement.JUNK)]
)
def test_an_smtp_send_is_checked_in_the_gmail_mailbox_with_the_stored_consent(
    fake_oauth_demo: DemoServer, to: str, placement: Placement
) -> None:
    """The send signs in with a password over SMTP; the check reads the recipient's Gmail
    mailbox with the Google consent stored for the same account (from the real sign-in flow,
    granting gmail.readonly): the send's own credentials play no part in it."""
    demo = fake_oauth_demo.settings
    memory = MemorySecretStore()
    google = GoogleOAuth(
        GoogleClientConfig.load(demo.google_client_config()), secrets=memory, ca_file=demo.ca_file
    )
    consent = google.start_paste([GMAIL_READ])
    token = consent.finish(visit(consent.url, demo.ca_file))
    if to == SPAM_TRAP:  # the check reads the spam trap's mailbox, as the spam trap
        fake_oauth_demo.oauth.signed_in = SPAM_TRAP
        consent = google.start_paste([GMAIL_READ])
        token = consent.finish(visit(consent.url, demo.ca_file))
    mailbox = MailboxSpec(
        kind="gmail_api", host=demo.api_url, username=to, ca_file=str(demo.ca_file)
    )
    result = send_test(
        demo.org(),
        to=[to],
        password=demo.password_secret(),
        secrets=memory,
        verify=VerifySpec(mailbox=mailbox, timeout=5, poll_interval=0.1),
    )
    assert result.delivery is not None
    assert result.delivery.placement is placement, result.delivery.error
    assert result.delivery.hops[-1].protocol == "ESMTPSA"
    assert token.access_token.reveal() not in str(result.as_dict()) + repr(result)
