"""The recording proxy's front: an HTTP/1.1 forward proxy on 127.0.0.1 for the capture's browser.

Chromium sends `GET http://host/path` (absolute form) or `CONNECT host:443` then TLS (RFC 9110
section 9.3.6); here each request becomes one call of `answer(url, accept, write, tag)`, the
capture's own fetch layer (write/browsing.py), which writes a whole HTTP response, byte for
byte as the server sent it or as recorded. A proxy of our own, not an intercepting library such
as mitmproxy: those parse and re-serialise responses (they decode chunked bodies and rebuild
headers), while the record must hold the bytes exactly as sent and the browser should see what
was recorded. One request per connection: the connection is closed after each answer, so a
truncated or unframed recorded body can never leave the browser waiting.

Only GET is proxied (501 otherwise: a capture never replays a form post); request heads are
bounded (64 KiB), request bodies are not read. TLS for CONNECT comes from `certs(host)`, an
`ssl.SSLContext` for that host (write/mitm.py), or the tunnel is refused when None.
"""
from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
TOKEN_HEADER = "x-archive-capture"   # "<token>.<page tag>", sent by the pages; never forwarded
Answer = Callable[[str, str, Callable[[bytes], Any], str], None]   # url, Accept, write, page tag
Certs = Callable[[str], "ssl.SSLContext | None"]


def simple_response(status: int, reason: str, text: str) -> bytes:
    """A small text/plain response that closes the connection.

    >>> simple_response(403, "Forbidden", "out of scope").split(b"\\r\\n")[0]
    b'HTTP/1.1 403 Forbidden'
    """
    body = text.encode("utf-8", "replace")
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _read_head(stream: Any) -> list[bytes] | None:
    lines: list[bytes] = []
    size = 0
    while True:
        line = stream.readline(MAX_HEAD + 1)
        size += len(line)
        if not line or size > MAX_HEAD:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.rstrip(b"\r\n"))


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            self._handle(self.rfile, self.connection, None)
        except (OSError, ssl.SSLError, ValueError) as exc:
            logger.debug("proxy connection ended: %s", exc)

    def _handle(self, rfile: Any, conn: socket.socket, origin: str | None) -> None:
        head = _read_head(rfile)
        if not head:
            return
        try:
            method, target, _version = head[0].decode("latin-1").split(" ", 2)
        except ValueError:
            conn.sendall(simple_response(400, "Bad Request", "malformed request line"))
            return
        headers = {}
        for line in head[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "CONNECT" and origin is None:
            self._tunnel(target, conn)
            return
        if method != "GET":
            conn.sendall(simple_response(501, "Not Implemented", f"the capture proxy records GET only, not {method}"))
            return
        tag = headers.get(TOKEN_HEADER, "")
        if self.server.token and tag.partition(".")[0] != self.server.token:
            # Chromium's own traffic (time, updates): only the capture's pages are recorded
            conn.sendall(simple_response(403, "Forbidden", "not a request of a page being captured"))
            return
        url = origin + target if origin is not None and target.startswith("/") else target
        if not url.startswith(("http://", "https://")):
            conn.sendall(simple_response(400, "Bad Request", "absolute URL expected"))
            return
        self.server.answer(url, headers.get("accept", "*/*"), conn.sendall, tag.partition(".")[2])

    def _tunnel(self, target: str, conn: socket.socket) -> None:
        host, _, port = target.rpartition(":")
        context = self.server.certs(host.strip("[]")) if self.server.certs else None
        if context is None or not port.isdigit():
            conn.sendall(simple_response(502, "Bad Gateway", "https is not recorded by this capture"))
            return
        conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        with context.wrap_socket(conn, server_side=True) as tls:
            origin = f"https://{host}" + ("" if port == "443" else f":{port}")
            with tls.makefile("rb") as rfile:
                self._handle(rfile, tls, origin)
            with contextlib.suppress(OSError, ssl.SSLError):
                tls.unwrap()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: Answer, certs: Certs | None, token: str | None):
        self.answer = answer
        self.certs = certs
        self.token = token
        super().__init__(("127.0.0.1", 0), _Handler)


class RecordingProxy:
    """Serves on 127.0.0.1 (a free port) in a thread of its own until `close()`; `url` is
    `http://127.0.0.1:PORT`, for Chromium's --proxy-server. With `token`, a request without
    the header `X-Archive-Capture: <token>[.<tag>]` gets a 403 (the browser's own traffic); the
    tag (which page asked) goes to `answer`. A context manager."""

    def __init__(self, answer: Answer, certs: Certs | None = None, token: str | None = None):
        self.server = _Server(answer, certs, token)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="browser-proxy", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
