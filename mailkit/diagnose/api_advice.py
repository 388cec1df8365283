"""The words of a diagnosis for OAuth sign-in, token refresh and the mail APIs.

Google and Microsoft name the same problems differently; each function tailors its steps to
the provider the facts point at (the API host, the context's oauth_provider, or the provider's
own error words such as AADSTS codes).
"""

from __future__ import annotations

from mailkit.diagnose.advice import (
    Advice,
    answered,
    refs,
    wait_step,
)
from mailkit.diagnose.facts import (
    API_DISABLED,
    Facts,
)
from mailkit.diagnose.fields import S
from mailkit.outcome import Signal

_GOOGLE_CONSOLE = "Google Cloud console (console.cloud.google.com) → APIs & Services"
_ENTRA_APP = "Microsoft Entra admin center (entra.microsoft.com) → App registrations → your app"
_GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
_GOOGLE_FULL = "https://mail.google.com/"


def _scope_needed(f: Facts) -> str:
    """The scope this send needs, by provider and by SMTP or API."""
    if f.google:
        return _GMAIL_SEND if f.api else _GOOGLE_FULL
    if f.microsoft:
        return "Mail.Send (Microsoft Graph)" if f.api else "SMTP.Send (Office 365 Exchange Online)"
    return "the send scope the provider documents"


def oauth_client_invalid(f: Facts) -> Advice:
    public_off = f.says("AADSTS7000218", "client_assertion", "client_secret")
    if f.microsoft:
        explanation = (
            f"{answered(f)}: it does not accept this app (client id) for this sign-in."
            + (
                " The app registration requires a client secret, i.e. public client flows "
                "are switched off, which the device code and desktop sign-in need."
                if public_off
                else " Usually the client id or tenant is wrong, or the app registration is "
                "not set up for a desktop (public) client."
            )
        )
        fix: tuple[str, ...] = (
            f'{_ENTRA_APP} → Authentication → Advanced settings → set "Allow public client '
            'flows" to Yes, then Save.',
            f"Set {S.client_id} to the Application (client) ID from the app's Overview page, "
            f"and {S.tenant} to its Directory (tenant) ID or domain (AADSTS700016 means the "
            "app does not exist in that tenant).",
            f"{_ENTRA_APP} → Authentication → Add a platform → Mobile and desktop applications, "
            "with the redirect URI http://localhost.",
        )
    elif f.google:
        explanation = (
            f"{answered(f)}: Google does not recognise the OAuth client, or its secret does "
            "not match (the client was deleted, the secret reset, or the JSON belongs to "
            "another project)."
        )
        fix = (
            f"{_GOOGLE_CONSOLE} → Credentials: check that the OAuth client ID exists and is of "
            "type Desktop app; download its JSON again.",
            "Load that client JSON into mailkit again (client id and secret go together; "
            "resetting the secret in the console invalidates the stored one).",
            "If the client is gone, create a new OAuth client ID (Desktop app) in the project "
            "where the Gmail API is enabled.",
        )
    else:
        explanation = f"{answered(f)}: the OAuth client (id or secret) is not accepted."
        fix = (
            f"Check {S.client_id} (and the client secret, if the provider uses one) against "
            "the provider's app registration.",
            "Make sure the app is registered as a desktop / public client.",
        )
    return Advice("The OAuth app (client) is not accepted", explanation, fix, refs(f))


def oauth_redirect_mismatch(f: Facts) -> Advice:
    if f.microsoft:
        fix: tuple[str, ...] = (
            f"{_ENTRA_APP} → Authentication → Add a platform → Mobile and desktop "
            "applications → add the redirect URI http://localhost (Entra accepts any port on "
            "a loopback address), then Save.",
            "Or use the device code sign-in, which needs no redirect URI.",
        )
    elif f.google:
        fix = (
            f"{_GOOGLE_CONSOLE} → Credentials: use an OAuth client ID of type Desktop app; it "
            "accepts the loopback redirect (http://127.0.0.1 or http://localhost on any port).",
            "A Web application client accepts only the exact URIs under Authorized redirect "
            "URIs; create a Desktop app client for mailkit instead of adding ports there.",
        )
    else:
        fix = (
            "Register a loopback redirect URI (http://localhost) for the app with the provider.",
        )
    return Advice(
        "The sign-in's redirect address is not registered",
        f"{answered(f)}: the address the browser is sent back to after sign-in (a loopback "
        "address on this computer) is not registered for this app.",
        fix,
        refs(f),
    )


