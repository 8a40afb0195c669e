"""The web interface (`archive serve`) in headless Chromium, on a collection made here.

One `archive serve --allow-capture` process (and its pywb) for the module, one browser: search
finds a snapshot by a word of its article; the timeline of a twice-captured changing page says
"changed" and shows the diff; the cite panel's BibTeX parses; Verify says OK, and FAILED once a
byte of a WARC is flipped; the capture form completes with progress events; replay on its own
origin (replay.localhost, same port) loads the page's image after its empty script, and a
replayed script gets nothing of the interface; hostile titles stay text; and every page
has no serious or critical axe-core violation. Screenshots go to test-artifacts/webapp/.
"""
from __future__ import annotations

import http.client
import json
import re
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bibtexparser
import pytest
from ports import free_port
from waiting import children, kill_groups, wait_for
from webapp_site import HOSTILE_TITLE, WORD, WebappSite

from archive import capture
from archive.models import CaptureOptions
from archive.web.replay import ReplayUnavailable, find_wayback

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "webapp"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DEADLINE = 90.0


class Served:
    def __init__(self, base: str, root: Path, site: WebappSite, snaps: dict[str, Any], log: Path | None = None):
        self.base, self.root, self.site, self.snaps, self.log = base, root, site, snaps, log
        self.port = int(base.rsplit(":", 1)[1])
        self.replay = f"http://replay.localhost:{self.port}"   # replay's own origin, same port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    try:
        wayback = find_wayback()
    except ReplayUnavailable as exc:
        pytest.fail(f"pywb missing: {exc} (make test installs it)")
    root = tmp_path_factory.mktemp("webapp") / "snapshots"
    port = free_port()
    with WebappSite() as site:
        once = CaptureOptions(depth=0)
        snaps = {"article": capture([site.url + "/"], root, once),
                 "news1": capture([site.url + "/news"], root, once)}
        site.version = 2
        snaps["news2"] = capture([site.url + "/news"], root, once)
        site.interface, site.victim = f"http://127.0.0.1:{port}", snaps["news1"].id
        snaps["attack"] = capture([site.url + "/attack"], root, once)
        snaps["hostile"] = capture([site.url + "/hostile"], root, once)
        # the form's captures come from this test's loopback site: trusted local use, said so
        with serving(root, wayback, "--allow-capture", "--allow-private-capture", port=port) as base:
            yield Served(base, root, site, snaps, root.parent / f"serve-{port}.log")


