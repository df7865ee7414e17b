"""The console's follow-up sections: batches being reconciled, those waiting for an admin's
decision, follow-up problems, and the decision itself (sending not-sent targets again)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.test_run_views import make_run, make_workflow
from workflows_app.models import Batch, BatchState, Outcome, Run, Target, Workflow
from workflows_app.roles import Role
from workflows_app.selectors.runs import (
    NEEDS_DECISION,
    batches_being_reconciled,
    batches_needing_decision,
)
from workflows_app.services import lifecycle, reconcile

pytestmark = pytest.mark.django_db

HOME = "/console/"


def resend_url(batch: Batch) -> str:
    return reverse("console:resend", args=[batch.pk])


@pytest.fixture
def workflow() -> Workflow:
    return make_workflow("#repair_outlook")


def reconciled(run: Run, outcomes: list[str]) -> Batch:
    """The run's batch reconciled from Nexthink's history: these outcomes in position order."""
    batch = Batch.objects.get(run=run)
    Batch.objects.filter(pk=batch.pk).update(
        state=BatchState.RECONCILED,
        attempts=1,
        claimed_at=timezone.now(),
        finished_at=timezone.now(),
        error_code="OUTCOME_UNKNOWN",
        error_details="Reconciled from Nexthink's execution history.",
    )
    for position, outcome in enumerate(outcomes):
        found = outcome != Outcome.NOT_SENT
        Target.objects.filter(run=run, position=position).update(
            outcome=outcome,
            execution_uuid=f"00000000-0000-4000-9000-{run.pk:06d}{position:06d}" if found else "",
            outcome_details="" if found else "Nexthink has no execution of it.",
        )
    lifecycle.recount(batch.pk)
    lifecycle.refresh_run_status(run.pk)
    batch.refresh_from_db()
    return batch


def unknown(run: Run, *, checked: bool = True) -> Batch:
    """The run's batch ended unknown: its targets are being looked for (if `checked`)."""
    batch = Batch.objects.get(run=run)
    Batch.objects.filter(pk=batch.pk).update(
        state=BatchState.UNKNOWN,
        attempts=1,
        claimed_at=timezone.now(),
        error_code="OUTCOME_UNKNOWN",
        error_details="No answer within 30 s.",
        next_check_at=timezone.now() if checked else None,
    )
    Target.objects.filter(run=run).update(outcome=Outcome.UNKNOWN)
    Target.objects.filter(run=run, position=0).update(
        outcome=Outcome.SUCCESS, execution_uuid="00000000-0000-4000-9000-000000000001"
    )
    lifecycle.recount(batch.pk)
    lifecycle.refresh_run_status(run.pk)
    batch.refresh_from_db()
    return batch


# --- what the console lists ----------------------------------------------------------------------


def test_console_lists_batches_being_reconciled_and_waiting_for_a_decision(
    client_for, admin_user, helpdesk, workflow, enqueued
):
    looking = unknown(make_run(helpdesk, workflow, count=4))
    forgotten = unknown(make_run(helpdesk, workflow, count=2), checked=False)
    to_decide = reconciled(
        make_run(helpdesk, workflow, count=5),
        [Outcome.SUCCESS, Outcome.NOT_SENT, Outcome.FAILURE, Outcome.NOT_SENT, Outcome.NOT_SENT],
    )
    all_found = reconciled(make_run(helpdesk, workflow, count=2), [Outcome.SUCCESS] * 2)

    html = client_for(admin_user).get(HOME).content.decode()

    reconciling = html[html.index('data-testid="unknown-batches"') :].split("</table>")[0]
    assert f'data-batch-id="{looking.pk}"' in reconciling
    assert f'data-batch-id="{forgotten.pk}"' in reconciling and "not being checked" in reconciling
    assert f'href="/runs/{looking.run_id}/"' in reconciling and "No answer within 30 s." in html
    deciding = html[html.index('data-testid="to-decide"') :].split("</table>")[0]
    row = deciding[deciding.index(f'data-batch-id="{to_decide.pk}"') :].split("</tr>")[0]
    assert '<td data-count="found">2</td>' in row and '<td data-count="not-sent">3</td>' in row
    assert f'action="{resend_url(to_decide)}"' in row and 'name="note"' in row
    assert "Send 3 again" in row and "#repair_outlook" in row
    assert f'data-batch-id="{all_found.pk}"' not in html


