"""The words each face of mailkit uses for a setting: Python names, CLI flags, widget labels.

Advice is written once, in the pure core, and read in three places: a notebook's Python (where
the CA file is ``ca_file``), the command line (``--ca-file``) and a form (the field labelled
"CA file"). So advice does not spell a setting's name: it carries a *reference* made by
:func:`setting` (or :func:`password_home` for "where a password is stored"), and a face
renders the text with :func:`render`. Plain text, without a face, is the Python face, so that
what the core returns reads well as it is.

A reference is the setting's name between two control characters that never occur in the
words around it (settings refuse control characters, and server text is cleaned of them).
Pure: no I/O, nothing imported from the faces themselves; ``tests/test_face_words.py`` checks
this table against the real CLI parser and the real widget labels, so neither can drift away.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "FIELDS",
    "Face",
    "FieldWords",
    "Where",
    "in_plain_words",
    "name_setting",
    "password_home",
    "rename_settings",
    "render",
    "setting",
    "unlock_home",
]


class Face(StrEnum):
    """Where a text is read: a notebook's Python, the command line, or a widget form."""

    PYTHON = "python"
    CLI = "cli"
    WIDGET = "widget"


@dataclass(frozen=True)
class FieldWords:
    """How one setting is named in each face.

    ``cli`` is the ``mailkit test`` flag, or None when no flag sets it (then the CLI names the
    key of the profile's TOML, which ``mailkit profile export`` / ``import`` edit). ``widget`` is
    the field's label; ``section`` the collapsed part of the form it sits in, if any.
    """

    cli: str | None
    widget: str
    section: str | None = None
    #: How Python names it when that is not the setting's name (an argument, not a field).
    python: str | None = None


_TLS_SECTION = "TLS trust and timeouts"

#: Every setting advice may name, by its Python name.
FIELDS: dict[str, FieldWords] = {
    "mode": FieldWords("--mode", "Mode"),
    "host": FieldWords("--host", "SMTP server"),
    "port": FieldWords("--port", "Port"),
    "security": FieldWords("--security", "Security"),
    "auth": FieldWords("--auth", "Authorization"),
    "username": FieldWords("--username", "User name"),
    "from_address": FieldWords("--from", "From address"),
    "ca_file": FieldWords("--ca-file", "CA file", _TLS_SECTION),
    "tls_pin_sha256": FieldWords("--pin-sha256", "Certificate pin", _TLS_SECTION),
    "tls_min_version": FieldWords(None, "Minimum TLS", _TLS_SECTION),
    "allow_plaintext_auth": FieldWords(
        None, "Allow credentials without TLS (security none only)", _TLS_SECTION
    ),
    "connect_timeout": FieldWords(None, "Connect timeout (s)", _TLS_SECTION),
    "command_timeout": FieldWords("--timeout", "Command timeout (s)", _TLS_SECTION),
    "oauth_client_id": FieldWords(None, "OAuth client id"),
    "oauth_tenant": FieldWords(None, "Tenant"),
    "api_url": FieldWords("--api-url", "API URL of the organisation settings"),
    "ews_url": FieldWords("--ews-url", "EWS URL"),
    "ews_autodiscover": FieldWords("--autodiscover", "Autodiscover"),
    "ews_autodiscover_url": FieldWords("--autodiscover-url", "Autodiscover URL"),
    # The delivery check's settings: arguments of a test send, no form field of their own.
    "verify_imap": FieldWords(
        "--verify-imap", "mailbox the delivery check searches", python="VerifySpec(mailbox=...)"
    ),
    "verify_timeout": FieldWords(
        "--verify-timeout", "delivery check's wait", python="VerifySpec(timeout=...)"
    ),
    "eml_folder": FieldWords("--eml-out", "Folder for test drafts"),
    "secrets": FieldWords(
        "--secrets", "store the notebook opened for the profile", python="the secrets= argument"
    ),
}

#: Fields with no widget of their own: the label is a description, not quoted.
_DESCRIBED = frozenset({"api_url", "secrets", "verify_imap", "verify_timeout"})

_OPEN, _CLOSE = "\x1e", "\x1f"
_REFERENCE = re.compile(f"{_OPEN}([a-z0-9_]+)(?::([a-z]+))?{_CLOSE}")
_STORE_REF = "password_home"
_UNLOCK_REF = "unlock_secrets"


def setting(name: str) -> str:
    """A reference to the setting ``name`` for advice text; :func:`render` names it per face."""
    if name not in FIELDS:
        raise KeyError(f"no setting {name!r} in mailkit.faces.FIELDS")
    return f"{_OPEN}{name}{_CLOSE}"


def password_home(kind: str = "password") -> str:
    """A reference to the place a face stores a password, e.g. ``mailkit secret set ...``."""
    if kind != "password":
        raise ValueError("only passwords are stored by a form or a command; tokens by OAuth")
    return f"{_OPEN}{_STORE_REF}:{kind}{_CLOSE}"


