"""The audit's user sources: store, CSV / Excel with a mapping, SQLite and a real PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from postgres_server import PostgresServer, require_postgres, running_postgres

from mailkit.audit.sources import (
    UserSource,
    canonical_frame,
    users_from_file,
    users_from_sql,
    users_from_store,
)
from mailkit.columns import USERS_COLUMNS, USERS_DTYPES
from mailkit.errors import ImportFileError
from mailkit.settings import UserSettings
from mailkit.store import Store

#: An application's own names for the users-table columns.
MAPPING = {
    "Code": "user_code",
    "Name": "display_name",
    "E-mail": "email",
    "Own settings": "override_enabled",
    "SMTP Server": "host",
    "SMTP Port": "port",
    "Sender": "from_address",
}
#: An application's export: codes with zeros, bad data an audit must see, an extra column.
APP_ROWS = [
    {"Code": "00123", "Name": "Ann", "E-mail": "ann@example.com", "Own settings": "yes",
     "SMTP Server": "smtp.example.com", "SMTP Port": "587", "Sender": "ann@example.com",
     "Department": "Sales"},
    {"Code": "bob", "Name": "", "E-mail": "not an address", "Own settings": "X",
     "SMTP Server": "10.0.0.5", "SMTP Port": "70000", "Sender": "", "Department": "IT"},
    {"Code": "carol", "Name": "Carol", "E-mail": "", "Own settings": "0",
     "SMTP Server": "", "SMTP Port": "", "Sender": "", "Department": ""},
]  # fmt: skip
APP_QUERY = (
    'SELECT code AS "Code", name AS "Name", mail AS "E-mail", own AS "Own settings", '
    'server AS "SMTP Server", smtp_port AS "SMTP Port", sender AS "Sender", dept '
    "FROM app_users WHERE tenant = :tenant ORDER BY code"
)
APP_TABLE = (
    "CREATE TABLE app_users (code VARCHAR(40) PRIMARY KEY, name VARCHAR(80), mail VARCHAR(200), "
    "own BOOLEAN, server VARCHAR(200), smtp_port INTEGER, sender VARCHAR(200), "
    "dept VARCHAR(40), tenant VARCHAR(20) NOT NULL)"
)
APP_INSERT = (
    "INSERT INTO app_users VALUES (:code, :name, :mail, :own, :server, :port, :sender, :dept, :t)"
)
APP_VALUES: list[dict[str, object]] = [
    {"code": "00123", "name": "Ann", "mail": "ann@example.com", "own": True,
     "server": "smtp.example.com", "port": 587, "sender": "ann@example.com", "dept": "Sales",
     "t": "acme"},
    {"code": "bob", "name": None, "mail": "not an address", "own": True, "server": "10.0.0.5",
     "port": 70000, "sender": None, "dept": "IT", "t": "acme"},
    {"code": "carol", "name": "Carol", "mail": None, "own": False, "server": None, "port": None,
     "sender": None, "dept": None, "t": "acme"},
    {"code": "zed", "name": "Other tenant", "mail": None, "own": False, "server": None,
     "port": None, "sender": None, "dept": None, "t": "other"},
]  # fmt: skip
CANARY = "canary-Pg-pass-9z"


def assert_canonical(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(USERS_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in USERS_DTYPES.items()
    }


def assert_app_users(source: UserSource) -> None:
    """The three acme users, bad data included (not validated), the extra column left out."""
    frame = source.frame
    assert_canonical(frame)
    assert frame["user_code"].tolist() == ["00123", "bob", "carol"]
    assert frame["email"].tolist()[:2] == ["ann@example.com", "not an address"]
    assert frame["email"].isna().tolist() == [False, False, True]
    assert frame["display_name"].isna().tolist() == [False, True, False]
    assert frame["override_enabled"].tolist() == [True, True, False]
    assert frame["port"].tolist()[:2] == [587, 70000]
    assert frame["port"].isna().tolist() == [False, False, True]
    assert frame["host"].tolist()[:2] == ["smtp.example.com", "10.0.0.5"]
    assert frame[["mode", "security", "auth", "username"]].isna().all().all()
    assert any("dept" in note.lower() or "Department" in note for note in source.notes)


# -- canonical frames -------------------------------------------------------------------------


def test_canonical_frame_types_flags_and_missing_columns() -> None:
    raw = pd.DataFrame(
        {
            "USER_CODE": [" ann ", "bob", "cy", "dee", None],
            "override_enabled": ["Yes", "x", "FALSE", None, None],
            "port": [25.0, None, 587.0, 465.0, None],
        }
    )
    frame = canonical_frame(raw)
    assert_canonical(frame)
    assert frame["user_code"].tolist() == ["ann", "bob", "cy", "dee"]  # blank last row skipped
    assert frame["override_enabled"].tolist() == [True, True, False, False]
    assert frame["port"].isna().tolist() == [False, True, False, False]
    assert frame["port"].dropna().tolist() == [25, 587, 465]
    assert frame["email"].isna().all()


def test_unreadable_ports_and_flags_are_noted_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("user_code,port,override_enabled\nann,25x,maybe\nbob,2.5,1\n", "utf-8")
    source = users_from_file(path)
    assert source.frame["port"].isna().all()
    assert source.frame["override_enabled"].tolist() == [False, True]
    assert any("port(s)" in note and "'25x'" in note for note in source.notes)
    assert any("override_enabled" in note and "'maybe'" in note for note in source.notes)


def test_mapping_errors_name_the_fix() -> None:
    raw = pd.DataFrame({"Code": ["a"], "Login": ["b"]})
    with pytest.raises(ImportFileError, match="not users-table columns"):
        canonical_frame(raw, {"Code": "usercode"})
    with pytest.raises(ImportFileError, match="no such column"):
        canonical_frame(raw, {"Kode": "user_code"})
    with pytest.raises(ImportFileError, match="both 'Code' and 'Login'"):
        canonical_frame(raw, {"Code": "user_code", "Login": "user_code"})
    with pytest.raises(ImportFileError, match="no user_code column"):
        canonical_frame(raw)


# -- the store --------------------------------------------------------------------------------


def test_store_source(tmp_path: Path) -> None:
    with Store.open(tmp_path / "acme.sqlite", profile="acme", create=True) as store:
        store.put_user(UserSettings(user_code="ann", email="ann@example.com"))
        store.put_user(
            UserSettings(user_code="bob", override_enabled=True, host="smtp.example.com", port=465)
        )
        source = users_from_store(store)
    assert_canonical(source.frame)
    assert source.frame["user_code"].tolist() == ["ann", "bob"]
    assert source.frame["override_enabled"].tolist() == [False, True]
    assert source.frame["port"].isna().tolist() == [True, False]
    assert "acme.sqlite" in source.origin
    assert source.notes == ()


# -- files ------------------------------------------------------------------------------------


def test_csv_with_mapping(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    pd.DataFrame(APP_ROWS).to_csv(path, sep=";", index=False)
    source = users_from_file(path, MAPPING)
    assert_app_users(source)
    assert source.origin == str(path)


def test_excel_with_mapping(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    pd.DataFrame(APP_ROWS).to_excel(path, index=False)
    assert_app_users(users_from_file(path, MAPPING))


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.csv", None, "does not exist"),
        ("users.txt", b"user_code\n", "extension '.txt'"),
        ("empty.csv", b"", "is empty"),
        ("undefined.csv", b"user_code\nJos\x81\x8d\n", "neither UTF-8 nor Windows-1252"),
        ("broken.xlsx", b"not a zip file", "cannot be read as a .xlsx"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes | None, match: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImportFileError, match=match):
        users_from_file(path)


# -- SQL: SQLite ------------------------------------------------------------------------------


def fill_app_table(connection: sa.Connection) -> None:
    connection.execute(sa.text(APP_TABLE))
    connection.execute(sa.text(APP_INSERT), APP_VALUES)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        fill_app_table(connection)
    engine.dispose()
    return url


def test_sqlite_query_with_mapping_and_bound_parameter(sqlite_url: str) -> None:
    source = users_from_sql(sqlite_url, APP_QUERY, MAPPING, params={"tenant": "acme"})
    assert_app_users(source)
    assert source.origin == f"the query on {sqlite_url}"


def test_parameters_are_bound_not_formatted(sqlite_url: str) -> None:
    hostile = "acme' OR '1'='1"
    source = users_from_sql(sqlite_url, APP_QUERY, MAPPING, params={"tenant": hostile})
    assert source.frame.empty
    assert_canonical(source.frame)


def test_sql_errors(sqlite_url: str, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"the query failed .*no such table"):
        users_from_sql(sqlite_url, "SELECT * FROM nowhere")
    missing = tmp_path / "missing.db"
    with pytest.raises(ImportFileError, match="does not exist"):
        users_from_sql(f"sqlite:///{missing}", "SELECT 1 AS user_code")
    assert not missing.exists()  # SQLite was not allowed to create it
    with pytest.raises(ImportFileError, match="not a database URL"):
        users_from_sql("no url at all", "SELECT 1")
    with pytest.raises(ImportFileError, match="no dialect or driver"):
        users_from_sql("nosuchdb://u@h/d", "SELECT 1")


def test_sqlite_connection_is_closed(sqlite_url: str, tmp_path: Path) -> None:
    users_from_sql(sqlite_url, APP_QUERY, MAPPING, params={"tenant": "acme"})
    # An exclusive lock succeeds only when no other connection holds the file open in a txn.
    with sqlite3.connect(tmp_path / "app.db", timeout=0.1) as connection:
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("ROLLBACK")


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://admin:{CANARY}@127.0.0.1:1/appdb",
        f"nosuchdb://admin:{CANARY}@h/d",
        f"postgresql+psycopg://admin:{CANARY}@[bad:/d",
        f"mysql+nosuchdriver://admin:{CANARY}@h/d",
    ],
)
def test_error_messages_never_contain_the_password(url: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        users_from_sql(url, "SELECT 1 AS user_code")
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value)


# -- SQL: a real PostgreSQL -------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        engine = sa.create_engine(server.url)
        with engine.begin() as connection:
            fill_app_table(connection)
        engine.dispose()
        yield server


def test_postgresql_query_with_mapping(postgres: PostgresServer) -> None:
    source = users_from_sql(postgres.url, APP_QUERY, MAPPING, params={"tenant": "acme"})
    assert_app_users(source)
    assert f":{postgres.port}/appdb" in source.origin


def test_postgresql_query_error_and_closed_connections(postgres: PostgresServer) -> None:
    with pytest.raises(ImportFileError, match=r'the query failed .*"nowhere" does not exist'):
        users_from_sql(postgres.url, "SELECT * FROM nowhere")
    engine = sa.create_engine(postgres.url)
    with engine.connect() as connection:
        others = connection.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()")
        ).scalar_one()  # fmt: skip
    engine.dispose()
    assert others == 0


def test_postgresql_wrong_password_is_masked(postgres: PostgresServer) -> None:
    url = f"postgresql+psycopg://{postgres.user}:{CANARY}@{postgres.host}:{postgres.port}/nodb"
    with pytest.raises(ImportFileError, match=r"cannot connect to .*\*\*\*") as caught:
        users_from_sql(url, "SELECT 1 AS user_code")
    assert CANARY not in str(caught.value)


# -- availability policy (no server needed) ---------------------------------------------------


@pytest.fixture
def no_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("postgres_server._binary", lambda name: None)


@pytest.mark.usefixtures("no_binaries")
def test_missing_postgres_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true never skips"):
        require_postgres()


@pytest.mark.usefixtures("no_binaries")
def test_missing_postgres_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="`make test` installs them"):
        require_postgres()
