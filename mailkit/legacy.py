"""Migrate an application's legacy email settings into mailkit's model, with a report.

Older versions of the applications mailkit serves kept settings that no longer exist ("Email
Sender IP", "Requires Authentication", "TLS Settings", the "Use SSL encoding" checkbox, the
``AuthMSN`` flag). :func:`migrate` maps them onto :class:`~mailkit.settings.OrgSettings` and
returns a :class:`Migration` whose ``report`` has one row per legacy key, so an admin (or an
auditor) can see every change and every decision.

Decisions the old settings leave open, made so that a migration **loses nothing and guesses nothing
silently**:

- An unknown key, an unrecognised value (``TLSSettings=Maybe``) or a value the settings model
  rejects (``Port=abc``) does not stop the migration: the field stays at its default, the row's
  note says so, and the row is listed in :attr:`Migration.warnings`. The admin sees everything
  at once instead of fixing one error per run.
- When two legacy keys set one field, a fixed precedence decides and the loser's row says "not
  used": SMTPServerName over EmailSenderIP, TLSSettings over UseSSL, AuthType over
  RequiresAuthentication, a desktop MailSoftware over SenderProtocol. If the winning key's value
  is unusable, the next key decides instead.
- A port/security conflict (``Port=465`` with ``TLSSettings=TLS``) keeps the port, which is what
  the old software connected to, and sets security to the port's convention (RFC 8314), with a
  note. Legacy products often said "SSL" for STARTTLS, so the port is the better witness.
- A legacy file that configures an SMTP server but names no MailSoftware or SenderProtocol came
  from a product that only spoke SMTP: mode becomes ``smtp`` explicitly (a derived report row
  with an empty ``old_key``), since some products default to Outlook.
- :class:`~mailkit.errors.UnsafeSettingWarning` (an IP address as host) is captured into the
  row's note and not re-emitted: the report is where a migration's caveats belong.
- The password goes to the secret store and nowhere else; it is written only once everything
  else has migrated, so a failed migration leaves the store untouched.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import pandas as pd

from mailkit.credentials import hide_credentials, plainly_harmless, secret_name, skeleton
from mailkit.errors import ImportFileError, SecretStoreError, SettingsError, UnsafeSettingWarning
from mailkit.providers import webdav_successor
from mailkit.secret import Secret
from mailkit.secrets import SecretStore, secret_key
from mailkit.settings import (
    AuthType,
    Mode,
    OrgSettings,
    Priority,
    Security,
    parse_flag,
    port_security_conflict,
    validate,
)
from mailkit.textfile import decode_text

__all__ = [
    "HIDDEN",
    "LEGACY_KEYS",
    "PASSWORD_HIDDEN",
    "REPORT_COLUMNS",
    "SECRET_STORE_FIELD",
    "LegacyValue",
    "Migration",
    "migrate",
    "read_legacy",
    "report_text",
]

_log = logging.getLogger(__name__)

LegacyValue = str | int | float | bool | None
"""A legacy value as a file or a caller's mapping holds it (floats: JSON numbers and pandas
cells, where NaN is an empty cell)."""

REPORT_COLUMNS: Final = ("old_key", "old_value", "new_field", "new_value", "note")
SECRET_STORE_FIELD: Final = "secret store"  # noqa: S105  (a label, not a password)
PASSWORD_HIDDEN: Final = "<password hidden>"  # noqa: S105
HIDDEN: Final = "<hidden>"
UNKNOWN_NOTE: Final = "unknown setting: not migrated; review it by hand"
UNRECOGNISED_NOTE: Final = "unrecognised value, left at the default; set it by hand"
INVALID_NOTE: Final = "invalid value, left at the default; set it by hand"
EMPTY_NOTE: Final = "empty: not set, so mailkit's default applies"
EMPTY_PASSWORD_NOTE: Final = "empty, nothing to move"  # noqa: S105

#: A legacy settings file is a few kilobytes; anything bigger is the wrong file.
MAX_FILE_BYTES: Final = 1024 * 1024

_JSON_SUFFIXES: Final = frozenset({".json"})
_INI_SUFFIXES: Final = frozenset({".ini", ".cfg", ".conf"})
_TOP_LEVEL: Final = "\x00top"  # a section name no file can spell


def _normalise(text: str) -> str:
    """``"Use SSL encoding"``, ``"use_ssl"`` and ``"UseSSL"`` compare alike."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


#: Legacy key spellings (compared by :func:`_normalise`) → the legacy setting they mean.
LEGACY_KEYS: Final[Mapping[str, str]] = {
    "smtpservername": "SMTPServerName",
    "smtpserver": "SMTPServerName",
    "servername": "SMTPServerName",
    "emailsenderip": "EmailSenderIP",
    "port": "Port",
    "smtpport": "Port",
    "requiresauthentication": "RequiresAuthentication",
    "tlssettings": "TLSSettings",
    "usessl": "UseSSL",
    "usesslencoding": "UseSSL",
    "username": "UserName",
    "smtpusername": "UserName",
    "password": "Password",
    "smtppassword": "Password",
    "senderprotocol": "SenderProtocol",
    "authtype": "AuthType",
    "authorizationtype": "AuthType",
    "priority": "Priority",
    "mailsoftware": "MailSoftware",
    "fromaddress": "FromAddress",
    "emailfrom": "FromAddress",
    "fromname": "FromName",
    "displayname": "FromName",
}

