"""The digest document of a snapshot, datapackage-digest.json, where its proofs are kept.

A proof over datapackage.json cannot be listed inside it, so proofs sit beside its digest:

    {"path": "datapackage.json", "hash": "sha256:<id>",
     "signedData": {...},          WACZ signing spec, anonymous mode (signing.py)
     "timestamps": [{...}, ...]}   RFC 3161 tokens over the id, with their TSA certificates
                                   (timestamping.py)

Neither changes the snapshot id, which is the digest of datapackage.json alone. Their checks
for verify are in checks.py.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from archive.errors import StorageError
from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, canonical_json
from archive.snapshot.store import Collection

SIGNED_DATA = "signedData"
TIMESTAMPS = "timestamps"


# -- the digest document of a snapshot folder ------------------------------------------------------
def snapshot_folder(snapshot: Path | str, collection: Path | str | None = None) -> Path:
    """Return the snapshot folder named by a path, id or id prefix (proofs are added to
    folders; export it again afterwards). Raise SnapshotNotFound, NotASnapshot."""
    return Collection(collection).resolve(str(snapshot))


def package_facts(folder: Path) -> tuple[str, str]:
    """Return (snapshot id, datapackage `created`) of a snapshot folder; raise StorageError."""
    try:
        data = (folder / DATAPACKAGE).read_bytes()
        created = json.loads(data).get("created")
    except (OSError, ValueError, AttributeError) as exc:
        raise StorageError(folder / DATAPACKAGE, f"unreadable: {exc}") from None
    return hashlib.sha256(data).hexdigest(), str(created or "")


def load_digest(folder: Path) -> dict[str, Any]:
    """Return the parsed datapackage-digest.json of a snapshot folder; raise StorageError."""
    try:
        doc = json.loads((folder / DIGEST_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise StorageError(folder / DIGEST_FILE, f"unreadable: {exc}") from None
    if not isinstance(doc, dict):
        raise StorageError(folder / DIGEST_FILE, "not a JSON object")
    return doc


def write_digest(folder: Path, doc: dict[str, Any]) -> None:
    """Replace datapackage-digest.json in its canonical form, atomically."""
    target = folder / DIGEST_FILE
    tmp = folder / f".{DIGEST_FILE}.{os.urandom(6).hex()}.part"
    try:
        tmp.write_bytes(canonical_json(doc))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(target, exc.strerror or str(exc)) from None
