"""import: WARCs and WACZs made elsewhere become verified snapshots; damaged ones leave nothing."""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive import verify
from archive.cli import main
from archive.errors import DiskFull
from archive.read import ingest
from archive.read.export import export_wacz
from archive.read.ingest import AlreadyImported, ImportRejected, import_archive
from archive.snapshot.reader import Package

ROOT = Path(__file__).resolve().parent.parent
PYWB_BIN = ROOT / ".venv-pywb" / "bin"
WGET = shutil.which("wget") or "/usr/bin/wget"


def leftovers(collection: Path) -> list[Path]:
    return sorted(collection.rglob("*")) if collection.exists() else []


def wget_warc(site, tmp_path: Path, *extra: str) -> Path:
    """Crawl the demo site's about page with GNU wget, one link deep, into tmp_path/wget.warc.gz."""
    if not Path(WGET).exists():
        pytest.skip("GNU wget is not installed (`make system` installs it)")
    result = subprocess.run(
        [WGET, f"--warc-file={tmp_path / 'wget'}", "-p", "-r", "-l", "1", "--no-verbose",
         "--tries=1", "-e", "robots=off", "-P", str(tmp_path / "files"), *extra,
         f"{site.main_url}/about.html"], capture_output=True, text=True, timeout=60)
    # 8: some URL answered an HTTP error, which the demo site does on purpose
    assert result.returncode in (0, 8), result.stderr
    return tmp_path / "wget.warc.gz"


