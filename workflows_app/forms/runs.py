"""The helpdesk run form: targets pasted or uploaded, the workflow's parameters, a reason."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from workflows_app import targets as targets_mod
from workflows_app.models import ParameterDefinition, Workflow
from workflows_app.nexthink.models import Dependency
from workflows_app.services.params import MAX_VALUE_LENGTH, definitions, is_true, validate_params
from workflows_app.targets import (
    MAX_TARGETS_PER_RUN,
    LineError,
    ParsedTargets,
    Target,
    TargetKind,
    too_many_targets,
)

PARAM_PREFIX = "param_"
MAX_SHOWN_ERRORS = 200
# 100,000 lines of the longest device names (255 characters) with a prefix, and some slack.
MAX_UPLOAD_BYTES = 32 * 1024 * 1024

KIND_LABELS: dict[str, str] = {
    TargetKind.DEVICE_COLLECTOR: "Collector UUID",
    TargetKind.DEVICE_UID: "Device UID",
    TargetKind.DEVICE_NAME: "Device name",
    TargetKind.USER_SID: "User SID",
    TargetKind.USER_UPN: "User UPN",
    TargetKind.USER_UID: "User UID",
    TargetKind.DEVICE_CLASSIC_UID: "Classic device UID",
}

TARGETS_HELP = (
    "One per line: Collector UUID, SID, UPN or device name. The prefixes uid:, name:, "
    "collector:, sid:, upn: settle ambiguity (for example name:3fa85f64 for a device named so)."
)


CLASSIC_TARGETS_HELP = (
    "One classic device UID per line: 32 hexadecimal digits (NXQL device_uid), like "
    f"{targets_mod.EXAMPLE_CLASSIC_UID}; the uid: prefix is accepted. Device names cannot be used."
)


@dataclass(frozen=True)
class _Source:
    """One place targets came from: the text box or the uploaded file."""

    field: str
    label: str
    parsed: ParsedTargets


class RunForm(forms.Form):
    """What a helpdesk agent gives to run one workflow; `clean` checks it all at once."""

    targets_text = forms.CharField(
        label="Targets",
        required=False,
        strip=False,  # leading blank lines must keep the line numbers errors refer to
        help_text=TARGETS_HELP,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "autocomplete": "off"}),
    )
    targets_file = forms.FileField(
        label="…or upload a file",
        required=False,
        help_text=(
            f"CSV or text, UTF-8, up to {MAX_TARGETS_PER_RUN:,} lines. A CSV may have one column "
            "of any targets, or named columns: " + ", ".join(targets_mod.COLUMNS) + "."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv,text/plain"}),
    )
    reason = forms.CharField(
        label="Ticket reference or reason",
        required=False,
        max_length=500,
        help_text="Shown in the run's history, e.g. INC0012345: Outlook keeps crashing.",
    )

    # "Run again" on a run's page: that run's id, carried to the confirmation (the view checks
    # it is a run of this workflow the person may open); the double-click guard then steps aside.
    again = forms.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput
    )

    def __init__(self, workflow: Workflow, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workflow = workflow
        self.param_definitions: dict[str, ParameterDefinition] = {}
        for definition in definitions(workflow):
            name = PARAM_PREFIX + definition.name
            self.fields[name] = parameter_field(definition)
            self.param_definitions[name] = definition
        self.classic = workflow.is_remote_action
        if self.classic:
            self.fields["targets_text"].help_text = CLASSIC_TARGETS_HELP
        self.targets: list[Target] = []
        self.duplicates = 0
        self.params: dict[str, str] = {}

    def param_fields(self) -> list[forms.BoundField]:
        """The bound parameter fields, in the curated order."""
        return [self[name] for name in self.param_definitions]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self._clean_targets(cleaned)
        self._clean_params(cleaned)
        self._refuse_unknown_params()
        return cleaned

    def _refuse_unknown_params(self) -> None:
        """A parameter this workflow does not define is refused by name, never silently dropped."""
        unknown = sorted(
            key[len(PARAM_PREFIX) :]
            for key in self.data
            if key.startswith(PARAM_PREFIX) and key not in self.param_definitions
        )
        if unknown:
            known = ", ".join(d.name for d in self.param_definitions.values()) or "none"
            self.add_error(
                None,
                f"Unknown parameter(s): {', '.join(unknown)[:300]}. This workflow takes: {known}.",
            )

    # --- targets -----------------------------------------------------------------------------

    def _clean_targets(self, cleaned: dict[str, Any]) -> None:
        """Parse the text and/or the file, merge them, report every bad line and the rest."""
        sources = self._sources(cleaned)
        if sources is None:
            return
        several = len(sources) > 1
        shown = more = 0
        for source in sources:
            messages: list[str] = []
            for error in source.parsed.errors:
                if _is_empty_notice(error, source.parsed):
                    continue  # said once below, about all sources together
                if shown < MAX_SHOWN_ERRORS:
                    messages.append(describe_error(error, source.label if several else ""))
                    shown += 1
                else:
                    more += 1
            more += source.parsed.errors_truncated
            if messages:
                self.add_error(source.field, ValidationError(messages))
        if more:
            self.add_error(None, f"…and {more:,} more line{'s' if more != 1 else ''} with errors.")
        if shown or more:
            return

        merged, duplicates = merge_targets([s.parsed for s in sources])
        self.duplicates = duplicates
        dependency = str(self.workflow.dependency).upper()
        if not merged and dependency != Dependency.NONE:
            self.add_error(None, "Enter at least one target, or upload a file of them.")
            return
        if len(merged) > MAX_TARGETS_PER_RUN:
            # Each source alone was within the limit (the parser says so otherwise), not together.
            self.add_error(None, too_many_targets(len(merged)))
            return
        problems = targets_mod.check_dependency(merged, dependency)
        if problems:
            self.add_error(None, ValidationError(problems))
            return
        self.targets = merged

    def _sources(self, cleaned: dict[str, Any]) -> list[_Source] | None:
        """The parsed text and file, or None when the file cannot even be read."""
        sources: list[_Source] = []
        text = cleaned.get("targets_text") or ""
        if text.strip():
            parsed_text = targets_mod.parse_text(text, classic=self.classic)
            sources.append(_Source("targets_text", "Pasted list", parsed_text))
        upload: UploadedFile | None = cleaned.get("targets_file")
        if upload:
            if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
                self.add_error(
                    "targets_file",
                    f"The file is {upload.size / 1024 / 1024:.0f} MB; at most "
                    f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB can be read. Split it into several "
                    "runs.",
                )
                return None
            name = upload.name or "upload.txt"
            parsed = targets_mod.parse_upload(upload.read(), name, classic=self.classic)
            sources.append(_Source("targets_file", f"File {name}", parsed))
        return sources

    # --- parameters --------------------------------------------------------------------------

    def _clean_params(self, cleaned: dict[str, Any]) -> None:
        """Check the values with the service's rules; its errors land on their fields."""
        submitted: dict[str, str] = {}
        for field_name, definition in self.param_definitions.items():
            if field_name in self.errors:
                continue  # already refused by the field itself; do not say "required" twice
            submitted[definition.name] = as_text(cleaned.get(field_name))
        clean, errors = validate_params(self.workflow, submitted)
        for name, message in errors.items():
            field_name = PARAM_PREFIX + name
            if field_name in self.errors:
                continue
            self.add_error(field_name if field_name in self.fields else None, message)
        self.params = clean


