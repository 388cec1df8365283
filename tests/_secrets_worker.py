"""A separate process for the encrypted store's concurrency test: many writes to one file.

Usage: ``python _secrets_worker.py PATH NAME COUNT`` with ``MAILKIT_SECRETS_PASSPHRASE`` set.
Prints ``ready`` once the store is open and waits for a line on stdin, so that the test can
start both workers at the same moment.
"""

from __future__ import annotations

import sys

from mailkit.secret import Secret
from mailkit.secrets import FileSecretStore, secret_key


def main(path: str, name: str, count: int) -> None:
    store = FileSecretStore(path)
    store.get(secret_key("acme", "org"))  # derive the key (if the file exists) before the race
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        store.set(secret_key("acme", f"{name}-{i}"), Secret(f"{name}-password-{i}"))
        # Both workers rewrite the same key as well.
        store.set(secret_key("acme", "shared"), Secret(f"{name} {i}"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
