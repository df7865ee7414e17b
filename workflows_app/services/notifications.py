"""Telling people and other tools what happened to a run or a flow run: one event, published once,
fanned out.

A service that changes a run calls `publish(run_id, Event.X)` inside its transaction (a flow run:
`publish_flow_run(flow_run_id, FlowEvent.X)`). Once the transaction commits, one message asks a
worker to `deliver` it; the event's name says whether the id is a run's or a flow run's ("run.…",
"flow_run.…"), so both travel in the same message to the same task. Delivery hands the event to
each channel (e-mail in services/emails.py, outgoing webhooks in services/webhooks.py, the
helpdesk's mail in services/escalation.py), each of which decides who is told and queues its own
sends. Nothing here waits for a mail server or a receiver: a slow or failing one never delays a
run, and a channel that fails is logged without stopping the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from django.db import transaction

from workflows_app.services import dispatch, emails, escalation, webhooks
from workflows_app.services.run_events import Event, FlowEvent, flow_event_or_none

__all__ = [
    "Channel",
    "Event",
    "FlowEvent",
    "FlowRunChannel",
    "channels",
    "deliver",
    "flow_run_channels",
    "publish",
    "publish_flow_run",
]

logger = logging.getLogger(__name__)


Channel = Callable[[int, Event, Mapping[str, Any]], None]
FlowRunChannel = Callable[[int, FlowEvent, Mapping[str, Any]], None]


def publish(run_id: int, event: Event, **details: Any) -> None:
    """Queue the event for delivery once the current transaction commits (at once outside one).

    `details` must be JSON-serialisable and hold no secret: it travels in a Celery message.
    """
    _enqueue_on_commit(run_id, event.value, details)


def publish_flow_run(flow_run_id: int, event: FlowEvent, **details: Any) -> None:
    """`publish` for an event of a flow run as a whole (the same message, the same task)."""
    _enqueue_on_commit(flow_run_id, event.value, details)


def _enqueue_on_commit(subject_id: int, event: str, details: Mapping[str, Any]) -> None:
    payload = dict(details)
    transaction.on_commit(lambda: dispatch.enqueue_notification(subject_id, event, payload))


def channels() -> list[Channel]:
    """The channels a run's event goes to, in order."""
    return [emails.on_run_event, webhooks.on_run_event, escalation.on_run_event]


def flow_run_channels() -> list[FlowRunChannel]:
    """The channels a flow run's event goes to, in order (no help request is about a flow run)."""
    return [emails.on_flow_run_event, webhooks.on_flow_run_event]


def deliver(subject_id: int, event: str, details: Mapping[str, Any]) -> None:
    """Hand one published event to every channel; one channel failing never stops the others.

    `subject_id` is a flow run's id for a flow run's event ("flow_run.…"), else a run's.
    """
    flow_event = flow_event_or_none(event)
    calls: list[partial[None]]
    if flow_event is not None:
        calls = [partial(c, subject_id, flow_event, details) for c in flow_run_channels()]
        what = f"flow run {subject_id}"
    else:
        calls = [partial(c, subject_id, Event(event), details) for c in channels()]
        what = f"run {subject_id}"
    for call in calls:
        try:
            call()
        except Exception:  # a channel's bug must not hide the event from the others
            logger.exception("Notification channel %s failed for %s", call.func, what)
