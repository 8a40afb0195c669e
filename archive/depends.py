"""The records a snapshot's revisits refer to: reading, finding and checking them.

A snapshot written with deduplication names, in datapackage.json (metadata "archive" ->
"dependencies"), every record of another snapshot its revisit records refer to, with the
record's id, payload digest and place. The read side (verify, replay, export, rm) finds
them through this module, in the collection or inside a self-contained export.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from .errors import ArchiveError, HasDependents, SnapshotNotFound
from .models import Original
from .package import DATAPACKAGE, DIGEST_FILE
from .reader import Package
from .store import Collection, snapshot_id_of
from .warccheck import Problem

DEPS_PREFIX = "archive/deps-"      # in a self-contained export: copies of the records depended on
DEPS_INDEX = "indexes/deps.cdx"
SOURCE = "source/"                 # in such an export: the snapshot's own package files
REVISIT_MIME = "warc/revisit"


@dataclass(frozen=True)
class Dependency:
    """A snapshot some revisits of another refer to, and the records they refer to."""

    snapshot: str
    records: tuple[Original, ...]


def dependencies(metadata: dict[str, Any]) -> list[Dependency]:
    """Return the dependencies a snapshot's metadata names (malformed entries are skipped)."""
    found = []
    for item in metadata.get("dependencies") or []:
        if not isinstance(item, dict) or not isinstance(item.get("snapshot"), str):
            continue
        records = []
        for r in item.get("records") or []:
            try:
                records.append(Original(digest=str(r["digest"]), uri=str(r["uri"]), date=str(r["date"]),
                                        record_id=str(r["record"]), snapshot=item["snapshot"],
                                        filename=str(r["filename"]), offset=int(r["offset"]),
                                        length=int(r["length"])))
            except (KeyError, TypeError, ValueError):
                continue
        found.append(Dependency(item["snapshot"], tuple(records)))
    return found


def source_metadata(package: Package) -> dict[str, Any]:
    """Return the capture metadata of a package, or of the snapshot a self-contained export carries."""
    if package.has(SOURCE + DATAPACKAGE):
        try:
            data = json.loads(package.read(SOURCE + DATAPACKAGE))
            meta = data.get("archive") if isinstance(data, dict) else None
            return meta if isinstance(meta, dict) else {}
        except (ValueError, RecursionError):
            return {}
    try:
        return package.metadata()
    except ArchiveError:   # an unreadable datapackage.json: verify reports it as such
        return {}


def find_snapshot(store: Collection, snapshot_id: str) -> Path | None:
    """Return the folder of the snapshot with exactly this id in the collection, or None."""
    try:
        folder = store.resolve(snapshot_id)
    except (SnapshotNotFound, ArchiveError):
        return None
    try:
        return folder if snapshot_id_of(folder) == snapshot_id else None
    except ArchiveError:
        return None


def dependents(store: Collection, snapshot_id: str) -> list[Path]:
    """Return the snapshots of the collection whose revisits refer to `snapshot_id`."""
    found = []
    for folder in store.snapshots():
        try:
            with Package.open(folder) as package:
                if any(d.snapshot == snapshot_id for d in dependencies(package.metadata())):
                    found.append(folder)
        except ArchiveError:
            continue
    return found


def remove(ref: str, collection: Path | str | None = None, *, with_dependents: bool = False) -> list[Path]:
    """Remove a snapshot from the collection; return the folders removed.

    Refused (HasDependents) while other snapshots' revisits refer to its records, unless
    `with_dependents`, which removes those too (and theirs). Raises SnapshotNotFound.
    """
    store = Collection(collection)
    folder = store.resolve(ref)
    doomed = [folder]
    for current in doomed:   # grows while walking: dependents of dependents
        for other in dependents(store, snapshot_id_of(current)):
            if other not in doomed:
                doomed.append(other)
    if len(doomed) > 1 and not with_dependents:
        raise HasDependents(snapshot_id_of(folder), doomed[1:])
    for path in reversed(doomed):   # dependents first: never one left without its records
        store.remove(path)
    return doomed


