"""The catalogue's SQLite schema, its writes of one snapshot, and the FTS5 query and snippet forms."""
from __future__ import annotations

import os
import re
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalogue_rows import SnapshotFacts, clean

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, folder TEXT NOT NULL UNIQUE, title TEXT NOT NULL, seeds TEXT NOT NULL,
    captured_at TEXT NOT NULL, started TEXT NOT NULL, pages INTEGER NOT NULL, size INTEGER NOT NULL,
    has_screenshot INTEGER NOT NULL, self_contained INTEGER NOT NULL, stamp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS verifications (id TEXT PRIMARY KEY, time TEXT NOT NULL, ok INTEGER NOT NULL,
                                          problems INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS snapshots_newest ON snapshots (captured_at DESC, started DESC, id);
CREATE TABLE IF NOT EXISTS captures (   -- clustered by URL and time: a TimeMap is one range
    url TEXT NOT NULL, timestamp TEXT NOT NULL, started TEXT NOT NULL, snapshot_id TEXT NOT NULL,
    filename TEXT NOT NULL, offset INTEGER NOT NULL, folder TEXT NOT NULL, urlkey TEXT NOT NULL,
    status INTEGER, digest TEXT NOT NULL, mime TEXT NOT NULL, record_type TEXT NOT NULL, length INTEGER NOT NULL,
    PRIMARY KEY (url, timestamp, started, snapshot_id, filename, offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS captures_payload ON captures (digest, folder) WHERE record_type != 'revisit';
CREATE INDEX IF NOT EXISTS captures_latest ON captures (url, folder) WHERE status = 200 AND record_type != 'revisit';
CREATE INDEX IF NOT EXISTS captures_snapshot ON captures (snapshot_id);
CREATE TABLE IF NOT EXISTS deps (snapshot_id TEXT NOT NULL, depends_on TEXT NOT NULL,
                                 PRIMARY KEY (snapshot_id, depends_on));
CREATE INDEX IF NOT EXISTS deps_target ON deps (depends_on);
CREATE TABLE IF NOT EXISTS pages (id INTEGER PRIMARY KEY, snapshot_id TEXT NOT NULL, url TEXT NOT NULL,
                                  timestamp TEXT NOT NULL, title TEXT NOT NULL, digest TEXT NOT NULL,
                                  borrowed INTEGER NOT NULL);   -- 1: a revisit waiting for its original's text
CREATE INDEX IF NOT EXISTS pages_snapshot ON pages (snapshot_id);
CREATE INDEX IF NOT EXISTS pages_digest ON pages (digest);
CREATE INDEX IF NOT EXISTS pages_borrowed ON pages (borrowed) WHERE borrowed = 1;
CREATE VIRTUAL TABLE IF NOT EXISTS page_text USING fts5(url, title, text, tokenize='unicode61 remove_diacritics 2');
INSERT INTO page_text (page_text, rank) VALUES ('rank', 'bm25(2.0, 4.0, 1.0)');
"""

@dataclass(frozen=True)
class SnapshotRow:
    """One snapshot as the catalogue lists it."""

    id: str
    folder: str              # path of the snapshot folder
    title: str
    seed_url: str
    captured_at: str         # ISO 8601 UTC (datapackage "created")
    pages: int
    size: int                # bytes of the files the package lists
    verified_at: str | None
    verified_ok: bool | None
    has_screenshot: bool
    seeds: tuple[str, ...] = ()
    started: str = ""        # the capture's start to the microsecond where recorded
    problems: int = 0        # of the last verification


@dataclass(frozen=True)
class CaptureRow:
    """One capture of a URL: a record of a snapshot's index."""

    snapshot_id: str
    url: str
    timestamp: str           # 14-digit WARC-Date form
    status: int | None
    payload_digest: str
    mime: str
    record_type: str         # response | revisit | resource
    folder: str = ""         # path of the snapshot folder holding it
    filename: str = ""       # the WARC file, as the index names it
    offset: int = 0
    length: int = 0


@dataclass(frozen=True)
class SearchHit:
    """One page found by `Catalogue.search`."""

    snapshot_id: str
    url: str
    title: str
    timestamp: str
    snippet: tuple[tuple[str, bool], ...]   # (text, is_match) segments, plain text: escape on output


SNAPSHOT_COLUMNS = ("s.id, s.folder, s.title, s.captured_at, s.pages, s.size, v.time, v.ok, s.has_screenshot, "
                     "s.started, s.seeds, v.problems")
SNAPSHOTS = "snapshots s LEFT JOIN verifications v ON v.id = s.id"
NOT_FAILED = "NOT EXISTS (SELECT 1 FROM verifications v WHERE v.id = c.snapshot_id AND v.ok = 0)"   # dedup skips those
CAPTURE_COLUMNS = ("c.snapshot_id, c.url, c.timestamp, c.status, c.digest, c.mime, c.record_type, c.folder, "
                    "c.filename, c.offset, c.length")


def snapshot_row(root: Path, r: tuple[Any, ...]) -> SnapshotRow:
    """Return the SnapshotRow of a row selected as SNAPSHOT_COLUMNS."""
    seeds = tuple(s for s in str(r[10]).split("\n") if s)
    return SnapshotRow(r[0], os.path.join(root, r[1]), r[2], seeds[0] if seeds else "", r[3], r[4], r[5], r[6],
                       None if r[7] is None else bool(r[7]), bool(r[8]), seeds, r[9], r[11] or 0)


def capture_row(root: Path, r: tuple[Any, ...]) -> CaptureRow:
    """Return the CaptureRow of a row selected as CAPTURE_COLUMNS (the folder under `root`, as a
    string: a TimeMap makes 10,000 of these, so no os.path.join of a Path each)."""
    return CaptureRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], f"{root}{os.sep}{r[7]}", r[8], r[9], r[10])


_WORD = re.compile(r"\w+", re.UNICODE)


def insert_snapshot(cur: sqlite3.Cursor, facts: SnapshotFacts) -> None:
    """Write one snapshot's rows (replacing any it had), inside the caller's transaction."""
    delete_snapshot(cur, facts.id)
    cur.execute("DELETE FROM snapshots WHERE folder=?", (facts.folder,))
    cur.execute("INSERT INTO snapshots (id, folder, title, seeds, captured_at, started, pages, size, "
                "has_screenshot, self_contained, stamp) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (facts.id, facts.folder, facts.title, "\n".join(facts.seeds), facts.captured_at, facts.started,
                 facts.pages, facts.size, int(facts.has_screenshot), int(facts.self_contained), facts.stamp))
    cur.executemany("INSERT OR IGNORE INTO captures VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(c.url, c.timestamp, facts.started, facts.id, c.filename, c.offset, facts.folder, c.urlkey,
                      c.status, c.digest, c.mime, c.record_type, c.length) for c in facts.captures])
    cur.executemany("INSERT OR IGNORE INTO deps VALUES (?, ?)", [(facts.id, d) for d in facts.dependencies])
    for page in facts.texts:
        cur.execute("INSERT INTO pages (snapshot_id, url, timestamp, title, digest, borrowed) VALUES (?,?,?,?,?,?)",
                    (facts.id, page.url, page.timestamp, page.title, page.digest, int(page.borrowed)))
        cur.execute("INSERT INTO page_text (rowid, url, title, text) VALUES (?,?,?,?)",
                    (cur.lastrowid, clean(page.url, 8192), page.title, page.text))


