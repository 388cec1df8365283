"""Built-in provider knowledge: detection by SMTP host, address domain and MX, and the facts."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkit.providers import (
    PROVIDERS,
    Endpoint,
    Provider,
    damerau_levenshtein,
    provider_by_id,
    provider_for_domain,
    provider_for_host,
    provider_for_mx,
    provider_mismatch,
    suggest_host,
    typo_budget,
)
from mailkit.settings import AuthType, Security, port_security_conflict


def ids(provider: Provider | None) -> str | None:
    return provider.id if provider else None


# ------------------------------------------------------------------ by SMTP host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("smtp.gmail.com", "gmail"),
        ("SMTP.Gmail.COM.", "gmail"),
        ("  smtp.gmail.com  ", "gmail"),
        ("smtp-relay.gmail.com", "google_workspace"),
        ("smtp.office365.com", "microsoft365"),
        ("smtp-legacy.office365.com", "microsoft365"),
        ("contoso-com.mail.protection.outlook.com", "microsoft365"),
        ("smtp-mail.outlook.com", "outlook_com"),
        ("smtp.mail.yahoo.com", "yahoo"),
        ("smtp.aol.com", "aol"),
        ("smtp.mail.me.com", "icloud"),
        ("smtp.zoho.eu", "zoho"),
        ("smtppro.zoho.com", "zoho"),
        ("smtp.fastmail.com", "fastmail"),
        ("mail.gmx.net", "gmx"),
        ("mail.gmx.com", "gmx_com"),
        ("smtp.web.de", "web_de"),
        ("smtp.mail.com", "mail_com"),
        ("smtp.yandex.com", "yandex"),
        # not theirs: a look-alike, a suffix trick, the bare wildcard base, nothing
        ("evilsmtp.gmail.com", None),
        ("smtp.gmail.com.attacker.example", None),
        ("mail.protection.outlook.com", None),
        ("smtp.example.com", None),
        ("", None),
        (".", None),
    ],
)
def test_provider_for_host(host: str, expected: str | None) -> None:
    assert ids(provider_for_host(host)) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (None, "gmail"),
        ("ann@gmail.com", "gmail"),
        ("ann@googlemail.com", "gmail"),
        ("ann@corp.example", "google_workspace"),
        ("corp.example", "google_workspace"),
        ("ANN@GMAIL.COM.", "gmail"),
    ],
)
def test_smtp_gmail_com_is_gmail_or_workspace_by_address(
    address: str | None, expected: str
) -> None:
    assert ids(provider_for_host("smtp.gmail.com", address)) == expected


def test_address_does_not_override_an_unshared_host() -> None:
    assert ids(provider_for_host("smtp.office365.com", "ann@gmail.com")) == "microsoft365"


# ------------------------------------------------------------------ by address domain


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("gmail.com", "gmail"),
        ("GoogleMail.com.", "gmail"),
        ("ann@Hotmail.com", "outlook_com"),
        ("outlook.com", "outlook_com"),
        ("live.com", "outlook_com"),
        ("msn.com", "outlook_com"),
        ("yahoo.com", "yahoo"),
        ("icloud.com", "icloud"),
        ("me.com", "icloud"),
        ("fastmail.com", "fastmail"),
        ("gmx.de", "gmx"),
        ("gmx.com", "gmx_com"),
        ("aol.com", "aol"),
        ("corp.example", None),
        ("office365.com", None),
        ("", None),
    ],
)
def test_provider_for_domain(domain: str, expected: str | None) -> None:
    assert ids(provider_for_domain(domain)) == expected


# ------------------------------------------------------------------ by MX


@pytest.mark.parametrize(
    ("mx", "expected"),
    [
        (["gmail-smtp-in.l.google.com.", "alt1.gmail-smtp-in.l.google.com."], "gmail"),
        (["aspmx.l.google.com", "alt1.aspmx.l.google.com"], "google_workspace"),
        (["smtp.google.com"], "google_workspace"),
        (["aspmx2.googlemail.com"], "google_workspace"),
        (["contoso-com.mail.protection.outlook.com"], "microsoft365"),
        (["contoso-com.o-v1.mx.microsoft"], "microsoft365"),
        (["hotmail-com.olc.protection.outlook.com"], "outlook_com"),
        (["mta5.am0.yahoodns.net"], "yahoo"),
        (["mx-aol.mail.gm0.yahoodns.net"], "aol"),
        (["mx01.mail.icloud.com"], "icloud"),
        (["in1-smtp.messagingengine.com"], "fastmail"),
        (["mx.zoho.eu", "mx2.zoho.eu"], "zoho"),
        (["mx00.gmx.net"], "gmx"),
        (["MX.YANDEX.NET."], "yandex"),
        # the first MX a provider recognises decides; unknown ones are skipped
        (["mx.corp.example", "", "aspmx.l.google.com"], "google_workspace"),
        (["mx.corp.example"], None),
        ([], None),
    ],
)
def test_provider_for_mx(mx: list[str], expected: str | None) -> None:
    assert ids(provider_for_mx(mx)) == expected
    assert ids(provider_for_mx(iter(mx))) == expected  # any iterable, read once


# ------------------------------------------------------------------ the facts themselves


def test_ids_are_unique_and_found() -> None:
    assert len({p.id for p in PROVIDERS}) == len(PROVIDERS)
    for provider in PROVIDERS:
        assert provider_by_id(provider.id) is provider


def test_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="gmail"):
        provider_by_id("hotmale")


def test_providers_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROVIDERS[0].smtp_port = 25  # type: ignore[misc]


def test_consumer_domains_belong_to_one_provider() -> None:
    seen: dict[str, str] = {}
    for provider in PROVIDERS:
        for domain in provider.domains:
            assert domain not in seen, (domain, seen.get(domain), provider.id)
            seen[domain] = provider.id
            assert provider_for_domain(domain) is provider


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.id)
def test_provider_is_consistent(provider: Provider) -> None:
    names = (provider.smtp_host, *provider.smtp_hosts, *provider.mx_suffixes, *provider.domains)
    for name in names:
        assert name == name.strip().lower().rstrip("."), name
    # its own server is recognised as its own (the address picks between shared hosts)
    address = f"someone@{provider.domains[0]}" if provider.domains else "someone@corp.example"
    assert provider_for_host(provider.smtp_host, address) is provider
    # ports and security agree (465 implicit TLS, 587 STARTTLS), as settings validation demands
    assert provider.endpoints[0] == Endpoint(provider.smtp_port, provider.security)
    for endpoint in provider.endpoints:
        assert port_security_conflict(endpoint.port, endpoint.security) is None
    assert len({e.port for e in provider.endpoints}) == len(provider.endpoints)
    # sign-in facts hang together
    if provider.oauth_scope is not None:
        assert provider.oauth_scope.startswith("https://")
        assert provider.auth_hint is AuthType.XOAUTH2
    if provider.app_passwords_need_2fa:
        assert provider.app_passwords
    assert provider.app_passwords == (provider.app_passwords_menu is not None)
    for ref in provider.references:
        assert ref.startswith("https://")


def test_required_facts() -> None:
    gmail = provider_by_id("gmail")
    assert (gmail.smtp_host, gmail.smtp_port, gmail.security) == (
        "smtp.gmail.com",
        587,
        Security.STARTTLS,
    )
    assert Endpoint(465, Security.IMPLICIT_TLS) in gmail.endpoints
    assert gmail.oauth_scope == "https://mail.google.com/"
    assert gmail.app_passwords_need_2fa
    assert set(gmail.domains) == {"gmail.com", "googlemail.com"}

    m365 = provider_by_id("microsoft365")
    assert (m365.smtp_host, m365.smtp_port, m365.security) == (
        "smtp.office365.com",
        587,
        Security.STARTTLS,
    )
    assert m365.oauth_scope == "https://outlook.office.com/SMTP.Send"
    assert "mail.protection.outlook.com" in m365.mx_suffixes
    assert m365.domains == ()

    outlook = provider_by_id("outlook_com")
    assert (outlook.smtp_host, outlook.smtp_port) == ("smtp-mail.outlook.com", 587)
    assert {"outlook.com", "hotmail.com", "live.com", "msn.com"} <= set(outlook.domains)

    assert {e.port for e in provider_by_id("yahoo").endpoints} == {465, 587}
    assert provider_by_id("icloud").smtp_host == "smtp.mail.me.com"
    assert provider_by_id("icloud").smtp_port == 587
    assert {"smtp.zoho.com", "smtp.zoho.eu"} <= set(provider_by_id("zoho").smtp_hosts)
    assert {e.port for e in provider_by_id("zoho").endpoints} == {465, 587}
    assert provider_by_id("fastmail").smtp_port == 465
    assert provider_by_id("fastmail").app_passwords
    assert (provider_by_id("gmx").smtp_host, provider_by_id("gmx").smtp_port) == (
        "mail.gmx.net",
        587,
    )


# ------------------------------------------------------------------ properties

EXACT_HOSTS = [(h, p) for p in PROVIDERS for h in p.smtp_hosts if not h.startswith("*.")]


@given(
    pair=st.sampled_from(EXACT_HOSTS),
    upper=st.booleans(),
    dot=st.booleans(),
)
def test_host_detection_ignores_case_and_root_dot(
    pair: tuple[str, Provider], upper: bool, dot: bool
) -> None:
    host, _ = pair
    spelled = (host.upper() if upper else host) + ("." if dot else "")
    assert provider_for_host(spelled) == provider_for_host(host)
    assert provider_for_host(spelled) is not None


@given(host=st.text(max_size=80), address=st.none() | st.text(max_size=80))
def test_lookups_never_raise(host: str, address: str | None) -> None:
    provider_for_host(host, address)
    provider_for_domain(host)
    provider_for_mx([host, address or ""])


# ------------------------------------------------------------------ typos of provider hosts

KNOWN_HOSTS = sorted(
    {h for p in PROVIDERS for h in (p.smtp_host, *p.smtp_hosts) if not h.startswith("*.")}
)
HOST_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.-"


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("smtp.offic365.com", "smtp.office365.com"),  # a letter left out
        ("smtp.office356.com", "smtp.office365.com"),  # two neighbours swapped
        ("smtp.gmial.com", "smtp.gmail.com"),
        ("smtp.gmai.com", "smtp.gmail.com"),
        ("smtp.gmail.co", "smtp.gmail.com"),
        ("smtp.gamil.con", "smtp.gmail.com"),  # two slips in a long name
        ("smtp-mail.outlok.com", "smtp-mail.outlook.com"),
        ("SMTP.Offic365.COM.", "smtp.office365.com"),  # case and the root dot do not matter
        ("smtp.mail.yahooo.com", "smtp.mail.yahoo.com"),
    ],
)
def test_a_host_a_typo_away_gets_the_providers_host(typo: str, meant: str) -> None:
    assert suggest_host(typo) == meant


@pytest.mark.parametrize(
    "host",
    [
        *KNOWN_HOSTS,
        "SMTP.GMAIL.COM.",
        "contoso-com.mail.protection.outlook.com",  # under a known pattern
        "mail.example.com",
        "smtp.corp.local",
        "smtp.outlook.com",  # five edits from smtp-mail.outlook.com: not a typo
        "smtp.yahoo.com",
        "",
    ],
)
def test_no_suggestion_for_a_known_or_unrelated_host(host: str) -> None:
    assert suggest_host(host) is None


@st.composite
def one_slip(draw: st.DrawFn) -> tuple[str, str]:
    """A known host with one typing slip: a letter dropped, doubled, changed, or two swapped."""
    host = draw(st.sampled_from(KNOWN_HOSTS))
    i = draw(st.integers(0, len(host) - 1))
    kind = draw(st.sampled_from(["drop", "insert", "change", "swap"]))
    char = draw(st.sampled_from(HOST_CHARS))
    if kind == "drop":
        typo = host[:i] + host[i + 1 :]
    elif kind == "insert":
        typo = host[:i] + char + host[i:]
    elif kind == "change":
        typo = host[:i] + char + host[i + 1 :]
    else:
        j = min(i + 1, len(host) - 1)
        typo = host[:i] + host[j] + host[i] + host[j + 1 :] if j > i else host
    return host, typo


@given(one_slip())
def test_one_slip_suggests_the_host_or_an_equally_near_one(pair: tuple[str, str]) -> None:
    host, typo = pair
    suggestion = suggest_host(typo)
    if typo in KNOWN_HOSTS or provider_for_host(typo) is not None:
        assert suggestion is None  # never for a real host, even one a slip from another
        return
    assert damerau_levenshtein(typo, host) <= 1
    if suggestion is None:
        # only when another known host is just as near: no guess beats a wrong one
        rivals = [k for k in KNOWN_HOSTS if k != host and damerau_levenshtein(typo, k) <= 1]
        assert rivals, typo
    else:
        assert damerau_levenshtein(typo, suggestion) <= damerau_levenshtein(typo, host)


@given(st.text(alphabet=HOST_CHARS, max_size=30))
def test_a_suggestion_is_always_a_known_host_within_the_typo_budget(host: str) -> None:
    suggestion = suggest_host(host)
    if suggestion is not None:
        assert suggestion in KNOWN_HOSTS
        assert suggestion != host.lower().rstrip(".")
        assert (
            0 < damerau_levenshtein(host.lower().rstrip("."), suggestion) <= typo_budget(suggestion)
        )


@given(st.text(alphabet="abcdef.", max_size=12), st.text(alphabet="abcdef.", max_size=12))
def test_the_distance_is_symmetric_and_zero_only_for_equal_names(a: str, b: str) -> None:
    assert damerau_levenshtein(a, b) == damerau_levenshtein(b, a)
    assert (damerau_levenshtein(a, b) == 0) == (a == b)
    assert damerau_levenshtein(a, b) <= max(len(a), len(b))


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("gmail", "gmial", 1), ("office365", "office356", 1), ("ab", "ba", 1), ("abc", "ca", 3)],
)
def test_a_swap_of_neighbours_is_one_edit_both_ways(a: str, b: str, distance: int) -> None:
    assert damerau_levenshtein(a, b) == damerau_levenshtein(b, a) == distance


# ------------------------------------------------------------------ an account at another's host


@pytest.mark.parametrize(
    ("host", "username", "account", "server"),
    [
        ("smtp.gmail.com", "ann@outlook.com", "outlook_com", "google_workspace"),
        ("smtp.gmail.com", "ann@hotmail.com", "outlook_com", "google_workspace"),
        ("smtp.gmail.com", "ann@live.com", "outlook_com", "google_workspace"),
        ("smtp.gmail.com", "ann@contoso.onmicrosoft.com", "microsoft365", "google_workspace"),
        ("smtp.office365.com", "ann@gmail.com", "gmail", "microsoft365"),
        ("smtp-mail.outlook.com", "ann@gmail.com", "gmail", "outlook_com"),
        ("smtp.mail.yahoo.com", "ann@gmail.com", "gmail", "yahoo"),
        ("SMTP.GMAIL.COM.", "Ann@Outlook.COM", "outlook_com", "google_workspace"),
    ],
)
def test_credentials_of_one_provider_at_anothers_host(
    host: str, username: str, account: str, server: str
) -> None:
    mismatch = provider_mismatch(host, username)
    assert mismatch is not None
    assert (mismatch.account.id, mismatch.server.id) == (account, server)


@pytest.mark.parametrize(
    ("host", "username"),
    [
        ("smtp.gmail.com", "ann@gmail.com"),
        ("smtp.gmail.com", "ann@corp.example"),  # a company domain may be on Workspace
        ("smtp.office365.com", "ann@contoso.com"),
        ("smtp.office365.com", "ann@hotmail.com"),  # one vendor: Microsoft's own servers
        ("smtp-mail.outlook.com", "ann@contoso.onmicrosoft.com"),
        ("smtp.gmail.com", "ann@googlemail.com"),
        ("mail.example.com", "ann@gmail.com"),  # a server mailkit does not know
        ("smtp.gmail.com", "ann"),  # a user name that is not an address
        ("smtp.gmail.com", None),
    ],
)
def test_no_mismatch_where_the_account_may_belong(host: str, username: str | None) -> None:
    assert provider_mismatch(host, username) is None


@given(st.sampled_from(PROVIDERS), st.sampled_from(PROVIDERS))
def test_a_mismatch_is_exactly_another_vendors_account(server: Provider, account: Provider) -> None:
    for domain in account.domains:
        mismatch = provider_mismatch(server.smtp_host, f"ann@{domain}")
        same = account.id == server.id or (account.vendor and account.vendor == server.vendor)
        assert (mismatch is None) == bool(same), (server.id, domain)
