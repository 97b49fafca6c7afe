"""Cron schedules as Kubernetes CronJobs take them, checked before anything is applied.

The API server accepts a schedule it cannot run without complaint at the field (the controller only
logs it later), so a cloud's schedule is checked here: five fields (minute, hour, day of month,
month, day of week) of `*`, numbers, ranges, lists and steps, month and day names, or one of the
`@hourly`, `@daily` … macros. Time zones are not part of the string (`TZ=` is refused by Kubernetes).
"""

from __future__ import annotations

import re

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names counted from `lowest`)
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
_TERM = re.compile(r"^(?P<range>\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        number = int(text)
        return number if low <= number <= high else None
    return low + names.index(text) if text in names else None


def _field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for term in text.split(","):
        match = _TERM.match(term)
        if match is None:
            return f"{name} {text!r} is not a cron field (e.g. *, 5, 1-5, */15, 1,15)"
        step = match["step"]
        if step is not None and int(step) == 0:
            return f"{name} {text!r}: a step of 0 never fires"
        span = match["range"]
        if span in ("*", "?"):
            continue
        bounds = [_value(part, low, high, names) for part in span.split("-")]
        if any(bound is None for bound in bounds):
            return f"{name} {text!r}: values go from {low} to {high}"
        if len(bounds) == 2 and bounds[0] > bounds[1]:  # type: ignore[operator]
            return f"{name} {text!r}: a range goes from low to high"
    return None


def schedule_problem(schedule: str) -> str | None:
    """Why `schedule` is not a schedule a CronJob runs, or None."""
    text = schedule.strip().lower()
    if text.startswith("@"):
        return None if text in MACROS else f"{schedule!r}: unknown macro (known: {', '.join(MACROS)})"
    if text.startswith(("tz=", "cron_tz=")):
        return f"{schedule!r}: a time zone is not part of the schedule (CronJobs run in the controller's, UTC)"
    parts = text.split()
    if len(parts) != len(FIELDS):
        return f"{schedule!r} has {len(parts)} fields, a cron schedule 5: minute hour day-of-month month day-of-week"
    for part, (name, low, high, names) in zip(parts, FIELDS, strict=True):
        problem = _field_problem(part, name, low, high, names)
        if problem:
            return problem
    return None
