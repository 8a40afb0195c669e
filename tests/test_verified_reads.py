"""Issue 13: a package someone sent is read only when it is the snapshot its id commits to.

A self-contained export may hold no file its source/datapackage.json does not list, but for
the dependency copies, and those only the records the snapshot's revisits refer to; cite,
show and diff verify a package named by its path (outside the collection) before reading it.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from recapture_site import RecaptureSite
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archive.cli import main
from archive.formats.urls import surt_key
from archive.read import verify as verify_module
from archive.read.verify import verify
from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, canonical_json, digest_document
from archive.write.capture import capture

Files = dict[str, bytes]
FORGED = "FORGED-TITLE-7f3a"
DEPS_INDEX = "indexes/deps.cdx"


@pytest.fixture(scope="module")
def dedup_pair(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(collection, first, second, the self-contained export of second made by `archive export`)."""
    root = tmp_path_factory.mktemp("verified-reads")
    site = RecaptureSite(pages=3, size=2_000)
    try:
        collection = root / "coll"
        first = capture(site.url + "/", collection, depth=1)
        second = capture(site.url + "/", collection, depth=1)
    finally:
        site.close()
    out = root / "second.wacz"
    assert main(["export", "-C", str(collection), second.id, "--wacz", str(out)]) == 0
    assert f"archive/deps-{first.id[:12]}.warc.gz" in zipfile.ZipFile(out).namelist()
    return collection, first, second, out


def unzip(path: Path) -> Files:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def forged_record(url: str, date: str, filename: str, start: int = 0) -> tuple[bytes, str]:
    """Return (a gzipped response record with the FORGED title, its CDXJ line at `start`)."""
    body = f"<html><head><title>{FORGED}</title></head><body>EVIL</body></html>".encode()
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    record = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                       warc_headers_dict={"WARC-Date": date})
    writer.write_record(record)
    data = buf.getvalue()
    fields = {"url": url, "mime": "text/html", "status": "200",
              "digest": record.rec_headers.get_header("WARC-Payload-Digest"),
              "length": str(len(data)), "offset": str(start), "filename": filename}
    stamp = "".join(c for c in date if c.isdigit())[:14]
    return data, f"{surt_key(url)} {stamp} {json.dumps(fields)}\n"


def reseal(files: Files) -> None:
    """List every file again in the outer datapackage.json, as repack.py of the attack does."""
    package = json.loads(files[DATAPACKAGE])
    package["resources"] = [{"name": name.rsplit("/", 1)[-1], "path": name, "bytes": len(data),
                             "hash": "sha256:" + hashlib.sha256(data).hexdigest()}
                            for name, data in sorted(files.items()) if name not in (DATAPACKAGE, DIGEST_FILE)]
    files[DATAPACKAGE] = canonical_json(package)
    files[DIGEST_FILE] = canonical_json(digest_document(hashlib.sha256(files[DATAPACKAGE]).hexdigest()))