#: The OrgSettings field each legacy setting feeds (the report's ``new_field``).
_TARGET: Final[Mapping[str, str]] = {
    "SMTPServerName": "host",
    "EmailSenderIP": "host",
    "Port": "port",
    "RequiresAuthentication": "auth",
    "AuthType": "auth",
    "TLSSettings": "security",
    "UseSSL": "security",
    "UserName": "username",
    "Password": SECRET_STORE_FIELD,
    "SenderProtocol": "mode",
    "MailSoftware": "mode",
    "Priority": "priority",
    "FromAddress": "from_address",
    "FromName": "from_name",
}

#: Settings whose presence shows that the legacy product sent through an SMTP server.
_SMTP_SETTINGS: Final = frozenset(
    {
        "SMTPServerName",
        "EmailSenderIP",
        "Port",
        "RequiresAuthentication",
        "TLSSettings",
        "UseSSL",
        "UserName",
        "Password",
        "AuthType",
    }
)

_TLS_OFF_NOTE: Final = (
    "the old value turned TLS off; mailkit now negotiates TLS (STARTTLS, or implicit TLS on "
    "port 465) and never sends credentials unencrypted. If the server really has no TLS, set "
    "security to none explicitly"
)

# Each table: normalised legacy value → (new value, note).
_TLS_SETTINGS: Final[Mapping[str, tuple[Security, str]]] = {
    "none": (Security.AUTO, "deprecated TLS Settings: " + _TLS_OFF_NOTE),
    "tls": (Security.STARTTLS, "deprecated TLS Settings: TLS meant upgrading with STARTTLS"),
    "ssl": (
        Security.IMPLICIT_TLS,
        "deprecated TLS Settings: SSL meant TLS from the first byte (implicit TLS)",
    ),
}
_SENDER_PROTOCOLS: Final[Mapping[str, tuple[Mode, str]]] = {
    "smtp": (Mode.SMTP, ""),
    "exchangeews": (
        Mode.EXCHANGE_EWS,
        "Exchange Online retires EWS (2026-10 to 2027-04); for Exchange Online plan a move to "
        "microsoft_graph",
    ),
    "exchangewebdav": (
        Mode.EXCHANGE_WEBDAV,
        "legacy, unsupported for sending (Exchange 2000/2003 WebDAV): plan a move to EWS/Graph "
        "(exchange_ews or microsoft_graph)",
    ),
    "gmailapi": (
        Mode.GMAIL_API,
        "needs Google OAuth consent with the gmail.send scope; run the OAuth walkthrough",
    ),
}
_AUTH_TYPES: Final[Mapping[str, tuple[AuthType, str]]] = {
    "authauto": (AuthType.AUTO, "mailkit negotiates the strongest mechanism"),
    "authlogin": (AuthType.LOGIN, ""),
    "authplain": (AuthType.PLAIN, ""),
    "authcram5": (AuthType.CRAM_MD5, ""),
    "authntlm": (AuthType.NTLM, ""),
    "authmsn": (AuthType.NTLM, "msn is the legacy name of NTLM, migrated to ntlm"),
    "xoauth2": (
        AuthType.XOAUTH2,
        "needs an OAuth token, not a password: run the OAuth walkthrough for this account",
    ),
}
_PRIORITIES: Final[Mapping[str, tuple[Priority, str]]] = {
    "normal": (Priority.NORMAL, ""),
    "high": (Priority.HIGH, ""),
    "low": (Priority.LOW, ""),
    **{
        str(n): (p, f"X-Priority {n} is {p.value}")
        for n, p in (
            (1, Priority.HIGH),
            (2, Priority.HIGH),
            (3, Priority.NORMAL),
            (4, Priority.LOW),
            (5, Priority.LOW),
        )
    },
}
_MAIL_SOFTWARE: Final[Mapping[str, tuple[Mode, str]]] = {
    "other": (
        Mode.MAPI,
        "Other is the workstation's MAPI mail client (e.g. Thunderbird); contact "
        "synchronisation is not available with it",
    ),
    "outlook": (Mode.OUTLOOK, ""),
    "lotusnotes": (Mode.LOTUS_NOTES, ""),
    "smtp": (Mode.SMTP, ""),
}


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class Migration:
    """The migrated org settings and the report of every change.

    ``report`` has the columns :data:`REPORT_COLUMNS`, one row per legacy key in the source's
    order (rows with an empty ``old_key`` are decisions no single key made). ``moved_secrets``
    lists the secret-store keys written; ``warnings`` lists, one line each, what an admin must
    review by hand. No field ever holds a password.
    """

    org: OrgSettings
    report: pd.DataFrame
    moved_secrets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def needs_review(self) -> bool:
        return bool(self.warnings)

    def __repr__(self) -> str:
        # The report is a table: its size says enough here, and display() shows the table.
        return (
            f"Migration(org={self.org!r}, report=<{len(self.report)} rows>, "
            f"moved_secrets={self.moved_secrets!r}, warnings={self.warnings!r})"
        )


