"""Check every record of a WARC file: block and payload digests, on two cores, in one read.

The file is read once in large blocks: the main thread hashes the stored bytes (the file
checksum) and inflates them (ISA-L's inflate where installed, zlib otherwise), and parses
records; a second thread does the digest hashing, in order. hashlib and both inflaters
release the GIL on large buffers, so the two overlap. Each gzip member's file offset is kept,
so a problem is reported at the offset of the record it is in.
"""
from __future__ import annotations

import hashlib
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO

from archive.formats.wire import STORED_HEAD, WireError, head_headers, is_chunked, iter_payload, read_head

from .conventions import DigestPolicy
from .digests import Broken, CappedProblems, Digest, Hashers, HashThread, Problem

_inflate_lib: Any
try:   # ISA-L inflates about twice as fast as zlib; the format is the same gzip
    from isal import isal_zlib as _inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency where wheels exist
    _inflate_lib = zlib

READ = 1 << 20
MAX_WARC_HEAD = 1 << 20   # a record's WARC header block; real ones are a few KB (issue 13: bombs)
THREAD_MIN = 1 << 20   # records at least this long are hashed on the hash threads
HTTP_RECORDS = ("response", "request")
GZIP_MAGIC = b"\x1f\x8b\x08"
HEAD_FIELDS = ("warc-type", "warc-target-uri", "warc-date", "warc-payload-digest")
MAX_HEAD_VALUE = 2048   # characters of a head field kept per record (the rest by its digest)
MAX_PROBLEMS = 50       # problems reported per WARC file; the rest are counted in one line


class _Stored:
    """The bytes of a WARC file as records see them: inflated member by member when gzipped.

    Reads the file once, hashing what it reads into `file_sha`, and remembers where each gzip
    member starts so any position maps back to the file offset of its member.
    """

    def __init__(self, f: BinaryIO, gz: bool, file_sha: Any, start: int = 0,
                 heads: list[tuple[int, dict[str, str]]] | None = None):
        self.f, self.gz, self.file_sha = f, gz, file_sha
        self.heads = heads   # where wanted: (file offset, WARC headers) of every record read
        self.buf, self.off, self.total = b"", 0, 0
        self.tail, self.tail_at = b"", start
        self.members: deque[tuple[int, int]] = deque([(0, start)])
        self.inflater: Any = _inflate_lib.decompressobj(31) if gz else None
        self.fed = 0     # compressed bytes given to the current member's inflater
        self.records = 0           # records read whole
        self.record_start = start  # file offset of the record being read (where damage is reported)
        self.policy = DigestPolicy()   # which digests a record may lack (warc/conventions.py)

    def position(self) -> int:
        return self.total - (len(self.buf) - self.off)

    def file_offset(self, position: int) -> int:
        """Return the file offset of the gzip member holding stream `position` (or the position)."""
        if not self.gz:
            return self.members[0][1] + position
        while len(self.members) > 1 and self.members[1][0] <= position:
            self.members.popleft()
        return self.members[0][1]

    def _more(self) -> bool:
        out = self._inflate() if self.gz else self._read_plain()
        if out is None:
            return False
        self.buf = self.buf[self.off:] + out
        self.off = 0
        self.total += len(out)
        return True

    def _read_plain(self) -> bytes | None:
        data = self.f.read(READ)
        self.file_sha.update(data)
        return data or None

    def _inflate(self) -> bytes | None:
        while True:
            if not self.tail:
                data = self.f.read(READ)
                if not data:
                    if self.fed:
                        self.record_start = self.members[-1][1]
                        raise Broken("gzip member cut short")
                    return None
                self.file_sha.update(data)
                self.tail = data
            try:
                out = self.inflater.decompress(self.tail, READ)
            except Exception as exc:   # zlib.error or isal's: corrupt compressed data
                self.record_start = self.members[-1][1]   # the member being inflated
                raise Broken(f"corrupt gzip data: {exc}") from None
            rest = self.inflater.unused_data if self.inflater.eof else self.inflater.unconsumed_tail
            used = len(self.tail) - len(rest)
            self.tail_at += used
            self.fed += used
            self.tail = rest
            if self.inflater.eof:
                self.members.append((self.total + len(out), self.tail_at))
                self.inflater = _inflate_lib.decompressobj(31)
                self.fed = 0
            if out:
                return out

    def read1(self, n: int) -> bytes:
        if self.off >= len(self.buf) and not self._more():
            return b""
        data = self.buf[self.off:self.off + n]
        self.off += len(data)
        return data

    def readline(self, limit: int = 65537) -> bytes:
        while True:
            end = self.buf.find(b"\n", self.off, self.off + limit)
            if end >= 0 or len(self.buf) - self.off >= limit or not self._more():
                stop = end + 1 if end >= 0 else min(len(self.buf), self.off + limit)
                line = self.buf[self.off:stop]
                self.off = stop
                return line

    def drain(self) -> int:
        """Read to the end (the file checksum needs every byte); return the bytes read."""
        size = 0
        while data := self.f.read(READ):
            self.file_sha.update(data)
            size += len(data)
        return size


