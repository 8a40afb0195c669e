"""What the pages and the API share: the server's settings, the templates, rendering a page.

Templates autoescape every value (Jinja2 `autoescape=True`); no template marks data safe.
Every page goes out with a Content-Security-Policy allowing only this origin's own files
(no inline script, no other site), `nosniff` and `frame-ancestors 'none'`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .origins import Origins


@dataclass
class Settings:
    """What one server process serves, and how."""

    collection: Path
    replay: tuple[str, int] | None = None   # pywb's (host, port); None: no replay
    token: str | None = None
    allow_capture: bool = False
    csrf: str = ""
    allow_private: bool = False   # the capture form may fetch private addresses (trusted local use)
    origins: Origins = field(default_factory=lambda: Origins("127.0.0.1", 0))


_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_INERT = {ord(ch): f"&#{ord(ch)};" for ch in "&<>\"'{}%#`\\"}


def shown(value: object) -> object:
    """Jinja's `finalize`: every value a template prints, as inert text.

    Control characters and the characters that reorder text (bidi controls, UAX #9) become
    U+FFFD, so a title cannot make a page read backwards; then every character that could be
    markup or template source (HTML's `& < > " '`, Jinja's `{ } % #`, and backtick and
    backslash) becomes a character reference (HTML 5 section 13.1.4), as `web/replay.inert`
    does for pywb's home page: no datum can close a tag or an attribute, or open a Jinja
    block should anything ever render it again. Other values are left to autoescape.

    >>> str(shown("{{7*7}}<b>\u202e"))
    '&#123;&#123;7*7&#125;&#125;&#60;b&#62;\ufffd'
    """
    if isinstance(value, str) and not isinstance(value, Markup):
        return Markup(_CONTROLS.sub("\ufffd", value).translate(_INERT))
    return value


def templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.PackageLoader("archive.web", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, finalize=shown)
    env.filters["bytes"] = human_bytes
    env.filters["stamp"] = stamp
    return Jinja2Templates(env=env)


def stamp(value: str | None) -> str:
    """Return a 14-digit WARC-Date form, or an ISO 8601 time, for people.

    >>> stamp("20261130204009"), stamp("2026-11-30T20:40:09Z"), stamp(None)
    ('2026-11-30 20:40:09 UTC', '2026-11-30 20:40:09 UTC', '')
    """
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if len(digits) < 14:
        return str(value or "")
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]} {digits[8:10]}:{digits[10:12]}:{digits[12:14]} UTC"


def human_bytes(n: float | None) -> str:
    """Return a byte count for people, in powers of 1000.

    >>> human_bytes(999), human_bytes(1234567)
    ('999 B', '1.2 MB')
    """
    n = float(n or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"   # pragma: no cover


def settings_of(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def render(request: Request, name: str, status: int = 200, **context: object) -> Response:
    """Render template `name` with the common context (settings, CSRF token, base URL)."""
    s = settings_of(request)
    context.update(request=request, csrf=s.csrf, allow_capture=s.allow_capture,
                   replay=s.replay is not None, base=base_url(request), replay_base=replay_base(request))
    response: Response = request.app.state.templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                   "frame-ancestors 'none'; form-action 'self'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def base_url(request: Request) -> str:
    """Return this server's root URL as the browser reached it (for replay links and citations)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def replay_base(request: Request) -> str:
    """Return the replay origin's root URL (web/origins.py): replay links and citations point there."""
    return settings_of(request).origins.replay_base(request.scope)
