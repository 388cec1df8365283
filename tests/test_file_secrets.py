"""The encrypted file secret store: what it writes, what it refuses, and two processes at once."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_canary import encoded_forms

import mailkit.secrets as secrets_module
from mailkit.errors import (
    EmptySecretError,
    SecretFileCorruptError,
    SecretsLockedError,
    WrongPassphraseError,
)
from mailkit.secret import Secret
from mailkit.secrets import (
    PASSPHRASE_ENV,
    FileSecretStore,
    accounts_with_secret,
    secret_key,
    unlock_secrets,
)

PASSPHRASE = "correct horse battery staple"
CANARY = "canary-Fi1e!Zq9#Vx2é"
KEY = secret_key("acme", "org")
WORKER = Path(__file__).with_name("_secrets_worker.py")


@pytest.fixture(autouse=True)
def _no_passphrase_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    file = tmp_path / "acme.secrets"
    yield file
    FileSecretStore(file).lock()  # the unlock cache is per process: leave none behind


def all_encodings(secret: str) -> list[bytes]:
    """Every form the canary could take on disk: the project's list plus UTF-16 and URL."""
    forms = encoded_forms(secret)
    forms += [secret.encode("utf-16-le"), secret.encode("utf-16-be")]
    forms += [urllib.parse.quote(secret).encode(), urllib.parse.quote_plus(secret).encode()]
    forms += [json.dumps(secret).encode(), json.dumps(secret, ensure_ascii=False).encode()]
    return forms


