"""Legacy settings migration: every key, every value, the report, files, and the password."""

from __future__ import annotations

import base64
import codecs
import json
import logging
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailkit.errors import ImportFileError, SecretStoreError
from mailkit.legacy import (
    EMPTY_NOTE,
    EMPTY_PASSWORD_NOTE,
    HIDDEN,
    INVALID_NOTE,
    LEGACY_KEYS,
    PASSWORD_HIDDEN,
    REPORT_COLUMNS,
    SECRET_STORE_FIELD,
    UNKNOWN_NOTE,
    UNRECOGNISED_NOTE,
    LegacyValue,
    Migration,
    migrate,
    read_legacy,
    report_text,
)
from mailkit.secret import Secret
from mailkit.secrets import MemorySecretStore, SecretStore, secret_key
from mailkit.settings import AuthType, Mode, OrgSettings, Priority, Security

DATA = Path(__file__).parent / "data" / "legacy"
CANARY = "canary-Pw-7f3K!x"
ORG_KEY = secret_key("default", "org")


def run(legacy: dict[str, LegacyValue]) -> Migration:
    return migrate(legacy, secrets=MemorySecretStore())


def row_of(migration: Migration, key: str) -> dict[str, str]:
    """The one report row for ``key`` (asserting there is exactly one)."""
    rows = migration.report[migration.report["old_key"] == key]
    assert len(rows) == 1, rows
    return {str(k): str(v) for k, v in rows.iloc[0].to_dict().items()}


def assert_note(note: str, expected: str) -> None:
    """``expected`` empty: the note must be empty; otherwise it must contain ``expected``."""
    if expected:
        assert expected in note
    else:
        assert note == ""


# --------------------------------------------------------------------------- every key, every value


@dataclass(frozen=True)
class Case:
    """Legacy settings in; the org field and the report row of ``key`` out."""

    legacy: dict[str, LegacyValue]
    key: str
    field: str
    expected: object
    new_field: str
    new_value: str
    note: str = ""


CASES: dict[str, Case] = {
    # SMTPServerName / EmailSenderIP -> host
    "server-name": Case(
        {"SMTPServerName": "smtp.example.com"},
        "SMTPServerName",
        "host",
        "smtp.example.com",
        "host",
        "smtp.example.com",
    ),
    "server-name-case": Case(
        {"smtpservername": "SMTP.Example.COM"},
        "smtpservername",
        "host",
        "smtp.example.com",
        "host",
        "smtp.example.com",
    ),
    "sender-ip-alone": Case(
        {"EmailSenderIP": "192.0.2.10"},
        "EmailSenderIP",
        "host",
        "192.0.2.10",
        "host",
        "192.0.2.10",
        "is an IP address",
    ),
    "sender-ip-empty-server-name": Case(
        {"SMTPServerName": "", "EmailSenderIP": "192.0.2.10"},
        "EmailSenderIP",
        "host",
        "192.0.2.10",
        "host",
        "192.0.2.10",
        "deprecated Email Sender IP",
    ),
    "sender-ip-superseded": Case(
        {"EmailSenderIP": "192.0.2.10", "SMTPServerName": "smtp.example.com"},
        "EmailSenderIP",
        "host",
        "smtp.example.com",
        "host",
        "",
        "not used: SMTPServerName is also set and decides host",
    ),
    "server-name-spaced": Case(
        {"SMTP Server Name": "smtp.example.com"},
        "SMTP Server Name",
        "host",
        "smtp.example.com",
        "host",
        "smtp.example.com",
    ),
    # Port
    "port-text": Case({"Port": "587"}, "Port", "port", 587, "port", "587"),
    "port-int": Case({"Port": 2525}, "Port", "port", 2525, "port", "2525"),
    # UserName, FromAddress / EmailFrom, FromName / DisplayName
    "username": Case(
        {"UserName": "jordan.brown@example.com"},
        "UserName",
        "username",
        "jordan.brown@example.com",
        "username",
        "jordan.brown@example.com",
    ),
    "from-address": Case(
        {"FromAddress": "ops@example.com"},
        "FromAddress",
        "from_address",
        "ops@example.com",
        "from_address",
        "ops@example.com",
    ),
    "email-from": Case(
        {"EmailFrom": "ops@example.com"},
        "EmailFrom",
        "from_address",
        "ops@example.com",
        "from_address",
        "ops@example.com",
    ),
    "from-name": Case(
        {"FromName": "Maintenance"},
        "FromName",
        "from_name",
        "Maintenance",
        "from_name",
        "Maintenance",
    ),
    "display-name": Case(
        {"DisplayName": "Maintenance"},
        "DisplayName",
        "from_name",
        "Maintenance",
        "from_name",
        "Maintenance",
    ),
}

_REQUIRES_AUTH: list[tuple[LegacyValue, bool]] = [
    ("1", True),
    ("0", False),
    ("true", True),
    ("false", False),
    ("Yes", True),
    ("no", False),
    (True, True),
    (False, False),
]
for _raw, _required in _REQUIRES_AUTH:
    CASES[f"requires-auth-{_raw}"] = Case(
        {"RequiresAuthentication": _raw},
        "RequiresAuthentication",
        "auth",
        AuthType.AUTO if _required else AuthType.NONE,
        "auth",
        "auto" if _required else "none",
        "negotiates the strongest mechanism" if _required else "without logging in",
    )
