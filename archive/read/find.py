"""Find snapshots: the collection's list, the captures of one URL (a TimeMap), one snapshot's details."""
from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import ArchiveError, NotASnapshot, SnapshotNotFound
from archive.models import LOCAL_REPLAY
from archive.snapshot.catalogue import open_catalogue
from archive.snapshot.store import Collection, file_lines

if TYPE_CHECKING:   # `list` needs only the catalogue: what `show` reads loads with it
    from archive.snapshot.reader import IndexEntry, Package


def replay_url(base: str, snapshot_id: str, timestamp: str, url: str) -> str:
    """Return the frameless replay URL of `url` as captured in a snapshot.

    >>> replay_url("http://127.0.0.1:8080/", "ab" * 32, "20261126113754", "http://ex.org/")
    'http://127.0.0.1:8080/abababababababababababababababababababababababababababababababab/20261126113754/http://ex.org/'
    """
    return f"{base.rstrip('/')}/{snapshot_id}/{timestamp}/{url}"


@dataclass(frozen=True)
class Summary:
    """One line of `archive list`."""

    id: str
    path: Path
    created: str
    seeds: tuple[str, ...]
    pages: int
    bytes: int
    verified: dict[str, Any] | None = None
    complete: bool = True    # False: a capture under .partial (under way, interrupted or killed)
    started: str = ""        # the capture's start to the microsecond, where recorded: orders ties

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "created": self.created,
                "seeds": list(self.seeds), "pages": self.pages, "bytes": self.bytes,
                "last_verified": self.verified, "complete": self.complete}


