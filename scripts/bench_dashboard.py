#!/usr/bin/env python
"""Time the admins' dashboard at 100,000 runs and 1,000,000 targets (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scratch python scripts/bench_dashboard.py

Fills an empty scratch database (runs spread over 180 days, 55 % self-service with one target,
the rest 1 to 41 targets; 88 % of targets succeed, 7 % fail), commits and vacuums it as a live
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

from workflows_app.models import DailyDeviceFailure, DailyRunCount, Run  # noqa: E402
from workflows_app.selectors import dashboard as figures  # noqa: E402
from workflows_app.selectors.runs import batches_needing_decision  # noqa: E402
from workflows_app.services import dashboard_counts  # noqa: E402

FILL = """
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                       is_active, date_joined)
SELECT '!', false, 'bench' || g, '', '', 'bench' || g || '@example.com', false, true, now()
FROM generate_series(1, 500) g;
INSERT INTO workflows_app_workflow (nql_id, uuid, name, description, status, dependency,
    trigger_api, trigger_manual, trigger_manual_multiple, trigger_scheduler, raw, first_seen,
    last_seen)
SELECT '#bench_wf_' || g, 'uuid-bench-' || g, 'Bench workflow ' || g, '', 'ACTIVE', 'DEVICE',
       true, false, false, false, '{}', now(), now()
FROM generate_series(1, 200) g;
CREATE TEMP TABLE bench_r ON COMMIT DROP AS
SELECT g AS n, now() - random() * interval '180 days' AS created_at,
       CASE WHEN g % 100 < 55 THEN 'self_service' WHEN g % 100 < 90 THEN 'helpdesk'
            WHEN g % 100 < 97 THEN 'cli' ELSE 'api' END AS source,
       CASE WHEN g % 100 < 55 THEN 1 ELSE 1 + floor(random() * 41)::int END AS tcount
FROM generate_series(1, {runs}) g;
INSERT INTO workflows_app_run (created_at, finished_at, role, source, workflow_nql_id,
    workflow_uuid, workflow_name, dependency, params, secret_params, reason, api_version,
    target_count, duplicate_count, status, target_fingerprint, created_by_id, workflow_id,
    outcome_counts)
SELECT created_at, created_at + interval '5 seconds' + random() * random() * interval '1 hour',
       'Helpdesk', source, '#bench', 'u', 'Bench', 'DEVICE', '{}', '', 'bench', 'v2', tcount, 0,
       'succeeded', '',
       (SELECT min(id) FROM auth_user WHERE username LIKE 'bench%') + n % 500,
       (SELECT min(id) FROM workflows_app_workflow WHERE nql_id LIKE '#bench_wf_%')
         + floor(power(random(), 2) * 200)::int,
       '{}'
FROM bench_r ORDER BY created_at;
INSERT INTO workflows_app_batch (number, state, api_version, target_count, attempts, claim_id,
    request_uuid, error_code, error_details, created_at, updated_at, claimed_at, finished_at,
    run_id, check_error, checks, export_id, outcome_counts, resend_note)
SELECT 1, 'submitted', 'v2', target_count, 1, '', 'req', '', '', created_at, created_at,
       created_at,
       created_at + interval '0.3 seconds' + random() * random() * interval '20 seconds', id,
       '', 1, '', '{}', ''
FROM workflows_app_run WHERE workflow_nql_id = '#bench';
INSERT INTO workflows_app_target (position, kind, value, execution_uuid, status, status_details,
    batch_id, run_id, outcome, outcome_details, upstream_outcome)
SELECT p, 'device_name', 'PC-' || lpad(floor(power(random(), 1.5) * 50000)::int::text, 5, '0'),
       'e', 'success', '', b.id, r.id,
       CASE WHEN x < 0.88 THEN 'success' WHEN x < 0.95 THEN 'failure' WHEN x < 0.97 THEN 'unknown'
            WHEN x < 0.98 THEN 'not_sent' ELSE 'pending' END, '', ''
FROM workflows_app_run r JOIN workflows_app_batch b ON b.run_id = r.id
CROSS JOIN LATERAL (SELECT p, random() AS x FROM generate_series(0, r.target_count - 1) p) t
WHERE r.workflow_nql_id = '#bench';
UPDATE workflows_app_run r SET outcome_counts = c.counts FROM (
    SELECT run_id, jsonb_object_agg(outcome, n) AS counts
    FROM (SELECT run_id, outcome, count(*) n FROM workflows_app_target GROUP BY 1, 2) x
    GROUP BY run_id) c
WHERE c.run_id = r.id;
UPDATE workflows_app_batch b SET outcome_counts = r.outcome_counts
FROM workflows_app_run r WHERE r.id = b.run_id;
"""

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


CLEAN = """
DELETE FROM workflows_app_dailydevicefailure;
DELETE FROM workflows_app_dailyruncount;
DELETE FROM workflows_app_dashboardcounting;
DELETE FROM workflows_app_target;
DELETE FROM workflows_app_batch;
DELETE FROM workflows_app_run;
DELETE FROM workflows_app_workflow WHERE nql_id LIKE '#bench_wf_%';
DELETE FROM django_session;
DELETE FROM auth_user WHERE username LIKE 'bench%';
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
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the rows it added")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only (the demo's SQLite holds a few runs at most).")
    if Run.objects.exists():
        sys.exit("This database holds runs: give it an empty scratch database.")
    started = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # No parameters: several statements in one go (the run count is an int).
            cursor.execute(FILL.replace("{runs}", str(int(args.runs))))
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("SELECT count(*) FROM workflows_app_target")
            (targets,) = cursor.fetchone()
        print(
            f"Filled {Run.objects.count():,} runs and {targets:,} targets "
            f"in {time.perf_counter() - started:.0f} s"
        )
        report(args.repeat)
    finally:
        if not args.keep:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(CLEAN)
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