def assert_nowhere(folder: Path, secret: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, "no file to search: the test did not exercise the store"
    for file in files:
        data = file.read_bytes()
        for form in all_encodings(secret):
            assert form not in data, f"{secret!r} leaked into {file} as {form!r}"


def test_round_trip_owner_only_and_nothing_in_clear(path: Path) -> None:
    store = FileSecretStore(path, passphrase=PASSPHRASE)
    store.set(KEY, Secret(CANARY))
    store.set(secret_key("acme", "ann"), Secret("ann-pw"))
    assert FileSecretStore(path, passphrase=PASSPHRASE).get(KEY) == Secret(CANARY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.lock_path.stat().st_mode) == 0o600
    assert store.keys() == sorted([KEY, secret_key("acme", "ann")])
    assert store.kind == "file"
    assert str(path) in store.name
    assert_nowhere(path.parent, CANARY)
    assert_nowhere(path.parent, PASSPHRASE)
    # The header says what was used, so a later mailkit can read it; values stay encrypted.
    header = json.loads(path.read_bytes().split(b"\n")[1])
    assert header["format"] == 1
    assert header["cipher"] == "aes-256-gcm"
    assert header["kdf"]["name"] in ("argon2id", "scrypt")
    assert len(base64.b64decode(header["kdf"]["salt"])) == 16


def test_the_canary_search_can_fail(tmp_path: Path) -> None:
    """Control: every encoding the search looks for is found when it is there."""
    for form in all_encodings(CANARY):
        (tmp_path / "leak").write_bytes(b"xx" + form + b"yy")
        with pytest.raises(AssertionError, match="leaked"):
            assert_nowhere(tmp_path, CANARY)


def test_each_file_gets_its_own_salt_and_each_write_its_own_nonce(tmp_path: Path) -> None:
    def header(file: Path) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(file.read_bytes().split(b"\n")[1])
        return result

    one, two = tmp_path / "one.secrets", tmp_path / "two.secrets"
    for file in (one, two):
        FileSecretStore(file, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    first = header(one)
    assert first["kdf"]["salt"] != header(two)["kdf"]["salt"]
    FileSecretStore(one, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    assert header(one)["nonce"] != first["nonce"]
    assert header(one)["kdf"] == first["kdf"]  # the salt belongs to the file


def test_scrypt_files_are_read_too(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scrypt = {**secrets_module._SCRYPT, "n": 2**14}  # smaller only to keep the test quick
    monkeypatch.setattr(
        secrets_module,
        "_new_kdf",
        lambda: {**scrypt, "salt": base64.b64encode(os.urandom(16)).decode()},
    )
    FileSecretStore(path, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    monkeypatch.undo()
    assert json.loads(path.read_bytes().split(b"\n")[1])["kdf"]["name"] == "scrypt"
    assert FileSecretStore(path, passphrase=PASSPHRASE).get(KEY) == Secret(CANARY)
    with pytest.raises(WrongPassphraseError):
        FileSecretStore(path, passphrase="wrong").get(KEY)


def test_a_wrong_passphrase_is_named_and_changes_nothing(path: Path) -> None:
    FileSecretStore(path, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    before = path.read_bytes()
    wrong = FileSecretStore(path, passphrase="not the passphrase")
    with pytest.raises(WrongPassphraseError, match="passphrase does not open") as raised:
        wrong.get(KEY)
    with pytest.raises(WrongPassphraseError):
        wrong.set(secret_key("acme", "bob"), Secret("bob-pw"))
    with pytest.raises(WrongPassphraseError):
        wrong.delete(KEY)
    assert path.read_bytes() == before
    text = repr(raised.value) + str(raised.value)
    assert "not the passphrase" not in text
    assert CANARY not in text


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def _no_magic(path: Path) -> None:
    path.write_bytes(b"{}" + path.read_bytes())


def _garbled_header(path: Path) -> None:
    magic, _, rest = path.read_bytes().partition(b"\n")
    path.write_bytes(magic + b"\n{not json\n" + rest.partition(b"\n")[2])


def _absurd_kdf(path: Path) -> None:
    magic, _, rest = path.read_bytes().partition(b"\n")
    header_line, _, body = rest.partition(b"\n")
    header = json.loads(header_line)
    header["kdf"]["memory_cost" if "memory_cost" in header["kdf"] else "n"] = 2**40
    path.write_bytes(magic + b"\n" + json.dumps(header).encode() + b"\n" + body)


def _plaintext_json(path: Path) -> None:
    path.write_text(json.dumps({KEY: CANARY}), encoding="utf-8")


@pytest.mark.parametrize(
    "damage", [_flip_last_byte, _truncate, _no_magic, _garbled_header, _absurd_kdf, _plaintext_json]
)
def test_a_damaged_file_is_refused_and_never_overwritten(path: Path, damage: Any) -> None:
    FileSecretStore(path, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    damage(path)
    before = path.read_bytes()
    store = FileSecretStore(path, passphrase=PASSPHRASE)
    with pytest.raises(SecretFileCorruptError, match="left it untouched") as raised:
        store.get(KEY)
    with pytest.raises(SecretFileCorruptError):
        store.set(KEY, Secret("new"))
    with pytest.raises(SecretFileCorruptError):
        store.delete(KEY)
    assert path.read_bytes() == before
    assert CANARY not in str(raised.value)


def test_a_newer_format_asks_for_a_newer_mailkit(path: Path) -> None:
    FileSecretStore(path, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    magic, _, rest = path.read_bytes().partition(b"\n")
    header_line, _, body = rest.partition(b"\n")
    header = json.loads(header_line)
    header["format"] = 99
    path.write_bytes(magic + b"\n" + json.dumps(header).encode() + b"\n" + body)
    with pytest.raises(SecretFileCorruptError, match="newer mailkit"):
        FileSecretStore(path, passphrase=PASSPHRASE).get(KEY)


def test_locked_until_a_passphrase_comes_from_somewhere(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileSecretStore(path, prompt=True)  # stdin is not a terminal under pytest
    assert store.get(KEY) is None  # no file yet: nothing to read, no passphrase needed
    assert not store.is_unlocked
    with pytest.raises(SecretsLockedError, match=PASSPHRASE_ENV) as locked:
        store.set(KEY, Secret(CANARY))
    assert locked.value.path == str(path)
    assert not path.exists()
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    assert store.is_unlocked
    store.set(KEY, Secret(CANARY))
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(SecretsLockedError):
        FileSecretStore(path).get(KEY)


def test_a_wrong_passphrase_in_the_environment_says_where_it_came_from(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FileSecretStore(path, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    monkeypatch.setenv(PASSPHRASE_ENV, "stale")
    with pytest.raises(WrongPassphraseError, match=PASSPHRASE_ENV):
        FileSecretStore(path).get(KEY)


def test_unlock_once_per_process_then_every_store_object_is_open(path: Path) -> None:
    FileSecretStore(path, passphrase=PASSPHRASE).set(KEY, Secret(CANARY))
    with pytest.raises(WrongPassphraseError):
        unlock_secrets(path, "wrong")
    assert not FileSecretStore(path).is_unlocked  # a wrong passphrase is not remembered
    unlock_secrets(path, PASSPHRASE)
    again = FileSecretStore(path.parent / "." / path.name)  # the same file, spelled otherwise
    assert again.is_unlocked
    assert again.get(KEY) == Secret(CANARY)
    again.lock()
    with pytest.raises(SecretsLockedError):
        FileSecretStore(path).get(KEY)
    with pytest.raises(EmptySecretError):
        FileSecretStore(path).unlock("")


def test_unlocking_a_new_file_sets_its_passphrase(path: Path) -> None:
    store = FileSecretStore(path)
    store.unlock(PASSPHRASE)  # nothing to check yet
    store.set(KEY, Secret(CANARY))
    assert FileSecretStore(path, passphrase=PASSPHRASE).get(KEY) == Secret(CANARY)


def test_delete_and_set_password(path: Path) -> None:
    store = FileSecretStore(path, passphrase=PASSPHRASE)
    store.delete(KEY)  # nothing there: no file is created for it
    assert not path.exists()
    store.set_password(KEY, CANARY, CANARY)
    store.delete(KEY)
    assert store.get(KEY) is None
    assert store.keys() == []


def test_accounts_with_secret_reads_the_file_once(path: Path) -> None:
    store = FileSecretStore(path, passphrase=PASSPHRASE)
    store.set(secret_key("acme", "org"), Secret("a"))
    store.set(secret_key("acme", "ann"), Secret("b"))
    store.set(secret_key("other", "bob"), Secret("c"))
    found = accounts_with_secret(store, "acme", ["org", "ann", "bob", "bad:code"])
    assert found == {"org", "ann"}


def test_repr_and_messages_hold_no_secret(path: Path) -> None:
    store = FileSecretStore(path, passphrase=CANARY)
    store.set(KEY, Secret(CANARY))
    assert CANARY not in repr(store) + store.name


def test_two_processes_write_at_once_and_lose_nothing(path: Path) -> None:
    count = 15
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(path), side, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for side in ("left", "right")
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # start both at the same moment
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [w.returncode for w in workers] == [0, 0], results
    keys = FileSecretStore(path, passphrase=PASSPHRASE).keys()
    expected = {
        secret_key("acme", f"{side}-{i}") for side in ("left", "right") for i in range(count)
    }
    assert set(keys) == expected | {secret_key("acme", "shared")}
    assert not list(path.parent.glob(f".{path.name}.*.tmp"))  # no temporary file left behind


def test_new_files_use_scrypt_where_openssl_lacks_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    import cryptography.hazmat.primitives.kdf.argon2 as argon2
    from cryptography.exceptions import UnsupportedAlgorithm

    assert secrets_module._new_kdf()["name"] == "argon2id"  # this machine has it

    def unsupported(**_: object) -> None:
        raise UnsupportedAlgorithm("no Argon2 in this OpenSSL")

    monkeypatch.setattr(argon2, "Argon2id", unsupported)
    kdf = secrets_module._new_kdf()
    assert kdf["name"] == "scrypt"
    assert secrets_module._valid_kdf(kdf)
