"""The users table's canonical columns, shared by the resolver, the audit and the file I/O.

A module of its own so that the pure core (:mod:`mailkit.resolve`, :mod:`mailkit.audit.rules`)
knows the table's shape without importing :mod:`mailkit.users`, which reads and writes CSV and
Excel files. pandas loads only when a frame is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from mailkit.fields import OVERRIDE_FIELDS

if TYPE_CHECKING:
    import pandas as pd

    from mailkit.settings import UserSettings

__all__ = ["USERS_COLUMNS", "USERS_DTYPES", "users_to_frame"]

#: The canonical users table: identity, the override checkbox, the override fields.
USERS_COLUMNS: Final[tuple[str, ...]] = (
    "user_code",
    "display_name",
    "email",
    "override_enabled",
    *OVERRIDE_FIELDS,
)

#: pandas dtypes of the canonical table: nullable so that "not set" stays distinct from a value.
USERS_DTYPES: Final[Mapping[str, str]] = {
    column: "bool" if column == "override_enabled" else "Int64" if column == "port" else "string"
    for column in USERS_COLUMNS
}


def users_to_frame(users: Iterable[UserSettings]) -> pd.DataFrame:
    """The canonical table: enum values as plain strings, ``port`` as Int64, unset = NA."""
    import pandas as pd

    records = [user.model_dump(mode="json") for user in users]
    frame = pd.DataFrame.from_records(records, columns=list(USERS_COLUMNS))
    return frame.astype(dict(USERS_DTYPES))
