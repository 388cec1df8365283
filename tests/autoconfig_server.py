"""A local HTTPS server standing in for autoconfig, the ISPDB and Autodiscover hosts.

One server on ``127.0.0.1`` with a trustme certificate for every name it plays
(``autoconfig.x.test``, ``x.test``, ``autodiscover.x.test``, ``127.0.0.1``). A test zone's A
records point those names at 127.0.0.1, and discovery's ``https_port`` sends port-443 URLs to
this server's ephemeral port; it answers by the ``Host`` header and path, as virtual hosts do.
Routes are ``(host, path) -> Route``; a path ending in ``*`` matches by prefix. Every request
is recorded (host, path with query), so a test can see what was asked and what was not.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme


@dataclass(frozen=True)
class Route:
    """What one (host, path) answers: a status, a body, headers (``Location`` for a redirect)."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/xml"


class AutoconfigServer:
    """The HTTPS server; ``start()``/``stop()`` or a context manager. ``ca_file`` to trust."""

    def __init__(self, names: Iterable[str], directory: Path) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str]] = []
        authority = trustme.CA()
        leaf = authority.issue_cert(*names, "127.0.0.1")
        self.ca_file = directory / "autoconfig-ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_file))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(self._context)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def route(self, host: str, path: str, route: Route) -> None:
        self.routes[(host.lower(), path)] = route

    def find(self, host: str, path: str) -> Route | None:
        host = host.lower().rsplit(":", 1)[0] if not host.startswith("[") else host.lower()
        exact = self.routes.get((host, path)) or self.routes.get((host, path.split("?")[0]))
        if exact is not None:
            return exact
        for (route_host, route_path), route in self.routes.items():
            if route_host == host and route_path.endswith("*") and path.startswith(route_path[:-1]):
                return route
        return None

    def start(self) -> AutoconfigServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = self.headers.get("Host", "")
                server.requests.append((host, self.path))
                route = server.find(host, self.path)
                if route is None:
                    route = Route(b"not found", 404, content_type="text/plain")
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.socket = self._context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> AutoconfigServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def autoconfig_xml(*servers: Mapping[str, Any], domain: str = "example.test") -> bytes:
    """A config-v1.1.xml with these outgoing servers (keys: hostname, port, socketType,
    authentication (a str or a list), username), plus an IMAP server as real files have."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        f'  <emailProvider id="{domain}">',
        f"    <domain>{domain}</domain>",
        f"    <displayName>{domain} mail</displayName>",
        '    <incomingServer type="imap">',
        f"      <hostname>imap.{domain}</hostname><port>993</port>",
        "      <socketType>SSL</socketType><authentication>password-cleartext</authentication>",
        "      <username>%EMAILADDRESS%</username>",
        "    </incomingServer>",
    ]
    for server in servers:
        parts.append(f'    <outgoingServer type="{server.get("type", "smtp")}">')
        for key in ("hostname", "port", "socketType"):
            if key in server:
                parts.append(f"      <{key}>{server[key]}</{key}>")
        auth = server.get("authentication", [])
        for method in [auth] if isinstance(auth, str) else auth:
            parts.append(f"      <authentication>{method}</authentication>")
        if "username" in server:
            parts.append(f"      <username>{server['username']}</username>")
        parts.append("    </outgoingServer>")
    parts += ["  </emailProvider>", "</clientConfig>", ""]
    return "\n".join(parts).encode()


#: Entity expansion ("billion laughs"): defusedxml must refuse it before expanding anything.
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<clientConfig version="1.1"><emailProvider id="x"><outgoingServer type="smtp">
<hostname>&lol4;</hostname><port>587</port><socketType>STARTTLS</socketType>
</outgoingServer></emailProvider></clientConfig>
"""

#: An external entity (XXE) reading a local file into the host name.
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<clientConfig version="1.1"><emailProvider id="x"><outgoingServer type="smtp">
<hostname>&xxe;</hostname><port>587</port><socketType>STARTTLS</socketType>
</outgoingServer></emailProvider></clientConfig>
"""
