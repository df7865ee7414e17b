"""A person's e-mail choices (services/emails.py reads them): read with defaults, change audited."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from workflows_app.models import AuditAction, NotificationPreference
from workflows_app.services import audit

CHOICES = ("runs_ended", "approvals_waiting")


def preferences_of(user: User) -> NotificationPreference:
    """The person's choices; an unsaved row with everything on when they never chose."""
    found = NotificationPreference.objects.filter(user=user).first()
    return found if found is not None else NotificationPreference(user=user)


def save_preferences(
    user: User, *, runs_ended: bool, approvals_waiting: bool, ip: str | None = None
) -> NotificationPreference:
    """Store the person's choices; the audit log says what changed (nothing: no entry)."""
    wanted = {"runs_ended": runs_ended, "approvals_waiting": approvals_waiting}
    with transaction.atomic():
        current = NotificationPreference.objects.select_for_update().filter(user=user).first()
        before = {name: getattr(current, name) if current else True for name in CHOICES}
        if current is None:
            current = NotificationPreference(user=user)
        for name, value in wanted.items():
            setattr(current, name, value)
        current.save()
        changed = {name: value for name, value in wanted.items() if before[name] != value}
        if changed:
            words = ", ".join(f"{name} {'on' if on else 'off'}" for name, on in changed.items())
            audit.record(
                AuditAction.NOTIFICATIONS_CHANGED,
                actor=user,
                summary=f"E-mail notifications changed: {words}",
                obj=current,
                details={"before": before, "after": wanted},
                ip=ip,
            )
    return current
