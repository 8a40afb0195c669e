"""What a capture shows while it runs: a live progress display on a terminal (rich), and with
`-v` one line per URL as it finishes, as wget does.

Both go to stderr, so stdout (and `--json`) holds only the result. URLs come from pages: they
are printed through `printable` and never as rich markup.
"""
from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from .common import human_bytes, plural, printable, raw_stream


class CaptureProgress:
    """A capture's progress callbacks (write.capture's `progress` and `on_url`).

    With a `console` (a terminal), a live display: a bar of URLs done out of those found so far
    with an estimate of the time left, and queued, in flight, bytes, rate and errors. Without
    one, nothing but the `-v` lines. Use as a context manager: the display ends with the block.
    """

    def __init__(self, console: Console | None, stream: TextIO | None = None):
        self.console = console
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.live: Progress | None = None
        if console is not None:
            self.live = Progress(BarColumn(bar_width=16), TaskProgressColumn(),
                                 TextColumn("{task.fields[stats]}", markup=False), TimeRemainingColumn(),
                                 console=console, transient=True, refresh_per_second=10)
            self.task = self.live.add_task("capture", total=None, stats="starting")

    @classmethod
    def on_stderr(cls, live: bool) -> CaptureProgress:
        """Return the progress of a capture run from the command line: live on stderr or not."""
        # rich writes its own control sequences: to the terminal itself, not through SafeStream
        # (every text from a page in the display has been through `printable` already)
        return cls(Console(file=raw_stream(sys.stderr)) if live else None)

    def __enter__(self) -> CaptureProgress:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, counts: dict[str, int]) -> None:
        """Take the counts after a URL (write.capture.Progress) and redraw."""
        if self.live is None:
            return
        self.live.update(self.task, completed=done_of(counts), total=found_of(counts),
                         stats=stats_line(counts, time.monotonic() - self.started))

    def url_done(self, entry: dict[str, Any]) -> None:
        """Log one finished URL (write.capture.OnURL) on stderr: status, size, kind, URL."""
        line = url_line(entry)
        if line is None:
            return
        if self.live is not None:
            self.live.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            self.stream.write(line + "\n")
            self.stream.flush()


def done_of(counts: dict[str, int]) -> int:
    """Return the URLs finished (fetched or failed) in progress counts."""
    return counts.get("fetched", 0) + counts.get("failed", 0)


def found_of(counts: dict[str, int]) -> int:
    """Return the URLs known so far: finished, queued and in flight (the bar's total)."""
    return done_of(counts) + counts.get("queued", 0) + counts.get("in_flight", 0)


def stats_line(counts: dict[str, int], elapsed: float) -> str:
    """Return the figures of the progress display.

    >>> stats_line({"fetched": 3, "queued": 4, "in_flight": 2, "bytes": 5000, "failed": 1}, 2.0)
    '4/10 URLs, 4 queued, 2 in flight, 5.0 KB at 2.5 KB/s, 1 error'
    """
    errors = counts.get("failed", 0) + counts.get("http_errors", 0)
    rate = counts.get("bytes", 0) / elapsed if elapsed > 0 else 0.0
    return (f"{done_of(counts)}/{found_of(counts)} URLs, {counts.get('queued', 0)} queued, "
            f"{counts.get('in_flight', 0)} in flight, {human_bytes(counts.get('bytes', 0))} at "
            f"{human_bytes(rate)}/s, {plural(errors, 'error')}")


def url_line(entry: dict[str, Any]) -> str | None:
    """Return the `-v` line of a finished URL, or None for a skipped one (see show / the log).

    >>> url_line({"url": "http://ex.org/\\x1b[2J", "kind": "page", "outcome": "fetched", "status": 200, "bytes": 1234})
    '200  1.2 KB  page       http://ex.org/\\\\x1b[2J'
    >>> url_line({"url": "http://ex.org/", "kind": "requisite", "outcome": "failed", "reason": "timeout"})
    'failed (timeout)  requisite  http://ex.org/'
    """
    url, kind = printable(str(entry.get("url", ""))), printable(str(entry.get("kind", "")))
    if entry.get("outcome") == "fetched":
        return f"{entry.get('status', '')}  {human_bytes(int(entry.get('bytes') or 0))}  {kind:9}  {url}"
    if entry.get("outcome") == "failed":
        return f"failed ({printable(str(entry.get('reason', '')))})  {kind}  {url}"
    return None
