"""Personal API tokens and the Idempotency-Key records of the JSON API (/api/v1/)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A person's API token: only its SHA-256 is kept; the token itself is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the token ("nxp_AbCd"), to tell tokens apart on the page.
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "workflows_app_api_token"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` a person sent with a create: the run it made and the body's hash.

    Unique per person and key, so two concurrent creates with one key make one run: the second
    insert waits for the first transaction and then fails on the constraint. The key is inserted
    before the run, in the run's transaction.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    body_hash = models.CharField(max_length=64)
    # Null only inside the creating transaction: the key is claimed before the run is written.
    run = models.ForeignKey(
        "workflows_app.Run", null=True, on_delete=models.CASCADE, related_name="+"
    )
    # Or the flow run it made (POST /api/v1/flows/<id>/runs); one of the two once created.
    flow_run = models.ForeignKey(
        "workflows_app.FlowRun", null=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "workflows_app_idempotency_key"
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="unique_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key} -> run {self.run_id}"