def fill_borrowed(cur: sqlite3.Cursor) -> None:
    """Give each revisit page waiting for text its original's (a page with the same payload
    digest whose text is its own), inside the caller's transaction. Run after every change, so
    the catalogue ends the same whatever order snapshots came in."""
    waiting = cur.execute("SELECT id, digest FROM pages WHERE borrowed = 1").fetchall()
    for page_id, digest in waiting:   # the original chosen first, its text read once (not once per candidate)
        found = cur.execute("SELECT text FROM page_text WHERE rowid = (SELECT id FROM pages WHERE digest = ? "
                            "AND borrowed = 0 ORDER BY snapshot_id LIMIT 1)", (digest,)).fetchone()
        if found is not None:
            row = cur.execute("SELECT url, title FROM page_text WHERE rowid = ?", (page_id,)).fetchone()
            cur.execute("DELETE FROM page_text WHERE rowid = ?", (page_id,))
            cur.execute("INSERT INTO page_text (rowid, url, title, text) VALUES (?,?,?,?)", (page_id, *row, found[0]))
            cur.execute("UPDATE pages SET borrowed = 2 WHERE id = ?", (page_id,))


def delete_snapshot(cur: sqlite3.Cursor, snapshot_id: str) -> None:
    """Delete one snapshot's rows, inside the caller's transaction."""
    cur.execute("DELETE FROM page_text WHERE rowid IN (SELECT id FROM pages WHERE snapshot_id=?)", (snapshot_id,))
    for table in ("pages", "captures", "deps", "snapshots"):
        cur.execute(f"DELETE FROM {table} WHERE {'id' if table == 'snapshots' else 'snapshot_id'}=?",
                    (snapshot_id,))


