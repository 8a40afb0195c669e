"""The frontier: what is fetched, in what order, how many at once. It writes nothing itself.

Fetching runs on a thread pool (16 connections in all, 6 per host by default, as browsers
do); each worker fetches, hands the exchange to the `record` callback (the WARC writer) and
extracts links, all while the body is still in its spool file. The main thread alone owns
the frontier, the seen-set and the robots rules, so none of them needs a lock.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .errors import FetchError
from .extract import CSS_TYPES, HTML_TYPES, Extracted, extract
from .fetch import PAGE_ACCEPT, Fetcher
from .models import CaptureOptions, Exchange, Kind, Link, Outcome, Record
from .scope import Robots, Scope, robots_url
from .urls import InvalidURL, canonicalize, host_of, origin_of

logger = logging.getLogger(__name__)

RecordFn = Callable[[Exchange, Link], Record]
OutcomeFn = Callable[[Outcome], None]


@dataclass(frozen=True)
class _Result:
    link: Link
    exchange: Exchange | None = None
    extracted: Extracted | None = None
    robots: Robots | None = None
    error: FetchError | None = None


class Crawler:
    """Runs one capture's frontier to exhaustion; report everything through callbacks."""

    def __init__(self, fetcher: Fetcher, scope: Scope, options: CaptureOptions,
                 record: RecordFn, on_outcome: OutcomeFn,
                 clock: Callable[[], float] = time.monotonic):
        self.fetcher = fetcher
        self.scope = scope
        self.options = options
        self.record = record
        self.on_outcome = on_outcome
        self.clock = clock
        self.seen: set[str] = set()
        self.logged_skips: set[str] = set()
        self.queues: dict[str, deque[Link]] = {}
        self.inflight: dict[str, int] = {}
        self.next_start: dict[str, float] = {}
        self.robots: dict[str, Robots | None] = {}      # origin -> rules; None while fetching
        self.parked: dict[str, list[Link]] = {}         # origin -> pages waiting for its rules
        self.queued = 0

    # -- the loop --------------------------------------------------------------------------
    def run(self, seeds: Iterable[Link]) -> None:
        """Fetch the seeds and everything in scope they lead to."""
        for link in seeds:
            self.offer(link)
        with ThreadPoolExecutor(self.options.connections, thread_name_prefix="fetch") as pool:
            running: dict[Future[_Result], Link] = {}
            try:
                while True:
                    self._dispatch(pool, running)
                    if not running:
                        if not self._pending():
                            break
                        time.sleep(self._idle_wait())
                        continue
                    done, _ = wait(running, timeout=self._idle_wait() or None,
                                   return_when=FIRST_COMPLETED)
                    for future in done:
                        link = running.pop(future)
                        self.inflight[host_of(link.url)] -= 1
                        self._handle(future.result())
            except BaseException:
                for future in running:
                    future.cancel()
                raise

    def _pending(self) -> bool:
        return any(self.queues.values())

    def _idle_wait(self) -> float:
        if not self.options.delay:
            return 0.0
        now = self.clock()
        waits = [self.next_start.get(h, now) - now for h, q in self.queues.items() if q]
        return max(0.005, min(waits, default=0.05))

    def _dispatch(self, pool: ThreadPoolExecutor, running: dict[Future[_Result], Link]) -> None:
        for host, queue in self.queues.items():
            while queue and len(running) < self.options.connections \
                    and self.inflight.get(host, 0) < self.options.per_host:
                if self.options.delay:
                    now = self.clock()
                    if now < self.next_start.get(host, 0.0):
                        break
                    self.next_start[host] = now + self.options.delay
                link = queue.popleft()
                self.inflight[host] = self.inflight.get(host, 0) + 1
                running[pool.submit(self._work, link)] = link

    # -- in a worker thread ----------------------------------------------------------------
    def _work(self, link: Link) -> _Result:
        accept = PAGE_ACCEPT if link.kind in (Kind.PAGE, Kind.EMBED) else "*/*"
        try:
            exchange = self.fetcher.fetch(link.url, accept)
        except FetchError as exc:
            return _Result(link, error=exc)
        try:
            self.record(exchange, link)
            if link.kind is Kind.ROBOTS:
                robots = Robots.from_exchange(exchange)
                return _Result(link, exchange, Extracted(note=robots.summary), robots)
            return _Result(link, exchange, extract(exchange) if _parses(link, exchange) else None)
        finally:
            exchange.block.unlink(missing_ok=True)

    # -- back on the main thread -----------------------------------------------------------
    def _handle(self, result: _Result) -> None:
        link, ex = result.link, result.exchange
        if ex is None:
            error = result.error
            assert error is not None
            self.on_outcome(Outcome(link, "failed", str(error), url=link.url))
            if link.kind is Kind.ROBOTS:
                self._robots_known(origin_of(link.url), Robots.from_exchange(None))
            return
        extracted = result.extracted or Extracted()
        reason = extracted.note or (f"truncated: {ex.truncated}" if ex.truncated else "")
        self.on_outcome(Outcome(link, "fetched", reason, status=ex.status, url=ex.url,
                                title=extracted.title, date=ex.date, bytes=ex.block_length))
        if result.robots is not None:
            self._robots_known(origin_of(link.url), result.robots)
        if 300 <= ex.status < 400:
            self._follow_redirect(link, ex)
        for ref, why in extracted.skipped:
            self._log_skip(_child(link, ref.url, ref.kind, ref.via), why)
        for found in extracted.found:
            self.offer(_child(link, found.url, found.kind, found.via))

    def _follow_redirect(self, link: Link, ex: Exchange) -> None:
        location = ex.header("Location")
        if not location:
            return
        if link.hops >= self.options.max_redirects:
            self._log_skip(Link(location, link.kind, link.depth, link.url, "redirect"),
                           f"more than {self.options.max_redirects} redirects")
            return
        try:
            target = canonicalize(location, ex.url)
        except InvalidURL as exc:
            self._log_skip(Link(location, link.kind, link.depth, link.url, "redirect"), exc.why)
            return
        self.offer(Link(target, link.kind, link.depth, link.url, "redirect", link.hops + 1, link.seed))

    def offer(self, link: Link) -> None:
        """Queue `link` unless it was seen, is out of scope, or robots.txt forbids it."""
        if link.url in self.seen:
            return
        why = self.scope.reason(link)
        if why is None and self.options.max_urls and self.queued >= self.options.max_urls:
            why = f"over --max-urls {self.options.max_urls}"
        if why:
            self._log_skip(link, why)
            return
        self.seen.add(link.url)
        if self.scope.needs_robots(link):
            origin = origin_of(link.url)
            if origin not in self.robots:
                self.robots[origin] = None
                self._enqueue(Link(robots_url(link.url), Kind.ROBOTS, link.depth, link.url, "robots"))
            rules = self.robots[origin]
            if rules is None:
                self.parked.setdefault(origin, []).append(link)
                return
            if not rules.allows(link.url):
                self._log_skip(link, "disallowed by robots.txt")
                return
        self._enqueue(link)

    def _enqueue(self, link: Link) -> None:
        self.seen.add(link.url)
        self.queued += 1
        self.queues.setdefault(host_of(link.url), deque()).append(link)

    def _robots_known(self, origin: str, rules: Robots) -> None:
        self.robots[origin] = rules
        for link in self.parked.pop(origin, []):
            if rules.allows(link.url):
                self._enqueue(link)
            else:
                self._log_skip(link, "disallowed by robots.txt")

    def _log_skip(self, link: Link, why: str) -> None:
        key = f"{link.url} {why}"
        if key not in self.logged_skips:
            self.logged_skips.add(key)
            self.on_outcome(Outcome(link, "skipped", why))


def _parses(link: Link, exchange: Exchange) -> bool:
    """Return True when links are read from this response: pages' HTML and any CSS."""
    mime = exchange.mime
    if mime in CSS_TYPES:
        return True
    if link.kind in (Kind.PAGE, Kind.EMBED):
        return mime in HTML_TYPES or not mime
    return False


def _child(parent: Link, url: str, kind: Kind, via: str) -> Link:
    """Return the Link for a URL found in `parent`: links go one level deeper, the rest stay."""
    depth = parent.depth + 1 if kind is Kind.PAGE else parent.depth
    return Link(url, kind, depth, parent.url, via)
