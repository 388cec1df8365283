"""DNS zones for the domain-health tests: one domain per situation a rule must see.

Served by :class:`mailkit.demo.dns.DnsServer` (real DNS over UDP and TCP on loopback). Every
domain lives under ``.test`` (RFC 2606), which the Public Suffix List does not name, so each
``NAME.test`` is its own organisational domain. The DKIM keys are made fresh per run with
``cryptography``, so the parsers see real keys, not fixtures copied from somewhere.
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

#: The sending server most scenarios authorise (``smtp.healthy.test``).
SERVER_V4 = "192.0.2.25"
SERVER_V6 = "2001:db8::25"
#: Microsoft 365's published include, as the provider table names it, with a stand-in range.
M365_SPF = "v=spf1 ip4:40.92.0.0/15 ip6:2a01:111:f400::/48 -all"


@cache
def rsa_key_b64(bits: int = 2048) -> str:
    if bits < 1024:  # too weak to generate; a public key of that size is still a valid key
        modulus = (1 << (bits - 1)) | int.from_bytes(b"mailkit" * 10) % (1 << (bits - 2)) | 1
        key = rsa.RSAPublicNumbers(65537, modulus).public_key()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@cache
def ed25519_key_b64() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def txt(text: str) -> str:
    """A TXT record's data, split into the 255-byte strings DNS allows."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    chunks = [quoted[i : i + 200] for i in range(0, len(quoted), 200)] or [""]
    return "( " + " ".join(f'"{c}"' for c in chunks) + " )"


def _zone(origin: str, *lines: str) -> str:
    head = [
        "$TTL 300",
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300",
        f"@ IN NS ns1.{origin}",
        "ns1 IN A 127.0.0.1",
    ]
    return "\n".join([*head, *lines]) + "\n"


def _mail_domain(
    name: str,
    *,
    spf: str | None = "v=spf1 a:smtp.healthy.test -all",
    dmarc: str | None = "v=DMARC1; p=reject; rua=mailto:dmarc@{name}",
    extra: tuple[str, ...] = (),
    mx: str | None = "10 mx",
) -> tuple[str, str]:
    origin = f"{name}."
    lines = [f"mx IN A {SERVER_V4}"]
    if mx is not None:
        lines.append(f"@ IN MX {mx}")
    if spf is not None:
        lines.append(f"@ IN TXT {txt(spf)}")
    if dmarc is not None:
        lines.append(f"_dmarc IN TXT {txt(dmarc.format(name=name))}")
    lines += extra
    return origin, _zone(origin, *lines)


def zones() -> dict[str, str]:
    """origin → zone text, for every scenario."""
    rsa_key = rsa_key_b64()
    dkim_ok = txt(f"v=DKIM1; k=rsa; p={rsa_key}")
    # l1 → l2 → … → l6, each with an 'a' term: 6 includes + 6 a terms = 12 lookups.
    chain = (
        *(
            f"l{i} IN TXT {txt(f'v=spf1 a include:l{i + 1}.manylookups.test ~all')}"
            for i in range(1, 6)
        ),
        f"l6 IN TXT {txt('v=spf1 a -all')}",
        *(f"l{i} IN A 192.0.2.{i}" for i in range(1, 7)),
    )
    made = dict(
        [
            _mail_domain(
                "healthy.test",
                extra=(
                    f"smtp IN A {SERVER_V4}",
                    f"smtp IN AAAA {SERVER_V6}",
                    f"mail._domainkey IN TXT {dkim_ok}",
                    f"ed._domainkey IN TXT {txt('v=DKIM1; k=ed25519; p=' + ed25519_key_b64())}",
                    # A subdomain without its own DMARC record: the org domain's sp= applies.
                    "news IN MX 10 mx.healthy.test.",
                    f"news IN TXT {txt('v=spf1 a:smtp.healthy.test -all')}",
                ),
                dmarc="v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@{name}",
            ),
            _mail_domain("nospf.test", spf=None),
            _mail_domain("notauth.test", spf="v=spf1 ip4:192.0.2.99 -all"),
            _mail_domain(
                "manylookups.test",
                spf="v=spf1 ip4:192.0.2.25 include:l1.manylookups.test -all",
                extra=chain,
            ),
            _mail_domain("badip.test", spf="v=spf1 ip4:300.1.1.1 -all"),
            _mail_domain("badterm.test", spf="v=spf1 a:smtp.healthy.test allow:everyone -all"),
            _mail_domain("twospf.test", extra=(f"@ IN TXT {txt('v=spf1 -all')}",)),
            _mail_domain("badinclude.test", spf="v=spf1 include:nothing.badinclude.test -all"),
            _mail_domain("passall.test", spf="v=spf1 +all"),
            _mail_domain("softfail.test", spf="v=spf1 a:smtp.healthy.test ~all"),
            _mail_domain("redirect.test", spf="v=spf1 redirect=healthy.test"),
            _mail_domain(
                "macro.test",
                spf="v=spf1 exists:%{i}.allow.macro.test -all",
                extra=("192.0.2.25.allow IN A 127.0.0.2",),
            ),
            _mail_domain(
                "void.test",
                spf="v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test a:smtp.healthy.test -all",
            ),
            _mail_domain("nodmarc.test", dmarc=None),
            _mail_domain("dmarcnone.test", dmarc="v=DMARC1; p=none; rua=mailto:d@{name}"),
            _mail_domain(
                "dmarcquarantine.test",
                dmarc="v=DMARC1; p=quarantine; pct=50; rua=mailto:d@{name}",
            ),
            _mail_domain("dmarcbad.test", dmarc="v=DMARC1; p=block; rua=mailto:d@{name}"),
            _mail_domain("dmarcnorua.test", dmarc="v=DMARC1; p=reject"),
            _mail_domain("nullmx.test", mx="0 ."),
            _mail_domain("nomx.test", mx=None),
            _mail_domain(
                "m365.test",
                spf="v=spf1 include:spf.protection.outlook.com -all",
                extra=(
                    "selector1._domainkey IN CNAME "
                    "selector1-m365-test._domainkey.m365test.onmicrosoft.com.",
                    # Published, but DKIM was never turned on: the target has no key.
                    "selector2._domainkey IN CNAME "
                    "selector2-m365-test._domainkey.m365test.onmicrosoft.com.",
                ),
            ),
            _mail_domain("m365bare.test", spf="v=spf1 a:smtp.healthy.test -all"),
            _mail_domain(
                "dkimbad.test",
                extra=(
                    f"revoked._domainkey IN TXT {txt('v=DKIM1; k=rsa; p=')}",
                    f"garbled._domainkey IN TXT {txt('v=DKIM1; k=rsa; p=bm90IGEga2V5')}",
                    f"notb64._domainkey IN TXT {txt('v=DKIM1; p=***')}",
                    f"short._domainkey IN TXT {txt('v=DKIM1; p=' + rsa_key_b64(512))}",
                ),
            ),
            # Answers nothing at all: every lookup under it times out.
            _mail_domain("slow.test"),
            # The MX answers; the SPF's include does not (a temporary error, not a failure).
            _mail_domain(
                "halfslow.test", spf="v=spf1 include:spf.slow.test a:smtp.healthy.test -all"
            ),
        ]
    )
    made["outlook.com."] = _zone("outlook.com.", f"spf.protection IN TXT {txt(M365_SPF)}")
    made["onmicrosoft.com."] = _zone(
        "onmicrosoft.com.",
        f"selector1-m365-test._domainkey.m365test IN TXT {dkim_ok}",
    )
    return made


#: Names under these never answer.
SILENT = ("slow.test",)
