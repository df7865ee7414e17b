"""An employee's request for the helpdesk's help with a self-service fix that did not work."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workflows_app.models.runs import Run

REFERENCE_PREFIX = "HELP-"


class HelpRequest(models.Model):
    """One request per run (the one-to-one is the database's guarantee), with what was sent,
    and who handled it when.

    `details` is what the helpdesk received (the published event's details and the e-mail's
    content), kept as sent: no secret ever goes into it. The e-mail columns record the helpdesk
    mail's delivery (services/escalation.py): written before each attempt, updated after.
    """

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="help_request")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="help_requests"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    message = models.TextField(blank=True)
    channels = models.JSONField(default=list, blank=True, help_text="email, webhook")
    details = models.JSONField(default=dict, blank=True, help_text="What the helpdesk received")
    email_attempts = models.PositiveIntegerField(default=0)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True)
    # Set once, by the helpdesk agent or admin who dealt with it; open while null.
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="help_requests_handled",
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.reference} for run {self.run_id}"

    @property
    def reference(self) -> str:
        """How the employee and the helpdesk name it: HELP-<id>."""
        return f"{REFERENCE_PREFIX}{self.pk}"
