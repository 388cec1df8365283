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
# # Onboarding: set up outgoing email
#
# This notebook walks you from nothing to a tested, saved email setup — with no mail account at
# all: mailkit's **demo mail server** runs on this machine and behaves like a real provider,
# including its failures.
#
# You will: open a profile that stays saved, set up the organisation's settings, store the
# password (typed twice), send a test message and read the dialog, see what a failure looks like,
# add users with their own settings and their own password, test a user, and save. Run the cells
# one by one (Shift+Enter) or all at once (Run → Run All).

# %%
import mailkit
from mailkit.demo import ensure_running
from mailkit.widgets import OrgForm, PassphrasePanel, PasswordPanel, TestSendPanel, UsersPanel

demo = ensure_running()  # the server `make lab` started, or a new one in this kernel
print(demo.settings.to_text())

# %% [markdown]
# ## 1. A profile that stays
#
# Settings live in a named *profile*: one file in your data folder, reopened by name on every
# run — after a kernel restart, or by `mailkit … --profile demo` on the command line. Demo work
# goes to the profile `demo`; for your own organisation choose another name, e.g.
# `mailkit.open_profile("acme", create=True)` (or `mailkit profile init acme` in a terminal).

# %%
where = mailkit.locate_profile("demo")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
saved_org = store.get_org()
print(
    f"It holds {len(store.users())} user(s); the organisation's server:",
    f"{saved_org.host}:{saved_org.port}" if saved_org.host else "not set yet",
)

# %% [markdown]
# Passwords never go into the profile: they live in a *secret store* — the operating system's
# keyring where there is one, otherwise (a Jupyter server, a container, Binder) an encrypted file
# beside the profile, unlocked by a passphrase once per kernel. The panel says which one is in
# use; if it asks for a passphrase, type it, press **Unlock** and run the cells below again. (For
# unattended runs, set the environment variable `MAILKIT_SECRETS_PASSPHRASE` instead.)

# %%
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock

# %%
unlock.require()  # stops here while the secrets file is locked
print("Secrets are kept in", secrets.name)

# %% [markdown]
# ## 2. Find the settings from an email address
#
# Type an address and mailkit asks every source at once, each within the same time limit: its
# built-in presets (Gmail, Microsoft 365, …), the domain's own autoconfig file, Thunderbird's
# ISPDB, the domain's SRV records (RFC 6186 / RFC 8314), its MX records (mail handled by
# Microsoft 365 or Google means their servers) and Microsoft Autodiscover. Each candidate says
# which sources found it and how sure that makes mailkit. The demo server answers DNS for its
# domain, `example.com`, with SRV records for its two ports — exactly what a real domain
# publishes. (`mailkit discover demo@example.com --dns-server …` in a terminal does the same.)

# %%
found = mailkit.discover("demo@example.com", dns_server=demo.settings.dns_server)
print(found.to_text())

# %% [markdown]
# Records can be stale, so mailkit then asks the server itself: the **probe** connects to the
# candidates' ports in parallel — never sending a password or a message — and reads the
# greeting, the extensions before and after TLS, and the certificate. Its verdict prefers
# implicit TLS (RFC 8314) and a port that offers sign-in only after TLS.

# %%
smtp = found.smtp()
probed = mailkit.probe(
    smtp[0].host,
    sorted({c.port for c in smtp}),
    ca_file=str(demo.settings.ca_file),  # the demo's private CA; real servers need none
    tls_ports=[c.port for c in smtp if c.security == mailkit.Security.IMPLICIT_TLS],
)
print("Verdict: port", probed.verdict.port, probed.verdict.security)
print("\n".join(probed.verdict.reasons))

# %% [markdown]
# ## 3. The organisation's settings
#
# This is the *General Settings* form, showing what the profile holds. Its first step, **Find my
# settings**, does both of the above and fills the form: the server and the user name from
# discovery, the port and the security from the probe's verdict — and beside each field, where
# its value came from. The next cell presses the button for the demo address. Check the values,
# then **Save**: a field that is wrong shows why, next to it, and nothing is saved until
# everything is valid.

# %%
org_form = OrgForm(store, dns_server=demo.settings.dns_server, ca_file=str(demo.settings.ca_file))
org_form.discover.email.value = "demo@example.com"
org_form

# %%
org_form.discover.find_button.click()  # what pressing "Find my settings" does
await org_form.discover.last_task  # wait for the lookups and the probe
print(org_form.discover.proposal.provenance if org_form.discover.proposal else "nothing found")

# %% [markdown]
# Two things no public record can say: the demo's certificate comes from its own private CA (a
# real provider's certificate is publicly trusted), and who the mail is from. The next cell
# types them, then presses **Save**.

