"""The settings store: one SQLite file per profile holding the org, its users and test history.

SQLite because a profile must survive crashes and concurrent use (a notebook and the command line
at once) without a server: WAL lets readers work while one writer commits, every change is one
``BEGIN IMMEDIATE`` transaction so concurrent writers queue instead of failing half-way, and a
busy timeout turns a long wait into :class:`~mailkit.errors.StoreLockedError`.

A file that mailkit cannot trust is refused before it is written to: it is first inspected
read-only, and a damaged file, another application's database or a profile from a newer mailkit
raise their own :class:`~mailkit.errors.StoreError` and are left byte-for-byte as they were.

Secrets have no column here; they live in :mod:`mailkit.secrets`. A whole profile round-trips
through TOML (:meth:`Store.export_toml`, :meth:`Store.import_toml`) for review and version control.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import tomllib
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import Any, Final, Self, TypeVar

import pandas as pd
import platformdirs
import tomli_w
from pydantic import BaseModel

from mailkit.columns import USERS_COLUMNS, USERS_DTYPES
from mailkit.errors import (
    FieldProblem,
    ImportFileError,
    ProfileNotFoundError,
    SettingsError,
    StoreCorruptError,
    StoreError,
    StoreForeignError,
    StoreLockedError,
    StoreNewerSchemaError,
    UnsafeSettingWarning,
)
from mailkit.settings import OrgSettings, Profile, UserSettings, check_text, user_problems, validate
from mailkit.textfile import decode_text

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TOML_FORMAT",
    "ProfileChanges",
    "ProfileImport",
    "Store",
    "default_store_path",
    "migrate_schema",
    "profile_changes",
    "profile_from_file",
    "profile_from_toml",
    "profile_to_toml",
]

#: ``PRAGMA application_id`` of every mailkit profile ("MKIT"): tells our files from others'.
APPLICATION_ID: Final = 0x4D4B4954
#: The schema this mailkit writes; ``PRAGMA user_version`` of an up-to-date file.
SCHEMA_VERSION: Final = 1
#: Version of the TOML export layout, written as ``mailkit_profile_format``.
TOML_FORMAT: Final = 1
#: Seconds to wait for another writer before giving up with StoreLockedError.
BUSY_TIMEOUT: Final = 10.0

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_PROFILE_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")

Migration = Callable[[sqlite3.Connection], None]
_M = TypeVar("_M", bound=BaseModel)

# --------------------------------------------------------------------------- schema

_SCHEMA_V1: Final = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE org ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " data TEXT NOT NULL,"
    " updated_at TEXT NOT NULL)",
    # Real columns, not JSON, so that audits can query users with plain SQL. ``code_key`` is the
    # casefolded code: NOCASE only folds ASCII, but user codes are unique under full Unicode
    # case folding (Profile's rule), so "MÜLLER" and "müller" are one user.
    "CREATE TABLE users ("
    " user_code TEXT PRIMARY KEY COLLATE NOCASE,"
    " display_name TEXT,"
    " email TEXT,"
    " override_enabled INTEGER NOT NULL CHECK (override_enabled IN (0, 1)),"
    " mode TEXT,"
    " username TEXT,"
    " from_address TEXT,"
    " host TEXT,"
    " port INTEGER CHECK (port BETWEEN 1 AND 65535),"
    " security TEXT,"
    " auth TEXT,"
    " updated_at TEXT NOT NULL,"
    " code_key TEXT NOT NULL UNIQUE)",
    # No foreign key to users: the history of a deleted user stays auditable.
    "CREATE TABLE test_history ("
    " id INTEGER PRIMARY KEY,"
    " at TEXT NOT NULL,"
    " user_code TEXT COLLATE NOCASE,"
    " mode TEXT,"
    " host TEXT,"
    " port INTEGER,"
    " ok INTEGER NOT NULL CHECK (ok IN (0, 1)),"
    " phase TEXT,"
    " kind TEXT,"
    " cause TEXT,"
    " message_id TEXT,"
    " duration_ms REAL,"
    " detail TEXT)",
    "CREATE INDEX test_history_user_at ON test_history (user_code, at)",
    "INSERT INTO meta (key, value) VALUES ('app', 'mailkit')",
)


def _create_v1(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript() would COMMIT the caller's transaction.
    for statement in _SCHEMA_V1:
        conn.execute(statement)


#: Migration ``n`` brings a file from version ``n - 1`` to ``n``; a new file starts at 0.
MIGRATIONS: Final[Mapping[int, Migration]] = {1: _create_v1}


def migrate_schema(
    conn: sqlite3.Connection,
    *,
    migrations: Mapping[int, Migration] = MIGRATIONS,
    target: int = SCHEMA_VERSION,
) -> int:
    """Apply the migrations after the file's ``user_version`` up to ``target``, in order.

    Runs inside the caller's write transaction, so a failing step leaves the file at its old
    version with none of the steps applied. Returns the version the file had before.
    """
    if not conn.in_transaction:
        raise RuntimeError("migrate_schema() must run inside a write transaction (BEGIN IMMEDIATE)")
    (start,) = conn.execute("PRAGMA user_version").fetchone()
    for version in range(start + 1, target + 1):
        step = migrations.get(version)
        if step is None:
            raise RuntimeError(f"no migration to schema version {version} is registered")
        step(conn)
        conn.execute(f"PRAGMA user_version = {int(version)}")
    return int(start)


# --------------------------------------------------------------------------- messages


def _damaged(path: Path, why: str) -> StoreCorruptError:
    return StoreCorruptError(
        f"{path} cannot be used as a mailkit profile: {why}. The file is damaged or is not a "
        "mailkit profile; mailkit left it untouched. Restore it from a backup or import your "
        "last TOML export into a new file (Store.import_toml), or choose another file."
    )


def _foreign(path: Path, why: str) -> StoreForeignError:
    return StoreForeignError(
        f"{path} is an SQLite database that belongs to another application ({why}); mailkit "
        "left it untouched. Choose another file name for the mailkit profile."
    )


def _newer(path: Path, version: int) -> StoreNewerSchemaError:
    return StoreNewerSchemaError(
        f"{path} was written by a newer mailkit (profile schema version {version}; this mailkit "
        f"understands versions up to {SCHEMA_VERSION}). mailkit left it untouched. Upgrade "
        "mailkit (pip install --upgrade mailkit) to open it."
    )


def _store_error(path: Path, exc: sqlite3.Error, doing: str, timeout: float) -> StoreError:
    """A message for people instead of SQLite's error codes. SQLite messages hold no values."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreLockedError(
            f"{path} stayed locked by another program or mailkit session for more than "
            f"{timeout:g} s while {doing}; nothing was changed. Wait for the other session to "
            "finish (or close it) and try again."
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreCorruptError(
            f"{path} turned out to be damaged while {doing} ({exc}); mailkit stopped there. "
            "Restore it from a backup or import your last TOML export into a new file."
        )
    if name.startswith("SQLITE_FULL"):
        return StoreError(f"the disk holding {path} is full; free some space and try again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_AUTH")):
        return StoreError(
            f"{path} cannot be opened for writing ({exc}); check that its folder exists and "
            "that you may write to the file and its folder"
        )
    return StoreError(f"the settings store {path} failed while {doing}: {exc}")


