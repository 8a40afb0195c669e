"""More bounded resources (issue 13): packages under 2 MB whose members overlap, whose gzipped
index repeats one line, whose WARC holds thousands of records in one gzip member; metadata of
the wrong type and index offsets past the end; bidi controls on the terminal; ISATAP addresses.

Every command runs in a subprocess measured as tests/test_bounds.py measures it (peak RSS of
the child, bytes it wrote): under 200 MB and 50 MB, one line or a bounded report, no traceback.
"""
from __future__ import annotations

import gzip
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from test_bounds import (assert_bounded, assert_one_line_refusal, package_with, real, run,  # noqa: F401
                         stored, write_zip)

from archive.cli.common import printable, terminal_text
from archive.snapshot import package as layout
from archive.write.addresses import is_public


def overlapping(members: dict[str, bytes], path: Path, count: int = 100, kernel: int = 1_500_000) -> Path:
    """A zip of the real members, then `count` stored members whose data all end in the same
    `kernel` bytes: member i's data is the local headers of members i+1.. then the kernel, so
    each has its right CRC and size while the file holds the kernel once (APPNOTE 4.3.7)."""
    names = [f"logs/o{i:04d}.txt" for i in range(count)]
    tail, datas, heads = b"x" * kernel, [b""] * count, [b""] * count
    for i in reversed(range(count)):
        datas[i], encoded = tail, names[i].encode()
        heads[i] = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(tail), len(tail),
                               len(tail), len(encoded), 0) + encoded
        tail = heads[i] + tail
    out, central = bytearray(), bytearray()

    def add_central(name: str, data: bytes, offset: int) -> None:
        encoded = name.encode()
        central.extend(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, zlib.crc32(data),
                                   len(data), len(data), len(encoded), 0, 0, 0, 0, 0, offset) + encoded)

    for name, data in members.items():
        encoded = name.encode()
        add_central(name, data, len(out))
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
                           len(data), len(encoded), 0) + encoded + data
    offset = len(out)
    out += tail
    for i in range(count):
        add_central(names[i], datas[i], offset)
        offset += len(heads[i])
    total = len(members) + count
    start = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, total, total, len(central), start, 0)
    path.write_bytes(bytes(out))
    assert path.stat().st_size < 2 << 20
    return path


def test_overlapping_members_are_refused(real, tmp_path):
    collection, members = real
    bomb = overlapping(members, tmp_path / "overlap.wacz")
    with zipfile.ZipFile(bomb) as z:   # what the attack relies on: every member reads back right
        assert sum(i.file_size for i in z.infolist()) > 100 << 20
        assert len(z.read("logs/o0050.txt")) > 1_500_000
    for command in ("verify", "import", "show", "cite"):
        result = run(tmp_path, command, str(bomb), "-C", str(collection))
        assert_one_line_refusal(result, f"{command} overlapping members")
        assert "overlap" in result.stderr, result.stderr


def index_line(members: dict[str, bytes]) -> bytes:
    return next(line for line in members["indexes/index.cdx"].splitlines(keepends=True) if line.strip())


def test_a_gzipped_index_repeating_one_line_is_refused(real, tmp_path):
    collection, members = real
    dup = gzip.compress(index_line(members) * 200_000, 9)
    bomb = package_with(members, tmp_path / "dup.wacz", extra=stored("indexes/dup.cdx.gz", dup))
    for command in ("verify", "import", "cite"):
        result = run(tmp_path, command, str(bomb), "-C", str(collection))
        assert_one_line_refusal(result, f"{command} gzipped index bomb")
        assert "inflates to more than" in result.stderr, result.stderr


def test_a_repeated_index_line_is_a_verify_problem(real, tmp_path):
    collection, members = real
    index = members["indexes/index.cdx"]
    repeated = package_with(members, tmp_path / "repeat.wacz",
                            indexes__index_cdx=stored("indexes/index.cdx", index + index_line(members)))
    result = run(tmp_path, "verify", str(repeated), "-C", str(collection))
    assert result.code == 1, result.stdout + result.stderr
    assert re.search(r"indexes/index\.cdx: line \d+: names the same record as indexes/index\.cdx line 1",
                     result.stdout), result.stdout
    assert_bounded(result, "verify repeated line")
    clean = run(tmp_path, "verify", str(package_with(members, tmp_path / "clean.wacz")))
    assert clean.code == 0 and "same record" not in clean.stdout, clean.stdout


def many_records(count: int, uri_length: int) -> bytes:
    """One gzip member holding `count` empty resource records of a `uri_length` URI."""
    record = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:12345678-1234-1234-1234-"
              b"123456789abc>\r\nWARC-Target-URI: http://a/" + b"A" * uri_length +
              b"\r\nWARC-Date: 2026-11-30T19:03:36Z\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n\r\n\r\n")
    return gzip.compress(record * count, 9)


