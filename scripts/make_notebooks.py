"""Write the kit's notebooks from their cell sources, committed without outputs.

Editing a notebook by hand in JupyterLab is fine too; this script exists so the first version
of each notebook is reviewable as plain text. Run: python scripts/make_notebooks.py NAME...
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent / "notebooks"


def md(source: str) -> tuple[str, str]:
    return ("md", source)


def code(source: str) -> tuple[str, str]:
    return ("code", source)


def notebook(prefix: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, (kind, source) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(source.strip("\n"), id=f"{prefix}-{index:02d}"))
    return nb


def write(name: str, cells: list[tuple[str, str]]) -> None:
    path = ROOT / f"{name}.ipynb"
    nbformat.write(notebook(name.split("-")[0], cells), path)
    # Code cells are kept in the project's style by the same formatter as the package.
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(path)], check=True)


MIGRATE = [
    (
        "md",
        """
# Migrate legacy email settings

Older versions of maintenance and ERP software stored their email settings under names such as
*Email Sender IP*, *Requires Authentication* and *TLS Settings*. Those settings are deprecated:
the sender protocol and the authorization type replace them, and TLS is negotiated.

This notebook reads a legacy settings file, turns it into mailkit's settings, and shows **every
change as a table**. A password found in the file goes straight into the secret store — it
never appears in the settings, the report or this notebook.
""",
    ),
    (
        "code",
        """
from pathlib import Path

import mailkit
from mailkit.legacy import migrate
from mailkit.widgets import PassphrasePanel
""",
    ),
    (
        "md",
        """
## 1. The legacy file

`data/legacy-settings.ini` is a sample export from an older version. mailkit reads INI and JSON
files; keys are matched without regard to case.
""",
    ),
    (
        "code",
        """
legacy_file = Path("data/legacy-settings.ini")
where = mailkit.locate_profile("demo-migrated")  # for real: your profile's name
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)  # which secret store; unlocks an encrypted file once per kernel
unlock
""",
    ),
    (
        "md",
        """
The migration goes into the named profile `demo-migrated` in your data folder (reopened on
every run), and a password found in the file into that profile's secret store. If the panel
above asks for a passphrase, type it, press **Unlock** and run the cells below again.
""",
    ),
    (
        "code",
        """
unlock.require()  # stops here while the secrets file is locked
migration = migrate(legacy_file, secrets=secrets, profile=store.profile_name)
print("Secrets are kept in", secrets.name)
""",
    ),
    (
        "md",
        """
## 2. What changed

One row per legacy key: the old value (passwords hidden), the new field and value, and a note.
Unknown keys are reported too, never silently dropped.
""",
    ),
    (
        "code",
        """
migration.report
""",
    ),
    (
        "md",
        """
Some rows need a person's judgement — for instance an IP address used as the server name, or
keys mailkit does not know:
""",
    ),
    (
        "code",
        """
for number, line in enumerate(migration.warnings, 1):
    print(f"{number}. {line}")
""",
    ),
    (
        "md",
        """
The password moved to the secret store; the settings only know where it is:
""",
    ),
    (
        "code",
        """
print("moved to the secret store under:", migration.moved_secrets)
print("is a password stored there?", secrets.get(migration.moved_secrets[0]) is not None)
""",
    ),
    (
        "md",
        """
## 3. The new settings

