"""Run notebooks headlessly with nbclient, and check what a saved notebook holds.

* :func:`run_notebook` executes a notebook top to bottom on a kernel that is always this
  interpreter (``sys.executable``), whatever ``python3`` kernelspec the machine has; an error
  names the cell that failed.
* :func:`saved_outputs_text` is everything an executed notebook would save besides its
  sources - outputs and widget state - as one string to search for a canary secret.
* :func:`assert_committed_clean` checks that a notebook is committed without outputs, execution
  counts or widget state; ``python scripts/strip_notebooks.py PATH...`` makes it so.
* :func:`pair_problems` says where a notebook and its jupytext percent-format ``.py`` source
  disagree (cells, their sources and metadata, the kernel, the pairing), each ``.py`` re-read
  with jupytext as JupyterLab would; :func:`assert_pair_agrees` fails with that and what to do.
* :func:`all_repo_notebooks` lists the kit's notebooks (``notebooks/*.ipynb``);
  :func:`read_notebook` and :func:`write_notebook` are nbformat's, typed.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO / "notebooks"

#: How every kit notebook is paired (its ``metadata.jupytext.formats``): NN-name.py beside it.
PAIR_FORMATS = "ipynb,py:percent"
TEXT_FORMAT = "py:percent"

#: The kernel name notebooks ask for; :func:`write_kernelspec` makes it this interpreter.
KERNEL_NAME = "python3"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class NotebookError(RuntimeError):
    """A notebook cell raised, timed out or lost its kernel.

    ``notebook`` is the notebook as far as it ran, so a test can still save or search it.
    """

    def __init__(
        self, message: str, *, path: Path, cell_index: int | None, notebook: nbformat.NotebookNode
    ) -> None:
        super().__init__(message)
        self.path = path
        self.cell_index = cell_index
        self.notebook = notebook


def read_notebook(path: Path | str) -> nbformat.NotebookNode:
    """Read a notebook file as nbformat 4."""
    nb: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return nb


def write_notebook(nb: nbformat.NotebookNode, path: Path | str) -> None:
    """Write ``nb`` the way nbformat does (and JupyterLab, near enough)."""
    nbformat.write(nb, path)  # type: ignore[no-untyped-call]


def write_kernelspec(data_dir: Path) -> Path:
    """Write a ``python3`` kernelspec running ``sys.executable`` under ``data_dir/kernels``.

    A ``python3`` kernelspec in the user's Jupyter directories may point at another Python;
    put ``data_dir`` first on ``JUPYTER_PATH`` (or give its ``kernels`` directory to a
    ``KernelSpecManager``) and this one wins. Returns the ``kernels`` directory.
    """
    kernels = data_dir / "kernels"
    kernels.mkdir(parents=True, exist_ok=True)
    write_kernel_spec(kernels / KERNEL_NAME)  # ipykernel's own spec, argv[0] = sys.executable
    return kernels


def run_notebook(
    path: Path | str,
    *,
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    timeout: int = 120,
) -> nbformat.NotebookNode:
    """Execute the notebook at ``path`` and return it with its outputs and widget state.

    The kernel starts in ``cwd`` with the current environment plus ``env``; ``timeout`` bounds
    each cell and the kernel's start, in seconds. The file itself is not modified. Raises
    :class:`NotebookError` naming the cell when a cell fails.
    """
    path = Path(path)
    nb = read_notebook(path)
    current: list[int] = []  # index of the cell running now, set by the client's hook

    def on_cell_start(cell: nbformat.NotebookNode, cell_index: int) -> None:
        current[:] = [cell_index]

    with tempfile.TemporaryDirectory(prefix="mailkit-kernelspec-") as data_dir:
        specs = KernelSpecManager(
            kernel_dirs=[str(write_kernelspec(Path(data_dir)))], ensure_native_kernel=False
        )
        client = NotebookClient(
            nb,
            km=AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs),
            kernel_name=KERNEL_NAME,
            timeout=timeout,
            startup_timeout=timeout,
            store_widget_state=True,
            resources={"metadata": {"path": str(cwd)}},
            on_cell_start=on_cell_start,
        )
        try:
            # The client leaves a kernel it did not create running unless told to clean up.
            client.execute(cleanup_kc=True, env={**os.environ, **(env or {})})
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            index = current[0] if current else None
            message = _failure_message(path, nb, index, error, timeout)
            raise NotebookError(message, path=path, cell_index=index, notebook=nb) from error
    return nb


def _failure_message(
    path: Path,
    nb: nbformat.NotebookNode,
    index: int | None,
    error: Exception,
    timeout: int,
) -> str:
    if index is None:
        return f"{path.name}: {type(error).__name__} before any cell ran: {error}"
    cell = nb.cells[index]
    source = "\n".join(f"    | {line}" for line in cell.source.splitlines()) or "    | (empty)"
    where = f"{path.name}: cell {index + 1} of {len(nb.cells)} (id {cell.get('id', '?')!r})"
    if isinstance(error, CellTimeoutError):
        what = f"did not finish within {timeout} s"
    elif isinstance(error, DeadKernelError):
        what = "lost its kernel (the kernel died)"
    else:
        what = "raised"
    detail = _ANSI.sub("", str(error)) if not isinstance(error, CellExecutionError) else ""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            traceback = "\n".join(_ANSI.sub("", line) for line in output.get("traceback", []))
            detail = traceback or f"{output.get('ename')}: {output.get('evalue')}"
    return f"{where} {what}:\n{source}\n\n{detail}".rstrip()


def saved_outputs_text(nb: nbformat.NotebookNode) -> str:
    """Every string a saved ``nb`` holds besides cell sources: outputs and widget state.

    Strings are taken from the parsed JSON (no escaping in the way) with terminal colour codes
    removed, one per line, so a search for a secret finds it wherever it was rendered.
    """
    strings: list[str] = []
    for cell in nb.cells:
        strings.extend(_strings(cell.get("outputs", [])))
        strings.extend(_strings(cell.get("attachments", {})))
    strings.extend(_strings(nb.metadata.get("widgets", {})))
    return "\n".join(_ANSI.sub("", text) for text in strings)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def committed_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What in ``nb`` should not be committed: outputs, execution counts, run metadata."""
    problems: list[str] = []
    if "widgets" in nb.metadata:
        problems.append("notebook metadata holds widget state ('widgets')")
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {number} has {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {number} has execution count {cell.execution_count}")
        if "execution" in cell.get("metadata", {}):
            problems.append(f"cell {number} has execution timings in its metadata")
    return problems


def assert_committed_clean(path: Path | str) -> None:
    """Fail unless the notebook at ``path`` is valid and has no outputs or widget state."""
    path = Path(path)
    nb = read_notebook(path)
    nbformat.validate(nb)
    problems = committed_problems(nb)
    assert not problems, (
        f"{path} is not committed clean:\n  - "
        + "\n  - ".join(problems)
        + f"\nStrip it with: python scripts/strip_notebooks.py {path}"
    )


def paired_source(notebook: Path | str) -> Path:
    """Where the percent-format text of ``notebook`` lives: the same name with ``.py``."""
    return Path(notebook).with_suffix(".py")


def pair_problems(notebook: Path | str) -> list[str]:
    """How ``notebook`` and its paired ``.py`` disagree; empty when they are one notebook.

    Both sides are compared as jupytext sees them: the ``.py`` as read, the ``.ipynb`` rendered
    to percent format and read back. So what a sync carries is compared - cell kinds, sources,
    metadata such as tags - and what lives only in the ``.ipynb`` (cell ids, outputs, UI state
    such as a collapsed cell) is not: no sync could make those agree.
    """
    notebook = Path(notebook)
    source = paired_source(notebook)
    nb = read_notebook(notebook)
    problems: list[str] = []
    formats = nb.metadata.get("jupytext", {}).get("formats")
    if formats != PAIR_FORMATS:
        problems.append(f"metadata.jupytext.formats is {formats!r}, not {PAIR_FORMATS!r}")
    if not source.is_file():
        return [*problems, f"its text source {source.name} is missing"]
    text: nbformat.NotebookNode = jupytext.read(source, fmt=TEXT_FORMAT)
    rendered: nbformat.NotebookNode = jupytext.reads(jupytext.writes(nb, TEXT_FORMAT), TEXT_FORMAT)
    for key in ("kernelspec", "jupytext"):
        mine, theirs = nb.metadata.get(key, {}), text.metadata.get(key, {})
        if key == "jupytext":  # the text side also records how it is written
            theirs = {k: v for k, v in theirs.items() if k != "text_representation"}
        if mine != theirs:
            problems.append(f"metadata.{key} differs: {mine!r} here, {theirs!r} in {source.name}")
    if len(nb.cells) != len(text.cells):
        problems.append(f"{len(nb.cells)} cells here, {len(text.cells)} in {source.name}")
    cells = zip(nb.cells, rendered.cells, text.cells, strict=False)
    for number, (original, cell, other) in enumerate(cells, 1):
        where = f"cell {number} (id {original.get('id', '?')!r})"
        if cell.cell_type != other.cell_type:
            problems.append(f"{where} is {cell.cell_type} here, {other.cell_type} in {source.name}")
        if cell.source != other.source:
            diff = difflib.unified_diff(
                cell.source.splitlines(),
                other.source.splitlines(),
                notebook.name,
                source.name,
                lineterm="",
                n=1,
            )
            shown = "\n".join(f"      {line}" for line in list(diff)[:12])
            problems.append(f"{where} has another source in {source.name}:\n{shown}")
        if dict(cell.metadata) != dict(other.metadata):
            problems.append(
                f"{where} metadata differs: {dict(cell.metadata)!r} here, "
                f"{dict(other.metadata)!r} in {source.name}"
            )
    return problems


def assert_pair_agrees(notebook: Path | str) -> None:
    """Fail unless ``notebook`` and its ``.py`` source hold the same cells, saying how to fix it."""
    notebook = Path(notebook)
    problems = pair_problems(notebook)
    shown = notebook.relative_to(REPO) if notebook.is_relative_to(REPO) else notebook
    assert not problems, (
        f"{shown} and {paired_source(notebook).name} disagree:\n  - "
        + "\n  - ".join(problems)
        + "\nEdit one side, then bring the other up to date with "
        + f"`jupytext --sync {shown}` (the side changed last wins)."
    )


def all_repo_notebooks() -> list[Path]:
    """The kit's notebooks, ``notebooks/*.ipynb``, sorted by name."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
