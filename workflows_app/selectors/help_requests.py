"""Reading help requests: one run's, those of a few runs, one's own run, pages for the helpdesk."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User

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


def help_requests_of(run_ids: Iterable[int]) -> dict[int, HelpRequest]:
    """The help requests of these runs, by run id (runs without one are left out)."""
    found = HelpRequest.objects.filter(run_id__in=list(run_ids)).select_related("requested_by")
    return {h.run_id: h for h in found}


@dataclass(frozen=True)
class HelpRequestPage:
    """A page of help requests, newest first, and the id the next (older) page starts below."""

    requests: list[HelpRequest]
    next_before: int | None


def help_request_page(*, before: int | None = None, size: int = PAGE_SIZE) -> HelpRequestPage:
    """Help requests, newest first (keyset on the id), with their run and employee."""
    rows = HelpRequest.objects.select_related("run", "requested_by").defer("details")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    found = list(rows.order_by("-id")[: size + 1])
    page = found[:size]
    return HelpRequestPage(page, page[-1].pk if len(found) > size else None)
