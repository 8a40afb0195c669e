"""The README, run: every command of its shell blocks, in order, on a fresh collection.

The README's example hosts become the demo site on 127.0.0.1, its time-stamping authority
the test TSA (tests/tsa.py), its snapshot ids the ids the commands just made. The
"Use" block is a synopsis: each of its commands must exist and know the options it shows.
A line the test does not know how to run fails it, so a new README command gets run too.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ports import free_port
from tsa import TSA
from waiting import wait_for

from archive.cli import main
from archive.demo import DemoSite

README = Path(__file__).resolve().parent.parent / "README.md"
SYNOPSIS = "Use"   # the heading of the block that lists commands with [optional] parts

# Lines that are not run, each with the reason.
SKIPPED = {
    "make test": "the test suite: this test is part of it",
    "source .venv/bin/activate": "the test runs the archive program of the environment it runs in",
    "archive worker --broker": "a Redis broker and long-running workers: tests/test_cluster.py runs them",
    "archive schedule run --broker": "needs the workers above: tests/test_cluster.py",
    "archive schedule status --broker": "needs the broker above: tests/test_cluster.py",
}
# What `make run` does once it has set up the environments (see the Makefile).
MAKE_RUN = "archive demo"


@dataclass
class Block:
    heading: str
    language: str
    lines: list[str] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, each with the heading above it."""
    found: list[Block] = []
    heading, current = "", None
    for line in text.splitlines():
        if current is None and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            if current is None:
                current = Block(heading, line[3:].strip())
            else:
                found.append(current)
                current = None
        elif current is not None:
            current.lines.append(line)
    return found


def command_of(line: str) -> str:
    """A line of a shell block without its comment (two spaces or more, then #)."""
    return re.split(r"\s{2,}#|^\s*#", line, maxsplit=1)[0].strip()


