"""verify recomputes every digest and checksum and reports each changed byte with its place."""
from __future__ import annotations

import gzip
import json
import shutil
import zlib

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive import verify
from archive.errors import AmbiguousSnapshot, NotASnapshot, SnapshotNotFound
from archive.snapshot.store import Collection


@pytest.fixture
def snapshot(capture_page):
    return capture_page("/about.html")


def test_intact_snapshot_verifies(snapshot):
    report = verify(snapshot.path)
    assert report.ok, report.problems
    assert report.snapshot_id == snapshot.id
    assert report.files == 4 and report.records > 4


def offsets_for(size: int, count: int = 24) -> list[int]:
    step = max(1, size // count)
    return sorted({0, 1, size // 2, size - 1, *range(0, size, step)})


def test_every_flipped_byte_in_every_file_is_reported(snapshot):
    files = [p for p in snapshot.path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"datapackage.json", "datapackage-digest.json", "index.cdx",
                                       "pages.jsonl", "capture.jsonl"}
    located = 0
    flips = 0
    for path in files:
        original = path.read_bytes()
        rel = path.relative_to(snapshot.path).as_posix()
        for offset in offsets_for(len(original)):
            damaged = bytearray(original)
            damaged[offset] ^= 0x01
            path.write_bytes(bytes(damaged))
            try:
                report = verify(snapshot.path)
            finally:
                path.write_bytes(original)
            flips += 1
            assert not report.ok, f"flip at {rel}:{offset} not detected"
            assert any(p.file == rel or p.file.startswith("datapackage") for p in report.problems)
            if rel.endswith(".warc.gz") and any(p.offset is not None for p in report.problems):
                located += 1
    assert flips > 100
    assert located > 10, "WARC damage should be located at a record offset"
    assert verify(snapshot.path).ok


def test_record_damage_names_offset_and_uri(snapshot):
    """A record whose body changed (and was re-compressed cleanly) is named by offset and URI."""
    warc = next((snapshot.path / "archive").glob("*.warc.gz"))
    data = warc.read_bytes()
    with open(warc, "rb") as f:
        it = ArchiveIterator(f, no_record_parse=True)
        for rec in it:
            if rec.rec_type == "response":
                uri = rec.rec_headers.get_header("WARC-Target-URI")
                rec.raw_stream.read()
                off, length = it.get_record_offset(), it.get_record_length()
                break
    member = bytearray(zlib.decompress(data[off:off + length], zlib.MAX_WBITS + 16))
    member[-5] ^= 0x01   # the body's last byte, before the record's closing CRLF CRLF
    warc.write_bytes(data[:off] + gzip.compress(bytes(member)) + data[off + length:])
    report = verify(snapshot.path)
    found = {p.what: p for p in report.problems}
    for what in ("block digest mismatch", "payload digest mismatch"):
        assert found[what].offset == off and found[what].uri == uri
        assert str(found[what]).startswith(f"archive/{warc.name} @{off}: {what} [{uri}]: expected sha256:")
    assert "file checksum mismatch" in found


def test_unlisted_and_missing_files(snapshot):
    (snapshot.path / "logs" / "extra.txt").write_text("added later")
    report = verify(snapshot.path)
    assert any(p.what == "file not listed in datapackage.json" for p in report.problems)
    (snapshot.path / "logs" / "extra.txt").unlink()
    (snapshot.path / "pages" / "pages.jsonl").unlink()
    report = verify(snapshot.path)
    assert sorted(p.what for p in report.problems) == ["listed file missing",
                                                        "missing (WACZ 1.1.1 requires pages/pages.jsonl)"]


def test_reserialized_datapackage_is_not_canonical(snapshot):
    path = snapshot.path / "datapackage.json"
    path.write_text(json.dumps(json.loads(path.read_text())))
    whats = [p.what for p in verify(snapshot.path).problems]
    assert any("canonical" in w for w in whats) and "package digest mismatch" in whats


def test_truncated_warc_is_reported_not_raised(snapshot):
    warc = next((snapshot.path / "archive").glob("*.warc.gz"))
    data = warc.read_bytes()
    warc.write_bytes(data[: len(data) // 2])
    report = verify(snapshot.path)
    assert not report.ok
    assert any("unreadable" in p.what or "mismatch" in p.what for p in report.problems)


def test_not_a_snapshot(tmp_path):
    with pytest.raises(NotASnapshot):
        verify(tmp_path)


def test_resolve_by_id_prefix_and_ambiguity(capture_page, collection):
    first = capture_page("/contact.html")
    second = capture_page("/moved.html")
    store = Collection(collection)
    assert store.resolve(first.id) == first.path
    assert store.resolve(first.id[:8]) == first.path
    assert store.resolve("sha256:" + second.id) == second.path
    with pytest.raises(SnapshotNotFound):
        store.resolve("0123456789abcdef" if not first.id.startswith("0123") else "fedcba9876")
    # make an ambiguous prefix by copying a snapshot under another name
    shutil.copytree(first.path, collection / "copy-of-first")
    with pytest.raises(AmbiguousSnapshot) as info:
        store.resolve(first.id[:6])
    assert len(info.value.candidates) == 2
