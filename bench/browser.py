"""The browser row of `make bench`: pages per minute and peak memory of the whole process tree
(our Python, Chromium and its helpers, pywb) on the demo site, against a static capture of the
same pages in the same run.

Rows: `capture --browser` when this build has it, and `archive qa` (every page replayed in
Chromium and compared). Targets on 2 cores: at least 20 pages a minute, under 1.5 GB.
Memory is sampled every 0.1 s over every descendant of the command: `rss` sums their resident
sets (shared pages counted in each process, so an upper bound) and `pss` their proportional
shares (each shared page split between its users: the tree's real footprint).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARCHIVE = [sys.executable, "-m", "archive"]
TARGET_PPM, TARGET_MB = 20.0, 1500.0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _memory(root: int) -> tuple[float, float]:
    """Return (RSS MB summed, PSS MB summed) of `root` and every descendant."""
    tree, todo, rss, pss = _children(), [root], 0, 0
    while todo:
        pid = todo.pop()
        todo += tree.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return rss / 1024, pss / 1024


def tree_timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run `cmd`; return (wall s, peak RSS MB, peak PSS MB of its process tree, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        peak_rss = peak_pss = 0.0
        while proc.poll() is None:
            rss, pss = _memory(proc.pid)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.1)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 1):   # qa exits 1 when a page is under --min-match
            raise SystemExit(f"bench: {' '.join(cmd[3:5])} failed ({proc.returncode}): "
                             f"{err.read().decode(errors='replace')[-500:]}")
        return wall, peak_rss, peak_pss, out.read().decode()


class Demo:
    """`archive demo --serve` in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([*ARCHIVE, "demo", "--serve"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()   # "demo site: http://127.0.0.1:PORT/ (and ...)"
        self.url = line.split()[2]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _has_browser_capture() -> bool:
    done = subprocess.run([*ARCHIVE, "capture", "-h"], capture_output=True, text=True)
    return "--browser" in done.stdout


def _capture(url: str, depth: int, browser: bool) -> tuple[float, float, float, int, Path]:
    coll = Path(tempfile.mkdtemp(prefix="bench-browser-", dir=os.environ.get("BENCH_TMP"))) / "coll"
    wall, rss, pss, out = tree_timed([*ARCHIVE, "capture", "-C", str(coll), "--json", "--quiet", "--depth",
                                      str(depth), *(["--browser"] if browser else []), url])
    data = json.loads(out)
    return wall, rss, pss, int(data["counts"].get("pages", 0)), Path(data["path"])


def case_browser(reps: int, quick: bool) -> dict[str, object]:
    """Pages per minute and peak memory of browser capture and of qa, with a static capture of
    the same demo pages as the baseline."""
    depth = 0 if quick else 1
    site = Demo()
    rows: dict[str, dict[str, float]] = {}
    try:
        static = [_capture(site.url, depth, False) for _ in range(reps)]
        pages = static[0][3]
        rows["static capture"] = _row(static, pages)
        if _has_browser_capture():
            browser = [_capture(site.url, depth, True) for _ in range(reps)]
            rows["capture --browser"] = _row(browser, browser[0][3])
            target = browser[0][4]
        else:
            target = static[0][4]
        qa = [tree_timed([*ARCHIVE, "qa", "-C", str(target.parent), "--json", str(target)]) for _ in range(reps)]
        rows["qa"] = _row([(w, r, p, pages, target) for w, r, p, _ in qa], pages)
    finally:
        site.stop()
    return {"case": f"browser, demo site depth {depth}", "pages": pages, "pages_per_min": rows,
            "target_pages_per_min": TARGET_PPM, "target_mb": TARGET_MB}


def _row(runs: list[tuple[float, float, float, int, Path]], pages: int) -> dict[str, float]:
    wall = statistics.median(r[0] for r in runs)
    return {"pages": pages, "wall": wall, "pages_per_min": pages / wall * 60,
            "peak_rss_mb": max(r[1] for r in runs), "peak_pss_mb": max(r[2] for r in runs)}


def browser_rows(r: dict[str, object]) -> str:
    """The table lines of the browser case: each mode against the static capture."""
    rows: dict[str, dict[str, float]] = r["pages_per_min"]  # type: ignore[assignment]
    base = rows["static capture"]["pages_per_min"]
    lines = []
    for name, row in rows.items():
        ok = row["pages_per_min"] >= TARGET_PPM and row["peak_pss_mb"] < TARGET_MB
        lines.append(f"{(r['case'] + ': ' + name)[:34]:34} {row['pages_per_min']:>10.0f} {base:>10.0f} "
                     f"{row['pages_per_min'] / base:>7.2f}  pages/min vs static capture; {row['pages']:.0f} pages "
                     f"in {row['wall']:.1f}s; peak tree PSS {row['peak_pss_mb']:.0f} MB (RSS sum "
                     f"{row['peak_rss_mb']:.0f} MB); target >= {TARGET_PPM:.0f}/min, < {TARGET_MB:.0f} MB: "
                     f"{'met' if ok else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    result = case_browser(1, True)
    print(browser_rows(result))
