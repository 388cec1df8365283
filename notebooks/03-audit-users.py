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
# # Audit users' email settings
#
# An organisation with hundreds of users has a few whose email settings are wrong or risky: a
# typo in an address, a Gmail account signing in with its password, Microsoft 365 basic auth
# that Microsoft is switching off, overrides that only repeat the org's settings, users whose
# last test failed months ago. This notebook finds them all at once, explains each finding with
# its fix, exports the report, lets you fix users one by one, and test-sends a batch of users.
#
# The organisation here is generated (300 users of a fictitious *Acme Maintenance*, the same
# every run); point the same cells at your application's export or database instead.

# %%
import pandas as pd
from IPython.display import HTML, display

import mailkit
from mailkit.audit import audit, effective_settings
from mailkit.audit.bulk import bulk_test
from mailkit.audit.domains import check_user_domains
from mailkit.audit.report import charts, export, summary, to_html
from mailkit.audit.sample import load_sample, on_demo_server, sample_org, sample_zones
from mailkit.audit.sources import users_from_file
from mailkit.demo import ensure_running
from mailkit.demo.dns import DnsServer
from mailkit.domainhealth.rules import DOMAIN_RULES
from mailkit.secrets import accounts_with_secret
from mailkit.widgets import AuditDashboard, PassphrasePanel

# %% [markdown]
# ## 1. The application's user table
#
# Business software keeps its users' email settings in its own table. Exported to CSV or Excel
# in mailkit's users-table columns (or mapped onto them), it looks like this. An empty cell
# means "inherit from the organisation's settings".

# %% [markdown]
# ## 2. A mailkit profile for the organisation
#
# The profile holds the organisation's settings, the users mailkit manages and the history of
# test sends. This demo keeps Acme in its own named profile, `demo-acme`, in your data folder:
# it is reopened on every run, after a kernel restart too, and the exports are written beside
# it. For your own organisation, use your profile's name (`mailkit.open_profile("acme")`).

# %%
where = mailkit.locate_profile("demo-acme")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
workdir = store.path.parent / f"{store.profile_name}-exports"
workdir.mkdir(exist_ok=True)
print("Exports go to", workdir)

# %%
acme = sample_org(300, seed=2024)
export_file = workdir / "acme-users.csv"
acme.users.to_csv(export_file, index=False)
acme.users.head(8)

# %% [markdown]
# The profile accepts only valid settings, so some rows of the export are refused, each with the
# reason — these rows must be fixed in the application itself.

# %%
refused = load_sample(store, acme)
print(f"{len(store.users())} users stored, {len(refused)} rows refused")
refused

# %% [markdown]
# Passwords are never in the profile or the export; they live in the profile's secret store (the
# OS keyring where there is one, otherwise an encrypted file beside the profile, unlocked by a
# passphrase once per kernel — the panel says which, and asks for the passphrase if needed). The
# organisation's own sign-in is stored; users who sign in with their own account need theirs,
# and the audit checks that they have one.

# %%
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock

# %%
unlock.require()  # stops here while the secrets file is locked
stand_in = mailkit.Secret("stand-in for the org password")
secrets.set_password(mailkit.secret_key(store.profile_name, "org"), stand_in, stand_in)
print("Secrets are kept in", secrets.name)

# %% [markdown]
# ## 3. The audit
#
# Every user's **effective settings** (the org's, overlaid by an enabled override) with where
# each value comes from, then every **finding**: user, rule, severity, what is wrong and how to
# fix it. The whole table is checked at once, so thousands of users take a moment.

# %%
users = users_from_file(export_file)
org = store.get_org()
effective = effective_settings(org, users.frame)
effective.head()

# %%
# Whose password is stored: the org's and each user's own (names only; no secret is read out).
stored = accounts_with_secret(secrets, store.profile_name, ["org", *users.frame["user_code"]])
findings = audit(org, users.frame, accounts_with_secret=stored, history=store.history_frame())
findings

# %% [markdown]
# How many findings of each rule, most severe first:

# %%
summary(findings)

# %%
display(*charts(findings, effective))

# %% [markdown]
# ## 4. The report and the exports
#
# A standalone HTML page for whoever fixes the settings (every value escaped), and the findings
# as CSV and Excel for a ticket or a spreadsheet. Here, the critical findings:

# %%
(workdir / "acme-audit.html").write_text(to_html(findings, effective), encoding="utf-8")
HTML(to_html(findings[findings["severity"] == "critical"]))

# %%
for name in ("acme-findings.csv", "acme-findings.xlsx"):
    print("wrote", export(findings, workdir / name).name)
pd.read_excel(workdir / "acme-findings.xlsx").head()