@dataclass
class _Row:
    new_field: str
    new_value: str = ""
    note: str = ""
    review: bool = False


@dataclass
class _Entry:
    """One legacy key; the password lives in ``secret`` and never in ``text``."""

    key: str
    setting: str | None
    text: str
    secret: Secret | None = None
    rows: list[_Row] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.secret if self.setting == "Password" else not self.text.strip()

    @property
    def shown_value(self) -> str:
        """The value as reports show it: credentials masked, unknown secrets hidden, clipped."""
        if self.setting == "Password":
            return PASSWORD_HIDDEN if self.secret else ""
        if self.setting is None and self.hidden_because:
            return HIDDEN
        return _clip(hide_credentials(self.text))

    @property
    def hidden_because(self) -> str:
        """Why an unknown key's value is not shown ("" when it is shown)."""
        if self.setting is not None or not self.text.strip():
            return ""
        if secret_name(self.key):
            return "the name suggests a secret"
        if not plainly_harmless(hide_credentials(self.text)):
            return "it may be a secret (it is not a plain word, number, host, address or path)"
        return ""


@dataclass(frozen=True)
class _Parsed:
    """A legacy value turned into a field value (``None``: nothing usable) and why."""

    value: Any
    note: str = ""
    review: bool = False


#: Longest value a report row shows; a legacy value longer than this is not a setting anyway.
_SHOWN_LENGTH: Final = 120


def _clip(text: str) -> str:
    """One line of bounded length: a report row must not carry a pasted blob or a line break."""
    flat = " ".join(text.split()) if any(ch in text for ch in "\r\n\t\v\f") else text
    if len(flat) <= _SHOWN_LENGTH:
        return flat
    return f"{flat[: _SHOWN_LENGTH - 1]}… ({len(flat)} characters)"


def _lookalike_of(key: str) -> str | None:
    """The known legacy setting an unknown key imitates with look-alike characters, if any."""
    shape = skeleton(key)
    for spelling, setting in LEGACY_KEYS.items():
        if skeleton(spelling) == shape:
            return setting
    return None


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _shown(value: Any) -> str:
    return str(value.value if isinstance(value, Security | Mode | AuthType | Priority) else value)


def _as_text(value: object) -> str:
    """Render a legacy scalar the way the legacy screen would have shown it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:  # NaN: an empty cell from pandas
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- reading files


def read_legacy(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a legacy settings file (JSON or INI) into ``{key: value}`` in the file's order.

    The format comes from the extension (``.json``; ``.ini``, ``.cfg``, ``.conf``), otherwise
    from the content (``{`` first means JSON). Sections group keys but are not part of them: INI
    sections and JSON objects nested one level (``{"Email": {"Port": 587}}``) are flattened,
    keeping each key's spelling. Keys outside any INI section are read too. A key that appears
    twice, even in different sections or letter case, is refused rather than one copy being
    silently dropped. UTF-8 (with or without BOM) and UTF-16 with a BOM are read; other text is
    read as Windows-1252, the usual encoding of old Windows products.

    The result holds the file's password in clear text: pass it on to :func:`migrate`, don't
    display it. Any problem raises :class:`~mailkit.errors.ImportFileError` naming the file and
    the fix, and never quoting the file's content.
    """
    settings, _notes = _load(Path(path))
    return settings


def _load(path: Path) -> tuple[dict[str, str], list[str]]:
    """:func:`read_legacy`, plus notes about how the file was read (for the warnings)."""
    path = path.expanduser()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    else:
        reason = ""
    if reason and _looks_like_content(str(path)):
        # e.g. migrate(open(f).read()): echoing the "path" would print the settings.
        raise ImportFileError(
            f"cannot read the legacy settings file ({reason}): what was given as its path looks "
            "like settings text (it has a line break or '=', or starts with '{' or '['). Pass "
            "the file's path, or a mapping of settings such as read_legacy() returns"
        )
    if reason:
        raise ImportFileError(
            f"cannot read the legacy settings file {path} ({reason}); check the path and that "
            "you may read the file"
        )
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB; a legacy settings file is a few "
            "kilobytes, so check that you picked the settings export"
        )
    text, notes = _decode(path, data)
    if path.suffix.lower() in _JSON_SUFFIXES:
        is_json = True
    elif path.suffix.lower() in _INI_SUFFIXES:
        is_json = False
    else:
        is_json = text.lstrip().startswith("{")
    triples = _parse_json(path, text) if is_json else _parse_ini(path, text)
    return _collect(path, triples), notes


