"""The validator and the audit say the same thing about the same values (issue 12, point 3).

Each check registered in ``settings.AUDITED_CHECKS`` is one scalar predicate that the validator
calls on the record being saved and the audit applies per distinct value of a column. Here every
one of them is fed generated values on both sides: the model (or the predicate's validator
caller) gives its verdict, :func:`mailkit.audit.audit` or
:func:`mailkit.audit.effective_settings` gives the audit's, and they must match. A predicate
registered without an entry in :data:`AGREEMENT` fails the meta-test.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mailkit.audit.rules as rules_module
import mailkit.settings as settings_module
from mailkit.audit import RULES, audit, effective_settings
from mailkit.columns import USERS_COLUMNS
from mailkit.errors import SettingsError, UnsafeSettingWarning
from mailkit.settings import (
    AUDITED_CHECKS,
    MODE_ALIASES,
    AuthType,
    FeatureRoute,
    Mode,
    OrgSettings,
    Profile,
    Security,
    UserSettings,
    check_address,
    check_host,
    internal_suffix,
    user_problems,
    validate,
)

ORG: dict[str, Any] = {"host": "smtp.example.com", "from_address": "org@example.com"}
CASES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def quiet_org(**fields: Any) -> OrgSettings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        return OrgSettings(**fields)


def codes(n: int) -> list[str]:
    return [f"u{i}@example.com" for i in range(n)]


def fired(findings: pd.DataFrame, rule: str) -> set[str]:
    return set(findings.loc[findings["rule"] == rule, "user_code"])


def rows(column: str, values: list[Any], **more: Any) -> pd.DataFrame:
    """One overriding user per value, the value in ``column``."""
    frame = pd.DataFrame({"user_code": codes(len(values)), "override_enabled": True, **more})
    frame[column] = pd.Series(values, dtype=object)
    return frame


def accepted(check: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, list[str]]:
    """Whether the validator accepts, and the warnings it gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check(*args, **kwargs)
        except (ValueError, SettingsError):
            return False, []
    return True, [str(w.message) for w in caught]


# --------------------------------------------------------------------------- generated values

_LOCALS = st.one_of(
    st.from_regex(r"[a-z][a-z0-9.+_-]{0,12}", fullmatch=True),
    st.sampled_from(["jürgen", "josé", "李娜", "søren", "a..b", ".a", "a.", "x" * 65, "e\u0301"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8),
)
_DOMAINS = st.sampled_from(
    [
        "example.com",
        "EXAMPLE.COM",
        "bücher.example",
        "corp.local",
        "plant.internal",
        "x.home.arpa",
        "home.arpa",
        "local",
        "mailhost",
        "acme",
        "a..b.com",
        "-x.com",
        "mail.test",
        # corp.local in fullwidth letters, which IDNA folds to ASCII
        "corp.local".translate({c: c + 0xFEE0 for c in range(0x61, 0x7B)}),
        "李.中国",
        "192.0.2.1",
        "[192.0.2.1]",
        "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + ".com",
    ]
)
ADDRESSES = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", _LOCALS, _DOMAINS),
    st.sampled_from(["not an address", "a@@example.com", "a@b@example.com", "", " ", "@x.com"]),
    st.text(max_size=12),
)
HOSTS = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}", fullmatch=True),
    st.sampled_from(
        [
            "999.1.1.1",
            "1.2.3.4.",
            "fe80::1%eth0",
            "::ffff:1.2.3.4",
            "10",
            "0x7f.1",
            "1.2.3",
            "smtp.example.com",
            "relay.corp.local",
            "mailhost",
            "bücher.example",
            " 10.0.0.1 ",
            "[::1]",
            "[smtp.example.com]",
        ]
    ),
    st.text(max_size=10),
)


def _spellings(values: list[str]) -> st.SearchStrategy[str]:
    """A choice as people type it: any case, spaces or hyphens, padded, or something else."""
    return st.one_of(
        st.builds(
            lambda text, upper, pad, dash: (
                pad + (text.upper() if upper else text).replace("_", "-" if dash else "_") + pad
            ),
            st.sampled_from(values),
            st.booleans(),
            st.sampled_from(["", " ", "\t", "\n", "\u00a0"]),
            st.booleans(),
        ),
        st.text(max_size=8),
    )


# --------------------------------------------------------------------------- one test per check


