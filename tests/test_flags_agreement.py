"""A send configured by flags alone reads them as the org model does, without the model.

``mailkit test --host ... --to ...`` without a profile checks its flags with
:func:`mailkit.fields.org_values_from_flags` and resolves them with
:func:`mailkit.resolve.effective_from_flags`, so pydantic never loads. That is only right if
it is the model's answer exactly: for every combination of flag values, either both accept
with the same effective settings and the same warnings, or the flags path declines and the
model refuses (then the model's problem, named by flag, is what the user reads).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailkit.errors import SettingsError, UnsafeSettingWarning
from mailkit.fields import FLAG_FIELD_CHECKS, ORG_SEND_DEFAULTS, org_values_from_flags
from mailkit.resolve import ORG_ONLY_FIELDS, Effective, effective, effective_from_flags
from mailkit.settings import OrgSettings, validate

PIN = "ab" * 32

#: Values a user types for each flag: right, differently spelled, risky, and wrong.
FLAG_VALUES: dict[str, list[Any]] = {
    "mode": ["smtp", "SMTP", "gmail-api", "microsoft_graph", "other", "outlook", "bogus", " "],
    "host": [
        "smtp.example.com",
        "SMTP.Example.com.",
        "127.0.0.1",
        "[::1]",
        "mail.corp.local",
        "smtp.gmial.com",
        "smtp.office365.com",
        "bücher.example",
        "bad host",
        "user@smtp.example.com",
        "10.0.0.010",
        "",
        "a\nb",
    ],
    "port": ["587", "465", "25", " 2525 ", "0", "99999", "abc", "", "5e2"],
    "security": ["auto", "ssl", "tls", "STARTTLS", "implicit-tls", "none", "bogus", ""],
    "auth": ["plain", "LOGIN", "cram-md5", "xoauth2", "msn", "none", "bogus"],
    "username": ["alice@gmail.com", "alice", " padded ", "a\x00b", "x" * 201, ""],
    "from_address": [
        "alice@example.com",
        "Alice@Example.COM",
        "jürgen@example.de",
        "ops@corp.local",
        "no-at-sign",
        "a@b",
        "",
    ],
    "ca_file": ["ca.pem", "  spaced.pem  ", "a\x00b", ""],
    "tls_pin_sha256": [PIN, ":".join(PIN[i : i + 2] for i in range(0, 64, 2)), "nothex", ""],
    "ews_url": ["https://mail.example.com/EWS/Exchange.asmx", "http://insecure", ""],
    "ews_autodiscover": [True, False],
    "ews_autodiscover_url": ["https://autodiscover.example.com", "ftp://x", ""],
    "api_url": ["https://graph.microsoft.com/", "https://x/?q=1", "not a url", ""],
}


def model_answer(flags: dict[str, Any]) -> tuple[Effective | None, list[str]]:
    """What ``mailkit test`` answers through the model: the effective settings, or None when
    the model refuses; and the warnings given."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = OrgSettings().model_dump(exclude_none=True)
        try:
            org = validate(OrgSettings, {**data, **flags}, context="test settings")
        except SettingsError:
            return None, _said(caught)
        return effective(org), _said(caught)


def flags_answer(flags: dict[str, Any]) -> tuple[Effective | None, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = org_values_from_flags(flags)
        eff = effective_from_flags(values) if values is not None else None
        return eff, _said(caught)


def _said(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if w.category is UnsafeSettingWarning]


def assert_agree(flags: dict[str, Any]) -> None:
    by_model, model_warnings = model_answer(flags)
    by_flags, flag_warnings = flags_answer(flags)
    if by_model is None:
        assert by_flags is None, f"the model refuses {flags!r}, the flags path accepts it"
        assert flag_warnings == [], "a declined value gave warnings of its own"
        return
    assert by_flags == by_model, flags
    assert flag_warnings == model_warnings, flags


@hsettings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={name: st.sampled_from(values) for name, values in FLAG_VALUES.items()},
    )
)
def test_flags_alone_resolve_as_the_model_does(flags: dict[str, Any]) -> None:
    assert_agree(flags)


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"host": "smtp.example.com", "port": "587", "security": "starttls", "auth": "plain"},
        {"host": "127.0.0.1", "security": "none"},  # two warnings, in the model's order
        {"host": "smtp.gmial.com", "username": "alice@gmail.com"},
        {"host": "smtp.office365.com", "username": "alice@gmail.com"},
        {"port": "465", "security": "starttls"},  # a cross-field refusal
        {"port": "99999"},
        {"host": "smtp.example.com", "ca_file": " ca.pem ", "tls_pin_sha256": PIN.upper()},
        {"mode": "exchange_ews", "ews_url": "https://mail.example.com/EWS/Exchange.asmx"},
        {"mode": "gmail_api", "api_url": "https://gmail.googleapis.com/"},
    ],
)
def test_examples_agree(flags: dict[str, Any]) -> None:
    assert_agree(flags)


def test_a_field_the_table_does_not_read_goes_to_the_model() -> None:
    assert org_values_from_flags({"host": "smtp.example.com", "priority": "high"}) is None


def test_every_table_field_is_an_org_field_with_its_default() -> None:
    """The flags path starts from the model's defaults and reads only fields it has."""
    org = OrgSettings()
    fields = OrgSettings.model_fields
    assert set(FLAG_FIELD_CHECKS) <= set(fields)
    assert {name: getattr(org, name) for name in ORG_SEND_DEFAULTS} == ORG_SEND_DEFAULTS
    effective_fields = {f.name for f in dataclasses.fields(Effective)}
    assert set(ORG_ONLY_FIELDS) <= effective_fields & set(fields)
