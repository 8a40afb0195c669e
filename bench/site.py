"""The benchmark's synthetic site, run as its own process so it takes no CPU from the capture.

    python bench/site.py --pages 200 --delay 0.02 --big-mb 1024

Routes: /            a page linking to /p<i>.html for each page
        /p<i>.html   a page with a stylesheet, a script and two images (2-50 KB each)
        /big.bin     one large body: half compressible text, half random bytes, streamed
Prints the port on stdout once listening.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import os
import random
import sys
import time

from httpsite import QuietHandler, Server

KB = 1024
SIZES = {"css": 3 * KB, "js": 12 * KB, "a.png": 25 * KB, "b.png": 48 * KB}
_RANDOM_BLOCK = os.urandom(8 << 20)   # repeated: still incompressible for deflate's 32 KB window
_TEXT_BLOCK = (" ".join(f"line {i} of compressible text in the large benchmark body"
                        for i in range(20000)) + "\n").encode()


_LETTERS = bytes((b"abcdefghij klmnop\n" * 16)[:256])


@functools.lru_cache(maxsize=None)
def body(name: str, size: int) -> bytes:
    """Return the deterministic body of a requisite, half text and half random bytes, cheaply."""
    raw = random.Random(hashlib.sha256(name.encode()).digest()).randbytes(size)
    return raw[: size // 2].translate(_LETTERS) + raw[size // 2:]


class Handler(QuietHandler):
    server: "Server"

    def do_GET(self) -> None:  # noqa: N802
        if self.server.delay:
            time.sleep(self.server.delay)
        path = self.path.split("?")[0]
        if path == "/":
            links = "".join(f'<li><a href="/p{i}.html">page {i}</a></li>' for i in range(self.server.pages))
            return self.send(b"<!doctype html><title>bench</title><ul>" + links.encode() + b"</ul>", "text/html")
        if path == "/big.bin":
            return self.send_big()
        if path.startswith("/p") and path.endswith(".html"):
            i = path[2:-5]
            page = (f'<!doctype html><title>page {i}</title><link rel="stylesheet" href="/s{i}.css">'
                    f'<script src="/j{i}.js"></script><img src="/a{i}.png"><img src="/b{i}.png">'
                    f'<p>{"benchmark text " * 300}</p>')
            return self.send(page.encode(), "text/html")
        for prefix, ext, ctype in (("/s", ".css", "text/css"), ("/j", ".js", "application/javascript"),
                                   ("/a", ".png", "image/png"), ("/b", ".png", "image/png")):
            if path.startswith(prefix) and path.endswith(ext):
                key = "css" if ext == ".css" else "js" if ext == ".js" else prefix[1] + ".png"
                return self.send(body(path, SIZES[key]), ctype)
        self.send(b"not found", "text/plain", 404)

    def send_big(self) -> None:
        size = self.server.big
        self.send_stream(size, lambda sent: _TEXT_BLOCK if sent < size // 2 else _RANDOM_BLOCK)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--big-mb", type=float, default=1024)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.pages, server.delay, server.big = args.pages, args.delay, int(args.big_mb * (1 << 20))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
