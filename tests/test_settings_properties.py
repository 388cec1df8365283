"""Property tests: arbitrary text in every string field is accepted safely or refused cleanly.

"Safely" means the stored value is one line (no character that ends a header line or an SMTP
command, no control character but tab) and within the field's length limit; "cleanly" means a
``pydantic.ValidationError`` from the model and a :class:`SettingsError` from ``validate`` —
never a ``TypeError``, ``UnicodeError`` or anything else escaping from a validator.
"""

from __future__ import annotations

import types
import typing
import unicodedata
import warnings
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, assume, event, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.provisional import domains
from pydantic import BaseModel

from mailkit.errors import SettingsError, UnsafeSettingWarning
from mailkit.settings import (
    INTERNAL_SUFFIXES,
    MAX_ADDRESS_LENGTH,
    MAX_HOST_LENGTH,
    MAX_PATH_LENGTH,
    MAX_TEXT_LENGTH,
    FeatureRoute,
    OrgSettings,
    UserSettings,
    address_domain,
    address_valid_in,
    check_address,
    internal_suffix,
    is_plain_local_part,
    validate,
)

MODELS: tuple[type[BaseModel], ...] = (OrgSettings, UserSettings, FeatureRoute)

#: Characters that end a line for some header, SMTP or text parser.
LINE_BREAKERS = frozenset("\r\n\x00\x0b\x0c\x85\u2028\u2029")

#: The longest value each string field may hold once accepted. A new string field fails
#: ``test_every_string_field_has_a_limit`` until its limit is written down here.
LIMITS: dict[tuple[type[BaseModel], str], int] = {
    (OrgSettings, "name"): MAX_TEXT_LENGTH,
    (OrgSettings, "host"): MAX_HOST_LENGTH,
    (OrgSettings, "username"): MAX_TEXT_LENGTH,
    (OrgSettings, "from_address"): MAX_ADDRESS_LENGTH,
    (OrgSettings, "from_name"): MAX_TEXT_LENGTH,
    (OrgSettings, "ca_file"): MAX_PATH_LENGTH,
    (OrgSettings, "tls_pin_sha256"): 64,
    (OrgSettings, "ews_url"): 2048,
    (OrgSettings, "ews_autodiscover_url"): 2048,
    (OrgSettings, "eml_folder"): MAX_PATH_LENGTH,
    (OrgSettings, "api_url"): 2048,
    (OrgSettings, "oauth_client_id"): MAX_TEXT_LENGTH,
    (OrgSettings, "oauth_tenant"): MAX_TEXT_LENGTH,
    (UserSettings, "user_code"): MAX_ADDRESS_LENGTH,
    (UserSettings, "display_name"): MAX_TEXT_LENGTH,
    (UserSettings, "email"): MAX_ADDRESS_LENGTH,
    (UserSettings, "username"): MAX_TEXT_LENGTH,
    (UserSettings, "from_address"): MAX_ADDRESS_LENGTH,
    (UserSettings, "host"): MAX_HOST_LENGTH,
    (FeatureRoute, "sender"): MAX_ADDRESS_LENGTH,
    (FeatureRoute, "recipients"): MAX_ADDRESS_LENGTH,
    (FeatureRoute, "subject_template"): 998,
}


