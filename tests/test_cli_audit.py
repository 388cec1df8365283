"""``mailkit audit``: sources, formats, and --fail-on's exit code."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    with Store.open(db, create=True) as store:
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
    Store.open(clean, create=True).close()
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


# --------------------------------------------------------------------------- Excel


def _excel_export(path: Path) -> Path:
    """An application's export in its own column names, one bad address among them."""
    pd.DataFrame(
        {
            "Code": ["ann", "bob", "cy"],
            "E-mail": ["ann@example.com", "bob@@example.com", "cy@example.com"],
            "Override": ["no", "yes", "no"],
            "Auth": ["", "msn", ""],
        }
    ).to_excel(path, index=False, engine="openpyxl")
    return path


def test_excel_source_with_a_mapping(tmp_path: Path) -> None:
    source = _excel_export(tmp_path / "users.xlsx")
    code, out, err = run(
        "audit", "--excel", str(source), "--format", "json",
        "--map", "Code=user_code", "--map", "E-mail=email",
        "--map", "Override=override_enabled", "--map", "Auth=auth",
    )  # fmt: skip
    assert (code, err) == (EXIT_OK, "")
    findings = json.loads(out)
    assert {(f["user_code"], f["rule"]) for f in findings} >= {
        ("bob", "invalid-address"),
        ("bob", "msn-auth-legacy"),
    }
    assert all(set(f) == FIVE_KEYS for f in findings)


def test_excel_source_in_canonical_columns_without_a_mapping(tmp_path: Path) -> None:
    source = tmp_path / "canonical.xlsx"
    pd.DataFrame(
        {
            "user_code": ["ann", "ANN", "dan"],
            "email": ["ann@example.com", "ann@example.com", "dan@example"],
            "override_enabled": ["no", "no", "yes"],
            "mode": ["", "", "mapi"],
        }
    ).to_excel(source, index=False, engine="openpyxl")
    code, out, _ = run("audit", "--excel", str(source))
    assert code == EXIT_OK
    assert out.startswith(f"3 user(s) from {source}")
    assert "duplicate-user-code" in out
    assert "mapi-no-contact-sync" in out


def test_excel_source_with_foreign_columns_and_no_mapping_is_refused(tmp_path: Path) -> None:
    source = _excel_export(tmp_path / "users.xlsx")
    code, out, err = run("audit", "--excel", str(source))
    assert code != EXIT_OK
    assert out == ""
    assert "user_code" in err


def test_xlsx_output_is_a_workbook_of_the_five_columns(profile: Path, tmp_path: Path) -> None:
    target = tmp_path / "findings.xlsx"
    code, out, err = run("audit", "--profile", str(profile), "--format", "xlsx", "-o", str(target))
    assert (code, out, err) == (EXIT_OK, "", "")
    _, as_json, _ = run("audit", "--profile", str(profile), "--format", "json")
    expected = json.loads(as_json)
    book = openpyxl.load_workbook(target, read_only=True)
    assert book.sheetnames == ["findings"]
    sheet = pd.read_excel(target, sheet_name="findings", dtype=str, engine="openpyxl")
    assert list(sheet.columns) == ["user_code", "rule", "severity", "message", "fix"]
    assert sheet.to_dict(orient="records") == expected


def test_xlsx_output_without_an_extension_gets_one(profile: Path, tmp_path: Path) -> None:
    code, _, _ = run(
        "audit", "--profile", str(profile), "--format", "xlsx", "-o", str(tmp_path / "report")
    )
    assert code == EXIT_OK
    assert pd.read_excel(tmp_path / "report.xlsx").shape[1] == 5


def test_xlsx_to_stdout_is_a_usage_error(profile: Path) -> None:
    code, out, err = run("audit", "--profile", str(profile), "--format", "xlsx")
    assert code == EXIT_USAGE
    assert out == ""
    assert "--format xlsx writes a file: add -o OUT.xlsx" in err


# --------------------------------------------------------------------------- the CSV writer

#: Cells a spreadsheet or a CSV reader trips on: formula triggers first, the apostrophe that
#: guards them, quotes, separators and line breaks anywhere, NUL, padding, non-ASCII, empty.
HOSTILE_CELLS = [
    "=1+1",
    "+x",
    "-2",
    "@SUM(A1)",
    "\tlead",
    "\rlead",
    "'quoted",
    "''",
    "a,b",
    'say "hi"',
    "two\nlines",
    "cr\rinside",
    "crlf\r\nend",
    "\x00=after-nul",
    "nul\x00inside",
    " padded ",
    "李娜,søren",
    '=HYPERLINK("http://x","y")',
    "",
    "plain",
]


