"""Resume an interrupted capture: repair its WARC files and hold what they already captured.

A capture killed at any moment leaves `<collection>/.partial/<id>/` with WARC files whose
records are whole up to the last one flushed. Resuming cuts each file after its last whole
response record, reads the seeds and options back from the warcinfo record, and lets the
crawl run again from the seeds: a URL whose response is held is answered from the WARC
(its links followed, nothing fetched or written again); everything else is fetched.
"""
from __future__ import annotations

import json
import os
import tempfile
import zlib
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from archive.errors import UsageError
from archive.formats.wire import BLOCK, is_chunked, parse_head, read_head
from archive.models import Body, CaptureOptions, Exchange, Record

MEMORY_BLOCK = 1 << 20


@dataclass(frozen=True)
class Held:
    """A response already in the interrupted capture's WARC files."""

    record: Record
    ip: str | None
    block_digest: str
    truncated: str | None


@dataclass(frozen=True)
class HeldCapture:
    """What an interrupted capture left: its seeds, options, start, files and responses."""

    folder: Path
    seeds: list[str]
    options: dict[str, Any]
    started: datetime
    files: list[Path]
    held: dict[str, Held]
    revisits: tuple[tuple[str, str], ...] = ()   # (payload digest, WARC-Refers-To) of revisits written


def load(folder: Path) -> HeldCapture:
    """Repair the WARC files of a partial capture and read back its state; raise UsageError."""
    files = sorted((folder / "archive").glob("*.warc.gz"))
    for path in files:
        repair(path)
    files = [p for p in files if p.stat().st_size > 0]
    info = _warcinfo(files[0]) if files else None
    if info is None:
        raise UsageError(f"{folder} holds no readable warcinfo record: nothing to resume from")
    held: dict[str, Held] = {}
    revisits: list[tuple[str, str]] = []
    for path in files:
        responses, refs = _responses(path)
        held.update(responses)
        revisits += refs
    seeds, options, started = info
    return HeldCapture(folder, seeds, options, started, files, held, tuple(revisits))


def repair(path: Path) -> int:
    """Cut a WARC file after its last whole response or warcinfo record; return the new size.

    Each record is one gzip member, so a member that does not end (the process died while
    writing it), and a request whose response never came, are what gets cut.
    """
    good = 0
    with open(path, "r+b") as f:
        base, consumed, head, broken = 0, 0, b"", False
        inflater = zlib.decompressobj(31)
        while not broken and (data := f.read(BLOCK)):
            while data:
                try:
                    out = inflater.decompress(data)
                except zlib.error:
                    broken = True
                    break
                head += out[:max(0, 64 - len(head))]
                if not inflater.eof:
                    consumed += len(data)
                    break
                end = base + consumed + len(data) - len(inflater.unused_data)
                # a TLS metadata record follows its response: whole, it is kept with it
                if any(b"WARC-Type: " + kind in head
                       for kind in (b"response", b"revisit", b"warcinfo", b"metadata")):
                    good = end
                base, consumed, head = end, 0, b""
                data = inflater.unused_data
                inflater = zlib.decompressobj(31)
        f.truncate(good)
    return good


def _warcinfo(path: Path) -> tuple[list[str], dict[str, Any], datetime] | None:
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "warcinfo":
                return None
            fields_ = {}
            for line in record.content_stream().read().decode("utf-8", "replace").split("\r\n"):
                name, _, value = line.partition(": ")
                fields_[name] = value
            try:
                seeds = json.loads(fields_.get("seeds", "[]"))
                options = json.loads(fields_.get("options", "{}"))
            except ValueError:
                return None
            return seeds, options, warc_datetime(record.rec_headers.get_header("WARC-Date"))
    return None


def warc_datetime(value: str | None) -> datetime:
    """Return a WARC-Date value as a UTC datetime (now, when it is unreadable)."""
    text = (value or "").rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return datetime.now(timezone.utc)


def _responses(path: Path) -> tuple[dict[str, Held], list[tuple[str, str]]]:
    """Return the responses a WARC file holds, by URL, and (digest, refers-to) of its revisits.

    A revisit's URL is fetched again (its links are in another snapshot's record), but the
    record it refers to stays a dependency of the capture."""
    held = {}
    revisits = []
    with open(path, "rb") as f:
        iterator = ArchiveIterator(f, no_record_parse=True)
        for record in iterator:
            if record.rec_type == "revisit":
                h = record.rec_headers
                revisits.append((h.get_header("WARC-Payload-Digest") or "", h.get_header("WARC-Refers-To") or ""))
            if record.rec_type != "response":
                continue
            h = record.rec_headers
            head = read_head(record.raw_stream)
            _, status, _, headers = parse_head(head)
            while record.raw_stream.read(BLOCK):   # to the record's end, a block at a time
                pass
            offset, length = iterator.get_record_offset(), iterator.get_record_length()
            mime = next((v for k, v in headers if k.lower() == "content-type"), "")
            url = h.get_header("WARC-Target-URI")
            held[url] = Held(Record(url, warc_datetime(h.get_header("WARC-Date")), status,
                                    mime.split(";")[0].strip().lower(), h.get_header("WARC-Payload-Digest"),
                                    path.name, offset, length),
                             h.get_header("WARC-IP-Address"), h.get_header("WARC-Block-Digest"),
                             h.get_header("WARC-Truncated"))
    return held, revisits


def exchange(folder: Path, held: Held, spool_dir: Path) -> Exchange:
    """Return a held response as an Exchange, its block read back from the WARC file."""
    rec = held.record
    with open(folder / "archive" / rec.filename, "rb") as f:
        f.seek(rec.offset)
        record = next(iter(ArchiveIterator(f, no_record_parse=True)))
        length = int(record.rec_headers.get_header("Content-Length") or 0)
        if length <= MEMORY_BLOCK:
            body = Body(data=record.raw_stream.read())
        else:
            fd, name = _spool(spool_dir)
            with os.fdopen(fd, "wb") as out:
                while data := record.raw_stream.read(BLOCK):
                    out.write(data)
            body = Body(path=Path(name))
    with body.open() as stream:
        head = read_head(stream)
    _, status, reason, headers = parse_head(head)
    return Exchange(url=rec.url, date=rec.date, ip=held.ip, request=b"", block=body, block_length=length,
                    block_digest=held.block_digest, payload_digest=rec.payload_digest,
                    header_length=len(head), status=status, reason=reason, headers=headers,
                    chunked=is_chunked(headers), truncated=held.truncated)


def _spool(spool_dir: Path) -> tuple[int, str]:
    return tempfile.mkstemp(dir=spool_dir, suffix=".held")


def options_from(stored: dict[str, Any], base: CaptureOptions) -> CaptureOptions:
    """Return the options an interrupted capture ran with, over `base` (secrets are given anew:
    header values, cookies, and a proxy with its password, which was recorded without it)."""
    known = {f.name for f in fields(CaptureOptions)}
    values: dict[str, Any] = {}
    for name, value in stored.items():
        if name not in known or name in ("headers", "cookies") or (name == "proxy" and base.proxy):
            continue   # header values and the cookie file were never recorded; a proxy given now wins
        if name == "resolve":
            value = tuple((h, int(p), a) for h, p, a in (item.split(":", 2) for item in value))
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    if base.block_private:
        values["block_private"] = True   # a guard asked for now holds for what was started without it
    return CaptureOptions(**{**{f.name: getattr(base, f.name) for f in fields(CaptureOptions)}, **values,
                             "headers": base.headers, "cookies": base.cookies})
