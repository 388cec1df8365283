"""Hostile servers and bad files against the real sender: nothing leaks, nothing crashes.

Servers echo the password in every encoding at every step of the dialog, answer 421 anywhere,
answer one command twice, send garbage after the final dot, or go silent; a CA file is missing,
a folder or not PEM; a recipient is not an address. Every output path is searched for the
secret: text, JSON, repr, the HTML card, the rows as they arrive, the profile's history in
SQLite, the test-send widget's state, and a saved notebook.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from smtpd_servers import (
    HOSTILE_VERBS,
    Credentials,
    ScenarioServer,
    ServerLoop,
    TLSMaterial,
    start_scenario,
    stop_scenario,
)

from mailkit.cards import diagnosis_card, success_card
from mailkit.cli import main
from mailkit.errors import UnsafeSettingWarning
from mailkit.outcome import Cause, Kind, Phase
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.senders.smtp.plan import COMMAND_WAIT, QUIT_WAIT, SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Mode, OrgSettings, Security
from mailkit.store import Store
from mailkit.testsend import send_test
from mailkit.transcript import Row, Transcript

pytestmark = pytest.mark.timeout(90)

USER = "alice@example.test"


# --------------------------------------------------------------------------- the secret


def encodings(secret: str, user: str = USER) -> dict[str, str]:
    """``secret`` as a hostile server could echo it: in clear and in every wire encoding."""
    raw = secret.encode()

    def b64(blob: bytes) -> str:
        return base64.b64encode(blob).decode()

    return {
        "clear": secret,
        "login": b64(raw),
        "plain": b64(b"\0" + user.encode() + b"\0" + raw),
        "plain without user": b64(b"\0\0" + raw),
        "plain with authzid": b64(b"admin\0" + user.encode() + b"\0" + raw),
        "plain without NUL": b64(user.encode() + b"\0" + raw),
        "xoauth2": b64(b"user=" + user.encode() + b"\x01auth=Bearer " + raw + b"\x01\x01"),
        "url-safe base64": base64.urlsafe_b64encode(b"\0" + raw).decode(),
        "base64 unpadded": b64(b"\0\0\0" + raw + b"x").rstrip("="),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "percent": quote(secret, safe=""),
        "form": quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
    }


def leak_forms(secret: str) -> list[bytes]:
    """What must not appear anywhere: the forms the project's canary search knows, the
    upper-case hex and percent-encoded ones, and the secret's start (a cut one)."""
    raw = secret.encode()
    forms = Credentials(password=secret, token=secret).leak_forms()
    partial = raw[: len(raw) - 4]
    return [
        *dict.fromkeys(forms),
        raw.hex().upper().encode(),
        quote(secret, safe="").encode(),
        partial,
    ]


def leaks(secret: str, data: str | bytes) -> list[bytes]:
    blob = data.encode() if isinstance(data, str) else data
    return [form for form in leak_forms(secret) if form in blob]


def test_the_leak_search_finds_each_encoding() -> None:
    """Guard: every echoed encoding is caught by the search, so a clean result means clean."""
    secret = Credentials().password
    for name, form in encodings(secret).items():
        assert leaks(secret, f"535 5.7.8 {form} rejected"), name


def every_output(result: TestResult, rows: list[Row] | None = None) -> dict[str, str]:
    """Every way a result is shown, serialised or handed on."""
    outputs = {
        "text": result.transcript.to_text(),
        "transcript html": result.transcript.to_html(),
        "dataframe": result.transcript.to_dataframe().to_string(),
        "json": json.dumps(result.as_dict(), default=str),
        "repr": repr(result),
        "html": result._repr_html_(),
        "card": diagnosis_card(result.diagnosis) if result.diagnosis else success_card(result),
        "server reply": result.server_reply or "",
    }
    if result.diagnosis is not None:
        outputs["diagnosis"] = result.diagnosis.to_text() + repr(result.diagnosis)
    if rows is not None:
        outputs["live rows"] = repr(rows)
    return outputs


