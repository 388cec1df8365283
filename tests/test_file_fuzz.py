"""Fuzzing the file readers through the real command line (issue 11, "Done when").

Users CSV and Excel files, legacy INI and JSON exports and TOML profiles are generated from
arbitrary bytes and from mutations of valid files (bytes inserted, deleted, replaced, cut,
repeated; other encodings; for Excel, damaged XML inside an intact zip). Whatever the bytes:

- ``mailkit.cli.main`` returns 0 or 1 and never raises (a traceback is a failure here);
- an error is one ``mailkit: error:`` message that names the file;
- a command that failed left the existing profile exactly as it was (same settings, no new
  file beside it), so only a successful import ever changes one.
"""

from __future__ import annotations

import functools
import io
import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.settings import OrgSettings, Profile, UserSettings
from mailkit.store import Store, profile_to_toml
from mailkit.users import write_users

USERS = [
    UserSettings(user_code="ann", display_name="Ann Müller", email="ann@example.com"),
    UserSettings(
        user_code="bob",
        email="bob@example.com",
        override_enabled=True,
        mode="smtp",
        host="smtp.example.com",
        port=587,
        security="starttls",
    ),
    UserSettings(user_code="00123", display_name="=SUM(A1)", email="c@example.com"),
]
PROFILE = Profile(org=OrgSettings(name="acme", host="smtp.example.com", port=587), users=USERS)

LEGACY_INI = b"""\
[Email]
SMTPServerName = smtp.example.com
Port = 587
TLSSettings = TLS
UserName = jordan@example.com
AuthType = AuthLogin
RequiresAuthentication = true
Priority = High
FromName = Z\xc3\xb6e
"""
LEGACY_JSON = (
    b'{"Mail": {"SMTPServerName": "smtp.example.com", "Port": 465, "UseSSL": true},'
    b' "SenderProtocol": "SMTP", "Priority": 3, "Signature": "Sent from Express"}'
)


