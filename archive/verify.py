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
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException

from .errors import NotASnapshot
from .package import (DATAPACKAGE, DIGEST_FILE, FOLDERS, canonical_json, package_files,
                      sha256_file)
from .store import Collection, is_snapshot
from .warc import DIGEST_CONVENTION
from .wire import BLOCK, WireError, is_chunked, iter_payload, parse_header_lines, read_head

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


def verify(snapshot: Path | str, collection: Path | str | None = None) -> Report:
    """Verify a snapshot folder (or a reference resolved in `collection`); raise NotASnapshot."""
    path = Path(snapshot)
    if not is_snapshot(path):
        path = Collection(collection).resolve(str(snapshot))
    report = Report(path)
    package = _check_package(path, report)
    listed = _check_listing(path, package, report)
    for rel, entry in listed.items():
        _check_file(path, rel, entry, report)
    return report


def _load_json(path: Path, name: str, report: Report) -> Any:
    data = (path / name).read_bytes()
    try:
        obj = json.loads(data)
    except ValueError as exc:
        report.problems.append(Problem(name, f"not valid JSON ({exc})"))
        return None
    if canonical_json(obj) != data:
        report.problems.append(Problem(name, "not in canonical form (edited after capture?)"))
    return obj


def _check_package(path: Path, report: Report) -> dict[str, Any]:
    """Check datapackage-digest.json against datapackage.json; return the parsed package."""
    digest_doc = _load_json(path, DIGEST_FILE, report)
    package_sha = hashlib.sha256((path / DATAPACKAGE).read_bytes()).hexdigest()
    report.snapshot_id = package_sha
    claimed = digest_doc.get("hash") if isinstance(digest_doc, dict) else None
    if isinstance(digest_doc, dict) and digest_doc.get("path") != DATAPACKAGE:
        report.problems.append(Problem(DIGEST_FILE, "digest names another file",
                                       expected=DATAPACKAGE, found=str(digest_doc.get("path"))))
    if digest_doc is not None and claimed != f"sha256:{package_sha}":
        report.problems.append(Problem(DIGEST_FILE, "package digest mismatch",
                                       expected=str(claimed), found=f"sha256:{package_sha}"))
    package = _load_json(path, DATAPACKAGE, report)
    if not isinstance(package, dict) or not isinstance(package.get("resources"), list):
        if package is not None:
            report.problems.append(Problem(DATAPACKAGE, "no resources list"))
        return {"resources": []}
    return package


def _check_listing(path: Path, package: dict[str, Any], report: Report) -> dict[str, dict[str, Any]]:
    """Compare the files on disk with those listed; return the listed entries that exist."""
    listed: dict[str, dict[str, Any]] = {}
    for entry in package["resources"]:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            listed[entry["path"]] = entry
        else:
            report.problems.append(Problem(DATAPACKAGE, f"malformed resource entry {entry!r:.80}"))
    on_disk = set(package_files(path))
    for rel in sorted(on_disk - set(listed)):
        report.problems.append(Problem(rel, "file not listed in datapackage.json"))
    for rel in sorted(set(listed) - on_disk):
        report.problems.append(Problem(rel, "listed file missing"))
    for rel in sorted(on_disk):
        parts = rel.split("/")
        if len(parts) != 2 or parts[0] not in FOLDERS:
            report.problems.append(Problem(rel, "file outside the package layout"))
    return {rel: e for rel, e in listed.items() if rel in on_disk}


def _check_file(root: Path, rel: str, entry: dict[str, Any], report: Report) -> None:
    path = root / rel
    report.files += 1
    if rel.endswith((".warc.gz", ".warc")):
        digest, size = _check_warc(path, rel, report)
    else:
        digest, size = sha256_file(path)
    report.bytes += size
    if entry.get("hash") != digest:
        report.problems.append(Problem(rel, "file checksum mismatch", expected=str(entry.get("hash")),
                                       found=digest))
    if entry.get("bytes") != size:
        report.problems.append(Problem(rel, "file size mismatch", expected=str(entry.get("bytes")),
                                       found=str(size)))


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


def _check_warc(path: Path, rel: str, report: Report) -> tuple[str, int]:
    """Check every record of a WARC file; return the file's checksum, computed in the same pass."""
    file_sha = hashlib.sha256()
    with open(path, "rb") as f:
        reader = _HashingReader(f, file_sha)
        iterator = ArchiveIterator(reader, no_record_parse=True)
        offset = 0
        try:
            for record in iterator:
                _check_record(record, rel, offset, report)
                offset = iterator.get_record_offset() + iterator.get_record_length()
                report.records += 1
        except (ArchiveLoadFailed, StatusAndHeadersParserException, zlib.error, EOFError,
                OSError, ValueError) as exc:
            report.problems.append(Problem(rel, f"unreadable record ({_oneline(exc)})", offset))
        while reader.read(BLOCK):
            pass
    return "sha256:" + file_sha.hexdigest(), reader.size


def _check_record(record: Any, rel: str, offset: int, report: Report) -> None:
    headers = record.rec_headers
    uri = headers.get_header("WARC-Target-URI")
    block_check = _Digest(headers.get_header("WARC-Block-Digest"))
    payload_check = _Digest(headers.get_header("WARC-Payload-Digest"))
    stream = _HashingReader(record.raw_stream, block_check)
    is_http = record.rec_type in HTTP_RECORDS and "application/http" in (record.content_type or "")
    if is_http and payload_check.expected:
        try:
            head = read_head(stream)
            lines = head.decode("iso-8859-1").split("\r\n")[1:]
            for data in iter_payload(stream, is_chunked(parse_header_lines(lines))):
                payload_check.update(data)
        except WireError as exc:
            report.problems.append(Problem(rel, f"bad HTTP message ({exc})", offset, uri))
    while stream.read(BLOCK):
        pass
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
