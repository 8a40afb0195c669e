"""Where WARC bytes go: an append-only file hashed as written, and the gzip member of one
record (RFC 1952), compressed by ISA-L where installed and zlib otherwise. Used by `writer`.
"""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

_isal: Any
try:
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - isal is a dependency where wheels exist
    _isal = None


class WarcFile:
    """An append-only file that hashes what is written, so its checksum needs no second read."""

    def __init__(self, path: Path):
        self.file = open(path, "xb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha.update(data)
        self.size += len(data)

    def flush(self) -> None:
        # after every record: a killed process leaves every whole record on disk
        self.file.flush()

    def tell(self) -> int:
        return self.size


STORE_MIN = 16 << 10   # bytes of a write worth a sync flush to see whether it shrinks
STORED_MAX = 0xFFFF    # bytes of one stored deflate block (RFC 1951, 3.2.4)


def _compressor(level: int) -> Any:
    """Return a gzip compressor: ISA-L's where installed (about 9x zlib's speed at level 3,
    with output about a tenth larger than zlib's level 6), zlib's otherwise; both write gzip."""
    if _isal is not None:
        return _isal.compressobj(min(level, 3), zlib.DEFLATED, zlib.MAX_WBITS + 16)
    return zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS + 16)


def stored_blocks(data: bytes) -> bytes:
    """Return `data` as non-final deflate blocks of type "stored" (RFC 1951, section 3.2.4:
    a zero header byte at a byte boundary, LEN and NLEN little-endian, then the bytes as they
    are), 65,535 bytes a block at most."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for start in range(0, len(data), STORED_MAX):
        size = min(STORED_MAX, len(data) - start)
        parts += [b"\x00" + size.to_bytes(2, "little") + (size ^ 0xFFFF).to_bytes(2, "little"),
                  view[start:start + size]]
    return b"".join(parts)


class MemberSink:
    """Where one record is written: gzip-compressed, one member per flush().

    A large write that deflate cannot shrink (random bytes, media already compressed) is
    stored instead: ISA-L codes it as literals, which every reader must then Huffman-decode
    (about 0.3 GB/s), where stored blocks inflate at memory speed. The compressor still takes
    the bytes in, so its history is the reader's and later matches stay valid; only its
    output for them, flushed to a byte boundary (Z_SYNC_FLUSH), is swapped for stored blocks.
    """

    def __init__(self, out: WarcFile, level: int):
        self.out = out
        self.level = level
        self.comp = _compressor(level)

    def write(self, data: bytes) -> None:
        if len(data) < STORE_MIN:
            self.out.write(self.comp.compress(data))
            return
        self.out.write(self.comp.flush(zlib.Z_SYNC_FLUSH))   # what came before ends here
        coded = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.out.write(coded if len(coded) < len(data) else stored_blocks(data))

    def flush(self) -> None:
        """End the gzip member: one per record."""
        self.out.write(self.comp.flush())
        self.comp = _compressor(self.level)
