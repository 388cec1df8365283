"""Which secret store a notebook uses, and the passphrase that unlocks an encrypted file store.

Where no OS keyring exists (a Jupyter server, a container, Binder), a profile's secrets live in
an encrypted file beside it (:class:`~mailkit.secrets.FileSecretStore`). The file is unlocked
once per kernel: :meth:`FileSecretStore.unlock` checks the passphrase against the file and
remembers it for this process, so every panel and send of the kernel can use the store. The
passphrase is typed into one-way boxes (:class:`~mailkit.widgets.password.SecretInput`) that
are emptied as soon as it is read, like a password. A new file has no passphrase yet: then it
is asked twice, as a typo would lock its owner out of every secret in it.
"""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from mailkit.errors import (
    EmptySecretError,
    SecretMismatchError,
    SecretsLockedError,
    SecretStoreError,
)
from mailkit.secret import Secret
from mailkit.secrets import PASSPHRASE_ENV, FileSecretStore, SecretStore
from mailkit.widgets.common import (
    DESCRIPTION_WIDTH,
    INPUT_WIDTH,
    Panel,
    error_html,
    note_html,
    ok_html,
)
from mailkit.widgets.password import SecretInput

__all__ = ["PassphrasePanel"]


class PassphrasePanel(Panel):
    """Say which secret store is in use; for a locked encrypted file, unlock it for the kernel.

    Attributes: ``store_note`` (which store), ``passphrase`` and ``confirmation`` (one-way
    boxes; the confirmation only for a file not created yet), ``unlock_button``, ``error``,
    ``status`` and ``unlocked`` (whether the store can be used without asking now).
    """

    def __init__(self, secrets: SecretStore) -> None:
        self.secrets = secrets
        self.file = secrets if isinstance(secrets, FileSecretStore) else None
        style = {"description_width": DESCRIPTION_WIDTH}
        self.store_note: Any = widgets.HTML()
        self.passphrase: Any = SecretInput(
            description="Passphrase",
            placeholder="the passphrase of the secrets file",
            style=style,
            layout={"width": INPUT_WIDTH},
        )
        self.confirmation: Any = SecretInput(
            description="Confirm",
            placeholder="type the new passphrase again",
            style=style,
            layout={"width": INPUT_WIDTH},
        )
        self.unlock_button: Any = widgets.Button(
            description="Unlock", button_style="primary", icon="unlock"
        )
        self.unlock_button.on_click(lambda _button: self.unlock())
        self.error: Any = widgets.HTML()
        self.status: Any = widgets.HTML()
        self.form: Any = widgets.VBox(
            [self.passphrase, self.confirmation, widgets.HBox([self.unlock_button, self.error])]
        )
        self.widget: Any = widgets.VBox([self.store_note, self.form, self.status])
        self.show()

    @property
    def unlocked(self) -> bool:
        return self.file is None or self.file.is_unlocked

    def require(self) -> None:
        """Stop a notebook's Run All here, with what to do, while the secrets are locked.

        Better one clear stop than every later cell failing on the first secret it needs.
        """
        if not self.unlocked:
            raise SecretsLockedError(
                f"{self.secrets.name} is locked: type its passphrase in the panel above, press "
                "Unlock, then run the cells below again"
            )

    def show(self) -> None:
        """Draw the panel for the store's state now (unlocked elsewhere, say, or a new file)."""
        self.store_note.value = note_html(f"Secrets are kept in {self.secrets.name}.")
        if self.file is None:
            self.form.layout.display = "none"
            self.status.value = ""
            return
        new = not self.file.exists
        self.confirmation.layout.display = "" if new else "none"
        if self.unlocked:
            self.form.layout.display = "none"
            how = (
                f"by {PASSPHRASE_ENV}"
                if os.environ.get(PASSPHRASE_ENV)
                else "for this kernel (until it restarts)"
            )
            self.status.value = ok_html(f"Unlocked {how}.")
            return
        self.form.layout.display = ""
        self.status.value = note_html(
            "Choose a passphrase for the new secrets file and type it twice; keep it safe: "
            "without it the secrets cannot be read."
            if new
            else "Locked: type the passphrase and press Unlock (once per kernel)."
        )

    def unlock(self) -> bool:
        """Check the typed passphrase and unlock the file for this kernel; empty the boxes."""
        typed, again = Secret(self.passphrase.value), Secret(self.confirmation.value)
        self.passphrase.value = self.confirmation.value = ""
        self.error.value = ""
        if self.file is None:
            return True
        try:
            if not self.file.exists and typed != again:
                raise SecretMismatchError(
                    "the passphrase and its confirmation differ; type the same in both boxes"
                )
            self.file.unlock(typed)
        except EmptySecretError:
            self.error.value = error_html("Type the passphrase first.")
        except SecretMismatchError as exc:
            self.error.value = error_html(str(exc))
        except SecretStoreError as exc:  # a wrong passphrase, a damaged file
            self.error.value = error_html(str(exc))
        self.show()
        return self.unlocked
