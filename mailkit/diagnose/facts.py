"""What a diagnosis may look at: the facts of one failed send, and predicates over them.

:func:`facts_for` gathers a :class:`Facts` from the :class:`~mailkit.outcome.Failure` and the
:class:`~mailkit.outcome.SendContext`: the provider the settings point at (or, for OAuth and the
mail APIs, the one whose error words the answer carries) and the parsed enhanced status code.
:class:`When` predicates over facts compose with ``&``, ``|`` and ``~``; the named ones here are
the words the rules table is written in, shared with the advice so both ask the same question.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from mailkit.outcome import Failure, Kind, Phase, SendContext, Signal
from mailkit.providers import (
    Mismatch,
    Provider,
    provider_for_domain,
    provider_for_host,
    provider_mismatch,
    suggest_host,
)

#: Server text longer than this is cut (with an ellipsis): enough for any real reply.
MAX_SERVER_TEXT = 500

#: Provider ids by vendor: their advice names the same consoles, scopes and walkthroughs.
GOOGLE = frozenset({"gmail", "google_workspace"})
MICROSOFT = frozenset({"microsoft365", "outlook_com"})
#: The notebook that gets each provider's OAuth token, as advice names it.
OAUTH_WALKTHROUGH = {
    "gmail": "Google OAuth walkthrough",
    "google_workspace": "Google OAuth walkthrough",
    "microsoft365": "Microsoft OAuth walkthrough",
    "outlook_com": "Microsoft OAuth walkthrough",
}

# RFC 3463: class.subject.detail, optionally after the reply code a sender left in the text.
_ENHANCED = re.compile(r"\A\s*(?:[2-5]\d\d[ -])?([245])\.(\d{1,3})\.(\d{1,3})(?=\s|\Z)", re.ASCII)
# Control characters and bidirectional overrides: nothing a reply needs, and they can make the
# text shown to the admin differ from what the server sent.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def parse_enhanced(text: str | None) -> str | None:
    """The RFC 3463 status code (``5.7.8``) at the start of a reply text, or None.

    Leading zeros are dropped (``5.07.001`` → ``5.7.1``) so rules compare one spelling.
    """
    if not text:
        return None
    match = _ENHANCED.match(text)
    if match is None:
        return None
    return ".".join(str(int(part)) for part in match.groups())


def server_text(text: str, enhanced: str | None) -> str:
    """The reply as shown to the admin: its own status code not repeated, bounded in length."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if enhanced is not None and parse_enhanced(line) == enhanced:
            line = _ENHANCED.sub("", line, count=1)
        lines.append(_CONTROL.sub(" ", line).strip())
    cleaned = "\n".join(line for line in lines if line)
    if len(cleaned) > MAX_SERVER_TEXT:
        cleaned = cleaned[: MAX_SERVER_TEXT - 1].rstrip() + "…"
    return cleaned


@lru_cache(maxsize=256)
def _phrase(phrase: str) -> re.Pattern[str]:
    # Phrases match at a word start: "rate" finds "rate limit" and "rated", not "generated".
    return re.compile(r"(?<![a-z0-9])" + re.escape(phrase), re.IGNORECASE)


@dataclass(frozen=True)
class Facts:
    """Everything a rule may look at: the failure, the settings, the provider, parsed codes."""

    failure: Failure
    context: SendContext
    provider: Provider | None
    enhanced: str | None

    @property
    def code(self) -> int | None:
        return self.failure.code

    @property
    def provider_id(self) -> str | None:
        return self.provider.id if self.provider else None

    @property
    def google(self) -> bool:
        return self.provider_id in GOOGLE

    @property
    def microsoft(self) -> bool:
        return self.provider_id in MICROSOFT

    @property
    def implicit_tls(self) -> bool:
        """Whether this send started TLS at connect (``auto`` does so on port 465)."""
        security = self.context.security
        return security == "implicit_tls" or (security == "auto" and self.context.port == 465)

    @property
    def port(self) -> int:
        return self.context.port

    def says(self, *phrases: str) -> bool:
        """Whether the server's text or the sender's detail contains any of the phrases."""
        haystack = f"{self.failure.text}\n{self.failure.detail}"
        return any(_phrase(p).search(haystack) for p in phrases)

    @property
    def detail(self) -> str:
        return self.failure.detail.strip()

    @property
    def walkthrough(self) -> str:
        return OAUTH_WALKTHROUGH.get(self.provider_id or "", "OAuth walkthrough")

    @property
    def error(self) -> str:
        """The OAuth / API error code as the provider sent it (``invalid_grant``, ...), or ""."""
        return self.failure.enhanced or ""

    @property
    def api(self) -> bool:
        """Whether the send went through a mail API (Gmail API, Graph) rather than SMTP."""
        return self.context.auth == "oauth" or self.failure.phase is Phase.REQUEST

    @property
    def mismatch(self) -> Mismatch | None:
        """The user name is another provider's account than the server's (outlook.com at Gmail)."""
        return provider_mismatch(self.context.host, self.context.username)

    @property
    def suggested_host(self) -> str | None:
        """The provider host the configured one is a typo of (smtp.gmial.com → smtp.gmail.com)."""
        return suggest_host(self.context.host) if self.context.host else None

    @property
    def account(self) -> str:
        """Whose credentials, for "no password is stored for ...": the user name, if any."""
        return f"for {self.context.username}" if self.context.username else "for this account"


