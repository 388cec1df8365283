"""A local fake Exchange (EWS, Autodiscover, NTLM and Basic) for tests and the demo.

The real exchangelib talks to :class:`FakeExchange` as to an on-premises Exchange 2016/2019;
the failures a sender must diagnose are :data:`EWS_FAULTS` (and :data:`AUTODISCOVER_FAULTS`),
one table the demo's accounts and the tests share. See :mod:`mailkit.demo.ews.server`.
"""

from mailkit.demo.ews.scenarios import (
    AUTODISCOVER_FAULTS,
    EWS_FAULTS,
    AutodiscoverFault,
    EwsFault,
)
from mailkit.demo.ews.server import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    DOMAIN,
    NETBIOS_DOMAIN,
    EwsMessage,
    EwsRequest,
    FakeExchange,
)

__all__ = [
    "AUTODISCOVER_FAULTS",
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "DOMAIN",
    "EWS_FAULTS",
    "NETBIOS_DOMAIN",
    "AutodiscoverFault",
    "EwsFault",
    "EwsMessage",
    "EwsRequest",
    "FakeExchange",
]
