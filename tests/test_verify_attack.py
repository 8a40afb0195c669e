"""Attacks on verify's two-process check (warc/parallel.py) and its fast lanes: hostile files
built so that a split check could report something other than the single pass; each must get
exactly the single pass's report. Each case runs in a fresh interpreter (forking needs a
process with no other thread), through test_verify_parallel's `run`, which compares the two."""
from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import surt
from hypothesis import given, settings
from hypothesis import strategies as st
from test_verify_parallel import members, record, run, sha
from waiting import children, default_sigint, wait_for

from archive.formats.surtkey import surt_fast
from archive.read.coverage import MAX_KEY_TEXT, IndexKeys
from archive.snapshot.reader import FolderPackage
from archive.warc.check import check_warc
from archive.warc.parallel import SHARE


def resource_head(block: bytes) -> bytes:
    head = [b"WARC/1.1", b"WARC-Type: resource", b"WARC-Target-URI: http://ex.org/x",
            b"WARC-Date: 2026-01-02T03:04:05Z", b"Content-Type: text/plain",
            b"WARC-Block-Digest: " + sha(block).encode(), b"Content-Length: %d" % len(block)]
    return b"\r\n".join(head) + b"\r\n\r\n"


def test_a_record_starting_inside_the_cut_member_is_not_a_landing(tmp_path: Path) -> None:
    # Record R's block runs on from member A into member B, whose data starts with the rest of
    # that block: "WARC/..." (a decoy record whose Content-Length covers the rest of B). The
    # next real record, damaged, starts inside B. One pass reads R then the damaged record (at
    # B's offset); a child starting at B would read the decoy, which swallows the damage.
    damaged = record(5000, b"changed", payload_digest=sha(b"original"))
    tail = b"s" * 100
    decoy = resource_head(tail + b"\r\n\r\n" + damaged[:-4]) + tail
    spill = random.Random(1).randbytes(3000).hex().encode()   # incompressible: A is long
    a = gzip.compress(resource_head(spill + decoy) + spill)
    b = gzip.compress(decoy + b"\r\n\r\n" + damaged)
    parts = members()
    for k in range(len(parts)):   # A before the point the cut is sought from, B after it
        data = b"".join(parts[:k] + [a, b] + parts[k:])
        a_at = sum(map(len, parts[:k]))
        if a_at < int(len(data) * SHARE) <= a_at + len(a):
            break
    else:
        raise AssertionError("no place for the pair")
    result = run(tmp_path, data)
    assert result["split"] == [False]
    assert [p for p in result["two"][3] if "payload digest mismatch" in p]   # type: ignore[union-attr]


def test_a_record_after_an_empty_member_is_placed_at_its_own_member(tmp_path: Path) -> None:
    # an empty gzip member before a record's member: the record is at its own member's offset
    # (where a reader seeks to it), on the one-member fast lane as on the line-by-line read
    parts = members(6, digests=False)
    data = b"".join(parts[:3]) + gzip.compress(b"") + b"".join(parts[3:])
    starts = [sum(map(len, parts[:i])) + (20 if i >= 3 else 0) for i in range(6)]
    heads: list[tuple[int, dict[str, str]]] = []
    path = tmp_path / "f.warc.gz"
    path.write_bytes(data)
    with path.open("rb") as f:
        _, _, records, problems = check_warc(f, "f.warc.gz", True, heads)
    assert records == 6
    assert [offset for offset, _ in heads] == starts
    assert [p.offset for p in problems] == starts   # "record has no WARC-Block-Digest" each


NO_AFFINITY = r'''
import os, sys
del os.sched_getaffinity   # as on macOS: no such call
import archive.warc.parallel as parallel
parallel.SPLIT_MIN = 1 << 16
with open(sys.argv[1], "rb") as f:
    digest, size, records, problems = parallel.check_warc_parallel(f, "f.warc.gz", True)
print(records, len(problems))
'''