@given(st.lists(HOSTS, min_size=1, max_size=8))
@CASES
def agree_host_ip(hosts: list[str]) -> None:
    findings = audit(OrgSettings(**ORG), rows("host", hosts))
    flagged = fired(findings, "ip-address-host")
    for code, host in zip(codes(len(hosts)), hosts, strict=True):
        ok, said = accepted(check_host, host)
        if not ok:  # refused: no verdict to compare
            continue
        warned = any("is an IP address" in text for text in said)
        assert (code in flagged) is warned, host


@given(
    st.lists(
        st.one_of(
            st.integers(-5, 70_000),
            st.floats(allow_nan=True, allow_infinity=True),
            st.booleans(),
            st.text("0123456789 .+-ex", max_size=7),
            st.sampled_from(["587", " 465 ", "587.0", "5.87e2", "+25", "0x1F", "", "065535"]),
        ),
        min_size=1,
        max_size=8,
    )
)
@CASES
def agree_check_port(ports: list[Any]) -> None:
    frame = effective_settings(quiet_org(**ORG, port=2525), rows("port", ports))
    for (_, row), port in zip(frame.iterrows(), ports, strict=True):
        try:
            expected = UserSettings(user_code="u", port=port).port
        except ValueError:
            expected = None
        taken = row["port_source"] == "user"
        assert taken is (expected is not None), port
        if taken:
            assert row["port"] == expected


@given(st.lists(st.tuples(ADDRESSES, HOSTS), min_size=1, max_size=8))
@CASES
def agree_internal_suffix(pairs: list[tuple[str, str]]) -> None:
    senders, hosts = [p[0] for p in pairs], [p[1] for p in pairs]
    users = rows("from_address", senders, host=hosts, mode="smtp")
    findings = audit(OrgSettings(**ORG), users)
    notes = dict(
        zip(
            findings.loc[findings["rule"] == "internal-domain", "user_code"],
            findings.loc[findings["rule"] == "internal-domain", "message"],
            strict=True,
        )
    )
    for code, sender, host in zip(codes(len(pairs)), senders, hosts, strict=True):
        note = notes.get(code, "")
        valid, _ = accepted(check_address, sender)
        domain = sender.strip().rpartition("@")[2]
        internal_sender = valid and internal_suffix(domain) is not None
        assert ("the From address" in note) is internal_sender, sender
        host_ok, _ = accepted(check_host, host)
        if host_ok:
            assert ("the server" in note) is (internal_suffix(host.strip(" \t")) is not None), host


@given(st.lists(ADDRESSES, min_size=1, max_size=8))
@CASES
def agree_check_address(addresses: list[str]) -> None:
    users = pd.DataFrame({"user_code": codes(len(addresses)), "email": addresses})
    invalid = fired(audit(OrgSettings(**ORG), users), "invalid-address")
    cloud_users = pd.DataFrame({"user_code": addresses})
    not_codes = fired(audit(OrgSettings(edition="cloud"), cloud_users), "cloud-user-code-not-email")
    for code, address in zip(codes(len(addresses)), addresses, strict=True):
        ok, _ = accepted(check_address, address)
        if address.strip():  # blank: unset for both, nothing to check
            assert (code not in invalid) is ok, address
            assert (address.strip(" \t") not in not_codes) is ok, address


_ENUMS: dict[str, type[Mode] | type[Security] | type[AuthType]] = {
    "mode": Mode,
    "security": Security,
    "auth": AuthType,
}
_CHOICE_COLUMNS: dict[str, list[str]] = {
    "mode": [*(m.value for m in Mode), *MODE_ALIASES],
    "security": [*(s.value for s in Security), "ssl", "tls"],
    "auth": [*(a.value for a in AuthType), "cram-md5", "crammd5"],
}


@given(st.sampled_from(sorted(_CHOICE_COLUMNS)), st.data())
@CASES
def agree_read_choice(column: str, data: st.DataObject) -> None:
    typed = data.draw(st.lists(_spellings(_CHOICE_COLUMNS[column]), min_size=1, max_size=8))
    frame = effective_settings(quiet_org(**ORG), rows(column, typed))
    for (_, row), text in zip(frame.iterrows(), typed, strict=True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnsafeSettingWarning)
                member = getattr(UserSettings(user_code="u", **{column: text}), column)
        except ValueError:
            # Refused: the audit reads no known choice from it either.
            known = {m.value for m in _ENUMS[column]}
            assert row[f"{column}_source"] != "user" or row[column] not in known, text
            continue
        if member is None:
            assert row[f"{column}_source"] != "user", text
        else:
            assert (row[column], row[f"{column}_source"]) == (member.value, "user"), text


_PAIRS = st.tuples(
    st.sampled_from([None, 25, 465, 587, 2525]),
    st.sampled_from([None, *Security]),
)


