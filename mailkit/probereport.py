"""A probe's findings per port and its verdict: which port and security to use, and why.

Pure: the adapter (:mod:`mailkit.smtpprobe`) fills :class:`PortReport` values from the
wire; everything that judges them lives here, so the verdict is tested without a socket and
reads the same in the CLI, a notebook and the probe panel. Advice that names a setting carries
a :func:`mailkit.faces.setting` reference; :meth:`Verdict.render` names it per face.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mailkit.errors import FieldProblem, SettingsError
from mailkit.faces import Face, render, setting
from mailkit.fields import Security
from mailkit.result import TlsInfo

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_PORTS",
    "STEPS",
    "Outcome",
    "PortReport",
    "ProbeReport",
    "Verdict",
    "auth_mechanisms",
    "check_arguments",
    "decide",
    "parse_extensions",
    "parse_ports",
]

#: Implicit-TLS submission (RFC 8314), submission with STARTTLS (RFC 6409), relay, and the
#: alternative submission port many hosting providers open when 587 is blocked.
DEFAULT_PORTS: tuple[int, ...] = (465, 587, 25, 2525)

#: The steps a port's dialog goes through, in order; each is timed.
STEPS: tuple[str, ...] = ("dns", "connect", "tls", "greeting", "ehlo", "starttls", "ehlo_tls")

#: Ports meant for mail submission by a client (RFC 8314, RFC 6409).
_SUBMISSION = frozenset({465, 587})
_RELAY = 25


class Outcome(StrEnum):
    """How a port's probe ended."""

    OK = "ok"  # an SMTP dialog to the end (EHLO, TLS when offered, QUIT)
    DNS = "dns"  # the host name does not resolve
    REFUSED = "refused"  # nothing listens: the TCP connect was refused
    UNREACHABLE = "unreachable"  # the TCP connect never completed (dropped, filtered)
    SILENT = "silent"  # connected, but the server never spoke: no greeting, no TLS
    STALLED = "stalled"  # it answered, then stopped mid-dialog (e.g. in the TLS handshake)
    RESET = "reset"  # the server reset or closed the connection
    REJECTED = "rejected"  # the server refused the session (421/554 greeting, EHLO refused)
    TLS_FAILED = "tls_failed"  # the TLS handshake failed for a reason other than the certificate
    NOT_SMTP = "not_smtp"  # something answered, but not in SMTP


#: More ports than this in one probe is a scan, not a probe of a mail server.
MAX_PORTS = 32


def parse_ports(text: str | int | Iterable[int | str]) -> tuple[int, ...]:
    """Ports from ``"465,587"``, one number or a sequence, in order, without repeats.

    Raises ValueError naming the item and why, so each face can put its own name in front.
    """
    if isinstance(text, str):
        items: list[object] = list(text.split(","))
    elif isinstance(text, int):
        items = [text]
    else:
        items = list(text)
    ports: list[int] = []
    for position, item in enumerate(items, 1):
        raw = item.strip() if isinstance(item, str) else item
        if raw == "" or raw is None:
            raise ValueError(f"item {position} is empty; give port numbers separated by commas")
        try:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            port = int(raw)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise ValueError(
                f"item {position} ({raw!r}) is not a port number; use whole numbers 1-65535"
            ) from None
        if not 1 <= port <= 65535:
            raise ValueError(f"item {position} ({port}) is out of range; use 1-65535")
        if port not in ports:
            ports.append(port)
    if not ports:
        raise ValueError("no port given; for example 465,587")
    if len(ports) > MAX_PORTS:
        raise ValueError(
            f"{len(ports)} ports is a scan, not a probe; give at most {MAX_PORTS} "
            "(mail is submitted on 465 or 587, relayed on 25, sometimes offered on 2525)"
        )
    return tuple(ports)