def test_console_shows_follow_up_problems(client_for, admin_user, helpdesk, workflow, enqueued):
    run = make_run(helpdesk, workflow)
    problem = "NQL query #portal_workflow_executions does not exist (404): create it (README)."
    Batch.objects.filter(run=run).update(
        state=BatchState.SUBMITTED,
        next_check_at=timezone.now(),
        last_checked_at=timezone.now(),
        check_error=problem,
    )
    html = client_for(admin_user).get(HOME).content.decode()
    assert 'data-testid="check-problems"' in html and "create it (README)" in html

    Batch.objects.filter(run=run).update(next_check_at=None)  # no longer followed: not a problem
    assert 'data-testid="check-problems"' not in client_for(admin_user).get(HOME).content.decode()


def test_the_needs_decision_query_agrees_with_the_service(helpdesk, admin_user, workflow, enqueued):
    batches = [
        reconciled(make_run(helpdesk, workflow), [Outcome.NOT_SENT, Outcome.SUCCESS, "success"]),
        reconciled(make_run(helpdesk, workflow), [Outcome.SUCCESS] * 3),
        reconciled(make_run(helpdesk, workflow), [Outcome.NOT_SENT] * 3),
        unknown(make_run(helpdesk, workflow)),
    ]
    Batch.objects.filter(pk=batches[2].pk).update(resent_at=timezone.now(), resent_by=admin_user)
    rows = list(Batch.objects.order_by("pk"))
    assert {b.pk for b in rows if reconcile.needs_decision(b)} == set(
        Batch.objects.filter(NEEDS_DECISION).values_list("pk", flat=True)
    )
    assert [row.batch.pk for row in batches_needing_decision().rows] == [batches[0].pk]
    assert [row.batch.pk for row in batches_being_reconciled().rows] == [batches[3].pk]


def test_console_lists_are_bounded_without_counting(helpdesk, workflow, enqueued):
    for _ in range(3):
        unknown(make_run(helpdesk, workflow, count=1))
    shown = batches_being_reconciled(limit=2)
    assert len(shown.rows) == 2 and shown.more
    assert not batches_being_reconciled(limit=3).more


# --- the decision --------------------------------------------------------------------------------


def test_an_admin_sends_not_sent_targets_again_with_a_note(
    client_for, admin_user, helpdesk, workflow, enqueued, django_capture_on_commit_callbacks
):
    run = make_run(helpdesk, workflow, count=4)
    batch = reconciled(run, [Outcome.SUCCESS, Outcome.NOT_SENT, Outcome.SUCCESS, Outcome.NOT_SENT])
    client = client_for(admin_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend_url(batch), {"note": "INC0012345 checked in Nexthink"})

    assert response.status_code == 302 and response.url == HOME
    new = Batch.objects.get(run=run, number=2)
    assert enqueued == [new.pk]
    batch.refresh_from_db()
    assert (batch.resent_by, batch.resent_as, batch.resend_note) == (
        admin_user,
        new,
        "INC0012345 checked in Nexthink",
    )
    assert list(new.targets.order_by("position").values_list("position", flat=True)) == [1, 3]
    html = client.get(HOME).content.decode()
    assert "2 not-sent targets queued again as batch 2" in html
    decisions = html[html.index('data-testid="decisions"') :].split("</table>")[0]
    assert "INC0012345 checked in Nexthink" in decisions and "admin" in decisions
    assert "batch 2" in decisions and f'href="/runs/{run.pk}/"' in decisions
    assert f'data-batch-id="{batch.pk}"' not in html.split('data-testid="decisions"')[0]

    page = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "sent again as batch 2 by admin" in page


