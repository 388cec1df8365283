"""Tests for mailkit.secrets: the Secret type, the stores, and that no secret ever leaks.

The keyring store is exercised through keyring's real API with small in-process backends
(subclasses of ``keyring.backend.KeyringBackend``), so no OS keyring is touched.
"""

from __future__ import annotations

import base64
import copy
import logging
import os
import pickle
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import InitError, KeyringLocked, PasswordDeleteError, PasswordSetError

from mailkit.errors import (
    EmptySecretError,
    MailkitError,
    NoSecureBackendError,
    ReadOnlySecretStoreError,
    SecretMismatchError,
    SecretStoreError,
)
from mailkit.secret import MASK, Secret
from mailkit.secrets import (
    EnvSecretStore,
    FileSecretStore,
    KeyringSecretStore,
    LazySecretStore,
    MemorySecretStore,
    SecretStore,
    default_secret_store,
    secret_key,
    secret_store_from_name,
)

CANARY = "canary-S3cr3t-Zq9!"
KEY = "mailkit:default:org:password"
REPR_TEMPLATE = f"Secret('{MASK}')"


def leak_forms(secret: str) -> tuple[str, str, str]:
    raw = secret.encode()
    return secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()


def assert_no_leak(text: str, secret: str = CANARY) -> None:
    for form in leak_forms(secret):
        assert form not in text


def assert_exception_clean(exc: BaseException) -> None:
    """The message, the repr and the whole printed traceback (with causes) are secret-free."""
    assert_no_leak(str(exc))
    assert_no_leak(repr(exc))
    assert_no_leak("".join(traceback.format_exception(exc)))


# --- in-process keyring backends -------------------------------------------------------------


class DictKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict.

    ``viable = False`` keeps keyring's own auto-detection from ever choosing a test backend
    (every subclass of KeyringBackend is registered globally when defined).
    """

    viable = False

    @properties.classproperty
    def priority(cls) -> float:
        return 5

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's __init__ is untyped
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise PasswordDeleteError("password not found") from None


class PlaintextKeyring(DictKeyring):
    """Named like keyrings.alt's file backend, which writes passwords in clear text."""


class UnencryptedFileKeyring(DictKeyring):
    pass


class ZeroPriorityKeyring(DictKeyring):
    @properties.classproperty
    def priority(cls) -> float:
        return 0


class UnusableKeyring(DictKeyring):
    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("no D-Bus session")


class LeakyFailingKeyring(DictKeyring):
    """Fails every call; on set, puts the password (clear and base64) into its message."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        encoded = base64.b64encode(password.encode()).decode()
        raise PasswordSetError(f"refused to store {password!r} (base64 {encoded})")


class Base64LeakyKeyring(DictKeyring):
    """Puts only the standard base64 form of the password into its message."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError(f"refused {base64.b64encode(password.encode()).decode()}")


class UrlsafeBase64LeakyKeyring(DictKeyring):
    """Puts only the URL-safe base64 form of the password into its message."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError(f"refused {base64.urlsafe_b64encode(password.encode()).decode()}")

    def delete_password(self, service: str, username: str) -> None:
        raise KeyringLocked("collection is locked")


class OSErrorKeyring(DictKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise OSError(f"disk full while writing {password}")


class StickyKeyring(DictKeyring):
    """Raises PasswordDeleteError even when the entry exists and stays."""

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordDeleteError("delete not permitted")


class SecureChain(keyring.backends.chainer.ChainerBackend):
    viable = False
    members: tuple[KeyringBackend, ...] = (DictKeyring(), DictKeyring())

    @properties.classproperty
    def backends(cls) -> list[KeyringBackend]:
        return list(cls.members)


class MixedChain(SecureChain):
    members = (DictKeyring(), PlaintextKeyring())


def fail_keyring() -> KeyringBackend:
    """keyring's backend for "nothing available" (its constructor is untyped)."""
    return keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]


@pytest.fixture
def use_keyring() -> Iterator[Callable[[KeyringBackend], None]]:
    """Let a test make a backend keyring's active one; the previous one is restored after."""
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


@pytest.fixture
def dict_keyring(use_keyring: Callable[[KeyringBackend], None]) -> DictKeyring:
    backend = DictKeyring()
    use_keyring(backend)
    return backend


