"""The users table: the canonical CSV / Excel columns for importing, exporting and auditing users.

An application's own export rarely uses mailkit's column names, so a mapping renames its columns
onto the canonical ones. An empty cell means "inherit from the org". Imports are all or nothing:
every row is validated through the settings model and every problem is reported at once, named
by the row number a person sees in the spreadsheet (the header is row 1), so an admin fixes the
file in one pass instead of one error per attempt.

CSV files and formulas. A spreadsheet program opening a CSV runs a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return as a formula ("CSV injection"), so a display name
such as ``=HYPERLINK(...)`` typed into an application would become live in an admin's Excel.
As OWASP advises, :func:`write_users` prefixes such a cell with an apostrophe, which spreadsheets
show as text. To keep the export lossless, a value that itself starts with an apostrophe gets
one more. Reading reverses exactly that: **a CSV cell that starts with an apostrophe followed by
one of ``= + - @``, a tab, a carriage return or another apostrophe loses its first apostrophe**;
every other cell is read as it is. So every value survives export and import, and a hand-made
CSV only needs the doubled apostrophe for a value that really starts with ``'=`` or ``''``.
Excel files store text cells as text (never as formulas) and need no prefix.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, AnyStr, Final

import numpy as np
import pandas as pd

from mailkit.columns import USERS_COLUMNS, users_to_frame
from mailkit.errors import FieldProblem, ImportFileError, SettingsError
from mailkit.settings import (
    OrgSettings,
    UserSettings,
    check_text,
    user_problems,
    validate,
)
from mailkit.textfile import decode_text

__all__ = [
    "FORMULA_TRIGGERS",
    "neutralise_cell",
    "neutralise_cells",
    "place_columns",
    "read_table",
    "read_users",
    "restore_cell",
    "restore_cells",
    "users_from_frame",
    "write_users",
]

#: File types read and written, by lower-case suffix.
SUFFIXES: Final = (".csv", ".xlsx")

_TEXT_COLUMNS: Final = frozenset(USERS_COLUMNS) - {"override_enabled", "port"}

#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP).
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")
_QUOTE: Final = "'"
#: Files larger than this are not a users table (a million users take about 150 MB).
MAX_CSV_BYTES: Final = 512 * 1024 * 1024


def neutralise_cell(text: str) -> str:
    """A CSV cell that no spreadsheet runs as a formula; :func:`restore_cell` undoes it."""
    return _QUOTE + text if text.startswith((*FORMULA_TRIGGERS, _QUOTE)) else text


def restore_cell(text: str) -> str:
    """The value :func:`neutralise_cell` was given (other text is returned as it is)."""
    if text.startswith(_QUOTE) and text[1:2] in (*FORMULA_TRIGGERS, _QUOTE) and text[1:2]:
        return text[1:]
    return text


def _cells(column: pd.Series[Any], first: frozenset[str], change: Any) -> pd.Series[Any]:
    """``change`` applied to the text cells whose first character is in ``first``, others kept.

    One cheap test per cell and ``change`` only where it applies: a fraction of what a
    ``Series.map`` over every cell costs.
    """
    values = column.to_numpy(dtype=object)
    hits = [i for i, v in enumerate(values) if v.__class__ is str and v[:1] in first]
    if not hits:
        return column
    values = values.copy()
    values[hits] = [change(values[i]) for i in hits]
    return pd.Series(values, index=column.index, name=column.name, dtype=column.dtype)


def neutralise_cells(column: pd.Series[Any]) -> pd.Series[Any]:
    """:func:`neutralise_cell` over a column's text cells (other values kept)."""
    return _cells(column, frozenset((*FORMULA_TRIGGERS, _QUOTE)), neutralise_cell)


def restore_cells(column: pd.Series[Any]) -> pd.Series[Any]:
    """:func:`restore_cell` over a column's text cells (other values kept)."""
    return _cells(column, frozenset(_QUOTE), restore_cell)


# --------------------------------------------------------------------------- frames


def users_from_frame(
    df: pd.DataFrame,
    *,
    mapping: Mapping[str, str] | None = None,
    org: OrgSettings | None = None,
) -> list[UserSettings]:
    """Validate a users table, returning every user or raising :class:`ImportFileError`.

    ``mapping`` renames an application's columns (``{"Login": "user_code"}``). With ``org``,
    the rules that need the org (cloud edition, inherited port/security) are checked too, so a
    file is refused before anything is written rather than half-way through.
    """
    return _users_from_frame(df, mapping=mapping, org=org, source="the users table")


