"""The words a test send's outcome is told in: phases, kinds, causes, failures, diagnoses.

A sender reports *what happened* as a :class:`Failure` — the phase, a low-level
:class:`Signal` (refused, timeout, a reply, a certificate check, ...) and the facts that go with
it. :func:`mailkit.diagnose.diagnose` turns that into a :class:`Diagnosis` — *what it means and
what to do* — without touching the network, so every explanation is tested as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from mailkit.faces import Face, Where, render


class Phase(StrEnum):
    """Where in the dialog a send stopped. ``setup`` is before any connection was tried."""

    SETUP = "setup"
    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    TLS = "tls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"
    END_OF_DATA = "end_of_data"
    QUIT = "quit"
    #: OAuth: getting a token (sign-in link or device code, then the code exchange).
    CONSENT = "consent"
    #: OAuth: refreshing a stored token just before a send.
    TOKEN = "token"
    #: An HTTP API send (Gmail API ``users.messages.send``, Graph ``sendMail``).
    REQUEST = "request"
    #: After the server accepted the message: the delivery check of the recipient's mailbox.
    DELIVERY = "delivery"
    #: A desktop mode's hand-off: the test message written as an .eml for the mail client.
    HANDOFF = "handoff"


class Kind(StrEnum):
    """What retrying would do: nothing (permanent), maybe succeed later (transient), ..."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    #: The server may have accepted the message: a timeout or disconnect after the final dot.
    OUTCOME_UNKNOWN = "outcome_unknown"
    #: mailkit's settings (or the policy they express) are wrong; the server is not to blame.
    CONFIGURATION = "configuration"


class Signal(StrEnum):
    """The low-level event a sender observed; the diagnosis decides what it means."""

    DNS = "dns"  # the host name does not resolve
    REFUSED = "refused"  # TCP connection refused
    UNREACHABLE = "unreachable"  # no route / network down / host unreachable
    TIMEOUT = "timeout"  # no answer within the timeout
    DISCONNECTED = "disconnected"  # the server closed the connection
    REPLY = "reply"  # the server answered with an error code (see Failure.code)
    MALFORMED = "malformed"  # a reply line that is not SMTP, or is too long
    TLS_VERIFY = "tls_verify"  # certificate verification failed (see Failure.verify_code)
    TLS_PIN = "tls_pin"  # the certificate's SHA-256 differs from the pinned one
    TLS_PROTOCOL = "tls_protocol"  # handshake failed: wrong version, not TLS at all, ...
    NOT_OFFERED = "not_offered"  # an extension we need was not advertised (STARTTLS, AUTH, ...)
    POLICY = "policy"  # mailkit refused to go on (credentials over plaintext, ...)
    MISSING = "missing"  # a setting or credential needed for the send is absent
    HTTP = "http"  # an HTTP API answered with an error status (see Failure.code)
    OAUTH = "oauth"  # an OAuth endpoint answered with an error (Failure.enhanced = error)


