"""One HTTP exchange, streamed to a spool file and hashed in the same pass.

The only module that imports requests (and urllib3 under it). A WARC record must hold the
bytes as the server sent them, so the connection classes tee everything http.client consumes
from the socket (status line, headers, chunk framing, body) into the spool file, while the
body read through urllib3 with the transfer-coding removed feeds the payload digest.
Redirects are not followed here: each hop is an exchange of its own.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from .errors import FetchError
from .models import CaptureOptions, Exchange
from .wire import BLOCK, WireError, is_chunked, iter_payload, parse_head

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(timezone.utc)


class _Spool:
    """The response block being received: written to a file and hashed as it arrives."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "wb")
        self.sha = hashlib.sha256()
        self.length = 0

    def write(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            self.sha.update(data)
            self.length += len(data)

    def close(self) -> None:
        self.file.close()


class _Recorder:
    """What one exchange sent and received, filled in by the connection classes below."""

    def __init__(self, spool: _Spool):
        self.spool = spool
        self.sent = bytearray()
        self.ip: str | None = None

    def restart(self) -> None:
        # A retried request on a fresh connection starts the record over.
        self.sent.clear()
        self.spool.file.seek(0)
        self.spool.file.truncate()
        self.spool.sha = hashlib.sha256()
        self.spool.length = 0


_local = threading.local()


def _recorder() -> _Recorder | None:
    return getattr(_local, "recorder", None)


class _TeeReader:
    """Wraps the socket file of an http.client response, copying what is consumed."""

    def __init__(self, raw: Any, spool: _Spool):
        self._raw = raw
        self._spool = spool

    def readline(self, limit: int = -1) -> bytes:
        data = self._raw.readline(limit)
        self._spool.write(data)
        return data  # type: ignore[no-any-return]

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            data: bytes = self._raw.read()
            self._spool.write(data)
            return data
        buf = bytearray(amt)
        return bytes(buf[: self.readinto(buf)])

    def read1(self, amt: int = -1) -> bytes:
        data = self._raw.read1(amt)
        self._spool.write(data)
        return data  # type: ignore[no-any-return]

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
            self._spool.write(data)
            n += len(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _RecordingResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any):
        super().__init__(sock, *args, **kwargs)
        rec = _recorder()
        if rec is not None:
            self.fp = _TeeReader(self.fp, rec.spool)  # type: ignore[assignment]
            try:
                rec.ip = sock.getpeername()[0]
            except OSError:
                pass


class _RecordingMixin:
    """Connection behaviour: record the bytes sent, tee the response, honour --resolve."""

    resolve: dict[tuple[str, int], str] = {}
    response_class = _RecordingResponse

    def _new_conn(self) -> socket.socket:
        target = self.resolve.get((self.host, self.port))  # type: ignore[attr-defined]
        if not target:
            return super()._new_conn()  # type: ignore[misc, no-any-return]
        # urllib3 connects to _dns_host; the Host header and TLS name keep using the real host.
        real, self._dns_host = self._dns_host, target
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
    http_conn = type("RecordingHTTPConnection", (_RecordingMixin, urllib3.connection.HTTPConnection),
                     {"resolve": resolve})
    https_conn = type("RecordingHTTPSConnection", (_RecordingMixin, urllib3.connection.HTTPSConnection),
                      {"resolve": resolve})
    http_pool = type("RecordingHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
    https_pool = type("RecordingHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    # pool_connections: hosts kept warm; pool_maxsize: connections per host, blocking at
    # the limit like a browser does.
    return Adapter(pool_connections=max(10, options.connections), pool_maxsize=options.per_host,
                   pool_block=True, max_retries=0)


class Fetcher:
    """Fetches single URLs without following redirects, into spool files under `spool_dir`."""

    def __init__(self, options: CaptureOptions, spool_dir: Path, clock: Clock = utcnow):
        self.options = options
        self.spool_dir = spool_dir
        self.clock = clock
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies or .netrc from the environment: say them explicitly
        adapter = _adapter(options)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.clear()
        self.session.headers.update({
            "User-Agent": options.user_agent,
            "Accept-Encoding": "gzip, deflate, br",
            "Connection": "keep-alive",
        })

    def close(self) -> None:
        """Close every pooled connection."""
        self.session.close()

    def fetch(self, url: str, accept: str = "*/*") -> Exchange:
        """Fetch `url` once; return the Exchange, or raise FetchError when no answer came."""
        fd, name = tempfile.mkstemp(dir=self.spool_dir, suffix=".http")
        os.close(fd)
        spool = _Spool(Path(name))
        rec = _Recorder(spool)
        date = self.clock()
        _local.recorder = rec
        try:
            return self._exchange(url, accept, rec, date)
        except BaseException:
            spool.close()
            spool.path.unlink(missing_ok=True)
            raise
        finally:
            _local.recorder = None

    def _exchange(self, url: str, accept: str, rec: _Recorder, date: datetime) -> Exchange:
        opts = self.options
        try:
            resp = self.session.get(url, stream=True, allow_redirects=False,
                                    timeout=(opts.connect_timeout, opts.read_timeout),
                                    headers={"Accept": accept})
        except requests.RequestException as exc:
            raise _fetch_error(url, exc) from None
        header_length = rec.spool.length
        payload = hashlib.sha256()
        truncated = None
        try:
            for data in resp.raw.stream(BLOCK, decode_content=False):
                payload.update(data)
        except (ProtocolError, requests.exceptions.ChunkedEncodingError, OSError) as exc:
            truncated = "disconnect"
            logger.info("%s: body cut short: %s", url, exc)
        except ReadTimeoutError:
            truncated = "time"
            logger.info("%s: read timed out mid-body", url)
        finally:
            if truncated:
                resp.close()
            else:
                resp.raw.release_conn()
            rec.spool.close()
        exchange = self._to_exchange(url, rec, date, header_length, payload, truncated)
        if truncated:
            # urllib3 drops the last partial read when it raises; the spool has every byte.
            exchange = replace(exchange, payload_digest=_payload_digest(exchange))
        return exchange

    def _to_exchange(self, url: str, rec: _Recorder, date: datetime, header_length: int,
                     payload: Any, truncated: str | None) -> Exchange:
        with open(rec.spool.path, "rb") as f:
            head = f.read(header_length)
        try:
            _version, status, reason, headers = parse_head(head)
        except WireError as exc:
            raise FetchError(url, "bad-response", str(exc)) from None
        return Exchange(
            url=url, date=date, ip=rec.ip, request=bytes(rec.sent),
            block=rec.spool.path, block_length=rec.spool.length,
            block_digest="sha256:" + rec.spool.sha.hexdigest(),
            payload_digest="sha256:" + payload.hexdigest(),
            header_length=header_length, status=status, reason=reason, headers=headers,
            chunked=is_chunked(headers), truncated=truncated,
        )


def _payload_digest(exchange: Exchange) -> str:
    """Return the payload digest of a spooled response, computed from the block itself."""
    sha = hashlib.sha256()
    with open(exchange.block, "rb") as f:
        f.seek(exchange.header_length)
        try:
            for data in iter_payload(f, exchange.chunked):
                sha.update(data)
        except WireError:
            pass  # framing cut mid-line: the digest covers what could be read
    return "sha256:" + sha.hexdigest()


def _fetch_error(url: str, exc: requests.RequestException) -> FetchError:
    """Classify a failure that left no HTTP answer, with a short reason for the log."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        kind = "connect-timeout"
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        kind = "read-timeout"
    elif isinstance(exc, requests.exceptions.SSLError):
        kind = "tls-error"
    elif isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                          requests.exceptions.MissingSchema)):
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
