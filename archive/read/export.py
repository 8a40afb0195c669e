"""A snapshot as one file: a byte-reproducible .wacz, or its WARC records as one .warc(.gz).

The .wacz holds the snapshot's files under their relative paths, datapackage.json and its
digest byte for byte, so the package digest is still the snapshot id. Every member is
STORED: the WARCs must be (readers seek to record offsets inside them), and storing the
small text files too keeps the output independent of the zlib build, so the same snapshot
gives the same bytes on every machine. Timestamps, permissions and member order are fixed,
and nothing about the export itself goes in.

Files are written to a temporary name next to `dest` and renamed into place, so `dest` is
either absent, the old file, or the complete new one.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import hashlib
import io
import json
import os
import tempfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, ContextManager

from warcio.archiveiterator import ArchiveIterator

from archive.errors import DiskFull, StorageError, UsageError
from archive.formats.wire import iter_stream
from archive.snapshot.depends import DEPS_INDEX, DEPS_PREFIX, find_snapshot, resolve
from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, SOURCE, canonical_json, digest_document, sha256_file
from archive.snapshot.reader import FolderPackage, IndexEntry, Package, ZipPackage
from archive.snapshot.store import Collection, snapshot_id_of
from archive.warc.arc import is_arc

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)   # the earliest time a zip entry can hold: "no time"
UNIX = 3                            # create_system: the external attributes are Unix modes
FILE_MODE = 0o100644                # a regular file, rw-r--r--
GZIP_LEVEL = 6


def export(snapshot: Path | str, collection: Path | str | None = None, *, wacz: Path | None = None,
           warc: Path | None = None, overwrite: bool = False) -> Path:
    """Export a snapshot (folder, .wacz, id or id prefix) to `wacz` or to `warc`; return the file.

    Raises UsageError unless exactly one destination is given, SnapshotNotFound, NotASnapshot,
    StorageError, DiskFull.
    """
    dest = wacz if wacz is not None else warc
    if dest is None or (wacz is not None and warc is not None):
        raise UsageError("export writes either a .wacz or a WARC file: give one destination")
    write = export_wacz if wacz is not None else export_warc
    store = Collection(collection)
    with store.open(str(snapshot)) as package:
        # a snapshot folder's dependencies are its neighbours: the collection holding it
        home = Collection(package.path.parent) if package.path.is_dir() else store
        return write(package, dest, overwrite=overwrite, home=home)


def export_wacz(package: Package, dest: Path | str, *, overwrite: bool = False,
                home: Collection | None = None) -> Path:
    """Write `package` as a .wacz at `dest`; return dest. Raise StorageError or DiskFull.

    A snapshot whose revisits refer to other snapshots becomes a self-contained package: the
    records referred to in `archive/deps-<id12>.warc.gz` (copied byte for byte, taken from
    `home`, the collection), their index lines in `indexes/deps.cdx`, and the snapshot's own
    datapackage files under `source/`, so the cited id is still checkable. Without
    dependencies the package is the snapshot's files as they are, and its digest the id.
    """
    dest = Path(dest)
    deps = _originals(package, home)
    if not deps:
        with _atomic(dest, overwrite) as out:
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name in member_order(package.names()):
                    _add_member(zf, name, _size(package, name), functools.partial(package.member, name))
        return dest
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        extra = _dependency_files(deps, Path(tmp))
        extra[SOURCE + DATAPACKAGE] = Path(tmp) / "datapackage.json"
        extra[SOURCE + DATAPACKAGE].write_bytes(package.read(DATAPACKAGE))
        extra[SOURCE + DIGEST_FILE] = Path(tmp) / "datapackage-digest.json"
        extra[SOURCE + DIGEST_FILE].write_bytes(package.read(DIGEST_FILE))
        whole = _whole_datapackage(package, extra)
        own = [n for n in package.names() if n not in (DATAPACKAGE, DIGEST_FILE)]
        with _atomic(dest, overwrite) as out:
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, data in whole.items():
                    _add_member(zf, name, len(data), functools.partial(io.BytesIO, data))
                for name in sorted([*own, *extra]):
                    if name in extra:
                        path = extra[name]
                        _add_member(zf, name, path.stat().st_size, functools.partial(_read_file, path))
                    else:
                        _add_member(zf, name, _size(package, name), functools.partial(package.member, name))
    return dest


def _read_file(path: Path) -> BinaryIO:
    return open(path, "rb")


def _originals(package: Package, home: Collection | None) -> dict[Path, list[IndexEntry]]:
    """Return the records (by snapshot folder) that the package's revisits refer to outside it;
    raise UsageError when one cannot be found."""
    if package.has(SOURCE + DATAPACKAGE):
        return {}   # a self-contained export already
    home = home or Collection(package.path.parent)
    resolution = resolve(package, home)
    if resolution.problems:
        raise UsageError(f"cannot make snapshot {package.id[:12]} whole: {resolution.problems[0]}")
    found = {}
    for snapshot_id, entries in resolution.originals.items():
        folder = find_snapshot(home, snapshot_id)
        assert folder is not None   # resolve found records in it
        found[folder] = entries
    return found


def _dependency_files(deps: dict[Path, list[IndexEntry]], tmp: Path) -> dict[str, Path]:
    """Copy the records `deps` name, byte for byte, into one WARC per snapshot, and index them."""
    files: dict[str, Path] = {}
    lines = []
    for folder, entries in deps.items():
        name = f"{DEPS_PREFIX}{snapshot_id_of(folder)[:12]}.warc.gz"
        files[name] = tmp / name.rsplit("/", 1)[-1]
        with Package.open(folder) as other, open(files[name], "wb") as out:
            for entry in entries:
                offset = out.tell()
                with other.member(other.warc_path(entry.filename)) as src:
                    src.seek(entry.offset)
                    for block in iter_stream(src, entry.length):
                        out.write(block)
                fields = {**entry.fields, "filename": name.rsplit("/", 1)[-1], "offset": str(offset)}
                lines.append(f"{entry.urlkey} {entry.timestamp} {json.dumps(fields)}".encode("utf-8"))
    files[DEPS_INDEX] = tmp / "deps.cdx"
    files[DEPS_INDEX].write_bytes(b"".join(line + b"\n" for line in sorted(lines)))
    return files


def _whole_datapackage(package: Package, extra: dict[str, Path]) -> dict[str, bytes]:
    """Return the datapackage files of a self-contained export: the snapshot's resources,
    the added files, and where the snapshot's own datapackage.json is."""
    source = package.datapackage()
    added = []
    for name, path in extra.items():
        digest, size = sha256_file(path)
        entry = {"name": name.rsplit("/", 1)[-1].lower(), "path": name, "hash": digest, "bytes": size}
        if name.startswith(SOURCE):
            # bytes whose hash is the citation, not data to parse: frictionless (`wacz validate`)
            # would otherwise read the JSON as a nested data package with paths of its own
            entry.update(format="bin", mediatype="application/octet-stream")
        added.append(entry)
    whole = {**source, "resources": sorted([*source.get("resources", []), *added], key=lambda r: r["path"]),
             "snapshot": {"id": package.id, "datapackage": SOURCE + DATAPACKAGE}}
    data = canonical_json(whole)
    return {DATAPACKAGE: data, DIGEST_FILE: canonical_json(digest_document(hashlib.sha256(data).hexdigest()))}


