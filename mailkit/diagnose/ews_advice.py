"""The words of a diagnosis for Exchange Web Services (mode ``exchange_ews``), and its questions.

EWS failures come as HTTP statuses (401 sign-in, 403 EWS switched off, 404 a wrong URL) or as
EWS response codes (``ErrorSendAsDenied``, ``ErrorServerBusy``, ...), which the sender puts in
``Failure.enhanced``. The predicates here are the EWS rows' vocabulary in
:data:`mailkit.diagnose.rules.RULES`; the advice names the Exchange admin center, the
Exchange Management Shell and mailkit's settings (as references each face renders).
"""

from __future__ import annotations

from mailkit.diagnose.advice import Advice, refs, wait_step
from mailkit.diagnose.facts import Facts, When, first_word, oauth_error, says
from mailkit.diagnose.fields import S
from mailkit.faces import setting
from mailkit.outcome import Signal
from mailkit.providers import exchange_online_host

#: The settings only EWS advice names.
EWS_URL = setting("ews_url")
AUTODISCOVER = setting("ews_autodiscover")
AUTODISCOVER_URL = setting("ews_autodiscover_url")

_EAC = "Exchange admin center"
_GRAPH_MODE = "microsoft_graph"

# --------------------------------------------------------------------------- the questions

#: The send spoke EWS (the sender says so in its context).
EWS = When(lambda f: f.context.service == "ews")
#: NTLM was asked for, and the server's 401 offered other schemes but not NTLM.
NTLM_REFUSED = When(
    lambda f: (
        f.context.auth == "ntlm"
        and bool(f.failure.auth_mechanisms)
        and "NTLM" not in f.failure.auth_mechanisms
    )
)
#: IIS's lock-out page (exchangelib quotes it): the password may be right, the account is shut.
LOCKED_OUT = says("locked out")
#: Autodiscover ran and no step of it named an EWS URL.
AUTODISCOVER_FAILED = When(lambda f: first_word(f.failure.detail) == "autodiscover")
#: Exchange Online is answering: its host (the audit's ews-exchange-online asks the same
#: question of the same predicate), or the headers its front ends add to every answer.
ONLINE = When(lambda f: exchange_online_host(f.context.host)) | says(
    "x-calculatedbetarget", "x-feserver", "outlook.com", "office365", "retire"
)
#: What the sender names as missing before any connection (the first word of its detail).
EWS_SETTING = When(lambda f: first_word(f.failure.detail) in ("ews_url", "auth", "username"))
SEND_AS_CODES = oauth_error(
    "ErrorSendAsDenied", "ErrorImpersonateUserDenied", "ErrorImpersonationDenied"
)
#: Any EWS response code the rows above did not take.
EWS_CODE = When(lambda f: f.error.startswith("Error"))


def _who(f: Facts) -> str:
    return f.context.username or "the account"


def _sender(f: Facts) -> str:
    return f.context.from_address or "the From address"


def _said(f: Facts) -> str:
    """Opens an explanation: "Exchange answered ErrorSendAsDenied (HTTP 200)"."""
    status = f" (HTTP {f.code})" if f.code is not None else ""
    return f"Exchange answered {f.error or 'with an error'}{status}"


# --------------------------------------------------------------------------- settings


def ews_setting_missing(f: Facts) -> Advice:
    word = first_word(f.failure.detail)
    if word == "auth":
        return Advice(
            f"{f.context.auth} cannot sign in to EWS",
            f"{S.auth} is {f.context.auth}, which is an SMTP mechanism: EWS signs in with "
            "NTLM, Basic (a password over HTTPS) or OAuth.",
            (
                f"Set {S.auth} to ntlm (on-premises Exchange), login (Basic), xoauth2 (OAuth "
                "with the Microsoft consent) or auto (what the server offers, NTLM first).",
            ),
        )
    if word == "username":
        return Advice(
            "No user name to sign in to EWS with",
            "EWS signs in with a user name and password (NTLM or Basic), and none is set.",
            (
                f"Set {S.username} to the mailbox's sign-in name: its address "
                "(ann@contoso.example), or DOMAIN\\user for NTLM.",
            ),
        )
    return Advice(
        "No EWS URL and no Autodiscover",
        "The EWS send needs the address of the Exchange server's web services, and neither "
        "an EWS URL nor Autodiscover is set.",
        (
            f"Set {EWS_URL} to https://<server>/EWS/Exchange.asmx (Exchange admin center → "
            "Servers → Virtual directories → EWS shows the external URL; or "
            "Get-WebServicesVirtualDirectory | fl ExternalUrl in the Exchange Management Shell).",
            f"Or turn on {AUTODISCOVER} to find it from {S.from_address}.",
        ),
    )


