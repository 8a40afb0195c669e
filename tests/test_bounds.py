"""Bounded resources: packages of 1-2 MB that expand to 1 GB (decompression bombs) are answered
with one line and a non-zero exit, in under 200 MB of memory and 50 MB written, by verify,
import, show and cite, and a later list stays as cheap.

Each bomb is made here, from a real exported snapshot: whitespace in datapackage.json, one
endless CDXJ line, a huge pages.jsonl, a 1 GB WARC header line, a zip member lying about its
size. Each command runs in a subprocess whose peak RSS and bytes written are measured at its exit:
VmHWM of /proc/self/status (the peak of its own address space; wait4's ru_maxrss would also
count the pytest process it was forked from, which exec does not reset) and wchar of
/proc/self/io (every byte passed to write(2), files and pipes alike).
"""
from __future__ import annotations

import functools
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from archive import capture
from archive.demo import DemoSite
from archive.read.export import export
from archive.snapshot.store import Collection

GB = 1 << 30
MAX_RSS = 200 << 20
MAX_WRITTEN = 50 << 20
# Runs one command and writes the process's own I/O counters when it exits.
DRIVER = ("import atexit, sys\n"
          "from archive.cli import main\n"
          "atexit.register(lambda: open(sys.argv[1], 'w').write(\n"
          "    open('/proc/self/io').read() + open('/proc/self/status').read()))\n"
          "sys.exit(main(sys.argv[2:]))\n")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    rss: int       # peak resident set, bytes
    written: int   # bytes the process wrote (write(2) and friends)


def run(tmp: Path, *args: str) -> Run:
    io_file = tmp / f"io-{os.urandom(4).hex()}"
    out, err = tmp / "out.txt", tmp / "err.txt"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(io_file), *args], stdout=o, stderr=e,
                                start_new_session=True)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0   # reaped by wait4 above
    code = os.waitstatus_to_exitcode(status)
    counters = {}
    for line in io_file.read_text().splitlines() if io_file.exists() else ():
        name, _, value = line.partition(":")
        counters[name] = value.strip()
    peak = int(counters.get("VmHWM", "0 kB").split()[0]) * 1024 or usage.ru_maxrss * 1024
    result = Run(code, out.read_text(errors="replace"), err.read_text(errors="replace"),
                 peak, int(counters.get("wchar", -1)))
    return result