def consent_denied(f: Facts) -> Advice:
    admin = f.error.lower() == "consent_required" or f.says("AADSTS65001", "admin consent")
    explanation = f"{answered(f)}: " + (
        "the permission was not granted: the app needs consent that users may not give."
        if admin
        else "the sign-in was refused — Cancel or Deny was chosen on the consent page, or "
        "a policy of the organisation does not let this app in."
    )
    if f.microsoft:
        fix: tuple[str, ...] = (
            "Run the Microsoft OAuth walkthrough again and choose Accept on the permissions page.",
            f"If users may not consent: {_ENTRA_APP} → API permissions → add the delegated "
            f'permission {_scope_needed(f)} → "Grant admin consent for <tenant>" (needs an '
            "administrator).",
            "Check Enterprise applications → Consent and permissions for the tenant's user "
            "consent settings.",
        )
    elif f.google:
        fix = (
            "Run the Google OAuth walkthrough again and allow the access (tick the box for "
            "sending mail if Google shows one).",
            f"If the app's OAuth consent screen is in Testing: {_GOOGLE_CONSOLE} → OAuth "
            "consent screen → Audience → add the account under Test users.",
            "In Google Workspace an administrator may block unverified apps: Admin console → "
            "Security → Access and data control → API controls → App access control → trust "
            "the app's client id.",
        )
    else:
        fix = ("Sign in again and accept the requested permissions.",)
    return Advice("Sign-in was refused", explanation, fix, refs(f))


def device_code_blocked(f: Facts) -> Advice:
    return Advice(
        "The tenant blocks device-code sign-in",
        f"{answered(f)}: a Conditional Access policy of the Microsoft 365 tenant blocks the "
        "device code flow (AADSTS53003), which is often done because device codes are abused "
        "for phishing. The account and app are fine; this way of signing in is not allowed.",
        (
            "Use the browser sign-in instead: in the Microsoft OAuth walkthrough choose the "
            "authorization-code flow with the loopback redirect (the browser must run on the "
            "computer that runs the notebook kernel).",
            "Or ask the tenant administrator to exclude this app or these users from the policy "
            "(Entra admin center → Protection → Conditional Access → the policy → Conditions → "
            "Authentication flows → Device code flow).",
        ),
        refs(f),
    )


def device_code_declined(f: Facts) -> Advice:
    return Advice(
        "The device-code sign-in was declined",
        "The code was entered, but the sign-in was then cancelled or declined on the "
        "device-login page, so no token was issued.",
        (
            "Run the Microsoft OAuth walkthrough again, enter the new code at "
            "https://microsoft.com/devicelogin and approve the sign-in.",
            f"Sign in with the mailbox's own account (the one in {S.username} / {S.from_address}).",
        ),
        refs(f),
    )


def device_code_expired(f: Facts) -> Advice:
    return Advice(
        "The device code expired",
        "Nobody entered the code and finished signing in before it expired (about 15 "
        "minutes), so no token was issued.",
        (
            "Run the Microsoft OAuth walkthrough again and enter the new code promptly at "
            "https://microsoft.com/devicelogin.",
        ),
        refs(f),
    )


def consent_timeout(f: Facts) -> Advice:
    loopback = f.detail in ("loopback", "auth_code")
    return Advice(
        "Sign-in was not finished in time",
        "mailkit waited for the sign-in to finish and gave up: nobody completed it in the "
        "browser in time"
        + (
            ", or the browser could not reach the loopback address on the computer that runs "
            "the notebook kernel."
            if loopback
            else "."
        ),
        (
            f"Run the {f.walkthrough} again and complete the sign-in right away.",
            "If the notebook runs on another computer (a server, Binder, JupyterHub), the "
            "loopback redirect cannot reach it: use the device code sign-in (Microsoft) or "
            "paste the redirected address back into the walkthrough (Google).",
        ),
        refs(f),
    )


