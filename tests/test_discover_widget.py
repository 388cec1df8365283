"""The "Find my settings" step of the org form, headless, against the demo server.

The demo answers DNS for its domain (SRV records for both submission ports), so the step
runs for real: discovery over DNS, the probe over TLS to both ports, the form filled from the
verdict, each field noting where its value came from; then Save stores it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailkit.demo import DemoServer, DemoSettings
from mailkit.discovery.run import ISPDB_ENV
from mailkit.settings import Security
from mailkit.store import Store
from mailkit.widgets import OrgForm


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path_factory.mktemp("demo"), oauth=False) as server:
        yield server.settings


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv(ISPDB_ENV, "https://127.0.0.1:9/v1.1/")  # closed: nothing leaves loopback
    with Store.open(tmp_path / "profile.sqlite", create=True) as opened:
        yield opened


def form_for(store: Store, demo: DemoSettings) -> OrgForm:
    return OrgForm(store, dns_server=demo.dns_server, ca_file=str(demo.ca_file))


def test_find_probe_fill_and_save(store: Store, demo: DemoSettings) -> None:
    form = form_for(store, demo)
    form.discover.email.value = "demo@example.com"
    form.discover.find_button.click()
    smtp = form.sections.smtp.fields
    assert smtp["host"].input.value == "localhost"
    assert smtp["port"].input.value == str(demo.tls_port)
    assert smtp["security"].input.value == "implicit_tls"
    assert smtp["username"].input.value == "demo@example.com"
    # Where each value came from, beside the field.
    assert "found by srv (confidence 85)" in smtp["host"].note.value
    assert "found by probe:" in smtp["port"].note.value
    assert "Filled the form, confirmed by a probe" in form.discover.results.value
    assert "mailkit-discovery" in form.discover.results.value  # the candidates table
    form.save_button.click()
    saved = store.get_org()
    assert (saved.host, saved.port, saved.security) == (
        "localhost",
        demo.tls_port,
        Security.IMPLICIT_TLS,
    )


def test_without_the_probe_the_form_says_it_is_unconfirmed(
    store: Store, demo: DemoSettings
) -> None:
    form = form_for(store, demo)
    form.discover.email.value = "demo@example.com"
    form.discover.probe.value = False
    form.discover.find_button.click()
    assert form.discover.probes == {}
    assert "no probe confirmed a port" in form.discover.results.value
    assert "not confirmed by a probe" in form.sections.smtp.fields["port"].note.value


@pytest.mark.parametrize(
    ("email", "server", "label"),
    [("demo", "", "Email address"), ("demo@example.com", "ns.example", "DNS server")],
)
def test_bad_input_names_the_field_and_changes_nothing(
    store: Store, demo: DemoSettings, email: str, server: str, label: str
) -> None:
    form = form_for(store, demo)
    form.discover.email.value = email
    form.discover.dns_server.value = server
    before = form.sections.smtp.fields["host"].input.value
    form.discover.find_button.click()
    assert label in form.discover.status.value
    assert form.discover.report is None
    assert form.sections.smtp.fields["host"].input.value == before


def test_nothing_found_says_so_and_fills_nothing(store: Store, demo: DemoSettings) -> None:
    form = form_for(store, demo)
    form.discover.email.value = "jane@nowhere.example.com"
    form.discover.find_button.click()
    assert form.discover.proposal is None
    assert "Nothing found" in form.discover.results.value
    assert form.sections.smtp.fields["host"].input.value == ""


def test_in_a_live_kernel_the_lookups_run_as_a_task(store: Store, demo: DemoSettings) -> None:
    """With a loop running (a kernel's), the button starts a task and returns at once: the
    notebook stays responsive, the button is disabled until the task ends."""
    form = form_for(store, demo)
    form.discover.email.value = "demo@example.com"

    async def press() -> None:
        form.discover.find_button.click()
        task = form.discover.last_task
        assert task is not None
        assert form.discover.find_button.disabled
        assert "Looking up demo@example.com" in form.discover.status.value
        await task

    asyncio.run(press())
    assert not form.discover.find_button.disabled
    assert form.sections.smtp.fields["port"].input.value == str(demo.tls_port)
