"""verify(): recompute every digest and checksum of a snapshot and report each difference, and
check that the index and page list readers go by describe exactly those records.

Read side: it never imports fetch or crawl. Every problem is collected (none stops the
others), each with its place: file, record offset, target URI, expected and found values.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from archive.errors import NotASnapshot, UsageError, VerificationFailed
from archive.formats.wire import BLOCK
from archive.proofs.checks import Proof, check_proofs
from archive.snapshot import depends
from archive.snapshot.embedded import check_embedded
from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, FOLDERS, SOURCE, canonical_json
from archive.snapshot.provenance import made_elsewhere
from archive.snapshot.reader import Package
from archive.snapshot.store import Collection
from archive.warc.parallel import SideWork, check_warc_parallel
from archive.warc.arc import check_arc, is_arc
from archive.warc.check import GZIP_MAGIC
from archive.warc.conventions import DIGEST_CONVENTION, DigestPolicy
from archive.warc.digests import Problem

from .coverage import IndexKeys, Records, check_index, check_layout, check_pages

HTTP_RECORDS = ("response", "request")
ID_DIGITS = 64             # a snapshot id: the SHA-256 of datapackage.json, in hex
EXPECT_MIN_DIGITS = 12     # 48 bits: the shortest prefix taken; a package made to match it costs ~1e14 hashes
SOURCE_FILES = (SOURCE + DATAPACKAGE, SOURCE + DIGEST_FILE)
DEPS_WARC = re.compile(re.escape(depends.DEPS_PREFIX) + r"[0-9a-f]{12}\.warc\.gz")   # read/export.py


@dataclass
class Report:
    """The result of verifying one snapshot."""

    path: Path
    snapshot_id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    records: int = 0
    bytes: int = 0
    convention: str = DIGEST_CONVENTION
    dependencies: int = 0                 # revisit records whose originals were checked
    package_digest: str | None = None     # a self-contained export: its own datapackage.json's digest
    proofs: list[Proof] = field(default_factory=list)   # signature and timestamps, valid or not
    cited: str | None = None              # the hex digits of --expect, all 64 or a prefix
    policy: DigestPolicy = field(default_factory=DigestPolicy)   # digests a record may lack; counts
    warnings: list[Problem] = field(default_factory=list)   # not damage: e.g. an original elsewhere

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def damage(self) -> list[Problem]:
        """The problems of the stored bytes themselves, leaving out a reader's claim they
        contradict (a citation, a key, a TSA): only these make a snapshot FAILED."""
        return [p for p in self.problems if p.claim is None]

    @property
    def intact(self) -> bool:
        return not self.damage

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON values."""
        return {"path": str(self.path), "id": self.snapshot_id, "ok": self.ok, "intact": self.intact,
                "files": self.files, "records": self.records, "bytes": self.bytes,
                "problems": [{k: v for k, v in vars(p).items() if v is not None}
                             for p in self.problems],
                "dependencies": self.dependencies, "package_digest": self.package_digest,
                "digest_convention": self.convention, "cited": self.cited,
                "warnings": [{k: v for k, v in vars(p).items() if v is not None} for p in self.warnings],
                "producer_digests": {**self.policy.to_json(), "summary": self.policy.summary()},
                "proofs": [p.to_json() for p in self.proofs]}


