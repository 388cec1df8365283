"""The certificate side every sender shares: is the CA file usable, what did the handshake show.

SMTP and the HTTP APIs trust a server the same ways (the system store, a CA file, a pinned
SHA-256) and describe it the same way in a result, so both read the CA file and the peer
certificate here.
"""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailkit.result import TlsInfo

if TYPE_CHECKING:
    from cryptography import x509


def ca_file_problem(path: str) -> str | None:
    """Why ``path`` cannot serve as a CA file (a few words), or None when it loads.

    Read before a send starts, so a wrong path or a file that is not PEM is a configuration
    diagnosis naming the file, never an exception from the depths of ``ssl``.
    """
    if not path.strip():
        return "is empty (no path given)"
    try:
        if not Path(path).exists():
            return "does not exist"
        if Path(path).is_dir():
            return "is a folder, not a file"
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except PermissionError:
        return "cannot be read (permission denied)"
    except ssl.SSLError:
        return "holds no certificate in PEM format"
    except (OSError, ValueError) as exc:
        return f"cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__})"
    return None


#: The subject and issuer attributes a result shows, in this order, under OpenSSL's long names
#: (as ``getpeercert()`` gives them) and the short labels of RFC 4514.
_SHOWN_ATTRIBUTES = (("commonName", "CN"), ("organizationName", "O"))

#: What a certificate says about itself, as a result shows it: subject, issuer, names, expiry.
_Described = tuple[str, str, tuple[str, ...], datetime | None]


def _name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    parts = []
    for oid, label in ((NameOID.COMMON_NAME, "CN"), (NameOID.ORGANIZATION_NAME, "O")):
        parts += [f"{label}={a.value!s}" for a in name.get_attributes_for_oid(oid)]
    return ", ".join(parts) or name.rfc4514_string()


def _from_der(der: bytes) -> _Described:
    """The certificate read by cryptography: any certificate, verified or not."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    san: tuple[str, ...] = ()
    with contextlib.suppress(x509.ExtensionNotFound):
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = tuple(
            [str(n) for n in names.get_values_for_type(x509.DNSName)]
            + [str(n) for n in names.get_values_for_type(x509.IPAddress)]
        )
    return _name(cert.subject), _name(cert.issuer), san, cert.not_valid_after_utc


def _peer_name(rdns: Any) -> str | None:
    """``CN=…, O=…`` from ``getpeercert()``'s nested pairs; None when the name has neither
    (then only cryptography can write the RFC 4514 form :func:`_name` falls back to)."""
    pairs = [pair for rdn in rdns or () for pair in rdn]
    parts = [f"{label}={v}" for key, label in _SHOWN_ATTRIBUTES for k, v in pairs if k == key]
    return ", ".join(parts) or None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _cert_time(text: str) -> datetime:
    """``getpeercert()``'s ``Jan  1 00:00:00 3000 GMT`` as a UTC datetime.

    What ``ssl.cert_time_to_seconds`` reads, without ``time.strptime``, whose first call loads
    the locale machinery (about 7 ms of a test send). ValueError for any other form.
    """
    fields = text.replace(":", " ").split()
    if (
        len(fields) != 7
        or fields[0] not in _MONTHS
        or fields[6] != "GMT"
        or not all(n.isascii() and n.isdigit() for n in fields[1:6])
    ):
        raise ValueError(f"not a certificate time: {text!r}")
    day, hour, minute, second, year = (int(n) for n in fields[1:6])
    month = _MONTHS.index(fields[0]) + 1
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _from_peercert(cert: dict[str, Any]) -> _Described | None:
    """The same description from the dict ``ssl`` decoded during a verified handshake, so a
    verified send never loads cryptography's certificate parser (about 20 ms of start-up).
    None when the dict cannot give exactly what :func:`_from_der` would."""
    subject, issuer = _peer_name(cert.get("subject")), _peer_name(cert.get("issuer"))
    if subject is None or issuer is None:
        return None
    entries = cert.get("subjectAltName", ())
    try:
        # OpenSSL spells IPv6 in full and in capitals; the ipaddress module as RFC 5952 does.
        addresses = [str(ip_address(v)) for k, v in entries if k == "IP Address"]
        expires = cert.get("notAfter")
        not_after = _cert_time(expires) if isinstance(expires, str) else None
    except ValueError:  # a form this parser does not know: ask cryptography
        return None
    if not_after is None:
        return None
    dns = [v for k, v in entries if k == "DNS"]
    return subject, issuer, tuple(dns + addresses), not_after


def describe_certificate(
    der: bytes, ssl_object: ssl.SSLObject | ssl.SSLSocket, fingerprint: str, trust: str
) -> TlsInfo:
    """The handshake's version and cipher and the peer certificate's names, dates and hash.

    A verified handshake already decoded the certificate (``getpeercert()``): that is read.
    Only an unverified one (a pinned certificate, where that dict is empty) or an unusual
    certificate loads cryptography to parse the DER.
    """
    cipher = ssl_object.cipher()
    subject = issuer = ""
    san: tuple[str, ...] = ()
    not_after: datetime | None = None
    if der:
        subject, issuer, san, not_after = _from_peercert(
            ssl_object.getpeercert() or {}
        ) or _from_der(der)
    return TlsInfo(
        version=ssl_object.version() or "",
        cipher=cipher[0] if cipher else "",
        subject=subject,
        issuer=issuer,
        san=san,
        not_after=not_after,
        sha256=fingerprint,
        verified_by=trust,
    )