CASES["requires-auth-superseded"] = Case(
    {"RequiresAuthentication": "0", "AuthType": "AuthLogin"},
    "RequiresAuthentication",
    "auth",
    AuthType.LOGIN,
    "auth",
    "",
    "not used: AuthType is also set and decides auth",
)

for _raw, _security, _note in [
    ("None", Security.AUTO, "set security to none explicitly"),
    ("NONE", Security.AUTO, "mailkit now negotiates TLS"),
    ("TLS", Security.STARTTLS, "STARTTLS"),
    ("tls", Security.STARTTLS, "STARTTLS"),
    ("SSL", Security.IMPLICIT_TLS, "implicit TLS"),
    ("ssl", Security.IMPLICIT_TLS, "implicit TLS"),
]:
    CASES[f"tls-settings-{_raw}"] = Case(
        {"TLSSettings": _raw},
        "TLSSettings",
        "security",
        _security,
        "security",
        _security.value,
        _note,
    )

_USE_SSL: list[tuple[LegacyValue, int | None, Security, str]] = [
    ("true", 465, Security.IMPLICIT_TLS, "port 465 means implicit TLS"),
    ("1", 465, Security.IMPLICIT_TLS, "port 465 means implicit TLS"),
    ("yes", 587, Security.STARTTLS, "STARTTLS"),
    (True, 25, Security.STARTTLS, "STARTTLS"),
    ("true", None, Security.STARTTLS, "STARTTLS"),
    ("false", 587, Security.AUTO, "set security to none explicitly"),
    ("0", 465, Security.AUTO, "Use SSL was off"),
    ("no", None, Security.AUTO, "Use SSL was off"),
]
for _raw, _port, _security, _note in _USE_SSL:
    _legacy: dict[str, LegacyValue] = {} if _port is None else {"Port": _port}
    _legacy["UseSSL"] = _raw
    CASES[f"use-ssl-{_raw}-{_port}"] = Case(
        _legacy, "UseSSL", "security", _security, "security", _security.value, _note
    )
CASES["use-ssl-superseded"] = Case(
    {"UseSSL": "false", "TLSSettings": "SSL", "Port": "465"},
    "UseSSL",
    "security",
    Security.IMPLICIT_TLS,
    "security",
    "",
    "not used: TLSSettings is also set and decides security",
)

for _raw, _mode, _note in [
    ("SMTP", Mode.SMTP, ""),
    ("ExchangeEWS", Mode.EXCHANGE_EWS, "Exchange Online retires EWS"),
    ("exchangeews", Mode.EXCHANGE_EWS, "microsoft_graph"),
    ("ExchangeWebDav", Mode.EXCHANGE_EWS, "WebDAV (Exchange 2000/2003) cannot send"),
    ("GmailApi", Mode.GMAIL_API, "gmail.send"),
]:
    CASES[f"sender-protocol-{_raw}"] = Case(
        {"SenderProtocol": _raw}, "SenderProtocol", "mode", _mode, "mode", _mode.value, _note
    )

for _raw, _auth, _note in [
    ("AuthAuto", AuthType.AUTO, "negotiates the strongest mechanism"),
    ("AuthLogin", AuthType.LOGIN, ""),
    ("AuthPlain", AuthType.PLAIN, ""),
    ("AuthCRAM5", AuthType.CRAM_MD5, ""),
    ("authcram5", AuthType.CRAM_MD5, ""),
    ("AuthNTLM", AuthType.NTLM, ""),
    ("AuthMSN", AuthType.NTLM, "msn is the legacy name of NTLM"),
    ("XOAUTH2", AuthType.XOAUTH2, "OAuth"),
]:
    CASES[f"auth-type-{_raw}"] = Case(
        {"AuthType": _raw}, "AuthType", "auth", _auth, "auth", _auth.value, _note
    )

_PRIORITY: list[tuple[LegacyValue, Priority, str]] = [
    ("Normal", Priority.NORMAL, ""),
    ("High", Priority.HIGH, ""),
    ("low", Priority.LOW, ""),
    ("1", Priority.HIGH, "X-Priority 1"),
    ("2", Priority.HIGH, "X-Priority 2"),
    ("3", Priority.NORMAL, "X-Priority 3"),
    ("4", Priority.LOW, "X-Priority 4"),
    ("5", Priority.LOW, "X-Priority 5"),
    (1, Priority.HIGH, "X-Priority 1"),
]
for _raw, _priority, _note in _PRIORITY:
    CASES[f"priority-{_raw!r}"] = Case(
        {"Priority": _raw}, "Priority", "priority", _priority, "priority", _priority.value, _note
    )