# --- Secret ----------------------------------------------------------------------------------


def test_secret_shows_only_the_mask() -> None:
    secret = Secret(CANARY)
    assert repr(secret) == "Secret('********')"
    assert str(secret) == "********"
    assert f"{secret}" == "********"
    assert format(secret) == "********"
    assert f"{secret!r}" == "Secret('********')"
    assert "%s" % secret == "********"  # noqa: UP031  # the old formatting path, on purpose
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret:>30}", f"{secret!s}"):
        assert_no_leak(shown)


def test_secret_is_masked_inside_containers_and_dataclasses() -> None:
    @dataclass(frozen=True)
    class Login:
        username: str
        password: Secret

    secret = Secret(CANARY)
    assert_no_leak(repr([secret]))
    assert_no_leak(repr({"password": secret}))
    assert_no_leak(repr(Login("alice", secret)))
    assert_no_leak(str(Login("alice", secret)))


def test_mask_does_not_reveal_length() -> None:
    assert repr(Secret("a")) == repr(Secret("a" * 100)) == repr(Secret(""))
    assert str(Secret("a")) == str(Secret("a" * 100))


def test_reveal_returns_the_value() -> None:
    assert Secret(CANARY).reveal() == CANARY


def test_bool_is_true_iff_non_empty() -> None:
    assert Secret("x")
    assert not Secret("")


def test_equality_compares_values() -> None:
    assert Secret(CANARY) == Secret(CANARY)
    assert Secret(CANARY) != Secret(CANARY + "x")
    assert Secret("") == Secret("")
    # Non-ASCII passwords work (hmac.compare_digest refuses non-ASCII str).
    assert Secret("pässwörd-日本") == Secret("pässwörd-日本")
    assert Secret("pässwörd-日本") != Secret("passwörd-日本")


def test_secret_never_equals_its_clear_text() -> None:
    assert Secret(CANARY) != CANARY
    assert CANARY != Secret(CANARY)  # noqa: SIM300  # the reflected comparison, on purpose


@given(st.text(), st.text())
def test_equality_matches_value_equality(a: str, b: str) -> None:
    assert (Secret(a) == Secret(b)) == (a == b)
    assert Secret(a) == Secret(a)


def test_secret_is_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Secret(CANARY))
    with pytest.raises(TypeError):
        {Secret(CANARY)}


def test_secret_is_immutable() -> None:
    secret = Secret(CANARY)
    with pytest.raises(AttributeError, match="immutable"):
        secret._value = "other"
    with pytest.raises(AttributeError, match="immutable"):
        secret.extra = 1
    with pytest.raises(AttributeError, match="immutable"):
        del secret._value
    assert not hasattr(secret, "__dict__")
    assert secret.reveal() == CANARY


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secret_refuses_pickling(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(Secret(CANARY), protocol=protocol)
    assert_exception_clean(info.value)


def test_copies_are_the_same_immutable_object() -> None:
    secret = Secret(CANARY)
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"password": secret})["password"] is secret


def test_secret_requires_str_and_does_not_echo_the_value() -> None:
    with pytest.raises(TypeError, match="bytes") as info:
        Secret(CANARY.encode())  # type: ignore[arg-type]
    assert_exception_clean(info.value)


@given(st.text())
def test_shown_forms_do_not_depend_on_the_value(value: str) -> None:
    def shown(secret: Secret) -> list[str]:
        return [repr(secret), str(secret), f"{secret}", f"{secret:*^30}", f"{secret!r}"]

    assert shown(Secret(value)) == shown(Secret("reference"))


@given(st.text())
def test_shown_forms_never_contain_the_value(value: str) -> None:
    # Values that are part of the fixed template ("Secret", "***", "('") appear trivially.
    assume(value not in REPR_TEMPLATE)
    secret = Secret(value)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}"):
        assert value not in shown


# --- secret_key ------------------------------------------------------------------------------


def test_secret_key_format() -> None:
    assert secret_key("default", "org") == "mailkit:default:org:password"
    assert (
        secret_key("prod", "alice@example.com", "refresh_token")
        == "mailkit:prod:alice@example.com:refresh_token"
    )
    assert secret_key("demo", "JOHN DOE", "client_secret") == "mailkit:demo:JOHN DOE:client_secret"


