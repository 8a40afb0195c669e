"""`schedule run --broker`: hand every due capture to the workers instead of running it here.

Under the collection's schedule lock, kept in Redis (`archive:I:schedule-lock`, a lease.Lease
renewed while held, so a crashed holder's lock lapses by itself), one run:

1. folds the results workers finished since the last run into the schedule state file (the
   file has one writer: whoever holds the lock), so `schedule list`, retries and backoff work
   as in the embedded mode;
2. sends every due capture to the collection's queue, then marks it handed out (`claim`). A
   crash in between only sends the same (seed, due time) again, which the job's done marker
   and lease make harmless. A due audit runs here, as in the embedded mode.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from archive.errors import ScheduleBusy

from .cluster import ClusterSettings, enqueue, existing
from .jobs import Job, JobStore
from .lease import Lease, connect
from .runner import locked, run_audit
from .schedule import AUDIT, Result, Schedule


@dataclass(frozen=True)
class Dispatched:
    """What one `schedule run --broker` did."""

    folded: tuple[Result, ...]    # results of earlier jobs now in the state file
    sent: tuple[Job, ...]         # jobs sent to the workers
    skipped: tuple[Job, ...]      # due, but finished already (sent by a run that crashed)
    audits: tuple[Result, ...]    # audits run here


def dispatch_due(collection: Path | str | None, settings: ClusterSettings,
                 now: datetime | None = None) -> Dispatched:
    """Fold finished results in and send what is due to the workers; raise ScheduleBusy, BrokerError."""
    store = existing(collection)
    client = connect(settings.broker)
    identity = store.identity()
    key = f"archive:{identity}:schedule-lock"
    lock = Lease(client, key, settings.lease_ttl, holder=f"pid {os.getpid()} on {socket.gethostname()}")
    if not lock.acquire():
        raise ScheduleBusy(Path(f"{settings.broker} {key}"), (lock.holder() or "unknown").split("/")[0])
    try:
        # the file lock too: a plain `schedule run` on this machine must not write the state meanwhile
        with locked(store.root):
            schedule = Schedule(store.root)
            folded = _fold(schedule, JobStore(client, identity))
            now = now or datetime.now(timezone.utc)
            schedule.pin(now)   # a run that dies after sending sends the same (seed, due time) again
            items = schedule.due(now)
            audits = []
            for item in (i for i in items if i.url == AUDIT):
                schedule.claim(item, now)
                audits.append(run_audit(item, store.root, lambda: datetime.now(timezone.utc)))
                schedule.record(audits[-1])
            captures = [item for item in items if item.url != AUDIT]
            jobs = [Job.of(identity, item) for item in captures]
            sent = enqueue(jobs, settings)
            schedule.claim_all(captures, now, dispatched=True)
    finally:
        lock.release()
    return Dispatched(tuple(folded), tuple(sent), tuple(j for j in jobs if j not in sent), tuple(audits))


def _fold(schedule: Schedule, jobs: JobStore) -> list[Result]:
    pending = jobs.results()
    folded = [Result(raw["url"], _time(raw["due"]), bool(raw["ok"]), raw.get("snapshot"), raw.get("error"),
                     _time(raw["finished"])) for raw in pending]
    schedule.record_all(folded)   # one write, then the results are dropped
    jobs.drop_results(len(pending))
    return folded


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

