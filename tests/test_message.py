"""The test message: multi-language body, a subject that survives encoding, honest headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest

from mailkit.message import TEST_BODY_LINES, TEST_SUBJECT, build_test_message
from mailkit.settings import Priority


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def test_subject_and_body_survive_the_wire_intact() -> None:
    test = build_test_message(sender="it@example.com", recipients=["ann@example.org"])
    raw = test.as_bytes()
    assert raw.isascii()  # 7-bit safe: no SMTPUTF8 or 8BITMIME needed
    assert b"\r\n" in raw
    back = parse(raw)
    assert back["Subject"] == TEST_SUBJECT
    body = back.get_content()
    for language, text in TEST_BODY_LINES:
        assert f"{language} - {text}" in body
    for seed_line in (
        "Este es un mensaje de prueba.",
        "這是一條測試消息",
        "Dies ist eine Testnachricht.",
    ):
        assert seed_line in body


@pytest.mark.parametrize("priority", list(Priority))
def test_priority_headers(priority: Priority) -> None:
    back = parse(
        build_test_message(
            sender="it@example.com", recipients=["a@example.org"], priority=priority
        ).as_bytes()
    )
    for name, value in priority.headers().items():
        assert back[name] == value


def test_headers_date_message_id_from_to() -> None:
    now = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    test = build_test_message(
        sender="it@example.com",
        recipients=["ann@example.org", "bob@example.net"],
        sender_name="Corp IT — Büro",
        now=now,
    )
    back = parse(test.as_bytes())
    assert back["Date"].datetime == now
    assert test.message_id.startswith("<")
    assert test.message_id.endswith("@example.com>")
    assert back["From"].addresses[0].display_name == "Corp IT — Büro"
    assert back["From"].addresses[0].addr_spec == "it@example.com"
    assert [a.addr_spec for a in back["To"].addresses] == ["ann@example.org", "bob@example.net"]
    assert test.recipients == ("ann@example.org", "bob@example.net")


def test_idn_domain_goes_on_the_envelope_as_a_labels_without_smtputf8() -> None:
    test = build_test_message(sender="it@bücher.example.com", recipients=["ann@example.org"])
    assert not test.smtputf8
    assert test.sender == "it@xn--bcher-kva.example.com"
    assert test.message_id.endswith("@xn--bcher-kva.example.com>")


def test_unicode_local_part_needs_smtputf8() -> None:
    test = build_test_message(sender="it@example.com", recipients=["用户@example.org"])
    assert test.smtputf8
    assert test.recipients == ("用户@example.org",)
    assert "用户@example.org".encode() in test.as_bytes()


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        ("not-an-address", ["a@example.org"]),
        ("it@example.com", ["alice@example.org)<bob@example.org>"]),
        ("it@example.com", []),
        ("it@example.com", ["a@example.org\r\nBcc: x@example.org"]),
    ],
)
def test_bad_addresses_are_refused(sender: str, recipients: list[str]) -> None:
    with pytest.raises(ValueError, match=r"address|recipient|line break"):
        build_test_message(sender=sender, recipients=recipients)
