"""The HTML pages: collection, search, timeline, diff, snapshot (verify, download, screenshot), capture.

Each handler reads through `views` in a worker thread and renders a template; an
ArchiveError becomes a page saying what went wrong (404 for a snapshot not found, 400 for a
bad request), never a traceback.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from archive.errors import ArchiveError, NotASnapshot, SnapshotNotFound, UsageError
from archive.read.export import export
from archive.snapshot.store import Collection

from . import views
from .evidence import Place, read_resource
from .jobs import Busy
from .render import render, replay_base, settings_of
from .security import origin_ok, same

logger = logging.getLogger(__name__)
MAX_QUERY = 500          # characters of a search or a URL asked for
MAX_SCREENSHOT = 16 << 20


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, min(int(value or default), 1_000_000))
    except ValueError:
        return default


def failure(request: Request, exc: ArchiveError) -> Response:
    """Render an error page for `exc`: 404 for a snapshot not found, 400 for bad input, 500 else."""
    status = 404 if isinstance(exc, (SnapshotNotFound, NotASnapshot)) else 400 if isinstance(exc, UsageError) else 500
    return render(request, "error.html", status=status, title="Error", message=str(exc)[:2000])


async def collection(request: Request) -> Response:
    s = settings_of(request)
    page = _int(request.query_params.get("page"))
    try:
        rows, total = await run_in_threadpool(views.listing, s.collection, page)
    except ArchiveError as exc:
        return failure(request, exc)
    pages = max(1, math.ceil(total / views.PER_PAGE))
    return render(request, "collection.html", title="Snapshots", rows=rows, total=total, page=page, pages=pages)


async def search(request: Request) -> Response:
    s = settings_of(request)
    q = request.query_params.get("q", "")[:MAX_QUERY]
    page = _int(request.query_params.get("page"))
    try:
        hits = await run_in_threadpool(views.search, s.collection, q, page)
    except ArchiveError as exc:
        return failure(request, exc)
    return render(request, "search.html", title=f"Search: {q}" if q else "Search", q=q, hits=hits, page=page,
                  more=len(hits) == views.SEARCH_PAGE)


async def timeline(request: Request) -> Response:
    s = settings_of(request)
    url = request.query_params.get("url", "")[:4 * MAX_QUERY]
    rows: list[dict[str, Any]] = []
    if url:
        try:
            rows = await run_in_threadpool(views.timeline, s.collection, url, replay_base(request))
        except ArchiveError as exc:
            return failure(request, exc)
    return render(request, "timeline.html", title="Timeline", url=url, rows=rows)


async def diff(request: Request) -> Response:
    s = settings_of(request)
    q = request.query_params
    before, after, url = q.get("before", ""), q.get("after", ""), q.get("url", "")[:4 * MAX_QUERY]
    try:
        rows = await run_in_threadpool(views.text_diff, s.collection, before, after, url)
    except ArchiveError as exc:
        return failure(request, exc)
    return render(request, "diff.html", title="Text diff", before=before, after=after, url=url, rows=rows)


async def snapshot(request: Request, report: Any = None, status: int = 200) -> Response:
    s = settings_of(request)
    sid = request.path_params["sid"]
    try:
        info = await run_in_threadpool(views.snapshot, s.collection, sid, replay_base(request))
    except ArchiveError as exc:
        return failure(request, exc)
    types = info["details"].types
    return render(request, "snapshot.html", status=status, title=f"Snapshot {sid[:12]}", info=info,
                  d=info["details"], row=info["row"], report=report, types=types)


def _csrf_ok(request: Request, form: Any) -> bool:
    s = settings_of(request)
    token = form.get("csrf") if form is not None else None
    return origin_ok(request) and (same(token, s.csrf) or same(request.headers.get("x-csrf-token"), s.csrf))


async def verify(request: Request) -> Response:
    s = settings_of(request)
    form = await request.form(max_files=0, max_fields=8)
    if not _csrf_ok(request, form):
        return render(request, "error.html", status=403, title="Refused",
                      message="This form is out of date or came from another site: reload the page and try again.")
    sid = request.path_params["sid"]
    try:
        report = await run_in_threadpool(views.run_verify, s.collection, sid)
    except ArchiveError as exc:
        return failure(request, exc)
    return await snapshot(request, report=report)


EXPORTS = threading.BoundedSemaphore(2)   # .wacz exports running at once; more are told to retry
STARTED_HERE = ("same-origin", "none")     # Sec-Fetch-Site of a link followed here, or a typed URL


async def download(request: Request) -> Response:
    """The snapshot as a .wacz (read/export), built in a temporary folder removed once sent.

    An export reads and writes the whole snapshot, so it starts only from this interface: a
    request another site (the replay origin included) makes a browser send, which says so in
    `Sec-Fetch-Site` (Fetch Metadata), gets 403; at most two run at once, the rest get 503
    with Retry-After."""
    s = settings_of(request)
    if request.headers.get("sec-fetch-site", "none") not in STARTED_HERE:
        raise HTTPException(403, "a download starts from this interface's own pages")
    if not EXPORTS.acquire(blocking=False):
        return Response("busy: two exports are running; try again shortly\n", status_code=503,
                        media_type="text/plain", headers={"Retry-After": "5"})
    folder = Path(tempfile.mkdtemp(prefix="archive-wacz-"))

    def tidy() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        EXPORTS.release()
    try:
        sid = views.snapshot_id(request.path_params["sid"], s.collection)
        dest = await run_in_threadpool(export, sid, s.collection, wacz=folder / f"{sid[:12]}.wacz")
    except BaseException as exc:
        tidy()
        if isinstance(exc, ArchiveError):
            return failure(request, exc)
        raise
    return FileResponse(dest, media_type="application/wacz", filename=f"{sid[:12]}.wacz",
                        background=BackgroundTask(tidy))


async def screenshot(request: Request) -> Response:
    s = settings_of(request)
    try:
        sid = views.snapshot_id(request.path_params["sid"], s.collection)
        found = await run_in_threadpool(_screenshot, s.collection, sid)
    except ArchiveError as exc:
        return failure(request, exc)
    if found is None:
        raise HTTPException(404)
    mime, body = found
    return Response(body, media_type=mime, headers={"X-Content-Type-Options": "nosniff",
                                                    "Content-Security-Policy": "default-src 'none'",
                                                    "Cache-Control": "max-age=86400, immutable"})


def _screenshot(collection: Path, sid: str) -> tuple[str, bytes] | None:
    """Return (image type, bytes) of the snapshot's first `urn:view:` record, or None."""
    with Collection(collection).open(sid) as package:
        for entry in package.index():
            if entry.url.startswith("urn:view:"):
                mime = (entry.mime or "").split(";")[0].strip().lower()
                if mime not in ("image/png", "image/jpeg", "image/webp"):
                    continue
                return mime, read_resource(package, Place(entry.filename, entry.offset), MAX_SCREENSHOT)
    return None


