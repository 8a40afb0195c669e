"""The SURT sort key of a plain URL, worked out directly: the key the `surt` library
(Internet Archive's canonicalisation, as pywb and cdxj-indexer use it) gives, at a tenth of
its cost. Index writing, `list URL` and verify's index check compute one key per record.

Only URLs every step of that canonicalisation leaves alone but for what is done here get a
key: http or https, an ASCII host name (or a dotted-quad IPv4 address), an optional port, a
path and query of unreserved and sub-delimiter characters (RFC 3986, section 2) without
percent-escapes, dot segments, empty segments, fragments or anything a session-id rule could
strip. For any other URL `surt_fast` returns None and the caller asks the library.

The steps, as the library does them (surt 0.3: GoogleURLCanonicalizer, IAURLCanonicalizer,
handyurl): host lowercased and a leading "www", "www2"... label dropped; the scheme's default
port dropped; path lowercased, a trailing slash dropped unless the path is "/" (an empty path
is "/"); query lowercased, its arguments sorted as (name, value) pairs, an empty query dropped;
then the host's labels reversed and joined by commas, ")" and the path and query.
"""
from __future__ import annotations

import re

_PLAIN = re.compile(r"(https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(/[A-Za-z0-9._~!$&'*+,;=:@/-]*)?"
                    r"(?:\?([A-Za-z0-9._~!$&'*+,;=:@/?-]*))?")
_DOTTED_QUAD = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[1-9])"
                          r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])){3}")
_WWW = re.compile(r"www[0-9]*\.")
_LETTER = re.compile(r"[a-z]")
DEFAULT_PORTS = {"http": 80, "https": 443}
_SESSION_WORDS = ("sid=", "sessionid", "cfid=", "cftoken=")   # what the library's session-id rules look for


def surt_fast(url: str) -> str | None:
    """Return the SURT key of `url` as the surt library gives it, or None when `url` is not
    of the plain kind this module keys (see the module's docstring).

    >>> surt_fast("http://www.Example.com/A/?b=1&a=2")
    'com,example)/a?a=2&b=1'
    >>> surt_fast("https://127.0.0.1:8443/x"), surt_fast("http://ex.org/%41") is None
    ('1,0,0,127:8443)/x', True)
    """
    match = _PLAIN.fullmatch(url)
    if match is None:
        return None
    scheme, host, port_text, path, query = match.groups()
    host = host.lower()
    if host.startswith(".") or host.endswith(".") or ".." in host:
        return None
    if not _LETTER.search(host) and not _DOTTED_QUAD.fullmatch(host):
        return None   # numeric host names: the library reads them as IPv4 numbers
    if path and ("//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/.."))):
        return None
    lowered = (path or "").lower() + "?" + (query or "").lower()
    if any(word in lowered for word in _SESSION_WORDS):
        return None
    www = _WWW.match(host)
    if www:
        host = host[www.end():]
        if not host:
            return None
    port = ""
    if port_text is not None:
        number = int(port_text)
        if not 0 < number <= 65535:
            return None
        if number != DEFAULT_PORTS[scheme]:
            port = f":{number}"
    path = (path or "/").lower()
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    key = ",".join(reversed(host.split("."))) + port + ")" + path
    if query:
        key += "?" + _sorted_query(query.lower())
    return key


def _sorted_query(query: str) -> str:
    """Sort the arguments of a query as the library does: as (name,) or (name, value) pairs,
    split at the first "=", so "a" sorts before "a=" and "a=1"."""
    if len(query) <= 1:
        return query
    pairs = sorted(tuple(arg.split("=", 1)) for arg in query.split("&"))
    return "&".join("=".join(pair) for pair in pairs)
