"""`archive serve`: the web application (uvicorn) on the user's port, pywb behind it on loopback.

One port for the user on loopback: the interface at `http://127.0.0.1:PORT/`, replay at
`http://replay.localhost:PORT/` (its own origin, web/origins.py); off loopback (or with
`replay_port`), replay on a second port. pywb listens on a free port of 127.0.0.1 that only
the application's replay proxy talks to; it runs in a process group of its own
(web/replay.py), is restarted with a new configuration when the collection's snapshots
change, and is stopped with the server whatever stops it.
"""
from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from archive.errors import UsageError
from archive.snapshot.store import Collection

from .app import create_app
from .origins import Origins
from .render import Settings
from .replay import PortTaken, Replay, check_port
from .security import access_token, is_loopback

logger = logging.getLogger(__name__)
REFRESH = 2.0   # seconds between looks for new or removed snapshots


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port free on `host` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(collection: Path | str | None, host: str = "127.0.0.1", port: int = 8080, *,
          token: str | None = None, token_file: Path | None = None, allow_capture: bool = False,
          allow_private: bool = False, replay_port: int | None = None,
          on_ready: Callable[[str], None] | None = None, on_change: Callable[[], None] | None = None) -> None:
    """Serve the collection until the process is asked to stop (SIGINT, SIGTERM, SIGHUP).

    Replay has an origin of its own: `replay.localhost` on `port` when `host` is loopback and
    no `replay_port` is given, else `replay_port` (default `port + 1` off loopback).
    `allow_private` lets the capture form fetch private addresses: loopback `host` only.
    Raises UsageError (a non-loopback `host` without a token, or with `allow_private`), PortTaken
    (a port is in use), ReplayUnavailable (pywb missing or not starting), NotACollection.
    `on_ready(text)` is called once both servers are up (text: where the interface and replay
    are), `on_change()` after each restart of pywb for new or removed snapshots.
    """
    store = Collection(collection)
    secret = access_token(host, token, token_file)   # before anything listens
    if allow_private and not (allow_capture and is_loopback(host)):
        raise UsageError("--allow-private-capture is for trusted local use: it needs --allow-capture "
                         "and a loopback --host")
    if replay_port is None and not is_loopback(host):
        replay_port = port + 1
    if replay_port is not None and (replay_port == port or not 0 < replay_port < 65536):
        raise UsageError(f"--replay-port {replay_port}: a port from 1 to 65535 other than --port")
    check_port(host, port)
    if replay_port is not None:
        check_port(host, replay_port)
    replay = Replay(store.root, host="127.0.0.1", port=free_port())
    replay.start()
    stop = threading.Event()
    try:
        watcher: threading.Thread | None = None
        origins = Origins(host, port, replay_port)
        settings = Settings(store.root, ("127.0.0.1", replay.port), secret, allow_capture,
                            allow_private=allow_private, origins=origins)
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                               server_header=False, proxy_headers=False,
                                               timeout_graceful_shutdown=5))
        sockets = [_listen(host, p) for p in (port, replay_port) if p is not None]
        scope = {"scheme": "http", "server": (host, port), "headers": []}
        where = f"{origins.interface_base(scope)}/ (replay at {origins.replay_base(scope)}/)"
        watcher = threading.Thread(target=_watch, args=(server, replay, stop, where, on_ready, on_change),
                                   daemon=True)
        watcher.start()
        hangup = signal.signal(signal.SIGHUP, server.handle_exit) if _main_thread() else None
        try:
            server.run(sockets=sockets)   # SIGINT and SIGTERM: uvicorn's own graceful stop; SIGHUP the same
        finally:
            if hangup is not None:
                signal.signal(signal.SIGHUP, hangup)
            for sock in sockets:
                sock.close()
    finally:
        stop.set()
        if watcher is not None and watcher.is_alive():
            watcher.join(10)
        replay.stop()


def _listen(host: str, port: int) -> socket.socket:
    """Return a socket bound to `host:port`, as uvicorn binds its own (raise PortTaken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortTaken(host, port, exc.strerror or str(exc)) from None
    sock.set_inheritable(True)
    return sock


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
