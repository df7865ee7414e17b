"""A flow input's schema and rules: every problem at once, each with its JSON path.

The schema (pydantic) reads one flow input as seed 003's `FlowInput`; `flow_problems` applies
the rules the schema cannot (pure: the referrers are resolved by the caller). The API, the
import and the editor's form all go through `check_flow`, so no door accepts what another
refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows_app.services.flow_referrers import Referrer, normalise
from workflows_app.services.params import check_params

MAX_STEPS = 50
MAX_ID_LENGTH = 100
Strategy = Literal["stop", "continue"]
ExceptionType = Literal["failure", "partial_success"]
RunOn = Literal["all", "succeeded", "failed"]
DEFAULT_BEHAVIOR: dict[str, str] = {"failure": "stop", "partial_success": "continue"}
DEPENDENCY_WORDS = {
    "DEVICE": "devices only",
    "USER": "users only",
    "USER_AND_DEVICE": "a user and a device",
}


class _Strict(BaseModel):
    """No unknown keys (a typo is an error), no coercion of types."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ExceptionBehaviorIn(_Strict):
    """What happens to the flow when the step ends in this kind of exception."""

    type: ExceptionType
    strategy: Strategy


class FlowStepIn(_Strict):
    """One step of a flow input; `id` defaults to `name` and `name` to `id`."""

    id: str | None = Field(None, max_length=MAX_ID_LENGTH)
    name: str | None = Field(None, max_length=200)
    type: Literal["Integration"] = "Integration"
    referrer: str = Field(max_length=255)
    params: dict[str, str] = Field(default_factory=dict)
    depends_on: list[str] | None = None
    is_skipped: bool = False
    exception_behavior: list[ExceptionBehaviorIn] | None = None
    # Which targets the step runs on: all, or those that succeeded / failed upstream.
    run_on: RunOn = "all"


class FlowIn(_Strict):
    """A flow as people give it: a name and its steps (seed 003's FlowInput)."""

    name: str = Field(min_length=1, max_length=200)
    version: Literal["2.0"] = "2.0"
    type: Literal["IntegrationFlow"] = "IntegrationFlow"
    self_service: bool = False
    # Four-eyes: its runs wait for an approver ("" admins, or "Helpdesk": helpdesk and admins).
    requires_approval: bool = False
    approver_role: Literal["", "Helpdesk", "Admin"] = ""
    steps: list[FlowStepIn] = Field(min_length=1, max_length=MAX_STEPS)


def schema_errors(data: Any, at: str = "") -> tuple[FlowIn | None, list[str]]:
    """The typed flow input, or every schema error as `path: message`."""
    try:
        return FlowIn.model_validate(data), []
    except ValidationError as exc:
        return None, [f"{_path(at, e['loc'])}: {e['msg']}" for e in exc.errors()]


def nul_paths(data: Any, at: str = "") -> list[str]:
    """The paths of every text (key or value) holding a NUL character."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [(at, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            found.append(path or "flow")
        elif isinstance(value, dict):
            for key, item in value.items():
                name = str(key)
                where = f"{path}.{name}" if path else name
                if "\x00" in name:
                    found.append(where.replace("\x00", "\\u0000"))
                else:
                    stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return sorted(found)


def _path(at: str, loc: Sequence[str | int]) -> str:
    path = at
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "flow"


def step_id(step: FlowStepIn) -> str:
    """A step's id: given, else its name."""
    return (step.id or step.name or "").strip()


def behavior(step: FlowStepIn) -> dict[str, str]:
    """The step's strategy for each exception type, defaults filled in."""
    chosen: dict[str, str] = {b.type: b.strategy for b in step.exception_behavior or []}
    return {**DEFAULT_BEHAVIOR, **chosen}