def unlock_home() -> str:
    """A reference to how a face unlocks an encrypted secrets file, e.g. its passphrase panel."""
    return f"{_OPEN}{_UNLOCK_REF}{_CLOSE}"


@dataclass(frozen=True)
class Where:
    """Whose settings the words are about, when the face knows: fills in the store commands.

    ``account`` is the secret store's account: ``"org"`` or a user code (see
    :func:`mailkit.testsend.credential_account`).
    """

    profile: str | None = None
    account: str | None = None
    #: The settings came from the command's flags, not a profile: a password can come the
    #: same way, for this run only.
    ad_hoc: bool = False

    @property
    def is_user(self) -> bool:
        return self.account not in (None, "org")


def render(text: str, face: Face | str = Face.PYTHON, where: Where | None = None) -> str:
    """``text`` with each reference named the way ``face`` names it."""
    chosen = Face(face)
    place = where or Where()

    def name(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref == _STORE_REF:
            return _password_home(chosen, place)
        if ref == _UNLOCK_REF:
            return _UNLOCK_WORDS[chosen]
        return _field(ref, chosen)

    return _REFERENCE.sub(name, text).replace(_OPEN, "").replace(_CLOSE, "")


def name_setting(name: str, face: Face | str) -> str:
    """How ``face`` names the setting ``name``: ``--from`` for ``from_address`` in the CLI.
    A name the table does not know is returned as it is."""
    return _field(name, Face(face))


_PYTHON_SPELLED = re.compile(
    r"(?<![\w-])("
    + "|".join(sorted((n for n in FIELDS if "_" in n), key=len, reverse=True))
    + r")(?![\w-])"
)


def rename_settings(text: str, face: Face | str) -> str:
    """``text`` written in Python's words (a validator's message) with each setting whose
    Python name is not a plain word (``from_address``, ``tls_pin_sha256``) named as ``face``
    names it. For messages that predate references; new advice uses :func:`setting`."""
    chosen = Face(face)
    return _PYTHON_SPELLED.sub(lambda m: _field(m.group(1), chosen), text)


def in_plain_words(text: str) -> str:
    """``text`` with each Python-spelled setting named by its label ("CA file"): for words
    every face shows alike, such as a transcript row."""

    def label(match: re.Match[str]) -> str:
        name = match.group(1)
        return name.replace("_", " ") if name in _DESCRIBED else FIELDS[name].widget

    return _PYTHON_SPELLED.sub(label, text)


def _field(name: str, face: Face) -> str:
    words = FIELDS.get(name)
    if words is None:
        return name
    if face is Face.PYTHON:
        return words.python or name
    if face is Face.CLI:
        if words.cli is not None:
            return words.cli
        return f"{name} in the profile (mailkit profile export, edit, mailkit profile import)"
    if name in _DESCRIBED:
        return f"the {words.widget}"
    where = f" (under {words.section})" if words.section else ""
    return f"“{words.widget}”{where}"


_UNLOCK_WORDS = {
    Face.CLI: "set MAILKIT_SECRETS_PASSPHRASE, or run the command on a terminal to be asked for "
    "the passphrase",
    Face.WIDGET: "type the passphrase in the passphrase panel at the top of the notebook and "
    "press Unlock",
    Face.PYTHON: "call unlock(passphrase) on the FileSecretStore, or set "
    "MAILKIT_SECRETS_PASSPHRASE before the kernel starts",
}


def _password_home(face: Face, where: Where) -> str:
    if face is Face.CLI:
        profile = where.profile or "PROFILE"
        user = f" --user {where.account}" if where.is_user else ""
        if where.account is None:
            user = " [--user CODE]"
        command = f"mailkit secret set --profile {profile}{user} --password-stdin"
        if where.ad_hoc:
            return (
                "--password-stdin or --password-env NAME on this command (for this run only), "
                f"or keep it in a profile's secret store: {command}"
            )
        return f"{command} (or --password-env NAME)"
    if face is Face.WIDGET:
        if where.account is None:
            return (
                "the Password and Confirm fields of the user form (Save user), or of the "
                "organisation's password panel (Save password)"
            )
        fields = "the Password and Confirm fields of"
        if where.is_user:
            return f"{fields} the user form of {where.account}, then Save user"
        return f"{fields} the organisation's password panel, then Save password"
    profile = repr(where.profile) if where.profile else "PROFILE"
    account = repr(where.account) if where.account else "ACCOUNT"
    blanks = [
        *(() if where.profile else ("PROFILE: the profile's name",)),
        *(() if where.account else ('ACCOUNT: "org", or the user code for a user\'s own',)),
    ]
    call = f"secrets.set_password(secret_key({profile}, {account}), password, confirmation)"
    return call + (f" ({'; '.join(blanks)})" if blanks else "")
