"""Effective settings: field-by-field overlay with provenance, one user and many at once."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkit.columns import USERS_COLUMNS, users_to_frame
from mailkit.resolve import EFFECTIVE_FIELDS, effective, effective_frame
from mailkit.settings import (
    AuthType,
    Edition,
    Mode,
    OrgSettings,
    Provenance,
    Security,
    UserSettings,
)
from mailkit.testsend import credential_account

ORG = OrgSettings(
    mode="outlook",
    host="smtp.corp.example",
    security="starttls",
    username="mailer",
    from_address="it@corp.example",
    from_name="Corp IT",
)


def test_org_only_values_and_defaults() -> None:
    eff = effective(OrgSettings(host="smtp.example.com"))
    assert eff.user_code is None
    assert (eff.mode, eff.host, eff.port, eff.security, eff.auth) == (
        Mode.SMTP,
        "smtp.example.com",
        587,
        Security.AUTO,
        AuthType.AUTO,
    )
    assert eff.provenance["host"] is Provenance.ORG
    assert eff.provenance["mode"] is Provenance.DEFAULT
    assert eff.provenance["port"] is Provenance.DEFAULT


def test_default_port_follows_security() -> None:
    assert effective(OrgSettings(security="implicit_tls")).port == 465
    assert effective(OrgSettings(security="starttls")).port == 587
    user = UserSettings(user_code="u", override_enabled=True, security="implicit_tls")
    assert effective(OrgSettings(), user).port == 465


def test_bi_mode_org_outlook_some_users_on_smtp() -> None:
    """The ERP's bi-mode: Outlook for everyone, SMTP for users with their own configuration."""
    outlook_user = UserSettings(user_code="ann")
    smtp_user = UserSettings(
        user_code="acct",
        override_enabled=True,
        mode="smtp",
        username="accounting@corp.example",
        from_address="accounting@corp.example",
        display_name="Accounting",
    )
    ann = effective(ORG, outlook_user)
    acct = effective(ORG, smtp_user)
    assert ann.mode is Mode.OUTLOOK
    assert ann.provenance["mode"] is Provenance.ORG
    assert acct.mode is Mode.SMTP
    assert acct.provenance["mode"] is Provenance.USER
    assert acct.host == "smtp.corp.example"  # inherited: the override leaves host unset
    assert acct.provenance["host"] is Provenance.ORG
    assert acct.from_address == "accounting@corp.example"
    assert acct.from_name == "Accounting"
    assert acct.provenance["from_name"] is Provenance.USER


def test_disabled_override_is_ignored() -> None:
    user = UserSettings(user_code="bob", override_enabled=False, mode="smtp", host="other.example")
    eff = effective(ORG, user)
    assert eff.mode is Mode.OUTLOOK
    assert eff.host == "smtp.corp.example"
    assert all(p is not Provenance.USER for p in eff.provenance.values())


def test_cloud_edition_from_is_user_code() -> None:
    org = OrgSettings(edition=Edition.CLOUD, host="smtp.example.com", from_address="it@example.com")
    eff = effective(org, UserSettings(user_code="carol@example.com"))
    assert eff.from_address == "carol@example.com"
    assert eff.provenance["from_address"] is Provenance.USER


def test_cloud_edition_user_code_is_the_account_whatever_else_is_set() -> None:
    """Issue 10: in the cloud edition a user signs in as themselves, never as the org."""
    org = OrgSettings(
        edition=Edition.CLOUD, host="smtp.example.com", username="it@example.com", auth="login"
    )
    users = [
        UserSettings(user_code="carol@example.com"),
        UserSettings(user_code="dan@example.com", override_enabled=True, host="smtp.example.org"),
    ]
    for user in users:
        eff = effective(org, user)
        assert eff.username == eff.from_address == user.user_code
        assert eff.provenance["username"] is Provenance.USER
        assert credential_account(org, user) == user.user_code
    frame = effective_frame(org, users)
    assert list(frame["username"]) == [u.user_code for u in users]
    assert set(frame["username_source"]) == {"user"}
    # The org sending for itself keeps its own account.
    assert effective(org).username == "it@example.com"
    assert credential_account(org, None) == "org"


def test_to_frame_lists_every_field_with_source() -> None:
    frame = effective(ORG, UserSettings(user_code="x", override_enabled=True, port=2525)).to_frame()
    assert list(frame["field"]) == list(EFFECTIVE_FIELDS)
    row = frame.set_index("field").loc["port"]
    assert (row["value"], row["source"]) == (2525, "user")


def test_frame_columns_and_sources() -> None:
    users = [
        UserSettings(user_code="ann"),
        UserSettings(user_code="acct", override_enabled=True, mode="smtp", port=2525),
    ]
    frame = effective_frame(ORG, users)
    expected = ["user_code"] + [c for f in EFFECTIVE_FIELDS for c in (f, f"{f}_source")]
    assert list(frame.columns) == expected
    assert list(frame["mode"]) == ["outlook", "smtp"]
    assert list(frame["mode_source"].astype(str)) == ["org", "user"]
    assert list(frame["port"]) == [587, 2525]
    assert list(frame["port_source"].astype(str)) == ["default", "user"]


