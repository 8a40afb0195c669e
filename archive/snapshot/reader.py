"""Read a snapshot as stored, a folder or a `.wacz` file: its files, metadata, index and records.

The read side (verify, cite, show, export, replay) goes through `Package`, so each works the
same on a snapshot in the collection and on a package someone sent.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from archive.errors import NotASnapshot
from archive.formats.html import page_title
from archive.formats.wire import STORED_HEAD, WireError, decode_content, iter_payload, parse_head, read_head

from .package import DATAPACKAGE, DIGEST_FILE, SOURCE
from .zipcheck import INFLATE_ALLOWANCE, INFLATE_RATIO, check_inflation, check_sizes, zip_anomalies

# Bounds on what a package may make us hold or inflate: a hostile package of a few MB must
# not cost GBs of memory or disk (issue 13). Legitimate packages stay far below them.
MAX_JSON = 8 << 20          # datapackage.json, datapackage-digest.json, read whole
MAX_LINE = 1 << 20          # one line of pages.jsonl, a CDXJ index or a log
MAX_PAGES = 100_000         # page entries held at once (page_count() counts them all)
_TIMESTAMP = re.compile(r"\d{14}")


@dataclass(frozen=True)
class IndexEntry:
    """One CDXJ line: where a captured URL's record is."""

    urlkey: str
    timestamp: str
    url: str
    status: str
    mime: str
    digest: str
    filename: str
    offset: int
    length: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class Response:
    """A response record read back: WARC headers, HTTP status and headers, where the body starts."""

    warc_headers: dict[str, str]
    status: int
    headers: tuple[tuple[str, str], ...]
    chunked: bool

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


