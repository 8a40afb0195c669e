"""Small sites reproducing other archiving tools' bug reports, as routes on the demo site.

`install(site)` adds them to a DemoSite (main host 127.0.0.1); each answers what the issue
describes, and the site's request log (`site.requests`) says what a capture asked for.
"""
from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

KITCHEN = b"""<!doctype html><html><head><title>Kitchen</title>
<link rel=prefetch href=/k/next.js><link rel=modulepreload href=/k/mod.mjs>
<style>.hero { background-image: image-set("/k/hero-1x.jpg" 1x, "/k/hero-2x.jpg" 2x) }</style>
</head><body>
<svg><use href="/k/sprite.svg#star"/><use xlink:href="/k/sprite2.svg#moon"/></svg>
<div style='background-image: image-set("/k/inline-1x.jpg" 1x, "/k/inline-2x.jpg" 2x)'></div>
<img src=/k/placeholder.gif data-src=/k/real.jpg data-srcset="/k/a.jpg 480w, /k/b.jpg 800w">
<iframe srcdoc="<img src=&quot;/k/in-srcdoc.png&quot;>"></iframe>
<a href="javascript:void(0)">js</a>
</body></html>"""


def _cookies(handler: Any) -> dict[str, str]:
    jar = SimpleCookie(handler.headers.get("Cookie", ""))
    return {name: morsel.value for name, morsel in jar.items()}


def article(handler: Any) -> None:
    """A cookie wall: 302 to itself with Set-Cookie until the cookie comes back."""
    if _cookies(handler).get("visited") == "1":
        handler.send_bytes(200, b"<!doctype html><title>Article</title><p>The text.",
                           "text/html; charset=utf-8")
    else:
        handler.send_bytes(302, b"", "text/html", [("Location", "/article"),
                                                   ("Set-Cookie", "visited=1; Path=/")])


def wall_a(handler: Any) -> None:
    """A two-step wall: /wall/a -> /wall/b (sets the cookie) -> /wall/a, then the page."""
    if _cookies(handler).get("ok") == "yes":
        handler.send_bytes(200, b"<!doctype html><title>Past the wall</title><img src=/wall/pic.png>"
                           b"<a href=/members>members</a>", "text/html")
    else:
        handler.send_bytes(302, b"", "text/html", [("Location", "/wall/b")])


def wall_b(handler: Any) -> None:
    handler.send_bytes(302, b"", "text/html", [("Location", "/wall/a"),
                                               ("Set-Cookie", "ok=yes; Path=/wall")])


def loop(handler: Any) -> None:
    """A loop cookies do not end: a new cookie every time, never the page."""
    n = int(_cookies(handler).get("n", "0")) + 1
    handler.send_bytes(302, b"", "text/html", [("Location", "/loop"), ("Set-Cookie", f"n={n}; Path=/")])


def plain_a(handler: Any) -> None:
    """A loop with no cookie: /plain/a -> /plain/b -> /plain/a; asking again changes nothing."""
    handler.send_bytes(302, b"", "text/html", [("Location", "/plain/b")])


def plain_b(handler: Any) -> None:
    handler.send_bytes(302, b"", "text/html", [("Location", "/plain/a")])


def members(handler: Any) -> None:
    """A page for holders of the session cookie a --cookies file gives."""
    if _cookies(handler).get("session") == "s3cret":
        handler.send_bytes(200, b"<!doctype html><title>Members</title>", "text/html")
    else:
        handler.send_bytes(403, b"<!doctype html><title>Log in</title>", "text/html")


def refresh(handler: Any) -> None:
    handler.send_bytes(200, b'<!doctype html><meta http-equiv=refresh content="0; URL=/r/">',
                       "text/html; charset=utf-8")


def refresh_target(handler: Any) -> None:
    handler.send_bytes(200, b"<!doctype html><title>Refreshed</title><img src=/r/pic.png>"
                       b"<a href=/r/deeper.html>deeper</a>", "text/html; charset=utf-8")


def legacy(handler: Any) -> None:
    body = '<!doctype html><title>Legacy</title><a href="/search?q=café">s</a>'.encode("cp1252")
    handler.send_bytes(200, body, "text/html; charset=windows-1252")


def page(handler: Any) -> None:
    handler.send_bytes(200, b"<!doctype html><title>Kitchen</title>", "text/html")


def kitchen(handler: Any) -> None:
    handler.send_bytes(200, KITCHEN, "text/html; charset=utf-8")


def anything(handler: Any) -> None:
    handler.send_bytes(200, b"x", "application/octet-stream")


ROUTES = {"/article": article, "/wall/a": wall_a, "/wall/b": wall_b, "/loop": loop, "/plain/a": plain_a, "/plain/b": plain_b,
          "/members": members, "/refresh": refresh, "/r/": refresh_target, "/legacy": legacy,
          "/search": page, "/kitchen": kitchen}
KITCHEN_FILES = ["/k/next.js", "/k/mod.mjs", "/k/hero-1x.jpg", "/k/hero-2x.jpg", "/k/sprite.svg",
                 "/k/sprite2.svg", "/k/inline-1x.jpg", "/k/inline-2x.jpg", "/k/placeholder.gif",
                 "/k/real.jpg", "/k/a.jpg", "/k/b.jpg", "/k/in-srcdoc.png", "/r/pic.png", "/wall/pic.png"]


def install(site: Any) -> None:
    """Add the routes to a DemoSite's main host."""
    for path, route in ROUTES.items():
        site.routes[("main", path)] = route
    for path in KITCHEN_FILES:
        site.routes[("main", path)] = anything
