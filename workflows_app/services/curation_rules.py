"""The curation rules, shared by the JSON import and the admin's edit form.

Each check takes plain values and returns `Problem`s naming the field they concern, so the
import can turn them into JSON paths (`workflows[3].parameters[1].default: ...`) and the form
can attach them to its fields. One set of rules means an admin can never save through one door
what the other would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from workflows_app.models import ParameterDefinition
from workflows_app.roles import ROLE_ORDER, Role
from workflows_app.services.param_patterns import PatternTimeout, fullmatch, pattern_problem
from workflows_app.services.params import is_number

PARAMETER_TYPES = tuple(ParameterDefinition.Type.values)
ROLE_NAMES = tuple(role.value for role in ROLE_ORDER)
BOOLEAN_DEFAULTS = ("true", "false")
# What the editor shows and saves at most; the import refuses more (one limit for both doors).
MAX_PARAMETERS = 100
MAX_CHOICE_LENGTH = ParameterDefinition._meta.get_field("default").max_length or 500
TOO_SLOW_MESSAGE = (
    "This pattern takes too long to check against the default or a choice: simplify it "
    "(alternatives that overlap, as in (a|aa)+, can backtrack for ever)."
)
# Nexthink matches parameter names exactly; blanks and control characters are always typos.
_BAD_NAME = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Problem:
    """One broken rule: the field it concerns, the list item if any, and what to do about it."""

    field: str
    message: str
    item: int | None = None

    @property
    def path(self) -> str:
        """The field as a JSON path relative to its object, e.g. `choices[2]`."""
        return self.field if self.item is None else f"{self.field}[{self.item}]"


class ParameterLike(Protocol):
    """What the checks read from a parameter definition (a document entry or form data)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def default(self) -> str: ...
    @property
    def choices(self) -> list[str]: ...
    @property
    def pattern(self) -> str: ...
    @property
    def secret(self) -> bool: ...


@dataclass
class ParameterSpec:
    """A parameter definition as plain values: what the form hands to the curation service."""

    name: str
    label: str = ""
    help_text: str = ""
    type: str = "text"
    required: bool = False
    default: str = ""
    choices: list[str] = field(default_factory=list)
    pattern: str = ""
    secret: bool = False


def parameter_problems(parameter: ParameterLike) -> list[Problem]:
    """Everything wrong with one parameter definition on its own."""
    problems: list[Problem] = []
    name = parameter.name
    if not name:
        problems.append(Problem("name", "A parameter needs the name Nexthink expects."))
    elif _BAD_NAME.search(name):
        problems.append(
            Problem(
                "name",
                f"'{name}' contains blanks or control characters; Nexthink "
                "matches the name exactly, so copy it from the workflow's definition.",
            )
        )
    problems += _choice_problems(parameter)
    pattern = ""
    if parameter.pattern:
        if parameter.type == ParameterDefinition.Type.BOOLEAN:
            problems.append(Problem("pattern", "Yes / no parameters take no pattern."))
        elif (problem := pattern_problem(parameter.pattern)) is not None:
            problems.append(Problem("pattern", problem))
        elif any(_too_slow(parameter.pattern, v) for v in [*parameter.choices, parameter.default]):
            problems.append(Problem("pattern", TOO_SLOW_MESSAGE))
        else:
            pattern = parameter.pattern
    if pattern and parameter.type == ParameterDefinition.Type.CHOICE:
        for index, choice in enumerate(parameter.choices):
            if choice and not _matches(pattern, choice):
                problems.append(
                    Problem(
                        "choices",
                        f"Choice '{choice}' does not match the pattern "
                        f"{parameter.pattern}, so nobody could pick it.",
                        index,
                    )
                )
    problems += _default_problems(parameter, pattern)
    return problems


def _choice_problems(parameter: ParameterLike) -> list[Problem]:
    """Choices exist exactly for choice parameters, each non-empty and listed once."""
    if parameter.type != ParameterDefinition.Type.CHOICE:
        if parameter.choices:
            return [
                Problem(
                    "choices",
                    "Only choice parameters take choices: clear them or change the type to choice.",
                )
            ]
        return []
    if not parameter.choices:
        return [Problem("choices", "A choice parameter needs at least one choice.")]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, choice in enumerate(parameter.choices):
        if not choice.strip():
            problems.append(Problem("choices", "A choice cannot be empty.", index))
        elif len(choice) > MAX_CHOICE_LENGTH:
            problems.append(
                Problem("choices", f"A choice has at most {MAX_CHOICE_LENGTH} characters.", index)
            )
        elif choice in seen:
            problems.append(Problem("choices", f"'{choice}' is listed twice.", index))
        seen.add(choice)
    return problems


def _too_slow(pattern: str, value: str) -> bool:
    """Whether matching this value against the pattern runs past the matcher's time limit."""
    if not value:
        return False
    try:
        fullmatch(pattern, value)
    except PatternTimeout:
        return True
    return False


