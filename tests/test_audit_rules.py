"""Audit rules, each both ways, and the reports built from their findings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import mailkit.audit.rules as rules_module
from mailkit.audit import FINDINGS_COLUMNS, RULES, audit, effective_settings
from mailkit.audit.report import affected_users, charts, export, summary, to_html
from mailkit.settings import (
    AddressDomain,
    FeatureRoute,
    OrgSettings,
    address_domain,
    check_address,
)

BASE_ORG: dict[str, Any] = {"host": "smtp.example.com", "from_address": "org@example.com"}
NOW = datetime(2026, 6, 30, tzinfo=UTC)
ROUTE_TO = ["office@example.org"]


def org_of(fields: dict[str, Any]) -> OrgSettings:
    """The org of a case or of the record; its ``unvalidated_routes`` are stored as they come,
    like data that bypassed validation (what ``route-template-invalid`` exists to catch)."""
    given = dict(fields)
    raw = given.pop("unvalidated_routes", {})
    org = OrgSettings(**given)
    for name, route in raw.items():
        org.routes[name] = FeatureRoute.model_construct(**route)
    return org


def user(code: str, **fields: Any) -> dict[str, Any]:
    """A users-table row; setting any override field ticks the override box."""
    override = {k: v for k, v in fields.items() if k not in ("email", "display_name")}
    return {"user_code": code, "override_enabled": bool(override), **fields}


def history(*rows: tuple[str, str, bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_code": [r[0] for r in rows],
            "at": pd.to_datetime([r[1] for r in rows], utc=True),
            "ok": [r[2] for r in rows],
            "cause": ["bad_credentials" if not r[2] else None for r in rows],
        }
    )


def secrets_with(*accounts: str) -> frozenset[str]:
    """What the caller of audit() found in the secret store: these accounts hold a password."""
    return frozenset(accounts)


A, B, C = "a@example.com", "b@example.com", "c@example.com"
LOGIN: dict[str, Any] = {"auth": "login", "username": "someone@example.com"}

# rule id, org settings (over BASE_ORG), user rows, audit keyword arguments, expected user codes
CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], dict[str, Any], set[str]]] = [
    (
        "invalid-address",
        {},
        [user(A, email="not an address"), user(B, from_address="b@@example.com"), user(C)],
        {},
        {A, B},
    ),
    ("missing-from", {"from_address": None}, [user(A), user(B, email=B)], {}, {A}),
    (
        "from-username-domain-mismatch",
        {},
        [user(A, username="a@example.org", from_address=A), user(B, username=B, from_address=B)],
        {},
        {A},
    ),
    (
        "tls-disabled",
        {},
        [user(A, security="none", port=25), user(B, security="starttls", port=587)],
        {},
        {A},
    ),
    (
        "plaintext-auth",
        {},
        [user(A, security="none", port=25, **LOGIN), user(B, security="none", auth="none")],
        {},
        {A},
    ),
    (
        "port-security-mismatch",
        {},
        [
            user(A, port=465, security="starttls"),
            user(B, port=465, security="implicit_tls"),
            user(C, port=587, security="ssl"),
        ],
        {},
        {A, C},
    ),
    (
        "provider-host-typo",
        {},
        [
            user(A, host="smtp.offic365.com"),
            user(B, host="smtp.office365.com"),
            user(C, host="mail.corp.local"),
        ],
        {},
        {A},
    ),
    (
        "provider-account-mismatch",
        {},
        [
            user(A, host="smtp.gmail.com", username="ann@outlook.com"),
            user(B, host="smtp.gmail.com", username="bob@gmail.com"),
            user(C, host="smtp.office365.com", username="cy@acme.example.com"),
        ],
        {},
        {A},
    ),
    (
        "ip-address-host",
        {},
        [
            user(A, host="192.0.2.10"),
            user(B, host="smtp.example.org"),
            user(C, host="[2001:db8::1]"),
        ],
        {},
        {A, C},
    ),
    (
        "cloud-requires-smtp",
        {"edition": "cloud"},
        [user(A, mode="microsoft_graph"), user(B, mode="smtp"), user(C)],
        {},
        {A},
    ),
    ("cloud-requires-smtp", {}, [user(A, mode="microsoft_graph")], {}, set()),
    ("cloud-user-code-not-email", {"edition": "cloud"}, [user("jsmith"), user(A)], {}, {"jsmith"}),
    ("cloud-user-code-not-email", {}, [user("jsmith")], {}, set()),
    (
        "override-incomplete",
        {},
        [
            {"user_code": A, "override_enabled": True},
            user(B, host="smtp.example.org"),
            user(C),
        ],
        {},
        {A},
    ),
    (
        "override-incomplete",
        {"host": None},
        [user(A), user(B, host="smtp.example.org"), user(C, mode="microsoft_graph")],
        {},
        {A},
    ),
    (
        "override-redundant",
        {},
        [
            user(A, host="SMTP.example.com"),
            user(B, host="smtp.example.org"),
            {"user_code": C, "override_enabled": False, "host": "smtp.example.com"},
        ],
        {},
        {A},
    ),
    (
        "missing-secret",
        {},
        [user(A, **LOGIN), user(B, **LOGIN), user(C, auth="none")],
        {"accounts_with_secret": secrets_with(B)},
        {A},
    ),
    ("missing-secret", {}, [user(A, **LOGIN)], {}, set()),
    (
        "microsoft-basic-auth",
        {},
        [
            user(A, host="smtp.office365.com", **LOGIN),
            user(B, host="smtp.office365.com", auth="xoauth2"),
            user(C, host="tenant.mail.protection.outlook.com", auth="plain", username=C),
        ],
        {},
        {A, C},
    ),
    (
        "gmail-password-auth",
        {},
        [
            user(A, host="smtp.gmail.com", username=A),
            user(B, host="smtp.gmail.com", auth="xoauth2", username=B),
        ],
        {},
        {A},
    ),
    ("legacy-webdav", {}, [user(A, mode="exchange_webdav"), user(B, mode="smtp")], {}, {A}),
    (
        "ews-exchange-online",
        {"ews_url": "https://outlook.office365.com/EWS/Exchange.asmx"},
        [user(A, mode="exchange_ews"), user(B, mode="smtp")],
        {},
        {A},
    ),
    (
        "ews-exchange-online",
        {"ews_url": "https://mail.example.com/EWS/Exchange.asmx"},
        [user(A, mode="exchange_ews")],
        {},
        set(),
    ),
    (
        # A user's own EWS server counts, not only the org's URL (issue 10).
        "ews-exchange-online",
        {"ews_url": "https://mail.example.com/EWS/Exchange.asmx"},
        [
            user(A, mode="exchange_ews", host="outlook.office365.com"),
            user(B, mode="exchange_ews", host="exchange.corp.local"),
            user(C, mode="smtp", host="outlook.office365.com"),
        ],
        {},
        {A},
    ),
    (
        "ews-exchange-online",
        {"ews_url": "https://outlook.office365.com/EWS/Exchange.asmx"},
        [user(A, mode="exchange_ews", host="exchange.corp.local"), user(B, mode="exchange_ews")],
        {},
        {B},
    ),
    (
        "ews-exchange-online",
        {"host": "outlook.office365.com"},
        [user(A, mode="exchange_ews"), user(B, mode="exchange_ews", host="mail.example.org")],
        {},
        {A},
    ),
    ("msn-auth-legacy", {}, [user(A, auth="msn"), user(B, auth="ntlm")], {}, {A}),
    ("mapi-no-contact-sync", {}, [user(A, mode="mapi"), user(B, mode="outlook")], {}, {A}),
    ("outlook-desktop-client", {}, [user(A, mode="outlook"), user(B, mode="mapi")], {}, {A}),
    (
        "lotus-notes-client",
        {},
        [user(A, mode="lotus_notes"), user(B, mode="lotus"), user(C, mode="outlook")],
        {},
        {A, B},
    ),
    (
        "internal-domain",
        {},
        [
            user(A, from_address="a@corp.local"),
            user(B, host="mailhost"),
            user(C, host="mailhost", mode="microsoft_graph"),  # no server to reach
            user("d@example.com", from_address="d@example.com"),
        ],
        {},
        {A, B},
    ),
    (
        "internal-domain",
        {"from_address": "erp@plant.internal"},
        [user(A), user(B, from_address=B), user(C, email="c@x.home.arpa", from_address=C)],
        {},
        {A},
    ),
    (
        # An EWS user's server is the endpoint they send to: the org's EWS URL or their host.
        "internal-domain",
        {"ews_url": "https://mail.corp.local/EWS/Exchange.asmx"},
        [
            user(A, mode="exchange_ews"),
            user(B, mode="exchange_ews", host="outlook.office365.com"),
            user(C, mode="smtp"),
        ],
        {},
        {A},
    ),
    (
        "cloud-user-password",
        {"edition": "cloud", **LOGIN},
        [user(A), user(B), user(C, auth="xoauth2")],
        {"accounts_with_secret": secrets_with("org", B)},
        {A},
    ),
    (
        "cloud-user-password",
        {**LOGIN},
        [user(A)],
        {"accounts_with_secret": secrets_with("org")},
        set(),
    ),
    (
        "cloud-account-ignored",
        {"edition": "cloud"},
        [
            user(A, username="shared@example.com"),
            user(B, from_address="x@example.com"),
            user(C, username=C.upper(), from_address=C),
        ],
        {},
        {A, B},
    ),
    ("cloud-account-ignored", {}, [user(A, username="shared@example.com")], {}, set()),
    ("duplicate-user-code", {}, [user(A), user(A.upper()), user(B)], {}, {A, A.upper()}),
    (
        "route-sender-unconfigured",
        {
            "routes": {
                "requests": {
                    "enabled": True,
                    "sender": "ghost@x.example.com",
                    "recipients": ROUTE_TO,
                },
                "work_orders": {"enabled": True, "sender": A, "recipients": ROUTE_TO},
                "purchase_orders": {"enabled": False, "sender": "nobody", "recipients": ROUTE_TO},
            }
        },
        [user(A)],
        {},
        {"ghost@x.example.com"},
    ),
    (
        "route-sender-unconfigured",
        {"host": None, "routes": {"requests": {"enabled": True, "recipients": ROUTE_TO}}},
        [user(A)],
        {},
        {"org"},
    ),
    (
        "route-sender-not-sendable",
        {
            "routes": {
                "work_orders": {"enabled": True, "sender": A, "recipients": ROUTE_TO},
                "requests": {"enabled": True, "sender": B, "recipients": ROUTE_TO},
                "purchase_orders": {"enabled": False, "sender": C, "recipients": ROUTE_TO},
            }
        },
        [user(A, mode="outlook"), user(B), user(C, mode="lotus_notes")],
        {},
        {A},
    ),
    (
        "route-template-invalid",
        {
            "unvalidated_routes": {
                "invoices": {
                    "enabled": False,
                    "sender": "org",
                    "recipients": ROUTE_TO,
                    "subject_template": "Invoice {customer}",
                }
            }
        },
        [user(A)],
        {},
        {"org"},
    ),
    (
        "route-no-recipients",
        {
            "routes": {
                "requests": {"enabled": True},
                "work_orders": {"enabled": True, "sender": A, "recipients": ROUTE_TO},
            }
        },
        [user(A)],
        {},
        {"org"},
    ),
    (
        "test-failed",
        {},
        [user(A), user(B), user(C)],
        {
            "history": history(
                (A, "2026-06-01", True),
                (A, "2026-06-02", False),
                (B, "2026-06-01", False),
                (B, "2026-06-02", True),
            )
        },
        {A},
    ),
    (
        "test-stale",
        {},
        [user(A), user(B), user(C)],
        {
            "history": history((A, "2026-06-29", True), (B, "2026-01-01", True)),
            "now": NOW,
        },
        {B, C},
    ),
    ("test-stale", {}, [user(A)], {}, set()),
]


def test_every_rule_has_cases_both_ways() -> None:
    ids = {rule.id for rule in RULES}
    assert ids == {case[0] for case in CASES}
    assert len(ids) == len(RULES)


@pytest.mark.parametrize(
    ("rule", "org_kwargs", "rows", "kwargs", "expected"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_rule(
    rule: str,
    org_kwargs: dict[str, Any],
    rows: list[dict[str, Any]],
    kwargs: dict[str, Any],
    expected: set[str],
) -> None:
    org = org_of({**BASE_ORG, **org_kwargs})
    findings = audit(org, pd.DataFrame(rows), **kwargs)
    hits = set(findings.loc[findings["rule"] == rule, "user_code"])
    assert hits == expected
    codes = {str(r["user_code"]) for r in rows} | {"org", "ghost@x.example.com"}
    assert len(hits) < len(codes), "every case also needs a row that does not trigger"


def test_findings_columns_exact_and_sorted_by_severity() -> None:
    org = OrgSettings(**BASE_ORG)
    findings = audit(org, pd.DataFrame([user(A, mode="mapi"), user(B, mode="exchange_webdav")]))
    assert list(findings.columns) == list(FINDINGS_COLUMNS)
    assert list(findings["severity"]) == sorted(
        findings["severity"], key=["critical", "warning", "info"].index
    )
    empty = audit(org, pd.DataFrame([user(A)]))
    assert empty.empty
    assert list(empty.columns) == list(FINDINGS_COLUMNS)


def test_internal_domain_says_what_is_internal_and_why() -> None:
    org = OrgSettings(host="mailhost", from_address="erp@corp.local")
    users = pd.DataFrame(
        [
            user(A),
            user(B, host="smtp.plant.internal", from_address=B),
            user(C, mode="exchange_ews", host="exchange.corp.local", from_address=C),
        ]
    )
    findings = audit(org, users)
    notes = findings[findings["rule"] == "internal-domain"].set_index("user_code")["message"]
    assert "erp@corp.local is in the internal domain .local" in notes[A]
    assert "recipients outside the network cannot answer it" in notes[A]
    assert "mailhost is a name without a domain" in notes[A]
    assert notes[B].startswith("the server smtp.plant.internal is in the internal domain")
    assert "only machines inside the network reach it" in notes[B]
    assert notes[C].startswith("the server exchange.corp.local is in the internal domain .local")
    assert set(findings.loc[findings["rule"] == "internal-domain", "severity"]) == {"info"}


def test_messages_name_the_users_value() -> None:
    org = OrgSettings(**BASE_ORG)
    findings = audit(org, pd.DataFrame([user(A, host="192.0.2.10")]))
    (message,) = findings.loc[findings["rule"] == "ip-address-host", "message"]
    assert "192.0.2.10" in message


def test_ten_thousand_users_without_a_per_user_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 10_000
    calls: list[str] = []
    domains: list[str] = []
    real_check, real_domain = check_address, address_domain

    def counting_check(value: str) -> str:
        calls.append(value)
        return real_check(value)

    def counting_domain(domain: str) -> AddressDomain:
        domains.append(domain)
        return real_domain(domain)

    monkeypatch.setattr(rules_module, "check_address", counting_check)
    monkeypatch.setattr(rules_module, "address_domain", counting_domain)
    idx = np.arange(n)
    users = pd.DataFrame(
        {
            "user_code": [f"user{i}@example.com" for i in idx],
            # A fifth of the local parts are not ASCII: they too skip the strict check.
            "email": np.where(
                idx % 100 == 0,
                "broken",
                np.where(
                    idx % 5 == 1, [f"jürgen{i}@example.com" for i in idx], "staff@example.com"
                ),
            ),
            "override_enabled": idx % 10 == 0,
            "mode": pd.Series(["mapi"] * n).where(pd.Series(idx % 10 == 0)),
            "host": None,
            "port": pd.array([pd.NA] * n, dtype="Int64"),
        }
    )
    findings = audit(OrgSettings(**BASE_ORG), users)
    counts = findings["rule"].value_counts()
    assert counts["mapi-no-contact-sync"] == n // 10
    assert counts["invalid-address"] == n // 100
    # The strict check runs per distinct domain or unusual value, never once per user.
    assert set(calls) == {"broken"}
    assert set(domains) == {"example.com"}
    assert len(calls) + len(domains) <= 4  # per column checked (email, From), not per user


@pytest.mark.parametrize(
    "row",
    [
        {"user_code": None, "port": "abc", "mode": "carrier pigeon"},
        {"user_code": "x", "override_enabled": "maybe", "port": -5, "security": "SSL"},
        {"user_code": 42, "override_enabled": "yes", "port": 70000.5, "email": 3.5},
        {"user_code": "<b>", "override_enabled": 1, "host": "a b", "auth": "kerberos"},
        {"user_code": "y\n", "override_enabled": "x", "from_address": "\ud800@example.com"},
        {"user_code": float("nan"), "override_enabled": np.nan, "username": ""},
    ],
)
def test_invalid_inputs_never_raise(row: dict[str, Any]) -> None:
    findings = audit(
        OrgSettings(edition="cloud"),
        pd.DataFrame([row, user(A)]),
        accounts_with_secret=set(),
        history=history((A, "2026-01-01", False)),
        now=NOW,
    )
    assert list(findings.columns) == list(FINDINGS_COLUMNS)


@pytest.mark.parametrize(
    "value",
    [
        "a@example.com",
        "a.b+tag@example.com",
        ".a@example.com",
        "a..b@example.com",
        "a@example..com",
        "a@-example.com",
        "a@localhost",
        "a@123",
        " a@example.com ",
        "ü@example.com",
        "a@bücher.example",
        "a@example.com\n",
        "a" * 65 + "@example.com",
        "a@" + "b" * 64 + ".example.com",
        "a@@example.com",
        "a@exa mple.com",
        # Internal domains: valid in both, whatever the case or the suffix.
        "a@corp.local",
        "a@CORP.LOCAL",
        "a@x.home.arpa",
        "a@plant.internal",
        "a@mail.test",
        "a@mailhost",
        "a@home.arpa",
        "a@-corp.local",
        "a@x.in-addr.arpa",
        "a@mail.localhost",
    ],
)
def test_fast_address_check_agrees_with_check_address(value: str) -> None:
    try:
        check_address(value)
    except ValueError:
        expected = False
    else:
        expected = True
    findings = audit(OrgSettings(**BASE_ORG), pd.DataFrame([user(A, email=value)]))
    assert ("invalid-address" not in set(findings["rule"])) is expected


def test_unparsable_override_flag_does_not_override() -> None:
    findings = audit(
        OrgSettings(**BASE_ORG),
        pd.DataFrame([{"user_code": A, "override_enabled": "no", "mode": "mapi"}]),
    )
    assert "mapi-no-contact-sync" not in set(findings["rule"])


#: Messy exported users, six orgs and the findings the audit gave for them before it was
#: rewritten for speed: the rewrite must give exactly the same ones, message for message.
#: Changes since, each on purpose (issue 10): internal-domain, lotus-notes-client,
#: outlook-desktop-client, cloud-user-password and cloud-account-ignored added, with three users
#: and a cloud org (the sixth, audited with secrets) to show them; ews-exchange-online follows a
#: user's own server; cloud users sign in as their user code, so from-username-domain-mismatch
#: no longer fires there and plaintext-auth names the user code; mapi-no-contact-sync mentions
#: terminal servers. Then provider-host-typo and provider-account-mismatch (the validator's
#: "did you mean" and mismatch warnings as findings), with users tia and max to show them; no
#: earlier finding changed.
RECORDED = Path(__file__).parent / "data" / "audit_findings.json"


def test_findings_match_the_recorded_ones_on_messy_input() -> None:
    record = json.loads(RECORDED.read_text(encoding="utf-8"))
    users = pd.DataFrame(record["users"])
    past = pd.DataFrame(record["history"], columns=["user_code", "at", "ok", "cause"])
    past["at"] = pd.to_datetime(past["at"], utc=True)
    extra: dict[str, Any] = {
        "accounts_with_secret": secrets_with(*record["secrets"]),
        "history": past,
    }
    found: list[list[Any]] = []
    for i, org_kwargs in enumerate(record["orgs"]):
        kwargs = {**extra, "now": NOW} if i in (0, 5) else {}
        findings = audit(org_of(org_kwargs), users, **kwargs)
        shown = findings[["user_code", "rule", "message"]].itertuples(index=False)
        found += [[i, *row] for row in shown]
    assert found == record["findings"]
    assert {row[2] for row in record["findings"]} == {rule.id for rule in RULES}


# --------------------------------------------------------------------------- reports


def _sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    org = OrgSettings(**BASE_ORG)
    users = pd.DataFrame(
        [user("<script>alert(1)</script>", mode="mapi"), user(B, mode="exchange_webdav")]
    )
    return audit(org, users), effective_settings(org, users)


def test_summary_counts() -> None:
    findings, _ = _sample()
    table = summary(findings)
    assert list(table.columns) == ["rule", "severity", "findings", "users"]
    assert table["findings"].sum() == len(findings)
    assert table.iloc[0]["severity"] == "critical"
    empty = summary(findings.iloc[:0])
    assert empty.empty
    assert list(empty.columns) == list(table.columns)


def test_summary_counts_users_once_per_rule() -> None:
    """Two findings of one rule for one user (e.g. two routes sending as it) are one user."""
    findings = pd.DataFrame(
        {
            "user_code": ["a", "a", "b", "a"],
            "rule": ["route-no-recipients", "route-no-recipients", "route-no-recipients", "x"],
            "severity": ["warning", "warning", "warning", "critical"],
            "message": "",
            "fix": "",
        }
    )
    table = summary(findings).set_index("rule")
    assert list(table.loc["route-no-recipients", ["findings", "users"]]) == [3, 2]
    assert list(table.loc["x", ["findings", "users"]]) == [1, 1]
    assert list(table.index) == ["x", "route-no-recipients"]  # most severe first
    assert affected_users(findings) == 2


def test_charts_are_figures() -> None:
    findings, effective = _sample()
    figures = charts(findings, effective)
    assert len(figures) == 3
    assert all(isinstance(f, Figure) for f in figures)
    assert len(charts(findings.iloc[:0], effective.iloc[:0])) == 3


def test_html_escapes_values() -> None:
    findings, effective = _sample()
    page = to_html(findings, effective)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "sev-critical" in page


def test_json_export_has_exactly_the_five_keys(tmp_path: Path) -> None:
    findings, _ = _sample()
    path = export(findings, tmp_path / "findings.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == len(findings)
    assert all(set(r) == set(FINDINGS_COLUMNS) for r in records)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".html"])
def test_export_formats(tmp_path: Path, suffix: str) -> None:
    findings, _ = _sample()
    path = export(findings, tmp_path / f"findings{suffix}")
    if suffix == ".csv":
        assert pd.read_csv(path).shape == findings.shape
    elif suffix == ".xlsx":
        assert list(pd.read_excel(path).columns) == list(FINDINGS_COLUMNS)
    else:
        assert "<script>" not in path.read_text(encoding="utf-8")


def test_export_refuses_unknown_suffix(tmp_path: Path) -> None:
    findings, _ = _sample()
    with pytest.raises(ValueError, match=r"\.csv, \.xlsx"):
        export(findings, tmp_path / "findings.pdf")


def test_reports_load_matplotlib_only_to_draw() -> None:
    """The dashboard counts with the report's helpers without paying for matplotlib."""
    import subprocess
    import sys

    code = (
        "import sys, mailkit.audit.report, mailkit.widgets.audit\n"
        "assert 'matplotlib' not in sys.modules\n"
        "import pandas as pd\n"
        "from mailkit.audit.report import charts\n"
        "charts(pd.DataFrame(columns=['user_code', 'rule', 'severity']), "
        "pd.DataFrame(columns=['mode']))\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
