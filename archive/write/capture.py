"""capture(): seeds in, a finished snapshot out. Wires scope, crawl, fetch, WARC, index, package, store."""
from __future__ import annotations

import errno
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from archive.errors import ArchiveError, DiskFull, Interrupted, NoAnswer, StorageError, UsageError
from archive.formats.urls import InvalidURL, canonicalize, host_of
from archive.models import CaptureOptions, Exchange, Kind, Link, Outcome, Record, Snapshot, rfc3339, utcnow
from archive.snapshot.catalogue import refresh
from archive.snapshot.package import datapackage, write_package, write_pages
from archive.snapshot.store import Collection, collection_of, snapshot_name
from archive.warc.cdxj import write_index
from archive.warc.writer import WarcWriter, new_record_id

from .dedup import ConditionalFetcher, Deduper, DedupIndex, LocalIndex
from .resume import HeldCapture, options_from
from .resume import exchange as held_exchange
from .resume import load as load_interrupted
from .scope import Scope

if TYPE_CHECKING:
    from .crawl import HostLimiter

logger = logging.getLogger(__name__)

# Progress gets the counts so far (fetched, failed, skipped, bytes, pages, ... as in the
# snapshot's metadata) plus "queued" and "in_flight", the frontier now; after every URL.
Progress = Callable[[dict[str, int]], None]
# OnURL gets each URL's capture log entry (url, kind, outcome, status, reason) and its "bytes".
OnURL = Callable[[dict[str, Any]], None]


class _Run:
    """The bookkeeping of one capture: log lines, counts, pages, index records."""

    def __init__(self, log: TextIO, progress: Progress | None, on_url: OnURL | None = None):
        self.log = log
        self.progress = progress
        self.on_url = on_url
        self.frontier: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self.counts: Counter[str] = Counter()
        self.records: list[Record] = []
        self.pages: list[dict[str, Any]] = []
        self.failures: list[dict[str, str]] = []
        self.incomplete: list[dict[str, str]] = []
        self.seed_results: dict[str, dict[str, Any]] = {}

    def record(self, writer: WarcWriter, held: HeldCapture | None = None,
               deduper: Deduper | None = None) -> Callable[[Exchange, Link], Record]:
        kept: set[str] = set()

        def write(exchange: Exchange, link: Link) -> Record:
            if held is not None and exchange.url in held.held:
                rec = held.held[exchange.url].record   # in the WARC already, from before
                if exchange.url in kept:
                    return rec
                kept.add(exchange.url)
            else:
                original = deduper.original_for(exchange) if deduper is not None else None
                rec = writer.write_exchange(exchange, original)
            self.records.append(rec)   # list.append is atomic; read only after the crawl
            return rec
        return write

    def outcome(self, out: Outcome) -> None:
        link = out.link
        entry: dict[str, Any] = {"url": link.url, "kind": str(link.kind), "depth": link.depth,
                                 "found_on": link.source, "via": link.via, "outcome": out.outcome}
        if out.status is not None:
            entry["status"] = out.status
        if out.reason:
            entry["reason"] = out.reason
        if out.date is not None:
            entry["ts"] = rfc3339(out.date)
        self.log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.log.flush()   # the log is the completeness record, even of a capture that is killed
        self._count(out)
        if self.on_url:
            self.on_url({**entry, "bytes": out.bytes})
        if self.progress:
            queued, in_flight = self.frontier()
            self.progress({**self.counts, "queued": queued, "in_flight": in_flight})

    def _count(self, out: Outcome) -> None:
        link = out.link
        self.counts[out.outcome] += 1
        if out.outcome == "failed":
            self.failures.append({"url": link.url, "reason": out.reason})
        if out.outcome != "fetched":
            if link.seed:
                self.seed_results.setdefault(_seed_key(link), {"error": out.reason})
            return
        self.counts["bytes"] += out.bytes
        redirect = out.status is not None and 300 <= out.status < 400 and out.status != 304
        # a redirect is counted apart: its target is the page (or file), counted when fetched
        self.counts["redirects" if redirect else f"{link.kind}s"] += 1
        if out.truncated:
            self.incomplete.append({"url": out.url or link.url, "truncated": out.truncated})
        # RFC 9309 2.3.1.3: a robots.txt 4xx means "no rules", not an error
        if out.status and out.status >= 400 and not (link.kind is Kind.ROBOTS and out.status < 500):
            self.counts["http_errors"] += 1
        if link.seed:
            self.seed_results[_seed_key(link)] = {"url": out.url, "status": out.status,
                                                  "ts": rfc3339(out.date) if out.date else None}
        if link.kind is Kind.PAGE and not redirect and out.date is not None:
            self.pages.append({"id": uuid.uuid5(uuid.NAMESPACE_URL, f"{out.url} {out.date}").hex,
                               "url": out.url, "ts": rfc3339(out.date), "title": out.title or "",
                               "status": out.status})


def _seed_key(link: Link) -> str:
    # A seed's redirect hops report under the seed itself; the last hop's answer wins.
    return link.seed or link.url


