"""The records a snapshot's revisits refer to: finding and checking them.

A snapshot written with deduplication names, in datapackage.json (metadata "archive" ->
"dependencies"), the snapshots its revisit records refer to. Each revisit record names its
original (WARC-Refers-To, -Target-URI, -Date) and payload digest, and the WARC files are
in the manifest, so the id commits to every reference. The read side (verify, replay,
export, rm) finds the originals through this module, in the collection or inside a
self-contained export.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError, HasDependents, NotASnapshot, SnapshotNotFound
from archive.warc.cdxj import REVISIT_MIME
from archive.warc.digests import Problem

from .package import DATAPACKAGE, DIGEST_FILE, SOURCE
from .provenance import made_elsewhere
from .reader import IndexEntry, Package, parse_cdxj
from .store import Collection, snapshot_id_of

DEPS_PREFIX = "archive/deps-"      # in a self-contained export: copies of the records depended on
DEPS_INDEX = "indexes/deps.cdx"


def dependency_ids(metadata: dict[str, Any]) -> list[str]:
    """Return the ids of the snapshots a snapshot's metadata says its revisits refer to."""
    return [str(item["snapshot"]) for item in metadata.get("dependencies") or []
            if isinstance(item, dict) and isinstance(item.get("snapshot"), str)]


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
    return _dependency_map(store).get(snapshot_id, [])


def _dependency_map(store: Collection) -> dict[str, list[Path]]:
    """Return, for each snapshot id referred to, the snapshots whose revisits refer to it: as
    their metadata names, and for an import with revisits of other files (read/foreign.py)
    the snapshots its originals are found in."""
    found: dict[str, list[Path]] = {}
    for folder in store.snapshots():
        try:
            with Package.open(folder) as package:
                if package.has(SOURCE + DATAPACKAGE):
                    continue   # a self-contained package holds what it refers to
                meta = package.metadata()
                ids = dependency_ids(meta)
                if meta.get("revisits_elsewhere"):   # an imported crawl: wherever they are now
                    ids += [i for i in resolve(package, store, foreign=True).originals if i not in ids]
                for snapshot_id in ids:
                    found.setdefault(snapshot_id, []).append(folder)
        except ArchiveError:
            continue
    return found


def remove(ref: str, collection: Path | str | None = None, *, with_dependents: bool = False,
           confirm: Callable[[list[Path]], bool] | None = None) -> list[Path]:
    """Remove a snapshot from the collection; return the folders removed.

    Refused (HasDependents) while other snapshots' revisits refer to its records, unless
    `with_dependents`, which removes those too (and theirs). `confirm` is shown the folders
    that would go and may say no (nothing removed, [] returned) or raise. Raises
    SnapshotNotFound, NotACollection.
    """
    store = Collection(collection)
    folder = store.resolve(ref)
    referring = _dependency_map(store)   # read once: every snapshot's metadata
    doomed = [folder]
    for current in doomed:   # grows while walking: dependents of dependents
        for other in referring.get(snapshot_id_of(current), []):
            if other not in doomed:
                doomed.append(other)
    if len(doomed) > 1 and not with_dependents:
        raise HasDependents(snapshot_id_of(folder), doomed[1:])
    if confirm is not None and not confirm(doomed):
        return []
    for path in reversed(doomed):   # dependents first: never one left without its records
        store.remove(path)
    return doomed


@contextmanager
def payload_of(package: Package, entry: IndexEntry,
               home: Collection | None = None) -> Iterator[tuple[Package, IndexEntry]]:
    """Yield (package, index line) of the record holding the payload of `entry`: the entry
    itself, or for a revisit its original (in the package, an embedded deps file, or a
    snapshot of `home`, by default the collection holding the package; for a package made
    elsewhere, any snapshot of `home`). Raises NotASnapshot when a revisit's original cannot
    be found."""
    if entry.mime != REVISIT_MIME:
        yield package, entry
        return
    heads = _head_at(package, entry.filename, entry.offset) or {}
    if home is None and package.path.is_dir():
        home = Collection(package.path.parent)
    ids = dependency_ids(source_metadata(package)) if home is not None else []
    with _with_dependencies(package, ids, home or Collection(package.path.parent)) as (sources, _), \
            ExitStack() as stack:
        found, _ = _Catalog(sources).find(heads)
        if found is None and home is not None and _made_elsewhere(package):   # as `resolve` looks
            others = stack.enter_context(_others(package, home))
            found, _ = _Catalog(others).find(heads)
            sources = sources + others
        if found is None:
            raise NotASnapshot(package.path, f"the original of the revisit record of {entry.url} is missing")
        yield next(p for sid, p in sources if sid == found[0]), found[1]


