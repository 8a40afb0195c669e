"""What a browser would fetch (issue 16): each input of the issue with its right value.

Extraction-level tests feed real HTML/CSS through lxml and tinycss2; the end-to-end tests
capture small sites served on 127.0.0.1 (tests/discovery_site.py) and read the log and WARC.
"""
from __future__ import annotations

import html
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from discovery_site import KITCHEN_FILES, install
from warcio.archiveiterator import ArchiveIterator

from archive import capture
from archive.formats.urls import InvalidURL, canonicalize, surt_key
from archive.models import CaptureOptions, Kind
from archive.write.css import _walk as css_walk
from archive.write.css import css_references, may_refer
from archive.write.extract import Extracted, css_links, html_links
from archive.write.htmlrefs import REFERENCES

BASE = "http://ex.test/dir/page.html"


def found(html: bytes, charset: str | None = None, base: str = BASE) -> Extracted:
    result = Extracted()
    html_links([html[i:i + 5] for i in range(0, len(html), 5)], base, charset, result)
    return result


def pairs(result: Extracted) -> list[tuple[str, str, str]]:
    return [(f.url, str(f.kind), f.via) for f in result.found]


# -- 2. SVG sprites --------------------------------------------------------------------------
def test_svg_use_href_and_xlink_href_fetch_the_external_file_without_fragment():
    r = found(b'<svg><use href="icons/sprite.svg#star"/><use xlink:href="/other.svg#x"></use>'
              b'<use href="#local"/><image href="i.png"/><feImage href="f.png"/></svg>')
    assert pairs(r) == [
        ("http://ex.test/dir/icons/sprite.svg", "requisite", "use@href"),
        ("http://ex.test/other.svg", "requisite", "use@xlink:href"),
        ("http://ex.test/dir/i.png", "requisite", "image@href"),
        ("http://ex.test/dir/f.png", "requisite", "feimage@href"),
    ]


# -- 3. image-set() with strings --------------------------------------------------------------
def test_image_set_strings_in_a_stylesheet_and_a_style_attribute():
    css = '.hero { background-image: image-set("hero-1x.jpg" 1x, "hero-2x.jpg" 2x) }'
    sheet = Extracted()
    css_links([css], "http://ex.test/css/site.css", "css", sheet)
    assert [f.url for f in sheet.found] == ["http://ex.test/css/hero-1x.jpg", "http://ex.test/css/hero-2x.jpg"]
    r = found(b'<div style=\'background-image: -webkit-image-set("a.jpg" 1x, url(b.jpg) 2x)\'></div>')
    assert pairs(r) == [("http://ex.test/dir/a.jpg", "requisite", "div@style@image-set"),
                        ("http://ex.test/dir/b.jpg", "requisite", "div@style@url")]


# -- 4. queries in legacy encodings -----------------------------------------------------------
def test_query_is_encoded_in_the_documents_encoding_and_the_path_stays_utf8():
    page = '<a href="search?q=café">s</a><a href="café/?q=é">p</a><img src="i.png?€">'.encode("cp1252")
    r = found(page, charset="cp1252")
    assert [f.url for f in r.found] == ["http://ex.test/dir/search?q=caf%E9",
                                        "http://ex.test/dir/caf%C3%A9/?q=%E9",
                                        "http://ex.test/dir/i.png?%80"]
    declared = found(b'<meta charset="windows-1252"><a href="s?q=caf\xe9">x</a>')
    assert [f.url for f in declared.found] == ["http://ex.test/dir/s?q=caf%E9"]
    utf8 = found('<meta charset="utf-8"><a href="s?q=café">x</a>'.encode())
    assert [f.url for f in utf8.found] == ["http://ex.test/dir/s?q=caf%C3%A9"]
    # a character windows-1252 lacks: its numeric reference, percent-encoded
    lacking = found('<a href="s?q=日">x</a>'.encode("cp1252", "xmlcharrefreplace"), charset="cp1252")
    assert [f.url for f in lacking.found] == ["http://ex.test/dir/s?q=%26%2326085%3B"]


