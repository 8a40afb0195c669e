"""`archive qa`: replay in headless Chromium compared with the capture, on loopback only.

The comparison is judged by a real browser on both sides: the live demo site and its replay
through pywb, rendered by Debian's Chromium. Processes are checked gone through /proc.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from archive import capture
from archive.demo import DemoSite
from archive.models import CaptureOptions
from archive.read.find import replay_url
from archive.browser import chromium as start_chromium
from archive.web.compare import BadImage, compare_images, text_match
from archive.web.qa import _free_port, qa
from archive.web.qarender import render
from tests import browser_site
from archive.web.replay import Replay, find_wayback

VIEWPORT = (1280, 800)


def png(width: int, height: int, colour: str = "white") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line or environment holds `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            try:
                if text.encode() in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


# -- the comparison itself ------------------------------------------------------------------

def test_identical_screenshots_match_fully():
    result = compare_images(png(40, 30), png(40, 30))
    assert result.match == 1.0 and result.different == 0


def test_a_changed_block_counts_its_pixels():
    changed = Image.new("RGB", (100, 100), "white")
    changed.paste((0, 0, 0), (0, 0, 10, 10))          # 100 of 10 000 pixels
    out = io.BytesIO()
    changed.save(out, "PNG")
    result = compare_images(png(100, 100), out.getvalue())
    assert result.match == pytest.approx(0.99) and result.different == 100
    diff = Image.open(io.BytesIO(result.diff_png))
    assert diff.format == "PNG" and diff.size == (100, 100)
    assert diff.convert("RGB").getpixel((5, 5)) == (255, 0, 0)      # marked as different
    assert diff.convert("RGB").getpixel((50, 50)) != (255, 0, 0)


def test_sizes_differ_the_union_is_compared_and_missing_area_is_different():
    result = compare_images(png(100, 100), png(100, 300))
    assert result.match == pytest.approx(1 / 3)
    diff = Image.open(io.BytesIO(result.diff_png)).convert("RGB")
    assert diff.size == (100, 300) and diff.getpixel((50, 200)) == (255, 0, 255)
    wider = compare_images(png(200, 100), png(100, 100))
    assert wider.match == pytest.approx(0.5) and wider.size_capture == (200, 100)


def test_a_one_level_colour_change_is_a_difference():
    assert compare_images(png(10, 10, "#808080"), png(10, 10, "#818080")).match == 0.0


def test_not_an_image_or_too_large_is_refused():
    with pytest.raises(BadImage):
        compare_images(b"<html>not a png</html>", png(10, 10))
    bomb = io.BytesIO()
    Image.new("1", (9000, 8000)).save(bomb, "PNG")                  # 72 M pixels, a few KB
    with pytest.raises(BadImage, match="over"):
        compare_images(png(10, 10), bomb.getvalue())


def test_text_match():
    assert text_match("", "") == 1.0
    assert text_match("a b c d", "a b c d") == 1.0
    assert text_match("a b c d", "") == 0.0
    assert 0.4 < text_match("one two three four five six", "one two three") < 0.8


# -- a replay judged by Chromium --------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    """The demo site, running for the whole module."""
    with DemoSite() as site:
        yield site


@pytest.fixture(scope="module")
def captured(demo, tmp_path_factory):
    """The demo home page and about page captured statically (depth 0)."""
    site = demo
    root = tmp_path_factory.mktemp("qa") / "snapshots"
    snap = capture([site.main_url + "/", site.main_url + "/about.html"], root, CaptureOptions(depth=0))
    return snap, root


@pytest.fixture(scope="module")
def browser():
    """A playwright Browser on a Chromium of archive.browser's, its group ended after."""
    with start_chromium() as running, running.connect() as connected:
        yield connected


def live_hosts(site: DemoSite) -> set[str]:
    return {urlsplit(site.main_url).netloc, urlsplit(site.other_url).netloc}


@pytest.mark.slow
def test_replay_renders_as_the_live_page(demo, captured, browser):
    """The premise of the screenshot match: a static capture of the demo home page replays
    pixel for pixel as the live page renders, at the same viewport."""
    site = demo
    snap, root = captured
    live = render(browser, site.main_url + "/", VIEWPORT, 30, live_hosts(site))
    stamp = "".join(ch for ch in snap.created if ch.isdigit())[:14]
    with Replay(root, port=_free_port(), wayback=find_wayback()) as replay:
        seen = render(browser, replay_url(replay.url, snap.id, stamp, site.main_url + "/"),
                      VIEWPORT, 30, {urlsplit(replay.url).netloc})
    assert not seen["refused"], seen["refused"]
    result = compare_images(live["screenshot"], seen["screenshot"])
    assert result.match >= 0.99, result
    assert text_match(live["text"], seen["text"]) >= 0.99


