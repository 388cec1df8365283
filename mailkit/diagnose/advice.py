"""The words of a diagnosis over SMTP: a title, a plain explanation and numbered fix steps.

One function per cause (some serve several rules), each reading the :class:`Facts` the rule
matched, so the words can name the host, the reply and the provider's own menus. Settings appear
only as :class:`~mailkit.diagnose.fields.S` references, never spelled out. The openings shared
with the OAuth and API advice (:func:`reply_words`, :func:`answered`) live here too.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from mailkit.diagnose.facts import (
    OAUTH_WALKTHROUGH,
    TEMPORARY_DNS,
    Facts,
    first_word,
    kind_by_code,
)
from mailkit.diagnose.fields import S
from mailkit.faces import FIELDS, setting
from mailkit.outcome import Kind, Phase, Signal


@dataclass(frozen=True)
class Advice:
    """The words of a diagnosis: a title, a plain explanation, numbered fix steps."""

    title: str
    explanation: str
    fix: tuple[str, ...]
    references: tuple[str, ...] = ()


def reply_words(f: Facts) -> str:
    """Opens an explanation by quoting the reply: "The server answered 535 5.7.8"."""
    if f.code is None:
        return "The server answered with an error"
    return f"The server answered {f.code}{' ' + f.enhanced if f.enhanced else ''}"


def mechanisms(f: Facts) -> str:
    return ", ".join(sorted(f.failure.auth_mechanisms)) or "none"


#: Each phase as an admin would name the step, for "during ..." in explanations.
STEP = {
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
    Phase.DELIVERY: "the delivery check",
    Phase.HANDOFF: "writing the .eml for the desktop mail client",
}

RETRY = "Nothing in the settings needs to change; run the test again in a few minutes."


def api_name(f: Facts) -> str:
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
    return api_name(f)


def answered(f: Facts) -> str:
    """Opens an explanation: "Microsoft Graph answered HTTP 403 (ErrorAccessDenied)"."""
    service = _service(f)
    status = f" HTTP {f.code}" if f.code is not None else " with an error"
    error = f" ({f.error})" if f.error else ""
    return f"{service[0].upper()}{service[1:]} answered{status}{error}"


# ---- setup


def host_missing(f: Facts) -> Advice:
    return Advice(
        "No SMTP server is set",
        "The send needs the name of the mail server to connect to, and none is set for this "
        "user or the organisation.",
        (
            f"Fill in {S.host} with the submission server, e.g. smtp.office365.com or "
            "smtp.gmail.com (the onboarding notebook can propose it from an email address).",
            f"Set {S.port} and {S.security} with it (587 with starttls, or 465 with "
            "implicit_tls), or leave them on their defaults.",
        ),
    )


def password_missing(f: Facts) -> Advice:
    """No password to sign in with: before connecting (auth names a password mechanism), or
    found out from the server (auth ``auto`` had nothing to sign in with)."""
    if f.failure.signal is Signal.MISSING:
        explanation = (
            f"{S.auth} is {f.context.auth}, which signs in with a password, but the secret "
            f"store holds no password {f.account}, so mailkit did not try to sign in."
        )
    elif f.failure.signal is Signal.NOT_OFFERED:
        explanation = (
            f"The server signs in with a password ({mechanisms(f)}), not with an OAuth token, "
            f"and the secret store holds no password {f.account}."
        )
    else:
        explanation = (
            f"{reply_words(f)}: it takes mail only from signed-in clients. {S.auth} is auto, "
            f"and the secret store holds no password or OAuth token {f.account}, so mailkit "
            "sent without signing in."
        )
    fix = [
        f"Store the password {f.account} with {S.password_home}.",
        f"If it is stored already, check that the test reads that same secret store ({S.secrets}).",
    ]
    if f.provider is not None and f.provider.app_passwords:
        fix.append(
            f"{f.provider.name} wants an app password here, not the account password: "
            f"create one ({f.provider.app_passwords_menu}) and store that."
        )
    if f.provider is not None and f.provider.oauth_scope:
        fix.append(
            f"Or set {S.auth} to xoauth2 and run the {f.walkthrough}: then no password is "
            "stored at all."
        )
    if f.failure.signal is Signal.MISSING:
        fix.append(f"If the server needs no sign-in (a local relay), set {S.auth} to none instead.")
    fix.append("Then run the test send again.")
    return Advice("No password is stored", explanation, tuple(fix), refs(f))


def secrets_unavailable(f: Facts) -> Advice:
    """The secret store could not be read, so whether a password exists is unknown: saying
    "no password is stored" would send the admin to store one again, over the real one."""
    # The sender's detail is "secrets: WHY" (the store's own message, which names no secret).
    why = f.detail.split(":", 1)[1].strip() if ":" in f.detail else ""
    return Advice(
        "The secret store could not be read",
        "The password for this send lives in the secret store, and mailkit could not read it"
        + (f": {why}" if why else ".")
        + " So mailkit did not try to sign in; the password may well be stored.",
        (
            f"If the store is an encrypted secrets file, unlock it: {S.unlock}.",
            "If the passphrase was refused, type it again; a forgotten passphrase cannot be "
            f"recovered: store the password again in a new file with {S.password_home}.",
            f"To read another store, choose it with {S.secrets}.",
            "Then run the test send again.",
        ),
    )


def token_missing(f: Facts) -> Advice:
    if f.api:
        how = f"This send goes through {api_name(f)} (set by {S.mode}), which needs an OAuth token"
    elif f.context.auth == "xoauth2":
        how = f"{S.auth} is xoauth2, which signs in with an OAuth token"
    elif f.failure.signal is Signal.NOT_OFFERED:
        how = "The server signs in only with an OAuth token (it offers XOAUTH2 alone)"
    else:
        name = f.provider.name if f.provider else "The server"
        how = (
            f"{reply_words(f)}: it takes mail only from signed-in clients, and {name} signs in "
            "mail programs only with OAuth"
        )
    fix = [f"Run the {f.walkthrough} {f.account}; it stores the token in the secret store."]
    if f.context.auth == "auto" and not f.api:
        fix.append(f"Set {S.auth} to xoauth2 (or keep auto, which uses a stored token).")
    fix.append("Then run the test send again.")
    return Advice(
        "No OAuth token is stored",
        f"{how}, but no token is stored {f.account}, so mailkit did not sign in.",
        tuple(fix),
        refs(f),
    )


def mode_not_smtp(f: Facts) -> Advice:
    return Advice(
        "This account does not send through SMTP",
        f"An SMTP test send was asked for, but the effective {S.mode} of this user or the "
        f"organisation is not smtp{' (' + f.detail + ')' if f.detail else ''}, so the mail "
        "would leave another way.",
        (
            "Test with the sender that matches the mode (Gmail API, Microsoft Graph, EWS, or "
            "the desktop client hand-off).",
            f"Or, if this account should use SMTP, set {S.mode} to smtp for the user or the "
            "organisation.",
        ),
    )


def plaintext_auth_refused(f: Facts) -> Advice:
    return Advice(
        "Refused to send the password unencrypted",
        "The connection is not encrypted, so the user name and password would cross the "
        "network in clear text where anyone on the path can read them. mailkit stopped "
        "before signing in.",
        (
            f"Set {S.security} to auto (or starttls with {S.port} 587, or implicit_tls with "
            f"{S.port} 465) so the sign-in is encrypted.",
            "Only for a trusted relay on the same machine or a closed network: keep "
            f"{S.security} none and set {S.plaintext_auth} deliberately in the organisation "
            "settings.",
        ),
    )


# ---- connect


def dns_failure(f: Facts) -> Advice:
    # A name one slip from a provider's will not resolve tomorrow either: the typo comes first.
    meant = f.suggested_host
    temporary = TEMPORARY_DNS(f) and meant is None
    explanation = f"The server name {f.context.host!r} could not be turned into an address. " + (
        "The DNS server did not answer in time, which usually passes."
        if temporary
        else f"Did you mean {meant}? The name is one slip away from that provider's server."
        if meant
        else "Most often the name has a typo, or it only exists on another network "
        "(an internal name used outside the company network or VPN)."
    )
    typo = (f"Did you mean {meant}? Set {S.host} to {meant}.",) if meant else ()
    return Advice(
        f"The server name does not resolve: did you mean {meant}?"
        if meant
        else "The server name does not resolve",
        explanation,
        (
            *typo,
            f"Check the spelling of {S.host} ({f.context.host}); copy it from the provider's "
            "documentation or the onboarding notebook's proposal.",
            "If it is an internal server, connect to the company network or VPN, or use its "
            "public name.",
            f"Check that this computer can resolve names at all (e.g. nslookup {f.context.host}).",
        ),
    )


def connection_refused(f: Facts) -> Advice:
    if f.api:
        return Advice(
            f"Nothing accepts connections on port {f.port}",
            f"{f.context.host} answered, but refused the HTTPS connection on port {f.port}: "
            "no API service listens there, or a firewall rejects it.",
            (
                f"Check {S.api_url} in the organisation settings: leave it empty for the real "
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
            f"Check {S.host} and {S.port}: submission servers listen on 587 (starttls) or "
            f"465 (implicit_tls); port {f.port} may be wrong.",
            "Check that the mail service on the server is running and listens on that port.",
            "Check firewalls between here and the server (the local one, the company's, the "
            "server's).",
        ),
    )


def network_unreachable(f: Facts) -> Advice:
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


def connect_timeout(f: Facts) -> Advice:
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
            f"Use the submission ports: {S.port} 587 with {S.security} starttls, or 465 with "
            "implicit_tls.",
            f"Ask the network team whether outgoing connections to port {f.port} are allowed "
            "from this computer.",
            f"Check that {S.host} is right and the server is up; then test again.",
        ),
    )


# ---- tls


def certificate_expired(f: Facts) -> Advice:
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


def certificate_wrong_host(f: Facts) -> Advice:
    return Advice(
        "The certificate is for another server name",
        f"The server presented a certificate that does not cover the name {f.context.host!r}. "
        f"Either {S.host} uses an alias the certificate does not list, or the connection "
        "reaches a "
        "different server than intended.",
        (
            f"Set {S.host} to the name the certificate is issued for (the probe panel shows its "
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


def certificate_untrusted(f: Facts) -> Advice:
    reason = _UNTRUSTED_REASONS.get(f.failure.verify_code or -1)
    if reason is None:
        reason = f.detail or "the certificate chain could not be verified"
    return Advice(
        "The server's certificate is not trusted",
        f"mailkit could not verify the server's certificate: {reason}. This is normal for a "
        "company server with its own (private) certificate authority, and it is also what an "
        "interception looks like, so nothing was sent.",
        (
            f"For a server with a private certificate authority: set {S.ca_file} to that "
            "authority's certificate (PEM).",
            (
                f"If a company proxy inspects HTTPS, set {S.ca_file} to the proxy's certificate "
                "authority (ask the network team for it)."
                if f.api
                else f"Or pin the server's certificate: set {S.pin} to its SHA-256 "
                "fingerprint, checked with the server's administrator."
            ),
            "For a public server, ask its administrator to install the full certificate chain "
            "(including intermediates).",
            "mailkit never switches certificate checking off; the two settings above are the "
            "safe ways to trust a private server.",
        ),
    )


def pin_mismatch(f: Facts) -> Advice:
    return Advice(
        "The certificate is not the pinned one",
        "The server's certificate has a different SHA-256 fingerprint from the one pinned in "
        f"{S.pin}. Either the server got a new certificate (renewals change it) or "
        "the connection reaches a different server.",
        (
            "Ask the server's administrator whether the certificate was renewed, and get the "
            "new fingerprint from them (not from this connection).",
            f"Update {S.pin} with the confirmed fingerprint, or trust the issuing "
            f"authority with {S.ca_file} so renewals keep working.",
        ),
    )


def tls_on_plain_port(f: Facts) -> Advice:
    return Advice(
        "TLS was started on a port that expects plain text",
        f"mailkit opened port {f.port} with implicit TLS, but the server there speaks plain "
        "SMTP first (and upgrades with STARTTLS), so the TLS handshake failed at once.",
        (
            f"Set {S.security} to starttls and {S.port} to 587 (or auto, which does this).",
            f"Or keep implicit_tls and set {S.port} to 465, the implicit-TLS port.",
        ),
    )


def plain_on_tls_port(f: Facts) -> Advice:
    return Advice(
        "Plain text was sent to an implicit-TLS port",
        f"Port {f.port} expects the connection to begin with TLS, but {S.security} is "
        f"{f.context.security}, so mailkit waited for the server's greeting while the server "
        "waited for a TLS hello — both sides silent until the timeout.",
        (
            f"Set {S.security} to implicit_tls (or auto) for port 465."
            if f.port == 465
            else f"Set {S.security} to implicit_tls: port {f.port} expects TLS from the first "
            "byte.",
            f"Or set {S.port} to 587 and {S.security} to starttls.",
        ),
    )


def tls_version_refused(f: Facts) -> Advice:
    return Advice(
        "No TLS version in common",
        "The server and mailkit could not agree on a TLS version. mailkit requires TLS 1.2 or "
        "newer; servers that only speak TLS 1.0/1.1 are outdated and refused."
        + (f" ({f.detail})" if f.detail else ""),
        (
            "Ask the server's administrator to enable TLS 1.2 or 1.3.",
            f"If {S.tls_min_version} is 1.3 and the server only has TLS 1.2, set "
            f"{S.tls_min_version} "
            "to 1.2.",
        ),
    )


def tls_handshake_failed(f: Facts) -> Advice:
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
            f"Check that {S.host}, {S.port} and {S.security} match the provider's "
            "documentation "
            "(587 starttls, or 465 implicit_tls).",
            "If a firewall or antivirus inspects mail traffic, ask to exclude this server.",
        ),
    )


# ---- greeting / ehlo


def greeting_timeout(f: Facts) -> Advice:
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
            f"If the port expects implicit TLS (usually 465), set {S.security} to implicit_tls.",
            f"Otherwise use {S.port} 587 with {S.security} starttls, as the provider documents.",
            "If the settings are right, wait a few minutes and test again.",
        ),
    )


def service_unavailable(f: Facts) -> Advice:
    # 421 is the server closing the channel (RFC 5321 §3.8), whatever the step: a passing
    # state on its side (load, maintenance, a per-connection or per-address limit).
    phase = f.failure.phase
    when = (
        "before the conversation began"
        if phase in (Phase.GREETING, Phase.CONNECT)
        else f"during {STEP[phase]} and closed the connection"
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
        f"{reply_words(f)} {when}: 421 means the server is closing the channel — it is "
        f"overloaded, in maintenance, or limiting connections from this address.{limit}"
        f"{accepted}",
        (RETRY, "If it keeps happening, ask the server's administrator."),
    )


def ca_file_invalid(f: Facts) -> Advice:
    # The sender's detail is "ca_file: PATH PROBLEM" (see senders.tls.ca_file_problem).
    what = f.detail.split(":", 1)[1].strip() if ":" in f.detail else f.detail
    return Advice(
        "The CA file cannot be used",
        f"The {S.ca_file} {what}. Without a usable one the server's certificate cannot be "
        "checked, and mailkit never sends without checking it, so nothing was sent.",
        (
            f"Set {S.ca_file} to the PEM file of the certificate authority that signed the "
            "server's certificate: a text file that starts with -----BEGIN CERTIFICATE----- "
            "(the server's administrator has it).",
            f"Or clear {S.ca_file} to trust the system's certificate authorities (a public "
            f"provider needs nothing else), or pin the server's certificate with {S.pin}.",
            "Then run the test again.",
        ),
    )


def service_refused(f: Facts) -> Advice:
    blocklist = f.says("block", "blacklist", "listed", "spamhaus", "dnsbl", "reputation")
    return Advice(
        "The server refuses mail from this computer",
        f"{reply_words(f)} and will not take mail from this computer. Usually this computer's "
        "public IP address is on a blocklist, or the server only accepts mail from known "
        "networks." + (" The server's text mentions a blocklist." if blocklist else ""),
        (
            "Read the server's reply: it often names the blocklist and a removal page.",
            "Send through your organisation's authenticated submission server (port 587 or "
            "465) rather than directly.",
            "Ask the server's administrator to allow this computer's public IP address.",
        ),
    )


def ehlo_rejected(f: Facts) -> Advice:
    return Advice(
        "The server rejected the EHLO greeting",
        f"{reply_words(f)} to EHLO, the command that introduces this computer by name. Some "
        "servers insist on a fully qualified name that resolves, or limit who may connect.",
        (
            "Read the server's reply for the reason it gives.",
            "If it complains about the host name, give this computer a fully qualified DNS "
            "name, or ask the administrator to accept it.",
            f"Check that {S.host} and {S.port} point at a submission server (587 or 465), "
            "not a receiving MX on port 25.",
        ),
    )


def malformed(f: Facts) -> Advice:
    greeting = f.failure.phase is Phase.GREETING
    if f.detail.startswith("duplicate reply"):
        return Advice(
            "The server answered a command twice",
            f"The server sent two replies to {STEP[f.failure.phase]}, so its replies no longer "
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
            f"Check {S.port}: SMTP submission is 587 (starttls) or 465 (implicit_tls).",
            "If the port is right, a proxy or firewall may be altering the connection; ask "
            "the network team, and show them the transcript.",
        ),
    )


# ---- starttls


def starttls_missing(f: Facts) -> Advice:
    return Advice(
        "The server did not offer STARTTLS",
        "Encryption was required, but the server's EHLO answer did not list STARTTLS. Either "
        "the server has no TLS, or a device on the path removed it — a downgrade attack looks "
        "exactly like this. mailkit refused to send the password or the message in clear.",
        (
            f"Use implicit TLS instead: set {S.security} to implicit_tls and {S.port} to 465.",
            "Ask the network team whether a firewall inspects SMTP and strips STARTTLS (e.g. "
            'Cisco ASA "ESMTP inspection", other "SMTP fixup" features) and exclude this '
            "server from it.",
            "Only for a trusted relay on this machine or a closed network: set "
            f"{S.security} to none explicitly (and {S.auth} to none).",
        ),
    )


def starttls_refused(f: Facts) -> Advice:
    transient = kind_by_code(f.code) is Kind.TRANSIENT
    return Advice(
        "The server could not start TLS",
        f"{reply_words(f)} to STARTTLS"
        + (
            ": its TLS is temporarily unavailable."
            if transient
            else ": it advertised encryption but will not start it."
        )
        + " mailkit did not continue unencrypted.",
        (
            RETRY if transient else f"Try implicit TLS: {S.security} implicit_tls, {S.port} 465.",
            "If it persists, ask the server's administrator to check its TLS certificate and "
            "configuration.",
        ),
    )


# ---- auth


def auth_not_offered(f: Facts) -> Advice:
    reasons = []
    if f.port == 25:
        reasons.append("port 25 is for server-to-server relay, where sign-in is rarely offered")
    if f.context.security == "none":
        reasons.append(f"many servers offer AUTH only after STARTTLS, and {S.security} is none")
    why = (
        ("; ".join(reasons) + ".")
        if reasons
        else (
            "Servers often offer AUTH only on the submission ports (587, 465) and only after TLS."
        )
    )
    return Advice(
        "The server does not offer sign-in (AUTH)",
        f"Sign-in was required ({S.auth} is {f.context.auth}), but the server's EHLO answer "
        "lists "
        f"no AUTH mechanisms. {why[0].upper()}{why[1:]}",
        (
            f"Set {S.port} to 587 with {S.security} starttls (or 465 with implicit_tls), where "
            "sign-in "
            "is offered.",
            "If this server is a relay that accepts mail without sign-in from this network, "
            f"set {S.auth} to none.",
        ),
    )


def mechanism_not_offered(f: Facts) -> Advice:
    offered = mechanisms(f)
    if f.failure.signal is Signal.REPLY:
        explanation = (
            f"{reply_words(f)}: it does not accept sign-in with {f.context.auth} "
            "(unknown or too weak for it)."
        )
    elif f.context.auth == "auto":
        explanation = (
            f"None of the mechanisms the server offers ({offered}) fits the stored "
            "credentials: a password needs PLAIN, LOGIN or CRAM-MD5, a token needs XOAUTH2."
        )
    else:
        explanation = f"{S.auth} is {f.context.auth}, but the server offers only {offered}."
    fix = [f"Set {S.auth} to auto, so mailkit picks the strongest mechanism both sides support."]
    if "XOAUTH2" in f.failure.auth_mechanisms and f.context.auth != "xoauth2":
        fix.append(
            f"The server offers XOAUTH2: run the {f.walkthrough} and set {S.auth} to xoauth2."
        )
    fix.append(f"If sign-in is offered only after TLS, use {S.security} starttls or implicit_tls.")
    return Advice("The server does not offer this sign-in method", explanation, tuple(fix))


def encryption_required(f: Facts) -> Advice:
    return Advice(
        "The server requires encryption first",
        f"{reply_words(f)}: it accepts this command only over an encrypted connection, and "
        f"{S.security} is {f.context.security}.",
        (
            f"Set {S.security} to auto or starttls with {S.port} 587 (or implicit_tls with "
            f"{S.port} 465).",
            f"Keep {S.plaintext_auth} off; it is only for trusted local relays.",
        ),
    )


def basic_auth_disabled(f: Facts) -> Advice:
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
            refs(f),
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
            f"Set {S.auth} to xoauth2 and run mailkit's {OAUTH_WALKTHROUGH['microsoft365']} for "
            f"{mailbox} (scope https://outlook.office.com/SMTP.Send).",
            "Make sure authenticated SMTP is on for the mailbox (OAuth needs it too): "
            + enable_smtp_auth,
            "Stopgap only, until OAuth is in place: allow basic authentication for SMTP for "
            "this mailbox/tenant (the settings above), knowing Microsoft will switch it off.",
        ),
        refs(f),
    )


def oauth_token_invalid(f: Facts) -> Advice:
    """An XOAUTH2 sign-in refused (a mail API's 401 has :func:`api_token_invalid`)."""
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
            + (f" (gmail.send alone is for {S.mode} gmail_api, not SMTP)." if f.google else "."),
            f"Check that {S.username} is exactly the signed-in account's address.",
        )
        + (
            (
                "In Microsoft 365, authenticated SMTP must be on for the mailbox even with "
                "OAuth (admin center → user → Mail → Manage email apps).",
            )
            if f.microsoft
            else ()
        ),
        refs(f),
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