@pytest.mark.parametrize(
    ("profile", "account", "kind", "part"),
    [
        ("", "org", "password", "profile"),
        ("default", "", "password", "account"),
        ("default", "org", "", "kind"),
        ("de:fault", "org", "password", "profile"),
        ("default", "a:b", "password", "account"),
        ("default", "org", "pass:word", "kind"),
        ("default", "al\nice", "password", "account"),
        ("default", "al\x00ice", "password", "account"),
        ("default\t", "org", "password", "profile"),
        ("default", " alice", "password", "account"),
        ("default", "org", "password ", "kind"),
    ],
)
def test_secret_key_rejects_bad_parts(profile: str, account: str, kind: str, part: str) -> None:
    with pytest.raises(ValueError, match=f"secret key {part}"):
        secret_key(profile, account, kind)


# --- set_password (shared by every store) ----------------------------------------------------


def test_set_password_stores_when_both_entries_match() -> None:
    store = MemorySecretStore()
    store.set_password(KEY, CANARY, CANARY)
    assert store.get(KEY) == Secret(CANARY)
    store.set_password(KEY, Secret("second"), "second")
    assert store.get(KEY) == Secret("second")


def test_set_password_mismatch_is_refused_and_keeps_the_old_password() -> None:
    store = MemorySecretStore()
    store.set_password(KEY, "old", "old")
    with pytest.raises(SecretMismatchError) as info:
        store.set_password(KEY, CANARY, CANARY + "typo")
    assert str(info.value) == (
        "the password and its confirmation differ; type the same password in both fields"
    )
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MailkitError)
    assert_exception_clean(info.value)
    assert store.get(KEY) == Secret("old")


@pytest.mark.parametrize(("new", "confirmation"), [("", ""), ("", CANARY), (Secret(""), "")])
def test_set_password_refuses_empty(new: str | Secret, confirmation: str) -> None:
    store = MemorySecretStore()
    with pytest.raises(EmptySecretError, match="password is empty") as info:
        store.set_password(KEY, new, confirmation)
    assert_exception_clean(info.value)
    assert store.get(KEY) is None


def test_set_password_rejects_an_empty_key() -> None:
    with pytest.raises(ValueError, match="secret_key"):
        MemorySecretStore().set_password("", CANARY, CANARY)


# --- MemorySecretStore -----------------------------------------------------------------------


def test_memory_store_round_trip() -> None:
    store = MemorySecretStore()
    assert isinstance(store, SecretStore)
    assert store.get(KEY) is None
    store.set(KEY, Secret(CANARY))
    assert store.get(KEY) == Secret(CANARY)
    store.delete(KEY)
    assert store.get(KEY) is None
    store.delete(KEY)  # a missing key is not an error
    assert "memory" in store.name
    assert_no_leak(repr(store))


def test_memory_store_refuses_plain_strings() -> None:
    with pytest.raises(TypeError, match="Secret"):
        MemorySecretStore().set(KEY, CANARY)  # type: ignore[arg-type]


def test_memory_stores_are_independent() -> None:
    first, second = MemorySecretStore(), MemorySecretStore()
    first.set(KEY, Secret(CANARY))
    assert second.get(KEY) is None


# --- EnvSecretStore --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("mailkit:default:org:password", "MAILKIT_SECRET_DEFAULT_ORG_PASSWORD"),
        (
            "mailkit:prod:alice@example.com:refresh_token",
            "MAILKIT_SECRET_PROD_ALICE_EXAMPLE_COM_REFRESH_TOKEN",
        ),
        ("mailkit:default:jörg:password", "MAILKIT_SECRET_DEFAULT_J_RG_PASSWORD"),
        ("mailkit:site-2:JOHN DOE:client_secret", "MAILKIT_SECRET_SITE_2_JOHN_DOE_CLIENT_SECRET"),
        ("other:key", "MAILKIT_SECRET_OTHER_KEY"),
    ],
)
def test_env_var_name(key: str, variable: str) -> None:
    assert EnvSecretStore(environ={}).env_var_name(key) == variable


def test_env_var_name_uses_the_prefix() -> None:
    assert EnvSecretStore("ACME_", environ={}).env_var_name(KEY) == "ACME_DEFAULT_ORG_PASSWORD"


