"""Reading filter values from a query string, the same way on every filtered page.

A text value loses NUL (PostgreSQL refuses it), surrounding spaces and anything past 200
characters; a date is an ISO date in a plausible year; a value that cannot be used is added to
`ignored` as a sentence the page shows, quoting it back short.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.utils import timezone

MAX_TEXT_LENGTH = 200
MAX_ECHOED = 40
# Dates outside these years are typing mistakes, and at the edges of what datetimes can hold.
MIN_YEAR, MAX_YEAR = 1970, 9000


def text_value(value: str) -> str:
    """A text filter: NUL removed, trimmed, capped."""
    return value.replace("\x00", "").strip()[:MAX_TEXT_LENGTH]


def echo(value: str) -> str:
    """A value as messages quote it back: short, repr-quoted."""
    return repr(value if len(value) <= MAX_ECHOED else value[: MAX_ECHOED - 1] + "…")


def date_value(raw: str, name: str, ignored: list[str]) -> date | None:
    """The ISO date in `raw`, None when empty; a value that is not one is ignored, and said so."""
    value = text_value(raw)
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not MIN_YEAR <= day.year <= MAX_YEAR:
        ignored.append(f"'{name}' {echo(value)} is not a date like 2026-01-31: ignored.")
        return None
    return day


def start_of(day: date) -> datetime:
    """Midnight at the start of `day` in the current (viewer's) time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))
