"""The events of a run that people and tools are told about (services/notifications.py).

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