for _raw, _mode, _note in [
    ("Other", Mode.MAPI, "MAPI"),
    ("Outlook", Mode.OUTLOOK, ""),
    ("OUTLOOK", Mode.OUTLOOK, ""),
    ("Lotus Notes", Mode.LOTUS_NOTES, ""),
    ("lotus notes", Mode.LOTUS_NOTES, ""),
    ("SMTP", Mode.SMTP, ""),
]:
    CASES[f"mail-software-{_raw}"] = Case(
        {"MailSoftware": _raw}, "MailSoftware", "mode", _mode, "mode", _mode.value, _note
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_legacy_key_and_value(case: Case) -> None:
    migration = run(case.legacy)
    assert getattr(migration.org, case.field) == case.expected
    row = row_of(migration, case.key)
    old = case.legacy[case.key]
    shown = "true" if old is True else "false" if old is False else str(old)
    assert row["old_value"] == shown
    assert row["new_field"] == case.new_field
    assert row["new_value"] == case.new_value
    assert_note(row["note"], case.note)


def test_every_documented_key_is_covered_by_a_case() -> None:
    """A new alias in LEGACY_KEYS needs a case here (or in the tables below)."""
    tested = {LEGACY_KEYS[_normal(k)] for case in CASES.values() for k in case.legacy}
    assert tested | {"Password"} == set(LEGACY_KEYS.values())


def _normal(key: str) -> str:
    return "".join(ch for ch in key.casefold() if ch.isalnum())


def test_the_ip_warning_is_captured_into_the_report_not_raised() -> None:
    # filterwarnings = error: an escaped UnsafeSettingWarning would fail this test.
    migration = run({"EmailSenderIP": "192.0.2.10", "Port": 587})
    assert "prefer the server's DNS name" in row_of(migration, "EmailSenderIP")["note"]
    assert any(line.startswith("EmailSenderIP:") for line in migration.warnings)


# --------------------------------------------------------------------------- mode resolution


SMTP_DEFERS = "SenderProtocol decides"


@pytest.mark.parametrize(
    ("software", "protocol", "mode", "software_row", "protocol_row"),
    [
        # desktop software decides; the protocol is noted as unused
        ("Outlook", "ExchangeEWS", Mode.OUTLOOK, ("outlook", ""), ("", "not used: MailSoftware")),
        ("Other", "SMTP", Mode.MAPI, ("mapi", "MAPI"), ("", "not used: MailSoftware Other")),
        ("Lotus Notes", "GmailApi", Mode.LOTUS_NOTES, ("lotus_notes", ""), ("", "not used")),
        # SMTP software: the protocol decides
        ("SMTP", "ExchangeEWS", Mode.EXCHANGE_EWS, ("", SMTP_DEFERS), ("exchange_ews", "EWS")),
        ("SMTP", "SMTP", Mode.SMTP, ("", SMTP_DEFERS), ("smtp", "")),
        ("SMTP", "GmailApi", Mode.GMAIL_API, ("", SMTP_DEFERS), ("gmail_api", "OAuth")),
        # one unusable: the other decides, and the unusable row says so
        ("Eudora", "ExchangeEWS", Mode.EXCHANGE_EWS, ("", UNRECOGNISED_NOTE), ("exchange_ews", "")),
        ("SMTP", "Pigeon", Mode.SMTP, ("smtp", ""), ("", "mode was taken from MailSoftware")),
        ("", "GmailApi", Mode.GMAIL_API, ("", EMPTY_NOTE), ("gmail_api", "")),
        ("Eudora", "Pigeon", None, ("", UNRECOGNISED_NOTE), ("", UNRECOGNISED_NOTE)),
    ],
)  # fmt: skip
def test_mode_resolution(
    software: str,
    protocol: str,
    mode: Mode | None,
    software_row: tuple[str, str],
    protocol_row: tuple[str, str],
) -> None:
    migration = run({"MailSoftware": software, "SenderProtocol": protocol})
    assert migration.org.mode == mode
    for key, (value, note) in (("MailSoftware", software_row), ("SenderProtocol", protocol_row)):
        row = row_of(migration, key)
        assert row["new_field"] == "mode"
        assert row["new_value"] == value
        assert note in row["note"]


def test_smtp_settings_without_a_mode_key_become_smtp_in_a_derived_row() -> None:
    migration = run({"SMTPServerName": "smtp.example.com", "Port": 587})
    assert migration.org.mode is Mode.SMTP
    derived = row_of(migration, "")
    assert derived["new_field"] == "mode"
    assert derived["new_value"] == "smtp"
    assert "no MailSoftware or SenderProtocol" in derived["note"]
    assert list(migration.report["old_key"]) == ["SMTPServerName", "Port", ""]


def test_without_smtp_settings_the_mode_is_left_unset() -> None:
    migration = run({"Priority": "High"})
    assert migration.org.mode is None
    assert list(migration.report["old_key"]) == ["Priority"]


# --------------------------------------------------------------------------- WebDAV migrated away


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("exchange.corp.example", "https://exchange.corp.example/EWS/Exchange.asmx"),
        ("MAIL.Example.COM", "https://mail.example.com/EWS/Exchange.asmx"),
        ("mail.corp.local", "https://mail.corp.local/EWS/Exchange.asmx"),
    ],
)
def test_webdav_on_premises_becomes_ews_at_the_servers_standard_url(server: str, url: str) -> None:
    migration = run(
        {"SenderProtocol": "ExchangeWebDav", "SMTPServerName": server, "UserName": "CORP\\it"}
    )
    assert migration.org.mode is Mode.EXCHANGE_EWS
    assert migration.org.ews_url == url
    mode_row = row_of(migration, "SenderProtocol")
    assert mode_row["new_value"] == "exchange_ews"
    assert "cannot send with any current Exchange" in mode_row["note"]
    derived = row_of(migration, "")
    assert (derived["new_field"], derived["new_value"]) == ("ews_url", url)
    assert "Autodiscover" in derived["note"]
    assert any(line.startswith("SenderProtocol:") for line in migration.warnings)
    assert any("Autodiscover" in line for line in migration.warnings)
    assert "exchange_ews" in report_text(migration)


