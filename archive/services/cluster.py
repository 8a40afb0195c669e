"""Scheduled captures spread over many machines: Celery workers sharing a Redis broker.

Each collection has its own queue, `archive.<identity>`; every worker of a collection captures
into the same folder (a shared mount). Nothing is lost and nothing done twice:

- Celery acknowledges a task only when it has finished (`task_acks_late`), gives a task back
  when the process running it dies (`task_reject_on_worker_lost`), takes one message at a time
  (`worker_prefetch_multiplier=1`), and the broker hands out again any message left
  unacknowledged for `visibility_timeout` seconds (a worker whose machine died);
- so a message may arrive twice: a lease per job (jobs.JobStore, lease.Lease) lets only one
  worker run it, renewed by a heartbeat while that worker lives; a second delivery while it
  runs is put back for later, one whose worker died is taken over, and the done marker makes
  any later delivery a no-op;
- the capture id follows from the job, so a worker taking over finds the partial folder the dead
  one left and resumes it (or discards it and starts again when it cannot be resumed); a
  snapshot published just before its worker died is found and not captured again.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from archive.errors import BrokerError, LeaseLost
from archive.formats.urls import host_of
from archive.snapshot.store import PARTIAL, Collection, snapshot_id_of, snapshot_name

from .jobs import Job, JobStore, SeedStatus
from .lease import Lease, RedisHostLimiter, connect
from .settings import ClusterSettings

logger = logging.getLogger(__name__)

TASK = "archive.capture"
MAX_ATTEMPTS = 5   # tries of a job that raises something unexpected before it is recorded failed


def queue_name(identity: str) -> str:
    """Return the queue a collection's jobs go to."""
    return f"archive.{identity}"


class FencedLimiter:
    """A HostLimiter that stops its capture (LeaseLost) as soon as the job's lease is lost."""

    def __init__(self, lease: Lease, inner: Any = None):
        self.lease = lease
        self.inner = inner

    def try_acquire(self, host: str) -> bool:
        if self.lease.lost.is_set():
            raise LeaseLost(self.lease.key)
        return True if self.inner is None else bool(self.inner.try_acquire(host))

    def release(self, host: str) -> None:
        if self.inner is not None:
            self.inner.release(host)


# -- one job, in a worker ---------------------------------------------------------------------
def run_job(job: Job, store: Collection, jobs: JobStore, settings: ClusterSettings, *,
            worker: str = "worker", limiter: Any = None, dedup: Any = None) -> str:
    """Capture `job` unless it is done or running elsewhere; return what happened.

    Returns "done" or "failed" (a result recorded), "already done", "busy" (another worker holds
    the lease: try again later) or "lost" (the lease lapsed under us: try again later, when
    whoever took it over has finished, or nobody did).
    """
    if jobs.done(job):
        return "already done"
    lease = Lease(jobs.client, jobs.lease_key(job), settings.lease_ttl, holder=worker)
    if not lease.acquire():
        return "busy"
    try:
        if jobs.done(job):   # finished between the check and the lease
            return "already done"
        if jobs.attempts(job) >= MAX_ATTEMPTS:   # its workers died under it (OOM, a crash) each time
            jobs.finished(job, _result(job, False, None, f"gave up after {MAX_ATTEMPTS} attempts "
                                                           "whose worker died"))
            return "failed"
        jobs.running(job, worker)
        result = _capture(job, store, FencedLimiter(lease, limiter), dedup)
        if lease.lost.is_set() or not lease.renew():
            return "lost"
        jobs.finished(job, result)
    finally:
        lease.release()
    if result["ok"] and dedup is not None and result["path"]:
        try:   # best effort: a snapshot missing from the shared index is only not referred to
            dedup.add(store.root / result["path"])
        except Exception as exc:
            logger.warning("job %s: snapshot not added to the dedup index: %s", job.key, exc)
    return "done" if result["ok"] else "failed"


def _capture(job: Job, store: Collection, limiter: FencedLimiter, dedup: Any) -> dict[str, Any]:
    """Capture the job, resuming what a dead worker left; return its result as JSON values."""
    published = find_published(store, job)
    if published is not None:
        logger.info("job %s: snapshot %s was published before its worker died", job.key, published.name)
        return _result(job, True, published, None)
    partial = store.root / PARTIAL / job.capture_id
    if partial.is_dir():
        logger.info("job %s: resuming the capture a lost worker left in %s", job.key, partial)
        result = _capture_once(job, store, limiter, dedup, resume=job.capture_id)
        if result["ok"] or limiter.lease.lost.is_set():
            return result
        logger.warning("job %s: could not resume (%s); starting again", job.key, result["error"])
        _discard(store, job)
    result = _capture_once(job, store, limiter, dedup, resume=None)
    if not result["ok"] and not limiter.lease.lost.is_set():
        _discard(store, job)   # a failed job leaves no partial behind; its retry starts afresh
    return result


