"""Effective settings: the org's values overlaid by an enabled user override, field by field.

Each value carries its provenance — ``user`` (the user's override), ``org`` (the General
Settings) or ``default`` (neither set it) — because "why does Bob send through that server?"
is the first question of every support call. Bi-mode (org default Outlook, a few users on SMTP)
is nothing special: it is this rule applied to ``mode``.

:func:`effective` resolves one user; :func:`effective_frame` resolves thousands at once with
column operations, so an audit of a large organisation never loops over users in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from mailkit.columns import users_to_frame
from mailkit.fields import (
    ORG_SEND_DEFAULTS,
    AuthType,
    Edition,
    Mode,
    Priority,
    Provenance,
    Security,
    default_port,
)
from mailkit.providers import ews_url_for

if TYPE_CHECKING:  # numpy and pandas load when a frame is built: a test send needs neither
    import numpy as np
    import pandas as pd

    # Values of the models are read, never built here: a send from flags never loads pydantic.
    from mailkit.settings import OrgSettings, UserSettings

#: Values used when neither the user nor the org sets a field. ``port`` follows ``security``.
DEFAULTS: dict[str, Any] = {
    "mode": Mode.SMTP,
    "username": None,
    "from_address": None,
    "from_name": None,
    "host": None,
    "security": Security.AUTO,
    "auth": AuthType.AUTO,
    "priority": Priority.NORMAL,
}

#: Effective fields in display order. ``from_name`` comes from the user's display name.
EFFECTIVE_FIELDS: tuple[str, ...] = (
    "mode",
    "host",
    "port",
    "security",
    "auth",
    "username",
    "from_address",
    "from_name",
    "priority",
)

#: The fields the user code itself sets in the cloud edition: the account and the sender.
CLOUD_USER_FIELDS: tuple[str, ...] = ("username", "from_address")

#: The user attribute that overrides each effective field (``priority`` is org-wide).
_USER_SOURCE: dict[str, str] = {
    "mode": "mode",
    "host": "host",
    "port": "port",
    "security": "security",
    "auth": "auth",
    "username": "username",
    "from_address": "from_address",
    "from_name": "display_name",
}


@dataclass(frozen=True)
class Effective:
    """The settings a send for one user (or the org itself) really uses."""

    user_code: str | None
    mode: Mode
    host: str | None
    port: int
    security: Security
    auth: AuthType
    username: str | None
    from_address: str | None
    from_name: str | None
    priority: Priority
    provenance: Mapping[str, Provenance]
    #: The org's TLS trust, timeouts and each mode's endpoints (only the org sets them).
    ca_file: str | None
    tls_pin_sha256: str | None
    tls_min_version: str
    allow_plaintext_auth: bool
    connect_timeout: float
    command_timeout: float
    api_url: str | None
    ews_autodiscover: bool
    ews_autodiscover_url: str | None
    eml_folder: str | None
    #: Mode exchange_ews: the EWS endpoint — on the user's own server when their override sets
    #: one (as the audit's ews-exchange-online reads it), else the org's; the source is
    #: ``provenance["ews_url"]``.
    ews_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (enums as strings), for tables and JSON."""
        out: dict[str, Any] = {"user_code": self.user_code}
        for name in EFFECTIVE_FIELDS:
            value = getattr(self, name)
            out[name] = value.value if hasattr(value, "value") else value
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per field: value and where it came from — the support engineer's view."""
        import pandas as pd

        values = self.as_dict()
        return pd.DataFrame(
            {
                "field": list(EFFECTIVE_FIELDS),
                "value": [values[name] for name in EFFECTIVE_FIELDS],
                "source": [self.provenance[name].value for name in EFFECTIVE_FIELDS],
            }
        )


#: The org's own settings a send reads beyond the effective fields (:class:`Effective`).
ORG_ONLY_FIELDS: tuple[str, ...] = (
    "ca_file",
    "tls_pin_sha256",
    "tls_min_version",
    "allow_plaintext_auth",
    "connect_timeout",
    "command_timeout",
    "api_url",
    "ews_autodiscover",
    "ews_autodiscover_url",
    "eml_folder",
)


def effective(org: OrgSettings, user: UserSettings | None = None) -> Effective:
    """Resolve the settings for ``user`` (or for the org itself when ``user`` is None)."""
    return _resolve(org, user)


def effective_from_flags(values: Mapping[str, Any]) -> Effective:
    """The org's effective settings when flags alone set them (no profile, no user): ``values``
    as :func:`mailkit.fields.org_values_from_flags` read them, every other org setting at the
    model's default. The same resolution as :func:`effective`, without building a model."""
    return _resolve(_OrgValues({**ORG_SEND_DEFAULTS, **values}), None)


