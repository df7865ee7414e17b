"""Portal roles (Django groups) and the server-side checks every view uses."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase


class Role(StrEnum):
    """The three roles; the value is the Django group name."""

    EMPLOYEE = "Employee"
    HELPDESK = "Helpdesk"
    ADMIN = "Admin"


# Highest first: a person in several groups acts with the strongest role.
ROLE_ORDER = (Role.ADMIN, Role.HELPDESK, Role.EMPLOYEE)


def user_role(user: User | AnonymousUser) -> Role | None:
    """Return the strongest role of a signed-in user, or None."""
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return Role.ADMIN
    # Only this function sets the cache, and only to a Role or None.
    cached = getattr(user, "_portal_role", False)
    if cached is None or isinstance(cached, Role):
        return cached
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in ROLE_ORDER if r.value in names), None)
    # A per-request cache on the user object, which has no such field to declare it on.
    user._portal_role = role  # type: ignore[attr-defined]
    return role


def has_role(user: User | AnonymousUser, *roles: Role) -> bool:
    """True when the user's strongest role is one of `roles`."""
    return user_role(user) in roles


# HttpResponseBase: streamed answers (CSV exports) go through the same checks.
ViewFunc = Callable[..., HttpResponseBase]


def role_required(*roles: Role) -> Callable[[ViewFunc], ViewFunc]:
    """Decorate a view: anonymous users go to login, other roles get 403."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not has_role(request.user, *roles):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorator
