"""Canonical URLs and SURT keys. Pure functions, doctested.

A canonical URL is what a capture fetches and de-duplicates on: the same resource is fetched
once per snapshot. It keeps case in path and query (servers may tell them apart), unlike a
SURT key, which folds case and is only for the index.

Every URL is parsed by one parser of the WHATWG URL Standard (ada-url), as a browser parses
it: backslashes, tabs and newlines inside, IPv4 number forms, default ports, dot segments
(also percent-encoded) and host names per UTS 46. On top, the canonical form drops the
fragment, percent-encodes what requests would (so the WARC-Target-URI is the URL sent),
and normalizes escapes (RFC 3986 section 6.2.2).
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import ipaddress
import re
import sys
import threading
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from archive.errors import UsageError

from .surtkey import surt_fast

if TYPE_CHECKING:
    from ada_url import URL

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
_SKIP_SCHEMES = ("mailto:", "tel:", "javascript:", "data:", "about:", "blob:", "sms:", "ftp:")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = "/?%:@!$&'()*+,;=-._~"
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")
_STRAY_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")
_C0_SPACE = "".join(map(chr, range(0x21)))   # stripped from both ends (URL Standard 4.4)
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*:")


class InvalidURL(UsageError):
    """A URL that cannot be fetched: not http(s), no host, or malformed."""

    def __init__(self, url: str, why: str):
        self.url = url
        self.why = why
        super().__init__(f"invalid URL {url!r}: {why}")


def canonicalize(url: str, base: str | None = None) -> str:
    """Return the canonical absolute form of `url` (resolved against `base`); raise InvalidURL.

    >>> canonicalize("HTTP://Example.COM:80/a/./b/../c?q=1#frag")
    'http://example.com/a/c?q=1'
    >>> canonicalize("img/x y.png", "https://ex.org/blog/post.html")
    'https://ex.org/blog/img/x%20y.png'
    >>> canonicalize("https://ex.org")
    'https://ex.org/'
    >>> canonicalize("http://bücher.example/ä?ö=1")
    'http://xn--bcher-kva.example/%C3%A4?%C3%B6=1'
    >>> canonicalize("http://ex.org/%7euser/%2f")
    'http://ex.org/~user/%2F'
    >>> canonicalize("mailto:someone@ex.org")
    Traceback (most recent call last):
    ...
    archive.formats.urls.InvalidURL: invalid URL 'mailto:someone@ex.org': unsupported scheme 'mailto'
    """
    raw = url.strip(_C0_SPACE)
    if any("\udc80" <= ch <= "\udcff" for ch in raw):   # bytes argv could not decode
        raise InvalidURL(url.encode("utf-8", "replace").decode(), "undecodable bytes")
    try:
        from ada_url import URL   # loaded by what parses a URL, not by every reader of SURT keys

        parsed = URL(raw, base=base) if base is not None else URL(raw)
    except ValueError:
        relative = base is None and not _SCHEME.match(raw)
        raise InvalidURL(url, "not an absolute URL" if relative else "not a valid URL (WHATWG URL Standard)") from None
    scheme = parsed.protocol[:-1]
    if scheme not in SCHEMES:
        raise InvalidURL(url, f"unsupported scheme {scheme!r}")
    host = _canonical_host(url, parsed.hostname.strip("[]"))
    netloc = host if ":" not in host else f"[{host}]"
    if parsed.port:   # the URL Standard drops a scheme's default port
        netloc = f"{netloc}:{parsed.port}"
    if parsed.username or parsed.password:
        netloc = f"{_userinfo(raw, base, parsed)}@{netloc}"
    path = _normalize_escapes(quote(parsed.pathname or "/", safe=_PATH_SAFE))
    query = _normalize_escapes(quote(parsed.search[1:], safe=_QUERY_SAFE))
    return urlunsplit((scheme, netloc, path, query, ""))


_UTF_ENCODINGS = frozenset({"utf-8", "utf-16-le", "utf-16-be", "utf-16", "utf-32-le", "utf-32-be", "utf-32"})


def encode_query(reference: str, encoding: str | None) -> str:
    """Return a URL reference with its query percent-encoded in a document's legacy encoding.

    The URL Standard (4.4, basic URL parser, query state) encodes the query of a URL found in
    a document with the document's encoding (UTF-16 and UTF-8 documents: UTF-8); the path
    and fragment stay UTF-8. A character the encoding lacks becomes its numeric character
    reference, percent-encoded ("%26%23NNNN%3B"), as the Standard's "URL" error mode says.
    The reference comes back unchanged when its query is ASCII or the encoding is UTF.

    >>> encode_query("search?q=café#é", "cp1252")
    'search?q=caf%E9#é'
    >>> encode_query("/é?€=€&k=日", "iso8859-15")
    '/é?%A4=%A4&k=%26%2326085%3B'
    >>> encode_query("a?q=café", "utf-8")
    'a?q=café'
    """
    if not encoding or encoding.lower().replace("_", "-") in _UTF_ENCODINGS or reference.isascii():
        return reference
    before, hash_, fragment = reference.partition("#")
    path, mark, query = before.partition("?")
    if not mark or query.isascii():
        return reference
    out = []
    for ch in query:
        if ch.isascii():
            out.append(ch)
            continue
        try:
            out.append("".join(f"%{b:02X}" for b in ch.encode(encoding)))
        except (UnicodeError, LookupError):
            out.append(f"%26%23{ord(ch)}%3B")
    return f"{path}?{''.join(out)}{hash_}{fragment}"


def _userinfo(raw: str, base: str | None, parsed: URL) -> str:
    """Return user-info as written (requests sends it as Basic credentials, never in the
    request line), as canonical URLs have always kept it; the parser's encoding if unsplittable."""
    try:
        joined = urljoin(base, _TAB_NEWLINE.sub("", raw)) if base is not None else _TAB_NEWLINE.sub("", raw)
        parts = urlsplit(joined)
        if parts.username is not None:
            return parts.username + (f":{parts.password}" if parts.password is not None else "")
    except ValueError:
        pass
    return str(parsed.username) + (f":{parsed.password}" if parsed.password else "")


