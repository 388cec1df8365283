"""Audit rules: what is wrong or risky in every user's effective settings, and how to fix it.

Pure and vectorised. The effective settings are resolved once for the whole table, then each
rule is a boolean mask over its columns, so a million users cost a few column operations per
rule, not a million Python calls. Rules are declared data (:data:`RULES`) so that the CLI, the
dashboard and the tests list the same ids, severities and fixes.

Strings are the expensive part: pandas keeps them as Python objects. Columns with few distinct
values (mode, auth, host, port) are tested once per distinct value and shared between rules
(:class:`SharedColumns`); the per-value text work that remains (trimming, address shapes,
domains) is one plain pass over an object array, not pandas' several per string method.

Input is whatever an application exported: bad addresses, unknown modes, ports that are not
numbers. Nothing here raises on such values; bad addresses become ``invalid-address`` findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from itertools import repeat
from operator import contains, itemgetter
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import pandas as pd

from mailkit.columns import USERS_COLUMNS
from mailkit.providers import exchange_online_host, provider_for_domain, provider_for_host
from mailkit.resolve import effective_frame, strings_at
from mailkit.settings import (
    AUTH_ALIASES,
    MODE_ALIASES,
    OVERRIDE_FIELDS,
    SECURITY_ALIASES,
    AddressDomain,
    AuthType,
    Edition,
    Mode,
    OrgSettings,
    Provenance,
    Security,
    account_mismatch,
    address_domain,
    address_valid_in,
    check_address,
    check_port,
    choice_key,
    cloud_account_conflicts,
    edition_allows_mode,
    host_ip,
    host_typo,
    internal_suffix,
    parse_flag,
    port_security_conflict,
    read_choice,
    route_sender_problem,
    sends_unencrypted,
    subject_template_problem,
    user_code_key,
)

if TYPE_CHECKING:
    from mailkit.domainhealth.records import DomainHealth, DomainQuery

__all__ = [
    "FINDINGS_COLUMNS",
    "RULES",
    "SEVERITIES",
    "Rule",
    "audit",
    "audit_frame",
    "effective_settings",
]

Severity = Literal["critical", "warning", "info"]

#: Most severe first; findings are sorted in this order.
SEVERITIES: Final[tuple[Severity, ...]] = ("critical", "warning", "info")

#: The findings table, exactly (the CLI's ``--format json`` keys).
FINDINGS_COLUMNS: Final[tuple[str, ...]] = ("user_code", "rule", "severity", "message", "fix")


@dataclass(frozen=True)
class AuditContext:
    """What rules may look at besides the frame."""

    org: OrgSettings
    #: Accounts (user codes, or "org") that hold a password; None when secrets were not checked.
    accounts_with_secret: frozenset[str] | None
    has_history: bool
    #: Facts about the user frame that several rules share (see :class:`SharedColumns`).
    shared: SharedColumns


@dataclass(frozen=True)
class Rule:
    """One check. ``message`` may name frame columns as ``{column}``; they are filled per row."""

    id: str
    severity: Severity
    message: str
    fix: str
    check: Callable[[pd.DataFrame, AuditContext], pd.Series[bool]]
    #: ``user`` rules see one row per user; ``route`` rules one row per feature route.
    scope: Literal["user", "route"] = "user"


# --------------------------------------------------------------------------- helpers

#: A row mask as the rules combine them: numpy, so ``&`` and ``|`` skip pandas' alignment.
Mask = np.ndarray[Any, np.dtype[np.bool_]]


def _false(frame: pd.DataFrame) -> pd.Series[bool]:
    mask: pd.Series[bool] = pd.Series(False, index=frame.index, dtype=bool)
    return mask


def _eq(column: pd.Series[Any], value: str) -> pd.Series[bool]:
    return (column == value).fillna(False).astype(bool)


def _isin(column: pd.Series[Any], values: Iterable[str]) -> pd.Series[bool]:
    return column.isin(list(values)).fillna(False).astype(bool)


class _AddressCheck:
    """Valid or not per value, exactly as ``check_address`` says, at the cost of a dict lookup.

    ``check_address`` is strict but costs tens of microseconds, too slow for a million user
    codes. The domain's verdict does not depend on the local part, so it is asked once per
    distinct domain (``address_domain``); a local part that is valid by its shape alone —
    ASCII or not, ``anna.smith`` or ``jürgen`` — then needs only a length sum
    (``address_valid_in``). The strict check runs once per distinct unusual value, across
    every column checked.
    """

    def __init__(self) -> None:
        self._strict: dict[str, bool] = {}
        self._domains: dict[str, AddressDomain] = {}

    def _check(self, value: str) -> bool:
        verdict = self._strict.get(value)
        if verdict is None:
            try:
                check_address(value)
            except ValueError:
                verdict = False
            else:
                verdict = True
            self._strict[value] = verdict
        return verdict

    def invalid(self, values: np.ndarray[Any, Any], rows: Mask) -> Mask:
        """True for the ``rows`` (all set) whose value is not a valid address."""
        bad = np.zeros(len(values), dtype=bool)
        verdicts: list[bool] = []
        append, domains, check, valid_in = (
            verdicts.append,
            self._domains,
            self._check,
            address_valid_in,
        )
        for value in values[rows].tolist():  # a list iterates faster than an object array
            local, at, domain = value.rpartition("@")
            if at:
                known = domains.get(domain)
                if known is None:
                    known = domains[domain] = address_domain(domain)
                ok = valid_in(local, known)
                if ok is None:
                    ok = check(value)
            else:
                ok = check(value)
            append(not ok)
        bad[rows] = verdicts
        return bad

    def verdicts(self, column: pd.Series[Any]) -> pd.Series[Any]:
        """True where valid, False where not, NA where unset."""
        values = _texts(column)
        is_set = ~pd.isna(values)
        valid = ~self.invalid(values, is_set)
        return pd.Series(pd.arrays.BooleanArray(valid, ~is_set), index=column.index)


def _bad_addresses(
    table: pd.DataFrame, frame: pd.DataFrame, addresses: _AddressCheck
) -> pd.Series[Any]:
    """The first invalid address per user — email, then effective From — or NA.

    The From check avoids repeating work: a From the user did not set is the org's (one check
    for all such rows), and a From equal to the user's email has the email's verdict.
    """
    email, sender = _texts(table["email"]), _texts(frame["from_address"])
    email_set, sender_set = ~pd.isna(email), ~pd.isna(sender)
    email_bad = addresses.invalid(email, email_set)
    own = (frame["from_address_source"] == Provenance.USER.value).to_numpy() & sender_set
    same = np.zeros(len(frame), dtype=bool)
    both = own & email_set
    same[both] = email[both] == sender[both]
    sender_bad = addresses.invalid(sender, own & ~same)
    sender_bad[same] = email_bad[same]
    inherited = sender_set & ~own
    codes, uniques = pd.factorize(sender[inherited])
    sender_bad[inherited] = addresses.invalid(uniques, np.ones(len(uniques), dtype=bool))[codes]
    bad = sender_bad | email_bad
    shown = np.where(email_bad, email, sender)[bad]
    return pd.Series(strings_at(shown, bad), index=frame.index)


_PASSWORD_AUTHS: Final = (
    AuthType.LOGIN.value,
    AuthType.PLAIN.value,
    AuthType.CRAM_MD5.value,
    AuthType.NTLM.value,
    AuthType.MSN.value,
)


class SharedColumns:
    """Facts about the user frame that several rules need, each computed at most once per audit.

    Most columns hold a handful of distinct values (modes, hosts, ports, auth), so a test runs
    on the distinct values and its verdict is spread back to the rows by code: one hash pass per
    column instead of a string pass per rule. A million-row string pass costs tens of
    milliseconds; a code lookup a millisecond.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._distinct: dict[str, tuple[np.ndarray[Any, Any], pd.Series[Any]]] = {}
        self._masks: dict[tuple[str, str], Mask] = {}
        self._keys: pd.Series[Any] | None = None
        self._unset: dict[str, Mask] = {}

    def distinct(self, column: str) -> tuple[np.ndarray[Any, Any], pd.Series[Any]]:
        """Codes per row (-1 where unset) and the distinct set values."""
        if column not in self._distinct:
            codes, uniques = self.frame[column].array.factorize()
            self._distinct[column] = (codes, pd.Series(uniques))
        return self._distinct[column]

    def where(self, column: str, test: Callable[[pd.Series[Any]], pd.Series[Any]]) -> Mask:
        """``test`` over the distinct values, spread to the rows; unset rows are False."""
        codes, uniques = self.distinct(column)
        return _spread(codes, test(uniques))

    def eq(self, column: str, value: str) -> Mask:
        key = (column, value)
        if key not in self._masks:
            self._masks[key] = self.where(column, lambda u: u == value)
        return self._masks[key]

    def isin(self, column: str, values: Iterable[str]) -> Mask:
        wanted = list(values)
        return self.where(column, lambda u: u.isin(wanted))

    def each(self, column: str, predicate: Callable[[str], bool]) -> Mask:
        """``predicate`` (one of the settings' own checks) once per distinct value."""
        return self.where(column, lambda u: u.map(lambda value: bool(predicate(str(value)))))

    @cached_property
    def unencrypted(self) -> Mask:
        """Security none, as ``settings.sends_unencrypted`` says."""
        return self.each(
            "security", lambda v: sends_unencrypted(read_choice(Security, v, SECURITY_ALIASES))
        )

    @cached_property
    def smtp(self) -> Mask:
        return self.eq("mode", Mode.SMTP.value)

    @cached_property
    def password_auth(self) -> Mask:
        """SMTP sends that sign in with a password: a password mechanism, or ``auto`` + a name."""
        named = self.isin("auth", _PASSWORD_AUTHS)
        auto = self.eq("auth", AuthType.AUTO.value) & ~self.unset("username")
        return self.smtp & (named | auto)

    def unset(self, column: str) -> Mask:
        """Where ``column`` is NA; asked once per column, shared by every rule (read only)."""
        if column not in self._unset:
            self._unset[column] = self.frame[column].isna().to_numpy(dtype=bool)
        return self._unset[column]

    @cached_property
    def host_key(self) -> tuple[np.ndarray[Any, Any], pd.Series[Any]]:
        """Codes and distinct hosts compared without case or a trailing dot."""
        codes, uniques = self.distinct("host")
        return codes, uniques.str.lower().str.rstrip(".")

    def host(self, test: Callable[[pd.Series[Any]], pd.Series[Any]]) -> Mask:
        codes, keys = self.host_key
        return _spread(codes, test(keys))

    @cached_property
    def folded_codes(self) -> tuple[np.ndarray[Any, np.dtype[np.object_]], Mask]:
        """``user_code_key`` of each set user code, and where the codes are set."""
        values = _texts(self.frame["user_code"])
        is_set = ~pd.isna(values)
        return _objects(list(map(user_code_key, values[is_set]))), is_set

    def user_keys(self) -> pd.Series[Any]:
        """User codes compared without case (string, NA where unset)."""
        if self._keys is None:
            folded, is_set = self.folded_codes
            self._keys = pd.Series(strings_at(folded, is_set), index=self.frame.index)
        return self._keys


