"""The settings' values without the models: enums, limits, field checks and cross-checks.

Pure functions over plain values, and no pydantic: :mod:`mailkit.settings` declares its models'
fields with these checks, the audit runs the same predicates over whole columns, and a send from
command-line flags alone (``mailkit test --host ...`` without a profile) checks its values with
them without loading pydantic (see :func:`org_values_from_flags`). Every check raises a
``ValueError`` whose text says what is wrong and how to fix it, or returns the problem's words.
"""

from __future__ import annotations

import ipaddress
import re
import string
import unicodedata
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from mailkit.errors import FieldProblem, UnsafeSettingWarning

if TYPE_CHECKING:
    from email_validator import ValidatedEmail

# --------------------------------------------------------------------------- enums


class Mode(StrEnum):
    """How mail leaves the application (what settings screens call "Mail Software" or
    "Sender Protocol")."""

    SMTP = "smtp"
    GMAIL_API = "gmail_api"
    MICROSOFT_GRAPH = "microsoft_graph"
    EXCHANGE_EWS = "exchange_ews"
    EXCHANGE_WEBDAV = "exchange_webdav"
    OUTLOOK = "outlook"
    MAPI = "mapi"
    LOTUS_NOTES = "lotus_notes"

    @property
    def is_desktop_client(self) -> bool:
        """The workstation's mail client sends; mailkit can only hand it a message."""
        return self in (Mode.OUTLOOK, Mode.MAPI, Mode.LOTUS_NOTES)

    @property
    def is_legacy(self) -> bool:
        """Exchange 2000/2003 WebDAV: read and migrated away from, never used to send."""
        return self is Mode.EXCHANGE_WEBDAV


class Security(StrEnum):
    """Transport security. ``auto`` = implicit TLS on 465, STARTTLS elsewhere (RFC 8314)."""

    AUTO = "auto"
    IMPLICIT_TLS = "implicit_tls"
    STARTTLS = "starttls"
    NONE = "none"


class AuthType(StrEnum):
    """SMTP authorization. ``msn`` is a legacy name for NTLM, kept so it can be audited."""

    AUTO = "auto"
    LOGIN = "login"
    PLAIN = "plain"
    CRAM_MD5 = "cram_md5"
    NTLM = "ntlm"
    MSN = "msn"
    XOAUTH2 = "xoauth2"
    NONE = "none"

    @property
    def canonical(self) -> AuthType:
        """The mechanism actually spoken: ``msn`` is NTLM."""
        return AuthType.NTLM if self is AuthType.MSN else self


class Priority(StrEnum):
    """Message priority, written as the three headers mail clients read."""

    NORMAL = "normal"
    HIGH = "high"
    LOW = "low"

    def headers(self) -> dict[str, str]:
        """``X-Priority`` (Outlook and most clients), ``Importance`` and ``Priority`` (RFC 2156)."""
        return {
            Priority.HIGH: {
                "X-Priority": "1 (Highest)",
                "Importance": "high",
                "Priority": "urgent",
            },
            Priority.NORMAL: {
                "X-Priority": "3 (Normal)",
                "Importance": "normal",
                "Priority": "normal",
            },
            Priority.LOW: {
                "X-Priority": "5 (Lowest)",
                "Importance": "low",
                "Priority": "non-urgent",
            },
        }[self]


class Edition(StrEnum):
    """On-premises, or the cloud edition where SMTP is mandatory and user codes are addresses."""

    ON_PREMISES = "on_premises"
    CLOUD = "cloud"


class Provenance(StrEnum):
    """Where an effective value came from."""

    ORG = "org"
    USER = "user"
    DEFAULT = "default"


# --------------------------------------------------------------------------- field checks