def test_frame_accepts_a_users_table_from_a_spreadsheet() -> None:
    """Cells arrive as strings and blanks; blanks inherit."""
    table = pd.DataFrame(
        [
            {"user_code": "a", "override_enabled": True, "port": "465", "security": "implicit_tls"},
            {"user_code": "b", "override_enabled": False, "port": "2525"},
        ],
        columns=list(USERS_COLUMNS),
    )
    frame = effective_frame(OrgSettings(host="h.example"), table)
    assert list(frame["port"]) == [465, 587]
    assert list(frame["security"]) == ["implicit_tls", "auto"]


# --------------------------------------------------------------------------- one == many

_hosts = st.sampled_from([None, "smtp.a.example", "mail.b.example"])
_modes = st.sampled_from([None, *[m.value for m in Mode]])
_secs = st.sampled_from([None, "auto", "starttls", "implicit_tls"])
_auths = st.sampled_from([None, *[a.value for a in AuthType]])
_ports = st.sampled_from([None, 25, 465, 587, 2525])
_names = st.sampled_from([None, "Ann", "Büro Zürich"])


@st.composite
def _users(draw: Any) -> list[UserSettings]:
    count = draw(st.integers(min_value=0, max_value=12))
    users = []
    for i in range(count):
        data = {
            "user_code": f"user{i}@corp.example",
            "override_enabled": draw(st.booleans()),
            "mode": draw(_modes),
            "host": draw(_hosts),
            "security": draw(_secs),
            "auth": draw(_auths),
            "port": draw(_ports),
            "display_name": draw(_names),
            "username": draw(st.sampled_from([None, "u1"])),
            "from_address": draw(st.sampled_from([None, f"user{i}@corp.example"])),
        }
        try:
            users.append(UserSettings(**data))
        except ValueError:
            continue  # an incoherent port/security pair: not a user the store would hold
    return users


@st.composite
def _orgs(draw: Any) -> OrgSettings:
    while True:
        try:
            return OrgSettings(
                edition=draw(st.sampled_from(["on_premises", "cloud"])),
                mode=draw(st.sampled_from([None, "smtp"])) if draw(st.booleans()) else draw(_modes),
                host=draw(_hosts),
                security=draw(_secs),
                port=draw(_ports),
                auth=draw(_auths),
                from_address=draw(st.sampled_from([None, "it@corp.example"])),
                from_name=draw(_names),
                priority=draw(st.sampled_from([None, "high"])),
            )
        except ValueError:
            continue


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(org=_orgs(), users=_users())
def test_frame_agrees_with_effective_for_every_user(
    org: OrgSettings, users: list[UserSettings]
) -> None:
    frame = effective_frame(org, users_to_frame(users))
    assert len(frame) == len(users)
    for row, user in zip(frame.to_dict(orient="records"), users, strict=True):
        eff = effective(org, user)
        single = eff.as_dict()
        for name in EFFECTIVE_FIELDS:
            got = row[name]
            got = None if got is pd.NA else got
            assert got == single[name], (name, user)
            assert str(row[f"{name}_source"]) == eff.provenance[name].value, (name, user)


def test_frame_of_no_users_has_the_columns() -> None:
    frame = effective_frame(ORG, [])
    assert frame.empty
    assert "mode_source" in frame.columns


@pytest.mark.parametrize("n", [1, 1000])
def test_frame_size(n: int) -> None:
    table = pd.DataFrame({"user_code": [f"u{i}" for i in range(n)]}, columns=list(USERS_COLUMNS))
    assert len(effective_frame(ORG, table)) == n


def test_frame_is_positional_whatever_the_users_index() -> None:
    users = [
        UserSettings(user_code="a", override_enabled=True, host="h.example", port=2525),
        UserSettings(user_code="b"),
        UserSettings(user_code="c", override_enabled=True, username="c@example.com"),
    ]
    table = users_to_frame(users)
    table.index = pd.Index([7, 7, 3])
    frame = effective_frame(ORG, table)
    assert frame.index.equals(pd.RangeIndex(3))
    assert list(frame["user_code"]) == ["a", "b", "c"]
    assert list(frame["host"]) == ["h.example", "smtp.corp.example", "smtp.corp.example"]
    assert list(frame["username"]) == ["mailer", "mailer", "c@example.com"]
    assert frame["port"].dtype == "Int64"
    assert frame["host"].dtype == "string"
    assert isinstance(frame["host_source"].dtype, pd.CategoricalDtype)
    assert list(frame["host_source"]) == ["user", "org", "org"]


def test_unset_org_field_without_a_user_value_is_na() -> None:
    frame = effective_frame(OrgSettings(host="h.example"), [UserSettings(user_code="a")])
    assert frame.loc[0, "username"] is pd.NA
    assert frame.loc[0, "username_source"] == Provenance.DEFAULT.value
