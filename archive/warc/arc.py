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

import hashlib
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator

from .check import head_fields
from .digests import Problem

ARC_SUFFIXES = (".arc", ".arc.gz")
READ = 1 << 20


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

    With `heads`, append (file offset, WARC-style head fields: warc-type, warc-target-uri,
    warc-date, as warcio maps them) of each record, as `warc.check.check_warc` does, so index
    lines naming the file can be checked against its records. A record warcio cannot read is
    a problem at its offset; the rest of the file is still hashed.
    """
    stream = _Hashed(f)
    records, problems = 0, []
    iterator: Any = ArchiveIterator(stream, arc2warc=True, no_record_parse=True)
    offset = 0
    try:
        for record in iterator:
            offset = iterator.get_record_offset()
            if heads is not None:
                fields = {k.lower(): v for k, v in record.rec_headers.headers}
                heads.append((offset, head_fields(fields)))
            while record.raw_stream.read(READ):
                pass
            records += 1
    except Exception as exc:   # warcio's parse errors have no common base: damage, at its place
        problems.append(Problem(rel, f"unreadable ARC record ({type(exc).__name__}: {exc})"[:300], offset))
    while stream.read(READ):
        pass
    if records == 0 and not problems:
        problems.append(Problem(rel, "no ARC records"))
    return "sha256:" + stream.sha.hexdigest(), stream.size, records, problems


__all__ = ["ARC_SUFFIXES", "check_arc", "is_arc"]
