"""Who made a package: our capture, or another tool (an imported WARC, ARC or WACZ).

A snapshot we captured is held to our writer's rules: every record but warcinfo has a block
digest, and every revisit's original is in a snapshot its metadata names. One made elsewhere,
a package whose datapackage.json another tool wrote or a WARC or ARC file imported bare, is
held to what its producer wrote (WARC 1.1 sections 5.8, 5.9: both digests optional; section
6.7: a revisit may refer to a record of another file): `warc/conventions.py` says which
digests its records may lack, `depends.resolve` where their originals may be.
"""
from __future__ import annotations

from typing import Any


def made_elsewhere(datapackage: dict[str, Any]) -> bool:
    """Return True when a parsed datapackage.json is another tool's, or ours around an import.

    >>> listed = {"resources": [{"path": "archive/a.warc.gz"}]}
    >>> made_elsewhere({"software": "py-wacz 0.4.9", **listed}), made_elsewhere({"software": "archive 0.1.0", **listed})
    (True, False)
    >>> made_elsewhere({"software": "archive 0.1.0", "archive": {"imported": {"source": "a.warc.gz"}}})
    True
    """
    software = datapackage.get("software")
    if not (isinstance(software, str) and software.startswith("archive ")):
        # an unreadable datapackage.json (verify's stand-in: no resources) keeps our rules
        return bool(datapackage.get("resources"))
    meta = datapackage.get("archive")
    return isinstance(meta, dict) and isinstance(meta.get("imported"), dict)


__all__ = ["made_elsewhere"]
