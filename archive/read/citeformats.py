"""Citations written out: text, Markdown, BibTeX, CSL-JSON, RIS and Robust Links.

A `Citation` holds what cite.py read from a snapshot's verified records; `render` writes it in
one format. Every format keeps the page's own date apart from the capture time, carries the
snapshot digest and how to check it, and links http(s) URLs only. Sources: Robust Links
(https://robustlinks.mementoweb.org/spec/), CSL-JSON (citationstyles.org schema), RIS
(Research Information Systems tags), BibTeX/biblatex `@online`.
"""
from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from archive.errors import UsageError

FORMATS = ("text", "markdown", "bibtex", "csl-json", "ris", "robust-links", "json")
VERIFY_COMMAND = "archive verify SNAPSHOT_OR_WACZ --expect {digest}"


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


def web_link(url: str) -> str:
    """Return `url` when it is an absolute http(s) URL with a host; raise UsageError otherwise
    (a citation's link is followed by its readers: `javascript:` and the like are refused).

    >>> web_link("https://ex.org/a")
    'https://ex.org/a'
    >>> web_link("javascript:alert(1)")
    Traceback (most recent call last):
    archive.errors.UsageError: refusing to cite a link that is not http(s): 'javascript:alert(1)'
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(ord(c) < 33 for c in url):
        raise UsageError(f"refusing to cite a link that is not http(s): {url[:200]!r}")
    return url


def render(c: Citation, fmt: str) -> str:
    """Return the citation in format `fmt` (one of FORMATS), ending in a newline; raise UsageError."""
    renderers: dict[str, Callable[[Citation], str]] = {
        "text": lambda c: _prose(c, False), "markdown": lambda c: _prose(c, True), "bibtex": _bibtex,
        "csl-json": _csl_json, "ris": _ris, "robust-links": _robust_link,
        "json": lambda c: json.dumps(asdict(c), indent=2, ensure_ascii=False) + "\n"}
    if fmt not in renderers:
        raise UsageError(f"unknown citation format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for link in (c.original_url, c.final_url, c.replay_url):
        if link is not None:
            web_link(link)   # every format links these: http(s) only, whoever made the Citation
    return renderers[fmt](_without_controls(c))


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_URL_FIELDS = ("original_url", "final_url", "replay_url")


def _without_controls(c: Citation) -> Citation:
    """Return the citation with control characters (C0, C1, DEL, bidi controls, line
    separators) taken out of every text field: a space in prose, percent-encoded in a URL
    (RFC 3986 2.1), so each format stays well-formed and nothing acts on a terminal.

    >>> _without_controls(replace(_SAMPLE, title="a\\x1b[2Jb", original_url="http://x/\\x9b")).title
    'a [2Jb'
    """
    def url(text: str) -> str:
        return _CONTROLS.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)

    def prose(text: str) -> str:
        return " ".join(_CONTROLS.sub(" ", text).split())

    changes: dict[str, Any] = {}
    for name, value in asdict(c).items():
        if isinstance(value, str):
            changes[name] = url(value) if name in _URL_FIELDS else prose(value)
        elif isinstance(value, (list, tuple)):
            changes[name] = tuple(prose(v) for v in value if isinstance(v, str))
    return replace(c, **changes)


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


_SAMPLE = Citation("t", (), None, None, "http://x/", None, 200, "2026-01-01T00:00:00Z", "20260101000000",
                   None, None, "ab" * 32, "sha256:" + "ab" * 32, "http://127.0.0.1:8080/", "archive")
