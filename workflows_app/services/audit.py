"""Writing the audit log: one append-only row per thing a person did (models/audit.py).

Callers pass what happened in words (`summary`) and as data (`details`); secret values never
reach either (pass masked parameters). The address is the request's REMOTE_ADDR: behind a
proxy, the proxy must set it (gunicorn's `--forwarded-allow-ips`), never a header a client sends.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.http import HttpRequest

from workflows_app.models import AuditAction, AuditEvent

MAX_SUMMARY = 500


def record(
    action: AuditAction,
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    summary: str,
    obj: models.Model | None = None,
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    actor_name: str = "",
) -> AuditEvent:
    """Append one event. `actor_name` names someone without an account (a failed sign-in)."""
    person = actor if actor is not None and actor.is_authenticated else None
    name = person.get_username() if person is not None else actor_name
    return AuditEvent.objects.create(
        actor_id=person.pk if person is not None else None,
        # NUL is the one character PostgreSQL text refuses; typed names may hold anything.
        actor_name=name.replace("\x00", "")[:150],
        action=action,
        object_type=obj._meta.model_name or "" if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary.replace("\x00", "")[:MAX_SUMMARY],
        details=_without_nul(details or {}),
        ip_address=ip,
    )


def _without_nul(value: Any) -> Any:
    """The details with NUL removed from every string (jsonb refuses \\u0000 too)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def client_address(request: HttpRequest | None) -> str | None:
    """The address the request came from, as the server saw it (None outside a request)."""
    if request is None:
        return None
    address = str(request.META.get("REMOTE_ADDR") or "").strip()
    return address or None
