"""Where passwords, OAuth tokens and client secrets live.

A secret travels through mailkit only as a :class:`~mailkit.secret.Secret` (a pure value of its
own module, so the core can carry one without loading a keyring), whose ``repr``/``str`` are a
fixed mask: a secret cannot end up in a notebook output, a log line, a transcript or an
exception by accident.

Secrets are kept in a :class:`SecretStore`, addressed by keys from :func:`secret_key`:

- :class:`KeyringSecretStore` -- the OS keyring (the default, see :func:`default_secret_store`);
- :class:`FileSecretStore` -- an encrypted file beside the profile, unlocked by a passphrase,
  for where JupyterLab runs without a keyring (servers, containers, Binder);
- :class:`MemorySecretStore` -- demos, Binder and tests; forgets everything when the process exits;
- :class:`EnvSecretStore` -- automation; read-only environment variables set by the operator.

Nothing is ever written to disk in plain text: the file store encrypts the whole file, and when
neither it nor a keyring can be used mailkit says so instead of quietly falling back.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import sys
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mailkit.errors import (
    EmptySecretError,
    NoSecureBackendError,
    ReadOnlySecretStoreError,
    SecretFileCorruptError,
    SecretMismatchError,
    SecretsLockedError,
    SecretStoreError,
    WrongPassphraseError,
)
from mailkit.secret import Secret

if TYPE_CHECKING:  # the keyring loads when a keyring store is made, not with this module
    from keyring.backend import KeyringBackend

__all__ = [
    "ENV_SECRET_PREFIX",
    "KEYRING_SERVICE",
    "PASSPHRASE_ENV",
    "SECRET_STORE_NAMES",
    "EnvSecretStore",
    "FileSecretStore",
    "KeyringSecretStore",
    "LazySecretStore",
    "MemorySecretStore",
    "SecretStore",
    "accounts_with_secret",
    "default_secret_store",
    "keyring_available",
    "secret_key",
    "secret_store_from_name",
    "unlock_secrets",
]

# Only key names and store names are ever logged; never a value, not even its length.
_log = logging.getLogger(__name__)

KEY_PREFIX: Final = "mailkit"
KEYRING_SERVICE: Final = "mailkit"
ENV_SECRET_PREFIX: Final = "MAILKIT_SECRET_"  # noqa: S105  # a variable-name prefix
PASSPHRASE_ENV: Final = "MAILKIT_SECRETS_PASSPHRASE"  # noqa: S105  # a variable name
SECRET_STORE_NAMES: Final = ("auto", "keyring", "file", "memory", "env")
"""The names :func:`secret_store_from_name` accepts (the CLI offers them as choices)."""


def _check_key_part(label: str, part: str) -> None:
    if not isinstance(part, str) or not part:
        raise ValueError(f"secret key {label} must be a non-empty string, got {part!r}")
    if ":" in part:
        raise ValueError(f"secret key {label} {part!r} must not contain ':' (it separates parts)")
    if any(unicodedata.category(ch).startswith("C") for ch in part):
        raise ValueError(f"secret key {label} {part!r} must not contain control characters")
    if part != part.strip():
        raise ValueError(f"secret key {label} {part!r} must not start or end with whitespace")


#: The kinds of OAuth consent a profile may hold for an account (the last part of its key).
#: Here, not in :mod:`mailkit.oauth`, so that asking whether a consent is stored does not load
#: the OAuth libraries.
GOOGLE_TOKEN_KIND: Final = "google_oauth_token"  # noqa: S105  # a key name
MICROSOFT_TOKEN_KIND: Final = "microsoft_oauth_token"  # noqa: S105  # a key name


def secret_key(profile: str, account: str, kind: str = "password") -> str:
    """Build the store key ``mailkit:<profile>:<account>:<kind>``.

    ``account`` is a user code (in the cloud edition an email address) or ``"org"`` for the
    organisation's own credentials; ``kind`` tells apart e.g. ``password``, ``refresh_token``
    and ``client_secret`` of one account. Parts are validated rather than escaped so that
    every key can be read back by a person looking at their OS keyring.
    """
    _check_key_part("profile", profile)
    _check_key_part("account", account)
    _check_key_part("kind", kind)
    return f"{KEY_PREFIX}:{profile}:{account}:{kind}"


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"a secret key must be a non-empty string, got {key!r}; use secret_key()")


class SecretStore(ABC):
    """Somewhere secrets are kept, addressed by keys from :func:`secret_key`.

    Backends implement :meth:`get`, :meth:`set` and :meth:`delete`; the password-entry rules
    live here once, in :meth:`set_password`, so every backend enforces them alike.
    """

    name: str
    """A human name for messages, e.g. ``"environment variables (MAILKIT_SECRET_*)"``."""

    kind: str = "other"
    """Which backend this is, for display: ``keyring``, ``file``, ``memory`` or ``env``."""

    def keys(self) -> list[str] | None:
        """The key names held, sorted (never values); ``None`` if the backend cannot list them.

        The OS keyring has no portable way to enumerate entries, so callers that must know
        probe the keys they expect (see :func:`accounts_with_secret`).
        """
        return None

    @abstractmethod
    def get(self, key: str) -> Secret | None:
        """Return the secret stored under ``key``, or ``None`` if there is none."""

    @abstractmethod
    def set(self, key: str, value: Secret) -> None:
        """Store ``value`` under ``key``, replacing any previous secret."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget the secret under ``key``; a missing key is not an error."""

    def set_password(self, key: str, new: str | Secret, confirmation: str | Secret) -> None:
        """Store a password typed twice, as a settings form asks for it.

        The confirmation catches a typo before it locks the account out on the next send.
        The two entries are compared in constant time, since they are secret.
        """
        _check_key(key)
        new_secret = new if isinstance(new, Secret) else Secret(new)
        confirmation_secret = (
            confirmation if isinstance(confirmation, Secret) else Secret(confirmation)
        )
        if not new_secret:
            raise EmptySecretError("the password is empty; type the password in both fields")
        if new_secret != confirmation_secret:
            raise SecretMismatchError(
                "the password and its confirmation differ; type the same password in both fields"
            )
        self.set(key, new_secret)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"


