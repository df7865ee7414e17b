"""Telling people and other tools what happened to a run: one event, published once, fanned out.

A service that changes a run calls `publish(run_id, Event.X)` inside its transaction. Once the
transaction commits, one message asks a worker to `deliver` it; delivery hands the event to each
channel (e-mail in services/emails.py, outgoing webhooks in services/webhooks.py), each of which
decides who is told and queues its own sends. Nothing here waits for a mail server or a
receiver: a slow or failing one never delays a run, and a channel that fails is logged without
stopping the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from django.db import transaction

from workflows_app.services import dispatch, escalation

logger = logging.getLogger(__name__)


class Event(StrEnum):
    """What happened to a run, as named in webhook payloads ("event") and e-mail choices."""

    CREATED = "run.created"
    AWAITING_APPROVAL = "run.awaiting_approval"
    APPROVED = "run.approved"
    REJECTED = "run.rejected"
    EXPIRED = "run.expired"
    SUBMITTED = "run.submitted"
    ENDED = "run.ended"
    HELP_REQUESTED = "run.help_requested"


Channel = Callable[[int, Event, Mapping[str, Any]], None]


def publish(run_id: int, event: Event, **details: Any) -> None:
    """Queue the event for delivery once the current transaction commits (at once outside one).

    `details` must be JSON-serialisable and hold no secret: it travels in a Celery message.
    """
    payload = dict(details)
    transaction.on_commit(lambda: dispatch.enqueue_notification(run_id, event.value, payload))


def channels() -> list[Channel]:
    """The channels an event goes to, in order (imported here: they import the models)."""
    return [escalation.on_run_event]


def deliver(run_id: int, event: str, details: Mapping[str, Any]) -> None:
    """Hand one published event to every channel; one channel failing never stops the others."""
    known = Event(event)
    for channel in channels():
        try:
            channel(run_id, known, details)
        except Exception:  # a channel's bug must not hide the event from the others
            logger.exception("Notification channel %s failed for run %s", channel, run_id)
