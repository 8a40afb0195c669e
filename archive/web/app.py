"""The web application `archive serve` runs: pages, the JSON API, and replay passed to pywb.

Two origins (web/origins.py): the interface's routes are `/` the collection, `/search`,
`/timeline`, `/snapshots/<id>` (with `/verify` POST, `/cite`, `/download.wacz`, `/screenshot`),
`/capture` (only with `allow_capture`), `/api/...` (JSON, see api.py), `/assets/...` (the
stylesheet and a small script); a replay path asked of it is sent on to the replay origin.
The replay origin answers replay paths only (`/<id>/<timestamp>/<url>`, `/all/...`,
`/static/...`), GET and HEAD, passed to pywb through `proxy.ReplayProxy`. Templates autoescape
every value (Jinja2, `autoescape=True`) and none marks data safe.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from . import api, pages
from .jobs import CaptureJobs
from .origins import ReplaySide, Split, is_replay_path, refuse, to_replay
from .proxy import ReplayProxy
from .render import Settings, templates
from .security import TokenGate, new_csrf


def create_app(settings: Settings) -> ASGIApp:
    """Return the ASGI application for `settings`: the interface and replay, split by origin."""
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

    async def elsewhere(request: Request) -> Response:
        if settings.replay is not None and request.method in ("GET", "HEAD") and is_replay_path(request.url.path):
            response: Response = to_replay(settings.origins, request.scope)
            return response
        return await pages.not_found(request)
    routes.append(Route("/{path:path}", elsewhere, methods=["GET", "HEAD", "POST"]))
    jobs = CaptureJobs(settings.collection, allow_private=settings.allow_private)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            jobs.stop()   # no capture outlives the server

    app = Starlette(routes=routes, exception_handlers={404: pages.not_found_error, 500: pages.server_error},
                    lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = templates()
    app.state.jobs = jobs
    replay: ASGIApp = refuse
    if settings.replay is not None:
        proxy = ReplayProxy(*settings.replay)
        replay = ReplaySide(Starlette(routes=[Route("/{path:path}", proxy.handle, methods=["GET", "HEAD"])]),
                            settings.origins)
    return TokenGate(Split(app, replay, settings.origins), token=settings.token)
