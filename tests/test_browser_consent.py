"""Signing in at the demo's fake provider, in a real browser (Debian's Chromium).

A person's browser does not trust the demo CA. The consent page must therefore open without a
certificate warning (it is served on plain HTTP on loopback, a secure context), show who signs
in and what the app may do, and offer Approve and Deny; pressing one sends the browser back to
the app, which finishes the sign-in (or reports the refusal). Tokens still travel over HTTPS
with the demo CA only. Screenshots land in artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_browser import chromium_page, save_screenshot

from mailkit.demo import MICROSOFT_CLIENT_ID, DemoServer
from mailkit.errors import OAuthError
from mailkit.oauth import GoogleClientConfig, GoogleOAuth
from mailkit.oauth.google import GMAIL_SEND_SCOPE
from mailkit.oauth.microsoft import GRAPH_SEND_SCOPE, MicrosoftOAuth
from mailkit.outcome import Cause
from mailkit.secrets import MemorySecretStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CERTIFICATE_WARNING = re.compile(r"not private|NET::ERR_CERT|certificate", re.IGNORECASE)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoServer]:
    with DemoServer(tmp_path / "demo") as server:
        yield server


def test_google_consent_page_opens_without_a_warning_and_approve_signs_in(
    demo: DemoServer,
) -> None:
    settings = demo.settings
    config = GoogleClientConfig.load(settings.google_client_config())
    google = GoogleOAuth(config, secrets=MemorySecretStore(), ca_file=settings.ca_file)
    consent = google.start_loopback([GMAIL_SEND_SCOPE], timeout=90)
    assert settings.oauth_browser_url is not None
    assert consent.url.startswith(settings.oauth_browser_url + "/o/oauth2/auth?")

    with chromium_page(timeout=30) as page:  # no ignore_https_errors: the CA is not trusted
        response = page.goto(consent.url)
        assert response is not None
        assert response.status == 200
        assert page.url.startswith(settings.oauth_browser_url)
        body = page.locator("body").inner_text()
        assert not CERTIFICATE_WARNING.search(body), body
        assert "mailkit demo wants to use your account" in body
        assert page.locator("#account").inner_text() == "demo@example.com"
        assert "Send email on your behalf (Gmail API)" in page.locator("#scopes").inner_text()
        deny = page.get_by_role("button", name="Deny")
        approve = page.get_by_role("button", name="Approve")
        assert deny.is_visible()
        assert approve.is_visible()
        save_screenshot(page, "demo-consent-google")

        approve.click()
        page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/\?.*code="))
        assert not page.url.startswith(settings.oauth_browser_url)  # back at the app
        page.locator("body").filter(has_text="Sign-in is complete").wait_for()
        save_screenshot(page, "demo-consent-google-back-at-the-app")

    # The code was exchanged for tokens over HTTPS, trusting the demo CA only.
    token = consent.wait(30)
    assert demo.oauth.check_token(token.access_token.reveal(), [GMAIL_SEND_SCOPE]) == (
        "demo@example.com"
    )


def test_microsoft_consent_page_deny_reaches_the_app_as_a_refusal(demo: DemoServer) -> None:
    settings = demo.settings
    microsoft = MicrosoftOAuth(
        MICROSOFT_CLIENT_ID,
        secrets=MemorySecretStore(),
        tenant="demo-tenant",
        authority_base=settings.oauth_url or "",
        ca_file=settings.ca_file,
    )
    consent = microsoft.start_loopback([GRAPH_SEND_SCOPE], timeout=90)
    assert settings.oauth_browser_url is not None
    assert consent.url.startswith(settings.oauth_browser_url + "/demo-tenant/oauth2/v2.0/")

    with chromium_page(timeout=30) as page:
        response = page.goto(consent.url)
        assert response is not None
        assert response.status == 200
        assert not CERTIFICATE_WARNING.search(page.locator("body").inner_text())
        assert "Microsoft" in page.title()
        save_screenshot(page, "demo-consent-microsoft")
        page.get_by_role("button", name="Deny").click()
        # response_mode=form_post: the fake's page posts the refusal to the app by itself.
        page.wait_for_url(re.compile(r"^http://localhost:\d+/?$"))
        page.locator("body").wait_for()

    with pytest.raises(OAuthError) as refused:
        consent.wait(30)
    assert refused.value.diagnosis.cause is Cause.CONSENT_DENIED
    assert demo.oauth.issued_tokens() == []
