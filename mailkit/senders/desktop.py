"""The desktop hand-off: a test in ``outlook``, ``mapi`` or ``lotus_notes`` mode writes an .eml.

In those modes the workstation's mail client sends, and mailkit can neither drive it nor see
what it does. A test therefore writes the usual test message (:mod:`mailkit.message`: the
multi-language body, the priority headers) as an unsent draft — ``X-Unsent: 1`` makes Outlook
open it ready to send — into a chosen folder, and says plainly that the client, not mailkit,
sends it. On request (the widget's "Open it" button, ``--open``) the file is opened with the
system's handler; the launcher is a parameter, so tests never start a real program.

This module is the adapter: it writes the file, reads the environment and the registry or
``xdg-mime`` for the facts, and launches. What the facts mean is decided in
:mod:`mailkit.diagnose.desktop`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailkit.diagnose import diagnose
from mailkit.diagnose.desktop import (
    DesktopFacts,
    System,
    handoff_notes,
    handoff_statement,
    linux_mail_client,
    windows_mail_client,
)
from mailkit.fields import Mode, Priority
from mailkit.message import TestMessage, checked_test_message
from mailkit.outcome import Failure, Phase, SendContext, Signal
from mailkit.resolve import Effective
from mailkit.result import TestResult
from mailkit.transcript import Recorder, Row

__all__ = [
    "CommandRunner",
    "EmlFolderError",
    "Launcher",
    "gather_facts",
    "hand_off",
    "open_file",
    "system_launcher",
    "write_eml",
]

#: Opens a file with the system's handler for it; raises ``OSError`` when it cannot.
Launcher = Callable[[Path], None]
#: Runs a command and returns its standard output, or None when it could not run.
CommandRunner = Callable[[Sequence[str]], str | None]


class EmlFolderError(OSError):
    """The folder for the .eml is missing, not a folder, or not writable (message: why)."""


def _system(platform: str | None = None) -> System:
    name = platform or sys.platform
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "darwin"
    if name in ("win32", "cygwin"):
        return "windows"
    return "other"


def _run(command: Sequence[str]) -> str | None:
    """A short query's output (``xdg-mime``), or None when the program is missing or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _windows_registry() -> dict[str, str | None]:
    """The registry values :func:`~mailkit.diagnose.desktop.windows_mail_client` decides on."""
    import importlib

    # Windows only; looked up by name so the type checker on other systems needs no stubs.
    winreg: Any = importlib.import_module("winreg")

    def read(root: int, path: str, name: str = "") -> str | None:
        try:
            with winreg.OpenKey(root, path) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except OSError:
            return None
        return str(value) if value else None

    choice = r"Software\Microsoft\Windows\Shell\Associations\UrlAssociations\mailto\UserChoice"
    return {
        "eml": read(winreg.HKEY_CLASSES_ROOT, ".eml"),
        "mailto": read(winreg.HKEY_CURRENT_USER, choice, "ProgId"),
        "clients_user": read(winreg.HKEY_CURRENT_USER, r"Software\Clients\Mail"),
        "clients_machine": read(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Clients\Mail"),
    }


def _windows_session_id() -> int | None:
    import ctypes

    session = ctypes.c_ulong()
    windll = getattr(ctypes, "windll", None)
    if windll is None:
        return None
    ok = windll.kernel32.ProcessIdToSessionId(os.getpid(), ctypes.byref(session))
    return int(session.value) if ok else None


def _notes_files(environ: Mapping[str, str], home: Path) -> tuple[bool, bool]:
    """Whether a Notes client (its program or notes.ini) and an ID file (``*.id``) are in the
    places the Notes installers use on Windows, macOS and Linux."""
    program_files = [environ.get("ProgramFiles(x86)"), environ.get("ProgramFiles")]
    places = [
        *(
            Path(base) / vendor / "Notes"
            for base in program_files
            if base
            for vendor in ("HCL", "IBM", "Lotus")
        ),
        home / "Library" / "Application Support" / "HCL Notes Data",
        Path("/Applications/HCL Notes.app"),
        Path("/opt/hcl/notes"),
        Path("/opt/ibm/notes"),
        home / "notes" / "data",
    ]
    found = [place for place in places if place.is_dir()]
    client = any(
        place.suffix == ".app"
        or any((place / n).exists() for n in ("notes.ini", "notes.exe", "notes"))
        for place in found
    )
    ids = any(next(place.glob("*.id"), None) is not None for place in found)
    ids = ids or any(
        next((place / "Data").glob("*.id"), None) is not None
        for place in found
        if (place / "Data").is_dir()
    )
    return client, ids


def gather_facts(
    mode: Mode,
    *,
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    run: CommandRunner | None = None,
    registry: Callable[[], Mapping[str, str | None]] | None = None,
    session_id: Callable[[], int | None] | None = None,
    home: Path | None = None,
    euid: int | None = None,
) -> DesktopFacts:
    """Look at this machine: desktop session, mail program, opener, Notes. Every probe is a
    parameter (defaults: the real ones), so tests can stand in for any kind of machine."""
    env = os.environ if environ is None else environ
    system = _system(platform)
    runner = run or _run
    home = home if home is not None else Path.home()
    session: bool | None = None
    detail = ""
    terminal = False
    client: str | None = None
    opener = False
    if system == "linux" or system == "other":
        graphical = bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
        session = graphical
        if not graphical:
            uid = euid if euid is not None else (os.geteuid() if hasattr(os, "geteuid") else -1)
            detail = "no DISPLAY or WAYLAND_DISPLAY is set" + (
                ", and mailkit runs as root" if uid == 0 else ""
            )
        terminal = bool(env.get("XRDP_SESSION"))
        opener = (run is not None or shutil.which("xdg-open") is not None) and graphical
        # The .eml's own handler decides; the mailto one is asked only when there is none
        # (each xdg-mime query is a shell script that takes a good fraction of a second).
        rfc822 = runner(["xdg-mime", "query", "default", "message/rfc822"])
        mailto = (
            None if rfc822 else runner(["xdg-mime", "query", "default", "x-scheme-handler/mailto"])
        )
        client = linux_mail_client(mailto, rfc822)
    elif system == "darwin":
        # Whether a user is signed in at the console is not knowable from here: unknown.
        opener = shutil.which("open") is not None
    elif system == "windows":
        sid = (session_id or _windows_session_id)()
        session = None if sid is None else sid != 0
        if sid == 0:
            detail = "Windows session 0: a service, with no signed-in user"
        name = env.get("SESSIONNAME", "").upper()
        terminal = name.startswith(("RDP-", "ICA-"))
        opener = True
        try:
            client = windows_mail_client((registry or _windows_registry)())
        except (ImportError, OSError):
            client = None
    notes_client = notes_id = None
    if mode is Mode.LOTUS_NOTES:
        notes_client, notes_id = _notes_files(env, home)
    return DesktopFacts(
        system=system,
        session=session,
        session_detail=detail,
        terminal_server=terminal,
        mail_client=client,
        opener=opener,
        notes_client=notes_client,
        notes_id=notes_id,
    )


def system_launcher(platform: str | None = None) -> Launcher | None:
    """The system's way to open a file with its handler, or None where there is none."""
    system = _system(platform)
    if system == "windows":
        startfile = getattr(os, "startfile", None)
        if startfile is None:
            return None

        def start(path: Path) -> None:
            startfile(str(path))

        return start
    program = "open" if system == "darwin" else "xdg-open"
    found = shutil.which(program)
    if found is None:
        return None

    def launch(path: Path) -> None:
        subprocess.Popen(
            [found, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    return launch


def open_file(path: Path | str, launcher: Launcher | None = None) -> str | None:
    """Open a written .eml with the system's handler; None when done, else why not."""
    opener = launcher if launcher is not None else system_launcher()
    if opener is None:
        return (
            "no system opener here (xdg-open, open or the Windows shell): open the file in the "
            "mail program by hand"
        )
    try:
        opener(Path(path))
    except OSError as exc:
        return f"the system could not open it ({exc.strerror or exc})"
    return None


def _draft(message: TestMessage) -> bytes:
    """The test message as a draft: ``X-Unsent: 1`` makes Outlook open it ready to send."""
    message.message["X-Unsent"] = "1"
    return message.as_bytes()


def _file_name(mode: Mode, now: datetime) -> str:
    """ASCII only, no user text, and unique: the time to the second plus a random part."""
    return f"mailkit-test-{mode.value}-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}.eml"


def write_eml(data: bytes, folder: Path, name: str) -> Path:
    """Write ``data`` as ``folder/name`` atomically (a temporary file in the same folder,
    flushed, then renamed), or raise :class:`EmlFolderError` saying why the folder cannot
    take it. A half-written file is never left behind."""
    if not str(folder).strip():
        raise EmlFolderError("not set")
    if not folder.exists():
        raise EmlFolderError(f"{folder} does not exist")
    if not folder.is_dir():
        raise EmlFolderError(f"{folder} is not a folder")
    target = folder / name
    if target.exists():
        raise EmlFolderError(f"{target} exists already; nothing was overwritten")
    try:
        handle, temporary = tempfile.mkstemp(prefix=".mailkit-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise EmlFolderError(f"{folder} cannot be written to ({exc.strerror or exc})") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise EmlFolderError(f"writing to {folder} failed ({exc.strerror or exc})") from None
    return target


def hand_off(
    eff: Effective,
    *,
    to: Sequence[str],
    folder: str | os.PathLike[str] | None,
    priority: Priority | None = None,
    subject: str | None = None,
    facts: DesktopFacts | None = None,
    launcher: Launcher | None = None,
    open_it: bool = False,
    on_row: Callable[[Row], None] | None = None,
) -> TestResult:
    """Write the test message as an .eml draft for ``eff.mode``'s desktop client.

    ``ok`` when the file is written (whatever the client later does); a folder that cannot
    take it is a diagnosis naming the folder setting. ``open_it`` opens the file with
    ``launcher`` (default: the system's). ``facts`` default to :func:`gather_facts`. Never
    raises for a failed hand-off.
    """
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    mode = eff.mode
    if not mode.is_desktop_client:
        raise ValueError(f"mode {mode.value} is not a desktop mode (outlook, mapi, lotus_notes)")
    recorder = Recorder(on_row=on_row)
    context = SendContext(
        host="",
        port=0,
        security="none",
        auth="none",
        username=eff.username,
        from_address=eff.from_address,
        desktop_client=mode.value,
    )
    recorder.info(
        f"mode {mode.value}: the workstation's mail client sends, not mailkit; the test writes "
        "the test message as an .eml draft for it",
        Phase.SETUP,
    )
    failure: Failure | None = None
    path: Path | None = None
    message: TestMessage | None = None
    notes: tuple[str, ...] = ()
    try:
        built = checked_test_message(
            sender=eff.from_address,
            recipients=list(to),
            sender_name=eff.from_name,
            priority=priority or eff.priority,
            subject=subject,
        )
        if isinstance(built, Failure):
            raise _Stop(built)
        message = built
        if folder is None or not str(folder).strip():
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail="eml_folder: not set"))
        data = _draft(message)
        try:
            path = write_eml(data, Path(folder), _file_name(mode, started))
        except EmlFolderError as exc:
            raise _Stop(Failure(Phase.SETUP, Signal.MISSING, detail=f"eml_folder: {exc}")) from None
        recorder.info(
            f"wrote {path} ({len(data):,} bytes; X-Unsent: 1, From {message.sender}, To "
            f"{', '.join(message.recipients)}, Message-ID {message.message_id})",
            Phase.HANDOFF,
        )
        recorder.info(handoff_statement(mode, str(path)), Phase.HANDOFF)
        found = facts if facts is not None else gather_facts(mode)
        said = handoff_notes(mode, found)
        for note in said:
            recorder.info(f"{note.severity}: {note.text}", Phase.HANDOFF)
        notes = tuple(note.text for note in said)
        if open_it:
            problem = open_file(path, launcher)
            if problem is None:
                recorder.info(f"opened {path.name} with the system's handler", Phase.HANDOFF)
            else:
                recorder.info(f"not opened: {problem}", Phase.HANDOFF)
    except _Stop as stop:
        failure = stop.failure
    diagnosis = None
    if failure is not None:
        diagnosis = diagnose(failure, context)
        recorder.info(f"{diagnosis.title} ({diagnosis.cause.value})", failure.phase)
    return TestResult(
        ok=failure is None,
        transcript=recorder.transcript(),
        context=context,
        scrub=recorder.scrubber,
        diagnosis=diagnosis,
        message_id=message.message_id if failure is None and message is not None else None,
        server_reply=None,
        started=started,
        duration_ms=round((time.perf_counter() - t0) * 1000, 3),
        eml_path=str(path) if path is not None else None,
        notes=notes,
    )


class _Stop(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure
