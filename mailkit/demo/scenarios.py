"""The fake SMTP servers' behaviour, written once for the demo server and the test fixtures.

The demo's failure accounts (:data:`mailkit.demo.server.DEMO_ACCOUNTS`) and the test suite's
misbehaving servers (``tests/smtpd_servers.py``, chosen per test by a marker) both take their
refusals from the :class:`Failure` values here, and both aiosmtpd handlers sign clients in through
:class:`SubmissionHandler`. A refusal reworded here changes what a newcomer sees in the demo and
what the diagnosis is tested against, together: the two can no longer drift apart.

Every reply is worded the way the service it imitates words it (Gmail, Microsoft 365, Postfix),
because mailkit's diagnosis reads those words.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from mailkit.demo.chunking import ChunkingSMTP
from mailkit.outcome import Cause, Phase

# --------------------------------------------------------------------------- who is speaking

#: Gmail's session id at the end of its replies.
GMAIL_ID = "a1-20020a05600c4e0100b0040e3635ca65sm1234567wmq.0 - gsmtp"
GMAIL_GREETING = f"220 smtp.gmail.com ESMTP {GMAIL_ID}"
GMAIL_HELLO = "smtp.gmail.com at your service, [127.0.0.1]"
MICROSOFT_HOST = "AM0PR01CA0001.outlook.office365.com"
MICROSOFT_GREETING = (
    f"220 {MICROSOFT_HOST} Microsoft ESMTP MAIL Service ready at Mon, 6 Jan 2025 09:00:00 +0000"
)
MICROSOFT_HELLO = f"{MICROSOFT_HOST} Hello [127.0.0.1]"
#: The server and time stamp Microsoft 365 appends to its refusals.
MICROSOFT_TRACE = f"[{MICROSOFT_HOST.split('.')[0]}.EURPRD01.PROD.OUTLOOK.COM 2025-01-06T09:00:00]"


# --------------------------------------------------------------------------- the refusals


@dataclass(frozen=True)
class Failure:
    """One refusal a fake server can give: where (``phase``), in which words (``reply``, lines
    joined by ``\\n``) and what mailkit's diagnosis calls it (``cause``).

    ``password_only``: the refusal is about passwords, so an XOAUTH2 sign-in gets through (the
    fix the diagnosis recommends). ``closes``: the server hangs up after the reply (421).
    """

    key: str
    phase: Phase
    cause: Cause
    reply: str
    password_only: bool = False
    closes: bool = False

    @property
    def code(self) -> int:
        return int(self.reply[:3])

    @property
    def wire(self) -> str:
        """The reply as aiosmtpd pushes it (it adds the last CRLF itself)."""
        return self.reply.replace("\n", "\r\n")

    def at(self, phase: Phase) -> Failure:
        """The same refusal given at another step (a 421 can end any of them)."""
        return replace(self, phase=phase)


BAD_CREDENTIALS = Failure(
    "bad_credentials",
    Phase.AUTH,
    Cause.BAD_CREDENTIALS,
    "535 5.7.8 Authentication failed: user name or password not accepted",
)
APP_PASSWORD_REQUIRED = Failure(
    "app_password_required",
    Phase.AUTH,
    Cause.APP_PASSWORD_REQUIRED,
    "534-5.7.9 Application-specific password required. For more information, go to\n"
    f"534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor {GMAIL_ID}",
    password_only=True,
)
BASIC_AUTH_DISABLED = Failure(
    "basic_auth_disabled",
    Phase.AUTH,
    Cause.BASIC_AUTH_DISABLED,
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. " + MICROSOFT_TRACE,
)
AUTH_TEMPORARY = Failure(
    "auth_temporary",
    Phase.AUTH,
    Cause.AUTH_TEMPORARY_FAILURE,
    "454 4.7.0 Temporary authentication failure",
)
#: Gmail's last word on a bad XOAUTH2 token, after :data:`XOAUTH2_ERROR_CHALLENGE`.
OAUTH_TOKEN_REJECTED = Failure(
    "oauth_token_rejected",
    Phase.AUTH,
    Cause.OAUTH_TOKEN_INVALID,
    "535-5.7.8 Username and Password not accepted. For more information, go to\n"
    f"535 5.7.8  https://support.google.com/mail/?p=BadCredentials {GMAIL_ID}",
)
ENCRYPTION_REQUIRED = Failure(
    "encryption_required",
    Phase.AUTH,
    Cause.ENCRYPTION_REQUIRED,
    "538 5.7.11 Encryption required for requested authentication",
)
SEND_AS_DENIED = Failure(
    "send_as_denied",
    Phase.MAIL,
    Cause.SEND_AS_DENIED,
    "550 5.7.60 SMTP; Client does not have permissions to send as this sender " + MICROSOFT_TRACE,
)
SENDER_REJECTED = Failure(
    "sender_rejected",
    Phase.MAIL,
    Cause.SENDER_REJECTED,
    "553 5.7.1 <alice@example.test>: Sender address rejected: not owned by user alice@example.test",
)
NOT_AUTHENTICATED = Failure(
    "not_authenticated",
    Phase.MAIL,
    Cause.AUTH_REQUIRED,
    "530 5.7.57 Client not authenticated to send mail. "
    "Error: 535 5.7.139 Authentication unsuccessful " + MICROSOFT_TRACE,
)
RATE_LIMITED = Failure(
    "rate_limited",
    Phase.MAIL,
    Cause.RATE_LIMITED,
    "450 4.7.1 Error: too much mail from 127.0.0.1",
)
RELAY_DENIED = Failure(
    "relay_denied",
    Phase.RCPT,
    Cause.RELAY_DENIED,
    "554 5.7.1 <bob@elsewhere.example>: Relay access denied",
)
RECIPIENT_REJECTED = Failure(
    "recipient_rejected",
    Phase.RCPT,
    Cause.RECIPIENT_REJECTED,
    "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
    "User unknown in virtual mailbox table",
)
GREYLISTED = Failure(
    "greylisted",
    Phase.RCPT,
    Cause.GREYLISTED,
    "451 4.7.1 Recipient address rejected: greylisted, please try again later",
)
MAILBOX_FULL = Failure(
    "mailbox_full",
    Phase.RCPT,
    Cause.MAILBOX_FULL,
    "452 4.2.2 Recipient address rejected: mailbox full",
)
TOO_LARGE = Failure(
    "too_large",
    Phase.END_OF_DATA,
    Cause.MESSAGE_TOO_LARGE,
    "552 5.3.4 Message size exceeds fixed limit",
)
MESSAGE_REJECTED = Failure(
    "message_rejected",
    Phase.END_OF_DATA,
    Cause.MESSAGE_REJECTED,
    "554 5.7.1 Message rejected: spam content detected",
)
#: RFC 5321 3.8: the server closes the channel. Use :meth:`Failure.at` for another step.
CLOSING = Failure(
    "closing",
    Phase.MAIL,
    Cause.SERVICE_UNAVAILABLE,
    "421 4.7.0 mail.example.test Error: too many errors, closing",
    closes=True,
)
SHUTTING_DOWN = Failure(
    "shutting_down",
    Phase.DATA,
    Cause.SERVICE_UNAVAILABLE,
    "421 4.3.2 Service shutting down, closing transmission channel",
    closes=True,
)
GREETING_CLOSING = Failure(
    "greeting_closing",
    Phase.GREETING,
    Cause.SERVICE_UNAVAILABLE,
    "421 4.3.2 mail.example.test Service not available, closing transmission channel",
    closes=True,
)
GREETING_REFUSED = Failure(
    "greeting_refused",
    Phase.GREETING,
    Cause.SERVICE_REFUSED,
    "554 5.7.1 mail.example.test ESMTP not accepting messages from 127.0.0.1",
)
EHLO_REJECTED = Failure(
    "ehlo_rejected",
    Phase.EHLO,
    Cause.EHLO_REJECTED,
    "550 5.7.1 <client.example>: Helo command rejected: Access denied",
)
STARTTLS_REFUSED = Failure(
    "starttls_refused",
    Phase.STARTTLS,
    Cause.STARTTLS_REFUSED,
    "454 4.7.0 TLS not available due to local problem",
)


def echoed_secret(secret: str) -> Failure:
    """A hostile server's refusal that repeats the password it was given: nothing mailkit
    shows may carry it on."""
    return Failure(
        "echoed_secret",
        Phase.AUTH,
        Cause.BAD_CREDENTIALS,
        f"535 5.7.8 Authentication failed for password {secret}",
    )


#: Every named refusal, by key.
FAILURES: dict[str, Failure] = {
    failure.key: failure
    for failure in (
        BAD_CREDENTIALS,
        APP_PASSWORD_REQUIRED,
        BASIC_AUTH_DISABLED,
        AUTH_TEMPORARY,
        OAUTH_TOKEN_REJECTED,
        ENCRYPTION_REQUIRED,
        SEND_AS_DENIED,
        SENDER_REJECTED,
        NOT_AUTHENTICATED,
        RATE_LIMITED,
        RELAY_DENIED,
        RECIPIENT_REJECTED,
        GREYLISTED,
        MAILBOX_FULL,
        TOO_LARGE,
        MESSAGE_REJECTED,
        CLOSING,
        SHUTTING_DOWN,
        GREETING_CLOSING,
        GREETING_REFUSED,
        EHLO_REJECTED,
        STARTTLS_REFUSED,
    )
}


# --------------------------------------------------------------------------- signing in

#: Gmail's XOAUTH2 refusal comes as a 334 challenge carrying this JSON; the client answers
#: with an empty line and gets :data:`OAUTH_TOKEN_REJECTED`
#: (https://developers.google.com/gmail/imap/xoauth2-protocol).
XOAUTH2_ERROR_CHALLENGE = json.dumps(
    {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
).encode()


class QuietSession(Session):
    """aiosmtpd still assigns the deprecated ``login_data`` after every AUTH, and the base
    class's property logs a deprecation warning each time; a plain attribute stays quiet."""

    login_data: Any = None


