"""How workers and the scheduler share one broker (`ClusterSettings`): apart from `cluster`,
so the command line reads its defaults without loading the cluster's code."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archive.errors import UsageError


@dataclass(frozen=True)
class ClusterSettings:
    """How workers and the scheduler share one broker."""

    broker: str
    visibility_timeout: float = 30.0   # unacknowledged this long: the message is handed out again
    lease_ttl: float = 15.0            # a dead worker's job lease and host slots lapse after this long
    host_slots: int = 4                # requests at once to one host, across every worker

    def __post_init__(self) -> None:
        if not 0 < self.lease_ttl < self.visibility_timeout:
            # a message handed out again before a dead worker's lease lapses is only put back,
            # again and again: the visibility timeout must be the longer
            raise UsageError(f"the lease TTL ({self.lease_ttl} s) must be positive and shorter than "
                             f"the visibility timeout ({self.visibility_timeout} s)")
        if self.host_slots < 1:
            raise UsageError(f"host slots must be 1 or more, not {self.host_slots}")

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))
