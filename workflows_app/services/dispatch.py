"""The one way to queue background work: messages to Celery tasks, named, carrying ids only.

Services queue work through these functions and never import the tasks module, which imports
the services; the tasks are found by name (`workflows_app.tasks` registers them under these
names). Queue from inside a transaction with the `*_on_commit` variants, so a worker never
picks up a message for rows it cannot see yet.

Messages carry a priority, which the Redis broker serves lowest number first (kombu keeps one
list per step of 0, 3, 6, 9 and a worker pops them in that order; prefetch is one message, so
it never holds a low one while a high one waits): a person waiting for a fix (INTERACTIVE) goes
before the batches of a bulk run and the follow-up checks (BULK, in the order queued), which go
before sweeps and syncs (BACKGROUND: every other message, beat's by the options of
CELERY_BEAT_SCHEDULE). Beat's follow-up cycle only leases and queues checks, so it is sent
INTERACTIVE (settings): it would otherwise expire behind a bulk run's batches. A click never
waits behind queued batches or beat's work, only for a worker to finish the message it has.
Priorities are given per message, not by CELERY_TASK_ROUTES: a route that names no queue makes
Celery send to the default queue it saw first, not the one configured now.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

SUBMIT_BATCH = "workflows_app.tasks.submit_batch"
SWEEP_BATCHES = "workflows_app.tasks.sweep_batches"
SYNC_CATALOGUE = "workflows_app.tasks.sync_catalogue_task"
FOLLOW_UP = "workflows_app.tasks.follow_up_task"
CHECK_BATCH = "workflows_app.tasks.check_batch_task"
RETENTION = "workflows_app.tasks.retention_task"
RECOUNT_DASHBOARD = "workflows_app.tasks.recount_dashboard_task"
ADVANCE_FLOW = "workflows_app.tasks.advance_flow_task"
SWEEP_FLOWS = "workflows_app.tasks.sweep_flows_task"
NOTIFY = "workflows_app.tasks.notify_task"
EXPIRE_APPROVALS = "workflows_app.tasks.expire_approvals_task"
HELP_EMAIL = "workflows_app.tasks.help_email_task"
SEND_EMAIL = "workflows_app.tasks.send_email_task"
DELIVER_WEBHOOK = "workflows_app.tasks.deliver_webhook_task"

INTERACTIVE = 0
BULK = 3
BACKGROUND = 6  # what the settings give beat's messages
# A run this small has someone waiting for it (a self-service click, a helpdesk agent's fix for
# one caller): its first message goes before bulk batches.
INTERACTIVE_TARGETS = 10


def batch_priority(target_count: int) -> int:
    """The priority of a new batch's message: INTERACTIVE for a small run, else BULK."""
    return INTERACTIVE if target_count <= INTERACTIVE_TARGETS else BULK


def enqueue_batch(batch_id: int, *, countdown: float | None = None, priority: int = BULK) -> None:
    """Send a message asking a worker to submit this batch (after `countdown` seconds)."""
    current_app.send_task(SUBMIT_BATCH, args=(batch_id,), countdown=countdown, priority=priority)


def enqueue_batch_on_commit(
    batch_id: int, *, countdown: float | None = None, priority: int = BULK
) -> None:
    """Queue the batch once the current transaction commits (at once outside a transaction)."""
    # Looked up when the transaction commits, so that tests can replace enqueue_batch.
    transaction.on_commit(lambda: enqueue_batch(batch_id, countdown=countdown, priority=priority))


def enqueue_check(batch_id: int) -> None:
    """Ask a worker to check one leased batch's executions through NQL.

    At BULK priority, in the order queued with bulk batches: ahead of sweeps and syncs, never
    ahead of a click.
    """
    current_app.send_task(CHECK_BATCH, args=(batch_id,), priority=BULK)


def enqueue_catalogue_sync(*, trigger: str, requested_by_id: int | None = None) -> None:
    """Ask a worker to refresh the catalogue from Nexthink now."""
    current_app.send_task(
        SYNC_CATALOGUE,
        kwargs={"trigger": trigger, "requested_by_id": requested_by_id},
        priority=BACKGROUND,
    )


def enqueue_retention() -> None:
    """Ask a worker for another retention pass (the last one stopped at its time budget)."""
    current_app.send_task(RETENTION, priority=BACKGROUND)


def enqueue_flow_advance(flow_run_id: int) -> None:
    """Ask a worker to advance a flow run (one of its steps' runs just became final).

    INTERACTIVE: a short step that starts the next ones, which someone is watching; it must
    not wait behind a bulk run's batches.
    """
    current_app.send_task(ADVANCE_FLOW, args=(flow_run_id,), priority=INTERACTIVE)


def enqueue_flow_advance_on_commit(flow_run_id: int) -> None:
    """Queue the flow run's advance once the current transaction commits."""
    transaction.on_commit(lambda: enqueue_flow_advance(flow_run_id))


def enqueue_notification(subject_id: int, event: str, details: dict[str, object]) -> None:
    """Ask a worker to tell people and tools about a run's or flow run's event (the event's
    name says which: services/notifications.py).

    BULK: behind a click, in the order queued with batches, ahead of sweeps and syncs.
    """
    current_app.send_task(NOTIFY, args=(subject_id, event, details), priority=BULK)


def enqueue_help_email(help_request_id: int) -> None:
    """Ask a worker to e-mail the helpdesk an employee's help request (services/escalation.py).

    INTERACTIVE: someone whose fix did not work waits for the helpdesk to call back.
    """
    current_app.send_task(HELP_EMAIL, args=(help_request_id,), priority=INTERACTIVE)


def enqueue_email(notice_id: int, *, countdown: float | None = None) -> None:
    """Ask a worker to send one e-mail (services/emails.py), after `countdown` seconds.

    BULK: an approver may be waiting for it; never ahead of a click.
    """
    current_app.send_task(SEND_EMAIL, args=(notice_id,), countdown=countdown, priority=BULK)


def enqueue_email_on_commit(notice_id: int) -> None:
    """Queue the e-mail once the current transaction commits."""
    transaction.on_commit(lambda: enqueue_email(notice_id))


def enqueue_webhook_delivery(delivery_id: int, *, countdown: float | None = None) -> None:
    """Ask a worker to POST one webhook delivery (services/webhooks.py), after `countdown` s.

    BACKGROUND: a receiver is never waited for by a person or a run; behind every batch.
    """
    current_app.send_task(
        DELIVER_WEBHOOK, args=(delivery_id,), countdown=countdown, priority=BACKGROUND
    )


def enqueue_webhook_delivery_on_commit(delivery_id: int) -> None:
    """Queue the delivery once the current transaction commits."""
    transaction.on_commit(lambda: enqueue_webhook_delivery(delivery_id))
