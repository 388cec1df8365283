"""Accepted but not delivered: the diagnosis of a delivery check, with numbered fixes.

A server's ``250`` only says it took the message. :func:`diagnose_delivery` reads what the
delivery check found (:class:`~mailkit.delivery.DeliveryReport`) and says what it means: in
spam (and which of SPF, DKIM and DMARC failed, when the receiver said), not found within the
time, a bounce explained by its status (5.1.1 unknown user, 5.7.x policy or DMARC, 4.x.x still
being retried), or a mailbox the check could not search. Pure, like the rest of the diagnosis.
"""

from __future__ import annotations

from mailkit.delivery import DeliveryReport, Placement
from mailkit.diagnose.advice import Advice
from mailkit.diagnose.facts import parse_enhanced, server_text
from mailkit.diagnose.fields import S
from mailkit.faces import render
from mailkit.outcome import Cause, Diagnosis, Kind, Phase

__all__ = ["DELIVERY_CAUSES", "diagnose_delivery"]

#: Every cause :func:`diagnose_delivery` can give (none of them comes from ``diagnose()``).
DELIVERY_CAUSES = frozenset(
    {
        Cause.DELIVERED_TO_SPAM,
        Cause.NOT_DELIVERED,
        Cause.BOUNCED_UNKNOWN_RECIPIENT,
        Cause.BOUNCED_POLICY,
        Cause.BOUNCED,
        Cause.DELIVERY_DELAYED,
        Cause.MAILBOX_UNCHECKED,
    }
)

_CHECK_DOMAIN = "Check the sender's domain with `mailkit domain DOMAIN --host SERVER`"


def diagnose_delivery(report: DeliveryReport, *, sender: str | None = None) -> Diagnosis | None:
    """What the delivery check means, or None when the message reached the inbox (or a
    folder a rule of the recipient's own moved it to)."""
    if report.delivered:
        return None
    domain = (sender or "").rpartition("@")[2] or "your domain"
    if report.placement is Placement.JUNK:
        return _made(Cause.DELIVERED_TO_SPAM, _spam_kind(report), _in_spam(report, domain))
    if report.placement is Placement.NOT_FOUND:
        return _made(Cause.NOT_DELIVERED, Kind.OUTCOME_UNKNOWN, _not_found(report))
    if report.placement is Placement.UNCHECKED:
        kind = Kind.TRANSIENT if report.error_kind in ("connect", "timeout") else Kind.CONFIGURATION
        return _made(Cause.MAILBOX_UNCHECKED, kind, _unchecked(report))
    bounce = report.bounce
    status = bounce.status if bounce is not None else ""
    said = bounce.diagnostic_code if bounce is not None else ""
    if report.placement is Placement.DELAYED:
        return _made(Cause.DELIVERY_DELAYED, Kind.TRANSIENT, _delayed(report), status, said)
    if status.startswith("5.1."):
        cause, kind, advice = Cause.BOUNCED_UNKNOWN_RECIPIENT, Kind.PERMANENT, _unknown(report)
    elif status.startswith("5.7."):
        cause, kind, advice = Cause.BOUNCED_POLICY, Kind.CONFIGURATION, _policy(report, domain)
    else:
        cause, kind, advice = Cause.BOUNCED, Kind.PERMANENT, _bounced(report)
    return _made(cause, kind, advice, status, said)


def _made(cause: Cause, kind: Kind, advice: Advice, status: str = "", said: str = "") -> Diagnosis:
    enhanced = parse_enhanced(status) if status else None
    code = _reply_code(said)
    return Diagnosis(
        phase=Phase.DELIVERY,
        kind=kind,
        cause=cause,
        title=render(advice.title),
        explanation=render(advice.explanation),
        fix=tuple(render(step) for step in advice.fix),
        marked=(advice.title, advice.explanation, *advice.fix),
        code=code,
        enhanced=enhanced,
        server_text=server_text(said, enhanced) if said else "",
    )


def _reply_code(said: str) -> int | None:
    head = said.strip()[:3]
    return int(head) if head.isdigit() and head[0] in "245" else None


def _failed_checks(report: DeliveryReport) -> list[str]:
    bad = ("fail", "softfail", "permerror", "temperror", "none", "neutral", "policy")
    return [
        f"{method.upper()} {result}"
        for method in ("spf", "dkim", "dmarc")
        if (result := report.auth_result(method)) is not None and result in bad
    ]


