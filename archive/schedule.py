"""Recurring captures: what is due, running it once, and what became of it.

    <collection>/schedule.toml           the schedule, written by people (and `schedule add`)
    <collection>/.state/schedule.json    run state, written by `schedule run` only
    <collection>/.state/schedule.lock    held (flock) while a run works; a dead holder's lock is free

`archive schedule run` is the command for crontab or a systemd timer: it runs what is due,
once, and exits. A new entry is due at once; after a run the next due time is the previous
one plus the interval, moved past now, so downtime never causes a burst of catch-up runs.
A failed capture is tried again at a later run, after a backoff that doubles per failure.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .errors import ArchiveError, Interrupted, ScheduleBusy, StorageError, UsageError
from .models import CaptureOptions, rfc3339
from .store import PARTIAL, STATE, Collection

SCHEDULE = "schedule.toml"
STATE_FILE = "schedule.json"
LOCK_FILE = "schedule.lock"
AUDIT = "audit"                     # the pseudo-URL of a scheduled fixity check of the collection
BACKOFF = timedelta(minutes=5)      # the first retry after a failure; doubled per failure after
MAX_INTERVAL = 10 * 366 * 86400
HEADER = """\
# Recurring captures of this collection, run by `archive schedule run` (e.g. from cron).
# Each [[capture]] is one seed. `every` is an interval (30m, 6h, 1d, 2w) or a cron
# expression in UTC ("0 3 * * 1"). Any capture option may follow, as in `archive capture`
# with dashes written as underscores: depth = 1, same_host = true, exclude = ["/login"].
# An [[audit]] entry re-verifies every snapshot on its own schedule.
"""
_INTERVAL = re.compile(r"(\d+)\s*(m|min|h|d|w)")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Entry:
    """One line of the schedule: a seed (or the audit) and when it recurs."""

    url: str
    every: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Due:
    """One capture that is due."""

    url: str
    due: datetime                   # the due time this capture serves (UTC)
    options: CaptureOptions
    retry: int = 0                  # failures so far of this due time

    @property
    def capture_id(self) -> str:
        """Return the capture id of this (seed, due time): a killed run's partial is resumed."""
        return hashlib.sha256(f"{self.url} {rfc3339(self.due)}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Result:
    """What came of one due capture."""

    url: str
    due: datetime
    ok: bool
    snapshot: str | None
    error: str | None
    finished: datetime

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "due": rfc3339(self.due), "ok": self.ok, "snapshot": self.snapshot,
                "error": self.error, "finished": rfc3339(self.finished)}


# -- when ---------------------------------------------------------------------------------------
def parse_every(text: str) -> timedelta | Cron:
    """Return an interval or a cron expression; raise UsageError.

    >>> parse_every("6h")
    datetime.timedelta(seconds=21600)
    >>> parse_every("0 3 * * 1").next_after(datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc))
    datetime.datetime(2026, 11, 30, 3, 0, tzinfo=datetime.timezone.utc)
    """
    text = str(text).strip()
    match = _INTERVAL.fullmatch(text)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if not 60 <= seconds <= MAX_INTERVAL:
            raise UsageError(f"interval {text!r} is not between a minute and ten years")
        return timedelta(seconds=seconds)
    if len(text.split()) == 5:
        return Cron(text)
    raise UsageError(f"{text!r} is neither an interval (30m, 6h, 1d, 1w) nor a cron expression")


