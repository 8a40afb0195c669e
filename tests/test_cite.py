"""Citations: fields read from the captured page and its records; every format read back by a real parser."""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser

import bibtexparser
import pytest
from bibtexparser import middlewares
from citeproc import Citation as CslCitation
from citeproc import CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON
from warcio.archiveiterator import ArchiveIterator

from archive import capture
from archive.errors import UsageError
from archive.read.cite import citation, cite
from archive.read.citeformats import FORMATS, Citation, render
from archive.read.metadata import META_CAP, PageMetadata, page_metadata
from archive.snapshot.reader import Package
from archive.snapshot.store import Collection

HOSTILE = 'Tides & {braces} 50% $5 #1 snake_case ~ ^ back\\slash "quoted" <b>'


@pytest.fixture(scope="module")
def demo(demo_snapshot) -> tuple[Citation, Package]:  # type: ignore[no-untyped-def]
    package = Collection(demo_snapshot.path.parent).open(demo_snapshot.id)
    return citation(package), package


def warc_date_of(package: Package, url: str) -> str:
    """Return the WARC-Date of the first response record for `url`, read with warcio."""
    for path in sorted((package.path / "archive").iterdir()):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response" and record.rec_headers["WARC-Target-URI"] == url:
                    return record.rec_headers["WARC-Date"]
    raise AssertionError(f"no response for {url}")


def route(site, path: str, body: bytes, ctype: str = "text/html") -> None:  # type: ignore[no-untyped-def]
    site.routes[("main", path)] = lambda h: h.send_bytes(200, body, ctype)


# -- fields -----------------------------------------------------------------------------

def test_demo_page_fields(demo, demo_snapshot, demo_capture):
    c, package = demo
    seed = demo_capture[1].main_url + "/"
    assert c.title == "What the tide pools told us in October"   # og:title, not <title> with suffix
    assert c.authors == ("Maren Holloway",)                        # meta and JSON-LD agree: once
    assert c.site_name == "Tidewatch Notes"
    assert c.published == "2026-10-14"
    assert c.language == "en"
    assert c.original_url == seed and c.final_url is None and c.status == 200
    assert c.snapshot_id == demo_snapshot.id == package.id and c.digest == "sha256:" + c.snapshot_id
    assert c.tool.startswith("archive ")


def test_capture_time_is_the_seed_records_warc_date_apart_from_published(demo, demo_capture):
    c, package = demo
    warc_date = warc_date_of(package, demo_capture[1].main_url + "/")
    assert c.captured == warc_date[:19] + "Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c.captured)
    assert c.timestamp14 == re.sub(r"\D", "", c.captured) and len(c.timestamp14) == 14
    assert not c.captured.startswith(c.published)
    window = package.metadata()["capture_window"]
    assert (c.window_start, c.window_end) == (window["start"], window["end"])
    assert c.window_start <= c.captured <= c.window_end


def test_replay_url_names_the_snapshot_by_full_id(demo):
    c, package = demo
    assert c.replay_url == f"http://127.0.0.1:8080/{c.snapshot_id}/{c.timestamp14}/{c.original_url}"
    other = citation(package, base_url="https://replay.example.org/wayback/")
    assert other.replay_url.startswith(f"https://replay.example.org/wayback/{c.snapshot_id}/2")
    assert citation(package, local_replay="http://localhost:9999").replay_url.startswith(
        "http://localhost:9999/" + c.snapshot_id)


def test_redirected_seed_cites_the_final_page_captured_at_the_first_response(capture_page):
    snap = capture_page("/redirect-me")
    package = Package.open(snap.path)
    c = citation(package)
    assert c.original_url.endswith("/redirect-me") and c.final_url.endswith("/moved.html")
    assert c.title == "Our September tide pool notes | Tidewatch Notes"
    assert c.captured == warc_date_of(package, c.original_url)[:19] + "Z"
    assert c.replay_url.endswith("/" + c.original_url)
    assert "(redirected to " + c.final_url + ")" in render(c, "text")


def test_first_seed_without_an_answer_is_passed_over(site, collection):
    snap = capture(["http://127.0.0.1:9/", site.main_url + "/about.html"], collection, depth=0)
    c = citation(Package.open(snap.path))
    assert c.original_url == site.main_url + "/about.html"


