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
from archive.errors import ArchiveError  # noqa: E402
from archive.models import CaptureOptions, Snapshot  # noqa: E402
from archive.read.verify import verify  # noqa: E402
from archive.version import __version__
from archive.write.capture import capture  # noqa: E402

__all__ = ["ArchiveError", "CaptureOptions", "Snapshot", "capture", "verify", "new_key", "sign", "timestamp",
           "__version__"]
_PROOFS = {"new_key": "proofs.signing", "sign": "proofs.signing", "timestamp": "proofs.timestamping"}


def __getattr__(name: str) -> object:
    if name in _PROOFS:   # cryptography loads only when a proof is made
        import importlib
        return getattr(importlib.import_module(f".{_PROOFS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