def app_password_required(f: Facts) -> Advice:
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
            f"{S.password_home}.",
            f"Better: set {S.auth} to xoauth2 and run the {f.walkthrough}; no password is stored "
            "at all.",
        ),
        refs(f),
    )


def provider_mismatch(f: Facts) -> Advice:
    mismatch = f.mismatch
    assert mismatch is not None  # the rule's predicate
    account, server = mismatch.account, mismatch.server
    return Advice(
        f"An account of {account.name} at the server of {server.name}",
        f"{reply_words(f)} to the sign-in. The user name {f.context.username} is an account "
        f"of {account.name}, but {S.host} is {f.context.host}, the server of {server.name}: "
        "a provider signs in only its own accounts, so no password or token can work there.",
        (
            f"To send as {f.context.username}: set {S.host} to {account.smtp_host}, {S.port} "
            f"to {account.smtp_port} and {S.security} to {account.security.value}, "
            f"{account.name}'s submission server (the onboarding notebook's Suggest settings "
            "fills these in from the address).",
            f"To send through {server.name}: set {S.username} to an account of {server.name} "
            "and store that account's password or token.",
        ),
        account.references,
    )


def bad_credentials(f: Facts) -> Advice:
    user = f.context.username or "(none set)"
    explanation = (
        f"{reply_words(f)}: it rejected the user name and password. The user name used was {user}."
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
            f"Or set {S.auth} to xoauth2 and run the {f.walkthrough}.",
            f"Set {S.username} to the full Gmail / Workspace address.",
        ]
    elif f.provider_id == "outlook_com":
        explanation += (
            " Outlook.com accounts sign in from mail programs with OAuth; Microsoft retired "
            "password sign-in for them in 2024."
        )
        fix += [
            f"Set {S.auth} to xoauth2 and run the {f.walkthrough} for this account.",
            f"Set {S.username} to the full Outlook.com address.",
        ]
    elif f.microsoft:
        explanation += (
            " With Microsoft 365 this also happens with a correct password when the account "
            "uses multi-factor sign-in or the tenant has security defaults on: both block "
            "password sign-in for SMTP."
        )
        fix += [
            f"Set {S.username} to the mailbox's full address (user principal name) and store the "
            "password again.",
            f"If the account uses multi-factor sign-in or security defaults, set {S.auth} to "
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
            f"Set {S.username} to the full email address.",
        ]
    else:
        fix += [
            f"Check {S.username} (often the full email address) and store the password again "
            f"with {S.password_home}.",
            "Sign in to the provider's webmail with the same credentials to rule out a locked "
            "or expired account.",
            "If the account has two-step sign-in, the provider may require an app password "
            "or OAuth.",
        ]
    return Advice("User name or password rejected", explanation, tuple(fix), refs(f))


