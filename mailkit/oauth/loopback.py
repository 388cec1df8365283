"""A one-shot receiver for the browser's redirect back to a loopback address.

Used when the kernel runs on the user's own machine: the sign-in page redirects the browser to
``http://127.0.0.1:PORT/`` and this receiver takes the answer (``code`` and ``state``, or
``error``). Google redirects with a GET; Microsoft is asked for ``response_mode=form_post``,
which POSTs the answer so the code never appears in the browser history or a proxy's log.

The receiver takes only the answer whose ``state`` is the one the sign-in link carries
(:meth:`LoopbackReceiver.expect_state`). Any other local request — a stray page, an old sign-in
link's redirect, a local program guessing the port — is turned away and counted in
:attr:`LoopbackReceiver.foreign`, so it can neither end the sign-in early nor stand in for it.

:meth:`LoopbackReceiver.start` returns at once, so a notebook can show the sign-in link before
:meth:`LoopbackReceiver.wait` blocks. The receiver listens on an ephemeral port of 127.0.0.1
only, for a finite time, and stops after the first answer.
"""

from __future__ import annotations

import hmac
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["LoopbackReceiver", "unanswered"]

#: Largest form body accepted; an authorization answer is a few kilobytes at most.
MAX_BODY = 64 * 1024

_DONE_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>mailkit</title></head>"
    "<body><p>{message}</p></body></html>"
)
_ANSWER_KEYS = frozenset({"code", "error", "state"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: LoopbackReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    #: Seconds a connection may sit idle: a browser's unused pre-connection (or a client that
    #: never finishes its body) must not keep a thread and a socket after the receiver closes.
    timeout = 10.0

    def do_GET(self) -> None:
        self._answer(urlsplit(self.path).query)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._reply(HTTPStatus.BAD_REQUEST, "The request was not an answer to sign-in.")
            return
        self._answer(self.rfile.read(length).decode("utf-8", "replace"))

    def _answer(self, encoded: str) -> None:
        params = {k: v[0] for k, v in parse_qs(encoded, keep_blank_values=True).items()}
        if not _ANSWER_KEYS & params.keys():
            # favicon.ico, a browser prefetch, ...: not the answer we wait for.
            self._reply(HTTPStatus.NOT_FOUND, "Nothing here.")
            return
        receiver = self.server.receiver
        if not receiver._belongs(params.get("state", "")):
            self._reply(
                HTTPStatus.BAD_REQUEST,
                "This answer belongs to another sign-in. Return to the notebook and use the "
                "newest sign-in link there.",
            )
            return
        accepted = receiver._deliver(params)
        if not accepted:
            message = "Sign-in was already answered; you can close this tab."
        elif "error" in params:
            message = "Sign-in did not complete; return to the notebook to see why."
        else:
            message = "Sign-in is complete; you can close this tab and return to the notebook."
        self._reply(HTTPStatus.OK, message)

    def _reply(self, status: HTTPStatus, message: str) -> None:
        body = _DONE_PAGE.format(message=message).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay silent: the request line carries the authorization code."""


class LoopbackReceiver:
    """Listen on ``127.0.0.1:<ephemeral port>`` for one authorization answer."""

    def __init__(self, *, lifetime: float = 300.0) -> None:
        self._lifetime = lifetime
        self._answer: dict[str, str] | None = None
        self._answered = threading.Event()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._state: bytes | None = None
        self.deadline = 0.0
        #: Answers turned away because their state is not this sign-in's.
        self.foreign = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the loopback receiver is not started")
        return int(self._server.server_address[1])

    def start(self) -> LoopbackReceiver:
        """Bind and serve in a background thread; stop by itself after ``lifetime`` seconds."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.receiver = self
        self._server = server
        self.deadline = time.monotonic() + self._lifetime
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        self._timer = threading.Timer(self._lifetime, self.close)
        self._timer.daemon = True
        self._timer.start()
        return self

    def expect_state(self, state: str) -> None:
        """Accept only the answer carrying ``state``; until this is called, accept none."""
        if not state:
            raise ValueError("a sign-in's state must not be empty")
        with self._lock:
            self._state = state.encode()

    def _belongs(self, state: str) -> bool:
        with self._lock:
            expected = self._state
            belongs = expected is not None and hmac.compare_digest(state.encode(), expected)
            if not belongs:
                self.foreign += 1
        return belongs

    def _deliver(self, params: dict[str, str]) -> bool:
        with self._lock:
            if self._answer is not None:
                return False
            self._answer = params
        self._answered.set()
        return True

    def wait(self, timeout: float | None = None) -> dict[str, str] | None:
        """Block until the answer arrives, ``timeout`` passes or the lifetime ends (→ None)."""
        remaining = max(0.0, self.deadline - time.monotonic())
        limit = remaining if timeout is None else min(timeout, remaining)
        self._answered.wait(limit)
        return self._answer

    def close(self) -> None:
        """Stop listening (idempotent); a thread blocked in :meth:`wait` returns None at once."""
        self._answered.set()
        with self._lock:
            server, self._server = self._server, None
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unanswered(receiver: LoopbackReceiver) -> tuple[str, str]:
    """The OAuth error (code, description) for a sign-in whose answer never arrived.

    Answers turned away for a foreign state make it a state mismatch: the browser did come
    back, from another sign-in's link, and the fix is the newest link, not more patience.
    """
    if receiver.foreign:
        return (
            "state_mismatch",
            f"no answer for this sign-in arrived in time; {receiver.foreign} answer(s) "
            "belonging to another sign-in reached the loopback address and were turned away",
        )
    return "timeout", "nobody finished signing in before the time ran out"