# -- 5. lazy-loading attributes ---------------------------------------------------------------
def test_lazy_loading_attributes_are_requisites_marked_lazy():
    r = found(b'<img src=placeholder.gif data-src=real.jpg data-srcset="a.jpg 480w, b.jpg 800w">'
              b'<img data-original=o.jpg data-lazy-src=l.jpg><div data-bg="bg.jpg"></div>'
              b'<div data-bg="url(\'bg2.jpg\')"></div><section data-background-image=s.jpg></section>')
    assert pairs(r) == [
        ("http://ex.test/dir/placeholder.gif", "requisite", "img@src"),
        ("http://ex.test/dir/real.jpg", "requisite", "img@data-src (lazy)"),
        ("http://ex.test/dir/a.jpg", "requisite", "img@data-srcset (lazy)"),
        ("http://ex.test/dir/b.jpg", "requisite", "img@data-srcset (lazy)"),
        ("http://ex.test/dir/o.jpg", "requisite", "img@data-original (lazy)"),
        ("http://ex.test/dir/l.jpg", "requisite", "img@data-lazy-src (lazy)"),
        ("http://ex.test/dir/bg.jpg", "requisite", "div@data-bg (lazy)"),
        ("http://ex.test/dir/bg2.jpg", "requisite", "div@data-bg (lazy)@url"),
        ("http://ex.test/dir/s.jpg", "requisite", "section@data-background-image (lazy)"),
    ]


# -- 7. prefetch and the other fetching link types --------------------------------------------
def test_link_prefetch_preload_modulepreload_fetched_and_preconnect_not():
    r = found(b'<link rel=prefetch href=next.js><link rel="preload" as="font" href="f.woff2">'
              b'<link rel=modulepreload href=m.mjs><link rel=preconnect href="https://cdn.test/">'
              b'<link rel=dns-prefetch href="//dns.test/"><link rel=alternate href=feed.xml>')
    assert [f.url for f in r.found] == ["http://ex.test/dir/next.js", "http://ex.test/dir/f.woff2",
                                        "http://ex.test/dir/m.mjs"]


# -- the HTML kind: the table, documents inside documents, nothing silently dropped ----------
def test_srcdoc_documents_are_parsed_with_the_parent_base():
    r = found(b'<base href="/b/"><iframe srcdoc="<img src=&quot;in.png&quot;>'
              b'<iframe srcdoc=\'<a href=deep.html>d</a>\'></iframe>"></iframe>')
    assert pairs(r) == [("http://ex.test/b/in.png", "requisite", "img@src"),
                        ("http://ex.test/b/deep.html", "page", "a@href")]


def test_every_table_row_fetches_through_the_extractor():
    """Each (element, attribute) of the one table, put in a page, yields a URL of its Kind."""
    for (tag, name), ref in REFERENCES.items():
        element = "div" if tag == "*" else tag
        value = {"srcset": "x.png 1x", "css": "background:url(x.png)", "document": "<img src=x.png>"}.get(
            ref.form.value, "x.png")
        extra = ' rel="stylesheet"' if ref.when == "rel" else ' type="image"' if ref.when == "type=image" else ""
        markup = f'<{element}{extra} {name}="{value}"></{element}>'
        if tag in ("use", "image", "feimage"):
            markup = f"<svg>{markup}</svg>"
        r = found(markup.encode())
        assert [f.url for f in r.found] == ["http://ex.test/dir/x.png"], markup
        expected = Kind.REQUISITE if ref.form.value == "document" else ref.kind
        assert r.found[0].kind is expected, markup