@given(_PAIRS, st.lists(_PAIRS, min_size=1, max_size=8))
@CASES
def agree_port_security_conflict(
    org_pair: tuple[int | None, Security | None], pairs: list[tuple[int | None, Security | None]]
) -> None:
    ok, _ = accepted(quiet_org, **ORG, port=org_pair[0], security=org_pair[1])
    if not ok:
        with pytest.raises(SettingsError):  # the org's own conflict: same predicate, refused
            validate(OrgSettings, {**ORG, "port": org_pair[0], "security": org_pair[1]})
        return
    org = quiet_org(**ORG, port=org_pair[0], security=org_pair[1])
    users = rows("port", [p for p, _ in pairs], security=[s for _, s in pairs], mode="smtp")
    users["port"] = users["port"].astype("Int64")
    flagged = fired(audit(org, users), "port-security-mismatch")
    for code, (port, security) in zip(codes(len(pairs)), pairs, strict=True):
        fields = {"user_code": code, "override_enabled": True, "port": port, "security": security}
        try:
            user = UserSettings(**fields)
        except ValueError:
            conflict = True
        else:
            conflict = any(p.field.endswith(".port") for p in user_problems(org, user))
        assert (code in flagged) is conflict, (org_pair, port, security)


@given(st.lists(_spellings(_CHOICE_COLUMNS["security"]), min_size=1, max_size=6))
@CASES
def agree_sends_unencrypted(typed: list[str]) -> None:
    for text in typed:
        ok, said = accepted(OrgSettings, **ORG, security=text)
        if not ok:
            continue
        warned = any("security is none" in line for line in said)
        org = quiet_org(**ORG, security=text)
        inherited = fired(audit(org, pd.DataFrame({"user_code": ["a"]})), "tls-disabled")
        own = fired(audit(OrgSettings(**ORG), rows("security", [text])), "tls-disabled")
        assert bool(inherited) is warned, text
        assert bool(own) is warned, text


@given(
    st.sampled_from(["on_premises", "cloud"]),
    st.lists(_spellings(_CHOICE_COLUMNS["mode"]), min_size=1, max_size=8),
)
@CASES
def agree_edition_allows_mode(edition: str, typed: list[str]) -> None:
    org = OrgSettings(**ORG, edition=edition)
    flagged = fired(audit(org, rows("mode", typed)), "cloud-requires-smtp")
    for code, text in zip(codes(len(typed)), typed, strict=True):
        try:
            user = UserSettings(user_code=code, mode=text, override_enabled=True)
        except ValueError:
            continue  # an unknown mode: refused before any edition is asked
        refused = any(p.field.endswith(".mode") for p in user_problems(org, user))
        org_refused = not accepted(OrgSettings, edition=edition, mode=text)[0]
        assert (code in flagged) is refused, (edition, text)
        assert refused is org_refused, (edition, text)


@given(st.lists(st.text("aAßSsǅǆǄKkK", min_size=1, max_size=3), min_size=1, max_size=8))
@example(["ß", "SS"])  # one key by casefold, two by lower()
@example(["\u212a", "k"])  # KELVIN SIGN
@CASES
def agree_user_code_key(typed: list[str]) -> None:
    users = pd.DataFrame({"user_code": typed})
    flagged = fired(audit(OrgSettings(**ORG), users), "duplicate-user-code")
    try:
        validate(Profile, {"users": [{"user_code": code} for code in typed]})
    except SettingsError as exc:
        said = {p.field for p in exc.problems if "appears more than once" in p.message}
    else:
        said = set()
    key = settings_module.user_code_key
    for code in typed:
        repeated = sum(key(other) == key(code) for other in typed) > 1
        assert (code in flagged) is repeated, typed
    # The validator names the occurrences after the first; the same users, by key.
    named = {key(field.removeprefix("users[").removesuffix("].user_code")) for field in said}
    assert named == {key(code) for code in flagged}, (typed, said)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["yes", "No", " x ", "TRUE", "off", "1", "0", "on", "maybe", ""]),
            st.booleans(),
            st.integers(-1, 2),
            st.floats(allow_nan=True),
            st.none(),
            st.text(max_size=4),
        ),
        min_size=1,
        max_size=8,
    )
)
@CASES
def agree_parse_flag(flags: list[Any]) -> None:
    users = pd.DataFrame({"user_code": codes(len(flags)), "mode": "mapi"})
    users["override_enabled"] = pd.Series(flags, dtype=object)
    frame = effective_settings(OrgSettings(**ORG), users)
    for (_, row), flag in zip(frame.iterrows(), flags, strict=True):
        try:
            overrides = UserSettings(user_code="u", override_enabled=flag).override_enabled
        except ValueError:
            overrides = False  # an unreadable tick box does not override
        assert (row["mode_source"] == "user") is overrides, flag


