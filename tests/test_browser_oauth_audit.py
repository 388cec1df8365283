"""The Google OAuth walkthrough and the audit dashboard in a real JupyterLab, in Chromium.

The headless notebook tests prove the notebooks run and save no secret; these prove what a
person sees and does in the browser: widget state synced to JupyterLab's widget manager,
buttons and radio buttons that reach the kernel, and a page (and a notebook saved from it,
widget state included) without a token.

* ``04-oauth-google.ipynb``: Run All, then read what the run left on the page (two sign-ins,
  two green test sends, the walkthrough's revoked status). Then, in the walkthrough itself: pick
  the Gmail API and the loopback sign-in, press Sign in, see the link and the waiting status,
  follow the link in Chromium to the fake Google's consent page and press Approve (the browser
  goes back to the kernel's loopback listener), see the signed-in status naming the secret
  store, press Send test and see the green card, press Revoke and see the revoked status,
  save with Ctrl+S.
  The test starts the demo server itself (the notebook's ``ensure_running()`` finds it), so it
  holds the fake's hooks: every token the fake issued and every PKCE verifier it received are
  searched for in the page's HTML and in the saved notebook, and the fake confirms that the
  token signed in from the browser was revoked. The consent page is plain HTTP on loopback, so
  Chromium opens it without trusting the demo's CA; the kernel's token calls verify the CA over
  HTTPS. What cannot be seen from the browser is the access token refresh: the kernel does
  it before a send, and only the send's outcome shows.
* ``03-audit-users.ipynb``: Run All, pick "critical" in the dashboard's Severity drop-down and
  see the table, the count and the user list narrow to critical findings; click a user in the
  list and see the form open with that user's code and, read from the profile on disk, email.

Screenshots land in artifacts/browser/. In CI a missing Chromium is a failure, never a skip.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

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
    save_notebook,
    save_screenshot,
    wait_for_widget_text,
    widget_texts,
)

from mailkit.demo import DemoServer
from mailkit.demo.oauth import TokenRejected
from mailkit.store import Store

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.timeout(300)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CANARY = "canary-Browser-OAuth-41k"
#: Widget state is saved with the notebook, so the saved file's search covers the widgets too.
SAVE_WIDGET_STATE = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: What the fake provider's tokens and authorization codes start with.
FAKE_PREFIXES = ("fake-at-", "fake-rt-", "fake-code-")
ACCOUNT = "demo@example.com"

GOOGLE_NOTEBOOK = "04-oauth-google.ipynb"
WALKTHROUGH_CELL = 5  # google = GoogleWalkthrough(...)
API_SIGN_IN_CELL, API_SEND_CELL, SMTP_SIGN_IN_CELL, SMTP_SEND_CELL = 7, 9, 12, 13
GMAIL_API = "Gmail API: gmail.send (recommended)"
LOOPBACK = "This computer: the browser comes back to the notebook (loopback)"
REVOKED = "Not signed in (the consent was revoked)."
GOOGLE_REVOKED = "Google revoked the grant"

AUDIT_NOTEBOOK = "03-audit-users.ipynb"
DASHBOARD_CELL = 21  # dashboard = AuditDashboard(...)
#: How long an expectation waits for the kernel's widget updates to reach the page.
WAIT_MS = 30_000
COUNT = re.compile(r"(\d+) of (\d+) finding\(s\), for (\d+) user\(s\)")


def leak_forms(secret: str) -> list[str]:
    """The secret and its base64 forms, alone and inside an XOAUTH2 string."""
    forms = [secret]
    for blob in (secret.encode(), f"user={ACCOUNT}\x01auth=Bearer {secret}\x01\x01".encode()):
        encoded = base64.b64encode(blob).decode()
        forms += [encoded, encoded.rstrip("=")]
    return forms


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    for secret in secrets:
        for form in leak_forms(secret):
            assert form not in text, f"a secret reached {where} as {form!r}"
    for prefix in FAKE_PREFIXES:
        assert prefix not in text, f"a {prefix}… value reached {where}"


def lab_env(tmp_path: Path) -> dict[str, str]:
    work = tmp_path / "work"
    work.mkdir()
    return {
        "MAILKIT_DEMO_PASSWORD": CANARY,
        "XDG_DATA_HOME": str(tmp_path / "data"),  # where ensure_running() finds the demo
        "MAILKIT_NOTEBOOK_DIR": str(work),
        # The audit notebook's profile keeps its secrets in the encrypted file beside it:
        "MAILKIT_SECRETS_PASSPHRASE": "browser-test-passphrase",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",  # never the real keyring
        "MAILKIT_PROFILE": "",
        # The demo, even on a machine configured for a real provider:
        "MAILKIT_GOOGLE_CLIENT_JSON": "",
        "MAILKIT_MICROSOFT_CLIENT_ID": "",
    }


def source_of(page: Page, index: int) -> str:
    return cell(page, index).locator(".jp-InputArea-editor").inner_text()


def output_of(page: Page, index: int) -> str:
    return cell(page, index).locator(".jp-OutputArea").inner_text()


def show(locator: Locator) -> None:
    """Scroll the notebook to ``locator``, so the next screenshot shows it."""
    locator.first.evaluate("(el) => el.scrollIntoView({block: 'center'})")


def radio(page: Page, label: str, *, in_cell: int) -> Locator:
    return cell(page, in_cell).locator(".widget-radio-box").get_by_label(label, exact=True)


def test_google_walkthrough_in_a_real_browser(tmp_path: Path) -> None:
    root = tmp_path / "kit"
    shutil.copytree(NOTEBOOKS, root)
    env = lab_env(tmp_path)
    demo_dir = tmp_path / "data" / "mailkit" / "demo"
    with (
        DemoServer(demo_dir, password=CANARY) as server,
        jupyter_lab(root, env=env, settings=SAVE_WIDGET_STATE) as lab,
        chromium_page(timeout=60) as page,
    ):
        open_notebook(page, lab, GOOGLE_NOTEBOOK, timeout=120)
        assert not news_popup_visible(page)
        assert "GoogleWalkthrough(" in source_of(page, WALKTHROUGH_CELL)
        run_all(page, timeout=240)
        status_heading = cell(page, WALKTHROUGH_CELL).get_by_text("5. Status", exact=True)
        show(status_heading)
        save_screenshot(page, "oauth-google-after-run-all")

        # What Run All left: both sign-ins and both test sends green, then the revoke.
        api_sign_in = output_of(page, API_SIGN_IN_CELL)
        assert f"Signed in as {ACCOUNT}." in api_sign_in
        assert "Scopes: https://www.googleapis.com/auth/gmail.send." in api_sign_in
        assert "(the token itself is never shown)" in api_sign_in
        api_card = cell(page, API_SEND_CELL).locator(".mailkit-card").first
        assert "Test message accepted" in api_card.inner_text()
        assert "/gmail/v1/users/me/messages/send" in output_of(page, API_SEND_CELL)
        assert "Scopes: https://mail.google.com/." in output_of(page, SMTP_SIGN_IN_CELL)
        smtp_card = cell(page, SMTP_SEND_CELL).locator(".mailkit-card").first
        assert "Signed in with AUTH XOAUTH2" in smtp_card.inner_text()
        walkthrough = widget_texts(page, in_cell=WALKTHROUGH_CELL)
        assert len(walkthrough) == 1
        assert REVOKED in walkthrough[0]
        assert GOOGLE_REVOKED in walkthrough[0]
        assert "token_missing" in walkthrough[0]  # the send after revoking: its red card
        issued_by_notebook = set(server.oauth.issued_tokens())
        assert len(issued_by_notebook) >= 4  # two sign-ins, an access and a refresh token each
        assert_no_secret(page.content(), [CANARY, *issued_by_notebook], "the page")

        # Step 2 and 3 as a person picks them: the Gmail API, the browser on this computer.
        radio(page, GMAIL_API, in_cell=WALKTHROUGH_CELL).check()
        wait_for_widget_text(
            page,
            "Scope: https://www.googleapis.com/auth/gmail.send.",
            selector=".widget-html",
            in_cell=WALKTHROUGH_CELL,
        )
        radio(page, LOOPBACK, in_cell=WALKTHROUGH_CELL).check()
        wait_for_widget_text(
            page,
            "short-lived listener on 127.0.0.1",
            selector=".widget-html",
            in_cell=WALKTHROUGH_CELL,
        )

        # Sign in: the link to Google's (the fake's) sign-in page and the waiting status.
        click_button(page, "Sign in", in_cell=WALKTHROUGH_CELL)
        link = cell(page, WALKTHROUGH_CELL).get_by_role("link", name="Open Google's sign-in page")
        link.wait_for(state="visible")
        wait_for_widget_text(
            page,
            "Waiting for the browser to come back",
            selector=".widget-html",
            in_cell=WALKTHROUGH_CELL,
        )
        href = link.get_attribute("href") or ""
        assert href.startswith(server.oauth.browser_url + "/"), href
        assert "code_challenge_method=S256" in href
        assert "redirect_uri=http%3A%2F%2F127.0.0.1" in href
        assert link.get_attribute("target") == "_blank"
        assert cell(page, WALKTHROUGH_CELL).get_by_role("button", name="Cancel").is_visible()
        show(link)
        save_screenshot(page, "oauth-google-sign-in-link")

        # The link opens a tab on the consent page; Approve sends it to the kernel's listener.
        with page.context.expect_page() as opened:
            link.click()
        consent = opened.value
        consent.get_by_role("button", name="Approve").click()
        consent.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/\?.*code="))
        back = consent.locator("body")
        back.filter(has_text="Sign-in is complete").wait_for()
        assert "return to the notebook" in back.inner_text()
        save_screenshot(consent, "oauth-google-back-at-the-listener")
        consent.close()

        status = wait_for_widget_text(
            page, f"Signed in as {ACCOUNT}.", selector=".widget-html", in_cell=WALKTHROUGH_CELL
        )
        assert "Scopes: https://www.googleapis.com/auth/gmail.send." in status
        assert "Stored in the in-memory secret store" in status
        assert "google_oauth_token (the token itself is never shown)" in status
        assert link.count() == 0  # the link is gone with the finished sign-in
        texts = widget_texts(page, in_cell=WALKTHROUGH_CELL)[0]
        assert GOOGLE_REVOKED not in texts  # the old revoke's status went with the new sign-in
        assert REVOKED not in texts
        signed_in_in_browser = set(server.oauth.issued_tokens()) - issued_by_notebook
        assert len(signed_in_in_browser) == 2  # an access and a refresh token
        assert_no_secret(page.content(), [CANARY, *signed_in_in_browser], "the page")
        show(status_heading)
        save_screenshot(page, "oauth-google-signed-in")

        # A test send with the new token, through the Gmail API: the green card.
        fill_text(page, "Mail To", "browser@example.org", in_cell=WALKTHROUGH_CELL)
        click_button(page, "Send test", in_cell=WALKTHROUGH_CELL)
        green = cell(page, WALKTHROUGH_CELL).locator(
            ".mailkit-card", has_text="Test message accepted"
        )
        green.wait_for(timeout=60_000)
        assert "Gmail message id" in green.inner_text()
        assert "token_missing" not in widget_texts(page, in_cell=WALKTHROUGH_CELL)[0]
        mailbox = server.mailbox()
        to_browser = mailbox[mailbox["to"].astype(str).str.contains("browser@example.org")]
        assert len(to_browser) == 1, mailbox
        assert to_browser["via"].iloc[0] == "gmail_api"  # step 2's choice, not SMTP
        show(green)
        save_screenshot(page, "oauth-google-green-card")

        # Revoke, pressed: the status says so, the green card goes (it described the token
        # now revoked), and the fake no longer takes the token.
        click_button(page, "Revoke", in_cell=WALKTHROUGH_CELL)
        revoked = wait_for_widget_text(
            page, GOOGLE_REVOKED, selector=".widget-html", in_cell=WALKTHROUGH_CELL
        )
        assert "the stored token and client secret were deleted" in revoked
        wait_for_widget_text(page, REVOKED, selector=".widget-html", in_cell=WALKTHROUGH_CELL)
        green.wait_for(state="detached", timeout=WAIT_MS)
        access_tokens = [t for t in signed_in_in_browser if t.startswith("fake-at-")]
        assert len(access_tokens) == 1
        with pytest.raises(TokenRejected) as rejected:
            server.oauth.check_token(
                access_tokens[0], ["https://www.googleapis.com/auth/gmail.send"]
            )
        assert rejected.value.reason == "revoked"
        show(cell(page, WALKTHROUGH_CELL).get_by_role("button", name="Revoke"))
        save_screenshot(page, "oauth-google-revoked")

        save_notebook(page)
        html = page.content()
        issued = server.oauth.issued_tokens()
        verifiers = list(server.oauth.received_verifiers)

    # Three PKCE sign-ins (paste-back, loopback, the browser's), each with tokens: the searches
    # below cannot pass vacuously.
    assert len(verifiers) == 3
    assert len(issued) >= 6
    secrets = [CANARY, *issued, *verifiers]
    assert_no_secret(html, secrets, "the page")
    saved_text = (root / GOOGLE_NOTEBOOK).read_text(encoding="utf-8")
    saved = json.loads(saved_text)
    outputs = json.dumps([c.get("outputs", []) for c in saved["cells"]])
    assert f"Signed in as {ACCOUNT}" in outputs  # the save wrote the run's outputs
    state = json.dumps(saved["metadata"]["widgets"][WIDGET_STATE]["state"])
    # And the widgets as the browser left them: its Mail To and its revoke.
    assert "browser@example.org" in state
    assert GOOGLE_REVOKED in state
    assert_no_secret(saved_text, secrets, "the saved notebook")


def test_audit_dashboard_in_a_real_browser(tmp_path: Path) -> None:
    root = tmp_path / "kit"
    shutil.copytree(NOTEBOOKS, root)
    env = lab_env(tmp_path)
    with jupyter_lab(root, env=env) as lab, chromium_page(timeout=60) as page:
        from playwright.sync_api import expect  # chromium_page made sure it is installed

        open_notebook(page, lab, AUDIT_NOTEBOOK, timeout=120)
        assert "AuditDashboard(" in source_of(page, DASHBOARD_CELL)
        run_all(page, timeout=240)
        board = cell(page, DASHBOARD_CELL)
        show(board.get_by_text("Audit", exact=True))
        save_screenshot(page, "audit-after-run-all")

        severity = board.locator(".widget-dropdown").get_by_label("Severity", exact=True)
        users = board.locator(".widget-select").get_by_label("Users", exact=True)
        count = board.locator(".widget-html").filter(has_text=COUNT)
        rows = board.locator("table tbody tr")

        before = COUNT.search(count.inner_text())
        assert before is not None
        total = int(before[2])
        assert int(before[1]) == total  # no filter yet
        assert set(severities(rows)) >= {"critical", "warning"}  # a filter has rows to drop

        # Severity: critical, picked from the drop-down as a person does.
        critical = severity.locator("option").filter(
            has_text=re.compile(r"^critical\s\(\d+\sfindings?\)$")
        )
        label = critical.inner_text().replace("\xa0", " ")
        expected = int(label.split("(")[1].split()[0])  # "critical (12 findings)"
        assert 0 < expected < total
        severity.select_option(label=label)
        narrowed = re.compile(rf"(^|\D){expected} of {total} finding\(s\)")
        expect(count).to_contain_text(narrowed, timeout=WAIT_MS)
        # The count, the table and the user list are updated one after the other.
        expect(rows).to_have_count(expected, timeout=WAIT_MS)  # under the table's 200 rows
        assert set(severities(rows)) == {"critical"}
        codes = list(dict.fromkeys(rows.locator("td:nth-child(1)").all_inner_texts()))
        expect(users.locator("option")).to_have_text(codes, timeout=WAIT_MS)
        shown = COUNT.search(count.inner_text())
        assert shown is not None
        assert int(shown[3]) == len(codes)
        show(severity)
        save_screenshot(page, "audit-critical-only")

        # A user, clicked in the list: the form below opens with that user.
        title = board.locator(".widget-html h4").filter(has_text=re.compile(r"^(User |New user)"))
        opened_before = title.inner_text()
        code = next(c for c in codes if opened_before != f"User {c}")
        users.locator("option").filter(has_text=re.compile(rf"^{re.escape(code)}$")).click()
        title.filter(has_text=re.compile(rf"^User {re.escape(code)}$")).wait_for()
        expect(users).to_have_value(code)
        form_code = board.locator(".widget-text").get_by_label("User code", exact=True)
        expect(form_code).to_have_value(code, timeout=WAIT_MS)
        expect(form_code).to_be_disabled()  # a stored user keeps their code
        profile = Path(env["XDG_DATA_HOME"]) / "mailkit" / "demo-acme.sqlite"  # the named one
        with Store.open(profile) as store:
            stored = store.get_user(code)
        assert stored is not None
        assert stored.email  # the form's Email below has something to show
        email = board.locator(".widget-text").get_by_label("Email", exact=True)
        expect(email).to_have_value(stored.email, timeout=WAIT_MS)
        show(title)
        save_screenshot(page, "audit-user-opened")

        assert CANARY not in page.content()


def severities(rows: Locator) -> list[str]:
    """The severity column (the third) of the findings table's rows."""
    texts: list[str] = rows.locator("td:nth-child(3)").all_inner_texts()
    return texts