The effective settings for the organisation, with where each value comes from (`org` when the
legacy file set it, `default` when mailkit's default applies):
""",
    ),
    (
        "code",
        """
mailkit.effective(migration.org).to_frame()
""",
    ),
    (
        "md",
        """
## 4. Save and review

Save the migrated settings into the profile and export it as TOML (beside the profile) for
review or version control. Secrets are never part of an export.
""",
    ),
    (
        "code",
        """
store.set_org(migration.org)
review = store.path.with_suffix(".toml")
store.export_toml(review)
print(f"Saved in {store.path}; exported for review to {review}:")
print(review.read_text())
""",
    ),
    (
        "md",
        """
The same from a terminal: `mailkit migrate data/legacy-settings.ini --profile demo-migrated`
(add `--json` for scripts). Next: test the migrated settings in `02-test-sends.ipynb`.
""",
    ),
]


ONBOARDING = [
    md("""
# Onboarding: set up outgoing email

This notebook walks you from nothing to a tested, saved email setup — with no mail account at
all: mailkit's **demo mail server** runs on this machine and behaves like a real provider,
including its failures.

You will: open a profile that stays saved, set up the organisation's settings, store the
password (typed twice), send a test message and read the dialog, see what a failure looks like,
add users with their own settings and their own password, test a user, and save. Run the cells
one by one (Shift+Enter) or all at once (Run → Run All).
"""),
    code("""
import mailkit
from mailkit.demo import ensure_running
from mailkit.widgets import OrgForm, PassphrasePanel, PasswordPanel, TestSendPanel, UsersPanel

demo = ensure_running()  # the server `make lab` started, or a new one in this kernel
print(demo.settings.to_text())
"""),
    md("""
## 1. A profile that stays

Settings live in a named *profile*: one file in your data folder, reopened by name on every
run — after a kernel restart, or by `mailkit … --profile demo` on the command line. Demo work
goes to the profile `demo`; for your own organisation choose another name, e.g.
`mailkit.open_profile("acme", create=True)` (or `mailkit profile init acme` in a terminal).
"""),
    code("""
where = mailkit.locate_profile("demo")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
saved_org = store.get_org()
print(f"It holds {len(store.users())} user(s); the organisation's server:",
      f"{saved_org.host}:{saved_org.port}" if saved_org.host else "not set yet")
"""),
    md("""
Passwords never go into the profile: they live in a *secret store* — the operating system's
keyring where there is one, otherwise (a Jupyter server, a container, Binder) an encrypted file
beside the profile, unlocked by a passphrase once per kernel. The panel says which one is in
use; if it asks for a passphrase, type it, press **Unlock** and run the cells below again. (For
unattended runs, set the environment variable `MAILKIT_SECRETS_PASSPHRASE` instead.)
"""),
    code("""
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock
"""),
    code("""
unlock.require()  # stops here while the secrets file is locked
print("Secrets are kept in", secrets.name)
"""),
    md("""
## 2. The organisation's settings

This is the *General Settings* form, showing what the profile holds. For a real provider, type
an address under **Suggest settings** and mailkit proposes the server (Gmail, Microsoft 365,
Outlook.com, Yahoo, iCloud, …). The demo server is not a public provider, so the next cell
fills the form with its settings. Check them, then **Save**: a field that is wrong shows why,
next to it, and nothing is saved until everything is valid.
"""),
    code("""
org_form = OrgForm(store)
org_form
"""),
    code("""
org_form.load(demo.org())  # what typing the demo server's settings into the form does
org_form.save_button.click()
print(org_form.status.value or "saved")
"""),
    md("""
## 3. The password, typed twice

The password is asked twice, like every good settings screen does, and goes straight into the
secret store. The fields empty themselves after saving: the password does not stay in the
notebook. For the demo, the next cell types it for you.
"""),
    code("""
password = PasswordPanel(secrets, mailkit.secret_key(store.profile_name, "org"))
password
"""),
    code("""
demo_password = demo.settings.password_secret().reveal()  # what you would type, twice
password.password.set_state({"value": demo_password})
password.confirmation.set_state({"value": demo_password})
password.save_button.click()
del demo_password
print("stored:", secrets.get(mailkit.secret_key(store.profile_name, "org")) is not None)
"""),
    md("""
## 4. A test send

Fill in **Mail To** and press **Send**. The panel says whose settings and whose account it
tests; the SMTP dialog appears line by line as it happens — passwords hidden — then a green
card when the server accepted the message, or a red card that says what went wrong and how to
fix it.
"""),
    code("""
test = TestSendPanel(store.get_org, secrets=secrets, profile=store.profile_name, store=store)
test.to.value = "you@example.org"
test
"""),
    code("""
test.send_button.click()  # what pressing Send does
await test.last_task  # wait for the dialog to finish
print("accepted" if test.result.ok else test.result.diagnosis.title)
"""),
    md("""
## 5. What a failure looks like

The demo server has accounts that fail the way real providers do. `app-password@example.com`
answers like Gmail when a normal password is used where an *app password* is required.
"""),
    code("""
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
"""),
    md("""
## 6. Users with their own settings and their own password

Every user inherits the organisation's settings. Ticking **override** lets a user send with
their own account — for instance an Accounting mailbox (the *bi-mode* of ERP systems:
Outlook for everyone, SMTP for a few). Inherited values show where they come from. A user who
signs in with their own user name needs their own password: the form takes it twice, stores it
under that user's account in the secret store, and empties the boxes.
"""),
    code("""
ann = mailkit.UserSettings(user_code="ann", display_name="Ann Lee", email="ann@example.com")
accounting = demo.user("demo").model_copy(
    update={"user_code": "accounting", "display_name": "Accounting"}
)
store.put_user(ann)
store.put_user(accounting)
users = UsersPanel(store, secrets=secrets)
users
"""),
    md("""
For the demo, the next cell picks Accounting in the list and types its password twice into the
user form, then presses **Save user**:
"""),
    code("""
users.list.value = "accounting"
demo_password = demo.settings.password_secret().reveal()  # what Accounting's owner would type
users.form.passwords.password.set_state({"value": demo_password})
users.form.passwords.confirmation.set_state({"value": demo_password})
users.form.save_button.click()
del demo_password
print("Accounting's own password stored:", users.form.has_password)
"""),
    md("""
## 7. Test one user

The same test, with the effective settings of the user selected above — the panel says whose.
"""),
    code("""
user_test = TestSendPanel(
    store.get_org, lambda: users.selected, secrets=secrets, profile=store.profile_name, store=store
)
users.list.observe(lambda _change: user_test.describe(), names="value")  # follow the pick
user_test.to.value = "you@example.org"
user_test.send_button.click()
await user_test.last_task
print(user_test.describe())
user_test
"""),
    md("""
## 8. Saved

Everything is already in the profile — restart the kernel and run this notebook again: it
reopens the same profile. The effective settings of every user, with where each value comes
from, and the test history:
"""),
    code("""
print(f"Profile {store.profile_name!r}: {store.path}")
print("Secrets:", secrets.name)
mailkit.effective_frame(store.get_org(), store.users())
"""),
    code("""
store.history_frame()[["at", "user_code", "ok", "phase", "cause", "detail"]]
"""),
    md("""
The demo server's mailbox holds what it accepted — open `02-test-sends.ipynb` for transcripts,
TLS details and a tour of every failure.
"""),
    code("""
demo.mailbox()[["received", "from", "to", "subject"]]
"""),
]

TEST_SENDS = [
    md("""
# Test sends: the dialog, TLS, and a tour of failures

The *Email Test Utility* of business software, done well: one call sends the multi-language
test message and returns the whole SMTP dialog as a table — passwords and tokens hidden — or a
diagnosis that says what went wrong, in which phase, and how to fix it.
"""),
    code("""
import pandas as pd

import mailkit
from mailkit.demo import accounts_table, ensure_running, message_text
from mailkit.widgets import PassphrasePanel

demo = ensure_running()
org = demo.org()  # the demo server's settings, STARTTLS on its submission port
password = demo.settings.password_secret()
accounts_table()[["user", "shows", "cause"]]
"""),
    md("""
## The profile

The sends below are recorded in the profile `demo` (the one `01-onboarding.ipynb` saves), with
the demo server's settings and password — the password in the profile's secret store, never in
the profile itself. The panel says which secret store is in use; if it asks for a passphrase,
type it, press **Unlock** and run the cells below again.
"""),
    code("""
where = mailkit.locate_profile("demo")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
store.set_org(org)
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock
"""),
    code("""
unlock.require()  # stops here while the secrets file is locked
secrets.set_password(mailkit.secret_key(store.profile_name, "org"), password, password)
print("Secrets are kept in", secrets.name)
"""),
    md("""
## A successful send

The result shows a green card and the dialog. `C` rows are mailkit, `S` rows the server, `I`
rows mailkit's own notes (which AUTH mechanism it chose and why, the TLS handshake).
"""),
    code("""
result = mailkit.send_test(
    store.get_org(), to=["you@example.org"], secrets=secrets, profile=store.profile_name,
    store=store,
)
result
"""),
    md("""
As a DataFrame, to filter and sort:
"""),
    code("""
result.transcript.to_dataframe()[["t_ms", "dir", "phase", "tls", "code", "text"]]
"""),
    md("""
As text, in the classic `[hh:mm:ss.mmm] line` style (the AUTH line shows the user, never the
password):
"""),
    code("""
print(result.transcript.to_text())
"""),
    md("""
TLS details and time spent per phase:
"""),
    code("""
pd.Series(result.tls.as_dict())
"""),
    code("""
pd.Series(result.timings, name="ms")
"""),
    md("""
## Other ways in

Implicit TLS on the second port, CRAM-MD5, and XOAUTH2 with an OAuth token (the OAuth consent
walkthrough is in its own notebook; the demo server accepts a demo token):
"""),
    code("""
variants = {
    "implicit TLS": (demo.org(starttls=False), {}),
    "CRAM-MD5": (demo.org(auth="cram_md5"), {}),
    "XOAUTH2": (demo.org(auth="xoauth2"), {"token": demo.settings.token}),
}
rows = []
for name, (settings, extra) in variants.items():
    sent = mailkit.send_test(settings, to=["you@example.org"], password=password, **extra)
    rows.append({"variant": name, "ok": sent.ok, "auth": sent.auth_mechanism,
                 "tls": sent.tls.version if sent.tls else None, "ms": sent.duration_ms})
pd.DataFrame(rows)
"""),
    md("""
## A tour of failures

Each failure account of the demo server fails the way a real provider does. Every failure is
classified — phase, kind (retry later, or change something) and cause — with a plain
explanation and numbered fix steps.
"""),
    code("""
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
    tour.append({"account": account.key, "phase": d.phase.value, "kind": d.kind.value,
                 "cause": d.cause.value, "title": d.title})
pd.DataFrame(tour)
"""),
    md("""
One of them up close — a greylisting server asks unknown senders to come back later:
"""),
    code("""
failures["greylisted"]
"""),
    code("""
print(failures["basic-auth-disabled"].diagnosis.to_text())
"""),
    md("""
## The message as received

The demo server keeps what it accepted in a mailbox on disk. The body survived intact, every
script of it:
"""),
    code("""
mailbox = demo.mailbox()
mailbox[["received", "from", "to", "subject", "tls"]].tail()
"""),
    code("""
print(message_text(mailbox["path"].iloc[-1]))
"""),
    md("""
## In the profile's history

Every send above was recorded in the profile, where audits read it (a user whose last test
failed, or who has not been tested for a while, is a finding). It survives a kernel restart:
"""),
    code("""
print(f"Profile {store.profile_name!r}: {store.path}")
store.history_frame()[["at", "user_code", "ok", "phase", "cause"]].tail(12)
"""),
]

AUDIT = [
    md("""
# Audit users' email settings

An organisation with hundreds of users has a few whose email settings are wrong or risky: a
typo in an address, a Gmail account signing in with its password, Microsoft 365 basic auth
that Microsoft is switching off, overrides that only repeat the org's settings, users whose
last test failed months ago. This notebook finds them all at once, explains each finding with
its fix, exports the report, lets you fix users one by one, and test-sends a batch of users.

The organisation here is generated (300 users of a fictitious *Acme Maintenance*, the same
every run); point the same cells at your application's export or database instead.
"""),
    code("""
import pandas as pd
from IPython.display import HTML, display

import mailkit
from mailkit.audit import audit, effective_settings
from mailkit.audit.bulk import bulk_test
from mailkit.audit.report import charts, export, summary, to_html
from mailkit.audit.sample import load_sample, on_demo_server, sample_org
from mailkit.audit.sources import users_from_file
from mailkit.demo import ensure_running
from mailkit.secrets import accounts_with_secret
from mailkit.widgets import AuditDashboard, PassphrasePanel
"""),
    md("""
## 1. The application's user table

Business software keeps its users' email settings in its own table. Exported to CSV or Excel
in mailkit's users-table columns (or mapped onto them), it looks like this. An empty cell
means "inherit from the organisation's settings".
"""),
    md("""
## 2. A mailkit profile for the organisation

The profile holds the organisation's settings, the users mailkit manages and the history of
test sends. This demo keeps Acme in its own named profile, `demo-acme`, in your data folder:
it is reopened on every run, after a kernel restart too, and the exports are written beside
it. For your own organisation, use your profile's name (`mailkit.open_profile("acme")`).
"""),
    code("""
where = mailkit.locate_profile("demo-acme")
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
workdir = store.path.parent / f"{store.profile_name}-exports"
workdir.mkdir(exist_ok=True)
print("Exports go to", workdir)
"""),
    code("""
acme = sample_org(300, seed=2024)
export_file = workdir / "acme-users.csv"
acme.users.to_csv(export_file, index=False)
acme.users.head(8)
"""),
    md("""
The profile accepts only valid settings, so some rows of the export are refused, each with the
reason — these rows must be fixed in the application itself.
"""),
    code("""
refused = load_sample(store, acme)
print(f"{len(store.users())} users stored, {len(refused)} rows refused")
refused
"""),
    md("""
Passwords are never in the profile or the export; they live in the profile's secret store (the
OS keyring where there is one, otherwise an encrypted file beside the profile, unlocked by a
passphrase once per kernel — the panel says which, and asks for the passphrase if needed). The
organisation's own sign-in is stored; users who sign in with their own account need theirs,
and the audit checks that they have one.
"""),
    code("""
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)
unlock
"""),
    code("""
