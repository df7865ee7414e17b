"""Forms of the curation pages: a workflow's curation, its parameter definitions, the import."""

from __future__ import annotations

import math
from typing import Any, cast

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.forms.formsets import DELETION_FIELD_NAME

from workflows_app.models import ParameterDefinition, PortalSettings, WorkflowCuration
from workflows_app.roles import Role
from workflows_app.services.curation import MAX_DOCUMENT_BYTES, CurationFields
from workflows_app.services.curation_rules import (
    MAX_PARAMETERS,
    ROLE_NAMES,
    ParameterSpec,
    curation_problems,
    parameter_count_problems,
    parameter_problems,
    parameter_set_problems,
    resume_role_problems,
)
from workflows_app.services.portal_settings import MAX_URL_LENGTH, helpdesk_url_problem

BLANK_ROWS = 2
# Employees never resume: the form does not even offer it (the rule refuses it anyway).
RESUME_ROLE_NAMES = tuple(name for name in ROLE_NAMES if name != Role.EMPLOYEE.value)
SHORT_TEXTAREA = "min-height:4.5rem"  # portal.css sizes textareas for pasted target lists


class WorkflowCurationForm(forms.ModelForm):
    """How a workflow is offered: self-service, the employee-facing texts, who may run it."""

    allowed_roles = forms.MultipleChoiceField(
        choices=[(name, name) for name in ROLE_NAMES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Roles that may run it",
        help_text="None ticked: the default rule (helpdesk and admins; employees when offered "
        "for self-service). Admins may always run every workflow.",
    )

    resume_roles = forms.MultipleChoiceField(
        choices=[(name, name) for name in RESUME_ROLE_NAMES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Roles that may resume its waiting executions",
        help_text="For workflows that pause on a “wait for event” step. None ticked: helpdesk "
        "and admins. Admins may always resume; employees never do.",
    )

    approver_role = forms.ChoiceField(
        choices=[("", "Admins"), (Role.HELPDESK.value, "Helpdesk agents (and admins)")],
        required=False,
        label="Who approves its runs",
        help_text="Never the person who started the run. Admins may always approve.",
    )

    class Meta:
        model = WorkflowCuration
        fields = [
            "self_service",
            "title",
            "description",
            "category",
            "confirmation_text",
            "allowed_roles",
            "resume_roles",
            "requires_approval",
            "approver_role",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3, "style": SHORT_TEXTAREA}),
            "confirmation_text": forms.Textarea(attrs={"rows": 2, "style": SHORT_TEXTAREA}),
        }
        labels = {"requires_approval": "Runs wait for approval (four-eyes)"}
        help_texts = {
            "requires_approval": "Each run is held, nothing sent, until someone other than the "
            "person who started it approves it.",
            "confirmation_text": "Asked before an employee runs it, e.g. "
            "“This closes Teams for a minute. Continue?”",
        }

    def clean(self) -> dict[str, Any]:
        """Apply the curation rules the import applies too."""
        cleaned = super().clean() or {}
        if "allowed_roles" in cleaned:
            problems = curation_problems(
                self_service=bool(cleaned.get("self_service")),
                allowed_roles=cleaned["allowed_roles"],
            )
            for problem in problems:
                self.add_error(problem.field, problem.message)
        if "resume_roles" in cleaned:
            for problem in resume_role_problems(cleaned["resume_roles"]):
                self.add_error(problem.field, problem.message)
        return cleaned

    def values(self) -> CurationFields:
        """The validated settings, for the curation service."""
        data = self.cleaned_data
        return CurationFields(
            self_service=data["self_service"],
            title=data["title"],
            description=data["description"],
            category=data["category"],
            confirmation_text=data["confirmation_text"],
            allowed_roles=list(data["allowed_roles"]),
            resume_roles=list(data["resume_roles"]),
            requires_approval=bool(data["requires_approval"]),
            approver_role=data["approver_role"] or "",
        )


class ParameterForm(forms.ModelForm):
    """One parameter definition; the rules are the import's, attached to the fields they concern."""

    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "style": SHORT_TEXTAREA}),
        help_text="Choice parameters only: one value per line.",
    )
    position = forms.IntegerField(
        required=False, min_value=0, help_text="Order on the run form, lowest first."
    )

    class Meta:
        model = ParameterDefinition
        fields = [
            "name",
            "label",
            "help_text",
            "type",
            "required",
            "default",
            "choices",
            "pattern",
            "secret",
            "position",
        ]
        labels = {"help_text": "Help text", "secret": "Secret (masked in forms and history)"}
        labels = {"requires_approval": "Runs wait for approval (four-eyes)"}
        help_texts = {
            "requires_approval": "Each run is held, nothing sent, until someone other than the "
            "person who started it approves it.",
            "pattern": "A regular expression the whole value must match.",
            "default": "Yes / no: true or false. Secrets take no default.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = self.initial.get("choices")
        if isinstance(choices, list):
            self.initial["choices"] = "\n".join(str(choice) for choice in choices)
        if not self.initial.get("name"):
            self.initial["position"] = None  # a new row goes last unless given a place

    def clean_choices(self) -> list[str]:
        """One choice per line; blank lines are ignored."""
        text = self.cleaned_data.get("choices") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]

    def clean(self) -> dict[str, Any]:
        """Apply the parameter rules the import applies too, once each field is valid alone."""
        cleaned = super().clean() or {}
        needed = ("name", "type", "default", "choices", "pattern", "secret")
        if all(name in cleaned for name in needed):
            for problem in parameter_problems(self.spec()):
                self.add_error(problem.field, problem.message)
        return cleaned

    def spec(self) -> ParameterSpec:
        """The definition as plain values."""
        data = self.cleaned_data
        return ParameterSpec(
            name=data["name"],
            label=data.get("label", ""),
            help_text=data.get("help_text", ""),
            type=data["type"],
            required=bool(data.get("required")),
            default=data["default"],
            choices=list(data["choices"]),
            pattern=data["pattern"],
            secret=bool(data["secret"]),
        )


