"""What changed between two snapshots: URLs added, removed, changed and unchanged (by payload
digest, WARC 1.1 section 5.9; by the decoded bodies where a record has none, as an ARC record,
or the two digests were taken with different algorithms), and for changed HTML pages a
readable diff of the text a reader sees."""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import UsageError
from archive.formats.html import HTML_TYPES, visible_text
from archive.snapshot.catalogue import open_catalogue
from archive.snapshot.catalogue_ops import folder_for
from archive.snapshot.depends import payload_of
from archive.snapshot.reader import IndexEntry, Package
from archive.snapshot.store import Collection

from .find import change_state
from .verify import require_intact

TEXT_CAP = 8 << 20   # decoded bytes of a page read for its text
BODY_CAP = 64 << 20  # decoded bytes of a body read to compare where the digests cannot be


@dataclass(frozen=True)
class Change:
    """One URL's fate between two snapshots."""

    url: str
    state: str                       # "added", "removed", "changed", "unchanged"
    before: str | None = None        # payload digests
    after: str | None = None
    text_diff: tuple[str, ...] = ()  # unified diff of the visible text, for changed HTML pages


@dataclass
class Comparison:
    """The result of `archive diff A B`."""

    before: str
    after: str
    changes: list[Change] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for c in self.changes if c.state == state)

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after,
                "counts": {s: self.count(s) for s in ("added", "removed", "changed", "unchanged")},
                "changes": [{"url": c.url, "state": c.state, "before": c.before, "after": c.after,
                             **({"text_diff": list(c.text_diff)} if c.text_diff else {})}
                            for c in self.changes]}


def compare(a: str, b: str, collection: Path | str | None = None, text: bool = True) -> Comparison:
    """Compare snapshot `a` (before) with `b` (after); raise SnapshotNotFound, NotASnapshot,
    VerificationFailed (a package from outside the collection that fails verify)."""
    store = Collection(collection)
    a, b = folder_for(collection, a), folder_for(collection, b)   # id prefixes found in the catalogue
    require_intact(a, collection)
    require_intact(b, collection)
    with store.open(a) as old, store.open(b) as new:
        before, after = _final_entries(old), _final_entries(new)
        result = Comparison(old.id, new.id)
        for url in sorted(before.keys() | after.keys()):
            result.changes.append(_change(url, before.get(url), after.get(url), old, new, text))
    return result


def compare_latest(url: str, collection: Path | str | None = None, text: bool = True) -> Comparison:
    """Compare the two latest snapshots holding `url`; raise UsageError when there are fewer."""
    holders: list[str] = []
    with open_catalogue(Collection(collection).require()) as catalogue:
        for row in reversed(catalogue.timemap(url)):
            if row.folder not in holders:
                holders.append(row.folder)
    if len(holders) < 2:
        raise UsageError(f"fewer than two snapshots hold {url}")
    return compare(holders[1], holders[0], collection, text)


def _final_entries(package: Package) -> dict[str, IndexEntry]:
    """Return each URL's last index entry (the final try of a retried URL)."""
    entries: dict[str, IndexEntry] = {}
    for entry in sorted(package.index(), key=lambda e: e.timestamp):
        entries[entry.url] = entry
    return entries


def _change(url: str, old: IndexEntry | None, new: IndexEntry | None, a: Package, b: Package,
            text: bool) -> Change:
    if old is None or new is None:
        return Change(url, "added" if old is None else "removed",
                      old.digest if old else None, new.digest if new else None)
    state = change_state(old.digest, new.digest)
    if state == "unknown":
        one, other = _body_digest(a, old), _body_digest(b, new)
        state = "same" if one is not None and one == other else "changed"
    if state == "same":
        return Change(url, "unchanged", old.digest, new.digest)
    lines: tuple[str, ...] = ()
    if text:
        before, after = _text(a, old), _text(b, new)
        if before is not None and after is not None:
            lines = tuple(difflib.unified_diff(before, after, "before", "after", lineterm="", n=1))
    return Change(url, "changed", old.digest, new.digest, lines)


def _body_digest(package: Package, entry: IndexEntry) -> str | None:
    """Return the SHA-256 of a response's decoded body (a revisit's from its original); None
    when it cannot be read or passes BODY_CAP (then it cannot be shown to be the same)."""
    try:
        with payload_of(package, entry) as (holder, original):
            body = holder.body(original, BODY_CAP + 1)
    except Exception:   # warcio's parse errors have no common base: unreadable is not the same
        return None
    return hashlib.sha256(body).hexdigest() if len(body) <= BODY_CAP else None


def _text(package: Package, entry: IndexEntry) -> list[str] | None:
    """Return the visible text of an HTML page (a revisit's from its original); None otherwise."""
    try:
        with payload_of(package, entry) as (holder, original):
            if original.mime not in HTML_TYPES:
                return None
            return visible_text(holder.body(original, TEXT_CAP))
    except Exception:   # a page that cannot be read back still counts as changed
        return []
