"""WARC 1.1 records and files; the only module that writes WARC.

Each record is its own gzip member, so a reader can seek to any record offset and a file cut
short stays readable up to its last complete record. Digests arrive computed (fetch hashes
while it streams). The record head is a few header lines written here directly: warcio's
writer re-parses and re-serialises headers per record, which profiling showed to be a
sixth of a small-file capture's CPU. warcio reads the files back in the tests.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from warcio.timeutils import datetime_to_iso_date

from archive.errors import DiskFull, StorageError
from archive.formats.wire import BLOCK
from archive.models import Exchange, Original, Record
from archive.version import __version__

from .conventions import DIGEST_CONVENTION
from .members import MemberSink, WarcFile
from .tlsfields import warc_fields as tls_fields

logger = logging.getLogger(__name__)

WARC_VERSION = "WARC/1.1"
EMPTY_SHA256 = "sha256:" + hashlib.sha256(b"").hexdigest()
NewId = Callable[[], str]
Headers = list[tuple[str, str]]
REQUEST_TYPE = "application/http;msgtype=request"
RESPONSE_TYPE = "application/http;msgtype=response"
IDENTICAL_PAYLOAD = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
FIELDS_TYPE = "application/warc-fields"


def new_record_id() -> str:
    """Return a fresh WARC-Record-ID value."""
    return f"<urn:uuid:{uuid.uuid4()}>"


def warc_date(moment: datetime) -> str:
    """Return a WARC 1.1 date with microseconds, e.g. 2026-11-26T11:23:15.123456Z."""
    return str(datetime_to_iso_date(moment.replace(tzinfo=None), use_micros=True))


class WarcWriter:
    """Appends request/response pairs to rotating `.warc.gz` files in `directory`; thread-safe."""

    def __init__(self, directory: Path, prefix: str, info: dict[str, object], *,
                 clock: Callable[[], datetime], new_id: NewId = new_record_id,
                 rotate_bytes: int = 1_000_000_000, level: int = 3, crawl_host: str | None = None,
                 min_free: int = 0, existing: Sequence[Path] = ()):
        self.directory = directory
        self.prefix = prefix
        self.info = info
        self.clock = clock
        self.new_id = new_id
        self.rotate_bytes = rotate_bytes
        self.min_free = min_free
        self.level = level
        self.crawl_host = crawl_host or socket.gethostname().split(".")[0] or "localhost"
        self.lock = threading.Lock()
        self.files: list[Path] = list(existing)   # a resumed capture's files: new ones follow
        self.checksums: dict[Path, tuple[str, int]] = {}   # path -> ("sha256:...", size)
        self._file: WarcFile | None = None
        self._sink: MemberSink | None = None
        self.warcinfo_id = ""
        self.closed = False
        self.metadata_records = 0   # TLS metadata records written beside responses
        with self.lock:
            self._open_next()

    # -- files ---------------------------------------------------------------------------
    def _open_next(self) -> None:
        moment = self.clock()
        stamp = moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"
        name = f"{self.prefix}-{stamp}-{len(self.files):05d}-{self.crawl_host}.warc.gz"
        path = self.directory / name
        try:
            self._file = WarcFile(path)
        except OSError as exc:
            raise _storage_error(path, exc) from None
        self.files.append(path)
        self._sink = MemberSink(self._file, self.level)
        self._write_warcinfo(name, moment)

    def _write_warcinfo(self, filename: str, moment: datetime) -> None:
        fields = {"software": f"archive/{__version__}", "format": "WARC File Format 1.1",
                  "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                  "payload-digest": DIGEST_CONVENTION}
        fields.update({k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                       for k, v in self.info.items()})
        body = "".join(f"{k}: {' '.join(str(v).split())}\r\n" for k, v in fields.items()).encode()
        self.warcinfo_id = self.new_id()
        headers = [("WARC-Type", "warcinfo"), ("WARC-Record-ID", self.warcinfo_id),
                   ("WARC-Date", warc_date(moment)), ("WARC-Filename", filename),
                   ("WARC-Block-Digest", _sha256(body))]
        self._write(headers, "application/warc-fields", io.BytesIO(body), len(body))
        try:
            self._file.flush()   # type: ignore[union-attr]
        except OSError as exc:
            raise _storage_error(self.files[-1], exc) from None

    def close(self) -> list[Path]:
        """Flush and close the current file; return every file written."""
        with self.lock:
            self.closed = True
            self._close_file()
        return list(self.files)

    def _close_file(self) -> None:
        if self._file is None:
            return
        try:
            self._file.file.flush()
            os.fsync(self._file.file.fileno())
            self._file.file.close()
        except OSError as exc:
            raise _storage_error(self.files[-1], exc) from None
        self.checksums[self.files[-1]] = ("sha256:" + self._file.sha.hexdigest(), self._file.size)
        self._file = None

    # -- records -------------------------------------------------------------------------
    def write_exchange(self, exchange: Exchange, original: Original | None = None) -> Record:
        """Write the request and response records of `exchange`; return where the response is.

        With `original` (a stored record with the same payload), the response is written as
        a revisit record: its HTTP head only, referring to the original for the body.
        """
        if exchange.block.data is None and original is None:   # a large body: streamed from its spool file
            with self.lock:
                self._ready()
                try:
                    return self._write_pair(exchange)
                except BaseException:
                    self.closed = True   # a record half written: nothing more may follow it
                    raise
        # A small one is compressed before taking the lock, so threads compress side by side.
        info = self.warcinfo_id
        members = self._compress_pair(exchange, info, original)
        with self.lock:
            self._ready()
            if self.warcinfo_id != info:   # the file rotated meanwhile: name the new warcinfo
                members = self._compress_pair(exchange, self.warcinfo_id, original)
            assert self._file is not None
            try:
                self._file.write(members[0])
                offset = self._file.tell()
                self._file.write(members[1])
                for member in members[2:]:   # the TLS metadata record, after its response
                    self._file.write(member)
                    self.metadata_records += 1
                self._file.flush()
            except OSError as exc:
                self.closed = True   # a record half written: nothing more may follow it
                raise _storage_error(self.files[-1], exc) from None
            return self._record(exchange, offset, len(members[1]), original)

    def write_resource(self, uri: str, content_type: str, data: bytes, moment: datetime) -> Record:
        """Write `data` as one `resource` record (WARC 1.1 section 6.4) for `uri`, e.g.
        urn:view:<page URL> (image/png) or urn:text:<page URL>; return where it is (status 200)."""
        digest = _sha256(data)
        headers = [("WARC-Type", "resource"), ("WARC-Record-ID", self.new_id()),
                   ("WARC-Date", warc_date(moment)), ("WARC-Target-URI", uri),
                   ("WARC-Warcinfo-ID", ""), ("WARC-Block-Digest", digest), ("WARC-Payload-Digest", digest)]
        with self.lock:
            self._ready()
            assert self._file is not None
            headers[4] = ("WARC-Warcinfo-ID", self.warcinfo_id)
            offset = self._file.tell()
            self._write(headers, content_type, io.BytesIO(data), len(data))
            self._file.flush()
            return Record(url=uri, date=moment, status=200, mime=content_type.split(";")[0], payload_digest=digest,
                          filename=self.files[-1].name, offset=offset, length=self._file.tell() - offset)

    def _ready(self) -> None:
        if self.closed:
            raise StorageError(self.directory, "the WARC writer is closed (capture stopping)")
        if self.min_free and shutil.disk_usage(self.directory).free < self.min_free:
            # stop while what is written is whole, before the disk fills mid-record
            raise DiskFull(self.directory, why=f"less than --min-free {self.min_free} bytes free")
        if self._file is None or self._file.tell() >= self.rotate_bytes:
            self._close_file()
            self._open_next()

    def _pair_headers(self, ex: Exchange, warcinfo_id: str, original: Original | None = None,
                      head: bytes = b"") -> tuple[Headers, Headers]:
        """Return the WARC headers of the (request, response or revisit) records of an exchange."""
        date = warc_date(ex.date)
        response_id, request_id = self.new_id(), self.new_id()
        common = [("WARC-Date", date), ("WARC-Target-URI", ex.url), ("WARC-Warcinfo-ID", warcinfo_id)]
        if ex.ip:
            common.append(("WARC-IP-Address", ex.ip))
        if original is None:
            response = [("WARC-Type", "response"), ("WARC-Record-ID", response_id), *common,
                        ("WARC-Concurrent-To", request_id),
                        ("WARC-Block-Digest", ex.block_digest), ("WARC-Payload-Digest", ex.payload_digest)]
            if ex.truncated:
                response.append(("WARC-Truncated", ex.truncated))
        else:   # WARC 1.1 section 6.7: the block is the HTTP head alone
            response = [("WARC-Type", "revisit"), ("WARC-Record-ID", response_id), *common,
                        ("WARC-Concurrent-To", request_id),
                        ("WARC-Profile", NOT_MODIFIED if ex.status == 304 else IDENTICAL_PAYLOAD),
                        ("WARC-Refers-To", original.record_id),
                        ("WARC-Refers-To-Target-URI", original.uri),
                        ("WARC-Refers-To-Date", original.date), ("WARC-Block-Digest", _sha256(head))]
            if ex.status != 304:   # a 304 has no payload: the stored one is the original's
                response.append(("WARC-Payload-Digest", ex.payload_digest))
        response += _tls_headers(ex)
        request = [("WARC-Type", "request"), ("WARC-Record-ID", request_id), *common,
                   ("WARC-Concurrent-To", response_id),
                   ("WARC-Block-Digest", _sha256(ex.request)), ("WARC-Payload-Digest", EMPTY_SHA256)]
        return request, response

    def _compress_pair(self, ex: Exchange, warcinfo_id: str,
                       original: Original | None = None) -> tuple[bytes, ...]:
        """Return the gzip members of the request and response (or revisit) records, and of
        the TLS metadata record of an https exchange, made in memory."""
        head = b""
        if original is not None:
            with ex.block.open() as stored:
                head = stored.read(ex.header_length)
        request, response = self._pair_headers(ex, warcinfo_id, original, head)
        body, length = (ex.block.open(), ex.block_length) if original is None else (io.BytesIO(head), len(head))
        records: list[tuple[Headers, str, BinaryIO, int]] = [
            (request, REQUEST_TYPE, io.BytesIO(ex.request), len(ex.request)),
            (response, RESPONSE_TYPE, body, length)]
        if ex.tls is not None:
            headers, fields = self._tls_record(ex, response)
            records.append((headers, FIELDS_TYPE, io.BytesIO(fields), len(fields)))
        out = []
        for headers, ctype, stream, size in records:
            buffer = io.BytesIO()
            with stream:
                _write(MemberSink(buffer, self.level), headers, ctype, stream, size)   # type: ignore[arg-type]
            out.append(buffer.getvalue())
        return tuple(out)

    def _tls_record(self, ex: Exchange, response: Headers) -> tuple[Headers, bytes]:
        """Return the headers and block of the metadata record holding an exchange's TLS facts."""
        assert ex.tls is not None
        block = tls_fields(ex.tls)
        named = dict(response)
        headers = [("WARC-Type", "metadata"), ("WARC-Record-ID", self.new_id()),
                   ("WARC-Date", named["WARC-Date"]), ("WARC-Target-URI", ex.url),
                   ("WARC-Warcinfo-ID", named["WARC-Warcinfo-ID"]),
                   ("WARC-Concurrent-To", named["WARC-Record-ID"]), *_tls_headers(ex),
                   ("WARC-Block-Digest", _sha256(block))]
        return headers, block

    def _write_pair(self, ex: Exchange) -> Record:
        assert self._file is not None
        request, response = self._pair_headers(ex, self.warcinfo_id)
        self._write(request, REQUEST_TYPE, io.BytesIO(ex.request), len(ex.request))
        offset = self._file.tell()
        with ex.block.open() as body:
            self._write(response, RESPONSE_TYPE, body, ex.block_length)
        length = self._file.tell() - offset
        if ex.tls is not None:
            headers, block = self._tls_record(ex, response)
            self._write(headers, FIELDS_TYPE, io.BytesIO(block), len(block))
            self.metadata_records += 1
        try:
            self._file.flush()
        except OSError as exc:
            raise _storage_error(self.files[-1], exc) from None
        return self._record(ex, offset, length)

    def _record(self, ex: Exchange, offset: int, length: int, original: Original | None = None) -> Record:
        # a 304 revisit stands for the original's payload: its index line carries that digest
        digest = original.digest if original is not None and ex.status == 304 else ex.payload_digest
        return Record(url=ex.url, date=ex.date, status=ex.status, mime=ex.mime,
                      payload_digest=digest, filename=self.files[-1].name,
                      offset=offset, length=length, original=original)

    def _write(self, headers: Headers, content_type: str, body: BinaryIO, length: int) -> None:
        assert self._sink is not None
        try:
            _write(self._sink, headers, content_type, body, length)
        except OSError as exc:
            raise _storage_error(self.files[-1], exc) from None


