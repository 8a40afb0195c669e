"""Links and requisites from hostile and ordinary HTML and CSS."""
from __future__ import annotations

import codecs

from archive.models import Kind
from archive.write.extract import Extracted, css_links, html_links, parse_srcset

BASE = "http://ex.test/dir/page.html"


def found(html: bytes, charset: str | None = None, base: str = BASE) -> Extracted:
    result = Extracted()
    html_links([html[i:i + 7] for i in range(0, len(html), 7)], base, charset, result)  # tiny blocks
    return result


def urls(result: Extracted, kind: Kind | None = None) -> list[str]:
    return [f.url for f in result.found if kind is None or f.kind is kind]


def test_base_href_and_entities():
    r = found(b'<base href="/other/"><a href="x.html?a=1&amp;b=2">x</a><img src="i.png">')
    assert urls(r, Kind.PAGE) == ["http://ex.test/other/x.html?a=1&b=2"]
    assert urls(r, Kind.REQUISITE) == ["http://ex.test/other/i.png"]


def test_srcset_picture_and_media():
    r = found(b'<picture><source srcset="a.webp 1x, b.webp 2x"><img src=c.jpg srcset="d.jpg 100w,e.jpg"></picture>'
              b'<video poster=p.jpg><source src=v.mp4><track src=t.vtt></video><audio src=s.mp3></audio>')
    assert sorted(u.rsplit("/", 1)[1] for u in urls(r)) == sorted(
        ["a.webp", "b.webp", "c.jpg", "d.jpg", "e.jpg", "p.jpg", "v.mp4", "t.vtt", "s.mp3"])


def test_link_rels_and_frames():
    r = found(b'<link rel="stylesheet" href="s.css"><link rel="alternate" href="feed.xml">'
              b'<link rel="preload" as="image" imagesrcset="p1.png 1x, p2.png 2x">'
              b'<link rel="Shortcut Icon" href="/f.ico"><iframe src="f.html"></iframe><frame src="g.html">')
    assert urls(r, Kind.REQUISITE) == ["http://ex.test/dir/s.css", "http://ex.test/dir/p1.png",
                                       "http://ex.test/dir/p2.png", "http://ex.test/f.ico"]
    assert urls(r, Kind.EMBED) == ["http://ex.test/dir/f.html", "http://ex.test/dir/g.html"]


def test_skipped_schemes_fragments_and_bad_urls():
    r = found(b'<a href="#top">t</a><a href="mailto:a@b">m</a><a href="http://[bad">b</a>'
              b'<a href=" /ok.html ">ok</a><a href="data:text/html,hi">d</a>')
    assert urls(r) == ["http://ex.test/ok.html"]
    assert [(s.url, why) for s, why in r.skipped][0] == ("mailto:a@b", "not http(s)")
    assert len(r.skipped) == 3


def test_inline_styles_and_style_elements():
    r = found(b'<div style="background:url(&quot;bg.png&quot;)"></div>'
              b'<style>@import "imp.css"; /* url(no.png) */ .a{background:url( \'q.png\' )}</style>')
    assert sorted(urls(r)) == ["http://ex.test/dir/bg.png", "http://ex.test/dir/imp.css",
                               "http://ex.test/dir/q.png"]


def test_title_and_malformed_markup():
    r = found(b"<html><head><title> A   <b>broken</title><body><p><a href=one.html>1<a href='two.html'>2"
              b"<img src=x.png<img src=y.png></table></div>")
    assert r.title == "A <b>broken"
    assert "http://ex.test/dir/one.html" in urls(r) and "http://ex.test/dir/two.html" in urls(r)


def test_charsets_from_header_meta_and_bom():
    text = '<title>Café</title><a href="/é.html">'
    assert found(text.encode("latin-1"), charset="iso8859-1").title == "Café"
    assert found(b'<meta charset="windows-1252">' + text.encode("cp1252")).title == "Café"
    assert found(codecs.BOM_UTF8 + text.encode("utf-8"), charset="iso8859-1").title == "Café"
    assert urls(found(text.encode("utf-8")))[0] == "http://ex.test/%C3%A9.html"
    assert found(b"<title>\xff\xfe broken \xc3</title>").title is not None   # undecodable: replaced


def test_css_imports_urls_and_comments():
    r = Extracted()
    css_links(['@import url("a.css") print; @import \'b.css\';\n/* url(c.png) */',
               ' .x{src:url(d.woff2) format("woff2"), url("data:font/woff2;base64,AA")}'],
              "http://ex.test/css/main.css", "css", r)
    assert urls(r) == ["http://ex.test/css/a.css", "http://ex.test/css/b.css",
                       "http://ex.test/css/d.woff2"]
    assert [f.via for f in r.found] == ["css@import", "css@import", "css@url"]


def test_parse_srcset_edge_cases():
    assert parse_srcset("") == []
    assert parse_srcset(" a.png 1x ,b.png  2x, ") == ["a.png", "b.png"]
    assert parse_srcset("img(1).png 1x, x.png (max-width: 3px) 2x") == ["img(1).png", "x.png"]
