"""Digests of WARC records (WARC 1.1, section 5.8 and 5.9: "algorithm:value", the value in
hex or base32) and the problems a check finds, each with its place.

Hashing can run on a thread of its own (`HashThread`): hashlib releases the GIL on large
buffers, so a check inflates on one core while it hashes on the other.
"""
from __future__ import annotations

import hashlib
import queue
import re
import threading
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

MAX_VALUE = 300   # characters of one value (URI, digest, header) a problem keeps
_HEX = re.compile(r"[0-9a-fA-F]*")
_CONSTRUCTORS: dict[str, Any] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512,
                                 "md5": hashlib.md5}


@dataclass(frozen=True)
class Problem:
    """One integrity failure, with its place. `claim` names the reader's claim it contradicts
    (`--expect`, `--trust`, `--tsa-cert`): None when the stored bytes themselves are wrong."""

    file: str
    what: str
    offset: int | None = None
    uri: str | None = None
    expected: str | None = None
    found: str | None = None
    claim: str | None = None

    def __post_init__(self) -> None:
        # values come from the file checked: a 65 KB URI must not make a 65 KB report line
        for name in ("what", "uri", "expected", "found"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_VALUE:
                object.__setattr__(self, name, value[:MAX_VALUE] + f"... ({len(value)} characters)")

    def __str__(self) -> str:
        place = self.file + (f" @{self.offset}" if self.offset is not None else "")
        text = f"{place}: {self.what}"
        if self.uri:
            text += f" [{self.uri}]"
        if self.expected is not None or self.found is not None:
            text += f": expected {self.expected}, found {self.found}"
        return text


class CappedProblems(list[Problem]):
    """A list of problems that keeps the first `cap` appended and counts the rest: a file of a
    few MB can hold a million faulty records, and one report line each helps no one."""

    def __init__(self, file: str, cap: int) -> None:
        super().__init__()
        self.file, self.cap, self.dropped = file, cap, 0

    def append(self, problem: Problem) -> None:
        if len(self) < self.cap:
            super().append(problem)
        else:
            self.dropped += 1

    def closed(self) -> list[Problem]:
        """Return the problems kept, then one line counting those that were not."""
        more = [Problem(self.file, f"{self.dropped} more problems in this file")] if self.dropped else []
        return list(self) + more


class Broken(Exception):
    """The stored bytes cannot be read on: corrupt compression, or a file cut short."""


class HashThread:
    """Runs hash updates in submission order on a thread of its own."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Any, bytes | memoryview] | None] = queue.Queue(maxsize=32)
        self.thread = threading.Thread(target=self._run, daemon=True, name="verify-hash")
        self.thread.start()

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            job[0].update(job[1])
            self.jobs.task_done()
        self.jobs.task_done()

    def update(self, sha: Any, data: bytes | memoryview) -> None:
        self.jobs.put((sha, data))

    def wait(self) -> None:
        self.jobs.join()

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


Hashers = tuple[HashThread, HashThread]   # (block digests, payload digests)


class Digest:
    """A digest header value ("algo:value", hex or base32) and the hash that should match it."""

    def __init__(self, value: str | None, hasher: HashThread | None = None):
        self.expected = value
        self.hasher = hasher
        algo, _, self.value = (value or "").partition(":")
        self._found: str | None = None
        self.sha: Any = None
        if value:
            name = algo.lower().replace("-", "")
            known = _CONSTRUCTORS.get(name)
            try:
                self.sha = known() if known is not None else hashlib.new(name)
            except ValueError:
                self.sha = None
        if self.sha is not None and not self.sha.digest_size:
            self.sha = None   # variable-length digests (shake_*) name no length: unsupported

    def update(self, data: bytes | memoryview) -> None:
        if self.sha is None or not data:
            return
        self._found = None
        if self.hasher is not None:
            self.hasher.update(self.sha, data)
        else:
            self.sha.update(data)

    def found(self) -> str:
        if self.sha is None:
            return "unsupported algorithm"
        if self._found is not None:   # asked again after the last update
            return self._found
        if self.hasher is not None:
            self.hasher.wait()
        algo = (self.expected or "").partition(":")[0]
        if len(self.value) == 2 * self.sha.digest_size and _HEX.fullmatch(self.value):
            self._found = f"{algo}:{self.sha.hexdigest()}"
        else:
            self._found = f"{algo}:{b32encode(self.sha.digest()).decode()}"
        return self._found

    def matches(self) -> bool:
        if self.hasher is None and self.sha is not None and len(self.value) == 2 * self.sha.digest_size \
                and self.sha.hexdigest() == self.value.lower():
            return True   # the common case, without building `found`: hex digits, all of them
        # base32 values are compared without their "=" padding, which some tools leave off
        return self.sha is not None and \
            self.found().lower().rstrip("=") == (self.expected or "").lower().rstrip("=")
