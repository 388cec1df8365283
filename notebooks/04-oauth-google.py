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
# # OAuth for Gmail: sign in once, send with a token
#
# Gmail accepts two kinds of sign-in from business software:
#
# * an **app password** — a 16-letter password generated in the Google Account (it needs 2-Step
#   Verification, and Google Workspace administrators can forbid it). It is simple, but it opens
#   the whole mailbox, never expires by itself and is shared by everyone who knows it;
# * **OAuth** — the account's owner signs in at Google once and grants the application a
#   limited permission (a *scope*). The application keeps a refresh token, gets short-lived
#   access tokens from it, and sends with those: over SMTP with `AUTH XOAUTH2`, or through the
#   Gmail API. The owner can withdraw the permission at any time.
#
# This notebook walks through the OAuth sign-in, step by step, and test-sends with the token.
# Without configuration it runs against the demo: a **fake Google** on this machine that
# behaves like the real one (sign-in page, tokens, Gmail API) and the demo mail server.

# %%
import os
from pathlib import Path

import mailkit
from mailkit.demo import ensure_running, visit
from mailkit.widgets import GoogleWalkthrough

demo = ensure_running()  # the demo mail server and its fake Google

# %% [markdown]
# ## 1. The OAuth client
#
# An application signs in to Google as an *OAuth client*, created once per organisation in the
# Google Cloud Console:
#
# 1. **APIs & Services → Library**: enable the *Gmail API* (needed for the API send).
# 2. **OAuth consent screen** (Google Auth Platform): the app's name and support address, its
#    *audience* — **Internal** (only your Workspace users; no verification) or **External** —
#    and the scopes it asks for.
# 3. **Credentials → Create credentials → OAuth client ID → Desktop app**, then **download
#    the JSON**. That file holds the client id and the *client secret*.
#
# **Testing status**: an External app in *Testing* status works only for the test users listed
# on the consent screen, and its **refresh tokens expire after 7 days** — a setup that works
# today fails next week with *invalid_grant*. Publish the app (status *In production*) before
# relying on it.
#
# Give a real client by setting `MAILKIT_GOOGLE_CLIENT_JSON` to the downloaded file's path
# before starting Jupyter; without it this notebook uses the demo's fake client. Tokens go to a
# secret store: an in-memory one here, which forgets them when the kernel stops — for real use,
# `mailkit.default_secret_store()` keeps them in the operating system's keyring.

# %%
client_file = os.environ.get("MAILKIT_GOOGLE_CLIENT_JSON") or None
on_demo = client_file is None
if on_demo:
    client_config = demo.settings.google_client_config()  # the fake's public demo client
    org = demo.org(api_url=demo.settings.api_url)  # the demo server, and its fake Gmail API
    ca_file = demo.settings.ca_file  # the fake's certificate comes from the demo's own CA
else:
    client_config = Path(client_file)
    org = None  # smtp.gmail.com and the real Gmail API, as the signed-in account
    ca_file = None
secrets = mailkit.MemorySecretStore()  # for real use: mailkit.default_secret_store()
print("OAuth client:", "the demo's fake Google" if on_demo else client_file)

# %% [markdown]
# ## 2. The walkthrough
#
# Step by step: the client (upload or paste the JSON if it was not given above), **what the
# token is for**, **how to sign in**, the sign-in link, the status, a test send and revoke.
#
# **The scope** decides what the token may do:
#
# * `https://www.googleapis.com/auth/gmail.send` — *send only*, through the Gmail API.
#   **Recommended**: a leaked token can send mail but not read the mailbox.
# * `https://mail.google.com/` — full mailbox access, and the only scope Gmail's SMTP server
#   accepts for XOAUTH2. Google classes it as **restricted**: an External app that asks for it
#   must pass Google's verification and a yearly independent security assessment before
#   accounts outside its own organisation can use it (Internal apps and test users are exempt).
#   Use it only when the software can speak nothing but SMTP.
#
# **How to sign in** depends on where this notebook's kernel runs:
#
# * *This computer (loopback)*: the browser returns to a short-lived listener on
#   `127.0.0.1`, and the walkthrough finishes by itself.
# * *Remote kernel or Binder (paste-back)*: the browser ends at `http://localhost/?…` with
#   "cannot connect" — expected: copy that address from the address bar, paste it into the
#   walkthrough and press **Finish**.
#
# Either way the sign-in uses PKCE and a `state` value, so an answer cannot be replayed or
# slipped in from another sign-in.

# %%
google = GoogleWalkthrough(secrets, client_config=client_config, org=org, ca_file=ca_file)
google

# %% [markdown]
# ## 3. Sign in for the Gmail API
#
# With a real client, sign in with the widget above. On the demo the next cell does what you
# would do: press **Sign in**, approve in the browser (`visit()` is a headless browser that
# approves on the fake's sign-in page), paste the address it ended at and press **Finish**.

# %%
if on_demo:
    google.purpose.value = "gmail_api"  # step 2: the Gmail API, gmail.send
    google.method.value = "paste"  # step 3: paste-back, which works anywhere
    google.start_button.click()
    google.finish(visit(google.sign_in_url, demo.settings.ca_file))
else:
    print("Sign in with the widget above, then run the next cells.")
print(google.signed_in.to_text() if google.signed_in else "Not signed in yet.")

# %% [markdown]
# ## 4. A test send through the Gmail API
#
# The walkthrough's test panel sends the test message in the mode chosen in step 2. mailkit
# finds the stored token by itself and refreshes it first when it is about to expire. The
# transcript shows the HTTP request and answer — the `Authorization` header redacted.

# %%
google.test.to.value = "you@example.org"
google.test.send_button.click()  # what pressing Send test does
await google.test.last_task
api_result = google.test.result
api_result

# %%
api_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "code", "text"]]

# %% [markdown]
# ## 5. Sign in for SMTP with XOAUTH2
#
# The same walkthrough, now with the SMTP scope and the loopback sign-in (the demo's browser
# returns to the listener by itself, as yours would on this computer). The new token replaces
# the first one in the secret store.

# %%
if on_demo:
    google.purpose.value = "smtp"  # step 2: https://mail.google.com/ for XOAUTH2
    google.method.value = "loopback"  # step 3: this computer
    google.start_button.click()
    visit(google.sign_in_url, demo.settings.ca_file)  # approve; the browser comes back
    google.join(timeout=60)  # the walkthrough finishes in the background
else:
    print("Choose SMTP in step 2 of the widget, sign in again, then run the next cells.")
print(google.signed_in.to_text() if google.signed_in else "Not signed in yet.")

# %%
google.test.send_button.click()
await google.test.last_task
smtp_result = google.test.result
smtp_result

# %% [markdown]
# The SMTP dialog: `AUTH XOAUTH2` carries the token, so its payload is redacted.

# %%
smtp_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "tls", "code", "text"]]

# %% [markdown]
# ## 6. Where the token is, and how to revoke it
#
# The refresh token, the current access token and the client secret live in the secret store
# only — never in the settings, this notebook, a transcript or a log. **Revoke** asks Google to
# end the grant (which ends every token issued from it) and deletes what was stored. The
# account's owner can also remove the app at https://myaccount.google.com/permissions.

# %%
print(google.revoke())  # what pressing Revoke does

# %% [markdown]
# A send after revoking: there is no token any more, and the diagnosis says what to do.

# %%
google.test.send_button.click()
await google.test.last_task
print(google.test.result.diagnosis.to_text())

# %% [markdown]
# Next: `05-oauth-microsoft.ipynb` for Microsoft 365, or `02-test-sends.ipynb` for a tour of
# SMTP failures.