# %%
org_form.fields["ca_file"].load(demo.settings.ca_file)
org_form.fields["from_address"].load("demo@example.com")
org_form.fields["from_name"].load("mailkit demo")
org_form.save_button.click()
print(org_form.status.value or "saved")

# %% [markdown]
# ## 4. The password, typed twice
#
# The password is asked twice, like every good settings screen does, and goes straight into the
# secret store. The fields empty themselves after saving: the password does not stay in the
# notebook. For the demo, the next cell types it for you.

# %%
password = PasswordPanel(secrets, mailkit.secret_key(store.profile_name, "org"))
password

# %%
demo_password = demo.settings.password_secret().reveal()  # what you would type, twice
password.password.set_state({"value": demo_password})
password.confirmation.set_state({"value": demo_password})
password.save_button.click()
del demo_password
print("stored:", secrets.get(mailkit.secret_key(store.profile_name, "org")) is not None)

# %% [markdown]
# ## 5. A test send
#
# Fill in **Mail To** and press **Send**. The panel says whose settings and whose account it
# tests; the SMTP dialog appears line by line as it happens — passwords hidden — then a green
# card when the server accepted the message, or a red card that says what went wrong and how to
# fix it.

# %%
test = TestSendPanel(store.get_org, secrets=secrets, profile=store.profile_name, store=store)
test.to.value = "you@example.org"
test

# %%
test.send_button.click()  # what pressing Send does
await test.last_task  # wait for the dialog to finish
print("accepted" if test.result.ok else test.result.diagnosis.title)

# %% [markdown]
# ## 6. What a failure looks like
#
# The demo server has accounts that fail the way real providers do. `app-password@example.com`
# answers like Gmail when a normal password is used where an *app password* is required.

# %%
app_user = demo.user("app-password")
store.put_user(app_user)
secrets.set_password(
    mailkit.secret_key(store.profile_name, app_user.user_code),
    demo.settings.password_secret(),
    demo.settings.password_secret(),
)
failing = TestSendPanel(store.get_org, app_user, secrets=secrets, profile=store.profile_name)
failing.to.value = "you@example.org"
failing.send_button.click()
await failing.last_task
failing

# %% [markdown]
# ## 7. Users with their own settings and their own password
#
# Every user inherits the organisation's settings. Ticking **override** lets a user send with
# their own account — for instance an Accounting mailbox (the *bi-mode* of ERP systems:
# Outlook for everyone, SMTP for a few). Inherited values show where they come from. A user who
# signs in with their own user name needs their own password: the form takes it twice, stores it
# under that user's account in the secret store, and empties the boxes.

# %%
ann = mailkit.UserSettings(user_code="ann", display_name="Ann Lee", email="ann@example.com")
accounting = demo.user("demo").model_copy(
    update={"user_code": "accounting", "display_name": "Accounting"}
)
store.put_user(ann)
store.put_user(accounting)
users = UsersPanel(store, secrets=secrets)
users

# %% [markdown]
# For the demo, the next cell picks Accounting in the list and types its password twice into the
# user form, then presses **Save user**:

# %%
users.list.value = "accounting"
demo_password = demo.settings.password_secret().reveal()  # what Accounting's owner would type
users.form.passwords.password.set_state({"value": demo_password})
users.form.passwords.confirmation.set_state({"value": demo_password})
users.form.save_button.click()
del demo_password
print("Accounting's own password stored:", users.form.has_password)

# %% [markdown]
# ## 8. Test one user
#
# The same test, with the effective settings of the user selected above — the panel says whose.

# %%
user_test = TestSendPanel(
    store.get_org, lambda: users.selected, secrets=secrets, profile=store.profile_name, store=store
)
users.list.observe(lambda _change: user_test.describe(), names="value")  # follow the pick
user_test.to.value = "you@example.org"
user_test.send_button.click()
await user_test.last_task
print(user_test.describe())
user_test

# %% [markdown]
# ## 9. Saved
#
# Everything is already in the profile — restart the kernel and run this notebook again: it
# reopens the same profile. The effective settings of every user, with where each value comes
# from, and the test history:

# %%
print(f"Profile {store.profile_name!r}: {store.path}")
print("Secrets:", secrets.name)
mailkit.effective_frame(store.get_org(), store.users())

# %%
store.history_frame()[["at", "user_code", "ok", "phase", "cause", "detail"]]

# %% [markdown]
# The demo server's mailbox holds what it accepted — open `02-test-sends.ipynb` for transcripts,
# TLS details and a tour of every failure.

# %%
demo.mailbox()[["received", "from", "to", "subject"]]
