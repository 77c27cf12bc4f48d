"""The app's egress proxy: every request GDAL makes for a stranger's URL (each redirect hop is a new one) goes
through it, and it connects only where the app's UrlPolicy lets it, to the exact address it checked.

The URL policy walks a URL's redirects before GDAL reads it, but GDAL (curl) then resolves names and follows
redirects itself: a server may answer that walk well and redirect GDAL to 127.0.0.1 or a cloud metadata address
later, or a name may resolve elsewhere a moment after it was checked. Here each connection is decided by
`UrlPolicy.address_for` (one resolution) and made to the address it returned, so neither trick reaches the
server's own network. GDAL is pointed here with GDAL_HTTP_PROXY / GDAL_HTTPS_PROXY while the app maps a URL
(`routed`), with no_proxy / NO_PROXY set aside meanwhile (curl honours them even with a proxy set, and an entry
such as `localhost` would let a redirect bypass the checks).

Stdlib only, no GDAL. Bounded: connections at once, header size, a timeout on every socket operation, an idle
timeout and a lifetime per connection."""

from __future__ import annotations

import os
import select
import socket
import socketserver
import threading
import time
from contextlib import contextmanager
from typing import Optional
from urllib.parse import urlsplit

from ..url_policy import REFUSAL, UrlPolicy, UrlRefused

MAX_CONNECTIONS = 32
HEADER_LIMIT = 64 * 2**10  # bytes of a request's or response's head
CONNECT_TIMEOUT = 10.0  # seconds to connect to the checked address
IDLE_TIMEOUT = 60.0  # seconds without a byte either way before a connection is dropped
LIFETIME = 600.0  # seconds a connection may last at most
CHUNK = 64 * 2**10
FORWARDED_METHODS = ("GET", "HEAD")  # what GDAL sends when it reads a raster over plain http
HOP_HEADERS = ("connection", "proxy-connection", "proxy-authorization", "keep-alive")
# The proxy settings of an operator (GDAL's, and those curl reads itself): where one is set, GDAL goes through it
# and the app does not put its own in between (that proxy must then refuse private addresses itself).
OPERATOR_PROXY_SETTINGS = ("GDAL_HTTP_PROXY", "GDAL_HTTPS_PROXY", "http_proxy", "https_proxy", "HTTPS_PROXY",
                           "all_proxy", "ALL_PROXY")
NO_PROXY_SETTINGS = ("no_proxy", "NO_PROXY")


class Refused(Exception):
    """A request the proxy does not forward (its policy, an unreachable host, a bad request: one answer for all)."""


def operator_proxy() -> Optional[str]:
    """The name of the operator's proxy setting in the environment, if any."""
    return next((name for name in OPERATOR_PROXY_SETTINGS if os.environ.get(name)), None)


def read_head(sock: socket.socket, limit: int = HEADER_LIMIT) -> tuple[bytes, bytes]:
    """A message's head (through the blank line) and the bytes read after it; Refused past `limit` or on close."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > limit:
            raise Refused("head too large")
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise Refused("closed before the end of the head")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    if len(head) > limit:
        raise Refused("head too large")
    return head + b"\r\n\r\n", rest


def target_of(request_line: str) -> tuple[str, str, int, str]:
    """(method, host, port, origin-form target) of a proxy request line: `CONNECT host:port HTTP/1.1` or
    `GET http://host[:port]/path HTTP/1.1`; Refused for anything else."""
    try:
        method, target, version = request_line.split(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(version)
        if method == "CONNECT":
            parts = urlsplit(f"//{target}")
            return method, parts.hostname, parts.port, ""
        parts = urlsplit(target)
        if method not in FORWARDED_METHODS or parts.scheme.lower() != "http" or not parts.hostname:
            raise ValueError(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return method, parts.hostname, parts.port or 80, path
    except ValueError:  # no port, a bad port or IPv6 literal, another method or scheme
        raise Refused("not a proxy request") from None


def forwarded_head(method: str, path: str, header_lines: list[str]) -> bytes:
    """An absolute-form request's head as sent upstream: origin form, the proxy's own headers dropped, and
    `Connection: close` (one request per connection: each is checked)."""
    kept = [line for line in header_lines if line.split(":", 1)[0].strip().lower() not in HOP_HEADERS]
    return "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode("latin-1")


def closing_response_head(head: bytes) -> bytes:
    """A response's head with `Connection: close`: the client must not send a second request on this connection."""
    lines = head.decode("latin-1").split("\r\n")[:-2]
    kept = [lines[0]] + [line for line in lines[1:] if line.split(":", 1)[0].strip().lower() not in HOP_HEADERS]
    return "\r\n".join([*kept, "Connection: close", "", ""]).encode("latin-1")