def test_a_note_is_required(client_for, admin_user, helpdesk, workflow, enqueued):
    batch = reconciled(make_run(helpdesk, workflow), [Outcome.NOT_SENT] * 3)
    client = client_for(admin_user)
    for data in ({}, {"note": "   "}, {"note": "x" * 501}, {"note": "a\x00b"}):
        response = client.post(resend_url(batch), data)
        assert response.status_code == 400, data
        assert "was not sent again" in response.content.decode()
    assert Batch.objects.filter(run=batch.run).count() == 1
    batch.refresh_from_db()
    assert batch.resent_at is None


def test_nothing_to_send_again_is_a_message_not_an_error(
    client_for, admin_user, helpdesk, workflow, enqueued
):
    client = client_for(admin_user)
    for batch in (
        reconciled(make_run(helpdesk, workflow), [Outcome.SUCCESS] * 3),
        unknown(make_run(helpdesk, workflow)),
        Batch.objects.get(run=make_run(helpdesk, workflow)),  # queued, never sent
    ):
        response = client.post(resend_url(batch), {"note": "try"})
        html = response.content.decode()
        assert response.status_code == 400
        assert "Nothing to send again" in html and 'class="message error"' in html
    assert not Batch.objects.filter(number=2).exists()


def test_a_run_with_secret_parameters_is_not_sent_again(
    client_for, admin_user, helpdesk, workflow, enqueued
):
    run = make_run(helpdesk, workflow)
    Run.objects.filter(pk=run.pk).update(params={"password": "••••••"})
    batch = reconciled(run, [Outcome.NOT_SENT] * 3)
    response = client_for(admin_user).post(resend_url(batch), {"note": "try"})
    assert response.status_code == 400
    assert "start a new run on these targets instead" in response.content.decode()


def test_a_double_post_sends_once(client_for, admin_user, helpdesk, workflow, enqueued):
    batch = reconciled(make_run(helpdesk, workflow), [Outcome.NOT_SENT] * 3)
    client = client_for(admin_user)
    first = client.post(resend_url(batch), {"note": "once"})
    second = client.post(resend_url(batch), {"note": "once"})
    assert first.status_code == 302 and second.status_code == 400
    assert Batch.objects.filter(run=batch.run).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_admins_deciding_at_once_send_once(make_user, helpdesk, monkeypatch, enqueued):
    """Both requests pass the view; the service's row lock lets one send, the other is told."""
    batch = reconciled(make_run(helpdesk, make_workflow("#race")), [Outcome.NOT_SENT] * 3)
    admins = [make_user(f"admin{i}", Role.ADMIN) for i in range(2)]
    enqueued.clear()  # the run's own batch, queued when it was created
    recount = lifecycle.recount

    def slow_recount(batch_id: int) -> dict[str, int]:
        time.sleep(0.3)  # hold the lock long enough for the other request to wait on it
        return recount(batch_id)

    monkeypatch.setattr(lifecycle, "recount", slow_recount)
    statuses: list[int] = []
    start = threading.Barrier(2)

    def decide(user: Any) -> None:
        client = Client()
        client.force_login(user)
        start.wait()
        try:
            statuses.append(client.post(resend_url(batch), {"note": "race"}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(admin,)) for admin in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [302, 400]
    assert Batch.objects.filter(run=batch.run).count() == 2
    assert enqueued == [Batch.objects.get(run=batch.run, number=2).pk]


# --- refusals ------------------------------------------------------------------------------------


def test_only_admins_decide(client_for, employee, helpdesk, workflow, enqueued):
    batch = reconciled(make_run(helpdesk, workflow), [Outcome.NOT_SENT] * 3)
    for user in (employee, helpdesk):
        assert client_for(user).post(resend_url(batch), {"note": "x"}).status_code == 403
    batch.refresh_from_db()
    assert batch.resent_at is None


def test_resend_answers_only_post_and_404s_an_unknown_batch(client_for, admin_user):
    client = client_for(admin_user)
    assert client.get("/console/batches/1/resend/").status_code == 405
    assert client.post("/console/batches/999999/resend/", {"note": "x"}).status_code == 404
    assert client.post("/console/batches/999999/resend/").status_code == 404


def test_anonymous_people_are_sent_to_login(client):
    response = client.post("/console/batches/1/resend/", {"note": "x"})
    assert response.status_code == 302 and response.url.startswith("/login/")
