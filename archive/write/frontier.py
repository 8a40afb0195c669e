"""The frontier and the seen-set of one crawl: per-host FIFO queues, retries waiting their time.

Both stay in memory up to `memory` entries each, then spill to a SQLite file (in `folder`, or
a private temporary database when none is given), so a crawl of a million URLs holds about as
much memory as one of ten thousand. A host's queue keeps its order across the spill: its
oldest links in memory (`head`), then those on disk, then the newest in memory (`tail`).
A spill writes its rows in one transaction (one write of the pages they fill, not one per
row); the seen URLs on disk are summed up in a Bloom filter in memory (about 2 bytes a URL),
so a URL never seen, the usual case, is answered without a query.
The crawl's main thread alone uses a Frontier, so it holds no lock.
"""
from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import rbloom

from archive.errors import StorageError
from archive.formats.urls import host_of
from archive.models import Kind, Link

MEMORY = 20_000        # links queued in memory, and URLs in the seen-set's memory, before a spill
REFILL = 512           # links read back from disk at once into a host's head
FALSE_MAYBE = 0.005    # share of never-seen URLs the Bloom filter answers "maybe" (then a query says no)
_KINDS = {k.value: k for k in Kind}


class _Bloom:
    """The seen URLs on disk, summed up: `in` answers False (never added) or True (maybe).
    rbloom's Bloom filter, sized for `capacity` URLs at FALSE_MAYBE false "maybe" answers; it
    places bits by Python's `hash`, so it means something in this process only.

    >>> b = _Bloom(100)
    >>> b.add("http://ex.org/a")
    >>> "http://ex.org/a" in b, "http://ex.org/b" in b
    (True, False)
    """

    __slots__ = ("filter", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        self.filter = rbloom.Bloom(max(1, capacity), FALSE_MAYBE)
        self.capacity = capacity
        self.count = 0

    def add(self, text: str) -> None:
        self.filter.add(text)
        self.count += 1

    def __contains__(self, text: object) -> bool:
        return text in self.filter


class _Host:
    __slots__ = ("head", "disk", "tail", "pushed", "id")

    def __init__(self, ident: int = 0) -> None:
        self.id = ident                    # the host's number in the spill file
        self.head: deque[Link] = deque()   # the oldest links
        self.disk = 0                      # then this many on disk
        self.tail: list[Link] = []         # then the newest (only while something is on disk)
        self.pushed = 0                    # links ever pushed for this host

    def __len__(self) -> int:
        return len(self.head) + self.disk + len(self.tail)


class Frontier:
    """The URLs seen so far and the links waiting to be fetched, one FIFO queue per host.

    `push` counts a link against its host and the crawl (`total`, `count_for`), `defer` holds
    a retry until its time, `release_due` puts due retries back at the end of their host's
    queue. `memory` (entries, >= 1) bounds the links and the seen URLs held in memory; past
    it they go to `folder`/frontier.sqlite3 (removed by `close`). Raises StorageError when
    the spill file cannot be written.
    """

    def __init__(self, folder: Path | None = None, memory: int | None = None) -> None:
        self.memory = max(1, memory if memory is not None else MEMORY)
        self.folder = folder
        self.seen: set[str] = set()          # URLs seen since the last spill of the seen-set
        self.hosts_: dict[str, _Host] = {}
        self.in_memory = 0                   # links in heads and tails
        self.queued = 0                      # links queued now, wherever they are
        self.later: list[tuple[float, int, Link]] = []   # (when, order, link): retries waiting
        self.order = itertools.count()
        self.total = 0                       # links ever pushed
        self.spilled_seen = False
        self.on_disk: _Bloom | None = None   # the seen URLs on disk, summed up
        self.limit = self.memory             # spill when in_memory passes this
        self._db: sqlite3.Connection | None = None
        self._path: Path | None = None

    # -- the seen-set ------------------------------------------------------------------------
    def __contains__(self, url: str) -> bool:
        if url in self.seen:
            return True
        if self.on_disk is None or url not in self.on_disk:
            return False   # not on disk for sure: no query
        return self._sql("SELECT 1 FROM seen WHERE url = ?", (url,)).fetchone() is not None

    def see(self, url: str) -> None:
        """Mark `url` seen without queueing it (it waits for its host's robots.txt)."""
        self.seen.add(url)
        if len(self.seen) > self.memory:
            self._spill_seen()

    def _spill_seen(self) -> None:
        urls = sorted(self.seen)   # in key order: each B-tree page is written once, not at random
        self._transaction("INSERT OR IGNORE INTO seen VALUES (?)", [(u,) for u in urls])
        bloom = self.on_disk
        if bloom is None or bloom.count + len(urls) > bloom.capacity:
            # (re)made larger than what is on disk, from the disk: amortised O(1) a URL
            bloom = _Bloom(2 * bloom.count + 2 * len(urls) if bloom else 8 * len(urls))
            for (url,) in self._sql("SELECT url FROM seen", ()):
                bloom.add(url)
            self.on_disk = bloom
        else:
            for url in urls:
                bloom.add(url)
        self.seen.clear()
        self.spilled_seen = True

    def forget(self, url: str) -> None:
        """Unmark `url`, so it may be queued again (a URL of a redirect chain asked again once a
        cookie came: write/hops.py)."""
        self.seen.discard(url)
        if self.spilled_seen:
            self._sql("DELETE FROM seen WHERE url = ?", (url,))   # the Bloom filter's "maybe" is checked

    # -- the queues --------------------------------------------------------------------------
    def push(self, link: Link) -> None:
        """Queue `link` at the end of its host's queue; mark it seen and count it."""
        host = host_of(link.url)
        self._append(host, self._claim(link.url, host), link)

    def claim(self, url: str) -> None:
        """Mark `url` seen and count it against its host and the total without queueing it (a
        URL the browser fetches through the recording proxy: write/browsing.py)."""
        self._claim(url, host_of(url))

    def _claim(self, url: str, host: str) -> _Host:
        self.see(url)
        self.total += 1
        entry = self.hosts_.get(host)
        if entry is None:
            entry = self.hosts_[host] = _Host(len(self.hosts_))
        entry.pushed += 1
        return entry

    def count_for(self, host: str) -> int:
        """Return how many links were ever pushed for `host`."""
        entry = self.hosts_.get(host)
        return entry.pushed if entry is not None else 0

    def hosts(self) -> Iterator[str]:
        """Yield the hosts with a queued link, in the order their queues were made."""
        return (h for h, e in list(self.hosts_.items()) if len(e))

    def has(self, host: str) -> bool:
        """Return whether `host` has a queued link."""
        entry = self.hosts_.get(host)
        return entry is not None and len(entry) > 0

    def pop(self, host: str) -> Link:
        """Return the oldest queued link of `host`; raise IndexError when it has none."""
        entry = self.hosts_.get(host)
        if entry is None:
            raise IndexError(host)
        if not entry.head:
            if entry.disk:
                self._refill(entry)
            elif entry.tail:
                entry.head.extend(entry.tail)
                entry.tail.clear()
        link = entry.head.popleft()
        self.in_memory -= 1
        self.queued -= 1
        return link

    def _append(self, host: str, entry: _Host, link: Link) -> None:
        self.queued += 1
        self.in_memory += 1
        if entry.disk or entry.tail:
            entry.tail.append(link)
        else:
            entry.head.append(link)
        if self.in_memory > self.limit:
            self._spill()
            # many hosts each keep their next link in memory: do not scan them all on every push
            self.limit = max(self.memory, 2 * self.in_memory)

    def _spill(self) -> None:
        """Move every host's tail to disk, and the heads of hosts beyond what memory holds."""
        rows: list[tuple[object, ...]] = []
        for entry in self.hosts_.values():
            if not entry.disk and len(entry.head) > 1:
                # the host's next link stays in memory; the rest of its head waits on disk
                entry.tail[:0] = list(itertools.islice(entry.head, 1, None))
                while len(entry.head) > 1:
                    entry.head.pop()
            if entry.tail:
                ident = entry.id
                rows += [(ident, *_fields(link)) for link in entry.tail]
                entry.disk += len(entry.tail)
                self.in_memory -= len(entry.tail)
                entry.tail.clear()
        self._transaction("INSERT INTO queue (host, url, kind, depth, source, via, hops, seed, nest, attempt) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def _refill(self, entry: _Host) -> None:
        rows = self._sql("SELECT seq, url, kind, depth, source, via, hops, seed, nest, attempt FROM queue "
                         "WHERE host = ? ORDER BY seq LIMIT ?", (entry.id, REFILL)).fetchall()
        self._sql("DELETE FROM queue WHERE host = ? AND seq <= ?", (entry.id, rows[-1][0]))
        entry.head.extend(Link(url, _KINDS[kind], depth, source, via, hops, seed, nest, attempt)
                          for _, url, kind, depth, source, via, hops, seed, nest, attempt in rows)
        entry.disk -= len(rows)
        self.in_memory += len(rows)

    # -- retries -----------------------------------------------------------------------------
    def defer(self, when: float, link: Link) -> None:
        """Hold `link` until the clock reads `when` (seconds, the crawl's clock)."""
        heapq.heappush(self.later, (when, next(self.order), link))

    def next_due(self) -> float | None:
        """Return when the first retry waiting is due, or None."""
        return self.later[0][0] if self.later else None

    def release_due(self, now: float) -> None:
        """Queue every retry due by `now` at the end of its host's queue."""
        while self.later and self.later[0][0] <= now:
            _, _, link = heapq.heappop(self.later)
            host = host_of(link.url)
            entry = self.hosts_.get(host)
            if entry is None:
                entry = self.hosts_[host] = _Host(len(self.hosts_))
            self._append(host, entry, link)

    # -- the whole ---------------------------------------------------------------------------
    def pending(self) -> bool:
        """Return whether any link is queued or waiting."""
        return bool(self.later) or self.queued > 0

    def __len__(self) -> int:
        """The links queued or waiting now."""
        return self.queued + len(self.later)

    @property
    def spilled(self) -> bool:
        """Whether anything went to disk."""
        return self._db is not None

    def close(self) -> None:
        """Let go of what the frontier holds; remove the spill file."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None
        self.on_disk = None

    # -- the spill file ----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                if self.folder is not None:
                    self._path = self.folder / "frontier.sqlite3"
                    self._path.unlink(missing_ok=True)
                # a file nobody else reads, removed at the end: no journal, no fsync
                db = sqlite3.connect(str(self._path) if self._path else "", isolation_level=None)
                db.execute("PRAGMA journal_mode = OFF")
                db.execute("PRAGMA synchronous = OFF")
                db.execute("PRAGMA cache_size = -4096")   # KiB: 4 MiB of pages in memory
                db.execute("CREATE TABLE seen (url TEXT PRIMARY KEY) WITHOUT ROWID")
                # a link as its fields (models.Link's, in order), after its host's number
                db.execute("CREATE TABLE queue (seq INTEGER PRIMARY KEY, host INTEGER, url TEXT, kind TEXT, "
                           "depth INTEGER, source TEXT, via TEXT, hops INTEGER, seed TEXT, nest INTEGER, "
                           "attempt INTEGER)")
                db.execute("CREATE INDEX queue_host ON queue (host, seq)")
            except (OSError, sqlite3.Error) as exc:
                raise StorageError(self._path or "frontier", f"cannot spill the frontier: {exc}") from None
            self._db = db
        return self._db

    def _sql(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self._conn().execute(sql, args)
        except sqlite3.Error as exc:
            raise StorageError(self._path or "frontier", f"frontier spill file: {exc}") from None

    def _transaction(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        """Run `sql` for each of `rows` in one transaction (autocommit would write the pages
        each row touches once per row)."""
        db = self._conn()
        try:
            db.execute("BEGIN")
            try:
                db.executemany(sql, rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(self._path or "frontier", f"frontier spill file: {exc}") from None


def _fields(link: Link) -> tuple[object, ...]:
    """Return a Link's fields in order, its kind as its value: a row of the spill file.

    >>> _fields(Link("http://ex.org/", Kind.PAGE, 1, "http://ex.org/a", "a@href"))
    ('http://ex.org/', 'page', 1, 'http://ex.org/a', 'a@href', 0, None, 0, 0)
    """
    return (link.url, link.kind.value, link.depth, link.source, link.via, link.hops, link.seed, link.nest,
            link.attempt)
