"""The fake Exchange's failures, written once for the demo and the tests.

Each :class:`EwsFault` says which address triggers it, where in the exchange it strikes, what
Exchange answers there (HTTP status, EWS ``ResponseCode`` and ``MessageText``, as Exchange 2016/
2019 word them) and which exchangelib exception that answer becomes. The demo's accounts table
and ``tests/test_fake_exchange.py`` both read this table, so the two cannot drift apart.

Faults are chosen by the local part of an address in the fake's domain:

- ``login``: the user who signs in (HTTP-level answers: 401, 403);
- ``mailbox``: the mailbox a CreateItem acts for (its ``SavedItemFolderId`` mailbox, ``From``,
  ``Sender`` or the ``ExchangeImpersonation`` header);
- ``recipient``: any To, Cc or Bcc address;
- ``url``: the EWS URL itself (server-wide settings a client meets before it names a user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Where = Literal["login", "mailbox", "recipient", "url"]

#: How long Exchange asks a throttled client to wait, in the fault's MessageXml.
BACK_OFF_MILLISECONDS = 5000

#: IIS's words for a locked-out account (exchangelib looks for the first sentence).
LOCKED_OUT_TEXT = (
    "The referenced account is currently locked out and may not be logged on to. "
    "Contact your administrator."
)
#: What the retired Exchange Online EWS endpoint says (Microsoft documents the 403, not a text;
#: these words point where the retirement notice points).
RETIRED_TEXT = (
    "Exchange Web Services (EWS) is retired in Exchange Online for this organization. "
    "Use Microsoft Graph."
)


@dataclass(frozen=True)
class EwsFault:
    """One failure the fake Exchange gives, and what a client sees of it."""

    key: str
    #: The local part that triggers it (``where`` says in which role); for ``url``: the path
    #: prefix before ``/EWS/Exchange.asmx``.
    trigger: str
    where: Where
    #: What the fake answers, in words for the demo's accounts table.
    shows: str
    http_status: int | None = 200
    #: The EWS ResponseCode (None: an HTTP-level answer, or no answer at all).
    response_code: str | None = None
    text: str | None = None
    #: The exchangelib exception class this becomes (FailFast retry policy, the default).
    raises: str = ""
    #: Sent as a SOAP fault with HTTP 500 rather than a response message.
    soap_fault: bool = False

    def address(self, domain: str) -> str | None:
        return None if self.where == "url" else f"{self.trigger}@{domain}"


FAULTS: tuple[EwsFault, ...] = (
    EwsFault(
        "bad-credentials",
        "*",
        "login",
        "any account with a wrong password: HTTP 401 at sign-in (NTLM and Basic)",
        http_status=401,
        raises="UnauthorizedError",
    ),
    EwsFault(
        "account-locked",
        "locked",
        "login",
        "HTTP 401 even with the right password, with IIS's 'account is currently locked out' page",
        http_status=401,
        text=LOCKED_OUT_TEXT,
        raises="UnauthorizedError",
    ),
    EwsFault(
        "ntlm-not-offered",
        "basic-only",
        "url",
        "the server offers Basic only (WWW-Authenticate: Basic): an NTLM sign-in gets no challenge",
        http_status=401,
        raises="UnauthorizedError",
    ),
    EwsFault(
        "ews-disabled",
        "ews-disabled",
        "login",
        "signs in, then HTTP 403: EWS is turned off for the mailbox (Set-CASMailbox "
        "-EwsEnabled $false)",
        http_status=403,
        raises="MalformedResponseError",
    ),
    EwsFault(
        "ews-retired",
        "retired",
        "url",
        "Exchange Online after the EWS retirement: HTTP 403 for every request (use Graph)",
        http_status=403,
        text=RETIRED_TEXT,
        raises="MalformedResponseError",
    ),
    EwsFault(
        "access-denied",
        "denied",
        "mailbox",
        "signs in, then ErrorAccessDenied at CreateItem: no rights on the mailbox",
        response_code="ErrorAccessDenied",
        text="Access is denied. Check credentials and try again.",
        raises="ErrorAccessDenied",
    ),
    EwsFault(
        "send-as-denied",
        "sendas-denied",
        "mailbox",
        "signs in, then ErrorSendAsDenied at CreateItem: the account may not send as that mailbox",
        response_code="ErrorSendAsDenied",
        text=(
            "The user account which was used to submit this request does not have the right to "
            "send mail on behalf of the specified sending account., Cannot submit message."
        ),
        raises="ErrorSendAsDenied",
    ),
    EwsFault(
        "impersonate-denied",
        "impersonate-denied",
        "mailbox",
        "signs in, then ErrorImpersonateUserDenied (SOAP fault, HTTP 500): the account may not "
        "impersonate that mailbox",
        http_status=500,
        response_code="ErrorImpersonateUserDenied",
        text="The account does not have permission to impersonate the requested user.",
        raises="ErrorImpersonateUserDenied",
        soap_fault=True,
    ),
    EwsFault(
        "quota-exceeded",
        "quota",
        "mailbox",
        "signs in, then ErrorQuotaExceeded at CreateItem: the mailbox is over its quota",
        response_code="ErrorQuotaExceeded",
        text="Mailbox quota exceeded.",
        raises="ErrorQuotaExceeded",
    ),
    EwsFault(
        "server-busy",
        "busy",
        "mailbox",
        f"signs in, then ErrorServerBusy (SOAP fault, HTTP 500) with BackOffMilliseconds "
        f"{BACK_OFF_MILLISECONDS}: throttled",
        http_status=500,
        response_code="ErrorServerBusy",
        text="The server cannot service this request right now. Try again later.",
        raises="ErrorServerBusy",
        soap_fault=True,
    ),
    EwsFault(
        "invalid-recipients",
        "invalid",
        "recipient",
        "signs in, then ErrorInvalidRecipients at CreateItem for a message to this address",
        response_code="ErrorInvalidRecipients",
        text="At least one recipient isn't valid., A message can't be sent because it contains "
        "no recipients.",
        raises="ErrorInvalidRecipients",
    ),
    EwsFault(
        "stall",
        "stall",
        "recipient",
        "signs in, then no answer to CreateItem until the client times out (outcome unknown)",
        http_status=None,
        raises="ErrorTimeoutExpired",
    ),
    EwsFault(
        "cut",
        "cut",
        "recipient",
        "signs in; CreateItem is received, then the connection is cut without an answer "
        "(outcome unknown)",
        http_status=None,
        raises="ErrorTimeoutExpired",
    ),
)

EWS_FAULTS: dict[str, EwsFault] = {fault.key: fault for fault in FAULTS}

#: Local parts by role, for the server's lookups.
LOGIN_FAULTS = {f.trigger: f for f in FAULTS if f.where == "login" and f.trigger != "*"}
MAILBOX_FAULTS = {f.trigger: f for f in FAULTS if f.where == "mailbox"}
RECIPIENT_FAULTS = {f.trigger: f for f in FAULTS if f.where == "recipient"}
URL_FAULTS = {f.trigger: f for f in FAULTS if f.where == "url"}


# --------------------------------------------------------------------------- Autodiscover

AutodiscoverFailure = Literal["404", "401", "malformed", "redirect", "no-ews"]


@dataclass(frozen=True)
class AutodiscoverFault:
    """One way Autodiscover fails, for the address ``trigger@domain``, at every flavour
    (SOAP ``autodiscover.svc``, POX ``autodiscover.xml``, JSON v2)."""

    key: str
    trigger: str
    failure: AutodiscoverFailure
    shows: str

    def address(self, domain: str) -> str:
        return f"{self.trigger}@{domain}"


#: Where the redirect fault points.
REDIRECT_TARGET = "demo-redirected"

AUTODISCOVER_FAULTS: tuple[AutodiscoverFault, ...] = (
    AutodiscoverFault("autodiscover-404", "ad-404", "404", "HTTP 404: no Autodiscover there"),
    AutodiscoverFault("autodiscover-401", "ad-401", "401", "HTTP 401 even with good credentials"),
    AutodiscoverFault(
        "autodiscover-malformed", "ad-malformed", "malformed", "HTTP 200 with a broken answer"
    ),
    AutodiscoverFault(
        "autodiscover-redirect",
        "ad-redirect",
        "redirect",
        f"redirects to the address {REDIRECT_TARGET}@DOMAIN, which then succeeds",
    ),
    AutodiscoverFault(
        "autodiscover-no-ews", "ad-no-ews", "no-ews", "a valid answer without any EWS URL"
    ),
)
AUTODISCOVER_BY_TRIGGER = {f.trigger: f for f in AUTODISCOVER_FAULTS}


# --------------------------------------------------------------------------- the demo's accounts


@dataclass(frozen=True)
class EwsDemoAccount:
    """A row of the demo's accounts table for EWS: who signs in, with which password, and
    what a test send from that account's mailbox shows (``fault``: None for the one that
    works)."""

    key: str
    user: str
    password: str = field(repr=False)
    shows: str = ""
    fault: EwsFault | AutodiscoverFault | None = None

    @property
    def reply(self) -> str | None:
        """The answer's short name: the EWS ResponseCode, or the HTTP status."""
        if isinstance(self.fault, AutodiscoverFault):
            return f"Autodiscover: {self.fault.failure}"
        if self.fault is None:
            return None
        if self.fault.response_code:
            return self.fault.response_code
        if self.fault.http_status is not None:
            return f"HTTP {self.fault.http_status}"
        return "no answer"


