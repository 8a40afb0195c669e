"""Scheduled recapture: schedule.toml, due times without catch-up, the lock, backoff, audit."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from recapture_site import RecaptureSite
from waiting import Gate, wait_for

from archive.errors import ScheduleBusy, UsageError
from archive.read.audit import audit
from archive.services.runner import locked, run_due, run_forever
from archive.services.schedule import Schedule
from archive.services.timing import Cron, next_due, parse_every
from archive.snapshot.store import Collection

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def site():  # type: ignore[no-untyped-def]
    s = RecaptureSite(pages=4)
    yield s
    s.close()


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """These tests schedule captures of loopback test servers: their collection opts out of
    the services' block_private default, as an archivist would, in archive.toml."""
    root = tmp_path / "snapshots"
    root.mkdir()
    (root / "archive.toml").write_text("block_private = false\n")
    return root


def archive_cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "archive", *args], capture_output=True, text=True, **kwargs)


def test_intervals_and_cron_expressions():
    assert parse_every("30m") == timedelta(minutes=30)
    assert parse_every("1w") == timedelta(days=7)
    cron = Cron("*/15 9-17 * * 1-5")
    assert cron.next_after(datetime(2026, 11, 27, 17, 50, tzinfo=timezone.utc)) == \
        datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)   # Friday evening -> Monday 09:00
    assert Cron("0 0 1 * *").next_after(T0) == datetime(2026, 12, 1, tzinfo=timezone.utc)
    # day of month and day of week both given: either matches, as in cron
    assert Cron("0 6 13 * 5").next_after(T0) == datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)
    # as in cron, a day field starting with "*" makes both day fields count together (AND):
    # odd days that are Mondays; Monday 30 November is even, so 7 December
    assert Cron("0 0 */2 * 1").next_after(T0) == datetime(2026, 12, 7, 0, 0, tzinfo=timezone.utc)
    for bad in ("5x", "10s", "61 * * * *", "* * *", "a b c d e", "0 0 31 4 *", "99999999999w"):
        with pytest.raises(UsageError):
            parse_every(bad)


def test_no_burst_of_catch_up_runs_after_downtime():
    # due at 12:00 every hour; the machine was off until 15:20: the next run is 16:00, once
    assert next_due("1h", T0, T0 + timedelta(minutes=5)) == T0 + timedelta(hours=1)
    assert next_due("1h", T0, T0 + timedelta(hours=3, minutes=20)) == T0 + timedelta(hours=4)
    assert next_due("0 3 * * *", T0, T0 + timedelta(days=3)) == datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)


def test_schedule_file_keeps_comments_and_entries_are_due_at_once(collection: Path):
    sched = Schedule(collection)
    sched.add("http://127.0.0.1:1/a", "6h", {"depth": 2})
    text = (collection / "schedule.toml").read_text()
    (collection / "schedule.toml").write_text(text + "\n# a note kept by people\n")
    sched.add("http://127.0.0.1:1/b", "0 3 * * *")
    text = (collection / "schedule.toml").read_text()
    assert "# a note kept by people" in text and "Recurring captures" in text
    assert [(e.url, e.every, e.options) for e in sched.entries()] == [
        ("http://127.0.0.1:1/a", "6h", {"depth": 2}), ("http://127.0.0.1:1/b", "0 3 * * *", {})]
    due = sched.due(T0)
    assert [d.url for d in due] == ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"]
    assert due[0].options.depth == 2 and due[0].due == T0
    sched.claim(due[0], T0)
    assert [d.url for d in sched.due(T0 + timedelta(hours=5))] == ["http://127.0.0.1:1/b"]
    assert sched.state()["http://127.0.0.1:1/a"]["next_due"] == "2026-11-26T18:00:00Z"
    assert sched.remove("http://127.0.0.1:1/a") and not sched.remove("http://127.0.0.1:1/a")
    assert "http://127.0.0.1:1/a" not in sched.state()
    # a misspelt option is caught when the file is read, with the file named
    (collection / "schedule.toml").write_text('[[capture]]\nurl = "http://x.test/"\nevery = "1d"\ndepht = 1\n')
    with pytest.raises(UsageError, match="depht"):
        sched.entries()


def test_crontab_style_runs_twice_in_a_row(site: RecaptureSite, collection: Path):
    out = archive_cli("schedule", "add", site.url + "/", "--every", "1d", "--depth", "0", "-C", str(collection))
    assert out.returncode == 0, out.stderr
    first = archive_cli("schedule", "run", "-C", str(collection))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("ok ")
    snapshots = Collection(collection).snapshots()
    assert len(snapshots) == 1
    second = archive_cli("schedule", "run", "-C", str(collection), "--json")
    assert second.returncode == 0 and json.loads(second.stdout) == []   # nothing due: nothing done
    assert Collection(collection).snapshots() == snapshots
    listed = archive_cli("schedule", "list", "-C", str(collection), "--json")
    row = json.loads(listed.stdout)[0]
    assert row["last_result"]["ok"] and row["failures"] == 0
    assert row["next_due"] > row["last_result"]["finished"][:10]
    line = archive_cli("schedule", "cron-line", "-C", str(collection)).stdout.splitlines()[-1]
    assert line.startswith("* * * * * ") and "schedule run -C" in line and str(collection.resolve()) in line


