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
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from workflows_app.models import IdempotencyKey, Run

MAX_KEY_LENGTH = IdempotencyKey._meta.get_field("key").max_length or 255


class KeyConflict(Exception):
    """The key was used before with another body; `run` is the run it made."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"This Idempotency-Key was used for run {run.pk} with another body.")
        self.run = run


def body_hash(body: dict[str, Any]) -> str:
    """The SHA-256 of a request body as canonical JSON (key order and spacing do not matter)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def kept_since() -> Any:
    """The oldest creation time of a key still honoured."""
    return timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)


def create_once(
    *, user: User, key: str, body: dict[str, Any], create: Callable[[], Run]
) -> tuple[Run, bool]:
    """The run `create()` makes, or the one this key made before: (run, created now).

    Raises KeyConflict when the key was used with another body; whatever `create` raises
    (nothing stored then).
    """
    digest = body_hash(body)
    found = _existing(user, key, digest)
    if found is not None:
        return found, False
    IdempotencyKey.objects.filter(created_at__lt=kept_since()).delete()
    try:
        with transaction.atomic():
            # Claimed first: a concurrent create with this key waits here, not in create().
            claim = IdempotencyKey.objects.create(user=user, key=key, body_hash=digest)
            run = create()
            claim.run = run
            claim.save(update_fields=["run"])
    except IntegrityError:
        # Another request with this key committed first (the insert waited for it).
        found = _existing(user, key, digest)
        if found is None:
            raise
        return found, False
    return run, True


def _existing(user: User, key: str, digest: str) -> Run | None:
    row = (
        IdempotencyKey.objects.select_related("run")
        .filter(user=user, key=key, created_at__gte=kept_since())
        .first()
    )
    if row is None or row.run is None:
        return None
    if row.body_hash != digest:
        raise KeyConflict(row.run)
    return row.run
