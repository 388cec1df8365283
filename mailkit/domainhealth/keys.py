"""DKIM key records (RFC 6376 §3.6.1): present, parseable, and how strong.

dkimpy parses the tag list and the RSA key as its verifier would (``dkim.evaluate_pk``), and
the ``cryptography`` package loads the key once more, so "parseable" means what a receiver's
verifier means. Ed25519 keys (RFC 8463) are loaded by ``cryptography`` alone: dkimpy would need
PyNaCl for them.
"""

from __future__ import annotations

import base64
import binascii

from mailkit.domainhealth.records import DkimKey

__all__ = ["dkim_key", "looks_like_dkim"]


def looks_like_dkim(text: str) -> bool:
    """A TXT string that is meant as a DKIM key record (has a p= tag)."""
    return any(part.strip().lower().startswith("p=") for part in text.split(";"))


def dkim_key(selector: str, name: str, text: str, *, expected: bool = True) -> DkimKey:
    """Judge one key record: ok (with type and size), revoked, or invalid (with why)."""
    import dkim
    from dkim.util import InvalidTagValueList, parse_tag_value

    def invalid(detail: str) -> DkimKey:
        return DkimKey(selector, name, "invalid", expected=expected, detail=detail)

    try:
        tags = parse_tag_value(text.encode("utf-8"))
    except (InvalidTagValueList, UnicodeError) as exc:
        return invalid(f"not a tag=value list ({exc or type(exc).__name__})")
    version = tags.get(b"v")
    if version is not None and version != b"DKIM1":
        return invalid(f"v={version.decode(errors='replace')} (must be DKIM1)")
    key_type = tags.get(b"k", b"rsa").decode(errors="replace").lower()
    if b"p" not in tags:
        return invalid("the p= tag (the public key) is missing")
    data = b"".join(tags[b"p"].split())
    if not data:
        return DkimKey(
            selector, name, "revoked", expected=expected, key_type=key_type, detail="p= empty"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return invalid("p= is not base64")
    if key_type == "ed25519":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            return invalid(f"p= is not an Ed25519 public key ({exc})")
        return DkimKey(selector, name, "ok", expected=expected, key_type="ed25519", bits=256)
    if key_type != "rsa":
        return invalid(f"k={key_type} is not a DKIM key type (rsa or ed25519)")
    try:
        _key, bits, _ktag, _tlsrpt = dkim.evaluate_pk(name.encode(), text.encode())
    except dkim.KeyFormatError as exc:
        return invalid(f"p= is not an RSA public key ({exc})")
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        loaded = load_der_public_key(raw)
    except ValueError as exc:
        return invalid(f"p= is not an RSA public key ({exc})")
    if not isinstance(loaded, RSAPublicKey):
        return invalid("p= holds a key that is not RSA, but k= says rsa")
    detail = "" if bits >= 1024 else "shorter than 1024 bits: verifiers ignore it"
    status = "ok" if bits >= 1024 else "invalid"
    return DkimKey(
        selector, name, status, expected=expected, key_type="rsa", bits=int(bits), detail=detail
    )
