"""The records a capture wrote, kept on disk until the index is made, not in memory.

A crawl of a million URLs writes a million response records; each becomes one index line at
the end. `RecordSpool` appends each record as one JSON line to an unnamed file in the
capture's spool folder (workers append from their threads, under a lock) and reads them back
in order through the same handle, so the file outlives the spool folder's removal.
"""
from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from archive.errors import StorageError
from archive.models import Original, Record

class RecordSpool:
    """An append-only list of Records in an unnamed file in `folder`: `append`, `len`, iteration.

    Raises StorageError when the file cannot be written or read back.
    """

    def __init__(self, folder: Path):
        self.path = folder
        self.count = 0
        self.revisits = 0
        self.lock = threading.Lock()
        try:
            self.file = tempfile.TemporaryFile("w+", encoding="utf-8", dir=folder)
        except OSError as exc:
            raise StorageError(self.path, exc.strerror or str(exc)) from None

    def append(self, record: Record) -> None:
        """Keep `record` (safe from several threads)."""
        line = json.dumps(_fields(record), ensure_ascii=False) + "\n"
        with self.lock:
            self.file.seek(0, 2)
            self.file.write(line)
            self.count += 1
            self.revisits += record.original is not None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Record]:
        """Yield the records in the order appended (not while appending)."""
        try:
            with self.lock:
                self.file.flush()
                self.file.seek(0)
            while line := self.file.readline():
                yield _record(json.loads(line))
        except OSError as exc:
            raise StorageError(self.path, exc.strerror or str(exc)) from None

    def close(self) -> None:
        """Close the file (it goes with the spool folder)."""
        with self.lock:
            self.file.close()


def _fields(r: Record) -> list[object]:
    o = r.original
    return [r.url, r.date.isoformat(), r.status, r.mime, r.payload_digest, r.filename, r.offset, r.length,
            None if o is None else [o.digest, o.uri, o.date, o.record_id, o.snapshot, o.filename,
                                    o.offset, o.length, o.chunked]]


def _record(v: list[object]) -> Record:
    """Return the Record `_fields` wrote.

    >>> from datetime import timezone
    >>> r = Record("http://ex.org/", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), 200, "text/html",
    ...            "sha256:ab", "f.warc.gz", 1, 2, Original("sha256:ab", "http://ex.org/", "d", "<id>", "s",
    ...                                                    "g.warc.gz", 3, 4, True))
    >>> _record(json.loads(json.dumps(_fields(r)))) == r
    True
    """
    url, date, status, mime, digest, filename, offset, length, original = v
    return Record(url, datetime.fromisoformat(date), status, mime, digest, filename, offset, length,  # type: ignore[arg-type]
                  None if original is None else Original(*original))  # type: ignore[misc]