class Package:
    """A snapshot package, read-only. Use `Package.open(path)`."""

    def __init__(self, path: Path):
        self.path = path

    @staticmethod
    def open(path: Path | str) -> "Package":
        """Return the package at `path` (folder or .wacz); raise NotASnapshot."""
        path = Path(path)
        if path.is_dir():
            if not (path / DATAPACKAGE).is_file():
                raise NotASnapshot(path, f"no {DATAPACKAGE}")
            return FolderPackage(path)
        if path.is_file() and zipfile.is_zipfile(path):
            return ZipPackage(path)
        if path.exists():
            raise NotASnapshot(path, "neither a snapshot folder nor a .wacz file")
        raise NotASnapshot(path, "no such file or folder")

    # -- to be provided by the two kinds ------------------------------------------------------
    def names(self) -> list[str]:
        """Return every file of the package, as relative POSIX paths."""
        raise NotImplementedError

    @contextmanager
    def member(self, name: str) -> Iterator[BinaryIO]:
        """Open one file of the package for reading."""
        raise NotImplementedError
        yield  # pragma: no cover

    def size(self, name: str) -> int:
        """Return the size in bytes of one file of the package as it is read (inflated from
        the zip, not its own gzip); raise NotASnapshot when there is no such file."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the package (a zip file handle)."""

    def __enter__(self) -> "Package":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared ---------------------------------------------------------------------------
    def read(self, name: str, cap: int = MAX_JSON) -> bytes:
        """Return a small file of the package whole (its JSON files); raise NotASnapshot when it
        is over `cap` bytes (read no further than that)."""
        with self.member(name) as f:
            data = f.read(cap + 1)
        if len(data) > cap:
            raise NotASnapshot(self.path, f"{name} is over {cap} bytes")
        return data

    def lines(self, name: str, limit: int = MAX_LINE) -> Iterator[bytes]:
        """Yield the lines of a text member (gunzipped when its name ends in .gz), streamed;
        raise NotASnapshot at a line over `limit` bytes, or once a gzipped member has inflated
        past INFLATE_RATIO times its size plus INFLATE_ALLOWANCE (the zip rule, zipcheck.py)."""
        # a gzipped member may inflate by the ratio the zip check allows (zipcheck.py), no more
        cap = INFLATE_ALLOWANCE + INFLATE_RATIO * self.size(name) if name.endswith(".gz") else None
        with self.member(name) as raw:
            stream: Any = gzip.GzipFile(fileobj=raw) if cap is not None else raw
            read = 0
            try:
                while line := stream.readline(limit + 1):
                    if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\n")):
                        raise NotASnapshot(self.path, f"{name} has a line over {limit} bytes")
                    read += len(line)
                    if cap is not None and read > cap:
                        raise NotASnapshot(self.path, f"{name} inflates to more than {INFLATE_RATIO} times "
                                                      "its size (a decompression bomb?)")
                    yield line
            except (OSError, EOFError, zlib.error) as exc:   # a gzip index cut short or corrupt
                raise NotASnapshot(self.path, f"unreadable {name}: {exc}") from None

    def has(self, name: str) -> bool:
        return name in self.names()

    @property
    def id(self) -> str:
        """Return the snapshot id: the SHA-256 of datapackage.json as stored (of the snapshot's
        own, carried under source/, in a self-contained export)."""
        carried = SOURCE + DATAPACKAGE
        return hashlib.sha256(self.read(carried if self.has(carried) else DATAPACKAGE)).hexdigest()

    def datapackage(self) -> dict[str, Any]:
        """Return datapackage.json parsed; raise NotASnapshot when it is not a JSON object."""
        try:
            data = json.loads(self.read(DATAPACKAGE))
        except (ValueError, KeyError, OSError, RecursionError) as exc:
            raise NotASnapshot(self.path, f"unreadable {DATAPACKAGE}: {exc}") from None
        if not isinstance(data, dict):
            raise NotASnapshot(self.path, f"{DATAPACKAGE} is not an object")
        return data

    def metadata(self) -> dict[str, Any]:
        """Return our capture metadata (the "archive" key), or {} for packages made elsewhere."""
        meta = self.datapackage().get("archive")
        return meta if isinstance(meta, dict) else {}

    def pages(self, limit: int = MAX_PAGES) -> list[dict[str, Any]]:
        """Return the first `limit` page entries of pages/pages.jsonl and extraPages.jsonl
        (header line skipped; an entry is an object with a string "url"), as the package says;
        `read/coverage.check_pages` checks them against the index."""
        pages: list[dict[str, Any]] = []
        for entry in self._page_entries():
            if len(pages) >= limit:
                break
            pages.append(entry)
        return pages

    def page_count(self) -> int:
        """Return how many page entries the package lists, reading them one at a time."""
        return sum(1 for _ in self._page_entries())

    def _page_entries(self) -> Iterator[dict[str, Any]]:
        for name in ("pages/pages.jsonl", "pages/extraPages.jsonl"):
            if not self.has(name):
                continue
            for line in self.lines(name):
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                    yield entry

    def index_names(self) -> list[str]:
        """Return the package's plain or gzipped CDX(J) index files."""
        return [n for n in self.names() if n.startswith("indexes/")
                and n.endswith((".cdx", ".cdxj", ".cdx.gz", ".cdxj.gz"))]

    def index(self) -> Iterator[IndexEntry]:
        """Yield every CDXJ entry of the package's indexes."""
        for name in self.index_names():
            for line in self.lines(name):
                entry = parse_cdxj(line.decode("utf-8", "replace"))
                if entry:
                    yield entry

    def warc_names(self) -> list[str]:
        return [n for n in self.names() if n.startswith("archive/") and n.endswith(RECORD_FILES)]

    def warc_path(self, filename: str) -> str:
        """Return the member name of a WARC file named in the index; raise NotASnapshot for a
        name that leads anywhere but a file directly in the package's `archive/` folder."""
        member = warc_member(filename)
        if member is None:
            raise NotASnapshot(self.path, f"index names a WARC file outside archive/: {filename!r:.200}")
        return member

    def anomalies(self) -> list[tuple[str, str]]:
        """Return (member name, what is wrong) for each entry of the container that a reader
        could be misled by: duplicate names, directories holding data, unsafe names."""
        return []

    @contextmanager
    def record(self, filename: str, offset: int) -> Iterator[tuple[Response, BinaryIO]]:
        """Open the response record at `offset`: (response, stream positioned at the entity body);
        an ARC record's header line in WARC 1.1 terms (WARC-Target-URI, WARC-Date: warcio's arc2warc)."""
        from warcio.archiveiterator import ArchiveIterator   # loaded by what opens a record

        with self.member(self.warc_path(filename)) as f:
            f.seek(offset)
            record = next(iter(ArchiveIterator(f, no_record_parse=True, arc2warc=True)), None)
            if record is None:   # an offset at or past the end of the WARC: no record there
                raise NotASnapshot(self.path, f"no WARC record at {filename[:200]}@{offset}")
            stream = record.raw_stream
            try:
                _, status, _, headers = parse_head(read_head(stream, STORED_HEAD))
            except WireError as exc:
                raise NotASnapshot(self.path, f"bad HTTP record at {filename}@{offset}: {exc}") from None
            chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
            yield Response(dict(record.rec_headers.headers), status, headers, chunked), stream

    def title(self, entry: IndexEntry) -> str:
        """Return the <title> the body of an indexed response declares ("" when it declares none
        or its record cannot be read: the record, not the page list, is the source)."""
        try:
            with self.record(entry.filename, entry.offset) as (resp, stream):
                return page_title(decode_content(iter_payload(stream, resp.chunked),
                                                 resp.header("Content-Encoding"), 1 << 20))
        except Exception:   # warcio's parse errors have no common base: an unreadable record has no title
            return ""

    def body(self, entry: IndexEntry, cap: int = 32 << 20) -> bytes:
        """Return the decoded body of an indexed response, at most `cap` bytes."""
        with self.record(entry.filename, entry.offset) as (resp, stream):
            parts = decode_content(iter_payload(stream, resp.chunked), resp.header("Content-Encoding"), cap)
            return b"".join(parts)


