"""``mailkit test``: a real send to the loopback server, exit codes by phase, no password args."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from smtpd_servers import Credentials, MailServer

from mailkit.cli import EXIT_AUTH, EXIT_CONNECT, EXIT_OK, EXIT_TLS, EXIT_USAGE, main
from mailkit.demo import DemoServer
from mailkit.demo.oauth import visit
from mailkit.errors import UnsafeSettingWarning
from mailkit.oauth import GMAIL_SEND_SCOPE, GoogleClientConfig, GoogleCredentials, GoogleOAuth
from mailkit.secrets import EnvSecretStore, MemorySecretStore, secret_key
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store

pytestmark = pytest.mark.timeout(60)


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


def ad_hoc(server: MailServer, *extra: str) -> list[str]:
    return [
        "test",
        "--to", "bob@example.org",
        "--host", server.host,
        "--port", str(server.starttls_port),
        "--security", "starttls",
        "--username", server.user,
        "--from", "alice@example.com",
        "--ca-file", str(server.ca_file),
        "--timeout", "5",
        "--secrets", "none",
        *extra,
    ]  # fmt: skip


def test_ad_hoc_send_with_password_from_env(
    smtp_server: MailServer, smtp_credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILKIT_TEST_PW", smtp_server.password)
    code, out, err = run(*ad_hoc(smtp_server, "--password-env", "MAILKIT_TEST_PW", "--json"))
    assert code == EXIT_OK
    # An IP literal host is accepted with one warning line, not a Python warning.
    assert err == (
        "mailkit: warning: the host 127.0.0.1 is an IP address: the server's TLS certificate "
        "rarely names an IP address, and the address may change; prefer the server's DNS name\n"
    )
    data = json.loads(out)
    assert set(data) >= {
        "ok", "diagnosis", "transcript", "tls", "auth_mechanism", "message_id", "timings",
    }  # fmt: skip
    assert data["ok"] is True
    assert data["auth_mechanism"] == "PLAIN"
    assert data["tls"]["version"].startswith("TLSv1.")
    assert {row["dir"] for row in data["transcript"]} == {"C", "S", "I"}
    assert smtp_server.messages
    assert smtp_credentials.leaks_in(out) == []


def test_password_from_stdin_and_text_output(smtp_server: MailServer) -> None:
    code, out, _ = run(*ad_hoc(smtp_server, "--password-stdin"), stdin=smtp_server.password + "\n")
    assert code == EXIT_OK
    assert "OK: the server accepted the test message" in out
    assert "AUTH PLAIN <password hidden" in out


def test_a_password_argument_is_refused(smtp_server: MailServer) -> None:
    code, _, err = run(*ad_hoc(smtp_server, "--password", "hunter2-canary"))
    assert code == EXIT_USAGE
    assert "never accepted as arguments" in err
    assert "hunter2-canary" not in err
    assert smtp_server.connections == []


def test_wrong_password_exit_code_and_diagnosis(
    smtp_server: MailServer, smtp_credentials: Credentials
) -> None:
    code, out, _ = run(*ad_hoc(smtp_server, "--password-stdin", "--json"), stdin="wrong\n")
    assert code == EXIT_AUTH
    diagnosis = json.loads(out)["diagnosis"]
    assert (diagnosis["phase"], diagnosis["kind"], diagnosis["cause"]) == (
        "auth",
        "permanent",
        "bad_credentials",
    )
    assert diagnosis["fix"]
    assert smtp_credentials.leaks_in(out) == []


def test_untrusted_certificate_exit_code(smtp_server: MailServer) -> None:
    argv = ad_hoc(smtp_server)
    argv[argv.index("--ca-file") + 1] = str(smtp_server.tls_material.untrusted_ca_file)
    code, out, _ = run(*argv)
    assert code == EXIT_TLS
    assert "certificate" in out.lower()


def test_refused_port_exit_code(smtp_server: MailServer) -> None:
    argv = ad_hoc(smtp_server)
    argv[argv.index("--port") + 1] = "1"
    code, _, _ = run(*argv)
    assert code == EXIT_CONNECT


def test_invalid_ad_hoc_setting_is_a_usage_error(smtp_server: MailServer) -> None:
    argv = ad_hoc(smtp_server)
    argv[argv.index("--port") + 1] = "99999"
    code, _, err = run(*argv)
    assert code == EXIT_USAGE
    assert "port" in err


def test_profile_user_with_stored_password_and_history(
    smtp_server: MailServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own password from the secret store, and the result in the profile's history."""
    db = tmp_path / "org.sqlite"
    with pytest.warns(UnsafeSettingWarning, match="IP address"):
        org = OrgSettings(
            host=smtp_server.host,
            port=smtp_server.starttls_port,
            security="starttls",
            ca_file=str(smtp_server.ca_file),
            from_address="it@example.com",
        )
    with Store.open(db, create=True) as store:
        store.set_org(org)
        store.put_user(
            UserSettings(
                user_code="ann",
                override_enabled=True,
                username=smtp_server.user,
                from_address="ann@example.com",
            )
        )
    with Store.open(db, profile="org") as store:
        profile = store.profile_name
    env_name = EnvSecretStore().env_var_name(secret_key(profile, "ann"))
    monkeypatch.setenv(env_name, smtp_server.password)
    code, out, err = run(
        "test", "--profile", str(db), "--user", "ann", "--to", "bob@example.org",
        "--secrets", "env", "--json",
    )  # fmt: skip
    assert code == EXIT_OK, err + out
    assert smtp_server.messages[0].mail_from == "ann@example.com"
    with Store.open(db) as store:
        history = store.history_frame("ann")
    assert len(history) == 1
    assert bool(history["ok"].iloc[0])