class Cause(StrEnum):
    """Why a send failed, in words an admin searches for. Stable: tests and exit codes use it."""

    # setup / configuration
    HOST_MISSING = "host_missing"
    PASSWORD_MISSING = "password_missing"
    TOKEN_MISSING = "token_missing"
    #: The secret store could not be read (a locked or damaged encrypted file, no keyring).
    SECRETS_UNAVAILABLE = "secrets_unavailable"
    MODE_NOT_SMTP = "mode_not_smtp"
    SETTING_INVALID = "setting_invalid"  # e.g. no From address, or an address that fails
    PLAINTEXT_AUTH_REFUSED = "plaintext_auth_refused"
    # connect
    DNS_FAILURE = "dns_failure"
    CONNECTION_REFUSED = "connection_refused"
    NETWORK_UNREACHABLE = "network_unreachable"
    CONNECT_TIMEOUT = "connect_timeout"
    # greeting / ehlo
    GREETING_TIMEOUT = "greeting_timeout"
    SERVICE_UNAVAILABLE = "service_unavailable"  # 421
    SERVICE_REFUSED = "service_refused"  # 554 greeting
    EHLO_REJECTED = "ehlo_rejected"
    MALFORMED_REPLY = "malformed_reply"
    # starttls / tls
    STARTTLS_MISSING = "starttls_missing"
    STARTTLS_REFUSED = "starttls_refused"
    TLS_ON_PLAIN_PORT = "tls_on_plain_port"  # implicit TLS against a plaintext port
    PLAIN_ON_TLS_PORT = "plain_on_tls_port"  # plaintext against an implicit-TLS port
    CERTIFICATE_UNTRUSTED = "certificate_untrusted"
    CERTIFICATE_WRONG_HOST = "certificate_wrong_host"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_PIN_MISMATCH = "certificate_pin_mismatch"
    TLS_VERSION_REFUSED = "tls_version_refused"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    # auth
    AUTH_NOT_OFFERED = "auth_not_offered"
    MECHANISM_NOT_OFFERED = "mechanism_not_offered"
    ENCRYPTION_REQUIRED = "encryption_required"  # 530/538 5.7.0/5.7.11
    BAD_CREDENTIALS = "bad_credentials"
    #: One provider's account signing in at another provider's server (outlook.com at Gmail).
    PROVIDER_MISMATCH = "provider_mismatch"
    APP_PASSWORD_REQUIRED = "app_password_required"  # Gmail 534 5.7.9
    BASIC_AUTH_DISABLED = "basic_auth_disabled"  # Microsoft 535 5.7.139
    OAUTH_TOKEN_INVALID = "oauth_token_invalid"
    AUTH_TEMPORARY_FAILURE = "auth_temporary_failure"  # 454 4.7.0
    AUTH_REQUIRED = "auth_required"  # 530 5.7.0/5.7.57 at MAIL/RCPT: must authenticate
    # mail / rcpt / data
    SENDER_REJECTED = "sender_rejected"
    SEND_AS_DENIED = "send_as_denied"  # Microsoft 550 5.7.60
    RELAY_DENIED = "relay_denied"
    RECIPIENT_REJECTED = "recipient_rejected"
    GREYLISTED = "greylisted"
    RATE_LIMITED = "rate_limited"
    MAILBOX_FULL = "mailbox_full"
    MESSAGE_TOO_LARGE = "message_too_large"
    MESSAGE_REJECTED = "message_rejected"  # content/policy rejection at end of data
    # OAuth consent and tokens
    OAUTH_CLIENT_INVALID = "oauth_client_invalid"  # unknown client id or wrong client secret
    OAUTH_REDIRECT_MISMATCH = "oauth_redirect_mismatch"
    CONSENT_DENIED = "consent_denied"  # the user (or an admin policy) said no
    CONSENT_TIMEOUT = "consent_timeout"  # nobody finished signing in in time
    STATE_MISMATCH = "state_mismatch"  # the redirect is not the answer to our request
    PKCE_REJECTED = "pkce_rejected"  # the provider refused the code verifier
    CODE_INVALID = "code_invalid"  # an authorization code expired or already used
    DEVICE_CODE_DECLINED = "device_code_declined"
    DEVICE_CODE_EXPIRED = "device_code_expired"
    DEVICE_CODE_BLOCKED = "device_code_blocked"  # tenant policy blocks the device-code flow
    TOKEN_REVOKED = "token_revoked"  # refresh refused: revoked, expired or password changed
    TOKEN_EXPIRED = "token_expired"  # an access token past its lifetime
    INSUFFICIENT_SCOPE = "insufficient_scope"  # the token lacks the scope the API needs
    API_ACCESS_DENIED = "api_access_denied"  # 403 for another reason: API off, policy, ...
    # anywhere
    DISCONNECTED = "disconnected"
    COMMAND_TIMEOUT = "command_timeout"
    OUTCOME_UNKNOWN = "outcome_unknown"  # timeout/disconnect after the final dot
    SERVER_ERROR = "server_error"  # an error reply nothing more specific explains
    # Exchange Web Services
    AUTODISCOVER_FAILED = "autodiscover_failed"  # no step of Autodiscover named an EWS URL
    EWS_UNAVAILABLE = "ews_unavailable"  # EWS switched off for the mailbox, or retired (Online)
    ACCOUNT_LOCKED = "account_locked"  # the server says the account is locked out
    # delivery (accepted, then checked in the recipient's mailbox; see mailkit.verify)
    DELIVERED_TO_SPAM = "delivered_to_spam"
    NOT_DELIVERED = "not_delivered"  # not found within the delivery check's timeout
    BOUNCED_UNKNOWN_RECIPIENT = "bounced_unknown_recipient"  # DSN 5.1.x
    BOUNCED_POLICY = "bounced_policy"  # DSN 5.7.x: SPF, DKIM, DMARC or another policy
    BOUNCED = "bounced"  # any other failed DSN
    DELIVERY_DELAYED = "delivery_delayed"  # DSN Action: delayed / 4.x.x
    MAILBOX_UNCHECKED = "mailbox_unchecked"  # the delivery check could not search the mailbox


