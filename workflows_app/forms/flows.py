"""The flow editor's fields: one row per step, read into a flow input the services check.

It works without JavaScript: "Add step" posts the form back with one more empty row; rows
without a workflow are left out when it is saved. Every rule is the flow rules' own
(services/flow_rules.py), reported with its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 50
STRATEGIES = (("stop", "Stop the flow"), ("continue", "Continue"))
RUN_ON = (
    ("all", "All the flow's targets"),
    ("succeeded", "Targets that succeeded before"),
    ("failed", "Targets that failed before"),
)


@dataclass
class StepRow:
    """One step as the editor shows it: plain text fields."""

    id: str = ""
    referrer: str = ""
    params: str = ""  # Name=Value, one a line
    depends_on: str = ""  # ids, comma-separated
    on_failure: str = "stop"
    on_partial: str = "continue"
    run_on: str = "all"
    skipped: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.referrer.strip()


def rows_from_steps(steps: Sequence[Mapping[str, Any]]) -> list[StepRow]:
    """The editor's rows for a stored version's steps."""
    rows = []
    for s in steps:
        behaviour = {b["type"]: b["strategy"] for b in s["exception_behavior"]}
        rows.append(
            StepRow(
                id=s["id"],
                referrer=s["referrer"],
                params="\n".join(f"{k}={v}" for k, v in s["params"].items()),
                depends_on=", ".join(s["depends_on"]),
                on_failure=behaviour.get("failure", "stop"),
                on_partial=behaviour.get("partial_success", "continue"),
                run_on=s.get("run_on", "all"),
                skipped=bool(s["is_skipped"]),
            )
        )
    return rows


def rows_from_post(data: Mapping[str, Any]) -> list[StepRow]:
    """The rows a posted editor holds (`rows` says how many, at most MAX_ROWS)."""
    raw = str(data.get("rows", "0"))
    count = min(int(raw), MAX_ROWS) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 0
    rows = []
    for i in range(count):

        def value(name: str, default: str = "", i: int = i) -> str:
            return str(data.get(f"step-{i}-{name}", default)).strip()

        rows.append(
            StepRow(
                id=value("id"),
                referrer=value("referrer"),
                params=value("params"),
                depends_on=value("depends_on"),
                on_failure=value("on_failure", "stop"),
                on_partial=value("on_partial", "continue"),
                run_on=value("run_on", "all"),
                skipped=data.get(f"step-{i}-skipped") == "on",
            )
        )
    return rows


def flow_input(
    name: str,
    self_service: bool,
    rows: Sequence[StepRow],
    *,
    requires_approval: bool = False,
    approver_role: str = "",
) -> dict[str, Any]:
    """The flow input the rows describe (rows without a workflow left out)."""
    steps = []
    for row in rows:
        if row.empty:
            continue
        params: dict[str, str] = {}
        for line in row.params.splitlines():
            if line.strip():
                key, _, val = line.partition("=")
                params[key.strip()] = val.strip()
        steps.append(
            {
                "id": row.id or None,
                "name": row.id or None,
                "referrer": row.referrer,
                "params": params,
                "depends_on": [d.strip() for d in row.depends_on.split(",") if d.strip()],
                "is_skipped": row.skipped,
                "exception_behavior": [
                    {"type": "failure", "strategy": row.on_failure},
                    {"type": "partial_success", "strategy": row.on_partial},
                ],
                "run_on": row.run_on,
            }
        )
    return {
        "name": name,
        "self_service": self_service,
        "requires_approval": requires_approval,
        "approver_role": approver_role,
        "steps": steps,
    }


def attach_errors(rows: Sequence[StepRow], errors: Sequence[str]) -> list[str]:
    """Put each `steps[i]...` error on the row it concerns; return the others."""
    kept = [i for i, row in enumerate(rows) if not row.empty]
    general = []
    for error in errors:
        if error.startswith("steps[") and "]" in error:
            index = error[len("steps[") : error.index("]")]
            if index.isdigit() and int(index) < len(kept):
                rows[kept[int(index)]].errors.append(error)
                continue
        general.append(error)
    return general