class ProblemsError(ValueError):
    """Several field problems found by one cross-field rule; kept apart for forms."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


_F = TypeVar("_F", bound=Callable[..., Any])

#: The checks the validator makes that the audit makes too, each one scalar predicate: the
#: validator calls it on the record being saved, the audit once per distinct value (or pair) of
#: a column, so both say the same thing about the same value. Keyed by the predicate's name;
#: the values name what the audit reports with it (rule ids, or the users-table column it reads
#: with it). ``tests/test_rule_agreement.py`` proves each pair agrees on generated inputs and
#: fails for a predicate registered here without such a proof.
AUDITED_CHECKS: dict[str, tuple[str, ...]] = {}


def audited(*reported_as: str) -> Callable[[_F], _F]:
    """Register a predicate in :data:`AUDITED_CHECKS` (the audit must call it, not copy it)."""

    def register(check: _F) -> _F:
        AUDITED_CHECKS[check.__name__] = reported_as
        return check

    return register


#: Characters that end a header line or an SMTP command, or that some parsers treat as such.
_LINE_BREAKERS = {"\r", "\n", "\x00", "\x0b", "\x0c", "\x85", "\u2028", "\u2029"}

MAX_HOST_LENGTH = 253
MAX_ADDRESS_LENGTH = 254  # RFC 5321 path limit minus the angle brackets
MAX_TEXT_LENGTH = 200
MAX_PATH_LENGTH = 4096

E = TypeVar("E", bound=StrEnum)


def check_text(value: str, *, max_length: int = MAX_TEXT_LENGTH) -> str:
    """Text that may reach a header or an SMTP command: one line, printable, bounded."""
    for ch in value:
        if ch in _LINE_BREAKERS:
            raise ValueError(
                f"contains a line break or NUL character ({ch!r}), which could inject headers "
                "or SMTP commands; remove it and type the value on one line"
            )
        if unicodedata.category(ch) == "Cs":
            raise ValueError(
                "contains an invalid character (a lone surrogate from a bad conversion); "
                "retype the value"
            )
        if unicodedata.category(ch) == "Cc" and ch != "\t":
            raise ValueError(
                f"contains the control character {ch!r}; remove it (it was probably pasted by "
                "accident)"
            )
    value = value.strip()
    if len(value) > max_length:
        raise ValueError(f"is {len(value)} characters long; shorten it to at most {max_length}")
    return value


def _text(max_length: int) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        return check_text(value, max_length=max_length) if isinstance(value, str) else value

    return check


def _blank_to_none(value: Any) -> Any:
    """An empty form field or CSV cell means "not set" (inherit)."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    return value


def _shown(text: str, limit: int = 30) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address as written (no brackets, no final dot)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@audited("ip-address-host")
def host_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a host field holds (bare, in brackets, or with a final dot), or None.

    An IP address works but is fragile (certificates rarely name one, addresses move): the
    validator warns about it and the audit's ``ip-address-host`` reports it.
    """
    text = host.strip().rstrip(".")
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return ipaddress.ip_address(literal)
    except ValueError:
        return None


def check_host(value: str) -> str:
    """A DNS name (Unicode accepted, checked as IDNA 2008) or an IP literal (warned about)."""
    host = check_text(value, max_length=MAX_HOST_LENGTH).rstrip(".")
    if not host:
        raise ValueError("is empty; enter the SMTP server's name, e.g. smtp.example.com")
    address = host_ip(host)
    if address is not None:
        scope = getattr(address, "scope_id", None)
        if scope is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", scope):
            raise ValueError("has an invalid IPv6 zone after %; use an interface name like eth0")
        warnings.warn(
            f"the host {address} is an IP address: the server's TLS certificate rarely names an "
            "IP address, and the address may change; prefer the server's DNS name",
            UnsafeSettingWarning,
            stacklevel=2,
        )
        return str(address)
    if "@" in host:
        raise ValueError(
            "contains a user name or password (@); enter only the server name (e.g. "
            "smtp.example.com) without a scheme, user name, port or path"
        )
    if any(ch in host for ch in " /\\@:<>\t"):
        raise ValueError(
            f"{_shown(host)} is not a host name; enter only the server name (e.g. "
            "smtp.example.com) without a scheme, user name, port or path"
        )
    import idna  # a DNS name's check only: an IP address never needs it

    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise ValueError(
            f"{_shown(host)} is not a valid host name ({_shown(str(exc), 60)[1:-1]}); "
            "check the spelling, e.g. smtp.example.com"
        ) from None
    if len(ascii_host) > MAX_HOST_LENGTH:
        raise ValueError(f"is longer than {MAX_HOST_LENGTH} characters once encoded for DNS")
    labels = ascii_host.split(".")
    if re.fullmatch(r"\d+|0x[0-9a-f]*", labels[-1]):
        raise ValueError(
            "looks like a shortened IP address; write the address as a.b.c.d or, better, "
            "enter the server's DNS name"
        )
    if any(not re.fullmatch(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", lab) for lab in labels):
        raise ValueError(
            f"{_shown(host)} is not a valid host name: use letters, digits and hyphens between "
            "dots, e.g. smtp.example.com"
        )
    return idna.decode(ascii_host)


@audited("provider-host-typo")
def host_typo(host: str) -> str | None:
    """The known provider server ``host`` is one typo away from (smtp.gmial.com gives
    smtp.gmail.com), or None. A valid name that cannot be meant: said when it is saved, by the
    audit, and by the diagnosis after a failed send."""
    from mailkit.providers import suggest_host  # it imports this module

    return suggest_host(host)


@audited("provider-account-mismatch")
def account_mismatch(host: str, username: str | None) -> str | None:
    """Why one provider's account cannot sign in at another provider's server (outlook.com at
    Gmail), or None. Only accounts whose provider is certain count (see
    :func:`mailkit.providers.provider_mismatch`)."""
    from mailkit.providers import provider_mismatch  # it imports this module

    if not username or (mismatch := provider_mismatch(host, username)) is None:
        return None
    account, server = mismatch.account, mismatch.server
    return (
        f"the user name {username} is an account of {account.name}, but the host {host} is "
        f"the server of {server.name}, which signs in only its own accounts: set the host "
        f"to {account.smtp_host}, or the user name to an account of {server.name}"
    )


def _warn_provider_slips(host: str | None, username: str | None) -> None:
    """Valid settings that cannot work with a big provider, warned when the setting is made;
    the audit reports the same two predicates as findings."""
    if not host:
        return
    if meant := host_typo(host):
        warnings.warn(
            f"the host {host} is not a known mail server, but one typo away from {meant}: "
            f"did you mean {meant}?",
            UnsafeSettingWarning,
            stacklevel=3,
        )
    if why := account_mismatch(host, username):
        warnings.warn(why, UnsafeSettingWarning, stacklevel=3)


def host_ascii(host: str) -> str:
    """The host as sent to DNS and TLS (punycode for Unicode names)."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        import idna

        return idna.encode(host, uts46=True).decode("ascii")


