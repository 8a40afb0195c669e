"""Start-up (issue 17): each command loads only the libraries it uses, so `archive list` answers
fast. Checked on `sys.modules` of a real `archive` process (not a timing test)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# What no reading command needs: the write path's HTTP and HTML libraries (requests pulls in
# urllib3; surt pulls in tldextract, which pulls in requests), the proofs' cryptography, the
# web interface, the cluster, the browser and the capture's live display.
HEAVY = {"requests", "urllib3", "tldextract", "lxml", "bs4", "cryptography", "asn1crypto", "celery",
         "redis", "starlette", "uvicorn", "jinja2", "playwright", "PIL", "rich"}
# ... and what only a command that opens WARC records or writes index keys needs.
RECORDS = {"warcio", "surt", "archive.read.verify", "archive.write"}


def loaded(args: list[str], tmp_path: Path, code: int = 0) -> set[str]:
    """Run `archive ARGS` in a fresh interpreter; return the top-level packages and the archive
    modules in its sys.modules when it exits (a stand-in for a module not loaded yet, as
    formats/urls.py puts for tldextract, does not count)."""
    out = tmp_path / "modules.json"
    script = ("import atexit, json, runpy, sys\n"
              "def names():\n"
              "    return sorted(n for n, m in list(sys.modules.items()) if type(m).__name__ != '_Deferred')\n"
              f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(names())))\n"
              f"sys.argv = ['archive', *{args!r}]\n"
              "runpy.run_module('archive', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    names = json.loads(out.read_text())
    return {n.split(".")[0] for n in names} | {n for n in names if n.startswith("archive.")}


@pytest.fixture
def one_snapshot(demo_snapshot, tmp_path):  # type: ignore[no-untyped-def]
    """A collection holding a copy of the demo snapshot, its catalogue already made."""
    root = tmp_path / "snapshots"
    shutil.copytree(demo_snapshot.path, root / demo_snapshot.path.name)
    assert "archive.write" not in loaded(["list", "-C", str(root)], tmp_path)   # builds the catalogue
    return root, root / demo_snapshot.path.name



def run_python(script: str) -> None:
    """Run `script` in a fresh interpreter; fail with its stderr unless it exits 0."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr

def test_list_and_the_timemap_load_no_heavy_library(one_snapshot, demo_capture, tmp_path):
    root, _ = one_snapshot
    _, demo = demo_capture
    for args in (["list", "-C", str(root)], ["list", "-C", str(root), "--json", demo.main_url + "/"],
                 ["search", "-C", str(root), "demo"], ["--help"]):
        found = loaded(args, tmp_path)
        assert "archive.cli" in found and "archive.models" in found   # the check sees what loads
        assert not found & (HEAVY | RECORDS), (args, sorted(found & (HEAVY | RECORDS)))
    assert "sqlite3" in loaded(["list", "-C", str(root)], tmp_path)


def test_verify_loads_its_own_record_reader_and_not_the_write_path(one_snapshot, tmp_path):
    _, snapshot = one_snapshot
    found = loaded(["verify", str(snapshot)], tmp_path)
    assert {"archive.read.verify", "archive.warc.check"} <= found   # surt only for a URL surtkey does not key
    # a WARC is read by warc.check; warcio only for an ARC file, the writer never
    unwanted = HEAVY | {"archive.write", "archive.warc.writer", "warcio", "ada_url", "uuid", "pickle"}
    assert not found & unwanted, sorted(found & unwanted)


def test_a_capture_still_loads_what_it_fetches_with(tmp_path):
    """The check can fail: a command that does fetch shows requests among its modules."""
    found = loaded(["capture", "-C", str(tmp_path / "c"), "--quiet", "http://127.0.0.1:9/"], tmp_path, code=3)
    assert {"requests", "archive.write"} <= found


