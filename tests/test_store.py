"""The settings store: transactions, refusing files it must not touch, concurrency, TOML."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mailkit.columns import users_to_frame
from mailkit.errors import (
    ImportFileError,
    SettingsError,
    StoreCorruptError,
    StoreError,
    StoreForeignError,
    StoreLockedError,
    StoreNewerSchemaError,
    UnsafeSettingWarning,
)
from mailkit.settings import FeatureRoute, OrgSettings, Profile, UserSettings
from mailkit.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    Store,
    migrate_schema,
    profile_from_toml,
    profile_to_toml,
)
from mailkit.userfiles import export_users, import_users
from mailkit.users import read_users, write_users

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("_store_worker.py")

ORG = OrgSettings(
    name="Acme",
    host="smtp.acme.example",
    port=587,
    security="starttls",
    from_address="it@acme.example",
    from_name="Acme IT",
    routes={
        "requests": FeatureRoute(enabled=True, recipients=["desk@acme.example"]),
        "invoices": FeatureRoute(sender="ann", subject_template="Invoice {number}"),
    },
)
ANN = UserSettings(user_code="ann", display_name="Ann Ärger", email="ann@acme.example")
BOB = UserSettings(
    user_code="bob", override_enabled=True, mode="smtp", host="mail.bob.example", port=2525
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "acme.sqlite", profile="acme", create=True) as opened:
        yield opened


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- opening


def test_new_file_is_a_marked_owner_only_profile(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    with Store.open(path, profile="acme", create=True) as store:
        assert store.path == path
        assert store.profile_name == "acme"
        assert repr(store) == f"Store(path={str(path)!r}, profile='acme')"
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(raw.execute("SELECT key, value FROM meta").fetchall())
    finally:
        raw.close()
    assert meta["app"] == "mailkit"
    assert meta["profile"] == "acme"
    assert datetime.fromisoformat(meta["created_at"]).tzinfo is not None
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
    assert not Path(f"{path}-wal").exists()  # closing folded the WAL back in


def test_reopening_keeps_the_data_and_the_recorded_name(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    with Store.open(path, profile="first", create=True) as store:
        store.put_user(ANN)
    with Store.open(path) as store:
        assert store.profile_name == "first"
        assert store.users() == [ANN]


def test_default_path_is_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sys.platform != "linux":
        pytest.skip("XDG_DATA_HOME steers platformdirs on Linux only")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Store.open(profile="acme-prod_2", create=True) as store:
        assert store.path == tmp_path / "data" / "mailkit" / "acme-prod_2.sqlite"
    assert store.path.exists()


@pytest.mark.parametrize("name", ["", "../evil", "a b", "x" * 65, "acme.sqlite"])
def test_profile_names_must_be_file_safe(name: str) -> None:
    with pytest.raises(SettingsError, match="letters, digits"):
        Store.open(profile=name)


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    with Store.open(path, create=True) as first, Store.open(path) as second:
        assert Path(f"{path}-wal").exists()  # the second open inspected a file in use
        first.put_user(ANN)
        assert second.users() == [ANN]


def test_zero_byte_file_becomes_a_profile(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with Store.open(path, create=True) as store:
        store.put_user(ANN)
        assert store.users() == [ANN]


def test_missing_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "nowhere" / "p.sqlite", create=True)


def test_closed_store_says_so(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "p.sqlite", create=True)
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.users()


# --------------------------------------------------------------------------- files it must refuse


def _real_store(path: Path, users: int = 200) -> None:
    with Store.open(path, create=True) as store:
        store.set_org(ORG)
        store.put_users(UserSettings(user_code=f"user{i:04d}") for i in range(users))
        for i in range(users):
            store.record_test(user_code=f"user{i:04d}", ok=i % 3 > 0, detail="x" * 100)


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _text_file(path: Path) -> None:
    path.write_text("user_code,display_name\nann,Ann\n", encoding="utf-8")


def _truncated_mid_page(path: Path) -> None:
    _real_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 + 100])


def _truncated_on_a_page(path: Path) -> None:
    _real_store(path)
    path.write_bytes(path.read_bytes()[: 3 * 4096])


def _garbage_inside(path: Path) -> None:
    """A whole-looking file whose b-tree pages were overwritten (disk or copy error)."""
    _real_store(path)
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096):
        data[page * 4096 : page * 4096 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _foreign_notes(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('buy milk')")
    conn.commit()
    conn.close()


def _foreign_wal(path: Path) -> None:
    """Many applications use WAL too; inspecting one must not leave -wal / -shm files."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()


