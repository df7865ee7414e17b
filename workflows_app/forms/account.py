"""Creating a personal API token: a name and an optional expiry."""

from __future__ import annotations

from typing import Any

from django import forms

from workflows_app.services.api_tokens import MAX_EXPIRY_DAYS, MAX_NAME_LENGTH


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=MAX_NAME_LENGTH,
        help_text="What will use it, e.g. ServiceNow production.",
    )
    expires_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        help_text="Empty: never expires (revoke it here when it is no longer needed).",
    )


class NotificationsForm(forms.Form):
    """A person's e-mail choices (services/preferences.py)."""

    runs_ended = forms.BooleanField(
        label=(
            "My runs and flow runs: when one ends (with its outcome), is rejected or expires"
            " (a flow run's steps: one mail for the whole flow)"
        ),
        required=False,
    )
    approvals_waiting = forms.BooleanField(
        label="Approvals: when a run or flow run waits for my approval", required=False
    )

    def __init__(self, *args: Any, may_approve: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_approve:  # employees never approve: no choice to offer them
            del self.fields["approvals_waiting"]
