"""Properties of the one scrubber: whatever a server says, wherever the secret sits in it, in
whichever encoding, cut wherever, no output of a send holds the secret.

* the scrubber alone, on generated text with the secret embedded at random places;
* the recorder, fed the same bytes in random chunks;
* real sends against a scripted server whose reply at a random step embeds the secret;
* a meta-test: a :class:`TestResult` with the secret in every string field, nested ones
  included, holds it nowhere — so an output path added later cannot skip the scrubber.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from datetime import UTC, datetime
from enum import Enum
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smtpd_servers import HOSTILE_VERBS, ServerLoop, TLSMaterial, start_scenario, stop_scenario

from mailkit.outcome import Diagnosis, Failure, Phase
from mailkit.result import TestResult
from mailkit.runner import run_sync
from mailkit.secret import Secret
from mailkit.senders.smtp.plan import SmtpPlan
from mailkit.senders.smtp.sender import send_plan_async
from mailkit.settings import AuthType, Security
from mailkit.transcript import HIDDEN, Recorder, SecretScrubber

pytestmark = pytest.mark.timeout(300)

USER = "alice@example.test"
SECRET = "canary-Pw-5x!Q"

# Encoders of a secret as a peer could echo it (the user name varies: none, the real one, an
# authzid in front, XOAUTH2's wrapping).
ENCODERS: dict[str, typing.Callable[[bytes], str]] = {
    "clear": lambda raw: raw.decode(),
    "login": lambda raw: base64.b64encode(raw).decode(),
    "plain": lambda raw: base64.b64encode(b"\0" + USER.encode() + b"\0" + raw).decode(),
    "plain no user": lambda raw: base64.b64encode(b"\0\0" + raw).decode(),
    "plain authzid": lambda raw: base64.b64encode(b"boss\0" + USER.encode() + b"\0" + raw).decode(),
    "xoauth2": lambda raw: base64.b64encode(
        b"user=" + USER.encode() + b"\x01auth=Bearer " + raw + b"\x01\x01"
    ).decode(),
    "url-safe": lambda raw: base64.urlsafe_b64encode(b"x" + raw).decode(),
    "unpadded": lambda raw: base64.b64encode(b"xy" + raw).decode().rstrip("="),
    "hex": lambda raw: raw.hex(),
    "HEX": lambda raw: raw.hex().upper(),
    "percent": lambda raw: quote(raw.decode(), safe=""),
    "form": lambda raw: quote_plus(raw.decode()),
    "json": lambda raw: json.dumps(raw.decode())[1:-1],
}


def leak_forms(secret: str) -> list[str]:
    """The secret in clear, as hex either case, percent-encoded, its first part (a cut one),
    and the base64 characters that depend on it alone at each alignment."""
    raw = secret.encode()
    forms = [secret, raw.hex(), raw.hex().upper(), quote(secret, safe=""), secret[:-4]]
    for offset in range(3):
        start, stop = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.append(encode(b"\0" * offset + raw)[start:stop].decode())
    return forms


def leaks(text: str, secret: str = SECRET) -> list[str]:
    return [form for form in leak_forms(secret) if form in text]


#: Printable text around the secret: ASCII letters, digits, punctuation, spaces — the
#: characters that could join a base64 or hex run around the secret.
noise = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=450
)
secrets_st = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    secret=secrets_st,
    encoder=st.sampled_from(sorted(ENCODERS)),
    before=noise,
    after=noise,
)
def test_the_scrubber_hides_every_encoding_anywhere(
    secret: str, encoder: str, before: str, after: str
) -> None:
    scrub = SecretScrubber([Secret(secret)], username=USER)
    text = before + ENCODERS[encoder](secret.encode()) + after
    assert leaks(scrub(text), secret) == [], encoder


@settings(max_examples=200, deadline=None)
@given(
    encoder=st.sampled_from(sorted(ENCODERS)),
    before=noise,
    after=noise,
    code=st.sampled_from(["220", "250", "334", "421", "535", "554", ""]),
    multiline=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=900), max_size=6),
)
def test_the_recorder_hides_it_however_the_bytes_arrive(
    encoder: str, before: str, after: str, code: str, multiline: bool, cuts: list[int]
) -> None:
    rec = Recorder(username=None, secrets=[Secret(SECRET)])
    rec.connected()
    line = f"{before}{ENCODERS[encoder](SECRET.encode())}{after}"
    data = f"{code}-{line}\r\n{code} ok\r\n" if multiline and code else f"{code} {line}\r\n"
    raw = data.encode()
    start = 0
    for cut in sorted(cuts):
        rec.received(raw[start:cut])
        start = max(start, cut)
    rec.received(raw[start:])
    rec.closed()
    shown = "\n".join(row.text for row in rec.rows)
    assert leaks(shown) == []


def test_an_overlong_line_is_scrubbed_whole_and_its_rest_dropped() -> None:
    """A secret astride the 64 KiB pending limit: scrubbed before the cut, rest never shown."""
    rec = Recorder(secrets=[Secret(SECRET)])
    rec.connected()
    rec.received(b"x" * (64 * 1024 - 5) + SECRET.encode())
    rec.received(b" more text\r\n250 next\r\n")
    shown = "\n".join(row.text for row in rec.rows)
    assert leaks(shown) == []
    assert SECRET[5:] not in shown
    assert rec.rows[-1].text == "250 next"


# --------------------------------------------------------------------------- real sends


phases = st.sampled_from(HOSTILE_VERBS)
modes = st.sampled_from(["prefix", "final", "malformed"])


@pytest.fixture(scope="module")
def loop_and_tls(server_loop: ServerLoop, tls_material: TLSMaterial) -> tuple[Any, Any]:
    return server_loop, tls_material


_GOOD = {"GREETING": 220, "EHLO": 250, "STARTTLS": 220, "AUTH_RESULT": 235, "MAIL": 250}
_GOOD |= {"RCPT": 250, "DATA": 354, "END_OF_DATA": 250, "QUIT": 221}
_BAD = {"GREETING": 554, "EHLO": 550, "STARTTLS": 454, "AUTH_RESULT": 535, "MAIL": 421}
_BAD |= {"RCPT": 550, "DATA": 554, "END_OF_DATA": 554, "QUIT": 221}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    verb=phases,
    mode=modes,
    encoders=st.lists(st.sampled_from(sorted(ENCODERS)), min_size=1, max_size=4),
    before=st.lists(noise, min_size=1, max_size=4),
    lines=st.integers(min_value=1, max_value=4),
)
def test_no_output_holds_a_secret_echoed_at_any_step(
    loop_and_tls: tuple[ServerLoop, TLSMaterial],
    verb: str,
    mode: str,
    encoders: list[str],
    before: list[str],
    lines: int,
) -> None:
    server_loop, tls = loop_and_tls
    texts = [
        f"{before[i % len(before)]}{ENCODERS[encoders[i % len(encoders)]](SECRET.encode())}"
        for i in range(lines)
    ]
    if mode == "malformed":
        data = "".join(f"{t}\r\n" for t in texts)
    elif mode == "prefix":
        data = "".join(f"{_GOOD[verb]}-{t}\r\n" for t in texts)
    else:
        code = _BAD[verb]
        data = "".join(f"{code}-{t}\r\n" for t in texts[:-1]) + f"{code} {texts[-1]}\r\n"
    server = start_scenario(server_loop, tls, "hostile_reply", verb=verb, data=data.encode())
    try:
        plan = SmtpPlan(
            host=server.host,
            port=server.port,
            security=Security.STARTTLS,
            auth=AuthType.AUTO,
            username=USER,
            from_address="alice@example.com",
            ca_file=str(server.ca_file),
            command_timeout=3.0,
        )
        rows: list[Any] = []
        result = run_sync(
            send_plan_async(
                plan, to=["bob@example.org"], password=Secret(SECRET), on_row=rows.append
            )
        )
    finally:
        stop_scenario(server_loop, server)
    shown = "\n".join(
        [
            result.transcript.to_text(),
            json.dumps(result.as_dict(), default=str),
            repr(result),
            result._repr_html_(),
            repr(rows),
            result.diagnosis.to_text() if result.diagnosis else "",
        ]
    )
    assert leaks(shown) == [], (verb, mode, encoders)


# --------------------------------------------------------------------------- the meta-test


def _canary_text() -> str:
    """The secret in several encodings, long enough to be cut by any output."""
    forms = [encode(SECRET.encode()) for encode in ENCODERS.values()]
    return " | ".join(["x" * 395 + SECRET, *forms])


def _hints(kind: Any) -> dict[str, Any]:
    """A dataclass's field types; names its module imports for type checkers only resolve too."""
    from mailkit.delivery import DeliveryReport  # TestResult.delivery, loaded lazily by mailkit

    return get_type_hints(kind, localns={"DeliveryReport": DeliveryReport})