def _pandas_csv(frame: pd.DataFrame) -> str:
    """The reference: what pandas writes for the neutralised frame."""
    from mailkit.users import neutralise_cells

    buffer = io.StringIO()
    frame.apply(neutralise_cells).to_csv(buffer, index=False)
    return buffer.getvalue()


def _frames() -> dict[str, pd.DataFrame]:
    n = len(HOSTILE_CELLS)
    text = pd.DataFrame(
        {
            "user_code": HOSTILE_CELLS,
            "rule": ["r"] * n,
            "severity": list(reversed(HOSTILE_CELLS)),
            "message": ["m, with a comma"] * (n // 2) + HOSTILE_CELLS[: n - n // 2],
            "fix": [None, *HOSTILE_CELLS[1:]],
        }
    )
    with_missing = text.astype(object)
    with_missing.loc[[0, 3], "message"] = [None, float("nan")]
    return {
        "str columns": text.astype("str"),
        "object columns with None and NaN": with_missing,
        "string[python] with NA": text.astype("string").mask(text.index.to_series() % 3 == 0),
        "no rows": text.astype("str").iloc[:0],
        "one column": text[["user_code"]].astype("str"),
        "a number column": text.assign(port=range(n)),
        "mixed object column": text.astype(object).assign(rule=[1, *["r"] * (n - 1)]),
        "formula-like header": text.rename(columns={"rule": "=rule", "fix": "a,b"}),
    }


@pytest.mark.parametrize("name", list(_frames()))
def test_csv_export_writes_exactly_what_pandas_would(name: str, tmp_path: Path) -> None:
    from mailkit.audit.report import _text_columns, write_csv

    frame = _frames()[name]
    # Text frames take the fast path, the others pandas' writer: both must give these bytes.
    fast = name not in ("one column", "a number column", "mixed object column")
    assert (_text_columns(frame) is not None) is fast
    expected = _pandas_csv(frame)
    stream = io.StringIO()
    write_csv(frame, stream)
    assert stream.getvalue() == expected
    write_csv(frame, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == expected.encode("utf-8")


@given(
    rows=st.lists(
        st.tuples(
            st.text(alphabet=st.sampled_from(list("=+-@\t\r\n'\",\x00 aé李")), max_size=6),
            st.sampled_from(["", "x", "=y", "a,b"]),
            st.one_of(st.none(), st.text(max_size=4)),
        ),
        max_size=30,
    )
)
@settings(max_examples=150, deadline=None)
def test_csv_export_matches_pandas_for_any_text(rows: list[tuple[str, str, str | None]]) -> None:
    from mailkit.audit.report import write_csv

    frame = pd.DataFrame(rows, columns=["user_code", "rule", "message"]).astype(object)
    stream = io.StringIO()
    write_csv(frame, stream)
    assert stream.getvalue() == _pandas_csv(frame)


def test_audit_csv_file_is_the_findings_as_pandas_writes_them(tmp_path: Path) -> None:
    """End to end: hostile user codes from a CSV, findings written with -o, same bytes."""
    users = tmp_path / "users.csv"
    pd.DataFrame(
        {
            "user_code": [c or "empty" for c in HOSTILE_CELLS if "\x00" not in c],
            "email": ["not an address, really"] * (len(HOSTILE_CELLS) - 2),
            "override_enabled": ["true"] * (len(HOSTILE_CELLS) - 2),
            "host": ['smtp,"odd"host'] * (len(HOSTILE_CELLS) - 2),
        }
    ).to_csv(users, index=False)
    code, out, err = run("audit", "--csv", str(users), "--format", "json")
    assert code == EXIT_OK, err
    findings = pd.DataFrame(json.loads(out), columns=list(FIVE_KEYS_ORDER)).astype("str")
    assert len(findings) > len(HOSTILE_CELLS)  # the hostile codes are in the findings
    target = tmp_path / "findings.csv"
    assert run("audit", "--csv", str(users), "--format", "csv", "-o", str(target))[0] == EXIT_OK
    assert target.read_bytes() == _pandas_csv(findings).encode("utf-8")
    code, out, _ = run("audit", "--csv", str(users), "--format", "csv")
    assert out == _pandas_csv(findings)
    assert "secrets-not-checked" in out  # the note row is kept


FIVE_KEYS_ORDER = ("user_code", "rule", "severity", "message", "fix")
