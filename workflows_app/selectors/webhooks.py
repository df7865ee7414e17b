"""Reading webhooks and their delivery log for the console."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from workflows_app.models import Webhook, WebhookAttempt

LOG_ROWS = 50


def webhooks_listed() -> QuerySet[Webhook]:
    """Every webhook with its last attempt's time, status code and error (the list page)."""
    last = WebhookAttempt.objects.filter(delivery__webhook=OuterRef("pk")).order_by("-id")
    return Webhook.objects.order_by("id").annotate(
        last_at=Subquery(last.values("started_at")[:1]),
        last_status=Subquery(last.values("status_code")[:1]),
        last_error=Subquery(last.values("error")[:1]),
    )


def webhooks_wanting(event: str) -> list[Webhook]:
    """The enabled webhooks that receive `event` (Webhook.wants: one naming no events gets all)."""
    return [hook for hook in Webhook.objects.filter(enabled=True) if hook.wants(event)]


def recent_attempts(hook: Webhook, limit: int = LOG_ROWS) -> list[WebhookAttempt]:
    """The webhook's latest attempts, newest first, each with its delivery."""
    return list(
        WebhookAttempt.objects.filter(delivery__webhook=hook)
        .select_related("delivery")
        .order_by("-id")[:limit]
    )