def test_unknown_user_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite"
    Store.open(db, create=True).close()
    code, _, err = run("test", "--profile", str(db), "--user", "nobody", "--to", "a@example.org")
    assert code == EXIT_USAGE
    assert "nobody" in err


def test_console_script_returns_the_phase_exit_code(smtp_server: MailServer) -> None:
    exe = Path(sys.executable).with_name("mailkit")
    argv = ad_hoc(smtp_server)
    argv[argv.index("--port") + 1] = "1"
    done = subprocess.run(
        [str(exe), *argv], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == EXIT_CONNECT
    assert "Traceback" not in done.stderr


def test_auto_without_a_stored_password_sends_without_auth(smtp_server: MailServer) -> None:
    code, out, _ = run(*[a if a != "none" else "memory" for a in ad_hoc(smtp_server)])
    assert code == EXIT_OK  # auto without a stored password sends without AUTH
    assert "no password or token stored" in out


def test_api_mode_sends_with_the_stored_oauth_consent(
    fake_oauth_demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--mode gmail_api``: the consent in the secret store signs the request; exit by phase."""
    demo = fake_oauth_demo.settings
    memory = MemorySecretStore()
    google = GoogleOAuth(
        GoogleClientConfig.load(demo.google_client_config()), secrets=memory, ca_file=demo.ca_file
    )
    consent = google.start_paste([GMAIL_SEND_SCOPE])
    token = consent.finish(visit(consent.url, demo.ca_file))
    key = secret_key("default", "org", GoogleCredentials.kind)
    stored = memory.get(key)
    assert stored is not None
    monkeypatch.setenv(EnvSecretStore().env_var_name(key), stored.reveal())
    argv = [
        "test",
        "--mode", "gmail_api",
        "--api-url", demo.api_url,
        "--ca-file", str(demo.ca_file),
        "--from", "demo@example.com",
        "--to", "bob@example.org",
        "--secrets", "env",
        "--json",
    ]  # fmt: skip

    code, out, _ = run(*argv)

    assert code == EXIT_OK, out
    assert json.loads(out)["ok"] is True
    assert list(fake_oauth_demo.mailbox()["via"]) == ["gmail_api"]
    assert token.access_token.reveal() not in out

    fake_oauth_demo.oauth.revoke("demo@example.com")
    code, out, _ = run(*argv)

    assert code == EXIT_AUTH  # the API refused the revoked token: a sign-in problem
    assert json.loads(out)["diagnosis"]["cause"] == "oauth_token_invalid"
    assert token.access_token.reveal() not in out


def test_api_mode_without_a_consent_says_to_sign_in(fake_oauth_demo: DemoServer) -> None:
    demo = fake_oauth_demo.settings
    code, out, _ = run(
        "test", "--mode", "microsoft_graph", "--api-url", demo.api_url,
        "--ca-file", str(demo.ca_file), "--from", "demo@example.com",
        "--to", "bob@example.org", "--secrets", "memory",
    )  # fmt: skip
    assert code != EXIT_OK
    assert "token_missing" in out
