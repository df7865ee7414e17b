"""Writing a run's timeline: what happened to it and when, as its page shows it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from workflows_app.models import RunEvent, RunEventKind


def note(
    run_id: int,
    kind: RunEventKind,
    message: str = "",
    *,
    batch_number: int | None = None,
    actor: AbstractBaseUser | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the run's timeline (in the caller's transaction, if any)."""
    RunEvent.objects.create(
        run_id=run_id,
        kind=kind,
        message=message,
        batch_number=batch_number,
        actor_id=actor.pk if actor is not None else None,
        details=details or {},
    )