def _matches(pattern: str, value: str) -> bool:
    """Whether a value matches a pattern that passed `pattern_problem`; too slow counts as no."""
    try:
        return fullmatch(pattern, value)
    except PatternTimeout:
        return False


def _default_problems(parameter: ParameterLike, pattern: str) -> list[Problem]:
    """A default must be a value the run form itself would accept (`pattern`: usable, or "")."""
    default = parameter.default
    if not default:
        return []
    if parameter.secret:
        return [
            Problem(
                "default",
                "A secret parameter cannot have a default: secret values "
                "are never stored in the curation (nor in its exports).",
            )
        ]
    kind = parameter.type
    if kind == ParameterDefinition.Type.BOOLEAN and default not in BOOLEAN_DEFAULTS:
        return [Problem("default", f"A yes / no default is 'true' or 'false', not '{default}'.")]
    if kind == ParameterDefinition.Type.NUMBER and not is_number(default):
        return [Problem("default", f"Default '{default}' is not a number.")]
    if kind == ParameterDefinition.Type.CHOICE and default not in parameter.choices:
        listed = ", ".join(parameter.choices) or "none"
        return [Problem("default", f"Default '{default}' is not one of the choices ({listed}).")]
    if pattern and not _matches(pattern, default):
        return [
            Problem(
                "default", f"Default '{default}' does not match the pattern {parameter.pattern}."
            )
        ]
    return []


def parameter_set_problems(names: Sequence[str]) -> list[tuple[int, Problem]]:
    """Problems across one workflow's parameters (by index): each name may appear only once."""
    problems: list[tuple[int, Problem]] = []
    first_seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue
        if name in first_seen:
            message = f"'{name}' is already parameter {first_seen[name] + 1}; names must be unique."
            problems.append((index, Problem("name", message)))
        else:
            first_seen[name] = index
    return problems


def parameter_count_problems(count: int) -> list[Problem]:
    """More parameters than one workflow may have (what the editor could not show or save)."""
    if count <= MAX_PARAMETERS:
        return []
    return [
        Problem(
            "parameters",
            f"A workflow takes at most {MAX_PARAMETERS} parameters; this one has {count:,}: "
            f"remove {count - MAX_PARAMETERS:,}.",
        )
    ]


def curation_problems(*, self_service: bool, allowed_roles: Sequence[str]) -> list[Problem]:
    """Problems with who may run a workflow: known roles, each once, consistent with self-service.

    Employees only ever see self-service workflows, so "Employee" in the roles of a workflow
    that is not offered for self-service, or a self-service workflow whose roles leave Employee
    out, is a contradiction. An empty list means the default rule.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, role in enumerate(allowed_roles):
        if role not in ROLE_NAMES:
            problems.append(
                Problem("allowed_roles", f"Unknown role '{role}'; use {_or(ROLE_NAMES)}.", index)
            )
        elif role in seen:
            problems.append(Problem("allowed_roles", f"'{role}' is listed twice.", index))
        seen.add(role)
    employee = Role.EMPLOYEE.value
    if self_service and allowed_roles and employee not in allowed_roles:
        problems.append(
            Problem(
                "allowed_roles",
                "The workflow is offered for self-service but "
                "its roles leave Employee out: add Employee or list no roles.",
            )
        )
    if not self_service and employee in allowed_roles:
        problems.append(
            Problem(
                "allowed_roles",
                "Employees only ever see self-service workflows: "
                "offer it for self-service or remove Employee.",
            )
        )
    return problems


def resume_role_problems(resume_roles: Sequence[str]) -> list[Problem]:
    """Problems with who may resume a workflow's waiting executions: known roles, each once.

    Employees never resume (a wait step is someone else's approval), so Employee is refused. An
    empty list means the default rule: helpdesk and admins.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    allowed = tuple(name for name in ROLE_NAMES if name != Role.EMPLOYEE.value)
    for index, role in enumerate(resume_roles):
        if role == Role.EMPLOYEE.value:
            problems.append(
                Problem(
                    "resume_roles",
                    f"Employees cannot resume waiting executions; use {_or(allowed)}.",
                    index,
                )
            )
        elif role not in ROLE_NAMES:
            problems.append(
                Problem("resume_roles", f"Unknown role '{role}'; use {_or(allowed)}.", index)
            )
        elif role in seen:
            problems.append(Problem("resume_roles", f"'{role}' is listed twice.", index))
        seen.add(role)
    return problems


# Who may be named to approve an item's runs ("" is the default: admins). Admins always may.
APPROVER_ROLE_NAMES = ("", Role.HELPDESK.value, Role.ADMIN.value)


def approver_role_problems(approver_role: str) -> list[Problem]:
    """Problems with who approves an item's runs: empty (admins), Helpdesk or Admin."""
    if approver_role in APPROVER_ROLE_NAMES:
        return []
    named = _or(APPROVER_ROLE_NAMES[1:])
    message = f"Unknown approver role '{approver_role}'; use {named}, or leave it empty (admins)."
    return [Problem("approver_role", message)]


def _or(names: Sequence[str]) -> str:
    """'a, b or c'."""
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)
