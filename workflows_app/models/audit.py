"""The audit log (append-only: the database refuses UPDATE and DELETE) and each run's timeline."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditAction(models.TextChoices):
    """What people did that an admin may have to account for."""

    RUN_CREATED = "run.created", "Run created"
    RUN_RESUMED = "run.resumed", "Execution resumed"
    RUN_RESENT = "run.resent", "Not-sent targets sent again"
    CATALOGUE_SYNCED = "catalogue.synced", "Catalogue synced"
    CURATION_CHANGED = "curation.changed", "Curation changed"
    CURATION_IMPORTED = "curation.imported", "Curation imported"
    REMOTE_ACTION_REGISTERED = "remote_action.registered", "Remote action registered"
    SETTINGS_CHANGED = "settings.changed", "Settings changed"
    ROLE_CHANGED = "role.changed", "Role changed"
    DEVICE_ASSIGNED = "device.assigned", "Device assigned"
    DEVICE_UNASSIGNED = "device.unassigned", "Device assignment removed"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    API_USED = "api.used", "API call that changes something"
    SIGNED_IN = "auth.signed_in", "Signed in"
    SIGN_IN_FAILED = "auth.sign_in_failed", "Sign-in failed"
    SIGNED_OUT = "auth.signed_out", "Signed out"
    UPN_CHANGED = "person.upn_changed", "UPN changed"
    RETENTION = "retention.purged", "Old history removed"
    FLOW_CHANGED = "flow.changed", "Flow changed"
    FLOW_IMPORTED = "flow.imported", "Flows imported"
    FLOW_DELETED = "flow.deleted", "Flow deleted"
    FLOW_RUN_CREATED = "flow_run.created", "Flow run created"
    # Four-eyes approval (services/approvals.py).
    RUN_APPROVED = "run.approved", "Run approved"
    RUN_REJECTED = "run.rejected", "Run rejected"
    RUN_APPROVAL_EXPIRED = "run.approval_expired", "Run approval expired"
    FLOW_RUN_APPROVED = "flow_run.approved", "Flow run approved"
    FLOW_RUN_REJECTED = "flow_run.rejected", "Flow run rejected"
    FLOW_RUN_APPROVAL_EXPIRED = "flow_run.approval_expired", "Flow run approval expired"
    # Notifications (services/emails.py, services/webhooks.py) and escalation.
    WEBHOOK_ADDED = "webhook.added", "Webhook added"
    WEBHOOK_CHANGED = "webhook.changed", "Webhook changed"
    WEBHOOK_REMOVED = "webhook.removed", "Webhook removed"
    NOTIFICATIONS_CHANGED = "person.notifications_changed", "Notification choices changed"
    HELP_REQUESTED = "run.help_requested", "Help requested"
    HELP_HANDLED = "run.help_handled", "Help request handled"


class AuditEvent(models.Model):
    """One thing someone did: who, when, what, to what, from which address. Never changed.

    A trigger created by the migration makes the database refuse UPDATE and DELETE on this
    table; only the retention task may remove old rows, after granting itself permission in
    its own transaction (services/retention.py).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # the log outlives the account; no cascade may touch it
        db_constraint=False,
        related_name="+",
    )
    # As it was when it happened: the account may be renamed or removed later.
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "workflows_app_audit_event"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["action", "at"], name="audit_action_at"),
            models.Index(fields=["actor_name", "at"], name="audit_actor_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action}"


class AuditPurgePermit(models.Model):
    """A row present only inside the retention task's transaction: the trigger then lets old
    audit rows be deleted (and nothing else, and never an UPDATE)."""

    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "workflows_app_audit_purge_permit"

    def __str__(self) -> str:
        return f"Audit purge permit {self.granted_at:%Y-%m-%d %H:%M:%S}"


class RunEventKind(models.TextChoices):
    """What happened to a run (its timeline)."""

    CREATED = "created", "Created"
    BATCH_CLAIMED = "batch.claimed", "Batch being sent"
    BATCH_REQUEUED = "batch.requeued", "Batch queued again"
    BATCH_SUBMITTED = "batch.submitted", "Batch submitted"
    BATCH_FAILED = "batch.failed", "Batch failed"
    BATCH_UNKNOWN = "batch.unknown", "Batch outcome unknown"
    BATCH_RECONCILED = "batch.reconciled", "Batch reconciled"
    OUTCOMES = "outcomes", "Outcomes from Nexthink"
    FOLLOW_UP_PROBLEM = "follow_up.problem", "Follow-up problem"
    FOLLOW_UP_ENDED = "follow_up.ended", "Follow-up ended"
    RESENT = "resent", "Not-sent targets sent again"
    RESUMED = "resumed", "Execution resumed"
    APPROVAL_REQUESTED = "approval.requested", "Approval requested"
    APPROVED = "approval.approved", "Approved"
    REJECTED = "approval.rejected", "Rejected"
    APPROVAL_EXPIRED = "approval.expired", "Approval expired"
    NOTIFIED = "notified", "People notified"
    HELP_REQUESTED = "help.requested", "Help requested"


class RunEvent(models.Model):
    """One entry of a run's timeline; removed with the run."""

    run = models.ForeignKey("workflows_app.Run", on_delete=models.CASCADE, related_name="events")
    batch_number = models.PositiveIntegerField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=30, choices=RunEventKind.choices)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "at", "id"]
        indexes = [models.Index(fields=["run", "at"], name="run_event_run_at")]

    def __str__(self) -> str:
        return f"{self.run_id} {self.kind} at {self.at:%H:%M:%S}"


class RetentionSweep(models.Model):
    """What one pass of the retention task removed, shown in the console."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    runs_removed = models.PositiveIntegerField(default=0)
    targets_removed = models.PositiveIntegerField(default=0)
    audit_removed = models.PositiveIntegerField(default=0)
    flow_runs_removed = models.PositiveIntegerField(default=0)
    runs_before = models.DateTimeField(null=True, blank=True)
    audit_before = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        get_latest_by = "started_at"

    def __str__(self) -> str:
        return f"Retention {self.started_at:%Y-%m-%d %H:%M} ({self.runs_removed} runs)"
