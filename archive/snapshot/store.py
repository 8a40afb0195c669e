"""The on-disk layout of a collection; the only module that builds snapshot paths.

    <collection>/
        .partial/<capture-id>/          a capture in progress (or interrupted), same layout
        .partial/<capture-id>.spool/    response bodies between the socket and the WARC
        <YYYYmmddTHHMMSSZ>-<host>-<id12>/   a finished snapshot: an unzipped WACZ package

A capture is moved into place with one rename when complete, so a snapshot folder is never
half-written.
"""
from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from archive.errors import AmbiguousSnapshot, NotACollection, NotASnapshot, SnapshotNotFound, StorageError, UsageError

from .package import DATAPACKAGE, DIGEST_FILE, FOLDERS, SOURCE
from .reader import MAX_JSON, MAX_LINE, Package

ENV_COLLECTION = "ARCHIVE_COLLECTION"
PARTIAL = ".partial"
STATE = ".state"          # machine-written collection state: verification results
SETTINGS = "archive.toml"  # the collection's policy, written by people
_HEX = re.compile(r"[0-9a-f]{6,64}")
_SHORT_HEX = re.compile(r"[0-9a-f]{1,5}")
SCHEDULE_FILE = "schedule.toml"
# what only a collection holds besides snapshot folders (see Collection.require)
_MARKS = (PARTIAL, STATE, SCHEDULE_FILE, SETTINGS)


def default_collection() -> Path:
    """Return $ARCHIVE_COLLECTION, or ./snapshots."""
    return Path(os.environ.get(ENV_COLLECTION) or "snapshots")


def snapshot_name(created: datetime, host: str, snapshot_id: str) -> str:
    """Return a snapshot folder name a person can read: time, host, short id.

    >>> from datetime import datetime
    >>> snapshot_name(datetime(2026, 11, 26, 11, 0, 5), "127.0.0.1:8080", "ab" * 32)
    '20261126T110005Z-127.0.0.1_8080-abababababab'
    """
    safe_host = re.sub(r"[^a-z0-9.-]+", "_", host.lower()).strip("._") or "snapshot"
    return f"{created.strftime('%Y%m%dT%H%M%SZ')}-{safe_host[:80]}-{snapshot_id[:12]}"


def is_snapshot(path: Path) -> bool:
    """Return True when `path` looks like a snapshot folder (it has a datapackage digest)."""
    return (path / DIGEST_FILE).is_file() and (path / DATAPACKAGE).is_file()


