"""Bench case: `archive verify` against `warcio check` and `fastwarc check -p` on three kinds
of body (issue 17): incompressible (random) bytes, many small records, large compressible text.

Each kind is captured once from a generated site into a snapshot; then each checker runs
`reps` times on its WARC files and the medians are compared (whole commands, start-up
included; fastwarc takes one file a run, so its time is the sum over the files).
Targets: ours at least 1.5x warcio's speed and no slower than fastwarc's, on every kind.

    python bench/verifykinds.py [--quick] [--reps 5] [--kind random|small|text]
    python bench/verifykinds.py --serve     # the site (run by the case itself)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from httpsite import QuietHandler, Server  # noqa: E402  (bench/httpsite.py, beside this file)

BIN = Path(sys.executable).parent
KINDS = ("random", "small", "text")
_RANDOM = random.Random(17).randbytes(8 << 20)   # repeated: still incompressible for deflate's 32 KB window
_TEXT = (" ".join(f"line {i} of compressible text, the large body of the verify benchmark"
                  for i in range(20000)) + "\n").encode()
SMALL_PAGE = 4 << 10    # bytes of each small page (half text, half random)


class Handler(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        n = int(query or 0)
        if path in ("/random.bin", "/text.bin"):
            return self.send_big(_RANDOM if path == "/random.bin" else _TEXT, n << 20)
        if path == "/small":
            links = "".join(f'<a href="/s{i}.html">{i}</a>\n' for i in range(n)).encode()
            return self.send(b"<!doctype html><title>small</title>" + links, "text/html")
        if path.startswith("/s") and path.endswith(".html"):
            seed = int(path[2:-5])
            noise = random.Random(seed).randbytes(SMALL_PAGE // 2).hex()[: SMALL_PAGE // 2]
            page = f"<!doctype html><title>s{seed}</title><p>{'small page text ' * (SMALL_PAGE // 32)}{noise}"
            return self.send(page.encode(), "text/html")
        self.send(b"not found", "text/plain", 404)

    def send_big(self, block: bytes, size: int) -> None:
        self.send_stream(size, lambda sent: block)


def serve() -> None:
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def snapshot(kind: str, quick: bool, work: Path) -> Path:
    """Capture one kind of body into a snapshot under `work`; return its folder."""
    from run import ARCHIVE, timed

    mib, pages = (4, 200) if quick else (200, 10_000)
    site = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert site.stdout is not None
        base = f"http://127.0.0.1:{site.stdout.readline().strip()}"
        url, depth = {"random": (f"{base}/random.bin?{mib}", 0), "text": (f"{base}/text.bin?{mib}", 0),
                      "small": (f"{base}/small?{pages}", 1)}[kind]
        _, _, _, out = timed([*ARCHIVE, "capture", "-C", str(work / kind), "--json", "--quiet",
                              "--depth", str(depth), url])
    finally:
        site.terminate()
        site.wait()
    return Path(json.loads(out)["path"])


def _run(cmds: list[list[str]]) -> tuple[float, float]:
    """Run `cmds` one after the other; return (wall s, CPU s of the children) in all."""
    from run import timed

    walls, cpus = zip(*(timed(cmd)[:2] for cmd in cmds))
    return sum(walls), sum(cpus)


def case_kind(kind: str, reps: int, quick: bool = False) -> dict[str, object]:
    """One row: medians of `reps` runs of each checker on one kind of body."""
    work = Path(tempfile.mkdtemp(prefix="bench-verify-", dir=os.environ.get("BENCH_TMP")))
    try:
        snap = snapshot(kind, quick, work)
        warcs = sorted(str(p) for p in (snap / "archive").glob("*.warc.gz"))
        size = sum(os.path.getsize(w) for w in warcs) / 1e6
        ours, warcio, fast = [], [], []
        load = os.getloadavg()[0]
        for _ in range(reps):   # interleaved: a busy moment of the machine costs each the same
            ours.append(_run([[str(BIN / "archive"), "verify", str(snap)]]))
            warcio.append(_run([[str(BIN / "warcio"), "check", *warcs]]))
            fast.append(_run([[str(BIN / "fastwarc"), "check", "-p", "-q", w] for w in warcs]))
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    o, w, f = (statistics.median(r[0] for r in runs) for runs in (ours, warcio, fast))
    oc, wc, fc = (statistics.median(r[1] for r in runs) for runs in (ours, warcio, fast))
    return {"case": f"verify kinds: {kind}", "mb": size, "ours_wall": o, "warcio_wall": w, "fastwarc_wall": f,
            "ours_cpu": oc, "warcio_cpu": wc, "fastwarc_cpu": fc,
            "vs_warcio": w / o, "vs_fastwarc": f / o, "reps": reps,
            "load": max(load, os.getloadavg()[0])}   # other work on the machine: wall times stretch past 2


def case_verifykinds(reps: int = 5, quick: bool = False, kinds: tuple[str, ...] = KINDS) -> list[dict[str, object]]:
    """The rows of the three kinds."""
    return [case_kind(kind, reps, quick) for kind in kinds]


def row(r: dict[str, object]) -> str:
    return (f"{r['case']:34} {r['ours_wall']:>9.2f}s {r['warcio_wall']:>9.2f}s {r['vs_warcio']:>7.2f}  "
            f"speed vs warcio check (target >= 1.5); fastwarc check -p {r['fastwarc_wall']:.2f}s, "
            f"speed vs it {r['vs_fastwarc']:.2f} (target >= 1.0); CPU s ours/warcio/fastwarc "
            f"{r['ours_cpu']:.2f}/{r['warcio_cpu']:.2f}/{r['fastwarc_cpu']:.2f}; {r['mb']:.0f} MB of WARC; "
            f"load average {r['load']:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--serve", action="store_true", help="run the site")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--kind", choices=KINDS, action="append")
    args = ap.parse_args()
    if args.serve:
        serve()
        return 0
    for result in case_verifykinds(args.reps, args.quick, tuple(args.kind or KINDS)):
        print(row(result))
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