class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), in UTC."""

    LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))

    def __init__(self, text: str):
        self.text = text
        parts = text.split()
        self.sets = [self._field(p, lo, hi) for p, (lo, hi) in zip(parts, self.LIMITS)]
        if 7 in self.sets[4]:
            self.sets[4] = self.sets[4] | {0}   # Sunday is 0 or 7
        # as cron: a day field starting with "*" (also "*/2") does not restrict the other one
        self.any_day, self.any_weekday = parts[2].startswith("*"), parts[4].startswith("*")
        self.next_after(datetime(2000, 1, 1, tzinfo=timezone.utc))   # "0 0 31 4 *" fails here, now

    def _field(self, text: str, lo: int, hi: int) -> frozenset[int]:
        values: set[int] = set()
        for item in text.split(","):
            rng, _, step_text = item.partition("/")
            try:
                step = int(step_text) if step_text else 1
                if rng == "*":
                    start, end = lo, hi
                elif "-" in rng:
                    start, end = (int(x) for x in rng.split("-", 1))
                else:
                    start = end = int(rng)
                    if step_text:
                        end = hi
            except ValueError:
                raise UsageError(f"cron field {text!r} in {self.text!r} is not understood") from None
            if not (lo <= start <= end <= hi) or step < 1:
                raise UsageError(f"cron field {text!r} in {self.text!r} is out of range {lo}-{hi}")
            values.update(range(start, end + 1, step))
        return frozenset(values)

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.sets[2]
        dow = (t.isoweekday() % 7) in self.sets[4]
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow   # as cron does when both are restricted

    def next_after(self, moment: datetime) -> datetime:
        """Return the first matching minute after `moment`."""
        t = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.sets[3] or not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.sets[1]:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.sets[0]:
                t += timedelta(minutes=1)
            else:
                return t
        raise UsageError(f"cron expression {self.text!r} never matches")


def next_due(every: str, due: datetime, now: datetime) -> datetime:
    """Return the due time after `due`: one interval on, moved past `now` (no catch-up)."""
    when = parse_every(every)
    if isinstance(when, Cron):
        return when.next_after(max(due, now))
    following = due + when
    if following <= now:   # runs were missed: skip them rather than run them all at once
        following += when * ((now - following) // when + 1)
    return following


# -- the schedule and its state ------------------------------------------------------------------
class Schedule:
    """The schedule.toml of a collection and its run state."""

    def __init__(self, collection: Path | str | None = None):
        self.store = Collection(collection)
        self.path = self.store.root / SCHEDULE
        self.state_path = self.store.root / STATE / STATE_FILE

    # the human-written file
    def _document(self) -> Any:
        import tomlkit   # loaded by the schedule commands only
        try:
            return tomlkit.parse(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return tomlkit.parse(HEADER)
        except (OSError, ValueError) as exc:   # tomlkit's parse errors are ValueErrors
            raise UsageError(f"cannot read {self.path}: {' '.join(str(exc).split())}") from None

    def entries(self) -> list[Entry]:
        """Return the schedule's entries; raise UsageError for a malformed file."""
        doc = self._document()
        unknown = sorted(k for k in doc if k not in ("capture", AUDIT))
        if unknown:
            raise UsageError(f"{self.path}: unknown table(s) {', '.join(unknown)}; "
                             "entries are [[capture]] and [[audit]]")
        found: list[Entry] = []
        for kind in ("capture", AUDIT):
            tables = _plain(doc.get(kind, []))
            if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
                raise UsageError(f"{self.path}: {kind} must be written [[{kind}]], one table per entry")
            for data in tables:
                data = dict(data)
                url = AUDIT if kind == AUDIT else data.pop("url", None)
                every = data.pop("every", None)
                if not isinstance(url, str) or not isinstance(every, str):
                    raise UsageError(f"{self.path}: every [[{kind}]] needs url and every: {data}")
                parse_every(every)
                if kind == AUDIT and data:
                    raise UsageError(f"{self.path}: [[audit]] takes only every, not {', '.join(sorted(data))}")
                try:
                    capture_options(data)   # a misspelt or mistyped option fails now, not at 3 a.m.
                except UsageError as exc:
                    raise UsageError(f"{self.path}, {url}: {exc}") from None
                if any(e.url == url for e in found):
                    raise UsageError(f"{self.path}: {url} is scheduled twice")
                found.append(Entry(url, every, data))
        return found

    def add(self, url: str, every: str, options: dict[str, Any] | None = None) -> Entry:
        """Add (or change) an entry, keeping the file's comments and layout; return it."""
        import tomlkit
        parse_every(every)
        options = {k: list(v) if isinstance(v, tuple) else v for k, v in (options or {}).items() if v is not None}
        capture_options(options)
        self.entries()   # a file that does not read is not written over
        doc = self._document()
        kind = AUDIT if url == AUDIT else "capture"
        if kind not in doc:
            doc.add(kind, tomlkit.aot())
        table = next((t for t in doc[kind] if kind == AUDIT or _same_url(t.get("url"), url)), None)
        before = table.get("every") if table is not None else None
        if table is None:
            table = tomlkit.table()
            if kind == "capture":
                table["url"] = url
            doc[kind].append(table)
        table["every"] = every
        for key in [k for k in table if k not in ("url", "every") and k not in options]:
            del table[key]   # the entry is now what was asked for, no more
        body = table.value.body
        body[:] = [(k, v) for k, v in body if not isinstance(v, tomlkit.items.Whitespace)]
        for key, value in options.items():
            table[key] = value
        table.add(tomlkit.nl())   # a blank line after each entry
        self._write_text(self.path, tomlkit.dumps(doc))
        if before is not None and before != every:
            self._reschedule(str(table.get("url", url)), every)
        return Entry(url, every, options)

    def _reschedule(self, url: str, every: str) -> None:
        """After an entry's `every` changed: its next due time follows the new rule."""
        state = self.state()
        seen = state.get(url)
        last = _time(seen.get("last_due")) if seen else None
        if seen is not None and last is not None:
            now = datetime.now(timezone.utc)
            seen["next_due"] = rfc3339(next_due(every, last, now))
            self._save_state(state)

    def remove(self, url: str) -> bool:
        """Remove an entry (its run state goes too); return whether there was one."""
        import tomlkit
        doc = self._document()
        kind = AUDIT if url == AUDIT else "capture"
        tables = doc.get(kind, [])
        keep = [t for t in tables if not (kind == AUDIT or _same_url(t.get("url"), url))]
        if len(keep) == len(tables):
            return False
        aot = tomlkit.aot()
        for t in keep:
            aot.append(t)
        if keep:
            doc[kind] = aot
        else:
            del doc[kind]
        self._write_text(self.path, tomlkit.dumps(doc))
        state = self.state()
        if state.pop(url, None) is not None:
            self._save_state(state)
        return True

    # the machine-written state
    def state(self) -> dict[str, dict[str, Any]]:
        """Return the run state by URL (an entry that is not an object counts as none)."""
        try:
            data = json.loads(self.state_path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the run state {self.state_path} ({' '.join(str(exc).split())}); "
                             "move it away to start the schedule afresh") from None
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    def _save_state(self, state: dict[str, dict[str, Any]]) -> None:
        self._write_text(self.state_path, json.dumps(state, indent=2, sort_keys=True) + "\n")

    def _write_text(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, "utf-8")
            os.replace(tmp, path)   # whole or not at all
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(path, exc.strerror or str(exc)) from None

    # what is due
    def due(self, now: datetime) -> list[Due]:
        """Return what is due at `now`: each entry at most once, the oldest due first."""
        state = self.state()
        found = []
        for entry in self.entries():
            seen = state.get(entry.url, {})
            when = _time(seen.get("next_due")) or now   # a new entry is due at once
            retry_at = _time(seen.get("retry_at"))
            last_due = _time(seen.get("last_due"))
            failures = int(seen["failures"]) if isinstance(seen.get("failures"), int) else 0
            options = capture_options(entry.options) if entry.url != AUDIT else CaptureOptions()
            if retry_at is not None and last_due is not None and retry_at <= now and retry_at < when:
                found.append(Due(entry.url, last_due, options, failures))
            elif when <= now:
                found.append(Due(entry.url, when, options))
        return sorted(found, key=lambda d: d.due)

    def pin(self, now: datetime) -> None:
        """Write down `now` as the first due time of entries that have none, so that a run
        which dies after handing them out hands out the same (seed, due time) again."""
        state = self.state()
        new = [e.url for e in self.entries() if "next_due" not in state.get(e.url, {})]
        for url in new:
            state.setdefault(url, {})["next_due"] = rfc3339(now)
        if new:
            self._save_state(state)

    def claim(self, item: Due, now: datetime) -> None:
        """Mark `item` as running here: the entry's next due time moves on past `now`."""
        self.claim_all([item], now)

    def claim_all(self, items: Sequence[Due], now: datetime, *, dispatched: bool = False) -> None:
        """Mark `items` as handed out, in one write: each entry's next due time moves on past
        `now`. Running here (the default) they are marked running, so that a run that dies
        is noticed by the next (`interrupted`); handed to workers (`dispatched`) they are not."""
        state = self.state()
        every = {e.url: e.every for e in self.entries()}
        for item in items:
            seen = state.setdefault(item.url, {})
            if item.retry == 0 and item.url in every:
                seen["next_due"] = rfc3339(next_due(every[item.url], item.due, now))
                seen["failures"] = 0
            seen["last_due"] = rfc3339(item.due)
            seen["retry_at"] = None
            seen["dispatched" if dispatched else "running_since"] = rfc3339(now)
        self._save_state(state)

    def record(self, result: Result) -> None:
        """Note what came of a capture; a failure is tried again after a growing backoff."""
        self.record_all([result])

    def record_all(self, results: Sequence[Result]) -> None:
        """Note what came of captures, in one write; a failure is tried again after a backoff
        that doubles with each failure in a row."""
        state = self.state()
        for result in results:
            seen = state.setdefault(result.url, {})
            seen["last_result"] = result.to_json()
            seen.pop("running_since", None)
            seen.pop("dispatched", None)
            if result.ok:
                seen["failures"] = 0
                seen["retry_at"] = None
                seen["last_snapshot"] = result.snapshot
            else:
                failures = int(seen.get("failures", 0)) + 1
                seen["failures"] = failures
                seen["retry_at"] = rfc3339(result.finished + BACKOFF * 2 ** min(failures - 1, 10))
        self._save_state(state)

    def interrupted(self, now: datetime) -> list[str]:
        """Count captures whose run died (marked running while nobody holds the lock) as
        failed, so they are retried after the backoff; return their URLs."""
        state = self.state()
        died = [url for url, seen in state.items() if seen.get("running_since")]
        for url in died:
            due = _time(state[url].get("last_due")) or now
            self.record(Result(url, due, False, None, "the run capturing it stopped before it finished", now))
        return died

    def next_wake(self, now: datetime) -> datetime | None:
        """Return when something falls due next (for --forever), or None with nothing scheduled."""
        state = self.state()
        times = []
        for entry in self.entries():
            seen = state.get(entry.url, {})
            times.append(_time(seen.get("next_due")) or now)
            if (retry := _time(seen.get("retry_at"))) is not None:
                times.append(retry)
        return min(times) if times else None


