"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest

from workflows_app.roles import Role, user_role
from workflows_app.selectors.approvals import waiting_count
from workflows_app.time_zones import viewer_time_zone_name

# Which navigation entry a page belongs to, by URL namespace, then by (namespace, URL name):
# base.html marks that entry with aria-current="page".
NAV_SECTIONS = {
    "self_service": "self_service",
    "catalogue": "workflows",
    "runs": "runs",
    "console": "admin",
    "curation": "curation",
    "people": "people",
    "account": "account",
    "approvals": "approvals",
}
NAV_PAGES = {
    ("runs", "start"): "workflows",
    ("runs", "confirm"): "workflows",
    ("runs", "waiting"): "waiting",
    ("runs", "resume"): "waiting",
    ("console", "dashboard"): "dashboard",
    ("console", "audit"): "audit",
    ("console", "audit_export"): "audit",
    ("help", "list"): "help",
    ("help", "ask"): "self_service",
    ("account", "notifications"): "notifications",
}


def portal(request: HttpRequest) -> dict[str, object]:
    """Expose the current role and demo flag to templates."""
    role = user_role(request.user) if hasattr(request, "user") else None
    staff = role in (Role.HELPDESK, Role.ADMIN)
    return {
        # Called by the template only where the navigation shows it (a bounded read, no COUNT).
        "approvals_waiting": (lambda: waiting_count(request.user)) if staff else 0,
        "portal_role": role.value if role else None,
        "is_admin": role == Role.ADMIN,
        "is_helpdesk": role in (Role.HELPDESK, Role.ADMIN),
        "demo_mode": settings.DEMO_MODE,
        "sso_company": settings.OIDC_COMPANY_NAME if settings.OIDC_ENABLED else None,
        "access_contact": settings.PORTAL_ACCESS_CONTACT,
    }


def navigation(request: HttpRequest) -> dict[str, object]:
    """`nav_section`: the navigation entry of this page (None outside the portal's areas)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return {"nav_section": None}
    namespace = match.namespace
    section = NAV_PAGES.get((namespace, match.url_name or ""), NAV_SECTIONS.get(namespace))
    return {"nav_section": section}


def time_zone(request: HttpRequest) -> dict[str, object]:
    """`viewer_time_zone`: the name of the zone this page shows times in ("Europe/Zurich")."""
    return {"viewer_time_zone": viewer_time_zone_name()}
