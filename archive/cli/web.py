"""`archive serve`: the collection in a browser."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .common import command, printable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """`serve` was asked to stop: Ctrl-C, SIGTERM (systemd, kill) or SIGHUP (its terminal closed)."""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `serve` to the `archive` parser."""
    serve = command(sub, common, "serve", _cmd_serve, "the web interface: find, replay, cite, verify",
                    "Serve the collection's web interface (snapshots, search, timelines, citations, "
                    "verification, a JSON API) with replay by pywb (frameless, Memento) on an origin of "
                    "its own: http://replay.localhost:PORT/ on loopback (same port), the --replay-port "
                    "off loopback. pywb runs in a process group of its own, stopped with `serve` on Ctrl-C, "
                    "SIGTERM or SIGHUP; a port in use is an error (exit 2).")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s); "
                                                           "any other than loopback needs --token")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    serve.add_argument("--token", help="access token every request must carry (16+ characters)")
    serve.add_argument("--token-file", type=Path, metavar="FILE", help="read the access token from FILE")
    serve.add_argument("--replay-port", type=int, metavar="PORT",
                       help="serve replay on this second port (default off loopback: --port + 1; on "
                            "loopback: replay.localhost on --port)")
    serve.add_argument("--allow-capture", action="store_true",
                       help="turn on the capture form (private, loopback and link-local addresses always refused)")
    serve.add_argument("--allow-private-capture", action="store_true",
                       help="DANGEROUS, trusted local use only: let the capture form fetch private and "
                            "loopback addresses (needs --allow-capture; refused off loopback)")


def _cmd_serve(args: argparse.Namespace) -> int:
    from archive.snapshot.store import Collection
    from archive.web.server import serve

    root = Collection(args.collection).root

    def ready(url: str) -> None:
        print(f"serving {printable(str(root))} at {printable(url)} (Ctrl-C stops)", file=sys.stderr, flush=True)

    def changed() -> None:
        print("snapshots changed: replay configuration regenerated", file=sys.stderr, flush=True)

    with _stop_on_signals() as stopping:
        try:
            serve(args.collection, args.host, args.port, token=args.token, token_file=args.token_file,
                  allow_capture=args.allow_capture, allow_private=args.allow_private_capture,
                  replay_port=args.replay_port, on_ready=ready, on_change=changed)
            return 0
        except (Stopped, KeyboardInterrupt):
            return 0   # the way to stop a server: not an error
        finally:
            stopping.append(True)   # a second signal must not cut the stop short


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
