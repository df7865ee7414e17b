"""Notifications: what each person wants to be mailed about, the e-mails decided (one per
person, run or flow run, and event), and the outgoing webhooks with their delivery log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class NotificationPreference(models.Model):
    """A person's e-mail choices; without a row, both are on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    # Their own runs and flow runs: ended (with outcomes), rejected by an approver, expired.
    runs_ended = models.BooleanField(
        "My runs and flow runs ended, were rejected or expired", default=True
    )
    approvals_waiting = models.BooleanField("A run or flow run waits for my approval", default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notification choices of user {self.user_id}"


class EmailState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class EmailNotice(models.Model):
    """One e-mail to one person about one event of a run or of a flow run, written before it is
    sent.

    Unique per (run or flow run, event, recipient): a redelivered event finds its row and mails
    nobody again; the send task claims the row (queued → sending) so a redelivered send does not
    either.
    """

    run = models.ForeignKey(
        "workflows_app.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    flow_run = models.ForeignKey(
        "workflows_app.FlowRun", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event = models.CharField(max_length=40)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    address = models.EmailField(max_length=254)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=EmailState.choices, default=EmailState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "event", "recipient"], name="unique_email_notice"
            ),
            models.UniqueConstraint(
                fields=["flow_run", "event", "recipient"], name="unique_flow_run_email_notice"
            ),
            models.CheckConstraint(
                condition=models.Q(run__isnull=False, flow_run__isnull=True)
                | models.Q(run__isnull=True, flow_run__isnull=False),
                name="email_notice_of_one_run_or_flow_run",
            ),
        ]

    def __str__(self) -> str:
        what = f"run {self.run_id}" if self.run_id else f"flow run {self.flow_run_id}"
        return f"{self.event} of {what} to user {self.recipient_id} ({self.state})"


class Webhook(models.Model):
    """A URL that receives run and flow run events as signed JSON POSTs (docs/webhooks.md)."""

    url = models.URLField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # Encrypted (services/secrets.py); never shown again once saved.
    secret = models.TextField()
    # The event names it receives; empty: every event.
    events = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Webhook {self.pk} to {self.url}"

    def wants(self, event: str) -> bool:
        """Whether this webhook receives `event`."""
        return self.enabled and (not self.events or event in self.events)


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one webhook: the exact body sent (the same at every attempt) and its state."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=40)
    # Not foreign keys: the log outlives the run (retention) and a test event has none. A flow
    # run's event names its flow run, a run's its run.
    run_id = models.BigIntegerField(null=True, blank=True)
    flow_run_id = models.BigIntegerField(null=True, blank=True)
    # Which published event this is (subject, event, details): a redelivered one is not sent twice.
    dedupe_key = models.CharField(max_length=64)
    body = models.TextField()
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["webhook", "dedupe_key"], name="unique_webhook_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} to webhook {self.webhook_id} ({self.state})"


class WebhookAttempt(models.Model):
    """One POST of a delivery: written before the call, completed with the answer after it."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
