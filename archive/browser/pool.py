"""A pool of browser pages: page jobs run on `size` pages at once.

playwright's sync API belongs to the thread that opened it, so each of the pool's threads opens
its own CDP connection to the one Chromium (`Running.connect`) and its own browser context
(viewport `viewport`, shared by that thread's pages). A job is a function of a fresh
`playwright.sync_api.Page`; its page is closed after it. A page that crashes (Chromium's
renderer died, or the page closed under the job) is retried once on a new page, then the job's
future fails with `PageFailed` naming the reason; any other exception of the job goes to its
future unchanged. With `job_timeout`, a job still running after that many seconds has its page
closed by the browser (DevTools HTTP `/json/close/<target id>`, which needs nothing of the
page's renderer: a page whose script never yields blocks every CDP call made through it) and
its future fails with `PageTimeout`, without a second attempt.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import threading
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from archive.errors import BrowserError

from .chromium import Running

logger = logging.getLogger(__name__)
T = TypeVar("T")
VIEWPORT = (1280, 800)


class PageFailed(BrowserError):
    """A page job failed twice on crashed pages, or its thread lost the browser: `reason`."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"page failed: {reason}")


class PageTimeout(PageFailed):
    """A page job ran past the pool's `job_timeout` and its page was closed."""


class PagePool:
    """`size` worker threads, each with a CDP connection to `running` and a context of
    `viewport` (width, height) CSS pixels; `extra_headers` go with every request of its pages. Use as a context manager; `submit(job)` returns a
    Future of `job(page)`. `close()` lets queued jobs finish, then disconnects (Chromium itself
    is ended by `chromium()`)."""

    def __init__(self, running: Running, size: int = 2, viewport: tuple[int, int] = VIEWPORT,
                 connect_timeout: float = 30.0, extra_headers: dict[str, str] | None = None,
                 job_timeout: float | None = None):
        if size < 1:
            raise BrowserError(f"a page pool needs at least one page, not {size}")
        self.running = running
        self.viewport = viewport
        self.connect_timeout = connect_timeout
        self.extra_headers = dict(extra_headers or {})
        self.job_timeout = job_timeout
        self.jobs: queue.Queue[tuple[Callable[[Any], Any], Future] | None] = queue.Queue()
        self.threads = [threading.Thread(target=self._work, name=f"browser-page-{i}", daemon=True)
                        for i in range(size)]
        for thread in self.threads:
            thread.start()

    def submit(self, job: Callable[[Any], T]) -> Future[T]:
        future: Future[T] = Future()
        self.jobs.put((job, future))
        return future

    def close(self, wait: float = 10.0) -> None:
        """Stop the page threads, waiting at most `wait` seconds for each: a thread stuck in a
        call a dead renderer never answers is left (a daemon) to end when Chromium is killed."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(wait)

    def __enter__(self) -> PagePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        try:
            with self.running.connect(self.connect_timeout) as browser:
                width, height = self.viewport
                context = browser.new_context(viewport={"width": width, "height": height})
                if self.extra_headers:
                    context.set_extra_http_headers(self.extra_headers)
                while (item := self.jobs.get()) is not None:
                    job, future = item
                    if future.set_running_or_notify_cancel():
                        self._run(context, job, future)
        except Exception as exc:  # the connection itself failed: fail every job that waits
            logger.warning("browser page thread ended: %s", exc)
            while True:
                try:
                    item = self.jobs.get_nowait()
                except queue.Empty:
                    return
                if item is None:
                    continue
                if item[1].set_running_or_notify_cancel():
                    item[1].set_exception(PageFailed(f"browser connection lost: {exc}"))

    def _run(self, context: Any, job: Callable[[Any], Any], future: Future) -> None:
        reason = ""
        for attempt in (1, 2):
            crashed, expired = threading.Event(), threading.Event()
            page = watchdog = None
            try:
                page = _new_page(context)
                page.on("crash", lambda *_: crashed.set())
                if self.job_timeout is not None:
                    watchdog = self._watchdog(context, page, expired)
                result = job(page)
            except Exception as exc:
                if expired.is_set():
                    future.set_exception(PageTimeout(f"the page did not finish within {self.job_timeout:g} s"))
                    return
                # no page could be opened, or it crashed or closed under the job: try once more
                if not (page is None or crashed.is_set() or page.is_closed()):
                    future.set_exception(exc)
                    return
                reason = f"page crashed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                logger.warning("%s; attempt %d of 2", reason, attempt)
            else:
                future.set_result(result)
                return
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                if page is not None:
                    with contextlib.suppress(Exception):
                        page.close()
        future.set_exception(PageFailed(reason))

    def _watchdog(self, context: Any, page: Any, expired: threading.Event) -> threading.Timer:
        """Start a timer closing `page`'s target after `job_timeout` seconds (setting `expired`)."""
        session = context.new_cdp_session(page)
        target = str(session.send("Target.getTargetInfo")["targetInfo"]["targetId"])
        session.detach()
        url = f"{self.running.cdp_url}/json/close/{target}"

        def close() -> None:
            expired.set()
            logger.warning("page job past %g s: closing its page", self.job_timeout)
            with contextlib.suppress(OSError):
                # straight to the loopback DevTools port, whatever http_proxy says
                urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=10).close()
        timer = threading.Timer(float(self.job_timeout or 0), close)
        timer.daemon = True
        timer.start()
        return timer


def _new_page(context: Any) -> Any:
    """A new page; asked twice, since a renderer that just crashed can take the first one down."""
    try:
        return context.new_page()
    except Exception as exc:
        logger.info("new page failed (%s); once more", str(exc).splitlines()[0] if str(exc) else exc)
        return context.new_page()
