"""Reports of an audit: a summary table, charts, a standalone HTML page and file exports.

Findings hold values typed by users and applications, so every value is made harmless on the
way out: escaped in HTML; in CSV a cell that a spreadsheet would run as a formula gets an
apostrophe in front (OWASP's advice; see :func:`mailkit.users.neutralise_cell`); in Excel every
text cell is stored as text, never as a formula, and control characters that Excel files cannot
hold (a NUL from a damaged export, say) are written as visible ``\\x00``-style escapes.

Charts are built on :class:`matplotlib.figure.Figure` directly, not pyplot, so that making a
report never touches global plotting state or opens a window.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import pandas as pd

from mailkit.audit.rules import FINDINGS_COLUMNS, SEVERITIES
from mailkit.users import FORMULA_TRIGGERS, neutralise_cell, neutralise_cells

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["affected_users", "charts", "export", "summary", "to_html", "write_csv"]

#: Characters an .xlsx file cannot hold (XML 1.0 forbids them); openpyxl refuses them.
_NOT_IN_XLSX: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

#: Severity colours shared by the HTML report and the charts.
SEVERITY_COLOURS: dict[str, str] = {
    "critical": "#c62828",
    "warning": "#ef6c00",
    "info": "#1565c0",
}


def affected_users(findings: pd.DataFrame) -> int:
    """How many users the findings name: distinct user codes (a route finding names its sender).

    Every face counts users this way — the summary, the charts and the dashboard — so their
    numbers agree. A user has one finding per rule that fires, so users are never more than
    findings.
    """
    return int(findings["user_code"].nunique())


def summary(findings: pd.DataFrame) -> pd.DataFrame:
    """Per rule and severity, most severe first: how many ``findings`` and how many ``users``.

    ``findings`` sums to the number of findings; ``users`` counts each user once per rule (see
    :func:`affected_users`), so it is the number of users a fix of that rule touches.
    """
    columns: dict[str, Any] = {"rule": str, "severity": str, "findings": "int64", "users": "int64"}
    if findings.empty:
        return pd.DataFrame({c: [] for c in columns}).astype(columns)
    groups = findings.groupby(["rule", "severity"], sort=False)["user_code"]
    counts = pd.DataFrame({"findings": groups.size(), "users": groups.nunique()}).reset_index()
    rank = counts["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    counts = counts.assign(_rank=rank).sort_values(
        ["_rank", "findings"], ascending=[True, False], kind="stable"
    )
    return counts.drop(columns="_rank").reset_index(drop=True).astype(columns)


def charts(findings: pd.DataFrame, effective: pd.DataFrame) -> list[Figure]:
    """Findings by rule and severity; users by mode; users by provenance of each field.

    Titles say what is counted, in the summary's and the dashboard's numbers: findings and the
    users they name, and the users audited (``effective`` has one row per user).
    """
    from matplotlib.figure import Figure  # matplotlib loads only when a chart is drawn

    figures: list[Figure] = []

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    table = (
        pd.crosstab(findings["rule"], findings["severity"])
        if not findings.empty
        else pd.DataFrame()
    )
    if table.empty:
        ax.text(0.5, 0.5, "no findings", ha="center", va="center")
    else:
        order = [s for s in SEVERITIES if s in table.columns]
        table = table[order]
        table.plot.barh(
            ax=ax, stacked=True, color=[SEVERITY_COLOURS[s] for s in order], legend=True
        )
        ax.set_xlabel("findings")
    ax.set_title(
        f"Findings by rule and severity: {len(findings)} finding(s) for "
        f"{affected_users(findings)} user(s)"
    )
    figures.append(fig)

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    modes = effective["mode"].astype("string").fillna("(unknown)").value_counts()
    if modes.empty:
        ax.text(0.5, 0.5, "no users", ha="center", va="center")
    else:
        modes.plot.bar(ax=ax, color="#546e7a")
        ax.set_ylabel("users")
    ax.set_title(f"Users by mode: {len(effective)} user(s) audited")
    figures.append(fig)

    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    sources = [c for c in effective.columns if c.endswith("_source")]
    if not sources or effective.empty:
        ax.text(0.5, 0.5, "no users", ha="center", va="center")
    else:
        provenance = pd.DataFrame(
            {
                c.removesuffix("_source"): effective[c].astype("string").value_counts()
                for c in sources
            }
        ).fillna(0)
        provenance.T.plot.bar(ax=ax, stacked=True)
        ax.set_ylabel("users")
    ax.set_title(f"Where each setting comes from, for {len(effective)} user(s)")
    figures.append(fig)
    return figures


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
.sev { color: #fff; font-weight: bold; border-radius: 3px; padding: 0 6px; }
""" + "".join(f".sev-{s} {{ background: {c}; }}\n" for s, c in SEVERITY_COLOURS.items())


def _cell(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return ""
    return html.escape(str(value))


def _table(frame: pd.DataFrame, *, severity_column: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            text = _cell(value)
            if column == severity_column and value in SEVERITY_COLOURS:
                text = f'<span class="sev sev-{text}">{text}</span>'
            cells.append(f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def to_html(findings: pd.DataFrame, effective: pd.DataFrame | None = None) -> str:
    """A standalone HTML page: summary, findings and (optionally) the effective settings."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>mailkit audit</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>mailkit audit</h1>",
        f"<p>{len(findings)} finding(s) for {affected_users(findings)} user(s)"
        + (f"; {len(effective)} user(s) audited.</p>" if effective is not None else ".</p>"),
        "<h2>Summary</h2>",
        _table(summary(findings), severity_column="severity"),
        "<h2>Findings</h2>",
        _table(findings[list(FINDINGS_COLUMNS)], severity_column="severity"),
    ]
    if effective is not None:
        parts += ["<h2>Effective settings</h2>", _table(effective)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_csv(frame: pd.DataFrame, target: str | os.PathLike[str] | TextIO) -> None:
    """``frame`` as CSV (UTF-8 for files) with formula-like text cells neutralised.

    The bytes are those of ``DataFrame.to_csv`` (same dialect, line ending and missing-value
    cells); a frame of text, as findings are, is written by :func:`_write_text_csv`, several
    times faster on a million findings. Other frames go through pandas.
    """
    texts = _text_columns(frame)
    if isinstance(target, str | os.PathLike):
        if texts is not None:
            with Path(target).open("w", encoding="utf-8", newline="") as handle:
                _write_text_csv(frame, texts, handle)
            return
        frame.apply(neutralise_cells).to_csv(Path(target), index=False, encoding="utf-8")
    elif texts is not None:
        _write_text_csv(frame, texts, target)
    else:
        frame.apply(neutralise_cells).to_csv(target, index=False)


#: What makes a cell change on its way out: a first character that :func:`neutralise_cell`
#: guards (formula triggers and the apostrophe itself), and characters the csv module quotes.
_GUARDED_FIRST: Final = frozenset((*FORMULA_TRIGGERS, "'"))
#: The line ending (os.linesep) is made of two of them.
_QUOTED_ANYWHERE: Final = (",", '"', "\r", "\n")


def _text_columns(frame: pd.DataFrame) -> list[list[str]] | None:
    """Each column's cells as text (missing as ``""``), or None when a cell is not text.

    None also for a single column, whose empty cell the csv module would write as ``""``.
    """
    if frame.shape[1] < 2 or not all(isinstance(c, str) for c in frame.columns):
        return None
    columns: list[list[str]] = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.StringDtype):
            cells = column.to_numpy(dtype=object)
            # All text (no missing cell, as in findings): one C pass says so, no NA mask.
            if pd.api.types.infer_dtype(cells, skipna=False) != "string":
                cells = column.to_numpy(dtype=object, na_value="")
            values = cells.tolist()
        elif column.dtype == object:
            values = column.to_numpy(dtype=object).tolist()
            missing = column.isna().to_numpy()
            if missing.any():
                values = ["" if gone else v for v, gone in zip(values, missing, strict=True)]
            if not all(v.__class__ is str for v in values):
                return None
        else:
            return None
        columns.append(values)
    return columns


def _plain(joined: str) -> bool:
    """Whether no cell of a column joined with NUL needs an apostrophe or quotes.

    Substring scans at C speed; NUL inside a value can only make a column look unplain.
    """
    return not (
        any(char in joined for char in _QUOTED_ANYWHERE)
        or joined[:1] in _GUARDED_FIRST
        or any(char in joined and f"\x00{char}" in joined for char in _GUARDED_FIRST)
    )


def _csv_cells(values: list[str]) -> list[str]:
    """``values`` as CSV cells: neutralised, then quoted as the csv module quotes them.

    A column of mostly distinct values (user codes) is first scanned whole: usually plain, it
    is kept as it is without hashing a million strings. Otherwise each distinct value (a
    findings column repeats a few messages) is looked at once. Cells that change are written
    by the csv module itself, so the quoting is exactly its own.
    """
    sample = values[:: max(1, len(values) // 1000)]  # spread: a column repeats by parts
    if len(set(sample)) > len(sample) // 2 and _plain("\x00".join(values)):
        return values
    first = _GUARDED_FIRST
    suspects = [
        v for v in set(values) if v[:1] in first or "," in v or '"' in v or "\n" in v or "\r" in v
    ]
    if not suspects:
        return values
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=os.linesep)
    changed: dict[str, str] = {}
    for value in suspects:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise_cell(value), ""])  # a second cell: never the lone ""
        changed[value] = buffer.getvalue()[: -len(os.linesep) - 1]
    return list(map(changed.get, values, values))


def _write_text_csv(frame: pd.DataFrame, texts: list[list[str]], handle: TextIO) -> None:
    """Header by the csv module, then the rows joined in blocks (bounded, reused memory)."""
    import csv

    csv.writer(handle, lineterminator=os.linesep).writerow(list(frame.columns))
    cells = [_csv_cells(values) for values in texts]
    block = 5_000  # small blocks reuse freed memory: a third of the page faults of 100,000
    for start in range(0, len(frame), block):
        rows = zip(*(column[start : start + block] for column in cells), strict=True)
        handle.write(os.linesep.join(map(",".join, rows)))
        handle.write(os.linesep)


def _xlsx_value(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return _NOT_IN_XLSX.sub(lambda m: f"\\x{ord(m[0]):02x}", value)
    return value.item() if hasattr(value, "item") else value


def _write_xlsx(frame: pd.DataFrame, target: Path, sheet_name: str) -> None:
    """Text cells typed as text: openpyxl would store ``=...`` as a formula Excel then runs."""
    from openpyxl import Workbook  # only Excel exports need it

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new workbook always has one sheet
    sheet.title = sheet_name
    sheet.append([str(column) for column in frame.columns])
    for record in frame.itertuples(index=False, name=None):
        sheet.append([_xlsx_value(value) for value in record])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    sheet.freeze_panes = "A2"
    workbook.save(target)


def export(findings: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write findings as .csv, .xlsx, .html or .json (a list of five-key objects)."""
    target = Path(path)
    table = findings[list(FINDINGS_COLUMNS)]
    suffix = target.suffix.lower()
    if suffix == ".csv":
        write_csv(table, target)
    elif suffix == ".xlsx":
        _write_xlsx(table, target, "findings")
    elif suffix in (".html", ".htm"):
        target.write_text(to_html(table), encoding="utf-8")
    elif suffix == ".json":
        target.write_text(
            table.to_json(orient="records", force_ascii=False, indent=1) or "[]",
            encoding="utf-8",
        )
    else:
        raise ValueError(
            f"cannot export findings as {suffix or 'a file without extension'!r}; "
            "use .csv, .xlsx, .html or .json"
        )
    return target