class When:
    """A predicate on :class:`Facts` that composes: ``a & b``, ``a | b``, ``~a``."""

    __slots__ = ("_test",)

    def __init__(self, test: Callable[[Facts], bool]) -> None:
        self._test = test

    def __call__(self, facts: Facts) -> bool:
        return self._test(facts)

    def __and__(self, other: When) -> When:
        return When(lambda f: self(f) and other(f))

    def __or__(self, other: When) -> When:
        return When(lambda f: self(f) or other(f))

    def __invert__(self) -> When:
        return When(lambda f: not self(f))


ANY = When(lambda f: True)


def at(*phases: Phase) -> When:
    return When(lambda f: f.failure.phase in phases)


def sig(*signals: Signal) -> When:
    return When(lambda f: f.failure.signal in signals)


def reply(*codes: int) -> When:
    """The server answered with one of these codes."""
    return When(lambda f: f.failure.signal is Signal.REPLY and f.code in codes)


def xx(digit: int) -> When:
    """The server answered with a code of this class: ``xx(4)`` is any 4xx."""
    return When(
        lambda f: f.failure.signal is Signal.REPLY and f.code is not None and f.code // 100 == digit
    )


def enhanced(*codes: str) -> When:
    """The enhanced status is one of ``codes``; ``"5.1"`` matches any ``5.1.x``."""

    def test(f: Facts) -> bool:
        if f.enhanced is None:
            return False
        return any(f.enhanced == c or f.enhanced.startswith(c + ".") for c in codes)

    return When(test)


def says(*phrases: str) -> When:
    return When(lambda f: f.says(*phrases))


def detail_says(*phrases: str) -> When:
    return When(lambda f: any(_phrase(p).search(f.failure.detail) for p in phrases))


def names(setting: str) -> When:
    """The sender's detail names this setting first: MISSING "host", POLICY "mode: outlook"."""
    return When(lambda f: first_word(f.failure.detail) == setting)


def first_word(text: str) -> str:
    match = re.match(r"\s*(\w+)", text, re.ASCII)
    return match.group(1).lower() if match else ""


def verify_code(*codes: int) -> When:
    return When(lambda f: f.failure.verify_code in codes)


def auth_is(*types: str) -> When:
    return When(lambda f: f.context.auth in types)


def provider_in(ids: frozenset[str]) -> When:
    return When(lambda f: f.provider_id in ids)


def port_is(*ports: int) -> When:
    return When(lambda f: f.port in ports)


def oauth_error(*errors: str) -> When:
    """The OAuth / API error code (``Failure.enhanced``) is one of these, in any case."""
    wanted = frozenset(e.lower() for e in errors)
    return When(lambda f: f.error.lower() in wanted)


def status(*codes: int) -> When:
    """The HTTP status (``Failure.code``) is one of these."""
    return When(lambda f: f.code in codes)


