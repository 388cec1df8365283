"""The notebook harness itself, on the tiny samples in ``tests/data/notebooks/``.

Headless: ``notebook_runner`` executes a notebook on this interpreter's kernel, names a failing
cell, finds a canary wherever a run saved it, tells a clean notebook from an executed one, and
finds every way a notebook and its jupytext ``.py`` source can disagree.
In a browser: ``jupyter_browser`` starts a real JupyterLab, and Chromium types into a widget,
clicks a button and sees the echo, with JupyterLab's news pop-up turned off (and, as a
control, shown when it is not).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jupyter_browser
import nbformat
import pytest
from jupyter_browser import (
    NEWS_PROMPT,
    chromium_page,
    click_button,
    fill_text,
    jupyter_lab,
    news_popup_visible,
    open_notebook,
    require_browser,
    run_all,
    save_screenshot,
    wait_for_widget_text,
    widget_texts,
)
from notebook_runner import (
    PAIR_FORMATS,
    REPO,
    NotebookError,
    assert_committed_clean,
    assert_pair_agrees,
    pair_problems,
    paired_source,
    read_notebook,
    run_notebook,
    saved_outputs_text,
    write_notebook,
)

SAMPLES = Path(__file__).resolve().parent / "data" / "notebooks"
ECHO = SAMPLES / "echo.ipynb"
CANARY = "canary-Hx7!notebook#Qe4"
KERNEL_STATE_JS = """() => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
    return `${kernel?.connectionStatus} ${kernel?.status}`;
}"""


def with_cells(notebook: Path, directory: Path, *sources: str) -> Path:
    """A copy of ``notebook`` in ``directory`` with code cells appended."""
    nb = read_notebook(notebook)
    new_cell = nbformat.v4.new_code_cell
    nb.cells.extend(new_cell(source) for source in sources)  # type: ignore[no-untyped-call]
    copy = directory / notebook.name
    write_notebook(nb, copy)
    return copy


def stream_text(cell: nbformat.NotebookNode) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --------------------------------------------------------------------------------------------
# Headless runs


@pytest.mark.timeout(90)
def test_runs_a_notebook_on_this_interpreter_with_cwd_and_env(tmp_path: Path) -> None:
    notebook = with_cells(
        ECHO,
        tmp_path,
        'name.value = "Ada"\necho.click()\nprint(out.outputs)',
        "import os\nprint(sys.prefix, os.getcwd(), os.environ['MAILKIT_HARNESS'], sep='\\n')",
    )
    before = notebook.read_text(encoding="utf-8")

    nb = run_notebook(notebook, cwd=tmp_path, env={"MAILKIT_HARNESS": "from the test"})

    widget_cell, click_cell, facts_cell = nb.cells[1], nb.cells[2], nb.cells[3]
    views = [out for out in widget_cell.outputs if out.output_type == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in views[0].data
    assert "widgets ready in kernel" in stream_text(widget_cell)
    assert "echo: Ada" in stream_text(click_cell)
    assert stream_text(facts_cell).splitlines() == [sys.prefix, str(tmp_path), "from the test"]
    assert nb.metadata.widgets  # widget state kept, as a saved notebook would have it
    assert notebook.read_text(encoding="utf-8") == before  # the file is left alone


@pytest.mark.timeout(60)
def test_a_failing_cell_is_named(tmp_path: Path) -> None:
    with pytest.raises(NotebookError) as failure:
        run_notebook(SAMPLES / "raises.ipynb", cwd=tmp_path)

    message = str(failure.value)
    assert message.startswith("raises.ipynb: cell 3 of 4 (id 'raises-02') raised:")
    assert 'raise ValueError("the sample notebook fails here")' in message
    assert "ValueError: the sample notebook fails here" in message
    assert "\x1b[" not in message  # no terminal colour codes
    assert failure.value.cell_index == 2
    ran = failure.value.notebook
    assert stream_text(ran.cells[1]) == "before the error\n"
    assert ran.cells[3].outputs == []


@pytest.mark.timeout(60)
def test_a_cell_that_hangs_is_named(tmp_path: Path) -> None:
    notebook = with_cells(ECHO, tmp_path, "import time\ntime.sleep(60)")
    started = time.monotonic()

    with pytest.raises(NotebookError, match=r"cell 3 of 3 .* did not finish within 3 s"):
        run_notebook(notebook, cwd=tmp_path, timeout=3)
    assert time.monotonic() - started < 30


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("source", "found"),
    [
        pytest.param(f'print("{CANARY}")', True, id="printed"),
        pytest.param(
            f'from IPython.display import HTML\nHTML("<b>{CANARY}</b>")', True, id="html-result"
        ),
        pytest.param(f'name.value = "{CANARY}"', True, id="widget-state-only"),
        pytest.param(f'raise RuntimeError("{CANARY}")', True, id="traceback"),
        pytest.param(f'secret = "{CANARY}"', False, id="source-only"),
    ],
)
def test_saved_outputs_text_finds_a_canary(tmp_path: Path, source: str, found: bool) -> None:
    notebook = with_cells(ECHO, tmp_path, source)
    try:
        executed = run_notebook(notebook, cwd=tmp_path)
    except NotebookError as error:
        executed = error.notebook
    saved = tmp_path / "saved.ipynb"
    write_notebook(executed, saved)

    text = saved_outputs_text(read_notebook(saved))

    assert "widgets ready in kernel" in text
    assert (CANARY in text) is found


# --------------------------------------------------------------------------------------------
# Committed notebooks


@pytest.mark.parametrize("notebook", sorted(SAMPLES.glob("*.ipynb")), ids=lambda path: path.name)
def test_sample_notebook_is_committed_clean(notebook: Path) -> None:
    assert_committed_clean(notebook)


@pytest.mark.timeout(90)
def test_an_executed_notebook_is_not_clean_until_stripped(tmp_path: Path) -> None:
    executed = tmp_path / "executed.ipynb"
    write_notebook(run_notebook(ECHO, cwd=tmp_path), executed)
    strip = [sys.executable, str(REPO / "scripts" / "strip_notebooks.py")]

    with pytest.raises(AssertionError) as dirty:
        assert_committed_clean(executed)
    for problem in ("cell 2 has 2 output(s)", "execution count 1", "widget state", "timings"):
        assert problem in str(dirty.value)
    assert "scripts/strip_notebooks.py" in str(dirty.value)
    check = subprocess.run([*strip, "--check", str(executed)], capture_output=True, text=True)
    assert check.returncode == 1, check.stdout + check.stderr

    subprocess.run([*strip, str(executed)], check=True, capture_output=True)

    assert_committed_clean(executed)
    assert subprocess.run([*strip, "--check", str(executed)], check=False).returncode == 0
    assert read_notebook(executed).cells == read_notebook(ECHO).cells


# --------------------------------------------------------------------------------------------
# Notebook and text source pairs

JUPYTEXT = [sys.executable, "-m", "jupytext", "--quiet"]


def paired_echo(directory: Path) -> Path:
    """A copy of the echo sample paired with a percent-format ``.py`` by jupytext's own CLI."""
    notebook = directory / ECHO.name
    shutil.copy(ECHO, notebook)
    subprocess.run([*JUPYTEXT, "--set-formats", PAIR_FORMATS, str(notebook)], check=True)
    return notebook


def edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def edit_notebook(path: Path, change: Callable[[nbformat.NotebookNode], object]) -> None:
    nb = read_notebook(path)
    change(nb)
    write_notebook(nb, path)


def test_a_fresh_pair_agrees_and_ui_state_is_not_a_disagreement(tmp_path: Path) -> None:
    notebook = paired_echo(tmp_path)
    assert "# %% [markdown]" in paired_source(notebook).read_text(encoding="utf-8")
    assert pair_problems(notebook) == []

    # A collapsed cell lives only in the .ipynb: no sync could carry it, so it is no problem.
    edit_notebook(notebook, lambda nb: nb.cells[1].metadata.update(collapsed=True))
    assert_pair_agrees(notebook)


@pytest.mark.parametrize(
    ("edit", "found"),
    [
        pytest.param(
            lambda nb, py: edit_text(py, "import os\n", "import os  # edited\n"),
            ["cell 2 (id ", "has another source in echo.py", "-import os", "+import os  # edited"],
            id="code-edited-in-the-py",
        ),
        pytest.param(
            lambda nb, py: edit_notebook(nb, lambda n: n.cells[0].update(source="# Renamed")),
            ["cell 1 (id ", "has another source", "+# Harness sample: echo"],
            id="markdown-edited-in-the-ipynb",
        ),
        pytest.param(
            lambda nb, py: edit_notebook(nb, lambda n: n.cells[1].metadata.update(tags=["slow"])),
            ["cell 2 (id ", "metadata differs", "'tags': ['slow']"],
            id="tag-only-in-the-ipynb",
        ),
        pytest.param(
            lambda nb, py: edit_text(py, "# %%\n", '# %% tags=["slow"]\n'),
            ["metadata differs", "'tags': ['slow']} in echo.py"],
            id="tag-only-in-the-py",
        ),
        pytest.param(
            lambda nb, py: py.write_text(py.read_text() + "\n# %%\nprint(1)\n"),
            ["2 cells here, 3 in echo.py"],
            id="cell-added-to-the-py",
        ),
        pytest.param(
            lambda nb, py: edit_text(py, "# %%\n", "# %% [markdown]\n"),
            ["cell 2 (id ", "is code here, markdown in echo.py"],
            id="cell-kind-changed",
        ),
        pytest.param(
            lambda nb, py: edit_notebook(nb, lambda n: n.metadata.kernelspec.update(name="other")),
            ["metadata.kernelspec differs"],
            id="kernel-changed",
        ),
        pytest.param(
            lambda nb, py: edit_notebook(nb, lambda n: n.metadata.pop("jupytext")),
            [f"metadata.jupytext.formats is None, not {PAIR_FORMATS!r}"],
            id="pairing-dropped",
        ),
        pytest.param(
            lambda nb, py: py.unlink(),
            ["its text source echo.py is missing"],
            id="py-missing",
        ),
    ],
)
def test_the_pair_check_finds_each_disagreement(
    tmp_path: Path, edit: Callable[[Path, Path], None], found: list[str]
) -> None:
    notebook = paired_echo(tmp_path)
    edit(notebook, paired_source(notebook))

    with pytest.raises(AssertionError) as disagree:
        assert_pair_agrees(notebook)

    message = str(disagree.value)
    for words in [*found, "disagree", f"jupytext --sync {notebook}"]:
        assert words in message


