"""Clear errors and the right exit codes (issue 14, items 8, 9, 11, 13, 15, 21): through
`archive.cli.main([...])`, and a real closed pipe in a subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archive.cli import main


def run(capsys, *argv):  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def demo_collection(demo_snapshot, tmp_path: Path) -> Path:
    """A copy of the shared demo capture's collection, for tests that change a collection."""
    root = tmp_path / "coll"
    shutil.copytree(demo_snapshot.path.parent, root)
    return root


# -- 8: a missing or non-collection -C folder ------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["list"], ["list", "http://example.org/"], ["audit"], ["show", "abcdef12"], ["rm", "--yes", "abcdef12"],
    ["diff", "abcdef12", "abcdef34"], ["verify", "abcdef12"], ["schedule", "list"], ["schedule", "run"],
    ["schedule", "remove", "http://example.org/"], ["schedule", "cron-line"],
])
def test_missing_collection_is_named(tmp_path: Path, capsys, argv):  # type: ignore[no-untyped-def]
    missing = tmp_path / "nosuch"
    code, out, err = run(capsys, *argv, "-C", str(missing))
    assert code == 2 and out == ""
    assert err == f"archive: error: not a collection: {missing} (no such folder)\n"
    assert not missing.exists()


def test_folder_of_other_things_is_not_a_collection_and_audit_writes_nothing(tmp_path: Path, capsys):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "letter.txt").write_text("not a snapshot")
    (folder / "photos").mkdir()
    for argv in (["audit"], ["list"], ["schedule", "list"]):
        code, _, err = run(capsys, *argv, "-C", str(folder))
        assert code == 2 and err.startswith(f"archive: error: not a collection: {folder} (it holds no snapshot")
    assert sorted(p.name for p in folder.iterdir()) == ["letter.txt", "photos"]   # no .state/


def test_what_counts_as_a_collection(tmp_path: Path, demo_collection: Path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, "list", "-C", str(empty))
    assert (code, out, err) == (0, "", "")
    scheduled = tmp_path / "scheduled"
    scheduled.mkdir()
    (scheduled / "schedule.toml").write_text("")
    assert run(capsys, "list", "-C", str(scheduled))[0] == 0
    code, out, _ = run(capsys, "list", "-C", str(demo_collection))
    assert code == 0 and "pages" in out
    code, out, _ = run(capsys, "audit", "-C", str(demo_collection))
    assert code == 0 and out.startswith("OK audit")


def test_commands_that_create_a_collection_still_do(site, tmp_path: Path, capsys):
    fresh = tmp_path / "new" / "coll"
    code, _, err = run(capsys, "schedule", "add", "-C", str(fresh), site.main_url + "/", "--every", "1d")
    assert code == 0 and (fresh / "schedule.toml").is_file()
    fresh2 = tmp_path / "new2"
    code, _, _ = run(capsys, "capture", "-C", str(fresh2), "--depth", "0", site.main_url + "/about.html")
    assert code == 0 and run(capsys, "list", "-C", str(fresh2))[0] == 0


# -- 9: list URL with no capture of it --------------------------------------------------------
def test_list_of_an_uncaptured_url_says_so_and_succeeds(demo_collection: Path, capsys):
    code, out, err = run(capsys, "list", "-C", str(demo_collection), "http://127.0.0.1:9/never.html")
    assert code == 0 and out == ""
    assert err == "archive: no captures of http://127.0.0.1:9/never.html\n"
    code, out, err = run(capsys, "list", "-C", str(demo_collection), "--json", "http://127.0.0.1:9/never")
    assert code == 0 and json.loads(out) == [] and "no captures of" in err