@contextmanager
def _with_dependencies(package: Package, ids: list[str],
                       home: Collection) -> Iterator[tuple[list[tuple[str, Package]], list[str]]]:
    """Yield ([(snapshot id, package)]: the package itself as "" and each snapshot of `ids`
    found in `home`, open; [the ids not found]); close what was opened."""
    sources: list[tuple[str, Package]] = [("", package)]
    missing = []
    try:
        for snapshot_id in ids:
            folder = find_snapshot(home, snapshot_id)
            if folder is None:
                missing.append(snapshot_id)
            else:
                sources.append((snapshot_id, Package.open(folder)))
        yield sources, missing
    finally:
        for _, other in sources[1:]:
            other.close()


@dataclass
class Resolution:
    """Where the records a package's revisits refer to are, and what is wrong with them."""

    originals: dict[str, list[IndexEntry]] = field(default_factory=dict)   # snapshot id -> index lines
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0
    warnings: list[Problem] = field(default_factory=list)


ORIGINAL_ELSEWHERE = "original not in this collection"


def resolve(package: Package, home: Collection, *, foreign: bool | None = None) -> Resolution:
    """Find the original of every revisit record the package's index names.

    Originals are looked for in the package itself, then in its own `archive/deps-*` files
    (a self-contained export) or in the snapshots of `home` its metadata names. Each must
    exist with the revisit's payload digest; what does not is a problem with its place.
    A package made elsewhere (`foreign`, by default `provenance.made_elsewhere`: an imported
    crawl, deduplicated against files of its own, WARC 1.1 section 6.7) names no dependencies:
    its originals are also looked for in every other snapshot of `home`, and each revisit whose
    original is nowhere is a warning, ORIGINAL_ELSEWHERE, with its place; `checked` counts
    the originals found.
    """
    if foreign is None:
        foreign = _made_elsewhere(package)
    result = Resolution()
    revisits = _revisits(package)
    deps = dependency_ids(source_metadata(package))
    if not revisits and not deps:
        return result
    embedded = _embedded(package)
    with _with_dependencies(package, deps if embedded is None else [], home) as (sources, missing), \
            ExitStack() as stack:
        for snapshot_id in missing:
            result.problems.append(Problem(f"dependency {snapshot_id[:12]}", "dependency missing",
                                           expected=f"snapshot {snapshot_id} in {home.root}",
                                           found="no such snapshot"))
        catalog = _Catalog(sources)
        wider: _Catalog | None = None
        for place, offset, uri, heads in revisits:
            result.checked += 1
            target = heads.get("WARC-Refers-To", "")
            found = embedded.get(target) if embedded is not None else None
            original = None
            if found is None:
                original, found = catalog.find(heads)
            if found is None and foreign:
                wider = wider or _Catalog(stack.enter_context(_others(package, home)))
                original, found = wider.find(heads)
            if found is None and foreign:
                result.checked -= 1
                result.warnings.append(Problem(place, ORIGINAL_ELSEWHERE, offset, uri,
                                               expected=f"record {target or heads.get('WARC-Payload-Digest')}",
                                               found="in no snapshot of the collection"))
                continue
            if found is None:
                if not any(p.file.startswith("dependency ") for p in result.problems):
                    result.problems.append(Problem(place, "dependency missing", offset, uri,
                                                   expected=f"record {target or '(no WARC-Refers-To)'}",
                                                   found="no such record"))
                continue
            identical = heads.get("WARC-Profile", "").endswith("/identical-payload-digest")
            if identical and found.get("WARC-Payload-Digest") != heads.get("WARC-Payload-Digest"):
                result.problems.append(Problem(place, "dependency digest differs", offset, uri,
                                               expected=heads.get("WARC-Payload-Digest"),
                                               found=found.get("WARC-Payload-Digest")))
            if original is not None and original[0]:
                known = result.originals.setdefault(original[0], [])
                if original[1] not in known:
                    known.append(original[1])
    return result


def _made_elsewhere(package: Package) -> bool:
    try:
        return made_elsewhere(package.datapackage())
    except ArchiveError:
        return False   # unreadable: judged by our rules (verify reports it)


@contextmanager
def _others(package: Package, home: Collection) -> Iterator[list[tuple[str, Package]]]:
    """Yield [(snapshot id, package)] of every snapshot of `home` but `package`, open."""
    here = package.path.resolve()
    with ExitStack() as stack:
        found = []
        for folder in home.snapshots():
            if folder.resolve() == here:
                continue
            with suppress(ArchiveError):
                found.append((snapshot_id_of(folder), stack.enter_context(Package.open(folder))))
        yield found


