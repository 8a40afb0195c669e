"""verify and import on corrupted archives: a precise problem or a clean rejection, never a traceback."""
from __future__ import annotations

import gzip
import shutil
import uuid
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive import verify
from archive.errors import ArchiveError
from archive.read.ingest import import_archive


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from archive import capture
    from archive.demo import DemoSite
    root = tmp_path_factory.mktemp("hostile")
    with DemoSite() as site:
        snap = capture([site.main_url + "/contact.html"], root / "coll", depth=0)
    return snap.path


def damaged_copy(pristine, tmp_path, mutate):
    target = tmp_path / "snap"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(pristine, target)
    warc = next((target / "archive").glob("*.warc.gz"))
    warc.write_bytes(mutate(warc.read_bytes()))
    return target, warc


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data())
def test_random_damage_is_reported(pristine, tmp_path, data):
    kind = data.draw(st.sampled_from(["flip", "truncate", "garbage", "insert"]))
    size = (next((pristine / "archive").glob("*.warc.gz"))).stat().st_size
    at = data.draw(st.integers(0, size - 1))

    def mutate(raw: bytes) -> bytes:
        if kind == "flip":
            return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1:]
        if kind == "truncate":
            return raw[:at]
        if kind == "garbage":
            return data.draw(st.binary(min_size=1, max_size=2000))
        return raw[:at] + data.draw(st.binary(min_size=1, max_size=64)) + raw[at:]

    target, warc = damaged_copy(pristine, tmp_path, mutate)
    report = verify(target)
    assert not report.ok            # the snapshot's checksums catch every changed byte
    assert all(p.file for p in report.problems)
    # A bare WARC has no checksum of its own: a byte that changes no record (a gzip header's
    # time or flags) may be imported; anything else is rejected cleanly, leaving nothing.
    into = tmp_path / f"import-{uuid.uuid4().hex}"
    try:
        snap = import_archive(warc, into)
    except ArchiveError:
        assert not any(into.glob("2*")) and not (into / ".partial").exists()
    else:
        assert verify(snap.path).ok


def test_gzip_member_that_does_not_end(pristine, tmp_path):
    def cut_member(raw: bytes) -> bytes:
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        endless = comp.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        return raw + endless + comp.flush(zlib.Z_SYNC_FLUSH)   # no end of member, no trailer
    target, _ = damaged_copy(pristine, tmp_path, cut_member)
    report = verify(target)
    assert not report.ok and any("unreadable" in p.what or "cut short" in p.what for p in report.problems)


def test_absurd_lengths_in_a_warc_header(pristine, tmp_path):
    def absurd(raw: bytes) -> bytes:
        return raw + gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nContent-Length: 99999999999999999\r\n\r\nshort\r\n\r\n")
    target, warc = damaged_copy(pristine, tmp_path, absurd)
    report = verify(target)
    assert not report.ok and any(p.offset is not None for p in report.problems)
    with pytest.raises(ArchiveError):
        import_archive(warc, tmp_path / "c2")


def _record(kind: str = "resource", body: bytes = b"hello", digest: str | None = None) -> bytes:
    import hashlib
    digest = digest or "sha256:" + hashlib.sha256(body).hexdigest()
    return (f"WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Block-Digest: {digest}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body + b"\r\n\r\n"


def _check(data: bytes, gz: bool = True):
    import io

    from archive.warc.check import check_warc
    return check_warc(io.BytesIO(data), "x.warc.gz" if gz else "x.warc", gz)


def test_variable_length_digest_is_unsupported_not_a_crash():
    _, _, records, problems = _check(gzip.compress(_record(digest="shake_128:aa")))
    assert records == 1 and problems[0].found == "unsupported algorithm"


def test_several_records_in_one_member_are_reported():
    data = gzip.compress(_record()) + gzip.compress(_record() + _record())
    _, _, records, problems = _check(data)
    assert records == 3 and [p.what for p in problems] == ["several records in one gzip member"]
    assert problems[0].offset == len(gzip.compress(_record()))


def test_counts_and_offsets_around_damage():
    good = [gzip.compress(_record(body=f"r{i}".encode())) for i in range(5)]
    damaged = good[:2] + [good[2][:15] + b"\x00" * 20 + good[2][35:]] + good[3:]
    _, _, records, problems = _check(b"".join(damaged))
    assert records == 4 and problems[0].offset == len(good[0]) + len(good[1])
    plain = _record() + b"garbage line\r\n" + _record()
    _, _, records, problems = _check(plain, gz=False)
    assert records == 2 and problems[0].offset == len(_record())
    _, _, records, problems = _check(b"")
    assert records == 0 and problems[0].what == "no WARC records"


def test_writer_refuses_more_after_a_half_written_record(tmp_path):
    from datetime import datetime, timezone

    from archive.errors import StorageError
    from archive.models import Body, Exchange
    from archive.warc.writer import WarcWriter
    writer = WarcWriter(tmp_path, "archive-test", {}, clock=lambda: datetime.now(timezone.utc))
    big = tmp_path / "big.http"
    big.write_bytes(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100)
    ex = Exchange("http://ex.test/", datetime.now(timezone.utc), None, b"GET / HTTP/1.1\r\n\r\n",
                  Body(path=big), 10_000, "sha256:00", "sha256:00", 19, 200, "OK", (), False)  # length lies
    with pytest.raises(StorageError):
        writer.write_exchange(ex)
    with pytest.raises(StorageError, match="closed"):
        writer.write_exchange(ex)
