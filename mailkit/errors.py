"""One exception tree for everything mailkit raises on purpose.

A name in parentheses is a further base class (for a root, its only one), so that code which
knows only the built-ins still catches the error. ``tests/test_errors_tree.py`` compares this
drawing with the classes, wherever in mailkit they are defined.

::

    MailkitError (Exception)
    ├── SettingsError (ValueError)        settings that fail validation, field by field
    ├── StoreError                         the settings store cannot be used
    │   ├── StoreCorruptError              not a readable SQLite file
    │   ├── StoreForeignError              an SQLite file that is not a mailkit profile
    │   ├── StoreNewerSchemaError          written by a newer mailkit
    │   ├── StoreLockedError (TimeoutError) another process held the write lock too long
    │   ├── ProfileNotFoundError           no profile there; reading never creates one
    │   └── ProfileExistsError             ``profile init`` would overwrite an existing one
    ├── SecretStoreError                   the secret store cannot be used
    │   ├── NoSecureBackendError           no keyring backend that keeps secrets safely
    │   ├── SecretMismatchError (ValueError) password and confirmation differ
    │   ├── EmptySecretError (ValueError)  an empty password was about to be stored
    │   ├── ReadOnlySecretStoreError       e.g. environment variables cannot be written
    │   ├── SecretsLockedError             the encrypted file store has no passphrase yet
    │   ├── WrongPassphraseError (ValueError) the passphrase does not open the file
    │   └── SecretFileCorruptError         the encrypted file is damaged; it is left as it is
    ├── ImportFileError (ValueError)       a CSV / Excel / TOML / legacy file cannot be imported
    ├── OAuthConfigError (ValueError)      a downloaded client JSON / client settings are invalid
    ├── OAuthError                         consent, token refresh or revocation failed
    ├── DemoServerError (RuntimeError)     the demo server cannot start (in mailkit.demo)
    └── UsageError                         flags the command line cannot run (in mailkit.cli)

    UnsafeSettingWarning (UserWarning)     a setting that works but is risky (warned, not raised)

Every message says what is wrong and what to do about it. No message ever contains a secret:
secrets travel as :class:`mailkit.secret.Secret`, whose ``str`` is a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailkit.outcome import Diagnosis


class MailkitError(Exception):
    """Base of every error mailkit raises deliberately."""


@dataclass(frozen=True)
class FieldProblem:
    """One field that failed validation: where, what is wrong, and the fix."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class SettingsError(MailkitError, ValueError):
    """Settings failed validation; ``problems`` lists each field with its message."""

    def __init__(self, problems: list[FieldProblem], context: str = "settings") -> None:
        self.problems = problems
        self.context = context
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{context} are not valid ({len(problems)} problem(s)):\n{lines}")


class StoreError(MailkitError):
    """The settings store cannot be opened or written."""


class StoreCorruptError(StoreError):
    """The file is not a readable SQLite database."""


class StoreForeignError(StoreError):
    """The file is an SQLite database that mailkit did not create."""


class StoreNewerSchemaError(StoreError):
    """The profile was written by a newer mailkit than this one."""


class StoreLockedError(StoreError, TimeoutError):
    """Another process kept the profile locked for longer than the busy timeout."""


class ProfileNotFoundError(StoreError):
    """No profile at that path; reading commands never create one."""


class ProfileExistsError(StoreError):
    """A profile is already there; creating it again would overwrite someone's settings."""


class SecretStoreError(MailkitError):
    """The secret store cannot be used."""


class NoSecureBackendError(SecretStoreError):
    """No secure backend is available; mailkit never falls back to a plaintext file."""


class SecretMismatchError(SecretStoreError, ValueError):
    """A new password and its confirmation differ."""


class EmptySecretError(SecretStoreError, ValueError):
    """An empty password or token cannot be stored."""


class ReadOnlySecretStoreError(SecretStoreError):
    """The backend cannot store secrets (environment variables are set by the operator)."""


class SecretsLockedError(SecretStoreError):
    """The encrypted file store needs a passphrase and none was given.

    ``path`` is the file, so that each face can say how to unlock it in its own words.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class WrongPassphraseError(SecretStoreError, ValueError):
    """The passphrase does not open the encrypted file store."""


class SecretFileCorruptError(SecretStoreError):
    """The encrypted file store is damaged or not one; mailkit refuses it and never rewrites it."""


class ImportFileError(MailkitError, ValueError):
    """A file to import is unreadable or holds invalid rows; nothing was imported."""

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        self.problems = problems or []
        lines = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(message + lines)


class OAuthConfigError(MailkitError, ValueError):
    """An OAuth client configuration (e.g. Google's downloaded client JSON) is not usable."""

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        self.problems = problems or []
        lines = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(message + lines)


class OAuthError(MailkitError):
    """Getting, refreshing or revoking a token failed; ``diagnosis`` says why and what to do.

    Senders catch it from a token provider and report the diagnosis like any other failure.
    """

    def __init__(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        super().__init__(diagnosis.to_text())


class UnsafeSettingWarning(UserWarning):
    """A setting is accepted but risky (an IP literal host, no TLS, ...)."""
