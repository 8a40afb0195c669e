"""Running what the schedule says is due: the lock, one capture or audit, and a loop for ever.

`archive schedule run` is the command for crontab or a systemd timer: it takes the lock,
runs what is due, once, and exits; `--forever` sleeps until the next due time.
"""
from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError, Interrupted, ScheduleBusy, StorageError, UsageError
from archive.models import CaptureOptions, rfc3339
from archive.snapshot.store import PARTIAL, STATE, Collection

from .schedule import AUDIT, LOCK_FILE, Due, Result, Schedule


@contextmanager
def locked(collection: Path | str | None = None) -> Iterator[str | None]:
    """Hold the collection's schedule lock; yield a note when a dead run's lock was taken over.

    The lock is an flock, so the kernel frees it when its holder dies however it dies; the
    file keeps the holder's pid and host for the message. Raises ScheduleBusy.
    """
    path = Collection(collection).root / STATE / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageError(path, exc.strerror or str(exc)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScheduleBusy(path, os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown") from None
        before = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        note = f"took over the lock of a run that died ({before})" if before else None
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {rfc3339(datetime.now(timezone.utc))}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        try:
            yield note
        finally:
            os.ftruncate(fd, 0)   # an empty file: nobody holds it, nobody died holding it
    finally:
        os.close(fd)


def service_options(options: CaptureOptions, store: Collection) -> CaptureOptions:
    """Return the options a service (`schedule run`, `archive worker`) captures with.

    Their URLs come from other people (a shared schedule, a cluster's jobs), so private,
    loopback and link-local addresses are refused unless the collection's `archive.toml`
    says `block_private = false`. Raises UsageError for an unreadable archive.toml.
    """
    if store.settings().get("block_private") is False:
        return options
    return replace(options, block_private=True)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def capture_due(item: Due, collection: Path | str | None = None, *, limiter: Any = None,
                dedup_index: Any = None, capture_id: str | None = None, resume: str | None = None,
                clock: Callable[[], datetime] | None = None) -> Result:
    """Run one due capture; return its Result (a failure is a Result, not an exception).

    A partial capture left by an earlier try of the same (seed, due time) is resumed. Private
    addresses are refused unless the collection opts out (`service_options`).
    """
    from archive.write.capture import capture

    store = Collection(collection)
    capture_id = capture_id or item.capture_id
    try:
        options = service_options(item.options, store)
    except ArchiveError as exc:
        return Result(item.url, item.due, False, None, " ".join(str(exc).split()), (clock or _utcnow)())
    if resume is None and (store.root / PARTIAL / capture_id).is_dir():
        resume = capture_id
    now = clock or _utcnow
    kwargs: dict[str, Any] = {"limiter": limiter, "dedup_index": dedup_index}
    try:
        snap = None
        if resume is not None:
            try:
                snap = capture([], store.root, options, resume=resume, **kwargs)
            except UsageError:
                if resume != capture_id:
                    raise
                # killed before its first record: nothing to resume from, so start afresh
                store.discard(store.root / PARTIAL / capture_id)
        if snap is None:
            snap = capture(item.url, store.root, options, capture_id=capture_id, **kwargs)
    except Interrupted:
        raise   # Ctrl-C stops the whole run, not just this capture
    except ArchiveError as exc:
        return Result(item.url, item.due, False, None, " ".join(str(exc).split()), now())
    except Exception as exc:   # a schedule entry no capture can run with: this entry fails, not the run
        return Result(item.url, item.due, False, None, f"internal error: {type(exc).__name__}: {exc}", now())
    return Result(item.url, item.due, True, snap.id, None, now())


def run_due(collection: Path | str | None = None, now: datetime | None = None,
            report: Callable[[str], None] | None = None) -> list[Result]:
    """Run every capture (and audit) that is due, once, under the collection's lock.

    Raises ScheduleBusy when another run holds the lock.
    """
    schedule = Schedule(collection)
    schedule.store.require()   # schedule add creates one
    results = []
    # a given `now` stands still for the whole run (tests; a replayed schedule)
    clock = (lambda: now) if now is not None else (lambda: datetime.now(timezone.utc))
    with locked(collection) as note:
        if note and report:
            report(note)
        start = clock()
        schedule.interrupted(start)
        for item in schedule.due(start):
            schedule.claim(item, start)
            if report:
                report(f"running {item.url} (due {rfc3339(item.due)})")
            try:
                result = run_audit(item, collection, clock) if item.url == AUDIT \
                    else capture_due(item, collection, clock=clock)
            except Interrupted:
                schedule.record(Result(item.url, item.due, False, None, "interrupted", clock()))
                raise
            schedule.record(result)
            results.append(result)
    return results


def run_audit(item: Due, collection: Path | str | None, clock: Callable[[], datetime]) -> Result:
    """Run a scheduled audit of the collection; return its Result."""
    from archive.read.audit import audit

    summary = audit(collection)
    error = None if summary.ok else f"{summary.failed} snapshot(s) failed verification"
    return Result(AUDIT, item.due, summary.ok, None, error, clock())


def run_forever(collection: Path | str | None = None, report: Callable[[str], None] | None = None,
                max_sleep: float = 60.0, stop: Callable[[], bool] = lambda: False) -> None:
    """Run due captures whenever they fall due, until interrupted (or `stop()`).

    The lock is held only while running, so a cron-started run may share the work.
    """
    schedule = Schedule(collection)
    schedule.store.require()
    while not stop():
        try:
            run_due(collection, report=report)
        except ScheduleBusy as exc:
            if report:
                report(str(exc))
        now = datetime.now(timezone.utc)
        wake = schedule.next_wake(now)
        wait = max_sleep if wake is None else (wake - now).total_seconds()
        time.sleep(min(max(wait, 1.0), max_sleep))   # wakes at least each minute: edits are seen