def test_a_failed_capture_is_retried_with_backoff(collection: Path):
    sched = Schedule(collection)
    sched.add("http://127.0.0.1:9/", "1d")   # nothing listens on port 9
    results = run_due(collection, now=T0)
    assert [r.ok for r in results] == [False] and "connection-refused" in str(results[0].error)
    state = sched.state()["http://127.0.0.1:9/"]
    assert state["failures"] == 1
    retry_at = datetime.fromisoformat(state["retry_at"].replace("Z", "+00:00"))
    assert not sched.due(retry_at - timedelta(seconds=1))
    retry = sched.due(retry_at)
    assert [(d.url, d.due, d.retry) for d in retry] == [("http://127.0.0.1:9/", T0, 1)]
    run_due(collection, now=retry_at)
    state = sched.state()["http://127.0.0.1:9/"]
    second_wait = datetime.fromisoformat(state["retry_at"].replace("Z", "+00:00")) - retry_at
    assert state["failures"] == 2 and second_wait > retry_at - T0   # the wait doubled
    assert state["next_due"] == "2026-11-27T12:00:00Z"   # the regular schedule is unmoved
    listed = archive_cli("schedule", "list", "-C", str(collection))
    assert "FAILED" in listed.stdout and "failures: 2" in listed.stdout


def test_two_runs_never_overlap(collection: Path):
    with locked(collection):
        with pytest.raises(ScheduleBusy):
            run_due(collection)
        out = archive_cli("schedule", "run", "-C", str(collection))
        assert out.returncode == 0 and "another schedule run holds" in out.stderr
    assert run_due(collection) == []


