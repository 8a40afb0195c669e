"""Captures spread over workers sharing a Redis broker: real redis-server, real worker processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cluster_site import ClusterSite
from redis_server import RedisServer
from waiting import Gate, wait_for

from archive.cli import main
from archive.errors import LeaseLost
from archive.models import CaptureOptions
from archive.read.verify import verify
from archive.services.cluster import (
    ClusterSettings,
    FencedLimiter,
    celery_app,
    enqueue,
    find_published,
    queue_name,
    refuse,
    run_job,
)
from archive.services.jobs import Job, JobStore
from archive.services.lease import Lease, RedisHostLimiter, connect
from archive.snapshot.store import PARTIAL, Collection

DUE = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
FAST = ["--visibility-timeout", "3", "--lease-ttl", "2"]


@pytest.fixture(autouse=True)
def loopback_allowed(tmp_path: Path) -> None:
    """The collections these tests use (tmp_path/c, tmp_path/coll) capture loopback test
    servers: they opt out of the services' block_private default in archive.toml."""
    for name in ("c", "coll"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "archive.toml").write_text("block_private = false\n")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


class Workers:
    """`archive worker` processes, each in a process group of its own (killed whole)."""

    def __init__(self, broker: str, logs: Path):
        self.broker, self.logs = broker, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, collection: Path, *extra: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "archive", "worker", "--broker", self.broker, "-C", str(collection),
             "--name", name, "-v", *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs.pop(name).wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(redis_server.url, tmp_path)
    yield w
    w.stop()


def finished(store: JobStore, jobs: list[Job]) -> Callable[[], bool]:
    return lambda: all(store.done(j) for j in jobs)


# -- the parts, against a real redis-server --------------------------------------------------
def counting(obj: object, method: str) -> list[float]:
    """Wrap obj.method (before a heartbeat binds it) to note the time of each call."""
    calls: list[float] = []
    real = getattr(obj, method)

    def counted():  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        return real()
    setattr(obj, method, counted)
    return calls


def test_lease_is_taken_once_renewed_while_held_and_freed_when_its_holder_dies(redis_server):
    client = connect(redis_server.url)
    first, second = Lease(client, "t:lease", 1.5, "a"), Lease(client, "t:lease", 1.5, "b")
    renewals = counting(first, "renew")
    start = time.monotonic()
    assert first.acquire() and not second.acquire()
    # past the TTL, and renewed on the way: only the heartbeat keeps it
    wait_for(lambda: len(renewals) >= 4 and renewals[-1] - start > 1.5, 30, "four renewals past the TTL")
    assert first.holder() == first.token and not second.acquire()
    first._beat.stop()   # type: ignore[union-attr]  # the holder dies: no more heartbeats
    wait_for(lambda: first.holder() is None, 10, "the lease to lapse")
    assert second.acquire()
    assert not first.renew() and first.lost.is_set()
    first.release()   # not ours any more: must not free the new holder's claim
    assert second.holder() == second.token
    second.release()
    assert second.holder() is None


def test_host_limiter_shares_slots_and_a_dead_holders_slots_come_back(redis_server):
    client = connect(redis_server.url)
    one, two = RedisHostLimiter(client, 2, ttl=1.5), RedisHostLimiter(client, 2, ttl=1.5)
    beats = counting(one, "_renew"), counting(two, "_renew")
    start = time.monotonic()
    assert one.try_acquire("h:1") and two.try_acquire("h:1")
    assert not one.try_acquire("h:1") and not two.try_acquire("h:1")
    assert two.try_acquire("h:2")   # hosts are counted apart
    wait_for(lambda: all(len(b) >= 4 and b[-1] - start > 1.5 for b in beats), 30, "renewals past the TTL")
    assert one.in_use("h:1") == 2   # renewed while held
    one.release("h:1")
    assert one.in_use("h:1") == 1 and two.try_acquire("h:1")
    two.close()   # "dies": its slots are no longer renewed
    wait_for(lambda: one.in_use("h:1") == 0, 10, "dead slots to expire")
    one.close()


def test_a_capture_stops_when_its_lease_is_lost(redis_server):
    client = connect(redis_server.url)
    lease = Lease(client, "t:fence", 5, "a")
    assert lease.acquire()
    fenced = FencedLimiter(lease)
    assert fenced.try_acquire("h")
    client.set("t:fence", "someone else")
    assert not lease.renew()
    with pytest.raises(LeaseLost):
        fenced.try_acquire("h")
    lease.release()


