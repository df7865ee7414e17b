"""Checking the parameters a person gives a workflow against the portal's definitions of them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from workflows_app.models import ParameterDefinition, Workflow
from workflows_app.services.param_patterns import PatternTimeout, PatternUnusable, fullmatch

MASK = "••••••"
MAX_VALUE_LENGTH = 4_000
_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n"})


def definitions(workflow: Workflow) -> list[ParameterDefinition]:
    """The workflow's parameter definitions in display order (the model's ordering).

    Read from the workflow's prefetched `parameters` when the caller prefetched them (a
    self-service click asks for them up to three times: one query instead of three).
    """
    return list(workflow.parameters.all())


def validate_params(
    workflow: Workflow, submitted: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Check submitted values: (clean values by Nexthink name, error message by name).

    Unknown names and missing required values are errors; defaults fill what was left out;
    booleans become "true"/"false"; numbers, choices and patterns are checked.
    """
    return check_params(definitions(workflow), submitted)


def check_params(
    defs: Sequence[ParameterDefinition], submitted: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """`validate_params` on definitions already read (a flow checks all its steps' at once)."""
    known = {d.name: d for d in defs}
    clean: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in submitted:
        if name not in known:
            accepted = ", ".join(known) or "none"
            errors[name] = f"Unknown parameter '{name}'. This workflow accepts: {accepted}."
    for definition in defs:
        raw = submitted.get(definition.name)
        outcome = _check_one(definition, raw)
        if isinstance(outcome, _Error):
            errors[definition.name] = outcome.message
        elif outcome is not None:
            clean[definition.name] = outcome
    return clean, errors


class _Error:
    """A reason a value was refused (kept apart from valid values, which are plain strings)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _check_one(definition: ParameterDefinition, raw: str | None) -> str | _Error | None:
    """One parameter's clean value, an error, or None when it is simply left out."""
    label = definition.label or definition.name
    value = "" if raw is None else str(raw)
    if not definition.secret:
        value = value.strip()
    if len(value) > MAX_VALUE_LENGTH:
        return _Error(f"{label}: at most {MAX_VALUE_LENGTH:,} characters.")
    # A secret's value never appears in a message: not in a form, nor the CLI, nor the API.
    shown = "" if definition.secret else f", not '{value}'"
    if definition.type == ParameterDefinition.Type.BOOLEAN:
        return _check_boolean(label, value or definition.default, secret=definition.secret)
    if not value.strip():
        value = definition.default
        if not value:
            return _Error(f"{label} is required.") if definition.required else None
    if definition.type == ParameterDefinition.Type.NUMBER and not is_number(value):
        return _Error(f"{label} must be a number{shown}.")
    if definition.type == ParameterDefinition.Type.CHOICE:
        options = _choice_values(definition.choices)
        if value not in options:
            return _Error(f"{label} must be one of: {', '.join(options)}.")
    if definition.pattern:
        return _check_pattern(label, definition.pattern, value)
    return value


def _check_pattern(label: str, pattern: str, value: str) -> str | _Error:
    """The value if it matches the admin's pattern in time; else why not (never the value)."""
    try:
        matched = fullmatch(pattern, value)
    except PatternUnusable:
        return _Error(
            f"{label} cannot be checked: its pattern is invalid. Ask an admin to fix the "
            "parameter definition."
        )
    except PatternTimeout:
        return _Error(
            f"{label} could not be checked in time: its pattern ({pattern}) is too complex. "
            "Ask an admin to simplify the parameter definition."
        )
    if not matched:
        return _Error(f"{label} does not have the expected format ({pattern}).")
    return value


def _check_boolean(label: str, value: str, *, secret: bool = False) -> str | _Error:
    """A yes/no value as Nexthink takes it; an unticked box (empty) means "false"."""
    lowered = value.strip().lower()
    if is_true(lowered):
        return "true"
    if lowered in _FALSE or not lowered:
        return "false"
    shown = "" if secret else f", not '{value}'"
    return _Error(f"{label} must be true or false{shown}.")


def is_true(value: str) -> bool:
    """Whether a yes/no text says yes ("true", "yes", "on", "1", "y"; any case)."""
    return value.strip().lower() in _TRUE


def is_number(value: str) -> bool:
    """Whether the text is a finite decimal number: what a number parameter (or default) takes.

    float() reads neither hexadecimal ("0x1A") nor infinities as finite numbers.
    """
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _choice_values(choices: object) -> list[str]:
    """The allowed values of a choice parameter: strings, or objects with a "value" key."""
    if not isinstance(choices, list):
        return []
    values: list[str] = []
    for choice in choices:
        if isinstance(choice, dict):
            values.append(str(choice.get("value", "")))
        else:
            values.append(str(choice))
    return values


def secret_names(workflow: Workflow) -> set[str]:
    """Names of the workflow's parameters whose values must never be stored in clear."""
    return {d.name for d in definitions(workflow) if d.secret}


def split_secrets(
    workflow: Workflow, clean: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Split clean values into (values that may be stored, secret values to encrypt)."""
    secret = secret_names(workflow)
    public = {k: v for k, v in clean.items() if k not in secret}
    hidden = {k: v for k, v in clean.items() if k in secret}
    return public, hidden


def mask_params(workflow: Workflow, clean: Mapping[str, str]) -> dict[str, str]:
    """The values as they may be shown and stored: each secret replaced by a mask."""
    secret = secret_names(workflow)
    return {k: (MASK if k in secret else v) for k, v in clean.items()}
