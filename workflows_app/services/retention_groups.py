"""The time-budgeted loop retention passes share: rows in id order, a group at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet


def in_groups(
    candidates: QuerySet[Any],
    *,
    size: int,
    deadline: float,
    remove: Callable[[list[int]], bool],
) -> bool:
    """Hand `remove` the candidates' ids, `size` at a time in id order, until none are left.

    `remove` locks and checks its group again itself, and returns False when it ran out of time.
    Returns True when the deadline (a time.monotonic() value) came first: more are left.
    """
    last_id = 0
    while True:
        group = list(
            candidates.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:size]
        )
        if not group:
            return False
        if time.monotonic() >= deadline:
            return True
        last_id = group[-1]
        if not remove(group):
            return True