def demo_accounts(domain: str, user: str, password: str) -> tuple[EwsDemoAccount, ...]:
    """The EWS demo account (``user``, which also sends by SMTP) and one account per fault.

    A mailbox fault's account signs in as that mailbox and sends as itself; a recipient
    fault's row is the demo user sending to that address; a URL fault's row names the URL.
    """
    rows = [
        EwsDemoAccount(
            "ews",
            user,
            password,
            "EWS (NTLM or Basic) at the demo's EWS URL: the message lands in the demo mailbox",
        )
    ]
    for fault in FAULTS:
        shows = f"EWS: {fault.shows}"
        key = fault.key if fault.key.startswith("ews-") else f"ews-{fault.key}"
        if fault.key == "bad-credentials":
            rows.append(EwsDemoAccount("ews-wrong-password", user, "wrong-password", shows, fault))
        elif fault.where == "url":
            where = f"at the EWS URL with /{fault.trigger}/ before /EWS/Exchange.asmx"
            rows.append(EwsDemoAccount(key, user, password, f"{shows} ({where})", fault))
        elif fault.where == "recipient":
            to = f"{fault.trigger}@{domain}"
            rows.append(EwsDemoAccount(key, user, password, f"{shows} (send to {to})", fault))
        else:
            rows.append(EwsDemoAccount(key, f"{fault.trigger}@{domain}", password, shows, fault))
    for lookup in AUTODISCOVER_FAULTS:
        rows.append(
            EwsDemoAccount(
                f"ews-{lookup.key}",
                lookup.address(domain),
                password,
                f"EWS Autodiscover for this address: {lookup.shows}",
                lookup,
            )
        )
    return tuple(rows)
