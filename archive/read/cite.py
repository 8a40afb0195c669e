"""Citations of a snapshot: the page as it describes itself, when it was captured, its id.

`citation` reads a snapshot's main page (its first seed); `render` writes the citation as text,
Markdown, BibTeX, CSL-JSON, RIS or a Robust Link (https://robustlinks.mementoweb.org/spec/).
Every format keeps the page's own date apart from the capture time: one says when the page
was written, the other which copy is cited.
"""
from __future__ import annotations

import html
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from warcio.exceptions import ArchiveLoadFailed

from archive.errors import ArchiveError, NotASnapshot, UsageError
from archive.formats.html import HTML_TYPES
from archive.formats.urls import InvalidURL, canonicalize
from archive.read.find import LOCAL_REPLAY
from archive.snapshot.depends import payload_of
from archive.snapshot.reader import IndexEntry, Package
from archive.snapshot.store import Collection
from archive.version import __version__

from .metadata import PageMetadata, page_metadata

logger = logging.getLogger(__name__)

FORMATS = ("text", "markdown", "bibtex", "csl-json", "ris", "robust-links", "json")
VERIFY_COMMAND = "archive verify SNAPSHOT_OR_WACZ --expect {digest}"
# What a damaged record can raise while its body is read; a citation then goes without page metadata.
_READ_ERRORS = (ArchiveError, ArchiveLoadFailed, OSError, ValueError, EOFError)
_UTC = re.compile(r"\s*(\d{4})-?(\d\d)-?(\d\d)(?:T?(\d\d):?(\d\d):?(\d\d))?")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\"';\s]+)", re.I)


@dataclass(frozen=True)
class Citation:
    """What a citation of a snapshot says. Times are UTC, `YYYY-MM-DDTHH:MM:SSZ`."""

    title: str                    # the page's title, or its URL when it declares none
    authors: tuple[str, ...]
    site_name: str | None
    published: str | None         # the page's own date, YYYY[-MM[-DD]]; never the capture's
    original_url: str             # the seed as the user gave it
    final_url: str | None         # where the seed redirected to, when it did
    status: int | None            # HTTP status of the page cited
    captured: str                 # WARC-Date of the seed's first response
    timestamp14: str
    window_start: str | None      # the capture window (from our metadata; None for other tools')
    window_end: str | None
    snapshot_id: str
    digest: str                   # "sha256:" + snapshot_id
    replay_url: str
    tool: str                     # the software that made the snapshot
    language: str | None = None
    local: bool = False           # replay_url is the local replay server's, not a published one


def cite(ref: str, collection: Path | str | None = None, fmt: str = "text", *,
         base_url: str | None = None, page: str | None = None) -> str:
    """Return the citation, in `fmt`, of the snapshot `ref` names (folder, .wacz, id or prefix).

    `page` picks the page cited (see `citation`). Raises UsageError for a base URL that is
    not absolute http(s), an unknown or ambiguous page; NotASnapshot, SnapshotNotFound.
    """
    if base_url is not None and not re.match(r"https?://[^/?#\s]+", base_url):
        raise UsageError(f"--base-url must be an absolute http(s) URL, not {base_url!r}")
    with Collection(collection).open(ref) as package:
        return render(citation(package, base_url, page=page), fmt)


