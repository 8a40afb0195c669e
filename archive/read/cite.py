"""Citations of a snapshot: the page as it describes itself, when it was captured, its id.

`citation` reads a snapshot's main page (its first seed) from its verified records; `render`
(citeformats.py) writes the citation as text, Markdown, BibTeX, CSL-JSON, RIS or a Robust Link.
Every format keeps the page's own date apart from the capture time: one says when the page
was written, the other which copy is cited.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from warcio.exceptions import ArchiveLoadFailed

from archive.errors import ArchiveError, NotASnapshot, UsageError
from archive.formats.html import HTML_TYPES
from archive.formats.urls import InvalidURL, canonicalize
from archive.models import LOCAL_REPLAY
from archive.snapshot.depends import payload_of
from archive.snapshot.reader import IndexEntry, Package, as_dict, as_list
from archive.snapshot.store import Collection

from .verify import require_intact
from archive.version import __version__

from .citeformats import Citation, render, web_link
from .metadata import PageMetadata, page_metadata

logger = logging.getLogger(__name__)

# What a damaged record can raise while its body is read; a citation then goes without page metadata.
_READ_ERRORS = (ArchiveError, ArchiveLoadFailed, OSError, ValueError, EOFError)
_UTC = re.compile(r"\s*(\d{4})-?(\d\d)-?(\d\d)(?:T?(\d\d):?(\d\d):?(\d\d))?")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\"';\s]+)", re.I)


def cite(ref: str, collection: Path | str | None = None, fmt: str = "text", *,
         base_url: str | None = None, page: str | None = None) -> str:
    """Return the citation, in `fmt`, of the snapshot `ref` names (folder, .wacz, id or prefix).

    `page` picks the page cited (see `citation`). Raises UsageError for a base URL that is
    not absolute http(s), an unknown or ambiguous page; NotASnapshot, SnapshotNotFound;
    VerificationFailed for a package from outside the collection that fails verify.
    """
    if base_url is not None and not re.match(r"https?://[^/?#\s]+", base_url):
        raise UsageError(f"--base-url must be an absolute http(s) URL, not {base_url!r}")
    require_intact(ref, collection)
    with Collection(collection).open(ref) as package:
        return render(citation(package, base_url, page=page), fmt)


def citation(package: Package, base_url: str | None = None,
             local_replay: str = LOCAL_REPLAY, *, page: str | None = None) -> Citation:
    """Return the citation of a snapshot's main page; raise NotASnapshot when none was captured
    or its record does not bear out its index line; UsageError for a link that is not http(s),
    an unknown page, or several answered seeds and no `page` (the error names them).

    The main page is the one seed that got an answer, or `page` (a seed or any page the index
    holds, by URL). The URLs and the capture time come from the records' own WARC headers and
    the title from the record's body; the package metadata only says which seed to look for."""
    data = package.datapackage()
    meta = as_dict(data.get("archive"))
    seeds = _seeds(meta, data, package)
    wanted = _canonical(page) if page is not None else None
    found = _scan(package, {u for seed in seeds for u in seed[1:]} | ({wanted} if wanted else set()))
    # a seed that got no answer has nothing to cite
    _, requested, final = _chosen([s for s in seeds if found.get(s[1])], page, wanted, found)
    first = next(iter(found.get(requested, [])), None)
    if first is None:
        raise NotASnapshot(package.path, "no response recorded for any seed")
    cited = next((e for e in found.get(final, []) if not e.status.startswith("3")), first)
    original, captured = _recorded(package, first)
    cited_url = _recorded(package, cited)[0] if cited is not first else original
    info = _page_info(package, cited)
    window = as_dict(meta.get("capture_window"))
    start, end = utc_iso(str(window.get("start", ""))), utc_iso(str(window.get("end", "")))
    if not (start and end and start <= captured <= end):
        start = end = None   # a window the cited record is not in is no window of this capture
    stamp, sid, software = re.sub(r"\D", "", captured), package.id, data.get("software")
    replay = f"{(base_url or local_replay).rstrip('/')}/{sid}/{stamp}/{original}"
    for link in (original, cited_url, replay):
        web_link(link)
    return Citation(
        title=info.title or original, authors=info.authors, site_name=info.site_name,
        published=info.published, original_url=original,
        final_url=cited_url if cited_url != original else None,
        status=int(cited.status) if cited.status.isdigit() else None,
        captured=captured, timestamp14=stamp, window_start=start, window_end=end,
        snapshot_id=sid, digest=f"sha256:{sid}", replay_url=replay,
        tool=software if isinstance(software, str) and software else f"archive {__version__}",
        language=info.language, local=base_url is None)


def _canonical(url: str) -> str:
    try:
        return canonicalize(url)
    except InvalidURL as exc:
        raise UsageError(f"--page {url!r} is not a URL: {exc.why}") from None