_LABEL = r"(?:[^\W_](?:[\w-]*[^\W_])?)"
_BARE_HOST = re.compile(rf"(?:localhost|{_LABEL}(?:\.{_LABEL})*\.[^\W\d_][\w-]*\.?|\d{{1,3}}(?:\.\d{{1,3}}){{3}}"
                        rf"|\[[0-9a-fA-F:.]+\])(?::\d{{1,5}})?", re.IGNORECASE)


def typed_url(text: str) -> tuple[str, bool]:
    """Return (canonical URL, whether https:// was assumed) for a URL as people type it.

    A bare host, with or without port and path, is taken as https:// (as browsers and wget
    do); anything else must be an absolute http(s) URL. Raises InvalidURL.

    >>> typed_url("example.com")
    ('https://example.com/', True)
    >>> typed_url("localhost:8080/a?b=1")
    ('https://localhost:8080/a?b=1', True)
    >>> typed_url("http://ex.org")
    ('http://ex.org/', False)
    >>> typed_url("stray")
    Traceback (most recent call last):
    ...
    archive.formats.urls.InvalidURL: invalid URL 'stray': not a URL (give http://, https:// or a host name such as example.com)
    """
    text = text.strip()
    if "://" in text:
        return canonicalize(text), False
    host = re.split(r"[/?#]", text, maxsplit=1)[0]
    if not _BARE_HOST.fullmatch(host):
        raise InvalidURL(text, "not a URL (give http://, https:// or a host name such as example.com)")
    return canonicalize("https://" + text), True