def auth_temporary_failure(f: Facts) -> Advice:
    many = f.says("too many", "rate", "limit")
    return Advice(
        "Sign-in temporarily failed",
        f"{reply_words(f)} to the sign-in: a temporary problem on the server's side"
        + (", here because of too many sign-in attempts." if many else ".")
        + " The credentials were not judged wrong.",
        (
            RETRY,
            "If it persists, check the account in the provider's webmail (a security "
            "challenge may be waiting).",
        ),
    )


def wait_step(f: Facts, asked: str, otherwise: str) -> str:
    """The step "wait, then test again": as long as the server ``asked`` (its Retry-After or
    back-off, when the failure carries one), else ``otherwise`` ("a minute")."""
    wait = f.failure.retry_after
    if wait is None:
        return f"Wait {otherwise} and test again."
    return f"Wait {wait:g} seconds ({asked}) and test again."


def refs(f: Facts) -> tuple[str, ...]:
    return f.provider.references if f.provider else ()


# ---- envelope and data


def auth_required(f: Facts) -> Advice:
    microsoft = f.microsoft or f.enhanced == "5.7.57"
    explanation = (
        f"{reply_words(f)}: it accepts mail only from signed-in clients, and this send did "
        f"not sign in ({S.auth} is {f.context.auth})."
    )
    fix = [
        f"Set {S.auth} to auto (or the mechanism the provider documents) and store the "
        f"account's password with {S.password_home}, or run the {f.walkthrough} for a token.",
        f"Set {S.username} to the mailbox's address.",
    ]
    if microsoft:
        explanation += " Microsoft 365 rejects anonymous mail on its submission server."
        fix.append(
            "In Microsoft 365, turn on authenticated SMTP for the mailbox (admin center → "
            "user → Mail → Manage email apps), or use xoauth2 with the Microsoft OAuth "
            "walkthrough."
        )
    return Advice("The server requires sign-in", explanation, tuple(fix))