# --------------------------------------------------------------------------- opening


def default_store_path(profile: str = "default") -> Path:
    """Where a profile lives unless told otherwise: the user's data folder, one file each."""
    _check_profile_name(profile)
    return platformdirs.user_data_path("mailkit", appauthor=False) / f"{profile}.sqlite"


def _check_profile_name(profile: str) -> None:
    if not _PROFILE_NAME.fullmatch(profile):
        raise SettingsError(
            [
                FieldProblem(
                    "profile",
                    "use 1 to 64 letters, digits, '-' or '_' (it becomes a file name), "
                    "e.g. default or acme-prod",
                )
            ],
            "the profile name",
        )


def _enter_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch to WAL, retrying while another process holds the file.

    The switch needs an exclusive lock, and SQLite answers "database is locked" at once — without
    its busy handler — when a second process opens a new profile at the same moment. Waiting
    here, as long as any other lock wait, keeps two processes that race to create the same
    profile from failing.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _inspect(path: Path, timeout: float) -> int | None:
    """The schema version of an existing mailkit profile, or None for an empty / missing file.

    Reads only. The SQLite header is checked in Python first, so that damaged, truncated and
    newer files are refused without SQLite opening them. A WAL-mode file that nobody has open
    (no ``-wal`` or ``-journal`` beside it) is opened ``immutable``: a plain read-only open of a
    WAL file would leave new ``-wal`` and ``-shm`` files beside one that is being refused.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return None
        with path.open("rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise StoreError(f"{path} is a folder; give the path of a profile file") from None
    except OSError as exc:
        raise StoreError(f"{path} cannot be read ({exc.strerror}); check its permissions") from None

    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _damaged(path, "it does not start like an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise _damaged(path, "its SQLite header is garbled")
    # While a -wal or -journal exists another connection may be mid-write (copying pages back
    # in a checkpoint, say), so the size is only judged on a file nobody has open.
    in_use = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal"))
    pages_in_header = int.from_bytes(header[28:32], "big")
    header_size_valid = header[24:28] == header[92:96] and pages_in_header > 0
    if not in_use and (
        size % page_size or (header_size_valid and pages_in_header * page_size > size)
    ):
        raise _damaged(path, "it is truncated (shorter than its own header says)")
    application_id = int.from_bytes(header[68:72], "big", signed=True)
    if application_id not in (0, APPLICATION_ID):
        raise _foreign(path, f"its application id is {application_id:#x}, not mailkit's")
    wal_mode = header[18] == 2
    if application_id == APPLICATION_ID:
        version = int.from_bytes(header[60:64], "big", signed=True)
        if version > SCHEMA_VERSION:
            raise _newer(path, version)

    uri = path.resolve().as_uri() + "?mode=ro"
    if wal_mode and not in_use:
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise _store_error(path, exc, "opening it", timeout) from None
    try:
        (application_id,) = conn.execute("PRAGMA application_id").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if application_id == 0 and not tables and version == 0:
            return None  # an empty database, e.g. left by a crash before the first commit
        if application_id != APPLICATION_ID:
            shown = ", ".join(sorted(tables)[:5]) or "no tables"
            raise _foreign(path, f"it has no mailkit application id; its tables: {shown}")
        if version > SCHEMA_VERSION:
            raise _newer(path, version)
        if "meta" not in tables:
            raise _damaged(path, "it is marked as a mailkit profile but lacks its tables")
        row = conn.execute("SELECT value FROM meta WHERE key = 'app'").fetchone()
        if row is None or row[0] != "mailkit":
            raise _foreign(path, "its meta table does not name mailkit")
        problems = [text for (text,) in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise _damaged(path, f"SQLite's integrity check failed ({problems[0]})")
        return int(version)
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR")):
            raise _damaged(path, f"SQLite cannot read it ({exc})") from None
        raise _store_error(path, exc, "inspecting it", timeout) from None
    finally:
        conn.close()


def _create_file(path: Path) -> None:
    """Create the file owner-only: user codes and addresses are personal data."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process was first; it is opened like any existing profile
    except FileNotFoundError:
        raise StoreError(
            f"the folder {path.parent} does not exist; create it or choose another path"
        ) from None
    except OSError as exc:
        raise StoreError(f"{path} cannot be created ({exc.strerror})") from None


