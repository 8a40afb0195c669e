"""The command line through main([...]): output formats, exit codes, one-line errors."""
from __future__ import annotations

import json

import pytest

from archive.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_capture_prints_id_folder_and_summary(site, collection, capsys):
    code, out, err = run(capsys, "capture", "-C", str(collection), "--depth", "0", site.main_url + "/about.html")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("snapshot ") and "sha256:" in lines[0]
    assert lines[1].startswith("folder ")
    assert "requisites" in out


def test_capture_json_then_verify_by_prefix(site, collection, capsys):
    code, out, _ = run(capsys, "capture", "--out", str(collection), "--json", "--depth", "0",
                       site.main_url + "/contact.html")
    data = json.loads(out)
    assert code == 0 and len(data["id"]) == 64 and data["counts"]["pages"] == 1
    code, out, _ = run(capsys, "verify", "-C", str(collection), data["id"][:8])
    assert code == 0 and out.startswith("OK ")
    code, out, _ = run(capsys, "verify", "-C", str(collection), "--format", "json", data["path"])
    assert code == 0 and json.loads(out)["ok"] is True


def test_collection_from_environment(site, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARCHIVE_COLLECTION", str(tmp_path / "env-coll"))
    code, out, _ = run(capsys, "capture", "--json", "--depth", "0", site.main_url + "/moved.html")
    assert code == 0 and json.loads(out)["path"].startswith(str(tmp_path / "env-coll"))


def test_capture_with_verify_flag(site, collection, capsys):
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--depth", "0", "--verify",
                       site.main_url + "/moved.html")
    assert code == 0 and "\nOK " in out


def test_verify_exit_codes(site, collection, capsys, tmp_path):
    run(capsys, "capture", "-C", str(collection), "--depth", "0", site.main_url + "/moved.html")
    snap = next(p for p in collection.iterdir() if not p.name.startswith("."))
    pages = snap / "pages" / "pages.jsonl"
    pages.write_text(pages.read_text() + " ")
    code, out, _ = run(capsys, "verify", str(snap))
    assert code == 1 and out.startswith("FAILED") and "pages/pages.jsonl: file checksum mismatch" in out
    code, _, err = run(capsys, "verify", str(tmp_path))
    assert code == 2 and err.startswith("archive: error:") and "not a snapshot" in err
    code, _, err = run(capsys, "verify", "-C", str(collection), "abcdef12")
    assert code == 2 and "no snapshot" in err


def test_no_answer_exits_3(collection, capsys):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, err = run(capsys, "capture", "-C", str(collection), f"http://127.0.0.1:{port}/")
    assert code == 3 and out == ""
    assert err.count("\n") == 2 and "no snapshot written" in err   # a head line, one line per seed
    assert f"seed http://127.0.0.1:{port}/: connection-refused" in err


@pytest.mark.parametrize("argv, message", [
    (["capture"], "at least one URL"),
    (["capture", "ftp://example.org/"], "unsupported scheme"),
    (["capture", "--resolve", "nonsense", "http://127.0.0.1:1/"], "HOST:PORT:ADDR"),
    (["capture", "--depth", "-1", "http://127.0.0.1:1/"], "--depth"),
    (["capture", "--include", "(", "http://127.0.0.1:1/"], "regular expression"),
])
def test_usage_errors_are_one_line_exit_2(argv, message, collection, capsys):
    code, out, err = run(capsys, *argv[:1], "-C", str(collection), *argv[1:])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_seeds_file(site, collection, tmp_path, capsys):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(f"# two pages\n{site.main_url}/contact.html\n\n{site.main_url}/moved.html\n")
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--json", "--depth", "0",
                       "--seeds", str(seeds))
    assert code == 0 and len(json.loads(out)["seeds"]) == 2


def test_progress_is_drawn_on_a_terminal_and_quiet_otherwise(site, collection, capsys, monkeypatch):
    import io

    from rich.console import Console

    from archive.cli.progress import CaptureProgress
    screen = io.StringIO()
    with CaptureProgress(Console(file=screen, force_terminal=True, width=150)) as progress:
        progress({"pages": 2, "fetched": 9, "bytes": 12_345, "failed": 1})
    assert "10/10 URLs" in screen.getvalue() and "12.3 KB" in screen.getvalue() and "1 error" in screen.getvalue()
    code, out, err = run(capsys, "capture", "-C", str(collection), "--depth", "0", site.main_url + "/moved.html")
    assert code == 0 and "\r" not in err and "pages" not in err   # stderr is not a terminal here


def test_ambiguous_prefix_exits_2_listing_candidates(capture_page, collection, capsys):
    import shutil
    snap = capture_page("/contact.html")
    shutil.copytree(snap.path, collection / "copy")
    code, out, err = run(capsys, "verify", "-C", str(collection), snap.id[:6])
    assert code == 2 and "ambiguous" in err and snap.path.name in err and "copy" in err