def test_wget_warc_becomes_a_verified_snapshot(site, tmp_path, collection):
    # Scripts are left out: the demo serves them chunked, see the next test.
    source = wget_warc(site, tmp_path, "--reject", "js")
    snap = import_archive(source, collection)
    report = verify(snap.path)
    assert report.ok, report.problems
    assert report.snapshot_id == snap.id
    about = f"{site.main_url}/about.html"
    with Package.open(snap.path) as package:
        entries = {e.url: e for e in package.index()}
        assert entries[about].status == "200" and entries[about].mime == "text/html"
        assert entries[about].digest.startswith("sha1:")   # as wget wrote it
        pages = {p["url"]: p for p in package.pages()}
        assert pages[about]["title"] == "About | Tidewatch Notes" and pages[about]["status"] == 200
        with package.record(entries[about].filename, entries[about].offset) as (resp, _):
            assert resp.status == 200
        data = package.datapackage()
        assert data["mainPageURL"] == about and snap.seeds == (about,)
        assert data["archive"]["imported"]["software"].startswith("Wget/")
        log = json.loads(package.read("logs/import.jsonl"))
    assert (snap.path / "archive" / "wget.warc.gz").read_bytes() == source.read_bytes()
    assert log["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert log["counts"]["response_records"] == log["counts"]["request_records"] > 20
    assert not (collection / ".partial").exists()


def test_wget_chunked_records_import(site, tmp_path, collection):
    snap = import_archive(wget_warc(site, tmp_path), collection)
    assert verify(snap.path).ok


def test_exported_wacz_imports_with_the_same_id(demo_snapshot, tmp_path, collection):
    with Package.open(demo_snapshot.path) as package:
        wacz = export_wacz(package, tmp_path / "demo.wacz")
    snap = import_archive(wacz, collection)
    assert snap.id == demo_snapshot.id and snap.seeds == demo_snapshot.seeds
    assert verify(snap.path, expect=demo_snapshot.id).ok
    for path in demo_snapshot.path.rglob("*"):
        if path.is_file():
            assert (snap.path / path.relative_to(demo_snapshot.path)).read_bytes() == path.read_bytes()
    with pytest.raises(AlreadyImported, match=demo_snapshot.id[:12]):
        import_archive(wacz, collection)
    assert sorted(p.name for p in collection.iterdir()) == [".state", snap.path.name]   # no .partial left


def test_py_wacz_package_imports(demo_snapshot, tmp_path, collection):
    tool = PYWB_BIN / "wacz"
    if not tool.exists():
        pytest.skip(f"{tool} is missing: `make pywb` installs py-wacz in .venv-pywb")
    warc = next((demo_snapshot.path / "archive").glob("*.warc.gz"))
    wacz = tmp_path / "made-by-py-wacz.wacz"
    pages = demo_snapshot.path / "pages" / "pages.jsonl"   # WACZ 1.1.1 requires a page list
    result = subprocess.run([tool, "create", "-p", pages, "-o", wacz, warc], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    snap = import_archive(wacz, collection)
    with zipfile.ZipFile(wacz) as zf:
        assert snap.id == hashlib.sha256(zf.read("datapackage.json")).hexdigest()
    assert verify(snap.path).ok
    with Package.open(snap.path) as package:
        assert package.datapackage()["software"].startswith("py-wacz")
        assert "indexes/index.cdx.gz" in package.names()
        assert demo_snapshot.seeds[0] in {e.url for e in package.index()}


def test_bare_warc_names_stay_unique_in_the_collection(demo_snapshot, tmp_path, collection):
    warc = next((demo_snapshot.path / "archive").glob("*.warc.gz"))
    first = import_archive(warc, collection, import_id="first")
    second = import_archive(warc, collection, import_id="second")
    assert first.id != second.id   # a new package each time: created differs, WARC bytes do not
    assert [p.name for p in (first.path / "archive").iterdir()] == [warc.name]
    assert [p.name for p in (second.path / "archive").iterdir()] == [f"import-second-{warc.name}"]
    assert verify(first.path).ok and verify(second.path).ok
    with Package.open(second.path) as package:
        assert {e.filename for e in package.index()} == {f"import-second-{warc.name}"}
        assert {p["url"] for p in package.pages()} >= set(demo_snapshot.seeds)


def test_failures_after_the_partial_folder_leave_nothing(demo_snapshot, collection, monkeypatch):
    warc = next((demo_snapshot.path / "archive").glob("*.warc.gz"))

    def disk_full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(ingest, "write_index", disk_full)
    with pytest.raises(DiskFull):
        import_archive(warc, collection)
    assert leftovers(collection) == []
    monkeypatch.undo()

    real = ingest.datapackage
    def one_file_unlisted(*args, **kwargs):  # type: ignore[no-untyped-def]
        package = real(*args, **kwargs)
        package["resources"] = package["resources"][1:]
        return package
    monkeypatch.setattr(ingest, "datapackage", one_file_unlisted)
    with pytest.raises(ImportRejected, match="not listed"):   # the last check before publishing
        import_archive(warc, collection)
    assert leftovers(collection) == []


# -- damaged inputs ------------------------------------------------------------------------------
def flip_payload_byte(warc: Path, dest: Path) -> None:
    """Copy a WARC with one byte of a response body changed, its gzip member rebuilt cleanly."""
    data = warc.read_bytes()
    with open(warc, "rb") as f:
        iterator = ArchiveIterator(f)
        for record in iterator:
            if record.rec_type == "response":
                record.content_stream().read()
                start, length = iterator.get_record_offset(), iterator.get_record_length()
                break
    member = bytearray(zlib.decompress(data[start:start + length], zlib.MAX_WBITS + 16))
    member[-5] ^= 0x01   # the body's last byte, before the record's closing CRLF CRLF
    dest.write_bytes(data[:start] + gzip.compress(bytes(member)) + data[start + length:])


def test_warc_with_a_changed_payload_is_rejected(demo_snapshot, tmp_path, collection):
    source = tmp_path / "damaged.warc.gz"
    flip_payload_byte(next((demo_snapshot.path / "archive").glob("*.warc.gz")), source)
    with pytest.raises(ImportRejected) as err:
        import_archive(source, collection)
    whats = {p.what for p in err.value.problems}
    assert {"block digest mismatch", "payload digest mismatch"} <= whats
    assert err.value.exit_code == 1 and "damaged.warc.gz" in str(err.value)
    assert leftovers(collection) == []


@pytest.fixture
def demo_wacz(demo_snapshot, tmp_path) -> Path:
    with Package.open(demo_snapshot.path) as package:
        return export_wacz(package, tmp_path / "demo.wacz")


def truncate(wacz: Path) -> None:
    wacz.write_bytes(wacz.read_bytes()[: wacz.stat().st_size // 2])


def edit_pages(wacz: Path) -> None:
    """Rebuild the zip with one file changed: the zip is sound, the package's checksum is not."""
    with zipfile.ZipFile(wacz) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(wacz, "w") as zf:
        for info, data in members:
            zf.writestr(info, data.replace(b"Tidewatch", b"Tideshift") if "pages" in info.filename else data)


def flip_stored_byte(wacz: Path) -> None:
    """Change a byte inside the stored WARC member: zipfile's CRC check trips on it."""
    with zipfile.ZipFile(wacz) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(".warc.gz"))
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray(wacz.read_bytes())
    data[start + info.file_size // 2] ^= 0x01
    wacz.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, expected", [(truncate, "neither a snapshot folder nor a .wacz"),
                                              (edit_pages, "file checksum mismatch"),
                                              (flip_stored_byte, "unreadable")])
def test_damaged_wacz_is_rejected(demo_wacz, collection, damage, expected):
    damage(demo_wacz)
    with pytest.raises(ImportRejected) as err:
        import_archive(demo_wacz, collection)
    assert any(expected in p.what for p in err.value.problems), err.value.problems
    assert leftovers(collection) == []


def test_cli_import(demo_wacz, demo_snapshot, collection, capsys):
    assert main(["import", str(demo_wacz), "-C", str(collection), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == demo_snapshot.id
    edit_pages(demo_wacz)
    assert main(["import", str(demo_wacz), "-C", str(collection / "other")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("archive: error: ") and "rejected" in err and err.count("\n") == 1


# -- sample files shipped by installed packages ---------------------------------------------------
def sample_archives() -> dict[str, Path]:
    """Return the .warc/.warc.gz/.wacz files installed packages ship (pywb's sample_archive)."""
    found: dict[str, Path] = {}
    for venv in (ROOT / ".venv", ROOT / ".venv-pywb"):
        for pattern in ("*.warc", "*.warc.gz", "*.wacz"):
            for path in sorted(venv.rglob(pattern)) if venv.is_dir() else []:
                found.setdefault(path.name, path)
    return found


@pytest.mark.parametrize("name, software, url", [
    ("example-wget-1-14.warc.gz", "Wget/1.14", "http://example.com/"),
    ("example.warc.gz", None, "http://example.com?example=1")])
def test_sample_warcs_from_installed_packages(name, software, url, collection):
    sample = sample_archives().get(name)
    if sample is None:
        pytest.skip(f"no installed package ships {name} (pywb's sample_archive)")
    snap = import_archive(sample, collection)
    report = verify(snap.path)
    assert report.ok
    with Package.open(snap.path) as package:
        assert url in {e.url for e in package.index()}
        if software:
            assert package.datapackage()["archive"]["imported"]["software"].startswith(software)
    if software is None:   # no WARC-Block-Digest anywhere (WARC 1.1 makes it optional): counted
        assert (report.policy.undigested, report.policy.payload_only) == (4, 2)


def test_py_wacz_package_of_an_uncompressed_warc_imports(demo_snapshot, tmp_path, collection):
    """cdxj-indexer's length of a record in an uncompressed WARC leaves out its final CRLF CRLF:
    verify's index check accepts that, and only that, as the record's extent."""
    tool = PYWB_BIN / "wacz"
    if not tool.exists():
        pytest.skip(f"{tool} is missing: `make pywb` installs py-wacz in .venv-pywb")
    plain = tmp_path / "plain.warc"
    plain.write_bytes(gzip.decompress(next((demo_snapshot.path / "archive").glob("*.warc.gz")).read_bytes()))
    wacz = tmp_path / "plain.wacz"
    pages = demo_snapshot.path / "pages" / "pages.jsonl"
    result = subprocess.run([tool, "create", "-p", pages, "-o", wacz, plain], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert verify(wacz).ok
    assert verify(import_archive(wacz, collection).path).ok


def test_py_wacz_package_without_a_page_list_is_refused(demo_snapshot, tmp_path, collection):
    """py-wacz leaves pages/pages.jsonl out when it finds no page; WACZ 1.1.1 requires it."""
    tool = PYWB_BIN / "wacz"
    if not tool.exists():
        pytest.skip(f"{tool} is missing: `make pywb` installs py-wacz in .venv-pywb")
    wacz = tmp_path / "no-pages.wacz"
    warc = next((demo_snapshot.path / "archive").glob("*.warc.gz"))
    result = subprocess.run([tool, "create", "-o", wacz, warc], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pages/pages.jsonl" not in zipfile.ZipFile(wacz).namelist()
    assert [p.what for p in verify(wacz).problems] == ["missing (WACZ 1.1.1 requires pages/pages.jsonl)"]
    with pytest.raises(ImportRejected, match="requires pages/pages.jsonl"):
        import_archive(wacz, collection)
    assert not collection.exists() or not [p for p in collection.iterdir() if not p.name.startswith(".")]
