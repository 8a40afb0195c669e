"""archive: a static web-archiving snapshotter that writes verifiable WARC 1.1 snapshots.

The library API under the `archive` command::

    from archive import capture, verify, CaptureOptions
    snap = capture(["https://example.org/"], collection="snapshots", options=CaptureOptions(depth=1))
    report = verify(snap.path)
"""
__version__ = "0.1.0"

from .errors import ArchiveError  # noqa: E402
from .models import CaptureOptions, Snapshot  # noqa: E402
from .capture import capture  # noqa: E402
from .verify import verify  # noqa: E402

__all__ = ["ArchiveError", "CaptureOptions", "Snapshot", "capture", "verify", "__version__"]
