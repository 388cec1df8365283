"""Each face names settings in its own words: CLI flags, widget labels, Python names.

The diagnosis is written once with references to settings (:mod:`mailkit.faces`); the CLI
prints ``--ca-file``, a widget card "CA file", Python ``ca_file``. Checked three ways: the words
table against the real parser and the real widgets (so neither drifts), every diagnosis the
table of cases produces rendered for each face, and the real CLI and test panel run against
every misbehaving server, their output searched for Python spellings. Plus the missing-password
and provider-mismatch diagnoses through real servers.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smtpd_servers import SCENARIOS, Credentials, MailServer, ScenarioServer
from test_diagnose import CASES

from mailkit.cli import EXIT_AUTH, EXIT_CONNECT, EXIT_SENDER, build_parser, main
from mailkit.diagnose import diagnose
from mailkit.errors import UnsafeSettingWarning
from mailkit.faces import FIELDS, Face, Where, password_home, render, setting
from mailkit.outcome import Cause, Diagnosis
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.widgets import OrgForm, PasswordPanel, TestSendPanel, UserForm

pytestmark = pytest.mark.timeout(120)

# --------------------------------------------------------------------------- the search

#: Settings whose Python spelling differs from every other face's word for them.
PYTHON_ONLY = sorted({name for name in FIELDS if "_" in name} | {"pin_sha256"})
_PYTHON_NAME = re.compile(
    r"(?<![\w-])(" + "|".join(map(re.escape, PYTHON_ONLY)) + r")(?![\w-])"
    r"|\bauth\s*=|\bsecret_key\(|\bset_password\("
)
#: How the CLI may name a setting that has no flag: the key of the profile's TOML.
_TOML_KEY = re.compile(r"\b(\w+) in the profile \(mailkit profile export")
#: A cause as every face labels a diagnosis ("(ehlo, transient: command_timeout)", "cause
#: command_timeout"): a stable identifier, not a setting, though one shares a setting's name.
_CAUSE_LABEL = re.compile(
    r"(?:: |\(|cause )(?:" + "|".join(c.value for c in Cause) + r")(?=\)|</small>)"
)


def python_names(text: str) -> list[str]:
    """Python spellings of settings in ``text``; a profile TOML key the CLI names as such is
    the CLI's own word for a setting without a flag, so it does not count."""
    allowed = _CAUSE_LABEL.sub("", _TOML_KEY.sub("", text))
    return [m.group(0) for m in _PYTHON_NAME.finditer(allowed)]


def diagnosis_text(diagnosis: Diagnosis) -> str:
    return "\n".join((diagnosis.title, diagnosis.explanation, *diagnosis.fix))


def test_the_search_finds_python_names_it_must() -> None:
    """The control: without it a search that never matches would pass every test below."""
    for text in (
        "set ca_file to x",
        "pin it (tls_pin_sha256)",
        "pin_sha256",
        "auth=auto",
        "secret_key('default', 'org')",
        "raise command_timeout",
        "from_address: x",
    ):
        assert python_names(text), text
    for text in ("--ca-file", "“CA file”", "--from", "the Command timeout (s)", "pin-sha256"):
        assert python_names(text) == [], text
    assert python_names("tls_min_version in the profile (mailkit profile export, edit)") == []
    assert python_names("Stopped (ehlo, transient: command_timeout)") == []
    assert python_names("raise command_timeout (command_timeout)") == ["command_timeout"]


# --------------------------------------------------------------------------- the words table


def _test_flags() -> set[str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    test = commands.choices["test"]  # type: ignore[index]
    return {flag for action in test._actions for flag in action.option_strings}


def test_every_cli_flag_the_words_name_is_a_real_flag_of_mailkit_test() -> None:
    flags = _test_flags()
    named = {words.cli for words in FIELDS.values() if words.cli is not None}
    assert named - flags == set()
    assert {"--ca-file", "--pin-sha256", "--secrets", "--host", "--auth"} <= named


def _labels(widget: Any) -> Iterator[str]:
    """Every description, title and button text in a widget tree."""
    for attribute in ("description",):
        value = getattr(widget, attribute, None)
        if isinstance(value, str) and value:
            yield value
    yield from (t for t in getattr(widget, "titles", ()) or () if t)
    for child in getattr(widget, "children", ()) or ():
        yield from _labels(child)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "words.sqlite", create=True) as opened:
        yield opened


