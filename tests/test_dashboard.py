"""The admins' dashboard: its figures on known runs (exact numbers), its daily counts, the empty
state, the period, and who may see it."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from workflows_app.models import (
    Batch,
    BatchState,
    DailyDeviceFailure,
    DailyRunCount,
    DashboardCounting,
    Outcome,
    Run,
    RunStatus,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.nexthink.models import Dependency
from workflows_app.selectors import dashboard as figures
from workflows_app.services import dashboard_counts
from workflows_app.tasks import recount_dashboard_task

URL = "/console/dashboard/"
RECOUNT = "/console/dashboard/recount/"


# --- known data --------------------------------------------------------------------------------


def workflow(nql_id: str, name: str, *, title: str = "") -> Workflow:
    now = timezone.now()
    row = Workflow.objects.create(
        nql_id=nql_id,
        uuid=f"uuid-{nql_id}",
        name=name,
        status=Workflow.Status.ACTIVE,
        dependency=Dependency.DEVICE,
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    if title:
        WorkflowCuration.objects.create(workflow=row, title=title)
    return row


def make_run(
    user: Any,
    wf: Workflow,
    source: str,
    created_at: dt.datetime,
    targets: list[tuple[str, str]],
    *,
    submitted_after: float | None,
    finished_after: float | None,
    state: str = BatchState.SUBMITTED,
) -> Run:
    """A run as the pipeline leaves it: one batch, its targets' outcomes and the counts."""
    counts: dict[str, int] = {}
    for _, outcome in targets:
        counts[outcome] = counts.get(outcome, 0) + 1
    run = Run.objects.create(
        created_by=user,
        role="Helpdesk",
        source=source,
        workflow=wf,
        workflow_nql_id=wf.nql_id,
        workflow_uuid=wf.uuid,
        workflow_name=wf.name,
        dependency=wf.dependency,
        api_version="v2",
        target_count=len(targets),
        status=RunStatus.SUCCEEDED if finished_after is not None else RunStatus.IN_PROGRESS,
        outcome_counts=counts,
    )
    finished = created_at + dt.timedelta(seconds=finished_after) if finished_after else None
    Run.objects.filter(pk=run.pk).update(created_at=created_at, finished_at=finished)
    batch = Batch.objects.create(
        run=run,
        number=1,
        state=state,
        api_version="v2",
        target_count=len(targets),
        outcome_counts=counts,
        finished_at=created_at + dt.timedelta(seconds=submitted_after or 1),
    )
    Target.objects.bulk_create(
        Target(run=run, batch=batch, position=i, kind="device_name", value=value, outcome=outcome)
        for i, (value, outcome) in enumerate(targets)
    )
    return run


def at(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    """A time `days_ago` days before today, in the portal's time zone."""
    day = timezone.localdate(timezone.now(), timezone.get_default_timezone())
    day -= dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_default_timezone())


@pytest.fixture
def known(make_user, admin_user):
    """Six runs of two workflows over 40 days, and one batch waiting for a decision.

    Last 30 days: 5 runs (self-service 2, helpdesk 1, CLI 1, API 1);
    #clear_cache: 2 succeeded, 3 failed, 1 not sent; #restart: 1 failed, 1 unknown, 1 not sent
    (one target still running); failed targets: PC-2 three times, PC-3 once.
    """
    someone = make_user("agent", None)
    clear = workflow("#clear_cache", "Clear cache", title="Clear the cache")
    restart = workflow("#restart", "Restart service")
    S, F, U, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.UNKNOWN, Outcome.NOT_SENT
    runs = {
        "r1": make_run(someone, clear, Run.Source.SELF_SERVICE, at(0, 1), [("PC-1", S)],
                       submitted_after=2, finished_after=60),
        "r2": make_run(someone, clear, Run.Source.SELF_SERVICE, at(1, 10), [("PC-2", F)],
                       submitted_after=4, finished_after=120),
        "r3": make_run(someone, clear, Run.Source.HELPDESK, at(1, 11),
                       [("PC-1", S), ("PC-2", F), ("PC-3", F), ("PC-4", N)],
                       submitted_after=6, finished_after=300),
        "r4": make_run(someone, restart, Run.Source.CLI, at(2, 9),
                       [("PC-2", F), ("PC-5", U), ("PC-6", Outcome.RUNNING)],
                       submitted_after=8, finished_after=None),
        "r5": make_run(someone, restart, Run.Source.HELPDESK, at(40, 9), [("PC-9", F)],
                       submitted_after=10, finished_after=600),
        "r6": make_run(someone, restart, Run.Source.API, at(0, 2), [("PC-7", N)],
                       submitted_after=None, finished_after=5, state=BatchState.FAILED),
    }  # fmt: skip
    Batch.objects.create(
        run=runs["r4"],
        number=2,
        state=BatchState.RECONCILED,
        api_version="v2",
        target_count=2,
        outcome_counts={N: 2},
    )
    dashboard_counts.recount(full=True)
    return runs


