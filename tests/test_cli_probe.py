"""``mailkit probe``: exit codes, the text and --json output, and flag errors naming the flag.

Against the demo server's two ports and misbehaving ports on loopback, through the real entry
point (``main``) and once as a process.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailkit.cli import EXIT_CONNECT, EXIT_OK, EXIT_TLS, EXIT_USAGE, main
from mailkit.demo import DemoServer, DemoSettings
from mailkit.demo.misbehaving import MisbehavingPorts

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path_factory.mktemp("cli-probe") / "demo", oauth=False) as server:
        yield server.settings


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def ports_of(demo: DemoSettings) -> str:
    return f"{demo.tls_port},{demo.starttls_port}"


def test_probe_recommends_the_implicit_tls_port(demo: DemoSettings) -> None:
    code, out, err = run(
        "probe",
        HOST,
        "--ports",
        ports_of(demo),
        "--tls-ports",
        str(demo.tls_port),
        "--ca-file",
        str(demo.ca_file),
    )
    assert (code, err) == (EXIT_OK, "")
    assert f"port {demo.tls_port}: ok, implicit_tls" in out
    assert f"port {demo.starttls_port}: ok, starttls" in out
    assert f"Verdict: port {demo.tls_port}, implicit TLS" in out
    assert "AUTH (CRAM-MD5 LOGIN PLAIN XOAUTH2) is offered only after TLS" in out


def test_probe_json(demo: DemoSettings) -> None:
    code, out, _ = run(
        "--json",
        "probe",
        HOST,
        "--ports",
        ports_of(demo),
        "--tls-ports",
        str(demo.tls_port),
        "--ca-file",
        str(demo.ca_file),
    )
    data = json.loads(out)
    assert code == EXIT_OK
    assert data["verdict"]["port"] == demo.tls_port
    assert data["verdict"]["security"] == "implicit_tls"
    assert data["verdict"]["trusted"] is True
    assert [p["port"] for p in data["ports"]] == [demo.tls_port, demo.starttls_port]
    starttls = data["ports"][1]
    assert "STARTTLS" in starttls["ehlo_before"]
    assert starttls["auth_before"] == []
    assert "PLAIN" in starttls["auth_after"]
    assert starttls["tls"]["version"].startswith("TLSv1.")
    assert set(starttls["steps_ms"]) == {
        "dns",
        "connect",
        "greeting",
        "ehlo",
        "starttls",
        "tls",
        "ehlo_tls",
    }


def test_an_untrusted_certificate_exits_4_and_names_the_flag(demo: DemoSettings) -> None:
    code, out, _ = run("probe", HOST, "--ports", str(demo.starttls_port))
    assert code == EXIT_TLS
    assert "unable to get local issuer certificate" in out
    assert "trust that CA with the --ca-file" in out
    assert "ca_file" not in out  # the CLI's words, not Python's


def test_nothing_answering_exits_2() -> None:
    with MisbehavingPorts() as bad:
        port = bad.resetting()
        code, out, _ = run("probe", HOST, "--ports", str(port), "--timeout", "5")
    assert code == EXIT_CONNECT
    assert "Verdict: no usable port" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--ports", "465,x"], "--ports: item 2 ('x') is not a port number"),
        (["--ports", "465,,587"], "--ports: item 2 is empty"),
        (["--ports", "99999"], "--ports: item 1 (99999) is out of range; use 1-65535"),
        (["--tls-ports", "smtps"], "--tls-ports: item 1 ('smtps') is not a port number"),
        (["--timeout", "0"], "--timeout: must be a number of seconds above 0, not 0.0"),
        (["--silent-after", "nan"], "--silent-after: must be a number of seconds above 0"),
        (["--timeout", "soon"], "argument --timeout: invalid float value: 'soon'"),
        (["--ca-file", "/nonexistent/ca.pem"], "--ca-file: /nonexistent/ca.pem does not exist"),
        (["--ports", ",".join(map(str, range(1, 50)))], "--ports: 49 ports is a scan"),
    ],
)
def test_bad_flags_name_the_flag(argv: list[str], words: str) -> None:
    code, out, err = run("probe", HOST, *argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert words in err
    assert "Traceback" not in err


def test_a_host_with_a_port_in_it() -> None:
    code, _, err = run("probe", "mail.example.com:587")
    assert code == EXIT_USAGE
    assert "HOST: 'mail.example.com:587' has a port in it" in err


def test_a_bad_host_names_it() -> None:
    code, _, err = run("--json", "probe", "mail example.com")
    assert code == EXIT_USAGE
    problems = json.loads(err)["problems"]
    assert problems[0]["field"] == "HOST"


def test_the_installed_command(demo: DemoSettings, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailkit.cli",
            "--json",
            "probe",
            HOST,
            "--ports",
            str(demo.starttls_port),
            "--ca-file",
            str(demo.ca_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert json.loads(done.stdout)["verdict"]["security"] == "starttls"
