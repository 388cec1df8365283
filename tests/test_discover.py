"""Discovery end to end: a real authoritative DNS server and a real HTTPS server on loopback.

One zone (``test.``) holds a domain for each path discovery knows — SRV records, MX to
Microsoft 365, MX to Google (old and new names), MX to a host the ISPDB knows, autoconfig at
``autoconfig.DOMAIN`` and at the well-known URL, a redirect, malformed and hostile XML,
Autodiscover on premises — and names that do not exist or never answer. Names point at
127.0.0.1, where the HTTPS server answers as each host would (see autoconfig_server.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from autoconfig_server import BILLION_LAUGHS, XXE, AutoconfigServer, Route, autoconfig_xml

from mailkit.demo.dns import DnsServer
from mailkit.demo.ews.server import FakeExchange
from mailkit.discovery.candidates import DiscoveryReport
from mailkit.discovery.fetch import MAX_BYTES
from mailkit.discovery.run import AUTODISCOVER_ENV, ISPDB_ENV, discover
from mailkit.settings import AuthType, Mode, Security

ZONE = """
$TTL 60
@ IN SOA ns1.test. hostmaster.test. 1 3600 600 86400 60
@ IN NS ns1.test.
ns1 IN A 127.0.0.1
; RFC 6186 / RFC 8314 SRV
_submission._tcp.srv IN SRV 10 1 587 mail.srv.test.
_submissions._tcp.srv IN SRV 0 1 465 mail.srv.test.
srv IN MX 10 mail.srv.test.
mail.srv IN A 127.0.0.1
; SRV saying "not offered", beside one that is
_submissions._tcp.half IN SRV 0 0 0 .
_submission._tcp.half IN SRV 0 1 587 smtp.half.test.
half IN MX 10 smtp.half.test.
; MX to Microsoft 365, to Google (the classic and the 2023 names)
m365 IN MX 0 m365-test.mail.protection.outlook.com.
gws IN MX 1 aspmx.l.google.com.
gws IN MX 5 alt1.aspmx.l.google.com.
newgoogle IN MX 1 smtp.google.com.
; MX to a hoster whose domain the ISPDB knows
hosted IN MX 10 mx01.mailhoster.example.
; autoconfig.DOMAIN and the well-known URL
ac IN MX 10 mx.ac.test.
autoconfig.ac IN A 127.0.0.1
wk IN A 127.0.0.1
; two sources agreeing
both IN A 127.0.0.1
autoconfig.both IN A 127.0.0.1
_submission._tcp.both IN SRV 0 1 587 smtp.both.test.
; a redirect to another name, a redirect to plain HTTP
autoconfig.moved IN A 127.0.0.1
autoconfig.insecure IN A 127.0.0.1
; malformed and hostile files
autoconfig.broken IN A 127.0.0.1
autoconfig.lol IN A 127.0.0.1
autoconfig.xxe IN A 127.0.0.1
; Exchange on premises
autodiscover.onprem IN A 127.0.0.1
onprem IN MX 10 mail.onprem.test.
; a redirect loop and an endless file
autoconfig.loop IN A 127.0.0.1
autoconfig.huge IN A 127.0.0.1
; a domain that exists with nothing for mail
bare IN A 192.0.2.1
"""
NAMES = [
    "autoconfig.ac.test",
    "wk.test",
    "both.test",
    "autoconfig.both.test",
    "autoconfig.moved.test",
    "autoconfig.insecure.test",
    "autoconfig.broken.test",
    "autoconfig.lol.test",
    "autoconfig.xxe.test",
    "autodiscover.onprem.test",
    "autoconfig.loop.test",
    "autoconfig.huge.test",
]
AUTOCONFIG = "/mail/config-v1.1.xml"
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsServer]:
    with DnsServer({"test.": ZONE}, silent=["slow.test"]) as server:
        yield server


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AutoconfigServer]:
    server = AutoconfigServer(NAMES, tmp_path_factory.mktemp("autoconfig"))
    ac = autoconfig_xml(
        {
            "hostname": "smtp.%EMAILDOMAIN%",
            "port": 465,
            "socketType": "SSL",
            "authentication": ["password-cleartext", "OAuth2"],
            "username": "%EMAILLOCALPART%",
        },
        {"hostname": "smtp.ac.test", "port": 587, "socketType": "STARTTLS",
         "authentication": "password-encrypted", "username": "%EMAILADDRESS%"},
        domain="ac.test",
    )  # fmt: skip
    server.route("autoconfig.ac.test", AUTOCONFIG, Route(ac))
    wk = autoconfig_xml(
        {"hostname": "out.wk.test", "port": 587, "socketType": "STARTTLS",
         "authentication": "password-cleartext"},
        {"hostname": "plain.wk.test", "port": 25, "socketType": "plain",
         "authentication": "none"},
        domain="wk.test",
    )  # fmt: skip
    server.route("wk.test", WELL_KNOWN, Route(wk))
    both = autoconfig_xml(
        {"hostname": "smtp.both.test", "port": 587, "socketType": "STARTTLS"}, domain="both.test"
    )
    server.route("autoconfig.both.test", AUTOCONFIG, Route(both))
    server.route(
        "autoconfig.moved.test",
        AUTOCONFIG,
        Route(status=302, headers={"Location": "https://autoconfig.ac.test/mail/config-v1.1.xml"}),
    )
    server.route(
        "autoconfig.insecure.test",
        AUTOCONFIG,
        Route(status=301, headers={"Location": "http://autoconfig.insecure.test/x.xml"}),
    )
    server.route(
        "autoconfig.loop.test",
        AUTOCONFIG,
        Route(status=307, headers={"Location": "/mail/config-v1.1.xml?again=1"}),
    )
    server.route("autoconfig.huge.test", AUTOCONFIG, Route(b"<!--" + b"x" * (MAX_BYTES + 10)))
    server.route("autoconfig.broken.test", AUTOCONFIG, Route(b"<clientConfig><emailProvider>"))
    server.route("autoconfig.lol.test", AUTOCONFIG, Route(BILLION_LAUGHS))
    server.route("autoconfig.xxe.test", AUTOCONFIG, Route(XXE))
    # The ISPDB: by domain and by the MX hoster's domain.
    ispdb_entry = autoconfig_xml(
        {"hostname": "smtp.ispdb.test", "port": 587, "socketType": "STARTTLS",
         "authentication": "password-cleartext", "username": "%EMAILADDRESS%"},
        domain="ispdb.test",
    )  # fmt: skip
    server.route("127.0.0.1", "/v1.1/ispdb.test", Route(ispdb_entry))
    hoster = autoconfig_xml(
        {"hostname": "smtp.mailhoster.example", "port": 465, "socketType": "SSL",
         "authentication": "password-cleartext", "username": "%EMAILADDRESS%"},
        domain="mailhoster.example",
    )  # fmt: skip
    server.route("127.0.0.1", "/v1.1/mailhoster.example", Route(hoster))
    # Autodiscover v2: Exchange Online (the global endpoint) and on premises.
    online = json.dumps(
        {"Protocol": "EWS", "Url": "https://outlook.office365.com/EWS/Exchange.asmx"}
    ).encode()
    server.route(
        "127.0.0.1",
        "/autodiscover/autodiscover.json/v1.0/*",
        Route(online, content_type="application/json"),
    )
    onprem = json.dumps(
        {"Protocol": "EWS", "Url": "https://mail.onprem.test/EWS/Exchange.asmx"}
    ).encode()
    server.route(
        "autodiscover.onprem.test",
        "/autodiscover/autodiscover.json/v1.0/*",
        Route(onprem, content_type="application/json"),
    )
    with server:
        yield server


Find = Callable[..., DiscoveryReport]


@pytest.fixture
def find(dns_server: DnsServer, web: AutoconfigServer, monkeypatch: pytest.MonkeyPatch) -> Find:
    monkeypatch.setenv(ISPDB_ENV, f"{web.base}/v1.1/")
    monkeypatch.setenv(AUTODISCOVER_ENV, f"{web.base}/autodiscover/autodiscover.json")

    def run(email: str, timeout: float = 5.0) -> DiscoveryReport:
        return discover(
            email,
            dns_server=dns_server.address,
            timeout=timeout,
            ca_file=str(web.ca_file),
            https_port=web.port,
        )

    return run


def lookup(report: DiscoveryReport, source: str) -> list[str]:
    return [s.outcome for s in report.lookups if s.source == source]


def endpoints(report: DiscoveryReport) -> list[tuple[str, int, Security]]:
    return [(c.host, c.port, c.security) for c in report.candidates]


def test_srv_records_give_both_submission_ports_implicit_tls_first(find: Find) -> None:
    report = find("jane@srv.test")
    smtp = [(c.host, c.port, c.security, c.sources) for c in report.smtp()]
    assert smtp[:2] == [
        ("mail.srv.test", 465, Security.IMPLICIT_TLS, ("srv",)),
        ("mail.srv.test", 587, Security.STARTTLS, ("srv",)),
    ]
    assert report.best is not None
    assert report.best.confidence == 85
    assert lookup(report, "srv") == ["found", "found"]
    assert not report.cut_short


def test_an_srv_target_of_dot_means_not_offered(find: Find) -> None:
    report = find("jane@half.test")
    assert ("smtp.half.test", 587, Security.STARTTLS) in endpoints(report)
    assert all(c.security is not Security.IMPLICIT_TLS for c in report.candidates)
    details = [s.detail for s in report.lookups if s.source == "srv" and s.outcome == "none"]
    assert any("offers no such service" in d for d in details)


def test_mx_to_microsoft_365_gives_office365_starttls_with_oauth_and_asks_autodiscover(
    find: Find, web: AutoconfigServer
) -> None:
    report = find("jane@m365.test")
    smtp = report.smtp()[0]
    assert (smtp.host, smtp.port, smtp.security) == ("smtp.office365.com", 587, Security.STARTTLS)
    assert smtp.auth is AuthType.XOAUTH2
    assert "OAuth" in smtp.auth_advice
    # MX and Autodiscover agree: one candidate naming both, surer than either.
    assert set(smtp.sources) == {"mx", "autodiscover"}
    assert smtp.confidence > 80
    assert report.mx == ("m365-test.mail.protection.outlook.com",)
    graph = [c for c in report.candidates if c.mode is Mode.MICROSOFT_GRAPH]
    ews = [c for c in report.candidates if c.mode is Mode.EXCHANGE_EWS]
    assert graph
    assert ews
    assert ews[0].url == "https://outlook.office365.com/EWS/Exchange.asmx"
    assert ews[0].confidence < graph[0].confidence
    asked = [path for _host, path in web.requests]
    assert any(p.startswith("/autodiscover/autodiscover.json/v1.0/jane%40m365.test") for p in asked)


@pytest.mark.parametrize("domain", ["gws.test", "newgoogle.test"])
def test_google_mx_gives_google_workspace(find: Find, domain: str) -> None:
    report = find(f"jane@{domain}")
    best = report.smtp()[0]
    assert (best.host, best.port, best.provider) == ("smtp.gmail.com", 587, "google_workspace")
    assert best.sources == ("mx",)
    assert best.auth is AuthType.XOAUTH2


def test_mx_at_a_hoster_asks_the_ispdb_for_the_hosters_domain(
    find: Find, web: AutoconfigServer
) -> None:
    report = find("jane@hosted.test")
    best = report.smtp()[0]
    assert (best.host, best.port, best.security) == (
        "smtp.mailhoster.example",
        465,
        Security.IMPLICIT_TLS,
    )
    assert best.sources == ("ispdb-mx",)
    assert best.confidence == 55
    assert best.username == "jane@hosted.test"
    assert any(path == "/v1.1/mailhoster.example" for _host, path in web.requests)


def test_autoconfig_subdomain_expands_placeholders_and_keeps_the_files_order(find: Find) -> None:
    report = find("jane@ac.test")
    first, second = report.smtp()[:2]
    assert (first.host, first.port, first.security) == ("smtp.ac.test", 465, Security.IMPLICIT_TLS)
    assert first.username == "jane"
    assert first.sources == ("autoconfig",)
    assert first.auth is AuthType.XOAUTH2  # OAuth2 is offered beside the password: it wins
    assert first.confidence == 90
    assert (second.port, second.security, second.auth) == (
        587,
        Security.STARTTLS,
        AuthType.CRAM_MD5,
    )
    assert second.username == "jane@ac.test"
    assert second.confidence == 85


def test_well_known_url_and_a_plain_server_ranked_last_with_a_warning(find: Find) -> None:
    report = find("jane@wk.test")
    assert report.candidates[0].host == "out.wk.test"
    assert report.candidates[0].sources == ("well-known",)
    last = report.candidates[-1]
    assert (last.host, last.security) == ("plain.wk.test", Security.NONE)
    assert any("clear text" in note for note in last.notes)


def test_the_ispdb_by_domain(find: Find) -> None:
    report = find("jane@ispdb.test")
    best = report.smtp()[0]
    assert (best.host, best.sources, best.confidence) == ("smtp.ispdb.test", ("ispdb",), 70)


def test_two_sources_agreeing_are_one_candidate_with_more_confidence(find: Find) -> None:
    report = find("jane@both.test")
    matching = [c for c in report.candidates if c.host == "smtp.both.test" and c.port == 587]
    assert len(matching) == 1
    assert set(matching[0].sources) == {"autoconfig", "srv"}
    assert matching[0].confidence == 98  # 100 - 10 * 15 / 100 = 98.5, rounded down


def test_a_redirect_is_followed_to_another_https_host(find: Find) -> None:
    report = find("jane@moved.test")
    assert report.smtp()[0].host == "smtp.moved.test"  # %EMAILDOMAIN% is the address's domain
    moved = next(s for s in report.lookups if s.source == "autoconfig")
    assert moved.outcome == "found"
    assert "autoconfig.ac.test" in moved.detail


@pytest.mark.parametrize(
    ("domain", "outcome", "words"),
    [
        pytest.param("insecure.test", "failed", "not an https:// URL", id="redirect-to-http"),
        pytest.param("broken.test", "malformed", "not well-formed XML", id="malformed-xml"),
        pytest.param("loop.test", "failed", "redirects", id="redirect-loop-limit"),
        pytest.param("huge.test", "failed", f"more than {MAX_BYTES} bytes", id="endless-file"),
    ],
)
def test_an_autoconfig_answer_it_cannot_use_is_a_finding(
    find: Find, domain: str, outcome: str, words: str
) -> None:
    report = find(f"jane@{domain}")
    autoconfig = next(s for s in report.lookups if s.source == "autoconfig")
    assert autoconfig.outcome == outcome
    assert words in autoconfig.detail


@pytest.mark.parametrize(("domain", "words"), [("lol.test", "DTD"), ("xxe.test", "DTD")])
def test_hostile_xml_is_refused_unexpanded(find: Find, domain: str, words: str) -> None:
    report = find(f"jane@{domain}")
    hostile = next(s for s in report.lookups if s.source == "autoconfig")
    assert hostile.outcome == "hostile"
    assert "refused" in hostile.detail
    assert words in hostile.detail
    assert all("lollol" not in c.host and "root" not in c.host for c in report.candidates)


def test_autodiscover_on_premises_gives_an_ews_candidate(find: Find) -> None:
    report = find("jane@onprem.test")
    ews = [c for c in report.candidates if c.mode is Mode.EXCHANGE_EWS]
    assert len(ews) == 1
    assert ews[0].url == "https://mail.onprem.test/EWS/Exchange.asmx"
    assert ews[0].auth is AuthType.NTLM
    assert ews[0].sources == ("autodiscover",)
    # Microsoft's global endpoint is not told about an address whose mail is elsewhere.
    assert not any(c.mode is Mode.MICROSOFT_GRAPH for c in report.candidates)


def test_nxdomain_gives_nothing_and_no_guesses(find: Find) -> None:
    report = find("jane@nowhere.test")
    assert report.candidates == ()
    assert "none" in lookup(report, "mx")
    mx = next(s for s in report.lookups if s.source == "mx")
    assert "does not exist" in mx.detail
    assert "couldn't" not in report.to_text()


def test_a_domain_with_nothing_for_mail_gets_guesses_for_the_probe(find: Find) -> None:
    report = find("jane@bare.test")
    assert {c.host for c in report.candidates} == {"smtp.bare.test", "mail.bare.test"}
    assert all(c.sources == ("guess",) and c.confidence == 15 for c in report.candidates)


def test_a_silent_dns_server_ends_in_time_with_the_preset(
    dns_server: DnsServer, web: AutoconfigServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answers at all (a dead network): the presets still come back once the limit passed."""
    monkeypatch.setenv(ISPDB_ENV, f"{web.base}/v1.1/")
    silent = DnsServer({"test.": ZONE}, silent=["."])
    with silent:
        started = time.perf_counter()
        report = discover("jane@gmail.com", dns_server=silent.address, timeout=1.0)
        took = time.perf_counter() - started
    assert report.best is not None
    assert report.best.host == "smtp.gmail.com"
    assert report.best.sources == ("preset",)
    assert "timeout" in lookup(report, "mx")
    assert took < 10  # a hang guard, not a speed test: the limit is 1 s


