"""Sender-domain health: does the From domain's DNS let its mail through (SPF, DMARC, DKIM, MX)?

A test send that ends in "250 queued" says nothing about the receiver's verdict: a message
from a domain whose SPF does not cover the sending server, or whose DMARC policy rejects what
fails, is junked or bounced later. This package answers that from DNS alone.

- :mod:`~mailkit.domainhealth.records` (pure): the report types, and SPF and DMARC parsing;
- :mod:`~mailkit.domainhealth.spf` (pure): RFC 7208 evaluation over an injected lookup;
- :mod:`~mailkit.domainhealth.rules` (pure): findings with rule ids, severities and fixes;
- :mod:`~mailkit.domainhealth.keys` and :mod:`~mailkit.domainhealth.orgdomain`: DKIM key
  parsing (dkimpy, cryptography) and the organisational domain (the Public Suffix List);
- :mod:`~mailkit.domainhealth.check`: the lookups through :class:`mailkit.dnslookup.DnsClient`.

Nothing is imported here: ``mailkit.domain`` loads :mod:`~mailkit.domainhealth.check`.
"""
