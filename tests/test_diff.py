"""archive diff and the changed marks of archive list: what changed between two captures."""
from __future__ import annotations

import json

import pytest

from archive import capture
from archive.cli import main
from archive.errors import UsageError
from archive.read.diff import compare, compare_latest
from archive.read.find import timemap


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_diff_of_two_captures_of_a_changing_site(site, collection, capsys):
    visits = []

    def news(handler):
        visits.append(1)
        extra = '<img src="/static/img/team.jpg">' if len(visits) > 1 else '<img src="/static/img/map.png">'
        body = (f"<html><title>News</title><script>var n={len(visits)}</script><body>"
                f"<p>Tide table for today.</p><p>Visit number {len(visits)} of the news page.</p>"
                f"{extra}<img src=\"/static/img/hero.jpg\"></body></html>").encode()
        handler.send_bytes(200, body, "text/html")
    site.routes[("main", "/news.html")] = news
    first = capture(site.main_url + "/news.html", collection, depth=0)
    second = capture(site.main_url + "/news.html", collection, depth=0)
    result = compare(first.id[:10], second.id[:10], collection)
    states = {c.url.rsplit("/", 1)[1]: c.state for c in result.changes}
    assert states["news.html"] == "changed"
    assert states["hero.jpg"] == "unchanged"
    assert states["map.png"] == "removed" and states["team.jpg"] == "added"
    page = next(c for c in result.changes if c.url.endswith("news.html"))
    assert "-Visit number 1 of the news page." in page.text_diff
    assert "+Visit number 2 of the news page." in page.text_diff
    assert not any("var n=" in line for line in page.text_diff)       # scripts are not text
    assert not any("Tide table" in line and line[0] in "+-" for line in page.text_diff)

    code, out, _ = run(capsys, "diff", "-C", str(collection), "--url", site.main_url + "/news.html", "--json")
    data = json.loads(out)
    assert code == 0 and data["before"] == first.id and data["after"] == second.id
    assert data["counts"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    code, out, _ = run(capsys, "diff", "-C", str(collection), first.id[:8], second.id[:8])
    assert code == 0 and "changed  " in out and "+Visit number 2" in out

    marks = [m.changed for m in timemap(site.main_url + "/news.html", collection)]
    assert marks == [None, True]
    assert [m.changed for m in timemap(site.main_url + "/static/img/hero.jpg", collection)] == [None, False]
    code, out, _ = run(capsys, "list", "-C", str(collection), site.main_url + "/news.html")
    assert "first" in out.splitlines()[0] and "CHANGED" in out.splitlines()[1]


def test_diff_needs_two_snapshots(site, collection, capsys):
    capture(site.main_url + "/contact.html", collection, depth=0)
    code, _, err = run(capsys, "diff", "-C", str(collection), "--url", site.main_url + "/contact.html")
    assert code == 2 and "fewer than two snapshots" in err
    code, _, err = run(capsys, "diff", "-C", str(collection))
    assert code == 2 and "two snapshots" in err
    with pytest.raises(UsageError, match="fewer than two"):
        compare_latest(site.main_url + "/contact.html", collection)