def test_a_surt_key_defers_tldextract_until_a_site_is_asked_for(tmp_path):
    script = ("import sys\n"
              "from archive.formats.urls import site_of, surt_key\n"
              "assert surt_key('http://www.Example.com/%41?b=1&a=2') == 'com,example)/a?a=2&b=1'\n"
              "assert 'requests' not in sys.modules, 'surt loaded tldextract'\n"
              "assert site_of('https://news.bbc.co.uk/a') == 'bbc.co.uk'\n"
              "import tldextract\n"
              "assert sys.modules['surt.handyurl'].tldextract.TLDExtract is tldextract.TLDExtract\n"
              "assert type(sys.modules['tldextract']).__name__ == 'module'\n"
              "assert surt_key('http://news.bbc.co.uk/x') == 'uk,co,bbc,news)/x'\n")
    run_python(script)


def test_the_stand_in_answers_like_the_module_it_stands_for(tmp_path):
    script = ("import importlib.util, sys\n"
              "from archive.formats.urls import surt_key\n"
              "surt_key('http://a.example.org/%41')   # not a plain URL: the library keys it\n"
              "assert importlib.util.find_spec('tldextract').name == 'tldextract'\n"
              "assert not hasattr(sys.modules['tldextract'], '__file__') and 'requests' not in sys.modules\n"
              "import tldextract.suffix_list\n"   # a submodule: the real package loads first
              "import tldextract\n"
              "assert type(tldextract).__name__ == 'module' and tldextract.suffix_list.get_suffix_lists\n"
              "assert sys.modules['surt.handyurl'].tldextract.TLDExtract is tldextract.TLDExtract\n")
    run_python(script)


def test_site_of_first_then_surt_key(tmp_path):
    script = ("import sys\n"
              "from archive.formats.urls import site_of, surt_key\n"
              "assert site_of('http://a.example.org/') == 'example.org'\n"
              "assert surt_key('http://a.example.org/') == 'org,example,a)/'\n"
              "assert type(sys.modules['tldextract']).__name__ == 'module'\n")
    run_python(script)


def test_the_library_api_loads_capture_and_verify_on_first_use(tmp_path):
    script = ("import sys\n"
              "import archive\n"
              "from archive import ArchiveError, CaptureOptions, Snapshot\n"
              "assert 'archive.write.capture' not in sys.modules and 'archive.read.verify' not in sys.modules\n"
              "from archive import capture, verify\n"
              "from archive.read.verify import verify as real_verify\n"
              "from archive.write.capture import capture as real_capture\n"
              "assert verify is real_verify and capture is real_capture and archive.verify is real_verify\n"
              "assert 'cryptography' not in sys.modules\n"
              "try:\n"
              "    archive.nothing\n"
              "except AttributeError:\n"
              "    pass\n"
              "else:\n"
              "    raise SystemExit('no AttributeError')\n")
    run_python(script)


# The output path's fast ways give the same text as the slow ones, whatever the data.
from hypothesis import given, settings, strategies as st  # noqa: E402

from archive.cli.common import _UNSAFE, _escape, json_text, printable, terminal_text  # noqa: E402

_TEXT = st.text(st.characters(codec="utf-8") | st.sampled_from("\r\n\x1b\x7f\x9b\u2028\u202e}{,\" "))
_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT


@settings(max_examples=300, deadline=None)
@given(_TEXT | st.text(st.characters(max_codepoint=127)))
def test_terminal_text_escapes_as_the_expression_does(text):
    assert terminal_text(text) == _UNSAFE.sub(_escape, text)
    assert "\x1b" not in terminal_text(text) and "\x1b" not in printable(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(_TEXT, _SCALAR | st.lists(_SCALAR, max_size=2), max_size=5), max_size=5)
       | st.dictionaries(_TEXT, _SCALAR, max_size=3) | _SCALAR)
def test_json_text_is_json_dumps_with_indent_2(data):
    assert json_text(data) == json.dumps(data, indent=2)
