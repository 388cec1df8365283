"""The probe panel, headless, against the demo server: probe, read the verdict, apply it to
the org form (each filled field says where its value came from), save.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from smtpd_servers import ScenarioServer

from mailkit.demo import DemoServer, DemoSettings
from mailkit.demo.misbehaving import MisbehavingPorts
from mailkit.settings import Security
from mailkit.store import Store
from mailkit.widgets import OrgForm, ProbePanel


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSettings]:
    with DemoServer(tmp_path_factory.mktemp("probe-widget") / "demo", oauth=False) as server:
        yield server.settings


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "profile.sqlite", create=True) as opened:
        yield opened


def probe_demo(panel: ProbePanel, demo: DemoSettings) -> None:
    panel.ports.value = f"{demo.tls_port},{demo.starttls_port}"
    panel.tls_ports.value = str(demo.tls_port)
    panel.probe_button.click()


def test_probe_apply_and_save(store: Store, demo: DemoSettings) -> None:
    form = OrgForm(store, ca_file=str(demo.ca_file))
    form.sections.show("outlook")  # another mode's section is showing
    smtp = form.sections.smtp.fields
    smtp["host"].load(demo.host)  # the panel probes the form's server when its box is empty
    panel = form.probe
    assert panel.apply_button.disabled  # nothing to apply before a probe
    probe_demo(panel, demo)
    assert panel.report is not None
    results = panel.results.value
    assert "mailkit-probe" in results  # the table
    assert f"Use port {demo.tls_port}, implicit TLS." in results
    assert "only after TLS" in results
    assert not panel.apply_button.disabled
    panel.apply_button.click()
    assert smtp["port"].input.value == str(demo.tls_port)
    assert smtp["security"].input.value == "implicit_tls"
    assert smtp["host"].input.value == demo.host
    # Where each value came from, beside the field.
    assert f"from the probe of {demo.host}" in smtp["host"].note.value
    assert "the recommended port" in smtp["port"].note.value
    assert "implicit_tls (certificate verified)" in smtp["security"].note.value
    assert set(panel.applied) == {"host", "port", "security"}
    assert form.sections.visible == "smtp"  # what was filled is in sight
    assert "Filled SMTP server, Port, Security" in panel.status.value
    form.save_button.click()
    saved = store.get_org()
    assert (saved.host, saved.port, saved.security) == (
        demo.host,
        demo.tls_port,
        Security.IMPLICIT_TLS,
    )


def test_an_untrusted_certificate_is_said_in_the_forms_words(demo: DemoSettings) -> None:
    panel = ProbePanel()
    panel.host.value = demo.host
    probe_demo(panel, demo)
    results = panel.results.value
    assert "its TLS is not trusted yet" in results
    assert "&lt;" not in results  # markup of our own is markup, not text
    assert results.index("not trusted yet") < results.index("mailkit-probe")  # verdict first
    assert "“CA file”" in results
    assert "ca_file" not in results


def test_nothing_usable_leaves_apply_disabled() -> None:
    with MisbehavingPorts() as bad:
        panel = ProbePanel()
        panel.host.value = "127.0.0.1"
        panel.ports.value = str(bad.resetting())
        panel.probe_button.click()
    assert "No usable port on 127.0.0.1" in panel.results.value
    assert panel.apply_button.disabled
    assert panel.apply() == {}


@pytest.mark.parametrize(
    ("box", "value", "words"),
    [
        ("ports", "465,x", "Ports: item 2 ('x') is not a port number"),
        ("tls_ports", "x", "Implicit TLS ports: item 1 ('x') is not a port number"),
        ("ca_file", "/nonexistent/ca.pem", "CA file: /nonexistent/ca.pem does not exist"),
        ("host", " ", "SMTP server: is empty"),
    ],
)
def test_bad_input_names_the_box(box: str, value: str, words: str) -> None:
    panel = ProbePanel()
    panel.host.value = "127.0.0.1"
    getattr(panel, box).value = value
    assert panel.run() is None
    assert words in panel.status.value
    assert panel.results.value == ""
    assert panel.apply_button.disabled


HOSTILE_GREETING = b"220-<img src=x onerror=alert(1)> \x1b[2J\x1b[31mred\x07\r\n"


@pytest.mark.smtp_scenario("hostile_reply", verb="GREETING", data=HOSTILE_GREETING)
def test_a_hostile_greeting_is_shown_as_text(scenario_server: ScenarioServer) -> None:
    """Markup and terminal escapes a server sends are shown, never run or obeyed."""
    panel = ProbePanel()
    panel.host.value = "127.0.0.1"
    panel.ports.value = str(scenario_server.port)
    panel.ca_file.value = str(scenario_server.ca_file)
    report = panel.run()
    assert report is not None
    (port,) = report.ports
    assert "\x1b" not in port.greeting
    assert "\x07" not in port.greeting
    assert "<img" in port.greeting  # kept as the server said it ...
    assert "<img" not in panel.results.value  # ... and escaped in the panel
    assert "&lt;img src=x onerror=alert(1)&gt;" in panel.results.value
    assert "\x1b" not in report.text()