def test_references_that_cannot_become_urls_are_skipped_with_a_reason():
    r = found(b'<img src="http://[::1">'
              b'<a href="javascript:go()">j</a><iframe srcdoc="<img src=\'http://a b/\'>"></iframe>'
              b'<div style="background:url(ftp://x/y.png)"></div><base href="http://[bad">')
    assert r.found == []
    assert [(s.via, why) for s, why in r.skipped] == [
        ("img@src", r.skipped[0][1]), ("a@href", "not http(s)"), ("img@src", r.skipped[2][1]),
        ("div@style@url", "not http(s)"), ("base@href", r.skipped[4][1])]
    assert all(why for _, why in r.skipped)


# -- the CSS kind: tinycss2, every escape form --------------------------------------------------
def test_css_escapes_strings_urls_imports_and_font_face():
    css = r'''
    @namespace svg url(http://www.w3.org/2000/svg); @namespace "http://www.w3.org/1999/xhtml";
    @import "a\2e css";  @import url(b.css) screen;  @IMPORT url( "c.css" );
    /* url(commented.png) */
    @font-face { font-family: X; src: local("X"), url(f\.woff2) format("woff2"), url('f.woff') format("woff") }
    .a { background: url(sp\ ace.png) }  .b { cursor: url("cur\
sor.cur"), auto }
    .c { list-style-image: u\72l(esc.png) } .d { border-image: url('q\'uote.png') 30 }
    .e { mask-image: url(\1F600.svg) } .f { content: "url(not-a-url.png)" }
    .g { background: image-set("i1.avif" type("image/avif") 1x, 'i2.jpg' 1x) }
    '''
    assert list(css_references(css)) == [
        ("a.css", "import"), ("b.css", "import"), ("c.css", "import"),
        ("f.woff2", "url"), ("f.woff", "url"), ("sp ace.png", "url"), ("cursor.cur", "url"),
        ("esc.png", "url"), ("q'uote.png", "url"), ("\U0001F600.svg", "url"),
        ("i1.avif", "image-set"), ("i2.jpg", "image-set")]


def test_hostile_css_is_linear_and_never_overflows():
    assert list(css_references("(" * 50_000 + "url(deep.png)")) == [("deep.png", "url")]
    assert list(css_references("url(" * 20_000)) == []


# every piece that starts, ends, hides or spells a reference, in several cases and escapes
CSS_PIECES = ["url(", "URL(", "uRl", "src(", "SRC(", "image-set(", "-webkit-Image-Set(", "@import",
              "@IMPORT", "@namespace", "u\\72l(", "\\", "(", ")", '"', "'", "/*", "*/", " ", "\n",
              "a.png", ";", "{", "}", ",", "1x", "\u0130", "\u212a", "\x00", "ur", "l(", "@", "im"]


@given(st.lists(st.sampled_from(CSS_PIECES), max_size=30).map("".join))
@settings(max_examples=400, deadline=None)
def test_css_shortcut_yields_what_the_whole_walk_yields(text: str) -> None:
    """may_refer's False is never wrong: a text it lets skip yields nothing when tokenized."""
    assert list(css_references(text)) == list(css_walk(text))
    if list(css_walk(text)):
        assert may_refer(text)


def test_css_without_a_reference_is_not_tokenized(monkeypatch: pytest.MonkeyPatch) -> None:
    import tinycss2

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("tokenized")
    plain = "p { color: red; margin: 0 auto } /* urls: none */ .a::before { content: 'x' }"
    assert not may_refer(plain)
    monkeypatch.setattr(tinycss2, "parse_component_value_list", refuse)
    assert list(css_references(plain)) == []
    with pytest.raises(AssertionError):   # one backslash, or one needle, and it is tokenized
        list(css_references(plain + " .b { content: '\\2e' }"))
    with pytest.raises(AssertionError):
        list(css_references(plain + " .c { background: URL(c.png) }"))


# -- end to end: small sites on 127.0.0.1 --------------------------------------------------------
def log_of(snapshot) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in (snapshot.path / "logs" / "capture.jsonl").read_text().splitlines()]


