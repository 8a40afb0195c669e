"""What readers read, checked against the records verify has read: layout, index, page list.

verify hashes every record; this module makes sure the files readers go by (the CDXJ index
replay and citations follow, the page list) point only at those records and say what they
hold. It works from the record heads the WARC check collected (`Records`), so no record is
read twice.

Sources: WACZ 1.1.1 (https://specs.webrecorder.net/wacz/1.1.1/): the layout (section 4:
`datapackage.json`, `archive/`, `indexes/`, `pages/pages.jsonl`) and the CDXJ fields (url,
digest, filename relative to `archive/`, offset, length of one record); WARC 1.1 section 5
for the record headers they are compared with.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from archive.formats.urls import surt_key
from archive.snapshot.package import DATAPACKAGE
from archive.snapshot.reader import IndexEntry, Package, parse_cdxj, warc_member
from archive.warc.cdxj import REVISIT_MIME
from archive.warc.check import head_matches
from archive.warc.digests import Problem

PAGES = "pages/pages.jsonl"
INDEXED_TYPES = ("response", "revisit", "resource", "metadata")   # cdxj-indexer's defaults
_NOT_DIGIT = re.compile(r"\D")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
MAX_SHOWN = 50    # problems of one kind reported per file; the rest are counted in one line


@dataclass
class Records:
    """The records of one WARC file as the WARC check read them: where each starts, its heads."""

    size: int = 0
    heads: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    _at: dict[int, int] | None = None

    def at(self, offset: int) -> tuple[dict[str, str], int] | None:
        """Return (WARC headers, stored length) of the record starting at `offset`, or None."""
        if self._at is None:
            self._at = {start: i for i, (start, _) in enumerate(self.heads)}
        i = self._at.get(offset)
        if i is None:
            return None
        end = self.heads[i + 1][0] if i + 1 < len(self.heads) else self.size
        return self.heads[i][1], end - offset


@dataclass
class Coverage:
    """What the index check found: problems, and the (url, 14-digit time) of every line that
    matched its record."""

    problems: list[Problem] = field(default_factory=list)
    captured: set[tuple[str, str]] = field(default_factory=set)


def check_layout(package: Package) -> list[Problem]:
    """Return a problem for each part of the WACZ 1.1.1 layout missing, and each zip anomaly."""
    problems = [Problem(name, why) for name, why in package.anomalies()]
    names = package.names()
    if not package.warc_names():
        problems.append(Problem("archive/", "no WARC file (WACZ 1.1.1 requires archive/)"))
    if not package.index_names():
        problems.append(Problem("indexes/", "no CDXJ index (WACZ 1.1.1 requires indexes/)"))
    if PAGES not in names:
        problems.append(Problem(PAGES, "missing (WACZ 1.1.1 requires pages/pages.jsonl)"))
    if DATAPACKAGE not in names:
        problems.append(Problem(DATAPACKAGE, "missing"))
    return problems


def check_index(package: Package, warcs: dict[str, Records]) -> Coverage:
    """Check every line of every index against the record it names (see `line_problem`)."""
    result = Coverage()
    first: dict[tuple[str, int], str] = {}   # (WARC member, offset) -> the line naming it first
    for name in package.index_names():
        shown = 0
        for number, entry in _lines(package, name, result):
            why = _repeated(entry, first, f"{name} line {number}") or line_problem(entry, warcs)
            if why is None:
                result.captured.add((entry.url, entry.timestamp[:14]))
                continue
            shown += 1
            if shown <= MAX_SHOWN:
                result.problems.append(Problem(name, f"line {number}: {why[0]}", uri=entry.url,
                                               expected=why[1], found=why[2]))
        if shown > MAX_SHOWN:
            result.problems.append(Problem(name, f"{shown - MAX_SHOWN} more index lines do not match their records"))
    return result


def _repeated(entry: IndexEntry, first: dict[tuple[str, int], str], where: str
              ) -> tuple[str, str | None, str | None] | None:
    """Return a problem when an earlier index line named the same record (file and offset):
    a record is indexed once, and repeated lines only make readers work (issue 13)."""
    key = (warc_member(entry.filename) or entry.filename, entry.offset)
    earlier = first.setdefault(key, where)
    if earlier == where:
        return None
    return f"names the same record as {earlier}", None, None


def _lines(package: Package, name: str, result: Coverage) -> Iterator[tuple[int, IndexEntry]]:
    """Yield (line number, entry) of an index file, streamed with the reader's line cap (a line
    over it is NotASnapshot); a malformed line or an unreadable file is a problem."""
    bad = 0
    try:
        for number, raw in enumerate(package.lines(name), 1):
            line = raw.decode("utf-8", "replace")
            entry = parse_cdxj(line)
            if entry is not None:
                yield number, entry
            elif line.strip() and not line.startswith("!"):   # "!" opens a CDX header line
                bad += 1
                if bad <= MAX_SHOWN:
                    result.problems.append(Problem(name, f"line {number}: not a CDXJ line with url, "
                                                         "filename, offset and length"))
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        result.problems.append(Problem(name, f"unreadable index ({type(exc).__name__}: {exc})"[:300]))


def line_problem(entry: IndexEntry, warcs: dict[str, Records]) -> tuple[str, str | None, str | None] | None:
    """Return (what, expected, found) when an index line does not describe the one record at
    its place, else None: the file must be a WARC file of the package's `archive/` folder, a
    record must start at the offset and end at offset + length, and its type, WARC-Target-URI,
    WARC-Date and WARC-Payload-Digest must be those of the line."""
    member = warc_member(entry.filename)
    if member is None:
        return "names a WARC file outside the package's archive/ folder", "a file in archive/", entry.filename[:200]
    records = warcs.get(member)
    if records is None:
        return "names a WARC file the package does not hold", "a listed WARC file", entry.filename[:200]
    found = records.at(entry.offset)
    if found is None:
        return f"no record starts at offset {entry.offset} of {member}", None, None
    heads, length = found
    # in an uncompressed WARC (ARC), cdxj-indexer's length leaves out the CRLF CRLF (LF) ending a record
    if entry.length != length and not (member.endswith(".warc") and entry.length == length - 4) \
            and not (member.endswith(".arc") and entry.length == length - 1):
        return f"length does not cover exactly the record at {member} @{entry.offset}", str(length), str(entry.length)
    return _heads_problem(entry, heads)


def _heads_problem(entry: IndexEntry, heads: dict[str, str]) -> tuple[str, str | None, str | None] | None:
    kind = heads.get("warc-type", "")
    if kind not in INDEXED_TYPES or (kind == "revisit") != (entry.mime == REVISIT_MIME):
        return "record type differs", kind, entry.mime
    uri = heads.get("warc-target-uri", "").strip().strip("<>")
    if uri != entry.url and not any(head_matches(heads, "warc-target-uri", u) for u in (entry.url, f"<{entry.url}>")):
        return "URL differs from the record's WARC-Target-URI", uri, entry.url
    # pywb keys a POST by its URL plus "__wb_method=post&..." (the request body): same URL
    key = entry.urlkey.split("__wb_method=", 1)[0].rstrip("?&") if "__wb_method=" in entry.urlkey else entry.urlkey
    if key != _surt(entry.url):
        return "sort key is not the URL's", _surt(entry.url), entry.urlkey
    date = _NOT_DIGIT.sub("", heads.get("warc-date", ""))
    if not (entry.timestamp.isdigit() and len(entry.timestamp) >= 14 and date.startswith(entry.timestamp)):
        return "time differs from the record's WARC-Date", date[:14], entry.timestamp
    stored = heads.get("warc-payload-digest")
    if stored and entry.digest not in ("", "-") and not same_digest(stored, entry.digest):
        return "digest differs from the record's WARC-Payload-Digest", stored, entry.digest
    return None


def _surt(url: str) -> str:
    key = _KEYS.pop(url, None)
    if key is not None:
        return key
    try:
        return surt_key(url)
    except Exception:   # the surt library's errors have no common base; no key is a mismatch
        return ""


_KEYS: dict[str, str] = {}   # SURT keys worked out ahead (IndexKeys), taken once each
MAX_KEYS = 100_000           # keys held ahead at most
MAX_KEY_TEXT = 16 << 20      # characters of URLs and keys held ahead at most (index lines reach 1 MB)


class IndexKeys:
    """The SURT keys of a package's index lines, worked out ahead of `check_index` by both
    processes of a split WARC check (warc.parallel.SideWork): part 0 takes the even lines of
    the first MAX_KEYS, part 1 the odd ones, each up to MAX_KEY_TEXT characters of URLs and
    keys (what each holds, and the child sends, stays bounded whatever the index's lines).
    The keys are most of the index check's work and need no record. Only the first split of a package does it; what cannot be read is left
    to `check_index`, which reports it."""

    def __init__(self, package: Package) -> None:
        self.package, self.done = package, False

    def run(self, part: int) -> dict[str, str]:
        keys: dict[str, str] = {}
        if self.done:
            return keys
        try:
            number = size = 0
            for name in self.package.index_names():
                for raw in self.package.lines(name):
                    number += 1
                    if number > MAX_KEYS or size > MAX_KEY_TEXT:
                        return keys
                    entry = parse_cdxj(raw.decode("utf-8", "replace")) if number % 2 == part else None
                    if entry is not None:
                        key = keys[entry.url] = _surt(entry.url)
                        size += len(entry.url) + len(key)
        except Exception:   # whatever the file holds, check_index reads it again and says it
            pass
        return keys

    def join(self, results: list[dict[str, str] | None]) -> None:
        if not self.done:
            self.done = True
            _KEYS.clear()
            for keys in results:
                _KEYS.update(keys or {})


def same_digest(a: str, b: str) -> bool:
    """Return True when two digests ("algo:value", hex or base32; the algorithm optional on one
    side, as CDXJ writers differ) name the same bytes.

    >>> same_digest("sha1:AAAQEAYEAUDAO", "0001020304050607"), same_digest("AAAQEAYEAUDAO", "00")
    (True, False)
    >>> same_digest("sha256:" + "ab" * 32, "ab" * 32), same_digest("sha1:AAAAAAAA", "sha256:AAAAAAAA")
    (True, False)
    """
    if a == b:
        return True
    (algo_a, raw_a), (algo_b, raw_b) = _digest(a), _digest(b)
    if algo_a and algo_b and algo_a != algo_b:
        return False
    return raw_a is not None and raw_a == raw_b


def _digest(text: str) -> tuple[str, bytes | None]:
    algo, sep, value = text.strip().rpartition(":")
    value = value.strip()
    try:
        raw = bytes.fromhex(value) if _HEX.fullmatch(value) else base64.b32decode(value.upper() + "=" * (-len(value) % 8))
    except (ValueError, binascii.Error):
        raw = None
    return algo.lower(), raw


def check_pages(package: Package, captured: set[tuple[str, str]]) -> list[Problem]:
    """Return a problem for each page list entry that names no response the index matched to
    its record (URL, and capture time to the second), and for each line that is not an entry."""
    problems: list[Problem] = []
    for name in (PAGES, "pages/extraPages.jsonl"):
        if not package.has(name):
            continue
        for number, raw in enumerate(package.lines(name), 1):
            why = _page_problem(raw.decode("utf-8", "replace"), captured)
            if why is not None and len(problems) < MAX_SHOWN:
                problems.append(Problem(name, f"line {number}: {why}"))
    return problems


def _page_problem(line: str, captured: set[tuple[str, str]]) -> str | None:
    if not line.strip():
        return None
    try:
        entry: Any = json.loads(line)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(entry, dict):
        return "not a JSON object"
    if "url" not in entry:
        return None if "format" in entry or "id" in entry else "page without a url"   # the header line
    url, ts = entry.get("url"), entry.get("ts")
    if not isinstance(url, str) or not isinstance(ts, str):
        return "page url or ts is not a string"
    stamp = "".join(ch for ch in ts if ch.isdigit())[:14]
    if (url, stamp) not in captured:
        return f"page {url[:200]!r} at {ts[:40]!r} is no capture the index holds"
    return None
