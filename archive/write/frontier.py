"""The frontier and the seen-set of one crawl: per-host FIFO queues, retries waiting their time.

The crawl's main thread alone uses a Frontier, so it holds no lock.
"""
from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator

from archive.formats.urls import host_of
from archive.models import Link


class Frontier:
    """The URLs seen so far and the links waiting to be fetched, one FIFO queue per host.

    `push` counts a link against its host and the crawl (`total`, `count_for`), `defer` holds
    a retry until its time, `release_due` puts due retries back at the end of their host's queue.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.queues: dict[str, deque[Link]] = {}
        self.later: list[tuple[float, int, Link]] = []   # (when, order, link): retries waiting
        self.order = itertools.count()
        self.total = 0                                    # links ever pushed
        self.per_host: dict[str, int] = {}                # links ever pushed, by host

    # -- the seen-set ------------------------------------------------------------------------
    def __contains__(self, url: str) -> bool:
        return url in self.seen

    def see(self, url: str) -> None:
        """Mark `url` seen without queueing it (it waits for its host's robots.txt)."""
        self.seen.add(url)

    # -- the queues --------------------------------------------------------------------------
    def push(self, link: Link) -> None:
        """Queue `link` at the end of its host's queue; mark it seen and count it."""
        host = host_of(link.url)
        self.seen.add(link.url)
        self.total += 1
        self.per_host[host] = self.per_host.get(host, 0) + 1
        self._append(host, link)

    def count_for(self, host: str) -> int:
        """Return how many links were ever pushed for `host`."""
        return self.per_host.get(host, 0)

    def hosts(self) -> Iterator[str]:
        """Yield the hosts with a queued link, in the order their queues were made."""
        return (h for h, q in list(self.queues.items()) if q)

    def has(self, host: str) -> bool:
        """Return whether `host` has a queued link."""
        return bool(self.queues.get(host))

    def pop(self, host: str) -> Link:
        """Return the oldest queued link of `host`; raise IndexError when it has none."""
        return self.queues[host].popleft()

    def _append(self, host: str, link: Link) -> None:
        self.queues.setdefault(host, deque()).append(link)

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
            self._append(host_of(link.url), link)

    # -- the whole ---------------------------------------------------------------------------
    def pending(self) -> bool:
        """Return whether any link is queued or waiting."""
        return bool(self.later) or any(self.queues.values())

    def __len__(self) -> int:
        """The links queued or waiting now."""
        return sum(map(len, self.queues.values())) + len(self.later)

    def close(self) -> None:
        """Let go of what the frontier holds."""
