"""A loopback-only forward HTTP proxy: how the unchanged product reaches the sandbox's stand-ins.

boto3's ``s3control`` client always puts ``{AccountId}.`` in front of the endpoint host, even with an
endpoint URL set, so ``http://127.0.0.1:9000`` becomes ``http://123456789012.127.0.0.1:9000``. The
sandbox therefore points the product at the unresolvable ``http://s3-control.test`` and sets
``HTTP_PROXY`` to this proxy, which sees the full URL in the request line and sends it on:

- ``s3-control.test`` and any ``*.s3-control.test`` go to the S3 Control emulator;
- other routes given to the proxy (host or ``*.host``) go to their loopback upstream;
- any other request for ``127.0.0.1``/``localhost``/``::1`` goes to that host and port unchanged,
  for clients that send loopback calls through the proxy anyway (slack_sdk's own proxy lookup reads
  ``HTTP(S)_PROXY`` only; its sync WebClient still skips the proxy for hosts in ``NO_PROXY``,
  because urllib's ProxyHandler checks it, but a client or a setup without ``NO_PROXY`` does not);
- everything else is refused with 403: the sandbox never talks to the internet. CONNECT gets 405.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sandbox._http import is_loopback

logger = logging.getLogger(__name__)

S3_CONTROL_HOST = "s3-control.test"
S3_CONTROL_ENDPOINT = f"http://{S3_CONTROL_HOST}"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
UPSTREAM_TIMEOUT = 120.0


def s3control_client_env(proxy_url: str) -> dict[str, str]:
    """The environment that sends the product's S3 Control calls through ``proxy_url``.

    ``NO_PROXY`` keeps botocore's other clients (DynamoDB, SQS, Secrets Manager on moto at
    127.0.0.1) off the proxy, and slack_sdk's sync WebClient too (urllib checks it). Anything that
    comes through the proxy for a loopback host is forwarded unchanged.
    Lower-case variants are set too, because urllib prefers them when both exist.
    """
    return {
        "AWS_ENDPOINT_URL_S3_CONTROL": S3_CONTROL_ENDPOINT,
        "HTTP_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


is_loopback_host = is_loopback  # the proxy's name for it


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy saw: what was asked for, and where it went (None when refused)."""

    method: str
    url: str
    upstream: str | None
    status: int


class LoopbackProxy:
    """A forward HTTP proxy on 127.0.0.1 that only ever connects to loopback addresses.

    ``s3control_url`` is the emulator's URL (``S3ControlEmulator.url``); ``routes`` maps more host
    names to loopback base URLs. ``requests`` records what passed through, for tests and the demo.
    """

    def __init__(
        self,
        s3control_url: str | None = None,
        *,
        routes: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError("the proxy listens on loopback addresses only")
        table = dict(routes or {})
        if s3control_url is not None:
            table[S3_CONTROL_HOST] = s3control_url
        self.routes: dict[str, tuple[str, int]] = {}
        for name, upstream in table.items():
            parts = urlsplit(upstream)
            if parts.scheme != "http" or not parts.hostname or not is_loopback_host(parts.hostname):
                raise ValueError(f"route {name!r}: upstream must be an http:// loopback URL, got {upstream!r}")
            self.routes[name.lower()] = (parts.hostname, parts.port or 80)
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://{self._address[0]}:{self._server.server_port}"

    def start(self) -> LoopbackProxy:
        if self._server is not None:
            return self
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self._server = ThreadingHTTPServer(self._address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def upstream_for(self, host: str, port: int | None) -> tuple[str, int] | None:
        """Where a request for ``host:port`` goes, or None when it must be refused."""
        host = host.lower()
        for name, upstream in self.routes.items():
            if host == name or host.endswith("." + name):
                return upstream
        if is_loopback_host(host):
            return host.strip("[]"), port or 80
        return None

    def _record(self, entry: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(entry)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SandboxProxy"
    disable_nagle_algorithm = True  # one small write each for headers and body: no 40 ms delayed-ACK stall
    sys_version = ""
    proxy: LoopbackProxy

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("proxy %s", format % args)

    def version_string(self) -> str:
        return self.server_version

    def do_CONNECT(self) -> None:
        self._read_body()
        self.proxy._record(ProxiedRequest("CONNECT", self.path, None, 405))
        self._reply(405, "The sandbox proxy does not tunnel (CONNECT): use plain http:// endpoints\n")

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET
    do_OPTIONS = do_GET

    def _forward(self) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.proxy._record(ProxiedRequest(self.command, self.path, None, 400))
            self._reply(400, "The sandbox proxy expects absolute-form http:// request lines\n")
            return
        upstream = self.proxy.upstream_for(parts.hostname, parts.port)
        if upstream is None:
            self.proxy._record(ProxiedRequest(self.command, self.path, None, 403))
            self._reply(403, f"The sandbox proxy refuses {parts.hostname}: only loopback hosts are allowed\n")
            return
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"expect"}]
        if not any(name.lower() == "host" for name, _ in headers):
            headers.append(("Host", parts.netloc))
        host, port = upstream
        connection = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        try:
            connection.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() != "content-length":
                    connection.putheader(name, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            payload = response.read()
            status, reason = response.status, response.reason
            response_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        except OSError as exc:
            self.proxy._record(ProxiedRequest(self.command, self.path, f"{host}:{port}", 502))
            self._reply(502, f"The sandbox proxy could not reach {host}:{port}: {exc}\n")
            return
        finally:
            connection.close()
        # Recorded before answering, so whoever got the answer also sees the record.
        self.proxy._record(ProxiedRequest(self.command, self.path, f"{host}:{port}", status))
        self.send_response(status, reason)
        for name, value in response_headers:
            if name.lower() not in ("content-length", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, message: str) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


__all__ = [
    "S3_CONTROL_ENDPOINT",
    "S3_CONTROL_HOST",
    "LoopbackProxy",
    "ProxiedRequest",
    "is_loopback_host",
    "s3control_client_env",
]
