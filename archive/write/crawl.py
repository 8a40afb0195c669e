"""The frontier: what is fetched, in what order, how many at once. It writes nothing itself.

Fetching runs on a thread pool (16 connections in all, 6 per host by default, as browsers
do); each worker fetches, hands the exchange to the `record` callback (the WARC writer) and
extracts links, all while the body is still in its spool file. The main thread alone owns
the frontier, the seen-set and the robots rules, so none of them needs a lock.
"""
from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol

from archive.errors import ArchiveError, FetchError
from archive.formats.html import CSS_TYPES, HTML_TYPES
from archive.formats.urls import host_of, origin_of
from archive.models import CaptureOptions, Exchange, Kind, Link, Outcome, Record

from .extract import Extracted, extract
from .fetch import PAGE_ACCEPT, Fetcher
from .frontier import Frontier
from .hops import REFRESH, Chains, redirect_hop, refresh_hop
from .scope import Robots, Scope, robots_url

logger = logging.getLogger(__name__)

RecordFn = Callable[[Exchange, Link], Record]
ROBOTS_REDIRECTS = 5   # RFC 9309 section 2.3.1.2
TRANSIENT = (429, 500, 502, 503, 504)
OutcomeFn = Callable[[Outcome], None]


class HostLimiter(Protocol):
    """Connections to one host shared with other captures (e.g. across a cluster of workers)."""

    def try_acquire(self, host: str) -> bool:
        """Take one connection slot for `host` if one is free; return whether it was taken."""

    def release(self, host: str) -> None:
        """Give back a slot taken by try_acquire."""


@dataclass(frozen=True)
class _Result:
    link: Link
    exchange: Exchange | None = None
    extracted: Extracted | None = None
    robots: Robots | None = None
    error: FetchError | None = None
    kept: bool = True                # False: fetched but not recorded (--respect-noarchive)
    noarchive: str | None = None     # where the page said noarchive