def _spread(codes: np.ndarray[Any, Any], verdict: pd.Series[Any]) -> Mask:
    """Per-distinct verdicts to per-row ones; code -1 (unset) reads the appended False."""
    per_code: Mask = np.append(verdict.fillna(False).to_numpy(dtype=bool), False)
    rows: Mask = per_code[codes]
    return rows


def _texts(column: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.object_]]:
    """The values as text in an object array, in which anything but a ``str`` is unset.

    Loops over this array cost one Python step per value; pandas' string accessor takes
    several (NA masks, result conversion), which is what made a million-row audit slow.
    """
    if not isinstance(column.dtype, pd.StringDtype):
        column = column.astype("string")
    values: np.ndarray[Any, np.dtype[np.object_]] = column.to_numpy(dtype=object)
    return values


def _objects(values: list[str]) -> np.ndarray[Any, np.dtype[np.object_]]:
    array: np.ndarray[Any, np.dtype[np.object_]] = np.fromiter(
        values, dtype=object, count=len(values)
    )
    return array


_NOTHING: Final[np.ndarray[Any, np.dtype[np.object_]]] = np.array([], dtype=object)


def _repeated(text: str, count: int) -> np.ndarray[Any, np.dtype[np.object_]]:
    """``text`` ``count`` times, as one object: ``np.full`` would convert it through a
    fixed-width array, making a new string per cell (slower, and each hashed again later)."""
    return _objects([text]).repeat(count)


def _user_keys(column: pd.Series[Any]) -> pd.Series[Any]:
    """``user_code_key`` per set value, in one pass."""
    values = _texts(column)
    is_set = ~pd.isna(values)
    folded = _objects(list(map(user_code_key, values[is_set])))
    return pd.Series(strings_at(folded, is_set), index=column.index)


def _series(f: pd.DataFrame, mask: Mask) -> pd.Series[bool]:
    return pd.Series(mask, index=f.index, dtype=bool)


_AT_DOMAIN = re.compile(r"^.*@")


def _domain(value: str) -> str:
    """The lower-cased text after the last ``@`` (as ``str.replace(r"^.*@", "")`` would)."""
    lowered = value.lower()
    if "\n" in lowered:  # the pattern's "." stops at a line break: only the first line counts
        return _AT_DOMAIN.sub("", lowered)
    return lowered.rpartition("@")[2]


def _domains(values: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.object_]]:
    """:func:`_domain` of every value (all ``str``), by string methods mapped in C."""
    lowered = list(map(str.lower, values))
    if "\n" in "".join(lowered):
        return _objects(list(map(_domain, values)))
    return _objects(list(map(itemgetter(2), map(str.rpartition, lowered, repeat("@")))))


# --------------------------------------------------------------------------- rule checks


