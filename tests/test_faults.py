"""Misbehaving servers and hostile input: the capture goes on and the snapshot says what happened."""
from __future__ import annotations

import gzip
import hashlib
import json

from faultserver import drip, html
from warcio.archiveiterator import ArchiveIterator

from archive import capture, verify


def responses(snap) -> dict[str, tuple[dict, bytes]]:
    found = {}
    for warc in sorted((snap.path / "archive").glob("*.warc.gz")):
        with open(warc, "rb") as f:
            for rec in ArchiveIterator(f, no_record_parse=True):
                if rec.rec_type == "response":
                    found[rec.rec_headers.get_header("WARC-Target-URI")] = (
                        dict(rec.rec_headers.headers), rec.raw_stream.read())
    return found


def log(snap) -> dict[str, dict]:
    return {e["url"]: e for e in map(json.loads, (snap.path / "logs" / "capture.jsonl").read_text().splitlines())}


def test_redirect_body_is_kept_and_digested(faults, collection):
    body = b"<html><body>Moved <a href='/there'>here</a></body></html>"
    seed = faults.add("/here", b"HTTP/1.1 301 Moved Permanently\r\nLocation: /there\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    faults.add("/there", html("<p>arrived</p>"))
    snap = capture(seed, collection, depth=0)
    headers, block = responses(snap)[seed]
    assert block.endswith(body)
    assert headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert verify(snap.path).ok


def test_interim_1xx_answers_are_read_past(faults, collection):
    seed = faults.add("/hints", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                      b"HTTP/1.1 100 Continue\r\n\r\n" + html("<title>final</title>"))
    snap = capture(seed, collection, depth=0)
    headers, block = responses(snap)[seed]
    assert block.startswith(b"HTTP/1.1 200 OK\r\n") and block.endswith(b"<title>final</title>")
    assert log(snap)[seed]["status"] == 200
    assert verify(snap.path).ok


def test_lf_only_heads_and_bad_chunking_verify(faults, collection):
    lf = faults.add("/lf", b"HTTP/1.1 200 OK\nContent-Type: text/html\nTransfer-Encoding: chunked\n\n"
                    b"5\r\nhello\r\n0\r\n\r\n")
    bad = faults.add("/badchunk", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\nZZ\r\nworld\r\n0\r\n\r\n", close=True)
    for url in (lf, bad):
        snap = capture(url, collection, depth=0)
        report = verify(snap.path)
        assert report.ok, report.problems
    headers, _ = responses(snap)[bad]
    assert headers["WARC-Truncated"] == "disconnect"
    assert headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(b"hello").hexdigest()


def test_late_body_after_204_does_not_poison_the_next_request(faults, collection):
    faults.add("/page", html('<img src="/empty"><img src="/after.png">'))
    faults.add("/empty", b"HTTP/1.1 204 No Content\r\n\r\nleftover!")
    faults.add("/after.png", b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 3\r\n\r\npng")
    snap = capture(faults.url + "/page", collection, depth=0, per_host=1)
    entries = log(snap)
    assert entries[faults.url + "/empty"]["status"] == 204
    assert entries[faults.url + "/after.png"]["status"] == 200


def test_trickling_body_is_cut_and_marked_time(faults, collection):
    url = faults.add("/drip", drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 100, 0.3))
    snap = capture(url, collection, depth=0, min_rate=1000, rate_window=1.0)
    headers, block = responses(snap)[url]
    assert headers["WARC-Truncated"] == "time"
    assert 0 < len(block.partition(b"\r\n\r\n")[2]) < 100
    assert "truncated: time" in log(snap)[url]["reason"]
    assert verify(snap.path).ok


def test_max_size_cuts_body_and_marks_length(faults, collection):
    body = bytes(range(256)) * 400
    url = faults.add("/big", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    snap = capture(url, collection, depth=0, max_size=10_000)
    headers, block = responses(snap)[url]
    assert headers["WARC-Truncated"] == "length"
    assert block.partition(b"\r\n\r\n")[2] == body[:10_000]
    assert verify(snap.path).ok


def test_reset_mid_body_keeps_what_arrived(faults, collection):
    url = faults.add("/cut", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly part", close=True)
    snap = capture(url, collection, depth=0)
    headers, block = responses(snap)[url]
    assert headers["WARC-Truncated"] == "disconnect" and block.endswith(b"only part")


def test_redirected_robots_txt_is_obeyed(faults, collection):
    faults.add("/", html('<a href="/private/secret.html">s</a><a href="/open.html">o</a>'))
    faults.add("/robots.txt", b"HTTP/1.1 301 Moved\r\nLocation: /real-robots.txt\r\nContent-Length: 0\r\n\r\n")
    faults.add("/real-robots.txt", b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 35\r\n\r\n"
               b"User-agent: *\nDisallow: /private/\n")
    faults.add("/private/secret.html", html("secret"))
    faults.add("/open.html", html("open"))
    snap = capture(faults.url + "/", collection)
    assert "/private/secret.html" not in faults.requests and "/open.html" in faults.requests
    assert log(snap)[faults.url + "/private/secret.html"]["reason"] == "disallowed by robots.txt"


def test_endless_frames_and_imports_are_capped(faults, collection):
    def frame(conn, request):
        n = int(request.split(b" ")[1].split(b"?n=")[1]) if b"?n=" in request else 0
        conn.sendall(html(f'<iframe src="/frame?n={n + 1}"></iframe>'))
    faults.add("/frame", frame)
    snap = capture(faults.url + "/frame", collection, depth=0)
    assert 5 < len(faults.requests) < 20
    assert any("nested more than" in e.get("reason", "") for e in log(snap).values())


def test_hostile_charset_and_location_do_not_stop_the_capture(faults, collection):
    faults.add("/", html('<img src="/x.png"><a href="/caf\xc3\xa9">', extra="X: y\r\n")
               .replace(b"text/html", b"text/html; charset=base64"))
    faults.add("/x.png", b"HTTP/1.1 302 Found\r\nLocation: /caf\xc3\xa9.png\r\nContent-Length: 0\r\n\r\n")
    faults.add("/caf%C3%A9.png", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nimg")
    snap = capture(faults.url + "/", collection, depth=0)
    assert log(snap)[faults.url + "/caf%C3%A9.png"]["status"] == 200
    assert verify(snap.path).ok


def test_verify_goes_on_past_an_unreadable_member(faults, collection):
    faults.add("/", html("".join(f'<img src="/i{i}.png">' for i in range(6))))
    for i in range(6):
        faults.add(f"/i{i}.png", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nimage")
    snap = capture(faults.url + "/", collection, depth=0)
    warc = next((snap.path / "archive").glob("*.warc.gz"))
    data = bytearray(warc.read_bytes())
    starts = [i for i in range(len(data)) if data[i:i + 3] == b"\x1f\x8b\x08"]
    for start in (starts[3], starts[-2]):     # two damaged members, far apart
        data[start + 20] ^= 0xFF
    warc.write_bytes(bytes(data))
    report = verify(snap.path)
    located = sorted({p.offset for p in report.problems if p.offset is not None})
    assert starts[3] in located and starts[-2] in located


def test_deeply_nested_json_is_an_integrity_failure(capture_page):
    snap = capture_page("/contact.html")
    (snap.path / "datapackage-digest.json").write_text("[" * 100_000)
    report = verify(snap.path)
    assert not report.ok and any("not valid JSON" in p.what for p in report.problems)


def test_transient_errors_are_retried_honouring_retry_after(faults, collection):
    tries = []

    def flaky(conn, request):
        tries.append(1)
        if len(tries) == 1:
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy")
        elif len(tries) == 2:
            conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 4\r\n\r\nslow")
        else:
            conn.sendall(html("<title>finally</title>"))
    url = faults.add("/flaky", flaky)
    import time
    start = time.monotonic()
    snap = capture(url, collection, depth=0)
    assert len(tries) == 3 and time.monotonic() - start >= 2.0   # Retry-After 1 s, then backoff 2 s
    entries = [json.loads(line) for line in (snap.path / "logs" / "capture.jsonl").read_text().splitlines()]
    assert [(e["outcome"], e["status"]) for e in entries] == [("retried", 503), ("retried", 429), ("fetched", 200)]
    pages = (snap.path / "pages" / "pages.jsonl").read_text().splitlines()[1:]
    assert len(pages) == 1 and json.loads(pages[0])["status"] == 200
    assert len([l for l in (snap.path / "indexes" / "index.cdx").read_text().splitlines()]) == 3  # every try kept
    assert verify(snap.path).ok


def test_retries_are_bounded_and_long_waits_not_taken(faults, collection):
    tries = []
    url = faults.add("/down", lambda conn, req: (tries.append(1), conn.sendall(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))[1])
    later = faults.add("/later", lambda conn, req: (tries.append(2), conn.sendall(
        b"HTTP/1.1 503 Unavailable\r\nRetry-After: 3600\r\nContent-Length: 0\r\n\r\n"))[1])
    capture(url, collection, depth=0, retries=1)
    assert tries == [1, 1]
    snap = capture(later, collection, depth=0)
    assert tries.count(2) == 1 and log(snap)[later]["status"] == 503


def test_truncated_records_are_listed_as_incomplete(faults, collection):
    url = faults.add("/cut", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly part", close=True)
    snap = capture(url, collection, depth=0)
    meta = json.loads((snap.path / "datapackage.json").read_text())["archive"]
    assert meta["incomplete"] == [{"url": url, "truncated": "disconnect"}]


def test_noarchive_is_recorded_and_respected_on_request(faults, collection):
    faults.add("/", html('<a href="/meta.html">m</a><a href="/header.html">h</a><a href="/open.html">o</a>'))
    faults.add("/meta.html", html('<meta name="robots" content="noindex, NOARCHIVE"><p>meta</p>'))
    faults.add("/header.html", html("<p>header</p>", extra="X-Robots-Tag: noarchive\r\n"))
    faults.add("/open.html", html("<p>open</p>", extra="X-Robots-Tag: googlebot: noarchive\r\n"))
    faults.add("/robots.txt", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    snap = capture(faults.url + "/", collection)
    entries = log(snap)
    assert "noarchive (meta robots)" in entries[faults.url + "/meta.html"]["reason"]
    assert "noarchive (X-Robots-Tag)" in entries[faults.url + "/header.html"]["reason"]
    assert "noarchive" not in entries[faults.url + "/open.html"].get("reason", "")
    kept = capture(faults.url + "/", collection, respect_noarchive=True)
    urls = set(responses(kept))
    assert faults.url + "/open.html" in urls
    assert not {faults.url + "/meta.html", faults.url + "/header.html"} & urls
    assert log(kept)[faults.url + "/meta.html"]["outcome"] == "skipped"


def test_block_private_refuses_loopback_after_dns_and_on_redirects(faults, collection):
    import pytest as _pytest

    from archive.errors import NoAnswer
    url = faults.add("/", html("<p>private</p>"))
    with _pytest.raises(NoAnswer) as info:
        capture(url, collection, depth=0, block_private=True)
    assert "blocked-private" in str(info.value)
    port = int(faults.url.rsplit(":", 1)[1])
    with _pytest.raises(NoAnswer):   # a name that resolves to loopback is refused as well
        capture(f"http://intranet.example:{port}/", collection, depth=0, block_private=True,
                resolve=(("intranet.example", port, "127.0.0.1"),))
    assert faults.requests == []


def test_headers_go_to_seed_hosts_and_cookies_to_their_domain(site, collection, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tsecret\n")
    capture([site.main_url + "/"], collection, depth=0, headers=(("Authorization", "Bearer t0ken"),),
            cookies=str(cookies))
    main_headers = [h for host, path, h in site.requests if host == "main"]
    other_headers = [h for host, path, h in site.requests if host == "other"]
    assert main_headers and all(h.get("Authorization") == "Bearer t0ken" for h in main_headers)
    assert all("session=secret" in h.get("Cookie", "") for h in main_headers)
    assert other_headers and not any("Authorization" in h or "Cookie" in h for h in other_headers)
    meta = json.loads(next(collection.glob("*/datapackage.json")).read_text())["archive"]["options"]
    assert meta["headers"] == ["Authorization"] and "t0ken" not in json.dumps(meta)


def test_proxy_carries_every_request(site, faults, collection):
    import urllib.request
    seen, raw = [], []

    def proxy(conn, request):
        # a forward proxy for plain http: the request line holds the absolute URL
        line = request.split(b"\r\n", 1)[0].decode()
        seen.append(line)
        raw.append(request)
        with urllib.request.urlopen(line.split(" ")[1]) as upstream:
            body = upstream.read()
            ctype = upstream.headers.get("Content-Type", "application/octet-stream")
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode() + body)

    faults.default = proxy
    snap = capture([site.main_url + "/contact.html"], collection, depth=0,
                   proxy=faults.url.replace("://", "://alice:s3cret@"))
    assert seen and all(line.startswith(f"GET {site.main_url}/") for line in seen)
    assert len(seen) == len(site.paths("main"))
    assert all(b"\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0" in r for r in raw)   # alice:s3cret
    assert verify(snap.path).ok
    # the snapshot is shown to others: its metadata and warcinfo keep the proxy, not its password
    meta = json.loads((snap.path / "datapackage.json").read_text())["archive"]["options"]
    assert meta["proxy"] == faults.url.replace("://", "://alice@")
    warcs = b"".join(gzip.decompress(w.read_bytes()) for w in (snap.path / "archive").glob("*.warc.gz"))
    assert b"alice@" in warcs and b"s3cret" not in warcs


def test_calendar_trap_is_stopped_by_the_per_host_limit(faults, collection):
    def calendar(conn, request):
        n = int(request.split(b"?month=")[1].split(b" ")[0]) if b"?month=" in request else 0
        conn.sendall(html(f'<a href="/cal?month={n + 1}">next</a><a href="/cal?month={n - 1}">prev</a>'))
    faults.add("/cal", calendar)
    faults.add("/robots.txt", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    snap = capture(faults.url + "/cal", collection, depth=50, max_per_host=25)
    assert len(faults.requests) == 25
    assert any("over --max-per-host 25" in e.get("reason", "") for e in log(snap).values())


def test_decompression_bomb_does_not_exhaust_memory(faults, collection):
    import resource
    import zlib as _zlib
    comp = _zlib.compressobj(9, _zlib.DEFLATED, 31)
    bomb = comp.compress(b"<a href='/x'>" + b" " * (200 << 20)) + comp.flush()   # 200 MB of spaces
    url = faults.add("/bomb", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(bomb), bomb))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    snap = capture(url, collection, depth=0)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100
    headers, block = responses(snap)[url]
    assert block.endswith(bomb)   # stored as sent, still compressed
    assert verify(snap.path).ok


def test_urls_with_spaces_unicode_and_idn(faults, collection):
    port = int(faults.url.rsplit(":", 1)[1])
    faults.add("/", html(f'<img src="/a b.png"><img src="/é.png"><a href="http://bücher.example:{port}/x">i</a>'
                         f'<a href="http://[bad/">bad</a>'))
    faults.add("/a%20b.png", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    faults.add("/%C3%A9.png", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
    faults.add("/x", html("idn"))
    faults.add("/robots.txt", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    snap = capture(faults.url + "/", collection, resolve=(("xn--bcher-kva.example", port, "127.0.0.1"),))
    entries = log(snap)
    assert entries[faults.url + "/a%20b.png"]["status"] == 200
    assert entries[faults.url + "/%C3%A9.png"]["status"] == 200
    assert entries[f"http://xn--bcher-kva.example:{port}/x"]["status"] == 200
    assert any(e["outcome"] == "skipped" and e["url"] == "http://[bad/" for e in entries.values())


def test_redirect_loop_is_stopped_and_recorded(faults, collection):
    faults.add("/a", b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n")
    faults.add("/b", b"HTTP/1.1 302 Found\r\nLocation: /a\r\nContent-Length: 0\r\n\r\n")
    faults.add("/chain0", b"HTTP/1.1 301 Moved\r\nLocation: /chain1\r\nContent-Length: 0\r\n\r\n")
    for i in range(1, 15):
        faults.add(f"/chain{i}", f"HTTP/1.1 301 Moved\r\nLocation: /chain{i + 1}\r\nContent-Length: 0\r\n\r\n".encode())
    snap = capture(faults.url + "/a", collection, depth=0)
    assert faults.requests == ["/a", "/b"]          # the loop ends where a URL comes round again
    assert log(snap)[faults.url + "/b"]["status"] == 302
    faults.requests.clear()
    snap = capture(faults.url + "/chain0", collection, depth=0, max_redirects=5)
    assert len(faults.requests) == 6                # the seed and five hops, every one recorded
    assert any(e.get("reason") == "more than 5 redirects" for e in log(snap).values())
    assert len((snap.path / "indexes" / "index.cdx").read_text().splitlines()) == 6


def test_deflate_and_brotli_bodies_are_stored_as_sent(faults, collection):
    import zlib as _zlib

    import brotli
    page = b'<html><a href="/x">x</a><img src="/inner.png"></html>'
    deflated = _zlib.compress(page)
    raw_deflate = _zlib.compressobj(6, _zlib.DEFLATED, -15)
    raw = raw_deflate.compress(page) + raw_deflate.flush()
    for path, coding, body in (("/d", "deflate", deflated), ("/r", "deflate", raw), ("/b", "br", brotli.compress(page))):
        faults.add(path, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: %s\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (coding.encode(), len(body), body))
    faults.add("/inner.png", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\np")
    for path in ("/d", "/r", "/b"):
        faults.requests.clear()
        snap = capture(faults.url + path, collection, depth=0)
        headers, block = responses(snap)[faults.url + path]
        assert block.endswith(body if path == "/b" else (deflated if path == "/d" else raw))
        assert "/inner.png" in faults.requests, path    # decoded to find the links
        assert verify(snap.path).ok


def test_names_from_users_never_leave_the_collection(capture_page, collection, tmp_path):
    import pytest as _pytest

    from archive.errors import ArchiveError
    from archive.snapshot.store import Collection
    capture_page("/contact.html")
    store = Collection(collection)
    outside = tmp_path / "outside"
    outside.mkdir()
    for ref in ("../outside", "../../etc", "/etc", "..", "abcdef/../../x"):
        with _pytest.raises(ArchiveError):
            store.resolve(ref)
        with _pytest.raises(ArchiveError):
            store.partial(ref)


def test_collection_policy_forces_block_private(faults, collection):
    import pytest as _pytest

    from archive.errors import NoAnswer
    collection.mkdir(parents=True)
    (collection / "archive.toml").write_text("# URLs here come from others\nblock_private = true\n")
    with _pytest.raises(NoAnswer, match="blocked-private"):
        capture(faults.add("/", html("x")), collection, depth=0)


def test_connect_timeout_is_recorded(faults, collection):
    import socket
    # a listening socket whose backlog is full: the kernel leaves new SYNs unanswered
    jammed = socket.socket()
    jammed.bind(("127.0.0.1", 0))
    jammed.listen(0)
    port = jammed.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    try:
        faults.add("/", html(f'<img src="http://127.0.0.1:{port}/never.png">'))
        snap = capture(faults.url + "/", collection, depth=0, connect_timeout=0.5)
        reason = log(snap)[f"http://127.0.0.1:{port}/never.png"]["reason"]
        assert reason.startswith(("connect-timeout", "read-timeout")), reason
    finally:
        for s in fillers:
            s.close()
        jammed.close()


def test_block_private_checks_every_redirect_hop(faults, collection, monkeypatch):
    import archive.write.tap as fetch_module
    real = fetch_module.public_address

    def public_for_one_name(host, port):
        if host == "public.example":
            return "127.0.0.1"          # stands in for a public address
        return real(host, port)
    monkeypatch.setattr(fetch_module, "public_address", public_for_one_name)
    port = int(faults.url.rsplit(":", 1)[1])
    faults.add("/hop", f"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/inside\r\nContent-Length: 0\r\n\r\n".encode())
    faults.add("/inside", html("private"))
    snap = capture(f"http://public.example:{port}/hop", collection, depth=0, block_private=True)
    assert faults.requests == ["/hop"]
    assert log(snap)[f"http://127.0.0.1:{port}/inside"]["reason"].startswith("blocked-private")
