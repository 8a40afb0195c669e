"""Issue 13: replay of one snapshot cannot be poisoned through the `all` collection.

An imported package keeps its WARC file names. Before the fix the `all` collection gave pywb
every snapshot's `archive/` folder and bare file names, so pywb opened the first folder holding
a file of the requested name: a package (verifying OK) with a WARC named like a victim's and a
forged response at the victim's record offset, whose `created` sorts its folder first, replayed
its page for the victim's URL under `/all/`. Here with the real `archive serve` and `archive
import`: two snapshots whose WARC files share a name, different records at the same offset.
"""
from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archive import capture
from archive.demo import DemoSite
from archive.formats.urls import surt_key
from archive.read.ingest import import_archive
from archive.snapshot import package as P
from archive.snapshot.store import Collection

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hostile_packages import _get, serving  # noqa: E402
from waiting import wait_for  # noqa: E402

FORGED_TS = "20010101000000"
FORGED = b"<html><head><title>FORGED</title></head><body><h1>FORGED PAGE</h1></body></html>"


def _record(url: str, kind: str, payload: bytes, http: StatusAndHeaders | None = None) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    record = writer.create_warc_record(url, kind, payload=io.BytesIO(payload), http_headers=http,
                                       warc_headers_dict={"WARC-Date": "2001-01-01T00:00:00Z"})
    writer.write_record(record)
    return buf.getvalue()


def _padding(size: int) -> bytes:
    """A resource record of exactly `size` bytes, so the next record starts at that offset."""
    pad = 0
    while True:
        data = _record("http://pad.example/", "resource", b"x" * pad)
        if len(data) == size:
            return data
        pad += size - len(data)
        assert pad >= 0, "offset too small for a padding record"


def _line(url: str, mime: str, status: str, length: int, offset: int, name: str) -> str:
    fields = {"url": url, "mime": mime, "status": status, "length": str(length),
              "offset": str(offset), "filename": name}
    return f"{surt_key(url)} {FORGED_TS} {json.dumps(fields)}"