unlock.require()  # stops here while the secrets file is locked
stand_in = mailkit.Secret("stand-in for the org password")
secrets.set_password(mailkit.secret_key(store.profile_name, "org"), stand_in, stand_in)
print("Secrets are kept in", secrets.name)
"""),
    md("""
## 3. The audit

Every user's **effective settings** (the org's, overlaid by an enabled override) with where
each value comes from, then every **finding**: user, rule, severity, what is wrong and how to
fix it. The whole table is checked at once, so thousands of users take a moment.
"""),
    code("""
users = users_from_file(export_file)
org = store.get_org()
effective = effective_settings(org, users.frame)
effective.head()
"""),
    code("""
# Whose password is stored: the org's and each user's own (names only; no secret is read out).
stored = accounts_with_secret(secrets, store.profile_name, ["org", *users.frame["user_code"]])
findings = audit(org, users.frame, accounts_with_secret=stored, history=store.history_frame())
findings
"""),
    md("""
How many findings of each rule, most severe first:
"""),
    code("""
summary(findings)
"""),
    code("""
display(*charts(findings, effective))
"""),
    md("""
## 4. The report and the exports

A standalone HTML page for whoever fixes the settings (every value escaped), and the findings
as CSV and Excel for a ticket or a spreadsheet. Here, the critical findings:
"""),
    code("""
