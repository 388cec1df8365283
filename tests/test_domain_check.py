"""mailkit.domain against a real authoritative DNS server on loopback: one zone per rule.

Each test asks about one domain of :mod:`domain_zones` and checks the findings by rule id,
plus what the report says (so a rule that fires for the wrong reason fails too). A healthy
domain is the control: it must have no finding at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from domain_zones import SERVER_V4, SERVER_V6, SILENT, zones

import mailkit
from mailkit.demo.dns import DnsServer
from mailkit.dnslookup import DnsClient
from mailkit.domainhealth.check import DomainQuery, check_domains, domain_async
from mailkit.domainhealth.records import DomainHealth
from mailkit.domainhealth.rules import DOMAIN_RULES
from mailkit.errors import SettingsError


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(zones(), silent=SILENT) as server:
        yield server


def check(dns: DnsServer, name: str, **options: object) -> DomainHealth:
    return mailkit.domain(name, dns_server=dns.address, **options)  # type: ignore[arg-type]


def rules(health: DomainHealth) -> list[str]:
    return [f.rule for f in health.findings]


def test_a_healthy_domain_has_no_finding(dns: DnsServer) -> None:
    health = check(dns, "healthy.test", host="smtp.healthy.test", selectors=["mail", "ed"])
    assert health.findings == ()
    assert health.ok
    assert health.mx.status == "ok"
    assert health.mx.hosts == ((10, "mx.healthy.test"),)
    assert health.spf.authorized is True
    assert dict(health.spf.results) == {SERVER_V4: "pass", SERVER_V6: "pass"}
    assert health.dmarc.policy == "reject"
    assert health.dmarc.found_at == "_dmarc.healthy.test"
    assert health.dmarc.rua == ("mailto:dmarc@healthy.test",)
    keys = {k.selector: k for k in health.dkim}
    assert (keys["mail"].status, keys["mail"].key_type, keys["mail"].bits) == ("ok", "rsa", 2048)
    assert (keys["ed"].status, keys["ed"].key_type) == ("ok", "ed25519")
    assert health.dmarc.spf_aligned is True
    assert health.dmarc.dkim_aligned is True


def test_every_finding_has_the_audit_shape(dns: DnsServer) -> None:
    health = check(dns, "m365bare.test", provider="microsoft365")
    frame = health.findings_frame()
    assert list(frame.columns) == ["domain", "rule", "severity", "message", "fix"]
    assert set(frame["domain"]) == {"m365bare.test"}
    for finding in health.findings:
        assert DOMAIN_RULES[finding.rule][0] == finding.severity
        assert finding.message
        assert finding.fix


# --------------------------------------------------------------------------- MX


def test_no_mx_and_null_mx(dns: DnsServer) -> None:
    assert rules(check(dns, "nomx.test")).count("domain-no-mx") == 1
    null = check(dns, "nullmx.test")
    assert null.mx.status == "null"
    (finding,) = [f for f in null.findings if f.rule == "domain-no-mx"]
    assert "accepts no mail" in finding.message
    assert "RFC 7505" in finding.message


def test_a_domain_that_does_not_exist_is_one_critical_finding(dns: DnsServer) -> None:
    health = check(dns, "nosuch.healthy.test", host="smtp.healthy.test")
    assert rules(health) == ["domain-not-found"]
    assert health.findings[0].severity == "critical"


# --------------------------------------------------------------------------- SPF


def test_spf_missing(dns: DnsServer) -> None:
    health = check(dns, "nospf.test", host="smtp.healthy.test")
    assert "spf-missing" in rules(health)
    (finding,) = [f for f in health.findings if f.rule == "spf-missing"]
    # The fix names the server's own addresses.
    assert f"ip4:{SERVER_V4}" in finding.fix
    assert f"ip6:{SERVER_V6}" in finding.fix


def test_a_server_outside_the_spf_is_not_authorised(dns: DnsServer) -> None:
    health = check(dns, "notauth.test", host="smtp.healthy.test")
    assert health.spf.authorized is False
    assert dict(health.spf.results) == {SERVER_V4: "fail", SERVER_V6: "fail"}
    (finding,) = [f for f in health.findings if f.rule == "spf-server-not-authorized"]
    assert "smtp.healthy.test" in finding.message
    assert f"ip4:{SERVER_V4}" in finding.fix
    # Control: the same record authorises its own address.
    assert check(dns, "notauth.test", host="192.0.2.99").spf.authorized is True


def test_an_address_literal_host_is_checked_as_is(dns: DnsServer) -> None:
    health = check(dns, "healthy.test", host=SERVER_V4)
    assert health.spf.results == ((SERVER_V4, "pass"),)


def test_include_chain_over_the_lookup_limit(dns: DnsServer) -> None:
    health = check(dns, "manylookups.test", host=SERVER_V4)
    assert health.spf.lookups == 12
    assert "spf-too-many-lookups" in rules(health)
    # The first term matches before the limit is reached: that address still passes …
    assert health.spf.results == ((SERVER_V4, "pass"),)
    # … and any other reaches the limit: permerror.
    other = check(dns, "manylookups.test", host="192.0.2.200")
    assert other.spf.results == (("192.0.2.200", "permerror"),)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("badip.test", "'300.1.1.1' is not an IP address"),
        ("badterm.test", "'allow' is not an SPF mechanism"),
        ("twospf.test", "2 SPF records"),
        ("badinclude.test", "nothing.badinclude.test has no SPF record"),
    ],
)
def test_spf_syntax_errors_name_the_fault(dns: DnsServer, name: str, words: str) -> None:
    health = check(dns, name)
    assert health.spf.status == "invalid"
    (finding,) = [f for f in health.findings if f.rule == "spf-syntax"]
    assert words in finding.message


def test_pass_all_and_softfail_all(dns: DnsServer) -> None:
    assert "spf-pass-all" in rules(check(dns, "passall.test"))
    soft = check(dns, "softfail.test")
    assert "spf-softfail-all" in rules(soft)
    assert soft.spf.all_term == "~all"
    assert "spf-softfail-all" not in rules(check(dns, "healthy.test"))


def test_redirect_and_macros_are_followed(dns: DnsServer) -> None:
    redirected = check(dns, "redirect.test", host="smtp.healthy.test")
    assert redirected.spf.authorized is True
    assert redirected.spf.all_term == "-all"  # the redirect target's
    assert "healthy.test" in redirected.spf.includes
    assert check(dns, "macro.test", host=SERVER_V4).spf.authorized is True
    assert check(dns, "macro.test", host="192.0.2.26").spf.authorized is False


def test_more_than_two_void_lookups_is_a_permanent_error(dns: DnsServer) -> None:
    health = check(dns, "void.test", host=SERVER_V4)
    assert health.spf.results == ((SERVER_V4, "permerror"),)
    assert "spf-server-not-authorized" in rules(health)


def test_a_provider_is_checked_by_its_published_include(dns: DnsServer) -> None:
    health = check(dns, "m365.test", host="smtp.office365.com")
    assert health.provider == "microsoft365"
    assert health.spf.authorized is True
    assert "spf.protection.outlook.com" in health.spf.includes
    bare = check(dns, "m365bare.test", provider="microsoft365")
    assert bare.spf.authorized is False
    (finding,) = [f for f in bare.findings if f.rule == "spf-server-not-authorized"]
    assert "include:spf.protection.outlook.com" in finding.fix


# --------------------------------------------------------------------------- DMARC


def test_dmarc_missing(dns: DnsServer) -> None:
    health = check(dns, "nodmarc.test")
    assert health.dmarc.status == "missing"
    assert "dmarc-missing" in rules(health)


@pytest.mark.parametrize(
    ("name", "policy", "fires", "quiet"),
    [
        ("dmarcnone.test", "none", "dmarc-policy-none", "dmarc-pct-partial"),
        ("dmarcquarantine.test", "quarantine", "dmarc-pct-partial", "dmarc-policy-none"),
        ("healthy.test", "reject", None, "dmarc-policy-none"),
    ],
)
def test_dmarc_policies(
    dns: DnsServer, name: str, policy: str, fires: str | None, quiet: str
) -> None:
    health = check(dns, name)
    assert health.dmarc.applied_policy == policy
    assert quiet not in rules(health)
    if fires:
        assert fires in rules(health)


def test_dmarc_syntax_and_no_rua(dns: DnsServer) -> None:
    bad = check(dns, "dmarcbad.test")
    assert bad.dmarc.status == "invalid"
    (finding,) = [f for f in bad.findings if f.rule == "dmarc-syntax"]
    assert "p='block'" in finding.message
    assert "dmarc-no-rua" in rules(check(dns, "dmarcnorua.test"))


def test_a_subdomain_falls_back_to_the_organisational_domain(dns: DnsServer) -> None:
    health = check(dns, "news.healthy.test", host="smtp.healthy.test")
    assert health.dmarc.found_at == "_dmarc.healthy.test"
    assert health.dmarc.org_domain == "healthy.test"
    assert health.dmarc.applied_policy == "quarantine"  # sp=, not p=reject


# --------------------------------------------------------------------------- DKIM


def test_provider_selectors_are_expected(dns: DnsServer) -> None:
    health = check(dns, "m365.test", host="smtp.office365.com")
    keys = {k.selector: k for k in health.dkim}
    assert keys["selector1"].status == "ok"  # through the CNAME to the tenant's domainkey
    assert keys["selector2"].status == "missing"
    (finding,) = [f for f in health.findings if f.rule == "dkim-key-missing"]
    assert "selector2._domainkey.m365.test" in finding.message
    # The CNAME is there; its target publishes nothing: DKIM was never turned on.
    target = "selector2-m365-test._domainkey.m365test.onmicrosoft.com"
    assert keys["selector2"].cname == target
    assert f"is a CNAME to {target}, which publishes no key" in finding.message
    assert "turn DKIM signing on" in finding.fix
    bare = check(dns, "m365bare.test", provider="microsoft365")
    assert all(k.cname is None for k in bare.dkim)  # no CNAME at all: "does not exist"


@pytest.mark.parametrize(
    ("selector", "status", "rule", "words"),
    [
        ("revoked", "revoked", "dkim-key-missing", "revoked"),
        ("absent", "missing", "dkim-key-missing", "does not exist"),
        ("garbled", "invalid", "dkim-key-invalid", "not an RSA public key"),
        ("notb64", "invalid", "dkim-key-invalid", "not base64"),
        ("short", "invalid", "dkim-key-invalid", "shorter than 1024 bits"),
    ],
)
def test_dkim_keys_missing_revoked_or_unparseable(
    dns: DnsServer, selector: str, status: str, rule: str, words: str
) -> None:
    health = check(dns, "dkimbad.test", selectors=[selector])
    assert [k.status for k in health.dkim] == [status]
    (finding,) = [f for f in health.findings if f.rule == rule]
    assert words in finding.message


def test_without_expected_selectors_common_ones_are_tried(dns: DnsServer) -> None:
    found = check(dns, "healthy.test")
    assert [k.selector for k in found.dkim] == ["mail"]
    assert found.dkim[0].expected is False
    assert "dkim-not-found" in rules(check(dns, "nodmarc.test"))


# --------------------------------------------------------------------------- failures


def test_a_timeout_is_could_not_check_never_missing(dns: DnsServer) -> None:
    health = check(dns, "slow.test", timeout=1.0)
    assert set(rules(health)) == {"dns-lookup-failed"}
    assert any("timeout" in f.message for f in health.findings)
    partly = check(dns, "halfslow.test", host="smtp.healthy.test", selectors=["mail"], timeout=1.0)
    assert set(rules(partly)) == {"dns-lookup-failed", "dkim-key-missing"}
    (failed,) = [f for f in partly.findings if f.rule == "dns-lookup-failed"]
    assert "SPF" in failed.message
    assert "spf.slow.test" in failed.message


def test_each_record_is_asked_once(dns: DnsServer) -> None:
    """Concurrent checks of one domain through one client share every lookup."""
    dns.reset_queries()

    async def run() -> None:
        client = DnsClient(dns.address)
        queries = [DomainQuery("healthy.test", "smtp.healthy.test", None, ("mail",))] * 5
        queries += [DomainQuery("healthy.test", SERVER_V4, None, ("mail",))]
        await check_domains(queries, client)
        await domain_async("healthy.test", client=client)

    asyncio.run(run())
    asked = dns.queries()
    assert asked[("healthy.test.", "TXT")] == 1
    assert asked[("_dmarc.healthy.test.", "TXT")] == 1
    assert asked[("mail._domainkey.healthy.test.", "TXT")] == 1
    assert max(asked.values()) == 1


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        ({"domain": "not a domain"}, "domain", "not a domain name"),
        ({"host": "smtp server"}, "host", "neither a host name nor an IP address"),
        ({"provider": "hotmale"}, "provider", "not a known provider"),
        ({"selectors": ["bad selector"]}, "selectors", "not a DKIM selector"),
        ({"dns_server": "dns.example:53"}, "dns_server", "not an IP address"),
        ({"timeout": 0}, "timeout", "not a positive number"),
    ],
)
def test_bad_arguments_name_the_field(options: dict[str, object], field: str, words: str) -> None:
    arguments: dict[str, object] = {"domain": "example.test", **options}
    with pytest.raises(SettingsError) as raised:
        mailkit.domain(**arguments)  # type: ignore[arg-type]
    (problem,) = raised.value.problems
    assert problem.field == field
    assert words in problem.message


def test_an_address_is_taken_for_its_domain(dns: DnsServer) -> None:
    assert check(dns, "anna@Healthy.Test.").domain == "healthy.test"


def test_json_shape(dns: DnsServer) -> None:
    data = check(dns, "dmarcnone.test").to_dict()
    assert set(data) >= {"domain", "mx", "spf", "dmarc", "dkim", "findings", "ok"}
    assert data["findings"][0].keys() == {"domain", "rule", "severity", "message", "fix"}
    assert data["ok"] is False


def test_a_refusing_server_is_could_not_check_not_a_missing_domain(dns: DnsServer) -> None:
    """A name outside the server's zones is REFUSED: no verdict about the domain at all."""
    health = check(dns, "elsewhere.example", host="smtp.healthy.test")
    assert health.mx.status == "unknown"
    assert "domain-not-found" not in rules(health)
    assert "spf-missing" not in rules(health)
    assert "dmarc-missing" not in rules(health)
    assert set(rules(health)) == {"dns-lookup-failed"}
    assert any("refused" in f.message for f in health.findings)


def test_a_server_without_an_address_is_could_not_check(dns: DnsServer) -> None:
    health = check(dns, "healthy.test", host="nowhere.healthy.test", selectors=["mail"])
    assert health.spf.authorized is None
    (finding,) = health.findings
    assert finding.rule == "dns-lookup-failed"
    assert "nowhere.healthy.test has no address in DNS" in finding.message


def test_a_single_label_intranet_host_is_accepted() -> None:
    from mailkit.domainhealth.check import domain_query

    assert domain_query("Example.TEST", host="MailHost").host == "mailhost"


def test_void_lookups_are_found_without_a_server(dns: DnsServer) -> None:
    """Three a: terms naming nothing fail every message, whatever server sends."""
    health = check(dns, "void.test")
    assert health.spf.void_lookups == 3
    (finding,) = [f for f in health.findings if f.rule == "spf-too-many-lookups"]
    assert "void lookups" in finding.message
    assert check(dns, "healthy.test").spf.void_lookups == 0  # control
