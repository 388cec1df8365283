"""The delivery report's pure parts: Received chains, Authentication-Results, spam verdicts,
delivery status notifications, mailbox addresses, spam folders, and the delivery diagnosis.

The header samples follow what Postfix, Dovecot, Gmail and Exchange Online write (the Postfix
DSN in ``data/delivery`` was produced by the real Postfix of ``tests/mailstack.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailkit.delivery import (
    Bounce,
    DeliveryReport,
    MailboxSpec,
    Placement,
    VerifySpec,
    auth_results,
    bounce_of,
    found_report,
    junk_folders,
    parse_imap_url,
    received_hops,
    spam_verdict,
)
from mailkit.diagnose.delivery import DELIVERY_CAUSES, diagnose_delivery
from mailkit.errors import SettingsError
from mailkit.faces import Face
from mailkit.outcome import Cause, Kind, Phase
from mailkit.secret import Secret

DATA = Path(__file__).parent / "data" / "delivery"
POSTFIX_DSN = (DATA / "postfix-dsn-5.1.1.eml").read_bytes()
POSTFIX_DSN_ID = "<170000.1.mailkit@example.test>"

# -- Received ------------------------------------------------------------------------------------

POSTFIX_SUBMISSION = (
    "from [127.0.0.1] (unknown [127.0.0.1])\n\t(using TLSv1.3 with cipher "
    "TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature ECDSA "
    "(prime256v1) server-digest SHA256)\n\t(No client certificate requested)\n\tby localhost "
    "(Postfix) with ESMTPSA id 52C5820C8DF\n\tfor <bob@example.test>; Mon,  7 Dec 2026 "
    "02:44:37 +0000 (UTC)"
)
DOVECOT_LMTP = (
    "from localhost\n\tby vm with LMTP\n\tid WKmIFpUdFmuOAgAAg+zDdQ\n\t(envelope-from "
    "<alice@example.test>)\n\tfor <bob@example.test>; Mon, 07 Dec 2026 02:44:39 +0000"
)
EXCHANGE = (
    "from AM6PR04MB1234.eurprd04.prod.outlook.com (2603:10a6:20b:10::12) by "
    "DB9PR04MB5678.eurprd04.prod.outlook.com (2603:10a6:10:2c::3) with Microsoft SMTP Server "
    "(version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7409.25; Mon, 7 "
    "Dec 2026 02:44:40 +0000"
)


def test_received_lines_become_hops_oldest_first_with_per_hop_delays() -> None:
    sent = datetime(2026, 12, 7, 2, 44, 36, tzinfo=UTC)
    # A message lists the newest Received first.
    hops = received_hops([EXCHANGE, DOVECOT_LMTP, POSTFIX_SUBMISSION], sent)
    assert [h.index for h in hops] == [1, 2, 3]
    first, second, third = hops
    assert (first.from_host, first.by_host, first.protocol) == (
        "[127.0.0.1]",
        "localhost",
        "ESMTPSA",
    )
    assert first.queue_id == "52C5820C8DF"
    assert first.tls == "TLSv1.3 TLS_AES_256_GCM_SHA384"
    assert first.delay_s == 1.0  # from the Date
    assert (second.by_host, second.protocol, second.delay_s) == ("vm", "LMTP", 2.0)
    assert third.protocol == "Microsoft SMTP Server"
    assert third.tls == "TLS1_2 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    assert third.delay_s == 1.0
    assert third.as_dict()["by"] == "DB9PR04MB5678.eurprd04.prod.outlook.com"


def test_a_received_line_without_a_date_has_no_delay_and_does_not_break_the_chain() -> None:
    hops = received_hops(["by mx.example.net with SMTP id 1; not a date", POSTFIX_SUBMISSION])
    assert hops[0].timestamp is not None
    assert hops[1].timestamp is None
    assert hops[1].delay_s is None


def test_a_clock_running_behind_shows_as_a_negative_delay() -> None:
    late = "by b with SMTP; Mon, 7 Dec 2026 02:44:30 +0000"
    early = "by a with SMTP; Mon, 7 Dec 2026 02:44:40 +0000"
    hops = received_hops([late, early])
    assert hops[1].delay_s == -10.0


# -- Authentication-Results ----------------------------------------------------------------------

GMAIL_AR = (
    "mx.google.com;\n       dkim=pass header.i=@example.com header.s=sel1 header.b=Ab12Cd34;\n"
    "       spf=pass (google.com: domain of it@example.com designates 192.0.2.10 as permitted "
    "sender) smtp.mailfrom=it@example.com;\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) "
    "header.from=example.com"
)
MICROSOFT_AR = (
    "spf=fail (sender IP is 192.0.2.10) smtp.mailfrom=example.com; dkim=none (message not "
    "signed) header.d=none;dmarc=fail action=quarantine header.from=example.com;compauth=fail "
    "reason=000"
)


def test_gmails_authentication_results() -> None:
    checks = auth_results([GMAIL_AR])
    assert [(c.method, c.result) for c in checks] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert {c.authserv_id for c in checks} == {"mx.google.com"}
    dmarc = checks[2]
    assert dmarc.comment == "p=REJECT sp=REJECT dis=NONE"
    assert dict(dmarc.properties) == {"header.from": "example.com"}
    assert dict(checks[0].properties)["header.s"] == "sel1"
    assert "designates 192.0.2.10" in checks[1].comment


def test_microsofts_authentication_results_without_an_authserv_id() -> None:
    checks = auth_results([MICROSOFT_AR])
    assert [(c.method, c.result) for c in checks] == [
        ("spf", "fail"),
        ("dkim", "none"),
        ("dmarc", "fail"),
        ("compauth", "fail"),
    ]
    assert all(c.authserv_id == "" for c in checks)
    assert dict(checks[2].properties) == {"action": "quarantine", "header.from": "example.com"}
    assert dict(checks[3].properties) == {"reason": "000"}


def test_no_results_and_versions() -> None:
    assert auth_results(["example.org 1; none"]) == ()
    (check,) = auth_results(['example.org; spf=pass smtp.mailfrom="a;b@example.org"'])
    assert dict(check.properties) == {"smtp.mailfrom": "a;b@example.org"}


# -- spam headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "flagged", "score", "threshold", "scl"),
    [
        (
            [("X-Spam-Flag", "YES"), ("X-Spam-Status", "Yes, score=7.1 required=5.0 tests=X")],
            True,
            7.1,
            5.0,
            None,
        ),
        ([("X-Spam-Status", "No, score=-0.1 required=5.0")], False, -0.1, 5.0, None),
        (
            [("X-Spamd-Result", "default: False [3.40 / 15.00]; R_SPF_ALLOW(-0.20)")],
            False,
            3.4,
            15.0,
            None,
        ),
        ([("X-Spam", "Yes"), ("X-Rspamd-Score", "9.5")], True, 9.5, None, None),
        (
            [("X-Forefront-Antispam-Report", "CIP:192.0.2.1;CTRY:;LANG:en;SCL:5;SRV:;SFV:SPM;")],
            True,
            None,
            None,
            5,
        ),
        ([("X-MS-Exchange-Organization-SCL", "1")], False, None, None, 1),
        ([("X-Microsoft-Antispam", "BCL:0;")], None, None, None, None),
    ],
)
def test_spam_verdicts(
    headers: list[tuple[str, str]],
    flagged: bool | None,
    score: float | None,
    threshold: float | None,
    scl: int | None,
) -> None:
    verdict = spam_verdict([("Subject", "hello"), *headers])
    assert verdict is not None
    assert (verdict.flagged, verdict.score, verdict.threshold, verdict.scl) == (
        flagged,
        score,
        threshold,
        scl,
    )
    assert "Subject" not in verdict.headers
    assert set(verdict.headers) == {name for name, _ in headers}


def test_no_spam_headers_no_verdict() -> None:
    assert spam_verdict([("Subject", "x"), ("Received", "by a")]) is None


# -- bounces ---------------------------------------------------------------------------------------


def test_postfixs_dsn_is_read_field_by_field() -> None:
    bounce = bounce_of(POSTFIX_DSN, POSTFIX_DSN_ID)
    assert bounce is not None
    assert bounce.action == "failed"
    assert bounce.status == "5.1.1"
    assert bounce.permanent
    assert bounce.final_recipient == "nobody-here@example.test"
    assert bounce.reporting_mta == "localhost"
    assert bounce.diagnostic_code.startswith("550 5.1.1 <nobody-here@example.test> User doesn't")
    assert bounce.original_message_id == POSTFIX_DSN_ID
    assert bounce.arrived is not None


def test_a_dsn_about_another_message_is_not_this_ones_bounce() -> None:
    assert bounce_of(POSTFIX_DSN, "<other.1.mailkit@example.test>") is None
    assert bounce_of(POSTFIX_DSN, "") is None


EXCHANGE_NDR = b"""\
From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>
To: <it@example.com>
Subject: Undeliverable: mailkit test
Date: Mon, 7 Dec 2026 02:50:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

