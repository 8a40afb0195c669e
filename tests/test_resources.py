"""Crashes and resources: a full disk, the free-space guard, kill -9 mid-capture."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.cli import main

from waiting import Gate, fetched, partial_folder, wait_for


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (needs root, as CI and the sessions run)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def complete_records(warc: Path) -> int:
    """Read records with warcio until the file ends or breaks off; return how many were whole."""
    count = 0
    with open(warc, "rb") as f:
        try:
            for record in ArchiveIterator(f):
                record.content_stream().read()
                count += 1
        except Exception:
            pass
    return count


def test_full_disk_is_exit_4_with_the_partial_kept(faults, small_disk, capsys):
    body = os.urandom(5 << 20)
    faults.add("/", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 60\r\n\r\n"
               + b'<img src="/small.png"><img src="/huge.bin">'.ljust(60))
    faults.add("/small.png", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nimage")
    faults.add("/huge.bin", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    code = main(["capture", "-C", str(small_disk / "coll"), "--depth", "0", "--per-host", "1",
                 "--min-free", "0", faults.url + "/"])
    out, err = capsys.readouterr()
    assert code == 4 and out == ""
    assert err.count("\n") == 1 and "disk full" in err and "partial capture kept" in err
    partial = next(p for p in (small_disk / "coll" / ".partial").iterdir() if not p.name.endswith(".spool"))
    warc = next((partial / "archive").glob("*.warc.gz"))
    assert complete_records(warc) >= 3   # warcinfo and the page's request and response, at least


def test_free_space_guard_stops_before_the_disk_fills(faults, small_disk, capsys):
    faults.add("/", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    code = main(["capture", "-C", str(small_disk / "coll"), "--depth", "0", "--min-free", "4M",
                 faults.url + "/"])
    _, err = capsys.readouterr()
    assert code == 4 and "less than --min-free" in err


def start_capture(site, collection: Path, passing: int) -> tuple[subprocess.Popen[bytes], Gate, Path]:
    """Start a capture of the demo site in a process group of its own; return once it has
    written `passing` exchanges and waits on the server for the next ones (the gate holds)."""
    gate = Gate(passing).on_demo(site)
    proc = subprocess.Popen([sys.executable, "-m", "archive", "capture", "-C", str(collection), "--quiet",
                             "--per-host", "1", site.main_url + "/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(gate.held.is_set, 60, f"the capture to ask for more than {passing} URLs")
        folder = wait_for(lambda: partial_folder(collection), 30, "the partial capture folder")
        wait_for(lambda: fetched(folder) >= passing, 30, f"{passing} exchanges written")
    except BaseException:
        stop_group(proc)
        gate.open()
        raise
    return proc, gate, folder


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 the process group of `proc` and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.parametrize("passing", [1, 12, 40])
def test_kill_9_leaves_readable_warcs(site, collection, passing):
    proc, gate, _ = start_capture(site, collection, passing)
    stop_group(proc)   # mid-capture: requests in flight, held by the gate
    gate.open()
    partials = [p for p in (collection / ".partial").iterdir() if not p.name.endswith(".spool")]
    assert len(partials) == 1, "a killed capture stays under .partial, never looks complete"
    assert not [p for p in collection.iterdir() if not p.name.startswith(".")]
    warcs = sorted((partials[0] / "archive").glob("*.warc.gz"))
    assert warcs and complete_records(warcs[0]) >= 1 + 2 * passing   # warcinfo, request and response
    from archive.read.find import snapshots
    listed = snapshots(collection)
    assert [(s.complete, s.seeds) for s in listed] == [(False, (site.main_url + "/",))]
    from archive.read.find import timemap
    assert timemap(site.main_url + "/", collection) == []   # nothing complete holds it yet


def test_resume_after_kill_9_fetches_only_what_is_missing(site, collection, capsys):
    proc, gate, partial = start_capture(site, collection, 12)
    stop_group(proc)
    before = list(site.requests)
    gate.open()
    code = main(["capture", "-C", str(collection), "--resume", partial.name, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    import json
    snap = json.loads(out)
    again = [(h, p) for h, p, _ in site.requests[len(before):]]
    fetched_first = {(h, p) for h, p, _ in before}
    # what the killed run had whole in its WARC is not fetched again (at most the one in flight)
    from archive.write.resume import load  # noqa: F401  (the module under test)
    assert len(set(again) & fetched_first) <= 2
    from archive import verify
    report = verify(snap["path"])
    assert report.ok, report.problems
    assert not (collection / ".partial").exists()
    index = (Path(snap["path"]) / "indexes" / "index.cdx").read_text()
    assert index.count(site.main_url + "/static/css/site.css\"") == 1
    assert len(index.splitlines()) >= 45
