"""The admin's form registering a remote action of the classic platform."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from workflows_app.roles import Role
from workflows_app.services.remote_actions import RemoteActionSpec, spec_problems

_SEPARATORS = re.compile(r"[\s,;]+")


class RemoteActionForm(forms.Form):
    """A remote action's UID (from Finder), its name, description, parameters and who runs it."""

    uid = forms.CharField(
        label="Remote action UID",
        max_length=64,
        help_text="In Finder: right-click the remote action, Export > Remote action Uid to "
        "clipboard. Like 07844969-1889-4de3-9026-020af94be855.",
    )
    name = forms.CharField(max_length=255, help_text="How the portal names it.")
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"style": "min-height:4.5rem"})
    )
    params = forms.CharField(
        label="Parameters",
        required=False,
        max_length=5000,
        help_text="The names of its parameters, separated by spaces, commas or new lines. The "
        "classic API ignores names it does not know, so the portal refuses any other name. "
        "Their types and defaults are set in the curation editor afterwards.",
        widget=forms.Textarea(attrs={"style": "min-height:4.5rem"}),
    )
    allowed_roles = forms.MultipleChoiceField(
        label="Roles that may run it",
        choices=[(Role.HELPDESK.value, Role.HELPDESK.value), (Role.ADMIN.value, Role.ADMIN.value)],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: helpdesk and admins.",
    )
    self_service = forms.BooleanField(
        label="Offer it to employees, on their own device", required=False
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        self.spec = RemoteActionSpec(
            uid=cleaned["uid"],
            name=cleaned["name"],
            description=cleaned.get("description", ""),
            params=tuple(p for p in _SEPARATORS.split(cleaned.get("params", "")) if p),
            allowed_roles=tuple(cleaned.get("allowed_roles") or ()) or None,
            self_service=bool(cleaned.get("self_service")),
        )
        for problem in spec_problems(self.spec):
            self.add_error(None, problem)
        return cleaned
