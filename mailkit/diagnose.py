"""From what a sender observed to what it means and what to do: the failure popup, done well.

:func:`diagnose` is pure: it reads a :class:`~mailkit.outcome.Failure` (phase, signal, reply)
and the :class:`~mailkit.outcome.SendContext` and returns a
:class:`~mailkit.outcome.Diagnosis`, so every explanation is tested as plain data.

The knowledge is a table, :data:`RULES`, evaluated top to bottom; the first rule whose
predicate holds decides the cause, the kind and the words. Order is meaning: specific replies
(Microsoft's 5.7.139, Gmail's 5.7.9) come before generic ones (any 535), phase rules before
the any-phase fallbacks, and the last rule matches everything, so a diagnosis always exists.
Predicates are small :class:`When` values combined with ``&``, ``|`` and ``~``.

Kinds follow one idea — what should the admin do next: ``transient`` wait and retry,
``permanent`` the server or the request must change, ``configuration`` mailkit's settings must
change, ``outcome_unknown`` look in the recipient's inbox before sending again. A rule without a
fixed kind takes it from the reply code (4xx transient, 5xx permanent).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from mailkit.faces import FIELDS, password_home, render, setting
from mailkit.outcome import Cause, Diagnosis, Failure, Kind, Phase, SendContext, Signal
from mailkit.providers import (
    Mismatch,
    Provider,
    provider_for_domain,
    provider_for_host,
    provider_mismatch,
    suggest_host,
)

__all__ = [
    "MAX_SERVER_TEXT",
    "RULES",
    "Advice",
    "Facts",
    "Rule",
    "When",
    "diagnose",
    "parse_enhanced",
    "rule_for",
]

#: Server text longer than this is cut (with an ellipsis): enough for any real reply.
MAX_SERVER_TEXT = 500


class _S:
    """Settings as advice names them: references each face renders its own way (``--ca-file``
    on the command line, the "CA file" field in a form, ``ca_file`` in Python; see
    :mod:`mailkit.faces`). Advice never spells a setting's name itself."""

    host = setting("host")
    port = setting("port")
    security = setting("security")
    auth = setting("auth")
    username = setting("username")
    from_address = setting("from_address")
    mode = setting("mode")
    ca_file = setting("ca_file")
    pin = setting("tls_pin_sha256")
    tls_min_version = setting("tls_min_version")
    plaintext_auth = setting("allow_plaintext_auth")
    command_timeout = setting("command_timeout")
    api_url = setting("api_url")
    client_id = setting("oauth_client_id")
    tenant = setting("oauth_tenant")
    secrets = setting("secrets")
    password_home = password_home()


