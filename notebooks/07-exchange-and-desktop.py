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
# # Exchange, the desktop hand-off, WebDAV and feature routes
#
# The senders the older settings screens offered besides SMTP: **Exchange Web Services** (on
# premises), the **desktop mail client** (Outlook, "Other" = MAPI, Lotus Notes), and the legacy
# **Exchange WebDAV**, which is migrated away. Then the product's **feature routes** (requests,
# purchase orders, work orders), each tested the way its mail will really leave.
#
# Everything runs against the local demo server: its fake Exchange speaks real EWS SOAP with
# NTLM, so the same client library that talks to a real Exchange talks to it.

# %%
from datetime import date

import mailkit
from mailkit.demo import accounts_table, ensure_running
from mailkit.legacy import migrate, report_text
from mailkit.routes import route_test
from mailkit.secrets import secret_key
from mailkit.testsend import send_route_test
from mailkit.widgets import PassphrasePanel, RoutesPanel, TestSendPanel

demo = ensure_running()
password = demo.settings.password_secret()
accounts = accounts_table()
accounts[accounts["key"].str.startswith("ews")][["key", "user", "shows", "reply"]]

# %% [markdown]
# ## The profile
#
# The tests below are recorded in the profile `demo-exchange`; the demo password goes to its
# secret store, never into the settings. If the panel asks for a passphrase, type it, press
# **Unlock** and run the cells below again.

# %%
where = mailkit.locate_profile("demo-exchange")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock

# %%
unlock.require()  # stops here while the secrets file is locked
secrets.set_password(secret_key(store.profile_name, "org"), password, password)
print("Secrets are kept in", secrets.name)

# %% [markdown]
# ## 1. Exchange Web Services
#
# Mode `exchange_ews` sends with EWS `CreateItem` (*SendAndSaveCopy*) at the server's EWS URL,
# signing in with NTLM. The transcript shows every HTTP exchange — the NTLM messages and the
# Authorization headers hidden.

# %%
ews_org = demo.org(mode="exchange_ews", ews_url=demo.settings.ews_url, auth="ntlm")
store.set_org(ews_org)
result = mailkit.send_test(
    ews_org, to=["bob@example.com"], secrets=secrets, profile=store.profile_name, store=store
)
print("EWS test accepted:", result.ok)
result

# %% [markdown]
# An account that may sign in but not send as the mailbox in From: Exchange answers
# `ErrorSendAsDenied`, and the diagnosis says which right is missing and how to grant it.

# %%
denied = demo.org(
    mode="exchange_ews",
    ews_url=demo.settings.ews_url,
    auth="ntlm",
    username="sendas-denied@example.com",
    from_address="sendas-denied@example.com",
)
refused = mailkit.send_test(denied, to=["bob@example.com"], password=password)
assert refused.diagnosis is not None
print(refused.diagnosis.to_text())

# %% [markdown]
# ## 2. The desktop hand-off
#
# In modes `outlook`, `mapi` and `lotus_notes` the workstation's mail client sends, not mailkit.
# A test writes the test message as an unsent draft (`X-Unsent: 1`: Outlook opens it ready to
# send) into the folder for test drafts, and says what it can know about this machine. The
# panel's **Open it** button hands the file to the system's mail program.

# %%
drafts = where.path.with_name(f"{where.name}-drafts")
drafts.mkdir(exist_ok=True)
outlook_org = demo.org(mode="outlook", eml_folder=str(drafts))
handoff = mailkit.send_test(outlook_org, to=["bob@example.com"])
print("written:", handoff.ok, handoff.eml_path)
for note in handoff.notes:
    print("-", note)
handoff

# %%
with open(handoff.eml_path or "", encoding="utf-8", newline="") as draft:
    head = draft.read().split("\r\n\r\n")[0]
print("\n".join(line for line in head.splitlines() if line.startswith(("X-", "To:", "Import"))))

# %%
desktop_panel = TestSendPanel(outlook_org, secrets=secrets, profile=store.profile_name)
desktop_panel

# %% [markdown]
# ## 3. WebDAV migrated away
#
# Exchange 2000/2003 WebDAV cannot send with any current Exchange. `migrate` turns it into EWS
# at the server's standard address — or into Microsoft Graph where the server is Exchange
# Online — and lists each move as a row to review.

# %%
on_premises = migrate(
    {
        "SenderProtocol": "ExchangeWebDav",
        "SMTPServerName": "exchange.corp.example",
        "FromAddress": "it@corp.example",
    }
)
print(report_text(on_premises))

# %%
online = migrate({"SenderProtocol": "ExchangeWebDav", "SMTPServerName": "outlook.office365.com"})
print("Exchange Online becomes:", online.org.mode)
online.report

# %% [markdown]
# ## 4. Feature routes
#
# Each route sends from its own sender (the organisation or a user) to its recipients, with its
# subject template filled in. A route test sends exactly that, through the demo SMTP server.

# %%
routes_org = demo.org(
    routes={
        "work_orders": {"enabled": True, "recipients": ["maintenance@example.com"]},
        "purchase_orders": {"enabled": True, "recipients": ["buyer@example.com"]},
        "requests": {"recipients": ["desk@example.com"]},
    }
)
store.set_org(routes_org)
test = route_test(routes_org, "work_orders", store.users(), today=date.today())
print("work_orders sends as", test.sender, "to", ", ".join(test.recipients))
print("subject:", test.subject)
routed = send_route_test(
    routes_org, "work_orders", store.users(), secrets=secrets, profile=store.profile_name
)
print("route test accepted:", routed.ok)

# %% [markdown]
# The routes panel shows every route and tests one with its **Test** button:

# %%
routes_panel = RoutesPanel(
    store.get_org, store.users, secrets=secrets, profile=store.profile_name, store=store
)
routes_panel
