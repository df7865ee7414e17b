"""Advancing a flow run: end the steps whose run became final, apply their exception behaviour,
start the steps whose dependencies all ended, mark the rest not started with the reason.

`advance` is the only writer of a flow run's steps. It runs in one transaction under the flow
run's row lock, and every step moves by a conditional UPDATE whose row count is checked (the
claim-then-act discipline of batches): a worker dying mid-advance rolls everything back, and
whoever advances next (the hook when a step's run becomes final, or the beat sweep) starts from
the same place. A step's run is created in the same transaction as its claim, so a step is never
started twice and never lost. The advance that finds the flow run final publishes
flow_run.ended (services/notifications.py), once: `FlowRun.end_published_at` is claimed by a
conditional UPDATE in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workflows_app import permissions
from workflows_app import targets as targets_mod
from workflows_app.models import (
    FlowRun,
    FlowRunStatus,
    FlowStepRun,
    Outcome,
    Run,
    RunStatus,
    StepOutcome,
    StepState,
    Target,
)
from workflows_app.services import runs as run_service
from workflows_app.services.flow_referrers import resolve
from workflows_app.services.notifications import FlowEvent, publish_flow_run

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 200
OUTCOME_OF_RUN = {
    RunStatus.SUCCEEDED: StepOutcome.SUCCESS,
    RunStatus.PARTIAL: StepOutcome.PARTIAL_SUCCESS,
    RunStatus.FAILED: StepOutcome.FAILURE,
    RunStatus.UNKNOWN: StepOutcome.FAILURE,
}
EXCEPTION_OF = {StepOutcome.FAILURE: "failure", StepOutcome.PARTIAL_SUCCESS: "partial_success"}
EXCEPTION_WORDS = {"failure": "failed", "partial_success": "partly failed"}


@dataclass
class AdvanceResult:
    """What one advance did: steps ended, started, not started; whether the flow run ended."""

    ended: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    finished: bool = False


def advance(flow_run_id: int, *, skip_locked: bool = False) -> AdvanceResult:
    """Move a flow run as far as its steps' runs allow; safe to call any number of times."""
    result = AdvanceResult()
    with transaction.atomic():
        locked = FlowRun.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        flow_run = (
            locked.select_related("flow", "flow_version", "created_by")
            .filter(pk=flow_run_id)
            .first()
        )
        # A flow run awaiting approval starts nothing until approved (services/approvals.py).
        waiting = flow_run is not None and flow_run.status == FlowRunStatus.AWAITING_APPROVAL
        if flow_run is None or flow_run.is_final or waiting:
            return result
        definitions = {s["id"]: s for s in flow_run.flow_version.steps}
        rows = {r.step_id: r for r in flow_run.steps.select_related("run").order_by("position")}
        _end_finished_steps(rows, result)
        if not flow_run.stop_reason:
            flow_run.stop_reason = _stop_reason(rows, definitions)
        changed = True
        while changed:
            changed = False
            for row in rows.values():
                if row.state != StepState.PENDING:
                    continue
                why = flow_run.stop_reason or _blocked(definitions[row.step_id], rows)
                if why:
                    changed |= _move(row, StepState.NOT_STARTED, reason=why[:500])
                    result.not_started.append(row.step_id)
                elif _ready(definitions[row.step_id], rows):
                    changed |= _start(flow_run, row, definitions[row.step_id], rows, result)
                    if not flow_run.stop_reason:
                        flow_run.stop_reason = _stop_reason(rows, definitions)
        _finish(flow_run, rows, result)
    return result


def _move(row: FlowStepRun, state: StepState, **fields: Any) -> bool:
    """One conditional move of a step from the state it was read in; False if it had moved."""
    now = timezone.now()
    if state in (StepState.ENDED, StepState.NOT_STARTED):
        fields.setdefault("ended_at", now)
    if state == StepState.STARTED:
        fields.setdefault("started_at", now)
    moved = FlowStepRun.objects.filter(pk=row.pk, state=row.state).update(state=state, **fields)
    if moved != 1:
        raise RuntimeError(f"step {row.step_id} of flow run {row.flow_run_id} moved under its lock")
    row.state = state
    for name, value in fields.items():
        setattr(row, name, value)
    return True


def _end_finished_steps(rows: dict[str, FlowStepRun], result: AdvanceResult) -> None:
    for row in rows.values():
        if row.state != StepState.STARTED:
            continue
        run = row.run
        if run is None:  # removed by retention while the flow waited: nothing is known
            _move(row, StepState.ENDED, outcome=StepOutcome.FAILURE, reason="Its run was removed.")
        elif run.is_final:
            _move(row, StepState.ENDED, outcome=OUTCOME_OF_RUN[RunStatus(run.status)])
        else:
            continue
        result.ended.append(row.step_id)


def _stop_reason(rows: dict[str, FlowStepRun], definitions: dict[str, dict[str, Any]]) -> str:
    """Why the flow stops, if a step ended in an exception its behaviour says to stop on."""
    for row in rows.values():
        kind = EXCEPTION_OF.get(StepOutcome(row.outcome)) if row.outcome else None
        if row.state != StepState.ENDED or kind is None:
            continue
        strategies = {
            b["type"]: b["strategy"] for b in definitions[row.step_id]["exception_behavior"]
        }
        if strategies.get(kind) == "stop":
            return (
                f"Step '{row.step_id}' {EXCEPTION_WORDS[kind]} and its behaviour on "
                f"{kind.replace('_', ' ')} is to stop the flow."
            )
    return ""


def _blocked(step: dict[str, Any], rows: dict[str, FlowStepRun]) -> str:
    for dep in step["depends_on"]:
        if rows[dep].state == StepState.NOT_STARTED:
            return f"Step '{dep}', which it depends on, was not started."
    return ""


