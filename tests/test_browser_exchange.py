"""Notebook 07 (Exchange, the desktop hand-off, WebDAV, feature routes) in a real JupyterLab,
in Debian's Chromium driven by Playwright: Run All, then what a person does — the EWS result
card, a desktop test send from the panel (the green card says the client, not mailkit, sends
it, and "Open it" appears, not clicked: nothing real is launched), and a route's Test button
in the routes panel, sent through the demo server. The demo password is a canary searched for
in the saved notebook. In CI a missing Chromium is a failure, never a skip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jupyter_browser import (
    cell,
    chromium_page,
    click_button,
    fill_text,
    jupyter_lab,
    open_notebook,
    run_all,
    save_notebook,
    save_screenshot,
)
from notebook_runner import read_notebook

pytestmark = pytest.mark.timeout(600)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAME = "07-exchange-and-desktop.ipynb"
CANARY = "canary-Exchange-Pw-27k"
PASSPHRASE = "canary-Exchange-Passphrase-84m"
MAIL_TO = "recipient@example.com (several: separate with commas)"


def cell_with(snippet: str) -> int:
    """The index of notebook 07's first cell whose source holds ``snippet``."""
    cells = read_notebook(NOTEBOOKS / NAME).cells
    return next(index for index, each in enumerate(cells) if snippet in each.source)


def test_exchange_desktop_and_routes_in_a_real_browser(tmp_path: Path) -> None:
    root = tmp_path / "kit"
    shutil.copytree(NOTEBOOKS, root)
    env = {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "MAILKIT_SECRETS_PASSPHRASE": PASSPHRASE,  # unattended unlock of the secrets file
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "MAILKIT_PROFILE": "",
    }
    ews_cell = cell_with('ews_org = demo.org(mode="exchange_ews"')
    desktop_cell = cell_with("desktop_panel = TestSendPanel(")
    routes_cell = cell_with("routes_panel = RoutesPanel(")
    with jupyter_lab(root, env=env) as lab, chromium_page(timeout=60) as page:
        open_notebook(page, lab, NAME, timeout=120)
        run_all(page, timeout=240)

        # The EWS send's green card and its HTTP transcript, NTLM hidden.
        ews = cell(page, ews_cell)
        ews.locator(".mailkit-card", has_text="Test message accepted").first.wait_for(
            timeout=60_000
        )
        assert "EWS test accepted: True" in ews.inner_text()
        save_screenshot(page, "exchange-ews-green")

        # The desktop panel: Mail To, Send test, the hand-off's card, "Open it" offered.
        fill_text(page, MAIL_TO, "bob@example.com", in_cell=desktop_cell)
        click_button(page, "Send test", in_cell=desktop_cell)
        desktop = cell(page, desktop_cell)
        card = desktop.locator(".mailkit-card", has_text="written for Outlook").first
        card.wait_for(timeout=60_000)
        assert "not mailkit, sends it" in card.inner_text()
        desktop.locator("button.widget-button", has_text="Open it").wait_for(state="visible")
        save_screenshot(page, "exchange-desktop-handoff")

        # The routes panel: three routes, each with its filled-in subject; test work orders.
        routes = cell(page, routes_cell)
        routes.get_by_text("Work order TEST-0001: mailkit route test").first.wait_for()
        buttons = routes.locator("button.widget-button", has_text="Test")
        assert buttons.count() == 3
        routes.locator(".widget-hbox", has_text="work_orders").locator(
            "button.widget-button", has_text="Test"
        ).first.click()
        routes.locator(".mailkit-card", has_text="Test message accepted").first.wait_for(
            timeout=60_000
        )
        routes.locator("table.mailkit-transcript").first.wait_for()
        assert "RCPT TO:<maintenance@example.com>" in routes.inner_text()
        save_screenshot(page, "exchange-route-test")
        save_notebook(page)

    saved = (root / NAME).read_text(encoding="utf-8")
    assert CANARY not in saved
    assert PASSPHRASE not in saved
