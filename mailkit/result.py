"""What a test send hands back, whichever way the mail left: SMTP, the Gmail API or Graph.

The values every face shares (the notebook, the widgets, the command line, the audit) live here,
beside :mod:`mailkit.outcome`, and not in a sender: a consumer that reads a result needs no
network library. Rendering is not the result's business either; :mod:`mailkit.cards` draws it,
imported only when a notebook asks for the HTML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from mailkit.outcome import Diagnosis, SendContext
from mailkit.secret import Secret
from mailkit.transcript import SecretScrubber, Transcript

if TYPE_CHECKING:  # the delivery check's module loads only for a send that verifies delivery
    from mailkit.delivery import DeliveryReport

#: What a sender calls for an OAuth access token just before it signs in: plain (run off the
#: event loop, since it may refresh over the network) or a coroutine function.
TokenProvider: TypeAlias = Callable[[], Secret | Awaitable[Secret]]


@dataclass(frozen=True)
class TlsInfo:
    """What the TLS handshake established and how the certificate was trusted."""

    version: str
    cipher: str
    subject: str
    issuer: str
    san: tuple[str, ...]
    not_after: datetime | None
    sha256: str
    verified_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "subject": self.subject,
            "issuer": self.issuer,
            "san": list(self.san),
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "sha256": self.sha256,
            "verified_by": self.verified_by,
        }


@dataclass(frozen=True)
class TestResult:
    """One test send: success, or a diagnosis — always with the whole transcript.

    It can only be built with the scrubber of its send (``scrub``): every string in every
    field, nested ones included, goes through it at construction. An output path added later
    (a new field, a new rendering) therefore cannot see a secret a server echoed, whatever
    the sender forgot to scrub.
    """

    ok: bool
    transcript: Transcript
    context: SendContext
    scrub: InitVar[SecretScrubber]
    diagnosis: Diagnosis | None = None
    tls: TlsInfo | None = None
    auth_mechanism: str | None = None
    message_id: str | None = None
    #: The server's final reply to the message (often names its queue id).
    server_reply: str | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration_ms: float = 0.0
    #: The delivery check after an accepted send (``send_test(..., verify=...)``): where the
    #: message landed, its Received chain, Authentication-Results, spam verdict or bounce.
    delivery: DeliveryReport | None = None
    #: A desktop mode's hand-off: the .eml written for the mail client, which sends it.
    eml_path: str | None = None
    #: What can be known about a hand-off besides the file (no desktop session, no default
    #: mail client, ...): plain sentences, each with what to do.
    notes: tuple[str, ...] = ()

    __test__ = False  # not a pytest test class, despite the name

    def __post_init__(self, scrub: SecretScrubber) -> None:
        if not isinstance(scrub, SecretScrubber):
            raise TypeError("TestResult needs the SecretScrubber of its send")
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            object.__setattr__(self, item.name, scrub.scrub_value(value))

    @property
    def timings(self) -> dict[str, float]:
        return self.transcript.timings()

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: ok, diagnosis, transcript, tls, auth, message id, timings."""
        return {
            "ok": self.ok,
            "diagnosis": self.diagnosis.as_dict() if self.diagnosis else None,
            "transcript": self.transcript.to_records(),
            "tls": self.tls.as_dict() if self.tls else None,
            "auth_mechanism": self.auth_mechanism,
            "message_id": self.message_id,
            "server_reply": self.server_reply,
            "timings": self.timings,
            "duration_ms": self.duration_ms,
            "host": self.context.host,
            "port": self.context.port,
            "security": self.context.security,
            "delivery": self.delivery.as_dict() if self.delivery else None,
            "eml_path": self.eml_path,
            "notes": list(self.notes),
        }

    def _repr_html_(self) -> str:
        from mailkit.cards import result_html  # rendering is drawn outside the value

        return result_html(self)
