"""Who may use the web application: an access token off loopback, a CSRF token on every POST.

`serve` binds 127.0.0.1 unless told otherwise; on any other address it needs a token, and
then every request must carry it: an `Authorization: Bearer TOKEN` header (the JSON API), or
the `archive_token` cookie the browser gets by opening `/?token=TOKEN` once (HttpOnly,
SameSite=Strict), on the interface's port and replay's alike. Without a token, only a Host
naming a loopback address (or `replay.localhost`, replay's origin) is answered (DNS rebinding). Every POST carries the CSRF token of this server process, which only its
own pages hold (a form field `csrf` or an `X-CSRF-Token` header), and comes from a page of
this origin when the browser says where it comes from (Origin, RFC 6454 section 7).
Comparisons are constant-time (`hmac.compare_digest`).
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from archive.errors import UsageError

COOKIE = "archive_token"
REPLAY_HOST = "replay.localhost"   # replay's own origin on loopback (web/origins.py)
MAX_TOKEN_FILE = 4096


def is_loopback(host: str) -> bool:
    """Return True for an address only this machine reaches (127.0.0.0/8, ::1, localhost).

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_token(host: str, token: str | None, token_file: Path | None) -> str | None:
    """Return the token `serve` requires (None on loopback without one); raise UsageError when
    `host` is not a loopback address and no token is given, or the token file is unreadable."""
    if token_file is not None:
        try:
            with open(token_file, "rb") as f:
                token = f.read(MAX_TOKEN_FILE).decode("utf-8").strip()
        except (OSError, UnicodeError) as exc:
            raise UsageError(f"cannot read --token-file {token_file}: {exc}") from None
    if token is not None and (len(token) < 16 or not token.isprintable() or " " in token):
        raise UsageError("the access token must be at least 16 printable characters, no spaces")
    if token is None and not is_loopback(host):
        raise UsageError(f"serving on {host} (not loopback) needs --token or --token-file: "
                         "anyone who reaches that address could read the collection")
    return token


def new_csrf() -> str:
    """Return a fresh CSRF token (32 random bytes, URL-safe base64)."""
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class TokenGate:
    """ASGI middleware: refuse every HTTP request without the access token (401)."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.token is None:
            # no token: loopback only, and a page of another site reaching it by a name of its
            # own that resolves here (DNS rebinding) is refused by the Host it sends
            name = hostname(request.headers.get("host", ""))
            if is_loopback(name) or name == REPLAY_HOST:
                await self.app(scope, receive, send)
            else:
                await PlainTextResponse("403: this server answers to a loopback Host only",
                                        status_code=403)(scope, receive, send)
            return
        given = request.query_params.get("token")
        if given is not None and same(given, self.token):
            response: Response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth[:7].lower() == "bearer " else None
        if same(bearer, self.token) or same(request.cookies.get(COOKIE), self.token):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse("401: this server needs its access token (open /?token=TOKEN once, "
                                "or send Authorization: Bearer TOKEN)", status_code=401)(scope, receive, send)


def hostname(host: str) -> str:
    """Return the host name of a Host header value ("[::1]:8080" -> "::1").

    >>> hostname("[::1]:8080"), hostname("127.0.0.1:80"), hostname("localhost")
    ('::1', '127.0.0.1', 'localhost')
    """
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def origin_ok(request: Request) -> bool:
    """Return False when the browser says the request comes from another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
