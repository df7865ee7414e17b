"""Adding and changing an outgoing webhook in the console (rules: services/webhook_admin.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from workflows_app.models import Webhook
from workflows_app.services.webhook_admin import (
    EVENT_NAMES,
    MAX_SECRET,
    MAX_URL,
    secret_problem,
    url_problem,
)


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL", max_length=MAX_URL, help_text="Where the events are POSTed (https://)."
    )
    description = forms.CharField(
        max_length=Webhook._meta.get_field("description").max_length,
        required=False,
        help_text="What receives it, e.g. ServiceNow production.",
    )
    secret = forms.CharField(
        max_length=MAX_SECRET,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs every delivery (docs/webhooks.md). Never shown again once saved.",
    )
    events = forms.MultipleChoiceField(
        choices=[(name, name) for name in EVENT_NAMES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event, including those added later.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if settings.WEBHOOKS_ALLOW_HTTP:
            self.fields[
                "url"
            ].help_text = (
                "Where the events are POSTed (https://; http:// too, as WEBHOOKS_ALLOW_HTTP is on)."
            )
        if editing:
            self.fields["secret"].required = False
            self.fields["secret"].help_text = "Empty: keep the current secret (it is not shown)."

    def clean_url(self) -> str:
        url = str(self.cleaned_data["url"]).strip()
        problem = url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_secret(self) -> str | None:
        secret = str(self.cleaned_data.get("secret") or "")
        if not secret and self.editing:
            return None
        problem = secret_problem(secret)
        if problem:
            raise forms.ValidationError(problem)
        return secret
