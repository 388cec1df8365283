"""A generated organisation with the problems real ones have, for the audit notebook and tests.

An audit is only convincing on data that looks like an application's user table: mostly users
who inherit the org's settings, and among them the handful an admin must find — addresses
with typos, a Gmail account signing in with a password, Microsoft 365 basic auth, the legacy
``msn`` auth, desktop-client users (Outlook, MAPI, Lotus Notes), a relay in the internal
domain, overrides that repeat the org or set nothing, a duplicated user code, and a test
history where some users failed or have not passed for months.

Everything is drawn from one :class:`numpy.random.Generator`, so a seed gives the same
organisation every time (tests and the notebook rely on this), and relative to ``now``, so the
history is always as fresh (or as stale) as intended.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from mailkit.audit.sources import canonical_frame
from mailkit.columns import USERS_COLUMNS
from mailkit.errors import SettingsError, UnsafeSettingWarning
from mailkit.settings import FeatureRoute, OrgSettings, UserSettings, user_problems, validate

if TYPE_CHECKING:
    from mailkit.demo.server import DemoAccount, DemoSettings
    from mailkit.store import Store

__all__ = [
    "HISTORY_COLUMNS",
    "SAMPLE_DOMAIN",
    "SampleOrg",
    "load_sample",
    "on_demo_server",
    "sample_org",
    "sample_zones",
]

#: The sample organisation's mail domain (``example.com`` is reserved for documentation).
SAMPLE_DOMAIN: Final = "acme.example.com"
_ORG_HOST: Final = f"mail.{SAMPLE_DOMAIN}"


def sample_zones() -> dict[str, str]:
    """DNS zones for the sample's domain, as a DNS server takes them (origin → zone text).

    Acme's records have the gaps a real organisation's grow: the SPF was written for the own
    servers before some users moved to Microsoft 365 (no ``include:spf.protection.outlook.com``)
    and ends in ``~all``; DMARC is still ``p=none``; no DKIM key for Microsoft's selectors.
    ``audit --check-domains`` against them finds each gap for the users it affects.
    """
    origin = f"{SAMPLE_DOMAIN}."
    records = [
        "$TTL 300",
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300",
        f"@ IN NS ns1.{origin}",
        "ns1 IN A 203.0.113.2",
        f"@ IN MX 10 {_ORG_HOST}.",
        "mail IN A 203.0.113.10",
        "exchange IN A 203.0.113.11",
        '@ IN TXT "v=spf1 mx a:exchange.acme.example.com ~all"',
        f'_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@{SAMPLE_DOMAIN}"',
    ]
    return {origin: "\n".join(records) + "\n"}


# fmt: off
_FIRST: Final = (
    "Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
    "Lars", "Maria", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Walt", "Xenia", "Yusuf", "Zoe", "Adam", "Bea", "Chen", "Dana", "Emil", "Fiona", "Gabe",
    "Hana", "Ivan", "Julia", "Karl", "Lena", "Marco", "Nora",
)
_LAST: Final = (
    "Smith", "Jones", "Novak", "Weber", "Garcia", "Rossi", "Dubois", "Silva", "Kowalski",
    "Nielsen", "Horvat", "Ivanova", "Murphy", "Larsen", "Moreau", "Fischer", "Schmidt", "Bauer",
    "Keller", "Popescu", "Costa", "Meyer", "Wagner", "Becker", "Hoffmann", "Schulz", "Koch",
    "Richter", "Klein", "Wolf", "Neumann", "Braun", "Zimmermann", "Hartmann", "Lange", "Krause",
    "Walter", "Peters", "Engel", "Frank",
)
# fmt: on

#: How each kind of address typo looks once exported (``{f}``/``{l}``: first and last name).
_TYPOS: Final = (
    "{f}.{l}@acme",
    "{f} {l}@" + SAMPLE_DOMAIN,
    "{f}.{l}@@" + SAMPLE_DOMAIN,
    "{f}.{l}." + SAMPLE_DOMAIN,
    "{f}.{l}@acme..example.com",
    "{f}.{l}@" + SAMPLE_DOMAIN + ";{l}@" + SAMPLE_DOMAIN,
)

#: Problem profiles: how many users (per 300) get each, and the override columns they set.
_PROFILES: Final[dict[str, tuple[int, dict[str, Any]]]] = {
    "invalid-email": (6, {}),
    "gmail-password": (
        4,
        {"host": "smtp.gmail.com", "port": 587, "security": "starttls", "auth": "login"},
    ),
    "m365-basic": (6, {"host": "smtp.office365.com", "port": 587, "security": "starttls"}),
    "m365-oauth": (8, {"host": "smtp.office365.com", "port": 587, "auth": "xoauth2"}),
    "msn": (4, {"host": f"exchange.{SAMPLE_DOMAIN}", "port": 587, "auth": "msn"}),
    "mapi": (8, {"mode": "mapi"}),
    "outlook": (10, {"mode": "outlook"}),
    "lotus-notes": (2, {"mode": "lotus_notes"}),
    # The plant's own relay, named in the Active Directory domain: reached only from inside.
    "plant-relay": (3, {"host": "relay.plant.acme.local", "port": 25, "security": "starttls"}),
    "webdav": (2, {"mode": "exchange_webdav"}),
    "ews": (5, {"mode": "exchange_ews"}),
    "redundant": (8, {"host": _ORG_HOST, "port": 587}),
    "incomplete": (5, {}),
    "plaintext-ip": (3, {"host": "192.168.10.25", "port": 25, "security": "none"}),
    "port-mismatch": (3, {"host": _ORG_HOST, "port": 465, "security": "starttls"}),
    "foreign-login": (4, {"host": _ORG_HOST}),
}
#: Profiles whose override signs in with the user's own account (a username column).
_OWN_LOGIN: Final = ("gmail-password", "m365-basic", "m365-oauth", "msn", "plaintext-ip")
_DUPLICATES: Final = 4  # per 300 users

#: Last test results, as shares of the users: passed recently, failed, passed long ago, never.
_HISTORY_SHARES: Final = {"recent": 0.55, "failed": 0.08, "stale": 0.12, "never": 0.25}
_FAILURES: Final = (
    ("auth", "permanent", "bad_credentials", "535 5.7.8 Authentication failed"),
    ("auth", "permanent", "basic_auth_disabled", "535 5.7.139 SmtpClientAuthentication disabled"),
    ("rcpt", "transient", "greylisted", "451 4.7.1 greylisted, please try again later"),
    ("connect", "transient", "connection_timeout", "no answer from the server in 15 s"),
)

HISTORY_COLUMNS: Final = ("user_code", "at", "ok", "phase", "kind", "cause", "detail")


@dataclass(frozen=True)
class SampleOrg:
    """The org settings, the application's users export (problems included) and a history."""

    org: OrgSettings
    #: The canonical users table as an application would export it: nothing validated.
    users: pd.DataFrame
    #: Past test sends (``HISTORY_COLUMNS``), oldest first; ``at`` is UTC.
    history: pd.DataFrame


