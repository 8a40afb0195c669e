"""`capture --browser`: every page the crawl fetched is loaded in Chromium through the
capture's recording proxy; what scripts fetch is recorded by the capture's own fetch layer.

The capture alternates: the static crawl runs to exhaustion, then the browser loads each new
page (a pool of `browser_pages` pages, `browser_timeout` seconds each, pagework.render); the
links and media the rendered pages name, and the links the static extractor finds in what the
browser fetched, go back to the frontier; the crawl runs again; until no new page is left.

The proxy's answers (`Browsing.answer`): a URL this capture recorded already (a response, not a
revisit) is answered from its record, read back from the WARC file, not fetched twice: the
browser sees exactly the recorded bytes and the server sees one request. Anything else goes
through `fetcher.fetch` (tap, TLS evidence, digests, block_private, limits, truncation) and
`record` (revisit dedup, the WARC writer), like any static fetch, as a requisite of the
page(s) being loaded; a revisit's URL is fetched again to answer the browser but not recorded
twice. Scope rules for requisites hold (`--exclude`, nesting); what is refused gets a 403.

Per page, on the main thread: a `resource` record `urn:view:<page URL>` (image/png, the
full-page screenshot), one `urn:text:<page URL>` (text/plain; charset=utf-8) and a `text`
field in the page's pages.jsonl entry. A page whose tab crashed twice, or that failed to load,
is logged (warning) and listed in the snapshot's metadata `failures` as "browser: <reason>",
with the count `browser_failed`; its static record stays.
"""
from __future__ import annotations

import logging
import secrets
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from archive.browser import PageFailed, PagePool, chromium, kill_leftover
from archive.errors import ArchiveError, FetchError
from archive.formats.urls import InvalidURL, canonicalize, host_of
from archive.models import Kind, Link, Outcome, Record

from .proxy import TOKEN_HEADER, RecordingProxy, simple_response
from .resume import Held
from .resume import exchange as read_back

logger = logging.getLogger(__name__)
PID_FILE = "browser.json"
PAGE_STUCK = 30.0   # seconds past the page's own close before its answer is given up (a call into a dead renderer)
PAGE_GRACE = 20.0   # seconds a page job may run past --browser-timeout (the screenshot's own time) before its page is closed


