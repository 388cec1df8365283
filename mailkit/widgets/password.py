"""Password + confirmation, straight into the secret store, and gone from the widgets after.

The typed value exists in the kernel only between the browser's update and the Save click.
Save takes both values out of the fields, clears the fields (whatever happens next), wraps the
values in :class:`~mailkit.secret.Secret` and hands them to
:meth:`~mailkit.secrets.SecretStore.set_password`, which owns the rules (not empty, both
entries equal). No other widget, label or log ever sees the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
from traitlets import Unicode

from mailkit.errors import EmptySecretError, SecretMismatchError, SecretStoreError
from mailkit.secret import Secret
from mailkit.secrets import SecretStore
from mailkit.widgets.common import (
    DESCRIPTION_WIDTH,
    INPUT_WIDTH,
    Panel,
    error_html,
    note_html,
    ok_html,
)

__all__ = ["PasswordFields", "PasswordPanel", "SecretInput"]


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


class PasswordFields:
    """Password and confirmation boxes with their inline messages, for any panel that stores one.

    :meth:`take` is the only way the typed values leave: it empties both boxes before anything
    else happens, so whatever the store then says, the widgets no longer hold the secret.
    """

    def __init__(self, *, label: str = "Password") -> None:
        style = {"description_width": DESCRIPTION_WIDTH}
        # Wide enough for the placeholder after the label; the default width would cut it off.
        self.password: Any = SecretInput(
            description=label,
            placeholder="type the password",
            style=style,
            layout={"width": INPUT_WIDTH},
        )
        self.confirmation: Any = SecretInput(
            description="Confirm",
            placeholder="type it again",
            style=style,
            layout={"width": INPUT_WIDTH},
        )
        margin = {"margin": f"0 0 0 {DESCRIPTION_WIDTH}"}
        self.password_error: Any = widgets.HTML(layout=margin)
        self.confirmation_error: Any = widgets.HTML(layout=margin)
        self.widget: Any = widgets.VBox(
            [self.password, self.password_error, self.confirmation, self.confirmation_error]
        )
        for box in (self.password, self.confirmation):
            box.observe(self._typing, names="value")

    def _typing(self, change: dict[str, Any]) -> None:
        """A message about the last entries goes once new ones are typed: those are gone."""
        if change["new"]:
            self.clear_errors()

    @property
    def typed(self) -> bool:
        """Whether anything is typed in either box (without taking it)."""
        return bool(self.password.value or self.confirmation.value)

    def take(self) -> tuple[Secret, Secret]:
        """The typed password and confirmation; both boxes and their messages are emptied."""
        new, again = Secret(self.password.value), Secret(self.confirmation.value)
        self.password.value = ""
        self.confirmation.value = ""
        self.clear_errors()
        return new, again

    def clear_errors(self) -> None:
        self.password_error.value = self.confirmation_error.value = ""

    def store(self, secrets: SecretStore, key: str, new: Secret, again: Secret) -> str | None:
        """Store ``new`` under ``key`` by the store's rules; None, or why not (also shown inline).

        An empty entry is reported on the password box, a mismatch on the confirmation box;
        anything the store itself refuses (locked, read-only) is returned for the status line.
        """
        try:
            secrets.set_password(key, new, again)
        except EmptySecretError as exc:
            self.password_error.value = error_html(str(exc))
            return str(exc)
        except SecretMismatchError as exc:
            self.confirmation_error.value = error_html(str(exc))
            return str(exc)
        except SecretStoreError as exc:  # e.g. a locked keyring or read-only variables
            return str(exc)
        return None


class PasswordPanel(Panel):
    """Set the password stored under ``key`` (see :func:`mailkit.secrets.secret_key`).

    Attributes: ``password`` and ``confirmation`` (:class:`SecretInput`), ``save_button``,
    ``password_error`` and ``confirmation_error`` (inline messages), ``status``, and ``saved``
    (whether the last attempt stored the password).
    """

    def __init__(self, secrets: SecretStore, key: str, *, label: str = "Password") -> None:
        self.secrets = secrets
        self.key = key
        self.fields = PasswordFields(label=label)
        self.password: Any = self.fields.password
        self.confirmation: Any = self.fields.confirmation
        self.password_error: Any = self.fields.password_error
        self.confirmation_error: Any = self.fields.confirmation_error
        self.status: Any = widgets.HTML()
        self.saved: bool = False
        self.save_button: Any = widgets.Button(
            description="Save password", button_style="primary", icon="key"
        )
        self.save_button.on_click(lambda _button: self.save())
        for box in (self.password, self.confirmation):
            box.observe(lambda _change: self._typing(), names="value")
        self.widget: Any = widgets.VBox(
            [
                widgets.HTML(
                    note_html(
                        f"Stored in {secrets.name} under {key}; never in the settings or "
                        "the notebook. Type it twice: a typo would lock the account out."
                    )
                ),
                self.fields.widget,
                widgets.HBox([self.save_button, self.status]),
            ]
        )

    def _typing(self) -> None:
        """A new password being typed makes "Password saved" stale (clearing the boxes not)."""
        if self.saved and self.fields.typed:
            self.saved = False
            self.status.value = note_html("Not saved yet: press Save password.")

    def save(self) -> bool:
        """Store the typed password if both entries agree; always empty both boxes."""
        new, again = self.fields.take()
        self.status.value = ""
        self.saved = False
        problem = self.fields.store(self.secrets, self.key, new, again)
        if problem is None:
            self.saved = True
            self.status.value = ok_html(f"Password saved at {datetime.now():%H:%M:%S}.")
        elif self.fields.password_error.value or self.fields.confirmation_error.value:
            self.status.value = error_html("Not saved; type the password again in both boxes.")
        else:
            self.status.value = error_html(problem)
        return self.saved
