"""The replay proxy in front of pywb: a rewritten body goes out with its true length.

pywb keeps `Content-Length: 0` on an empty script it wraps in several hundred bytes; on a
keep-alive connection the next response (an image) is then read from the wrong place. Each
rewritten type is fetched with an image after it on ONE connection, through the proxy (both
intact) and, to show the fault is real, straight from pywb (the image is lost).
"""
from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def two_on_one_connection(port: int, first: str, second: str) -> tuple[http.client.HTTPResponse, bytes, bytes]:
    """GET `first` then `second` on one keep-alive connection; return the first response, both bodies."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", first)
        one = conn.getresponse()
        body_one = one.read()
        conn.request("GET", second)
        two = conn.getresponse()
        return one, body_one, two.read()
    finally:
        conn.close()


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
    except (http.client.HTTPException, OSError):
        return   # the wrapper bytes were read as the next status line
    assert first.getheader("Content-Length") == "0" and body == b""
    assert image != PNG


def test_the_wrapper_is_longer_than_pywb_says(replayed):
    sid, site, _, proxy = replayed
    first, body, _ = two_on_one_connection(proxy, path(sid, site, "js_", "/empty.js"), path(sid, site, "im_", "/i.png"))
    assert len(body) > 0 and first.getheader("Content-Length") == str(len(body))