class Browsing:
    """The browser half of one capture: wraps the crawler's record and outcome callbacks to
    learn what was recorded and which pages were fetched, answers the proxy, runs the pages."""

    def __init__(self, crawler: Any, run: Any, warc: Any, folder: Path, spool: Path, clock: Callable[[], Any]):
        self.crawler, self.run, self.warc = crawler, run, warc
        self.folder, self.spool, self.clock = folder, spool, clock
        self.options = crawler.options
        self.recorded: dict[str, Record] = {}
        self.pages: list[tuple[str, Link]] = []     # fetched pages, in order; browsed up to `done`
        self.done = 0
        self.lock = threading.Lock()
        self.url_locks: dict[str, threading.Lock] = {}
        self.results: list[Any] = []                # proxy fetches, handled on the main thread
        record, outcome = crawler.record, crawler.on_outcome

        def remember(exchange: Any, link: Link) -> Record:
            rec: Record = record(exchange, link)
            self.recorded[exchange.url] = rec
            return rec

        def seen(out: Outcome) -> None:
            outcome(out)
            status = out.status or 0
            if out.outcome == "fetched" and out.link.kind is Kind.PAGE and 200 <= status < 300 and out.url:
                self.pages.append((out.url, out.link))
        crawler.record, crawler.on_outcome = remember, seen
        # a capture killed with -9 may have left its browser: end it before crawling again
        kill_leftover(spool / PID_FILE)
        self.current_depth = 0

    # -- the proxy's side (its threads) ------------------------------------------------------
    def answer(self, raw_url: str, accept: str, write: Callable[[bytes], Any], tag: str = "") -> None:
        try:
            url = canonicalize(raw_url)
        except InvalidURL as exc:
            write(simple_response(400, "Bad Request", f"invalid URL: {exc.why}"))
            return
        with self.lock:
            url_lock = self.url_locks.setdefault(url, threading.Lock())
        with url_lock:   # two pages asking at once: one fetch, the other reads it back
            rec = self.recorded.get(url)
            if rec is not None and rec.original is None:
                self._from_record(rec, write)
            else:
                self._fetch(url, accept, write, rec is None, self._page_of(tag))

    def _page_of(self, tag: str) -> tuple[str | None, int]:
        """(URL, depth) of the page whose tab sent `tag`, from its header."""
        if tag.isdigit() and int(tag) < len(self.pages):
            url, link = self.pages[int(tag)]
            return url, link.depth
        return None, self.current_depth

    def _from_record(self, rec: Record, write: Callable[[bytes], Any]) -> None:
        exchange = read_back(self.folder, Held(rec, None, "", None), self.spool)
        try:
            _relay(exchange, write)
        finally:
            exchange.block.discard()

    def _fetch(self, url: str, accept: str, write: Callable[[bytes], Any], record: bool,
               page: tuple[str | None, int]) -> None:
        from .crawl import _Result, noarchive
        # a document the page loads (a frame) is an embed: its links and requisites are read
        kind = Kind.EMBED if accept.startswith("text/html") else Kind.REQUISITE
        link = Link(url, kind, page[1], page[0], "browser", nest=1)
        why = self.crawler.scope.reason(link) or self._over_limits(url)
        if why:
            write(simple_response(403, "Forbidden", f"not captured: {why}"))
            self._note(_Result(link, error=FetchError(url, "skipped", why)))
            return
        try:
            exchange = self.crawler.fetcher.fetch(url, accept)
        except FetchError as exc:
            write(simple_response(502, "Bad Gateway", str(exc)))
            self._note(_Result(link, error=exc))
            return
        try:
            result = self.crawler._read(link, exchange)
            if record:
                if noarchive(exchange, result.extracted) and self.options.respect_noarchive:
                    result = _Result(link, exchange, result.extracted, kept=False, noarchive="browser")
                else:
                    self.crawler.record(exchange, link)
                self._note(result)
            _relay(exchange, write)
        finally:
            exchange.block.discard()

    def _over_limits(self, url: str) -> str | None:
        """--max-urls and --max-per-host count what the browser asks for too."""
        crawler, host = self.crawler, host_of(url)
        with self.lock:
            if self.options.max_urls and crawler.queue.total >= self.options.max_urls:
                return f"over --max-urls {self.options.max_urls}"
            if self.options.max_per_host and crawler.queue.count_for(host) >= self.options.max_per_host:
                return f"over --max-per-host {self.options.max_per_host}"
            crawler.queue.claim(url)
        return None

    def _note(self, result: Any) -> None:
        with self.lock:
            self.results.append(result)

    # -- the main thread ---------------------------------------------------------------------
    def run_pages(self) -> None:
        """Browse the fetched pages, crawl what they lead to, until nothing new is left."""
        spool = self.spool
        profile = Path(tempfile.mkdtemp(prefix="profile-", dir=spool))
        from .mitm import HostCerts
        token = secrets.token_hex(16)
        with HostCerts(Path(tempfile.mkdtemp(prefix="tls-", dir=spool))) as certs, \
                RecordingProxy(self.answer, certs.context, token) as proxy, \
                chromium(profile, proxy=proxy.url, extra_args=certs.chromium_args,
                         pid_file=spool / PID_FILE) as running, \
                PagePool(running, size=self.options.browser_pages,
                         job_timeout=self.options.browser_timeout + PAGE_GRACE) as pool:
            while self.done < len(self.pages):
                first, self.done = self.done, len(self.pages)
                batch = self.pages[first:self.done]
                self.current_depth = max(link.depth for _, link in batch)
                futures = [(url, link, pool.submit(self._job(url, f"{token}.{first + i}")))
                           for i, (url, link) in enumerate(batch)]
                for url, link, future in futures:
                    self._finish_page(url, link, future)
                self._adopt_results()
                self.crawler.run(())

    def _job(self, url: str, tag: str) -> Callable[[Any], Any]:
        from .pagework import render
        timeout = self.options.browser_timeout

        def job(page: Any) -> Any:
            page.set_extra_http_headers({TOKEN_HEADER: tag})   # the proxy knows which page asks
            return render(page, url, timeout)
        return job

    def _finish_page(self, url: str, link: Link, future: Future) -> None:
        try:
            rendered = future.result(timeout=self.options.browser_timeout + PAGE_GRACE + PAGE_STUCK)
        except FutureTimeout:   # the page thread is stuck in a call Chromium never answers
            logger.warning("%s: browser failed: no answer from the page", url)
            self.run.failures.append({"url": url, "reason": "browser: no answer from the page"})
            self.run.counts["browser_failed"] += 1
            return
        except PageFailed as exc:   # crashed twice, or past its time (a script that never yields)
            logger.warning("%s: browser failed: %s", url, exc.reason)
            self.run.failures.append({"url": url, "reason": f"browser: {exc.reason}"})
            self.run.counts["browser_failed"] += 1
            return
        except ArchiveError:
            raise
        except Exception as exc:
            reason = getattr(exc, "reason", None) or str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logger.warning("%s: browser failed: %s", url, reason)
            self.run.failures.append({"url": url, "reason": f"browser: {reason}"})
            self.run.counts["browser_failed"] += 1
            return
        moment = self.clock()
        for rec in (self.warc.write_resource(f"urn:view:{url}", "image/png", rendered.png, moment),
                    self.warc.write_resource(f"urn:text:{url}", "text/plain; charset=utf-8",
                                             rendered.text.encode("utf-8"), moment)):
            self.run.records.append(rec)
        self.run.counts["browser_pages"] += 1
        for entry in self.run.pages:
            if entry["url"] == url:
                entry["text"] = rendered.text
        if rendered.notes:
            logger.info("%s: %s", url, "; ".join(rendered.notes))
        for href in rendered.links:
            self._offer(href, Kind.PAGE, link.depth + 1, url, "browser", 0)
        for src in rendered.media:
            self._offer(src, Kind.REQUISITE, link.depth, url, "browser-media", 1)

    def _offer(self, raw: str, kind: Kind, depth: int, source: str, via: str, nest: int) -> None:
        try:
            url = canonicalize(raw, source)
        except InvalidURL:
            return
        if url.startswith(("http://", "https://")):
            self.crawler.offer(Link(url, kind, depth, source, via, nest=nest))

    def _adopt_results(self) -> None:
        with self.lock:
            results, self.results = self.results, []
        for result in results:
            if result.exchange is None and result.error is not None and result.error.kind == "skipped":
                self.crawler._log_skip(result.link, result.error.detail)
                continue
            self.crawler._handle(result)


def _relay(exchange: Any, write: Callable[[bytes], Any]) -> None:
    with exchange.block.open() as body:
        while data := body.read(64 * 1024):
            write(data)
