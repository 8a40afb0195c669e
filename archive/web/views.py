"""What the pages and the JSON API show, gathered from the read side and the catalogue.

Plain, blocking functions (the app runs them in a worker thread), returning plain values:
every string in them may come from a page or a package, and is escaped where it is shown
(Jinja autoescape), never here.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError, SnapshotNotFound, UsageError
from archive.formats.urls import InvalidURL, canonicalize
from archive.read.cite import citation
from archive.read.citeformats import FORMATS, render
from archive.read.diff import compare
from archive.read.find import Details, change_state, details, replay_url
from archive.read.verify import Report, verify
from archive.snapshot.catalogue import CaptureRow, SnapshotRow, open_catalogue
from archive.snapshot.store import Collection

PER_PAGE = 50
SEARCH_PAGE = 20
CITE_FORMATS = tuple(f for f in FORMATS if f != "json")
_ID = re.compile(r"[0-9a-f]{64}")


def snapshot_id(text: str, collection: Path) -> str:
    """Return `text` when it is a full snapshot id (64 lower-case hex digits); raise SnapshotNotFound."""
    if not _ID.fullmatch(text):
        raise SnapshotNotFound(text[:80], collection)
    return text


def row_json(row: SnapshotRow) -> dict[str, Any]:
    """Return a catalogue row as the JSON API gives it."""
    return asdict(row)


def listing(collection: Path, page: int, per_page: int = PER_PAGE) -> tuple[list[SnapshotRow], int]:
    """Return the snapshots of page `page` (1-based), newest first, and the total count."""
    with open_catalogue(Collection(collection)) as cat:
        total = cat.count()
        return cat.snapshots(offset=(max(page, 1) - 1) * per_page, limit=per_page), total


def search(collection: Path, words: str, page: int = 1) -> list[Any]:
    """Return the search hits of page `page` (1-based) for `words` (SQLite FTS5 over URL, title, text)."""
    if not words.strip():
        return []
    with open_catalogue(Collection(collection)) as cat:
        return cat.search(words, limit=SEARCH_PAGE, offset=(max(page, 1) - 1) * SEARCH_PAGE)


def timeline(collection: Path, url: str, base: str) -> list[dict[str, Any]]:
    """Return every capture of `url`, oldest first, each marked first / same / changed / unknown
    against the one before it (`read.find.change_state`) with its replay link; raise UsageError
    for a non-URL."""
    try:
        target = canonicalize(url)
    except InvalidURL as exc:
        raise UsageError(f"not a URL: {url[:200]!r} ({exc.why})") from None
    with open_catalogue(Collection(collection)) as cat:
        rows: list[CaptureRow] = cat.timemap(target)
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        state = change_state(rows[i - 1].payload_digest if i else None, row.payload_digest)
        out.append({**asdict(row), "state": state, "replay": replay_url(base, row.snapshot_id, row.timestamp, row.url),
                    "previous": rows[i - 1].snapshot_id if i else None})
    return out


def text_diff(collection: Path, before: str, after: str, url: str) -> list[tuple[str, str, str, str]]:
    """Return the text diff of `url` between two snapshots as side-by-side rows
    (left kind, left text, right kind, right text); kinds: "same", "del", "add", "" (no line)."""
    result = compare(snapshot_id(before, collection), snapshot_id(after, collection), collection, text=True)
    wanted = canonicalize(url)
    lines: tuple[str, ...] = ()
    for change in result.changes:
        if change.url == wanted or change.url == url:
            lines = change.text_diff
            break
    return side_by_side(lines)


def side_by_side(unified: tuple[str, ...] | list[str]) -> list[tuple[str, str, str, str]]:
    """Turn unified-diff lines into side-by-side rows.

    >>> side_by_side(["--- a", "+++ b", "@@ -1,2 +1,2 @@", " keep", "-old", "+new"])
    [('same', 'keep', 'same', 'keep'), ('del', 'old', 'add', 'new')]
    """
    rows: list[tuple[str, str, str, str]] = []
    dels: list[str] = []
    adds: list[str] = []

    def flush() -> None:
        for i in range(max(len(dels), len(adds))):
            left = ("del", dels[i]) if i < len(dels) else ("", "")
            right = ("add", adds[i]) if i < len(adds) else ("", "")
            rows.append((*left, *right))
        dels.clear()
        adds.clear()

    for line in unified:
        if line.startswith(("---", "+++", "@@")):
            flush()
            continue
        if line.startswith("-"):
            dels.append(line[1:])
        elif line.startswith("+"):
            adds.append(line[1:])
        else:
            flush()
            rows.append(("same", line[1:], "same", line[1:]))
    flush()
    return rows


def snapshot(collection: Path, sid: str, base: str) -> dict[str, Any]:
    """Return what the snapshot page shows: `archive show`'s details, the catalogue row, the
    snapshots its revisits depend on, the proofs it carries, and every citation format."""
    sid = snapshot_id(sid, collection)
    store = Collection(collection)
    found: Details = details(sid, collection)
    with open_catalogue(store) as cat:
        row = cat.snapshot(sid)
        depends = cat.dependencies(sid)
    citations: dict[str, str] = {}
    cite_error = None
    try:
        with store.open(sid) as package:
            c = citation(package, None, local_replay=base)
            citations = {fmt: render(c, fmt) for fmt in CITE_FORMATS}
            proofs = _proofs(package)
    except ArchiveError as exc:
        cite_error, proofs = str(exc), {}
    return {"id": sid, "row": row, "details": found, "depends": depends, "citations": citations,
            "cite_error": cite_error, "proofs": proofs, "screenshot": None,
            "verify_command": f"archive verify -C {shlex.quote(str(store.root))} {sid[:12]} --expect sha256:{sid}"}


def _proofs(package: Any) -> dict[str, Any]:
    """Return which proofs the package carries: a signature, how many timestamps (from its
    datapackage-digest.json; verify judges them)."""
    try:
        doc = json.loads(package.read("datapackage-digest.json"))
    except (ArchiveError, OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    stamps = doc.get("timestamps")
    return {"signed": bool(doc.get("signedData")), "timestamps": len(stamps) if isinstance(stamps, list) else 0}


def cite(collection: Path, sid: str, fmt: str, base: str) -> str:
    """Return the citation of a snapshot in `fmt` (UsageError for an unknown format)."""
    store = Collection(collection)
    with store.open(snapshot_id(sid, collection)) as package:
        return render(citation(package, None, local_replay=base), fmt)


def run_verify(collection: Path, sid: str) -> Report:
    """Verify a snapshot and note the result in the collection's state (which the catalogue
    takes in when next opened); return the report."""
    return verify(snapshot_id(sid, collection), collection, record=True)
