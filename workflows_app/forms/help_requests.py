"""The "Get help" form: an optional message from the employee to the helpdesk."""

from __future__ import annotations

from django import forms

from workflows_app.services.help_requests import MAX_MESSAGE, message_problem


class HelpRequestForm(forms.Form):
    """What the employee adds to the details the helpdesk receives anyway."""

    message = forms.CharField(
        label="Anything the helpdesk should know? (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MAX_MESSAGE}),
        help_text=(
            f"E.g. what you see on your screen, or when it suits you to be called. At most "
            f"{MAX_MESSAGE} characters; never a password."
        ),
    )

    def clean_message(self) -> str:
        message = str(self.cleaned_data.get("message") or "")
        problem = message_problem(message)
        if problem is not None:
            raise forms.ValidationError(problem)
        return message
