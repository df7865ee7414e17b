"""Recounting the dashboard's daily counts (models/dashboard.py) from the runs.

Beat calls `recount()` every DASHBOARD_RECOUNT_MINUTES: it recounts the last RECENT_DAYS days
(outcomes of recent runs keep arriving for up to FOLLOW_UP_HORIZON_HOURS), and the whole window
once FULL_RECOUNT_EVERY has passed (a decision to re-send old targets, a run deleted by
retention). Each recount replaces the days it covers in one transaction, so the dashboard never
sees half a day; the pipeline itself never writes these counts.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Field, IntegerField, Model, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from workflows_app.models import (
    DailyDeviceFailure,
    DailyRunCount,
    DashboardCounting,
    Outcome,
    Run,
    Target,
)

# The longest period the dashboard shows; days before it are dropped.
WINDOW_DAYS = 90
RECENT_DAYS = 3
FULL_RECOUNT_EVERY = dt.timedelta(hours=1)

# DailyRunCount's field for each final outcome of Run.outcome_counts.
OUTCOME_FIELDS = {
    Outcome.SUCCESS: "succeeded",
    Outcome.FAILURE: "failed",
    Outcome.UNKNOWN: "unknown",
    Outcome.NOT_SENT: "not_sent",
}


@dataclass(frozen=True)
class Recount:
    """What one recount covered."""

    first_day: dt.date
    last_day: dt.date
    full: bool
    run_rows: int
    device_rows: int
    seconds: float


def today(now: dt.datetime | None = None) -> dt.date:
    """Today in the portal's TIME_ZONE: the days of the counts."""
    return timezone.localdate(now or timezone.now(), timezone.get_default_timezone())


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of a day, in the portal's TIME_ZONE."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def recount(*, now: dt.datetime | None = None, full: bool | None = None) -> Recount:
    """Recount the recent days (or, when `full` or due, the whole window) from the runs."""
    now = now or timezone.now()
    last = today(now)
    started = time.monotonic()
    DashboardCounting.objects.get_or_create(pk=1)
    with transaction.atomic():
        # Held to the end: a second recount waits instead of inserting the same days.
        state = DashboardCounting.objects.select_for_update().get(pk=1)
        if full is None:
            previous = state.full_counted_at
            full = previous is None or now - previous >= FULL_RECOUNT_EVERY
        first = last - dt.timedelta(days=(WINDOW_DAYS if full else RECENT_DAYS) - 1)
        oldest = last - dt.timedelta(days=WINDOW_DAYS - 1)
        for model in (DailyRunCount, DailyDeviceFailure):
            model.objects.filter(day__gte=first).delete()
            model.objects.filter(day__lt=oldest).delete()
        run_rows = _count_runs(first)
        device_rows = _count_failed_devices(first)
        state.counted_at = now
        state.counted_from = first
        if full:
            state.full_counted_at = now
        state.seconds = time.monotonic() - started
        state.save()
    return Recount(first, last, full, run_rows, device_rows, state.seconds)


def _count_runs(first: dt.date) -> int:
    zone = timezone.get_default_timezone()
    sums = {
        field: Coalesce(Sum(Cast(KT(f"outcome_counts__{outcome}"), IntegerField())), 0)
        for outcome, field in OUTCOME_FIELDS.items()
    }
    groups = (
        Run.objects.filter(created_at__gte=day_start(first))
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .order_by()
        .values("day", "workflow_id", "source")
        .annotate(runs=Count("id"), **sums)
    )
    return _insert_from(DailyRunCount, groups)


def _count_failed_devices(first: dt.date) -> int:
    zone = timezone.get_default_timezone()
    groups = (
        Target.objects.filter(outcome=Outcome.FAILURE, run__created_at__gte=day_start(first))
        .annotate(day=TruncDate("run__created_at", tzinfo=zone))
        .order_by()
        .values("day", "value")
        .annotate(failures=Count("id"))
    )
    return _insert_from(DailyDeviceFailure, groups)


def _insert_from(model: type[Model], groups: QuerySet[Any]) -> int:
    """Write the rows of an aggregate query into the model's table without a round trip.

    `INSERT INTO ... SELECT`: tens of thousands of counted rows never travel to Python and back
    (bulk_create took 7 of the 8 s of a whole-window recount at a million targets). The columns
    are the query's own aliases, which are the model's field names.
    """
    compiler = groups.query.get_compiler(using=groups.db)
    select, params = compiler.as_sql()
    quote = connection.ops.quote_name
    columns = ", ".join(quote(_column(model, alias)) for *_, alias in compiler.select)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {select}", params)
        return cursor.rowcount


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field.column
