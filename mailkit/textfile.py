"""Decoding the text files people hand mailkit: users CSVs and legacy settings exports.

Such files come from spreadsheet programs and old Windows products, so their encoding is not
declared and a wrong guess is worse than a refusal: a UTF-16 file read as UTF-8 turns every
header into garbage and the user is told "no user_code column" about a file that has one. The
order, from the most to the least certain evidence:

1. a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) says it outright;
2. UTF-16 without a mark shows itself by its NUL bytes: text made mostly of ASCII has a NUL in
   every second byte, at odd offsets for little-endian and even ones for big-endian;
3. valid UTF-8 is taken as UTF-8 (text in another 8-bit encoding is rarely valid UTF-8);
4. anything else is read as Windows-1252, what such products wrote, and said so.

Every guess (steps 2 and 4) comes with a note for the user. Errors name the file and the byte,
never the content, which may hold a password.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Final

from mailkit.errors import ImportFileError

__all__ = ["DecodedText", "decode_text"]

_BOMS: Final = (
    # UTF-32 first: its little-endian mark begins with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)
#: Bytes looked at to recognise UTF-16 without a byte-order mark.
_SNIFF: Final = 4096
#: NULs tolerated in text with ``allow_nul`` (more, and above 1 % of the bytes: not text).
_STRAY_NULS: Final = 8
#: Share of NULs among the bytes at one parity that marks UTF-16 (ASCII text gives ~100 %).
_UTF16_NUL_SHARE: Final = 0.3


@dataclass(frozen=True)
class DecodedText:
    """A file's text, the encoding it was read with, and a note when that was a guess."""

    text: str
    encoding: str
    note: str = ""


def decode_text(data: bytes, source: str, *, allow_nul: bool = False) -> DecodedText:
    """Decode ``data`` (the bytes of ``source``, a file name for messages) as explained above.

    ``allow_nul`` keeps a stray NUL inside otherwise UTF-8 or Windows-1252 text (a damaged CSV
    cell that an audit should report rather than refuse); without it such a file is refused
    as not being text.
    """
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            return DecodedText(_strict(data[len(bom) :], codec, source, label, bom=True), label)
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        codec, label = utf16
        text = _strict(data, codec, source, label, bom=False)
        note = (
            f"{source} was read as {label} (it has no byte-order mark, but its NUL bytes show "
            "the encoding); if the text looks wrong, save the file again as UTF-8"
        )
        return DecodedText(text, label, note)
    if b"\x00" in data and not allow_nul:
        raise ImportFileError(
            f"{source} is not a text file (it contains NUL bytes and is not UTF-16 either); "
            "save or export it again as text in UTF-8"
        )
    if allow_nul and data.count(b"\x00") > max(_STRAY_NULS, len(data) // 100):
        raise ImportFileError(
            f"{source} is not a text file (it is full of NUL bytes and is not UTF-16 either); "
            "check that you picked the right file and save it as text in UTF-8"
        )
    try:
        return DecodedText(data.decode("utf-8"), "UTF-8")
    except UnicodeDecodeError:
        pass
    bad: int | None = None
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        bad = exc.start
    if bad is not None:
        raise ImportFileError(
            f"{source} is neither UTF-8 nor Windows-1252 text (byte {bad} is neither); save the "
            "file again as UTF-8"
        )
    note = (
        f"{source} was read as Windows-1252 because it is not UTF-8; check that names with "
        "accents came through correctly, or save the file as UTF-8"
    )
    return DecodedText(text, "Windows-1252", note)


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """``(codec, label)`` when the NUL pattern of ``data`` is that of UTF-16 text."""
    sample = data[:_SNIFF]
    if len(sample) < 2 or len(data) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_share = even.count(0) / len(even)
    odd_share = odd.count(0) / len(odd)
    if odd_share >= _UTF16_NUL_SHARE and even_share < odd_share / 4:
        return "utf-16-le", "UTF-16 LE"
    if even_share >= _UTF16_NUL_SHARE and odd_share < even_share / 4:
        return "utf-16-be", "UTF-16 BE"
    return None


def _strict(data: bytes, codec: str, source: str, label: str, *, bom: bool) -> str:
    """Decode or refuse; raised outside ``except`` so that no byte of the file rides along."""
    bad: int | None = None
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        bad = exc.start
    how = "starts with a byte-order mark for" if bom else "looks like"
    raise ImportFileError(
        f"{source} {how} {label} but is not valid {label} text (byte {bad}); save the file "
        "again as UTF-8"
    )
