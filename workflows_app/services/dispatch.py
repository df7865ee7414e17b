"""The one way to queue background work: messages to Celery tasks, named, carrying ids only.

Services queue work through these functions and never import the tasks module, which imports
the services; the tasks are found by name (`workflows_app.tasks` registers them under these
names). Queue from inside a transaction with the `*_on_commit` variants, so a worker never
picks up a message for rows it cannot see yet.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

SUBMIT_BATCH = "workflows_app.tasks.submit_batch"
SWEEP_BATCHES = "workflows_app.tasks.sweep_batches"
SYNC_CATALOGUE = "workflows_app.tasks.sync_catalogue_task"
FOLLOW_UP = "workflows_app.tasks.follow_up_task"
RETENTION = "workflows_app.tasks.retention_task"
RECOUNT_DASHBOARD = "workflows_app.tasks.recount_dashboard_task"
ADVANCE_FLOW = "workflows_app.tasks.advance_flow_task"
SWEEP_FLOWS = "workflows_app.tasks.sweep_flows_task"


def enqueue_batch(batch_id: int, *, countdown: float | None = None) -> None:
    """Send a message asking a worker to submit this batch (after `countdown` seconds)."""
    current_app.send_task(SUBMIT_BATCH, args=(batch_id,), countdown=countdown)


def enqueue_batch_on_commit(batch_id: int, *, countdown: float | None = None) -> None:
    """Queue the batch once the current transaction commits (at once outside a transaction)."""
    # Looked up when the transaction commits, so that tests can replace enqueue_batch.
    transaction.on_commit(lambda: enqueue_batch(batch_id, countdown=countdown))


def enqueue_catalogue_sync(*, trigger: str, requested_by_id: int | None = None) -> None:
    """Ask a worker to refresh the catalogue from Nexthink now."""
    current_app.send_task(
        SYNC_CATALOGUE, kwargs={"trigger": trigger, "requested_by_id": requested_by_id}
    )


def enqueue_retention() -> None:
    """Ask a worker for another retention pass (the last one stopped at its time budget)."""
    current_app.send_task(RETENTION)


def enqueue_flow_advance(flow_run_id: int) -> None:
    """Ask a worker to advance a flow run (one of its steps' runs just became final)."""
    current_app.send_task(ADVANCE_FLOW, args=(flow_run_id,))


def enqueue_flow_advance_on_commit(flow_run_id: int) -> None:
    """Queue the flow run's advance once the current transaction commits."""
    transaction.on_commit(lambda: enqueue_flow_advance(flow_run_id))
