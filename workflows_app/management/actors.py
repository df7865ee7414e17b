"""Who a command acts as (`--user`), for the audit log."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError


def actor_named(username: str | None) -> User | None:
    """The account named by `--user`; None without one; CommandError for a name nobody has."""
    if not username:
        return None
    actor = get_user_model().objects.filter(username=username).first()
    if actor is None:
        raise CommandError(f"No user named {username!r}.")
    return actor
