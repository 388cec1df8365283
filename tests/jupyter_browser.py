"""A real JupyterLab driven by Debian's Chromium through Playwright, for browser tests.

* :func:`jupyter_lab` starts JupyterLab on a directory with an isolated home, a token, a free
  loopback port, the kernel pinned to this interpreter and the news pop-up turned off; it
  stops the server and its kernels afterwards.
* :func:`chromium_page` opens a headless Chromium page (``/usr/bin/chromium``, never a
  browser downloaded by ``playwright install``); a failing ``with`` body leaves a screenshot
  in ``artifacts/browser/``.
* :func:`open_notebook`, :func:`run_all`, :func:`wait_kernel_idle`, :func:`cell`,
  :func:`fill_text`, :func:`click_button`, :func:`wait_for_widget_text`, :func:`widget_texts`,
  :func:`save_notebook` and :func:`news_popup_visible` speak JupyterLab 4 and ipywidgets 8.

Without Chromium or the playwright package a browser test is skipped - or fails when
``CI=true`` (:func:`require_browser`). Typical use::

    with jupyter_lab(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "echo.ipynb")
        run_all(page)
        fill_text(page, "Name", "Ada")
        click_button(page, "Echo")
        wait_for_widget_text(page, "echo: Ada")
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from notebook_runner import REPO, write_kernelspec

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
#: The project's flags for Chromium: no sandbox (root in containers), no GPU, and nothing that
#: talks to Google's servers.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
ARTIFACTS_DIR = REPO / "artifacts" / "browser"

#: The question a fresh JupyterLab asks in a pop-up until someone answers it.
NEWS_PROMPT = "Would you like to get notified about official Jupyter news?"
_NEWS_PLUGIN = "@jupyterlab/apputils-extension:notification"
#: Settings overrides a test lab starts with, from an app settings directory of its own (the
#: environment's, where `make lab` writes its overrides.json, is not read): the news question
#: answered "No", no update check; no autosave, so a test never writes into a notebook; and
#: every cell rendered, since by default Chromium skips rendering cells scrolled out of view
#: (CSS content-visibility), leaving their widgets without text or size until scrolled to.
_LAB_OVERRIDES: dict[str, dict[str, object]] = {
    _NEWS_PLUGIN: {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

#: "idle" once every open notebook's kernel is connected and idle and no cell is queued or
#: running ("[*]"); "dialog" when a dialog (such as Select Kernel) is in the way. The toolbar's
#: execution indicator alone is not enough: it says "idle" before the kernel even exists.
_KERNELS_IDLE_JS = """() => {
    if (document.querySelector(".jp-Dialog")) return "dialog";
    const app = window.jupyterapp;
    if (!app) return document.querySelector(".jp-LabShell") ? "no-app" : false;
    const panels = [...app.shell.widgets("main")].filter(
        (widget) => widget.hasClass("jp-NotebookPanel"));
    const connected = panels.length > 0 && panels.every((panel) => {
        const kernel = panel.sessionContext.session?.kernel;
        return kernel?.connectionStatus === "connected" && kernel.status === "idle";
    });
    const indicatorsIdle = [...document.querySelectorAll(
        ".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator")]
        .every((indicator) => indicator.dataset.status === "idle");
    const queued = [...document.querySelectorAll(".jp-Notebook .jp-InputPrompt")]
        .some((prompt) => prompt.textContent.includes("*"));
    return connected && indicatorsIdle && !queued ? "idle" : false;
}"""
_PROMPTS_JS = """() => [...document.querySelectorAll(".jp-Notebook .jp-InputPrompt")]
    .map((prompt) => prompt.textContent)"""
#: Truthy once a run has started: some prompt shows "[*]" or differs from ``before``.
_RUN_STARTED_JS = """(before) => {
    if (document.querySelector(".jp-Dialog")) return "dialog";
    const now = [...document.querySelectorAll(".jp-Notebook .jp-InputPrompt")]
        .map((prompt) => prompt.textContent);
    return now.some((text) => text.includes("*")) || JSON.stringify(now) !== JSON.stringify(before);
}"""
#: Truthy once the current notebook has no unsaved changes; "dialog" if one is in the way.
_SAVED_JS = """() => {
    if (document.querySelector(".jp-Dialog")) return "dialog";
    const panel = window.jupyterapp?.shell.currentWidget;
    if (!panel?.hasClass("jp-NotebookPanel")) return false;
    return !panel.context.model.dirty && !panel.title.className.includes("jp-mod-dirty");
}"""
_OUTERMOST_TEXTS_JS = """(views) => views
    .filter((view) => !view.parentElement.closest(".jupyter-widgets"))
    .map((view) => view.innerText)"""


def require_browser() -> None:
    """Skip the calling test unless Chromium and playwright are here; fail instead in CI."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Debian's chromium at {CHROMIUM}")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package playwright")
    if not missing:
        return
    message = (
        f"browser tests need {' and '.join(missing)}: `make test` installs them "
        "(chromium with apt-get when run as root on Debian; .ci/install-system-packages)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so this is an error", pytrace=False)
    pytest.skip(message)