def check_arguments(
    host: str,
    ports: str | int | Iterable[int | str],
    timeout: float,
    silent_after: float,
) -> tuple[str, tuple[int, ...]]:
    """The host (stripped) and ports of a probe, or SettingsError naming each bad argument.

    A face renders ``problem.field`` in its own words (``--ports``, "Ports").
    """
    problems: list[FieldProblem] = []
    name = host.strip() if isinstance(host, str) else ""
    if name.startswith("[") and name.endswith("]"):  # an IPv6 literal as in a URL
        name = name[1:-1]
    before, colon, after = name.rpartition(":")
    if not name:
        problems.append(FieldProblem("host", "is empty; give the mail server's host name"))
    elif any(c.isspace() or not c.isprintable() for c in name) or len(name) > 253:
        problems.append(
            FieldProblem("host", "is not a host name (spaces, control characters or too long)")
        )
    elif "://" in name or "/" in name or "@" in name:
        problems.append(
            FieldProblem(
                "host",
                f"{name!r} is not a host name: give the server alone, e.g. smtp.example.com "
                "(an email address goes to discovery, which finds its server)",
            )
        )
    elif colon and ":" not in before and after.isdigit():
        problems.append(
            FieldProblem(
                "host",
                f"{name!r} has a port in it; give the host alone, and the port among the "
                "ports to probe",
            )
        )
    parsed: tuple[int, ...] = ()
    try:
        parsed = parse_ports(ports)
    except ValueError as exc:
        problems.append(FieldProblem("ports", str(exc)))
    for label, value in (("timeout", timeout), ("silent_after", silent_after)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            problems.append(
                FieldProblem(label, f"must be a number of seconds above 0, not {value!r}")
            )
        elif value > 3600:
            problems.append(
                FieldProblem(label, f"{value} s is more than an hour; use fewer seconds")
            )
    if problems:
        raise SettingsError(problems, context="probe arguments")
    return name, parsed


def parse_extensions(lines: Sequence[str]) -> dict[str, str]:
    """EHLO extension lines (the reply without its first, hello, line) as keyword -> params.

    ``AUTH=LOGIN PLAIN`` (the form some old servers still send) counts as AUTH.
    """
    found: dict[str, str] = {}
    for line in lines:
        keyword, _, params = line.strip().partition(" ")
        if keyword.upper().startswith("AUTH="):
            keyword, params = "AUTH", f"{keyword[5:]} {params}".strip()
        keyword = keyword.upper()
        if keyword and keyword not in found:
            found[keyword] = params.strip()
        elif keyword == "AUTH":
            found[keyword] = f"{found[keyword]} {params}".strip()
    return found


def auth_mechanisms(lines: Sequence[str]) -> tuple[str, ...]:
    """The AUTH mechanisms an EHLO reply offers, upper case, in its order, without repeats."""
    params = parse_extensions(lines).get("AUTH", "")
    return tuple(dict.fromkeys(m.upper() for m in params.split()))


@dataclass(frozen=True)
class PortReport:
    """What one port showed. Times are each step's own duration in milliseconds."""

    port: int
    outcome: Outcome
    #: How the server speaks SMTP on this port; None when no SMTP dialog took place.
    security: Security | None = None
    #: The address connected to (the host name resolved once for all ports).
    address: str = ""
    greeting: str = ""
    #: EHLO extension lines before TLS (for implicit TLS: empty) and after TLS.
    ehlo_before: tuple[str, ...] = ()
    ehlo_after: tuple[str, ...] = ()
    tls: TlsInfo | None = None
    #: Why certificate verification failed ("certificate has expired"), or None.
    cert_problem: str | None = None
    #: What happened, in a sentence, when the outcome is not ``ok``.
    detail: str = ""
    #: Remarks on an otherwise good port ("port 465 speaks STARTTLS, not implicit TLS").
    notes: tuple[str, ...] = ()
    steps: tuple[tuple[str, float], ...] = ()

    @property
    def starttls_offered(self) -> bool:
        return "STARTTLS" in parse_extensions(self.ehlo_before)

    @property
    def auth_before(self) -> tuple[str, ...]:
        """AUTH offered before TLS (in the clear): a warning when not empty."""
        return auth_mechanisms(self.ehlo_before)

    @property
    def auth_after(self) -> tuple[str, ...]:
        return auth_mechanisms(self.ehlo_after)

    @property
    def extensions(self) -> dict[str, str]:
        """The extensions mailkit would use: after TLS when there was TLS."""
        return parse_extensions(self.ehlo_after if self.tls else self.ehlo_before)

    @property
    def total_ms(self) -> float:
        return sum(ms for _, ms in self.steps)

    def step_ms(self, step: str) -> float | None:
        for name, ms in self.steps:
            if name == step:
                return ms
        return None

    @property
    def answered(self) -> bool:
        """Whether the server spoke at all (so the port's outcome is known, not waited out)."""
        return self.outcome not in (Outcome.SILENT, Outcome.UNREACHABLE)

    @property
    def encrypted(self) -> bool:
        """TLS was established (verified or not) and SMTP spoken over it."""
        return self.outcome is Outcome.OK and self.tls is not None

    @property
    def trusted(self) -> bool:
        return self.encrypted and self.cert_problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "outcome": self.outcome.value,
            "security": self.security.value if self.security else None,
            "address": self.address,
            "greeting": self.greeting,
            "ehlo_before": list(self.ehlo_before),
            "ehlo_after": list(self.ehlo_after),
            "auth_before": list(self.auth_before),
            "auth_after": list(self.auth_after),
            "tls": self.tls.as_dict() if self.tls else None,
            "cert_problem": self.cert_problem,
            "detail": self.detail,
            "notes": list(self.notes),
            "steps_ms": {name: round(ms, 1) for name, ms in self.steps},
            "total_ms": round(self.total_ms, 1),
        }


