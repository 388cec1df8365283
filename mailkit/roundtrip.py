"""The delivery round trip of a test send: after the server accepted it, did it arrive?

:func:`check_delivery` composes the delivery check's adapters (:mod:`mailkit.verify`) with the
pure parts (:mod:`mailkit.delivery`, :func:`mailkit.diagnose.delivery.diagnose_delivery`) and
hands back the send's result with the delivery report in it. A send the server accepted but
that landed in spam, bounced or never showed up is then not ``ok``, and its diagnosis is the
delivery's: "a green test is not a delivered mail".

The result keeps :class:`~mailkit.result.TestResult`'s invariant: it is rebuilt with a scrubber
that knows the mailbox passwords as well as the send's, so no field can carry one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mailkit.delivery import DeliveryReport, MailboxSpec, Placement, VerifySpec
from mailkit.diagnose.delivery import diagnose_delivery
from mailkit.outcome import Phase
from mailkit.result import TestResult, TokenProvider
from mailkit.secret import Secret
from mailkit.transcript import Direction, Row, SecretScrubber, Transcript

if TYPE_CHECKING:  # the secret store is the caller's
    from mailkit.secrets import SecretStore

__all__ = ["check_delivery", "mailbox_consent"]


async def check_delivery(
    result: TestResult,
    spec: VerifySpec,
    *,
    token: TokenProvider | None = None,
    password: Secret | None = None,
) -> TestResult:
    """``result`` with its delivery report, after searching ``spec``'s mailbox.

    Only an accepted send (``ok`` and a Message-ID) is looked for; any other result comes back
    as it is. ``token`` is the stored OAuth consent's provider, for a Gmail API or Graph
    mailbox; ``password`` the send's own, kept out of the rebuilt result too.
    """
    if not result.ok or not result.message_id:
        return result
    scrubber = SecretScrubber(
        [
            s
            for s in (
                password,
                spec.mailbox.password,
                spec.sender_mailbox.password if spec.sender_mailbox else None,
            )
            if s is not None
        ]
    )
    sent_at = result.started + timedelta(milliseconds=result.duration_ms)
    sender = result.context.from_address
    began = _row(
        result,
        f"delivery check: looking for {result.message_id} in {spec.mailbox.label}"
        f" (inbox, then spam; up to {spec.timeout:g} s)",
    )
    report = await _search(spec, result.message_id, sent_at, sender, scrubber, token)
    diagnosis = diagnose_delivery(report, sender=sender)
    ended = _row(result, f"delivery check: {_outcome(report)}")
    return dataclasses.replace(
        result,
        ok=diagnosis is None,
        diagnosis=diagnosis,
        delivery=report,
        transcript=Transcript(rows=(*result.transcript.rows, began, ended)),
        scrub=scrubber,
    )


def _row(result: TestResult, text: str) -> Row:
    """An information row of the send's transcript, timed from the send's start."""
    now = datetime.now(UTC)
    return Row(
        t_ms=round((now - result.started).total_seconds() * 1000, 3),
        time=now,
        dir=Direction.INFO,
        phase=Phase.DELIVERY,
        tls=False,
        code=None,
        text=text,
    )


def _outcome(report: DeliveryReport) -> str:
    waited = f"after {report.waited_s:.1f} s"
    if report.placement in (Placement.INBOX, Placement.JUNK, Placement.OTHER):
        return f"found in {report.folder} ({report.placement.value}) {waited}"
    if report.bounce is not None:
        return f"a bounce came back ({report.bounce.action} {report.bounce.status}) {waited}"
    if report.placement is Placement.UNCHECKED:
        return f"the mailbox could not be searched: {report.error}"
    return f"not found in {', '.join(report.searched) or 'the mailbox'} {waited}"


async def _search(
    spec: VerifySpec,
    message_id: str,
    sent_at: datetime,
    sender: str | None,
    scrubber: SecretScrubber,
    token: TokenProvider | None,
) -> DeliveryReport:
    if spec.mailbox.kind == "imap":
        from mailkit.verify.imap import verify_imap  # imapclient: only for a delivery check

        return await asyncio.to_thread(
            verify_imap, spec, message_id, sent_at=sent_at, sender=sender, scrubber=scrubber
        )
    if spec.mailbox.kind in ("gmail_api", "graph"):
        from mailkit.verify.api import verify_api  # requests: only for an API mailbox

        return await verify_api(
            spec, message_id, sent_at=sent_at, sender=sender, token=token, scrubber=scrubber
        )
    return _unchecked(spec.mailbox, message_id, f"unknown mailbox kind {spec.mailbox.kind!r}")


def _unchecked(mailbox: MailboxSpec, message_id: str, why: str) -> DeliveryReport:
    return DeliveryReport(
        mailbox=mailbox.label,
        message_id=message_id,
        placement=Placement.UNCHECKED,
        error=why,
        error_kind="protocol",
    )


def mailbox_consent(
    spec: VerifySpec,
    secrets: SecretStore,
    profile: str,
    owner: str,
    ca_file: str | None,
) -> TokenProvider | None:
    """The token provider of the OAuth consent stored for ``owner`` with the provider whose
    API reads ``spec``'s mailbox (Google for ``gmail_api``, Microsoft for ``graph``), or None.

    The consent must include a read scope (``gmail.readonly``, ``Mail.Read``); one that may
    only send is reported by the check as such.
    """
    from mailkit.errors import SecretStoreError
    from mailkit.secrets import GOOGLE_TOKEN_KIND, MICROSOFT_TOKEN_KIND, secret_key

    kind = GOOGLE_TOKEN_KIND if spec.mailbox.kind == "gmail_api" else MICROSOFT_TOKEN_KIND
    try:
        if secrets.get(secret_key(profile, owner, kind)) is None:
            return None
    except SecretStoreError:
        return None  # the send itself reports an unreadable store
    from mailkit.oauth import GoogleCredentials, MicrosoftCredentials

    credentials = GoogleCredentials if kind == GOOGLE_TOKEN_KIND else MicrosoftCredentials
    return credentials(secrets, profile=profile, owner=owner, ca_file=ca_file).token_provider()
