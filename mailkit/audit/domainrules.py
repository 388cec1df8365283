"""Sender-domain findings for every user: whose From domain has them, under which rule.

Pure. Which domain and sending path each user has (:func:`user_queries`) is decided here once,
for both the lookups (:mod:`mailkit.audit.domains`, which checks each distinct path once) and
the join of their findings to the users (:func:`domain_pieces`, used by
:func:`mailkit.audit.audit`), so the two can never disagree about a user.

A user's path: the effective From domain, and the server that sends — the SMTP or EWS host
(a provider's host is checked by the provider's published include), Microsoft 365 for Graph,
Google for the Gmail API; a desktop client's path is unknown, so only the domain's own records
are judged for its users.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mailkit.domainhealth.records import DomainHealth, DomainQuery, normal_domain
from mailkit.fields import Mode

__all__ = ["domain_pieces", "user_queries", "user_query"]

_COLUMNS = ("user_code", "rule", "severity", "message", "fix")


def user_query(mode: str | None, host: str | None, from_address: str | None) -> DomainQuery | None:
    """The check one user's effective settings call for; None without a valid From domain."""
    from mailkit.providers import provider_by_id, provider_for_host

    if not isinstance(from_address, str) or "@" not in from_address:
        return None
    domain = normal_domain(from_address.rpartition("@")[2])
    if domain is None:
        return None
    kind = mode.strip().lower() if isinstance(mode, str) and mode.strip() else Mode.SMTP.value
    if kind == Mode.MICROSOFT_GRAPH.value:
        return DomainQuery(domain, None, "microsoft365")
    if kind == Mode.GMAIL_API.value:
        gmail = domain in provider_by_id("gmail").domains
        return DomainQuery(domain, None, "gmail" if gmail else "google_workspace")
    if kind not in (Mode.SMTP.value, Mode.EXCHANGE_EWS.value) or not isinstance(host, str):
        return DomainQuery(domain)
    server = host.strip().rstrip(".").lower()
    if not server:
        return DomainQuery(domain)
    provider = provider_for_host(server, domain)
    return DomainQuery(domain, server, provider.id if provider is not None else None)


def user_queries(frame: pd.DataFrame) -> tuple[np.ndarray[Any, Any], list[DomainQuery]]:
    """Per row of the effective ``frame``: an index into the distinct queries (-1: none).

    Decided once per distinct (mode, host, From) combination, not once per user.
    """
    keys = pd.DataFrame(
        {
            "mode": frame["mode"].to_numpy(dtype=object),
            "host": frame["host"].to_numpy(dtype=object),
            "from": frame["from_address"].to_numpy(dtype=object),
        }
    )  # positional index: codes[i] is row i
    groups = keys.groupby(["mode", "host", "from"], dropna=False, sort=False)
    codes = groups.ngroup().to_numpy()
    firsts = groups.head(1)
    distinct: dict[DomainQuery, int] = {}
    mapping = np.full(len(firsts), -1, dtype=np.int64)
    group_of_first = codes[firsts.index.to_numpy()]
    for group, mode, host, sender in zip(
        group_of_first, firsts["mode"], firsts["host"], firsts["from"], strict=True
    ):
        query = user_query(
            None if pd.isna(mode) else mode,
            None if pd.isna(host) else host,
            None if pd.isna(sender) else sender,
        )
        if query is not None:
            mapping[group] = distinct.setdefault(query, len(distinct))
    return mapping[codes] if len(codes) else codes.astype(np.int64), list(distinct)


def domain_pieces(
    frame: pd.DataFrame, checks: Mapping[DomainQuery, DomainHealth]
) -> list[pd.DataFrame]:
    """The users' domain findings, one frame per rule (the audit's columns).

    ``checks`` holds the health of each query :func:`user_queries` makes for ``frame``; a
    query missing from it (not checked) adds nothing.
    """
    codes, queries = user_queries(frame)
    rows = [
        (index, f.rule, f.severity, f.message, f.fix)
        for index, query in enumerate(queries)
        if (health := checks.get(query)) is not None
        for f in health.findings
    ]
    if not rows:
        return []
    found = pd.DataFrame(rows, columns=["_query", "rule", "severity", "message", "fix"])
    users = pd.DataFrame(
        {
            "user_code": frame["user_code"].astype("string").fillna("").astype(str).to_numpy(),
            "_query": codes,
        }
    )
    joined = users[codes >= 0].merge(found, on="_query", how="inner", sort=False)
    return [
        piece[list(_COLUMNS)].reset_index(drop=True)
        for _rule, piece in joined.groupby("rule", sort=False)
    ]