(workdir / "acme-audit.html").write_text(to_html(findings, effective), encoding="utf-8")
HTML(to_html(findings[findings["severity"] == "critical"]))
"""),
    code("""
for name in ("acme-findings.csv", "acme-findings.xlsx"):
    print("wrote", export(findings, workdir / name).name)
pd.read_excel(workdir / "acme-findings.xlsx").head()
"""),
    md("""
The same from a terminal: `mailkit audit --csv acme-users.csv --profile demo-acme --format
xlsx -o findings.xlsx` (and `--fail-on critical` to fail a scheduled job).

## 5. Fix users one by one

The dashboard audits the profile's users. Filter by severity, rule or the users' effective
mode; pick a user to open their settings below; **Save** runs the audit again.
"""),
    code("""
dashboard = AuditDashboard(store, secrets=secrets)
dashboard
"""),
    md("""
For example, a Gmail user signing in with a password: the fix is OAuth (`xoauth2`). The next
cell does what picking the user, choosing the auth and pressing **Save** does.
"""),
    code("""
dashboard.rule.value = "gmail-password-auth"
gmail_user = dashboard.user_list.options[0]
dashboard.user_list.value = gmail_user
dashboard.form.fields["auth"].input.value = "xoauth2"
dashboard.form.save_button.click()
still = dashboard.findings.query("rule == 'gmail-password-auth'")["user_code"]
print(gmail_user, "still uses a Gmail password:", gmail_user in set(still))
"""),
    md("""
