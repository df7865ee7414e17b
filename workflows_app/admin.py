"""Django admin: self-service settings and fallback devices to edit; catalogue and runs to read.

Portal admins (the Admin role) may edit the settings and the assigned devices once their account
can sign in to the Django admin (is_staff). Workflows, runs and batches are written only by the
sync and the run pipeline, so the admin shows them read-only, and only to superusers.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from workflows_app.models import Batch, DeviceAssignment, PortalSettings, Run, Workflow
from workflows_app.nexthink.models import NQL_QUERY_ID_PATTERN
from workflows_app.roles import Role, has_role
from workflows_app.services import audit, people, portal_settings
from workflows_app.targets import UUID_PATTERN

_QUERY_ID = re.compile(NQL_QUERY_ID_PATTERN)
_UUID = re.compile(UUID_PATTERN, re.ASCII)


class PortalSettingsForm(forms.ModelForm):
    """The settings form, checking what Nexthink would refuse before it is saved."""

    class Meta:
        model = PortalSettings
        fields = [
            "device_query_id",
            "device_query_parameter",
            "device_cache_seconds",
            "max_devices_offered",
            "duplicate_window_minutes",
        ]

    def clean_device_query_id(self) -> str:
        value: str = self.cleaned_data["device_query_id"].strip()
        if value and not _QUERY_ID.fullmatch(value):
            raise forms.ValidationError(
                "An NQL API query id starts with # and has 2 to 255 lowercase letters, digits "
                "or underscores, e.g. #portal_user_devices. Leave it empty to use only the "
                "devices assigned here."
            )
        return value

    def clean_device_query_parameter(self) -> str:
        value: str = self.cleaned_data["device_query_parameter"].strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise forms.ValidationError(
                "The name of the query's $parameter without the $, e.g. upn."
            )
        return value

    def clean_max_devices_offered(self) -> int:
        value: int = self.cleaned_data["max_devices_offered"]
        if value < 1:
            raise forms.ValidationError("Offer at least one device.")
        return value


class PortalAdminEditable(admin.ModelAdmin):
    """Editable by Django's model permissions, and by anyone with the portal's Admin role."""

    def _portal_admin(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and has_role(request.user, Role.ADMIN))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._portal_admin(request) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._portal_admin(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._portal_admin(request) or super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._portal_admin(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._portal_admin(request) or super().has_delete_permission(request, obj)


@admin.register(PortalSettings)
class PortalSettingsAdmin(PortalAdminEditable):
    """The one settings row: editable, never added twice, never deleted."""

    form = PortalSettingsForm
    fieldsets = [
        (
            "Finding an employee's devices",
            {
                "fields": [
                    "device_query_id",
                    "device_query_parameter",
                    "device_cache_seconds",
                    "max_devices_offered",
                ],
                "description": (
                    "The portal runs this saved NQL query with the employee's UPN, and falls "
                    "back to the devices assigned below when it finds none or fails."
                ),
            },
        ),
        ("Double-click guard", {"fields": ["duplicate_window_minutes"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not PortalSettings.objects.exists()

    def save_model(
        self, request: HttpRequest, obj: PortalSettings, form: Any, change: bool
    ) -> None:
        """Save, and audit what changed (as the portal's own settings form does)."""
        stored = PortalSettings.objects.filter(pk=obj.pk).first() if obj.pk else None
        before = portal_settings.settings_values(stored) if stored is not None else {}
        super().save_model(request, obj, form, change)
        portal_settings.record_settings_change(
            before, obj, user=request.user, ip=audit.client_address(request)
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeviceAssignmentForm(forms.ModelForm):
    """An assignment form that refuses a Collector UUID that is not one."""

    class Meta:
        model = DeviceAssignment
        fields = ["user", "device_name", "collector_uid", "note"]

    def clean_collector_uid(self) -> str:
        value: str = self.cleaned_data["collector_uid"].strip()
        if value and not _UUID.fullmatch(value):
            raise forms.ValidationError(
                "A Collector UUID looks like 0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40; leave it "
                "empty to target the device by name."
            )
        return value.lower()


@admin.register(DeviceAssignment)
class DeviceAssignmentAdmin(PortalAdminEditable):
    """Devices assigned to employees by hand, used when NQL finds none of theirs."""

    form = DeviceAssignmentForm
    list_display = ["device_name", "user", "collector_uid", "note", "created_at"]
    list_select_related = ["user"]
    search_fields = ["device_name", "collector_uid", "user__username", "user__email"]
    raw_id_fields = ["user"]
    ordering = ["user__username", "device_name"]

    # Audited as the People pages audit them: an edit is the old assignment removed and the
    # new one assigned.
    def save_model(
        self, request: HttpRequest, obj: DeviceAssignment, form: Any, change: bool
    ) -> None:
        old = DeviceAssignment.objects.filter(pk=obj.pk).first() if obj.pk else None
        super().save_model(request, obj, form, change)
        ip = audit.client_address(request)
        if old is not None:
            people.record_unassignment(old, by=request.user, ip=ip)
        people.record_assignment(obj, by=request.user, ip=ip)

    def delete_model(self, request: HttpRequest, obj: DeviceAssignment) -> None:
        people.record_unassignment(obj, by=request.user, ip=audit.client_address(request))
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        ip = audit.client_address(request)
        for assignment in queryset.select_related("user"):
            people.record_unassignment(assignment, by=request.user, ip=ip)
        super().delete_queryset(request, queryset)


class SuperuserReadOnlyAdmin(admin.ModelAdmin):
    """Read-only pages, shown only to superusers."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(SuperuserReadOnlyAdmin):
    """The synced catalogue, as Nexthink last described it."""

    list_display = ["name", "nql_id", "status", "dependency", "trigger_api", "removed_at"]
    list_filter = ["status", "dependency", "trigger_api"]
    search_fields = ["name", "nql_id", "uuid"]


@admin.register(Run)
class RunAdmin(SuperuserReadOnlyAdmin):
    """Runs as recorded (secret parameters are never shown)."""

    list_display = ["id", "workflow_name", "created_by", "source", "status", "created_at"]
    list_filter = ["status", "source", "api_version"]
    list_select_related = ["created_by"]
    search_fields = ["workflow_name", "workflow_nql_id", "created_by__username"]
    exclude = ["secret_params"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Batch)
class BatchAdmin(SuperuserReadOnlyAdmin):
    """One API request of a run, with its lifecycle and error."""

    list_display = ["id", "run", "number", "state", "attempts", "request_uuid", "updated_at"]
    list_filter = ["state", "api_version"]
    search_fields = ["request_uuid"]
    raw_id_fields = ["run"]
    list_select_related = ["run"]
    show_full_result_count = False
