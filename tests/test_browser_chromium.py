"""archive.browser: Chromium in its own process group, a page pool, nothing left over.

Real Chromium (Debian's), real loopback server; every check of "no process left" reads /proc.
"""
from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archive.browser import PageFailed, PagePool, chromium, kill_leftover
from archive.browser.chromium import _group_members
from archive.errors import BrowserError
from tests.waiting import wait_for

pytest.importorskip("playwright.sync_api")
if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"<!doctype html><title>t</title><p id=p>{self.path}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_pool_loads_pages_and_the_group_is_gone_after(tmp_path, server):
    pid_file = tmp_path / "chromium.json"
    with chromium(tmp_path / "profile", pid_file=pid_file) as running:
        assert json.loads(pid_file.read_text())["pgid"] == running.pid
        assert os.getpgid(running.pid) == running.pid       # a group of its own
        assert len(_group_members(running.pid)) >= 2         # browser and its helpers joined it
        with PagePool(running, size=2) as pool:
            futures = [pool.submit(lambda page, i=i: (page.goto(f"{server}/p{i}"),
                                                      page.text_content("#p"))[1]) for i in range(4)]
            assert [f.result(timeout=60) for f in futures] == ["/p0", "/p1", "/p2", "/p3"]
        pgid = running.pid
    assert _group_members(pgid) == []
    assert not pid_file.exists()


def test_nothing_of_chromium_is_left_in_the_temporary_folder(tmp_path):
    """Chromium keeps its single-instance socket in a folder of its own under TMPDIR, which
    it removes only on a clean exit: after the SIGKILL of its group, it is removed by us."""
    with chromium(tmp_path / "profile") as running:
        singleton = Path(os.readlink(running.profile_dir / "SingletonSocket")).parent
        assert singleton.is_dir() and singleton.name.startswith("org.chromium.Chromium.")
    assert not singleton.exists()
    assert _group_members(running.pid) == []


def test_a_crashed_page_is_retried_once_then_fails_with_the_reason(tmp_path):
    attempts = []

    def crash(page):
        attempts.append(1)
        page.goto("about:blank")
        for pid in _group_members(running.pid):       # the renderer dies, as on a bad page
            if "--type=renderer" in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
        page.evaluate("new Promise(r => setTimeout(r, 10000))")

    with chromium(tmp_path / "profile") as running, PagePool(running, size=1) as pool:
        with pytest.raises(PageFailed) as failed:
            pool.submit(crash).result(timeout=60)
        assert "crash" in failed.value.reason
        assert len(attempts) == 2
        # the pool goes on with a new page
        assert pool.submit(lambda page: page.evaluate("1 + 1")).result(timeout=60) == 2


def test_a_job_error_is_not_retried(tmp_path):
    with chromium(tmp_path / "profile") as running, PagePool(running, size=1) as pool:
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda page: 1 / 0).result(timeout=60)


def test_profile_must_be_fresh_and_chromium_must_exist(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "Cookies").write_text("x")
    with pytest.raises(BrowserError, match="not empty"):
        with chromium(tmp_path / "used"):
            pass
    with pytest.raises(BrowserError, match="not found"):
        with chromium(tmp_path / "p", executable=str(tmp_path / "no-chromium")):
            pass


STARTER = """
import sys, time
from pathlib import Path
from archive.browser import chromium
with chromium(Path(sys.argv[1]), pid_file=Path(sys.argv[2])) as running:
    print(running.pid, flush=True)
    time.sleep(600)
"""


def test_kill_9_of_the_owner_ends_chromium_and_kill_leftover_cleans_a_record(tmp_path):
    pid_file = tmp_path / "chromium.json"
    owner = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path / "profile"), str(pid_file)],
                             stdout=subprocess.PIPE, text=True, start_new_session=True,
                             cwd=Path(__file__).resolve().parent.parent)
    try:
        pgid = int(owner.stdout.readline())
        assert _group_members(pgid)
        owner.kill()                      # kill -9: no finally block runs in the owner
        owner.wait(timeout=30)
        wait_for(lambda: not _group_members(pgid), 30, "Chromium to die with its parent")
        assert pid_file.exists()          # the record survives the owner ...
        singleton = Path(os.readlink(tmp_path / "profile" / "SingletonSocket")).parent
        assert singleton.is_dir()         # ... and so does Chromium's folder in TMPDIR
        assert kill_leftover(pid_file) == 0   # a later run finds nothing left to end ...
        assert not pid_file.exists() and not singleton.exists()   # ... and nothing left over
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
        owner.wait(timeout=30)


def test_kill_leftover_ends_a_recorded_group_that_survived(tmp_path):
    pid_file = tmp_path / "chromium.json"
    # a Chromium whose parent lives on (no death signal to help): only the record can end it
    with chromium(tmp_path / "profile", pid_file=pid_file) as running:
        saved = pid_file.read_text()
        assert kill_leftover(pid_file) >= 1
        # every member got SIGKILL; one still exiting (no exe link yet) is gone a moment later
        wait_for(lambda: not _group_members(running.pid), 15, "the group to be gone")
        pid_file.write_text(saved)
    assert kill_leftover(tmp_path / "missing.json") == 0
