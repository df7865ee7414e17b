"""Flow runs notify as a whole: approvers of a held flow run are mailed a link to decide it, the
requester hears once when it ends (never once per step), is rejected or expires; webhooks get
flow run events with the flow run in the payload (and still every step run's own events); a flow
run's end is published once however many advances race."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from tests.flow_support import (
    advances_at_once,
    catalogue,
    end_run,
    make_flow,
    run_flow,
    step,
    steps_of,
)
from tests.notify_support import Receiver, verify
from workflows_app import tasks
from workflows_app.models import (
    Approval,
    EmailNotice,
    Flow,
    FlowRun,
    FlowRunStatus,
    NotificationPreference,
    WebhookDelivery,
)
from workflows_app.roles import Role
from workflows_app.services import approvals, dispatch, flow_engine
from workflows_app.services.webhook_admin import create_webhook

SECRET = "whsec-" + "fl0w" * 6


@pytest.fixture
def admin(make_user: Any, sim_workflow: Any) -> Any:
    catalogue(sim_workflow)
    return make_user("boss", Role.ADMIN)


@pytest.fixture
def agent(make_user: Any) -> Any:
    return make_user("agent", Role.HELPDESK)


@pytest.fixture
def published(
    enqueued: list[int], sends_at_once: Any, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Each event's name as published; the event is delivered at once, its mails and webhook
    POSTs sent at once (sends_at_once). Flow advances are recorded, not sent: tests advance."""
    names: list[str] = []

    def notify(subject_id: int, event: str, details: dict[str, Any]) -> None:
        names.append(event)
        tasks.notify_task(subject_id, event, details)

    monkeypatch.setattr(dispatch, "enqueue_notification", notify)
    monkeypatch.setattr(dispatch, "enqueue_flow_advance", lambda flow_run_id: None)
    return names


def held_flow(admin: Any) -> Flow:
    flow = make_flow(admin, "Held fix", step("clear"), step("disk", "clear"))
    Flow.objects.filter(pk=flow.pk).update(requires_approval=True)
    flow.refresh_from_db()
    return flow