@audited("port")
def check_port(value: Any) -> int:
    """Ports 1-65535; strings from forms and CSV files are accepted.

    The audit reads a users table's ports with it too: what it refuses is no port there.
    """
    if isinstance(value, bool):
        raise ValueError("must be a port number from 1 to 65535, e.g. 587, not true/false")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[0-9]{1,5}", text):
            # The value is not quoted: a password pasted into the wrong box must not echo.
            raise ValueError(
                "is not a port number; enter a whole number from 1 to 65535 "
                "(587 for STARTTLS submission, 465 for implicit TLS)"
            )
        value = int(text)
    if not isinstance(value, int):
        raise ValueError("must be a whole number from 1 to 65535, e.g. 587")
    if not 1 <= value <= 65535:
        raise ValueError(
            f"{value} is out of range; a port is from 1 to 65535 (587 for STARTTLS submission, "
            "465 for implicit TLS)"
        )
    return value


#: Top-level names that private networks give themselves and the public DNS never delegates:
#: the special-use ``local`` (RFC 6762, mDNS and many Active Directory forests), ``home.arpa``
#: (RFC 8375) and ``test`` (RFC 6761), ICANN's private-use ``internal`` (2024), the names
#: ICANN will never delegate because networks already use them (``corp``, ``home``, ``mail``),
#: and the names routers and old Windows domains have long used.
#: Longest first, so ``x.home.arpa`` is ``home.arpa`` rather than nothing.
INTERNAL_SUFFIXES: tuple[str, ...] = (
    "home.arpa",
    "localdomain",
    "internal",
    "intranet",
    "private",
    "local",
    "corp",
    "home",
    "mail",
    "test",
    "lan",
)

#: The label separators IDNA (UTS 46) reads as a dot: full stop, ideographic, fullwidth, halfwidth.
_DOTS = re.compile("[.\u3002\uff0e\uff61]")


def _labels(name: str) -> list[str]:
    """A name's labels as DNS compares them: compatibility forms folded, case ignored."""
    return _DOTS.split(unicodedata.normalize("NFKC", name).casefold())


