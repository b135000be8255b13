"""What every local stand-in shares: loopback-only HTTP serving in a background thread."""

from __future__ import annotations

import ipaddress
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """True for localhost and any loopback address (127.0.0.0/8, ::1), with or without brackets."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class QuietServer(ThreadingHTTPServer):
    """Drops the traceback for a client that hung up (a timed-out client, a 413 sender) and logs nothing."""

    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackService:
    """A server bound at construction to a free loopback port, served in a background thread.

    ``start()`` serves, ``stop()`` stops for good (a stopped service cannot start again), and the
    service works as a context manager. ``url`` is the server root, ``http://127.0.0.1:PORT``.
    """

    thread_name = "loopback-service"

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        if not is_loopback(host):
            raise ValueError(f"{type(self).__name__} listens on loopback addresses only")
        self._server = QuietServer((host, port), handler)
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Serve in a background thread. The port is bound at construction; a stopped server stays stopped."""
        if self._server.socket.fileno() < 0:
            raise RuntimeError("this server was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=self.thread_name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET(6) server's address, never a UNIX path
        return f"http://{host}:{port}"
