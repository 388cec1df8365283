"""check_address's shortcut for plain ASCII addresses gives email-validator's answer.

:func:`mailkit.fields.check_address` answers ``Alice.Smith@Example.com``-shaped addresses
without loading email-validator (a test send's start-up). The shortcut may decline any address
(then email-validator decides, as before), but whatever it accepts must be exactly what
email-validator accepts, normalised the same way. Generated addresses lean on the edges: case,
role names, hyphens and dots in odd places, punycode, special-use and internal suffixes,
digits at the end, label and address lengths around the limits.
"""

from __future__ import annotations

import subprocess
import sys

import email_validator
from email_validator import rfc_constants
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailkit import fields
from mailkit.settings import check_address


def email_validators_answer(address: str) -> str | None:
    """What check_address says through email-validator alone: the address, or None (refused)."""
    try:
        result, suffix = fields._validated_address(address)
    except ValueError:
        return None
    assert suffix is None, "the shortcut never takes an internal domain"
    return str(result.normalized)


ATEXT = "abcxyzABCXYZ0189_!#$%&'*+-/=?^`{|}~"
LABEL_CHARS = "abzAZ09-"
labels = st.one_of(
    st.from_regex(r"[a-zA-Z0-9]{1,10}(-[a-zA-Z0-9]{1,5})?", fullmatch=True),
    st.text(LABEL_CHARS, min_size=0, max_size=8),
    st.sampled_from(["xn--bcher-kva", "ab--cd", "-a", "a-", "a--b", "Test", "LOCAL", "x" * 63]),
    st.just("x" * 64),
    st.text("0123456789", min_size=1, max_size=3),
)
tlds = st.one_of(
    st.sampled_from(
        [
            *("com", "ORG", "de", "io", "c0m", "123", "arpa", "invalid", "local", "localhost"),
            *("onion", "test", "lan", "corp", "home", "internal", "x", "a1", "1a", "xn--p1ai"),
        ]
    ),
    st.text(LABEL_CHARS, min_size=1, max_size=5),
)
local_parts = st.one_of(
    st.from_regex(r"[a-zA-Z0-9_+-]{1,20}(\.[a-zA-Z0-9{}~]{1,5})?", fullmatch=True),
    st.text(ATEXT + ".", min_size=0, max_size=12),
    st.sampled_from(["Postmaster", "INFO", "www", "Abuse", "sales.team", "a" * 64, "a" * 65]),
    st.text(ATEXT + '. "(),:;<>@[\\]\t', min_size=1, max_size=6),
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = draw(local_parts)
    domain = ".".join([*draw(st.lists(labels, min_size=0, max_size=4)), draw(tlds)])
    if draw(st.booleans()):
        domain = domain + "." * draw(st.integers(0, 1))
    padding = "a" * draw(st.sampled_from([0, 0, 0, 180, 240]))
    return draw(
        st.sampled_from(
            [
                f"{local}@{domain}",
                f"{local}@{padding}{domain}" if padding else f"{local}@{domain}",
                f" {local}@{domain} ",
                f"{local}@@{domain}",
                f"{local}@{domain}@x.com",
            ]
        )
    )


@hsettings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses())
@example("Alice.Smith@Example.COM")
@example("Postmaster@example.com")
@example("a@b.c0m")
@example("a@xn--bcher-kva.example")
@example("a@ab--cd.example")
@example("a@mail.corp.local")
@example("a@example")
@example("a@x.onion")
@example("." + "a@example.com")
@example("a" * 64 + "@" + "b" * 63 + ".com")
def test_the_shortcut_agrees_with_email_validator(address: str) -> None:
    shortcut = fields._plain_ascii_address(address)
    if shortcut is not None:
        assert shortcut == email_validators_answer(address)
        assert check_address(address) == shortcut


def email_validators_domain(domain: str) -> fields.AddressDomain:
    """address_domain through email-validator alone."""
    try:
        result, _ = fields._validated_address("a@" + domain)
    except ValueError:
        return fields.AddressDomain(False, 0)
    typed = result.original.rpartition("@")[2]
    forms = (typed.encode(), result.domain.encode(), result.ascii_domain.encode())
    return fields.AddressDomain(True, max(len(form) for form in forms))


@hsettings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addresses())
@example("a@Example.COM")
@example("a@" + "b" * 63 + "." + "c" * 63 + ".com")
def test_the_domain_verdict_agrees_with_email_validator(address: str) -> None:
    """The audit's per-domain verdict (address_domain) takes the same shortcut."""
    domain = address.rpartition("@")[2]
    assert fields.address_domain(domain) == email_validators_domain(domain)


def test_common_addresses_take_the_shortcut() -> None:
    """The shortcut is taken where it matters, so the agreement above is not vacuous."""
    cases = {
        "bench@example.com": "bench@example.com",
        "Alice.Smith@Example.COM": "Alice.Smith@example.com",
        "POSTMASTER@Mail.Example.org": "postmaster@mail.example.org",
        "first.last+tag@sub-domain.mail.co.uk": "first.last+tag@sub-domain.mail.co.uk",
        "x_y{z}@123.example.net": "x_y{z}@123.example.net",
    }
    for address, normalised in cases.items():
        assert fields._plain_ascii_address(address) == normalised
        assert email_validators_answer(address) == normalised
    for declined in ("jürgen@example.com", "a@corp.local", "a@xn--bcher-kva.example", "a@b"):
        assert fields._plain_ascii_address(declined) is None


def test_the_copied_lists_match_the_installed_email_validator() -> None:
    """The shortcut's two lists are email-validator's; an upgrade that changes them fails here."""
    assert list(fields._SPECIAL_USE_DOMAINS) == email_validator.SPECIAL_USE_DOMAIN_NAMES
    assert set(rfc_constants.CASE_INSENSITIVE_MAILBOX_NAMES) == fields._CASE_INSENSITIVE_MAILBOXES


def test_a_plain_address_loads_no_email_validator() -> None:
    """In a fresh interpreter: settings with plain addresses never import email-validator."""
    script = (
        "import sys\n"
        "from mailkit.settings import OrgSettings, check_address\n"
        "org = OrgSettings(host='mail.example.com', from_address='Alice@Example.com')\n"
        "print(org.from_address, check_address('bob@example.org'))\n"
        "print('email_validator' in sys.modules)\n"
        "check_address('jürgen@example.com')\n"
        "print('email_validator' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Alice@example.com bob@example.org", "False", "True"]