def _looks_like_content(text: str) -> bool:
    return any(ch in text for ch in "\r\n=") or text.lstrip().startswith(("{", "["))


def _decode(path: Path, data: bytes) -> tuple[str, list[str]]:
    """Decode the file's text (see :mod:`mailkit.textfile`); a guessed encoding becomes a note."""
    decoded = decode_text(data, str(path))
    return decoded.text, [decoded.note] if decoded.note else []


class _JsonObject(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs, so that duplicate keys can be refused."""


def _parse_json(path: Path, text: str) -> list[tuple[str, str, str]]:
    problem = ""
    try:
        # Whole numbers stay text: the settings model judges them, and int() of a 5,000-digit
        # "port" would fail with a ValueError about Python's own limit.
        parsed = json.loads(text, object_pairs_hook=_JsonObject, parse_int=str)
    except json.JSONDecodeError as exc:
        # exc.msg is the grammar rule broken ("Expecting ',' delimiter"), never file content.
        problem = (
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Fix the file there (a JSON validator shows the spot) or export the settings again"
        )
    except RecursionError:
        problem = f"{path} is nested too deeply to be a settings file; export the settings again"
    except ValueError:  # e.g. a float JSON cannot represent; the message quotes no content
        problem = (
            f"{path} holds a number JSON cannot represent; fix it or export the settings again"
        )
    if problem:
        raise ImportFileError(problem)
    if not isinstance(parsed, _JsonObject):
        kind = "list" if isinstance(parsed, list) else "single value"
        raise ImportFileError(
            f"{path} holds a JSON {kind} at the top level; mailkit expects an object of settings "
            'such as {"SMTPServerName": "smtp.example.com", "Port": 587}'
        )
    triples: list[tuple[str, str, str]] = []
    for key, value in parsed:
        if isinstance(value, _JsonObject):
            for sub_key, sub_value in value:
                _check_json_scalar(path, f"{key}.{sub_key}", sub_value)
                triples.append((sub_key, _as_text(sub_value), key))
        else:
            _check_json_scalar(path, key, value)
            triples.append((key, _as_text(value), _TOP_LEVEL))
    return triples


def _check_json_scalar(path: Path, where: str, value: object) -> None:
    if isinstance(value, list):
        kind = "an object" if isinstance(value, _JsonObject) else "a list"
        raise ImportFileError(
            f"{path}: the setting {_short(where)} holds {kind}; mailkit reads settings at the top "
            "level or one object deep (like an INI section). Remove it or flatten it by hand"
        )


class _IniParser(configparser.ConfigParser):
    """Keeps key spelling for the report; no interpolation and no inline comments, because
    passwords may contain ``%``, ``;`` and ``#``. ``[DEFAULT]`` is made an ordinary section so
    that its keys are not copied into every other section."""

    def __init__(self) -> None:
        super().__init__(interpolation=None, strict=True, default_section="\x00no default")

    def optionxform(self, optionstr: str) -> str:
        return optionstr


#: Indentation at the start of a line (any white space except the line break itself).
_INDENT: Final = re.compile(r"^[^\S\n]+", re.MULTILINE)


def _parse_ini(path: Path, text: str) -> list[tuple[str, str, str]]:
    # Every line stands alone, as in the Windows INI files legacy products write: configparser
    # would fold an indented line into the previous key's value, so that "Host = x" followed by
    # "  Password = y" made the password part of the host (and of every report showing it).
    text = _INDENT.sub("", text)
    parser = _IniParser()
    offset = 0
    problem = ""
    try:
        try:
            parser.read_string(text, source=str(path))
        except configparser.MissingSectionHeaderError:
            # Many legacy exports are bare "key=value" lines: read them as one unnamed section.
            parser = _IniParser()
            offset = 1
            parser.read_string(f"[{_TOP_LEVEL}]\n{text}", source=str(path))
    except configparser.DuplicateSectionError as exc:
        problem = (
            f"{path}: the section [{_short(exc.section)}] appears twice (line "
            f"{(exc.lineno or 0) - offset}); merge the two sections or remove one"
        )
    except configparser.DuplicateOptionError as exc:
        problem = (
            f"{path}: the setting {_short(exc.option)} appears twice in one section (line "
            f"{(exc.lineno or 0) - offset}); keep the right one and remove the other"
        )
    except configparser.ParsingError as exc:
        # Only line numbers: the exception's own text quotes the lines.
        numbers = [str(lineno - offset) for lineno, _line in exc.errors[:10]] or ["?"]
        lines = f"lines {', '.join(numbers)} are" if len(numbers) > 1 else f"line {numbers[0]} is"
        problem = (
            f"{path} is not a valid INI file: {lines} neither a [section], a key = value pair "
            "nor a comment. Fix the file there or export the settings again"
        )
    except configparser.Error as exc:
        problem = (
            f"{path} is not a valid INI file ({type(exc).__name__}); export the settings again"
        )
    if problem:
        raise ImportFileError(problem)
    return [
        (key, value or "", section)
        for section in parser.sections()
        for key, value in parser.items(section, raw=True)
    ]


def _collect(path: Path, triples: list[tuple[str, str, str]]) -> dict[str, str]:
    settings: dict[str, str] = {}
    where: dict[str, str] = {}
    for key, value, section in triples:
        place = "at the top level" if section == _TOP_LEVEL else f"in [{_short(section)}]"
        if not key.strip():
            raise ImportFileError(f"{path} has a setting with an empty name {place}; remove it")
        folded = key.casefold()
        if folded in where:
            raise ImportFileError(
                f"{path}: the setting {_short(key)} appears twice ({where[folded]} and {place}); "
                "keep the one the mail settings use and remove the other"
            )
        where[folded] = place
        settings[key] = value
    if not settings:
        raise ImportFileError(
            f"{path} holds no settings; check that you picked the email settings export"
        )
    return settings


def _short(name: str, limit: int = 60) -> str:
    return repr(name if len(name) <= limit else name[:limit] + "…")


# --------------------------------------------------------------------------- migrating


@contextmanager
def _unsafe_warnings() -> Iterator[list[str]]:
    """Collect :class:`UnsafeSettingWarning` messages for the report; pass others on."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsafeSettingWarning)
        yield messages
    for item in caught:
        if issubclass(item.category, UnsafeSettingWarning):
            messages.append(str(item.message))
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)