class _Block:
    """A record block: at most `length` bytes of the stored stream, hashed as they are read."""

    def __init__(self, stored: _Stored, length: int, digest: Digest):
        self.stored, self.left, self.digest = stored, length, digest

    def read(self, n: int = -1) -> bytes:
        parts = []
        want = self.left if n is None or n < 0 else min(n, self.left)
        while want > 0 and (data := self.stored.read1(want)):
            parts.append(data)
            want -= len(data)
        return self._take(b"".join(parts))

    def readline(self, limit: int = 65537) -> bytes:
        return self._take(self.stored.readline(min(limit, self.left))) if self.left > 0 else b""

    def _take(self, data: bytes) -> bytes:
        self.left -= len(data)
        self.digest.update(data)
        return data


class _FileHash:
    """The checksum of the stored file, and its size, taken as it is read (hashed on `thread`)."""

    def __init__(self, thread: HashThread | None = None) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.thread = thread

    def update(self, data: bytes) -> None:
        if self.thread is not None:
            self.thread.update(self.sha, data)
        else:
            self.sha.update(data)
        self.size += len(data)


def check_warc(f: BinaryIO, rel: str, gz: bool,
               heads: list[tuple[int, dict[str, str]]] | None = None,
               policy: DigestPolicy | None = None) -> tuple[str, int, int, list[Problem]]:
    """Check every record of a WARC file; return (file sha256, file size, records, problems).

    With `heads`, append (file offset, the HEAD_FIELDS of its WARC headers, names lowercase) of
    each record read, in file order, so an index can be checked against the records without
    reading them again. `policy` says which digests a record may lack and counts those that
    do (warc/conventions.py); by default every record but warcinfo needs a block digest.
    """
    # The main thread inflates; the file checksum and block digests hash on one thread and
    # payload digests on another (the block and the payload are mostly the same bytes).
    hasher = HashThread()
    payload_hasher = HashThread()
    file_sha = _FileHash(hasher)
    problems = CappedProblems(rel, MAX_PROBLEMS)
    records = 0
    stored = _Stored(f, gz, file_sha, heads=heads)
    stored.policy = policy or stored.policy
    try:
        _check_records(stored, rel, (hasher, payload_hasher), problems)
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
        stored = _Stored(f, gz, _FileHash(), start, heads)
        stored.policy = policy or stored.policy
        try:
            _check_records(stored, rel, hasher, problems)
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


def _check_records(stored: _Stored, rel: str, hasher: Hashers, problems: list[Problem]) -> None:
    """Check records from the stream's position on, counting them in `stored.records`."""
    previous = reported = None
    while True:
        line = stored.readline()
        while line in (b"\r\n", b"\n"):
            line = stored.readline()
        if not line:
            return
        position = stored.position() - len(line)
        offset = stored.file_offset(position)
        stored.record_start = offset if stored.gz else stored.members[0][1] + position
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


def _warc_headers(stored: _Stored) -> dict[str, str]:
    """Read a record's WARC headers; raise Broken past MAX_WARC_HEAD bytes (one endless line
    is read 64 KB at a time, never held whole)."""
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


def _check_record(stored: _Stored, headers: dict[str, str], length: int, rel: str, offset: int,
                  hasher: Hashers, problems: list[Problem]) -> None:
    kind = headers.get("warc-type", "")
    uri = headers.get("warc-target-uri")
    # Handing small records to threads costs more than hashing them here.
    block_hasher, payload_hasher = hasher if length >= THREAD_MIN else (None, None)
    block_check = Digest(headers.get("warc-block-digest"), block_hasher)
    block = _Block(stored, length, block_check)
    payload_check = _payload_check(block, headers, payload_hasher, rel, offset, uri, problems)
    while block.read(READ):
        pass
    if block.left:
        raise Broken(f"record cut short: {block.left} of {length} bytes missing")
    matched = bool(block_check.expected) and block_check.matches()
    what = stored.policy.block_problem(kind, block_check.expected, matched, headers.get("warc-payload-digest"))
    if what is not None:
        found = (block_check.expected, block_check.found()) if block_check.expected else (None, None)
        problems.append(Problem(rel, what, offset, uri, *found))
    if payload_check.expected and not payload_check.matches():
        problems.append(Problem(rel, "payload digest mismatch", offset, uri, payload_check.expected,
                                payload_check.found()))


def _payload_check(block: _Block, headers: dict[str, str], hasher: HashThread | None, rel: str,
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

    def __init__(self, block: _Block, digest: Digest):
        self.block, self.digest = block, digest

    def read(self, n: int = -1) -> bytes:
        data = self.block.read(n)
        self.digest.update(data)
        return data

    def readline(self, limit: int = 65537) -> bytes:
        data = self.block.readline(limit)
        self.digest.update(data)
        return data
