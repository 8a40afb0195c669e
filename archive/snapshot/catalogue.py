"""The collection catalogue: a SQLite cache of what the snapshot folders say, for fast reads.

`<collection>/.state/catalogue.sqlite3` (WAL mode, short transactions, safe for several
processes) holds every snapshot with its state, every captured URL (time, status, payload
digest, where its record is), the dependencies between snapshots, and an FTS5 index over the
URL, title and text of every page. It is never the truth: each `open_catalogue` first
reconciles it with the folders on disk (adds a snapshot it does not know, drops one that is
gone, takes in new lines of `.state/verify.jsonl`), a missing, damaged or older-schema file is
rebuilt with a one-line notice, and `verify` and `audit` never read it.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from archive.errors import ArchiveError, StorageError

from .catalogue_rows import SnapshotFacts, file_stamp, read_snapshot, read_verifications
from .catalogue_sql import (CAPTURE_COLUMNS, MEMENTO_COLUMNS, NOT_FAILED, SCHEMA, SCHEMA_VERSION, SNAPSHOT_COLUMNS,
                            SNAPSHOTS, CaptureRow, SearchHit, SnapshotRow, capture_row, clear, delete_snapshot,
                            fill_borrowed, fts_query, insert_snapshot, snapshot_row, snippet)
from .store import STATE, Collection, is_snapshot

logger = logging.getLogger(__name__)
FILE = "catalogue.sqlite3"
BUSY_MS = 60_000
RANKED = 2000       # matching pages a search ranks at most (the newest): the answer stays fast
BATCH = 50          # snapshots written in one transaction when many are new
T = TypeVar("T")


def open_catalogue(collection: Path | Collection, *, reconcile: bool = True) -> Catalogue:
    """Return the collection's catalogue: created when missing, rebuilt (one logged notice)
    when damaged, and reconciled with the snapshot folders (now and whenever the collection
    folder changes while it is open) unless `reconcile` is False: then only a new catalogue is
    filled, which suits a reader that checks what it finds (dedup opens each record it refers
    to). Raises StorageError when `.state/` cannot be written."""
    root = collection.root if isinstance(collection, Collection) else Path(collection)
    return Catalogue(root, reconcile)


class Catalogue:
    """The catalogue of one collection (a context manager). Safe across threads (one lock) and
    processes (SQLite WAL); every write is one short transaction."""

    def __init__(self, root: Path, reconcile: bool = True):
        self.root = Path(root)
        self.reconcile = reconcile
        self.path = self.root / STATE / FILE
        self.lock = threading.RLock()
        self.db: sqlite3.Connection | None = None
        self.recovering = False
        self.seen: tuple[int, int] = (-2, -2)   # the folder's mtime and the verify log's size at the last sync
        try:
            if self._connect() or reconcile:
                self._sync()
            else:
                self.seen = self._marks()
                self._sync_verifications()
        except sqlite3.DatabaseError as exc:
            self._recover(exc)

    # -- set-up and recovery ------------------------------------------------------------------
    def _connect(self) -> bool:
        """Open (and when new, create) the database; return True when it was created."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(self.path.parent, exc.strerror or str(exc)) from None
        fresh = not self.path.exists()
        db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        self.db = db
        db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION) or (version == 0 and not fresh and self._tables()):
            raise sqlite3.DatabaseError(f"schema version {version}, not {SCHEMA_VERSION}")
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA mmap_size=268435456")   # reads without copies: a TimeMap touches many pages
        if version == 0:
            with self._write() as cur:
                cur.executescript("BEGIN IMMEDIATE;" + SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
        db.execute("SELECT count(*) FROM snapshots").fetchone()
        return version == 0

    def _tables(self) -> bool:
        assert self.db is not None
        return bool(self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])

    def _recover(self, exc: BaseException) -> None:
        """Delete the damaged file and build the catalogue again from the folders."""
        if self.recovering:
            raise StorageError(self.path, f"catalogue unusable: {exc}")
        self.recovering = True
        self.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as err:
                raise StorageError(self.path, err.strerror or str(err)) from None
        try:
            self._connect()
            count = self._sync()
        except sqlite3.DatabaseError as err:
            raise StorageError(self.path, f"catalogue unusable: {err}") from None
        finally:
            self.recovering = False
        logger.warning("catalogue %s was damaged (%s): rebuilt from %d snapshot%s", self.path, exc, count,
                       "" if count == 1 else "s")

    def _guarded(self, work: Callable[[], T]) -> T:
        """Run a query; on a damaged file, rebuild once (with the notice) and run it again."""
        with self.lock:
            try:
                return work()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise StorageError(self.path, f"catalogue busy: {exc}") from None
                self._recover(exc)
                return work()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        assert self.db is not None
        cur = self.db.cursor()
        try:
            yield cur
            if self.db.in_transaction:
                cur.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                cur.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self.lock:
            if self.db is not None:
                try:
                    self.db.close()
                finally:
                    self.db = None

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- keeping it current --------------------------------------------------------------------
    def sync(self) -> int:
        """Reconcile with the folders and the verification log now (a long-lived reader, such
        as the web application, calls this before answering); return the snapshot count."""
        return self._guarded(self._sync)

    def _sync(self) -> int:
        """Reconcile with the folders on disk and the verification log; return the snapshot count."""
        assert self.db is not None
        self.seen = self._marks()
        row = self.db.execute("SELECT value FROM meta WHERE key='folder_mark'").fetchone()
        if row is None or row[0] != str(self.seen[0]):
            self._sync_folders()
        self._sync_verifications()
        return int(self.db.execute("SELECT count(*) FROM snapshots").fetchone()[0])

    def _sync_folders(self) -> None:
        """Add the snapshot folders the catalogue does not know, forget those gone; note the
        collection folder's modification time when it is old enough (file system times are
        coarse) that any later change to the folder shows as another time."""
        assert self.db is not None
        settled = time.time_ns() - self.seen[0] > 2_000_000_000
        known = dict(self.db.execute("SELECT folder, id FROM snapshots").fetchall())
        try:
            present = {e.name for e in os.scandir(self.root) if not e.name.startswith(".") and e.is_dir()}
        except OSError:
            present = set()
        for name in sorted(set(known) - present):
            self.remove_snapshot(known[name])
        new = [self.root / name for name in sorted(present - set(known)) if is_snapshot(self.root / name)]
        for start in range(0, len(new), BATCH):   # a rebuild: transactions of BATCH snapshots
            self._add(new[start:start + BATCH])
        if settled:
            with self._write() as cur:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('folder_mark', ?)", (str(self.seen[0]),))

    def _marks(self) -> tuple[int, int]:
        """Return what changes when a snapshot folder comes or goes (the collection folder's
        modification time) or a verification is recorded (the size of .state/verify.jsonl)."""
        marks = []
        for path, size in ((self.root, False), (self.root / STATE / "verify.jsonl", True)):
            try:
                info = os.stat(path)
                marks.append(info.st_size if size else info.st_mtime_ns)
            except OSError:
                marks.append(-1)
        return marks[0], marks[1]

    def _sync_verifications(self) -> None:
        """Take in the lines of .state/verify.jsonl not read yet (all of it when it shrank)."""
        assert self.db is not None
        log = self.root / STATE / "verify.jsonl"
        try:
            size = log.stat().st_size
        except OSError:
            size = 0
        row = self.db.execute("SELECT value FROM meta WHERE key='verify_offset'").fetchone()
        done = int(row[0]) if row else 0
        if size == done:
            return
        start = done if size > done else 0
        try:
            latest, read = read_verifications(log, start)
        except OSError:
            return
        with self._write() as cur:
            cur.execute("BEGIN IMMEDIATE")
            if start == 0:
                cur.execute("DELETE FROM verifications")
            cur.executemany("INSERT OR REPLACE INTO verifications VALUES (?,?,?,?)",
                            [(sid, when, ok, problems) for sid, (when, ok, problems) in latest.items()])
            cur.execute("INSERT OR REPLACE INTO meta VALUES ('verify_offset', ?)", (str(read),))

    def add_snapshot(self, folder: Path) -> None:
        """Index one published snapshot folder (again: idempotent). A folder that is no readable
        snapshot is left out (logged); verify reports it."""
        self._add([Path(folder)])

    def _add(self, folders: list[Path]) -> None:
        """Index snapshot folders, read first and then written in one transaction."""
        found = []
        for folder in folders:
            try:
                found.append(read_snapshot(folder))
            except (ArchiveError, OSError) as exc:
                logger.info("catalogue: %s left out: %s", folder, exc)
        if found:
            self._guarded(lambda: self._insert(found))

    def _insert(self, found: list[SnapshotFacts]) -> None:
        with self._write() as cur:
            cur.execute("BEGIN IMMEDIATE")
            for facts in found:
                held = cur.execute("SELECT folder FROM snapshots WHERE id=?", (facts.id,)).fetchone()
                if held is not None and held[0] != facts.folder and is_snapshot(self.root / held[0]):
                    logger.info("catalogue: %s left out: a copy of %s", facts.folder, held[0])
                    continue   # two folders of one id (a copy): the one catalogued first stays
                insert_snapshot(cur, facts)
            fill_borrowed(cur)   # their revisits' text, or others' waiting for theirs

    def remove_snapshot(self, snapshot_id: str) -> None:
        """Forget a snapshot (after its folder is gone)."""
        def work() -> None:
            with self._write() as cur:
                cur.execute("BEGIN IMMEDIATE")
                delete_snapshot(cur, snapshot_id)
        self._guarded(work)

    def rebuild(self) -> int:
        """Forget everything and index every snapshot folder again; return how many."""
        def work() -> int:
            with self._write() as cur:
                cur.execute("BEGIN IMMEDIATE")
                clear(cur)
            return self._sync()
        return self._guarded(work)

    def record_verification(self, snapshot_id: str, ok: bool, when: str, problems: int = 0) -> None:
        """Note a verification result (Collection.record_verification keeps the log it comes from)."""
        def work() -> None:
            with self._write() as cur:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute("INSERT OR REPLACE INTO verifications VALUES (?,?,?,?)",
                            (snapshot_id, when, ok, problems))
        self._guarded(work)

    # -- reading -------------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        def work() -> list[tuple[Any, ...]]:
            assert self.db is not None
            if self.reconcile and self._marks() != self.seen:   # a long-lived reader sees what others changed
                self._sync()
            return self.db.execute(sql, params).fetchall()
        return self._guarded(work)

    def count(self) -> int:
        """Return how many snapshots the collection holds."""
        return int(self._query("SELECT count(*) FROM snapshots")[0][0])

    def snapshots(self, offset: int = 0, limit: int = 50) -> list[SnapshotRow]:
        """Return a page of the snapshots, newest first (by creation time, then start time)."""
        rows = self._query(f"SELECT {SNAPSHOT_COLUMNS} FROM {SNAPSHOTS} ORDER BY s.captured_at DESC, s.started DESC, "
                           "s.id LIMIT ? OFFSET ?", (max(0, limit), max(0, offset)))
        return [snapshot_row(self.root, r) for r in rows]

    def snapshot(self, snapshot_id: str) -> SnapshotRow | None:
        """Return one snapshot by its full id, or None."""
        rows = self._query(f"SELECT {SNAPSHOT_COLUMNS} FROM {SNAPSHOTS} WHERE s.id=?", (snapshot_id,))
        return snapshot_row(self.root, rows[0]) if rows else None

    def find(self, prefix: str) -> list[SnapshotRow]:
        """Return the snapshots whose id starts with `prefix` (hex digits), at most 10."""
        low = prefix.lower()
        if not low or any(ch not in "0123456789abcdef" for ch in low):
            return []
        rows = self._query(f"SELECT {SNAPSHOT_COLUMNS} FROM {SNAPSHOTS} WHERE s.id >= ? AND s.id < ? ORDER BY s.id "
                           "LIMIT 10", (low, low + "g"))
        return [snapshot_row(self.root, r) for r in rows]

    def timemap(self, url: str) -> list[CaptureRow]:
        """Return every capture of `url` (canonicalised as captures are), oldest first."""
        return [capture_row(self.root, r) for r in self.timemap_rows(url, CAPTURE_COLUMNS)]

    def timemap_rows(self, url: str, columns: str = MEMENTO_COLUMNS) -> list[tuple[Any, ...]]:
        """Return the rows of `timemap` as tuples of catalogue_sql's MEMENTO_COLUMNS (or `columns`)."""
        from archive.formats.urls import canonicalize

        return self._query(f"SELECT {columns} FROM captures c WHERE c.url = ? "
                           "ORDER BY c.timestamp, c.started, c.snapshot_id", (canonicalize(url),))

    def lookup_payload(self, payload_digest: str) -> CaptureRow | None:
        """Return the oldest response record with this payload digest (for a revisit), or None."""
        found = self.payload_places(payload_digest, 1)
        return found[0] if found else None

    def payload_places(self, payload_digest: str, limit: int = 8) -> list[CaptureRow]:
        """Return up to `limit` response records with this payload digest, oldest snapshot first,
        leaving out snapshots whose last verification failed."""
        rows = self._query(f"SELECT {CAPTURE_COLUMNS} FROM captures c INDEXED BY captures_payload "
                           f"WHERE c.digest = ? AND c.record_type != 'revisit' AND {NOT_FAILED} "
                           "ORDER BY c.folder LIMIT ?", (payload_digest, limit))
        return [capture_row(self.root, r) for r in rows]

    def last_response(self, url: str) -> CaptureRow | None:
        """Return the newest 200 response record of exactly `url` (as captured), or None."""
        rows = self._query(f"SELECT {CAPTURE_COLUMNS} FROM captures c INDEXED BY captures_latest "
                           "WHERE c.url = ? AND c.status = 200 AND c.record_type != 'revisit' "
                           f"AND c.digest != '' AND {NOT_FAILED} ORDER BY c.folder DESC LIMIT 1", (url,))
        return capture_row(self.root, rows[0]) if rows else None

    def current(self, snapshot_id: str) -> bool:
        """Return True when the snapshot's datapackage.json and index files are as they were
        catalogued; otherwise take the snapshot in again (it changed in place) and return False.
        Readers that act on a record's place (dedup) ask this first."""
        rows = self._query("SELECT folder, stamp FROM snapshots WHERE id=?", (snapshot_id,))
        if not rows:
            return False
        folder = self.root / rows[0][0]
        if file_stamp(folder) == rows[0][1]:
            return True
        self.remove_snapshot(snapshot_id)
        if is_snapshot(folder):
            self.add_snapshot(folder)
        return False

    def dependencies(self, snapshot_id: str) -> list[str]:
        """Return the ids of the snapshots the revisits of `snapshot_id` refer to."""
        return [r[0] for r in self._query("SELECT depends_on FROM deps WHERE snapshot_id=? ORDER BY depends_on",
                                          (snapshot_id,))]

    def dependents(self, snapshot_id: str) -> list[SnapshotRow]:
        """Return the snapshots whose revisits refer to `snapshot_id`."""
        rows = self._query(f"SELECT {SNAPSHOT_COLUMNS} FROM {SNAPSHOTS} WHERE s.id IN "
                           "(SELECT snapshot_id FROM deps WHERE depends_on=?) ORDER BY s.folder", (snapshot_id,))
        return [snapshot_row(self.root, r) for r in rows]

    def search(self, words: str, limit: int = 20, offset: int = 0) -> list[SearchHit]:
        """Return the pages whose URL, title or text hold every word (the last as a prefix), best
        match first (FTS5 bm25, a title match weighing most); past RANKED matching pages, the
        newest RANKED are the ones ranked."""
        query = fts_query(words)
        if not query:
            return []
        # the best rows first, then a snippet of each of those alone (not of every match); a
        # query matching more than RANKED pages ranks the RANKED (or offset + limit) newest of them
        window = max(RANKED, offset + limit)
        edge = self._query("SELECT rowid FROM page_text WHERE page_text MATCH ? ORDER BY rowid DESC "
                           "LIMIT 1 OFFSET ?", (query, window - 1))
        best = self._query("SELECT rowid FROM page_text WHERE page_text MATCH ? AND rowid >= ? "
                           "ORDER BY rank LIMIT ? OFFSET ?",
                           (query, edge[0][0] if edge else 0, max(0, limit), max(0, offset)))
        hits = []
        for (rowid,) in best:   # the passage found here, not by FTS5's snippet(): one read by rowid each
            for r in self._query("SELECT p.snapshot_id, p.url, p.title, p.timestamp, t.text, t.title, t.url "
                                 "FROM page_text t JOIN pages p ON p.id = t.rowid WHERE t.rowid = ?", (rowid,)):
                hits.append(SearchHit(r[0], r[1], r[2], r[3], snippet((r[4], r[5], r[6]), words)))
        return hits


__all__ = ["CaptureRow", "Catalogue", "SearchHit", "SnapshotRow", "open_catalogue"]