class MemorySecretStore(SecretStore):
    """Secrets in a dict, for demos, Binder and tests; everything is forgotten on exit.

    A lock makes it safe to share between the threads of a bulk test-send.
    """

    name = "the in-memory secret store (for demos and tests; forgets everything on exit)"
    kind = "memory"

    def __init__(self) -> None:
        self._secrets: dict[str, Secret] = {}
        self._lock = threading.Lock()

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._secrets)

    def get(self, key: str) -> Secret | None:
        _check_key(key)
        with self._lock:
            return self._secrets.get(key)

    def set(self, key: str, value: Secret) -> None:
        _check_key(key)
        if not isinstance(value, Secret):
            raise TypeError(f"store a Secret, not {type(value).__name__}")
        with self._lock:
            self._secrets[key] = value
        _log.debug("stored secret %s in %s", key, self.name)

    def delete(self, key: str) -> None:
        _check_key(key)
        with self._lock:
            self._secrets.pop(key, None)
        _log.debug("deleted secret %s from %s", key, self.name)


def _no_secure_backend_message(reason: str) -> str:
    """Name every way forward, since the user must choose one (none is chosen silently)."""
    return (
        f"{reason}. mailkit never keeps secrets in a plaintext file, so choose one of: "
        "(1) install or unlock an OS keyring -- Secret Service (GNOME Keyring, KeePassXC) or "
        "KWallet on Linux, the macOS Keychain, the Windows Credential Locker; "
        "(2) FileSecretStore, an encrypted file beside the profile unlocked by a passphrase "
        "(mailkit.profile_secrets(profile) picks it where there is no keyring); "
        "(3) MemorySecretStore for demos and tests (it forgets every secret when the process "
        "exits); "
        f"(4) EnvSecretStore for automation (set environment variables named "
        f"{ENV_SECRET_PREFIX}<PROFILE>_<ACCOUNT>_<KIND>)"
    )


