"""The ``mailkit`` command line, run in-process and, for exit codes, as the real console script."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from smtpd_servers import MailServer
from test_file_secrets import all_encodings

from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.profiles import PROFILE_ENV
from mailkit.secrets import PASSPHRASE_ENV
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store

CANARY = "canary-Cli!7qZ#x9é"

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


# --------------------------------------------------------------------------- profiles & secrets


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private data folder, no MAILKIT_* variables and no OS keyring (as on a Jupyter server)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in (PROFILE_ENV, PASSPHRASE_ENV):
        monkeypatch.delenv(name, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    yield tmp_path / "data" / "mailkit"
    keyring.set_keyring(previous)


def _reading_commands(profile: str, out: Path) -> list[list[str]]:
    return [
        ["audit", "--profile", profile],
        ["audit", "--profile", profile, "--fail-on", "critical", "--json"],
        ["test", "--profile", profile, "--to", "bob@example.org"],
        ["users", "export", str(out / "users.csv"), "--profile", profile],
        ["profile", "export", str(out / "profile.toml"), "--profile", profile],
        ["secret", "list", "--profile", profile],
    ]


@pytest.mark.parametrize("spec", ["typo.sqlite", "typo"])
def test_reading_commands_never_create_a_profile(data: Path, tmp_path: Path, spec: str) -> None:
    profile = str(tmp_path / spec) if spec.endswith(".sqlite") else spec
    expected = tmp_path / spec if spec.endswith(".sqlite") else data / "typo.sqlite"
    for argv in _reading_commands(profile, tmp_path):
        code, out, err = run(*argv)
        assert code == EXIT_USAGE, (argv, out, err)
        message = json.loads(err)["message"] if "--json" in argv else err
        assert str(expected) in message, argv
        assert f"mailkit profile init {profile}" in message, argv
        assert "Traceback" not in err
        assert not expected.exists(), argv
        assert not data.exists(), argv  # not even the data folder
        assert not list(tmp_path.glob("typo*")), argv
    assert not (tmp_path / "users.csv").exists()


def test_a_missing_default_profile_names_mailkit_profile(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run("users", "export", "x.csv")
    assert code == EXIT_USAGE
    assert str(data / "default.sqlite") in err
    assert "MAILKIT_PROFILE" in err
    monkeypatch.setenv(PROFILE_ENV, "acme")
    code, _, err = run("users", "export", "x.csv")
    assert code == EXIT_USAGE
    assert str(data / "acme.sqlite") in err


def test_profile_init_says_where_and_never_clobbers(data: Path, tmp_path: Path) -> None:
    code, out, err = run("profile", "init", "acme")
    assert (code, err) == (EXIT_OK, "")
    assert out == f"Created profile 'acme' at {data / 'acme.sqlite'}.\n"
    before = (data / "acme.sqlite").read_bytes()
    code, _, err = run("profile", "init", "acme")
    assert code == EXIT_USAGE
    assert "already exists" in err
    assert (data / "acme.sqlite").read_bytes() == before
    file = tmp_path / "elsewhere.sqlite"
    code, out, _ = run("profile", "init", str(file), "--json")
    assert code == EXIT_OK
    assert json.loads(out) == {
        "created": str(file),
        "profile": "elsewhere",
        "secrets_file": str(tmp_path / "elsewhere.secrets"),
    }
    # Now the read commands find them, by name and by MAILKIT_PROFILE.
    assert run("users", "export", str(tmp_path / "u.csv"), "--profile", "acme")[0] == EXIT_OK
    os.environ[PROFILE_ENV] = str(file)
    try:
        code, out, _ = run("audit", "--json")
    finally:
        del os.environ[PROFILE_ENV]
    assert code == EXIT_OK


def test_writing_commands_say_when_they_created_a_profile(data: Path, tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_text("user_code,email\nann,ann@corp.local\n", encoding="utf-8")
    code, _, err = run("users", "import", str(source), "--profile", "acme")
    assert code == EXIT_OK
    assert err == f"mailkit: created profile 'acme' at {data / 'acme.sqlite'}\n"
    code, _, err = run("users", "import", str(source), "--profile", "acme")
    assert (code, err) == (EXIT_OK, "")  # it exists now: nothing to announce


def _audited_profile(path: Path) -> None:
    org = OrgSettings(
        host="smtp.example.com",
        port=587,
        security="starttls",
        auth="login",
        username="it@example.com",
        from_address="it@example.com",
    )
    with Store.open(path, profile="acme", create=True) as store:
        store.set_org(org)
        store.put_users(
            [
                UserSettings(user_code="ann", override_enabled=True, username="ann@example.com"),
                UserSettings(user_code="bob", email="bob@example.com"),
            ]
        )


def _missing(out: str) -> set[str]:
    rows = json.loads(out)
    return {r["user_code"] for r in rows if r["rule"] == "missing-secret"}


def _note(out: str) -> list[dict[str, str]]:
    return [r for r in json.loads(out) if r["rule"] == "secrets-not-checked"]


def test_audit_checks_missing_secret_against_the_profiles_store(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "acme.sqlite"
    _audited_profile(profile)
    monkeypatch.setenv(PASSPHRASE_ENV, "pass phrase")
    # Nothing stored yet: the org's account (bob uses it) and ann's own account lack one.
    code, out, _ = run("audit", "--profile", str(profile), "--format", "json")
    assert code == EXIT_OK
    assert _missing(out) == {"ann", "bob"}
    assert _note(out) == []
    monkeypatch.setenv("ORG_PW", "org-password")
    assert run("secret", "set", "--profile", str(profile), "--password-env", "ORG_PW")[0] == 0
    code, out, _ = run("audit", "--profile", str(profile), "--format", "json")
    assert _missing(out) == {"ann"}
    code, out, _ = run("audit", "--profile", str(profile), "--fail-on", "critical")
    assert code == 1  # a missing secret is critical, and the CLI now sees it


def test_audit_says_plainly_when_secrets_were_not_checked(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "acme.sqlite"
    _audited_profile(profile)
    monkeypatch.setenv(PASSPHRASE_ENV, "pass phrase")
    monkeypatch.setenv("ORG_PW", "org-password")
    assert run("secret", "set", "--profile", str(profile), "--password-env", "ORG_PW")[0] == 0
    monkeypatch.delenv(PASSPHRASE_ENV)
    # Locked (no passphrase, no terminal): not checked, and the reason is given.
    code, out, _ = run("audit", "--profile", str(profile))
    assert code == EXIT_OK
    assert "Passwords were not checked: the secret store cannot be read" in out
    assert PASSPHRASE_ENV in out
    code, out, _ = run("audit", "--profile", str(profile), "--format", "json")
    assert _missing(out) == set()
    [note] = _note(out)
    assert note["severity"] == "info"
    assert "not checked" in note["message"]
    assert PASSPHRASE_ENV in note["message"]
    # --secrets none, and users from a CSV file: not checked either, and said so.
    code, out, _ = run("audit", "--profile", str(profile), "--secrets", "none", "--format", "json")
    assert "--secrets none" in _note(out)[0]["message"]
    csv = tmp_path / "users.csv"
    csv.write_text("user_code,override_enabled,username\nann,true,ann@example.com\n")
    code, out, _ = run("audit", "--csv", str(csv), "--profile", str(profile), "--format", "json")
    assert code == EXIT_OK
    assert _missing(out) == set()
    assert "holds no passwords" in _note(out)[0]["message"]
    code, out, _ = run("audit", "--csv", str(csv))
    assert "Passwords were not checked: the users come from" in out
    # A wrong passphrase is not "not checked": it is an error.
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    code, out, err = run("audit", "--profile", str(profile))
    assert code == EXIT_USAGE
    assert "passphrase does not open" in err


def test_secret_set_list_delete(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("users", "import", _users_csv(data.parent), "--profile", "acme")[0] == EXIT_OK
    monkeypatch.setenv(PASSPHRASE_ENV, "pass phrase")
    monkeypatch.setenv("ORG_PW", CANARY)
    code, out, err = run("secret", "set", "--profile", "acme", "--password-env", "ORG_PW")
    assert (code, err) == (EXIT_OK, "")
    assert "mailkit:acme:org:password" in out
    assert str(data / "acme.secrets") in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(CANARY + "-ann\n"))
    code, out, _ = run("secret", "set", "--profile", "acme", "--user", "ANN", "--password-stdin")
    assert code == EXIT_OK
    assert "mailkit:acme:ann:password" in out  # the user code as the profile spells it
    code, out, _ = run("secret", "list", "--profile", "acme")
    assert code == EXIT_OK
    assert f"Secret store: the encrypted file {data / 'acme.secrets'}" in out
    assert "mailkit:acme:org:password" in out
    assert "mailkit:acme:ann:password" in out
    code, out, _ = run("secret", "list", "--profile", "acme", "--json")
    listed = json.loads(out)
    assert listed["store_kind"] == "file"
    assert listed["keys"] == ["mailkit:acme:ann:password", "mailkit:acme:org:password"]
    code, out, _ = run("secret", "delete", "--profile", "acme", "--user", "ann")
    assert (code, out.startswith("Deleted mailkit:acme:ann:password")) == (EXIT_OK, True)
    code, out, _ = run("secret", "list", "--profile", "acme", "--json")
    assert json.loads(out)["keys"] == ["mailkit:acme:org:password"]
    assert_nothing_leaked(data, CANARY)
    assert_nothing_leaked(data, "pass phrase")


def test_secret_commands_refuse_what_they_cannot_do(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("users", "import", _users_csv(data.parent), "--profile", "acme")[0] == EXIT_OK
    code, _, err = run("secret", "set", "--profile", "acme")
    assert code == EXIT_USAGE
    assert "--password-stdin or --password-env" in err
    code, _, err = run("secret", "set", "--profile", "acme", "--password", "x")
    assert code == EXIT_USAGE  # no such option: passwords are never arguments
    monkeypatch.setenv("PW", "secret-1")
    code, _, err = run(
        "secret", "set", "--profile", "acme", "--user", "zed", "--password-env", "PW"
    )
    assert code == EXIT_USAGE
    assert "no user 'zed'" in err
    # No passphrase and no terminal: locked, said in command-line words.
    code, _, err = run("secret", "set", "--profile", "acme", "--password-env", "PW")
    assert code == EXIT_USAGE
    assert f"set {PASSPHRASE_ENV}" in err
    assert "--secrets" in err
    assert not (data / "acme.secrets").exists()
    monkeypatch.setenv(PASSPHRASE_ENV, "right")
    assert run("secret", "set", "--profile", "acme", "--password-env", "PW")[0] == EXIT_OK
    before = (data / "acme.secrets").read_bytes()
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    for argv in (
        ["secret", "list", "--profile", "acme"],
        ["secret", "set", "--profile", "acme", "--password-env", "PW"],
        ["secret", "delete", "--profile", "acme"],
        ["test", "--profile", "acme", "--to", "bob@example.org"],
    ):
        code, _, err = run(*argv)
        assert code == EXIT_USAGE, argv
        assert "passphrase does not open" in err, argv
        assert "wrong" not in err.replace("is wrong", "")
    assert (data / "acme.secrets").read_bytes() == before
    code, _, err = run("secret", "list", "--profile", "acme", "--secrets", "keyring")
    assert code == EXIT_USAGE  # chosen explicitly: no silent fallback to the file
    assert "keyring" in err


def _users_csv(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "people.csv"
    source.write_text(
        "user_code,override_enabled,username\nann,true,ann@example.com\nbob,false,\n",
        encoding="utf-8",
    )
    return str(source)


def assert_nothing_leaked(folder: Path, secret: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.suffix == ".secrets" for p in files)
    for file in files:
        data = file.read_bytes()
        for form in all_encodings(secret):
            assert form not in data, f"{secret!r} leaked into {file} as {form!r}"


def _cli(
    *argv: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("mailkit")), *argv],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        check=False,
        timeout=120,
    )


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """A process environment like a Jupyter server's: no keyring, private data folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (PROFILE_ENV, PASSPHRASE_ENV) and not k.startswith("MAILKIT_SECRET_")
    }
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


