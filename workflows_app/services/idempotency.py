"""`Idempotency-Key` for creating runs through the API: a retried create returns the first run.

Keys are per person, kept `API_IDEMPOTENCY_HOURS` (24), with the SHA-256 of the request body
as understood (canonical JSON), so the same key with another body is a conflict. The key row is
inserted in the same transaction as the run: a concurrent create with the same key waits on the
unique constraint, then finds the first run. A refused create stores no key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from workflows_app.models import FlowRun, IdempotencyKey, Run

MAX_KEY_LENGTH = IdempotencyKey._meta.get_field("key").max_length or 255


class KeyConflict(Exception):
    """The key was used before with another body; `made` is the run (or flow run) it made."""

    def __init__(self, made: Run | FlowRun) -> None:
        what = "run" if isinstance(made, Run) else "flow run"
        super().__init__(f"This Idempotency-Key was used for {what} {made.pk} with another body.")
        self.made = made


def body_hash(body: dict[str, Any]) -> str:
    """The SHA-256 of a request body as canonical JSON (key order and spacing do not matter)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def kept_since() -> Any:
    """The oldest creation time of a key still honoured."""
    return timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)


Made = TypeVar("Made", Run, FlowRun)


def create_once(
    *, user: User, key: str, body: dict[str, Any], create: Callable[[], Made]
) -> tuple[Made, bool]:
    """The run (or flow run) `create()` makes, or the one this key made before: (it, created).

    Raises KeyConflict when the key was used with another body; whatever `create` raises
    (nothing stored then).
    """
    digest = body_hash(body)
    found = _existing(user, key, digest)
    if found is not None:
        return found, False  # type: ignore[return-value]  # same body: the same kind
    IdempotencyKey.objects.filter(created_at__lt=kept_since()).delete()
    try:
        with transaction.atomic():
            # Claimed first: a concurrent create with this key waits here, not in create().
            claim = IdempotencyKey.objects.create(user=user, key=key, body_hash=digest)
            made = create()
            if isinstance(made, Run):
                claim.run = made
            else:
                claim.flow_run = made
            claim.save(update_fields=["run", "flow_run"])
    except IntegrityError:
        # Another request with this key committed first (the insert waited for it).
        found = _existing(user, key, digest)
        if found is None:
            raise
        return found, False  # type: ignore[return-value]
    return made, True


def _existing(user: User, key: str, digest: str) -> Run | FlowRun | None:
    row = (
        IdempotencyKey.objects.select_related("run", "flow_run")
        .filter(user=user, key=key, created_at__gte=kept_since())
        .first()
    )
    made = None if row is None else (row.run or row.flow_run)
    if row is None or made is None:
        return None
    if row.body_hash != digest:
        raise KeyConflict(made)
    return made
