"""Four-eyes approval: a run or flow run held until someone other than its requester says yes.

One `Approval` row per held run (or flow run), written in the transaction that creates it. Its
state moves once, from pending, by one conditional UPDATE (services/approvals.py): two approvers
clicking together decide it once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from workflows_app.models.flows import FlowRun
from workflows_app.models.runs import Run


class ApprovalState(models.TextChoices):
    """Where a request for approval stands."""

    PENDING = "pending", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"


class Approval(models.Model):
    """A request that someone of `approver_role` (or an admin) approves a run before it is sent."""

    run = models.OneToOneField(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="approval"
    )
    flow_run = models.OneToOneField(
        FlowRun, null=True, blank=True, on_delete=models.CASCADE, related_name="approval"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The weakest role that may decide (roles.Role value); admins always may.
    approver_role = models.CharField(max_length=20)
    # Why approval is needed ("the curation of ... requires it", "1,200 targets, above 1,000").
    why = models.CharField(max_length=500)
    state = models.CharField(
        max_length=10, choices=ApprovalState.choices, default=ApprovalState.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approval_decisions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["requested_at", "id"]
        indexes = [
            models.Index(fields=["state", "requested_at"], name="approval_state_requested"),
            models.Index(fields=["state", "expires_at"], name="approval_state_expires"),
            models.Index(fields=["state", "decided_at"], name="approval_state_decided"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(run__isnull=False, flow_run__isnull=True)
                | models.Q(run__isnull=True, flow_run__isnull=False),
                name="approval_of_one_run_or_flow_run",
            )
        ]

    def __str__(self) -> str:
        what = f"run {self.run_id}" if self.run_id else f"flow run {self.flow_run_id}"
        return f"Approval {self.pk} of {what} ({self.state})"

    @property
    def is_pending(self) -> bool:
        return self.state == ApprovalState.PENDING
