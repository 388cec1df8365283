"""The README's first command: ``make lab`` opens JupyterLab with the demo mail server running,
and stopping JupyterLab stops the demo server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: object, timeout: float) -> bool:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def test_make_lab_starts_jupyterlab_and_the_demo_server(tmp_path: Path) -> None:
    port, token = free_port(), "mailkit-make-lab-test"
    demo_json = tmp_path / "data" / "mailkit" / "demo" / "demo.json"
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    args = f"--no-browser --port={port} --IdentityProvider.token={token}"
    log = (tmp_path / "make-lab.log").open("wb")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def lab_answers() -> bool:
        url = f"http://127.0.0.1:{port}/api/status?token={token}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        assert wait_for(lab_answers, 120), (tmp_path / "make-lab.log").read_text()
        assert wait_for(demo_json.exists, 30)
        demo = json.loads(demo_json.read_text())
        with socket.create_connection(("127.0.0.1", demo["starttls_port"]), timeout=5) as sock:
            assert sock.recv(100).startswith(b"220 ")
        landing = f"http://127.0.0.1:{port}/?token={token}"
        with urllib.request.urlopen(landing, timeout=5) as response:
            assert "01-onboarding.ipynb" in response.url  # the kit opens on the onboarding
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    assert wait_for(lambda: not demo_json.exists(), 15), "stopping lab left the demo server"