class _Catalog:
    """The response records of some packages, found by target URI and 14-digit date."""

    def __init__(self, sources: list[tuple[str, Package]]):
        self.entries: dict[tuple[str, str], list[tuple[str, Package, IndexEntry]]] = {}
        self.by_url: dict[str, list[tuple[str, Package, IndexEntry]]] = {}
        for snapshot_id, package in sources:
            for entry in package.index():
                if entry.mime != REVISIT_MIME:
                    self.entries.setdefault((entry.url, entry.timestamp), []).append((snapshot_id, package, entry))
                    self.by_url.setdefault(entry.url, []).append((snapshot_id, package, entry))

    def find(self, revisit: dict[str, str]) -> tuple[tuple[str, IndexEntry] | None, dict[str, str] | None]:
        """Return ((snapshot id, index line), WARC headers) of the original a revisit refers to."""
        target = revisit.get("WARC-Refers-To", "")
        key = (revisit.get("WARC-Refers-To-Target-URI", ""), _stamp14(revisit.get("WARC-Refers-To-Date", "")))
        for snapshot_id, package, entry in self.entries.get(key, []):
            heads = _head_at(package, entry.filename, entry.offset)
            if heads is not None and heads.get("WARC-Record-ID") == target:
                return (snapshot_id, entry), heads
        if key[0] and key[1]:
            return None, None
        return self._by_url(revisit, target)

    def _by_url(self, revisit: dict[str, str], target: str
                ) -> tuple[tuple[str, IndexEntry] | None, dict[str, str] | None]:
        """Find the original of a revisit that names no original URI and date (wget names only
        WARC-Refers-To; Heritrix of 2014 not even that): a response of the revisit's own URI
        with its WARC-Refers-To id, or without one its payload digest (WARC 1.1 section 6.7.2)."""
        url = revisit.get("WARC-Refers-To-Target-URI") or revisit.get("WARC-Target-URI", "")
        digest = revisit.get("WARC-Payload-Digest", "")
        for snapshot_id, package, entry in self.by_url.get(url.strip().strip("<>"), []):
            if not target and (not digest or entry.digest.lower() != digest.lower()):
                continue
            heads = _head_at(package, entry.filename, entry.offset)
            if heads is None:
                continue
            if heads.get("WARC-Record-ID") == target if target else heads.get("WARC-Payload-Digest") == digest:
                return (snapshot_id, entry), heads
        return None, None


def _stamp14(date: str) -> str:
    """Return the 14-digit form of a WARC-Date.

    >>> _stamp14("2026-11-26T14:00:19.131435Z")
    '20261126140019'
    """
    return "".join(ch for ch in date if ch.isdigit())[:14]


def _head_at(package: Package, filename: str, offset: int) -> dict[str, str] | None:
    """Return the WARC headers of the record at a place, or None."""
    from warcio.archiveiterator import ArchiveIterator   # loaded by what reads a record

    try:
        with package.member(package.warc_path(filename)) as f:
            f.seek(offset)
            record = next(iter(ArchiveIterator(f, no_record_parse=True)))
            return dict(record.rec_headers.headers)
    except Exception:   # warcio's parse errors have no common base: a damaged place is no record
        return None


def _revisits(package: Package) -> list[tuple[str, int, str, dict[str, str]]]:
    """Return (file, offset, uri, WARC headers) of each revisit record the index names."""
    found = []
    for entry in _revisit_entries(package):
        if entry.mime == REVISIT_MIME:
            heads = _head_at(package, entry.filename, entry.offset)
            if heads is not None:   # a damaged record: the WARC check reports it with its place
                found.append((package.warc_path(entry.filename), entry.offset, entry.url, heads))
    return found


def _revisit_entries(package: Package) -> Iterator[IndexEntry]:
    """Yield the index entries that may be revisits: a line that does not hold the word
    "revisit" cannot name REVISIT_MIME unless a JSON escape spells it (a backslash), and is
    not parsed."""
    for name in package.index_names():
        for line in package.lines(name):
            if b"revisit" in line or b"\\" in line:
                entry = parse_cdxj(line.decode("utf-8", "replace"))
                if entry is not None:
                    yield entry


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
    from warcio.archiveiterator import ArchiveIterator

    with package.member(name) as f:
        try:
            for record in ArchiveIterator(f, no_record_parse=True):
                yield dict(record.rec_headers.headers)
        except Exception:   # a damaged copy: the records before the damage still count
            return


__all__ = ["DEPS_INDEX", "DEPS_PREFIX", "DIGEST_FILE", "Resolution", "dependency_ids",
           "dependents", "find_snapshot", "remove", "resolve", "source_metadata"]