def test_every_widget_label_the_words_name_is_on_a_form(store: Store) -> None:
    labels = set(_labels(OrgForm(store).widget))
    labels |= set(_labels(UserForm(store, secrets=MemorySecretStore()).widget))
    # No field of their own: named by a description (the delivery check's are send arguments).
    described = {"api_url", "secrets", "verify_imap", "verify_timeout"}
    for name, words in FIELDS.items():
        if name in described:
            continue
        assert words.widget in labels, name
        if words.section is not None:
            assert words.section in labels, name
    # "where to store a password": the user form's boxes and button, the org's panel
    assert {"Password", "Confirm", "Save user"} <= labels
    panel = set(_labels(PasswordPanel(MemorySecretStore(), secret_key("default", "org")).widget))
    assert {"Password", "Confirm", "Save password"} <= panel


def test_a_setting_renders_per_face_and_plain_text_is_python() -> None:
    text = f"Set {setting('ca_file')} to the CA's certificate."
    assert render(text) == render(text, Face.PYTHON) == "Set ca_file to the CA's certificate."
    assert render(text, Face.CLI) == "Set --ca-file to the CA's certificate."
    assert render(text, "widget") == (
        "Set “CA file” (under TLS trust and timeouts) to the CA's certificate."
    )
    flagless = render(f"keep {setting('allow_plaintext_auth')} off", Face.CLI)
    assert flagless.startswith("keep allow_plaintext_auth in the profile (mailkit profile export")
    with pytest.raises(KeyError, match="no setting"):
        setting("cafile")


def test_where_to_store_a_password_names_the_command_the_form_or_the_call() -> None:
    home = f"Store it with {password_home()}."
    user, org = Where(profile="acme", account="ann"), Where(profile="acme", account="org")
    assert "mailkit secret set --profile acme --user ann --password-stdin" in render(
        home, Face.CLI, user
    )
    assert "--password-env NAME" in render(home, Face.CLI, user)
    assert "--user" not in render(home, Face.CLI, org)
    assert "[--user CODE]" in render(home, Face.CLI)
    flags_only = render(home, Face.CLI, Where(account="org", ad_hoc=True))
    assert "--password-stdin or --password-env NAME on this command" in flags_only
    assert "Password and Confirm fields of the user form of ann, then Save user" in render(
        home, Face.WIDGET, user
    )
    assert "password panel, then Save password" in render(home, Face.WIDGET, org)
    assert "secrets.set_password(secret_key('acme', 'ann'), password, confirmation)" in render(
        home, Face.PYTHON, user
    )


def test_the_cli_command_for_a_password_is_one_the_cli_accepts() -> None:
    """The words name a real command: parse what they say, both ways of giving the password."""
    said = render(password_home(), Face.CLI, Where(profile="acme", account="ann@example.com"))
    command, _, alternative = said.partition(" (or ")
    argv = command.split()
    assert argv[:3] == ["mailkit", "secret", "set"]
    args = build_parser().parse_args(argv[1:])
    assert (args.profile, args.user, args.password_stdin) == ("acme", "ann@example.com", True)
    flag, name = alternative.rstrip(")").split()
    with_env = [a for a in argv[1:] if a != "--password-stdin"] + [flag, name]
    assert build_parser().parse_args(with_env).password_env == "NAME"


# --------------------------------------------------------------------------- every diagnosis


def test_plain_diagnoses_are_the_python_face_with_no_markers_left() -> None:
    for case in CASES:
        plain = diagnose(case.failure, case.context)
        assert plain.for_face(Face.PYTHON) == plain, case.id
        for face in Face:
            shown = diagnosis_text(plain.for_face(face, Where("acme", "ann")))
            assert "\x1e" not in shown, (case.id, face)
            assert "\x1f" not in shown, (case.id, face)
            # a reference lost on the way (e.g. split as whitespace) leaves gaps like "( x )"
            assert not re.search(r"\( |\s\)|\S  \S|\s[.,;:]", shown), (case.id, face, shown)


