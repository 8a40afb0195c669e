"""Recurring captures: the schedule file, its entries, their run state and what became of them.

    <collection>/schedule.toml           the schedule, written by people (and `schedule add`)
    <collection>/.state/schedule.json    run state, written by `schedule run` only
    <collection>/.state/schedule.lock    held (flock) while a run works; a dead holder's lock is free

`archive schedule run` is the command for crontab or a systemd timer: it runs what is due,
once, and exits. A new entry is due at once; after a run the next due time is the previous
one plus the interval, moved past now, so downtime never causes a burst of catch-up runs.
A failed capture is tried again at a later run, after a backoff that doubles per failure.
When an entry is due is reckoned in timing.py; running what is due, in runner.py.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from archive.errors import StorageError, UsageError
from archive.models import CaptureOptions, rfc3339
from archive.snapshot.store import STATE, Collection, read_small

from .timing import next_due, parse_every

SCHEDULE = "schedule.toml"
STATE_FILE = "schedule.json"
LOCK_FILE = "schedule.lock"
AUDIT = "audit"                     # the pseudo-URL of a scheduled fixity check of the collection
BACKOFF = timedelta(minutes=5)      # the first retry after a failure; doubled per failure after
HEADER = """\
# Recurring captures of this collection, run by `archive schedule run` (e.g. from cron).
# Each [[capture]] is one seed. `every` is an interval (30m, 6h, 1d, 2w) or a cron
# expression in UTC ("0 3 * * 1"). Any capture option may follow, as in `archive capture`
# with dashes written as underscores: depth = 1, same_host = true, exclude = ["/login"].
# An [[audit]] entry re-verifies every snapshot on its own schedule.
"""


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
# -- the schedule and its state ------------------------------------------------------------------
class Schedule:
    """The schedule.toml of a collection and its run state."""

    def __init__(self, collection: Path | str | None = None):
        self.store = Collection(collection)
        self.path = self.store.root / SCHEDULE
        self.state_path = self.store.root / STATE / STATE_FILE

    # the human-written file
    def _document(self) -> Any:
        import tomlkit  # loaded by the schedule commands only
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

    def find(self, url: str) -> Entry | None:
        """Return the entry of `url` (canonical form, or AUDIT), or None when it is not scheduled."""
        return next((e for e in self.entries() if e.url == url or _same_url(e.url, url)), None)

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
            data = json.loads(read_small(self.state_path))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
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
    from archive.formats.urls import InvalidURL, canonicalize
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
