"""Links to the portal's pages for what leaves it (the command line, e-mails, webhook payloads)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def absolute(path: str) -> str:
    """`path` under PORTAL_BASE_URL; the path alone when that is not set."""
    base = (getattr(settings, "PORTAL_BASE_URL", "") or "").rstrip("/")
    return f"{base}{path}" if base else path


def run_url(run_id: int) -> str:
    """A run's page, absolute when PORTAL_BASE_URL is set."""
    return absolute(reverse("runs:detail", args=[run_id]))


def approval_url(approval_id: int) -> str:
    """Where an approver sees what will run and approves or rejects it."""
    return absolute(reverse("approvals:detail", args=[approval_id]))


def flow_run_url(flow_run_id: int) -> str:
    """A flow run's page (its steps and their runs), absolute when PORTAL_BASE_URL is set."""
    return absolute(reverse("flows:run", args=[flow_run_id]))