def _is_str(annotation: Any) -> bool:
    """``str``, ``str | None``, ``Annotated[str, ...]`` or ``list[...]`` of those."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if isinstance(annotation, types.UnionType) or origin is typing.Union or origin is list:
        return any(_is_str(arg) for arg in typing.get_args(annotation))
    return False


def string_fields() -> list[tuple[type[BaseModel], str]]:
    """Every text field of every settings model, read from ``model_fields``."""
    return [
        (model, name)
        for model in MODELS
        for name, info in model.model_fields.items()
        if _is_str(info.annotation)
    ]


STRING_FIELDS = string_fields()
FIELD_IDS = [f"{model.__name__}.{name}" for model, name in STRING_FIELDS]


def test_string_fields_are_found() -> None:
    found = {(model.__name__, name) for model, name in STRING_FIELDS}
    assert {
        ("OrgSettings", "name"),
        ("OrgSettings", "host"),
        ("OrgSettings", "from_address"),
        ("OrgSettings", "ews_url"),
        ("UserSettings", "user_code"),
        ("UserSettings", "host"),
        ("FeatureRoute", "recipients"),
        ("FeatureRoute", "subject_template"),
    } <= found
    assert ("OrgSettings", "port") not in found
    assert ("OrgSettings", "mode") not in found


def test_every_string_field_has_a_limit() -> None:
    assert set(STRING_FIELDS) == set(LIMITS)


def _data(model: type[BaseModel], field: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {field: [value] if field == "recipients" else value}
    if model is UserSettings and field != "user_code":
        data["user_code"] = "alice"
    return data


def _stored(instance: BaseModel, field: str) -> str | None:
    value = getattr(instance, field)
    if isinstance(value, list):
        assert len(value) == 1
        value = value[0]
    assert value is None or isinstance(value, str)
    return value


def _assert_safe(value: str, limit: int) -> None:
    assert not LINE_BREAKERS & set(value), ascii(value)
    assert all(unicodedata.category(ch) != "Cc" or ch == "\t" for ch in value), ascii(value)
    assert len(value) <= limit, len(value)


#: Every control character, the Unicode line and paragraph separators, and look-alikes of the
#: characters that structure an address, a host or a URL.
ODD_CHARACTERS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]] + list(
    "\u2028\u2029\u00a0\u200b\u200d\u202e\u2066\ufeff\u00ad\u0301\u3002\uff0e\uff20\uff1a"
    " @<>()[],;:\"'\\/{}%.-_éßİı"
)
#: Drawn half the time, so that each is tried alone in every field.
ODD_CHARACTER = st.one_of(st.sampled_from(sorted(LINE_BREAKERS)), st.sampled_from(ODD_CHARACTERS))
#: Values that are valid for one field or another.
VALID_BASES = [
    "alice@example.org",
    "用户@例子.广告",
    "smtp.example.com",
    "bücher.example",
    "192.0.2.1",
    "https://mail.example.com/EWS/Exchange.asmx",
    "ab" * 32,
    "Request {number}: {title}",
    "Acme Mail",
    "/etc/ssl/ca.pem",
]


@st.composite
def spliced(draw: st.DrawFn, most: int = 1) -> str:
    """A valid value with odd characters put anywhere in it."""
    text = draw(st.sampled_from(VALID_BASES))
    for _ in range(draw(st.integers(1, most))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(ODD_CHARACTER) + text[at:]
    return text


TEXT = st.one_of(
    st.text(min_size=0, max_size=600),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300),
    st.text(alphabet=st.sampled_from(ODD_CHARACTERS + list("aZ09")), max_size=80),
    spliced(),
    spliced(),
    spliced(most=3),
    # overlong: a short pattern repeated past every limit (the longest is 4096)
    st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(40, 2100)),
    # values that are often valid for the stricter fields
    st.sampled_from(VALID_BASES),
    st.emails(),
    domains(),
    st.builds(lambda d, path: f"https://{d}/{path}", domains(), st.text(max_size=40)),
    st.binary(min_size=32, max_size=32).map(lambda b: ":".join(f"{x:02X}" for x in b)),
)

PROPERTY_SETTINGS = hsettings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize(("model", "field"), STRING_FIELDS, ids=FIELD_IDS)
@PROPERTY_SETTINGS
@given(text=TEXT)
def test_any_text_is_accepted_safely_or_refused(
    model: type[BaseModel], field: str, text: str
) -> None:
    data = _data(model, field, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)  # IP-literal hosts
        try:
            instance = model.model_validate(data)
        except pydantic.ValidationError:
            instance = None
        refused: SettingsError | None = None
        try:
            checked = validate(model, data)
        except SettingsError as exc:
            refused = exc
    if refused is not None:
        event("refused")
        assert instance is None, "validate refused what the model accepted"
        assert refused.problems
        assert all(p.field.startswith(field) and p.message for p in refused.problems)
        return
    event("accepted")
    assert instance is not None, "validate accepted what the model refused"
    assert checked == instance
    value = _stored(instance, field)
    if value is not None:
        _assert_safe(value, LIMITS[(model, field)])


@pytest.mark.parametrize(
    ("model", "field"),
    [(m, f) for m, f in STRING_FIELDS if m is not FeatureRoute],
    ids=[i for i in FIELD_IDS if not i.startswith("FeatureRoute")],
)
@hsettings(max_examples=50, deadline=None)
@given(text=TEXT)
def test_assignment_is_as_safe_as_construction(
    model: type[BaseModel], field: str, text: str
) -> None:
    instance = model.model_validate({"user_code": "a"} if model is UserSettings else {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        try:
            setattr(instance, field, text)
        except pydantic.ValidationError:
            return
    value = _stored(instance, field)
    if value is not None:
        _assert_safe(value, LIMITS[(model, field)])


# --------------------------------------------------------------------------- round trips

ADDRESSES = st.one_of(
    st.emails(),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.text(
            alphabet=st.characters(
                exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"],
                exclude_characters='<>()[],;"@\\',
            ),
            min_size=1,
            max_size=70,
        ),
        st.one_of(domains(), st.sampled_from(["例子.广告", "BÜCHER.example", "xn--bcher-kva.de"])),
    ),
    st.text(max_size=80),
)


@hsettings(max_examples=300, deadline=None)
@given(text=ADDRESSES)
def test_accepted_address_round_trips(text: str) -> None:
    """The normalised address is itself valid and normalises to itself."""
    try:
        first = FeatureRoute(recipients=[text]).recipients[0]
    except pydantic.ValidationError:
        event("refused")
        return
    event("accepted")
    _assert_safe(first, MAX_ADDRESS_LENGTH)
    assert FeatureRoute(recipients=[first]).recipients == [first]
    assert OrgSettings(from_address=first).from_address == first
    assert UserSettings(user_code="a", email=first).email == first


HOSTS = st.one_of(
    domains(),
    domains().map(str.upper),
    domains().map(lambda d: d + "."),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from("aZ09-._ü例.:[]%"), max_size=40),
)


@hsettings(max_examples=300, deadline=None)
@given(text=HOSTS)
def test_accepted_host_round_trips(text: str) -> None:
    """The stored host is itself valid and stored unchanged when entered again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        try:
            first = OrgSettings(host=text).host
        except pydantic.ValidationError:
            event("refused")
            return
        event("accepted")
        if first is None:
            assert not text.strip()
            return
        _assert_safe(first, MAX_HOST_LENGTH)
        assert OrgSettings(host=first).host == first
        assert UserSettings(user_code="a", host=first).host == first


