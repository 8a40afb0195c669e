"""import_archive(): bring a .wacz or a bare WARC made elsewhere into the collection, verified.

A .wacz keeps its bytes, so its snapshot id (the SHA-256 of its datapackage.json) stays the
one it was cited by. A bare WARC (wget --warc-file, another crawler) is copied as is and
becomes a new snapshot: an index, a page list, an import log and a package are written
around it. Either way the source is checked before anything is written, the new folder is
verified again as stored, and only then is it published; a rejected import leaves nothing.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import re
import shutil
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from archive.errors import AlreadyImported, DiskFull, ImportRejected, NotASnapshot, StorageError, UsageError
from archive.formats.html import page_title
from archive.formats.urls import host_of
from archive.formats.wire import (
    BLOCK,
    STORED_HEAD,
    WireError,
    decode_content,
    header_value,
    is_chunked,
    iter_payload,
    parse_head,
    read_head,
)
from archive.models import Record, Snapshot, rfc3339, utcnow
from archive.snapshot.catalogue import refresh
from archive.snapshot.package import datapackage, write_package, write_pages
from archive.snapshot.reader import Package, as_list
from archive.snapshot.store import Collection, snapshot_id_of, snapshot_name
from archive.warc.cdxj import REVISIT_MIME, write_index

from .verify import Problem, Report, check_warc, verify

logger = logging.getLogger(__name__)

INDEXED = ("response", "revisit", "resource")
PAGE_TYPES = ("text/html", "application/xhtml+xml")
_SOFTWARE = re.compile(rb"^software:(.*)$", re.IGNORECASE | re.MULTILINE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
Clock = Callable[[], datetime]
MIN_FREE = 64 << 20            # left free after an import, as a capture's --min-free default
DATAPACKAGE_ROOM = 16 << 20    # datapackage.json, its digest and a copy being written


def import_archive(path: Path | str, collection: Path | str | None = None, *,
                   clock: Clock = utcnow, import_id: str | None = None) -> Snapshot:
    """Import a .wacz, .warc.gz or .warc file as a new snapshot of `collection`; return it.

    Raises ImportRejected (corrupt input), AlreadyImported, UsageError, StorageError, DiskFull.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"cannot import {path}: no such file")
    store = Collection(collection)
    import_id = import_id or uuid.uuid4().hex[:16]
    name = path.name.lower()
    if name.endswith(".wacz"):
        return _import_wacz(path, store, import_id, clock)
    if name.endswith((".warc.gz", ".warc")):
        return _import_warc(path, store, import_id, clock)
    raise UsageError(f"cannot import {path}: expected a .wacz, .warc.gz or .warc file")


# -- .wacz -------------------------------------------------------------------------------------
def _import_wacz(path: Path, store: Collection, import_id: str, clock: Clock) -> Snapshot:
    report = _verified(path, path, store)
    snapshot_id = str(report.snapshot_id)
    _refuse_duplicate(store, snapshot_id)
    _check_free_space(store, report.bytes + (DATAPACKAGE_ROOM))
    with _partial(store, import_id) as folder, Package.open(path) as package:
        for name in package.names():
            if ".." in name.split("/"):
                raise ImportRejected(path, [Problem(name, "file name leads outside the package")])
            with package.member(name) as src:
                _copy(src, folder / name)
        _verified(path, folder, store)
        data = package.datapackage()
        created = _parse_time(str(data.get("created", ""))) or clock()
        seeds = _wacz_seeds(package, data)
        host = host_of(seeds[0] if seeds else next((e.url for e in package.index()), ""))
        counts = {"files": report.files, "records": report.records, "bytes": report.bytes,
                  "pages": package.page_count()}
        target = store.publish(folder, snapshot_name(created, host, snapshot_id))
    _note_verified(store, snapshot_id, clock)
    return Snapshot(id=snapshot_id, path=target, created=str(data.get("created", "")),
                    seeds=tuple(seeds), counts=counts)


def _wacz_seeds(package: Package, data: dict[str, Any]) -> list[str]:
    """Return the package's seeds the index holds a capture of: ours from its metadata, else
    its main page or first page (metadata only says which URL; the index, verified, says it is one)."""
    captured = {e.url for e in package.index()}
    # metadata values are whatever the package's author wrote: only strings can name a URL
    ours = [s.get("url") or s.get("given") for s in as_list(package.metadata().get("seeds"))
            if isinstance(s, dict)]
    ours = [s for s in ours if isinstance(s, str) and s]
    if ours:
        return [s for s in ours if s in captured]
    main = data.get("mainPageURL")
    if isinstance(main, str) and main in captured:
        return [main]
    return [str(p["url"]) for p in package.pages() if p["url"] in captured][:1]


def _check_free_space(store: Collection, needed: int) -> None:
    """Raise DiskFull (nothing written yet) unless the collection's disk has `needed` bytes
    free, and MIN_FREE to spare."""
    where = store.root
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        raise StorageError(where, exc.strerror or str(exc)) from None
    if free < needed + MIN_FREE:
        raise DiskFull(store.root, why=f"the import needs {needed} bytes and {MIN_FREE} to spare; "
                                       f"{free} are free (nothing was written)")