def citation(package: Package, base_url: str | None = None,
             local_replay: str = LOCAL_REPLAY, *, page: str | None = None) -> Citation:
    """Return the citation of a snapshot's main page; raise NotASnapshot when none was captured.

    The main page is the one seed that got an answer, or `page` (a seed or any page of
    pages.jsonl, by URL). Several answered seeds and no `page` raise UsageError naming them.
    """
    data = package.datapackage()
    meta = _dict(data.get("archive"))
    seeds = _seeds(meta, data, package)
    asked = page
    wanted = _canonical(asked) if asked is not None else None
    found = _scan(package, {u for seed in seeds for u in seed[1:]} | ({wanted} if wanted else set()))
    # a seed that got no answer has nothing to cite
    given, requested, final = _chosen([s for s in seeds if found.get(s[1])], asked, wanted, found)
    first = next(iter(found.get(requested, [])), None)
    if first is None:
        raise NotASnapshot(package.path, "no response recorded for any seed")
    cited = next((e for e in found.get(final, []) if not e.status.startswith("3")), first)
    info = _page_info(package, cited)
    captured = _captured(package, first)
    window = _dict(meta.get("capture_window"))
    stamp, sid, software = re.sub(r"\D", "", captured), package.id, data.get("software")
    return Citation(
        title=info.title or given, authors=info.authors, site_name=info.site_name,
        published=info.published, original_url=given,
        final_url=cited.url if cited.url != requested else None,
        status=int(cited.status) if cited.status.isdigit() else None,
        captured=captured, timestamp14=stamp,
        window_start=utc_iso(str(window.get("start", ""))),
        window_end=utc_iso(str(window.get("end", ""))),
        snapshot_id=sid, digest=f"sha256:{sid}",
        replay_url=f"{(base_url or local_replay).rstrip('/')}/{sid}/{stamp}/{requested}",
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
    results = _dict(meta.get("seed_results"))
    seeds = []
    listed = meta.get("seeds")
    for seed in map(_dict, listed if isinstance(listed, list) else []):
        url = seed.get("url")
        if isinstance(url, str):
            final = _dict(results.get(url)).get("url")
            seeds.append((str(seed.get("given") or url), url, final if isinstance(final, str) else url))
    if not seeds:
        main = data.get("mainPageURL") or next((p["url"] for p in package.pages()), None)
        if isinstance(main, str):
            seeds.append((main, main, main))
    return seeds


def _dict(value: Any) -> dict[str, Any]:
    """Return `value` if it is a JSON object, else an empty one (metadata may come from anywhere)."""
    return value if isinstance(value, dict) else {}


def _scan(package: Package, urls: set[str]) -> dict[str, list[IndexEntry]]:
    """Return the index entries of `urls`, earliest first, in one pass over the index."""
    found: dict[str, list[IndexEntry]] = {}
    for entry in (e for e in package.index() if e.url in urls):
        found.setdefault(entry.url, []).append(entry)
    return {url: sorted(entries, key=lambda e: (e.timestamp, e.filename, e.offset))
            for url, entries in found.items()}


def _captured(package: Package, entry: IndexEntry) -> str:
    """Return the WARC-Date of a response record (to the second); the index timestamp if unreadable."""
    try:
        with package.record(entry.filename, entry.offset) as (response, _):
            warc_date = response.warc_headers.get("WARC-Date", "")
    except _READ_ERRORS as exc:
        logger.warning("record of %s unreadable, its index timestamp used: %s", entry.url, exc)
        warc_date = ""
    captured = utc_iso(warc_date) or utc_iso(entry.timestamp)
    if captured is None:
        raise NotASnapshot(package.path, f"no capture date for {entry.url}")
    return captured


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
        logger.warning("no page metadata from %s: %s", entry.url, exc)
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


# -- rendering ---------------------------------------------------------------------------

def render(c: Citation, fmt: str) -> str:
    """Return the citation in format `fmt` (one of FORMATS), ending in a newline; raise UsageError."""
    renderers: dict[str, Callable[[Citation], str]] = {
        "text": lambda c: _prose(c, False), "markdown": lambda c: _prose(c, True), "bibtex": _bibtex,
        "csl-json": _csl_json, "ris": _ris, "robust-links": _robust_link,
        "json": lambda c: json.dumps(asdict(c), indent=2, ensure_ascii=False) + "\n"}
    if fmt not in renderers:
        raise UsageError(f"unknown citation format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return renderers[fmt](c)


def join_names(names: Iterable[str]) -> str:
    """Return names as a list in prose.

    >>> join_names(["A"]), join_names(["A", "B"]), join_names(["A", "B", "C"])
    ('A', 'A and B', 'A, B and C')
    """
    names = list(names)
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _end(sentence: str) -> str:
    return sentence if sentence.endswith((".", "?", "!")) else sentence + "."


def _line(c: Citation, markdown: bool) -> str:
    """Return the one-line human citation, as plain text or Markdown."""
    esc, url = (_md, _md_url) if markdown else (str, str)
    code: Callable[[str], str] = (lambda s: f"`{s}`") if markdown else str
    title = f"[{_md(_end(c.title))}]({_md_url(c.replay_url)})" if markdown else _end(c.title)
    site = (f"*{_md(c.site_name)}*" if markdown else c.site_name) if c.site_name else ""
    parts = [esc(_end(join_names(c.authors)))] if c.authors else []
    parts.append(f'"{title}"')
    source = ", ".join(p for p in (site, c.published or "") if p)
    parts += [source + "."] if source else []
    archived = f"Archived snapshot of {url(c.original_url)}"
    archived += f" (redirected to {url(c.final_url)})" if c.final_url else ""
    archived += f" (HTTP {c.status})" if c.status and not 200 <= c.status < 300 else ""
    parts.append(f"{archived}, captured {_human(c.captured)}.")
    where = f"(local replay: {url(c.replay_url)})" if c.local else f"at {url(c.replay_url)}"
    parts.append(f"Snapshot {code(c.digest)} {where}.")
    return " ".join(parts)


def _human(moment: str) -> str:
    return moment.replace("T", " ").removesuffix("Z") + " UTC"


def _prose(c: Citation, markdown: bool) -> str:
    """Return the human citation and how to check it, as plain text or Markdown."""
    command = VERIFY_COMMAND.format(digest=c.digest)
    return "\n".join([
        _line(c, markdown), "",
        f"Made with {c.tool}; capture window {_human(c.window_start or c.captured)} to "
        f"{_human(c.window_end or c.captured)}.",
        "To check that a snapshot folder or .wacz file is this one, run:", "",
        *(["```sh", command, "```"] if markdown else ["    " + command]), "",
        f"It reports OK only when every file matches its SHA-256 and the snapshot id is "
        f"{'`' + c.digest + '`' if markdown else c.digest}.", ""])


def _md(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>!|#&])", r"\\\1", text)


def _md_url(url: str) -> str:
    return "<" + re.sub(r"[\s<>]", lambda m: f"%{ord(m.group()):02X}", url) + ">"


_TEX = str.maketrans({"\\": r"{\textbackslash}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%",
                      "$": r"\$", "#": r"\#", "_": r"\_", "~": r"{\textasciitilde}",
                      "^": r"{\textasciicircum}"})


def tex(text: str) -> str:
    r"""Return text with LaTeX's special characters escaped.

    BibTeX counts escaped braces when it balances a field, so unbalanced ones are spelled out.

    >>> print(tex("50% of {R&D} costs $5_000 #1"))
    50\% of \{R\&D\} costs \$5\_000 \#1
    >>> print(tex("a } b {"))
    a {\textbraceright} b {\textbraceleft}
    """
    escaped, braces = text.translate(_TEX), re.sub(r"[^{}]", "", text)
    while "{}" in braces:
        braces = braces.replace("{}", "")
    if not braces:
        return escaped
    return escaped.replace(r"\{", r"{\textbraceleft}").replace(r"\}", r"{\textbraceright}")


def _tex_url(url: str, in_argument: bool = False) -> str:
    """Return a URL safe inside BibTeX braces (and, for \\url in an argument, from % and #)."""
    url = re.sub(r"[{}\\\s]", lambda m: f"%{ord(m.group()):02X}", url)
    return url.replace("%", r"\%").replace("#", r"\#") if in_argument else url


def cite_key(c: Citation) -> str:
    """Return a BibTeX/CSL key: first author's family name (or site's first word), year, title word, id."""
    if c.authors:   # "Family, Given" or "Given Family"
        who = c.authors[0].split(",")[0] if "," in c.authors[0] else (c.authors[0].split() or [""])[-1]
        name = "".join(_ascii(who).split())
    else:
        name = next(iter(_ascii(c.site_name or "").split()), "")
    word = next(iter(_ascii(c.title).split()), "")[:16]
    return f"{name[:24] or 'snapshot'}{(c.published or c.captured)[:4]}{word}-{c.snapshot_id[:6]}"


def _ascii(text: str) -> str:
    """Return text lowercased in ASCII letters and digits, anything else a space."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", flat)


def _bibtex(c: Citation) -> str:
    # A name with " and " in it would be split by BibTeX; braces keep it whole.
    names = [f"{{{tex(a)}}}" if " and " in a else tex(a) for a in c.authors]
    fields = [("title", tex(c.title)),
              ("author", " and ".join(names) or (f"{{{tex(c.site_name)}}}" if c.site_name else "")),
              ("organization", tex(c.site_name or "")),
              ("year", (c.published or "")[:4]), ("date", c.published or ""),
              ("howpublished", f"\\url{{{_tex_url(c.replay_url, True)}}}"),
              ("url", _tex_url(c.replay_url)), ("urldate", c.captured[:10]),
              ("language", tex(c.language or "")),
              ("note", f"Archived snapshot of \\url{{{_tex_url(c.original_url, True)}}}, captured "
                       f"{_human(c.captured)}; snapshot {c.digest}")]
    body = "".join(f"  {name:<12} = {{{value}}},\n" for name, value in fields if value)
    return f"@misc{{{cite_key(c)},\n{body}}}\n"


def _date_parts(iso: str) -> list[int]:
    return [int(p) for p in iso[:10].split("-")]


def _note(c: Citation) -> str:
    return (f"Archived snapshot of {c.original_url}, captured {c.captured}; snapshot {c.digest}; "
            f"check: {VERIFY_COMMAND.format(digest=c.digest)}")


def _csl_json(c: Citation) -> str:
    item = {"id": cite_key(c), "type": "webpage", "title": c.title,
            "author": [{"literal": name} for name in c.authors],
            "container-title": c.site_name, "URL": c.replay_url, "language": c.language,
            "issued": {"date-parts": [_date_parts(c.published)]} if c.published else None,
            "accessed": {"date-parts": [_date_parts(c.captured)]}, "note": _note(c)}
    return json.dumps([{k: v for k, v in item.items() if v}], indent=2, ensure_ascii=False) + "\n"


def _ris_date(iso: str) -> str:
    year, month, day = (iso[:10].split("-") + ["", ""])[:3]
    return f"{year}/{month}/{day}/"


def _ris(c: Citation) -> str:
    tags = [("TY", "ELEC"), ("TI", c.title), *(("AU", a) for a in c.authors),
            ("T2", c.site_name or ""), ("PY", (c.published or "")[:4]),
            ("DA", _ris_date(c.published) if c.published else ""), ("Y2", _ris_date(c.captured)),
            ("UR", c.replay_url), ("LA", c.language or ""), ("N1", _note(c)), ("ER", "")]
    # The spec ends lines with CR LF; a value never spans lines.
    return "".join(f"{tag}  - {' '.join(value.split())}\r\n" for tag, value in tags
                   if value or tag == "ER")


def _robust_link(c: Citation) -> str:
    q = html.escape
    return (f'<a href="{q(c.original_url)}" data-originalurl="{q(c.original_url)}" '
            f'data-versionurl="{q(c.replay_url)}" data-versiondate="{c.captured[:10]}">'
            f"{q(c.title)}</a>\n")