def _fill(kind: Any, seen: set[str]) -> Any:
    """A value of type ``kind`` with the canary in every string it can hold."""
    origin = get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        return _fill(options[0], seen)
    if kind is str:
        seen.add("str")
        return _canary_text()
    if kind is bool:
        return False
    if kind is int:
        return 421
    if kind is float:
        return 1.5
    if kind is datetime:
        return datetime.now(UTC)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return next(iter(kind))
    if origin in (tuple, list, frozenset, set):
        args = [a for a in get_args(kind) if a is not Ellipsis]
        item = _fill(args[0], seen)
        return origin([item])
    if origin is dict:
        key, value = get_args(kind)
        return {_fill(key, seen): _fill(value, seen)}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        values = {
            f.name: _fill(hints[f.name], seen)
            for f in dataclasses.fields(kind)
            if f.init and f.name != "scrub"
        }
        seen.add(kind.__name__)
        if kind is TestResult:
            return TestResult(**values, scrub=SecretScrubber([Secret(SECRET)], username=USER))
        return kind(**values)
    raise AssertionError(f"the meta-test cannot fill {kind!r}: teach _fill this type")


def _strings(value: Any, path: str = "result") -> typing.Iterator[tuple[str, str]]:
    if isinstance(value, Enum):
        return
    if isinstance(value, str):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _strings(getattr(value, item.name), f"{path}.{item.name}")
    elif isinstance(value, tuple | list | set | frozenset):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, f"{path}<key>")
            yield from _strings(item, f"{path}[{key!r}]")