def exchanges(snapshot) -> list[tuple[str, int, str, str]]:  # type: ignore[no-untyped-def]
    """(URL, status, Cookie sent, Set-Cookie received) of each response record, in order."""
    out, cookies = [], {}
    for warc in sorted((snapshot.path / "archive").glob("*.warc*")):
        with open(warc, "rb") as f:
            for rec in ArchiveIterator(f):
                uri = rec.rec_headers.get_header("WARC-Target-URI")
                if rec.rec_type == "request":
                    cookies[rec.rec_headers.get_header("WARC-Concurrent-To")] = rec.http_headers.get_header("Cookie") or ""
                elif rec.rec_type == "response":
                    out.append((uri, rec.http_headers.get_statuscode(), rec.rec_headers.get_header("WARC-Record-ID"),
                                rec.http_headers.get_header("Set-Cookie") or ""))
    return [(u, int(s), cookies.get(rid, ""), sc) for u, s, rid, sc in out]


def pages_of(snapshot) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in (snapshot.path / "pages" / "pages.jsonl").read_text().splitlines()[1:]]


@pytest.fixture
def walls(site):  # type: ignore[no-untyped-def]
    install(site)
    return site


def test_cookie_wall_every_hop_recorded_and_the_article_captured(walls, collection):
    url = walls.main_url
    snap = capture([url + "/article"], collection, CaptureOptions(depth=0))
    assert exchanges(snap) == [(f"{url}/article", 302, "", "visited=1; Path=/"),
                               (f"{url}/article", 200, "visited=1", "")]
    assert snap.counts.get("failed", 0) == 0
    assert [p["title"] for p in pages_of(snap)] == ["Article"]
    snap = capture([url + "/wall/a"], collection, CaptureOptions(depth=1))
    got = exchanges(snap)
    assert got[:3] == [(f"{url}/wall/a", 302, "", ""),
                       (f"{url}/wall/b", 302, "", "ok=yes; Path=/wall"),
                       (f"{url}/wall/a", 200, "ok=yes", "")]
    # RFC 6265 path rules: the cookie of Path=/wall goes to /wall/pic.png, not to /members
    assert sorted(e for e in got[3:] if not e[0].endswith("/robots.txt")) == [(f"{url}/members", 403, "", ""), (f"{url}/wall/pic.png", 200, "ok=yes", "")]
    assert snap.counts.get("failed", 0) == 0
    assert [p["title"] for p in pages_of(snap)][0] == "Past the wall"
    # the cookie stays inside the capture: nothing is written next to the snapshot
    assert not list(snap.path.rglob("*cookie*"))


def test_a_loop_cookies_do_not_end_fails_at_the_redirect_limit(walls, collection):
    snap = capture([walls.main_url + "/loop", walls.main_url + "/kitchen"], collection,
                   CaptureOptions(depth=0, max_redirects=4))
    hops = [e for e in exchanges(snap) if e[0].endswith("/loop")]
    assert [(s, c) for _, s, c, _ in hops] == [(302, ""), (302, "n=1"), (302, "n=2"), (302, "n=3"), (302, "n=4")]
    failed = [e for e in log_of(snap) if e["outcome"] == "failed"]
    assert [(e["url"], e["reason"]) for e in failed] == [(walls.main_url + "/loop", "more than 4 redirects")]
    assert snap.counts["failed"] == 1


def test_a_loop_without_cookies_stops_where_it_comes_round_and_fails(walls, collection):
    snap = capture([walls.main_url + "/plain/a"], collection, CaptureOptions(depth=0))
    assert [e[0].removeprefix(walls.main_url) for e in exchanges(snap)] == ["/plain/a", "/plain/b"]
    failed = [(e["url"], e["reason"]) for e in log_of(snap) if e["outcome"] == "failed"]
    assert failed == [(walls.main_url + "/plain/a", "redirect loop")]


