"""What the browser does on one page (`--browser`), each step bounded by the page's deadline.

Load and wait for `load`, then network idle; scroll to the end in steps of one window so lazy
content (IntersectionObserver, infinite scroll) loads, until the height stops growing; ask
media elements for their sources (preload="auto"); wait for network idle again; then read the
page: a full-page PNG screenshot, the visible text (`innerText`, as a reader sees it), the
links of the rendered document and of its frames, and the media URLs. Runs in a page-pool
thread (archive.browser.PagePool); returns a `Rendered`, never writes anything itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from archive.browser.behaviours import left, scroll_to_end, settle

MAX_TEXT = 2_000_000           # characters of visible text kept
MAX_LINKS = 5000

MEDIA = """() => {
  const urls = [];
  for (const m of document.querySelectorAll('video, audio')) {
    try { m.preload = 'auto'; if (m.networkState === 0 || m.readyState === 0) m.load(); } catch (e) {}
    for (const u of [m.currentSrc, m.src, m.poster]) if (u) urls.push(u);
    for (const s of m.querySelectorAll('source[src], track[src]')) urls.push(s.src);
  }
  return urls;
}"""
LINKS = "els => els.map(e => e.href).filter(h => typeof h === 'string')"


@dataclass(frozen=True)
class Rendered:
    """One page as the browser rendered it: `png` (full page), its `size` (CSS px, width and
    height), `text`, `links` (absolute URLs of a/area), `media` (media source URLs), `notes`
    (steps cut short by the deadline)."""

    url: str
    png: bytes
    size: tuple[int, int]
    text: str
    links: tuple[str, ...]
    media: tuple[str, ...]
    notes: tuple[str, ...] = ()


def render(page: Any, url: str, timeout: float) -> Rendered:
    """Run the behaviours on `page` for `url` within `timeout` seconds and read the result.

    The load itself must succeed (its playwright error goes to the caller); later steps that
    run out of time are noted and skipped, so a slow page still gets its screenshot."""
    deadline = time.monotonic() + timeout
    notes: list[str] = []
    page.goto(url, wait_until="load", timeout=max(1.0, timeout * 0.6) * 1000)
    settle(page, deadline, notes, "after load")
    scroll_to_end(page, deadline, timeout, notes)
    media = page.evaluate(MEDIA)
    settle(page, deadline, notes, "after media")
    size = page.evaluate("() => { const el = document.scrollingElement || document.documentElement;"
                         " return [Math.max(el.scrollWidth, window.innerWidth), el.scrollHeight]; }")
    png = page.screenshot(full_page=True, type="png", timeout=max(1.0, left(deadline) + 10) * 1000)
    text = page.evaluate("() => document.body ? document.body.innerText : ''") or ""
    links: list[str] = []
    for frame in page.frames:
        try:
            links += frame.eval_on_selector_all("a[href], area[href]", LINKS)
        except Exception:   # a frame that navigated away meanwhile
            notes.append("links of a frame not read")
    return Rendered(url=url, png=png, size=(int(size[0]), int(size[1])), text=text[:MAX_TEXT],
                    links=tuple(dict.fromkeys(links))[:MAX_LINKS], media=tuple(dict.fromkeys(media)),
                    notes=tuple(dict.fromkeys(notes)))
