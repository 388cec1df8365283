"""A profile's users to and from a users file (.csv / .xlsx), for the CLI, widgets and notebooks.

The store keeps settings and the users table (:mod:`mailkit.users`) reads and writes files; neither
knows the other, so each stays a leaf. These two functions compose them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mailkit.users import read_users, write_users

if TYPE_CHECKING:
    from mailkit.store import Store

__all__ = ["export_users", "import_users"]


def import_users(
    store: Store,
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, str] | None = None,
    replace: bool = False,
) -> int:
    """Add or update the users in a .csv / .xlsx file, all or nothing; returns how many.

    With ``replace``, users missing from the file are removed. Every row is checked against the
    org before anything is written, and the store checks again under its write lock in case the
    org changed during the import.
    """
    users = read_users(path, mapping=mapping, org=store.get_org())
    return store.put_imported_users(users, source=str(path), replace=replace)


def export_users(store: Store, path: str | os.PathLike[str]) -> int:
    """Write all users as the canonical users table (.csv UTF-8 or .xlsx); returns how many."""
    users = store.users()
    write_users(users, path)
    return len(users)
