"""One HTTP exchange, streamed to a spool and hashed in the same pass.

The only module that imports requests. A WARC record must hold the bytes as the server sent
them: the connection classes of tap.py record them while requests and urllib3 do the HTTP.
Redirects are not followed here: each hop is an exchange of its own. Interim 1xx answers are
read past, and only the final response is kept.
"""
from __future__ import annotations

import http.client
import http.cookiejar
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from archive.errors import FetchError, UsageError
from archive.formats.urls import host_of
from archive.formats.wire import BLOCK, WireError, is_chunked, parse_head, payload_digest, read_head
from archive.models import CaptureOptions, Exchange, utcnow

from .tap import Abort, Recorder, RecordingMixin, Spool, local

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
NO_BODY = (204, 304)
Headers = Sequence[tuple[str, str]]


def _adapter(options: CaptureOptions) -> HTTPAdapter:
    resolve = {(host, port): addr for host, port, addr in options.resolve}
    behaviour = {"resolve": resolve, "block_private": options.block_private}
    http_conn = type("RecordingHTTPConnection", (RecordingMixin, urllib3.connection.HTTPConnection), behaviour)
    https_conn = type("RecordingHTTPSConnection", (RecordingMixin, urllib3.connection.HTTPSConnection), behaviour)
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
        self.active: set[Recorder] = set()
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
        # One cookie jar for the capture's duration, as a browser keeps (RFC 6265 domain and
        # path rules by http.cookiejar): seeded by --cookies, filled by Set-Cookie, never saved.
        self.jar: http.cookiejar.CookieJar = (load_cookies(options.cookies) if options.cookies
                                              else http.cookiejar.CookieJar())

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

    def fetch(self, url: str, accept: str = "*/*", extra: Headers = ()) -> Exchange:
        """Fetch `url` once; return the Exchange, or raise FetchError when no answer came.

        `extra` headers go with this request only (validators of a conditional request).
        """
        try:
            return self._attempt(url, accept, extra)
        except FetchError as exc:
            if exc.kind != "connection-error" or self.stopping.is_set():
                raise
            # A kept-alive connection the server had dropped: one more try on a fresh one.
            logger.info("%s: retrying once after %s", url, exc)
            return self._attempt(url, accept, extra)

    def previous(self, url: str) -> Exchange | None:
        """Return an earlier capture's response a 304 for `url` stands for: none here."""
        return None

    def _attempt(self, url: str, accept: str, extra: Headers = ()) -> Exchange:
        if self.stopping.is_set():
            raise FetchError(url, "stopped", "the capture is stopping")
        spool = Spool(self.spool_dir, self.options, self.stopping)
        rec = Recorder(spool)
        local.recorder = rec
        with self.lock:
            self.active.add(rec)
        try:
            return self._exchange(url, accept, rec, self.clock(), extra)
        except BaseException:
            spool.discard()
            raise
        finally:
            local.recorder = None
            with self.lock:
                self.active.discard(rec)

    def _prepare(self, url: str, accept: str, extra: Headers = ()) -> requests.PreparedRequest:
        """Return the GET request for `url` (prepared directly: a tenth of Session's cost)."""
        headers = dict(self.session.headers)
        headers["Accept"] = accept
        if self.options.headers and host_of(url) in self.header_hosts:
            headers.update(self.options.headers)
        headers.update(extra)
        request = requests.PreparedRequest()
        request.prepare(method="GET", url=url, headers=headers)
        request.prepare_cookies(self.jar)   # each cookie only where its domain and path say
        return request

    def _exchange(self, url: str, accept: str, rec: Recorder, date: datetime, extra: Headers = ()) -> Exchange:
        opts = self.options
        try:
            request = self._prepare(url, accept, extra)
            # The adapter, not session.send: the session would read a redirect's body itself.
            resp = self.adapter.send(request, stream=True, proxies=self.proxies,
                                     timeout=(opts.connect_timeout, opts.read_timeout),
                                     verify=opts.ca_bundle or True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as exc:
            raise _fetch_error(url, exc) from None
        except Abort as exc:
            raise FetchError(url, "stopped", str(exc)) from None
        requests.cookies.extract_cookies_to_jar(self.jar, request, resp.raw)
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

    def _to_exchange(self, url: str, rec: Recorder, date: datetime, header_length: int,
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
            chunked=chunked, truncated=truncated, tls=rec.tls,
        )


def _keep_final_head(spool: Spool) -> int:
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

