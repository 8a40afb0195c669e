"""`capture --browser` end to end on the fixture site (tests/browser_site.py): what scripts
fetch is recorded by our own fetch layer, with a screenshot and the page text as evidence;
warcio check and our verify pass; no request leaves loopback; no Chromium is left over."""
from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from warcio.archiveiterator import ArchiveIterator

import archive
from archive.browser.chromium import _group_members
from archive.models import DEFAULT_USER_AGENT
from tests import browser_site

if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent


def _chromium_children() -> list[int]:
    """Chromium processes whose parent chain reaches this test process."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.path.realpath(f"/proc/{entry}/exe")
            pid = int(entry)
            while pid > 1:
                stat = Path(f"/proc/{pid}/stat").read_text()
                pid = int(stat[stat.rindex(")") + 2:].split()[1])
                if pid == me and "chromium" in exe:
                    found.append(int(entry))
                    break
        except (OSError, ValueError):
            continue
    return found


def _index(snapshot) -> dict[str, dict]:
    lines = (snapshot.path / "indexes" / "index.cdx").read_text().splitlines()
    return {json.loads(line.split(" ", 2)[2])["url"]: json.loads(line.split(" ", 2)[2]) for line in lines}


def _resource(snapshot, uri: str) -> tuple[str, bytes]:
    for warc in (snapshot.path / "archive").glob("*.warc.gz"):
        with open(warc, "rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type == "resource" and rec.rec_headers.get_header("WARC-Target-URI") == uri:
                    return rec.rec_headers.get_header("Content-Type"), rec.content_stream().read()
    raise AssertionError(f"no resource record {uri}")


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    with browser_site.serve() as site:
        static = archive.capture(site.base + "/", tmp_path_factory.mktemp("static") / "c")
        static_requests = list(site.requests)
        site.requests.clear()
        snap = archive.capture(site.base + "/", tmp_path_factory.mktemp("browser") / "c",
                               browser=True, browser_timeout=20)
        yield site, static, static_requests, snap


def test_static_capture_misses_what_scripts_fetch(captured):
    site, static, _, _ = captured
    urls = set(_index(static))
    assert {site.base + p for p in browser_site.PAGES} <= urls
    assert not {site.base + p for p in browser_site.SCRIPTED} & urls


def test_browser_capture_records_every_scripted_resource(captured):
    site, _, _, snap = captured
    index = _index(snap)
    for path in browser_site.PAGES + browser_site.SCRIPTED:
        assert index[site.base + path]["status"] == "200", path
    assert snap.counts["browser_pages"] == 4


def test_screenshot_and_text_records(captured):
    site, _, _, snap = captured
    page = site.base + "/lazy.html"
    ctype, data = _resource(snap, f"urn:view:{page}")
    assert ctype == "image/png"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.width == 1280
    assert image.height >= 5000          # the full page, not the 800-pixel window
    ctype, text = _resource(snap, f"urn:text:{site.base}/article.html")
    assert ctype == "text/plain; charset=utf-8"
    assert browser_site.ARTICLE_TEXT in text.decode("utf-8")
    pages = [json.loads(line) for line in (snap.path / "pages" / "pages.jsonl").read_text().splitlines()[1:]]
    article = next(p for p in pages if p["url"].endswith("/article.html"))
    assert browser_site.ARTICLE_TEXT in article["text"]
    assert "batch 3 item 3" in next(p for p in pages if p["url"].endswith("/feed.html"))["text"]


def test_only_our_fetch_layer_talked_to_the_site_once_per_url(captured):
    site, _, _, snap = captured
    # Chromium's own User-Agent never reached the site: every request came through the proxy
    assert {ua for _, ua in site.requests} == {DEFAULT_USER_AGENT}
    paths = [p for p, _ in site.requests]
    # answered from the record when already fetched: no URL was fetched twice
    assert len(paths) == len(set(paths))
    log = [json.loads(line) for line in (snap.path / "logs" / "capture.jsonl").read_text().splitlines()]
    assert all(e["url"].startswith(site.base) for e in log), "a request left the fixture site"


def test_warcio_check_and_verify_pass(captured):
    _, _, _, snap = captured
    warcs = [str(p) for p in (snap.path / "archive").glob("*.warc.gz")]
    checked = subprocess.run([str(Path(sys.executable).parent / "warcio"), "check", *warcs],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    verified = subprocess.run([sys.executable, "-m", "archive", "verify", "-C", str(snap.path.parent), snap.id],
                              capture_output=True, text=True, cwd=ROOT)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_no_chromium_left_and_no_temporary_files(captured):
    _, _, _, snap = captured
    assert _chromium_children() == []
    assert not (snap.path.parent / ".partial").exists() or not any((snap.path.parent / ".partial").iterdir())
    assert not any(p.name.startswith(("profile-", "tls-", "browser.json")) for p in snap.path.rglob("*"))


def _gunzip_ok(path: Path) -> bool:
    with gzip.open(path) as f:
        return bool(f.read(4))


KILLER = """
import sys
import archive
archive.capture(sys.argv[1], sys.argv[2], browser=True, browser_timeout=20, capture_id="killme")
"""


@pytest.mark.slow
def test_kill_9_mid_capture_then_resume_leaves_no_chromium(tmp_path):
    from tests.waiting import wait_for
    collection = tmp_path / "c"
    with browser_site.serve() as site:
        proc = subprocess.Popen([sys.executable, "-c", KILLER, site.base + "/", str(collection)],
                                cwd=ROOT, start_new_session=True)
        try:
            pid_file = collection / ".partial" / "killme.spool" / "browser.json"
            wait_for(pid_file.exists, 60, "the capture's browser to start")
            pgid = json.loads(pid_file.read_text())["pgid"]
            proc.kill()
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=30)
        wait_for(lambda: not _group_members(pgid), 30, "Chromium to end with its capture")
        snap = archive.capture([], collection, resume="killme")
        assert snap.counts.get("browser_pages", 0) >= 1
        assert not pid_file.exists()
        assert _chromium_children() == []


def test_https_through_the_capture_ca(tmp_path):
    """An https site with a test chain: the browser trusts only the capture's own CA (SPKI
    pin in its profile), while the record holds the server's real chain (WARC TLS fields)."""
    with browser_site.serve_https(tmp_path) as (site, ca_path):
        snap = archive.capture(site.base + "/article.html", tmp_path / "c", depth=0, browser=True,
                               browser_timeout=20, ca_bundle=str(ca_path))
    index = _index(snap)
    for path in ("/article.html", "/api/article.json", "/img/from-json.png", "/css/late.css"):
        assert index[site.base + path]["status"] == "200", path
    assert {ua for _, ua in site.requests} == {DEFAULT_USER_AGENT}
    _, text = _resource(snap, f"urn:text:{site.base}/article.html")
    assert browser_site.ARTICLE_TEXT in text.decode()
    protocols = []
    for warc in (snap.path / "archive").glob("*.warc.gz"):
        with open(warc, "rb") as f:
            protocols += [r.rec_headers.get_header("WARC-Protocol") for r in ArchiveIterator(f)
                          if r.rec_type == "response" and "json" in r.rec_headers.get_header("WARC-Target-URI")]
    assert protocols and all(p for p in protocols)   # the fetch layer's own TLS evidence
    assert not list((tmp_path / "c").rglob("leaf-key.pem"))   # the CA's key is gone


def test_what_the_browser_fetched_names_its_page(captured):
    site, _, _, snap = captured
    log = {e["url"]: e for e in map(json.loads, (snap.path / "logs" / "capture.jsonl").read_text().splitlines())}
    entry = log[site.base + "/api/feed/3"]
    assert entry["via"] == "browser" and entry["found_on"] == site.base + "/feed.html"
    assert entry["kind"] == "requisite" and entry["depth"] == 1


def test_max_urls_holds_for_what_the_browser_asks(tmp_path):
    with browser_site.serve() as site:
        snap = archive.capture(site.base + "/feed.html", tmp_path / "c", depth=0, browser=True,
                               browser_timeout=15, max_urls=3)
    log = [json.loads(line) for line in (snap.path / "logs" / "capture.jsonl").read_text().splitlines()]
    fetched = [e for e in log if e["outcome"] == "fetched"]
    assert len(fetched) <= 3
    assert any(e["outcome"] == "skipped" and "--max-urls" in e.get("reason", "") and e["via"] == "browser"
               for e in log)
    assert {p for p, _ in site.requests} <= {"/feed.html", "/robots.txt", "/api/feed/1", "/api/feed/2",
                                             "/favicon.ico"}
