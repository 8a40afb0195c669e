"""A raw-socket HTTP server for misbehaving answers: each route writes whatever bytes it likes.

Routes map a path to handler(conn, request_bytes) -> None (keep the connection) or "close".
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

Handler = Callable[[socket.socket, bytes], "str | None"]


class FaultServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Handler] = {}
        self.default: Handler | None = None   # answers paths no route names (a proxy, say)
        self.requests: list[str] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    request, buf = buf.split(b"\r\n\r\n", 1)
                    path = request.split(b" ")[1].decode("latin-1")
                    self.requests.append(path)
                    handler = self.routes.get(path.split("?")[0]) or self.default
                    if handler is None:
                        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    elif handler(conn, request) == "close":
                        return
            except OSError:
                return

    def add(self, path: str, answer: bytes | Handler, close: bool = False) -> str:
        """Serve fixed bytes (or run a handler) at `path`; return its URL."""
        if callable(answer):
            self.routes[path] = answer
        else:
            self.routes[path] = lambda conn, req: (conn.sendall(answer), "close" if close else None)[1]
        return self.url + path

    def close(self) -> None:
        self.sock.close()


def html(body: bytes | str, status: str = "200 OK", extra: str = "") -> bytes:
    """Return a complete HTML response with Content-Length."""
    data = body.encode() if isinstance(body, str) else body
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(data)}\r\n{extra}\r\n"
            .encode() + data)


def drip(head: bytes, body: bytes, every: float) -> Handler:
    """A handler sending `head`, then the body one byte at a time."""
    def send(conn: socket.socket, request: bytes) -> str:
        conn.sendall(head)
        for i in range(len(body)):
            conn.sendall(body[i:i + 1])
            time.sleep(every)
        return "close"
    return send
