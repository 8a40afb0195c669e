"""`archive worker` and the broker side of `archive schedule`: captures spread over machines."""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from .errors import UsageError

DEFAULT_BROKER_ENV = "ARCHIVE_BROKER"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `worker`, and `schedule status` with `--broker`, to the command line."""
    from .cluster import ClusterSettings

    d = ClusterSettings(broker="")
    work = sub.add_parser("worker", parents=[common], help="capture scheduled jobs from a Redis broker",
                          description="Run a Celery worker that captures the collection's scheduled jobs, "
                                      "sent by `archive schedule run --broker`. Every worker of a "
                                      "collection must reach the same collection folder (a shared mount).")
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
    work.set_defaults(run=_cmd_worker)
    if "schedule" not in sub.choices:
        sched = sub.add_parser("schedule", help="scheduled recaptures")
        group = sched.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    else:   # pragma: no cover - wired once schedule's own command line is merged
        group = _subparsers(sub.choices["schedule"])
    status = group.add_parser("status", parents=[common], help="queued, running, done and failed jobs per seed",
                              description="Show what the broker knows of the collection's jobs, per seed, "
                                          "with each failure's reason.")
    status.add_argument("--format", choices=("text", "json"), default="text")
    _broker(status)
    status.set_defaults(run=_cmd_status)


def _subparsers(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the schedule command has no actions")


def _broker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", metavar="redis://HOST:PORT/N", default=None,
                        help=f"the Redis broker the workers share (default: ${DEFAULT_BROKER_ENV})")


def broker_url(value: str | None) -> str:
    """Return the broker URL given or from the environment; raise UsageError."""
    import os

    url = value or os.environ.get(DEFAULT_BROKER_ENV)
    if not url:
        raise UsageError(f"no broker: give --broker redis://HOST:PORT/N (or set ${DEFAULT_BROKER_ENV})")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(f"--broker takes a redis:// URL, not {url!r}")
    return url


def _cmd_worker(args: argparse.Namespace) -> int:
    from .cluster import ClusterSettings, run_worker

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
    from .cluster import status

    seeds = status(args.collection, broker_url(args.broker))
    if args.format == "json":
        sys.stdout.write(json.dumps([s.to_json() for s in seeds], indent=2) + "\n")
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
