"""A free TCP port on loopback, for a test server that must be told its port before it starts
(pywb, `archive serve`): the one copy the test files share."""
from __future__ import annotations

import socket


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEAD_PROXY = "http://127.0.0.1:9"   # nothing answers there


def proxy_environment(monkeypatch, proxy: str = DEAD_PROXY) -> None:  # type: ignore[no-untyped-def]
    """Set every proxy variable a client reads to `proxy`, with no no_proxy: a user behind a
    proxy that knows nothing of this machine's loopback."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
