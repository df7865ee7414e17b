"""The approver's form: approve or reject a held run, with a comment (required to reject)."""

from __future__ import annotations

from typing import Any

from django import forms

from workflows_app.models import Approval

MAX_COMMENT = Approval._meta.get_field("comment").max_length or 1000


class DecisionForm(forms.Form):
    """One decision on one request for approval."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(
        required=False,
        max_length=MAX_COMMENT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to reject: the requester reads it.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        comment = cleaned.get("comment", "").replace("\x00", "").strip()
        cleaned["comment"] = comment
        if cleaned.get("decision") == "reject" and not comment:
            self.add_error("comment", "Say why you reject it: the requester reads it.")
        return cleaned

    @property
    def approves(self) -> bool:
        return self.cleaned_data["decision"] == "approve"
