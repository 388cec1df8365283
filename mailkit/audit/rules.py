"""Audit rules: what is wrong or risky in every user's effective settings, and how to fix it.

Pure and vectorised. The effective settings are resolved once for the whole table, then each
rule is a boolean mask over its columns, so a million users cost a few column operations per
rule, not a million Python calls. Rules are declared data (:data:`RULES`) so that the CLI, the
dashboard and the tests list the same ids, severities and fixes.

Input is whatever an application exported: bad addresses, unknown modes, ports that are not
numbers. Nothing here raises on such values; bad addresses become ``invalid-address`` findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from mailkit.resolve import effective_frame
from mailkit.secrets import SecretStore, secret_key
from mailkit.settings import (
    OVERRIDE_FIELDS,
    AuthType,
    Edition,
    Mode,
    OrgSettings,
    Security,
    check_address,
    parse_flag,
)
from mailkit.users import USERS_COLUMNS

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
    secrets: SecretStore | None
    profile: str
    has_history: bool


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


def _false(frame: pd.DataFrame) -> pd.Series[bool]:
    mask: pd.Series[bool] = pd.Series(False, index=frame.index, dtype=bool)
    return mask


def _eq(column: pd.Series[Any], value: str) -> pd.Series[bool]:
    return (column == value).fillna(False).astype(bool)


def _isin(column: pd.Series[Any], values: Iterable[str]) -> pd.Series[bool]:
    return column.isin(list(values)).fillna(False).astype(bool)


#: A plain ASCII dot-atom local part: the shape nearly every address in an export has.
_PLAIN_ADDRESS = re.compile(
    r"^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([^@\s]+)\Z"
)


def _check_each(values: Iterable[str]) -> dict[str, bool]:
    verdict: dict[str, bool] = {}
    for value in values:
        try:
            check_address(value)
        except ValueError:
            verdict[value] = False
        else:
            verdict[value] = True
    return verdict


def _valid_addresses(values: pd.Series[Any]) -> pd.Series[bool]:
    """True where the value is a valid address, NA where unset — as ``check_address`` says.

    ``check_address`` is strict but costs tens of microseconds, too slow for a million user
    codes. A plain ASCII local part is valid by its shape alone (a regex, per column), and the
    domain's verdict does not depend on the local part, so the strict check runs once per
    distinct domain (as ``postmaster@domain``) plus once per distinct unusual value.
    """
    codes, uniques = pd.factorize(values.astype("string"))
    verdict = _valid_unique(pd.Series(uniques, dtype="string")).astype("boolean").array
    return pd.Series(verdict.take(codes, allow_fill=True), index=values.index, dtype="boolean")


def _valid_unique(text: pd.Series[Any]) -> pd.Series[bool]:
    parts = text.str.extract(_PLAIN_ADDRESS)
    local, domain = parts[0].astype("string"), parts[1].astype("string")
    plain = (local.str.len() <= 64).fillna(False) & (text.str.len() <= 254).fillna(False)
    domains = _check_each(f"postmaster@{d}" for d in domain[plain].dropna().unique())
    result = pd.Series(pd.NA, index=text.index, dtype="boolean")
    result[plain] = ("postmaster@" + domain[plain]).map(domains).astype("boolean")
    unusual = text.notna() & ~plain
    others = _check_each(str(v) for v in text[unusual].unique())
    result[unusual] = text[unusual].map(others).astype("boolean")
    return result


_IP_HOST = re.compile(r"\[?(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%\w]*)\]?")

_PASSWORD_AUTHS: Final = (
    AuthType.LOGIN.value,
    AuthType.PLAIN.value,
    AuthType.CRAM_MD5.value,
    AuthType.NTLM.value,
    AuthType.MSN.value,
)


def _password_auth(f: pd.DataFrame) -> pd.Series[bool]:
    """SMTP sends that sign in with a password: a password mechanism, or ``auto`` + a user name."""
    smtp = _eq(f["mode"], Mode.SMTP.value)
    named = _isin(f["auth"], _PASSWORD_AUTHS)
    auto_with_user = _eq(f["auth"], AuthType.AUTO.value) & f["username"].notna()
    return smtp & (named | auto_with_user)


def _host(f: pd.DataFrame) -> pd.Series[Any]:
    return f["host"].str.lower().str.rstrip(".")


def _domain(column: pd.Series[Any]) -> pd.Series[Any]:
    return column.str.lower().str.replace(r"^.*@", "", regex=True)


# --------------------------------------------------------------------------- rule checks


def _invalid_address(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["_bad_address"].notna()


def _missing_from(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["from_address"].isna() & f["email"].isna()


def _from_username_mismatch(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    user_domain = _domain(f["username"])
    from_domain = _domain(f["from_address"])
    has_both = (
        f["username"].str.contains("@", regex=False).fillna(False) & f["from_address"].notna()
    )
    return (has_both & (user_domain != from_domain)).fillna(False).astype(bool)


def _tls_disabled(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _eq(f["mode"], Mode.SMTP.value) & _eq(f["security"], Security.NONE.value)


def _plaintext_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _password_auth(f) & _eq(f["security"], Security.NONE.value)


def _port_security_mismatch(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    # The same pairs as settings.port_security_conflict, as column operations.
    port = f["port"]
    implicit_on_plain = _isin(port.astype("string"), ("25", "587")) & _eq(
        f["security"], Security.IMPLICIT_TLS.value
    )
    plain_on_465 = _eq(port.astype("string"), "465") & _isin(
        f["security"], (Security.STARTTLS.value, Security.NONE.value)
    )
    return _eq(f["mode"], Mode.SMTP.value) & (implicit_on_plain | plain_on_465)


def _ip_host(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["host"].str.fullmatch(_IP_HOST).fillna(False).astype(bool)


def _cloud_requires_smtp(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if ctx.org.edition is not Edition.CLOUD:
        return _false(f)
    return ~_eq(f["mode"], Mode.SMTP.value)


def _cloud_user_code(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if ctx.org.edition is not Edition.CLOUD:
        return _false(f)
    return ~f["_code_is_address"].fillna(False).astype(bool)


def _override_incomplete(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    nothing_set = f["_override"] & f[[f"_u_{c}" for c in OVERRIDE_FIELDS]].isna().all(axis=1)
    no_host = _eq(f["mode"], Mode.SMTP.value) & f["host"].isna()
    return nothing_set | no_host


def _override_redundant(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    same = _false(f)
    for name in OVERRIDE_FIELDS:
        org_value = getattr(ctx.org, name)
        if org_value is None:
            continue
        org_text = str(getattr(org_value, "value", org_value)).lower()
        same |= _eq(f[f"_u_{name}"].astype("string").str.lower(), org_text)
    return f["_override"] & same


def _missing_secret(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if ctx.secrets is None:
        return _false(f)
    candidates = _password_auth(f)
    # The one per-user lookup: a secret store has no bulk read. It runs only for the rows that
    # need a password, once per distinct account (users sharing the org's login share "org").
    account = f["user_code"].where(f["username_source"] == "user", "org")[candidates]
    found: dict[str, bool] = {}
    for name in account.dropna().unique():
        try:
            key = secret_key(ctx.profile, str(name), "password")
        except ValueError:
            found[str(name)] = False  # a code that cannot name a secret has none
            continue
        found[str(name)] = ctx.secrets.get(key) is not None
    has_secret = account.map(found).fillna(False).astype(bool)
    missing = candidates.copy()
    missing[candidates] = ~has_secret
    return missing


def _microsoft_basic_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    host = _host(f)
    microsoft = _eq(host, "smtp.office365.com") | host.str.endswith(".outlook.com").fillna(False)
    return _password_auth(f) & microsoft.astype(bool)


def _gmail_password_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _password_auth(f) & _eq(_host(f), "smtp.gmail.com")


def _legacy_webdav(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _eq(f["mode"], Mode.EXCHANGE_WEBDAV.value)


def _ews_exchange_online(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    url = (ctx.org.ews_url or "").lower()
    online = re.match(r"https://outlook\.office365\.com(?:[:/]|$)", url) is not None
    if not online:
        return _false(f)
    return _eq(f["mode"], Mode.EXCHANGE_EWS.value)


def _msn_auth(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _eq(f["auth"], AuthType.MSN.value)


def _mapi(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return _eq(f["mode"], Mode.MAPI.value)


def _duplicate_code(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    key = f["user_code"].str.casefold()
    return (key.duplicated(keep=False) & key.notna()).astype(bool)


def _route_sender(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["enabled"] & ~f["sender_usable"]


def _route_no_recipients(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    return f["enabled"] & (f["recipients"] == 0)


def _test_failed(f: pd.DataFrame, ctx: AuditContext) -> pd.Series[bool]:
    if not ctx.has_history:
        return _false(f)
    return _eq(f["_last_ok"].astype("string"), "False")


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
        "Enter the password in the settings form (it is kept in the OS keyring).",
        _missing_secret,
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
        "Migrate the user to smtp, exchange_ews or microsoft_graph.",
        _legacy_webdav,
    ),
    Rule(
        "ews-exchange-online",
        "warning",
        "EWS against Exchange Online is being retired by Microsoft",
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
        "mode mapi hands the message to the workstation's mail client: no delivery result and "
        "no contact sync",
        "Prefer smtp or microsoft_graph for sends the application must confirm.",
        _mapi,
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


def _canonical(users: pd.DataFrame) -> pd.DataFrame:
    """The users table with every canonical column, enum spellings folded, flags parsed."""
    table = users.copy()
    for column in USERS_COLUMNS:
        if column not in table:
            table[column] = pd.NA
    table = table[list(USERS_COLUMNS)].reset_index(drop=True)
    for column in USERS_COLUMNS:
        if column in ("override_enabled", "port"):
            continue
        text = table[column].astype("string").str.strip(" \t")  # a line break stays: it is an error
        table[column] = text.mask(text == "")
    for column in ("mode", "security", "auth"):
        folded = table[column].str.lower().str.replace(r"[\s-]", "_", regex=True)
        table[column] = folded.replace({"ssl": "implicit_tls", "tls": "starttls"})
    flags = table["override_enabled"].astype("object")
    verdict: dict[Any, bool] = {}
    for value in pd.unique(flags.dropna()):
        try:
            verdict[value] = bool(parse_flag(value, default=False))
        except (ValueError, TypeError):
            verdict[value] = False  # an unreadable tick box does not override
    table["override_enabled"] = flags.map(verdict).fillna(False).astype(bool)
    port = pd.to_numeric(table["port"].astype("string").str.strip(), errors="coerce")
    table["port"] = port.where((port >= 1) & (port <= 65535) & (port % 1 == 0)).astype("Int64")
    return table


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
    table = _canonical(users)
    frame = effective_frame(org, table)
    frame["email"] = table["email"]
    frame["_override"] = table["override_enabled"]
    for name in OVERRIDE_FIELDS:
        frame[f"_u_{name}"] = table[name].where(table["override_enabled"])
    bad = pd.Series(pd.NA, index=frame.index, dtype="string")
    for column in (table["email"], frame["from_address"]):
        valid = _valid_addresses(column)
        bad = bad.fillna(column.astype("string").where(valid.eq(False).fillna(False)))
    frame["_bad_address"] = bad
    # Only the cloud edition needs user codes to be addresses (and there From = user code).
    if org.edition is Edition.CLOUD:
        frame["_code_is_address"] = _valid_addresses(frame["user_code"])
    else:
        frame["_code_is_address"] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    frame["_last_ok"] = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    frame["_last_cause"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["_stale"] = False
    frame["_stale_since"] = pd.Series("ever", index=frame.index, dtype="string")
    if history is not None:
        _join_history(frame, history, stale_days, now)
    return frame


def _join_history(
    frame: pd.DataFrame, history: pd.DataFrame, stale_days: int, now: datetime | None
) -> None:
    """Last result and last success per user (user codes compared without case)."""
    moment = now if now is not None else datetime.now(UTC)
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    keys = frame["user_code"].str.casefold()
    if len(history):
        hist = pd.DataFrame(
            {
                "key": history["user_code"].astype("string").str.casefold(),
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
    last = hist.groupby("key").tail(1).set_index("key")

    def lookup(values: pd.Series[Any]) -> pd.Series[Any]:
        return pd.Series(values.reindex(keys.to_numpy()).to_numpy(), index=frame.index)

    frame["_last_ok"] = lookup(last["ok"]).astype("boolean")
    frame["_last_cause"] = lookup(last["cause"]).astype("string").fillna("no cause recorded")
    success = hist[hist["ok"].fillna(False).astype(bool)].groupby("key")["at"].max()
    last_success = pd.to_datetime(lookup(success), utc=True)
    cutoff = stamp - timedelta(days=stale_days)
    frame["_stale"] = (last_success.isna() | (last_success < cutoff)).fillna(True).astype(bool)
    since = "since " + pd.to_datetime(last_success, utc=True).dt.strftime("%Y-%m-%d").astype(
        "string"
    )
    frame["_stale_since"] = since.fillna("ever").astype("string")


def _routes_frame(org: OrgSettings, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per feature route: whether its sender exists and can send."""
    usable = ~(_eq(frame["mode"], Mode.SMTP.value) & frame["host"].isna()) & frame["mode"].isin(
        [m.value for m in Mode]
    ).fillna(False)
    senders = {route.sender.casefold() for route in org.routes.values()} - {"org"}
    keys = frame["user_code"].str.casefold()
    wanted = keys.isin(list(senders)).fillna(False).astype(bool)
    known = dict(zip(keys[wanted], usable[wanted], strict=True))
    org_usable = not (
        (org.mode in (None, Mode.SMTP) and org.host is None) or org.mode is Mode.EXCHANGE_WEBDAV
    )
    rows = []
    for name, route in org.routes.items():
        sender = route.sender
        if sender.casefold() == "org":
            ok, problem = org_usable, "has no usable mode or server in the org's settings"
        elif sender.casefold() not in known:
            ok, problem = False, "is not a user"
        else:
            ok, problem = bool(known[sender.casefold()]), "has no usable mode or server"
        rows.append(
            {
                "user_code": sender,
                "route": name,
                "enabled": route.enabled,
                "recipients": len(route.recipients),
                "sender_usable": ok,
                "sender_problem": problem,
            }
        )
    columns = ["user_code", "route", "enabled", "recipients", "sender_usable", "sender_problem"]
    return pd.DataFrame(rows, columns=columns).astype({"enabled": bool, "sender_usable": bool})


def _render(template: str, rows: pd.DataFrame) -> pd.Series[str]:
    """Fill ``{column}`` placeholders column-wise (unset values read as "(not set)")."""
    parts = re.split(r"\{(\w+)\}", template)
    out = pd.Series("", index=rows.index, dtype="string")
    for i, part in enumerate(parts):
        filled = rows[part].astype("string").fillna("(not set)") if i % 2 else part
        out = out + filled
    return out.astype(str)


def audit(
    org: OrgSettings,
    users: pd.DataFrame,
    *,
    secrets: SecretStore | None = None,
    profile: str = "default",
    history: pd.DataFrame | None = None,
    stale_days: int = 30,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every finding for ``users`` under ``org``: one row per user and rule that fires.

    ``users`` is the canonical users table (as read from CSV, Excel, SQL or the store).
    ``secrets`` enables ``missing-secret``; ``history`` (the store's ``history_frame()``)
    enables ``test-failed`` and ``test-stale``.
    """
    frame = audit_frame(org, users, history=history, stale_days=stale_days, now=now)
    routes = _routes_frame(org, frame)
    ctx = AuditContext(org=org, secrets=secrets, profile=profile, has_history=history is not None)
    pieces: list[pd.DataFrame] = []
    for rule in RULES:
        source = routes if rule.scope == "route" else frame
        mask = rule.check(source, ctx)
        hits = source[mask.to_numpy(dtype=bool)]
        if hits.empty:
            continue
        pieces.append(
            pd.DataFrame(
                {
                    "user_code": hits["user_code"].astype("string").fillna("").astype(str),
                    "rule": rule.id,
                    "severity": rule.severity,
                    "message": _render(rule.message, hits),
                    "fix": rule.fix,
                }
            )
        )
    if not pieces:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FINDINGS_COLUMNS})
    findings = pd.concat(pieces, ignore_index=True)
    rank = findings["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    order = np.argsort(rank.to_numpy(), kind="stable")
    return findings.iloc[order].reset_index(drop=True)[list(FINDINGS_COLUMNS)]