def status_class(digit: int) -> When:
    return When(lambda f: f.code is not None and f.code // 100 == digit)


IMPLICIT_TLS = When(lambda f: f.implicit_tls)


def kind_by_code(code: int | None) -> Kind:
    """The kind a reply code implies when a rule fixes none: 4xx passes, anything else not."""
    return Kind.TRANSIENT if code is not None and code // 100 == 4 else Kind.PERMANENT


# --------------------------------------------------------------------------- named predicates
# The table's vocabulary: each a question about the facts, named once, asked by rules and advice.

AUTH = at(Phase.AUTH)
RCPT = at(Phase.RCPT)
ENVELOPE = at(Phase.MAIL, Phase.RCPT, Phase.DATA, Phase.END_OF_DATA)
NO_MECHS = When(lambda f: not f.failure.auth_mechanisms)
# 465 is the implicit-TLS port; the sender's probe says so for any port that answers TLS.
TLS_PORT = port_is(465) | detail_says("implicit tls")
TYPO = When(lambda f: f.suggested_host is not None)
TEMPORARY_DNS = detail_says("temporary", "try again", "timed out", "timeout")

VERIFY = sig(Signal.TLS_VERIFY)
EXPIRED = verify_code(9, 10) | says("expired", "not yet valid")
WRONG_HOST = verify_code(62, 64) | says(
    "hostname mismatch", "ip address mismatch", "doesn't match", "does not match"
)
HANDSHAKE = sig(Signal.TLS_PROTOCOL)
# What OpenSSL says when the peer's first bytes are not TLS at all (e.g. an SMTP greeting).
NOT_TLS = says(
    "wrong version number",
    "record layer failure",
    "unexpected eof",
    "packet length too long",
    "http request",
    "unknown protocol",
)
# "wrong version number" is deliberately absent: it means "not TLS", not "old TLS".
TLS_VERSION = says(
    "unsupported protocol",
    "protocol version",
    "no protocols available",
    "version too low",
    "unsupported_protocol",
)

ENCRYPTION_REQUIRED = (
    reply(538)
    | (sig(Signal.REPLY) & enhanced("5.7.11"))
    | (reply(530) & says("starttls", "tls", "encrypt", "secure connection"))
)
# Microsoft: 5.7.139 (SMTP AUTH or basic auth off), 5.7.30 (basic auth removed for good).
BASIC_OFF = enhanced("5.7.139", "5.7.30") | says(
    "smtpclientauthentication",
    "basic authentication is disabled",
    "basic authentication is not supported",
    "security defaults",
)
# An SMTP send past AUTH with auth still auto signed in with nothing: none was stored.
UNSIGNED = auth_is("auto") & ~When(lambda f: f.api)
PASSWORD_MECHS = When(
    lambda f: bool(f.failure.auth_mechanisms & {"PLAIN", "LOGIN", "CRAM-MD5", "NTLM"})
)
# auth auto stops at AUTH with mechanisms on offer only when none fits what is stored.
NO_MECHANISM_FOR_AUTO = (
    auth_is("auto") & sig(Signal.NOT_OFFERED) & ~When(lambda f: not f.failure.auth_mechanisms)
)
OFFERS_XOAUTH2 = When(lambda f: "XOAUTH2" in f.failure.auth_mechanisms)
MISMATCH = When(lambda f: f.mismatch is not None)
# Providers that sign mail programs in only with OAuth (basic authentication retired).
OAUTH_ONLY = frozenset({"outlook_com"})
NOT_SIGNED_IN = enhanced("5.7.57") | says(
    "authentication required", "must authenticate", "not authenticated"
)
# Microsoft: 5.7.60 at MAIL FROM, 5.2.252 "SendAsDenied" after the message.
SEND_AS = enhanced("5.7.60", "5.2.252") | says(
    "sendasdenied", "send as", "send-as", "send on behalf"
)
BLOCKLIST = says("blocked using", "blocklist", "blacklist", "block list", "spamhaus", "dnsbl")
RATE = says(
    "rate",
    "too many",
    "too much mail",  # Postfix's anvil limits: "450 4.7.1 Error: too much mail from <ip>"
    "throttl",
    "sending quota",
    "submission quota",
    "sending limit",
    "limit exceeded",
    "exceeded the limit",
    "slow down",
) | enhanced("4.5.3", "5.5.3")
MAILBOX_FULL = enhanced("4.2.2", "5.2.2") | says(
    "mailbox full", "mailbox is full", "over quota", "quota exceeded", "exceeded storage"
)
TOO_LARGE = enhanced("5.3.4", "5.2.3", "4.3.4") | says(
    "too large", "too big", "size limit", "message size", "exceeds the maximum", "maximum size"
)
BAD_SENDER = enhanced("5.1", "5.7.1") | says(
    "sender", "from address", "rejected", "not owned", "not allowed", "not permitted"
)
RELAY = enhanced("5.7.54") | says("relay")
# How servers turn away mail from a client that did not sign in (at MAIL or at RCPT).
REFUSED_UNSIGNED = (at(Phase.MAIL, Phase.RCPT) & (reply(530) | (xx(5) & NOT_SIGNED_IN))) | (
    RCPT & xx(5) & (RELAY | enhanced("5.7.1"))
)
UNKNOWN_USER = enhanced("5.1") | says(
    "user unknown",
    "unknown user",
    "no such user",
    "unknown recipient",
    "recipient not found",
    "does not exist",
    "doesn't exist",
    "no mailbox",
    "invalid recipient",
    "mailbox unavailable",
)
# 450, 451 4.7.1 or the words: the classic greylisting answers (a 4.1.x is about the address).
GREYLIST = (
    reply(450)
    | enhanced("4.7.1")
    | says("greylist", "graylist", "try again later", "please try again", "deferred")
) & ~enhanced("4.1")
CONTENT = enhanced("5.7") | says(
    "spam", "policy", "virus", "malware", "blocked", "content", "dmarc", "spf", "dkim", "rejected"
)
OAUTH = sig(Signal.OAUTH)
HTTP = sig(Signal.HTTP)
CONSENT = at(Phase.CONSENT)
DEVICE_BLOCKED = detail_says("device_code") & says("AADSTS53003", "conditional access")
PKCE = says("code verifier", "code_verifier", "AADSTS501481")
API_RATE = oauth_error(
    "rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"
) | says("rate limit", "too many requests")
SCOPE = oauth_error(
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "insufficientPermissions", "insufficient_scope"
) | says("scope", "insufficient permission")

# Google: the Gmail API is switched off in the OAuth client's Cloud project.
API_DISABLED = When(
    lambda f: f.error.lower() in ("accessnotconfigured", "service_disabled")
) | says("has not been used", "it is disabled", "api is disabled", "not been enabled")


# --------------------------------------------------------------------------- facts of a send


def _email_domain(context: SendContext) -> str | None:
    for address in (context.username, context.from_address):
        if address and "@" in address:
            return address
    return None


def facts_for(failure: Failure, context: SendContext) -> Facts:
    """What the rules may look at for this failure; the provider comes from the server, else
    (for OAuth and the mail APIs) from the vendor the answer points at."""
    email = _email_domain(context)
    provider = provider_for_host(context.host, email) or _api_provider(failure, context, email)
    code = parse_enhanced(failure.enhanced) or parse_enhanced(failure.text)
    return Facts(failure=failure, context=context, provider=provider, enhanced=code)


_GOOGLE_HOSTS = ("googleapis.com", "accounts.google.com")
_MICROSOFT_HOSTS = (
    "graph.microsoft.com",
    "login.microsoftonline.com",
    "login.live.com",
    "outlook.office.com",
    "outlook.office365.com",
)
# Error words only one provider uses: AADSTS codes and Graph's error codes; Google's statuses.
_MICROSOFT_WORDS = re.compile(
    r"AADSTS\d+|InvalidAuthenticationToken|ErrorAccessDenied|ApplicationThrottled"
    r"|MailboxConcurrency|ErrorSendAsDenied",
    re.IGNORECASE,
)
_GOOGLE_WORDS = re.compile(
    r"ACCESS_TOKEN_SCOPE_INSUFFICIENT|accessNotConfigured|SERVICE_DISABLED|googleapis\.com"
    r"|Token has been expired or revoked",
    re.IGNORECASE,
)


def _oauth_vendor(failure: Failure, context: SendContext) -> str | None:
    """Google or Microsoft, for OAuth and API failures whose host is not a known SMTP server."""
    if context.oauth_provider in ("google", "microsoft"):
        return context.oauth_provider
    host = context.host.lower().rstrip(".")
    if any(host == h or host.endswith("." + h) for h in _GOOGLE_HOSTS):
        return "google"
    if any(host == h or host.endswith("." + h) for h in _MICROSOFT_HOSTS):
        return "microsoft"
    if failure.signal not in (Signal.HTTP, Signal.OAUTH) or context.service == "ews":
        return None  # EWS codes are Exchange's on any server: Online only by its host
    words = f"{failure.enhanced or ''}\n{failure.text}"
    if _MICROSOFT_WORDS.search(words):
        return "microsoft"
    if _GOOGLE_WORDS.search(words):
        return "google"
    return None


def _api_provider(failure: Failure, context: SendContext, email: str | None) -> Provider | None:
    vendor = _oauth_vendor(failure, context)
    if vendor == "google":
        return provider_for_host("smtp.gmail.com", email)  # Workspace by a non-Gmail domain
    if vendor == "microsoft":
        consumer = provider_for_domain(email) if email else None
        if consumer is not None and consumer.id == "outlook_com":
            return consumer
        return provider_for_host("smtp.office365.com", email)
    return None
