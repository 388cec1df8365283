# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # OAuth for Microsoft 365: device code, browser sign-in, SMTP and Graph
#
# Microsoft is ending **basic authentication** (a user name and password) for SMTP AUTH in
# Exchange Online: tenants have it switched off by default, and sends that sign in with a
# password are refused (`535 5.7.139 Authentication unsuccessful, basic authentication is
# disabled`). Business software that sends as a Microsoft 365 mailbox needs **OAuth**:
#
# * over SMTP to `smtp.office365.com:587` with `AUTH XOAUTH2` and the permission
#   `https://outlook.office.com/SMTP.Send` (SMTP AUTH must still be enabled for the mailbox);
# * or through **Microsoft Graph** `sendMail` with the permission `Mail.Send` — no SMTP AUTH
#   at all, and the recommended way.
#
# This notebook walks through the sign-in and test-sends with the token. Without
# configuration it runs against the demo: a **fake Microsoft** on this machine (sign-in, device
# codes, tokens, Graph) and the demo mail server.

# %%
import os

import mailkit
from mailkit.demo import DEMO_TENANT, MICROSOFT_CLIENT_ID, ensure_running, visit
from mailkit.oauth import MICROSOFT_AUTHORITY_BASE
from mailkit.widgets import MicrosoftWalkthrough

demo = ensure_running()  # the demo mail server and its fake Microsoft

# %% [markdown]
# ## 1. The app registration
#
# In the **Microsoft Entra admin center → App registrations → New registration**:
#
# 1. A name; *Supported account types*: this organisation only (single tenant) is usual.
# 2. **Authentication → Add a platform → Mobile and desktop applications**, redirect URI
#    `http://localhost` (for the browser sign-in), and **Allow public client flows: Yes** (for
#    the device code). A notebook is a *public client*: it keeps no client secret.
# 3. **API permissions → Add a permission**: *Microsoft Graph → Delegated → Mail.Send*, and for
#    SMTP *APIs my organization uses → Office 365 Exchange Online → SMTP.Send*. Grant admin
#    consent if users may not consent themselves.
# 4. Copy the **Application (client) id** and the **Directory (tenant) id** from *Overview*.
#
# Give them as `MAILKIT_MICROSOFT_CLIENT_ID` and `MAILKIT_MICROSOFT_TENANT` before starting
# Jupyter (or as `oauth_client_id` / `oauth_tenant` in the org settings); without them this
# notebook uses the demo's fake app. Tokens go to a secret store: an in-memory one here — for
# real use, `mailkit.default_secret_store()` keeps them in the operating system's keyring.

# %%
client_id = os.environ.get("MAILKIT_MICROSOFT_CLIENT_ID") or None
on_demo = client_id is None
if on_demo:
    org = demo.org(  # the demo server, its fake Graph, and the fake's demo app
        api_url=demo.settings.api_url, oauth_client_id=MICROSOFT_CLIENT_ID, oauth_tenant=DEMO_TENANT
    )
    authority_base = demo.settings.oauth_url  # the fake's stand-in for login.microsoftonline.com
    ca_file = demo.settings.ca_file  # its certificate comes from the demo's own CA
else:
    tenant = os.environ.get("MAILKIT_MICROSOFT_TENANT") or "organizations"
    org = mailkit.OrgSettings(oauth_client_id=client_id, oauth_tenant=tenant)
    authority_base, ca_file = MICROSOFT_AUTHORITY_BASE, None
secrets = mailkit.MemorySecretStore()  # for real use: mailkit.default_secret_store()
print("App:", "the demo's fake Microsoft" if on_demo else f"{client_id} in {org.oauth_tenant}")

# %% [markdown]
# ## 2. The walkthrough
#
# Step by step: the app id and tenant, **what the token is for** (Graph `Mail.Send` or SMTP
# `SMTP.Send`; MSAL adds `offline_access` for the refresh token), **how to sign in**, the code
# or link, the status, a test send and revoke.
#
# * **Device code** works anywhere — a server, Binder: the walkthrough shows a short code; open
#   https://microsoft.com/devicelogin on any device, enter it and sign in. Some tenants block
#   the device-code flow with Conditional Access (it is abused for phishing); the walkthrough
#   then shows that diagnosis and offers the browser sign-in.
# * **Browser on this computer** (authorization code with PKCE and a loopback redirect) works
#   when the kernel runs where the browser runs: the answer is posted back to `127.0.0.1`.

# %%
microsoft = MicrosoftWalkthrough(secrets, org=org, authority_base=authority_base, ca_file=ca_file)
microsoft

# %% [markdown]
# ## 3. Sign in with a device code, for Graph
#
# With a real app, sign in with the widget above. On the demo the next cell presses **Sign
# in**; the fake approves the code by itself (as you would at the device-login page), and the
# walkthrough, which polls in the background, finishes.

# %%
if on_demo:
    microsoft.purpose.value = "microsoft_graph"  # step 2: Graph, Mail.Send
    microsoft.method.value = "device_code"  # step 3: works anywhere
    microsoft.start_button.click()
    microsoft.join(timeout=60)
else:
    print("Sign in with the widget above, then run the next cells.")
print(microsoft.signed_in.to_text() if microsoft.signed_in else "Not signed in yet.")

# %% [markdown]
# ## 4. A test send through Microsoft Graph
#
# mailkit finds the stored token cache by itself and lets MSAL refresh the token before a send
# when it is about to expire. The transcript shows the HTTP request — `Authorization` redacted.

# %%
microsoft.test.to.value = "you@example.org"
microsoft.test.send_button.click()  # what pressing Send test does
await microsoft.test.last_task
graph_result = microsoft.test.result
graph_result

# %%
graph_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "code", "text"]]

# %% [markdown]
# ## 5. Sign in with the browser, for SMTP
#
# A token is issued for one resource, so SMTP needs a sign-in of its own. This time with the
# browser sign-in (the demo's headless browser posts the answer back to the walkthrough's
# listener); the new token cache replaces the first.

# %%
if on_demo:
    microsoft.purpose.value = "smtp"  # step 2: SMTP.Send for smtp.office365.com
    microsoft.method.value = "loopback"  # step 3: the browser on this computer
    microsoft.start_button.click()
    visit(microsoft.sign_in_url, demo.settings.ca_file)  # sign in; the answer is posted back
    microsoft.join(timeout=60)
else:
    print("Choose SMTP in step 2 of the widget, sign in again, then run the next cells.")
print(microsoft.signed_in.to_text() if microsoft.signed_in else "Not signed in yet.")

# %%
microsoft.test.send_button.click()
await microsoft.test.last_task
smtp_result = microsoft.test.result
smtp_result

# %%
smtp_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "tls", "code", "text"]]

# %% [markdown]
# ## 6. Where the token is, and how to revoke it
#
# MSAL's token cache (refresh and access tokens) lives in the secret store only — never in the
# settings, this notebook, a transcript or a log. Microsoft offers applications no endpoint to
# revoke a refresh token: **Revoke** deletes the tokens here and says how to end the grant on
# the server (the user removes the app at https://myapps.microsoft.com, or an administrator
# revokes the user's sessions in the Entra admin center).

# %%
print(microsoft.revoke())  # what pressing Revoke does

# %% [markdown]
# A send after revoking: there is no token any more, and the diagnosis says what to do.

# %%
microsoft.test.send_button.click()
await microsoft.test.last_task
print(microsoft.test.result.diagnosis.to_text())

# %% [markdown]
# Next: `04-oauth-google.ipynb` for Gmail, or `03-audit-users.ipynb` to find the users still
# signing in to Microsoft 365 with a password.
