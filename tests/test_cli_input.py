"""Input people type (issue 14, items 12, 14, 16, 17, 18): partial captures by the id `list`
shows or by folder, bare hosts, cite's --page and --base-url, schedule add replacing an
entry, rm asking first."""
from __future__ import annotations

import io
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from archive import capture
from archive.cli import main
from archive.errors import Interrupted


def run(capsys, *argv):  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _interrupted_capture(site, collection: Path) -> Path:  # type: ignore[no-untyped-def]
    """Capture the demo site and interrupt it (as Ctrl-C does) after five URLs; return the
    partial folder kept."""
    seen = []

    def progress(counts: dict[str, int]) -> None:
        seen.append(counts)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as info:
        capture([site.main_url + "/"], collection, progress=progress)
    return Path(info.value.args[0].split("partial capture kept in ")[1].split(" ")[0])


# -- 12: a partial capture, shown and resumed from another collection ---------------------------
def test_incomplete_capture_can_be_shown_by_the_id_list_gives(site, tmp_path: Path, capsys):  # type: ignore[no-untyped-def]
    collection = tmp_path / "elsewhere"
    partial = _interrupted_capture(site, collection)
    code, out, _ = run(capsys, "list", "-C", str(collection))
    line = next(line for line in out.splitlines() if "INCOMPLETE" in line)
    short = line.split()[0]
    assert code == 0 and partial.name.startswith(short)
    for ref in (short, str(partial)):
        code, out, err = run(capsys, "show", "-C", str(collection), ref)
        # (the demo server may still print its side of the connections the interruption cut)
        assert code == 0 and not [line for line in err.splitlines() if line.startswith("archive:")], err
        assert out.startswith("INCOMPLETE capture") and f"folder   {partial}" in out
        assert f"  200  {site.main_url}/  " in out   # the seed, fetched before the interruption
    code, out, _ = run(capsys, "show", "-C", str(collection), "--json", short)
    data = json.loads(out)
    assert data["complete"] is False and data["pages"][0]["url"] == site.main_url + "/"


