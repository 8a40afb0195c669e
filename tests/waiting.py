"""Waiting for a state instead of sleeping for a while: what keeps timing out of the tests.

A test that needs a capture to be somewhere (a record written, a request in flight) waits for
that state with `wait_for`, under a deadline that only a broken program reaches; a test that
needs it to stay there holds the server's answers with a `Gate` until it lets them go.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
POLL = 0.02      # seconds between looks: short beside any deadline, long beside a stat()
HOLD_LIMIT = 120.0  # a held request gives up after this, so a failed test never hangs its server


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, what: str = "a condition") -> T:
    """Return the first true value of `predicate()`, asked every 20 ms; AssertionError naming
    `what` after `timeout` seconds. An exception from `predicate` counts as not yet (a file
    that is still being created), and is named in the failure if it is the last word."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = None
        except (OSError, ValueError, StopIteration) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}"
                                 + (f" (last: {last!r})" if last else ""))
        time.sleep(POLL)


class Gate:
    """Lets the first `passing` requests of a server through; holds every later one until
    `open()`. `held` is set once a request is waiting, so the test knows the capture is
    mid-flight, with exactly `passing` answers given."""

    def __init__(self, passing: int):
        self.passing = passing
        self.count = 0
        self.held = threading.Event()
        self.opened = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> None:
        """Called by the server for each request, before it answers."""
        with self._lock:
            self.count += 1
            wait = self.count > self.passing
        if wait:
            self.held.set()
            self.opened.wait(HOLD_LIMIT)

    def open(self) -> None:
        self.opened.set()

    def on_demo(self, site: Any) -> "Gate":
        """Put the gate in front of every answer of an archive.demo.DemoSite."""
        log = site.log

        def log_then_wait(host: str, path: str, headers: dict[str, str]) -> None:
            log(host, path, headers)
            self()
        site.log = log_then_wait
        return self


def log_entries(folder: Path) -> list[dict[str, Any]]:
    """The whole lines of a (maybe unfinished) capture's logs/capture.jsonl."""
    text = (folder / "logs" / "capture.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def fetched(folder: Path) -> int:
    """How many exchanges a capture has written and logged so far."""
    return sum(1 for e in log_entries(folder) if e["outcome"] == "fetched")


def partial_folder(collection: Path) -> Path | None:
    """The one partial capture folder under `collection` (its spool folder aside); None while
    there is none, or when there are several."""
    found = [p for p in (collection / ".partial").iterdir() if not p.name.endswith(".spool")]
    return found[0] if len(found) == 1 else None


def default_sigint() -> None:
    """Popen(preexec_fn=...): Ctrl-C raises KeyboardInterrupt in the child even when the
    tests run in a background job, whose shell hands its children SIGINT ignored (and
    Python installs no handler for a signal ignored at start)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def children(pid: int) -> list[int]:
    """Return the ids of the processes whose parent is `pid` (from /proc), to check none is left."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def kill_groups(groups: list[int]) -> None:
    """SIGKILL each process group in `groups` (one started with start_new_session, and those its
    children made of their own); a group already gone is skipped."""
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