@dataclass(frozen=True)
class Memento:
    """One capture of a URL in one snapshot."""

    snapshot_id: str
    timestamp: str
    url: str
    status: str
    digest: str
    replay: str
    changed: bool | None = None   # against the capture before it (None: the first, or cannot tell)
    state: str = "first"          # the same as a word: change_state()

    @property
    def datetime(self) -> datetime:
        return datetime.strptime(self.timestamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


def snapshots(collection: Path | str | None = None, *, limit: int | None = None, offset: int = 0) -> list[Summary]:
    """Return the collection's snapshots, newest first, from its catalogue: all of them, or the
    page of `limit` after the `offset` newest; captures under .partial are listed on the first
    page. Raises NotACollection."""
    store = Collection(collection).require()
    with open_catalogue(store) as catalogue:
        rows = catalogue.snapshots(offset, catalogue.count() if limit is None else limit)
    found = [Summary(r.id, Path(r.folder), r.captured_at, r.seeds, r.pages, r.size,
                     None if r.verified_at is None else {"time": r.verified_at, "ok": r.verified_ok,
                                                         "problems": r.problems},
                     started=r.started) for r in rows]
    if offset == 0:
        found += [_partial_summary(folder) for folder in store.partials()]
    return sorted(found, key=lambda s: (s.created, s.started), reverse=True)


def _partial_summary(folder: Path) -> Summary:
    """Describe an incomplete capture from what it wrote: its warcinfo, log and WARC files."""
    warcs = sorted((folder / "archive").glob("*.warc.gz")) if (folder / "archive").is_dir() else []
    seeds = _warcinfo_seeds(warcs[0]) if warcs else []
    pages = 0
    try:
        for line in file_lines(folder / "logs" / "capture.jsonl"):
            entry = json.loads(line)
            pages += int(isinstance(entry, dict) and entry.get("kind") == "page"
                         and entry.get("outcome") == "fetched"
                         and not _redirect(entry.get("status")))   # as pages.jsonl counts them
    except (OSError, ValueError, RecursionError):
        pass
    size = sum(p.stat().st_size for p in warcs)
    started = datetime.fromtimestamp(folder.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Summary(folder.name, folder, started, tuple(seeds), pages, size, None, complete=False)


def _captures(package: Package) -> dict[tuple[str, str], IndexEntry]:
    """Return the index lines naming a WARC file of the package, by (URL, 14-digit time)."""
    from archive.snapshot.reader import warc_member

    return {(e.url, e.timestamp[:14]): e for e in package.index() if warc_member(e.filename)}


def _listed_pages(package: Package, captures: dict[tuple[str, str], IndexEntry]) -> list[tuple[dict[str, Any], IndexEntry]]:
    """Return (page list entry, its index line) of each page the index holds a capture of."""
    found = []
    for page in package.pages():
        entry = captures.get((str(page["url"]), "".join(ch for ch in str(page.get("ts", "")) if ch.isdigit())[:14]))
        if entry is not None:
            found.append((page, entry))
    return found


def _page(package: Package, page: dict[str, Any], entry: IndexEntry) -> dict[str, Any]:
    """Return what `show` says of a page: URL, time and status from its index line, title from its record."""
    from archive.snapshot.depends import payload_of

    stamp = entry.timestamp
    try:
        with payload_of(package, entry) as (holder, original):
            title = holder.title(original)
    except ArchiveError:
        title = ""
    return {"id": str(page.get("id", "")), "url": entry.url,
            "ts": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:{stamp[12:14]}Z",
            "title": title, "status": int(entry.status) if entry.status.isdigit() else entry.status}


def _warcinfo_seeds(warc: Path) -> list[str]:
    """Return the seeds a WARC file's warcinfo record names (its first gzip member)."""
    try:
        with open(warc, "rb") as f:
            head = zlib.decompressobj(31).decompress(f.read(1 << 16), 1 << 16)
    except (OSError, zlib.error):
        return []
    for line in head.decode("utf-8", "replace").split("\r\n"):
        if line.startswith("seeds: "):
            try:
                return [str(s) for s in json.loads(line[7:])]
            except ValueError:
                return []
    return []


def timemap(url: str, collection: Path | str | None = None, base_url: str = LOCAL_REPLAY) -> list[Memento]:
    """Return every capture of `url` in the collection, oldest first (a Memento TimeMap), from
    its catalogue. Raises NotACollection."""
    with open_catalogue(Collection(collection).require()) as catalogue:
        rows = catalogue.timemap(url)
    out = []
    base, before = base_url.rstrip("/"), None
    for r in rows:
        state = change_state(before, r.payload_digest)
        before = r.payload_digest
        out.append(Memento(r.snapshot_id, r.timestamp, r.url, "" if r.status is None else str(r.status),
                           r.payload_digest, f"{base}/{r.snapshot_id}/{r.timestamp}/{r.url}",   # replay_url
                           _CHANGED.get(state), state))
    return out


_CHANGED = {"same": False, "changed": True}


def change_state(before: str | None, after: str) -> str:
    """Return how a capture's payload compares with the capture of the same URL before it:
    "first" (`before` is None), "same" or "changed" by payload digest (WARC 1.1 section 5.9,
    WARC-Payload-Digest, as the CDXJ index carries it: "algo:value", base32 or hex), or
    "unknown" when either has no digest ("-": an ARC record, or a WARC record written without
    one) or the two were taken with different algorithms, so their bytes cannot be compared.

    >>> change_state(None, "sha1:AAAA"), change_state("sha1:AAAQEAYEAUDAO", "sha1:0001020304050607")
    ('first', 'same')
    >>> change_state("-", "-"), change_state("sha1:AAAA", "sha256:" + "ab" * 32), change_state("sha1:AA", "sha1:AB")
    ('unknown', 'unknown', 'changed')
    """
    if before is None:
        return "first"
    if before == after and before.strip() not in ("", "-"):   # the usual case: the body seen before
        return "same"
    from .coverage import same_digest

    known = [d.strip() for d in (before, after) if d and d.strip() not in ("", "-")]
    algorithms = {d.rpartition(":")[0].lower() for d in known} - {""}
    if len(known) < 2 or len(algorithms) > 1:
        return "unknown"
    return "same" if same_digest(before, after) else "changed"


def link_format(url: str, mementos: list[Memento], base_url: str = LOCAL_REPLAY) -> str:
    """Return an RFC 7089 application/link-format TimeMap."""
    from email.utils import format_datetime

    base = base_url.rstrip("/")
    lines = [f'<{url}>; rel="original"',
             f'<{base}/all/timemap/link/{url}>; rel="self"; type="application/link-format"',
             f'<{base}/all/{url}>; rel="timegate"']
    for i, m in enumerate(mementos):
        rel = "memento"
        if i == 0:
            rel = "first memento"
        if i == len(mementos) - 1:
            rel = "last memento" if i else "first last memento"
        date = format_datetime(m.datetime, usegmt=True)
        lines.append(f'<{m.replay}>; rel="{rel}"; datetime="{date}"')
    return ",\n".join(lines) + "\n"


@dataclass
class Details:
    """What `archive show` tells about one snapshot."""

    id: str
    path: Path
    created: str
    window: dict[str, str]
    pages: list[dict[str, Any]]
    types: dict[str, dict[str, int]]
    failures: list[dict[str, Any]]
    options: dict[str, Any]
    counts: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    dependencies: list[dict[str, Any]] = field(default_factory=list)   # snapshots its revisits refer to
    http_errors: list[dict[str, Any]] = field(default_factory=list)    # {"url", "status"}: 4xx/5xx answers
    complete: bool = True   # False: a capture under .partial, shown from its log so far

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "created": self.created,
                "capture_window": self.window, "pages": self.pages, "types": self.types,
                "failures": self.failures, "options": self.options, "counts": self.counts,
                "warnings": self.warnings, "dependencies": self.dependencies,
                "http_errors": self.http_errors, "complete": self.complete}


def details(ref: str, collection: Path | str | None = None) -> Details:
    """Return pages, resources by type, failures, HTTP errors and options of one snapshot.

    A capture under .partial (its folder, or a 6+ character prefix of its id as `list`
    shows it) is described from its capture log so far, with `complete` False.
    Raises SnapshotNotFound, NotASnapshot, NotACollection; VerificationFailed for a package
    from outside the collection that fails verify.
    """
    store = Collection(collection)
    try:
        return _details(store, ref)
    except (SnapshotNotFound, NotASnapshot):
        partial = store.find_partial(ref)
        if partial is None:
            raise
        return _partial_details(partial)


def _details(store: Collection, ref: str) -> Details:
    from archive.snapshot.catalogue_ops import folder_for
    from archive.snapshot.reader import as_dict, as_list

    from .verify import require_intact

    ref = folder_for(store.root, ref)   # an id prefix found in the catalogue, not by reading every snapshot
    require_intact(ref, store.root)
    with store.open(ref) as package:
        data = package.datapackage()
        meta = package.metadata()
        counts: Counter[str] = Counter()
        sizes: Counter[str] = Counter()
        for entry in package.index():
            kind = (entry.mime or "unknown").split(";")[0]
            counts[kind] += 1
            sizes[kind] += entry.length
        pages = [_page(package, page, entry) for page, entry in _listed_pages(package, _captures(package))]
        types = {k: {"count": counts[k], "stored_bytes": sizes[k]} for k in sorted(counts)}
        failures = [f for f in as_list(meta.get("failures")) if isinstance(f, dict)]
        log = _log(package.lines(LOG)) if package.has(LOG) else []
        return Details(package.id, package.path, str(data.get("created", "")),
                       as_dict(meta.get("capture_window")), pages, types, failures + _skips(log),
                       as_dict(meta.get("options")), as_dict(meta.get("counts")),
                       [str(w) for w in as_list(meta.get("warnings"))],
                       [d for d in as_list(meta.get("dependencies")) if isinstance(d, dict)],
                       _http_errors(log))


def _partial_details(folder: Path) -> Details:
    """Describe an incomplete capture from its log: the pages, failures and skips so far."""
    try:
        log = _log(file_lines(folder / LOG))
    except OSError:
        log = []
    summary = _partial_summary(folder)
    fetched = [e for e in log if e.get("outcome") == "fetched"]
    pages = [{"url": e.get("url"), "status": e.get("status"), "ts": e.get("ts")} for e in fetched
             if e.get("kind") == "page" and not _redirect(e.get("status"))]
    kinds = Counter(str(e.get("kind")) for e in fetched)
    types = {f"({kind}s so far)": {"count": n, "stored_bytes": 0} for kind, n in sorted(kinds.items())}
    failures = [{"url": e.get("url"), "reason": e.get("reason")} for e in log if e.get("outcome") == "failed"]
    return Details(folder.name, folder, summary.created, {}, pages, types, failures + _skips(log), {},
                   {"pages": len(pages), "bytes": summary.bytes}, [], [], _http_errors(log),
                   complete=False)


LOG = "logs/capture.jsonl"
_LOG_FIELDS = ("url", "kind", "outcome", "status", "reason", "ts")


def _redirect(status: object) -> bool:
    return isinstance(status, int) and 300 <= status < 400 and status != 304


def _log(lines: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """Return the entries of a capture log (one JSON object a line, streamed with the reader's
    line cap), bad lines left out, each cut to the fields show uses."""
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(entry, dict):
            entries.append({k: entry[k] for k in _LOG_FIELDS if k in entry})
    return entries


def _skips(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the capture log's skipped URLs (scope, robots, depth) with their reasons."""
    return [{"url": e.get("url"), "reason": f"skipped: {e.get('reason', '')}"}
            for e in log if e.get("outcome") == "skipped"]


def _http_errors(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the URLs answered 4xx/5xx (a robots.txt 4xx is normal: RFC 9309 2.3.1.3)."""
    return [{"url": e.get("url"), "status": e["status"]} for e in log
            if e.get("outcome") == "fetched" and isinstance(e.get("status"), int) and e["status"] >= 400
            and not (e.get("kind") == "robots" and e["status"] < 500)]