def _check(field_name: str, text: str) -> _Parsed:
    """Validate one field with the settings model itself, so the rules live in one place."""
    try:
        with _unsafe_warnings() as unsafe:
            org = validate(OrgSettings, {field_name: text})
    except SettingsError as exc:
        problem = "; ".join(p.message for p in exc.problems)
        return _Parsed(None, f"{INVALID_NOTE} ({field_name} {problem})", review=True)
    note = _join(*(f"warning: {message}" for message in unsafe))
    return _Parsed(getattr(org, field_name), note, review=bool(unsafe))


def _table(table: Mapping[str, tuple[Any, str]], expected: str) -> Callable[[str], _Parsed]:
    def parse(text: str) -> _Parsed:
        found = table.get(_normalise(text))
        if found is None:
            return _Parsed(None, f"{UNRECOGNISED_NOTE} (expected {expected})", review=True)
        return _Parsed(*found)

    return parse


def _flag(text: str) -> bool | None:
    try:
        return cast(bool, parse_flag(text, default=False))
    except ValueError:
        return None


def _requires_authentication(text: str) -> _Parsed:
    required = _flag(text)
    if required is None:
        return _Parsed(None, f"{UNRECOGNISED_NOTE} (expected true or false)", review=True)
    if required:
        return _Parsed(
            AuthType.AUTO,
            "deprecated Requires Authentication, replaced by auth: mailkit negotiates the "
            "strongest mechanism the server offers and the credentials allow",
        )
    return _Parsed(
        AuthType.NONE,
        "deprecated Requires Authentication, replaced by auth: none, mail is sent without "
        "logging in (no AuthType key chose a mechanism)",
    )


def _use_ssl(port: int | None) -> Callable[[str], _Parsed]:
    def parse(text: str) -> _Parsed:
        enabled = _flag(text)
        if enabled is None:
            return _Parsed(None, f"{UNRECOGNISED_NOTE} (expected true or false)", review=True)
        if not enabled:
            return _Parsed(Security.AUTO, "Use SSL was off: " + _TLS_OFF_NOTE)
        if port == 465:
            return _Parsed(Security.IMPLICIT_TLS, "Use SSL on port 465 means implicit TLS")
        return _Parsed(
            Security.STARTTLS,
            "Use SSL on a port other than 465 means upgrading with STARTTLS",
        )

    return parse


def _email_sender_ip(text: str) -> _Parsed:
    parsed = _check("host", text)
    if parsed.value is None:
        return parsed
    deprecated = "deprecated Email Sender IP: an IP address now goes in the host field"
    return _Parsed(parsed.value, _join(deprecated, parsed.note), parsed.review)