def record_head(headers: Headers, content_type: str, length: int) -> bytes:
    """Return the head of a WARC 1.1 record: version line, named fields, type and length.

    >>> record_head([("WARC-Type", "resource")], "text/plain", 5)
    b'WARC/1.1\\r\\nWARC-Type: resource\\r\\nContent-Type: text/plain\\r\\nContent-Length: 5\\r\\n\\r\\n'
    """
    lines = [WARC_VERSION, *(f"{name}: {value}" for name, value in headers),
             f"Content-Type: {content_type}", f"Content-Length: {length}", "", ""]
    # WARC 1.1 allows UTF-8 in field values (an IRI in WARC-Target-URI, say)
    return "\r\n".join(lines).encode("utf-8")


def _write(sink: MemberSink, headers: Headers, content_type: str, body: BinaryIO, length: int) -> None:
    """Write one record as one gzip member: head, `length` bytes of body, and the closing CRLFs."""
    sink.write(record_head(headers, content_type, length))
    left = length
    while left > 0 and (data := body.read(min(BLOCK, left))):
        sink.write(data)
        left -= len(data)
    if left:
        raise StorageError(getattr(body, "name", "spool"), f"record body {left} bytes short")
    sink.write(b"\r\n\r\n")
    sink.flush()


def _tls_headers(ex: Exchange) -> Headers:
    """Return the IIPC extension fields of an https exchange: WARC-Protocol, WARC-Cipher-Suite."""
    if ex.tls is None:
        return []
    headers = [("WARC-Protocol", p) for p in ex.tls.protocols]
    if ex.tls.cipher_suite:
        headers.append(("WARC-Cipher-Suite", ex.tls.cipher_suite))
    return headers


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _storage_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(path)
    return StorageError(path, exc.strerror or str(exc))