class Rows(HTMLParser):
    """The text of each cell of the table rows carrying a data attribute, by its value."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute
        self.rows: dict[str, list[str]] = {}
        self.current: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            key = dict(attrs).get(self.attribute)
            self.current = [] if key is not None else None
            if key is not None:
                self.rows[key] = self.current
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.current is not None and self.cell is not None:
            self.current.append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def rows(page: str, attribute: str) -> dict[str, list[str]]:
    parser = Rows(attribute)
    parser.feed(page)
    return parser.rows


def table(page: str, testid: str) -> str:
    """One table of the page, by its data-testid."""
    start = page.index(f'data-testid="{testid}"')
    return page[start : page.index("</table>", start)]


def tile(page: str, name: str) -> str:
    """The words of one summary tile."""
    start = page.index(f'data-testid="tile-{name}"')
    inner = page[page.index(">", start) + 1 : page.index("</div>\n  </div>", start)]
    return " ".join(re.sub(r"<[^>]+>", " ", inner).split())


# --- the figures on known data --------------------------------------------------------------------


def test_runs_per_day_by_source_and_the_self_service_share(known, client_for, admin_user):
    page = client_for(admin_user).get(URL).content.decode()

    days = rows(page, "data-day")
    assert len(days) == 30
    # Day, self-service, helpdesk, command line, API, all, self-service share.
    assert days[at(0, 0).date().isoformat()][1:] == ["1", "0", "0", "1", "2", "50 %"]
    assert days[at(1, 0).date().isoformat()][1:] == ["1", "1", "0", "0", "2", "50 %"]
    assert days[at(2, 0).date().isoformat()][1:] == ["0", "0", "1", "0", "1", "0 %"]
    assert days[at(3, 0).date().isoformat()][1:] == ["0", "0", "0", "0", "0", "—"]
    assert "5 runs in the last 30 days" in tile(page, "runs")
    assert "40 %" in tile(page, "self-service")
    assert "2 runs employees started themselves" in tile(page, "self-service")
    assert 'data-testid="chart-runs"' in page and 'data-testid="chart-share"' in page


def test_success_rate_per_workflow_counts_final_outcomes_only(known, client_for, admin_user):
    page = client_for(admin_user).get(URL).content.decode()

    found = rows(table(page, "workflows-table"), "data-workflow")
    # Workflow, runs, succeeded, failed, unknown, not sent, success rate.
    assert found["#clear_cache"] == [
        "Clear the cache #clear_cache",
        "3",
        "2",
        "3",
        "0",
        "1",
        "33.3 %",
    ]
    assert found["#restart"] == ["Restart service #restart", "2", "0", "1", "1", "1", "0.0 %"]
    assert page.index('data-workflow="#clear_cache"') < page.index('data-workflow="#restart"')
    assert "2 of 6 targets succeeded" in page  # the bar's title


def test_the_workflows_and_devices_that_fail_most(known, client_for, admin_user):
    page = client_for(admin_user).get(URL).content.decode()

    failing = table(page, "failing-workflows-table")
    assert rows(failing, "data-workflow")["#clear_cache"][1:] == ["3", "6", "50.0 %"]
    assert rows(failing, "data-workflow")["#restart"][1:] == ["1", "3", "33.3 %"]
    period = figures.period_of(30)
    assert figures.failing_devices(period) == [
        figures.DeviceFailures("PC-2", 3),
        figures.DeviceFailures("PC-3", 1),
    ]
    assert figures.failing_devices(figures.period_of(90)) == [
        figures.DeviceFailures("PC-2", 3),
        figures.DeviceFailures("PC-3", 1),
        figures.DeviceFailures("PC-9", 1),
    ]
    # Each bar leads to the history, filtered the same way.
    assert f"/runs/?target=PC-2&amp;outcome=failure&amp;since={period.first.isoformat()}" in page


def test_time_to_submission_and_to_outcome_median_and_p95(known, client_for, admin_user):
    period = figures.period_of(30)

    # First batches submitted 2, 4, 6 and 8 s after the click (r6's failed, r5's is too old).
    submission = figures.time_to_submission(period)
    assert submission.runs == 4
    assert submission.median == dt.timedelta(seconds=5)
    assert submission.p95 == dt.timedelta(seconds=7.7)
    # Final outcomes 5, 60, 120 and 300 s after the click (r4 is still running).
    outcome = figures.time_to_outcome(period)
    assert outcome.runs == 4
    assert outcome.median == dt.timedelta(seconds=90)
    assert outcome.p95 == dt.timedelta(seconds=273)

    page = client_for(admin_user).get(URL).content.decode()
    assert rows(page, "data-duration") == {
        "submission": ["Nexthink accepting the first batch", "5.0 s", "7.7 s", "4"],
        "outcome": ["the run's final outcome", "1 min 30 s", "4 min 33 s", "4"],
    }


def test_python_percentiles_agree_with_postgresqls_percentile_cont(db):
    """The demo (SQLite) computes them in Python: the same interpolation as percentile_cont."""
    assert connection.vendor == "postgresql"
    samples = [[7.0], [1.0, 2.0], [5.0, 1.0, 3.0, 10.0, 2.5], [float(n * n) for n in range(37)]]
    for values in samples:
        for fraction in (0.5, 0.95):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY v) FROM unnest(%s) v",
                    [fraction, values],
                )
                expected = cursor.fetchone()[0]
            ours = figures.percentile([dt.timedelta(seconds=v) for v in sorted(values)], fraction)
            assert ours is not None
            assert ours.total_seconds() == pytest.approx(expected)
    assert figures.percentile([], 0.5) is None


def test_batches_waiting_for_a_decision(known, client_for, admin_user):
    page = client_for(admin_user).get(URL).content.decode()

    batch = Batch.objects.get(run=known["r4"], number=2)
    assert tile(page, "decisions") == "1 batch waiting for a decision — decide"
    assert rows(page, "data-batch-id")[str(batch.pk)][:4] == [
        f"#{known['r4'].pk}",
        "Restart service",
        "2",
        "2",
    ]
    batch.resent_at = timezone.now()
    batch.save()
    page = client_for(admin_user).get(URL).content.decode()
    assert 'data-testid="no-decisions"' in page


def test_the_period_is_7_30_or_90_days(known, client_for, admin_user):
    client = client_for(admin_user)

    week = client.get(URL, {"days": "7"}).content.decode()
    quarter = client.get(URL, {"days": "90"}).content.decode()

    assert len(rows(week, "data-day")) == 7 and len(rows(quarter, "data-day")) == 90
    assert "6 runs in the last 90 days" in tile(quarter, "runs")
    every = rows(table(quarter, "workflows-table"), "data-workflow")
    assert every["#restart"][1:] == ["3", "0", "2", "1", "1", "0.0 %"]
    assert 'class="active" aria-current="page">Last 90 days' in quarter


def test_an_unknown_period_is_shown_as_ignored(known, client_for, admin_user):
    response = client_for(admin_user).get(URL, {"days": "365"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "“days=365” is not one of 7, 30 or 90: showing the last 30 days." in page
    assert len(rows(page, "data-day")) == 30


def test_counts_with_thousands_separators(db, make_user, client_for, admin_user):
    wf = workflow("#mass", "Mass fix")
    user = make_user("mass", None)
    run = make_run(user, wf, Run.Source.HELPDESK, at(0, 1), [("PC-1", Outcome.SUCCESS)],
                   submitted_after=1, finished_after=2)  # fmt: skip
    Run.objects.filter(pk=run.pk).update(outcome_counts={Outcome.SUCCESS: 12_345})
    dashboard_counts.recount(full=True)

    page = client_for(admin_user).get(URL).content.decode()

    assert rows(table(page, "workflows-table"), "data-workflow")["#mass"][2] == "12,345"


# --- the daily counts -----------------------------------------------------------------------------


def test_days_are_counted_in_the_portals_time_zone(settings, make_user, db):
    settings.TIME_ZONE = "Europe/Zurich"
    now = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
    wf = workflow("#tz", "Time zones")
    user = make_user("tz", None)
    # 23:30 UTC on the 14th is 00:30 on the 15th in Zurich.
    make_run(user, wf, Run.Source.HELPDESK, dt.datetime(2026, 1, 14, 23, 30, tzinfo=dt.UTC),
             [("PC-1", Outcome.FAILURE)], submitted_after=1, finished_after=2)  # fmt: skip

    dashboard_counts.recount(now=now, full=True)

    assert list(DailyRunCount.objects.values_list("day", "runs")) == [(dt.date(2026, 1, 15), 1)]
    assert list(DailyDeviceFailure.objects.values_list("day", "value", "failures")) == [
        (dt.date(2026, 1, 15), "PC-1", 1)
    ]
    days = figures.runs_per_day(figures.period_of(7, now=now))
    assert [d.total for d in days] == [0, 0, 0, 0, 0, 0, 1]


def test_a_recount_replaces_its_days_and_forgets_days_before_the_window(known):
    before = sorted(DailyRunCount.objects.values_list("day", "workflow_id", "source", "runs"))
    stale = DailyRunCount.objects.create(
        day=at(200, 0).date(), workflow=known["r1"].workflow, source=Run.Source.API, runs=9
    )

    dashboard_counts.recount(full=True)
    dashboard_counts.recount(full=True)

    after = sorted(DailyRunCount.objects.values_list("day", "workflow_id", "source", "runs"))
    assert after == before
    assert not DailyRunCount.objects.filter(pk=stale.pk).exists()


def test_recent_days_every_cycle_the_whole_window_every_hour(known):
    first = DashboardCounting.objects.get(pk=1)
    assert first.counted_from == at(dashboard_counts.WINDOW_DAYS - 1, 0).date()

    soon = dashboard_counts.recount(now=first.full_counted_at + dt.timedelta(minutes=5))
    later = dashboard_counts.recount(now=first.full_counted_at + dt.timedelta(minutes=61))

    assert not soon.full and soon.first_day == at(dashboard_counts.RECENT_DAYS - 1, 0).date()
    assert later.full and later.first_day == first.counted_from


def test_a_recent_recount_leaves_older_days_as_they_were(known):
    """A change to an old run waits for the hourly full recount."""
    Run.objects.filter(pk=known["r5"].pk).update(outcome_counts={Outcome.SUCCESS: 1})

    dashboard_counts.recount(full=False)
    old = DailyRunCount.objects.get(day=at(40, 0).date())
    assert (old.succeeded, old.failed) == (0, 1)

    dashboard_counts.recount(full=True)
    old = DailyRunCount.objects.get(day=at(40, 0).date())
    assert (old.succeeded, old.failed) == (1, 0)


def test_the_beat_task_recounts(known):
    DailyRunCount.objects.all().delete()

    result = recount_dashboard_task()

    assert DailyRunCount.objects.count() > 0
    assert set(result) == {"first_day", "full", "seconds"}


def test_recount_now_counts_a_new_run_at_once(known, make_user, client_for, admin_user):
    client = client_for(admin_user)
    make_run(make_user("late", None), known["r1"].workflow, Run.Source.SELF_SERVICE, at(0, 3),
             [("PC-8", Outcome.SUCCESS)], submitted_after=1, finished_after=2)  # fmt: skip
    assert "5 runs" in tile(client.get(URL).content.decode(), "runs")

    response = client.post(RECOUNT, {"days": "7"}, follow=True)

    assert response.redirect_chain[-1][0] == f"{URL}?days=7"
    page = response.content.decode()
    assert "Counted again from" in page
    assert "6 runs in the last 7 days" in tile(page, "runs")


# --- empty state and refusals ---------------------------------------------------------------------


def test_empty_dashboard_before_any_count_and_any_run(db, client_for, admin_user):
    response = client_for(admin_user).get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "The daily counts have not been made yet" in page
    assert 'data-testid="no-runs"' in page and "No runs in the last 30 days" in page
    assert 'data-testid="no-failing-workflows"' in page
    assert 'data-testid="no-failing-devices"' in page
    assert 'data-testid="no-decisions"' in page
    assert "0 runs in the last 30 days" in tile(page, "runs")
    assert "—" in tile(page, "self-service") and "—" in tile(page, "submission")
    assert rows(page, "data-duration")["outcome"][1:] == ["—", "—", "0"]


def test_empty_period_after_a_count(db, client_for, admin_user):
    dashboard_counts.recount(full=True)

    page = client_for(admin_user).get(URL).content.decode()

    assert "Counts as of" in page and "No runs in the last 30 days." in page


def test_only_admins_see_the_dashboard(db, client, client_for, employee, helpdesk, admin_user):
    assert client.get(URL).status_code == 302
    assert client.get(URL)["Location"].startswith("/login/")
    assert client_for(employee).get(URL).status_code == 403
    assert client_for(helpdesk).get(URL).status_code == 403
    assert client_for(admin_user).post(URL).status_code == 405


def test_only_admins_recount_and_only_by_post(
    db, client, client_for, employee, helpdesk, admin_user
):
    assert client.post(RECOUNT).status_code == 302
    assert client_for(employee).post(RECOUNT).status_code == 403
    assert client_for(helpdesk).post(RECOUNT).status_code == 403
    assert not DashboardCounting.objects.exists()
    assert client_for(admin_user).get(RECOUNT).status_code == 405
    assert client_for(admin_user).post(RECOUNT, {"days": "junk"}).status_code == 302
    assert DashboardCounting.objects.get(pk=1).counted_at is not None


def test_admins_find_the_dashboard_in_the_navigation(db, client_for, admin_user, helpdesk):
    admin_page = client_for(admin_user).get("/console/").content.decode()
    assert f'href="{URL}">Dashboard</a>' in admin_page
    assert URL not in client_for(helpdesk).get("/runs/").content.decode()
