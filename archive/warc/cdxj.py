"""The CDXJ index of a snapshot: one line per response record, SURT-keyed, sorted bytewise.

pywb binary-searches `indexes/index.cdx`, so the lines must sort as bytes, and the JSON
fields follow cdxj-indexer's spelling (numbers as strings).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from archive.models import Record

REVISIT_MIME = "warc/revisit"   # the index's mime of a revisit record, as pywb and cdxj-indexer write it
from archive.formats.urls import surt_key


def timestamp14(record: Record) -> str:
    """Return the 14-digit capture timestamp of a record (UTC)."""
    return record.date.strftime("%Y%m%d%H%M%S")


def cdxj_line(record: Record) -> str:
    """Return the CDXJ line of one response record.

    >>> from datetime import datetime, timezone
    >>> r = Record("http://ex.org/a", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), 200,
    ...            "text/html", "sha256:ab", "f.warc.gz", 10, 20)
    >>> cdxj_line(r)
    'org,ex)/a 20260102030405 {"url": "http://ex.org/a", "mime": "text/html", "status": "200", "digest": "sha256:ab", "length": "20", "offset": "10", "filename": "f.warc.gz"}'
    """
    mime = REVISIT_MIME if record.original is not None else record.mime or "unk"
    fields = {"url": record.url, "mime": mime, "status": str(record.status),
              "digest": record.payload_digest, "length": str(record.length),
              "offset": str(record.offset), "filename": record.filename}
    return f"{surt_key(record.url)} {timestamp14(record)} {json.dumps(fields)}"


def write_index(records: Iterable[Record], path: Path) -> int:
    """Write the sorted CDXJ index of `records` to `path`; return the number of lines."""
    lines = sorted(cdxj_line(r).encode("utf-8") for r in records)
    with open(path, "wb") as f:
        for line in lines:
            f.write(line + b"\n")
    return len(lines)