def verify(snapshot: Path | str, collection: Path | str | None = None,
           expect: str | None = None, record: bool = False, *,
           trust: Sequence[Path | str] = (), tsa_certs: Sequence[Path | str] = ()) -> Report:
    """Verify a snapshot folder, a .wacz file, or an id (prefix) in `collection`.

    With `expect` ("sha256:<hex>" or bare hex: the full 64 digits, or a prefix of at least
    12), also check that the package is that one. With `record`, a snapshot of the collection
    gets the state of its bytes noted in the collection's state (shown by `archive list`,
    heeded by deduplication): a package that is not the one cited, or proofs by a key or TSA
    other than those given, are reported but are not damage. Its signature and timestamps are
    checked too: against the keys in `trust` and the TSA certificates in `tsa_certs` when
    given (proofs.py).
    Readers go by the index and the page list, so those are checked against the records too:
    the WACZ 1.1.1 layout, zip anomalies, every CDXJ line against the one record at its place,
    every page entry against the matched lines (read/coverage.py).
    Raises UsageError (a malformed or too short `expect`), NotASnapshot, SnapshotNotFound,
    ProofError (an unreadable trust file).
    """
    wanted = expected_digest(expect) if expect is not None else None
    store = Collection(collection)
    with store.open(str(snapshot)) as package:
        report = Report(package.path)
        ours = _check_package(package, report)
        report.policy.foreign = made_elsewhere(ours)
        report.problems.extend(check_layout(package))
        listed = _check_listing(package, ours, report)
        _check_contents(package, listed, report)
        _check_source(package, listed, report)
        # after _check_source: a self-contained export's proofs are over the snapshot it carries
        check_proofs(package, report, trust=trust, tsa_certs=tsa_certs)
        # a snapshot folder's dependencies are its neighbours: the collection holding it
        home = Collection(package.path.parent) if package.path.is_dir() else store
        resolution = depends.resolve(package, home, foreign=report.policy.foreign)
        report.dependencies = resolution.checked
        report.problems.extend(resolution.problems)
        report.warnings.extend(resolution.warnings)
    report.cited = wanted
    if wanted is not None and not (report.snapshot_id or "").startswith(wanted):
        shortened = "..." if len(wanted) < ID_DIGITS else ""
        report.problems.insert(0, Problem(DATAPACKAGE, "not the package cited",
                                          expected=f"sha256:{wanted}{shortened}",
                                          found=f"sha256:{report.snapshot_id}", claim="--expect"))
    if record and report.snapshot_id and store.holds(report.path):
        when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        store.record_verification(report.snapshot_id, report.intact, len(report.damage), when)
    return report


def require_intact(ref: str, collection: Path | str | None = None) -> None:
    """Verify a package named by its path (a .wacz or a folder) unless it is a snapshot folder
    of the collection (those keep their recorded state: `audit` re-checks them); an id or
    prefix is left to the collection too. Readers (cite, show, diff) call this first, so a
    package someone sent is never read unless its bytes are the ones its id commits to.
    Raises VerificationFailed (the damage found), NotASnapshot, NotACollection.
    """
    path = Path(ref)
    if not path.exists():
        return
    if path.is_dir() and Collection(collection).holds(path):
        return
    report = verify(path, collection)
    if not report.intact:
        raise VerificationFailed(path, report.damage)


def _check_contents(package: Package, listed: dict[str, dict[str, Any]], report: Report) -> None:
    """Check every listed file, then what readers go by (the index and the page list) against
    exactly the records just checked."""
    warcs: dict[str, Records] = {}
    keys = IndexKeys(package)   # the index's SURT keys, worked out by both processes of a split check
    for rel, entry in listed.items():
        _check_file(package, rel, entry, report, warcs, keys)
    coverage = check_index(package, warcs)
    report.problems.extend(coverage.problems)
    report.problems.extend(check_pages(package, coverage.captured))


def expected_digest(expect: str) -> str:
    """Return the hex digits of a cited id, "sha256:<hex>" or "<hex>", lower-cased: all 64
    digits of the SHA-256 (FIPS 180-4), or a prefix of at least EXPECT_MIN_DIGITS.

    >>> expected_digest("SHA256:3F2A9C0D1E2B")
    '3f2a9c0d1e2b'

    Raises UsageError for anything else, a shorter prefix included: 8 digits (32 bits) can
    be matched by a forged package with a few billion tries.
    """
    wanted = expect.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]+", wanted) or len(wanted) > ID_DIGITS:
        raise UsageError(f"--expect {expect[:80]!r} is not sha256: and at most {ID_DIGITS} hex digits")
    if len(wanted) < EXPECT_MIN_DIGITS:
        raise UsageError(f"--expect {expect[:80]!r} is too short to check a citation: give at least "
                         f"{EXPECT_MIN_DIGITS} hex digits of the id (all {ID_DIGITS} in full)")
    return wanted


def _load_json(package: Package, name: str, report: Report, canonical: bool) -> Any:
    data = package.read(name)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        report.problems.append(Problem(name, f"not valid JSON ({_oneline(exc)})"))
        return None
    if canonical and canonical_json(obj) != data:
        report.problems.append(Problem(name, "not in canonical form (edited after capture?)"))
    return obj