def test_slow_names_time_out_as_findings(find: Find) -> None:
    report = find("jane@slow.test", timeout=1.0)
    assert report.candidates == ()
    assert set(lookup(report, "mx")) == {"timeout"}
    assert report.as_dict()["lookups"]


def test_nothing_secret_or_odd_in_the_json_shape(find: Find) -> None:
    data = json.loads(json.dumps(find("jane@srv.test").as_dict()))
    assert set(data) == {
        "email",
        "domain",
        "mx",
        "candidates",
        "lookups",
        "elapsed_ms",
        "cut_short",
    }
    assert set(data["candidates"][0]) == {
        "mode", "host", "port", "security", "auth", "auth_advice", "username", "url",
        "provider", "sources", "confidence", "notes",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("email", "words"),
    [("jane", "not an email address"), ("jane@", "not an email address"),
     ("ja ne@x.test", "space"), ("jane@-bad-.test", "not a valid domain")],
)  # fmt: skip
def test_bad_addresses_name_the_field(email: str, words: str) -> None:
    with pytest.raises(ValueError, match="email") as info:
        discover(email)
    assert words in str(info.value)


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="timeout"):
        discover("jane@x.test", timeout=0)
    with pytest.raises(ValueError, match="dns_server"):
        discover("jane@x.test", dns_server="dns.example:53")
    with pytest.raises(ValueError, match="https_port"):
        discover("jane@x.test", https_port=70000)


