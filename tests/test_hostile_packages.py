"""Packages made by an attacker who controls every byte: verify, import, replay and cite must not
be misled. Each hostile package is made here from a real capture: unzipped, edited, its
datapackage.json resealed (every file's digest and the package digest recomputed), re-zipped."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive import capture, verify
from archive.demo import DemoSite
from archive.errors import ArchiveError, ImportRejected
from archive.read.ingest import import_archive
from archive.snapshot.package import DATAPACKAGE, DIGEST_FILE, canonical_json, digest_document
from archive.snapshot.reader import Package, warc_member

Files = dict[str, bytes]
INDEX = "indexes/index.cdx"
PAGES = "pages/pages.jsonl"
# Jinja2 that writes a file named "pwned" in pywb's working folder when rendered, with no
# quote, space or slash (so it survives in a URL's user-info part)
PAYLOAD = ("{%endraw%}{{self.__init__.__globals__.__builtins__.open(dict(pwned=1)|first,"
           "dict(w=1)|first).write(dict(x=1)|first)}}{%raw%}")
ESCAPED = "&#123;&#37;endraw&#37;&#125;&#123;&#123;self.__init__"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real snapshot folder (one page and its requisites)."""
    root = tmp_path_factory.mktemp("hostile-packages")
    with DemoSite() as site:
        return capture([site.main_url + "/contact.html"], root / "coll", depth=0).path


def unpack(folder: Path) -> Files:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def reseal(files: Files, edit_package: Callable[[dict[str, Any]], None] | None = None) -> None:
    """List every file with its digest and size again, and recompute the package digest."""
    package = json.loads(files[DATAPACKAGE])
    package["resources"] = [{"name": name.rsplit("/", 1)[-1], "path": name, "bytes": len(data),
                             "hash": "sha256:" + hashlib.sha256(data).hexdigest()}
                            for name, data in sorted(files.items()) if name not in (DATAPACKAGE, DIGEST_FILE)]
    if edit_package:
        edit_package(package)
    files[DATAPACKAGE] = canonical_json(package)
    files[DIGEST_FILE] = canonical_json(digest_document(hashlib.sha256(files[DATAPACKAGE]).hexdigest()))


