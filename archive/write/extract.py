"""Links and page requisites from HTML and CSS; the only lxml import.

HTML is parsed with lxml's event interface (a target receiving start tags), fed in blocks:
about 17x cheaper than building a BeautifulSoup tree (measured on a 60 KB page: 1.0 ms vs
17.7 ms) and never the whole document in memory. The encoding comes from a byte-order mark,
the Content-Type charset, or a declaration near the start (<meta charset>, <?xml encoding>,
@charset), as browsers look for them.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from archive.formats.html import CSS_TYPES, HTML_TYPES, charset_of, decode_text
from archive.formats.urls import InvalidURL, canonicalize, is_skipped_scheme
from archive.formats.wire import WireError, decode_content, iter_payload
from archive.models import Exchange, Kind

logger = logging.getLogger(__name__)

HTML_CAP = 64 << 20   # decoded bytes parsed for links; past it the rest is not parsed
CSS_CAP = 16 << 20

_LINK_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "apple-touch-icon-precomposed",
              "manifest", "preload", "modulepreload", "mask-icon"}
# (tag, attribute) -> how the URL in it is used. srcset-like attributes hold candidate lists.
_REQUISITE_ATTRS = {
    ("img", "src"), ("img", "srcset"), ("source", "src"), ("source", "srcset"),
    ("script", "src"), ("video", "src"), ("video", "poster"), ("audio", "src"),
    ("track", "src"), ("embed", "src"), ("object", "data"), ("image", "href"),
    ("image", "xlink:href"), ("body", "background"), ("table", "background"),
    ("td", "background"), ("th", "background"),
}
_EMBED_ATTRS = {("iframe", "src"), ("frame", "src")}
_PAGE_ATTRS = {("a", "href"), ("area", "href")}
_SRCSET = {"srcset", "imagesrcset"}

_CSS_IMPORT = re.compile(r"""@import\s+(?:url\(\s*)?(["']?)([^"')\s;]+)\1""", re.I)
_REFRESH_URL = re.compile(r"""^\s*\d*\.?\d*\s*[;,]?\s*(?:url\s*=\s*)?["']?([^"']+)""", re.I)


@dataclass(frozen=True)
class Found:
    """A URL found in a document: what it is for and where it was found."""

    url: str
    kind: Kind
    via: str


@dataclass
class Extracted:
    """What a document refers to, its title, and the references that could not be used."""

    found: list[Found] = field(default_factory=list)
    skipped: list[tuple[Found, str]] = field(default_factory=list)   # (raw reference, why not)
    title: str | None = None
    note: str | None = None
    robots: frozenset[str] = frozenset()   # directives of <meta name="robots"> (noarchive...)


def extract(exchange: Exchange) -> Extracted:
    """Return the links and requisites of a captured HTML or CSS response (empty for others)."""
    mime = exchange.mime or _sniff(exchange)
    if mime not in HTML_TYPES and mime not in CSS_TYPES:
        return Extracted()
    charset = charset_of(exchange.header("Content-Type"))
    cap = HTML_CAP if mime in HTML_TYPES else CSS_CAP
    result = Extracted()
    with exchange.block.open() as f:
        f.seek(exchange.header_length)
        blocks = decode_content(iter_payload(f, exchange.chunked),
                                exchange.header("Content-Encoding"), cap)
        try:
            if mime in HTML_TYPES:
                html_links(blocks, exchange.url, charset, result)
            else:
                css_links(decode_text(blocks, charset), exchange.url, "css", result)
        except WireError as exc:
            result.note = f"links not fully extracted: {exc}"
    return result


def _sniff(exchange: Exchange) -> str:
    """Guess HTML for a response with no Content-Type whose body starts like markup."""
    with exchange.block.open() as f:
        f.seek(exchange.header_length)
        start = f.read(512).lstrip().lower()
    if exchange.header("Content-Encoding"):
        return ""
    return "text/html" if start.startswith((b"<!doctype html", b"<html", b"<head")) else ""


class _HTMLTarget:
    """lxml parser target collecting URL-bearing attributes, <style> text and the title."""

    def __init__(self, url: str, result: Extracted):
        self.base = url
        self.base_set = False
        self.result = result
        self.in_title = False
        self.in_style = False
        self.style_parts: list[str] = []
        self.title_parts: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "base" and not self.base_set and attrib.get("href"):
            self.base_set = True
            try:
                self.base = canonicalize(attrib["href"], self.base)
            except InvalidURL:
                pass
            return
        for name, value in attrib.items():
            self._attribute(tag, name, value, attrib)
        if tag == "title" and self.result.title is None:
            self.in_title = True
        elif tag == "style":
            self.in_style = True
        elif tag == "meta" and attrib.get("name", "").lower() in ("robots", "archive"):
            tokens = {t.strip().lower() for t in attrib.get("content", "").split(",") if t.strip()}
            self.result.robots = self.result.robots | tokens
        elif tag == "meta" and attrib.get("http-equiv", "").lower() == "refresh":
            match = _REFRESH_URL.match(attrib.get("content", ""))
            if match and not match.group(1).strip().isdigit():
                _add(self.result, match.group(1), self.base, Kind.PAGE, "meta@refresh")

    def _attribute(self, tag: str, name: str, value: str, attrib: dict[str, str]) -> None:
        key = (tag, name)
        if name == "style":
            css_links(iter([value]), self.base, f"{tag}@style", self.result)
        elif key in _PAGE_ATTRS:
            _add(self.result, value, self.base, Kind.PAGE, f"{tag}@{name}")
        elif key in _EMBED_ATTRS:
            _add(self.result, value, self.base, Kind.EMBED, f"{tag}@{name}")
        elif key in _REQUISITE_ATTRS or (tag == "input" and name == "src"
                                         and attrib.get("type", "").lower() == "image"):
            self._requisite(tag, name, value)
        elif tag == "link" and name in ("href", "imagesrcset"):
            rels = set(attrib.get("rel", "").lower().split())
            if rels & _LINK_RELS:
                self._requisite(tag, name, value)

    def _requisite(self, tag: str, name: str, value: str) -> None:
        candidates = parse_srcset(value) if name in _SRCSET else [value]
        for candidate in candidates:
            _add(self.result, candidate, self.base, Kind.REQUISITE, f"{tag}@{name}")

    def end(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.result.title = " ".join("".join(self.title_parts).split())
        elif tag == "style" and self.in_style:
            self.in_style = False
            css_links(iter(self.style_parts), self.base, "style", self.result)
            self.style_parts = []

    def data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
        elif self.in_style:
            self.style_parts.append(data)

    def close(self) -> None:
        if self.in_title and self.result.title is None:
            self.result.title = " ".join("".join(self.title_parts).split())


def html_links(blocks: Iterable[bytes], url: str, charset: str | None, result: Extracted) -> None:
    """Feed an HTML body to lxml block by block, collecting into `result`."""
    target = _HTMLTarget(url, result)
    parser = etree.HTMLParser(target=target, recover=True)
    fed = False
    for text in decode_text(blocks, charset):
        if text:
            parser.feed(text)
            fed = True
    if fed:
        try:
            parser.close()
        except etree.XMLSyntaxError:  # lxml gives up on some garbage; what it saw is kept
            pass


def css_links(texts: Iterable[str], url: str, via: str, result: Extracted) -> None:
    """Collect @import and url() references of CSS text (comments ignored) into `result`."""
    text = strip_css_comments("".join(texts))
    for match in _CSS_IMPORT.finditer(text):
        _add(result, match.group(2), url, Kind.REQUISITE, f"{via}@import")
    low = text.lower()
    for start, raw in _css_urls(text, low):
        if "@import" in low[max(0, start - 12):start]:
            continue  # counted above
        _add(result, raw, url, Kind.REQUISITE, f"{via}@url")


def strip_css_comments(text: str) -> str:
    """Return CSS text with /* comments */ blanked, in one linear pass.

    >>> strip_css_comments("a/* x */b/* unclosed")
    'a b '
    """
    out, pos = [], 0
    while (start := text.find("/*", pos)) >= 0:
        out.append(text[pos:start])
        end = text.find("*/", start + 2)
        out.append(" ")
        if end < 0:
            return "".join(out)
        pos = end + 2
    out.append(text[pos:])
    return "".join(out)


class _Finder:
    """str.find with memory, for positions that only grow: hostile CSS (thousands of unclosed
    "url(") costs one scan per needle instead of one per occurrence."""

    def __init__(self, text: str):
        self.text = text
        self.last: dict[str, int] = {}

    def find(self, needle: str, pos: int) -> int:
        hit = self.last.get(needle)
        if hit is not None and (hit == -1 or hit >= pos):
            return hit
        hit = self.text.find(needle, pos)
        self.last[needle] = hit
        return hit


def _css_urls(text: str, low: str) -> Iterator[tuple[int, str]]:
    """Yield (offset, reference) of each url(...) in CSS text.

    >>> list(_css_urls('a{b:url( "x.png" )} c{d:URL(y.gif)}', 'a{b:url( "x.png" )} c{d:url(y.gif)}'))
    [(4, 'x.png'), (24, 'y.gif')]
    """
    finder = _Finder(text)
    pos = 0
    while (start := low.find("url(", pos)) >= 0:
        i = start + 4
        while i < len(text) and text[i] in " \t\r\n\f":
            i += 1
        quote = text[i] if i < len(text) and text[i] in "\"'" else ""
        end = finder.find(quote or ")", i + 1 if quote else i)
        if end < 0:
            pos = start + 4
            continue
        raw = text[i + 1:end] if quote else text[i:end].strip()
        if not quote and ("(" in raw or any(ch.isspace() for ch in raw)):
            pos = start + 4   # not a plain url(): something like url(url(... or a stray token
            continue
        yield start, raw
        pos = end + 1


def parse_srcset(value: str) -> list[str]:
    """Return the URLs of a srcset attribute, per the HTML candidate-string rules.

    >>> parse_srcset("a.jpg 1x, b,c.jpg 2x,d.jpg")
    ['a.jpg', 'b,c.jpg', 'd.jpg']
    >>> parse_srcset("img.png")
    ['img.png']
    """
    urls: list[str] = []
    pos, n = 0, len(value)
    while pos < n:
        while pos < n and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < n and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            depth = 0
            while pos < n and not (value[pos] == "," and depth == 0):
                depth += {"(": 1, ")": -1}.get(value[pos], 0)
                pos += 1
        if url:
            urls.append(url)
    return urls


def _add(result: Extracted, raw: str, base: str, kind: Kind, via: str) -> None:
    raw = raw.strip()
    if not raw or raw.startswith("#"):
        return
    if is_skipped_scheme(raw):
        result.skipped.append((Found(raw[:200], kind, via), "not http(s)"))
        return
    try:
        result.found.append(Found(canonicalize(raw, base), kind, via))
    except InvalidURL as exc:
        result.skipped.append((Found(raw[:200], kind, via), exc.why))