# --------------------------------------------------------------------------- internal domains

#: Each internal suffix beside a public top-level name of the same length: email-validator
#: has no opinion on the public one, so any verdict difference would be ours.
PUBLIC_TWINS: dict[str, str] = {
    "local": "email",
    "test": "info",
    "home.arpa": "home.info",
    "internal": "business",
    "lan": "org",
    "corp": "club",
    "localdomain": "photography",
}

LABEL_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="@"), max_size=70
)
DOMAIN_PREFIXES = st.one_of(
    domains().map(lambda d: d.rsplit(".", 1)[0]),
    st.text(alphabet=st.sampled_from("aZ09-_.ü例"), min_size=1, max_size=30),
    LABEL_TEXT,
)


_IDNA_DOTS = frozenset(".\u3002\uff0e\uff61")


def _verdict(address: str) -> str | None:
    try:
        return check_address(address)
    except ValueError:
        return None


@hsettings(max_examples=300, deadline=None)
@given(
    local=st.one_of(st.emails().map(lambda e: e.rsplit("@", 1)[0]), LABEL_TEXT),
    prefix=DOMAIN_PREFIXES,
    suffix=st.sampled_from(sorted(PUBLIC_TWINS)),
    upper=st.booleans(),
    # The dots IDNA reads as dots, a character that only maps to one ("⒈"), and none.
    dot=st.sampled_from([".", ".", "\u3002", "\uff0e", "\uff61", "\u2488", ""]),
)
def test_internal_domains_judged_like_public_ones(
    local: str, prefix: str, suffix: str, upper: bool, dot: str
) -> None:
    """An address under an internal suffix is valid exactly when its public twin is.

    So every syntax error, length limit and injection form stays refused inside ``.local``
    and ``.home.arpa`` as anywhere else; only the name being special-use changes nothing.
    """
    # Glued to the text before it, "home.arpa" is a different name (x-home.arpa) from its twin.
    assume(dot in _IDNA_DOTS or "." not in suffix)
    written = suffix.upper() if upper else suffix
    internal = _verdict(f"{local}@{prefix}{dot}{written}")
    public = _verdict(f"{local}@{prefix}{dot}{PUBLIC_TWINS[suffix]}")
    event("accepted" if public is not None else "refused")
    if public is None:
        assert internal is None
        return
    assert internal is not None
    assert internal.removesuffix(suffix) == public.removesuffix(PUBLIC_TWINS[suffix])
    if internal.endswith("." + suffix):  # without a dot before it, the suffix is just text
        assert internal_suffix(internal.rsplit("@", 1)[1]) == suffix
    assert _verdict(internal) == internal  # normalised once, stable after


