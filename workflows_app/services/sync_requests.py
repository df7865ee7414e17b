"""An admin's "Sync now", remembered in their session until a worker has started that sync.

The button only queues a task: the sync's row is written by the worker when it starts, so for a
moment the console has nothing to show. The session remembers the newest sync row that existed
when the button was pressed (ids, not clocks: the worker may run on another host); the console
keeps polling until a newer one exists and has ended, or until START_WAIT_SECONDS have passed
(no worker took it: the console then says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.sessions.backends.base import SessionBase

SESSION_KEY = "console:sync_requested"
START_WAIT_SECONDS = 120


@dataclass(frozen=True)
class SyncRequest:
    """A sync asked for: it is the first sync row newer than `after_id`."""

    after_id: int
    requested_at: float  # time.time() of the web process

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.requested_at > START_WAIT_SECONDS


def remember(session: SessionBase, *, after_id: int) -> None:
    """Note that this person asked for a sync while `after_id` was the newest sync row."""
    session[SESSION_KEY] = {"after_id": after_id, "at": time.time()}


def requested(session: SessionBase) -> SyncRequest | None:
    """The sync this person asked for, if any (a broken value counts as none)."""
    value = session.get(SESSION_KEY)
    if not isinstance(value, dict):
        return None
    after_id, at = value.get("after_id"), value.get("at")
    if not isinstance(after_id, int) or not isinstance(at, int | float):
        return None
    return SyncRequest(after_id=after_id, requested_at=float(at))


def forget(session: SessionBase) -> None:
    session.pop(SESSION_KEY, None)
