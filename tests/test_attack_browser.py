"""Hostile pages against `capture --browser`: each must leave the capture bounded in time and
off the addresses it was told to keep off, with no Chromium left behind."""
from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from ports import proxy_environment

import archive
from archive.write import browsing
from tests.test_browser_capture import _chromium_children
from tests.waiting import wait_for

if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

# a script that never yields once the page has loaded: every CDP call through the page blocks
HANG = b"""<!doctype html><html><head><title>Hang</title></head><body><p>Quiet marsh herons</p>
<script>addEventListener('load', () => setTimeout(() => { for (;;) {} }, 300));</script></body></html>"""


@contextmanager
def serve(pages: dict[str, bytes]) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            body = body if body is not None else b"not here"
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_whose_script_never_yields_does_not_stall_the_capture(tmp_path, monkeypatch):
    monkeypatch.setattr(browsing, "PAGE_GRACE", 3.0)
    done: dict[str, object] = {}
    with serve({"/": HANG}) as base:
        def run() -> None:
            try:
                done["snap"] = archive.capture(base + "/", tmp_path / "c", browser=True, browser_timeout=4)
            except BaseException as exc:   # noqa: BLE001 - shown by the assertion below
                done["error"] = exc
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=90)   # the page job is closed at 4 + 3 s; two attempts would be 14 s
        assert not worker.is_alive(), "capture --browser stalled on a page whose script never yields"
    assert "error" not in done, done.get("error")
    snap = done["snap"]
    assert snap.counts["pages"] == 1 and snap.counts["browser_failed"] == 1   # the page's bytes are kept
    wait_for(lambda: not _chromium_children(), 10, "every Chromium of the capture gone")


def test_qa_of_a_replayed_page_whose_script_never_yields_ends_with_that_page_failed(tmp_path, monkeypatch):
    from archive.web import qa as qa_module
    monkeypatch.setattr(qa_module, "PAGE_GRACE", 3.0)
    with serve({"/": HANG}) as base:
        snap = archive.capture(base + "/", tmp_path / "c")
    done: dict[str, object] = {}

    def run() -> None:
        try:
            done["report"] = qa_module.qa(snap.id, tmp_path / "c", timeout=4)
        except BaseException as exc:   # noqa: BLE001 - shown by the assertion below
            done["error"] = exc
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=90)
    assert not worker.is_alive(), "archive qa stalled on a replayed page whose script never yields"
    assert "error" not in done, done.get("error")
    (page,) = done["report"].to_json()["pages"]
    assert not page["passed"] and "did not finish within 7 s" in page["error"]
    wait_for(lambda: not _chromium_children(), 10, "every Chromium of the check gone")


def test_webrtc_of_a_page_does_not_go_around_the_recording_proxy(tmp_path):
    """STUN to an address the page names would leave the browser directly (UDP), unrecorded,
    and reach private addresses whatever --block-private says."""
    import socket
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    port = udp.getsockname()[1]
    page = (f"""<!doctype html><html><body><p>peer</p><script>
const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{port}'}}]}});
pc.createDataChannel('x'); pc.createOffer().then(o => pc.setLocalDescription(o));
</script></body></html>""").encode()
    try:
        with serve({"/": page}) as base:
            snap = archive.capture(base + "/", tmp_path / "c", browser=True, browser_timeout=6)
        assert snap.counts.get("browser_pages") == 1
        got = []
        while True:
            try:
                got.append(udp.recvfrom(2048))
            except BlockingIOError:
                break
        assert got == [], "the browser sent STUN around the proxy"
    finally:
        udp.close()


def _kill_renderers() -> None:
    import signal
    for pid in _chromium_children():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"--type=renderer" in f.read():
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_a_page_that_crashes_its_renderer_is_a_failure_not_the_end_of_the_capture(tmp_path):
    """As a page eating all memory would: its renderer dies (here killed when the page's script
    asks for /crash), on both attempts. The capture goes on and keeps what it fetched."""
    class Crashing(dict):
        def get(self, path, default=None):
            if path.startswith("/crash"):
                _kill_renderers()
            return super().get(path, default)
    pages = Crashing({"/": b"""<!doctype html><html><body><p>crash</p><a href="/calm.html">calm</a>
<script>addEventListener('load', () => fetch('/crash?' + Math.random()));</script></body></html>""",
                      "/calm.html": b"<!doctype html><html><body><p>Calm heron page</p></body></html>"})
    with serve(pages) as base:
        snap = archive.capture(base + "/", tmp_path / "c", browser=True, browser_timeout=8, depth=1)
    # the test kills every renderer of the capture's Chromium, so the calm page, when it renders
    # at the same moment as the crashing one's second attempt, may crash with it: at least the
    # crashing page fails, and the capture still ends with both pages fetched and published
    assert 1 <= snap.counts["browser_failed"] <= 2
    assert snap.counts["pages"] == 2 and snap.counts.get("browser_pages", 0) == 2 - snap.counts["browser_failed"]
    wait_for(lambda: not _chromium_children(), 10, "every Chromium of the capture gone")


def test_qa_of_a_replayed_page_reaches_no_address_by_webrtc(tmp_path):
    """playwright's routing sees HTTP only: a replayed page's RTCPeerConnection would reach
    any address (STUN over UDP, TURN over TCP) from `archive qa`."""
    import socket

    from archive.web.qa import qa
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket()
    try:
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(5)
        tcp.setblocking(False)
        page = (f"""<!doctype html><html><body><p>peer</p><script>
const pc = new RTCPeerConnection({{iceServers: [{{urls: 'stun:127.0.0.1:{udp.getsockname()[1]}'}},
  {{urls: 'turn:127.0.0.1:{tcp.getsockname()[1]}?transport=tcp', username: 'u', credential: 'p'}}]}});
pc.createDataChannel('x'); pc.createOffer().then(o => pc.setLocalDescription(o));
</script></body></html>""").encode()
        with serve({"/": page}) as base:
            snap = archive.capture(base + "/", tmp_path / "c")
        report = qa(snap.id, tmp_path / "c", timeout=6)
        assert report.to_json()["pages"][0]["error"] is None   # replay itself still works
        got: list[object] = []
        for receive in (lambda: udp.recvfrom(2048), tcp.accept):
            while True:
                try:
                    got.append(receive())
                except BlockingIOError:
                    break
        assert got == [], "a replayed page reached an address by WebRTC"
    finally:
        udp.close()
        tcp.close()


def test_a_page_past_its_time_is_closed_whatever_http_proxy_says(tmp_path, monkeypatch):
    import concurrent.futures

    from archive.browser import PagePool, PageTimeout, chromium
    with chromium(tmp_path / "profile") as running:
        with PagePool(running, size=1, job_timeout=2) as pool:
            assert pool.submit(lambda page: page.evaluate("1 + 1")).result(timeout=60) == 2   # connected
            monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")   # nothing answers there
            monkeypatch.setenv("no_proxy", "")
            future = pool.submit(lambda page: page.evaluate("() => { for (;;) {} }"))
            try:
                future.result(timeout=40)
            except PageTimeout:
                pass
            except concurrent.futures.TimeoutError:
                os.killpg(running.pid, 9)   # let the pool's thread go, then fail
                pytest.fail("the page was not closed: the DevTools request went to http_proxy")


def test_browser_capture_works_behind_an_http_proxy_that_knows_no_loopback(tmp_path, monkeypatch):
    """A user's http_proxy (without no_proxy) must not come between playwright and Chromium's
    DevTools port on loopback: playwright asks an http:// endpoint's /json/version through it."""
    proxy_environment(monkeypatch)
    page = b"<!doctype html><title>Proxied</title><p>Ospreys over the estuary</p>"
    with serve({"/": page}) as base:
        snap = archive.capture(base + "/", tmp_path / "c", browser=True, browser_timeout=20, depth=0)
    assert snap.counts.get("browser_pages") == 1 and not snap.counts.get("browser_failed"), snap.counts