def capture(urls: Iterable[str] | str, collection: Path | str | None = None,
            options: CaptureOptions | None = None, *,
            clock: Callable[[], datetime] = utcnow, new_id: Callable[[], str] = new_record_id,
            capture_id: str | None = None, progress: Progress | None = None, on_url: OnURL | None = None,
            resume: str | Path | None = None, limiter: HostLimiter | None = None,
            dedup_index: DedupIndex | None = None, **option_values: Any) -> Snapshot:
    """Capture `urls` with their requisites and linked pages into a new snapshot; return it.

    Options come as a CaptureOptions, or as its fields by name: `capture(url, depth=0)`.
    With `resume` (a partial capture's id, or its folder, which names its collection), finish
    that capture instead: its seeds
    and options are read back, and nothing it already holds is fetched again. A `limiter`
    shares per-host connection slots with other captures (the local `per_host` still holds).
    With `options.dedup` (the default), a payload a finished snapshot of the collection holds
    is written as a revisit record; `dedup_index` replaces the collection's own index.
    `progress` is called with the counts after each URL, `on_url` with each URL's log entry.
    Raises UsageError for no usable seed or an unknown option, NoAnswer when no seed got an
    HTTP answer (nothing is kept), Interrupted or DiskFull with the partial folder kept,
    StorageError.
    """
    from .crawl import Crawler  # the HTTP and HTML stacks load when a capture runs, not before
    from .fetch import Fetcher, load_cookies

    given = [urls] if isinstance(urls, str) else list(urls)
    try:
        options = replace(options or CaptureOptions(), **option_values)
    except TypeError as exc:
        raise UsageError(f"unknown capture option: {exc}") from None
    store = Collection(collection) if resume is None else collection_of(resume, collection)
    held = None
    if resume is not None:
        held = load_interrupted(store.partial(str(resume)))
        given, options = held.seeds, options_from(held.options, options)
    policy = store.settings()
    # a collection that takes URLs from others can insist on these, whatever a command says
    if policy.get("block_private") is True:
        options = replace(options, block_private=True)
    if policy.get("respect_noarchive") is True:
        options = replace(options, respect_noarchive=True)
    seeds, bad = _seeds(given)
    scope = Scope(seeds, options)   # validates patterns before anything is created
    if options.cookies:
        load_cookies(options.cookies)
    if held is None:
        capture_id = capture_id or uuid.uuid4().hex[:16]
        folder, spool = store.new_partial(capture_id)
        started = clock()
    else:
        capture_id, folder, started = held.folder.name, held.folder, held.started
        spool = store.new_spool(capture_id)
    warc = WarcWriter(folder / "archive", f"archive-{capture_id[:8]}",
                      {"isPartOf": capture_id, "seeds": seeds, "options": options.to_json(),
                       "robots": "ignore" if options.ignore_robots else "obey for linked pages"},
                      clock=clock, new_id=new_id, rotate_bytes=options.warc_rotate_bytes,
                      min_free=options.min_free, existing=held.files if held else ())
    fetcher: Any = Fetcher(options, spool, clock=clock, header_hosts=frozenset(scope.hosts))
    if held is not None:
        fetcher = HeldFetcher(fetcher, held, spool)
    deduper, local = None, None
    if options.dedup or options.conditional:
        local = LocalIndex(store) if dedup_index is None or options.conditional else None
        index = (dedup_index or local) if options.dedup else None
        if options.conditional and local is not None:
            fetcher = ConditionalFetcher(fetcher, local, spool)
        deduper = Deduper(index, fetcher.not_modified if options.conditional else None)
        if held is not None:
            _keep_dependencies(held, deduper, dedup_index or local or LocalIndex(store))
    try:
        with open(folder / "logs" / "capture.jsonl", "w", encoding="utf-8") as log:
            run = _Run(log, progress, on_url)
            for raw, why in bad:
                run.outcome(Outcome(Link(raw, Kind.PAGE, seed=raw), "failed", f"invalid-url: {why}"))
            crawler = Crawler(fetcher, scope, options, run.record(warc, held, deduper), run.outcome,
                              limiter=limiter)
            run.frontier = crawler.frontier
            crawler.run(Link(url, Kind.PAGE, seed=url) for url in seeds)
        warc.close()
    except KeyboardInterrupt:
        _close_quietly(warc)
        raise Interrupted(folder) from None
    except DiskFull as exc:
        _close_quietly(warc)
        raise DiskFull(exc.path, folder, exc.why) from None
    except OSError as exc:
        _close_quietly(warc)
        raise _os_error(exc, folder) from None
    except ArchiveError:
        _close_quietly(warc)
        raise
    finally:
        fetcher.close()
        store.discard(spool)
        if local is not None:
            local.close()
    if not any("status" in r for r in run.seed_results.values()):
        store.discard(folder)
        raise NoAnswer({k: v.get("error", "no answer") for k, v in run.seed_results.items()}
                       or {u: why for u, why in bad})
    try:
        return _finish(store, folder, warc, run, given, seeds, options, started, clock(), deduper)
    except OSError as exc:
        raise _os_error(exc, folder) from None