def test_jupytext_sync_repairs_a_pair_edited_on_its_text_side(tmp_path: Path) -> None:
    """The fix the check names works, and keeps what only the .ipynb holds (cell ids)."""
    notebook = paired_echo(tmp_path)
    ids = [cell.id for cell in read_notebook(notebook).cells]
    source = paired_source(notebook)
    time.sleep(0.01)
    edit_text(source, "import os\n", "import os  # edited\n")
    assert pair_problems(notebook)

    subprocess.run([*JUPYTEXT, "--sync", str(notebook)], check=True)

    assert_pair_agrees(notebook)
    synced = read_notebook(notebook)
    assert synced.cells[1].source.startswith("import os  # edited\n")
    assert [cell.id for cell in synced.cells] == ids
    assert_committed_clean(notebook)


# --------------------------------------------------------------------------------------------
# JupyterLab in Chromium


def test_without_chromium_a_browser_test_skips_or_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(jupyter_browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"`make test` installs them"):
        require_browser()

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_browser()


@pytest.fixture
def lab_root(tmp_path: Path) -> Path:
    """A directory for JupyterLab to serve: a copy of the samples, never the originals."""
    require_browser()
    root = tmp_path / "lab"
    shutil.copytree(SAMPLES, root)
    return root


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_echo_widget_in_jupyterlab(lab_root: Path) -> None:
    with jupyter_lab(lab_root) as lab, chromium_page() as page:
        open_notebook(page, lab, "echo.ipynb")
        kernel_state = page.evaluate(KERNEL_STATE_JS)
        run_all(page)
        ready = wait_for_widget_text(page, "widgets ready", selector=".jp-OutputArea-output")
        fill_text(page, "Name", "Ada Lovelace")
        click_button(page, "Echo")
        echoed = wait_for_widget_text(page, "echo: Ada Lovelace")
        fill_text(page, "Type a name", "Grace Hopper", in_cell=1)  # by placeholder, in a cell
        click_button(page, "Echo", in_cell=1)
        wait_for_widget_text(page, "echo: Grace Hopper")
        texts = widget_texts(page)
        markdown_texts = widget_texts(page, in_cell=0)
        screenshot = save_screenshot(page, "echo-widget-in-jupyterlab")
        popup = news_popup_visible(page)

    assert kernel_state == "connected idle"  # open_notebook waited for the kernel itself
    assert echoed.strip() == "echo: Ada Lovelace"
    assert texts == ["Name\nEcho\necho: Ada Lovelace\necho: Grace Hopper\n"]
    assert markdown_texts == []
    assert screenshot.stat().st_size > 10_000
    assert not popup, "JupyterLab's news pop-up is showing"
    # The kernel ran this interpreter's environment, and it is gone with the server.
    kernel = re.search(r"widgets ready in kernel (\d+) of (.+)", ready)
    assert kernel is not None, ready
    assert kernel[2].strip() == sys.prefix
    assert not running(int(kernel[1])), "the kernel outlived JupyterLab"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_news_popup_shows_without_the_override(lab_root: Path) -> None:
    """The control for the test above: the pop-up check does see the pop-up."""
    with jupyter_lab(lab_root, news_off=False) as lab, chromium_page() as page:
        open_notebook(page, lab, "echo.ipynb")
        page.get_by_text(NEWS_PROMPT).first.wait_for(state="visible", timeout=20_000)

        assert news_popup_visible(page)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failing_body_leaves_a_screenshot_and_the_server_log(
    lab_root: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"

    def fail_in_the_browser() -> None:
        with (
            jupyter_lab(lab_root, artifacts_dir=artifacts) as lab,
            chromium_page(artifacts, name="on purpose") as page,
        ):
            page.goto(lab.url())
            page.locator(".jp-DirListing-item").first.wait_for()
            raise RuntimeError("failing on purpose")

    with pytest.raises(RuntimeError, match="failing on purpose"):
        fail_in_the_browser()

    assert (artifacts / "on_purpose-failure.png").stat().st_size > 10_000
    log = artifacts / "test_a_failing_body_leaves_a_screenshot_and_the_server_log-jupyter-lab.log"
    assert "Jupyter Server" in log.read_text(encoding="utf-8")
