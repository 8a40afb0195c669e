"""`archive list URL` prints the whole TimeMap (RFC 7089: every memento, first and last marked):
the command's text, JSON and link format agree with the library's TimeMap; a page is refused."""
from __future__ import annotations

import json

from archive.cli import main
from archive.read.find import link_format, timemap


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_capture_in_every_format_and_no_page(site, capture_page, collection, capsys):
    url = site.main_url + "/about.html"
    snaps = [capture_page("/about.html") for _ in range(3)]
    mementos = timemap(url, collection)
    assert [m.snapshot_id for m in mementos] == [s.id for s in snaps]
    assert [m.state for m in mementos] == ["first", "same", "same"]
    code, out, _ = run(capsys, "list", "-C", str(collection), "--json", url)
    assert code == 0 and out == json.dumps([vars(m) for m in mementos], indent=2) + "\n"
    code, out, _ = run(capsys, "list", "-C", str(collection), url)
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == [s.id[:12] for s in snaps]
    assert all(line.split()[3] in ("first", "same") and line.endswith("/" + url) for line in out.splitlines())
    code, out, _ = run(capsys, "list", "-C", str(collection), "--format", "link", url)
    assert code == 0 and out == link_format(url, mementos) and out.count("memento") == 3
    for page in (["--limit", "2"], ["--offset", "1"]):
        code, out, err = run(capsys, "list", "-C", str(collection), *page, url)
        assert code == 2 and out == "" and "TimeMap lists every capture" in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "list", "-C", str(collection), "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 2