class HeldFetcher:
    """A fetcher that answers from an interrupted capture's WARC files what they already hold."""

    def __init__(self, fetcher: Any, held: HeldCapture, spool: Path):
        self.fetcher, self.held, self.spool = fetcher, held, spool
        self.stopping = fetcher.stopping

    def fetch(self, url: str, accept: str = "*/*", extra: Sequence[tuple[str, str]] = ()) -> Exchange:
        found = self.held.held.get(url)
        if found is None:
            return self.fetcher.fetch(url, accept, extra)   # type: ignore[no-any-return]
        return held_exchange(self.held.folder, found, self.spool)

    def previous(self, url: str) -> Exchange | None:
        return self.fetcher.previous(url)   # type: ignore[no-any-return]

    def abort(self) -> None:
        self.fetcher.abort()

    def close(self) -> None:
        self.fetcher.close()


def _keep_dependencies(held: HeldCapture, deduper: Deduper, index: DedupIndex) -> None:
    """The revisits an interrupted capture wrote stay in its WARC: their originals stay
    dependencies of the snapshot, even where the resumed capture writes the URL again."""
    for digest, record_id in held.revisits:
        if not digest:
            continue   # a 304's revisit: the resumed capture asks again
        found = (index.lookup(digest, framed) for framed in (False, True))
        original = next((o for o in found if o is not None and o.record_id == record_id), None)
        if original is not None:
            deduper.refer(original)
        else:
            logger.warning("a revisit of the interrupted capture refers to %s, no longer found", record_id)


def _os_error(exc: OSError, folder: Path) -> StorageError:
    """Return our error for an OSError while capturing: DiskFull keeps the partial folder."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(exc.filename or folder, folder)
    return StorageError(exc.filename or folder, exc.strerror or str(exc))


def _seeds(urls: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Return (canonical seeds in order, without repeats; [(bad url, why)]); raise UsageError."""
    seeds: list[str] = []
    bad: list[tuple[str, str]] = []
    for raw in urls:
        try:
            url = canonicalize(raw)
        except InvalidURL as exc:
            bad.append((raw, exc.why))
            continue
        if url not in seeds:
            seeds.append(url)
    if not seeds:
        if bad:
            raise UsageError("; ".join(f"invalid URL {raw!r}: {why}" for raw, why in bad))
        raise UsageError("no URL to capture")
    return seeds, bad


def _close_quietly(warc: WarcWriter) -> None:
    try:
        warc.close()
    except ArchiveError:
        pass


def _finish(store: Collection, folder: Path, warc: WarcWriter, run: _Run, given: list[str],
            seeds: list[str], options: CaptureOptions, started: datetime,
            finished: datetime, deduper: Deduper | None = None) -> Snapshot:
    """Write index, pages and package files, then move the snapshot into place."""
    write_index(run.records, folder / "indexes" / "index.cdx")
    run.counts["records"] = 2 * len(run.records) + len(warc.files) + warc.metadata_records
    revisits = sum(1 for r in run.records if r.original is not None)
    if revisits:
        run.counts["revisits"] = revisits
        run.counts["dedup_bytes"] = deduper.saved if deduper is not None else 0
    write_pages(folder / "pages" / "pages.jsonl", run.pages)
    first = run.seed_results.get(seeds[0], {})
    title = next((p["title"] for p in run.pages if p["url"] == first.get("url")), None)
    warnings = [f"seed {url} answered HTTP {r['status']}" for url, r in run.seed_results.items()
                if isinstance(r.get("status"), int) and r["status"] >= 400]
    # a seed with no answer at all (DNS, connection) while others answered: said, not hidden
    warnings += [f"seed {url} got no answer: {r['error']}" for url, r in run.seed_results.items()
                 if "status" not in r and r.get("error")]
    metadata = {
        "seeds": [_seed_entry(raw) for raw in given],
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),   # orders snapshots a second apart
        "seed_results": run.seed_results, "capture_window": {"start": rfc3339(started),
                                                             "end": rfc3339(finished)},
        "options": options.to_json(), "counts": dict(sorted(run.counts.items())),
        "failures": run.failures, "incomplete": run.incomplete, "warnings": warnings,
    }
    if deduper is not None and deduper.used:
        # the id covers these: a citation commits to the records the snapshot is completed by
        metadata["dependencies"] = deduper.dependencies()
    known = {f"archive/{p.name}": c for p, c in warc.checksums.items()}
    package = datapackage(folder, known, created=rfc3339(finished), title=title,
                          main_url=first.get("url"), main_date=first.get("ts"), metadata=metadata)
    snapshot_id = write_package(folder, package)
    path = store.publish(folder, snapshot_name(started, host_of(seeds[0]), snapshot_id))
    refresh(store)   # the collection's catalogue takes in the new snapshot
    return Snapshot(id=snapshot_id, path=path, created=package["created"], seeds=tuple(seeds),
                    counts=dict(run.counts), warnings=tuple(warnings))


def _seed_entry(raw: str) -> dict[str, str]:
    """Return a seed as the user gave it, with its canonical form when it has one."""
    try:
        return {"given": raw, "url": canonicalize(raw)}
    except InvalidURL:
        return {"given": raw}