def test_the_demo_domain_is_discoverable(tmp_path: Path) -> None:
    from mailkit.demo import DemoServer

    with DemoServer(tmp_path, oauth=False) as demo:
        settings = demo.settings
        assert settings.dns_server is not None
        report = discover("demo@example.com", dns_server=settings.dns_server, timeout=3.0)
    smtp = [(c.host, c.port, c.security) for c in report.smtp()[:2]]
    assert smtp == [
        ("localhost", settings.tls_port, Security.IMPLICIT_TLS),
        ("localhost", settings.starttls_port, Security.STARTTLS),
    ]


def test_discover_then_probe_fills_the_settings_from_the_verdict(tmp_path: Path) -> None:
    """The onboarding chain against the demo: SRV records → probe of localhost → proposal."""
    from mailkit.demo import DemoServer
    from mailkit.discovery.run import discover_and_probe
    from mailkit.settings import OrgSettings

    with DemoServer(tmp_path, oauth=False) as demo:
        settings = demo.settings
        report, probes, proposal = discover_and_probe(
            "demo@example.com",
            dns_server=settings.dns_server,
            timeout=3.0,
            ca_file=str(settings.ca_file),
        )
    assert set(probes) == {"localhost"}
    assert {p.port for p in probes["localhost"].ports} == {
        settings.tls_port,
        settings.starttls_port,
    }
    assert proposal is not None
    assert (proposal.port, proposal.security) == (settings.tls_port, Security.IMPLICIT_TLS)
    assert proposal.provenance["host"] == "srv (confidence 85)"
    assert proposal.provenance["port"].startswith("probe: ")
    org = OrgSettings(**proposal.settings())
    assert (org.host, org.port, org.security) == (
        "localhost",
        settings.tls_port,
        Security.IMPLICIT_TLS,
    )
    assert org.username == "demo@example.com"
    assert report.best is proposal.candidate