@hsettings(max_examples=200, deadline=None)
@given(
    first=st.emails(),
    second=st.emails(),
    suffix=st.sampled_from(INTERNAL_SUFFIXES),
    shape=st.sampled_from(["{a}){b}", "{a}<{b}>", "{a}, {b}", "{a};{b}", '"{a}"@{b}', "{a} {b}"]),
)
def test_internal_domains_never_let_two_addresses_through(
    first: str, second: str, suffix: str, shape: str
) -> None:
    """The CVE-2023-27043 class: text naming two mailboxes is refused, internal or not."""
    a = first.rsplit("@", 1)[0] + "@corp." + suffix
    b = second.rsplit("@", 1)[0] + "@plant." + suffix
    assert _verdict(shape.format(a=a, b=b)) is None


@hsettings(max_examples=200, deadline=None)
@given(name=domains(), suffix=st.sampled_from(INTERNAL_SUFFIXES), upper=st.booleans())
def test_internal_suffix_is_found_under_any_name(name: str, suffix: str, upper: bool) -> None:
    """Any name below an internal suffix is internal, in any case, as a host or a domain."""
    host = f"{name}.{suffix}"
    host = host.upper() if upper else host
    assert internal_suffix(host) == suffix
    assert internal_suffix(host + ".") == suffix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsafeSettingWarning)
        assert internal_suffix(OrgSettings(host=host).host or "") == suffix


@hsettings(max_examples=200, deadline=None)
@given(name=domains())
def test_public_names_are_not_internal(name: str) -> None:
    """hypothesis' domains end in real top-level domains: none of them is internal."""
    suffix = internal_suffix(name)
    assert suffix is None or name.lower().endswith(tuple(INTERNAL_SUFFIXES)), name


# ------------------------------------------------------------ one domain, many addresses

_LOCAL_PARTS = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=70),
    st.text("aé李.ü-_+x\u0301\u00b2'!#", min_size=1, max_size=70),
    st.sampled_from(["jürgen", "josé", "李娜", "anna.smith", "a" * 64, "b" * 65, "Å", "Å"]),
)
_MAIL_DOMAINS = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "EXAMPLE.COM",
            "bücher.example",
            "xn--bcher-kva.example",
            "corp.local",
            "x.home.arpa",
            "mailhost",
            "a..b.com",
            "李.中国",
            "[192.0.2.1]",
            "corp.local".translate({c: c + 0xFEE0 for c in range(0x61, 0x7B)}),
            ".".join(["d" * 60] * 3) + ".com",
            ".".join(["ü" * 20] * 6) + ".de",
        ]
    ),
    domains(),
)


@given(_LOCAL_PARTS, _MAIL_DOMAINS)
@hsettings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_a_domains_verdict_gives_check_addresss_verdict(local: str, domain: str) -> None:
    """The audit's shortcut (issue 12): the domain judged once, the local part by its shape,
    the length by a sum — exactly check_address's verdict whenever it answers at all."""
    fast = address_valid_in(local, address_domain(domain))
    try:
        check_address(f"{local}@{domain}")
    except ValueError:
        expected = False
    else:
        expected = True
    event("shortcut" if fast is not None else "strict check")
    if fast is not None:
        assert fast is expected


@pytest.mark.parametrize("local", ["jürgen", "josé", "李娜", "søren", "anna.smith", "o'brien"])
def test_names_people_have_are_plain_local_parts(local: str) -> None:
    """The shortcut covers the non-ASCII names an export is full of, not only ASCII ones."""
    assert is_plain_local_part(local)
    assert address_valid_in(local, address_domain("example.com")) is True


@pytest.mark.parametrize("local", ["e\u0301", ".a", "a..b", "a b", "a" * 65, "\u200bx"])
def test_unusual_local_parts_go_to_the_strict_check(local: str) -> None:
    assert address_valid_in(local, address_domain("example.com")) is None
