"""The built-in demo site: a blog post with every kind of page requisite, served on loopback.

Two hosts, as a real page has: the blog on 127.0.0.1 and a second site on 127.0.0.2 (both
are loopback addresses on Linux). Text files may name the hosts as {{MAIN}} and {{OTHER}},
replaced by their origins when served. CSS is served gzip-encoded and scripts with chunked
transfer-coding, so a capture of the demo holds both kinds of record. Tests reuse this
server and add routes of their own (misbehaving ones among them). The site's files are in
`site/`. It may import nothing of the package: it is a web site, not part of the archive.
"""
from __future__ import annotations

import gzip
import mimetypes
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

SITE = Path(str(resources.files("archive.demo") / "site"))
TEXT_SUFFIXES = {".html", ".css", ".js", ".txt", ".webmanifest", ".vtt", ".svg", ".json"}
EXTRA_TYPES = {".webmanifest": "application/manifest+json", ".woff2": "font/woff2",
               ".vtt": "text/vtt", ".webp": "image/webp", ".ico": "image/x-icon",
               ".mp3": "audio/mpeg", ".webm": "video/webm", ".mp4": "video/mp4"}
REDIRECTS = {"/redirect-me": "/moved.html"}

Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    """Serves one host's folder of the demo site, plus any routes a test adds."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        site = self.server.site
        path = self.path.split("?", 1)[0]
        site.log(self.server.name, self.path, dict(self.headers.items()))
        if site.latency:
            time.sleep(site.latency)
        route = site.routes.get((self.server.name, path)) or site.routes.get(("*", path))
        if route:
            route(self)
        elif self.server.name == "main" and path in REDIRECTS:
            self.send_bytes(301, b"", "text/html", [("Location", REDIRECTS[path])])
        else:
            self.serve_file(path)

    def serve_file(self, path: str) -> None:
        """Answer with a file of this host's folder, 404 when there is none."""
        root = SITE / self.server.name
        target = (root / path.lstrip("/")).resolve()
        if path.endswith("/"):
            target = target / "index.html"
        if root.resolve() not in target.parents or not target.is_file():
            self.send_bytes(404, b"<!doctype html><title>Not found</title><h1>Not found</h1>",
                            "text/html; charset=utf-8")
            return
        body = target.read_bytes()
        if target.suffix in TEXT_SUFFIXES:
            body = self.server.site.fill(body)
        ctype = EXTRA_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith(("+json", "+xml", "javascript")):
            ctype += "; charset=utf-8"
        if target.suffix == ".css" and "gzip" in self.headers.get("Accept-Encoding", ""):
            self.send_bytes(200, gzip.compress(body, mtime=0), ctype, [("Content-Encoding", "gzip")])
        elif target.suffix == ".js":
            self.send_chunked(200, [body[: len(body) // 2], body[len(body) // 2:]], ctype)
        else:
            self.send_bytes(200, body, ctype)

    def send_bytes(self, status: int, body: bytes, ctype: str,
                   headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        """Send a complete response with Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_chunked(self, status: int, parts: list[bytes], ctype: str) -> None:
        """Send a response with chunked transfer-coding, one chunk per part."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in parts:
            if part:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], name: str, site: "DemoSite"):
        self.name = name
        self.site = site
        super().__init__(address, Handler)


class DemoSite:
    """Both hosts of the demo site, running in background threads until stop()."""

    def __init__(self, port: int = 0, other_port: int = 0, latency: float = 0.0,
                 main_host: str = "127.0.0.1", other_host: str = "127.0.0.2"):
        self.latency = latency
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self.servers = [_Server((main_host, port), "main", self),
                        _Server((other_host, other_port), "other", self)]
        self.main_url = self._origin(self.servers[0])
        self.other_url = self._origin(self.servers[1])
        self._threads: list[threading.Thread] = []

    @staticmethod
    def _origin(server: _Server) -> str:
        host, port = server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fill(self, body: bytes) -> bytes:
        """Replace the host placeholders in a text file."""
        return body.replace(b"{{MAIN}}", self.main_url.encode()).replace(
            b"{{OTHER}}", self.other_url.encode())

    def log(self, host: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((host, path, headers))

    def paths(self, host: str = "main") -> list[str]:
        """Return the paths requested of one host, in order."""
        with self._lock:
            return [p for h, p, _ in self.requests if h == host]

    def start(self) -> "DemoSite":
        for server in self.servers:
            thread = threading.Thread(target=server.serve_forever, daemon=True,
                                      name=f"demo-{server.name}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "DemoSite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
