"""`archive serve`: the collection in a browser."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .common import command, printable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """`serve` was asked to stop: Ctrl-C, SIGTERM (systemd, kill) or SIGHUP (its terminal closed)."""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `serve` to the `archive` parser."""
    serve = command(sub, common, "serve", _cmd_serve, "browse the collection with pywb",
                    "Serve the collection for browsing with pywb (frameless, Memento). "
                    "pywb runs in a process group of its own, stopped with `serve` on Ctrl-C, "
                    "SIGTERM or SIGHUP; a port in use is an error (exit 2).")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")


def _cmd_serve(args: argparse.Namespace) -> int:
    from archive.web.replay import Replay

    replay = Replay(args.collection, host=args.host, port=args.port)
    with _stop_on_signals() as stopping:
        try:
            replay.start()
            print(f"serving {printable(str(replay.collection.root))} at {replay.url}/ (Ctrl-C stops)",
                  file=sys.stderr, flush=True)
            while True:
                time.sleep(1)
                if replay.refresh():
                    print("snapshots changed: replay configuration regenerated", file=sys.stderr, flush=True)
        except (Stopped, KeyboardInterrupt):
            return 0   # the way to stop a server: not an error
        finally:
            # a second signal must not cut the stop short and leave pywb running
            stopping.append(True)
            replay.stop()


@contextmanager
def _stop_on_signals() -> Iterator[list[bool]]:
    """Turn SIGINT, SIGTERM and SIGHUP into `Stopped` while serving, once: after something is
    put in the yielded list (the stop has begun) they are ignored. Restore the handlers after."""
    stopping: list[bool] = []

    def stop(signum: int, frame: object) -> None:
        if not stopping:
            raise Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