@dataclass(frozen=True)
class Failure:
    """What a sender observed when a send stopped. No secret ever goes in here.

    ``code``/``enhanced``/``text`` are the server's reply (``text`` with lines joined by
    ``\\n``); ``verify_code`` is OpenSSL's X509 verification error number; ``detail`` is the
    sender's own short description (an exception's message, already free of secrets).
    """

    phase: Phase
    signal: Signal
    code: int | None = None
    enhanced: str | None = None
    text: str = ""
    verify_code: int | None = None
    detail: str = ""
    #: What the server advertised in its last EHLO (upper-case keywords), when known.
    extensions: frozenset[str] = frozenset()
    #: AUTH mechanisms the server advertised (upper-case), when known.
    auth_mechanisms: frozenset[str] = frozenset()
    #: Seconds an HTTP 429/503 asked the client to wait (``Retry-After``), when given.
    retry_after: float | None = None


#: A failure's own words (``Failure.detail``) are cut to this, only once scrubbed; the
#: transcript keeps them whole.
MAX_DETAIL = 300


@dataclass(frozen=True)
class SendContext:
    """The settings a send used, as far as a diagnosis needs them (never a secret)."""

    host: str
    port: int
    security: str  # a Security value
    #: An AuthType value, after ``auto`` was resolved when it was. An SMTP send that got past
    #: AUTH with ``auto`` still here chose no mechanism: no password or token was stored.
    auth: str
    username: str | None = None
    from_address: str | None = None
    timeout: float | None = None
    #: Whose OAuth / mail API this send used ("google" | "microsoft"), when the host alone
    #: cannot tell (a test double on 127.0.0.1, a proxy). None for plain SMTP.
    oauth_provider: str | None = None
    #: The service a non-SMTP send spoke ("ews" for Exchange Web Services), when it matters
    #: to the diagnosis; None for SMTP and the mail APIs.
    service: str | None = None
    #: The desktop mode (outlook, mapi, lotus_notes) whose client a hand-off wrote the .eml
    #: for; None when mailkit itself sent.
    desktop_client: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong, in which phase, whether to retry, and the numbered steps to fix it."""

    phase: Phase
    kind: Kind
    cause: Cause
    title: str
    explanation: str
    fix: tuple[str, ...]
    #: The provider the advice was tailored for ("gmail", "microsoft365", ...), if any.
    provider: str | None = None
    code: int | None = None
    enhanced: str | None = None
    server_text: str = ""
    references: tuple[str, ...] = field(default=())
    #: Title, explanation and fix steps with their setting references still in them (see
    #: :mod:`mailkit.faces`); the plain fields above are these in the Python face's words.
    marked: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def for_face(self, face: Face | str, where: Where | None = None) -> Diagnosis:
        """The same diagnosis naming settings as ``face`` does: ``--ca-file`` on the command
        line, the "CA file" field in a widget, ``ca_file`` in Python; ``where`` says whose
        password the advice is about, so "store it with ..." names the right command or form."""
        if len(self.marked) < 2:
            return self
        title, explanation, *fix = (render(text, face, where) for text in self.marked)
        return replace(self, title=title, explanation=explanation, fix=tuple(fix))

    def as_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase.value,
            "kind": self.kind.value,
            "cause": self.cause.value,
            "title": self.title,
            "explanation": self.explanation,
            "fix": list(self.fix),
            "provider": self.provider,
            "code": self.code,
            "enhanced": self.enhanced,
            "server_text": self.server_text,
        }

    def to_text(self) -> str:
        """The diagnosis as a failure popup shows it, in plain text: title, explanation, steps."""
        lines = [f"{self.title} ({self.phase.value}, {self.kind.value}: {self.cause.value})"]
        if self.code is not None:
            reply = f"{self.code} {self.enhanced + ' ' if self.enhanced else ''}{self.server_text}"
            lines.append(f"Server said: {reply.strip()}")
        lines.append(self.explanation)
        lines.extend(f"{n}. {step}" for n, step in enumerate(self.fix, 1))
        return "\n".join(lines)
