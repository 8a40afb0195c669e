"""Recapture: revisit records for what the collection holds, their dependencies in verify,
export and rm, conditional requests, and what a recapture costs."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from recapture_site import RecaptureSite
from warcio.archiveiterator import ArchiveIterator
from waiting import Gate, fetched, partial_folder, wait_for

from archive.errors import HasDependents
from archive.read.export import export
from archive.read.verify import verify
from archive.snapshot.depends import dependents, remove
from archive.snapshot.reader import Package
from archive.snapshot.store import Collection
from archive.write.capture import capture

ROOT = Path(__file__).resolve().parent.parent
WACZ_TOOL = ROOT / ".venv-pywb" / "bin" / "wacz"


@pytest.fixture
def site():  # type: ignore[no-untyped-def]
    s = RecaptureSite(pages=12)
    yield s
    s.close()


def records(snapshot_path: Path) -> list:  # type: ignore[type-arg]
    """Return (type, uri, headers) of every record of a snapshot, read by warcio."""
    found = []
    for warc in sorted((snapshot_path / "archive").glob("*.warc.gz")):
        with open(warc, "rb") as f:
            for rec in ArchiveIterator(f):
                found.append((rec.rec_type, rec.rec_headers.get_header("WARC-Target-URI"),
                              dict(rec.rec_headers.headers)))
    return found


def archive_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archive", *args], capture_output=True, text=True)


def test_unchanged_bodies_become_revisits_that_name_their_originals(site: RecaptureSite, collection: Path):
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    assert "revisits" not in first.counts
    originals = {uri: h for kind, uri, h in records(first.path) if kind == "response"}
    revisits = {uri: h for kind, uri, h in records(second.path) if kind == "revisit"}
    # every page stayed the same; the changing page and the small one are kept whole
    assert set(revisits) == {f"{site.url}/p/{n}" for n in range(12)} | {site.url + "/"}
    responses = {uri for kind, uri, _ in records(second.path) if kind == "response"}
    assert {site.url + "/changing", site.url + "/small"} <= responses
    for uri, h in revisits.items():
        original = originals[h["WARC-Refers-To-Target-URI"]]
        assert h["WARC-Profile"] == "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
        assert h["WARC-Refers-To"] == original["WARC-Record-ID"]
        assert h["WARC-Refers-To-Date"] == original["WARC-Date"]
        assert h["WARC-Payload-Digest"] == original["WARC-Payload-Digest"]
    # the new response's HTTP head is kept, body not: the block is the head alone
    with Package.open(second.path) as pkg:
        entry = next(e for e in pkg.index() if e.url == site.url + "/p/3")
        assert entry.mime == "warc/revisit" and entry.status == "200"
        with pkg.record(entry.filename, entry.offset) as (resp, stream):
            assert resp.header("ETag") == '"page-3"' and stream.read() == b""
        deps = pkg.metadata()["dependencies"]
    assert [d["snapshot"] for d in deps] == [first.id]
    assert deps[0]["records"] == len(revisits)
    report = verify(second.path)
    assert report.ok, report.problems
    assert report.dependencies == len(revisits)


def test_warcio_checks_the_revisit_records(site: RecaptureSite, collection: Path):
    capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    for warc in (second.path / "archive").glob("*.warc.gz"):
        out = subprocess.run([str(ROOT / ".venv" / "bin" / "warcio"), "check", "-v", str(warc)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout
        assert "revisit" in out.stdout


def test_no_dedup_and_partial_snapshots_are_never_referred_to(site: RecaptureSite, collection: Path):
    capture(site.url + "/", collection, depth=1)
    kept = capture(site.url + "/", collection, depth=1, dedup=False)
    assert "revisits" not in kept.counts
    assert not any(kind == "revisit" for kind, _, _ in records(kept.path))
    # a capture under way (a partial folder) holds nothing a revisit may point at
    other = collection.parent / "other"
    partial = other / ".partial" / "x"
    partial.mkdir(parents=True)
    for sub in ("archive", "indexes"):
        (partial / sub).mkdir()
    (partial / "indexes" / "index.cdx").write_bytes((kept.path / "indexes" / "index.cdx").read_bytes())
    lone = capture(site.url + "/", other, depth=1)
    assert "revisits" not in lone.counts


def test_a_missing_dependency_fails_verify_with_exit_1(site: RecaptureSite, collection: Path):
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    # an archivist deletes the folder by hand, past `archive rm`
    import shutil
    shutil.rmtree(first.path)
    out = archive_cli("verify", "-C", str(collection), second.id[:12])
    assert out.returncode == 1
    assert "dependency missing" in out.stdout and first.id[:12] in out.stdout
    # a dependency record replaced by another record is found too
    report = verify(second.path)
    assert {p.what for p in report.problems} == {"dependency missing"}


def test_a_changed_dependency_record_is_reported(site: RecaptureSite, collection: Path):
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    # the last original in the file gets another record id (a WARC rewritten by hand; records
    # after it would move): the revisit's original is gone
    warc = next((first.path / "archive").glob("*.warc.gz"))
    with Package.open(first.path) as pkg:
        entry = max((e for e in pkg.index() if "/p/" in e.url), key=lambda e: e.offset)
    data = warc.read_bytes()
    member = gzip.decompress(data[entry.offset:entry.offset + entry.length])
    head, sep, rest = member.partition(b"\r\n\r\n")
    old_id = next(line for line in head.split(b"\r\n") if line.startswith(b"WARC-Record-ID:"))
    new_member = gzip.compress(head.replace(old_id, b"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000000>")
                               + sep + rest)
    warc.write_bytes(data[:entry.offset] + new_member + data[entry.offset + entry.length:])
    report = verify(second.path)
    missing = [p for p in report.problems if p.what == "dependency missing"]
    assert [p.uri for p in missing] == [entry.url]
    assert missing[0].offset is not None and missing[0].file.startswith("archive/")


def test_rm_refuses_while_others_depend_and_removes_dependents_when_asked(site: RecaptureSite, collection: Path):
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    assert dependents(Collection(collection), first.id) == [second.path]
    out = archive_cli("rm", "-C", str(collection), "--yes", first.id[:12])
    assert out.returncode == 2 and "refer to its records" in out.stderr and second.path.name in out.stderr
    assert first.path.is_dir() and second.path.is_dir()
    with pytest.raises(HasDependents):
        remove(first.id, collection)
    # a snapshot nobody depends on goes at once
    out = archive_cli("rm", "-C", str(collection), "--yes", second.id[:12])
    assert out.returncode == 0 and not second.path.exists()
    third = capture(site.url + "/", collection, depth=1)
    removed = remove(first.id, collection, with_dependents=True)
    assert removed == [first.path, third.path]
    assert not first.path.exists() and not third.path.exists()


def test_export_makes_a_self_contained_package_that_verifies_alone(site: RecaptureSite, collection: Path,
                                                                  tmp_path: Path):
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    out = tmp_path / "second.wacz"
    export(second.id, collection, wacz=out)
    again = tmp_path / "again.wacz"
    export(second.id, collection, wacz=again)
    assert out.read_bytes() == again.read_bytes()   # reproducible
    names = zipfile.ZipFile(out).namelist()
    assert f"archive/deps-{first.id[:12]}.warc.gz" in names
    assert {"indexes/deps.cdx", "source/datapackage.json", "source/datapackage-digest.json"} <= set(names)
    # the original snapshot is gone: the package alone proves the cited id
    remove(first.id, collection, with_dependents=True)
    report = verify(out, expect=second.id)
    assert report.ok, report.problems
    assert report.snapshot_id == second.id and report.package_digest
    assert report.dependencies > 0
    # a deps record out of place is a failure of the package
    z = zipfile.ZipFile(out)
    broken = tmp_path / "broken.wacz"
    with zipfile.ZipFile(broken, "w") as w:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "source/datapackage.json":
                data = data.replace(b'"depth": 1', b'"depth": 2')
            w.writestr(info, data)
    bad = verify(broken, expect=second.id)
    assert not bad.ok
    assert {"not the package cited", "file checksum mismatch"} <= {p.what for p in bad.problems}
    if WACZ_TOOL.exists():
        checked = subprocess.run([str(WACZ_TOOL), "validate", "-f", str(out)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


def test_export_warc_carries_the_records_depended_on(site: RecaptureSite, collection: Path, tmp_path: Path):
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    out = export(second.id, collection, warc=tmp_path / "second.warc.gz")
    with gzip.open(out) as f:
        recs = [(r.rec_type, dict(r.rec_headers.headers)) for r in ArchiveIterator(f)]
    ids = {h["WARC-Record-ID"] for _, h in recs}
    refs = {h["WARC-Refers-To"] for t, h in recs if t == "revisit"}
    assert refs and refs <= ids
    assert first.path.is_dir()


def test_conditional_requests_get_304_revisits_and_follow_the_stored_links(site: RecaptureSite, collection: Path):
    first = capture(site.url + "/p/1", collection, depth=1)
    assert (site.url + "/") in {uri for kind, uri, _ in records(first.path) if kind == "response"}
    site.requests.clear()
    second = capture(site.url + "/p/1", collection, depth=1, conditional=True)
    sent = dict(site.requests)
    assert sent["/p/1"]["If-None-Match"] == '"page-1"'
    assert sent["/p/1"]["If-Modified-Since"]
    recs = {uri: (kind, h) for kind, uri, h in records(second.path) if kind in ("response", "revisit")}
    kind, h = recs[site.url + "/p/1"]
    assert kind == "revisit"
    assert h["WARC-Profile"] == "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
    # the 304 had no body, yet its links (to /) were followed, from the stored page
    assert site.url + "/" in recs
    report = verify(second.path)
    assert report.ok, report.problems
    with Package.open(second.path) as pkg:
        assert any(p["url"] == site.url + "/p/1" for p in pkg.pages())
        entry = next(e for e in pkg.index() if e.url == site.url + "/p/1")
    with Package.open(first.path) as pkg:
        assert entry.digest == next(e for e in pkg.index() if e.url == site.url + "/p/1").digest
    # so the page is unchanged for diff and the TimeMap
    from archive.read.diff import compare
    changes = {c.url: c.state for c in compare(first.id, second.id, collection).changes}
    assert changes[site.url + "/p/1"] == "unchanged"


def test_a_server_ignoring_validators_still_gets_digest_revisits(collection: Path):
    site = RecaptureSite(pages=3, conditional=False)
    try:
        capture(site.url + "/p/0", collection, depth=0)
        second = capture(site.url + "/p/0", collection, depth=0, conditional=True)
    finally:
        site.close()
    kinds = {uri: (kind, h) for kind, uri, h in records(second.path) if kind in ("response", "revisit")}
    kind, h = kinds[site.url + "/p/0"]
    assert kind == "revisit" and h["WARC-Profile"].endswith("/identical-payload-digest")


def test_recapturing_an_unchanged_site_adds_under_8_percent(collection: Path):
    # 300 pages whose bodies average about 25 KB as sent (gzip-encoded HTML, as servers send it)
    site = RecaptureSite(pages=300, size=25_000, compress=True)
    try:
        first = capture(site.url + "/", collection, depth=1)
        second = capture(site.url + "/", collection, depth=1)
    finally:
        site.close()

    def stored(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    assert 300 <= second.counts["revisits"] <= 301
    assert 23_000 < first.counts["bytes"] / 300 < 28_000
    ratio = stored(second.path) / stored(first.path)
    per_page = stored(second.path) / 300
    print(f"first {stored(first.path)} B, recapture {stored(second.path)} B ({per_page:.0f} B a page): {ratio:.1%}")
    assert ratio < 0.08
    assert verify(second.path).ok


def test_a_signed_snapshot_with_revisits_keeps_its_proof_in_the_self_contained_export(
        site: RecaptureSite, collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from archive.proofs.signing import new_key, sign
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key = new_key().path
    capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    sign(second.path, key=key)
    out = export(second.id, collection, wacz=tmp_path / "signed.wacz")
    report = verify(out, expect=second.id, trust=[key])
    assert report.ok, report.problems
    assert [(p.kind, p.trusted) for p in report.proofs] == [("signature", True)]


def test_cite_and_diff_read_a_revisited_page_from_its_original(site: RecaptureSite, collection: Path):
    from archive.read.cite import citation
    from archive.read.diff import compare
    capture(site.url + "/p/1", collection, depth=0)
    second = capture(site.url + "/p/1", collection, depth=0)
    with Package.open(second.path) as pkg:
        assert next(e for e in pkg.index() if e.url == site.url + "/p/1").mime == "warc/revisit"
    with Package.open(second.path) as pkg:
        assert citation(pkg).title == "Page 1"
    site.bodies[1] = b"A new text of page one. " * 50
    third = capture(site.url + "/p/1", collection, depth=0)
    change = next(c for c in compare(second.id, third.id, collection).changes if c.url == site.url + "/p/1")
    assert change.state == "changed"
    assert any(line.startswith("+A new text of page one.") for line in change.text_diff)
    assert any(line.startswith("-") and not line.startswith("---") for line in change.text_diff)


def test_a_self_contained_export_imports_elsewhere_as_the_snapshot_it_carries(
        site: RecaptureSite, collection: Path, tmp_path: Path):
    from archive.read.cite import cite
    from archive.read.ingest import import_archive
    first = capture(site.url + "/", collection, depth=1)
    second = capture(site.url + "/", collection, depth=1)
    wacz = export(second.id, collection, wacz=tmp_path / "second.wacz")
    elsewhere = tmp_path / "elsewhere"
    imported = import_archive(wacz, elsewhere)
    assert imported.id == second.id
    assert dependents(Collection(elsewhere), first.id) == []   # it holds what it refers to
    report = verify(second.id[:12], elsewhere)
    assert report.ok and report.snapshot_id == second.id and report.dependencies > 0
    assert f"sha256:{second.id}" in cite(second.id[:12], elsewhere)


def test_a_body_is_only_referred_to_where_the_chunk_framing_agrees(site: RecaptureSite, collection: Path):
    # pywb serves a revisit with its original's stored bytes: a chunked original under a head
    # without chunking would replay its framing as content
    chunked = capture(site.url + "/chunked/p/0", collection, depth=0)
    heads = {uri: h for kind, uri, h in records(chunked.path) if kind == "response"}
    with Package.open(chunked.path) as pkg:
        entry = next(e for e in pkg.index() if e.url == site.url + "/chunked/p/0")
        with pkg.record(entry.filename, entry.offset) as (response, _):
            assert response.chunked
    assert site.url + "/chunked/p/0" in heads
    plain = capture(site.url + "/p/0", collection, depth=0)
    kinds = {uri: kind for kind, uri, _ in records(plain.path)}
    assert kinds[site.url + "/p/0"] == "response"   # same payload digest, other framing: kept
    again = capture(site.url + "/chunked/p/0", collection, depth=0)
    kinds = {uri: kind for kind, uri, _ in records(again.path)}
    assert kinds[site.url + "/chunked/p/0"] == "revisit"
    assert verify(again.path).ok


def test_an_index_line_that_lies_is_never_referred_to(site: RecaptureSite, collection: Path):
    first = capture([site.url + "/p/0", site.url + "/p/1"], collection, depth=0)
    # the first snapshot's index now points /p/0's line at the record of /p/1
    index = first.path / "indexes" / "index.cdx"
    lines = index.read_text().splitlines()
    fields = {json.loads(l.split(" ", 2)[2])["url"]: json.loads(l.split(" ", 2)[2]) for l in lines}
    p0, p1 = fields[site.url + "/p/0"], fields[site.url + "/p/1"]
    index.write_text("\n".join(l.replace(f'"offset": "{p0["offset"]}"', f'"offset": "{p1["offset"]}"')
                               for l in lines) + "\n")
    again = capture(site.url + "/p/0", collection, depth=0)
    kinds = {uri: kind for kind, uri, _ in records(again.path)}
    assert kinds[site.url + "/p/0"] == "response"


def test_a_resumed_capture_keeps_the_dependencies_of_the_revisits_it_wrote(collection: Path):
    import os
    import signal
    slow = RecaptureSite(pages=30)
    try:
        first = capture(slow.url + "/", collection, depth=1)
        slow.gate = gate = Gate(12)   # twelve answers, then the capture waits on the server
        proc = subprocess.Popen([sys.executable, "-m", "archive", "capture", "-C", str(collection), "--per-host", "1",
                                 "-q", slow.url + "/"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            wait_for(gate.held.is_set, 60, "the capture to ask for a 13th URL")
            folder = wait_for(lambda: partial_folder(collection), 30, "the partial capture folder")
            wait_for(lambda: fetched(folder) >= 12, 30, "twelve exchanges written")
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            gate.open()
        partial = Collection(collection).partials()[0]
        resumed = capture([], collection, resume=partial.name)
    finally:
        slow.close()
    with Package.open(resumed.path) as pkg:
        deps = pkg.metadata()["dependencies"]
    assert [d["snapshot"] for d in deps] == [first.id]
    written = [h["WARC-Refers-To"] for kind, _, h in records(resumed.path) if kind == "revisit"]
    assert deps[0]["records"] == len(set(written))
    assert verify(resumed.path).ok
    with pytest.raises(HasDependents):
        remove(first.id, collection)
