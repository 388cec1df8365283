"""The host-typo suggestion skips hopeless candidates by a letter-count bound; the answers
are those of comparing every candidate by edit distance, as before the bound."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailkit.providers import (
    _known_hosts,
    _normal,
    damerau_levenshtein,
    provider_for_host,
    suggest_host,
    typo_budget,
)


def every_candidate(host: str) -> str | None:
    """suggest_host without the bound: the edit distance to every known host of a near length."""
    name = _normal(host)
    if not name or provider_for_host(name) is not None:
        return None
    near = [
        (distance, known)
        for known in _known_hosts()
        if abs(len(known) - len(name)) <= typo_budget(known)
        and (distance := damerau_levenshtein(name, known)) <= typo_budget(known)
    ]
    if not near:
        return None
    nearest = min(distance for distance, _ in near)
    hosts = [known for distance, known in near if distance == nearest]
    return hosts[0] if len(hosts) == 1 else None


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A known host with a few random edits: deletions, insertions, swaps, substitutions."""
    name = list(draw(st.sampled_from(_known_hosts())))
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, max(len(name) - 1, 0)))
        edit = draw(st.sampled_from(["delete", "insert", "swap", "substitute"]))
        letter = draw(st.sampled_from("abcdeilmnorstu.-019"))
        if edit == "delete" and name:
            del name[where]
        elif edit == "insert":
            name.insert(where, letter)
        elif edit == "swap" and where + 1 < len(name):
            name[where], name[where + 1] = name[where + 1], name[where]
        elif name:
            name[where] = letter
    return "".join(name)


@hsettings(max_examples=1500, deadline=None)
@given(
    st.one_of(near_misses(), st.from_regex(r"smtp\.[a-z0-9-]{1,16}\.(com|de|net)", fullmatch=True))
)
def test_the_bound_changes_no_suggestion(host: str) -> None:
    assert suggest_host.__wrapped__(host) == every_candidate(host)


def test_typos_are_still_found() -> None:
    assert suggest_host.__wrapped__("smtp.gmial.com") == "smtp.gmail.com"
    assert suggest_host.__wrapped__("smtp.ofice365.com") == "smtp.office365.com"
    assert suggest_host.__wrapped__("smtp.acme-delta1.com") is None
