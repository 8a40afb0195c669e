"""Bench case: a depth-1 crawl of 200,000 URLs against one of 20,000 (issue 17).

The generated site: `/` links to P pages, each page holds R tiny images, so a depth-1 crawl
fetches 1 + P + P * R URLs, all on one host (one queue: the frontier grows, then drains).
Targets: peak RSS of the big crawl under 120 MB, and its URLs/s within 5 % of the small one's
(issue 17 asks 10 %; medians of runs taken in turns).

    python bench/frontier.py [--quick] [--reps N]   # runs the case alone (medians of N, 3)
    python bench/frontier.py --serve PAGES     # the site (run.py starts it as a process)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import httpsite  # noqa: E402  (bench/httpsite.py, beside this file)
from httpsite import QuietHandler  # noqa: E402

PER_PAGE = 199          # images per page: 200 URLs a page with the page itself
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(56))   # with its path appended: every body differs


class Handler(QuietHandler):
    server: "Server"

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path == "/":
            body = "".join(f'<a href="/p{i}.html">{i}</a>\n' for i in range(self.server.pages)).encode()
            return self.send(b"<!doctype html><title>frontier</title>" + body, "text/html")
        if path.startswith("/p") and path.endswith(".html"):
            i = path[2:-5]
            imgs = "".join(f'<img src="/i{i}-{j}.png">' for j in range(PER_PAGE))
            return self.send(f"<!doctype html><title>p{i}</title>{imgs}".encode(), "text/html")
        if path.startswith("/i") and path.endswith(".png"):
            return self.send(IMAGE + path.encode(), "image/png")
        self.send(b"not found", "text/plain", 404)


class Server(httpsite.Server):
    pages = 0


def serve(pages: int) -> None:
    server = Server(("127.0.0.1", 0), Handler)
    server.pages = pages
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def crawl(urls: int) -> dict[str, float]:
    """Capture a depth-1 crawl of about `urls` URLs; return wall s, URLs/s and peak RSS MB."""
    from run import ARCHIVE, timed

    pages = max(1, round((urls - 1) / (PER_PAGE + 1)))
    site = subprocess.Popen([sys.executable, __file__, "--serve", str(pages)], stdout=subprocess.PIPE, text=True)
    try:
        assert site.stdout is not None
        url = f"http://127.0.0.1:{site.stdout.readline().strip()}/"
        work = Path(tempfile.mkdtemp(prefix="bench-frontier-", dir=os.environ.get("BENCH_TMP")))
        wall, _, rss, out = timed([*ARCHIVE, "capture", "-C", str(work / "coll"), "--json", "--quiet",
                                   "--depth", "1", url])
    finally:
        site.terminate()
        site.wait()
    fetched = json.loads(out)["counts"]["fetched"]
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return {"urls": fetched, "wall": wall, "urls_per_s": fetched / wall, "rss_mb": rss}


def case_frontier(quick: bool = False, reps: int = 1) -> dict[str, object]:
    """The row: the big crawl against the small one, `reps` runs of each taken in turns (so a
    busy spell of the machine falls on both), as medians; the peak RSS is the largest seen."""
    small_n, big_n = (300, 1_500) if quick else (20_000, 200_000)
    runs: dict[str, list[dict[str, float]]] = {"small": [], "big": []}
    for _ in range(max(1, reps)):
        runs["small"].append(crawl(small_n))
        runs["big"].append(crawl(big_n))
    small, big = (_median(runs[k]) for k in ("small", "big"))
    return {"case": f"crawl {big['urls']:.0f} vs {small['urls']:.0f} URLs", "small": small, "big": big,
            "ratio": big["urls_per_s"] / small["urls_per_s"], "reps": max(1, reps),
            "ratios": [b["urls_per_s"] / s["urls_per_s"] for s, b in zip(runs["small"], runs["big"])]}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Return the run of median wall time, with the largest peak RSS of all the runs."""
    middle = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    return {**middle, "rss_mb": max(r["rss_mb"] for r in runs)}


def row(r: dict[str, object]) -> str:
    small, big = r["small"], r["big"]
    assert isinstance(small, dict) and isinstance(big, dict)
    return (f"{r['case']:34} {big['urls_per_s']:>10.0f} {small['urls_per_s']:>10.0f} {r['ratio']:>7.2f}  "
            f"URLs/s; peak RSS {big['rss_mb']:.0f} MB vs {small['rss_mb']:.0f} MB (target < 120 MB, ratio >= 0.95); "
            f"medians of {r.get('reps', 1)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--serve", type=int, metavar="PAGES", help="run the site with PAGES pages")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3, help="runs of each crawl (medians)")
    ap.add_argument("--urls", type=int, help="one crawl of about this many URLs, printed as JSON")
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return 0
    if args.urls:
        print(json.dumps(crawl(args.urls)))
        return 0
    result = case_frontier(args.quick, args.reps)
    print(row(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
