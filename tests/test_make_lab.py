"""The README's first command: ``make lab`` opens JupyterLab with the demo mail server running,
and stopping JupyterLab stops the demo server.

Each ``make lab`` run has a demo folder of its own (CA, demo.json, mailbox) under TMPDIR, named
to JupyterLab (and so to its notebooks) by ``MAILKIT_DEMO_DIR``: two labs at once never share
a mailbox, and the folder goes when the lab stops. The install step's stamps are tested on a
copy of the Makefile with a recording installer: ``make lab`` installs the runtime only, a later
``make test`` adds the dev extras, and neither repeats an install that is up to date.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailkit.demo import DIRECTORY_ENV, ensure_running, read_mailbox
from mailkit.testsend import send_test

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


@dataclass
class Lab:
    """One ``make lab`` in the background, with a home and TMPDIR of its own."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    tmp: Path
    log: Path

    def answers(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/api/status?token={self.token}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def demo_folders(self) -> list[Path]:
        return sorted(self.tmp.glob("mailkit-demo.*"))

    def demo_json(self) -> Path | None:
        found = [folder / "demo.json" for folder in self.demo_folders()]
        return next((path for path in found if path.exists()), None)

    def jupyterlab_environment(self) -> dict[str, str]:
        """The environment of this run's JupyterLab server (which its kernels inherit)."""
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if os.getpgid(int(proc.name)) != self.process.pid:
                    continue
                command = (proc / "cmdline").read_bytes().split(b"\0")
                if not any(part.endswith((b"jupyter-lab", b"jupyter")) for part in command[:2]):
                    continue
                raw = (proc / "environ").read_bytes()
            except (OSError, ProcessLookupError):
                continue
            pairs = (item.partition(b"=") for item in raw.split(b"\0") if b"=" in item)
            return {k.decode(): v.decode() for k, _, v in pairs}
        raise AssertionError(f"no JupyterLab process in make lab's group\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the lab as Ctrl-C would, and wait until every process of its group is gone.

        make can exit before the recipe's shell has finished its clean-up (stopping the demo
        server, removing its folder); a person's terminal shows that clean-up finish, so the
        test waits for it too rather than for make alone.
        """
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        assert wait_for(self._group_gone, 60), "make lab's processes outlived it by 60 s"

    def _group_gone(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        return False


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator[Callable[[str], Lab]]:
    labs: list[Lab] = []

    def start(name: str) -> Lab:
        base = tmp_path / name
        tmp = base / "tmp"
        tmp.mkdir(parents=True)
        env = {
            **os.environ,
            "HOME": str(base / "home"),
            "XDG_DATA_HOME": str(base / "data"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "TMPDIR": str(tmp),
        }
        env.pop(DIRECTORY_ENV, None)
        port, token = free_port(), f"mailkit-make-lab-{name}"
        args = f"--no-browser --port={port} --IdentityProvider.token={token}"
        log = base / "make-lab.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        lab = Lab(process, port, token, tmp, log)
        labs.append(lab)
        return lab

    try:
        yield start
    finally:
        for lab in labs:
            lab.stop()


def test_make_lab_starts_jupyterlab_and_the_demo_server(start_lab: Callable[[str], Lab]) -> None:
    lab = start_lab("one")
    assert wait_for(lab.answers, 180), lab.log.read_text()
    assert wait_for(lab.demo_json, 30), lab.log.read_text()
    demo_json = lab.demo_json()
    assert demo_json is not None
    demo = json.loads(demo_json.read_text())
    with socket.create_connection(("127.0.0.1", demo["starttls_port"]), timeout=5) as sock:
        assert sock.recv(100).startswith(b"220 ")
    landing = f"http://127.0.0.1:{lab.port}/?token={lab.token}"
    with urllib.request.urlopen(landing, timeout=5) as response:
        assert "01-onboarding.ipynb" in response.url  # the kit opens on the onboarding
    # Nothing of the test toolchain is needed to get here, and none is installed for it.
    assert "install-system-packages" not in lab.log.read_text()
    lab.stop()
    assert lab.demo_folders() == [], "stopping lab left the demo folder behind"


def test_two_labs_at_once_never_share_a_demo_mailbox(
    start_lab: Callable[[str], Lab], monkeypatch: pytest.MonkeyPatch
) -> None:
    labs = [start_lab("a"), start_lab("b")]
    for lab in labs:
        assert wait_for(lab.answers, 180), lab.log.read_text()
        assert wait_for(lab.demo_json, 30), lab.log.read_text()
    folders = [lab.demo_folders() for lab in labs]
    assert [len(found) for found in folders] == [1, 1]
    (first, second) = (found[0] for found in folders)
    assert first != second

    handles = []
    for lab, folder in zip(labs, (first, second), strict=True):
        # JupyterLab (and every kernel it starts) is told its own run's folder ...
        assert lab.jupyterlab_environment()[DIRECTORY_ENV] == str(folder)
        # ... where a notebook's ensure_running() finds that run's server, starting none.
        monkeypatch.setenv(DIRECTORY_ENV, str(folder))
        handle = ensure_running()
        assert not handle.started_here
        assert handle.settings.directory == folder
        handles.append(handle)

    settings = handles[0].settings
    result = send_test(settings.org(), to=["bob@example.org"], password=settings.password_secret())
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert len(read_mailbox(first)) == 1
    assert len(read_mailbox(second)) == 0  # the other lab's mailbox saw nothing

    labs[0].stop()
    assert labs[0].demo_folders() == []
    assert labs[1].answers()  # the other run goes on
    assert (second / "demo.json").exists()


# --------------------------------------------------------------------------- the install stamps


@pytest.fixture
def makefile_copy(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml in a folder of their own, with a venv whose python
    exists and an installer that records what it was asked to install."""
    work = tmp_path / "repo"
    (work / ".venv" / "bin").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, work / name)
    python = work / ".venv" / "bin" / "python"
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    recorder = work / "record-install"
    recorder.write_text('#!/bin/sh\necho "$2" >>installs.log\n')
    recorder.chmod(0o755)
    return work


