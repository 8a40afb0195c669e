"""Frozen dataclasses passed between the stages of a capture."""
from __future__ import annotations

import enum
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from archive.version import __version__

DEFAULT_USER_AGENT = f"archive/{__version__} (+static web-archiving snapshotter)"
LOCAL_REPLAY = "http://127.0.0.1:8080"   # where `archive serve` answers by default


def utcnow() -> datetime:
    """Return the current time in UTC: the default clock of every stage."""
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """Return a UTC time as RFC 3339 with a Z, to the second (as package files give times)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def without_password(url: str) -> str:
    """Return `url` ("[scheme://][user[:password]@]host[:port]", a proxy) with the
    password of its user-info left out (RFC 3986, 3.2.1: "user:password" is deprecated, and a
    snapshot is shown to others): "http://alice:pw@proxy:3128" -> "http://alice@proxy:3128"."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, hostport = rest.rpartition("@")   # the last @: a password may hold "/" or "@" unescaped
    if not at:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}@{hostport}"


class Kind(str, enum.Enum):
    """Why a URL is fetched; decides scope rules and whether its links are followed."""

    PAGE = "page"            # a seed or a linked page: its links and requisites are followed
    EMBED = "embed"          # an iframe/frame document: part of its page, same depth
    REQUISITE = "requisite"  # stylesheet, script, image, font...: always fetched
    ROBOTS = "robots"        # a host's robots.txt

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Link:
    """A URL to fetch, with where and how it was found."""

    url: str
    kind: Kind
    depth: int = 0
    source: str | None = None   # the document it was found in; None for seeds
    via: str = "seed"           # the tag/attribute or mechanism: "a@href", "img@srcset", "redirect"...
    hops: int = 0               # redirects followed to get here
    seed: str | None = None     # the seed URL this link is, or is a redirect hop of
    nest: int = 0               # requisite/frame levels below its page (a stylesheet's font: 2)
    attempt: int = 0            # earlier tries that got a transient error (5xx, 429)


@dataclass(frozen=True)
class CaptureOptions:
    """Everything that decides what a capture fetches and how; recorded in the snapshot."""

    depth: int = 1
    same_host: bool = False
    same_site: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_robots: bool = False
    connections: int = 16
    per_host: int = 6
    delay: float = 0.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_redirects: int = 10
    user_agent: str = DEFAULT_USER_AGENT
    resolve: tuple[tuple[str, int, str], ...] = ()   # (host, port, address), as curl --resolve
    warc_rotate_bytes: int = 1_000_000_000
    max_urls: int = 0                                # 0: no limit
    max_size: int = 0                                # body bytes kept per response; 0: no limit
    min_rate: int = 1000                             # bytes/s a body must keep up over a window...
    rate_window: float = 30.0                        # ...of this many seconds, or it is cut ("time")
    retries: int = 2                                 # more tries after a 429/500/502/503/504
    max_per_host: int = 0                            # URLs queued per host; 0: no limit
    min_free: int = 64 << 20                         # stop (exit 4) before free disk space drops below
    respect_noarchive: bool = False                  # keep no record of pages that say noarchive
    block_private: bool = False                      # refuse private/loopback/link-local targets
    headers: tuple[tuple[str, str], ...] = ()        # extra request headers, for the seeds' hosts only
    cookies: str | None = None                       # a Netscape cookies.txt file
    proxy: str | None = None                         # http://host:port
    retry_max_wait: float = 60.0                     # a longer Retry-After is not waited for
    dedup: bool = True                               # a payload the collection holds: a revisit record
    conditional: bool = False                        # If-None-Match / If-Modified-Since from the last capture
    ca_bundle: str | None = None                     # PEM file of CAs to trust for https (default: certifi's)
    browser: bool = False                            # load every page in Chromium too (write/browsing.py)
    browser_timeout: float = 30.0                    # seconds per page in the browser, all behaviours
    browser_pages: int = 2                           # browser pages (tabs) at once

    def to_json(self) -> dict[str, object]:
        """Return the options as plain JSON values, for warcinfo and datapackage.json."""
        return {
            "depth": self.depth,
            "same_host": self.same_host,
            "same_site": self.same_site,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "ignore_robots": self.ignore_robots,
            "connections": self.connections,
            "per_host": self.per_host,
            "delay": self.delay,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "max_redirects": self.max_redirects,
            "user_agent": self.user_agent,
            "resolve": [f"{h}:{p}:{a}" for h, p, a in self.resolve],
            "max_urls": self.max_urls,
            "max_size": self.max_size,
            "min_rate": self.min_rate,
            "rate_window": self.rate_window,
            "retries": self.retries,
            "retry_max_wait": self.retry_max_wait,
            "max_per_host": self.max_per_host,
            "min_free": self.min_free,
            "respect_noarchive": self.respect_noarchive,
            "block_private": self.block_private,
            # header values and cookies may be secrets: the record keeps only their names
            "headers": [name for name, _ in self.headers],
            "cookies": bool(self.cookies),
            "proxy": without_password(self.proxy) if self.proxy else None,   # given anew to --resume
            "dedup": self.dedup,
            "conditional": self.conditional,
            "ca_bundle": self.ca_bundle,
            # only when used: the options of a capture without the browser stay as they were
            **({"browser": True, "browser_timeout": self.browser_timeout, "browser_pages": self.browser_pages}
               if self.browser else {}),
        }


