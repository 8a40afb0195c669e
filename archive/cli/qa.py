"""`archive qa`: how faithfully a snapshot replays, page by page."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from .common import command, emit_capture, error, plural, printable, write_json

DEFAULT_MIN_MATCH = 0.95   # archive.web.qa.DEFAULT_MIN_MATCH, kept here so `-h` imports no browser code


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `qa` to the `archive` parser."""
    cmd = command(sub, common, "qa", _cmd_qa, "replay a snapshot in Chromium and compare with the capture",
                  "Replay each page of a snapshot through the local pywb in headless Chromium (every "
                  "other address refused) and compare with the capture: screenshot (share of equal "
                  "pixels), visible text (similarity) and subresources (answered well or badly at "
                  "capture and at replay). Writes qa.json and difference images beside the snapshot, "
                  "in <collection>/.qa/<snapshot id>/ (or --out); exits 1 when a page falls under "
                  "--min-match.")
    cmd.add_argument("snapshot", metavar="SNAPSHOT", help="folder, id or unique id prefix (6+ hex digits)")
    add_options(cmd, "--timeout")
    cmd.add_argument("--out", type=Path, metavar="DIR",
                     help="where qa.json and the images go (default: <collection>/.qa/<snapshot id>/)")


def add_options(cmd: argparse.ArgumentParser, timeout_flag: str = "--qa-timeout") -> None:
    """Add the options `qa` shares with `capture --qa` (where the timeout is `--qa-timeout`)."""
    cmd.add_argument("--min-match", type=share, default=DEFAULT_MIN_MATCH, metavar="SHARE",
                     help="a page whose screenshot (or browser text) match is under this fails (0..1, "
                          "default: %(default)s)")
    cmd.add_argument(timeout_flag, dest="qa_timeout", type=seconds, default=30.0, metavar="SECONDS",
                     help="bound on each replayed page's load (default: %(default)s)")


def seconds(value: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {value!r}")
    return number


def share(value: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {value!r}")
    return number


def _cmd_qa(args: argparse.Namespace) -> int:
    return run_qa(args.snapshot, args.collection, args.format, min_match=args.min_match,
                  timeout=args.qa_timeout, out=args.out)


def run_qa(snapshot: str, collection: Path | None, fmt: str, *, min_match: float, timeout: float,
           out: Path | None = None) -> int:
    """Run the check, print its report; return 0, or 1 when a page falls under `min_match`."""
    from archive.web.qa import qa

    report = qa(snapshot, collection, out=out, min_match=min_match, timeout=timeout)
    if fmt == "json":
        write_json(report.to_json())
    else:
        print_qa(report, sys.stdout)
    return 0 if report.ok else 1


def after_capture(snap: Any, verified: Any, args: argparse.Namespace, proofs: list[Any] | None,
                  failed: Any) -> int:
    """`capture --qa`: check the new snapshot, then print it with the check (one JSON document
    in JSON mode). A check that cannot run (no pywb, no Chromium) is one error line after the
    snapshot's summary: the snapshot is kept. Return the exit code: the proof's failure first,
    then 1 when verification failed or a page fell under --min-match."""
    from archive.errors import ArchiveError
    from archive.web.qa import qa

    try:
        report = qa(str(snap.path), snap.path.parent, min_match=args.min_match, timeout=args.qa_timeout)
    except ArchiveError as exc:
        emit_capture(snap, verified, args.format, proofs)
        error(f"qa: {exc}; the snapshot {snap.short_id} is kept (check it later with archive qa)")
        return exc.exit_code
    code = emit_capture(snap, verified, args.format, proofs, qa=report.to_json())
    if args.format != "json":
        print_qa(report, sys.stdout)
    if failed is not None:
        error(f"{failed}; the snapshot {snap.short_id} is kept without that proof "
              "(add it later with archive sign / archive timestamp)")
        return int(failed.exit_code)
    return code or (0 if report.ok else 1)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.2f} %"


def print_qa(report: Any, out: TextIO) -> None:
    """Print a qa report: a table per page, then one summary line."""
    out.write(f"qa {report.snapshot_id[:12]}  {report.folder}\n")
    for page in report.pages:
        subs = page.subresources
        answered = (f"  ({page.status.capture or 'not captured'} at capture, "
                    f"{page.status.replay or 'failed'} at replay)" if page.status else "")
        rows = [("page", printable(page.url) + answered),
                ("screenshot", f"{_percent(page.screenshot_match)} equal pixels  ({page.diff_image})"
                 if page.screenshot_match is not None else
                 "capture screenshot not compared" if page.capture_screenshot else "no capture screenshot"),
                ("text", f"{_percent(page.text_match)} similar (capture text from {page.text_source})"
                 if page.text_match is not None else "no capture text"),
                ("subresources", f"{len(subs)} asked at replay: at capture {sum(s.ok_capture for s in subs)} well, "
                                 f"{sum(not s.ok_capture for s in subs)} badly; at replay {sum(s.ok_replay for s in subs)} "
                                 f"well, {sum(not s.ok_replay for s in subs)} badly")]
        for s in page.broken[:20]:
            rows.append(("broken", f"{printable(s.url)} ({s.capture} at capture, "
                                   f"{'failed' if s.replay is None else s.replay} at replay)"))
        if page.refused:
            rows.append(("refused", f"{plural(len(page.refused), 'request')} to elsewhere than the replay, "
                                    f"e.g. {printable(page.refused[0])}"))
        if page.error:
            rows.append(("error", printable(page.error)))
        rows.append(("result", "PASS" if page.passes(report.min_match) else f"FAIL (under {report.min_match:g})"))
        out.write("\n" + "".join(f"  {name:<13}{value}\n" for name, value in rows))
    failed = sum(not p.passes(report.min_match) for p in report.pages)
    out.write(f"\n{'OK' if report.ok else 'FAILED'}: {plural(len(report.pages), 'page')} checked, "
              f"{failed} under {report.min_match:g}; qa.json and images in {report.out}\n")
