"""A newcomer's onboarding in a real JupyterLab, in Debian's Chromium driven by Playwright.

JupyterLab is started by the test on a copy of the notebooks; the kernel starts its own demo
mail server whose password is a canary. There is no OS keyring (as on a Jupyter server), so the
profile's secrets go to an encrypted file, and nobody set a passphrase: Run All stops at the
unlock cell, and the test does what a person does — choose a passphrase (twice, a new file),
Unlock, Run All again; type the organisation's password twice; fill Mail To, press Send, wait
for the dialog's rows and the green card; then the failing account's red card with numbered
fix steps; then a new user with their own password, typed twice in the user form.

Then the kernel restarts. The unlock was for that kernel only, so Run All stops again, and the
existing file takes its passphrase once; after that the notebook reopens the same named
profile: the user added in the browser is still there, and so is their password. Screenshots
land in artifacts/browser/. In CI a missing Chromium is a failure, never a skip.
"""

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
    news_popup_visible,
    open_notebook,
    run_all,
    save_screenshot,
    wait_kernel_idle,
)
from notebook_runner import read_notebook
from playwright.sync_api import Page

from mailkit.profiles import open_profile
from mailkit.secret import Secret
from mailkit.secrets import FileSecretStore, secret_key

pytestmark = pytest.mark.timeout(600)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "canary-Browser-Pw-93z"
PASSPHRASE = "canary-Browser-Passphrase-61v"
MAIL_TO = "recipient@example.com (several: separate with commas)"


def cell_with(snippet: str) -> int:
    """The index of the onboarding notebook's first cell whose source holds ``snippet``."""
    cells = read_notebook(NOTEBOOKS / "01-onboarding.ipynb").cells
    return next(index for index, each in enumerate(cells) if snippet in each.source)


def unlock(page: Page, *, new: bool) -> None:
    """Run All stops at the locked store; type the passphrase (twice for a new file), Unlock."""
    panel = cell(page, cell_with("PassphrasePanel(secrets)"))
    stop = cell(page, cell_with("unlock.require()"))
    stop.locator(".jp-OutputArea-output", has_text="press Unlock").first.wait_for(timeout=60_000)
    confirm = panel.get_by_placeholder("type the new passphrase again", exact=True)
    assert confirm.is_visible() is new  # a new file asks twice, an existing one once
    fill_text(page, "the passphrase of the secrets file", PASSPHRASE)
    if new:
        fill_text(page, "type the new passphrase again", PASSPHRASE)
    click_button(page, "Unlock")
    panel.get_by_text("Unlocked for this kernel").wait_for(timeout=30_000)


def restart_kernel(page: Page) -> None:
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Kernel").click()
    page.locator(".lm-Menu-item[data-command='kernelmenu:restart']").click()
    page.locator(".jp-Dialog button", has_text="Restart").click()
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=30_000)
    wait_kernel_idle(page, timeout=60)


