"""The package files of a snapshot: pages.jsonl, datapackage.json and its digest.

A snapshot folder is an unzipped WACZ 1.1.1 package. `datapackage.json` lists every file
with its SHA-256 and size, and carries our capture metadata under the "archive" key; its
own SHA-256, kept in `datapackage-digest.json`, is the snapshot id. Both JSON files are
written in one canonical form so `verify` can tell an edited file from a re-serialized one.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from archive.formats.wire import iter_stream
from archive.version import __version__

WACZ_VERSION = "1.1.1"
FORMAT_VERSION = 1
DATAPACKAGE = "datapackage.json"
DIGEST_FILE = "datapackage-digest.json"
FOLDERS = ("archive", "indexes", "pages", "logs")
SOURCE = "source/"   # in a self-contained export: the snapshot's own two package files
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


def canonical_json(obj: Any) -> bytes:
    """Return the one byte form our JSON package files take.

    >>> canonical_json({"b": 1, "a": "é"})
    b'{\\n  "a": "\\xc3\\xa9",\\n  "b": 1\\n}\\n'
    """
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def sha256_file(path: Path) -> tuple[str, int]:
    """Return ("sha256:<hex>", size) of a file, read in blocks."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter_stream(f):
            sha.update(block)
            size += len(block)
    return "sha256:" + sha.hexdigest(), size


def package_files(root: Path) -> list[str]:
    """Return the relative paths of the files a package lists (all but the two datapackage files)."""
    paths = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.parent != root:
            paths.append(path.relative_to(root).as_posix())
        elif path.is_file() and path.name not in (DATAPACKAGE, DIGEST_FILE):
            paths.append(path.name)
    return paths


def resources(root: Path, known: Mapping[str, tuple[str, int]]) -> list[dict[str, Any]]:
    """Return the datapackage resource entries for every file under `root`.

    `known` maps relative paths to checksums computed while the file was written.
    """
    entries = []
    for rel in package_files(root):
        digest, size = known.get(rel) or sha256_file(root / rel)
        entries.append({"name": rel.rsplit("/", 1)[-1].lower(), "path": rel,
                        "hash": digest, "bytes": size})
    return entries


def write_pages(path: Path, pages: Iterable[Mapping[str, Any]]) -> int:
    """Write pages.jsonl (header line, then one line per page); return the page count."""
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(PAGES_HEADER) + "\n")
        for page in pages:
            f.write(json.dumps(page, ensure_ascii=False) + "\n")
            count += 1
    return count


def datapackage(root: Path, known: Mapping[str, tuple[str, int]], *, created: str,
                title: str | None, main_url: str | None, main_date: str | None,
                metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Return the datapackage.json object for the snapshot folder `root`."""
    package: dict[str, Any] = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "created": created,
        "software": f"archive {__version__}",
        "resources": resources(root, known),
        "archive": {"format_version": FORMAT_VERSION, **metadata},
    }
    if title:
        package["title"] = title
    if main_url:
        package["mainPageURL"] = main_url
    if main_date:
        package["mainPageDate"] = main_date
    return package


def write_package(root: Path, package: Mapping[str, Any]) -> str:
    """Write datapackage.json and datapackage-digest.json; return the snapshot id (hex)."""
    data = canonical_json(package)
    (root / DATAPACKAGE).write_bytes(data)
    snapshot_id = hashlib.sha256(data).hexdigest()
    (root / DIGEST_FILE).write_bytes(canonical_json(digest_document(snapshot_id)))
    return snapshot_id


def digest_document(snapshot_id: str) -> dict[str, str]:
    """Return the datapackage-digest.json object for a snapshot id."""
    return {"path": DATAPACKAGE, "hash": f"sha256:{snapshot_id}"}
