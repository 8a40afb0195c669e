"""`archive serve`: the web application (uvicorn) on the user's port, pywb behind it on loopback.

One port for the user: pywb listens on a free port of 127.0.0.1 that only the application's
replay proxy talks to; it runs in a process group of its own (web/replay.py), is restarted
with a new configuration when the collection's snapshots change, and is stopped with the
server whatever stops it.
"""
from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from archive.snapshot.store import Collection

from .app import create_app
from .render import Settings
from .replay import Replay, check_port
from .security import access_token

logger = logging.getLogger(__name__)
REFRESH = 2.0   # seconds between looks for new or removed snapshots


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port free on `host` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(collection: Path | str | None, host: str = "127.0.0.1", port: int = 8080, *,
          token: str | None = None, token_file: Path | None = None, allow_capture: bool = False,
          on_ready: Callable[[str], None] | None = None, on_change: Callable[[], None] | None = None) -> None:
    """Serve the collection until the process is asked to stop (SIGINT, SIGTERM, SIGHUP).

    Raises UsageError (a non-loopback `host` without a token), PortTaken (the port is in use),
    ReplayUnavailable (pywb missing or not starting), NotACollection.
    `on_ready(url)` is called once both servers are up, `on_change()` after each restart of
    pywb for new or removed snapshots.
    """
    store = Collection(collection)
    secret = access_token(host, token, token_file)   # before anything listens
    check_port(host, port)
    replay = Replay(store.root, host="127.0.0.1", port=free_port())
    replay.start()
    stop = threading.Event()
    try:
        watcher: threading.Thread | None = None
        settings = Settings(store.root, ("127.0.0.1", replay.port), secret, allow_capture)
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                               server_header=False, proxy_headers=False,
                                               timeout_graceful_shutdown=5))
        shown = f"[{host}]" if ":" in host else host
        watcher = threading.Thread(target=_watch, args=(server, replay, stop, f"http://{shown}:{port}/", on_ready, on_change),
                                   daemon=True)
        watcher.start()
        hangup = signal.signal(signal.SIGHUP, server.handle_exit) if _main_thread() else None
        try:
            server.run()   # SIGINT and SIGTERM: uvicorn's own graceful stop; SIGHUP the same
        finally:
            if hangup is not None:
                signal.signal(signal.SIGHUP, hangup)
    finally:
        stop.set()
        if watcher is not None and watcher.is_alive():
            watcher.join(10)
        replay.stop()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _watch(server: uvicorn.Server, replay: Replay, stop: threading.Event, url: str,
           on_ready: Callable[[str], None] | None, on_change: Callable[[], None] | None) -> None:
    """Call `on_ready(url)` once uvicorn listens; then restart pywb with a new configuration
    when snapshots come or go, until `stop` is set."""
    while not server.started:
        if stop.wait(0.05):
            return
    if on_ready is not None:
        on_ready(url)
    while not stop.wait(REFRESH):
        try:
            if replay.refresh() and on_change is not None:
                on_change()
        except Exception as exc:   # a refresh that fails leaves the pages up; said once a round
            logger.warning("replay refresh failed: %s", exc)
