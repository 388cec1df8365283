"""What a ``mailkit test`` run does not load: the start-up it does not pay for.

A structural check, not a timing one. A fresh interpreter runs the real command (``main``)
against the loopback server: a verified STARTTLS send that succeeds loads neither
cryptography's certificate parser (``ssl`` decoded the certificate), nor the diagnosis rules
(nothing failed), nor email-validator (plain addresses), nor ``time.strptime``'s locale
machinery. A refused connection loads the diagnosis, and still none of the rest. Neither
builds a settings model: flags alone are checked without pydantic (``mailkit.fields``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from smtpd_servers import MailServer

pytestmark = pytest.mark.timeout(120)

#: Modules a successful verified test send has no use for.
NOT_ON_A_SEND = (
    "cryptography.x509",
    "mailkit.diagnose",
    "email_validator",
    "_strptime",
    "mailkit.delivery",
    "pydantic",
    "mailkit.settings",
)


def run_test_command(argv: list[str], password: str) -> tuple[int, list[str], str]:
    """``mailkit test ARGV`` in a fresh interpreter: exit code, watched modules it loaded,
    and what it printed."""
    script = (
        "import io, json, sys\n"
        "from mailkit.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        f"code = main({argv!r}, out=out, err=err)\n"
        f"loaded = sorted(m for m in {NOT_ON_A_SEND!r} if m in sys.modules)\n"
        "print(json.dumps([code, loaded, out.getvalue()]))\n"
    )
    env = {**os.environ, "MAILKIT_STARTUP_PW": password}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    code, loaded, out = json.loads(done.stdout.splitlines()[-1])
    return code, loaded, out


def flags(server: MailServer, port: int) -> list[str]:
    return [
        "test",
        "--to", "bob@example.org",
        "--from", "alice@example.com",
        "--host", server.host,
        "--port", str(port),
        "--security", "starttls",
        "--auth", "plain",
        "--username", server.user,
        "--ca-file", str(server.ca_file),
        "--password-env", "MAILKIT_STARTUP_PW",
        "--secrets", "none",
        "--timeout", "10",
    ]  # fmt: skip


def test_a_verified_send_loads_no_parser_no_rules_no_validator(smtp_server: MailServer) -> None:
    code, loaded, out = run_test_command(
        flags(smtp_server, smtp_server.starttls_port), smtp_server.password
    )
    assert code == 0, out
    assert "TLS established" in out
    assert "certificate subject" in out
    assert loaded == []


def test_a_refused_connection_loads_the_diagnosis_only(smtp_server: MailServer) -> None:
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        code, loaded, out = run_test_command(flags(smtp_server, port), smtp_server.password)
    assert code == 2, out
    assert "connection_refused" in out
    assert loaded == ["mailkit.diagnose"]