def test_page_without_metadata_uses_its_url_as_title(site, capture_page):
    route(site, "/bare.html", b"<p>nothing about itself</p>")
    c = citation(Package.open(capture_page("/bare.html").path))
    assert c.title == c.original_url == site.main_url + "/bare.html"
    assert (c.authors, c.site_name, c.published) == ((), None, None)
    for fmt in FORMATS:
        assert render(c, fmt).endswith("\n")
    assert render(c, "text").startswith(f'"{c.original_url}." Archived snapshot of')
    entry = bibtexparser.parse_string(render(c, "bibtex")).entries[0]
    assert "author" not in entry.fields_dict and "year" not in entry.fields_dict
    assert "issued" not in json.loads(render(c, "csl-json"))[0]


def test_charset_from_the_content_type_header(site, capture_page):
    route(site, "/latin.html", "<title>Caf\u00e9 cr\u00e8me</title>".encode("latin-1"),
          "text/html; charset=iso-8859-1")
    c = citation(Package.open(capture_page("/latin.html").path))
    assert c.title == "Caf\u00e9 cr\u00e8me"


def test_hostile_json_ld_in_a_captured_page(site, capture_page):
    route(site, "/hostile.html", b'<title>Still cited</title>'
          b'<script type="application/ld+json">{"headline": [1, {"x": null}], "author": '
          + b"[" * 5000 + b'</script><script type="application/ld+json">{"author": 7, '
          b'"datePublished": "yesterday", "publisher": {"@id": "#nowhere"}}</script>')
    c = citation(Package.open(capture_page("/hostile.html").path))
    assert (c.title, c.authors, c.published, c.site_name) == ("Still cited", (), None, None)


def test_package_made_elsewhere_falls_back_to_main_page(demo_snapshot, tmp_path):
    folder = tmp_path / "elsewhere"
    shutil.copytree(demo_snapshot.path, folder)
    data = json.loads((folder / "datapackage.json").read_text("utf-8"))
    del data["archive"]
    data["software"] = "another tool 2.0"
    data["mainPageURL"] = data["mainPageURL"] + "about.html"
    (folder / "datapackage.json").write_text(json.dumps(data), "utf-8")
    c = citation(Package.open(folder))
    assert c.original_url == data["mainPageURL"] and c.title == "About | Tidewatch Notes"
    assert c.tool == "another tool 2.0" and c.window_start is None


# -- page_metadata ------------------------------------------------------------------------

def meta(html: str) -> PageMetadata:
    return page_metadata(html.encode(), "http://ex.test/", None)


def test_metadata_graph_references_and_author_lists():
    m = meta('<script type="application/ld+json">{"@context": "https://schema.org", "@graph": ['
             '{"@type": "WebSite", "@id": "#site", "name": "Graph Site"},'
             '{"@type": "Person", "@id": "#p1", "name": "Ada One"},'
             '{"@type": ["NewsArticle"], "headline": "Graph &amp; headline", '
             '"author": [{"@id": "#p1"}, {"@type": "Person", "name": "Bo Two"}, "Cy Three"],'
             '"datePublished": "2024-02-29T10:00:00+01:00", "publisher": {"@id": "#org"}},'
             '{"@type": "Organization", "@id": "#org", "name": "Org Press"}]}</script>'
             '<title>Page | Graph Site</title>')
    assert m.title == "Graph & headline"
    assert m.authors == ("Ada One", "Bo Two", "Cy Three")
    assert m.published == "2024-02-29" and m.site_name == "Org Press"


def test_metadata_source_order():
    m = meta('<html lang="pt-BR"><meta name="citation_title" content="Scholar title">'
             '<meta property="og:title" content="OG title"><title>Tag title</title>'
             '<meta name="citation_author" content="Doe, Jane"><meta name="citation_author" content="Roe, Rich">'
             '<meta name="author" content="Someone Else"><meta name="citation_publication_date" content="2019/7/4">'
             '<meta property="article:published_time" content="2020-01-01"><meta name="application-name" content="App">')
    assert m.title == "Scholar title" and m.authors == ("Doe, Jane", "Roe, Rich")
    assert m.published == "2019-07-04" and m.site_name == "App" and m.language == "pt-BR"
    m = meta('<meta property="article:author" content="https://facebook.com/someone">'
             '<meta property="article:author" content="Real Name"><title> Only \n the  tag </title>')
    assert m.authors == ("Real Name",) and m.title == "Only the tag"


