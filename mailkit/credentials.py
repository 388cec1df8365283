"""Recognising credentials inside ordinary text, so that reports and errors can hide them.

Secrets reach mailkit in places that are not marked as secret: a legacy host field holding
``user:password@host``, a database URL typed with a typo, a settings key named ``Kennwort``
or ``Pаssword`` (with a Cyrillic ``а``) that no table of known names lists. Three pure checks
cover that class of input:

- :func:`hide_credentials` masks the password of every ``user:password@`` (with or without a
  ``scheme://``, also in malformed URLs) and every ``password=…``-style parameter of a query
  string, a libpq/ODBC/JDBC connection string or a settings line;
- :func:`secret_name` tells whether a name means a secret, in many languages, compared by a
  *skeleton* (Unicode NFKC, case folding, accents removed, look-alike letters of other
  alphabets and look-alike digits mapped to Latin, as Unicode TR39 does for confusables), so
  that homoglyphs, fullwidth forms and spacing do not hide a password key;
- :func:`plainly_harmless` tells whether a value is obviously not a secret (a flag, a small
  number, a host, an address, a path, ordinary words). Whatever is not plainly harmless is
  treated as possibly secret: hiding a harmless value costs a look at the file, showing a
  password cannot be undone.
"""

# The look-alike letters below are the point of this module.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["MASK", "hide_credentials", "plainly_harmless", "secret_name", "skeleton"]

MASK: Final = "***"

#: Words that name a secret, in the languages of the people who configure business software.
#: Compared as skeletons and as substrings, so ``ProxyPassword`` and ``SMTPAuthString`` match.
SECRET_WORDS: Final = (
    # English and technical spellings
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "passphrase",
    "authstring",
    "authdata",
    "authcode",
    "authvalue",
    "authblob",
    "cookie",
    "signature key",
    # German, Dutch, Scandinavian, Finnish
    "kennwort",
    "passwort",
    "geheim",
    "wachtwoord",
    "losenord",
    "adgangskode",
    "passord",
    "salasana",
    # Romance languages
    "contrasena",
    "contrasenya",
    "clave",
    "mot de passe",
    "mdp",
    "senha",
    "parola",
    "parolachiave",
    # Central and Eastern Europe, Turkish
    "haslo",
    "heslo",
    "jelszo",
    "sifre",
    "geslo",
    "lozinka",
    "parool",
    "slaptazodis",
    "пароль",
    "лозинка",
    "κωδικος",
    "συνθηματικο",
    # Asian and Middle-Eastern languages
    "密码",
    "密碼",
    "口令",
    "パスワード",
    "暗証番号",
    "비밀번호",
    "암호",
    "mat khau",
    "kata sandi",
    "katalaluan",
    "รหัสผ่าน",
    "पासवर्ड",
    "كلمة المرور",
    "كلمة السر",
    "סיסמה",
    "رمز عبور",
)