class _Migrator:
    """One migration's working state: the entries, their rows and the fields decided."""

    def __init__(self, items: list[tuple[str, object]]) -> None:
        self.entries: list[_Entry] = []
        for raw_key, value in items:
            setting = LEGACY_KEYS.get(_normalise(raw_key))
            key = _clip(hide_credentials(raw_key))  # the key as reports show it
            if setting == "Password":
                # Wrapped at once so that no later code holds the clear text in a str.
                secret = Secret(_as_text(value))
                self.entries.append(_Entry(key, setting, "", secret))
            else:
                self.entries.append(_Entry(key, setting, _as_text(value)))
        self.fields: dict[str, Any] = {}
        self.derived: list[_Row] = []
        self.primary: dict[str, _Entry] = {}
        for entry in self.entries:
            if entry.setting is None:
                note = UNKNOWN_NOTE
                if entry.hidden_because:
                    note += f" (value hidden: {entry.hidden_because})"
                lookalike = _lookalike_of(entry.key)
                if lookalike is not None:
                    note += (
                        f"; its name looks like {lookalike} but is spelled with other characters "
                        "(letters from another alphabet, digits or invisible characters), so it "
                        f"was not taken as {lookalike}: retype the name if that was meant"
                    )
                entry.rows.append(_Row("", note=note, review=True))
        self._pick_primaries()

    def _pick_primaries(self) -> None:
        """Of several keys naming one setting (``FromAddress``, ``EmailFrom``), the first
        non-empty one counts; the others are reported as not used."""
        groups: dict[str, list[_Entry]] = {}
        for entry in self.entries:
            if entry.setting is not None:
                groups.setdefault(entry.setting, []).append(entry)
        for setting, group in groups.items():
            chosen = next((e for e in group if not e.empty), group[0])
            self.primary[setting] = chosen
            for entry in group:
                if entry is chosen:
                    continue
                target = _TARGET[setting]
                if entry.empty:
                    entry.rows.append(_Row(target, note=EMPTY_NOTE))
                else:
                    # Only a different value needs a person: the same one twice loses nothing.
                    differs = (
                        entry.secret != chosen.secret
                        if setting == "Password"
                        else entry.text.strip() != chosen.text.strip()
                    )
                    entry.rows.append(
                        _Row(
                            target,
                            note=f"not used: {chosen.key} names the same setting and comes first"
                            + ("; the values differ" if differs else "; same value"),
                            review=differs,
                        )
                    )

    def decide(self, target: str, sources: list[tuple[str, Callable[[str], _Parsed]]]) -> None:
        """Set ``target`` from the first source with a usable value, reporting every source."""
        winner: _Entry | None = None
        failed: list[_Row] = []
        for setting, parse in sources:
            entry = self.primary.get(setting)
            if entry is None:
                continue
            if entry.empty:
                entry.rows.append(_Row(target, note=EMPTY_NOTE))
                continue
            if winner is not None:
                note = f"not used: {winner.key} is also set and decides {target}"
                entry.rows.append(_Row(target, note=note))
                continue
            parsed = parse(entry.text)
            if parsed.value is None:
                row = _Row(target, note=parsed.note, review=True)
                failed.append(row)
                entry.rows.append(row)
                continue
            self.fields[target] = parsed.value
            entry.rows.append(_Row(target, _shown(parsed.value), parsed.note, parsed.review))
            winner = entry
        if winner is not None:
            for row in failed:
                row.note = f"{row.note}; {target} was taken from {winner.key} instead"

    def decide_mode(self) -> None:
        """A desktop MailSoftware decides; otherwise SenderProtocol, then MailSoftware=SMTP."""
        software = self.primary.get("MailSoftware")
        protocol = self.primary.get("SenderProtocol")
        if software is None and protocol is None:
            if any(e.setting in _SMTP_SETTINGS and not e.empty for e in self.entries):
                self.fields["mode"] = Mode.SMTP
                self.derived.append(
                    _Row(
                        "mode",
                        Mode.SMTP.value,
                        "no MailSoftware or SenderProtocol: the legacy settings configure an SMTP "
                        "server, so mode is set to smtp explicitly",
                    )
                )
            return
        soft = self._parse_mode_source(software, _table(_MAIL_SOFTWARE, _expected(_MAIL_SOFTWARE)))
        proto = self._parse_mode_source(
            protocol, _table(_SENDER_PROTOCOLS, _expected(_SENDER_PROTOCOLS))
        )
        soft_mode: Mode | None = soft.value if soft is not None else None
        proto_mode: Mode | None = proto.value if proto is not None else None
        winner: _Entry | None = None
        if soft_mode is not None and soft_mode.is_desktop_client:
            winner = software
        elif proto_mode is not None:
            winner = protocol
        elif soft_mode is not None:
            winner = software
        for entry, parsed in ((software, soft), (protocol, proto)):
            if entry is None or parsed is None:
                continue
            if entry is winner:
                self.fields["mode"] = parsed.value
                review = parsed.review or parsed.value is Mode.EXCHANGE_WEBDAV
                entry.rows.append(_Row("mode", _shown(parsed.value), parsed.note, review))
            elif winner is None or parsed.value is None:
                instead = f"; mode was taken from {winner.key} instead" if winner else ""
                entry.rows.append(_Row("mode", note=parsed.note + instead, review=True))
            elif entry is protocol:
                software_text = software.shown_value.strip() if software is not None else ""
                entry.rows.append(
                    _Row(
                        "mode",
                        note=f"not used: MailSoftware {software_text} means the workstation's "
                        "mail client sends; SenderProtocol applies only when the application "
                        "sends by itself",
                    )
                )
            else:
                entry.rows.append(
                    _Row(
                        "mode",
                        note="SMTP: the application sends by itself; SenderProtocol decides how",
                    )
                )

    @staticmethod
    def _parse_mode_source(entry: _Entry | None, parse: Callable[[str], _Parsed]) -> _Parsed | None:
        if entry is None:
            return None
        if entry.empty:
            entry.rows.append(_Row("mode", note=EMPTY_NOTE))
            return None
        return parse(entry.text)

    def settle_port_security(self) -> None:
        """Keep the port the old software connected to; make security follow it."""
        port = self.fields.get("port")
        security = self.fields.get("security")
        problem = port_security_conflict(port, security)
        if problem is None:
            return
        fixed = Security.IMPLICIT_TLS if port == 465 else Security.STARTTLS
        self.fields["security"] = fixed
        for setting in ("TLSSettings", "UseSSL"):
            entry = self.primary.get(setting)
            if entry is None:
                continue
            for row in entry.rows:
                if row.new_field == "security" and row.new_value:
                    row.new_value = fixed.value
                    row.note = _join(
                        row.note,
                        f"conflicts with Port {port} ({problem}): kept the port and set "
                        f"security to {fixed.value}, the port's convention; check it against "
                        "the server's documentation",
                    )
                    row.review = True

    def migrate_webdav(self) -> None:
        """WebDAV (Exchange 2000/2003) sends with no current Exchange: it becomes EWS at the
        server's standard address, or Microsoft Graph where the server is Exchange Online (see
        :func:`~mailkit.providers.webdav_successor`). Each such move is a row to review."""
        if self.fields.get("mode") is not Mode.EXCHANGE_WEBDAV:
            return
        host = self.fields.get("host")
        server = host if isinstance(host, str) else None
        mode, ews_url = webdav_successor(server)
        self.fields["mode"] = mode
        why = "WebDAV (Exchange 2000/2003) cannot send with any current Exchange"
        if mode is Mode.MICROSOFT_GRAPH:
            note = (
                f"{why}, and the server {server} is Exchange Online, where EWS is being retired "
                "too: migrated to microsoft_graph. Set the OAuth client id and tenant, and run "
                "the Microsoft OAuth consent (permission Mail.Send)"
            )
        else:
            note = f"{why}: migrated to exchange_ews (Exchange 2007 and later)"
            if ews_url is not None:
                self.fields["ews_url"] = ews_url
                url_note = (
                    f"EWS's standard address on the WebDAV server {server}; if the server "
                    "publishes it elsewhere, Autodiscover finds it from the From address"
                )
            else:
                url_note = (
                    "the legacy settings name no server: set the EWS URL, or let Autodiscover "
                    "find it from the From address"
                )
            self.derived.append(_Row("ews_url", ews_url or "", url_note, review=True))
        for entry in self.entries:
            for row in entry.rows:
                if row.new_field == "mode" and row.new_value == Mode.EXCHANGE_WEBDAV.value:
                    row.new_value = mode.value
                    row.note = note
                    row.review = True

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        table = [
            (entry.key, entry.shown_value, row.new_field, row.new_value, row.note)
            for entry in self.entries
            for row in entry.rows
        ]
        table += [("", "", row.new_field, row.new_value, row.note) for row in self.derived]
        return table

    def review_lines(self) -> list[str]:
        lines = [
            f"{entry.key}: {row.note}" for entry in self.entries for row in entry.rows if row.review
        ]
        return lines + [f"(derived) {row.note}" for row in self.derived if row.review]


