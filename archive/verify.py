"""verify(): recompute every digest and checksum of a snapshot and report each difference.

Read side: it never imports fetch or crawl. Every problem is collected (none stops the
others), each with its place: file, record offset, target URI, expected and found values.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from base64 import b32encode
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException

from .package import DATAPACKAGE, DIGEST_FILE, FOLDERS, canonical_json
from .reader import Package
from .store import Collection
from .warc import DIGEST_CONVENTION
from .wire import BLOCK, WireError, head_headers, is_chunked, iter_payload, read_head

HTTP_RECORDS = ("response", "request")


@dataclass(frozen=True)
class Problem:
    """One integrity failure, with its place."""

    file: str
    what: str
    offset: int | None = None
    uri: str | None = None
    expected: str | None = None
    found: str | None = None

    def __str__(self) -> str:
        place = self.file + (f" @{self.offset}" if self.offset is not None else "")
        text = f"{place}: {self.what}"
        if self.uri:
            text += f" [{self.uri}]"
        if self.expected is not None or self.found is not None:
            text += f": expected {self.expected}, found {self.found}"
        return text


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

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON values."""
        return {"path": str(self.path), "id": self.snapshot_id, "ok": self.ok,
                "files": self.files, "records": self.records, "bytes": self.bytes,
                "problems": [{k: v for k, v in vars(p).items() if v is not None}
                             for p in self.problems],
                "digest_convention": self.convention}


def verify(snapshot: Path | str, collection: Path | str | None = None,
           expect: str | None = None, record: bool = False) -> Report:
    """Verify a snapshot folder, a .wacz file, or an id (prefix) in `collection`.

    With `expect` ("sha256:<hex>" or a hex id), also check that the package is that one.
    With `record`, a snapshot of the collection gets the result noted in the collection's
    state (shown by `archive list`). Raises NotASnapshot, SnapshotNotFound.
    """
    store = Collection(collection)
    with store.open(str(snapshot)) as package:
        report = Report(package.path)
        ours = _check_package(package, report)
        listed = _check_listing(package, ours, report)
        for rel, entry in listed.items():
            _check_file(package, rel, entry, report)
    if expect is not None:
        wanted = expect.lower().removeprefix("sha256:")
        if report.snapshot_id != wanted:
            report.problems.insert(0, Problem(DATAPACKAGE, "not the package cited",
                                              expected=f"sha256:{wanted}",
                                              found=f"sha256:{report.snapshot_id}"))
    if record and report.snapshot_id and store.holds(report.path):
        when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        store.record_verification(report.snapshot_id, report.ok, len(report.problems), when)
    return report


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