@functools.lru_cache(maxsize=None)
def gzip_of(prefix: bytes, size: int = GB, fill: bytes = b"a") -> bytes:
    """A gzip member of `prefix` then `size` bytes of `fill`, compressed block by block."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(prefix)]
    block = fill * ((1 << 20) // len(fill))
    for _ in range(size // len(block)):
        parts.append(packer.compress(block))
    parts.append(packer.flush())
    return b"".join(parts)


def raw_deflate(data_prefix: bytes, size: int, fill: bytes) -> tuple[bytes, int]:
    """Raw deflate of prefix + size bytes of fill; return (compressed, crc32 of the whole)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc = zlib.crc32(data_prefix)
    parts = [packer.compress(data_prefix)]
    block = fill * ((1 << 20) // len(fill))
    for _ in range(size // len(block)):
        parts.append(packer.compress(block))
        crc = zlib.crc32(block, crc)
    parts.append(packer.flush())
    return b"".join(parts), crc


def write_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> None:
    """Write a zip by hand (APPNOTE 4.3): (name, data as stored, method, crc32, declared size),
    so a member can declare a size that is not its own."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, declared in members:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), declared,
                           len(encoded), 0) + encoded + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data),
                               declared, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    start = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                                 len(central), start, 0)
    path.write_bytes(bytes(out))


def stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data)


def deflated(name: str, prefix: bytes, size: int, fill: bytes, declared: int | None = None
             ) -> tuple[str, bytes, int, int, int]:
    data, crc = raw_deflate(prefix, size, fill)
    return name, data, zipfile.ZIP_DEFLATED, crc, len(prefix) + size if declared is None else declared


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A collection with one snapshot, and the members of its .wacz export by name."""
    base = tmp_path_factory.mktemp("bounds")
    collection = base / "snapshots"
    with DemoSite() as site:
        snap = capture([site.main_url + "/"], collection, depth=0)
    wacz = export(snap.id, collection, wacz=base / "real.wacz")
    with zipfile.ZipFile(wacz) as z:
        members = {name: z.read(name) for name in z.namelist()}
    return collection, members


def package_with(real_members: dict[str, bytes], path: Path, **replaced: tuple[str, bytes, int, int, int]
                 ) -> Path:
    members = []
    for name, data in real_members.items():
        key = name.replace("/", "__").replace(".", "_").replace("-", "_")
        members.append(replaced.pop(key) if key in replaced else stored(name, data))
    members += list(replaced.values())
    write_zip(path, members)
    assert path.stat().st_size < 2 << 20, path.stat().st_size
    return path


def bombs(real_members: dict[str, bytes], tmp: Path) -> dict[str, Path]:
    warc_name = next(n for n in real_members if n.startswith("archive/"))
    warc_key = warc_name.replace("/", "__").replace(".", "_").replace("-", "_")
    header_line = gzip_of(b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: http://x/\r\nX-Bomb: ")
    endless_cdxj = gzip_of(b"org,example)/ 20260101000000 {\"url\": \"")
    return {
        "whitespace datapackage.json": package_with(real_members, tmp / "ws.wacz", datapackage_json=deflated(
            "datapackage.json", real_members["datapackage.json"].rstrip(b"\n"), GB, b" ")),
        "endless CDXJ line": package_with(real_members, tmp / "cdxj.wacz", indexes__index_cdx=deflated(
            "indexes/index.cdx", b"org,example)/ 20260101000000 {\"url\": \"", GB, b"a")),
        "endless gzipped CDXJ line": package_with(real_members, tmp / "cdxjgz.wacz",
                                                  extra=stored("indexes/index.cdx.gz", endless_cdxj)),
        "huge pages.jsonl": package_with(real_members, tmp / "pages.wacz", pages__pages_jsonl=deflated(
            "pages/pages.jsonl", b"", GB // 2, b'{"url": "http://example.org/"}\n')),
        "1 GB WARC header line": package_with(real_members, tmp / "warc.wacz",
                                              **{warc_key: stored(warc_name, header_line)}),
        "member lying about its size": package_with(real_members, tmp / "lie.wacz", pages__pages_jsonl=deflated(
            "pages/pages.jsonl", b"", GB // 2, b'{"url": "http://example.org/"}\n', declared=4096)),
    }


def bare_warc_bomb(tmp: Path) -> Path:
    path = tmp / "bomb.warc.gz"
    path.write_bytes(gzip_of(b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Target-URI: http://x/\r\nX-Bomb: "))
    return path


def assert_bounded(result: Run, what: str) -> None:
    assert result.rss < MAX_RSS, f"{what}: peak RSS {result.rss >> 20} MB"
    assert 0 <= result.written < MAX_WRITTEN, f"{what}: wrote {result.written >> 20} MB"
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, f"{what}: {result.stderr}"


def assert_one_line_refusal(result: Run, what: str) -> None:
    assert result.code != 0, f"{what}: exit 0\n{result.stdout}"
    assert_bounded(result, what)
    lines = result.stderr.splitlines()
    if result.code == 1 and not lines:   # verify's integrity failure: its report on stdout
        assert result.stdout.startswith("FAILED"), f"{what}: {result.stdout}"
    else:
        assert len(lines) == 1 and lines[0].startswith("archive: error: "), f"{what}: {result.stderr}"


def disk_use(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_bombs_are_refused_in_bounded_memory_and_writes(real, tmp_path):
    collection, members = real
    snapshot = str(Collection(collection).snapshots()[0])
    before = disk_use(collection)
    for what, bomb in bombs(members, tmp_path).items():
        for command in ("verify", "import"):
            result = run(tmp_path, command, str(bomb), "-C", str(collection))
            assert_one_line_refusal(result, f"{command} {what}")
        assert disk_use(collection) - before < MAX_WRITTEN
        for command in ("show", "cite"):
            # read straight from the package: refused, or answered from the parts it reads
            # (show does not read WARC records), in bounds either way
            result = run(tmp_path, command, str(bomb), "-C", str(collection))
            if result.code != 0:
                assert_one_line_refusal(result, f"{command} {what}")
            assert_bounded(result, f"{command} {what}")
            assert len(result.stderr) < 1000, f"{command} {what}: {result.stderr[:300]}"
    for command in ("list", "show", "cite"):   # the collection afterwards: as it was
        later = run(tmp_path, command, *([] if command == "list" else [snapshot]), "-C", str(collection))
        assert later.code == 0 and later.stderr == "", f"{command} afterwards: {later.stderr}"
        assert_bounded(later, f"{command} afterwards")
    assert len(run(tmp_path, "list", "-C", str(collection)).stdout.splitlines()) == 1


def test_a_bare_warc_with_a_1gb_header_line_is_rejected_in_bounds(real, tmp_path):
    collection, _ = real
    bomb = bare_warc_bomb(tmp_path)
    assert bomb.stat().st_size < 2 << 20
    for command in ("verify", "import"):
        result = run(tmp_path, command, str(bomb), "-C", str(collection))
        assert_one_line_refusal(result, f"{command} bare WARC")
    assert not (collection / ".partial").exists()


def test_a_lying_member_is_refused_before_it_is_read(real, tmp_path):
    from archive.errors import NotASnapshot
    from archive.snapshot.reader import Package

    _, members = real
    lie = package_with(members, tmp_path / "lie.wacz", pages__pages_jsonl=deflated(
        "pages/pages.jsonl", b"", 64 << 20, b" ", declared=100))
    with pytest.raises(NotASnapshot, match="inflates to more than the 100 bytes it declares"):
        Package.open(lie)
    ratio = package_with(members, tmp_path / "ratio.wacz", pages__pages_jsonl=deflated(
        "pages/pages.jsonl", b"", 256 << 20, b" "))
    with pytest.raises(NotASnapshot, match="decompression bomb"):
        Package.open(ratio)


def test_import_checks_free_space_first(real, tmp_path):
    """The free-space check asks the collection's disk before anything is written: more
    than any disk holds is refused (DiskFull, exit 4), a little is let through."""
    from archive.errors import DiskFull
    from archive.read import ingest
    from archive.snapshot.store import Collection

    with pytest.raises(DiskFull, match="nothing was written"):
        ingest._check_free_space(Collection(tmp_path / "c"), 1 << 62)
    ingest._check_free_space(Collection(tmp_path / "c"), 1 << 20)   # room: no error

