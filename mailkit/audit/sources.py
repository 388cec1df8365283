"""Where an audit's users come from: the mailkit store, a CSV / Excel export, or a SQL query.

Each source gives the canonical users table (:data:`mailkit.columns.USERS_COLUMNS`) *without*
validating rows: an audit must see bad data in order to report it, so a bad address or a port
of 70000 stays in the frame for the rules to find. Only what makes a table unusable is refused
with :class:`~mailkit.errors.ImportFileError`: an unreadable file, a bad database URL, a failing
query, a mapping that does not fit, or no ``user_code`` column. What was changed on the way in
(columns left out, cells that could not be read as a port or a flag) is listed in ``notes``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from mailkit.columns import USERS_COLUMNS, USERS_DTYPES
from mailkit.credentials import MASK, hide_credentials
from mailkit.errors import ImportFileError
from mailkit.resolve import strings_at
from mailkit.users import place_columns, read_table

if TYPE_CHECKING:
    import sqlalchemy as sa

    from mailkit.store import Store

__all__ = [
    "UserSource",
    "canonical_frame",
    "users_from_file",
    "users_from_sql",
    "users_from_store",
]

_TRUE: Final = frozenset({"1", "1.0", "true", "yes", "y", "x", "on"})
_FALSE: Final = frozenset({"0", "0.0", "false", "no", "n", "off"})
_TEXT_COLUMNS: Final = tuple(c for c in USERS_COLUMNS if c not in ("override_enabled", "port"))
_SAMPLES: Final = 3  # values quoted in a note, so that a note stays one line
_CONNECT_TIMEOUT: Final = 10  # seconds, for servers that accept a connect timeout


@dataclass(frozen=True)
class UserSource:
    """A canonical users frame, where it came from (never with a password), and what changed."""

    frame: pd.DataFrame
    origin: str
    notes: tuple[str, ...] = ()
    #: How a file without a declared encoding was read (also the first note); "" otherwise.
    encoding_note: str = ""


# --------------------------------------------------------------------------- frames


def canonical_frame(df: pd.DataFrame, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``df`` as the canonical users table: renamed, completed with NA columns, typed.

    See :func:`users_from_file` for the mapping; use the sources to also get the notes.
    """
    return _canonical(df, mapping, "the users table")[0]


def _canonical(
    df: pd.DataFrame, mapping: Mapping[str, str] | None, origin: str
) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    placed = place_columns(df, {str(k).strip(): v for k, v in (mapping or {}).items()}, origin)
    used = set(placed.values())
    ignored = [str(c) for i, c in enumerate(df.columns) if i not in used]
    ignored = [c for c in ignored if c.strip() and not c.startswith("Unnamed:")]
    if ignored:
        notes.append(f"left out column(s) that are not users-table columns: {', '.join(ignored)}")
    raw = {name: df.iloc[:, index] for name, index in placed.items()}
    index = pd.RangeIndex(len(df))
    out: dict[str, pd.Series[Any]] = {}
    for name in _TEXT_COLUMNS:
        out[name] = _text(raw[name]) if name in raw else _empty(index, "string")
    out["port"] = _port(raw["port"], notes) if "port" in raw else _empty(index, "Int64")
    flags = raw.get("override_enabled")
    out["override_enabled"] = (
        _flag(flags, notes) if flags is not None else pd.Series(False, index=index, dtype="bool")
    )
    # The arrays, in the canonical order: Series would be aligned and copied, and selecting
    # the columns afterwards would copy them again. Each array is new and held only here.
    frame = pd.DataFrame({name: out[name].array for name in USERS_COLUMNS}, index=index, copy=False)
    frame = frame.astype(dict(USERS_DTYPES))
    # A row is blank when nothing is set: column by column, stopping as soon as every row has
    # something (the user codes usually settle it), not a copy of ten columns tested at once.
    blank = ~frame["override_enabled"].to_numpy(dtype=bool)
    for name in (*_TEXT_COLUMNS, "port"):
        if not blank.any():
            break
        blank &= frame[name].isna().to_numpy(dtype=bool)
    if blank.any():
        notes.append(f"skipped {int(blank.sum())} empty row(s)")
        frame = frame[~blank].reset_index(drop=True)
    return frame, notes


