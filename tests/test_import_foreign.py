"""Archives made by other tools (issue 16, items 8 and 9): Heritrix WARCs with payload digests
only and dns records without any, a deduplicated crawl whose revisits refer to another file,
GNU wget's --warc-dedup revisits, and ARC files. Each is imported byte for byte, verified with
what its producer left undigested counted, shown, and replayed through pywb where said."""
from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import urllib.request
import zlib
from pathlib import Path

import pytest
from ports import free_port

from archive import verify
from archive.cli import main
from archive.read.ingest import ImportRejected, import_archive
from archive.snapshot.reader import Package
from archive.warc.check import check_warc
from archive.warc.conventions import WGET_REVISIT_BLOCK, DigestPolicy
from archive.web.replay import Replay, ReplayUnavailable, find_wayback

DATA = Path(__file__).resolve().parent / "data" / "ukwa"
IAH_WARC = DATA / "IAH-20080430204825-00000-blackbook-truncated.warc.gz"
IAH_ARC = DATA / "IAH-20080430204825-00000-blackbook-truncated.arc.gz"
BL_FIRST = DATA / "BL-20140325121225068-00000-32090~opera~8443.warc.gz"
BL_SECOND = DATA / "BL-20140325122341434-00000-32090~opera~8443.warc.gz"
COVERED = "their bytes are covered from import on by the package checksums"
WGET = shutil.which("wget") or "/usr/bin/wget"


@pytest.fixture(scope="module")
def wayback() -> Path:
    try:
        return find_wayback()
    except ReplayUnavailable as exc:
        pytest.fail(f"pywb missing: {exc} (make test installs it)")