@audited("internal-domain")
def internal_suffix(name: str) -> str | None:
    """The part of a host name or mail domain that only a private network resolves, or None.

    That is one of :data:`INTERNAL_SUFFIXES`, or the name itself when it has a single label
    (``mailhost`` reaches a server only through the local resolver's search domain). IP
    literals are None: they are not names; nor is text that cannot be a label. The validator
    and the audit's ``internal-domain`` rule both ask this, so "internal" means one thing
    everywhere.
    """
    text = name.strip()
    if not text or host_ip(text) is not None:
        return None
    labels = _labels(text)
    if len(labels) > 1 and labels[-1] == "":  # an absolute name: "mail.corp.local."
        labels.pop()
    if len(labels) == 1:
        # Only something that could be a host's name: not "a b", not a shortened IP ("10").
        single = labels[0]
        return single if re.fullmatch(r"[\w-]+", single) and not single.isdigit() else None
    for suffix in INTERNAL_SUFFIXES:
        wanted = suffix.split(".")
        if labels[-len(wanted) :] == wanted:
            return suffix
    return None


def _internal_stand_in(domain: str) -> tuple[str, str] | None:
    """``domain`` with its internal suffix swapped for plain labels of the same length.

    email-validator refuses the special-use names (``local``, ``home.arpa``, ``test``) for every
    caller, because it assumes globally deliverable mail; its ``globally_deliverable=False``
    drops the dot and top-level-domain checks instead, which would let ``a@1.2.3.4`` through.
    Handing it a stand-in of the same shape keeps every check it makes on the rest of the
    address — syntax, lengths, IDNA — while the suffix itself, a fixed ASCII name, needs none.
    Only a name *below* the suffix is swapped: ``a@local`` and ``a@home.arpa`` stay refused.
    """
    suffix = internal_suffix(domain)
    if suffix is None:
        return None
    wanted = suffix.split(".")
    # The typed labels themselves must spell the suffix (in any case or width): a character
    # that only becomes a dot on normalisation (U+2488 "1.") must reach email-validator.
    typed = _DOTS.split(domain)
    if (
        len(typed) <= len(wanted)
        or [unicodedata.normalize("NFKC", label).casefold() for label in typed[-len(wanted) :]]
        != wanted
    ):
        return None
    start = list(_DOTS.finditer(domain))[-len(wanted)].end()
    return domain[:start] + ".".join("x" * len(label) for label in wanted), suffix


@audited("invalid-address", "cloud-user-code-not-email")
def check_address(value: str) -> str:
    """A bare address (``local@domain``), strictly parsed.

    email-validator parses the RFC 5322 addr-spec itself rather than ``email.utils``, so the
    CVE-2023-27043 forms (``alice@example.org)<bob@example.org>``) fail on every Python version.
    Display names belong in their own field. Internal domains (``alice@corp.local``, see
    :func:`internal_suffix`) are valid: on-premises networks are named that way. A domain
    without a dot (``alice@mailhost``) is not: RFC 5321 (2.3.5) allows only fully qualified
    domains in mail, no other server could answer it, and in an export it is far more often a
    truncated domain (``anna@acme``) than a real one.
    """
    plain = _plain_ascii_address(value)
    if plain is not None:
        return plain
    result, suffix = _validated_address(value)
    if suffix is None:
        return result.normalized
    kept = result.domain.split(".")[: -len(suffix.split("."))]
    return f"{result.local_part}@{'.'.join([*kept, suffix])}"


#: An ASCII dot-atom local part (RFC 5322 atext), as email-validator's ``DOT_ATOM_TEXT``.
_ATEXT = r"[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+"
_ASCII_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
#: A lower-case domain of two or more letter-digit-hyphen labels, no hyphen at either end of
#: a label nor two in a row (so no punycode, and none of the forms IDNA refuses).
_ASCII_DOMAIN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+\Z")
#: email-validator's ``SPECIAL_USE_DOMAIN_NAMES`` and ``CASE_INSENSITIVE_MAILBOX_NAMES``
#: (tests/test_settings_addresses.py holds these to the installed version's lists).
_SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_CASE_INSENSITIVE_MAILBOXES = frozenset(
    {"info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster",
     "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp"}
)  # fmt: skip


