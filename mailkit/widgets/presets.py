"""Provider presets: type an address, get the provider's submission settings in the SMTP form.

The facts come from :mod:`mailkit.providers`; this panel only copies them into the fields
and shows the provider's notes, because with the big providers the server name is the easy
part and the sign-in rules (app passwords, OAuth) are what people trip over. Nothing is saved
here: the person reviews the filled form and presses its Save button.
"""

from __future__ import annotations

import html
from typing import Any, Final

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.cards import link_html
from mailkit.providers import Provider, provider_for_domain
from mailkit.settings import AuthType, Security, default_port
from mailkit.widgets.common import DESCRIPTION_WIDTH, Field, Panel, warning_html
from mailkit.widgets.modes import SmtpSection

__all__ = ["PresetChooser"]


def _notes_html(provider: Provider) -> str:
    items = list(provider.notes)
    if provider.app_passwords:
        where = f" ({provider.app_passwords_menu})" if provider.app_passwords_menu else ""
        needs = (
            " It needs two-step sign-in turned on first." if provider.app_passwords_need_2fa else ""
        )
        items.append(f"To sign in with a password, create an app password{where}.{needs}")
    if provider.oauth_scope:
        items.append(f"OAuth (XOAUTH2) uses the scope {provider.oauth_scope}.")
    if provider.auth_hint is AuthType.XOAUTH2:
        password = "an app password" if provider.app_passwords else "a password"
        items.append(
            "Authorization was set to xoauth2 (OAuth, the lasting way); choose auto to sign in "
            f"with {password} instead."
        )
    body = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    refs = "".join(f"<li>{link_html(ref, ref)}</li>" for ref in provider.references)
    return (
        f"<b>{html.escape(provider.name)}</b>: {html.escape(provider.smtp_host)}, port "
        f"{provider.smtp_port}, {provider.security.value}."
        f"<ul>{body}</ul>" + (f"<small>References:<ul>{refs}</ul></small>" if refs else "")
    )


def _unknown_html(domain: str) -> str:
    starttls = default_port(Security.STARTTLS)
    implicit = default_port(Security.IMPLICIT_TLS)
    return warning_html(
        f"No preset is known for {domain or 'this address'}. Most mail servers accept "
        f"submission on port {starttls} with STARTTLS, or on port {implicit} with implicit "
        "TLS, with authorization auto and the full email address as user name. Ask the mail "
        "administrator for the server name (often smtp." + (domain or "your-domain") + "), or "
        "look it up in the provider's help pages."
    )


#: Fields a suggestion fills from the address (user name, From) or empties (trust of a private
#: server: a provider's certificate is publicly trusted, a demo's CA file or pin would break it).
_FROM_ADDRESS: Final = ("username", "from_address")
_PRIVATE_TRUST: Final = ("ca_file", "tls_pin_sha256")


class PresetChooser(Panel):
    """An email address field and a "Suggest settings" button that fills ``smtp``'s fields.

    A suggestion replaces everything that was filled in rather than typed: what the form last
    loaded (a stored org, the demo server's settings) or what the previous suggestion put there
    — the server, and also the user name, the From address (``from_field``) and a private
    server's CA file and pin. A value the person typed since is theirs and stays, with a note
    when it no longer fits the provider. :meth:`remember` marks the values shown now as filled
    in; the org form calls it after every load.
    """

    def __init__(self, smtp: SmtpSection, *, from_field: Field | None = None) -> None:
        self._smtp = smtp
        self._from = from_field
        self.email: Any = widgets.Text(
            description="Email address",
            placeholder="alice@gmail.com",
            style={"description_width": DESCRIPTION_WIDTH},
            layout={"width": "420px"},
        )
        self.suggest_button: Any = widgets.Button(
            description="Suggest settings", icon="magic", button_style="info"
        )
        self.suggest_button.on_click(lambda _button: self.suggest())
        self.notes: Any = widgets.HTML()
        #: The provider of the last suggestion, or None when none was known.
        self.provider: Provider | None = None
        self._filled: dict[str, str] = {}
        self.widget: Any = widgets.VBox(
            [widgets.HBox([self.email, self.suggest_button]), self.notes]
        )
        self.remember()

    def _fields(self) -> dict[str, Field]:
        fields = dict(self._smtp.fields)
        if self._from is not None:
            fields["from_address"] = self._from
        return fields

    def remember(self) -> None:
        """Take the values shown now as filled in (by a load or a suggestion), not typed."""
        self._filled = {name: str(field.input.value) for name, field in self._fields().items()}

    def _replaceable(self, field: Field) -> bool:
        shown = str(field.input.value).strip()
        return not shown or shown == self._filled.get(field.name, "").strip()

    def suggest(self) -> Provider | None:
        """Fill the SMTP fields from the address's provider, or say that none is known."""
        address = self.email.value.strip()
        domain = address.rpartition("@")[2].strip().lower()
        self.provider = provider_for_domain(address) if domain else None
        if self.provider is None:
            self.notes.value = _unknown_html(domain)
            return None
        fields = self._fields()
        fields["host"].load(self.provider.smtp_host)
        fields["port"].load(self.provider.smtp_port)
        fields["security"].load(self.provider.security)
        fields["auth"].load(self.provider.auth_hint)
        kept: list[str] = []
        if "@" in address:
            for name in _FROM_ADDRESS:
                if name in fields and self._replaceable(fields[name]):
                    fields[name].load(address)
        for name in _PRIVATE_TRUST:
            if name not in fields or not str(fields[name].input.value).strip():
                continue
            if self._replaceable(fields[name]):
                fields[name].load(None)
            else:
                kept.append(fields[name].input.description)
        self.notes.value = _notes_html(self.provider) + (
            warning_html(
                f"Kept the {' and '.join(kept)} you typed. {self.provider.name} uses a publicly "
                "trusted certificate: clear it unless your network inspects TLS."
            )
            if kept
            else ""
        )
        self.remember()
        return self.provider