@pytest.mark.parametrize("count,uri_length", [(300_000, 10), (5000, 65_000)])
def test_one_gzip_member_of_many_records_gets_a_bounded_report(real, tmp_path, count, uri_length):
    collection, members = real
    bomb = repacked(members, tmp_path, {}, {"archive/bomb.warc.gz": many_records(count, uri_length)})
    assert bomb.stat().st_size < 2 << 20
    result = run(tmp_path, "verify", str(bomb), "-C", str(collection))
    assert result.code == 1 and result.stdout.startswith("FAILED"), result.stdout[:500] + result.stderr
    assert_bounded(result, "verify many records")
    lines = result.stdout.splitlines()
    assert len(lines) < 200 and max(map(len, lines)) < 1000, (len(lines), max(map(len, lines)))
    assert re.search(r"archive/bomb\.warc\.gz: \d+ more problems in this file", result.stdout)
    assert result.stdout.count("several records in one gzip member") == 1
    imported = run(tmp_path, "import", str(bomb), "-C", str(collection))
    assert imported.code == 1, imported.stderr
    assert_bounded(imported, "import many records")


def repacked(members: dict[str, bytes], tmp: Path, edit: dict, extra: dict[str, bytes] | None = None) -> Path:
    """The real package plus `extra` files, with datapackage.json edited by `edit` (top level,
    and "archive" keys under "archive"), its checksums and digest file written anew so that
    it lists every file."""
    root = tmp / "pkg"
    for name, data in {**members, **(extra or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    data = json.loads(members["datapackage.json"])
    data["resources"] = layout.resources(root, {})
    data["archive"].update(edit.pop("archive", {}))
    data.update(edit)
    layout.write_package(root, data)
    out = tmp / "edited.wacz"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            z.write(path, path.relative_to(root).as_posix())
    return out


@pytest.mark.parametrize("edit", [{"archive": {"seeds": [{"url": ["x"]}]}, "mainPageURL": ["x"]},
                                  {"archive": {"seeds": [{"url": {"a": 1}, "given": 5}]}},
                                  {"archive": {"seeds": "x"}, "mainPageURL": {"x": 1}}])
def test_import_takes_metadata_of_any_type(real, tmp_path, edit):
    _, members = real
    package = repacked(members, tmp_path, edit)
    result = run(tmp_path, "import", str(package), "-C", str(tmp_path / "c"))
    assert result.code == 0, result.stderr
    assert_bounded(result, "import odd metadata")
    assert result.stdout.startswith("snapshot "), result.stdout


def test_an_index_offset_past_the_end_is_not_a_snapshot(real, tmp_path):
    collection, members = real
    index = re.sub(rb'"offset": "\d+"', b'"offset": "999999999999"', members["indexes/index.cdx"])
    bomb = package_with(members, tmp_path / "ovf.wacz", indexes__index_cdx=stored("indexes/index.cdx", index))
    result = run(tmp_path, "cite", str(bomb), "-C", str(collection))
    assert_one_line_refusal(result, "cite offset past the end")
    # a package from outside the collection is verified before it is read
    assert "failed verification" in result.stderr and result.code == 1, result.stderr
    # and the reader itself, asked for that record, answers NotASnapshot, not StopIteration
    from archive.errors import NotASnapshot
    from archive.read.cite import citation
    from archive.snapshot.reader import Package
    with Package.open(bomb) as package, pytest.raises(NotASnapshot, match="no WARC record at"):
        citation(package)


@pytest.mark.parametrize("char", ["\u061c", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060",
                                  "\u2061", "\u2062", "\u2063", "\u2064", "\u2066", "\u2069", "\u202e",
                                  "\ufeff"])
def test_bidi_and_format_controls_are_escaped(char):
    for escape in (terminal_text, printable):
        shown = escape(f"a{char}b\nc")
        assert char not in shown and f"\\u{ord(char):04x}" in shown, repr(shown)
    assert terminal_text("a\nb") == "a\nb"


@pytest.mark.parametrize("address,public", [
    ("2600::5efe:7f00:1", False),       # ISATAP, u/l bit clear, 127.0.0.1
    ("2600::200:5efe:a00:1", False),    # ISATAP, u/l bit set, 10.0.0.1
    ("2600::5efe:a9fe:a9fe", False),    # ISATAP carrying 169.254.169.254 (cloud metadata)
    ("fe80::5efe:808:808", False),      # link-local ISATAP: the outer address is not global
    ("2600::5efe:808:808", True),       # ISATAP carrying 8.8.8.8 in a global prefix
    ("2600::1:5efe:7f00:1", True),      # not ISATAP: 0001:5efe is no ISATAP identifier
])
def test_isatap_addresses_are_judged_by_the_ipv4_they_carry(address, public):
    assert is_public(address) is public
