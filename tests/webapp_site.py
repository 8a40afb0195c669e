"""A small site for the web interface's tests: a page with an empty script, an empty stylesheet,
an empty worker script and an image; a page whose text changes when the test says so; and a
page with a hostile title and URL."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# a 1x1 PNG
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a5f9d3e30000000049454e44ae426082")
HOSTILE_TITLE = "<script>window.pwned=1</script>{{7*7}}{% raw %}\u202e<img src=x onerror=pwned=2>"
WORD = "quetzalcoatlus"   # in the article's text only, for search


class WebappSite:
    """Serve on 127.0.0.1; `version` changes the text of /news."""

    def __init__(self) -> None:
        self.version = 1
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                kind, body = site.answer(self.path)
                self.send_response(200 if kind else 404)
                self.send_header("Content-Type", kind or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[str | None, bytes]:
        if path == "/":
            return "text/html; charset=utf-8", (
                "<!doctype html><html lang=en><head><title>Flying reptiles</title>"
                "<script src='/empty.js'></script><link rel=stylesheet href='/empty.css'>"
                "<script src='/app.js'></script></head><body><article><h1>Pterosaurs</h1>"
                f"<p>The {WORD} was among the largest animals ever to fly.</p>"
                "<img src='/i.png' alt='dot'></article></body></html>").encode()
        if path == "/news":
            text = ("Bread costs one coin today." if self.version == 1 else "Bread costs two coins today.")
            return "text/html; charset=utf-8", (
                f"<!doctype html><html lang=en><head><title>News</title></head><body><p>Morning edition.</p>"
                f"<p>{text}</p></body></html>").encode()
        if path == "/hostile":
            return "text/html; charset=utf-8", (
                f"<!doctype html><html><head><title>{HOSTILE_TITLE}</title></head><body>x</body></html>").encode()
        if path in ("/empty.js", "/worker.js"):
            return "application/javascript", b""
        if path == "/app.js":
            return "application/javascript", b"document.documentElement.dataset.ran = 'yes';"
        if path == "/empty.css":
            return "text/css", b""
        if path == "/empty.json":
            return "application/json", b""
        if path == "/i.png":
            return "image/png", PNG
        return None, b"not found"

    def __enter__(self) -> "WebappSite":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
