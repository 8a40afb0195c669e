"""Replay in pywb, seen in headless Chromium, with the live site gone and other hosts blocked."""
from __future__ import annotations

import email.utils
import json
import re
import shutil
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ports import free_port, proxy_environment

from archive import capture
from archive.demo import DemoSite
from archive.read.find import replay_url
from archive.web.replay import Replay, ReplayUnavailable, find_wayback

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARCHIVED = re.compile(r"^/(?P<coll>[^/]+)/(?P<ts>\d{14})(?P<mod>[a-z]{2}_)?/(?P<url>.+)$")


@pytest.fixture(scope="module")
def wayback():
    try:
        return find_wayback()
    except ReplayUnavailable as exc:
        pytest.fail(f"pywb missing: {exc} (make test installs it)")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, wayback):
    """A capture of the demo site, the site shut down, and pywb serving the collection."""
    root = tmp_path_factory.mktemp("replay") / "snapshots"
    with DemoSite() as site:
        snap = capture([site.main_url + "/"], root, depth=0)
        seed = site.main_url + "/"
    with Replay(root, port=free_port(), wayback=wayback) as replay:
        yield snap, seed, replay


def captured_statuses(snap) -> dict[str, int]:
    lines = (snap.path / "indexes" / "index.cdx").read_text().splitlines()
    return {json.loads(l.split(" ", 2)[2])["url"]: int(json.loads(l.split(" ", 2)[2])["status"]) for l in lines}


def test_home_page_lists_snapshots(replayed):
    snap, seed, replay = replayed
    page = urllib.request.urlopen(replay.url + "/").read().decode()
    assert snap.id in page and f"/{snap.id}/" in page and seed in page


def test_memento_headers(replayed):
    snap, seed, replay = replayed
    ts = snap.created.replace("-", "").replace(":", "").replace("T", "")[:14]
    resp = urllib.request.urlopen(replay_url(replay.url, snap.id, ts, seed))
    assert resp.headers["Memento-Datetime"]
    assert 'rel="original"' in resp.headers["Link"] and seed in resp.headers["Link"]


def test_replay_answers_behind_an_http_proxy_that_knows_no_loopback(tmp_path, wayback, monkeypatch):
    """pywb asks its own warcserver over HTTP on loopback: a user's http_proxy (no no_proxy) must
    not get those requests (each replay was a 500 "Pywb Error ... port=9")."""
    root = tmp_path / "snapshots"
    with DemoSite() as site:
        snap = capture([site.main_url + "/"], root, depth=0)
        seed = site.main_url + "/"
    proxy_environment(monkeypatch)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # this test's own client: no proxy
    ts = snap.created.replace("-", "").replace(":", "").replace("T", "")[:14]
    with Replay(root, port=free_port(), wayback=wayback) as replay:
        with direct.open(replay_url(replay.url, snap.id, ts, seed), timeout=60) as resp:
            assert resp.status == 200 and resp.headers["Memento-Datetime"]
            assert b"What the tide pools told us in October" in resp.read()


def test_replay_in_chromium_loads_everything_from_the_archive(replayed):
    sync_api = pytest.importorskip("playwright.sync_api")
    snap, seed, replay = replayed
    statuses = captured_statuses(snap)
    ts = next(iter(json.loads(l) for l in (snap.path / "pages" / "pages.jsonl").read_text().splitlines()[1:]))["ts"]
    url = replay_url(replay.url, snap.id, re.sub(r"\D", "", ts)[:14], seed)
    replay_host = urlsplit(replay.url).netloc
    elsewhere: list[str] = []
    answered: dict[str, int] = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def guard(route):
            if urlsplit(route.request.url).netloc != replay_host and not route.request.url.startswith(("data:", "blob:")):
                elsewhere.append(route.request.url)
                return route.abort()
            return route.continue_()

        page.route("**/*", guard)
        page.on("response", lambda r: answered.__setitem__(r.url, r.status))
        page.goto(url, wait_until="networkidle")
        text = page.inner_text("body")
        assert page.main_frame.url == url               # frameless: the page itself is on top
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "replay-demo.png"), full_page=True)
        browser.close()
    assert "The anemones closed as the water drew back." in text
    assert not elsewhere, f"requests left the archive: {elsewhere}"
    archived = {}
    for requested, status in answered.items():
        m = ARCHIVED.match(urlsplit(requested).path + (f"?{urlsplit(requested).query}" if urlsplit(requested).query else ""))
        if m and m.group("coll") == snap.id:
            archived[m.group("url")] = status
    assert seed in archived
    subresources = {u: s for u, s in archived.items() if u != seed}
    assert len(subresources) >= 10
    for original, status in subresources.items():
        assert original in statuses, f"browser asked for {original}, which was never captured"
        # media elements ask with Range: pywb answers 206 from the captured 200
        assert status == statuses[original] or (status, statuses[original]) == (206, 200), original
    assert archived.get(seed.rstrip("/") + "/static/img/missing.png", 404) == 404


