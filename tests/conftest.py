"""Shared fixtures: the demo site on loopback, a collection folder, guards against DNS and proxies."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from archive import capture
from archive.demo import DemoSite
from archive.models import CaptureOptions, Snapshot

_real_getaddrinfo = socket.getaddrinfo
LOOPBACK_NAMES = {"localhost"}


def _loopback_only(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    """getaddrinfo that answers numeric addresses and localhost, and fails like DNS otherwise."""
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
        numeric = True
    except OSError:
        numeric = False
    if not numeric and name not in LOOPBACK_NAMES:
        raise socket.gaierror(socket.EAI_NONAME, f"Name or service not known (test guard: {name})")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def no_dns():  # type: ignore[no-untyped-def]
    """Tests never ask DNS for a name: unknown names fail the way a DNS failure does."""
    socket.getaddrinfo = _loopback_only
    yield
    socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(autouse=True, scope="session")
def no_proxies():  # type: ignore[no-untyped-def]
    """Tests talk to loopback only: a developer's http_proxy (set for pip, say) must not carry
    the tests' own clients (urllib, wget) there. Tests that are about proxies set their own."""
    saved = {k: v for k, v in os.environ.items() if k.lower().endswith("_proxy")}   # as urllib reads them
    for name in saved:
        del os.environ[name]
    yield
    os.environ.update(saved)


@pytest.fixture
def site():
    """A fresh demo site (main host 127.0.0.1, other host 127.0.0.2) for one test."""
    with DemoSite() as demo:
        yield demo


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


@pytest.fixture(scope="session")
def demo_capture(tmp_path_factory: pytest.TempPathFactory):
    """One capture of the demo site at the default depth, shared by read-only tests."""
    root = tmp_path_factory.mktemp("demo") / "snapshots"
    with DemoSite() as demo:
        snap = capture([demo.main_url + "/"], root)
        yield snap, demo


@pytest.fixture(scope="session")
def demo_snapshot(demo_capture) -> Snapshot:  # type: ignore[no-untyped-def]
    return demo_capture[0]


@pytest.fixture
def capture_page(site: DemoSite, collection: Path):  # type: ignore[no-untyped-def]
    """A function capturing one demo page (depth 0 unless told) into the test's collection."""
    def run(path: str = "/", **options) -> Snapshot:  # type: ignore[no-untyped-def]
        options.setdefault("depth", 0)
        return capture([site.main_url + path], collection, CaptureOptions(**options))
    return run


@pytest.fixture
def faults():
    """A raw-socket server for misbehaving answers (tests/faultserver.py)."""
    from faultserver import FaultServer
    server = FaultServer()
    yield server
    server.close()
