"""The desktop hand-off (issue 13, point 3): outlook, mapi and lotus_notes write an .eml draft.

The .eml is parsed back as a mail client would (X-Unsent, the multi-language body, the priority
headers); folders that cannot take it are diagnosed in each face's words with nothing left
behind; the launcher is injected, so no test starts a real program; the facts about the machine
are gathered through injected probes and decided by the pure notes table.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Sequence
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from mailkit.diagnose.desktop import (
    DesktopFacts,
    handoff_notes,
    linux_mail_client,
    windows_mail_client,
)
from mailkit.faces import Face
from mailkit.message import TEST_BODY_LINES
from mailkit.resolve import effective
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.senders.desktop import CommandRunner, gather_facts, hand_off, open_file, write_eml
from mailkit.settings import Mode, OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.testsend import send_test
from mailkit.transcript import secret_forms

#: A desktop with a session and Outlook registered: no warning, so tests see only their own.
QUIET = DesktopFacts(system="linux", session=True, mail_client="outlook.desktop", opener=True)
SAFE_NAME = re.compile(r"mailkit-test-(outlook|mapi|lotus_notes)-\d{8}-\d{6}-[0-9a-f]{8}\.eml")


def org_in(mode: str, **more: object) -> OrgSettings:
    fields: dict[str, object] = {
        "mode": mode,
        "from_address": "it@example.com",
        "from_name": "Corp IT",
        "username": "it@example.com",
        **more,
    }
    return OrgSettings.model_validate(fields)


def parsed(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("mode", ["outlook", "mapi", "lotus_notes"])
def test_the_eml_parses_as_an_unsent_draft_with_every_language_and_the_priority(
    mode: str, tmp_path: Path
) -> None:
    org = org_in(mode, priority="high")
    result = send_test(org, to=["bob@example.org"], eml_folder=tmp_path, desktop_facts=QUIET)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert result.eml_path is not None
    path = Path(result.eml_path)
    assert path.parent == tmp_path
    assert SAFE_NAME.fullmatch(path.name), path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    message = parsed(path)
    assert message["X-Unsent"] == "1"
    assert message["X-Priority"] == "1 (Highest)"
    assert message["Importance"] == "high"
    assert message["Priority"] == "urgent"
    assert message["To"] == "bob@example.org"
    assert message["From"].addresses[0].addr_spec == "it@example.com"
    assert message["Message-ID"] == result.message_id
    body = message.get_content()
    for _language, text in TEST_BODY_LINES:
        assert text in body
    assert b"\r\n" in path.read_bytes()  # CRLF line ends, as a client expects of an .eml


def test_the_result_says_the_client_not_mailkit_sends(tmp_path: Path) -> None:
    result = send_test(
        org_in("outlook"), to=["bob@example.org"], eml_folder=tmp_path, desktop_facts=QUIET
    )
    text = result.transcript.to_text()
    assert "Outlook, not mailkit, sends it" in text
    assert "mailkit will see no delivery result" in text
    assert result.context.desktop_client == "outlook"
    assert result.as_dict()["eml_path"] == result.eml_path
    assert "handoff" in result.timings
    html = result._repr_html_()
    assert "written for Outlook" in html
    assert "no delivery result" in html


def test_each_hand_off_gets_its_own_file(tmp_path: Path) -> None:
    org = org_in("mapi")
    paths = {
        send_test(org, to=["bob@example.org"], eml_folder=tmp_path, desktop_facts=QUIET).eml_path
        for _ in range(5)
    }
    assert len(paths) == 5
    assert len(list(tmp_path.iterdir())) == 5


def test_a_missing_folder_is_named_in_each_faces_words_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    gone = tmp_path / "no-such-folder"
    result = send_test(org_in("outlook"), to=["bob@example.org"], eml_folder=gone)
    assert not result.ok
    assert result.eml_path is None
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert diagnosis.cause.value == "setting_invalid"
    assert diagnosis.title == "The EML draft could not be written"
    assert "does not exist" in diagnosis.explanation
    assert "--eml-out" in " ".join(diagnosis.for_face(Face.CLI).fix)
    assert "“Folder for test drafts”" in " ".join(diagnosis.for_face(Face.WIDGET).fix)
    assert "eml_folder" in " ".join(diagnosis.fix)
    assert not gone.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_folder_should_be_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    result = send_test(org_in("lotus_notes"), to=["bob@example.org"], eml_folder=blocker)
    assert result.diagnosis is not None
    assert "is not a folder" in result.diagnosis.explanation
    assert blocker.read_text() == "keep me"


def test_no_folder_set_says_so(tmp_path: Path) -> None:
    result = send_test(org_in("outlook"), to=["bob@example.org"])
    assert result.diagnosis is not None
    assert result.diagnosis.title == "No folder is set for the EML draft"


def test_the_orgs_folder_is_the_default_and_the_argument_wins(tmp_path: Path) -> None:
    own, given = tmp_path / "own", tmp_path / "given"
    own.mkdir()
    given.mkdir()
    org = org_in("outlook", eml_folder=str(own))
    first = send_test(org, to=["bob@example.org"], desktop_facts=QUIET)
    second = send_test(org, to=["bob@example.org"], eml_folder=given, desktop_facts=QUIET)
    assert first.eml_path is not None
    assert Path(first.eml_path).parent == own
    assert second.eml_path is not None
    assert Path(second.eml_path).parent == given


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device"):
        write_eml(b"data", tmp_path, "x.eml")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "x.eml").write_bytes(b"earlier")
    with pytest.raises(OSError, match="exists already"):
        write_eml(b"later", tmp_path, "x.eml")
    assert (tmp_path / "x.eml").read_bytes() == b"earlier"


def test_nothing_is_opened_unless_asked_and_the_launcher_gets_the_file(tmp_path: Path) -> None:
    opened: list[Path] = []
    eff = effective(org_in("outlook"))
    quiet = hand_off(
        eff, to=["bob@example.org"], folder=tmp_path, facts=QUIET, launcher=opened.append
    )
    assert quiet.ok
    assert opened == []
    asked = hand_off(
        eff,
        to=["bob@example.org"],
        folder=tmp_path,
        facts=QUIET,
        launcher=opened.append,
        open_it=True,
    )
    assert asked.eml_path is not None
    assert opened == [Path(asked.eml_path)]
    assert "opened" in asked.transcript.to_text()


def test_a_launcher_that_fails_is_said_and_the_file_stays(tmp_path: Path) -> None:
    def broken(path: Path) -> None:
        raise OSError(2, "No application knows this file type")

    result = hand_off(
        effective(org_in("mapi")),
        to=["bob@example.org"],
        folder=tmp_path,
        facts=QUIET,
        launcher=broken,
        open_it=True,
    )
    assert result.ok
    assert result.eml_path is not None
    assert Path(result.eml_path).exists()
    assert "not opened: the system could not open it" in result.transcript.to_text()
    assert open_file(result.eml_path, broken) is not None


def test_a_user_in_a_desktop_mode_hands_off_as_themself(tmp_path: Path) -> None:
    org = OrgSettings(mode="smtp", host="smtp.example.com", from_address="it@example.com")
    user = UserSettings(
        user_code="ann",
        override_enabled=True,
        mode="outlook",
        from_address="ann@example.com",
    )
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_test(
            org,
            user,
            to=["bob@example.org"],
            eml_folder=tmp_path,
            desktop_facts=QUIET,
            store=store,
        )
        history = store.history_frame("ann")
    assert result.ok
    assert result.eml_path is not None
    assert parsed(Path(result.eml_path))["From"].addresses[0].addr_spec == "ann@example.com"
    assert list(history["mode"]) == ["outlook"]
    assert list(history["ok"]) == [True]


def test_canary_no_password_in_the_file_the_transcript_or_the_result(tmp_path: Path) -> None:
    canary = "Canary-Pw-7431!xyz"
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "org"), Secret(canary), Secret(canary))
    org = org_in("outlook")
    result = send_test(
        org, to=["bob@example.org"], secrets=secrets, eml_folder=tmp_path, desktop_facts=QUIET
    )
    assert result.ok
    assert result.eml_path is not None
    outputs = [
        Path(result.eml_path).read_bytes().decode("utf-8", "replace"),
        result.transcript.to_text(),
        json.dumps(result.as_dict(), default=str),
        repr(result),
        result._repr_html_(),
    ]
    forms = secret_forms(canary, "it@example.com")
    for output in outputs:
        for form in forms:
            assert form not in output
    # Control: the search finds the secret where it is.
    leaked = base64.b64encode(f"\0it@example.com\0{canary}".encode()).decode()
    assert any(form in leaked for form in forms)


# --------------------------------------------------------------------------- facts (probes)


def answers(table: dict[str, str | None]) -> CommandRunner:
    def run(command: Sequence[str]) -> str | None:
        return table.get(command[-1])

    return run


def test_linux_without_a_display_has_no_session() -> None:
    facts = gather_facts(
        Mode.OUTLOOK,
        environ={},
        platform="linux",
        run=answers({}),
        euid=0,
    )
    assert facts.session is False
    assert "DISPLAY" in facts.session_detail
    assert "root" in facts.session_detail
    assert facts.opener is False
    assert facts.mail_client is None  # xdg-mime could not answer: unknown, not "none"


def test_linux_desktop_with_a_registered_client() -> None:
    facts = gather_facts(
        Mode.MAPI,
        environ={"DISPLAY": ":0"},
        platform="linux",
        run=answers({"x-scheme-handler/mailto": "thunderbird.desktop", "message/rfc822": ""}),
    )
    assert facts.session is True
    assert facts.opener is True
    assert facts.mail_client == "thunderbird.desktop"


def test_windows_session_zero_and_a_terminal_server() -> None:
    service = gather_facts(
        Mode.OUTLOOK,
        environ={},
        platform="win32",
        session_id=lambda: 0,
        registry=lambda: {"eml": "Outlook.File.eml.15"},
    )
    assert service.session is False
    assert "session 0" in service.session_detail
    assert service.mail_client == "Outlook.File.eml.15"
    remote = gather_facts(
        Mode.OUTLOOK,
        environ={"SESSIONNAME": "RDP-Tcp#3"},
        platform="win32",
        session_id=lambda: 2,
        registry=lambda: {},
    )
    assert remote.session is True
    assert remote.terminal_server is True
    assert remote.mail_client is None


def test_notes_client_and_id_are_looked_for(tmp_path: Path) -> None:
    data = tmp_path / "notes" / "data"

    def facts() -> DesktopFacts:
        return gather_facts(
            Mode.LOTUS_NOTES,
            environ={"DISPLAY": ":0"},
            platform="linux",
            run=answers({}),
            home=tmp_path,
        )

    none = facts()
    assert none.notes_client is False
    data.mkdir(parents=True)
    (data / "notes.ini").write_text("[Notes]\n")
    client_only = facts()
    assert client_only.notes_client is True
    assert client_only.notes_id is False
    (data / "user.id").write_bytes(b"\x00id")
    both = facts()
    assert both.notes_client is True
    assert both.notes_id is True


# --------------------------------------------------------------------------- the decision (pure)


def keys(mode: Mode, **facts: object) -> list[str]:
    base: dict[str, object] = {"system": "linux", "session": True, "opener": True}
    merged: dict[str, Any] = {**base, **facts}
    return [note.key for note in handoff_notes(mode, DesktopFacts(**merged))]


def test_the_notes_follow_the_facts() -> None:
    assert keys(Mode.OUTLOOK, mail_client="outlook.desktop") == ["mail-client"]
    assert keys(Mode.OUTLOOK, session=False, opener=False)[0] == "no-session"
    assert "terminal-server" in keys(Mode.OUTLOOK, terminal_server=True)
    assert "no-mail-client" in keys(Mode.MAPI, mail_client="")
    assert "other-mail-client" in keys(Mode.OUTLOOK, mail_client="thunderbird.desktop")
    assert "other-mail-client" not in keys(Mode.MAPI, mail_client="thunderbird.desktop")
    assert "mapi-profile" in keys(Mode.MAPI)
    assert "mapi-profile" not in keys(Mode.OUTLOOK)
    assert "notes-client-missing" in keys(Mode.LOTUS_NOTES, notes_client=False)
    assert "notes-id-missing" in keys(Mode.LOTUS_NOTES, notes_client=True, notes_id=False)
    assert "notes-client" in keys(Mode.LOTUS_NOTES)
    assert "other-mail-client" in keys(Mode.LOTUS_NOTES, mail_client="Outlook.File.eml.15")
    assert "no-opener" in keys(Mode.OUTLOOK, opener=False)
    assert "no-opener" not in keys(Mode.OUTLOOK, session=False, opener=False)
    # Unknown is never read as "none": no mail-client note either way.
    assert not {"no-mail-client", "other-mail-client"} & set(keys(Mode.OUTLOOK, mail_client=None))


def test_no_session_tells_to_use_smtp() -> None:
    facts = DesktopFacts(system="windows", session=False, session_detail="Windows session 0")
    (note, *_rest) = handoff_notes(Mode.OUTLOOK, facts)
    assert note.severity == "warning"
    assert "Windows session 0" in note.text
    assert "smtp" in note.text


def test_a_non_desktop_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="not a desktop mode"):
        handoff_notes(Mode.SMTP, QUIET)


def test_the_mail_client_lookups_decide_in_order() -> None:
    assert linux_mail_client(None, None) is None
    assert linux_mail_client("", "") == ""
    assert linux_mail_client("thunderbird.desktop", "evolution.desktop") == "evolution.desktop"
    assert linux_mail_client("thunderbird.desktop", None) == "thunderbird.desktop"
    assert windows_mail_client({}) is None
    assert windows_mail_client({"eml": None, "mailto": None}) == ""
    assert windows_mail_client({"mailto": "Outlook.URL.mailto.15", "clients_machine": "x"}) == (
        "Outlook.URL.mailto.15"
    )
    assert windows_mail_client({"clients_user": None, "clients_machine": "Microsoft Outlook"}) == (
        "Microsoft Outlook"
    )


def test_the_result_carries_the_notes(tmp_path: Path) -> None:
    facts = DesktopFacts(system="linux", session=False, session_detail="no DISPLAY")
    result = send_test(
        org_in("outlook"), to=["bob@example.org"], eml_folder=tmp_path, desktop_facts=facts
    )
    assert result.ok
    assert any("No desktop session" in note for note in result.notes)
    assert "No desktop session" in result.transcript.to_text()


def test_the_mailto_handler_is_asked_only_when_eml_files_have_none() -> None:
    asked: list[str] = []

    def run(command: Sequence[str]) -> str | None:
        asked.append(command[-1])
        return {"message/rfc822": "evolution.desktop"}.get(command[-1])

    facts = gather_facts(Mode.OUTLOOK, environ={"DISPLAY": ":0"}, platform="linux", run=run)
    assert facts.mail_client == "evolution.desktop"
    assert asked == ["message/rfc822"]
