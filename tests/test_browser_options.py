"""`browser = true` wherever capture options travel: the command line, a schedule entry, a
worker job's message, and the options a snapshot records."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from archive.cli.capture import capture_options, options_of
from archive.errors import UsageError
from archive.models import CaptureOptions
from archive.services.jobs import Job
from archive.services.schedule import capture_options as schedule_options


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    capture_options(parser)
    return parser.parse_args(list(argv))


def test_cli_flags():
    options = options_of(_parse("--browser", "--browser-timeout", "12.5"))
    assert options.browser and options.browser_timeout == 12.5
    assert not options_of(_parse()).browser
    for bad in ("0", "-1", "nan"):
        with pytest.raises(UsageError, match="--browser-timeout"):
            options_of(_parse("--browser", "--browser-timeout", bad))


def test_schedule_entry():
    options = schedule_options({"browser": True, "browser_timeout": 20})
    assert options.browser and options.browser_timeout == 20
    with pytest.raises(UsageError):
        schedule_options({"browser": "yes"})


def test_worker_job_round_trip():
    job = Job("I", "http://example.org/", datetime(2026, 1, 1, tzinfo=timezone.utc),
              CaptureOptions(browser=True, browser_timeout=9.0))
    back = Job.from_message(job.to_message())
    assert back.options.browser and back.options.browser_timeout == 9.0


def test_recorded_options_unchanged_without_the_browser():
    assert "browser" not in CaptureOptions().to_json()
    assert CaptureOptions(browser=True).to_json()["browser"] is True