def test_webdav_on_an_ip_address_keeps_it_in_the_url() -> None:
    migration = run({"SenderProtocol": "ExchangeWebDav", "EmailSenderIP": "192.0.2.25"})
    assert migration.org.ews_url == "https://192.0.2.25/EWS/Exchange.asmx"


@pytest.mark.parametrize(
    "server",
    [
        "outlook.office365.com",
        "smtp.office365.com",
        "contoso-com.mail.protection.outlook.com",
        "smtp-mail.outlook.com",
        "outlook.office.com",
        "outlook.office365.us",
        "partner.outlook.cn",
    ],
)
def test_webdav_at_exchange_online_becomes_microsoft_graph(server: str) -> None:
    migration = run({"SenderProtocol": "ExchangeWebDav", "SMTPServerName": server})
    assert migration.org.mode is Mode.MICROSOFT_GRAPH
    assert migration.org.ews_url is None
    row = row_of(migration, "SenderProtocol")
    assert row["new_value"] == "microsoft_graph"
    assert "Exchange Online" in row["note"]
    assert "Mail.Send" in row["note"]
    assert any("microsoft_graph" in line for line in migration.warnings)
    assert "ews_url" not in set(migration.report["new_field"])


def test_webdav_without_a_server_becomes_ews_found_by_autodiscover() -> None:
    migration = run({"SenderProtocol": "ExchangeWebDav", "FromAddress": "it@corp.example"})
    assert migration.org.mode is Mode.EXCHANGE_EWS
    assert migration.org.ews_url is None
    derived = row_of(migration, "")
    assert derived["new_field"] == "ews_url"
    assert derived["new_value"] == ""
    assert "set the EWS URL, or let Autodiscover" in derived["note"]


def test_a_desktop_client_over_webdav_stays_the_desktop_client() -> None:
    migration = run(
        {
            "MailSoftware": "Outlook",
            "SenderProtocol": "ExchangeWebDav",
            "SMTPServerName": "x.example",
        }
    )
    assert migration.org.mode is Mode.OUTLOOK
    assert migration.org.ews_url is None


def test_no_migration_leaves_webdav_behind() -> None:
    """Whatever else the legacy settings say, WebDAV never survives a migration."""
    for server in (None, "exchange.example.org", "smtp.office365.com", "10.1.2.3"):
        legacy: dict[str, LegacyValue] = {"SenderProtocol": "exchange webdav"}
        if server:
            legacy["SMTPServerName"] = server
        assert run(legacy).org.mode is not Mode.EXCHANGE_WEBDAV


def test_the_audits_webdav_fix_says_what_the_migration_does() -> None:
    from mailkit.audit import RULES

    fix = next(rule.fix for rule in RULES if rule.id == "legacy-webdav")
    assert "exchange_ews" in fix
    assert "https://HOST/EWS/Exchange.asmx" in fix
    assert "microsoft_graph" in fix
    assert "Exchange Online" in fix
    assert "Autodiscover" in fix


def test_the_audit_and_the_migration_share_one_exchange_online_predicate() -> None:
    """The audit's ews-exchange-online and the migration's Graph decision: one predicate."""
    import mailkit.audit.rules as rules
    from mailkit.providers import exchange_online_host, webdav_successor

    assert vars(rules)["exchange_online_host"] is exchange_online_host
    for host in ("outlook.office365.com", "exchange.example.org", "smtp.office365.com", "10.0.0.1"):
        graph = webdav_successor(host)[0] is Mode.MICROSOFT_GRAPH
        assert graph is exchange_online_host(host)
    assert not exchange_online_host("office365.com.evil.example")
    assert not exchange_online_host("notoutlook.com.example")


# --------------------------------------------------------------------------- problems are reported


@pytest.mark.parametrize(
    ("legacy", "key", "field"),
    [
        ({"TLSSettings": "Maybe"}, "TLSSettings", "security"),
        ({"UseSSL": "perhaps"}, "UseSSL", "security"),
        ({"AuthType": "AuthKerberos"}, "AuthType", "auth"),
        ({"RequiresAuthentication": "sometimes"}, "RequiresAuthentication", "auth"),
        ({"SenderProtocol": "CarrierPigeon"}, "SenderProtocol", "mode"),
        ({"MailSoftware": "Eudora"}, "MailSoftware", "mode"),
        ({"Priority": "Urgent"}, "Priority", "priority"),
        ({"Priority": "7"}, "Priority", "priority"),
    ],
)
def test_unrecognised_value_is_reported_and_left_at_the_default(
    legacy: dict[str, LegacyValue], key: str, field: str
) -> None:
    migration = run(legacy)
    assert getattr(migration.org, field) is None
    row = row_of(migration, key)
    assert row["old_value"] == legacy[key]
    assert (row["new_field"], row["new_value"]) == (field, "")
    assert row["note"].startswith(UNRECOGNISED_NOTE)
    assert any(line.startswith(f"{key}: {UNRECOGNISED_NOTE}") for line in migration.warnings)


