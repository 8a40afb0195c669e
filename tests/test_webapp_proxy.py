"""The replay proxy in front of pywb: a rewritten body goes out with its true length.

pywb keeps `Content-Length: 0` on an empty script it wraps in several hundred bytes; on a
keep-alive connection the next response (an image) is then read from the wrong place. Each
rewritten type is fetched with an image after it on ONE connection, through the proxy (both
intact) and, to show the fault is real, straight from pywb (the image is lost).
"""
from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from ports import free_port
from waiting import wait_for
from webapp_site import PNG, WebappSite

from archive import capture
from archive.models import CaptureOptions
from archive.web.proxy import ReplayProxy
from archive.web.replay import Replay, ReplayUnavailable, find_wayback

# (modifier, path): what pywb rewrites, each recorded with an empty body but the page
REWRITTEN = [("js_", "/empty.js"), ("", "/empty.js"), ("esm_", "/empty.js"), ("sw_", "/worker.js"),
             ("wkr_", "/worker.js"), ("cs_", "/empty.css"), ("", "/empty.json"), ("", "/")]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int, int]]:
    """(snapshot id, site URL, pywb port, proxy port): a capture, pywb on it, the proxy in front."""
    try:
        wayback = find_wayback()
    except ReplayUnavailable as exc:
        pytest.fail(f"pywb missing: {exc} (make test installs it)")
    root = tmp_path_factory.mktemp("proxy") / "snapshots"
    with WebappSite() as site:
        snap = capture([site.url + "/", site.url + "/worker.js", site.url + "/empty.json"], root,
                       CaptureOptions(depth=0))
    with Replay(root, port=free_port(), wayback=wayback) as replay:
        app = Starlette(routes=[Route("/{path:path}", ReplayProxy("127.0.0.1", replay.port).handle)])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: server.started, 30, "the proxy to listen")
            yield snap.id, site.url, replay.port, server.config.port
        finally:
            server.should_exit = True
            thread.join(30)


class _Kept(io.BytesIO):
    def close(self) -> None:   # both responses are read from one buffer
        pass


class _Wire:
    def __init__(self, data: bytes):
        self.data = _Kept(data)

    def makefile(self, mode: str) -> io.BytesIO:
        return self.data


def two_on_one_connection(port: int, first: str, second: str) -> tuple[http.client.HTTPResponse, bytes, bytes]:
    """Send GET `first` and GET `second` on one connection (HTTP/1.1 keep-alive, pipelined, so
    the bytes after the first response are exactly what the server sent, whatever the timing);
    read the answers as a client does, by their framing; return the first response and both bodies.
    Raises http.client.HTTPException when the second answer does not start where the first ends."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {first} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                     f"GET {second} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while block := sock.recv(65536):
            data += block
    wire = _Wire(data)
    one = http.client.HTTPResponse(wire)  # type: ignore[arg-type]
    one.begin()
    body_one = one.read()
    two = http.client.HTTPResponse(wire)  # type: ignore[arg-type]
    two.begin()
    return one, body_one, two.read()


def path(sid: str, site: str, modifier: str, url_path: str) -> str:
    return f"/{sid}/20260101000000{modifier}/{site}{url_path}"


@pytest.mark.parametrize("modifier,url_path", REWRITTEN)
def test_a_rewritten_body_then_an_image_on_one_connection_both_intact(replayed, modifier, url_path):
    sid, site, _, proxy = replayed
    first, body, image = two_on_one_connection(proxy, path(sid, site, modifier, url_path),
                                                path(sid, site, "im_", "/i.png"))
    assert first.status == 200
    assert first.getheader("Content-Length") in (None, str(len(body)))
    assert first.getheader("Transfer-Encoding") in (None, "chunked")
    assert image == PNG


def test_straight_from_pywb_the_empty_script_breaks_the_next_response(replayed):
    """The fault the proxy fixes: without it, the image after an empty script is lost."""
    sid, site, pywb, _ = replayed
    try:
        first, body, image = two_on_one_connection(pywb, path(sid, site, "js_", "/empty.js"),
                                                    path(sid, site, "im_", "/i.png"))
    except http.client.HTTPException:
        return   # the wrapper bytes were read as the next status line
    pytest.fail(f"pywb framed the empty script right (Content-Length {first.getheader('Content-Length')}, "
                f"{len(body)} bytes): the proxy's fix may no longer be needed")


def test_the_wrapper_is_longer_than_pywb_says(replayed):
    sid, site, _, proxy = replayed
    first, body, _ = two_on_one_connection(proxy, path(sid, site, "js_", "/empty.js"), path(sid, site, "im_", "/i.png"))
    assert len(body) > 0 and first.getheader("Content-Length") == str(len(body))


class _Restarting:
    """A stand-in for pywb restarting: it accepts and at once closes its first `cut` connections,
    then answers every request with 200 "ok"; `seen` counts the connections."""

    def __init__(self, cut: int):
        self.cut, self.seen = cut, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)   # so that close() is seen: a closed socket does not wake accept()
        while self.sock.fileno() >= 0:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                self.seen += 1
                if self.seen > self.cut:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


def test_a_get_cut_off_while_pywb_restarts_is_asked_again_until_it_answers() -> None:
    backend = _Restarting(cut=6)
    app = Starlette(routes=[Route("/{path:path}", ReplayProxy("127.0.0.1", backend.port).handle,
                                  methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "the proxy to listen")
        conn = http.client.HTTPConnection("127.0.0.1", server.config.port, timeout=60)
        conn.request("GET", "/x")
        answer = conn.getresponse()
        assert (answer.status, answer.read()) == (200, b"ok")
        conn.close()
        assert backend.seen == 7   # six cut off, then the answer
        backend.seen, backend.cut = 0, 1
        conn = http.client.HTTPConnection("127.0.0.1", server.config.port, timeout=60)
        conn.request("POST", "/x", body=b"data")
        answer = conn.getresponse()
        answer.read()
        conn.close()
        assert answer.status == 502   # not idempotent: asked once
        assert backend.seen == 1
    finally:
        server.should_exit = True
        thread.join(30)
        backend.close()