def _check_digest_file(digest_doc: Any, report: Report) -> None:
    if digest_doc is None:
        return
    if not isinstance(digest_doc, dict):
        report.problems.append(Problem(DIGEST_FILE, "not a JSON object"))
        return
    if digest_doc.get("path") != DATAPACKAGE:
        report.problems.append(Problem(DIGEST_FILE, "digest names another file",
                                       expected=DATAPACKAGE, found=str(digest_doc.get("path"))))
    claimed = digest_doc.get("hash")
    if claimed != f"sha256:{report.snapshot_id}":
        report.problems.append(Problem(DIGEST_FILE, "package digest mismatch",
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
        if len(parts) != 2 or parts[0] not in FOLDERS:
            report.problems.append(Problem(rel, "file outside the package layout"))
    return {rel: e for rel, e in listed.items() if rel in present}


def _check_file(package: Package, rel: str, entry: dict[str, Any], report: Report) -> None:
    report.files += 1
    with package.member(rel) as f:
        if rel.endswith((".warc.gz", ".warc")):
            digest, size = check_warc(f, rel, report)
        else:
            digest, size = _hash_stream(f)
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


class _HashingReader:
    """A read-only file wrapper that hashes every byte read through it."""

    def __init__(self, raw: BinaryIO, sha: Any):
        self.raw = raw
        self.sha = sha
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha.update(data)
        self.size += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        data = self.raw.readline(limit)
        self.sha.update(data)
        self.size += len(data)
        return data


def check_warc(f: BinaryIO, rel: str, report: Report) -> tuple[str, int]:
    """Check every record of a WARC stream into `report`; return its checksum, from the same pass.

    A record that cannot be read is reported at its offset, and checking goes on from the
    next record that can be found, so one damaged member does not hide damage after it.
    """
    file_sha = hashlib.sha256()
    reader = _HashingReader(f, file_sha)
    failed_at = _check_records(reader, rel, report)
    while reader.read(BLOCK):
        pass
    magic = b"\x1f\x8b\x08" if rel.endswith(".gz") else b"WARC/1."
    while failed_at is not None and f.seekable():
        start = _find(f, magic, failed_at + 1)
        if start is None:
            break
        f.seek(start)
        failed_at = _check_records(f, rel, report)
    return "sha256:" + file_sha.hexdigest(), reader.size


def _check_records(stream: Any, rel: str, report: Report) -> int | None:
    """Check records from the stream's position on; return the offset where reading failed."""
    iterator = ArchiveIterator(stream, no_record_parse=True)
    offset = iterator.offset
    try:
        for record in iterator:
            _check_record(record, rel, offset, report)
            offset = iterator.get_record_offset() + iterator.get_record_length()
            report.records += 1
    except (ArchiveLoadFailed, StatusAndHeadersParserException, zlib.error, EOFError,
            OSError, ValueError) as exc:
        report.problems.append(Problem(rel, f"unreadable record ({_oneline(exc)})", offset))
        return offset
    return None


def _find(f: BinaryIO, magic: bytes, start: int) -> int | None:
    """Return the offset of the next `magic` at or after `start`, or None."""
    f.seek(start)
    carry = b""
    pos = start
    while block := f.read(BLOCK):
        data = carry + block
        found = data.find(magic)
        if found >= 0:
            return pos - len(carry) + found
        carry = data[-(len(magic) - 1):]
        pos += len(block)
    return None


def _check_record(record: Any, rel: str, offset: int, report: Report) -> None:
    headers = record.rec_headers
    uri = headers.get_header("WARC-Target-URI")
    block_check = _Digest(headers.get_header("WARC-Block-Digest"))
    # A revisit's payload digest is that of the payload it revisits, which is not stored here.
    payload_check = _Digest(None if record.rec_type == "revisit"
                            else headers.get_header("WARC-Payload-Digest"))
    framed_check = None
    stream = _HashingReader(record.raw_stream, block_check)
    is_http = record.rec_type in HTTP_RECORDS and "application/http" in (record.content_type or "")
    if not is_http:
        stream = _HashingReader(stream, payload_check)   # any other record's payload is its block
    elif payload_check.expected:
        try:
            chunked = is_chunked(head_headers(read_head(stream)))
        except WireError as exc:
            report.problems.append(Problem(rel, f"bad HTTP message ({exc})", offset, uri))
            chunked = False
        if chunked:
            # wget and warcio (issue 74) hash a chunked body as stored, framing included. Either
            # digest is accepted: the block digest covers every byte of the record anyway.
            framed_check = _Digest(payload_check.expected)
            stream = _HashingReader(stream, framed_check)
        payload_check.feed(stream, chunked)
    while stream.read(BLOCK):
        pass
    if framed_check is not None and framed_check.matches():
        payload_check = framed_check
    for name, check in (("block", block_check), ("payload", payload_check)):
        if check.expected and not check.matches():
            report.problems.append(Problem(rel, f"{name} digest mismatch", offset, uri,
                                           check.expected, check.found()))
    if not block_check.expected and record.rec_type != "warcinfo":
        report.problems.append(Problem(rel, "record has no WARC-Block-Digest", offset, uri))


class _Digest:
    """A digest header value ("algo:value", hex or base32) and the hash that should match it."""

    def __init__(self, value: str | None):
        self.expected = value
        algo, _, self.value = (value or "").partition(":")
        try:
            self.sha = hashlib.new(algo.lower().replace("-", "")) if value else None
        except ValueError:
            self.sha = None

    def update(self, data: bytes) -> None:
        if self.sha is not None:
            self.sha.update(data)

    def feed(self, stream: BinaryIO, chunked: bool) -> None:
        """Hash the entity body that follows in `stream`, as fetching hashed it."""
        try:
            for data in iter_payload(stream, chunked):
                self.update(data)
        except WireError:
            pass  # framing that breaks off ends the payload, as when it was fetched

    def found(self) -> str:
        if self.sha is None:
            return "unsupported algorithm"
        algo = self.expected.partition(":")[0] if self.expected else ""
        if len(self.value) == 2 * self.sha.digest_size:
            return f"{algo}:{self.sha.hexdigest()}"
        return f"{algo}:{b32encode(self.sha.digest()).decode()}"

    def matches(self) -> bool:
        return self.sha is not None and self.found().lower() == (self.expected or "").lower()


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
