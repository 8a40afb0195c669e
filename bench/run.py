"""`make bench`: our capture and verify against GNU wget and `warcio check`, in the same run.

Each case runs several times; the table shows medians and the ratio ours/theirs. Results go to
stdout and to bench/results.json. `--quick` is the smoke run `make test` does (small sizes).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from browser import browser_rows, case_browser  # noqa: E402  (bench/browser.py, beside this file)
from catalogue import case_catalogue  # noqa: E402
import frontier  # noqa: E402  (bench/frontier.py, issue 17)
import startup  # noqa: E402  (bench/startup.py, issue 17)
import verifykinds  # noqa: E402  (bench/verifykinds.py, issue 17)

ROOT = HERE.parent
BIN = Path(sys.executable).parent
ARCHIVE = [sys.executable, "-m", "archive"]


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    urls: int
    bytes: int


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, float, float, str]:
    """Run `cmd`; return (wall s, CPU s of the child, peak RSS MB, stdout)."""
    # Output to files, not pipes: a pipe nobody reads while we wait would block the child.
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out_f, stderr=err_f)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 8):   # wget exits 8 when some URL answered 404
        raise SystemExit(f"{cmd[0]} failed ({code}): {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode()


class Site:
    """The synthetic site in a process of its own."""

    def __init__(self, pages: int, delay: float, big_mb: float):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "site.py"), "--pages", str(pages),
                                      "--delay", str(delay), "--big-mb", str(big_mb)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{self.proc.stdout.readline().strip()}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def ours(url: str, work: Path, depth: int) -> tuple[Run, Path]:
    coll = work / "coll"
    wall, cpu, rss, out = timed([*ARCHIVE, "capture", "-C", str(coll), "--json", "--quiet",
                                 "--depth", str(depth), url])
    data = json.loads(out)
    return Run(wall, cpu, rss, data["counts"]["fetched"], data["counts"]["bytes"]), Path(data["path"])


def wget(url: str, work: Path, depth: int) -> tuple[Run, Path]:
    cmd = ["wget", "--warc-file", str(work / "wget"), "--no-verbose", "--tries=1", "-P", str(work / "files"),
           "--page-requisites"]
    if depth:
        cmd += ["--recursive", f"--level={depth}"]
    wall, cpu, rss, _ = timed(cmd + [url])
    warc = work / "wget.warc.gz"
    return Run(wall, cpu, rss, count_responses(warc), warc.stat().st_size), warc


def count_responses(warc: Path) -> int:
    from warcio.archiveiterator import ArchiveIterator
    with open(warc, "rb") as f:
        return sum(1 for r in ArchiveIterator(f) if r.rec_type == "response")


def repeat(n: int, fn, *args):  # type: ignore[no-untyped-def]
    runs, artifact = [], None
    for _ in range(n):
        work = Path(tempfile.mkdtemp(prefix="bench-", dir=os.environ.get("BENCH_TMP")))
        run, artifact = fn(*args, work)
        runs.append(run)
    return runs, artifact


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def case_small(pages: int, delay: float, reps: int) -> dict[str, object]:
    site = Site(pages, delay, 1)
    try:
        mine, snapshot = repeat(reps, lambda w: ours(site.url + "/", w, 1))
        theirs, warc = repeat(reps, lambda w: wget(site.url + "/", w, 1))
    finally:
        site.stop()
    urls = mine[0].urls
    ideal = urls * delay / 6
    return {"case": f"small files, {delay * 1000:.0f} ms delay", "urls": urls, "wget_urls": theirs[0].urls,
            "ours_wall": median(mine, "wall"), "wget_wall": median(theirs, "wall"),
            "ours_cpu": median(mine, "cpu"), "wget_cpu": median(theirs, "cpu"),
            "ours_urls_per_s": urls / median(mine, "wall"),
            "wget_urls_per_s": theirs[0].urls / median(theirs, "wall"),
            "ours_pages_per_s": (pages + 1) / median(mine, "wall"),
            "wget_pages_per_s": (pages + 1) / median(theirs, "wall"),
            "ideal_wall": ideal, "snapshot": str(snapshot), "wget_warc": str(warc)}


def case_big(mb: float, reps: int) -> dict[str, object]:
    site = Site(1, 0.0, mb)
    try:
        mine, snapshot = repeat(reps, lambda w: ours(site.url + "/big.bin", w, 0))
        theirs, warc = repeat(reps, lambda w: wget(site.url + "/big.bin", w, 0))
    finally:
        site.stop()
    size = mb * (1 << 20) / 1e6
    return {"case": f"one {mb:.0f} MiB body", "mb": size,
            "ours_wall": median(mine, "wall"), "wget_wall": median(theirs, "wall"),
            "ours_mb_per_s": size / median(mine, "wall"), "wget_mb_per_s": size / median(theirs, "wall"),
            "ours_rss_mb": max(r.rss_mb for r in mine), "wget_rss_mb": max(r.rss_mb for r in theirs),
            "snapshot": str(snapshot), "wget_warc": str(warc)}


def case_verify(label: str, snapshot: Path, reps: int) -> dict[str, object]:
    warcs = sorted((snapshot / "archive").glob("*.warc.gz"))
    size = sum(w.stat().st_size for w in warcs) / 1e6
    mine = [timed([*ARCHIVE, "verify", str(snapshot)]) for _ in range(reps)]
    theirs = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run([str(BIN / "warcio"), "check", *map(str, warcs)], capture_output=True)
        theirs.append(time.perf_counter() - start)
    ours_wall = statistics.median(m[0] for m in mine)
    theirs_wall = statistics.median(theirs)
    return {"case": f"verify {label}", "mb": size, "ours_wall": ours_wall, "warcio_wall": theirs_wall,
            "ours_mb_per_s": size / ours_wall, "warcio_mb_per_s": size / theirs_wall,
            "ours_cpu": statistics.median(m[1] for m in mine)}


def case_cluster(pages: int, delay: float, reps: int) -> dict[str, object]:
    """Captures per minute of `pages` seeds (depth 0) by 1, 2 and 3 workers sharing a local Redis."""
    from datetime import datetime, timezone

    from archive.models import CaptureOptions
    from archive.services.cluster import ClusterSettings, enqueue
    from archive.services.jobs import JobStore, jobs_for
    from archive.services.lease import connect
    from archive.snapshot.store import Collection

    site = Site(pages, delay, 1)
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir=os.environ.get("BENCH_TMP")))
    redis = Redis(work / "redis")
    rates: dict[str, float] = {}
    try:
        client = connect(redis.url)
        for n in (1, 2, 3):
            walls = []
            for rep in range(reps):
                coll = work / f"coll-{n}-{rep}"
                coll.mkdir()   # workers serve an existing collection
                workers = [Worker(redis.url, coll, f"w{i}", work) for i in range(n)]
                try:
                    for w in workers:
                        w.wait_ready()
                    store = Collection(coll)
                    jobs = jobs_for(store.identity(), [f"{site.url}/p{i}.html" for i in range(pages)],
                                    datetime.now(timezone.utc), CaptureOptions(depth=0))
                    start = time.perf_counter()
                    enqueue(jobs, ClusterSettings(redis.url))
                    done = JobStore(client, store.identity())
                    while done.count_done(jobs) < len(jobs):
                        time.sleep(0.02)
                    walls.append(time.perf_counter() - start)
                finally:
                    for w in workers:
                        w.stop()
            rates[str(n)] = pages / statistics.median(walls) * 60
    finally:
        redis.stop()
        site.stop()
    return {"case": f"cluster, {delay * 1000:.0f} ms delay", "seeds": pages, "captures_per_min": rates}


class Redis:
    """A throw-away redis-server on a free loopback port."""

    def __init__(self, folder: Path):
        import socket

        folder.mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


class Worker:
    """One `archive worker` (one capture at a time), started at once, ready after wait_ready()."""

    def __init__(self, broker: str, coll: Path, name: str, work: Path):
        self.log = work / f"{coll.name}-{name}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([*ARCHIVE, "worker", "--broker", broker, "-C", str(coll), "--name", name,
                                          "--concurrency", "1", "--host-slots", "64", "-v"],
                                         stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: worker failed: {self.log.read_text(errors='replace')[-500:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def table(results: list[dict[str, object]]) -> str:
    rows = [f"{'case':34} {'ours':>10} {'theirs':>10} {'ratio':>7}  note"]
    for r in results:
        if "ours_urls_per_s" in r:
            ratio = float(r["ours_urls_per_s"]) / float(r["wget_urls_per_s"])  # type: ignore[arg-type]
            ideal = float(r["ideal_wall"])  # type: ignore[arg-type]
            note = (f"URLs/s; pages/s {r['ours_pages_per_s']:.0f} vs {r['wget_pages_per_s']:.0f}; "
                    f"wall {r['ours_wall']:.2f}s vs {r['wget_wall']:.2f}s; cpu {r['ours_cpu']:.2f}s vs "
                    f"{r['wget_cpu']:.2f}s" + (f"; ideal {ideal:.2f}s, ours/ideal {float(r['ours_wall']) / ideal:.2f}"
                                                if ideal else ""))
            rows.append(f"{r['case']:34} {r['ours_urls_per_s']:>10.0f} {r['wget_urls_per_s']:>10.0f} {ratio:>7.2f}  {note}")
        elif "wget_mb_per_s" in r:
            ratio = float(r["ours_mb_per_s"]) / float(r["wget_mb_per_s"])  # type: ignore[arg-type]
            rows.append(f"{r['case']:34} {r['ours_mb_per_s']:>10.1f} {r['wget_mb_per_s']:>10.1f} {ratio:>7.2f}  "
                        f"MB/s; peak RSS {r['ours_rss_mb']:.0f} MB vs {r['wget_rss_mb']:.0f} MB")
        elif "catalogue_row" in r:
            rows.append(f"{r['case']:34} {r['capture_ratio']:>10.2f} {'':>10} {'':>7}  {r['catalogue_row']}")
        elif "startup_s" in r:
            rows.append(startup.row(r))
        elif "big" in r:
            rows.append(frontier.row(r))
        elif "fastwarc_wall" in r:
            rows.append(verifykinds.row(r))
        elif "captures_per_min" in r:
            rates: dict[str, float] = r["captures_per_min"]  # type: ignore[assignment]
            one = rates["1"]
            rows.append(f"{r['case']:34} {one:>10.0f} {'':>10} {'':>7}  captures/min of {r['seeds']} seeds by "
                        + ", ".join(f"{n} worker{'s' if n != '1' else ''} {v:.0f} ({v / one:.2f}x)"
                                    for n, v in rates.items())
                        + f"; workers on one {os.cpu_count()}-core machine: across machines each adds its "
                          "own cores, until Redis, the shared folder or the per-host limit binds")
        elif "pages_per_min" in r:
            rows.append(browser_rows(r))
        else:
            ratio = float(r["ours_mb_per_s"]) / float(r["warcio_mb_per_s"])  # type: ignore[arg-type]
            rows.append(f"{r['case']:34} {r['ours_mb_per_s']:>10.1f} {r['warcio_mb_per_s']:>10.1f} {ratio:>7.2f}  "
                        f"MB/s vs warcio check ({r['mb']:.0f} MB of WARC)")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes: the smoke run")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    args = ap.parse_args()
    if not shutil.which("wget"):
        raise SystemExit("bench: GNU wget is needed (make bench installs it)")
    pages, big, reps = (10, 16, 1) if args.quick else (200, 1024, args.reps)
    small = case_small(pages, 0.02, reps)
    fast = case_small(pages, 0.0, reps)
    large = case_big(big, reps)
    results = [small, fast, large, case_verify("small files", Path(str(small["snapshot"])), reps),
               case_verify("large body", Path(str(large["snapshot"])), reps)]
    if shutil.which("redis-server"):
        results.append(case_cluster(12 if args.quick else 120, 0.02, reps))
    else:
        print("bench: no redis-server, so no cluster case (make bench installs it)", file=sys.stderr)
    results.append(case_catalogue(Site, timed, ARCHIVE, 100 if args.quick else 10_000, reps))
    results.append(startup.case_startup(Site, timed, ARCHIVE, max(reps, 5)))
    results.append(case_browser(reps, args.quick))
    results.append(frontier.case_frontier(args.quick))
    results += verifykinds.case_verifykinds(1 if args.quick else 5, args.quick)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"medians of {reps}")
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "cores": os.cpu_count(),
                                    "reps": reps, "quick": args.quick, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