def clear(cur: sqlite3.Cursor) -> None:
    """Delete every row (the schema and the meta table stay), inside the caller's transaction."""
    for table in ("page_text", "pages", "captures", "deps", "snapshots", "verifications"):
        cur.execute(f"DELETE FROM {table}")
    cur.execute("DELETE FROM meta")


def fts_query(words: str) -> str:
    """Return an FTS5 query matching pages holding every word of `words` (the last as a prefix),
    each quoted so that nothing a user types is FTS5 syntax; "" when there is no word.

    >>> fts_query('net "neutrality" OR x*')
    '"net" "neutrality" "OR" "x"*'
    """
    found = _WORD.findall(words)[:32]
    if not found:
        return ""
    quoted = [f'"{w}"' for w in found]
    return " ".join(quoted) + "*"


SNIPPET_WORDS = 24        # words of a passage shown
SNIPPET_SCAN = 64 << 10   # characters of a page's text looked through for the passage


def _norm(word: str) -> str:
    """Return a word as the index compares it: case and diacritics folded (unicode61, remove_diacritics 2).

    >>> _norm("Éte")
    'ete'
    """
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch)).casefold()


def snippet(fields: tuple[str, ...], words: str) -> tuple[tuple[str, bool], ...]:
    """Return the passage of the first field (text, title, URL) holding a word of `words` (the
    last as a prefix, as fts_query searches), as (text, is_match) segments, "…" where it is cut.

    >>> snippet(("one two Cats sat", "T", "u"), "cat")
    (('one two ', False), ('Cats', True), (' sat', False))
    """
    wanted = [_norm(w) for w in _WORD.findall(words)[:32]]
    if not wanted:
        return ()
    exact, last = set(wanted[:-1]), wanted[-1]

    def hit(token: str) -> bool:
        norm = _norm(token)
        return norm in exact or norm.startswith(last)
    for text in fields:
        text = text[:SNIPPET_SCAN]
        tokens = []
        first = None
        for match in _WORD.finditer(text):
            tokens.append(match)
            if first is None and hit(match.group()):
                first = len(tokens) - 1
            if first is not None and len(tokens) >= first + SNIPPET_WORDS:
                break
        if first is not None:
            begin = max(0, first - 3)
            return _segments(text, tokens[begin - 1].end() if begin else 0, tokens[begin:], hit)
    return ((fields[0][:200] if fields and fields[0] else next((f for f in fields if f), "")), False),


def _segments(text: str, start: int, tokens: list[re.Match[str]],
              hit: Callable[[str], bool]) -> tuple[tuple[str, bool], ...]:
    """Return text[start:] up to the end of the last token, as segments, matches marked."""
    end = tokens[-1].end()
    parts: list[tuple[str, bool]] = [("… ", False)] if text[:start].strip() else []
    at = start
    for match in tokens:
        if hit(match.group()):
            if match.start() > at:
                parts.append((text[at:match.start()], False))
            parts.append((match.group(), True))
            at = match.end()
    if end > at:
        parts.append((text[at:end], False))
    if text[end:].strip():
        parts.append((" …", False))
    return tuple(parts)