class Crawler:
    """Runs one capture's frontier to exhaustion; report everything through callbacks."""

    def __init__(self, fetcher: Fetcher, scope: Scope, options: CaptureOptions,
                 record: RecordFn, on_outcome: OutcomeFn,
                 clock: Callable[[], float] = time.monotonic, limiter: HostLimiter | None = None,
                 frontier: Frontier | None = None):
        self.fetcher = fetcher
        self.scope = scope
        self.options = options
        self.record = record
        self.on_outcome = on_outcome
        self.clock = clock
        self.limiter = limiter
        self.throttled = False    # a host waits for the shared limiter: poll it again soon
        self.queue = frontier if frontier is not None else Frontier()
        self.logged_skips: set[str] = set()
        self.inflight: dict[str, int] = {}
        self.next_start: dict[str, float] = {}
        self.robots: dict[str, Robots | None] = {}      # origin -> rules; None while fetching
        self.parked: dict[str, list[Link]] = {}         # origin -> pages waiting for its rules
        self.robots_for: dict[str, str] = {}            # robots.txt URL being fetched -> origin
        self.chains = Chains()

    # -- the loop --------------------------------------------------------------------------
    def run(self, seeds: Iterable[Link]) -> None:
        """Fetch the seeds and everything in scope they lead to."""
        for link in seeds:
            self.offer(link)
        pool = ThreadPoolExecutor(self.options.connections, thread_name_prefix="fetch")
        running: dict[Future[_Result], Link] = {}
        try:
            while True:
                self._release_due()
                self._dispatch(pool, running)
                if not running:
                    if not self._pending():
                        break
                    time.sleep(self._idle_wait())
                    continue
                done, _ = wait(running, timeout=self._idle_wait() or None, return_when=FIRST_COMPLETED)
                for future in done:
                    link = running.pop(future)
                    self.inflight[host_of(link.url)] -= 1
                    self._handle(future.result())
        except BaseException:
            # Ctrl-C, a full disk: stop at once; the sockets of exchanges under way are shut.
            self.fetcher.abort()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            self.queue.close()
        pool.shutdown(wait=True)

    def frontier(self) -> tuple[int, int]:
        """Return (URLs queued, fetches in flight) now, for a progress display."""
        return len(self.queue), sum(self.inflight.values())

    def _pending(self) -> bool:
        return self.queue.pending()

    def _idle_wait(self) -> float:
        now = self.clock()
        due = self.queue.next_due()
        waits = [due - now] if due is not None else []
        if self.throttled:
            waits.append(0.05)
        if self.options.delay:
            waits += [self.next_start.get(h, now) - now for h in self.queue.hosts()]
        return max(0.005, min(waits)) if waits else 0.0

    def _release_due(self) -> None:
        self.queue.release_due(self.clock())

    def _dispatch(self, pool: ThreadPoolExecutor, running: dict[Future[_Result], Link]) -> None:
        self.throttled = False
        for host in self.queue.hosts():
            while self.queue.has(host) and len(running) < self.options.connections \
                    and self.inflight.get(host, 0) < self.options.per_host:
                now = self.clock()
                if self.options.delay and now < self.next_start.get(host, 0.0):
                    break
                if self.limiter is not None and not self.limiter.try_acquire(host):
                    self.throttled = True
                    break
                if self.options.delay:
                    self.next_start[host] = now + self.options.delay
                link = self.queue.pop(host)
                self.inflight[host] = self.inflight.get(host, 0) + 1
                running[pool.submit(self._work, link)] = link

    # -- in a worker thread ----------------------------------------------------------------
    def _work(self, link: Link) -> _Result:
        try:
            return self._fetch_and_record(link)
        finally:
            if self.limiter is not None:
                self.limiter.release(host_of(link.url))

    def _fetch_and_record(self, link: Link) -> _Result:
        accept = PAGE_ACCEPT if link.kind in (Kind.PAGE, Kind.EMBED) else "*/*"
        try:
            exchange = self.fetcher.fetch(link.url, accept)
        except FetchError as exc:
            return _Result(link, error=exc)
        except ArchiveError:
            raise   # the disk, not the web: the capture stops
        except Exception as exc:  # a server or a library did something unforeseen: log it, go on
            logger.warning("%s: %s", link.url, exc, exc_info=True)
            return _Result(link, error=FetchError(link.url, "internal-error", f"{type(exc).__name__}: {exc}"))
        try:
            if self.fetcher.stopping.is_set():
                return _Result(link, error=FetchError(link.url, "stopped", "the capture is stopping"))
            result = self._read(link, exchange)
            refusal = noarchive(exchange, result.extracted)
            if refusal and self.options.respect_noarchive:
                return replace(result, kept=False, noarchive=refusal)
            self.record(exchange, link)
            return replace(result, noarchive=refusal)
        finally:
            exchange.block.discard()

    def _read(self, link: Link, exchange: Exchange) -> _Result:
        """Return what a recorded exchange leads to: its links, or robots rules."""
        try:
            if link.kind is Kind.ROBOTS and not 300 <= exchange.status < 400:
                robots = Robots.from_exchange(exchange)
                return _Result(link, exchange, Extracted(note=robots.summary), robots)
            if exchange.status == 304:   # not modified: the links are those of the stored body
                return _Result(link, exchange, self._extract_previous(link))
            return _Result(link, exchange, extract(exchange) if _parses(link, exchange) else None)
        except Exception as exc:  # hostile content must not stop the capture: it is recorded
            logger.warning("%s: links not extracted: %s", link.url, exc, exc_info=True)
            return _Result(link, exchange, Extracted(note=f"links not extracted: {type(exc).__name__}: {exc}"))

    def _extract_previous(self, link: Link) -> Extracted | None:
        earlier = self.fetcher.previous(link.url)
        if earlier is None:
            return None
        try:
            return extract(earlier) if _parses(link, earlier) else None
        finally:
            earlier.block.discard()

    # -- back on the main thread -----------------------------------------------------------
    def _handle(self, result: _Result) -> None:
        link, ex = result.link, result.exchange
        if ex is None:
            error = result.error
            assert error is not None
            self.on_outcome(Outcome(link, "failed", str(error), url=link.url))
            if link.kind is Kind.ROBOTS:
                self._robots_known(self.robots_for.pop(link.url), Robots.from_exchange(None))
            return
        if ex.status in TRANSIENT and self._retry(link, ex):
            return
        extracted = result.extracted or Extracted()
        notes = [extracted.note, f"truncated: {ex.truncated}" if ex.truncated else None,
                 f"noarchive ({result.noarchive})" if result.noarchive else None]
        reason = "; ".join(n for n in notes if n)
        if result.kept:
            self.on_outcome(Outcome(link, "fetched", reason, status=ex.status, url=ex.url,
                                    title=extracted.title, date=ex.date, bytes=ex.block_length,
                                    truncated=ex.truncated))
        else:
            self.on_outcome(Outcome(link, "skipped", f"{reason}: not kept (--respect-noarchive)",
                                    status=ex.status, url=ex.url))
        if result.robots is not None:
            self._robots_known(self.robots_for.pop(link.url), result.robots)
        if 300 <= ex.status < 400 and ex.status != 304:
            self._follow_redirect(link, ex)
        for ref, why in extracted.skipped:
            self._log_skip(_child(link, ref.url, ref.kind, ref.via), why)
        for found in extracted.found:
            self.offer(_child(link, found.url, found.kind, found.via))

    def _retry(self, link: Link, ex: Exchange) -> bool:
        """Queue another try of a transient error when allowed; return True if queued."""
        if link.attempt >= self.options.retries:
            return False
        wait = retry_after(ex.header("Retry-After"), ex.date) or float(2 ** link.attempt)
        if wait > self.options.retry_max_wait:
            return False
        self.on_outcome(Outcome(link, "retried", f"HTTP {ex.status}: trying again in {wait:.0f} s",
                                status=ex.status, url=ex.url, date=ex.date, bytes=ex.block_length))
        again = replace(link, attempt=link.attempt + 1)
        self.queue.defer(self.clock() + wait, again)
        return True

    def _follow_redirect(self, link: Link, ex: Exchange) -> None:
        limit = ROBOTS_REDIRECTS if link.kind is Kind.ROBOTS else self.options.max_redirects
        hop, why, failed = redirect_hop(link, _header_text(ex.header("Location") or ""), ex.url, limit)
        if why:
            if failed and link.kind is not Kind.ROBOTS:   # a loop cookies did not end, or a trap
                self.on_outcome(Outcome(hop, "failed", why))
            else:
                self._log_skip(hop, why)
            if link.kind is Kind.ROBOTS:
                self._robots_known(self.robots_for.pop(link.url), Robots.from_exchange(ex))
        elif link.kind is Kind.ROBOTS:
            # RFC 9309: follow a robots.txt redirect; its rules govern the origin first asked.
            self.robots_for[hop.url] = self.robots_for.pop(link.url)
            self._enqueue(hop)
        else:   # back to a URL of its own chain: ask again if a cookie came since, else a loop
            back = self.chains.back(hop, limit, ex.header("Set-Cookie") is not None)
            if back == "again":
                self.queue.forget(hop.url)
            elif back == "loop":
                self.on_outcome(Outcome(hop, "failed", "redirect loop"))
            self.offer(hop)

    def offer(self, link: Link) -> None:
        """Queue `link` unless it was seen, is out of scope, or robots.txt forbids it."""
        if link.url in self.queue:
            return
        why = self.scope.reason(link)
        if why is None and self.options.max_urls and self.queue.total >= self.options.max_urls:
            why = f"over --max-urls {self.options.max_urls}"
        host = host_of(link.url)
        if why is None and self.options.max_per_host and self.queue.count_for(host) >= self.options.max_per_host:
            why = f"over --max-per-host {self.options.max_per_host}"
        if why:
            self._log_skip(link, why)
            return
        self.queue.see(link.url)
        if self.scope.needs_robots(link):
            origin = origin_of(link.url)
            if origin not in self.robots:
                self.robots[origin] = None
                self.robots_for[robots_url(link.url)] = origin
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
        self.queue.push(link)

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
    if via == REFRESH:
        return refresh_hop(parent, url)
    if kind is Kind.PAGE:
        return Link(url, kind, parent.depth + 1, parent.url, via)
    # requisites of requisites and frames in frames: counted, so a chain cannot go on forever
    nest = parent.nest + 1 if parent.kind is not Kind.PAGE else 1
    return Link(url, kind, parent.depth, parent.url, via, nest=nest)


