"""The one exception tree of the archive package.

    ArchiveError                    anything this package raises on purpose
    ├── UsageError                  bad arguments: a malformed URL, an option out of range (exit 2)
    ├── SnapshotNotFound            a SNAPSHOT argument names nothing in the collection (exit 2)
    │   └── AmbiguousSnapshot       an id prefix that names several snapshots (exit 2)
    ├── NotASnapshot                a folder or file that is not a snapshot at all (exit 2)
    ├── NotACollection              a -C folder that is missing or holds something else (exit 2)
    ├── StorageError                the disk said no: permissions, ENOSPC, a missing folder (exit 2)
    │   └── DiskFull                no space left; a partial capture is kept (exit 4)
    ├── NoAnswer                    no seed got any HTTP answer; nothing was written (exit 3)
    ├── Interrupted                 the capture was stopped; a partial capture is kept (exit 4)
    ├── ImportRejected              an archive to import failed its checks; nothing added (exit 1)
    ├── VerificationFailed          a package from outside the collection failed verify; not read (exit 1)
    ├── AlreadyImported             the collection holds a snapshot with that id already (exit 2)
    ├── HasDependents               a snapshot to remove holds records other snapshots refer to (exit 2)
    ├── ScheduleBusy                another `schedule run` holds the collection's schedule lock (exit 2)
    ├── ProofError                  a signing key, trust file or TSA answer that cannot be used (exit 2)
    ├── BrokerError                 the Redis broker of a cluster cannot be reached or refused (exit 2)
    ├── LeaseLost                   a worker's claim on a capture expired; it stopped, partial kept (exit 4)
    └── BrowserError                Chromium missing, not starting, or lost during a capture (exit 2)

    FetchError                      one exchange failed (DNS, refused, timeout...): recorded, not raised to users

Every error carries its data as attributes and a message a user can read in `str()`.
The CLI maps the classes to exit codes (`exit_code`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class ArchiveError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 2


class UsageError(ArchiveError):
    """The user asked for something malformed."""


class SnapshotNotFound(ArchiveError):
    """A SNAPSHOT argument names no snapshot in the collection."""

    def __init__(self, ref: str, collection: Path):
        self.ref = ref
        self.collection = collection
        super().__init__(f"no snapshot {ref!r} in collection {collection}")


class NotACollection(ArchiveError):
    """A collection folder (-C) is missing or holds something else."""

    def __init__(self, path: Path, why: str):
        self.path = path
        self.why = why
        super().__init__(f"not a collection: {path} ({why})")


class AmbiguousSnapshot(SnapshotNotFound):
    """An id prefix matches several snapshots."""

    def __init__(self, ref: str, collection: Path, candidates: list[str]):
        self.candidates = candidates
        ArchiveError.__init__(
            self,
            f"snapshot prefix {ref!r} is ambiguous in {collection}: " + ", ".join(candidates),
        )
        self.ref = ref
        self.collection = collection


class NotASnapshot(ArchiveError):
    """A path that is not a snapshot folder."""

    def __init__(self, path: Path, why: str):
        self.path = path
        self.why = why
        super().__init__(f"{path} is not a snapshot: {why}")


class StorageError(ArchiveError):
    """Reading or writing the collection failed."""

    def __init__(self, path: Path | str, why: str):
        self.path = path
        self.why = why
        super().__init__(f"cannot write {path}: {why}")


class DiskFull(StorageError):
    """The disk filled up during a capture; what was written before is kept."""

    exit_code = 4

    def __init__(self, path: Path | str, partial: Path | None = None, why: str = "no space left on device"):
        self.partial = partial
        StorageError.__init__(self, path, why)
        if partial:
            self.args = (f"disk full while writing {path} ({why}); partial capture kept in {partial} "
                         f"(finish it with: archive capture --resume {partial.name})",)


class NoAnswer(ArchiveError):
    """No seed got an HTTP answer, so no snapshot was written."""

    exit_code = 3

    def __init__(self, failures: dict[str, str]):
        self.failures = failures
        detail = "; ".join(f"{url}: {why}" for url, why in failures.items())
        super().__init__(f"no HTTP answer from any seed ({detail}); no snapshot written")


class Interrupted(ArchiveError):
    """The capture was interrupted; its partial folder is kept."""

    exit_code = 4

    def __init__(self, partial: Path):
        self.partial = partial
        super().__init__(f"capture interrupted; partial capture kept in {partial} "
                         f"(finish it with: archive capture --resume {partial.name})")


class ImportRejected(ArchiveError):
    """The archive to import failed its checks; nothing was added to the collection."""

    exit_code = 1

    def __init__(self, source: Path, problems: Sequence[object]):
        self.source = source
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"{source} rejected, nothing imported: {shown}{more}")


class VerificationFailed(ArchiveError):
    """A package given by its path, from outside the collection, failed verification: its
    bytes are not read (cite, show, diff)."""

    exit_code = 1

    def __init__(self, path: Path, problems: Sequence[object]):
        self.path = path
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"{path} failed verification, not read: {shown}{more}")


class AlreadyImported(ArchiveError):
    """A snapshot with the same id is in the collection already."""

    def __init__(self, snapshot_id: str, existing: Path):
        self.snapshot_id = snapshot_id
        self.existing = existing
        super().__init__(f"snapshot {snapshot_id[:12]} is in the collection already: {existing}")


class HasDependents(ArchiveError):
    """Removing a snapshot would leave revisit records of others pointing at nothing."""

    def __init__(self, snapshot_id: str, dependents: Sequence[Path]):
        self.snapshot_id = snapshot_id
        self.dependents = tuple(dependents)
        names = ", ".join(p.name for p in self.dependents)
        super().__init__(f"snapshot {snapshot_id[:12]} is not removed: {len(self.dependents)} snapshot(s) "
                         f"refer to its records ({names}); to keep them, export each first "
                         f"(`archive export DEPENDENT --wacz FILE` writes a package holding what it refers "
                         f"to), then remove them with it: --with-dependents")


class ScheduleBusy(ArchiveError):
    """Another `schedule run` is running on the collection."""

    def __init__(self, lock: Path, holder: str):
        self.lock = lock
        self.holder = holder
        super().__init__(f"another schedule run holds {lock} ({holder}); nothing was run")


class ProofError(ArchiveError):
    """A signing key, trust file or time-stamping authority that cannot be used."""

    def __init__(self, what: str, why: str):
        self.what = what
        self.why = why
        super().__init__(f"{what}: {why}")


class BrokerError(ArchiveError):
    """The Redis broker that workers share cannot be reached, or answered with an error."""

    def __init__(self, url: str, why: str):
        self.url = url
        self.why = why
        super().__init__(f"cannot reach broker {url}: {why}")


class LeaseLost(ArchiveError):
    """A worker's lease on a scheduled capture lapsed (another worker may have taken it over)."""

    exit_code = 4

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"lease on capture {key} lost (Redis unreachable too long?); "
                         "capture stopped, its partial folder left to the worker that took over")


class FetchError(Exception):
    """One exchange failed before any HTTP answer (kept in the log, never shown as a traceback)."""

    def __init__(self, url: str, kind: str, detail: str):
        self.url = url
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}")


class BrowserError(ArchiveError):
    """Chromium could not be started or driven (missing, exited, no DevTools port)."""
