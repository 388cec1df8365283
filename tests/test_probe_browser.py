"""The probe panel in a real JupyterLab, in Debian's Chromium driven by Playwright.

What only a browser shows: the panel renders, its Probe button reaches the kernel through the
widget comm, and the report comes back as a table with the verdict above the fold. The kernel
starts its own demo mail server; the panel probes its two ports. In CI a missing Chromium is a
failure, never a skip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jupyter_browser import (
    cell,
    chromium_page,
    click_button,
    jupyter_lab,
    open_notebook,
    run_all,
    save_screenshot,
)

pytestmark = pytest.mark.timeout(600)

PANEL_CELL = """\
from mailkit.demo import ensure_running
from mailkit.widgets import ProbePanel

demo = ensure_running().settings
panel = ProbePanel(ca_file=str(demo.ca_file))
panel.host.value = demo.host
panel.ports.value = f"{demo.tls_port},{demo.starttls_port}"
panel.tls_ports.value = str(demo.tls_port)
panel"""


def test_the_probe_panel_in_a_real_browser(tmp_path: Path) -> None:
    root = tmp_path / "kit"
    root.mkdir()
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "cells": [
            {
                "cell_type": "code",
                "id": "probe-panel",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": PANEL_CELL,
            }
        ],
    }
    (root / "probe.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "MAILKIT_PROFILE": ""}
    with jupyter_lab(root, env=env) as lab, chromium_page(timeout=60) as page:
        open_notebook(page, lab, "probe.ipynb", timeout=120)
        run_all(page, timeout=120)
        panel = cell(page, 0)
        panel.locator("button.widget-button", has_text="Probe").wait_for(timeout=60_000)
        click_button(page, "Probe", in_cell=0)
        table = panel.locator("table.mailkit-probe")
        table.wait_for(timeout=60_000)
        headers = table.locator("th").all_inner_texts()
        assert headers[:3] == ["Port", "Outcome", "Security"]  # words, not column names
        assert table.locator("tr").count() == 3  # the heading and the two ports
        verdict = panel.get_by_text("Use port").first
        verdict.wait_for(timeout=30_000)
        assert "implicit TLS" in verdict.inner_text()
        assert panel.get_by_text("offered only after TLS").count() >= 1
        save_screenshot(page, "probe-panel")
        apply = panel.locator("button.widget-button", has_text="Apply to form")
        assert apply.is_enabled()
        apply.click()
        panel.get_by_text("not attached to a form").wait_for(timeout=30_000)
