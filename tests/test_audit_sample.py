"""The generated organisation: deterministic, quick, and it gives the audit real work."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailkit.audit import RULES, audit
from mailkit.audit.sample import HISTORY_COLUMNS, load_sample, on_demo_server, sample_org
from mailkit.columns import USERS_COLUMNS
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, accounts_with_secret, secret_key
from mailkit.settings import UserSettings
from mailkit.store import Store

NOW = datetime(2025, 6, 1, tzinfo=UTC)

#: Every rule the sample is meant to trigger (missing-from and cloud-* need another org).
EXPECTED_RULES = {rule.id for rule in RULES} - {
    "missing-from",
    "cloud-requires-smtp",
    "cloud-user-code-not-email",
    "cloud-user-password",
    "cloud-account-ignored",
    # Slips the forms warn about as they are typed; the generated org has none.
    "provider-host-typo",
    "provider-account-mismatch",
    # Only a stored route that bypassed validation has a broken template; the generated org's
    # routes send as the org (over SMTP) and as a user who left, never from a desktop mode.
    "route-template-invalid",
    "route-sender-not-sendable",
}


def test_same_seed_same_org_other_seed_other_org() -> None:
    first, again = sample_org(seed=7, now=NOW), sample_org(seed=7, now=NOW)
    assert first.org == again.org
    assert first.users.equals(again.users)
    assert first.history.equals(again.history)
    assert not sample_org(seed=8, now=NOW).users.equals(first.users)


def test_shape_and_speed() -> None:
    started = time.perf_counter()
    sample = sample_org(400, now=NOW)
    assert time.perf_counter() - started < 2
    assert list(sample.users.columns) == list(USERS_COLUMNS)
    assert len(sample.users) == 400
    assert list(sample.history.columns) == list(HISTORY_COLUMNS)
    assert sample.history["at"].is_monotonic_increasing
    assert (sample.history["at"] <= NOW).all()
    with pytest.raises(ValueError, match="at least 100"):
        sample_org(20)


def test_the_sample_triggers_a_broad_set_of_rules() -> None:
    sample = sample_org(now=NOW)
    secrets = MemorySecretStore()
    secrets.set(secret_key("default", "org"), Secret("org-password"))
    findings = audit(
        sample.org,
        sample.users,
        accounts_with_secret=accounts_with_secret(
            secrets, "default", ["org", *sample.users["user_code"]]
        ),
        history=sample.history,
        now=NOW,
    )
    fired = set(findings["rule"])
    assert fired >= EXPECTED_RULES, EXPECTED_RULES - fired
    # Most users are fine apart from history: problems are the exception, as in a real org.
    serious = findings[findings["severity"] != "info"]
    assert serious["user_code"].nunique() < len(sample.users) / 2
    # The org's own password is stored: only users with their own sign-in lack one.
    missing = set(findings.loc[findings["rule"] == "missing-secret", "user_code"])
    own_login = set(sample.users.loc[sample.users["username"].notna(), "user_code"])
    assert missing
    assert missing <= own_login


def test_load_sample_stores_what_is_valid_and_returns_the_rest(tmp_path: Path) -> None:
    sample = sample_org(now=NOW)
    with Store.open(tmp_path / "acme.sqlite", create=True) as store:
        refused = load_sample(store, sample)
        stored = store.users()
        history = store.history_frame()
        assert store.get_org() == sample.org
    assert list(refused.columns) == ["user_code", "problem"]
    assert len(stored) + len(refused) == len(sample.users)
    assert refused["problem"].str.contains("appears twice").sum() == 4
    assert refused["problem"].str.contains("not a valid address|single bare").sum() >= 4
    assert len(history) == len(sample.history)
    assert int((~history["ok"]).sum()) == int((~sample.history["ok"]).sum())


class _Demo:
    """What on_demo_server needs of the demo settings: a user per account."""

    def user(self, which: str) -> UserSettings:
        return UserSettings(
            user_code=f"{which}@example.com",
            override_enabled=True,
            username=f"{which}@example.com",
            from_address=f"{which}@example.com",
        )


def test_on_demo_server_keeps_the_users_codes_and_cycles_the_accounts() -> None:
    users = [UserSettings(user_code=c, display_name=c.title()) for c in ("ann", "bob", "cy")]
    stand_ins = on_demo_server(users, _Demo(), ["demo", "greylisted"])  # type: ignore[arg-type]
    assert [u.user_code for u in stand_ins] == ["ann", "bob", "cy"]
    assert [u.display_name for u in stand_ins] == ["Ann", "Bob", "Cy"]
    assert [u.username for u in stand_ins] == [
        "demo@example.com",
        "greylisted@example.com",
        "demo@example.com",
    ]


@pytest.mark.parametrize(("n_users", "words"), [(99, "at least 100"), (1_601, "at most 1,600")])
def test_sizes_outside_the_range_are_refused_by_name(n_users: int, words: str) -> None:
    with pytest.raises(ValueError, match=f"^n_users: .*{words}"):
        sample_org(n_users)


def test_summary_charts_and_dashboard_agree_and_say_what_they_count(tmp_path: Path) -> None:
    """Findings and users are counted the same way on every face (issue 10)."""
    from matplotlib.patches import Rectangle

    from mailkit.audit import effective_settings
    from mailkit.audit.report import affected_users, charts, summary
    from mailkit.widgets import AuditDashboard
    from mailkit.widgets.audit import ALL

    with Store.open(tmp_path / "acme.sqlite", profile="acme", create=True) as store:
        load_sample(store, sample_org(150, seed=3, now=NOW))
        board = AuditDashboard(store, now=lambda: NOW)
        users = store.users_frame()
        findings = board.findings
        table = summary(findings)
        n, affected = len(findings), affected_users(findings)
        assert list(table.columns) == ["rule", "severity", "findings", "users"]
        assert table["findings"].sum() == n > affected > 0
        assert (table["users"] <= table["findings"]).all()
        assert board.severity.options[0] == (f"all ({n} findings)", ALL)
        assert f"{n} of {n} finding(s), for {affected} user(s); {len(users)} user(s) audited." in (
            board.count.value
        )
        for rule, _, count, named in table.itertuples(index=False, name=None):
            label = f"{rule} ({count} finding{'' if count == 1 else 's'})"
            assert (label, rule) in board.rule.options
            board.rule.value = rule
            assert len(board.visible) == count
            assert len(board.user_list.options) == named
            assert f"{count} of {n} finding(s), for {named} user(s)" in board.count.value
        board.rule.value = ALL
        for severity, count in table.groupby("severity")["findings"].sum().items():
            assert (f"{severity} ({count} findings)", severity) in board.severity.options

        by_rule, by_mode, sources = charts(findings, effective_settings(store.get_org(), users))
    (axes,) = by_rule.axes
    assert axes.get_title() == (
        f"Findings by rule and severity: {n} finding(s) for {affected} user(s)"
    )
    assert round(sum(bar.get_width() for bar in axes.patches if isinstance(bar, Rectangle))) == n
    (axes,) = by_mode.axes
    assert axes.get_title() == f"Users by mode: {len(users)} user(s) audited"
    bars = [bar for bar in axes.patches if isinstance(bar, Rectangle)]
    assert round(sum(bar.get_height() for bar in bars)) == len(users)
    assert sources.axes[0].get_title().endswith(f"for {len(users)} user(s)")
