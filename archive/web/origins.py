"""Two origins on the user's port(s): the interface, and replay, kept apart (RFC 6454).

A replayed page runs scripts from the web. Served from the interface's origin, such a script
could read the interface's pages (and its CSRF token), the whole collection through `/api`,
and post to verify or capture. So replay has an origin of its own, and the browser's
same-origin policy keeps its scripts away from the interface:

- on loopback (the default), one port: the interface answers to the loopback names the user
  types (`127.0.0.1`, `localhost`, `[::1]`), replay to `replay.localhost` on the same port
  (browsers resolve every `*.localhost` name to loopback, RFC 6761 section 6.3);
- off loopback (with its access token), or when `--replay-port` is given: replay on a second
  port of the same host, which is another origin.

`Split` routes each request by the Host it names (or the port it came in on): the replay side
answers GET and HEAD for replay paths only (`/<snapshot id>/...`, `/all/...`, pywb's
`/static/...`) and nothing of the interface; the interface side sends a replay path to the
replay origin (307) and never serves replayed content. Any other Host is refused (403): a
page of another site reaching this server by a name of its own (DNS rebinding) gets nothing.
"""
from __future__ import annotations

import re
from typing import Any

from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .security import REPLAY_HOST, hostname, is_loopback
_REPLAY_PATH = re.compile(r"/(?:[0-9a-f]{64}|all|static)(?:/|$)")


def is_replay_path(path: str) -> bool:
    """Return True for a path pywb answers: a snapshot's collection, `all`, or its static files.

    >>> is_replay_path("/" + "a" * 64 + "/2026/http://x/"), is_replay_path("/api/snapshots"), is_replay_path("/")
    (True, False, False)
    """
    return _REPLAY_PATH.match(path) is not None


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_port(scope: Scope) -> int:
    """Return the port the request came in on (the listening socket's)."""
    server = scope.get("server") or ("", 0)
    return int(server[1] or 0)


def _host_of(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return str(value.decode("latin-1"))
    return ""


class Origins:
    """Where the interface and replay are, for one server: `port` the interface's, and
    `replay_port` replay's (None: `replay.localhost` on the interface's port)."""

    def __init__(self, host: str, port: int, replay_port: int | None = None):
        self.host, self.port, self.replay_port = host, port, replay_port

    def side(self, scope: Scope) -> str | None:
        """Return "replay", "interface", or None (a Host this server does not answer to)."""
        name = hostname(_host_of(scope))
        if self.replay_port is not None:
            return "replay" if local_port(scope) == self.replay_port else "interface"
        if name == REPLAY_HOST:
            return "replay"
        return "interface" if is_loopback(name) else None

    def replay_base(self, scope: Scope) -> str:
        """Return replay's root URL (no trailing slash) as the browser should reach it."""
        scheme = scope.get("scheme", "http")
        if self.replay_port is None:
            return f"{scheme}://{_netloc(REPLAY_HOST, local_port(scope) or self.port)}"
        name = hostname(_host_of(scope)) or self.host
        return f"{scheme}://{_netloc(name, self.replay_port)}"

    def interface_base(self, scope: Scope) -> str:
        """Return the interface's root URL (no trailing slash), seen from either side."""
        scheme = scope.get("scheme", "http")
        if self.replay_port is None:
            shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            return f"{scheme}://{_netloc(shown, local_port(scope) or self.port)}"
        name = hostname(_host_of(scope)) or self.host
        return f"{scheme}://{_netloc(name, self.port)}"


class Split:
    """ASGI: each request to the interface app or the replay app, by `Origins.side`."""

    def __init__(self, interface: ASGIApp, replay: ASGIApp, origins: Origins):
        self.interface, self.replay, self.origins = interface, replay, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.interface(scope, receive, send)   # lifespan (the capture jobs' end)
            return
        side = self.origins.side(scope)
        if side == "replay":
            await self.replay(scope, receive, send)
        elif side == "interface":
            await self.interface(scope, receive, send)
        else:
            await PlainTextResponse("403: this server answers to a loopback Host only",
                                    status_code=403)(scope, receive, send)


async def refuse(scope: Scope, receive: Receive, send: Send, status: int = 404) -> None:
    text = "405: replay answers GET and HEAD only" if status == 405 else "404: not a replay path"
    await PlainTextResponse(text, status_code=status, headers={"Allow": "GET, HEAD"})(scope, receive, send)


class ReplaySide:
    """ASGI: the replay origin. GET and HEAD of replay paths go to pywb (`proxy`); `/` to the
    interface (303); anything else 404 (405 for another method). Never the interface's pages."""

    def __init__(self, proxy: ASGIApp, origins: Origins):
        self.proxy, self.origins = proxy, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD"):
            await refuse(scope, receive, send, 405)
        elif path == "/":
            await RedirectResponse(self.origins.interface_base(scope) + "/", status_code=303)(scope, receive, send)
        elif is_replay_path(path):
            await self.proxy(scope, receive, send)
        else:
            await refuse(scope, receive, send)


def to_replay(origins: Origins, scope: Scope) -> Any:
    """Return a 307 to the same path and query on the replay origin."""
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8")
    target = raw.decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return RedirectResponse(origins.replay_base(scope) + target, status_code=307)
