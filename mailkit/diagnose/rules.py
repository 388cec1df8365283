"""The rules table: which cause a failure is, how sure its kind is, and whose words explain it.

:data:`RULES` is evaluated top to bottom; the first rule whose predicate holds decides the cause,
the kind and the words. Order is meaning: specific replies (Microsoft's 5.7.139, Gmail's 5.7.9)
come before generic ones (any 535), phase rules before the any-phase fallbacks, and the last rule
matches everything, so a diagnosis always exists.

Kinds follow one idea — what should the admin do next: ``transient`` wait and retry,
``permanent`` the server or the request must change, ``configuration`` mailkit's settings must
change, ``outcome_unknown`` look in the recipient's inbox before sending again. A rule without a
fixed kind takes it from the reply code (4xx transient, 5xx permanent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailkit.diagnose.advice import (
    Advice,
    app_password_required,
    auth_not_offered,
    auth_required,
    auth_temporary_failure,
    bad_credentials,
    basic_auth_disabled,
    ca_file_invalid,
    certificate_expired,
    certificate_untrusted,
    certificate_wrong_host,
    command_timeout,
    connect_timeout,
    connection_refused,
    disconnected,
    dns_failure,
    ehlo_rejected,
    encryption_required,
    greeting_timeout,
    greylisted,
    host_missing,
    mailbox_full,
    malformed,
    mechanism_not_offered,
    message_rejected,
    message_too_large,
    mode_not_smtp,
    network_unreachable,
    oauth_token_invalid,
    outcome_unknown,
    password_missing,
    pin_mismatch,
    plain_on_tls_port,
    plaintext_auth_refused,
    provider_mismatch,
    rate_limited,
    recipient_rejected,
    relay_denied,
    secrets_unavailable,
    send_as_denied,
    sender_rejected,
    server_error,
    service_refused,
    service_unavailable,
    starttls_missing,
    starttls_refused,
    tls_handshake_failed,
    tls_on_plain_port,
    tls_version_refused,
    token_missing,
)
from mailkit.diagnose.api_advice import (
    api_access_denied,
    api_rate_limited,
    api_server_error,
    api_token_invalid,
    code_invalid,
    consent_denied,
    consent_timeout,
    device_code_blocked,
    device_code_declined,
    device_code_expired,
    insufficient_scope,
    oauth_client_invalid,
    oauth_redirect_mismatch,
    pkce_rejected,
    state_mismatch,
    token_expired,
    token_revoked,
)
from mailkit.diagnose.desktop import eml_folder_unusable
from mailkit.diagnose.ews_advice import (
    AUTODISCOVER_FAILED,
    EWS,
    EWS_CODE,
    EWS_SETTING,
    LOCKED_OUT,
    NTLM_REFUSED,
    SEND_AS_CODES,
    autodiscover_failed,
    ews_access_denied,
    ews_account_locked,
    ews_bad_credentials,
    ews_error,
    ews_invalid_recipients,
    ews_ntlm_not_offered,
    ews_quota_exceeded,
    ews_send_as_denied,
    ews_server_busy,
    ews_setting_missing,
    ews_token_invalid,
    ews_unavailable,
    ews_unreachable,
    ews_url_wrong,
)
from mailkit.diagnose.facts import (
    ANY,
    API_RATE,
    AUTH,
    BAD_SENDER,
    BASIC_OFF,
    BLOCKLIST,
    CONSENT,
    CONTENT,
    DEVICE_BLOCKED,
    ENCRYPTION_REQUIRED,
    ENVELOPE,
    EXPIRED,
    GOOGLE,
    GREYLIST,
    HANDSHAKE,
    HTTP,
    IMPLICIT_TLS,
    MAILBOX_FULL,
    MISMATCH,
    NO_MECHANISM_FOR_AUTO,
    NO_MECHS,
    NOT_SIGNED_IN,
    NOT_TLS,
    OAUTH,
    OAUTH_ONLY,
    OFFERS_XOAUTH2,
    PASSWORD_MECHS,
    PKCE,
    RATE,
    RCPT,
    REFUSED_UNSIGNED,
    RELAY,
    SCOPE,
    SEND_AS,
    TEMPORARY_DNS,
    TLS_PORT,
    TLS_VERSION,
    TOO_LARGE,
    TYPO,
    UNKNOWN_USER,
    UNSIGNED,
    VERIFY,
    WRONG_HOST,
    Facts,
    When,
    at,
    auth_is,
    detail_says,
    enhanced,
    facts_for,
    kind_by_code,
    names,
    oauth_error,
    provider_in,
    reply,
    says,
    server_text,
    sig,
    status,
    status_class,
    xx,
)
from mailkit.faces import render
from mailkit.outcome import Cause, Diagnosis, Failure, Kind, Phase, SendContext, Signal


@dataclass(frozen=True)
class Rule:
    """If ``when`` holds, the failure is ``cause``; ``kind`` None means "by reply code"."""

    cause: Cause
    kind: Kind | None
    when: When
    advise: Callable[[Facts], Advice]


# --------------------------------------------------------------------------- the table

# Short names keep the table one rule to a line where possible.
CONFIG, TRANSIENT, PERMANENT = Kind.CONFIGURATION, Kind.TRANSIENT, Kind.PERMANENT
BY_CODE = None  # the kind follows the reply code: 4xx transient, 5xx permanent
MISSING, POLICY, TIMEOUT = Signal.MISSING, Signal.POLICY, Signal.TIMEOUT
DISCONNECTED, REPLY, NOT_OFFERED = Signal.DISCONNECTED, Signal.REPLY, Signal.NOT_OFFERED

RULES: tuple[Rule, ...] = (
    # -- before any connection: settings, credentials, mailkit's own policy
    Rule(Cause.HOST_MISSING, CONFIG, sig(MISSING) & names("host"), host_missing),
    Rule(Cause.PASSWORD_MISSING, CONFIG, sig(MISSING) & names("password"), password_missing),
    Rule(Cause.SECRETS_UNAVAILABLE, CONFIG, sig(MISSING) & names("secrets"), secrets_unavailable),
    Rule(Cause.TOKEN_MISSING, CONFIG, sig(MISSING) & names("token"), token_missing),
    Rule(Cause.MODE_NOT_SMTP, CONFIG, sig(MISSING, POLICY) & names("mode"), mode_not_smtp),
    Rule(Cause.SETTING_INVALID, CONFIG, sig(MISSING) & names("ca_file"), ca_file_invalid),
    Rule(Cause.SETTING_INVALID, CONFIG, sig(MISSING) & names("eml_folder"), eml_folder_unusable),
    Rule(Cause.PLAINTEXT_AUTH_REFUSED, CONFIG, sig(POLICY), plaintext_auth_refused),
    Rule(Cause.SETTING_INVALID, CONFIG, EWS & sig(MISSING) & EWS_SETTING, ews_setting_missing),
    Rule(
        Cause.AUTODISCOVER_FAILED,
        CONFIG,
        EWS & sig(MISSING) & AUTODISCOVER_FAILED,
        autodiscover_failed,
    ),
    # -- reaching the server (whatever phase the sender names); EWS names its URL, not a host
    Rule(Cause.DNS_FAILURE, CONFIG, EWS & sig(Signal.DNS), ews_unreachable),
    Rule(Cause.CONNECTION_REFUSED, CONFIG, EWS & sig(Signal.REFUSED), ews_unreachable),
    Rule(Cause.DNS_FAILURE, TRANSIENT, sig(Signal.DNS) & TEMPORARY_DNS & ~TYPO, dns_failure),
    Rule(Cause.DNS_FAILURE, CONFIG, sig(Signal.DNS), dns_failure),
    Rule(Cause.CONNECTION_REFUSED, CONFIG, sig(Signal.REFUSED), connection_refused),
    Rule(Cause.NETWORK_UNREACHABLE, TRANSIENT, sig(Signal.UNREACHABLE), network_unreachable),
    Rule(Cause.CONNECT_TIMEOUT, TRANSIENT, at(Phase.CONNECT) & sig(TIMEOUT), connect_timeout),
    # -- TLS: the certificate checks first, then the handshake itself
    Rule(Cause.CERTIFICATE_PIN_MISMATCH, CONFIG, sig(Signal.TLS_PIN), pin_mismatch),
    Rule(Cause.CERTIFICATE_EXPIRED, CONFIG, VERIFY & EXPIRED, certificate_expired),
    Rule(Cause.CERTIFICATE_WRONG_HOST, CONFIG, VERIFY & WRONG_HOST, certificate_wrong_host),
    Rule(Cause.CERTIFICATE_UNTRUSTED, CONFIG, VERIFY, certificate_untrusted),
    Rule(Cause.TLS_ON_PLAIN_PORT, CONFIG, HANDSHAKE & IMPLICIT_TLS & NOT_TLS, tls_on_plain_port),
    Rule(Cause.TLS_VERSION_REFUSED, CONFIG, HANDSHAKE & TLS_VERSION, tls_version_refused),
    Rule(Cause.TLS_HANDSHAKE_FAILED, PERMANENT, HANDSHAKE, tls_handshake_failed),
    # -- OAuth sign-in and refresh: the provider's error code decides (Failure.enhanced)
    Rule(Cause.STATE_MISMATCH, PERMANENT, OAUTH & oauth_error("state_mismatch"), state_mismatch),
    Rule(Cause.CONSENT_TIMEOUT, PERMANENT, OAUTH & oauth_error("timeout"), consent_timeout),
    Rule(
        Cause.DEVICE_CODE_BLOCKED,
        CONFIG,
        OAUTH & oauth_error("access_denied") & DEVICE_BLOCKED,
        device_code_blocked,
    ),
    Rule(
        Cause.CONSENT_DENIED,
        PERMANENT,
        OAUTH & oauth_error("access_denied", "consent_required"),
        consent_denied,
    ),
    Rule(
        Cause.DEVICE_CODE_DECLINED,
        PERMANENT,
        OAUTH & oauth_error("authorization_declined"),
        device_code_declined,
    ),
    Rule(
        Cause.DEVICE_CODE_EXPIRED,
        PERMANENT,
        OAUTH & oauth_error("expired_token"),
        device_code_expired,
    ),
    Rule(
        Cause.OAUTH_CLIENT_INVALID,
        CONFIG,
        OAUTH
        & (
            oauth_error("invalid_client", "unauthorized_client")
            | says("AADSTS700016", "AADSTS7000218")
        ),
        oauth_client_invalid,
    ),
    Rule(
        Cause.OAUTH_REDIRECT_MISMATCH,
        CONFIG,
        OAUTH & (oauth_error("redirect_uri_mismatch") | says("AADSTS50011", "AADSTS500113")),
        oauth_redirect_mismatch,
    ),
    Rule(
        Cause.PKCE_REJECTED,
        PERMANENT,
        OAUTH & CONSENT & oauth_error("invalid_grant") & PKCE,
        pkce_rejected,
    ),
    Rule(
        Cause.CODE_INVALID,
        PERMANENT,
        OAUTH & CONSENT & oauth_error("invalid_grant"),
        code_invalid,
    ),
    Rule(
        Cause.TOKEN_REVOKED,
        PERMANENT,
        OAUTH & ~CONSENT & oauth_error("invalid_grant", "interaction_required"),
        token_revoked,
    ),
    Rule(
        Cause.INSUFFICIENT_SCOPE,
        PERMANENT,
        OAUTH & oauth_error("invalid_scope"),
        insufficient_scope,
    ),
    # -- Exchange Web Services: the sign-in's 401, EWS switched off, then EWS response codes
    Rule(
        Cause.MECHANISM_NOT_OFFERED,
        CONFIG,
        EWS & AUTH & (sig(NOT_OFFERED) | (HTTP & status(401) & NTLM_REFUSED)),
        ews_ntlm_not_offered,
    ),
    Rule(
        Cause.OAUTH_TOKEN_INVALID,
        PERMANENT,
        EWS & HTTP & status(401) & auth_is("oauth"),
        ews_token_invalid,
    ),
    Rule(
        Cause.ACCOUNT_LOCKED,
        PERMANENT,
        EWS & HTTP & status(401) & LOCKED_OUT,
        ews_account_locked,
    ),
    Rule(Cause.BAD_CREDENTIALS, PERMANENT, EWS & HTTP & status(401), ews_bad_credentials),
    Rule(
        Cause.EWS_UNAVAILABLE,
        PERMANENT,
        EWS & HTTP & status(403) & ~EWS_CODE,
        ews_unavailable,
    ),
    Rule(Cause.SETTING_INVALID, CONFIG, EWS & HTTP & status(404, 405, 410), ews_url_wrong),
    Rule(Cause.SEND_AS_DENIED, PERMANENT, EWS & SEND_AS_CODES, ews_send_as_denied),
    Rule(
        Cause.API_ACCESS_DENIED,
        PERMANENT,
        EWS & oauth_error("ErrorAccessDenied"),
        ews_access_denied,
    ),
    Rule(
        Cause.MAILBOX_FULL,
        PERMANENT,
        EWS & oauth_error("ErrorQuotaExceeded"),
        ews_quota_exceeded,
    ),
    Rule(Cause.RATE_LIMITED, TRANSIENT, EWS & oauth_error("ErrorServerBusy"), ews_server_busy),
    Rule(
        Cause.RECIPIENT_REJECTED,
        PERMANENT,
        EWS & oauth_error("ErrorInvalidRecipients"),
        ews_invalid_recipients,
    ),
    Rule(Cause.SERVER_ERROR, PERMANENT, EWS & HTTP & EWS_CODE, ews_error),
    # -- OAuth endpoints and mail APIs alike: limits and outages pass
    Rule(
        Cause.RATE_LIMITED,
        TRANSIENT,
        (HTTP | OAUTH) & (status(429) | (status(403) & API_RATE)),
        api_rate_limited,
    ),
    Rule(
        Cause.SERVER_ERROR,
        TRANSIENT,
        (HTTP | OAUTH) & (status_class(5) | oauth_error("temporarily_unavailable", "server_error")),
        api_server_error,
    ),
    # -- mail APIs (Gmail API, Graph): the status, then the provider's words
    Rule(
        Cause.TOKEN_EXPIRED,
        PERMANENT,
        HTTP & status(401) & (says("expired") | oauth_error("ACCESS_TOKEN_EXPIRED")),
        token_expired,
    ),
    Rule(Cause.OAUTH_TOKEN_INVALID, PERMANENT, HTTP & status(401), api_token_invalid),
    Rule(
        Cause.SEND_AS_DENIED,
        PERMANENT,
        HTTP & status(403) & (oauth_error("ErrorSendAsDenied") | SEND_AS),
        send_as_denied,
    ),
    Rule(Cause.INSUFFICIENT_SCOPE, PERMANENT, HTTP & status(403) & SCOPE, insufficient_scope),
    Rule(Cause.API_ACCESS_DENIED, PERMANENT, HTTP & status(403), api_access_denied),
    # An HTTP 4xx is the request's fault, not a passing state as an SMTP 4xx would be.
    Rule(Cause.SERVER_ERROR, PERMANENT, HTTP | OAUTH, server_error),
    # -- after the final dot, silence is not failure: the server may have taken the message
    # (an answer that is not SMTP is no answer: the server may still have taken it)
    Rule(
        Cause.OUTCOME_UNKNOWN,
        Kind.OUTCOME_UNKNOWN,
        at(Phase.END_OF_DATA) & sig(TIMEOUT, DISCONNECTED, Signal.MALFORMED),
        outcome_unknown,
    ),
    # -- 421 at any step: the server is closing the channel, a passing state on its side
    Rule(Cause.SERVICE_UNAVAILABLE, TRANSIENT, reply(421), service_unavailable),
    # -- greeting, ehlo, starttls
    Rule(
        Cause.PLAIN_ON_TLS_PORT,
        CONFIG,
        at(Phase.GREETING) & sig(TIMEOUT) & TLS_PORT & ~IMPLICIT_TLS,
        plain_on_tls_port,
    ),
    Rule(Cause.GREETING_TIMEOUT, TRANSIENT, at(Phase.GREETING) & sig(TIMEOUT), greeting_timeout),
    Rule(Cause.SERVICE_UNAVAILABLE, TRANSIENT, at(Phase.GREETING) & xx(4), service_unavailable),
    Rule(Cause.SERVICE_REFUSED, PERMANENT, at(Phase.GREETING) & xx(5), service_refused),
    Rule(Cause.EHLO_REJECTED, BY_CODE, at(Phase.EHLO) & sig(REPLY), ehlo_rejected),
    Rule(
        Cause.STARTTLS_MISSING,
        CONFIG,
        sig(NOT_OFFERED) & (at(Phase.STARTTLS) | detail_says("starttls")),
        starttls_missing,
    ),
    Rule(Cause.STARTTLS_REFUSED, BY_CODE, at(Phase.STARTTLS) & sig(REPLY), starttls_refused),
    # -- auth: what the server offers, then its replies from the most specific down
    Rule(Cause.AUTH_NOT_OFFERED, CONFIG, AUTH & sig(NOT_OFFERED) & NO_MECHS, auth_not_offered),
    # auth auto found nothing to sign in with that the server takes: the credential is missing
    Rule(
        Cause.PASSWORD_MISSING,
        CONFIG,
        AUTH & NO_MECHANISM_FOR_AUTO & PASSWORD_MECHS,
        password_missing,
    ),
    Rule(
        Cause.TOKEN_MISSING,
        CONFIG,
        AUTH & NO_MECHANISM_FOR_AUTO & OFFERS_XOAUTH2,
        token_missing,
    ),
    Rule(Cause.MECHANISM_NOT_OFFERED, CONFIG, AUTH & sig(NOT_OFFERED), mechanism_not_offered),
    Rule(
        Cause.ENCRYPTION_REQUIRED,
        CONFIG,
        at(Phase.AUTH, Phase.MAIL, Phase.RCPT) & ENCRYPTION_REQUIRED,
        encryption_required,
    ),
    # whatever the reply, one provider's account at another's server cannot sign in
    Rule(
        Cause.PROVIDER_MISMATCH,
        CONFIG,
        AUTH & (xx(5) | (auth_is("xoauth2") & reply(334))) & MISMATCH,
        provider_mismatch,
    ),
    Rule(Cause.BASIC_AUTH_DISABLED, CONFIG, AUTH & xx(5) & BASIC_OFF, basic_auth_disabled),
    Rule(
        Cause.APP_PASSWORD_REQUIRED,
        CONFIG,
        AUTH & reply(534) & (provider_in(GOOGLE) | says("application-specific password")),
        app_password_required,
    ),
    Rule(Cause.MECHANISM_NOT_OFFERED, CONFIG, AUTH & reply(504, 534), mechanism_not_offered),
    Rule(
        Cause.OAUTH_TOKEN_INVALID,
        PERMANENT,
        AUTH & auth_is("xoauth2") & (xx(5) | reply(334)),
        oauth_token_invalid,
    ),
    Rule(
        Cause.BAD_CREDENTIALS,
        PERMANENT,
        AUTH & (reply(535) | (xx(5) & enhanced("5.7.8", "5.7.3"))),
        bad_credentials,
    ),
    Rule(Cause.AUTH_TEMPORARY_FAILURE, TRANSIENT, AUTH & xx(4), auth_temporary_failure),
    # -- envelope and message; first a refusal of a send that had nothing to sign in with
    Rule(
        Cause.TOKEN_MISSING,
        CONFIG,
        UNSIGNED & REFUSED_UNSIGNED & provider_in(OAUTH_ONLY),
        token_missing,
    ),
    Rule(Cause.PASSWORD_MISSING, CONFIG, UNSIGNED & REFUSED_UNSIGNED, password_missing),
    Rule(
        Cause.AUTH_REQUIRED,
        CONFIG,
        at(Phase.MAIL, Phase.RCPT) & (reply(530) | (xx(5) & NOT_SIGNED_IN)),
        auth_required,
    ),
    Rule(Cause.SEND_AS_DENIED, PERMANENT, ENVELOPE & xx(5) & SEND_AS, send_as_denied),
    Rule(
        Cause.SERVICE_REFUSED,
        PERMANENT,
        at(Phase.MAIL, Phase.RCPT) & xx(5) & BLOCKLIST,
        service_refused,
    ),
    Rule(
        Cause.MAILBOX_FULL,
        BY_CODE,
        at(Phase.RCPT) & sig(REPLY) & MAILBOX_FULL & ~RATE,
        mailbox_full,
    ),
    Rule(
        Cause.MESSAGE_TOO_LARGE,
        BY_CODE,
        ENVELOPE & (reply(552) | (sig(REPLY) & TOO_LARGE)),
        message_too_large,
    ),
    Rule(Cause.RATE_LIMITED, BY_CODE, ENVELOPE & sig(REPLY) & RATE, rate_limited),
    Rule(
        Cause.SENDER_REJECTED,
        PERMANENT,
        at(Phase.MAIL) & reply(550, 553, 554) & BAD_SENDER,
        sender_rejected,
    ),
    Rule(Cause.RELAY_DENIED, PERMANENT, RCPT & xx(5) & RELAY, relay_denied),
    Rule(Cause.RECIPIENT_REJECTED, PERMANENT, RCPT & xx(5) & UNKNOWN_USER, recipient_rejected),
    Rule(Cause.GREYLISTED, TRANSIENT, RCPT & xx(4) & GREYLIST, greylisted),
    Rule(Cause.RELAY_DENIED, PERMANENT, RCPT & reply(550, 554) & enhanced("5.7.1"), relay_denied),
    Rule(Cause.RECIPIENT_REJECTED, PERMANENT, RCPT & xx(5), recipient_rejected),
    Rule(
        Cause.MESSAGE_REJECTED,
        PERMANENT,
        at(Phase.DATA, Phase.END_OF_DATA) & xx(5) & CONTENT,
        message_rejected,
    ),
    Rule(
        Cause.MESSAGE_REJECTED,
        PERMANENT,
        at(Phase.END_OF_DATA) & reply(550, 554),
        message_rejected,
    ),
    # -- anywhere: what is left; the last rule matches everything
    Rule(Cause.COMMAND_TIMEOUT, TRANSIENT, sig(TIMEOUT), command_timeout),
    Rule(Cause.DISCONNECTED, TRANSIENT, sig(DISCONNECTED), disconnected),
    Rule(Cause.MALFORMED_REPLY, PERMANENT, sig(Signal.MALFORMED), malformed),
    Rule(Cause.SETTING_INVALID, CONFIG, sig(MISSING), server_error),
    Rule(Cause.SERVER_ERROR, BY_CODE, ANY, server_error),
)


# --------------------------------------------------------------------------- entry point


def rule_for(failure: Failure, context: SendContext) -> Rule:
    """The rule that decides this failure — for tests and for asking "why this cause?"."""
    return _first_rule(facts_for(failure, context))


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
    facts = facts_for(failure, context)
    rule = _first_rule(facts)
    advice = rule.advise(facts)
    return Diagnosis(
        phase=failure.phase,
        kind=rule.kind or kind_by_code(failure.code),
        cause=rule.cause,
        title=render(advice.title),
        explanation=render(advice.explanation),
        fix=tuple(render(step) for step in advice.fix),
        marked=(advice.title, advice.explanation, *advice.fix),
        provider=facts.provider_id,
        code=failure.code,
        enhanced=facts.enhanced,
        server_text=server_text(_said(failure), facts.enhanced),
        references=advice.references,
    )