def write_zip(files: Files, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return dest


def seed_url(files: Files) -> tuple[str, str]:
    """Return (URL, WARC date) of the first page of a package, from its pages.jsonl."""
    for line in files["pages/pages.jsonl"].decode().splitlines():
        entry = json.loads(line)
        if "url" in entry:
            return entry["url"], entry["ts"]
    raise AssertionError("no page")


def whats(path: Path) -> list[str]:
    return [str(p) for p in verify(path).damage]


# -- item 1: a self-contained export holds nothing its id does not commit to --------------------------

def test_genuine_self_contained_export_verifies_and_is_cited(dedup_pair, capsys):
    _, _, second, out = dedup_pair
    report = verify(out, expect=second.id)
    assert report.ok, report.problems
    assert main(["cite", str(out)]) == 0
    assert second.id[:12] in capsys.readouterr().out


def test_extra_warc_and_index_beside_the_source_fail(dedup_pair, tmp_path, capsys):
    _, _, second, out = dedup_pair
    files = unzip(out)
    url, date = seed_url(files)
    record, line = forged_record(url, date, "evil.warc.gz")
    files["archive/evil.warc.gz"], files["indexes/evil.cdx"] = record, line.encode()
    reseal(files)
    forged = write_zip(files, tmp_path / "sc.wacz")
    report = verify(forged)
    assert report.snapshot_id == second.id      # the genuine id, which is why it must fail
    problems = whats(forged)
    assert any(p.startswith("archive/evil.warc.gz: file not part of the snapshot") for p in problems), problems
    assert any(p.startswith("indexes/evil.cdx: file not part of the snapshot") for p in problems), problems
    assert main(["verify", str(forged)]) == 1
    assert main(["cite", str(forged)]) == 1
    captured = capsys.readouterr()
    assert "archive: error:" in captured.err and "failed verification" in captured.err
    assert FORGED not in captured.out + captured.err


def test_forged_record_in_the_deps_copy_fails(dedup_pair, tmp_path):
    _, first, second, out = dedup_pair
    files = unzip(out)
    deps = f"archive/deps-{first.id[:12]}.warc.gz"
    url, date = seed_url(files)
    record, line = forged_record(url, date, deps.rsplit("/", 1)[-1], start=len(files[deps]))
    files[deps] += record
    files[DEPS_INDEX] += line.encode()
    reseal(files)
    forged = write_zip(files, tmp_path / "sd.wacz")
    assert verify(forged).snapshot_id == second.id
    problems = whats(forged)
    assert any(p.startswith(f"{deps}: dependency record no revisit") for p in problems), problems
    assert any(p.startswith(f"{DEPS_INDEX}: index line names no record") for p in problems), problems
    assert main(["verify", str(forged)]) == 1


def test_deps_index_line_pointing_into_the_snapshots_own_warc_fails(dedup_pair, tmp_path):
    _, _, _, out = dedup_pair
    files = unzip(out)
    own = next(n for n in files if n.startswith("archive/") and not n.startswith("archive/deps-"))
    line = json.loads(files["indexes/index.cdx"].decode().splitlines()[0].split(" ", 2)[2])
    files[DEPS_INDEX] += f"com,x)/ 20260101000000 {json.dumps({**line, 'filename': own.split('/')[1]})}\n".encode()
    reseal(files)
    problems = whats(write_zip(files, tmp_path / "se.wacz"))
    assert any(p.startswith(f"{DEPS_INDEX}: index line names no record") for p in problems), problems


def test_outer_metadata_edited_beside_the_source_fails(dedup_pair, tmp_path, capsys):
    _, _, second, out = dedup_pair
    files = unzip(out)
    package = json.loads(files[DATAPACKAGE])
    package["title"] = FORGED
    files[DATAPACKAGE] = canonical_json(package)
    reseal(files)
    forged = write_zip(files, tmp_path / "title.wacz")
    assert verify(forged).snapshot_id == second.id
    problems = whats(forged)
    assert any(p.startswith(f"{DATAPACKAGE}: metadata differs") and "title" in p for p in problems), problems
    assert main(["cite", str(forged)]) == 1
    assert FORGED not in capsys.readouterr().out


# -- item 2: cite, show and diff of a package path read only verified bytes ----------------------------

@pytest.fixture
def tampered(dedup_pair, tmp_path) -> Path:
    """The second capture as a .wacz whose own WARC gained a forged page record and whose
    index points at it, the manifest left as it was: verify says FAILED."""
    collection, _, second, _ = dedup_pair
    plain = tmp_path / "plain.wacz"
    folder = second.path
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    url, date = seed_url(files)
    warc = next(n for n in files if n.startswith("archive/") and n.endswith(".warc.gz"))
    record, line = forged_record(url, date, warc.split("/")[1], start=len(files[warc]))
    files[warc] += record
    files["indexes/index.cdx"] = line.encode() + files["indexes/index.cdx"]
    write_zip(files, plain)
    assert not verify(plain).intact
    return plain


def test_cite_of_a_tampered_package_refuses(tampered, capsys):
    assert main(["cite", str(tampered)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("archive: error:") and "failed verification" in captured.err
    assert captured.err.count("\n") == 1 and FORGED not in captured.out


def test_show_of_a_tampered_package_refuses(tampered, capsys):
    assert main(["show", str(tampered)]) == 1
    captured = capsys.readouterr()
    assert "failed verification" in captured.err and FORGED not in captured.out


def test_diff_with_a_tampered_package_refuses(tampered, dedup_pair, capsys):
    _, _, _, genuine = dedup_pair
    assert main(["diff", str(genuine), str(tampered)]) == 1
    assert "failed verification" in capsys.readouterr().err
    assert main(["diff", str(tampered), str(genuine)]) == 1
    assert main(["diff", str(genuine), str(genuine)]) == 0


def test_snapshots_of_the_collection_are_read_without_verifying(dedup_pair, monkeypatch, capsys):
    collection, first, second, _ = dedup_pair
    calls: list[object] = []
    real = verify_module.verify
    monkeypatch.setattr(verify_module, "verify", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert main(["cite", "-C", str(collection), second.id[:12]]) == 0
    assert main(["show", "-C", str(collection), str(second.path)]) == 0
    assert main(["diff", "-C", str(collection), first.id[:12], str(second.path)]) == 0
    assert calls == []
    capsys.readouterr()
