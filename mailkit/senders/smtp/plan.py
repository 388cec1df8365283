"""What one SMTP send will do, decided before it connects: server, security, trust, waits.

Policy: implicit TLS on 465, otherwise STARTTLS, which is then *required* — a server that does
not offer it gets no AUTH and no MAIL; ``none`` only when chosen, and credentials over plaintext
also need ``allow_plaintext_auth``. Certificates are verified against the system store, a CA
file, or a pinned SHA-256 — never not at all. TLS 1.2 at least.

Each step has its own wait (:class:`Waits`: connect, greeting, each command, end of data, QUIT),
shown in the transcript; ``command_timeout`` / ``--timeout`` replaces them with one.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from mailkit.fields import ORG_SEND_DEFAULTS, AuthType, Mode, Security
from mailkit.outcome import SendContext
from mailkit.resolve import Effective

#: How long a test send waits at each step when nothing overrides it. RFC 5321 §4.5.3.2 gives
#: the minimums a *server-side* client keeps (greeting 5 min, MAIL and RCPT 5, DATA 2, each data
#: block 3, the final dot 10): right for a relay that retries for days, far too long for someone
#: watching a test. A server that works answers in milliseconds, so the waits cover the slow
#: but legitimate cases only.
#: TCP connect (and the handshake of implicit TLS): a reachable host answers in well under a
#: second; 10 s covers a slow VPN or a first DNS lookup.
CONNECT_WAIT = 10.0
#: Twice Postfix postscreen's 6 s greet pause, the longest delay servers add on purpose.
GREETING_WAIT = 12.0
#: Each command (EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA): RCPT may wait on DNS checks
#: (blocklists, SPF, recipient callouts) of a few seconds.
COMMAND_WAIT = 15.0
#: The reply to the final dot follows content scanning (antivirus, spam filters, milters); a
#: timeout there leaves the outcome unknown, the costliest answer, so it waits longest.
END_OF_DATA_WAIT = 60.0
#: QUIT, alone or pipelined behind the message: the message is already decided, so a server
#: that does not say goodbye costs the user a moment at most.
QUIT_WAIT = 3.0
#: The implicit-TLS probe after a silent greeting: a TLS server answers a hello at once.
TLS_PROBE_WAIT = 3.0


@dataclass(frozen=True)
class Waits:
    """The seconds one send waits at each step (see the ``*_WAIT`` defaults for why)."""

    connect: float = CONNECT_WAIT
    greeting: float = GREETING_WAIT
    command: float = COMMAND_WAIT
    end_of_data: float = END_OF_DATA_WAIT
    quit: float = QUIT_WAIT

    def describe(self) -> str:
        def s(value: float) -> str:
            return f"{value:g} s"

        return (
            f"connect {s(self.connect)}, greeting {s(self.greeting)}, each command "
            f"{s(self.command)}, end of data {s(self.end_of_data)}, QUIT {s(self.quit)}"
        )


def _chosen(eff: Effective, name: str) -> float | None:
    """An org timeout when it was changed from the settings' default, else None (then each
    phase keeps its own default wait)."""
    value = getattr(eff, name)
    return None if value == ORG_SEND_DEFAULTS[name] else float(value)


@dataclass(frozen=True)
class SmtpPlan:
    """Everything one send needs, resolved from the effective settings (no secrets)."""

    host: str
    port: int
    security: Security  # never AUTO: resolved by port
    auth: AuthType
    username: str | None
    from_address: str | None
    from_name: str | None = None
    ca_file: str | None = None
    pin_sha256: str | None = None
    tls_min_version: str = "1.2"
    allow_plaintext_auth: bool = False
    #: Overrides the connect wait (None: :data:`CONNECT_WAIT`, or the command override if lower).
    connect_timeout: float | None = None
    #: An override (``--timeout``, or an org ``command_timeout`` changed from its default):
    #: every reply — greeting, each command, end of data — waits this long. None: per phase.
    command_timeout: float | None = None
    local_hostname: str = "mailkit.localhost"
    mode: Mode = Mode.SMTP
    #: Send the message with RFC 3030 BDAT where the server offers CHUNKING (one round trip
    #: less). False keeps to DATA everywhere: to compare the two, or for a server whose BDAT
    #: is known to be broken.
    chunking: bool = True

    @property
    def waits(self) -> Waits:
        override = self.command_timeout
        connect = self.connect_timeout
        if connect is None:
            connect = CONNECT_WAIT if override is None else min(CONNECT_WAIT, override)
        if override is None:
            return Waits(connect=connect)
        return Waits(connect, override, override, override, min(QUIT_WAIT, override))

    @classmethod
    def from_effective(cls, eff: Effective) -> SmtpPlan:
        security = eff.security
        if security is Security.AUTO:
            security = Security.IMPLICIT_TLS if eff.port == 465 else Security.STARTTLS
        return cls(
            host=eff.host or "",
            port=eff.port,
            security=security,
            auth=eff.auth,
            username=eff.username,
            from_address=eff.from_address,
            from_name=eff.from_name,
            ca_file=eff.ca_file,
            pin_sha256=eff.tls_pin_sha256,
            tls_min_version=eff.tls_min_version,
            allow_plaintext_auth=eff.allow_plaintext_auth,
            connect_timeout=_chosen(eff, "connect_timeout"),
            command_timeout=_chosen(eff, "command_timeout"),
            mode=eff.mode,
        )

    def context(self, auth: str | None = None) -> SendContext:
        return SendContext(
            host=self.host,
            port=self.port,
            security=self.security.value,
            auth=auth or self.auth.value,
            username=self.username,
            from_address=self.from_address,
            timeout=self.waits.command,
        )


def tls_context(plan: SmtpPlan) -> ssl.SSLContext:
    """Verification always on: system CAs, or the CA file, or (pinned) the fingerprint."""
    if plan.pin_sha256:
        # The pin replaces the chain: a self-signed server is trusted by its exact certificate,
        # checked right after the handshake and before a single byte is sent over it. So no
        # trust anchors are read: not a CA file set beside the pin, nor the system store
        # (about 35 ms for nothing).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=plan.ca_file)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if plan.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    return context


class TlsContexts:
    """The TLS client contexts of one run of many sends (a bulk test), one per way of trusting.

    Building a context reads the trust anchors again: the system store costs about 20 ms of
    CPU, more than the rest of a send's own work. Sends that trust alike share one context
    (contexts are made to be shared by many connections). A pin is checked after each
    handshake, not by the context, so all pinned sends share one too.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[str | None, bool, str], ssl.SSLContext] = {}

    def __len__(self) -> int:
        return len(self._made)

    @staticmethod
    def _key(plan: SmtpPlan) -> tuple[str | None, bool, str]:
        pinned = bool(plan.pin_sha256)
        return (None if pinned else plan.ca_file, pinned, plan.tls_min_version)

    def holds(self, plan: SmtpPlan) -> bool:
        """Whether a context for ``plan`` was made: its CA file loaded then, so the sends
        after need not check it again."""
        return self._key(plan) in self._made

    def for_plan(self, plan: SmtpPlan) -> ssl.SSLContext:
        key = self._key(plan)
        context = self._made.get(key)
        if context is None:
            context = self._made[key] = tls_context(plan)
        return context