def _org() -> OrgSettings:
    return OrgSettings(
        name="Acme Maintenance",
        mode="smtp",
        host=_ORG_HOST,
        port=587,
        security="starttls",
        username=f"erp-mailer@{SAMPLE_DOMAIN}",
        from_address=f"erp@{SAMPLE_DOMAIN}",
        from_name="Acme ERP",
        ews_url="https://outlook.office365.com/EWS/Exchange.asmx",
        routes={
            "requests": FeatureRoute(
                enabled=True, sender="org", recipients=[f"helpdesk@{SAMPLE_DOMAIN}"]
            ),
            # The buyer who set this route up left the company: the sender is no user.
            "purchase_orders": FeatureRoute(
                enabled=True, sender="PBUYER", recipients=[f"purchasing@{SAMPLE_DOMAIN}"]
            ),
            "work_orders": FeatureRoute(enabled=True, sender="org", recipients=[]),
        },
    )


def _scaled(count: int, n_users: int) -> int:
    return max(1, round(count * n_users / 300))


def sample_org(n_users: int = 300, *, seed: int = 0, now: datetime | None = None) -> SampleOrg:
    """A deterministic organisation of ``n_users`` (100 to 1,600) users for ``seed``."""
    if n_users < 100:
        raise ValueError(
            "n_users: a sample organisation needs at least 100 users to hold every problem"
        )
    if n_users > len(_FIRST) * len(_LAST):  # every user has a name of their own
        raise ValueError(
            f"n_users: a sample organisation has at most {len(_FIRST) * len(_LAST):,} users "
            "(one per distinct first and last name); ask for fewer"
        )
    rng = np.random.default_rng(seed)
    org = _org()
    pairs = rng.choice(len(_FIRST) * len(_LAST), size=n_users, replace=False)
    first = pd.Series(np.asarray(_FIRST)[pairs // len(_LAST)])
    last = pd.Series(np.asarray(_LAST)[pairs % len(_LAST)])
    stem = (first.str[0] + last).str.upper()
    clash = stem.groupby(stem).cumcount()
    codes = stem.where(clash == 0, stem + (clash + 1).astype(str))
    local = (first + "." + last).str.lower()
    users = pd.DataFrame(
        {
            "user_code": codes,
            "display_name": first + " " + last,
            "email": local + "@" + SAMPLE_DOMAIN,
            "override_enabled": False,
        }
    )
    for column in USERS_COLUMNS:
        if column not in users:
            users[column] = pd.Series(pd.NA, index=users.index, dtype="object")

    order = rng.permutation(n_users)
    start = 0
    for profile, (count, values) in _PROFILES.items():
        rows = order[start : start + _scaled(count, n_users)]
        start += len(rows)
        if profile == "invalid-email":
            typo = np.asarray(_TYPOS)[np.arange(len(rows)) % len(_TYPOS)]
            f, l_ = first.iloc[rows].str.lower(), last.iloc[rows].str.lower()
            users.loc[rows, "email"] = [
                t.format(f=a, l=b) for t, a, b in zip(typo, f, l_, strict=True)
            ]
            continue
        users.loc[rows, "override_enabled"] = True
        for column, value in values.items():
            users.loc[rows, column] = value
        if profile in _OWN_LOGIN:
            users.loc[rows, "username"] = users.loc[rows, "email"]
        if profile == "gmail-password":
            gmail = local.iloc[rows] + ".acme@gmail.com"
            users.loc[rows, "username"] = gmail
            users.loc[rows, "from_address"] = gmail
        if profile == "foreign-login":  # a shared relay account of a hosting company
            users.loc[rows, "username"] = "relay-7@mailhost.example.net"
            users.loc[rows, "from_address"] = users.loc[rows, "email"]

    # Duplicates: a second row for an existing user, spelled in lower case (a re-import).
    plain = users.index[~users["override_enabled"].astype(bool)]
    copies = rng.choice(plain[: len(plain) // 2], size=_scaled(_DUPLICATES, n_users), replace=False)
    victims = plain[len(plain) // 2 :][: len(copies)]
    users.loc[victims, "user_code"] = users.loc[copies, "user_code"].str.lower().to_numpy()
    users.loc[victims, "display_name"] = users.loc[copies, "display_name"].to_numpy()
    users.loc[victims, "email"] = users.loc[copies, "email"].to_numpy()

    frame = canonical_frame(users)
    return SampleOrg(org=org, users=frame, history=_history(frame, rng, now))


def _history(users: pd.DataFrame, rng: np.random.Generator, now: datetime | None) -> pd.DataFrame:
    """One or two past results per tested user, shaped by :data:`_HISTORY_SHARES`."""
    moment = pd.Timestamp(now if now is not None else datetime.now(UTC))
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    codes = users["user_code"].drop_duplicates().reset_index(drop=True)
    kinds = rng.choice(list(_HISTORY_SHARES), size=len(codes), p=list(_HISTORY_SHARES.values()))
    days = pd.Series(rng.uniform(0, 1, size=len(codes)))
    pieces = []
    recent = kinds == "recent"
    pieces.append(_results(codes[recent], moment - pd.to_timedelta(days[recent] * 20, "D"), True))
    stale = kinds == "stale"
    ago = pd.to_timedelta(45 + days[stale] * 200, "D")
    pieces.append(_results(codes[stale], moment - ago, True))
    failed = kinds == "failed"
    pieces.append(_results(codes[failed], moment - pd.to_timedelta(40 + days[failed], "D"), True))
    failures = _results(codes[failed], moment - pd.to_timedelta(days[failed] * 5, "D"), False)
    which = np.arange(len(failures)) % len(_FAILURES)
    for column, position in (("phase", 0), ("kind", 1), ("cause", 2), ("detail", 3)):
        failures[column] = [_FAILURES[i][position] for i in which]
    pieces.append(failures)
    history = pd.concat(pieces, ignore_index=True).sort_values("at", kind="stable")
    return history.reset_index(drop=True)[list(HISTORY_COLUMNS)]


def _results(codes: pd.Series[Any], at: pd.Series[Any], ok: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"user_code": codes.to_numpy(), "at": at.to_numpy(), "ok": ok})
    frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.floor("s")
    for column in ("phase", "kind", "cause", "detail"):
        frame[column] = None
    return frame


def load_sample(store: Store, sample: SampleOrg) -> pd.DataFrame:
    """Save the org, every user the store accepts and the history; return the refused rows.

    The store holds only valid settings, so an export's typos and duplicate codes cannot go in:
    they come back as a table (``user_code``, ``problem``) — the rows to fix in the application.
    """
    store.set_org(sample.org)
    accepted: list[UserSettings] = []
    refused: list[dict[str, str]] = []
    seen: set[str] = set()
    records = sample.users.astype(object).where(sample.users.notna(), None).to_dict("records")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)  # the audit reports them
        for row in records:
            code = str(row["user_code"])
            try:
                user: UserSettings = validate(UserSettings, row, context=f"user {code}")
            except SettingsError as exc:
                refused.append({"user_code": code, "problem": str(exc.problems[0])})
                continue
            problems = user_problems(sample.org, user)
            if code.casefold() in seen:
                refused.append({"user_code": code, "problem": "the user code appears twice"})
            elif problems:
                refused.append({"user_code": code, "problem": str(problems[0])})
            else:
                seen.add(code.casefold())
                accepted.append(user)
    store.put_users(accepted)
    history = sample.history.astype(object).where(sample.history.notna(), None)
    for result in history.to_dict("records"):
        store.record_test(
            user_code=str(result["user_code"]),
            ok=bool(result["ok"]),
            phase=result["phase"],
            kind=result["kind"],
            cause=result["cause"],
            detail=result["detail"],
            at=pd.Timestamp(result["at"]).to_pydatetime(),
        )
    return pd.DataFrame(refused, columns=["user_code", "problem"])


def on_demo_server(
    users: Sequence[UserSettings],
    demo: DemoSettings,
    accounts: Sequence[str | DemoAccount] = ("demo",),
) -> list[UserSettings]:
    """``users`` signing in to the demo server, each as the next of ``accounts`` in turn.

    The sample's servers do not exist, so a notebook's bulk test sends these stand-ins: same
    user code and name (the results join to the users and land in their history), the demo
    server's account, and a From address the demo server accepts.
    """
    out = []
    for index, user in enumerate(users):
        stand_in = demo.user(accounts[index % len(accounts)])
        out.append(
            stand_in.model_copy(
                update={"user_code": user.user_code, "display_name": user.display_name}
            )
        )
    return out
