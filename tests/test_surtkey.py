"""formats/surtkey.py gives the surt library's key for every URL it keys, and keys the plain
URLs a capture writes: property-tested against the library on URLs built from the parts its
canonicalisation treats specially (www labels, ports, dot segments, escapes, session ids,
case, empty queries, IPv4 forms)."""
from __future__ import annotations

import surt
from hypothesis import example, given, settings
from hypothesis import strategies as st

from archive.formats.surtkey import surt_fast
from archive.formats.urls import surt_key

LABELS = st.sampled_from(["www", "WWW", "www2", "www.", "ex", "Ex-1", "org", "co", "uk", "xn--bcher-kva",
                          "1", "127", "0", "255", "256", "08", "0x7f", "", "a_b", "wwwx"])
SEGMENTS = st.sampled_from(["", ".", "..", "a", "B", "index.html", "%41", "%2F", "x y", "~u", "a;b=c",
                            "é", "(s(12345678901234567890abcd))", "page.aspx", "!$&'*+,;=:@", "#f", "?"])
ARGS = st.sampled_from(["a=1", "b", "B=2", "a", "a=", "=x", "jsessionid=0123456789abcdef0123456789abcdef",
                        "sid=0123456789ABCDEF0123456789abcdef", "cfid=1&cftoken=2", "q=%20", "x=?y",
                        "aspsessionidABCDEFGH=abcdefghijklmnopqrstuvwx", "c=3", "", "z=é"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp"]))
    host = ".".join(draw(st.lists(LABELS, min_size=1, max_size=4)))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":0", ":080", ":65536", ":"]))
    path = "/".join(draw(st.lists(SEGMENTS, max_size=4)))
    path = ("/" + path) if draw(st.booleans()) or path else ""
    query = draw(st.sampled_from(["", "?"])) if not draw(st.booleans()) else "?" + "&".join(draw(st.lists(ARGS, min_size=1, max_size=4)))
    return f"{scheme}://{host}{port}{path}{query}"


def library(url: str) -> str | None:
    try:
        return str(surt.surt(url))
    except Exception:   # the library's own failures: the fast path must not key those either
        return None


@settings(max_examples=3000, deadline=None)
@given(urls())
@example("http://www.example.com/")
@example("http://127.0.0.1:8000/a/b/?z=1&a=2")
@example("https://www2.ex.org:443/A/B/")
@example("http://ex.org?")
def test_a_key_made_here_is_the_librarys(url: str) -> None:
    key = surt_fast(url)
    if key is not None:
        assert key == library(url), url
    expected = library(url)
    if expected is not None:
        assert surt_key(url) == expected, url


def test_the_urls_a_capture_writes_are_keyed_here() -> None:
    plain = ["http://127.0.0.1:45847/s1.html", "https://www.example.org/a/b/c.css?v=3&x=1",
             "http://ex.org/", "http://ex.org", "https://sub.ex.co.uk/path/to/page.html?q=term&page=2"]
    for url in plain:
        assert surt_fast(url) == library(url)
