"""A small site for the web interface's tests: a page with an empty script, an empty stylesheet,
an empty worker script and an image; a page whose text changes when the test says so; and a
page with a hostile title and URL; a page whose script attacks the interface from replay
(`/attack`: reads `/api/snapshots` and the interface's pages, posts to verify and capture,
and writes what it got into `data-attack` on its root element); every path asked is noted."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# a 1x1 PNG
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a5f9d3e30000000049454e44ae426082")
HOSTILE_TITLE = "<script>window.pwned=1</script>{{7*7}}{% raw %}\u202e<img src=x onerror=pwned=2>"
WORD = "quetzalcoatlus"   # in the article's text only, for search


# what a hostile captured page's script tries once replayed: each outcome "ok STATUS BODY" or
# "failed ERROR", collected in document.documentElement.dataset.attack (JSON)
ATTACK = """
(async () => {
  const out = {};
  const nat = (() => { try { const f = document.createElement('iframe'); document.body.appendChild(f);
                             return f.contentWindow.fetch.bind(window); } catch (e) { return fetch; } })();
  async function attempt(name, url, init, how) {
    try {
      const r = await (how || fetch)(url, init);
      out[name] = 'ok ' + r.status + ' ' + (await r.text()).slice(0, 300);
    } catch (e) { out[name] = 'failed ' + e; }
  }
  let csrf = 'none';
  for (const u of ['/', 'INTERFACE/']) {
    try { const m = (await (await fetch(u)).text()).match(/name="csrf-token" content="([^"]+)"/);
          if (m) csrf = m[1]; } catch (e) {}
  }
  out.csrf = csrf;
  const form = {method: 'POST', body: 'url=SITE/stolen&depth=0&csrf=' + encodeURIComponent(csrf),
                headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': csrf}};
  await attempt('api_relative', '/api/snapshots');
  await attempt('api_interface', 'INTERFACE/api/snapshots');
  await attempt('api_interface_native', 'INTERFACE/api/snapshots', {}, nat);
  await attempt('api_dotted', location.pathname.split('/').slice(0, 2).join('/') + '/../api/snapshots');
  await attempt('page_interface', 'INTERFACE/');
  await attempt('verify_api', 'INTERFACE/api/snapshots/VICTIM/verify', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
  await attempt('verify_here', '/api/snapshots/VICTIM/verify', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
  await attempt('verify_form', 'INTERFACE/snapshots/VICTIM/verify', {...form, mode: 'no-cors'});
  await attempt('capture_form', 'INTERFACE/capture', {...form, mode: 'no-cors'});
  await attempt('capture_here', '/capture', form);
  await attempt('capture_here_native', '/capture', form, nat);
  document.documentElement.dataset.attack = JSON.stringify(out);
})();
"""


class WebappSite:
    """Serve on 127.0.0.1; `version` changes the text of /news."""

    def __init__(self) -> None:
        self.version = 1
        self.interface = ""   # the interface's origin, for /attack
        self.victim = ""      # a snapshot id, for /attack's verify
        self.asked: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                site.asked.append(self.path)
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
        if path == "/attack":
            return "text/html; charset=utf-8", (
                "<!doctype html><html lang=en><head><title>Attack</title>"
                "<link rel=stylesheet href='/style.css'></head><body><p>Nothing to see.</p>"
                "<img src='/i.png' alt='dot'>"
                f"<script>{ATTACK.replace('INTERFACE', self.interface).replace('VICTIM', self.victim).replace('SITE', self.url)}"
                "</script></body></html>").encode()
        if path == "/style.css":
            return "text/css", b"body { background: rgb(1, 2, 3); }"
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
