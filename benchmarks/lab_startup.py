"""How long a newcomer waits: fresh clone, ``make lab``, until JupyterLab answers.

Clones the repository (a commit of your choice, default HEAD) into a temporary folder, runs
``make lab LAB_ARGS="--no-browser ..."`` there in the background and polls JupyterLab's
``/api/status`` until it answers 200; the demo server's ``demo.json`` is timed too. Then it stops
the whole ``make lab`` process group and removes the clone.

``--cache cold`` gives pip and uv empty cache folders (a first install on a new machine);
``--cache warm`` lets them use the caches they normally use (a second clone on the same machine).
The home folder and data folders are always fresh, so JupyterLab and the demo start as for a new
user. Run by ``make bench-lab`` (not part of ``make bench``: it downloads and installs a whole
environment, a few minutes cold). It reports; it does not assert a speed. Needs git and make;
uses the Python that runs it only to create the clone's venv (``PYTHON=``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http
            return bool(response.status == 200)
    except OSError:
        return False


def installed(log: Path) -> bool:
    """The install step is over once make moves on to JupyterLab's settings file."""
    try:
        return "overrides.json" in log.read_text("utf-8", "replace")
    except OSError:
        return False


def demo_up(home: Path, tmp: Path) -> bool:
    """A demo.json in the per-user demo folder or in a per-run folder under TMPDIR."""
    per_user = home / "data" / "mailkit" / "demo" / "demo.json"
    return per_user.exists() or any(tmp.glob("*/demo.json"))


def run(repo: str, ref: str, cache: str, timeout: float, keep: bool) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="mailkit-bench-lab-"))
    clone, home, tmp = work / "clone", work / "home", work / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "TMPDIR": str(tmp),
        "PYTHON": sys.executable,
    }
    for name in ("MAILKIT_DEMO_DIR", "MAILKIT_PROFILE", "VIRTUAL_ENV"):
        env.pop(name, None)
    if cache == "cold":
        env["PIP_CACHE_DIR"] = str(work / "pip-cache")
        env["UV_CACHE_DIR"] = str(work / "uv-cache")
    else:  # the user's own caches, wherever HOME would have put them
        real_home = Path.home()
        env.setdefault("PIP_CACHE_DIR", str(real_home / ".cache" / "pip"))
        env.setdefault("UV_CACHE_DIR", str(real_home / ".cache" / "uv"))

    subprocess.run(["git", "clone", "--quiet", repo, str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", ref], check=True)
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    port, token = free_port(), secrets.token_hex(8)
    lab_args = f"--no-browser --port={port} --IdentityProvider.token={token}"
    log_path = work / "make-lab.log"
    status = f"http://127.0.0.1:{port}/api/status?token={token}"
    result: dict[str, object] = {"commit": commit, "cache": cache}
    start = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"LAB_ARGS={lab_args}"],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while time.monotonic() - start < timeout:
                elapsed = round(time.monotonic() - start, 1)
                if "installed_s" not in result and installed(log_path):
                    result["installed_s"] = elapsed
                if "demo_s" not in result and demo_up(home, tmp):
                    result["demo_s"] = elapsed
                if answers(status):
                    result["lab_s"] = elapsed
                    break
                if process.poll() is not None:
                    result["error"] = f"make lab exited with {process.returncode}"
                    break
                time.sleep(0.5)
            else:
                result["error"] = f"JupyterLab did not answer within {timeout:.0f} s"
            if "lab_s" in result and "demo_s" not in result:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not demo_up(home, tmp):
                    time.sleep(0.2)
                if demo_up(home, tmp):
                    result["demo_s"] = round(time.monotonic() - start, 1)
        finally:
            with_group = process.poll() is None
            if with_group:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    if "error" in result:
        result["log_tail"] = log_path.read_text("utf-8", "replace")[-3000:]
    if keep:
        result["work"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(ROOT), help="what to clone (default: this one)")
    parser.add_argument("--ref", default="HEAD", help="the commit to measure (default: HEAD)")
    parser.add_argument("--cache", choices=("cold", "warm"), default="warm")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the clone and its log")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args(argv)
    failed = False
    for number in range(1, args.runs + 1):
        result = run(args.repo, args.ref, args.cache, args.timeout, args.keep)
        failed = failed or "error" in result
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        if "error" in result:
            label = f"run {number}: {result['commit']} ({args.cache} cache)"
            print(f"{label} FAILED: {result['error']}")
            print(result.get("log_tail", ""))
            continue
        lab_s = float(str(result["lab_s"]))
        verdict = "within" if lab_s <= GOAL_SECONDS else "over"
        print(
            f"run {number}: {result['commit']} ({args.cache} cache): JupyterLab answered after "
            f"{lab_s:.1f} s (install done after {result.get('installed_s', '?')} s), demo server "
            f"after {result.get('demo_s', '?')} s "
            f"({verdict} the {GOAL_SECONDS:.0f} s goal)",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
