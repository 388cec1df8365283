"""Feature routes are testable (issue 13, point 5): the subject template rendered with sample
values, sent by the route's sender (the org, or a user with that user's mode and credentials) to
the route's recipients, through a real SMTP server; the errors name the field; the audit's two
route rules fire on what the validator refuses or warns about."""

from __future__ import annotations

import warnings
from datetime import date
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from smtpd_servers import MailServer

from mailkit.audit import audit
from mailkit.errors import SettingsError, UnsafeSettingWarning
from mailkit.message import MESSAGE_SUBJECT, TEST_BODY_LINES, build_test_message
from mailkit.routes import render_subject, route_test, sample_values
from mailkit.secrets import MemorySecretStore, secret_key
from mailkit.settings import FeatureRoute, OrgSettings, UserSettings
from mailkit.store import Store
from mailkit.testsend import send_route_test, send_test

pytestmark = pytest.mark.timeout(60)

TODAY = date(2026, 12, 7)


def quiet_org(**fields: Any) -> OrgSettings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        return OrgSettings.model_validate(fields)


@pytest.fixture
def server_org(smtp_server: MailServer) -> dict[str, Any]:
    return {
        "host": smtp_server.host,
        "port": smtp_server.starttls_port,
        "ca_file": str(smtp_server.ca_file),
        "username": smtp_server.user,
        "from_address": "it@example.com",
        "from_name": "Corp IT",
        "connect_timeout": 5,
        "command_timeout": 5,
    }


# --------------------------------------------------------------------------- rendering (pure)


def test_a_template_is_filled_with_recognisable_sample_values() -> None:
    values = sample_values("work_orders", "Maintenance", TODAY)
    subject = render_subject("{feature} {number}: {title} ({sender}, {date})", values, field="f")
    assert subject == "Work orders TEST-0001: mailkit route test (Maintenance, 2026-12-07)"
    assert render_subject("Literal {{braces}} {number}", values, field="f") == (
        "Literal {braces} TEST-0001"
    )


def test_an_unknown_placeholder_is_named_with_the_known_ones() -> None:
    with pytest.raises(SettingsError) as caught:
        render_subject("PO {customer}: {title}", sample_values("po", "x", TODAY), field="the-field")
    (problem,) = caught.value.problems
    assert problem.field == "the-field"
    assert "customer" in problem.message
    for known in ("date", "feature", "number", "sender", "title"):
        assert known in problem.message


@pytest.mark.parametrize("template", ["Order {number", "Order {number:>5}", "Order {title!r}"])
def test_a_malformed_template_is_refused_in_the_validators_words(template: str) -> None:
    with pytest.raises(SettingsError):
        render_subject(template, sample_values("x", "y", TODAY), field="f")
    # The validator refuses it with the same predicate's words.
    with pytest.raises(ValueError, match=r"braces|placeholders as \{number\}"):
        FeatureRoute(subject_template=template)


# --------------------------------------------------------------------------- what a test sends


def test_the_built_in_routes_render_their_default_subjects() -> None:
    org = quiet_org(
        from_address="it@example.com",
        from_name="Corp IT",
        routes={
            name: {"recipients": ["desk@example.com"]}
            for name in ("requests", "purchase_orders", "work_orders")
        },
    )
    subjects = {name: route_test(org, name, [], today=TODAY).subject for name in org.routes}
    assert subjects == {
        "requests": "Request TEST-0001: mailkit route test",
        "purchase_orders": "Purchase order TEST-0001: mailkit route test",
        "work_orders": "Work order TEST-0001: mailkit route test",
    }


def test_a_user_sender_is_found_without_case_and_named_in_sender() -> None:
    org = quiet_org(
        routes={
            "invoices": {
                "sender": "ANN",
                "recipients": ["ap@example.com"],
                "subject_template": "Invoice {number} from {sender}",
            }
        }
    )
    ann = UserSettings(user_code="ann", display_name="Ann Lee")
    test = route_test(org, "invoices", [ann], today=TODAY)
    assert test.user is ann
    assert test.sender == "ann"
    assert test.subject == "Invoice TEST-0001 from Ann Lee"
    assert test.recipients == ("ap@example.com",)
    assert test.enabled is False  # a disabled route is tested all the same


