"""The demo domain's DNS zone: one text, built from the running demo's ports and address.

The demo server answers DNS for its domain (:data:`DEMO_DOMAIN`, the domain of the demo
accounts) on loopback, so that ``mailkit discover demo@example.com --dns-server ADDRESS`` finds
the demo's submission ports the way it finds a real domain's: RFC 6186 / RFC 8314 SRV records
naming ``localhost`` (the name on the demo certificate) and the two ports. Domain health reads
the same zone (SPF, DMARC, DKIM records are added below, in :func:`demo_zone`, by that feature).

The zone is text in BIND's master-file format, because that is what
:class:`mailkit.demo.dns.DnsServer` serves and what an administrator recognises.
"""

from __future__ import annotations

#: The demo accounts' domain (``demo@example.com``); the zone is authoritative for it.
DEMO_DOMAIN = "example.com"
#: The name the demo's certificate is issued for, which every SRV/MX target points at.
DEMO_TARGET = "localhost"
#: The demo domain's DKIM selector and public key (Ed25519, RFC 8463). The demo does not sign,
#: so no private key exists anywhere: the record is there for the domain-health check to find.
DEMO_DKIM_SELECTOR = "mail"
DEMO_DKIM_KEY = "eEkjevhWmyP1e2VO42/D4Lb4sSub+8ffI2UFtQkG/Mk="


def _spf_terms(address: str) -> str:
    """The SPF terms that authorise the demo's address (both loopbacks for 127.0.0.1, since
    the settings name ``localhost``)."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    terms = [f"ip{ip.version}:{ip}"]
    if ip.is_loopback and ip.version == 4:
        terms.append("ip6:::1")
    return " ".join(terms)


def demo_zone(
    *,
    starttls_port: int,
    tls_port: int,
    address: str = "127.0.0.1",
    domain: str = DEMO_DOMAIN,
) -> dict[str, str]:
    """``{origin: zone text}`` for :class:`~mailkit.demo.dns.DnsServer`, for a running demo.

    ``starttls_port`` and ``tls_port`` are the demo's submission ports; ``address`` is where
    the demo listens (the A records of the domain's own names point there).
    """
    origin = domain.rstrip(".") + "."
    target = DEMO_TARGET + "."
    records = [
        "$TTL 300",
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300",
        f"@ IN NS ns1.{origin}",
        f"ns1 IN A {address}",
        # Where mail for the domain is delivered: the demo server itself.
        f"@ IN MX 10 {target}",
        # RFC 6186: submission with STARTTLS; RFC 8314: submission over implicit TLS.
        f"_submission._tcp IN SRV 0 1 {starttls_port} {target}",
        f"_submissions._tcp IN SRV 0 1 {tls_port} {target}",
        # Mail is neither received nor read over these for the demo: "." = not offered.
        "_imap._tcp IN SRV 0 0 0 .",
        "_pop3._tcp IN SRV 0 0 0 .",
        # --- domain health (SPF, DMARC, DKIM) records go below this line.
        # SPF: the demo server is the domain's only sender; everything else fails.
        f'@ IN TXT "v=spf1 {_spf_terms(address)} -all"',
        # DMARC: failing mail goes to spam, and aggregate reports to the domain's own mailbox.
        f'_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{domain}"',
        f'{DEMO_DKIM_SELECTOR}._domainkey IN TXT "v=DKIM1; k=ed25519; p={DEMO_DKIM_KEY}"',
    ]
    return {origin: "\n".join(records) + "\n"}