def _users_from_frame(
    df: pd.DataFrame,
    *,
    mapping: Mapping[str, str] | None,
    org: OrgSettings | None,
    source: str,
) -> list[UserSettings]:
    table = _canonical_columns(df, {k.strip(): v for k, v in (mapping or {}).items()}, source)
    problems: list[FieldProblem] = []
    bad_rows: set[int] = set()
    users: list[UserSettings] = []
    first_row: dict[str, int] = {}
    for position, record in enumerate(table.to_dict(orient="records")):
        row = position + 2  # the header is row 1 in every spreadsheet program
        values = {column: _cell(value) for column, value in record.items()}
        if all(value is None for value in values.values()):
            continue  # a blank line between blocks of users is not an error
        label = _row_label(row, values.get("user_code"))
        found: list[FieldProblem] = []
        try:
            user: UserSettings = validate(UserSettings, values)
        except SettingsError as exc:
            found = [FieldProblem(f"{label}.{p.field}", p.message) for p in exc.problems]
        else:
            key = user.user_code.casefold()
            if key in first_row:
                found.append(
                    FieldProblem(
                        f"{label}.user_code",
                        f"repeats the user code of row {first_row[key]} (compared without "
                        "case); user codes must be unique: rename or remove one of the rows",
                    )
                )
            else:
                first_row[key] = row
            if org is not None:
                prefix = f"users[{user.user_code}]."
                found.extend(
                    FieldProblem(f"{label}.{p.field.removeprefix(prefix)}", p.message)
                    for p in user_problems(org, user)
                )
            users.append(user)
        if found:
            problems.extend(found)
            bad_rows.add(row)
    if problems:
        raise ImportFileError(
            f"{source} has {len(problems)} problem(s) in {len(bad_rows)} row(s); nothing was "
            "imported. Fix the rows below and import the file again:",
            problems,
        )
    return users


def place_columns(df: pd.DataFrame, mapping: Mapping[str, str], source: str) -> dict[str, int]:
    """Canonical column name -> the position of the column it is read from.

    Mapped headers and canonical names in any case are placed; a mapping onto a non-canonical
    name, a mapped header the table lacks, two columns for one name, or no user_code column
    are refused. Other columns are left to the caller (imports refuse them, audits note them).
    """
    bad_targets = sorted({target for target in mapping.values() if target not in USERS_COLUMNS})
    if bad_targets:
        raise ImportFileError(
            f"the column mapping sends columns to {', '.join(bad_targets)}, which are not "
            f"users-table columns; map only onto: {', '.join(USERS_COLUMNS)}"
        )
    headers = [str(column).strip() for column in df.columns]
    absent = sorted(set(mapping) - set(headers))
    if absent:
        raise ImportFileError(
            f"the column mapping names {', '.join(absent)}, but {source} has no such column; "
            f"its columns are: {', '.join(headers)}. Fix the mapping or the header row"
        )
    canonical = {column.lower(): column for column in USERS_COLUMNS}
    placed: dict[str, int] = {}
    for index, header in enumerate(headers):
        name = mapping.get(header) or canonical.get(header.lower())
        if name is None:
            continue
        if name in placed:
            raise ImportFileError(
                f"both {headers[placed[name]]!r} and {header!r} in {source} would become the "
                f"{name} column; map or keep only one of them"
            )
        placed[name] = index
    if "user_code" not in placed:
        raise ImportFileError(
            f"{source} has no user_code column, so its rows cannot be told apart; name the "
            "column holding the user codes user_code, or map it (mapping={'Login': 'user_code'})"
        )
    return placed