class BaseParameterFormSet(forms.BaseFormSet):
    """A workflow's whole parameter set: rows to keep, in order, with unique names."""

    def kept_forms(self) -> list[ParameterForm]:
        """Rows that are filled in and not marked for deletion, in the order they were sent."""
        return [
            form
            for form in self.forms
            if form.has_changed() or form.initial.get("name")
            if not (self.can_delete and form.cleaned_data.get(DELETION_FIELD_NAME, False))
        ]

    def clean(self) -> None:
        """Refuse too many parameters, or a name given to two (the same checks as the import's)."""
        super().clean()
        forms_ = self.kept_forms()
        for problem in parameter_count_problems(len(forms_)):
            raise forms.ValidationError(problem.message)
        names = [str(form.cleaned_data.get("name") or "") for form in forms_]
        for index, problem in parameter_set_problems(names):
            forms_[index].add_error(problem.field, problem.message)

    def specs(self) -> list[ParameterSpec]:
        """The kept definitions sorted by the positions given (ties keep the page's order)."""
        forms_ = self.kept_forms()

        def place(item: tuple[int, ParameterForm]) -> tuple[float, int]:
            position = item[1].cleaned_data.get("position")
            return (math.inf if position is None else position, item[0])

        return [form.spec() for _, form in sorted(enumerate(forms_), key=place)]


# The factory builds a subclass of the formset it is given; the stubs only know BaseFormSet.
ParameterFormSet = cast(
    type[BaseParameterFormSet],
    forms.formset_factory(
        ParameterForm,
        formset=BaseParameterFormSet,
        extra=BLANK_ROWS,
        can_delete=True,
        max_num=MAX_PARAMETERS,  # rows shown; parameter_count_problems refuses more
    ),
)


def parameter_initial(parameters: list[ParameterDefinition]) -> list[dict[str, Any]]:
    """Initial rows of the formset from the stored definitions (positions renumbered 1, 2, ...)."""
    return [
        {
            "name": p.name,
            "label": p.label,
            "help_text": p.help_text,
            "type": p.type,
            "required": p.required,
            "default": p.default,
            "choices": list(p.choices) if isinstance(p.choices, list) else [],
            "pattern": p.pattern,
            "secret": p.secret,
            "position": index + 1,
        }
        for index, p in enumerate(parameters)
    ]


class CurationImportForm(forms.Form):
    """An exported curation document, uploaded as a file or pasted."""

    file = forms.FileField(required=False, label="Curation file (.json)")
    text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 12}), label="…or paste its JSON"
    )
    replace_all = forms.BooleanField(
        required=False,
        label="Replace all",
        help_text="Workflows not in the document lose their curation and parameter definitions. "
        "Unticked, they keep them.",
    )

    def clean(self) -> dict[str, Any]:
        """Exactly one source, within the size limit."""
        cleaned = super().clean() or {}
        upload: UploadedFile | None = cleaned.get("file")
        text = cleaned.get("text") or ""
        if upload is None and not text.strip():
            raise forms.ValidationError("Choose a curation file or paste its JSON.")
        if upload is not None and text.strip():
            raise forms.ValidationError("Give either a file or pasted JSON, not both.")
        if upload is not None and (upload.size or 0) > MAX_DOCUMENT_BYTES:
            self.add_error("file", f"The file is larger than {MAX_DOCUMENT_BYTES // 2**20} MB.")
        return cleaned

    def document(self) -> bytes | str:
        """The document's raw content: bytes from a file (decoded by the import), or the text."""
        upload: UploadedFile | None = self.cleaned_data.get("file")
        if upload is not None:
            return b"".join(upload.chunks())
        return str(self.cleaned_data["text"])


class SelfServiceSettingsForm(forms.Form):
    """What employees are offered beside the fixes: the "contact the helpdesk" link."""

    helpdesk_url = forms.CharField(
        label=PortalSettings._meta.get_field("helpdesk_url").verbose_name.capitalize(),
        required=False,
        max_length=MAX_URL_LENGTH,
        help_text="Offered to employees when a fix did not work: an https:// address or "
        "mailto:helpdesk@example.com. Empty: no link.",
        widget=forms.TextInput(attrs={"placeholder": "https://helpdesk.example.com/new"}),
    )

    def clean_helpdesk_url(self) -> str:
        value = str(self.cleaned_data.get("helpdesk_url") or "").strip()
        problem = helpdesk_url_problem(value)
        if problem is not None:
            raise forms.ValidationError(problem)
        return value
