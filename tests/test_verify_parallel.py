"""verify on two processes (warc/parallel.py) reports exactly what one pass reports: the same
file digest, size, records, problems, record heads and digest counts, on clean files and on
files damaged before or after the cut, or cut at a false member start. Each case runs in a
fresh interpreter: forking needs a process with no other thread."""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archive.warc.parallel import SHARE

# records in `split` whether each two-process check was joined (True) or done again in one pass
SPY = r'''
import json, sys
import archive.warc.parallel as parallel
split = []
real = parallel._check_split
def spy(*args):
    joined = real(*args)
    split.append(joined is not None)
    return joined
parallel._check_split = spy
'''
SCRIPT = SPY + r'''
from archive.warc.check import check_warc
from archive.warc.conventions import DigestPolicy

parallel.SPLIT_MIN = 1 << 16
foreign = sys.argv[2] == "foreign"
out = {}
for name, check in (("two", parallel.check_warc_parallel), ("one", check_warc)):
    heads, policy = [], DigestPolicy(foreign=foreign)
    with open(sys.argv[1], "rb") as f:
        digest, size, records, problems = check(f, "f.warc.gz", True, heads, policy)
    out[name] = [digest, size, records, [str(p) for p in problems], heads, policy.to_json()]
out["split"] = split
print(json.dumps(out))
'''


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def record(i: int, body: bytes, digests: bool = True, payload_digest: str | None = None) -> bytes:
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body
    head = [b"WARC/1.1", b"WARC-Type: response", b"WARC-Target-URI: http://ex.org/%d" % i,
            b"WARC-Date: 2026-01-02T03:04:05Z", b"Content-Type: application/http; msgtype=response"]
    if digests:
        head += [b"WARC-Block-Digest: " + sha(block).encode(),
                 b"WARC-Payload-Digest: " + (payload_digest or sha(body)).encode()]
    head.append(b"Content-Length: %d" % len(block))
    return b"\r\n".join(head) + b"\r\n\r\n" + block + b"\r\n\r\n"


def members(count: int = 400, **kw: object) -> list[bytes]:
    rng = random.Random(7)
    return [gzip.compress(record(i, rng.randbytes(600).hex().encode(), **kw)) for i in range(count)]  # type: ignore[arg-type]


def run(tmp_path: Path, data: bytes, foreign: bool = False) -> dict[str, list[object]]:
    path = tmp_path / "f.warc.gz"
    path.write_bytes(data)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(path), "foreign" if foreign else "ours"],
                          capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, list[object]] = json.loads(done.stdout)
    assert result["one"] == result["two"]
    return result


def test_a_clean_file_is_checked_on_two_processes(tmp_path: Path) -> None:
    result = run(tmp_path, b"".join(members()))
    assert result["split"] == [True]
    assert result["two"][2] == 400 and result["two"][3] == []
    assert len(result["two"][4]) == 400   # every record's heads, in file order
    offsets = [h[0] for h in result["two"][4]]   # type: ignore[index]
    assert offsets == sorted(offsets)


@pytest.mark.parametrize("where", [0.2, 0.8])
def test_damage_on_either_side_is_reported_as_one_pass_reports_it(tmp_path: Path, where: float) -> None:
    data = bytearray(b"".join(members()))
    at = int(len(data) * where)
    data[at:at + 30] = b"\x00" * 30
    result = run(tmp_path, bytes(data))
    assert result["split"] == [False]
    assert any("unreadable record" in p for p in result["two"][3])   # type: ignore[union-attr]


def test_a_digest_mismatch_after_the_cut_is_reported_as_one_pass_reports_it(tmp_path: Path) -> None:
    parts = members()
    parts[350] = gzip.compress(record(350, b"changed", payload_digest=sha(b"original")))
    result = run(tmp_path, b"".join(parts))
    assert result["split"] == [False]
    assert [p for p in result["two"][3] if "payload digest mismatch" in p]   # type: ignore[union-attr]


def test_a_false_member_start_at_the_cut_is_not_trusted(tmp_path: Path) -> None:
    # a record whose block holds a whole gzip member starting "WARC/", stored as is (level 0)
    # right where the cut is looked for: the walk steps over it, so the file is read in one pass
    parts = members()
    half = len(parts) // 5   # the members before the decoy's record: under SHARE of the file
    decoy = gzip.compress(b"WARC/1.1\r\nWARC-Type: response\r\nContent-Length: 0\r\n\r\n\r\n\r\n")
    pad = 100_000
    for _ in range(5):   # place the decoy just after where the cut is sought
        body = b"p" * pad + decoy + b"x" * 100_000
        data = b"".join(parts[:half] + [gzip.compress(record(9999, body), compresslevel=0)] + parts[half:])
        # the decoy moves with the pad, the place sought by SHARE of it
        pad = max(0, pad + int((len(data) * SHARE + 100 - data.find(decoy)) / (1 - SHARE)))
    assert int(len(data) * SHARE) < data.find(decoy) < int(len(data) * SHARE) + 1000
    parts.insert(half, gzip.compress(record(9999, body), compresslevel=0))
    result = run(tmp_path, b"".join(parts))
    assert result["split"] == [False]
    assert result["two"][2] == 401 and result["two"][3] == []


def test_digest_counts_of_foreign_records_are_joined(tmp_path: Path) -> None:
    result = run(tmp_path, b"".join(members(digests=False)), foreign=True)
    assert result["split"] == [True]
    assert result["two"][5]["undigested_records"] == 400   # type: ignore[index]


VERIFY = SPY + r'''
parallel.SPLIT_MIN = int(sys.argv[2])
from archive import verify
print(json.dumps({"report": verify(sys.argv[1]).to_json(), "split": split}))
'''


def verify_both(path: Path) -> tuple[dict[str, object], list[bool]]:
    """Verify with every WARC split (if it can be) and with none; return the report, and
    whether the split run's WARCs were joined from two processes."""
    runs = []
    for split_min in (1 << 10, 1 << 40):
        done = subprocess.run([sys.executable, "-c", VERIFY, str(path), str(split_min)],
                              capture_output=True, text=True, timeout=120, check=True)
        runs.append(json.loads(done.stdout))
    assert runs[0]["report"] == runs[1]["report"]
    assert runs[1]["split"] == []
    return runs[0]["report"], runs[0]["split"]


def test_verify_on_two_processes_reports_what_one_reports(tmp_path: Path, demo_snapshot) -> None:  # type: ignore[no-untyped-def]
    snap = tmp_path / demo_snapshot.path.name
    shutil.copytree(demo_snapshot.path, snap)
    report, split = verify_both(snap)
    assert split == [True] and report["ok"] and report["records"] > 10
    # an index line whose sort key is not its URL's: found by the keys the two processes worked out
    index = snap / "indexes" / "index.cdx"
    lines = index.read_text().splitlines(keepends=True)
    key, rest = lines[3].split(" ", 1)
    index.write_text("".join(lines[:3] + ["com,elsewhere)/ " + rest] + lines[4:]))
    report, split = verify_both(snap)
    assert split == [True]
    assert any("sort key is not the URL's" in p["what"] for p in report["problems"])   # type: ignore[index]
    # a flipped byte in the second half of the WARC: one pass reports it, as it would alone
    warc = next((snap / "archive").glob("*.warc.gz"))
    data = bytearray(warc.read_bytes())
    data[len(data) * 3 // 4] ^= 1
    warc.write_bytes(bytes(data))
    report, split = verify_both(snap)
    assert split == [False]
    assert not report["ok"]
