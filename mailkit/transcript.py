"""The SMTP dialog as a table: every line each way, with secrets redacted by protocol state.

:class:`Recorder` is fed the raw bytes a client sends and receives — it does no I/O — and
follows the protocol to know what each line is: which phase it belongs to, which reply answers
which command (also when commands are pipelined), when the message body starts and ends, and
when a client line answers an AUTH challenge. Redaction follows that state, not the content:

* the initial response of ``AUTH PLAIN`` / ``XOAUTH2`` / ``NTLM`` is replaced by a marker;
* every client line after a ``334`` challenge is replaced by a marker — the one exception is a
  LOGIN line that decodes to exactly the configured user name, shown decoded;
* the message body (after DATA, or the octets of BDAT chunks) is summarised (a few headers
  and a size), never shown.

Then every row passes the send's :class:`SecretScrubber` — the one scrubber a send has, which
also cleans its failure, diagnosis and result — before it is cut to length: the secret in clear,
as hex, percent- or JSON-encoded, and in base64 at any alignment inside any blob (PLAIN with or
without a user name, LOGIN, XOAUTH2). A password or token never reaches a row, whatever a server
echoes back.
"""

from __future__ import annotations

import base64
import binascii
import copy as copy_module
import dataclasses
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.policy import default as default_policy
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote, quote_plus

from mailkit.outcome import Phase
from mailkit.secret import Secret

if TYPE_CHECKING:  # pandas loads when a table is asked for, not for a send
    import pandas as pd

T = TypeVar("T")


class Direction(StrEnum):
    """Who wrote a row: the client (mailkit), the server, or mailkit's own information."""

    CLIENT = "C"
    SERVER = "S"
    INFO = "I"


@dataclass(frozen=True)
class Row:
    """One line (or one whole multi-line reply) of the dialog."""

    t_ms: float
    time: datetime
    dir: Direction
    phase: Phase
    tls: bool
    code: int | None
    text: str


COLUMNS = ("t_ms", "time", "dir", "phase", "tls", "code", "text")

#: Displayed lines longer than this are cut (a hostile server can send megabytes).
MAX_SHOWN_LINE = 400
#: Lines of one reply kept beyond this are counted, not shown (a hostile server can send a
#: reply without end); its last line is always shown.
MAX_REPLY_LINES = 200
#: Server bytes without a line end beyond this are shown cut and dropped.
MAX_PENDING_BYTES = 64 * 1024
_HIDDEN = "<secret hidden>"
_REPLY_LINE = re.compile(rb"^(\d{3})([ -]|$)")
_COMMAND_PHASES = {
    b"EHLO": Phase.EHLO,
    b"HELO": Phase.EHLO,
    b"STARTTLS": Phase.STARTTLS,
    b"AUTH": Phase.AUTH,
    b"MAIL": Phase.MAIL,
    b"RCPT": Phase.RCPT,
    b"DATA": Phase.DATA,
    b"BDAT": Phase.DATA,
    b"QUIT": Phase.QUIT,
}


def _cut(text: str) -> str:
    if len(text) <= MAX_SHOWN_LINE:
        return text
    return f"{text[:MAX_SHOWN_LINE]}… ({len(text) - MAX_SHOWN_LINE} more characters)"


def _decode(line: bytes) -> str:
    """A line as text, not yet cut: rows are cut only after they were scrubbed."""
    return line.decode("utf-8", "replace").rstrip("\r\n")