def state_mismatch(f: Facts) -> Advice:
    return Advice(
        "The sign-in answer does not belong to this sign-in",
        "The address the browser came back with carries a different state value than the "
        "sign-in mailkit started. It comes from an older sign-in link or another browser tab — "
        "or someone tries to slip their own sign-in in — so mailkit did not use it.",
        (
            f"Start the {f.walkthrough} again and use only the newest sign-in link.",
            "When pasting the redirected address, paste the one from that newest sign-in.",
        ),
        refs(f),
    )


def pkce_rejected(f: Facts) -> Advice:
    return Advice(
        "The provider refused the sign-in's proof key",
        f"{answered(f)}: the code verifier (PKCE) does not match the sign-in that produced "
        "the code. The code belongs to another sign-in attempt — an older link, or the "
        "walkthrough was restarted between opening the link and finishing.",
        (f"Start the {f.walkthrough} again and finish it in one go, with the newest link.",),
        refs(f),
    )


def code_invalid(f: Facts) -> Advice:
    return Advice(
        "The sign-in code is no longer valid",
        f"{answered(f)}: the authorization code has expired (they last minutes) or was "
        "already used — e.g. a redirected address pasted twice or a reloaded page.",
        (
            f"Run the {f.walkthrough} again and finish it promptly; paste each redirected "
            "address only once.",
        ),
        refs(f),
    )


def token_revoked(f: Facts) -> Advice:
    if f.google:
        why = (
            " With Google this happens when the access was removed (Google Account → Security "
            "→ Your connections to third-party apps), the password was changed, the token was "
            "unused for six months, or the app's consent screen is in Testing (refresh tokens "
            "then expire after 7 days)."
        )
        extra: tuple[str, ...] = (
            f"If the consent screen is in Testing: {_GOOGLE_CONSOLE} → OAuth consent screen → "
            "Publish app (In production), so stored tokens stop expiring after a week.",
        )
    elif f.microsoft:
        why = (
            " With Microsoft this happens when an administrator revoked the user's sessions, "
            "the password was reset, the token was unused for 90 days, or a policy now "
            "requires multi-factor sign-in (AADSTS50076) or a new consent."
        )
        extra = (
            "If it keeps happening, ask the tenant administrator whether sign-in frequency or "
            "Conditional Access policies end sessions for this app.",
        )
    else:
        why = ""
        extra = ()
    return Advice(
        "The stored sign-in is no longer valid",
        f"{answered(f)}: the stored refresh token was refused — it was revoked or has "
        f"expired, so mailkit cannot get a new access token.{why}",
        (
            f"Run the {f.walkthrough} again for {f.context.username or 'this account'}; it "
            "replaces the stored token.",
            *extra,
        ),
        refs(f),
    )


def token_expired(f: Facts) -> Advice:
    return Advice(
        "The access token has expired",
        f"{answered(f)}: the access token is past its lifetime. mailkit refreshes tokens "
        "shortly before a send, so this means the token was given without a way to refresh "
        "it, or this computer's clock is wrong.",
        (
            "Run the test again: a stored sign-in is refreshed first.",
            "Check this computer's date, time and time zone.",
            f"If it repeats, run the {f.walkthrough} again so a refresh token is stored.",
        ),
        refs(f),
    )


def api_token_invalid(f: Facts) -> Advice:
    if f.microsoft:
        detail = (
            " Graph accepts only tokens issued for https://graph.microsoft.com; a token for "
            "SMTP (https://outlook.office.com/SMTP.Send) is refused here."
        )
    elif f.google:
        detail = (
            " The Gmail API accepts tokens issued by Google for this project with the scope "
            f"{_GMAIL_SEND} (or {_GOOGLE_FULL})."
        )
    else:
        detail = ""
    return Advice(
        "The OAuth token was not accepted",
        f"{answered(f)}: the access token is not valid for it — revoked, issued for another "
        f"service, or damaged.{detail}",
        (
            f"Run the {f.walkthrough} again for the {S.mode} in use (scope {_scope_needed(f)}) "
            "and "
            "sign in as the mailbox's own account.",
            f"Check that {S.username} / {S.from_address} is the signed-in account.",
        ),
        refs(f),
    )