def store_files(directory: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- sending


@pytest.fixture
def hostile(server_loop: ServerLoop, tls_material: TLSMaterial) -> Iterator[Callable[..., Any]]:
    """Start scenarios by name with options; all are stopped after the test."""
    started: list[ScenarioServer] = []

    def start(name: str, **options: Any) -> ScenarioServer:
        server = start_scenario(server_loop, tls_material, name, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_scenario(server_loop, server)


def plan_for(server: ScenarioServer, **changes: Any) -> SmtpPlan:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": Security(server.security),
        "auth": AuthType.AUTO,
        "username": USER,
        "from_address": "alice@example.com",
        "ca_file": str(server.ca_file),
    }
    return SmtpPlan(**{**values, **changes})


def send(
    plan: SmtpPlan, password: str, rows: list[Row] | None = None, token: str | None = None
) -> tuple[TestResult, float]:
    started = time.monotonic()
    result = run_sync(
        send_plan_async(
            plan,
            to=["bob@example.org"],
            password=Secret(password),
            token=(lambda: Secret(token)) if token is not None else None,
            on_row=rows.append if rows is not None else None,
        )
    )
    return result, time.monotonic() - started


_GOOD_CODE = {
    "GREETING": 220,
    "EHLO": 250,
    "STARTTLS": 220,
    "AUTH_RESULT": 235,
    "MAIL": 250,
    "RCPT": 250,
    "DATA": 354,
    "END_OF_DATA": 250,
    "QUIT": 221,
}
_BAD_CODE = {
    "GREETING": 554,
    "EHLO": 550,
    "STARTTLS": 454,
    "AUTH_RESULT": 535,
    "MAIL": 550,
    "RCPT": 550,
    "DATA": 554,
    "END_OF_DATA": 554,
    "QUIT": 221,
}


def echoing_reply(verb: str, mode: str, secret: str) -> bytes:
    """A reply to ``verb`` carrying ``secret`` in every encoding: continuation lines in front of
    the good reply (``prefix``), a multi-line refusal (``final``), or lines with no code. One
    line puts the secret across the 400-character cut of a transcript row."""
    lines = [f"5.7.0 {name}: {form} (echoed)" for name, form in encodings(secret).items()]
    lines += ["x" * n + secret + "y" * 50 for n in (384, 386, 390)]  # across the row cut
    lines.append("5.7.8 Authentication failed for password " + secret)
    if mode == "malformed":
        return "".join(f"{line}\r\n" for line in lines[:3]).encode()
    code = _GOOD_CODE[verb] if mode == "prefix" else _BAD_CODE[verb]
    if mode == "prefix":
        return "".join(f"{code}-{line}\r\n" for line in lines).encode()
    body = [f"{code}-{line}" for line in lines[:-1]] + [f"{code} {lines[-1]}"]
    return "".join(f"{line}\r\n" for line in body).encode()


@pytest.mark.parametrize("mode", ["prefix", "final", "malformed"])
@pytest.mark.parametrize("verb", HOSTILE_VERBS)
def test_an_echoed_password_reaches_no_output(
    verb: str,
    mode: str,
    hostile: Callable[..., ScenarioServer],
    smtp_credentials: Credentials,
    tmp_path: Path,
) -> None:
    password = smtp_credentials.password
    server = hostile("hostile_reply", verb=verb, data=echoing_reply(verb, mode, password))
    rows: list[Row] = []
    result, elapsed = send(plan_for(server, command_timeout=5.0), password, rows)
    assert elapsed < 5.0 + 2, "a hostile reply must not cost a timeout"
    server.wait_idle()
    # The server really echoed it: the secret is in what it sent (so the search can fail).
    assert leaks(password, "\n".join(server.sent_lines))
    with Store.open(tmp_path / "p.sqlite", profile="p", create=True) as store:
        from mailkit.testsend import record

        record(store, result, user_code=None)
        history = store.history_frame().to_string()
    outputs = every_output(result, rows) | {"history": history}
    for where, text in outputs.items():
        assert leaks(password, text) == [], (where, text[:2000])
    for name, data in store_files(tmp_path).items():
        assert leaks(password, data) == [], name
    if mode == "prefix" and verb in ("END_OF_DATA", "QUIT"):
        assert result.ok, result.diagnosis and result.diagnosis.to_text()
    if mode == "prefix" and verb == "END_OF_DATA":
        assert result.server_reply is not None
        assert "<secret hidden>" in result.server_reply


def test_a_token_echoed_at_auth_reaches_no_output(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    token = smtp_credentials.token
    server = hostile(
        "hostile_reply", verb="AUTH_RESULT", data=echoing_reply("AUTH_RESULT", "final", token)
    )
    rows: list[Row] = []
    result, _ = send(
        plan_for(server, auth=AuthType.XOAUTH2, command_timeout=5.0), "unused-pw", rows, token
    )
    assert result.diagnosis is not None
    assert result.diagnosis.phase is Phase.AUTH
    for where, text in every_output(result, rows).items():
        assert leaks(token, text) == [], where


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("verb", "phase"),
    [
        ("EHLO", Phase.EHLO),
        ("STARTTLS", Phase.STARTTLS),
        ("AUTH_RESULT", Phase.AUTH),
        ("MAIL", Phase.MAIL),
        ("RCPT", Phase.RCPT),
        ("DATA", Phase.DATA),
        ("END_OF_DATA", Phase.END_OF_DATA),
    ],
)
def test_421_anywhere_is_the_server_closing_the_channel(
    verb: str, phase: Phase, hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("closing_421", verb=verb)
    result, elapsed = send(plan_for(server), smtp_credentials.password)
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.kind, diagnosis.cause) == (
        phase,
        Kind.TRANSIENT,
        Cause.SERVICE_UNAVAILABLE,
    ), diagnosis.to_text()
    assert "closing the channel" in diagnosis.explanation
    assert elapsed < 3.0
    server.wait_idle()
    assert "QUIT" not in server.commands  # the server already said goodbye


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_duplicated_rcpt_reply_is_blamed_on_rcpt_at_once(
    pipelining: bool, hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("duplicate_rcpt_reply", pipelining=pipelining)
    result, elapsed = send(plan_for(server), smtp_credentials.password)  # default waits
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.cause) == (Phase.RCPT, Cause.MALFORMED_REPLY)
    assert diagnosis.title == "The server answered a command twice"
    assert "two replies to RCPT TO" in diagnosis.explanation
    assert elapsed < 3.0, "no waiting for a reply that already came"
    assert not server.bodies, "no message after replies stopped pairing with commands"


def test_garbage_after_the_final_dot_leaves_the_outcome_unknown(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("garbage_after_dot")
    result, _ = send(plan_for(server), smtp_credentials.password)
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.kind, diagnosis.cause) == (
        Phase.END_OF_DATA,
        Kind.OUTCOME_UNKNOWN,
        Cause.OUTCOME_UNKNOWN,
    )
    assert "not an SMTP reply" in diagnosis.explanation


def test_garbage_after_the_final_dot_exits_9(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("garbage_after_dot")
    code, out, _ = cli_test(server, smtp_credentials)
    assert code == 9
    assert json.loads(out)["diagnosis"]["kind"] == "outcome_unknown"


def test_no_answer_to_starttls_is_phase_starttls(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("silent_at", verb="STARTTLS")
    result, elapsed = send(plan_for(server, command_timeout=1.0), smtp_credentials.password)
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.cause) == (Phase.STARTTLS, Cause.COMMAND_TIMEOUT)
    assert elapsed < 3.0


# --------------------------------------------------------------------------- waits


@pytest.mark.parametrize("pipelining", [True, False])
def test_an_unanswered_quit_after_the_message_costs_only_the_quit_wait(
    pipelining: bool, hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("silent_quit", pipelining=pipelining)
    result, elapsed = send(plan_for(server), smtp_credentials.password)  # default waits
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    assert QUIT_WAIT - 0.5 < elapsed < QUIT_WAIT + 2.0
    assert server.bodies


def test_a_hang_at_ehlo_ends_after_the_command_wait(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("silent_at", verb="EHLO", hang=COMMAND_WAIT + 5)
    result, elapsed = send(plan_for(server), smtp_credentials.password)  # default waits
    assert result.diagnosis is not None
    assert (result.diagnosis.phase, result.diagnosis.cause) == (Phase.EHLO, Cause.COMMAND_TIMEOUT)
    assert COMMAND_WAIT - 0.5 < elapsed < COMMAND_WAIT + 2.0  # was 61 s before the phase waits


def test_the_transcript_shows_the_waits_and_an_override(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("silent_quit", hang=1.0)
    default, _ = send(plan_for(server), smtp_credentials.password)
    waits = [r.text for r in default.transcript.rows if r.text.startswith("waits:")]
    assert waits == [
        "waits: connect 10 s, greeting 12 s, each command 15 s, end of data 60 s, QUIT 3 s "
        "(mailkit's defaults; a command timeout sets one wait for every reply)"
    ]
    overridden, _ = send(plan_for(server, command_timeout=2.0), smtp_credentials.password)
    text = overridden.transcript.to_text()
    assert "greeting 2 s, each command 2 s, end of data 2 s, QUIT 2 s" in text
    assert "every reply waits the 2 s" in text


def test_org_timeouts_override_only_when_changed() -> None:
    from mailkit.resolve import effective

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        default = SmtpPlan.from_effective(effective(OrgSettings(host="mail.example.com"), None))
        chosen = SmtpPlan.from_effective(
            effective(OrgSettings(host="mail.example.com", command_timeout=30), None)
        )
    assert (default.waits.greeting, default.waits.command, default.waits.end_of_data) == (
        12,
        15,
        60,
    )
    assert (chosen.waits.greeting, chosen.waits.command, chosen.waits.end_of_data) == (30, 30, 30)
    assert chosen.waits.quit == QUIT_WAIT


# --------------------------------------------------------------------------- bad CA files


def bad_ca_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\xffnot a certificate at all\n")
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    folder = tmp_path / "certs"
    folder.mkdir()
    return {
        "missing": (tmp_path / "nowhere" / "ca.pem", "does not exist"),
        "garbage": (garbage, "no certificate in PEM format"),
        "empty": (empty, "no certificate in PEM format"),
        "folder": (folder, "is a folder"),
    }


@pytest.mark.parametrize("kind", ["missing", "garbage", "empty", "folder"])
@pytest.mark.parametrize("mode", [Mode.SMTP, Mode.GMAIL_API])
def test_a_bad_ca_file_is_a_configuration_diagnosis_not_an_exception(
    kind: str, mode: Mode, tmp_path: Path
) -> None:
    path, problem = bad_ca_files(tmp_path)[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        org = OrgSettings(
            mode=mode,
            host="127.0.0.1",
            port=9,  # nothing is contacted: the file is checked first
            from_address="it@example.com",
            ca_file=str(path),
            api_url="https://127.0.0.1:9",
        )
    result = send_test(org, to=["bob@example.org"], token=lambda: Secret("tok-unused-1"))
    diagnosis = result.diagnosis
    assert diagnosis is not None
    assert (diagnosis.phase, diagnosis.kind) == (Phase.SETUP, Kind.CONFIGURATION)
    assert str(path) in diagnosis.explanation
    assert problem in diagnosis.explanation
    assert any("PEM" in step for step in diagnosis.fix)
    assert "ca_file" in diagnosis.to_text()


@pytest.mark.parametrize("kind", ["missing", "garbage", "folder"])
def test_a_bad_ca_file_flag_names_the_flag_the_path_and_the_fix(
    kind: str, tmp_path: Path, hostile: Callable[..., ScenarioServer]
) -> None:
    path, problem = bad_ca_files(tmp_path)[kind]
    server = hostile("silent_quit")
    for as_json in (False, True):
        out, err = io.StringIO(), io.StringIO()
        argv = [
            "test",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--from",
            "alice@example.com",
            "--to",
            "bob@example.org",
            "--secrets",
            "none",
            "--ca-file",
            str(path),
        ]
        code = main(argv + (["--json"] if as_json else []), out=out, err=err)
        message = err.getvalue()
        assert code == 1
        assert "--ca-file" in message
        assert str(path) in message
        assert problem in message
        assert "PEM" in message
        assert "Traceback" not in message
        assert "OpenSSL" not in message
    assert server.connections == 0  # refused before connecting


def test_a_bad_ca_file_in_the_profile_is_told_in_cli_words(tmp_path: Path) -> None:
    path, _ = bad_ca_files(tmp_path)["missing"]
    profile = tmp_path / "org.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        org = OrgSettings(
            host="127.0.0.1", port=9, from_address="it@example.com", ca_file=str(path)
        )
    with Store.open(profile, profile="org", create=True) as store:
        store.set_org(org)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["test", "--profile", str(profile), "--to", "bob@example.org", "--secrets", "none"],
        out=out,
        err=err,
    )
    assert code == 1
    assert str(path) in out.getvalue()
    assert "--ca-file" in out.getvalue()


# --------------------------------------------------------------------------- bad recipients


def cli_test(
    server: ScenarioServer,
    credentials: Credentials,
    *extra: str,
    to: str = "bob@example.org",
    json_output: bool = True,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    os.environ["MAILKIT_HOSTILE_PW"] = credentials.password
    try:
        code = main(
            [
                "test",
                "--host",
                server.host,
                "--port",
                str(server.port),
                "--from",
                "alice@example.com",
                "--username",
                credentials.user,
                "--to",
                to,
                "--ca-file",
                str(server.ca_file),
                "--password-env",
                "MAILKIT_HOSTILE_PW",
                "--secrets",
                "none",
                *(["--json"] if json_output else []),
                *extra,
            ],
            out=out,
            err=err,
        )
    finally:
        del os.environ["MAILKIT_HOSTILE_PW"]
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "to", ["bob@example.org\r\nRCPT TO:<eve@example.org>", "a@b<c@d>", "", "a@b.org, c@d.org"]
)
def test_an_invalid_recipient_is_a_json_diagnosis_not_a_crash(
    to: str, hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials
) -> None:
    server = hostile("silent_quit")
    code, out, err = cli_test(server, smtp_credentials, to=to)
    assert code == 1, err
    answer = json.loads(out)
    assert answer["ok"] is False
    assert answer["diagnosis"]["phase"] == "setup"
    assert answer["timings"] == {}
    assert "Traceback" not in err
    assert server.connections == 0


def test_an_empty_transcript_has_empty_timings_and_a_dict() -> None:
    assert Transcript(()).timings() == {}
    plan = SmtpPlan(
        host="mail.example.com",
        port=587,
        security=Security.STARTTLS,
        auth=AuthType.NONE,
        username=None,
        from_address="it@example.com",
    )
    result = run_sync(send_plan_async(plan, to=["not an address"]))
    assert result.timings == {}
    assert result.as_dict()["diagnosis"]["phase"] == "setup"


# --------------------------------------------------------------------------- widget, notebook


def _all_widgets(root: Any) -> Iterator[Any]:
    seen: set[int] = set()
    todo = [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        yield widget
        for name in widget.keys:
            value = getattr(widget, name)
            for item in value if isinstance(value, list | tuple) else [value]:
                if hasattr(item, "keys") and hasattr(item, "get_state"):
                    todo.append(item)


@pytest.mark.parametrize(("verb", "mode"), [("AUTH_RESULT", "final"), ("END_OF_DATA", "prefix")])
def test_the_test_send_widget_holds_no_echoed_password(
    verb: str,
    mode: str,
    hostile: Callable[..., ScenarioServer],
    smtp_credentials: Credentials,
    tmp_path: Path,
) -> None:
    from mailkit.widgets import TestSendPanel

    password = smtp_credentials.password
    server = hostile("hostile_reply", verb=verb, data=echoing_reply(verb, mode, password))
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "org"), password, password)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        org = OrgSettings(
            host=server.host,
            port=server.port,
            username=USER,
            from_address="alice@example.com",
            ca_file=str(server.ca_file),
            command_timeout=5,
        )
    with Store.open(tmp_path / "w.sqlite", profile="default", create=True) as store:
        panel = TestSendPanel(org, secrets=secrets, profile="default", store=store)
        panel.to.value = "bob@example.org"
        panel.send_button.click()
        assert panel.result is not None
        assert panel.result.ok is (mode == "prefix")
        states = json.dumps(
            [w.get_state() for w in _all_widgets(panel.widget)], default=str
        ) + json.dumps(panel._repr_mimebundle_(), default=str)
        history = store.history_frame().to_string()
    assert "secret hidden" in states  # the echo reached the widget, scrubbed
    assert leaks(password, states) == []
    assert leaks(password, history) == []
    for name, data in store_files(tmp_path).items():
        assert leaks(password, data) == [], name


def test_a_saved_notebook_holds_no_echoed_password(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials, tmp_path: Path
) -> None:
    import nbformat
    from notebook_runner import run_notebook, saved_outputs_text, write_notebook

    password = smtp_credentials.password
    server = hostile("hostile_reply", data=echoing_reply("AUTH_RESULT", "final", password))
    cells = [
        "import os, warnings\n"
        "from mailkit.errors import UnsafeSettingWarning\n"
        "from mailkit.secret import Secret\n"
        "from mailkit.secrets import MemorySecretStore, secret_key\n"
        "from mailkit.settings import OrgSettings\n"
        "from mailkit.testsend import send_test\n"
        "from mailkit.widgets import TestSendPanel\n"
        "password = os.environ.pop('MAILKIT_NB_PASSWORD')\n"
        "warnings.simplefilter('ignore', UnsafeSettingWarning)\n"
        f"org = OrgSettings(host={server.host!r}, port={server.port}, username={USER!r}, "
        f"from_address='alice@example.com', ca_file={str(server.ca_file)!r}, command_timeout=5)",
        "result = send_test(org, to=['bob@example.org'], password=Secret(password))\nresult",
        "print(result.diagnosis.to_text()); print(result.transcript.to_text())\nresult.as_dict()",
        "secrets = MemorySecretStore()\n"
        "secrets.set_password(secret_key('default', 'org'), password, password)\n"
        "panel = TestSendPanel(org, secrets=secrets)\npanel.to.value = 'bob@example.org'\n"
        "panel.send_button.click()\npanel",
        "if panel.last_task is not None:\n    await panel.last_task",
        "del password\npanel.result.diagnosis",
    ]
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]  # type: ignore[no-untyped-call]
    path = tmp_path / "hostile.ipynb"
    write_notebook(nb, path)
    executed = run_notebook(path, cwd=tmp_path, env={"MAILKIT_NB_PASSWORD": password})
    write_notebook(executed, path)
    saved = saved_outputs_text(executed)
    assert "secret hidden" in saved  # the echo reached the outputs, scrubbed
    assert "bad_credentials" in saved
    assert leaks(password, saved) == []
    assert leaks(password, path.read_bytes()) == []


def test_a_pinned_send_never_reads_the_ca_file(
    hostile: Callable[..., ScenarioServer], smtp_credentials: Credentials, tmp_path: Path
) -> None:
    """The pin replaces the chain: a CA file set beside it, even a broken one, is not read."""
    server = hostile("silent_quit", hang=0.5)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not PEM")
    plan = plan_for(server, ca_file=str(garbage), pin_sha256=server.pin_sha256)
    result, _ = send(plan, smtp_credentials.password)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()


@pytest.mark.parametrize(("verb", "mode"), [("AUTH_RESULT", "final"), ("END_OF_DATA", "prefix")])
@pytest.mark.parametrize("as_json", [True, False])
def test_the_command_line_and_its_profile_hold_no_echoed_password(
    verb: str,
    mode: str,
    as_json: bool,
    hostile: Callable[..., ScenarioServer],
    smtp_credentials: Credentials,
    tmp_path: Path,
) -> None:
    password = smtp_credentials.password
    server = hostile("hostile_reply", verb=verb, data=echoing_reply(verb, mode, password))
    profile = tmp_path / "org.sqlite"
    Store.open(profile, profile="org", create=True).close()
    code, out, err = cli_test(
        server, smtp_credentials, "--profile", str(profile), json_output=as_json
    )
    assert code == (0 if mode == "prefix" else 5), err
    assert "secret hidden" in out
    assert leaks(password, out + err) == []
    with Store.open(profile, profile="org") as store:
        history = store.history_frame(None)
    assert len(history) == 1
    assert leaks(password, history.to_string()) == []
    for name, data in store_files(tmp_path).items():
        assert leaks(password, data) == [], name