def test_a_system_without_cpu_affinity_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "f.warc.gz"
    path.write_bytes(b"".join(members()))
    done = subprocess.run([sys.executable, "-c", NO_AFFINITY, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["400", "0"]


HELD = r'''
import sys
from pathlib import Path
import archive.warc.parallel as parallel
parallel.SPLIT_MIN = 1 << 16
marks = Path(sys.argv[2])

def held(real, mark):
    def run(*args, **kw):
        (marks / mark).write_text("")
        sys.stdin.buffer.read(1)   # held here until a signal ends it: the test writes nothing
        return real(*args, **kw)
    return run

parallel._check_before = held(parallel._check_before, "parent")
parallel.check_records = held(parallel.check_records, "child")   # what the forked child runs
with open(sys.argv[1], "rb") as f:
    parallel.check_warc_parallel(f, "f.warc.gz", True)
'''


def group_alive(pgid: int) -> bool:
    """Return whether a process of group `pgid` still runs (a zombie left for whatever reaps
    orphans here does not count: it checks nothing and holds nothing but its entry)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


@pytest.mark.parametrize("how", ["ctrl-c", "sigint-parent", "sigterm-parent", "sigkill-parent"])
def test_no_process_is_left_when_a_split_check_is_stopped(tmp_path: Path, how: str) -> None:
    # both processes held mid-check; whichever way the checking process is stopped, the
    # process it forked ends too (never an orphan checking on, or a zombie)
    path = tmp_path / "f.warc.gz"
    path.write_bytes(b"".join(members()))
    proc = subprocess.Popen([sys.executable, "-c", HELD, str(path), str(tmp_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=default_sigint)
    try:
        wait_for(lambda: (tmp_path / "parent").exists() and (tmp_path / "child").exists(), 60, "both processes")
        child = children(proc.pid)
        assert len(child) == 1
        if how == "ctrl-c":   # a terminal's Ctrl-C: SIGINT to the whole foreground group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, {"sigint-parent": signal.SIGINT, "sigterm-parent": signal.SIGTERM,
                               "sigkill-parent": signal.SIGKILL}[how])
        proc.wait(timeout=60)
        wait_for(lambda: not group_alive(proc.pid), 30, "the forked checker to end")
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.stderr is not None and proc.stdin is not None
        proc.stderr.close()
        proc.stdin.close()


EMPTY_MEMBERS = r'''
import sys
from archive.warc.check import check_warc
with open(sys.argv[1], "rb") as f:
    _, size, records, problems = check_warc(f, "f.warc.gz", True, [])
# this process's own peak (ru_maxrss would carry the forking test process's over exec)
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(records, len(problems), int(peak.split()[1]) << 10)
'''


def test_many_empty_members_are_read_in_bounded_memory(tmp_path: Path) -> None:
    # 400,000 empty gzip members (20 bytes each) between records: the member start list
    # must not keep one entry per member met while no byte comes out
    rss = []
    for count in (0, 400_000):
        path = tmp_path / f"e{count}.warc.gz"
        path.write_bytes(b"".join(members(3)) + gzip.compress(b"", mtime=0) * count + b"".join(members(3)))
        done = subprocess.run([sys.executable, "-c", EMPTY_MEMBERS, str(path)], capture_output=True,
                              text=True, timeout=120, check=True)
        records, problems, peak = map(int, done.stdout.split())
        assert (records, problems) == (6, 0)
        rss.append(peak)
    assert rss[1] - rss[0] < 8 << 20, f"{(rss[1] - rss[0]) >> 20} MB more"


# SURT keys: URLs drawn character by character from what formats/surtkey.py accepts, with the
# words the library's rules look for mixed in (a second generator beside test_surtkey's parts)
HOST_PIECES = st.sampled_from(list("abwWx019.-") + ["www", "www1.", "WWW2.", "255", "256", "0", "10"])
PATH_PIECES = st.sampled_from(list("aZ09._~!$&'*+,;=:@/-?") + ["sid=", "jsessionid=", "SessionId", "cfid=",
                                                              "cftoken=", "aspx", "/.", "/..", "//", "a=1", "&"])


@st.composite
def plain_urls(draw: st.DrawFn) -> str:
    host = "".join(draw(st.lists(HOST_PIECES, max_size=10)))
    port = draw(st.sampled_from(["", ":0", ":1", ":80", ":443", ":0080", ":65535", ":65536", ":99999"]))
    path = "".join(draw(st.lists(PATH_PIECES.filter(lambda p: p != "?"), max_size=12)))
    query = "".join(draw(st.lists(PATH_PIECES, max_size=12)))
    return (draw(st.sampled_from(["http", "https"])) + "://" + host + port + ("/" + path if draw(st.booleans()) else "")
            + ("?" + query if draw(st.booleans()) else ""))


@settings(max_examples=2000, deadline=None)
@given(plain_urls())
def test_a_fast_surt_key_is_the_librarys(url: str) -> None:
    key = surt_fast(url)
    if key is not None:
        try:
            expected = str(surt.surt(url))
        except Exception:   # the library fails on it: the fast path must not key it either
            expected = None
        assert key == expected, url


def test_keys_worked_out_ahead_are_bounded_by_their_text(tmp_path: Path) -> None:
    # an index of few lines with URLs near the 1 MB line limit: each process of a split check
    # holds (and the child sends) at most MAX_KEY_TEXT characters of URLs and keys, not the index
    (tmp_path / "indexes").mkdir()
    lines = [f'org,ex)/ 20260102030405 {{"url": "http://ex.org/{i}{"a" * 900_000}", "offset": "0", '
             f'"length": "1", "filename": "a.warc.gz"}}\n' for i in range(80)]
    (tmp_path / "indexes" / "index.cdxj").write_text("".join(lines))
    package = FolderPackage(tmp_path)
    for part in (0, 1):
        keys = IndexKeys(package).run(part)
        assert 0 < len(keys) < 40
        assert sum(len(url) + len(key) for url, key in keys.items()) < MAX_KEY_TEXT + 2 * 1_000_000