def flow_problems(flow: FlowIn, referrers: Mapping[str, Referrer], at: str = "") -> list[str]:
    """Every rule the flow breaks, in step order: `steps[2].depends_on[0]: ...`."""
    problems: list[str] = []
    first_at: dict[str, int] = {}
    ids = [step_id(s) for s in flow.steps]
    targeted: tuple[int, Referrer] | None = None
    for index, step in enumerate(flow.steps):
        where = f"{at + '.' if at else ''}steps[{index}]"
        sid = ids[index]
        if not sid:
            problems.append(f"{where}.name: give the step a name (its id defaults to it).")
        elif sid in first_at:
            problems.append(f"{where}.id: '{sid}' is already the id of steps[{first_at[sid]}].")
        else:
            first_at[sid] = index
        problems += _dependency_problems(where, sid, step.depends_on or [], set(ids))
        problems += _behavior_problems(where, step)
        if step.run_on != "all" and not step.depends_on:
            problems.append(
                f"{where}.run_on: only a step that depends on others can run on the targets "
                "that succeeded or failed before it."
            )
        found = referrers.get(normalise(step.referrer))
        if found is None:
            problems.append(f"{where}.referrer: no workflow '{step.referrer}' in the catalogue.")
            continue
        problems += _param_problems(where, found, step.params)
        if found.dependency not in DEPENDENCY_WORDS:
            problems.append(
                f"{where}.referrer: '{found.key}' takes no targets, and a flow runs every "
                "step on the flow's targets."
            )
        elif targeted is None:
            targeted = (index, found)
        elif found.dependency != targeted[1].dependency:
            first, other = targeted[1], targeted[0]
            problems.append(
                f"{where}.referrer: '{found.key}' runs on "
                f"{DEPENDENCY_WORDS[found.dependency]}, but steps[{other}] ('{first.key}') runs "
                f"on {DEPENDENCY_WORDS[first.dependency]}: no set of targets suits both."
            )
    problems += _cycle_problems(flow, ids, at)
    return problems


def _dependency_problems(where: str, sid: str, depends_on: list[str], ids: set[str]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for k, other in enumerate(depends_on):
        if other == sid and sid:
            problems.append(f"{where}.depends_on[{k}]: a step cannot depend on itself.")
        elif other not in ids:
            problems.append(f"{where}.depends_on[{k}]: no step '{other}' in this flow.")
        elif other in seen:
            problems.append(f"{where}.depends_on[{k}]: '{other}' is listed twice.")
        seen.add(other)
    return problems


def _behavior_problems(where: str, step: FlowStepIn) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for k, item in enumerate(step.exception_behavior or []):
        if item.type in seen:
            problems.append(
                f"{where}.exception_behavior[{k}]: '{item.type}' is given twice; give each "
                "exception type one strategy."
            )
        seen.add(item.type)
    return problems


def _param_problems(where: str, found: Referrer, params: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    secret = {p.name for p in found.parameters if p.secret}
    for name in params:
        if name in secret:
            problems.append(
                f"{where}.params.{name}: a secret value cannot be stored in a flow; "
                "give the parameter a non-secret definition or leave it out."
            )
    _, errors = check_params(found.parameters, {k: v for k, v in params.items() if k not in secret})
    problems += [f"{where}.params.{name}: {message}" for name, message in errors.items()]
    return problems


def _cycle_problems(flow: FlowIn, ids: list[str], at: str) -> list[str]:
    """Each cycle once, named by its steps in order, on the first of its steps in the flow."""
    order = {sid: i for i, sid in reversed(list(enumerate(ids))) if sid}
    edges = {
        sid: [d for d in (step.depends_on or []) if d in order and d != sid]
        for sid, step in zip(ids, flow.steps, strict=True)
        if sid
    }
    found: dict[tuple[str, ...], None] = {}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                found[tuple(cycle[start:] + cycle[:start])] = None
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for sid in sorted(edges, key=order.__getitem__):
        if sid not in state:
            visit(sid)
    prefix = f"{at}." if at else ""
    return [
        f"{prefix}steps[{order[cycle[0]]}].depends_on: a cycle: "
        + " → ".join([*cycle, cycle[0]])
        + " (each waits for the next to end, so none could ever start)."
        for cycle in found
    ]


def normalised_steps(flow: FlowIn) -> list[dict[str, Any]]:
    """The steps as a flow version stores them: every default filled in."""
    return [
        {
            "id": step_id(step),
            "name": (step.name or step_id(step)).strip(),
            "type": step.type,
            "referrer": normalise(step.referrer),
            "params": dict(step.params),
            "depends_on": list(step.depends_on or []),
            "is_skipped": step.is_skipped,
            "exception_behavior": [
                {"type": kind, "strategy": strategy} for kind, strategy in behavior(step).items()
            ],
            "run_on": step.run_on,
        }
        for step in flow.steps
    ]