def _canonical_host(url: str, host: str) -> str:
    """Return a parsed host (UTS 46-mapped by the parser) without a final dot; raise InvalidURL
    when it is empty or holds what requests cannot send (the URL Standard allows `!$&'()*+,;=`)."""
    host = host.rstrip(".").lower()
    if not host:
        raise InvalidURL(url, "no host")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not re.fullmatch(r"[a-z0-9_.\-]+", host):
        raise InvalidURL(url, f"bad host name {host!r}")
    return host


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normalize_escapes(text: str) -> str:
    """Decode escaped unreserved characters and uppercase the rest (RFC 3986 section 6.2.2).

    >>> _normalize_escapes("%7euser/%2f%69/100%")
    '~user/%2Fi/100%25'
    """
    text = _STRAY_PERCENT.sub("%25", text)  # as requests sends it: the record must say the same
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()
    return _PERCENT.sub(fix, text)


def is_skipped_scheme(href: str) -> bool:
    """Return True for links that are never fetched (mailto:, tel:, javascript:, data:...).

    >>> is_skipped_scheme(" JavaScript:void(0)")
    True
    >>> is_skipped_scheme("/page.html")
    False
    """
    return href.strip().lower().startswith(_SKIP_SCHEMES)


def host_of(url: str) -> str:
    """Return the host (with port when not the default) of a canonical URL.

    >>> host_of("http://127.0.0.1:8080/x")
    '127.0.0.1:8080'
    """
    return urlsplit(url).netloc.rpartition("@")[2]


def origin_of(url: str) -> str:
    """Return scheme://host[:port] of a canonical URL.

    >>> origin_of("https://ex.org/a?b")
    'https://ex.org'
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def hostname_of(url: str) -> str:
    """Return the bare host name of a URL, without port.

    >>> hostname_of("http://127.0.0.2:81/x")
    '127.0.0.2'
    """
    return urlsplit(url).hostname or ""


_LOADING = threading.RLock()   # tldextract may be a _Deferred module (_surt): loaded by one thread


@functools.lru_cache(maxsize=1)
def _extractor():  # type: ignore[no-untyped-def]
    with _LOADING:
        import tldextract

        # The public suffix list bundled with tldextract, never fetched: captures run offline.
        return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def site_of(url: str) -> str:
    """Return the registrable domain of a URL (eTLD+1), or the host for IPs and bare names.

    >>> site_of("https://news.bbc.co.uk/a")
    'bbc.co.uk'
    >>> site_of("http://127.0.0.1:8000/")
    '127.0.0.1'
    """
    host = hostname_of(url)
    result = _extractor()(host)
    domain = getattr(result, "top_domain_under_public_suffix", None)
    if domain is None:  # tldextract before 5.3
        domain = result.registered_domain
    return str(domain or host)


def surt_key(url: str) -> str:
    """Return the SURT sort key pywb and the CDXJ index use.

    >>> surt_key("http://www.Example.com/A?b=1&a=2")
    'com,example)/a?a=2&b=1'

    A plain URL is keyed directly (formats/surtkey.py: the library's key, at a tenth of its
    cost); any other by the surt library.
    """
    key = surt_fast(url)
    return key if key is not None else str(_surt().surt(url))


def _surt() -> ModuleType:
    """Return the surt package, loaded on first use. Its `handyurl` imports tldextract (and so
    requests: 80 ms) at the top, for public-suffix methods a SURT key never calls: tldextract
    stands in sys.modules as a `_Deferred` module until something uses it (site_of)."""
    global _SURT
    if _SURT is None:
        with _LOADING:
            if _SURT is None:   # set once surt is whole: another thread never sees it half made
                spec = None if "tldextract" in sys.modules else importlib.util.find_spec("tldextract")
                if spec is not None:
                    sys.modules["tldextract"] = _Deferred(spec)
                import surt
                _SURT = surt
    return _SURT


_SURT: ModuleType | None = None


class _Deferred(ModuleType):
    """A module in sys.modules that imports the real one, in its place, on its first attribute
    (or the first import of a submodule); it answers `__spec__` (importlib.util.find_spec) and
    other probes of a module's dunders without loading."""

    def __init__(self, spec: ModuleSpec):
        super().__init__(spec.name)
        self.__spec__ = spec

    def __getattr__(self, name: str) -> object:
        if name.startswith("__") and name != "__path__":
            raise AttributeError(name)
        with _LOADING:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
        return getattr(real, name)
