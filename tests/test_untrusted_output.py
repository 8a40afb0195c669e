"""One output path for untrusted text: a page whose title, author, site name, links and text
hold terminal escapes (ESC sequences, OSC 52, CSI 2J, C1 controls, NUL, DEL) is captured, and
every command that prints something of it writes no raw control character; the citation
formats stay well-formed."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bibtexparser
import pytest
from citeproc import Citation as CslCitation
from citeproc import CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON

from archive.cli.common import SafeStream, printable, terminal_text

OSC52 = "\x1b]52;c;ZXZpbA==\x07"      # sets the clipboard
CLEAR = "\x1b[2J\x1b[H"               # CSI 2J: clears the screen
C1 = "\u009b31m\u0085\u009d0;x\u009c"  # CSI, NEL, OSC, ST as C1 controls
HOSTILE = f"Head{OSC52}line{CLEAR}\x00nul\x7fdel{C1}\x1b[1A\x1bcend\u202eRLO"
# What must never reach a terminal: C0 but LF (CR only in CR LF), DEL, C1.
RAW = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u202e]|\r(?!\n)")


def page(version: int) -> bytes:
    body = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{HOSTILE}</title>"
            f"<meta name='author' content='Auth{OSC52}or{C1}'>"
            f"<meta property='og:site_name' content='Site{CLEAR}name\x07'>"
            f"<meta name='date' content='2026-01-02'></head><body>"
            f"<p>Text v{version} {HOSTILE}</p>"
            f"<a href='javascript:{CLEAR}x'>j</a> <a href='mailto:x{OSC52}@y'>m</a>"
            f"<a href='ftp://h/{C1}'>f</a><img src='/img{CLEAR}.png'></body></html>")
    return body.encode("utf-8")


class Hostile:
    """A loopback site whose page changes on each version (for diff)."""

    def __init__(self) -> None:
        self.version = 1
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = page(site.version) if self.path == "/" else b"not here"
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def archive(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command; its output decoded as bytes come (no newline translation: RIS has CR LF)."""
    done = subprocess.run([sys.executable, "-m", "archive", *args], capture_output=True, timeout=300)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode("utf-8", "surrogateescape"),
                                       done.stderr.decode("utf-8", "surrogateescape"))


def assert_clean(what: str, result: subprocess.CompletedProcess[str]) -> None:
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        found = RAW.search(text)
        assert found is None, f"{what}: raw {found.group()!r} on {name}: {text[max(0, found.start() - 60):found.end() + 20]!r}"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hostile, Path, str, str]]:
    collection = tmp_path_factory.mktemp("untrusted") / "snapshots"
    site = Hostile()
    try:
        first = archive("capture", site.url, "--depth", "0", "-C", str(collection), "--json")
        assert first.returncode == 0, first.stderr
        site.version = 2
        second = archive("capture", site.url, "--depth", "0", "-C", str(collection), "--verify")
        assert second.returncode == 0, second.stderr
        assert_clean("capture", second)
        yield site, collection, json.loads(first.stdout)["id"], second.stdout.split()[1]
    finally:
        site.close()


def test_the_page_really_is_hostile(hostile):
    """The title as stored holds the raw escapes: what the commands below print is escaped."""
    _, collection, a, _ = hostile
    pages = next(collection.glob(f"*-{a[:12]}")) / "pages" / "pages.jsonl"
    title = json.loads(pages.read_text().splitlines()[1])["title"]
    assert "\x1b]52;" in title and "\x1b[2J" in title and "\u009b" in title


@pytest.mark.parametrize("args", [
    ("list",), ("show", "{a}"), ("show", "{a}", "-v"), ("diff", "{a}", "{b}"), ("verify", "{a}"),
    ("list", "{url}"), ("list", "{url}", "--format", "link"),
    *(("cite", "{a}", "--format", f) for f in ("text", "markdown", "bibtex", "ris", "csl-json",
                                                  "robust-links", "json")),
    ("show", f"{CLEAR}nosuch{OSC52}"), ("verify", f"/tmp/{CLEAR}{C1}.wacz"),
    ("schedule", "add", f"{{url}}{CLEAR[1:]}", "--every", "1d"), ("schedule", "list"), ("schedule", "run"),
])
def test_no_command_prints_a_raw_control_character(hostile, args):
    site, collection, a, b = hostile
    argv = [arg.format(a=a, b=b, url=site.url) for arg in args]
    result = archive(*argv, "-C", str(collection))
    assert_clean(" ".join(args), result)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if args[:2] == ("show", "{a}"):   # the title is there, escaped
        assert result.returncode == 0 and "Head\\x1b]52;c;ZXZpbA==\\x07line" in result.stdout, result.stdout


def test_import_of_a_hostile_package_prints_it_escaped(hostile, tmp_path):
    _, collection, a, _ = hostile
    wacz = tmp_path / "hostile.wacz"
    assert archive("export", a, "--wacz", str(wacz), "-C", str(collection)).returncode == 0
    result = archive("import", str(wacz), "-C", str(tmp_path / "other"))
    assert result.returncode == 0, result.stderr
    assert_clean("import", result)
    assert_clean("list after import", archive("list", "-C", str(tmp_path / "other")))


def test_citation_formats_stay_well_formed(hostile):
    _, collection, a, _ = hostile

    def cite(fmt: str) -> str:
        result = archive("cite", a, "--format", fmt, "-C", str(collection))
        assert result.returncode == 0, result.stderr
        return result.stdout

    library = bibtexparser.parse_string(cite("bibtex"))
    assert not library.failed_blocks and len(library.entries) == 1
    title = library.entries[0].fields_dict["title"].value
    assert "Head" in title and "RLO" in title and not RAW.search(title)

    ris = cite("ris")
    lines = ris.split("\r\n")
    assert lines[-1] == "" and all(re.fullmatch(r"[A-Z][A-Z0-9]  - [^\r\n]*", line) for line in lines[:-1]), lines

    items = json.loads(cite("csl-json"))
    style = next(s for s in (_style(n) for n in ("harvard-cite-them-right", "harvard1")) if s)
    bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
    bibliography.register(CslCitation([CitationItem(items[0]["id"])]))
    rendered = str(bibliography.bibliography()[0])
    assert "Head" in rendered and not RAW.search(rendered)

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.hrefs += [v or "" for k, v in attrs if k == "href"]

    links = Links()
    links.feed(cite("robust-links"))
    assert len(links.hrefs) == 1 and links.hrefs[0].startswith("http://127.0.0.1:")


def _style(name: str) -> CitationStylesStyle | None:
    try:
        return CitationStylesStyle(name, validate=False)
    except (ValueError, OSError):
        return None


@pytest.mark.parametrize("text, shown", [
    ("\x1b[2J", "\\x1b[2J"), ("\x1b]52;c;eA==\x07", "\\x1b]52;c;eA==\\x07"), ("\u009b1m", "\\x9b1m"),
    ("a\x00b\x7fc", "a\\x00b\\x7fc"), ("cr\rover", "cr\\rover"), ("ris\r\n", "ris\r\n"),
    ("\u202eevil", "\\u202eevil"), ("caf\u00e9 \u00a0ok \u2014 \u65e5\u672c", "caf\u00e9 \u00a0ok \u2014 \u65e5\u672c"),
])
def test_the_one_filter(text, shown):
    assert terminal_text(text) == shown
    assert "\n" not in printable(text + "\n")

    class Sink:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def write(self, s: str) -> int:
            self.parts.append(s)
            return len(s)

    sink = Sink()
    SafeStream(sink).write(text)  # type: ignore[arg-type]
    assert "".join(sink.parts) == shown