# --------------------------------------------------------------------------------------------
# JupyterLab


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it listens, its token, and its isolated home."""

    base_url: str
    token: str
    root_dir: Path
    home: Path
    log_path: Path

    def url(self, notebook: str = "") -> str:
        """The address that opens ``notebook`` (relative to the root) in JupyterLab."""
        return f"{self.base_url}/lab/tree/{quote(notebook)}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines JupyterLab wrote, for error messages."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"


@contextlib.contextmanager
def jupyter_lab(
    root_dir: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    news_off: bool = True,
    settings: Mapping[str, Mapping[str, object]] | None = None,
    startup_timeout: float = 60,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> Iterator[LabServer]:
    """Run JupyterLab on ``root_dir`` for the ``with`` body, then stop it and its kernels.

    The server gets a temporary home (Jupyter config, data, runtime, lab settings and settings
    overrides all inside it, none read from the developer's home or the environment's
    ``share/jupyter/lab/settings``), the current environment minus Jupyter and XDG variables,
    plus ``env``. Autosave is off; still, serve a copy of the notebooks, since their code runs
    in the notebook's directory. ``news_off=False`` leaves the news pop-up on, as a fresh
    install has it. ``settings`` adds settings overrides, plugin id to values (e.g.
    ``{"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}``, so a save
    writes the widget state too). If the server does not start or the body fails, its log is
    kept in ``artifacts_dir``.
    """
    root = Path(root_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="mailkit-lab-") as tmp:
        home = Path(tmp)
        overrides = {k: v for k, v in _LAB_OVERRIDES.items() if news_off or k != _NEWS_PLUGIN}
        for plugin, values in (settings or {}).items():
            overrides[plugin] = {**overrides.get(plugin, {}), **values}
        (home / "lab-app-settings").mkdir()
        (home / "lab-app-settings" / "overrides.json").write_text(json.dumps(overrides))
        write_kernelspec(home / "jupyter-path")
        lab_env = {**_isolated_env(home), **(env or {})}
        process = None
        try:
            process, lab = _start_lab(root, home, lab_env, startup_timeout)
            yield lab
        except BaseException:
            _keep(home / "jupyter-lab.log", artifacts_dir / f"{_test_name()}-jupyter-lab.log")
            raise
        finally:
            if process is not None:
                _stop(process)


def _isolated_env(home: Path) -> dict[str, str]:
    """This process's environment with every Jupyter location moved under ``home``."""
    dropped = ("JUPYTER", "JPY_", "XDG_", "IPYTHONDIR")
    env = {key: value for key, value in os.environ.items() if not key.startswith(dropped)}
    env.update(
        HOME=str(home),
        JUPYTER_PLATFORM_DIRS="1",
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        JUPYTER_PATH=str(home / "jupyter-path"),  # the pinned python3 kernelspec comes first
        IPYTHONDIR=str(home / "ipython"),
    )
    return env


def _start_lab(
    root: Path, home: Path, env: dict[str, str], startup_timeout: float
) -> tuple[subprocess.Popen[bytes], LabServer]:
    """Start JupyterLab and wait until its API answers; retry if the port was taken meanwhile."""
    token = secrets.token_hex(16)
    log_path = home / "jupyter-lab.log"
    for _attempt in range(3):
        port = _free_port()
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: kernel state for waits
            f"--LabApp.app_settings_dir={home / 'lab-app-settings'}",
            f"--LabApp.user_settings_dir={home / 'lab-user-settings'}",
            f"--LabApp.workspaces_dir={home / 'lab-workspaces'}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so _stop reaches all of it
            )
        lab = LabServer(f"http://127.0.0.1:{port}", token, root, home, log_path)
        try:
            if _wait_ready(process, lab, startup_timeout):
                return process, lab
        except BaseException:
            _stop(process)
            raise
        _stop(process)  # exited early; retried only when the port was taken
        if "already in use" not in lab.log_tail():
            break
    raise RuntimeError(f"JupyterLab exited before it answered:\n{lab.log_tail()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(process: subprocess.Popen[bytes], lab: LabServer, timeout: float) -> bool:
    """True once ``/api/status`` answers; False if the process exited first."""
    # No proxy: a developer's http_proxy must not see (or break) loopback requests.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    status_url = f"{lab.base_url}/api/status?token={lab.token}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        # OSError covers URLError and refused connections while it starts.
        with contextlib.suppress(OSError), opener.open(status_url, timeout=2) as response:
            if response.status == 200:
                return True
        time.sleep(0.2)
    raise TimeoutError(
        f"JupyterLab did not answer {lab.base_url}/api/status within {timeout:g} s:\n"
        f"{lab.log_tail()}"
    )


def _stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """Stop JupyterLab: SIGTERM (it shuts its kernels down), then SIGKILL what is left.

    Kernels run in sessions of their own, outside the server's process group, so they are
    found as the server's children before it stops and killed if they outlive it.
    """
    kernels = _children(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid, started in kernels:
        if _start_time(pid) == started:  # still the same process, not a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _children(pid: int) -> list[tuple[int, str]]:
    """``(pid, start time)`` of the direct children of ``pid`` (Linux ``/proc``; else none)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:  # fields[0] is the state, [1] the parent pid
                found.append((int(stat.parent.name), fields[19]))
    return found


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


# --------------------------------------------------------------------------------------------
# Chromium


@contextlib.contextmanager
def chromium_page(
    artifacts_dir: Path = ARTIFACTS_DIR,
    *,
    name: str | None = None,
    timeout: float = 30,
    ignore_https_errors: bool = False,
) -> Iterator[Page]:
    """A page in a fresh headless Chromium profile; a screenshot is saved if the body fails.

    ``timeout`` (seconds) is Playwright's default for every wait and action on the page.
    ``ignore_https_errors`` lets the profile open HTTPS pages whose certificate it cannot
    verify, such as a local test server's with a CA of its own (only that profile's pages).
    The failure screenshot is ``artifacts_dir/NAME-failure.png``, NAME defaulting to the
    running test's name.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="mailkit-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=list(CHROMIUM_FLAGS),
            headless=True,
            viewport={"width": 1366, "height": 900},
            ignore_https_errors=ignore_https_errors,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(timeout * 1000)
            try:
                yield page
            except BaseException:
                with contextlib.suppress(Exception):
                    save_screenshot(page, f"{name or _test_name()}-failure", artifacts_dir)
                raise
        finally:
            context.close()


def save_screenshot(page: Page, name: str, artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    """Save the whole page as ``artifacts_dir/NAME.png`` and return the path."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    path = artifacts_dir / f"{_safe(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _keep(log: Path, copy: Path) -> None:
    """Copy a log into the artifacts, for a failed test."""
    with contextlib.suppress(OSError):
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.with_name(_safe(copy.name)).write_bytes(log.read_bytes())


def _test_name() -> str:
    """The running test's name (from pytest's PYTEST_CURRENT_TEST), or "browser"."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    return current.split("::")[-1].split(" ")[0] or "browser"


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "browser"


# --------------------------------------------------------------------------------------------
# JupyterLab 4 and ipywidgets 8 in the page


def open_notebook(page: Page, lab: LabServer, name: str, *, timeout: float = 60) -> None:
    """Open ``name`` (relative to the lab's root) and wait for its cells and a settled kernel.

    A new kernel is idle for a moment, then busy again answering JupyterLab's and the widget
    manager's start-up requests; the kernel counts as settled once it stays idle for
    :data:`SETTLED` seconds, so what the test does next never races those requests.
    """
    page.goto(lab.url(name))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while True:
        wait_kernel_idle(page, timeout=max(1.0, deadline - time.monotonic()))
        idle_since = time.monotonic()
        while page.evaluate(_KERNELS_IDLE_JS) == "idle":
            if time.monotonic() - idle_since >= SETTLED:
                return
            page.wait_for_timeout(50)
        if time.monotonic() >= deadline:
            raise AssertionError(f"the kernel of {name} did not settle in {timeout:g} s")


def run_all(page: Page, *, timeout: float = 120) -> None:
    """Run every cell from the Run menu and wait until the run has finished."""
    before = page.evaluate(_PROMPTS_JS)
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    started = page.wait_for_function(_RUN_STARTED_JS, arg=before, timeout=timeout * 1000)
    _check(page, started.json_value())
    wait_kernel_idle(page, timeout=timeout)


#: Seconds a newly opened notebook's kernel must stay idle to count as settled.
SETTLED = 1.0


def wait_kernel_idle(page: Page, *, timeout: float = 60) -> None:
    """Wait until every open notebook's kernel is connected and idle, no cell queued or running.

    Fails at once, with the dialog's text, if a JupyterLab dialog opens instead.
    """
    state = page.wait_for_function(_KERNELS_IDLE_JS, timeout=timeout * 1000)
    _check(page, state.json_value())


def _check(page: Page, state: object) -> None:
    """Fail with a reason instead of timing out when a wait can never succeed."""
    if state == "dialog":
        text = " ".join(page.locator(".jp-Dialog").first.inner_text().split())
        raise AssertionError(f"a JupyterLab dialog is in the way: {text!r}")
    if state == "no-app":
        raise AssertionError(
            "JupyterLab does not expose window.jupyterapp: start it with jupyter_lab() "
            "(--LabApp.expose_app_in_browser=True)"
        )


def cell(page: Page, index: int) -> Locator:
    """The current notebook's cell at ``index``, counted from 0 as in the ``.ipynb`` file."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def _scope(page: Page, index: int | None) -> Page | Locator:
    return page if index is None else cell(page, index)


def fill_text(
    page: Page, label_or_placeholder: str, value: str, *, in_cell: int | None = None
) -> None:
    """Type ``value`` into the text widget with that description or placeholder.

    ``in_cell`` narrows the search to one cell's outputs when several widgets share a label.
    Password widgets count too (ipywidgets 8 renders them as ``.widget-text`` with an
    ``input[type=password]``; there is no ``.widget-password``). The field is left
    afterwards, so a widget with ``continuous_update=False`` syncs too.
    """
    widgets = _scope(page, in_cell).locator(".widget-text, .widget-textarea")
    field = widgets.get_by_label(label_or_placeholder, exact=True).or_(
        widgets.get_by_placeholder(label_or_placeholder, exact=True)
    )
    field.fill(value)
    field.blur()


def click_button(page: Page, text: str, *, in_cell: int | None = None) -> None:
    """Click the button widget whose text is exactly ``text`` (in cell ``in_cell``, if given)."""
    exact = re.compile(rf"^\s*{re.escape(text)}\s*$")
    _scope(page, in_cell).locator("button.widget-button").filter(has_text=exact).click()


def wait_for_widget_text(
    page: Page,
    text: str,
    *,
    selector: str = ".widget-output",
    in_cell: int | None = None,
    timeout: float = 30,
) -> str:
    """Wait until an element matching ``selector`` shows ``text``; return that element's text."""
    found = _scope(page, in_cell).locator(selector).filter(has_text=text).first
    found.wait_for(state="visible", timeout=timeout * 1000)
    return found.inner_text()


def widget_texts(page: Page, *, in_cell: int | None = None) -> list[str]:
    """The visible text of each outermost widget (input values not included), in page order."""
    views = _scope(page, in_cell).locator(".jupyter-widgets")
    texts: list[str] = views.evaluate_all(_OUTERMOST_TEXTS_JS)
    return texts


def save_notebook(page: Page, *, timeout: float = 30) -> None:
    """Save the current notebook with Ctrl+S, as a person does, and wait until it is saved.

    Saved means the notebook has no unsaved changes any more (JupyterLab clears its dirty
    mark once the server has written the file); a notebook without changes returns at once,
    so check the file when it matters. The notebook's tab is clicked first, to take the focus
    out of any widget.
    """
    page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current").first.click()
    page.keyboard.press("Control+s")
    _check(page, page.wait_for_function(_SAVED_JS, timeout=timeout * 1000).json_value())


def news_popup_visible(page: Page) -> bool:
    """Whether JupyterLab's "notified about official Jupyter news?" pop-up is on screen."""
    prompts = page.get_by_text(NEWS_PROMPT)
    return any(prompts.nth(index).is_visible() for index in range(prompts.count()))
