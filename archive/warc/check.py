"""Check every record of a WARC file: block and payload digests, on two cores, in one read.

The file is read once in large blocks: the main thread hashes the stored bytes (the file
checksum) and inflates them (ISA-L's inflate where installed, zlib otherwise), and parses
records; a second thread does the digest hashing, in order. hashlib and both inflaters
release the GIL on large buffers, so the two overlap. Each gzip member's file offset is kept,
so a problem is reported at the offset of the record it is in.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any, BinaryIO

from archive.formats.wire import STORED_HEAD, WireError, head_headers, is_chunked, iter_payload, read_head

from .conventions import DigestPolicy
from .digests import Broken, CappedProblems, Digest, Hashers, HashThread, Problem
from .stored import LINE, READ, Block, FileHash, Stored, buffered_headers

MAX_WARC_HEAD = 1 << 20   # a record's WARC header block; real ones are a few KB (issue 13: bombs)
THREAD_MIN = 1 << 20   # records at least this long are hashed on the hash threads
FAST_MEMBER = 1 << 20  # bytes of a gzip member inflated whole to check its record in one go
HTTP_RECORDS = ("response", "request")
GZIP_MAGIC = b"\x1f\x8b\x08"
HEAD_FIELDS = ("warc-type", "warc-target-uri", "warc-date", "warc-payload-digest")
MAX_HEAD_VALUE = 2048   # characters of a head field kept per record (the rest by its digest)
MAX_PROBLEMS = 50       # problems reported per WARC file; the rest are counted in one line


def check_warc(f: BinaryIO, rel: str, gz: bool,
               heads: list[tuple[int, dict[str, str]]] | None = None,
               policy: DigestPolicy | None = None) -> tuple[str, int, int, list[Problem]]:
    """Check every record of a WARC file; return (file sha256, file size, records, problems).

    With `heads`, append (file offset, the HEAD_FIELDS of its WARC headers, names lowercase) of
    each record read, in file order, so an index can be checked against the records without
    reading them again. `policy` says which digests a record may lack and counts those that
    do (warc/conventions.py); by default every record but warcinfo needs a block digest.
    """
    # The main thread inflates; the file checksum, block digests and payload digests of large
    # records hash on a thread each (three passes over mostly the same bytes: on two cores,
    # none of them waits for the others).
    hasher = HashThread()
    payload_hasher = HashThread()
    file_hasher = HashThread()
    file_sha = FileHash(file_hasher)
    problems = CappedProblems(rel, MAX_PROBLEMS)
    records = 0
    stored = Stored(f, gz, file_sha, heads=heads)
    stored.policy = policy or DigestPolicy()
    try:
        check_records(stored, rel, (hasher, payload_hasher), problems)
        records = stored.records
    except Broken as exc:
        records = stored.records
        failed = stored.record_start
        problems.append(Problem(rel, f"unreadable record ({exc})", failed))
        stored.drain()
        records += _resync(f, rel, gz, failed, (hasher, payload_hasher), problems, heads, stored.policy)
    except Exception as exc:   # whatever else a hostile file does, it is a problem, not a crash
        records = stored.records
        problems.append(Problem(rel, f"unreadable record ({type(exc).__name__}: {exc})", stored.record_start))
    finally:
        hasher.close()
        payload_hasher.close()
        file_hasher.close()
    if records == 0 and not problems:
        problems.append(Problem(rel, "no WARC records"))
    return "sha256:" + file_sha.sha.hexdigest(), file_sha.size, records, problems.closed()


def _resync(f: BinaryIO, rel: str, gz: bool, failed: int, hasher: Hashers,
            problems: list[Problem], heads: list[tuple[int, dict[str, str]]] | None = None,
            policy: DigestPolicy | None = None) -> int:
    """Go on checking from each next record that can be found after a damaged one."""
    records = 0
    magic = GZIP_MAGIC if gz else b"WARC/1."
    while (start := _find(f, magic, failed + 1)) is not None:
        f.seek(start)
        stored = Stored(f, gz, FileHash(), start, heads)
        stored.policy = policy or DigestPolicy()
        try:
            check_records(stored, rel, hasher, problems)
            return records + stored.records
        except Broken as exc:
            records += stored.records
            failed = stored.record_start
            problems.append(Problem(rel, f"unreadable record ({exc})", failed))
    return records


def _find(f: BinaryIO, magic: bytes, start: int) -> int | None:
    """Return the offset of the next `magic` at or after `start`, or None."""
    f.seek(start)
    carry, pos = b"", start
    while block := f.read(READ):
        data = carry + block
        found = data.find(magic)
        if found >= 0:
            return pos - len(carry) + found
        carry = data[-(len(magic) - 1):]
        pos += len(block)
    return None


def check_records(stored: Stored, rel: str, hasher: Hashers, problems: list[Problem],
                  stop: int | None = None) -> bool:
    """Check records from the stream's position on, counting them in `stored.records`; return
    True. With `stop` (a gzip member's file offset), end before the record starting at that
    member's first byte and return whether one did (False: the walk stepped over it, a record
    started inside that member, or the data ended first)."""
    previous = reported = None
    while True:
        if stored.at_member_start() and (stop is None or stored.tail_at < stop) and stored.member(FAST_MEMBER):
            # the member whose data is in the buffer: past any empty member met on the way
            offset = stored.file_offset(stored.position())
            if (stop is None or offset < stop) and _member_record(stored, rel, offset, hasher, problems):
                previous = offset
                continue
        line = stored.readline()
        while line in (b"\r\n", b"\n"):
            line = stored.readline()
        if not line:
            return stop is None
        position = stored.position() - len(line)
        offset = stored.file_offset(position)
        stored.record_start = offset if stored.gz else stored.members[0][1] + position
        if stop is not None and stored.record_start >= stop:
            # landed only if the record starts the member: one starting inside it (after a
            # record whose block ran on into the member) is not where a reader from `stop` starts
            return stored.record_start == stop and stored.members[0][0] == position
        if not line.startswith(b"WARC/"):
            raise Broken(f"no WARC record starts here ({line[:30]!r})")
        if stored.gz and offset == previous and offset != reported:
            # readers seek to a record's member: a second record in one member cannot be reached
            problems.append(Problem(rel, "several records in one gzip member", offset))
            reported = offset
        first_in_member = not (stored.gz and offset == previous)
        previous = offset
        headers = _warc_headers(stored)
        if stored.heads is not None and first_in_member:
            # the fields an index line is checked against, of the one record a reader seeking
            # to this offset reaches, no more
            stored.heads.append((stored.record_start, head_fields(headers)))
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            raise Broken("record without a valid Content-Length") from None
        if length < 0:
            raise Broken(f"record with a negative Content-Length ({length})")
        _check_record(stored, headers, length, rel, stored.record_start, hasher, problems)
        stored.records += 1


def _member_record(stored: Stored, rel: str, offset: int, hasher: Hashers, problems: list[Problem]) -> bool:
    """Check the record of a gzip member held whole in the buffer, when it is the plain case:
    one small record, CRLF lines, ended by CRLF CRLF and nothing else. Return False, the
    buffer untouched, for anything else: the record-by-record loop then reads it (the same
    checks, the same problems; this only skips its line-by-line steps)."""
    buf = stored.buf
    first = buf.find(b"\n", 0, LINE)
    if not buf.startswith(b"WARC/") or first < 0 or not buf.endswith(b"\r\n\r\n"):
        return False
    stored.off = first + 1
    headers = buffered_headers(stored, MAX_WARC_HEAD)
    try:
        length = int(headers.get("content-length", "")) if headers is not None else -1
    except ValueError:
        length = -1
    if headers is None or not 0 <= length < THREAD_MIN or len(buf) - stored.off != length + 4:
        stored.off = 0
        return False
    stored.record_start = offset
    if stored.heads is not None:
        stored.heads.append((offset, head_fields(headers)))
    _check_record(stored, headers, length, rel, offset, hasher, problems)
    stored.off += 4   # the CRLF CRLF ending the record
    stored.records += 1
    return True


def head_fields(headers: dict[str, str]) -> dict[str, str]:
    """Return the HEAD_FIELDS of a record's WARC headers, each value at most MAX_HEAD_VALUE
    characters: a longer one is cut and its SHA-256 kept under "<name>-sha256" (hex), so
    that it can still be compared whole (`head_matches`) without being held."""
    kept: dict[str, str] = {}
    for name in HEAD_FIELDS:
        value = headers.get(name)
        if value is None:
            continue
        if len(value) > MAX_HEAD_VALUE:
            kept[name + "-sha256"] = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
            value = value[:MAX_HEAD_VALUE]
        kept[name] = value
    return kept


def head_matches(heads: dict[str, str], name: str, value: str) -> bool:
    """Return True when the header `name` kept by `head_fields` is `value`, whole."""
    digest = heads.get(name + "-sha256")
    if digest is None:
        return heads.get(name) == value
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest() == digest


def _warc_headers(stored: Stored) -> dict[str, str]:
    """Read a record's WARC headers; raise Broken past MAX_WARC_HEAD bytes (one endless line
    is read 64 KB at a time, never held whole)."""
    fast = buffered_headers(stored, MAX_WARC_HEAD)
    if fast is not None:
        return fast
    headers: dict[str, str] = {}
    size = 0
    while (line := stored.readline()) not in (b"\r\n", b"\n", b""):
        size += len(line)
        if size > MAX_WARC_HEAD:
            raise Broken(f"WARC header over {MAX_WARC_HEAD} bytes")
        name, sep, value = line.decode("utf-8", "replace").partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


def _check_record(stored: Stored, headers: dict[str, str], length: int, rel: str, offset: int,
                  hasher: Hashers, problems: list[Problem]) -> None:
    kind = headers.get("warc-type", "")
    uri = headers.get("warc-target-uri")
    if length < THREAD_MIN and stored.whole(length):   # a small record: all in memory already
        block_check, payload_check = _check_buffered(stored, headers, length, rel, offset, problems)
    else:
        block_check, payload_check = _check_streamed(stored, headers, length, rel, offset, hasher, problems)
    matched = bool(block_check.expected) and block_check.matches()
    what = stored.policy.block_problem(kind, block_check.expected, matched, headers.get("warc-payload-digest"))
    if what is not None:
        found = (block_check.expected, block_check.found()) if block_check.expected else (None, None)
        problems.append(Problem(rel, what, offset, uri, *found))
    if payload_check.expected and not payload_check.matches():
        problems.append(Problem(rel, "payload digest mismatch", offset, uri, payload_check.expected,
                                payload_check.found()))


def _check_streamed(stored: Stored, headers: dict[str, str], length: int, rel: str, offset: int,
                    hasher: Hashers, problems: list[Problem]) -> tuple[Digest, Digest]:
    """Read a record's block through, hashing it (on the hash threads when large); return
    its (block, payload) digests."""
    uri = headers.get("warc-target-uri")
    # Handing small records to threads costs more than hashing them here.
    block_hasher, payload_hasher = hasher if length >= THREAD_MIN else (None, None)
    block_check = Digest(headers.get("warc-block-digest"), block_hasher)
    block = Block(stored, length, block_check)
    payload_check = _payload_check(block, headers, payload_hasher, rel, offset, uri, problems)
    while block.read(READ):
        pass
    if block.left:
        raise Broken(f"record cut short: {block.left} of {length} bytes missing")
    return block_check, payload_check


def _check_buffered(stored: Stored, headers: dict[str, str], length: int, rel: str, offset: int,
                    problems: list[Problem]) -> tuple[Digest, Digest]:
    """`_check_streamed` for a small record whose block is in the buffer: the same digests
    and problems, on a slice of it (no per-line reads, no hash threads)."""
    start = stored.off
    data = memoryview(stored.buf)[start:start + length]
    stored.off += length
    kind = headers.get("warc-type", "")
    uri = headers.get("warc-target-uri")
    block_check = Digest(headers.get("warc-block-digest"))
    block_check.update(data)
    check = Digest(None if kind == "revisit" else headers.get("warc-payload-digest"))
    if check.expected:
        if not (kind in HTTP_RECORDS and "application/http" in headers.get("content-type", "")):
            check.update(data)
        else:
            head_end = _head_end(stored.buf, start, start + length)
            # no header can be Transfer-Encoding if its name is nowhere in the head (bytes.lower
            # is ASCII's; no Latin-1 letter lowers into ASCII): the same answer as the parse
            if b"transfer-encoding" not in stored.buf[start:start + head_end].lower():
                chunked, stream = False, None
            else:
                stream = io.BytesIO(data)
                try:
                    chunked = is_chunked(head_headers(read_head(stream, STORED_HEAD)))
                except WireError as exc:
                    problems.append(Problem(rel, f"bad HTTP message ({exc})", offset, uri))
                    chunked = False
                head_end = stream.tell()
            rest = data[head_end:]
            if chunked and stream is not None:
                framed = Digest(check.expected)
                framed.update(rest)
                _feed(check, lambda: iter_payload(stream, True))   # type: ignore[arg-type]
                check = framed if framed.matches() else check
            else:
                check.update(rest)
    return block_check, check


def _head_end(buf: bytes, start: int, end: int) -> int:
    """Return how long `read_head` would make the HTTP head of the block buf[start:end], a
    small one (under STORED_HEAD, so never too long): to its first blank line ("\\r\\n" or
    "\\n") included, or all of it."""
    if buf.startswith(b"\n", start, end) or buf.startswith(b"\r\n", start, end):
        return buf.index(b"\n", start) + 1 - start
    ends = [at + len(mark) for mark in (b"\n\r\n", b"\n\n") if (at := buf.find(mark, start, end)) >= 0]
    return min(ends) - start if ends else end - start


def _payload_check(block: Block, headers: dict[str, str], hasher: HashThread | None, rel: str,
                   offset: int, uri: str | None, problems: list[Problem]) -> Digest:
    """Hash the record's payload as the WARC spec defines it; return its check."""
    kind = headers.get("warc-type", "")
    # A revisit's payload digest is that of the payload it revisits, which is not stored here.
    check = Digest(None if kind == "revisit" else headers.get("warc-payload-digest"), hasher)
    if not check.expected:
        return check
    if not (kind in HTTP_RECORDS and "application/http" in headers.get("content-type", "")):
        _feed(check, lambda: iter(lambda: block.read(READ), b""))   # the payload is the block
        return check
    try:
        chunked = is_chunked(head_headers(read_head(block, STORED_HEAD)))   # type: ignore[arg-type]
    except WireError as exc:
        problems.append(Problem(rel, f"bad HTTP message ({exc})", offset, uri))
        chunked = False
    if not chunked:
        _feed(check, lambda: iter(lambda: block.read(READ), b""))
        return check
    # wget and warcio (issue 74) hash a chunked body as stored, framing included. Either digest
    # is accepted: the block digest covers every byte of the record anyway.
    framed = Digest(check.expected, hasher)
    tee = _Tee(block, framed)
    _feed(check, lambda: iter_payload(tee, True))   # type: ignore[arg-type]
    while data := block.read(READ):
        framed.update(data)
    return framed if framed.matches() else check


def _feed(check: Digest, blocks: Callable[[], Any]) -> None:
    try:
        for data in blocks():
            check.update(data)
    except WireError:
        pass   # framing that breaks off ends the payload, as when it was fetched


class _Tee:
    """Reads through a block while hashing what is read into a second digest."""

    def __init__(self, block: Block, digest: Digest):
        self.block, self.digest = block, digest

    def read(self, n: int = -1) -> bytes:
        data = self.block.read(n)
        self.digest.update(data)
        return data

    def readline(self, limit: int = 65537) -> bytes:
        data = self.block.readline(limit)
        self.digest.update(data)
        return data