@pytest.mark.parametrize("face", [Face.CLI, Face.WIDGET])
def test_no_case_shows_a_python_name_in_the_cli_or_a_widget(face: Face) -> None:
    mentions = 0
    for case in CASES:
        plain = diagnose(case.failure, case.context)
        shown = diagnosis_text(plain.for_face(face, Where("acme", "ann")))
        assert python_names(shown) == [], (case.id, shown)
        mentions += python_names(diagnosis_text(plain)) != []
    assert mentions > 20  # the Python face does name them: the conversion is not vacuous


def test_the_faces_differ_where_a_setting_is_named() -> None:
    untrusted = next(c for c in CASES if c.cause is Cause.CERTIFICATE_UNTRUSTED)
    plain = diagnose(untrusted.failure, untrusted.context)
    assert "set ca_file" in diagnosis_text(plain)
    assert "set --ca-file" in diagnosis_text(plain.for_face(Face.CLI))
    assert "--pin-sha256" in diagnosis_text(plain.for_face(Face.CLI))
    assert "“CA file”" in diagnosis_text(plain.for_face(Face.WIDGET))
    assert "“Certificate pin”" in diagnosis_text(plain.for_face(Face.WIDGET))


# --------------------------------------------------------------------------- the real CLI


def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv), out=out, err=err)
    finally:
        sys.stdin = old
    return code, out.getvalue(), err.getvalue()


#: Flags some scenarios need to meet their misbehaviour (the CLI has no token: xoauth2 then
#: meets "no token stored", which is a failure the CLI can reach too).
CLI_EXTRA: dict[str, tuple[str, ...]] = {"oauth_token_rejected": ("--auth", "xoauth2")}
#: Scenarios a correct client gets through (QUIT unanswered after the message is accepted).
SUCCEEDING = frozenset({"starttls_injection", "silent_quit"})
FAILING = sorted(name for name in SCENARIOS if name not in SUCCEEDING)


