"""`archive serve`: the collection in a browser."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .common import command


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `serve` to the `archive` parser."""
    serve = command(sub, common, "serve", _cmd_serve, "browse the collection with pywb",
                    "Serve the collection for browsing with pywb (frameless, Memento).")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")


def _cmd_serve(args: argparse.Namespace) -> int:
    from archive.web.replay import Replay

    replay = Replay(args.collection, host=args.host, port=args.port)
    try:
        replay.start()
        print(f"serving {replay.collection.root} at {replay.url}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
        while True:
            time.sleep(1)
            if replay.refresh():
                print("snapshots changed: replay configuration regenerated", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 0   # the way to stop a server: not an error
    finally:
        replay.stop()
