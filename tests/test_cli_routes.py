"""``mailkit test --route NAME`` (issue 13, point 5): a feature route of the profile, sent
through a real SMTP server from the route's sender to its recipients with its subject filled
in; what cannot be tested is refused naming the flag or the route's field."""

from __future__ import annotations

import io
import json
import warnings
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from smtpd_servers import MailServer

from mailkit.cli import EXIT_AUTH, EXIT_OK, EXIT_USAGE, main
from mailkit.errors import UnsafeSettingWarning
from mailkit.secrets import EnvSecretStore, secret_key
from mailkit.settings import OrgSettings, UserSettings
from mailkit.store import Store

pytestmark = pytest.mark.timeout(60)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def profile(smtp_server: MailServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile whose work orders go out as the maintenance user, with her own password."""
    db = tmp_path / "p.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)  # the server's IP literal
        org = OrgSettings.model_validate(
            {
                "host": smtp_server.host,
                "port": smtp_server.starttls_port,
                "ca_file": str(smtp_server.ca_file),
                "from_address": "it@example.com",
                "connect_timeout": 5,
                "command_timeout": 5,
                "routes": {
                    "work_orders": {
                        "enabled": True,
                        "sender": "maint",
                        "recipients": ["crew@example.org", "lead@example.org"],
                    },
                    "invoices": {
                        "sender": "org",
                        "recipients": ["ap@example.org"],
                        "subject_template": "Invoice {number} for {title}",
                    },
                },
            }
        )
    with Store.open(db, create=True) as store:
        store.set_org(org)
        store.put_user(
            UserSettings(
                user_code="maint",
                display_name="Maintenance",
                override_enabled=True,
                username=smtp_server.user,
                auth="plain",
                from_address="maintenance@example.com",
            )
        )
    monkeypatch.setenv(
        EnvSecretStore().env_var_name(secret_key("default", "maint")), smtp_server.password
    )
    return db


def test_a_route_is_sent_by_its_user_to_its_recipients_with_its_subject(
    profile: Path, smtp_server: MailServer
) -> None:
    code, out, err = run("test", "--profile", str(profile), "--route", "work_orders", "--secrets",
                         "env")  # fmt: skip
    assert code == EXIT_OK, out + err
    assert "Route work_orders: as maint to crew@example.org, lead@example.org" in out
    (received,) = smtp_server.messages
    assert received.mail_from == "maintenance@example.com"
    assert received.rcpt_tos == ("crew@example.org", "lead@example.org")
    message = message_from_bytes(received.data, policy=default_policy)
    assert message["Subject"] == "Work order TEST-0001: mailkit route test"


def test_json_carries_the_route(profile: Path, smtp_server: MailServer) -> None:
    code, out, _ = run("test", "--profile", str(profile), "--route", "invoices", "--json",
                       "--secrets", "env")  # fmt: skip
    data = json.loads(out)
    assert data["route"] == {
        "name": "invoices",
        "sender": "org",
        "recipients": ["ap@example.org"],
        "subject": "Invoice TEST-0001 for mailkit route test",
        "enabled": False,
    }
    assert code == EXIT_OK, data["diagnosis"]
    message = message_from_bytes(smtp_server.messages[0].data, policy=default_policy)
    assert message["Subject"] == "Invoice TEST-0001 for mailkit route test"


def test_a_refused_sign_in_exits_as_an_auth_failure(
    profile: Path, smtp_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_server.require_auth = True
    monkeypatch.setenv(EnvSecretStore().env_var_name(secret_key("default", "maint")), "wrong")
    code, out, _ = run("test", "--profile", str(profile), "--route", "work_orders", "--secrets",
                       "env")  # fmt: skip
    assert code == EXIT_AUTH
    assert "bad_credentials" in out
    assert smtp_server.messages == []


def test_an_unknown_route_names_the_known_ones(profile: Path) -> None:
    code, out, err = run("test", "--profile", str(profile), "--route", "payroll")
    assert code == EXIT_USAGE
    said = out + err
    assert "payroll" in said
    assert "invoices, purchase_orders, requests, work_orders" in said


def test_a_route_without_recipients_names_its_field(profile: Path) -> None:
    code, out, err = run("test", "--profile", str(profile), "--route", "requests")
    assert code == EXIT_USAGE
    assert "routes.requests.recipients" in out + err


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--to", "x@example.org"), "--to"),
        (("--user", "maint"), "--user"),
        (("--host", "smtp.example.net"), "--host"),
        (("--from", "a@example.org"), "--from"),
    ],
)
def test_flags_that_would_change_the_route_are_refused_by_name(
    profile: Path, extra: tuple[str, ...], named: str
) -> None:
    code, out, err = run("test", "--profile", str(profile), "--route", "work_orders", *extra)
    assert code == EXIT_USAGE
    assert f"leave out {named}" in out + err


def test_a_route_needs_a_profile_and_a_test_needs_a_recipient() -> None:
    code, out, err = run("test", "--route", "work_orders")
    assert code == EXIT_USAGE
    assert "--route needs --profile" in out + err
    code, out, err = run("test", "--host", "smtp.example.com", "--from", "a@example.com")
    assert code == EXIT_USAGE
    assert "--to ADDR is required" in out + err
