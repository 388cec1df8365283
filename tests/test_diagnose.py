"""The diagnosis: every failure a sender can report mapped to a cause, a kind and advice.

The heart is :data:`CASES`, one row per (phase, signal, reply, settings) a sender produces,
with the cause and kind it must get and words its title, explanation and fix must contain.
Meta-tests keep the table honest: every :class:`Cause` is produced by some row, and every rule
in :data:`mailkit.diagnose.RULES` decides at least one row (a rule no row reaches is dead or
shadowed by an earlier one).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailkit.diagnose import MAX_SERVER_TEXT, RULES, diagnose, parse_enhanced, rule_for
from mailkit.diagnose.delivery import DELIVERY_CAUSES
from mailkit.outcome import Cause, Diagnosis, Failure, Kind, Phase, SendContext, Signal

CTX = SendContext(
    host="mail.example.net",
    port=587,
    security="starttls",
    auth="plain",
    username="ann@example.net",
    from_address="ann@example.net",
)
GMAIL = replace(CTX, host="smtp.gmail.com", username="ann@gmail.com", from_address="ann@gmail.com")
WORKSPACE = replace(GMAIL, username="ann@corp.example", from_address="ann@corp.example")
M365 = replace(
    CTX,
    host="smtp.office365.com",
    auth="login",
    username="ann@contoso.example",
    from_address="ann@contoso.example",
)
M365_DIRECT = replace(
    M365, host="contoso-example.mail.protection.outlook.com", port=25, auth="none"
)
YAHOO = replace(CTX, host="smtp.mail.yahoo.com", port=465, security="implicit_tls")
# OAuth endpoints and mail APIs: what mailkit.oauth and the API senders pass.
GOOGLE_TOKEN = replace(
    GMAIL, host="oauth2.googleapis.com", port=443, security="ssl", auth="xoauth2"
)
MS_TOKEN = replace(M365, host="login.microsoftonline.com", port=443, security="ssl", auth="xoauth2")
GMAIL_API = replace(GMAIL, host="gmail.googleapis.com", port=443, security="ssl", auth="oauth")
GRAPH = replace(M365, host="graph.microsoft.com", port=443, security="ssl", auth="oauth")
# Exchange Web Services (mailkit.senders.ews): on-premises on loopback, and Exchange Online.
EWS = SendContext(
    host="mail.contoso.example",
    port=443,
    security="ssl",
    auth="ntlm",
    username="ann@contoso.example",
    from_address="ann@contoso.example",
    service="ews",
)
EWS_ONLINE = replace(EWS, host="outlook.office365.com", auth="basic")
# The demo's fake provider on loopback: neither host nor address names the provider.
FAKE_API = SendContext(
    host="127.0.0.1",
    port=443,
    security="ssl",
    auth="oauth",
    username="demo@example.com",
    from_address="demo@example.com",
)

P, S = Phase, Signal
CONFIG, TRANSIENT, PERMANENT = Kind.CONFIGURATION, Kind.TRANSIENT, Kind.PERMANENT


@dataclass(frozen=True)
class Case:
    """One sender observation and what its diagnosis must say (words: case-insensitive)."""

    id: str
    failure: Failure
    cause: Cause
    kind: Kind
    context: SendContext = CTX
    provider: str | None = None
    title: tuple[str, ...] = ()
    explanation: tuple[str, ...] = ()
    fix: tuple[str, ...] = ()


def F(
    phase: Phase,
    signal: Signal,
    code: int | None = None,
    text: str = "",
    *,
    enhanced: str | None = None,
    verify_code: int | None = None,
    detail: str = "",
    auth_mechanisms: frozenset[str] = frozenset(),
    retry_after: float | None = None,
) -> Failure:
    """A failure, as short as the table needs it."""
    return Failure(
        phase,
        signal,
        code=code,
        enhanced=enhanced,
        text=text,
        verify_code=verify_code,
        detail=detail,
        auth_mechanisms=auth_mechanisms,
        retry_after=retry_after,
    )


def xoauth2_challenge(**fields: str) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


# The table is laid out by hand, one case to a block, so that it reads as a table.
# fmt: off
CASES: tuple[Case, ...] = (
    # ---------------------------------------------------------------- setup
    Case("host missing", F(P.SETUP, S.MISSING, detail="host"), Cause.HOST_MISSING, CONFIG,
         fix=("host", "587")),
    Case("password missing", F(P.SETUP, S.MISSING, detail="password"), Cause.PASSWORD_MISSING,
         CONFIG, explanation=("ann@example.net",), fix=("store the password", "auth to none")),
    Case("secret store unreadable",
         F(P.SETUP, S.MISSING, detail="secrets: the passphrase does not open acme.secrets"),
         Cause.SECRETS_UNAVAILABLE, CONFIG,
         explanation=("could not read", "does not open acme.secrets", "may well be stored"),
         fix=("unlock it", "cannot be recovered", "another store")),
    Case("token missing", F(P.SETUP, S.MISSING, detail="token"), Cause.TOKEN_MISSING, CONFIG,
         context=replace(M365, auth="xoauth2"), provider="microsoft365",
         fix=("Microsoft OAuth walkthrough",)),
    Case("mode not smtp", F(P.SETUP, S.POLICY, detail="mode is outlook"), Cause.MODE_NOT_SMTP,
         CONFIG, explanation=("outlook",), fix=("mode to smtp",)),
    Case("other setting missing", F(P.SETUP, S.MISSING, detail="from_address"),
         Cause.SETTING_INVALID, CONFIG, title=("missing",), fix=("from_address",)),
    Case("invalid address names no setting word", F(P.SETUP, S.MISSING, detail="address: the "
         "host name after the @ is not valid"), Cause.SETTING_INVALID, CONFIG,
         explanation=("not valid",), fix=("correct address",)),
    Case("CA file not there", F(P.SETUP, S.MISSING, detail="ca_file: /etc/acme/ca.pem does "
         "not exist"), Cause.SETTING_INVALID, CONFIG, title=("CA file",),
         explanation=("/etc/acme/ca.pem does not exist",), fix=("PEM", "ca_file")),
    Case("no folder for the .eml", F(P.SETUP, S.MISSING, detail="eml_folder: not set"),
         Cause.SETTING_INVALID, CONFIG, title=("No folder",), fix=("eml_folder",)),
    Case("the .eml folder is gone", F(P.SETUP, S.MISSING, detail="eml_folder: /srv/drop does "
         "not exist"), Cause.SETTING_INVALID, CONFIG, title=("could not be written",),
         explanation=("/srv/drop does not exist",), fix=("eml_folder",)),
    Case("the sender's MISSING mode", F(P.SETUP, S.MISSING, detail="mode"),
         Cause.MODE_NOT_SMTP, CONFIG),
    Case("plaintext auth refused", F(P.AUTH, S.POLICY, detail="credentials over plaintext"),
         Cause.PLAINTEXT_AUTH_REFUSED, CONFIG, context=replace(CTX, security="none"),
         explanation=("clear text",), fix=("allow_plaintext_auth", "security to auto")),
    # ---------------------------------------------------------------- connect
    Case("dns", F(P.CONNECT, S.DNS, detail="[Errno -2] Name or service not known"),
         Cause.DNS_FAILURE, CONFIG, title=("resolve",), fix=("mail.example.net", "VPN")),
    Case("dns typo of a provider host", F(P.CONNECT, S.DNS, detail="[Errno -2] Name or "
         "service not known"), Cause.DNS_FAILURE, CONFIG,
         context=replace(CTX, host="smtp.gmial.com"), title=("did you mean smtp.gmail.com?",),
         fix=("host to smtp.gmail.com",)),
    Case("dns typo while the resolver is down", F(P.CONNECT, S.DNS, detail="Temporary failure "
         "in name resolution"), Cause.DNS_FAILURE, CONFIG,
         context=replace(CTX, host="smtp.office356.com"), fix=("smtp.office365.com",)),
    Case("dns temporary", F(P.CONNECT, S.DNS, detail="Temporary failure in name resolution"),
         Cause.DNS_FAILURE, TRANSIENT, explanation=("did not answer in time",)),
    Case("refused", F(P.CONNECT, S.REFUSED, detail="[Errno 111] Connection refused"),
         Cause.CONNECTION_REFUSED, CONFIG, title=("587",), fix=("587", "465", "firewall")),
    Case("unreachable", F(P.CONNECT, S.UNREACHABLE, detail="[Errno 101] Network unreachable"),
         Cause.NETWORK_UNREACHABLE, TRANSIENT, fix=("VPN",)),
    Case("connect timeout port 25", F(P.CONNECT, S.TIMEOUT), Cause.CONNECT_TIMEOUT, TRANSIENT,
         context=replace(CTX, port=25), explanation=("firewall", "port 25"), fix=("587", "465")),
    # ---------------------------------------------------------------- greeting
    Case("plain to implicit-TLS port", F(P.GREETING, S.TIMEOUT), Cause.PLAIN_ON_TLS_PORT,
         CONFIG, context=replace(CTX, port=465, security="starttls"),
         explanation=("TLS hello",), fix=("implicit_tls", "587")),
    Case("the sender's probe found TLS on another port", F(P.GREETING, S.TIMEOUT,
         detail="port speaks implicit TLS"), Cause.PLAIN_ON_TLS_PORT, CONFIG,
         context=replace(CTX, port=2465), fix=("implicit_tls: port 2465",)),
    Case("greeting timeout", F(P.GREETING, S.TIMEOUT), Cause.GREETING_TIMEOUT, TRANSIENT,
         explanation=("expects TLS",), fix=("implicit_tls",)),
    Case("greeting timeout, auto on 465 already used TLS", F(P.GREETING, S.TIMEOUT),
         Cause.GREETING_TIMEOUT, TRANSIENT, context=replace(CTX, port=465, security="auto"),
         explanation=("port is right",)),
    Case("421 greeting", F(P.GREETING, S.REPLY, 421, "4.3.2 Service not available"),
         Cause.SERVICE_UNAVAILABLE, TRANSIENT, explanation=("421",)),
    Case("554 greeting", F(P.GREETING, S.REPLY, 554, "mail.example.net ESMTP not accepting "
         "messages from 203.0.113.9: listed at zen.spamhaus.org"), Cause.SERVICE_REFUSED,
         PERMANENT, explanation=("blocklist",), fix=("IP address",)),
    Case("malformed greeting", F(P.GREETING, S.MALFORMED, detail="* OK IMAP4rev1 ready"),
         Cause.MALFORMED_REPLY, PERMANENT, explanation=("another service",), fix=("587",)),
    Case("disconnect before greeting", F(P.GREETING, S.DISCONNECTED), Cause.DISCONNECTED,
         TRANSIENT, explanation=("blocklist",)),
    # ---------------------------------------------------------------- ehlo
    Case("ehlo 501", F(P.EHLO, S.REPLY, 501, "5.5.2 Helo command rejected: need fully-"
         "qualified hostname"), Cause.EHLO_REJECTED, PERMANENT, fix=("fully qualified",)),
    # 421 is the server closing the channel at any step (RFC 5321 §3.8)
    Case("ehlo 421", F(P.EHLO, S.REPLY, 421, "4.7.0 Try again later"),
         Cause.SERVICE_UNAVAILABLE, TRANSIENT, explanation=("during EHLO",)),
    Case("greeting 451 without 421", F(P.GREETING, S.REPLY, 451, "4.3.0 Try again later"),
         Cause.SERVICE_UNAVAILABLE, TRANSIENT),
    Case("ehlo malformed", F(P.EHLO, S.MALFORMED, detail="line too long"), Cause.MALFORMED_REPLY,
         PERMANENT, explanation=("line too long",)),
    # ---------------------------------------------------------------- tls
    Case("implicit TLS on a plaintext port", F(P.TLS, S.TLS_PROTOCOL, detail="[SSL: "
         "WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)"), Cause.TLS_ON_PLAIN_PORT,
         CONFIG, context=replace(CTX, security="implicit_tls"), explanation=("port 587",),
         fix=("starttls", "587", "465")),
    Case("implicit TLS (auto on 465) to plaintext", F(P.TLS, S.TLS_PROTOCOL,
         detail="record layer failure"), Cause.TLS_ON_PLAIN_PORT, CONFIG,
         context=replace(CTX, port=465, security="auto")),
    Case("implicit TLS: EOF in handshake", F(P.TLS, S.TLS_PROTOCOL, detail="EOF occurred in "
         "violation of protocol: unexpected eof while reading"), Cause.TLS_ON_PLAIN_PORT,
         CONFIG, context=replace(CTX, security="implicit_tls", port=2525)),
    Case("after STARTTLS, not TLS: no version blame", F(P.STARTTLS, S.TLS_PROTOCOL,
         detail="wrong version number"), Cause.TLS_HANDSHAKE_FAILED, PERMANENT,
         explanation=("did not answer with TLS",)),
    Case("old TLS only", F(P.TLS, S.TLS_PROTOCOL, detail="[SSL: UNSUPPORTED_PROTOCOL] "
         "unsupported protocol"), Cause.TLS_VERSION_REFUSED, CONFIG, explanation=("TLS 1.2",),
         fix=("TLS 1.2",)),
    Case("tls alert protocol version", F(P.TLS, S.TLS_PROTOCOL, detail="tlsv1 alert protocol "
         "version"), Cause.TLS_VERSION_REFUSED, CONFIG),
    Case("no protocols available", F(P.TLS, S.TLS_PROTOCOL, detail="no protocols available"),
         Cause.TLS_VERSION_REFUSED, CONFIG, fix=("tls_min_version",)),
    Case("handshake failure", F(P.TLS, S.TLS_PROTOCOL, detail="sslv3 alert handshake "
         "failure"), Cause.TLS_HANDSHAKE_FAILED, PERMANENT,
         explanation=("sslv3 alert handshake failure",), fix=("probe",)),
    Case("expired", F(P.TLS, S.TLS_VERIFY, verify_code=10, detail="certificate has expired"),
         Cause.CERTIFICATE_EXPIRED, CONFIG, explanation=("expired",), fix=("renew", "clock")),
    Case("not yet valid", F(P.TLS, S.TLS_VERIFY, verify_code=9), Cause.CERTIFICATE_EXPIRED,
         CONFIG, explanation=("clock",), fix=("time zone", "validity dates")),
    Case("expired, by words", F(P.TLS, S.TLS_VERIFY, detail="certificate verify failed: "
         "certificate has expired"), Cause.CERTIFICATE_EXPIRED, CONFIG),
    Case("wrong host", F(P.TLS, S.TLS_VERIFY, verify_code=62, detail="Hostname mismatch, "
         "certificate is not valid for 'mail.example.net'."), Cause.CERTIFICATE_WRONG_HOST,
         CONFIG, explanation=("mail.example.net",), fix=("set host to the name",)),
    Case("wrong IP", F(P.TLS, S.TLS_VERIFY, verify_code=64), Cause.CERTIFICATE_WRONG_HOST,
         CONFIG, context=replace(CTX, host="192.0.2.10")),
    Case("self-signed", F(P.TLS, S.TLS_VERIFY, verify_code=18), Cause.CERTIFICATE_UNTRUSTED,
         CONFIG, explanation=("self-signed",), fix=("ca_file", "tls_pin_sha256")),
    Case("self-signed in chain", F(P.TLS, S.TLS_VERIFY, verify_code=19),
         Cause.CERTIFICATE_UNTRUSTED, CONFIG, fix=("ca_file",)),
    Case("unknown issuer", F(P.TLS, S.TLS_VERIFY, verify_code=20, detail="unable to get local "
         "issuer certificate"), Cause.CERTIFICATE_UNTRUSTED, CONFIG, explanation=("issuer",)),
    Case("leaf signature", F(P.TLS, S.TLS_VERIFY, verify_code=21), Cause.CERTIFICATE_UNTRUSTED,
         CONFIG),
    Case("issuer missing", F(P.TLS, S.TLS_VERIFY, verify_code=2), Cause.CERTIFICATE_UNTRUSTED,
         CONFIG),
    Case("unknown verify code keeps the detail", F(P.TLS, S.TLS_VERIFY, verify_code=26,
         detail="unsuitable certificate purpose"), Cause.CERTIFICATE_UNTRUSTED, CONFIG,
         explanation=("unsuitable certificate purpose",)),
    Case("pin mismatch", F(P.TLS, S.TLS_PIN), Cause.CERTIFICATE_PIN_MISMATCH, CONFIG,
         fix=("tls_pin_sha256",)),
    # ---------------------------------------------------------------- starttls
    Case("starttls missing", F(P.STARTTLS, S.NOT_OFFERED, detail="STARTTLS"),
         Cause.STARTTLS_MISSING, CONFIG, explanation=("downgrade", "refused"),
         fix=("465", "ESMTP inspection", "none")),
    Case("starttls 454", F(P.STARTTLS, S.REPLY, 454, "4.7.0 TLS not available due to local "
         "problem"), Cause.STARTTLS_REFUSED, TRANSIENT, explanation=("temporarily",)),
    Case("starttls 502", F(P.STARTTLS, S.REPLY, 502, "5.5.1 Unrecognized command"),
         Cause.STARTTLS_REFUSED, PERMANENT, fix=("implicit_tls",)),
    # ---------------------------------------------------------------- auth
    Case("auth not offered on 25", F(P.AUTH, S.NOT_OFFERED, detail="AUTH"),
         Cause.AUTH_NOT_OFFERED, CONFIG, context=replace(CTX, port=25),
         explanation=("port 25",), fix=("587", "auth to none")),
    Case("auth not offered before TLS", F(P.AUTH, S.NOT_OFFERED, detail="AUTH"),
         Cause.AUTH_NOT_OFFERED, CONFIG, context=replace(CTX, security="none"),
         explanation=("after STARTTLS",)),
    Case("mechanism not offered", F(P.AUTH, S.NOT_OFFERED, detail="AUTH CRAM-MD5",
         auth_mechanisms=frozenset({"PLAIN", "LOGIN"})), Cause.MECHANISM_NOT_OFFERED, CONFIG,
         context=replace(CTX, auth="cram_md5"), explanation=("LOGIN, PLAIN",),
         fix=("auth to auto",)),
    # auth auto with a password where only XOAUTH2 is offered: what is missing is a token
    Case("auto finds nothing for a password", F(P.AUTH, S.NOT_OFFERED,
         auth_mechanisms=frozenset({"XOAUTH2"}), detail="no usable mechanism"),
         Cause.TOKEN_MISSING, CONFIG, context=replace(M365, auth="auto"),
         provider="microsoft365", explanation=("XOAUTH2", "ann@contoso.example"),
         fix=("Microsoft OAuth walkthrough", "xoauth2")),
    # ... and with only a token where only password mechanisms are: a password is missing
    Case("auto has only a token for a password server", F(P.AUTH, S.NOT_OFFERED,
         auth_mechanisms=frozenset({"PLAIN", "LOGIN"}), detail="no usable mechanism"),
         Cause.PASSWORD_MISSING, CONFIG, context=replace(CTX, auth="auto"),
         explanation=("LOGIN, PLAIN", "holds no password"), fix=("store the password",)),
    # one provider's account at another's server: no password can work
    Case("outlook.com account at smtp.gmail.com", F(P.AUTH, S.REPLY, 535, "5.7.8 Username and "
         "Password not accepted."), Cause.PROVIDER_MISMATCH, CONFIG,
         context=replace(GMAIL, username="ann@outlook.com", from_address="ann@outlook.com"),
         provider="google_workspace", title=("Outlook.com", "Google Workspace"),
         explanation=("ann@outlook.com", "smtp.gmail.com"),
         fix=("host to smtp-mail.outlook.com", "587", "starttls")),
    Case("gmail account at smtp.office365.com", F(P.AUTH, S.REPLY, 535, "5.7.139 "
         "Authentication unsuccessful, basic authentication is disabled."),
         Cause.PROVIDER_MISMATCH, CONFIG,
         context=replace(M365, username="ann@gmail.com", from_address="ann@gmail.com"),
         provider="microsoft365", title=("Gmail",), fix=("smtp.gmail.com",)),
    Case("gmail account at smtp-mail.outlook.com over xoauth2", F(P.AUTH, S.REPLY, 334,
         xoauth2_challenge(status="401")), Cause.PROVIDER_MISMATCH, CONFIG,
         context=replace(CTX, host="smtp-mail.outlook.com", auth="xoauth2",
                         username="ann@googlemail.com"), provider="outlook_com",
         fix=("smtp.gmail.com",)),
    Case("a tenant's onmicrosoft.com account at gmail", F(P.AUTH, S.REPLY, 534, "5.7.9 "
         "Application-specific password required."), Cause.PROVIDER_MISMATCH, CONFIG,
         context=replace(GMAIL, username="ann@contoso.onmicrosoft.com"),
         provider="google_workspace", fix=("smtp.office365.com",)),
    Case("gmail 535 5.7.8", F(P.AUTH, S.REPLY, 535, "5.7.8 Username and Password not accepted. "
         "For more information, go to\n5.7.8  https://support.google.com/mail/?p=BadCredentials"),
         Cause.BAD_CREDENTIALS, PERMANENT, context=GMAIL, provider="gmail",
         explanation=("app password",), fix=("2-Step Verification", "app password", "xoauth2")),
    Case("workspace 535 5.7.8", F(P.AUTH, S.REPLY, 535, "5.7.8 Username and Password not "
         "accepted"), Cause.BAD_CREDENTIALS, PERMANENT, context=WORKSPACE,
         provider="google_workspace", fix=("app password",)),
    Case("gmail 534 5.7.9", F(P.AUTH, S.REPLY, 534, "5.7.9 Application-specific password "
         "required. For more information, go to\n5.7.9  https://support.google.com/mail/"
         "?p=InvalidSecondFactor"), Cause.APP_PASSWORD_REQUIRED, CONFIG, context=GMAIL,
         provider="gmail", title=("Gmail", "app password"),
         fix=("2-Step Verification", "App passwords", "Google OAuth walkthrough")),
    Case("gmail 534 5.7.14 web login", F(P.AUTH, S.REPLY, 534, "5.7.14 Please log in via your "
         "web browser and then try again."), Cause.APP_PASSWORD_REQUIRED, CONFIG, context=GMAIL,
         provider="gmail"),
    Case("app password by words on an unknown host", F(P.AUTH, S.REPLY, 534, "5.7.9 "
         "Application-specific password required"), Cause.APP_PASSWORD_REQUIRED, CONFIG),
    Case("534 mechanism too weak", F(P.AUTH, S.REPLY, 534, "5.7.9 Authentication mechanism is "
         "too weak"), Cause.MECHANISM_NOT_OFFERED, CONFIG, explanation=("too weak",)),
    Case("504 unrecognized mechanism", F(P.AUTH, S.REPLY, 504, "5.5.4 Unrecognized "
         "authentication type"), Cause.MECHANISM_NOT_OFFERED, CONFIG, fix=("auth to auto",)),
    Case("m365 5.7.139 tenant", F(P.AUTH, S.REPLY, 535, "5.7.139 Authentication unsuccessful, "
         "SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/"
         "smtp_auth_disabled for more information."), Cause.BASIC_AUTH_DISABLED, CONFIG,
         context=M365, provider="microsoft365", explanation=("2026", "OAuth"),
         fix=("xoauth2", "Microsoft OAuth walkthrough", "Authenticated SMTP",
              "Set-CASMailbox", "SmtpClientAuthenticationDisabled $false", "SMTP.Send")),
    Case("m365 5.7.139 basic auth", F(P.AUTH, S.REPLY, 535, "5.7.139 Authentication "
         "unsuccessful, basic authentication is disabled."), Cause.BASIC_AUTH_DISABLED, CONFIG,
         context=M365, provider="microsoft365", explanation=("security defaults",),
         fix=("xoauth2", "Stopgap")),
    Case("m365 5.7.139 with OAuth: SMTP AUTH off", F(P.AUTH, S.REPLY, 535, "5.7.139 "
         "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."),
         Cause.BASIC_AUTH_DISABLED, CONFIG, context=replace(M365, auth="xoauth2"),
         provider="microsoft365", title=("SMTP AUTH",), explanation=("OAuth",),
         fix=("Manage email apps", "Set-CASMailbox")),
    Case("m365 5.7.30 basic auth removed", F(P.AUTH, S.REPLY, 550, "5.7.30 Basic "
         "authentication is not supported for Client Submission."), Cause.BASIC_AUTH_DISABLED,
         CONFIG, context=M365, provider="microsoft365", fix=("xoauth2",)),
    Case("m365 535 5.7.3", F(P.AUTH, S.REPLY, 535, "5.7.3 Authentication unsuccessful "
         "[AM0PR01CA0000.eurprd01.prod.exchangelabs.com]"), Cause.BAD_CREDENTIALS, PERMANENT,
         context=M365, provider="microsoft365", explanation=("multi-factor", "security defaults"),
         fix=("xoauth2", "Manage email apps")),
    Case("m365 535 5.7.3 with a token", F(P.AUTH, S.REPLY, 535, "5.7.3 Authentication "
         "unsuccessful"), Cause.OAUTH_TOKEN_INVALID, PERMANENT,
         context=replace(M365, auth="xoauth2"), provider="microsoft365",
         fix=("Microsoft OAuth walkthrough", "SMTP.Send", "Manage email apps")),
    Case("gmail xoauth2 334 challenge", F(P.AUTH, S.REPLY, 334, xoauth2_challenge(
         status="400", schemes="Bearer", scope="https://mail.google.com/")),
         Cause.OAUTH_TOKEN_INVALID, PERMANENT, context=replace(GMAIL, auth="xoauth2"),
         provider="gmail", explanation=("https://mail.google.com/",),
         fix=("Google OAuth walkthrough", "gmail.send", "username")),
    Case("gmail xoauth2 then 535", F(P.AUTH, S.REPLY, 535, "5.7.8 Username and Password not "
         "accepted"), Cause.OAUTH_TOKEN_INVALID, PERMANENT,
         context=replace(GMAIL, auth="xoauth2"), provider="gmail", title=("OAuth",)),
    Case("generic 535", F(P.AUTH, S.REPLY, 535, "5.7.8 Error: authentication failed"),
         Cause.BAD_CREDENTIALS, PERMANENT, explanation=("ann@example.net",),
         fix=("username", "store the password again")),
    Case("outlook.com 535", F(P.AUTH, S.REPLY, 535, "5.7.3 Authentication unsuccessful"),
         Cause.BAD_CREDENTIALS, PERMANENT, provider="outlook_com",
         context=replace(CTX, host="smtp-mail.outlook.com", username="ann@outlook.com"),
         fix=("xoauth2", "Microsoft OAuth walkthrough")),
    Case("yahoo 535 without enhanced code", F(P.AUTH, S.REPLY, 535, "Authentication failed"),
         Cause.BAD_CREDENTIALS, PERMANENT, context=YAHOO, provider="yahoo",
         fix=("Generate app password",)),
    Case("530 must issue STARTTLS", F(P.AUTH, S.REPLY, 530, "5.7.0 Must issue a STARTTLS "
         "command first"), Cause.ENCRYPTION_REQUIRED, CONFIG,
         context=replace(CTX, security="none"), explanation=("encrypted", "none"),
         fix=("starttls",)),
    Case("538 encryption required", F(P.AUTH, S.REPLY, 538, "5.7.11 Encryption required for "
         "requested authentication mechanism"), Cause.ENCRYPTION_REQUIRED, CONFIG),
    Case("454 temporary auth failure", F(P.AUTH, S.REPLY, 454, "4.7.0 Temporary "
         "authentication failure"), Cause.AUTH_TEMPORARY_FAILURE, TRANSIENT,
         fix=("again in a few minutes",)),
    Case("gmail 454 too many logins", F(P.AUTH, S.REPLY, 454, "4.7.0 Too many login attempts, "
         "please try again later."), Cause.AUTH_TEMPORARY_FAILURE, TRANSIENT, context=GMAIL,
         provider="gmail", explanation=("too many sign-in attempts",)),
    # ---------------------------------------------------------------- mail from
    Case("m365 530 5.7.57 anonymous", F(P.MAIL, S.REPLY, 530, "5.7.57 Client not authenticated "
         "to send mail. Error: 535 5.7.3 Authentication unsuccessful"), Cause.AUTH_REQUIRED,
         CONFIG, context=replace(M365, auth="none"), provider="microsoft365",
         explanation=("anonymous",), fix=("auth to auto", "Manage email apps", "xoauth2")),
    Case("530 authentication required", F(P.MAIL, S.REPLY, 530, "5.7.0 Authentication "
         "required"), Cause.AUTH_REQUIRED, CONFIG, context=replace(CTX, auth="none"),
         explanation=("auth is none",)),
    # auth auto that reached MAIL still auto signed in with nothing: nothing was stored
    Case("auto without a password, 530 at MAIL", F(P.MAIL, S.REPLY, 530, "5.7.0 "
         "Authentication required"), Cause.PASSWORD_MISSING, CONFIG,
         context=replace(CTX, auth="auto"), title=("no password",),
         explanation=("auth is auto", "ann@example.net"),
         fix=("store the password for ann@example.net",)),
    Case("auto without a password at microsoft 365", F(P.MAIL, S.REPLY, 530, "5.7.57 Client "
         "not authenticated to send mail."), Cause.PASSWORD_MISSING, CONFIG,
         context=replace(M365, auth="auto"), provider="microsoft365",
         fix=("store the password", "xoauth2", "Microsoft OAuth walkthrough")),
    Case("auto without a password at gmail", F(P.MAIL, S.REPLY, 530, "5.7.0 Authentication "
         "Required."), Cause.PASSWORD_MISSING, CONFIG, context=replace(GMAIL, auth="auto"),
         provider="gmail", fix=("app password", "App passwords", "Google OAuth walkthrough")),
    Case("auto without a token at outlook.com", F(P.MAIL, S.REPLY, 530, "5.7.57 Client not "
         "authenticated to send mail."), Cause.TOKEN_MISSING, CONFIG,
         context=replace(CTX, host="smtp-mail.outlook.com", auth="auto",
                         username="ann@hotmail.com"), provider="outlook_com",
         explanation=("only with OAuth",), fix=("Microsoft OAuth walkthrough", "xoauth2")),
    Case("530 STARTTLS at MAIL", F(P.MAIL, S.REPLY, 530, "5.7.0 Must issue a STARTTLS command "
         "first"), Cause.ENCRYPTION_REQUIRED, CONFIG, context=replace(CTX, security="none")),
    Case("m365 5.7.60 send as", F(P.MAIL, S.REPLY, 550, "5.7.60 SMTP; Client does not have "
         "permissions to send as this sender"), Cause.SEND_AS_DENIED, PERMANENT,
         context=replace(M365, from_address="sales@contoso.example"), provider="microsoft365",
         explanation=("sales@contoso.example", "ann@contoso.example"),
         fix=("Send As", "from_address", "Add-RecipientPermission")),
    Case("m365 SendAsDenied after data", F(P.END_OF_DATA, S.REPLY, 554, "5.2.252 SendAsDenied; "
         "ann@contoso.example not allowed to send as sales@contoso.example; STOREDRV.Submit"),
         Cause.SEND_AS_DENIED, PERMANENT, provider="microsoft365",
         context=replace(M365, from_address="sales@contoso.example"), fix=("Delegation",)),
    Case("send as refused by another server", F(P.MAIL, S.REPLY, 553, "5.7.1 Sender is not "
         "allowed to send as boss@example.net"), Cause.SEND_AS_DENIED, PERMANENT,
         fix=("administrator",)),
    Case("553 5.1.7 sender invalid", F(P.MAIL, S.REPLY, 553, "5.1.7 The sender address is "
         "invalid"), Cause.SENDER_REJECTED, PERMANENT, fix=("from_address",)),
    Case("550 5.1.8 sender domain", F(P.MAIL, S.REPLY, 550, "5.1.8 Bad sender's system "
         "address"), Cause.SENDER_REJECTED, PERMANENT),
    Case("553 not owned", F(P.MAIL, S.REPLY, 553, "5.7.1 <boss@example.net>: Sender address "
         "rejected: not owned by user ann@example.net"), Cause.SENDER_REJECTED, PERMANENT,
         explanation=("its own address",)),
    Case("552 at MAIL (SIZE)", F(P.MAIL, S.REPLY, 552, "5.3.4 Message size exceeds fixed "
         "maximum message size"), Cause.MESSAGE_TOO_LARGE, PERMANENT, fix=("attachments",)),
    Case("451 rate limit at MAIL", F(P.MAIL, S.REPLY, 451, "4.7.1 Rate limit exceeded, try "
         "later"), Cause.RATE_LIMITED, TRANSIENT, fix=("Wait",)),
    Case("postfix anvil rate limit at MAIL", F(P.MAIL, S.REPLY, 450, "4.7.1 Error: too much "
         "mail from 127.0.0.1"), Cause.RATE_LIMITED, TRANSIENT),
    Case("gmail daily quota", F(P.MAIL, S.REPLY, 550, "5.4.5 Daily user sending quota "
         "exceeded."), Cause.RATE_LIMITED, PERMANENT, context=GMAIL, provider="gmail",
         fix=("24 hours",)),
    Case("421 at MAIL", F(P.MAIL, S.REPLY, 421, "4.3.2 Service shutting down"),
         Cause.SERVICE_UNAVAILABLE, TRANSIENT, explanation=("MAIL FROM", "safe to send it again")),
    Case("blocklisted at MAIL", F(P.MAIL, S.REPLY, 554, "5.7.1 Service unavailable; Client "
         "host [203.0.113.9] blocked using zen.spamhaus.org"), Cause.SERVICE_REFUSED,
         PERMANENT, explanation=("blocklist",)),
    Case("SMTPUTF8 not offered", F(P.MAIL, S.NOT_OFFERED, detail="SMTPUTF8"),
         Cause.SERVER_ERROR, PERMANENT, explanation=("SMTPUTF8", "non-ASCII"),
         fix=("ASCII address",)),
    Case("other extension not offered", F(P.MAIL, S.NOT_OFFERED, detail="8BITMIME"),
         Cause.SERVER_ERROR, PERMANENT, explanation=("8BITMIME",)),
    # ---------------------------------------------------------------- rcpt to
    Case("postfix relay denied", F(P.RCPT, S.REPLY, 554, "5.7.1 <bob@elsewhere.example>: "
         "Relay access denied"), Cause.RELAY_DENIED, PERMANENT,
         context=replace(CTX, auth="none"), fix=("auth to auto", "relay")),
    Case("m365 5.7.54 unable to relay", F(P.RCPT, S.REPLY, 550, "5.7.54 SMTP; Unable to relay "
         "recipient in non-accepted domain"), Cause.RELAY_DENIED, PERMANENT,
         context=M365_DIRECT, provider="microsoft365", fix=("connector", "smtp.office365.com")),
    Case("bare 550 5.7.1 at RCPT", F(P.RCPT, S.REPLY, 550, "5.7.1 Message rejected"),
         Cause.RELAY_DENIED, PERMANENT, explanation=("signed in as ann@example.net",),
         fix=("submission server", "outside domains")),
    Case("550 5.1.1 user unknown", F(P.RCPT, S.REPLY, 550, "5.1.1 <bob@example.org>: "
         "Recipient address rejected: User unknown in virtual mailbox table"),
         Cause.RECIPIENT_REJECTED, PERMANENT, fix=("recipient",)),
    Case("550 no such user", F(P.RCPT, S.REPLY, 550, "No such user here"),
         Cause.RECIPIENT_REJECTED, PERMANENT),
    Case("553 other recipient refusal", F(P.RCPT, S.REPLY, 553, "Requested action not taken"),
         Cause.RECIPIENT_REJECTED, PERMANENT),
    Case("451 4.7.1 greylisting", F(P.RCPT, S.REPLY, 451, "4.7.1 Please try again later"),
         Cause.GREYLISTED, TRANSIENT, explanation=("retry",), fix=("Wait",)),
    Case("450 greylisted by postgrey", F(P.RCPT, S.REPLY, 450, "4.2.0 <bob@example.org>: "
         "Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/"),
         Cause.GREYLISTED, TRANSIENT),
    Case("452 4.2.2 mailbox full", F(P.RCPT, S.REPLY, 452, "4.2.2 Mailbox full"),
         Cause.MAILBOX_FULL, TRANSIENT, explanation=("quota",)),
    Case("552 5.2.2 over quota", F(P.RCPT, S.REPLY, 552, "5.2.2 <bob@example.org>: user is "
         "over quota"), Cause.MAILBOX_FULL, PERMANENT),
    Case("452 4.5.3 too many recipients", F(P.RCPT, S.REPLY, 452, "4.5.3 Too many recipients"),
         Cause.RATE_LIMITED, TRANSIENT),
    Case("451 local error at RCPT", F(P.RCPT, S.REPLY, 451, "4.3.0 Local error in processing"),
         Cause.SERVER_ERROR, TRANSIENT),
    Case("530 at RCPT", F(P.RCPT, S.REPLY, 530, "5.7.1 Authentication required"),
         Cause.AUTH_REQUIRED, CONFIG, context=replace(CTX, auth="none")),
    # Postfix turns an unsigned client away at RCPT (NOTES: "554 5.7.1 ... Access denied")
    Case("auto without a password, postfix at RCPT", F(P.RCPT, S.REPLY, 554, "5.7.1 "
         "<bob@example.org>: Relay access denied"), Cause.PASSWORD_MISSING, CONFIG,
         context=replace(CTX, auth="auto"), fix=("store the password",)),
    # ---------------------------------------------------------------- data, end of data
    Case("552 too large after data", F(P.END_OF_DATA, S.REPLY, 552, "5.3.4 Message too big"),
         Cause.MESSAGE_TOO_LARGE, PERMANENT),
    Case("554 5.7.1 spam", F(P.END_OF_DATA, S.REPLY, 554, "5.7.1 Message rejected as spam"),
         Cause.MESSAGE_REJECTED, PERMANENT, fix=("SPF", "DKIM")),
    Case("550 5.7.26 DMARC", F(P.END_OF_DATA, S.REPLY, 550, "5.7.26 Unauthenticated email from "
         "example.net is not accepted due to domain's DMARC policy"), Cause.MESSAGE_REJECTED,
         PERMANENT),
    Case("554 transaction failed", F(P.END_OF_DATA, S.REPLY, 554, "Transaction failed"),
         Cause.MESSAGE_REJECTED, PERMANENT),
    Case("451 after data", F(P.END_OF_DATA, S.REPLY, 451, "4.3.0 Error: queue file write "
         "error"), Cause.SERVER_ERROR, TRANSIENT),
    Case("timeout after the final dot", F(P.END_OF_DATA, S.TIMEOUT), Cause.OUTCOME_UNKNOWN,
         Kind.OUTCOME_UNKNOWN, explanation=("may have been delivered",),
         fix=("inbox", "before sending again")),
    Case("disconnect after the final dot", F(P.END_OF_DATA, S.DISCONNECTED),
         Cause.OUTCOME_UNKNOWN, Kind.OUTCOME_UNKNOWN, explanation=("may have been delivered",)),
    Case("disconnect mid-body", F(P.DATA, S.DISCONNECTED), Cause.DISCONNECTED, TRANSIENT,
         explanation=("NOT accepted",)),
    Case("timeout mid-body", F(P.DATA, S.TIMEOUT), Cause.COMMAND_TIMEOUT, TRANSIENT,
         explanation=("not accepted",), fix=("command_timeout",)),
    Case("554 no valid recipients at DATA", F(P.DATA, S.REPLY, 554, "5.5.1 Error: no valid "
         "recipients"), Cause.SERVER_ERROR, PERMANENT),
    Case("552 at DATA command", F(P.DATA, S.REPLY, 552, "Message size exceeds limit"),
         Cause.MESSAGE_TOO_LARGE, PERMANENT),
    # ---------------------------------------------------------------- anywhere
    Case("timeout at EHLO", F(P.EHLO, S.TIMEOUT), Cause.COMMAND_TIMEOUT, TRANSIENT,
         explanation=("during EHLO",)),
    Case("disconnect at QUIT", F(P.QUIT, S.DISCONNECTED), Cause.DISCONNECTED, TRANSIENT,
         explanation=("already been accepted",), fix=("Nothing to fix",)),
    Case("unknown reply", F(P.QUIT, S.REPLY, 500, "5.5.2 Syntax error"), Cause.SERVER_ERROR,
         PERMANENT),
    # ---------------------------------------------------------------- OAuth sign-in (consent)
    Case("state mismatch", F(P.CONSENT, S.OAUTH, enhanced="state_mismatch", detail="paste"),
         Cause.STATE_MISMATCH, PERMANENT, context=GOOGLE_TOKEN, provider="gmail",
         fix=("newest",)),
    Case("loopback wait ran out", F(P.CONSENT, S.OAUTH, enhanced="timeout", detail="loopback"),
         Cause.CONSENT_TIMEOUT, PERMANENT, context=GOOGLE_TOKEN, provider="gmail",
         explanation=("loopback",), fix=("device code", "paste")),
    Case("device code blocked by conditional access", F(P.CONSENT, S.OAUTH, 400,
         "AADSTS53003: Access has been blocked by Conditional Access policies. The access "
         "policy does not allow token issuance.", enhanced="access_denied",
         detail="device_code"), Cause.DEVICE_CODE_BLOCKED, CONFIG, context=MS_TOKEN,
         provider="microsoft365", explanation=("Conditional Access",),
         fix=("browser sign-in", "loopback", "Device code flow")),
    Case("device code blocked, seen on the fake provider", F(P.CONSENT, S.OAUTH, 400,
         "AADSTS53003: Access has been blocked by Conditional Access policies.",
         enhanced="access_denied", detail="device_code"), Cause.DEVICE_CODE_BLOCKED, CONFIG,
         context=replace(FAKE_API, auth="xoauth2"), provider="microsoft365"),
    Case("AADSTS53003 in the browser flow is a plain refusal", F(P.CONSENT, S.OAUTH, 400,
         "AADSTS53003: Access has been blocked by Conditional Access policies.",
         enhanced="access_denied", detail="auth_code"), Cause.CONSENT_DENIED, PERMANENT,
         context=MS_TOKEN, provider="microsoft365"),
    Case("google consent denied", F(P.CONSENT, S.OAUTH, enhanced="access_denied",
         detail="loopback"), Cause.CONSENT_DENIED, PERMANENT, context=GOOGLE_TOKEN,
         provider="gmail", fix=("Test users", "App access control")),
    Case("microsoft admin consent required", F(P.CONSENT, S.OAUTH, 400, "AADSTS65001: The user "
         "or administrator has not consented to use the application.",
         enhanced="consent_required", detail="auth_code"), Cause.CONSENT_DENIED, PERMANENT,
         context=MS_TOKEN, provider="microsoft365", explanation=("consent",),
         fix=("Grant admin consent", "SMTP.Send")),
    Case("device code declined", F(P.CONSENT, S.OAUTH, 400, enhanced="authorization_declined",
         detail="device_code"), Cause.DEVICE_CODE_DECLINED, PERMANENT, context=MS_TOKEN,
         provider="microsoft365", fix=("devicelogin",)),
    Case("device code expired", F(P.CONSENT, S.OAUTH, 400, enhanced="expired_token",
         detail="device_code"), Cause.DEVICE_CODE_EXPIRED, PERMANENT, context=MS_TOKEN,
         provider="microsoft365", explanation=("15 minutes",)),
    Case("google invalid client", F(P.CONSENT, S.OAUTH, 401, "The OAuth client was not found.",
         enhanced="invalid_client", detail="auth_code"), Cause.OAUTH_CLIENT_INVALID, CONFIG,
         context=GOOGLE_TOKEN, provider="gmail", fix=("Credentials", "Desktop app")),
    Case("microsoft public client flows off", F(P.CONSENT, S.OAUTH, 401, "AADSTS7000218: The "
         "request body must contain the following parameter: 'client_assertion' or "
         "'client_secret'.", enhanced="invalid_client", detail="device_code"),
         Cause.OAUTH_CLIENT_INVALID, CONFIG, context=MS_TOKEN, provider="microsoft365",
         explanation=("public client flows",),
         fix=("Allow public client flows", "App registrations", "Authentication")),
    Case("unauthorized client", F(P.CONSENT, S.OAUTH, 400, enhanced="unauthorized_client",
         detail="device_code"), Cause.OAUTH_CLIENT_INVALID, CONFIG, context=MS_TOKEN,
         provider="microsoft365"),
    Case("app not in tenant (invalid_request)", F(P.CONSENT, S.OAUTH, 400, "AADSTS700016: "
         "Application with identifier 'x' was not found in the directory 'contoso'.",
         enhanced="invalid_request", detail="auth_code"), Cause.OAUTH_CLIENT_INVALID, CONFIG,
         context=MS_TOKEN, provider="microsoft365", fix=("oauth_tenant",)),
    Case("google redirect mismatch", F(P.CONSENT, S.OAUTH, 400, enhanced="redirect_uri_mismatch",
         detail="loopback"), Cause.OAUTH_REDIRECT_MISMATCH, CONFIG, context=GOOGLE_TOKEN,
         provider="gmail", fix=("Desktop app",)),
    Case("microsoft redirect mismatch", F(P.CONSENT, S.OAUTH, 400, "AADSTS50011: The redirect "
         "URI 'http://localhost:5123' specified in the request does not match the redirect URIs "
         "configured for the application.", enhanced="invalid_request", detail="loopback"),
         Cause.OAUTH_REDIRECT_MISMATCH, CONFIG, context=MS_TOKEN, provider="microsoft365",
         fix=("Mobile and desktop applications", "http://localhost")),
    Case("google PKCE rejected", F(P.CONSENT, S.OAUTH, 400, "Invalid code verifier.",
         enhanced="invalid_grant", detail="auth_code"), Cause.PKCE_REJECTED, PERMANENT,
         context=GOOGLE_TOKEN, provider="gmail", explanation=("code verifier",)),
    Case("microsoft PKCE rejected", F(P.CONSENT, S.OAUTH, 400, "AADSTS501481: The "
         "Code_Verifier does not match the code_challenge supplied in the authorization "
         "request.", enhanced="invalid_grant", detail="auth_code"), Cause.PKCE_REJECTED,
         PERMANENT, context=MS_TOKEN, provider="microsoft365"),
    Case("code used twice", F(P.CONSENT, S.OAUTH, 400, "Malformed auth code.",
         enhanced="invalid_grant", detail="paste"), Cause.CODE_INVALID, PERMANENT,
         context=GOOGLE_TOKEN, provider="gmail", explanation=("already used",)),
    Case("asked for a scope the app may not", F(P.CONSENT, S.OAUTH, 400, "Some requested "
         "scopes were invalid.", enhanced="invalid_scope", detail="auth_code"),
         Cause.INSUFFICIENT_SCOPE, PERMANENT, context=GOOGLE_TOKEN, provider="gmail",
         explanation=("not allowed to request",), fix=("restricted scope",)),
    Case("unknown OAuth error", F(P.CONSENT, S.OAUTH, 400, "Required parameter is missing.",
         enhanced="invalid_request", detail="auth_code"), Cause.SERVER_ERROR, PERMANENT,
         context=GOOGLE_TOKEN, provider="gmail", explanation=("the OAuth sign-in",)),
    # ---------------------------------------------------------------- OAuth refresh (token)
    Case("google refresh revoked", F(P.TOKEN, S.OAUTH, 400, "Token has been expired or "
         "revoked.", enhanced="invalid_grant", detail="refresh"), Cause.TOKEN_REVOKED,
         PERMANENT, context=GOOGLE_TOKEN, provider="gmail",
         explanation=("Testing", "7 days"), fix=("Google OAuth walkthrough", "Publish app")),
    Case("google refresh revoked, seen on the fake provider", F(P.TOKEN, S.OAUTH, 400, "Token "
         "has been expired or revoked.", enhanced="invalid_grant", detail="refresh"),
         Cause.TOKEN_REVOKED, PERMANENT, context=replace(FAKE_API, auth="xoauth2"),
         provider="google_workspace"),  # demo@example.com
    Case("microsoft refresh revoked", F(P.TOKEN, S.OAUTH, 400, "AADSTS50173: The provided "
         "grant has expired due to it being revoked, a fresh auth token is needed.",
         enhanced="invalid_grant", detail="refresh"), Cause.TOKEN_REVOKED, PERMANENT,
         context=MS_TOKEN, provider="microsoft365", explanation=("revoked the user's sessions",)),
    Case("microsoft refresh needs MFA", F(P.TOKEN, S.OAUTH, 400, "AADSTS50076: Due to a "
         "configuration change made by your administrator, you must use multi-factor "
         "authentication.", enhanced="interaction_required", detail="refresh"),
         Cause.TOKEN_REVOKED, PERMANENT, context=MS_TOKEN, provider="microsoft365"),
    Case("a code_verifier word at refresh is still a revoked grant", F(P.TOKEN, S.OAUTH, 400,
         "code_verifier not expected", enhanced="invalid_grant", detail="refresh"),
         Cause.TOKEN_REVOKED, PERMANENT, context=GOOGLE_TOKEN, provider="gmail"),
    Case("token endpoint throttles", F(P.TOKEN, S.OAUTH, 429, enhanced="slow_down",
         detail="refresh", retry_after=12), Cause.RATE_LIMITED, TRANSIENT, context=MS_TOKEN,
         provider="microsoft365", fix=("12 seconds",)),
    Case("token endpoint temporarily unavailable", F(P.TOKEN, S.OAUTH, 400,
         enhanced="temporarily_unavailable", detail="refresh"), Cause.SERVER_ERROR, TRANSIENT,
         context=GOOGLE_TOKEN, provider="gmail", explanation=("Google's sign-in service",)),
    # ---------------------------------------------------------------- mail APIs (request)
    Case("api token missing", F(P.SETUP, S.MISSING, detail="token"), Cause.TOKEN_MISSING,
         CONFIG, context=GMAIL_API, provider="gmail", explanation=("Gmail API",),
         fix=("Google OAuth walkthrough",)),
    Case("gmail 401", F(P.REQUEST, S.HTTP, 401, "Request had invalid authentication "
         "credentials. Expected OAuth 2 access token, login cookie or other valid "
         "authentication credential.", enhanced="UNAUTHENTICATED"), Cause.OAUTH_TOKEN_INVALID,
         PERMANENT, context=GMAIL_API, provider="gmail", explanation=("Gmail API", "401"),
         fix=("gmail.send",)),
    Case("graph 401 wrong audience", F(P.REQUEST, S.HTTP, 401, "Access token validation "
         "failure. Invalid audience.", enhanced="InvalidAuthenticationToken"),
         Cause.OAUTH_TOKEN_INVALID, PERMANENT, context=GRAPH, provider="microsoft365",
         explanation=("https://graph.microsoft.com", "SMTP.Send"), fix=("Mail.Send",)),
    Case("graph 401 expired", F(P.REQUEST, S.HTTP, 401, "Lifetime validation failed, the token "
         "is expired.", enhanced="InvalidAuthenticationToken"), Cause.TOKEN_EXPIRED,
         PERMANENT, context=GRAPH, provider="microsoft365", fix=("time zone",)),
    Case("gmail 403 scope", F(P.REQUEST, S.HTTP, 403, "Request had insufficient authentication "
         "scopes.", enhanced="ACCESS_TOKEN_SCOPE_INSUFFICIENT"), Cause.INSUFFICIENT_SCOPE,
         PERMANENT, context=GMAIL_API, provider="gmail",
         explanation=("https://www.googleapis.com/auth/gmail.send",),
         fix=("OAuth consent screen", "https://mail.google.com/", "restricted")),
    Case("graph 403 scope words", F(P.REQUEST, S.HTTP, 403, "Missing scope Mail.Send",
         enhanced="ErrorAccessDenied"), Cause.INSUFFICIENT_SCOPE, PERMANENT, context=GRAPH,
         provider="microsoft365", fix=("API permissions", "Grant admin consent")),
    Case("graph 403 access denied", F(P.REQUEST, S.HTTP, 403, "Access is denied. Check "
         "credentials and try again.", enhanced="ErrorAccessDenied"), Cause.API_ACCESS_DENIED,
         PERMANENT, context=GRAPH, provider="microsoft365",
         fix=("Mail.Send", "admin consent", "Exchange Online mailbox")),
    Case("gmail api disabled", F(P.REQUEST, S.HTTP, 403, "Gmail API has not been used in "
         "project 1234 before or it is disabled. Enable it by visiting https://console."
         "developers.google.com/apis/api/gmail.googleapis.com/overview?project=1234 then "
         "retry.", enhanced="accessNotConfigured"), Cause.API_ACCESS_DENIED, PERMANENT,
         context=GMAIL_API, provider="gmail", title=("not enabled",),
         fix=("Library", "Gmail API", "Enable")),
    Case("gmail 403 other", F(P.REQUEST, S.HTTP, 403, "Mail service not enabled",
         enhanced="failedPrecondition"), Cause.API_ACCESS_DENIED, PERMANENT,
         context=GMAIL_API, provider="gmail", fix=("API controls",)),
    Case("403 on the fake provider names no provider", F(P.REQUEST, S.HTTP, 403, "denied"),
         Cause.API_ACCESS_DENIED, PERMANENT, context=FAKE_API),
    Case("gmail 403 user rate limit", F(P.REQUEST, S.HTTP, 403, "User-rate limit exceeded.",
         enhanced="userRateLimitExceeded"), Cause.RATE_LIMITED, TRANSIENT, context=GMAIL_API,
         provider="gmail", explanation=("per user",)),
    Case("graph 429 throttled", F(P.REQUEST, S.HTTP, 429, "Application is over its "
         "MailboxConcurrency limit.", enhanced="ApplicationThrottled", retry_after=30),
         Cause.RATE_LIMITED, TRANSIENT, context=GRAPH, provider="microsoft365",
         explanation=("Exchange Online",), fix=("Wait 30 seconds", "Retry-After")),
    Case("gmail 429 without Retry-After", F(P.REQUEST, S.HTTP, 429, "Too many requests",
         enhanced="RESOURCE_EXHAUSTED"), Cause.RATE_LIMITED, TRANSIENT, context=GMAIL_API,
         provider="gmail", fix=("a minute or two",)),
    Case("graph 503", F(P.REQUEST, S.HTTP, 503, "Service Unavailable",
         enhanced="serviceNotAvailable", retry_after=5), Cause.SERVER_ERROR, TRANSIENT,
         context=GRAPH, provider="microsoft365", fix=("5 seconds", "Service health")),
    Case("gmail 500", F(P.REQUEST, S.HTTP, 500, "Internal error encountered.",
         enhanced="INTERNAL"), Cause.SERVER_ERROR, TRANSIENT, context=GMAIL_API,
         provider="gmail", fix=("Status Dashboard",)),
    Case("graph send as denied", F(P.REQUEST, S.HTTP, 403, "The user account which was used to "
         "submit this request does not have the right to send mail on behalf of the specified "
         "sending account.", enhanced="ErrorSendAsDenied"), Cause.SEND_AS_DENIED, PERMANENT,
         context=replace(GRAPH, from_address="sales@contoso.example"), provider="microsoft365",
         fix=("Send As",)),
    Case("gmail 400", F(P.REQUEST, S.HTTP, 400, "Invalid To header", enhanced="invalidArgument"),
         Cause.SERVER_ERROR, PERMANENT, context=GMAIL_API, provider="gmail",
         explanation=("the API request",)),
    Case("api connection refused", F(P.CONNECT, S.REFUSED, detail="[Errno 111] Connection "
         "refused"), Cause.CONNECTION_REFUSED, CONFIG, context=replace(FAKE_API, port=4443),
         fix=("api_url",)),
    Case("api certificate untrusted", F(P.TLS, S.TLS_VERIFY, verify_code=20),
         Cause.CERTIFICATE_UNTRUSTED, CONFIG, context=FAKE_API, fix=("ca_file", "proxy")),
    Case("api read timeout after the request", F(P.END_OF_DATA, S.TIMEOUT),
         Cause.OUTCOME_UNKNOWN, Kind.OUTCOME_UNKNOWN, context=GRAPH, provider="microsoft365"),
    # -- Exchange Web Services (what mailkit.senders.ews reports; its tests reach each through
    # real exchangelib against the fake Exchange)
    Case("ews no url", F(P.SETUP, S.MISSING, detail="ews_url"), Cause.SETTING_INVALID, CONFIG,
         context=EWS, title=("EWS URL",), fix=("ews_url", "ews_autodiscover")),
    Case("ews smtp mechanism", F(P.SETUP, S.MISSING, detail="auth cram_md5 cannot sign in to "
         "EWS"), Cause.SETTING_INVALID, CONFIG, context=replace(EWS, auth="cram_md5"),
         fix=("ntlm", "xoauth2")),
    Case("ews autodiscover failed", F(P.REQUEST, S.MISSING, detail="autodiscover: POX at "
         "contoso.example: dns; POX at autodiscover.contoso.example: HTTP 404"),
         Cause.AUTODISCOVER_FAILED, CONFIG, context=EWS, explanation=("HTTP 404",),
         fix=("ews_url", "ews_autodiscover_url", "_autodiscover._tcp")),
    Case("ews dns", F(P.CONNECT, S.DNS, detail="Name or service not known"), Cause.DNS_FAILURE,
         CONFIG, context=EWS, fix=("ews_url",)),
    Case("ews refused", F(P.CONNECT, S.REFUSED, detail="Connection refused"),
         Cause.CONNECTION_REFUSED, CONFIG, context=EWS, fix=("ews_url", "443")),
    Case("ews ntlm not offered", F(P.AUTH, S.HTTP, 401, "Unauthorized",
         auth_mechanisms=frozenset({"BASIC"})), Cause.MECHANISM_NOT_OFFERED, CONFIG,
         context=EWS, explanation=("BASIC",), fix=("login", "WindowsAuthentication")),
    Case("ews nothing offered", F(P.AUTH, S.NOT_OFFERED, 401,
         auth_mechanisms=frozenset({"NEGOTIATE"})), Cause.MECHANISM_NOT_OFFERED, CONFIG,
         context=replace(EWS, auth="auto"), explanation=("NEGOTIATE",)),
    Case("ews bad password", F(P.AUTH, S.HTTP, 401, "Unauthorized",
         auth_mechanisms=frozenset({"NTLM", "BASIC"})), Cause.BAD_CREDENTIALS, PERMANENT,
         context=EWS, explanation=("401", "locked"), fix=("password", "LockedOut")),
    Case("ews locked out", F(P.AUTH, S.HTTP, 401, "The referenced account is currently locked "
         "out"), Cause.ACCOUNT_LOCKED, PERMANENT, context=EWS, fix=("Unlock-ADAccount",)),
    Case("ews online basic refused", F(P.AUTH, S.HTTP, 401, "Unauthorized"),
         Cause.BAD_CREDENTIALS, PERMANENT, context=EWS_ONLINE, provider="microsoft365",
         fix=("xoauth2", "microsoft_graph")),
    Case("ews token refused", F(P.AUTH, S.HTTP, 401, "Unauthorized"), Cause.OAUTH_TOKEN_INVALID,
         PERMANENT, context=replace(EWS_ONLINE, auth="oauth"), provider="microsoft365",
         fix=("EWS.AccessAsUser.All",)),
    Case("ews disabled", F(P.REQUEST, S.HTTP, 403, "Forbidden"), Cause.EWS_UNAVAILABLE,
         PERMANENT, context=EWS, fix=("EwsEnabled",)),
    Case("ews retired online", F(P.REQUEST, S.HTTP, 403, "EWS is retired.\nx-feserver: AM0P"),
         Cause.EWS_UNAVAILABLE, PERMANENT, context=EWS, title=("Exchange Online",),
         fix=("microsoft_graph",)),
    Case("ews wrong url", F(P.REQUEST, S.HTTP, 404, "Not Found"), Cause.SETTING_INVALID, CONFIG,
         context=EWS, fix=("ews_url", "/EWS/Exchange.asmx")),
    Case("ews send as", F(P.MAIL, S.HTTP, 200, "no right to send as", enhanced="ErrorSendAsDenied"),
         Cause.SEND_AS_DENIED, PERMANENT, context=EWS, fix=("Send As", "from_address")),
    Case("ews impersonation", F(P.MAIL, S.HTTP, 500, "may not impersonate",
         enhanced="ErrorImpersonateUserDenied"), Cause.SEND_AS_DENIED, PERMANENT, context=EWS,
         fix=("ApplicationImpersonation",)),
    Case("ews access denied", F(P.REQUEST, S.HTTP, 200, "Access is denied.",
         enhanced="ErrorAccessDenied"), Cause.API_ACCESS_DENIED, PERMANENT, context=EWS,
         fix=("FullAccess",)),
    Case("ews quota", F(P.REQUEST, S.HTTP, 200, "Mailbox quota exceeded.",
         enhanced="ErrorQuotaExceeded"), Cause.MAILBOX_FULL, PERMANENT, context=EWS,
         fix=("Deleted Items",)),
    Case("ews server busy", F(P.REQUEST, S.HTTP, 500, "The server cannot service this request "
         "right now.", enhanced="ErrorServerBusy", retry_after=5), Cause.RATE_LIMITED,
         TRANSIENT, context=EWS, fix=("Wait 5 seconds",)),
    Case("ews invalid recipients", F(P.RCPT, S.HTTP, 200, "invalid",
         enhanced="ErrorInvalidRecipients"), Cause.RECIPIENT_REJECTED, PERMANENT, context=EWS,
         fix=("Mail To",)),
    Case("ews other code", F(P.REQUEST, S.HTTP, 200, "Item not found",
         enhanced="ErrorItemNotFound"), Cause.SERVER_ERROR, PERMANENT, context=EWS,
         title=("ErrorItemNotFound",)),
    Case("ews cut after CreateItem", F(P.END_OF_DATA, S.DISCONNECTED), Cause.OUTCOME_UNKNOWN,
         Kind.OUTCOME_UNKNOWN, context=EWS),
)
# fmt: on


def by_id(case: Case) -> str:
    return case.id


def words_missing(haystack: str, words: tuple[str, ...]) -> list[str]:
    return [w for w in words if w.lower() not in haystack.lower()]


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_case(case: Case) -> None:
    d = diagnose(case.failure, case.context)
    assert (d.phase, d.kind, d.cause) == (case.failure.phase, case.kind, case.cause)
    assert d.provider == case.provider
    assert d.code == case.failure.code
    assert not words_missing(d.title, case.title), d.title
    assert not words_missing(d.explanation, case.explanation), d.explanation
    assert not words_missing("\n".join(d.fix), case.fix), d.fix
    assert d.title
    assert d.explanation
    assert all(step.strip() for step in d.fix)
    assert d.fix


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# Causes produced somewhere other than diagnose()'s rules, with the reason. Today every cause
# has a rule; a cause added to outcome.Cause must either get a rule and a case, or go here.
PRODUCED_ELSEWHERE: dict[Cause, str] = dict.fromkeys(
    DELIVERY_CAUSES,
    "the delivery check's own diagnosis (mailkit.diagnose.delivery, tests/test_verify*.py)",
)


def test_every_cause_is_produced_by_a_case() -> None:
    produced = {diagnose(c.failure, c.context).cause for c in CASES}
    missing = set(Cause) - produced - set(PRODUCED_ELSEWHERE)
    assert not missing, f"causes without a rule or a case: {sorted(missing)}"
    assert not produced & set(PRODUCED_ELSEWHERE)


def test_every_rule_decides_some_case() -> None:
    """A rule no case reaches is dead or shadowed by an earlier, broader rule."""
    used = {id(rule_for(c.failure, c.context)) for c in CASES}
    unused = [i for i, rule in enumerate(RULES) if id(rule) not in used]
    assert not unused, [f"RULES[{i}] {RULES[i].cause}" for i in unused]


def test_rule_for_agrees_with_diagnose() -> None:
    for case in CASES:
        rule = rule_for(case.failure, case.context)
        assert diagnose(case.failure, case.context).cause is rule.cause


# ------------------------------------------------------------------ kinds across the table

CONFIG_CAUSES = {
    Cause.TLS_ON_PLAIN_PORT,
    Cause.PLAIN_ON_TLS_PORT,
    Cause.CERTIFICATE_UNTRUSTED,
    Cause.CERTIFICATE_WRONG_HOST,
    Cause.CERTIFICATE_EXPIRED,
    Cause.CERTIFICATE_PIN_MISMATCH,
    Cause.STARTTLS_MISSING,
    Cause.MECHANISM_NOT_OFFERED,
    Cause.PLAINTEXT_AUTH_REFUSED,
    Cause.HOST_MISSING,
    Cause.PASSWORD_MISSING,
    Cause.TOKEN_MISSING,
}


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_kind_rules(case: Case) -> None:
    d = diagnose(case.failure, case.context)
    if d.cause in CONFIG_CAUSES:
        assert d.kind is Kind.CONFIGURATION
    elif d.cause is Cause.OUTCOME_UNKNOWN:
        assert d.kind is Kind.OUTCOME_UNKNOWN
    elif d.cause is Cause.GREYLISTED:
        assert d.kind is Kind.TRANSIENT
    elif d.kind is not Kind.CONFIGURATION and case.failure.signal is Signal.REPLY:
        assert case.failure.code is not None
        expected = Kind.TRANSIENT if case.failure.code // 100 == 4 else Kind.PERMANENT
        assert d.kind is expected


def test_only_end_of_data_is_outcome_unknown() -> None:
    for phase in Phase:
        for signal in (Signal.TIMEOUT, Signal.DISCONNECTED):
            d = diagnose(Failure(phase, signal), CTX)
            assert (d.kind is Kind.OUTCOME_UNKNOWN) == (phase is Phase.END_OF_DATA), phase


# ------------------------------------------------------------------ safety of the advice

UNSAFE_ADVICE = re.compile(
    r"disable (certificate )?verification|verify\s*=\s*false|cert_none|check_hostname"
    r"|insecure|skip verification|ignore (the )?certificate",
    re.IGNORECASE,
)


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_no_advice_turns_certificate_checks_off(case: Case) -> None:
    d = diagnose(case.failure, case.context)
    for text in (d.title, d.explanation, *d.fix):
        assert not UNSAFE_ADVICE.search(text), text


def test_unsafe_advice_pattern_catches_what_it_must() -> None:
    for bad in ("Disable verification", "set verify=False", "ssl.CERT_NONE", "--insecure"):
        assert UNSAFE_ADVICE.search(bad)


@pytest.mark.parametrize(
    "cause",
    [
        Cause.CERTIFICATE_UNTRUSTED,
        Cause.CERTIFICATE_WRONG_HOST,
        Cause.CERTIFICATE_EXPIRED,
    ],
)
def test_certificate_fixes_say_verification_stays_on(cause: Cause) -> None:
    case = next(c for c in CASES if c.cause is cause)
    fix = " ".join(diagnose(case.failure, case.context).fix).lower()
    assert "verification on" in fix or "never switches certificate checking off" in fix


CANARY = "canary-Zq9!k7#Vx2"


@pytest.mark.parametrize("case", [c for c in CASES if c.failure.phase is Phase.AUTH], ids=by_id)
def test_auth_advice_never_echoes_the_senders_detail(case: Case) -> None:
    """Defence in depth: even if a sender let a secret slip into ``detail`` during AUTH, the
    diagnosis would not repeat it (only the server's reply is passed through, as server_text)."""
    failure = replace(case.failure, detail=f"{case.failure.detail} {CANARY}")
    d = diagnose(failure, case.context)
    assert d.cause is case.cause
    for text in (d.title, d.explanation, *d.fix, d.server_text):
        assert CANARY not in text


# ------------------------------------------------------------------ provider tailoring


def test_same_reply_different_advice_per_provider() -> None:
    failure = F(P.AUTH, S.REPLY, 535, "5.7.8 Authentication failed")
    generic = diagnose(failure, CTX)
    gmail = diagnose(failure, GMAIL)
    m365 = diagnose(failure, M365)
    assert (generic.provider, gmail.provider, m365.provider) == (None, "gmail", "microsoft365")
    assert len({generic.fix, gmail.fix, m365.fix}) == 3
    assert generic.references == ()
    assert any("google" in ref for ref in gmail.references)
    assert any("microsoft" in ref for ref in m365.references)


def test_provider_is_reported_even_when_the_advice_is_generic() -> None:
    d = diagnose(F(P.CONNECT, S.REFUSED), GMAIL)
    assert d.provider == "gmail"


def test_workspace_is_told_apart_by_the_address() -> None:
    d = diagnose(F(P.AUTH, S.REPLY, 535, "5.7.8 x"), replace(WORKSPACE, username="ann"))
    assert d.provider == "google_workspace"  # from_address decides when the user name has no @


# ------------------------------------------------------------------ enhanced codes, server text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.7.8 Username and Password not accepted", "5.7.8"),
        ("5.7.139 Authentication unsuccessful", "5.7.139"),
        ("535 5.7.8 with the reply code left in", "5.7.8"),
        ("535-5.7.8 continuation line", "5.7.8"),
        ("  4.2.0 leading blanks", "4.2.0"),
        ("2.0.0 Ok: queued", "2.0.0"),
        ("5.7.8", "5.7.8"),
        ("5.07.001 leading zeros", "5.7.1"),
        ("5.7.8\nsecond line", "5.7.8"),
        ("5355.7.8 glued to the reply code", None),
        ("\uff15.\uff17.\uff18 full-width digits", None),
        ("6.1.1 not a class", None),
        ("3.1.1 not a class", None),
        ("5.7.8x glued", None),
        ("5.7 too short", None),
        ("5.7.1234 detail too long", None),
        ("5.1234.1 subject too long", None),
        ("Relay 5.7.1 not at the start", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_enhanced(text: str | None, expected: str | None) -> None:
    assert parse_enhanced(text) == expected


def test_senders_enhanced_code_wins_over_the_text() -> None:
    d = diagnose(F(P.AUTH, S.REPLY, 535, "Authentication unsuccessful", enhanced="5.7.139"), M365)
    assert (d.enhanced, d.cause) == ("5.7.139", Cause.BASIC_AUTH_DISABLED)


def test_invalid_enhanced_from_sender_falls_back_to_the_text() -> None:
    d = diagnose(F(P.AUTH, S.REPLY, 535, "5.7.8 bad", enhanced="garbage"), CTX)
    assert d.enhanced == "5.7.8"


def test_server_text_does_not_repeat_the_enhanced_code() -> None:
    text = (
        "5.7.8 Username and Password not accepted. For more information, go to\n"
        "5.7.8  https://support.google.com/mail/?p=BadCredentials"
    )
    d = diagnose(F(P.AUTH, S.REPLY, 535, text), GMAIL)
    assert d.server_text == (
        "Username and Password not accepted. For more information, go to\n"
        "https://support.google.com/mail/?p=BadCredentials"
    )
    assert "Server said: 535 5.7.8 Username and Password not accepted" in d.to_text()


def test_server_text_is_trimmed_and_cleaned() -> None:
    d = diagnose(F(P.RCPT, S.REPLY, 550, "5.1.1 " + "x" * 5000 + "\x00\x1b[31m"), CTX)
    assert len(d.server_text) == MAX_SERVER_TEXT
    assert d.server_text.endswith("…")
    short = diagnose(F(P.RCPT, S.REPLY, 550, "5.1.1 no\x1b[31m such\r\nuser\u202e!"), CTX)
    assert short.server_text == "no [31m such\nuser !"


def test_as_dict_carries_the_diagnosis() -> None:
    d = diagnose(F(P.END_OF_DATA, S.TIMEOUT), GMAIL)
    data = d.as_dict()
    assert data["kind"] == "outcome_unknown"
    assert data["cause"] == "outcome_unknown"
    assert data["provider"] == "gmail"
    assert json.loads(json.dumps(data)) == data


# ------------------------------------------------------------------ properties

HOSTS = st.sampled_from(
    ["smtp.gmail.com", "smtp.office365.com", "smtp.mail.yahoo.com", "mail.example.net", ""]
) | st.text(max_size=40)
ENHANCED = st.builds(
    "{}.{}.{} ".format,
    st.sampled_from("245"),
    st.integers(0, 999),
    st.integers(0, 999),
)


@given(
    phase=st.sampled_from(Phase),
    signal=st.sampled_from(Signal),
    code=st.none() | st.integers(200, 599),
    text=st.text(max_size=1500) | st.builds(str.__add__, ENHANCED, st.text(max_size=200)),
    enhanced=st.none() | st.text(max_size=12),
    detail=st.text(max_size=200),
    verify=st.none() | st.integers(-1, 100),
    mechs=st.frozensets(st.sampled_from(["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "NTLM"])),
    host=HOSTS,
    port=st.integers(1, 65535),
    security=st.sampled_from(["auto", "implicit_tls", "starttls", "none"]),
    auth=st.sampled_from(["auto", "login", "plain", "cram_md5", "ntlm", "xoauth2", "none"]),
    user=st.none() | st.text(max_size=40),
)
def test_any_failure_gets_a_sound_diagnosis(
    phase: Phase,
    signal: Signal,
    code: int | None,
    text: str,
    enhanced: str | None,
    detail: str,
    verify: int | None,
    mechs: frozenset[str],
    host: str,
    port: int,
    security: str,
    auth: str,
    user: str | None,
) -> None:
    failure = Failure(
        phase,
        signal,
        code=code,
        enhanced=enhanced,
        text=text,
        verify_code=verify,
        detail=detail,
        auth_mechanisms=mechs,
    )
    context = SendContext(host=host, port=port, security=security, auth=auth, username=user)
    d = diagnose(failure, context)
    assert isinstance(d, Diagnosis)
    assert d.phase is phase
    assert d.code == code
    assert d.kind in Kind
    assert d.cause in Cause
    assert d.title
    assert d.explanation
    assert d.fix
    assert all(s.strip() for s in d.fix)
    assert len(d.server_text) <= MAX_SERVER_TEXT
    assert d.enhanced is None or re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", d.enhanced)
    assert (d.kind is Kind.OUTCOME_UNKNOWN) == (d.cause is Cause.OUTCOME_UNKNOWN)
    d.to_text()


@given(
    cls=st.sampled_from("245"),
    subject=st.integers(0, 999),
    detail=st.integers(0, 999),
    rest=st.text(max_size=50),
)
def test_parse_enhanced_finds_any_valid_code(
    cls: str, subject: int, detail: int, rest: str
) -> None:
    code = f"{cls}.{subject}.{detail}"
    assert parse_enhanced(f"{code} {rest}") == code
    assert parse_enhanced(f"550 {code}\t{rest}") == code


# ------------------------------------------------------------------ OAuth and mail APIs

#: Failures that look like an OAuth / API cause but must not get it: (failure, context, cause).
NEAR_MISSES: tuple[tuple[str, Failure, SendContext, Cause], ...] = (
    (
        "an SMTP reply naming invalid_grant is not an OAuth failure",
        F(P.AUTH, S.REPLY, 535, "5.7.8 invalid_grant", enhanced="invalid_grant"),
        replace(GMAIL, auth="xoauth2"),
        Cause.TOKEN_REVOKED,
    ),
    (
        "access_denied as an SMTP reply",
        F(P.CONSENT, S.REPLY, 550, "access_denied", enhanced="access_denied"),
        CTX,
        Cause.CONSENT_DENIED,
    ),
    (
        "invalid_grant at refresh is not PKCE",
        F(P.TOKEN, S.OAUTH, 400, "code verifier", enhanced="invalid_grant"),
        GOOGLE_TOKEN,
        Cause.PKCE_REJECTED,
    ),
    (
        "invalid_grant at consent is not revoked",
        F(P.CONSENT, S.OAUTH, 400, "Bad code", enhanced="invalid_grant"),
        GOOGLE_TOKEN,
        Cause.TOKEN_REVOKED,
    ),
    (
        "access_denied from the device flow without AADSTS53003",
        F(
            P.CONSENT,
            S.OAUTH,
            400,
            "The user denied access",
            enhanced="access_denied",
            detail="device_code",
        ),
        MS_TOKEN,
        Cause.DEVICE_CODE_BLOCKED,
    ),
    (
        "a 403 without scope words",
        F(P.REQUEST, S.HTTP, 403, "Access is denied.", enhanced="ErrorAccessDenied"),
        GRAPH,
        Cause.INSUFFICIENT_SCOPE,
    ),
    (
        "a 401 that does not say expired",
        F(
            P.REQUEST,
            S.HTTP,
            401,
            "Token expires soon: invalid",
            enhanced="InvalidAuthenticationToken",
        ),
        GRAPH,
        Cause.TOKEN_EXPIRED,
    ),
    (
        "a 403 rate limit is not access denied",
        F(P.REQUEST, S.HTTP, 403, "Rate Limit Exceeded", enhanced="rateLimitExceeded"),
        GMAIL_API,
        Cause.API_ACCESS_DENIED,
    ),
    (
        "HTTP 404 is not access denied",
        F(
            P.REQUEST,
            S.HTTP,
            404,
            "MailboxNotEnabledForRESTAPI",
            enhanced="MailboxNotEnabledForRESTAPI",
        ),
        GRAPH,
        Cause.API_ACCESS_DENIED,
    ),
    (
        "an SMTP 421 at the greeting is not an API outage",
        F(P.GREETING, S.REPLY, 421, "4.3.2 Service not available"),
        CTX,
        Cause.SERVER_ERROR,
    ),
    (
        "an HTTP 401 over SMTP wording is not an XOAUTH2 refusal",
        F(P.AUTH, S.REPLY, 535, "5.7.8 Username and Password not accepted"),
        GMAIL,
        Cause.OAUTH_TOKEN_INVALID,
    ),
)


@pytest.mark.parametrize(
    ("failure", "context", "cause"),
    [pytest.param(f, c, cause, id=name) for name, f, c, cause in NEAR_MISSES],
)
def test_near_misses_do_not_get_the_cause(
    failure: Failure, context: SendContext, cause: Cause
) -> None:
    assert diagnose(failure, context).cause is not cause


OAUTH_CONFIG = {Cause.OAUTH_CLIENT_INVALID, Cause.OAUTH_REDIRECT_MISMATCH}


# EWS is not judged by its HTTP status: Exchange sends SOAP faults (ErrorImpersonateUserDenied,
# ErrorServerBusy) as HTTP 500; tests/test_ews_sender.py checks its kinds by response code.
@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.failure.signal in (S.HTTP, S.OAUTH) and c.context.service != "ews"],
    ids=by_id,
)
def test_oauth_and_api_kinds(case: Case) -> None:
    """429 and 5xx pass; client and redirect problems are settings; the rest is permanent."""
    d = diagnose(case.failure, case.context)
    code = case.failure.code
    if code == 429 or (code is not None and code >= 500):
        assert d.kind is TRANSIENT
    elif d.cause in OAUTH_CONFIG:
        assert d.kind is CONFIG
    elif d.cause in (Cause.DEVICE_CODE_BLOCKED,):
        assert d.kind is CONFIG  # the fix is choosing the other sign-in flow
    elif d.cause in (Cause.RATE_LIMITED, Cause.SERVER_ERROR) and d.kind is TRANSIENT:
        assert case.failure.enhanced in ("userRateLimitExceeded", "temporarily_unavailable")
    else:
        assert d.kind is PERMANENT


def test_api_diagnosis_leads_with_the_providers_error_code() -> None:
    d = diagnose(
        F(
            P.REQUEST,
            S.HTTP,
            401,
            "Request had invalid authentication credentials.",
            enhanced="UNAUTHENTICATED",
        ),
        GMAIL_API,
    )
    assert d.enhanced is None  # not an RFC 3463 code
    assert d.server_text == "UNAUTHENTICATED: Request had invalid authentication credentials."
    assert "Server said: 401 UNAUTHENTICATED: Request had" in d.to_text()
    echoed = diagnose(
        F(P.CONSENT, S.OAUTH, 400, "invalid_grant: bad", enhanced="invalid_grant"), GOOGLE_TOKEN
    )
    assert echoed.server_text == "invalid_grant: bad"


@pytest.mark.parametrize(
    ("context", "provider"),
    [
        (replace(FAKE_API, oauth_provider="google"), "google_workspace"),
        (
            replace(FAKE_API, oauth_provider="google", username="ann@gmail.com", from_address=None),
            "gmail",
        ),
        (
            replace(
                FAKE_API,
                oauth_provider="google",
                username="ann@corp.example",
                from_address="ann@corp.example",
            ),
            "google_workspace",
        ),
        (replace(FAKE_API, oauth_provider="microsoft"), "microsoft365"),
        (
            replace(
                FAKE_API,
                oauth_provider="microsoft",
                username="ann@outlook.com",
                from_address="ann@outlook.com",
            ),
            "outlook_com",
        ),
        (replace(GRAPH, username="ann@outlook.com", from_address="ann@outlook.com"), "outlook_com"),
        (FAKE_API, None),
    ],
)
def test_api_provider_from_context(context: SendContext, provider: str | None) -> None:
    d = diagnose(F(P.REQUEST, S.HTTP, 403, "denied"), context)
    assert d.provider == provider


def test_provider_words_do_not_leak_into_smtp() -> None:
    """AADSTS words in an SMTP reply on an unknown server do not make it Microsoft."""
    d = diagnose(F(P.AUTH, S.REPLY, 535, "5.7.3 AADSTS50126"), CTX)
    assert d.provider is None


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.failure.signal in (S.HTTP, S.OAUTH)], ids=by_id
)
def test_oauth_advice_never_echoes_the_senders_detail(case: Case) -> None:
    failure = replace(case.failure, detail=f"{case.failure.detail} {CANARY}")
    d = diagnose(failure, case.context)
    for text in (d.title, d.explanation, *d.fix, d.server_text):
        assert CANARY not in text
