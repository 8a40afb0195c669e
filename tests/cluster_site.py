"""A fixture site for the cluster tests: counts requests per path and requests running at once."""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SHARED = b"/* shared stylesheet */\n" + b"body { margin: 0 }\n" * 200   # ~4 KB: worth a revisit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        site = self.server.site
        path = self.path.split("?")[0]
        with site.lock:
            site.hits[path] += 1
            site.running += 1
            site.max_running = max(site.max_running, site.running)
            site.lock.notify_all()
            if site.overlap and not site.overlapped:
                # the first answer waits for company, so that two at once is a fact, not luck
                site.lock.wait_for(lambda: site.running >= 2, timeout=60)
                site.overlapped = True
        if site.gate is not None:
            site.gate()
        try:
            self._answer(site, path)
        finally:
            with site.lock:
                site.running -= 1

    def _answer(self, site: "ClusterSite", path: str) -> None:
        if path.startswith("/slow/"):
            time.sleep(site.slow)
        elif site.latency:
            time.sleep(site.latency)
        if path.startswith("/page/") or path == "/slow/page":
            n = path.rsplit("/", 1)[1]
            links = "".join(f'<img src="/slow/res/{k}.png">' for k in range(site.slow_parts)) \
                if path == "/slow/page" else f'<script src="/js/{n}.js"></script>'
            body = (f'<!doctype html><html><head><title>page {n}</title><link rel="stylesheet" '
                    f'href="/shared.css">{links}</head><body><p>page {n}</p></body></html>').encode()
            self._send(200, body, "text/html; charset=utf-8")
        elif path == "/shared.css":
            self._send(200, SHARED, "text/css")
        elif path.startswith("/js/"):
            self._send(200, f"var page = {path[4:-3]!r};\n".encode(), "application/javascript")
        elif path.startswith("/slow/res/"):
            self._send(200, b"\x89PNG\r\n\x1a\n" + path.encode() * 50, "image/png")
        else:
            self._send(404, b"not here\n", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: "ClusterSite"):
        self.site = site
        super().__init__(("127.0.0.1", 0), _Handler)


class ClusterSite:
    """Pages /page/N (with /shared.css and /js/N.js), /slow/page (slow_parts slow images)."""

    def __init__(self, latency: float = 0.0, slow: float = 0.5, slow_parts: int = 6, overlap: bool = False):
        self.latency, self.slow, self.slow_parts = latency, slow, slow_parts
        self.overlap = overlap          # the first request waits until a second one is running
        self.overlapped = False
        self.gate: Callable[[], None] | None = None   # called before each answer (waiting.Gate)
        self.lock = threading.Condition()
        self.hits: Counter[str] = Counter()
        self.running = 0
        self.max_running = 0
        self.server = _Server(self)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "ClusterSite":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