def scenario_argv(server: ScenarioServer, *extra: str) -> list[str]:
    return [
        "test",
        "--to", "bob@example.org",
        "--host", server.host,
        "--port", str(server.port),
        "--security", server.security,
        "--username", Credentials.user,
        "--from", "alice@example.com",
        "--ca-file", str(server.ca_file),
        "--timeout", "3",
        "--secrets", "none",
        "--password-env", "MAILKIT_WORDS_PW",
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.smtp_scenario(n)) for n in FAILING]
)
def test_cli_output_for_every_failure_names_no_python_setting(
    name: str,
    scenario_server: ScenarioServer,
    smtp_credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAILKIT_WORDS_PW", smtp_credentials.password)
    code, out, err = run(*scenario_argv(scenario_server, *CLI_EXTRA.get(name, ())))
    assert code != 0, err + out
    assert re.search(r"^.+ \(\w+, \w+: \w+\)$", out, re.MULTILINE), out  # a diagnosis
    assert python_names(out + err) == [], out + err
    assert smtp_credentials.leaks_in(out + err) == []


@pytest.mark.smtp_scenario("untrusted_ca")
def test_cli_json_diagnosis_is_in_cli_words_too(scenario_server: ScenarioServer) -> None:
    argv = scenario_argv(scenario_server)
    argv[argv.index("--ca-file") : argv.index("--ca-file") + 2] = []
    argv[argv.index("--password-env") : argv.index("--password-env") + 2] = []
    code, out, _ = run(*argv, "--json")
    data = json.loads(out)
    assert data["diagnosis"]["cause"] == "certificate_untrusted"
    shown = "\n".join([data["diagnosis"]["explanation"], *data["diagnosis"]["fix"]])
    assert "--ca-file" in shown
    assert "--pin-sha256" in shown
    assert python_names(shown) == []
    assert code != 0


def _profile(tmp_path: Path, server: MailServer, *, edition: str = "on_premises") -> Path:
    """A profile whose org signs in as the server's user and whose user ann has her own
    account (override with her own user name) but no password stored."""
    db = tmp_path / "acme.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)  # an IP address as host
        org = OrgSettings(
            host=server.host,
            port=server.starttls_port,
            security="starttls",
            auth="auto",
            username=server.user,
            ca_file=str(server.ca_file),
            from_address="it@example.com",
            connect_timeout=5,
            command_timeout=5,
        )
    with Store.open(db, create=True) as store:
        store.set_org(org)
        store.put_user(
            UserSettings(
                user_code="ann",
                override_enabled=True,
                username="ann@example.com",
                from_address="ann@example.com",
            )
        )
    return db


def test_a_user_without_her_own_password_is_told_to_store_it_with_mailkit_secret_set(
    smtp_server: MailServer, tmp_path: Path
) -> None:
    """auth auto with nothing stored sends without AUTH; the server's 530 is a missing password,
    and the fix is the CLI command for exactly this profile and user."""
    smtp_server.require_auth = True
    db = _profile(tmp_path, smtp_server)
    with Store.open(db) as store:
        profile = store.profile_name
    code, out, err = run(
        "test", "--profile", str(db), "--user", "ann", "--to", "bob@example.org",
        "--secrets", "memory",
    )  # fmt: skip
    assert code == EXIT_SENDER, err + out
    assert "password_missing" in out
    assert "auth_required" not in out
    assert "set --auth to auto" not in out
    assert f"mailkit secret set --profile {profile} --user ann --password-stdin" in out
    assert "for ann@example.com" in out
    assert python_names(out + err) == []
    assert smtp_server.messages == []


def test_a_cloud_user_without_her_own_password_is_not_sent_as_the_org(
    smtp_server: MailServer, tmp_path: Path
) -> None:
    """Cloud edition: the user code is the account, so its password is the user's own; with
    none stored the send goes without AUTH and the server's refusal is a missing password."""
    smtp_server.require_auth = True
    db = tmp_path / "cloud.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        org = OrgSettings(
            edition="cloud",
            host=smtp_server.host,
            port=smtp_server.starttls_port,
            security="starttls",
            auth="auto",
            username=smtp_server.user,
            ca_file=str(smtp_server.ca_file),
            from_address="it@example.com",
        )
    with Store.open(db, create=True) as store:
        store.set_org(org)
        store.put_user(UserSettings(user_code="ann@example.com"))
        profile = store.profile_name
    code, out, err = run(
        "test", "--profile", str(db), "--user", "ann@example.com", "--to", "bob@example.org",
        "--secrets", "memory",
    )  # fmt: skip
    assert code == EXIT_SENDER, err + out
    assert "password_missing" in out
    assert f"--profile {profile} --user ann@example.com --password-stdin" in out
    assert python_names(out + err) == []
    assert smtp_server.auth_log == []  # no sign-in at all, least of all as the org


def test_a_password_mechanism_without_a_password_is_caught_before_connecting(
    smtp_server: MailServer,
) -> None:
    argv = [
        "test", "--to", "bob@example.org", "--host", smtp_server.host,
        "--port", str(smtp_server.starttls_port), "--security", "starttls", "--auth", "plain",
        "--username", smtp_server.user, "--from", "alice@example.com",
        "--ca-file", str(smtp_server.ca_file), "--secrets", "memory",
    ]  # fmt: skip
    code, out, err = run(*argv)
    assert code != 0
    assert "password_missing" in out
    # no profile in this run: the password comes with the command, or goes into a profile
    assert "--password-stdin or --password-env NAME on this command" in out
    assert "mailkit secret set --profile PROFILE --password-stdin" in out
    assert "--auth to none" in out  # a relay needing no sign-in is the other way out
    assert python_names(out + err) == []
    assert smtp_server.connections == []


