"""The portal's template filters, available in every template without `{% load %}`."""

from __future__ import annotations

import datetime as dt

from django import template

from workflows_app.nexthink.classic import engine_code_meaning
from workflows_app.permissions import approver_label

register = template.Library()


@register.filter
def thousands(value: object) -> object:
    """A count with thousands separators (12,345); anything that is not a whole number as it is.

    Ours rather than humanize's `intcomma`: the separator must not depend on the locale or on
    USE_THOUSAND_SEPARATOR, and a count never shows decimals.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return f"{int(value):,}"
    return value


@register.filter
def percent(value: object, digits: int = 1) -> str:
    """A share (0.973) as a percentage ("97.3 %"); "—" when there is none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value * 100:.{digits}f} %"


@register.filter
def duration(value: object) -> str:
    """A timedelta the way people say it: "0.4 s", "12 s", "3 min 20 s", "2 h 5 min", "3 d 4 h"."""
    if not isinstance(value, dt.timedelta):
        return "—"
    seconds = value.total_seconds()
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


@register.filter
def engine_meaning(code: object) -> str:
    """What a classic Engine's answer code means, for the run page's table of Engine answers."""
    return engine_code_meaning(str(code))


@register.filter
def approver(approver_role: str) -> str:
    """Who may approve a run for this approver role, in words ("an admin")."""
    return approver_label(approver_role)
