"""One SMTP test send, step by step: connect, EHLO, STARTTLS, AUTH, the message, QUIT.

:class:`SmtpTestSender` follows the policy of its :class:`~mailkit.senders.smtp.plan.SmtpPlan`
and records the whole dialog; a failure at any step stops the send and becomes a diagnosis,
never an exception. Whatever a server says passes the send's
:class:`~mailkit.transcript.SecretScrubber` before a failure, a diagnosis or the
:class:`~mailkit.result.TestResult` (which cannot be built without it) holds it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiosmtplib import SMTP
from aiosmtplib.auth import auth_plain_encode
from aiosmtplib.errors import (
    SMTPAuthenticationError,
    SMTPHeloError,
)
from aiosmtplib.protocol import (
    PERIOD_REGEX,
    normalize_message_line_endings,
)
from aiosmtplib.response import SMTPResponse

from mailkit.errors import OAuthError, SecretStoreError
from mailkit.faces import in_plain_words
from mailkit.fields import AuthType, Mode, Priority, Security, host_ascii
from mailkit.message import TestMessage, build_test_message
from mailkit.outcome import Diagnosis, Failure, Phase, Signal
from mailkit.result import TestResult, TlsInfo, TokenProvider
from mailkit.runner import call_provider
from mailkit.secret import Secret
from mailkit.senders.smtp.failures import (
    bounded,
    extra_reply,
    failure_from_exception,
    reply_failure,
)
from mailkit.senders.smtp.plan import TLS_PROBE_WAIT, SmtpPlan, TlsContexts, tls_context
from mailkit.senders.smtp.protocol import PipelineError, RecordingProtocol, RecordingSMTP
from mailkit.senders.tls import ca_file_problem, describe_certificate
from mailkit.transcript import Direction, Recorder, Row, SecretScrubber

#: Password mechanisms in the order ``auto`` prefers them over verified TLS: PLAIN takes one
#: round trip and can be pipelined, and TLS already protects it; LOGIN is the common fallback;
#: CRAM-MD5 and NTLM come last because they force servers to keep reversible passwords.
PREFERRED_OVER_TLS = ("PLAIN", "LOGIN", "CRAM-MD5", "NTLM")
#: Without TLS (only with allow_plaintext_auth) prefer what keeps the password off the wire.
PREFERRED_IN_CLEAR = ("CRAM-MD5", "NTLM", "PLAIN", "LOGIN")

_MECHANISM_OF = {
    AuthType.LOGIN: "LOGIN",
    AuthType.PLAIN: "PLAIN",
    AuthType.CRAM_MD5: "CRAM-MD5",
    AuthType.NTLM: "NTLM",
    AuthType.MSN: "NTLM",
    AuthType.XOAUTH2: "XOAUTH2",
}


class _Stop(Exception):
    """The send ends here with this failure (raised inside, turned into a diagnosis).

    ``diagnosis`` is given when someone else already diagnosed it: a token provider's
    :class:`~mailkit.errors.OAuthError` says why the token could not be had.
    """

    def __init__(self, failure: Failure, diagnosis: Diagnosis | None = None) -> None:
        super().__init__(failure.phase.value)
        self.failure = failure
        self.diagnosis = diagnosis


class SmtpTestSender:
    """Runs one test send. Create one per send; :meth:`run` never raises for SMTP trouble."""

    def __init__(
        self,
        plan: SmtpPlan,
        *,
        password: Secret | None = None,
        token: TokenProvider | None = None,
        on_row: Callable[[Row], None] | None = None,
        tls_contexts: TlsContexts | None = None,
        secrets_problem: str | None = None,
    ) -> None:
        self.plan = plan
        #: Why the secret store could not be read, if it could not: then a missing password
        #: is unknown, not absent, and no sign-in is tried.
        self.secrets_problem = secrets_problem
        #: Shared by the sends of one run (a bulk test); None: this send builds its own.
        self.tls_contexts = tls_contexts
        self.password = password
        self.token = token
        self.waits = plan.waits
        #: The send's one scrubber: rows, failures, the diagnosis and the result all pass it.
        self.scrubber = SecretScrubber(
            [s for s in (password,) if s is not None], username=plan.username
        )
        self.recorder = Recorder(
            username=plan.username,
            on_row=on_row,
            tls=plan.security is Security.IMPLICIT_TLS,
            scrubber=self.scrubber,
        )
        self.smtp: RecordingSMTP | None = None
        self.tls: TlsInfo | None = None
        self.mechanism: str | None = None
        #: The server said 354 and waits for a body we will not send: QUIT would be body text.
        self._in_body = False
        #: QUIT already went out (pipelined behind a BDAT chunk): it is not said twice.
        self._quit_sent = False
        #: Built in :meth:`_send`, after the CA file was checked (a bad one is a diagnosis).
        self._context: ssl.SSLContext | None = None

    # ------------------------------------------------------------------ entry

    async def run(self, message: TestMessage) -> TestResult:
        started = datetime.now(UTC)
        clock = asyncio.get_running_loop().time
        t0 = clock()
        reply: str | None = None
        known: Diagnosis | None = None
        try:
            reply = await self._send(message)
            failure = None
        except _Stop as stop:
            failure, known = stop.failure, stop.diagnosis
            if self._may_quit(failure) and self.smtp is not None:
                await self._quit(self.smtp)
        finally:
            await self._close()
        diagnosis = None
        if failure is not None:
            from mailkit.diagnose import diagnose  # the rules table loads only for a failure

            # The server's words reach the diagnosis only scrubbed, and cut only after that.
            failure = bounded(self.scrubber.scrub_value(failure))
            known = self.scrubber.scrub_value(known)
            diagnosis = known or diagnose(failure, self.plan.context(self._auth_label()))
            if failure.detail and failure.signal not in (Signal.REPLY, Signal.OAUTH):
                # What the client saw, e.g. why a certificate did not verify.
                code = f" (OpenSSL {failure.verify_code})" if failure.verify_code else ""
                # Rows read the same in every face: "CA file", never the Python name.
                detail = in_plain_words(failure.detail)
                self.recorder.info(f"{failure.signal.value}: {detail}{code}", failure.phase)
            self.recorder.info(f"{diagnosis.title} ({diagnosis.cause.value})", failure.phase)
        return TestResult(
            ok=failure is None,
            transcript=self.recorder.transcript(),
            context=self.plan.context(self._auth_label()),
            scrub=self.scrubber,
            diagnosis=diagnosis,
            tls=self.tls,
            auth_mechanism=self.mechanism,
            message_id=message.message_id if failure is None else None,
            server_reply=reply,
            started=started,
            duration_ms=round((clock() - t0) * 1000, 3),
        )

    def _may_quit(self, failure: Failure) -> bool:
        """QUIT after a refusal; never over an untrusted channel or inside a message body, and
        not after a 421: the server is closing the channel itself (RFC 5321 §3.8)."""
        return (
            failure.signal in (Signal.REPLY, Signal.OAUTH)
            and failure.code != 421
            and not self._in_body
            and not self._quit_sent
        )

    def _auth_label(self) -> str:
        return self.mechanism.lower().replace("-", "_") if self.mechanism else self.plan.auth.value

    async def _close(self) -> None:
        """Close and wait until every connection is gone, so none outlives the event loop."""
        # A connection that was never made (refused, timed out) has nothing to wait for: its
        # protocol never saw connection_made, so it will never see connection_lost either.
        opened = self.smtp.opened if self.smtp is not None else []
        protocols = [p for p in opened if p.transport is not None]
        transports = [p.transport for p in protocols if p.transport is not None]
        if self.smtp is not None:
            self.smtp.close()
        for transport in transports:
            if not transport.is_closing():
                transport.close()
        for protocol in protocols:
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), 2.0)
            except TimeoutError:
                stuck = protocol.transport
                if isinstance(stuck, asyncio.Transport):
                    stuck.abort()  # a peer that never finishes the TLS shutdown
                    await asyncio.sleep(0)

    # ------------------------------------------------------------------ steps

    async def _send(self, message: TestMessage) -> str:
        plan = self.plan
        self._check_setup()
        if plan.security is Security.IMPLICIT_TLS:
            self._context = self._tls_context()
        # STARTTLS builds its context once the server offers it: a send that never gets that
        # far (refused, silent, no STARTTLS) does not read the trust anchors (the system
        # store: about 35 ms).
        self.recorder.info(
            f"connecting to {plan.host} port {plan.port}, security {plan.security.value}"
            + (
                f" (TLS {plan.tls_min_version}+, {self._trust_label()})"
                if plan.security is not Security.NONE
                else ""
            ),
            Phase.CONNECT,
        )
        override = (
            f"every reply waits the {plan.command_timeout:g} s of the command timeout"
            if plan.command_timeout is not None
            else "mailkit's defaults; a command timeout sets one wait for every reply"
        )
        self.recorder.info(f"waits: {self.waits.describe()} ({override})", Phase.CONNECT)
        smtp = RecordingSMTP(
            recorder=self.recorder,
            greeting_wait=self.waits.greeting,
            hostname=host_ascii(plan.host),
            port=plan.port,
            use_tls=plan.security is Security.IMPLICIT_TLS,
            start_tls=False,
            tls_context=self._context,
            local_hostname=plan.local_hostname,
            timeout=self.waits.command,
        )
        self.smtp = smtp
        try:
            await smtp.connect(timeout=self.waits.connect)
        except Exception as exc:  # classified below, never re-raised
            failure = failure_from_exception(exc, self.recorder.phase)
            if failure.phase is Phase.GREETING and failure.signal is Signal.TIMEOUT:
                failure = await self._probe_tls(failure)
            raise _Stop(failure) from None
        if plan.security is Security.IMPLICIT_TLS:
            self._tls_established(smtp)
        await self._ehlo(smtp)
        if plan.security is Security.STARTTLS:
            await self._starttls(smtp)
            await self._ehlo(smtp)
        mechanism = self._choose_mechanism(smtp)
        pipelining = smtp.supports_extension("pipelining")
        if pipelining:
            self.recorder.info("the server offers PIPELINING: commands are sent in groups")
        if self._chunking(smtp):
            self.recorder.info(
                "the server offers CHUNKING: the message goes as one BDAT chunk marked LAST, "
                + (
                    "in the same group as MAIL and RCPT, with QUIT behind it"
                    if pipelining
                    else "without DATA's wait for 354"
                )
            )
        plain_in_group = mechanism == "PLAIN" and pipelining
        if mechanism is not None and not plain_in_group:
            await self._authenticate(smtp, mechanism)
        return await self._transaction(smtp, message, pipelining, plain_in_group)

    async def _probe_tls(self, failure: Failure) -> Failure:
        """After a silent greeting, see whether the port expects implicit TLS instead.

        A server on an implicit-TLS port waits for a TLS hello and so looks exactly like a
        silent one. One short handshake (nothing is sent over it) tells the two apart.
        """
        if self.plan.security is Security.IMPLICIT_TLS:
            return failure
        context = tls_context(self.plan)
        speaks_tls = False
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host_ascii(self.plan.host),
                    self.plan.port,
                    ssl=context,
                    server_hostname=host_ascii(self.plan.host),
                ),
                timeout=min(TLS_PROBE_WAIT, self.waits.connect),
            )
        except ssl.SSLCertVerificationError:
            speaks_tls = True
        except (OSError, TimeoutError):
            speaks_tls = False
        else:
            speaks_tls = True
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if not speaks_tls:
            return failure
        self.recorder.info(
            f"probe: port {self.plan.port} answers a TLS handshake, so it expects implicit TLS "
            "from the first byte",
            Phase.GREETING,
        )
        return Failure(Phase.GREETING, Signal.TIMEOUT, detail="port speaks implicit TLS")

    def _tls_context(self) -> ssl.SSLContext:
        """This send's TLS context: the run's shared one, or one built now."""
        plan = self.plan
        try:
            contexts = self.tls_contexts
            return tls_context(plan) if contexts is None else contexts.for_plan(plan)
        except (OSError, ssl.SSLError, ValueError):  # the file changed since the check
            problem = ca_file_problem(plan.ca_file or "") or "cannot be read"
            detail = f"ca_file: {plan.ca_file} {problem}"
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=detail)) from None

    def _check_setup(self) -> None:
        plan = self.plan
        if plan.mode is not Mode.SMTP:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="mode"))
        if not plan.host:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="host"))
        if not plan.from_address:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="from_address"))
        checked = self.tls_contexts is not None and self.tls_contexts.holds(plan)
        if (
            plan.ca_file is not None
            and plan.security is not Security.NONE
            and not plan.pin_sha256
            and not checked  # this run already loaded it into a context
        ):
            problem = ca_file_problem(plan.ca_file)
            if problem is not None:
                detail = f"ca_file: {plan.ca_file} {problem}"
                raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=detail))
        auth = plan.auth.canonical
        if self.secrets_problem and auth is not AuthType.NONE and not (self.password or self.token):
            detail = f"secrets: {self.secrets_problem}"
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=detail))
        if auth is AuthType.XOAUTH2 and self.token is None:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="token"))
        if auth not in (AuthType.NONE, AuthType.AUTO, AuthType.XOAUTH2) and not self.password:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="password"))
        sends_credentials = auth is not AuthType.NONE and (self.password or self.token)
        if plan.security is Security.NONE and sends_credentials and not plan.allow_plaintext_auth:
            raise _Stop(Failure(Phase.AUTH, Signal.POLICY, detail="plaintext"))

    def _trust_label(self) -> str:
        if self.plan.pin_sha256:
            return "pinned SHA-256"
        return f"CA file {self.plan.ca_file}" if self.plan.ca_file else "system CA store"

    async def _ehlo(self, smtp: SMTP) -> None:
        self.recorder.phase = Phase.EHLO
        try:
            await smtp.ehlo()
        except SMTPHeloError as exc:
            raise _Stop(failure_from_exception(exc, Phase.EHLO)) from None
        except Exception as exc:
            raise _Stop(failure_from_exception(exc, Phase.EHLO)) from None

    async def _starttls(self, smtp: SMTP) -> None:
        if not smtp.supports_extension("starttls"):
            self.recorder.info(
                "the server did not offer STARTTLS: mailkit sends no credentials and no mail "
                "without TLS and ends the session",
                Phase.STARTTLS,
            )
            await self._quit(smtp)
            raise _Stop(self._facts(smtp, Phase.STARTTLS, Signal.NOT_OFFERED, "STARTTLS"))
        self.recorder.phase = Phase.STARTTLS
        try:
            self._context = self._tls_context()
        except _Stop:
            await self._quit(smtp)
            raise
        try:
            await smtp.starttls(
                server_hostname=host_ascii(self.plan.host), tls_context=self._context
            )
        except Exception as exc:
            # Until the server said 220 the trouble is STARTTLS itself (no answer, a refusal,
            # a hang-up); after it, the handshake.
            ready = any(
                r.dir is Direction.SERVER and r.phase is Phase.STARTTLS and r.code == 220
                for r in self.recorder.rows
            )
            phase = Phase.TLS if ready else Phase.STARTTLS
            raise _Stop(failure_from_exception(exc, phase)) from None
        self._tls_established(smtp)

    def _tls_established(self, smtp: SMTP) -> None:
        ssl_object = smtp.get_transport_info("ssl_object")
        if ssl_object is None:
            return
        self.recorder.tls_started()
        der = ssl_object.getpeercert(binary_form=True) or b""
        fingerprint = hashlib.sha256(der).hexdigest()
        info = describe_certificate(der, ssl_object, fingerprint, self._trust_label())
        self.tls = info
        until = f", valid until {info.not_after:%Y-%m-%d}" if info.not_after else ""
        self.recorder.info(
            f"TLS established: {info.version}, {info.cipher}; certificate subject {info.subject}, "
            f"issuer {info.issuer}, names {', '.join(info.san) or '-'}{until}",
            Phase.TLS,
        )
        if self.plan.pin_sha256:
            if fingerprint != self.plan.pin_sha256:
                self.recorder.info(
                    f"certificate SHA-256 {fingerprint} differs from the pinned "
                    f"{self.plan.pin_sha256}: nothing more is sent",
                    Phase.TLS,
                )
                raise _Stop(Failure(Phase.TLS, Signal.TLS_PIN, detail=fingerprint))
            self.recorder.info("certificate verified: SHA-256 matches the pin", Phase.TLS)
        else:
            self.recorder.info(
                f"certificate verified for {self.plan.host} by the {self._trust_label()}",
                Phase.TLS,
            )

    def _facts(self, smtp: SMTP, phase: Phase, signal: Signal, detail: str) -> Failure:
        return Failure(
            phase,
            signal,
            detail=detail,
            extensions=frozenset(k.upper() for k in smtp.esmtp_extensions),
            auth_mechanisms=frozenset(m.upper() for m in smtp.server_auth_methods),
        )

    def _choose_mechanism(self, smtp: SMTP) -> str | None:
        """The AUTH mechanism to use, or None to send without AUTH; says why in the transcript."""
        auth = self.plan.auth.canonical
        offered = [m.upper() for m in smtp.server_auth_methods]
        self.recorder.phase = Phase.AUTH
        if auth is AuthType.NONE:
            self.recorder.info("authorization type none: no AUTH")
            return None
        if auth is AuthType.AUTO and not self.password and self.token is None:
            self.recorder.info("no password or token stored: sending without AUTH")
            return None
        if not offered:
            raise _Stop(self._facts(smtp, Phase.AUTH, Signal.NOT_OFFERED, "AUTH"))
        if auth is not AuthType.AUTO:
            wanted = _MECHANISM_OF[auth]
            if wanted not in offered:
                raise _Stop(self._facts(smtp, Phase.AUTH, Signal.NOT_OFFERED, wanted))
            self.recorder.info(
                f"AUTH {wanted}: set in the settings (the server offers {' '.join(offered)})"
            )
            self.mechanism = wanted
            return wanted
        if self.token is not None and "XOAUTH2" in offered:
            self.recorder.info("AUTH XOAUTH2 chosen: an OAuth token is stored and offered")
            self.mechanism = "XOAUTH2"
            return "XOAUTH2"
        encrypted = self.plan.security is not Security.NONE
        order = PREFERRED_OVER_TLS if encrypted else PREFERRED_IN_CLEAR
        for candidate in order:
            if candidate in offered and self.password:
                why = (
                    "over verified TLS it is the first of PLAIN, LOGIN, CRAM-MD5, NTLM the "
                    "server offers"
                    if encrypted
                    else "without TLS, mechanisms that keep the password off the wire come first"
                )
                self.recorder.info(
                    f"AUTH {candidate} chosen (auto): the server offers {' '.join(offered)}; {why}"
                )
                self.mechanism = candidate
                return candidate
        raise _Stop(self._facts(smtp, Phase.AUTH, Signal.NOT_OFFERED, "no usable mechanism"))

    async def _token(self) -> Secret:
        assert self.token is not None
        try:
            token = await call_provider(self.token)
        except SecretStoreError as exc:  # the consent is stored where it cannot be read
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=f"secrets: {exc}")) from None
        except OAuthError as exc:
            self.recorder.info("no access token: the token provider could not get one")
            failure = Failure(exc.diagnosis.phase, Signal.OAUTH, detail="token provider")
            raise _Stop(failure, exc.diagnosis) from None
        self.recorder.add_secret(token)
        return token

    async def _authenticate(self, smtp: SMTP, mechanism: str) -> None:
        user = self.plan.username or ""
        try:
            if mechanism == "XOAUTH2":
                token = await self._token()
                await smtp.auth_xoauth2(user, token.reveal())
            elif mechanism == "LOGIN":
                assert self.password is not None
                await smtp.auth_login(user, self.password.reveal())
            elif mechanism == "CRAM-MD5":
                assert self.password is not None
                await smtp.auth_crammd5(user, self.password.reveal())
            elif mechanism == "PLAIN":
                assert self.password is not None
                await smtp.auth_plain(user, self.password.reveal())
            elif mechanism == "NTLM":
                await self._auth_ntlm(smtp, user)
        except _Stop:
            raise
        except Exception as exc:
            raise _Stop(failure_from_exception(exc, Phase.AUTH)) from None

    async def _auth_ntlm(self, smtp: SMTP, user: str) -> None:
        import spnego  # only NTLM needs it, and it costs a test send's start-up

        assert self.password is not None
        client = spnego.client(
            user,
            self.password.reveal(),
            hostname=host_ascii(self.plan.host),
            service="SMTP",
            protocol="ntlm",
        )
        negotiate = client.step()
        assert negotiate is not None
        response = await smtp.execute_command(b"AUTH", b"NTLM", base64.b64encode(negotiate))
        if response.code != 334:
            raise SMTPAuthenticationError(response.code, response.message)
        challenge = base64.b64decode(response.message.strip() or b"")
        authenticate = client.step(challenge)
        assert authenticate is not None
        response = await smtp.execute_command(base64.b64encode(authenticate))
        if response.code != 235:
            raise SMTPAuthenticationError(response.code, response.message)

    async def _transaction(
        self, smtp: SMTP, message: TestMessage, pipelining: bool, plain_in_group: bool
    ) -> str:
        protocol = smtp.protocol
        assert isinstance(protocol, RecordingProtocol)
        payload = message.as_bytes()
        mail = f"MAIL FROM:<{message.sender}>"
        if smtp.supports_extension("size"):
            mail += f" SIZE={len(payload)}"
        if message.smtputf8:
            if not smtp.supports_extension("smtputf8"):
                raise _Stop(self._facts(smtp, Phase.MAIL, Signal.NOT_OFFERED, "SMTPUTF8"))
            mail += " SMTPUTF8"
        commands: list[tuple[Phase, bytes]] = []
        if plain_in_group:
            assert self.password is not None
            encoded = auth_plain_encode(self.plan.username or "", self.password.reveal())
            commands.append((Phase.AUTH, b"AUTH PLAIN " + encoded + b"\r\n"))
        commands.append((Phase.MAIL, mail.encode() + b"\r\n"))
        commands += [(Phase.RCPT, f"RCPT TO:<{r}>\r\n".encode()) for r in message.recipients]
        if self._chunking(smtp):
            return await self._chunked(protocol, commands, payload, pipelining, message)
        commands.append((Phase.DATA, b"DATA\r\n"))
        timeout = self.waits.command
        replies: list[tuple[Phase, SMTPResponse]] = []
        groups = [commands] if pipelining else [[c] for c in commands]
        for group in groups:
            try:
                responses = await protocol.pipeline(
                    b"".join(c for _, c in group), len(group), timeout
                )
            except PipelineError as exc:
                replies += list(zip([p for p, _ in group], exc.responses, strict=False))
                self._check_replies(replies, len(message.recipients))
                phase = group[len(exc.responses)][0]
                raise _Stop(failure_from_exception(exc, phase)) from None
            except Exception as exc:
                raise _Stop(failure_from_exception(exc, group[0][0])) from None
            replies += list(zip([p for p, _ in group], responses, strict=True))
            self._check_replies(replies, len(message.recipients))
            if protocol.unasked and group[-1][0] is not Phase.DATA:
                self._in_body = True  # whatever the server thinks comes next, say no more
                raise _Stop(extra_reply(group[-1][0]))
        body = normalize_message_line_endings(payload)
        body = PERIOD_REGEX.sub(b"..", body) + b".\r\n"
        end = await self._end_of_data(protocol, body, pipelining)
        return end

    def _chunking(self, smtp: SMTP) -> bool:
        return self.plan.chunking and smtp.supports_extension("chunking")

    async def _chunked(
        self,
        protocol: RecordingProtocol,
        commands: list[tuple[Phase, bytes]],
        payload: bytes,
        pipelining: bool,
        message: TestMessage,
    ) -> str:
        """RFC 3030: the message as one ``BDAT <size> LAST`` chunk, its octets as they are (no
        dot-stuffing, no final dot). The server reads them whatever it answers, so they may
        leave before MAIL and RCPT are answered: with PIPELINING the chunk and QUIT join the
        group, and the whole transaction takes one round trip. The reply to the chunk is the
        message's verdict, as the reply to DATA's final dot is; lost, the outcome is unknown."""
        body = normalize_message_line_endings(payload)
        commands = [*commands, (Phase.END_OF_DATA, b"BDAT %d LAST\r\n" % len(body) + body)]
        if pipelining:
            commands.append((Phase.QUIT, b"QUIT\r\n"))
        wait = {Phase.END_OF_DATA: self.waits.end_of_data, Phase.QUIT: self.waits.quit}
        replies: list[tuple[Phase, SMTPResponse]] = []
        for group in [commands] if pipelining else [[c] for c in commands]:
            phases = [p for p, _ in group]
            waits = [wait.get(p, self.waits.command) for p in phases]
            try:
                responses = await protocol.pipeline(
                    b"".join(c for _, c in group), len(group), waits
                )
            except PipelineError as exc:
                responses = exc.responses
                if phases[len(responses)] is not Phase.QUIT:  # QUIT's alone: the verdict came
                    replies += list(zip(phases, responses, strict=False))
                    self._check_chunk_replies(replies, len(message.recipients))
                    raise _Stop(failure_from_exception(exc, phases[len(responses)])) from None
            except Exception as exc:
                raise _Stop(failure_from_exception(exc, phases[0])) from None
            self._quit_sent = self._quit_sent or Phase.QUIT in phases
            replies += list(zip(phases, responses, strict=False))
            if self._replies_shifted(protocol, replies):
                # Which reply answers the chunk cannot be told: never call it a delivery.
                if Phase.END_OF_DATA not in phases:
                    raise _Stop(extra_reply(phases[-1]))
                detail = "duplicate reply: the server answered more often than it was asked"
                raise _Stop(Failure(Phase.END_OF_DATA, Signal.MALFORMED, detail=detail))
            self._check_chunk_replies(replies, len(message.recipients))
        final = next(r for p, r in replies if p is Phase.END_OF_DATA)
        if not pipelining and self.smtp is not None:
            await self._quit(self.smtp)
        return f"{final.code} {final.message}"

    @staticmethod
    def _replies_shifted(
        protocol: RecordingProtocol, replies: list[tuple[Phase, SMTPResponse]]
    ) -> bool:
        """More replies than commands: one was answered twice (QUIT never answers 250, so a
        success other than 221 in its place is the chunk's own, pushed along by one)."""
        quit_codes = [r.code for p, r in replies if p is Phase.QUIT]
        return bool(protocol.unasked) or any(c < 300 and c != 221 for c in quit_codes)

    def _check_chunk_replies(
        self, replies: list[tuple[Phase, SMTPResponse]], recipients: int
    ) -> None:
        """As :meth:`_check_replies`, then the chunk's verdict. A server that took the message
        although the AUTH before it failed takes mail from anyone: the transcript says so."""
        auth_failed = any(p is Phase.AUTH and r.code != 235 for p, r in replies)
        verdict = next((r for p, r in replies if p is Phase.END_OF_DATA), None)
        if auth_failed and verdict is not None and verdict.code == 250:
            self.recorder.info(
                "the server accepted the message although AUTH failed: it takes mail without "
                "a sign-in from this client",
                Phase.END_OF_DATA,
            )
        self._check_replies(replies, recipients)
        if verdict is not None and verdict.code != 250:
            raise _Stop(reply_failure(Phase.END_OF_DATA, verdict))

    def _check_replies(self, replies: list[tuple[Phase, SMTPResponse]], recipients: int) -> None:
        """Stop at the first reply that ends the transaction (pipelined replies come in order).

        A recipient refusal stops the send only once every recipient was answered and none was
        accepted; DATA is then refused by the server too, but the RCPT reply says why.
        """
        accepted = answered = 0
        refusal: SMTPResponse | None = None
        # Whatever stops the send, a server that said 354 now reads everything as the body.
        self._in_body = any(p is Phase.DATA and r.code == 354 for p, r in replies)
        previous: Phase | None = None
        for phase, response in replies:
            if phase is Phase.DATA and 200 <= response.code < 300 and previous is not None:
                # DATA never answers 2xx: this is the command before it answered twice, and
                # the real answer to DATA (likely 354) is still on its way.
                self._in_body = True
                raise _Stop(extra_reply(previous))
            previous = phase
            if phase is Phase.AUTH:
                self.mechanism = "PLAIN"
                if response.code != 235:
                    raise _Stop(reply_failure(Phase.AUTH, response))
            elif phase is Phase.MAIL and response.code != 250:
                raise _Stop(reply_failure(Phase.MAIL, response))
            elif phase is Phase.RCPT:
                answered += 1
                if response.code in (250, 251):
                    accepted += 1
                elif refusal is None:
                    refusal = response
            elif phase is Phase.DATA:
                if accepted == 0 and refusal is not None:
                    raise _Stop(reply_failure(Phase.RCPT, refusal))
                if response.code != 354:
                    raise _Stop(reply_failure(Phase.DATA, response))
        if answered == recipients and accepted == 0 and refusal is not None:
            raise _Stop(reply_failure(Phase.RCPT, refusal))

    async def _end_of_data(self, protocol: RecordingProtocol, body: bytes, pipelining: bool) -> str:
        quit_with_body = pipelining
        data = body + (b"QUIT\r\n" if quit_with_body else b"")
        # The final dot gets the long wait; a QUIT pipelined behind it the same short one a
        # lone QUIT gets (the message is decided by then).
        waits = [self.waits.end_of_data, self.waits.quit]
        try:
            responses = await protocol.pipeline(data, 2 if quit_with_body else 1, waits)
        except PipelineError as exc:
            if not exc.responses:
                raise _Stop(failure_from_exception(exc, Phase.END_OF_DATA)) from None
            responses = exc.responses  # the message reply came; QUIT's did not: still fine
        except Exception as exc:
            raise _Stop(failure_from_exception(exc, Phase.END_OF_DATA)) from None
        final = responses[0]
        if final.code != 250:
            raise _Stop(reply_failure(Phase.END_OF_DATA, final))
        if not quit_with_body and self.smtp is not None:
            await self._quit(self.smtp)
        return f"{final.code} {final.message}"

    async def _quit(self, smtp: SMTP) -> None:
        """Say goodbye politely, briefly; a server that does not answer is not a failure."""
        protocol = smtp.protocol
        if not isinstance(protocol, RecordingProtocol) or not smtp.is_connected or self._quit_sent:
            return
        self._quit_sent = True
        self.recorder.phase = Phase.QUIT
        with contextlib.suppress(Exception):
            await protocol.pipeline(b"QUIT\r\n", 1, self.waits.quit)


async def send_plan_async(
    plan: SmtpPlan,
    *,
    to: Sequence[str],
    password: Secret | None = None,
    token: TokenProvider | None = None,
    priority: Priority = Priority.NORMAL,
    on_row: Callable[[Row], None] | None = None,
    tls_contexts: TlsContexts | None = None,
    secrets_problem: str | None = None,
) -> TestResult:
    """Send the test message with ``plan``; returns success or a diagnosis, never raises.
    ``tls_contexts``: the TLS contexts the sends of one run share. ``secrets_problem``: why
    the secret store could not be read (then no password is not taken as "none stored")."""
    sender = SmtpTestSender(
        plan,
        password=password,
        token=token,
        on_row=on_row,
        tls_contexts=tls_contexts,
        secrets_problem=secrets_problem,
    )
    try:
        message = build_test_message(
            sender=plan.from_address or "",
            recipients=list(to),
            sender_name=plan.from_name,
            priority=priority,
        )
    except ValueError as exc:
        from mailkit.diagnose import diagnose

        failure = Failure(Phase.SETUP, Signal.MISSING, detail=f"address: {exc}")
        failure = bounded(sender.scrubber.scrub_value(failure))
        return TestResult(
            ok=False,
            transcript=sender.recorder.transcript(),
            context=plan.context(),
            scrub=sender.scrubber,
            diagnosis=diagnose(failure, plan.context()),
        )
    return await sender.run(message)
