#!/usr/bin/env python
"""Time the admins' dashboard at 100,000 runs and 1,000,000 targets (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch python scripts/bench_dashboard.py

Fills an empty scratch database with `workflows_app.fake_history` (the benchmarks' one seeding:
runs spread over 180 days, 55 % self-service with one target, most targets succeed, some runs
fail in part or whole), commits and vacuums it as a live
database would be, recounts the daily counts, then times each dashboard query, the whole page,
and the same figures computed straight from the runs and targets (what the daily counts spare).
What it added is deleted at the end unless --keep. A database that already holds runs is
refused. Settings default to portal.test_settings (local defaults but for DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.test_settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from workflows_app.fake_history import HistoryShape, seed_history  # noqa: E402
from workflows_app.models import DailyDeviceFailure, DailyRunCount, Run  # noqa: E402
from workflows_app.selectors import dashboard as figures  # noqa: E402
from workflows_app.selectors.runs import batches_needing_decision  # noqa: E402
from workflows_app.services import dashboard_counts  # noqa: E402

# The same figures straight from the runs and targets, for comparison (not used by the portal).
RAW = {
    "runs per day by source": """
        SELECT (created_at AT TIME ZONE %(tz)s)::date, source, count(*) FROM workflows_app_run
        WHERE created_at >= %(since)s GROUP BY 1, 2""",
    "success per workflow": """
        SELECT workflow_id, sum((outcome_counts->>'success')::int),
               sum((outcome_counts->>'failure')::int), count(*)
        FROM workflows_app_run WHERE created_at >= %(since)s GROUP BY 1""",
    "devices failing most": """
        SELECT t.value, count(*) FROM workflows_app_target t
        JOIN workflows_app_run r ON r.id = t.run_id
        WHERE r.created_at >= %(since)s AND t.outcome = 'failure'
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10""",
}


# What the seeding added, by its names' prefix (a plain DELETE cascades nothing).
CLEAN = """
DELETE FROM workflows_app_dailydevicefailure;
DELETE FROM workflows_app_dailyruncount;
DELETE FROM workflows_app_dashboardcounting;
DELETE FROM workflows_app_target;
DELETE FROM workflows_app_batch;
DELETE FROM workflows_app_run;
DELETE FROM workflows_app_workflowcuration WHERE workflow_id IN (
    SELECT id FROM workflows_app_workflow WHERE starts_with(nql_id, %(nql_prefix)s));
DELETE FROM workflows_app_workflow WHERE starts_with(nql_id, %(nql_prefix)s);
DELETE FROM django_session;
DELETE FROM auth_user_groups WHERE user_id IN (
    SELECT id FROM auth_user WHERE starts_with(username, %(prefix)s) OR username = 'bench-admin');
DELETE FROM auth_user WHERE starts_with(username, %(prefix)s) OR username = 'bench-admin';
"""


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def line(name: str, samples: list[float]) -> str:
    return (
        f"  {name:<38} median {statistics.median(samples):8.1f} ms"
        f"  (min {min(samples):.1f}, max {max(samples):.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the rows it added")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only (the demo's SQLite holds a few runs at most).")
    if Run.objects.exists():
        sys.exit("This database holds runs: give it an empty scratch database.")
    started = time.perf_counter()
    history = None
    try:
        with transaction.atomic():
            history = seed_history(HistoryShape(targets=args.targets, runs=args.runs))
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(
            f"Filled {history.runs_seeded:,} runs and {history.targets_seeded:,} targets "
            f"in {time.perf_counter() - started:.0f} s"
        )
        report(args.repeat)
    finally:
        if history is not None and not args.keep:
            names = {"prefix": history.prefix + "-", "nql_prefix": history.nql_prefix}
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in CLEAN.split(";\n"):
                    if statement.strip():
                        cursor.execute(statement, names)
            print("Removed what it added.")


def report(repeat: int) -> None:
    for full in (True, False):
        samples = timed(lambda full=full: dashboard_counts.recount(full=full), max(1, repeat // 2))
        what = "whole window (hourly)" if full else "last 3 days (every cycle)"
        print(line(f"recount, {what}", samples))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE workflows_app_dailyruncount")
        cursor.execute("VACUUM ANALYZE workflows_app_dailydevicefailure")
    print(
        f"Daily counts: {DailyRunCount.objects.count():,} run rows, "
        f"{DailyDeviceFailure.objects.count():,} device rows"
    )
    admin = User.objects.create_superuser("bench-admin", "bench-admin@example.com", "x")
    client = Client()
    client.force_login(admin)
    for days in figures.PERIODS:
        period = figures.period_of(days)
        print(f"Last {days} days:")
        queries: dict[str, Callable[[], object]] = {
            "runs per day by source": lambda p=period: figures.runs_per_day(p),
            "success per workflow": lambda p=period: figures.workflow_figures(p),
            "devices failing most": lambda p=period: figures.failing_devices(p),
            "time to submission (percentile_cont)": lambda p=period: figures.time_to_submission(p),
            "time to outcome (percentile_cont)": lambda p=period: figures.time_to_outcome(p),
            "batches waiting for a decision": lambda: batches_needing_decision(),
            "the whole page (GET, rendered)": lambda d=days: client.get(
                f"/console/dashboard/?days={d}"
            ),
        }
        for name, call in queries.items():
            print(line(name, timed(call, repeat)))
        params = {"since": period.start, "tz": str(period.start.tzinfo)}
        for name, sql in RAW.items():

            def raw(sql: str = sql, params: dict[str, object] = params) -> None:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()

            print(line(f"without daily counts: {name}", timed(raw, repeat)))


if __name__ == "__main__":
    main()
