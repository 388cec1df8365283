"""Keep tokens out of the logs of the libraries mailkit's OAuth code uses.

requests-oauthlib logs whole token responses at DEBUG, urllib3 logs request lines and MSAL logs
URLs and bodies, so a notebook that turns on ``logging.basicConfig(level=logging.DEBUG)`` to
chase a connection problem would print refresh tokens. :func:`install` therefore, for the
loggers in :data:`GUARDED`:

- raises the level of each top-level logger to INFO when it is unset or lower, so DEBUG records
  of every child logger (also ones created later) are never made;
- attaches :class:`RedactingFilter` to that logger and every existing child, which drops DEBUG
  records that still get through (a child set to DEBUG explicitly) and scrubs known token forms
  (``access_token=...``, ``"refresh_token": "..."``, ``Bearer ...``, JWTs, Google's ``ya29.``
  and ``1//`` tokens) from the rest.

It is idempotent and runs on import of :mod:`mailkit.oauth` and again before each flow, so
loggers created after the first import are covered too.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["GUARDED", "RedactingFilter", "install", "scrub"]

#: The logger namespaces whose records may carry tokens, codes or client secrets.
GUARDED: Final = (
    "requests_oauthlib",
    "oauthlib",
    "msal",
    "urllib3",
    "requests",
    "google.auth",
    "google.oauth2",
    "google_auth_oauthlib",
)

_MASK: Final = "********"
_KEYS: Final = (
    r"access_token|refresh_token|id_token|code_verifier|client_secret|device_code|code"
    r"|client_assertion|assertion|token|password|client_info|user_code"
)
# key=value in query strings and form bodies.
_FORM = re.compile(rf"(?i)(?<![A-Za-z0-9_])({_KEYS})=([^&\s'\"]+)")
# "key": "value" / 'key': 'value' in JSON and Python reprs of dicts.
_JSON = re.compile(rf"(?i)([\"']({_KEYS})[\"']\s*:\s*)([\"'])([^\"']*)\3")
# Authorization header values.
_AUTH = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
# JWTs (Microsoft access tokens, id tokens) and Google's token shapes.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_GOOGLE = re.compile(r"\b(ya29\.|1//)[A-Za-z0-9._-]+")


def scrub(text: str) -> str:
    """Replace every known token form in ``text`` with a mask."""
    text = _FORM.sub(lambda m: f"{m.group(1)}={_MASK}", text)
    text = _JSON.sub(lambda m: f"{m.group(1)}{m.group(3)}{_MASK}{m.group(3)}", text)
    text = _AUTH.sub(lambda m: f"{m.group(1)} {_MASK}", text)
    text = _JWT.sub(_MASK, text)
    return _GOOGLE.sub(_MASK, text)


class RedactingFilter(logging.Filter):
    """Drop DEBUG records and scrub tokens from the message and traceback of the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return False
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: show its template, never its arguments
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


_FILTER: Final = RedactingFilter()


def _guarded(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in GUARDED)


def install() -> None:
    """Guard the loggers in :data:`GUARDED` and their children (safe to call many times)."""
    for root in GUARDED:
        logger = logging.getLogger(root)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for name, existing in list(logging.root.manager.loggerDict.items()):
        if not isinstance(existing, logging.Logger) or not _guarded(name):
            continue
        if _FILTER not in existing.filters:
            existing.addFilter(_FILTER)
