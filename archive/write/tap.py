"""The wiretap: what an HTTP exchange sent and received, byte for byte, as it happens.

Connection classes for urllib3 that record the request bytes as sent and tee everything
http.client consumes from the socket (status line, headers, chunk framing, body) into a
spool, hashed as it arrives: in memory up to MEMORY_SPOOL bytes, then in a file. The spool
also enforces the body limits (--max-size, the rate floor, stopping). fetch.py builds its
requests on these; nothing here imports requests.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import io
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from archive.errors import DiskFull, StorageError
from archive.formats.wire import BLOCK
from archive.models import Body, CaptureOptions, TlsInfo

from .addresses import is_public
from .tls import tls_info

MEMORY_SPOOL = 1 << 20   # response blocks up to this size wait in memory, larger ones on disk

# Real sites send more than http.client's 100 header lines (cookies, CSP reports...); an
# answer is evidence even when it is verbose.
http.client._MAXHEADERS = 1000  # type: ignore[attr-defined]


class Abort(OSError):
    """Raised inside a read to stop a body: too slow, too large, or the capture is stopping."""

    def __init__(self, reason: str):
        super().__init__(errno.ECONNABORTED, f"aborted: {reason}")
        self.reason = reason


class Spool:
    """The response block being received, hashed as it arrives: kept in memory up to
    MEMORY_SPOOL bytes, then moved to a file in `spool_dir`, so no large body sits in memory
    and small ones cost no file system calls.

    Once `start_body()` is called, bytes also count towards the body: hashed as the payload
    (meaningful when the body is not chunked), measured against the size cap and the rate floor.
    """

    def __init__(self, spool_dir: Path, options: CaptureOptions, stopping: threading.Event):
        self.spool_dir = spool_dir
        self.path: Path | None = None
        self.file: BinaryIO = io.BytesIO()
        self.options = options
        self.stopping = stopping
        self.reset()

    def reset(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.sha = hashlib.sha256()
        self.payload: Any = None
        self.length = 0
        self.body = 0
        self.window = (time.monotonic(), 0)
        self.aborted: str | None = None

    def start_body(self) -> None:
        self.payload = hashlib.sha256()
        self.window = (time.monotonic(), 0)

    def write(self, data: bytes) -> None:
        if not data:
            return
        stop = None
        if self.payload is not None:
            data, stop = self._body_bytes(data)
        if self.path is None and self.length + len(data) > MEMORY_SPOOL:
            self._to_disk()
        try:
            self.file.write(data)
        except OSError as exc:
            raise disk_error(self.path or self.spool_dir, exc) from None
        self.sha.update(data)
        self.length += len(data)
        if stop:
            self.aborted = stop
            raise Abort(stop)

    def _body_bytes(self, data: bytes) -> tuple[bytes, str | None]:
        """Return the part of `data` to keep, and why the body stops here (or None)."""
        stop = None
        cap = self.options.max_size
        if cap and self.body + len(data) > cap:
            data, stop = data[: cap - self.body], "length"
        self.payload.update(data)
        self.body += len(data)
        start, seen = self.window
        now = time.monotonic()
        if now - start >= self.options.rate_window:
            if self.body - seen < self.options.min_rate * (now - start):
                stop = stop or "time"   # a trickle: under the rate floor for a whole window
            self.window = (now, self.body)
        if self.stopping.is_set():
            stop = stop or "unspecified"
        return data, stop

    def _to_disk(self) -> None:
        try:
            fd, name = tempfile.mkstemp(dir=self.spool_dir, suffix=".http")
            disk = os.fdopen(fd, "w+b")
            disk.write(self.file.getvalue())  # type: ignore[attr-defined]
        except OSError as exc:
            raise disk_error(self.spool_dir, exc) from None
        self.path, self.file = Path(name), disk

    def view(self) -> BinaryIO:
        """Return what was received so far, for reading from the start."""
        self.file.flush()
        if self.path is None:
            return io.BytesIO(self.file.getvalue())  # type: ignore[attr-defined]
        return open(self.path, "rb")

    def finish(self) -> Body:
        """Close the spool and return where the block now is."""
        if self.path is None:
            return Body(data=self.file.getvalue())  # type: ignore[attr-defined]
        self.file.close()
        return Body(path=self.path)

    def discard(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass   # a full disk fails the last flush; the file goes anyway
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def disk_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(path)
    return StorageError(path, exc.strerror or str(exc))


class Recorder:
    """What one exchange sent and received, filled in by the connection classes below."""

    def __init__(self, spool: Spool):
        self.spool = spool
        self.sent = bytearray()
        self.ip: str | None = None
        self.sock: socket.socket | None = None
        self.tls: TlsInfo | None = None

    def restart(self) -> None:
        # A retried request on a fresh connection starts the record over.
        self.sent.clear()
        self.spool.reset()


local = threading.local()


def recorder() -> Recorder | None:
    return getattr(local, "recorder", None)


class _TeeReader:
    """Wraps the socket file of an http.client response, copying what is consumed."""

    def __init__(self, raw: Any, spool: Spool):
        self._raw = raw
        self._spool = spool

    def readline(self, limit: int = -1) -> bytes:
        data: bytes = self._raw.readline(limit)
        self._spool.write(data)
        return data

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            parts = []
            while data := self._raw.read1(BLOCK):
                self._spool.write(data)
                parts.append(data)
            return b"".join(parts)
        buf = bytearray(amt)
        return bytes(buf[: self.readinto(buf)])

    def read1(self, amt: int = -1) -> bytes:
        data: bytes = self._raw.read1(amt)
        self._spool.write(data)
        return data

    def readinto(self, buf: Any) -> int:
        # Piece by piece, each recorded as it arrives: a timeout or reset mid-read must not
        # lose the bytes that did arrive (a buffered read would drop them with the exception).
        view = memoryview(buf).cast("B")
        n = 0
        while n < len(view):
            data = self._raw.read1(len(view) - n)
            if not data:
                break
            view[n:n + len(data)] = data
            n += len(data)
            self._spool.write(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _RecordingResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any):
        super().__init__(sock, *args, **kwargs)
        rec = recorder()
        if rec is not None:
            self.fp = _TeeReader(self.fp, rec.spool)  # type: ignore[assignment]
            rec.sock = sock
            try:
                rec.ip = sock.getpeername()[0]
            except OSError:
                pass

    def begin(self) -> None:
        super().begin()
        # http.client skips 100 Continue only; 102 and 103 Early Hints are interim too.
        while 100 < self.status < 200 and self.status != 101:
            self.headers = self.msg = None  # type: ignore[assignment]
            super().begin()
        rec = recorder()
        if rec is not None and rec.sock is not None:
            rec.tls = tls_info(rec.sock, self.version)   # None on a plain http connection


class Blocked(OSError):
    """A target address that --block-private refuses."""


def public_address(host: str, port: int) -> str:
    """Resolve `host` and return an address that is not private, loopback, link-local or
    reserved, in any IPv6 form that embeds an IPv4 address either (addresses.is_public);
    raise Blocked when every address is one of those."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Blocked(errno.EHOSTUNREACH, f"Name or service not known: {host} ({exc})") from None
    for info in infos:
        if is_public(str(info[4][0])):
            return str(info[4][0])
    raise Blocked(errno.EACCES, f"blocked-private: {host} resolves to {infos[0][4][0]}, not a public address")


class RecordingMixin:
    """Connection behaviour: record the bytes sent, tee the response, honour --resolve and
    --block-private (checked on the address actually connected to, so DNS cannot change it)."""

    resolve: dict[tuple[str, int], str] = {}
    block_private = False
    response_class = _RecordingResponse

    def _new_conn(self) -> socket.socket:
        target = self.resolve.get((self.host, self.port))  # type: ignore[attr-defined]
        if self.block_private:
            target = public_address(target or self.host, self.port)  # type: ignore[attr-defined]
        if not target:
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        # urllib3 connects to _dns_host; the Host header and TLS name keep using the real host.
        real, self._dns_host = self._dns_host, target  # type: ignore[has-type]
        try:
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        finally:
            self._dns_host = real

    def putrequest(self, *args: Any, **kwargs: Any) -> None:
        rec = recorder()
        if rec is not None:
            rec.restart()
        super().putrequest(*args, **kwargs)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        rec = recorder()
        if rec is not None and isinstance(data, (bytes, bytearray)):
            rec.sent += data
        super().send(data)  # type: ignore[misc]