def snapshot_id_of(path: Path) -> str:
    """Return the id a snapshot folder claims (from datapackage-digest.json); raise NotASnapshot.

    An imported self-contained export is the snapshot it carries under source/: its id.
    """
    carried = path / SOURCE / DIGEST_FILE
    try:
        digest = json.loads(read_small(carried if carried.is_file() else path / DIGEST_FILE))["hash"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise NotASnapshot(path, f"unreadable {DIGEST_FILE}: {exc}") from None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise NotASnapshot(path, f"{DIGEST_FILE} has no sha256 hash")
    return digest.removeprefix("sha256:")


class Collection:
    """A folder of snapshots."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_collection()

    def require(self) -> Collection:
        """Return self when the folder is a collection; raise NotACollection (exit 2) otherwise.

        A collection is a folder that exists and either is empty (a new collection made by
        hand, e.g. `mkdir snapshots`) or holds something only a collection holds: a
        snapshot folder, `.partial/`, `.state/`, `schedule.toml` or `archive.toml`. Commands
        that read or upkeep a collection call this first, so that a mistyped `-C` is named
        rather than read as an empty collection (or written into, as `.state/` by audit);
        commands that create one (capture, import, demo, schedule add) do not.
        """
        root = self.root
        if not root.is_dir():
            raise NotACollection(root, "no such folder" if not root.exists() else "not a folder")
        try:
            with os.scandir(root) as entries:   # readable, and empty or not: without listing it all
                empty = next(entries, None) is None
            if empty or any(os.path.lexists(root / name) for name in _MARKS):
                return self
            names = [p.name for p in root.iterdir()]
        except OSError as exc:
            raise NotACollection(root, exc.strerror or str(exc)) from None
        if any(is_snapshot(root / name) for name in names if not name.startswith(".")):
            return self
        raise NotACollection(root, "it holds no snapshot folder, .partial/, .state/ or schedule.toml")

    def new_partial(self, capture_id: str) -> tuple[Path, Path]:
        """Create and return (partial snapshot folder, spool folder) for a new capture."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", capture_id):
            raise StorageError(capture_id, "capture ids are letters, digits, '-' and '_'")
        base = self.root / PARTIAL
        folder, spool = base / capture_id, base / f"{capture_id}.spool"
        try:
            for sub in FOLDERS:
                (folder / sub).mkdir(parents=True, exist_ok=False)
            spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(exc.filename or folder, exc.strerror or str(exc)) from None
        return folder, spool

    def partial(self, ref: str) -> Path:
        """Return the partial capture named by its id or folder; raise SnapshotNotFound."""
        path = Path(ref)
        folder = path if path.is_dir() else self.root / PARTIAL / ref
        if (self.root / PARTIAL).resolve() != folder.resolve().parent or not (folder / "archive").is_dir():
            raise SnapshotNotFound(ref, self.root / PARTIAL)
        return folder

    def find_partial(self, ref: str) -> Path | None:
        """Return the partial capture `ref` names (its folder, id or a 6+ character id prefix)
        when exactly one matches, else None."""
        path = Path(ref)
        if path.is_dir() and path.resolve().parent.name == PARTIAL and (path / "archive").is_dir():
            return path
        if len(ref) < 6 or "/" in ref:
            return None
        matches = [p for p in self.partials() if p.name.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def new_spool(self, capture_id: str) -> Path:
        """Create and return a spool folder for a capture being resumed."""
        spool = self.root / PARTIAL / f"{capture_id}.spool"
        try:
            spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(spool, exc.strerror or str(exc)) from None
        return spool

    def publish(self, partial: Path, name: str) -> Path:
        """Move a completed capture into place under `name`; return its new path."""
        target = self.root / name
        if target.exists():
            raise StorageError(target, "a snapshot of that name exists already")
        try:
            os.rename(partial, target)
        except OSError as exc:
            raise StorageError(target, exc.strerror or str(exc)) from None
        self._tidy_partial()
        return target

    def _tidy_partial(self) -> None:
        try:
            (self.root / PARTIAL).rmdir()   # only when no other capture is under way
        except OSError:
            pass

    def discard(self, folder: Path) -> None:
        """Remove a partial folder or spool (only ever under .partial)."""
        if (self.root / PARTIAL) in folder.parents:
            import shutil   # this module is loaded by every command; shutil, uuid, tomllib by few
            shutil.rmtree(folder, ignore_errors=True)
            self._tidy_partial()

    def remove(self, folder: Path) -> None:
        """Remove a finished snapshot: renamed out of the collection at once, then deleted."""
        if folder.parent.resolve() != self.root.resolve() or not is_snapshot(folder):
            raise StorageError(folder, "not a snapshot of this collection")
        doomed = self.root / PARTIAL / f"{folder.name}.removing"
        try:
            doomed.parent.mkdir(exist_ok=True)
            os.rename(folder, doomed)   # gone from every listing in one step
        except OSError as exc:
            raise StorageError(folder, exc.strerror or str(exc)) from None
        import shutil
        shutil.rmtree(doomed, ignore_errors=True)
        self._tidy_partial()

    def snapshots(self) -> list[Path]:
        """Return the finished snapshot folders of the collection, oldest name first."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and is_snapshot(p))

    def open(self, ref: str) -> Package:
        """Return the package named by `ref`: a .wacz file, a snapshot folder, an id or prefix."""
        path = Path(ref)
        if path.is_file():
            return Package.open(path)
        return Package.open(self.resolve(ref))

    def holds(self, path: Path) -> bool:
        """Return True when `path` is a snapshot folder of this collection."""
        return path.resolve().parent == self.root.resolve() and is_snapshot(path)

    def record_verification(self, snapshot_id: str, ok: bool, problems: int, when: str) -> None:
        """Append a verification result to the collection's state (for `archive list`)."""
        try:
            (self.root / STATE).mkdir(exist_ok=True)
            with open(self.root / STATE / "verify.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": snapshot_id, "time": when, "ok": ok, "problems": problems}) + "\n")
        except OSError as exc:
            raise StorageError(self.root / STATE, exc.strerror or str(exc)) from None

    def identity(self) -> str:
        """Return the collection's own id (a UUID made on first use, kept in .state/identity).

        Work sent to other processes names it, so that a worker on another collection can
        tell the work is not its own.
        """
        import uuid

        path = self.root / STATE / "identity"
        try:
            return path.read_text("ascii").strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(path, exc.strerror or str(exc)) from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"identity.{uuid.uuid4().hex}")
            tmp.write_text(uuid.uuid4().hex + "\n", "ascii")
            try:
                os.link(tmp, path)   # whole or absent; of two first users one wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        except OSError as exc:
            raise StorageError(path, exc.strerror or str(exc)) from None
        return path.read_text("ascii").strip()

    def settings(self) -> dict[str, object]:
        """Return the collection's policy file, `archive.toml` (e.g. block_private = true), or {}."""
        import tomllib

        path = self.root / SETTINGS
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        return data

    def partials(self) -> list[Path]:
        """Return the capture folders under .partial: under way, interrupted or killed."""
        base = self.root / PARTIAL
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.endswith((".spool", ".removing")))

    def resolve(self, ref: str) -> Path:
        """Return the snapshot folder named by `ref`: a path, a full id or a unique id prefix."""
        path = Path(ref)
        if path.is_dir() and (is_snapshot(path) or not _HEX.fullmatch(ref)):
            if not is_snapshot(path):
                raise NotASnapshot(path, f"no {DIGEST_FILE}")
            return path
        needle = ref.lower().removeprefix("sha256:")
        if not _HEX.fullmatch(needle):
            if path.exists():
                raise NotASnapshot(path, "not a snapshot folder")
            if _SHORT_HEX.fullmatch(needle):
                raise UsageError(f"snapshot id prefix {ref!r} is too short: give 6 or more hex digits")
            if "/" in ref or ref.endswith((".wacz", ".warc", ".warc.gz", ".zip")):
                raise UsageError(f"no such file: {ref}")
            raise SnapshotNotFound(ref, self.root)
        self.require()
        matches = []
        for folder in self.snapshots():
            try:
                if snapshot_id_of(folder).startswith(needle):
                    matches.append(folder)
            except NotASnapshot:
                continue
        if not matches:
            raise SnapshotNotFound(ref, self.root)
        if len(matches) > 1:
            raise AmbiguousSnapshot(ref, self.root, [m.name for m in matches])
        return matches[0]


