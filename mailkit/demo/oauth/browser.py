"""A stand-in for the user's browser on the fake's sign-in pages, for unattended runs.

:func:`visit` opens a sign-in URL, presses Approve (or Deny) on the consent page as a person
would, and hands the answer to the app's loopback receiver. It opens the local fake only.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import ssl
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode, urljoin, urlsplit


class SignInError(Exception):
    """The sign-in page answered with an error page instead of a redirect (as the real ones do
    for an unknown client or a redirect URI that is not registered: there is nowhere safe to
    send the error to)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"sign-in page answered {status}: {error}: {description}")
        self.status, self.error, self.description = status, error, description


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        #: Named submit buttons: (name, value) -> label (the consent page's Approve and Deny).
        self.buttons: dict[tuple[str, str], str] = {}
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("name") and values.get("type") == "hidden":
            self.fields[str(values["name"])] = values.get("value") or ""
        elif tag == "button" and values.get("name") and values.get("type", "submit") == "submit":
            self._button = (str(values["name"]), values.get("value") or "")
            self.buttons[self._button] = ""

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self.buttons[self._button] += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None


def _is_loopback_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _request(
    url: str, method: str, body: bytes | None, context: ssl.SSLContext | None, timeout: float
) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def _is_fake_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and _is_loopback_host(parts.hostname)


def visit(
    url: str,
    ca_file: Path | str,
    *,
    follow: bool = True,
    timeout: float = 10.0,
    press: Literal["approve", "deny"] = "approve",
) -> str:
    """Act as the user's browser on a sign-in URL of the fake; return the URL it ended at.

    It GETs ``url`` (the fake only: its plain-HTTP sign-in pages or its HTTPS port on loopback,
    trusting ``ca_file`` alone), presses ``press`` (Approve) on the consent page, then either
    follows the redirect or, for ``response_mode=form_post``, submits the page's form. When
    the app's redirect target is a loopback receiver that listens (``run_local_server``, a
    local redirect server) the request is delivered there, so the waiting app gets its answer;
    when nothing listens (the paste-back flow) or ``follow=False`` the URL is only returned.
    For a form post the returned URL carries the form's fields as its query, so a test can
    paste it back like a redirect. An error page raises :class:`SignInError`.
    """
    if not _is_fake_url(url):
        raise ValueError("visit() only opens the local fake provider (http or https on loopback)")
    context = ssl.create_default_context(cafile=str(ca_file))
    response, body = _request(url, "GET", None, context, timeout)
    pressed = False
    while True:
        if response.status in (301, 302, 303, 307):
            location = response.getheader("Location") or ""
            _deliver(location, "GET", None, follow=follow, timeout=timeout)
            return location
        if response.status >= 400:
            raise SignInError(
                response.status,
                response.getheader("X-Fake-OAuth-Error") or "unknown",
                response.getheader("X-Fake-OAuth-Description") or response.reason,
            )
        reader = _FormReader()
        reader.feed(body.decode("utf-8", "replace"))
        if not reader.action:
            raise SignInError(
                response.status, "no_redirect", "the page neither redirects nor posts"
            )
        if ("decision", press) in reader.buttons and not pressed:
            # The consent page: press the button, as a person would, on the fake's own origin.
            target = urljoin(url, reader.action)
            if not _is_fake_url(target):
                raise SignInError(response.status, "bad_form", "the consent form leaves the fake")
            encoded = urlencode({**reader.fields, "decision": press}).encode()
            response, body = _request(target, "POST", encoded, context, timeout)
            pressed = True
            continue
        encoded_fields = urlencode(reader.fields)
        _deliver(reader.action, "POST", encoded_fields.encode(), follow=follow, timeout=timeout)
        return reader.action + ("&" if "?" in reader.action else "?") + encoded_fields


def _deliver(url: str, method: str, body: bytes | None, *, follow: bool, timeout: float) -> None:
    """Hand the answer to the app's loopback receiver, if one listens; never leave the host."""
    parts = urlsplit(url)
    if not follow or parts.scheme != "http" or not _is_loopback_host(parts.hostname):
        return
    with contextlib.suppress(ConnectionRefusedError):
        _request(url, method, body, None, timeout)
