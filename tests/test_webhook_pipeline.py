"""A webhook receiver that hangs never delays a run: a real worker, beat and the simulator."""

from __future__ import annotations

import threading
from typing import Any

from tests.celery_fixtures import BeatProcess, WorkerProcess, wait_until
from tests.notify_support import Receiver
from workflows_app.models import (
    DeliveryState,
    EmailNotice,
    EmailState,
    Run,
    RunStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from workflows_app.roles import Role
from workflows_app.services.runs import create_run
from workflows_app.services.webhook_admin import create_webhook
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

SECRET = "pipeline-webhook-secret-0123456789"


def test_a_hanging_receiver_never_delays_the_run_which_ends_and_mails_meanwhile(
    celery_worker: WorkerProcess,
    celery_beat: BeatProcess,
    receiver: Receiver,
    role_user: Any,
    sim_workflow: Any,
) -> None:
    receiver.hang = threading.Event()
    hook = create_webhook(url=receiver.url, secret=SECRET, events=["run.submitted"], actor=None)
    run = create_run(
        user=role_user("agent", Role.HELPDESK),
        workflow=sim_workflow("#clear_teams_cache"),
        targets=[
            Wanted(TargetKind.DEVICE_NAME, "EMP-LT-0142", 1),  # the simulator: succeeds
            Wanted(TargetKind.DEVICE_NAME, "FAIL-LT-0001", 2),  # the simulator: fails
        ],
        params={},
        reason="webhook pipeline test",
        source=Run.Source.HELPDESK,
    )
    receiver.wait_for(1, timeout=30)  # a worker process now waits for the receiver's answer
    wait_until(
        lambda: Run.objects.get(pk=run.pk).is_final,
        timeout=30,
        what="the run to end while the receiver hangs",
        explain=celery_worker.log_tail,
    )
    (pending,) = WebhookAttempt.objects.filter(delivery__webhook=hook)
    assert pending.finished_at is None and not receiver.hang.is_set()  # still unanswered
    assert Run.objects.get(pk=run.pk).status == RunStatus.PARTIAL
    wait_until(
        lambda: EmailNotice.objects.filter(run=run, event="run.ended", state=EmailState.SENT),
        timeout=30,
        what="the requester's mail about the run's end",
        explain=celery_worker.log_tail,
    )

    receiver.hang.set()
    wait_until(
        lambda: WebhookDelivery.objects.filter(webhook=hook, state=DeliveryState.DELIVERED),
        timeout=30,
        what="the delivery once the receiver answers",
        explain=celery_worker.log_tail,
    )
    assert SECRET not in celery_worker.log_tail(lines=100_000)