@pytest.mark.parametrize("html", ids=["empty", "control", "broken-json", "deep-json", "deep-author",
                                    "self-reference", "wrong-types", "huge-number", "xml-utf16"], argvalues=[
    "", "\x00\x01", '<script type="application/ld+json">{broken</script>',
    '<script type="application/ld+json">' + "[" * 100000 + "</script>",
    '<script type="application/ld+json">' + "[" * 700 + '{"author": "x"}' + "]" * 700 + "</script>",
    '<script type="application/ld+json">{"@id": "a", "author": {"@id": "a"}}</script>',
    '<script type="application/ld+json">{"headline": {"@value": 3}, "author": [null, true, 1.5, [[["deep"]]]], '
    '"datePublished": ["2020-99-01"], "@type": {"no": "string"}, "@graph": "not a list"}</script>',
    '<script type="application/ld+json">1' + "0" * 5000 + "</script>",
    '<?xml version="1.0" encoding="utf-16"?><html lang="&#0;"><meta content><meta name><title></title>',
])
def test_hostile_markup_never_raises(html):
    result = page_metadata(html.encode(), "http://ex.test/", "utf-16")
    assert isinstance(result, PageMetadata)
    assert isinstance(meta(html), PageMetadata)


def test_metadata_beyond_the_cap_is_not_parsed():
    early = b"<title>early</title>" + b"<!--" + b"x" * META_CAP + b"-->"
    assert page_metadata(early, "http://ex.test/", None).title == "early"
    late = b"<html><!--" + b"x" * META_CAP + b"--><title>late</title>"
    assert page_metadata(late, "http://ex.test/", None).title is None


def test_long_fields_are_capped():
    m = meta("<title>" + "word " * 100000 + "</title>")
    assert m.title is not None and 0 < len(m.title) <= 1000


# -- formats ------------------------------------------------------------------------------

def test_bibtex_loads_in_bibtexparser(demo):
    c, _ = demo
    library = bibtexparser.parse_string(render(c, "bibtex"))
    assert not library.failed_blocks and len(library.entries) == 1
    entry = library.entries[0]
    fields = {f.key: f.value for f in entry.fields}
    assert entry.entry_type == "misc" and entry.key == f"holloway2026what-{c.snapshot_id[:6]}"
    assert fields["title"] == c.title and fields["author"] == "Maren Holloway"
    assert fields["url"] == c.replay_url and c.replay_url in fields["howpublished"]
    assert fields["urldate"] == c.captured[:10] and fields["date"] == "2026-10-14"
    assert c.digest in fields["note"] and fields["organization"] == "Tidewatch Notes"


def test_bibtex_escapes_special_characters_and_keeps_names_whole(demo):
    c, _ = demo
    odd = replace(c, title=HOSTILE, authors=("Smith and Jones Ltd", "Ana D\u00edaz"),
                  original_url="http://ex.test/a%20b#frag")
    text = render(odd, "bibtex")
    decoded = bibtexparser.parse_string(text, append_middleware=[middlewares.LatexDecodingMiddleware()])
    assert not decoded.failed_blocks
    title = decoded.entries[0].fields_dict["title"].value
    for part in ("Tides & {braces} 50% $5 #1 snake_case", "back\\slash", '"quoted" <b>'):
        assert part in title
    unbalanced = bibtexparser.parse_string(render(replace(odd, title="a } b {"), "bibtex"))
    assert not unbalanced.failed_blocks and "textbraceright" in unbalanced.entries[0]["title"]
    split = bibtexparser.parse_string(text, append_middleware=[middlewares.SeparateCoAuthors()])
    assert len(split.entries[0].fields_dict["author"].value) == 2
    assert re.fullmatch(r"[a-z]+2026tides-[0-9a-f]{6}", split.entries[0].key)


def test_bibtex_without_author_uses_the_site_as_organization(demo):
    c, _ = demo
    entry = bibtexparser.parse_string(render(replace(c, authors=()), "bibtex")).entries[0]
    assert entry.fields_dict["author"].value == "{Tidewatch Notes}"
    assert entry.key.startswith("tidewatch2026")


def bundled_style() -> CitationStylesStyle:
    """Return the Harvard style citeproc-py ships (renamed from harvard1 in later releases)."""
    for name in ("harvard-cite-them-right", "harvard1"):
        try:
            return CitationStylesStyle(name, validate=False)
        except (ValueError, OSError):
            continue
    raise AssertionError("citeproc-py ships no Harvard style")