## 6. Do their settings work today? A bulk test send

The audit reads settings; only a test send proves they work. Acme's servers are fictitious,
so a few users are sent through mailkit's demo mail server, each as one of its accounts —
some of which fail the way real providers do. Sends run concurrently, a few at a time per
server, with a progress bar; one failure never stops the batch, and every result goes into
the profile's test history.
"""),
    code("""
demo = ensure_running()
pilot = [user for user in store.users() if not user.override_enabled][:6]
accounts = ["demo", "demo", "greylisted", "app-password", "basic-auth-disabled", "mailbox-full"]
stand_ins = on_demo_server(pilot, demo.settings, accounts)
for user in stand_ins:  # each user's own password, from the demo settings, never shown
    key = mailkit.secret_key(store.profile_name, user.user_code)
    secrets.set_password(key, demo.settings.password_secret(), demo.settings.password_secret())
results = bulk_test(
    demo.org(), stand_ins, to="audit@example.org", secrets=secrets, profile=store.profile_name,
    store=store,
)
"""),
    md("""
The results joined to the users:
"""),
    code("""
people = store.users_frame()[["user_code", "display_name", "email"]]
results.merge(people, on="user_code")[
    ["user_code", "display_name", "ok", "cause", "title", "auth_mechanism", "duration_ms"]
]
"""),
    md("""
## 7. Audit again

The new history changes the test findings of the users just tested: a failed send is
`test-failed` (critical), and a user without a recent success is `test-stale`.
"""),
    code("""
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
"""),
    code("""
tested[tested["rule"].isin(["test-failed", "test-stale"])][["user_code", "rule", "message"]]
"""),
    md("""
Next: fix what the findings say — in the application for the refused rows, in the dashboard
for overrides — and run this audit again, or schedule `mailkit audit --fail-on critical`.
"""),
]

OAUTH_GOOGLE = [
    md("""
# OAuth for Gmail: sign in once, send with a token

Gmail accepts two kinds of sign-in from business software:

* an **app password** — a 16-letter password generated in the Google Account (it needs 2-Step
  Verification, and Google Workspace administrators can forbid it). It is simple, but it opens
  the whole mailbox, never expires by itself and is shared by everyone who knows it;
* **OAuth** — the account's owner signs in at Google once and grants the application a
  limited permission (a *scope*). The application keeps a refresh token, gets short-lived
  access tokens from it, and sends with those: over SMTP with `AUTH XOAUTH2`, or through the
  Gmail API. The owner can withdraw the permission at any time.

This notebook walks through the OAuth sign-in, step by step, and test-sends with the token.
Without configuration it runs against the demo: a **fake Google** on this machine that
behaves like the real one (sign-in page, tokens, Gmail API) and the demo mail server.
"""),
    code("""
import os
from pathlib import Path

import mailkit
from mailkit.demo import ensure_running, visit
from mailkit.widgets import GoogleWalkthrough

demo = ensure_running()  # the demo mail server and its fake Google
"""),
    md("""
## 1. The OAuth client

An application signs in to Google as an *OAuth client*, created once per organisation in the
Google Cloud Console:

1. **APIs & Services → Library**: enable the *Gmail API* (needed for the API send).
2. **OAuth consent screen** (Google Auth Platform): the app's name and support address, its
   *audience* — **Internal** (only your Workspace users; no verification) or **External** —
   and the scopes it asks for.
3. **Credentials → Create credentials → OAuth client ID → Desktop app**, then **download
   the JSON**. That file holds the client id and the *client secret*.

**Testing status**: an External app in *Testing* status works only for the test users listed
on the consent screen, and its **refresh tokens expire after 7 days** — a setup that works
today fails next week with *invalid_grant*. Publish the app (status *In production*) before
relying on it.

Give a real client by setting `MAILKIT_GOOGLE_CLIENT_JSON` to the downloaded file's path
before starting Jupyter; without it this notebook uses the demo's fake client. Tokens go to a
secret store: an in-memory one here, which forgets them when the kernel stops — for real use,
`mailkit.default_secret_store()` keeps them in the operating system's keyring.
"""),
    code("""
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
"""),
    md("""
## 2. The walkthrough

Step by step: the client (upload or paste the JSON if it was not given above), **what the
token is for**, **how to sign in**, the sign-in link, the status, a test send and revoke.

**The scope** decides what the token may do:

* `https://www.googleapis.com/auth/gmail.send` — *send only*, through the Gmail API.
  **Recommended**: a leaked token can send mail but not read the mailbox.
* `https://mail.google.com/` — full mailbox access, and the only scope Gmail's SMTP server
  accepts for XOAUTH2. Google classes it as **restricted**: an External app that asks for it
  must pass Google's verification and a yearly independent security assessment before
  accounts outside its own organisation can use it (Internal apps and test users are exempt).
  Use it only when the software can speak nothing but SMTP.

**How to sign in** depends on where this notebook's kernel runs:

* *This computer (loopback)*: the browser returns to a short-lived listener on
  `127.0.0.1`, and the walkthrough finishes by itself.
* *Remote kernel or Binder (paste-back)*: the browser ends at `http://localhost/?…` with
  "cannot connect" — expected: copy that address from the address bar, paste it into the
  walkthrough and press **Finish**.

Either way the sign-in uses PKCE and a `state` value, so an answer cannot be replayed or
slipped in from another sign-in.
"""),
    code("""
google = GoogleWalkthrough(secrets, client_config=client_config, org=org, ca_file=ca_file)
google
"""),
    md("""
## 3. Sign in for the Gmail API

With a real client, sign in with the widget above. On the demo the next cell does what you
would do: press **Sign in**, approve in the browser (`visit()` is a headless browser that
approves on the fake's sign-in page), paste the address it ended at and press **Finish**.
"""),
    code("""
if on_demo:
    google.purpose.value = "gmail_api"  # step 2: the Gmail API, gmail.send
    google.method.value = "paste"  # step 3: paste-back, which works anywhere
    google.start_button.click()
    google.finish(visit(google.sign_in_url, demo.settings.ca_file))
else:
    print("Sign in with the widget above, then run the next cells.")
print(google.signed_in.to_text() if google.signed_in else "Not signed in yet.")
"""),
    md("""
## 4. A test send through the Gmail API

The walkthrough's test panel sends the test message in the mode chosen in step 2. mailkit
finds the stored token by itself and refreshes it first when it is about to expire. The
transcript shows the HTTP request and answer — the `Authorization` header redacted.
"""),
    code("""
google.test.to.value = "you@example.org"
google.test.send_button.click()  # what pressing Send test does
await google.test.last_task
api_result = google.test.result
api_result
"""),
    code("""
api_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "code", "text"]]
"""),
    md("""