#: Letters of other alphabets (and Latin variants NFKC leaves alone) that look like a Latin
#: letter, mapped to it. Capitals are listed where their lower case looks different.
_CONFUSABLES: Final = {
    # Cyrillic
    **dict.fromkeys("аА", "a"),
    **dict.fromkeys("вВьЬ", "b"),
    **dict.fromkeys("сС", "c"),
    **dict.fromkeys("ԁ", "d"),
    **dict.fromkeys("еЕёЁ", "e"),
    **dict.fromkeys("һНн", "h"),
    **dict.fromkeys("іІїЇ", "i"),
    **dict.fromkeys("јЈ", "j"),
    **dict.fromkeys("кК", "k"),
    **dict.fromkeys("ӏӀ", "l"),
    **dict.fromkeys("мМ", "m"),
    **dict.fromkeys("оО", "o"),
    **dict.fromkeys("рР", "p"),
    **dict.fromkeys("ԛ", "q"),
    **dict.fromkeys("ѕЅ", "s"),
    **dict.fromkeys("тТ", "t"),
    **dict.fromkeys("ԝԜ", "w"),
    **dict.fromkeys("хХ", "x"),
    **dict.fromkeys("уУ", "y"),
    # Greek
    **dict.fromkeys("αΑ", "a"),
    **dict.fromkeys("βΒ", "b"),
    **dict.fromkeys("εΕ", "e"),
    **dict.fromkeys("Η", "h"),
    **dict.fromkeys("ιΙ", "i"),
    **dict.fromkeys("κΚ", "k"),
    **dict.fromkeys("Μ", "m"),
    **dict.fromkeys("ηΝ", "n"),
    **dict.fromkeys("οΟσ", "o"),
    **dict.fromkeys("ρΡ", "p"),
    **dict.fromkeys("τΤ", "t"),
    **dict.fromkeys("υμ", "u"),
    **dict.fromkeys("ν", "v"),
    **dict.fromkeys("ω", "w"),
    **dict.fromkeys("χΧ", "x"),
    **dict.fromkeys("γΥ", "y"),
    **dict.fromkeys("Ζ", "z"),
    # Armenian
    **dict.fromkeys("օՕ", "o"),
    **dict.fromkeys("ոռ", "n"),
    **dict.fromkeys("ս", "u"),
    **dict.fromkeys("հ", "h"),
    **dict.fromkeys("ց", "g"),
    # Latin letters without a decomposition, and small capitals
    **dict.fromkeys("ıɪ", "i"),
    **dict.fromkeys("łʟ", "l"),
    **dict.fromkeys("øᴏ", "o"),
    **dict.fromkeys("đðᴅ", "d"),
    **dict.fromkeys("ɑᴀ", "a"),
    **dict.fromkeys("ɡɢ", "g"),
    **dict.fromkeys("ʀ", "r"),
    **dict.fromkeys("ʙ", "b"),
    **dict.fromkeys("ᴄ", "c"),
    **dict.fromkeys("ᴇ", "e"),
    **dict.fromkeys("ʜ", "h"),
    **dict.fromkeys("ᴊ", "j"),
    **dict.fromkeys("ᴋ", "k"),
    **dict.fromkeys("ᴍ", "m"),
    **dict.fromkeys("ɴ", "n"),
    **dict.fromkeys("ᴘ", "p"),
    **dict.fromkeys("ꜱ", "s"),
    **dict.fromkeys("ᴛ", "t"),
    **dict.fromkeys("ᴜ", "u"),
    **dict.fromkeys("ᴠ", "v"),
    **dict.fromkeys("ᴡ", "w"),
    **dict.fromkeys("ʏ", "y"),
    **dict.fromkeys("ᴢ", "z"),
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    # Digits and signs typed for letters ("P@ssw0rd")
    "0": "o",
    "1": "l",
    "|": "l",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "@": "a",
    "$": "s",
}
#: Letter pairs that read as one letter (TR39 maps "rn" to "m").
_PAIRS: Final = (("rn", "m"), ("vv", "w"))


def skeleton(text: str) -> str:
    """``text`` reduced to what it looks like: two names that look alike get the same skeleton.

    NFKC folds fullwidth and mathematical letters; case folding and dropping accents follow;
    look-alike letters and digits become Latin; spaces, punctuation and invisible characters
    (zero-width joiners, soft hyphens) are dropped.
    """
    folded = unicodedata.normalize("NFKC", text)
    letters: list[str] = []
    for raw in folded:
        mapped = _CONFUSABLES.get(raw)
        if mapped is None:
            lower = raw.casefold()
            mapped = "".join(_CONFUSABLES.get(ch, ch) for ch in lower)
        for ch in unicodedata.normalize("NFKD", mapped):
            if unicodedata.combining(ch):
                continue
            ch = _CONFUSABLES.get(ch, ch)
            if ch.isalnum():
                letters.append(ch)
    result = "".join(letters)
    for pair, single in _PAIRS:
        result = result.replace(pair, single)
    return result


_SECRET_SKELETONS: Final = tuple(dict.fromkeys(skeleton(word) for word in SECRET_WORDS))


def secret_name(name: str) -> bool:
    """Whether a setting or parameter name means a secret (see the module docstring)."""
    shape = skeleton(name)
    # Short words count only at the end of a name: "SMTP_PW", "ClientPIN", not "Upward".
    return any(word in shape for word in _SECRET_SKELETONS) or shape.endswith(("pw", "pin"))


# --------------------------------------------------------------------------- hiding in text

