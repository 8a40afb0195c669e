"""The collection catalogue at scale (issue 17): a small capture into a collection of 10,000
snapshots against one into a collection of one, `list` (first page), `list URL` and `search`.

The big collection is built quickly and never committed: the small site is captured once, then
derived packages are made from that snapshot (WARC, index and log files hard-linked; a page list
with words of its own, so that search has something to tell apart; datapackage.json written
again, so each has its own id) and the catalogue takes them in as it would any snapshot.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

WORDS = [f"{a}{b}{c}{d}" for a in "bdfgklmnprstvz" for b in "aeiou" for c in "lmnrst" for d in "aeiouy"]


def derive(template: Path, collection: Path, count: int) -> None:
    """Put `count` packages derived from the snapshot `template` into `collection`."""
    from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, sha256_file, write_package
    from archive.snapshot.store import snapshot_name

    data = json.loads((template / DATAPACKAGE).read_text())
    pages = [json.loads(line) for line in (template / "pages" / "pages.jsonl").read_text().splitlines()]
    host = template.name.split("-")[1].replace("_", ":")
    base = datetime.strptime(data["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    rng = random.Random(17)
    work = collection / ".partial"
    work.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        folder = work / f"derive-{i}"
        for path in template.rglob("*"):
            rel = path.relative_to(template)
            if path.is_dir():
                (folder / rel).mkdir(parents=True, exist_ok=True)
            elif path.name not in (DATAPACKAGE, DIGEST_FILE) and rel.as_posix() != "pages/pages.jsonl":
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                os.link(path, folder / rel)
        with open(folder / "pages" / "pages.jsonl", "w", encoding="utf-8") as f:
            f.write(json.dumps(pages[0]) + "\n")
            for page in pages[1:]:
                words = " ".join(rng.choice(WORDS) for _ in range(40))
                f.write(json.dumps({**page, "title": f"Page {i} {page.get('title', '')}",
                                    "text": f"derived copy {i}: {words}"}) + "\n")
        digest, size = sha256_file(folder / "pages" / "pages.jsonl")
        created = base - timedelta(minutes=count - i)
        package = {**data, "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "resources": [{**r, "hash": digest, "bytes": size} if r["path"] == "pages/pages.jsonl" else r
                                 for r in data["resources"]],
                   "archive": {**data["archive"], "started_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
        snapshot_id = write_package(folder, package)
        os.rename(folder, collection / snapshot_name(created, host, snapshot_id))
    shutil.rmtree(work, ignore_errors=True)


def _median(fn: Callable[[], Any], reps: int) -> float:
    walls = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def case_catalogue(site_cls: Any, timed: Callable[..., Any], archive: list[str], count: int,
                   reps: int) -> dict[str, object]:
    """Return the catalogue case's figures: capture into 1 and into `count` snapshots (wall s),
    `list --limit 50`, `list URL` and `search` on the big collection (command wall s, and the
    search query alone in-process)."""
    from archive.read.find import snapshots, timemap
    from archive.snapshot.catalogue import open_catalogue

    site = site_cls(2, 0.0, 1)   # a 3-page site: / and two pages, with their requisites
    work = Path(tempfile.mkdtemp(prefix="bench-catalogue-", dir=os.environ.get("BENCH_TMP")))
    try:
        small, big = work / "small", work / "big"
        def capture(into: Path) -> list[str]:
            return [*archive, "capture", "-C", str(into), "--json", "--quiet", "--depth", "1", site.url + "/"]
        out = timed(capture(small))[3]
        template = Path(json.loads(out)["path"])
        big.mkdir()
        shutil.copytree(template, big / template.name)
        start = time.perf_counter()
        derive(template, big, count - 1)
        derived = time.perf_counter() - start
        start = time.perf_counter()
        with open_catalogue(big) as catalogue:
            indexed = catalogue.count()
        build = time.perf_counter() - start
        # each collection gets the same capture: every body a revisit of the first snapshot's
        into_small = statistics.median(timed(capture(small))[0] for _ in range(reps))
        into_big = statistics.median(timed(capture(big))[0] for _ in range(reps))
        empty = work / "empty"
        empty.mkdir()
        startup = statistics.median(timed([*archive, "list", "-C", str(empty)])[0] for _ in range(reps))
        list_cmd = statistics.median(timed([*archive, "list", "-C", str(big), "--limit", "50"])[0]
                                     for _ in range(reps))
        url = site.url + "/p1.html"
        url_cmd = statistics.median(timed([*archive, "list", "-C", str(big), "--json", url])[0] for _ in range(reps))
        search_cmd = statistics.median(timed([*archive, "search", "-C", str(big), WORDS[7]])[0] for _ in range(reps))
        list_page = _median(lambda: snapshots(big, limit=50), reps * 3)
        list_url = _median(lambda: timemap(url, big), reps * 3)
        with open_catalogue(big) as catalogue:
            hits = (len(catalogue.search(WORDS[7], limit=10_000)), len(catalogue.search("derived copy", limit=100_000)))
            rare = _median(lambda: catalogue.search(WORDS[7]), reps * 3)
            common = _median(lambda: catalogue.search("derived copy"), reps * 3)
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"case": f"catalogue, {count} snapshots", "snapshots": indexed, "derive_s": derived,
            "catalogue_build_s": build, "capture_into_1": into_small, "capture_into_n": into_big,
            "capture_ratio": into_big / into_small, "list_first_page_s": list_page, "list_url_s": list_url,
            "list_cmd_s": list_cmd, "list_url_cmd_s": url_cmd, "command_startup_s": startup,
            "search_cmd_s": search_cmd, "search_word_ms": rare * 1000, "search_common_ms": common * 1000,
            "search_hits": hits, "timemap_captures": count,
            "catalogue_row": (f"capture {into_big:.2f}s into {count} vs {into_small:.2f}s into 1 "
                              f"({into_big / into_small:.2f}x, target <= 1.2); as commands (target < 0.5 s): "
                              f"list first page {list_cmd:.2f}s, list URL ({count} captures, JSON) {url_cmd:.2f}s, "
                              f"beside {startup:.2f}s for an empty collection (in-process {list_page * 1000:.0f} ms, "
                              f"{list_url * 1000:.0f} ms); "
                              f"search {rare * 1000:.1f} ms one word ({hits[0]} pages), {common * 1000:.1f} ms two "
                              f"words ({hits[1]} pages) (target < 100); catalogue build {build:.1f}s")}
