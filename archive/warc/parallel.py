"""Check a large gzipped WARC file on two processes: the file is cut at a gzip member that
starts a record, a forked child checks the records from there to the end while this process
checks those before it and hashes the whole file; the two results are joined.

The cut is taken from the file itself (a gzip member near the middle whose first bytes
inflate to "WARC/"), and trusted only once this process's own walk, record by record, lands
on it exactly: a record starting at that member's first byte (not one starting inside it
after a record whose block ran on into it, where "WARC/" is block data). Whatever is not the
plain case (no cut found, a walk that steps over it, a problem or an unreadable record on
either side, a child that fails) makes the whole file be checked again in one pass
(`check.check_warc`), so a damaged file gets exactly the report a single pass gives. Forking
needs a process with no other thread (the command line), a real file (a snapshot folder, not
a zip member) and a second core; elsewhere it is one pass. The child ends with this process
however this one ends (Ctrl-C, SIGTERM, SIGKILL), and is always waited for.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, BinaryIO, Protocol

from .check import GZIP_MAGIC, MAX_PROBLEMS, check_records, check_warc
from .conventions import DigestPolicy
from .digests import Broken, CappedProblems, HashThread, Problem
from .stored import READ, FileHash, Stored, inflater

SPLIT_MIN = 8 << 20     # bytes of a file worth a second process
SHARE = 0.5             # where in the file the cut is looked for (this process also hashes the file)
CUT_SCAN = 1 << 20      # bytes searched for a member start from there
MAX_REPLY = 1 << 30     # bytes of the child's pickled result read at most
PR_SET_PDEATHSIG = 1    # prctl(2) option: the signal a process gets when its parent ends (Linux)

Heads = list[tuple[int, dict[str, str]]]
Result = tuple[str, int, int, list[Problem]]


class SideWork(Protocol):
    """Work of the caller's shared by the two processes after their records (used only when
    the file is checked on two): `run(0)` here, `run(1)` in the child, whose result must
    pickle; then `join([mine, the child's])` here."""

    def run(self, part: int) -> Any: ...

    def join(self, results: list[Any]) -> None: ...


def check_warc_parallel(f: BinaryIO, rel: str, gz: bool, heads: Heads | None = None,
                        policy: DigestPolicy | None = None, side: SideWork | None = None) -> Result:
    """`check.check_warc`, on two processes where the file allows it (see the module's
    docstring): the same (file sha256, file size, records, problems), heads and policy counts.
    `side` is more work to share when there are two processes (its `join` is not called
    otherwise)."""
    policy = policy if policy is not None else DigestPolicy()
    cut = _cut(f) if gz and _may_fork(f) else None
    if cut is not None:
        joined = _check_split(f, rel, cut, heads, policy, side)
        if joined is not None:
            return joined
        f.seek(0)
    return check_warc(f, rel, gz, heads, policy)


def _may_fork(f: BinaryIO) -> bool:
    try:
        fd = f.fileno()
        size = os.fstat(fd).st_size
    except (AttributeError, OSError, ValueError):   # a zip member: no file of its own
        return False
    return (size >= SPLIT_MIN and hasattr(os, "fork") and threading.active_count() == 1
            and _cores() >= 2)


def _cores() -> int:
    """Return how many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # no affinity call (macOS): every core
        return os.cpu_count() or 1


def _cut(f: BinaryIO) -> int | None:
    """Return the offset of a gzip member near SHARE of the file whose data starts "WARC/",
    or None."""
    fd = f.fileno()
    size = os.fstat(fd).st_size
    start = int(size * SHARE)
    window = os.pread(fd, CUT_SCAN, start)
    at = window.find(GZIP_MAGIC)
    while at >= 0:
        try:
            if inflater().decompress(window[at:at + 4096], 5) == b"WARC/":
                return start + at
        except Exception:   # not a member start: the magic bytes inside compressed data
            pass
        at = window.find(GZIP_MAGIC, at + 1)
    return None


class _Pread:
    """A file read from `pos` on with pread(2): the descriptor's own offset is left alone,
    so parent and child can share it."""

    def __init__(self, fd: int, pos: int) -> None:
        self.fd, self.pos = fd, pos

    def read(self, n: int = READ) -> bytes:
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        return data


class _NoHash:
    def update(self, data: bytes) -> None:
        pass