def send_as_denied(f: Facts) -> Advice:
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
            f"Either set {S.from_address} to {own},",
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
        refs(f),
    )


def sender_rejected(f: Facts) -> Advice:
    sender = f.context.from_address or "(none set)"
    return Advice(
        "The From address was rejected",
        f"{reply_words(f)} to MAIL FROM {sender}. Most providers only let an account send "
        "from its own address (or addresses it is allowed to use).",
        (
            f"Set {S.from_address} to the address of the account in {S.username}, or to an "
            "alias the "
            "provider has confirmed for it.",
            "Check the From address for typos and that its domain exists.",
            "If the organisation sends for many users from one account, give that account "
            "permission to send as them on the server.",
        ),
    )


def relay_denied(f: Facts) -> Advice:
    signed_in = f.context.auth not in ("none", "")
    explanation = (
        f"{reply_words(f)}: it will not pass mail on to the recipient's domain for this "
        "client. Servers relay only for clients that signed in or for networks they trust."
    )
    if signed_in:
        explanation += (
            f" This send signed in as {f.context.username or 'an account'}, which is not "
            "allowed to relay to outside domains here."
        )
    if signed_in:
        fix = [
            f"Check that {S.host} and {S.port} are the provider's submission server (587 or "
            "465); a "
            "receiving server (MX, port 25) never relays to other domains.",
            "Ask the server's administrator to let this account send to outside domains.",
        ]
    else:
        fix = [
            f"Sign in: set {S.auth} to auto and store the account's password or token (a "
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


def recipient_rejected(f: Facts) -> Advice:
    return Advice(
        "The recipient address was rejected",
        f"{reply_words(f)} for the recipient: the address does not exist there or does not "
        "accept mail from this sender.",
        (
            "Check the test recipient's address for typos.",
            "Try another recipient (e.g. your own mailbox) to confirm the settings work.",
        ),
    )


def greylisted(f: Facts) -> Advice:
    return Advice(
        "Greylisted: the server asks to try again later",
        f"{reply_words(f)}: the receiving server defers mail from senders it does not know "
        "yet and expects them to retry in a few minutes. A normal mail server would retry "
        "on its own; a test send does not.",
        (
            "Wait 5 to 15 minutes and run the test again; it is usually accepted then.",
            "Nothing in the settings needs to change.",
        ),
    )


def mailbox_full(f: Facts) -> Advice:
    return Advice(
        "The recipient's mailbox is full",
        f"{reply_words(f)}: the recipient's mailbox is over its storage quota. The settings "
        "work; the recipient has to make room.",
        ("Send the test to another recipient, or ask the recipient to empty their mailbox.",),
    )


def rate_limited(f: Facts) -> Advice:
    return Advice(
        "Sending limit reached",
        f"{reply_words(f)}: too many messages, recipients or connections in a short time for "
        "this account or address. Providers limit sending per minute and per day.",
        (
            "Wait and test again later (daily limits reset after up to 24 hours).",
            "Send tests to fewer recipients at once, and lower bulk-test concurrency.",
            "For regular large volumes, ask the provider about higher limits or a relay service.",
        ),
    )


def message_too_large(f: Facts) -> Advice:
    return Advice(
        "The message is too large",
        f"{reply_words(f)}: the message is bigger than the server accepts.",
        (
            "Send the test without attachments, or smaller ones.",
            "Check the size limit the server advertises (EHLO SIZE, shown by the probe).",
        ),
    )


def message_rejected(f: Facts) -> Advice:
    return Advice(
        "The message was rejected after it was sent",
        f"{reply_words(f)} after receiving the whole message: its content or the sender's "
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


def outcome_unknown(f: Facts) -> Advice:
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
            f"If this repeats, raise {S.command_timeout} — the server may "
            "be scanning the message slowly.",
        ),
    )