def test_refresh_picks_up_new_snapshots(replayed, tmp_path):
    snap, seed, replay = replayed
    assert replay.refresh() is False


def test_serve_command_regenerates_when_snapshots_change(site, collection, wayback, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    def wait_for(what, check, timeout=90.0):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {log.read_text()}")

    def home_page():  # type: ignore[no-untyped-def]
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
        except OSError:
            return None

    capture([site.main_url + "/contact.html"], collection, depth=0)
    port = free_port()
    env = dict(os.environ, ARCHIVE_PYWB=str(wayback))
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "archive", "serve", "-C", str(collection),
                                 "--port", str(port)], stderr=err, env=env, start_new_session=True)
    try:
        first = wait_for("the home page", home_page)
        newer = capture([site.main_url + "/moved.html"], collection, depth=0)
        wait_for("the regenerated configuration", lambda: "regenerated" in log.read_text())
        page = wait_for("the new snapshot on the home page",
                        lambda: (p := home_page()) is not None and newer.id in p and p)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        try:   # serve's group; pywb, in a group of its own, dies with serve (parent-death signal)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert newer.id not in first and newer.id in page
    assert "regenerated" in log.read_text()


def test_serve_binds_loopback_by_default():
    from archive.cli import _parser
    args = _parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"


def test_revisits_replay_with_the_original_body_from_the_snapshot_depended_on(tmp_path, wayback):
    """pywb serves a revisit of the second snapshot with the first snapshot's body, through the
    generated index of the records the revisits refer to; a byte-level comparison."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from recapture_site import RecaptureSite

    root = tmp_path / "snapshots"
    site = RecaptureSite(pages=3)
    try:
        first = capture([site.url + "/"], root, depth=1)
        time.sleep(1.1)   # a second apart: the memento asked for is the revisit, not its original
        second = capture([site.url + "/"], root, depth=1)
    finally:
        site.close()
    url = site.url + "/p/1"
    lines = {json.loads(l.split(" ", 2)[2])["url"]: l.split(" ", 2)
             for l in (second.path / "indexes" / "index.cdx").read_text().splitlines()}
    assert json.loads(lines[url][2])["mime"] == "warc/revisit"
    stamp = lines[url][1]
    with Replay(root, port=free_port(), wayback=wayback) as replay:
        with urllib.request.urlopen(f"{replay.url}/{second.id}/{stamp}id_/{url}") as resp:
            replayed_body = resp.read()
            assert resp.status == 200, resp.headers
            assert resp.headers["X-Archive-Orig-ETag"] == '"page-1"'
            # the memento is the revisit of the second snapshot, its body the first's
            assert 'collection="own"' in resp.headers["Link"]
            assert resp.headers["Memento-Datetime"] == email.utils.format_datetime(
                datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc), usegmt=True)
    assert b"<title>Page 1</title>" in replayed_body
    from archive.snapshot.reader import Package
    with Package.open(first.path) as pkg:
        entry = next(e for e in pkg.index() if e.url == url)
        assert replayed_body == pkg.body(entry)
    # the generated index holds just the originals the revisits of the second snapshot need
    deps = (root / ".replay" / "indexes" / f"{second.id}.deps.cdx").read_text().splitlines()
    revisited = {u for u, parts in lines.items() if json.loads(parts[2])["mime"] == "warc/revisit"}
    assert {json.loads(l.split(" ", 2)[2])["url"] for l in deps} == revisited
