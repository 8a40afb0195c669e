"""The web application `archive serve` runs: pages, the JSON API, and replay passed to pywb.

Routes (one port for the user): `/` the collection, `/search`, `/timeline`, `/snapshots/<id>`
(with `/verify` POST, `/cite`, `/download.wacz`, `/screenshot`), `/capture` (only with
`allow_capture`), `/api/...` (JSON, see api.py), `/assets/...` (the stylesheet and a small
script), and everything else to pywb (`/<id>/<timestamp>/<url>`, `/all/...`, `/static/...`)
through `proxy.ReplayProxy`. Templates autoescape every value (Jinja2, `autoescape=True`) and
none marks data safe.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import api, pages
from .jobs import CaptureJobs
from .proxy import ReplayProxy
from .render import Settings, templates
from .security import TokenGate, new_csrf


def create_app(settings: Settings) -> Starlette:
    """Return the ASGI application for `settings`."""
    settings.csrf = settings.csrf or new_csrf()
    routes = [
        Route("/", pages.collection, name="collection"),
        Route("/search", pages.search, name="search"),
        Route("/timeline", pages.timeline, name="timeline"),
        Route("/diff", pages.diff, name="diff"),
        Route("/snapshots/{sid}", pages.snapshot, name="snapshot"),
        Route("/snapshots/{sid}/verify", pages.verify, methods=["POST"], name="verify"),
        Route("/snapshots/{sid}/download.wacz", pages.download, name="download"),
        Route("/snapshots/{sid}/screenshot", pages.screenshot, name="screenshot"),
        Route("/capture", pages.capture_form, methods=["GET", "POST"], name="capture"),
        Route("/capture/{job}", pages.capture_job, name="capture_job"),
        Route("/capture/{job}/events", pages.capture_events, name="capture_events"),
        *api.routes(),
        Mount("/assets", StaticFiles(packages=[("archive.web", "assets")]), name="assets"),
    ]
    if settings.replay is not None:
        proxy = ReplayProxy(*settings.replay)
        routes.append(Route("/{path:path}", proxy.handle, methods=["GET", "HEAD", "POST"]))
    else:
        routes.append(Route("/{path:path}", pages.not_found))
    jobs = CaptureJobs(settings.collection)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            jobs.stop()   # no capture outlives the server

    app = Starlette(routes=routes, middleware=[Middleware(TokenGate, token=settings.token)],
                    exception_handlers={404: pages.not_found_error, 500: pages.server_error},
                    lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = templates()
    app.state.jobs = jobs
    return app


