"""The form resuming a waiting execution: the workflow's curated parameters, or free rows.

The parameters a wait step expects are defined in Nexthink, not always in the portal: with
curated definitions the form asks for those (typed, secrets as password inputs, checked like
the run form's); without, it offers name/value rows, a few blank ones and more on request (a
submit button, so it works without JavaScript). Secret values are never rendered back.
"""

from __future__ import annotations

from typing import Any

from django import forms

from workflows_app.forms.runs import PARAM_PREFIX, as_text, parameter_field
from workflows_app.models import ParameterDefinition, Workflow
from workflows_app.services.params import MAX_VALUE_LENGTH, definitions, validate_params
from workflows_app.services.resume import MAX_NAME_LENGTH

FREE_ROWS = 3
MAX_FREE_ROWS = 20
ADD_ROW = "add_row"


class ResumeForm(forms.Form):
    """The parameters sent with a resumption; `params()` and `secret_names()` once valid."""

    def __init__(
        self,
        workflow: Workflow,
        data: Any = None,
        *,
        more_rows: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        self.workflow = workflow
        self.definitions: list[ParameterDefinition] = definitions(workflow)
        self._params: dict[str, str] = {}
        self._secret: set[str] = set()
        self.row_count = 0
        if self.definitions:
            for definition in self.definitions:
                self.fields[PARAM_PREFIX + definition.name] = parameter_field(definition)
            return
        # The page says how many rows it had (a hidden `rows` input), so none is lost.
        self.row_count = min(_requested_rows(data) + (1 if more_rows else 0), MAX_FREE_ROWS)
        for index in range(self.row_count):
            self._add_row(index, data)

    @property
    def curated(self) -> bool:
        """Whether the form asks for the workflow's curated parameters (else free rows)."""
        return bool(self.definitions)

    @property
    def can_add_row(self) -> bool:
        return not self.curated and self.row_count < MAX_FREE_ROWS

    def _add_row(self, index: int, data: Any) -> None:
        secret = data is not None and bool(data.get(f"secret_{index}"))
        row = index + 1
        self.fields[f"name_{index}"] = forms.CharField(
            label=f"Name {row}",
            required=False,
            max_length=MAX_NAME_LENGTH,
            widget=forms.TextInput(attrs={"aria-label": f"Name {row}"}),
        )
        value_attrs = {"aria-label": f"Value {row}", "autocomplete": "off"}
        self.fields[f"value_{index}"] = forms.CharField(
            label=f"Value {row}",
            required=False,
            strip=False,
            max_length=MAX_VALUE_LENGTH,
            # A value marked secret is never sent back to the page.
            widget=forms.PasswordInput(render_value=False, attrs=value_attrs)
            if secret
            else forms.TextInput(attrs=value_attrs),
        )
        self.fields[f"secret_{index}"] = forms.BooleanField(
            label="Secret", required=False, help_text="Stored masked in the portal's history."
        )

    def param_fields(self) -> list[forms.BoundField]:
        """The curated parameter fields, in order."""
        return [self[PARAM_PREFIX + d.name] for d in self.definitions]

    def free_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        """(name, value, secret) fields of each free row."""
        if self.curated:
            return []
        return [
            (self[f"name_{i}"], self[f"value_{i}"], self[f"secret_{i}"])
            for i in range(self.row_count)
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.curated:
            self._clean_curated(cleaned)
        else:
            self._clean_rows(cleaned)
        return cleaned

    def _clean_curated(self, cleaned: dict[str, Any]) -> None:
        submitted = {
            d.name: as_text(cleaned.get(PARAM_PREFIX + d.name))
            for d in self.definitions
            if PARAM_PREFIX + d.name not in self.errors
        }
        clean, errors = validate_params(self.workflow, submitted)
        for name, message in errors.items():
            field = PARAM_PREFIX + name
            if field not in self.errors:
                self.add_error(field if field in self.fields else None, message)
        self._params = clean
        self._secret = {d.name for d in self.definitions if d.secret}

    def _clean_rows(self, cleaned: dict[str, Any]) -> None:
        seen: dict[str, int] = {}
        for index in range(self.row_count):
            name = cleaned.get(f"name_{index}") or ""
            value = cleaned.get(f"value_{index}") or ""
            if f"name_{index}" in self.errors or f"value_{index}" in self.errors:
                continue
            if not name:
                if value:
                    self.add_error(f"name_{index}", "Give the name the wait step expects.")
                continue
            if name in seen:
                self.add_error(f"name_{index}", f"'{name}' is already row {seen[name] + 1}.")
                continue
            seen[name] = index
            self._params[name] = value
            if cleaned.get(f"secret_{index}"):
                self._secret.add(name)

    def params(self) -> dict[str, str]:
        """The parameters to send, by name (after `is_valid()`)."""
        return dict(self._params)

    def secret_names(self) -> set[str]:
        """Names whose values must be stored masked."""
        return set(self._secret)


def _requested_rows(data: Any) -> int:
    """How many free rows the page had (at least FREE_ROWS), from its hidden field."""
    raw = data.get("rows", "") if data is not None else ""
    raw = raw.strip() if isinstance(raw, str) else ""
    if raw.isascii() and raw.isdigit() and len(raw) < 4:
        return max(FREE_ROWS, int(raw))
    return FREE_ROWS