def _foreign_app_id(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.commit()
    conn.close()


def _newer_schema(path: Path) -> None:
    _real_store(path, users=3)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("make", "error", "says"),
    [
        (_random_bytes, StoreCorruptError, "does not start like an SQLite database"),
        (_text_file, StoreCorruptError, "does not start like an SQLite database"),
        (_truncated_mid_page, StoreCorruptError, "truncated"),
        (_truncated_on_a_page, StoreCorruptError, "truncated"),
        (_garbage_inside, StoreCorruptError, "damaged"),
        (_foreign_notes, StoreForeignError, "tables: notes"),
        (_foreign_wal, StoreForeignError, "tables: notes"),
        (_foreign_app_id, StoreForeignError, "0x4d2"),
        (_newer_schema, StoreNewerSchemaError, f"version {SCHEMA_VERSION + 1}"),
    ],
)
def test_refused_files_are_left_untouched(
    tmp_path: Path, make: Callable[[Path], None], error: type[StoreError], says: str
) -> None:
    path = tmp_path / "profile.sqlite"
    make(path)
    before = _sha256(path)
    siblings = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error) as caught:
        Store.open(path)
    message = str(caught.value)
    assert str(path) in message
    assert says in message
    assert "untouched" in message
    assert _sha256(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no -wal, -shm or -journal


def test_refusal_messages_say_what_to_do(tmp_path: Path) -> None:
    corrupt, newer = tmp_path / "c.sqlite", tmp_path / "n.sqlite"
    _text_file(corrupt)
    _newer_schema(newer)
    with pytest.raises(StoreCorruptError, match="Restore it from a backup") as caught:
        Store.open(corrupt)
    assert "TOML export" in str(caught.value)
    with pytest.raises(StoreNewerSchemaError, match="Upgrade mailkit") as newer_caught:
        Store.open(newer)
    assert f"up to {SCHEMA_VERSION}" in str(newer_caught.value)


# --------------------------------------------------------------------------- migrations


def _v1_file(path: Path) -> sqlite3.Connection:
    Store.open(path, create=True).close()
    return sqlite3.connect(path, isolation_level=None)


def test_migrations_run_in_order_and_bump_the_version(tmp_path: Path) -> None:
    conn = _v1_file(tmp_path / "p.sqlite")
    ran: list[int] = []

    def step(version: int) -> Callable[[sqlite3.Connection], None]:
        def run(c: sqlite3.Connection) -> None:
            ran.append(version)
            c.execute(f"ALTER TABLE users ADD COLUMN extra{version} TEXT")

        return run

    registry = {**MIGRATIONS, 3: step(3), 2: step(2)}  # registration order does not matter
    conn.execute("BEGIN IMMEDIATE")
    assert migrate_schema(conn, migrations=registry, target=3) == SCHEMA_VERSION
    conn.execute("COMMIT")
    assert ran == [2, 3]
    assert conn.execute("PRAGMA user_version").fetchone() == (3,)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
    assert {"extra2", "extra3"} <= columns
    conn.close()
    with pytest.raises(StoreNewerSchemaError, match="version 3"):
        Store.open(tmp_path / "p.sqlite")


def test_a_failing_migration_leaves_the_old_version(tmp_path: Path) -> None:
    conn = _v1_file(tmp_path / "p.sqlite")

    def add_table(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE added (x)")

    def broken(c: sqlite3.Connection) -> None:
        c.execute("ALTER TABLE no_such_table ADD COLUMN y")

    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        migrate_schema(conn, migrations={2: add_table, 3: broken}, target=3)
    conn.execute("ROLLBACK")
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'added'").fetchone() is None
    conn.close()
    Store.open(tmp_path / "p.sqlite").close()  # still a good version-1 profile


def test_migrate_refuses_gaps_and_running_outside_a_transaction(tmp_path: Path) -> None:
    conn = _v1_file(tmp_path / "p.sqlite")
    with pytest.raises(RuntimeError, match="inside a write transaction"):
        migrate_schema(conn)
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(RuntimeError, match="schema version 2"):
        migrate_schema(conn, migrations={3: lambda c: None}, target=3)
    conn.execute("ROLLBACK")
    conn.close()


# --------------------------------------------------------------------------- org and users


def test_org_defaults_then_saved(store: Store) -> None:
    assert store.get_org() == OrgSettings()
    store.set_org(ORG)
    assert store.get_org() == ORG


def test_users_crud_is_case_insensitive_and_ordered(store: Store) -> None:
    store.put_user(BOB)
    store.put_user(ANN)
    assert store.users() == [ANN, BOB]
    assert store.get_user("ANN") == ANN
    assert store.get_user("nobody") is None
    renamed = BOB.model_copy(update={"user_code": "Bob", "port": 25})
    store.put_user(renamed)  # replaces bob, taking the new spelling
    assert store.users() == [ANN, renamed]
    assert store.delete_user("BOB") is True
    assert store.delete_user("bob") is False
    assert store.users() == [ANN]


def test_unicode_case_variants_are_one_user(store: Store) -> None:
    store.put_user(UserSettings(user_code="MÜLLER", display_name="old"))
    store.put_user(UserSettings(user_code="müller", display_name="new"))
    assert store.users() == [UserSettings(user_code="müller", display_name="new")]


def test_users_frame_matches_the_canonical_table(store: Store) -> None:
    store.put_users([BOB, ANN, UserSettings(user_code="00123")])
    frame = store.users_frame()
    pd.testing.assert_frame_equal(frame, users_to_frame(store.users()))
    assert list(frame["user_code"]) == ["00123", "ann", "bob"]


def test_empty_users_frame_keeps_types(store: Store) -> None:
    pd.testing.assert_frame_equal(store.users_frame(), users_to_frame([]))


def test_users_are_real_sql_columns_without_secrets(store: Store) -> None:
    store.put_users([ANN, BOB])
    raw = sqlite3.connect(store.path)
    try:
        found = raw.execute("SELECT user_code FROM users WHERE port = 2525").fetchall()
        columns = [
            (table, row[1])
            for (table,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for row in raw.execute(f"PRAGMA table_info({table})")
        ]
    finally:
        raw.close()
    assert found == [("bob",)]
    risky = [c for c in columns if any(w in c[1] for w in ("password", "token", "secret"))]
    assert risky == []


def test_a_failing_put_users_writes_nothing(store: Store) -> None:
    store.set_org(OrgSettings(edition="cloud"))
    batch = [UserSettings(user_code=f"u{i}@acme.example") for i in range(50)]
    batch.append(UserSettings(user_code="not-an-address"))
    with pytest.raises(SettingsError) as caught:
        store.put_users(batch)
    assert [p.field for p in caught.value.problems] == ["users[not-an-address].user_code"]
    assert store.users() == []


def test_put_users_refuses_duplicates_in_the_batch(store: Store) -> None:
    with pytest.raises(SettingsError, match="more than once"):
        store.put_users([ANN, ANN.model_copy(update={"user_code": "ANN"})])
    assert store.users() == []


def test_put_user_is_checked_against_the_org(store: Store) -> None:
    store.set_org(OrgSettings(edition="cloud"))
    with pytest.raises(SettingsError, match="user code is the user's email address"):
        store.put_user(ANN)
    assert store.users() == []


def test_switching_to_cloud_is_refused_while_codes_are_not_addresses(store: Store) -> None:
    store.set_org(ORG)
    store.put_users([ANN, BOB, UserSettings(user_code="cy@acme.example")])
    cloud = OrgSettings.model_validate({**ORG.model_dump(), "edition": "cloud"})
    with pytest.raises(SettingsError) as caught:
        store.set_org(cloud)
    assert {p.field for p in caught.value.problems} == {
        "users[ann].user_code",
        "users[bob].user_code",
    }
    assert store.get_org() == ORG


def test_replace_profile_swaps_everything_at_once(store: Store) -> None:
    store.put_users([ANN, BOB])
    new = Profile(org=ORG, users=[UserSettings(user_code="cy")])
    store.replace_profile(new)
    assert store.profile() == new
    with pytest.raises(SettingsError):
        store.replace_profile(
            Profile.model_construct(org=OrgSettings(edition="cloud"), users=[ANN])
        )
    assert store.profile() == new


def test_stored_unsafe_settings_warn_once_when_saved_not_on_every_read(store: Store) -> None:
    with pytest.warns(UnsafeSettingWarning):
        org = OrgSettings(host="192.0.2.10", security="none")
    store.set_org(org)
    assert store.get_org() == org  # filterwarnings=error: reading must not warn again


def test_a_held_write_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    with Store.open(path, busy_timeout=0.2, create=True) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreLockedError, match="locked") as caught:
                store.put_user(ANN)
            assert isinstance(caught.value, TimeoutError)
            assert store.get_org() == OrgSettings()  # readers are not blocked (WAL)
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.put_user(ANN)
        assert store.users() == [ANN]


# --------------------------------------------------------------------------- test history


def test_history_is_recorded_and_filtered(store: Store) -> None:
    store.put_user(ANN)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    store.record_test(user_code=None, ok=True, mode="smtp", host="h.example", port=587, at=start)
    store.record_test(
        user_code="ANN",
        ok=False,
        phase="auth",
        kind="permanent",
        cause="bad_credentials",
        duration_ms=12.5,
        at=start + timedelta(minutes=1),
    )
    row_id = store.record_test(user_code="ann", ok=True, at=start + timedelta(minutes=2))
    assert row_id == 3
    everything = store.history_frame()
    assert list(everything["id"]) == [1, 2, 3]
    assert everything["at"].iloc[0] == pd.Timestamp(start)
    assert str(everything["port"].dtype) == "Int64"
    assert everything["ok"].dtype == bool
    org_rows = store.history_frame(None)
    assert list(org_rows["id"]) == [1]
    ann = store.history_frame("ANN")
    assert list(ann["user_code"]) == ["ann", "ann"]  # stored as the user is spelled
    assert ann["cause"].iloc[0] == "bad_credentials"
    assert store.last_success("ann") == start + timedelta(minutes=2)
    assert store.last_success(None) == start
    assert store.last_success("nobody") is None


def test_history_needs_time_zone_aware_times(store: Store) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.record_test(user_code=None, ok=True, at=datetime(2024, 1, 1))


def test_empty_history_frame(store: Store) -> None:
    frame = store.history_frame()
    assert frame.empty
    assert "message_id" in frame.columns


# --------------------------------------------------------------------------- two processes


def test_two_processes_write_concurrently_without_losing_anything(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    count = 300
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(path), name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("left", "right")
    ]
    try:
        for worker in workers:  # both have opened (and raced to create) the file
            assert worker.stdout is not None
            assert worker.stderr is not None
            line = worker.stdout.readline()
            assert line == "ready\n", (line, worker.stderr.read())
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            for stream in (worker.stdin, worker.stdout, worker.stderr):
                if stream is not None:
                    stream.close()  # a failed run must not leave pipes for a later test's GC
    assert [w.returncode for w in workers] == [0, 0], results
    with Store.open(path) as store:
        codes = [u.user_code for u in store.users()]
        history = store.history_frame("shared")
    assert len(codes) == 2 * count + 1
    assert {f"{side}-{i:03d}" for side in ("left", "right") for i in range(count)} <= set(codes)
    assert len(history) == 2 * count
    assert set(history["detail"]) == {f"{s} {i}" for s in ("left", "right") for i in range(count)}


# --------------------------------------------------------------------------- TOML


def _full_profile() -> Profile:
    return Profile(
        org=ORG,
        users=[
            ANN,
            BOB,
            UserSettings(user_code="用户", display_name="王小明", security="implicit_tls"),
        ],
    )


def test_toml_round_trip_into_a_fresh_store(store: Store, tmp_path: Path) -> None:
    store.replace_profile(_full_profile())
    exported = tmp_path / "acme.toml"
    store.export_toml(exported)
    with Store.open(tmp_path / "fresh.sqlite", create=True) as fresh:
        fresh.import_toml(exported)
        assert fresh.profile() == store.profile()
    assert profile_from_toml(profile_to_toml(_full_profile())) == _full_profile()


def test_toml_export_holds_no_secret_keys_and_no_nulls(store: Store, tmp_path: Path) -> None:
    store.replace_profile(_full_profile())
    exported = tmp_path / "acme.toml"
    store.export_toml(exported)
    text = exported.read_text(encoding="utf-8")
    assert text.startswith("# mailkit profile")
    assert "Secrets" in text.splitlines()[1]

    def keys(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for item in node:
                yield from keys(item)

    data = tomllib.loads(text)
    found = [k for k in keys(data) if any(w in k.lower() for w in ("password", "token", "secret"))]
    assert found == []
    assert "mode" not in data["users"][0]  # unset values are left out
    assert data["org"]["routes"]["invoices"]["sender"] == "ann"


def test_toml_import_errors_name_the_fields_and_change_nothing(
    store: Store, tmp_path: Path
) -> None:
    store.replace_profile(_full_profile())
    before = store.profile()
    bad = tmp_path / "bad.toml"
    text = profile_to_toml(before).replace("port = 587", "port = 70000", 1)
    text = text.replace('host = "mail.bob.example"', 'host = "mail bob"', 1)
    text = text.replace("[org]", '[org]\npassword = "hunter2"', 1)
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        store.import_toml(bad)
    fields = {p.field for p in caught.value.problems}
    assert {"org.port", "org.password", "users[bob].host"} <= fields
    assert str(bad) in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert store.profile() == before


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[org\nname = 1", "not valid TOML"),
        ("mailkit_profile_format = 99\n", "newer mailkit"),
        ('[[users]]\nuser_code = "a"\n[[users]]\nuser_code = "A"\n', "more than once"),
    ],
)
def test_toml_text_problems(text: str, says: str) -> None:
    with pytest.raises(ImportFileError, match=says):
        profile_from_toml(text)


def test_import_toml_of_a_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot be read"):
        store.import_toml(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- CSV / Excel


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_users_export_then_import(store: Store, tmp_path: Path, suffix: str) -> None:
    store.put_users([ANN, BOB])
    path = tmp_path / f"users{suffix}"
    assert export_users(store, path) == 2
    assert read_users(path) == [ANN, BOB]
    with Store.open(tmp_path / "other.sqlite", create=True) as other:
        assert import_users(other, path) == 2
        assert other.users() == [ANN, BOB]


def test_users_import_is_all_or_nothing_against_the_org(store: Store, tmp_path: Path) -> None:
    store.set_org(OrgSettings(edition="cloud"))
    path = tmp_path / "users.csv"
    write_users([UserSettings(user_code="a@acme.example"), UserSettings(user_code="b")], path)
    with pytest.raises(ImportFileError) as caught:
        import_users(store, path)
    assert [p.field for p in caught.value.problems] == ["row 3 (b).user_code"]
    assert store.users() == []


def test_users_import_merges_or_replaces(store: Store, tmp_path: Path) -> None:
    store.put_users([ANN, BOB])
    path = tmp_path / "people.csv"
    path.write_text("Login,Name\nbob,Bob New\ncy,Cy\n", encoding="utf-8")
    mapping = {"Login": "user_code", "Name": "display_name"}
    assert import_users(store, path, mapping=mapping) == 2
    assert [u.user_code for u in store.users()] == ["ann", "bob", "cy"]
    assert store.get_user("bob") == UserSettings(user_code="bob", display_name="Bob New")
    import_users(store, path, mapping=mapping, replace=True)
    assert [u.user_code for u in store.users()] == ["bob", "cy"]


def test_imported_users_are_checked_again_against_the_org_under_the_write_lock(
    store: Store, tmp_path: Path
) -> None:
    """Rows read against one org are refused, naming their file, if the org changed since."""
    cy = UserSettings(user_code="cy@acme.example")
    store.put_users([cy])
    path = tmp_path / "users.csv"
    write_users([UserSettings(user_code="a@acme.example"), UserSettings(user_code="b")], path)
    rows = read_users(path, org=store.get_org())  # valid for the on-premises org
    store.set_org(OrgSettings(edition="cloud"))  # meanwhile, another session changes the org
    with pytest.raises(ImportFileError, match="changed during the import") as caught:
        store.put_imported_users(rows, source=str(path), replace=True)
    assert str(path) in str(caught.value)
    assert [p.field for p in caught.value.problems] == ["users[b].user_code"]
    assert store.users() == [cy]  # nothing written, nothing removed
    assert store.put_imported_users(rows[:1], source=str(path)) == 1  # control: a fitting row
    assert [u.user_code for u in store.users()] == ["a@acme.example", "cy@acme.example"]