# ``user:password@`` anywhere: after a scheme, after a typo such as ``postgres//``, or alone.
# The password runs to the last ``@`` before white space, so an unescaped ``@`` in it is covered.
_USERINFO: Final = re.compile(
    r"(?P<user>(?<![^\s/\\'\"(<,;=])[^\s/\\@:'\"]{0,256}):(?!//)(?P<pw>[^\s@]*(?:@[^\s@]*)*)@"
)
# ``name=value`` (query strings, libpq, ODBC, JDBC, INI lines), ``name: value`` (a colon then
# a space: "Password: x", never a URL's "scheme:" or "host:port") and ``"name": "value"``.
_PARAM: Final = re.compile(
    r"(?<![^\s=&;?,'\"{}()\[\]:/])(?P<name>[^\s=&;?,'\"{}()\[\]:/]{1,256})(?P<sep>\s*=\s*|:\s+)"
    r"(?P<value>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|\{[^}]*\}?|[^\s&;,'\"]+)"
)
_QUOTED_NAME: Final = re.compile(
    r"(?P<name>\"[^\"]+\"|'[^']+')(?P<sep>\s*:\s*)(?P<value>\"(?:[^\"\\]|\\.)*\"?|'[^']*'?)"
)


def hide_credentials(text: str) -> str:
    """``text`` with the password of every ``user:password@`` and ``password=…`` masked.

    Works on well-formed and malformed URLs alike (``postgres//alice:pw@db/app``), on
    connection strings (``host=db password='a b'``, ``Server=x;Pwd=y``) and on JSON-ish text.
    The user name and the rest stay visible, so the message still says what was meant.
    """
    text = _USERINFO.sub(lambda m: f"{m['user']}:{MASK}@", text)
    text = _QUOTED_NAME.sub(_mask_param, text)
    return _PARAM.sub(_mask_param, text)


def _mask_param(match: re.Match[str]) -> str:
    name = match["name"]
    if not secret_name(name.strip("'\"")):
        return match[0]
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    if value.startswith("{"):
        return f"{name}{match['sep']}{{{MASK}}}"
    return f"{name}{match['sep']}{quote}{MASK}{quote}"


# --------------------------------------------------------------------------- harmless values

_FLAGS: Final = frozenset(
    {"true", "false", "yes", "no", "on", "off", "none", "null", "enabled", "disabled", "x", ""}
)
_NUMBER: Final = re.compile(r"[+-]?\d{1,5}(?:[.,]\d{1,3})?")
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST: Final = (
    rf"(?:{_LABEL}\.)+[A-Za-z]{{2,24}}\.?|\d{{1,3}}(?:\.\d{{1,3}}){{3}}|\[[0-9A-Fa-f:.]+\]"
)
_HOST_PORT: Final = re.compile(rf"(?:{_HOST}|localhost)(?::\d{{1,5}})?")
_ADDRESS: Final = re.compile(rf"[A-Za-z0-9._%+-]{{1,64}}@(?:{_HOST})")
_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_PATH: Final = re.compile(r"(?:[A-Za-z]:[\\/]|\\\\|/|~/|%\w+%[\\/])[^\t\r\n]*")
# Keys, tokens and hashes: a long run mixing upper case, lower case and digits, or long hex.
# Each alternative starts only where a run starts (the look-behind), so a long run costs one
# scan, not one per character.
_TOKEN_RUN: Final = re.compile(
    r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/=_-]*[a-z])(?=[A-Za-z0-9+/=_-]*[A-Z])"
    r"(?=[A-Za-z0-9+/=_-]*\d)[A-Za-z0-9+/=_-]{20,}|(?<![0-9a-fA-F])[0-9a-fA-F]{32,}"
)
# A word as people type words: lower case, Capitalised or ALL CAPS, maybe hyphenated or ending
# in punctuation; or a plain number. Random case and letters mixed with digits are not words.
_WORD: Final = re.compile(
    r"(?:[^\W\d_]+|\d+)(?:[-'’.&/][^\W\d_]+)*[.,:;!?)]?|\(?[^\W\d_]+[.,:;!?)]?|[-–&/+]"
)


def plainly_harmless(value: str) -> bool:
    """Whether ``value`` is obviously not a secret: see the module docstring.

    Decide on the output of :func:`hide_credentials`, so that a URL whose password is already
    masked counts as harmless.
    """
    text = value.strip()
    if _TOKEN_RUN.search(text):
        return False
    if text.casefold() in _FLAGS or _NUMBER.fullmatch(text):
        return True
    if any(p.fullmatch(text) for p in (_HOST_PORT, _ADDRESS, _URL, _PATH)):
        return True
    words = text.split()
    return bool(words) and all(_WORD.fullmatch(word) and _natural_case(word) for word in words)


def _natural_case(word: str) -> bool:
    letters = [ch for ch in word if ch.isalpha()]
    if not letters:
        return True
    rest = letters[1:]
    return all(ch.islower() for ch in rest) or all(ch.isupper() for ch in letters)
