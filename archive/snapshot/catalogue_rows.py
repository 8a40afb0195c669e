"""What the collection catalogue holds of one snapshot folder, read from its files.

`read_snapshot` is the only place the catalogue (catalogue.py) learns anything: it reads the
package as `archive list`, `show` and the dedup index would (datapackage.json, the CDXJ
index, pages.jsonl and the page records), so the catalogue is a cache of what the files say.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError
from archive.formats.html import charset_of, page_title, visible_text
from archive.formats.wire import decode_content, iter_payload
from archive.warc.cdxj import REVISIT_MIME

from .package import DATAPACKAGE, SOURCE
from .reader import FolderPackage, IndexEntry, Package, as_dict, as_list, warc_member
from .store import Collection, snapshot_id_of

MAX_TEXT = 256 << 10        # characters of page text indexed per page
MAX_BODY = 2 << 20          # bytes of a page's body read for its text
MAX_TITLE = 2000            # characters of a title kept
_HTML = ("text/html", "application/xhtml+xml")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str, cap: int) -> str:
    """Return `text` with control characters made spaces, cut to `cap` characters: the
    catalogue holds text as data, and the search snippet's match marks are control characters.

    >>> clean("a\\x02b\\x1b[31mc", 100)
    'a b [31mc'
    """
    return _CONTROL.sub(" ", text[:cap])


@dataclass
class Capture:
    """One index line of a snapshot (a record a URL was captured in)."""

    urlkey: str
    url: str
    timestamp: str          # 14 digits
    status: int | None
    digest: str
    mime: str
    record_type: str        # response | revisit | resource
    filename: str
    offset: int
    length: int


@dataclass
class PageText:
    """One page of a snapshot as search sees it."""

    url: str
    timestamp: str
    title: str
    text: str
    digest: str = ""
    borrowed: bool = False  # a revisit: its text is its original's, taken from the catalogue


@dataclass
class SnapshotFacts:
    """Everything the catalogue keeps about one snapshot."""

    id: str
    folder: str             # the folder's name in the collection
    title: str
    seeds: tuple[str, ...]
    captured_at: str        # datapackage "created", ISO 8601 UTC
    started: str            # the capture's start to the microsecond where recorded (orders ties)
    pages: int
    size: int
    has_screenshot: bool
    self_contained: bool
    stamp: str = ""         # sizes and times of the files it was read from (file_stamp)
    captures: list[Capture] = field(default_factory=list)
    texts: list[PageText] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)


def read_snapshot(folder: Path) -> SnapshotFacts:
    """Return what the catalogue keeps of the snapshot in `folder`.

    Raises ArchiveError (NotASnapshot) when the folder is no readable snapshot; a page whose
    record cannot be read is indexed by its URL and title only.
    """
    from .depends import dependency_ids, source_metadata   # loaded by what reads a snapshot in

    snapshot_id = snapshot_id_of(folder)
    stamp = file_stamp(folder)
    with _Listed(folder) if folder.is_dir() else Package.open(folder) as package:
        data = package.datapackage()
        meta = as_dict(data.get("archive"))
        captures = {}
        rows = []
        for entry in package.index():
            if not warc_member(entry.filename) or not _storable(entry):
                continue
            captures[(entry.url, entry.timestamp[:14])] = entry
            rows.append(_capture(entry))
        urls = {url for url, _ in captures}
        screenshot = any(url.startswith("urn:view:") for url, _ in captures)
        seeds = tuple(str(s.get("url") or s.get("given", "")) for s in as_list(meta.get("seeds"))
                      if isinstance(s, dict))
        if not seeds and data.get("mainPageURL"):
            seeds = (str(data["mainPageURL"]),)
        size = sum(r["bytes"] for r in as_list(data.get("resources"))
                   if isinstance(r, dict) and type(r.get("bytes")) is int)
        created = str(data.get("created", ""))
        self_contained = package.has(SOURCE + DATAPACKAGE)
        texts = []
        for page in package.pages():
            when = "".join(ch for ch in str(page.get("ts", "")) if ch.isdigit())[:14]
            listed = captures.get((str(page["url"]), when))
            if listed is not None:
                texts.append(_page_text(package, page, listed, self_contained))
        deps = [] if self_contained else dependency_ids(source_metadata(package))
        title = data.get("title") if isinstance(data.get("title"), str) else ""
        return SnapshotFacts(
            id=snapshot_id, folder=folder.name,
            title=clean(str(title or (texts[0].title if texts else "")), MAX_TITLE),
            seeds=tuple(s for s in seeds if s in urls), captured_at=created,
            started=str(meta.get("started_at") or created), pages=len(texts), size=size,
            has_screenshot=screenshot,
            self_contained=self_contained, stamp=stamp, captures=rows, texts=texts, dependencies=sorted(set(deps)))


class _Listed(FolderPackage):
    """A snapshot folder whose file list is read once (the catalogue reads it many times)."""

    def __init__(self, path: Path):
        super().__init__(Package.open(path).path)
        self.listed: list[str] | None = None

    def names(self) -> list[str]:
        if self.listed is None:
            self.listed = super().names()
        return list(self.listed)


def file_stamp(folder: Path) -> str:
    """Return the size and modification time of the files the catalogue reads a snapshot's
    records from (datapackage.json and the index files): a snapshot changed in place since it
    was catalogued has another stamp. Raises nothing: a file that cannot be read counts as changed."""
    parts = []
    for path in [folder / DATAPACKAGE, *sorted((folder / "indexes").glob("*"))]:
        try:
            info = path.stat()
            parts.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
        except OSError:
            parts.append(f"{path.name}:?")
    return ";".join(parts)


SQLITE_MAX = (1 << 63) - 1   # SQLite's INTEGER range (a hostile index may name any number)


def _storable(entry: IndexEntry) -> bool:
    """Whether an index line's numbers fit SQLite's INTEGER: a line past them names no real
    record (verify reports it), so the catalogue leaves it out rather than fail."""
    numbers = [entry.offset, entry.length] + ([int(entry.status)] if entry.status.isdigit() else [])
    return all(0 <= n <= SQLITE_MAX for n in numbers)


def _capture(entry: IndexEntry) -> Capture:
    revisit = entry.mime == REVISIT_MIME
    status = int(entry.status) if entry.status.isdigit() else None
    kind = "revisit" if revisit else "response" if status is not None else "resource"
    return Capture(entry.urlkey, entry.url, entry.timestamp[:14], status, entry.digest, entry.mime, kind,
                   entry.filename, entry.offset, entry.length)


def _page_text(package: Package, page: dict[str, Any], entry: IndexEntry, self_contained: bool) -> PageText:
    """Return a page's title and text: pages.jsonl's own where given (a browser capture writes
    "text"), else read from the HTML record; a revisit's text is its original's (in a
    self-contained export, read from the copy it carries; otherwise borrowed in the catalogue
    from the page with the same payload digest, so no other snapshot is opened here)."""
    title = page.get("title") if isinstance(page.get("title"), str) else None
    text = page.get("text") if isinstance(page.get("text"), str) else None
    borrowed = False
    if title is None or text is None:
        if entry.mime == REVISIT_MIME and not self_contained:
            borrowed, body_title, body_text = text is None, "", ""
        else:
            body_title, body_text = _from_record(package, entry)
        title = body_title if title is None else title
        text = body_text if text is None else text
    return PageText(entry.url, entry.timestamp[:14], clean(title, MAX_TITLE), clean(text, MAX_TEXT),
                    entry.digest, borrowed)


def _from_record(package: Package, entry: IndexEntry) -> tuple[str, str]:
    """Return (title, visible text) of an HTML page record (a revisit's original in the package,
    as a self-contained export carries it), ("", "") when it is none or unreadable."""
    from .depends import payload_of

    try:
        with payload_of(package, entry, _NOWHERE) as (holder, original):
            if not original.mime.lower().startswith(_HTML):
                return "", ""
            with holder.record(original.filename, original.offset) as (response, stream):
                body = b""
                for block in decode_content(iter_payload(stream, response.chunked),
                                            response.header("Content-Encoding"), MAX_BODY * 4):
                    body += block
                    if len(body) >= MAX_BODY:
                        break
                charset = charset_of(response.header("Content-Type"))
    except Exception:   # warcio's parse errors have no common base: an unreadable record has no text
        return "", ""
    body = body[:MAX_BODY]
    return page_title([body]), "\n".join(visible_text(body, charset))[:MAX_TEXT]


_NOWHERE = Collection(Path("/nonexistent/archive-catalogue"))   # no other snapshot is looked in


def read_verifications(log: Path, start: int) -> tuple[dict[str, tuple[str, bool, int]], int]:
    """Return ({snapshot id: (time, ok, problems)} of the last result of each, the offset read to)
    from the lines of `.state/verify.jsonl` after byte `start`; a last line without its newline
    (being written) is left for next time. Raises OSError."""
    latest: dict[str, tuple[str, bool, int]] = {}
    read = start
    with open(log, "rb") as f:
        f.seek(start)
        while line := f.readline(1 << 20):
            if not line.endswith(b"\n"):
                break
            read += len(line)
            try:
                entry = json.loads(line)
                latest[str(entry["id"])] = (str(entry["time"]), bool(entry["ok"]), int(entry.get("problems", 0)))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue
    return latest, read