@pytest.mark.parametrize(
    ("legacy", "key", "field", "problem"),
    [
        ({"Port": "abc"}, "Port", "port", "is not a port number"),
        ({"Port": "70000"}, "Port", "port", "out of range"),
        ({"SMTPServerName": "smtp://mail.example.com"}, "SMTPServerName", "host", "host name"),
        ({"FromAddress": "not an address"}, "FromAddress", "from_address", "bare address"),
        ({"UserName": "a\nb"}, "UserName", "username", "line break"),
    ],
)
def test_invalid_value_is_reported_and_left_at_the_default(
    legacy: dict[str, LegacyValue], key: str, field: str, problem: str
) -> None:
    migration = run(legacy)
    assert getattr(migration.org, field) is None
    row = row_of(migration, key)
    assert (row["new_field"], row["new_value"]) == (field, "")
    assert row["note"].startswith(INVALID_NOTE)
    assert problem in row["note"]
    assert migration.needs_review


def test_a_usable_fallback_is_used_when_the_preferred_key_is_unusable() -> None:
    migration = run({"TLSSettings": "Maybe", "UseSSL": "1", "Port": 465})
    assert migration.org.security is Security.IMPLICIT_TLS
    assert "security was taken from UseSSL instead" in row_of(migration, "TLSSettings")["note"]
    assert row_of(migration, "UseSSL")["new_value"] == "implicit_tls"


@pytest.mark.parametrize(
    ("port", "tls", "security"),
    [
        (465, "TLS", Security.IMPLICIT_TLS),
        (587, "SSL", Security.STARTTLS),
        (25, "SSL", Security.STARTTLS),
    ],
)
def test_port_security_conflict_keeps_the_port(port: int, tls: str, security: Security) -> None:
    migration = run({"Port": port, "TLSSettings": tls})
    assert migration.org.port == port
    assert migration.org.security is security
    row = row_of(migration, "TLSSettings")
    assert row["new_value"] == security.value
    assert f"conflicts with Port {port}" in row["note"]
    assert "kept the port" in row["note"]
    assert any(line.startswith("TLSSettings:") for line in migration.warnings)


@pytest.mark.parametrize(
    "key", ["SMTPServerName", "Port", "TLSSettings", "UseSSL", "AuthType", "Priority", "UserName"]
)
@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_value_is_reported_as_not_set(key: str, value: LegacyValue) -> None:
    migration = run({key: value})
    row = row_of(migration, key)
    assert row["old_value"] == ("" if value is None else value)
    assert (row["new_value"], row["note"]) == ("", EMPTY_NOTE)
    assert not migration.needs_review


@pytest.mark.parametrize(
    ("second", "value", "review"),
    [("FromAddress", "ops@example.com", False), ("FromAddress", "other@example.com", True)],
)
def test_two_spellings_of_one_setting_the_first_counts(
    second: str, value: str, review: bool
) -> None:
    migration = run({"EmailFrom": "ops@example.com", second: value})
    assert migration.org.from_address == "ops@example.com"
    row = row_of(migration, second)
    assert (row["new_field"], row["new_value"]) == ("from_address", "")
    assert "not used: EmailFrom names the same setting" in row["note"]
    assert migration.needs_review is review


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("key", "hidden"),
    [
        ("Signature", False),
        ("ArchiveFolder", False),
        ("ProxyPassword", True),
        ("SMTPPwd", True),
        ("ClientSecret", True),
        ("OAuthToken", True),
        ("ApiKey", True),
        ("CredentialFile", True),
        ("PASSPHRASE", True),
    ],
)
def test_unknown_keys_are_reported_and_secret_looking_values_hidden(key: str, hidden: bool) -> None:
    migration = run({"Port": 587, key: "some value 42"})
    row = row_of(migration, key)
    assert row["old_value"] == (HIDDEN if hidden else "some value 42")
    assert (row["new_field"], row["new_value"]) == ("", "")
    assert row["note"].startswith(UNKNOWN_NOTE)
    assert any(line.startswith(f"{key}: {UNKNOWN_NOTE}") for line in migration.warnings)
    if hidden:
        assert "some value 42" not in migration.report.to_csv()
        assert "some value 42" not in repr(migration)


# --------------------------------------------------------------------------- the report


def test_report_columns_and_key_order() -> None:
    legacy: dict[str, LegacyValue] = {
        "Priority": "High",
        "Zeta": "1",
        "SMTPServerName": "smtp.example.com",
        "Password": CANARY,
        "Port": "587",
        "Alpha": "2",
    }
    migration = run(legacy)
    assert tuple(migration.report.columns) == REPORT_COLUMNS
    assert list(migration.report["old_key"]) == [*legacy, ""]  # the derived mode row last


def test_empty_legacy_mapping_gives_defaults_and_an_empty_report() -> None:
    migration = migrate({})
    assert migration.org == OrgSettings()
    assert tuple(migration.report.columns) == REPORT_COLUMNS
    assert migration.report.empty
    assert migration.moved_secrets == ()
    assert migration.warnings == ()


def test_report_text_lists_every_row_and_what_to_review() -> None:
    migration = run({"SMTPServerName": "smtp.example.com", "Password": CANARY, "Mystery": "x"})
    text = report_text(migration)
    assert "SMTPServerName = smtp.example.com  ->  host = smtp.example.com" in text
    assert f"Password = {PASSWORD_HIDDEN}" in text
    assert "Mystery = x  ->  nothing (not set)" in text
    assert f"Secrets written: {ORG_KEY}" in text
    assert f"  - Mystery: {UNKNOWN_NOTE}" in text
    assert CANARY not in text


# --------------------------------------------------------------------------- the password


