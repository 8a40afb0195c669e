"""Which digests a WARC record may lack, or carry in another tool's convention, by who wrote it.

WARC 1.1 sections 5.8 and 5.9 make both WARC-Block-Digest and WARC-Payload-Digest optional.
Our own writer gives every record but warcinfo a block digest, so a snapshot we captured is
checked strictly (`DigestPolicy()`): a record without one is a problem. A file made by another
tool (`DigestPolicy(foreign=True)`: Heritrix, wget, an ARC file) is checked against every digest
its producer wrote, and the records that carried none are counted, not failed: from import on,
their bytes are covered by the package checksums (datapackage.json, whose digest is the
snapshot id). Conventions of other tools accepted by name, and only for foreign files:

- `WGET_REVISIT_BLOCK`: GNU wget (`--warc-dedup`) writes the SHA-1 of the empty string as the
  WARC-Block-Digest of its revisit records, whose block is in fact the HTTP head it received
  (wget's src/warc.c, `warc_write_revisit_record`). The block is then covered by no digest of
  its producer, and is counted as such.

(The chunked payload digests of wget and warcio are accepted by `warc.check` for every file:
see `DIGEST_CONVENTION`, what our writer's warcinfo records say of their digests.)
"""
from __future__ import annotations

import hashlib
from base64 import b32encode
from collections import Counter
from dataclasses import dataclass, field

WGET_REVISIT_BLOCK = "wget-revisit-empty-sha1-block-digest"
EMPTY_SHA1 = ("sha1:" + hashlib.sha1(b"").hexdigest(),
              "sha1:" + b32encode(hashlib.sha1(b"").digest()).decode())
COVERED = "their bytes are covered from import on by the package checksums"
DIGEST_CONVENTION = (
    "sha256, lowercase hex. WARC-Block-Digest covers the record block as stored. "
    "WARC-Payload-Digest covers the entity body with any transfer-coding removed and "
    "content-coding kept (WARC 1.1 section 6.3.2). Bodies are stored as sent, chunk framing "
    "included; warcio hashes chunked payloads with their framing (warcio issue 74), so "
    "'warcio check' reports their payload digests as failed while 'archive verify' checks "
    "the spec's digest."
)


@dataclass
class DigestPolicy:
    """What a check accepts of one package's WARC records, and what it counted.

    `undigested`: records whose producer wrote no digest of their bytes (none at all, only a
    revisit's payload digest, which is the original's, or wget's empty-string block digest);
    `payload_only`: records whose producer wrote a payload digest but no block digest (the
    payload is checked, the WARC and HTTP headers are not); `conventions`: convention name ->
    records accepted under it.
    """

    foreign: bool = False
    undigested: int = 0
    payload_only: int = 0
    conventions: Counter[str] = field(default_factory=Counter)

    def block_problem(self, kind: str, expected: str | None, matched: bool,
                      payload_digest: str | None) -> str | None:
        """Return what is wrong with a record's block digest, or None when the policy accepts it.

        `kind` is the WARC-Type, `expected` the WARC-Block-Digest written (None: absent),
        `matched` whether the block hashed to it, `payload_digest` the WARC-Payload-Digest.
        """
        if expected:
            if matched:
                return None
            if self.foreign and kind == "revisit" and expected.lower() in (d.lower() for d in EMPTY_SHA1):
                self.conventions[WGET_REVISIT_BLOCK] += 1
                self.undigested += 1
                return None
            return "block digest mismatch"
        if not self.foreign:
            return None if kind == "warcinfo" else "record has no WARC-Block-Digest"
        if payload_digest and kind != "revisit":
            self.payload_only += 1
        else:
            self.undigested += 1
        return None

    def count_records(self, records: int) -> None:
        """Count records of a file whose format carries no digests at all (ARC)."""
        self.undigested += records

    def summary(self) -> str | None:
        """Return the one line a report shows about what producers left undigested, or None.

        >>> p = DigestPolicy(foreign=True, undigested=3, payload_only=2)
        >>> p.summary()
        '3 records carried no digest from their producer and 2 only a payload digest: their bytes are covered from import on by the package checksums'
        """
        if not (self.undigested or self.payload_only):
            return None
        text = f"{self.undigested} record{'s' if self.undigested != 1 else ''} carried no digest from their producer"
        if self.payload_only:
            text += f" and {self.payload_only} only a payload digest"
        text += f": {COVERED}"
        if self.conventions:
            text += " (accepted by convention: " + ", ".join(
                f"{name} x{n}" for name, n in sorted(self.conventions.items())) + ")"
        return text

    def to_json(self) -> dict[str, object]:
        return {"foreign": self.foreign, "undigested_records": self.undigested,
                "payload_digest_only_records": self.payload_only, "conventions": dict(self.conventions)}


__all__ = ["COVERED", "EMPTY_SHA1", "WGET_REVISIT_BLOCK", "DigestPolicy"]
