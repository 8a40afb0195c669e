"""What a page is made to do before it is read, shared by capture (write/pagework.py) and
`archive qa` (web/render.py), so a replay is rendered exactly as its capture was.

`scroll_to_end` scrolls one window at a time, lets observers fire (IntersectionObserver, infinite
scroll), waits for network idle after each step, and stops once at the bottom twice with the
height unchanged, after MAX_SCROLL_STEPS windows, or when a fifth of the time is left; then
scrolls back to the top. Every wait is bounded by the caller's deadline (time.monotonic()).
"""
from __future__ import annotations

import time
from typing import Any

MAX_SCROLL_STEPS = 40          # windows scrolled at most (an endless feed stops here)
IDLE_WAIT = 5.0                # seconds at most for network idle after a step
SETTLE = 0.25                  # seconds after a scroll step, for observers to fire

SCROLL_STEP = """() => {
  const el = document.scrollingElement || document.documentElement;
  const before = window.scrollY;
  window.scrollBy(0, window.innerHeight);
  return {moved: window.scrollY !== before, height: el.scrollHeight};
}"""


def left(deadline: float) -> float:
    """Seconds until `deadline` (a time.monotonic() value), never negative."""
    return max(0.0, deadline - time.monotonic())


def settle(page: Any, deadline: float, notes: list[str], what: str) -> None:
    """Wait for network idle on playwright `page`: at most IDLE_WAIT seconds and not past
    `deadline`, but at least one second (a page that polls never idles); note it if none came."""
    try:
        page.wait_for_load_state("networkidle", timeout=max(1.0, min(IDLE_WAIT, left(deadline))) * 1000)
    except Exception:   # playwright's TimeoutError: the page kept the network busy
        notes.append(f"no network idle {what}")


def scroll_to_end(page: Any, deadline: float, timeout: float, notes: list[str]) -> None:
    """Scroll `page` to its end in window steps (see the module), then back to the top."""
    last_height, still = -1, 0
    for _ in range(MAX_SCROLL_STEPS):
        if left(deadline) < timeout * 0.2:
            notes.append("scrolling stopped at the deadline")
            break
        step = page.evaluate(SCROLL_STEP)
        page.wait_for_timeout(SETTLE * 1000)
        settle(page, deadline, notes, "while scrolling")
        still = still + 1 if not step["moved"] and step["height"] == last_height else 0
        if still >= 2:
            break     # at the bottom twice, and nothing more arrived
        last_height = step["height"]
    page.evaluate("() => window.scrollTo(0, 0)")