def _b64text(payload: bytes) -> str | None:
    """The decoded text of a base64 payload if it is printable text, else None."""
    try:
        raw = base64.b64decode(payload, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if text.isprintable() else None


def secret_forms(secret: str, username: str | None = None) -> set[str]:
    """The ways ``secret`` can appear on the wire or in a careless log (for tests and audits).

    The scrubber does not depend on this list for base64: it finds the secret's base64 at any
    alignment inside any blob (see :class:`SecretScrubber`).
    """
    raw = secret.encode()
    blobs = [raw]
    users = [b"", *([username.encode()] if username else [])]
    for user in users:
        blobs += [
            b"\0" + user + b"\0" + raw,
            user + b"\0" + raw,
            b"user=" + user + b"\x01auth=Bearer " + raw + b"\x01\x01",
        ]
    forms = {secret, raw.hex(), raw.hex().upper()}
    for blob in blobs:
        encoded = base64.b64encode(blob).decode()
        forms |= {encoded, encoded.rstrip("="), base64.urlsafe_b64encode(blob).decode()}
    return {form for form in forms if len(form) >= _MIN_FORM}


#: What a scrubbed secret is replaced with in every row.
HIDDEN = _HIDDEN
#: Forms shorter than this are not searched for (they would hide ordinary words).
_MIN_FORM = 4
#: A run of base64 (standard or URL-safe) characters: a blob the secret may hide in.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]+=*")


def _b64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend on ``raw`` alone, at each of the three alignments.

    Whatever precedes the secret in a blob (``\\0user\\0``, ``\\0\\0``, an authzid, XOAUTH2's
    ``user=...auth=Bearer ``), its encoding contains one of these strings.
    """
    cores: set[str] = set()
    for offset in range(3):
        start, stop = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        padded = b"\0" * offset + raw
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            cores.add(encode(padded)[start:stop].decode())
    return {core for core in cores if len(core) >= _MIN_FORM}


class SecretScrubber:
    """The one place secrets are taken out of text: every string that came from a peer, or
    that quotes one, passes through the scrubber of the send it belongs to before anything
    else (a row, a failure, a diagnosis, a reply, a result) holds it.

    It hides each secret in clear, as hex (either case), percent-encoded, JSON-escaped, and in
    base64 at any alignment: a base64 run containing the characters that depend on the secret
    alone is hidden whole, so AUTH PLAIN with or without a user name or authzid, LOGIN, XOAUTH2
    and any other blob around the secret are all covered. Scrub first, then cut: a cut made
    before scrubbing could keep part of a secret.
    """

    def __init__(self, secrets: Iterable[Secret] = (), username: str | None = None) -> None:
        self.username = username
        self._values: list[str] = []
        self._plain: re.Pattern[str] | None = None
        self._cores: re.Pattern[str] | None = None
        for secret in secrets:
            if secret:
                self.add(secret)

    def add(self, secret: Secret) -> None:
        value = secret.reveal()
        if not value or value in self._values:
            return
        self._values.append(value)
        plain: set[str] = set()
        cores: set[str] = set()
        for known in self._values:
            raw = known.encode()
            plain |= {
                known,
                raw.hex(),
                raw.hex().upper(),
                json.dumps(known)[1:-1],
                json.dumps(known, ensure_ascii=False)[1:-1],
                quote(known, safe=""),
                quote(known),
                quote_plus(known),
            }
            cores |= _b64_cores(raw)
        forms = sorted((f for f in plain if len(f) >= _MIN_FORM), key=len, reverse=True)
        self._plain = re.compile("|".join(map(re.escape, forms))) if forms else None
        ordered = sorted(cores, key=len, reverse=True)
        self._cores = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        if self._plain is not None:
            text = self._plain.sub(_HIDDEN, text)
        cores = self._cores
        if cores is not None and cores.search(text):
            text = _B64_RUN.sub(lambda m: _HIDDEN if cores.search(m.group()) else m.group(), text)
        return text

    def scrub_value(self, value: T) -> T:
        """``value`` with every string inside it scrubbed: dataclasses field by field (frozen
        ones rebuilt), tuples, lists, sets and dicts item by item; enums and numbers as they are.
        """
        return cast(T, self._scrub_any(value))

    def _scrub_any(self, value: Any) -> Any:
        """``value`` scrubbed; the very same object when nothing in it changed (so equality,
        which a dataclass may limit to some fields, never decides what is kept)."""
        if isinstance(value, Enum):
            return value
        if isinstance(value, str):
            scrubbed = self(value)
            return value if scrubbed == value else scrubbed
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changed = {}
            for item in dataclasses.fields(value):
                old = getattr(value, item.name)
                new = self._scrub_any(old)
                if new is not old:
                    changed[item.name] = new
            if not changed:
                return value
            copy = copy_module.copy(value)
            for name, new in changed.items():
                object.__setattr__(copy, name, new)
            return copy
        if isinstance(value, tuple | list | set | frozenset):
            items = [self._scrub_any(v) for v in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return type(value)(items) if not hasattr(value, "_fields") else type(value)(*items)
        if isinstance(value, dict):
            pairs = [(self._scrub_any(k), self._scrub_any(v)) for k, v in value.items()]
            if all(
                k is o_k and v is o_v
                for (k, v), (o_k, o_v) in zip(pairs, value.items(), strict=True)
            ):
                return value
            return dict(pairs)
        return value


class Recorder:
    """Builds a transcript from the bytes of one SMTP connection. Pure: it does no I/O.

    The sender calls :meth:`sent` and :meth:`received` with raw bytes, :meth:`tls_started` when
    a handshake completes, and :meth:`info` for its own notes. ``secrets`` are scrubbed from
    every row — through ``scrubber`` when the send shares its own, so that its failure and
    result are scrubbed by the same one; ``username`` may be shown decoded (not a secret).
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        secrets: Iterable[Secret] = (),
        on_row: Callable[[Row], None] | None = None,
        tls: bool = False,
        scrubber: SecretScrubber | None = None,
    ) -> None:
        self.rows: list[Row] = []
        self.username = username
        self.scrubber = scrubber if scrubber is not None else SecretScrubber(username=username)
        for secret in secrets:
            if secret:
                self.scrubber.add(secret)
        self._on_row = on_row
        #: The rest of an overlong server line is dropped unseen, up to its line end.
        self._skipping = False
        self._t0 = time.perf_counter()
        self._wall0 = datetime.now(UTC)
        self.tls = tls
        self.phase = Phase.CONNECT
        self._pending: deque[Phase] = deque()
        self._rx = bytearray()
        self._tx = bytearray()
        self._reply: list[bytes] = []
        #: Continuation lines of the current reply beyond MAX_REPLY_LINES, counted, not kept.
        self._reply_skipped = 0
        self._auth_mechanism: str | None = None
        self._auth_continuation = False
        self._body: list[bytes] | None = None
        #: RFC 3030: octets of the current BDAT chunk still to come (counted, not lines), the
        #: message received in chunks so far, and whether this chunk is the last.
        self._chunk_left = 0
        self._chunks = bytearray()
        self._chunk_last = False
        self._awaiting_tls = False

    # ------------------------------------------------------------------ feeding

    def add_secret(self, secret: Secret) -> None:
        """Scrub this secret too (a token fetched during the send)."""
        self.scrubber.add(secret)

    def connected(self) -> None:
        """The TCP (or TLS) connection is up: the next server reply is the greeting."""
        self.phase = Phase.GREETING
        self._pending.append(Phase.GREETING)

    def tls_started(self) -> None:
        """The TLS handshake completed: what follows is encrypted."""
        self.tls = True
        self._awaiting_tls = False

    def info(self, text: str, phase: Phase | None = None) -> None:
        self._emit(Direction.INFO, phase or self.phase, None, text)

    def sent(self, data: bytes) -> None:
        self._tx.extend(data)
        while self._tx:
            if self._chunk_left:
                self._chunk_octets()
                continue
            end = self._tx.find(b"\n")
            if end == -1:
                break
            line = bytes(self._tx[: end + 1])
            del self._tx[: end + 1]
            self._client_line(line)

    def received(self, data: bytes) -> None:
        self._rx.extend(data)
        while (end := self._rx.find(b"\n")) != -1:
            line = bytes(self._rx[: end + 1])
            del self._rx[: end + 1]
            if self._skipping:  # the tail of a line already shown cut
                self._skipping = False
                continue
            self._server_line(line)
        if self._skipping:
            self._rx.clear()
        elif len(self._rx) > MAX_PENDING_BYTES:
            self._flush_reply()
            # The whole pending text is scrubbed before the row is cut, and the rest of the
            # line is dropped unseen: a secret cut in two would otherwise show in part.
            size = len(self._rx)
            self._emit(
                Direction.SERVER,
                self._reply_phase(),
                None,
                _decode(bytes(self._rx)),
                note=f" ({size} bytes without a line end; the rest of the line is not shown)",
            )
            self._rx.clear()
            self._skipping = True

    def closed(self) -> None:
        """The connection ended: show any partial server line that never completed."""
        self._flush_reply()
        if self._rx and not self._skipping:
            self._emit(Direction.SERVER, self._reply_phase(), None, _decode(bytes(self._rx)))
        self._rx.clear()

    # ------------------------------------------------------------------ client side

    def _chunk_octets(self) -> None:
        """Take the BDAT chunk's octets (never read as lines); summarise them once all came."""
        take = min(self._chunk_left, len(self._tx))
        self._chunks += self._tx[:take]
        del self._tx[:take]
        self._chunk_left -= take
        if not self._chunk_left:
            self._chunk_done()

    def _chunk_done(self) -> None:
        if not self._chunk_last:
            return  # mailkit sends one chunk; a middle one is summarised with the last
        if self._chunks:
            summary = self._summary([bytes(self._chunks)])
            self._emit(Direction.CLIENT, Phase.DATA, None, summary, cut=False)
        self._chunks.clear()

    def _bdat(self, words: list[bytes], line: bytes) -> None:
        """``BDAT <size> [LAST]``: the size octets that follow are message, not commands. The
        reply to the last chunk is the message's verdict, as the reply to DATA's final dot."""
        size = words[1] if len(words) > 1 else b""
        self._chunk_last = len(words) > 2 and words[2].upper() == b"LAST"
        phase = Phase.END_OF_DATA if self._chunk_last else Phase.DATA
        self._emit(Direction.CLIENT, Phase.DATA, None, _decode(line))
        self.phase = phase
        self._pending.append(phase)
        self._chunk_left = int(size) if size.isdigit() else 0
        if not self._chunk_left:
            self._chunk_done()

    def _client_line(self, line: bytes) -> None:
        if self._body is not None:
            if line.rstrip(b"\r\n") == b".":
                self._emit(Direction.CLIENT, Phase.DATA, None, self._summary(self._body), cut=False)
                self._body = None
                self.phase = Phase.END_OF_DATA
                self._pending.append(Phase.END_OF_DATA)
                self._emit(Direction.CLIENT, Phase.END_OF_DATA, None, ".")
            else:
                self._body.append(line)
            return
        if self._auth_continuation:
            self._auth_continuation = False
            self._emit(Direction.CLIENT, Phase.AUTH, None, self._redact_response(line))
            return
        words = line.rstrip(b"\r\n").split(b" ")
        verb = words[0].upper()
        if verb == b"BDAT":
            self._bdat(words, line)
            return
        phase = _COMMAND_PHASES.get(verb, self.phase)
        self.phase = phase
        self._pending.append(phase)
        if verb == b"AUTH":
            self._auth_mechanism = (
                words[1].decode("ascii", "replace").upper() if len(words) > 1 else ""
            )
            text = self._redact_auth_command(words)
        else:
            text = _decode(line)
        self._emit(Direction.CLIENT, phase, None, text)

    def _redact_auth_command(self, words: list[bytes]) -> str:
        mechanism = self._auth_mechanism or ""
        head = f"AUTH {mechanism}".rstrip()
        if len(words) < 3:
            return head
        payload = words[2]
        if mechanism == "PLAIN":
            decoded = _b64_parts(payload)
            user = decoded[1] if decoded and len(decoded) == 3 else None
            shown = f" for {user}" if user is not None and user == self.username else ""
            return f"{head} <password hidden{shown}>"
        if mechanism == "LOGIN":
            return f"{head} {self._login_value(payload)}"
        if mechanism == "XOAUTH2":
            return f"{head} <token hidden>"
        if mechanism == "NTLM":
            return f"{head} <NTLM message hidden>"
        return f"{head} <credentials hidden>"

    def _login_value(self, payload: bytes) -> str:
        text = _b64text(payload.strip())
        if text is not None and self.username is not None and text == self.username:
            return f"<user name: {text}>"
        return "<password hidden>"

    def _redact_response(self, line: bytes) -> str:
        payload = line.rstrip(b"\r\n")
        mechanism = self._auth_mechanism or ""
        if mechanism == "LOGIN":
            return self._login_value(payload)
        if not payload:
            return "<empty response>"
        if mechanism == "XOAUTH2":
            return "<token hidden>"
        if mechanism == "NTLM":
            return "<NTLM message hidden>"
        if mechanism == "CRAM-MD5":
            return "<CRAM-MD5 digest hidden>"
        return "<password hidden>"

    def _summary(self, lines: Sequence[bytes]) -> str:
        from email.parser import BytesHeaderParser  # a message was sent: not at start-up

        raw = b"".join(lines)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        header_end = raw.find(b"\r\n\r\n")
        body_size = len(raw) - header_end - 4 if header_end != -1 else 0
        shown = []
        for name in ("From", "To", "Subject", "Date", "Message-ID"):
            value = headers.get(name)
            if value is not None:
                shown.append(f"{name}: {_cut(self.scrubber(' '.join(str(value).split())))}")
        count = len(headers.keys())
        return (
            f"<message: {count} header fields; {'; '.join(shown)}; "
            f"body {body_size:,} bytes; {len(raw):,} bytes in all>"
        )

    # ------------------------------------------------------------------ server side

    def _server_line(self, line: bytes) -> None:
        match = _REPLY_LINE.match(line)
        if match is None:
            self._flush_reply()
            self._emit(Direction.SERVER, self._reply_phase(), None, _decode(line))
            return
        if match.group(2) == b"-" and len(self._reply) >= MAX_REPLY_LINES:
            self._reply_skipped += 1  # an endless reply is shown by its start and its end
            return
        self._reply.append(line)
        if match.group(2) != b"-":
            self._flush_reply()

    def _flush_reply(self) -> None:
        if not self._reply:
            return
        lines, self._reply = self._reply, []
        skipped, self._reply_skipped = self._reply_skipped, 0
        code = int(lines[0][:3])
        shown = [_decode(line) for line in lines]
        if skipped:
            shown.insert(MAX_REPLY_LINES, f"… ({skipped} more lines not shown)")
        text = "\n".join(shown)
        if self._awaiting_tls:
            self._emit(Direction.SERVER, Phase.STARTTLS, code, text)
            self.info(
                "discarded: the server sent this before the TLS handshake; a compliant server "
                "sends nothing there (RFC 3207 §4.2), so mailkit ignored it",
                Phase.STARTTLS,
            )
            return
        phase = self._reply_phase()
        if code == 334 and phase is Phase.AUTH:
            self._auth_continuation = True
            text = self._challenge_text(lines)
        elif self._pending:
            self._pending.popleft()
        if phase is Phase.DATA and code == 354:
            self._body = []
        if phase is Phase.STARTTLS and code == 220:
            self._awaiting_tls = True
        self._emit(Direction.SERVER, phase, code, text)

    def _challenge_text(self, lines: list[bytes]) -> str:
        payload = lines[-1][4:].strip()
        if self._auth_mechanism == "NTLM":
            return "334 <NTLM challenge>"
        decoded = _b64text(payload) if payload else None
        shown = _decode(lines[-1])
        return f"{shown} ({decoded})" if decoded else shown

    def _reply_phase(self) -> Phase:
        return self._pending[0] if self._pending else self.phase

    # ------------------------------------------------------------------ rows

    def _emit(
        self,
        direction: Direction,
        phase: Phase,
        code: int | None,
        text: str,
        *,
        note: str = "",
        cut: bool = True,
    ) -> None:
        # Scrub first, then cut: a cut made first could keep the start of a secret.
        text = self.scrubber(text)
        if cut:
            text = "\n".join(_cut(line) for line in text.split("\n"))
        text += note
        now = time.perf_counter()
        row = Row(
            t_ms=round((now - self._t0) * 1000, 3),
            time=datetime.now(UTC),
            dir=direction,
            phase=phase,
            tls=self.tls,
            code=code,
            text=text,
        )
        self.rows.append(row)
        if self._on_row is not None:
            self._on_row(row)

    def transcript(self) -> Transcript:
        return Transcript(tuple(self.rows))


