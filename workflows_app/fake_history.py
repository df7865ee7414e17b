"""Fake run history for benchmarks: people, workflows, runs, batches and targets, in bulk SQL.

The one place that seeds fake history (`manage.py benchmark --suite history` and
`scripts/bench_dashboard.py` both use it). PostgreSQL only: every table is filled by one
INSERT … SELECT over generate_series, so a million targets take seconds, not minutes.

What it looks like: runs spread over `days` days, ids in the order they were created; 55 % are
self-service (an employee, one target: their device or UPN), 40 % helpdesk (a ticket such as
`INC0010042` in the reason; the first agent, whose pages the benchmark reads, runs about a
quarter of them) and 5 % from the command line; twelve workflows, the first ones
used most; targets are device names (`LAPTOP-00042`), Collector UUIDs, UPNs
(`user00042@example.com`) and SIDs; most runs succeed, some fail in part or whole, the last
minutes' are still running. The counts (`outcome_counts`, `target_count`) and statuses agree
with the targets, as the lifecycle keeps them.

Nothing here commits or cleans up: the caller decides (a rolled-back transaction, or a
scratch database). Names carry a random prefix so that they never clash with real ones.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

HELPDESK_PEOPLE = 25
# How busy the fake portal is, and how many runs a new one has (see HistoryShape.for_targets).
RUNS_PER_DAY = 220
NEW_PORTAL_RUNS = 1_000
ADMINS = 3
DEVICE_PREFIX = "LAPTOP-"
# The device and the word the benchmark's filters look for (both exist at every size).
SOME_DEVICE = "LAPTOP-00042"
SOME_WORKFLOW_WORD = "outlook"

# name, NQL id suffix, dependency, employee-facing title ("" when not offered to employees)
WORKFLOWS = (
    ("Restart Outlook", "restart_outlook", "DEVICE", "Fix Outlook"),
    ("Clear Teams cache", "clear_teams_cache", "USER", "Fix Microsoft Teams"),
    ("Free disk space", "free_disk_space", "DEVICE", "Free up disk space"),
    ("Reset network adapter", "reset_network_adapter", "DEVICE", ""),
    ("Restart print spooler", "restart_print_spooler", "DEVICE", "Fix printing"),
    ("Repair Outlook profile", "repair_outlook_profile", "USER", ""),
    ("Reinstall VPN client", "reinstall_vpn_client", "DEVICE", "Fix the VPN"),
    ("Clear browser cache", "clear_browser_cache", "USER", "Speed up the browser"),
    ("Rebuild search index", "rebuild_search_index", "DEVICE", ""),
    ("Collect diagnostic logs", "collect_diagnostic_logs", "DEVICE", ""),
    ("Update Zoom", "update_zoom", "DEVICE", ""),
    ("Reset OneDrive sync", "reset_onedrive_sync", "USER", "Fix OneDrive"),
)
COMPLAINTS = (
    "Outlook keeps crashing",
    "Teams is very slow",
    "VPN drops every hour",
    "Disk is full",
    "Printer queue stuck",
    "Laptop slow after the update",
    "Cannot join meetings",
    "Search does not find my mail",
)


@dataclass(frozen=True)
class HistoryShape:
    """How much history to make: exactly `targets` target rows over `runs` runs."""

    targets: int
    runs: int
    days: int = 180

    @classmethod
    def for_targets(cls, targets: int) -> HistoryShape:
        """A portal as busy each day whatever its age: about RUNS_PER_DAY runs a day.

        A large history is 25 targets a run over up to 180 days; a small one (a new portal)
        is up to NEW_PORTAL_RUNS runs of fewer targets over at least a week, so that the pages
        the benchmark compares show as many rows at both sizes.
        """
        runs = min(targets, max(NEW_PORTAL_RUNS, targets // 25))
        days = max(7, min(180, round(runs / RUNS_PER_DAY)))
        return cls(targets=targets, runs=runs, days=days)

    @property
    def employees(self) -> int:
        return max(10, min(99_999, self.runs // 10))

    @property
    def devices(self) -> int:
        return max(50, min(99_999, self.targets // 20))


@dataclass(frozen=True)
class FakeHistory:
    """What was seeded, and values that exist in it, for filters to look for."""

    shape: HistoryShape
    prefix: str
    admin_id: int
    helpdesk_id: int
    helpdesk_username: str
    ticket: str
    first_run_id: int
    runs_seeded: int
    targets_seeded: int
    seconds: float

    @property
    def nql_prefix(self) -> str:
        """How the NQL ids of its workflows begin."""
        return nql_prefix_of(self.prefix)


def nql_prefix_of(prefix: str) -> str:
    return "#" + prefix.replace("-", "_") + "_"


_PEOPLE = """
CREATE TEMP TABLE bench_people ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('auth_user', 'id'))::int AS id, kind, n
FROM (SELECT 'admin' AS kind, generate_series(1, %(admins)s) AS n
      UNION ALL SELECT 'helpdesk', generate_series(1, %(helpdesk)s)
      UNION ALL SELECT 'employee', generate_series(1, %(employees)s)) p
