"""The outgoing webhook channel: each run or flow run event, as signed JSON, to every webhook
that wants it.

The channel writes one WebhookDelivery per webhook (its body fixed once, so every attempt sends
the same bytes and the same delivery id) and queues a task; the task claims the delivery, writes
the attempt row, POSTs, records the answer, and backs off before another try when the receiver
failed for a while (5xx, 408, 425, 429, no answer). Nothing on a run's path waits for a receiver.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from workflows_app import links, webhook_client
from workflows_app.models import (
    DeliveryState,
    FlowRun,
    Run,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from workflows_app.selectors.flows import step_summaries
from workflows_app.selectors.webhooks import webhooks_wanting
from workflows_app.services import dispatch
from workflows_app.services.run_events import Event, FlowEvent
from workflows_app.services.secrets import SecretsUnreadable, decrypt_dict

logger = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
SECRET_KEY_NAME = "secret"  # the one key of the encrypted mapping (services/secrets.py)
# A message may arrive a little before next_attempt_at when clocks disagree between hosts.
CLOCK_TOLERANCE = timedelta(seconds=2)


def on_run_event(run_id: int, event: Event, details: Mapping[str, Any]) -> None:
    """Queue one delivery of this event to each enabled webhook that wants it (a channel)."""
    hooks = webhooks_wanting(event.value)
    if not hooks:
        return
    run = Run.objects.select_related("created_by").filter(pk=run_id).first()
    if run is None:
        return
    key = _dedupe_key([run_id, event.value, details])
    _queue(hooks, key, event.value, {"run": run_payload(run)}, details, run_id=run_id)


def on_flow_run_event(flow_run_id: int, event: FlowEvent, details: Mapping[str, Any]) -> None:
    """Queue one delivery of a flow run's event to each webhook that wants it (a channel)."""
    hooks = webhooks_wanting(event.value)
    if not hooks:
        return
    flow_run = (
        FlowRun.objects.select_related("created_by", "flow_version").filter(pk=flow_run_id).first()
    )
    if flow_run is None:
        return
    key = _dedupe_key(["flow_run", flow_run_id, event.value, details])
    subject = {"flow_run": flow_run_payload(flow_run)}
    _queue(hooks, key, event.value, subject, details, flow_run_id=flow_run_id)


def _dedupe_key(published: list[Any]) -> str:
    """Names one published event: the same event delivered again has the same key."""
    return hashlib.sha256(json.dumps(published, sort_keys=True, default=str).encode()).hexdigest()


def _queue(
    hooks: list[Webhook],
    key: str,
    event: str,
    subject: dict[str, Any],
    details: Mapping[str, Any],
    *,
    run_id: int | None = None,
    flow_run_id: int | None = None,
) -> None:
    """Write each webhook's delivery of the event (once per key) and send it after commit."""
    occurred_at = timezone.now()
    with transaction.atomic():
        for hook in hooks:
            delivery_id = uuid.uuid4()
            body = payload(delivery_id, event, occurred_at, subject, dict(details))
            delivery, made = WebhookDelivery.objects.get_or_create(
                webhook=hook,
                dedupe_key=key,
                defaults={
                    "uuid": delivery_id,
                    "event": event,
                    "run_id": run_id,
                    "flow_run_id": flow_run_id,
                    "body": body,
                },
            )
            if made:
                dispatch.enqueue_webhook_delivery_on_commit(delivery.pk)
                _keep_recent(hook.pk)


def send_test(hook: Webhook) -> WebhookDelivery:
    """Queue a test event to this webhook (enabled or not): the console's "Send a test event"."""
    delivery_id = uuid.uuid4()
    details = {"message": "A test event from the Workflows portal: this webhook works."}
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            webhook=hook,
            uuid=delivery_id,
            event=TEST_EVENT,
            run_id=None,
            dedupe_key=delivery_id.hex,
            body=payload(delivery_id, TEST_EVENT, timezone.now(), {"run": None}, details),
        )
        dispatch.enqueue_webhook_delivery_on_commit(delivery.pk)
        _keep_recent(hook.pk)
    return delivery


def payload(
    delivery_id: uuid.UUID,
    event: str,
    occurred_at: datetime,
    subject: dict[str, Any],
    details: dict[str, Any],
) -> str:
    """The JSON body of a delivery (docs/webhooks.md), as the exact text that is signed.

    `subject` is {"run": …} for a run's event (and the test event), {"flow_run": …} for a flow
    run's.
    """
    document = {
        "id": str(delivery_id),
        "event": event,
        "occurred_at": occurred_at.isoformat(),
        **subject,
        "details": details,
    }
    return json.dumps(document, separators=(",", ":"), default=str)


