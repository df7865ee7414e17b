"""Helpers shared by the flow tests: catalogue rows, a flow built through the service, targets."""

from __future__ import annotations

import threading
from typing import Any

from django.db import connection

from workflows_app.models import (
    Batch,
    BatchState,
    Flow,
    FlowRun,
    FlowStepRun,
    Outcome,
    Run,
)
from workflows_app.models import Target as TargetRow
from workflows_app.services import flow_engine, flows, lifecycle
from workflows_app.services.flow_runs import start_flow_run
from workflows_app.targets import Target, TargetKind

# Four device workflows of the simulator's catalogue, one per step, so requests tell steps apart.
STEP_WORKFLOWS = {
    "clear": "#clear_teams_cache",
    "disk": "#free_up_disk_space",
    "spooler": "#restart_print_spooler",
    "network": "#reset_network_adapter",
    "logs": "#collect_diagnostics_logs",
}


def catalogue(sim_workflow: Any) -> None:
    for nql_id in STEP_WORKFLOWS.values():
        sim_workflow(nql_id)


def step(name: str, *depends_on: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "referrer": STEP_WORKFLOWS[name], "depends_on": list(depends_on), **more}


def make_flow(admin: Any, name: str, *steps: dict[str, Any]) -> Flow:
    return flows.create_flow(user=admin, data={"name": name, "steps": list(steps)})


def devices(*names: str) -> list[Target]:
    return [Target(TargetKind.DEVICE_NAME, n, i + 1) for i, n in enumerate(names)]


def run_flow(user: Any, flow: Flow, *names: str) -> FlowRun:
    return start_flow_run(
        user=user,
        flow=flow,
        targets=devices(*names),
        reason="flow test",
        source=Run.Source.HELPDESK,
    )


def steps_of(flow_run: FlowRun) -> dict[str, FlowStepRun]:
    return {
        s.step_id: s for s in FlowStepRun.objects.filter(flow_run=flow_run).select_related("run")
    }


def states(flow_run: FlowRun) -> dict[str, tuple[str, str]]:
    return {sid: (s.state, s.outcome) for sid, s in steps_of(flow_run).items()}


def end_run(run: Run | None, *, failing: tuple[str, ...] = ()) -> None:
    """What follow-up does when every execution ended: targets named in `failing` failed."""
    assert run is not None
    batch = Batch.objects.get(run=run)
    Batch.objects.filter(pk=batch.pk).update(state=BatchState.SUBMITTED)
    TargetRow.objects.filter(run=run).update(outcome=Outcome.SUCCESS)
    TargetRow.objects.filter(run=run, value__in=failing).update(outcome=Outcome.FAILURE)
    lifecycle.recount(batch.pk)
    lifecycle.refresh_run_status(run.pk)


def advances_at_once(flow_run: FlowRun, count: int = 4) -> list[flow_engine.AdvanceResult]:
    """Advance the flow run from `count` threads released together (each its own connection)."""
    barrier = threading.Barrier(count)
    results: list[flow_engine.AdvanceResult] = []

    def advance() -> None:
        barrier.wait()
        try:
            results.append(flow_engine.advance(flow_run.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=advance) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results
