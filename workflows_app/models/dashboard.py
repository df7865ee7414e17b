"""The dashboard's daily counts: runs and their targets' outcomes added up per day, so the
admins' dashboard reads a few thousand small rows instead of a million targets.

Days are calendar days in the portal's TIME_ZONE, by the day a run was created: a run and all
its targets count on that day, whenever their outcomes arrive. `services/dashboard_counts.py`
recounts them from the runs (recent days every few minutes, the whole window every hour), so
they are never written from the pipeline itself.
"""

from __future__ import annotations

from django.db import models

from workflows_app.models.catalogue import Workflow
from workflows_app.models.runs import Run


class DailyRunCount(models.Model):
    """Runs of one workflow from one source created on one day, and their targets' outcomes."""

    day = models.DateField()
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=20, choices=Run.Source.choices)
    runs = models.PositiveIntegerField(default=0)
    # Targets by final outcome (Run.outcome_counts added up); open ones are not counted.
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0)
    not_sent = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workflow", "source"], name="daily_run_count_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow_id} {self.source}: {self.runs} runs"


class DailyDeviceFailure(models.Model):
    """How many targets naming one device (or user) failed among the runs created on one day."""

    day = models.DateField()
    value = models.CharField(max_length=255)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "value"], name="daily_device_failure_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.value}: {self.failures} failed"


class DashboardCounting(models.Model):
    """When the daily counts were last recounted (one row): what the dashboard says they are
    "as of", and the lock that keeps two recounts from interleaving."""

    counted_at = models.DateTimeField(null=True, blank=True)
    counted_from = models.DateField(null=True, blank=True, help_text="First day recounted")
    full_counted_at = models.DateTimeField(null=True, blank=True, help_text="Whole window")
    seconds = models.FloatField(default=0, help_text="How long the last recount took")

    def __str__(self) -> str:
        return f"Dashboard counts as of {self.counted_at}"
