"""The frontier spills to disk past a small threshold and still keeps each host's order, the
hosts apart (politeness is per host), the seen-set's dedup, and a capture's resume."""
from __future__ import annotations

import json
import random
from collections import deque
from pathlib import Path

import pytest

from archive import capture, verify
from archive.errors import Interrupted
from archive.models import Kind, Link
from archive.write import frontier as frontier_module
from archive.write.frontier import Frontier


def link(host: str, i: int, **kw: object) -> Link:
    return Link(f"http://{host}/p{i}", Kind.PAGE, 1, f"http://{host}/", "a@href", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("memory", [1, 3, 7, 10_000])
def test_random_pushes_and_pops_match_a_plain_fifo_per_host(tmp_path: Path, memory: int) -> None:
    rng = random.Random(memory)
    hosts = [f"h{i}.example" for i in range(5)]
    f = Frontier(tmp_path, memory=memory)
    model: dict[str, deque[Link]] = {h: deque() for h in hosts}
    n = 0
    try:
        for _ in range(3000):
            host = rng.choice(hosts)
            if rng.random() < 0.6:
                n += 1
                new = link(host, n, hops=n % 3, seed=None if n % 2 else f"http://{host}/")
                f.push(new)
                model[host].append(new)
            elif model[host]:
                assert f.pop(host) == model[host].popleft()   # same link, same fields, same order
            else:
                assert not f.has(host)
                with pytest.raises(IndexError):
                    f.pop(host)
            assert len(f) == sum(map(len, model.values()))
            assert set(f.hosts()) == {h for h, q in model.items() if q}
        for host in hosts:
            while model[host]:
                assert f.pop(host) == model[host].popleft()
        assert not f.pending()
        assert f.spilled is (memory < 100)
        assert f.count_for(hosts[0]) > 0 and f.total == n
    finally:
        f.close()
    assert not (tmp_path / "frontier.sqlite3").exists()


@pytest.mark.parametrize("refill", [7, 512])
def test_hosts_read_back_from_disk_in_many_batches_keep_their_order(tmp_path: Path, monkeypatch, refill: int) -> None:
    monkeypatch.setattr(frontier_module, "REFILL", refill)
    f = Frontier(tmp_path, memory=50)
    model: dict[str, deque[Link]] = {"a.example": deque(), "b.example": deque()}
    popped = 0
    try:
        for i in range(4000):
            host = "a.example" if i % 4 else "b.example"
            new = link(host, i, seed=f"http://{host}/" if i % 5 == 0 else None, attempt=i % 2)
            f.push(new)
            model[host].append(new)
            if i % 3 == 0:   # the queue grows while read back: spills and refills interleave
                for h in model:
                    if model[h]:
                        assert f.pop(h) == model[h].popleft()
                        popped += 1
        assert f.spilled and f.in_memory < 200   # most links waited on disk
        for h in model:
            while model[h]:
                assert f.pop(h) == model[h].popleft()
                popped += 1
        assert popped == 4000 and not f.pending()
    finally:
        f.close()


def test_the_seen_set_dedups_across_the_spill(tmp_path: Path) -> None:
    f = Frontier(tmp_path, memory=4)
    urls = [f"http://ex.org/{i}" for i in range(50)]
    for url in urls[:25]:
        f.see(url)
    for url in urls[25:]:
        f.push(Link(url, Kind.REQUISITE))
    assert (tmp_path / "frontier.sqlite3").exists() and f.spilled_seen
    assert all(u in f for u in urls)
    assert "http://ex.org/50" not in f and "http://ex.org/0x" not in f
    f.close()


def test_the_seen_set_on_disk_grows_past_its_bloom_filters_size_and_still_answers_exactly(tmp_path: Path) -> None:
    f = Frontier(tmp_path, memory=10)
    urls = [f"http://ex.org/{i}" for i in range(5000)]
    sizes = set()
    for url in urls:
        f.see(url)
        if f.on_disk is not None:
            sizes.add(f.on_disk.filter.size_in_bits)
    assert len(sizes) >= 3   # the filter was made again, larger, as the set grew
    assert f.on_disk is not None and f.on_disk.count <= f.on_disk.capacity
    assert all(u in f for u in urls)
    assert not any(f"http://ex.org/{i}x" in f for i in range(5000))
    f.close()


def test_a_url_never_seen_is_answered_without_a_query_once_the_seen_set_spilled(tmp_path: Path) -> None:
    f = Frontier(tmp_path, memory=100)
    for i in range(1000):
        f.see(f"http://ex.org/seen/{i}")
    assert f.spilled_seen
    assert f._db is not None
    queries: list[str] = []
    f._db.set_trace_callback(queries.append)
    assert not any(f"http://ex.org/new/{i}" in f for i in range(1000))
    assert len([q for q in queries if q.startswith("SELECT")]) < 50   # the Bloom filter's rare "maybe"
    queries.clear()
    assert all(f"http://ex.org/seen/{i}" in f for i in range(0, 1000, 7))
    assert queries   # a URL on disk is looked up there
    f.close()


@pytest.mark.parametrize("memory", [2, 1000])
def test_a_forgotten_url_can_be_queued_again_whether_spilled_or_not(tmp_path: Path, memory: int) -> None:
    f = Frontier(tmp_path, memory=memory)
    urls = [f"http://ex.org/{i}" for i in range(10)]
    for url in urls:
        f.push(Link(url, Kind.PAGE))
    f.forget(urls[0])
    f.forget(urls[9])
    assert urls[0] not in f and urls[9] not in f and all(u in f for u in urls[1:9])
    f.close()


def test_retries_wait_then_go_to_the_end_of_their_hosts_queue(tmp_path: Path) -> None:
    f = Frontier(tmp_path, memory=2)
    for i in range(5):
        f.push(link("a.example", i))
    f.defer(10.0, link("a.example", 99, attempt=1))
    assert len(f) == 6 and f.next_due() == 10.0
    f.release_due(9.0)
    assert f.next_due() == 10.0
    f.release_due(10.0)
    assert f.next_due() is None
    assert [f.pop("a.example").url[-3:] for _ in range(6)] == ["/p0", "/p1", "/p2", "/p3", "/p4", "p99"]
    f.close()


def test_an_unwritable_spill_folder_is_a_storage_error(tmp_path: Path) -> None:
    from archive.errors import StorageError
    f = Frontier(tmp_path / "missing", memory=1)
    f.push(link("a.example", 1))
    with pytest.raises(StorageError, match="frontier"):
        f.push(link("a.example", 2))


def fetch_order(site) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(h, p) for h, p, _ in site.requests]


