"""The demo domain is healthy: its zone authorises the demo server, has DMARC and a DKIM key.

Notebook 08 shows this check against the running demo; here it runs against the demo zone
served alone, and against the demo server's own DNS.
"""

from __future__ import annotations

from pathlib import Path

import mailkit
from mailkit.demo.dns import DnsServer
from mailkit.demo.zone import DEMO_DKIM_SELECTOR, DEMO_DOMAIN, demo_zone


def test_the_demo_zone_is_a_healthy_domain() -> None:
    with DnsServer(demo_zone(starttls_port=2525, tls_port=4465)) as dns:
        health = mailkit.domain(
            DEMO_DOMAIN, host="localhost", selectors=[DEMO_DKIM_SELECTOR], dns_server=dns.address
        )
    assert health.findings == ()
    assert health.spf.authorized is True
    assert dict(health.spf.results) == {"127.0.0.1": "pass", "::1": "pass"}
    assert health.dmarc.policy == "quarantine"
    assert [(k.selector, k.status, k.key_type) for k in health.dkim] == [
        (DEMO_DKIM_SELECTOR, "ok", "ed25519")
    ]


def test_another_server_is_not_authorised_by_the_demo_zone() -> None:
    """Control: the zone's SPF is not a pass for everyone."""
    with DnsServer(demo_zone(starttls_port=2525, tls_port=4465)) as dns:
        health = mailkit.domain(DEMO_DOMAIN, host="192.0.2.1", dns_server=dns.address)
    assert health.spf.authorized is False


def test_the_running_demo_answers_for_its_domain(tmp_path: Path) -> None:
    from mailkit.demo import DemoServer

    with DemoServer(tmp_path, oauth=False) as demo:
        settings = demo.settings
        assert settings.dns_server is not None
        health = mailkit.domain(
            DEMO_DOMAIN,
            host=settings.host,
            selectors=[DEMO_DKIM_SELECTOR],
            dns_server=settings.dns_server,
        )
    assert health.ok
    assert health.findings == ()