# %% [markdown]
# The same from a terminal: `mailkit audit --csv acme-users.csv --profile demo-acme --format
# xlsx -o findings.xlsx` (and `--fail-on critical` to fail a scheduled job).
#
# ## 5. Fix users one by one
#
# The dashboard audits the profile's users. Filter by severity, rule or the users' effective
# mode; pick a user to open their settings below; **Save** runs the audit again.

# %%
dashboard = AuditDashboard(store, secrets=secrets)
dashboard

# %% [markdown]
# For example, a Gmail user signing in with a password: the fix is OAuth (`xoauth2`). The next
# cell does what picking the user, choosing the auth and pressing **Save** does.

# %%
dashboard.rule.value = "gmail-password-auth"
gmail_user = dashboard.user_list.options[0]
dashboard.user_list.value = gmail_user
dashboard.form.fields["auth"].input.value = "xoauth2"
dashboard.form.save_button.click()
still = dashboard.findings.query("rule == 'gmail-password-auth'")["user_code"]
print(gmail_user, "still uses a Gmail password:", gmail_user in set(still))

# %% [markdown]
# ## 6. Do their settings work today? A bulk test send
#
# The audit reads settings; only a test send proves they work. Acme's servers are fictitious,
# so a few users are sent through mailkit's demo mail server, each as one of its accounts —
# some of which fail the way real providers do. Sends run concurrently, a few at a time per
# server, with a progress bar; one failure never stops the batch, and every result goes into
# the profile's test history.

# %%
demo = ensure_running()
pilot = [user for user in store.users() if not user.override_enabled][:6]
accounts = ["demo", "demo", "greylisted", "app-password", "basic-auth-disabled", "mailbox-full"]
stand_ins = on_demo_server(pilot, demo.settings, accounts)
for user in stand_ins:  # each user's own password, from the demo settings, never shown
    key = mailkit.secret_key(store.profile_name, user.user_code)
    secrets.set_password(key, demo.settings.password_secret(), demo.settings.password_secret())
results = bulk_test(
    demo.org(),
    stand_ins,
    to="audit@example.org",
    secrets=secrets,
    profile=store.profile_name,
    store=store,
)

# %% [markdown]
# The results joined to the users:

# %%
people = store.users_frame()[["user_code", "display_name", "email"]]
results.merge(people, on="user_code")[
    ["user_code", "display_name", "ok", "cause", "title", "auth_mechanism", "duration_ms"]
]

# %% [markdown]
# ## 7. Audit again
#
# The new history changes the test findings of the users just tested: a failed send is
# `test-failed` (critical), and a user without a recent success is `test-stale`.

# %%
dashboard.refresh()
dashboard.rule.value = ""
tested = dashboard.findings[dashboard.findings["user_code"].isin(results["user_code"])]
before = findings[findings["user_code"].isin(results["user_code"])]
pd.DataFrame(
    {
        "before": before.groupby("user_code")["rule"].agg(", ".join),
        "after": tested.groupby("user_code")["rule"].agg(", ".join),
    }
).fillna("(none)")

# %%
tested[tested["rule"].isin(["test-failed", "test-stale"])][["user_code", "rule", "message"]]

# %% [markdown]
# ## 8. Will their mail be delivered? The sending domains
#
# A setting that works can still send mail that lands in spam: receivers check the From
# domain's DNS — does its SPF authorise the server that sent, does DMARC say what to do with
# mail that fails, is there a DKIM key for the provider's selectors? The audit can check every
# user's domain and server, each distinct one once. Acme's domain is fictitious, so a small
# DNS server on this machine answers for it, with the gaps a real domain grows (in your own
# audit, leave `dns_server` out to ask your normal resolvers).

# %%
acme_dns = DnsServer(sample_zones()).start()
domains = check_user_domains(org, users.frame, dns_server=acme_dns.address, timeout=2.0)
with_domains = audit(
    org,
    users.frame,
    accounts_with_secret=stored,
    history=store.history_frame(),
    domains=domains,
)
summary(with_domains[with_domains["rule"].isin(list(DOMAIN_RULES))])

# %% [markdown]
# Users sending through Microsoft 365 are not covered by Acme's SPF, which predates the move.
# The same check for one domain and server, with every record it read (`mailkit domain
# acme.example.com --host smtp.office365.com` in a terminal; `mailkit audit --check-domains`
# for all users). Gmail's domain cannot be checked here: this DNS server knows only Acme's, so
# those users get "could not check", never a false "missing".

# %%
mailkit.domain("acme.example.com", host="smtp.office365.com", dns_server=acme_dns.address)

# %% [markdown]
# The dashboard shows them too: tick **Check sending domains**.

# %%
AuditDashboard(store, secrets=secrets, check_domains=True, dns_server=acme_dns.address)

# %% [markdown]
# Next: fix what the findings say — in the application for the refused rows, in the dashboard
# for overrides — and run this audit again, or schedule `mailkit audit --fail-on critical`.
