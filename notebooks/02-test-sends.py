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
# # Test sends: the dialog, TLS, and a tour of failures
#
# The *Email Test Utility* of business software, done well: one call sends the multi-language
# test message and returns the whole SMTP dialog as a table — passwords and tokens hidden — or a
# diagnosis that says what went wrong, in which phase, and how to fix it.

# %%
import pandas as pd

import mailkit
from mailkit.demo import accounts_table, ensure_running, message_text
from mailkit.widgets import PassphrasePanel

demo = ensure_running()
org = demo.org()  # the demo server's settings, STARTTLS on its submission port
password = demo.settings.password_secret()
accounts_table()[["user", "shows", "cause"]]

# %% [markdown]
# ## What the server offers
#
# Before any send, a probe asks the server on each of its ports what it offers — greeting, EHLO
# extensions before and after TLS, AUTH mechanisms, TLS version, cipher and certificate — all
# ports at once, with no password and no mail sent. Its verdict names the port and security to
# use, and why (RFC 8314 prefers TLS from the first byte; AUTH only after TLS).

# %%
report = mailkit.probe(
    demo.settings.host,
    [demo.settings.tls_port, demo.settings.starttls_port],
    tls_ports=[demo.settings.tls_port],  # the demo's implicit-TLS port is not 465
    ca_file=str(demo.settings.ca_file),  # the demo's private CA, as an admin would trust it
)
columns = ["port", "outcome", "security", "recommended", "auth_before_tls", "auth_after_tls"]
columns += ["tls_version", "cert_subject", "cert_expires", "cert_verified", "total_ms"]
report.frame()[columns]

# %%
print(report.text())

# %% [markdown]
# ## The profile
#
# The sends below are recorded in the profile `demo` (the one `01-onboarding.ipynb` saves), with
# the demo server's settings and password — the password in the profile's secret store, never in
# the profile itself. The panel says which secret store is in use; if it asks for a passphrase,
# type it, press **Unlock** and run the cells below again.

# %%
where = mailkit.locate_profile("demo")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
store.set_org(org)
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock

# %%
unlock.require()  # stops here while the secrets file is locked
secrets.set_password(mailkit.secret_key(store.profile_name, "org"), password, password)
print("Secrets are kept in", secrets.name)

# %% [markdown]
# ## A successful send
#
# The result shows a green card and the dialog. `C` rows are mailkit, `S` rows the server, `I`
# rows mailkit's own notes (which AUTH mechanism it chose and why, the TLS handshake).

# %%
result = mailkit.send_test(
    store.get_org(),
    to=["you@example.org"],
    secrets=secrets,
    profile=store.profile_name,
    store=store,
)
result

# %% [markdown]
# As a DataFrame, to filter and sort:

# %%
result.transcript.to_dataframe()[["t_ms", "dir", "phase", "tls", "code", "text"]]

# %% [markdown]
# As text, in the classic `[hh:mm:ss.mmm] line` style (the AUTH line shows the user, never the
# password):

# %%
print(result.transcript.to_text())

# %% [markdown]
# TLS details and time spent per phase:

# %%
pd.Series(result.tls.as_dict())

# %%
pd.Series(result.timings, name="ms")

# %% [markdown]
# ## Other ways in
#
# Implicit TLS on the second port, CRAM-MD5, and XOAUTH2 with an OAuth token (the OAuth consent
# walkthrough is in its own notebook; the demo server accepts a demo token):

# %%
variants = {
    "implicit TLS": (demo.org(starttls=False), None),
    "CRAM-MD5": (demo.org(auth="cram_md5"), None),
    "XOAUTH2": (demo.org(auth="xoauth2"), demo.settings.token),
}
rows = []
for name, (settings, token) in variants.items():
    sent = mailkit.send_test(settings, to=["you@example.org"], password=password, token=token)
    rows.append(
        {
            "variant": name,
            "ok": sent.ok,
            "auth": sent.auth_mechanism,
            "tls": sent.tls.version if sent.tls else None,
            "ms": sent.duration_ms,
        }
    )
pd.DataFrame(rows)

# %% [markdown]
# ## A tour of failures
#
# Each failure account of the demo server fails the way a real provider does. Every failure is
# classified — phase, kind (retry later, or change something) and cause — with a plain
# explanation and numbered fix steps.

# %%
tour = []
failures = {}
for account in demo.settings.accounts:
    if account.key == "demo":
        continue
    user = demo.user(account)
    secret = mailkit.Secret("not-the-password") if account.key == "wrong-password" else password
    sent = mailkit.send_test(org, user, to=["you@example.org"], password=secret, store=store)
    failures[account.key] = sent
    d = sent.diagnosis
    tour.append(
        {
            "account": account.key,
            "phase": d.phase.value,
            "kind": d.kind.value,
            "cause": d.cause.value,
            "title": d.title,
        }
    )
pd.DataFrame(tour)

# %% [markdown]
# One of them up close — a greylisting server asks unknown senders to come back later:

# %%
failures["greylisted"]

# %%
print(failures["basic-auth-disabled"].diagnosis.to_text())

# %% [markdown]
# ## The message as received
#
# The demo server keeps what it accepted in a mailbox on disk. The body survived intact, every
# script of it:

# %%
mailbox = demo.mailbox()
mailbox[["received", "from", "to", "subject", "tls"]].tail()

# %%
print(message_text(mailbox["path"].iloc[-1]))

# %% [markdown]
# ## In the profile's history
#
# Every send above was recorded in the profile, where audits read it (a user whose last test
# failed, or who has not been tested for a while, is a finding). It survives a kernel restart:

# %%
print(f"Profile {store.profile_name!r}: {store.path}")
store.history_frame()[["at", "user_code", "ok", "phase", "cause"]].tail(12)