def noarchive(exchange: Exchange, extracted: Extracted | None) -> str | None:
    """Return where a response asks not to be archived (X-Robots-Tag, <meta name=robots>), or None.

    An X-Robots-Tag directive aimed at one named crawler ("googlebot: noarchive") is not ours.
    """
    for name, value in exchange.headers:
        if name.lower() != "x-robots-tag":
            continue
        agent, sep, rules = value.partition(":")
        if sep and agent.strip().lower() not in ("archive", "*") and " " not in agent.strip():
            continue
        tokens = {t.strip().lower() for t in (rules if sep else value).split(",")}
        if tokens & {"noarchive", "none"}:
            return "X-Robots-Tag"
    if extracted is not None and extracted.robots & {"noarchive", "none"}:
        return "meta robots"
    return None


def retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After value asks to wait (delta-seconds or an HTTP date).

    >>> from datetime import datetime, timezone
    >>> retry_after("7", datetime.now(timezone.utc)), retry_after("soon", datetime.now(timezone.utc))
    (7.0, None)
    >>> retry_after("Thu, 26 Nov 2026 12:00:30 GMT", datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc))
    30.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _header_text(value: str) -> str:
    """Return a header value read as UTF-8 when its bytes are (http.client reads Latin-1).

    >>> _header_text("/caf\u00c3\u00a9.html")
    '/café.html'
    """
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value
