"""Reading help requests: one run's, those of a few runs, one's own run, pages for the helpdesk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import BooleanField, ExpressionWrapper, Q

from workflows_app.models import HelpRequest, Run

PAGE_SIZE = 50
_MAX_ID = 2**31


def own_run(user: User | AnonymousUser, pk: int) -> Run | None:
    """The run `pk` if this person started it (whatever their role), else None."""
    if not 0 < pk < _MAX_ID:
        return None
    runs = Run.objects.select_related("created_by", "workflow", "workflow__curation")
    return runs.filter(pk=pk, created_by_id=user.pk).first()


def help_request_of(run: Run) -> HelpRequest | None:
    """The run's help request, or None."""
    return HelpRequest.objects.select_related("requested_by").filter(run_id=run.pk).first()


def one_help_request(pk: int) -> HelpRequest | None:
    """A help request by id, or None (an unknown or impossible id)."""
    if not 0 < pk < _MAX_ID:
        return None
    return HelpRequest.objects.select_related("handled_by").filter(pk=pk).first()


def help_requests_of(run_ids: Iterable[int]) -> dict[int, HelpRequest]:
    """The help requests of these runs, by run id (runs without one are left out)."""
    found = HelpRequest.objects.filter(run_id__in=list(run_ids)).select_related("requested_by")
    return {h.run_id: h for h in found}


# The list's `?show=` choices: open ones first is the default ("all").
SHOW_CHOICES = ("all", "open", "handled")


@dataclass(frozen=True)
class HelpRequestPage:
    """A page of help requests (open ones first, newest first in each), and the id the next
    page starts after."""

    requests: Sequence[HelpRequest]
    next_before: int | None


def help_request_page(
    *, show: str = "all", before: int | None = None, size: int = PAGE_SIZE
) -> HelpRequestPage:
    """Help requests with their run, employee and handler: open, handled, or all (open first).

    A keyset page on (handled, id): `before` is the last request shown, whose state says
    which part the next page continues (the open ones, or the handled ones after them).
    """
    rows = HelpRequest.objects.select_related("run", "requested_by", "handled_by").defer("details")
    rows = rows.annotate(
        handled=ExpressionWrapper(Q(handled_at__isnull=False), output_field=BooleanField())
    )
    if show == "open":
        rows = rows.filter(handled_at__isnull=True)
    elif show == "handled":
        rows = rows.filter(handled_at__isnull=False)
    if before is not None:
        after_open = HelpRequest.objects.filter(pk=before, handled_at__isnull=True).exists()
        older = Q(pk__lt=before, handled=not after_open)
        rows = rows.filter(older | Q(handled=True) if after_open else older)
    found = list(rows.order_by("handled", "-id")[: size + 1])
    page = found[:size]
    return HelpRequestPage(page, page[-1].pk if len(found) > size else None)