def test_qa_command_on_a_static_capture(demo, captured, tmp_path):
    """`archive qa` end to end in its own process: exit 0, qa.json, PNGs beside the snapshot,
    the snapshot unchanged, nothing asked of the live site, no Chromium or pywb left."""
    site = demo
    snap, root = captured
    before = folder_digest(snap.path)
    asked = len(site.requests)
    # a TMPDIR of its own, to find its Chromium by; short, as Chromium's sockets live under it
    scratch = Path(tempfile.mkdtemp(prefix="qa-", dir="/tmp"))
    env = dict(os.environ, TMPDIR=str(scratch))
    try:
        done = subprocess.run([sys.executable, "-m", "archive", "qa", "-C", str(root), snap.id[:12]],
                              capture_output=True, text=True, env=env, timeout=300)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "no capture screenshot" in done.stdout and "OK: 2 pages checked" in done.stdout
    out = root / ".qa" / snap.id
    report = json.loads((out / "qa.json").read_text())
    assert report["ok"] is True and report["snapshot_id"] == snap.id
    assert {p["url"] for p in report["pages"]} == {site.main_url + "/", site.main_url + "/about.html"}
    home = next(p for p in report["pages"] if p["url"] == site.main_url + "/")
    assert home["screenshot_match"] is None and home["capture_screenshot"] is False
    assert home["text_match"] >= 0.99 and home["text_source"] == "captured HTML"
    subs = home["subresources"]
    assert subs["count"] >= 10 and subs["replay_bad"] == subs["capture_bad"] and home["broken"] == []
    assert any(s["url"].endswith("/static/img/missing.png") and s["capture"] == 404 for s in subs["list"])
    assert home["refused"] == [] and home["passed"] is True
    assert home["status"] == {"capture": 200, "replay": 200}
    assert Image.open(out / home["replay_image"]).format == "PNG"
    assert folder_digest(snap.path) == before
    assert len(site.requests) == asked, "qa asked the live site"
    assert processes_mentioning(str(root)) == [] and processes_mentioning(str(scratch)) == []


@pytest.mark.slow
def test_an_image_missing_from_replay_is_seen(demo, captured, browser, tmp_path):
    """A copy of the snapshot whose index has lost an image's line: qa names the image broken
    at replay, and the replay's screenshot no longer matches the live page's."""
    site = demo
    snap, _root = captured
    scratch = tmp_path / "scratch"
    copy = scratch / snap.path.name
    shutil.copytree(snap.path, copy)
    index = copy / "indexes" / "index.cdx"
    image = site.main_url + "/static/img/photo.webp"   # the <picture> the page shows
    lines = index.read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line.split(" ", 2)[2])["url"] != image]
    assert len(kept) == len(lines) - 1
    index.write_text("".join(kept))

    report = qa(str(copy), scratch, min_match=0.95, browser=browser)
    home = next(p for p in report.pages if p.url == site.main_url + "/")
    assert [s.url for s in home.broken] == [image]
    assert home.to_json(0.95)["subresources"]["replay_bad"] == home.to_json(0.95)["subresources"]["capture_bad"] + 1

    live = render(browser, site.main_url + "/", VIEWPORT, 30, live_hosts(site))
    replayed = Image.open(report.out / home.replay_image)
    assert replayed.size[0] == VIEWPORT[0]
    assert compare_images(live["screenshot"], (report.out / home.replay_image).read_bytes()).match < 0.99


