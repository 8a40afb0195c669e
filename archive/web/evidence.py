"""What a capture recorded of each page, as `archive qa` compares it with replay.

A browser capture records, per page, a full-page screenshot as a WARC `resource` record with
`WARC-Target-URI: urn:view:<page URL>` (image/png) and the visible text as one with
`urn:text:<page URL>` (text/plain), also as the `text` field of the page's pages.jsonl entry:
the convention of Browsertrix-crawler and ReplayWeb.page. A static capture has neither; its
visible text is read from the captured HTML (`formats/html.visible_text`). The status each URL
was answered with at capture comes from the CDXJ index.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from archive.errors import NotASnapshot
from archive.formats.html import visible_text
from archive.formats.urls import InvalidURL, canonicalize
from archive.snapshot.reader import IndexEntry, Package

VIEW, TEXT = "urn:view:", "urn:text:"
MAX_SCREENSHOT = 64 << 20    # bytes of one screenshot record read
MAX_TEXT = 8 << 20           # bytes of one text record, or of a page's HTML, read
DEFAULT_VIEWPORT = (1280, 800)
MAX_VIEWPORT = 10_000
_SIZE = re.compile(r"(\d{2,5})\s*[xX,]\s*(\d{2,5})")

# where the capture's text came from: a browser's (innerText, as replay's) or the HTML's
TEXT_RECORD, TEXT_PAGES, TEXT_HTML, TEXT_NONE = "urn:text record", "pages.jsonl text", "captured HTML", "none"


@dataclass(frozen=True)
class Place:
    """Where one record is: a WARC file of the package and an offset in it."""

    filename: str
    offset: int


@dataclass(frozen=True)
class PageEvidence:
    """One page as captured: URL, 14-digit timestamp, the viewport (width, height) in CSS
    pixels, the screenshot record (None for a static capture), the visible text and where it
    came from (one of TEXT_*)."""

    url: str
    timestamp: str
    viewport: tuple[int, int]
    screenshot: Place | None
    text: str
    text_source: str


def records(package: Package) -> tuple[dict[str, int | None], dict[str, Place]]:
    """Return, from one pass over the index and one over the WARC files, the HTTP status each
    URL was answered with at capture, by canonical URL (None: no status, e.g. `-`), and where
    each `urn:view:` and `urn:text:` record is, by its target URI. The records count where the
    index lacks a line (a damaged index is one way replay loses what was captured); an answer
    below 400 wins over an error for the same URL."""
    found: dict[str, int | None] = {}
    places: dict[str, Place] = {}

    def note(url: str, status: int | None) -> None:
        key = _key(url)
        if key not in found or (status is not None and status < 400 and not _ok(found[key])):
            found[key] = status

    for entry in package.index():
        if entry.url.startswith((VIEW, TEXT)):
            places[entry.url] = Place(entry.filename, entry.offset)
        elif not entry.url.startswith("urn:"):
            note(entry.url, int(entry.status) if entry.status.isdigit() else None)
    for name in package.warc_names():
        with package.member(name) as f:
            for record in ArchiveIterator(f, arc2warc=True):   # an ARC record read in WARC terms
                target = record.rec_headers.get_header("WARC-Target-URI") or ""
                if record.rec_type == "response" and record.http_headers is not None:
                    code = record.http_headers.get_statuscode()
                    if _key(target) not in found:
                        note(target, int(code) if code and code.isdigit() else None)
                elif record.rec_type == "resource" and target.startswith((VIEW, TEXT)) and target not in places:
                    places[target] = Place(name.removeprefix("archive/"), record.offset)
    return found, places


def _key(url: str) -> str:
    """Return the canonical form of an http(s) URL, and any other target (or one that does not
    parse: the bytes are another tool's) as it is."""
    try:
        return canonicalize(url) if url.startswith(("http:", "https:")) else url
    except InvalidURL:
        return url


def _ok(status: int | None) -> bool:
    return status is not None and status < 400


def read_resource(package: Package, place: Place, cap: int) -> bytes:
    """Return the block of the resource record at `place`; raise NotASnapshot when there is no
    resource record there or it is over `cap` bytes."""
    with package.member(package.warc_path(place.filename)) as f:
        f.seek(place.offset)
        record = next(iter(ArchiveIterator(f, no_record_parse=True)), None)
        if record is None or record.rec_type != "resource":
            raise NotASnapshot(package.path, f"no resource record at {place.filename[:200]}@{place.offset}")
        data: bytes = record.content_stream().read(cap + 1)
    if len(data) > cap:
        raise NotASnapshot(package.path, f"resource record at {place.filename[:200]}@{place.offset} is over {cap} bytes")
    return data


def viewport_of(*sources: Any) -> tuple[int, int]:
    """Return the first viewport a source gives: {"width": W, "height": H}, [W, H] or "WxH",
    directly or under a "viewport" key; DEFAULT_VIEWPORT when none gives one.

    >>> viewport_of({"viewport": "1024x768"}, {"viewport": {"width": 800, "height": 600}})
    (1024, 768)
    >>> viewport_of({}, "nonsense")
    (1280, 800)
    """
    for source in sources:
        value = source.get("viewport", source) if isinstance(source, dict) else source
        size: tuple[Any, Any] | None = None
        if isinstance(value, dict):
            size = (value.get("width"), value.get("height"))
        elif isinstance(value, (list, tuple)) and len(value) == 2:
            size = (value[0], value[1])
        elif isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
            size = (int(m.group(1)), int(m.group(2)))
        if size and all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= MAX_VIEWPORT for v in size):
            return (size[0], size[1])
    return DEFAULT_VIEWPORT


def pages(package: Package, places: dict[str, Place], limit: int | None = None) -> Iterator[PageEvidence]:
    """Yield the evidence of each page pages.jsonl lists (the first `limit`), with `places`
    the resource records `records` found."""
    meta = package.metadata()
    browser = meta.get("browser") if isinstance(meta.get("browser"), dict) else {}
    html: dict[str, IndexEntry] = {}
    for entry in package.index():
        if "html" in entry.mime and entry.url not in html:
            html[entry.url] = entry
    for n, page in enumerate(package.pages()):
        if limit is not None and n >= limit:
            return
        url = page["url"]
        stamp = "".join(ch for ch in str(page.get("ts", "")) if ch.isdigit())[:14]
        if len(stamp) != 14:   # no time of its own: the snapshot's, and pywb finds the nearest
            stamp = "".join(ch for ch in str(package.datapackage().get("created", "")) if ch.isdigit())[:14]
        text, source = _text(package, page, places.get(TEXT + url), html.get(url))
        yield PageEvidence(url, stamp, viewport_of(page, browser, meta), places.get(VIEW + url), text, source)


def _text(package: Package, page: dict[str, Any], record: Place | None,
          entry: IndexEntry | None) -> tuple[str, str]:
    if record is not None:
        try:
            return read_resource(package, record, MAX_TEXT).decode("utf-8", "replace"), TEXT_RECORD
        except NotASnapshot:
            return "", TEXT_NONE
    if isinstance(page.get("text"), str):
        return page["text"][:MAX_TEXT], TEXT_PAGES
    if entry is not None:
        try:
            return "\n".join(visible_text(package.body(entry, MAX_TEXT))), TEXT_HTML
        except Exception:   # warcio's parse errors have no common base: no text is the answer
            return "", TEXT_NONE
    return "", TEXT_NONE
