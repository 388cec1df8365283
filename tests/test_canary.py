"""A canary secret sent through every path the foundation has must surface nowhere.

Paths: the secret store (set, confirm, mismatch), legacy migration from JSON and INI, the
settings store on disk (SQLite with its WAL), TOML / CSV / Excel exports, the command line,
reprs and exceptions, and logging at DEBUG. Each output is searched for the secret in clear
and in the encodings an SMTP dialog or a careless log would use.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import zipfile
from pathlib import Path

import pytest

from mailkit.cli import main
from mailkit.errors import SecretMismatchError, SecretStoreError
from mailkit.legacy import migrate
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import UserSettings
from mailkit.store import Store
from mailkit.userfiles import export_users

CANARY = "canary-Zq9!k7#Vx2"
USER = "jordan@example.com"


def encoded_forms(secret: str) -> list[bytes]:
    """The secret as it could leak: clear, base64 (AUTH LOGIN), AUTH PLAIN's blob, hex."""
    raw = secret.encode()
    plain_blob = b"\0" + USER.encode() + b"\0" + raw
    forms = [raw, raw.hex().encode()]
    for blob in (raw, plain_blob):
        forms.append(base64.b64encode(blob))
        forms.append(base64.urlsafe_b64encode(blob))
        forms.append(base64.b64encode(blob).rstrip(b"="))
    return forms


def assert_clean(where: str, data: bytes | str) -> None:
    blob = data.encode() if isinstance(data, str) else data
    for form in encoded_forms(CANARY):
        assert form not in blob, f"the canary leaked into {where} as {form!r}"


def file_contents(root: Path) -> dict[str, bytes]:
    """Every file under ``root``; Excel workbooks are unzipped so their XML is searched."""
    found: dict[str, bytes] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        found[str(path)] = data
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                for name in book.namelist():
                    found[f"{path}!{name}"] = book.read(name)
    return found


def test_canary_secret_never_escapes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: dict[str, str] = {}
    secrets = MemorySecretStore()
    key = secret_key("org", "org")

    # The secret store: set with confirmation, a mismatch, the value type itself.
    secrets.set_password(secret_key("org", "ann"), CANARY, CANARY)
    with pytest.raises(SecretMismatchError) as mismatch:
        secrets.set_password(secret_key("org", "ann"), CANARY, CANARY + "x")
    outputs["mismatch exception"] = repr(mismatch.value) + str(mismatch.value)
    secret = Secret(CANARY)
    outputs["Secret repr/str/format"] = f"{secret!r} {secret} {secret:>20}"

    # Legacy migration from JSON and INI files that hold the password.
    legacy_json = tmp_path / "legacy.json"
    legacy_json.write_text(
        json.dumps(
            {
                "SMTPServerName": "smtp.example.com",
                "Port": 587,
                "UserName": USER,
                "Password": CANARY,
                "AuthType": "AuthLogin",
                "SMTPPasswordOld": CANARY,  # an unknown key that looks secret
            }
        ),
        encoding="utf-8",
    )
    legacy_ini = tmp_path / "legacy.ini"
    legacy_ini.write_text(
        f"[Email]\nSMTPServerName = smtp.example.com\nUserName = {USER}\nPassword = {CANARY}\n",
        encoding="utf-8",
    )
    migration = migrate(legacy_json, secrets=secrets, profile="org")
    migrate(legacy_ini, secrets=secrets, profile="ini")
    stored = secrets.get(key)
    assert stored is not None
    assert stored.reveal() == CANARY  # the secret really went through this path
    report = migration.report
    outputs["migration repr"] = repr(migration)
    outputs["report"] = report.to_string() + report.to_csv() + report.to_json() + report.to_html()
    outputs["migrated org"] = repr(migration.org) + migration.org.model_dump_json()
    with pytest.raises(SecretStoreError) as no_store:
        migrate(legacy_json, secrets=None)
    outputs["no-store exception"] = repr(no_store.value) + str(no_store.value)

    # The settings store, its history table, and every export format.
    db = tmp_path / "profile" / "org.sqlite"
    db.parent.mkdir()
    (tmp_path / "out").mkdir()
    with Store.open(db, profile="org", create=True) as store:
        store.set_org(migration.org)
        store.put_user(UserSettings(user_code="ann", override_enabled=True, username=USER))
        store.record_test(user_code="ann", ok=False, phase="auth", cause="bad_credentials")
        store.export_toml(tmp_path / "out" / "profile.toml")
        export_users(store, tmp_path / "out" / "users.csv")
        export_users(store, tmp_path / "out" / "users.xlsx")
        outputs["store repr"] = repr(store)
        outputs["history"] = store.history_frame().to_string()
        outputs["users frame"] = store.users_frame().to_string()

    # The command line, migrating the same file into a profile.
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["migrate", str(legacy_json), "--profile", str(db), "--secrets", "memory", "--json"],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    outputs["cli stdout"], outputs["cli stderr"] = out.getvalue(), err.getvalue()

    outputs["logs at DEBUG"] = caplog.text
    assert caplog.records, "nothing logged at DEBUG: the logging path was not exercised"
    for where, text in outputs.items():
        assert_clean(where, text)
    files = file_contents(tmp_path)
    assert any(name.endswith("org.sqlite") for name in files)
    assert any(name.endswith("profile.toml") for name in files)
    for name, data in files.items():
        if name in (str(legacy_json), str(legacy_ini)):
            continue  # the inputs hold the canary by construction
        assert_clean(name, data)


def test_encoded_forms_detect_a_leak() -> None:
    """Guard for the test above: the search would catch each encoding if it were there."""
    leaks = [
        f"AUTH PLAIN {base64.b64encode(f'{chr(0)}{USER}{chr(0)}{CANARY}'.encode()).decode()}",
        base64.b64encode(CANARY.encode()).decode(),
        CANARY,
    ]
    for leak in leaks:
        with pytest.raises(AssertionError):
            assert_clean("a deliberate leak", leak)
