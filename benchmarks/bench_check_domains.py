"""``audit --check-domains``: 10,000 users over 1,000 From domains, against a DNS server 20 ms away.

The question: what does checking every user's sending domain cost an audit, and does each
domain cost one set of lookups however many users share it? On a real network every lookup is
a round trip (tens of milliseconds to a resolver that must ask the domain's servers), so the
count of sequential round trips decides the time, not CPU.

Set-up (one run, on loopback): :class:`mailkit.demo.dns.DnsServer` serving one zone with 1,000
domains — MX, SPF (most include one shared ``_spf`` record, a fifth have none, some end in
``~all``), DMARC (a tenth missing, some ``p=none``) — delaying every answer by ``--latency-ms``
(default 20). 10,000 users, ten per domain, sending through the org's server (a name with an
A record), a tenth of them through Microsoft Graph (checked by Microsoft's include).

- **mailkit**: :func:`mailkit.audit.domains.check_user_domains` (each distinct domain and server
  once, 64 at a time, one DNS client with a cache) then :func:`mailkit.audit.audit` with
  ``domains=``: the whole audit, timed.
- **baseline**: the same check per user, one user after another, each with a fresh DNS client
  (no sharing): what a loop over users calling a domain checker does. It is timed on a sample
  of ``--sample`` users (every check costs the same: no cache) and scaled to 10,000, because
  the full loop would take about a quarter of an hour; the per-user time is printed.

Goal (issue 15): at least 20x faster than the baseline, and every (name, type) asked of the
server once in the mailkit run (printed from ``DnsServer.queries()``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import pandas as pd

from mailkit.audit import audit
from mailkit.audit.domainrules import user_queries
from mailkit.audit.domains import check_user_domains
from mailkit.audit.rules import effective_settings
from mailkit.demo.dns import DnsServer
from mailkit.dnslookup import DnsClient
from mailkit.domainhealth.check import check_query
from mailkit.settings import OrgSettings

USERS = 10_000
DOMAINS = 1_000
RATIO_GOAL = 20.0
SERVER = "198.51.100.25"


def zone_text(domains: int) -> str:
    """One zone, ``bench.test.``, with every domain's records below it."""
    lines = [
        "$TTL 300",
        "@ IN SOA ns1.bench.test. hostmaster.bench.test. 1 3600 600 86400 300",
        "@ IN NS ns1.bench.test.",
        "ns1 IN A 127.0.0.1",
        f"smtp IN A {SERVER}",
        f'_spf IN TXT "v=spf1 ip4:{SERVER} ip4:198.51.100.0/26 -all"',
        'spf.protection.outlook IN TXT "v=spf1 ip4:40.92.0.0/15 -all"',
    ]
    for i in range(domains):
        name = f"d{i:04d}"
        lines.append(f"{name} IN MX 10 mx.{name}")
        lines.append(f"mx.{name} IN A 192.0.2.{i % 250 + 1}")
        if i % 5 != 0:  # a fifth publish no SPF
            ending = "~all" if i % 7 == 0 else "-all"
            lines.append(f'{name} IN TXT "v=spf1 mx include:_spf.bench.test {ending}"')
        if i % 10 != 0:  # a tenth publish no DMARC
            policy = "none" if i % 3 == 0 else "reject"
            lines.append(
                f'_dmarc.{name} IN TXT "v=DMARC1; p={policy}; rua=mailto:d@{name}.bench.test"'
            )
    return "\n".join(lines) + "\n"


def users_table(users: int, domains: int) -> pd.DataFrame:
    rows = []
    for i in range(users):
        domain = f"d{i % domains:04d}.bench.test"
        row = {"user_code": f"u{i:05d}", "from_address": f"u{i}@{domain}"}
        if i % 10 == 3:
            row["mode"] = "microsoft_graph"
        rows.append({**row, "override_enabled": True})
    return pd.DataFrame(rows)


async def baseline(org: OrgSettings, users: pd.DataFrame, address: str) -> float:
    """Seconds for the users' checks one after another, each with a fresh client."""
    codes, queries = user_queries(effective_settings(org, users))
    started = time.perf_counter()
    for code in codes:
        if code >= 0:
            await check_query(queries[code], DnsClient(address), probe_dkim=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--domains", type=int, default=DOMAINS)
    parser.add_argument("--sample", type=int, default=300, help="users timed for the baseline")
    args = parser.parse_args()

    org = OrgSettings(host="smtp.bench.test", from_address="it@d0001.bench.test")
    users = users_table(args.users, args.domains)
    print(
        "audit --check-domains: "
        f"{args.users:,} users over {args.domains:,} domains, DNS answers delayed "
        f"{args.latency_ms:g} ms (loopback, one run)"
    )
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    with DnsServer({"bench.test.": zone_text(args.domains)}, latency=args.latency_ms / 1000) as dns:
        started = time.perf_counter()
        checks = check_user_domains(org, users, dns_server=dns.address)
        looked_up = time.perf_counter() - started
        findings = audit(org, users, domains=checks)
        fast = time.perf_counter() - started
        asked = dns.queries()
        dns.reset_queries()
        sample = users.iloc[: args.sample]
        slow_sample = asyncio.run(baseline(org, sample, dns.address))
        sample_asked = sum(dns.queries().values())

    per_user = slow_sample / len(sample)
    slow = per_user * len(users)
    ratio = slow / fast
    most = max(asked.values())
    domain_rules = findings["rule"].str.startswith(("spf-", "dmarc-", "dkim-", "domain-", "dns-"))
    print(
        f"mailkit:  {fast:7.2f} s for the whole audit ({looked_up:.2f} s of lookups: "
        f"{len(checks):,} distinct domain/server checks); {int(domain_rules.sum()):,} domain "
        f"findings of {len(findings):,}"
    )
    print(
        f"          {sum(asked.values()):,} queries for {len(asked):,} distinct (name, type); "
        f"the most asked was asked {most} time(s)"
    )
    print(
        f"baseline: {per_user * 1000:7.1f} ms per user, sequential, no sharing "
        f"({len(sample)} users timed, {sample_asked:,} queries: "
        f"{sample_asked / len(sample):.1f} per user) -> {slow:,.0f} s for {len(users):,} users"
    )
    print(
        f"ratio: mailkit is {ratio:,.0f}x faster than the sequential per-user baseline (goal >= "
        f"{RATIO_GOAL:.0f}x: {'met' if ratio >= RATIO_GOAL else 'NOT MET'}); each (name, type) "
        f"asked once: {'met' if most == 1 else 'NOT MET'}"
    )
    return 0 if most == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
