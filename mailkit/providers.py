"""What mailkit knows about the big mail providers: servers, ports, sign-in rules.

One table, two readers: the diagnosis tailors its advice to the provider behind a failing host
(:func:`provider_for_host`), and onboarding turns an email address or its MX records into a
preset (:func:`provider_for_domain`, :func:`provider_for_mx`). Facts only — host names, ports,
scopes and policies — so that an entry can be checked against the provider's documentation.

Host patterns are either an exact name (``smtp.gmail.com``) or ``*.`` plus a suffix
(``*.mail.protection.outlook.com``: any name below it). MX suffixes match the name itself or any
name below it. When several providers match, the most specific pattern (most labels) wins, so
Gmail's own MX names beat Google Workspace's generic ``google.com``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from mailkit.fields import AuthType, Mode, Security, host_ip

__all__ = [
    "PROVIDERS",
    "SENDING_AUTH",
    "Endpoint",
    "Mismatch",
    "Provider",
    "SendingAuth",
    "damerau_levenshtein",
    "ews_url_for",
    "exchange_online_host",
    "provider_by_id",
    "provider_for_domain",
    "provider_for_host",
    "provider_for_mx",
    "provider_mismatch",
    "sending_auth",
    "suggest_host",
    "typo_budget",
    "webdav_successor",
]


@dataclass(frozen=True)
class Endpoint:
    """A port and the security it speaks, e.g. 465 with implicit TLS."""

    port: int
    security: Security


@dataclass(frozen=True)
class Provider:
    """One provider's submission facts. ``domains`` are consumer address domains only."""

    id: str
    name: str
    smtp_host: str
    smtp_port: int
    security: Security
    #: The authorization type to recommend (``auto`` = let mailkit pick from what is offered).
    auth_hint: AuthType
    mx_suffixes: tuple[str, ...]
    domains: tuple[str, ...]
    #: Host name patterns that identify this provider as the SMTP server.
    smtp_hosts: tuple[str, ...]
    #: Address domains under these belong to the provider (a tenant's ``*.onmicrosoft.com``).
    domain_suffixes: tuple[str, ...] = ()
    #: Who runs the accounts: providers of one vendor may sign in each other's accounts.
    vendor: str = ""
    #: Other ports the same host accepts.
    alt_endpoints: tuple[Endpoint, ...] = ()
    #: The OAuth scope XOAUTH2 over SMTP needs, when the provider supports it.
    oauth_scope: str | None = None
    #: Mail programs sign in with a generated app password instead of the account password.
    app_passwords: bool = False
    #: App passwords exist only once two-step / multi-factor sign-in is on.
    app_passwords_need_2fa: bool = False
    #: Where app passwords are created, as the provider's own menu path.
    app_passwords_menu: str | None = None
    notes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The preferred endpoint first, then the alternatives."""
        return (Endpoint(self.smtp_port, self.security), *self.alt_endpoints)


_STARTTLS_587 = Endpoint(587, Security.STARTTLS)
_IMPLICIT_465 = Endpoint(465, Security.IMPLICIT_TLS)

_GOOGLE_REFS = (
    "https://support.google.com/accounts/answer/185833",
    "https://developers.google.com/gmail/imap/xoauth2-protocol",
)
_MICROSOFT_REFS = (
    "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/"
    "authenticated-client-smtp-submission",
    "https://learn.microsoft.com/exchange/client-developer/legacy-protocols/"
    "how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth",
)
_GOOGLE_APP_PASSWORDS = "Google Account → Security → 2-Step Verification → App passwords"
_MICROSOFT_SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        id="gmail",
        name="Gmail",
        vendor="google",
        smtp_host="smtp.gmail.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.XOAUTH2,
        mx_suffixes=("gmail-smtp-in.l.google.com",),
        domains=("gmail.com", "googlemail.com"),
        smtp_hosts=("smtp.gmail.com",),
        alt_endpoints=(_IMPLICIT_465,),
        oauth_scope="https://mail.google.com/",
        app_passwords=True,
        app_passwords_need_2fa=True,
        app_passwords_menu=_GOOGLE_APP_PASSWORDS,
        notes=(
            "The normal account password is not accepted from mail programs: use an app "
            "password or OAuth.",
            "XOAUTH2 over SMTP needs the full https://mail.google.com/ scope; the narrower "
            "gmail.send scope works only with the Gmail API (mode gmail_api).",
        ),
        references=_GOOGLE_REFS,
    ),
    Provider(
        id="google_workspace",
        name="Google Workspace",
        vendor="google",
        smtp_host="smtp.gmail.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.XOAUTH2,
        mx_suffixes=("google.com", "googlemail.com"),
        domains=(),
        smtp_hosts=("smtp.gmail.com", "smtp-relay.gmail.com", "aspmx.l.google.com"),
        alt_endpoints=(_IMPLICIT_465,),
        oauth_scope="https://mail.google.com/",
        app_passwords=True,
        app_passwords_need_2fa=True,
        app_passwords_menu=_GOOGLE_APP_PASSWORDS,
        notes=(
            "Same submission server as Gmail, for an organisation's own domain.",
            "smtp-relay.gmail.com is the organisation's SMTP relay service, configured by the "
            "Workspace administrator (allowed IP addresses or SMTP AUTH).",
            "The Workspace administrator decides whether users may turn on 2-Step "
            "Verification and create app passwords.",
        ),
        references=_GOOGLE_REFS,
    ),
    Provider(
        id="microsoft365",
        name="Microsoft 365 (Exchange Online)",
        vendor="microsoft",
        smtp_host="smtp.office365.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.XOAUTH2,
        mx_suffixes=("mail.protection.outlook.com", "mx.microsoft"),
        domains=(),
        domain_suffixes=("onmicrosoft.com",),
        smtp_hosts=(
            "smtp.office365.com",
            "smtp-legacy.office365.com",
            "*.mail.protection.outlook.com",
            "*.mx.microsoft",
        ),
        oauth_scope=_MICROSOFT_SMTP_SCOPE,
        notes=(
            "Authenticated SMTP (SMTP AUTH) is off for new tenants and can be switched on per "
            "mailbox; OAuth needs it on as well.",
            "Basic authentication (user name + password) for SMTP AUTH is disabled by default "
            "from the end of 2026; XOAUTH2 is the lasting way.",
            "Accounts with multi-factor sign-in or security defaults cannot use basic "
            "authentication.",
            "The From address must be the mailbox itself or one it has Send As rights for.",
            "Direct send / relay through *.mail.protection.outlook.com on port 25 needs no "
            "AUTH but only reaches the tenant's own domains unless a connector allows it.",
        ),
        references=_MICROSOFT_REFS,
    ),
    Provider(
        id="outlook_com",
        name="Outlook.com",
        vendor="microsoft",
        smtp_host="smtp-mail.outlook.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.XOAUTH2,
        mx_suffixes=("olc.protection.outlook.com",),
        domains=(
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "outlook.de",
            "outlook.fr",
            "live.co.uk",
        ),
        smtp_hosts=("smtp-mail.outlook.com", "smtp.live.com"),
        oauth_scope=_MICROSOFT_SMTP_SCOPE,
        notes=(
            "Microsoft's consumer mail; Microsoft retired basic authentication for Outlook.com "
            "in September 2024, so mail programs sign in with OAuth (XOAUTH2).",
        ),
        references=_MICROSOFT_REFS[1:],
    ),
    Provider(
        id="yahoo",
        name="Yahoo Mail",
        smtp_host="smtp.mail.yahoo.com",
        smtp_port=465,
        security=Security.IMPLICIT_TLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("am0.yahoodns.net",),
        domains=(
            "yahoo.com",
            "ymail.com",
            "rocketmail.com",
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.de",
            "yahoo.es",
            "yahoo.it",
            "yahoo.co.jp",
        ),
        smtp_hosts=("smtp.mail.yahoo.com",),
        alt_endpoints=(_STARTTLS_587,),
        app_passwords=True,
        app_passwords_menu="Yahoo Account Info → Account security → Generate app password",
        notes=("Third-party mail programs sign in with an app password.",),
    ),
    Provider(
        id="aol",
        name="AOL Mail",
        smtp_host="smtp.aol.com",
        smtp_port=465,
        security=Security.IMPLICIT_TLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("mx-aol.mail.gm0.yahoodns.net",),
        domains=("aol.com", "aim.com"),
        smtp_hosts=("smtp.aol.com",),
        alt_endpoints=(_STARTTLS_587,),
        app_passwords=True,
        app_passwords_menu="AOL Account Info → Account security → Generate app password",
        notes=("Third-party mail programs sign in with an app password.",),
    ),
    Provider(
        id="icloud",
        name="iCloud Mail",
        smtp_host="smtp.mail.me.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("mail.icloud.com",),
        domains=("icloud.com", "me.com", "mac.com"),
        smtp_hosts=("smtp.mail.me.com",),
        app_passwords=True,
        app_passwords_need_2fa=True,
        app_passwords_menu="Apple Account → Sign-In and Security → App-Specific Passwords",
        notes=(
            "Mail programs sign in with an app-specific password, which needs two-factor "
            "authentication on the Apple Account.",
        ),
    ),
    Provider(
        id="zoho",
        name="Zoho Mail",
        smtp_host="smtp.zoho.com",
        smtp_port=465,
        security=Security.IMPLICIT_TLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("zoho.com", "zoho.eu", "zoho.in", "zoho.com.au", "zoho.jp"),
        domains=("zohomail.com", "zoho.com"),
        smtp_hosts=(
            "smtp.zoho.com",
            "smtp.zoho.eu",
            "smtp.zoho.in",
            "smtp.zoho.com.au",
            "smtp.zoho.jp",
            "smtppro.zoho.com",
            "smtppro.zoho.eu",
            "smtppro.zoho.in",
            "smtppro.zoho.com.au",
            "smtppro.zoho.jp",
        ),
        alt_endpoints=(_STARTTLS_587,),
        app_passwords=True,
        app_passwords_need_2fa=True,
        app_passwords_menu="Zoho Accounts → Security → App Passwords",
        notes=(
            "The host follows the account's data centre (smtp.zoho.eu for EU accounts, ...); "
            "organisation accounts with their own domain use smtppro.zoho.*.",
            "With two-factor authentication on, mail programs need an app password.",
        ),
    ),
    Provider(
        id="fastmail",
        name="Fastmail",
        smtp_host="smtp.fastmail.com",
        smtp_port=465,
        security=Security.IMPLICIT_TLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("messagingengine.com",),
        domains=("fastmail.com", "fastmail.fm"),
        smtp_hosts=("smtp.fastmail.com",),
        alt_endpoints=(_STARTTLS_587,),
        app_passwords=True,
        app_passwords_menu="Fastmail Settings → Privacy & Security → Manage app passwords",
        notes=("Mail programs sign in with an app password, never the account password.",),
    ),
    Provider(
        id="gmx",
        name="GMX (gmx.net)",
        smtp_host="mail.gmx.net",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("gmx.net",),
        domains=("gmx.net", "gmx.de", "gmx.at", "gmx.ch"),
        smtp_hosts=("mail.gmx.net",),
        alt_endpoints=(_IMPLICIT_465,),
        notes=(
            "Sending from mail programs works only after POP3/IMAP access is allowed in the "
            "web mailbox's settings.",
        ),
    ),
    Provider(
        id="gmx_com",
        name="GMX (gmx.com)",
        smtp_host="mail.gmx.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("gmx.com",),
        domains=("gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr"),
        smtp_hosts=("mail.gmx.com",),
        alt_endpoints=(_IMPLICIT_465,),
        notes=(
            "Sending from mail programs works only after POP3/IMAP access is allowed in the "
            "web mailbox's settings.",
        ),
    ),
    Provider(
        id="web_de",
        name="WEB.DE",
        smtp_host="smtp.web.de",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("web.de",),
        domains=("web.de",),
        smtp_hosts=("smtp.web.de",),
        notes=(
            "Sending from mail programs works only after POP3/IMAP access is allowed in the "
            "web mailbox's settings.",
        ),
    ),
    Provider(
        id="mail_com",
        name="mail.com",
        smtp_host="smtp.mail.com",
        smtp_port=587,
        security=Security.STARTTLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("mail.com",),
        domains=("mail.com", "email.com", "usa.com", "post.com"),
        smtp_hosts=("smtp.mail.com",),
        alt_endpoints=(_IMPLICIT_465,),
        notes=(
            "Sending from mail programs works only after POP3/IMAP access is allowed in the "
            "web mailbox's settings.",
        ),
    ),
    Provider(
        id="yandex",
        name="Yandex Mail",
        smtp_host="smtp.yandex.com",
        smtp_port=465,
        security=Security.IMPLICIT_TLS,
        auth_hint=AuthType.AUTO,
        mx_suffixes=("mx.yandex.net", "mx.yandex.ru"),
        domains=("yandex.com", "yandex.ru", "ya.ru"),
        smtp_hosts=("smtp.yandex.com", "smtp.yandex.ru"),
        alt_endpoints=(_STARTTLS_587,),
        app_passwords=True,
        app_passwords_menu="Yandex ID → Security → App passwords",
        notes=("Mail programs sign in with an app password.",),
    ),
)

_BY_ID = {p.id: p for p in PROVIDERS}


@dataclass(frozen=True)
class SendingAuth:
    """What a provider asks its customers to publish for mail it sends as their domain."""

    #: The SPF include that covers the provider's outbound servers.
    spf_includes: tuple[str, ...]
    #: DKIM selectors the provider signs a custom domain's mail with (empty: chosen per domain).
    dkim_selectors: tuple[str, ...] = ()
    #: Where the DKIM records point or are created, in the provider's words.
    dkim_note: str = ""


#: Sender-domain facts per provider id (``mailkit domain``, ``audit --check-domains``). Only
#: the providers that send a customer's own domain; consumer-only ones need no entry.
SENDING_AUTH: dict[str, SendingAuth] = {
    "microsoft365": SendingAuth(
        ("spf.protection.outlook.com",),
        ("selector1", "selector2"),
        "CNAMEs selector1/selector2._domainkey to the tenant's *.onmicrosoft.com domainkey "
        "records (Microsoft Defender portal → Email authentication → DKIM)",
    ),
    "outlook_com": SendingAuth(("spf.protection.outlook.com",)),
    "gmail": SendingAuth(("_spf.google.com",)),
    "google_workspace": SendingAuth(
        ("_spf.google.com",),
        ("google",),
        "a TXT record google._domainkey generated in the Admin console (Apps → Google "
        "Workspace → Gmail → Authenticate email)",
    ),
    "icloud": SendingAuth(("icloud.com",), ("sig1",), "CNAME sig1._domainkey to iCloud"),
    "zoho": SendingAuth(("zoho.com",)),
    "fastmail": SendingAuth(
        ("spf.messagingengine.com",),
        ("fm1", "fm2", "fm3"),
        "CNAMEs fm1, fm2, fm3._domainkey to Fastmail's dkim.fmhosted.com records",
    ),
    "yahoo": SendingAuth(("_spf.mail.yahoo.com",)),
    "yandex": SendingAuth(("_spf.yandex.net",), ("mail",), "a TXT record mail._domainkey"),
}


def sending_auth(provider_id: str | None) -> SendingAuth | None:
    """The provider's SPF include and DKIM selectors, when it sends customers' domains."""
    return SENDING_AUTH.get(provider_id) if provider_id else None


def provider_by_id(provider_id: str) -> Provider:
    """The provider with this id; ``KeyError`` names the known ids when there is none."""
    try:
        return _BY_ID[provider_id]
    except KeyError:
        known = ", ".join(sorted(_BY_ID))
        raise KeyError(f"no provider {provider_id!r}; known: {known}") from None


def _normal(name: str) -> str:
    """Host and domain names compare case-insensitively and without a trailing root dot."""
    return name.strip().lower().rstrip(".")


def _domain_of(address_or_domain: str) -> str:
    return _normal(address_or_domain.rpartition("@")[2])


def _host_match(host: str, pattern: str) -> int:
    """How specific ``pattern`` is if it matches ``host`` (its label count), else 0."""
    if pattern.startswith("*."):
        suffix = pattern[2:]
        return suffix.count(".") + 2 if host.endswith("." + suffix) else 0
    return pattern.count(".") + 1 if host == pattern else 0


def _suffix_match(host: str, suffix: str) -> int:
    if host == suffix or host.endswith("." + suffix):
        return suffix.count(".") + 1
    return 0


def provider_for_host(host: str, email_domain: str | None = None) -> Provider | None:
    """The provider whose SMTP server ``host`` is, or None for a server mailkit doesn't know.

    Gmail and Google Workspace share ``smtp.gmail.com``; ``email_domain`` (an address or its
    domain: the user name or From address) tells them apart — a consumer domain picks the
    consumer provider, any other domain the business one. Without it the first listed wins.
    """
    name = _normal(host)
    if not name:
        return None
    best: list[tuple[int, Provider]] = []
    for provider in PROVIDERS:
        score = max((_host_match(name, p) for p in provider.smtp_hosts), default=0)
        if score:
            best.append((score, provider))
    if not best:
        return None
    top = max(score for score, _ in best)
    candidates = [provider for score, provider in best if score == top]
    if email_domain and len(candidates) > 1:
        domain = _domain_of(email_domain)
        for provider in candidates:
            if domain in provider.domains:
                return provider
        for provider in candidates:
            if not provider.domains:
                return provider
    return candidates[0]


def provider_for_domain(email_domain: str) -> Provider | None:
    """The consumer provider of an address domain (``gmail.com``) or whole address, or None.

    Custom domains (a company's own) are never matched here: look up their MX records and ask
    :func:`provider_for_mx`.
    """
    domain = _domain_of(email_domain)
    for provider in PROVIDERS:
        if domain in provider.domains:
            return provider
    for provider in PROVIDERS:
        if any(domain.endswith("." + suffix) for suffix in provider.domain_suffixes):
            return provider
    return None


def provider_for_mx(mx_hosts: Iterable[str]) -> Provider | None:
    """The provider behind a domain's MX hosts (most preferred first), or None.

    The first MX host that any provider recognises decides; among providers recognising it the
    most specific suffix wins.
    """
    for mx in mx_hosts:
        name = _normal(mx)
        if not name:
            continue
        scored = [
            (max((_suffix_match(name, s) for s in p.mx_suffixes), default=0), p) for p in PROVIDERS
        ]
        top = max(score for score, _ in scored)
        if top:
            return next(p for score, p in scored if score == top)
    return None


# --------------------------------------------------------------------------- mismatches


@dataclass(frozen=True)
class Mismatch:
    """An account of ``account`` signing in at the server of ``server``: it cannot work."""

    account: Provider
    server: Provider


def provider_mismatch(host: str, address: str | None) -> Mismatch | None:
    """Whether ``address`` (the sign-in user name) belongs to a provider other than ``host``'s.

    Only addresses whose provider is certain count (gmail.com, outlook.com, a tenant's
    ``*.onmicrosoft.com``, ...): a company's own domain may be hosted anywhere. Providers of
    one vendor (Gmail and Google Workspace; Microsoft 365 and Outlook.com) are not a mismatch.
    """
    if not address or "@" not in address:
        return None
    account = provider_for_domain(address)
    server = provider_for_host(host, address)
    if account is None or server is None or account.id == server.id:
        return None
    if account.vendor and account.vendor == server.vendor:
        return None
    return Mismatch(account=account, server=server)


# --------------------------------------------------------------------------- typos


def damerau_levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) that turn ``a`` into ``b``.

    The optimal-string-alignment variant: each substring is edited once, which is what a
    typing slip looks like (``gmial`` for ``gmail`` is one edit, not two).
    """
    if a == b:
        return 0
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[len(b)]


def _known_hosts() -> tuple[str, ...]:
    names = (n for p in PROVIDERS for n in (p.smtp_host, *p.smtp_hosts))
    return tuple(dict.fromkeys(n for n in names if not n.startswith("*.")))


@lru_cache(maxsize=64)
def _letters(name: str) -> Counter[str]:
    return Counter(name)


def _letter_gap(a: Counter[str], b: Counter[str]) -> int:
    """How many letters two names differ by, counted as multisets (a lower bound of twice
    their edit distance)."""
    return sum(abs(a[c] - b[c]) for c in a.keys() | b.keys())


def typo_budget(name: str) -> int:
    """Edits still called a typo of ``name``: one for short names, two from 14 characters on,
    where two slips are likelier than another real server that close."""
    return 2 if len(name) >= 14 else 1


@lru_cache(maxsize=1024)  # audits check thousands of users who share a few hosts
def suggest_host(host: str) -> str | None:
    """The known provider host that ``host`` is a typo away from, or None.

    None for a known host itself (or a name under a known pattern, such as a tenant's
    ``*.mail.protection.outlook.com``), for names further away than :func:`typo_budget`, and
    when two known hosts are equally near (no guess is better than a wrong one).
    """
    name = _normal(host)
    if not name or provider_for_host(name) is not None:
        return None
    near: list[tuple[int, str]] = []
    letters = Counter(name)
    for known in _known_hosts():
        budget = typo_budget(known)
        if abs(len(known) - len(name)) > budget:
            continue
        # Each edit changes the letter counts by at most two (a substitution), so more than
        # twice the budget apart is too far: no need for the quadratic distance (an audit
        # asks this of hundreds of hosts).
        if _letter_gap(letters, _letters(known)) > 2 * budget:
            continue
        distance = damerau_levenshtein(name, known)
        if distance <= typo_budget(known):
            near.append((distance, known))
    if not near:
        return None
    nearest = min(distance for distance, _ in near)
    hosts = [known for distance, known in near if distance == nearest]
    return hosts[0] if len(hosts) == 1 else None


#: Where Exchange Online answers: worldwide (``outlook.office365.com``, ``smtp.office365.com``,
#: ``outlook.office.com``, any name below ``outlook.com``),
#: the US government clouds and 21Vianet in China.
_EXCHANGE_ONLINE = re.compile(
    r"(?:[a-z0-9-]+\.)*(?:office365\.com|office365\.us)"
    r"|(?:[a-z0-9-]+\.)+(?:outlook\.com|outlook\.cn)|outlook\.office\.com|webmail\.apps\.mil"
)


def exchange_online_host(host: str | None) -> bool:
    """Whether ``host`` is a server of Exchange Online (Microsoft 365), not an on-premises
    Exchange: there EWS is being retired and Microsoft Graph is the way to send. One answer for
    the audit (``ews-exchange-online``) and for migrating WebDAV settings."""
    if not host:
        return False
    name = host.strip().lower().rstrip(".")
    return host_ip(name) is None and _EXCHANGE_ONLINE.fullmatch(name) is not None


def ews_url_for(host: str) -> str:
    """The EWS endpoint on an Exchange server (2007 and later): ``https://HOST/EWS/Exchange.asmx``."""
    address = host_ip(host)
    shown = f"[{address}]" if address is not None and address.version == 6 else host.strip()
    return f"https://{shown.rstrip('.')}/EWS/Exchange.asmx"


def webdav_successor(host: str | None) -> tuple[Mode, str | None]:
    """What replaces Exchange 2000/2003 WebDAV for a server ``host``: Microsoft Graph for
    Exchange Online (where EWS is being retired), else EWS at the server's standard URL (None
    when no host is known: Autodiscover from the From address finds it)."""
    if exchange_online_host(host):
        return Mode.MICROSOFT_GRAPH, None
    return Mode.EXCHANGE_EWS, ews_url_for(host) if host else None
