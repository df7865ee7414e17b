"""Settings of self-service and the devices an admin assigns to employees by hand."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PortalSettings(models.Model):
    """Admin-editable settings; one row (pk=1), created on first read."""

    device_query_id = models.CharField(
        "NQL query finding a user's devices",
        max_length=256,
        default="#portal_user_devices",
        blank=True,
        help_text="A query saved in Nexthink, e.g. #portal_user_devices",
    )
    device_query_parameter = models.CharField(max_length=100, default="upn")
    device_cache_seconds = models.PositiveIntegerField(default=300)
    max_devices_offered = models.PositiveIntegerField(default=3)
    duplicate_window_minutes = models.PositiveIntegerField(
        "double-click guard window (minutes)", default=5
    )
    helpdesk_url = models.CharField(
        "contact the helpdesk (link)",
        max_length=500,
        blank=True,
        help_text="Offered to employees when a fix did not work: a URL or mailto: address.",
    )

    class Meta:
        verbose_name_plural = "portal settings"

    def __str__(self) -> str:
        return "Portal settings"

    @classmethod
    def load(cls) -> PortalSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class DeviceAssignment(models.Model):
    """A device an admin assigned to an employee: the fallback when NQL finds none."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assigned_devices"
    )
    device_name = models.CharField(max_length=255)
    collector_uid = models.CharField(max_length=64, blank=True)
    # The device's UID on the classic platform (NXQL device_uid, 32 hexadecimal digits): what
    # an employee's remote actions target, since the classic API takes no device names.
    classic_uid = models.CharField(
        "classic device UID", max_length=32, blank=True, default="", db_default=""
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "device_name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "device_name"], name="unique_device_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.device_name} → {self.user}"
