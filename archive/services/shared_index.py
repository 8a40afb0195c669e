"""The collection's deduplication index kept in Redis, so that workers deduplicate against each other.

    archive:I:dedup          hash: payload digest -> the first published record holding it (JSON);
                             no expiry: it lives as long as the collection's snapshots
    archive:I:dedup-seeded   set once the snapshots that existed before the first worker are in

A worker adds a snapshot's records once the snapshot is published (never a partial one);
of two snapshots holding the same payload the first added wins (HSETNX). A record whose WARC
file is gone (the snapshot was removed) is dropped on lookup and never referred to.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError
from archive.models import Original
from archive.snapshot.store import Collection
from archive.write.dedup import originals

logger = logging.getLogger(__name__)


class RedisDedupIndex:
    """A DedupIndex shared by every worker of a collection."""

    def __init__(self, client: Any, store: Collection, identity: str):
        self.client = client
        self.store = store
        self.key = f"archive:{identity}:dedup"
        self.seeded_key = f"archive:{identity}:dedup-seeded"

    def lookup(self, digest: str, chunked: bool = False) -> Original | None:
        """Return the published record with this payload digest and chunk framing, or None
        (one record is kept per digest: the first published)."""
        try:
            raw = self.client.hget(self.key, digest)
        except Exception as exc:   # no revisit is always safe: the body is kept
            logger.warning("dedup index: %s", exc)
            return None
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            folder = entry.pop("folder")
            original = Original(**entry)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None   # not an entry this version wrote: the body is kept
        if not (self.store.root / folder / "archive" / entry["filename"]).is_file():
            self.client.hdel(self.key, digest)   # its snapshot was removed
            return None
        return original if original.chunked == chunked else None

    def add(self, snapshot: Path) -> int:
        """Add a published snapshot's records (the first holder of a digest wins); return how many."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for o in originals(snapshot):
            pipe.hsetnx(self.key, o.digest, json.dumps({**vars(o), "folder": snapshot.name}))
            count += 1
        pipe.execute()
        return count

    def seed(self) -> None:
        """Add the snapshots the collection held before its first worker started (once)."""
        if not self.client.set(self.seeded_key, "1", nx=True):
            return
        for folder in self.store.snapshots():
            try:
                self.add(folder)
            except ArchiveError as exc:   # an unreadable snapshot is never referred to
                logger.warning("dedup index: %s skipped: %s", folder.name, exc)