def disconnected(f: Facts) -> Advice:
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
        explanation = f"The server closed the connection during {STEP[phase]}, without an answer."
    return Advice(
        "The server closed the connection",
        explanation,
        (
            "Test again; a single dropped connection is often temporary.",
            "If it repeats at the same step, look at the transcript's last lines and check "
            f"{S.host}, {S.port} and {S.security} against the provider's documentation.",
        ),
    )


def command_timeout(f: Facts) -> Advice:
    phase = f.failure.phase
    safe = (
        " The message was not accepted, so it is safe to send it again."
        if phase in (Phase.DATA, Phase.RCPT, Phase.MAIL)
        else ""
    )
    return Advice(
        "The server stopped answering",
        f"The server did not answer during {STEP[phase]} within the timeout.{safe}",
        (
            "Test again in a few minutes.",
            f"If the server is just slow, raise {S.command_timeout}.",
        ),
    )


def server_error(f: Facts) -> Advice:
    if f.failure.signal is Signal.MISSING:
        named = first_word(f.detail)
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
    if f.failure.signal is Signal.NOT_OFFERED and first_word(f.detail) == "smtputf8":
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
                f"Check that {S.host} and {S.port} point at a submission server (587 or 465).",
                "Ask the server's administrator whether the extension can be enabled.",
            ),
        )
    if f.failure.signal in (Signal.HTTP, Signal.OAUTH):
        return Advice(
            "The service reported an error",
            f"{answered(f)} during {STEP[f.failure.phase]}. The reason is in its answer.",
            (
                "Read the answer's message; it usually names the problem.",
                "If it is unclear, send the transcript to whoever runs the service (the "
                "provider's support, or your IT for a company proxy).",
            ),
            refs(f),
        )
    transient = kind_by_code(f.code) is Kind.TRANSIENT
    where = STEP[f.failure.phase]
    return Advice(
        "The server reported an error",
        f"{reply_words(f)} during {where}"
        + (
            ": a temporary problem on its side."
            if transient
            else ". The reason is in the server's reply."
        ),
        (
            RETRY if transient else "Read the server's reply; it usually names the problem.",
            "If it persists, send the transcript to the server's administrator.",
        ),
    )