def parameter_field(definition: ParameterDefinition) -> forms.Field:
    """A typed form field for one curated parameter."""
    label = definition.label or definition.name
    required = definition.required and not definition.default
    common: dict[str, Any] = {
        "label": label,
        "help_text": definition.help_text,
        "required": required,
    }
    if definition.secret:  # Django's own message quotes the value: "Select a valid choice. x is…"
        common["error_messages"] = {"invalid_choice": f"{label}: pick one of the values offered."}
    kind = definition.type
    if kind == ParameterDefinition.Type.BOOLEAN:
        initial = "true" if is_true(definition.default) else "false"
        return forms.ChoiceField(
            choices=[("true", "Yes"), ("false", "No")], initial=initial, **common
        )
    if kind == ParameterDefinition.Type.CHOICE:
        choices = choice_options(definition.choices)
        if not required:
            choices = [("", "—"), *choices]
        return forms.ChoiceField(choices=choices, initial=definition.default or None, **common)
    if kind == ParameterDefinition.Type.NUMBER and not definition.secret:
        return forms.DecimalField(
            initial=definition.default or None,
            widget=forms.NumberInput(attrs={"step": "any"}),
            **common,
        )
    # The pattern is checked by validate_params (under a time limit), not by a field validator.
    if definition.secret:
        # Never echoed back: not on a re-rendered form, not as a default.
        return forms.CharField(
            max_length=MAX_VALUE_LENGTH,
            strip=False,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
            **common,
        )
    return forms.CharField(
        max_length=MAX_VALUE_LENGTH,
        initial=definition.default or None,
        **common,
    )


def choice_options(choices: object) -> list[tuple[str, str]]:
    """(value, label) pairs of a choice parameter: strings, or objects with value/label keys."""
    if not isinstance(choices, list):
        return []
    options: list[tuple[str, str]] = []
    for choice in choices:
        if isinstance(choice, dict):
            value = str(choice.get("value", ""))
            options.append((value, str(choice.get("label") or value)))
        else:
            options.append((str(choice), str(choice)))
    return options


def as_text(value: object) -> str:
    """A cleaned field value as the text Nexthink takes."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def describe_error(error: LineError, source: str = "") -> str:
    """One error as the person reads it: 'Line 7: 'S-1-x' — not a valid SID: …'."""
    where = f"{source}, line" if source else "Line"
    if error.line is None:
        return f"{source}: {error.reason}" if source else error.reason
    if error.text:
        return f"{where} {error.line}: '{error.text}' — {error.reason}"
    return f"{where} {error.line}: {error.reason}"


def merge_targets(parsed: list[ParsedTargets]) -> tuple[list[Target], int]:
    """The targets of every source in order, duplicates across sources dropped and counted."""
    if len(parsed) == 1:
        return list(parsed[0].targets), parsed[0].duplicates
    seen: set[tuple[TargetKind, str]] = set()
    merged: list[Target] = []
    duplicates = sum(p.duplicates for p in parsed)
    for result in parsed:
        for target in result.targets:
            if target.key in seen:
                duplicates += 1
            else:
                seen.add(target.key)
                merged.append(target)
    return merged, duplicates


def _is_empty_notice(error: LineError, parsed: ParsedTargets) -> bool:
    """Whether this is the parser's own 'no targets' notice, which the form words itself."""
    return (
        error.line is None
        and not parsed.targets
        and not error.text
        and error.reason.startswith("No targets")
    )
