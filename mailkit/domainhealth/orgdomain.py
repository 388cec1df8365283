"""The organisational domain (RFC 7489 §3.2): where DMARC falls back, and what "aligned" means.

``mail.example.co.uk`` belongs to ``example.co.uk``: finding that needs the Public Suffix List,
which ``publicsuffixlist`` ships (and keeps current with its releases); it is loaded once, on
first use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

__all__ = ["org_domain"]


@lru_cache(maxsize=1)
def _list() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@lru_cache(maxsize=65536)
def org_domain(domain: str) -> str:
    """The registered domain of ``domain`` (itself when it is one, or a public suffix)."""
    name = domain.rstrip(".").lower()
    return _list().privatesuffix(name) or name