def forged_package(victim: dict[str, str], folder: Path) -> Path:
    """Build a consistent .wacz whose WARC has the victim's file name and, at the victim's
    offset, a response for the victim's URL dated 2001; `created` sorts its folder first."""
    name, offset, url = victim["filename"], int(victim["offset"]), victim["url"]
    for sub in ("archive", "indexes", "pages"):
        (folder / sub).mkdir(parents=True)
    pad = _padding(offset)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(FORGED)))],
                            protocol="HTTP/1.1")
    response = _record(url, "response", FORGED, http)
    (folder / "archive" / name).write_bytes(pad + response)
    lines = [_line("http://pad.example/", "text/plain", "200", len(pad), 0, name),
             _line(url, "text/html", "200", len(response), offset, name)]
    (folder / "indexes" / "index.cdx").write_text("".join(l + "\n" for l in sorted(lines)))
    (folder / "pages" / "pages.jsonl").write_text(
        json.dumps(P.PAGES_HEADER) + "\n" + json.dumps({"url": url, "ts": "2001-01-01T00:00:00Z"}) + "\n")
    P.write_package(folder, {"profile": "data-package", "wacz_version": "1.1.1", "created": "2000-01-01T00:00:00Z",
                             "software": "other 1", "resources": P.resources(folder, {}), "mainPageURL": url})
    wacz = folder.with_suffix(".wacz")
    with zipfile.ZipFile(wacz, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return wacz


def _seed_line(snapshot_path: Path, url: str) -> tuple[str, dict[str, str]]:
    for line in (snapshot_path / "indexes" / "index.cdx").read_text().splitlines():
        _, stamp, fields = line.split(" ", 2)
        record = json.loads(fields)
        if record["url"] == url and record["mime"] == "text/html":
            return stamp, record
    raise AssertionError(f"no capture of {url}")


def test_all_collection_serves_each_url_from_its_own_snapshot(tmp_path):
    collection = tmp_path / "coll"
    with DemoSite() as site:
        url = site.main_url + "/"
        victim = capture([url], collection, depth=0)
    stamp, line = _seed_line(victim.path, url)
    forger = import_archive(forged_package(line, tmp_path / "forged"), collection)
    # the attack as found: same WARC file name, a record at the victim's offset, folder first
    assert (forger.path / "archive" / line["filename"]).is_file()
    assert Collection(collection).snapshots()[0] == forger.path
    with serving(collection, tmp_path) as base:
        through_all = _get(f"{base}/all/{stamp}id_/{url}")
        own = _get(f"{base}/{victim.id}/{stamp}id_/{url}")
        forged_all = _get(f"{base}/all/{FORGED_TS}id_/{url}")
        forged_own = _get(f"{base}/{forger.id}/{FORGED_TS}id_/{url}")
    genuine = (victim.path / "archive" / line["filename"])
    assert own[0] == 200 and "FORGED" not in own[1], own
    assert through_all[0] == 200 and "FORGED" not in through_all[1], through_all
    assert through_all[1] == own[1] and "Tidewatch" in own[1]
    # each line of the forger resolves to the forger's own file, under both collections
    assert forged_all[0] == 200 and "FORGED PAGE" in forged_all[1], forged_all
    assert forged_own[0] == 200 and "FORGED PAGE" in forged_own[1], forged_own
    assert genuine.is_file()


def test_index_copies_name_each_file_from_the_collection_root(tmp_path):
    """The `all` collection reads one archive path, the collection root, and every line it
    is given names `<snapshot folder>/archive/<file>`; each `/<id>/` reads its own folder."""
    from archive.web.replay import WORKDIR, entries, write_config
    collection = tmp_path / "coll"
    with DemoSite() as site:
        victim = capture([site.main_url + "/"], collection, depth=0)
        _, line = _seed_line(victim.path, site.main_url + "/")
    forger = import_archive(forged_package(line, tmp_path / "forged"), collection)
    workdir = collection / WORKDIR
    config = json.loads(write_config(workdir, entries(Collection(collection), workdir)).read_text())
    colls = config["collections"]
    assert colls["all"]["archive_paths"] == str(collection.resolve()) + "/"
    for snap in (victim, forger):
        assert colls[snap.id]["archive_paths"] == str((snap.path / "archive").resolve()) + "/"
        index = Path(colls["all"]["index_group"][snap.id[:12]])
        names = {json.loads(l.split(" ", 2)[2])["filename"] for l in index.read_text().splitlines()}
        assert names and all(n.startswith(f"{snap.path.name}/archive/") for n in names), names


def test_revisits_take_their_original_from_the_snapshot_depended_on(tmp_path):
    """A revisit's original is named by its own snapshot's folder too: a package holding a
    file of the original's name, with a forged record at its offset, changes nothing, under
    `/all/` or under the revisiting snapshot's id."""
    from recapture_site import RecaptureSite

    from archive.snapshot.reader import Package
    collection = tmp_path / "coll"
    site = RecaptureSite(pages=2)
    try:
        first = capture([site.url + "/"], collection, depth=1)
        second = wait_for(lambda: _later_capture(site.url + "/", collection, first), what="a later second")
    finally:
        site.close()
    url = site.url + "/p/1"
    stamp, revisit = _line_of(second.path, url)
    assert revisit["mime"] == "warc/revisit"
    _, original = _line_of(first.path, url)
    import_archive(forged_package(original, tmp_path / "forged"), collection)
    with Package.open(first.path) as pkg:
        body = pkg.body(next(e for e in pkg.index() if e.url == url)).decode("utf-8")
    with serving(collection, tmp_path) as base:
        through_all = _get(f"{base}/all/{stamp}id_/{url}")
        own = _get(f"{base}/{second.id}/{stamp}id_/{url}")
    assert own == (200, body), own
    assert through_all == (200, body), through_all


def _later_capture(seed: str, collection: Path, first):  # type: ignore[no-untyped-def]
    """Capture again once the clock's second has moved past the first capture's (the
    memento asked for must be the revisit, not its original); None until it has."""
    from datetime import datetime, timezone
    last = max(line.split(" ", 2)[1][:14] for line in (first.path / "indexes" / "index.cdx").read_text().splitlines())
    if datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") <= last:
        return None
    return capture([seed], collection, depth=1)


def _line_of(snapshot_path: Path, url: str) -> tuple[str, dict[str, str]]:
    for line in (snapshot_path / "indexes" / "index.cdx").read_text().splitlines():
        _, stamp, fields = line.split(" ", 2)
        if json.loads(fields)["url"] == url:
            return stamp, json.loads(fields)
    raise AssertionError(f"no line for {url}")


def test_a_folder_name_pywb_would_glob_is_not_replayed(tmp_path):
    """pywb expands `*` in an archive path (PrefixResolver): a snapshot folder put in by hand
    under such a name is left out of replay rather than matching other snapshots' files."""
    import shutil

    from archive.web.replay import WORKDIR, entries
    collection = tmp_path / "coll"
    with DemoSite() as site:
        snap = capture([site.main_url + "/"], collection, depth=0)
    shutil.copytree(snap.path, collection / "2000*")
    found = entries(Collection(collection), collection / WORKDIR)
    assert [e.path for e in found] == [snap.path]