class FolderPackage(Package):
    def names(self) -> list[str]:
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())

    def anomalies(self) -> list[tuple[str, str]]:
        return [(p.relative_to(self.path).as_posix(), "symbolic link (readers would follow it out of the package)")
                for p in self.path.rglob("*") if p.is_symlink()]

    def size(self, name: str) -> int:
        try:
            return (self.path / name).stat().st_size
        except OSError:
            raise NotASnapshot(self.path, f"no {name[:200]!r} in the package") from None

    @contextmanager
    def member(self, name: str) -> Iterator[BinaryIO]:
        target = (self.path / name).resolve()
        if self.path.resolve() not in target.parents:
            raise NotASnapshot(self.path, f"{name!r} is outside the package")
        try:
            f = open(target, "rb")
        except FileNotFoundError:
            raise NotASnapshot(self.path, f"no {name[:200]!r} in the package") from None
        with f:
            yield f


class ZipPackage(Package):
    def __init__(self, path: Path):
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            # ValueError: a name flagged UTF-8 that is not, an impossible header field
            raise NotASnapshot(path, f"unreadable zip: {exc}") from None
        try:
            check_sizes(path, self.zip.infolist())
            with open(path, "rb") as raw:
                for info in self.zip.infolist():
                    check_inflation(path, raw, info)
        except OSError as exc:
            self.zip.close()
            raise NotASnapshot(path, f"unreadable zip: {exc}") from None
        except NotASnapshot:
            self.zip.close()
            raise
        infos = self.zip.infolist()
        self._names = sorted(i.filename for i in infos if not i.is_dir())
        self._anomalies = zip_anomalies(infos)
        if DATAPACKAGE not in self._names:
            self.zip.close()
            raise NotASnapshot(path, f"no {DATAPACKAGE} in the zip")

    def names(self) -> list[str]:
        return list(self._names)

    def anomalies(self) -> list[tuple[str, str]]:
        return list(self._anomalies)

    def size(self, name: str) -> int:
        try:
            return self.zip.getinfo(name).file_size
        except KeyError:
            raise NotASnapshot(self.path, f"no {name[:200]!r} in the package") from None

    @contextmanager
    def member(self, name: str) -> Iterator[BinaryIO]:
        # zipfile inflates a member no further than its declared size and then checks its
        # CRC, so a member that inflates to more than it declares fails here, read or not
        try:
            f = self.zip.open(name)
        except KeyError:
            raise NotASnapshot(self.path, f"no {name[:200]!r} in the package") from None
        except (zipfile.BadZipFile, NotImplementedError, ValueError) as exc:   # a damaged entry, odd compression
            raise NotASnapshot(self.path, f"unreadable {name[:200]!r}: {exc}") from None
        try:
            with f:
                yield f  # type: ignore[misc]
        except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error) as exc:
            raise NotASnapshot(self.path, f"unreadable member {name[:200]!r}: {exc}") from None

    def close(self) -> None:
        self.zip.close()


RECORD_FILES = (".warc", ".warc.gz", ".arc", ".arc.gz")   # WARC 1.0/1.1 and ARC v1 files
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")   # a folder separator or a control character


def warc_member(filename: str) -> str | None:
    """Return the member name (`archive/<name>`) of a WARC file an index line names, or None when
    the name leads anywhere else: a parent (`..`), an absolute path, another folder, a drive.

    WACZ 1.1.1 (section "indexes"): a CDXJ `filename` is relative to the `archive/` folder.

    >>> warc_member("a.warc.gz"), warc_member("archive/a.warc.gz")
    ('archive/a.warc.gz', 'archive/a.warc.gz')
    >>> [warc_member(n) for n in ("../x/archive/a.warc.gz", "/etc/passwd", "pages/p.warc", "a\\b", "..")]
    [None, None, None, None, None]
    """
    name = filename.removeprefix("archive/") if isinstance(filename, str) else ""
    if not name or name in (".", "..") or _UNSAFE_NAME.search(name):
        return None
    return f"archive/{name}"


def as_dict(value: Any) -> dict[str, Any]:
    """Return a JSON value from a package if it is an object, else {}: metadata is data
    someone else wrote, of whatever type they chose."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """Return a JSON value from a package if it is an array, else []."""
    return value if isinstance(value, list) else []


def parse_cdxj(line: str) -> IndexEntry | None:
    """Parse one CDXJ line; return None for blank or malformed lines.

    >>> parse_cdxj('org,ex)/ 20260102030405 {"url": "http://ex.org/", "offset": "5", "length": "9", '
    ...            '"filename": "a.warc.gz", "status": "200"}').offset
    5
    """
    parts = line.strip().split(" ", 2)
    if len(parts) != 3 or not _TIMESTAMP.fullmatch(parts[1][:14]):
        return None   # a 14-digit timestamp (WARC-Date to the second) or longer
    try:
        fields = json.loads(parts[2])
        url, filename = fields["url"], fields["filename"]
        mime, digest = fields.get("mime", ""), fields.get("digest", "")
        if not all(isinstance(v, str) for v in (url, filename, mime, digest)):
            return None
        offset, length = int(fields["offset"]), int(fields["length"])
        if offset < 0 or length < 0:
            return None
        return IndexEntry(parts[0], parts[1][:14], url, str(fields.get("status", "")), mime, digest,
                          filename, offset, length, fields)
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


__all__ = ["DIGEST_FILE", "IndexEntry", "Package", "Response", "as_dict", "as_list", "parse_cdxj", "warc_member"]