def check(package: Package, store: Collection) -> tuple[int, list[Problem]]:
    """Check that every record the package's revisits refer to exists with its digest.

    Records are looked for in the package's own `archive/deps-*` files (a self-contained
    export), else in the collection's snapshots. Return (records checked, problems).
    """
    deps = dependencies(source_metadata(package))
    listed = {o.record_id: o for d in deps for o in d.records}
    problems = _check_revisits(package, listed)
    inside = _embedded(package)
    checked = 0
    for dep in deps:
        place = f"dependency {dep.snapshot[:12]}"
        if inside is not None:
            for original in dep.records:
                checked += 1
                found = inside.get(original.record_id)
                problems += _compare(place, original, found)
            continue
        folder = find_snapshot(store, dep.snapshot)
        if folder is None:
            problems.append(Problem(place, "dependency missing",
                                    expected=f"snapshot {dep.snapshot} in {store.root}",
                                    found="no such snapshot"))
            continue
        with Package.open(folder) as other:
            for original in dep.records:
                checked += 1
                problems += _compare(place, original, _head_at(other, original))
    return checked, problems


def _compare(place: str, original: Original, found: dict[str, str] | None) -> list[Problem]:
    if found is None or found.get("WARC-Record-ID") != original.record_id:
        return [Problem(place, "dependency missing", uri=original.uri,
                        expected=f"record {original.record_id} at {original.filename}@{original.offset}",
                        found="no such record")]
    if found.get("WARC-Payload-Digest") != original.digest:
        return [Problem(place, "dependency digest differs", uri=original.uri, expected=original.digest,
                        found=str(found.get("WARC-Payload-Digest")))]
    return []


def _head_at(package: Package, original: Original) -> dict[str, str] | None:
    """Return the WARC headers of the record at the original's place, or None."""
    try:
        with package.member(package.warc_path(original.filename)) as f:
            f.seek(original.offset)
            record = next(iter(ArchiveIterator(f, no_record_parse=True)))
            return dict(record.rec_headers.headers)
    except (ArchiveError, OSError, StopIteration, ValueError, EOFError, gzip.BadGzipFile):
        return None
    except Exception:   # warcio's parse errors have no common base: a damaged place is no record
        return None


def _embedded(package: Package) -> dict[str, dict[str, str]] | None:
    """Return record id -> WARC headers of the records a self-contained export carries, or None."""
    names = [n for n in package.names() if n.startswith(DEPS_PREFIX)]
    if not package.has(SOURCE + DATAPACKAGE):
        return None
    found: dict[str, dict[str, str]] = {}
    for name in names:
        for headers in _heads(package, name):
            found[headers.get("WARC-Record-ID", "")] = headers
    return found


def _heads(package: Package, name: str) -> Iterator[dict[str, str]]:
    with package.member(name) as f:
        try:
            for record in ArchiveIterator(f, no_record_parse=True):
                yield dict(record.rec_headers.headers)
        except Exception:   # a damaged copy: the records before the damage still count
            return


def _check_revisits(package: Package, listed: dict[str, Original]) -> list[Problem]:
    """Check that each revisit record the index names refers to a listed dependency record."""
    problems = []
    for entry in package.index():
        if entry.mime != REVISIT_MIME:
            continue
        place = package.warc_path(entry.filename)
        try:
            with package.record(entry.filename, entry.offset) as (response, _):
                heads = response.warc_headers
        except Exception:
            continue   # the WARC check reports a damaged record with its place
        target = heads.get("WARC-Refers-To", "")
        original = listed.get(target)
        if original is None:
            problems.append(Problem(place, "revisit refers to a record not listed as a dependency",
                                    entry.offset, entry.url, found=target or "no WARC-Refers-To"))
        elif heads.get("WARC-Profile", "").endswith("/identical-payload-digest") \
                and heads.get("WARC-Payload-Digest") != original.digest:
            problems.append(Problem(place, "revisit digest differs from its original", entry.offset,
                                    entry.url, expected=original.digest,
                                    found=heads.get("WARC-Payload-Digest")))
    return problems


__all__ = ["DEPS_INDEX", "DEPS_PREFIX", "DIGEST_FILE", "SOURCE", "Dependency", "check", "dependencies",
           "dependents", "find_snapshot", "source_metadata"]
