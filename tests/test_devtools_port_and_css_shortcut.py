"""Attacks on two shortcuts: the DevTools WebSocket endpoint read from a file Chromium may be
writing still, and CSS text skipped by the tokenizer when it holds no needle of a reference."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from archive.browser.chromium import _wait_port
from archive.errors import BrowserError

GUID = "4b75f308-c33c-447c-b4ef-6ee00a0a0bb0"


@pytest.fixture
def alive():   # type: ignore[no-untyped-def]
    """A process that stays up (what Chromium is while it writes DevToolsActivePort)."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("cut", [len("/devtools/browser/") + n for n in (1, 8, 9, 23, 35)])
def test_a_half_written_devtools_active_port_is_not_read_as_a_browser_target(tmp_path: Path, alive, cut: int):
    """Chromium writes "PORT\\n/devtools/browser/GUID" with no newline at the end: a read while
    it writes can end inside the GUID, and that shorter path is no browser target."""
    (tmp_path / "DevToolsActivePort").write_text("34339\n" + f"/devtools/browser/{GUID}"[:cut])
    with pytest.raises(BrowserError, match="did not open its DevTools port"):
        _wait_port(alive, tmp_path, timeout=0.3)


def test_a_whole_devtools_active_port_is_read(tmp_path: Path, alive):
    (tmp_path / "DevToolsActivePort").write_text(f"34339\n/devtools/browser/{GUID}")
    assert _wait_port(alive, tmp_path, timeout=5) == (34339, f"/devtools/browser/{GUID}")


# -- the CSS shortcut: texts that come near a reference without a needle in them ---------------
NEAR_MISSES = ["ur\rl(a)", "ur\r\nl(a)", "ur\fl(a)", "url\x00(a)", "ur\x00l(a)", "ur/**/l(a)", "url (a)",
               "@im\rport 'a'", "@ import 'a'", "@\u0130mport 'a'", "\u0130mage-set('a')", "\uff55rl(a)",
               "u\u0280l(a)", "sr\u212a(a)", "image-set ('a')", "image\u2010set('a')", "-webkit-image-set\n('a')",
               "@import/**/'a'", "\ud800url(a)"]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_the_css_shortcut_agrees_with_the_whole_walk_near_a_reference(text: str):
    from archive.write.css import _walk, css_references, may_refer

    walked = list(_walk(text))
    assert list(css_references(text)) == walked
    assert may_refer(text) or not walked
