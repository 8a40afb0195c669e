"""What the benchmark's synthetic sites share (site.py, frontier.py, verifykinds.py): a quiet
HTTP/1.1 handler that sends whole bodies or long streamed ones, and a threading server."""
from __future__ import annotations

import socketserver
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive handler that logs nothing; subclasses write do_GET with `send`/`send_stream`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def send(self, data: bytes, ctype: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, size: int, block_at: Callable[[int], bytes]) -> None:
        """Send `size` bytes of application/octet-stream, written from `block_at(bytes sent so far)`."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        while sent < size:
            block = block_at(sent)
            part = block[: min(len(block), size - sent)]
            self.wfile.write(part)
            sent += len(part)

    def log_message(self, *args: object) -> None:
        pass


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    request_queue_size = 256