def refusal_response() -> bytes:
    body = f"{REFUSAL}\n".encode()
    return (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def relay(client: socket.socket, upstream: socket.socket, idle: float, lifetime: float) -> None:
    """Copy bytes both ways until either side closes, nothing moves for `idle` seconds, or `lifetime` is up."""
    deadline = time.monotonic() + lifetime
    peers = {client: upstream, upstream: client}
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(peers), [], [], min(idle, max(deadline - time.monotonic(), 0)))
        if not ready:
            return
        for source in ready:
            data = source.recv(CHUNK)
            if not data:
                return
            peers[source].sendall(data)


class EgressProxy:
    """An HTTP proxy on 127.0.0.1 (a free port) for GDAL's requests: CONNECT (https) and absolute-form GET/HEAD
    (http), each host checked by `policy.address_for` and connected to at the address it returned; everything else
    answered 403 with the app's one refusal, and counted in `refusals`. `start()` / `close()`, or `with`."""

    def __init__(self, policy: UrlPolicy, max_connections: int = MAX_CONNECTIONS, idle_timeout: float = IDLE_TIMEOUT,
                 lifetime: float = LIFETIME, connect_timeout: float = CONNECT_TIMEOUT):
        self.policy, self.idle_timeout, self.lifetime = policy, idle_timeout, lifetime
        self.connect_timeout = connect_timeout
        self.refusals = 0
        self.forwarded = 0
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._server = self._make_server()
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "EgressProxy":
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name="translandseg-egress", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "EgressProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def _make_server(self) -> socketserver.ThreadingTCPServer:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy.serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = False

            def process_request(self, request, client_address):
                if not proxy._slots.acquire(blocking=False):  # too many at once: dropped, not queued
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request, client_address):
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    proxy._slots.release()

        return Server(("127.0.0.1", 0), Handler)

    def serve(self, client: socket.socket) -> None:
        """One client connection: one request checked, then forwarded (or refused), then closed."""
        client.settimeout(self.idle_timeout)
        try:
            head, _ = read_head(client)
            request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
            method, host, port, path = target_of(request_line)
            upstream = self.connected(host, port)
        except (Refused, UrlRefused, OSError, UnicodeError):
            self._count("refusals")
            try:
                client.sendall(refusal_response())
            except OSError:
                pass
            return
        self._count("forwarded")
        with upstream:
            try:
                self.forward(client, upstream, method, path, header_lines)
            except (OSError, Refused):
                pass  # a side that went away or stalled: the connection ends, as a direct one would

    def connected(self, host: str, port: int) -> socket.socket:
        """A connection to the one address `policy.address_for` returned for host:port (UrlRefused, OSError)."""
        address = self.policy.address_for(host.lower(), port)
        upstream = socket.create_connection((address, port), timeout=self.connect_timeout)
        upstream.settimeout(self.idle_timeout)
        return upstream

    def forward(self, client, upstream, method: str, path: str, header_lines: list[str]) -> None:
        if method == "CONNECT":
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream.sendall(forwarded_head(method, path, header_lines))  # GET/HEAD: no body follows
            head, rest = read_head(upstream)
            client.sendall(closing_response_head(head) + rest)
        relay(client, upstream, self.idle_timeout, self.lifetime)


@contextmanager
def routed(proxy: Optional[EgressProxy]):
    """While this holds, GDAL's http(s) requests go through `proxy` (None: as they are): GDAL_HTTP_PROXY and
    GDAL_HTTPS_PROXY point at it and no_proxy / NO_PROXY are set aside, all as before afterwards. The environment is
    the process's: the app maps one input at a time."""
    if proxy is None:
        yield
        return
    settings = {"GDAL_HTTP_PROXY": proxy.url, "GDAL_HTTPS_PROXY": proxy.url}
    before = {name: os.environ.get(name) for name in (*settings, *NO_PROXY_SETTINGS)}
    for name in NO_PROXY_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
