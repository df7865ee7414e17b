"""Forms of the admin console."""

from __future__ import annotations

from django import forms

from workflows_app.models import Batch

NOTE_LENGTH = Batch._meta.get_field("resend_note").max_length or 500


class ResendForm(forms.Form):
    """An admin's decision to send a reconciled batch's not-sent targets again: why, in a note."""

    note = forms.CharField(
        label="Why send them again",
        max_length=NOTE_LENGTH,
        error_messages={"required": "Say why these targets are sent again: a note is required."},
        widget=forms.TextInput(attrs={"placeholder": "e.g. INC0012345, checked in Nexthink"}),
    )