def _spam_kind(report: DeliveryReport) -> Kind:
    """Failed SPF/DKIM/DMARC are the domain's settings; a clean pass leaves content and
    reputation, which no setting of mailkit's changes."""
    return Kind.CONFIGURATION if _failed_checks(report) else Kind.PERMANENT


def _in_spam(report: DeliveryReport, domain: str) -> Advice:
    failed = _failed_checks(report)
    spam = report.spam
    verdict = ""
    if spam is not None:
        parts = []
        if spam.score is not None:
            limit = f" (limit {spam.threshold:g})" if spam.threshold is not None else ""
            parts.append(f"spam score {spam.score:g}{limit}")
        if spam.scl is not None:
            parts.append(f"Microsoft's spam confidence level {spam.scl}")
        verdict = f" Its filter said: {', '.join(parts)}." if parts else ""
    checks = (
        f" The receiving server's checks failed: {', '.join(failed)}."
        if failed
        else " The receiving server did not report failed SPF, DKIM or DMARC checks."
        if report.auth
        else ""
    )
    explanation = (
        f"The server accepted the test message and it was delivered — into the spam folder "
        f"{report.folder!r} of {report.mailbox}, not the inbox.{checks}{verdict} Real mail "
        "from this account will land there too, unread."
    )
    fix: list[str] = []
    if any(f.startswith("SPF") for f in failed):
        fix.append(
            f"Authorise the sending server in {domain}'s SPF record (a TXT record starting "
            f"v=spf1); {_CHECK_DOMAIN[0].lower() + _CHECK_DOMAIN[1:]} to see which server is "
            "missing."
        )
    if any(f.startswith("DKIM") for f in failed):
        fix.append(
            f"Sign mail from {domain} with DKIM: turn signing on at the provider (Microsoft 365 "
            "Defender → Email authentication → DKIM; Google Admin → Gmail → Authenticate email) "
            "and publish the selector's key in DNS."
        )
    if any(f.startswith("DMARC") for f in failed):
        fix.append(
            f"Make the {S.from_address}'s domain align with SPF or DKIM (the envelope sender's "
            "or the signing domain must be the From domain), then publish a DMARC record."
        )
    if not failed:
        fix.append(f"{_CHECK_DOMAIN}: SPF, DKIM and DMARC should all pass before anything else.")
    fix += [
        "Mark the test message as not spam in the recipient's mailbox, and ask the recipient's "
        "admin to check the spam filter's reason (the X-Spam-Status or X-Forefront-Antispam-"
        "Report header lists the rules that fired).",
        "Send the test again; a first mail from a new server or address is often held back "
        "until the sender builds a reputation.",
    ]
    return Advice("Delivered, but into the spam folder", explanation, tuple(fix))


def _not_found(report: DeliveryReport) -> Advice:
    where = ", ".join(report.searched) or "the mailbox"
    bounce = (
        f" No bounce came back to {report.bounce_mailbox} either."
        if report.bounce_mailbox
        else " No mailbox of the sender was searched for a bounce, so one may be waiting there."
    )
    explanation = (
        f"The server accepted the test message, but it did not show up in {where} of "
        f"{report.mailbox} within {report.waited_s:.0f} s.{bounce} It may still be queued or "
        "retried, held in a quarantine, deleted by a filter, or delivered to another mailbox."
    )
    fix = (
        f"Search the sending server's queue and log for the Message-ID {report.message_id} "
        "(Postfix: postqueue -p and the mail log; Microsoft 365: Exchange admin center → Mail "
        "flow → Message trace; Google Workspace: Admin console → Reporting → Email Log Search).",
        "Look in the recipient's quarantine (Microsoft 365 Defender → Review → Quarantine) and "
        "at the recipient's inbox rules and forwarding.",
        f"If delivery is just slow, wait longer: raise {S.verify_timeout}.",
        f"Check that {S.verify_imap} is the mailbox of the address the test was sent to.",
    )
    return Advice("Accepted, but not delivered in time", explanation, fix)


