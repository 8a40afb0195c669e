"""Links and page requisites from HTML and CSS; the only lxml import.

HTML is parsed with lxml's event interface (a target receiving start tags), fed in blocks:
about 17x cheaper than building a BeautifulSoup tree (measured on a 60 KB page: 1.0 ms vs
17.7 ms) and never the whole document in memory. The encoding comes from a byte-order mark,
the Content-Type charset, or a declaration near the start (<meta charset>, <?xml encoding>,
@charset), as browsers look for them.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from archive.formats.html import CSS_TYPES, HTML_TYPES, charset_of, decode_text
from archive.formats.urls import InvalidURL, canonicalize, encode_query, is_skipped_scheme
from archive.formats.wire import WireError, decode_content, iter_payload
from archive.models import Exchange, Kind

from .css import css_references
from .hops import REFRESH
from .htmlrefs import Form, applies, lookup

logger = logging.getLogger(__name__)

HTML_CAP = 64 << 20   # decoded bytes parsed for links; past it the rest is not parsed
CSS_CAP = 16 << 20

MAX_SRCDOC = 4   # iframe srcdoc documents inside srcdoc documents, levels parsed


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

    def __init__(self, url: str, result: Extracted, nesting: int = 0):
        self.base = url
        self.base_set = False
        self.result = result
        self.nesting = nesting            # srcdoc documents this one is inside
        self.encoding: str | None = None  # the document's, for queries (URL Standard 4.4)
        self.in_title = False
        self.in_style = False
        self.style_parts: list[str] = []
        self.title_parts: list[str] = []

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == "base" and not self.base_set and attrib.get("href"):
            self.base_set = True
            try:
                self.base = canonicalize(encode_query(attrib["href"], self.encoding), self.base)
            except InvalidURL as exc:
                self.result.skipped.append((Found(attrib["href"][:200], Kind.PAGE, "base@href"), exc.why))
            return
        for name, value in attrib.items():
            self._attribute(tag, name, value, attrib)
        if tag == "title" and self.result.title is None and not self.nesting:
            self.in_title = True
        elif tag == "style":
            self.in_style = True
        elif tag == "meta" and attrib.get("name", "").lower() in ("robots", "archive") and not self.nesting:
            tokens = {t.strip().lower() for t in attrib.get("content", "").split(",") if t.strip()}
            self.result.robots = self.result.robots | tokens
        elif tag == "meta" and attrib.get("http-equiv", "").strip().lower() == "refresh":
            target = refresh_url(attrib.get("content", ""))
            if target:
                self._add(target, Kind.PAGE, REFRESH)

    def _attribute(self, tag: str, name: str, value: str, attrib: dict[str, str]) -> None:
        ref = lookup(tag, name)
        if ref is None or not applies(ref, attrib):
            return
        via = f"{tag}@{name}" + (" (lazy)" if ref.lazy else "")
        if ref.form is Form.CSS or (ref.form is Form.URL_OR_CSS and _is_css_image(value)):
            css_links(iter([value]), self.base, via, self.result)
        elif ref.form is Form.SRCSET:
            for candidate in parse_srcset(value):
                self._add(candidate, ref.kind, via)
        elif ref.form is Form.DOCUMENT:
            self._srcdoc(value, via)
        else:
            self._add(value, ref.kind, via)

    def _add(self, raw: str, kind: Kind, via: str) -> None:
        _add(self.result, encode_query(raw, self.encoding), self.base, kind, via)

    def _srcdoc(self, document: str, via: str) -> None:
        """Parse an iframe srcdoc document (HTML 4.8.5: its base URL is this document's)."""
        if self.nesting >= MAX_SRCDOC:
            self.result.skipped.append((Found(document[:200], Kind.EMBED, via),
                                        f"srcdoc nested more than {MAX_SRCDOC} levels"))
            return
        target = _HTMLTarget(self.base, self.result, self.nesting + 1)
        target.encoding = "utf-8"   # an about:srcdoc document is UTF-8
        parser = etree.HTMLParser(target=target, recover=True)
        if document.strip():
            parser.feed(document)
            try:
                parser.close()
            except etree.XMLSyntaxError:
                pass

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


def _is_css_image(value: str) -> bool:
    """Return True for a lazy background given as CSS (`url(...)`, `image-set(...)`), not a URL.

    >>> _is_css_image(" URL('a.jpg')"), _is_css_image("img(1).png")
    (True, False)
    """
    low = value.lower()
    return "url(" in low or "image-set(" in low


def refresh_url(content: str) -> str | None:
    """Return the URL of a <meta http-equiv=refresh> content value, or None (a reload, or bad).

    The HTML Standard's shared declarative refresh steps (4.2.5.3, "Refresh" state).

    >>> refresh_url("0; URL=/a/"), refresh_url("5;url='b c.html'"), refresh_url("3"), refresh_url("x; url=y")
    ('/a/', 'b c.html', None, None)
    >>> refresh_url("0, URL = 'q.html'junk"), refresh_url(" 1.5 next.html")
    ('q.html', 'next.html')
    """
    ws = " \t\n\f\r"
    pos, n = 0, len(content)
    while pos < n and content[pos] in ws:
        pos += 1
    start = pos
    while pos < n and content[pos].isascii() and content[pos].isdigit():
        pos += 1
    if pos == start and not (pos < n and content[pos] == "."):
        return None
    while pos < n and (content[pos] == "." or (content[pos].isascii() and content[pos].isdigit())):
        pos += 1
    if pos == n:
        return None
    if content[pos] not in ws + ";,":
        return None
    while pos < n and content[pos] in ws:
        pos += 1
    if pos < n and content[pos] in ";,":
        pos += 1
    while pos < n and content[pos] in ws:
        pos += 1
    if pos == n:
        return None
    url_start = pos
    if content[pos:pos + 3].lower() == "url":
        pos += 3
        while pos < n and content[pos] in ws:
            pos += 1
        if pos < n and content[pos] == "=":
            pos += 1
            while pos < n and content[pos] in ws:
                pos += 1
        else:
            pos = url_start
    quote = content[pos] if pos < n and content[pos] in "\"'" else ""
    url = content[pos + 1 if quote else pos:]
    if quote:
        url = url.split(quote, 1)[0]
    return url.strip() or None


def html_links(blocks: Iterable[bytes], url: str, charset: str | None, result: Extracted) -> None:
    """Feed an HTML body to lxml block by block, collecting into `result`."""
    target = _HTMLTarget(url, result)
    parser = etree.HTMLParser(target=target, recover=True)
    fed = False

    def chosen(encoding: str) -> None:
        target.encoding = encoding

    for text in decode_text(blocks, charset, chosen):
        if text:
            parser.feed(text)
            fed = True
    if fed:
        try:
            parser.close()
        except etree.XMLSyntaxError:  # lxml gives up on some garbage; what it saw is kept
            pass


def css_links(texts: Iterable[str], url: str, via: str, result: Extracted) -> None:
    """Collect the references of CSS text (see write/css.py) into `result`.

    CSS URLs are parsed as UTF-8 whatever the document's encoding (CSS Values 4 section 4.5).
    """
    for raw, how in css_references("".join(texts)):
        _add(result, raw, url, Kind.REQUISITE, f"{via}@{how}")


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


