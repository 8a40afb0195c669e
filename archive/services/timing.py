"""When a scheduled entry is due: intervals (30m, 6h, 1d, 2w) and 5-field cron expressions in UTC.

Cron fields follow crontab(5): minute, hour, day of month, month, day of week, with lists,
ranges and steps; when both day fields are restricted a day matching either is due.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from archive.errors import UsageError

MAX_INTERVAL = 10 * 366 * 86400
_INTERVAL = re.compile(r"(\d+)\s*(m|min|h|d|w)")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_every(text: str) -> timedelta | Cron:
    """Return an interval or a cron expression; raise UsageError.

    >>> parse_every("6h")
    datetime.timedelta(seconds=21600)
    >>> parse_every("0 3 * * 1").next_after(datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc))
    datetime.datetime(2026, 11, 30, 3, 0, tzinfo=datetime.timezone.utc)
    """
    text = str(text).strip()
    match = _INTERVAL.fullmatch(text)
    if match:
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
        if not 60 <= seconds <= MAX_INTERVAL:
            raise UsageError(f"interval {text!r} is not between a minute and ten years")
        return timedelta(seconds=seconds)
    if len(text.split()) == 5:
        return Cron(text)
    raise UsageError(f"{text!r} is neither an interval (30m, 6h, 1d, 1w) nor a cron expression")


class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), in UTC."""

    LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))

    def __init__(self, text: str):
        self.text = text
        parts = text.split()
        self.sets = [self._field(p, lo, hi) for p, (lo, hi) in zip(parts, self.LIMITS)]
        if 7 in self.sets[4]:
            self.sets[4] = self.sets[4] | {0}   # Sunday is 0 or 7
        # as cron: a day field starting with "*" (also "*/2") does not restrict the other one
        self.any_day, self.any_weekday = parts[2].startswith("*"), parts[4].startswith("*")
        self.next_after(datetime(2000, 1, 1, tzinfo=timezone.utc))   # "0 0 31 4 *" fails here, now

    def _field(self, text: str, lo: int, hi: int) -> frozenset[int]:
        values: set[int] = set()
        for item in text.split(","):
            rng, _, step_text = item.partition("/")
            try:
                step = int(step_text) if step_text else 1
                if rng == "*":
                    start, end = lo, hi
                elif "-" in rng:
                    start, end = (int(x) for x in rng.split("-", 1))
                else:
                    start = end = int(rng)
                    if step_text:
                        end = hi
            except ValueError:
                raise UsageError(f"cron field {text!r} in {self.text!r} is not understood") from None
            if not (lo <= start <= end <= hi) or step < 1:
                raise UsageError(f"cron field {text!r} in {self.text!r} is out of range {lo}-{hi}")
            values.update(range(start, end + 1, step))
        return frozenset(values)

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.sets[2]
        dow = (t.isoweekday() % 7) in self.sets[4]
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow   # as cron does when both are restricted

    def next_after(self, moment: datetime) -> datetime:
        """Return the first matching minute after `moment`."""
        t = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366 * 5)
        while t < limit:
            if t.month not in self.sets[3] or not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.sets[1]:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.sets[0]:
                t += timedelta(minutes=1)
            else:
                return t
        raise UsageError(f"cron expression {self.text!r} never matches")


def next_due(every: str, due: datetime, now: datetime) -> datetime:
    """Return the due time after `due`: one interval on, moved past `now` (no catch-up)."""
    when = parse_every(every)
    if isinstance(when, Cron):
        return when.next_after(max(due, now))
    following = due + when
    if following <= now:   # runs were missed: skip them rather than run them all at once
        following += when * ((now - following) // when + 1)
    return following