def _refuse_duplicate(store: Collection, snapshot_id: str) -> None:
    for folder in store.snapshots():
        with contextlib.suppress(NotASnapshot):
            if snapshot_id_of(folder) == snapshot_id:
                raise AlreadyImported(snapshot_id, folder)


# -- bare WARC ---------------------------------------------------------------------------------
@dataclass
class _Scan:
    """What one pass over a WARC found: index records, pages, counts, dates, the writing tool."""

    records: list[Record] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    page_urls: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    dates: list[datetime] = field(default_factory=list)
    software: str | None = None


def _import_warc(path: Path, store: Collection, import_id: str, clock: Clock) -> Snapshot:
    checked = _check_warc_file(path)
    # the copy, plus an index and page list that are a small fraction of it
    _check_free_space(store, checked[1] + checked[1] // 4 + DATAPACKAGE_ROOM)
    with _partial(store, import_id) as folder:
        name = _warc_name(store, path.name, import_id)
        with open(path, "rb") as src, open(folder / "archive" / name, "xb") as out:
            tee = _Tee(src, out)
            try:
                scan = _scan(tee, name)
            except (ArchiveLoadFailed, ValueError, EOFError, zlib.error) as exc:
                # our checker read it, warcio (and so pywb) cannot: not replayable as it is
                raise ImportRejected(path, [Problem(path.name, f"unreadable by warcio: {exc}"[:300])]) from None
            checksum = tee.finish()
        if checksum != checked:
            raise ImportRejected(path, [Problem(path.name, "the file changed while it was imported")])
        package = _write_files(folder, path, name, checksum, scan, clock)
        snapshot_id = write_package(folder, package)
        _verified(path, folder, store)
        start = min(scan.dates, default=clock())
        host = host_of(scan.pages[0]["url"] if scan.pages else scan.records[0].url if scan.records else "")
        target = store.publish(folder, snapshot_name(start, host, snapshot_id))
    _note_verified(store, snapshot_id, clock)
    meta = package["archive"]
    return Snapshot(id=snapshot_id, path=target, created=package["created"],
                    seeds=tuple(s["url"] for s in meta["seeds"]), counts=dict(meta["counts"]))


def _check_warc_file(path: Path) -> tuple[str, int]:
    """Check every record's digests; return the file's ("sha256:<hex>", size); raise ImportRejected."""
    report = Report(path)
    try:
        with open(path, "rb") as f:
            checksum = check_warc(f, path.name, report)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not report.problems and not report.records:
        report.problems.append(Problem(path.name, "no WARC records"))
    if report.problems:
        raise ImportRejected(path, report.problems)
    return checksum


def _warc_name(store: Collection, source: str, import_id: str) -> str:
    """Return the source's file name, prefixed when a snapshot of the collection has one so named."""
    name = _UNSAFE_NAME.sub("_", source)
    if any((snap / "archive" / name).exists() for snap in store.snapshots()):
        return f"import-{import_id[:8]}-{name}"
    return name


def _write_files(folder: Path, source: Path, name: str, checksum: tuple[str, int], scan: _Scan,
                 clock: Clock) -> dict[str, Any]:
    """Write index, pages and import log; return the datapackage object (not yet written)."""
    write_index(scan.records, folder / "indexes" / "index.cdx")
    write_pages(folder / "pages" / "pages.jsonl", scan.pages)
    now = rfc3339(clock())
    counts = {**{f"{kind}_records": n for kind, n in sorted(scan.counts.items())},
              "records": sum(scan.counts.values()), "indexed": len(scan.records),
              "pages": len(scan.pages), "bytes": checksum[1]}
    imported = {"source": source.name, "sha256": checksum[0].removeprefix("sha256:"),
                "software": scan.software}
    log = {"ts": now, "event": "import", "from": str(source), "stored_as": f"archive/{name}",
           **imported, "counts": counts}
    (folder / "logs" / "import.jsonl").write_text(json.dumps(log, ensure_ascii=False) + "\n", "utf-8")
    first = scan.pages[0] if scan.pages else {}
    window = ({"start": rfc3339(min(scan.dates)), "end": rfc3339(max(scan.dates))}
              if scan.dates else {})
    metadata = {"imported": imported, "capture_window": window, "counts": counts,
                "seeds": [{"given": first["url"], "url": first["url"]}] if first else []}
    return datapackage(folder, {f"archive/{name}": checksum}, created=now, title=first.get("title"),
                       main_url=first.get("url"), main_date=first.get("ts"), metadata=metadata)


def _scan(stream: Any, name: str) -> _Scan:
    """Read the stored WARC once: index records, 2xx HTML pages, record counts, dates."""
    scan = _Scan()
    iterator = ArchiveIterator(stream, no_record_parse=True)
    for record in iterator:
        scan.counts[record.rec_type or "unknown"] += 1
        date = _parse_time(record.rec_headers.get_header("WARC-Date") or "")
        if date:
            scan.dates.append(date)
        if record.rec_type == "warcinfo" and scan.software is None:
            scan.software = _warcinfo_software(record.raw_stream)
        found = _describe(record) if record.rec_type in INDEXED else None
        if found is None or date is None:
            continue
        url, status, mime, title = found
        digest = (record.rec_headers.get_header("WARC-Payload-Digest")
                  or record.rec_headers.get_header("WARC-Block-Digest") or "-")
        scan.records.append(Record(url, date, status, mime, digest, name,
                                   iterator.get_record_offset(), iterator.get_record_length()))
        if title is not None and url not in scan.page_urls:
            scan.page_urls.add(url)
            scan.pages.append({"id": uuid.uuid5(uuid.NAMESPACE_URL, f"{url} {date}").hex, "url": url,
                               "ts": rfc3339(date), "title": title, "status": status})
    return scan


def _describe(record: Any) -> tuple[str, int, str, str | None] | None:
    """Return (url, status, mime, title when it is a page) of a record to index; None to skip it."""
    # WARC 1.0 writers such as wget put the target URI in angle brackets
    url = (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
    if not url:
        return None
    if "application/http" not in (record.content_type or ""):
        if record.rec_type != "resource":
            return None
        return url, 200, _media_type(record.content_type), None
    try:
        _, status, _, headers = parse_head(read_head(record.raw_stream, STORED_HEAD))
    except WireError:
        return None   # a revisit without an HTTP head, or garbage: nothing a replay could use
    mime = _media_type(header_value(headers, "Content-Type"))
    if record.rec_type == "revisit":
        return url, status, REVISIT_MIME, None
    if not (200 <= status < 300 and mime in PAGE_TYPES and url.startswith(("http:", "https:"))):
        return url, status, mime, None
    body = iter_payload(record.raw_stream, is_chunked(headers))
    return url, status, mime, page_title(decode_content(body, header_value(headers, "Content-Encoding"), 1 << 20))


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _warcinfo_software(stream: BinaryIO) -> str | None:
    match = _SOFTWARE.search(stream.read(1 << 16))
    return match.group(1).decode("utf-8", "replace").strip() if match else None


def _parse_time(text: str) -> datetime | None:
    """Return a WARC-Date or RFC 3339 time as a naive UTC datetime, or None."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


# -- shared ------------------------------------------------------------------------------------
def _verified(source: Path, target: Path, store: Collection) -> Report:
    """Verify a package (the source .wacz or the new folder); raise ImportRejected unless it is ok."""
    try:
        report = verify(target, store.root)
    except NotASnapshot as exc:
        raise ImportRejected(source, [Problem(source.name, exc.why)]) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ArchiveLoadFailed) as exc:
        # a zip member's CRC error or cut-off data is raised by zipfile, not reported by verify
        raise ImportRejected(source, [Problem(source.name, f"unreadable: {exc}")]) from None
    if not report.ok:
        raise ImportRejected(source, report.problems)
    return report


def _note_verified(store: Collection, snapshot_id: str, clock: Clock) -> None:
    """Note the verification the import just made in the collection's state, as `verify`
    does, so that `list` shows the snapshot verified. The snapshot is in place already:
    a state file that cannot be written is a warning, not a failed import."""
    try:
        store.record_verification(snapshot_id, True, 0, rfc3339(clock()))
    except StorageError as exc:
        logger.warning("imported %s, but its verification was not noted: %s", snapshot_id[:12], exc)
    refresh(store)   # the catalogue: the new snapshot and its verification


@contextmanager
def _partial(store: Collection, import_id: str) -> Iterator[Path]:
    """Yield a new partial snapshot folder; remove it when the block fails before publishing."""
    folder, spool = store.new_partial(import_id)
    store.discard(spool)   # nothing is fetched, so nothing is spooled
    try:
        yield folder
    except OSError as exc:
        store.discard(folder)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(exc.filename or folder) from None
        raise StorageError(exc.filename or folder, exc.strerror or str(exc)) from None
    except BaseException:
        store.discard(folder)
        raise


class _Tee:
    """A read-only stream that copies and hashes what is read through it, so the WARC is copied,
    checksummed and indexed in one pass."""

    def __init__(self, src: BinaryIO, out: BinaryIO):
        self.src, self.out = src, out
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.src.read(size)
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return data

    def finish(self) -> tuple[str, int]:
        """Copy what the reader left unread; return ("sha256:<hex>", size) of the whole stream."""
        while self.read(BLOCK):
            pass
        return "sha256:" + self.sha.hexdigest(), self.size


def _copy(src: BinaryIO, dest: Path) -> None:
    dest.parent.mkdir(exist_ok=True)   # source/ of a self-contained export; the rest exist
    with open(dest, "xb") as out:
        while block := src.read(BLOCK):
            out.write(block)