_CLOUD_CODES = st.sampled_from(["alice@example.com", "Bob@Example.com", "jürgen@bücher.example"])


@given(
    st.lists(
        st.tuples(
            _CLOUD_CODES,
            st.sampled_from([None, "", "same", "upper", "other"]),
            st.sampled_from([None, "", "same", "upper", "other"]),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    )
)
@CASES
def agree_cloud_account_conflicts(people: list[tuple[str, str | None, str | None]]) -> None:
    def value(code: str, kind: str | None) -> str | None:
        return {"same": code, "upper": code.upper(), "other": "someone@example.org"}.get(
            kind or "", kind
        )

    org = OrgSettings(edition="cloud", host="smtp.example.com")
    users = pd.DataFrame(
        {
            "user_code": [c for c, _, _ in people],
            "override_enabled": True,
            "username": [value(c, u) for c, u, _ in people],
            "from_address": [value(c, f) for c, _, f in people],
        }
    )
    findings = audit(org, users)
    messages = dict(
        zip(
            findings.loc[findings["rule"] == "cloud-account-ignored", "user_code"],
            findings.loc[findings["rule"] == "cloud-account-ignored", "message"],
            strict=True,
        )
    )
    for code, username, sender in people:
        user = UserSettings(
            user_code=code,
            override_enabled=True,
            username=value(code, username),
            from_address=value(code, sender),
        )
        fields = {p.field.rpartition(".")[2] for p in user_problems(org, user)}
        message = messages.get(code, "")
        assert ("user name" in message) is ("username" in fields), (code, username)
        assert ("From address" in message) is ("from_address" in fields), (code, sender)


#: Provider servers, their slips (a letter dropped, doubled, swapped or wrong), and others.
PROVIDER_HOSTS = st.one_of(
    st.sampled_from(
        [
            "smtp.gmail.com",
            "smtp.gmial.com",
            "smtp.gmail.co",
            "smtp.office365.com",
            "smtp.offic365.com",
            "smtp.office356.com",
            "smtp-mail.outlook.com",
            "smtp-mail.outlok.com",
            "smtp.mail.yahoo.com",
            "mail.corp.local",
            "smtp.example.com",
        ]
    ),
    st.from_regex(r"smtp\.[a-z]{3,9}\.com", fullmatch=True),
)
#: Sign-in names of certain providers, of a tenant, of a company, and none.
ACCOUNTS = st.sampled_from(
    [
        "ann@gmail.com",
        "bob@outlook.com",
        "cy@hotmail.com",
        "di@contoso.onmicrosoft.com",
        "ed@acme.org",
        "fay@corp.local",
        None,
    ]
)


def user_warnings(**fields: Any) -> list[str] | None:
    """The warnings saving an overriding user gives, or None when the user is refused."""
    ok, said = accepted(UserSettings, user_code="u", override_enabled=True, **fields)
    return said if ok else None


@given(st.lists(PROVIDER_HOSTS, min_size=1, max_size=8))
@CASES
def agree_host_typo(hosts: list[str]) -> None:
    findings = audit(OrgSettings(**ORG), rows("host", hosts))
    flagged = fired(findings, "provider-host-typo")
    for code, host in zip(codes(len(hosts)), hosts, strict=True):
        said = user_warnings(host=host)
        if said is None:
            continue
        warned = any("did you mean" in text for text in said)
        assert (code in flagged) is warned, host


@given(st.lists(st.tuples(PROVIDER_HOSTS, ACCOUNTS), min_size=1, max_size=8))
@CASES
def agree_account_mismatch(pairs: list[tuple[str, str | None]]) -> None:
    hosts = [host for host, _ in pairs]
    users = rows("host", hosts, username=[user for _, user in pairs])
    findings = audit(OrgSettings(**ORG), users)
    mismatch = findings[findings["rule"] == "provider-account-mismatch"]
    messages = dict(zip(mismatch["user_code"], mismatch["message"], strict=True))
    for code, (host, user) in zip(codes(len(pairs)), pairs, strict=True):
        said = user_warnings(host=host, username=user)
        if said is None:
            continue
        warned = [text for text in said if "signs in only its own accounts" in text]
        assert messages.get(code) == (warned[0] if warned else None), (host, user)


TEMPLATES = st.one_of(
    st.sampled_from(
        [
            "{feature} {number}: {title}",
            "Order {number} ({date}, {sender})",
            "Literal {{braces}}",
            "PO {customer}",
            "WO {number",
            "WO {number:>5}",
            "WO {title!r}",
            "{}",
            "}",
            "",
        ]
    ),
    st.text(alphabet="{}:!abdefilmnrstu ", max_size=24),
)


@given(st.lists(TEMPLATES, min_size=1, max_size=6))
@CASES
def agree_subject_template_problem(templates: list[str]) -> None:
    org = quiet_org(**ORG)
    refused: dict[str, bool] = {}
    for i, template in enumerate(templates):
        name = f"route{i}"
        try:
            FeatureRoute(subject_template=template)
        except ValueError:
            refused[name] = True
        else:
            refused[name] = False
        # Stored as it came, as data that bypassed validation would be.
        org.routes[name] = FeatureRoute.model_construct(
            enabled=False, sender="org", recipients=[], subject_template=template
        )
    findings = audit(org, rows("host", ["smtp.example.com"]))
    messages = findings.loc[findings["rule"] == "route-template-invalid", "message"]
    reported = {message.split(" ")[1] for message in messages}
    assert reported == {name for name, bad in refused.items() if bad}


@given(st.lists(st.sampled_from([None, *Mode]), min_size=1, max_size=6), st.sampled_from([*Mode]))
@CASES
def agree_route_sender_problem(modes: list[Mode | None], org_mode: Mode) -> None:
    users = [
        {"user_code": f"u{i}", "override_enabled": True, "mode": mode}
        for i, mode in enumerate(modes)
    ]
    routes = {
        f"route{i}": {"enabled": True, "sender": f"u{i}", "recipients": ["a@example.com"]}
        for i in range(len(modes))
    }
    routes["by_org"] = {"enabled": True, "sender": "org", "recipients": ["a@example.com"]}
    data = {"org": {**ORG, "mode": org_mode, "routes": routes}, "users": users}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profile = Profile.model_validate(data)
    warned = {str(w.message).split(" ")[1] for w in caught if " route sends as " in str(w.message)}
    table = pd.DataFrame(users).astype({"mode": object})
    table["mode"] = [m.value if m is not None else None for m in modes]
    findings = audit(profile.org, table)
    messages = findings.loc[findings["rule"] == "route-sender-not-sendable", "message"]
    assert {message.split(" ")[1] for message in messages} == warned


#: Every registered predicate's agreement test, by the predicate's name.
AGREEMENT: dict[str, Callable[[], None]] = {
    "host_ip": agree_host_ip,
    "check_port": agree_check_port,
    "internal_suffix": agree_internal_suffix,
    "check_address": agree_check_address,
    "read_choice": agree_read_choice,
    "port_security_conflict": agree_port_security_conflict,
    "sends_unencrypted": agree_sends_unencrypted,
    "edition_allows_mode": agree_edition_allows_mode,
    "user_code_key": agree_user_code_key,
    "parse_flag": agree_parse_flag,
    "cloud_account_conflicts": agree_cloud_account_conflicts,
    "host_typo": agree_host_typo,
    "account_mismatch": agree_account_mismatch,
    "subject_template_problem": agree_subject_template_problem,
    "route_sender_problem": agree_route_sender_problem,
}


@pytest.mark.parametrize("name", sorted(AUDITED_CHECKS))
def test_validator_and_audit_agree(name: str) -> None:
    if name not in AGREEMENT:
        pytest.fail(f"settings.{name} is audited but has no agreement test: add one to AGREEMENT")
    AGREEMENT[name]()


def test_every_audited_check_has_an_agreement_test_and_a_real_caller() -> None:
    assert set(AGREEMENT) == set(AUDITED_CHECKS)
    rule_ids = {rule.id for rule in RULES}
    for name, reported_as in AUDITED_CHECKS.items():
        assert reported_as, name
        assert set(reported_as) <= rule_ids | set(USERS_COLUMNS), (name, reported_as)
        # The audit calls the settings' own predicate, not a copy of it.
        assert vars(rules_module).get(name) is getattr(settings_module, name), name


def test_the_meta_test_notices_a_check_without_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: registering a new predicate without an agreement test is caught."""

    @settings_module.audited("ip-address-host")
    def new_check(host: str) -> bool:
        return False

    try:
        with pytest.raises(AssertionError):
            test_every_audited_check_has_an_agreement_test_and_a_real_caller()
        with pytest.raises(pytest.fail.Exception, match="no agreement test"):
            test_validator_and_audit_agree("new_check")
    finally:
        del AUDITED_CHECKS["new_check"]
