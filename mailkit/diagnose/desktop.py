"""What can be known about a desktop hand-off (``outlook``, ``mapi``, ``lotus_notes``).

In those modes the workstation's mail client sends, not mailkit: a test writes the test
message as an ``.eml`` draft and can only say what stands in the client's way. The facts
(is there a desktop session, which program opens mail, is Notes installed) are gathered by an
adapter (:func:`mailkit.senders.desktop.gather_facts`); deciding what they mean is pure and
lives here, so every combination is tested as plain data, whatever machine runs the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mailkit.diagnose.advice import Advice
from mailkit.diagnose.facts import Facts
from mailkit.diagnose.fields import S
from mailkit.fields import Mode

__all__ = [
    "CLIENT_NAMES",
    "DesktopFacts",
    "HandoffNote",
    "eml_folder_unusable",
    "handoff_notes",
    "handoff_statement",
    "linux_mail_client",
    "windows_mail_client",
]

System = Literal["linux", "darwin", "windows", "other"]

#: How each desktop mode's client is named to people.
CLIENT_NAMES: Mapping[Mode, str] = {
    Mode.OUTLOOK: "Outlook",
    Mode.MAPI: "the default mail program (MAPI)",
    Mode.LOTUS_NOTES: "HCL Notes (Lotus Notes)",
}


@dataclass(frozen=True)
class DesktopFacts:
    """What the machine that writes the hand-off says about its desktop (gathered, not decided).

    ``None`` means "could not be found out here", which the decision treats as unknown, never
    as yes or no.
    """

    system: System
    #: A signed-in desktop session the mail client could open in.
    session: bool | None
    #: Why there is no session, in words (e.g. "no DISPLAY or WAYLAND_DISPLAY is set").
    session_detail: str = ""
    #: A terminal server session (Remote Desktop, Citrix), where clients often lack a profile.
    terminal_server: bool = False
    #: The program registered for mail (mailto: or .eml): "" when none is, None when unknown.
    mail_client: str | None = None
    #: Whether a system opener exists (xdg-open, macOS ``open``, Windows' shell).
    opener: bool = False
    #: A Notes client on this machine (its program or notes.ini found); None when not looked for.
    notes_client: bool | None = None
    #: A Notes ID file (user.id) next to the client's data; None when not looked for.
    notes_id: bool | None = None


@dataclass(frozen=True)
class HandoffNote:
    """One thing known about the hand-off: a stable key, how much it matters, and words."""

    key: str
    severity: Literal["warning", "info"]
    text: str


def linux_mail_client(mailto: str | None, rfc822: str | None) -> str | None:
    """The program a Linux desktop opens mail with, from ``xdg-mime query default`` for
    ``x-scheme-handler/mailto`` and ``message/rfc822``: the .eml's handler first (that is what
    opens the draft), else the mailto handler; "" when neither is set, None when both lookups
    failed (no xdg-mime)."""
    if mailto is None and rfc822 is None:
        return None
    for answer in (rfc822, mailto):
        if answer and answer.strip():
            return answer.strip()
    return ""


def windows_mail_client(registry: Mapping[str, str | None]) -> str | None:
    """The mail program Windows would use, from the registry values an adapter read.

    Keys (missing or None when absent): ``eml`` (HKCR ``.eml`` default, a ProgID), ``mailto``
    (HKCU ...\\URLAssociations\\mailto\\UserChoice ProgId), ``clients_user`` and
    ``clients_machine`` (the default of Software\\Clients\\Mail in HKCU and HKLM: what Simple
    MAPI loads). The user's own choice wins over the machine's; "" when nothing is registered,
    None when the registry could not be read at all."""
    if not registry:
        return None
    for key in ("eml", "mailto", "clients_user", "clients_machine"):
        value = registry.get(key)
        if value and value.strip():
            return value.strip()
    return ""


def _is_outlook(client: str) -> bool:
    return "outlook" in client.casefold()


def _is_notes(client: str) -> bool:
    name = client.casefold()
    return "notes" in name or "lotus" in name


def handoff_statement(mode: Mode, path: str) -> str:
    """The plain words every face shows for a written hand-off."""
    client = CLIENT_NAMES[mode]
    return (
        f"The test message was written to {path} as an unsent draft for {client}. "
        f"{client[0].upper()}{client[1:]}, not mailkit, sends it: open the file there and press "
        "Send. mailkit will see no delivery result; check the recipient's inbox."
    )


def handoff_notes(mode: Mode, facts: DesktopFacts) -> tuple[HandoffNote, ...]:
    """Everything the facts say about handing a message to ``mode``'s client on this machine."""
    if not mode.is_desktop_client:
        raise ValueError(f"mode {mode.value} is not a desktop mode (outlook, mapi, lotus_notes)")
    client = CLIENT_NAMES[mode]
    notes: list[HandoffNote] = []
    if facts.session is False:
        why = f" ({facts.session_detail})" if facts.session_detail else ""
        notes.append(
            HandoffNote(
                "no-session",
                "warning",
                f"No desktop session on this machine{why}: it runs as a service, a scheduled "
                f"task or a server without a signed-in user, where {client} cannot run, so mail "
                "the application hands to it would never leave. For sends from this machine set "
                "the mode to smtp (or microsoft_graph), which mailkit can test.",
            )
        )
    if facts.terminal_server:
        notes.append(
            HandoffNote(
                "terminal-server",
                "warning",
                f"This is a terminal server session (Remote Desktop or Citrix): {client} often "
                "has no profile there, or asks a question nobody sees. Use smtp for users who "
                "work on terminal servers.",
            )
        )
    if facts.mail_client == "":
        notes.append(
            HandoffNote(
                "no-mail-client",
                "warning",
                "No default mail program is registered on this machine (nothing opens mailto: "
                f"links or .eml files), so the hand-off has no client to go to. Install {client} "
                "and make it the default mail program, or set the mode to smtp.",
            )
        )
    elif facts.mail_client:
        wrong = (mode is Mode.OUTLOOK and not _is_outlook(facts.mail_client)) or (
            mode is Mode.LOTUS_NOTES and not _is_notes(facts.mail_client)
        )
        if wrong:
            notes.append(
                HandoffNote(
                    "other-mail-client",
                    "warning",
                    f"The default mail program here is {facts.mail_client}, not {client}: the "
                    f"draft opens there. Make {client} the default mail program, or change the "
                    "mode to match the program people really use.",
                )
            )
        else:
            notes.append(
                HandoffNote(
                    "mail-client",
                    "info",
                    f"The default mail program here is {facts.mail_client}.",
                )
            )
    if mode is Mode.MAPI:
        notes.append(
            HandoffNote(
                "mapi-profile",
                "info",
                "MAPI sends through the default mail program's default profile: it cannot pick "
                "the sending account, sync contacts or report delivery, and a program without a "
                "configured profile asks for one first (Outlook: Control Panel > Mail > Show "
                "Profiles). Check that the profile sends as the From address you expect.",
            )
        )
    if mode is Mode.LOTUS_NOTES:
        if facts.notes_client is False:
            notes.append(
                HandoffNote(
                    "notes-client-missing",
                    "warning",
                    "No HCL Notes client was found on this machine: lotus_notes needs the "
                    "Notes client installed and signed in with the user's Notes ID on every "
                    "machine that sends. Install it, or move the sender to smtp through the "
                    "Domino server's SMTP listener.",
                )
            )
        elif facts.notes_id is False:
            notes.append(
                HandoffNote(
                    "notes-id-missing",
                    "warning",
                    "The Notes client is here but no Notes ID file (user.id) was found: Notes "
                    "cannot sign in to send. Copy the user's ID file to the Notes data folder.",
                )
            )
        else:
            notes.append(
                HandoffNote(
                    "notes-client",
                    "info",
                    "Lotus Notes needs the Notes client and the user's Notes ID on the machine "
                    "that sends, and a Domino server it can reach.",
                )
            )
    if facts.session is not False and not facts.opener:
        notes.append(
            HandoffNote(
                "no-opener",
                "info",
                "No system opener was found (xdg-open, open or the Windows shell): open the "
                "file by hand in the mail program.",
            )
        )
    return tuple(notes)


def eml_folder_unusable(f: Facts) -> Advice:
    """The hand-off could not write its EML draft: no folder set, or one that cannot take it."""
    detail = f.detail.partition(":")[2].strip() if ":" in f.detail else ""
    if not detail or detail == "not set":
        return Advice(
            "No folder is set for the EML draft",
            "In a desktop mode a test writes the test message as an EML draft for the mail "
            "client, and no folder is set to write it to.",
            (
                f"Set {S.eml_folder} to a folder on this machine the desktop user can open "
                "(e.g. the Desktop or Documents folder).",
                "Then run the test again, and open the file in the mail client to send it.",
            ),
        )
    return Advice(
        "The EML draft could not be written",
        f"The folder for the EML draft cannot take it: {detail}. Nothing was written.",
        (
            f"Set {S.eml_folder} to a folder that exists and that this account may write to, "
            "or create the folder or give this account write access to it.",
            "Then run the test again.",
        ),
    )
