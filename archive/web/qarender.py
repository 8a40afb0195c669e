"""Render a page in headless Chromium as `archive qa` replays it: only the given hosts
reachable, loaded, scrolled to its end as a browser capture does, then read back (responses,
visible text, a full-page screenshot)."""
from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

from archive.browser.behaviours import scroll_to_end, settle
from archive.formats.html import visible_text

logger = logging.getLogger(__name__)

MAX_TEXT = 4 << 20            # characters of text taken from the browser


def render(browser: Any, url: str, viewport: tuple[int, int], timeout: float, allowed: set[str],
           html: bool = False) -> dict[str, Any]:
    """`render_page` in a fresh context of playwright `browser`, closed after."""
    from playwright.sync_api import Error

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  device_scale_factor=1, service_workers="block")
    try:
        return render_page(context.new_page(), url, viewport, timeout, allowed, html)
    finally:
        try:
            context.close()
        except Error:   # the browser went away: the error that matters is being raised
            logger.debug("closing a browser context failed", exc_info=True)


def render_page(tab: Any, url: str, viewport: tuple[int, int], timeout: float, allowed: set[str],
                html: bool = False) -> dict[str, Any]:
    """Load `url` in playwright page `tab` at `viewport` (CSS pixels), with only the hosts
    (host:port) in `allowed` reachable, wait for the load and network idle, scroll to the end
    and back; return what was seen: "answers" (URL -> status, in order), "failed" (URLs),
    "refused" (URLs), "text" (the body's innerText, or with `html` the visible text of the DOM
    read as `formats/html` reads captured HTML) and "screenshot" (full-page PNG bytes). Each
    wait is bounded by `timeout` seconds. Raises playwright's Error."""
    from playwright.sync_api import TimeoutError as Timeout

    seen: dict[str, Any] = {"answers": {}, "failed": set(), "refused": []}

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).netloc in allowed:
            route.continue_()
        else:
            seen["refused"].append(route.request.url)
            route.abort("blockedbyclient")

    tab.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    tab.route("**/*", guard)
    tab.on("response", lambda r: seen["answers"].__setitem__(r.url, r.status))
    tab.on("requestfailed", lambda r: seen["failed"].add(r.url))
    try:
        deadline = time.monotonic() + timeout
        tab.goto(url, wait_until="load", timeout=timeout * 1000)
        notes: list[str] = []
        settle(tab, deadline, notes, "after load")
        scroll_to_end(tab, deadline, timeout, notes)
        seen["screenshot"] = tab.screenshot(full_page=True, type="png", timeout=timeout * 1000)
        if html:   # a static capture's text is its HTML's: the replayed DOM's, read the same way
            seen["text"] = "\n".join(visible_text(tab.content()[:MAX_TEXT].encode("utf-8"), "utf-8"))
        else:
            seen["text"] = tab.evaluate(f"() => document.body ? document.body.innerText.slice(0, {MAX_TEXT}) : ''")
    except Timeout:
        raise Timeout(f"page did not load within {timeout:g} s") from None
    return seen