def test_a_killed_run_leaves_a_stale_lock_the_next_run_takes_over(collection: Path):
    slow = RecaptureSite(pages=40)
    slow.gate = gate = Gate(5)   # five answers, then the capture waits on the server
    try:
        Schedule(collection).add(slow.url + "/", "1d", {"depth": 1, "per_host": 1})
        proc = subprocess.Popen([sys.executable, "-m", "archive", "schedule", "run", "-C", str(collection)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        lock = collection / ".state" / "schedule.lock"
        try:
            wait_for(gate.held.is_set, 60, "the scheduled capture to ask for a sixth URL")
            assert lock.read_text().startswith(f"pid {proc.pid} ")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            gate.open()
        assert lock.read_text()   # the holder died holding it
        assert len(Collection(collection).partials()) == 1
        out = archive_cli("schedule", "run", "-C", str(collection))
        assert "took over the lock of a run that died" in out.stderr and f"pid {proc.pid} " in out.stderr
        state = Schedule(collection).state()[slow.url + "/"]
        assert state["failures"] == 1 and "stopped before it finished" in state["last_result"]["error"]
        # after the backoff the capture is tried again: the partial it left is resumed, not redone
        retry_at = datetime.fromisoformat(state["retry_at"].replace("Z", "+00:00"))
        before = len(slow.requests)
        results = run_due(collection, now=retry_at)
    finally:
        slow.close()
    assert [r.ok for r in results] == [True]
    assert Collection(collection).partials() == []
    assert len(slow.requests) - before < 42   # fewer than a whole capture: what was held is kept
    snapshot = Collection(collection).snapshots()[0]
    from archive.read.verify import verify
    assert verify(snapshot).ok


def test_forever_wakes_for_what_falls_due(site: RecaptureSite, collection: Path):
    Schedule(collection).add(site.url + "/", "1h", {"depth": 0})
    rounds = []

    def stop() -> bool:
        rounds.append(1)
        return len(rounds) > 2
    run_forever(collection, max_sleep=0.01, stop=stop)
    assert len(Collection(collection).snapshots()) == 1   # due once, not again within the hour


def test_audit_checks_every_snapshot_reports_damage_and_resumes(site: RecaptureSite, collection: Path):
    from archive.write.capture import capture
    a = capture(site.url + "/", collection, depth=1)
    b = capture(site.url + "/", collection, depth=1, dedup=False)   # damage to a stays a's alone
    summary = audit(collection)
    assert summary.ok and {r.snapshot for r in summary.results} == {a.id, b.id}
    # damage one byte of the first snapshot's WARC
    warc = next((a.path / "archive").glob("*.warc.gz"))
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 1
    warc.write_bytes(bytes(data))
    out = archive_cli("audit", "-C", str(collection))
    assert out.returncode == 1
    assert a.id[:12] in out.stdout and warc.name in out.stdout and b.id[:12] not in out.stdout.split("\n", 1)[1]
    listed = archive_cli("list", "-C", str(collection))
    line = next(x for x in listed.stdout.splitlines() if x.startswith(a.id[:12]))
    assert "FAILED" in line
    # an audit that was stopped after one snapshot is taken up where it stopped
    log = collection / ".state" / "audit.jsonl"
    log.write_text(log.read_text() + json.dumps({"audit": "cut", "started": "2026-11-26T12:00:00Z"}) + "\n"
                   + json.dumps({"audit": "cut", "snapshot": b.id, "path": b.path.name, "ok": True,
                                 "problems": []}) + "\n")
    resumed = audit(collection)
    assert resumed.audit == "cut" and resumed.resumed == 1
    assert len(resumed.results) == 2   # the damaged one once, though its id reads otherwise now
    assert {r.path: r.ok for r in resumed.results} == {a.path.name: False, b.path.name: True}
    assert json.loads(log.read_text().splitlines()[-1])["finished"]


def test_a_scheduled_audit_runs_with_the_captures(site: RecaptureSite, collection: Path):
    sched = Schedule(collection)
    sched.add(site.url + "/", "1d", {"depth": 0})
    sched.add("audit", "1w")
    results = run_due(collection, now=T0)
    assert sorted(r.url for r in results) == sorted([site.url + "/", "audit"])
    assert all(r.ok for r in results)
    assert (collection / ".state" / "audit.jsonl").is_file()
    assert os.path.getsize(collection / ".state" / "audit.jsonl") > 0


@pytest.mark.parametrize("text, message", [
    ('[capture]\nurl = "http://x.test/"\nevery = "1d"\n', "must be written [[capture]]"),
    ('capture = "x"\n', "must be written [[capture]]"),
    ('[[capture]]\nurl = "http://x.test/"\nevery = "1d"\nheaders = ["X"]\n', "headers"),
    ('[[capture]]\nurl = "http://x.test/"\nevery = "1d"\ndepth = "two"\n', "depth"),
    ('[[capture]]\nurl = "http://x.test/"\nevery = "0 0 31 4 *"\n', "never matches"),
    ('[[audit]]\nevery = "1w"\nworkers = 4\n', "takes only every"),
    ('[[capture]]\nurl = "http://x.test/"\nevery = "1d"\n[[capture]]\nurl = "http://x.test/"\nevery = "2d"\n',
     "scheduled twice"),
    ('[[capture]\n', "cannot read"),
    ('[captures]\n', "unknown table"),
])
def test_a_bad_schedule_file_is_one_line_and_exit_2(collection: Path, text: str, message: str):
    collection.mkdir(parents=True, exist_ok=True)
    (collection / "schedule.toml").write_text(text)
    for command in ("list", "run"):
        out = archive_cli("schedule", command, "-C", str(collection))
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith("archive: error: ") and out.stderr.count("\n") == 1, out.stderr
        assert message in out.stderr and "Traceback" not in out.stderr


def test_garbage_in_the_run_state_is_said_plainly(collection: Path):
    Schedule(collection).add("http://127.0.0.1:9/", "1d")
    (collection / ".state").mkdir(exist_ok=True)
    (collection / ".state" / "schedule.json").write_text('{"http://127.0.0.1:9/": 5}')
    assert Schedule(collection).state() == {}   # an entry that is not an object counts as none
    (collection / ".state" / "schedule.json").write_text("{not json")
    out = archive_cli("schedule", "list", "-C", str(collection))
    assert out.returncode == 2 and "cannot read the run state" in out.stderr


def test_ctrl_c_stops_the_whole_run(collection: Path, monkeypatch: pytest.MonkeyPatch):
    from archive.errors import Interrupted
    capture_module = sys.modules["archive.write.capture"]   # `archive.capture` is the function
    sched = Schedule(collection)
    for n in range(3):
        sched.add(f"http://127.0.0.1:9/{n}", "1d")
    calls = []

    def interrupted(url, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(url)
        raise Interrupted(collection / ".partial" / "x")
    monkeypatch.setattr(capture_module, "capture", interrupted)
    with pytest.raises(Interrupted):
        run_due(collection, now=T0)
    assert len(calls) == 1   # the other two were not started
    state = sched.state()
    assert [u for u, v in state.items() if v.get("last_result", {}).get("error") == "interrupted"] == [calls[0]]
    assert not any("running_since" in v for v in state.values())


def test_a_partial_killed_before_its_first_record_is_started_afresh(site: RecaptureSite, collection: Path):
    from archive.services.runner import capture_due
    sched = Schedule(collection)
    sched.add(site.url + "/", "1d", {"depth": 0})
    item = sched.due(T0)[0]
    Collection(collection).new_partial(item.capture_id)   # what a kill at once leaves
    result = capture_due(item, collection)
    assert result.ok, result.error
    assert Collection(collection).partials() == []


def test_changing_every_moves_the_next_due_time(collection: Path):
    sched = Schedule(collection)
    sched.add("http://127.0.0.1:1/", "1w")
    item = sched.due(T0)[0]
    sched.claim(item, T0)
    assert sched.state()["http://127.0.0.1:1/"]["next_due"] == "2026-12-03T12:00:00Z"
    sched.add("http://127.0.0.1:1/", "1d", {"depth": 0})
    next_due_after = sched.state()["http://127.0.0.1:1/"]["next_due"]
    assert next_due_after < "2026-12-03T12:00:00Z"
    text = (collection / "schedule.toml").read_text()
    entry = text[text.index("[[capture]]"):]
    assert "\n\n" not in entry.strip()   # no blank line inside the entry