def test_password_moves_to_the_secret_store() -> None:
    store = MemorySecretStore()
    migration = migrate({"UserName": "jb", "Password": CANARY}, secrets=store)
    stored = store.get(ORG_KEY)
    assert stored is not None
    assert stored.reveal() == CANARY
    assert migration.moved_secrets == (ORG_KEY,)
    row = row_of(migration, "Password")
    assert row["old_value"] == PASSWORD_HIDDEN
    assert row["new_field"] == SECRET_STORE_FIELD
    assert row["new_value"] == f"moved to the secret store ({store.name})"
    assert ORG_KEY in row["note"]


def test_password_goes_under_the_profile_key() -> None:
    store = MemorySecretStore()
    migration = migrate({"SMTP Password": CANARY}, secrets=store, profile="plant-2")
    assert migration.moved_secrets == (secret_key("plant-2", "org"),)
    assert store.get(secret_key("plant-2", "org")) == Secret(CANARY)
    assert store.get(ORG_KEY) is None


def test_without_a_store_the_password_is_refused_with_the_choices() -> None:
    with pytest.raises(SecretStoreError) as caught:
        migrate({"SMTPServerName": "smtp.example.com", "Password": CANARY})
    message = str(caught.value)
    assert "secrets=" in message
    assert "drop_password=True" in message
    assert "enter the password again" in message


def test_drop_password_migrates_the_rest_and_says_to_enter_it_again() -> None:
    store = MemorySecretStore()
    migration = migrate(
        {"SMTPServerName": "smtp.example.com", "Password": CANARY},
        secrets=store,
        drop_password=True,
    )
    assert store.get(ORG_KEY) is None
    assert migration.moved_secrets == ()
    assert migration.org.host == "smtp.example.com"
    row = row_of(migration, "Password")
    assert row["old_value"] == PASSWORD_HIDDEN
    assert (row["new_field"], row["new_value"]) == (SECRET_STORE_FIELD, "")
    assert "not migrated" in row["note"]
    assert "entered again" in row["note"]
    assert any(line.startswith("Password: not migrated") for line in migration.warnings)


@pytest.mark.parametrize("value", ["", None])
def test_empty_password_needs_no_store(value: LegacyValue) -> None:
    migration = migrate({"Password": value})
    row = row_of(migration, "Password")
    assert (row["old_value"], row["new_field"], row["new_value"], row["note"]) == (
        "",
        SECRET_STORE_FIELD,
        "",
        EMPTY_PASSWORD_NOTE,
    )
    assert migration.moved_secrets == ()


@pytest.mark.parametrize(
    ("before", "note", "review"),
    [
        ("an-older-password", "replaced a different password", True),
        (CANARY, "the same password was already stored", False),
    ],
)
def test_a_password_already_in_the_store_is_reported(before: str, note: str, review: bool) -> None:
    store = MemorySecretStore()
    store.set(ORG_KEY, Secret(before))
    migration = migrate({"Password": CANARY}, secrets=store)
    assert store.get(ORG_KEY) == Secret(CANARY)
    assert note in row_of(migration, "Password")["note"]
    assert migration.needs_review is review


def test_nothing_is_stored_when_the_store_refuses() -> None:
    class RefusingStore(SecretStore):
        name = "a store that refuses"

        def get(self, key: str) -> Secret | None:
            return None

        def set(self, key: str, value: Secret) -> None:
            raise SecretStoreError(f"cannot store {key}")

        def delete(self, key: str) -> None:
            pass

    with pytest.raises(SecretStoreError, match="cannot store"):
        migrate({"Password": CANARY}, secrets=RefusingStore())


def _leak_forms(username: str) -> list[str]:
    raw = CANARY.encode()
    forms = [
        CANARY,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(b"\0user\0" + raw).decode(),
        base64.b64encode(b"\0" + username.encode() + b"\0" + raw).decode(),
    ]
    # Unpadded too, as some encoders write it.
    return forms + [form.rstrip("=") for form in forms]


def _assert_no_leak(text: str, username: str = "jordan.brown@mas.example.com") -> None:
    for form in _leak_forms(username):
        assert form not in text


