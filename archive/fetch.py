"""One HTTP exchange, streamed to a spool file and hashed in the same pass.

The only module that imports requests (and urllib3 under it). A WARC record must hold the
bytes as the server sent them, so the connection classes tee everything http.client consumes
from the socket (status line, headers, chunk framing, body) into the spool file. Redirects
are not followed here: each hop is an exchange of its own. Interim 1xx answers are read past,
and only the final response is kept.
"""
from __future__ import annotations

import errno
import hashlib
import http.client
import io
import http.cookiejar
import ipaddress
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import DiskFull, FetchError, StorageError, UsageError
from .models import Body, CaptureOptions, Exchange, utcnow
from .urls import host_of
from .wire import BLOCK, WireError, is_chunked, parse_head, payload_digest, read_head

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
MEMORY_SPOOL = 1 << 20   # response blocks up to this size wait in memory, larger ones on disk
NO_BODY = (204, 304)

# Real sites send more than http.client's 100 header lines (cookies, CSP reports...); an
# answer is evidence even when it is verbose.
http.client._MAXHEADERS = 1000  # type: ignore[attr-defined]


class _Abort(OSError):
    """Raised inside a read to stop a body: too slow, too large, or the capture is stopping."""

    def __init__(self, reason: str):
        super().__init__(errno.ECONNABORTED, f"aborted: {reason}")
        self.reason = reason


class _Spool:
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
            raise _disk_error(self.path or self.spool_dir, exc) from None
        self.sha.update(data)
        self.length += len(data)
        if stop:
            self.aborted = stop
            raise _Abort(stop)

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
            raise _disk_error(self.spool_dir, exc) from None
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


def _disk_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(path)
    return StorageError(path, exc.strerror or str(exc))


class _Recorder:
    """What one exchange sent and received, filled in by the connection classes below."""

    def __init__(self, spool: _Spool):
        self.spool = spool
        self.sent = bytearray()
        self.ip: str | None = None
        self.sock: socket.socket | None = None

    def restart(self) -> None:
        # A retried request on a fresh connection starts the record over.
        self.sent.clear()
        self.spool.reset()


_local = threading.local()


def _recorder() -> _Recorder | None:
    return getattr(_local, "recorder", None)


class _TeeReader:
    """Wraps the socket file of an http.client response, copying what is consumed."""

    def __init__(self, raw: Any, spool: _Spool):
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
        rec = _recorder()
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


class Blocked(OSError):
    """A target address that --block-private refuses."""


