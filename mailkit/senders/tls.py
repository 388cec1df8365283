"""The certificate side every sender shares: is the CA file usable, what did the handshake show.

SMTP and the HTTP APIs trust a server the same ways (the system store, a CA file, a pinned
SHA-256) and describe it the same way in a result, so both read the CA file and the peer
certificate here.
"""

from __future__ import annotations

import contextlib
import ssl
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

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


def _name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    parts = []
    for oid, label in ((NameOID.COMMON_NAME, "CN"), (NameOID.ORGANIZATION_NAME, "O")):
        parts += [f"{label}={a.value!s}" for a in name.get_attributes_for_oid(oid)]
    return ", ".join(parts) or name.rfc4514_string()


def describe_certificate(
    der: bytes, ssl_object: ssl.SSLObject | ssl.SSLSocket, fingerprint: str, trust: str
) -> TlsInfo:
    """The handshake's version and cipher and the peer certificate's names, dates and hash.

    cryptography is imported here, when a certificate is in hand: checking a CA file (the
    command line does, before any send) needs only ``ssl``.
    """
    from cryptography import x509

    cipher = ssl_object.cipher()
    subject = issuer = ""
    san: tuple[str, ...] = ()
    not_after: datetime | None = None
    if der:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = _name(cert.subject), _name(cert.issuer)
        not_after = cert.not_valid_after_utc
        with contextlib.suppress(x509.ExtensionNotFound):
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            san = tuple(
                [str(n) for n in names.get_values_for_type(x509.DNSName)]
                + [str(n) for n in names.get_values_for_type(x509.IPAddress)]
            )
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
