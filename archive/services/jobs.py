"""Scheduled captures as cluster jobs, and what Redis remembers of them.

A job is one capture of one seed for one due time, so its key, and the capture id its partial
folder is named by, follow from (collection, seed, due): a message delivered twice names the
same job. Keys, per collection identity `I` (job key `K`):

    archive:I:job:K       hash: url, due, state (queued/running/done/failed), worker, attempts,
                          error, snapshot, times                     expires RETAIN after its last change
    archive:I:jobs        sorted set of job keys by due time        entries older than RETAIN pruned
    archive:I:done:K      done marker: the snapshot id, or "failed"  expires RETAIN after it is set
    archive:I:lease:K     the running worker's token (lease.Lease)  TTL lease_ttl, renewed by heartbeat
    archive:I:results     list of finished results for the schedule state file, until folded in
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from archive.models import CaptureOptions, rfc3339
from archive.write.resume import options_from

from .schedule import Due

RETAIN = 7 * 24 * 3600   # seconds a finished job's record and done marker are kept
STATES = ("queued", "running", "done", "failed")


@dataclass(frozen=True)
class Job:
    """One capture of `url` serving the due time `due` (its `retry`-th retry), for a collection.

    `collection` is the collection's identity (store.Collection.identity).
    """

    collection: str
    url: str
    due: datetime
    options: CaptureOptions = field(default_factory=CaptureOptions)
    retry: int = 0

    @classmethod
    def of(cls, identity: str, item: Due) -> Job:
        return cls(identity, item.url, item.due, item.options, item.retry)

    def to_due(self) -> Due:
        return Due(self.url, self.due, self.options, self.retry)

    @property
    def key(self) -> str:
        """Return the job's key: a digest of (collection, seed, due time, retry)."""
        text = f"{self.collection}\n{self.url}\n{self.due.astimezone(timezone.utc).isoformat()}\n{self.retry}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    @property
    def capture_id(self) -> str:
        """Return the id of the job's capture (its folder under .partial while under way).

        The embedded `schedule run` uses the same id, so either can resume what the other left.
        """
        return self.to_due().capture_id

    def to_message(self) -> dict[str, Any]:
        """Return the job as plain JSON values for a task message."""
        return {"collection": self.collection, "url": self.url, "due": self.due.isoformat(),
                "options": self.options.to_json(), "headers": [list(h) for h in self.options.headers],
                "cookies": self.options.cookies, "proxy": self.options.proxy, "retry": self.retry}

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Job:
        """Return the job a task message carries; raise ValueError or KeyError when malformed."""
        base = CaptureOptions(headers=tuple((str(n), str(v)) for n, v in message.get("headers") or ()),
                              cookies=message.get("cookies"), proxy=message.get("proxy"))
        due = datetime.fromisoformat(message["due"])
        if due.tzinfo is None:
            raise ValueError(f"due time without a zone: {message['due']!r}")
        return cls(str(message["collection"]), str(message["url"]), due,
                   options_from(dict(message.get("options") or {}), base), int(message.get("retry") or 0))


@dataclass(frozen=True)
class SeedStatus:
    """What the cluster knows of one seed's jobs: counts by state and the failures' reasons."""

    url: str
    counts: dict[str, int]
    failures: tuple[tuple[str, str], ...]   # (due time, reason), oldest first
    stalled: int = 0                        # running, but no live lease: waiting for takeover

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, **self.counts, "stalled": self.stalled,
                "failures": [{"due": d, "reason": r} for d, r in self.failures]}