def make(work: Path, *targets: str) -> list[str]:
    """Run make there; return the installs it asked for (in order)."""
    log = work / "installs.log"
    log.unlink(missing_ok=True)
    subprocess.run(
        ["make", "--no-print-directory", "INSTALL_PYTHON=./record-install", *targets],
        cwd=work,
        check=True,
        capture_output=True,
    )
    return log.read_text().split() if log.exists() else []


def test_lab_installs_the_runtime_and_test_adds_the_dev_extras_once(makefile_copy: Path) -> None:
    runtime, dev = ".venv/.mailkit-runtime", ".venv/.mailkit-installed"
    assert make(makefile_copy, runtime) == ["."]  # make lab: what the kit needs to run
    assert make(makefile_copy, runtime) == []  # up to date: nothing again
    assert make(makefile_copy, dev) == [".[dev]"]  # make test later: the dev extras too
    assert make(makefile_copy, runtime, dev) == []  # and now neither repeats
    time.sleep(1.1)  # a newer pyproject.toml (file times may have one-second steps)
    (makefile_copy / "pyproject.toml").touch()
    assert make(makefile_copy, runtime) == ["."]
    assert make(makefile_copy, dev) == [".[dev]"]


def test_a_dev_install_first_leaves_nothing_for_lab(makefile_copy: Path) -> None:
    assert make(makefile_copy, ".venv/.mailkit-installed") == [".[dev]"]
    assert make(makefile_copy, ".venv/.mailkit-runtime") == []


# --------------------------------------------------------------------------- the installer


FAKE_PYTHON = """#!/bin/sh
# Stands in for the venv's python: records "-m pip ..." calls, answers "pip config list".
if [ "$1 $2 $3" = "-m pip config" ]; then
    printf '%s\\n' "$PIP_CONFIG_LIST"
    exit 0
fi
echo "python $*" >>"$CALLS"
if [ "$3" = "install" ] && [ "$6" = "uv" ] && [ -n "$PIP_CAN_INSTALL_UV" ]; then
    cp "$UV_TEMPLATE" "$(dirname "$0")/uv"
    chmod +x "$(dirname "$0")/uv"
fi
[ "$3" = "install" ] && [ "$6" = "uv" ] && [ -z "$PIP_CAN_INSTALL_UV" ] && exit 1
exit 0
"""

