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
import tempfile
from pathlib import Path

import mailkit
from mailkit.legacy import migrate
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
secrets = mailkit.MemorySecretStore()  # a demo store; use mailkit.default_secret_store() for real
migration = migrate(legacy_file, secrets=secrets, profile="migrated")
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

Save the migrated settings into a profile and export it as TOML for review or version control.
Secrets are never part of an export.
""",
    ),
    (
        "code",
        """
workdir = Path(tempfile.mkdtemp(prefix="mailkit-migrate-"))
with mailkit.Store.open(workdir / "migrated.sqlite", profile="migrated") as store:
    store.set_org(migration.org)
    store.export_toml(workdir / "migrated.toml")
print((workdir / "migrated.toml").read_text())
""",
    ),
    (
        "md",
        """
The same from a terminal: `mailkit migrate data/legacy-settings.ini --profile migrated.sqlite`
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

You will: set up the organisation's settings, store the password (typed twice), send a test
message and read the dialog, see what a failure looks like, add users with their own settings,
test a user, and save. Run the cells one by one (Shift+Enter) or all at once (Run → Run All).
"""),
    code("""
import os
import tempfile
from pathlib import Path

import mailkit
from mailkit.demo import ensure_running
from mailkit.widgets import OrgForm, PasswordPanel, TestSendPanel, UsersPanel

demo = ensure_running()  # the server `make lab` started, or a new one in this kernel
print(demo.settings.to_text())
"""),
    md("""
## 1. A profile

Settings live in a *profile*: one file on disk. Passwords never go there — they live in a
secret store (the OS keyring normally; here an in-memory store, as befits a demo).
"""),
    code("""
workdir = Path(os.environ.get("MAILKIT_NOTEBOOK_DIR") or tempfile.mkdtemp(prefix="mailkit-"))
store = mailkit.Store.open(workdir / "onboarding.sqlite", profile="onboarding")
secrets = mailkit.MemorySecretStore()
store
"""),
    md("""
## 2. The organisation's settings

This is the *General Settings* form. For a real provider, type an address under **Suggest
settings** and mailkit proposes the server (Gmail, Microsoft 365, Outlook.com, Yahoo, iCloud,
…). The demo server is not a public provider, so the next cell fills the form with its
settings. Check them, then **Save**: a field that is wrong shows why, next to it, and nothing is
saved until everything is valid.
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
password = PasswordPanel(secrets, mailkit.secret_key("onboarding", "org"))
password
"""),
    code("""
demo_password = demo.settings.password_secret().reveal()  # what you would type, twice
password.password.set_state({"value": demo_password})
password.confirmation.set_state({"value": demo_password})
password.save_button.click()
del demo_password
print("stored:", secrets.get(mailkit.secret_key("onboarding", "org")) is not None)
"""),
    md("""
## 4. A test send

Fill in **Mail To** and press **Send**. The SMTP dialog appears line by line as it happens —
passwords hidden — then a green card when the server accepted the message, or a red card that
says what went wrong and how to fix it.
"""),
    code("""
test = TestSendPanel(store.get_org, secrets=secrets, profile="onboarding", store=store)
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
    mailkit.secret_key("onboarding", app_user.user_code),
    demo.settings.password_secret(),
    demo.settings.password_secret(),
)
failing = TestSendPanel(store.get_org, app_user, secrets=secrets, profile="onboarding")
failing.to.value = "you@example.org"
failing.send_button.click()
await failing.last_task
failing
"""),
    md("""
## 6. Users with their own settings

Every user inherits the organisation's settings. Ticking **override** lets a user send with
their own account — for instance an Accounting mailbox (the *bi-mode* of ERP systems:
Outlook for everyone, SMTP for a few). Inherited values show where they come from.
"""),
    code("""
ann = mailkit.UserSettings(user_code="ann", display_name="Ann Lee", email="ann@example.com")
accounting = demo.user("demo").model_copy(
    update={"user_code": "accounting", "display_name": "Accounting"}
)
store.put_user(ann)
store.put_user(accounting)
users = UsersPanel(store)
users
"""),
    md("""
## 7. Test one user

The same test, with the effective settings of the user selected above.
"""),
    code("""
secrets.set_password(
    mailkit.secret_key("onboarding", "accounting"),
    demo.settings.password_secret(),
    demo.settings.password_secret(),
)
users.list.value = "accounting"
user_test = TestSendPanel(
    store.get_org, lambda: users.selected, secrets=secrets, profile="onboarding", store=store
)
user_test.to.value = "you@example.org"
user_test.send_button.click()
await user_test.last_task
user_test
"""),
    md("""
## 8. Saved

Everything is already in the profile. The effective settings of every user, with where each
value comes from, and the test history:
"""),
    code("""
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

demo = ensure_running()
org = demo.org()  # the demo server's settings, STARTTLS on its submission port
password = demo.settings.password_secret()
accounts_table()[["user", "shows", "cause"]]
"""),
    md("""
## A successful send

The result shows a green card and the dialog. `C` rows are mailkit, `S` rows the server, `I`
rows mailkit's own notes (which AUTH mechanism it chose and why, the TLS handshake).
"""),
    code("""
result = mailkit.send_test(org, to=["you@example.org"], password=password)
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
    sent = mailkit.send_test(org, user, to=["you@example.org"], password=secret)
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
]

NOTEBOOKS = {
    "01-onboarding": ONBOARDING,
    "02-test-sends": TEST_SENDS,
    "06-migrate-legacy": MIGRATE,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        write(name, NOTEBOOKS[name])
        print("wrote", name)