def _invalid_address(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["_bad_address"].notna()


def _missing_from(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.unset("from_address") & ctx.shared.unset("email"))


def _from_username_mismatch(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    # Domains only for rows that have both: most users inherit the org's login.
    username, sender = _texts(f["username"]), _texts(f["from_address"])
    rows = ~ctx.shared.unset("username") & ~ctx.shared.unset("from_address")
    # A user name that is the From address itself has its domain: no need to split either
    # (the usual case: people sign in with their own address).
    rows[rows] = username[rows] != sender[rows]
    mismatch = np.zeros(len(f), dtype=bool)
    users = username[rows]
    signs_in_at = np.fromiter(map(contains, users, repeat("@")), dtype=bool, count=len(users))
    mismatch[rows] = signs_in_at & (_domains(users) != _domains(sender[rows]))
    return _series(f, mismatch)


def _tls_disabled(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    shared = ctx.shared
    return _series(f, shared.smtp & shared.unencrypted)


def _plaintext_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    shared = ctx.shared
    return _series(f, shared.password_auth & shared.unencrypted)


def _port_security_mismatch(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    """``settings.port_security_conflict`` itself, asked once per distinct (port, security)."""
    shared = ctx.shared
    port_codes, ports = shared.distinct("port")
    security_codes, securities = shared.distinct("security")
    # One code per pair; -1 (unset) in either column can never conflict.
    width = len(securities) + 1
    pairs = (port_codes + 1) * width + (security_codes + 1)
    verdict: dict[int, bool] = {}
    for pair in np.unique(pairs[shared.smtp]).tolist():
        port_code, security_code = divmod(int(pair), width)
        if port_code == 0 or security_code == 0:
            verdict[pair] = False
            continue
        try:
            security = Security(str(securities.iloc[security_code - 1]))
        except ValueError:  # an unknown spelling: no pair to judge
            verdict[pair] = False
            continue
        port = int(ports.iloc[port_code - 1])
        verdict[pair] = port_security_conflict(port, security) is not None
    conflicting = [pair for pair, bad in verdict.items() if bad]
    return _series(f, shared.smtp & np.isin(pairs, conflicting))


def _ip_host(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.each("host", lambda host: host_ip(host) is not None))


def _cloud_requires_smtp(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    edition = ctx.org.edition

    def refused(text: str) -> bool:
        mode = read_choice(Mode, text, MODE_ALIASES)
        if mode is None:  # an unknown spelling passes only where every mode would
            return not all(edition_allows_mode(edition, known) for known in Mode)
        return not edition_allows_mode(edition, mode)

    return _series(f, ctx.shared.each("mode", refused))


def _cloud_user_code(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if ctx.org.edition is not Edition.CLOUD:
        return _false(f)
    return ~f["_code_is_address"].fillna(False).astype(bool)


def _override_incomplete(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    nothing_set = f["_override"].to_numpy(dtype=bool).copy()
    for name in OVERRIDE_FIELDS:
        nothing_set &= ctx.shared.unset(f"_u_{name}")
    no_host = ctx.shared.smtp & ctx.shared.unset("host")
    return _series(f, nothing_set | no_host)


def _override_redundant(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    same = np.zeros(len(f), dtype=bool)
    for name in OVERRIDE_FIELDS:
        org_value = getattr(ctx.org, name)
        if org_value is None:
            continue
        org_text = str(getattr(org_value, "value", org_value)).lower()
        column = f[f"_u_{name}"]
        if pd.api.types.is_string_dtype(column.dtype):
            # Text: one comparison per set value (hashing a million addresses into distinct
            # values would cost more than comparing them).
            values = _texts(column)
            rows = ~ctx.shared.unset(f"_u_{name}")
            same[rows] |= _objects(list(map(str.lower, values[rows]))) == org_text
        else:
            same |= ctx.shared.where(f"_u_{name}", _lower_equals(org_text))
    return _series(f, f["_override"].to_numpy(dtype=bool) & same)


def _lower_equals(text: str) -> Callable[[pd.Series[Any]], pd.Series[Any]]:
    def test(values: pd.Series[Any]) -> pd.Series[Any]:
        return values.astype("string").str.lower() == text

    return test


def _missing_secret(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if ctx.accounts_with_secret is None:
        return _false(f)
    candidates = _series(f, ctx.shared.password_auth)
    # Users sharing the org's login share its account, "org"; the caller looked the accounts
    # up in the secret store (this module does no I/O).
    account = f["user_code"].where(f["username_source"] == "user", "org")[candidates]
    held = ctx.accounts_with_secret
    has_secret = account.map(lambda name: isinstance(name, str) and name in held).astype(bool)
    missing = candidates.copy()
    missing[candidates] = ~has_secret
    return missing


def _microsoft_basic_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    microsoft = ctx.shared.host(
        lambda host: (host == "smtp.office365.com") | host.str.endswith(".outlook.com")
    )
    return _series(f, ctx.shared.password_auth & microsoft)


def _gmail_password_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    gmail = ctx.shared.host(lambda host: host == "smtp.gmail.com")
    return _series(f, ctx.shared.password_auth & gmail)


def _legacy_webdav(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.eq("mode", Mode.EXCHANGE_WEBDAV.value))


_URL_HOST = re.compile(r"^https://([^/:?#]+)", re.IGNORECASE)


def _ews_host(f: pd.DataFrame, org: OrgSettings) -> pd.Series[Any]:
    """The host each user's EWS requests go to: their own server if they set one, else the
    org's EWS URL, else the effective host (the org's server)."""
    own = (f["host_source"] == Provenance.USER.value).to_numpy()
    match = _URL_HOST.match(org.ews_url or "")
    if match is None:
        return f["host"]
    return f["host"].where(own, match[1])


def _ews_exchange_online(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    ews = ctx.shared.eq("mode", Mode.EXCHANGE_EWS.value)
    if not ews.any():
        return _false(f)
    # Only the EWS users' hosts: a few distinct values among few rows.
    codes, hosts = f["_ews_host"][ews].astype("string").array.factorize()
    online = np.zeros(len(f), dtype=bool)
    # Any Microsoft 365 mail host (smtp.office365.com too) says the mailbox is in Exchange Online.
    verdicts = pd.Series([exchange_online_host(str(h)) for h in hosts], dtype=bool)
    online[ews] = _spread(codes, verdicts)
    return _series(f, online)


def _msn_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.eq("auth", AuthType.MSN.value))


def _mapi(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.eq("mode", Mode.MAPI.value))


def _outlook(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.eq("mode", Mode.OUTLOOK.value))


def _lotus_notes(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _series(f, ctx.shared.eq("mode", Mode.LOTUS_NOTES.value))


def _provider_host_typo(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["_typo_of"].notna()


def _provider_account_mismatch(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["_mismatch_note"].notna()


def _internal_domain(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["_internal_note"].notna()


def _cloud_account_ignored(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["_cloud_ignored"].notna()


def _missing_secret_on_premises(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    """``missing-secret`` outside the cloud edition, where ``cloud-user-password`` says it."""
    if ctx.org.edition is Edition.CLOUD:
        return _false(f)
    return _missing_secret(f, ctx)


def _cloud_user_password(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    # In the cloud edition every user's account is their own code (resolve), so the same
    # lookup as missing-secret finds the users whose own password is not stored.
    if ctx.org.edition is not Edition.CLOUD:
        return _false(f)
    return _missing_secret(f, ctx)


def _duplicate_code(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    """Set codes whose key more than one user has: keys counted by code, in one hash pass."""
    folded, is_set = ctx.shared.folded_codes
    codes, keys = pd.factorize(folded)
    duplicate = np.zeros(len(f), dtype=bool)
    duplicate[is_set] = (np.bincount(codes, minlength=len(keys)) > 1)[codes]
    return _series(f, duplicate)


def _route_sender(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["enabled"] & ~f["sender_usable"]


def _route_no_recipients(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["enabled"] & (f["recipients"] == 0)


def _route_template_invalid(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["template_problem"].notna()


def _route_sender_not_sendable(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["enabled"] & f["sender_not_sendable"].notna()


def _test_failed(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if not ctx.has_history:
        return _false(f)
    # Compared as booleans: spelling a million results as text cost more than the rule.
    return f["_last_ok"].astype("boolean").eq(False).fillna(False).astype(bool)


def _test_stale(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if not ctx.has_history:
        return _false(f)
    return f["_stale"].astype(bool)


_EDIT = "Open the user's override form"

#: Every rule, in report order. Ids are stable: scripts and ``--fail-on`` users depend on them.
RULES: Final[tuple[Rule, ...]] = (
    Rule(
        "invalid-address",
        "critical",
        "{_bad_address} is not a valid email address",
        f"{_EDIT} (or the application's user record) and correct the address.",
        _invalid_address,
    ),
    Rule(
        "missing-from",
        "warning",
        "no From address is set for this user or the org, and the user has no email address",
        "Set the org's From address, or the user's email address.",
        _missing_from,
    ),
    Rule(
        "from-username-domain-mismatch",
        "warning",
        "signs in as {username} but sends From {from_address}: many servers reject or flag a "
        "From address in another domain",
        "Send From an address of the signed-in account's domain, or grant send-as rights.",
        _from_username_mismatch,
    ),
    Rule(
        "tls-disabled",
        "warning",
        "security is none: mail to {host} crosses the network unencrypted",
        "Set security to auto (STARTTLS on 587, implicit TLS on 465).",
        _tls_disabled,
    ),
    Rule(
        "plaintext-auth",
        "critical",
        "the password for {username} is sent to {host} without TLS",
        "Set security to auto, or use a server on the same host without authentication.",
        _plaintext_auth,
    ),
    Rule(
        "port-security-mismatch",
        "critical",
        "port {port} does not speak security {security}",
        "Use port 465 with implicit_tls, or 587 with starttls (or set security to auto).",
        _port_security_mismatch,
    ),
    Rule(
        "provider-host-typo",
        "critical",
        "the host {host} is not a known mail server, but one typo away from {_typo_of}: did you "
        "mean {_typo_of}?",
        f"{_EDIT} (or the org settings) and correct the host name; copy it from the provider's "
        "documentation.",
        _provider_host_typo,
    ),
    Rule(
        "provider-account-mismatch",
        "critical",
        "{_mismatch_note}",
        "Sign in at the account's own provider, or with an account of the server's provider.",
        _provider_account_mismatch,
    ),
    Rule(
        "ip-address-host",
        "warning",
        "the host {host} is an IP address: its TLS certificate rarely names it and it may change",
        "Enter the server's DNS name instead.",
        _ip_host,
    ),
    Rule(
        "cloud-requires-smtp",
        "critical",
        "the cloud edition sends only through SMTP, but mode is {mode}",
        f"{_EDIT} and clear the mode (or set it to smtp).",
        _cloud_requires_smtp,
    ),
    Rule(
        "cloud-user-code-not-email",
        "critical",
        "in the cloud edition the user code is the From address, but {user_code} is not an "
        "email address",
        "Rename the user to their email address.",
        _cloud_user_code,
    ),
    Rule(
        "override-incomplete",
        "warning",
        "the user's settings cannot send: override enabled with nothing set, or SMTP with no host",
        f"{_EDIT} and fill in the server, or untick the override to use the org's settings.",
        _override_incomplete,
    ),
    Rule(
        "override-redundant",
        "info",
        "the override repeats values the org already sets",
        f"{_EDIT} and clear the values equal to the org's, so org changes reach this user.",
        _override_redundant,
    ),
    Rule(
        "missing-secret",
        "critical",
        "sends with a password for {username}, but none is in the secret store",
        "Enter it in the Password and Confirm boxes of the org's or the user's settings form, "
        "or run mailkit secret set --profile PROFILE [--user CODE] --password-stdin.",
        _missing_secret_on_premises,
    ),
    Rule(
        "cloud-user-password",
        "critical",
        "in the cloud edition {user_code} signs in with their own password (never the org's), "
        "and none is stored for them",
        "Enter the user's own password in the Password and Confirm boxes of the user's "
        "settings form, or run mailkit secret set --profile PROFILE --user CODE "
        "--password-stdin.",
        _cloud_user_password,
    ),
    Rule(
        "cloud-account-ignored",
        "warning",
        "in the cloud edition {user_code} signs in and sends as the user code: the user's own "
        "{_cloud_ignored} ignored",
        f"{_EDIT} and clear the value (the user code is the account and the From address).",
        _cloud_account_ignored,
    ),
    Rule(
        "microsoft-basic-auth",
        "critical",
        "password authentication against Microsoft 365 ({host}): basic auth for SMTP is being "
        "turned off",
        "Switch auth to xoauth2 (OAuth) or the mode to microsoft_graph.",
        _microsoft_basic_auth,
    ),
    Rule(
        "gmail-password-auth",
        "warning",
        "password authentication against Gmail ({host}): only app passwords work, and only with "
        "2-step verification",
        "Use an app password (Google Account > Security > App passwords), or OAuth (xoauth2 or "
        "mode gmail_api).",
        _gmail_password_auth,
    ),
    Rule(
        "legacy-webdav",
        "critical",
        "mode exchange_webdav (Exchange 2000/2003) cannot send with any current Exchange",
        "Move the user to exchange_ews with the EWS URL https://HOST/EWS/Exchange.asmx, HOST "
        "being the WebDAV server (Autodiscover finds the URL when it differs), or to "
        "microsoft_graph where the server is Exchange Online (outlook.office365.com, "
        "smtp.office365.com, *.outlook.com); mailkit migrate does this for legacy settings.",
        _legacy_webdav,
    ),
    Rule(
        "ews-exchange-online",
        "warning",
        "EWS against Exchange Online ({_ews_host}) is being retired by Microsoft "
        "(October 2026 to April 2027)",
        "Switch the mode to microsoft_graph.",
        _ews_exchange_online,
    ),
    Rule(
        "msn-auth-legacy",
        "warning",
        "auth msn is the legacy name for NTLM, which most servers no longer accept",
        "Set auth to auto or xoauth2.",
        _msn_auth,
    ),
    Rule(
        "mapi-no-contact-sync",
        "info",
        "mode mapi hands the message to the workstation's mail client: no delivery result, no "
        "contact sync, and on a terminal server often no default mail client at all",
        "Prefer smtp or microsoft_graph for sends the application must confirm, and always on "
        "terminal servers.",
        _mapi,
    ),
    Rule(
        "outlook-desktop-client",
        "info",
        "mode outlook hands the message to Outlook on the workstation: mailkit gets no delivery "
        "result, and on a terminal server (Remote Desktop, Citrix) Outlook often has no profile "
        "or prompts where nobody sees it",
        "Use smtp (or microsoft_graph) for this user when the application runs on a terminal "
        "server or must confirm its sends; a test writes an .eml for Outlook to send.",
        _outlook,
    ),
    Rule(
        "lotus-notes-client",
        "warning",
        "mode lotus_notes hands the message to the Notes client on the workstation: mailkit "
        "gets no delivery result, and the client needs a Notes ID and a Domino server it can "
        "reach, which terminal servers and new workstations often lack",
        "Move the user to smtp (through the Domino server's SMTP listener or the mail "
        "gateway), which mailkit can test and diagnose.",
        _lotus_notes,
    ),
    Rule(
        "internal-domain",
        "info",
        "{_internal_note}",
        "Nothing to fix inside the network. For mail leaving it, send From an address in a "
        "public domain and use a server name that resolves where the application runs.",
        _internal_domain,
    ),
    Rule(
        "duplicate-user-code",
        "critical",
        "the user code {user_code} appears more than once (compared without case)",
        "Rename or remove the duplicate user.",
        _duplicate_code,
    ),
    Rule(
        "route-sender-unconfigured",
        "critical",
        "the {route} route sends as {user_code}, which {sender_problem}",
        "Pick a configured user as the route's sender, or set the sender to org.",
        _route_sender,
        scope="route",
    ),
    Rule(
        "route-no-recipients",
        "warning",
        "the {route} route is enabled but has no recipients",
        "Add at least one recipient to the route, or disable it.",
        _route_no_recipients,
        scope="route",
    ),
    Rule(
        "route-template-invalid",
        "critical",
        "the {route} route's subject template {template_problem}",
        "Edit the route's subject template (the org form's feature routes, or the profile's "
        "routes) and keep only the placeholders {date}, {feature}, {number}, {sender} and "
        "{title}; a route test shows the subject filled in.",
        _route_template_invalid,
        scope="route",
    ),
    Rule(
        "route-sender-not-sendable",
        "critical",
        "the {route} route sends as {user_code}, but {sender_not_sendable}",
        "Pick a sender whose mode sends from a server (smtp, microsoft_graph or exchange_ews), "
        "or change that sender's mode; then run the route's test.",
        _route_sender_not_sendable,
        scope="route",
    ),
    Rule(
        "test-failed",
        "critical",
        "the last test send failed ({_last_cause})",
        "Run a test send and follow the diagnosis' fix steps.",
        _test_failed,
    ),
    Rule(
        "test-stale",
        "info",
        "no successful test send {_stale_since}",
        "Run a test send (bulk test-send covers many users at once).",
        _test_stale,
    ),
)


# --------------------------------------------------------------------------- frames


#: The modes whose sends go to the effective host (the others use an API or a desktop client).
_HOST_MODES: Final = (Mode.SMTP.value, Mode.EXCHANGE_EWS.value)


def _sender_notes(values: np.ndarray[Any, Any], addresses: _AddressCheck) -> list[str | None]:
    """Per distinct sender address: why its internal domain matters, or None.

    The domain is judged once per distinct domain; validity (an invalid address is
    ``invalid-address``'s, not this rule's) only for the internal ones, by the audit's shared
    address check.
    """
    suffixes: dict[str, str | None] = {}
    notes: list[str | None] = [None] * len(values)
    internal: list[int] = []
    for i, value in enumerate(values):
        _, at, domain = value.rpartition("@")
        if not at:
            continue
        if domain not in suffixes:
            # A dotless domain counts here, and the validity check below drops it.
            suffixes[domain] = internal_suffix(domain)
        if suffixes[domain] is not None:
            internal.append(i)
    if not internal:
        return notes
    rows = np.array(internal)
    bad = addresses.invalid(values[rows], np.ones(len(rows), dtype=bool))
    for i, invalid in zip(rows.tolist(), bad.tolist(), strict=True):
        if invalid:
            continue
        value = values[i]
        suffix = suffixes[value.rpartition("@")[2]]
        notes[i] = (
            f"the From address {value} is in the internal domain .{suffix}: recipients outside "
            "the network cannot answer it, and their servers may refuse mail from it"
        )
    return notes


def _host_note(host: str) -> str | None:
    suffix = internal_suffix(host)
    if suffix is None:
        return None
    if suffix == host.casefold().rstrip("."):
        return (
            f"the server {host} is a name without a domain: it resolves only through this "
            "network's search domain, so only machines inside the network reach it"
        )
    return (
        f"the server {host} is in the internal domain .{suffix}: only machines inside the "
        "network reach it (not a cloud service or a home office without VPN)"
    )


def _provider_slips(shared: SharedColumns) -> tuple[pd.Series[Any], pd.Series[Any]]:
    """Per user: the provider server a typed host is one typo away from, and why the sign-in
    account cannot work at the host's provider (both NA when fine).

    The settings' own predicates (:func:`~mailkit.settings.host_typo`,
    :func:`~mailkit.settings.account_mismatch`) run once per distinct host and per distinct
    (host, user name) pair, and the answers are spread to the rows by code.
    """
    host_codes, host_values = shared.distinct("host")
    user_codes, users = shared.distinct("username")
    hosts = np.asarray(host_values, dtype=object)
    typos = np.array([*(host_typo(str(h)) for h in hosts), None], dtype=object)
    # A pair code per row: host code * (users + 1) + user code, -1 where the host is unset.
    width = len(users) + 1
    pair = np.where(
        host_codes < 0, -1, host_codes * width + np.where(user_codes < 0, len(users), user_codes)
    )
    pair_codes, pairs = pd.factorize(pair)
    # account_mismatch says something only for a host that is a known provider's server and a
    # user name at a provider's own domain (provider_mismatch's first two questions, neither
    # of which depends on the other value): ask those once per host and per domain, and the
    # predicate itself only for the pairs where both hold (none in most organisations).
    server_known = np.array([provider_for_host(str(h)) is not None for h in hosts], dtype=bool)
    # As plain objects: reading a pandas array value by value costs a Python call each.
    names = np.asarray(users, dtype=object)
    account_domains = [u.rpartition("@")[2] if "@" in u else None for u in names]
    known_domains = {
        d: provider_for_domain(d) is not None for d in set(account_domains) if d is not None
    }
    # An unset user name (code len(users)) is never known: the appended False.
    account_known = np.array(
        [*(d is not None and known_domains[d] for d in account_domains), False], dtype=bool
    )
    # Pair code -1: no host.
    valid = pairs >= 0
    host_of, user_of = np.divmod(np.where(valid, pairs, 0), width)
    asked = valid & np.append(server_known, False)[host_of] & account_known[user_of]
    said = np.full(len(pairs) + 1, None, dtype=object)
    for i in np.flatnonzero(asked).tolist():
        said[i] = account_mismatch(str(hosts[host_of[i]]), str(names[user_of[i]]))
    # Spread by take from the distinct answers (code -1 reads the last, None): pandas validates
    # a column of many NA cells several times slower.
    index = shared.frame.index
    return (
        pd.Series(pd.array(typos, dtype="string").take(host_codes), index=index),
        pd.Series(pd.array(said, dtype="string").take(pair_codes), index=index),
    )


def _internal_notes(shared: SharedColumns, addresses: _AddressCheck) -> pd.Series[Any]:
    """Why an internal domain matters for each user (From address, server), or NA.

    The effective From is the one recipients see; the user's email counts when no From is set.
    The server counts only for the modes that connect to one: SMTP's host, EWS's endpoint.
    Notes are made per distinct (sender, server) pair that has one and spread to the rows by
    code, so an organisation where everyone sends From an internal address costs no loop over
    its users.
    """
    frame = shared.frame
    sender = frame["from_address"]
    senders: Any
    if shared.unset("from_address").any():
        sender_codes, senders = sender.fillna(frame["email"]).astype("string").array.factorize()
    else:
        sender_codes, senders = shared.distinct("from_address")
    # The server: the host, but an EWS user's endpoint instead (coded after the hosts).
    host_codes, hosts = shared.distinct("host")
    server_codes = host_codes.copy()  # the shared codes stay as they are
    ews = shared.eq("mode", Mode.EXCHANGE_EWS.value)
    ews_codes, ews_hosts = frame["_ews_host"][ews].astype("string").array.factorize()
    server_codes[ews] = np.where(ews_codes < 0, -1, ews_codes + len(hosts))
    connects = shared.isin("mode", _HOST_MODES)
    server_codes = np.where(connects, server_codes, -1)
    servers = [*hosts, *ews_hosts]
    sender_notes = np.array(
        [*_sender_notes(np.asarray(senders, dtype=object), addresses), None], dtype=object
    )
    server_notes = np.array([*(_host_note(str(h)) for h in servers), None], dtype=object)
    # Code -1 (unset) reads the appended None.
    rows = pd.notna(sender_notes)[sender_codes] | pd.notna(server_notes)[server_codes]
    if not rows.any():
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    width = len(servers) + 1
    keys = (sender_codes[rows] + 1) * width + (server_codes[rows] + 1)
    pairs, inverse = np.unique(keys, return_inverse=True)
    per_pair = []
    for pair in pairs.tolist():
        sender_code, server_code = divmod(pair, width)
        parts = (sender_notes[sender_code - 1], server_notes[server_code - 1])
        per_pair.append("; ".join(p for p in parts if p is not None))
    texts = np.array(per_pair, dtype=object)[inverse.reshape(-1)]
    return pd.Series(strings_at(texts, rows), index=frame.index)


def _cloud_ignored(org: OrgSettings, table: pd.DataFrame) -> pd.Series[Any]:
    """In the cloud edition, the user's own fields that differ from their code, or NA."""
    out = pd.Series(pd.NA, index=table.index, dtype="string")
    if org.edition is not Edition.CLOUD:
        return out
    # Only a value that is set and not spelled exactly as the code can conflict; the predicate
    # decides for those (most cloud users set neither, or repeat their code).
    code = table["user_code"]
    rows = np.zeros(len(table), dtype=bool)
    for name in ("username", "from_address"):
        rows |= (table[name].notna() & table[name].ne(code)).fillna(True).to_numpy(dtype=bool)
    labels = {"username": "user name", "from_address": "From address"}
    found: list[str | None] = []
    for code, username, sender in table.loc[
        rows, ["user_code", "username", "from_address"]
    ].itertuples(index=False):
        if not isinstance(code, str):
            found.append(None)
            continue
        given = {"username": username, "from_address": sender}
        names = cloud_account_conflicts(
            code,
            username if isinstance(username, str) else None,
            sender if isinstance(sender, str) else None,
        )
        shown = " and ".join(f"{labels[n]} {given[n]}" for n in names)
        found.append(f"{shown} {'are' if len(names) > 1 else 'is'}" if names else None)
    out[rows] = pd.array(found, dtype="string")
    return out


def _stripped(column: pd.Series[Any]) -> pd.api.extensions.ExtensionArray:
    """Text with spaces and tabs trimmed, blank as NA — one list pass over the values."""
    values = _texts(column)
    is_set = ~pd.isna(values)
    # A line break stays: it is an error the address and host checks report.
    text = values[is_set]
    stripped = _objects(list(map(str.strip, text, repeat(" \t", len(text)))))
    blank = stripped == ""
    if blank.any():
        is_set[is_set] = ~blank
        stripped = stripped[~blank]
    elif column.dtype == _STRING and not (stripped != text).any():
        # Already trimmed text (a loaded users file is): the column as it is, not a copy.
        kept: pd.api.extensions.ExtensionArray = column.array
        return kept
    result: pd.api.extensions.ExtensionArray = strings_at(stripped, is_set)
    return result


_STRING: Final = pd.StringDtype()


#: The enum and other spellings of each choice column, as the settings read them.
_CHOICES: Final[dict[str, tuple[type[StrEnum], Mapping[str, StrEnum]]]] = {
    "mode": (Mode, MODE_ALIASES),
    "security": (Security, SECURITY_ALIASES),
    "auth": (AuthType, AUTH_ALIASES),
}


def _folded(column: pd.Series[Any], name: str) -> pd.api.extensions.ExtensionArray:
    """A choice column spelled as its values are, read by ``settings.read_choice`` once per
    distinct spelling. A spelling it does not know stays (in its compared form) for the
    messages to show; blank is unset."""
    enum_cls, aliases = _CHOICES[name]
    codes, uniques = column.astype("string").array.factorize()
    spelled: list[str | None] = []
    for text in uniques:
        member = read_choice(enum_cls, text, dict(aliases))
        key = choice_key(text)
        spelled.append(member.value if member is not None else key or None)
    return pd.array(spelled, dtype="string").take(codes, allow_fill=True)


def _flags(column: pd.Series[Any]) -> pd.Series[bool]:
    """The override tick box; an unreadable one does not override."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.fillna(False).astype(bool)
    flags = column.astype("object")
    verdict: dict[Any, bool] = {}
    for value in pd.unique(flags.dropna()):
        try:
            verdict[value] = bool(parse_flag(value, default=False))
        except (ValueError, TypeError):
            verdict[value] = False
    # Through "boolean": with no readable flag at all the map gives float NaNs, and filling
    # those with False is deprecated in pandas.
    return flags.map(verdict).astype("boolean").fillna(False).astype(bool)


def _ports(column: pd.Series[Any]) -> pd.Series[Any]:
    """Ports as ``settings.check_port`` reads them (once per distinct value) as Int64; what it
    refuses is NA."""
    values = column
    if column.dtype == object:
        # Hashing makes True, 1 and 1.0 one value; a tick box is no port 1.
        values = column.map(lambda v: "true/false" if isinstance(v, bool | np.bool_) else v)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)

    def port(value: Any) -> int | None:
        if isinstance(value, np.generic):
            value = value.item()
        try:
            return check_port(value)
        except ValueError:
            return None

    ports = pd.array([port(value) for value in uniques], dtype="Int64")
    return pd.Series(ports.take(codes, allow_fill=True), index=column.index)


def _canonical(users: pd.DataFrame) -> pd.DataFrame:
    """The users table with every canonical column, enum spellings folded, flags parsed."""
    columns: dict[str, Any] = {}
    for name in USERS_COLUMNS:
        if name in users:
            column = users[name].reset_index(drop=True)
        else:
            column = pd.Series(pd.NA, index=pd.RangeIndex(len(users)), dtype="object")
        if name == "override_enabled":
            columns[name] = _flags(column).to_numpy(copy=True)
        elif name == "port":
            columns[name] = _ports(column).array
        elif name in _CHOICES:
            columns[name] = _folded(column, name)
        else:
            columns[name] = _stripped(column)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(users)), copy=False)


def effective_settings(org: OrgSettings, users: pd.DataFrame) -> pd.DataFrame:
    """Effective settings with provenance for an untrusted users table (the report's view)."""
    return effective_frame(org, _canonical(users))


def audit_frame(
    org: OrgSettings,
    users: pd.DataFrame,
    *,
    history: pd.DataFrame | None = None,
    stale_days: int = 30,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Effective settings plus the columns rules need (helpers start with ``_``)."""
    return _audit_frame(org, users, history=history, stale_days=stale_days, now=now)[0]


def _audit_frame(
    org: OrgSettings,
    users: pd.DataFrame,
    *,
    history: pd.DataFrame | None,
    stale_days: int,
    now: datetime | None,
) -> tuple[pd.DataFrame, SharedColumns]:
    """:func:`audit_frame`, and the facts about its columns that its helpers found (distinct
    hosts, user names, modes...), for the rules to share rather than find again."""
    table = _canonical(users)
    frame = effective_frame(org, table)
    shared = SharedColumns(frame)
    addresses = _AddressCheck()  # each domain and each unusual value judged once, for all
    frame["email"] = table["email"]
    frame["_override"] = table["override_enabled"]
    for name in OVERRIDE_FIELDS:
        frame[f"_u_{name}"] = table[name].where(table["override_enabled"])
    frame["_bad_address"] = _bad_addresses(table, frame, addresses)
    frame["_ews_host"] = _ews_host(frame, org)
    frame["_internal_note"] = _internal_notes(shared, addresses)
    frame["_typo_of"], frame["_mismatch_note"] = _provider_slips(shared)
    frame["_cloud_ignored"] = _cloud_ignored(org, table)
    # Only the cloud edition needs user codes to be addresses (and there From = user code).
    if org.edition is Edition.CLOUD:
        frame["_code_is_address"] = addresses.verdicts(frame["user_code"])
    else:
        frame["_code_is_address"] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    frame["_last_ok"] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    frame["_last_cause"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["_stale"] = False
    frame["_stale_since"] = pd.Series("ever", index=frame.index, dtype="string")
    if history is not None:
        _join_history(frame, history, stale_days, now)
    return frame, shared


def _join_history(
    frame: pd.DataFrame, history: pd.DataFrame, stale_days: int, now: datetime | None
) -> None:
    """Last result and last success per user (user codes compared without case)."""
    moment = now if now is not None else datetime.now(UTC)
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if len(history):
        hist = pd.DataFrame(
            {
                "key": history["user_code"].astype("string").map(user_code_key, na_action="ignore"),
                "at": pd.to_datetime(history["at"], utc=True, errors="coerce", format="mixed"),
                "ok": history["ok"].astype("boolean"),
                "cause": history.get("cause", pd.Series(pd.NA, index=history.index)).astype(
                    "string"
                ),
            }
        ).dropna(subset=["key", "at"])
    else:
        hist = pd.DataFrame({"key": [], "at": [], "ok": [], "cause": []})
    hist = hist.astype({"key": "string", "ok": "boolean", "cause": "string"})
    hist["at"] = pd.to_datetime(hist["at"], utc=True)
    hist = hist.sort_values("at", kind="stable")
    if hist.empty:  # no user ever tested: every one is stale, with nothing to look up
        frame["_last_cause"] = pd.Series("no cause recorded", index=frame.index, dtype="string")
        frame["_stale"] = True
        return
    keys = _user_keys(frame["user_code"])
    last = hist.groupby("key").tail(1).set_index("key")

    def lookup(values: pd.Series[Any]) -> pd.Series[Any]:
        return pd.Series(values.reindex(keys.to_numpy()).to_numpy(), index=frame.index)

    frame["_last_ok"] = lookup(last["ok"]).astype("boolean")
    frame["_last_cause"] = lookup(last["cause"]).astype("string").fillna("no cause recorded")
    success = hist[hist["ok"].fillna(False).astype(bool)].groupby("key")["at"].max()
    last_success = pd.to_datetime(lookup(success), utc=True)
    cutoff = stamp - timedelta(days=stale_days)
    frame["_stale"] = (last_success.isna() | (last_success < cutoff)).fillna(True).astype(bool)
    # Formatted once per distinct moment; a user never tested reads "ever".
    codes, moments = pd.factorize(pd.to_datetime(last_success, utc=True))
    days = pd.Index(moments).strftime("since %Y-%m-%d")
    frame["_stale_since"] = pd.array(["ever", *days], dtype="string").take(codes + 1)


def _routes_frame(org: OrgSettings, shared: SharedColumns) -> pd.DataFrame:
    """One row per feature route: whether its sender exists and can send."""
    frame = shared.frame
    senders = {user_code_key(route.sender) for route in org.routes.values()} - {"org"}
    known: dict[str, bool] = {}
    modes: dict[str, Mode | None] = {}
    if senders:
        keys = shared.user_keys()
        wanted = keys.isin(list(senders)).fillna(False).astype(bool)
        # Usability only for the few rows that are senders.
        mode, host = frame["mode"][wanted], frame["host"][wanted]
        usable = ~(_eq(mode, Mode.SMTP.value) & host.isna()) & _isin(mode, [m.value for m in Mode])
        known = dict(zip(keys[wanted], usable, strict=True))
        values = {m.value: m for m in Mode}
        modes = {key: values.get(str(value)) for key, value in zip(keys[wanted], mode, strict=True)}
    org_usable = not (
        (org.mode in (None, Mode.SMTP) and org.host is None) or org.mode is Mode.EXCHANGE_WEBDAV
    )
    rows = []
    for name, route in org.routes.items():
        sender = route.sender
        if user_code_key(sender) == "org":
            ok, problem = org_usable, "has no usable mode or server in the org's settings"
        elif user_code_key(sender) not in known:
            ok, problem = False, "is not a user"
        else:
            ok, problem = bool(known[user_code_key(sender)]), "has no usable mode or server"
        key = user_code_key(sender)
        sender_mode = org.mode if key == "org" else modes.get(key)
        rows.append(
            {
                "user_code": sender,
                "route": name,
                "enabled": route.enabled,
                "recipients": len(route.recipients),
                "sender_usable": ok,
                "sender_problem": problem,
                # The settings' own predicates, once per route: a stored route that bypassed
                # validation is reported with the validator's words.
                "template_problem": subject_template_problem(str(route.subject_template)),
                "sender_not_sendable": route_sender_problem(sender_mode),
            }
        )
    columns = [
        "user_code",
        "route",
        "enabled",
        "recipients",
        "sender_usable",
        "sender_problem",
        "template_problem",
        "sender_not_sendable",
    ]
    return pd.DataFrame(rows, columns=columns).astype({"enabled": bool, "sender_usable": bool})


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _render(
    template: str, rows: Mapping[str, pd.api.extensions.ExtensionArray], count: int
) -> np.ndarray[Any, np.dtype[np.object_]]:
    """Fill ``{column}`` placeholders (unset values read as "(not set)").

    Once per distinct combination of the placeholders' values, spread to the rows by code: a
    rule that names a handful of hosts for a hundred thousand users formats a handful of
    messages. Combinations are coded by hashing (no sort), and each message is joined from
    the template's text and the combination's values in one ``str.join``, mapped in C.
    """
    parts = _PLACEHOLDER.split(template)
    columns = parts[1::2]
    if not columns:
        return _repeated(template, count)
    codes: list[np.ndarray[Any, Any]] = []
    values: list[np.ndarray[Any, Any]] = []
    for name in columns:
        text = pd.Series(rows[name], copy=False).astype("string").fillna("(not set)")
        code, uniques = text.factorize()
        codes.append(code)
        values.append(np.asarray(uniques, dtype=object))
    if len(codes) == 1:  # one placeholder: its distinct values are the combinations
        inverse, picked = codes[0], values
    else:
        shape = [max(len(v), 1) for v in values]
        inverse, combos = pd.factorize(np.ravel_multi_index(codes, shape))
        picked = [v[c] for v, c in zip(values, np.unravel_index(combos, shape), strict=True)]
    # The template's text (repeated) around each placeholder's values, in order.
    pieces: list[Iterable[str]] = [repeat(parts[0])]
    for values_of, literal in zip(picked, parts[2::2], strict=True):
        pieces += [values_of.tolist(), repeat(literal)]
    # The repeats are endless: the values' length is the combinations'.
    rendered = list(map("".join, zip(*pieces, strict=False)))
    messages: np.ndarray[Any, np.dtype[np.object_]] = _objects(rendered)[inverse]
    return messages


def audit(
    org: OrgSettings,
    users: pd.DataFrame,
    *,
    accounts_with_secret: Collection[str] | None = None,
    history: pd.DataFrame | None = None,
    stale_days: int = 30,
    now: datetime | None = None,
    domains: Mapping[DomainQuery, DomainHealth] | None = None,
) -> pd.DataFrame:
    """Every finding for ``users`` under ``org``: one row per user and rule that fires.

    ``users`` is the canonical users table (as read from CSV, Excel, SQL or the store).
    ``accounts_with_secret`` (user codes, or ``"org"``, whose password is stored; see
    :func:`mailkit.secrets.accounts_with_secret`) enables ``missing-secret``; None means the
    secrets were not checked. ``history`` (the store's ``history_frame()``)
    enables ``test-failed`` and ``test-stale``. ``domains`` (what
    :func:`mailkit.audit.domains.check_user_domains` found) adds each user's sending-domain
    findings (``spf-missing``, ``dmarc-policy-none`` …); None means domains were not checked.
    """
    frame, shared = _audit_frame(org, users, history=history, stale_days=stale_days, now=now)
    routes = _routes_frame(org, shared)
    ctx = AuditContext(
        org=org,
        accounts_with_secret=(
            None if accounts_with_secret is None else frozenset(accounts_with_secret)
        ),
        has_history=history is not None,
        shared=shared,
    )
    rank: dict[str, int] = {severity: i for i, severity in enumerate(SEVERITIES)}
    # One piece per rule: its severity's rank and its findings' columns as object arrays,
    # made into one frame at the end (a frame per rule, concatenated, copies every cell).
    pieces: list[tuple[int, list[np.ndarray[Any, Any]]]] = []
    for rule in RULES:
        source = routes if rule.scope == "route" else frame
        mask = rule.check(source, ctx).to_numpy(dtype=bool)
        if not mask.any():
            continue
        # Only the columns the finding shows, as arrays: a hit copies those rows' cells, not
        # the whole frame (nor builds a frame of them).
        shown = dict.fromkeys(["user_code", *_PLACEHOLDER.findall(rule.message)])
        hits = {name: source[name].array[mask] for name in shown}
        count = int(mask.sum())
        user_codes = pd.Series(hits["user_code"], copy=False).astype("string")
        codes = user_codes.to_numpy(dtype=object, na_value="")
        pieces.append(
            (
                rank[rule.severity],
                [
                    codes,
                    _repeated(rule.id, count),
                    _repeated(rule.severity, count),
                    _render(rule.message, hits, count),
                    _repeated(rule.fix, count),
                ],
            )
        )
    if domains is not None:
        # Loaded only when domains were checked: the DNS records' module is big to import.
        from mailkit.audit.domainrules import domain_pieces

        for piece in domain_pieces(frame, domains):
            columns = [piece[name].to_numpy(dtype=object) for name in FINDINGS_COLUMNS]
            pieces.append((rank[str(piece["severity"].iat[0])], columns))
    if not pieces:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FINDINGS_COLUMNS})
    # Each piece is one rule, so one severity: ordering the pieces (a stable sort, rules keep
    # their report order within a severity) orders the rows without moving a million of them.
    pieces.sort(key=lambda piece: piece[0])
    findings: dict[str, pd.api.extensions.ExtensionArray] = {}
    for i, name in enumerate(FINDINGS_COLUMNS):
        parts = [columns[i] for _, columns in pieces]
        for _, columns in pieces:  # each piece's column goes once it is copied: a lower peak
            columns[i] = _NOTHING
        findings[name] = pd.array(np.concatenate(parts), dtype=str, copy=False)
        del parts
    # The arrays as they are: a frame from a dict copies its columns unless told not to.
    return pd.DataFrame(findings, copy=False)
