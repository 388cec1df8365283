"""A newcomer's onboarding in a real JupyterLab, in Debian's Chromium driven by Playwright.

JupyterLab is started by the test on a copy of the notebooks; the kernel starts its own demo
mail server whose password is a canary. The test does what a person does: Run All, type the
password twice, fill Mail To, press Send, wait for the dialog's rows and the green card; then
the failing account's Send and its red card with numbered fix steps. Screenshots land in
artifacts/browser/. In CI a missing Chromium is a failure, never a skip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jupyter_browser import (
    chromium_page,
    fill_text,
    jupyter_lab,
    news_popup_visible,
    open_notebook,
    run_all,
    save_screenshot,
)

pytestmark = pytest.mark.timeout(420)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "canary-Browser-Pw-93z"
MAIL_TO = "recipient@example.com (several: separate with commas)"


def test_onboarding_in_a_real_browser(tmp_path: Path) -> None:
    root = tmp_path / "kit"
    shutil.copytree(NOTEBOOKS, root)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "MAILKIT_NOTEBOOK_DIR": str(work),
    }
    with jupyter_lab(root, env=env) as lab, chromium_page(timeout=60) as page:
        open_notebook(page, lab, "01-onboarding.ipynb", timeout=120)
        assert not news_popup_visible(page)
        run_all(page, timeout=240)
        save_screenshot(page, "onboarding-after-run-all")

        # The password, typed twice as a person would, then saved: the fields empty themselves.
        fill_text(page, "type the password", CANARY)
        fill_text(page, "type it again", CANARY)
        page.locator("button.widget-button", has_text="Save password").click()
        password_inputs = page.locator(".jupyter-widgets input[type=password]")
        assert password_inputs.count() == 2  # the check below must have fields to check
        for index in range(password_inputs.count()):
            page.wait_for_function(
                "([el]) => el.value === ''", arg=[password_inputs.nth(index).element_handle()]
            )

        # The org's test send: Mail To, Send, the dialog's rows, the green card.
        mail_to = page.get_by_placeholder(MAIL_TO, exact=True).first
        mail_to.fill("newcomer@example.org")
        mail_to.blur()
        page.locator("button.widget-button", has_text="Send test").first.click()
        panel = page.locator(".widget-vbox", has=page.get_by_placeholder(MAIL_TO)).first
        panel.locator("text=RCPT TO:<newcomer@example.org>").first.wait_for(timeout=60_000)
        panel.locator(".mailkit-card", has_text="Test message accepted").first.wait_for(
            timeout=60_000
        )
        rows = panel.locator("table.mailkit-transcript tr")
        assert rows.count() > 10
        save_screenshot(page, "onboarding-green-card")

        # The failing account (Gmail's "app password required"): its red card and fix steps.
        page.locator("button.widget-button", has_text="Send test").nth(1).click()
        red = page.locator(".mailkit-card", has_text="How to fix it").first
        red.wait_for(timeout=60_000)
        assert "app_password_required" in red.inner_text()
        assert red.locator("ol li").count() >= 2
        save_screenshot(page, "onboarding-red-card")

        # Nothing on the page holds the password: not the fields, not a card, not the dialog.
        assert CANARY not in page.content()
