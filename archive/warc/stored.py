"""The bytes of a WARC file as its records see them, read once: inflated member by member
when gzipped (ISA-L's inflate where installed, zlib otherwise), hashed as read, every
position mapped back to the file offset of its gzip member. Used by `check`.
"""
from __future__ import annotations

import hashlib
import zlib
from collections import deque
from typing import Any, BinaryIO

from .digests import Broken, Digest, HashThread

_inflate_lib: Any
try:   # ISA-L inflates about twice as fast as zlib; the format is the same gzip
    from isal import isal_zlib as _inflate_lib
except ImportError:  # pragma: no cover - isal is a dependency where wheels exist
    _inflate_lib = zlib

READ = 1 << 20
FEED = 4 << 10   # compressed bytes given to the inflater at once at the start of a member
LINE = 65537   # the longest line readline returns at once


def inflater() -> Any:
    """Return a decompressor of one gzip member (RFC 1952)."""
    return _inflate_lib.decompressobj(31)


class Stored:
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
        self.tail_pos = 0   # how much of `tail` (the block read last) was inflated
        self.members: deque[tuple[int, int]] = deque([(0, start)])
        self.inflater: Any = inflater() if gz else None
        self.fed = 0     # compressed bytes given to the current member's inflater
        self.records = 0           # records read whole
        self.record_start = start  # file offset of the record being read (where damage is reported)
        self.policy: Any = None    # which digests a record may lack (warc/conventions.DigestPolicy), set by check
        self.error: Broken | None = None   # met reading ahead: raised when the data before it is used up
        self.error_at = start

    def position(self) -> int:
        return self.total - (len(self.buf) - self.off)

    def file_offset(self, position: int) -> int:
        """Return the file offset of the gzip member holding stream `position` (or the position)."""
        if not self.gz:
            return self.members[0][1] + position
        while len(self.members) > 1 and self.members[1][0] <= position:
            self.members.popleft()
        return self.members[0][1]

    def at_member_start(self) -> bool:
        """Return True when the buffer is used up at the end of a gzip member."""
        return self.gz and self.fed == 0 and self.off >= len(self.buf) and self.error is None

    def member(self, limit: int) -> bool:
        """At a member start, inflate that member into the buffer; return True when it is
        there whole (under `limit` bytes). What cannot be read is raised by the next read
        that needs it, as if read there: the buffer holds what came before it."""
        while len(self.members) > 1:   # no position before this member's start is asked for again
            self.members.popleft()
        parts, size = [self.buf[self.off:]], 0
        try:
            while size <= limit:
                out = self._inflate()
                if out is None:
                    break
                parts.append(out)
                size += len(out)
                self.total += len(out)
                if self.fed == 0:   # the member ended
                    break
        except Broken as exc:
            self._defer(exc)
        self.buf, self.off = b"".join(parts), 0
        return self.error is None and self.fed == 0 and size <= limit

    def _defer(self, exc: Broken) -> None:
        self.error, self.error_at = exc, self.record_start

    def _more(self) -> bool:
        if self.error is not None:
            self.record_start = self.error_at   # the member it was met in
            raise self.error
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
            if self.tail_pos >= len(self.tail):
                data = self.f.read(READ)
                if not data:
                    if self.fed:
                        self.record_start = self.members[-1][1]
                        raise Broken("gzip member cut short")
                    return None
                self.file_sha.update(data)
                self.tail, self.tail_pos = data, 0
            try:
                # A member's leftover input is copied out of the inflater each time one ends:
                # feeding small slices keeps that copy small when there are many small members.
                feed = FEED if self.fed < 4 * FEED else READ
                piece = memoryview(self.tail)[self.tail_pos:self.tail_pos + feed]
                out = self.inflater.decompress(piece, READ)
            except Exception as exc:   # zlib.error or isal's: corrupt compressed data
                self.record_start = self.members[-1][1]   # the member being inflated
                raise Broken(f"corrupt gzip data: {exc}") from None
            rest = self.inflater.unused_data if self.inflater.eof else self.inflater.unconsumed_tail
            used = len(piece) - len(rest)
            self.tail_at += used
            self.fed += used
            self.tail_pos += used
            if self.inflater.eof:
                start = self.total + len(out)
                if self.members[-1][0] == start and len(self.members) > 1:
                    self.members.pop()   # a member that held no data: no position is in it
                self.members.append((start, self.tail_at))
                self.inflater = inflater()
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

    def whole(self, n: int) -> bool:
        """Return whether the next `n` bytes are in the buffer, reading on to get them (False
        at the end of the data, or where it is damaged: the streamed read then reports that
        where it meets it)."""
        have = len(self.buf) - self.off
        if have >= n or self.error is not None:
            return have >= n
        parts = [self.buf[self.off:]]
        try:
            while have < n:
                out = self._inflate() if self.gz else self._read_plain()
                if out is None:
                    break
                parts.append(out)
                have += len(out)
                self.total += len(out)
        except Broken as exc:   # raised when the bytes before it are used up, as a plain read would
            self._defer(exc)
        finally:   # joined once, not once per piece: what was read stays in the buffer
            self.buf, self.off = b"".join(parts), 0
        return have >= n

    def drain(self) -> int:
        """Read to the end (the file checksum needs every byte); return the bytes read."""
        size = 0
        while data := self.f.read(READ):
            self.file_sha.update(data)
            size += len(data)
        return size


class Block:
    """A record block: at most `length` bytes of the stored stream, hashed as they are read."""

    def __init__(self, stored: Stored, length: int, digest: Digest):
        self.stored, self.left, self.digest = stored, length, digest

    def read(self, n: int = -1) -> bytes:
        """Return at most `n` bytes (all that is left when n < 0); fewer when the buffer holds
        fewer, as a raw stream's read may: b"" only at the end of the block or the data."""
        if n is not None and n >= 0:
            # one slice of the buffer, not a join of several: every reader here loops to b""
            return self._take(self.stored.read1(min(n, self.left))) if self.left > 0 and n else b""
        parts = []
        want = self.left
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


class FileHash:
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



def buffered_headers(stored: Stored, limit: int) -> dict[str, str] | None:
    """Return a record's WARC headers (names lowercase, the first of each name) parsed in one
    pass over the buffer, and step past them, when the whole header block is in the buffer,
    under `limit` bytes, with no line near LINE; else None, and read them line by line: the
    same result either way (check._warc_headers)."""
    buf, off = stored.buf, stored.off
    if buf[off:off + 2] == b"\r\n" or buf[off:off + 1] == b"\n":
        return None   # no header at all: the line loop says it
    end = buf.find(b"\n\r\n", off, off + limit)
    bare = buf.find(b"\n\n", off, end + 2 if end >= 0 else off + limit)
    if bare >= 0:
        end, stop = bare, bare + 2
    elif end >= 0:
        stop = end + 3
    else:
        return None
    block = buf[off:end]
    lines = block.decode("utf-8", "replace").split("\n")
    if len(block) > limit - 3 or max(map(len, lines)) >= LINE // 4:
        return None   # near a limit: the line loop applies it byte for byte
    # the first of each name wins: the pairs go in last first
    pairs = [line.partition(":") for line in lines]
    stored.off = stop
    return {name.strip().lower(): value.strip() for name, sep, value in reversed(pairs) if sep}