@dataclass(frozen=True)
class Verdict:
    """The port and security to use, and why. ``port`` is None when no port is usable.

    Advice may name a setting, which each face words its own way: ``reason_texts`` and
    ``warning_texts`` keep the references, :meth:`render` names them for a face, and
    :attr:`reasons` and :attr:`warnings` read them as Python does.
    """

    port: int | None
    security: Security | None
    #: AUTH mechanisms the chosen port offers (after TLS when it has TLS).
    auth: tuple[str, ...] = ()
    reason_texts: tuple[str, ...] = ()
    warning_texts: tuple[str, ...] = ()
    #: The chosen port's certificate is verified (False: fix the trust before sending).
    trusted: bool = False

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.render()[0]

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.render()[1]

    def render(self, face: Face | str = Face.PYTHON) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Reasons and warnings in ``face``'s words."""
        return (
            tuple(render(r, face) for r in self.reason_texts),
            tuple(render(w, face) for w in self.warning_texts),
        )

    @property
    def summary(self) -> str:
        if self.port is None or self.security is None:
            return "no usable port"
        words = {
            Security.IMPLICIT_TLS: "implicit TLS",
            Security.STARTTLS: "STARTTLS",
            Security.NONE: "no TLS",
            Security.AUTO: "auto",
        }
        return f"port {self.port}, {words[self.security]}"

    def as_dict(self, face: Face | str = Face.PYTHON) -> dict[str, Any]:
        reasons, warnings = self.render(face)
        return {
            "port": self.port,
            "security": self.security.value if self.security else None,
            "auth": list(self.auth),
            "trusted": self.trusted,
            "summary": self.summary,
            "reasons": list(reasons),
            "warnings": list(warnings),
        }


_FRAME_COLUMNS = (
    "port",
    "outcome",
    "security",
    "recommended",
    "greeting",
    "auth_before_tls",
    "auth_after_tls",
    "extensions",
    "tls_version",
    "cipher",
    "cert_subject",
    "cert_issuer",
    "cert_names",
    "cert_expires",
    "cert_verified",
    *(f"{step}_ms" for step in STEPS),
    "total_ms",
    "detail",
)


