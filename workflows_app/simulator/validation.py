"""What the simulated tenant refuses in a request, and how its 400 details word it.

Whether a request conforms to the spec is decided by `workflows_app.simulator.spec`, the project's
one validator. Only what belongs to the simulator acting as Nexthink is here:
- two rules the spec states in prose but not in its schemas, which a tenant enforces and the portal
  relies on: each v2 device or user names at least one identifier, and an execute request targets
  at least one device or user;
- which spec problems a tenant does not answer 400 for (see `_NOT_400`);
- the wording (`query parameter nqlId is required`, `devices[0]: ...`), at most MAX_ERRORS of it.
"""

from __future__ import annotations

from typing import Any

from .replies import Incoming
from .spec import Operation, Problem, check_request

MAX_ERRORS = 20
_EXECUTE_V1, _EXECUTE_V2 = "executeEA", "executeEAWithExternalIds"
_NOT_400 = {
    "unknown": "a tenant ignores query parameters it does not know",
    "media": "routes answers 415 for a body of another media type, in its own words",
}


def _worded(problem: Problem) -> str:
    if problem.part == "body":
        return f"{problem.field or 'body'}: {problem.message}"
    label = f"{problem.part} parameter {problem.field}"
    return f"{label} is required" if problem.kind == "missing" else f"{label}: {problem.message}"


def _target_errors(op: Operation, body: Any) -> list[str]:
    """The execute rules the spec only states in prose (its schemas let both through)."""
    if op.operation_id not in (_EXECUTE_V1, _EXECUTE_V2) or not isinstance(body, dict):
        return []
    errors = []
    devices, users = body.get("devices"), body.get("users")
    named = {"devices": devices, "users": users} if op.operation_id == _EXECUTE_V2 else {}
    for field, entries in named.items():
        if isinstance(entries, list):
            errors += [
                f"{field}[{index}]: give at least one identifier"
                for index, entry in enumerate(entries)
                if entry == {}
            ]
    if isinstance(devices, list) and isinstance(users, list) and not devices and not users:
        errors.append("body: at least one of 'devices' or 'users' must be non-empty")
    return errors


def request_errors(op: Operation, request: Incoming) -> list[str]:
    """What the tenant refuses in a request for `op`, as its 400 details say it; [] if nothing."""
    problems = check_request(
        op, request.path_params, request.raw_body, request.headers, query=request.query
    )
    errors = [_worded(p) for p in problems if p.kind not in _NOT_400]
    errors += _target_errors(op, request.body)
    if len(errors) > MAX_ERRORS:
        errors = [*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more errors"]
    return errors