@functools.cache
def seed(suffix: str) -> bytes:
    """A valid file of each kind, the starting point of the mutations (made once, on demand)."""
    if suffix in (".csv", ".xlsx"):
        with TemporaryDirectory() as folder:
            path = Path(folder) / f"users{suffix}"
            write_users(USERS, path)
            return path.read_bytes()
    return {
        ".ini": LEGACY_INI,
        ".json": LEGACY_JSON,
        ".toml": profile_to_toml(PROFILE).encode(),
    }[suffix]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed profile holding :data:`PROFILE`, copied fresh for every example."""
    path = tmp_path_factory.mktemp("template") / "acme.sqlite"
    with Store.open(path, create=True) as store:
        store.replace_profile(PROFILE)
    return path


# --------------------------------------------------------------------------- bytes

_NASTY = [
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\r",
    b"\n",
    b'"',
    b"'",
    b"=",
    b",",
    b";",
    b"\t",
    b"[",
    b"{",
    b"]]",
    b"9" * 5000,
    b"[" * 3000,
    b"\xc3",
    b"\xe2\x80\xae",
    b"=cmd|' /C calc'!A0",
    b"@",
    b"\\",
    b"\x1a",
]


#: Values that break parsers and models when they stand where a value belongs.
_NASTY_VALUES = [
    b"9" * 5000,
    b"-" + b"9" * 4400,
    b"1e999",
    b"-1",
    b"0",
    b"65536",
    b"NaN",
    b"Infinity",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"[" * 2000 + b"]" * 2000,
    b"{" * 1000 + b"}" * 1000,
    b'"' + b"A" * 20000 + b'"',
    b'"\\u0000"',
    b'"\\ud800"',
    b'""',
    b"\x00",
    b"=HYPERLINK(1)",
    b"'",
    b"\xe2\x80\xae",
]
# Where values stand: numbers, quoted strings, the rest of a "key = value" or CSV cell.
_VALUE = re.compile(rb'\d+(?:\.\d+)?|"[^"\n]*"|(?<==)[^\n]*|(?<=[,;])[^,;\n]*')


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few random edits: the near-misses real damaged files are."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kinds = ["value", "value", "insert", "delete", "replace", "cut", "repeat", "flip"]
        kind = draw(st.sampled_from(kinds))
        at = draw(st.integers(0, len(data)))
        spans = [m.span() for m in _VALUE.finditer(data)] if kind == "value" else []
        if spans:
            start, end = draw(st.sampled_from(spans))
            data[start:end] = draw(st.sampled_from(_NASTY_VALUES))
        elif kind == "insert":
            piece = draw(st.one_of(st.sampled_from(_NASTY), st.binary(min_size=1, max_size=16)))
            data[at:at] = piece
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 200))] * draw(st.integers(2, 50))
        elif kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@st.composite
def reencoded(draw: st.DrawFn, seed: bytes) -> bytes:
    text = seed.decode("utf-8", errors="replace")
    codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252"]))
    return text.encode(codec, errors="replace")


@st.composite
def damaged_workbook(draw: st.DrawFn, seed: bytes) -> bytes:
    """An intact zip whose XML parts are damaged, so that the workbook reader itself is hit."""
    with zipfile.ZipFile(io.BytesIO(seed)) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    for name in draw(st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=3)):
        parts[name] = draw(mutated(parts[name]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)
    return out.getvalue()


def any_file(seed: bytes, suffix: str) -> st.SearchStrategy[bytes]:
    options = [st.binary(max_size=600), mutated(seed), reencoded(seed)]
    if suffix == ".xlsx":
        options.append(damaged_workbook(seed))
    return st.one_of(*options)


# --------------------------------------------------------------------------- the check


def _state(db: Path) -> tuple[Profile, list[str]]:
    with Store.open(db) as store:
        return store.profile(), sorted(p.name for p in db.parent.iterdir())


def _check(
    template: Path, suffix: str, data: bytes, argv: Callable[[Path, Path], list[str]]
) -> int:
    with TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "profile").mkdir()
        db = work / "profile" / "acme.sqlite"
        shutil.copy(template, db)
        path = work / f"input{suffix}"
        path.write_bytes(data)
        before = _state(db)
        out, err = io.StringIO(), io.StringIO()
        code = main(argv(path, db), out=out, err=err)
        message = err.getvalue()
        assert code in (EXIT_OK, EXIT_USAGE), message
        assert "Traceback" not in message
        if code == EXIT_USAGE:
            if "--json" in argv(path, db):
                message = json.loads(message)["message"]
            else:
                assert message.startswith("mailkit: error: "), message
            assert str(path) in message, message
            assert _state(db) == before, "a failed command changed the profile"
        return code


_FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@given(data=st.data())
@_FUZZ
def test_users_import_of_any_bytes(template: Path, suffix: str, data: st.DataObject) -> None:
    content = data.draw(any_file(seed(suffix), suffix))
    _check(
        template,
        suffix,
        content,
        lambda path, db: ["users", "import", str(path), "--profile", str(db)],
    )


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@given(data=st.data())
@_FUZZ
def test_audit_of_any_bytes(template: Path, suffix: str, data: st.DataObject) -> None:
    content = data.draw(any_file(seed(suffix), suffix))
    flag = "--csv" if suffix == ".csv" else "--excel"
    _check(template, suffix, content, lambda path, db: ["audit", flag, str(path), "--json"])


@pytest.mark.parametrize("suffix", [".ini", ".json"])
@given(data=st.data())
@_FUZZ
def test_migrate_of_any_bytes(template: Path, suffix: str, data: st.DataObject) -> None:
    content = data.draw(any_file(seed(suffix), suffix))
    _check(
        template,
        suffix,
        content,
        lambda path, db: ["migrate", str(path), "--secrets", "memory", "--profile", str(db)],
    )


@given(data=st.data())
@_FUZZ
def test_profile_import_of_any_bytes(template: Path, data: st.DataObject) -> None:
    content = data.draw(any_file(seed(".toml"), ".toml"))
    _check(
        template,
        ".toml",
        content,
        lambda path, db: ["profile", "import", str(path), "--profile", str(db)],
    )


_COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    ".csv": lambda path, db: ["users", "import", str(path), "--profile", str(db)],
    ".xlsx": lambda path, db: ["users", "import", str(path), "--profile", str(db)],
    ".ini": lambda path, db: ["migrate", str(path), "--secrets", "memory", "--profile", str(db)],
    ".json": lambda path, db: ["migrate", str(path), "--secrets", "memory", "--profile", str(db)],
    ".toml": lambda path, db: ["profile", "import", str(path), "--profile", str(db)],
}


@pytest.mark.parametrize("suffix", [".csv", ".ini", ".json", ".toml"])
def test_every_value_replaced_by_every_hostile_value(template: Path, suffix: str) -> None:
    """The systematic half of the fuzz: each value slot of a valid file gets each hostile
    value in turn, so that rare combinations (a 5,000-digit port) are always tried."""
    original = seed(suffix)
    spans = [m.span() for m in _VALUE.finditer(original)]
    assert len(spans) > 5
    spans = spans[:: max(1, len(spans) // 12)]  # about a dozen slots, spread over the file
    outcomes = set()
    for start, end in spans:
        for value in _NASTY_VALUES:
            content = original[:start] + value + original[end:]
            outcomes.add(_check(template, suffix, content, _COMMANDS[suffix]))
    assert outcomes == {EXIT_OK, EXIT_USAGE}  # both kinds of outcome happened: a real test


@pytest.mark.parametrize("suffix", sorted(_COMMANDS))
def test_the_seeds_themselves_are_accepted(template: Path, suffix: str) -> None:
    """The control: unmutated files succeed, so the fuzz starts from files that work."""
    assert _check(template, suffix, seed(suffix), _COMMANDS[suffix]) == EXIT_OK


def test_the_console_script_on_random_bytes(template: Path, tmp_path: Path) -> None:
    """A few runs of the installed entry point, a real process, on bytes from a fixed seed."""
    import os
    import random
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("mailkit")
    chance = random.Random(11)
    db = tmp_path / "profile" / "acme.sqlite"
    db.parent.mkdir()
    shutil.copy(template, db)
    before = _state(db)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    for suffix, command in _COMMANDS.items():
        path = tmp_path / f"random{suffix}"
        path.write_bytes(bytes(chance.randrange(256) for _ in range(chance.randrange(1, 4000))))
        done = subprocess.run(
            [str(exe), *command(path, db)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert done.returncode == EXIT_USAGE, done.stderr
        assert done.stderr.startswith("mailkit: error: ")
        assert str(path) in done.stderr
        assert "Traceback" not in done.stderr
    assert _state(db) == before
