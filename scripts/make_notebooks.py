"""Write the kit's notebooks from their cell sources, committed without outputs.

Editing a notebook by hand in JupyterLab is fine too; this script exists so the first version
of each notebook is reviewable as plain text. Run: python scripts/make_notebooks.py NAME...
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent / "notebooks"


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
    nbformat.write(notebook(name.split("-")[0], cells), ROOT / f"{name}.ipynb")


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

NOTEBOOKS = {"06-migrate-legacy": MIGRATE}

if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        write(name, NOTEBOOKS[name])
        print("wrote", name)
