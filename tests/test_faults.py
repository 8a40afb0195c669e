"""Misbehaving servers and hostile input: the capture goes on and the snapshot says what happened."""
from __future__ import annotations

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
