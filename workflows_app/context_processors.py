"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest

from workflows_app.roles import Role, user_role


def portal(request: HttpRequest) -> dict[str, object]:
    """Expose the current role and demo flag to templates."""
    role = user_role(request.user) if hasattr(request, "user") else None
    return {
        "portal_role": role.value if role else None,
        "is_admin": role == Role.ADMIN,
        "is_helpdesk": role in (Role.HELPDESK, Role.ADMIN),
        "demo_mode": settings.DEMO_MODE,
    }