def write_zip(files: Files, dest: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:  # type: ignore[assignment]
    with warnings.catch_warnings(), zipfile.ZipFile(dest, "w") as zf:
        warnings.simplefilter("ignore")   # zipfile warns of duplicate names: we want them
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return dest


def crafted(pristine: Path, dest: Path, edit: Callable[[Files], None] | None = None,
            edit_package: Callable[[dict[str, Any]], None] | None = None,
            extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:  # type: ignore[assignment]
    files = unpack(pristine)
    if edit:
        edit(files)
    reseal(files, edit_package)
    return write_zip(files, dest, extra)


def index_lines(files: Files) -> list[tuple[str, str, dict[str, Any]]]:
    return [(k, t, json.loads(f)) for k, t, f in (line.split(" ", 2) for line in files[INDEX].decode().splitlines())]


def set_index(files: Files, lines: list[tuple[str, str, dict[str, Any]]]) -> None:
    files[INDEX] = "".join(f"{k} {t} {json.dumps(f)}\n" for k, t, f in lines).encode()


def edit_line(change: Callable[[list[Any]], None], which: int = 0) -> Callable[[Files], None]:
    def edit(files: Files) -> None:
        lines = [list(line) for line in index_lines(files)]
        change(lines[which])
        set_index(files, [tuple(line) for line in lines])  # type: ignore[misc]
    return edit


def problems(target: Path) -> list[str]:
    return [str(p) for p in verify(target).problems]


# -- verify covers everything a reader reads --------------------------------------------------------

def test_pristine_package_zipped_verifies_and_imports(pristine, tmp_path):
    wacz = crafted(pristine, tmp_path / "same.wacz")
    assert problems(wacz) == []
    assert verify(import_archive(wacz, tmp_path / "coll").path).ok


def test_index_pointing_into_another_snapshot_is_refused_and_never_replayed(pristine, tmp_path):
    """Issue 13 item 2: CDXJ lines naming another snapshot's WARC file through `..`."""
    coll = tmp_path / "coll"
    other = import_archive(crafted(pristine, tmp_path / "other.wacz",
                                   edit_package=lambda p: p.update(title="the other")), coll)
    other_warc = next((other.path / "archive").glob("*.warc.gz")).name
    outside = f"../../{other.path.name}/archive/{other_warc}"

    def point_outside(files: Files) -> None:
        set_index(files, [(k, t, {**f, "filename": outside}) for k, t, f in index_lines(files)])
    wacz = crafted(pristine, tmp_path / "outside.wacz", point_outside)
    found = problems(wacz)
    assert found and all("outside the package's archive/ folder" in p for p in found if p.startswith(INDEX))
    with pytest.raises(ImportRejected, match="outside the package"):
        import_archive(wacz, coll)
    assert [p.name for p in coll.iterdir() if not p.name.startswith(".")] == [other.path.name]
    # the reader is the one place a WARC path is resolved: it refuses the name whatever asks
    with Package.open(wacz) as package:
        entry = next(package.index())
        with pytest.raises(ArchiveError, match="outside archive/"):
            package.body(entry)


@pytest.mark.parametrize("name, change, reason", [
    ("absolute", lambda l: l[2].update(filename="/etc/passwd"), "outside the package's archive/ folder"),
    ("other folder", lambda l: l[2].update(filename="pages/pages.jsonl"), "outside the package's archive/ folder"),
    ("missing file", lambda l: l[2].update(filename="nothing.warc.gz"), "does not hold"),
    ("offset", lambda l: l[2].update(offset=str(int(l[2]["offset"]) + 1)), "no record starts at offset"),
    ("length", lambda l: l[2].update(length=str(int(l[2]["length"]) - 1)), "length does not cover exactly"),
    ("url", lambda l: l[2].update(url="javascript:alert(1)"), "URL differs"),
    ("key", lambda l: l.__setitem__(0, "org,example)/"), "sort key"),
    ("time", lambda l: l.__setitem__(1, "19990101000000"), "time differs"),
    ("digest", lambda l: l[2].update(digest="sha256:" + "0" * 64), "digest differs"),
    ("type", lambda l: l[2].update(mime="warc/revisit"), "record type differs"),
])
def test_each_index_field_is_checked_against_its_record(pristine, tmp_path, name, change, reason):
    wacz = crafted(pristine, tmp_path / "line.wacz", edit_line(change))
    found = problems(wacz)
    assert any(p.startswith(f"{INDEX}: line 1: ") and reason in p for p in found), found
    with pytest.raises(ImportRejected):
        import_archive(wacz, tmp_path / "coll")


def test_malformed_index_line_is_a_problem(pristine, tmp_path):
    wacz = crafted(pristine, tmp_path / "bad.wacz",
                   lambda files: files.update({INDEX: files[INDEX] + b"org,x)/ 2026 [1, 2]\n"}))
    assert any("not a CDXJ line" in p for p in problems(wacz))


def test_page_list_entries_must_be_captures(pristine, tmp_path):
    def add_page(files: Files) -> None:
        files[PAGES] += json.dumps({"url": "javascript:alert(1)", "ts": "2026-01-01T00:00:00Z",
                                    "title": "not captured"}).encode() + b"\n"
    found = problems(crafted(pristine, tmp_path / "pages.wacz", add_page))
    assert any(p.startswith(f"{PAGES}: line 3: page 'javascript:alert(1)'") for p in found), found

    def shift_time(files: Files) -> None:
        lines = files[PAGES].decode().splitlines()
        page = json.loads(lines[1])
        page["ts"] = "1999-01-01T00:00:00Z"
        files[PAGES] = "\n".join([lines[0], json.dumps(page)]).encode() + b"\n"
    found = problems(crafted(pristine, tmp_path / "time.wacz", shift_time))
    assert any("is no capture the index holds" in p for p in found), found


def test_zip_anomalies_are_problems(pristine, tmp_path):
    files = unpack(pristine)
    reseal(files)
    folder_with_data = zipfile.ZipInfo("archive/")
    wacz = write_zip(files, tmp_path / "odd.wacz", [(INDEX, b"shadowing line\n"), (folder_with_data, b"data"),
                                                     ("logs/unlisted.txt", b"not in the manifest")])
    found = problems(wacz)
    assert any(p.startswith(f"{INDEX}: duplicate zip member name") for p in found), found
    assert any(p.startswith("archive/: directory entry holding data") for p in found), found
    assert any(p.startswith("logs/unlisted.txt: file not listed") for p in found), found


def test_package_without_index_and_page_list_is_refused(pristine, tmp_path):
    """Issue 13 item 8: WACZ 1.1.1 requires indexes/ and pages/pages.jsonl."""
    def strip(files: Files) -> None:
        del files[INDEX], files[PAGES]
    wacz = crafted(pristine, tmp_path / "bare.wacz", strip)
    run = subprocess.run([sys.executable, "-m", "archive", "verify", str(wacz)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "WACZ 1.1.1 requires indexes/" in run.stdout + run.stderr
    assert "WACZ 1.1.1 requires pages/pages.jsonl" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    coll = tmp_path / "coll"
    run = subprocess.run([sys.executable, "-m", "archive", "import", "-C", str(coll), str(wacz)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.startswith("archive: error: ") and "Traceback" not in run.stderr
    assert not coll.exists() or not [p for p in coll.iterdir() if not p.name.startswith(".")]


# -- hypothesis: mutated packages ------------------------------------------------------------------

MUTATIONS = ("index bytes", "index filename", "pages bytes", "datapackage field", "zip name")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _mutate(files: Files, data: st.DataObject) -> Callable[[dict[str, Any]], None] | None:
    """Change the bytes of index or page lines, an index filename or a zip name in `files`; or
    return a change of a datapackage.json field to make after resealing."""
    kind = data.draw(st.sampled_from(MUTATIONS))
    if kind in ("index bytes", "pages bytes"):
        name = INDEX if kind == "index bytes" else PAGES
        raw = bytearray(files[name])
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at:at + data.draw(st.integers(0, 8))] = data.draw(st.binary(max_size=16))
        files[name] = bytes(raw)
    elif kind == "index filename":
        path = data.draw(st.sampled_from(["../", "/", "..\\", "archive/../", "x/", ""])) + \
            data.draw(st.text(max_size=20))
        edit_line(lambda l: l[2].update(filename=path), 0)(files)
    elif kind == "datapackage field":
        key = data.draw(st.sampled_from(["created", "title", "mainPageURL", "archive", "resources", "software"]))
        value = data.draw(st.one_of(st.none(), st.integers(), st.text(max_size=30),
                                    st.lists(st.text(max_size=5), max_size=3)))
        return lambda package: package.__setitem__(key, value)
    else:
        old = data.draw(st.sampled_from(sorted(n for n in files if n not in (DATAPACKAGE, DIGEST_FILE))))
        files[data.draw(st.text(min_size=1, max_size=30))] = files.pop(old)
    return None


@SETTINGS
@given(data=st.data())
def test_mutated_packages_never_crash_nor_pass_with_an_index_pointing_outside(pristine, tmp_path, data):
    files = unpack(pristine)
    reseal(files, _mutate(files, data))
    example = uuid.uuid4().hex   # tmp_path is shared by every example
    wacz = write_zip(files, tmp_path / f"{example}.wacz")
    try:
        report = verify(wacz)
    except ArchiveError:
        report = None
    if report is not None and report.ok:
        with Package.open(wacz) as package:
            assert all(warc_member(e.filename) in package.warc_names() for e in package.index())
    _read_every_way(wacz, tmp_path / f"replay-{example}")
    coll = tmp_path / f"coll-{example}"
    try:
        snap = import_archive(wacz, coll)
    except ArchiveError:
        assert not coll.exists() or not [p for p in coll.iterdir() if not p.name.startswith(".")]
    else:
        assert report is not None and report.ok
        assert verify(snap.path).ok


def _read_every_way(wacz: Path, workdir: Path) -> None:
    """Cite, show and index the package for replay as readers do: nothing but ArchiveError, and
    the replay index copy names no WARC file outside the package."""
    from archive.read.cite import cite
    from archive.read.find import details
    from archive.web.replay import Entry, _index_lines, _write_home
    nowhere = workdir / "no-collection"   # the package is named by its path; no collection is read
    for read in (lambda: cite(str(wacz), nowhere, "robust-links"), lambda: details(str(wacz), nowhere)):
        try:
            read()
        except ArchiveError:
            pass
    try:
        with Package.open(wacz) as package:
            lines = _index_lines(package.index())
            seeds = tuple((str(p["url"]), str(p.get("ts", ""))) for p in package.pages())
            created = str(package.datapackage().get("created", ""))
    except ArchiveError:
        return
    assert all(warc_member(json.loads(line.split(" ", 2)[2])["filename"]) for line in lines)
    _write_home(workdir, [Entry("ab" * 32, wacz, wacz, seeds, created)])
    page = (workdir / "index.html").read_text("utf-8")
    assert "{{" not in page and "{%" not in page and "<script" not in page


# -- no text from a page or package is template source or markup -------------------------------------

@contextlib.contextmanager
def serving(collection: Path, tmp_path: Path) -> Iterator[str]:
    """Run the real `archive serve` on the collection (its own process group, pywb in it too);
    yield its base URL once the home page answers; stop the whole group whatever happens."""
    from archive.web.replay import find_wayback
    with socket.socket() as s, socket.socket() as r:
        s.bind(("127.0.0.1", 0))
        r.bind(("127.0.0.1", 0))
        port, replay_port = s.getsockname()[1], r.getsockname()[1]
    env = dict(os.environ, ARCHIVE_PYWB=str(find_wayback()))
    # replay on a second port (its own origin): urllib, unlike browsers, does not resolve replay.localhost
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "archive", "serve", "-C", str(collection), "--port", str(port),
                                 "--replay-port", str(replay_port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _answers(base + "/"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        yield base
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _serve_home(collection: Path, tmp_path: Path) -> str:
    """Return the home page the real `archive serve` renders for the collection."""
    with serving(collection, tmp_path) as base:
        return _get(base + "/")[1]


def _pwned(collection: Path, tmp_path: Path) -> list[Path]:
    return [p for root in (collection, tmp_path, Path.cwd()) for p in root.rglob("pwned")]


def test_page_url_with_template_syntax_is_shown_as_text(tmp_path):
    """Issue 13 item 1: a captured URL whose user-info holds Jinja, loaded through `archive serve`."""
    collection = tmp_path / "coll"
    with DemoSite() as site:
        site.routes[("main", "/x.html")] = lambda h: h.send_bytes(
            200, b"<!doctype html><title>{{7*7}} {% raw %}</title><p>hi", "text/html")
        seed = site.main_url.replace("://", f"://{PAYLOAD}@") + "/x.html"
        snap = capture([seed], collection, depth=0)
    pages = (snap.path / PAGES).read_text()
    assert PAYLOAD in pages    # the hostile URL is in the snapshot, as captured
    home = _serve_home(collection, tmp_path)
    assert _pwned(collection, tmp_path) == []
    assert ESCAPED in home and PAYLOAD not in home and snap.id in home


def test_package_metadata_with_template_syntax_is_shown_as_text(pristine, tmp_path):
    """The same through a crafted .wacz that verifies: its `created` holds the template."""
    wacz = crafted(pristine, tmp_path / "created.wacz", edit_package=lambda p: p.update(created=PAYLOAD))
    assert verify(wacz).ok
    collection = tmp_path / "coll"
    snap = import_archive(wacz, collection)
    home = _serve_home(collection, tmp_path)
    assert _pwned(collection, tmp_path) == []
    assert ESCAPED in home and PAYLOAD not in home and snap.id in home


# -- citations, show and list from verified records -------------------------------------------------

def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archive", *argv], capture_output=True, text=True, timeout=120)


def _lie_in_metadata(files: Files, package: dict[str, Any]) -> None:
    """Metadata and page list that name a URL and a title no record holds."""
    seed = package["archive"]["seeds"][0]["url"]
    package["archive"]["seeds"] = [{"given": "javascript:alert(1)", "url": seed},
                                   {"given": "http://nowhere.test/", "url": "http://nowhere.test/"}]
    package["archive"]["capture_window"] = {"start": "1999-01-01T00:00:00Z", "end": "1999-01-02T00:00:00Z"}
    package["mainPageURL"] = "javascript:alert(2)"


def test_citation_comes_from_the_records_not_the_metadata(pristine, tmp_path):
    """Issue 13 item 3: metadata naming a javascript: seed, a seed never captured and a false window."""
    files = unpack(pristine)
    pages = files[PAGES].decode().splitlines()
    fake = {**json.loads(pages[1]), "title": "A title no record holds"}
    files[PAGES] = "\n".join([pages[0], json.dumps(fake)]).encode() + b"\n"
    reseal(files, lambda package: _lie_in_metadata(files, package))
    wacz = write_zip(files, tmp_path / "lies.wacz")
    seed = json.loads(pages[1])["url"]
    for fmt in ("text", "markdown", "bibtex", "csl-json", "ris", "robust-links", "json"):
        run = _cli("cite", "--format", fmt, str(wacz))
        assert run.returncode == 0, run.stderr
        assert "javascript" not in run.stdout and "nowhere.test" not in run.stdout and "1999" not in run.stdout
        assert "no record holds" not in run.stdout and "Tidewatch Notes" in run.stdout
        assert seed in run.stdout


def test_citation_of_an_index_line_its_record_does_not_bear_out_is_refused(pristine, tmp_path):
    def lie(files: Files) -> None:
        set_index(files, [(k, t, {**f, "url": "javascript:alert(1)"}) for k, t, f in index_lines(files)])
    wacz = crafted(pristine, tmp_path / "line.wacz", lie,
                   lambda package: package.update(archive={}, mainPageURL="javascript:alert(1)"))
    for fmt in ("text", "robust-links"):
        run = _cli("cite", "--format", fmt, str(wacz))
        # verified first (issue 13): an integrity failure, exit 1, before any citation is made
        assert run.returncode == 1 and run.stdout == "", run.stdout
        assert run.stderr.startswith("archive: error: ") and len(run.stderr.splitlines()) == 1, run.stderr
        assert "failed verification" in run.stderr
    from archive.errors import NotASnapshot
    from archive.read.cite import citation
    with Package.open(wacz) as package, pytest.raises(NotASnapshot, match="is not the one its index line names"):
        citation(package)   # the citation's own check still holds for a package read without verify


def test_citation_links_are_http_only_in_every_format(pristine, tmp_path):
    from dataclasses import replace

    from archive.errors import UsageError
    from archive.read.cite import citation
    from archive.read.citeformats import FORMATS, render
    with Package.open(pristine) as package:
        cited = citation(package)
    for field in ("original_url", "final_url", "replay_url"):
        for link in ("javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "http://"):
            for fmt in FORMATS:
                with pytest.raises(UsageError, match="not http"):
                    render(replace(cited, **{field: link}), fmt)
    run = _cli("cite", "--base-url", "javascript:alert(1)//", str(pristine))
    assert run.returncode == 2 and run.stdout == "" and "not an absolute http(s) URL" in run.stderr


def test_show_and_list_name_only_what_the_index_holds(pristine, tmp_path):
    coll = tmp_path / "coll"
    snap = import_archive(crafted(pristine, tmp_path / "ok.wacz"), coll)
    # edited in place after import (list and show do not verify): the records stay the source
    pages = (snap.path / PAGES).read_text().splitlines()
    real = json.loads(pages[1])
    forged = [{**real, "title": "A title no record holds"},
              {"url": "javascript:alert(1)", "ts": real["ts"], "title": "forged page"}]
    (snap.path / PAGES).write_text("\n".join([pages[0], *map(json.dumps, forged)]) + "\n")
    package = json.loads((snap.path / DATAPACKAGE).read_text())
    _lie_in_metadata({}, package)
    (snap.path / DATAPACKAGE).write_text(json.dumps(package))
    show = _cli("show", "-C", str(coll), "--json", str(snap.path))
    assert show.returncode == 0, show.stderr
    shown = json.loads(show.stdout)["pages"]
    assert [(p["url"], p["title"]) for p in shown] == [(real["url"], "Contact | Tidewatch Notes")]
    listed = _cli("list", "-C", str(coll), "--json")
    assert listed.returncode == 0, listed.stderr
    (summary,) = json.loads(listed.stdout)
    assert summary["seeds"] == [real["url"]] and summary["pages"] == 1


def test_folder_whose_warc_is_a_link_to_another_snapshot_fails_verify(pristine, tmp_path):
    """The same bytes, reached through a symbolic link: readers would follow it out of the folder."""
    import shutil
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(pristine, elsewhere)
    folder = tmp_path / "linked"
    shutil.copytree(pristine, folder)
    warc = next((folder / "archive").glob("*.warc.gz"))
    warc.unlink()
    warc.symlink_to(elsewhere / "archive" / warc.name)
    run = _cli("verify", str(folder))
    assert run.returncode == 1 and "symbolic link" in run.stdout + run.stderr, run.stdout + run.stderr


def test_pywb_post_keys_are_accepted(pristine, tmp_path):
    """What cdxj-indexer writes for a POST (the URL's key plus the request body) still keys the
    record's own URL: not a problem."""
    def post_key(files: Files) -> None:
        lines = index_lines(files)
        key, stamp, fields = lines[0]
        lines[0] = (key + "?__wb_method=post&__wb_post_data=eD0x", stamp, fields)
        set_index(files, lines)
    assert problems(crafted(pristine, tmp_path / "post.wacz", post_key)) == []


HOSTILE = (PAYLOAD, "{{7*7}}", "{#", "#}", "{% if 1 %}", "%}", "</a><script>alert(1)</script>", "\" onmouseover=\"x",
           "'><img src=x>", "&amp;", "## line", "\x1b[2J", "`")


def test_home_page_renders_hostile_strings_in_every_field_as_text(tmp_path):
    """pywb's own Jinja2 (from .venv-pywb) renders the home page written with a hostile string
    in every field: nothing executes and each string reads back as written."""
    import html

    from archive.web.replay import Entry, find_wayback, write_config
    hostile = "".join(HOSTILE)
    folder = tmp_path / hostile.replace("/", "_").replace("\x1b", "")
    folder.mkdir()
    seeds = tuple((f"http://ex.test/{h}", h) for h in HOSTILE)
    entries = [Entry("cd" * 32, folder, folder / "index.cdx", seeds, hostile)]
    workdir = tmp_path / "replay"
    write_config(workdir, entries)
    python = find_wayback().parent / "python"
    render = ("import sys, jinja2; env = jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1]), "
              "autoescape=jinja2.select_autoescape()); print(env.get_template('index.html').render())")
    run = subprocess.run([str(python), "-c", render, str(workdir / "templates")], cwd=workdir,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert _pwned(workdir, tmp_path) == []
    text = html.unescape(run.stdout)
    for h in HOSTILE:
        assert h.replace("\x1b", "\ufffd") in text
    assert "49" not in run.stdout and "<script>" not in run.stdout and "<img" not in run.stdout


def test_replay_never_serves_another_snapshots_records(pristine, tmp_path):
    """Issue 13 item 2 through replay: a snapshot folder put in the collection (not imported,
    so never verified) whose index names another snapshot's WARC file through `..`. pywb gets
    an index copy without those lines: the other snapshot's page is not served under its id."""
    collection = tmp_path / "coll"
    with DemoSite() as site:
        other = capture([site.main_url + "/about.html"], collection, depth=0)
    files = unpack(pristine)
    stolen = []
    for line in (other.path / INDEX).read_text().splitlines():
        key, stamp, fields = line.split(" ", 2)
        fields = json.loads(fields)
        fields["filename"] = f"../../{other.path.name}/archive/{fields['filename']}"
        stolen.append((key, stamp, fields))
    set_index(files, stolen)
    reseal(files)
    evil_id = hashlib.sha256(files[DATAPACKAGE]).hexdigest()
    folder = collection / f"20200101T000000Z-evil-{evil_id[:12]}"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    key, stamp, fields = stolen[0]
    with serving(collection, tmp_path) as base:
        own = _get(f"{base}/{other.id}/{stamp}/{fields['url']}")
        stolen_page = _get(f"{base}/{evil_id}/{stamp}/{fields['url']}")
    assert own[0] == 200 and "Tidewatch" in own[1]       # the page is there, under its own id
    assert stolen_page[0] == 404 and "Tidewatch" not in stolen_page[1]