class Session:
    """A newcomer's shell: a fresh folder (so the default collection ./snapshots), the archive
    program of this environment, a config folder of its own for keys."""

    def __init__(self, home: Path, site: DemoSite, tsa: TSA):
        self.cwd = home / "work"
        self.cwd.mkdir()
        self.site, self.tsa = site, tsa
        self.env = {k: v for k, v in os.environ.items() if k != "ARCHIVE_COLLECTION"}
        self.env["XDG_CONFIG_HOME"] = str(home / "config")
        program = Path(sys.executable).parent / "archive"
        self.program = [str(program)] if program.exists() else [sys.executable, "-m", "archive"]
        self.ran: list[str] = []

    def newest(self) -> str:
        """The id of the newest snapshot of ./snapshots."""
        out = self.run_argv(["list", "--json"])
        return str(json.loads(out)[0]["id"])

    def substitute(self, line: str) -> str:
        main = self.site.main_url
        pairs = [("https://example.org/report.html", f"{main}/about.html"),
                 ("https://example.org/news/", f"{main}/"), ("https://example.org/", f"{main}/"),
                 ("https://tsa.example/", self.tsa.url), ("--tsa URL", f"--tsa {self.tsa.url}"),
                 ("colleague.pem.pub", str(Path(self.env["XDG_CONFIG_HOME"]) / "archive" / "signing-key.pem.pub")),
                 ("tsa-root.pem", str(self.tsa.ca_path))]
        for old, new in pairs:
            line = line.replace(old, new)
        if "3f2a9c0d1e2b" in line or "SNAPSHOT" in line:
            ident = self.newest()
            line = line.replace("3f2a9c0d1e2b...", ident).replace("3f2a9c0d1e2b", ident[:12])
            line = line.replace("SNAPSHOT", ident[:12])
        return line

    def run_argv(self, argv: list[str], stdout: Path | None = None) -> str:
        result = subprocess.run(self.program + argv, cwd=self.cwd, env=self.env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"archive {shlex.join(argv)} exited {result.returncode}: {result.stderr}"
        if stdout is not None:
            stdout.write_text(result.stdout)
        return result.stdout

    def run(self, line: str) -> str:
        """Run one README line as typed (after substitution); return its stdout."""
        words = shlex.split(self.substitute(line))
        assert words[0] == "archive", line
        self.ran.append(line)
        if words[1] == "serve":
            return self.serve(words[2:])
        if ">" in words:
            at = words.index(">")
            return self.run_argv(words[1:at], stdout=self.cwd / words[at + 1])
        return self.run_argv(words[1:])

    def serve(self, extra: list[str]) -> str:
        """Start `archive serve` on a free port, wait until it answers, stop its process group."""
        port = free_port()
        proc = subprocess.Popen(self.program + ["serve", *extra, "--port", str(port)], cwd=self.cwd,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            def answers() -> str:
                assert proc.poll() is None, f"archive serve exited {proc.returncode}"
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
                    return str(resp.read().decode("utf-8", "replace"))
            page = wait_for(answers, 60, "archive serve to answer")
            assert self.newest() in page   # the collection's snapshots are listed
            return page
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stdout.close()   # type: ignore[union-attr]
            proc.stderr.close()   # type: ignore[union-attr]


def help_of(*argv: str) -> str:
    """`archive ... --help`, in this process (the synopsis names twenty of them)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0, argv
    return out.getvalue()


def check_synopsis(line: str) -> None:
    """A synopsis line names a command that exists and options it takes."""
    words = line.split()
    helps = [help_of(words[1])]
    # a group's own subcommands (schedule, keys), as argparse lists them: indented, one a line
    listed = set(re.findall(r"^ {4}([a-z][a-z-]*)(?: |$)", helps[0], re.MULTILINE))
    for word in words[2:]:
        if word in listed:
            helps.append(help_of(words[1], word))
    for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
        assert any(option in h for h in helps), f"{line}: {option} is not an option of archive {words[1]}"


@pytest.fixture
def tsa():
    server = TSA()
    yield server
    server.close()


def test_every_readme_command_runs_in_order_on_a_fresh_collection(tmp_path, tsa):
    text = README.read_text(encoding="utf-8")
    with DemoSite() as site:
        session = Session(tmp_path, site, tsa)
        skipped: list[str] = []
        for block in blocks(text):
            if block.language == "python":
                code = block.lines and "\n".join(session.substitute(line) for line in block.lines)
                result = subprocess.run([sys.executable, "-c", code], cwd=session.cwd, env=session.env,
                                        capture_output=True, text=True, timeout=120)
                assert result.returncode == 0, result.stderr
                continue
            if block.language != "sh":
                continue
            for line in block.lines:
                command = command_of(line)
                if not command:
                    continue
                if any(command.startswith(s) for s in SKIPPED):
                    skipped.append(command)
                elif command == "make run":
                    session.run(MAKE_RUN)
                elif block.heading == SYNOPSIS:
                    check_synopsis(command)
                else:
                    out = session.run(command)
                    _check(command, out, session)
    assert len(session.ran) >= 15 and len(skipped) == len(SKIPPED), (session.ran, skipped)


def _check(command: str, out: str, session: Session) -> None:
    """What some commands must show besides exiting 0."""
    if command == "archive list":
        assert "OK" in out and "never verified" not in out
    if command.startswith("archive cite") and "bibtex" in command:
        assert "@" in (session.cwd / "report.bib").read_text()
    if command.startswith("archive verify") and "--trust" in command:
        assert "signer trusted" in out and "TSA trusted" in out


def make_dry_run(target: str, tmp_path: Path, **variables: str) -> str:
    """The commands `make TARGET` would run for a fresh checkout (environments not yet made)."""
    argv = ["make", "-n", target, f"VENV={tmp_path}/venv", f"PYWB_VENV={tmp_path}/venv-pywb",
            *(f"{k}={v}" for k, v in variables.items())]
    result = subprocess.run(argv, cwd=README.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_sets_up_replay_and_says_how_to_type_archive(tmp_path):
    plan = make_dry_run("run", tmp_path)
    assert "pip install -q -e '.[test]'" in plan and "'pywb>=2.8'" in plan   # serve works after it
    assert plan.index("pywb") < plan.index("archive demo")
    assert "source " in plan and "/bin/activate" in plan and "make install" in plan
    first_lines = "\n".join(README.read_text(encoding="utf-8").splitlines()[:30])
    assert "source .venv/bin/activate" in first_lines and "make install" in first_lines
    assert "apt-get" in README.read_text(encoding="utf-8").split("## Use")[0]   # make test needs root and apt


def test_make_install_links_archive_into_local_bin(tmp_path):
    plan = make_dry_run("install", tmp_path, HOME=str(tmp_path / "home"))
    assert f"ln -sfn {tmp_path}/venv/bin/archive {tmp_path}/home/.local/bin/archive" in plan
