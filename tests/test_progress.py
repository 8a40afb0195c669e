"""Seeing long work (issue 14, items 19 and 20): what a capture reports as it runs, the rich
display on a terminal only, `-v`'s line per URL, and HTTP errors that are not errors."""
from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from rich.console import Console
from test_architecture import files_importing

from archive import capture
from archive.cli import main
from archive.cli.progress import CaptureProgress


def run(capsys, *argv):  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- 19: what the library reports ------------------------------------------------------------------
def test_capture_reports_queue_and_flight_and_each_url(site, collection: Path):  # type: ignore[no-untyped-def]
    reports: list[dict[str, int]] = []
    urls: list[dict[str, object]] = []
    snap = capture([site.main_url + "/"], collection, progress=reports.append, on_url=urls.append,
                   connections=2, per_host=2)
    assert all({"queued", "in_flight"} <= r.keys() for r in reports)
    assert max(r["queued"] for r in reports) > 5              # the seed's links wait their turn
    assert max(r["in_flight"] for r in reports) >= 1
    assert all(r["in_flight"] <= 2 for r in reports)
    assert reports[-1]["queued"] == reports[-1]["in_flight"] == 0
    assert "queued" not in snap.counts and "in_flight" not in snap.counts   # not part of the snapshot
    fetched = [u for u in urls if u["outcome"] == "fetched"]
    assert len(fetched) == snap.counts["fetched"]
    seed = next(u for u in fetched if u["url"] == site.main_url + "/")
    assert seed["status"] == 200 and seed["kind"] == "page" and int(seed["bytes"]) > 1000  # type: ignore[call-overload]


def test_display_shows_bar_counts_rate_and_estimate():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=150, color_system=None)
    with CaptureProgress(console) as shown:
        shown({"fetched": 6, "failed": 1, "queued": 4, "in_flight": 3, "bytes": 25_000})
        assert shown.live is not None
        shown.live.refresh()
        shown.url_done({"url": "http://ex.org/\x1b[2Jx", "kind": "page", "outcome": "fetched",
                        "status": 200, "bytes": 5000})
    text = out.getvalue()
    assert "7/14 URLs, 4 queued, 3 in flight, 25.0 KB at" in text and "B/s, 1 error" in text
    assert " 50%" in text and "━" in text               # the bar, half done
    assert "200  5.0 KB  page       http://ex.org/\\x1b[2Jx" in text and "\x1b[2J" not in text


def test_no_display_off_a_terminal_and_verbose_logs_each_url(site, collection: Path, capsys):  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "capture", "-C", str(collection), "--depth", "0", site.main_url + "/about.html")
    assert code == 0 and not [line for line in err.splitlines() if "URLs" in line or "archive" in line]
    assert "\r" not in err and "\x1b" not in err   # stderr is not a terminal here: no progress display
    code, out, err = run(capsys, "capture", "-C", str(collection), "--json", "-v", "--depth", "0",
                         site.main_url + "/")
    data = json.loads(out)
    lines = [line for line in err.splitlines() if not line.startswith("archive:")]
    assert code == 0 and len(lines) == data["counts"]["fetched"]
    assert f"page       {site.main_url}/\n" in err and any(line.startswith("200  ") for line in lines)
    assert "404  " in err and f"requisite  {site.main_url}/static/img/missing.png" in err


def _capture_on_a_terminal(site, collection: Path, *extra: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """Run `archive capture` with stderr a pseudo-terminal; return (exit code, stdout, terminal)."""
    master, slave = pty.openpty()
    seen = bytearray()

    def drain() -> None:   # the terminal must be read while the capture writes to it
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:   # EIO: the last writer closed
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = dict(os.environ, COLUMNS="150", TERM="xterm")
    env.pop("NO_COLOR", None)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "archive", "capture", "-C", str(collection), *extra,
                                 "--delay", "0.02", "--per-host", "1", site.main_url + "/"],
                                stdout=subprocess.PIPE, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        try:
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
        reader.join(timeout=30)
    finally:
        os.close(master)
    return proc.returncode, out.decode(), seen.decode("utf-8", "replace")


def test_display_on_a_terminal_and_never_with_json(site, tmp_path: Path):  # type: ignore[no-untyped-def]
    code, out, terminal = _capture_on_a_terminal(site, tmp_path / "a")
    assert code == 0 and out.startswith("snapshot ")
    assert "URLs, " in terminal and " in flight, " in terminal and "/s, " in terminal and "%" in terminal
    code, out, terminal = _capture_on_a_terminal(site, tmp_path / "b", "--json")
    assert code == 0 and json.loads(out)["counts"]["pages"] >= 1
    assert terminal == ""
    code, out, terminal = _capture_on_a_terminal(site, tmp_path / "c", "-q")
    assert code == 0 and terminal == ""


def test_rich_only_in_the_progress_module():
    assert files_importing("rich") == {"cli/progress.py"}


# -- 20: a robots.txt 404 is normal; show names the HTTP errors ----------------------------------------
def test_missing_robots_txt_is_not_an_http_error(site, collection: Path, capsys):  # type: ignore[no-untyped-def]
    site.routes[("*", "/robots.txt")] = lambda h: h.send_bytes(404, b"not here", "text/html")
    code, out, _ = run(capsys, "capture", "-C", str(collection), "--json", site.main_url + "/")
    data = json.loads(out)
    assert code == 0 and data["counts"]["robotss"] == 2 and data["counts"]["http_errors"] == 1
    code, out, _ = run(capsys, "show", data["path"])
    section = out.split("HTTP errors (1):\n")[1].split("failures and skips")[0]
    assert section == f"  404  {site.main_url}/static/img/missing.png\n"
    code, out, _ = run(capsys, "show", "--json", data["path"])
    assert json.loads(out)["http_errors"] == [{"url": f"{site.main_url}/static/img/missing.png", "status": 404}]


def test_robots_txt_server_error_still_counts(site, collection: Path):  # type: ignore[no-untyped-def]
    site.routes[("*", "/robots.txt")] = lambda h: h.send_bytes(503, b"down", "text/html")
    snap = capture([site.main_url + "/about.html"], collection, depth=1, retries=0)
    assert snap.counts["http_errors"] >= 1   # a 5xx robots.txt is the server failing (RFC 9309 2.3.1.4)