@dataclass(frozen=True)
class Body:
    """A response block between the socket and the WARC: in memory when small, else in a file."""

    data: bytes | None = None
    path: Path | None = None

    def open(self) -> BinaryIO:
        """Return the block as a readable binary stream."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return open(self.path, "rb")

    def read_bytes(self) -> bytes:
        """Return the whole block (for tests and small blocks)."""
        with self.open() as f:
            return f.read()

    def discard(self) -> None:
        """Remove the spool file, if there is one."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class TlsInfo:
    """The TLS connection an exchange went over: protocols, cipher, the server's certificates."""

    protocols: tuple[str, ...]          # WARC-Protocol values, higher layer first: ("http/1.1", "tls/1.3")
    cipher_suite: str | None            # the IANA name, as WARC-Cipher-Suite wants it; None if unknown
    openssl_cipher: str                 # OpenSSL's name of the same suite
    certificates: tuple[bytes, ...]     # DER, leaf first, as the server sent them


@dataclass(frozen=True)
class Exchange:
    """One HTTP exchange as it went over the wire; the response block lives in a spool file."""

    url: str
    date: datetime              # when the request was sent (UTC)
    ip: str | None
    request: bytes              # request line and headers exactly as sent
    block: Body                 # response status line, headers and body exactly as received
    block_length: int
    block_digest: str           # "sha256:<hex>" over the whole response block
    payload_digest: str         # "sha256:<hex>" over the entity body, transfer-coding removed
    header_length: int          # bytes of status line and headers at the start of the block
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    chunked: bool
    truncated: str | None = None  # WARC-Truncated reason: "length", "time", "disconnect"
    tls: TlsInfo | None = None    # https only: what the TLS connection was (tls.py)

    def header(self, name: str) -> str | None:
        """Return the first value of a response header, case-insensitively, or None."""
        low = name.lower()
        for key, value in self.headers:
            if key.lower() == low:
                return value
        return None

    @property
    def mime(self) -> str:
        """Return the media type of the Content-Type header, lowercased, without parameters."""
        value = self.header("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Original:
    """A response record of a finished snapshot that a revisit record may refer to."""

    digest: str                  # its WARC-Payload-Digest, "sha256:<hex>"
    uri: str                     # WARC-Target-URI
    date: str                    # WARC-Date, as written
    record_id: str               # WARC-Record-ID, "<urn:uuid:...>"
    snapshot: str                # the id of the snapshot holding it
    filename: str                # the WARC file (a name in the snapshot's archive/ folder)
    offset: int
    length: int
    chunked: bool = False        # its body is stored with chunk framing (replay keeps framing as stored)

    def to_json(self) -> dict[str, object]:
        return {"record": self.record_id, "uri": self.uri, "date": self.date, "digest": self.digest,
                "filename": self.filename, "offset": self.offset, "length": self.length}


@dataclass(frozen=True)
class Record:
    """Where a response (or a revisit of one) landed in a WARC file: one future index line."""

    url: str
    date: datetime
    status: int
    mime: str
    payload_digest: str
    filename: str
    offset: int
    length: int
    original: Original | None = None   # set for a revisit record: the record it refers to


@dataclass(frozen=True)
class Outcome:
    """What happened to one Link: fetched (with a status), failed or skipped, and why."""

    link: Link
    outcome: str                 # "fetched", "failed", "skipped"
    reason: str = ""
    status: int | None = None
    url: str | None = None       # the URL fetched, when a redirect led elsewhere it is the hop's own
    title: str | None = None
    date: datetime | None = None
    bytes: int = 0
    truncated: str | None = None  # WARC-Truncated reason: the record holds only part of the body


@dataclass(frozen=True)
class Snapshot:
    """A finished snapshot in a collection."""

    id: str                      # lowercase hex SHA-256 of datapackage.json
    path: Path
    created: str                 # RFC 3339 UTC
    seeds: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict, hash=False)
    warnings: tuple[str, ...] = ()

    @property
    def short_id(self) -> str:
        """Return the 12-digit form of the id shown to people."""
        return self.id[:12]
