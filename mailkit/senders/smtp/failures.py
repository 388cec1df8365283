"""What went wrong on the wire, as the :class:`~mailkit.outcome.Failure` a diagnosis reads.

aiosmtplib, asyncio and ssl each raise their own exceptions, often wrapped (a refused connection
inside ``SMTPConnectError``, a certificate check inside a TLS error); a server's refusal is a
reply code and text. Both become the same small set of signals here, so
:func:`mailkit.diagnose.diagnose` never sees a library's exception.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import socket
import ssl
from typing import Any

from aiosmtplib.errors import (
    SMTPConnectTimeoutError,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.response import SMTPResponse

from mailkit.outcome import MAX_DETAIL, Failure, Phase, Signal
from mailkit.senders.smtp.protocol import PipelineError


def _root_causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: aiosmtplib hides a refused socket inside its own errors."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def _enhanced(text: str) -> str | None:
    first = text.strip().split(" ", 1)[0] if text.strip() else ""
    parts = first.split(".")
    if len(parts) == 3 and parts[0] in {"2", "4", "5"} and all(p.isdigit() for p in parts):
        return first
    return None


def failure_from_exception(exc: BaseException, phase: Phase, **facts: Any) -> Failure:
    """Classify what aiosmtplib / asyncio / ssl raised into a :class:`Failure`."""
    for cause in _root_causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure(
                Phase.TLS if phase in (Phase.CONNECT, Phase.GREETING, Phase.STARTTLS) else phase,
                Signal.TLS_VERIFY,
                verify_code=cause.verify_code,
                detail=str(cause.verify_message or cause),
                **facts,
            )
        if isinstance(cause, ssl.SSLError):
            return Failure(Phase.TLS, Signal.TLS_PROTOCOL, detail=str(cause), **facts)
        if isinstance(cause, socket.gaierror):
            return Failure(Phase.CONNECT, Signal.DNS, detail=str(cause), **facts)
        if isinstance(cause, ConnectionRefusedError):
            return Failure(Phase.CONNECT, Signal.REFUSED, detail=str(cause), **facts)
        if isinstance(cause, OSError) and cause.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            return Failure(Phase.CONNECT, Signal.UNREACHABLE, detail=str(cause), **facts)
    if isinstance(exc, PipelineError):
        return failure_from_exception(exc.cause, phase, **facts)
    if isinstance(exc, SMTPConnectTimeoutError):
        waiting_for_greeting = "ready message" in str(exc)
        return Failure(
            Phase.GREETING if waiting_for_greeting else Phase.CONNECT,
            Signal.TIMEOUT,
            detail=str(exc),
            **facts,
        )
    if isinstance(exc, SMTPTimeoutError | TimeoutError | asyncio.TimeoutError):
        return Failure(phase, Signal.TIMEOUT, detail=str(exc) or "timed out", **facts)
    if isinstance(exc, SMTPResponseException):
        if exc.code < 0 or "Malformed" in exc.message or "too long" in exc.message:
            # Not cut here: the sender scrubs the server's words first, then cuts them.
            return Failure(phase, Signal.MALFORMED, detail=exc.message, **facts)
        return Failure(
            phase,
            Signal.REPLY,
            code=exc.code,
            enhanced=_enhanced(exc.message),
            text=exc.message,
            **facts,
        )
    if isinstance(exc, SMTPServerDisconnected | ConnectionError | EOFError):
        return Failure(phase, Signal.DISCONNECTED, detail=str(exc), **facts)
    return Failure(phase, Signal.DISCONNECTED, detail=f"{type(exc).__name__}: {exc}", **facts)


def bounded(failure: Failure) -> Failure:
    """``failure`` with its sender detail cut — only ever applied after scrubbing."""
    if len(failure.detail) <= MAX_DETAIL:
        return failure
    return dataclasses.replace(failure, detail=failure.detail[: MAX_DETAIL - 1] + "…")


def extra_reply(phase: Phase) -> Failure:
    """The server answered one command twice: replies no longer pair with commands."""
    step = {Phase.RCPT: "RCPT TO", Phase.MAIL: "MAIL FROM", Phase.AUTH: "AUTH"}.get(phase, "")
    return Failure(
        phase,
        Signal.MALFORMED,
        detail=f"duplicate reply: the server answered {step or phase.value} twice",
    )


def reply_failure(phase: Phase, response: SMTPResponse, **facts: Any) -> Failure:
    """A server's refusal at ``phase``: its code, enhanced status and words, for the rules."""
    return Failure(
        phase,
        Signal.REPLY,
        code=response.code,
        enhanced=_enhanced(response.message),
        text=response.message,
        **facts,
    )