def test_a_secret_stored_by_migrate_is_used_by_test_in_another_process(
    smtp_server: MailServer, tmp_path: Path, server_env: dict[str, str]
) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_text(
        json.dumps(
            {
                "SMTPServerName": smtp_server.host,
                "Port": smtp_server.starttls_port,
                "TLSSettings": "TLS",
                "UserName": smtp_server.user,
                "Password": smtp_server.password,
                "AuthType": "AuthLogin",
                "FromAddress": "it@example.com",
            }
        ),
        encoding="utf-8",
    )
    env = {**server_env, PASSPHRASE_ENV: "server pass phrase"}
    migrated = _cli("migrate", str(legacy), "--profile", "acme", "--json", env=env)
    assert migrated.returncode == EXIT_OK, migrated.stderr
    assert json.loads(migrated.stdout)["moved_secrets"]
    data = tmp_path / "data" / "mailkit"
    assert (data / "acme.secrets").exists()
    assert f"created profile 'acme' at {data / 'acme.sqlite'}" in migrated.stderr
    send = ["test", "--profile", "acme", "--to", "bob@example.org"]
    send += ["--ca-file", str(smtp_server.ca_file), "--json"]
    sent = _cli(*send, env=env)
    assert sent.returncode == EXIT_OK, sent.stdout + sent.stderr
    assert smtp_server.messages[-1].mail_from == "it@example.com"
    listed = _cli("secret", "list", "--profile", "acme", "--json", env=env)
    assert json.loads(listed.stdout)["keys"] == ["mailkit:acme:org:password"]
    # Another process without the passphrase, or with a wrong one: exit 1, and it says why.
    locked = _cli(*send, env=server_env)
    assert locked.returncode == EXIT_USAGE
    assert PASSPHRASE_ENV in locked.stderr
    wrong = _cli(*send, env={**server_env, PASSPHRASE_ENV: "nope"})
    assert wrong.returncode == EXIT_USAGE
    assert "passphrase does not open" in wrong.stderr
    assert len(smtp_server.messages) == 1
    assert_nothing_leaked(data, smtp_server.password)