def _unchecked(report: DeliveryReport) -> Advice:
    reason = report.error or "the mailbox could not be searched"
    explanation = (
        f"The test message was sent, but the delivery check could not search {report.mailbox}: "
        f"{reason}. Whether it arrived is not known."
    )
    if report.error_kind == "auth":
        fix: tuple[str, ...] = (
            f"Check the user name in {S.verify_imap} and the mailbox password given for it "
            "(an account with two-step sign-in needs an app password for IMAP).",
            "Make sure IMAP is enabled for the mailbox (Microsoft 365: Exchange admin center → "
            "Mailboxes → the mailbox → Email apps; Gmail: Settings → Forwarding and POP/IMAP).",
        )
    elif report.error_kind == "tls":
        fix = (
            f"If the mailbox server uses a private CA, set {S.ca_file} to that CA's certificate.",
            f"Check that the host name in {S.verify_imap} is the one on the server's certificate.",
        )
    else:
        fix = (
            f"Check the host and port in {S.verify_imap} (IMAPS listens on 993).",
            "Check that a firewall lets this computer reach the mailbox server, then run the "
            "test again.",
        )
    return Advice("The delivery check could not search the mailbox", explanation, fix)


def _bounce_words(report: DeliveryReport) -> str:
    b = report.bounce
    if b is None:
        return "A bounce came back"
    who = f" for {b.final_recipient}" if b.final_recipient else ""
    by = f" from {b.reporting_mta}" if b.reporting_mta else ""
    said = f': "{b.diagnostic_code}"' if b.diagnostic_code else ""
    return f"A delivery status notification{by} came back{who} with status {b.status or '?'}{said}"


def _unknown(report: DeliveryReport) -> Advice:
    return Advice(
        "Bounced: the recipient's address does not exist",
        f"{_bounce_words(report)}. The server accepted the message, then the recipient's "
        "server said there is no such mailbox (5.1.x).",
        (
            "Check the recipient address for typos (the test's To address).",
            "Ask the recipient's admin whether the mailbox exists and accepts outside mail; a "
            "new or renamed mailbox may not be known yet to every server.",
        ),
    )


def _policy(report: DeliveryReport, domain: str) -> Advice:
    said = report.bounce.diagnostic_code.lower() if report.bounce else ""
    if "dmarc" in said:
        title = "Bounced: the recipient's server rejected it by DMARC policy"
        cause = (
            f"{domain}'s DMARC policy told the recipient's server to reject mail whose SPF or "
            "DKIM does not align with the From domain, and this message failed that check."
        )
        fix: tuple[str, ...] = (
            f"{_CHECK_DOMAIN}: SPF must authorise the server, or DKIM must sign with {domain}.",
            f"Make {S.from_address} use {domain} only through a server that {domain}'s SPF "
            "names or that signs with its DKIM key.",
            "Until both pass, a DMARC policy of p=none avoids rejections while you fix it.",
        )
    elif "spf" in said:
        title = "Bounced: the sending server is not in the domain's SPF record"
        cause = (
            f"The recipient's server checked {domain}'s SPF record and it does not list the "
            "sending server."
        )
        fix = (
            f"Add the sending server (or its provider's include) to {domain}'s SPF record.",
            f"{_CHECK_DOMAIN} to see what SPF allows.",
        )
    else:
        title = "Bounced: the recipient's server refused it by policy"
        cause = (
            "The recipient's server refused the message for a security or policy reason (5.7.x): "
            "sender authentication (SPF, DKIM, DMARC), a block list, or a rule of its own."
        )
        fix = (
            f"{_CHECK_DOMAIN}: SPF, DKIM and DMARC should pass.",
            "Read the server's words in the bounce; they name the policy. Ask the recipient's "
            "admin about it if they do not.",
        )
    return Advice(title, f"{_bounce_words(report)}. {cause}", fix)


def _bounced(report: DeliveryReport) -> Advice:
    return Advice(
        "Bounced: the recipient's server could not deliver it",
        f"{_bounce_words(report)}. The server accepted the message and later gave up on it.",
        (
            "Read the server's words in the bounce; they name the reason (mailbox full, "
            "message too large, a loop, a server that cannot be reached).",
            "Fix what they name and send the test again.",
        ),
    )


def _delayed(report: DeliveryReport) -> Advice:
    return Advice(
        "Not delivered yet: the server is still retrying",
        f"{_bounce_words(report)}. The server could not deliver the message yet and keeps "
        "trying (a temporary failure, 4.x.x); it gives up after a few days.",
        (
            "Wait and check again later; nothing has to change if the cause is temporary.",
            "If the notification names the reason (the recipient's server unreachable, "
            "greylisting, a full mailbox), fix that on the side it names.",
        ),
    )