def test_job_identity_follows_seed_and_due_and_survives_the_message():
    options = CaptureOptions(depth=0, headers=(("Authorization", "x"),), exclude=("a",),
                             proxy="http://alice:s3cret@127.0.0.1:9")
    job = Job("c0ffee", "http://127.0.0.1:1/a", DUE, options)
    again = Job.from_message(json.loads(json.dumps(job.to_message())))
    assert again == job and again.key == job.key   # the proxy's password too: recorded options lack it
    assert job.to_message()["options"]["proxy"] == "http://alice@127.0.0.1:9"
    assert job.capture_id == job.to_due().capture_id   # the embedded run resumes what a worker left
    assert Job("c0ffee", "http://127.0.0.1:1/a", DUE.replace(hour=13)).key != job.key
    assert Job("other", "http://127.0.0.1:1/a", DUE).key != job.key
    retried = Job("c0ffee", "http://127.0.0.1:1/a", DUE, options, retry=1)
    assert retried.key != job.key and retried.capture_id == job.capture_id


def test_a_worker_of_another_collection_hands_the_job_on_not_away(redis_server, tmp_path):
    app = celery_app(ClusterSettings(redis_server.url))
    job = Job("collection-b", "http://127.0.0.1:1/", DUE)
    client = connect(redis_server.url)
    before = client.llen(queue_name("collection-b"))
    assert refuse(app, job, "collection-a") == "refused"
    assert client.llen(queue_name("collection-b")) == before + 1
    body = json.loads(client.lindex(queue_name("collection-b"), 0))
    app.close()
    assert body["headers"]["task"] == "archive.capture"


def test_a_job_already_done_or_running_elsewhere_is_not_captured(redis_server, tmp_path):
    client = connect(redis_server.url)
    store, settings = Collection(tmp_path / "c"), ClusterSettings(redis_server.url)
    jobs = JobStore(client, store.identity())
    job = Job(store.identity(), "http://127.0.0.1:9/", DUE, CaptureOptions(depth=0))
    other = Lease(client, jobs.lease_key(job), 5, "elsewhere")
    assert other.acquire()
    assert run_job(job, store, jobs, settings) == "busy"
    other.release()
    jobs.finished(job, {"url": job.url, "ok": True, "snapshot": "x"})
    assert run_job(job, store, jobs, settings) == "already done"
    assert not jobs.queued(job)   # and it is not sent again


def test_a_snapshot_published_before_its_worker_died_is_found(redis_server, tmp_path):
    from archive.write.capture import capture

    store = Collection(tmp_path / "c")
    with ClusterSite() as site:
        job = Job(store.identity(), site.url + "/page/1", DUE, CaptureOptions(depth=0))
        assert find_published(store, job) is None
        snap = capture([job.url], store.root, job.options, capture_id=job.capture_id)
        other = capture([site.url + "/page/2"], store.root, job.options)
    assert find_published(store, job) == snap.path != other.path