def _empty(index: pd.RangeIndex, dtype: str) -> pd.Series[Any]:
    return pd.Series(pd.NA, index=index, dtype=dtype)


def _whole(series: pd.Series[Any]) -> pd.Series[Any]:
    """Whole floats (SQL integers with NULLs arrive as float64) as Int64, so 7.0 reads "7"."""
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.dropna()
        if (values % 1 == 0).all():
            return series.astype("Int64")
    return series


def _text(series: pd.Series[Any]) -> pd.Series[Any]:
    """Trimmed text, blank as NA: ``str.strip`` mapped in C over the set values, once.

    pandas' ``.str.strip`` costs several Python steps per value, which was most of a large
    load's time. A column holding anything but text (numbers from a SQL object column) is
    converted as ``astype("string")`` would first.
    """
    series = _whole(series)
    if series.dtype != object and not pd.api.types.is_string_dtype(series.dtype):
        series = series.astype("string")
    values = series.to_numpy(dtype=object)
    is_set = ~pd.isna(values)
    try:
        trimmed = _objects(list(map(str.strip, values[is_set])))
    except TypeError:  # not all text
        values = series.astype("string").to_numpy(dtype=object)
        is_set = ~pd.isna(values)
        trimmed = _objects(list(map(str.strip, values[is_set])))
    blank = trimmed == ""
    if blank.any():
        is_set[is_set] = ~blank
        trimmed = trimmed[~blank]
    if len(trimmed) == len(values):  # every cell set: the array as it is, nothing to spread
        return pd.Series(pd.array(trimmed, dtype="string", copy=False), index=series.index)
    # From the set values alone: pandas validates an array of many NA cells several times
    # slower than one of strings (most override columns are mostly empty).
    return pd.Series(strings_at(trimmed, is_set), index=series.index)


def _objects(values: list[str]) -> np.ndarray[Any, np.dtype[np.object_]]:
    array: np.ndarray[Any, np.dtype[np.object_]] = np.fromiter(
        values, dtype=object, count=len(values)
    )
    return array


def _distinct(series: pd.Series[Any]) -> tuple[np.ndarray[Any, Any], pd.Series[Any], Any]:
    """Codes per row (-1 where unset), the distinct values as text, and rows per value.

    Ports and tick boxes hold a handful of distinct values: read each once, not per row.
    """
    codes, uniques = pd.factorize(series)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    return codes, _text(pd.Series(uniques)), counts


def _port(series: pd.Series[Any], notes: list[str]) -> pd.Series[Any]:
    """Whole numbers as Int64, out-of-range ones kept (a rule reports them); others noted."""
    codes, text, counts = _distinct(series)
    numbers = pd.to_numeric(text, errors="coerce")
    unreadable = text.notna() & (numbers.isna() | (numbers % 1 != 0))
    if unreadable.any():
        notes.append(
            f"{int(counts[unreadable.to_numpy()].sum())} port(s) are not whole numbers and were "
            "read as empty: " + _samples(text[unreadable])
        )
    ports = numbers.where(~unreadable).astype("Int64").array
    return pd.Series(ports.take(codes, allow_fill=True), index=series.index)


def _flag(series: pd.Series[Any], notes: list[str]) -> pd.Series[Any]:
    """yes/no, 1/0, x, true/false as bool; empty is False, anything else False with a note."""
    codes, text, counts = _distinct(series)
    text = text.str.lower()
    true, false = text.isin(_TRUE), text.isin(_FALSE)
    unreadable = text.notna() & ~true & ~false
    if unreadable.any():
        notes.append(
            f"{int(counts[unreadable.to_numpy()].sum())} override_enabled value(s) are not "
            "yes/no and were read as no: " + _samples(text[unreadable])
        )
    # Code -1 (unset) reads the appended False.
    flags = np.append(true.fillna(False).to_numpy(dtype=bool), False)
    return pd.Series(flags[codes], index=series.index, dtype="bool")


def _samples(values: pd.Series[Any]) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    shown = ", ".join(repr(v[:40]) for v in unique[:_SAMPLES])
    return shown + (", ..." if len(unique) > _SAMPLES else "")