def xoauth2_fields(blob: bytes) -> dict[bytes, bytes]:
    """``user=...^Aauth=Bearer ...^A^A`` as a dict."""
    return dict(part.split(b"=", 1) for part in blob.split(b"\x01") if b"=" in part)


class SubmissionHandler:
    """What the demo's and the tests' aiosmtpd handlers share: CRAM-MD5, XOAUTH2 and the EHLO
    reply's promises (PIPELINING, and CHUNKING where the connection accepts BDAT).

    aiosmtpd decodes PLAIN and LOGIN itself; CRAM-MD5 and XOAUTH2 it leaves to the handler. A
    subclass says who may sign in (:meth:`password_for`, :meth:`bearer_ok`) and what the verdict
    looks like (:meth:`sign_in_verdict`: the demo adds its failure accounts, the tests record
    each attempt). aiosmtpd takes every handler method named ``auth_*`` for a mechanism, so
    helpers are named otherwise.
    """

    def password_for(self, user: str) -> bytes | None:
        """The password CRAM-MD5 checks ``user``'s digest against (None: no such user)."""
        raise NotImplementedError

    def bearer_ok(self, user: str, bearer: bytes) -> bool:
        """Whether ``auth=Bearer ...`` signs ``user`` in."""
        raise NotImplementedError

    def challenges_bad_token(self, user: str) -> bool:
        """Whether a bad token gets Gmail's JSON challenge before the refusal."""
        return True

    def sign_in_verdict(
        self,
        server: SMTP,
        mechanism: str,
        user: str,
        ok: bool,
        *,
        refusal: Failure | None = None,
    ) -> AuthResult:
        """The AUTH result; ``refusal`` words a failure when the mechanism has its own."""
        if ok:
            return AuthResult(success=True, handled=False, auth_data=user)
        return AuthResult(success=False, handled=False, message=refusal.wire if refusal else None)

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        """RFC 2195 (aiosmtpd turns the double underscore into ``CRAM-MD5``)."""
        if len(args) > 1:
            await server.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.token_hex(8)}@{server.hostname}>".encode()
        answer = await server.challenge_auth(challenge)
        if not isinstance(answer, bytes):  # "*" or bad base64: aiosmtpd has replied
            return AuthResult(success=False, handled=True)
        user, _, digest = answer.decode("utf-8", "replace").rpartition(" ")
        password = self.password_for(user)
        expected = hmac.new(password, challenge, "md5").hexdigest() if password else ""
        ok = password is not None and hmac.compare_digest(digest, expected)
        return self.sign_in_verdict(server, "CRAM-MD5", user, ok)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """Google's XOAUTH2; the initial response may come with the command or after a 334.

        Every refusal is sent with ``handled=False`` and a message: with aiosmtpd's default
        (``handled=True``) no reply would be sent and the client would wait forever.
        """
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        else:
            answer = await server.challenge_auth(b"", encode_to_b64=False)
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = xoauth2_fields(blob)
        user = fields.get(b"user", b"").decode("utf-8", "replace")
        ok = self.bearer_ok(user, fields.get(b"auth", b""))
        if ok or not self.challenges_bad_token(user):
            return self.sign_in_verdict(server, "XOAUTH2", user, ok)
        if not isinstance(await server.challenge_auth(XOAUTH2_ERROR_CHALLENGE), bytes):
            return AuthResult(success=False, handled=True)
        return self.sign_in_verdict(server, "XOAUTH2", user, False, refusal=OAUTH_TOKEN_REJECTED)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd reads one command line at a time, so pipelined commands just work: say so."""
        session.host_name = hostname  # a hook replaces aiosmtpd's own bookkeeping of this
        responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        return server.with_chunking(responses) if isinstance(server, ChunkingSMTP) else responses
