"""Debian's Chromium in a process group of its own, reached over CDP.

    with chromium(profile_dir, proxy="http://127.0.0.1:8123", pid_file=path) as running:
        with running.connect() as browser:      # a playwright sync Browser, this thread only
            page = browser.contexts[0].new_page()

Why Chromium is started here and not by playwright's `launch`: playwright starts the browser
as a child of its node driver, where we can neither put it in a group of its own nor tie its
life to ours. Here Chromium is our child, in a new session (its own process group, which its
renderer and utility processes join), with PR_SET_PDEATHSIG so the kernel sends it SIGKILL when
the thread that started it dies (kill -9 of the capture included); its children see their
browser's IPC channel close and end. On leaving the block the whole group gets SIGKILL.
`pid_file` records the group so that a later run (`capture --resume`) can end one that
survived anyway (`kill_leftover`), matching processes by group id AND executable so a recycled
pid is never hit.

Errors: `BrowserError` when Chromium is missing, exits, or does not open its DevTools port
within `start_timeout` seconds.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive.errors import BrowserError

logger = logging.getLogger(__name__)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SINGLETON_PREFIX = "org.chromium.Chromium."   # Chromium's own temporary folder (process_singleton_posix.cc)
# The house flags (README, Developers' guide), then what a headless capture needs: no first-run
# UI, no throttling of background pages (two pages render at once), a fixed window for
# screenshots, and loopback through the proxy too (Chromium bypasses it for localhost unless
# told `<-loopback>`), and WebRTC too: without the policy a page's RTCPeerConnection sends STUN
# and TURN straight from the browser to any address it names (private ones included), around
# the proxy, `--block-private` and the record.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")
HEADLESS_ARGS = ("--headless", "--no-first-run", "--no-default-browser-check",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows", "--disable-breakpad",
                 "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
                 "--password-store=basic", "--use-mock-keychain", "--window-size=1280,800",
                 # none of the browser's own traffic (time, safe browsing, hints, pings)
                 "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate,"
                 "AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
                 "--disable-client-side-phishing-detection", "--disable-domain-reliability", "--no-pings",
                 "--safebrowsing-disable-auto-update", "--metrics-recording-only",
                 # fewer renderer processes: one capture, not a user to isolate sites for
                 "--renderer-process-limit=2", "--disable-site-isolation-trials",
                 "--webrtc-ip-handling-policy=disable_non_proxied_udp")
PR_SET_PDEATHSIG = 1
POLL = 0.02
_BROWSER_TARGET = re.compile(r"/devtools/browser/[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:      # the parent died before prctl: do not start at all
        os._exit(1)


@dataclass(frozen=True)
class Running:
    """A started Chromium: `pid` (also its process group id), `cdp_url`
    (http://127.0.0.1:PORT), `ws_url` (its browser target, ws://127.0.0.1:PORT/devtools/browser/ID),
    `profile_dir`, `exe` (the real executable, for matching)."""

    pid: int
    cdp_url: str
    ws_url: str
    profile_dir: Path
    exe: str

    @contextlib.contextmanager
    def connect(self, timeout: float = 30.0) -> Iterator[Any]:
        """A playwright sync `Browser` connected over CDP, for use in the calling thread only
        (each thread connects on its own). Closing it disconnects; Chromium keeps running.
        Connected at the WebSocket URL: given the http:// one, playwright would first ask
        /json/version through the environment's http_proxy, which knows no loopback of ours."""
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.connect_over_cdp(self.ws_url, timeout=timeout * 1000)
            try:
                yield browser
            finally:
                with contextlib.suppress(Exception):
                    browser.close()


def _group_members(pgid: int, exe: str | None = None) -> list[int]:
    """Pids in process group `pgid` (optionally only those running `exe` or a program in its
    folder), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            # fields after the command name (in parentheses): state ppid pgrp ...
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            # the browser's helpers (crashpad handler...) live beside its executable
            if exe is not None and os.path.dirname(os.path.realpath(f"/proc/{entry}/exe")) != os.path.dirname(exe):
                continue
        except (OSError, ValueError, IndexError):
            continue
        found.append(int(entry))
    return found


def _kill_group(pgid: int, exe: str | None, timeout: float = 10.0) -> None:
    """SIGKILL every process of group `pgid` (running `exe`, if given) and wait until none is left."""
    deadline = time.monotonic() + timeout
    while members := _group_members(pgid, exe):
        if exe is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        else:
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            logger.warning("browser processes %s of group %d did not end", members, pgid)
            return
        time.sleep(POLL)


def kill_leftover(pid_file: Path) -> int:
    """End the Chromium group that `pid_file` records (left by a capture killed with -9), remove
    its single-instance folder from TMPDIR, and remove the file. Only processes of that group
    running a program of the recorded executable's folder (/usr/lib/chromium) are killed.
    Returns how many processes were found; 0 when the file is missing or unreadable."""
    try:
        data = json.loads(pid_file.read_text())
        pgid, exe = int(data["pgid"]), str(data["exe"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    members = _group_members(pgid, exe)
    if members:
        logger.info("ending %d browser processes left by an earlier capture (group %d)", len(members), pgid)
        _kill_group(pgid, exe)
    if isinstance(data.get("profile"), str):
        _remove_singleton(Path(data["profile"]))
    with contextlib.suppress(OSError):
        pid_file.unlink()
    return len(members)


def _wait_port(proc: subprocess.Popen, profile: Path, timeout: float) -> tuple[int, str]:
    """Return (DevTools port, browser target path "/devtools/browser/GUID") from the profile's
    DevToolsActivePort file, once Chromium has written both lines (the second has no newline
    after it, so only a whole GUID, 8-4-4-4-12 hex digits, tells it is complete)."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError, IndexError):
            port, path = marker.read_text().splitlines()[:2]
            if _BROWSER_TARGET.fullmatch(path):   # the whole GUID: a read mid-write ends short of it
                return int(port), path
        if proc.poll() is not None:
            raise BrowserError(f"Chromium exited with status {proc.returncode} before opening its DevTools port")
        if time.monotonic() > deadline:
            raise BrowserError(f"Chromium did not open its DevTools port within {timeout:g} s")
        time.sleep(POLL)


def _remove_singleton(profile: Path) -> None:
    """Remove the folder Chromium made for its profile's single-instance socket
    (TMPDIR/org.chromium.Chromium.XXXXXX, named by the profile's SingletonSocket link), which
    Chromium removes only on a clean exit, never after the SIGKILL it gets here: one folder
    left in /tmp per capture, for years of scheduled captures. Only a folder of that name
    right under the temporary folder is removed."""
    try:
        socket_path = Path(os.readlink(profile / "SingletonSocket"))
    except OSError:   # no link: Chromium never got that far, or it cleaned up itself
        return
    folder = socket_path.parent
    if (folder.name.startswith(SINGLETON_PREFIX) and folder.parent == Path(tempfile.gettempdir())
            and not folder.is_symlink()):
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def chromium(profile_dir: Path | None = None, proxy: str | None = None, extra_args: Sequence[str] = (),
             pid_file: Path | None = None, executable: str = CHROMIUM,
             start_timeout: float = 30.0) -> Iterator[Running]:
    """Start headless Chromium with a fresh profile in `profile_dir` (a new temporary folder,
    deleted after, when None; an existing folder must be empty), all its traffic through
    `proxy` (loopback included) when given, plus `extra_args`. Yields `Running`; on exit,
    however the block ends, every process of its group is killed and `pid_file` removed.
    Raises BrowserError (see the module docstring)."""
    own_profile = profile_dir is None
    profile = Path(tempfile.mkdtemp(prefix="archive-chromium-")) if profile_dir is None else Path(profile_dir)
    profile.mkdir(parents=True, exist_ok=True)
    if any(profile.iterdir()):
        raise BrowserError(f"browser profile folder is not empty: {profile}")
    if not (shutil.which(executable) or os.access(executable, os.X_OK)):
        raise BrowserError(f"Chromium not found at {executable} (Debian: apt-get install chromium)")
    args = [executable, *CHROMIUM_ARGS, *HEADLESS_ARGS, f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]
    if proxy:
        args += [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"]
    args += [*extra_args, "about:blank"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_parent, close_fds=True)
    exe = executable
    try:
        port, path = _wait_port(proc, profile, start_timeout)
        with contextlib.suppress(OSError):
            exe = os.path.realpath(f"/proc/{proc.pid}/exe")
        if pid_file is not None:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(json.dumps({"pgid": proc.pid, "exe": exe, "profile": str(profile)}))
        logger.info("Chromium %d listening on 127.0.0.1:%d (profile %s)", proc.pid, port, profile)
        yield Running(pid=proc.pid, cdp_url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}{path}",
                      profile_dir=profile, exe=exe)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        _kill_group(proc.pid, None)
        if pid_file is not None:
            with contextlib.suppress(OSError):
                pid_file.unlink()
        _remove_singleton(profile)
        if own_profile:
            shutil.rmtree(profile, ignore_errors=True)
