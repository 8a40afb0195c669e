"""`archive qa`: replay each page of a snapshot in headless Chromium and compare it with the capture.

Each page is loaded from the local pywb (`web/replay.py`) in a fresh browser context at the
capture's viewport, with every request to anywhere but that pywb refused (and counted), then
scrolled to its end as a browser capture does; then compared with what the capture recorded
(`web/evidence.py`): the screenshot pixel by pixel and the visible text word by word
(`web/compare.py`), and every subresource the replay asked for by its status at capture
(CDXJ index) and at replay (the browser's responses). The results go to `qa.json` and the
difference images to a folder beside the snapshot, `<collection>/.qa/<snapshot id>/` by
default: never inside it, so the snapshot's bytes never change.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive.browser import PageFailed, PagePool, chromium
from archive.errors import ArchiveError, NotASnapshot, UsageError
from archive.formats.urls import canonicalize
from archive.read.find import replay_url
from archive.snapshot.reader import Package
from archive.snapshot.store import Collection, snapshot_id_of

from . import evidence
from .compare import BadImage, compare_images, text_match
from .qarender import render, render_page
from .replay import Replay

logger = logging.getLogger(__name__)

QA_FOLDER = ".qa"
DEAD_PROXY = "http://127.0.0.1:9"   # the discard port: nothing answers a proxy there


def no_way_out(replay: str) -> tuple[str, ...]:
    """Chromium flags sending every connection but those to `replay` (pywb's root URL) to a
    proxy that is not there, so a replayed page reaches nothing else by routes playwright's
    request routing does not see: WebRTC's TURN over TCP (the browser's
    disable_non_proxied_udp policy leaves it no UDP at all).

    >>> no_way_out("http://127.0.0.1:8090")
    ('--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=<-loopback>;127.0.0.1:8090')
    """
    return (f"--proxy-server={DEAD_PROXY}", f"--proxy-bypass-list=<-loopback>;{urlsplit(replay).netloc}")
PAGE_GRACE = 20.0   # seconds a replayed page may run past `timeout` before its page is closed
DEFAULT_MIN_MATCH = 0.95
PAGES_AT_ONCE = 2             # pages replayed at once (one Chromium, a page pool)
_ARCHIVED = re.compile(r"^/(?P<coll>[0-9a-f]{64})/(?P<ts>\d{1,14})(?:[a-z]{2}_)?/(?P<url>.+)$")


@dataclass(frozen=True)
class Subresource:
    """One URL a replayed page asked for: its status at capture (None: not captured, or no
    status) and at replay (None: the request failed)."""

    url: str
    capture: int | None
    replay: int | None

    @property
    def ok_capture(self) -> bool:
        return self.capture is not None and self.capture < 400

    @property
    def ok_replay(self) -> bool:
        return self.replay is not None and self.replay < 400


@dataclass(frozen=True)
class PageQA:
    """The check of one page. Matches are shares 0..1 (None: nothing to compare); `diff_image`
    is a file name in the report's folder; `refused` the requests to anywhere but the replay."""

    url: str
    timestamp: str
    replay_url: str
    viewport: tuple[int, int]
    screenshot_match: float | None = None
    text_match: float | None = None
    text_source: str = evidence.TEXT_NONE
    capture_screenshot: bool = False
    diff_image: str | None = None
    replay_image: str | None = None
    status: Subresource | None = None     # the page's own answer at capture and at replay
    subresources: tuple[Subresource, ...] = ()
    refused: tuple[str, ...] = ()
    error: str | None = None

    @property
    def broken(self) -> list[Subresource]:
        """Subresources answered well at capture and badly at replay."""
        return [s for s in self.subresources if s.ok_capture and not s.ok_replay]

    def passes(self, min_match: float) -> bool:
        """True when the page replayed (answered well at replay when it was at capture) and no
        match it has is under `min_match` (a text match counts when both texts are a browser's;
        a static capture's HTML text is reported only)."""
        if self.error is not None:
            return False
        if self.status is not None and self.status.ok_capture and not self.status.ok_replay:
            return False   # captured well, lost in replay
        if self.screenshot_match is not None and self.screenshot_match < min_match:
            return False
        browser_text = self.text_source in (evidence.TEXT_RECORD, evidence.TEXT_PAGES)
        return not (browser_text and self.text_match is not None and self.text_match < min_match)

    def to_json(self, min_match: float) -> dict[str, Any]:
        subs = self.subresources
        return {"url": self.url, "timestamp": self.timestamp, "replay_url": self.replay_url,
                "viewport": {"width": self.viewport[0], "height": self.viewport[1]},
                "screenshot_match": self.screenshot_match, "capture_screenshot": self.capture_screenshot,
                "text_match": self.text_match, "text_source": self.text_source,
                "diff_image": self.diff_image, "replay_image": self.replay_image,
                "status": {"capture": self.status.capture, "replay": self.status.replay} if self.status else None,
                "subresources": {"count": len(subs),
                                 "capture_ok": sum(s.ok_capture for s in subs),
                                 "capture_bad": sum(not s.ok_capture for s in subs),
                                 "replay_ok": sum(s.ok_replay for s in subs),
                                 "replay_bad": sum(not s.ok_replay for s in subs),
                                 "list": [vars(s) for s in subs]},
                "broken": [s.url for s in self.broken], "refused": list(self.refused),
                "error": self.error, "passed": self.passes(min_match)}


