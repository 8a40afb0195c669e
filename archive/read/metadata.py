"""What a captured page says about itself, for a citation: title, authors, site, dates.

Read from <meta> tags, OpenGraph and JSON-LD with beautifulsoup4, which forgives the markup
real pages have; only meta, title and script elements are built into a tree.
"""
from __future__ import annotations

import html as html_lib
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, SoupStrainer, XMLParsedAsHTMLWarning
from bs4.builder import ParserRejectedMarkup

from archive.formats.html import decode_text, known_codec

logger = logging.getLogger(__name__)

META_CAP = 5 << 20   # decoded bytes parsed for citation metadata; it sits in the head or near it
_FIELD_CAP = 1000    # characters kept per field, so a hostile page cannot blow up a citation
_NAMES_CAP = 50      # authors kept
_LD_CAP = 2000       # JSON-LD objects looked at, whatever the nesting
_ISO_DATE = re.compile(r"\s*(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?(?![\d/-])")
_HTML_TAG = re.compile(r"<html\b[^>]*>", re.I)
_LANG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_PAGE_TYPE_ENDS = ("article", "posting", "page", "report", "creativework")


@dataclass(frozen=True)
class PageMetadata:
    """What a page declares about itself; None or () where it declares nothing usable."""

    title: str | None = None
    authors: tuple[str, ...] = ()
    site_name: str | None = None
    published: str | None = None     # ISO 8601 date: YYYY-MM-DD, YYYY-MM or YYYY
    description: str | None = None
    language: str | None = None


def page_metadata(html: bytes, url: str, charset: str | None = None) -> PageMetadata:
    """Return the citation metadata an HTML page declares (first META_CAP bytes); never raises.

    For each field the first source that gives a usable value wins:
    title: citation_title, og:title, JSON-LD headline, twitter:title, <title> (last, because
    it usually carries the site's name too); authors: citation_author, JSON-LD author (lists
    and @graph references followed), <meta name=author>, article:author (not profile URLs),
    dc.creator; site_name: og:site_name, JSON-LD publisher, JSON-LD WebSite name,
    application-name; published: citation_publication_date, citation_date,
    article:published_time, JSON-LD datePublished, <meta name=date>, dc.date, dcterms.issued;
    description: description, og:description, JSON-LD description; language: <html lang>,
    Content-Language.
    """
    try:
        text = "".join(decode_text([html[:META_CAP]], known_codec(charset)))
    except UnicodeError:   # UTF-16/32 named without a byte-order mark: the codec refuses to start
        text = html[:META_CAP].decode("utf-8", "replace")
    try:
        with warnings.catch_warnings():   # bs4 warns about XML-looking or URL-looking pages
            warnings.simplefilter("ignore", (XMLParsedAsHTMLWarning, MarkupResemblesLocatorWarning))
            # only the tags metadata lives in: a third of the time of a whole tree
            soup = BeautifulSoup(text, "lxml", parse_only=SoupStrainer(["meta", "title", "script"]))
    except ParserRejectedMarkup:
        logger.debug("no citation metadata from %s: markup rejected", url)
        return PageMetadata()
    meta = _meta_values(soup)
    ld = _JsonLd(_ld_objects(soup, url))
    title = soup.find("title")
    return PageMetadata(
        title=_first(*meta("citation_title", "og:title"), ld.text("headline"),
                     *meta("twitter:title"), title.get_text() if title else None),
        authors=_first_names(meta("citation_author"), ld.names("author"), meta("author"),
                             [a for a in meta("article:author") if "://" not in a],
                             meta("dc.creator")),
        site_name=_first(*meta("og:site_name"), _first(*ld.names("publisher")),
                         _first(*ld.website_names()), *meta("application-name")),
        published=_first(*(iso_date(v) for v in (
            *meta("citation_publication_date", "citation_date", "article:published_time"),
            ld.text("datePublished"), *meta("date", "dc.date", "dcterms.issued")))),
        description=_first(*meta("description", "og:description"), ld.text("description")),
        language=_language(text, meta),
    )


def iso_date(value: str | None) -> str | None:
    """Return the ISO 8601 calendar date a metadata value starts with, or None.

    >>> iso_date("2026-10-14T08:00:00+02:00"), iso_date("2020/5/3"), iso_date("1999")
    ('2026-10-14', '2020-05-03', '1999')
    >>> iso_date("2026-13-01"), iso_date("2026-02-30"), iso_date("14 October 2026"), iso_date("20261014")
    (None, None, None, None)
    """
    match = _ISO_DATE.match(value or "")
    if not match:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        date(year or 0, month or 1, day or 1)
    except ValueError:
        return None
    return "-".join(f"{n:02d}" for n in (year, month, day) if n is not None)


