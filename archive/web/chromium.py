"""Headless Chromium for replay checks: Debian's `chromium`, started in a process group of its
own with a fresh profile, driven over CDP with playwright-python (never a browser download).

Chromium runs as our child in its own session, so `stop()` ends it and every helper process it
started with one signal to the group, and the kernel sends it SIGTERM if we die first
(PR_SET_PDEATHSIG): no Chromium outlives the command, however the command ends.
"""
from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from archive.errors import ArchiveError

logger = logging.getLogger(__name__)

ENV_CHROMIUM = "ARCHIVE_CHROMIUM"
ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
        "--force-color-profile=srgb", "--font-render-hinting=none", "--disable-lcd-text",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


class BrowserUnavailable(ArchiveError):
    """Chromium or playwright-python is missing, or Chromium would not start."""

    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


def find_chromium() -> str:
    """Return the Chromium program: $ARCHIVE_CHROMIUM, or `chromium` on PATH; raise
    BrowserUnavailable."""
    for candidate in (os.environ.get(ENV_CHROMIUM), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserUnavailable("Chromium is not installed: run `make system` (Debian's chromium package)")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Chromium:
    """One headless Chromium and a playwright connection to it; a context manager.

    `browser` is playwright's Browser (sync API) once started. Raises BrowserUnavailable.
    """

    def __init__(self, program: str | None = None, timeout: float = 60.0):
        self.program = program or find_chromium()
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.profile: Path | None = None
        self._playwright: Any = None
        self.browser: Any = None

    def start(self) -> "Chromium":
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            raise BrowserUnavailable("playwright-python is not installed (pip install playwright)") from None
        self.profile = Path(tempfile.mkdtemp(prefix="archive-chromium-"))
        try:
            with open(self.profile / "chromium.log", "wb") as log:
                self.process = subprocess.Popen(
                    [self.program, *ARGS, f"--user-data-dir={self.profile / 'profile'}", "about:blank"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, preexec_fn=_die_with_parent)
            endpoint = self._endpoint()
            self._playwright = sync_playwright().start()
            self.browser = self._playwright.chromium.connect_over_cdp(endpoint, timeout=self.timeout * 1000)
        except OSError as exc:
            self.stop()
            raise BrowserUnavailable(f"cannot start Chromium: {exc.strerror or exc} ({self.program})") from None
        except Error as exc:
            self.stop()
            raise BrowserUnavailable(f"cannot drive Chromium: {str(exc).splitlines()[0][:300]}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def _endpoint(self) -> str:
        """Wait for Chromium to write the port it listens on (DevToolsActivePort); return its URL."""
        assert self.process is not None and self.profile is not None
        marker = self.profile / "profile" / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserUnavailable(f"Chromium exited at start (code {self.process.returncode}): "
                                         f"{self._last_words()}")
            try:
                port = marker.read_text("ascii").splitlines()[0].strip()
                if port.isdigit():
                    return f"http://127.0.0.1:{port}"
            except (OSError, IndexError, UnicodeDecodeError):
                pass
            time.sleep(0.05)
        raise BrowserUnavailable(f"Chromium did not open its debugging port within {self.timeout:.0f} s")

    def _last_words(self) -> str:
        """Return the last lines Chromium logged that say FATAL or ERROR (for an error message)."""
        assert self.profile is not None
        try:
            with open(self.profile / "chromium.log", "rb") as f:
                f.seek(max(0, f.seek(0, 2) - 4096))
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "no log"
        said = [line for line in lines if "FATAL" in line or "ERROR" in line] or lines
        return " | ".join(said[-2:])[:500]

    def stop(self, grace: float = 5.0) -> None:
        """Disconnect, then end Chromium's process group (SIGTERM, SIGKILL after `grace` s),
        and delete the profile."""
        browser, self.browser = self.browser, None
        driver, self._playwright = self._playwright, None
        try:
            if browser is not None:
                browser.close()
        except Exception:   # playwright's errors have no common base; the group is ended below
            logger.debug("closing the CDP connection failed", exc_info=True)
        try:
            if driver is not None:
                driver.stop()
        except Exception:
            logger.debug("stopping playwright failed", exc_info=True)
        process, self.process = self.process, None
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            _signal_group(process.pid, signal.SIGKILL)   # helpers left behind
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