def test_env_store_reads_from_the_given_environ() -> None:
    store = EnvSecretStore(
        environ={"MAILKIT_SECRET_DEFAULT_ORG_PASSWORD": CANARY, "MAILKIT_SECRET_P_A_TOKEN": ""}
    )
    assert store.get(KEY) == Secret(CANARY)
    assert store.get(secret_key("default", "alice")) is None
    assert store.get(secret_key("p", "a", "token")) is None  # empty counts as unset


def test_env_store_reads_os_environ_live(monkeypatch: pytest.MonkeyPatch) -> None:
    store = EnvSecretStore()
    monkeypatch.delenv("MAILKIT_SECRET_DEFAULT_ORG_PASSWORD", raising=False)
    assert store.get(KEY) is None
    monkeypatch.setenv("MAILKIT_SECRET_DEFAULT_ORG_PASSWORD", CANARY)
    assert store.get(KEY) == Secret(CANARY)
    assert os.environ["MAILKIT_SECRET_DEFAULT_ORG_PASSWORD"] == CANARY


def test_env_store_set_is_refused_naming_the_variable() -> None:
    store = EnvSecretStore(environ={})
    with pytest.raises(ReadOnlySecretStoreError, match="MAILKIT_SECRET_DEFAULT_ORG_PASSWORD") as i:
        store.set(KEY, Secret(CANARY))
    assert_exception_clean(i.value)
    with pytest.raises(ReadOnlySecretStoreError, match="MAILKIT_SECRET_DEFAULT_ORG_PASSWORD") as j:
        store.set_password(KEY, CANARY, CANARY)
    assert_exception_clean(j.value)


def test_env_store_delete_refused_only_when_the_variable_is_set() -> None:
    environ = {"MAILKIT_SECRET_DEFAULT_ORG_PASSWORD": CANARY}
    store = EnvSecretStore(environ=environ)
    store.delete(secret_key("default", "alice"))  # unset: nothing to delete
    with pytest.raises(ReadOnlySecretStoreError, match="unset MAILKIT_SECRET_DEFAULT_ORG") as info:
        store.delete(KEY)
    assert_exception_clean(info.value)
    assert environ == {"MAILKIT_SECRET_DEFAULT_ORG_PASSWORD": CANARY}


# --- KeyringSecretStore ----------------------------------------------------------------------


def test_keyring_store_round_trip(dict_keyring: DictKeyring) -> None:
    store = KeyringSecretStore()
    assert store.get(KEY) is None
    store.set_password(KEY, CANARY, CANARY)
    assert dict_keyring.entries == {("mailkit", KEY): CANARY}
    assert store.get(KEY) == Secret(CANARY)
    store.delete(KEY)
    assert store.get(KEY) is None
    assert dict_keyring.entries == {}
    store.delete(KEY)  # the backend raises PasswordDeleteError; a missing key is fine
    assert_no_leak(repr(store))
    assert "DictKeyring" in store.name


def test_keyring_store_uses_its_service(dict_keyring: DictKeyring) -> None:
    KeyringSecretStore(service="acme-erp").set(KEY, Secret(CANARY))
    assert dict_keyring.entries == {("acme-erp", KEY): CANARY}


def test_keyring_store_keeps_the_backend_it_checked(
    dict_keyring: DictKeyring, use_keyring: Callable[[KeyringBackend], None]
) -> None:
    store = KeyringSecretStore()
    use_keyring(fail_keyring())
    store.set(KEY, Secret(CANARY))
    assert dict_keyring.entries == {("mailkit", KEY): CANARY}


def test_keyring_store_accepts_an_explicit_backend() -> None:
    backend = DictKeyring()
    KeyringSecretStore(backend=backend).set(KEY, Secret(CANARY))
    assert backend.entries == {("mailkit", KEY): CANARY}


def test_keyring_store_accepts_a_chain_of_secure_backends() -> None:
    chain = SecureChain()  # type: ignore[no-untyped-call]  # keyring's __init__ is untyped
    store = KeyringSecretStore(backend=chain)
    store.set(KEY, Secret(CANARY))
    assert store.get(KEY) == Secret(CANARY)