def capture_options(values: dict[str, Any], base: CaptureOptions | None = None) -> CaptureOptions:
    """Return CaptureOptions from a schedule entry's values; raise UsageError for unknown ones."""
    known = {f.name: f for f in fields(CaptureOptions)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"unknown capture option(s) in the schedule: {', '.join(unknown)}")
    for name, value in values.items():
        _check_type(name, value, getattr(CaptureOptions(), name))
    converted: dict[str, Any] = {
        k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
        for k, v in values.items()}
    try:
        return replace(base or CaptureOptions(), **converted)
    except TypeError as exc:
        raise UsageError(f"bad capture option in the schedule: {exc}") from None


def _same_url(written: Any, url: str) -> bool:
    """Return whether a URL written in the schedule is `url` (given in canonical form)."""
    from .urls import InvalidURL, canonicalize
    if not isinstance(written, str):
        return False
    try:
        return written == url or canonicalize(written) == url
    except InvalidURL:
        return False


def _check_type(name: str, value: Any, default: Any) -> None:
    """Raise UsageError unless a schedule's option value has the type the option takes."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and (isinstance(value, int) or isinstance(default, float)) and value >= 0
    elif isinstance(default, tuple):
        pairs = {"headers": 2, "resolve": 3}.get(name)
        ok = isinstance(value, list) and all(
            isinstance(v, list) and len(v) == pairs and all(isinstance(x, (str, int)) for x in v)
            if pairs else isinstance(v, str) for v in value)
    else:   # a string, or None by default
        ok = isinstance(value, str)
    if not ok:
        raise UsageError(f"option {name} = {value!r} is not of the type it takes "
                         f"(like {_plain(default)!r})")


def _plain(value: Any) -> Any:
    """Return a tomlkit value as a plain Python one."""
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if unwrap is not None else value


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- running ------------------------------------------------------------------------------------
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


def capture_due(item: Due, collection: Path | str | None = None, *, limiter: Any = None,
                dedup_index: Any = None, capture_id: str | None = None, resume: str | None = None,
                clock: Callable[[], datetime] | None = None) -> Result:
    """Run one due capture; return its Result (a failure is a Result, not an exception).

    A partial capture left by an earlier try of the same (seed, due time) is resumed.
    """
    from .capture import capture

    store = Collection(collection)
    capture_id = capture_id or item.capture_id
    if resume is None and (store.root / PARTIAL / capture_id).is_dir():
        resume = capture_id
    now = clock or (lambda: datetime.now(timezone.utc))
    kwargs: dict[str, Any] = {"limiter": limiter, "dedup_index": dedup_index}
    try:
        snap = None
        if resume is not None:
            try:
                snap = capture([], store.root, item.options, resume=resume, **kwargs)
            except UsageError:
                if resume != capture_id:
                    raise
                # killed before its first record: nothing to resume from, so start afresh
                store.discard(store.root / PARTIAL / capture_id)
        if snap is None:
            snap = capture(item.url, store.root, item.options, capture_id=capture_id, **kwargs)
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
    if not schedule.store.root.is_dir():
        raise UsageError(f"no collection at {schedule.store.root} (schedule add creates it)")
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
    from .audit import audit

    summary = audit(collection)
    error = None if summary.ok else f"{summary.failed} snapshot(s) failed verification"
    return Result(AUDIT, item.due, summary.ok, None, error, clock())


def run_forever(collection: Path | str | None = None, report: Callable[[str], None] | None = None,
                max_sleep: float = 60.0, stop: Callable[[], bool] = lambda: False) -> None:
    """Run due captures whenever they fall due, until interrupted (or `stop()`).

    The lock is held only while running, so a cron-started run may share the work.
    """
    schedule = Schedule(collection)
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