async def capture_form(request: Request) -> Response:
    s = settings_of(request)
    if not s.allow_capture:
        return render(request, "error.html", status=404, title="Capture is off",
                      message="This server does not capture: start it with `archive serve --allow-capture`.")
    jobs = request.app.state.jobs
    if request.method == "GET":
        return render(request, "capture.html", title="Capture", error=None, block_private=jobs.block_private(),
                      browser=jobs.browser_available(),
                      jobs=list(jobs.jobs.values()))
    form = await request.form(max_files=0, max_fields=8)
    if not _csrf_ok(request, form):
        return render(request, "error.html", status=403, title="Refused",
                      message="This form is out of date or came from another site: reload the page and try again.")
    url = str(form.get("url", "")).strip()[:4 * MAX_QUERY]
    problem = None
    if not url.lower().startswith(("http://", "https://")):
        problem = "Give an http:// or https:// URL."
    try:
        depth = int(str(form.get("depth", "0")))
    except ValueError:
        depth, problem = 0, "Depth is a whole number."
    if problem is None:
        try:
            job = await jobs.start(url, depth, browser=form.get("browser") == "on")
        except Busy:
            problem = "Too many captures are running; try again when one has finished."
        except ValueError as exc:
            problem = str(exc)
    if problem is not None:
        return render(request, "capture.html", status=400, title="Capture", error=problem,
                      block_private=jobs.block_private(), browser=jobs.browser_available(), jobs=list(jobs.jobs.values()))
    return RedirectResponse(request.url_for("capture_job", job=job.id), status_code=303)


def _job(request: Request) -> Any:
    job = request.app.state.jobs.jobs.get(request.path_params["job"])
    if job is None or not settings_of(request).allow_capture:
        raise HTTPException(404)
    return job


async def capture_job(request: Request) -> Response:
    job = _job(request)
    progress = next((e for e in reversed(job.events) if e["type"] == "progress"), None)
    done = next((e for e in job.events if e["type"] == "done"), None)
    messages = [e["text"] for e in job.events if e["type"] == "message"]
    return render(request, "job.html", title="Capture under way", job=job, progress=progress, done=done,
                  messages=messages)


async def capture_events(request: Request) -> Response:
    """Server-sent events: one `data:` JSON line per event of the capture, until it is done."""
    job = _job(request)
    jobs = request.app.state.jobs

    async def stream() -> AsyncIterator[bytes]:
        async for event in jobs.events(job):
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def not_found(request: Request) -> Response:
    return render(request, "error.html", status=404, title="Not found", message="There is no such page here.")


async def not_found_error(request: Request, exc: Exception) -> Response:
    return await not_found(request)


async def server_error(request: Request, exc: Exception) -> Response:
    logger.error("web: %s: %s", type(exc).__name__, exc)
    return render(request, "error.html", status=500, title="Error", message="Something went wrong on the server.")