def _plain_ascii_address(value: str) -> str | None:
    """:func:`check_address`'s answer for the common case, without email-validator, or None.

    An ASCII dot-atom at a public ASCII domain (``Alice.Smith@Example.com``) passes every check
    email-validator makes, and it normalises only case: the domain to lower case, and the
    RFC 2142 role names (``Postmaster``) too. Loading email-validator compiles regular
    expressions over all of Unicode, about 20 ms of a test send's start-up; any other address
    (non-ASCII, an internal or special-use domain, punycode, odd lengths, an error to explain)
    returns None and goes through email-validator as before. tests/test_settings_addresses.py
    proves the two agree on generated addresses.
    """
    if not value.isascii() or value.count("@") != 1:
        return None
    try:
        text = check_text(value, max_length=MAX_ADDRESS_LENGTH)
    except ValueError:
        return None
    local, _, domain = text.partition("@")
    domain = domain.lower()
    if (
        len(local) > 64
        or len(domain) > MAX_HOST_LENGTH
        or _ASCII_LOCAL.match(local) is None
        or _ASCII_DOMAIN.match(domain) is None
        or not domain[-1].isalpha()  # email-validator: every top-level domain ends in a letter
        or any(len(label) > 63 for label in domain.split("."))
        or any(domain == d or domain.endswith("." + d) for d in _SPECIAL_USE_DOMAINS)
        or internal_suffix(domain) is not None
    ):
        return None
    if local.lower() in _CASE_INSENSITIVE_MAILBOXES:
        local = local.lower()
    return f"{local}@{domain}"


def _validated_address(value: str) -> tuple[ValidatedEmail, str | None]:
    """email-validator's result for ``value`` and the internal suffix it was spared, if any."""
    from email_validator import EmailNotValidError, validate_email

    text = check_text(value, max_length=MAX_ADDRESS_LENGTH)
    if not text:
        raise ValueError("is empty; enter an address such as alice@example.com")
    if any(ch in text for ch in '<>()[],;"') or " " in text:
        raise ValueError(
            f"{_shown(text)} is not a single bare address; enter only the address, like "
            "alice@example.com (put a display name in the name field)"
        )
    local, at, domain = text.rpartition("@")
    stand_in = _internal_stand_in(domain) if at else None
    try:
        result = validate_email(
            text if stand_in is None else f"{local}@{stand_in[0]}",
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=False,
            strict=True,
        )
    except EmailNotValidError as exc:
        hint = (
            " Write the full domain, e.g. alice@corp.local."
            if at and domain and not _DOTS.search(domain)
            else ""
        )
        raise ValueError(
            f"{_shown(text)} is not a valid address: {exc}{hint} Fix the address."
        ) from None
    except (ValueError, UnicodeError) as exc:  # idna edge cases inside the validator
        raise ValueError(
            f"{_shown(text)} is not a valid address ({exc}); fix the address"
        ) from None
    return result, None if stand_in is None else stand_in[1]


@dataclass(frozen=True)
class AddressDomain:
    """What :func:`check_address` thinks of a domain, whatever comes before the ``@``.

    An audit checks a million addresses in a few hundred domains: with the domain's verdict
    known, an address whose local part :func:`is_plain_local_part` accepts needs only a length
    sum, not email-validator again (see :func:`address_valid_in`).
    """

    #: Whether ``a@domain`` passes :func:`check_address` (``a`` is the shortest local part, so
    #: when it fails, every address in the domain fails).
    valid: bool
    #: The most UTF-8 bytes the domain takes in any form email-validator measures (as typed,
    #: normalised, IDNA ASCII): an address fits when its local part and ``@`` fit beside it.
    size: int


def address_domain(domain: str) -> AddressDomain:
    """The verdict on ``domain`` for every address in it (see :class:`AddressDomain`)."""
    plain = _plain_ascii_address("a@" + domain)
    if plain is not None:  # a public ASCII domain: each form is as long as the typed one
        return AddressDomain(True, len(plain) - len("a@"))
    try:
        result, _ = _validated_address("a@" + domain)
    except ValueError:
        return AddressDomain(False, 0)
    typed = result.original.rpartition("@")[2]
    forms = (typed.encode(), result.domain.encode(), result.ascii_domain.encode())
    return AddressDomain(True, max(len(form) for form in forms))


