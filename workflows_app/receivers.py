"""Auditing sign-ins, failed sign-ins and sign-outs (Django's auth signals; apps.py connects them).

A failed sign-in is recorded with the username that was tried, never the password: only the
`username` key of the credentials is read (Django has already masked the password there).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from workflows_app.models import AuditAction
from workflows_app.services import audit

MAX_USERNAME = 150


def tried_username(credentials: dict[str, Any] | None) -> str:
    """The username a sign-in tried, as stored: no NUL (PostgreSQL refuses it), 150 characters."""
    tried = (credentials or {}).get("username")
    return str(tried if tried is not None else "").replace("\x00", "").strip()[:MAX_USERNAME]


def throttling_username(
    request: HttpRequest | None, credentials: dict[str, Any] | None
) -> str | None:
    """django-axes' AXES_USERNAME_CALLABLE: the same cleaned username (None when there is none,
    as at the SSO callback), from the form if need be."""
    if credentials is None and request is not None:
        credentials = {"username": request.POST.get("username")}
    return tried_username(credentials) or None


def lockout_parameters(request_or_attempt: Any, credentials: dict[str, Any] | None) -> list[str]:
    """django-axes' AXES_LOCKOUT_PARAMETERS: per username and per address; per address only
    without a username, else every SSO callback failure anywhere would add up to one lock-out."""
    if isinstance(request_or_attempt, HttpRequest):
        username = throttling_username(request_or_attempt, credentials)
    else:  # an AccessAttempt being looked at
        username = getattr(request_or_attempt, "username", None)
    return ["username", "ip_address"] if username else ["ip_address"]


def signed_in(
    sender: Any, *, request: HttpRequest | None = None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    """Record a successful sign-in."""
    audit.record(
        AuditAction.SIGNED_IN,
        actor=user,
        summary=f"{user.get_username()} signed in",
        ip=audit.client_address(request),
    )


def sign_in_failed(
    sender: Any,
    *,
    credentials: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    **kwargs: Any,
) -> None:
    """Record a refused sign-in with the username that was tried.

    One entry per attempt, throttled ones included (django-axes marks the request
    `axes_locked_out` when it refused without checking the password).
    """
    username = tried_username(credentials)
    throttled = bool(getattr(request, "axes_locked_out", False))
    summary = f"Sign-in refused for {username!r}" if username else "Sign-in refused"
    audit.record(
        AuditAction.SIGN_IN_FAILED,
        actor=None,
        actor_name=username,
        summary=summary + (" (too many attempts)" if throttled else ""),
        details={"username": username, **({"throttled": True} if throttled else {})},
        ip=audit.client_address(request),
    )


def signed_out(
    sender: Any,
    *,
    request: HttpRequest | None = None,
    user: AbstractBaseUser | None = None,
    **kwargs: Any,
) -> None:
    """Record a sign-out (nothing when nobody was signed in)."""
    if user is None or not user.is_authenticated:
        return
    audit.record(
        AuditAction.SIGNED_OUT,
        actor=user,
        summary=f"{user.get_username()} signed out",
        ip=audit.client_address(request),
    )