def run_payload(run: Run) -> dict[str, Any]:
    """What a receiver learns of a run: never a secret (its parameters are masked)."""
    return {
        "id": run.pk,
        "url": links.run_url(run.pk),
        "workflow": {"nql_id": run.workflow_nql_id, "name": run.workflow_name, "kind": run.kind},
        "requester": run.created_by.get_username(),
        "role": run.role,
        "source": run.source,
        "status": run.status,
        "target_count": run.target_count,
        "outcome_counts": run.outcome_counts or {},
        "reason": run.reason,
        "params": run.params or {},
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def flow_run_payload(flow_run: FlowRun) -> dict[str, Any]:
    """What a receiver learns of a flow run: its flow, requester, status and each step's run
    (never a parameter value: those are each step run's own)."""
    version = flow_run.flow_version
    return {
        "id": flow_run.pk,
        "url": links.flow_run_url(flow_run.pk),
        "flow": {"id": flow_run.flow_id, "name": version.name, "version": version.number},
        "requester": flow_run.created_by.get_username(),
        "role": flow_run.role,
        "source": flow_run.source,
        "status": flow_run.status,
        "target_count": flow_run.target_count,
        "reason": flow_run.reason,
        "stop_reason": flow_run.stop_reason,
        "steps": [
            {
                "key": step.key,
                "name": step.name,
                "status": step.status,
                "run": {"id": step.run_id, "url": links.run_url(step.run_id)}
                if step.run_id is not None
                else None,
            }
            for step in step_summaries(flow_run)
        ],
        "created_at": flow_run.created_at.isoformat(),
        "finished_at": flow_run.finished_at.isoformat() if flow_run.finished_at else None,
    }


def _keep_recent(webhook_id: int) -> None:
    """Remove the webhook's deliveries beyond the newest WEBHOOK_LOG_KEEP (its log)."""
    keep = settings.WEBHOOK_LOG_KEEP
    older = (
        WebhookDelivery.objects.filter(webhook_id=webhook_id)
        .order_by("-id")
        .values_list("id", flat=True)[keep : keep + 1]
    )
    for cut in older:
        WebhookDelivery.objects.filter(webhook_id=webhook_id, id__lte=cut).delete()


def attempt(delivery_id: int) -> float | None:
    """Make one attempt of a due delivery; the seconds before the next one, or None when done.

    A delivery left `sending` longer than a call can take lost its worker mid-call: it is
    claimed again (the receiver may see its id twice, as docs/webhooks.md warns). A message
    that comes too early (a delivery not yet due, or still being sent) asks to come back later.
    """
    now = timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_TOLERANCE)
    abandoned = Q(state=DeliveryState.SENDING, claimed_at__lt=now - _call_limit())
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .filter((Q(state=DeliveryState.PENDING) & due) | abandoned)
        .update(state=DeliveryState.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    )
    if not claimed:
        return _come_back_in(delivery_id, now)
    WebhookAttempt.objects.filter(delivery_id=delivery_id, finished_at__isnull=True).update(
        finished_at=now, error="No answer recorded: the worker stopped during the call."
    )
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None:
        return None  # its webhook was removed meanwhile
    hook = delivery.webhook
    row = WebhookAttempt.objects.create(delivery=delivery, number=delivery.attempts)
    status_code, excerpt, error, temporary = _post(delivery, hook)
    finished = timezone.now()
    WebhookAttempt.objects.filter(pk=row.pk).update(
        finished_at=finished,
        status_code=status_code,
        response_excerpt=excerpt,
        error=error[:500],
    )
    return _after_attempt(delivery, finished, delivered=not error, temporary=temporary, error=error)


def _call_limit() -> timedelta:
    """The longest a POST can take (beyond it, a `sending` delivery lost its worker)."""
    seconds = settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_READ_TIMEOUT + 10
    return timedelta(seconds=seconds)


def _come_back_in(delivery_id: int, now: datetime) -> float | None:
    """Seconds until an unclaimed delivery may be tried; None when it is done or gone."""
    row = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .values_list("state", "next_attempt_at", "claimed_at")
        .first()
    )
    if row is None:
        return None  # removed with its webhook, or beyond the log's length
    state, next_attempt_at, claimed_at = row
    if state == DeliveryState.PENDING and next_attempt_at is not None:
        when = next_attempt_at
    elif state == DeliveryState.SENDING and claimed_at is not None:
        when = claimed_at + _call_limit()
    else:
        return None  # delivered or failed
    return max((when - now).total_seconds(), 1.0)


def _post(delivery: WebhookDelivery, hook: Webhook) -> tuple[int | None, str, str, bool]:
    """POST the delivery: (status code, answer excerpt, error or "", whether to try again)."""
    if not hook.enabled and delivery.event != TEST_EVENT:
        return None, "", "The webhook was disabled before this attempt: not sent.", False
    try:
        secret = decrypt_dict(hook.secret)[SECRET_KEY_NAME]
    except (SecretsUnreadable, KeyError):
        return (
            None,
            "",
            "The webhook's secret cannot be read (SECRET_KEY changed?): set it again.",
            False,
        )
    try:
        answer = webhook_client.post(
            hook.url,
            delivery.body.encode("utf-8"),
            secret=secret,
            event=delivery.event,
            delivery_id=str(delivery.uuid),
            timestamp=int(timezone.now().timestamp()),
            connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT,
            read_timeout=settings.WEBHOOK_READ_TIMEOUT,
        )
    except webhook_client.DeliveryError as exc:
        return None, "", exc.message, True
    error = "" if answer.ok else f"The receiver answered {answer.status_code}."
    return answer.status_code, answer.excerpt, error, answer.temporary


def _after_attempt(
    delivery: WebhookDelivery, now: datetime, *, delivered: bool, temporary: bool, error: str
) -> float | None:
    """Record where the delivery stands after an attempt; the wait before the next, if any."""
    which = f"Webhook {delivery.webhook_id} delivery {delivery.uuid} ({delivery.event})"
    if delivered:
        logger.info("%s delivered (attempt %s)", which, delivery.attempts)
        state, delay = DeliveryState.DELIVERED, None
    elif temporary and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = settings.WEBHOOK_RETRY_SECONDS * 2 ** (delivery.attempts - 1)
        logger.warning(
            "%s attempt %s failed, next in %.0f s: %s", which, delivery.attempts, delay, error
        )
        state = DeliveryState.PENDING
    else:
        logger.warning("%s failed after %s attempt(s): %s", which, delivery.attempts, error)
        state, delay = DeliveryState.FAILED, None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=state,
        next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None,
        finished_at=None if state == DeliveryState.PENDING else now,
    )
    return delay