def test_resume_by_folder_path_uses_the_folder_s_collection(site, tmp_path: Path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    collection = tmp_path / "elsewhere"
    partial = _interrupted_capture(site, collection)
    monkeypatch.chdir(tmp_path)           # the default collection, ./snapshots, is not this one
    monkeypatch.delenv("ARCHIVE_COLLECTION", raising=False)
    code, out, err = run(capsys, "capture", "--json", "--resume", str(partial))
    assert code == 0, err
    data = json.loads(out)
    assert Path(data["path"]).parent == collection and not partial.exists()
    assert not (tmp_path / "snapshots").exists()
    code, out, _ = run(capsys, "verify", data["path"])
    assert code == 0 and out.startswith("OK ")


# -- 14: a bare host is https:// ----------------------------------------------------------------
def test_bare_host_is_taken_as_https_and_said(tmp_path: Path, capsys):
    from test_tls import HttpsSite

    site = HttpsSite(tmp_path)
    try:
        port = site.server.server_address[1]
        code, out, err = run(capsys, "capture", "-C", str(tmp_path / "c"), "--json", "--depth", "0",
                             "--ca-bundle", str(site.ca_path), f"localhost:{port}")
    finally:
        site.close()
    assert code == 0, err
    assert err == f"archive: taking localhost:{port} as https://localhost:{port}/\n"
    assert json.loads(out)["seeds"] == [f"https://localhost:{port}/"]


def test_bare_host_with_resolve_and_no_server_exits_3(tmp_path: Path, capsys):
    code, _, err = run(capsys, "capture", "-C", str(tmp_path / "c"), "--resolve", "archive.test:443:127.0.0.1",
                       "archive.test/page")
    lines = err.splitlines()
    assert code == 3 and lines[0] == "archive: taking archive.test/page as https://archive.test/page"
    assert lines[2].startswith("archive: error: seed https://archive.test/page: connection-refused")


# -- 16: cite: --base-url, --page, the local replay link -------------------------------------------
@pytest.fixture
def two_seeds(site, collection: Path):  # type: ignore[no-untyped-def]
    return capture([site.main_url + "/about.html", site.main_url + "/contact.html"], collection, depth=0), site


def test_cite_base_url_without_scheme_is_refused(two_seeds, capsys):  # type: ignore[no-untyped-def]
    snap, site = two_seeds
    with pytest.raises(SystemExit) as info:
        main(["cite", str(snap.path), "--base-url", "archive.example.org", "--page", site.main_url + "/about.html"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "not an absolute http(s) URL: 'archive.example.org'" in err


def test_cite_of_several_seeds_lists_them_and_takes_page(two_seeds, capsys):  # type: ignore[no-untyped-def]
    snap, site = two_seeds
    code, out, err = run(capsys, "cite", str(snap.path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "2 seed pages; choose one with --page URL" in err
    assert f"{site.main_url}/about.html" in err and f"{site.main_url}/contact.html" in err
    code, out, _ = run(capsys, "cite", str(snap.path), "--page", site.main_url + "/contact.html")
    assert code == 0 and out.startswith('"Contact | Tidewatch Notes."')
    assert f"(local replay: http://127.0.0.1:8080/{snap.id}/" in out and out.split("\n")[0].endswith("/contact.html).")
    code, out, _ = run(capsys, "cite", str(snap.path), "--page", site.main_url + "/about.html",
                       "--base-url", "https://archive.example.org/")
    assert code == 0 and f" at https://archive.example.org/{snap.id}/" in out and "local replay" not in out
    code, _, err = run(capsys, "cite", str(snap.path), "--page", site.main_url + "/nowhere.html")
    assert code == 2 and f"no page {site.main_url}/nowhere.html in the snapshot" in err


# -- 17: schedule add of a URL already scheduled ---------------------------------------------------
def test_schedule_add_says_it_replaced_an_entry(collection: Path, capsys):
    url = "http://127.0.0.1:9/news"
    code, _, err = run(capsys, "schedule", "add", "-C", str(collection), url, "--every", "1d")
    assert code == 0 and err == ""
    code, out, err = run(capsys, "schedule", "add", "-C", str(collection), url, "--every", "6h", "--depth", "2")
    assert code == 0 and out.startswith(f"scheduled {url} every 6h")
    assert err == f"archive: replaced the entry {url} had: every 1d -> 6h, depth default -> 2\n"
    code, out, _ = run(capsys, "schedule", "list", "-C", str(collection), "--json")
    assert [(r["url"], r["every"], r["options"]) for r in json.loads(out)] == [(url, "6h", {"depth": 2})]


# -- 18: rm asks on a terminal, needs --yes elsewhere -------------------------------------------------
@pytest.fixture
def removable(demo_snapshot, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "coll"
    shutil.copytree(demo_snapshot.path.parent, root)
    return root, root / demo_snapshot.path.name, demo_snapshot.id


def test_rm_without_a_terminal_needs_yes(removable, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    root, folder, sid = removable
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))   # not a terminal: the answer is not read
    code, out, err = run(capsys, "rm", "-C", str(root), sid[:6])
    assert code == 2 and out == "" and folder.is_dir()
    assert err == f"archive: error: rm would remove {folder.name}: not asking without a terminal; add --yes\n"
    code, out, err = run(capsys, "rm", "-C", str(root), "--yes", sid[:6])
    assert code == 0 and out == f"removed {folder}\n" and not folder.exists()


def _rm_on_a_terminal(root: Path, ref: str, answer: bytes) -> subprocess.CompletedProcess[bytes]:
    """Run `archive rm` with a pseudo-terminal as stdin, typing `answer` at it."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "archive", "rm", "-C", str(root), ref], stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        os.close(slave)
        os.write(master, answer)   # waits in the terminal's buffer until rm reads it
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    finally:
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_rm_on_a_terminal_shows_and_asks(removable):  # type: ignore[no-untyped-def]
    root, folder, sid = removable
    done = _rm_on_a_terminal(root, sid[:6], b"n\n")
    assert done.returncode == 0 and folder.is_dir() and done.stdout == b""
    assert f"will remove {folder}\n".encode() in done.stderr and b"remove 1 snapshot? [y/N] " in done.stderr
    assert done.stderr.endswith(b"archive: nothing removed\n")
    done = _rm_on_a_terminal(root, sid[:6], b"y\n")
    assert done.returncode == 0 and not folder.exists() and done.stdout == f"removed {folder}\n".encode()
