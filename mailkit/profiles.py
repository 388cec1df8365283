"""Where a profile lives, and its secrets: one resolver for notebooks, widgets and the CLI.

A profile is given as a *name* (``acme-prod``: a file in the user's data folder, found by
platformdirs) or a *path* (anything with a folder separator or a ``.sqlite``/``.db`` suffix).
``MAILKIT_PROFILE`` sets the default, name or path; without it the default is ``default``.

Reading never creates a profile: a typo in a name must fail loudly, not hand back a new empty
profile whose audit finds nothing wrong. Creating is a separate, explicit act
(:func:`init_profile`, or ``create=True``).

The encrypted secrets file of a profile sits beside it (``acme.sqlite`` → ``acme.secrets``),
so copying or backing up the folder keeps both together; :func:`profile_secrets` opens the
store a profile uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mailkit.errors import FieldProblem, ProfileExistsError, ProfileNotFoundError, SettingsError

if TYPE_CHECKING:
    from mailkit.secret import Secret
    from mailkit.secrets import SecretStore
    from mailkit.store import Store

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILE_ENV",
    "SECRETS_SUFFIX",
    "ProfileLocation",
    "init_profile",
    "locate_profile",
    "name_for_path",
    "open_profile",
    "profile_secrets",
    "spec_text",
]

PROFILE_ENV: Final = "MAILKIT_PROFILE"
DEFAULT_PROFILE: Final = "default"
_PATH_SUFFIXES: Final = (".sqlite", ".db", ".sqlite3")
SECRETS_SUFFIX: Final = ".secrets"


@dataclass(frozen=True)
class ProfileLocation:
    """A profile's name (recorded in a new file, used in secret keys) and its file."""

    name: str
    path: Path

    @property
    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    @property
    def secrets_path(self) -> Path:
        """The encrypted secrets file beside the profile: ``<stem>.secrets``."""
        return self.path.with_name(self.path.stem + SECRETS_SUFFIX)


def _is_path(spec: str) -> bool:
    return spec.lower().endswith(_PATH_SUFFIXES) or "/" in spec or "\\" in spec


def name_for_path(path: Path) -> str:
    """A profile name for a file given by path: its stem, made safe for a secret key."""
    cleaned = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in path.stem
    )
    return cleaned.strip("-")[:64] or DEFAULT_PROFILE


def locate_profile(spec: str | os.PathLike[str] | None = None) -> ProfileLocation:
    """Where the profile ``spec`` lives; ``None`` means ``$MAILKIT_PROFILE`` or ``default``.

    Looks only: nothing is created, not even the data folder.
    """
    from mailkit.store import default_store_path

    if spec is None:
        spec = os.environ.get(PROFILE_ENV, "").strip() or DEFAULT_PROFILE
    if isinstance(spec, os.PathLike) or _is_path(str(spec)):
        path = Path(spec).expanduser()
        return ProfileLocation(name_for_path(path), path)
    name = str(spec).strip()
    try:
        return ProfileLocation(name, default_store_path(name))
    except SettingsError:
        raise SettingsError(
            [
                FieldProblem(
                    "profile",
                    f"{name!r} is neither a profile name (1 to 64 letters, digits, '-' or '_', "
                    "e.g. acme-prod) nor a path to a profile file (with a folder or a .sqlite "
                    "suffix, e.g. ./acme.sqlite)",
                )
            ],
            "the profile",
        ) from None


def _where(spec: str | os.PathLike[str] | ProfileLocation | None) -> ProfileLocation:
    return spec if isinstance(spec, ProfileLocation) else locate_profile(spec)


def open_profile(
    spec: str | os.PathLike[str] | ProfileLocation | None = None, *, create: bool = False
) -> Store:
    """Open the profile ``spec`` (see :func:`locate_profile`); create it only if ``create``.

    A missing profile raises :class:`ProfileNotFoundError` naming the path and how to create
    it, and leaves no file behind.
    """
    from mailkit.store import Store

    where = _where(spec)
    if not create and not where.exists:
        raise ProfileNotFoundError(
            f"there is no mailkit profile at {where.path}; check the name or path, or create "
            f"it with mailkit.init_profile({spec_text(where)!r}) (nothing was created)"
        )
    return Store.open(_store_path(where), profile=where.name, create=create)


def _store_path(where: ProfileLocation) -> Path | None:
    """None for a profile in the data folder, so that Store.open creates that folder."""
    return None if spec_text(where) == where.name else where.path


def spec_text(where: ProfileLocation) -> str:
    """How to name ``where`` again: its name if it lives in the data folder, else its path."""
    from mailkit.store import default_store_path

    try:
        if default_store_path(where.name) == where.path:
            return where.name
    except SettingsError:
        pass
    return str(where.path)


def init_profile(spec: str | os.PathLike[str] | ProfileLocation | None = None) -> Store:
    """Create the profile ``spec`` and open it; refuses to touch an existing one."""
    from mailkit.store import Store

    where = _where(spec)
    if where.exists:
        raise ProfileExistsError(
            f"a mailkit profile already exists at {where.path}; it was left as it is. Open it "
            "instead, or choose another name"
        )
    return Store.open(_store_path(where), profile=where.name, create=True)


def profile_secrets(
    profile: Store | ProfileLocation | str | os.PathLike[str] | None = None,
    *,
    backend: str = "auto",
    passphrase: str | Secret | None = None,
    prompt: bool = False,
) -> SecretStore:
    """The secret store of ``profile``: what a notebook or a command uses for its passwords.

    ``auto`` is the OS keyring where a secure one exists, else the encrypted file beside the
    profile; ``keyring``, ``file``, ``memory`` and ``env`` choose one. A ``passphrase`` unlocks
    the file store for this object only; :meth:`FileSecretStore.unlock` for the whole process.
    Nothing is read yet, so a locked file store raises only when a secret is first used.
    """
    from mailkit.secrets import FileSecretStore, secret_store_from_name
    from mailkit.store import Store

    if isinstance(profile, Store):
        secrets_path = ProfileLocation(profile.profile_name, profile.path).secrets_path
    else:
        secrets_path = _where(profile).secrets_path
    store = secret_store_from_name(backend, path=secrets_path, prompt=prompt)
    if passphrase is not None and isinstance(store, FileSecretStore):
        store = FileSecretStore(secrets_path, passphrase=passphrase, prompt=prompt)
    return store