#: A dot-atom of ASCII atext and Unicode letters and digits (``\w`` is those and ``_``).
_PLAIN_LOCAL = re.compile(r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*\Z")


def is_plain_local_part(local: str) -> bool:
    """Whether ``local`` is valid before any domain by its shape alone, and kept as typed.

    True for dot-atoms of ASCII atext and Unicode letters and digits (``jürgen``, ``josé``,
    ``李娜``) in NFC, at most 64 characters: email-validator accepts these unchanged (RFC 6531)
    and leaves them as they are. False means "ask :func:`check_address`", not "invalid": marks,
    symbols or unnormalised text may still pass there.
    """
    return (
        len(local) <= 64
        and _PLAIN_LOCAL.match(local) is not None
        and (local.isascii() or unicodedata.is_normalized("NFC", local))
    )


def address_valid_in(local: str, domain: AddressDomain) -> bool | None:
    """:func:`check_address`'s verdict on ``local@domain`` from the domain's, or None.

    None when the local part is not plain (:func:`is_plain_local_part`): the caller asks
    :func:`check_address`. Otherwise exact: the address passes when the domain does and every
    measured form of the address fits in the RFC 5321 path limit.
    """
    if not is_plain_local_part(local):
        return None
    return domain.valid and len(local.encode()) + 1 + domain.size <= MAX_ADDRESS_LENGTH


def choice_key(text: str) -> str:
    """How a typed choice is compared: trimmed, lower case, ``-`` and spaces as ``_``."""
    return text.strip().lower().replace("-", "_").replace(" ", "_")


@audited("mode", "security", "auth")
def read_choice(enum_cls: type[E], text: str, aliases: dict[str, E] | None = None) -> E | None:
    """The member ``text`` names (any case, ``-`` or space for ``_``, or an alias), or None."""
    key = choice_key(text)
    if aliases and key in aliases:
        return aliases[key]
    for member in enum_cls:
        if member.value == key:
            return member
    return None


def _enum(
    enum_cls: type[E], label: str, aliases: dict[str, E] | None = None
) -> Callable[[Any], Any]:
    """Case-insensitive enum parsing with a message that lists the choices."""
    choices = ", ".join(m.value for m in enum_cls)

    def parse(value: Any) -> Any:
        if isinstance(value, enum_cls) or value is None:
            return value
        if isinstance(value, str):
            member = read_choice(enum_cls, value, aliases)
            if member is not None:
                return member
            shown = value if len(value) <= 30 else value[:30] + "…"
            raise ValueError(f"{shown!r} is not a known {label}; choose one of: {choices}")
        raise ValueError(f"must be one of: {choices}")

    return parse


def check_pin(value: str) -> str:
    """A SHA-256 certificate fingerprint, hex with or without colons."""
    text = check_text(value, max_length=200).replace(":", "").replace(" ", "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError(
            "is not a SHA-256 fingerprint; paste the 64 hex digits (colons allowed) shown by "
            "'openssl x509 -noout -fingerprint -sha256'"
        )
    return text


def check_user_code(value: str) -> str:
    text = check_text(value, max_length=MAX_ADDRESS_LENGTH)
    if not text:
        raise ValueError(
            "is empty; every user needs a user code (in the cloud edition, an address)"
        )
    return text


def check_url(value: str, *, example: str = "https://mail.example.com/EWS/Exchange.asmx") -> str:
    text = check_text(value, max_length=2048)
    if not re.fullmatch(r"https://[^\s/?#@]+(?:/[^\s]*)?", text):
        raise ValueError(f"must be an https:// address, e.g. {example}")
    return text


def check_api_url(value: str) -> str:
    """The base URL of a mail API (Gmail API / Graph): https, no query, no trailing slash.

    The API paths are appended to it, so a query or fragment would end up in the middle of
    every request URL.
    """
    text = check_url(value, example="https://gmail.googleapis.com or https://graph.microsoft.com")
    if re.search(r"[?#]", text):
        raise ValueError("must be a base address without ? or #, e.g. https://graph.microsoft.com")
    return text.rstrip("/")


def check_route_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", value):
        raise ValueError(
            f"{value[:40]!r} is not a feature name; use lower-case letters, digits and "
            "underscores, starting with a letter (e.g. work_orders)"
        )
    return value


@audited("route-template-invalid")
def subject_template_problem(template: str) -> str | None:
    """Why a feature route's subject template cannot be filled in, or None.

    Unbalanced braces, a format spec or conversion after a name, or a placeholder that is not
    one of :data:`SUBJECT_FIELDS`: the validator refuses the template with these words, the
    audit's ``route-template-invalid`` reports a stored one that bypassed validation, and a
    route test refuses to render it (:func:`mailkit.routes.render_subject`).
    """
    try:
        parts = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(template)]
    except ValueError as exc:
        return (
            f"has unbalanced braces ({exc}); write placeholders as {{number}} and literal braces "
            "as {{ and }}"
        )
    if any(n is not None and (spec or conv) for n, spec, conv in parts):
        return "write placeholders as {number}, without : or ! after the name"
    fields = [n for n, _, _ in parts if n is not None]
    unknown = sorted({f for f in fields if f not in SUBJECT_FIELDS})
    if unknown:
        known = ", ".join(sorted(SUBJECT_FIELDS))
        return f"uses unknown placeholder(s) {', '.join(unknown)}; use only: {known}"
    return None