def _chosen(answered: list[tuple[str, str, str]], page: str | None, wanted: str | None,
            found: dict[str, list[IndexEntry]]) -> tuple[str, str, str]:
    """Return the (given, requested, final) page to cite: the one answered seed, or `page`."""
    if wanted is None:
        if len(answered) > 1:
            raise UsageError(f"the snapshot has {len(answered)} seed pages; choose one with --page URL: "
                             + ", ".join(s[1] for s in answered))
        return answered[0] if answered else ("", "", "")
    for seed in answered:
        if wanted in seed[1:] or page == seed[0]:
            return seed
    if found.get(wanted):
        return (str(page), wanted, wanted)
    raise UsageError(f"no page {wanted} in the snapshot"
                     + ("; its seed pages: " + ", ".join(s[1] for s in answered) if answered else ""))


def _seeds(meta: dict[str, Any], data: dict[str, Any], package: Package) -> list[tuple[str, str, str]]:
    """Return (as given, as requested, final URL) per seed; a package made elsewhere: its main page."""
    results = as_dict(meta.get("seed_results"))
    seeds = []
    listed = meta.get("seeds")
    for seed in map(as_dict, as_list(listed)):
        url = seed.get("url")
        if isinstance(url, str):
            final = as_dict(results.get(url)).get("url")
            seeds.append((str(seed.get("given") or url), url, final if isinstance(final, str) else url))
    if not seeds:
        main = data.get("mainPageURL") or next((p["url"] for p in package.pages()), None)
        if isinstance(main, str):
            seeds.append((main, main, main))
    return seeds


def _scan(package: Package, urls: set[str]) -> dict[str, list[IndexEntry]]:
    """Return the index entries of `urls`, earliest first, in one pass over the index."""
    found: dict[str, list[IndexEntry]] = {}
    seen: set[tuple[str, int]] = set()   # a line repeated names the same record: held once
    for entry in (e for e in package.index() if e.url in urls):
        if (entry.filename, entry.offset) not in seen:
            seen.add((entry.filename, entry.offset))
            found.setdefault(entry.url, []).append(entry)
    return {url: sorted(entries, key=lambda e: (e.timestamp, e.filename, e.offset))
            for url, entries in found.items()}


def _recorded(package: Package, entry: IndexEntry) -> tuple[str, str]:
    """Return (WARC-Target-URI, WARC-Date to the second) of the record an index line names;
    raise NotASnapshot when the record cannot be read or does not bear the line out."""
    try:
        with package.record(entry.filename, entry.offset) as (response, _):
            heads = response.warc_headers
    except _READ_ERRORS as exc:
        raise NotASnapshot(package.path, f"the record of {entry.url[:200]!r} is unreadable ({str(exc)[:200]}); "
                                         "run archive verify") from None
    uri = heads.get("WARC-Target-URI", "").strip().strip("<>")
    captured = utc_iso(heads.get("WARC-Date", ""))
    if uri != entry.url or captured is None or re.sub(r"\D", "", captured) != entry.timestamp[:14]:
        raise NotASnapshot(package.path, f"the record at {entry.filename[:100]}@{entry.offset} is not the one "
                                         f"its index line names ({entry.url[:200]!r}); run archive verify")
    return uri, captured


def _page_info(package: Package, entry: IndexEntry) -> PageMetadata:
    """Return what the captured page declares about itself (nothing for non-HTML or damaged records).

    A revisit record's page is read from its original, the body being the same."""
    try:
        with payload_of(package, entry) as (holder, original):
            if original.mime.split(";")[0].strip().lower() not in (*HTML_TYPES, "", "unk"):
                return PageMetadata()
            with package.record(entry.filename, entry.offset) as (response, _):
                charset = _CHARSET.search(response.header("Content-Type") or "")
            return page_metadata(holder.body(original), entry.url, charset.group(1) if charset else None)
    except _READ_ERRORS as exc:
        # the message may quote the record's bytes: one short line, not all of them
        logger.warning("no page metadata from %s: %.200s", entry.url, " ".join(str(exc).split()))
        return PageMetadata()


def utc_iso(value: str) -> str | None:
    """Return a WARC-Date or 14-digit timestamp as `YYYY-MM-DDTHH:MM:SSZ`, or None.

    >>> utc_iso("2026-11-26T11:48:19.506123Z"), utc_iso("20261126114819"), utc_iso("2026-11-26")
    ('2026-11-26T11:48:19Z', '2026-11-26T11:48:19Z', '2026-11-26T00:00:00Z')
    >>> utc_iso("yesterday"), utc_iso("2026-13-01")
    (None, None)
    """
    match = _UTC.match(value or "")
    if not match:
        return None
    try:
        y, mo, d, h, mi, s = (int(g or 0) for g in match.groups())
        return datetime(y, mo, d, h, mi, s).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:   # no such day or hour
        return None


