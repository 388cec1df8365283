"""The ``mailkit`` command line, run in-process and, for exit codes, as the real console script."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.store import Store

LEGACY_INI = """\
[Email]
SMTPServerName = smtp.office365.com
Port = 587
TLSSettings = TLS
UserName = jordan@example.com
AuthType = AuthLogin
SenderProtocol = SMTP
Priority = Normal
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def legacy_file(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.ini"
    path.write_text(LEGACY_INI, encoding="utf-8")
    return path


def test_migrate_json_and_save(tmp_path: Path, legacy_file: Path) -> None:
    db = tmp_path / "org.sqlite"
    code, out, err = run("migrate", str(legacy_file), "--profile", str(db), "--json")
    assert code == EXIT_OK
    assert json.loads(err) == {"notices": [f"created profile 'org' at {db}"]}
    data = json.loads(out)
    assert data["org"]["host"] == "smtp.office365.com"
    assert data["org"]["security"] == "starttls"
    assert data["saved_to"] == str(db)
    assert {row["old_key"] for row in data["report"]} >= {"SMTPServerName", "TLSSettings"}
    assert set(data["report"][0]) == {"old_key", "old_value", "new_field", "new_value", "note"}
    with Store.open(db) as store:
        assert store.get_org().host == "smtp.office365.com"


def test_migrate_table_dry_run_saves_nothing(tmp_path: Path, legacy_file: Path) -> None:
    db = tmp_path / "org.sqlite"
    code, out, _ = run("migrate", str(legacy_file), "--profile", str(db), "--dry-run")
    assert code == EXIT_OK
    assert "SMTPServerName" in out
    assert "smtp.office365.com" in out
    assert not db.exists()


def test_migrate_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = run("migrate", str(tmp_path / "nope.ini"))
    assert code == EXIT_USAGE
    assert out == ""
    assert "nope.ini" in err
    assert "Traceback" not in err


def test_migrate_password_without_a_secret_store(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"SMTPServerName": "smtp.example.com", "Password": "pw-1"}))
    code, _, err = run("migrate", str(legacy), "--secrets", "none", "--json")
    assert code == EXIT_USAGE
    payload = json.loads(err)
    assert payload["error"] == "SecretStoreError"
    assert "pw-1" not in err
    code, out, _ = run("migrate", str(legacy), "--secrets", "none", "--drop-password", "--json")
    assert code == EXIT_OK
    assert "pw-1" not in out


def test_users_import_export_csv_and_excel(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    source = tmp_path / "users.csv"
    source.write_text(
        "Code,Name,E-mail\nann,Ann Å,ann@corp.example\nbob,Bob,bob@corp.example\n",
        encoding="utf-8",
    )
    maps = ["--map", "Code=user_code", "--map", "Name=display_name", "--map", "E-mail=email"]
    code, out, err = run("users", "import", str(source), "--profile", str(db), *maps, "--json")
    assert code == EXIT_OK
    assert json.loads(err)["notices"] == [f"created profile 'org' at {db}"]
    assert json.loads(out)["imported"] == 2
    for suffix in ("csv", "xlsx"):
        target = tmp_path / f"out.{suffix}"
        code, out, _ = run("users", "export", str(target), "--profile", str(db))
        assert code == EXIT_OK
        assert "2 user(s)" in out
        assert target.stat().st_size > 0
    assert "Ann Å" in (tmp_path / "out.csv").read_text(encoding="utf-8")


def test_users_import_reports_every_bad_row(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    source = tmp_path / "users.csv"
    source.write_text(
        "user_code,email,port\nann,not-an-address,587\nbob,bob@corp.example,99999\n",
        encoding="utf-8",
    )
    code, _, err = run("users", "import", str(source), "--profile", str(db), "--json")
    assert code == EXIT_USAGE
    payload = json.loads(err)
    fields = " ".join(p["field"] for p in payload["problems"])
    assert "row 2" in fields
    assert "row 3" in fields
    with Store.open(db) as store:
        assert store.users() == []


def test_bad_map_argument(tmp_path: Path) -> None:
    code, _, err = run(
        "users", "import", "x.csv", "--profile", str(tmp_path / "p.sqlite"), "--map", "nonsense"
    )
    assert code == EXIT_USAGE
    assert "COLUMN=FIELD" in err


def test_profile_export_import_round_trip(tmp_path: Path, legacy_file: Path) -> None:
    db = tmp_path / "a.sqlite"
    assert run("migrate", str(legacy_file), "--profile", str(db))[0] == EXIT_OK
    toml = tmp_path / "profile.toml"
    code, out, _ = run("profile", "export", str(toml), "--profile", str(db))
    assert code == EXIT_OK
    assert "secrets are never exported" in out
    other = tmp_path / "b.sqlite"
    code, _, _ = run("profile", "import", str(toml), "--profile", str(other))
    assert code == EXIT_OK
    with Store.open(db) as a, Store.open(other) as b:
        assert a.get_org() == b.get_org()


def test_profile_import_invalid_toml_names_the_field(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('[org]\nport = 70000\nhost = "smtp.example.com"\n', encoding="utf-8")
    code, _, err = run("profile", "import", str(toml), "--profile", str(tmp_path / "p.sqlite"))
    assert code == EXIT_USAGE
    assert "port" in err
    assert "65535" in err


def test_corrupt_profile_exit_code(tmp_path: Path, legacy_file: Path) -> None:
    db = tmp_path / "broken.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    code, _, err = run("migrate", str(legacy_file), "--profile", str(db), "--json")
    assert code == EXIT_USAGE
    payload = json.loads(err)
    assert payload["error"] == "StoreCorruptError"
    assert "broken.sqlite" in payload["message"]


def test_usage_error_is_not_a_traceback() -> None:
    code, _, err = run("frobnicate")
    assert code == EXIT_USAGE
    assert "mailkit --help" in err or "see 'mailkit" in err


def test_console_script_exit_codes(tmp_path: Path, legacy_file: Path) -> None:
    """The installed entry point: real process, real exit status, nothing on stderr on success."""
    exe = Path(sys.executable).with_name("mailkit")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    ok = subprocess.run(
        [str(exe), "migrate", str(legacy_file), "--json", "--secrets", "none"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["org"]["port"] == 587
    bad = subprocess.run(
        [str(exe), "migrate", str(tmp_path / "missing.ini")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert bad.returncode == EXIT_USAGE
    assert bad.stderr.startswith("mailkit: error:")
    assert "Traceback" not in bad.stderr