@pytest.fixture
def provider_names_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """smtp.gmail.com and smtp.office365.com resolve to the loopback test server: the
    providers' servers are clouds the tests cannot reach, their names are what matters."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("smtp.gmail.com", "smtp.office365.com"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.usefixtures("provider_names_on_loopback")
@pytest.mark.parametrize(
    ("host", "username", "account_host"),
    [
        ("smtp.gmail.com", "ann@outlook.com", "smtp-mail.outlook.com"),
        ("smtp.gmail.com", "ann@contoso.onmicrosoft.com", "smtp.office365.com"),
        ("smtp.office365.com", "ann@gmail.com", "smtp.gmail.com"),
    ],
)
def test_one_providers_account_at_anothers_server_is_a_provider_mismatch(
    smtp_server: MailServer, host: str, username: str, account_host: str
) -> None:
    """A real sign-in refused by a real server (535: the server knows no such account)."""
    code, out, err = run(
        "test", "--to", "bob@example.org", "--host", host,
        "--port", str(smtp_server.starttls_port), "--security", "starttls",
        "--username", username, "--from", username,
        "--pin-sha256", smtp_server.pin_sha256, "--secrets", "none",
        "--password-env", "MAILKIT_WORDS_PW", "--timeout", "5",
    )  # fmt: skip
    assert code == EXIT_AUTH, err + out
    assert "provider_mismatch" in out
    assert f"--host to {account_host}" in out
    assert "--username to an account of" in out
    assert python_names(out + err) == []


@pytest.fixture(autouse=True)
def _password_env(monkeypatch: pytest.MonkeyPatch, smtp_credentials: Credentials) -> None:
    monkeypatch.setenv("MAILKIT_WORDS_PW", smtp_credentials.password)


def test_a_host_one_typo_from_a_providers_gets_did_you_mean() -> None:
    """A name that does not resolve (no network here: unknown names fail at once)."""
    code, out, err = run(
        "test", "--to", "bob@example.org", "--host", "smtp.offic365.com", "--port", "587",
        "--security", "starttls", "--username", "ann@contoso.example",
        "--from", "ann@contoso.example", "--secrets", "none", "--timeout", "5",
    )  # fmt: skip
    assert code == EXIT_CONNECT, err + out
    assert "did you mean smtp.office365.com?" in out
    assert "Set --host to smtp.office365.com" in out
    assert python_names(out + err) == []


# --------------------------------------------------------------------------- the test panel


def _panel_org(server: ScenarioServer, **changes: Any) -> OrgSettings:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": server.security,
        "auth": "auto",
        "username": Credentials.user,
        "from_address": "alice@example.com",
        "ca_file": str(server.ca_file),
        "connect_timeout": 3,
        "command_timeout": 3,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        return OrgSettings(**{**values, **changes})


PANEL_CHANGES: dict[str, dict[str, Any]] = {
    "encryption_required_538": {"allow_plaintext_auth": True},
    "oauth_token_rejected": {"auth": "xoauth2"},
}


def _click(panel: TestSendPanel) -> None:
    """Send as a button click does, outside any running loop: the send runs to completion."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        panel.send_button.click()
    else:  # pragma: no cover - tests run without a loop
        raise AssertionError("tests click without a running loop")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.smtp_scenario(n)) for n in FAILING]
)
def test_the_panels_card_for_every_failure_names_fields_by_their_labels(
    name: str, scenario_server: ScenarioServer, smtp_credentials: Credentials
) -> None:
    secrets = MemorySecretStore()
    secrets.set(secret_key("acme", "org"), Secret(smtp_credentials.password))
    panel = TestSendPanel(
        _panel_org(scenario_server, **PANEL_CHANGES.get(name, {})),
        secrets=secrets,
        profile="acme",
    )
    panel.to.value = "bob@example.org"
    _click(panel)
    assert panel.result is not None, panel.error.value
    assert not panel.result.ok
    card = panel.card.value
    assert "How to fix it" in card
    assert python_names(card) == [], card
    assert smtp_credentials.leaks_in(card) == []


@pytest.mark.smtp_scenario("untrusted_ca")
def test_the_panel_names_the_ca_file_field_where_python_says_ca_file(
    scenario_server: ScenarioServer,
) -> None:
    panel = TestSendPanel(
        _panel_org(scenario_server, ca_file=None), secrets=MemorySecretStore(), profile="acme"
    )
    panel.to.value = "bob@example.org"
    _click(panel)
    assert panel.result is not None
    assert panel.result.diagnosis is not None
    assert "set ca_file" in diagnosis_text(panel.result.diagnosis)  # the Python face
    assert "“CA file” (under TLS trust and timeouts)" in panel.card.value
    assert "“Certificate pin”" in panel.card.value