def _canonical_columns(df: pd.DataFrame, mapping: Mapping[str, str], source: str) -> pd.DataFrame:
    """Rename mapped and differently-cased headers; refuse anything that cannot be placed."""
    placed = place_columns(df, mapping, source)
    used = set(placed.values())
    unknown = []
    for index, column in enumerate(df.columns):
        header = str(column).strip()
        if index in used:
            continue
        blank = (not header or header.startswith("Unnamed:")) and df.iloc[:, index].map(
            _cell
        ).isna().all()
        if not blank:  # an empty, header-less column is spreadsheet formatting, not data
            unknown.append(header or f"(column {index + 1} without a header)")
    if unknown:
        raise ImportFileError(
            f"{source} has column(s) that are not part of the users table: {', '.join(unknown)}. "
            "Map each one onto a users-table column (mapping={'Their name': 'user_code', ...}) "
            "or delete it from the file; the users-table columns are: " + ", ".join(USERS_COLUMNS)
        )
    columns = {name: df.iloc[:, index].reset_index(drop=True) for name, index in placed.items()}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(df)))


def _cell(value: Any) -> Any:
    """A spreadsheet cell as the settings model takes it: NaN / NA are "not set"."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value))):
        return None
    return value


def _row_label(row: int, code: Any) -> str:
    """``row 7 (alice)``: the code helps find the row, but only a code that is plain text."""
    if isinstance(code, str):
        try:
            shown = check_text(code, max_length=64)
        except ValueError:
            shown = ""
        if shown:
            return f"row {row} ({shown})"
    return f"row {row}"


# --------------------------------------------------------------------------- files


def read_users(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    org: OrgSettings | None = None,
) -> list[UserSettings]:
    """Read and validate a ``.csv`` or ``.xlsx`` users file (see :func:`users_from_frame`).

    Every cell is read as text so that user codes like ``00123`` keep their leading zeros;
    the model converts ports and flags itself. CSV may be UTF-8 with or without a BOM and use
    ``,``, ``;`` (what Excel writes in many European locales) or tab as the separator.
    """
    file = Path(path).expanduser()
    frame = read_table(file)
    return _users_from_frame(frame, mapping=mapping, org=org, source=str(file))


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``.csv`` or ``.xlsx`` table with every cell as text, or a clear ImportFileError.

    Shared by imports (which validate) and audits (which must see bad rows, not refuse them).
    """
    file = Path(path).expanduser()
    suffix = _suffix(file, "import")
    try:
        return _read_csv(file) if suffix == ".csv" else _read_xlsx(file)
    except ImportFileError:
        raise
    except FileNotFoundError:
        raise ImportFileError(f"{file} does not exist; check the path and name") from None
    except IsADirectoryError:
        raise ImportFileError(
            f"{file} is a folder; give the path of a .csv or .xlsx file"
        ) from None
    except PermissionError:
        raise ImportFileError(
            f"{file} cannot be read (permission denied); close it in other programs or check "
            "its permissions"
        ) from None
    except pd.errors.EmptyDataError:
        raise ImportFileError(
            f"{file} is empty; it needs a header row with at least a user_code column"
        ) from None
    except UnicodeDecodeError:
        raise ImportFileError(
            f"{file} is not UTF-8 text; save it as UTF-8 (in Excel: Save As, "
            "'CSV UTF-8 (Comma delimited)') and import it again"
        ) from None
    except Exception as exc:  # openpyxl and pandas raise many types on damaged files
        raise ImportFileError(
            f"{file} cannot be read as a {suffix} file ({type(exc).__name__}); it may be damaged "
            "or of another type: open it in a spreadsheet program and save it again as "
            ".csv (UTF-8) or .xlsx"
        ) from None


def write_users(users: Iterable[UserSettings], path: str | os.PathLike[str]) -> None:
    """Write the canonical table to ``.csv`` (UTF-8) or ``.xlsx`` so that reading it is lossless.

    CSV cells that a spreadsheet would run as formulas are neutralised (see the module
    docstring); :func:`read_users` restores them.
    """
    file = Path(path).expanduser()
    frame = users_to_frame(users)
    if _suffix(file, "export") == ".csv":
        neutral = frame.copy()
        for column in _TEXT_COLUMNS:
            neutral[column] = neutralise_cells(neutral[column])
        neutral.to_csv(file, index=False, encoding="utf-8")
    else:
        _write_xlsx(frame, file)


def _suffix(file: Path, action: str) -> str:
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        message = (
            f"{file} has the extension {file.suffix or '(none)'!r}; mailkit can {action} users "
            "as .csv (UTF-8) or .xlsx (Excel); save or name the file with one of those"
        )
        if action == "import":
            raise ImportFileError(message)
        raise ValueError(message)
    return suffix


