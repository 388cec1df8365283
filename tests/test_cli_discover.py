"""``mailkit discover``: exit codes, the --json shape, and flag errors that name the flag.

Against the same kind of peers as tests/test_discover.py: a local authoritative DNS server and
a local HTTPS autoconfig server, plus the demo server for ``--probe``.
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
from autoconfig_server import AutoconfigServer, Route, autoconfig_xml

from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.cli.discover import EXIT_NOTHING_FOUND
from mailkit.demo.dns import DnsServer
from mailkit.discovery.run import HTTPS_PORT_ENV, ISPDB_ENV
from mailkit.dnslookup import DNS_SERVER_ENV

ZONE = """
$TTL 60
@ IN SOA ns1.test. hostmaster.test. 1 3600 600 86400 60
@ IN NS ns1.test.
ns1 IN A 127.0.0.1
_submissions._tcp.srv IN SRV 0 1 465 mail.srv.test.
_submission._tcp.srv IN SRV 0 1 587 mail.srv.test.
autoconfig.ac IN A 127.0.0.1
"""


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer({"test.": ZONE}) as server:
        yield server


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AutoconfigServer]:
    server = AutoconfigServer(["autoconfig.ac.test"], tmp_path_factory.mktemp("cli-autoconfig"))
    xml = autoconfig_xml(
        {"hostname": "smtp.ac.test", "port": 465, "socketType": "SSL",
         "authentication": "password-cleartext", "username": "%EMAILADDRESS%"},
        domain="ac.test",
    )  # fmt: skip
    server.route("autoconfig.ac.test", "/mail/config-v1.1.xml", Route(xml))
    with server:
        yield server


@pytest.fixture(autouse=True)
def no_real_ispdb(web: AutoconfigServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing leaves loopback: the ISPDB is the local server (which knows no domain here)."""
    monkeypatch.setenv(ISPDB_ENV, f"{web.base}/v1.1/")
    monkeypatch.delenv(DNS_SERVER_ENV, raising=False)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_lists_ranked_candidates_and_every_lookup(dns: DnsServer) -> None:
    code, out, err = run("discover", "jane@srv.test", "--dns-server", dns.address, "--json")
    assert (code, err) == (EXIT_OK, "")
    data = json.loads(out)
    assert data["email"] == "jane@srv.test"
    first = data["candidates"][0]
    assert (first["host"], first["port"], first["security"]) == (
        "mail.srv.test",
        465,
        "implicit_tls",
    )
    assert first["sources"] == ["srv"]
    assert first["confidence"] == 85
    sources = {lookup["source"] for lookup in data["lookups"]}
    assert {"preset", "autoconfig", "well-known", "ispdb", "srv", "mx", "autodiscover"} <= sources


def test_text_names_the_sources_and_where_it_looked(dns: DnsServer) -> None:
    code, out, _ = run("discover", "jane@srv.test", "--dns-server", dns.address)
    assert code == EXIT_OK
    assert "mail.srv.test:465" in out
    assert "from srv" in out
    assert "Where mailkit looked" in out


def test_nothing_found_is_its_own_exit_code(dns: DnsServer) -> None:
    code, out, _ = run("discover", "jane@nowhere.test", "--dns-server", dns.address, "--json")
    assert code == EXIT_NOTHING_FOUND
    assert json.loads(out)["candidates"] == []


def test_the_environment_names_the_dns_server(
    dns: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DNS_SERVER_ENV, dns.address)
    code, out, _ = run("discover", "jane@srv.test", "--json")
    assert code == EXIT_OK
    assert json.loads(out)["candidates"][0]["host"] == "mail.srv.test"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["jane"], "EMAIL"),
        (["jane@", "--timeout", "1"], "EMAIL"),
        (["jane@x.test", "--dns-server", "dns.example"], "--dns-server"),
        (["jane@x.test", "--dns-server", "127.0.0.1:99999"], "--dns-server"),
        (["jane@x.test", "--timeout", "0"], "--timeout"),
        (["jane@x.test", "--timeout", "soon"], "--timeout"),
        (["jane@x.test", "--probe", "--probe-timeout", "-1"], "--probe-timeout"),
        (["jane@x.test", "--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(argv: list[str], flag: str) -> None:
    code, out, err = run("discover", *argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert flag in err
    assert "Traceback" not in err
    code, _out, err = run("discover", *argv, "--json")
    assert code == EXIT_USAGE
    assert flag in json.loads(err)["message"]


def test_the_console_script_finds_autoconfig_over_https(
    dns: DnsServer, web: AutoconfigServer
) -> None:
    """The real entry point, in its own process: the autoconfig host resolved by the DNS
    server, its port from the environment seam, its CA from --ca-file."""
    env = {
        **os.environ,
        ISPDB_ENV: f"{web.base}/v1.1/",
        HTTPS_PORT_ENV: str(web.port),
    }
    env.pop(DNS_SERVER_ENV, None)
    mailkit = Path(sys.executable).parent / "mailkit"
    done = subprocess.run(
        [str(mailkit), "discover", "jane@ac.test", "--dns-server", dns.address,
         "--ca-file", str(web.ca_file), "--json", "--timeout", "3"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == EXIT_OK, done.stderr
    best = json.loads(done.stdout)["candidates"][0]
    assert (best["host"], best["port"], best["sources"]) == ("smtp.ac.test", 465, ["autoconfig"])
    assert best["username"] == "jane@ac.test"


def test_probe_proposes_the_demo_servers_implicit_tls_port(tmp_path: Path) -> None:
    from mailkit.demo import DemoServer

    with DemoServer(tmp_path, oauth=False) as demo:
        settings = demo.settings
        assert settings.dns_server is not None
        code, out, err = run(
            "discover", "demo@example.com", "--dns-server", settings.dns_server,
            "--probe", "--ca-file", str(settings.ca_file), "--json",
        )  # fmt: skip
    assert code == EXIT_OK, err
    data = json.loads(out)
    proposal = data["proposal"]
    assert proposal["settings"]["port"] == settings.tls_port
    assert proposal["settings"]["security"] == "implicit_tls"
    assert proposal["provenance"]["port"].startswith("probe: ")
    assert set(data["probes"]) == {"localhost"}
