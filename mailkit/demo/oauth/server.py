"""The fake provider's HTTP side: one thread per connection, TLS negotiated in that thread.

Two listeners share this code: the HTTPS port (tokens and APIs) and the plain-HTTP loopback port
for the pages a browser opens. A client refusing the demo certificate is one console line
(:func:`tls_failure_line`), never a traceback. :class:`TwoPortService` starts and stops the two
listeners for the fake OAuth provider and the fake Exchange alike.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

_log = logging.getLogger("mailkit.demo.oauth")

#: The only address the fakes listen on.
BIND_ADDRESS = "127.0.0.1"

#: What answers a request: (method, target, lower-case headers, body, TLS, browser port?).
Answer = Callable[..., "_Reply"]


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait, then close the connection without answering (None: answer).
    hang_up_after: float | None = None

    @classmethod
    def json(cls, status: int, data: object, headers: Mapping[str, str] | None = None) -> _Reply:
        return cls(status, json.dumps(data).encode(), headers=dict(headers or {}))

    @classmethod
    def page(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> _Reply:
        return cls(status, text.encode(), "text/html; charset=utf-8", dict(headers or {}))


#: OpenSSL's reasons for a handshake the client ended because it did not accept our certificate.
_CERTIFICATE_REFUSED = (
    "UNKNOWN_CA",
    "CERTIFICATE_UNKNOWN",
    "BAD_CERTIFICATE",
    "UNSUPPORTED_CERTIFICATE",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_REVOKED",
)


def tls_failure_line(where: str, peer: object, error: BaseException) -> str:
    """One console line for a failed TLS handshake on the demo (no traceback: a client that
    does not trust the demo CA is an everyday event, not a bug of the server)."""
    reason = getattr(error, "reason", None) or type(error).__name__
    source = ""
    if isinstance(peer, tuple) and len(peer) >= 2:
        source = f" from {peer[0]}:{peer[1]}"
    text = str(reason).replace("_", " ").lower()
    if any(marker in str(reason).upper() for marker in _CERTIFICATE_REFUSED):
        return (
            f"{where}: a client{source} refused the demo certificate ({text}); it must trust "
            "the demo CA (ca.pem in the demo folder)"
        )
    return f"{where}: TLS handshake with a client{source} failed ({text})"


class _HandshakeFailed(Exception):
    """The TLS handshake of a connection failed; it has been reported."""


class _Server(ThreadingHTTPServer):
    """One thread per connection; TLS is negotiated in that thread, not in the accept loop,
    so one slow or broken client cannot hold up the others."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(
        self, address: tuple[str, int], answer: Answer, context: ssl.SSLContext | None
    ) -> None:
        self.answer = answer
        #: None: the plain-HTTP port for browser pages (see FakeOAuthProvider.browser_url).
        self.context = context
        self.tls = context is not None
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.context is None:
            return sock, address
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _HandshakeFailed):
            return  # said in one line already
        # A client that hangs up mid-request is normal (and a test's business, not stderr's).
        _log.debug("fake OAuth: connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mailkit-fake-oauth"
    sys_version = ""
    timeout = 30
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(10)
        try:
            if self.server.tls:
                self.request.do_handshake()
        except ssl.SSLError as exc:
            where = f"HTTPS port {self.server.server_port}"
            _log.info(tls_failure_line(where, self.client_address, exc))
            raise _HandshakeFailed from None
        with self.server.connections_lock:
            self.server.connections.add(self.request)
        super().setup()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines carry codes and tokens in their query strings."""

    def _tls(self) -> tuple[str, str] | None:
        if not isinstance(self.request, ssl.SSLSocket):
            return None
        version, cipher = self.request.version(), self.request.cipher()
        return (version, cipher[0]) if version and cipher else None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = self.server.answer(
                self.command, self.path, headers, body, self._tls(), browser=not self.server.tls
            )
        except Exception:
            _log.exception("fake OAuth: %s %s failed", self.command, urlsplit(self.path).path)
            reply = _Reply.json(500, {"error": "server_error", "error_description": "fake bug"})
        if reply.hang_up_after is not None:
            self._hang_up(reply.hang_up_after)
            return
        self.send_response(reply.status)
        if reply.body or reply.status not in (202, 204, 302):
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def _hang_up(self, after: float) -> None:
        """Close without a word after ``after`` s (sooner if the client gives up first)."""
        self.close_connection = True
        self.request.settimeout(after)
        with contextlib.suppress(OSError):  # a timeout, or the client closing first
            self.request.recv(1)
        with contextlib.suppress(OSError):
            self.request.shutdown(socket.SHUT_RDWR)

    do_GET = _answer
    do_POST = _answer


class TwoPortService:
    """A fake service on two loopback ports answered in background threads: HTTPS with
    ``context`` (its API) and plain HTTP (a browser's pages, Autodiscover's redirect step).
    A context manager; ``start()`` / ``stop()`` too. Subclasses answer in :meth:`_handle`."""

    #: How errors and thread names call the service ("fake Exchange").
    service_name: ClassVar[str]
    #: Thread names: ``{thread_prefix}-https`` and ``{thread_prefix}-{plain_name}``.
    thread_prefix: ClassVar[str]
    plain_name: ClassVar[str] = "http"
    handler_class: ClassVar[type[_Handler]] = _Handler

    def __init__(
        self, context: ssl.SSLContext, ca_file: Path | str, *, port: int, plain_port: int
    ) -> None:
        self.context = context
        self.ca_file = Path(ca_file)
        self._port = port
        self._plain_port = plain_port
        self._lock = threading.RLock()
        self._httpd: _Server | None = None
        self._plain: _Server | None = None
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_files(
        cls, cert_file: Path | str, key_file: Path | str, ca_file: Path | str, **options: Any
    ) -> Self:
        """From a PEM certificate chain and key on disk (e.g. a test session's TLS material)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert_file), str(key_file))
        return cls(context, ca_file, **options)

    @classmethod
    def with_demo_ca(cls, directory: Path | str, **options: Any) -> Self:
        """With a fresh local CA; its certificate is written to ``directory/ca.pem`` (the key
        stays in memory, so nothing on disk can issue certificates)."""
        import trustme

        authority = trustme.CA(organization_name="mailkit demo CA")
        leaf = authority.issue_cert("localhost", BIND_ADDRESS, organization_name="mailkit demo")
        ca_file = Path(directory) / "ca.pem"
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_bytes(authority.cert_pem.bytes())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        leaf.configure_cert(context)
        return cls(context, ca_file, **options)

    def _handle(self, *args: Any, **kwargs: Any) -> _Reply:
        """The answer to one request (see :data:`Answer`)."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def _listening(self, server: _Server | None) -> int:
        if server is None:
            raise RuntimeError(f"the {self.service_name} is not running; call start() first")
        return int(server.server_address[1])

    @property
    def port(self) -> int:
        """The HTTPS port."""
        return self._listening(self._httpd)

    @property
    def plain_port(self) -> int:
        """The plain-HTTP port."""
        return self._listening(self._plain)

    @property
    def base_url(self) -> str:
        """The HTTPS root, e.g. ``https://127.0.0.1:50123``."""
        return f"https://{BIND_ADDRESS}:{self.port}"

    def start(self) -> Self:
        """Listen on 127.0.0.1 (never another address) and answer in background threads."""
        with self._lock:
            if self._httpd is None:
                httpd = _Server((BIND_ADDRESS, self._port), self._handle, self.context)
                try:
                    plain = _Server((BIND_ADDRESS, self._plain_port), self._handle, None)
                except BaseException:
                    httpd.server_close()
                    raise
                self._threads = []
                for server, name in ((httpd, "https"), (plain, self.plain_name)):
                    server.RequestHandlerClass = self.handler_class
                    thread = threading.Thread(
                        target=server.serve_forever,
                        kwargs={"poll_interval": 0.2},
                        name=f"{self.thread_prefix}-{name}",
                        daemon=True,
                    )
                    self._threads.append(thread)
                self._httpd, self._plain = httpd, plain
                for thread in self._threads:
                    thread.start()
        return self

    def stop(self) -> None:
        """Close both ports and every open connection."""
        with self._lock:
            servers = [s for s in (self._httpd, self._plain) if s is not None]
            threads, self._threads = self._threads, []
            self._httpd = self._plain = None
        for server in servers:
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in threads:
            thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._httpd is not None else "stopped"
        return f"<{type(self).__name__} {where}>"