def _child(fd: int, rel: str, cut: int, foreign: bool, side: SideWork | None) -> tuple[Any, ...]:
    """Check the records from `cut` to the end; return what the parent joins, or ("broken",)."""
    policy = DigestPolicy(foreign=foreign)
    heads: Heads = []
    problems = CappedProblems(rel, MAX_PROBLEMS)
    stored = Stored(_Pread(fd, cut), True, _NoHash(), cut, heads)   # type: ignore[arg-type]
    stored.policy = policy
    hashers = (HashThread(), HashThread())
    try:
        check_records(stored, rel, hashers, problems)
    except Broken:
        return ("broken",)
    finally:
        for hasher in hashers:
            hasher.close()
    if problems:
        return ("problems",)
    more = side.run(1) if side is not None else None
    return ("ok", stored.records, heads, policy.undigested, policy.payload_only, dict(policy.conventions), more)


def _check_split(f: BinaryIO, rel: str, cut: int, heads: Heads | None, policy: DigestPolicy,
                 side: SideWork | None) -> Result | None:
    """Check the file as two halves; return the joined result, or None to check it again
    in one pass."""
    import pickle   # only a split check sends a result (start-up of every verify: issue 17)

    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:   # the child: never returns
        status = 1
        try:
            _end_with(parent)
            os.close(read_end)
            answer = pickle.dumps(_child(f.fileno(), rel, cut, policy.foreign, side))
            with os.fdopen(write_end, "wb") as out:
                out.write(answer)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        mine = _check_before(f, rel, cut, heads is not None, policy.foreign)
        more = side.run(0) if mine is not None and side is not None else None
        reply = _read_reply(read_end) if mine is not None else None
    finally:
        os.close(read_end)
        _reap(pid)
    if mine is None or reply is None or reply[0] != "ok":
        return None
    sha, size, records, own_heads, own = mine
    _, child_records, child_heads, undigested, payload_only, conventions, child_more = reply
    if side is not None:
        side.join([more, child_more])
    if heads is not None:
        heads.extend(own_heads)
        heads.extend(child_heads)
    policy.undigested += own.undigested + undigested
    policy.payload_only += own.payload_only + payload_only
    policy.conventions.update(own.conventions)
    policy.conventions.update(conventions)
    return sha, size, records + child_records, []


def _end_with(parent: int) -> None:
    """In the child: be ended when `parent` ends however it ends (SIGTERM, SIGKILL: it has no
    chance to end the child itself), by the kernel's parent-death signal (Linux prctl(2),
    PR_SET_PDEATHSIG); elsewhere the child ends at its pipe's first write. If the parent is
    already gone, end now."""
    try:
        import ctypes   # only a forked child needs it
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (ImportError, OSError, AttributeError):   # not Linux, or no ctypes
        pass
    if os.getppid() != parent:
        os._exit(1)


def _check_before(f: BinaryIO, rel: str, cut: int, want_heads: bool, foreign: bool
                  ) -> tuple[str, int, int, Heads, DigestPolicy] | None:
    """Check the records before `cut`, hashing the whole file; return (sha, size, records,
    heads, policy counts), or None when the walk did not land on `cut` or found anything wrong."""
    hasher, payload_hasher, file_hasher = HashThread(), HashThread(), HashThread()
    file_sha = FileHash(file_hasher)
    problems = CappedProblems(rel, MAX_PROBLEMS)
    heads: Heads = []
    own = DigestPolicy(foreign=foreign)
    stored = Stored(f, True, file_sha, heads=heads if want_heads else None)
    stored.policy = own
    try:
        landed = check_records(stored, rel, (hasher, payload_hasher), problems, stop=cut)
        stored.drain()   # the file checksum covers every byte
    except Exception:   # Broken, or whatever a hostile file does: the single pass reports it
        return None
    finally:
        hasher.close()
        payload_hasher.close()
        file_hasher.close()
    if not landed or problems:
        return None
    return "sha256:" + file_sha.sha.hexdigest(), file_sha.size, stored.records, heads, own


def _read_reply(fd: int) -> Any:
    import pickle

    parts, size = [], 0
    while chunk := os.read(fd, READ):
        parts.append(chunk)
        size += len(chunk)
        if size > MAX_REPLY:
            return None
    try:
        return pickle.loads(b"".join(parts)) if parts else None
    except Exception:
        return None


def _reap(pid: int) -> None:
    """Wait for the child; end it first if it is still running (this side failed)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass
