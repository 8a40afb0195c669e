"""Checks of a .wacz as a zip before anything in it is read: names, sizes, inflation.

A package is someone else's file: its members may lie about their sizes (a decompression
bomb), share a name (two readers would see different bytes) or name paths outside the
package. ZIP format: PKWARE APPNOTE.TXT 6.3 (sections 4.3.7 local header, 4.4 fields).
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from archive.errors import NotASnapshot
from archive.formats.wire import BLOCK

INFLATE_RATIO = 20          # deflated members may inflate to 20 times their size in all...
INFLATE_ALLOWANCE = 4 << 20  # ...plus this: small text files compress better than large ones


def zip_anomalies(infos: list[zipfile.ZipInfo]) -> list[tuple[str, str]]:
    """Return (name, why) for duplicate names, directories with data and unsafe names of a zip."""
    found, seen = [], set()
    for info in infos:
        name = info.filename
        if name in seen:
            found.append((name, "duplicate zip member name (readers would disagree on its bytes)"))
        seen.add(name)
        if info.is_dir() and info.file_size:
            found.append((name, "directory entry holding data"))
        parts = name.rstrip("/").split("/")
        if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
            found.append((name, "zip member name leads outside the package"))
    return found


def check_sizes(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip whose members would inflate past a sane ratio (a decompression bomb), or
    whose stored members claim another size than they hold; raise NotASnapshot."""
    packed = inflated = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise NotASnapshot(path, f"member {info.filename} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NotASnapshot(path, f"member {info.filename} uses compression method {info.compress_type} "
                                     "(WACZ members are stored or deflated)")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise NotASnapshot(path, f"member {info.filename} is stored with {info.compress_size} "
                                         f"bytes but claims {info.file_size}")
            continue
        packed += info.compress_size
        inflated += info.file_size
    check_overlap(path, infos)
    if inflated > INFLATE_ALLOWANCE + INFLATE_RATIO * packed:
        raise NotASnapshot(path, f"its members would inflate from {packed} to {inflated} bytes, more than "
                                 f"{INFLATE_RATIO} times (a decompression bomb?)")


def check_overlap(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a zip whose members share bytes: each member is a local header (30 bytes plus
    its name, APPNOTE 4.3.7) then its data, and the next member starts after both. Members
    overlapping the same bytes would let a small file expand to many times its size (issue 13)."""
    end, previous = 0, ""
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < end:
            raise NotASnapshot(path, f"members {previous[:200]!r} and {info.filename[:200]!r} "
                                     "overlap (a zip bomb?)")
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        name = len(info.orig_filename.encode(encoding, "replace"))
        end = info.header_offset + 30 + name + info.compress_size
        previous = info.filename


def check_inflation(path: Path, raw: BinaryIO, info: zipfile.ZipInfo) -> None:
    """Inflate a deflated member once, counting, and refuse it when it yields more than it
    declares: the declared sizes bound everything else (APPNOTE 4.3.7: the local header,
    then the data). Memory stays at one block whatever the member holds."""
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return
    raw.seek(info.header_offset)
    head = raw.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise NotASnapshot(path, f"member {info.filename} has no local header")
    name_length, extra_length = struct.unpack("<HH", head[26:30])
    raw.seek(info.header_offset + 30 + name_length + extra_length)
    inflater, left, out = zlib.decompressobj(-zlib.MAX_WBITS), info.compress_size, 0
    while left > 0 and not inflater.eof and (block := raw.read(min(BLOCK, left))):
        left -= len(block)
        while block and not inflater.eof:
            try:
                out += len(inflater.decompress(block, BLOCK))
            except zlib.error as exc:
                raise NotASnapshot(path, f"member {info.filename} is corrupt: {exc}") from None
            if out > info.file_size:
                raise NotASnapshot(path, f"member {info.filename} inflates to more than the "
                                         f"{info.file_size} bytes it declares")
            block = inflater.unconsumed_tail