def test_the_panel_tells_a_user_without_a_password_to_use_her_form(
    smtp_server: MailServer, tmp_path: Path
) -> None:
    smtp_server.require_auth = True
    db = _profile(tmp_path, smtp_server)
    with Store.open(db) as store:
        org, user = store.get_org(), store.get_user("ann")
        panel = TestSendPanel(
            org, user, secrets=MemorySecretStore(), profile=store.profile_name, store=store
        )
        panel.to.value = "bob@example.org"
        _click(panel)
    assert panel.result is not None
    assert panel.result.diagnosis is not None
    assert panel.result.diagnosis.cause is Cause.PASSWORD_MISSING
    card = panel.card.value
    assert "Password and Confirm fields of the user form of ann, then Save user" in card
    assert "mailkit secret set" not in card
    assert python_names(card) == []


# --------------------------------------------------------------------------- said before a send


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"host": "smtp.offic365.com"}, "did you mean smtp.office365.com?"),
        ({"host": "SMTP.GMIAL.COM"}, "did you mean smtp.gmail.com?"),
        (
            {"host": "smtp.gmail.com", "username": "ann@hotmail.com"},
            "is an account of Outlook.com, but the host smtp.gmail.com is the server of Google",
        ),
        (
            {"host": "smtp.office365.com", "username": "ann@gmail.com"},
            "set the host to smtp.gmail.com",
        ),
    ],
)
def test_a_typo_or_a_mismatch_is_a_settings_warning_for_the_org_and_a_user(
    values: dict[str, str], words: str
) -> None:
    with pytest.warns(UnsafeSettingWarning, match=re.escape(words)):
        OrgSettings(**values)
    with pytest.warns(UnsafeSettingWarning, match=re.escape(words)):
        UserSettings(user_code="ann", override_enabled=True, **values)


