"""The run page's timeline: what happened to a run, oldest first, in the viewer's time zone,
read a bounded page at a time whatever the run's size; employees never see it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.test_run_views import make_run, make_workflow
from workflows_app.models import (
    Batch,
    BatchState,
    Outcome,
    Run,
    RunEvent,
    RunEventKind,
    Target,
    WorkflowCuration,
)
from workflows_app.selectors.runs import timeline_of
from workflows_app.services import lifecycle, reconcile, sweeper, timeline

pytestmark = pytest.mark.django_db


def events_shown(html: str) -> list[tuple[str, str]]:
    """(kind, message) of each timeline row, in page order."""
    table = html.split('data-testid="timeline"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-event="([^"]+)"[^>]*>(.*?)</tr>', table, re.S)
    return [(kind, re.findall(r"<td>(.*?)</td>", cells, re.S)[3]) for kind, cells in rows]


def actors_shown(html: str) -> list[str]:
    return re.findall(r'data-testid="event-actor">(?:<span class="muted">)?([^<]+)<', html)


def test_timeline_shows_creation_failures_reconciliation_and_who_resent(
    client_for, helpdesk, admin_user, enqueued
):
    workflow = make_workflow()
    run = make_run(helpdesk, workflow, count=2)
    batch = run.batches.get()
    # Batch 1 goes out, Nexthink's answer is lost; its targets were never seen there.
    assert lifecycle.claim(batch.pk, "task-1")
    batch.refresh_from_db()
    lifecycle.finish(batch, "task-1", BatchState.UNKNOWN, "OUTCOME_UNKNOWN", "HTTP 500 after send")
    Target.objects.filter(batch=batch).update(outcome=Outcome.NOT_SENT)
    batch.refresh_from_db()
    lifecycle.reconcile(batch, note="Reconciled: 0 of 2 target(s) found, 2 not sent.")
    batch.refresh_from_db()
    resent = reconcile.resend_not_sent(batch, user=admin_user, note="checked in Nexthink")
    # The re-sent batch is refused by Nexthink outright.
    assert lifecycle.claim(resent.pk, "task-2")
    resent.refresh_from_db()
    lifecycle.finish(resent, "task-2", BatchState.FAILED, "BAD_REQUEST", "API trigger is off")

    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()

    shown = events_shown(html)
    assert [kind for kind, _ in shown] == [
        RunEventKind.CREATED,
        RunEventKind.BATCH_CLAIMED,
        RunEventKind.BATCH_UNKNOWN,
        RunEventKind.BATCH_RECONCILED,
        RunEventKind.RESENT,
        RunEventKind.BATCH_CLAIMED,
        RunEventKind.BATCH_FAILED,
    ]
    messages = dict(shown)
    assert "helpdesk (Helpdesk, Helpdesk form) started" in messages[RunEventKind.CREATED]
    assert "on 2 target(s) in 1 batch(es): test" in messages[RunEventKind.CREATED]
    assert "OUTCOME_UNKNOWN: HTTP 500 after send" in messages[RunEventKind.BATCH_UNKNOWN]
    assert "0 of 2 target(s) found" in messages[RunEventKind.BATCH_RECONCILED]
    assert messages[RunEventKind.RESENT].startswith("admin sent the 2 not-sent target(s)")
    assert "checked in Nexthink" in messages[RunEventKind.RESENT]
    assert "Batch 2: failed, nothing ran (BAD_REQUEST: API trigger is off)" in html
    assert actors_shown(html) == [
        "helpdesk",
        "portal",
        "portal",
        "portal",
        "admin",
        "portal",
        "portal",
    ]


def test_timeline_times_are_in_the_viewers_zone_and_labelled(client_for, admin_user, enqueued):
    run = make_run(admin_user, make_workflow())
    at = dt.datetime(2026, 1, 15, 12, 0, 5, tzinfo=dt.UTC)
    RunEvent.objects.filter(run=run).update(at=at)
    client = client_for(admin_user)
    client.cookies["portal_tz"] = "Asia/Tokyo"

    html = client.get(reverse("runs:detail", args=[run.pk])).content.decode()

    section = html.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    assert "2026-01-15 21:00:05" in section  # UTC+9
    assert "(times in Asia/Tokyo)" in section and "When <span" in section


def test_sweeper_resending_a_lost_message_is_on_the_timeline(helpdesk, enqueued):
    run = make_run(helpdesk, make_workflow())
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Batch.objects.filter(run=run).update(updated_at=long_ago, created_at=long_ago)

    result = sweeper.sweep()

    assert result.requeued == [run.batches.get().pk]
    last = RunEvent.objects.filter(run=run).order_by("at", "id").last()
    assert last is not None and last.kind == RunEventKind.BATCH_REQUEUED
    assert "message to the worker was lost" in last.message


def many_events(run: Run, count: int) -> list[RunEvent]:
    """`count` more events on the run, one second apart, after its creation."""
    start = timezone.now()
    rows = RunEvent.objects.bulk_create(
        RunEvent(run=run, kind=RunEventKind.OUTCOMES, message=f"event {i}", batch_number=1)
        for i in range(count)
    )
    for i, row in enumerate(rows):
        row.at = start + dt.timedelta(seconds=i + 1)
    RunEvent.objects.bulk_update(rows, ["at"])
    return rows


def test_timeline_pages_are_bounded_and_follow_each_other(helpdesk, enqueued):
    run = make_run(helpdesk, make_workflow())
    many_events(run, 450)

    first = timeline_of(run, limit=200)
    second = timeline_of(run, after=first.next_after, limit=200)
    third = timeline_of(run, after=second.next_after, limit=200)

    assert first.events[0].kind == RunEventKind.CREATED
    assert [e.message for e in first.events[1:3]] == ["event 0", "event 1"]
    assert [e.message for e in second.events[:2]] == ["event 199", "event 200"]
    assert len(first.events) == len(second.events) == 200 and len(third.events) == 51
    assert third.events[-1].message == "event 449" and third.next_after is None
    other = make_run(helpdesk, make_workflow("#other"))
    assert timeline_of(run, after=other.events.get().pk).events == []  # not this run's event


def test_the_run_page_reads_the_same_few_queries_for_5_or_5000_events(
    client_for, helpdesk, enqueued, django_assert_max_num_queries
):
    small = make_run(helpdesk, make_workflow())
    big = make_run(helpdesk, make_workflow("#big"))
    many_events(small, 4)
    many_events(big, 5_000)
    client = client_for(helpdesk)
    client.get(reverse("runs:detail", args=[small.pk]))  # session and role read once

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("runs:detail", args=[small.pk]))
    with django_assert_max_num_queries(len(few)):
        html = client.get(reverse("runs:detail", args=[big.pk])).content.decode()

    assert len(events_shown(html)) == 200
    assert not any("COUNT(" in q["sql"].upper() and "run_event" in q["sql"] for q in few)
    assert 'data-testid="timeline-more"' in html
    later = re.search(r'href="([^"]*events_after=\d+)#timeline" data-testid="timeline-next"', html)
    assert later
    page = client.get(later.group(1)).content.decode()
    assert events_shown(page)[0][1] == "event 199" and "First events" in page


def test_a_bad_events_after_value_shows_the_first_page(client_for, helpdesk, enqueued):
    run = make_run(helpdesk, make_workflow())
    url = reverse("runs:detail", args=[run.pk])
    for value in ("abc", "-1", "99999999999", "\x00", ""):
        response = client_for(helpdesk).get(url, {"events_after": value})
        assert response.status_code == 200, value
        assert events_shown(response.content.decode())[0][0] == RunEventKind.CREATED
    response = client_for(helpdesk).get(url, {"events_after": "2147483000"})
    assert response.status_code == 200 and "Nothing recorded after this point" in (
        response.content.decode()
    )


def test_employees_see_their_fix_without_the_technical_timeline(client_for, employee, enqueued):
    workflow = make_workflow("#self_fix")
    WorkflowCuration.objects.create(workflow=workflow, self_service=True)
    run = make_run(employee, workflow, source=Run.Source.SELF_SERVICE)
    timeline.note(run.pk, RunEventKind.BATCH_FAILED, "Batch 1: failed (BAD_REQUEST: secret)")

    html = client_for(employee).get(reverse("runs:detail", args=[run.pk])).content.decode()

    assert 'id="timeline"' not in html and "BAD_REQUEST" not in html
    assert "?again=" not in html