# --------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601, so text order is time order in SQL and in the index."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timestamp must carry its time zone, e.g. datetime.now(UTC)")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _revalidate(model: type[_M], data: Any, context: str) -> _M:
    """Validate settings that already exist (read back, or checked together before saving).

    Their unsafe-setting warnings were given when they were made; pydantic re-runs model
    validators even on model instances, and a notebook should not repeat them on every read.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        result: _M = validate(model, data, context=context)
    return result


_USER_SELECT: Final = f"SELECT {', '.join(USERS_COLUMNS)} FROM users"
_USER_UPSERT: Final = (
    f"INSERT INTO users ({', '.join(USERS_COLUMNS)}, updated_at, code_key) "
    f"VALUES ({', '.join('?' * (len(USERS_COLUMNS) + 2))}) "
    "ON CONFLICT (code_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*USERS_COLUMNS, "updated_at"))
)
_HISTORY_COLUMNS: Final = (
    "id",
    "at",
    "user_code",
    "mode",
    "host",
    "port",
    "ok",
    "phase",
    "kind",
    "cause",
    "message_id",
    "duration_ms",
    "detail",
)


def _user_row(user: UserSettings, updated_at: str) -> tuple[Any, ...]:
    data = user.model_dump(mode="json")
    values = [data[c] for c in USERS_COLUMNS]
    values[USERS_COLUMNS.index("override_enabled")] = int(user.override_enabled)
    return (*values, updated_at, user.user_code.casefold())


def _check_profile(org: OrgSettings, users: list[UserSettings], context: str) -> None:
    """The rules that need the org and all users together (cloud edition, unique codes)."""
    _revalidate(Profile, {"org": org, "users": users}, context)


# --------------------------------------------------------------------------- the store


class Store:
    """One profile's settings and test history in an SQLite file. Open with :meth:`open`.

    Safe to share between threads (calls are serialized) and between processes (SQLite locks).
    """

    def __init__(
        self, conn: sqlite3.Connection, path: Path, profile_name: str, busy_timeout: float
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._profile_name = profile_name
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        profile: str = "default",
        create: bool = False,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> Self:
        """Open a profile; ``path`` defaults to ``<user data dir>/<profile>.sqlite``.

        Opening never creates: a missing profile raises :class:`ProfileNotFoundError` and
        leaves no file, unless ``create`` asks for a new one (see also
        :func:`mailkit.profiles.open_profile`, which also finds profiles by name).
        ``profile`` names the default file and is recorded in a new one; an existing file keeps
        the name it was created with. An existing file is inspected read-only first and refused
        (untouched) when it is damaged, foreign or newer; an older one is migrated in one
        transaction. Writers wait up to ``busy_timeout`` seconds for each other.
        """
        _check_profile_name(profile)
        file = default_store_path(profile) if path is None else Path(path).expanduser()
        version = _inspect(file, busy_timeout)
        if version is None:
            if not create:
                raise ProfileNotFoundError(
                    f"there is no mailkit profile at {file}; nothing was created. Check the "
                    "path, or create it with Store.open(..., create=True)"
                )
            if path is None:
                file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_file(file)
        try:
            conn = sqlite3.connect(
                file, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _store_error(file, exc, "opening it", busy_timeout) from None
        try:
            _enter_wal(conn, busy_timeout)
            conn.execute("PRAGMA foreign_keys = ON")
            if version is None or version < SCHEMA_VERSION:
                cls._initialize(conn, file, profile)
            row = conn.execute("SELECT value FROM meta WHERE key = 'profile'").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise _store_error(file, exc, "opening it", busy_timeout) from None
        except BaseException:
            conn.close()
            raise
        return cls(conn, file, row[0] if row else file.stem, busy_timeout)

    @staticmethod
    def _initialize(conn: sqlite3.Connection, path: Path, profile: str) -> None:
        """Create or migrate under the write lock.

        The read-only inspection ran without the lock, so what another process may have done
        since (created the profile first, say) is checked again here.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            (application_id,) = conn.execute("PRAGMA application_id").fetchone()
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if application_id != APPLICATION_ID and (application_id or version or tables):
                raise _foreign(path, "it changed while mailkit was opening it")
            if version > SCHEMA_VERSION:
                raise _newer(path, version)
            migrate_schema(conn)
            conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                [("profile", profile), ("created_at", _iso(_now()))],
            )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # ----------------------------------------------------------------- lifecycle

    @property
    def path(self) -> Path:
        return self._path

    @property
    def profile_name(self) -> str:
        """The name recorded in the file when it was created."""
        return self._profile_name

    def close(self) -> None:
        """Close the file; the last connection to close folds the WAL back into it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(path={str(self._path)!r}, profile={self._profile_name!r})"

    @contextmanager
    def _transaction(self, doing: str, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; writers take the lock up front so that they queue, not deadlock."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the store {self._path} is closed; open it again")
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise _store_error(self._path, exc, doing, self._busy_timeout) from exc

    # ----------------------------------------------------------------- reading

    def _read_org(self, conn: sqlite3.Connection) -> OrgSettings:
        row = conn.execute("SELECT data FROM org WHERE id = 1").fetchone()
        if row is None:
            return OrgSettings()
        try:
            data = json.loads(row[0])
        except ValueError:
            raise StoreCorruptError(
                f"the org settings in {self._path} are not readable JSON; save the org "
                "settings again or import your last TOML export"
            ) from None
        return _revalidate(OrgSettings, data, f"the stored org settings in {self._path}")

    def _read_users(
        self, conn: sqlite3.Connection, where: str = "", *args: Any
    ) -> list[UserSettings]:
        cursor = conn.execute(f"{_USER_SELECT} {where} ORDER BY user_code", args)
        users = []
        for values in cursor:
            data = dict(zip(USERS_COLUMNS, values, strict=True))
            users.append(
                _revalidate(
                    UserSettings, data, f"stored user {data['user_code']!r} in {self._path}"
                )
            )
        return users

    def get_org(self) -> OrgSettings:
        """The org settings; defaults until some are saved."""
        with self._transaction("reading the org settings", write=False) as conn:
            return self._read_org(conn)

    def get_user(self, code: str) -> UserSettings | None:
        """One user by code, compared without case; None if there is no such user."""
        with self._transaction("reading a user", write=False) as conn:
            found = self._read_users(conn, "WHERE code_key = ?", code.casefold())
        return found[0] if found else None

    def users(self) -> list[UserSettings]:
        """All users, ordered by user code (case-insensitively)."""
        with self._transaction("reading the users", write=False) as conn:
            return self._read_users(conn)

    def users_frame(self) -> pd.DataFrame:
        """All users as the canonical users table, read by SQL in one go (no loop per user)."""
        with self._transaction("reading the users", write=False) as conn:
            frame = pd.read_sql_query(f"{_USER_SELECT} ORDER BY user_code", conn)
        return frame.astype(dict(USERS_DTYPES))

    def profile(self) -> Profile:
        """The org and all users from one consistent snapshot."""
        with self._transaction("reading the profile", write=False) as conn:
            org = self._read_org(conn)
            users = self._read_users(conn)
        return _revalidate(Profile, {"org": org, "users": users}, f"the profile in {self._path}")

    # ----------------------------------------------------------------- writing

    def set_org(self, org: OrgSettings) -> None:
        """Save the org settings unless they would make a stored user invalid.

        Example: switching to the cloud edition while some user codes are not addresses is
        refused with every such user named, and nothing is written.
        """
        with self._transaction("saving the org settings") as conn:
            _check_profile(
                org, self._read_users(conn), "the new org settings together with the stored users"
            )
            self._write_org(conn, org)

    def put_user(self, user: UserSettings) -> None:
        """Add or replace one user (matched by code without case), checked against the org."""
        with self._transaction("saving a user") as conn:
            problems = user_problems(self._read_org(conn), user)
            if problems:
                raise SettingsError(problems, f"the settings of user {user.user_code}")
            conn.execute(_USER_UPSERT, _user_row(user, _iso(_now())))

    def put_users(self, users: Iterable[UserSettings]) -> None:
        """Add or replace many users: all of them, or none if any one is invalid."""
        batch = list(users)
        with self._transaction("saving users") as conn:
            _check_profile(self._read_org(conn), batch, "the users to save")
            now = _iso(_now())
            conn.executemany(_USER_UPSERT, [_user_row(user, now) for user in batch])

    def delete_user(self, code: str) -> bool:
        """Remove a user (code compared without case); False if there was none."""
        with self._transaction("deleting a user") as conn:
            cursor = conn.execute("DELETE FROM users WHERE code_key = ?", (code.casefold(),))
            return cursor.rowcount > 0

    def replace_profile(self, profile: Profile) -> None:
        """Replace the org and every user at once; users not in ``profile`` are removed."""
        with self._transaction("replacing the profile") as conn:
            _check_profile(profile.org, profile.users, "the profile")
            conn.execute("DELETE FROM users")
            self._write_org(conn, profile.org)
            now = _iso(_now())
            conn.executemany(_USER_UPSERT, [_user_row(user, now) for user in profile.users])

    def _write_org(self, conn: sqlite3.Connection, org: OrgSettings) -> None:
        conn.execute(
            "INSERT INTO org (id, data, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            (json.dumps(org.model_dump(mode="json"), ensure_ascii=False), _iso(_now())),
        )

    # ----------------------------------------------------------------- test history

    def record_test(
        self,
        *,
        user_code: str | None,
        ok: bool,
        mode: str | None = None,
        host: str | None = None,
        port: int | None = None,
        phase: str | None = None,
        kind: str | None = None,
        cause: str | None = None,
        message_id: str | None = None,
        duration_ms: float | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append one test result (``user_code`` None = the org) and return its id.

        ``detail`` is stored as given: pass a diagnosis summary, never a transcript with
        credentials in it. The user code is stored as the user is spelled in the store.
        """
        stamp = _iso(at if at is not None else _now())
        with self._transaction("recording a test result") as conn:
            if user_code is not None:
                row = conn.execute(
                    "SELECT user_code FROM users WHERE code_key = ?", (user_code.casefold(),)
                ).fetchone()
                user_code = row[0] if row else user_code
            cursor = conn.execute(
                "INSERT INTO test_history (at, user_code, mode, host, port, ok, phase, kind, "
                "cause, message_id, duration_ms, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stamp,
                    user_code,
                    _plain(mode),
                    host,
                    port,
                    int(bool(ok)),
                    _plain(phase),
                    _plain(kind),
                    _plain(cause),
                    message_id,
                    duration_ms,
                    detail,
                ),
            )
            return int(cursor.lastrowid or 0)

    def history_frame(self, user_code: str | EllipsisType | None = ...) -> pd.DataFrame:
        """Test results, oldest first: everyone's (default), the org's (None) or one user's."""
        sql = f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM test_history"
        params: tuple[Any, ...] = ()
        if user_code is None:
            sql += " WHERE user_code IS NULL"
        elif isinstance(user_code, str):
            sql += " WHERE user_code = ?"
            params = (user_code,)
        with self._transaction("reading the test history", write=False) as conn:
            frame = pd.read_sql_query(sql + " ORDER BY at, id", conn, params=params)
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        return frame.astype(
            {
                "ok": "bool",
                "port": "Int64",
                "duration_ms": "float64",
                **dict.fromkeys(
                    ("user_code", "mode", "host", "phase", "kind", "cause", "message_id", "detail"),
                    "string",
                ),
            }
        )

    def last_success(self, user_code: str | None) -> datetime | None:
        """When the org (None) or a user last passed a test, or None if never."""
        where = "user_code IS NULL" if user_code is None else "user_code = ?"
        params = () if user_code is None else (user_code,)
        with self._transaction("reading the test history", write=False) as conn:
            row = conn.execute(
                f"SELECT max(at) FROM test_history WHERE ok = 1 AND {where}",
                params,
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    # ----------------------------------------------------------------- files

    def export_toml(self, path: str | os.PathLike[str]) -> None:
        """Write the whole profile as TOML for review and version control; no secrets."""
        Path(path).write_text(profile_to_toml(self.profile()), encoding="utf-8")

    def import_toml(
        self, path: str | os.PathLike[str], *, dry_run: bool = False, backup: bool = True
    ) -> ProfileImport:
        """Replace the profile with a TOML file's, all or nothing (ImportFileError if invalid).

        Only a complete profile document is accepted (see :func:`profile_from_file`), so an
        empty or truncated file can never empty a profile. See :meth:`import_profile` for
        ``dry_run`` and ``backup``.
        """
        return self.import_profile(profile_from_file(path), dry_run=dry_run, backup=backup)

    def import_profile(
        self, profile: Profile, *, dry_run: bool = False, backup: bool = True
    ) -> ProfileImport:
        """Replace the org and all users with ``profile``, saying what changed.

        ``dry_run`` only computes the changes. Otherwise, when something changes and the profile
        holds anything, a backup copy is taken first (:meth:`backup`) and its path returned, so
        a mistaken import can be undone by opening that file.
        """
        changes = profile_changes(self.profile(), profile)
        if dry_run or not changes:
            return ProfileImport(changes, None, applied=False)
        copy = self.backup() if backup and not self._is_empty() else None
        self.replace_profile(profile)
        return ProfileImport(changes, copy, applied=True)

    def _is_empty(self) -> bool:
        with self._transaction("reading the profile", write=False) as conn:
            (org_rows,) = conn.execute("SELECT count(*) FROM org").fetchone()
            (user_rows,) = conn.execute("SELECT count(*) FROM users").fetchone()
        return not org_rows and not user_rows

    def backup(self) -> Path:
        """Copy the whole profile beside it, as ``<name>.backup-<UTC time>.sqlite``; its path.

        SQLite's online backup API copies a consistent snapshot while other sessions keep
        reading and writing, and the copy is an ordinary profile that :meth:`open` accepts.
        The file is created owner-only, like the profile, and never overwrites another.
        """
        stamp = _now().strftime("%Y%m%dT%H%M%SZ")
        suffix = self._path.suffix or ".sqlite"
        for attempt in range(1000):
            extra = f"-{attempt}" if attempt else ""
            target = self._path.with_name(f"{self._path.stem}.backup-{stamp}{extra}{suffix}")
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise StoreError(
                    f"cannot create a backup copy of {self._path} at {target} ({exc.strerror}); "
                    "nothing was imported. Free some space or fix the folder's permissions"
                ) from None
        else:  # pragma: no cover - a thousand backups in one second
            raise StoreError(f"too many backups of {self._path} this second; try again")
        try:
            copy = sqlite3.connect(target)
            try:
                with self._lock:
                    if self._conn is None:
                        raise StoreError(f"the store {self._path} is closed; open it again")
                    self._conn.backup(copy)
            finally:
                copy.close()
        except sqlite3.Error as exc:
            target.unlink(missing_ok=True)
            raise _store_error(
                self._path, exc, "taking a backup copy", self._busy_timeout
            ) from None
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def put_imported_users(
        self, users: Sequence[UserSettings], *, source: str, replace: bool = False
    ) -> int:
        """Add or update users read from ``source`` (a file), all or nothing; returns how many.

        The caller checked the rows against the org it read before; they are checked again here
        under the write lock, in case the org changed meanwhile. With ``replace``, users missing
        from ``users`` are removed. Reading the file is the caller's part
        (:func:`mailkit.userfiles.import_users`), so the store handles settings only.
        """
        with self._transaction("importing users") as conn:
            org = self._read_org(conn)
            problems = [problem for user in users for problem in user_problems(org, user)]
            if problems:
                raise ImportFileError(
                    f"{source} no longer fits the org settings, which changed during the import; "
                    "nothing was imported",
                    problems,
                )
            if replace:
                conn.execute("DELETE FROM users")
            now = _iso(_now())
            conn.executemany(_USER_UPSERT, [_user_row(user, now) for user in users])
        return len(users)


# --------------------------------------------------------------------------- TOML

_TOML_HEADER: Final = """\
# mailkit profile: the org settings, feature routes and users.
# Secrets (passwords, OAuth refresh tokens, client secrets) are never exported: they stay in
# the secret store. A setting that is absent here is unset and inherits or uses the default.
"""


def profile_to_toml(profile: Profile) -> str:
    """The profile as TOML; unset values are left out because TOML has no null."""
    data = {
        "mailkit_profile_format": TOML_FORMAT,
        **profile.model_dump(mode="json", exclude_none=True),
    }
    return _TOML_HEADER + "\n" + tomli_w.dumps(data)


#: A profile export of ten thousand users is a few megabytes; far more is not a profile.
MAX_TOML_BYTES: Final = 64 * 1024 * 1024


def profile_from_file(path: str | os.PathLike[str]) -> Profile:
    """Read, parse and validate a TOML profile file; :class:`ImportFileError` names the file.

    TOML is UTF-8 by definition, so a file in another encoding is refused with the encoding
    it was found to have instead of being parsed as garbage.
    """
    file = Path(path).expanduser()
    reason = ""
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_TOML_BYTES + 1)
    except IsADirectoryError:
        reason = "it is a folder; give the path of a .toml file"
    except OSError as exc:
        reason = f"{exc.strerror or type(exc).__name__}; check the path and that you may read it"
    if reason:
        raise ImportFileError(f"{file} cannot be read ({reason}); nothing was imported")
    if len(data) > MAX_TOML_BYTES:
        raise ImportFileError(
            f"{file} is larger than {MAX_TOML_BYTES // 2**20} MiB, far more than a profile "
            "export; check that you picked the right file. Nothing was imported"
        )
    decoded = decode_text(data, str(file))
    if decoded.encoding != "UTF-8":
        raise ImportFileError(
            f"{file} is {decoded.encoding} text, but TOML files are always UTF-8; save it as "
            "UTF-8 and import it again. Nothing was imported"
        )
    return _profile_from_toml(decoded.text, str(file))


