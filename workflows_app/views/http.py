"""Request helpers shared by the views."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.urls import reverse
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


_PK_MARK = 2_147_483_647  # an id no row has yet; only ever replaced, never requested


def url_for_pk(name: str) -> Callable[[int], str]:
    """The URL of the view `name` for a row's id, reversed once rather than once per row.

    For a list of rows: reversing costs a resolver walk per call, which was a fifth of the
    catalogue page's time (issue 11). `name` must take the id as its only argument.
    """
    head, _, tail = reverse(name, args=[_PK_MARK]).rpartition(str(_PK_MARK))
    return lambda pk: f"{head}{int(pk)}{tail}"