@contextmanager
def serving(root: Path, wayback: Path, *extra: str, port: int | None = None) -> Iterator[str]:
    """`archive serve` on a free port in a session of its own; yield its base URL; kill its
    process group and pywb's whatever happens; no traceback in its log."""
    port = port or free_port()
    log = root.parent / f"serve-{port}.log"
    env = dict(os.environ, ARCHIVE_PYWB=str(wayback))
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "archive", "serve", "-C", str(root), "--port", str(port),
                                 *extra], stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
    groups = [proc.pid]
    try:
        wait_for(lambda: "serving" in log.read_text() or proc.poll() is not None, DEADLINE, "serve to start")
        assert proc.poll() is None, log.read_text()
        groups += children(proc.pid)   # pywb, in a process group of its own
        yield f"http://127.0.0.1:{port}"
    finally:
        kill_groups(groups + children(proc.pid))
        proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not AXE.is_file():
        pytest.fail(f"axe-core missing at {AXE} (make test installs it with npm)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(bypass_csp=True)   # lets the test inject axe-core; the CSP stays
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def check(page: Any, name: str) -> None:
    """Save a screenshot of the page, then fail on any serious or critical axe-core violation."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
           for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: " + "; ".join(bad)


def test_collection_lists_every_snapshot_newest_first_hostile_title_as_text(served, page):
    page.goto(served.base + "/")
    items = page.locator("li.snapshot")
    assert items.count() == 5
    shown = items.first.locator("h2").inner_text()   # newest first: the hostile page
    assert shown == HOSTILE_TITLE.replace("\u202e", "\ufffd")   # as text, and no bidi override
    assert page.evaluate("window.pwned") is None
    check(page, "collection")


def test_search_finds_a_snapshot_by_a_word_of_its_article(served, page):
    page.goto(served.base + "/")
    page.fill("#q-top", WORD)
    page.press("#q-top", "Enter")
    page.wait_for_url(re.compile(r"/search\?q="))
    hits = page.locator("ol.hits > li")
    assert hits.count() == 1
    assert hits.first.locator("mark").first.inner_text().lower() == WORD
    assert served.snaps["article"].id in hits.first.locator("h2 a").get_attribute("href")
    check(page, "search")


def test_timeline_of_a_changing_page_says_changed_and_shows_the_diff(served, page):
    page.goto(served.base + "/timeline?url=" + urllib.request.quote(served.site.url + "/news", safe=""))
    marks = page.locator("table.timeline span.mark").all_inner_texts()
    assert marks == ["first", "changed"]
    check(page, "timeline")
    page.click("text=Diff with the one before")
    page.wait_for_url(re.compile(r"/diff\?"))
    assert "one coin" in page.locator("table.diff td.del").inner_text()
    assert "two coins" in page.locator("table.diff td.add").inner_text()
    check(page, "diff")


def test_snapshot_page_cite_panel_bibtex_parses(served, page):
    snap = served.snaps["article"]
    page.goto(f"{served.base}/snapshots/{snap.id}")
    text = page.locator("#cite-bibtex").inner_text()
    library = bibtexparser.parse_string(text)
    assert len(library.entries) == 1 and not library.failed_blocks
    fields = library.entries[0].fields_dict
    assert "Flying reptiles" in fields["title"].value and snap.id in text
    assert page.locator("button.copy").count() >= 7   # every format and the verify command
    assert page.locator("#verify-command").inner_text().startswith("archive verify")
    check(page, "snapshot")


def test_verify_button_ok_then_failed_after_a_flipped_byte(served, page):
    snap = served.snaps["hostile"]
    page.goto(f"{served.base}/snapshots/{snap.id}")
    page.click("#verify-button")
    assert page.locator("#verify-result").inner_text().startswith("OK")
    check(page, "verified")
    warc = next((snap.path / "archive").glob("*.warc.gz"))
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 0x01
    warc.write_bytes(bytes(data))
    page.click("#verify-button")
    assert page.locator("#verify-result").inner_text().startswith("FAILED")


def test_capture_form_completes_with_progress_events(served, page):
    page.goto(served.base + "/capture")
    check(page, "capture")
    page.fill("#url", served.site.url + "/news")
    page.click("button[type=submit] >> text=Capture")
    page.wait_for_url(re.compile(r"/capture/[0-9a-f]+$"))
    page.wait_for_selector("#job[data-done]", timeout=DEADLINE * 1000)
    assert page.locator("#job").get_attribute("data-done") == "ok", page.locator("#job").inner_text()
    assert int(page.locator("#job").get_attribute("data-progress-events") or 0) >= 1
    check(page, "capture-done")
    page.click("text=See the snapshot")
    page.wait_for_url(re.compile(r"/snapshots/[0-9a-f]{64}$"))
    assert page.locator("h1").inner_text() == "News"


def test_capture_form_in_browser_mode_records_a_screenshot(served, page):
    page.goto(served.base + "/capture")
    page.fill("#url", served.site.url + "/news")
    page.check("#browser")
    page.click("button[type=submit] >> text=Capture")
    page.wait_for_url(re.compile(r"/capture/[0-9a-f]+$"))
    page.wait_for_selector("#job[data-done]", timeout=DEADLINE * 1000)
    assert page.locator("#job").get_attribute("data-done") == "ok", page.locator("#job").inner_text()
    page.click("text=See the snapshot")
    page.wait_for_url(re.compile(r"/snapshots/[0-9a-f]{64}$"))
    status, body = api(served, urllib.parse.urlsplit(page.url).path + "/screenshot")
    assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"


def test_replay_on_its_own_origin_loads_the_image_after_an_empty_script(served, page):
    snap = served.snaps["article"]
    page.goto(f"{served.base}/snapshots/{snap.id}")
    link = page.locator("table >> text=Replay").get_attribute("href")
    assert link.startswith(f"{served.replay}/{snap.id}/"), link   # the interface links to replay's origin
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    with page.expect_navigation(wait_until="load"):
        page.click("table >> text=Replay")
    assert page.url.startswith(served.replay + "/"), page.url
    try:
        wait_for(lambda: page.evaluate("document.readyState") == "complete" and page.locator("img").count() == 1,
                 30, "the replayed page")
    except AssertionError:
        raise AssertionError(f"{page.url}: {page.content()[:1500]}") from None
    assert page.evaluate("document.querySelector('img').naturalWidth") == 1
    assert page.evaluate("document.documentElement.dataset.ran") == "yes"
    assert not failed, failed


def test_a_replayed_script_gets_nothing_of_the_interface(served, page):
    """A captured page's script, replayed, tries to read the collection and the CSRF token and
    to post verify and capture, on its own origin and on the interface's: all of it fails, and
    the server ran no verification and no capture. Replayed as pywb rewrites it (wombat in front
    of its fetch) and as recorded (`id_`: no wombat, the browser's own fetch, as anyone can
    link to it); its image and stylesheet replay."""
    snap, victim = served.snaps["attack"], served.snaps["news1"].id
    page.goto(f"{served.base}/timeline?url=" + urllib.request.quote(served.site.url + "/attack", safe=""))
    link = page.locator("table.timeline >> text=Replay").get_attribute("href")
    with page.expect_navigation(wait_until="load"):
        page.click("table.timeline >> text=Replay")
    assert page.url.startswith(f"{served.replay}/{snap.id}/"), page.url
    assert page.evaluate("document.querySelector('img').naturalWidth") == 1
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(1, 2, 3)"
    outcomes = [attack_outcome(page)]
    stamp = link.split("/")[4]
    page.goto(link.replace(f"/{stamp}/", f"/{stamp}id_/", 1))   # the page as recorded, no wombat
    outcomes.append(attack_outcome(page))
    assert outcomes[1]["api_relative"].startswith("ok 404 404: not a replay path"), outcomes[1]   # it got here
    assert outcomes[1]["api_interface"].startswith("failed"), outcomes[1]   # the same-origin policy
    for got in outcomes:
        assert got["csrf"] == "none", got   # no interface page was read
        for name, outcome in got.items():
            assert victim not in outcome and '"total"' not in outcome and "csrf-token" not in outcome, (name, outcome)
            assert not outcome.startswith("ok 2"), (name, outcome)
    status, body = api(served, "/api/snapshots?page=1")
    row = next(r for r in json.loads(body)["snapshots"] if r["id"] == victim)
    assert not row["verified_at"], row   # no verification ran
    status, body = api(served, "/capture")
    assert "/stolen" not in body.decode() and "/stolen" not in served.site.asked   # no capture started
    assert "/stolen" not in served.log.read_text()


def attack_outcome(page: Any) -> dict[str, str]:
    wait_for(lambda: page.evaluate("document.documentElement.dataset.attack") is not None, 60, "the attack to end")
    got: dict[str, str] = json.loads(page.evaluate("document.documentElement.dataset.attack"))
    return got


def api(served: Served, path: str, **kw: Any) -> tuple[int, bytes]:
    request = urllib.request.Request(served.base + path, **kw)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_json_api_mirrors_the_command_line(served):
    status, body = api(served, "/api/snapshots")
    listed = json.loads(body)
    assert status == 200 and listed["total"] >= 5
    status, body = api(served, "/api/search?q=" + WORD)
    assert [h["snapshot_id"] for h in json.loads(body)["hits"]] == [served.snaps["article"].id]
    sid = served.snaps["article"].id
    status, body = api(served, f"/api/snapshots/{sid}/cite?format=bibtex")
    assert status == 200 and bibtexparser.parse_string(body.decode()).entries
    status, body = api(served, f"/api/snapshots/{sid}")
    assert status == 200 and json.loads(body)["id"] == sid
    status, body = api(served, f"/api/snapshots/{'0' * 64}")
    assert status == 404 and "error" in json.loads(body)
    status, _ = api(served, f"/api/snapshots/{sid}/verify", method="POST")
    assert status == 403   # no CSRF token
    status, _ = api(served, "/", headers={"Host": "attacker.example"})
    assert status == 403   # DNS rebinding: a Host that is not loopback


def test_a_post_without_the_csrf_token_is_refused(served):
    sid = served.snaps["article"].id
    status, body = api(served, f"/snapshots/{sid}/verify", method="POST", data=b"csrf=wrong",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    status, _ = api(served, "/capture", method="POST", data=b"url=http://127.0.0.1/&depth=0",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403


def test_serving_beyond_loopback_needs_a_token(tmp_path):
    result = subprocess.run([sys.executable, "-m", "archive", "serve", "-C", str(tmp_path), "--host", "0.0.0.0",
                             "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--token" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_download_gives_the_wacz_that_verifies_as_the_snapshot(served, tmp_path):
    from archive import verify

    snap = served.snaps["article"]
    status, body = api(served, f"/snapshots/{snap.id}/download.wacz")
    assert status == 200 and body[:2] == b"PK"
    (tmp_path / "got.wacz").write_bytes(body)
    report = verify(tmp_path / "got.wacz", expect=f"sha256:{snap.id}")
    assert report.ok, report.problems


def test_a_download_another_site_asks_for_is_refused_and_exports_are_bounded(served, monkeypatch):
    """An <img> on any page (a replayed one included) could make the browser ask for exports;
    Fetch Metadata says who asked, and at most two exports run at once."""
    from archive.web import pages

    sid = served.snaps["article"].id
    for site in ("cross-site", "same-site"):
        status, body = api(served, f"/snapshots/{sid}/download.wacz", headers={"Sec-Fetch-Site": site})
        assert status == 403 and body[:2] != b"PK", site
    status, body = api(served, f"/snapshots/{sid}/download.wacz", headers={"Sec-Fetch-Site": "same-origin"})
    assert status == 200 and body[:2] == b"PK"
    # two exports running (their slots held): a third is told to come back, nothing exported
    assert pages.EXPORTS.acquire(blocking=False) and pages.EXPORTS.acquire(blocking=False)
    try:
        status, headers = asgi_get(served, f"/snapshots/{sid}/download.wacz")
        assert status == 503 and headers.get("retry-after") == "5"
    finally:
        pages.EXPORTS.release()
        pages.EXPORTS.release()
    assert asgi_get(served, f"/snapshots/{sid}/download.wacz")[0] == 200


def asgi_get(served: Served, path: str) -> tuple[int, dict[str, str]]:
    """GET `path` from the interface application in this process (no server, no replay)."""
    import asyncio
    import concurrent.futures

    from archive.web.app import create_app
    from archive.web.render import Settings

    app = create_app(Settings(served.root))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"127.0.0.1:8080")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8080)}
    sent: list[dict[str, Any]] = []
    asked = False

    async def receive() -> dict[str, Any]:   # the request, then a disconnect once it is answered
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    async def run() -> None:
        nonlocal done
        done = asyncio.Event()
        await asyncio.wait_for(app(scope, receive, send), 120)
    done: asyncio.Event
    with concurrent.futures.ThreadPoolExecutor(1) as one:   # playwright's loop may run in this thread
        one.submit(asyncio.run, run()).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}


def test_bad_requests_are_pages_not_tracebacks(served):
    for path, code in [(f"/snapshots/{'f' * 64}", 404), ("/snapshots/..%2f..%2fetc", 404),
                       ("/timeline?url=javascript:alert(1)", 400), ("/diff?before=x&after=y&url=z", 404),
                       (f"/snapshots/{served.snaps['article'].id}/screenshot", 404),
                       (f"/api/snapshots/{served.snaps['article'].id}/cite?format=nope", 400)]:
        status, body = api(served, path)
        assert status == code, (path, status, body[:300])
        assert b"Traceback" not in body


def raw(port: int, method: str, path: str, host: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request to 127.0.0.1:`port` naming `host` (redirects not followed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, headers={"Host": host, **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_each_origin_answers_its_own_paths_only(served):
    port, sid = served.port, served.snaps["article"].id
    replay_host, interface = f"replay.localhost:{port}", f"127.0.0.1:{port}"
    _, _, body = raw(port, "GET", "/api/timemap?url=" + urllib.request.quote(served.site.url + "/", safe=""), interface)
    link = json.loads(body)["captures"][0]["replay"]
    assert link.startswith(f"http://{replay_host}/{sid}/"), link
    path = link.split(replay_host, 1)[1]
    # the replay origin: replay paths, GET and HEAD, with pywb's rewriting and Memento headers
    status, headers, body = raw(port, "GET", path, replay_host)
    assert status == 200 and "memento-datetime" in headers, (status, headers)
    assert f"<http://{replay_host}/{sid}/" in headers["link"] and 'rel="original"' in headers["link"], headers["link"]
    assert f"http://{replay_host}/{sid}/".encode() in body   # wombat's prefix: this origin
    for refused in ["/api/snapshots", f"/api/snapshots/{sid}", f"/snapshots/{sid}", "/search?q=" + WORD,
                    "/capture", "/timeline?url=x", "/assets/app.js", "/nothing"]:
        status, _, body = raw(port, "GET", refused, replay_host)
        assert status == 404 and sid.encode() not in body and b"csrf" not in body, (refused, status, body[:200])
    for target in ["/capture", f"/api/snapshots/{sid}/verify", path]:
        assert raw(port, "POST", target, replay_host)[0] == 405, target
    status, headers, _ = raw(port, "GET", "/", replay_host)
    assert status == 303 and headers["location"] == f"http://127.0.0.1:{port}/"
    # the interface: a replay path is sent to the replay origin, never served here
    status, headers, body = raw(port, "GET", path, interface)
    assert status == 307 and headers["location"] == link and b"wombat" not in body, (status, headers)
    # any other Host: nothing (DNS rebinding)
    for host in ["attacker.example", f"replay.localhost.attacker.example:{port}", f"localhost.attacker.example:{port}"]:
        assert raw(port, "GET", path, host)[0] == 403, host
        assert raw(port, "GET", "/api/snapshots", host)[0] == 403, host


def test_with_a_token_replay_has_a_second_port_and_every_request_needs_the_token(served, page):
    """Off loopback (here forced by --replay-port) replay is on a port of its own; both need the
    token; the form, without --allow-private-capture, refuses this loopback site and says why."""
    token, rport = "t0ken-for-the-test-only", free_port()
    sid = served.snaps["article"].id
    bearer = {"Authorization": f"Bearer {token}"}
    with serving(served.root, find_wayback(), "--token", token, "--replay-port", str(rport), "--allow-capture") as base:
        other = Served(base, served.root, served.site, served.snaps)
        assert api(other, "/")[0] == 401
        assert api(other, "/", headers=bearer)[0] == 200
        _, _, body = raw(other.port, "GET", "/api/timemap?url=" + urllib.request.quote(served.site.url + "/", safe=""),
                         "127.0.0.1", **bearer)
        link = json.loads(body)["captures"][0]["replay"]
        assert link.startswith(f"http://127.0.0.1:{rport}/{sid}/"), link
        path = link.split(str(rport), 1)[1]
        assert raw(rport, "GET", path, f"127.0.0.1:{rport}")[0] == 401   # replay needs it too
        status, headers, _ = raw(rport, "GET", path, f"127.0.0.1:{rport}", **bearer)
        assert status == 200 and f"<http://127.0.0.1:{rport}/{sid}/" in headers["link"]
        assert raw(rport, "GET", "/api/snapshots", f"127.0.0.1:{rport}", **bearer)[0] == 404
        assert raw(rport, "POST", f"/api/snapshots/{sid}/verify", f"127.0.0.1:{rport}", **bearer)[0] == 405
        status, headers, _ = raw(other.port, "GET", path, f"127.0.0.1:{other.port}", **bearer)
        assert status == 307 and headers["location"] == link
        status, body = api(other, f"/api/snapshots/{sid}/verify", method="POST", headers=bearer)
        assert status == 200 and json.loads(body)["ok"] is True
        # in the browser: the token once, then the interface, replay on the other port, the form
        page.goto(f"{base}/?token={token}")
        page.goto(f"{base}/snapshots/{sid}")
        with page.expect_navigation(wait_until="load"):
            page.click("table >> text=Replay")
        assert page.url.startswith(f"http://127.0.0.1:{rport}/{sid}/"), page.url
        wait_for(lambda: page.evaluate("document.querySelector('img') && document.querySelector('img').naturalWidth") == 1,
                 30, "the replayed image")
        page.goto(f"{base}/capture")
        assert "refused" in page.locator("main").inner_text()
        page.fill("#url", served.site.url + "/news")
        page.click("button[type=submit] >> text=Capture")
        page.wait_for_url(re.compile(r"/capture/[0-9a-f]+$"))
        page.wait_for_selector("#job[data-done]", timeout=DEADLINE * 1000)
        assert page.locator("#job").get_attribute("data-done") == "failed"
        said = page.locator("#job-state").inner_text()
        assert "blocked-private" in said and "not a public address" in said, said
        assert "blocked-private" in page.locator("#job-messages").inner_text()
        check(page, "capture-refused")


def test_allow_private_capture_is_refused_off_loopback_or_without_the_form(tmp_path):
    for extra in (["--host", "0.0.0.0", "--token", "t0ken-for-the-test-only", "--allow-capture"], []):
        result = subprocess.run([sys.executable, "-m", "archive", "serve", "-C", str(tmp_path), "--port",
                                 str(free_port()), "--allow-private-capture", *extra],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result
        assert "--allow-private-capture" in result.stderr and len(result.stderr.strip().splitlines()) == 1
