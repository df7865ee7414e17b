"""The events of runs and flow runs that people and tools hear of (services/notifications.py).

Its own module so that the channels (services/emails.py, services/webhooks.py) can name an
event without importing the module that lists them.
"""

from __future__ import annotations

from enum import StrEnum


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


class FlowEvent(StrEnum):
    """What happened to a flow run as a whole (its steps are runs with events of their own)."""

    CREATED = "flow_run.created"
    AWAITING_APPROVAL = "flow_run.awaiting_approval"
    APPROVED = "flow_run.approved"
    REJECTED = "flow_run.rejected"
    EXPIRED = "flow_run.expired"
    ENDED = "flow_run.ended"


def flow_event_or_none(name: str) -> FlowEvent | None:
    """The flow run event named `name`; None when it names a run's event."""
    return FlowEvent(name) if name in FlowEvent._value2member_map_ else None


# Every event name a webhook may choose (services/webhook_admin.py), runs' first.
EVENT_NAMES = [event.value for event in Event] + [event.value for event in FlowEvent]
