"""Where profiles live: names in the data folder, paths anywhere, and reading never creates."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

import mailkit
from mailkit.errors import ProfileExistsError, ProfileNotFoundError, SettingsError
from mailkit.profiles import (
    PROFILE_ENV,
    ProfileLocation,
    init_profile,
    locate_profile,
    open_profile,
    profile_secrets,
)
from mailkit.secret import Secret
from mailkit.secrets import (
    PASSPHRASE_ENV,
    EnvSecretStore,
    FileSecretStore,
    MemorySecretStore,
    secret_key,
)
from mailkit.store import Store

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="XDG_DATA_HOME steers platformdirs on Linux only"
)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data folder, pointed at a temporary one; no MAILKIT_* variables."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    return tmp_path / "data" / "mailkit"


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(previous)


def test_a_name_lives_in_the_data_folder(data: Path) -> None:
    where = locate_profile("acme-prod")
    assert where == ProfileLocation("acme-prod", data / "acme-prod.sqlite")
    assert where.secrets_path == data / "acme-prod.secrets"
    assert not where.exists
    assert not data.exists()  # looking never creates anything


@pytest.mark.parametrize("spec", ["acme.sqlite", "./acme", "sub/acme.db", "acme.sqlite3"])
def test_anything_with_a_folder_or_suffix_is_a_path(data: Path, spec: str) -> None:
    where = locate_profile(spec)
    assert where.path == Path(spec)
    assert where.name == "acme"


def test_a_path_object_is_a_path_and_names_are_file_safe(data: Path, tmp_path: Path) -> None:
    where = locate_profile(tmp_path / "Büro Nord.sqlite")
    assert where.path == tmp_path / "Büro Nord.sqlite"
    assert where.name == "B-ro-Nord"
    assert where.secrets_path == tmp_path / "Büro Nord.secrets"


@pytest.mark.parametrize("spec", ["a b", "x" * 65, "acme?"])
def test_neither_name_nor_path_is_explained(data: Path, spec: str) -> None:
    with pytest.raises(SettingsError, match="neither a profile name"):
        locate_profile(spec)


def test_mailkit_profile_sets_the_default(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert locate_profile().path == data / "default.sqlite"
    monkeypatch.setenv(PROFILE_ENV, "demo")
    assert locate_profile() == ProfileLocation("demo", data / "demo.sqlite")
    monkeypatch.setenv(PROFILE_ENV, str(tmp_path / "elsewhere.sqlite"))
    assert locate_profile().path == tmp_path / "elsewhere.sqlite"
    assert locate_profile("acme").name == "acme"  # an explicit one wins


def test_opening_a_missing_profile_creates_nothing(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFoundError, match="init_profile") as missing:
        open_profile("typo")
    assert str(data / "typo.sqlite") in str(missing.value)
    assert not data.exists()
    with pytest.raises(ProfileNotFoundError):
        open_profile(tmp_path / "typo.sqlite")
    with pytest.raises(ProfileNotFoundError, match="create=True"):
        Store.open(tmp_path / "typo.sqlite")
    with pytest.raises(ProfileNotFoundError):
        Store.open(profile="typo")
    assert not (tmp_path / "typo.sqlite").exists()
    assert not data.exists()


def test_create_is_explicit_and_init_never_clobbers(data: Path) -> None:
    with open_profile("demo", create=True) as store:
        store.put_user(mailkit.UserSettings(user_code="ann"))
        assert store.path == data / "demo.sqlite"
        assert store.profile_name == "demo"
    before = (data / "demo.sqlite").read_bytes()
    with pytest.raises(ProfileExistsError, match="left as it is"):
        init_profile("demo")
    assert (data / "demo.sqlite").read_bytes() == before
    with open_profile("demo") as store:  # reopened by name, as after a kernel restart
        assert [u.user_code for u in store.users()] == ["ann"]
    with init_profile("second") as store:
        assert store.path == data / "second.sqlite"


def test_a_file_profile_keeps_its_recorded_name(tmp_path: Path, data: Path) -> None:
    with init_profile(tmp_path / "acme.sqlite") as store:
        assert store.profile_name == "acme"
    with open_profile(str(tmp_path / "acme.sqlite")) as store:
        assert store.path == tmp_path / "acme.sqlite"


def test_profile_secrets_is_the_file_beside_the_profile_without_a_keyring(
    data: Path, no_keyring: None
) -> None:
    with init_profile("demo") as store:
        secrets = profile_secrets(store)
        assert isinstance(secrets, FileSecretStore)
        assert secrets.path == data / "demo.secrets"
        assert secrets.kind == "file"
        assert "encrypted file" in secrets.name
        keyed = profile_secrets(store, passphrase="pass phrase")
        assert isinstance(keyed, FileSecretStore)
        keyed.set(secret_key(store.profile_name, "org"), Secret("pw"))
    # By name, by location, and from a second object: the same file.
    again = profile_secrets("demo", passphrase="pass phrase")
    assert again.get(secret_key("demo", "org")) == Secret("pw")
    assert profile_secrets(locate_profile("demo")).kind == "file"


def test_profile_secrets_by_choice(data: Path) -> None:
    assert isinstance(profile_secrets("demo", backend="memory"), MemorySecretStore)
    assert isinstance(profile_secrets("demo", backend="env"), EnvSecretStore)
    assert isinstance(profile_secrets("demo", backend="file"), FileSecretStore)
    with pytest.raises(ValueError, match="choose one of"):
        profile_secrets("demo", backend="plaintext")
