"""What the console's catalogue card reads: the catalogue's size and the recent syncs."""

from __future__ import annotations

from django.db.models import Count, Q

from workflows_app.models import CatalogueSync, Workflow

RECENT_SYNCS = 10


def catalogue_counts() -> dict[str, int]:
    """Workflows present and active, present and inactive, removed from Nexthink."""
    present = Q(removed_at__isnull=True)
    return Workflow.objects.aggregate(
        active=Count("pk", filter=present & Q(status=Workflow.Status.ACTIVE)),
        inactive=Count("pk", filter=present & ~Q(status=Workflow.Status.ACTIVE)),
        removed=Count("pk", filter=Q(removed_at__isnull=False)),
    )


def recent_syncs(limit: int = RECENT_SYNCS) -> list[CatalogueSync]:
    """The latest syncs, newest first."""
    rows = CatalogueSync.objects.select_related("requested_by").order_by("-started_at")
    return list(rows[:limit])


def newest_sync_id() -> int:
    """The id of the newest sync row (0 when there is none): what "Sync now" waits to pass."""
    return CatalogueSync.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def sync_started_after(sync_id: int) -> bool:
    """Whether a worker has started a sync since the row `sync_id` was the newest."""
    return CatalogueSync.objects.filter(pk__gt=sync_id).exists()
