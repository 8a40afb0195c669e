"""A snapshot's capture rows reach the catalogue through a spool (memory, then a temporary
file), so a capture of 200,000 URLs is catalogued in bounded memory; what the catalogue holds
is the same whichever way the rows went."""
from __future__ import annotations

import json
from pathlib import Path

from archive import capture
from archive.snapshot import catalogue_rows
from archive.snapshot.catalogue import open_catalogue
from archive.snapshot.catalogue_rows import CaptureSpool, read_snapshot


def index_lines(snapshot: Path) -> list[dict[str, object]]:
    lines = (snapshot / "indexes" / "index.cdx").read_text().splitlines()
    return [json.loads(line.split(" ", 2)[2]) for line in lines]


def test_a_snapshot_read_through_the_spool_file_equals_one_read_in_memory(demo_snapshot, monkeypatch) -> None:
    in_memory = read_snapshot(demo_snapshot.path)
    assert isinstance(in_memory.captures, CaptureSpool) and in_memory.captures.file is None
    monkeypatch.setattr(catalogue_rows, "SPOOL_ROWS", 3)
    spooled = read_snapshot(demo_snapshot.path)
    assert isinstance(spooled.captures, CaptureSpool) and spooled.captures.batches >= 3
    rows = list(spooled.captures)
    assert rows == list(in_memory.captures) == list(spooled.captures)   # read again: the same rows
    assert [(c.url, c.offset) for c in rows] == [(e["url"], int(e["offset"])) for e in index_lines(demo_snapshot.path)]
    assert (spooled.title, spooled.seeds, spooled.pages, spooled.texts, spooled.has_screenshot) == \
        (in_memory.title, in_memory.seeds, in_memory.pages, in_memory.texts, in_memory.has_screenshot)
    assert spooled.pages > 1 and spooled.seeds


def test_a_capture_whose_rows_spool_to_disk_is_catalogued_whole(site, collection: Path, monkeypatch) -> None:
    monkeypatch.setattr(catalogue_rows, "SPOOL_ROWS", 2)
    snap = capture([site.main_url + "/"], collection)
    entries = index_lines(snap.path)
    assert len(entries) > 20
    with open_catalogue(collection) as catalogue:
        assert catalogue.count() == 1
        for entry in entries:
            found = [(c.url, c.offset, c.payload_digest) for c in catalogue.timemap(str(entry["url"]))]
            assert (entry["url"], int(str(entry["offset"])), entry["digest"]) in found
    assert sorted(p.name for p in collection.iterdir()) == sorted([snap.path.name, ".state"])   # no file left
