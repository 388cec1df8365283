"""``audit --check-domains``: every distinct sending domain of the users, checked over DNS once.

Ten thousand users share perhaps a thousand From domains and a few servers. Each distinct
(domain, sending path) — decided by :func:`mailkit.audit.domainrules.user_queries`, the same
function that later joins the findings to the users — is checked once, many at a time
(``concurrency``), through one :class:`~mailkit.dnslookup.DnsClient` whose cache makes each
DNS record one query however many paths need it, each with a timeout. Pass the result to
:func:`mailkit.audit.audit` as ``domains=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from mailkit.audit.domainrules import user_queries
from mailkit.audit.rules import effective_settings
from mailkit.domainhealth.check import API_NAMES, check_domains, dns_client
from mailkit.domainhealth.records import DomainHealth, DomainQuery
from mailkit.runner import run_sync
from mailkit.settings import OrgSettings

if TYPE_CHECKING:
    from mailkit.dnslookup import DnsClient

__all__ = ["DEFAULT_CONCURRENCY", "check_user_domains", "check_user_domains_async"]

#: Domains checked at once. Each check asks a handful of records; 64 keeps a resolver busy
#: without flooding it (the DNS client shares identical lookups anyway).
DEFAULT_CONCURRENCY = 64


async def check_user_domains_async(
    org: OrgSettings,
    users: pd.DataFrame,
    *,
    dns_server: str | None = None,
    timeout: float = 3.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    client: DnsClient | None = None,
    names: Mapping[str, str] = API_NAMES,
) -> dict[DomainQuery, DomainHealth]:
    """The health of every distinct sending path of ``users`` (see the module docstring)."""
    if client is None:
        client = dns_client(dns_server, timeout, names)
    _codes, queries = user_queries(effective_settings(org, users))
    return await check_domains(queries, client, concurrency=concurrency)


def check_user_domains(
    org: OrgSettings,
    users: pd.DataFrame,
    *,
    dns_server: str | None = None,
    timeout: float = 3.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    names: Mapping[str, str] = API_NAMES,
) -> dict[DomainQuery, DomainHealth]:
    """:func:`check_user_domains_async` from blocking code (a script, a notebook cell)."""
    return run_sync(
        check_user_domains_async(
            org,
            users,
            dns_server=dns_server,
            timeout=timeout,
            concurrency=concurrency,
            names=names,
        )
    )