def test_onboarding_in_a_real_browser(tmp_path: Path) -> None:
    root = tmp_path / "kit"
    shutil.copytree(NOTEBOOKS, root)
    data = tmp_path / "data"
    env = {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(data),  # the profiles, and a demo server of the kernel's own
        "MAILKIT_SECRETS_PASSPHRASE": "",  # nobody set one: the passphrase panel asks
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # no OS keyring here
        "MAILKIT_PROFILE": "",
    }
    profile_cell = cell_with('locate_profile("demo")')
    users_cell = cell_with("UsersPanel(store, secrets=secrets)")
    with jupyter_lab(root, env=env) as lab, chromium_page(timeout=60) as page:
        open_notebook(page, lab, "01-onboarding.ipynb", timeout=120)
        assert not news_popup_visible(page)
        run_all(page, timeout=240)
        unlock(page, new=True)
        run_all(page, timeout=240)
        save_screenshot(page, "onboarding-after-run-all")

        # The org's password, typed twice as a person would, then saved: the fields empty.
        password_cell = cell_with("PasswordPanel(secrets")
        fill_text(page, "type the password", CANARY, in_cell=password_cell)
        fill_text(page, "type it again", CANARY, in_cell=password_cell)
        click_button(page, "Save password", in_cell=password_cell)
        cell(page, password_cell).get_by_text("Password saved").wait_for(timeout=30_000)
        password_inputs = page.locator(".jupyter-widgets input[type=password]")
        assert password_inputs.count() >= 4  # the org's panel and the user form: two each
        for index in range(password_inputs.count()):
            page.wait_for_function(
                "([el]) => el.value === ''", arg=[password_inputs.nth(index).element_handle()]
            )
            # Wide enough for the placeholder: the text fits the box it is drawn in.
            fits = password_inputs.nth(index).evaluate(
                """(el) => {
                    if (el.offsetParent === null) return true;  // a hidden box shows nothing
                    const style = getComputedStyle(el);
                    const context = document.createElement("canvas").getContext("2d");
                    context.font = style.font;
                    const room = el.clientWidth - parseFloat(style.paddingLeft)
                        - parseFloat(style.paddingRight);
                    return context.measureText(el.placeholder).width <= room;
                }"""
            )
            assert fits, "a password box cuts off its placeholder"

        # The org's test send: whose account, Mail To, Send, the dialog's rows, the green card.
        mail_to = page.get_by_placeholder(MAIL_TO, exact=True).first
        mail_to.fill("newcomer@example.org")
        mail_to.blur()
        page.locator("button.widget-button", has_text="Send test").first.click()
        panel = page.locator(".widget-vbox", has=page.get_by_placeholder(MAIL_TO)).first
        panel.get_by_text("Testing the organisation's settings").first.wait_for()
        panel.locator("text=RCPT TO:<newcomer@example.org>").first.wait_for(timeout=60_000)
        panel.locator(".mailkit-card", has_text="Test message accepted").first.wait_for(
            timeout=60_000
        )
        rows = panel.locator("table.mailkit-transcript tr")
        assert rows.count() > 10
        headers = panel.locator("table.mailkit-transcript th").all_inner_texts()
        assert headers[:2] == ["Time (ms)", "Direction"]  # words, not t_ms / dir
        save_screenshot(page, "onboarding-green-card")

        # The failing account (Gmail's "app password required"): its red card and fix steps.
        page.locator("button.widget-button", has_text="Send test").nth(1).click()
        red = page.locator(".mailkit-card", has_text="How to fix it").first
        red.wait_for(timeout=60_000)
        assert "app_password_required" in red.inner_text()
        assert red.locator("ol li").count() >= 2
        save_screenshot(page, "onboarding-red-card")

        # A new user with their own account and password, typed twice in the user form.
        click_button(page, "New user", in_cell=users_cell)
        fill_text(page, "User code", "dora", in_cell=users_cell)
        fill_text(page, "Display name", "Dora", in_cell=users_cell)
        cell(page, users_cell).get_by_label(
            "Use user-specific email settings (override the org)"
        ).check()
        fill_text(page, "User name", "dora@example.com", in_cell=users_cell)
        users = cell(page, users_cell)
        users.get_by_text("their own account (dora@example.com)").wait_for()
        fill_text(page, "type the password", CANARY, in_cell=users_cell)
        fill_text(page, "type it again", CANARY, in_cell=users_cell)
        click_button(page, "Save user", in_cell=users_cell)
        users.get_by_text("Saved user dora and the password").wait_for(timeout=30_000)
        for box in users.locator("input[type=password]").all():
            page.wait_for_function("([el]) => el.value === ''", arg=[box.element_handle()])
        save_screenshot(page, "onboarding-user-password")
        assert CANARY not in page.content()
        assert PASSPHRASE not in page.content()

        # A kernel restart: locked again (the unlock was per kernel), the profile kept.
        restart_kernel(page)
        run_all(page, timeout=240)
        unlock(page, new=False)
        run_all(page, timeout=240)
        reopened = cell(page, profile_cell).locator(".jp-OutputArea-output").first.inner_text()
        assert "Reopened the profile 'demo'" in reopened
        assert str(data / "mailkit" / "demo.sqlite") in reopened
        assert "the organisation's server: localhost:" in reopened
        # Dora is still there, and so is her password:
        users.get_by_label("Users", exact=True).select_option(label="dora — Dora (override)")
        users.get_by_text("A password is stored.").wait_for(timeout=30_000)
        save_screenshot(page, "onboarding-after-restart")

        # Nothing on the page holds a password or the passphrase: fields, cards, the dialog.
        assert CANARY not in page.content()
        assert PASSPHRASE not in page.content()

    profile = data / "mailkit" / "demo.sqlite"
    with open_profile(profile) as store:
        dora = store.get_user("dora")
    assert dora is not None
    assert dora.username == "dora@example.com"
    vault = FileSecretStore(profile.with_suffix(".secrets"), passphrase=PASSPHRASE)
    assert vault.get(secret_key("demo", "dora")) == Secret(CANARY)
    for path in (data / "mailkit").iterdir():
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
            assert PASSPHRASE.encode() not in path.read_bytes(), path