FAKE_UV = """#!/bin/sh
echo "uv $* | index=${UV_DEFAULT_INDEX:-} extra=${UV_INDEX:-} links=${UV_FIND_LINKS:-}" \
    "strategy=${UV_INDEX_STRATEGY:-}" >>"$CALLS"
exit "${UV_EXIT:-0}"
"""


@dataclass
class Installer:
    venv: Path
    calls: Path
    env: dict[str, str]

    def run(self, spec: str, **env: str) -> tuple[list[str], str]:
        self.calls.unlink(missing_ok=True)
        done = subprocess.run(
            [str(ROOT / ".ci" / "install-python-packages"), str(self.venv), spec],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        calls = self.calls.read_text().splitlines() if self.calls.exists() else []
        return calls, done.stdout + done.stderr


@pytest.fixture
def installer(tmp_path: Path) -> Installer:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    template = tmp_path / "uv-template"
    template.write_text(FAKE_UV)
    template.chmod(0o755)
    calls = tmp_path / "calls.log"
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "uv").exists()]
    env = {
        "PATH": os.pathsep.join(path),  # no uv of the machine's: the venv's or none
        "CALLS": str(calls),
        "UV_TEMPLATE": str(template),
        "PIP_CONFIG_LIST": "",
    }
    return Installer(venv, calls, env)


def test_uv_is_put_into_the_venv_and_installs(installer: Installer) -> None:
    calls, said = installer.run(".", PIP_CAN_INSTALL_UV="1")
    python = installer.venv / "bin" / "python"
    assert calls[0] == "python -m pip install --disable-pip-version-check --quiet uv"
    assert calls[1].startswith(f"uv pip install --quiet --python {python} --editable . |")
    assert len(calls) == 2  # pip did not install the kit too
    assert "installing . with uv" in said
    calls, _ = installer.run(".[dev]")  # the venv's uv from now on, nothing installed first
    assert [call.split(" |")[0] for call in calls] == [
        f"uv pip install --quiet --python {python} --editable .[dev]"
    ]


def test_pip_does_the_work_when_uv_cannot(installer: Installer) -> None:
    calls, said = installer.run(".")  # uv cannot be installed
    assert calls[-1] == "python -m pip install --disable-pip-version-check --quiet --editable ."
    assert "uv is not available" in said
    calls, said = installer.run(".", PIP_CAN_INSTALL_UV="1", UV_EXIT="2")  # uv fails
    assert calls[-2].startswith("uv pip install")
    assert calls[-1] == "python -m pip install --disable-pip-version-check --quiet --editable ."
    assert "uv could not install ." in said
    calls, _ = installer.run(".", INSTALLER="pip")  # asked for pip: uv is not even tried
    assert calls == ["python -m pip install --disable-pip-version-check --quiet --editable ."]


def test_uv_asks_the_package_indexes_pip_is_configured_with(installer: Installer) -> None:
    pip_config = "\n".join(
        [
            "global.index-url='https://mirror.example/simple'",
            ":env:.extra-index-url='https://a.example/simple https://b.example/simple'",
            "global.find-links='/srv/wheels /srv/more'",
        ]
    )
    calls, _ = installer.run(".", PIP_CAN_INSTALL_UV="1", PIP_CONFIG_LIST=pip_config)
    assert calls[-1].endswith(
        "| index=https://mirror.example/simple "
        "extra=https://a.example/simple https://b.example/simple "
        "links=/srv/wheels,/srv/more strategy=unsafe-best-match"
    )
    calls, _ = installer.run(
        ".", PIP_CONFIG_LIST=pip_config, UV_DEFAULT_INDEX="https://own.example/simple"
    )
    assert "index=https://own.example/simple " in calls[-1]  # uv's own setting wins