SOURCES: dict[str, dict[str, LegacyValue] | Path] = {
    "mapping": {
        "SMTPServerName": "smtp.office365.com",
        "UserName": "jordan.brown@mas.example.com",
        "Password": CANARY,
        "TLSSettings": "TLS",
    },
    "ini": DATA / "express-maintenance.ini",
    "json": DATA / "maestro.json",
}


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
@pytest.mark.parametrize("drop_password", [False, True])
def test_the_password_appears_nowhere(
    source: dict[str, LegacyValue] | Path, drop_password: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemorySecretStore()
    migration = migrate(source, secrets=store, drop_password=drop_password)
    stored = store.get(ORG_KEY)
    assert (stored is None) if drop_password else (stored == Secret(CANARY))
    report = migration.report
    for text in (
        repr(migration),
        str(migration.warnings),
        report.to_string(),
        report.to_csv(),
        report.to_json(),
        repr(report),
        report_text(migration),
        str(migration.org),
        repr(migration.org),
        migration.org.model_dump_json(),
        caplog.text,
        *(record.getMessage() for record in caplog.records),
    ):
        _assert_no_leak(text)
        _assert_no_leak(text, "accounting@example.com")


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_the_password_is_not_in_the_no_store_error(
    source: dict[str, LegacyValue] | Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SecretStoreError) as caught:
        migrate(source)
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None
    for text in (
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        caplog.text,
    ):
        _assert_no_leak(text)
        _assert_no_leak(text, "accounting@example.com")


# --------------------------------------------------------------------------- sample files


def test_express_maintenance_ini_file() -> None:
    store = MemorySecretStore()
    migration = migrate(DATA / "express-maintenance.ini", secrets=store)
    org = migration.org
    assert (org.mode, org.host, org.port, org.security, org.auth) == (
        Mode.SMTP,
        "smtp.office365.com",
        587,
        Security.STARTTLS,
        AuthType.LOGIN,
    )
    assert org.username == "jordan.brown@mas.example.com"
    assert org.from_address == "jordan.brown@mas.example.com"
    assert org.from_name == "Express Maintenance"
    assert org.priority is Priority.NORMAL
    assert store.get(ORG_KEY) == Secret(CANARY)
    assert list(migration.report["old_key"]) == list(read_legacy(DATA / "express-maintenance.ini"))
    assert row_of(migration, "EmailSenderIP")["note"] == EMPTY_NOTE
    assert migration.warnings == ()


def test_maestro_json_file_nested_one_level() -> None:
    store = MemorySecretStore()
    migration = migrate(str(DATA / "maestro.json"), secrets=store)
    org = migration.org
    assert (org.mode, org.host, org.port, org.security, org.priority) == (
        Mode.SMTP,
        "smtp.gmail.com",
        465,
        Security.IMPLICIT_TLS,
        Priority.NORMAL,
    )
    assert (org.username, org.from_address, org.from_name) == (
        "accounting@example.com",
        "accounting@example.com",
        "Accounting",
    )
    assert row_of(migration, "UseSSL")["old_value"] == "true"
    assert row_of(migration, "Port")["old_value"] == "465"
    assert migration.moved_secrets == (ORG_KEY,)
    assert migration.warnings == ()


def test_read_legacy_keeps_spelling_and_order() -> None:
    settings = read_legacy(DATA / "maestro.json")
    assert list(settings) == [
        "MailSoftware",
        "Priority",
        "ServerName",
        "Port",
        "UseSSL",
        "UserName",
        "Password",
        "EmailFrom",
        "DisplayName",
    ]
    assert settings["Priority"] == "3"
    assert settings["UseSSL"] == "true"


def test_unknown_keys_file() -> None:
    migration = migrate(DATA / "unknown-keys.ini")  # no password key: no store needed
    assert migration.org.host == "mail.example.org"
    assert migration.org.security is Security.AUTO
    assert migration.org.auth is AuthType.NONE
    unknown = migration.report[migration.report["note"].str.startswith(UNKNOWN_NOTE)]
    assert list(unknown["old_key"]) == [
        "Signature",
        "ArchiveFolder",
        "SMTPTimeoutSeconds",
        "ProxyPassword",
        "ApiKey",
    ]
    assert list(unknown["old_value"]) == [
        "Sent from Express Maintenance",
        r"\\fileserver\mail-archive",
        "30",
        HIDDEN,
        HIDDEN,
    ]
    _assert_no_leak(migration.report.to_csv())
    assert "canary-key-51" not in migration.report.to_csv()
    assert len(migration.warnings) == 5


@pytest.mark.parametrize(
    ("name", "where"),
    [("malformed.json", "line 5, column 3"), ("malformed.ini", "line 4 is")],
)
def test_malformed_file_error_names_the_spot_and_quotes_nothing(name: str, where: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        read_legacy(DATA / name)
    message = str(caught.value)
    assert name in message
    assert where in message
    assert "export the settings again" in message
    _assert_no_leak(message)
    assert "smtp.example.com" not in message
    assert "Password" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_migrate_a_malformed_file_raises_import_file_error() -> None:
    with pytest.raises(ImportFileError, match=r"is not valid JSON"):
        migrate(DATA / "malformed.json", secrets=MemorySecretStore())


def test_notebook_sample_file_migrates() -> None:
    path = Path(__file__).parent.parent / "notebooks" / "data" / "legacy-settings.ini"
    migration = migrate(path, secrets=MemorySecretStore())
    assert migration.org.host == "192.0.2.25"
    assert migration.org.auth is AuthType.NTLM
    assert migration.needs_review


# --------------------------------------------------------------------------- file formats


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("settings.cfg", "[Mail]\nPort = 587\n"),
        ("settings.conf", "[Mail]\nPort: 587\n"),
        ("settings.txt", "[Mail]\nPort=587\n"),
        ("settings", '{"Port": 587}'),
        ("export.dat", '  \n{"Mail": {"Port": "587"}}'),
        ("bare.ini", "; no section header\nPort=587\n"),
        ("bom.ini", "\ufeff[Mail]\nPort=587\n"),
        ("default.ini", "[DEFAULT]\nPort=587\n[Other]\n"),
    ],
)
def test_formats_by_extension_or_content(tmp_path: Path, name: str, content: str) -> None:
    assert read_legacy(write(tmp_path, name, content)) == {"Port": "587"}


def test_ini_keeps_passwords_with_comment_and_interpolation_characters(tmp_path: Path) -> None:
    path = write(tmp_path, "s.ini", "[Mail]\nPassword = a%b;c#d\n# a comment\n")
    assert read_legacy(path) == {"Password": "a%b;c#d"}


