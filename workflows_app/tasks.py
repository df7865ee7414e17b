"""Celery tasks: thin wrappers that take ids and call a service.

Services queue these through `services.dispatch`, by the names it defines; nothing but the
worker (and beat) needs to import this module.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task, shared_task
from django.contrib.auth import get_user_model

from workflows_app.services import (
    approvals,
    dashboard_counts,
    dispatch,
    emails,
    escalation,
    flow_engine,
    follow_up,
    notifications,
    retention,
    submission,
    sweeper,
    webhooks,
)
from workflows_app.services.catalogue_sync import sync_catalogue


@shared_task(bind=True, name=dispatch.SUBMIT_BATCH)
def submit_batch(self: Task, batch_id: int) -> None:
    """Send one batch to Nexthink; the task id is the claim, so a redelivery is recognised."""
    claim_id = self.request.id or f"direct-{uuid.uuid4()}"
    submission.send_batch(batch_id, claim_id=claim_id)


@shared_task(name=dispatch.SWEEP_BATCHES)
def sweep_batches() -> dict[str, list[int]]:
    """Beat: re-send lost messages of queued batches, give up on batches stuck sending."""
    result = sweeper.sweep()
    return {"requeued": result.requeued, "unknown": result.unknown, "repaired": result.repaired}


@shared_task(name=dispatch.SYNC_CATALOGUE)
def sync_catalogue_task(trigger: str = "schedule", requested_by_id: int | None = None) -> int:
    """Refresh the workflow catalogue from Nexthink (beat, or an admin's button)."""
    requested_by = None
    if requested_by_id is not None:
        requested_by = get_user_model().objects.filter(pk=requested_by_id).first()
    return sync_catalogue(trigger=trigger, requested_by=requested_by).pk


@shared_task(name=dispatch.FOLLOW_UP)
def follow_up_task() -> dict[str, Any]:
    """Beat: lease each batch whose next check is due (bounded per cycle), queue its check."""
    return {"leased": follow_up.fan_out()}


@shared_task(name=dispatch.CHECK_BATCH)
def check_batch_task(batch_id: int) -> dict[str, Any]:
    """Ask NQL about one leased batch's executions and record what it says."""
    result = follow_up.check_leased(batch_id)
    return {"checked": result.checked, "finished": result.finished, "problems": result.problems}


@shared_task(name=dispatch.RETENTION)
def retention_task() -> dict[str, Any]:
    """Beat: remove old final runs and old audit entries; continue at once if more is left."""
    result = retention.purge()
    if result.more:
        dispatch.enqueue_retention()
    return result.as_dict()


@shared_task(name=dispatch.RECOUNT_DASHBOARD)
def recount_dashboard_task() -> dict[str, Any]:
    """Beat: recount the dashboard's daily counts (recent days; the whole window hourly)."""
    done = dashboard_counts.recount()
    return {"first_day": done.first_day.isoformat(), "full": done.full, "seconds": done.seconds}


@shared_task(name=dispatch.ADVANCE_FLOW)
def advance_flow_task(flow_run_id: int) -> dict[str, Any]:
    """Advance one flow run: end, start or mark not started the steps that can move."""
    result = flow_engine.advance(flow_run_id)
    return {"ended": result.ended, "started": result.started, "finished": result.finished}


@shared_task(name=dispatch.SWEEP_FLOWS)
def sweep_flows_task() -> list[int]:
    """Beat: advance every flow run in progress (a lost message never loses a flow's place)."""
    return flow_engine.sweep()


@shared_task(name=dispatch.NOTIFY)
def notify_task(subject_id: int, event: str, details: dict[str, Any]) -> None:
    """Hand one run (or flow run) event to the notification channels (each queues its sends)."""
    notifications.deliver(subject_id, event, details)


@shared_task(name=dispatch.EXPIRE_APPROVALS)
def expire_approvals_task() -> list[int]:
    """Beat: end the requests for approval nobody answered in time; their approval ids."""
    return approvals.expire_due()


@shared_task(
    name=dispatch.HELP_EMAIL,
    autoretry_for=(escalation.MailUnavailable,),
    max_retries=escalation.MAIL_RETRIES,
    retry_backoff=30,
    retry_jitter=False,
)
def help_email_task(help_request_id: int) -> str:
    """E-mail the helpdesk one help request; a mail server that is down is tried again later."""
    return escalation.send_helpdesk_email(help_request_id)


@shared_task(name=dispatch.SEND_EMAIL)
def send_email_task(notice_id: int) -> None:
    """Send one e-mail; a failing mail server gets another message later (a few times)."""
    delay = emails.send(notice_id)
    if delay is not None:
        dispatch.enqueue_email(notice_id, countdown=delay)


@shared_task(name=dispatch.DELIVER_WEBHOOK)
def deliver_webhook_task(delivery_id: int) -> None:
    """POST one webhook delivery; a failing receiver gets another try later (backing off)."""
    delay = webhooks.attempt(delivery_id)
    if delay is not None:
        dispatch.enqueue_webhook_delivery(delivery_id, countdown=delay)
