"""The demo mailbox over IMAPS: enough IMAP4rev1 for a delivery check to read it.

The demo server keeps every accepted message in one Maildir. This small server shows that
Maildir to an IMAP client (imapclient, Thunderbird) over implicit TLS with the demo CA, so the
delivery round trip of a test send (``send_test(..., verify=...)``) can be shown end to end
without a mail account. Any demo account signs in with the demo password and sees the demo
mailbox: ``INBOX``, and ``Junk`` (SPECIAL-USE ``\\Junk``) holding what the demo's spam rule
flagged (``X-Spam-Flag: YES``, stamped on mail for the demo's spam-trap recipient).

It speaks what that needs and no more: CAPABILITY, LOGIN, AUTHENTICATE PLAIN, LIST (with
SPECIAL-USE flags), SELECT / EXAMINE, SEARCH and UID SEARCH (ALL, HEADER, TEXT, SUBJECT, FROM,
TO), FETCH and UID FETCH (UID, FLAGS, INTERNALDATE, RFC822.SIZE, BODY[] / BODY.PEEK[]), NOOP,
CLOSE, UNSELECT and LOGOUT; anything else is answered ``BAD``. The mailbox is read-only through
IMAP. Real IMAP servers (Dovecot) are what the tests use; this is the demo's stand-in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path

__all__ = ["JUNK_FOLDER", "DemoImapServer", "is_junk"]

JUNK_FOLDER = "Junk"
_FOLDERS = ("INBOX", JUNK_FOLDER)
_CAPABILITIES = "IMAP4rev1 SPECIAL-USE LITERAL+ AUTH=PLAIN"
_MAX_LINE = 64 * 1024
_MAX_LITERAL = 1024 * 1024
_IDLE = 120.0
_HEADERS = BytesHeaderParser()
_TOKEN = re.compile(rb'\s*(?:"((?:[^"\\]|\\.)*)"|\{(\d+)(\+?)\}$|\(|\)|([^\s()"]+))')
_log = logging.getLogger(__name__)


def is_junk(raw: bytes) -> bool:
    """The demo's spam rule: a message its SMTP side flagged ``X-Spam-Flag: YES``."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return re.search(rb"(?im)^X-Spam-Flag:\s*YES\s*$", head) is not None


@dataclass(frozen=True)
class _Message:
    uid: int
    key: str
    raw: bytes
    received: datetime