def _capture_once(job: Job, store: Collection, limiter: FencedLimiter, dedup: Any,
                  resume: str | None) -> dict[str, Any]:
    from .runner import capture_due

    result = capture_due(job.to_due(), store.root, limiter=limiter, dedup_index=dedup,
                         capture_id=job.capture_id, resume=resume)
    path = _published(store, result.snapshot) if result.snapshot else None
    return {**result.to_json(), "retry": job.retry, "path": path.name if path is not None else None}


def _published(store: Collection, snapshot_id: str) -> Path | None:
    """Return the folder of a snapshot just published (its name ends in its short id)."""
    try:
        names = [n for n in os.listdir(store.root) if n.endswith(f"-{snapshot_id[:12]}")]
    except OSError:
        return None
    return next((store.root / n for n in names if store.holds(store.root / n)), None)


def _result(job: Job, ok: bool, path: Path | None, error: str | None) -> dict[str, Any]:
    from archive.models import rfc3339, utcnow

    return {"url": job.url, "due": rfc3339(job.due), "ok": ok,
            "snapshot": snapshot_id_of(path) if path is not None else None,
            "path": path.name if path is not None else None, "error": error,
            "finished": rfc3339(utcnow()), "retry": job.retry}


def _discard(store: Collection, job: Job) -> None:
    store.discard(store.root / PARTIAL / f"{job.capture_id}.spool")
    store.discard(store.root / PARTIAL / job.capture_id)


def find_published(store: Collection, job: Job) -> Path | None:
    """Return the snapshot the job's capture published already, or None.

    A worker can die between moving its snapshot into place and setting the done marker; its
    WARC files are named after the capture id, and the folder after the seed's host.
    """
    host_part = snapshot_name(job.due, host_of(job.url), "0" * 12).split("-", 1)[1][:-13]
    prefix = f"archive-{job.capture_id[:8]}-"
    try:
        names = [n for n in os.listdir(store.root) if f"-{host_part}-" in n and not n.startswith(".")]
    except OSError:
        return None
    for name in sorted(names):
        folder = store.root / name
        try:
            if any(p.name.startswith(prefix) for p in (folder / "archive").iterdir()) \
                    and store.holds(folder):
                return folder
        except OSError:
            continue
    return None


# -- the Celery side --------------------------------------------------------------------------
def celery_app(settings: ClusterSettings, collection: Path | None = None) -> Any:
    """Return a Celery app for the broker, with the capture task registered."""
    from celery import Celery

    app = Celery("archive", broker=settings.broker, set_as_current=False)
    restore = max(1, int(settings.visibility_timeout / 4))
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout,
                                  "unacked_restore_interval": restore, "unacked_restore_throttle": 1},
        task_serializer="json", accept_content=["json"], task_ignore_result=True,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_redirect_stdouts=False, worker_cancel_long_running_tasks_on_connection_loss=False,
        archive_settings=settings.to_json(),
        archive_collection=str(collection) if collection is not None else None)
    app.task(name=TASK, bind=True, max_retries=None)(_task)
    return app


def _task(self: Any, message: dict[str, Any]) -> str:
    """The capture task: run one job, or hand it on to the queue it belongs to."""
    try:
        job = Job.from_message(message)
    except (KeyError, ValueError, TypeError) as exc:
        logger.error("dropping a malformed job message (%s): %r", exc, message)
        return "malformed"
    ctx = _context(self.app)
    if job.collection != ctx.identity:
        return refuse(self.app, job, ctx.identity)
    try:
        outcome = run_job(job, ctx.store, ctx.jobs, ctx.settings, worker=ctx.name, limiter=ctx.limiter,
                          dedup=ctx.dedup)
    except Exception as exc:
        return _unexpected(job, ctx, exc)
    logger.info("job %s (%s): %s", job.key, job.url, outcome)
    if outcome in ("busy", "lost"):   # running elsewhere, or taken from us: look again later
        raise self.retry(countdown=max(1.0, ctx.settings.lease_ttl / 2))
    return outcome


