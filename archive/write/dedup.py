"""Revisit records: what a collection holds already, and where.

A capture into a collection asks, for every response it is about to write, whether a
finished snapshot of the collection holds a response with the same payload digest. If so the
WARC gets a `revisit` record (identical-payload-digest profile) instead of a second copy of
the body, and the new snapshot names the records it depends on in its metadata, where
`verify`, replay, export and `rm` find them. Partial captures are never referred to.

With `conditional`, a request also carries the validators (ETag, Last-Modified) of the
collection's last capture of its URL; a 304 answer is kept as a revisit record of the
server-not-modified profile, and the links of the stored body are followed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from archive.errors import ArchiveError
from archive.models import Exchange, Original, Record
from archive.snapshot.reader import IndexEntry, Package, Response
from archive.snapshot.catalogue import CaptureRow, open_catalogue
from archive.snapshot.store import Collection, snapshot_id_of
from archive.warc.cdxj import REVISIT_MIME

from .resume import Held, warc_datetime
from .resume import exchange as held_exchange

MIN_SIZE = 1024          # a revisit record with its request costs about a kilobyte: smaller bodies are kept
MAX_CANDIDATES = 8       # records of one digest tried for one with the right chunk framing


class DedupIndex(Protocol):
    """Where a payload digest is stored already."""

    def lookup(self, digest: str, chunked: bool = False) -> Original | None:
        """Return a stored response record with this payload digest, stored with chunk framing
        or without as `chunked` says, or None."""


def originals(snapshot: Path) -> Iterator[Original]:
    """Yield every response record of a finished snapshot that a revisit may refer to."""
    snapshot_id = snapshot_id_of(snapshot)
    with Package.open(snapshot) as package:
        entries = [e for e in package.index() if e.mime != REVISIT_MIME and e.digest]
        for entry in entries:
            original, _ = _resolve_in(package, snapshot_id, entry)
            if original is not None:
                yield original


class LocalIndex:
    """The payload digests of a collection's finished snapshots, looked up in the collection's
    catalogue (snapshot/catalogue.py): no snapshot is read until one of its records is asked for.

    The oldest snapshot holding a payload is the one referred to; a snapshot whose last
    verification failed is never referred to. Record heads are read only for digests that are
    asked for and found; lookups are safe from several threads.
    """

    def __init__(self, collection: Collection):
        self.catalogue = open_catalogue(collection)
        self.resolved: dict[tuple[str, bool], Original | None] = {}
        self.lock = threading.Lock()

    def lookup(self, digest: str, chunked: bool = False) -> Original | None:
        key = (digest, chunked)
        with self.lock:
            if key in self.resolved:
                return self.resolved[key]
        original = None
        for _ in range(2):   # again once when a snapshot changed since it was catalogued
            rows = self.catalogue.payload_places(digest, MAX_CANDIDATES)
            if all(self.catalogue.current(i) for i in {row.snapshot_id for row in rows}):
                break
        for row in rows:
            found = _resolve(_place(row))[0]
            if found is not None and found.chunked == chunked:
                original = found
                break
        with self.lock:
            self.resolved[key] = original
        return original

    def last_capture(self, url: str) -> tuple[Original, Response] | None:
        """Return the newest 200 response record of `url` with its HTTP head, or None."""
        row = self.catalogue.last_response(url)
        if row is not None and not self.catalogue.current(row.snapshot_id):
            row = self.catalogue.last_response(url)
        if row is None:
            return None
        original, response = _resolve(_place(row))
        return (original, response) if original is not None and response is not None else None

    def folder_of(self, snapshot_id: str) -> Path | None:
        """Return the folder of a snapshot of the collection, or None."""
        row = self.catalogue.snapshot(snapshot_id)
        return Path(row.folder) if row is not None else None

    def close(self) -> None:
        self.catalogue.close()


def _place(row: CaptureRow) -> Place:
    status = "" if row.status is None else str(row.status)
    return (Path(row.folder), row.snapshot_id, IndexEntry("", row.timestamp, row.url, status, row.mime,
                                                          row.payload_digest, row.filename, row.offset,
                                                          row.length, {}))


Place = tuple[Path, str, IndexEntry]


def _resolve(place: Place) -> tuple[Original | None, Response | None]:
    """Return the record at a place as an Original, with its HTTP head; (None, None) if damaged."""
    folder, snapshot_id, entry = place
    try:
        with Package.open(folder) as package:
            return _resolve_in(package, snapshot_id, entry)
    except (ArchiveError, OSError):
        return None, None


def _resolve_in(package: Package, snapshot_id: str,
                entry: IndexEntry) -> tuple[Original | None, Response | None]:
    """The same, in a package open already."""
    try:
        with package.record(entry.filename, entry.offset) as (response, _):
            heads = response.warc_headers
    except Exception:   # damaged since it was indexed: the body is kept rather than referred to
        return None, None
    if not heads.get("WARC-Record-ID") or heads.get("WARC-Type") != "response" \
            or heads.get("WARC-Payload-Digest") != entry.digest:
        return None, None   # the index does not describe the record it points at: never refer to it
    original = Original(digest=entry.digest, uri=entry.url, date=heads.get("WARC-Date", ""),
                        record_id=heads["WARC-Record-ID"], snapshot=snapshot_id,
                        filename=entry.filename, offset=entry.offset, length=entry.length,
                        chunked=response.chunked)
    return original, response


class Deduper:
    """Decides, for each exchange of one capture, whether it is written as a revisit."""

    def __init__(self, index: DedupIndex | None, not_modified: Callable[[str], Original | None] | None = None,
                 min_size: int = MIN_SIZE):
        self.index = index
        self.not_modified = not_modified
        self.min_size = min_size
        self.lock = threading.Lock()
        self.used: dict[str, dict[str, Original]] = {}   # snapshot id -> record id -> original
        self.saved = 0                                    # body bytes not written again

    def original_for(self, exchange: Exchange) -> Original | None:
        """Return the stored record `exchange` can refer to instead of keeping its body."""
        if exchange.status == 304:   # our conditional request was answered "not modified"
            original = self.not_modified(exchange.url) if self.not_modified else None
            return self.refer(original)
        body = exchange.block_length - exchange.header_length
        if self.index is None or exchange.truncated or body < self.min_size or exchange.status == 206:
            return None   # a part or a cut body is never the payload it claims to be
        # replay serves the original's stored bytes under the new head: the framing must agree
        original = self.index.lookup(exchange.payload_digest, exchange.chunked)
        if original is not None and original.chunked != exchange.chunked:
            return None
        return self.refer(original, body)

    def refer(self, original: Original | None, saved: int = 0) -> Original | None:
        """Note that this capture refers to `original` (a dependency); return it."""
        if original is not None:
            with self.lock:
                self.used.setdefault(original.snapshot, {})[original.record_id] = original
                self.saved += saved
        return original

    def dependencies(self) -> list[dict[str, object]]:
        """Return the snapshots this capture's revisits refer to, for its metadata."""
        return [{"snapshot": snapshot, "records": len(records)} for snapshot, records in sorted(self.used.items())]


