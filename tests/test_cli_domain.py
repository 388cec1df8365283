"""``mailkit domain`` and ``mailkit audit --check-domains``: exit codes, --json, flag errors.

Against the local authoritative DNS server of :mod:`domain_zones`.
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
from domain_zones import SILENT, zones

from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.demo.dns import DnsServer
from mailkit.dnslookup import DNS_SERVER_ENV
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store

FIVE_KEYS = {"domain", "rule", "severity", "message", "fix"}


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(zones(), silent=SILENT) as server:
        yield server


@pytest.fixture(autouse=True)
def no_dns_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DNS_SERVER_ENV, raising=False)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- mailkit domain


def test_a_healthy_domain_prints_its_checks_and_exits_0(dns: DnsServer) -> None:
    code, out, err = run(
        "domain", "healthy.test", "--host", "smtp.healthy.test",
        "--dkim-selector", "mail", "--dns-server", dns.address,
    )  # fmt: skip
    assert (code, err) == (EXIT_OK, "")
    assert out.startswith("healthy.test: healthy (sending server smtp.healthy.test)")
    for check in ("MX", "SPF", "DMARC", "DKIM mail"):
        assert f"  {check}" in out
    assert "authorised" in out


def test_json_shape(dns: DnsServer) -> None:
    code, out, _ = run(
        "domain", "m365bare.test", "--provider", "microsoft365",
        "--dns-server", dns.address, "--json",
    )  # fmt: skip
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["domain"] == "m365bare.test"
    assert data["ok"] is False
    assert {"mx", "spf", "dmarc", "dkim", "findings", "provider", "host"} <= set(data)
    assert all(set(f) == FIVE_KEYS for f in data["findings"])
    rules = {f["rule"] for f in data["findings"]}
    assert {"spf-server-not-authorized", "dkim-key-missing"} <= rules
    assert data["spf"]["authorized"] is False


def test_fail_on_sets_the_exit_code(dns: DnsServer) -> None:
    base = ("domain", "dmarcnorua.test", "--dns-server", dns.address)
    # dmarc-no-rua is info: neither threshold is reached.
    assert run(*base, "--fail-on", "warning")[0] == EXIT_OK
    assert run("domain", "nodmarc.test", "--dns-server", dns.address)[0] == EXIT_OK
    assert (
        run("domain", "nodmarc.test", "--dns-server", dns.address, "--fail-on", "warning")[0] == 1
    )
    assert (
        run("domain", "nodmarc.test", "--dns-server", dns.address, "--fail-on", "critical")[0]
        == EXIT_OK
    )
    assert (
        run("domain", "passall.test", "--dns-server", dns.address, "--fail-on", "critical")[0] == 1
    )


def test_findings_are_printed_with_their_fix(dns: DnsServer) -> None:
    _, out, _ = run("domain", "nospf.test", "--host", "192.0.2.25", "--dns-server", dns.address)
    assert "WARNING spf-missing:" in out
    assert "  Fix: publish a TXT record at nospf.test: v=spf1 ip4:192.0.2.25 -all" in out


def test_a_silent_dns_server_is_a_finding_not_an_error(dns: DnsServer) -> None:
    code, out, err = run(
        "domain", "slow.test", "--dns-server", dns.address, "--timeout", "1", "--json"
    )
    assert (code, err) == (EXIT_OK, "")
    assert {f["rule"] for f in json.loads(out)["findings"]} == {"dns-lookup-failed"}


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["domain", "not a domain"], "DOMAIN"),
        (["domain", "example.test", "--host", "smtp server"], "--host"),
        (["domain", "example.test", "--provider", "hotmale"], "--provider"),
        (["domain", "example.test", "--dkim-selector", "a b"], "--dkim-selector"),
        (["domain", "example.test", "--dns-server", "dns.example"], "--dns-server"),
        (["domain", "example.test", "--timeout", "0"], "--timeout"),
    ],
)
def test_bad_flags_name_the_flag(argv: list[str], flag: str) -> None:
    code, out, err = run(*argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert f"  - {flag}: " in err
    code, _, err = run(*argv, "--json")
    problems = json.loads(err)["problems"]
    assert [p["field"] for p in problems] == [flag]


def test_the_real_entry_point(dns: DnsServer) -> None:
    env = {k: v for k, v in os.environ.items() if k != DNS_SERVER_ENV}
    env[DNS_SERVER_ENV] = dns.address  # the environment names the server this time
    mailkit = Path(sys.executable).parent / "mailkit"
    done = subprocess.run(
        [str(mailkit), "domain", "dmarcnone.test", "--json", "--fail-on", "warning"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "dmarc-policy-none" in {f["rule"] for f in json.loads(done.stdout)["findings"]}


# --------------------------------------------------------------------------- audit


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    db = tmp_path / "org.sqlite"
    with Store.open(db, create=True) as store:
        store.set_org(OrgSettings(host="smtp.healthy.test", from_address="it@healthy.test"))
        store.put_users(
            [
                UserSettings(user_code="ann", email="ann@healthy.test"),
                UserSettings(user_code="bob", override_enabled=True, from_address="bob@nospf.test"),
            ]
        )
    return db


def test_audit_check_domains_adds_the_users_domain_findings(dns: DnsServer, profile: Path) -> None:
    base = ("audit", "--profile", str(profile), "--secrets", "none", "--format", "json")
    _, plain, _ = run(*base)
    assert not any(f["rule"] == "spf-missing" for f in json.loads(plain))
    code, out, err = run(*base, "--check-domains", "--dns-server", dns.address)
    assert code == EXIT_OK, err
    found = json.loads(out)
    assert [(f["user_code"], f["rule"]) for f in found if f["rule"] == "spf-missing"] == [
        ("bob", "spf-missing")
    ]
    assert all(set(f) == {"user_code", "rule", "severity", "message", "fix"} for f in found)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--dns-server", "127.0.0.1:53"], "--dns-server goes with --check-domains"),
        (["--dns-timeout", "2"], "--dns-timeout goes with --check-domains"),
        (["--check-domains", "--dns-server", "resolver.example"], "--dns-server: "),
        (["--check-domains", "--dns-timeout", "-1"], "--dns-timeout: "),
    ],
)
def test_audit_dns_flags_are_checked_first(profile: Path, extra: list[str], words: str) -> None:
    code, out, err = run("audit", "--profile", str(profile), "--secrets", "none", *extra)
    assert code == EXIT_USAGE
    assert out == ""
    assert words in err


def test_help_loads_no_lookup_library() -> None:
    """``mailkit domain --help`` stays quick: no DNS, crypto, DKIM or pandas import."""
    script = (
        "import contextlib, io, sys\n"
        "from mailkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as shown:\n"
        "    try:\n"
        "        main(['domain', '--help'])\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "heavy = ('dns', 'dkim', 'cryptography', 'pandas', 'publicsuffixlist')\n"
        "assert '--dkim-selector' in shown.getvalue()\n"
        "print(code, sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "0 []", done.stderr