def _backend_label(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


_PLAINTEXT_MARKERS: Final = ("plaintext", "unencrypted", "cleartext", "insecure")


def _insecurity(backend: KeyringBackend) -> str | None:
    """Return why ``backend`` must not hold secrets, or ``None`` if it may."""
    import keyring.backends.chainer
    import keyring.backends.fail
    import keyring.backends.null

    label = _backend_label(backend)
    if isinstance(backend, keyring.backends.fail.Keyring):
        return "no OS keyring is available to Python's keyring library (it chose its fail backend)"
    if isinstance(backend, keyring.backends.null.Keyring):
        return "the keyring is disabled (keyring.backends.null is configured)"
    compact_name = type(backend).__name__.lower().replace("_", "")
    if any(marker in compact_name for marker in _PLAINTEXT_MARKERS):
        return f"the keyring backend {label} stores secrets unencrypted"
    try:
        priority = float(backend.priority)
    except Exception as exc:  # a backend reports "not usable here" by raising from priority
        return f"the keyring backend {label} is not usable here ({exc})"
    if priority <= 0:
        return f"the keyring backend {label} is not usable here (priority {priority:g})"
    if isinstance(backend, keyring.backends.chainer.ChainerBackend):
        # The chainer reads from every member, so one plaintext member exposes all secrets.
        for member in backend.backends:
            problem = _insecurity(member)
            if problem is not None:
                return (
                    f"{problem}, and the chained keyring reads from it "
                    "(uninstall keyrings.alt or set PYTHON_KEYRING_BACKEND to a secure backend)"
                )
    return None


def _contains_secret(text: str, secret: Secret) -> bool:
    value = secret.reveal()
    if not value:
        return False
    raw = value.encode()
    forms = (value, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode())
    return any(form in text for form in forms)


class KeyringSecretStore(SecretStore):
    """Secrets in the OS keyring through the ``keyring`` library; mailkit's default store.

    The backend is checked once, at construction, and that same backend object is used for
    every call, so a secret can never reach a backend that was not checked. ``backend`` lets a
    caller choose one explicitly instead of keyring's active backend.

    Keyring errors become :class:`SecretStoreError`. The original exception is not chained:
    some backends put their arguments into their messages, and a chained cause would print
    the secret in every traceback. Its type and message (when free of the secret) are kept.
    """

    kind = "keyring"

    def __init__(
        self, service: str = KEYRING_SERVICE, *, backend: KeyringBackend | None = None
    ) -> None:
        import keyring

        if not service:
            raise ValueError("the keyring service name must be a non-empty string")
        if backend is not None:
            chosen = backend
        else:
            try:
                chosen = keyring.get_keyring()
            except Exception as exc:  # e.g. PYTHON_KEYRING_BACKEND names a missing backend
                reason = f"keyring could not load its backend ({type(exc).__name__}: {exc})"
                raise NoSecureBackendError(_no_secure_backend_message(reason)) from exc
        problem = _insecurity(chosen)
        if problem is not None:
            raise NoSecureBackendError(_no_secure_backend_message(problem))
        self.service = service
        self.backend: KeyringBackend = chosen
        self.name = f"the OS keyring ({_backend_label(chosen)}, service {service!r})"

    def _failure(self, action: str, key: str, exc: Exception, value: Secret | None) -> str:
        detail = f"{type(exc).__name__}: {exc}"
        if value is not None and _contains_secret(detail, value):
            detail = f"{type(exc).__name__} (its message was withheld: it contained the secret)"
        return (
            f"could not {action} secret {key} in {self.name}: {detail}. "
            "Check that the keyring is unlocked and reachable, or choose another secret store"
        )

    def get(self, key: str) -> Secret | None:
        _check_key(key)
        try:
            value = self.backend.get_password(self.service, key)
        except Exception as exc:  # backends raise their own types (D-Bus, OSError, ...)
            message = self._failure("read", key, exc, None)
        else:
            return None if value is None else Secret(value)
        # Raised outside the except block so that the original is not attached as context.
        raise SecretStoreError(message)

    def set(self, key: str, value: Secret) -> None:
        _check_key(key)
        if not isinstance(value, Secret):
            raise TypeError(f"store a Secret, not {type(value).__name__}")
        try:
            self.backend.set_password(self.service, key, value.reveal())
        except Exception as exc:  # backends raise their own types (D-Bus, OSError, ...)
            message = self._failure("store", key, exc, value)
        else:
            _log.debug("stored secret %s in %s", key, self.name)
            return
        raise SecretStoreError(message)

    def delete(self, key: str) -> None:
        _check_key(key)
        try:
            self.backend.delete_password(self.service, key)
        except Exception as exc:  # backends raise their own types (D-Bus, OSError, ...)
            from keyring.errors import PasswordDeleteError

            maybe_missing = isinstance(exc, PasswordDeleteError)
            message = self._failure("delete", key, exc, None)
        else:
            _log.debug("deleted secret %s from %s", key, self.name)
            return
        # Backends also say "no such entry" with PasswordDeleteError; only a secret still
        # there is a failure.
        if maybe_missing and self.get(key) is None:
            return
        raise SecretStoreError(message)


class EnvSecretStore(SecretStore):
    """Secrets from environment variables, for automation; the operator sets them.

    Naming rule (:meth:`env_var_name`): drop the key's leading ``mailkit:``, upper-case ASCII
    letters, keep ASCII digits, turn every other character into ``_``, and prepend ``prefix``.
    So ``mailkit:default:org:password`` is read from ``MAILKIT_SECRET_DEFAULT_ORG_PASSWORD``
    and ``mailkit:default:alice@example.com:password`` from
    ``MAILKIT_SECRET_DEFAULT_ALICE_EXAMPLE_COM_PASSWORD``. The rule is lossy (``a.b`` and
    ``a-b`` share a variable), which is acceptable for operator-set variables and keeps the
    names portable to every shell. An empty variable counts as unset.

    ``environ`` defaults to the live ``os.environ``; pass a mapping to read from elsewhere.
    """

    kind = "env"

    def __init__(
        self, prefix: str = ENV_SECRET_PREFIX, environ: Mapping[str, str] | None = None
    ) -> None:
        self.prefix = prefix
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self.name = f"environment variables ({prefix}*)"

    def env_var_name(self, key: str) -> str:
        """Return the variable that holds ``key``, e.g. for the CLI to tell the user."""
        _check_key(key)
        rest = key.removeprefix(f"{KEY_PREFIX}:")
        return self.prefix + "".join(
            ch.upper() if ch.isascii() and ch.isalnum() else "_" for ch in rest
        )

    def get(self, key: str) -> Secret | None:
        value = self._environ.get(self.env_var_name(key))
        return Secret(value) if value else None

    def set(self, key: str, value: Secret) -> None:
        variable = self.env_var_name(key)
        raise ReadOnlySecretStoreError(
            f"mailkit cannot write environment variables; set {variable} in the environment "
            "of the process that runs mailkit, or choose the keyring secret store"
        )

    def delete(self, key: str) -> None:
        """Refuse only when the variable is set: for an unset one the key is already gone."""
        variable = self.env_var_name(key)
        if self._environ.get(variable):
            raise ReadOnlySecretStoreError(
                f"mailkit cannot remove environment variables; unset {variable} in the "
                "environment of the process that runs mailkit"
            )


# --------------------------------------------------------------------------- encrypted file

_FILE_MAGIC: Final = b"mailkit-secrets\n"
_FILE_FORMAT: Final = 1
_KEY_BYTES: Final = 32
_CHECK_BYTES: Final = 16
_NONCE_BYTES: Final = 12
# RFC 9106's second recommended Argon2id setting (64 MiB, 3 passes, 4 lanes): about 0.15 s here.
_ARGON2ID: Final = {"name": "argon2id", "iterations": 3, "lanes": 4, "memory_cost": 65536}
# scrypt where this OpenSSL lacks Argon2id: 2**17 x 8 is 128 MiB, OWASP's first choice.
_SCRYPT: Final = {"name": "scrypt", "n": 2**17, "r": 8, "p": 1}
_MAX_FILE_BYTES: Final = 16 * 1024 * 1024

# Passphrases given to FileSecretStore.unlock(), per resolved file path, for the life of the
# process: a notebook kernel unlocks once, every later store object for that file is unlocked.
_unlocked: dict[str, Secret] = {}
_unlocked_lock = threading.Lock()


def _derive(passphrase: Secret, kdf: Mapping[str, Any]) -> bytes:
    """Key (32 bytes) + passphrase check (16 bytes) from one KDF run over the passphrase.

    The check is stored in the header so that a wrong passphrase is told apart from a damaged
    file; it is a different part of the KDF output than the key, so it reveals nothing about it.
    """
    salt = base64.b64decode(kdf["salt"], validate=True)
    secret = passphrase.reveal().encode()
    length = _KEY_BYTES + _CHECK_BYTES
    if kdf["name"] == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        return Argon2id(
            salt=salt,
            length=length,
            iterations=int(kdf["iterations"]),
            lanes=int(kdf["lanes"]),
            memory_cost=int(kdf["memory_cost"]),
        ).derive(secret)
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(
        salt=salt, length=length, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
    ).derive(secret)


def _new_kdf() -> dict[str, Any]:
    """Parameters for a new file: Argon2id where this cryptography/OpenSSL has it, else scrypt."""
    salt = base64.b64encode(os.urandom(16)).decode()
    try:
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
    except ImportError:  # cryptography < 44
        return {**_SCRYPT, "salt": salt}
    try:  # constructing checks that the backend supports it; deriving is the costly part
        Argon2id(salt=b"\0" * 16, length=32, iterations=1, lanes=1, memory_cost=8)
    except UnsupportedAlgorithm:  # an OpenSSL without Argon2
        return {**_SCRYPT, "salt": salt}
    return {**_ARGON2ID, "salt": salt}


def _valid_kdf(kdf: object) -> bool:
    if not isinstance(kdf, dict) or not isinstance(kdf.get("salt"), str):
        return False
    wanted = {"argon2id": ("iterations", "lanes", "memory_cost"), "scrypt": ("n", "r", "p")}
    names = wanted.get(str(kdf.get("name")))
    if names is None:
        return False
    # Bounds keep a tampered header from making mailkit spend minutes or gigabytes deriving.
    limits = {"iterations": 64, "lanes": 64, "memory_cost": 1024 * 1024, "n": 2**20}
    limits.update(r=64, p=16)
    return all(isinstance(kdf.get(name), int) and 1 <= kdf[name] <= limits[name] for name in names)


class FileSecretStore(SecretStore):
    """Secrets in one encrypted file, for where there is no OS keyring (servers, containers).

    The file is ``mailkit-secrets\\n``, a one-line JSON header (format version, KDF and its
    parameters with a random per-file salt, cipher, nonce, a passphrase check), then the
    AES-256-GCM ciphertext of a JSON object of keys and values, with the header as associated
    data so that no parameter can be changed unnoticed. The key comes from the passphrase by
    Argon2id (scrypt where Argon2id is unavailable). Nothing here is home-made cryptography:
    the ``cryptography`` library's primitives, composed.

    Every write rewrites the whole file atomically (temporary file, fsync, rename) with mode
    0600, under an exclusive ``fcntl`` lock on ``<file>.lock`` that is held across read,
    change and write, so two processes writing at once both keep their change. A file that does
    not decrypt is never overwritten: a wrong passphrase raises :class:`WrongPassphraseError`,
    a damaged file :class:`SecretFileCorruptError`, and both leave it byte-for-byte as it was.

    The passphrase comes from ``passphrase``, else an earlier :meth:`unlock` of the same file in
    this process (a notebook unlocks once per kernel), else ``$MAILKIT_SECRETS_PASSPHRASE``, else
    a terminal prompt when ``prompt`` is true and standard input is a terminal. Without any,
    using the store raises :class:`SecretsLockedError`; reading a file that does not exist yet
    needs none and finds nothing.
    """

    kind = "file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        passphrase: str | Secret | None = None,
        prompt: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        self._passphrase = _as_passphrase(passphrase) if passphrase is not None else None
        self._prompt = prompt
        self._keys: dict[str, tuple[Secret, bytes]] = {}
        self._lock = threading.RLock()

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"the encrypted file {self.path}"

    @property
    def exists(self) -> bool:
        return self.path.exists()

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _cache_key(self) -> str:
        return str(self.path.resolve())

    # ----------------------------------------------------------------- passphrase

    @property
    def is_unlocked(self) -> bool:
        """A passphrase is at hand without asking (argument, earlier unlock, environment)."""
        return self._known_passphrase() is not None

    def _known_passphrase(self) -> tuple[Secret, str] | None:
        if self._passphrase is not None:
            return self._passphrase, "the passphrase given"
        with _unlocked_lock:
            cached = _unlocked.get(self._cache_key())
        if cached is not None:
            return cached, "the passphrase this session was unlocked with"
        env = os.environ.get(PASSPHRASE_ENV, "")
        if env:
            return Secret(env), f"the passphrase in {PASSPHRASE_ENV}"
        return None

    def _passphrase_for(self, *, creating: bool) -> tuple[Secret, str]:
        known = self._known_passphrase()
        if known is not None:
            return known
        if self._prompt and sys.stdin is not None and sys.stdin.isatty():
            import getpass

            typed = Secret(getpass.getpass(f"Passphrase for {self.path}: "))
            if not typed:
                raise EmptySecretError("the passphrase is empty; type the passphrase")
            if creating:
                again = Secret(getpass.getpass("The same passphrase again: "))
                if typed != again:
                    raise SecretMismatchError("the two passphrases differ; nothing was stored")
            self._passphrase = typed
            return typed, "the passphrase typed"
        raise SecretsLockedError(
            f"{self.name} is locked: mailkit needs its passphrase. Unlock it with "
            f"FileSecretStore.unlock(passphrase) (a notebook's passphrase field does this), or "
            f"set the environment variable {PASSPHRASE_ENV}",
            str(self.path),
        )

    def unlock(self, passphrase: str | Secret) -> None:
        """Check ``passphrase`` against the file and remember it for this process.

        For a file that does not exist yet there is nothing to check: it will be created with
        this passphrase by the first secret stored, so ask for it twice before calling this.
        """
        secret = _as_passphrase(passphrase)
        if self.exists:
            self._read(secret, "the passphrase given")
        with _unlocked_lock:
            _unlocked[self._cache_key()] = secret
        _log.debug("unlocked %s", self.name)

    def lock(self) -> None:
        """Forget the passphrase this process was unlocked with (the environment still counts)."""
        with _unlocked_lock:
            _unlocked.pop(self._cache_key(), None)
        self._passphrase = None
        self._keys.clear()

    # ----------------------------------------------------------------- the file

    def _key(self, passphrase: Secret, kdf: Mapping[str, Any]) -> bytes:
        """KDF output for this passphrase and header, computed once per store object."""
        marker = json.dumps(kdf, sort_keys=True)
        with self._lock:
            cached = self._keys.get(marker)
            if cached is not None and cached[0] == passphrase:
                return cached[1]
            derived = _derive(passphrase, kdf)
            self._keys[marker] = (passphrase, derived)
            return derived

    def _damaged(self, why: str) -> SecretFileCorruptError:
        return SecretFileCorruptError(
            f"{self.name} cannot be read: {why}. mailkit left it untouched and will not write "
            "over it. Restore it from a backup, or move it away and store the secrets again"
        )

    def _read(
        self, passphrase: Secret | None, source: str
    ) -> tuple[dict[str, str], dict[str, Any]] | None:
        """The secrets and the KDF header of the file, or None if there is no file yet."""
        try:
            with self.path.open("rb") as handle:
                blob = handle.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise SecretStoreError(f"{self.path} is a folder, not a secrets file") from None
        except OSError as exc:
            raise SecretStoreError(
                f"{self.name} cannot be read ({exc.strerror}); check its permissions"
            ) from None
        if len(blob) > _MAX_FILE_BYTES:
            raise self._damaged("it is far larger than any secrets file")
        if not blob.startswith(_FILE_MAGIC):
            raise self._damaged("it does not start like a mailkit secrets file")
        header_end = blob.find(b"\n", len(_FILE_MAGIC))
        if header_end < 0:
            raise self._damaged("its header is cut off")
        header_bytes = blob[len(_FILE_MAGIC) : header_end]
        try:
            header = json.loads(header_bytes)
        except ValueError:
            raise self._damaged("its header is garbled") from None
        if not isinstance(header, dict):
            raise self._damaged("its header is garbled")
        version = header.get("format")
        if isinstance(version, int) and version > _FILE_FORMAT:
            raise SecretFileCorruptError(
                f"{self.name} was written by a newer mailkit (format {version}; this one reads "
                f"up to {_FILE_FORMAT}); upgrade mailkit to use it. It was left untouched"
            )
        kdf = header.get("kdf")
        if (
            version != _FILE_FORMAT
            or header.get("cipher") != "aes-256-gcm"
            or not _valid_kdf(kdf)
            or not isinstance(header.get("nonce"), str)
            or not isinstance(header.get("check"), str)
        ):
            raise self._damaged("its header is garbled")
        assert isinstance(kdf, dict)
        try:
            nonce = base64.b64decode(header["nonce"], validate=True)
            check = base64.b64decode(header["check"], validate=True)
            base64.b64decode(kdf["salt"], validate=True)
        except ValueError:
            raise self._damaged("its header is garbled") from None
        if len(nonce) != _NONCE_BYTES or len(check) != _CHECK_BYTES:
            raise self._damaged("its header is garbled")
        if passphrase is None:
            passphrase, source = self._passphrase_for(creating=False)
        derived = self._key(passphrase, kdf)
        if not hmac.compare_digest(derived[_KEY_BYTES:], check):
            raise WrongPassphraseError(
                f"the passphrase does not open {self.name} ({source} is wrong); nothing was "
                f"read or changed. Use the passphrase the file was created with"
            )
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aad = blob[: header_end + 1]
        try:
            plain = AESGCM(derived[:_KEY_BYTES]).decrypt(nonce, blob[header_end + 1 :], aad)
        except InvalidTag:
            raise self._damaged(
                "the passphrase is right but the contents fail their integrity check"
            ) from None
        try:
            data = json.loads(plain)
        except ValueError:
            data = None
        secrets = data.get("secrets") if isinstance(data, dict) else None
        if not isinstance(secrets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()
        ):
            raise self._damaged("its decrypted contents are not mailkit's")
        return secrets, kdf

    def _write(self, secrets: Mapping[str, str], kdf: dict[str, Any], passphrase: Secret) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        derived = self._key(passphrase, kdf)
        nonce = os.urandom(_NONCE_BYTES)
        header = {
            "format": _FILE_FORMAT,
            "kdf": kdf,
            "cipher": "aes-256-gcm",
            "nonce": base64.b64encode(nonce).decode(),
            "check": base64.b64encode(derived[_KEY_BYTES:]).decode(),
        }
        aad = _FILE_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
        plain = json.dumps({"secrets": dict(sorted(secrets.items()))}).encode()
        blob = aad + AESGCM(derived[:_KEY_BYTES]).encrypt(nonce, plain, aad)
        _atomic_write(self.path, blob)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold ``<file>.lock`` so that read-change-write of two processes never interleave."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            raise SecretStoreError(
                "the encrypted file secret store needs POSIX file locks (Linux, macOS); use the "
                "OS keyring on this system"
            ) from None
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            raise SecretStoreError(
                f"the folder {self.path.parent} does not exist; create the profile first "
                "(mailkit profile init NAME)"
            ) from None
        except OSError as exc:
            raise SecretStoreError(f"{self.lock_path} cannot be opened ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _change(self, key: str, value: Secret | None) -> None:
        with self._lock, self._exclusive():
            found = self._read(None, "")
            if found is None:
                if value is None:
                    return  # nothing stored, nothing to delete
                passphrase, _ = self._passphrase_for(creating=True)
                secrets: dict[str, str] = {}
                kdf = _new_kdf()
            else:
                secrets, kdf = found
                passphrase, _ = self._passphrase_for(creating=False)
                if value is None and key not in secrets:
                    return
            if value is None:
                del secrets[key]
            else:
                secrets[key] = value.reveal()
            self._write(secrets, kdf, passphrase)

    # ----------------------------------------------------------------- SecretStore

    def get(self, key: str) -> Secret | None:
        _check_key(key)
        found = self._read(None, "")
        if found is None:
            return None
        value = found[0].get(key)
        return Secret(value) if value is not None else None

    def set(self, key: str, value: Secret) -> None:
        _check_key(key)
        if not isinstance(value, Secret):
            raise TypeError(f"store a Secret, not {type(value).__name__}")
        self._change(key, value)
        _log.debug("stored secret %s in %s", key, self.name)

    def delete(self, key: str) -> None:
        _check_key(key)
        self._change(key, None)
        _log.debug("deleted secret %s from %s", key, self.name)

    def keys(self) -> list[str]:
        found = self._read(None, "")
        return sorted(found[0]) if found is not None else []


def _as_passphrase(passphrase: str | Secret) -> Secret:
    secret = passphrase if isinstance(passphrase, Secret) else Secret(passphrase)
    if not secret:
        raise EmptySecretError("the passphrase is empty; type the passphrase")
    return secret


def _atomic_write(path: Path, blob: bytes) -> None:
    """Replace ``path`` with ``blob`` all at once: a crash leaves the old file or the new one."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - some systems cannot open a folder
        return
    try:
        os.fsync(folder)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(folder)


def unlock_secrets(path: str | os.PathLike[str], passphrase: str | Secret) -> FileSecretStore:
    """Unlock the encrypted file at ``path`` for this process and return its store."""
    store = FileSecretStore(path)
    store.unlock(passphrase)
    return store


def keyring_available() -> bool:
    """Whether a secure OS keyring backend exists here (then it is the default store)."""
    try:
        KeyringSecretStore()
    except NoSecureBackendError:
        return False
    return True


def accounts_with_secret(
    store: SecretStore, profile: str, accounts: Iterable[str], kind: str = "password"
) -> frozenset[str]:
    """Which of ``accounts`` (user codes or ``"org"``) hold a ``kind`` secret in ``store``.

    A store that can list its keys is read once; the OS keyring is asked per account. Errors
    (a locked or unreadable store) propagate: "not checked" must not look like "missing".
    """
    wanted = list(dict.fromkeys(accounts))
    keys: dict[str, str] = {}
    for account in wanted:
        try:
            keys[account] = secret_key(profile, account, kind)
        except ValueError:
            continue  # a code that cannot name a secret has none
    listed = store.keys()
    if listed is not None:
        present = set(listed)
        return frozenset(a for a, key in keys.items() if key in present)
    return frozenset(a for a, key in keys.items() if store.get(key) is not None)


class LazySecretStore(SecretStore):
    """Open the real store only when a secret is first used.

    A command that may or may not meet a secret (migrating a legacy file without a password)
    should not fail because no keyring is unlocked; one that does meet one fails at that
    point, with the backend's own message naming the choices.
    """

    def __init__(self, factory: Callable[[], SecretStore]) -> None:
        self._factory = factory
        self._store: SecretStore | None = None

    def _real(self) -> SecretStore:
        if self._store is None:
            self._store = self._factory()
        return self._store

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._real().name

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self._real().kind

    def keys(self) -> list[str] | None:
        return self._real().keys()

    def get(self, key: str) -> Secret | None:
        return self._real().get(key)

    def set(self, key: str, value: Secret) -> None:
        self._real().set(key, value)

    def delete(self, key: str) -> None:
        self._real().delete(key)


def default_secret_store() -> SecretStore:
    """Return the OS keyring store, or raise :class:`NoSecureBackendError` naming the choices.

    There is no silent fallback here: the memory store would lose secrets without warning.
    A profile's store, which is the encrypted file beside it where no keyring exists, comes
    from :func:`mailkit.profiles.profile_secrets`.
    """
    return KeyringSecretStore()


def secret_store_from_name(
    name: str, *, path: str | os.PathLike[str] | None = None, prompt: bool = False
) -> SecretStore:
    """Build the store the CLI's ``name`` refers to (one of :data:`SECRET_STORE_NAMES`).

    ``file`` is the encrypted file at ``path`` (beside the profile); ``auto`` is the OS keyring
    where a secure one exists and otherwise that file. ``prompt`` lets the file store ask for
    its passphrase on a terminal.
    """
    normalized = name.strip().lower()
    if normalized == "auto":
        normalized = "keyring" if path is None or keyring_available() else "file"
    if normalized == "file":
        if path is None:
            raise ValueError("the file secret store lives beside a profile: give its path")
        return FileSecretStore(path, prompt=prompt)
    if normalized == "keyring":
        return KeyringSecretStore()
    if normalized == "memory":
        return MemorySecretStore()
    if normalized == "env":
        return EnvSecretStore()
    choices = ", ".join(SECRET_STORE_NAMES)
    raise ValueError(f"unknown secret store {name!r}; choose one of: {choices}")