def test_csl_json_renders_with_citeproc(demo):
    c, _ = demo
    items = json.loads(render(c, "csl-json"))
    assert isinstance(items, list) and len(items) == 1
    item = items[0]
    assert item["type"] == "webpage" and item["URL"] == c.replay_url
    assert item["issued"] == {"date-parts": [[2026, 10, 14]]}
    assert item["accessed"] == {"date-parts": [[int(p) for p in c.captured[:10].split("-")]]}
    assert item["container-title"] == "Tidewatch Notes" and item["author"] == [{"literal": "Maren Holloway"}]
    assert c.original_url in item["note"] and c.digest in item["note"]
    bibliography = CitationStylesBibliography(bundled_style(), CiteProcJSON(items), formatter.plain)
    cited = CslCitation([CitationItem(item["id"])])
    bibliography.register(cited)
    assert "Maren Holloway" in bibliography.cite(cited, lambda item: None)
    rendered = str(bibliography.bibliography()[0])
    assert c.title in rendered and c.replay_url in rendered and "2026" in rendered


def test_ris_structure(demo):
    c, _ = demo
    text = render(c, "ris")
    assert text.endswith("ER  - \r\n")
    lines = text.split("\r\n")[:-1]
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line) for line in lines), lines
    tags = {line[:2]: line[6:] for line in lines}
    assert lines[0] == "TY  - ELEC" and lines[-1] == "ER  - "
    assert [line[6:] for line in lines if line.startswith("AU")] == ["Maren Holloway"]
    assert tags["TI"] == c.title and tags["UR"] == c.replay_url and tags["T2"] == "Tidewatch Notes"
    assert tags["PY"] == "2026" and tags["DA"] == "2026/10/14/"
    assert tags["Y2"] == c.captured[:10].replace("-", "/") + "/"
    assert c.digest in tags["N1"]


class LinkReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str | None], str]] = []
        self.closed = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append((dict(attrs), ""))

    def handle_endtag(self, tag: str) -> None:
        self.closed = tag == "a"

    def handle_data(self, data: str) -> None:
        if self.links and not self.closed:
            attrs, text = self.links[-1]
            self.links[-1] = (attrs, text + data)


def test_robust_link_attributes_read_back(demo):
    c, _ = demo
    odd = replace(c, title=HOSTILE, original_url='http://ex.test/?a=1&b="2"')
    reader = LinkReader()
    reader.feed(render(odd, "robust-links"))
    reader.close()
    [(attrs, text)] = reader.links
    assert attrs["href"] == attrs["data-originalurl"] == odd.original_url
    assert attrs["data-versionurl"] == c.replay_url and attrs["data-versiondate"] == c.captured[:10]
    assert text == HOSTILE


def test_text_says_how_to_verify(demo):
    c, _ = demo
    text = render(c, "text")
    first = text.splitlines()[0]
    assert first.startswith('Maren Holloway. "What the tide pools told us in October." Tidewatch Notes, 2026-10-14.')
    assert f"captured {c.captured[:10]} {c.captured[11:19]} UTC" in first
    assert f"Snapshot {c.digest} (local replay: {c.replay_url})." in first
    assert f"archive verify SNAPSHOT_OR_WACZ --expect sha256:{c.snapshot_id}" in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_markdown_links_the_replay(demo):
    c, _ = demo
    text = render(replace(c, title="A [bracketed] *title*"), "markdown")
    assert f"[A \\[bracketed\\] \\*title\\*.](<{c.replay_url}>)" in text
    assert f"archive verify SNAPSHOT_OR_WACZ --expect {c.digest}" in text and text.endswith("\n")


def test_cite_by_id_prefix_gives_json_fields(demo, demo_snapshot):
    c, _ = demo
    data = json.loads(cite(demo_snapshot.id[:10], demo_snapshot.path.parent, "json"))
    assert data["title"] == c.title and data["authors"] == list(c.authors)
    assert data["captured"] == c.captured and data["published"] == "2026-10-14"
    assert cite(str(demo_snapshot.path), fmt="ris") == render(c, "ris")


def test_unknown_format_is_a_usage_error(demo):
    with pytest.raises(UsageError, match="csl-json"):
        render(demo[0], "endnote")


def test_every_format_ends_with_one_newline(demo):
    for fmt in FORMATS:
        out = render(demo[0], fmt)
        assert out.endswith("\n") and out.strip()

