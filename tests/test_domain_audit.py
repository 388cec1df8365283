"""The audit checks the users' sending domains: each distinct path once, findings per user.

Against the real local DNS server of :mod:`domain_zones`. The rule of agreement: a user's
domain findings are exactly what ``mailkit.domain`` says for that user's domain and server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from domain_zones import SILENT, zones

import mailkit
from mailkit.audit import audit
from mailkit.audit.domainrules import user_queries
from mailkit.audit.domains import check_user_domains, check_user_domains_async
from mailkit.audit.rules import effective_settings
from mailkit.demo.dns import DnsServer
from mailkit.dnslookup import DnsClient
from mailkit.domainhealth.records import DomainHealth, DomainQuery
from mailkit.domainhealth.rules import DOMAIN_RULES
from mailkit.errors import SettingsError
from mailkit.settings import OrgSettings

ORG = OrgSettings(host="smtp.healthy.test", from_address="office@healthy.test")


def row(code: str, **fields: Any) -> dict[str, Any]:
    override = {k: v for k, v in fields.items() if k != "email"}
    return {"user_code": code, "override_enabled": bool(override), **fields}


USERS = pd.DataFrame(
    [
        row("anna"),  # the org's From and server: healthy
        row("ben", from_address="ben@nospf.test"),
        row("cleo", from_address="cleo@nospf.test"),
        row("dan", from_address="dan@notauth.test"),
        row("eve", mode="microsoft_graph", from_address="eve@m365bare.test"),
        row("fay", mode="outlook", from_address="fay@dmarcnone.test"),
        row("gil", from_address="not an address"),
        row("hal", from_address="hal@slow.test"),
    ]
)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(zones(), silent=SILENT) as server:
        yield server


@pytest.fixture(scope="module")
def checks(dns: DnsServer) -> dict[DomainQuery, DomainHealth]:
    """The USERS' domains, checked once for the module (the silent one waits its timeout)."""
    return check_user_domains(ORG, USERS, dns_server=dns.address, timeout=1.5)


def by_user(findings: pd.DataFrame) -> dict[str, set[str]]:
    domain_rules = findings[findings["rule"].isin(list(DOMAIN_RULES))]
    return {str(code): set(group["rule"]) for code, group in domain_rules.groupby("user_code")}


def test_each_user_gets_the_findings_of_their_domain(
    dns: DnsServer, checks: dict[DomainQuery, DomainHealth]
) -> None:
    found = by_user(audit(ORG, USERS, domains=checks))
    assert "anna" not in found  # control: healthy
    assert found["ben"] == found["cleo"] == {"spf-missing"}
    assert found["dan"] == {"spf-server-not-authorized"}
    assert {"spf-server-not-authorized", "dmarc-not-aligned", "dkim-key-missing"} <= found["eve"]
    assert found["fay"] == {"dmarc-policy-none"}  # no server known: domain records only
    assert "gil" not in found
    assert found["hal"] == {"dns-lookup-failed"}


def test_without_domains_the_audit_is_unchanged(
    dns: DnsServer, checks: dict[DomainQuery, DomainHealth]
) -> None:
    plain = audit(ORG, USERS)
    assert not plain["rule"].isin(list(DOMAIN_RULES)).any()
    with_domains = audit(ORG, USERS, domains=checks)
    # Every finding of the plain audit is still there, in the same order.
    kept = with_domains[~with_domains["rule"].isin(list(DOMAIN_RULES))].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, plain.reset_index(drop=True))


def test_findings_are_sorted_by_severity(
    dns: DnsServer, checks: dict[DomainQuery, DomainHealth]
) -> None:
    order = {"critical": 0, "warning": 1, "info": 2}
    ranks = [order[s] for s in audit(ORG, USERS, domains=checks)["severity"]]
    assert ranks == sorted(ranks)


def test_user_findings_agree_with_mailkit_domain(
    dns: DnsServer, checks: dict[DomainQuery, DomainHealth]
) -> None:
    """One rule, one place: the audit's findings for a user are mailkit.domain's."""
    findings = audit(ORG, USERS, domains=checks)
    for code, domain, host, provider in [
        ("anna", "healthy.test", "smtp.healthy.test", None),
        ("ben", "nospf.test", "smtp.healthy.test", None),
        ("dan", "notauth.test", "smtp.healthy.test", None),
        ("eve", "m365bare.test", None, "microsoft365"),
    ]:
        direct = mailkit.domain(domain, host=host, provider=provider, dns_server=dns.address)
        direct_rows = {(f.rule, f.message) for f in direct.findings if f.rule != "dkim-not-found"}
        mine = findings[(findings["user_code"] == code) & findings["rule"].isin(list(DOMAIN_RULES))]
        assert set(zip(mine["rule"], mine["message"], strict=True)) == direct_rows, code


def test_each_domain_is_asked_once(dns: DnsServer) -> None:
    many = pd.DataFrame(
        [row(f"u{i}", from_address=f"u{i}@{d}") for i in range(60) for d in ("nospf.test",)]
        + [row(f"v{i}", from_address=f"v{i}@healthy.test") for i in range(60)]
    )
    dns.reset_queries()
    checks = check_user_domains(ORG, many, dns_server=dns.address)
    assert len(checks) == 2
    asked = dns.queries()
    assert asked[("nospf.test.", "TXT")] == 1
    assert asked[("_dmarc.healthy.test.", "TXT")] == 1
    assert max(asked.values()) == 1


def test_the_paths_are_decided_once_per_distinct_combination() -> None:
    frame = effective_settings(ORG, USERS)
    codes, queries = user_queries(frame)
    assert len(codes) == len(USERS)
    assert codes[6] == -1  # gil: no valid From
    assert codes[1] == codes[2]  # ben and cleo share a path
    assert queries[codes[4]] == DomainQuery("m365bare.test", None, "microsoft365")
    assert queries[codes[5]] == DomainQuery("dmarcnone.test")


def test_domains_are_checked_concurrently_and_bounded(dns: DnsServer) -> None:
    """Lookups of different domains are in flight together, never more than the bound."""
    users = pd.DataFrame([row(f"s{i}", from_address=f"s@d{i}.nospf.test") for i in range(40)])
    in_flight = peak = 0

    class Counting(DnsClient):
        async def _lookup(self, name: str, rdtype: str) -> Any:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await super()._lookup(name, rdtype)
            finally:
                in_flight -= 1

    async def run(concurrency: int) -> None:
        client = Counting(dns.address)
        await check_user_domains_async(ORG, users, client=client, concurrency=concurrency)

    # These domains do not exist: a check is one MX lookup, so lookups in flight = checks.
    asyncio.run(run(concurrency=8))
    assert 2 <= peak <= 8
    peak = 0
    asyncio.run(run(concurrency=1))
    assert peak == 1


def test_the_async_form_shares_a_client(dns: DnsServer) -> None:
    async def run() -> int:
        client = DnsClient(dns.address)
        await check_user_domains_async(ORG, USERS, client=client)
        before = client.sent
        await check_user_domains_async(ORG, USERS, client=client)
        return client.sent - before

    assert asyncio.run(run()) == 0  # the second run is answered from the cache


def test_a_bad_dns_server_names_the_setting() -> None:
    with pytest.raises(SettingsError) as raised:
        check_user_domains(ORG, USERS, dns_server="resolver.example")
    assert raised.value.problems[0].field == "dns_server"
