"""A small five-field cron matcher (minute hour day-of-month month day-of-week), enough for schedules.

Fields take `*`, `N`, `A-B`, `*/S`, `A-B/S` and comma lists; months and weekdays also by name (`JAN`,
`MON-FRI`, any case); day-of-week 0 or 7 is Sunday; `?` in a day field means `*`; the macros `@hourly`,
`@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`) stand for their five fields. That is
what Kubernetes CronJobs, EventBridge and Cloud Scheduler all accept once written out: `normalize` writes
any accepted expression in the plain numeric form every target takes. As in cron, when both day fields are
restricted a time matches if either does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
#: Names each field accepts (month and day-of-week only).
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, _MONTHS, _WEEKDAYS)
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _number(text: str, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        allowed = f" or a name ({', '.join(names)})" if names else ""
        raise ValueError(f"{text!r} is not a number{allowed}")
    return int(text)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise ValueError(f"step {step_text!r} is not a number in {part!r}")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step must be >= 1 in {part!r}")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, stop = _number(a, names), _number(b, names)
        else:
            start = _number(base, names)
            stop = high if step_text else start
        if not (low <= start <= high and low <= stop <= high and start <= stop):
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


def _fields(expression: str) -> list[str]:
    """The five fields of `expression`, macros expanded and `?` read as `*`."""
    text = MACROS.get(expression.strip().lower(), expression)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r}: expected five fields (minute hour day-of-month month day-of-week) "
                         f"or one of {', '.join(MACROS)}")
    return [("*" if text == "?" and i in (2, 4) else text) for i, text in enumerate(fields)]


def _ranges(values: frozenset[int]) -> str:
    """A set of numbers as a comma list with consecutive runs as ranges: {1,2,3,5} -> '1-3,5'."""
    runs: list[list[int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def normalize(expression: str) -> str:
    """`expression` in plain numeric five-field form (names as numbers, macros written out, day-of-week in
    0-6), which Kubernetes, EventBridge and Cloud Scheduler all accept; ValueError if it is not valid."""
    cron = Cron.parse(expression)
    fields = _fields(expression)
    for i in (3,):
        if any(c.isalpha() for c in fields[i]):
            fields[i] = _ranges(cron.months) if cron.months != frozenset(range(1, 13)) else "*"
    if fields[4] != "*":
        fields[4] = _ranges(cron.weekdays) if len(cron.weekdays) < 7 else "0-6"
    return " ".join(fields)


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
        """Parse a five-field expression (or a macro); ValueError names the bad field."""
        fields = _fields(expression)
        parsed = []
        for text, bounds, names, what in zip(fields, _BOUNDS, _NAMES, _FIELD_NAMES, strict=True):
            try:
                parsed.append(_field(text, *bounds, names))
            except ValueError as exc:
                raise ValueError(f"{what} field {text!r}: {exc}") from None
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
