"""The CDXJ index of a snapshot: one line per response record, SURT-keyed, sorted bytewise.

pywb binary-searches `indexes/index.cdx`, so the lines must sort as bytes, and the JSON
fields follow cdxj-indexer's spelling (numbers as strings).
"""
from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from archive.models import Record

REVISIT_MIME = "warc/revisit"   # the index's mime of a revisit record, as pywb and cdxj-indexer write it
SORT_CHUNK = 50_000             # index lines sorted in memory at once


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
    from archive.formats.urls import surt_key   # ada-url loads with what writes an index

    mime = REVISIT_MIME if record.original is not None else record.mime or "unk"
    fields = {"url": record.url, "mime": mime, "status": str(record.status),
              "digest": record.payload_digest, "length": str(record.length),
              "offset": str(record.offset), "filename": record.filename}
    return f"{surt_key(record.url)} {timestamp14(record)} {json.dumps(fields)}"


def write_index(records: Iterable[Record], path: Path, chunk: int = SORT_CHUNK) -> int:
    """Write the sorted CDXJ index of `records` to `path`; return the number of lines.

    At most `chunk` lines are held in memory: past that, sorted runs go to temporary files
    beside `path` and are merged (an external merge sort), so a million records cost no more
    memory than `chunk`. Raises OSError as the files do.
    """
    runs: list[IO[bytes]] = []
    lines: list[bytes] = []
    count = 0
    try:
        for record in records:
            lines.append(cdxj_line(record).encode("utf-8"))
            count += 1
            if len(lines) >= chunk:
                runs.append(_sorted_run(lines, path.parent))
                lines = []
        lines.sort()
        with open(path, "wb") as f:
            merged = heapq.merge(lines, *(_lines(run) for run in runs)) if runs else iter(lines)
            for line in merged:
                f.write(line + b"\n")
    finally:
        for run in runs:
            run.close()
    return count


def _sorted_run(lines: list[bytes], folder: Path) -> IO[bytes]:
    import tempfile   # loaded by a capture's index, not by every reader of this module

    lines.sort()
    run = tempfile.TemporaryFile(dir=folder)
    run.writelines(line + b"\n" for line in lines)
    run.seek(0)
    return run


def _lines(run: IO[bytes]) -> Iterator[bytes]:
    for line in run:
        yield line[:-1]
