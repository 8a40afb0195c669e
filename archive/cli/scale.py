"""`archive worker` and the broker side of `archive schedule`: captures spread over machines."""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from archive.errors import UsageError

from .common import command, subcommands, write_json


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `worker`, and `schedule status` with `--broker`, to the command line."""
    from archive.services.settings import ClusterSettings   # not the cluster's code: every command builds this

    d = ClusterSettings(broker="")
    work = command(sub, common, "worker", _cmd_worker, "capture scheduled jobs from a Redis broker",
                   "Run a Celery worker that captures the collection's scheduled jobs, sent by "
                   "`archive schedule run --broker`. Every worker of a collection must reach the same "
                   "collection folder (a shared mount).", formats=None)
    _broker(work)
    work.add_argument("--concurrency", type=int, default=2, metavar="K",
                      help="captures at once in this worker (default: %(default)s)")
    work.add_argument("--name", help="this worker's name in `schedule status` (default: the host name)")
    work.add_argument("--host-slots", type=int, default=d.host_slots, metavar="N",
                      help="requests at once to one host across every worker of the broker; give all "
                           "workers the same N (default: %(default)s)")
    work.add_argument("--visibility-timeout", type=float, default=d.visibility_timeout, metavar="SECONDS",
                      help="a job whose worker stopped answering is handed out again after this long "
                           "(default: %(default)s)")
    work.add_argument("--lease-ttl", type=float, default=d.lease_ttl, metavar="SECONDS",
                      help="a dead worker's running job is taken over, and the host slots it held come "
                           "back, after this long (default: %(default)s)")
    group = subcommands(sub.choices["schedule"])   # upkeep.py's schedule command
    run = group.choices["run"]
    _broker(run, "send what is due to the workers sharing this Redis broker instead of capturing here")
    upkeep_run = run.get_default("run")
    run.set_defaults(run=lambda args: _cmd_schedule_run(args) if args.broker is not None else upkeep_run(args))
    status = command(group, common, "status", _cmd_status, "queued, running, done and failed jobs per seed",
                     "Show what the broker knows of the collection's jobs, per seed, with each failure's reason.")
    _broker(status)


def _broker(parser: argparse.ArgumentParser, text: str = "the Redis broker the workers share") -> None:
    parser.add_argument("--broker", metavar="redis://HOST:PORT/N", default=None, help=text)


def broker_url(value: str | None) -> str:
    """Return the broker URL given; raise UsageError."""
    url = value
    if not url:
        raise UsageError("no broker: give --broker redis://HOST:PORT/N")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"--broker takes a redis:// URL, not {url!r}")
    return url


def _cmd_worker(args: argparse.Namespace) -> int:
    from archive.services.cluster import ClusterSettings, run_worker

    if args.concurrency < 1 or args.host_slots < 1:
        raise UsageError("--concurrency and --host-slots must be at least 1")
    for name in ("visibility_timeout", "lease_ttl"):
        value = getattr(args, name)
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds, not {value}")
    settings = ClusterSettings(broker_url(args.broker), visibility_timeout=args.visibility_timeout,
                               lease_ttl=args.lease_ttl, host_slots=args.host_slots)
    return run_worker(args.collection, settings, concurrency=args.concurrency, name=args.name,
                      loglevel="INFO" if args.verbose else "WARNING")


def _cmd_status(args: argparse.Namespace) -> int:
    from archive.services.cluster import status

    seeds = status(args.collection, broker_url(args.broker))
    if args.format == "json":
        write_json([s.to_json() for s in seeds])
        return 0
    if not seeds:
        sys.stdout.write("no jobs known to the broker for this collection\n")
    for s in seeds:
        c = s.counts
        stalled = f"  ({s.stalled} stalled: worker lost, waiting for takeover)" if s.stalled else ""
        sys.stdout.write(f"{s.url}  queued {c['queued']}  running {c['running']}  done {c['done']}  "
                         f"failed {c['failed']}{stalled}\n")
        for due, reason in s.failures:
            sys.stdout.write(f"  failed (due {due}): {reason}\n")
    return 0


def _cmd_schedule_run(args: argparse.Namespace) -> int:
    import time
    from datetime import datetime, timezone

    from archive.errors import ScheduleBusy
    from archive.models import rfc3339
    from archive.services.cluster import ClusterSettings
    from archive.services.dispatch import dispatch_due
    from archive.services.schedule import Schedule

    settings = ClusterSettings(broker_url(args.broker))
    while True:
        try:
            done = dispatch_due(args.collection, settings)
        except ScheduleBusy as exc:   # an overlapping cron start: the run under way does the work
            sys.stderr.write(f"archive: {exc}\n")
            done = None
        if done is not None:
            _report_dispatch(done, args.format)
        if not args.forever:
            return 0 if done is None or all(r.ok for r in done.audits) else 1
        wake = Schedule(args.collection).next_wake(datetime.now(timezone.utc))
        pause = 60.0 if wake is None else (wake - datetime.now(timezone.utc)).total_seconds()
        sys.stderr.write(f"archive: next due {rfc3339(wake) if wake else 'never'}\n")
        time.sleep(min(60.0, max(1.0, pause)))   # results are folded in at least once a minute


def _report_dispatch(done: Any, fmt: str) -> None:
    if fmt == "json":
        write_json({"sent": [j.url for j in done.sent], "skipped": [j.url for j in done.skipped],
                    "folded": [r.to_json() for r in done.folded], "audits": [r.to_json() for r in done.audits]})
        return
    for r in done.folded:
        sys.stdout.write(f"{'ok' if r.ok else 'FAILED'}  {r.url}  "
                         + (str(r.snapshot or "")[:12] if r.ok else str(r.error)) + "\n")
    for job in done.sent:
        sys.stdout.write(f"queued  {job.url}  (due {job.due.isoformat()})\n")
    for job in done.skipped:
        sys.stdout.write(f"done already  {job.url}  (due {job.due.isoformat()})\n")
    for r in done.audits:
        sys.stdout.write(f"{'ok' if r.ok else 'FAILED'}  audit  {r.error or ''}\n")