ORDER BY kind, n;
"""
_USERS = """
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT id, '!', kind = 'admin', %(prefix)s || '-' || kind || '-' || lpad(n::text, 5, '0'),
       '', '', %(prefix)s || '-' || kind || '-' || lpad(n::text, 5, '0') || '@example.com',
       false, true, now() - interval '1 year'
FROM bench_people;
"""
_GROUPS = """
INSERT INTO auth_user_groups (user_id, group_id)
SELECT p.id, g.id FROM bench_people p
JOIN auth_group g ON g.name = initcap(p.kind);
"""
_WORKFLOWS = """
CREATE TEMP TABLE bench_wf ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('workflows_app_workflow', 'id')) AS id, w.n, w.name,
       %(nql_prefix)s || w.slug AS nql_id,
       md5(%(prefix)s || w.slug)::uuid::text AS uuid, w.dependency, w.title
FROM unnest(%(names)s::text[], %(slugs)s::text[], %(dependencies)s::text[], %(titles)s::text[])
     WITH ORDINALITY AS w(name, slug, dependency, title, n);
INSERT INTO workflows_app_workflow (id, nql_id, uuid, name, description, status, dependency,
    trigger_api, trigger_manual, trigger_manual_multiple, trigger_scheduler, raw, first_seen,
    last_seen)
SELECT id, nql_id, uuid, name, '', 'ACTIVE', dependency, true, false, false, false, '{}',
       now() - interval '1 year', now()
FROM bench_wf;
INSERT INTO workflows_app_workflowcuration (self_service, title, description, category,
    confirmation_text, allowed_roles, resume_roles, updated_at, workflow_id)
SELECT true, title, '', '', '', '[]', '[]', now(), id FROM bench_wf WHERE title <> '';
"""
# Which run is which. Target counts: one for self-service, else 1 + a share of what is left
# (exponential weights), so that the total is exactly the number of targets asked for.
_PLAN = """
CREATE TEMP TABLE bench_plan ON COMMIT DROP AS
SELECT n, now() - random() * %(days)s * interval '1 day' AS created_at,
       CASE WHEN (n + 10) %% 20 < 11 THEN 'self_service' WHEN (n + 10) %% 20 < 19
            THEN 'helpdesk' ELSE 'cli' END AS source,
       1 + floor(power(random(), 1.6) * %(workflows)s)::int AS wf,
       CASE WHEN (n + 10) %% 20 < 11 THEN 0
            ELSE 1 + floor(-ln(1 - random()) * 1000)::bigint END AS weight,
       CASE WHEN random() < 0.75 THEN 0.02 WHEN random() < 0.6 THEN 0.3 ELSE 1.0 END
         AS fail_rate
FROM generate_series(1, %(runs)s) n;
CREATE TEMP TABLE bench_runs ON COMMIT DROP AS
SELECT nextval(pg_get_serial_sequence('workflows_app_run', 'id')) AS id,
       nextval(pg_get_serial_sequence('workflows_app_batch', 'id')) AS batch_id, p.*,
       CASE WHEN source = 'self_service' THEN 1
            ELSE 1 + (%(extra)s::bigint * cumulative) / total
                   - (%(extra)s::bigint * (cumulative - weight)) / total END AS target_count,
       p.created_at > now() - interval '15 minutes' AS recent,
       CASE source WHEN 'self_service' THEN 'employee' WHEN 'helpdesk' THEN 'helpdesk'
                   ELSE 'admin' END AS who_kind,
       CASE source WHEN 'self_service' THEN 1 + (n::bigint * 7919) %% %(employees)s
                   WHEN 'helpdesk' THEN CASE WHEN n %% 5 = 0 THEN 1 ELSE 1 + n %% %(helpdesk)s END
                   ELSE 1 + n %% %(admins)s END AS who_n
FROM (SELECT q.*, sum(weight) OVER (ORDER BY n)::bigint AS cumulative,
             sum(weight) OVER ()::bigint AS total
      FROM bench_plan q) p
ORDER BY created_at;
"""
_TARGETS = """
INSERT INTO workflows_app_target (position, kind, value, execution_uuid, status, status_details,
    batch_id, run_id, outcome, outcome_details, upstream_outcome)
