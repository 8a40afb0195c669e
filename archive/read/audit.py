"""audit(): re-verify every snapshot of a collection, as a fixity check, resumably.

Each result is appended to `<collection>/.state/audit.jsonl` as soon as it is known: a line
opening the audit, one line per snapshot, a line closing it. An audit that was stopped is
taken up again by the next one, which skips the snapshots already checked. Every result is
also noted where `archive list` shows each snapshot's last verification.
"""
from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError, StorageError
from archive.models import rfc3339
from archive.snapshot.store import STATE, Collection, file_lines

from .verify import verify

AUDIT_LOG = "audit.jsonl"


@dataclass(frozen=True)
class Checked:
    """The verification of one snapshot in an audit."""

    snapshot: str
    path: str
    ok: bool
    problems: tuple[str, ...] = ()


@dataclass
class AuditSummary:
    """What an audit found."""

    audit: str
    started: str
    finished: str = ""
    results: list[Checked] = field(default_factory=list)
    resumed: int = 0                     # snapshots checked by the interrupted run this one took up

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {"audit": self.audit, "started": self.started, "finished": self.finished, "ok": self.ok,
                "checked": len(self.results), "failed": self.failed, "resumed": self.resumed,
                "results": [vars(r) | {"problems": list(r.problems)} for r in self.results]}


def audit(collection: Path | str | None = None, *, workers: int = 2,
          progress: Callable[[Checked], None] | None = None) -> AuditSummary:
    """Verify every snapshot of the collection (revisit references included); return a summary.

    Raises NotACollection (nothing written), StorageError when the audit log cannot be written.
    """
    store = Collection(collection).require()
    log = store.root / STATE / AUDIT_LOG
    unfinished = _unfinished(log)
    now = rfc3339(datetime.now(timezone.utc))
    if unfinished is not None:
        audit_id, started, done = unfinished
    else:
        audit_id, started, done = uuid.uuid4().hex[:12], now, {}
    summary = AuditSummary(audit_id, started, resumed=len(done))
    summary.results.extend(done.values())
    lock = threading.Lock()
    if unfinished is None:
        _append(log, {"audit": audit_id, "started": started})

    def check(folder: Path) -> Checked:
        try:
            report = verify(folder, store.root, record=True)
            result = Checked(report.snapshot_id or folder.name, folder.name, report.ok,
                             tuple(str(p) for p in report.problems))
        except ArchiveError as exc:
            result = Checked(folder.name, folder.name, False, (str(exc),))
        with lock:
            _append(log, {"audit": audit_id, **vars(result), "problems": list(result.problems),
                          "ts": rfc3339(datetime.now(timezone.utc))})
            summary.results.append(result)
        if progress:
            progress(result)
        return result

    todo = [f for f in store.snapshots() if f.name not in done]   # by folder: a damaged one's id varies
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="audit") as pool:
        list(pool.map(check, todo))
    summary.finished = rfc3339(datetime.now(timezone.utc))
    _append(log, {"audit": audit_id, "finished": summary.finished, "checked": len(summary.results),
                  "failed": summary.failed})
    return summary


def _unfinished(log: Path) -> tuple[str, str, dict[str, Checked]] | None:
    """Return (audit id, start, results so far) of the last audit when it never finished."""
    try:
        lines = list(file_lines(log))   # one line per snapshot audited: small lines, capped
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(log, exc.strerror or str(exc)) from None
    current: tuple[str, str, dict[str, Checked]] | None = None
    for line in lines:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            continue   # a line cut short by a crash
        if not isinstance(entry, dict):
            continue
        if "started" in entry:
            current = (str(entry.get("audit")), str(entry["started"]), {})
        elif "finished" in entry:
            current = None
        elif current is not None and entry.get("audit") == current[0] and "snapshot" in entry:
            current[2][str(entry.get("path", ""))] = Checked(str(entry["snapshot"]), str(entry.get("path", "")),
                                                         bool(entry.get("ok")), tuple(entry.get("problems") or ()))
    return current


def _append(log: Path, entry: dict[str, Any]) -> None:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise StorageError(log, exc.strerror or str(exc)) from None
