"""Captures asked for through the web form, each run as a child `archive capture` process.

The read side never imports the write path: the capture runs as `python -m archive capture
--json --progress-jsonl ...` in a process group of its own, and its progress lines (stderr,
one JSON object a line) become the job's events, shown live by server-sent events (HTML
Living Standard, section 9.2). A form that makes the server fetch URLs is a way into the
network it sits on, so private, loopback, link-local and reserved addresses are always refused
(`--block-private`, whatever the collection's `archive.toml` says), unless the server was
started for trusted local use with `serve --allow-private-capture` (loopback only). Lines are bounded (MAX_LINE);
events kept per job are bounded (MAX_EVENTS, the oldest progress dropped first).
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_LINE = 64 << 10
MAX_EVENTS = 500
MAX_JOBS = 4          # captures running at once
MAX_DEPTH = 3


@dataclass
class Job:
    """One capture: its events so far and whether it has ended."""

    id: str
    url: str
    depth: int
    browser: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    process: asyncio.subprocess.Process | None = None
    seq: int = 0   # events numbered from 1, so a reader misses none when old ones are dropped

    def add(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["seq"] = self.seq
        if len(self.events) >= MAX_EVENTS:
            drop = next((i for i, e in enumerate(self.events) if e.get("type") == "progress"), 0)
            del self.events[drop]
        self.events.append(event)
        self.changed.set()
        self.changed = asyncio.Event()


class Busy(Exception):
    """Too many captures are running."""


class CaptureJobs:
    """The captures of one server process."""

    def __init__(self, collection: Path, program: tuple[str, ...] = (sys.executable, "-m", "archive"),
                 allow_private: bool = False):
        self.collection = collection
        self.program = program
        self.allow_private = allow_private
        self.jobs: dict[str, Job] = {}

    def block_private(self) -> bool:
        """Return True unless the server was started with `--allow-private-capture`."""
        return not self.allow_private

    @staticmethod
    def browser_available() -> bool:
        """Return whether `capture --browser` can run here (Debian's Chromium is installed)."""
        from archive.browser import CHROMIUM
        return os.access(CHROMIUM, os.X_OK)

    async def start(self, url: str, depth: int, browser: bool = False) -> Job:
        """Start a capture of `url` to `depth` (0..MAX_DEPTH), in Chromium too with `browser`
        (`capture --browser`); raise Busy, ValueError."""
        if browser and not self.browser_available():
            raise ValueError("browser capture is not available here: Chromium is not installed")
        if not 0 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be 0 to {MAX_DEPTH}")
        if sum(1 for j in self.jobs.values() if not j.done) >= MAX_JOBS:
            raise Busy()
        job = Job(secrets.token_hex(8), url, depth, browser)
        args = [*self.program, "capture", "-C", str(self.collection), "--json", "--progress-jsonl",
                "--depth", str(depth)]
        if self.block_private():
            args.append("--block-private")
        if browser:
            args.append("--browser")
        args += ["--", url]
        job.process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=MAX_LINE)
        self.jobs[job.id] = job
        job.add({"type": "started", "url": url, "depth": depth, "browser": browser, "block_private": self.block_private()})
        asyncio.get_running_loop().create_task(self._follow(job))
        return job

    async def _follow(self, job: Job) -> None:
        assert job.process is not None and job.process.stderr is not None and job.process.stdout is not None
        out_task = asyncio.ensure_future(job.process.stdout.read(4 << 20))
        while True:
            try:
                line = await job.process.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue   # a line past MAX_LINE: left out
            if not line:
                break
            text = line.decode("utf-8", "replace").strip()
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("progress"), dict):
                job.add({"type": "progress", **{k: v for k, v in data["progress"].items() if isinstance(v, int)}})
            elif text:
                job.add({"type": "message", "text": text[:2000]})
        result = await out_task
        code = await job.process.wait()
        snapshot = None
        try:
            parsed = json.loads(result)
            snapshot = str(parsed.get("id")) if isinstance(parsed, dict) and parsed.get("id") else None
        except ValueError:
            pass
        job.done = True
        ok = code == 0 and snapshot is not None
        said = [e["text"] for e in job.events if e["type"] == "message"]
        # why it failed: a refused private address first (the form's guard), else the last word
        why = None if ok else next((t for t in said if "blocked-private" in t), said[-1] if said else None)
        job.add({"type": "done", "ok": ok, "exit": code, "snapshot": snapshot, "why": why})

    async def events(self, job: Job) -> AsyncIterator[dict[str, Any]]:
        """Yield the job's events from the first, then each new one until it is done."""
        sent = 0
        while True:
            waiting = job.changed
            for event in [e for e in job.events if e["seq"] > sent]:
                sent = event["seq"]
                yield event
            if job.done:
                return
            await waiting.wait()

    def stop(self) -> None:
        """End every capture still running, by its process group."""
        for job in self.jobs.values():
            if job.process is not None and job.process.returncode is None:
                try:
                    os.killpg(job.process.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