SELECT t.position, t.kind,
       CASE t.kind
         WHEN 'device_name' THEN %(device_prefix)s || lpad(t.who::text, 5, '0')
         WHEN 'device_collector' THEN md5('device' || t.who)::uuid::text
         WHEN 'user_upn' THEN 'user' || lpad(t.who::text, 5, '0') || '@example.com'
         ELSE 'S-1-5-21-1004336348-1177238915-682003330-' || (10000 + t.who) END,
       CASE WHEN t.outcome = 'not_sent' THEN '' ELSE md5(t.run_id || ':' || t.position) END,
       t.outcome, '', t.batch_id, t.run_id, t.outcome,
       CASE WHEN t.outcome = 'failure' THEN 'The remote action exited with code 1' ELSE '' END,
       CASE WHEN t.outcome = 'not_sent' THEN '' ELSE upper(t.outcome) END
FROM (
  SELECT r.id AS run_id, r.batch_id, g.position,
         CASE WHEN w.dependency = 'DEVICE' THEN
                CASE WHEN r.source <> 'self_service' AND g.x2 < 0.1 THEN 'device_collector'
                     ELSE 'device_name' END
              ELSE CASE WHEN r.source <> 'self_service' AND g.x2 < 0.15 THEN 'user_sid'
                        ELSE 'user_upn' END END AS kind,
         CASE WHEN r.source = 'self_service' THEN 1 + (r.n::bigint * 7919) %% %(devices)s
              ELSE 1 + floor(g.x3 * %(devices)s)::int END AS who,
         CASE WHEN r.recent AND g.x < 0.6 THEN 'pending'
              WHEN g.x < r.fail_rate * 0.8 THEN 'failure'
              WHEN g.x < r.fail_rate * 0.9 THEN 'unknown'
              WHEN g.x < r.fail_rate THEN 'not_sent'
              ELSE 'success' END AS outcome
  FROM bench_runs r JOIN bench_wf w ON w.n = r.wf
  CROSS JOIN LATERAL (SELECT position, random() AS x, random() AS x2, random() AS x3
                      FROM generate_series(0, r.target_count - 1) position) g
) t;
"""
_COUNTS = """
CREATE TEMP TABLE bench_counts ON COMMIT DROP AS
SELECT run_id, jsonb_object_agg(outcome, n) AS counts,
       sum(n) FILTER (WHERE outcome = 'pending') AS pending,
       sum(n) FILTER (WHERE outcome = 'success') AS success,
       sum(n) FILTER (WHERE outcome = 'failure') AS failure,
       sum(n) FILTER (WHERE outcome = 'unknown') AS unknown,
       sum(n) AS total
FROM (SELECT run_id, outcome, count(*) AS n FROM workflows_app_target
      WHERE run_id >= %(first_run)s GROUP BY 1, 2) c
GROUP BY run_id;
"""
_RUNS = """
INSERT INTO workflows_app_run (id, created_at, finished_at, role, source, workflow_nql_id,
    workflow_uuid, workflow_name, dependency, params, secret_params, reason, api_version,
    target_count, duplicate_count, status, target_fingerprint, created_by_id, workflow_id,
    outcome_counts)
SELECT r.id, r.created_at,
       CASE WHEN c.pending > 0 THEN NULL
            ELSE r.created_at + interval '30 seconds' + random() * interval '20 minutes' END,
       CASE r.source WHEN 'self_service' THEN 'Employee' WHEN 'helpdesk' THEN 'Helpdesk'
                     ELSE 'Admin' END,
       r.source, w.nql_id, w.uuid, w.name, w.dependency, '{}', '',
       CASE r.source
         WHEN 'self_service' THEN (%(complaints)s::text[])[1 + r.n %% %(complaint_count)s]
         WHEN 'helpdesk' THEN 'INC' || lpad((10000 + r.n)::text, 7, '0') || ' '
                              || (%(complaints)s::text[])[1 + r.n %% %(complaint_count)s]
         ELSE 'Maintenance CHG' || lpad((20000 + r.n)::text, 7, '0') END,
       'v2', r.target_count, 0,
       CASE WHEN c.pending > 0 THEN 'in_progress'
            WHEN c.success = c.total THEN 'succeeded'
            WHEN c.success IS NULL AND c.failure > 0 THEN 'failed'
            WHEN c.success IS NULL THEN 'unknown'
            ELSE 'partial' END,
       md5(r.n::text) || md5(%(prefix)s), p.id, w.id, c.counts
FROM bench_runs r
JOIN bench_wf w ON w.n = r.wf
JOIN bench_counts c ON c.run_id = r.id
JOIN bench_people p ON p.kind = r.who_kind AND p.n = r.who_n
ORDER BY r.id;
"""
_BATCHES = """
INSERT INTO workflows_app_batch (id, number, state, api_version, target_count, attempts,
    claim_id, request_uuid, error_code, error_details, created_at, updated_at, claimed_at,
    finished_at, run_id, check_error, checks, export_id, outcome_counts, resend_note,
    next_check_at, last_checked_at)