def test_without_a_usable_probe_the_best_candidate_stands_unconfirmed(find: Find) -> None:
    from mailkit.discovery.candidates import propose

    report = find("jane@srv.test")
    proposal = propose(report, {})
    assert proposal is not None
    assert (proposal.port, proposal.security) == (465, Security.IMPLICIT_TLS)
    assert proposal.provenance["port"] == "srv (confidence 85) - not confirmed by a probe"


def test_an_untrusted_certificate_is_a_finding(
    dns_server: DnsServer, web: AutoconfigServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test CA the autoconfig server's certificate is refused, not ignored."""
    monkeypatch.setenv(ISPDB_ENV, f"{web.base}/v1.1/")
    report = discover("jane@ac.test", dns_server=dns_server.address, https_port=web.port)
    refused = next(s for s in report.lookups if s.source == "autoconfig")
    assert refused.outcome == "failed"
    assert "not trusted" in refused.detail
    assert all(c.host != "smtp.ac.test" or "autoconfig" not in c.sources for c in report.candidates)


def test_a_stalled_https_server_costs_only_its_own_source(
    find: Find, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts the connection and never speaks TLS: that lookup times out, the
    others are in the report."""
    import socket

    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        monkeypatch.setenv(ISPDB_ENV, f"https://127.0.0.1:{stalled.getsockname()[1]}/v1.1/")
        report = find("jane@srv.test", timeout=2.0)
    assert lookup(report, "ispdb") == ["timeout"]
    assert report.smtp()[0].host == "mail.srv.test"


def test_sources_run_at_once(web: AutoconfigServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer 0.4 s late: one after another, the dozen lookups would overrun the 2.5 s
    limit and show as timeouts; at once, all of them finish."""
    monkeypatch.setenv(ISPDB_ENV, f"{web.base}/v1.1/")
    with DnsServer({"test.": ZONE}, latency=0.4) as slow:
        report = discover(
            "jane@ac.test",
            dns_server=slow.address,
            timeout=2.5,
            ca_file=str(web.ca_file),
            https_port=web.port,
        )
        asked = sum(slow.queries().values())
    assert asked >= 7
    assert not report.cut_short
    assert "timeout" not in {s.outcome for s in report.lookups}
    assert report.smtp()[0].sources == ("autoconfig",)


@pytest.fixture
def exchange_zone() -> Iterator[DnsServer]:
    """The fake Exchange's domain, its mail handled by Microsoft 365 (a hybrid setup)."""
    zone = """
$TTL 60
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
@ IN NS ns1
ns1 IN A 127.0.0.1
@ IN MX 0 example-com.mail.protection.outlook.com.
"""
    with DnsServer({"example.com.": zone}) as server:
        yield server


@pytest.mark.parametrize(
    ("local", "outcome", "words"),
    [
        ("ews", "found", ""),
        ("ad-redirect", "found", "demo-redirected"),
        ("ad-404", "none", "HTTP 404"),
        ("ad-malformed", "malformed", "not JSON"),
        ("ad-no-ews", "none", "no EWS URL"),
    ],
)
def test_autodiscover_v2_against_the_fake_exchange(
    fake_exchange: FakeExchange,
    exchange_zone: DnsServer,
    monkeypatch: pytest.MonkeyPatch,
    local: str,
    outcome: str,
    words: str,
) -> None:
    """Exchange Online's endpoint (here the fake Exchange, answering as Exchange does) is
    asked because the MX is Microsoft 365's; its EWS URL becomes an exchange_ews candidate."""
    monkeypatch.setenv(AUTODISCOVER_ENV, f"{fake_exchange.base_url}/autodiscover/autodiscover.json")
    monkeypatch.setenv(ISPDB_ENV, f"{fake_exchange.base_url}/no-ispdb/")
    report = discover(
        f"{local}@example.com",
        dns_server=exchange_zone.address,
        timeout=5.0,
        ca_file=str(fake_exchange.ca_file),
    )
    asked = [s for s in report.lookups if s.source == "autodiscover" and "127.0.0.1" in s.target]
    assert [s.outcome for s in asked] == [outcome]
    assert words in asked[0].detail
    ews = [c for c in report.candidates if c.mode is Mode.EXCHANGE_EWS]
    if outcome == "found":
        assert [c.url for c in ews] == [fake_exchange.ews_url]
    else:
        assert ews == []
    # The MX still gives Microsoft 365's SMTP submission, whatever Autodiscover said.
    assert report.smtp()[0].host == "smtp.office365.com"


def test_one_source_failing_unexpectedly_costs_only_that_source(
    find: Find, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A surprise in one source (here the SRV parser raising) is a failed lookup in the report;
    the other sources' candidates are still there."""
    from mailkit.discovery import run

    def broken(*_args: object) -> object:
        raise RuntimeError("surprise")

    monkeypatch.setattr(run, "srv_candidates", broken)
    report = find("jane@both.test")
    best = report.smtp()[0]
    assert (best.host, best.sources) == ("smtp.both.test", ("autoconfig",))
    failed = [s for s in report.lookups if s.outcome == "failed"]
    assert [s.source for s in failed] == ["srv"]
    assert "RuntimeError: surprise" in failed[0].detail
