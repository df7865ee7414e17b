"""Forms of the people pages: a person's role, and a device assigned to them."""

from __future__ import annotations

import re

from django import forms

from workflows_app.models import DeviceAssignment, PersonProfile
from workflows_app.roles import ROLE_ORDER, Role
from workflows_app.services.people import (
    NOTE_LENGTH,
    clean_classic_uid,
    clean_collector_uid,
    clean_device_name,
    role_label,
)
from workflows_app.targets import UPN_PATTERN

NO_ROLE = "none"
ROLE_CHOICES = [(role.value, role.value) for role in reversed(ROLE_ORDER)] + [
    (NO_ROLE, role_label(None))
]
UPN_LENGTH = PersonProfile._meta.get_field("upn").max_length or 255
UPN = re.compile(UPN_PATTERN, re.ASCII)
NAME_LENGTH = DeviceAssignment._meta.get_field("device_name").max_length or 255


class RoleForm(forms.Form):
    """The role to give a person: Employee, Helpdesk, Admin, or none."""

    role = forms.ChoiceField(
        choices=ROLE_CHOICES,
        error_messages={
            "required": "Choose a role (or No role).",
            "invalid_choice": "Choose Employee, Helpdesk, Admin or No role.",
        },
    )

    def chosen(self) -> Role | None:
        value = self.cleaned_data["role"]
        return None if value == NO_ROLE else Role(value)


class UpnForm(forms.Form):
    """A local account's UPN, as Nexthink knows the person (empty: their email stands in)."""

    upn = forms.CharField(
        label="UPN",
        max_length=UPN_LENGTH,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. alice.smith@corp.example"}),
    )

    def clean_upn(self) -> str:
        value = self.cleaned_data["upn"].replace("\x00", "").strip()
        if value and not UPN.fullmatch(value):
            raise forms.ValidationError(
                "A UPN looks like name@domain (as Nexthink shows it in user.upn)."
            )
        return value


class DeviceForm(forms.Form):
    """A device to assign: its name as Nexthink knows it, its Collector UUID if known, a note."""

    device_name = forms.CharField(
        label="Device name",
        max_length=NAME_LENGTH,
        error_messages={"required": "Give the device's name as Nexthink shows it."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. LT-0042"}),
    )
    collector_uid = forms.CharField(
        label="Collector UUID (optional)",
        max_length=64,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40"}),
    )
    classic_uid = forms.CharField(
        label="Classic device UID (optional)",
        max_length=64,
        required=False,
        help_text="For remote actions of the classic platform: NXQL device_uid, 32 hexadecimal "
        "digits.",
        widget=forms.TextInput(attrs={"placeholder": "da2add909a144e8235453f88dc45172f"}),
    )
    note = forms.CharField(label="Note (optional)", max_length=NOTE_LENGTH, required=False)

    def clean_device_name(self) -> str:
        try:
            return clean_device_name(self.cleaned_data["device_name"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_collector_uid(self) -> str:
        try:
            return clean_collector_uid(self.cleaned_data["collector_uid"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_classic_uid(self) -> str:
        try:
            return clean_classic_uid(self.cleaned_data["classic_uid"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class RemoveDeviceForm(forms.Form):
    """Which of the person's assigned devices to remove."""

    assignment = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        error_messages={"required": "Say which device to remove.", "invalid": "Reload the page."},
    )