def test_worker_and_status_say_clearly_when_the_broker_is_away(capsys, tmp_path):
    from ports import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["worker", "--broker", url, "-C", str(tmp_path)]) == 2
    assert main(["schedule", "status", "--broker", url, "-C", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith(f"archive: error: cannot reach broker {url}: ") for e in err)
    assert main(["worker", "--broker", "http://x", "-C", str(tmp_path)]) == 2


# -- whole workers ------------------------------------------------------------------------------
def test_fifty_scheduled_seeds_over_three_workers_are_each_captured_once_deduplicated_within_the_host_limit(
        redis_server, workers, tmp_path, capsys):
    from archive.services.schedule import Schedule

    coll = tmp_path / "coll"
    store = Collection(coll)
    client = connect(redis_server.url)
    with ClusterSite(latency=0.01, overlap=True) as site:
        urls = [f"{site.url}/page/{i}" for i in range(50)]
        schedule = Schedule(coll)
        for url in urls:
            schedule.add(url, "1d", {"depth": 0})
        for name in ("w1", "w2", "w3"):
            workers.start(name, coll, "--host-slots", "2", "--concurrency", "2", *FAST)
        for name in ("w1", "w2", "w3"):   # all listening before any job is sent, so all share the work
            wait_for(lambda: f"{name}@" in workers.log(name) and " ready." in workers.log(name), 60,
                     f"worker {name} to be ready")
        assert main(["schedule", "run", "--broker", redis_server.url, "-C", str(coll), "--json"]) == 0
        assert sorted(json.loads(capsys.readouterr().out)["sent"]) == sorted(urls)
        jobstore = JobStore(client, store.identity())
        wait_for(lambda: sum(s.counts["done"] for s in jobstore.status()) == 50, 60, "50 jobs done")
        assert site.max_running == 2   # six captures at once, never more than two requests
        assert all(site.hits[f"/page/{i}"] == 1 for i in range(50))
    snaps = store.snapshots()
    assert len(snaps) == 50 and not (coll / PARTIAL).exists()
    assert sorted(json.loads((s / "datapackage.json").read_text())["mainPageURL"] for s in snaps) == sorted(urls)
    assert all(verify(s).ok for s in snaps)
    # the broker's status, then the results folded into the schedule state by the next run
    assert main(["schedule", "status", "--broker", redis_server.url, "-C", str(coll), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert len(status) == 50 and all(s["done"] == 1 and s["failed"] == s["queued"] == 0 for s in status)
    assert main(["schedule", "run", "--broker", redis_server.url, "-C", str(coll), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["sent"] == [] and len(second["folded"]) == 50 and all(r["ok"] for r in second["folded"])
    assert all(seen["last_result"]["ok"] for seen in Schedule(coll).state().values())
    _deduplicated_across_workers(client, store, snaps)


def _deduplicated_across_workers(client, store, snaps):  # type: ignore[no-untyped-def]
    """The shared stylesheet is stored a few times at most; revisits refer to other workers' snapshots."""
    worker_of = {}
    for key in client.zrange(f"archive:{store.identity()}:jobs", 0, -1):
        fields = client.hgetall(f"archive:{store.identity()}:job:{key.decode()}")
        worker_of[fields[b"snapshot"].decode()] = fields[b"worker"].decode().split("/")[0]
    assert len(set(worker_of.values())) >= 2   # the work was shared
    stored, across = 0, 0
    for snap in snaps:
        meta = json.loads((snap / "datapackage.json").read_text())["archive"]
        deps = [d["snapshot"] for d in meta.get("dependencies") or []]
        stored += not deps
        own = worker_of[json.loads((snap / "datapackage-digest.json").read_text())["hash"][7:]]
        across += any(worker_of[d] != own for d in deps)
    assert stored <= 10 and across >= 1
    assert client.hlen(f"archive:{store.identity()}:dedup") >= 50   # pages, scripts, the stylesheet once


def test_the_shared_dedup_index_refers_only_to_published_records_that_still_exist(redis_server, tmp_path):
    import shutil

    from cluster_site import SHARED

    from archive.services.shared_index import RedisDedupIndex
    from archive.write.capture import capture

    store = Collection(tmp_path / "c")
    index = RedisDedupIndex(connect(redis_server.url), store, store.identity())
    with ClusterSite() as site:
        snap = capture([site.url + "/page/1"], store.root, depth=0)
    digest = "sha256:" + __import__("hashlib").sha256(SHARED).hexdigest()
    assert index.lookup(digest) is None   # not published to the index yet
    index.seed()
    found = index.lookup(digest)
    assert found is not None and found.snapshot == snap.id and found.uri.endswith("/shared.css")
    shutil.rmtree(snap.path)
    assert index.lookup(digest) is None


def _slow_job(redis_server, tmp_path, site):  # type: ignore[no-untyped-def]
    """Return (collection folder, store, client, job store, job, its capture log) for a capture
    of the site's slow page, the job sent."""
    coll = tmp_path / "coll"
    store = Collection(coll)
    client = connect(redis_server.url)
    job = Job(store.identity(), site.url + "/slow/page", DUE, CaptureOptions(depth=0))
    assert enqueue([job], ClusterSettings(redis_server.url)) == [job]
    log = coll / PARTIAL / job.capture_id / "logs" / "capture.jsonl"
    return coll, store, client, JobStore(client, store.identity()), job, log


def test_a_worker_killed_mid_capture_loses_nothing_and_its_partial_is_resumed(
        redis_server, workers, tmp_path):
    with ClusterSite(slow=0.0, slow_parts=8) as site:
        site.gate = gate = Gate(3)   # the page and two parts, then worker a waits on the server
        coll, store, client, jobstore, job, log = _slow_job(redis_server, tmp_path, site)
        workers.start("a", coll, "--concurrency", "1", "--host-slots", "1", *FAST)
        wait_for(gate.held.is_set, 60, "worker a to ask for a fourth URL")
        wait_for(lambda: log.is_file() and len(log.read_text().splitlines()) >= 3, 30, "three exchanges written")
        workers.start("b", coll, "--concurrency", "1", "--host-slots", "1", *FAST)
        workers.kill("a")
        gate.open()
        assert not store.snapshots() and (coll / PARTIAL / job.capture_id).is_dir()
        wait_for(lambda: jobstore.done(job), 60, "the job to be taken over and done")
        assert site.hits["/slow/page"] == 1   # resumed: the page it held was not fetched again
    snaps = store.snapshots()
    assert len(snaps) == 1 and verify(snaps[0]).ok
    assert client.hget(f"archive:{store.identity()}:job:{job.key}", "worker").startswith(b"b/")
    assert int(client.hget(f"archive:{store.identity()}:job:{job.key}", "attempts")) == 2
    assert not (coll / PARTIAL).exists()
    assert "resuming the capture" in workers.log("b")


def test_a_job_whose_lease_is_taken_from_a_live_worker_is_not_dropped(redis_server, workers, tmp_path):
    # Redis away for longer than the lease, a frozen VM: the lease lapses while the worker
    # lives; its capture stops, and the message must come back rather than be acknowledged away
    with ClusterSite(slow=0.4, slow_parts=6) as site:
        coll, store, client, jobstore, job, log = _slow_job(redis_server, tmp_path, site)
        workers.start("a", coll, "--concurrency", "1", "--host-slots", "1", "--lease-ttl", "2",
                      "--visibility-timeout", "60")
        wait_for(lambda: log.is_file() and log.read_text(), 30, "the capture to be under way")
        client.delete(jobstore.lease_key(job))   # as if it had lapsed
        wait_for(lambda: jobstore.done(job), 60, "the job to be done all the same")
    assert "lost" in workers.log("a")
    snaps = store.snapshots()
    assert len(snaps) == 1 and verify(snaps[0]).ok


def test_a_missing_collection_is_an_error_not_a_new_folder(redis_server, tmp_path, capsys):
    missing = tmp_path / "no" / "such"
    for argv in (["worker", "--broker", redis_server.url, "-C", str(missing)],
                 ["schedule", "status", "--broker", redis_server.url, "-C", str(missing)],
                 ["schedule", "run", "--broker", redis_server.url, "-C", str(missing)]):
        assert main(argv) == 2
        assert "no collection at" in capsys.readouterr().err
    assert not missing.exists()


def test_a_lease_longer_than_the_visibility_timeout_is_refused(tmp_path, capsys):
    assert main(["worker", "--broker", "redis://127.0.0.1:9/0", "-C", str(tmp_path / "coll"),
                 "--lease-ttl", "30", "--visibility-timeout", "10"]) == 2
    assert "shorter than the visibility timeout" in capsys.readouterr().err


def test_broker_runs_and_plain_runs_share_the_schedule_state(redis_server, tmp_path):
    from archive.errors import ScheduleBusy
    from archive.services.dispatch import dispatch_due
    from archive.services.runner import locked
    from archive.services.schedule import Schedule
    coll = tmp_path / "coll"
    sched = Schedule(coll)
    for n in range(3):
        sched.add(f"http://127.0.0.1:9/{n}", "1d")
    settings = ClusterSettings(redis_server.url)
    with locked(coll):   # a plain run under way on this machine
        with pytest.raises(ScheduleBusy):
            dispatch_due(coll, settings, now=DUE)
    sent = dispatch_due(coll, settings, now=DUE)
    assert len(sent.sent) == 3
    state = sched.state()
    assert all("dispatched" in v and "running_since" not in v for v in state.values())
    # a plain run now takes the handed-out captures for workers' work, not for a dead run's
    assert sched.interrupted(DUE) == []
    assert sched.due(DUE) == []
