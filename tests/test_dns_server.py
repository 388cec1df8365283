"""The DNS pair every lookup test stands on: the local authoritative server and DnsClient.

Discovery and domain-health tests trust these two to behave like the real thing, so their
own behaviour is pinned here against each other and against dnspython's stub resolver:
answers, NXDOMAIN versus NODATA, REFUSED outside the zones, truncation to TCP, silence as a
timeout, CNAME chains, one network query per name however many callers ask.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import dns.resolver
import pytest

from mailkit.demo.dns import DnsServer
from mailkit.dnslookup import DnsAnswer, DnsClient, parse_dns_server

LONG = ["a" * 250, "b" * 250, "c" * 250]
ZONE = f"""
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
@ IN NS ns1
ns1 IN A 127.0.0.1
@ IN MX 20 backup
@ IN MX 10 mx1
@ IN TXT "v=spf1 ip4:192.0.2.1 -all"
long IN TXT ( "{LONG[0]}" "{LONG[1]}" "{LONG[2]}" )
_submission._tcp IN SRV 0 1 587 mail
mail IN A 192.0.2.10
mail IN AAAA 2001:db8::10
alias IN CNAME mail
deep.empty IN A 192.0.2.11
"""


@pytest.fixture(scope="module")
def server() -> Iterator[DnsServer]:
    with DnsServer({"example.test.": ZONE}, silent=["blackhole.example.test"]) as running:
        yield running


def lookup(server: DnsServer, name: str, rdtype: str, timeout: float = 2.0) -> DnsAnswer:
    return asyncio.run(DnsClient(server.address, timeout=timeout).query(name, rdtype))


def test_answers_mx_sorted_by_preference(server: DnsServer) -> None:
    answer = lookup(server, "example.test", "MX")
    assert answer.status == "ok"
    assert answer.values == ((10, "mx1.example.test"), (20, "backup.example.test"))


def test_a_long_txt_record_comes_whole_over_tcp(server: DnsServer) -> None:
    server.reset_queries()
    answer = lookup(server, "long.example.test", "TXT")
    assert answer.values == ("".join(LONG),)
    # Over 512 bytes: the UDP answer was truncated and the resolver asked again over TCP.
    assert server.queries()[("long.example.test.", "TXT")] == 2


def test_srv_and_cname_chain(server: DnsServer) -> None:
    srv = lookup(server, "_submission._tcp.example.test", "SRV")
    assert srv.values == ((0, 1, 587, "mail.example.test"),)
    alias = lookup(server, "alias.example.test", "AAAA")
    assert alias.values == ("2001:db8::10",)


@pytest.mark.parametrize(
    ("name", "rdtype", "status"),
    [
        ("nowhere.example.test", "A", "nxdomain"),
        ("mail.example.test", "MX", "nodata"),
        # An empty non-terminal exists (it has a child): NODATA, not NXDOMAIN (RFC 8020).
        ("empty.example.test", "A", "nodata"),
        ("example.org", "A", "refused"),
    ],
)
def test_negative_answers_are_told_apart(
    server: DnsServer, name: str, rdtype: str, status: str
) -> None:
    answer = lookup(server, name, rdtype)
    assert answer.status == status
    assert answer.records == ()


def test_a_silent_name_is_a_timeout_within_the_limit(server: DnsServer) -> None:
    started = time.perf_counter()
    answer = lookup(server, "x.blackhole.example.test", "TXT", timeout=0.3)
    assert answer.status == "timeout"
    assert "0.3 s" in answer.detail
    assert time.perf_counter() - started < 2.0


def test_the_stub_resolver_agrees(server: DnsServer) -> None:
    """dnspython's own resolver, not only DnsClient, gets authoritative answers."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    answer = resolver.resolve("mail.example.test", "A")
    assert answer.response.flags & dns.flags.AA
    assert [r.address for r in answer] == ["192.0.2.10"]
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("nowhere.example.test", "A")


def test_concurrent_and_repeated_lookups_go_out_once(server: DnsServer) -> None:
    server.reset_queries()

    async def many() -> tuple[DnsAnswer, ...]:
        client = DnsClient(server.address)
        first = await asyncio.gather(*(client.query("example.test.", "TXT") for _ in range(20)))
        again = await client.query("EXAMPLE.test", "txt")
        assert client.sent == 1
        return (*first, again)

    answers = asyncio.run(many())
    assert len({a.values for a in answers}) == 1
    assert server.queries()[("example.test.", "TXT")] == 1


def test_latency_delays_answers_concurrently() -> None:
    with DnsServer({"example.test.": ZONE}, latency=0.2) as slow:

        async def ten() -> float:
            client = DnsClient(slow.address)
            started = time.perf_counter()
            await asyncio.gather(*(client.query(f"n{i}.example.test", "A") for i in range(10)))
            return time.perf_counter() - started

        elapsed = asyncio.run(ten())
    # Ten answers each 0.2 s late arrive together, not one after another (2 s).
    assert 0.2 <= elapsed < 1.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5300", ("::1", 5300)),
        ("::1", ("::1", 53)),
    ],
)
def test_dns_server_flag_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_dns_server(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ns.example.com:53", "not an IP address"),
        ("127.0.0.1:99999", "1 to 65535"),
        ("127.0.0.1:abc", "not a number"),
        ("[::1]x", "[ADDRESS]:PORT"),
    ],
)
def test_dns_server_flag_errors_name_the_flag(text: str, words: str) -> None:
    with pytest.raises(ValueError, match="--dns-server") as caught:
        parse_dns_server(text)
    assert words in str(caught.value)
