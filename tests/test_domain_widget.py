"""The audit dashboard checks sending domains: the findings appear, filter and go when fixed.

Headless (widgets driven by setting values and clicking), against the local DNS server of
:mod:`domain_zones`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from domain_zones import SILENT, zones

from mailkit.demo.dns import DnsServer
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.widgets import AuditDashboard

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    with DnsServer(zones(), silent=SILENT) as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "org.sqlite", create=True) as opened:
        opened.set_org(OrgSettings(host="smtp.healthy.test", from_address="it@healthy.test"))
        opened.put_users(
            [
                UserSettings(user_code="ann", email="ann@healthy.test"),
                UserSettings(user_code="bob", override_enabled=True, from_address="bob@nospf.test"),
            ]
        )
        yield opened


def rules_of(panel: AuditDashboard, code: str) -> set[str]:
    rows = panel.findings[panel.findings["user_code"] == code]
    return set(rows["rule"])


def test_domain_findings_are_shown_and_filtered(store: Store, dns: DnsServer) -> None:
    panel = AuditDashboard(store, check_domains=True, dns_server=dns.address)
    assert "spf-missing" in rules_of(panel, "bob")
    assert "spf-missing" not in rules_of(panel, "ann")
    assert "spf-missing" in [value for _label, value in panel.rule.options]
    panel.rule.value = "spf-missing"
    assert list(panel.visible["user_code"]) == ["bob"]
    assert "nospf.test" in panel.table.value
    assert "2 sending domain(s) checked" in panel.domain_note.value


def test_unticked_no_domain_is_checked(store: Store, dns: DnsServer) -> None:
    dns.reset_queries()
    panel = AuditDashboard(store, dns_server=dns.address)
    assert "spf-missing" not in rules_of(panel, "bob")
    assert sum(dns.queries().values()) == 0
    panel.check_domains.value = True
    panel.refresh_button.click()
    assert "spf-missing" in rules_of(panel, "bob")


def test_a_fix_saved_in_the_form_removes_the_finding_without_asking_again(
    store: Store, dns: DnsServer
) -> None:
    panel = AuditDashboard(store, check_domains=True, dns_server=dns.address)
    dns.reset_queries()
    panel.open("bob")
    panel.form.fields["from_address"].input.value = "bob@healthy.test"
    panel.form.save_button.click()
    assert "spf-missing" not in rules_of(panel, "bob")
    # healthy.test was checked for ann already: the re-audit asked DNS nothing.
    assert sum(dns.queries().values()) == 0
    # "Audit again" asks afresh.
    panel.refresh_button.click()
    assert dns.queries()[("healthy.test.", "TXT")] == 1


def test_a_bad_dns_server_is_named_by_its_label(store: Store) -> None:
    panel = AuditDashboard(store, check_domains=True, dns_server="resolver.example")
    assert "DNS server: " in panel.domain_note.value
    assert "were not checked" in panel.domain_note.value
    assert "spf-missing" not in rules_of(panel, "bob")  # the rest of the audit still ran
