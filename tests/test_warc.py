"""The WARC files of a snapshot, read back with warcio and checked against our own hashing."""
from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import zlib
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator


def records(path: Path):
    """Yield (offset, record headers dict, raw block bytes) of every record, via warcio."""
    with open(path, "rb") as f:
        it = ArchiveIterator(f, no_record_parse=True)
        for rec in it:
            block = rec.raw_stream.read()
            headers = dict(rec.rec_headers.headers)
            yield it.get_record_offset(), headers, block


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2:]


def warc_files(snapshot) -> list[Path]:
    files = sorted((snapshot.path / "archive").glob("*.warc.gz"))
    assert files
    return files


def test_file_names_follow_annex_c(demo_snapshot):
    for path in warc_files(demo_snapshot):
        # PREFIX-TIMESTAMP-SERIAL-CRAWLHOST.warc.gz, the prefix naming the capture
        tool, capture, stamp, serial, host = path.name.removesuffix(".warc.gz").split("-", 4)
        assert tool == "archive" and len(capture) == 8
        assert len(stamp) == 17 and stamp.isdigit()
        assert serial == "00000" and host


def test_first_record_is_warcinfo_and_all_records_reference_it(demo_snapshot):
    for path in warc_files(demo_snapshot):
        recs = list(records(path))
        assert recs[0][1]["WARC-Type"] == "warcinfo"
        info_id = recs[0][1]["WARC-Record-ID"]
        info = recs[0][2].decode()
        assert "software: archive/" in info and "payload-digest:" in info and "robots:" in info
        for _, headers, _ in recs[1:]:
            assert headers["WARC-Warcinfo-ID"] == info_id


def test_every_exchange_is_a_request_response_pair(demo_snapshot):
    recs = [r for p in warc_files(demo_snapshot) for r in records(p)][1:]
    by_id = {h["WARC-Record-ID"]: h for _, h, _ in recs}
    responses = [h for _, h, _ in recs if h["WARC-Type"] == "response"]
    assert len(responses) * 2 == len(recs)
    for resp in responses:
        req = by_id[resp["WARC-Concurrent-To"]]
        assert req["WARC-Type"] == "request"
        assert req["WARC-Concurrent-To"] == resp["WARC-Record-ID"]
        assert req["WARC-Date"] == resp["WARC-Date"]
        assert req["WARC-Target-URI"] == resp["WARC-Target-URI"]
        for h in (req, resp):
            assert h["WARC-IP-Address"] in ("127.0.0.1", "127.0.0.2")
            assert h["WARC-Block-Digest"].startswith("sha256:")
            assert h["WARC-Payload-Digest"].startswith("sha256:")


def test_digests_match_an_independent_computation(demo_snapshot):
    kinds = set()
    for path in warc_files(demo_snapshot):
        for _, headers, block in records(path):
            assert headers["WARC-Block-Digest"] == "sha256:" + hashlib.sha256(block).hexdigest()
            assert int(headers["Content-Length"]) == len(block)
            if headers["WARC-Type"] != "response":
                continue
            head, _, body = block.partition(b"\r\n\r\n")
            chunked = b"transfer-encoding: chunked" in head.lower()
            kinds.add("chunked" if chunked else "plain")
            payload = dechunk(body) if chunked else body
            assert headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(payload).hexdigest()
            if b"content-encoding: gzip" in head.lower():
                kinds.add("gzip")
                gzip.decompress(payload)  # content-coding kept: still valid gzip
    assert kinds == {"chunked", "plain", "gzip"}


def test_each_record_is_its_own_gzip_member(demo_snapshot):
    for path in warc_files(demo_snapshot):
        data = path.read_bytes()
        offsets = [off for off, _, _ in records(path)]
        for off in offsets:
            d = zlib.decompressobj(zlib.MAX_WBITS + 16)
            text = d.decompress(data[off:off + 65536], 64)
            assert text.startswith(b"WARC/1.1\r\n")


def test_warcio_check_passes_all_but_chunked_payloads(demo_snapshot):
    for path in warc_files(demo_snapshot):
        chunked_offsets = {off for off, h, block in records(path) if h["WARC-Type"] == "response"
                           and b"transfer-encoding: chunked" in block.partition(b"\r\n\r\n")[0].lower()}
        assert chunked_offsets
        out = subprocess.run([sys.executable, "-m", "warcio.cli", "check", "-v", str(path)],
                             capture_output=True, text=True).stdout
        failed_at = []
        offset = None
        for line in out.splitlines():
            if line.strip().startswith("offset"):
                offset = int(line.split()[1])
            elif "failed" in line:
                assert "payload digest failed" in line, line
                failed_at.append(offset)
        passed = out.count("digest pass")
        assert set(failed_at) == chunked_offsets
        assert passed == len(list(records(path))) - len(chunked_offsets)


def test_status_line_and_headers_are_stored_as_sent(site, collection):
    from archive import CaptureOptions, capture

    def odd(handler):
        handler.wfile.write(b"HTTP/1.1 200 Fine Thanks\r\nX-Odd:no-space\r\nContent-Length: 2\r\n"
                            b"X-Dup: a\r\nX-Dup: b\r\n\r\nok")

    site.routes[("main", "/odd")] = odd
    snap = capture([site.main_url + "/odd"], collection, CaptureOptions(depth=0))
    blocks = [b for p in warc_files(snap) for _, h, b in records(p) if h["WARC-Type"] == "response"]
    assert blocks == [b"HTTP/1.1 200 Fine Thanks\r\nX-Odd:no-space\r\nContent-Length: 2\r\n"
                      b"X-Dup: a\r\nX-Dup: b\r\n\r\nok"]


def test_request_line_matches_target_uri(demo_snapshot):
    from urllib.parse import urlsplit
    for path in warc_files(demo_snapshot):
        for _, headers, block in records(path):
            if headers["WARC-Type"] != "request":
                continue
            method, target, version = block.split(b"\r\n", 1)[0].decode().split(" ")
            parts = urlsplit(headers["WARC-Target-URI"])
            assert (method, version) == ("GET", "HTTP/1.1")
            assert target == parts.path + (f"?{parts.query}" if parts.query else "")
            assert f"\r\nHost: {parts.netloc}\r\n".encode() in block
