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

MAX_SCROLL_STEPS = 40          # windows scrolled at most (an endless feed stops here)
MAX_TEXT = 2_000_000           # characters of visible text kept
MAX_LINKS = 5000
IDLE_WAIT = 5.0                # seconds at most for network idle after a step
SETTLE = 0.25                  # seconds after a scroll step, for observers to fire

SCROLL_STEP = """() => {
  const el = document.scrollingElement || document.documentElement;
  const before = window.scrollY;
  window.scrollBy(0, window.innerHeight);
  return {y: window.scrollY, moved: window.scrollY !== before,
          end: window.scrollY + window.innerHeight >= el.scrollHeight - 2, height: el.scrollHeight};
}"""
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


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _idle(page: Any, deadline: float, notes: list[str], what: str) -> None:
    wait = min(IDLE_WAIT, _left(deadline))
    try:
        page.wait_for_load_state("networkidle", timeout=max(1.0, wait) * 1000)
    except Exception:
        notes.append(f"no network idle {what}")


def render(page: Any, url: str, timeout: float) -> Rendered:
    """Run the behaviours on `page` for `url` within `timeout` seconds and read the result.

    The load itself must succeed (its playwright error goes to the caller); later steps that
    run out of time are noted and skipped, so a slow page still gets its screenshot."""
    deadline = time.monotonic() + timeout
    notes: list[str] = []
    page.goto(url, wait_until="load", timeout=max(1.0, timeout * 0.6) * 1000)
    _idle(page, deadline, notes, "after load")
    last_height, still = -1, 0
    for _ in range(MAX_SCROLL_STEPS):
        if _left(deadline) < timeout * 0.2:
            notes.append("scrolling stopped at the deadline")
            break
        step = page.evaluate(SCROLL_STEP)
        page.wait_for_timeout(SETTLE * 1000)
        _idle(page, deadline, notes, "while scrolling")
        still = still + 1 if not step["moved"] and step["height"] == last_height else 0
        if still >= 2:
            break     # at the bottom twice, and nothing more arrived
        last_height = step["height"]
    media = page.evaluate(MEDIA)
    _idle(page, deadline, notes, "after media")
    page.evaluate("() => window.scrollTo(0, 0)")
    size = page.evaluate("() => { const el = document.scrollingElement || document.documentElement;"
                         " return [Math.max(el.scrollWidth, window.innerWidth), el.scrollHeight]; }")
    png = page.screenshot(full_page=True, type="png", timeout=max(1.0, _left(deadline) + 10) * 1000)
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
