"""A small five-field cron matcher (minute hour day-of-month month day-of-week), enough for schedules.

Fields take `*`, `N`, `A-B`, `*/S`, `A-B/S` and comma lists; day-of-week 0 or 7 is Sunday. As in cron,
when both day fields are restricted a time matches if either does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step must be >= 1 in {part!r}")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, stop = int(a), int(b)
        else:
            start = int(base)
            stop = high if step_text else start
        if not (low <= start <= high and low <= stop <= high and start <= stop):
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed schedule."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        """Parse a five-field expression; ValueError names the bad field."""
        fields = expression.split()
        if len(fields) != 5:
            raise ValueError(f"{expression!r}: expected five fields")
        parsed = [_field(text, *bounds) for text, bounds in zip(fields, _BOUNDS, strict=True)]
        weekdays = frozenset(d % 7 for d in parsed[4])
        return cls(parsed[0], parsed[1], parsed[2], parsed[3], weekdays,
                   fields[2] != "*", fields[4] != "*")

    def matches(self, when: dt.datetime) -> bool:
        """Whether the minute of `when` is a scheduled one."""
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, when: dt.datetime, limit_days: int = 366) -> dt.datetime:
        """The first scheduled minute strictly after `when`."""
        candidate = when.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for _ in range(limit_days * 24 * 60):
            if self.matches(candidate):
                return candidate
            candidate += dt.timedelta(minutes=1)
        raise ValueError(f"no scheduled time within {limit_days} days")
