"""A site to capture again and again: pages that stay the same, one that changes on every
request, small bodies, and validators (ETag, Last-Modified) honoured with 304 or ignored."""
from __future__ import annotations

import gzip
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = [f"{a}{b}{c}" for a in "bcdfghklmnprstvz" for b in "aeiou" for c in ("n", "r", "s", "th", "l", "")]
LAST_MODIFIED = "Tue, 24 Nov 2026 10:00:00 GMT"


def page_text(n: int, size: int) -> bytes:
    """Return about `size` bytes of HTML for page n: prose-like and different on every page."""
    rng = random.Random(n)
    words = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words).encode()


class RecaptureSite:
    """`pages` linked pages of about `size` bytes each, under /p/<n>, all linked from /."""

    def __init__(self, pages: int = 20, size: int = 25_000, conditional: bool = True, compress: bool = False):
        self.pages = pages
        self.size = size
        self.conditional = conditional      # False: validators are sent but never honoured
        self.compress = compress            # pages gzip-encoded, as most servers send HTML; then
        # `size` is the body as sent (the same bytes each time, as zlib gives for the same input)
        self.counter = 0
        self.delay = 0.0                    # seconds each answer waits
        self.gate: Callable[[], None] | None = None   # called before each answer (waiting.Gate)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bodies = {n: page_text(n, int(2.4 * size) if compress else size) for n in range(pages)}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with site.lock:
                    site.requests.append((self.path, dict(self.headers.items())))
                if site.gate is not None:
                    site.gate()
                time.sleep(site.delay)
                status, body, headers = site.answer(self.path, self.headers)
                chunked = ("Transfer-Encoding", "chunked") in headers
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                if status != 304 and not chunked:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if chunked:
                    for start in range(0, len(body), 1000):
                        part = body[start:start + 1000]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                elif status != 304:
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, headers: object) -> tuple[int, bytes, list[tuple[str, str]]]:
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/":
            links = "".join(f'<li><a href="/p/{n}">page {n}</a></li>' for n in range(self.pages))
            body = (f"<!doctype html><title>Recapture</title><ul>{links}</ul>"
                    f'<a href="/changing">changing</a> <a href="/small">small</a>').encode()
            return 200, body + b" " * max(0, 1500 - len(body)), html
        if path == "/changing":
            with self.lock:
                self.counter += 1
                count = self.counter
            return 200, f"<!doctype html><title>Changing</title><p>Visit number {count}.</p>".encode() \
                + page_text(10_000, 2000), html
        if path == "/small":
            return 200, b"<!doctype html><title>Small</title><p>tiny</p>", html
        if path.startswith("/chunked/"):   # the same body as /p/<n>, sent chunked
            status, body, headers = self.answer(path.removeprefix("/chunked"), {})
            return status, body, [h for h in headers if h[0] != "ETag"] + [("Transfer-Encoding", "chunked")]
        if path.startswith("/p/") and path[3:].isdigit() and int(path[3:]) in self.bodies:
            n = int(path[3:])
            etag = f'"page-{n}"'
            validators = [("ETag", etag), ("Last-Modified", LAST_MODIFIED)]
            get = getattr(headers, "get")   # a message, or a dict
            if self.conditional and (get("If-None-Match") == etag or get("If-Modified-Since") == LAST_MODIFIED):
                return 304, b"", validators
            body = b"<!doctype html><title>Page %d</title><p>" % n + self.bodies[n] + b'</p><a href="/">home</a>'
            if self.compress and "gzip" in (get("Accept-Encoding") or ""):
                return 200, gzip.compress(body, 6, mtime=0), html + validators + [("Content-Encoding", "gzip")]
            return 200, body, html + validators
        return 404, b"not here", html

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