Your message to ann@contoso.com couldn't be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns;DB9PR04MB5678.eurprd04.prod.outlook.com
Received-From-MTA: dns;mail.example.com
Arrival-Date: Mon, 7 Dec 2026 02:49:58 +0000

Final-Recipient: rfc822;ann@contoso.com
Action: failed
Status: 5.7.509
Diagnostic-Code: smtp;550 5.7.509 Access denied, sending domain example.com does not pass
 DMARC verification and has a DMARC policy of reject.

--b1
Content-Type: text/rfc822-headers

From: it@example.com
To: ann@contoso.com
Subject: mailkit test
Message-ID: <x.2.mailkit@example.com>

--b1--
"""

DELAYED_DSN = EXCHANGE_NDR.replace(b"Action: failed", b"Action: delayed").replace(
    b"Status: 5.7.509", b"Status: 4.4.7"
)

PLAIN_BOUNCE = b"""\
From: MAILER-DAEMON@old.example.net
To: it@example.com
Subject: Returned mail: see transcript for details
Date: Mon, 7 Dec 2026 02:50:00 +0000

   ----- The following addresses had permanent fatal errors -----
<gone@example.net>
    (reason: 550 5.1.1 User unknown)

   ----- Original message -----
Message-ID: <x.3.mailkit@example.com>
"""


def test_exchanges_ndr_with_returned_headers() -> None:
    bounce = bounce_of(EXCHANGE_NDR, "<x.2.mailkit@example.com>")
    assert bounce is not None
    assert (bounce.action, bounce.status) == ("failed", "5.7.509")
    assert "DMARC" in bounce.diagnostic_code
    assert bounce.final_recipient == "ann@contoso.com"
    assert bounce_of(EXCHANGE_NDR, "<x.9.mailkit@example.com>") is None


def test_a_delayed_notification_is_not_permanent() -> None:
    bounce = bounce_of(DELAYED_DSN, "<x.2.mailkit@example.com>")
    assert bounce is not None
    assert not bounce.permanent
    assert bounce.status == "4.4.7"


def test_a_bounce_without_a_report_part_counts_only_when_it_quotes_the_message_id() -> None:
    bounce = bounce_of(PLAIN_BOUNCE, "<x.3.mailkit@example.com>")
    assert bounce is not None
    assert (bounce.action, bounce.status) == ("failed", "5.1.1")
    assert "User unknown" in bounce.diagnostic_code
    assert bounce_of(PLAIN_BOUNCE, "<x.4.mailkit@example.com>") is None
    # The test message itself quotes its Message-ID but is no bounce.
    mail = b"From: it@example.com\nSubject: hi\nMessage-ID: <x.3.mailkit@example.com>\n\nhi\n"
    assert bounce_of(mail, "<x.3.mailkit@example.com>") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_an_exception(raw: bytes) -> None:
    bounce_of(raw, "<a@b>")
    found_report(
        raw,
        mailbox="m",
        message_id="<a@b>",
        folder="INBOX",
        placement=Placement.INBOX,
        sent_at=None,
    )


# -- found report ----------------------------------------------------------------------------------


def test_found_report_arrival_is_the_newest_received_stamp() -> None:
    raw = (
        f"Received: {DOVECOT_LMTP}\r\nReceived: {POSTFIX_SUBMISSION}\r\n"
        f"Authentication-Results: {GMAIL_AR}\r\nX-Spam-Status: No, score=0.1 required=5.0\r\n"
        "Date: Mon, 7 Dec 2026 02:44:36 +0000\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n"
    ).encode()
    sent = datetime(2026, 12, 7, 2, 44, 36, 500000, tzinfo=UTC)
    report = found_report(
        raw,
        mailbox="imaps://bob@h:993",
        message_id="<m@x>",
        folder="INBOX",
        placement=Placement.INBOX,
        sent_at=sent,
    )
    assert report.arrived == datetime(2026, 12, 7, 2, 44, 39, tzinfo=UTC)
    assert report.latency_s == 2.5
    assert report.auth_result("dmarc") == "pass"
    assert report.spam is not None
    assert report.spam.flagged is False
    assert diagnose_delivery(report) is None
    text = report.to_text()
    assert "Received chain" in text
    assert "dmarc=pass" in text
    assert report.as_dict()["received"][1]["with"] == "LMTP"


# -- mailbox addresses and folders -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "user", "host", "port"),
    [
        ("imaps://bob@imap.example.com", "bob", "imap.example.com", 993),
        (
            "imaps://bob@example.com@imap.example.com:1993",
            "bob@example.com",
            "imap.example.com",
            1993,
        ),
        ("IMAPS://bob%40example.com@127.0.0.1:9993/", "bob@example.com", "127.0.0.1", 9993),
        ("imaps://bob@[::1]:993", "bob", "::1", 993),
    ],
)
def test_imap_urls(url: str, user: str, host: str, port: int) -> None:
    box = parse_imap_url(url, password=Secret("pw"))
    assert (box.username, box.host, box.port) == (user, host, port)
    assert box.label == f"imaps://{user}@{host}:{port}"
    assert "pw" not in repr(box)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("imap://bob@host", "unencrypted"),
        ("https://bob@host", "not an IMAP address"),
        ("imaps://host", "names no user"),
        ("imaps://bob:secret@host", "no password"),
        ("imaps://bob@host:99999", "port"),
        ("imaps://bob@host:abc", "port"),
        ("imaps://bob@", "not a host name"),
    ],
)
def test_bad_imap_urls_name_the_field_and_the_fix(url: str, says: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_imap_url(url)
    (problem,) = raised.value.problems
    assert problem.field == "verify_imap"
    assert says in problem.message
    assert "secret" not in str(raised.value) or "password" in says


def test_verify_spec_checks_its_numbers() -> None:
    box = MailboxSpec(host="h", username="u")
    with pytest.raises(SettingsError, match="verify_timeout"):
        VerifySpec(mailbox=box, timeout=0)
    with pytest.raises(SettingsError, match="poll_interval"):
        VerifySpec(mailbox=box, poll_interval=-1)


def test_the_bounce_mailbox_is_the_senders_own_or_the_one_given() -> None:
    mine = MailboxSpec(host="h", username="It@Example.com")
    other = MailboxSpec(host="h", username="bob@example.com")
    assert VerifySpec(mailbox=mine).bounce_mailbox("it@example.com") == mine
    assert VerifySpec(mailbox=other).bounce_mailbox("it@example.com") is None
    assert VerifySpec(mailbox=other, sender_mailbox=mine).bounce_mailbox("x@y") == mine


def test_junk_folders_special_use_first_then_common_names() -> None:
    listed = [
        ((b"\\HasNoChildren",), "INBOX"),
        ((b"\\HasNoChildren",), "spam"),
        ((b"\\HasNoChildren", b"\\Junk"), "Courrier ind&AOk-sirable"),
        ((), "[Gmail]/Spam"),
        ((b"\\Sent",), "Sent"),
    ]
    assert junk_folders(listed) == ["Courrier ind&AOk-sirable", "spam", "[Gmail]/Spam"]
    assert junk_folders([((), "INBOX"), (("\\HasChildren",), "Junk E-mail")]) == ["Junk E-mail"]
    assert junk_folders([((), "INBOX")]) == []


# -- the delivery diagnosis ------------------------------------------------------------------------


def report(placement: Placement, **fields: object) -> DeliveryReport:
    values: dict[str, object] = {
        "mailbox": "imaps://bob@imap.example.com:993",
        "message_id": "<t.1.mailkit@example.com>",
        "placement": placement,
    }
    return DeliveryReport(**{**values, **fields})  # type: ignore[arg-type]


def bounce(status: str, said: str = "", action: str = "failed") -> Bounce:
    return Bounce(
        action=action, status=status, final_recipient="ann@contoso.com", diagnostic_code=said
    )


CASES = [
    (report(Placement.JUNK, folder="Junk", auth=auth_results([MICROSOFT_AR])),
     Cause.DELIVERED_TO_SPAM, Kind.CONFIGURATION, ("SPF record", "DKIM", "DMARC")),
    (report(Placement.JUNK, folder="Junk", auth=auth_results([GMAIL_AR])),
     Cause.DELIVERED_TO_SPAM, Kind.PERMANENT, ("not spam",)),
    (report(Placement.NOT_FOUND, searched=("INBOX", "Junk"), waited_s=120.0),
     Cause.NOT_DELIVERED, Kind.OUTCOME_UNKNOWN, ("<t.1.mailkit@example.com>", "--verify-timeout")),
    (report(Placement.UNCHECKED, error="refused the sign-in", error_kind="auth"),
     Cause.MAILBOX_UNCHECKED, Kind.CONFIGURATION, ("--verify-imap", "app password")),
    (report(Placement.UNCHECKED, error="not trusted", error_kind="tls"),
     Cause.MAILBOX_UNCHECKED, Kind.CONFIGURATION, ("--ca-file",)),
    (report(Placement.UNCHECKED, error="refused the connection", error_kind="connect"),
     Cause.MAILBOX_UNCHECKED, Kind.TRANSIENT, ("993",)),
    (report(Placement.BOUNCED, bounce=bounce("5.1.1", "550 5.1.1 User unknown")),
     Cause.BOUNCED_UNKNOWN_RECIPIENT, Kind.PERMANENT, ("typos",)),
    (report(Placement.BOUNCED, bounce=bounce("5.7.509", "550 5.7.509 does not pass DMARC")),
     Cause.BOUNCED_POLICY, Kind.CONFIGURATION, ("DMARC", "mailkit domain", "--from")),
    (report(Placement.BOUNCED, bounce=bounce("5.7.23", "550 5.7.23 SPF validation failed")),
     Cause.BOUNCED_POLICY, Kind.CONFIGURATION, ("SPF record",)),
    (report(Placement.BOUNCED, bounce=bounce("5.7.1", "550 5.7.1 blocked")),
     Cause.BOUNCED_POLICY, Kind.CONFIGURATION, ("policy",)),
    (report(Placement.BOUNCED, bounce=bounce("5.2.2", "552 5.2.2 Mailbox full")),
     Cause.BOUNCED, Kind.PERMANENT, ("mailbox full",)),
    (report(Placement.DELAYED, bounce=bounce("4.4.7", action="delayed")),
     Cause.DELIVERY_DELAYED, Kind.TRANSIENT, ("Wait",)),
]  # fmt: skip


@pytest.mark.parametrize(("found", "cause", "kind", "words"), CASES)
def test_delivery_diagnoses(
    found: DeliveryReport, cause: Cause, kind: Kind, words: tuple[str, ...]
) -> None:
    d = diagnose_delivery(found, sender="it@example.com")
    assert d is not None
    assert (d.phase, d.cause, d.kind) == (Phase.DELIVERY, cause, kind)
    cli = d.for_face(Face.CLI).to_text()
    for word in words:
        assert word in cli, (word, cli)
    assert len(d.fix) >= 2
    widget = d.for_face(Face.WIDGET).to_text()
    assert "--verify" not in widget
    assert "\x1e" not in d.to_text() + cli + widget


def test_every_delivery_cause_has_a_case() -> None:
    produced = {diagnose_delivery(found, sender="it@example.com").cause for found, *_ in CASES}  # type: ignore[union-attr]
    assert produced == DELIVERY_CAUSES


def test_the_bounces_status_and_words_are_the_diagnosis_reply() -> None:
    d = diagnose_delivery(
        report(Placement.BOUNCED, bounce=bounce("5.1.1", "550 5.1.1 <a@b> User unknown"))
    )
    assert d is not None
    assert (d.code, d.enhanced) == (550, "5.1.1")
    assert "User unknown" in d.server_text
    assert "5.1.1" not in d.server_text  # not repeated


def test_delivered_or_moved_by_the_recipients_rule_is_no_problem() -> None:
    assert diagnose_delivery(report(Placement.INBOX, folder="INBOX")) is None
    assert diagnose_delivery(report(Placement.OTHER, folder="Archive")) is None


def test_the_delivery_card_shows_the_path_and_escapes_what_servers_wrote() -> None:
    from mailkit.cards import delivery_card

    hostile = "by <script>alert(1)</script> with ESMTPS id x; Mon, 7 Dec 2026 02:44:37 +0000"
    raw = (
        f"Received: {hostile}\r\nAuthentication-Results: {GMAIL_AR}\r\n"
        "X-Spam-Status: No, score=0.5 required=5.0\r\nMessage-ID: <m@x>\r\n\r\nhi\r\n"
    ).encode()
    found = found_report(
        raw,
        mailbox="imaps://bob@h:993",
        message_id="<m@x>",
        folder="INBOX",
        placement=Placement.INBOX,
        sent_at=None,
    )
    card = delivery_card(found)
    assert "✔ Delivery check: inbox" in card
    assert "<script" not in card
    assert "</script" not in card
    assert "&lt;/script" in card
    assert "dmarc=<b>pass</b>" in card
    assert "<table>" in card
    bounced = delivery_card(report(Placement.BOUNCED, bounce=bounce("5.1.1", "550 <a@b> unknown")))
    assert "✘ Delivery check: bounced" in bounced
    assert "&lt;a@b&gt;" in bounced