def profile_from_toml(text: str) -> Profile:
    """Parse and validate a TOML profile; :class:`ImportFileError` lists every problem."""
    return _profile_from_toml(text, "the TOML profile")


def _profile_from_toml(text: str, source: str) -> Profile:
    """A complete profile document, or ImportFileError: never a partial or empty profile.

    An empty or comment-only file parses as an empty table, which the model would accept as
    "default org, no users" and an import would then empty the profile with. So the marker
    ``mailkit_profile_format``, the ``[org]`` table and the ``users`` list (``users = []`` in an
    export without users) must all be there.
    """
    problem = ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib names the line and column and the rule broken, never the content.
        problem = f"{source} is not valid TOML ({exc}); fix that line. Nothing was imported"
    except RecursionError:
        problem = (
            f"{source} is nested too deeply to be a profile (arrays or tables inside each other "
            "hundreds of levels deep); nothing was imported. Export the profile again"
        )
    except ValueError:  # e.g. an integer of thousands of digits: Python refuses to convert it
        problem = (
            f"{source} holds a number too long to read (thousands of digits); nothing was "
            "imported. Fix the number or export the profile again"
        )
    if problem:
        raise ImportFileError(problem)
    if not data:
        raise ImportFileError(
            f"{source} holds no profile (it is empty or only comments); nothing was imported. "
            "Import a file written by mailkit profile export"
        )
    version = data.pop("mailkit_profile_format", None)
    structure: list[FieldProblem] = []
    if version is None:
        structure.append(
            FieldProblem(
                "mailkit_profile_format",
                f"is missing; a profile export starts with mailkit_profile_format = "
                f"{TOML_FORMAT}. This is not a complete mailkit profile export",
            )
        )
    elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
        structure.append(
            FieldProblem(
                "mailkit_profile_format", f"must be a whole number from 1 to {TOML_FORMAT}"
            )
        )
    elif version > TOML_FORMAT:
        raise ImportFileError(
            f"{source} was written by a newer mailkit (format {version}; this one reads up to "
            f"{TOML_FORMAT}); upgrade mailkit to import it"
        )
    for key, what in (
        ("org", "an [org] table"),
        ("users", "a users list (users = [] when there are none)"),
    ):
        if key not in data:
            structure.append(FieldProblem(key, f"is missing; a complete profile has {what}"))
    try:
        profile: Profile = validate(Profile, data)
    except SettingsError as exc:
        structure += [FieldProblem(_user_by_code(p.field, data), p.message) for p in exc.problems]
    except RecursionError:
        structure.append(FieldProblem("(file)", "is nested too deeply to be a profile"))
    if structure:
        raise ImportFileError(
            f"{source} is not a complete, valid profile; nothing was imported. Fix these:",
            structure,
        )
    return profile