SELECT r.batch_id, 1, 'submitted', 'v2', r.target_count, 1, '', md5('request' || r.id), '', '',
       r.created_at, r.created_at, r.created_at, r.created_at + interval '1 second', r.id, '',
       3, '', c.counts, '',
       CASE WHEN c.pending > 0 THEN now() + interval '1 minute' END,
       r.created_at + interval '5 minutes'
FROM bench_runs r JOIN bench_counts c ON c.run_id = r.id
ORDER BY r.id;
"""
TABLES = (
    "auth_user",
    "auth_user_groups",
    "workflows_app_workflow",
    "workflows_app_workflowcuration",
    "workflows_app_run",
    "workflows_app_batch",
    "workflows_app_target",
)


def seed_history(shape: HistoryShape, *, check_constraints: bool = True) -> FakeHistory:
    """Write `shape`'s history in the current transaction, then ANALYZE the tables it filled.

    With `check_constraints`, the foreign keys PostgreSQL would check at commit are checked
    before returning (a commit may never come: benchmarks roll back).
    """
    if connection.vendor != "postgresql":
        raise RuntimeError("Seeding fake history needs PostgreSQL.")
    if not 1 <= shape.runs <= shape.targets:
        raise ValueError("A history needs at least one run and no more runs than targets.")
    started = time.perf_counter()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    params: dict[str, Any] = {
        "prefix": prefix,
        "nql_prefix": nql_prefix_of(prefix),
        "admins": ADMINS,
        "helpdesk": HELPDESK_PEOPLE,
        "employees": shape.employees,
        "devices": shape.devices,
        "days": shape.days,
        "runs": shape.runs,
        "extra": shape.targets - shape.runs,
        "workflows": len(WORKFLOWS),
        "names": [w[0] for w in WORKFLOWS],
        "slugs": [w[1] for w in WORKFLOWS],
        "dependencies": [w[2] for w in WORKFLOWS],
        "titles": [w[3] for w in WORKFLOWS],
        "complaints": list(COMPLAINTS),
        "complaint_count": len(COMPLAINTS),
        "device_prefix": DEVICE_PREFIX,
    }
    with connection.cursor() as cursor:
        for script in (_PEOPLE, _USERS, _GROUPS, _WORKFLOWS, _PLAN, _TARGETS):
            _execute(cursor, script, params)
        cursor.execute("SELECT min(id) FROM bench_runs")
        first_run = int(cursor.fetchone()[0])
        params["first_run"] = first_run
        for script in (_COUNTS, _RUNS, _BATCHES):
            _execute(cursor, script, params)
        if check_constraints:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(f"ANALYZE {', '.join(TABLES)}")
        # Counted back from the tables, not taken from the shape.
        cursor.execute(
            "SELECT (SELECT count(*) FROM workflows_app_run WHERE id >= %(first_run)s),"
            "       (SELECT count(*) FROM workflows_app_target WHERE run_id >= %(first_run)s)",
            params,
        )
        runs_seeded, targets_seeded = cursor.fetchone()
        cursor.execute("SELECT kind, id FROM bench_people WHERE n = 1")
        first_of = dict(cursor.fetchall())
        # The ticket of a helpdesk run from the middle of the history.
        cursor.execute(
            "SELECT reason FROM workflows_app_run WHERE id IN ("
            "  SELECT id FROM bench_runs WHERE source = 'helpdesk' ORDER BY id"
            "  OFFSET (SELECT count(*) / 2 FROM bench_runs WHERE source = 'helpdesk') LIMIT 1)"
        )
        ticket = cursor.fetchone()[0].split()[0]
        for table in ("bench_counts", "bench_runs", "bench_plan", "bench_wf", "bench_people"):
            cursor.execute(f"DROP TABLE {table}")
    return FakeHistory(
        shape=shape,
        prefix=prefix,
        admin_id=first_of["admin"],
        helpdesk_id=first_of["helpdesk"],
        helpdesk_username=f"{prefix}-helpdesk-00001",
        ticket=ticket,
        first_run_id=first_run,
        runs_seeded=runs_seeded,
        targets_seeded=targets_seeded,
        seconds=time.perf_counter() - started,
    )


def _execute(cursor: CursorWrapper, script: str, params: dict[str, Any]) -> None:
    """Run each statement of `script` (PostgreSQL takes one statement per parameterised call)."""
    for statement in script.split(";\n"):
        if statement.strip():
            cursor.execute(statement, params)