def _expected(table: Mapping[str, tuple[Any, str]]) -> str:
    return ", ".join(table)


def _no_store_message(key: str) -> str:
    return (
        f"the legacy settings hold a password (key {_short(key)}), and mailkit keeps passwords "
        "only in a secret store, never in the settings. Choose one: pass secrets= a secret "
        "store (KeyringSecretStore() for the OS keyring, MemorySecretStore() for a try-out) to "
        "move the password there, or pass drop_password=True to migrate everything else and "
        "enter the password again afterwards. Nothing was migrated"
    )


def migrate(
    legacy: Mapping[str, LegacyValue] | str | os.PathLike[str],
    *,
    secrets: SecretStore | None = None,
    profile: str = "default",
    drop_password: bool = False,
) -> Migration:
    """Migrate legacy settings (a mapping, or a file for :func:`read_legacy`) to OrgSettings.

    Keys and enum values match without regard to case, spaces or underscores; see
    :data:`LEGACY_KEYS` for the spellings known. Problems with single values are reported,
    not raised (see the module docstring), so one run shows everything to fix. Raises
    :class:`~mailkit.errors.ImportFileError` for an unreadable file and
    :class:`~mailkit.errors.SecretStoreError` when there is a password but neither
    ``secrets`` nor ``drop_password`` says where it goes. ``drop_password`` wins over
    ``secrets``: it is the explicit "do not move it" choice.
    """
    notes: list[str] = []
    if isinstance(legacy, Mapping):
        items: list[tuple[str, object]] = [(str(k), v) for k, v in legacy.items()]
    else:
        loaded, notes = _load(Path(legacy))
        items = list(loaded.items())
    work = _Migrator(items)

    password = work.primary.get("Password")
    store_key: str | None = None
    if password is not None and not password.empty and not drop_password:
        if secrets is None:
            raise SecretStoreError(_no_store_message(password.key))
        store_key = secret_key(profile, "org")

    work.decide("port", [("Port", lambda text: _check("port", text))])
    work.decide(
        "host",
        [
            ("SMTPServerName", lambda text: _check("host", text)),
            ("EmailSenderIP", _email_sender_ip),
        ],
    )
    port = work.fields.get("port")
    work.decide(
        "security",
        [
            ("TLSSettings", _table(_TLS_SETTINGS, "None, TLS or SSL")),
            ("UseSSL", _use_ssl(port if isinstance(port, int) else None)),
        ],
    )
    work.settle_port_security()
    work.decide(
        "auth",
        [
            ("AuthType", _table(_AUTH_TYPES, _expected_auth())),
            ("RequiresAuthentication", _requires_authentication),
        ],
    )
    work.decide("username", [("UserName", lambda text: _check("username", text))])
    work.decide("from_address", [("FromAddress", lambda text: _check("from_address", text))])
    work.decide("from_name", [("FromName", lambda text: _check("from_name", text))])
    work.decide("priority", [("Priority", _table(_PRIORITIES, "Normal, High, Low or 1 to 5"))])
    work.decide_mode()
    work.migrate_webdav()

    with _unsafe_warnings() as unsafe:
        org = cast(
            OrgSettings,
            validate(OrgSettings, work.fields, context="the migrated legacy settings"),
        )
    noted = {row.note for entry in work.entries for row in entry.rows}
    notes += [m for m in unsafe if not any(m in note for note in noted)]

    moved: tuple[str, ...] = ()
    if password is not None:
        password.rows.append(_password_row(password, secrets, store_key, drop_password))
        if store_key is not None and secrets is not None and password.secret is not None:
            moved = (store_key,)

    report = pd.DataFrame(work.rows(), columns=list(REPORT_COLUMNS))
    review = tuple(work.review_lines() + notes)
    _log.debug(
        "migrated %d legacy key(s) into org settings; %d need review; secrets written: %s",
        len(work.entries),
        len(review),
        ", ".join(moved) or "none",
    )
    return Migration(org=org, report=report, moved_secrets=moved, warnings=review)