def ews_url_wrong(f: Facts) -> Advice:
    return Advice(
        "Nothing answers EWS at this URL",
        f"The server answered HTTP {f.code} at {f.context.host}: there is no Exchange Web "
        "Services endpoint at that path.",
        (
            f"Check {EWS_URL}: it ends in /EWS/Exchange.asmx on the Exchange server (or its "
            "load balancer), e.g. https://mail.contoso.example/EWS/Exchange.asmx.",
            f"Or turn on {AUTODISCOVER} to let Exchange say where it is.",
        ),
        refs(f),
    )


# --------------------------------------------------------------------------- reaching it


def ews_unreachable(f: Facts) -> Advice:
    host = f.context.host or "the server"
    what = {
        Signal.DNS: f"The name {host!r} could not be turned into an address",
        Signal.REFUSED: f"{host} refused the HTTPS connection on port {f.port}",
    }.get(f.failure.signal, f"{host} could not be reached")
    return Advice(
        "The Exchange server cannot be reached",
        f"{what}, so no EWS request was made.",
        (
            f"Check {EWS_URL} (the host name and port in it) — or, with Autodiscover, the "
            "URL it found in the transcript.",
            "If the server is internal, connect to the company network or VPN, or use its "
            "external URL.",
            "Check that a firewall or proxy allows HTTPS (port 443) from this computer to it.",
        ),
        refs(f),
    )


def autodiscover_failed(f: Facts) -> Advice:
    steps = f.failure.detail.partition(":")[2].strip()
    elsewhere: tuple[str, ...] = ()
    if f.says("not asked"):
        elsewhere = (
            "A DNS SRV record or a redirect named a server outside the address's domain "
            "(its URL is in the transcript). mailkit sends no credentials there on its own, as "
            f"Microsoft has clients ask first: if that server is yours, set {AUTODISCOVER_URL} "
            "to that URL.",
        )
    return Advice(
        "Autodiscover found no EWS URL",
        f"mailkit asked Autodiscover for the EWS URL of {_sender(f)} in the order Microsoft "
        f"documents, and no step named one: {steps}",
        (
            *elsewhere,
            f"Set {EWS_URL} directly (https://<server>/EWS/Exchange.asmx) and turn "
            f"{AUTODISCOVER} off: Autodiscover is only a way to find that URL.",
            "Or make Autodiscover answer: publish autodiscover.<domain> in DNS (an A/CNAME "
            "record, or an SRV record _autodiscover._tcp.<domain>) pointing at the Exchange "
            "server, with a certificate that names it.",
            f"For a test against one server, set {AUTODISCOVER_URL} to its "
            "https://<server>/autodiscover/autodiscover.xml.",
            "Microsoft's Remote Connectivity Analyzer (testconnectivity.microsoft.com → "
            "Outlook Autodiscover) shows the same steps from outside the network.",
        ),
        refs(f),
    )


# --------------------------------------------------------------------------- sign-in


def ews_ntlm_not_offered(f: Facts) -> Advice:
    offered = ", ".join(sorted(f.failure.auth_mechanisms)) or "none"
    return Advice(
        "The server does not offer NTLM for EWS",
        f"{S.auth} is ntlm, but the EWS virtual directory offers only: {offered}. (Basic "
        "alone is typical for a reverse proxy in front of Exchange; Negotiate alone for "
        "Kerberos-only setups.)",
        (
            f"Set {S.auth} to login (Basic over HTTPS) if the server offers Basic, or to auto "
            "to take what the server offers.",
            "Or turn Windows authentication (NTLM) on for the EWS virtual directory: "
            "Set-WebServicesVirtualDirectory -Identity 'SERVER\\EWS (Default Web Site)' "
            "-WindowsAuthentication $true, then iisreset.",
        ),
        refs(f),
    )


