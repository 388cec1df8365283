"""Internal networks are first-class (issue 10): ``alice@corp.local`` sends to
``ops@plant.internal`` through a server named without a public domain.

Every face is walked with the same names: validation, a legacy migration, a users CSV import,
the audit (``internal-domain``, never ``invalid-address``) and real test sends through the
loopback server, from Python and from the command line. The server is ``localhost``: a
single-label host, which only the local resolver knows, as ``mailhost`` would be.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from smtpd_servers import MailServer

from mailkit.audit import audit
from mailkit.cli import EXIT_OK, main
from mailkit.legacy import migrate
from mailkit.outcome import Cause
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, accounts_with_secret, secret_key
from mailkit.settings import OrgSettings, Profile, UserSettings, internal_suffix, validate
from mailkit.store import Store
from mailkit.testsend import send_test

pytestmark = pytest.mark.timeout(60)

SENDER = "alice@corp.local"
RECIPIENT = "ops@plant.internal"
#: The single-label name of the loopback server (its certificate names it).
HOST = "localhost"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def legacy_file(directory: Path, server: MailServer) -> Path:
    """The Express Maintenance export format (tests/data/legacy), in an internal network."""
    path = directory / "express-maintenance.ini"
    path.write_text(
        "[Email]\n"
        f"SMTPServerName={HOST}\n"
        f"Port={server.starttls_port}\n"
        "TLSSettings=TLS\n"
        "RequiresAuthentication=1\n"
        f"UserName={server.user}\n"
        "FromAddress=erp@corp.local\n"
        "FromName=Plant ERP\n"
        "[Email V48]\n"
        "SenderProtocol=SMTP\n"
        "AuthType=AuthLogin\n",
        encoding="utf-8",
    )
    return path


def users_csv(directory: Path) -> Path:
    path = directory / "users.csv"
    pd.DataFrame(
        [
            {
                "user_code": SENDER,
                "display_name": "Alice Meyer",
                "email": SENDER,
                "override_enabled": "yes",
                "from_address": SENDER,
            },
            {"user_code": "bob", "display_name": "Bob", "email": "bob@office.lan"},
            {"user_code": "carol", "email": "carol@kitchen.home.arpa"},
            {
                "user_code": "dan",
                "email": "dan@mail.test",
                "override_enabled": "1",
                "host": "mailhost",
            },
        ]
    ).to_csv(path, index=False)
    return path


def test_validation_takes_internal_names_everywhere() -> None:
    profile = validate(
        Profile,
        {
            "org": {
                "host": "exchange.corp.local",
                "from_address": "erp@corp.local",
                "routes": {"work_orders": {"enabled": True, "recipients": [RECIPIENT]}},
            },
            "users": [
                {
                    "user_code": SENDER,
                    "email": SENDER,
                    "override_enabled": True,
                    "host": "mailhost",
                    "from_address": SENDER,
                },
                {"user_code": "bob", "email": "bob@office.lan"},
            ],
        },
    )
    assert profile.org.routes["work_orders"].recipients == [RECIPIENT]
    assert [u.email for u in profile.users] == [SENDER, "bob@office.lan"]
    assert internal_suffix(profile.users[0].host or "") == "mailhost"


def test_legacy_migration_keeps_internal_names(tmp_path: Path, smtp_server: MailServer) -> None:
    migration = migrate(legacy_file(tmp_path, smtp_server))
    assert migration.org.host == HOST
    assert migration.org.from_address == "erp@corp.local"
    assert migration.warnings == ()
    rows = migration.report.set_index("old_key")
    assert rows.loc["FromAddress", "new_value"] == "erp@corp.local"


def test_internal_users_are_imported_audited_and_send_from_the_command_line(
    tmp_path: Path, smtp_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrate, import, audit and test-send with nothing but ``mailkit`` commands."""
    profile = str(tmp_path / "plant.sqlite")
    code, out, err = run(
        "migrate", str(legacy_file(tmp_path, smtp_server)), "--profile", profile,
        "--secrets", "none",
    )  # fmt: skip
    assert code == EXIT_OK, (out, err)
    code, out, err = run("users", "import", str(users_csv(tmp_path)), "--profile", profile)
    assert code == EXIT_OK, (out, err)
    assert out.startswith("Imported 4 user(s)"), out
    with Store.open(profile) as store:
        users = {u.user_code: u for u in store.users()}
        assert users[SENDER].from_address == SENDER
        assert users["carol"].email == "carol@kitchen.home.arpa"
        # A legacy file has no CA file field: trust the test server's CA here.
        store.set_org(store.get_org().model_copy(update={"ca_file": str(smtp_server.ca_file)}))

    code, out, err = run("audit", "--profile", profile, "--format", "json")
    findings = pd.DataFrame(json.loads(out), columns=["user_code", "rule", "severity"])
    assert "invalid-address" not in set(findings["rule"]), out
    internal = findings[findings["rule"] == "internal-domain"]
    assert set(internal["user_code"]) == {SENDER, "bob", "carol", "dan"}
    assert set(internal["severity"]) == {"info"}
    # The text output counts findings and users as the summary does.
    found = findings[findings["rule"] != "secrets-not-checked"]
    code, out, err = run("audit", "--profile", profile)
    assert f": {len(found)} finding(s) for {found['user_code'].nunique()} user(s)\n" in out

    monkeypatch.setenv("MAILKIT_TEST_PW", smtp_server.password)
    code, out, err = run(
        "test", "--profile", profile, "--user", SENDER, "--to", RECIPIENT,
        "--password-env", "MAILKIT_TEST_PW", "--secrets", "none", "--timeout", "5", "--json",
    )  # fmt: skip
    assert code == EXIT_OK, (out, err)
    assert json.loads(out)["ok"] is True
    (message,) = smtp_server.messages
    assert (message.mail_from, message.rcpt_tos) == (SENDER, (RECIPIENT,))
    assert message.message["From"].addresses[0].addr_spec == SENDER
    assert message.message["To"].addresses[0].addr_spec == RECIPIENT