def _unexpected(job: Job, ctx: _Context, exc: Exception) -> str:
    """Put a job that raised back on the queue (Redis away, a bug) until it has failed too often."""
    from celery.exceptions import Reject

    logger.error("job %s (%s): %s: %s", job.key, job.url, type(exc).__name__, exc, exc_info=True)
    try:
        attempts = ctx.jobs.attempts(job)
    except Exception:   # Redis itself is away: the message stays unacknowledged and comes back
        raise Reject(str(exc), requeue=True) from None
    if attempts < MAX_ATTEMPTS:
        raise Reject(str(exc), requeue=True)
    ctx.jobs.finished(job, _result(job, False, None, f"internal error: {type(exc).__name__}: {exc}"))
    return "failed"


def refuse(app: Any, job: Job, own: str) -> str:
    """Hand a job of another collection back to that collection's own queue; return "refused"."""
    logger.warning("job %s belongs to collection %s, not this worker's %s: sent to its own queue",
                   job.key, job.collection, own)
    app.send_task(TASK, args=[job.to_message()], queue=queue_name(job.collection))
    return "refused"


@dataclass
class _Context:
    pid: int
    name: str
    store: Collection
    identity: str
    settings: ClusterSettings
    jobs: JobStore
    limiter: RedisHostLimiter
    dedup: Any


_contexts: dict[int, _Context] = {}


def _context(app: Any) -> _Context:
    """Return this process's Redis client, limiter and dedup index (made after a fork)."""
    ctx = _contexts.get(os.getpid())
    if ctx is None:
        settings = ClusterSettings(**app.conf.archive_settings)
        store = Collection(app.conf.archive_collection)
        identity = store.identity()
        client = connect(settings.broker)
        name = f"{app.conf.get('archive_worker_name') or socket.gethostname()}/{os.getpid()}"
        ctx = _Context(os.getpid(), name, store, identity, settings, JobStore(client, identity),
                       RedisHostLimiter(client, settings.host_slots, settings.lease_ttl),
                       _dedup_index(client, store, identity))
        _contexts[os.getpid()] = ctx
    return ctx


def _dedup_index(client: Any, store: Collection, identity: str) -> Any:
    from .shared_index import RedisDedupIndex

    index = RedisDedupIndex(client, store, identity)
    index.seed()
    return index


def enqueue(jobs: list[Job], settings: ClusterSettings) -> list[Job]:
    """Send each job not finished already to its collection's queue; return those sent."""
    client = connect(settings.broker)
    app = celery_app(settings)
    sent = []
    try:
        for job in jobs:
            if JobStore(client, job.collection).queued(job):
                app.send_task(TASK, args=[job.to_message()], queue=queue_name(job.collection))
                sent.append(job)
    except Exception as exc:   # kombu's and redis's connection errors have no common base
        raise BrokerError(settings.broker, f"{type(exc).__name__}: {exc}") from None
    finally:
        app.close()
    return sent


def status(collection: Path | str | None, broker: str) -> list[SeedStatus]:
    """Return what the broker knows of the collection's jobs, per seed."""
    store = existing(collection)
    client = connect(broker)
    return JobStore(client, store.identity()).status()


def run_worker(collection: Path | str | None, settings: ClusterSettings, *, concurrency: int = 2,
               name: str | None = None, loglevel: str = "WARNING") -> int:
    """Run a Celery worker capturing the collection's jobs until it is stopped; return its exit code."""
    store = existing(collection)
    connect(settings.broker)   # a clear error now, not Celery's retries
    identity = store.identity()
    app = celery_app(settings, store.root.resolve())
    app.conf.archive_worker_name = name
    worker = app.Worker(queues=[queue_name(identity)], concurrency=concurrency, pool="prefork",
                        hostname=f"{name or 'archive'}@{socket.gethostname()}", loglevel=loglevel,
                        quiet=True, without_gossip=True, without_mingle=True, without_heartbeat=True,
                        optimization="fair")
    worker.start()
    return int(worker.exitcode or 0)


def existing(collection: Path | str | None) -> Collection:
    """Return the collection, which must exist: a worker or a run on a mistyped path would
    otherwise make an empty one and wait on a queue nobody feeds. Raise UsageError."""
    store = Collection(collection)
    if not store.root.is_dir():
        raise UsageError(f"no collection at {store.root}")
    return store
