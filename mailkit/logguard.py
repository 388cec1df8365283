"""Keep tokens out of the logs of the libraries mailkit's OAuth code uses.

requests-oauthlib logs whole token responses at DEBUG, urllib3 logs request lines and MSAL logs
URLs and bodies, so a notebook that turns on ``logging.basicConfig(level=logging.DEBUG)`` to
chase a connection problem would print refresh tokens. These libraries belong to the whole
process, not to mailkit, so mailkit changes their logging only as far as its own calls need:

- :func:`install` attaches :class:`RedactingFilter` to each logger in :data:`GUARDED` and every
  existing child. It changes no level: another user of urllib3 in the same kernel keeps its
  DEBUG lines, with known token forms (``access_token=...``, ``"refresh_token": "..."``,
  ``Bearer ...``, JWTs, Google's ``ya29.`` and ``1//`` tokens) masked. Idempotent; it runs on
  import of :mod:`mailkit.oauth` and of the HTTP API senders, and again before each flow, so
  later loggers are covered too.
- :func:`guarded` wraps each of mailkit's own OAuth and HTTP calls: while one runs, DEBUG
  records of those loggers are not made (each top-level logger is raised to INFO when unset or
  lower) and the filter drops any that a child set to DEBUG still makes. When the last guarded
  call ends, the levels are put back as they were.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["GUARDED", "RedactingFilter", "guarded", "install", "scrub"]

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
    # Exchange Web Services: exchangelib logs each request with its headers, pyspnego each
    # NTLM message it makes or reads.
    "exchangelib",
    "spnego",
    "requests_ntlm",
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
# Authorization header values (NTLM and Negotiate blobs too).
_AUTH = re.compile(r"(?i)\b(Bearer|Basic|NTLM|Negotiate)\s+[A-Za-z0-9._~+/=-]+")
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
    """Scrub tokens from a record's message and traceback; drop DEBUG ones in a guarded call."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and _guards:
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

# How many guarded calls run now (any thread), and the levels to restore after the last one.
_guards = 0
_saved_levels: dict[str, int] = {}
_guard_lock = threading.Lock()


def _guarded(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in GUARDED)


def install() -> None:
    """Filter the loggers in :data:`GUARDED` and their children (safe to call many times)."""
    for root in GUARDED:
        logger = logging.getLogger(root)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for name, existing in list(logging.root.manager.loggerDict.items()):
        if not isinstance(existing, logging.Logger) or not _guarded(name):
            continue
        if _FILTER not in existing.filters:
            existing.addFilter(_FILTER)


@contextmanager
def guarded() -> Iterator[None]:
    """Around one of mailkit's OAuth or HTTP calls: no DEBUG record of :data:`GUARDED` is made.

    Re-entrant and thread-safe: the levels are raised by the first call to start and restored by
    the last to end, so the rest of the process gets its loggers back unchanged.
    """
    global _guards
    install()
    with _guard_lock:
        if _guards == 0:
            for root in GUARDED:
                logger = logging.getLogger(root)
                _saved_levels[root] = logger.level
                if logger.level == logging.NOTSET or logger.level < logging.INFO:
                    logger.setLevel(logging.INFO)
        _guards += 1
    try:
        yield
    finally:
        with _guard_lock:
            _guards -= 1
            if _guards == 0:
                for root, level in _saved_levels.items():
                    logging.getLogger(root).setLevel(level)
                _saved_levels.clear()
