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
# # Migrate legacy email settings
#
# Older versions of maintenance and ERP software stored their email settings under names such as
# *Email Sender IP*, *Requires Authentication* and *TLS Settings*. Those settings are deprecated:
# the sender protocol and the authorization type replace them, and TLS is negotiated.
#
# This notebook reads a legacy settings file, turns it into mailkit's settings, and shows **every
# change as a table**. A password found in the file goes straight into the secret store — it
# never appears in the settings, the report or this notebook.

# %%
from pathlib import Path

import mailkit
from mailkit.legacy import migrate
from mailkit.widgets import PassphrasePanel

# %% [markdown]
# ## 1. The legacy file
#
# `data/legacy-settings.ini` is a sample export from an older version. mailkit reads INI and JSON
# files; keys are matched without regard to case.

# %%
legacy_file = Path("data/legacy-settings.ini")
where = mailkit.locate_profile("demo-migrated")  # for real: your profile's name
print("Reopened" if where.exists else "Created", f"the profile {where.name!r} at {where.path}")
store = mailkit.open_profile(where, create=True)
secrets = mailkit.profile_secrets(store)
unlock = PassphrasePanel(secrets)  # which secret store; unlocks an encrypted file once per kernel
unlock

# %% [markdown]
# The migration goes into the named profile `demo-migrated` in your data folder (reopened on
# every run), and a password found in the file into that profile's secret store. If the panel
# above asks for a passphrase, type it, press **Unlock** and run the cells below again.

# %%
unlock.require()  # stops here while the secrets file is locked
migration = migrate(legacy_file, secrets=secrets, profile=store.profile_name)
print("Secrets are kept in", secrets.name)

# %% [markdown]
# ## 2. What changed
#
# One row per legacy key: the old value (passwords hidden), the new field and value, and a note.
# Unknown keys are reported too, never silently dropped.

# %%
migration.report

# %% [markdown]
# Some rows need a person's judgement — for instance an IP address used as the server name, or
# keys mailkit does not know:

# %%
for number, line in enumerate(migration.warnings, 1):
    print(f"{number}. {line}")

# %% [markdown]
# The password moved to the secret store; the settings only know where it is:

# %%
print("moved to the secret store under:", migration.moved_secrets)
print("is a password stored there?", secrets.get(migration.moved_secrets[0]) is not None)

# %% [markdown]
# ## 3. The new settings
#
# The effective settings for the organisation, with where each value comes from (`org` when the
# legacy file set it, `default` when mailkit's default applies):

# %%
mailkit.effective(migration.org).to_frame()

# %% [markdown]
# ## 4. Save and review
#
# Save the migrated settings into the profile and export it as TOML (beside the profile) for
# review or version control. Secrets are never part of an export.

# %%
store.set_org(migration.org)
review = store.path.with_suffix(".toml")
store.export_toml(review)
print(f"Saved in {store.path}; exported for review to {review}:")
print(review.read_text())

# %% [markdown]
# The same from a terminal: `mailkit migrate data/legacy-settings.ini --profile demo-migrated`
# (add `--json` for scripts). Next: test the migrated settings in `02-test-sends.ipynb`.