@dataclass(frozen=True)
class ProbeReport:
    """Every probed port of one host, in the order asked for, and the verdict."""

    host: str
    ports: tuple[PortReport, ...]
    verdict: Verdict
    #: The name the certificate was checked against (the host unless given).
    server_name: str = ""
    #: What certificates were verified against ("system CA store", "CA file ...").
    trust: str = ""
    #: From the start to the verdict, in milliseconds.
    elapsed_ms: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def port(self, number: int) -> PortReport | None:
        for report in self.ports:
            if report.port == number:
                return report
        return None

    def rows(self) -> list[dict[str, Any]]:
        """One plain row per port (the columns of :meth:`frame`)."""
        rows = []
        for p in self.ports:
            tls = p.tls
            verified = "" if tls is None else (p.cert_problem or f"yes ({tls.verified_by})")
            row: dict[str, Any] = {
                "port": p.port,
                "outcome": p.outcome.value,
                "security": p.security.value if p.security else "",
                "recommended": p.port == self.verdict.port,
                "greeting": p.greeting,
                "auth_before_tls": " ".join(p.auth_before),
                "auth_after_tls": " ".join(p.auth_after),
                "extensions": " ".join(k for k in p.extensions if k != "AUTH"),
                "tls_version": tls.version if tls else "",
                "cipher": tls.cipher if tls else "",
                "cert_subject": tls.subject if tls else "",
                "cert_issuer": tls.issuer if tls else "",
                "cert_names": ", ".join(tls.san) if tls else "",
                "cert_expires": tls.not_after.date().isoformat() if tls and tls.not_after else "",
                "cert_verified": verified,
                "total_ms": round(p.total_ms, 1),
                "detail": p.detail or "; ".join(p.notes),
            }
            for step in STEPS:
                ms = p.step_ms(step)
                row[f"{step}_ms"] = None if ms is None else round(ms, 1)
            rows.append({column: row[column] for column in _FRAME_COLUMNS})
        return rows

    def frame(self) -> pd.DataFrame:
        """The ports as a table, one row per port, for a notebook or an export."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(_FRAME_COLUMNS))

    def as_dict(self, face: Face | str = Face.PYTHON) -> dict[str, Any]:
        """JSON-ready: the verdict (in ``face``'s words) and every port."""
        return {
            "host": self.host,
            "server_name": self.server_name,
            "trust": self.trust,
            "started": self.started.isoformat(),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "verdict": self.verdict.as_dict(face),
            "ports": [p.as_dict() for p in self.ports],
        }

    def text(self, face: Face | str = Face.PYTHON) -> str:
        """A short plain-text report: one block per port, then the verdict."""
        lines = [f"Probe of {self.host} ({self.elapsed_ms / 1000:.2f} s)"]
        for p in self.ports:
            head = f"  port {p.port}: {p.outcome.value}"
            if p.security is not None:
                head += f", {p.security.value}"
            lines.append(head + f" ({p.total_ms:.0f} ms)")
            if p.greeting:
                lines.append(f"    greeting: {p.greeting}")
            if p.ehlo_before:
                lines.append(f"    EHLO: {' '.join(parse_extensions(p.ehlo_before))}")
            if p.auth_before:
                lines.append(f"    AUTH before TLS: {' '.join(p.auth_before)}")
            if p.tls is not None:
                t = p.tls
                until = f", expires {t.not_after:%Y-%m-%d}" if t.not_after else ""
                lines.append(f"    TLS: {t.version}, {t.cipher}")
                lines.append(
                    f"    certificate: {t.subject}; issuer {t.issuer}; "
                    f"names {', '.join(t.san) or '-'}{until}"
                )
                lines.append(f"    verified: {p.cert_problem or 'yes, against ' + t.verified_by}")
                if p.ehlo_after:
                    lines.append(f"    EHLO after TLS: {' '.join(parse_extensions(p.ehlo_after))}")
            for text in (p.detail, *p.notes):
                if text:
                    lines.append(f"    {text}")
            timed = ", ".join(f"{name} {ms:.0f}" for name, ms in p.steps)
            if timed:
                lines.append(f"    ms: {timed}")
        verdict = self.verdict
        reasons, warnings = verdict.render(face)
        lines.append(f"Verdict: {verdict.summary}")
        lines += [f"  - {r}" for r in reasons]
        lines += [f"  ! {w}" for w in warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- the verdict


def _warnings_for(report: PortReport) -> list[str]:
    found = []
    if report.outcome is Outcome.OK and report.auth_before:
        found.append(
            f"port {report.port} offers AUTH ({' '.join(report.auth_before)}) before TLS: a "
            "client that does not insist on TLS would send the password in the clear"
        )
    return found


def _rank(report: PortReport) -> tuple[int, int, int, int, int]:
    """Higher is better: trusted TLS, AUTH after TLS, a submission port, implicit TLS (RFC
    8314 3.3 prefers it to STARTTLS), then the lower port number for a stable choice."""
    if report.port in _SUBMISSION:
        purpose = 2
    elif report.port == _RELAY:
        purpose = 0
    else:
        purpose = 1
    return (
        int(report.trusted),
        int(bool(report.auth_after)),
        purpose,
        int(report.security is Security.IMPLICIT_TLS),
        -report.port,
    )


def _cert_advice(report: PortReport) -> str:
    problem = report.cert_problem or ""
    tls = report.tls
    if "expired" in problem:
        until = f" on {tls.not_after:%Y-%m-%d}" if tls and tls.not_after else ""
        return (
            f"port {report.port}: the certificate expired{until}: the server's administrator "
            "must renew it; mailkit will not send through it until then"
        )
    if "mismatch" in problem or "not valid for" in problem:
        names = ", ".join(tls.san) if tls and tls.san else "other names"
        return (
            f"port {report.port}: the certificate is for {names}, not this host name: "
            f"use one of those names as the {setting('host')}"
        )
    return (
        f"port {report.port}: the certificate is not trusted ({problem}): if the server uses "
        f"a private CA, trust that CA with the {setting('ca_file')}"
    )


def decide(ports: Sequence[PortReport]) -> Verdict:
    """The recommended port and security for mail submission, with reasons and warnings.

    Credentials go only over TLS, so only ports that completed TLS are recommended with their
    security; a plaintext-only server gets ``Security.NONE`` and a warning that mailkit will
    send no credentials over it.
    """
    warnings: list[str] = []
    for report in ports:
        warnings += _warnings_for(report)
    encrypted = [p for p in ports if p.encrypted]
    if encrypted:
        best = max(encrypted, key=_rank)
        reasons = _reasons_for(best, ports)
        if best.cert_problem:
            warnings.insert(0, _cert_advice(best))
        elif untrusted := [p for p in encrypted if p.cert_problem]:
            warnings += [_cert_advice(p) for p in untrusted]
        if best.port == _RELAY:
            warnings.append(
                "port 25 is for relay between mail servers (RFC 5321), not submission by a "
                "client (RFC 6409): many networks block it and providers refuse AUTH there"
            )
        return Verdict(
            port=best.port,
            security=best.security,
            auth=best.auth_after,
            reason_texts=tuple(reasons),
            warning_texts=tuple(warnings),
            trusted=best.trusted,
        )
    plain = [p for p in ports if p.outcome is Outcome.OK]
    if plain:
        best = max(plain, key=_rank)
        warnings.insert(
            0,
            f"no port offers TLS: port {best.port} speaks SMTP only in the clear; mailkit "
            "sends no credentials over it (fit only for a relay on a trusted network that "
            "needs no sign-in)",
        )
        failed = [p for p in ports if p.outcome is Outcome.TLS_FAILED]
        return Verdict(
            port=best.port,
            security=Security.NONE,
            auth=best.auth_before,
            reason_texts=(
                f"port {best.port} is the only kind of SMTP the server speaks",
                *(f"port {p.port}: {p.detail}" for p in failed),
            ),
            warning_texts=tuple(warnings),
        )
    nothing = tuple(f"port {p.port}: {p.detail or p.outcome.value}" for p in ports)
    return Verdict(None, None, reason_texts=nothing, warning_texts=tuple(warnings))


def _reasons_for(best: PortReport, ports: Sequence[PortReport]) -> list[str]:
    reasons = []
    if best.security is Security.IMPLICIT_TLS:
        reasons.append(
            f"port {best.port} speaks TLS from the first byte (implicit TLS), which RFC 8314 "
            "prefers to STARTTLS"
        )
    else:
        reasons.append(f"port {best.port} upgrades to TLS with STARTTLS")
        implicit = [p for p in ports if p.encrypted and p.security is Security.IMPLICIT_TLS]
        if implicit:
            reasons.append(
                "it ranks above implicit TLS on port "
                + ", ".join(str(p.port) for p in implicit)
                + _why_not(best, implicit[0])
            )
    tls = best.tls
    if tls is not None and best.cert_problem is None:
        until = f", valid until {tls.not_after:%Y-%m-%d}" if tls.not_after else ""
        reasons.append(f"{tls.version}; certificate verified against the {tls.verified_by}{until}")
    if best.auth_after:
        reasons.append(
            f"AUTH ({' '.join(best.auth_after)}) is offered only after TLS"
            if not best.auth_before
            else f"AUTH ({' '.join(best.auth_after)}) is offered after TLS"
        )
    else:
        reasons.append("no AUTH offered even after TLS: the server may accept mail by address only")
    if best.port in _SUBMISSION:
        reasons.append(f"port {best.port} is a mail submission port (RFC 8314, RFC 6409)")
    for other in ports:
        if other is best or other.encrypted:
            continue
        reasons.append(f"port {other.port}: {other.detail or other.outcome.value}")
    return reasons


def _why_not(best: PortReport, other: PortReport) -> str:
    mine, theirs = _rank(best), _rank(other)
    if mine[0] > theirs[0]:
        return f" because port {other.port}'s certificate fails verification"
    if mine[1] > theirs[1]:
        return f" because port {other.port} offers no AUTH"
    return f" because port {other.port} is not a submission port"