## 5. Sign in for SMTP with XOAUTH2

The same walkthrough, now with the SMTP scope and the loopback sign-in (the demo's browser
returns to the listener by itself, as yours would on this computer). The new token replaces
the first one in the secret store.
"""),
    code("""
if on_demo:
    google.purpose.value = "smtp"  # step 2: https://mail.google.com/ for XOAUTH2
    google.method.value = "loopback"  # step 3: this computer
    google.start_button.click()
    visit(google.sign_in_url, demo.settings.ca_file)  # approve; the browser comes back
    google.join(timeout=60)  # the walkthrough finishes in the background
else:
    print("Choose SMTP in step 2 of the widget, sign in again, then run the next cells.")
print(google.signed_in.to_text() if google.signed_in else "Not signed in yet.")
"""),
    code("""
google.test.send_button.click()
await google.test.last_task
smtp_result = google.test.result
smtp_result
"""),
    md("""
The SMTP dialog: `AUTH XOAUTH2` carries the token, so its payload is redacted.
"""),
    code("""
smtp_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "tls", "code", "text"]]
"""),
    md("""
## 6. Where the token is, and how to revoke it

The refresh token, the current access token and the client secret live in the secret store
only — never in the settings, this notebook, a transcript or a log. **Revoke** asks Google to
end the grant (which ends every token issued from it) and deletes what was stored. The
account's owner can also remove the app at https://myaccount.google.com/permissions.
"""),
    code("""
print(google.revoke())  # what pressing Revoke does
"""),
    md("""
A send after revoking: there is no token any more, and the diagnosis says what to do.
"""),
    code("""
google.test.send_button.click()
await google.test.last_task
print(google.test.result.diagnosis.to_text())
"""),
    md("""
Next: `05-oauth-microsoft.ipynb` for Microsoft 365, or `02-test-sends.ipynb` for a tour of
SMTP failures.
"""),
]

OAUTH_MICROSOFT = [
    md("""
# OAuth for Microsoft 365: device code, browser sign-in, SMTP and Graph

Microsoft is ending **basic authentication** (a user name and password) for SMTP AUTH in
Exchange Online: tenants have it switched off by default, and sends that sign in with a
password are refused (`535 5.7.139 Authentication unsuccessful, basic authentication is
disabled`). Business software that sends as a Microsoft 365 mailbox needs **OAuth**:

* over SMTP to `smtp.office365.com:587` with `AUTH XOAUTH2` and the permission
  `https://outlook.office.com/SMTP.Send` (SMTP AUTH must still be enabled for the mailbox);
* or through **Microsoft Graph** `sendMail` with the permission `Mail.Send` — no SMTP AUTH
  at all, and the recommended way.

This notebook walks through the sign-in and test-sends with the token. Without
configuration it runs against the demo: a **fake Microsoft** on this machine (sign-in, device
codes, tokens, Graph) and the demo mail server.
"""),
    code("""
import os

import mailkit
from mailkit.demo import DEMO_TENANT, MICROSOFT_CLIENT_ID, ensure_running, visit
from mailkit.oauth import MICROSOFT_AUTHORITY_BASE
from mailkit.widgets import MicrosoftWalkthrough

demo = ensure_running()  # the demo mail server and its fake Microsoft
"""),
    md("""
## 1. The app registration

In the **Microsoft Entra admin center → App registrations → New registration**:

1. A name; *Supported account types*: this organisation only (single tenant) is usual.
2. **Authentication → Add a platform → Mobile and desktop applications**, redirect URI
   `http://localhost` (for the browser sign-in), and **Allow public client flows: Yes** (for
   the device code). A notebook is a *public client*: it keeps no client secret.
3. **API permissions → Add a permission**: *Microsoft Graph → Delegated → Mail.Send*, and for
   SMTP *APIs my organization uses → Office 365 Exchange Online → SMTP.Send*. Grant admin
   consent if users may not consent themselves.
4. Copy the **Application (client) id** and the **Directory (tenant) id** from *Overview*.

Give them as `MAILKIT_MICROSOFT_CLIENT_ID` and `MAILKIT_MICROSOFT_TENANT` before starting
Jupyter (or as `oauth_client_id` / `oauth_tenant` in the org settings); without them this
notebook uses the demo's fake app. Tokens go to a secret store: an in-memory one here — for
real use, `mailkit.default_secret_store()` keeps them in the operating system's keyring.
"""),
    code("""
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
"""),
    md("""