INSECURE_BACKENDS: list[tuple[Callable[[], KeyringBackend], str]] = [
    (keyring.backends.fail.Keyring, "no OS keyring"),
    (keyring.backends.null.Keyring, "disabled"),
    (PlaintextKeyring, "unencrypted"),
    (UnencryptedFileKeyring, "unencrypted"),
    (ZeroPriorityKeyring, "priority 0"),
    (UnusableKeyring, "no D-Bus session"),
    (MixedChain, "chained"),
]


def assert_names_the_choices(message: str) -> None:
    for choice in (
        "Secret Service",
        "KWallet",
        "macOS Keychain",
        "Windows Credential Locker",
        "MemorySecretStore",
        "EnvSecretStore",
        "MAILKIT_SECRET_",
        "plaintext file",
    ):
        assert choice in message


@pytest.mark.parametrize(("make_backend", "reason"), INSECURE_BACKENDS)
def test_keyring_store_refuses_insecure_backends(
    make_backend: Callable[[], KeyringBackend],
    reason: str,
    use_keyring: Callable[[KeyringBackend], None],
) -> None:
    use_keyring(make_backend())
    with pytest.raises(NoSecureBackendError, match=reason) as info:
        KeyringSecretStore()
    assert_names_the_choices(str(info.value))
    with pytest.raises(NoSecureBackendError, match=reason):
        KeyringSecretStore(backend=make_backend())


def test_default_store_is_the_keyring(dict_keyring: DictKeyring) -> None:
    store = default_secret_store()
    assert isinstance(store, KeyringSecretStore)
    store.set(KEY, Secret(CANARY))
    assert dict_keyring.entries == {("mailkit", KEY): CANARY}


def test_default_store_without_a_secure_keyring_names_the_choices(
    use_keyring: Callable[[KeyringBackend], None],
) -> None:
    use_keyring(fail_keyring())
    with pytest.raises(NoSecureBackendError) as info:
        default_secret_store()
    assert_names_the_choices(str(info.value))


def test_default_store_when_keyring_cannot_load_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_get_keyring() -> KeyringBackend:
        raise InitError("PYTHON_KEYRING_BACKEND names keyrings.gone.Keyring")

    monkeypatch.setattr(keyring, "get_keyring", broken_get_keyring)
    with pytest.raises(NoSecureBackendError, match=r"keyrings\.gone") as info:
        default_secret_store()
    assert_names_the_choices(str(info.value))


def test_keyring_set_failure_withholds_a_message_that_contains_the_secret() -> None:
    store = KeyringSecretStore(backend=LeakyFailingKeyring())
    with pytest.raises(SecretStoreError) as info:
        store.set(KEY, Secret(CANARY))
    assert_exception_clean(info.value)
    assert "PasswordSetError" in str(info.value)
    assert KEY in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


# "~~~" makes the standard and URL-safe base64 forms differ ("fn5+" / "fn5-").
@pytest.mark.parametrize("secret", [CANARY, CANARY + "~~~"])
@pytest.mark.parametrize("backend_type", [Base64LeakyKeyring, UrlsafeBase64LeakyKeyring])
def test_keyring_set_failure_withholds_base64_forms_of_the_secret(
    backend_type: type[DictKeyring], secret: str
) -> None:
    with pytest.raises(SecretStoreError, match="withheld") as info:
        KeyringSecretStore(backend=backend_type()).set(KEY, Secret(secret))
    assert_no_leak("".join(traceback.format_exception(info.value)), secret)


def test_keyring_set_failure_of_any_type_is_wrapped() -> None:
    with pytest.raises(SecretStoreError, match="OSError") as info:
        KeyringSecretStore(backend=OSErrorKeyring()).set(KEY, Secret(CANARY))
    assert_exception_clean(info.value)


def test_keyring_set_password_failure_is_clean() -> None:
    with pytest.raises(SecretStoreError) as info:
        KeyringSecretStore(backend=LeakyFailingKeyring()).set_password(KEY, CANARY, CANARY)
    assert_exception_clean(info.value)


@pytest.mark.parametrize("action", ["get", "delete"])
def test_keyring_read_and_delete_failures_keep_the_backend_message(action: str) -> None:
    store = KeyringSecretStore(backend=LeakyFailingKeyring())
    with pytest.raises(SecretStoreError, match="KeyringLocked: collection is locked") as info:
        store.get(KEY) if action == "get" else store.delete(KEY)
    assert "unlocked" in str(info.value)
    assert_exception_clean(info.value)