class ConditionalFetcher:
    """A fetcher that sends the validators of the collection's last capture of each URL."""

    def __init__(self, fetcher: Any, index: LocalIndex, spool: Path):
        self.fetcher, self.index, self.spool = fetcher, index, spool
        self.stopping = fetcher.stopping
        self.answered: dict[str, Original] = {}   # URL -> the record a 304 stands for

    def fetch(self, url: str, accept: str = "*/*", extra: Sequence[tuple[str, str]] = ()) -> Exchange:
        last = None if url.endswith("/robots.txt") else self.index.last_capture(url)
        if last is None:
            return self.fetcher.fetch(url, accept, extra)   # type: ignore[no-any-return]
        original, response = last
        validators = [(name, value) for name, value in (("If-None-Match", response.header("ETag")),
                                                        ("If-Modified-Since", response.header("Last-Modified")))
                      if value]
        exchange: Exchange = self.fetcher.fetch(url, accept, [*extra, *validators])
        if exchange.status == 304 and validators:
            self.answered[url] = original
        return exchange

    def not_modified(self, url: str) -> Original | None:
        """Return the stored record a 304 for `url` stands for."""
        return self.answered.get(url)

    def previous(self, url: str) -> Exchange | None:
        """Return the stored response a 304 for `url` stands for (to follow its links)."""
        original = self.answered.get(url)
        if original is None:
            return self.fetcher.previous(url)   # type: ignore[no-any-return]
        folder = self.index.folder_of(original.snapshot)
        if folder is None:
            return None
        record = Record(original.uri, warc_datetime(original.date), 200, "", original.digest, original.filename,
                        original.offset, original.length)
        return held_exchange(folder, Held(record, None, "", None), self.spool)

    def abort(self) -> None:
        self.fetcher.abort()

    def close(self) -> None:
        self.fetcher.close()
