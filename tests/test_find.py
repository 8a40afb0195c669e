"""archive list, show and verify --expect: finding snapshots and checking a citation."""
from __future__ import annotations

import json

from archive.cli import main
from archive.read.find import details, link_format, snapshots, timemap


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_newest_first_with_last_verification(capture_page, collection, capsys):
    first = capture_page("/contact.html")
    second = capture_page("/about.html")
    found = snapshots(collection)
    assert [s.id for s in found] == [second.id, first.id]   # ordered to the microsecond
    assert {s.id for s in found} == {first.id, second.id}
    assert all(s.verified is None for s in found)
    assert run(capsys, "verify", "-C", str(collection), first.id[:10])[0] == 0
    by_id = {s.id: s for s in snapshots(collection)}
    assert by_id[first.id].verified["ok"] is True and by_id[second.id].verified is None
    code, out, _ = run(capsys, "list", "-C", str(collection))
    assert code == 0 and len(out.splitlines()) == 2 and "verified" in out and "never verified" in out
    code, out, _ = run(capsys, "list", "-C", str(collection), "--json")
    assert {d["id"] for d in json.loads(out)} == {first.id, second.id}


def test_timemap_of_a_url_across_snapshots(site, capture_page, collection, capsys):
    a = capture_page("/about.html")
    b = capture_page("/about.html")
    capture_page("/contact.html")
    mementos = timemap(site.main_url + "/about.html", collection)
    assert {m.snapshot_id for m in mementos} == {a.id, b.id}
    assert all(m.status == "200" and m.replay.endswith("/" + site.main_url + "/about.html") for m in mementos)
    text = link_format(site.main_url + "/about.html", mementos)
    assert text.startswith(f'<{site.main_url}/about.html>; rel="original"')
    assert 'rel="first memento"' in text and 'rel="last memento"' in text and "GMT" in text
    code, out, _ = run(capsys, "list", "-C", str(collection), "--format", "link", site.main_url + "/about.html")
    assert code == 0 and out == text
    code, out, err = run(capsys, "list", "-C", str(collection), site.main_url + "/never.html")
    assert code == 0 and out == "" and err == f"archive: no captures of {site.main_url}/never.html\n"


def test_show_pages_types_failures(site, capture_page, collection, capsys):
    snap = capture_page("/", depth=1)
    d = details(snap.id[:8], collection)
    assert d.id == snap.id
    assert any(p["url"] == site.main_url + "/about.html" for p in d.pages)
    assert d.types["image/jpeg"]["count"] >= 5 and d.types["text/css"]["count"] >= 4
    reasons = {f["url"]: f["reason"] for f in d.failures}
    assert reasons[site.main_url + "/private/drafts.html"] == "skipped: disallowed by robots.txt"
    assert d.options["depth"] == 1 and d.window["start"] <= d.window["end"]
    code, out, _ = run(capsys, "show", "-C", str(collection), snap.id[:8])
    assert code == 0 and "resources by type:" in out and "robots.txt" in out


def test_verify_expect_checks_the_cited_package(capture_page, collection, capsys):
    snap = capture_page("/contact.html")
    other = capture_page("/moved.html")
    code, out, _ = run(capsys, "verify", "-C", str(collection), str(snap.path), "--expect", f"sha256:{snap.id}")
    assert code == 0 and out.startswith("OK")
    code, out, _ = run(capsys, "verify", "-C", str(collection), str(snap.path), "--expect", f"sha256:{other.id}")
    assert code == 1 and "not the package cited" in out and other.id in out
