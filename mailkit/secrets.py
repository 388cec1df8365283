"""Where passwords, OAuth tokens and client secrets live, and the type that carries them.

A secret travels through mailkit only as a :class:`Secret`, whose ``repr``/``str`` are a fixed
mask, so a secret cannot end up in a notebook output, a log line, a transcript or an exception
by accident: redaction happens at the source, not by callers being careful.

Secrets are kept in a :class:`SecretStore`, addressed by keys from :func:`secret_key`:

- :class:`KeyringSecretStore` -- the OS keyring (the default, see :func:`default_secret_store`);
- :class:`MemorySecretStore` -- demos, Binder and tests; forgets everything when the process exits;
- :class:`EnvSecretStore` -- automation; read-only environment variables set by the operator.

There is deliberately no file backend: when no secure keyring exists, mailkit says so and lets
the user choose, rather than quietly writing secrets to disk in plain text.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Final, NoReturn, final

import keyring
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
from keyring.backend import KeyringBackend

from mailkit.errors import (
    EmptySecretError,
    NoSecureBackendError,
    ReadOnlySecretStoreError,
    SecretMismatchError,
    SecretStoreError,
)

__all__ = [
    "ENV_SECRET_PREFIX",
    "KEYRING_SERVICE",
    "MASK",
    "SECRET_STORE_NAMES",
    "EnvSecretStore",
    "KeyringSecretStore",
    "LazySecretStore",
    "MemorySecretStore",
    "Secret",
    "SecretStore",
    "default_secret_store",
    "secret_key",
    "secret_store_from_name",
]

# Only key names and store names are ever logged; never a value, not even its length.
_log = logging.getLogger(__name__)

MASK: Final = "********"
"""What every secret looks like when shown; fixed so that it does not reveal the length."""

KEY_PREFIX: Final = "mailkit"
KEYRING_SERVICE: Final = "mailkit"
ENV_SECRET_PREFIX: Final = "MAILKIT_SECRET_"  # noqa: S105  # a variable-name prefix
SECRET_STORE_NAMES: Final = ("keyring", "memory", "env")
"""The names :func:`secret_store_from_name` accepts (the CLI offers them as choices)."""


@final
class Secret:
    """A secret string that shows itself only as a mask; :meth:`reveal` is the one way out.

    Immutable and slotted, so nothing can swap the value or attach a copy of it. Equality with
    another :class:`Secret` runs in constant time (it may be used to check a typed password);
    a :class:`Secret` never equals a plain ``str``, so comparing against clear text cannot
    quietly fall back to an ordinary, timing-revealing string comparison.

    Deliberately unhashable: a hashable secret can become a dict key or a
    ``functools.lru_cache`` argument and then lives on in a cache for the life of the process;
    nothing in mailkit needs a set of secrets.

    Pickling raises :class:`TypeError` because a pickle is a file (or a socket payload) holding
    the clear text. ``copy.copy``/``copy.deepcopy`` return the same object instead, which is
    safe for an immutable value and keeps deep copies of settings objects working.
    """

    __slots__ = ("_value",)
    __hash__ = None  # type: ignore[assignment]  # see the class docstring

    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            # The type name only: the value itself may be the secret in another form.
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the clear text; call it only at the point where the secret is sent."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return format(MASK, format_spec)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # compare_digest accepts str only when ASCII; bytes work for every password.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a Secret is immutable; make a new one instead")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("a Secret is immutable; make a new one instead")

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a Secret cannot be pickled: that would write the clear text to a file or socket; "
            "store it in a SecretStore and pass the key instead"
        )

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self


def _check_key_part(label: str, part: str) -> None:
    if not isinstance(part, str) or not part:
        raise ValueError(f"secret key {label} must be a non-empty string, got {part!r}")
    if ":" in part:
        raise ValueError(f"secret key {label} {part!r} must not contain ':' (it separates parts)")
    if any(unicodedata.category(ch).startswith("C") for ch in part):
        raise ValueError(f"secret key {label} {part!r} must not contain control characters")
    if part != part.strip():
        raise ValueError(f"secret key {label} {part!r} must not start or end with whitespace")


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

    def __init__(self) -> None:
        self._secrets: dict[str, Secret] = {}
        self._lock = threading.Lock()

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
        "(2) MemorySecretStore for demos and tests (it forgets every secret when the process "
        "exits); "
        f"(3) EnvSecretStore for automation (set environment variables named "
        f"{ENV_SECRET_PREFIX}<PROFILE>_<ACCOUNT>_<KIND>)"
    )


def _backend_label(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


_PLAINTEXT_MARKERS: Final = ("plaintext", "unencrypted", "cleartext", "insecure")


def _insecurity(backend: KeyringBackend) -> str | None:
    """Return why ``backend`` must not hold secrets, or ``None`` if it may."""
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

    def __init__(
        self, service: str = KEYRING_SERVICE, *, backend: KeyringBackend | None = None
    ) -> None:
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
            maybe_missing = isinstance(exc, keyring.errors.PasswordDeleteError)
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

    def get(self, key: str) -> Secret | None:
        return self._real().get(key)

    def set(self, key: str, value: Secret) -> None:
        self._real().set(key, value)

    def delete(self, key: str) -> None:
        self._real().delete(key)


def default_secret_store() -> SecretStore:
    """Return the OS keyring store, or raise :class:`NoSecureBackendError` naming the choices.

    There is no silent fallback: the memory store would lose secrets without warning and a
    file would leak them, so the caller (CLI, notebook) must pick one explicitly.
    """
    return KeyringSecretStore()


def secret_store_from_name(name: str) -> SecretStore:
    """Build the store the CLI's ``name`` refers to: ``keyring``, ``memory`` or ``env``."""
    normalized = name.strip().lower()
    if normalized == "keyring":
        return KeyringSecretStore()
    if normalized == "memory":
        return MemorySecretStore()
    if normalized == "env":
        return EnvSecretStore()
    choices = ", ".join(SECRET_STORE_NAMES)
    raise ValueError(f"unknown secret store {name!r}; choose one of: {choices}")