def _clean(value: Any) -> str | None:
    """Return a metadata string with its whitespace collapsed, capped; None when empty or not text."""
    if isinstance(value, dict):
        value = value.get("@value")
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    if not isinstance(value, str):
        return None
    return " ".join(value.split())[:_FIELD_CAP] or None


def _first(*values: Any) -> str | None:
    return next((c for c in map(_clean, values) if c), None)


def _first_names(*sources: Iterable[Any]) -> tuple[str, ...]:
    """Return the names of the first source naming anyone, without repeats."""
    for source in sources:
        names = tuple(dict.fromkeys(n for n in map(_clean, source) if n))[:_NAMES_CAP]
        if names:
            return names
    return ()


def _attr(tag: Any, name: str) -> str:
    value = tag.get(name)
    return " ".join(value) if isinstance(value, list) else (value or "")


def _meta_values(soup: BeautifulSoup) -> Callable[..., list[str]]:
    """Return a lookup: meta("og:title", "title") -> contents of those <meta> tags, in order."""
    found: dict[str, list[str]] = {}
    for tag in soup.find_all("meta"):
        content = _clean(_attr(tag, "content"))
        keys = {_attr(tag, a).strip().lower() for a in ("name", "property", "itemprop", "http-equiv")}
        for key in sorted(keys - {""}):
            found.setdefault(key, []).extend([content] if content else [])
    return lambda *keys: [v for key in keys for v in found.get(key, [])]


def _ld_objects(soup: BeautifulSoup, url: str) -> list[dict[str, Any]]:
    """Return the JSON-LD objects of a page in document order: top level, in lists, in @graph."""
    objects: list[dict[str, Any]] = []
    for script in soup.find_all("script"):
        if _attr(script, "type").split(";")[0].strip().lower() != "application/ld+json":
            continue
        try:
            stack: list[Any] = [json.loads(script.get_text())]
        except (ValueError, RecursionError):   # broken JSON, or nesting deep enough to hurt
            logger.debug("unreadable JSON-LD in %s", url)
            continue
        while stack and len(objects) < _LD_CAP:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(reversed(node[:_LD_CAP]))
            elif isinstance(node, dict):
                objects.append(node)
                stack.append(node.get("@graph"))
    return objects


class _JsonLd:
    """Property lookups over a page's JSON-LD, article-like objects first."""

    def __init__(self, objects: list[dict[str, Any]]):
        self.objects = sorted(objects, key=lambda o: not _is_page_type(o))
        self.ids = {o["@id"]: o for o in objects if isinstance(o.get("@id"), str)}

    def text(self, key: str) -> str | None:
        # JSON-LD from CMS templates often carries HTML entities the JSON did not need
        value = _first(*(o.get(key) for o in self.objects))
        return html_lib.unescape(value) if value else None

    def names(self, key: str) -> list[str]:
        """Return the names in `key` of the first object naming anyone (people or organisations)."""
        for obj in self.objects:
            names = [html_lib.unescape(n) for n in map(_clean, self._names(obj.get(key), 0)) if n]
            if names:
                return names
        return []

    def _names(self, value: Any, depth: int) -> list[Any]:
        if depth > 4:   # a reference cycle, or nesting no real page uses
            return []
        if isinstance(value, list):
            return [n for v in value[:_NAMES_CAP] for n in self._names(v, depth + 1)]
        if not isinstance(value, dict):
            return [value]
        if "name" in value:
            return [value["name"]]
        ref = value.get("@id")
        return self._names(self.ids[ref], depth + 1) if isinstance(ref, str) and ref in self.ids else []

    def website_names(self) -> list[str]:
        return [n for o in self.objects if "website" in _types(o)
                for n in (_clean(o.get("name")),) if n]


def _types(obj: dict[str, Any]) -> list[str]:
    kinds = obj.get("@type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return [k.lower() for k in kinds if isinstance(k, str)]


def _is_page_type(obj: dict[str, Any]) -> bool:
    return any(k.endswith(_PAGE_TYPE_ENDS) for k in _types(obj))


def _language(text: str, meta: Callable[..., list[str]]) -> str | None:
    """Return the language of <html lang> (its start tag sought near the top), or Content-Language."""
    start = _HTML_TAG.search(text, 0, 64 << 10)
    root = BeautifulSoup(start.group(0), "lxml").find("html") if start else None
    declared = [_attr(root, "lang"), _attr(root, "xml:lang")] if root else []
    for value in (*declared, *meta("content-language")):
        match = _LANG.fullmatch(value.strip().split(",")[0].strip())
        if match:
            return match.group(0).replace("_", "-")
    return None
