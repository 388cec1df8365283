"""Notebook 08-deliverability runs unattended against its own demo server and leaks nothing.

The demo's password (which the demo's IMAP mailbox takes too) is the notebooks' canary: the
executed notebook — outputs and all — must not hold it in any encoding. The run shows the demo
domain's health, the round trip to the demo inbox with its Received table and
Authentication-Results, and the spam-trap message diagnosed as delivered to spam.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from notebook_runner import run_notebook, saved_outputs_text, write_notebook
from test_notebooks import CANARY, NOTEBOOKS, kit_env, leak_forms

pytestmark = pytest.mark.timeout(300)

NAME = "08-deliverability.ipynb"


def test_the_deliverability_notebook_runs_and_keeps_the_mailbox_password(tmp_path: Path) -> None:
    executed = run_notebook(NOTEBOOKS / NAME, cwd=NOTEBOOKS, env=kit_env(tmp_path), timeout=180)
    saved = tmp_path / NAME
    write_notebook(executed, saved)
    outputs = saved_outputs_text(executed)
    for expected in (
        "The demo domain example.com is served",
        "spf",  # the health summary
        "ok: True",
        "Delivery check (imaps://demo@example.com@localhost:",
        "Received chain (oldest first):",
        "ESMTPSA",  # the Received table
        "smtp.auth",  # Authentication-Results, as a table
        "placement: junk in folder Junk",
        "Delivered, but into the spam folder",
    ):
        assert expected in outputs, f"expected {expected!r} in the outputs"
    text = saved.read_text(encoding="utf-8")
    for form in leak_forms(CANARY):
        assert form not in text, f"the mailbox password reached the notebook as {form!r}"
    json.loads(text)