def _check_package(package: Package, report: Report) -> dict[str, Any]:
    """Check datapackage-digest.json against datapackage.json; return the parsed package."""
    data = package.read(DATAPACKAGE)
    report.snapshot_id = hashlib.sha256(data).hexdigest()
    try:
        ours = str(json.loads(data).get("software", "")).startswith("archive ")
    except (ValueError, AttributeError, RecursionError):
        ours = True   # unreadable: judge it by our own rules
    if not package.has(DIGEST_FILE):
        report.problems.append(Problem(DIGEST_FILE, "missing"))
    else:
        _check_digest_file(_load_json(package, DIGEST_FILE, report, ours), report)
    parsed = _load_json(package, DATAPACKAGE, report, ours)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("resources"), list):
        if parsed is not None:
            report.problems.append(Problem(DATAPACKAGE, "no resources list"))
        return {"resources": []}
    return parsed


def _check_digest_file(digest_doc: Any, report: Report, name: str = DIGEST_FILE) -> None:
    if digest_doc is None:
        return
    if not isinstance(digest_doc, dict):
        report.problems.append(Problem(name, "not a JSON object"))
        return
    if digest_doc.get("path") != DATAPACKAGE:
        report.problems.append(Problem(name, "digest names another file",
                                       expected=DATAPACKAGE, found=str(digest_doc.get("path"))))
    claimed = digest_doc.get("hash")
    if claimed != f"sha256:{report.snapshot_id}":
        report.problems.append(Problem(name, "package digest mismatch",
                                       expected=str(claimed), found=f"sha256:{report.snapshot_id}"))


def _check_listing(package: Package, parsed: dict[str, Any], report: Report) -> dict[str, dict[str, Any]]:
    """Compare the files present with those listed; return the listed entries that exist."""
    listed: dict[str, dict[str, Any]] = {}
    for entry in parsed["resources"]:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            listed[entry["path"]] = entry
        else:
            report.problems.append(Problem(DATAPACKAGE, f"malformed resource entry {entry!r:.80}"))
    present = {n for n in package.names() if n not in (DATAPACKAGE, DIGEST_FILE)}
    for rel in sorted(present - set(listed)):
        report.problems.append(Problem(rel, "file not listed in datapackage.json"))
    for rel in sorted(set(listed) - present):
        report.problems.append(Problem(rel, "listed file missing"))
    for rel in sorted(present):
        parts = rel.split("/")
        if (len(parts) != 2 or parts[0] not in FOLDERS) and rel not in SOURCE_FILES:
            report.problems.append(Problem(rel, "file outside the package layout"))
    return {rel: e for rel, e in listed.items() if rel in present}


def _check_file(package: Package, rel: str, entry: dict[str, Any], report: Report,
                warcs: dict[str, Records], side: SideWork | None = None) -> None:
    report.files += 1
    try:
        digest, size = _digest_file(package, rel, report, warcs, side)
    except NotASnapshot as exc:   # a folder's link that leads out of it: the reader refused it
        report.problems.append(Problem(rel, f"unreadable: {exc.why}"))
        return
    report.bytes += size
    algo = str(entry.get("hash", "sha256:")).partition(":")[0] or "sha256"
    if algo != "sha256":
        digest = _rehash(package, rel, algo)
    if entry.get("hash") != digest:
        report.problems.append(Problem(rel, "file checksum mismatch", expected=str(entry.get("hash")),
                                       found=digest))
    if entry.get("bytes") != size:
        report.problems.append(Problem(rel, "file size mismatch", expected=str(entry.get("bytes")),
                                       found=str(size)))


def _digest_file(package: Package, rel: str, report: Report, warcs: dict[str, Records],
                 side: SideWork | None = None) -> tuple[str, int]:
    """Return ("sha256:<hex>", size) of a file; a WARC file's records are checked on the way."""
    with package.member(rel) as f:
        if rel.endswith((".warc.gz", ".warc")) or is_arc(rel):
            records = warcs[rel] = Records()
            digest, size = check_warc(f, rel, report, records.heads, side)
            records.size = size
        else:
            digest, size = _hash_stream(f)
    return digest, size