def member_order(names: list[str]) -> list[str]:
    """Return the zip member order: the package metadata first, then every file by path.

    >>> member_order(["pages/pages.jsonl", "datapackage-digest.json", "archive/a.warc.gz",
    ...               "datapackage.json"])
    ['datapackage.json', 'datapackage-digest.json', 'archive/a.warc.gz', 'pages/pages.jsonl']
    """
    first = [n for n in (DATAPACKAGE, DIGEST_FILE) if n in names]
    return first + sorted(n for n in names if n not in first)


def _add_member(zf: zipfile.ZipFile, name: str, size: int,
                opener: Callable[[], ContextManager[BinaryIO]]) -> None:
    info = zipfile.ZipInfo(name, ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = UNIX
    info.external_attr = FILE_MODE << 16
    # zipfile decides on zip64 headers from the announced size before the first byte is
    # streamed; with the real size it uses them exactly when the member needs them.
    info.file_size = size
    with opener() as src, zf.open(info, "w") as out:
        for block in iter_stream(src):
            out.write(block)


def _size(package: Package, name: str) -> int:
    if isinstance(package, ZipPackage):
        return package.zip.getinfo(name).file_size
    if isinstance(package, FolderPackage):
        return (package.path / name).stat().st_size
    with package.member(name) as f:
        return f.seek(0, os.SEEK_END)


def export_warc(package: Package, dest: Path | str, *, overwrite: bool = False,
                home: Collection | None = None) -> Path:
    """Write every WARC record of `package`, in file order, to one .warc.gz (or .warc) file.

    A .warc.gz keeps one gzip member per record, so it stays a valid record-at-a-time WARC.
    The records its revisits refer to follow, copied from `home` (the collection), so the
    file replays on its own. Return dest; raise UsageError for another suffix or a snapshot of ARC files, StorageError
    or DiskFull.
    """
    dest = Path(dest)
    if not dest.name.endswith((".warc.gz", ".warc")):
        raise UsageError(f"export_warc writes a .warc.gz or .warc file, not {dest.name!r}")
    arcs = [name for name in package.warc_names() if is_arc(name)]
    if arcs:   # ARC records in a WARC file would make it neither
        raise UsageError(f"{arcs[0]} is an ARC file, not WARC records: export the snapshot as a "
                         ".wacz, which keeps it byte for byte")
    compressed = dest.name.endswith(".gz")
    originals = _originals(package, home)
    with _atomic(dest, overwrite) as out:
        for name in package.warc_names():
            with package.member(name) as src:
                _copy_warc(src, name.endswith(".gz"), compressed, out)
        for folder, entries in originals.items():
            with Package.open(folder) as other:
                for entry in entries:
                    name = other.warc_path(entry.filename)
                    with other.member(name) as src:
                        src.seek(entry.offset)
                        _copy_warc(src, name.endswith(".gz"), compressed, out, entry.length)
    return dest


def _copy_warc(src: BinaryIO, src_gz: bool, dest_gz: bool, out: BinaryIO, limit: int | None = None) -> None:
    """Copy WARC records (`limit` bytes of them, or all) from `src` to `out`."""
    if limit is not None and src_gz != dest_gz:
        src = io.BytesIO(src.read(limit))   # one record, to convert: the rest stays unread
    if src_gz == dest_gz:
        # Concatenated gzip members are one valid multi-member gzip; plain WARCs just follow on.
        blocks = iter_stream(src, limit)
    elif src_gz:
        blocks = iter_stream(gzip.GzipFile(fileobj=src))  # type: ignore[arg-type]
    else:
        blocks = _gzip_per_record(src)
    for block in blocks:
        out.write(block)


def _gzip_per_record(src: BinaryIO) -> Iterator[bytes]:
    """Yield an uncompressed WARC compressed one gzip member per record (two passes: seeks)."""
    starts = _record_starts(src)
    src.seek(0)
    for start, end in zip(starts, starts[1:] + [None]):
        comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
        for block in iter_stream(src, None if end is None else end - start):
            yield comp.compress(block)
        yield comp.flush()


def _record_starts(src: BinaryIO) -> list[int]:
    iterator = ArchiveIterator(src, no_record_parse=True)
    starts = [iterator.get_record_offset() for _ in iterator]
    # Anything before the first record stays with it rather than being dropped.
    return [0, *starts[1:]] if starts else [0]


# -- writing the destination -------------------------------------------------------------------
@contextmanager
def _atomic(dest: Path, overwrite: bool) -> Iterator[BinaryIO]:
    """Yield a new temporary file next to `dest`; rename it onto `dest` when the block succeeds."""
    _check_dest(dest, overwrite)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open(tmp, "xb") as out:   # "x" and a fresh name: never someone else's file; umask applies
            yield out
            out.flush()
            os.fsync(out.fileno())
        _check_dest(dest, overwrite)   # it may have appeared while we wrote
        os.replace(tmp, dest)
    except OSError as exc:
        raise _storage_error(dest, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _check_dest(dest: Path, overwrite: bool) -> None:
    if not dest.parent.is_dir():
        raise StorageError(dest, f"no such folder {dest.parent}")
    if dest.is_dir():
        raise StorageError(dest, "it is a folder")
    if dest.exists() and not overwrite:
        raise StorageError(dest, "the file exists already (use --force to overwrite it)")


def _storage_error(dest: Path, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(dest)
    return StorageError(dest, exc.strerror or str(exc))
