"""A free TCP port on loopback, for a test server that must be told its port before it starts
(pywb, `archive serve`): the one copy the test files share."""
from __future__ import annotations

import socket


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
