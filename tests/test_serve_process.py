"""`archive serve` and its pywb child: stopped together on every signal, no orphan, a taken
port refused before anything says "serving"."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from waiting import children, kill_groups, wait_for

from archive.web.replay import ReplayUnavailable, find_wayback

DEADLINE = 90.0   # pywb's start under a loaded machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def wayback() -> Path:
    try:
        return find_wayback()
    except ReplayUnavailable as exc:
        pytest.fail(f"pywb missing: {exc} (make test installs it)")


@contextmanager
def serving(collection: Path, port: int, wayback: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`archive serve` in a session of its own; its group and pywb's are killed whatever happens."""
    collection.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ARCHIVE_PYWB=str(wayback))
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "archive", "serve", "-C", str(collection),
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=err, env=env,
                                start_new_session=True)
    groups = [proc.pid]
    try:
        yield proc
    finally:
        kill_groups(groups + children(proc.pid))
        proc.wait()


def started(proc: subprocess.Popen[bytes], port: int, log: Path) -> int:
    """Wait until serve says it serves and the port answers; return pywb's pid."""
    wait_for(lambda: "serving" in log.read_text() or proc.poll() is not None, DEADLINE, "serve to say it serves")
    assert proc.poll() is None, log.read_text()
    wait_for(lambda: answers(port), DEADLINE, "pywb to answer")
    kids = children(proc.pid)
    assert len(kids) == 1, kids
    return kids[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_serve_stops_pywb_on_every_signal(tmp_path, wayback, sig):
    port, log = free_port(), tmp_path / "serve.log"
    with serving(tmp_path / "snapshots", port, wayback, log) as proc:
        pywb = started(proc, port, log)
        assert os.getpgid(pywb) == pywb != os.getpgid(proc.pid)   # a process group of its own
        proc.send_signal(sig)
        assert proc.wait(DEADLINE) == 0, log.read_text()
        wait_for(lambda: not alive(pywb), 30, "pywb to be gone")
        wait_for(lambda: not answers(port), 30, "the port to be free")
    assert "Traceback" not in log.read_text()


def test_pywb_dies_with_a_serve_that_is_killed(tmp_path, wayback):
    port, log = free_port(), tmp_path / "serve.log"
    with serving(tmp_path / "snapshots", port, wayback, log) as proc:
        pywb = started(proc, port, log)
        proc.kill()   # no handler runs: the kernel's parent-death signal must end pywb
        proc.wait()
        wait_for(lambda: not alive(pywb), 30, "pywb to be gone")


def test_serve_on_a_taken_port_is_one_line_and_exit_2(tmp_path, wayback):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        log = tmp_path / "serve.log"
        with serving(tmp_path / "snapshots", port, wayback, log) as proc:
            assert proc.wait(DEADLINE) == 2
            assert children(proc.pid) == []
    lines = log.read_text().splitlines()
    assert lines == [f"archive: error: cannot serve on 127.0.0.1:{port}: address already in use"]


def test_a_failed_start_leaves_no_pywb(tmp_path, wayback):
    """A start that fails (pywb's log cannot be opened) is one error line, and nothing is left."""
    port, log = free_port(), tmp_path / "serve.log"
    collection = tmp_path / "snapshots"
    (collection / ".replay").mkdir(parents=True)
    (collection / ".replay" / "pywb.log").mkdir()   # pywb's log cannot be opened: the start fails
    with serving(collection, port, wayback, log) as proc:
        assert proc.wait(DEADLINE) == 2
        assert children(proc.pid) == []
    text = log.read_text()
    assert len(text.splitlines()) == 1 and text.startswith("archive: error:"), text
    assert not answers(port)