## 2. The walkthrough

Step by step: the app id and tenant, **what the token is for** (Graph `Mail.Send` or SMTP
`SMTP.Send`; MSAL adds `offline_access` for the refresh token), **how to sign in**, the code
or link, the status, a test send and revoke.

* **Device code** works anywhere — a server, Binder: the walkthrough shows a short code; open
  https://microsoft.com/devicelogin on any device, enter it and sign in. Some tenants block
  the device-code flow with Conditional Access (it is abused for phishing); the walkthrough
  then shows that diagnosis and offers the browser sign-in.
* **Browser on this computer** (authorization code with PKCE and a loopback redirect) works
  when the kernel runs where the browser runs: the answer is posted back to `127.0.0.1`.
"""),
    code("""
microsoft = MicrosoftWalkthrough(
    secrets, org=org, authority_base=authority_base, ca_file=ca_file
)
microsoft
"""),
    md("""
## 3. Sign in with a device code, for Graph

With a real app, sign in with the widget above. On the demo the next cell presses **Sign
in**; the fake approves the code by itself (as you would at the device-login page), and the
walkthrough, which polls in the background, finishes.
"""),
    code("""
if on_demo:
    microsoft.purpose.value = "microsoft_graph"  # step 2: Graph, Mail.Send
    microsoft.method.value = "device_code"  # step 3: works anywhere
    microsoft.start_button.click()
    microsoft.join(timeout=60)
else:
    print("Sign in with the widget above, then run the next cells.")
print(microsoft.signed_in.to_text() if microsoft.signed_in else "Not signed in yet.")
"""),
    md("""
## 4. A test send through Microsoft Graph

mailkit finds the stored token cache by itself and lets MSAL refresh the token before a send
when it is about to expire. The transcript shows the HTTP request — `Authorization` redacted.
"""),
    code("""
microsoft.test.to.value = "you@example.org"
microsoft.test.send_button.click()  # what pressing Send test does
await microsoft.test.last_task
graph_result = microsoft.test.result
graph_result
"""),
    code("""
graph_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "code", "text"]]
"""),
    md("""
## 5. Sign in with the browser, for SMTP

A token is issued for one resource, so SMTP needs a sign-in of its own. This time with the
browser sign-in (the demo's headless browser posts the answer back to the walkthrough's
listener); the new token cache replaces the first.
"""),
    code("""
if on_demo:
    microsoft.purpose.value = "smtp"  # step 2: SMTP.Send for smtp.office365.com
    microsoft.method.value = "loopback"  # step 3: the browser on this computer
    microsoft.start_button.click()
    visit(microsoft.sign_in_url, demo.settings.ca_file)  # sign in; the answer is posted back
    microsoft.join(timeout=60)
else:
    print("Choose SMTP in step 2 of the widget, sign in again, then run the next cells.")
print(microsoft.signed_in.to_text() if microsoft.signed_in else "Not signed in yet.")
"""),
    code("""
microsoft.test.send_button.click()
await microsoft.test.last_task
smtp_result = microsoft.test.result
smtp_result
"""),
    code("""
smtp_result.transcript.to_dataframe()[["t_ms", "dir", "phase", "tls", "code", "text"]]
"""),
    md("""
## 6. Where the token is, and how to revoke it

MSAL's token cache (refresh and access tokens) lives in the secret store only — never in the
settings, this notebook, a transcript or a log. Microsoft offers applications no endpoint to
revoke a refresh token: **Revoke** deletes the tokens here and says how to end the grant on
the server (the user removes the app at https://myapps.microsoft.com, or an administrator
revokes the user's sessions in the Entra admin center).
"""),
    code("""
print(microsoft.revoke())  # what pressing Revoke does
"""),
    md("""
A send after revoking: there is no token any more, and the diagnosis says what to do.
"""),
    code("""
microsoft.test.send_button.click()
await microsoft.test.last_task
print(microsoft.test.result.diagnosis.to_text())
"""),
    md("""
Next: `04-oauth-google.ipynb` for Gmail, or `03-audit-users.ipynb` to find the users still
signing in to Microsoft 365 with a password.
"""),
]

NOTEBOOKS = {
    "01-onboarding": ONBOARDING,
    "02-test-sends": TEST_SENDS,
    "03-audit-users": AUDIT,
    "04-oauth-google": OAUTH_GOOGLE,
    "05-oauth-microsoft": OAUTH_MICROSOFT,
    "06-migrate-legacy": MIGRATE,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        write(name, NOTEBOOKS[name])
        print("wrote", name)