def test_two_processes_share_a_profile_and_its_encrypted_secrets(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    env = {**server_env, PASSPHRASE_ENV: "shared pass phrase"}
    codes = [f"u{i}" for i in range(6)]
    source = tmp_path / "users.csv"
    source.write_text(
        "user_code,override_enabled,username\n"
        + "".join(f"{c},true,{c}@example.com\n" for c in codes),
        encoding="utf-8",
    )
    assert _cli("users", "import", str(source), "--profile", "team", env=env).returncode == 0
    runs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mailkit")),
                "secret", "set", "--profile", "team", "--user", code, "--password-stdin",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for code in codes
    ]  # fmt: skip
    results = [
        p.communicate(f"password-of-{c}\n", timeout=120) for p, c in zip(runs, codes, strict=True)
    ]
    assert [p.returncode for p in runs] == [0] * len(codes), results
    listed = _cli("secret", "list", "--profile", "team", "--json", env=env)
    assert json.loads(listed.stdout)["keys"] == sorted(f"mailkit:team:{c}:password" for c in codes)
    audited = _cli("audit", "--profile", "team", "--format", "json", env=env)
    assert audited.returncode == EXIT_OK, audited.stderr
    assert _missing(audited.stdout) == set()


def _on_a_terminal(argv: list[str], answers: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the console script with a pseudo-terminal as its controlling terminal, typing
    ``answers`` at each passphrase prompt as a person would (getpass reads /dev/tty)."""
    exe = str(Path(sys.executable).with_name("mailkit"))
    main_fd, terminal = os.openpty()
    become_terminal_owner = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", become_terminal_owner, exe, *argv],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,
    )
    os.close(terminal)
    shown, given, pending = b"", 0, list(answers)
    try:
        while True:
            ready, _, _ = select.select([main_fd], [], [], 60)
            if not ready:
                raise AssertionError(f"no output for 60 s: {shown!r}")
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:  # the terminal closed: the command has ended
                break
            if not chunk:
                break
            shown += chunk
            prompts = shown.count(b"Passphrase for") + shown.count(b"again: ")
            if pending and prompts > given:  # answer each prompt once it is on the screen
                given += 1
                os.write(main_fd, pending.pop(0).encode() + b"\n")
        code = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(main_fd)
    return code, shown.decode()


def test_the_passphrase_is_asked_on_a_terminal(tmp_path: Path, server_env: dict[str, str]) -> None:
    env = {**server_env, "ORG_PW": CANARY}
    assert _on_a_terminal(["profile", "init", "acme"], [], env)[0] == EXIT_OK
    store = ["--profile", "acme", "--secrets", "file"]
    # A new file: asked twice; two different answers store nothing.
    code, shown = _on_a_terminal(
        ["secret", "set", *store, "--password-env", "ORG_PW"], ["first", "second"], env
    )
    assert code == EXIT_USAGE
    assert "differ" in shown
    code, shown = _on_a_terminal(
        ["secret", "set", *store, "--password-env", "ORG_PW"], ["typed pass", "typed pass"], env
    )
    assert code == EXIT_OK, shown
    assert "The same passphrase again" in shown
    assert "typed pass" not in shown  # not echoed
    code, shown = _on_a_terminal(["secret", "list", *store], ["typed pass"], env)
    assert (code, "mailkit:acme:org:password" in shown) == (EXIT_OK, True), shown
    code, shown = _on_a_terminal(["secret", "list", *store], ["mistyped"], env)
    assert code == EXIT_USAGE
    assert "passphrase does not open" in shown
    # The passphrase typed opens the file another process reads with it from the environment.
    listed = _cli("secret", "list", *store, "--json", env={**env, PASSPHRASE_ENV: "typed pass"})
    assert json.loads(listed.stdout)["keys"] == ["mailkit:acme:org:password"]
    assert_nothing_leaked(tmp_path / "data", CANARY)
    assert_nothing_leaked(tmp_path / "data", "typed pass")


def test_a_password_for_a_user_on_the_org_login_comes_with_a_note(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("users", "import", _users_csv(data.parent), "--profile", "acme")[0] == EXIT_OK
    monkeypatch.setenv(PASSPHRASE_ENV, "pass phrase")
    monkeypatch.setenv("PW", "bob-pw")
    code, _, err = run(
        "secret", "set", "--profile", "acme", "--user", "bob", "--password-env", "PW"
    )
    assert code == EXIT_OK
    assert "bob signs in with the organisation's account" in err
    code, _, err = run(
        "secret", "set", "--profile", "acme", "--user", "ann", "--password-env", "PW"
    )
    assert (code, err) == (EXIT_OK, "")


def test_secret_list_asks_the_os_keyring_for_the_profiles_keys(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS keyring cannot enumerate entries: list asks for every key the profile can have."""
    from test_secrets import DictKeyring

    keyring.set_keyring(DictKeyring())  # the data fixture restores the previous backend
    assert run("users", "import", _users_csv(data.parent), "--profile", "acme")[0] == EXIT_OK
    monkeypatch.setenv("PW", CANARY)
    code, out, _ = run(
        "secret", "set", "--profile", "acme", "--user", "ann", "--password-env", "PW"
    )
    assert code == EXIT_OK
    assert "the OS keyring" in out
    code, out, _ = run("secret", "list", "--profile", "acme", "--json")
    listed = json.loads(out)
    assert listed["store_kind"] == "keyring"  # auto: a keyring exists, so it is used
    assert listed["keys"] == ["mailkit:acme:ann:password"]
    assert CANARY not in out
    assert not (data / "acme.secrets").exists()