@pytest.mark.django_db
def test_approvers_of_a_held_flow_run_are_mailed_once_with_the_decision_page(
    admin: Any,
    agent: Any,
    published: list[str],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        flow_run = run_flow(agent, held_flow(admin), "PC-1", "PC-2")
    assert published == ["flow_run.created", "flow_run.awaiting_approval"]

    (sent,) = mail.outbox  # the approver; the requester is not mailed about their own request
    approval = Approval.objects.get(flow_run=flow_run)
    assert sent.to == ["boss@example.com"]
    assert sent.subject == (
        f"Approval needed: flow 'Held fix' on 2 targets for agent (flow run {flow_run.pk})"
    )
    assert f"https://portal.example.com/approvals/{approval.pk}/" in sent.body
    assert "agent (Helpdesk) asks" in sent.body and "requires approval" in sent.body
    assert "Reason: flow test" in sent.body
    assert "  clear: #clear_teams_cache\n  disk: #free_up_disk_space\n" in sent.body
    notice = EmailNotice.objects.get()
    assert (notice.flow_run_id, notice.run_id, notice.event) == (
        flow_run.pk,
        None,
        "flow_run.awaiting_approval",
    )

    with django_capture_on_commit_callbacks(execute=True):  # the same event, delivered again
        tasks.notify_task(flow_run.pk, "flow_run.awaiting_approval", {"approver_ids": [admin.pk]})
    assert len(mail.outbox) == 1 and EmailNotice.objects.count() == 1


@pytest.mark.django_db
def test_the_requester_is_mailed_once_when_the_flow_run_ends_and_never_per_step(
    admin: Any,
    agent: Any,
    published: list[str],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    go_on = [{"type": "failure", "strategy": "continue"}]
    flow = make_flow(
        admin, "Two steps", step("clear", exception_behavior=go_on), step("disk", "clear")
    )
    with django_capture_on_commit_callbacks(execute=True):
        flow_run = run_flow(agent, flow, "PC-1", "PC-2")
    with django_capture_on_commit_callbacks(execute=True):
        end_run(steps_of(flow_run)["clear"].run, failing=("PC-2",))
    with django_capture_on_commit_callbacks(execute=True):
        flow_engine.advance(flow_run.pk)
    with django_capture_on_commit_callbacks(execute=True):
        end_run(steps_of(flow_run)["disk"].run)
    assert mail.outbox == []  # each step's run ended, and its requester heard nothing of it
    with django_capture_on_commit_callbacks(execute=True):
        assert flow_engine.advance(flow_run.pk).finished
    with django_capture_on_commit_callbacks(execute=True):
        flow_engine.advance(flow_run.pk)  # a later advance publishes nothing more

    assert published.count("run.ended") == 2  # the steps' events still go to the channels
    assert published.count("flow_run.ended") == 1
    (sent,) = mail.outbox
    assert sent.to == ["agent@example.com"]
    assert sent.subject == f"Flow run {flow_run.pk} partly failed: 'Two steps' on 2 targets"
    clear_run = steps_of(flow_run)["clear"].run
    assert clear_run is not None
    assert f"clear: Partial success (https://portal.example.com/runs/{clear_run.pk}/)" in sent.body
    assert "disk: Succeeded" in sent.body
    assert f"https://portal.example.com/flows/runs/{flow_run.pk}/" in sent.body
    assert list(EmailNotice.objects.values_list("flow_run_id", "run_id", "event")) == [
        (flow_run.pk, None, "flow_run.ended")
    ]


@pytest.mark.django_db
def test_the_requester_hears_of_a_rejection_and_of_an_expiry_unless_they_said_no(
    admin: Any,
    agent: Any,
    make_user: Any,
    published: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    flow = held_flow(admin)
    with django_capture_on_commit_callbacks(execute=True):
        rejected = run_flow(agent, flow, "PC-1")
        expiring = run_flow(agent, flow, "PC-2")
        quiet = run_flow(make_user("quiet", Role.HELPDESK), flow, "PC-3")
    NotificationPreference.objects.create(user=quiet.created_by, runs_ended=False)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        approval = Approval.objects.get(flow_run=rejected)
        approvals.reject(approval, user=admin, comment="Not during the audit")
    (sent,) = mail.outbox
    assert sent.to == ["agent@example.com"]
    assert sent.subject == f"Flow run {rejected.pk} rejected: 'Held fix' on 1 target"
    assert "boss rejected your flow run: no step was started" in sent.body
    assert "Comment: Not during the audit" in sent.body

    with django_capture_on_commit_callbacks(execute=True):
        approvals.expire_due(now=timezone.now() + timedelta(days=30))
    assert [m.subject for m in mail.outbox[1:]] == [
        f"Flow run {expiring.pk} not approved in time: 'Held fix' on 1 target"
    ]
    assert "Nobody approved your flow run in time" in mail.outbox[1].body
    assert published.count("flow_run.rejected") == 1 and published.count("flow_run.expired") == 2
    assert FlowRun.objects.get(pk=quiet.pk).status == FlowRunStatus.EXPIRED


@pytest.mark.django_db
def test_a_flow_run_event_reaches_the_receiver_with_the_flow_run_and_its_steps(
    admin: Any,
    agent: Any,
    receiver: Receiver,
    published: list[str],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    create_webhook(
        url=receiver.url, secret=SECRET, actor=None, events=["run.ended", "flow_run.ended"]
    )
    flow = make_flow(admin, "Hooked", step("clear"))
    with django_capture_on_commit_callbacks(execute=True):
        flow_run = run_flow(agent, flow, "PC-1")
    step_run = steps_of(flow_run)["clear"].run
    assert step_run is not None
    with django_capture_on_commit_callbacks(execute=True):
        end_run(step_run)
    with django_capture_on_commit_callbacks(execute=True):
        flow_engine.advance(flow_run.pk)

    step_event, flow_event = receiver.wait_for(2)
    assert json.loads(step_event.body)["run"]["id"] == step_run.pk  # the step's own run.ended
    assert verify(SECRET, flow_event.headers, flow_event.body)
    body = json.loads(flow_event.body)
    assert flow_event.headers["X-Portal-Event"] == body["event"] == "flow_run.ended"
    assert "run" not in body
    assert body["details"] == {"status": "succeeded", "steps": {"clear": "success"}}
    got = body["flow_run"]
    assert got["id"] == flow_run.pk
    assert got["url"] == f"https://portal.example.com/flows/runs/{flow_run.pk}/"
    assert got["flow"] == {"id": flow.pk, "name": "Hooked", "version": 1}
    assert (got["requester"], got["source"], got["status"]) == ("agent", "helpdesk", "succeeded")
    assert (got["target_count"], got["reason"]) == (1, "flow test")
    assert got["steps"] == [
        {
            "key": "clear",
            "name": "clear",
            "status": "success",
            "run": {"id": step_run.pk, "url": f"https://portal.example.com/runs/{step_run.pk}/"},
        }
    ]
    delivery = WebhookDelivery.objects.get(event="flow_run.ended")
    assert (delivery.flow_run_id, delivery.run_id) == (flow_run.pk, None)
    assert SECRET.encode() not in flow_event.body


@pytest.mark.django_db(transaction=True)
def test_two_advances_at_once_publish_the_flow_runs_end_once(
    admin: Any, agent: Any, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[int] = []
    lock = threading.Lock()

    def notify(subject_id: int, event: str, details: dict[str, Any]) -> None:
        if event == "flow_run.ended":
            with lock:
                ended.append(subject_id)

    monkeypatch.setattr(dispatch, "enqueue_notification", notify)
    monkeypatch.setattr(dispatch, "enqueue_flow_advance", lambda flow_run_id: None)
    flow_run = run_flow(agent, make_flow(admin, "Race end", step("clear")), "PC-1")
    end_run(steps_of(flow_run)["clear"].run)
    finished = [result.finished for result in advances_at_once(flow_run)]
    assert sorted(finished) == [False, False, False, True]
    assert ended == [flow_run.pk]
    assert FlowRun.objects.get(pk=flow_run.pk).end_published_at is not None
