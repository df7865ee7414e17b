"""Request helpers shared by the views."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from workflows_app.selectors.catalogue import MAX_QUERY_LENGTH


class HtmxHttpRequest(HttpRequest):
    """A request that went through django-htmx's middleware."""

    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """A request of a signed-in person: what every view behind `role_required` receives."""

    user: User


def search_query(request: HttpRequest) -> str:
    """The `q` search box: NUL bytes (which PostgreSQL refuses) dropped, trimmed, capped."""
    return request.GET.get("q", "").replace("\x00", "").strip()[:MAX_QUERY_LENGTH]