class _OrgValues:
    """Org values read by attribute, as :func:`_resolve` reads an ``OrgSettings``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


def _resolve(org: OrgSettings | _OrgValues, user: UserSettings | None) -> Effective:
    overriding = user is not None and user.override_enabled
    values: dict[str, Any] = {}
    provenance: dict[str, Provenance] = {}
    for name in EFFECTIVE_FIELDS:
        if name == "port":
            continue
        user_value = (
            getattr(user, _USER_SOURCE[name]) if overriding and name in _USER_SOURCE else None
        )
        org_value = getattr(org, name)
        if user_value is not None:
            values[name], provenance[name] = user_value, Provenance.USER
        elif org_value is not None:
            values[name], provenance[name] = org_value, Provenance.ORG
        else:
            values[name], provenance[name] = DEFAULTS[name], Provenance.DEFAULT
    user_port = user.port if overriding and user is not None else None
    if user_port is not None:
        values["port"], provenance["port"] = user_port, Provenance.USER
    elif org.port is not None:
        values["port"], provenance["port"] = org.port, Provenance.ORG
    else:
        values["port"], provenance["port"] = default_port(values["security"]), Provenance.DEFAULT
    if overriding and user is not None and user.host is not None:
        # A user on another Exchange server: EWS is at its standard path there.
        values["ews_url"], provenance["ews_url"] = ews_url_for(user.host), Provenance.USER
    elif org.ews_url is not None:
        values["ews_url"], provenance["ews_url"] = org.ews_url, Provenance.ORG
    else:
        values["ews_url"], provenance["ews_url"] = None, Provenance.DEFAULT
    if org.edition is Edition.CLOUD and user is not None:
        # The cloud edition's rule: the user code is the user's address, and it is both the
        # account that signs in and the From address, whatever else is set. So the password
        # is the user's own (its secret is keyed by the user code): never the org's.
        for name in CLOUD_USER_FIELDS:
            values[name], provenance[name] = user.user_code, Provenance.USER
    return Effective(
        user_code=user.user_code if user is not None else None,
        provenance=provenance,
        **{name: getattr(org, name) for name in ORG_ONLY_FIELDS},
        **values,
    )


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


@cache
def _source_categories() -> pd.CategoricalDtype:
    import pandas as pd

    return pd.CategoricalDtype([p.value for p in Provenance])


_SOURCE_CODE = {p.value: code for code, p in enumerate(Provenance)}


def strings_at(
    texts: np.ndarray[Any, Any], rows: np.ndarray[Any, Any], fallback: str | None = None
) -> Any:
    """A nullable string array: ``texts`` (all ``str``) at ``rows``, ``fallback`` elsewhere.

    Built from the distinct strings alone and spread with ``take``: pandas validates an object
    array holding many NA values several times slower than one of strings, and filling an
    object array with one value costs as much as the take.
    """
    import numpy as np
    import pandas as pd

    start = 0 if fallback is None else 1
    indexer = np.full(len(rows), start - 1, dtype=np.intp)
    indexer[rows] = np.arange(start, start + len(texts))
    if fallback is not None:
        texts = np.concatenate([np.array([fallback], dtype=object), texts])
    return pd.array(texts, dtype="string").take(indexer, allow_fill=fallback is None)


def _sources(use_user: np.ndarray[Any, np.dtype[np.bool_]], fallback: str) -> pd.Categorical:
    """Provenance per row, built from category codes: strings would be hashed back into codes."""
    import numpy as np
    import pandas as pd

    codes = np.where(use_user, _SOURCE_CODE[Provenance.USER.value], _SOURCE_CODE[fallback])
    return pd.Categorical.from_codes(codes.astype(np.int8), dtype=_source_categories())


def effective_frame(org: OrgSettings, users: pd.DataFrame | Iterable[UserSettings]) -> pd.DataFrame:
    """Every user's effective settings, one row per user, with a ``<field>_source`` column each.

    ``users`` is a users table in the canonical columns (see :mod:`mailkit.columns`) or user
    models. Work is done per column, never per user: a million users resolve in about a
    second. Sources are categorical to keep a million-row audit small in memory.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(users, pd.DataFrame):
        users = users_to_frame(users)
    n = len(users)
    overriding = users["override_enabled"].fillna(False).astype(bool).to_numpy()
    # Copied: the frame below takes its arrays as they are, and must not share the caller's.
    out: dict[str, Any] = {"user_code": users["user_code"].astype("string").array.copy()}

    def resolve(name: str, column: str | None, fallback: Any, fallback_source: str) -> None:
        if column is not None and column in users:
            user_values = users[column]
            use_user = overriding & user_values.notna().to_numpy()
        else:
            user_values = pd.Series(pd.NA, index=users.index, dtype="object")
            use_user = np.zeros(n, dtype=bool)
        if name == "port":
            fill = pd.Series(fallback, index=users.index, dtype="Int64")
            values: Any = fill.mask(
                use_user, pd.to_numeric(user_values, errors="coerce").astype("Int64")
            ).array
        else:
            # Array operations on the object values: a string Series mask costs several passes.
            text = user_values.astype("string").to_numpy(dtype=object)
            values = strings_at(text[use_user], use_user, fallback)
        out[name] = values
        out[f"{name}_source"] = _sources(use_user, fallback_source)

    for name in EFFECTIVE_FIELDS:
        if name == "port":
            continue
        org_value = getattr(org, name)
        if org_value is not None:
            fallback, fallback_source = _plain(org_value), Provenance.ORG.value
        else:
            fallback, fallback_source = _plain(DEFAULTS[name]), Provenance.DEFAULT.value
        resolve(name, _USER_SOURCE.get(name), fallback, fallback_source)

    if org.port is not None:
        port_fallback: Any = org.port
        port_source = Provenance.ORG.value
    else:
        implicit = (out["security"] == Security.IMPLICIT_TLS.value).fillna(False).to_numpy()
        port_fallback = np.where(
            implicit, default_port(Security.IMPLICIT_TLS), default_port(Security.STARTTLS)
        )
        port_source = Provenance.DEFAULT.value
    resolve("port", "port", port_fallback, port_source)

    if org.edition is Edition.CLOUD:
        for name in CLOUD_USER_FIELDS:
            out[name] = out["user_code"].copy()
            out[f"{name}_source"] = _sources(np.ones(n, dtype=bool), Provenance.USER.value)

    columns = ["user_code"]
    for name in EFFECTIVE_FIELDS:
        columns += [name, f"{name}_source"]
    # The columns are new arrays: no need for pandas to copy them again.
    return pd.DataFrame(
        {column: out[column] for column in columns}, index=pd.RangeIndex(n), copy=False
    )