def test_an_unknown_route_names_the_known_ones() -> None:
    with pytest.raises(SettingsError) as caught:
        route_test(quiet_org(), "invoices", [], today=TODAY)
    (problem,) = caught.value.problems
    assert problem.field == "route"
    assert "purchase_orders, requests, work_orders" in problem.message


def test_a_sender_who_is_not_a_user_and_no_recipients_are_both_named() -> None:
    org = quiet_org(routes={"work_orders": {"sender": "ghost"}})
    with pytest.raises(SettingsError) as caught:
        route_test(org, "work_orders", [UserSettings(user_code="ann")], today=TODAY)
    fields = {p.field for p in caught.value.problems}
    assert fields == {"routes.work_orders.sender", "routes.work_orders.recipients"}


def test_a_stored_template_that_bypassed_validation_is_refused_with_its_field() -> None:
    org = quiet_org(routes={"work_orders": {"recipients": ["a@example.com"]}})
    org.routes["work_orders"] = FeatureRoute.model_construct(
        enabled=True, sender="org", recipients=["a@example.com"], subject_template="WO {asset}"
    )
    with pytest.raises(SettingsError) as caught:
        route_test(org, "work_orders", [], today=TODAY)
    (problem,) = caught.value.problems
    assert problem.field == "routes.work_orders.subject_template"
    assert "asset" in problem.message


def test_the_subject_context_applies_only_inside_it() -> None:
    token = MESSAGE_SUBJECT.set("Work order TEST-0001")
    try:
        inside = build_test_message(sender="a@example.com", recipients=["b@example.com"])
    finally:
        MESSAGE_SUBJECT.reset(token)
    outside = build_test_message(sender="a@example.com", recipients=["b@example.com"])
    assert inside.message["Subject"] == "Work order TEST-0001"
    assert outside.message["Subject"] != "Work order TEST-0001"


# --------------------------------------------------------------------------- real sends


def test_an_org_route_sends_its_subject_to_its_recipients(
    server_org: dict[str, Any], smtp_server: MailServer, tmp_path: Path
) -> None:
    org = quiet_org(
        **server_org,
        routes={"purchase_orders": {"enabled": True, "recipients": ["buyer@example.org"]}},
    )
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "org"), smtp_server.password, smtp_server.password)
    with Store.open(tmp_path / "p.sqlite", create=True) as store:
        result = send_route_test(
            org, "purchase_orders", [], secrets=secrets, store=store, today=TODAY
        )
        history = store.history_frame()
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ("buyer@example.org",)
    assert received.mail_from == "it@example.com"
    message = message_from_bytes(received.data, policy=default_policy)
    assert message["Subject"] == "Purchase order TEST-0001: mailkit route test"
    body = message.get_content()
    assert all(text in body for _language, text in TEST_BODY_LINES)  # the usual test body
    assert list(history["ok"]) == [True]
    # The next plain test is the usual test message again.
    send_test(org, to=["x@example.org"], secrets=secrets)
    again = message_from_bytes(smtp_server.messages[-1].data, policy=default_policy)
    assert again["Subject"].startswith("mailkit test")


def test_a_user_route_sends_as_that_user_with_their_own_password(
    server_org: dict[str, Any], smtp_server: MailServer
) -> None:
    org = quiet_org(
        **{**server_org, "username": "nobody"},
        routes={
            "work_orders": {
                "enabled": True,
                "sender": "maint",
                "recipients": ["crew@example.org", "lead@example.org"],
            }
        },
    )
    maint = UserSettings(
        user_code="maint",
        display_name="Maintenance",
        override_enabled=True,
        username=smtp_server.user,
        from_address="maintenance@example.com",
    )
    secrets = MemorySecretStore()
    secrets.set_password(secret_key("default", "maint"), smtp_server.password, smtp_server.password)
    result = send_route_test(org, "work_orders", [maint], secrets=secrets, today=TODAY)
    assert result.ok, result.diagnosis and result.diagnosis.to_text()
    (received,) = smtp_server.messages
    assert received.mail_from == "maintenance@example.com"
    assert received.rcpt_tos == ("crew@example.org", "lead@example.org")


