"""What an import notes about a WARC or ARC file made by another tool: how many records its
producer left without a digest (warc/conventions.py) and how many revisits refer to originals
in other files (snapshot/depends.py looks for those in the collection when verifying).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archive.warc.conventions import DigestPolicy


@dataclass
class Revisits:
    """What the revisits of one file refer to, and what of it the file holds (import's one pass)."""

    originals: set[str] = field(default_factory=set)    # record ids, and "url digest", of responses
    wanted: list[tuple[str, str]] = field(default_factory=list)   # (WARC-Refers-To, "url digest")

    def note(self, record: Any) -> None:
        """Take in one warcio record (its WARC headers only)."""
        heads = record.rec_headers
        url = (heads.get_header("WARC-Target-URI") or "").strip().strip("<>")
        digest = heads.get_header("WARC-Payload-Digest") or ""
        if record.rec_type in ("response", "resource"):
            self.originals.add(heads.get_header("WARC-Record-ID") or "")
            self.originals.add(f"{url} {digest}")
        elif record.rec_type == "revisit":
            url = (heads.get_header("WARC-Refers-To-Target-URI") or url).strip().strip("<>")
            self.wanted.append((heads.get_header("WARC-Refers-To") or "", f"{url} {digest}"))

    def elsewhere(self) -> int:
        """Return how many revisits refer to an original the file does not hold."""
        return sum(1 for target, key in self.wanted if (target or key) not in self.originals)


def foreign_notes(policy: DigestPolicy, revisits: Revisits) -> dict[str, Any]:
    """Return the metadata an import adds about what its producer left out: the digest counts
    (warc/conventions.py), the revisits whose originals are in other files, and the
    `warnings` that `show` prints."""
    elsewhere = revisits.elsewhere()
    warnings = [line for line in (policy.summary(),) if line]
    if elsewhere:
        warnings.append(f"{elsewhere} revisit record{'s' if elsewhere != 1 else ''} refer to originals in "
                        "other files: `verify` warns of each whose original is not in this collection")
    return {"producer_digests": policy.to_json(), "revisits_elsewhere": elsewhere, "warnings": warnings}


__all__ = ["Revisits", "foreign_notes"]