def test_keyring_delete_error_is_raised_when_the_secret_stays() -> None:
    backend = StickyKeyring()
    store = KeyringSecretStore(backend=backend)
    store.delete(KEY)  # missing: the backend's PasswordDeleteError means "no such entry"
    store.set(KEY, Secret(CANARY))
    with pytest.raises(SecretStoreError, match="delete not permitted") as info:
        store.delete(KEY)
    assert_exception_clean(info.value)
    assert store.get(KEY) == Secret(CANARY)


# --- secret_store_from_name ------------------------------------------------------------------


def test_store_from_name(dict_keyring: DictKeyring) -> None:
    assert isinstance(secret_store_from_name("memory"), MemorySecretStore)
    assert isinstance(secret_store_from_name("env"), EnvSecretStore)
    assert isinstance(secret_store_from_name("keyring"), KeyringSecretStore)
    assert isinstance(secret_store_from_name(" Memory "), MemorySecretStore)


def test_store_from_name_keyring_without_secure_backend(
    use_keyring: Callable[[KeyringBackend], None],
) -> None:
    use_keyring(fail_keyring())
    with pytest.raises(NoSecureBackendError):
        secret_store_from_name("keyring")


@pytest.mark.parametrize("name", ["plaintext", "files", ""])
def test_store_from_name_unknown_lists_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match="choose one of: auto, keyring, file, memory, env"):
        secret_store_from_name(name)


def test_store_from_name_file_needs_the_profile_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="beside a profile"):
        secret_store_from_name("file")
    store = secret_store_from_name("file", path=tmp_path / "p.secrets")
    assert isinstance(store, FileSecretStore)
    assert store.path == tmp_path / "p.secrets"


def test_auto_is_the_keyring_where_one_exists_else_the_file(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    use_keyring(DictKeyring())
    assert secret_store_from_name("auto", path=tmp_path / "p.secrets").kind == "keyring"
    use_keyring(fail_keyring())
    assert secret_store_from_name("auto", path=tmp_path / "p.secrets").kind == "file"


# --- nothing is logged or printed ------------------------------------------------------------


def test_no_secret_in_logs_or_output_on_any_path(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    stores: list[SecretStore] = [
        MemorySecretStore(),
        KeyringSecretStore(backend=DictKeyring()),
        KeyringSecretStore(backend=LeakyFailingKeyring()),
        KeyringSecretStore(backend=StickyKeyring()),
        EnvSecretStore(environ={"MAILKIT_SECRET_DEFAULT_ORG_PASSWORD": CANARY}),
    ]
    for store in stores:
        attempts: list[Callable[[SecretStore], object]] = [
            lambda s: s.set_password(KEY, CANARY, CANARY),
            lambda s: s.set_password(KEY, CANARY, CANARY + "x"),
            lambda s: s.set(KEY, Secret(CANARY)),
            lambda s: s.get(KEY),
            lambda s: s.delete(KEY),
        ]
        for attempt in attempts:
            try:
                attempt(store)
            except MailkitError as exc:
                assert_exception_clean(exc)

    assert any(record.name == "mailkit.secrets" for record in caplog.records)
    assert_no_leak(caplog.text)
    for record in caplog.records:
        assert_no_leak(record.getMessage())
    captured = capsys.readouterr()
    assert_no_leak(captured.out)
    assert_no_leak(captured.err)


def test_lazy_store_opens_the_backend_only_when_used() -> None:
    opened: list[MemorySecretStore] = []

    def factory() -> MemorySecretStore:
        opened.append(MemorySecretStore())
        return opened[-1]

    lazy = LazySecretStore(factory)
    assert opened == []
    key = secret_key("p", "org")
    lazy.set_password(key, "pw", "pw")
    assert len(opened) == 1
    assert lazy.get(key) == Secret("pw")
    assert "in-memory" in lazy.name
    lazy.delete(key)
    assert opened[0].get(key) is None
    assert len(opened) == 1


def test_lazy_store_raises_the_backends_error_on_first_use() -> None:
    def no_keyring() -> SecretStore:
        raise NoSecureBackendError("no usable keyring; choose memory or env")

    lazy = LazySecretStore(no_keyring)
    with pytest.raises(NoSecureBackendError, match="choose memory or env"):
        lazy.get(secret_key("p", "org"))
