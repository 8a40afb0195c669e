"""Bench case: what every `archive` command pays before its own work (issue 17), against the
interpreter's own start (`python -c pass`, the floor) in the same run.

Commands timed (wall, medians of `reps`, interleaved): `archive --help`, `archive list` of an
empty collection, `archive verify` of a 3-page snapshot (captured once from the benchmark's
site). Each command loads only what it uses (tests/test_startup.py checks which libraries).

    python bench/startup.py [--reps 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
COMMANDS = ("help", "list_empty", "verify_small")


def case_startup(site_cls: Any, timed: Callable[..., Any], archive: list[str], reps: int) -> dict[str, object]:
    """Return the start-up case's figures: median wall seconds of the interpreter alone and of
    each command in COMMANDS."""
    site = site_cls(2, 0.0, 1)
    work = Path(tempfile.mkdtemp(prefix="bench-startup-", dir=os.environ.get("BENCH_TMP")))
    try:
        out = timed([*archive, "capture", "-C", str(work / "small"), "--json", "--quiet", "--depth", "1",
                     site.url + "/"])[3]
        snapshot = json.loads(out)["path"]
        (work / "empty").mkdir()
        runs: dict[str, list[str]] = {
            "python": [sys.executable, "-c", "pass"],
            "help": [*archive, "--help"],
            "list_empty": [*archive, "list", "-C", str(work / "empty")],
            "verify_small": [*archive, "verify", snapshot],
        }
        walls: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(reps):
            for name, cmd in runs.items():   # interleaved: a busy moment weighs on every command alike
                walls[name].append(timed(cmd)[0])
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: statistics.median(w) for name, w in walls.items()}
    return {"case": "command start-up", "startup_s": medians, "reps": reps}


def row(r: dict[str, object]) -> str:
    m: dict[str, float] = r["startup_s"]  # type: ignore[assignment]
    return (f"{r['case']:34} {m['help']:>9.2f}s {m['python']:>9.2f}s {m['help'] / m['python']:>7.2f}  "
            f"archive --help vs python -c pass; archive list of an empty collection {m['list_empty']:.2f}s, "
            f"archive verify of a 3-page snapshot {m['verify_small']:.2f}s")


def main() -> int:
    from run import ARCHIVE, Site, timed   # bench/run.py, beside this file

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    result = case_startup(Site, timed, ARCHIVE, args.reps)
    print(row(result))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
