"""ARC files (the Internet Archive's format before WARC), read for verification and indexing.

ARC v1 (https://archive.org/web/researcher/ArcFileFormat.php): a version block
(`filedesc://<name> <ip> <date> text/plain <length>`, then a version line and the field
names `URL IP-address Archive-date Content-type Archive-length`), then one record per capture,
each a header line `<url> <ip> <14-digit date> <content type> <length>` and `<length>` bytes
(the HTTP response as received), each record optionally its own gzip member (`.arc.gz`).
warcio reads them (as pywb does to replay them); records carry no digests, so a check reads
every record whole, keeps where each starts, and counts them as carrying no digest from their
producer: the package checksum covers their bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import zlib
from typing import Any, BinaryIO

from .check import head_fields
from .digests import Problem

ARC_SUFFIXES = (".arc", ".arc.gz")
READ = 1 << 20
MAX_LINE = 1 << 16   # an ARC record header line: a URL and four short fields


class _Hashed:
    """A read-only stream that hashes what is read through it (the file checksum)."""

    def __init__(self, f: BinaryIO):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self.f.readline(limit)
        self.sha.update(data)
        self.size += len(data)
        return data


def is_arc(name: str) -> bool:
    """Return True when a file name is that of an ARC file.

    >>> is_arc("IAH-2008.arc.gz"), is_arc("a.ARC"), is_arc("a.warc.gz")
    (True, True, False)
    """
    return name.lower().endswith(ARC_SUFFIXES)


def check_arc(f: BinaryIO, rel: str,
              heads: list[tuple[int, dict[str, str]]] | None = None) -> tuple[str, int, int, list[Problem]]:
    """Read every record of an ARC file; return (file "sha256:<hex>", size, records, problems).

    A first pass walks the records with bounds (a header line of at most MAX_LINE bytes, each
    record's Archive-length read through in blocks): a hostile file is one problem, never
    a line held whole. Then, with `heads`, warcio reads the file again and (file offset,
    WARC-style head fields: warc-type, warc-target-uri, warc-date, as warcio maps them) of each
    record is appended, as `warc.check.check_warc` does, so index lines naming the file can be
    checked against its records. `f` must be seekable.
    """
    stream = _Hashed(f)
    gz = f.read(2) == b"\x1f\x8b"
    f.seek(0)
    records, problem = _walk(gzip.GzipFile(fileobj=stream, mode="rb") if gz else stream)   # type: ignore[call-overload,arg-type]
    while stream.read(READ):
        pass
    problems = [Problem(rel, problem)] if problem else []
    if not problems and heads is not None:
        f.seek(0)
        problems += _heads(f, rel, heads)
    if records == 0 and not problems:
        problems.append(Problem(rel, "no ARC records"))
    return "sha256:" + stream.sha.hexdigest(), stream.size, records, problems


def _walk(stream: BinaryIO) -> tuple[int, str | None]:
    """Read record after record; return (records read whole, what is wrong or None)."""
    records = 0
    try:
        while line := stream.readline(MAX_LINE + 1):
            if line.strip() == b"":
                continue
            if not line.endswith(b"\n"):
                return records, f"ARC record header line over {MAX_LINE} bytes or cut short"
            fields = line.split()
            if len(fields) not in (5, 10) or not fields[-1].isdigit():
                return records, f"no ARC record header ({line[:60]!r})"
            left = int(fields[-1])
            while left > 0 and (data := stream.read(min(left, READ))):
                left -= len(data)
            if left:
                return records, f"ARC record {records + 1} cut short: {left} bytes missing"
            records += 1
    except (OSError, EOFError, zlib.error) as exc:   # gzip's own errors: corrupt or cut-off data
        return records, f"unreadable ARC data after {records} records ({type(exc).__name__}: {exc})"[:300]
    return records, None


def _heads(f: BinaryIO, rel: str, heads: list[tuple[int, dict[str, str]]]) -> list[Problem]:
    from warcio.archiveiterator import ArchiveIterator   # loaded by what reads an ARC file (verify of a WARC never does)

    iterator: Any = ArchiveIterator(f, arc2warc=True, no_record_parse=True)
    offset = 0
    try:
        for record in iterator:
            offset = iterator.get_record_offset()
            heads.append((offset, head_fields({k.lower(): v for k, v in record.rec_headers.headers})))
    except Exception as exc:   # warcio's parse errors have no common base: damage, at its place
        return [Problem(rel, f"unreadable ARC record ({type(exc).__name__}: {exc})"[:300], offset)]
    return []


__all__ = ["ARC_SUFFIXES", "check_arc", "is_arc"]
