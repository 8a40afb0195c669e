"""HTTP/1.x messages as bytes on the wire: head parsing, chunked decoding, content decoding.

Shared by the write side (fetch, extract) and the read side (verify), so both agree on what
a record's payload is: the entity body with transfer-coding removed, content-coding kept
(WARC 1.1, section 6.3.2), decoded further only to look for links.
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

BLOCK = 1 << 16


class WireError(ValueError):
    """Bytes that are not a well-formed HTTP message (as far as we need to read them)."""


def parse_head(head: bytes) -> tuple[str, int, str, tuple[tuple[str, str], ...]]:
    """Return (version, status, reason, headers) of a response head; raise WireError.

    >>> parse_head(b"HTTP/1.1 404 Not Found\\r\\nContent-Type: text/html\\r\\nX-A:b\\r\\n\\r\\n")
    ('HTTP/1.1', 404, 'Not Found', (('Content-Type', 'text/html'), ('X-A', 'b')))
    """
    lines = [line.rstrip("\r") for line in head.decode("iso-8859-1").split("\n")]
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.strip().partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise WireError(f"bad status line {lines[0][:80]!r}")
    return version, int(code), reason, parse_header_lines(lines[1:])


def head_headers(head: bytes) -> tuple[tuple[str, str], ...]:
    """Return the headers of a request or response head (its first line skipped).

    >>> head_headers(b"GET / HTTP/1.1\\nHost: ex.org\\r\\n\\r\\n")
    (('Host', 'ex.org'),)
    """
    lines = [line.rstrip("\r") for line in head.decode("iso-8859-1").split("\n")]
    return parse_header_lines(lines[1:])


def parse_header_lines(lines: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """Return (name, value) pairs of header lines, folding obsolete continuation lines."""
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return tuple(headers)


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """Return the first value of header `name` (case-insensitive), or None."""
    low = name.lower()
    return next((v for k, v in headers if k.lower() == low), None)


def is_chunked(headers: Iterable[tuple[str, str]]) -> bool:
    """Return True when the body is read as chunked: the rule http.client applies when fetching.

    Only a first Transfer-Encoding header of exactly "chunked" counts; any other body is read
    to its length or to the end of the connection, framing and all. Verification must read
    records the same way, or a faithful record would fail its own payload digest.

    >>> is_chunked([("Transfer-Encoding", " Chunked ")]), is_chunked([("Transfer-Encoding", "gzip, chunked")])
    (True, False)
    """
    value = header_value(headers, "Transfer-Encoding") or ""
    return value.strip().lower() == "chunked"


MAX_LINE = 65537          # http.client's line limit, plus one
MAX_HEAD = 1024 * MAX_LINE  # as many header lines as the fetcher accepts
STORED_HEAD = 4 << 20       # a head read back from a record someone else may have made


def read_head(stream: BinaryIO, limit: int = MAX_HEAD) -> bytes:
    """Read an HTTP head up to and including the blank line; raise WireError past `limit`."""
    parts: list[bytes] = []
    size = 0
    while True:
        line = stream.readline(limit - size + 1)
        parts.append(line)
        size += len(line)
        if line in (b"\r\n", b"\n", b""):
            return b"".join(parts)
        if size > limit:
            raise WireError("HTTP head too long")


def dechunk(stream: BinaryIO) -> Iterator[bytes]:
    """Yield the data of a chunked body read from `stream`; raise WireError on bad framing.

    >>> import io
    >>> b"".join(dechunk(io.BytesIO(b"3\\r\\nabc\\r\\n2;x=y\\r\\nde\\r\\n0\\r\\n\\r\\n")))
    b'abcde'
    """
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            return  # a body cut short ends here; the caller knows from the record
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise WireError(f"bad chunk size line {line[:40]!r}") from None
        if size == 0:
            return
        while size:
            data = stream.read(min(size, BLOCK))
            if not data:
                return
            size -= len(data)
            yield data
        stream.readline(MAX_LINE)


def iter_stream(stream: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """Yield fixed-size blocks from `stream`, at most `limit` bytes in all."""
    left = limit
    while left is None or left > 0:
        data = stream.read(BLOCK if left is None else min(BLOCK, left))
        if not data:
            return
        if left is not None:
            left -= len(data)
        yield data


def iter_payload(stream: BinaryIO, chunked: bool) -> Iterator[bytes]:
    """Yield the entity body that follows the head in `stream` (transfer-coding removed)."""
    return dechunk(stream) if chunked else iter_stream(stream)


def payload_digest(stream: BinaryIO, chunked: bool) -> str:
    """Return "sha256:<hex>" of the entity body in `stream`, transfer-coding removed.

    Framing that breaks off (a bad chunk-size line, a cut body) ends the payload there: the
    digest covers what could be read, the same way when fetching and when verifying.
    """
    sha = hashlib.sha256()
    try:
        for data in iter_payload(stream, chunked):
            sha.update(data)
    except WireError:
        pass
    return "sha256:" + sha.hexdigest()


class DecodedTooLarge(WireError):
    """Decoding a body went past the allowed size (a decompression bomb, or just huge)."""


def decode_content(blocks: Iterable[bytes], encoding: str | None, cap: int) -> Iterator[bytes]:
    """Yield `blocks` with Content-Encoding undone, at most `cap` bytes in all.

    Unknown encodings pass through untouched. Raises DecodedTooLarge past `cap` and
    WireError on corrupt data.

    >>> import gzip
    >>> b"".join(decode_content([gzip.compress(b"hello")], "gzip", 100))
    b'hello'
    """
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    stream: Iterable[bytes] = blocks
    for coding in reversed(codings):
        stream = _decoder(stream, coding)
    total = 0
    for block in stream:
        total += len(block)
        if total > cap:
            raise DecodedTooLarge(f"decoded body over {cap} bytes")
        yield block


def _decoder(blocks: Iterable[bytes], coding: str) -> Iterator[bytes]:
    # Each decoder yields at most BLOCK bytes at a time, so the caller's cap holds memory down.
    if coding in ("gzip", "x-gzip", "deflate"):
        return _zlib_decode(blocks, coding)
    if coding == "br":
        return _brotli_decode(blocks)
    return iter(blocks)  # identity, or an encoding we cannot undo


def _zlib_decode(blocks: Iterable[bytes], coding: str) -> Iterator[bytes]:
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    decomp = zlib.decompressobj(wbits)
    first = True
    try:
        for block in blocks:
            if first and coding == "deflate" and block[:1] and (block[0] & 0x0F) != 8:
                decomp = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            first = False
            data = block
            while data:
                out = decomp.decompress(data, BLOCK)
                yield out
                data = decomp.unconsumed_tail
                if decomp.eof:
                    return
        yield decomp.flush()
    except zlib.error as exc:
        raise WireError(f"corrupt {coding} data: {exc}") from None


def _brotli_decode(blocks: Iterable[bytes]) -> Iterator[bytes]:
    try:
        import brotli
    except ImportError:  # pragma: no cover - brotli is a dependency
        yield from blocks
        return
    decomp = brotli.Decompressor()
    try:
        for block in blocks:
            out = decomp.process(block, output_buffer_limit=BLOCK)
            yield out
            while not decomp.can_accept_more_data():
                yield decomp.process(b"", output_buffer_limit=BLOCK)
    except brotli.error as exc:
        raise WireError(f"corrupt br data: {exc}") from None