def check_subject_template(value: str) -> str:
    text = check_text(value, max_length=998)
    if (problem := subject_template_problem(text)) is not None:
        raise ValueError(problem)
    return text


@audited("route-sender-not-sendable")
def route_sender_problem(mode: Mode | None) -> str | None:
    """Why a feature route cannot send as a sender whose effective mode is ``mode``, or None.

    A route sends from the application server, unattended: a desktop mode (outlook, mapi,
    lotus_notes) hands mail to a client on a workstation where someone is signed in, which a
    server does not have, so the route's mail would never leave. Warned when an enabled route
    is saved with such a sender; the audit's ``route-sender-not-sendable`` reports it.
    """
    if mode is None or not mode.is_desktop_client:
        return None
    return (
        f"mode {mode.value} hands mail to a desktop client on a workstation; a "
        "feature route sends from the application server, where nobody is signed in to a "
        "desktop, so its mail would never leave: set that sender's mode to smtp (or "
        "microsoft_graph or exchange_ews)"
    )


SUBJECT_FIELDS = frozenset({"feature", "number", "title", "sender", "date"})


#: Other spellings of enum values that applications and legacy files use ("Other" is the ERP's
#: name for MAPI). The audit reads exported tables with the same tables.
MODE_ALIASES: dict[str, Mode] = {"other": Mode.MAPI, "lotus": Mode.LOTUS_NOTES}
SECURITY_ALIASES: dict[str, Security] = {"ssl": Security.IMPLICIT_TLS, "tls": Security.STARTTLS}
AUTH_ALIASES: dict[str, AuthType] = {"cram-md5": AuthType.CRAM_MD5, "crammd5": AuthType.CRAM_MD5}

#: The choice fields' readers (any case, ``-`` or space for ``_``, the aliases above), with the
#: choices listed when a value is none of them. The models declare their fields with them.
read_mode = _enum(Mode, "mode", MODE_ALIASES)
read_security = _enum(Security, "security", SECURITY_ALIASES)
read_auth = _enum(AuthType, "authorization type", AUTH_ALIASES)


@audited("port-security-mismatch")
def port_security_conflict(port: int | None, security: Security | None) -> str | None:
    """Why a port and a security setting cannot work together, or None.

    465 is the implicit-TLS submission port (RFC 8314); 587 and 25 start in plaintext and
    upgrade with STARTTLS. Shared by validation and the audit so both say the same thing.
    """
    if port is None or security is None:
        return None
    if port == 465 and security in (Security.STARTTLS, Security.NONE):
        return (
            f"port 465 expects implicit TLS but security is {security.value}; set security to "
            "implicit_tls (or auto), or use port 587 for STARTTLS"
        )
    if port in (25, 587) and security is Security.IMPLICIT_TLS:
        return (
            f"port {port} starts in plaintext and upgrades with STARTTLS, but security is "
            "implicit_tls; set security to starttls (or auto), or use port 465 for implicit TLS"
        )
    return None


@audited("tls-disabled")
def sends_unencrypted(security: Security | None) -> bool:
    """Mail (and any password) crosses the network in clear text: security ``none``."""
    return security is Security.NONE


@audited("cloud-requires-smtp")
def edition_allows_mode(edition: Edition, mode: Mode | None) -> bool:
    """Whether the edition can send with ``mode`` (unset is SMTP): the cloud only with SMTP."""
    return edition is not Edition.CLOUD or mode in (None, Mode.SMTP)


@audited("duplicate-user-code")
def user_code_key(code: str) -> str:
    """What makes two user codes the same user: ``ALICE`` and ``alice`` are one person."""
    return code.casefold()


