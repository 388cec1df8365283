"""``mailkit audit``: sources, formats, and --fail-on's exit code."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store

FIVE_KEYS = {"user_code", "rule", "severity", "message", "fix"}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    db = tmp_path / "org.sqlite"
    with Store.open(db) as store:
        store.set_org(
            OrgSettings(host="smtp.office365.com", port=587, from_address="it@example.com")
        )
        store.put_users(
            [
                UserSettings(user_code="ann", email="ann@example.com"),
                UserSettings(user_code="bob", override_enabled=True, auth="msn"),
            ]
        )
    return db


def test_json_findings_have_exactly_five_keys(profile: Path) -> None:
    code, out, err = run("audit", "--profile", str(profile), "--format", "json")
    assert (code, err) == (EXIT_OK, "")
    findings = json.loads(out)
    assert findings
    assert all(set(f) == FIVE_KEYS for f in findings)
    assert {"msn-auth-legacy"} <= {f["rule"] for f in findings}


def test_fail_on_sets_the_exit_code(profile: Path) -> None:
    _, out, _ = run("audit", "--profile", str(profile), "--format", "json")
    severities = {f["severity"] for f in json.loads(out)}
    assert "warning" in severities or "critical" in severities
    assert run("audit", "--profile", str(profile), "--fail-on", "warning")[0] == 1
    clean = profile.parent / "clean.sqlite"
    Store.open(clean).close()
    assert run("audit", "--profile", str(clean), "--fail-on", "warning")[0] == EXIT_OK


def test_csv_with_a_mapping_and_a_table(tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_text("Code,E-mail\nann,not-an-address\nbob,bob@example.com\n", encoding="utf-8")
    code, out, _ = run(
        "audit", "--csv", str(source), "--map", "Code=user_code", "--map", "E-mail=email"
    )
    assert code == EXIT_OK
    assert out.startswith("2 user(s) from")
    assert "invalid-address" in out
    assert "ann" in out


def test_sql_source_and_html_file(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE staff (code TEXT, mail TEXT)")
        conn.execute(
            "INSERT INTO staff VALUES ('ann', 'ann@example.com'), ('ann', 'x@example.com')"
        )
    report = tmp_path / "report.html"
    code, _, err = run(
        "audit", "--sql", f"sqlite:///{db}", "--query", "SELECT code, mail FROM staff",
        "--map", "code=user_code", "--map", "mail=email", "--format", "html", "-o", str(report),
    )  # fmt: skip
    assert (code, err) == (EXIT_OK, "")
    text = report.read_text(encoding="utf-8")
    assert "duplicate-user-code" in text
    assert "<html" in text.lower()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["audit"], "--profile DB, --csv, --excel or --sql"),
        (["audit", "--sql", "sqlite:///x.db"], "--sql needs --query"),
        (["audit", "--query", "SELECT 1"], "--query goes with --sql"),
    ],
)
def test_usage_errors(argv: list[str], says: str) -> None:
    code, _, err = run(*argv)
    assert code == EXIT_USAGE
    assert says in err