def test_a_route_failure_is_the_usual_diagnosis(
    server_org: dict[str, Any], smtp_server: MailServer
) -> None:
    smtp_server.require_auth = True
    org = quiet_org(
        **server_org,
        auth="plain",
        routes={"requests": {"enabled": True, "recipients": ["desk@example.org"]}},
    )
    result = send_route_test(org, "requests", [], secrets=MemorySecretStore(), today=TODAY)
    assert not result.ok
    assert result.diagnosis is not None
    assert result.diagnosis.cause.value == "password_missing"
    assert smtp_server.messages == []


def test_a_route_of_a_desktop_user_is_a_hand_off_with_the_routes_subject(tmp_path: Path) -> None:
    org = quiet_org(
        host="smtp.example.com",
        from_address="it@example.com",
        routes={"work_orders": {"sender": "ann", "recipients": ["crew@example.org"]}},
    )
    ann = UserSettings(
        user_code="ann", override_enabled=True, mode="outlook", from_address="ann@example.com"
    )
    result = send_route_test(org, "work_orders", [ann], eml_folder=tmp_path, today=TODAY)
    assert result.ok
    assert result.eml_path is not None
    draft = message_from_bytes(Path(result.eml_path).read_bytes(), policy=default_policy)
    assert draft["Subject"] == "Work order TEST-0001: mailkit route test"
    assert draft["To"] == "crew@example.org"


# --------------------------------------------------------------------------- the audit's two rules


def fired(findings: pd.DataFrame, rule: str) -> list[str]:
    return list(findings.loc[findings["rule"] == rule, "message"])


def test_the_audit_reports_an_enabled_route_sending_from_a_desktop_mode() -> None:
    org = quiet_org(
        host="smtp.example.com",
        from_address="it@example.com",
        routes={
            "work_orders": {"enabled": True, "sender": "ann", "recipients": ["a@example.com"]},
            "requests": {"enabled": False, "sender": "ann", "recipients": ["a@example.com"]},
            "purchase_orders": {"enabled": True, "sender": "bob", "recipients": ["a@example.com"]},
        },
    )
    users = pd.DataFrame(
        {
            "user_code": ["ann", "bob"],
            "override_enabled": [True, True],
            "mode": ["outlook", "smtp"],
        }
    )
    (message,) = fired(audit(org, users), "route-sender-not-sendable")
    assert message.startswith("the work_orders route sends as ann, but mode outlook")


def test_the_audit_reports_an_org_in_a_desktop_mode_as_a_routes_sender() -> None:
    org = quiet_org(
        mode="mapi",
        from_address="it@example.com",
        routes={"requests": {"enabled": True, "recipients": ["a@example.com"]}},
    )
    (message,) = fired(audit(org, pd.DataFrame({"user_code": ["x"]})), "route-sender-not-sendable")
    assert "mode mapi" in message


def test_the_audit_reports_a_stored_template_the_validator_would_refuse() -> None:
    org = quiet_org(from_address="it@example.com")
    org.routes["invoices"] = FeatureRoute.model_construct(
        enabled=False, sender="org", recipients=[], subject_template="Invoice {customer}"
    )
    (message,) = fired(audit(org, pd.DataFrame({"user_code": ["x"]})), "route-template-invalid")
    assert message.startswith("the invoices route's subject template uses unknown placeholder")
    assert not fired(
        audit(quiet_org(), pd.DataFrame({"user_code": ["x"]})), "route-template-invalid"
    )


def test_saving_an_enabled_route_with_a_desktop_sender_warns() -> None:
    with pytest.warns(UnsafeSettingWarning, match="the requests route sends as the organisation"):
        OrgSettings.model_validate({"mode": "outlook", "routes": {"requests": {"enabled": True}}})
    from mailkit.settings import Profile

    with pytest.warns(UnsafeSettingWarning, match="the work_orders route sends as ann, but"):
        Profile.model_validate(
            {
                "org": {"routes": {"work_orders": {"enabled": True, "sender": "ann"}}},
                "users": [{"user_code": "ann", "override_enabled": True, "mode": "lotus_notes"}],
            }
        )