def default_port(security: Security) -> int:
    """The submission port that goes with a security setting (RFC 8314 / RFC 6409)."""
    return 465 if security is Security.IMPLICIT_TLS else 587


#: The user fields that override the org value when ``override_enabled`` is set.
OVERRIDE_FIELDS: tuple[str, ...] = (
    "mode",
    "username",
    "from_address",
    "host",
    "port",
    "security",
    "auth",
)


# --------------------------------------------------------------------------- the org's values

#: The org settings a send reads and their defaults (the model's, declared with these values):
#: the effective fields, the edition and the EWS URL, then TLS trust, timeouts and each mode's
#: endpoints, which only the org sets. A send configured by flags alone starts from them.
ORG_SEND_DEFAULTS: dict[str, Any] = {
    "edition": Edition.ON_PREMISES,
    "mode": None,
    "host": None,
    "port": None,
    "security": None,
    "auth": None,
    "username": None,
    "from_address": None,
    "from_name": None,
    "priority": None,
    "ews_url": None,
    "ca_file": None,
    "tls_pin_sha256": None,
    "tls_min_version": "1.2",
    "allow_plaintext_auth": False,
    "connect_timeout": 15.0,
    "command_timeout": 60.0,
    "api_url": None,
    "ews_autodiscover": False,
    "ews_autodiscover_url": None,
    "eml_folder": None,
}


def org_problems(
    edition: Edition, mode: Mode | None, port: int | None, security: Security | None
) -> list[FieldProblem]:
    """The org's cross-field problems: a port and security that cannot work together, or a
    mode its edition cannot send with. The model refuses an org with any."""
    problems = []
    if problem := port_security_conflict(port, security):
        problems.append(FieldProblem("security", problem))
    if mode is not None and not edition_allows_mode(edition, mode):
        problems.append(
            FieldProblem(
                "mode",
                f"the cloud edition sends only through SMTP, but mode is {mode.value}; "
                "set mode to smtp",
            )
        )
    return problems


def warn_org(security: Security | None, host: str | None, username: str | None) -> None:
    """The warnings an org's accepted values earn: no encryption, or a big provider's slip."""
    if sends_unencrypted(security):
        warnings.warn(
            "security is none: mail and any credentials cross the network unencrypted; use "
            "auto unless the server is on the same host",
            UnsafeSettingWarning,
            stacklevel=3,
        )
    _warn_provider_slips(host, username)


def _optional_text(max_length: int) -> Callable[[Any], Any]:
    check = _text(max_length)
    return lambda value: check(value) if isinstance(value, str) else _not_text(value)


def _not_text(value: Any) -> Any:
    raise ValueError("must be text")


def _switch(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


#: How the org fields a command line can set are read, in the model's field order: the checks
#: OrgSettings declares those fields with. Blank means unset, as in a form.
FLAG_FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "mode": read_mode,
    "host": check_host,
    "port": check_port,
    "security": read_security,
    "auth": read_auth,
    "username": _optional_text(MAX_TEXT_LENGTH),
    "from_address": check_address,
    "ca_file": _optional_text(MAX_PATH_LENGTH),
    "tls_pin_sha256": check_pin,
    "ews_url": check_url,
    "ews_autodiscover": _switch,
    "ews_autodiscover_url": check_url,
    "api_url": check_api_url,
}


def org_values_from_flags(given: Mapping[str, Any]) -> dict[str, Any] | None:
    """The org values that flags alone give (no profile), read and checked as OrgSettings
    reads and checks them — its field checks, cross-checks and warnings — without building
    the model: a command-line test send never loads pydantic (a third of its start-up).

    None when only the model can answer: a field outside :data:`FLAG_FIELD_CHECKS`, or any
    problem, which the model then reports in its own words (so every refusal has one source).
    The warnings are given only for values that are accepted.
    """
    if not given.keys() <= FLAG_FIELD_CHECKS.keys():
        return None
    values: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for name, check in FLAG_FIELD_CHECKS.items():
                raw = _blank_to_none(given.get(name))
                if raw is not None:
                    values[name] = check(raw)
        except (ValueError, TypeError):  # TypeError: not text where text is due
            return None
        edition = ORG_SEND_DEFAULTS["edition"]
        if org_problems(edition, values.get("mode"), values.get("port"), values.get("security")):
            return None
        warn_org(values.get("security"), values.get("host"), values.get("username"))
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return values