def test_utf16_with_bom_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path, "s.ini", codecs.BOM_UTF16_LE + "[Mail]\nFromName=Zoë\n".encode("utf-16-le")
    )
    assert read_legacy(path) == {"FromName": "Zoë"}


def test_windows_1252_is_read_and_flagged(tmp_path: Path) -> None:
    path = write(tmp_path, "s.ini", "[Mail]\nFromName=Zoë Müller\n".encode("cp1252"))
    assert read_legacy(path) == {"FromName": "Zoë Müller"}
    migration = migrate(path)
    assert migration.org.from_name == "Zoë Müller"
    assert any("Windows-1252" in line for line in migration.warnings)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.ini", "", "holds no settings"),
        ("comments.ini", "; nothing\n[Mail]\n", "holds no settings"),
        ("empty.json", "{}", "holds no settings"),
        ("list.json", '["Port", 587]', "JSON list at the top level"),
        ("scalar.json", '"smtp.example.com"', "JSON single value"),
        ("deep.json", '{"Mail": {"Servers": {"Port": 587}}}', "holds an object"),
        ("array.json", '{"Recipients": ["a@example.com"]}', "holds a list"),
        ("dup.json", '{"Port": 587, "Port": 25}', "appears twice"),
        ("dup-sections.json", '{"A": {"Port": 587}, "B": {"port": 25}}', "appears twice"),
        ("dup-case.json", '{"Port": 587, "PORT": 25}', "appears twice"),
        ("dup-sections.ini", "[A]\nPort=587\n[B]\nPort=25\n", "appears twice"),
        ("dup-option.ini", "[A]\nPort=587\nPort=25\n", "appears twice in one section"),
        ("dup-case.ini", "[A]\nPort=587\nPORT=25\n", "appears twice"),
        ("dup-section.ini", "[A]\nPort=587\n[A]\nHost=x\n", "section ['A'] appears twice"),
        ("nameless.json", '{"": "x"}', "empty name"),
        ("nul.ini", b"[A]\x00\nPort=587\n", "NUL bytes"),
        ("bad-utf16.ini", codecs.BOM_UTF16_LE + b"\x00\xd8", "byte-order mark"),
        ("undefined.ini", b"[A]\nName=\x81\x8d\n", "neither UTF-8 nor Windows-1252"),
        ("bare-bad.ini", "Port=587\nnot a setting\n", "line 2 is"),
        ("two-bad.ini", "[A]\nbad one\nbad two\n", "lines 2, 3 are"),
    ],
)
def test_unusable_files_raise_import_file_error(
    tmp_path: Path, name: str, content: str | bytes, problem: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(ImportFileError) as caught:
        read_legacy(path)
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)
    # Not even hidden in __context__: parser errors quote the file's lines.
    assert caught.value.__context__ is None


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="No such file or directory") as missing:
        read_legacy(tmp_path / "absent.ini")
    with pytest.raises(ImportFileError, match="check the path") as directory:
        read_legacy(tmp_path)
    assert missing.value.__context__ is None
    assert directory.value.__context__ is None


@pytest.mark.parametrize(
    "text",
    [
        f"[Email]\nPassword={CANARY}\n",
        f'{{"Password": "{CANARY}"}}',
        f"Password={CANARY}",
    ],
)
def test_settings_text_passed_as_a_path_is_not_echoed(text: str) -> None:
    with pytest.raises(ImportFileError, match="looks like settings text") as caught:
        migrate(text, secrets=MemorySecretStore())
    _assert_no_leak(str(caught.value))
    assert caught.value.__context__ is None


def test_pandas_style_values_are_read() -> None:
    migration = run({"Port": 587.0, "SMTPServerName": float("nan")})
    assert migration.org.port == 587
    assert row_of(migration, "Port")["old_value"] == "587"
    assert row_of(migration, "SMTPServerName")["note"] == EMPTY_NOTE


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.ini", "[A]\n" + "x=1\n" * 300_000)
    with pytest.raises(ImportFileError, match="a few kilobytes"):
        read_legacy(path)


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([".json", ".ini", ".txt"]))
def test_read_legacy_returns_settings_or_import_file_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"legacy{suffix}"
        path.write_bytes(data)
        try:
            settings_read = read_legacy(path)
        except ImportFileError:
            return
        assert settings_read
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in settings_read.items())


_KNOWN_KEYS = sorted(set(LEGACY_KEYS.values()) - {"Password"})


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from([*_KNOWN_KEYS, "Mystery", "OtherToken"]),
        st.one_of(st.text(max_size=30), st.integers(0, 70000), st.booleans(), st.none()),
        max_size=8,
    ),
    password=st.text(min_size=1, max_size=20),
)
def test_migrate_never_fails_on_odd_values_and_never_shows_the_password(
    values: dict[str, Any], password: str
) -> None:
    secret = f"canary-{password}"
    legacy = {**values, "Password": secret}
    store = MemorySecretStore()
    migration = migrate(legacy, secrets=store)
    assert store.get(ORG_KEY) == Secret(secret)
    assert list(migration.report["old_key"])[: len(legacy)] == list(legacy)
    rendered = migration.report.to_csv() + repr(migration) + report_text(migration)
    assert secret not in rendered
    assert json.dumps(secret)[1:-1] not in migration.report.to_json()
    assert isinstance(migration.report, pd.DataFrame)
