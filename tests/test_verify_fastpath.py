"""verify's fast path for small records (headers split in one pass, the block checked from the
buffer) finds exactly what the record-by-record streamed path finds, on well-formed and odd
records alike."""
from __future__ import annotations

import gzip
import hashlib
import io
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import archive.warc.check as check
import archive.warc.stored as stored
from archive.formats.wire import STORED_HEAD, read_head


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def record(block: bytes, *, kind: str = "response", eol: bytes = b"\r\n", block_digest: str | None = "ok",
           payload: bytes | None = None, payload_digest: str | None = None, extra: tuple[bytes, ...] = ()) -> bytes:
    head = [b"WARC/1.1", b"WARC-Type: " + kind.encode(), b"WARC-Target-URI: http://ex.org/a",
            b"WARC-Date: 2026-01-02T03:04:05Z", b"Content-Type: application/http; msgtype=response"]
    if block_digest == "ok":
        head.append(b"WARC-Block-Digest: " + sha(block).encode())
    elif block_digest:
        head.append(b"WARC-Block-Digest: " + block_digest.encode())
    if payload is not None:
        head.append(b"WARC-Payload-Digest: " + (payload_digest or sha(payload)).encode())
    head += list(extra)
    head.append(b"Content-Length: " + str(len(block)).encode())
    return eol.join(head) + eol + eol + block + b"\r\n\r\n"


NOISE = random.Random(4).randbytes(30_000)
HTTP = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
RECORDS = [
    record(HTTP + b"<p>hello", payload=b"<p>hello"),
    record(HTTP + b"<p>bad", payload=b"<p>bad", payload_digest=sha(b"other")),
    record(HTTP + b"x", block_digest=sha(b"not the block")),
    record(HTTP + b"y", block_digest=None),
    record(CHUNKED, payload=b"abcde"),
    record(CHUNKED, payload=CHUNKED.split(b"\r\n\r\n", 1)[1]),          # hashed with its framing
    record(b"no http head at all\n", payload=b"?"),
    record(HTTP + b"lf", eol=b"\n", payload=b"lf"),                        # LF-only WARC head
    record(HTTP + b"d", payload=b"d", extra=(b"WARC-Type: revisit", b"no colon here", b"X-Caf\xc3: \xff\xfe")),
    record(HTTP + b"r", kind="revisit", payload=b"elsewhere", payload_digest=sha(b"elsewhere")),
    record(b"software: test\r\n", kind="warcinfo", block_digest=None),
    record(HTTP + b"q" * 70_000, payload=b"q" * 70_000, extra=(b"X-Long: " + b"v" * 20_000,)),
    # heads the Transfer-Encoding shortcut must read as the parse does
    record(CHUNKED.replace(b"Transfer-Encoding", b"TRANSFER-encoding"), payload=b"abcde"),
    record(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n", payload=b"abc"),
    record(b"HTTP/1.1 200 OK\r\nX-Transfer-Encoding-Note: chunked\r\n\r\n3\r\nabc", payload=b"3\r\nabc"),
    record(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nxyz", payload=b"xyz"),
    record(b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc", payload=b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc"),
    record(b"HTTP/1.1 200 OK\r\nContent-Type: a\r\n", payload=b""),                  # no blank line
    record(b"HTTP/1.1 200 OK\r\n\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           payload=b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    record(HTTP + b"plain", payload=b"plain"),
    record(HTTP + NOISE, payload=NOISE),   # a member inflated in several pieces
    record(HTTP + b"last", payload=b"last"),
]


def warc(records: list[bytes], gz: bool) -> bytes:
    return b"".join(gzip.compress(r, mtime=0) for r in records) if gz else b"".join(records)


def run(data: bytes, gz: bool) -> tuple[object, ...]:
    heads: list[tuple[int, dict[str, str]]] = []
    digest, size, count, problems = check.check_warc(io.BytesIO(data), "f.warc", gz, heads)
    return digest, size, count, [str(p) for p in problems], heads


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("cut", [None, -7, -300, 300, 1500, "noise"])
def test_the_fast_path_reports_what_the_streamed_path_reports(monkeypatch, gz: bool, cut: int | str | None) -> None:
    data = warc(RECORDS, gz)
    if cut == "noise":   # damaged near the end of the large member, after pieces inflated well
        cut = data.find(warc(RECORDS[-2:-1], gz)) + 25_000
    assert not isinstance(cut, str)
    if cut is not None:   # a file cut short, or damaged in its first record
        data = data[:cut] if cut < 0 else data[:cut] + b"\x00" * 40 + data[cut + 40:]
    fast = run(data, gz)
    monkeypatch.setattr(check, "FAST_MEMBER", -1)                            # no member read whole
    monkeypatch.setattr(check, "THREAD_MIN", 0)                              # every block streamed
    monkeypatch.setattr(check, "buffered_headers", lambda stored, limit: None)   # every head line by line
    slow = run(data, gz)
    assert fast == slow
    problems = fast[3]
    assert isinstance(problems, list)
    if cut is None:
        assert sum("payload digest mismatch" in p for p in problems) == 2   # the bad one, the headless one
        assert sum("block digest mismatch" in p for p in problems) == 1
        assert sum("no WARC-Block-Digest" in p for p in problems) == 1
        assert fast[2] == len(RECORDS)


def test_the_buffered_head_parse_is_taken_for_ordinary_records(monkeypatch) -> None:
    calls: list[bool] = []
    real = stored.buffered_headers

    def spy(s, limit):  # type: ignore[no-untyped-def]
        found = real(s, limit)
        calls.append(found is not None)
        return found
    monkeypatch.setattr(check, "buffered_headers", spy)
    run(warc(RECORDS, True), True)
    assert calls.count(True) >= len(RECORDS) - 1


@given(st.lists(st.sampled_from([b"HTTP/1.1 200 OK", b"", b"\r", b"A: b", b"Transfer-Encoding: chunked",
                                 b" folded", b"x" * 3]), max_size=8),
       st.sampled_from([b"\r\n", b"\n"]), st.binary(max_size=20))
def test_head_end_is_where_read_head_ends(lines: list[bytes], eol: bytes, tail: bytes) -> None:
    block = eol.join(lines) + tail
    framed = b"\x00pad" + block + b"more"
    stream = io.BytesIO(block)
    read_head(stream, STORED_HEAD)
    assert check._head_end(framed, 4, 4 + len(block)) == stream.tell()