def test_send_test_from_python(smtp_server: MailServer) -> None:
    org = OrgSettings(
        host=HOST,
        port=smtp_server.starttls_port,
        security="starttls",
        username=smtp_server.user,
        from_address="erp@corp.local",
        ca_file=str(smtp_server.ca_file),
    )
    user = UserSettings(user_code="alice", email=SENDER, override_enabled=True, from_address=SENDER)
    result = send_test(org, user, to=[RECIPIENT], password=Secret(smtp_server.password))
    assert result.ok, result.diagnosis
    (message,) = smtp_server.messages
    assert (message.mail_from, message.rcpt_tos) == (SENDER, (RECIPIENT,))
    assert message.auth_user == smtp_server.user


def test_ad_hoc_command_line_send_from_an_internal_address(smtp_server: MailServer) -> None:
    code, out, err = _with_stdin(
        smtp_server.password,
        "test", "--to", RECIPIENT, "--from", SENDER, "--host", HOST,
        "--port", str(smtp_server.starttls_port), "--security", "starttls",
        "--username", smtp_server.user, "--ca-file", str(smtp_server.ca_file),
        "--password-stdin", "--secrets", "none", "--timeout", "5",
    )  # fmt: skip
    assert code == EXIT_OK, (out, err)
    assert "OK: the server accepted the test message" in out
    (message,) = smtp_server.messages
    assert (message.mail_from, message.rcpt_tos) == (SENDER, (RECIPIENT,))


def _with_stdin(text: str, *argv: str) -> tuple[int, str, str]:
    old = sys.stdin
    sys.stdin = io.StringIO(text + "\n")
    try:
        return run(*argv)
    finally:
        sys.stdin = old


def test_an_internal_address_is_never_an_invalid_one() -> None:
    """The audit and the validator share one predicate: what one accepts, the other does."""
    rows = [
        {"user_code": "a", "email": "a@corp.local"},
        {"user_code": "b", "email": "b@x.home.arpa"},
        {"user_code": "c", "email": "c@mailhost"},  # no dot: invalid in both
        {"user_code": "d", "email": "d@corp.local)<e@plant.internal>"},  # CVE-2023-27043 form
    ]
    findings = audit(OrgSettings(host="smtp.example.com", from_address="it@example.com"),
                     pd.DataFrame(rows))  # fmt: skip
    invalid = set(findings.loc[findings["rule"] == "invalid-address", "user_code"])
    assert invalid == {"c", "d"}


def test_cloud_user_signs_in_with_their_own_password_never_the_orgs(
    smtp_server: MailServer,
) -> None:
    """Cloud edition (issue 10): the user code is the account, and only its own password is
    used. The org's valid password is stored too, and must not be tried."""
    smtp_server.require_auth = True
    code = smtp_server.user  # an address in .test, the server's account
    org = OrgSettings(
        edition="cloud",
        host=HOST,
        port=smtp_server.starttls_port,
        security="starttls",
        username="it@corp.local",
        from_address="it@corp.local",
        ca_file=str(smtp_server.ca_file),
    )
    user = UserSettings(user_code=code, username="it@corp.local")  # ignored in the cloud
    secrets = MemorySecretStore()
    secrets.set(secret_key("default", "org"), Secret(smtp_server.password))

    refused = send_test(org, user, to=[RECIPIENT], secrets=secrets)
    assert not refused.ok
    assert refused.diagnosis is not None
    assert refused.diagnosis.cause is Cause.PASSWORD_MISSING
    assert smtp_server.auth_mechanisms_used == []
    assert smtp_server.messages == []
    findings = audit(
        org,
        pd.DataFrame([user.model_dump()]),
        accounts_with_secret=accounts_with_secret(secrets, "default", ["org", code]),
    )
    assert set(findings["rule"]) >= {"cloud-user-password", "cloud-account-ignored"}

    secrets.set(secret_key("default", code), Secret(smtp_server.password))
    sent = send_test(org, user, to=[RECIPIENT], secrets=secrets)
    assert sent.ok, sent.diagnosis
    (message,) = smtp_server.messages
    assert (message.auth_user, message.mail_from) == (code, code)
    findings = audit(
        org,
        pd.DataFrame([user.model_dump()]),
        accounts_with_secret=accounts_with_secret(secrets, "default", ["org", code]),
    )
    assert "cloud-user-password" not in set(findings["rule"])


def test_cloud_user_without_own_password_is_told_to_store_theirs(
    tmp_path: Path, smtp_server: MailServer
) -> None:
    """The command line names the user's own account, not the org's, for the missing password."""
    smtp_server.require_auth = True
    profile = tmp_path / "cloud.sqlite"
    with Store.open(profile, create=True) as store:
        store.set_org(
            OrgSettings(
                edition="cloud",
                host=HOST,
                port=smtp_server.starttls_port,
                security="starttls",
                username="it@corp.local",
                from_address="it@corp.local",
                ca_file=str(smtp_server.ca_file),
            )
        )
        store.put_users([UserSettings(user_code=smtp_server.user)])
    code, out, _ = run(
        "test", "--profile", str(profile), "--user", smtp_server.user, "--to", RECIPIENT,
        "--secrets", "memory", "--timeout", "5",
    )  # fmt: skip
    assert code != EXIT_OK
    assert "password_missing" in out, out
    assert f"--user {smtp_server.user}" in out, out
    assert smtp_server.messages == []
