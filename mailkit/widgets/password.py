"""Password + confirmation, straight into the secret store, and gone from the widgets after.

The typed value exists in the kernel only between the browser's update and the Save click.
Save takes both values out of the fields, clears the fields (whatever happens next), wraps the
values in :class:`~mailkit.secrets.Secret` and hands them to
:meth:`~mailkit.secrets.SecretStore.set_password`, which owns the rules (not empty, both
entries equal). No other widget, label or log ever sees the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
from traitlets import Unicode

from mailkit.errors import EmptySecretError, SecretMismatchError, SecretStoreError
from mailkit.secrets import Secret, SecretStore
from mailkit.widgets.common import DESCRIPTION_WIDTH, Panel, error_html, note_html, ok_html

__all__ = ["PasswordPanel", "SecretInput"]


class SecretInput(widgets.Password):  # type: ignore[misc]  # ipywidgets is untyped
    """A password box whose typed value is never sent back to the browser.

    ipywidgets 8 answers every update from the browser with an ``echo_update`` message carrying
    the same value (so that several views of one model agree). For a password that would send
    the secret back over the wire and into any recording of the kernel's messages; turning the
    echo off for ``value`` keeps the path one-way. Clearing the box is an ordinary update, which
    the browser applies.
    """

    value = Unicode(help="The typed password; cleared after each save").tag(
        sync=True, echo_update=False
    )


class PasswordPanel(Panel):
    """Set the password stored under ``key`` (see :func:`mailkit.secrets.secret_key`).

    Attributes: ``password`` and ``confirmation`` (:class:`SecretInput`), ``save_button``,
    ``password_error`` and ``confirmation_error`` (inline messages), ``status``, and ``saved``
    (whether the last attempt stored the password).
    """

    def __init__(self, secrets: SecretStore, key: str, *, label: str = "Password") -> None:
        self.secrets = secrets
        self.key = key
        style = {"description_width": DESCRIPTION_WIDTH}
        self.password: Any = SecretInput(
            description=label, placeholder="type the password", style=style
        )
        self.confirmation: Any = SecretInput(
            description="Confirm", placeholder="type it again", style=style
        )
        self.password_error: Any = widgets.HTML()
        self.confirmation_error: Any = widgets.HTML()
        self.status: Any = widgets.HTML()
        self.saved: bool = False
        self.save_button: Any = widgets.Button(
            description="Save password", button_style="primary", icon="key"
        )
        self.save_button.on_click(lambda _button: self.save())
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML(
                    note_html(
                        f"Stored in {secrets.name} under {key}; never in the settings or "
                        "the notebook. Type it twice: a typo would lock the account out."
                    )
                ),
                self.password,
                self.password_error,
                self.confirmation,
                self.confirmation_error,
                widgets.HBox([self.save_button, self.status]),
            ]
        )

    def save(self) -> bool:
        """Store the typed password if both entries agree; always empty both boxes."""
        new, again = Secret(self.password.value), Secret(self.confirmation.value)
        self.password.value = ""
        self.confirmation.value = ""
        self.password_error.value = self.confirmation_error.value = self.status.value = ""
        self.saved = False
        try:
            self.secrets.set_password(self.key, new, again)
        except EmptySecretError as exc:
            self.password_error.value = error_html(str(exc))
        except SecretMismatchError as exc:
            self.confirmation_error.value = error_html(str(exc))
        except SecretStoreError as exc:  # e.g. a locked keyring or read-only variables
            self.status.value = error_html(str(exc))
        else:
            self.saved = True
            self.status.value = ok_html(f"Password saved at {datetime.now():%H:%M:%S}.")
        if not self.saved and not self.status.value:
            self.status.value = error_html("Not saved; type the password again in both boxes.")
        return self.saved