# --------------------------------------------------------------------------- sources


def users_from_store(store: Store) -> UserSource:
    """Every user in a mailkit store, as stored."""
    frame, notes = _canonical(store.users_frame(), None, f"the mailkit store {store.path}")
    return UserSource(frame, f"the mailkit store {store.path}", tuple(notes))


def users_from_file(
    path: str | os.PathLike[str], mapping: Mapping[str, str] | None = None
) -> UserSource:
    """A ``.csv`` or ``.xlsx`` export; ``mapping`` renames its columns (``{"E-mail": "email"}``).

    Cells are read as text, so codes such as ``00123`` keep their zeros; CSV may use ``,``,
    ``;`` or tab. Columns that are neither mapped nor canonical are left out and noted.
    """
    file = Path(path).expanduser()
    raw = read_table(file)
    frame, notes = _canonical(raw, mapping, str(file))
    encoding_note = str(raw.attrs.get("encoding_note") or "")
    if encoding_note:
        notes.insert(0, encoding_note)
    return UserSource(frame, str(file), tuple(notes), encoding_note)


def users_from_sql(
    url: str | sa.URL,
    query: str,
    mapping: Mapping[str, str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
) -> UserSource:
    """The rows of ``query`` on the database at SQLAlchemy ``url``; the connection is closed after.

    Values go in ``params`` and are bound by the driver (``WHERE tenant = :tenant``), never
    formatted into the query. Error messages and ``origin`` show the URL without its password.
    """
    import sqlalchemy as sa  # imported here: only SQL sources need it

    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise ImportFileError(
            f"{hide_credentials(str(url))} is not a database URL; write it as SQLAlchemy does, "
            "e.g. postgresql+psycopg://user:password@host:5432/database or sqlite:///path/app.db"
        ) from None
    # The URL's password is hidden by SQLAlchemy; hide_credentials also masks password=-style
    # query parameters (sslpassword, token, ...), which SQLAlchemy shows.
    shown = hide_credentials(parsed.render_as_string(hide_password=True))
    secret = parsed.password

    def fail(message: str) -> ImportFileError:
        """A driver's message may quote the connection string: mask before anyone sees it."""
        if secret:
            message = message.replace(str(secret), MASK)
        return ImportFileError(hide_credentials(message))

    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database or "").expanduser()
        if not database.is_file():  # SQLite would silently create an empty database
            raise fail(f"the SQLite database {database} does not exist; check the path in {shown}")
    connect_args = {"connect_timeout": _CONNECT_TIMEOUT} if backend == "postgresql" else {}
    try:
        engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool, connect_args=connect_args)
    except sa.exc.NoSuchModuleError:
        raise fail(
            f"SQLAlchemy has no dialect or driver for {parsed.drivername!r} (in {shown}); "
            "install the driver (for PostgreSQL: pip install 'psycopg[binary]') or fix the URL"
        ) from None
    except (ImportError, sa.exc.ArgumentError) as exc:
        raise fail(
            f"cannot use {shown}: {_first_line(exc)}; install the database driver or fix the URL"
        ) from None
    origin = f"the query on {shown}"
    try:
        with engine.connect() as connection:
            try:
                raw = pd.read_sql(sa.text(query), connection, params=dict(params or {}))
            except (pd.errors.DatabaseError, sa.exc.SQLAlchemyError) as exc:
                # pandas wraps SQLAlchemy's error, whose text repeats the SQL and parameters
                cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
                reason = cause.orig if isinstance(cause, sa.exc.DBAPIError) else cause or exc
                raise fail(
                    f"the query failed on {shown}: {_first_line(reason)}; check the table and "
                    "column names and the bound parameters"
                ) from None
    except sa.exc.DBAPIError as exc:
        raise fail(
            f"cannot connect to {shown}: {_first_line(exc.orig)}; check the host, port, user, "
            "password and database, and that the server accepts connections from here"
        ) from None
    finally:
        engine.dispose()
    frame, notes = _canonical(raw, mapping, origin)
    return UserSource(frame, origin, tuple(notes))


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__ if exc else "no detail"
