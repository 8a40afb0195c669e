"""The catalogue as the commands use it: brought up to date after a change, `rm` that keeps it
current, and a snapshot id prefix found in it rather than by reading every snapshot's id."""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from archive.errors import ArchiveError

from . import depends
from .catalogue import open_catalogue
from .store import Collection, is_snapshot

logger = logging.getLogger(__name__)


def remove(ref: str, collection: Path | str | None = None, *, with_dependents: bool = False,
           confirm: Callable[[list[Path]], bool] | None = None) -> list[Path]:
    """Remove a snapshot as `depends.remove` does (same arguments, errors and answer), then
    delete it from the catalogue."""
    removed = depends.remove(ref, collection, with_dependents=with_dependents, confirm=confirm)
    if removed:
        refresh(removed[0].parent)
    return removed


def folder_for(collection: Path | str | None, ref: str) -> str:
    """Return the folder of the one snapshot whose id starts with `ref` (6 or more hex digits,
    optionally "sha256:"), found in the catalogue instead of reading every snapshot's id; `ref`
    unchanged when it is a path, no such prefix, or not exactly one snapshot's (the caller's
    `Collection.resolve` then says why)."""
    needle = ref.lower().removeprefix("sha256:")
    if len(needle) < 6 or len(needle) > 64 or any(ch not in "0123456789abcdef" for ch in needle) \
            or Path(ref).exists():
        return ref
    try:
        with open_catalogue(Collection(collection).require()) as catalogue:
            rows = catalogue.find(needle)
    except (ArchiveError, OSError, sqlite3.Error):
        return ref
    return rows[0].folder if len(rows) == 1 and is_snapshot(Path(rows[0].folder)) else ref


def refresh(collection: Path | Collection, published: Path | None = None) -> None:
    """Bring the collection's catalogue up to date after its folders changed: add the snapshot
    just `published`, or (without it) reconcile with every folder (after an import or rm). The
    files are the truth: a catalogue that cannot be written is logged and left for the next
    reader to reconcile, never a failed capture."""
    try:
        with open_catalogue(collection, reconcile=published is None) as catalogue:
            if published is not None:
                catalogue.add_snapshot(published)
    except (ArchiveError, OSError, sqlite3.Error) as exc:
        logger.warning("catalogue not updated: %s", exc)


__all__ = ["folder_for", "refresh", "remove"]
