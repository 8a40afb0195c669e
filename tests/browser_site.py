"""Fixture site for `capture --browser`: pages whose content only scripts fetch.

    /                 links to the three pages below (nothing else)
    /article.html     text and image from /api/article.json (fetch); a stylesheet inserted by
                      script (/css/late.css) with a web font (/fonts/late.woff2)
    /lazy.html        images far below the fold, loaded by an IntersectionObserver from URLs the
                      script builds (a `data-src` alone is read by the static extractor)
    /feed.html        an infinite-scroll list: /api/feed/1..3, each batch with its image

Every request is counted in `Site.requests` as (path, User-Agent): the browser never talks
to the site itself, only the capture's fetch layer does.
"""
from __future__ import annotations

import http.server
import io
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

ARTICLE_TEXT = "Zanzibar herons nest in the quiet marsh"


def png(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


INDEX = b"""<!doctype html><html><head><title>Fixture home</title></head><body>
<h1>Fixture home</h1><a href="/article.html">article</a> <a href="/lazy.html">lazy</a>
<a href="/feed.html">feed</a></body></html>"""

ARTICLE = b"""<!doctype html><html><head><title>Article</title><meta charset="utf-8"></head>
<body><h1>Article</h1><div id="body"></div>
<script>
fetch('/api/article.json').then(r => r.json()).then(d => {
  const p = document.createElement('p'); p.className = 'fancy'; p.textContent = d.text;
  document.getElementById('body').appendChild(p);
  const img = document.createElement('img'); img.src = d.image; document.body.appendChild(img);
});
const l = document.createElement('link'); l.rel = 'stylesheet'; l.href = '/css/' + 'late.css';
document.head.appendChild(l);
</script></body></html>"""

LATE_CSS = b"""@font-face { font-family: Late; src: url(/fonts/late.woff2) format('woff2'); }
.fancy, h1 { font-family: Late, serif; color: #335; }"""

LAZY = b"""<!doctype html><html><head><title>Lazy</title></head><body>
<h1>Lazy images</h1><div style="height: 3000px">tall</div>
<img class="lazy" data-n="1" width="40" height="30">
<div style="height: 2000px">taller</div>
<img class="lazy" data-n="2" width="40" height="30">
<script>
const io = new IntersectionObserver(es => es.forEach(e => {
  if (e.isIntersecting) { e.target.src = '/img/lazy-' + e.target.dataset.n + '.png'; io.unobserve(e.target); } }));
document.querySelectorAll('img.lazy').forEach(i => io.observe(i));
</script></body></html>"""

FEED = b"""<!doctype html><html><head><title>Feed</title></head><body>
<h1>Feed</h1><ul id="list"></ul><div id="end" style="height: 10px"></div>
<script>
let next = 1, busy = false;
function more() {
  if (busy || next > 3) return; busy = true;
  fetch('/api/feed/' + next).then(r => r.json()).then(d => {
    for (const t of d.items) { const li = document.createElement('li'); li.style.height = '400px';
      li.textContent = t; document.getElementById('list').appendChild(li); }
    const img = document.createElement('img'); img.src = d.image; document.getElementById('list').appendChild(img);
    next += 1; busy = false;
  });
}
new IntersectionObserver(es => { if (es[0].isIntersecting) more(); }).observe(document.getElementById('end'));
</script></body></html>"""


def routes() -> dict[str, tuple[str, bytes]]:
    r = {
        "/": ("text/html; charset=utf-8", INDEX),
        "/article.html": ("text/html; charset=utf-8", ARTICLE),
        "/api/article.json": ("application/json",
                              json.dumps({"text": ARTICLE_TEXT, "image": "/img/from-json.png"}).encode()),
        "/css/late.css": ("text/css", LATE_CSS),
        "/fonts/late.woff2": ("font/woff2", b"wOF2" + bytes(60)),
        "/img/from-json.png": ("image/png", png((200, 30, 30))),
        "/lazy.html": ("text/html; charset=utf-8", LAZY),
        "/img/lazy-1.png": ("image/png", png((30, 200, 30))),
        "/img/lazy-2.png": ("image/png", png((30, 30, 200))),
        "/feed.html": ("text/html; charset=utf-8", FEED),
        "/robots.txt": ("text/plain", b"User-agent: *\nAllow: /\n"),
    }
    for n in (1, 2, 3):
        r[f"/api/feed/{n}"] = ("application/json", json.dumps(
            {"items": [f"batch {n} item {i}" for i in range(4)], "image": f"/img/feed-{n}.png"}).encode())
        r[f"/img/feed-{n}.png"] = ("image/png", png((60 * n, 90, 90)))
    return r


# what only a browser finds (scripts ask for them), and what a static capture finds alone
SCRIPTED = ["/api/article.json", "/img/from-json.png", "/css/late.css", "/fonts/late.woff2",
            "/img/lazy-1.png", "/img/lazy-2.png", "/api/feed/1", "/api/feed/2", "/api/feed/3",
            "/img/feed-1.png", "/img/feed-2.png", "/img/feed-3.png"]
PAGES = ["/", "/article.html", "/lazy.html", "/feed.html"]


@dataclass
class Site:
    base: str
    requests: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def _serve(context: ssl.SSLContext | None = None) -> Iterator[Site]:
    """The site's routes on 127.0.0.1 (over TLS with `context`), every request counted."""
    table = routes()
    site = Site("")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("User-Agent", "")))
            found = table.get(self.path)
            ctype, body = found if found else ("text/plain", b"not here")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    site.base = f"{'https' if context else 'http'}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def serve() -> Iterator[Site]:
    with _serve() as site:
        yield site


@contextmanager
def serve_https(tmp: Path) -> Iterator[tuple[Site, Path]]:
    """The same site over https with a test chain (trustme); yields (site, CA PEM path)."""
    import trustme

    ca = trustme.CA()
    ca_path = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with _serve(context) as secure:
        yield secure, ca_path