class _Maildir:
    """The Maildir as two folders, with UIDs stable for the server's lifetime."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._uids: dict[str, int] = {}
        self._next = 1
        self.validity = int(time.time())

    def folder(self, name: str) -> list[_Message]:
        junk = name == JUNK_FOLDER
        found: list[_Message] = []
        entries = []
        for sub in ("new", "cur"):
            folder = self.path / sub
            if not folder.is_dir():
                continue
            for file in folder.iterdir():
                with contextlib.suppress(OSError):
                    entries.append((file.stat().st_mtime, file.name.split(":")[0], file))
        for mtime, key, file in sorted(entries):
            try:
                raw = file.read_bytes()
            except OSError:
                continue  # removed meanwhile
            if is_junk(raw) != junk:
                continue
            if key not in self._uids:
                self._uids[key] = self._next
                self._next += 1
            found.append(_Message(self._uids[key], key, raw, datetime.fromtimestamp(mtime, UTC)))
        return sorted(found, key=lambda m: m.uid)


class _Bad(Exception):
    """A command we cannot parse or do not speak: answered ``BAD``."""


class DemoImapServer:
    """IMAPS for the demo Maildir on an already bound socket (see :meth:`start`)."""

    def __init__(self, maildir: Path, check_password: Callable[[str, str], bool]) -> None:
        self.maildir = _Maildir(maildir)
        self._check = check_password
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self._server = await asyncio.start_server(
            self._session,
            sock=sock,
            ssl=context,
            limit=_MAX_LINE,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        self._server = None

    # -- one connection --------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        state = _State()
        try:
            writer.write(f"* OK [CAPABILITY {_CAPABILITIES}] mailkit demo IMAP ready\r\n".encode())
            while not state.done:
                line = await asyncio.wait_for(reader.readline(), _IDLE)
                if not line:
                    break
                await self._line(line, reader, writer, state)
                await writer.drain()
        except (TimeoutError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except ValueError:  # a line over the limit
            with contextlib.suppress(Exception):
                writer.write(b"* BYE line too long\r\n")
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _line(
        self,
        line: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _State,
    ) -> None:
        tag = line.split(b" ", 1)[0].strip() or b"*"
        try:
            words = await _read_command(line, reader, writer)
            if len(words) < 2:
                raise _Bad("no command")
            tag_text, command, args = words[0], words[1].upper(), words[2:]
            uid = command == "UID"
            if uid:
                if not args:
                    raise _Bad("UID needs a command")
                command, args = args[0].upper(), args[1:]
            if command == "AUTHENTICATE":
                reply = await self._authenticate(args, reader, writer, state)
            else:
                reply = self._command(command, args, uid, state)
            writer.write(reply.replace(b"\x00TAG", tag_text.encode()))
        except _Bad as bad:
            writer.write(tag + f" BAD {bad}\r\n".encode())

    async def _authenticate(
        self,
        args: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        state: _State,
    ) -> bytes:
        """AUTHENTICATE PLAIN (RFC 4616): the one way to sign in with a non-ASCII password."""
        if not args or args[0].upper() != "PLAIN":
            return b"\x00TAG NO [CANNOT] Only AUTHENTICATE PLAIN is supported\r\n"
        if len(args) > 1:
            response = args[1].encode()
        else:
            writer.write(b"+ \r\n")
            await writer.drain()
            response = (await asyncio.wait_for(reader.readline(), _IDLE)).strip()
        if response == b"*":
            return b"\x00TAG BAD AUTHENTICATE cancelled\r\n"
        try:
            _authzid, user, password = base64.b64decode(response, validate=True).split(b"\0")
            user_text, password_text = user.decode(), password.decode()
        except (ValueError, UnicodeDecodeError):
            return b"\x00TAG BAD Invalid PLAIN response\r\n"
        if not self._check(user_text, password_text):
            return b"\x00TAG NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
        state.user = user_text
        return f"\x00TAG OK [CAPABILITY {_CAPABILITIES}] Logged in\r\n".encode()

    def _command(self, command: str, args: list[str], uid: bool, state: _State) -> bytes:
        if command == "CAPABILITY":
            return f"* CAPABILITY {_CAPABILITIES}\r\n\x00TAG OK CAPABILITY completed\r\n".encode()
        if command == "NOOP":
            return b"\x00TAG OK NOOP completed\r\n"
        if command == "LOGOUT":
            state.done = True
            return b"* BYE mailkit demo IMAP says goodbye\r\n\x00TAG OK LOGOUT completed\r\n"
        if command == "LOGIN":
            if len(args) != 2:
                raise _Bad("LOGIN needs a user name and a password")
            if not self._check(args[0], args[1]):
                return b"\x00TAG NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
            state.user = args[0]
            return f"\x00TAG OK [CAPABILITY {_CAPABILITIES}] Logged in\r\n".encode()
        if state.user is None:
            return b"\x00TAG NO Sign in first (LOGIN)\r\n"
        if command == "LIST":
            if len(args) != 2:
                raise _Bad("LIST needs a reference and a pattern")
            lines = [
                f"* LIST (\\HasNoChildren{' ' + chr(92) + 'Junk' if f == JUNK_FOLDER else ''}) "
                f'"/" {f}\r\n'
                for f in _FOLDERS
                if _matches(args[1], f)
            ]
            return ("".join(lines) + "\x00TAG OK LIST completed\r\n").encode()
        if command in ("SELECT", "EXAMINE"):
            folder = _folder(args)
            if folder is None:
                state.folder = None
                return b"\x00TAG NO [NONEXISTENT] No such folder\r\n"
            state.folder = folder
            messages = self.maildir.folder(folder)
            nxt = (max((m.uid for m in messages), default=0)) + 1
            return (
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
                f"* {len(messages)} EXISTS\r\n* 0 RECENT\r\n"
                f"* OK [UIDVALIDITY {self.maildir.validity}] UIDs valid\r\n"
                f"* OK [UIDNEXT {nxt}] Predicted next UID\r\n"
                f"\x00TAG OK [READ-ONLY] {command} completed\r\n"
            ).encode()
        if command in ("CLOSE", "UNSELECT"):
            state.folder = None
            return f"\x00TAG OK {command} completed\r\n".encode()
        if state.folder is None:
            return b"\x00TAG NO Select a folder first\r\n"
        messages = self.maildir.folder(state.folder)
        if command == "SEARCH":
            hits = [(n, m) for n, m in enumerate(messages, 1) if _search(m, args)]
            numbers = " ".join(str(m.uid if uid else n) for n, m in hits)
            found = f"* SEARCH{' ' + numbers if numbers else ''}\r\n"
            return (found + "\x00TAG OK SEARCH completed\r\n").encode()
        if command == "FETCH":
            if len(args) < 2:
                raise _Bad("FETCH needs a message set and items")
            chosen = _in_set(args[0], messages, uid)
            items = " ".join(args[1:]).upper()
            out = b"".join(_fetch(n, m, items, uid) for n, m in chosen)
            return out + b"\x00TAG OK FETCH completed\r\n"
        raise _Bad(f"{command} is not supported by the demo IMAP server")


@dataclass
class _State:
    user: str | None = None
    folder: str | None = None
    done: bool = False


async def _read_command(
    line: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> list[str]:
    """The words of one command line; literals (``{n}`` / ``{n+}``) read from the stream.
    Parentheses are kept as words of their own."""
    words: list[str] = []
    text = line.rstrip(b"\r\n")
    while True:
        position = 0
        literal: int | None = None
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                if text[position:].strip():
                    raise _Bad("unreadable arguments")
                break
            position = match.end()
            quoted, size, plus, atom = match.groups()
            if quoted is not None:
                words.append(re.sub(rb"\\(.)", rb"\1", quoted).decode("utf-8", "replace"))
            elif size is not None:
                literal = int(size)
                if literal > _MAX_LITERAL:
                    raise _Bad("literal too large")
                if not plus:
                    writer.write(b"+ Ready for literal\r\n")
                    await writer.drain()
            elif atom is not None:
                words.append(atom.decode("utf-8", "replace"))
            else:
                words.append(match.group(0).strip().decode())
        if literal is None:
            return words
        data = await reader.readexactly(literal)
        words.append(data.decode("utf-8", "replace"))
        text = (await reader.readline()).rstrip(b"\r\n")


def _matches(pattern: str, name: str) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace("%", "[^/]*")
    return re.fullmatch(regex, name, re.IGNORECASE) is not None


def _folder(args: list[str]) -> str | None:
    if not args:
        raise _Bad("which folder?")
    wanted = args[0]
    for name in _FOLDERS:
        if (wanted.upper() == "INBOX" and name == "INBOX") or wanted == name:
            return name
    return None


def _search(message: _Message, args: list[str]) -> bool:
    """Every criterion must hold (AND); strings match as substrings, without regard to case."""
    headers = _HEADERS.parsebytes(message.raw)
    words = [w for w in args if w not in ("(", ")")]
    index = 0
    while index < len(words):
        key = words[index].upper()
        if key == "ALL":
            index += 1
            continue
        if key == "CHARSET":
            index += 2
            continue
        if key == "HEADER":
            if index + 2 >= len(words):
                raise _Bad("HEADER needs a field name and a value")
            name, value = words[index + 1], words[index + 2]
            found = [str(v) for v in headers.get_all(name) or ()]
            if not any(value.casefold() in v.casefold() for v in found):
                return False
            index += 3
            continue
        if key in ("SUBJECT", "FROM", "TO", "CC"):
            value = words[index + 1] if index + 1 < len(words) else ""
            found = [str(v) for v in headers.get_all(key) or ()]
            if not any(value.casefold() in v.casefold() for v in found):
                return False
            index += 2
            continue
        if key in ("TEXT", "BODY"):
            value = words[index + 1] if index + 1 < len(words) else ""
            if value.casefold().encode() not in message.raw.lower():
                return False
            index += 2
            continue
        raise _Bad(f"SEARCH {key} is not supported by the demo IMAP server")
    return True


def _in_set(spec: str, messages: list[_Message], uid: bool) -> list[tuple[int, _Message]]:
    numbered = list(enumerate(messages, 1))
    if not numbered:
        return []
    top = numbered[-1][1].uid if uid else len(numbered)
    wanted: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition(":")
        try:
            low = top if first == "*" else int(first)
            high = low if not last else top if last == "*" else int(last)
        except ValueError:
            raise _Bad(f"bad message set {spec!r}") from None
        low, high = min(low, high), max(low, high)
        wanted.update(range(low, high + 1))
    return [(n, m) for n, m in numbered if (m.uid if uid else n) in wanted]


def _fetch(number: int, message: _Message, items: str, uid: bool) -> bytes:
    parts: list[bytes] = []
    if uid or "UID" in items:
        parts.append(f"UID {message.uid}".encode())
    if "FLAGS" in items:
        parts.append(b"FLAGS ()")
    if "INTERNALDATE" in items:
        stamp = message.received.strftime("%d-%b-%Y %H:%M:%S +0000")
        parts.append(f'INTERNALDATE "{stamp}"'.encode())
    if "RFC822.SIZE" in items:
        parts.append(f"RFC822.SIZE {len(message.raw)}".encode())
    if "BODY[]" in items or "BODY.PEEK[]" in items or re.search(r"\bRFC822\b(?!\.)", items):
        name = b"RFC822" if re.search(r"\bRFC822\b(?!\.)", items) else b"BODY[]"
        parts.append(name + f" {{{len(message.raw)}}}\r\n".encode() + message.raw)
    return f"* {number} FETCH (".encode() + b" ".join(parts) + b")\r\n"


def password_checker(password: str, known: Callable[[str], bool]) -> Callable[[str, str], bool]:
    """``check(user, given)``: a known demo account and the demo password, compared in
    constant time."""

    def check(user: str, given: str) -> bool:
        return known(user) and hmac.compare_digest(given.encode(), password.encode())

    return check