def _read_csv(file: Path) -> pd.DataFrame:
    """Decode (see :mod:`mailkit.textfile`), then parse; ``attrs["encoding_note"]`` says how a
    file without a declared encoding was read, and neutralised cells are restored."""
    with file.open("rb") as handle:
        data = handle.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise ImportFileError(
            f"{file} is larger than {MAX_CSV_BYTES // 2**20} MiB; split it into smaller files"
        )
    if b"\x00" not in data:
        # Text without NUL bytes that the parser reads as UTF-8 (it decodes every cell
        # strictly) is what decoding would have found: such a file, most files, is parsed
        # without being decoded whole first (a fifth of the parse's time). Anything it refuses
        # is read the careful way below, which says why or finds the encoding.
        body = data.removeprefix(codecs.BOM_UTF8)
        # Refusals (not UTF-8, malformed or empty) are ValueErrors, said again below.
        with contextlib.suppress(ValueError):
            header = body[: _line_end(body, b"\n")].decode("utf-8")
            return _parse_csv(io.BytesIO(body), header, b"'" in body, "UTF-8", "")
    decoded = decode_text(data, str(file), allow_nul=True)
    text = decoded.text
    header = text[: _line_end(text, "\n")]  # not partition: it would copy all the rest
    source: io.BytesIO | io.StringIO
    if decoded.encoding == "UTF-8":
        # The parser reads UTF-8 bytes itself, a third faster than from decoded text (which it
        # would encode again); the decoding above has proved them valid.
        source = io.BytesIO(data.removeprefix(codecs.BOM_UTF8))
    else:
        source = io.StringIO(text, newline="")
    has_quote = _QUOTE in text
    note, encoding = decoded.note, decoded.encoding
    del decoded, text  # a million users' text is hundreds of MB
    return _parse_csv(source, header, has_quote, encoding, note)


def _line_end(text: AnyStr, newline: AnyStr) -> int:
    """Where the first line of ``text`` ends (its length when it has one line)."""
    end = text.find(newline)
    return len(text) if end < 0 else end


def _parse_csv(
    source: io.BytesIO | io.StringIO, header: str, has_quote: bool, encoding: str, note: str
) -> pd.DataFrame:
    """The table in ``source`` (UTF-8 bytes or text), separated as its ``header`` row is."""
    if not header.strip():
        raise pd.errors.EmptyDataError
    separator = max((",", ";", "\t"), key=header.count)
    frame = pd.read_csv(
        source,
        sep=separator,
        encoding="utf-8",
        # Plain objects (str or NaN): the columns are converted once, by whoever reads them.
        dtype=object,
        keep_default_na=False,  # "NA" or "None" may be someone's user code
        na_values=[""],
        skip_blank_lines=False,  # keep row numbers equal to what a spreadsheet shows
    )
    if has_quote:  # no cell can start with one otherwise
        for column in frame.columns:
            frame[column] = restore_cells(frame[column])
    frame.attrs["encoding"] = encoding
    frame.attrs["encoding_note"] = note
    return frame


def _read_xlsx(file: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        # Files written by other applications make openpyxl warn about styles it cannot read;
        # the values are what matters here.
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        return pd.read_excel(
            file,
            sheet_name=0,
            dtype=str,
            engine="openpyxl",
            keep_default_na=False,
            na_values=[""],
        )


def _write_xlsx(frame: pd.DataFrame, file: Path) -> None:
    """Text cells are typed and formatted as text.

    openpyxl would store a display name starting with ``=`` as a formula (which Excel then runs),
    and Excel turns a typed ``00123`` into 123 unless the column is formatted as text.
    """
    from openpyxl import Workbook  # Excel files only: reading a CSV needs none of it
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new workbook always has one sheet
    sheet.title = "users"
    sheet.append(list(USERS_COLUMNS))
    for record in frame.itertuples(index=False):
        sheet.append([_cell(value) for value in record])
    for column_index, name in enumerate(USERS_COLUMNS, start=1):
        if name in _TEXT_COLUMNS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column_index, max_col=column_index):
                cell.number_format = "@"
                if cell.value is not None:
                    cell.data_type = "s"
        width = max([len(name), *(len(str(v)) for v in frame[name].dropna())])
        sheet.column_dimensions[get_column_letter(column_index)].width = min(width + 2, 60)
    sheet.freeze_panes = "A2"
    workbook.save(file)
