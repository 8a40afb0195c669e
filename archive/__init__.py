"""archive: a static web-archiving snapshotter that writes verifiable WARC 1.1 snapshots.

The library API under the `archive` command::

    from archive import capture, verify, CaptureOptions
    snap = capture(["https://example.org/"], collection="snapshots", options=CaptureOptions(depth=1))
    report = verify(snap.path)

Proofs (the crypto libraries load on first use)::

    from archive import new_key, sign, timestamp
    sign(snap.path)                                   # with the key made by new_key()
    timestamp(snap.path, tsa="https://tsa.example/")
    verify(snap.path, trust=["key.pem.pub"], tsa_certs=["tsa-root.pem"])
"""
from typing import TYPE_CHECKING

from archive.errors import ArchiveError
from archive.models import CaptureOptions, Snapshot
from archive.version import __version__

if TYPE_CHECKING:   # the names below load on first use, so `archive list` starts fast
    from archive.proofs.signing import new_key, sign
    from archive.proofs.timestamping import timestamp
    from archive.read.verify import verify
    from archive.write.capture import capture

__all__ = ["ArchiveError", "CaptureOptions", "Snapshot", "capture", "verify", "new_key", "sign", "timestamp",
           "__version__"]
# Loaded on first use: the write path (requests, lxml), the read path (warcio) and
# cryptography are imported only by a program that calls them (importlib: PEP 562).
_LAZY = {"capture": "write.capture", "verify": "read.verify", "new_key": "proofs.signing",
         "sign": "proofs.signing", "timestamp": "proofs.timestamping"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value   # the next look-up is an ordinary attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