def test_cookies_file_seeds_the_jar_for_its_domain_only(walls, collection, tmp_path):
    jar = tmp_path / "cookies.txt"
    jar.write_text("# Netscape HTTP Cookie File\n"
                   "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\ts3cret\n"
                   "other.test\tFALSE\t/\tFALSE\t0\tleak\tno\n")
    snap = capture([walls.main_url + "/members"], collection, CaptureOptions(depth=0, cookies=str(jar)))
    assert [(s, c) for _, s, c, _ in exchanges(snap)] == [(200, "session=s3cret")]


def test_a_seed_that_is_only_a_refresh_gets_its_target_at_depth_0(walls, collection):
    snap = capture([walls.main_url + "/refresh"], collection, CaptureOptions(depth=0))
    got = {e["url"].removeprefix(walls.main_url): (e["outcome"], e["via"], e["depth"]) for e in log_of(snap)}
    assert got["/r/"] == ("fetched", "meta@refresh", 0)
    assert got["/r/pic.png"][0] == "fetched"
    assert got["/r/deeper.html"][0] == "skipped"   # a link of the target is one level deeper


def test_legacy_encoding_query_sent_as_the_browser_sends_it(walls, collection):
    capture([walls.main_url + "/legacy"], collection, CaptureOptions(depth=1))
    assert "/search?q=caf%E9" in walls.paths()


def test_kitchen_sink_page_fetches_what_a_browser_would(walls, collection):
    """SVG sprites, image-set strings, lazy loaders, prefetch, srcdoc: one capture, all fetched."""
    snap = capture([walls.main_url + "/kitchen"], collection, CaptureOptions(depth=0))
    requested = set(walls.paths())
    assert {f for f in KITCHEN_FILES if f.startswith("/k/")} <= requested
    vias = {e["url"].removeprefix(walls.main_url): e["via"] for e in log_of(snap)}
    assert vias["/k/real.jpg"] == "img@data-src (lazy)"
    assert vias["/k/sprite.svg"] == "use@href"
    assert vias["/k/hero-2x.jpg"] == "style@image-set"
    skipped = [e for e in log_of(snap) if e["outcome"] == "skipped"]
    assert [(e["url"], e["reason"]) for e in skipped] == [("javascript:void(0)", "not http(s)")]


# -- the URL kind: one WHATWG URL Standard parser (ada-url) --------------------------------------
@pytest.mark.parametrize("reference, base, expected", [
    # backslashes are slashes in special URLs (URL Standard 4.4, "special authority" states)
    ("http:\\\\ex.test\\a\\b", None, "http://ex.test/a/b"),
    ("\\img\\x.png", BASE, "http://ex.test/img/x.png"),
    # tabs and newlines anywhere are removed; leading/trailing C0 controls and spaces trimmed
    ("ht\ttp://ex.te\nst/a\r/b", None, "http://ex.test/a/b"),
    ("\x00\x1f  /x.png \x0c", BASE, "http://ex.test/x.png"),
    # IPv4 in its number forms (URL Standard 3.5, IPv4 parser)
    ("http://0x7f.1/", None, "http://127.0.0.1/"),
    ("http://2130706433/", None, "http://127.0.0.1/"),
    ("http://0177.0.0.01/", None, "http://127.0.0.1/"),
    ("http://[0:0::1]:8080/", None, "http://[::1]:8080/"),
    # default ports dropped, others kept
    ("https://ex.test:443/", None, "https://ex.test/"),
    ("http://ex.test:0443/", None, "http://ex.test:443/"),
    # host names per UTS 46 (case folded, full stops, punycode)
    ("http://ＥＸ。test/", None, "http://ex.test/"),
    ("http://Faß.example/", None, "http://xn--fa-hia.example/"),
    # dot segments, also percent-encoded ones
    ("a/%2e%2E/b/./c", BASE, "http://ex.test/dir/b/c"),
    # scheme-relative and query-only references
    ("//other.test/p", BASE, "http://other.test/p"),
    ("?q=1", BASE, "http://ex.test/dir/page.html?q=1"),
])
def test_url_standard_edge_cases(reference, base, expected):
    assert canonicalize(reference, base) == expected