class JobStore:
    """The Redis records of one collection's jobs (see the module docstring for the keys)."""

    def __init__(self, client: Any, identity: str):
        self.client = client
        self.prefix = f"archive:{identity}:"

    def lease_key(self, job: Job) -> str:
        """Return the key of the job's lease: one per (seed, due time), retries included, as
        they share one capture id and so one partial folder."""
        return self._lease(job.url, rfc3339(job.due))

    def _lease(self, url: str, due: str) -> str:
        return f"{self.prefix}lease:{hashlib.sha256(f'{url} {due}'.encode()).hexdigest()[:24]}"

    def queued(self, job: Job) -> bool:
        """Record `job` as queued; return False when it has finished already (do not send it)."""
        if self.done(job):
            return False
        now = time.time()
        pipe = self.client.pipeline()
        pipe.hset(self._job(job), mapping={"url": job.url, "due": rfc3339(job.due), "state": "queued",
                                           "queued": rfc3339(_utc(now))})
        pipe.expire(self._job(job), RETAIN)
        pipe.zadd(self.prefix + "jobs", {job.key: job.due.timestamp()})
        pipe.zremrangebyscore(self.prefix + "jobs", "-inf", now - RETAIN)
        pipe.execute()
        return True

    def running(self, job: Job, worker: str) -> None:
        pipe = self.client.pipeline()
        pipe.hset(self._job(job), mapping={"url": job.url, "due": rfc3339(job.due), "state": "running",
                                           "worker": worker, "started": rfc3339(_utc(time.time()))})
        pipe.hincrby(self._job(job), "attempts", 1)
        pipe.expire(self._job(job), RETAIN)
        pipe.zadd(self.prefix + "jobs", {job.key: job.due.timestamp()})
        pipe.execute()

    def finished(self, job: Job, result: dict[str, Any]) -> None:
        """Set the done marker and the job's final state; queue `result` for the schedule state."""
        ok = bool(result.get("ok"))
        pipe = self.client.pipeline()
        pipe.set(self._done(job), result.get("snapshot") or ("done" if ok else "failed"), ex=RETAIN)
        pipe.hset(self._job(job), mapping={"state": "done" if ok else "failed",
                                           "snapshot": result.get("snapshot") or "",
                                           "error": result.get("error") or "",
                                           "finished": rfc3339(_utc(time.time()))})
        pipe.expire(self._job(job), RETAIN)
        pipe.rpush(self.prefix + "results", json.dumps(result))
        pipe.execute()

    def attempts(self, job: Job) -> int:
        return int(self.client.hget(self._job(job), "attempts") or 0)

    def done(self, job: Job) -> bool:
        return bool(self.client.exists(self._done(job)))

    def count_done(self, jobs: list[Job]) -> int:
        """Return how many of `jobs` have finished (done or failed)."""
        return int(self.client.exists(*(self._done(j) for j in jobs))) if jobs else 0

    def results(self) -> list[dict[str, Any]]:
        """Return the finished results not yet folded into the schedule state, oldest first."""
        return [json.loads(item) for item in self.client.lrange(self.prefix + "results", 0, -1)]

    def drop_results(self, count: int) -> None:
        """Forget the oldest `count` results, once folded in (newer ones are kept)."""
        if count:
            self.client.ltrim(self.prefix + "results", count, -1)

    def status(self) -> list[SeedStatus]:
        """Return each seed's jobs by state, seeds in the order they were first due."""
        keys = [k.decode() for k in self.client.zrange(self.prefix + "jobs", 0, -1)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(f"{self.prefix}job:{key}")
        jobs = [{k.decode(): v.decode() for k, v in raw.items()} for raw in pipe.execute()]
        for job in jobs:
            pipe.exists(self._lease(job.get("url", ""), job.get("due", "")))
        replies = [x for pair in zip(jobs, pipe.execute()) for x in pair]
        seeds: dict[str, dict[str, Any]] = {}
        for job, leased in zip(replies[::2], replies[1::2]):
            if "url" not in job:
                continue   # expired
            entry = seeds.setdefault(job["url"], {"counts": dict.fromkeys(STATES, 0), "failures": [],
                                                  "stalled": 0})
            state = job.get("state", "queued")
            entry["counts"][state] = entry["counts"].get(state, 0) + 1
            if state == "failed":
                entry["failures"].append((job.get("due", ""), job.get("error", "")))
            if state == "running" and not leased:
                entry["stalled"] += 1
        return [SeedStatus(url, e["counts"], tuple(e["failures"]), e["stalled"]) for url, e in seeds.items()]

    def _job(self, job: Job) -> str:
        return f"{self.prefix}job:{job.key}"

    def _done(self, job: Job) -> str:
        return f"{self.prefix}done:{job.key}"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def jobs_for(identity: str, urls: Iterable[str], due: datetime,
             options: CaptureOptions | None = None) -> list[Job]:
    """Return one job per URL, all serving `due`."""
    return [Job(identity, url, due, options or CaptureOptions()) for url in urls]