@pytest.mark.parametrize(
    "values",
    [
        {"host": "smtp.office365.com", "username": "ann@contoso.example"},
        {"host": "smtp.gmail.com", "username": "ann@gmail.com"},
        {"host": "smtp-mail.outlook.com", "username": "ann@contoso.onmicrosoft.com"},
        {"host": "mail.corp.local", "username": "ann@outlook.com"},
    ],
)
def test_settings_that_can_work_raise_no_warning(values: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OrgSettings(**values)


def test_the_cli_says_did_you_mean_before_it_connects(tmp_path: Path) -> None:
    code, _, err = run(
        "test", "--to", "bob@example.org", "--host", "smtp.gmial.com", "--port", "587",
        "--security", "starttls", "--username", "ann@gmail.com", "--from", "ann@gmail.com",
        "--secrets", "none", "--timeout", "5",
    )  # fmt: skip
    assert code == EXIT_CONNECT
    assert "mailkit: warning: the host smtp.gmial.com is not a known mail server" in err
    assert "did you mean smtp.gmail.com?" in err


# --------------------------------------------------------------------------- the source itself


def _prose_in(source: str) -> Iterator[tuple[int, str]]:
    """Every piece of prose in a module: string constants with a space, f-string parts
    included, docstrings left out (they speak to developers, in Python's words)."""
    import ast

    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.add(id(value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and " " in node.value
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def test_no_advice_in_diagnose_spells_a_setting_the_python_way() -> None:
    """Advice names settings only through references (``S.ca_file``): a new rule that writes
    "set ca_file" would print a Python name in the CLI and in widgets."""
    import mailkit.diagnose

    modules = sorted(Path(mailkit.diagnose.__file__).parent.glob("*.py"))
    assert {m.name for m in modules} >= {"advice.py", "api_advice.py", "rules.py"}
    spelled = [
        (module.name, line, text)
        for module in modules
        for line, text in _prose_in(module.read_text(encoding="utf-8"))
        if python_names(text)
    ]
    assert spelled == []


def test_the_source_search_finds_a_python_spelling() -> None:
    found = list(_prose_in('"""set ca_file: a docstring"""\nx = f"Set ca_file to {y}"\n'))
    assert [text for _, text in found if python_names(text)] == ["Set ca_file to "]


def test_every_face_of_a_scrubbed_diagnosis_is_scrubbed(smtp_credentials: Credentials) -> None:
    """A face renders from the marked words, not from the plain fields: the scrubber must reach
    those too, or a secret a server echoed would come back in the CLI or a card."""
    import base64

    from mailkit.outcome import Failure, Phase, SendContext, Signal
    from mailkit.transcript import SecretScrubber

    canary = smtp_credentials.password
    echoed = f"{canary} {base64.b64encode(canary.encode()).decode()} {canary.encode().hex()}"
    failure = Failure(Phase.TLS, Signal.TLS_VERIFY, verify_code=0, detail=echoed)
    context = SendContext("mail.example.net", 587, "starttls", "plain", username="ann@example.net")
    plain = diagnose(failure, context)
    assert smtp_credentials.leaks_in(diagnosis_text(plain))  # the control: it is there
    scrubbed = SecretScrubber([Secret(canary)]).scrub_value(plain)
    for face in Face:
        shown = diagnosis_text(scrubbed.for_face(face, Where("acme", "ann")))
        assert smtp_credentials.leaks_in(shown) == [], face


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (("--from", "not-an-address"), "--from:"),
        (("--pin-sha256", "xyz"), "--pin-sha256:"),
        (("--port", "465", "--security", "starttls"), "--security:"),
        (("--auth", "kerberos"), "--auth:"),
    ],
)
def test_a_bad_flag_is_refused_in_the_flags_words(flags: tuple[str, ...], named: str) -> None:
    code, out, err = run(
        "test", "--to", "bob@example.org", "--host", "mail.example.net", "--secrets", "none",
        *flags,
    )  # fmt: skip
    assert code != 0
    assert f"  - {named} " in err
    assert python_names(out + err) == []


def test_python_names_in_a_message_become_the_faces_words() -> None:
    from mailkit.faces import name_setting, rename_settings

    assert name_setting("from_address", Face.CLI) == "--from"
    assert name_setting("routes.orders", Face.CLI) == "routes.orders"
    said = "from_address must match username; tls_pin_sha256 or ca_file"
    assert (
        rename_settings(said, Face.CLI) == "--from must match username; --pin-sha256 or --ca-file"
    )
    assert rename_settings(said, Face.PYTHON) == said
    assert python_names(rename_settings(said, Face.WIDGET)) == []


def test_a_stored_ca_file_that_is_gone_is_named_in_each_faces_words(tmp_path: Path) -> None:
    """The profile's own CA file (no flag to check it early): the transcript row says "CA
    file" in any face, the diagnosis --ca-file in the CLI and the field in the panel."""
    gone = tmp_path / "gone.pem"
    db = tmp_path / "acme.sqlite"
    org = OrgSettings(host="mail.example.net", from_address="it@example.com", ca_file=str(gone))
    with Store.open(db, create=True) as store:
        store.set_org(org)
    code, out, err = run("test", "--profile", str(db), "--to", "bob@example.org")
    assert code != 0
    assert f"missing: CA file: {gone}" in out
    assert "Set --ca-file to the PEM file" in out
    assert python_names(out + err) == []
    panel = TestSendPanel(org, secrets=MemorySecretStore(), profile="acme")
    panel.to.value = "bob@example.org"
    _click(panel)
    assert "missing: CA file" in panel.transcript.value
    assert "Set “CA file” (under TLS trust and timeouts)" in panel.card.value
    assert python_names(panel.transcript.value + panel.card.value) == []


def test_the_org_form_says_did_you_mean_and_names_a_mismatch_when_saving(store: Store) -> None:
    form = OrgForm(store)
    form.fields["host"].input.value = "smtp.gmial.com"
    form.save_button.click()
    assert "Saved" in form.status.value
    assert "did you mean smtp.gmail.com?" in form.status.value
    form.fields["host"].input.value = "smtp.office365.com"
    form.fields["username"].input.value = "ann@gmail.com"
    form.save_button.click()
    assert "is an account of Gmail" in form.status.value
    assert "set the host to smtp.gmail.com" in form.status.value
    assert python_names(form.status.value) == []