@dataclass(frozen=True)
class QAReport:
    """The check of a snapshot: its id and folder, where the report went, and every page."""

    snapshot_id: str
    folder: Path
    out: Path
    min_match: float
    pages: tuple[PageQA, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(p.passes(self.min_match) for p in self.pages)

    def to_json(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "folder": str(self.folder), "out": str(self.out),
                "min_match": self.min_match, "ok": self.ok,
                "pages": [p.to_json(self.min_match) for p in self.pages]}


def qa(ref: str, collection: Path | str | None = None, *, out: Path | None = None,
       min_match: float = DEFAULT_MIN_MATCH, timeout: float = 30.0, limit: int | None = None,
       browser: Any = None) -> QAReport:
    """Replay the pages of snapshot `ref` (a folder, id or unique id prefix) and compare each
    with its capture; write `qa.json` and PNG difference images into `out` (default
    `<collection>/.qa/<snapshot id>/`, which must not be inside the snapshot) and return the
    report. `timeout` bounds each page's load in seconds; `limit` the pages checked; `browser`
    a connected playwright Browser to use (default: a Chromium of its own, `archive.browser`,
    whose process group ends with the check; playwright's sync API allows one driver per thread).

    Raises UsageError (a bad `min_match` or `out`), NotASnapshot, SnapshotNotFound,
    ReplayUnavailable (no pywb), BrowserError (no Chromium), StorageError-like OSError
    wrapped in ArchiveError when `out` cannot be written.
    """
    if not 0.0 <= min_match <= 1.0:
        raise UsageError(f"--min-match must be between 0 and 1, not {min_match}")
    if Path(ref).is_file():
        raise UsageError(f"qa replays a snapshot folder of a collection, not a file: {ref}")
    folder = Collection(collection).resolve(ref).resolve()
    snapshot_id = snapshot_id_of(folder)
    root = folder.parent
    out = (out or root / QA_FOLDER / snapshot_id).resolve()
    if out == folder or folder in out.parents:
        raise UsageError(f"the qa folder {out} is inside the snapshot: its bytes must not change")
    with Package.open(folder) as package:
        captured, places = evidence.records(package)
        pages = list(evidence.pages(package, places, limit))
        shots = {p.url: _screenshot(package, p) for p in pages if p.screenshot is not None}
    _make_folder(out)
    with Replay(root, port=_free_port()) as replay, ExitStack() as stack:
        base = replay.url
        starts = [_start(replay_url(base, snapshot_id, p.timestamp, p.url), p, shots.get(p.url)) for p in pages]
        html = [p.text_source == evidence.TEXT_HTML for p in pages]
        allowed = {urlsplit(base).netloc}
        seen: list[dict[str, Any] | str | None]
        if browser is not None:   # one page at a time, on the caller's thread
            seen = [_attempt(partial(render, browser, r.replay_url, r.viewport, timeout, allowed, h))
                    if r.error is None else None for r, h in zip(starts, html)]
        else:                     # PAGES_AT_ONCE pages at once, each pool thread its own connection
            running = stack.enter_context(chromium(extra_args=no_way_out(base)))
            pool = stack.enter_context(PagePool(running, size=PAGES_AT_ONCE, job_timeout=timeout + PAGE_GRACE))
            futures = [pool.submit(partial(render_page, url=r.replay_url, viewport=r.viewport, timeout=timeout,
                                           allowed=allowed, html=h)) if r.error is None else None
                       for r, h in zip(starts, html)]
            try:
                seen = [_attempt(f.result) if f is not None else None for f in futures]
            except BaseException:   # Ctrl-C: the pages not begun are not rendered before the pool closes
                for f in futures:
                    if f is not None:
                        f.cancel()
                raise
    results = []
    for n, (start, page, what) in enumerate(zip(starts, pages, seen), 1):
        logger.info("qa %d/%d %s", n, len(pages), page.url[:200])
        results.append(_finish(start, page, shots.get(page.url), what, snapshot_id, captured, out, n))
    report = QAReport(snapshot_id, folder, out, min_match, tuple(results))
    _write(out / "qa.json", json.dumps(report.to_json(), indent=2).encode("utf-8"))
    return report


def _attempt(load: Callable[[], dict[str, Any]]) -> dict[str, Any] | str:
    """Return what a replay saw, or why it failed (a playwright error, a page that crashed twice)."""
    from playwright.sync_api import Error

    try:
        return load()
    except Error as exc:
        return f"replay failed: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
    except PageFailed as exc:
        return f"replay failed: {exc.reason[:300]}"


def _screenshot(package: Package, page: evidence.PageEvidence) -> bytes | str:
    """Return the capture's screenshot of a page, or why it cannot be read."""
    assert page.screenshot is not None
    try:
        return evidence.read_resource(package, page.screenshot, evidence.MAX_SCREENSHOT)
    except NotASnapshot as exc:
        return f"capture screenshot unreadable: {exc.why}"
    except Exception as exc:   # warcio's parse errors have no common base
        return f"capture screenshot unreadable: {type(exc).__name__}"


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveError(f"cannot make the qa folder {out}: {exc.strerror or exc}") from None


def _write(path: Path, data: bytes) -> None:
    try:
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as exc:
        raise ArchiveError(f"cannot write {path}: {exc.strerror or exc}") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(url: str, page: evidence.PageEvidence, shot: bytes | str | None) -> PageQA:
    """Return a page's result before replay: with an error when it cannot be replayed."""
    result = PageQA(page.url, page.timestamp, url, page.viewport, text_source=page.text_source,
                    capture_screenshot=shot is not None)
    if not page.url.startswith(("http://", "https://")):
        return _replace(result, error="not an http(s) URL: not replayed")
    if isinstance(shot, str):
        return _replace(result, error=shot)
    return result


def _finish(result: PageQA, page: evidence.PageEvidence, shot: bytes | str | None, seen: dict[str, Any] | str | None,
            snapshot_id: str, captured: dict[str, int | None], out: Path, n: int) -> PageQA:
    """Compare what the replay of one page showed with its capture; write its images."""
    if result.error is not None or seen is None:
        return result
    if isinstance(seen, str):
        return _replace(result, error=seen)
    own, subs = _subresources(seen["answers"], seen["failed"], snapshot_id, page.url, captured)
    result = _replace(result, status=own, subresources=subs, refused=tuple(seen["refused"]),
                      text_match=text_match(page.text, seen["text"]) if page.text_source != evidence.TEXT_NONE else None)
    replay_name = f"{n:04d}-replay.png"
    _write(out / replay_name, seen["screenshot"])
    result = _replace(result, replay_image=replay_name)
    if not isinstance(shot, bytes):
        return result
    try:
        match = compare_images(shot, seen["screenshot"])
    except BadImage as exc:
        return _replace(result, error=str(exc))
    diff_name = f"{n:04d}-diff.png"
    _write(out / diff_name, match.diff_png)
    return _replace(result, screenshot_match=match.match, diff_image=diff_name)


def _replace(page: PageQA, **changes: Any) -> PageQA:
    return PageQA(**{**vars(page), **changes})


def _subresources(answers: dict[str, int], failed: set[str], snapshot_id: str, page_url: str,
                  captured: dict[str, int | None]) -> tuple[Subresource, tuple[Subresource, ...]]:
    """Return the page itself and each other archived URL the replay asked for, with its
    status at capture (index and records) and at replay (None when the request failed)."""
    found: dict[str, int | None] = {}
    for requested in [*answers, *(u for u in failed if u not in answers)]:
        parts = urlsplit(requested)
        m = _ARCHIVED.match(parts.path + (f"?{parts.query}" if parts.query else ""))
        if not m or m.group("coll") != snapshot_id:
            continue   # pywb's own scripts and styles: not the page's
        original = m.group("url")
        found[original] = None if requested in failed and requested not in answers else answers[requested]
    page_key = _key(page_url)
    own = [status for u, status in found.items() if _key(u) == page_key]
    return (Subresource(page_url, captured.get(page_key), own[-1] if own else None),
            tuple(Subresource(u, captured.get(_key(u)), status)
                  for u, status in sorted(found.items()) if _key(u) != page_key))


def _key(url: str) -> str:
    try:
        return canonicalize(url)
    except Exception:   # a URL the replay made up that does not parse: kept as it is
        return url