def test_every_field_of_a_result_is_scrubbed_at_construction() -> None:
    """Every string field of TestResult, its Diagnosis, SendContext, TlsInfo, Transcript rows,
    filled with the secret, holds none of it once built: a field added later is covered."""
    seen: set[str] = set()
    result = _fill(TestResult, seen)
    assert {"TestResult", "Diagnosis", "SendContext", "TlsInfo", "Transcript", "Row"} <= seen
    strings = list(_strings(result))
    assert len(strings) >= 20, "the walk must reach every nested string"
    for path, text in strings:
        assert leaks(text) == [], path
        assert HIDDEN in text or not text, path
    rendered = repr(result) + json.dumps(result.as_dict(), default=str) + result._repr_html_()
    assert leaks(rendered) == []


def test_a_failure_and_a_diagnosis_are_scrubbed_field_by_field() -> None:
    seen: set[str] = set()
    scrub = SecretScrubber([Secret(SECRET)])
    for kind in (Failure, Diagnosis):
        value = _fill(kind, seen)
        assert any(leaks(text) for _, text in _strings(value)), "the filler must plant it"
        clean = scrub.scrub_value(value)
        assert type(clean) is kind
        for path, text in _strings(clean, kind.__name__):
            assert leaks(text) == [], path


def test_a_result_cannot_be_built_without_a_scrubber() -> None:
    seen: set[str] = set()
    values = {
        f.name: _fill(_hints(TestResult)[f.name], seen) for f in dataclasses.fields(TestResult)
    }
    with pytest.raises(TypeError):
        TestResult(**values)
    with pytest.raises(TypeError):
        TestResult(**values, scrub=lambda text: text)  # type: ignore[arg-type]


def test_the_meta_test_would_see_an_unscrubbed_field() -> None:
    """Guard: a field that kept the secret is found by the walk and the leak search."""
    seen: set[str] = set()
    result = _fill(TestResult, seen)
    object.__setattr__(result, "server_reply", "250 queued " + SECRET)
    assert any(leaks(text) for _, text in _strings(result))
    assert Phase.AUTH.value == "auth"  # enums are left as they are by the walk


def test_a_field_left_out_of_equality_is_scrubbed_too() -> None:
    """Diagnosis.marked takes no part in ``==``: scrubbing must not decide by equality."""

    @dataclasses.dataclass(frozen=True)
    class Holder:
        diagnosis: Diagnosis
        more: tuple[Diagnosis, ...]

    seen: set[str] = set()
    diagnosis = dataclasses.replace(
        _fill(Diagnosis, seen), title="t", explanation="e", marked=("t", "e " + SECRET)
    )
    clean = SecretScrubber([Secret(SECRET)]).scrub_value(Holder(diagnosis, (diagnosis,)))
    for path, text in _strings(clean):
        assert leaks(text) == [], path
