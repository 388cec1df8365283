"""``mailkit test --mode outlook|mapi|lotus_notes --eml-out DIR``: the desktop hand-off from the
command line (issue 13, point 3). Exit 0 when the .eml is written; a folder that cannot take it
is exit 1 with the advice naming ``--eml-out``. Nothing real is launched: ``--open`` is tested
with the system launcher replaced."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

import mailkit.senders.desktop as desktop
from mailkit.cli import EXIT_OK, EXIT_USAGE, main
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("mode", ["outlook", "mapi", "lotus_notes", "other", "Lotus"])
def test_each_desktop_mode_writes_the_eml_and_exits_0(mode: str, tmp_path: Path) -> None:
    code, out, err = run(
        "test",
        "--mode",
        mode,
        "--from",
        "it@example.com",
        "--to",
        "bob@example.org",
        "--eml-out",
        str(tmp_path),
    )
    assert code == EXIT_OK, out + err
    (written,) = tmp_path.iterdir()
    assert f"OK: wrote {written}" in out
    assert "not mailkit, sends it" in out
    assert "no delivery result" in out
    message = message_from_bytes(written.read_bytes(), policy=default_policy)
    assert message["X-Unsent"] == "1"
    assert message["To"] == "bob@example.org"


def test_json_names_the_file_and_the_notes(tmp_path: Path) -> None:
    code, out, _ = run(
        "test",
        "--mode",
        "outlook",
        "--from",
        "it@example.com",
        "--to",
        "bob@example.org",
        "--eml-out",
        str(tmp_path),
        "--json",
    )
    assert code == EXIT_OK
    data = json.loads(out)
    assert data["ok"] is True
    assert Path(data["eml_path"]).parent == tmp_path
    assert isinstance(data["notes"], list)
    assert data["diagnosis"] is None


def test_a_missing_folder_exits_1_and_names_the_flag(tmp_path: Path) -> None:
    gone = tmp_path / "nowhere"
    code, out, _ = run(
        "test",
        "--mode",
        "mapi",
        "--from",
        "it@example.com",
        "--to",
        "bob@example.org",
        "--eml-out",
        str(gone),
    )
    assert code == EXIT_USAGE
    assert "The EML draft could not be written" in out
    assert "--eml-out" in out
    assert "eml_folder" not in out  # the CLI's word, not Python's
    assert not gone.exists()


def test_without_a_folder_the_advice_names_the_flag() -> None:
    code, out, _ = run(
        "test", "--mode", "outlook", "--from", "it@example.com", "--to", "bob@example.org"
    )
    assert code == EXIT_USAGE
    assert "No folder is set for the EML draft" in out
    assert "--eml-out" in out


def test_a_profile_users_desktop_mode_hands_off_with_the_profiles_folder(tmp_path: Path) -> None:
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    db = tmp_path / "p.sqlite"
    with Store.open(db, create=True) as store:
        store.set_org(
            OrgSettings(
                host="smtp.example.com", from_address="it@example.com", eml_folder=str(drafts)
            )
        )
        store.put_user(
            UserSettings(
                user_code="ann",
                override_enabled=True,
                mode="lotus_notes",
                from_address="ann@example.com",
            )
        )
    code, out, err = run(
        "test", "--profile", str(db), "--user", "ann", "--to", "bob@example.org", "--secrets",
        "env",
    )  # fmt: skip
    assert code == EXIT_OK, out + err
    (written,) = drafts.iterdir()
    message = message_from_bytes(written.read_bytes(), policy=default_policy)
    assert message["From"].addresses[0].addr_spec == "ann@example.com"
    with Store.open(db) as store:
        assert list(store.history_frame("ann")["mode"]) == ["lotus_notes"]


def test_open_uses_the_system_launcher_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []
    monkeypatch.setattr(desktop, "system_launcher", lambda platform=None: opened.append)
    argv = ["test", "--mode", "outlook", "--from", "it@example.com", "--to", "bob@example.org"]
    argv += ["--eml-out", str(tmp_path)]
    assert run(*argv)[0] == EXIT_OK
    assert opened == []
    code, out, _ = run(*argv, "--open")
    assert code == EXIT_OK
    assert len(opened) == 1
    assert opened[0].parent == tmp_path
    assert "opened" in out


def test_the_real_entry_point_writes_the_eml(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailkit.cli",
            "test",
            "--mode",
            "outlook",
            "--from",
            "it@example.com",
            "--to",
            "bob@example.org",
            "--eml-out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".eml"]) == 1
    # No desktop here (no DISPLAY in this environment): the result says to use SMTP.
    assert "No desktop session" in done.stdout
