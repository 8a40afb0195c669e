"""A capture of the demo site fetches exactly what is in scope, once each."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive import CaptureOptions, capture
from archive.errors import NoAnswer, UsageError
from waiting import Gate, default_sigint, fetched, partial_folder, wait_for

MAIN_DEPTH0 = {
    "/", "/static/css/site.css", "/static/css/typography.css", "/static/css/print.css",
    "/static/css/inline-import.css", "/static/fonts/body.woff2", "/static/fonts/heading.woff2",
    "/static/fonts/preload.woff2", "/static/js/app.js", "/static/js/module.js", "/favicon.ico",
    "/site.webmanifest", "/static/img/touch-icon.png", "/static/img/hero.jpg",
    "/static/img/inline-bg.png", "/static/img/header-bg.jpg", "/static/img/pattern.gif",
    "/static/img/search-btn.png", "/static/img/photo-small.jpg", "/static/img/photo-medium.jpg",
    "/static/img/photo-large.jpg", "/static/img/photo.webp", "/static/img/photo@2x.webp",
    "/static/img/photo-fallback.jpg", "/static/img/missing.png", "/static/img/svg-image.png",
    "/static/img/svg-xlink.png", "/static/img/map.png", "/media/clip.mp4", "/media/clip.webm",
    "/media/poster.jpg", "/media/captions.vtt", "/media/sound.mp3", "/media/diagram.svg",
    "/media/chart.svg", "/embed/widget.html", "/embed/widget.css",
}
OTHER_DEPTH0 = {"/cdn/lib.js"}
MAIN_DEPTH1 = MAIN_DEPTH0 | {
    "/robots.txt", "/about.html", "/static/img/team.jpg", "/blog/second-post.html",
    "/contact.html", "/map-target.html", "/redirect-me", "/moved.html", "/embed/full-table.html",
}
OTHER_DEPTH1 = OTHER_DEPTH0 | {
    "/robots.txt", "/articles/source-one.html", "/articles/source-two.html",
    "/static/other.css", "/static/figure.png", "/static/bg.png",
}
NEVER = {"/private/drafts.html", "/deeper/level2.html", "/blog/third-post.html",
         "/static/img/commented-out.png", "/blocked/page.html", "/articles/deeper.html"}


def log_entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "logs" / "capture.jsonl").read_text().splitlines()]


def test_depth1_fetches_every_requisite_and_linked_page_once(demo_capture):
    snap, site = demo_capture
    main, other = site.paths("main"), site.paths("other")
    assert set(main) == MAIN_DEPTH1
    assert set(other) == OTHER_DEPTH1
    assert len(main) == len(set(main)) and len(other) == len(set(other)), "a URL was fetched twice"
    assert not NEVER & (set(main) | set(other))


def test_index_holds_every_fetched_url(demo_capture):
    snap, site = demo_capture
    urls = {json.loads(line.split(" ", 2)[2])["url"]
            for line in (snap.path / "indexes" / "index.cdx").read_text().splitlines()}
    expected = {site.main_url + p for p in MAIN_DEPTH1} | {site.other_url + p for p in OTHER_DEPTH1}
    assert urls == expected


def test_log_says_why_urls_were_skipped(demo_capture):
    snap, site = demo_capture
    reasons = {e["url"]: e.get("reason", "") for e in log_entries(snap.path) if e["outcome"] == "skipped"}
    assert reasons[site.main_url + "/private/drafts.html"] == "disallowed by robots.txt"
    assert reasons[site.other_url + "/blocked/page.html"] == "disallowed by robots.txt"
    assert reasons[site.main_url + "/deeper/level2.html"] == "beyond depth 1"
    assert reasons["mailto:editor@tidewatch.example"] == "not http(s)"
    assert reasons["javascript:void(0)"] == "not http(s)"
    assert reasons["data:image/gif;base64,R0lGODlhAQABAAAAACw="] == "not http(s)"


def test_log_records_where_each_url_was_found(demo_capture):
    snap, site = demo_capture
    found = {e["url"]: e for e in log_entries(snap.path) if e["outcome"] == "fetched"}
    fonts = found[site.main_url + "/static/fonts/heading.woff2"]
    assert fonts["found_on"] == site.main_url + "/static/css/typography.css"
    assert fonts["via"] == "css@url"
    moved = found[site.main_url + "/moved.html"]
    assert moved["via"] == "redirect" and moved["depth"] == 1   # redirects do not consume depth
    widget_link = found[site.main_url + "/embed/full-table.html"]
    assert widget_link["depth"] == 1                               # iframes do not either
    assert found[site.main_url + "/redirect-me"]["status"] == 301
    assert found[site.main_url + "/static/img/missing.png"]["status"] == 404


def test_pages_list_seeds_and_linked_pages(demo_capture):
    snap, site = demo_capture
    lines = (snap.path / "pages" / "pages.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    pages = {p["url"]: p for p in map(json.loads, lines[1:])}
    seed = pages[site.main_url + "/"]
    assert seed["title"].startswith("What the tide pools told us")
    assert seed["status"] == 200 and seed["ts"].endswith("Z")
    assert site.main_url + "/moved.html" in pages and site.main_url + "/redirect-me" not in pages
    assert site.other_url + "/articles/source-one.html" in pages
    assert not any("/static/" in u for u in pages)


def test_depth0_is_page_and_requisites(site, collection):
    snap = capture([site.main_url + "/"], collection, CaptureOptions(depth=0))
    assert set(site.paths("main")) == MAIN_DEPTH0
    assert set(site.paths("other")) == OTHER_DEPTH0
    assert snap.counts["pages"] == 1


def test_same_host_keeps_links_on_the_seed_host(site, collection):
    capture([site.main_url + "/"], collection, CaptureOptions(same_host=True))
    assert set(site.paths("other")) == OTHER_DEPTH0      # requisites still come from any host
    assert "/about.html" in site.paths("main")


def test_include_and_exclude(site, collection):
    capture([site.main_url + "/"], collection,
            CaptureOptions(include=(r"/about\.html$",), exclude=(r"\.webp$",)))
    main = set(site.paths("main"))
    assert "/about.html" in main and "/contact.html" not in main
    assert "/static/img/photo.webp" not in main


def test_ignore_robots(site, collection):
    capture([site.main_url + "/"], collection, CaptureOptions(ignore_robots=True))
    assert "/private/drafts.html" in site.paths("main")
    assert "/robots.txt" not in site.paths("main")


def test_resolve_maps_names_to_loopback_without_dns(site, collection):
    port = int(site.main_url.rsplit(":", 1)[1])
    snap = capture([f"http://blog.tidewatch.test:{port}/about.html"], collection,
                   CaptureOptions(depth=0, resolve=(("blog.tidewatch.test", port, "127.0.0.1"),)))
    assert snap.counts["fetched"] >= 3
    assert site.requests[0][2]["Host"] == f"blog.tidewatch.test:{port}"


def test_seed_redirect_hops_are_recorded(site, collection):
    snap = capture([site.main_url + "/redirect-me"], collection, CaptureOptions(depth=0))
    assert site.paths("main")[:2] == ["/redirect-me", "/moved.html"]
    entries = log_entries(snap.path)
    assert [e["status"] for e in entries[:2]] == [301, 200]


def test_seed_answering_404_is_still_a_snapshot(site, collection):
    snap = capture([site.main_url + "/no-such-page"], collection, CaptureOptions(depth=0))
    assert snap.warnings and "404" in snap.warnings[0]
    assert (snap.path / "datapackage.json").exists()


def test_no_answer_writes_nothing(collection, unused_port):
    with pytest.raises(NoAnswer) as info:
        capture([f"http://127.0.0.1:{unused_port}/"], collection)
    assert "refused" in str(info.value)
    assert not [p for p in collection.iterdir() if not p.name.startswith(".")]
    assert not (collection / ".partial").exists()


def test_dns_failure_is_no_answer(collection):
    with pytest.raises(NoAnswer) as info:
        capture(["http://no-such-host.tidewatch.test/"], collection)
    assert "dns-failure" in str(info.value)


def test_bad_seed_urls(site, collection):
    with pytest.raises(UsageError):
        capture(["ftp://example.org/", "not a url"], collection)
    snap = capture(["http://[::1", site.main_url + "/contact.html"], collection, CaptureOptions(depth=0))
    failed = [e for e in log_entries(snap.path) if e["outcome"] == "failed"]
    assert failed[0]["url"] == "http://[::1" and failed[0]["reason"].startswith("invalid-url")


def test_failures_are_logged_and_capture_goes_on(site, collection, unused_port):
    import threading
    answer = threading.Event()   # set once the capture is over: the client's read timeout comes first

    def slow(handler):
        answer.wait(60)
        handler.send_bytes(200, b"late", "text/plain")

    def page(handler):
        body = (f'<img src="/slow.png"><a href="http://127.0.0.1:{unused_port}/x">dead</a>'
                f'<img src="/ok.png">').encode()
        handler.send_bytes(200, body, "text/html")

    site.routes[("main", "/faulty.html")] = page
    site.routes[("main", "/slow.png")] = slow
    try:
        snap = capture([site.main_url + "/faulty.html"], collection,
                       CaptureOptions(read_timeout=0.5, ignore_robots=True))
    finally:
        answer.set()
    by_url = {e["url"]: e for e in log_entries(snap.path)}
    assert by_url[site.main_url + "/slow.png"]["reason"].startswith("read-timeout")
    assert by_url[f"http://127.0.0.1:{unused_port}/x"]["reason"].startswith("connection-refused")
    assert by_url[site.main_url + "/ok.png"]["status"] == 404
    assert snap.counts["failed"] == 2


def test_same_site_follows_subdomains_only(site, collection):
    port = int(site.main_url.rsplit(":", 1)[1])
    other_port = int(site.other_url.rsplit(":", 1)[1])
    site.routes[("*", "/hub.html")] = lambda h: h.send_bytes(200, (
        f'<a href="http://www.tidewatch.org:{port}/contact.html">same site</a>'
        f'<a href="http://elsewhere.org:{other_port}/articles/source-two.html">other site</a>').encode(),
        "text/html")
    capture([f"http://blog.tidewatch.org:{port}/hub.html"], collection, same_site=True, ignore_robots=True,
            resolve=(("blog.tidewatch.org", port, "127.0.0.1"), ("www.tidewatch.org", port, "127.0.0.1"),
                     ("elsewhere.org", other_port, "127.0.0.2")))
    assert "/contact.html" in site.paths("main")
    assert "/articles/source-two.html" not in site.paths("other")


def test_urls_differing_in_case_are_fetched_once_each(site, collection):
    """Case tells URLs apart; a fragment or an escaped unreserved character does not."""
    site.routes[("main", "/case.html")] = lambda h: h.send_bytes(
        200, b'<img src="/Img.png"><img src="/img.png"><img src="/img.png#frag"><img src="/%69mg.png">',
        "text/html")
    capture([site.main_url + "/case.html"], collection, depth=0)
    assert sorted(site.paths("main")) == ["/Img.png", "/case.html", "/img.png"]


def test_warc_files_rotate(site, collection):
    snap = capture([site.main_url + "/"], collection, depth=0, warc_rotate_bytes=20_000)
    files = sorted((snap.path / "archive").glob("*.warc.gz"))
    assert len(files) > 2
    assert [f.name.split("-")[3] for f in files] == [f"{i:05d}" for i in range(len(files))]
    named = {json.loads(line.split(" ", 2)[2])["filename"]
             for line in (snap.path / "indexes" / "index.cdx").read_text().splitlines()}
    assert named == {f.name for f in files}
    from archive import verify
    assert verify(snap.path).ok


def test_max_urls_and_delay(site, collection):
    import time
    start = time.monotonic()
    snap = capture([site.main_url + "/about.html"], collection, depth=0, max_urls=3, delay=0.3)
    assert len(site.paths("main")) == 3
    assert time.monotonic() - start >= 0.6                 # three requests to one host, 0.3 s apart
    assert any("over --max-urls" in e.get("reason", "") for e in log_entries(snap.path))


def test_interrupt_keeps_partial_capture(site, collection):
    import os
    import signal
    import subprocess
    import sys

    site.routes[("main", "/slow.html")] = lambda h: h.send_bytes(
        200, "".join(f'<img src="/slow.html?{i}">' for i in range(30)).encode(), "text/html")
    gate = Gate(3).on_demo(site)   # the page and two images, then the capture waits on the server
    proc = subprocess.Popen([sys.executable, "-m", "archive", "capture", "-C", str(collection),
                             "--depth", "0", "--per-host", "1", site.main_url + "/slow.html"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_sigint)
    try:
        wait_for(gate.held.is_set, 60, "the capture to wait for its fourth answer")
        folder = wait_for(lambda: partial_folder(collection), 30, "the partial capture folder")
        wait_for(lambda: fetched(folder) >= 3, 30, "three exchanges written")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)   # the answers under way are cut, not awaited
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        gate.open()
    assert proc.returncode == 4, err
    assert "partial capture kept" in err and err.count("\n") == 1
    partial = next(p for p in (collection / ".partial").iterdir() if not p.name.endswith(".spool"))
    warc = next((partial / "archive").glob("*.warc.gz"))
    from warcio.archiveiterator import ArchiveIterator
    with open(warc, "rb") as f:
        types = [r.rec_type for r in ArchiveIterator(f)]
    assert types[0] == "warcinfo" and types.count("response") >= 3


@pytest.fixture
def unused_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
