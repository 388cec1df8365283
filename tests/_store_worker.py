"""A separate process for test_store's concurrency test: many small transactions on one file.

Usage: ``python _store_worker.py PATH NAME COUNT``. Prints ``ready`` once the store is open and
waits for a line on stdin, so that the test can start every worker at the same moment.
"""

from __future__ import annotations

import sys

from mailkit.settings import UserSettings
from mailkit.store import Store


def main(path: str, name: str, count: int) -> None:
    with Store.open(path, create=True) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        for i in range(count):
            store.put_user(UserSettings(user_code=f"{name}-{i:03d}", display_name=name))
            # Both workers rewrite the same user and append to the same history.
            store.put_user(UserSettings(user_code="shared", display_name=f"{name} {i}"))
            store.record_test(user_code="shared", ok=True, detail=f"{name} {i}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