def _check_source(package: Package, listed: dict[str, dict[str, Any]], report: Report) -> None:
    """A self-contained export carries the snapshot's own package files under source/: the
    snapshot id is the digest of that datapackage.json, and every file it lists is here whole."""
    if SOURCE_FILES[0] not in listed:
        return
    data = package.read(SOURCE_FILES[0])
    report.package_digest = f"sha256:{report.snapshot_id}"
    report.snapshot_id = hashlib.sha256(data).hexdigest()
    if SOURCE_FILES[1] in listed:
        _check_digest_file(_load_json(package, SOURCE_FILES[1], report, True), report, SOURCE_FILES[1])
    source = _load_json(package, SOURCE_FILES[0], report, True)
    entries = source.get("resources") if isinstance(source, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        rel = str(entry.get("path")) if isinstance(entry, dict) else ""
        here = listed.get(rel)
        if here is None:
            report.problems.append(Problem(SOURCE_FILES[0], "file of the snapshot missing", found=str(rel)))
        elif (here.get("hash"), here.get("bytes")) != (entry.get("hash"), entry.get("bytes")):
            report.problems.append(Problem(rel, "file differs from the snapshot's",
                                           expected=str(entry.get("hash")), found=str(here.get("hash"))))
    own = {str(e.get("path")) for e in entries if isinstance(e, dict)} if isinstance(entries, list) else set()
    _check_extra(package, own, report)
    if isinstance(source, dict):
        _check_outer(package, source, report)


def _check_outer(package: Package, source: dict[str, Any], report: Report) -> None:
    """Readers take the title, seeds and capture metadata from the outer datapackage.json,
    which the cited id does not cover: it must be the source's but for the resources and
    the "snapshot" pointer an export adds (read/export.py)."""
    try:
        outer = json.loads(package.read(DATAPACKAGE))
    except (ValueError, RecursionError):
        return   # reported by _check_package
    if not isinstance(outer, dict):
        return
    pointer = {"id": report.snapshot_id, "datapackage": SOURCE_FILES[0]}
    rest = {k: v for k, v in outer.items() if k not in ("resources", "snapshot")}
    if rest != {k: v for k, v in source.items() if k != "resources"} or outer.get("snapshot") != pointer:
        changed = sorted(k for k in rest.keys() | source.keys() - {"resources"} if rest.get(k) != source.get(k))
        report.problems.append(Problem(DATAPACKAGE, "metadata differs from the snapshot's "
                                       + SOURCE_FILES[0], found=", ".join(changed[:10]) or "snapshot"))


def _check_extra(package: Package, own: set[str], report: Report) -> None:
    """Readers read every index and WARC of a package, but the cited id commits only to the
    files source/datapackage.json lists: any other file but the export's own datapackage
    files and its dependency copies (which must hold only what the snapshot's revisits refer
    to: embedded.check_embedded) is content under someone else's id."""
    outer = {DATAPACKAGE, DIGEST_FILE, *SOURCE_FILES}
    for rel in sorted(set(package.names()) - own - outer):
        if not (DEPS_WARC.fullmatch(rel) or rel == depends.DEPS_INDEX):
            report.problems.append(Problem(rel, "file not part of the snapshot cited (not in "
                                           + SOURCE_FILES[0] + ")"))
    report.problems.extend(check_embedded(package, own))


def _hash_stream(f: BinaryIO, algo: str = "sha256") -> tuple[str, int]:
    sha = hashlib.new(algo)
    size = 0
    while block := f.read(BLOCK):
        sha.update(block)
        size += len(block)
    return f"{algo}:{sha.hexdigest()}", size


def _rehash(package: Package, rel: str, algo: str) -> str:
    """Hash a file again with another algorithm (packages made elsewhere may use one)."""
    try:
        with package.member(rel) as f:
            return _hash_stream(f, algo)[0]
    except ValueError:
        return f"{algo}:unsupported"


def check_warc(f: BinaryIO, rel: str, report: Report, heads: list[tuple[int, dict[str, str]]] | None = None,
               side: SideWork | None = None) -> tuple[str, int]:
    """Check every record of a WARC stream into `report`; return its ("sha256:<hex>", size).
    With `heads`, collect each record's (offset, WARC headers) there (warc.check.check_warc).
    An ARC file (by its name) is read with warc.arc: its records carry no digests."""
    if is_arc(rel):
        digest, size, records, problems = check_arc(f, rel, heads)
        report.policy.count_records(records)
    else:
        gz = f.read(3) == GZIP_MAGIC
        f.seek(0)
        digest, size, records, problems = check_warc_parallel(f, rel, gz, heads, report.policy, side)
    report.records += records
    report.problems.extend(problems)
    return digest, size


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
