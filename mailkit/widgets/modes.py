"""A section per mode: the fields each way of sending needs, and what each mode cannot do.

Only the selected mode's section is shown, but every field belongs to the form whatever the
mode, so switching modes back and forth loses nothing typed. Fields that two modes share (the
OAuth client id, the user name) are one widget shown in both sections — one value, one model
field, never two copies to keep in step.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.settings import AuthType, Mode, Security
from mailkit.widgets.common import (
    Field,
    Panel,
    checkbox_field,
    choice_field,
    note_html,
    text_field,
    warning_html,
)

__all__ = ["DESKTOP_LIMITS", "EWS_RETIREMENT", "ModeSections", "SmtpSection"]

#: Said plainly for each desktop-client mode: mailkit configures and audits it, never sends.
DESKTOP_LIMITS: dict[Mode, str] = {
    Mode.OUTLOOK: (
        "Outlook on each user's workstation sends the mail, through whatever account Outlook "
        "is signed in to. mailkit cannot see that account, cannot test the server behind it "
        'and cannot tell whether a message left the Outbox. A test "send" only writes the '
        "test message as an .eml file and hands it to Outlook: Outlook, not mailkit, sends it."
    ),
    Mode.MAPI: (
        '"Other" in the application: the message is handed to the workstation\'s default mail '
        "program through Simple MAPI. MAPI cannot sync contacts or read the address book, "
        'cannot choose the sending account and reports no delivery result. A test "send" '
        "only writes the test message as an .eml file for that program: it, not mailkit, "
        "sends it."
    ),
    Mode.LOTUS_NOTES: (
        "HCL Notes (Lotus Notes) on the workstation sends the mail; the Notes client must be "
        "installed and signed in on every machine that sends. mailkit cannot test the Domino "
        'server behind it. A test "send" only writes the test message as an .eml file for '
        "Notes: Notes, not mailkit, sends it."
    ),
}
_DESKTOP_CLOUD = "The cloud edition forbids desktop-client modes: it sends only through SMTP."

EWS_RETIREMENT = (
    "Exchange Online is retiring EWS: Microsoft starts switching it off in October 2026 and it "
    "is off for every tenant by April 2027. For Exchange Online (outlook.office365.com) choose "
    "microsoft_graph, or SMTP with OAuth, instead. EWS stays usable with on-premises Exchange "
    "Server."
)

_EWS_AUTH_NOTE = (
    "Authorization for EWS: ntlm (the legacy msn too) signs in with the Windows account "
    "(DOMAIN\\user or the address), login or plain with Basic authentication, xoauth2 with the "
    "Microsoft OAuth consent (Exchange Online, while EWS lasts); auto takes what the server "
    "offers. The password goes to the secret store, never into these settings."
)

_GMAIL_NOTE = (
    "Sends through the Gmail API (users.messages.send) with the OAuth scope gmail.send; no "
    "SMTP server is involved. Enter the OAuth client id of your Google Cloud project here. "
    "Signing in and storing the refresh token is the consent walkthrough in the OAuth for "
    "Google notebook; the token goes to the secret store, never into these settings."
)
_GRAPH_NOTE = (
    "Sends through Microsoft Graph sendMail with the permission Mail.Send. Enter the "
    "application (client) id and the tenant (its id or domain) of your Microsoft Entra app "
    "registration. Signing in (device code) is the consent walkthrough in the OAuth for "
    "Microsoft notebook; tokens go to the secret store, never into these settings."
)
_WEBDAV_NOTE = (
    "Exchange 2000/2003 WebDAV is legacy: mailkit reads such settings only to migrate away "
    "from them and never sends with it. Choose smtp, or exchange_ews for on-premises Exchange."
)


class SmtpSection(Panel):
    """SMTP server fields; ``advanced`` adds TLS trust and timeouts (org-wide settings only).

    The user-override form reuses this with ``advanced=False`` and ``blank="inherit"``.
    """

    def __init__(self, *, advanced: bool = True, blank: str = "(not set)") -> None:
        self.fields: dict[str, Field] = {}
        basic = [
            text_field("host", "SMTP server", placeholder="smtp.example.com"),
            text_field("port", "Port", placeholder="587 (STARTTLS) or 465 (implicit TLS)"),
            choice_field("security", "Security", Security, blank=blank),
            choice_field("auth", "Authorization", AuthType, blank=blank),
            text_field("username", "User name", placeholder="usually the email address"),
        ]
        for field in basic:
            self.fields[field.name] = field
        children: list[Any] = [f.widget for f in basic]
        if advanced:
            extra = [
                text_field(
                    "ca_file",
                    "CA file",
                    placeholder="/path/to/ca.pem",
                    note="trust a private server's CA",
                ),
                text_field(
                    "tls_pin_sha256",
                    "Certificate pin",
                    placeholder="SHA-256 fingerprint (64 hex digits)",
                ),
                choice_field("tls_min_version", "Minimum TLS", ["1.2", "1.3"], blank=None),
                checkbox_field(
                    "allow_plaintext_auth",
                    "Allow credentials without TLS (security none only)",
                ),
                text_field("connect_timeout", "Connect timeout (s)"),
                text_field("command_timeout", "Command timeout (s)"),
            ]
            for field in extra:
                self.fields[field.name] = field
            self.advanced: Any = widgets.Accordion(
                children=[widgets.VBox([f.widget for f in extra])],
                titles=("TLS trust and timeouts",),
            )
            children.append(self.advanced)
        self.widget: Any = widgets.VBox(children)


class ModeSections(Panel):
    """All mode sections of the org form; :meth:`show` reveals the one for a mode."""

    def __init__(self) -> None:
        self.smtp = SmtpSection()
        client_id = text_field(
            "oauth_client_id", "OAuth client id", placeholder="application (client) id"
        )
        tenant = text_field(
            "oauth_tenant",
            "Tenant",
            placeholder="tenant id or domain, e.g. example.onmicrosoft.com",
        )
        ews_url = text_field(
            "ews_url", "EWS URL", placeholder="https://mail.example.com/EWS/Exchange.asmx"
        )
        autodiscover = checkbox_field(
            "ews_autodiscover",
            "Autodiscover",
            note="find the EWS URL from the From address (also when no EWS URL is set)",
        )
        autodiscover_url = text_field(
            "ews_autodiscover_url",
            "Autodiscover URL",
            placeholder="optional: https://mail.example.com/autodiscover/autodiscover.xml",
        )
        eml_folder = text_field(
            "eml_folder",
            "Folder for test drafts",
            placeholder="a folder the desktop user opens, e.g. C:\\Users\\Public\\Desktop",
            note="a test writes the test message here as an .eml draft",
        )
        self.fields: dict[str, Field] = {
            **self.smtp.fields,
            client_id.name: client_id,
            tenant.name: tenant,
            ews_url.name: ews_url,
            autodiscover.name: autodiscover,
            autodiscover_url.name: autodiscover_url,
            eml_folder.name: eml_folder,
        }
        username = self.smtp.fields["username"]

        def section(title: str, *children: Any) -> Any:
            return widgets.VBox([widgets.HTML(f"<h4>{title}</h4>"), *children])

        self.sections: dict[Mode, Any] = {
            Mode.SMTP: section("SMTP", self.smtp.widget),
            Mode.GMAIL_API: section(
                "Gmail API", widgets.HTML(note_html(_GMAIL_NOTE)), client_id.widget
            ),
            Mode.MICROSOFT_GRAPH: section(
                "Microsoft Graph",
                widgets.HTML(note_html(_GRAPH_NOTE)),
                client_id.widget,
                tenant.widget,
            ),
            Mode.EXCHANGE_EWS: section(
                "Exchange Web Services",
                widgets.HTML(warning_html(EWS_RETIREMENT)),
                ews_url.widget,
                autodiscover.widget,
                autodiscover_url.widget,
                username.widget,
                self.smtp.fields["auth"].widget,
                widgets.HTML(note_html(_EWS_AUTH_NOTE)),
            ),
            Mode.EXCHANGE_WEBDAV: section(
                "Exchange WebDAV (legacy)", widgets.HTML(warning_html(_WEBDAV_NOTE))
            ),
        }
        for mode, limits in DESKTOP_LIMITS.items():
            self.sections[mode] = section(
                f"Desktop client: {mode.value}",
                widgets.HTML(note_html(limits)),
                widgets.HTML(note_html(_DESKTOP_CLOUD)),
                eml_folder.widget,
            )
        self.widget: Any = widgets.VBox(list(self.sections.values()))
        self.show(None)

    def show(self, mode: Mode | str | None) -> None:
        """Show the section of ``mode``; an unset mode means the default, SMTP."""
        chosen = Mode(mode) if mode else Mode.SMTP
        for each, box in self.sections.items():
            box.layout.display = "" if each is chosen else "none"

    @property
    def visible(self) -> Mode:
        """The mode whose section is showing (for tests and notebooks)."""
        return next(m for m, box in self.sections.items() if box.layout.display != "none")
