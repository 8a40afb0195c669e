"""The browser: Debian's Chromium, driven over CDP with playwright-python.

`chromium` (in `chromium.py`) starts Chromium in a process group of its own with a fresh
profile folder, so that no browser process outlives the capture however it ends (the group is
killed on exit, the kernel kills the browser when its parent dies, and `kill_leftover` ends a
group recorded by a capture killed with -9). `pool.PagePool` runs page jobs on N browser pages,
each in a thread with its own playwright connection, retrying a crashed page once.
`behaviours` is what a page is made to do before it is read (scroll to its end, wait for the
network), the same for a capture and for `archive qa`'s replay.
Never downloads a browser (no `playwright install`).
May import: `archive.formats` and the top-level modules; used by `archive.write` and `archive.web`.
"""
from .chromium import CHROMIUM, CHROMIUM_ARGS, Running, chromium, kill_leftover
from .pool import PageFailed, PagePool, PageTimeout

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "Running", "chromium", "kill_leftover", "PageFailed", "PagePool", "PageTimeout"]