def test_bad_input_is_one_line(captured, tmp_path):
    snap, root = captured
    runs = [["qa", "-C", str(root), "deadbeefcafe"],
            ["qa", "-C", str(root), str(snap.path), "--out", str(snap.path / "qa")],
            ["qa", "-C", str(root), str(tmp_path / "nothing-here")],
            ["qa", "-C", str(root), str(tmp_path / "some.wacz")]]
    (tmp_path / "some.wacz").write_bytes(b"PK\x03\x04 not really")
    for argv in runs:
        done = subprocess.run([sys.executable, "-m", "archive", *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (argv, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert not (snap.path / "qa").exists()


def test_capture_browser_with_qa_prints_one_json_document(demo, tmp_path):
    """`capture --browser --qa`: the new snapshot is checked at the end; JSON mode prints one
    document, the capture's and its check."""
    site = demo
    root = tmp_path / "snapshots"
    done = subprocess.run([sys.executable, "-m", "archive", "capture", "-C", str(root), "--depth", "0", "--json",
                           "--browser", "--qa", "--min-match", "0.9", site.main_url + "/"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["counts"]["pages"] == 1 and data["qa"]["ok"] is True and data["qa"]["min_match"] == 0.9
    [page] = data["qa"]["pages"]
    assert page["url"] == site.main_url + "/" and page["text_source"] == "urn:text record"
    assert page["subresources"]["count"] >= 10 and page["broken"] == [] and page["refused"] == []
    assert page["screenshot_match"] >= 0.99 and page["text_match"] >= 0.99
    assert (root / ".qa" / data["id"] / "qa.json").is_file()


def test_hostile_page_entries_are_escaped_and_do_not_stop_the_run(captured, tmp_path):
    """A page list naming a URL with terminal controls and a page that is not http(s): each is
    that page's error, printed escaped; the other pages are still checked."""
    snap, _root = captured
    scratch = tmp_path / "scratch"
    copy = scratch / snap.path.name
    shutil.copytree(snap.path, copy)
    pages = copy / "pages" / "pages.jsonl"
    evil = "http://127.0.0.1:9/\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202eevil"
    with open(pages, "a", encoding="utf-8") as f:
        f.write(json.dumps({"url": evil, "ts": "2026-01-01T00:00:00Z"}) + "\n")
        f.write(json.dumps({"url": "javascript:alert(1)", "ts": "nonsense"}) + "\n")
    done = subprocess.run([sys.executable, "-m", "archive", "qa", "-C", str(scratch), str(copy), "--timeout", "20"],
                          capture_output=True, text=True, timeout=300)
    assert "\x1b" not in done.stdout + done.stderr and "\x07" not in done.stdout and "\u202e" not in done.stdout
    assert "\\x1b]52" in done.stdout and "Traceback" not in done.stderr
    assert "not an http(s) URL" in done.stdout
    report = json.loads((scratch / ".qa" / snap.id / "qa.json").read_text())
    assert len(report["pages"]) == 4
    assert [p["passed"] for p in report["pages"]][:2] == [True, True]
    assert done.returncode == (0 if report["ok"] else 1)


# -- snapshots captured with --browser: screenshots and text recorded by the capture ----------

@pytest.fixture(scope="module")
def browsed(tmp_path_factory):
    """The script-built fixture site (tests/browser_site.py, four pages) captured with
    --browser, the site still running to show that qa never asks it for anything."""
    root = tmp_path_factory.mktemp("browsed") / "snapshots"
    with browser_site.serve() as site:
        snap = capture(site.base + "/", root, CaptureOptions(depth=1, browser=True, browser_timeout=20))
        yield site, snap, root


def run_qa(*argv: str, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(tmp)) if tmp else None
    return subprocess.run([sys.executable, "-m", "archive", "qa", *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def test_qa_of_a_browser_capture_matches_and_leaves_no_process(browsed):
    site, snap, root = browsed
    before = folder_digest(snap.path)
    asked = len(site.requests)
    scratch = Path(tempfile.mkdtemp(prefix="qa-", dir="/tmp"))   # short: Chromium's sockets live under it
    try:
        done = run_qa("-C", str(root), str(snap.path), tmp=scratch)
        assert done.returncode == 0, done.stderr + done.stdout
        assert processes_mentioning(str(scratch)) == [] and processes_mentioning(str(root)) == []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert "OK: 4 pages checked" in done.stdout and "equal pixels" in done.stdout
    report = json.loads((root / ".qa" / snap.id / "qa.json").read_text())
    assert {p["url"] for p in report["pages"]} == {site.base + path for path in browser_site.PAGES}
    for page in report["pages"]:
        assert page["capture_screenshot"] and page["screenshot_match"] >= 0.99, page
        assert page["text_source"] == "urn:text record" and page["text_match"] >= 0.99, page
        assert page["refused"] == [] and page["broken"] == [] and page["passed"], page
        diff = Image.open(root / ".qa" / snap.id / page["diff_image"])
        assert diff.format == "PNG" and diff.size[0] == 1280
    feed = next(p for p in report["pages"] if p["url"].endswith("/feed.html"))
    asked_at_replay = {s["url"] for s in feed["subresources"]["list"]}
    assert {site.base + f"/img/feed-{n}.png" for n in (1, 2, 3)} <= asked_at_replay   # scrolled to the end
    assert folder_digest(snap.path) == before
    assert len(site.requests) == asked, "qa asked the live site"


def test_a_lost_image_lowers_the_match_and_min_match_decides(browsed, tmp_path):
    """A copy whose index lost the line of the image the article's script inserts: the replay's
    screenshot differs where the image was; --min-match above the new match exits 1."""
    site, snap, _root = browsed
    scratch = tmp_path / "scratch"
    copy = scratch / snap.path.name
    shutil.copytree(snap.path, copy)
    image = site.base + "/img/from-json.png"
    for index in (copy / "indexes").glob("*.cdx*"):
        lines = index.read_text().splitlines(keepends=True)
        index.write_text("".join(line for line in lines if json.loads(line.split(" ", 2)[2])["url"] != image))
    done = run_qa("-C", str(scratch), str(copy), "--json")
    assert done.returncode == 0, done.stderr          # 40 x 30 pixels of 1280 x 800: over 0.95
    article = next(p for p in json.loads(done.stdout)["pages"] if p["url"].endswith("/article.html"))
    assert 0.99 < article["screenshot_match"] < 0.9999 and article["broken"] == [image]
    assert article["text_match"] == 1.0
    diff = Image.open(scratch / ".qa" / snap.id / article["diff_image"]).convert("RGB")
    assert (255, 0, 0) in {colour for _, colour in diff.getcolors(1 << 24)}

    strict = run_qa("-C", str(scratch), str(copy), "--min-match", "0.9999")
    assert strict.returncode == 1, strict.stderr
    assert "FAIL (under 0.9999)" in strict.stdout and "FAILED: 4 pages checked, 1 under 0.9999" in strict.stdout
    assert "from-json.png (200 at capture, 404 at replay)" in strict.stdout