@pytest.mark.parametrize("reference", ["http://ex.test:65536/", "http://[::1/", "http://a b/",
                                       "http://1.2.3.4.5/", "http://0x100000000/"])
def test_invalid_urls_by_the_standard_are_refused(reference):
    with pytest.raises(InvalidURL):
        canonicalize(reference)


def test_ordinary_urls_keep_their_canonical_form_and_surt_key():
    """Snapshots made before the URL Standard parser keep their CDXJ keys."""
    for url, canonical, key in [
        ("HTTP://www.Example.COM:80/a/./b/../c?q=1&a=2#f", "http://www.example.com/a/c?q=1&a=2",
         "com,example)/a/c?a=2&q=1"),
        ("http://ex.org/%7euser/a|b^c?x=|{}", "http://ex.org/~user/a%7Cb%5Ec?x=%7C%7B%7D",
         "org,ex)/~user/a|b^c?x=|{}"),
        ("http://bücher.example/ä?ö=1", "http://xn--bcher-kva.example/%C3%A4?%C3%B6=1",
         "example,xn--bcher-kva)/%c3%a4?%c3%b6=1"),
    ]:
        assert canonicalize(url) == canonical
        assert surt_key(canonical) == key


# -- the judge: headless Chromium ------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
EDGE_HREFS = ["http:\\\\127.0.0.1\\a\\b", "ht\ttp://127.0.0.1/t\nab", "http://0x7f.1/n", "http://2130706433/m",
              "HTTP://127.0.0.1:80/./x/../y", "a/%2e%2E/b/./c", "/p?q=caf\u00e9&r=\u20ac", "caf\u00e9/d\u00e9j\u00e0?x=\u00e9",
              "//127.0.0.1/s?a=|{}`^'\"", "http://\uff25\uff38\u3002test/"]


def test_chromium_fetches_nothing_the_capture_missed_and_parses_urls_alike(walls, collection):
    """Chromium loads the kitchen page: every URL it asks for was captured. It also resolves
    the URL edge cases (in a windows-1252 page): the capture's URLs are the same."""
    sync_api = pytest.importorskip("playwright.sync_api")
    anchors = "".join(f'<a href="{html.escape(h)}">{i}</a>' for i, h in enumerate(EDGE_HREFS))
    edge_page = f"<!doctype html><title>Edges</title>{anchors}".encode("cp1252", "xmlcharrefreplace")
    walls.routes[("main", "/edges")] = lambda h: h.send_bytes(200, edge_page, "text/html; charset=windows-1252")
    snap = capture([walls.main_url + "/kitchen"], collection, CaptureOptions(depth=0))
    captured = {e["url"] for e in log_of(snap) if e["outcome"] == "fetched"}
    asked: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: asked.append(r.url))
            page.goto(walls.main_url + "/kitchen", wait_until="networkidle")
            page.goto(walls.main_url + "/edges", wait_until="load")
            hrefs = page.eval_on_selector_all("a", "as => as.map(a => a.href)")
        finally:
            browser.close()
    from_kitchen = {canonicalize(u) for u in asked if "/edges" not in u and not u.endswith("/favicon.ico")}
    assert len(from_kitchen) >= 8
    assert from_kitchen <= captured, f"Chromium fetched what the capture missed: {from_kitchen - captured}"
    page_found = Extracted()
    html_links([edge_page], walls.main_url + "/edges", "cp1252", page_found)
    ours = [f.url for f in page_found.found]
    assert ours == [canonicalize(h) for h in hrefs]   # Chromium's href, canonical (no fragment)
    assert any(u.endswith("/p?q=caf%E9&r=%80") for u in ours)