def _b64_parts(payload: bytes) -> list[str] | None:
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", "replace").split("\0")


def _record(row: Row, *, iso_time: bool = False) -> dict[str, object]:
    """A row as plain values in :data:`COLUMNS` order (enums as their letters and names)."""
    return {
        "t_ms": row.t_ms,
        "time": row.time.isoformat() if iso_time else row.time,
        "dir": row.dir.value,
        "phase": row.phase.value,
        "tls": row.tls,
        "code": row.code,
        "text": row.text,
    }


@dataclass(frozen=True)
class Transcript:
    """The recorded dialog: a DataFrame, HTML for notebooks, or timestamped text lines."""

    rows: tuple[Row, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame([_record(r) for r in self.rows], columns=list(COLUMNS))
        frame["code"] = frame["code"].astype("Int64")
        return frame

    def to_records(self) -> list[dict[str, object]]:
        """JSON-ready rows (``--json``)."""
        return [_record(r, iso_time=True) for r in self.rows]

    def to_text(self) -> str:
        """``[hh:mm:ss.mmm] line``, continuation lines of a reply unprefixed: the style of the
        SMTP dialogs admins know from their applications' test tools."""
        out = []
        for row in self.rows:
            stamp = row.time.astimezone().strftime("%H:%M:%S.%f")[:-3]
            marker = {Direction.CLIENT: "[TLS] " if row.tls else "", Direction.SERVER: ""}.get(
                row.dir, "* "
            )
            first, *rest = row.text.split("\n")
            out.append(f"[{stamp}] {marker}{first}")
            out.extend(rest)
        return "\n".join(out)

    def to_html(self) -> str:
        """A compact table for notebooks: one row per line, replies kept together."""
        import html  # notebooks only: the command line never renders HTML

        colours = {
            Direction.CLIENT: "#1a4d8f",
            Direction.SERVER: "#2b2b2b",
            Direction.INFO: "#6b6b6b",
        }
        body = "".join(
            f'<tr style="color:{colours[r.dir]}"><td>{r.t_ms:.0f}</td><td>{r.dir.value}</td>'
            f"<td>{r.phase.value}</td><td>{'TLS' if r.tls else ''}</td>"
            f"<td>{'' if r.code is None else r.code}</td>"
            f'<td style="white-space:pre-wrap;font-family:monospace;text-align:left">'
            f"{html.escape(r.text)}</td></tr>"
            for r in self.rows
        )
        return (
            # A line height of its own: inside a widget it would inherit ipywidgets' 28 px.
            # Headers in words for people; the DataFrame keeps its column names (an API).
            '<table class="mailkit-transcript" style="line-height:1.35"><thead><tr>'
            '<th title="milliseconds since the start">Time (ms)</th>'
            '<th title="C: mailkit (the client), S: the server, I: a note of mailkit\'s">'
            "Direction</th><th>Phase</th><th>TLS</th><th>Code</th><th>Text</th></tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def timings(self) -> dict[str, float]:
        """Milliseconds spent in each phase, from its first row to the next phase's first row."""
        starts: list[tuple[Phase, float]] = []
        for row in self.rows:
            if not starts or starts[-1][0] is not row.phase:
                starts.append((row.phase, row.t_ms))
        result: dict[str, float] = {}
        if not starts:
            return result  # nothing was said: a send refused before it connected
        end = self.rows[-1].t_ms
        for (phase, start), following in zip(starts, [*starts[1:], (None, end)], strict=True):
            result[phase.value] = round(result.get(phase.value, 0.0) + following[1] - start, 3)
        return result
