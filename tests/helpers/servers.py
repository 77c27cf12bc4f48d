"""Servers on 127.0.0.1 for the remote-input tests: an HTTP server that answers single Range requests and counts the
bytes it serves, moto's S3 server, a STAC API (rustac's), and a port where nothing listens.

GDAL caches what it learns of a URL (its size, its blocks) for the life of the process, so each server serves its
folder under a prefix of its own: one test's cache never answers another test's reads.
"""

from __future__ import annotations

import re
import socket
import threading
import uuid
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def free_port() -> int:
    """A loopback port nothing listens on (the OS picks it; it is closed again at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1, on a port the OS picks, serving `handler`; a context manager that starts
    it and stops it (its threads are daemons: a test that fails mid-request still ends)."""

    def __init__(self, handler, server_class=ThreadingHTTPServer):
        self._server = server_class(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class RangeServer(LoopbackServer):
    """Serves `root` over HTTP with single byte ranges (206 and Content-Range) and HEAD (Content-Length,
    Accept-Ranges: bytes), as object stores do. `served[name]` counts the body bytes sent per file; `status[name]`
    makes a file answer that status (403, 404, 503) instead; `requests[name]` counts the requests answered."""

    def __init__(self, root):
        self.root = Path(root)
        self.prefix = uuid.uuid4().hex[:8]
        self.served: Counter = Counter()
        self.requests: Counter = Counter()
        self.status: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{self.prefix}/{name}"

    def _count(self, name: str, sent: int) -> None:
        with self._lock:
            self.served[name] += sent
            self.requests[name] += 1

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as GDAL's curl expects of a server

            def log_message(self, *args) -> None:  # quiet: pytest shows only what fails
                pass

            def _file(self) -> Optional[Path]:
                path = self.path.split("?", 1)[0]
                head = f"/{server.prefix}/"
                name = path[len(head):] if path.startswith(head) else None
                if name is not None and name in server.status:
                    server._count(name, 0)
                    self._empty(server.status[name])
                    return None
                file = server.root / name if name else None
                if file is None or not file.is_file():
                    self._empty(HTTPStatus.NOT_FOUND)
                    return None
                return file

            def _empty(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                file = self._file()
                if file is not None:
                    self.send_response(HTTPStatus.OK)
                    self.send_header("Content-Length", str(file.stat().st_size))
                    self.send_header("Accept-Ranges", "bytes")
                    self.end_headers()

            def do_GET(self) -> None:
                file = self._file()
                if file is None:
                    return
                size = file.stat().st_size
                start, end, status = 0, size - 1, HTTPStatus.OK
                match = _RANGE.match(self.headers.get("Range", "").strip())
                if match and (match[1] or match[2]):
                    if match[1]:
                        start, end = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
                    else:  # bytes=-N: the last N bytes
                        start = max(size - int(match[2]), 0)
                    if start >= size:
                        self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = HTTPStatus.PARTIAL_CONTENT
                with open(file, "rb") as source:
                    source.seek(start)
                    body = source.read(end - start + 1)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if status == HTTPStatus.PARTIAL_CONTENT:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.end_headers()
                self.wfile.write(body)
                server._count(file.relative_to(server.root).as_posix(), len(body))

        return Handler


class S3Server:
    """moto's S3 server on a free loopback port (moto must be installed: the caller skips where it is not)."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self):
        """A boto3 client of this server (dummy credentials: moto accepts any)."""
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def __enter__(self) -> "S3Server":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()


class StacApiServer:
    """A real STAC API on 127.0.0.1: `rustac serve` (in-memory backend) loaded with the STAC files `hrefs` (a
    collection, an item collection). Starting waits at most `wait` seconds for the landing page; `start()` returns
    None and `reason` says why where it cannot start (no rustac, the process ended, no answer). Stopped by `stop()`."""

    def __init__(self, hrefs, wait: float = 20.0):
        self.hrefs = [str(href) for href in hrefs]
        self.wait = wait
        self.port = free_port()
        self.process = None
        self.reason = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> Optional["StacApiServer"]:
        import shutil
        import subprocess
        import sys
        import tempfile
        import time
        import urllib.request

        binary = shutil.which("rustac") or shutil.which("rustac", path=str(Path(sys.executable).parent))
        if binary is None:
            self.reason = "rustac is not installed (pip install rustac)"
            return None
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a server that logs much must not block on it
        self.process = subprocess.Popen([binary, "serve", "--addr", f"127.0.0.1:{self.port}", *self.hrefs],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                self.reason = f"rustac serve ended: {self.log.read().decode(errors='replace')[-500:]}"
                return None
            try:
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(self.url, timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        self.reason = f"rustac serve did not answer within {self.wait:g} s"
        return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except Exception:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process is not None:
            self.log.close()