_GOOGLE = frozenset({"gmail", "google_workspace"})
_MICROSOFT = frozenset({"microsoft365", "outlook_com"})
_OAUTH_WALKTHROUGH = {
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


def _server_text(text: str, enhanced: str | None) -> str:
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


# --------------------------------------------------------------------------- facts


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
        return self.provider_id in _GOOGLE

    @property
    def microsoft(self) -> bool:
        return self.provider_id in _MICROSOFT

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
        return _OAUTH_WALKTHROUGH.get(self.provider_id or "", "OAuth walkthrough")

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
    return When(lambda f: _first_word(f.failure.detail) == setting)


def _first_word(text: str) -> str:
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


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Advice:
    """The words of a diagnosis: a title, a plain explanation, numbered fix steps."""

    title: str
    explanation: str
    fix: tuple[str, ...]
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """If ``when`` holds, the failure is ``cause``; ``kind`` None means "by reply code"."""

    cause: Cause
    kind: Kind | None
    when: When
    advise: Callable[[Facts], Advice]


def _kind_by_code(code: int | None) -> Kind:
    return Kind.TRANSIENT if code is not None and code // 100 == 4 else Kind.PERMANENT


def _reply_words(f: Facts) -> str:
    """Opens an explanation by quoting the reply: "The server answered 535 5.7.8"."""
    if f.code is None:
        return "The server answered with an error"
    return f"The server answered {f.code}{' ' + f.enhanced if f.enhanced else ''}"


def _mechanisms(f: Facts) -> str:
    return ", ".join(sorted(f.failure.auth_mechanisms)) or "none"


#: Each phase as an admin would name the step, for "during ..." in explanations.
_STEP = {
    Phase.SETUP: "preparation",
    Phase.CONNECT: "connecting",
    Phase.GREETING: "the greeting",
    Phase.EHLO: "EHLO",
    Phase.STARTTLS: "STARTTLS",
    Phase.TLS: "the TLS handshake",
    Phase.AUTH: "sign-in (AUTH)",
    Phase.MAIL: "MAIL FROM (the sender)",
    Phase.RCPT: "RCPT TO (the recipient)",
    Phase.DATA: "DATA (sending the message)",
    Phase.END_OF_DATA: "the end of the message",
    Phase.QUIT: "QUIT",
    Phase.CONSENT: "the OAuth sign-in",
    Phase.TOKEN: "the token refresh",
    Phase.REQUEST: "the API request",
}

_RETRY = "Nothing in the settings needs to change; run the test again in a few minutes."


# ---- setup


def _host_missing(f: Facts) -> Advice:
    return Advice(
        "No SMTP server is set",
        "The send needs the name of the mail server to connect to, and none is set for this "
        "user or the organisation.",
        (
            f"Fill in {_S.host} with the submission server, e.g. smtp.office365.com or "
            "smtp.gmail.com (the onboarding notebook can propose it from an email address).",
            f"Set {_S.port} and {_S.security} with it (587 with starttls, or 465 with "
            "implicit_tls), or leave them on their defaults.",
        ),
    )


def _password_missing(f: Facts) -> Advice:
    """No password to sign in with: before connecting (auth names a password mechanism), or
    found out from the server (auth ``auto`` had nothing to sign in with)."""
    if f.failure.signal is Signal.MISSING:
        explanation = (
            f"{_S.auth} is {f.context.auth}, which signs in with a password, but the secret "
            f"store holds no password {f.account}, so mailkit did not try to sign in."
        )
    elif f.failure.signal is Signal.NOT_OFFERED:
        explanation = (
            f"The server signs in with a password ({_mechanisms(f)}), not with an OAuth token, "
            f"and the secret store holds no password {f.account}."
        )
    else:
        explanation = (
            f"{_reply_words(f)}: it takes mail only from signed-in clients. {_S.auth} is auto, "
            f"and the secret store holds no password or OAuth token {f.account}, so mailkit "
            "sent without signing in."
        )
    fix = [
        f"Store the password {f.account} with {_S.password_home}.",
        f"If it is stored already, check that the test reads that same secret store "
        f"({_S.secrets}).",
    ]
    if f.provider is not None and f.provider.app_passwords:
        fix.append(
            f"{f.provider.name} wants an app password here, not the account password: "
            f"create one ({f.provider.app_passwords_menu}) and store that."
        )
    if f.provider is not None and f.provider.oauth_scope:
        fix.append(
            f"Or set {_S.auth} to xoauth2 and run the {f.walkthrough}: then no password is "
            "stored at all."
        )
    if f.failure.signal is Signal.MISSING:
        fix.append(
            f"If the server needs no sign-in (a local relay), set {_S.auth} to none instead."
        )
    fix.append("Then run the test send again.")
    return Advice("No password is stored", explanation, tuple(fix), _refs(f))


def _token_missing(f: Facts) -> Advice:
    if f.api:
        how = (
            f"This send goes through {_api_name(f)} (set by {_S.mode}), which needs an OAuth token"
        )
    elif f.context.auth == "xoauth2":
        how = f"{_S.auth} is xoauth2, which signs in with an OAuth token"
    elif f.failure.signal is Signal.NOT_OFFERED:
        how = "The server signs in only with an OAuth token (it offers XOAUTH2 alone)"
    else:
        name = f.provider.name if f.provider else "The server"
        how = (
            f"{_reply_words(f)}: it takes mail only from signed-in clients, and {name} signs in "
            "mail programs only with OAuth"
        )
    fix = [f"Run the {f.walkthrough} {f.account}; it stores the token in the secret store."]
    if f.context.auth == "auto" and not f.api:
        fix.append(f"Set {_S.auth} to xoauth2 (or keep auto, which uses a stored token).")
    fix.append("Then run the test send again.")
    return Advice(
        "No OAuth token is stored",
        f"{how}, but no token is stored {f.account}, so mailkit did not sign in.",
        tuple(fix),
        _refs(f),
    )


def _mode_not_smtp(f: Facts) -> Advice:
    return Advice(
        "This account does not send through SMTP",
        f"An SMTP test send was asked for, but the effective {_S.mode} of this user or the "
        f"organisation is not smtp{' (' + f.detail + ')' if f.detail else ''}, so the mail "
        "would leave another way.",
        (
            "Test with the sender that matches the mode (Gmail API, Microsoft Graph, EWS, or "
            "the desktop client hand-off).",
            f"Or, if this account should use SMTP, set {_S.mode} to smtp for the user or the "
            "organisation.",
        ),
    )


def _plaintext_auth_refused(f: Facts) -> Advice:
    return Advice(
        "Refused to send the password unencrypted",
        "The connection is not encrypted, so the user name and password would cross the "
        "network in clear text where anyone on the path can read them. mailkit stopped "
        "before signing in.",
        (
            f"Set {_S.security} to auto (or starttls with {_S.port} 587, or implicit_tls with "
            f"{_S.port} 465) so the sign-in is encrypted.",
            "Only for a trusted relay on the same machine or a closed network: keep "
            f"{_S.security} none and set {_S.plaintext_auth} deliberately in the organisation "
            "settings.",
        ),
    )


# ---- connect


def _dns_failure(f: Facts) -> Advice:
    # A name one slip from a provider's will not resolve tomorrow either: the typo comes first.
    meant = f.suggested_host
    temporary = _TEMPORARY_DNS(f) and meant is None
    explanation = f"The server name {f.context.host!r} could not be turned into an address. " + (
        "The DNS server did not answer in time, which usually passes."
        if temporary
        else f"Did you mean {meant}? The name is one slip away from that provider's server."
        if meant
        else "Most often the name has a typo, or it only exists on another network "
        "(an internal name used outside the company network or VPN)."
    )
    typo = (f"Did you mean {meant}? Set {_S.host} to {meant}.",) if meant else ()
    return Advice(
        f"The server name does not resolve: did you mean {meant}?"
        if meant
        else "The server name does not resolve",
        explanation,
        (
            *typo,
            f"Check the spelling of {_S.host} ({f.context.host}); copy it from the provider's "
            "documentation or the onboarding notebook's proposal.",
            "If it is an internal server, connect to the company network or VPN, or use its "
            "public name.",
            f"Check that this computer can resolve names at all (e.g. nslookup {f.context.host}).",
        ),
    )


def _connection_refused(f: Facts) -> Advice:
    if f.api:
        return Advice(
            f"Nothing accepts connections on port {f.port}",
            f"{f.context.host} answered, but refused the HTTPS connection on port {f.port}: "
            "no API service listens there, or a firewall rejects it.",
            (
                f"Check {_S.api_url} in the organisation settings: leave it empty for the real "
                "Gmail API / Microsoft Graph, or point it at a service that is running.",
                "Check that a firewall or proxy allows outgoing HTTPS (port 443) from this "
                "computer.",
            ),
        )
    return Advice(
        f"Nothing accepts connections on port {f.port}",
        f"{f.context.host} answered, but refused the connection on port {f.port}: no mail "
        "service listens there, or a firewall rejects it.",
        (
            f"Check {_S.host} and {_S.port}: submission servers listen on 587 (starttls) or "
            f"465 (implicit_tls); port {f.port} may be wrong.",
            "Check that the mail service on the server is running and listens on that port.",
            "Check firewalls between here and the server (the local one, the company's, the "
            "server's).",
        ),
    )


def _network_unreachable(f: Facts) -> Advice:
    return Advice(
        "The server cannot be reached from this network",
        f"There is no network route from this computer to {f.context.host}: the network is "
        "down, a VPN is needed, or the address is only reachable over IPv6/IPv4 and this "
        "computer lacks it.",
        (
            "Check this computer's network connection and, for an internal server, the VPN.",
            f"Check that {f.context.host} is the right server and reachable from here (e.g. "
            "ping or a traceroute).",
            "Run the test again once the network is back.",
        ),
    )


def _connect_timeout(f: Facts) -> Advice:
    port_25 = (
        " Internet providers and cloud hosts commonly block outgoing port 25."
        if f.port == 25
        else ""
    )
    return Advice(
        "No answer when connecting",
        f"Connecting to {f.context.host} on port {f.port} got no answer at all. A firewall "
        f"that silently drops the port is the usual reason, less often a server that is down."
        f"{port_25}",
        (
            f"Use the submission ports: {_S.port} 587 with {_S.security} starttls, or 465 with "
            "implicit_tls.",
            f"Ask the network team whether outgoing connections to port {f.port} are allowed "
            "from this computer.",
            f"Check that {_S.host} is right and the server is up; then test again.",
        ),
    )


# ---- tls


def _certificate_expired(f: Facts) -> Advice:
    not_yet = f.failure.verify_code == 9 or f.says("not yet valid")
    if not_yet:
        explanation = (
            "The server's certificate is not valid yet. That usually means this computer's "
            "clock is wrong (or the server's certificate was issued for a future date)."
        )
        steps = (
            "Check this computer's date, time and time zone; then test again.",
            "If the clock is right, ask the server's administrator about the certificate's "
            "validity dates.",
        )
    else:
        explanation = (
            "The server's certificate has expired, so mailkit cannot tell the real server "
            "from an impostor and did not send anything over the connection."
        )
        steps = (
            "Ask the server's administrator to renew the certificate.",
            "Check that this computer's clock is right; a wrong clock makes valid "
            "certificates look expired.",
        )
    return Advice(
        "The server's certificate is not valid now",
        explanation,
        (
            *steps,
            "Keep verification on: mailkit has no switch to accept a certificate outside its "
            "validity dates.",
        ),
    )


def _certificate_wrong_host(f: Facts) -> Advice:
    return Advice(
        "The certificate is for another server name",
        f"The server presented a certificate that does not cover the name {f.context.host!r}. "
        f"Either {_S.host} uses an alias the certificate does not list, or the connection "
        "reaches a "
        "different server than intended.",
        (
            f"Set {_S.host} to the name the certificate is issued for (the probe panel shows its "
            "subject and alternative names), e.g. the provider's documented server name "
            "instead of an IP address or a CNAME.",
            "If that name really is the server's, ask its administrator for a certificate "
            "that lists it.",
            "Keep verification on: a name mismatch is exactly what an interception looks like.",
        ),
    )


_UNTRUSTED_REASONS = {
    2: "the certificate of its issuer is not available",
    18: "the certificate is self-signed",
    19: "the chain ends in a self-signed root that is not trusted here",
    20: "its issuer is not a certificate authority this computer trusts",
    21: "the certificate's signature cannot be checked against a trusted issuer",
}


def _certificate_untrusted(f: Facts) -> Advice:
    reason = _UNTRUSTED_REASONS.get(f.failure.verify_code or -1)
    if reason is None:
        reason = f.detail or "the certificate chain could not be verified"
    return Advice(
        "The server's certificate is not trusted",
        f"mailkit could not verify the server's certificate: {reason}. This is normal for a "
        "company server with its own (private) certificate authority, and it is also what an "
        "interception looks like, so nothing was sent.",
        (
            f"For a server with a private certificate authority: set {_S.ca_file} to that "
            "authority's certificate (PEM).",
            (
                f"If a company proxy inspects HTTPS, set {_S.ca_file} to the proxy's certificate "
                "authority (ask the network team for it)."
                if f.api
                else f"Or pin the server's certificate: set {_S.pin} to its SHA-256 "
                "fingerprint, checked with the server's administrator."
            ),
            "For a public server, ask its administrator to install the full certificate chain "
            "(including intermediates).",
            "mailkit never switches certificate checking off; the two settings above are the "
            "safe ways to trust a private server.",
        ),
    )


def _pin_mismatch(f: Facts) -> Advice:
    return Advice(
        "The certificate is not the pinned one",
        "The server's certificate has a different SHA-256 fingerprint from the one pinned in "
        f"{_S.pin}. Either the server got a new certificate (renewals change it) or "
        "the connection reaches a different server.",
        (
            "Ask the server's administrator whether the certificate was renewed, and get the "
            "new fingerprint from them (not from this connection).",
            f"Update {_S.pin} with the confirmed fingerprint, or trust the issuing "
            f"authority with {_S.ca_file} so renewals keep working.",
        ),
    )


def _tls_on_plain_port(f: Facts) -> Advice:
    return Advice(
        "TLS was started on a port that expects plain text",
        f"mailkit opened port {f.port} with implicit TLS, but the server there speaks plain "
        "SMTP first (and upgrades with STARTTLS), so the TLS handshake failed at once.",
        (
            f"Set {_S.security} to starttls and {_S.port} to 587 (or auto, which does this).",
            f"Or keep implicit_tls and set {_S.port} to 465, the implicit-TLS port.",
        ),
    )


def _plain_on_tls_port(f: Facts) -> Advice:
    return Advice(
        "Plain text was sent to an implicit-TLS port",
        f"Port {f.port} expects the connection to begin with TLS, but {_S.security} is "
        f"{f.context.security}, so mailkit waited for the server's greeting while the server "
        "waited for a TLS hello — both sides silent until the timeout.",
        (
            f"Set {_S.security} to implicit_tls (or auto) for port 465."
            if f.port == 465
            else f"Set {_S.security} to implicit_tls: port {f.port} expects TLS from the first "
            "byte.",
            f"Or set {_S.port} to 587 and {_S.security} to starttls.",
        ),
    )


def _tls_version_refused(f: Facts) -> Advice:
    return Advice(
        "No TLS version in common",
        "The server and mailkit could not agree on a TLS version. mailkit requires TLS 1.2 or "
        "newer; servers that only speak TLS 1.0/1.1 are outdated and refused."
        + (f" ({f.detail})" if f.detail else ""),
        (
            "Ask the server's administrator to enable TLS 1.2 or 1.3.",
            f"If {_S.tls_min_version} is 1.3 and the server only has TLS 1.2, set "
            f"{_S.tls_min_version} "
            "to 1.2.",
        ),
    )


def _tls_handshake_failed(f: Facts) -> Advice:
    after_starttls = f.failure.phase is Phase.STARTTLS or f.context.security == "starttls"
    hint = (
        " After STARTTLS the server (or a device on the path) did not answer with TLS."
        if after_starttls and f.says("wrong version number", "unexpected eof")
        else ""
    )
    return Advice(
        "The TLS handshake failed",
        "The encrypted connection could not be set up"
        + (f": {f.detail}." if f.detail else ".")
        + hint,
        (
            "Run the probe to see which TLS versions and ciphers the server offers.",
            f"Check that {_S.host}, {_S.port} and {_S.security} match the provider's "
            "documentation "
            "(587 starttls, or 465 implicit_tls).",
            "If a firewall or antivirus inspects mail traffic, ask to exclude this server.",
        ),
    )


# ---- greeting / ehlo


def _greeting_timeout(f: Facts) -> Advice:
    if f.implicit_tls:
        why = (
            "The TLS connection was set up, so the port is right; the server is overloaded, "
            "or a filtering firewall holds the conversation."
        )
    else:
        why = (
            "Connecting in plain text to a port that expects TLS looks exactly like this (both "
            "sides wait); an overloaded server or a filtering firewall can too."
        )
    return Advice(
        "The server did not greet",
        f"The connection to {f.context.host}:{f.port} opened, but no SMTP greeting came. {why}",
        (
            f"If the port expects implicit TLS (usually 465), set {_S.security} to implicit_tls.",
            f"Otherwise use {_S.port} 587 with {_S.security} starttls, as the provider documents.",
            "If the settings are right, wait a few minutes and test again.",
        ),
    )


def _service_unavailable(f: Facts) -> Advice:
    # 421 is the server closing the channel (RFC 5321 §3.8), whatever the step: a passing
    # state on its side (load, maintenance, a per-connection or per-address limit).
    phase = f.failure.phase
    when = (
        "before the conversation began"
        if phase in (Phase.GREETING, Phase.CONNECT)
        else f"during {_STEP[phase]} and closed the connection"
    )
    limit = (
        " Its words point at a sending limit for this account or address."
        if f.says("rate", "too many", "limit", "exceeded", "throttl")
        else ""
    )
    accepted = (
        " The message was not accepted, so it is safe to send it again."
        if phase in (Phase.MAIL, Phase.RCPT, Phase.DATA, Phase.END_OF_DATA)
        else ""
    )
    return Advice(
        "The server is not taking mail right now",
        f"{_reply_words(f)} {when}: 421 means the server is closing the channel — it is "
        f"overloaded, in maintenance, or limiting connections from this address.{limit}"
        f"{accepted}",
        (_RETRY, "If it keeps happening, ask the server's administrator."),
    )


def _ca_file_invalid(f: Facts) -> Advice:
    # The sender's detail is "ca_file: PATH PROBLEM" (see senders.tls.ca_file_problem).
    what = f.detail.split(":", 1)[1].strip() if ":" in f.detail else f.detail
    return Advice(
        "The CA file cannot be used",
        f"The {_S.ca_file} {what}. Without a usable one the server's certificate cannot be "
        "checked, and mailkit never sends without checking it, so nothing was sent.",
        (
            f"Set {_S.ca_file} to the PEM file of the certificate authority that signed the "
            "server's certificate: a text file that starts with -----BEGIN CERTIFICATE----- "
            "(the server's administrator has it).",
            f"Or clear {_S.ca_file} to trust the system's certificate authorities (a public "
            f"provider needs nothing else), or pin the server's certificate with {_S.pin}.",
            "Then run the test again.",
        ),
    )


def _service_refused(f: Facts) -> Advice:
    blocklist = f.says("block", "blacklist", "listed", "spamhaus", "dnsbl", "reputation")
    return Advice(
        "The server refuses mail from this computer",
        f"{_reply_words(f)} and will not take mail from this computer. Usually this computer's "
        "public IP address is on a blocklist, or the server only accepts mail from known "
        "networks." + (" The server's text mentions a blocklist." if blocklist else ""),
        (
            "Read the server's reply: it often names the blocklist and a removal page.",
            "Send through your organisation's authenticated submission server (port 587 or "
            "465) rather than directly.",
            "Ask the server's administrator to allow this computer's public IP address.",
        ),
    )


def _ehlo_rejected(f: Facts) -> Advice:
    return Advice(
        "The server rejected the EHLO greeting",
        f"{_reply_words(f)} to EHLO, the command that introduces this computer by name. Some "
        "servers insist on a fully qualified name that resolves, or limit who may connect.",
        (
            "Read the server's reply for the reason it gives.",
            "If it complains about the host name, give this computer a fully qualified DNS "
            "name, or ask the administrator to accept it.",
            f"Check that {_S.host} and {_S.port} point at a submission server (587 or 465), "
            "not a receiving MX on port 25.",
        ),
    )


def _malformed(f: Facts) -> Advice:
    greeting = f.failure.phase is Phase.GREETING
    if f.detail.startswith("duplicate reply"):
        return Advice(
            "The server answered a command twice",
            f"The server sent two replies to {_STEP[f.failure.phase]}, so its replies no longer "
            "match the commands. mailkit stopped at once rather than guess which reply belongs "
            "to which command; the message was not sent.",
            (
                "Test again; if it repeats, send the transcript to the server's administrator: "
                "SMTP allows one reply per command.",
                "Ask the network team whether a firewall or antivirus inspects SMTP between "
                "here and the server, and exclude this server from it.",
            ),
        )
    return Advice(
        "The server's answer is not SMTP",
        "An answer could not be read as SMTP (not a reply line, or far too long)."
        + (
            " At the greeting this usually means the port belongs to another service "
            "(web, IMAP or POP)."
            if greeting
            else ""
        )
        + (f" ({f.detail})" if f.detail else ""),
        (
            f"Check {_S.port}: SMTP submission is 587 (starttls) or 465 (implicit_tls).",
            "If the port is right, a proxy or firewall may be altering the connection; ask "
            "the network team, and show them the transcript.",
        ),
    )


# ---- starttls


def _starttls_missing(f: Facts) -> Advice:
    return Advice(
        "The server did not offer STARTTLS",
        "Encryption was required, but the server's EHLO answer did not list STARTTLS. Either "
        "the server has no TLS, or a device on the path removed it — a downgrade attack looks "
        "exactly like this. mailkit refused to send the password or the message in clear.",
        (
            f"Use implicit TLS instead: set {_S.security} to implicit_tls and {_S.port} to 465.",
            "Ask the network team whether a firewall inspects SMTP and strips STARTTLS (e.g. "
            'Cisco ASA "ESMTP inspection", other "SMTP fixup" features) and exclude this '
            "server from it.",
            "Only for a trusted relay on this machine or a closed network: set "
            f"{_S.security} to none explicitly (and {_S.auth} to none).",
        ),
    )


def _starttls_refused(f: Facts) -> Advice:
    transient = _kind_by_code(f.code) is Kind.TRANSIENT
    return Advice(
        "The server could not start TLS",
        f"{_reply_words(f)} to STARTTLS"
        + (
            ": its TLS is temporarily unavailable."
            if transient
            else ": it advertised encryption but will not start it."
        )
        + " mailkit did not continue unencrypted.",
        (
            _RETRY
            if transient
            else f"Try implicit TLS: {_S.security} implicit_tls, {_S.port} 465.",
            "If it persists, ask the server's administrator to check its TLS certificate and "
            "configuration.",
        ),
    )


# ---- auth


def _auth_not_offered(f: Facts) -> Advice:
    reasons = []
    if f.port == 25:
        reasons.append("port 25 is for server-to-server relay, where sign-in is rarely offered")
    if f.context.security == "none":
        reasons.append(f"many servers offer AUTH only after STARTTLS, and {_S.security} is none")
    why = (
        ("; ".join(reasons) + ".")
        if reasons
        else (
            "Servers often offer AUTH only on the submission ports (587, 465) and only after TLS."
        )
    )
    return Advice(
        "The server does not offer sign-in (AUTH)",
        f"Sign-in was required ({_S.auth} is {f.context.auth}), but the server's EHLO answer "
        "lists "
        f"no AUTH mechanisms. {why[0].upper()}{why[1:]}",
        (
            f"Set {_S.port} to 587 with {_S.security} starttls (or 465 with implicit_tls), where "
            "sign-in "
            "is offered.",
            "If this server is a relay that accepts mail without sign-in from this network, "
            f"set {_S.auth} to none.",
        ),
    )


def _mechanism_not_offered(f: Facts) -> Advice:
    offered = _mechanisms(f)
    if f.failure.signal is Signal.REPLY:
        explanation = (
            f"{_reply_words(f)}: it does not accept sign-in with {f.context.auth} "
            "(unknown or too weak for it)."
        )
    elif f.context.auth == "auto":
        explanation = (
            f"None of the mechanisms the server offers ({offered}) fits the stored "
            "credentials: a password needs PLAIN, LOGIN or CRAM-MD5, a token needs XOAUTH2."
        )
    else:
        explanation = f"{_S.auth} is {f.context.auth}, but the server offers only {offered}."
    fix = [f"Set {_S.auth} to auto, so mailkit picks the strongest mechanism both sides support."]
    if "XOAUTH2" in f.failure.auth_mechanisms and f.context.auth != "xoauth2":
        fix.append(
            f"The server offers XOAUTH2: run the {f.walkthrough} and set {_S.auth} to xoauth2."
        )
    fix.append(f"If sign-in is offered only after TLS, use {_S.security} starttls or implicit_tls.")
    return Advice("The server does not offer this sign-in method", explanation, tuple(fix))


def _encryption_required(f: Facts) -> Advice:
    return Advice(
        "The server requires encryption first",
        f"{_reply_words(f)}: it accepts this command only over an encrypted connection, and "
        f"{_S.security} is {f.context.security}.",
        (
            f"Set {_S.security} to auto or starttls with {_S.port} 587 (or implicit_tls with "
            f"{_S.port} 465).",
            f"Keep {_S.plaintext_auth} off; it is only for trusted local relays.",
        ),
    )


def _basic_auth_disabled(f: Facts) -> Advice:
    mailbox = f.context.username or "the mailbox"
    tenant_off = f.says("smtpclientauthentication")
    enable_smtp_auth = (
        "Microsoft 365 admin center → Users → Active users → "
        f"{mailbox} → Mail → Manage email apps → tick Authenticated SMTP; or in Exchange "
        f"Online PowerShell: Set-CASMailbox -Identity {mailbox} "
        "-SmtpClientAuthenticationDisabled $false."
    )
    if f.context.auth == "xoauth2":
        return Advice(
            "SMTP AUTH is switched off for this mailbox",
            "Microsoft 365 turned the sign-in away because authenticated SMTP (SMTP AUTH) is "
            "disabled for the organisation or this mailbox. OAuth over SMTP needs it switched "
            "on as well.",
            (
                f"Turn on authenticated SMTP for {mailbox}: {enable_smtp_auth}",
                "If the whole organisation has it off, the mailbox setting above overrides "
                "it; Set-TransportConfig -SmtpClientAuthenticationDisabled $false turns it "
                "on for everyone (prefer per mailbox).",
                "Changes can take up to an hour to apply; then test again.",
            ),
            _refs(f),
        )
    why = (
        "authenticated SMTP (SMTP AUTH) is disabled for the organisation or this mailbox"
        if tenant_off
        else "basic authentication (user name + password) is blocked — by the organisation's "
        "policy, security defaults, or multi-factor sign-in"
    )
    return Advice(
        "Microsoft 365 no longer accepts the password for SMTP",
        f"Microsoft 365 refused the password sign-in because {why}. Microsoft disables basic "
        "authentication for SMTP AUTH by default from the end of 2026, so the lasting fix is "
        "OAuth, not re-enabling passwords.",
        (
            f"Set {_S.auth} to xoauth2 and run mailkit's {_OAUTH_WALKTHROUGH['microsoft365']} for "
            f"{mailbox} (scope https://outlook.office.com/SMTP.Send).",
            "Make sure authenticated SMTP is on for the mailbox (OAuth needs it too): "
            + enable_smtp_auth,
            "Stopgap only, until OAuth is in place: allow basic authentication for SMTP for "
            "this mailbox/tenant (the settings above), knowing Microsoft will switch it off.",
        ),
        _refs(f),
    )


def _oauth_token_invalid(f: Facts) -> Advice:
    if f.failure.signal is Signal.HTTP:
        return _api_token_invalid(f)
    expected = _xoauth2_scope(f.failure.text)
    scope = f.provider.oauth_scope if f.provider else None
    scope_hint = expected or scope
    return Advice(
        "The OAuth token was not accepted",
        "The server rejected the OAuth (XOAUTH2) sign-in: the token has expired or been "
        "revoked, was issued without the scope SMTP needs, or belongs to another account than "
        "the user name." + (f" The server expects the scope {scope_hint}." if scope_hint else ""),
        (
            f"Run the {f.walkthrough} again for {f.context.username or 'this account'} and "
            "sign in as that same account.",
            "Check the granted scope"
            + (f": SMTP needs {scope_hint}" if scope_hint else "")
            + (f" (gmail.send alone is for {_S.mode} gmail_api, not SMTP)." if f.google else "."),
            f"Check that {_S.username} is exactly the signed-in account's address.",
        )
        + (
            (
                "In Microsoft 365, authenticated SMTP must be on for the mailbox even with "
                "OAuth (admin center → user → Mail → Manage email apps).",
            )
            if f.microsoft
            else ()
        ),
        _refs(f),
    )


def _xoauth2_scope(text: str) -> str | None:
    """The scope an XOAUTH2 error challenge (base64 JSON after 334) names, if any."""
    blob = text.strip()
    if not blob or len(blob) > 4096:
        return None
    try:
        data = json.loads(base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError):
        return None
    scope = data.get("scope") if isinstance(data, dict) else None
    return scope if isinstance(scope, str) and len(scope) < 200 else None


def _app_password_required(f: Facts) -> Advice:
    name = f.provider.name if f.provider else "The provider"
    path = (
        f.provider.app_passwords_menu
        if f.provider and f.provider.app_passwords_menu
        else "the account's security settings → App passwords"
    )
    return Advice(
        f"{name} wants an app password",
        f"{name} will not accept the account's normal password from a mail program. It wants "
        "either an app password (a separate generated password for one program) or OAuth.",
        (
            (
                "Turn on 2-Step Verification for the account (app passwords exist only then)."
                if f.google
                else "Turn on two-step sign-in for the account if the provider requires it "
                "for app passwords."
            ),
            f"Create an app password ({path}) and store it as this account's password with "
            f"{_S.password_home}.",
            f"Better: set {_S.auth} to xoauth2 and run the {f.walkthrough}; no password is stored "
            "at all.",
        ),
        _refs(f),
    )


def _provider_mismatch(f: Facts) -> Advice:
    mismatch = f.mismatch
    assert mismatch is not None  # the rule's predicate
    account, server = mismatch.account, mismatch.server
    return Advice(
        f"An account of {account.name} at the server of {server.name}",
        f"{_reply_words(f)} to the sign-in. The user name {f.context.username} is an account "
        f"of {account.name}, but {_S.host} is {f.context.host}, the server of {server.name}: "
        "a provider signs in only its own accounts, so no password or token can work there.",
        (
            f"To send as {f.context.username}: set {_S.host} to {account.smtp_host}, {_S.port} "
            f"to {account.smtp_port} and {_S.security} to {account.security.value}, "
            f"{account.name}'s submission server (the onboarding notebook's Suggest settings "
            "fills these in from the address).",
            f"To send through {server.name}: set {_S.username} to an account of {server.name} "
            "and store that account's password or token.",
        ),
        account.references,
    )


def _bad_credentials(f: Facts) -> Advice:
    user = f.context.username or "(none set)"
    explanation = (
        f"{_reply_words(f)}: it rejected the user name and password. The user name used was {user}."
    )
    fix: list[str] = []
    if f.google:
        explanation += (
            " Google does not accept the account's normal password from mail programs, so a "
            "correct password is refused too unless it is an app password."
        )
        fix += [
            "Create an app password (Google Account → Security → 2-Step Verification → App "
            "passwords; 2-Step Verification must be on) and store it as the password.",
            f"Or set {_S.auth} to xoauth2 and run the {f.walkthrough}.",
            f"Set {_S.username} to the full Gmail / Workspace address.",
        ]
    elif f.provider_id == "outlook_com":
        explanation += (
            " Outlook.com accounts sign in from mail programs with OAuth; Microsoft retired "
            "password sign-in for them in 2024."
        )
        fix += [
            f"Set {_S.auth} to xoauth2 and run the {f.walkthrough} for this account.",
            f"Set {_S.username} to the full Outlook.com address.",
        ]
    elif f.microsoft:
        explanation += (
            " With Microsoft 365 this also happens with a correct password when the account "
            "uses multi-factor sign-in or the tenant has security defaults on: both block "
            "password sign-in for SMTP."
        )
        fix += [
            f"Set {_S.username} to the mailbox's full address (user principal name) and store the "
            "password again.",
            f"If the account uses multi-factor sign-in or security defaults, set {_S.auth} to "
            f"xoauth2 and run the {f.walkthrough}; basic authentication is disabled by default "
            "from the end of 2026 anyway.",
            "Check in the Microsoft 365 admin center that authenticated SMTP is on for the "
            "mailbox (user → Mail → Manage email apps).",
        ]
    elif f.provider is not None and f.provider.app_passwords:
        explanation += f" {f.provider.name} expects mail programs to sign in with an app password."
        fix += [
            f"Create an app password ({f.provider.app_passwords_menu}) and store it as the "
            "password.",
            f"Set {_S.username} to the full email address.",
        ]
    else:
        fix += [
            f"Check {_S.username} (often the full email address) and store the password again "
            f"with {_S.password_home}.",
            "Sign in to the provider's webmail with the same credentials to rule out a locked "
            "or expired account.",
            "If the account has two-step sign-in, the provider may require an app password "
            "or OAuth.",
        ]
    return Advice("User name or password rejected", explanation, tuple(fix), _refs(f))


def _auth_temporary_failure(f: Facts) -> Advice:
    many = f.says("too many", "rate", "limit")
    return Advice(
        "Sign-in temporarily failed",
        f"{_reply_words(f)} to the sign-in: a temporary problem on the server's side"
        + (", here because of too many sign-in attempts." if many else ".")
        + " The credentials were not judged wrong.",
        (
            _RETRY,
            "If it persists, check the account in the provider's webmail (a security "
            "challenge may be waiting).",
        ),
    )


def _refs(f: Facts) -> tuple[str, ...]:
    return f.provider.references if f.provider else ()


# ---- envelope and data


def _auth_required(f: Facts) -> Advice:
    microsoft = f.microsoft or f.enhanced == "5.7.57"
    explanation = (
        f"{_reply_words(f)}: it accepts mail only from signed-in clients, and this send did "
        f"not sign in ({_S.auth} is {f.context.auth})."
    )
    fix = [
        f"Set {_S.auth} to auto (or the mechanism the provider documents) and store the "
        f"account's password with {_S.password_home}, or run the {f.walkthrough} for a token.",
        f"Set {_S.username} to the mailbox's address.",
    ]
    if microsoft:
        explanation += " Microsoft 365 rejects anonymous mail on its submission server."
        fix.append(
            "In Microsoft 365, turn on authenticated SMTP for the mailbox (admin center → "
            "user → Mail → Manage email apps), or use xoauth2 with the Microsoft OAuth "
            "walkthrough."
        )
    return Advice("The server requires sign-in", explanation, tuple(fix))


def _send_as_denied(f: Facts) -> Advice:
    sender = f.context.from_address or "the From address"
    user = f.context.username or "the signed-in account"
    own = (
        f"the signed-in mailbox's own address ({user})" if "@" in user else f"{user}'s own address"
    )
    return Advice(
        "Not allowed to send as this From address",
        f"The server accepted the sign-in as {user} but does not let that account send as "
        f"{sender}.",
        (
            f"Either set {_S.from_address} to {own},",
            f'or grant {user} "Send As" permission on {sender}'
            + (
                " (Exchange admin center → Recipients → Mailboxes → "
                f"{sender} → Delegation → Send as; or in Exchange Online PowerShell: "
                f"Add-RecipientPermission -Identity {sender} -Trustee {user} -AccessRights "
                "SendAs), then allow up to an hour before testing again."
                if f.microsoft or f.enhanced in ("5.7.60", "5.2.252")
                else " on the mail server (ask its administrator)."
            ),
        ),
        _refs(f),
    )


def _sender_rejected(f: Facts) -> Advice:
    sender = f.context.from_address or "(none set)"
    return Advice(
        "The From address was rejected",
        f"{_reply_words(f)} to MAIL FROM {sender}. Most providers only let an account send "
        "from its own address (or addresses it is allowed to use).",
        (
            f"Set {_S.from_address} to the address of the account in {_S.username}, or to an "
            "alias the "
            "provider has confirmed for it.",
            "Check the From address for typos and that its domain exists.",
            "If the organisation sends for many users from one account, give that account "
            "permission to send as them on the server.",
        ),
    )


def _relay_denied(f: Facts) -> Advice:
    signed_in = f.context.auth not in ("none", "")
    explanation = (
        f"{_reply_words(f)}: it will not pass mail on to the recipient's domain for this "
        "client. Servers relay only for clients that signed in or for networks they trust."
    )
    if signed_in:
        explanation += (
            f" This send signed in as {f.context.username or 'an account'}, which is not "
            "allowed to relay to outside domains here."
        )
    if signed_in:
        fix = [
            f"Check that {_S.host} and {_S.port} are the provider's submission server (587 or "
            "465); a "
            "receiving server (MX, port 25) never relays to other domains.",
            "Ask the server's administrator to let this account send to outside domains.",
        ]
    else:
        fix = [
            f"Sign in: set {_S.auth} to auto and store the account's password or token (a "
            "submission server on 587/465 relays for signed-in users).",
            "Or ask the server's administrator to allow this computer's address to relay "
            "(Postfix mynetworks, an Exchange receive connector, a Microsoft 365 connector).",
        ]
    if f.microsoft:
        fix.append(
            "Microsoft 365: direct send through *.mail.protection.outlook.com reaches only the "
            "tenant's own domains; use smtp.office365.com with sign-in, or an inbound "
            "connector for this IP address."
        )
    return Advice("The server refuses to relay", explanation, tuple(fix))


def _recipient_rejected(f: Facts) -> Advice:
    return Advice(
        "The recipient address was rejected",
        f"{_reply_words(f)} for the recipient: the address does not exist there or does not "
        "accept mail from this sender.",
        (
            "Check the test recipient's address for typos.",
            "Try another recipient (e.g. your own mailbox) to confirm the settings work.",
        ),
    )


def _greylisted(f: Facts) -> Advice:
    return Advice(
        "Greylisted: the server asks to try again later",
        f"{_reply_words(f)}: the receiving server defers mail from senders it does not know "
        "yet and expects them to retry in a few minutes. A normal mail server would retry "
        "on its own; a test send does not.",
        (
            "Wait 5 to 15 minutes and run the test again; it is usually accepted then.",
            "Nothing in the settings needs to change.",
        ),
    )


def _mailbox_full(f: Facts) -> Advice:
    return Advice(
        "The recipient's mailbox is full",
        f"{_reply_words(f)}: the recipient's mailbox is over its storage quota. The settings "
        "work; the recipient has to make room.",
        ("Send the test to another recipient, or ask the recipient to empty their mailbox.",),
    )


def _rate_limited(f: Facts) -> Advice:
    return Advice(
        "Sending limit reached",
        f"{_reply_words(f)}: too many messages, recipients or connections in a short time for "
        "this account or address. Providers limit sending per minute and per day.",
        (
            "Wait and test again later (daily limits reset after up to 24 hours).",
            "Send tests to fewer recipients at once, and lower bulk-test concurrency.",
            "For regular large volumes, ask the provider about higher limits or a relay service.",
        ),
    )


def _message_too_large(f: Facts) -> Advice:
    return Advice(
        "The message is too large",
        f"{_reply_words(f)}: the message is bigger than the server accepts.",
        (
            "Send the test without attachments, or smaller ones.",
            "Check the size limit the server advertises (EHLO SIZE, shown by the probe).",
        ),
    )


def _message_rejected(f: Facts) -> Advice:
    return Advice(
        "The message was rejected after it was sent",
        f"{_reply_words(f)} after receiving the whole message: its content or the sender's "
        "reputation broke a policy (spam or virus filter, SPF / DKIM / DMARC, a content "
        "rule).",
        (
            "Read the server's reply for the rule it names.",
            "Check that the From domain's SPF record includes this server and that DKIM / "
            "DMARC are set up for it.",
            "Send the standard test message (no attachments) to confirm the settings "
            "themselves work.",
        ),
    )


def _outcome_unknown(f: Facts) -> Advice:
    event = {
        Signal.TIMEOUT: "did not come in time",
        Signal.MALFORMED: "could not be read (it was not an SMTP reply)",
    }.get(f.failure.signal, "never came: the connection was closed first")
    return Advice(
        "Unknown whether the message was delivered",
        f"The whole message was sent, but the server's final answer {event}. The server may "
        "already have accepted it: the message may have been delivered.",
        (
            "Check the recipient's inbox (and spam folder) before sending again, to avoid a "
            "duplicate.",
            "If it did not arrive within a few minutes, test again.",
            f"If this repeats, raise {_S.command_timeout} — the server may "
            "be scanning the message slowly.",
        ),
    )


def _disconnected(f: Facts) -> Advice:
    phase = f.failure.phase
    if phase is Phase.DATA:
        explanation = (
            "The server closed the connection while the message was being sent. The message "
            "was NOT accepted, so it is safe to send it again."
        )
    elif phase is Phase.QUIT:
        return Advice(
            "The server closed the connection at the end",
            "The server closed the connection while saying goodbye; the message had already "
            "been accepted.",
            ("Nothing to fix: check the recipient's inbox for the test message.",),
        )
    elif phase is Phase.GREETING:
        explanation = (
            "The server closed the connection before greeting. Servers do this to clients on "
            "a blocklist or over a connection limit; a port that expects TLS may do it too."
        )
    else:
        explanation = f"The server closed the connection during {_STEP[phase]}, without an answer."
    return Advice(
        "The server closed the connection",
        explanation,
        (
            "Test again; a single dropped connection is often temporary.",
            "If it repeats at the same step, look at the transcript's last lines and check "
            f"{_S.host}, {_S.port} and {_S.security} against the provider's documentation.",
        ),
    )


def _command_timeout(f: Facts) -> Advice:
    phase = f.failure.phase
    safe = (
        " The message was not accepted, so it is safe to send it again."
        if phase in (Phase.DATA, Phase.RCPT, Phase.MAIL)
        else ""
    )
    return Advice(
        "The server stopped answering",
        f"The server did not answer during {_STEP[phase]} within the timeout.{safe}",
        (
            "Test again in a few minutes.",
            f"If the server is just slow, raise {_S.command_timeout}.",
        ),
    )


def _server_error(f: Facts) -> Advice:
    if f.failure.signal is Signal.MISSING:
        named = _first_word(f.detail)
        known = named in FIELDS
        name = setting(named) if known else named or "the setting"
        # The sender names the setting in Python ("from_address: ..."); each face its own way.
        detail = name + f.detail.strip()[len(named) :] if known else f.detail
        return Advice(
            "A setting is missing or not valid",
            "The send cannot start: a setting it needs is missing or not valid"
            + (f" ({detail})." if detail else "."),
            (f"Fill in or correct {name} for this user or the organisation, then test again.",),
        )
    if f.failure.signal is Signal.NOT_OFFERED and _first_word(f.detail) == "smtputf8":
        return Advice(
            "The server cannot take international addresses",
            "An address in this send has non-ASCII characters before the @, which needs the "
            "server's SMTPUTF8 extension, and this server does not offer it.",
            (
                "Use an ASCII address for the From address and the test recipient (an "
                "international domain after the @ is fine).",
                "Or send through a server that offers SMTPUTF8 (the probe lists its extensions).",
            ),
        )
    if f.failure.signal is Signal.NOT_OFFERED:
        return Advice(
            "The server lacks a feature this send needs",
            "The server did not advertise an extension the send depends on"
            + (f": {f.detail}." if f.detail else "."),
            (
                f"Check that {_S.host} and {_S.port} point at a submission server (587 or 465).",
                "Ask the server's administrator whether the extension can be enabled.",
            ),
        )
    if f.failure.signal in (Signal.HTTP, Signal.OAUTH):
        return Advice(
            "The service reported an error",
            f"{_answered(f)} during {_STEP[f.failure.phase]}. The reason is in its answer.",
            (
                "Read the answer's message; it usually names the problem.",
                "If it is unclear, send the transcript to whoever runs the service (the "
                "provider's support, or your IT for a company proxy).",
            ),
            _refs(f),
        )
    transient = _kind_by_code(f.code) is Kind.TRANSIENT
    where = _STEP[f.failure.phase]
    return Advice(
        "The server reported an error",
        f"{_reply_words(f)} during {where}"
        + (
            ": a temporary problem on its side."
            if transient
            else ". The reason is in the server's reply."
        ),
        (
            _RETRY if transient else "Read the server's reply; it usually names the problem.",
            "If it persists, send the transcript to the server's administrator.",
        ),
    )


# ---- OAuth consent and tokens, mail APIs
#
# Google and Microsoft name the same problems differently; each function tailors its steps to
# the provider the facts point at (the API host, the context's oauth_provider, or the
# provider's own error words such as AADSTS codes).


def _api_name(f: Facts) -> str:
    if f.google:
        return "the Gmail API"
    if f.microsoft:
        return "Microsoft Graph"
    return "the mail API"


def _service(f: Facts) -> str:
    """Who answered: the sign-in service for consent and refresh, else the mail API."""
    if f.failure.phase in (Phase.CONSENT, Phase.TOKEN):
        if f.google:
            return "Google's sign-in service"
        if f.microsoft:
            return "Microsoft's sign-in service (Entra ID)"
        return "the OAuth sign-in service"
    return _api_name(f)


def _answered(f: Facts) -> str:
    """Opens an explanation: "Microsoft Graph answered HTTP 403 (ErrorAccessDenied)"."""
    service = _service(f)
    status = f" HTTP {f.code}" if f.code is not None else " with an error"
    error = f" ({f.error})" if f.error else ""
    return f"{service[0].upper()}{service[1:]} answered{status}{error}"


_GOOGLE_CONSOLE = "Google Cloud console (console.cloud.google.com) → APIs & Services"
_ENTRA_APP = "Microsoft Entra admin center (entra.microsoft.com) → App registrations → your app"
_GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
_GOOGLE_FULL = "https://mail.google.com/"


def _scope_needed(f: Facts) -> str:
    """The scope this send needs, by provider and by SMTP or API."""
    if f.google:
        return _GMAIL_SEND if f.api else _GOOGLE_FULL
    if f.microsoft:
        return "Mail.Send (Microsoft Graph)" if f.api else "SMTP.Send (Office 365 Exchange Online)"
    return "the send scope the provider documents"


def _oauth_client_invalid(f: Facts) -> Advice:
    public_off = f.says("AADSTS7000218", "client_assertion", "client_secret")
    if f.microsoft:
        explanation = (
            f"{_answered(f)}: it does not accept this app (client id) for this sign-in."
            + (
                " The app registration requires a client secret, i.e. public client flows "
                "are switched off, which the device code and desktop sign-in need."
                if public_off
                else " Usually the client id or tenant is wrong, or the app registration is "
                "not set up for a desktop (public) client."
            )
        )
        fix: tuple[str, ...] = (
            f'{_ENTRA_APP} → Authentication → Advanced settings → set "Allow public client '
            'flows" to Yes, then Save.',
            f"Set {_S.client_id} to the Application (client) ID from the app's Overview page, "
            f"and {_S.tenant} to its Directory (tenant) ID or domain (AADSTS700016 means the "
            "app does not exist in that tenant).",
            f"{_ENTRA_APP} → Authentication → Add a platform → Mobile and desktop applications, "
            "with the redirect URI http://localhost.",
        )
    elif f.google:
        explanation = (
            f"{_answered(f)}: Google does not recognise the OAuth client, or its secret does "
            "not match (the client was deleted, the secret reset, or the JSON belongs to "
            "another project)."
        )
        fix = (
            f"{_GOOGLE_CONSOLE} → Credentials: check that the OAuth client ID exists and is of "
            "type Desktop app; download its JSON again.",
            "Load that client JSON into mailkit again (client id and secret go together; "
            "resetting the secret in the console invalidates the stored one).",
            "If the client is gone, create a new OAuth client ID (Desktop app) in the project "
            "where the Gmail API is enabled.",
        )
    else:
        explanation = f"{_answered(f)}: the OAuth client (id or secret) is not accepted."
        fix = (
            f"Check {_S.client_id} (and the client secret, if the provider uses one) against "
            "the provider's app registration.",
            "Make sure the app is registered as a desktop / public client.",
        )
    return Advice("The OAuth app (client) is not accepted", explanation, fix, _refs(f))


def _oauth_redirect_mismatch(f: Facts) -> Advice:
    if f.microsoft:
        fix: tuple[str, ...] = (
            f"{_ENTRA_APP} → Authentication → Add a platform → Mobile and desktop "
            "applications → add the redirect URI http://localhost (Entra accepts any port on "
            "a loopback address), then Save.",
            "Or use the device code sign-in, which needs no redirect URI.",
        )
    elif f.google:
        fix = (
            f"{_GOOGLE_CONSOLE} → Credentials: use an OAuth client ID of type Desktop app; it "
            "accepts the loopback redirect (http://127.0.0.1 or http://localhost on any port).",
            "A Web application client accepts only the exact URIs under Authorized redirect "
            "URIs; create a Desktop app client for mailkit instead of adding ports there.",
        )
    else:
        fix = (
            "Register a loopback redirect URI (http://localhost) for the app with the provider.",
        )
    return Advice(
        "The sign-in's redirect address is not registered",
        f"{_answered(f)}: the address the browser is sent back to after sign-in (a loopback "
        "address on this computer) is not registered for this app.",
        fix,
        _refs(f),
    )


def _consent_denied(f: Facts) -> Advice:
    admin = f.error.lower() == "consent_required" or f.says("AADSTS65001", "admin consent")
    explanation = f"{_answered(f)}: " + (
        "the permission was not granted: the app needs consent that users may not give."
        if admin
        else "the sign-in was refused — Cancel or Deny was chosen on the consent page, or "
        "a policy of the organisation does not let this app in."
    )
    if f.microsoft:
        fix: tuple[str, ...] = (
            "Run the Microsoft OAuth walkthrough again and choose Accept on the permissions page.",
            f"If users may not consent: {_ENTRA_APP} → API permissions → add the delegated "
            f'permission {_scope_needed(f)} → "Grant admin consent for <tenant>" (needs an '
            "administrator).",
            "Check Enterprise applications → Consent and permissions for the tenant's user "
            "consent settings.",
        )
    elif f.google:
        fix = (
            "Run the Google OAuth walkthrough again and allow the access (tick the box for "
            "sending mail if Google shows one).",
            f"If the app's OAuth consent screen is in Testing: {_GOOGLE_CONSOLE} → OAuth "
            "consent screen → Audience → add the account under Test users.",
            "In Google Workspace an administrator may block unverified apps: Admin console → "
            "Security → Access and data control → API controls → App access control → trust "
            "the app's client id.",
        )
    else:
        fix = ("Sign in again and accept the requested permissions.",)
    return Advice("Sign-in was refused", explanation, fix, _refs(f))


def _device_code_blocked(f: Facts) -> Advice:
    return Advice(
        "The tenant blocks device-code sign-in",
        f"{_answered(f)}: a Conditional Access policy of the Microsoft 365 tenant blocks the "
        "device code flow (AADSTS53003), which is often done because device codes are abused "
        "for phishing. The account and app are fine; this way of signing in is not allowed.",
        (
            "Use the browser sign-in instead: in the Microsoft OAuth walkthrough choose the "
            "authorization-code flow with the loopback redirect (the browser must run on the "
            "computer that runs the notebook kernel).",
            "Or ask the tenant administrator to exclude this app or these users from the policy "
            "(Entra admin center → Protection → Conditional Access → the policy → Conditions → "
            "Authentication flows → Device code flow).",
        ),
        _refs(f),
    )


def _device_code_declined(f: Facts) -> Advice:
    return Advice(
        "The device-code sign-in was declined",
        "The code was entered, but the sign-in was then cancelled or declined on the "
        "device-login page, so no token was issued.",
        (
            "Run the Microsoft OAuth walkthrough again, enter the new code at "
            "https://microsoft.com/devicelogin and approve the sign-in.",
            f"Sign in with the mailbox's own account (the one in {_S.username} / "
            f"{_S.from_address}).",
        ),
        _refs(f),
    )


def _device_code_expired(f: Facts) -> Advice:
    return Advice(
        "The device code expired",
        "Nobody entered the code and finished signing in before it expired (about 15 "
        "minutes), so no token was issued.",
        (
            "Run the Microsoft OAuth walkthrough again and enter the new code promptly at "
            "https://microsoft.com/devicelogin.",
        ),
        _refs(f),
    )


def _consent_timeout(f: Facts) -> Advice:
    loopback = f.detail in ("loopback", "auth_code")
    return Advice(
        "Sign-in was not finished in time",
        "mailkit waited for the sign-in to finish and gave up: nobody completed it in the "
        "browser in time"
        + (
            ", or the browser could not reach the loopback address on the computer that runs "
            "the notebook kernel."
            if loopback
            else "."
        ),
        (
            f"Run the {f.walkthrough} again and complete the sign-in right away.",
            "If the notebook runs on another computer (a server, Binder, JupyterHub), the "
            "loopback redirect cannot reach it: use the device code sign-in (Microsoft) or "
            "paste the redirected address back into the walkthrough (Google).",
        ),
        _refs(f),
    )


def _state_mismatch(f: Facts) -> Advice:
    return Advice(
        "The sign-in answer does not belong to this sign-in",
        "The address the browser came back with carries a different state value than the "
        "sign-in mailkit started. It comes from an older sign-in link or another browser tab — "
        "or someone tries to slip their own sign-in in — so mailkit did not use it.",
        (
            f"Start the {f.walkthrough} again and use only the newest sign-in link.",
            "When pasting the redirected address, paste the one from that newest sign-in.",
        ),
        _refs(f),
    )


def _pkce_rejected(f: Facts) -> Advice:
    return Advice(
        "The provider refused the sign-in's proof key",
        f"{_answered(f)}: the code verifier (PKCE) does not match the sign-in that produced "
        "the code. The code belongs to another sign-in attempt — an older link, or the "
        "walkthrough was restarted between opening the link and finishing.",
        (f"Start the {f.walkthrough} again and finish it in one go, with the newest link.",),
        _refs(f),
    )


def _code_invalid(f: Facts) -> Advice:
    return Advice(
        "The sign-in code is no longer valid",
        f"{_answered(f)}: the authorization code has expired (they last minutes) or was "
        "already used — e.g. a redirected address pasted twice or a reloaded page.",
        (
            f"Run the {f.walkthrough} again and finish it promptly; paste each redirected "
            "address only once.",
        ),
        _refs(f),
    )


def _token_revoked(f: Facts) -> Advice:
    if f.google:
        why = (
            " With Google this happens when the access was removed (Google Account → Security "
            "→ Your connections to third-party apps), the password was changed, the token was "
            "unused for six months, or the app's consent screen is in Testing (refresh tokens "
            "then expire after 7 days)."
        )
        extra: tuple[str, ...] = (
            f"If the consent screen is in Testing: {_GOOGLE_CONSOLE} → OAuth consent screen → "
            "Publish app (In production), so stored tokens stop expiring after a week.",
        )
    elif f.microsoft:
        why = (
            " With Microsoft this happens when an administrator revoked the user's sessions, "
            "the password was reset, the token was unused for 90 days, or a policy now "
            "requires multi-factor sign-in (AADSTS50076) or a new consent."
        )
        extra = (
            "If it keeps happening, ask the tenant administrator whether sign-in frequency or "
            "Conditional Access policies end sessions for this app.",
        )
    else:
        why = ""
        extra = ()
    return Advice(
        "The stored sign-in is no longer valid",
        f"{_answered(f)}: the stored refresh token was refused — it was revoked or has "
        f"expired, so mailkit cannot get a new access token.{why}",
        (
            f"Run the {f.walkthrough} again for {f.context.username or 'this account'}; it "
            "replaces the stored token.",
            *extra,
        ),
        _refs(f),
    )


def _token_expired(f: Facts) -> Advice:
    return Advice(
        "The access token has expired",
        f"{_answered(f)}: the access token is past its lifetime. mailkit refreshes tokens "
        "shortly before a send, so this means the token was given without a way to refresh "
        "it, or this computer's clock is wrong.",
        (
            "Run the test again: a stored sign-in is refreshed first.",
            "Check this computer's date, time and time zone.",
            f"If it repeats, run the {f.walkthrough} again so a refresh token is stored.",
        ),
        _refs(f),
    )


def _api_token_invalid(f: Facts) -> Advice:
    if f.microsoft:
        detail = (
            " Graph accepts only tokens issued for https://graph.microsoft.com; a token for "
            "SMTP (https://outlook.office.com/SMTP.Send) is refused here."
        )
    elif f.google:
        detail = (
            " The Gmail API accepts tokens issued by Google for this project with the scope "
            f"{_GMAIL_SEND} (or {_GOOGLE_FULL})."
        )
    else:
        detail = ""
    return Advice(
        "The OAuth token was not accepted",
        f"{_answered(f)}: the access token is not valid for it — revoked, issued for another "
        f"service, or damaged.{detail}",
        (
            f"Run the {f.walkthrough} again for the {_S.mode} in use (scope {_scope_needed(f)}) "
            "and "
            "sign in as the mailbox's own account.",
            f"Check that {_S.username} / {_S.from_address} is the signed-in account.",
        ),
        _refs(f),
    )


def _insufficient_scope(f: Facts) -> Advice:
    at_consent = f.failure.signal is Signal.OAUTH
    explanation = (
        f"{_answered(f)}: the app asked for a scope it is not allowed to request."
        if at_consent
        else f"{_answered(f)}: the token does not carry the permission (scope) sending needs: "
        f"{_scope_needed(f)}."
    )
    if f.google:
        fix: tuple[str, ...] = (
            f"{_GOOGLE_CONSOLE} → OAuth consent screen → Data access (Scopes): add "
            f"{_GMAIL_SEND} for the Gmail API, or {_GOOGLE_FULL} for SMTP. "
            f"{_GOOGLE_FULL} is a restricted scope (Google verification for production apps); "
            f"gmail.send is enough for {_S.mode} gmail_api.",
            "Run the Google OAuth walkthrough again and tick the permission to send mail on "
            "Google's consent page (unticked boxes are not granted).",
        )
    elif f.microsoft:
        fix = (
            f"{_ENTRA_APP} → API permissions → Add a permission → Microsoft Graph → Delegated "
            "permissions → Mail.Send (for SMTP: Office 365 Exchange Online → SMTP.Send) → then "
            '"Grant admin consent for <tenant>".',
            "Run the Microsoft OAuth walkthrough again so the new token carries the permission.",
        )
    else:
        fix = (f"Sign in again and grant {_scope_needed(f)}.",)
    return Advice("The token lacks the permission to send", explanation, fix, _refs(f))


_API_DISABLED = When(
    lambda f: f.error.lower() in ("accessnotconfigured", "service_disabled")
) | says("has not been used", "it is disabled", "api is disabled", "not been enabled")


def _api_access_denied(f: Facts) -> Advice:
    if f.google and _API_DISABLED(f):
        return Advice(
            "The Gmail API is not enabled for the app's project",
            f"{_answered(f)}: the Google Cloud project that owns the OAuth client has the "
            "Gmail API switched off (or never enabled).",
            (
                f"{_GOOGLE_CONSOLE} → Library → Gmail API → Enable, in the project of the "
                "OAuth client id.",
                "Wait a few minutes for it to take effect, then test again.",
            ),
            _refs(f),
        )
    if f.google:
        fix: tuple[str, ...] = (
            f"Check the token's scope: {_S.mode} gmail_api needs {_GMAIL_SEND}; run the Google "
            "OAuth walkthrough again if in doubt.",
            "In Google Workspace, ask the administrator whether API access for this app or "
            "user is restricted (Admin console → Security → API controls) or Gmail is off for "
            "the user.",
            f"Check in {_GOOGLE_CONSOLE} that the Gmail API is enabled for the project.",
        )
    elif f.microsoft:
        fix = (
            f"{_ENTRA_APP} → API permissions: Microsoft Graph delegated Mail.Send must be "
            'listed and granted ("Grant admin consent for <tenant>").',
            "The signed-in user needs an Exchange Online mailbox (a licence with Exchange); "
            "sending as another mailbox needs Send As permission on it.",
            "An Exchange application access policy or RBAC for Applications may limit which "
            "mailboxes the app can use; ask the Exchange administrator.",
        )
    else:
        fix = ("Check the app's API permissions and the account's access to the API.",)
    return Advice(
        "The API refused access",
        f"{_answered(f)}: the token is valid but this account or app may not send through the API.",
        fix,
        _refs(f),
    )


def _retry_words(f: Facts) -> str:
    wait = f.failure.retry_after
    if wait is None:
        return "Wait a minute or two and test again."
    return f"Wait {wait:g} seconds (the server's Retry-After) and test again."


def _api_rate_limited(f: Facts) -> Advice:
    if f.microsoft:
        why = (
            " Exchange Online throttles Graph per app and mailbox (requests per 10 minutes, "
            "concurrent requests) and limits recipients per day."
        )
    elif f.google:
        why = (
            " Google limits Gmail API requests per user per second and mail per day (about "
            "500 recipients for Gmail, 2,000 for Workspace)."
        )
    else:
        why = ""
    return Advice(
        "Sending limit reached",
        f"{_answered(f)}: too many requests or messages in a short time for this account or "
        f"app.{why}",
        (
            _retry_words(f),
            "Lower bulk-test concurrency and send tests to fewer recipients at once.",
        ),
        _refs(f),
    )


def _api_server_error(f: Facts) -> Advice:
    if f.microsoft:
        health = "Microsoft 365 admin center → Health → Service health"
    elif f.google:
        health = "the Google Workspace Status Dashboard (google.com/appsstatus)"
    else:
        health = "the provider's service status page"
    return Advice(
        "The service had a temporary problem",
        f"{_answered(f)}: an error on the provider's side, not in mailkit's settings.",
        (_retry_words(f), f"If it persists, check {health}."),
        _refs(f),
    )


# --------------------------------------------------------------------------- the table

# Short names keep the table one rule to a line where possible.
CONFIG, TRANSIENT, PERMANENT = Kind.CONFIGURATION, Kind.TRANSIENT, Kind.PERMANENT
BY_CODE = None  # the kind follows the reply code: 4xx transient, 5xx permanent
MISSING, POLICY, TIMEOUT = Signal.MISSING, Signal.POLICY, Signal.TIMEOUT
DISCONNECTED, REPLY, NOT_OFFERED = Signal.DISCONNECTED, Signal.REPLY, Signal.NOT_OFFERED

_AUTH = at(Phase.AUTH)
_RCPT = at(Phase.RCPT)
_ENVELOPE = at(Phase.MAIL, Phase.RCPT, Phase.DATA, Phase.END_OF_DATA)
_NO_MECHS = When(lambda f: not f.failure.auth_mechanisms)
# 465 is the implicit-TLS port; the sender's probe says so for any port that answers TLS.
_TLS_PORT = port_is(465) | detail_says("implicit tls")
_TYPO = When(lambda f: f.suggested_host is not None)
_TEMPORARY_DNS = detail_says("temporary", "try again", "timed out", "timeout")

_VERIFY = sig(Signal.TLS_VERIFY)
_EXPIRED = verify_code(9, 10) | says("expired", "not yet valid")
_WRONG_HOST = verify_code(62, 64) | says(
    "hostname mismatch", "ip address mismatch", "doesn't match", "does not match"
)
_HANDSHAKE = sig(Signal.TLS_PROTOCOL)
# What OpenSSL says when the peer's first bytes are not TLS at all (e.g. an SMTP greeting).
_NOT_TLS = says(
    "wrong version number",
    "record layer failure",
    "unexpected eof",
    "packet length too long",
    "http request",
    "unknown protocol",
)
# "wrong version number" is deliberately absent: it means "not TLS", not "old TLS".
_TLS_VERSION = says(
    "unsupported protocol",
    "protocol version",
    "no protocols available",
    "version too low",
    "unsupported_protocol",
)

_ENCRYPTION_REQUIRED = (
    reply(538)
    | (sig(REPLY) & enhanced("5.7.11"))
    | (reply(530) & says("starttls", "tls", "encrypt", "secure connection"))
)
# Microsoft: 5.7.139 (SMTP AUTH or basic auth off), 5.7.30 (basic auth removed for good).
_BASIC_OFF = enhanced("5.7.139", "5.7.30") | says(
    "smtpclientauthentication",
    "basic authentication is disabled",
    "basic authentication is not supported",
    "security defaults",
)
# An SMTP send past AUTH with auth still auto signed in with nothing: none was stored.
_UNSIGNED = auth_is("auto") & ~When(lambda f: f.api)
_PASSWORD_MECHS = When(
    lambda f: bool(f.failure.auth_mechanisms & {"PLAIN", "LOGIN", "CRAM-MD5", "NTLM"})
)
# auth auto stops at AUTH with mechanisms on offer only when none fits what is stored.
_NO_MECHANISM_FOR_AUTO = (
    auth_is("auto") & sig(NOT_OFFERED) & ~When(lambda f: not f.failure.auth_mechanisms)
)
_OFFERS_XOAUTH2 = When(lambda f: "XOAUTH2" in f.failure.auth_mechanisms)
_MISMATCH = When(lambda f: f.mismatch is not None)
# Providers that sign mail programs in only with OAuth (basic authentication retired).
_OAUTH_ONLY = frozenset({"outlook_com"})
_NOT_SIGNED_IN = enhanced("5.7.57") | says(
    "authentication required", "must authenticate", "not authenticated"
)
# Microsoft: 5.7.60 at MAIL FROM, 5.2.252 "SendAsDenied" after the message.
_SEND_AS = enhanced("5.7.60", "5.2.252") | says(
    "sendasdenied", "send as", "send-as", "send on behalf"
)
_BLOCKLIST = says("blocked using", "blocklist", "blacklist", "block list", "spamhaus", "dnsbl")
_RATE = says(
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
_MAILBOX_FULL = enhanced("4.2.2", "5.2.2") | says(
    "mailbox full", "mailbox is full", "over quota", "quota exceeded", "exceeded storage"
)
_TOO_LARGE = enhanced("5.3.4", "5.2.3", "4.3.4") | says(
    "too large", "too big", "size limit", "message size", "exceeds the maximum", "maximum size"
)
_BAD_SENDER = enhanced("5.1", "5.7.1") | says(
    "sender", "from address", "rejected", "not owned", "not allowed", "not permitted"
)
_RELAY = enhanced("5.7.54") | says("relay")
# How servers turn away mail from a client that did not sign in (at MAIL or at RCPT).
_REFUSED_UNSIGNED = (at(Phase.MAIL, Phase.RCPT) & (reply(530) | (xx(5) & _NOT_SIGNED_IN))) | (
    _RCPT & xx(5) & (_RELAY | enhanced("5.7.1"))
)
_UNKNOWN_USER = enhanced("5.1") | says(
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
_GREYLIST = (
    reply(450)
    | enhanced("4.7.1")
    | says("greylist", "graylist", "try again later", "please try again", "deferred")
) & ~enhanced("4.1")
_CONTENT = enhanced("5.7") | says(
    "spam", "policy", "virus", "malware", "blocked", "content", "dmarc", "spf", "dkim", "rejected"
)
_OAUTH = sig(Signal.OAUTH)
_HTTP = sig(Signal.HTTP)
_CONSENT = at(Phase.CONSENT)
_DEVICE_BLOCKED = detail_says("device_code") & says("AADSTS53003", "conditional access")
_PKCE = says("code verifier", "code_verifier", "AADSTS501481")
_API_RATE = oauth_error(
    "rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"
) | says("rate limit", "too many requests")
_SCOPE = oauth_error(
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "insufficientPermissions", "insufficient_scope"
) | says("scope", "insufficient permission")

RULES: tuple[Rule, ...] = (
    # -- before any connection: settings, credentials, mailkit's own policy
    Rule(Cause.HOST_MISSING, CONFIG, sig(MISSING) & names("host"), _host_missing),
    Rule(Cause.PASSWORD_MISSING, CONFIG, sig(MISSING) & names("password"), _password_missing),
    Rule(Cause.TOKEN_MISSING, CONFIG, sig(MISSING) & names("token"), _token_missing),
    Rule(Cause.MODE_NOT_SMTP, CONFIG, sig(MISSING, POLICY) & names("mode"), _mode_not_smtp),
    Rule(Cause.SETTING_INVALID, CONFIG, sig(MISSING) & names("ca_file"), _ca_file_invalid),
    Rule(Cause.PLAINTEXT_AUTH_REFUSED, CONFIG, sig(POLICY), _plaintext_auth_refused),
    # -- reaching the server (whatever phase the sender names)
    Rule(Cause.DNS_FAILURE, TRANSIENT, sig(Signal.DNS) & _TEMPORARY_DNS & ~_TYPO, _dns_failure),
    Rule(Cause.DNS_FAILURE, CONFIG, sig(Signal.DNS), _dns_failure),
    Rule(Cause.CONNECTION_REFUSED, CONFIG, sig(Signal.REFUSED), _connection_refused),
    Rule(Cause.NETWORK_UNREACHABLE, TRANSIENT, sig(Signal.UNREACHABLE), _network_unreachable),
    Rule(Cause.CONNECT_TIMEOUT, TRANSIENT, at(Phase.CONNECT) & sig(TIMEOUT), _connect_timeout),
    # -- TLS: the certificate checks first, then the handshake itself
    Rule(Cause.CERTIFICATE_PIN_MISMATCH, CONFIG, sig(Signal.TLS_PIN), _pin_mismatch),
    Rule(Cause.CERTIFICATE_EXPIRED, CONFIG, _VERIFY & _EXPIRED, _certificate_expired),
    Rule(Cause.CERTIFICATE_WRONG_HOST, CONFIG, _VERIFY & _WRONG_HOST, _certificate_wrong_host),
    Rule(Cause.CERTIFICATE_UNTRUSTED, CONFIG, _VERIFY, _certificate_untrusted),
    Rule(Cause.TLS_ON_PLAIN_PORT, CONFIG, _HANDSHAKE & IMPLICIT_TLS & _NOT_TLS, _tls_on_plain_port),
    Rule(Cause.TLS_VERSION_REFUSED, CONFIG, _HANDSHAKE & _TLS_VERSION, _tls_version_refused),
    Rule(Cause.TLS_HANDSHAKE_FAILED, PERMANENT, _HANDSHAKE, _tls_handshake_failed),
    # -- OAuth sign-in and refresh: the provider's error code decides (Failure.enhanced)
    Rule(Cause.STATE_MISMATCH, PERMANENT, _OAUTH & oauth_error("state_mismatch"), _state_mismatch),
    Rule(Cause.CONSENT_TIMEOUT, PERMANENT, _OAUTH & oauth_error("timeout"), _consent_timeout),
    Rule(
        Cause.DEVICE_CODE_BLOCKED,
        CONFIG,
        _OAUTH & oauth_error("access_denied") & _DEVICE_BLOCKED,
        _device_code_blocked,
    ),
    Rule(
        Cause.CONSENT_DENIED,
        PERMANENT,
        _OAUTH & oauth_error("access_denied", "consent_required"),
        _consent_denied,
    ),
    Rule(
        Cause.DEVICE_CODE_DECLINED,
        PERMANENT,
        _OAUTH & oauth_error("authorization_declined"),
        _device_code_declined,
    ),
    Rule(
        Cause.DEVICE_CODE_EXPIRED,
        PERMANENT,
        _OAUTH & oauth_error("expired_token"),
        _device_code_expired,
    ),
    Rule(
        Cause.OAUTH_CLIENT_INVALID,
        CONFIG,
        _OAUTH
        & (
            oauth_error("invalid_client", "unauthorized_client")
            | says("AADSTS700016", "AADSTS7000218")
        ),
        _oauth_client_invalid,
    ),
    Rule(
        Cause.OAUTH_REDIRECT_MISMATCH,
        CONFIG,
        _OAUTH & (oauth_error("redirect_uri_mismatch") | says("AADSTS50011", "AADSTS500113")),
        _oauth_redirect_mismatch,
    ),
    Rule(
        Cause.PKCE_REJECTED,
        PERMANENT,
        _OAUTH & _CONSENT & oauth_error("invalid_grant") & _PKCE,
        _pkce_rejected,
    ),
    Rule(
        Cause.CODE_INVALID,
        PERMANENT,
        _OAUTH & _CONSENT & oauth_error("invalid_grant"),
        _code_invalid,
    ),
    Rule(
        Cause.TOKEN_REVOKED,
        PERMANENT,
        _OAUTH & ~_CONSENT & oauth_error("invalid_grant", "interaction_required"),
        _token_revoked,
    ),
    Rule(
        Cause.INSUFFICIENT_SCOPE,
        PERMANENT,
        _OAUTH & oauth_error("invalid_scope"),
        _insufficient_scope,
    ),
    # -- OAuth endpoints and mail APIs alike: limits and outages pass
    Rule(
        Cause.RATE_LIMITED,
        TRANSIENT,
        (_HTTP | _OAUTH) & (status(429) | (status(403) & _API_RATE)),
        _api_rate_limited,
    ),
    Rule(
        Cause.SERVER_ERROR,
        TRANSIENT,
        (_HTTP | _OAUTH)
        & (status_class(5) | oauth_error("temporarily_unavailable", "server_error")),
        _api_server_error,
    ),
    # -- mail APIs (Gmail API, Graph): the status, then the provider's words
    Rule(
        Cause.TOKEN_EXPIRED,
        PERMANENT,
        _HTTP & status(401) & (says("expired") | oauth_error("ACCESS_TOKEN_EXPIRED")),
        _token_expired,
    ),
    Rule(Cause.OAUTH_TOKEN_INVALID, PERMANENT, _HTTP & status(401), _oauth_token_invalid),
    Rule(
        Cause.SEND_AS_DENIED,
        PERMANENT,
        _HTTP & status(403) & (oauth_error("ErrorSendAsDenied") | _SEND_AS),
        _send_as_denied,
    ),
    Rule(Cause.INSUFFICIENT_SCOPE, PERMANENT, _HTTP & status(403) & _SCOPE, _insufficient_scope),
    Rule(Cause.API_ACCESS_DENIED, PERMANENT, _HTTP & status(403), _api_access_denied),
    # An HTTP 4xx is the request's fault, not a passing state as an SMTP 4xx would be.
    Rule(Cause.SERVER_ERROR, PERMANENT, _HTTP | _OAUTH, _server_error),
    # -- after the final dot, silence is not failure: the server may have taken the message
    # (an answer that is not SMTP is no answer: the server may still have taken it)
    Rule(
        Cause.OUTCOME_UNKNOWN,
        Kind.OUTCOME_UNKNOWN,
        at(Phase.END_OF_DATA) & sig(TIMEOUT, DISCONNECTED, Signal.MALFORMED),
        _outcome_unknown,
    ),
    # -- 421 at any step: the server is closing the channel, a passing state on its side
    Rule(Cause.SERVICE_UNAVAILABLE, TRANSIENT, reply(421), _service_unavailable),
    # -- greeting, ehlo, starttls
    Rule(
        Cause.PLAIN_ON_TLS_PORT,
        CONFIG,
        at(Phase.GREETING) & sig(TIMEOUT) & _TLS_PORT & ~IMPLICIT_TLS,
        _plain_on_tls_port,
    ),
    Rule(Cause.GREETING_TIMEOUT, TRANSIENT, at(Phase.GREETING) & sig(TIMEOUT), _greeting_timeout),
    Rule(Cause.SERVICE_UNAVAILABLE, TRANSIENT, at(Phase.GREETING) & xx(4), _service_unavailable),
    Rule(Cause.SERVICE_REFUSED, PERMANENT, at(Phase.GREETING) & xx(5), _service_refused),
    Rule(Cause.EHLO_REJECTED, BY_CODE, at(Phase.EHLO) & sig(REPLY), _ehlo_rejected),
    Rule(
        Cause.STARTTLS_MISSING,
        CONFIG,
        sig(NOT_OFFERED) & (at(Phase.STARTTLS) | detail_says("starttls")),
        _starttls_missing,
    ),
    Rule(Cause.STARTTLS_REFUSED, BY_CODE, at(Phase.STARTTLS) & sig(REPLY), _starttls_refused),
    # -- auth: what the server offers, then its replies from the most specific down
    Rule(Cause.AUTH_NOT_OFFERED, CONFIG, _AUTH & sig(NOT_OFFERED) & _NO_MECHS, _auth_not_offered),
    # auth auto found nothing to sign in with that the server takes: the credential is missing
    Rule(
        Cause.PASSWORD_MISSING,
        CONFIG,
        _AUTH & _NO_MECHANISM_FOR_AUTO & _PASSWORD_MECHS,
        _password_missing,
    ),
    Rule(
        Cause.TOKEN_MISSING,
        CONFIG,
        _AUTH & _NO_MECHANISM_FOR_AUTO & _OFFERS_XOAUTH2,
        _token_missing,
    ),
    Rule(Cause.MECHANISM_NOT_OFFERED, CONFIG, _AUTH & sig(NOT_OFFERED), _mechanism_not_offered),
    Rule(
        Cause.ENCRYPTION_REQUIRED,
        CONFIG,
        at(Phase.AUTH, Phase.MAIL, Phase.RCPT) & _ENCRYPTION_REQUIRED,
        _encryption_required,
    ),
    # whatever the reply, one provider's account at another's server cannot sign in
    Rule(
        Cause.PROVIDER_MISMATCH,
        CONFIG,
        _AUTH & (xx(5) | (auth_is("xoauth2") & reply(334))) & _MISMATCH,
        _provider_mismatch,
    ),
    Rule(Cause.BASIC_AUTH_DISABLED, CONFIG, _AUTH & xx(5) & _BASIC_OFF, _basic_auth_disabled),
    Rule(
        Cause.APP_PASSWORD_REQUIRED,
        CONFIG,
        _AUTH & reply(534) & (provider_in(_GOOGLE) | says("application-specific password")),
        _app_password_required,
    ),
    Rule(Cause.MECHANISM_NOT_OFFERED, CONFIG, _AUTH & reply(504, 534), _mechanism_not_offered),
    Rule(
        Cause.OAUTH_TOKEN_INVALID,
        PERMANENT,
        _AUTH & auth_is("xoauth2") & (xx(5) | reply(334)),
        _oauth_token_invalid,
    ),
    Rule(
        Cause.BAD_CREDENTIALS,
        PERMANENT,
        _AUTH & (reply(535) | (xx(5) & enhanced("5.7.8", "5.7.3"))),
        _bad_credentials,
    ),
    Rule(Cause.AUTH_TEMPORARY_FAILURE, TRANSIENT, _AUTH & xx(4), _auth_temporary_failure),
    # -- envelope and message; first a refusal of a send that had nothing to sign in with
    Rule(
        Cause.TOKEN_MISSING,
        CONFIG,
        _UNSIGNED & _REFUSED_UNSIGNED & provider_in(_OAUTH_ONLY),
        _token_missing,
    ),
    Rule(Cause.PASSWORD_MISSING, CONFIG, _UNSIGNED & _REFUSED_UNSIGNED, _password_missing),
    Rule(
        Cause.AUTH_REQUIRED,
        CONFIG,
        at(Phase.MAIL, Phase.RCPT) & (reply(530) | (xx(5) & _NOT_SIGNED_IN)),
        _auth_required,
    ),
    Rule(Cause.SEND_AS_DENIED, PERMANENT, _ENVELOPE & xx(5) & _SEND_AS, _send_as_denied),
    Rule(
        Cause.SERVICE_REFUSED,
        PERMANENT,
        at(Phase.MAIL, Phase.RCPT) & xx(5) & _BLOCKLIST,
        _service_refused,
    ),
    Rule(
        Cause.MAILBOX_FULL,
        BY_CODE,
        at(Phase.RCPT) & sig(REPLY) & _MAILBOX_FULL & ~_RATE,
        _mailbox_full,
    ),
    Rule(
        Cause.MESSAGE_TOO_LARGE,
        BY_CODE,
        _ENVELOPE & (reply(552) | (sig(REPLY) & _TOO_LARGE)),
        _message_too_large,
    ),
    Rule(Cause.RATE_LIMITED, BY_CODE, _ENVELOPE & sig(REPLY) & _RATE, _rate_limited),
    Rule(
        Cause.SENDER_REJECTED,
        PERMANENT,
        at(Phase.MAIL) & reply(550, 553, 554) & _BAD_SENDER,
        _sender_rejected,
    ),
    Rule(Cause.RELAY_DENIED, PERMANENT, _RCPT & xx(5) & _RELAY, _relay_denied),
    Rule(Cause.RECIPIENT_REJECTED, PERMANENT, _RCPT & xx(5) & _UNKNOWN_USER, _recipient_rejected),
    Rule(Cause.GREYLISTED, TRANSIENT, _RCPT & xx(4) & _GREYLIST, _greylisted),
    Rule(Cause.RELAY_DENIED, PERMANENT, _RCPT & reply(550, 554) & enhanced("5.7.1"), _relay_denied),
    Rule(Cause.RECIPIENT_REJECTED, PERMANENT, _RCPT & xx(5), _recipient_rejected),
    Rule(
        Cause.MESSAGE_REJECTED,
        PERMANENT,
        at(Phase.DATA, Phase.END_OF_DATA) & xx(5) & _CONTENT,
        _message_rejected,
    ),
    Rule(
        Cause.MESSAGE_REJECTED,
        PERMANENT,
        at(Phase.END_OF_DATA) & reply(550, 554),
        _message_rejected,
    ),
    # -- anywhere: what is left; the last rule matches everything
    Rule(Cause.COMMAND_TIMEOUT, TRANSIENT, sig(TIMEOUT), _command_timeout),
    Rule(Cause.DISCONNECTED, TRANSIENT, sig(DISCONNECTED), _disconnected),
    Rule(Cause.MALFORMED_REPLY, PERMANENT, sig(Signal.MALFORMED), _malformed),
    Rule(Cause.SETTING_INVALID, CONFIG, sig(MISSING), _server_error),
    Rule(Cause.SERVER_ERROR, BY_CODE, ANY, _server_error),
)


# --------------------------------------------------------------------------- entry point


def _email_domain(context: SendContext) -> str | None:
    for address in (context.username, context.from_address):
        if address and "@" in address:
            return address
    return None


def _facts(failure: Failure, context: SendContext) -> Facts:
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
    if failure.signal not in (Signal.HTTP, Signal.OAUTH):
        return None
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


def rule_for(failure: Failure, context: SendContext) -> Rule:
    """The rule that decides this failure — for tests and for asking "why this cause?"."""
    return _first_rule(_facts(failure, context))


def _first_rule(facts: Facts) -> Rule:
    return next(rule for rule in RULES if rule.when(facts))


def _said(failure: Failure) -> str:
    """The server's words; for OAuth and APIs led by the provider's error code, if not in them."""
    error = failure.enhanced or ""
    if failure.signal not in (Signal.HTTP, Signal.OAUTH) or not error or error in failure.text:
        return failure.text
    return f"{error}: {failure.text}" if failure.text else error


def diagnose(failure: Failure, context: SendContext) -> Diagnosis:
    """What ``failure`` means for a send with ``context``: cause, kind, words, provider.

    Pure and total: any failure gets a diagnosis (the last rule matches everything).
    """
    facts = _facts(failure, context)
    rule = _first_rule(facts)
    advice = rule.advise(facts)
    return Diagnosis(
        phase=failure.phase,
        kind=rule.kind or _kind_by_code(failure.code),
        cause=rule.cause,
        title=render(advice.title),
        explanation=render(advice.explanation),
        fix=tuple(render(step) for step in advice.fix),
        marked=(advice.title, advice.explanation, *advice.fix),
        provider=facts.provider_id,
        code=failure.code,
        enhanced=facts.enhanced,
        server_text=_server_text(_said(failure), facts.enhanced),
        references=advice.references,
    )
