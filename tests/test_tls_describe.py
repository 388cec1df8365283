"""The certificate a result shows reads the same whether ``ssl`` decoded it (a verified
handshake, no cryptography) or cryptography parsed the DER (a pinned, unverified one).

Each case is a real TLS handshake in memory (``ssl.MemoryBIO``, both ends in this process)
with a certificate made here: names with and without a common name or an organisation, several
of each, non-ASCII text, IPv4 and IPv6 addresses, no subject alternative names at all, dates
past 2038. The description from the verified handshake must equal the one cryptography gives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailkit.senders import tls
from mailkit.senders.tls import describe_certificate

UTC = dt.UTC


def _name(*pairs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


@dataclass
class Pki:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    der: bytes


def make_pki(
    subject: x509.Name,
    issuer: x509.Name,
    san: list[x509.GeneralName] | None,
    not_after: dt.datetime,
) -> Pki:
    """A CA named ``issuer`` and a leaf for ``subject`` it signed."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime(2000, 1, 1, tzinfo=UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(issuer)
        .issuer_name(issuer)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(dt.datetime(3000, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    leaf = builder.sign(ca_key, hashes.SHA256())
    return Pki(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        cert_pem=leaf.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        der=leaf.public_bytes(serialization.Encoding.DER),
    )


def handshake(pki: Pki, tmp_path: Path, *, verify: bool) -> ssl.SSLObject:
    """A finished TLS handshake in memory; the client end, verified against the CA or not."""
    (tmp_path / "leaf.pem").write_bytes(pki.cert_pem)
    (tmp_path / "leaf.key").write_bytes(pki.key_pem)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False  # the names vary by case; the chain is what counts
    if verify:
        client_context.load_verify_locations(cadata=pki.ca_pem.decode())
    else:
        client_context.verify_mode = ssl.CERT_NONE
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for side, end in (("client", client), ("server", server)):
            if done[side]:
                continue
            try:
                end.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
        server_in.write(to_server.read())
        to_client.write(server_out.read())
        if all(done.values()):
            return client
    raise AssertionError("the in-memory handshake did not finish")


FUTURE = dt.datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
Case = tuple[x509.Name, x509.Name, list[x509.GeneralName] | None, dt.datetime]
CASES: dict[str, Case] = {
    "cn and o": (
        _name(
            (NameOID.ORGANIZATION_NAME, "Example Org"), (NameOID.COMMON_NAME, "mail.example.com")
        ),
        _name((NameOID.COMMON_NAME, "Example CA"), (NameOID.ORGANIZATION_NAME, "Example Trust")),
        [x509.DNSName("mail.example.com"), x509.DNSName("smtp.example.com")],
        dt.datetime(2031, 5, 17, 8, 30, 1, tzinfo=UTC),
    ),
    "o only, addresses": (
        _name((NameOID.ORGANIZATION_NAME, "trustme v1")),
        _name((NameOID.ORGANIZATION_NAME, "trustme v1"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "CA")),
        [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.IPAddress(ipaddress.ip_address("2001:db8::a:0:0:1")),
        ],
        FUTURE,
    ),
    "several of each, non-ascii": (
        _name(
            (NameOID.COUNTRY_NAME, "DE"),
            (NameOID.ORGANIZATION_NAME, "Müller & Söhne GmbH"),
            (NameOID.ORGANIZATION_NAME, 'Zweite, "Firma"'),
            (NameOID.COMMON_NAME, "mail.bücher.example"),
            (NameOID.COMMON_NAME, "李娜.example"),
        ),
        _name((NameOID.COMMON_NAME, "Ünïcode CA=1+2")),
        [x509.DNSName("xn--bcher-kva.example"), x509.RFC822Name("postmaster@example.com")],
        dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
    ),
    "no alternative names": (
        _name((NameOID.COMMON_NAME, "legacy.example.net")),
        _name((NameOID.COMMON_NAME, "Legacy CA")),
        None,
        dt.datetime(2040, 2, 29, tzinfo=UTC),
    ),
    "subject with neither cn nor o": (
        _name((NameOID.COUNTRY_NAME, "FR"), (NameOID.LOCALITY_NAME, "Paris, 75001")),
        _name((NameOID.COMMON_NAME, "Odd CA")),
        [x509.DNSName("odd.example")],
        FUTURE,
    ),
    "issuer with neither cn nor o": (
        _name((NameOID.COMMON_NAME, "mail.example.org")),
        _name((NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit only"), (NameOID.COUNTRY_NAME, "SE")),
        [x509.DNSName("mail.example.org")],
        FUTURE,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_verified_description_equals_cryptographys(case: str, tmp_path: Path) -> None:
    subject, issuer, san, not_after = CASES[case]
    pki = make_pki(subject, issuer, san, not_after)
    fingerprint = hashlib.sha256(pki.der).hexdigest()
    verified = handshake(pki, tmp_path, verify=True)
    assert verified.getpeercert(), "a verified handshake decodes the certificate"
    assert verified.getpeercert(binary_form=True) == pki.der
    shown = describe_certificate(pki.der, verified, fingerprint, "CA file ca.pem")
    parsed = tls._from_der(pki.der)
    assert (shown.subject, shown.issuer, shown.san, shown.not_after) == parsed
    assert shown.not_after == not_after.replace(microsecond=0)
    assert shown.sha256 == fingerprint
    assert shown.version.startswith("TLSv1.")
    assert shown.cipher


@pytest.mark.parametrize("case", sorted(CASES))
def test_unverified_handshake_reads_the_der(case: str, tmp_path: Path) -> None:
    """A pinned send's handshake verifies nothing, so ``ssl`` decodes nothing: the same
    description comes from cryptography."""
    subject, issuer, san, not_after = CASES[case]
    pki = make_pki(subject, issuer, san, not_after)
    unverified = handshake(pki, tmp_path, verify=False)
    assert unverified.getpeercert() == {}
    shown = describe_certificate(pki.der, unverified, "pin", "pinned SHA-256")
    assert (shown.subject, shown.issuer, shown.san, shown.not_after) == tls._from_der(pki.der)


def test_the_described_names_read_as_before() -> None:
    """The words themselves (CN first, then O; DNS names, then addresses as RFC 5952 writes
    them), so that both paths agreeing cannot hide both changing."""
    subject, issuer, san, not_after = CASES["o only, addresses"]
    pki = make_pki(subject, issuer, san, not_after)
    assert tls._from_der(pki.der) == (
        "O=trustme v1",
        "O=trustme v1",
        ("localhost", "127.0.0.1", "::1", "2001:db8::a:0:0:1"),
        FUTURE,
    )
    subject, issuer, san, not_after = CASES["cn and o"]
    described = tls._from_der(make_pki(subject, issuer, san, not_after).der)
    assert described[:2] == (
        "CN=mail.example.com, O=Example Org",
        "CN=Example CA, O=Example Trust",
    )


def test_a_verified_description_loads_no_certificate_parser(tmp_path: Path) -> None:
    """In a fresh interpreter: a verified handshake is described without cryptography."""
    subject, issuer, san, not_after = CASES["cn and o"]
    pki = make_pki(subject, issuer, san, not_after)
    (tmp_path / "ca.pem").write_bytes(pki.ca_pem)
    (tmp_path / "leaf.pem").write_bytes(pki.cert_pem)
    (tmp_path / "leaf.key").write_bytes(pki.key_pem)
    script = f"""
import hashlib, ssl, sys
from pathlib import Path
from mailkit.senders.tls import describe_certificate
folder = Path({str(tmp_path)!r})
server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_context.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")
client_context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
client_context.check_hostname = False
a, b, c, d = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
client = client_context.wrap_bio(a, b)
server = server_context.wrap_bio(c, d, server_side=True)
for _ in range(20):
    for end in (client, server):
        try:
            end.do_handshake()
        except ssl.SSLWantReadError:
            pass
    c.write(b.read())
    a.write(d.read())
der = client.getpeercert(binary_form=True)
info = describe_certificate(der, client, hashlib.sha256(der).hexdigest(), "CA file")
print(info.subject)
print(sorted(m for m in sys.modules if m.startswith("cryptography")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["CN=mail.example.com, O=Example Org", "[]"]


@pytest.mark.parametrize(
    "text",
    [
        "Jan  1 00:00:00 3000 GMT",
        "Feb 29 12:34:56 2040 GMT",
        "Dec 31 23:59:59 1999 GMT",
        "Jun 15 08:05:09 2038 GMT",
    ],
)
def test_certificate_times_read_as_ssl_reads_them(text: str) -> None:
    assert tls._cert_time(text) == dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(text), UTC)


@pytest.mark.parametrize(
    "text",
    ["Jan  1 00:00:00 3000 UTC", "Foo  1 00:00:00 3000 GMT", "Jan  1 00:00 3000 GMT", "", "x"],
)
def test_other_time_forms_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a certificate time"):
        tls._cert_time(text)
