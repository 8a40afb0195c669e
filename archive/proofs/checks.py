"""The checks of a snapshot's proofs (signature, timestamps) for verify, offline.

The crypto libraries load only when a snapshot holds a proof or one is asked for. Results go
into the caller's report (`Findings`: verify's Report has that shape), so this module does not
depend on the read side.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, SOURCE
from archive.snapshot.reader import Package
from archive.warc.digests import Problem

from .digest import SIGNED_DATA, TIMESTAMPS


@dataclass(frozen=True)
class Proof:
    """One proof checked by verify: a signature or a timestamp, valid or not, trusted or not."""

    kind: str                  # "signature" or "timestamp"
    ok: bool                   # the proof itself holds (a failure is also a Problem)
    trusted: bool | None       # checked against a key or certificate the user gave; None: not asked
    summary: str               # one line for people
    details: dict[str, Any] = field(default_factory=dict)
    checked: bool = True       # False: a kind of proof this program does not check

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": self.ok, "trusted": self.trusted, "checked": self.checked,
                "summary": self.summary, **self.details}


class Findings(Protocol):
    """Where checks put what they find: verify's Report."""

    snapshot_id: str | None
    problems: list[Problem]
    proofs: list[Proof]


def check_proofs(package: Package, report: Findings, *, trust: Sequence[Path | str] = (),
                 tsa_certs: Sequence[Path | str] = ()) -> None:
    """Check the signature and timestamps of `package` into `report` (proofs and problems).

    `trust`: key files the signature must be made with; `tsa_certs`: certificates a
    timestamp's signer must chain to. Without them a valid proof is reported as valid but
    not trusted, which is not a problem. Raises ProofError for an unreadable trust file.
    """
    doc, created = _documents(package)
    if doc is None or report.snapshot_id is None:
        return
    if SIGNED_DATA in doc or trust:
        from .signing import trusted_fingerprints
        keys = trusted_fingerprints([Path(p) for p in trust]) if trust else None
        _check_signature(doc.get(SIGNED_DATA), report, created, keys)
    if TIMESTAMPS in doc or tsa_certs:
        from .timestamping import load_anchors
        anchors = load_anchors([Path(p) for p in tsa_certs]) if tsa_certs else None
        _check_timestamps(doc.get(TIMESTAMPS), report, anchors)


def _documents(package: Package) -> tuple[dict[str, Any] | None, str | None]:
    """Return (the digest document, datapackage `created`), or None where unreadable (verify
    reports that already)."""
    # a self-contained export carries the snapshot's own package files, proofs included, here
    where = SOURCE if package.has(SOURCE + DATAPACKAGE) else ""
    try:
        doc = json.loads(package.read(where + DIGEST_FILE)) if package.has(where + DIGEST_FILE) else None
        created = json.loads(package.read(where + DATAPACKAGE)).get("created")
    except (ValueError, AttributeError, RecursionError, OSError):
        return None, None
    return (doc if isinstance(doc, dict) else None), (created if isinstance(created, str) else None)


def _check_signature(signed: Any, report: Findings, created: str | None, keys: set[str] | None) -> None:
    from .signing import check_signature

    if signed is None:
        report.problems.append(Problem(DIGEST_FILE, "not signed, but --trust asks for a signature", claim="--trust"))
        return
    if isinstance(signed, dict) and "publicKey" not in signed and "domainCert" in signed and keys is None:
        # the spec's domain-name identity mode (authsign): a package made elsewhere, not ours to judge
        report.proofs.append(Proof("signature", False, None, f"signature by the domain certificate of "
                                   f"{signed.get('domain')}: not checked here", checked=False))
        return
    key, why = check_signature(signed)
    wanted = f"sha256:{report.snapshot_id}"
    if why is None and signed.get("hash") != wanted:
        why = f"the signature is over another package (hash {signed.get('hash')}, not {wanted})"
    if why is None and signed.get("created") != created:
        why = f"signedData created {signed.get('created')} is not datapackage.json's {created}"
    details = {"fingerprint": key, "created": signed.get("created") if isinstance(signed, dict) else None}
    if why is not None:
        report.problems.append(Problem(DIGEST_FILE, f"signature invalid: {why}"))
        report.proofs.append(Proof("signature", False, None, f"signature INVALID: {why}", details))
        return
    if keys is None:
        report.proofs.append(Proof("signature", True, None, f"signature valid, signer not trusted: key {key} "
                                   "(give --trust KEYFILE to check it is the key you expect)", details))
    elif key in keys:
        report.proofs.append(Proof("signature", True, True, f"signature valid, signer trusted: key {key}", details))
    else:
        report.problems.append(Problem(DIGEST_FILE, "signed by a key not given with --trust",
                                       expected=" or ".join(sorted(keys)), found=key, claim="--trust"))
        report.proofs.append(Proof("signature", True, False, f"signature valid but by another key: {key}", details))


def _check_timestamps(entries: Any, report: Findings, anchors: list[Any] | None) -> None:
    from .timestamping import check_entry

    if not entries:
        report.problems.append(Problem(DIGEST_FILE, "no timestamp, but --tsa-cert asks for one"
                                       if anchors is not None else "empty timestamps list",
                                       claim="--tsa-cert" if anchors is not None else None))
        return
    if not isinstance(entries, list):
        report.problems.append(Problem(DIGEST_FILE, "timestamps is not a list"))
        return
    for n, entry in enumerate(entries):
        result = check_entry(entry, str(report.snapshot_id), anchors)
        details = {"index": n, "time": result.time, "tsa": result.tsa, "signer": result.signer}
        if not result.ok:
            report.problems.append(Problem(DIGEST_FILE, f"timestamp {n} invalid: {result.why}"))
            report.proofs.append(Proof("timestamp", False, result.trusted, f"timestamp INVALID: {result.why}", details))
        elif result.trusted is False:
            report.problems.append(Problem(DIGEST_FILE, f"timestamp {n} not trusted: {result.why}",
                                           claim="--tsa-cert"))
            report.proofs.append(Proof("timestamp", True, False, f"timestamp valid, TSA not trusted: {result.why}",
                                       details))
        else:
            trust = "TSA trusted" if result.trusted else "TSA not trusted (no --tsa-cert given)"
            report.proofs.append(Proof("timestamp", True, result.trusted,
                                       f"timestamp valid, {trust}: attested time {result.time} "
                                       f"(signed by {result.signer})", details))
