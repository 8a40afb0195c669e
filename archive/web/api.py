"""The JSON API, mirroring the command line's `--json` outputs.

GET  /api/snapshots?page=N                 the collection, newest first (catalogue rows; `total`)
GET  /api/snapshots/<id>                   `archive show --json`
GET  /api/snapshots/<id>/cite?format=F     `archive cite --format F` (text/plain; json: the fields)
POST /api/snapshots/<id>/verify            `archive verify --json` (needs the X-CSRF-Token header of
                                           this server's pages, or with --token its Bearer token)
GET  /api/search?q=WORDS&page=N            search hits, the matched passage as (text, is_match) segments
GET  /api/timemap?url=URL                  every capture of URL, oldest first, first/same/changed/unknown
Errors: {"error": message} with 400 (bad request), 403 (no CSRF token), 404 (no such snapshot).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from archive.errors import ArchiveError, NotASnapshot, SnapshotNotFound, UsageError

from . import views
from .render import replay_base, settings_of
from .security import origin_ok, same


def routes() -> list[Route]:
    """Return the API's routes."""
    return [Route("/api/snapshots", snapshots), Route("/api/snapshots/{sid}", snapshot),
            Route("/api/snapshots/{sid}/cite", cite), Route("/api/snapshots/{sid}/verify", verify, methods=["POST"]),
            Route("/api/search", search), Route("/api/timemap", timemap)]


def _error(exc: ArchiveError) -> JSONResponse:
    status = 404 if isinstance(exc, (SnapshotNotFound, NotASnapshot)) else 400 if isinstance(exc, UsageError) else 500
    return JSONResponse({"error": str(exc)[:2000]}, status_code=status)


def _page(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", "1")), 1_000_000))
    except ValueError:
        return 1


async def snapshots(request: Request) -> Response:
    s = settings_of(request)
    page = _page(request)
    try:
        rows, total = await run_in_threadpool(views.listing, s.collection, page)
    except ArchiveError as exc:
        return _error(exc)
    return JSONResponse({"total": total, "page": page, "per_page": views.PER_PAGE,
                         "snapshots": [views.row_json(r) for r in rows]})


async def snapshot(request: Request) -> Response:
    s = settings_of(request)
    try:
        sid = views.snapshot_id(request.path_params["sid"], s.collection)
        from archive.read.find import details
        found = await run_in_threadpool(details, sid, s.collection)
    except ArchiveError as exc:
        return _error(exc)
    return JSONResponse(found.to_json())


async def cite(request: Request) -> Response:
    s = settings_of(request)
    fmt = request.query_params.get("format", "text")
    try:
        text = await run_in_threadpool(views.cite, s.collection, request.path_params["sid"], fmt, replay_base(request))
    except ArchiveError as exc:
        return _error(exc)
    media = {"json": "application/json", "csl-json": "application/vnd.citationstyles.csl+json",
             "bibtex": "application/x-bibtex", "ris": "application/x-research-info-systems"}.get(fmt, "text/plain")
    return PlainTextResponse(text, media_type=media)


async def verify(request: Request) -> Response:
    s = settings_of(request)
    auth = request.headers.get("authorization", "")
    bearer = s.token is not None and auth[:7].lower() == "bearer " and same(auth[7:], s.token)
    # a browser never adds an Authorization header of its own accord: a Bearer token is no CSRF risk
    if not (bearer or (origin_ok(request) and same(request.headers.get("x-csrf-token"), s.csrf))):
        return JSONResponse({"error": "POST needs this server's X-CSRF-Token header"}, status_code=403)
    try:
        report = await run_in_threadpool(views.run_verify, s.collection, request.path_params["sid"])
    except ArchiveError as exc:
        return _error(exc)
    return JSONResponse(report.to_json(), status_code=200)


async def search(request: Request) -> Response:
    s = settings_of(request)
    q = request.query_params.get("q", "")[:500]
    try:
        hits = await run_in_threadpool(views.search, s.collection, q, _page(request))
    except ArchiveError as exc:
        return _error(exc)
    return JSONResponse({"q": q, "hits": [_hit(h) for h in hits]})


def _hit(hit: Any) -> dict[str, Any]:
    data = asdict(hit)
    data["snippet"] = [[text, bool(match)] for text, match in hit.snippet]
    return data


async def timemap(request: Request) -> Response:
    s = settings_of(request)
    url = request.query_params.get("url", "")[:2000]
    if not url:
        return JSONResponse({"error": "give ?url=URL"}, status_code=400)
    try:
        rows = await run_in_threadpool(views.timeline, s.collection, url, replay_base(request))
    except ArchiveError as exc:
        return _error(exc)
    return JSONResponse({"url": url, "captures": rows})