def ews_bad_credentials(f: Facts) -> Advice:
    where = "Autodiscover" if AUTODISCOVER_FAILED(f) else "EWS"
    online = ONLINE(f)
    fix = [
        f"Check the password stored for {_who(f)} (store it again with {S.password_home}).",
        f"Check {S.username}: NTLM and Basic take the address (UPN, ann@contoso.example) or "
        "DOMAIN\\user; the account must have a mailbox.",
        "If the password is right, the account may be locked out after too many failed "
        "sign-ins, disabled, or its password expired: look in Active Directory Users and "
        "Computers (Account tab), or Get-ADUser USER -Properties LockedOut,Enabled,"
        "PasswordExpired.",
    ]
    if online:
        fix.append(
            f"Exchange Online no longer accepts Basic sign-in for EWS: set {S.auth} to xoauth2 "
            f"and run the {f.walkthrough}, or move to {S.mode} {_GRAPH_MODE}."
        )
    return Advice(
        f"{where} refused the sign-in",
        f"{where} answered HTTP 401 to the {f.context.auth} sign-in as {_who(f)}: the user name "
        "or password was not accepted. Exchange (IIS) gives the same answer for a wrong "
        "password, a locked or disabled account and an expired password.",
        tuple(fix),
        refs(f),
    )


def ews_account_locked(f: Facts) -> Advice:
    return Advice(
        "The account is locked out",
        f"Exchange answered HTTP 401 with IIS's lock-out page: {_who(f)} is locked out (too "
        "many failed sign-ins), so even the right password is refused until it is unlocked.",
        (
            "Wait for the domain's lockout duration to pass, or ask an administrator to unlock "
            f"it: Unlock-ADAccount {_who(f)} (or Active Directory Users and Computers → the "
            "account → Account → Unlock account).",
            "Find what keeps trying an old password (a phone, a service, a mapped drive) before "
            "it locks the account again.",
            f"Then check the password stored for {_who(f)} (store it again with "
            f"{S.password_home}) and test again.",
        ),
        refs(f),
    )


def ews_token_invalid(f: Facts) -> Advice:
    return Advice(
        "EWS did not accept the OAuth token",
        "Exchange answered HTTP 401 to the OAuth sign-in: the token is not valid for EWS. EWS "
        "takes tokens for https://outlook.office365.com with the EWS.AccessAsUser.All "
        "permission; a Graph or SMTP token is refused.",
        (
            "In the Entra admin center → App registrations → your app → API permissions, add "
            "Office 365 Exchange Online → Delegated → EWS.AccessAsUser.All and grant consent.",
            f"Run the {f.walkthrough} again so the token carries it, then test again.",
            f"Or send with {S.mode} {_GRAPH_MODE}, Microsoft's replacement for EWS.",
        ),
        refs(f),
    )


# --------------------------------------------------------------------------- EWS answers


def ews_unavailable(f: Facts) -> Advice:
    if ONLINE(f):
        return Advice(
            "Exchange Online no longer serves EWS to this app",
            f"Exchange Online answered HTTP {f.code}: Microsoft is retiring EWS in Exchange "
            "Online (blocked for apps that are not allowed, and switched off for good from "
            "October 2026). Microsoft Graph is its replacement.",
            (
                f"Set {S.mode} to {_GRAPH_MODE} and run the Microsoft OAuth walkthrough: the "
                "same mailbox sends through Graph.",
                "Until then, a tenant admin can check EWS access: Get-OrganizationConfig | fl "
                "EwsEnabled, EwsApplicationAccessPolicy (Exchange Online PowerShell).",
            ),
            refs(f),
        )
    return Advice(
        "EWS is switched off for this mailbox or server",
        f"Exchange answered HTTP {f.code} to {_who(f)}: Exchange Web Services is disabled for "
        "this mailbox (or the organisation), or an EWS application policy blocks this client.",
        (
            f"Ask the Exchange administrator to allow EWS: Set-CASMailbox {_who(f)} -EwsEnabled "
            "$true (and check Get-OrganizationConfig | fl Ews* for an allow or block list).",
            f"Or send with {S.mode} smtp through the same Exchange server's submission port (587).",
        ),
        refs(f),
    )