def test_a_spilling_capture_fetches_what_and_in_the_order_a_memory_one_does(site, tmp_path, monkeypatch):
    # one connection: the order of fetches is the frontier's order, nothing else
    whole = capture([site.main_url + "/"], tmp_path / "a", connections=1, per_host=1)
    expected = fetch_order(site)
    site.requests.clear()
    spills: list[bool] = []
    close = Frontier.close

    def spy(self: Frontier) -> None:
        spills.append(self.spilled)
        close(self)
    monkeypatch.setattr(frontier_module, "MEMORY", 2)
    monkeypatch.setattr(Frontier, "close", spy)
    spilled = capture([site.main_url + "/"], tmp_path / "b", connections=1, per_host=1)
    assert spills == [True]
    assert fetch_order(site) == expected and len(expected) > 20
    assert spilled.counts == whole.counts
    assert verify(spilled.path).ok
    assert not list((tmp_path / "b" / ".partial").glob("**/frontier.sqlite3"))


def test_a_spilling_capture_resumes(site, collection, monkeypatch):
    monkeypatch.setattr(frontier_module, "MEMORY", 2)
    seen = []

    def stop_after_ten(counts: dict[str, int]) -> None:
        seen.append(counts)
        if counts.get("fetched", 0) >= 10:
            raise KeyboardInterrupt
    with pytest.raises(Interrupted) as stopped:
        capture([site.main_url + "/"], collection, progress=stop_after_ten, connections=2)
    partial = Path(stopped.value.partial)
    before = len(site.requests)
    snap = capture([], collection, resume=partial.name)
    report = verify(snap.path)
    assert report.ok, report.problems
    index = (snap.path / "indexes" / "index.cdx").read_text().splitlines()
    urls = [json.loads(line.split(" ", 2)[2])["url"] for line in index]
    assert len(urls) == len(set(urls)) >= 40   # each URL once: the seen-set held across the spill
    assert site.main_url + "/static/css/site.css" in urls
    again = len(site.requests) - before
    assert again < len(urls)   # what the interrupted run held was not fetched again


def test_the_index_sorted_in_runs_on_disk_equals_one_sorted_in_memory(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from archive.models import Record
    from archive.warc.cdxj import write_index
    rng = random.Random(5)
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    records = [Record(f"http://h{rng.randrange(9)}.example/{rng.randrange(10**6)}?q={i}", when, 200,
                      "text/html", f"sha256:{i:064x}", "f.warc.gz", i * 100, 99) for i in range(1000)]
    assert write_index(records, tmp_path / "a.cdx", chunk=10_000) == 1000
    assert write_index(records, tmp_path / "b.cdx", chunk=7) == 1000
    a = (tmp_path / "a.cdx").read_bytes()
    assert a == (tmp_path / "b.cdx").read_bytes()
    assert a.splitlines() == sorted(a.splitlines())
    assert sorted(tmp_path.iterdir()) == [tmp_path / "a.cdx", tmp_path / "b.cdx"]   # no run file left
