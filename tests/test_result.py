"""A test send's result is a value every face reads without the sender or the renderer.

The API senders, the audit and the widgets read :class:`~mailkit.result.TestResult`; none of them
should have to load the SMTP adapter (aiosmtplib, NTLM, certificates) for it, and the value does
not import its HTML cards: a notebook's display asks for them only when it shows a result.
"""

from __future__ import annotations

import json
import subprocess
import sys

from smtpd_servers import Credentials

from mailkit.diagnose import diagnose
from mailkit.outcome import Failure, Phase, SendContext, Signal
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.transcript import Recorder, SecretScrubber

CONTEXT = SendContext(host="mail.example.com", port=587, security="starttls", auth="plain")
CANARY = Credentials()


def _loaded_by(statement: str) -> list[str]:
    """Which mailkit and adapter modules ``statement`` loads in a fresh interpreter."""
    script = (
        "import json, sys\n"
        f"{statement}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(("
        "'mailkit.', 'aiosmtplib', 'spnego', 'cryptography', 'requests')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_result_loads_neither_a_sender_nor_the_cards() -> None:
    loaded = _loaded_by("from mailkit.result import TestResult, TlsInfo, TokenProvider")
    assert "mailkit.result" in loaded  # the check can see what was imported
    assert [m for m in loaded if m.startswith("mailkit.senders")] == []
    assert "mailkit.cards" not in loaded
    assert not [m for m in loaded if m.split(".")[0] in {"aiosmtplib", "spnego", "cryptography"}]


def test_the_runner_loads_no_sender() -> None:
    loaded = _loaded_by("from mailkit.runner import run_sync")
    assert loaded == ["mailkit.runner"]


def test_checking_a_ca_file_loads_no_certificate_parser() -> None:
    """The command line checks ``--ca-file`` before a send; cryptography waits for a peer."""
    loaded = _loaded_by(
        "from mailkit.senders.tls import ca_file_problem\n"
        "assert ca_file_problem('no-such-file.pem') == 'does not exist'"
    )
    assert "mailkit.senders.tls" in loaded
    assert not [m for m in loaded if m.startswith("cryptography")]


def _result(*, ok: bool) -> TestResult:
    password = CANARY.password
    scrubber = SecretScrubber([Secret(password)], username="alice")
    recorder = Recorder(username="alice", scrubber=scrubber)
    recorder.info(f"server echoed {password}", Phase.AUTH)
    diagnosis = None
    if not ok:
        failure = Failure(Phase.AUTH, Signal.REPLY, code=535, enhanced="5.7.8", text="5.7.8 no")
        diagnosis = diagnose(failure, CONTEXT)
    return TestResult(
        ok=ok,
        transcript=recorder.transcript(),
        context=CONTEXT,
        scrub=scrubber,
        diagnosis=diagnosis,
        auth_mechanism="PLAIN" if ok else None,
        server_reply=f"250 queued {password}" if ok else None,
    )


def test_a_result_shows_its_card_in_a_notebook() -> None:
    accepted = _result(ok=True)._repr_html_()
    assert "Test message accepted" in accepted
    assert "AUTH PLAIN" in accepted
    assert "<table" in accepted  # the transcript follows the card
    refused = _result(ok=False)
    shown = refused._repr_html_()
    assert refused.diagnosis is not None
    assert refused.diagnosis.title in shown
    assert "How to fix it" in shown
    assert CANARY.leaks_in(accepted + shown) == []


def test_run_sync_works_inside_a_running_loop() -> None:
    """A notebook cell runs in the kernel's loop; the coroutine then runs on a worker thread."""

    async def inner() -> str:
        return "done"

    async def cell() -> str:
        return run_sync(inner())

    assert run_sync(inner()) == "done"
    assert run_sync(cell()) == "done"