def ews_access_denied(f: Facts) -> Advice:
    return Advice(
        "Exchange denied access to the mailbox",
        f"{_said(f)}: {_who(f)} signed in, but may not act on the mailbox of {_sender(f)}.",
        (
            f"Set {S.from_address} to {_who(f)}'s own mailbox, or",
            f"grant {_who(f)} Full Access on that mailbox ({_EAC} → Recipients → Mailboxes → "
            "the mailbox → Delegation → Read and manage; or Add-MailboxPermission -Identity "
            "MAILBOX -User USER -AccessRights FullAccess).",
        ),
        refs(f),
    )


def ews_send_as_denied(f: Facts) -> Advice:
    sender = _sender(f)
    user = _who(f)
    if f.error == "ErrorSendAsDenied":
        title = "Not allowed to send as this From address"
        why = f"{user} signed in, but has no Send As right on {sender}."
        grant = (
            f'grant {user} "Send As" on {sender} ({_EAC} → Recipients → Mailboxes → {sender} '
            f"→ Delegation → Send As; or Add-ADPermission -Identity {sender} -User {user} "
            "-ExtendedRights 'Send As' on-premises), then allow up to an hour before testing."
        )
    else:
        title = "Not allowed to act as this mailbox (impersonation)"
        why = f"{user} may not impersonate {sender}: the ApplicationImpersonation role is missing."
        grant = (
            f"give {user} the ApplicationImpersonation role: New-ManagementRoleAssignment "
            f"-Role ApplicationImpersonation -User {user} (scoped to the mailboxes it serves)."
        )
    return Advice(
        title,
        f"{_said(f)}: {why}",
        (f"Either set {S.from_address} to {user}'s own address,", f"or {grant}"),
        refs(f),
    )


def ews_quota_exceeded(f: Facts) -> Advice:
    return Advice(
        "The sending mailbox is full",
        f"{_said(f)}: the mailbox of {f.context.from_address or _who(f)} is over its quota, "
        "so Exchange will not create (and save a copy of) the message.",
        (
            "Empty Deleted Items and old Sent Items of that mailbox, or archive them.",
            "Or raise its quota: Set-Mailbox MAILBOX -ProhibitSendQuota <size> (Exchange "
            "Management Shell), or a larger licence in Exchange Online.",
        ),
        refs(f),
    )


def ews_server_busy(f: Facts) -> Advice:
    return Advice(
        "Exchange is throttling this account",
        f"{_said(f)}: EWS throttling (the throttling policy's budget for this user or app) "
        "is used up for now.",
        (
            wait_step(f, "the back-off Exchange asked for", "a minute"),
            "If it keeps happening, lower how often and how many sends run at once, or ask the "
            "administrator about the throttling policy (Get-ThrottlingPolicyAssociation USER).",
        ),
        refs(f),
    )


def ews_invalid_recipients(f: Facts) -> Advice:
    return Advice(
        "Exchange refused the recipient",
        f"{_said(f)}: one or more To addresses are not valid for this Exchange organisation "
        "(a typo, or a recipient that does not accept mail from this sender).",
        (
            "Check the test recipients (Mail To) for typos.",
            "If the address is internal, check in the Exchange admin center that the "
            "recipient exists and accepts mail from this sender (Message delivery "
            "restrictions).",
        ),
        refs(f),
    )


#: What Exchange answers a request in a schema it does not know (a server older than 2013).
_OLD_SERVER = ("ErrorInvalidServerVersion", "ErrorInvalidSchemaVersionForMailboxVersion")


def ews_error(f: Facts) -> Advice:
    if f.error in _OLD_SERVER or f.says("specified server version is invalid"):
        return Advice(
            "The Exchange server is older than 2013",
            f"{_said(f)}: mailkit speaks EWS in Exchange 2013's schema, which Exchange 2013 "
            "and later (and Exchange Online) take; this server or mailbox is on an older "
            "version.",
            (
                "Send through the server's SMTP submission instead: set "
                f"{S.mode} to smtp with the Exchange server as {S.host}.",
                "Exchange 2010 and older are out of support: plan the upgrade with the "
                "Exchange administrator.",
            ),
            refs(f),
        )
    return Advice(
        f"Exchange refused the message ({f.error or 'error'})",
        f"{_said(f)}. The message was not sent.",
        (
            "Look up the response code in Microsoft's EWS ResponseCode list, and the "
            "MessageText in the transcript.",
            "Run the test again; if it persists, give the code and the transcript to the "
            "Exchange administrator.",
        ),
        refs(f),
    )
