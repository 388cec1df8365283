"""Strip outputs, execution counts and widget state from notebooks before they are committed.

JupyterLab's "Clear All Outputs" and ``jupyter nbconvert --clear-output`` leave the widget
state (``metadata.widgets``) that an executed notebook keeps, and with it any value typed into
a widget. Run: ``python scripts/strip_notebooks.py [--check] [NOTEBOOK...]`` (default:
``notebooks/*.ipynb``). ``--check`` changes nothing and exits 1 when a notebook would change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def strip(nb: nbformat.NotebookNode) -> bool:
    """Remove what a run leaves in ``nb``; return whether anything was removed."""
    changed = nb.metadata.pop("widgets", None) is not None
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        changed |= bool(cell.outputs) or cell.execution_count is not None
        changed |= cell.metadata.pop("execution", None) is not None
        cell.outputs = []
        cell.execution_count = None
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="report, change nothing")
    args = parser.parse_args(argv)
    paths: list[Path] = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        if not strip(nb):
            continue
        dirty.append(path)
        if args.check:
            print(f"{path}: has outputs, execution counts or widget state")
        else:
            nbformat.write(nb, path)  # type: ignore[no-untyped-call]
            print(f"{path}: stripped")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
