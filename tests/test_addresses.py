"""Private addresses: every IPv6 form carrying an IPv4 address is judged by what it carries,
and services (schedule run, worker) refuse private addresses unless the collection opts out."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from archive.models import CaptureOptions
from archive.services.runner import run_due, service_options
from archive.snapshot.store import Collection
from archive.write.addresses import is_public
from archive.write.tap import Blocked, public_address
from recapture_site import RecaptureSite

BLOCKED = [
    # plain IPv4 and IPv6 ranges that are not globally reachable
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "255.255.255.255", "224.0.0.1", "198.18.0.1", "192.0.2.1",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1", "2001:db8::1",
    "100::1",
    # IPv4-mapped
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
    # IPv4-compatible (deprecated): never public, whatever it carries
    "::127.0.0.1", "::10.0.0.1", "::8.8.8.8",
    # 6to4 carrying a private address
    "2002:7f00:1::1", "2002:a00:1::", "2002:a9fe:a9fe::1",
    # NAT64 well-known prefix carrying a private address; the local-use prefix as a whole
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808",
    # Teredo: client 127.0.0.1 and 10.0.0.1 (stored inverted), and one with a public client
    "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
]

ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001::200e",
           "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", BLOCKED)
def test_private_forms_are_blocked(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_forms_stay_allowed(address):
    assert is_public(address)


@pytest.mark.parametrize("address", ["::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "127.0.0.1"])
def test_the_connection_guard_refuses_them(address):
    with pytest.raises(Blocked, match="blocked-private"):
        public_address(address, 80)
    assert public_address("::ffff:8.8.8.8", 80) == "::ffff:8.8.8.8"


def test_services_block_private_by_default_and_archive_toml_opts_out(tmp_path):
    store = Collection(tmp_path)
    assert service_options(CaptureOptions(), store).block_private is True
    (tmp_path / "archive.toml").write_text("block_private = true\n")
    assert service_options(CaptureOptions(), store).block_private is True
    (tmp_path / "archive.toml").write_text("block_private = false\n")
    assert service_options(CaptureOptions(), store).block_private is False


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archive", *args], capture_output=True, text=True, timeout=300)


def test_schedule_run_refuses_a_loopback_seed_by_default_and_captures_it_with_the_opt_out(tmp_path: Path):
    site = RecaptureSite(pages=1)
    collection = tmp_path / "snapshots"
    try:
        assert run("schedule", "add", site.url + "/", "--every", "1d", "--depth", "0",
                   "-C", str(collection)).returncode == 0
        refused = run("schedule", "run", "-C", str(collection), "--json")
        results = json.loads(refused.stdout)
        assert [r["ok"] for r in results] == [False], refused
        assert "blocked-private" in results[0]["error"] or "private" in results[0]["error"], results
        assert site.requests == [] and Collection(collection).snapshots() == []

        (collection / "archive.toml").write_text("block_private = false\n")
        retry = json.loads((collection / ".state" / "schedule.json").read_text())[site.url + "/"]["retry_at"]
        due = run("schedule", "run", "-C", str(collection), "--json")
        assert due.returncode == 0 and json.loads(due.stdout) == [], due.stderr   # not before its backoff
        # the failed entry waits for its backoff: run it as the next run after that would
        results2 = run_due(collection, now=datetime.fromisoformat(retry.replace("Z", "+00:00")))
        assert [r.ok for r in results2] == [True], results2
        assert len(Collection(collection).snapshots()) == 1 and site.requests
    finally:
        site.close()


def test_a_cluster_job_is_captured_with_the_same_guard(tmp_path: Path):
    """`archive worker` runs each job through capture_due, as `schedule run` does: a job for a
    loopback seed fails as blocked, even when the job's own options do not ask for the guard."""
    from archive.services.runner import capture_due
    from archive.services.schedule import Due

    site = RecaptureSite(pages=1)
    collection = tmp_path / "snapshots"
    collection.mkdir()
    try:
        job = Due(site.url + "/", datetime(2026, 11, 30, tzinfo=timezone.utc), CaptureOptions(depth=0))
        result = capture_due(job, collection)
        assert not result.ok and "blocked-private" in str(result.error), result
        assert site.requests == [] and Collection(collection).partials() == []
    finally:
        site.close()