def cli(capsys, *argv: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    return code, capsys.readouterr().out


def replayed(root: Path, snapshot_id: str, stamp: str, url: str, wayback: Path) -> bytes:
    """Return the body pywb serves for `url` at `stamp` (id_: as archived) from the snapshot."""
    with Replay(root, port=free_port(), wayback=wayback) as replay:
        with urllib.request.urlopen(f"{replay.url}/{snapshot_id}/{stamp}id_/{url}", timeout=30) as resp:
            assert resp.status == 200
            return bytes(resp.read())


def body_of(snapshot: Path, url: str) -> tuple[str, bytes]:
    """Return (14-digit time, body) of the first non-revisit capture of `url` in a snapshot."""
    with Package.open(snapshot) as package:
        entry = next(e for e in package.index() if e.url == url and e.mime != "warc/revisit")
        return entry.timestamp, package.body(entry)


# -- Heritrix, 2008 (Internet Archive) -----------------------------------------------------------
def test_heritrix_2008_warc_imports_with_its_undigested_records_counted(collection, capsys):
    snap = import_archive(IAH_WARC, collection)
    stored = snap.path / "archive" / IAH_WARC.name
    assert stored.read_bytes() == IAH_WARC.read_bytes()   # byte for byte
    code, out = cli(capsys, "verify", str(snap.path), "-C", str(collection))
    assert code == 0 and out.startswith("OK ")
    # 1 dns + 7 request + 7 metadata + 1 warcinfo carry no digest; 7 responses a payload digest
    # (the 8th response is the dns record's); none a block digest (WARC 1.1 makes both optional)
    assert f"16 records carried no digest from their producer and 7 only a payload digest: {COVERED}" in out
    code, out = cli(capsys, "show", str(snap.path), "-C", str(collection))
    assert code == 0
    assert f"warning: 16 records carried no digest from their producer and 7 only a payload digest: {COVERED}" in out
    with Package.open(snap.path) as package:
        urls = {e.url for e in package.index()}
        assert "http://www.archive.org/" in urls and not any(u.startswith("dns:") for u in urls)
        assert package.datapackage()["archive"]["imported"]["software"].startswith("Heritrix")


def test_our_own_rules_still_refuse_a_record_without_a_block_digest():
    """The strict policy (a snapshot we captured) is the default of the check."""
    with open(IAH_WARC, "rb") as f:
        problems = check_warc(f, IAH_WARC.name, True)[3]
    assert {p.what for p in problems} == {"record has no WARC-Block-Digest"}
    assert "dns:www.archive.org" in {p.uri for p in problems}
    foreign = DigestPolicy(foreign=True)
    with open(IAH_WARC, "rb") as f:
        assert check_warc(f, IAH_WARC.name, True, policy=foreign)[3] == []
    assert (foreign.undigested, foreign.payload_only) == (16, 7)


def test_a_changed_byte_under_a_producers_digest_fails_with_its_place(tmp_path, collection, capsys):
    plain = tmp_path / "heritrix.warc"   # uncompressed, so one byte changes one record's payload
    plain.write_bytes(gzip.decompress(IAH_WARC.read_bytes()))
    data = plain.read_bytes()
    at = data.index(b"<title>Internet Archive")
    record = data.rindex(b"WARC/", 0, at)
    damaged = tmp_path / "damaged.warc"
    damaged.write_bytes(data[:at + 1] + b"i" + data[at + 2:])
    with pytest.raises(ImportRejected) as rejected:
        import_archive(damaged, collection)
    problem = next(p for p in rejected.value.problems if p.what == "payload digest mismatch")
    assert problem.offset == record and problem.uri == "http://www.archive.org/index.php"
    assert not collection.exists() or not any(p for p in collection.iterdir() if not p.name.startswith("."))
    # imported intact, then changed in place: the record's digest names it, with its place
    snap = import_archive(plain, collection)
    stored = snap.path / "archive" / plain.name
    stored.write_bytes(damaged.read_bytes())
    code, out = cli(capsys, "verify", str(snap.path), "-C", str(collection))
    assert code == 1 and out.startswith("FAILED ")
    assert f"archive/{plain.name} @{record}: payload digest mismatch [http://www.archive.org/index.php]" in out


def test_a_changed_byte_in_a_record_without_a_digest_fails_by_the_package_checksum(collection, capsys):
    snap = import_archive(IAH_ARC, collection)
    stored = snap.path / "archive" / IAH_ARC.name
    data = bytearray(gzip.decompress(stored.read_bytes()))
    data[data.index(b"robots.txt") + 200] ^= 1   # inside an ARC record: no digest anywhere
    stored.write_bytes(gzip.compress(bytes(data)))
    code, out = cli(capsys, "verify", str(snap.path), "-C", str(collection))
    assert code == 1 and f"archive/{IAH_ARC.name}: file checksum mismatch" in out


# -- a deduplicated crawl, 2014 (British Library): revisits of another file ----------------------
def test_revisits_of_another_file_warn_until_their_originals_are_in_the_collection(collection, capsys, wayback):
    second = import_archive(BL_SECOND, collection)
    code, out = cli(capsys, "verify", str(second.path), "-C", str(collection))
    assert code == 0 and out.startswith("OK ")   # a warning, not corruption
    warnings = [line for line in out.splitlines() if line.startswith("  WARNING ")]
    assert len(warnings) == 55
    assert all(": original not in this collection [" in w for w in warnings)
    assert any("archive/BL-20140325122341434-00000-32090_opera_8443.warc.gz @" in w
               and "[http://data.gov.uk/]" in w for w in warnings)
    code, out = cli(capsys, "show", str(second.path), "-C", str(collection))
    assert ("warning: 55 revisit records refer to originals in other files: `verify` warns of "
            "each whose original is not in this collection") in out
    assert f"warning: 183 records carried no digest from their producer and 7 only a payload digest: {COVERED}" in out

    first = import_archive(BL_FIRST, collection)
    code, out = cli(capsys, "verify", str(second.path), "-C", str(collection))
    assert code == 0 and "WARNING" not in out
    assert "55 revisit records: their originals checked" in out
    # pywb serves the revisit of the second crawl with the first crawl's body
    with Package.open(second.path) as package:
        revisit = next(e for e in package.index() if e.url == "http://data.gov.uk/" and e.mime == "warc/revisit")
    _, original = body_of(first.path, "http://data.gov.uk/")
    assert replayed(collection, second.id, revisit.timestamp, revisit.url, wayback) == original
    # the first crawl is not removed from under the second
    assert main(["rm", first.id, "-C", str(collection), "--yes"]) != 0
    assert second.path.name in capsys.readouterr().err and first.path.is_dir()
    # diff reads each revisit's body from the first crawl
    code, out = cli(capsys, "diff", first.id, second.id, "-C", str(collection))
    assert code == 0 and "0 added, 0 removed, 7 changed, 55 unchanged" in out
    # exported whole, the originals (named by URI and payload digest only) travel with it
    wacz = collection.parent / "second.wacz"
    assert cli(capsys, "export", second.id, "-C", str(collection), "--wacz", str(wacz))[0] == 0
    report = verify(wacz, collection.parent / "elsewhere")
    assert report.ok and report.warnings == [] and report.dependencies == 55, report.problems


# -- GNU wget --warc-dedup ------------------------------------------------------------------------
def wget(site, tmp_path: Path, name: str, *extra: str) -> Path:  # type: ignore[no-untyped-def]
    if not Path(WGET).exists():
        pytest.skip("GNU wget is not installed (`make system` installs it)")
    result = subprocess.run(
        [WGET, f"--warc-file={tmp_path / name}", "--warc-cdx", "-p", "-r", "-l", "1", "--no-verbose",
         "--tries=1", "-e", "robots=off", "-P", str(tmp_path / name), *extra,
         f"{site.main_url}/about.html"], capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 8), result.stderr   # 8: the demo answers some errors on purpose
    return tmp_path / f"{name}.warc.gz"


def test_wget_dedup_warc_imports_under_its_named_convention(site, tmp_path, collection, capsys, wayback):
    first = wget(site, tmp_path, "first")
    second = wget(site, tmp_path, "second", f"--warc-dedup={tmp_path / 'first.cdx'}")
    revisits = gzip.decompress(second.read_bytes()).count(b"WARC-Type: revisit\r\n")
    assert revisits > 3
    # wget's revisit block digest: the SHA-1 of nothing, whatever the block holds
    assert gzip.decompress(second.read_bytes()).count(b"WARC-Block-Digest: sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ") == revisits
    snap = import_archive(second, collection)
    code, out = cli(capsys, "verify", str(snap.path), "-C", str(collection))
    assert code == 0
    assert (f"{revisits} records carried no digest from their producer: {COVERED} "
            f"(accepted by convention: {WGET_REVISIT_BLOCK} x{revisits})") in out
    assert len(re.findall(r"WARNING archive/second\.warc\.gz @\d+: original not in this collection", out)) == revisits
    original = import_archive(first, collection)
    report = verify(snap.path, collection)
    assert report.ok and report.warnings == [] and report.dependencies == revisits
    assert report.policy.conventions == {WGET_REVISIT_BLOCK: revisits}
    # pywb serves a revisit with the body of the first crawl
    with Package.open(snap.path) as package:
        revisit = next(e for e in package.index() if e.mime == "warc/revisit" and e.url.endswith("/about.html"))
    _, body = body_of(original.path, revisit.url)
    assert b"<title>About | Tidewatch Notes</title>" in body
    assert replayed(collection, snap.id, revisit.timestamp, revisit.url, wayback) == body


# -- ARC v1 ----------------------------------------------------------------------------------------
PAGE = b"<!doctype html><html><head><title>An ARC page</title></head><body>archived in 1999</body></html>"


def arc_file(gz: bool) -> bytes:
    """An ARC v1 file made by hand: a version block, then one record per capture, each its own
    gzip member when `gz` (https://archive.org/web/researcher/ArcFileFormat.php)."""
    version = b"1 0 archive-test\nURL IP-address Archive-date Content-type Archive-length\n"
    parts = [b"filedesc://hand.arc 127.0.0.1 19991231235959 text/plain %d\n" % len(version) + version + b"\n"]
    for url, mime, body in (("http://example.org/", "text/html", PAGE),
                            ("http://example.org/robots.txt", "text/plain", b"User-agent: *\n")):
        http = (b"HTTP/1.0 200 OK\r\nContent-Type: " + mime.encode() + b"\r\nContent-Length: %d\r\n\r\n"
                % len(body) + body)
        parts.append(f"{url} 192.0.2.1 19991231235959 {mime} {len(http)}\n".encode() + http + b"\n")
    return b"".join(gzip.compress(p) for p in parts) if gz else b"".join(parts)


@pytest.mark.parametrize("name", ["hand.arc", "hand.arc.gz"])
def test_arc_file_imports_byte_for_byte_and_replays(name, tmp_path, collection, capsys, wayback):
    source = tmp_path / name
    source.write_bytes(arc_file(name.endswith(".gz")))
    snap = import_archive(source, collection)
    assert (snap.path / "archive" / name).read_bytes() == source.read_bytes()
    code, out = cli(capsys, "verify", str(snap.path), "-C", str(collection))
    assert code == 0 and out.startswith("OK ")
    assert f"3 records carried no digest from their producer: {COVERED}" in out
    code, out = cli(capsys, "show", str(snap.path), "-C", str(collection))
    assert "http://example.org/  An ARC page" in out
    with Package.open(snap.path) as package:
        entries = {e.url: e for e in package.index()}
        assert entries["http://example.org/"].filename == name and entries["http://example.org/"].timestamp == "19991231235959"
    assert replayed(collection, snap.id, "19991231235959", "http://example.org/", wayback) == PAGE
    # ARC records are no WARC records: a .warc export is refused, a .wacz keeps the ARC file
    assert main(["export", snap.id, "-C", str(collection), "--warc", str(tmp_path / "out.warc.gz")]) == 2
    assert "is an ARC file, not WARC records" in capsys.readouterr().err
    assert main(["export", snap.id, "-C", str(collection), "--wacz", str(tmp_path / "out.wacz")]) == 0
    assert verify(tmp_path / "out.wacz", collection).ok


def test_real_heritrix_arc_imports(collection):
    snap = import_archive(IAH_ARC, collection)
    report = verify(snap.path, collection)
    assert report.ok and report.records == 9 and report.policy.undigested == 9
    with Package.open(snap.path) as package:
        assert "http://www.archive.org/" in {e.url for e in package.index()}
        assert hashlib.sha256((snap.path / "archive" / IAH_ARC.name).read_bytes()).hexdigest() == \
            hashlib.sha256(IAH_ARC.read_bytes()).hexdigest()


def test_a_capture_without_a_payload_digest_is_neither_same_nor_changed(collection, capsys):
    """An ARC record has no payload digest ("-" in its CDXJ): against the Heritrix WARC of the
    same crawl (sha1) the TimeMap, `list URL` and the web timeline say "unknown", never a
    change or a match they cannot know."""
    from archive.read.find import timemap
    from archive.web.views import timeline

    import_archive(IAH_ARC, collection)
    import_archive(IAH_WARC, collection)
    url = "http://www.archive.org/index.php"
    mementos = timemap(url, collection)
    assert sorted(m.digest for m in mementos)[0] == "-" and len(mementos) == 2
    assert [(m.state, m.changed) for m in mementos] == [("first", None), ("unknown", None)]
    assert [row["state"] for row in timeline(collection, url, "http://replay.localhost:8080")] == ["first", "unknown"]
    code, out = cli(capsys, "list", "-C", str(collection), url)
    assert code == 0 and "unknown" in out and "CHANGED" not in out and "same" not in out


def test_an_imported_arc_is_cited_on_the_command_line_and_on_its_snapshot_page(collection, capsys):
    """An ARC record's header line names its URL and date in ARC terms; cite reads them in
    WARC terms (as warcio's arc2warc gives them), so the citation and the web app's snapshot
    page work for an ARC import as for a WARC one."""
    from archive.web.views import snapshot

    snap = import_archive(IAH_ARC, collection)
    code, out = cli(capsys, "cite", "-C", str(collection), snap.id[:12])
    assert code == 0 and "captured 2008-04-30 20:48:26 UTC" in out and snap.id in out
    page = snapshot(collection, snap.id, "http://replay.localhost:8080")
    assert page["cite_error"] is None and "2008" in page["citations"]["bibtex"]


def test_diff_compares_the_bodies_where_a_record_has_no_payload_digest(tmp_path, collection):
    """ARC records carry no digest ("-"): diff must not call two of them the same because both
    say "-", nor an ARC and the WARC of the same crawl different because one has a digest."""
    from archive.read.diff import compare

    arc = import_archive(IAH_ARC, collection)
    warc = import_archive(IAH_WARC, collection)
    assert {c.state for c in compare(arc.id, warc.id, collection, text=False).changes} == {"unchanged"}
    members, rest = [], IAH_ARC.read_bytes()   # one gzip member a record, as ARC files are
    while rest:
        inflater = zlib.decompressobj(31)
        members.append(inflater.decompress(rest))
        rest = inflater.unused_data
    edited = tmp_path / "edited.arc.gz"   # one byte of one page changed, no digest to say so
    page = next(i for i, m in enumerate(members) if m.startswith(b"http://www.archive.org/index.php "))
    members[page] = members[page].replace(b"<title>Internet Archive", b"<title>internet Archive")
    edited.write_bytes(b"".join(gzip.compress(m) for m in members))
    other = import_archive(edited, collection)
    states = {c.url: c.state for c in compare(arc.id, other.id, collection, text=False).changes}
    assert states.pop("http://www.archive.org/index.php") == "changed"
    assert set(states.values()) == {"unchanged"} and len(states) == 6


def test_qa_evidence_reads_an_imported_arcs_records(collection):
    """`archive qa` gathers what the capture answered from every record: an ARC record's URL
    is on its header line (no WARC-Target-URI), which stopped qa with "invalid URL ''"."""
    from archive.web.evidence import records

    snap = import_archive(IAH_ARC, collection)
    with Package.open(snap.path) as package:
        found, places = records(package)
    assert found["http://www.archive.org/index.php"] == 200 and places == {}
    assert found["http://www.archive.org/images/logoc.jpg"] == 200 and "" not in found


@pytest.mark.parametrize("damage, expected", [
    (lambda data: data[:-40], "ARC record 3 cut short: 39 bytes missing"),   # 1: the version block
    (lambda data: data + b"http://example.org/" + b"a" * 200_000, "ARC record header line over 65536 bytes"),
    (lambda data: data + b"not an ARC header\n", "no ARC record header"),
])
def test_a_broken_arc_file_is_refused_in_one_line(damage, expected, tmp_path, collection, capsys):
    source = tmp_path / "broken.arc"
    source.write_bytes(damage(arc_file(False)))
    assert main(["import", str(source), "-C", str(collection)]) == 1
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and len(err) < 2000
    assert not collection.exists() or [p for p in collection.iterdir() if not p.name.startswith(".")] == []