def file_lines(path: Path, limit: int = MAX_LINE) -> Iterator[bytes]:
    """Yield the lines of a state or log file, streamed; a line over `limit` bytes is skipped
    (read through, never held), as a line cut short by a crash is. Raises OSError."""
    with open(path, "rb") as f:
        while line := f.readline(limit + 1):
            if len(line) <= limit or line.endswith(b"\n"):
                yield line
                continue
            while (rest := f.readline(limit)) and not rest.endswith(b"\n"):
                pass


def read_small(path: Path, cap: int = MAX_JSON) -> bytes:
    """Return a state file whole; raise OSError (EFBIG) when it is over `cap` bytes."""
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise OSError(errno.EFBIG, f"over {cap} bytes", str(path))
    return data


def collection_of(ref: str | Path, collection: Path | str | None = None) -> Collection:
    """Return the collection a partial capture's folder lies in (`<collection>/.partial/<id>`),
    or `collection` when `ref` is not such a folder path (an id): a folder names its collection."""
    path = Path(ref)
    if path.is_dir() and path.resolve().parent.name == PARTIAL:
        return Collection(path.resolve().parent.parent)
    return Collection(collection)


def last_verifications(store: Collection) -> dict[str, dict[str, object]]:
    """Return the latest verification result of each snapshot id, from the collection state."""
    latest: dict[str, dict[str, object]] = {}
    try:
        for line in file_lines(store.root / STATE / "verify.jsonl"):
            try:
                entry = json.loads(line)
                latest[str(entry["id"])] = {"time": entry["time"], "ok": entry["ok"],
                                            "problems": entry.get("problems", 0)}
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue
    except OSError:
        pass
    return latest