def public_address(host: str, port: int) -> str:
    """Resolve `host` and return an address that is not private, loopback, link-local or
    reserved; raise Blocked when every address is one of those."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Blocked(errno.EHOSTUNREACH, f"Name or service not known: {host} ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_global and not address.is_multicast:
            return str(address)
    raise Blocked(errno.EACCES, f"blocked-private: {host} resolves to {infos[0][4][0]}, not a public address")


class _RecordingMixin:
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
        rec = _recorder()
        if rec is not None:
            rec.restart()
        super().putrequest(*args, **kwargs)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        rec = _recorder()
        if rec is not None and isinstance(data, (bytes, bytearray)):
            rec.sent += data
        super().send(data)  # type: ignore[misc]


def _adapter(options: CaptureOptions) -> HTTPAdapter:
    resolve = {(host, port): addr for host, port, addr in options.resolve}
    behaviour = {"resolve": resolve, "block_private": options.block_private}
    http_conn = type("RecordingHTTPConnection", (_RecordingMixin, urllib3.connection.HTTPConnection), behaviour)
    https_conn = type("RecordingHTTPSConnection", (_RecordingMixin, urllib3.connection.HTTPSConnection), behaviour)
    http_pool = type("RecordingHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("RecordingHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

        def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(*args, **kwargs)
            manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
            return manager

    # pool_connections: hosts kept warm; pool_maxsize: connections per host, blocking at
    # the limit like a browser does.
    return Adapter(pool_connections=max(10, options.connections), pool_maxsize=options.per_host,
                   pool_block=True, max_retries=0)


class Fetcher:
    """Fetches single URLs without following redirects, into spool files under `spool_dir`."""

    def __init__(self, options: CaptureOptions, spool_dir: Path, clock: Clock = utcnow,
                 header_hosts: frozenset[str] = frozenset()):
        self.options = options
        self.header_hosts = header_hosts   # --header goes to these hosts only (the seeds')
        self.proxies = {"http": options.proxy, "https": options.proxy} if options.proxy else {}
        self.spool_dir = spool_dir
        self.clock = clock
        self.stopping = threading.Event()
        self.active: set[_Recorder] = set()
        self.lock = threading.Lock()
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc from the environment: say them explicitly
        self.adapter = _adapter(options)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        self.session.headers.clear()
        self.session.headers.update({
            "User-Agent": options.user_agent,
            "Accept-Encoding": "gzip, deflate, br",
            "Connection": "keep-alive",
        })
        if options.cookies:
            self.session.cookies = load_cookies(options.cookies)  # type: ignore[assignment]

    def close(self) -> None:
        """Close every pooled connection."""
        self.session.close()

    def abort(self) -> None:
        """Stop every exchange under way now (their sockets are shut) and refuse new ones."""
        self.stopping.set()
        with self.lock:
            socks = [r.sock for r in self.active if r.sock is not None]
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fetch(self, url: str, accept: str = "*/*") -> Exchange:
        """Fetch `url` once; return the Exchange, or raise FetchError when no answer came."""
        try:
            return self._attempt(url, accept)
        except FetchError as exc:
            if exc.kind != "connection-error" or self.stopping.is_set():
                raise
            # A kept-alive connection the server had dropped: one more try on a fresh one.
            logger.info("%s: retrying once after %s", url, exc)
            return self._attempt(url, accept)

    def _attempt(self, url: str, accept: str) -> Exchange:
        if self.stopping.is_set():
            raise FetchError(url, "stopped", "the capture is stopping")
        spool = _Spool(self.spool_dir, self.options, self.stopping)
        rec = _Recorder(spool)
        _local.recorder = rec
        with self.lock:
            self.active.add(rec)
        try:
            return self._exchange(url, accept, rec, self.clock())
        except BaseException:
            spool.discard()
            raise
        finally:
            _local.recorder = None
            with self.lock:
                self.active.discard(rec)

    def _prepare(self, url: str, accept: str) -> requests.PreparedRequest:
        """Return the GET request for `url` (prepared directly: a tenth of Session's cost)."""
        headers = dict(self.session.headers)
        headers["Accept"] = accept
        if self.options.headers and host_of(url) in self.header_hosts:
            headers.update(self.options.headers)
        request = requests.PreparedRequest()
        request.prepare(method="GET", url=url, headers=headers)
        if self.options.cookies:
            # the jar sends each cookie only to the domain it belongs to
            request.prepare_cookies(self.session.cookies)
        return request

    def _exchange(self, url: str, accept: str, rec: _Recorder, date: datetime) -> Exchange:
        opts = self.options
        try:
            request = self._prepare(url, accept)
            # The adapter, not session.send: the session would read a redirect's body itself.
            resp = self.adapter.send(request, stream=True, proxies=self.proxies,
                                     timeout=(opts.connect_timeout, opts.read_timeout))
        except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as exc:
            raise _fetch_error(url, exc) from None
        except _Abort as exc:
            raise FetchError(url, "stopped", str(exc)) from None
        header_length = _keep_final_head(rec.spool)
        rec.spool.start_body()
        truncated = None
        try:
            for _ in resp.raw.stream(BLOCK, decode_content=False):
                pass
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            truncated = rec.spool.aborted or ("time" if "timed out" in str(exc).lower() else "disconnect")
            logger.info("%s: body cut short (%s): %s", url, truncated, exc)
        finally:
            if truncated or resp.status_code in NO_BODY:
                resp.close()   # bytes may be left on this connection: never reuse it
            else:
                resp.raw.release_conn()
        return self._to_exchange(url, rec, date, header_length, truncated)

    def _to_exchange(self, url: str, rec: _Recorder, date: datetime, header_length: int,
                     truncated: str | None) -> Exchange:
        spool = rec.spool
        with spool.view() as f:
            head = f.read(header_length)
            try:
                _version, status, reason, headers = parse_head(head)
            except WireError as exc:
                raise FetchError(url, "bad-response", str(exc)) from None
            chunked = is_chunked(headers)
            payload = payload_digest(f, chunked=True) if chunked else "sha256:" + spool.payload.hexdigest()
        return Exchange(
            url=url, date=date, ip=rec.ip, request=bytes(rec.sent),
            block=spool.finish(), block_length=spool.length,
            block_digest="sha256:" + rec.spool.sha.hexdigest(), payload_digest=payload,
            header_length=header_length, status=status, reason=reason, headers=headers,
            chunked=chunked, truncated=truncated,
        )


def _keep_final_head(spool: _Spool) -> int:
    """Drop interim 1xx heads from the spool, keeping the final response head; return its length."""
    with spool.view() as f:
        heads = []
        while f.tell() < spool.length:
            heads.append(read_head(f))
    final = heads[-1] if heads else b""
    if len(heads) > 1:
        spool.reset()
        spool.write(final)
    return len(final)


def load_cookies(path: str) -> http.cookiejar.MozillaCookieJar:
    """Load a Netscape cookies.txt file; raise UsageError when it cannot be read."""
    jar = http.cookiejar.MozillaCookieJar(path)
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except (OSError, http.cookiejar.LoadError) as exc:
        raise UsageError(f"cannot read cookies from {path}: {exc}") from None
    for cookie in jar:
        if cookie.expires == 0:   # curl and browsers write 0 for a session cookie, not "expired"
            cookie.expires = None
    return jar


def _fetch_error(url: str, exc: Exception) -> FetchError:
    """Classify a failure that left no HTTP answer, with a short reason for the log."""
    text = str(exc)
    if "blocked-private" in text:
        kind = "blocked-private"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        kind = "connect-timeout"
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        kind = "read-timeout"
    elif isinstance(exc, requests.exceptions.SSLError):
        kind = "tls-error"
    elif isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                          requests.exceptions.MissingSchema, ValueError)):
        kind = "invalid-url"
    elif "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
        kind = "dns-failure"
    elif "Connection refused" in text:
        kind = "connection-refused"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        kind = "connection-error"
    else:
        kind = "http-error"
    return FetchError(url, kind, _short(text))


def _short(text: str) -> str:
    # urllib3 nests reasons in reprs; the innermost clause is the readable one.
    inner = text.rsplit(": ", 1)[-1].strip(" '\")(")
    return inner[:200] or text[:200]