@dataclass(frozen=True)
class ProfileChanges:
    """What replacing one profile with another changes; empty (false) when nothing does.

    ``org`` lists ``(field, old, new)`` with nested fields dotted (``routes.requests.enabled``),
    ``changed`` lists ``(user_code, ((field, old, new), ...))``. Values are the JSON forms;
    ``None`` means unset. Profiles hold no secrets, so all of this may be shown.
    """

    org: tuple[tuple[str, Any, Any], ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[tuple[str, tuple[tuple[str, Any, Any], ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.org or self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        def rows(items: tuple[tuple[str, Any, Any], ...]) -> list[dict[str, Any]]:
            return [{"field": f, "old": old, "new": new} for f, old, new in items]

        return {
            "org": rows(self.org),
            "users_added": list(self.added),
            "users_removed": list(self.removed),
            "users_changed": [{"user_code": c, "fields": rows(f)} for c, f in self.changed],
        }

    def to_text(self) -> str:
        if not self:
            return "Nothing would change: the file holds the same org and users as the profile."
        lines: list[str] = []
        if self.org:
            lines.append(f"Org settings: {len(self.org)} field(s) change")
            lines += [f"  {f}: {_shown(old)} -> {_shown(new)}" for f, old, new in self.org]
        if self.added:
            lines.append(f"Users added ({len(self.added)}): {', '.join(self.added)}")
        if self.removed:
            lines.append(f"Users removed ({len(self.removed)}): {', '.join(self.removed)}")
        for code, fields in self.changed:
            lines.append(f"User {code} changes:")
            lines += [f"  {f}: {_shown(old)} -> {_shown(new)}" for f, old, new in fields]
        return "\n".join(lines)


@dataclass(frozen=True)
class ProfileImport:
    """The result of an import: the changes, the backup copy taken (if any), whether applied."""

    changes: ProfileChanges
    backup: Path | None
    applied: bool


def _shown(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, ensure_ascii=False)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        found: dict[str, Any] = {}
        for key, value in data.items():
            found.update(_flat(value, f"{prefix}{key}."))
        return found
    return {prefix.rstrip("."): data}


def _differences(old: Any, new: Any) -> tuple[tuple[str, Any, Any], ...]:
    before, after = _flat(old), _flat(new)
    return tuple(
        (key, before.get(key), after.get(key))
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    )


def profile_changes(old: Profile, new: Profile) -> ProfileChanges:
    """What replacing ``old`` with ``new`` changes (users matched by code without case)."""
    old_users = {u.user_code.casefold(): u for u in old.users}
    new_users = {u.user_code.casefold(): u for u in new.users}
    changed = []
    for key, user in new_users.items():
        if key in old_users:
            fields = _differences(
                old_users[key].model_dump(mode="json"), user.model_dump(mode="json")
            )
            if fields:
                changed.append((user.user_code, fields))
    return ProfileChanges(
        org=_differences(old.org.model_dump(mode="json"), new.org.model_dump(mode="json")),
        added=tuple(u.user_code for k, u in new_users.items() if k not in old_users),
        removed=tuple(u.user_code for k, u in old_users.items() if k not in new_users),
        changed=tuple(changed),
    )


def _user_by_code(field: str, data: Mapping[str, Any]) -> str:
    """``users.3.port`` -> ``users[alice].port``: people find users by code, not position."""
    match = re.match(r"users\.(\d+)(?=\.|$)", field)
    users = data.get("users")
    if match is None or not isinstance(users, list):
        return field
    index = int(match.group(1))
    entry = users[index] if index < len(users) else None
    code = entry.get("user_code") if isinstance(entry, dict) else None
    try:
        label = check_text(code, max_length=64) if isinstance(code, str) else ""
    except ValueError:
        label = ""
    return f"users[{label or f'#{index + 1}'}]" + field[match.end() :]
