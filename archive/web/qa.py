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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive.browser import chromium
from archive.errors import ArchiveError, BrowserError, NotASnapshot, UsageError
from archive.formats.html import visible_text
from archive.formats.urls import canonicalize
from archive.read.find import replay_url
from archive.snapshot.reader import Package
from archive.snapshot.store import Collection, snapshot_id_of

from . import evidence
from .compare import BadImage, compare_images, text_match
from .replay import Replay

logger = logging.getLogger(__name__)

QA_FOLDER = ".qa"
DEFAULT_MIN_MATCH = 0.95
MAX_TEXT = 4 << 20            # characters of replay text taken from the browser
SCROLL_STEPS = 60             # at most this many viewport heights scrolled
_ARCHIVED = re.compile(r"^/(?P<coll>[0-9a-f]{64})/(?P<ts>\d{1,14})(?:[a-z]{2}_)?/(?P<url>.+)$")
_SCROLL = """async ([steps, pause]) => {
  let n = 1;
  for (; n < steps; n++) {
    const y = n * window.innerHeight;
    if (y >= document.documentElement.scrollHeight) break;
    window.scrollTo(0, y);
    await new Promise(r => setTimeout(r, pause));
  }
  window.scrollTo(0, 0);
  return n > 1;
}"""


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
    results: list[PageQA] = []
    with Replay(root, port=_free_port()) as replay, ExitStack() as stack:
        if browser is None:
            browser = _connect(stack)
        for n, page in enumerate(pages, 1):
            logger.info("qa %d/%d %s", n, len(pages), page.url[:200])
            results.append(_check(browser, replay.url, snapshot_id, page, shots.get(page.url),
                                  captured, out, n, timeout))
    report = QAReport(snapshot_id, folder, out, min_match, tuple(results))
    _write(out / "qa.json", json.dumps(report.to_json(), indent=2).encode("utf-8"))
    return report


def _connect(stack: ExitStack) -> Any:
    """Start a Chromium of our own (ended with `stack`) and return a playwright Browser on it."""
    from playwright.sync_api import Error

    running = stack.enter_context(chromium())
    try:
        return stack.enter_context(running.connect())
    except Error as exc:
        raise BrowserError(f"cannot drive Chromium: {str(exc).splitlines()[0][:300]}") from None


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


def _check(browser: Any, base: str, snapshot_id: str, page: evidence.PageEvidence, shot: bytes | str | None,
           captured: dict[str, int | None], out: Path, n: int, timeout: float) -> PageQA:
    """Replay one page and compare it with its capture."""
    from playwright.sync_api import Error

    url = replay_url(base, snapshot_id, page.timestamp, page.url)
    result = PageQA(page.url, page.timestamp, url, page.viewport, text_source=page.text_source,
                    capture_screenshot=shot is not None)
    if not page.url.startswith(("http://", "https://")):
        return _replace(result, error="not an http(s) URL: not replayed")
    if isinstance(shot, str):
        return _replace(result, error=shot)
    try:
        seen = render(browser, url, page.viewport, timeout, {urlsplit(base).netloc},
                      html=page.text_source == evidence.TEXT_HTML)
    except Error as exc:
        return _replace(result, error=f"replay failed: {str(exc).splitlines()[0][:300]}")
    own, subs = _subresources(seen["answers"], seen["failed"], snapshot_id, page.url, captured)
    result = _replace(result, status=own, subresources=subs, refused=tuple(seen["refused"]),
                      text_match=text_match(page.text, seen["text"]) if page.text_source != evidence.TEXT_NONE else None)
    replay_name = f"{n:04d}-replay.png"
    _write(out / replay_name, seen["screenshot"])
    result = _replace(result, replay_image=replay_name)
    if shot is None:
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


def render(browser: Any, url: str, viewport: tuple[int, int], timeout: float, allowed: set[str],
           html: bool = False) -> dict[str, Any]:
    """Load `url` in a fresh context of playwright `browser` at `viewport` (CSS pixels), with
    only the hosts (host:port) in `allowed` reachable, wait for the load and network idle,
    scroll to the end and back; return what was seen: "answers" (URL -> status, in order),
    "failed" (URLs), "refused" (URLs), "text" (the body's innerText, or with `html` the visible
    text of the DOM read as `formats/html` reads captured HTML) and "screenshot" (full-page
    PNG bytes). Each wait is bounded by `timeout` seconds. Raises playwright's Error."""
    from playwright.sync_api import Error, TimeoutError as Timeout

    seen: dict[str, Any] = {"answers": {}, "failed": set(), "refused": []}

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).netloc in allowed:
            route.continue_()
        else:
            seen["refused"].append(route.request.url)
            route.abort("blockedbyclient")

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  device_scale_factor=1, service_workers="block")
    try:
        context.route("**/*", guard)
        tab = context.new_page()
        tab.on("response", lambda r: seen["answers"].__setitem__(r.url, r.status))
        tab.on("requestfailed", lambda r: seen["failed"].add(r.url))
        tab.goto(url, wait_until="load", timeout=timeout * 1000)
        _settle(tab, timeout)
        if tab.evaluate(_SCROLL, [SCROLL_STEPS, 100]):   # a page taller than the viewport
            _settle(tab, timeout)
        seen["screenshot"] = tab.screenshot(full_page=True, animations="disabled", caret="hide",
                                            timeout=timeout * 1000)
        if html:   # a static capture's text is its HTML's: the replayed DOM's, read the same way
            seen["text"] = "\n".join(visible_text(tab.content()[:MAX_TEXT].encode("utf-8"), "utf-8"))
        else:
            seen["text"] = tab.evaluate(f"() => document.body ? document.body.innerText.slice(0, {MAX_TEXT}) : ''")
    except Timeout as exc:
        raise type(exc)(f"page did not load within {timeout:g} s") from None
    finally:
        try:
            context.close()
        except Error:   # the browser went away: the error that matters is being raised
            logger.debug("closing a browser context failed", exc_info=True)
    return seen


def _settle(tab: Any, timeout: float) -> None:
    """Wait for network idle, at most `timeout` seconds (a page that polls never idles)."""
    from playwright.sync_api import TimeoutError as Timeout
    try:
        tab.wait_for_load_state("networkidle", timeout=timeout * 1000)
    except Timeout:
        pass


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
