"""The gzip member of one record (warc/members.py): incompressible writes are stored, and every
member still inflates to exactly what was written, by zlib and by warcio."""
from __future__ import annotations

import gzip
import io
import random
import zlib

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.warc.members import STORE_MIN, MemberSink, stored_blocks


class Out:
    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def write(self, data: bytes) -> None:
        self.buf.write(data)


def _member(writes: list[bytes], level: int = 3) -> bytes:
    out = Out()
    sink = MemberSink(out, level)   # type: ignore[arg-type]
    for data in writes:
        sink.write(data)
    sink.flush()
    return out.buf.getvalue()


def test_random_bytes_are_stored_and_inflate_whole():
    rng = random.Random(5)
    small, noise = rng.randbytes(STORE_MIN - 1), rng.randbytes(300_000)
    text = b"compressible text line\r\n" * 20_000
    writes = [b"WARC/1.1\r\nhead\r\n\r\n", small, noise, text, b"\r\n\r\n"]
    member = _member(writes)
    assert gzip.decompress(member) == b"".join(writes)
    assert zlib.decompress(member, 31) == b"".join(writes)
    # stored: the noise costs 5 bytes per 65,535, where ISA-L's literal coding costs more
    assert len(member) < len(writes[1]) + len(noise) + len(zlib.compress(text)) * 2
    assert stored_blocks(noise) in member   # the stored blocks are there, byte for byte


def test_text_is_still_compressed():
    text = b"compressible text line\r\n" * 20_000
    member = _member([text[:100], text, text])
    assert gzip.decompress(member) == text[:100] + text + text
    assert len(member) < len(text) // 20


def test_matches_after_stored_blocks_stay_valid():
    # the compressor's history holds the stored bytes too, so a later copy of them may be a
    # back-reference into them: the reader has the same history, so it must still inflate
    noise = random.Random(9).randbytes(40_000)
    member = _member([noise, noise[:30_000], noise])
    assert gzip.decompress(member) == noise + noise[:30_000] + noise


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 200_000])
def test_stored_blocks_inflate(size: int):
    data = random.Random(size).randbytes(size)
    raw = stored_blocks(data) + b"\x03\x00"   # then an empty final fixed block
    assert zlib.decompressobj(-15).decompress(raw) == data


def test_warcio_reads_a_stored_record():
    noise = random.Random(3).randbytes(100_000)
    head = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
            b"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Target-URI: http://e.org/\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(noise))
    member = _member([head, noise, b"\r\n\r\n"])
    records = list(ArchiveIterator(io.BytesIO(member)))
    assert len(records) == 1