def insufficient_scope(f: Facts) -> Advice:
    at_consent = f.failure.signal is Signal.OAUTH
    explanation = (
        f"{answered(f)}: the app asked for a scope it is not allowed to request."
        if at_consent
        else f"{answered(f)}: the token does not carry the permission (scope) sending needs: "
        f"{_scope_needed(f)}."
    )
    if f.google:
        fix: tuple[str, ...] = (
            f"{_GOOGLE_CONSOLE} → OAuth consent screen → Data access (Scopes): add "
            f"{_GMAIL_SEND} for the Gmail API, or {_GOOGLE_FULL} for SMTP. "
            f"{_GOOGLE_FULL} is a restricted scope (Google verification for production apps); "
            f"gmail.send is enough for {S.mode} gmail_api.",
            "Run the Google OAuth walkthrough again and tick the permission to send mail on "
            "Google's consent page (unticked boxes are not granted).",
        )
    elif f.microsoft:
        fix = (
            f"{_ENTRA_APP} → API permissions → Add a permission → Microsoft Graph → Delegated "
            "permissions → Mail.Send (for SMTP: Office 365 Exchange Online → SMTP.Send) → then "
            '"Grant admin consent for <tenant>".',
            "Run the Microsoft OAuth walkthrough again so the new token carries the permission.",
        )
    else:
        fix = (f"Sign in again and grant {_scope_needed(f)}.",)
    return Advice("The token lacks the permission to send", explanation, fix, refs(f))


def api_access_denied(f: Facts) -> Advice:
    if f.google and API_DISABLED(f):
        return Advice(
            "The Gmail API is not enabled for the app's project",
            f"{answered(f)}: the Google Cloud project that owns the OAuth client has the "
            "Gmail API switched off (or never enabled).",
            (
                f"{_GOOGLE_CONSOLE} → Library → Gmail API → Enable, in the project of the "
                "OAuth client id.",
                "Wait a few minutes for it to take effect, then test again.",
            ),
            refs(f),
        )
    if f.google:
        fix: tuple[str, ...] = (
            f"Check the token's scope: {S.mode} gmail_api needs {_GMAIL_SEND}; run the Google "
            "OAuth walkthrough again if in doubt.",
            "In Google Workspace, ask the administrator whether API access for this app or "
            "user is restricted (Admin console → Security → API controls) or Gmail is off for "
            "the user.",
            f"Check in {_GOOGLE_CONSOLE} that the Gmail API is enabled for the project.",
        )
    elif f.microsoft:
        fix = (
            f"{_ENTRA_APP} → API permissions: Microsoft Graph delegated Mail.Send must be "
            'listed and granted ("Grant admin consent for <tenant>").',
            "The signed-in user needs an Exchange Online mailbox (a licence with Exchange); "
            "sending as another mailbox needs Send As permission on it.",
            "An Exchange application access policy or RBAC for Applications may limit which "
            "mailboxes the app can use; ask the Exchange administrator.",
        )
    else:
        fix = ("Check the app's API permissions and the account's access to the API.",)
    return Advice(
        "The API refused access",
        f"{answered(f)}: the token is valid but this account or app may not send through the API.",
        fix,
        refs(f),
    )


def _retry_words(f: Facts) -> str:
    return wait_step(f, "the server's Retry-After", "a minute or two")


def api_rate_limited(f: Facts) -> Advice:
    if f.microsoft:
        why = (
            " Exchange Online throttles Graph per app and mailbox (requests per 10 minutes, "
            "concurrent requests) and limits recipients per day."
        )
    elif f.google:
        why = (
            " Google limits Gmail API requests per user per second and mail per day (about "
            "500 recipients for Gmail, 2,000 for Workspace)."
        )
    else:
        why = ""
    return Advice(
        "Sending limit reached",
        f"{answered(f)}: too many requests or messages in a short time for this account or "
        f"app.{why}",
        (
            _retry_words(f),
            "Lower bulk-test concurrency and send tests to fewer recipients at once.",
        ),
        refs(f),
    )


def api_server_error(f: Facts) -> Advice:
    if f.microsoft:
        health = "Microsoft 365 admin center → Health → Service health"
    elif f.google:
        health = "the Google Workspace Status Dashboard (google.com/appsstatus)"
    else:
        health = "the provider's service status page"
    return Advice(
        "The service had a temporary problem",
        f"{answered(f)}: an error on the provider's side, not in mailkit's settings.",
        (
            _retry_words(f),
            f"If it persists, check {health}.",
        ),
        refs(f),
    )