def _ready(step: dict[str, Any], rows: dict[str, FlowStepRun]) -> bool:
    return all(rows[d].state in (StepState.ENDED, StepState.SKIPPED) for d in step["depends_on"])


def _start(
    flow_run: FlowRun,
    row: FlowStepRun,
    step: dict[str, Any],
    rows: dict[str, FlowStepRun],
    result: AdvanceResult,
) -> bool:
    """Claim the step and create its run; a step that cannot be sent ends as a failure."""
    targets = _targets_for(flow_run, step, rows)
    if not targets:
        upstream = "succeeded" if step["run_on"] == "succeeded" else "failed"
        reason = f"No target {upstream} in the steps it depends on, and it runs on those only."
        result.not_started.append(row.step_id)
        return _move(row, StepState.NOT_STARTED, reason=reason)
    referrer = resolve([step["referrer"]]).get(step["referrer"])
    try:
        if referrer is None or referrer.workflow is None:
            raise run_service.RunRefused(f"'{step['referrer']}' is no longer in the catalogue.")
        permit = permissions.permit_flow_step(
            flow_run.created_by,
            referrer.workflow,
            Run.Source(flow_run.source),
            offered_flow=flow_run.flow.self_service,
        )
        with transaction.atomic():  # a refused run leaves nothing behind but the step's end
            run = run_service.create_permitted_run(
                permit,
                targets=targets,
                params=step["params"],
                reason=f"Flow run {flow_run.pk}, step '{row.step_id}'"
                + (f": {flow_run.reason}" if flow_run.reason else ""),
                allow_duplicate=True,
                # The flow run was approved as a whole, or needed no approval (flow_runs.py).
                approved=True,
            )
    except (permissions.Refusal, run_service.RunRefused) as exc:
        reason = f"It could not be sent: {exc}"[:500]
        result.ended.append(row.step_id)
        return _move(row, StepState.ENDED, outcome=StepOutcome.FAILURE, reason=reason)
    _move(row, StepState.STARTED, run=run)
    result.started.append(row.step_id)
    return True


def _targets_for(
    flow_run: FlowRun, step: dict[str, Any], rows: dict[str, FlowStepRun]
) -> list[targets_mod.Target]:
    """The flow's targets, or only those that succeeded (failed) in every (any) dependency."""
    everyone = targets_mod.from_session_text(flow_run.targets)
    if step["run_on"] == "all":
        return everyone
    ran = [rows[d] for d in step["depends_on"] if rows[d].state == StepState.ENDED]
    succeeded_in: list[set[tuple[str, str]]] = []
    for dep in ran:
        if dep.run_id is None:
            succeeded_in.append(set())
            continue
        succeeded_in.append(
            set(
                Target.objects.filter(run_id=dep.run_id, outcome=Outcome.SUCCESS).values_list(
                    "kind", "value"
                )
            )
        )

    def succeeded(t: targets_mod.Target) -> bool:
        return all((t.kind.value, t.value) in done for done in succeeded_in)

    wanted = step["run_on"] == "succeeded"
    return [t for t in everyone if succeeded(t) == wanted]


def _finish(flow_run: FlowRun, rows: dict[str, FlowStepRun], result: AdvanceResult) -> None:
    """Store the flow run's state; when no step can change any more, its final status, and
    publish flow_run.ended the first time it becomes final."""
    now = timezone.now()
    flow_run.advanced_at = now
    fields = ["advanced_at", "stop_reason"]
    open_states = (StepState.PENDING, StepState.STARTED)
    if not any(r.state in open_states for r in rows.values()):
        flow_run.status = _final_status(flow_run, rows)
        flow_run.finished_at = now
        fields += ["status", "finished_at"]
        result.finished = True
    flow_run.save(update_fields=fields)
    if result.finished:
        _publish_end(flow_run, rows, now)


def _publish_end(flow_run: FlowRun, rows: dict[str, FlowStepRun], now: datetime) -> None:
    """Publish flow_run.ended once: the conditional UPDATE commits with the final status, so
    an advance racing this one (or a later one) finds it set and publishes nothing."""
    claimed = FlowRun.objects.filter(pk=flow_run.pk, end_published_at__isnull=True).update(
        end_published_at=now
    )
    if claimed:
        publish_flow_run(
            flow_run.pk,
            FlowEvent.ENDED,
            status=str(flow_run.status),
            steps={row.step_id: row.status_word for row in rows.values()},
        )


def _final_status(flow_run: FlowRun, rows: dict[str, FlowStepRun]) -> FlowRunStatus:
    if flow_run.stop_reason:
        return FlowRunStatus.STOPPED
    ran = [r for r in rows.values() if r.state != StepState.SKIPPED]
    if all(r.outcome == StepOutcome.SUCCESS for r in ran):
        return FlowRunStatus.SUCCEEDED
    if any(r.outcome in (StepOutcome.SUCCESS, StepOutcome.PARTIAL_SUCCESS) for r in ran):
        return FlowRunStatus.PARTIAL
    return FlowRunStatus.FAILED


def sweep(limit: int = SWEEP_LIMIT) -> list[int]:
    """Beat: advance flow runs still in progress (a lost message never loses a flow's place)."""
    due = list(
        FlowRun.objects.filter(status=FlowRunStatus.IN_PROGRESS)
        .order_by(F("advanced_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:limit]
    )
    moved: list[int] = []
    for flow_run_id in due:
        result = advance(flow_run_id, skip_locked=True)
        if result.ended or result.started or result.not_started or result.finished:
            moved.append(flow_run_id)
    if moved:
        logger.info("Flow sweep advanced flow runs %s", moved)
    return moved