# -- 11: a closed stdout pipe ends quietly ----------------------------------------------------
def _with_closed_stdout(*argv: str) -> tuple[int, str]:
    """Run `archive ARGV` with stdout a pipe whose reading end is closed before it starts."""
    read_end, write_end = os.pipe()
    os.close(read_end)   # no reader from the start: the first write fails, whatever the timing
    try:
        proc = subprocess.Popen([sys.executable, "-m", "archive", *argv], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    finally:
        os.close(write_end)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    return proc.returncode, err


@pytest.mark.parametrize("command", ["show", "list"])
def test_closed_pipe_ends_quietly(demo_snapshot, command):  # type: ignore[no-untyped-def]
    argv = ["show", str(demo_snapshot.path)] if command == "show" else ["list", "-C", str(demo_snapshot.path.parent)]
    code, err = _with_closed_stdout(*argv)
    assert code in (0, 141)
    assert err == ""   # no "internal error: BrokenPipeError", no "Exception ignored" at exit


def test_show_piped_into_head_ends_quietly(demo_snapshot):  # type: ignore[no-untyped-def]
    script = f'{sys.executable} -m archive show "$1" | head -2; echo "status=${{PIPESTATUS[0]}}"'
    proc = subprocess.run(["bash", "-c", script, "bash", str(demo_snapshot.path)], capture_output=True,
                          text=True, timeout=120, start_new_session=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("snapshot ") and lines[2] in ("status=0", "status=141")
    assert proc.stderr == ""


# -- 13: a prefix too short, a file that is not there -----------------------------------------
def test_short_prefix_asks_for_six_digits(demo_collection: Path, capsys):
    code, _, err = run(capsys, "verify", "-C", str(demo_collection), "712e")
    assert code == 2 and "6 or more hex digits" in err and err.count("\n") == 1


def test_missing_wacz_is_no_such_file(demo_collection: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "verify", "-C", str(demo_collection), "nosuch.wacz")
    assert code == 2 and err == "archive: error: no such file: nosuch.wacz\n"
    code, _, err = run(capsys, "show", "-C", str(demo_collection), "exports/nosuch")
    assert code == 2 and "no such file: exports/nosuch" in err


# -- 15: seeds that fail, arguments that are not URLs ------------------------------------------
def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_seed_failing_exits_3_naming_each(collection: Path, capsys):
    refused = f"http://127.0.0.1:{_free_port()}/"
    unknown = "http://no-such-host.invalid/"   # the test guard fails it the way DNS does
    code, out, err = run(capsys, "capture", "-C", str(collection), refused, unknown)
    assert code == 3 and out == ""
    head, *seeds = err.splitlines()
    assert head == "archive: error: no HTTP answer from any seed; no snapshot written (2 failed)"
    assert sorted(line.split(": ")[2] for line in seeds) == sorted([f"seed {refused}", f"seed {unknown}"])
    why = {line.split(": ")[2]: line.split(": ")[3] for line in seeds}
    assert why[f"seed {refused}"] == "connection-refused" and why[f"seed {unknown}"].startswith("dns")
    assert not any(p.name != ".state" for p in collection.iterdir()) if collection.exists() else True


def test_stray_argument_is_refused_before_capturing(site, collection: Path, capsys):
    code, out, err = run(capsys, "capture", "-C", str(collection), site.main_url + "/", "stray")
    assert code == 2 and out == ""
    assert err.startswith("archive: error: nothing captured; not a URL: 'stray'") and err.count("\n") == 1
    assert not collection.exists()
    assert site.paths() == []   # nothing was fetched


# -- 21: wording -------------------------------------------------------------------------------
def test_summary_counts_agree_with_list_and_show(site, collection: Path, capsys):
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--json", site.main_url + "/")
    data = json.loads(out)
    assert code == 0 and data["counts"]["redirects"] == 1   # /redirect-me: not a page of its own
    _, text, _ = run(capsys, "show", data["path"])
    _, listed, _ = run(capsys, "list", "-C", str(collection))
    pages = data["counts"]["pages"]
    assert f"pages ({pages}):" in text and f"{pages:>4} pages" in listed
    with open(Path(data["path"]) / "pages" / "pages.jsonl") as f:
        assert len(f.read().splitlines()) - 1 == pages   # its first line is the header


def test_summary_says_one_frame_and_one_body(site, collection: Path, capsys):
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--depth", "0", site.main_url + "/")
    assert code == 0 and "1 frame," in out and "1 frames" not in out and "1 HTTP error;" in out
    # a body (over dedup's 1 KB floor) the collection holds already, under another URL: "1 body"
    for path in ("/a.html", "/b.html"):
        site.routes[("main", path)] = lambda h: h.send_bytes(200, b"<p>the same words</p>" * 200, "text/html")
    run(capsys, "capture", "-C", str(collection), "--depth", "0", "--ignore-robots", site.main_url + "/a.html")
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--depth", "0", "--ignore-robots",
                       site.main_url + "/b.html")
    revisits = next(line for line in out.splitlines() if line.startswith("revisits"))
    assert code == 0 and revisits.startswith("revisits 1 body the collection holds already")


def test_top_level_help_describes_the_tool(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "Capture web pages into verifiable, citable snapshots" in out
    assert "argv" not in out and "library call" not in out
    assert "Exit codes: 0 success" in out


@pytest.mark.parametrize("argv, expected", [
    (["show"], "A capture listed as INCOMPLETE"),
    (["export"], "An existing FILE is kept unless --force"),
    (["rm"], "--yes is needed"),
    (["schedule", "add"], "has its entry replaced"),
    (["capture"], "(default: 10.0)"),
    (["capture"], "(default: 30.0)"),
    (["capture"], "follow at most N redirects from one URL (default: 10)"),
    (["capture"], "User-Agent header sent (default: archive/"),
])
def test_commands_have_descriptions_and_defaults(capsys, argv, expected):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert expected in " ".join(capsys.readouterr().out.split())


def test_export_overwrite_error_names_force(demo_snapshot, tmp_path: Path, capsys):  # type: ignore[no-untyped-def]
    dest = tmp_path / "x.wacz"
    dest.write_bytes(b"keep me")
    code, _, err = run(capsys, "export", str(demo_snapshot.path), "--wacz", str(dest))
    assert code == 2 and "--force" in err and dest.read_bytes() == b"keep me"


def test_a_seed_without_answer_beside_one_that_answered_is_warned(site, collection: Path, capsys):
    unknown = "http://no-such-host.invalid/"
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--depth", "0", site.main_url + "/about.html",
                       unknown)
    assert code == 0   # a snapshot was written: the evidence of the seed that answered
    assert f"warning  seed {unknown} got no answer: dns" in out