def _expected_auth() -> str:
    return "AuthAuto, AuthLogin, AuthPlain, AuthCRAM5, AuthNTLM, AuthMSN or XOAUTH2"


def _password_row(
    entry: _Entry, secrets: SecretStore | None, store_key: str | None, drop_password: bool
) -> _Row:
    """Write the password (the migration's last step) and describe what happened to it."""
    if entry.empty:
        return _Row(SECRET_STORE_FIELD, note=EMPTY_PASSWORD_NOTE)
    if drop_password or secrets is None or store_key is None or entry.secret is None:
        return _Row(
            SECRET_STORE_FIELD,
            note="not migrated (drop_password): the password must be entered again in the "
            "settings form or with the command line; it was not stored anywhere",
            review=True,
        )
    previous = secrets.get(store_key)
    secrets.set(store_key, entry.secret)
    note = f"stored under {store_key}; the settings keep no password"
    review = False
    if previous is not None and previous != entry.secret:
        note += "; it replaced a different password that was stored there before"
        review = True
    elif previous is not None:
        note += "; the same password was already stored there"
    return _Row(SECRET_STORE_FIELD, f"moved to the secret store ({secrets.name})", note, review)


def report_text(migration: Migration) -> str:
    """The report as plain text, for the command line and logs (it holds no secret)."""
    count = len(migration.warnings)
    lines = [
        f"Legacy settings migration: {len(migration.report)} report row(s), "
        f"{count} to review by hand."
    ]
    for record in migration.report.to_dict("records"):
        old_key, old_value = str(record["old_key"]), str(record["old_value"])
        new_field, new_value = str(record["new_field"]), str(record["new_value"])
        old = f"{old_key} = {old_value}" if old_key else "(derived)"
        new = f"{new_field} = {new_value}" if new_value else f"{new_field or 'nothing'} (not set)"
        lines.append(f"{old}  ->  {new}")
        if note := str(record["note"]):
            lines.append(f"    {note}")
    if migration.moved_secrets:
        lines.append("Secrets written: " + ", ".join(migration.moved_secrets))
    if migration.warnings:
        lines.append("To review:")
        lines += [f"  - {line}" for line in migration.warnings]
    return "\n".join(lines)
