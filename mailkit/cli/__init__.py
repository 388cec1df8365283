"""The ``mailkit`` command line: the same core as the notebooks, for scripts and support.

Exit codes: 0 success; 1 usage or configuration (arguments, a file, settings that do not
validate, an unusable store or secret store). ``mailkit test`` adds one code per failure
phase: 2 connect/DNS, 3 greeting/EHLO, 4 TLS/STARTTLS, 5 auth (also an OAuth consent or token
the provider refuses), 6 sender, 7 recipient, 8 data (an API's other refusals), 9 outcome
unknown (the message may have been delivered). Errors go to stderr as one
clear message (JSON with ``--json``), never as a traceback. Passwords are never accepted as
arguments: they would land in shell history and process lists. When the reader of the output
goes away (``mailkit --json … | head``) the command stops quietly with 141, the status of a Unix
tool stopped by SIGPIPE: no error text, no traceback.

One module per command (``mailkit/cli/<command>.py``) adds its arguments in ``register`` and
does its work in its ``cmd_*`` functions; :data:`COMMANDS` names them. A run builds the
arguments of the command it was asked for only, so ``mailkit test`` does not import (or pay
for) the audit's or the migration's modules; ``mailkit --help`` lists every command from the
table alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

# Only the standard library and mailkit.errors at the top: `mailkit --help` and a usage error
# must start in a blink, so each command imports what it needs (pandas, the keyring, pydantic,
# aiosmtplib) when it runs.
from mailkit.cli.common import (
    EXIT_AUTH,
    EXIT_CONNECT,
    EXIT_DATA,
    EXIT_GREETING,
    EXIT_OK,
    EXIT_OUTCOME_UNKNOWN,
    EXIT_RECIPIENT,
    EXIT_SENDER,
    EXIT_TLS,
    EXIT_USAGE,
    NOTICES,
    Parser,
    add_command,
    describe,
)
from mailkit.errors import FieldProblem, MailkitError, SettingsError, UnsafeSettingWarning

__all__ = [
    "COMMANDS",
    "EXIT_AUTH",
    "EXIT_BROKEN_PIPE",
    "EXIT_CONNECT",
    "EXIT_DATA",
    "EXIT_GREETING",
    "EXIT_OK",
    "EXIT_OUTCOME_UNKNOWN",
    "EXIT_RECIPIENT",
    "EXIT_SENDER",
    "EXIT_TLS",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "main_error",
]

#: Each subcommand: its name, the module under ``mailkit.cli`` whose ``register(parser)`` adds
#: its arguments (and sub-commands), and its one-line help, which ``mailkit --help`` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "migrate": ("migrate", "Migrate legacy email settings (JSON or INI) and report every change."),
    "test": (
        "test",
        "Send the test message with the org's or a user's settings and show the dialog.",
    ),
    "demo-server": (
        "demo",
        "Run the demo mail server (loopback, STARTTLS + TLS, demo accounts) and a local fake "
        "of Google's and Microsoft's OAuth, the Gmail API and Graph until Ctrl-C.",
    ),
    "audit": (
        "audit",
        "Audit users' effective email settings: findings with severity, message and fix.",
    ),
    "discover": (
        "discover",
        "Find an address's submission settings (presets, autoconfig, SRV, MX, Autodiscover), "
        "ranked, with their sources; --probe checks the best servers.",
    ),
    "domain": (
        "domain",
        "Check a sending domain's health (MX, SPF for the sending server, DMARC, DKIM): "
        "findings with severity, message and fix.",
    ),
    "probe": (
        "probe",
        "Probe a mail server's ports at once (greeting, EHLO, STARTTLS, TLS, certificate) and "
        "recommend a port and security, with reasons.",
    ),
    "users": ("users", "Import or export the users table."),
    "profile": ("profile", "Create a profile, or import or export one as TOML."),
    "secret": (
        "secret",
        "Store, list or delete a profile's passwords in its secret store (values are never "
        "shown or taken as arguments).",
    ),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the arguments of that one command and the names of the
    rest (``""``: names only, enough for ``mailkit --help`` and a usage error).

    A command's module is imported here, so a run pays for its own command alone.
    """
    parser = Parser(
        prog="mailkit",
        description="Set up, test and audit the outgoing email of business software.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        command = add_command(commands, name, None, help_text)
        if only is None or name == only:
            importlib.import_module(f"mailkit.cli.{module_name}").register(command)
    return parser


def _chosen_command(argv: Sequence[str]) -> str:
    """The subcommand ``argv`` names (its first word that is not an option), or ``""``."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else ""
    return ""


def _problems(exc: BaseException) -> list[FieldProblem]:
    problems = getattr(exc, "problems", None)
    return list(problems) if problems else []


def _exit_code(exc: BaseException) -> int:
    return EXIT_USAGE


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if argv is None:
        # The program itself, not a caller in Python: mailkit's models use no pydantic plugin,
        # and looking for them scans every installed package's entry points (7-10 ms of a
        # test send's start-up). An explicit setting in the environment is left as it is.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Risky-but-accepted settings become one "warning:" line each, not Python warnings.
            warnings.simplefilter("always", UnsafeSettingWarning)
            code = _run(argv, as_json, out, err)
            out.flush()  # here, where a reader that went away can still be handled
    except BrokenPipeError:
        return _reader_gone(out)
    shown: set[str] = set()
    for w in caught:
        if w.category is not UnsafeSettingWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in shown:
            shown.add(str(w.message))
            err.write(f"mailkit: warning: {w.message}\n")
    return code


def _run(argv: list[str], as_json: bool, out: TextIO, err: TextIO) -> int:
    notices: list[str] = []
    token = NOTICES.set(notices)
    try:
        args = build_parser(_chosen_command(argv)).parse_args(argv)
        result: int = args.func(args, out)
    except BrokenPipeError:
        raise  # not the user's error: main() ends quietly
    except (MailkitError, OSError) as exc:
        return main_error(exc, as_json, err, notices)
    except ValueError as exc:
        problems = _validation_problems(exc)
        if problems is None:
            raise
        return main_error(SettingsError(problems), as_json, err, notices)
    finally:
        NOTICES.reset(token)
    _write_notices(notices, as_json, err)
    return result


def _validation_problems(exc: ValueError) -> list[FieldProblem] | None:
    """A settings model's ``ValidationError`` as field problems; None for any other error.

    pydantic is looked up, not imported: a command that never loaded it cannot have raised
    one of its errors, and ``mailkit --help`` stays free of it.
    """
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(exc, pydantic.ValidationError):
        return None
    from mailkit.settings import settings_problems

    return settings_problems(exc)


#: The exit status of a Unix tool stopped by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _reader_gone(out: TextIO) -> int:
    """``mailkit --json … | head``: the reader closed the pipe, so stop without a word.

    Standard output is pointed at the null device, or Python's own flush at exit would fail
    on the closed pipe again and print "Exception ignored" after all.
    """
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):
        return EXIT_BROKEN_PIPE  # not a file (a caller's buffer): nothing more to do
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _write_notices(notices: list[str], as_json: bool, err: TextIO) -> None:
    """What a command did on the side (created a profile): one JSON line, or a line each."""
    if notices and as_json:
        err.write(json.dumps({"notices": notices}, ensure_ascii=False) + "\n")
    elif notices:
        err.writelines(f"mailkit: {text}\n" for text in notices)


def main_error(exc: BaseException, as_json: bool, err: TextIO, notices: Sequence[str] = ()) -> int:
    """Print one user error (no traceback) and return its exit code.

    ``notices`` (e.g. a profile created before the failure) go with it: inside the one JSON
    object with ``--json``, as lines before the error otherwise.
    """
    message = describe(exc)
    if as_json:
        payload: dict[str, Any] = {
            "error": type(exc).__name__,
            "message": message,
            "problems": [{"field": p.field, "message": p.message} for p in _problems(exc)],
        }
        if notices:
            payload["notices"] = list(notices)
        err.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        err.writelines(f"mailkit: {text}\n" for text in notices)
        err.write(f"mailkit: error: {message}\n")
    return _exit_code(exc)
