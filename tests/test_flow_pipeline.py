"""Flows through the whole pipeline: a real worker and beat, PostgreSQL, Redis, the simulator over
HTTP. The simulator's record of execute requests is the ground truth: no step's request arrives
before every step it depends on has ended, independent steps overlap, a stopped flow sends
nothing more, and a worker killed mid-flow neither loses the flow's place nor sends a step twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from tests.celery_fixtures import BeatProcess, WorkerProcess, wait_until
from tests.flow_support import catalogue, make_flow, run_flow, states, step, steps_of
from workflows_app.models import Batch, BatchState, FlowRun, FlowRunStatus, Run
from workflows_app.roles import Role
from workflows_app.services import flow_engine
from workflows_app.services.sweeper import sweep

EXECUTE_PATHS = ["/api/v1/workflows/execute", "/api/v2/workflows/execute"]
OK, FAILING = "EMP-LT-0142", "FAIL-LT-0001"  # devices of the simulator's inventory


@pytest.fixture
def people(role_user: Any, sim_workflow: Any) -> tuple[Any, Any]:
    catalogue(sim_workflow)
    return role_user("boss", Role.ADMIN), role_user("agent", Role.HELPDESK)


@pytest.fixture
def in_flight(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of execute requests the simulator has fully received and holds (in order)."""
    seen: list[str] = []
    original = simulator.faults.latency

    def recording(path: str) -> float:
        delay = original(path)
        if path in EXECUTE_PATHS and delay:
            seen.append(path)
        return delay

    monkeypatch.setattr(simulator.faults, "latency", recording)
    return seen


def received(simulator: Any) -> dict[str, list[Any]]:
    """The execute requests the simulator accepted, by workflow NQL id."""
    found: dict[str, list[Any]] = {}
    for record in simulator.state.executions:
        found.setdefault(record.workflow_id, []).append(record)
    return found


def sent_names(record: Any) -> list[str]:
    return sorted(d["name"] for d in record.devices)


def ended_at(flow_run: FlowRun, step_id: str) -> datetime:
    run = steps_of(flow_run)[step_id].run
    assert run is not None and run.finished_at is not None
    return run.finished_at


def wait_final(
    flow_run: FlowRun, worker: WorkerProcess, beat: BeatProcess, timeout: float = 90
) -> FlowRun:
    def explain() -> str:
        rows = list(Batch.objects.values_list("run_id", "state", "outcome_counts"))
        return f"steps: {states(flow_run)}\nbatches: {rows}\n{worker.log_tail()}\n{beat.log_tail()}"

    wait_until(
        lambda: FlowRun.objects.get(pk=flow_run.pk).is_final,
        timeout=timeout,
        what=f"flow run {flow_run.pk} to end",
        explain=explain,
    )
    flow_run.refresh_from_db()
    return flow_run


def test_steps_run_in_dependency_order_and_independent_steps_in_parallel(
    celery_worker: WorkerProcess, celery_beat: BeatProcess, simulator: Any, people: Any
) -> None:
    admin, agent = people
    simulator.execution_seconds = 2.0
    flow = make_flow(
        admin,
        "Diamond",
        step("clear"),
        step("disk", "clear"),
        step("spooler", "clear"),
        step("logs", is_skipped=True),
        step("network", "disk", "spooler", "logs"),
    )
    flow_run = wait_final(run_flow(agent, flow, OK, "KIOSK-LOBBY-01"), celery_worker, celery_beat)

    assert flow_run.status == FlowRunStatus.SUCCEEDED
    assert states(flow_run) == {
        "clear": ("ended", "success"),
        "disk": ("ended", "success"),
        "spooler": ("ended", "success"),
        "logs": ("skipped", "success"),
        "network": ("ended", "success"),
    }
    by_workflow = received(simulator)
    assert Counter({k: len(v) for k, v in by_workflow.items()}) == Counter(
        {
            "#clear_teams_cache": 1,
            "#free_up_disk_space": 1,
            "#restart_print_spooler": 1,
            "#reset_network_adapter": 1,
        }
    )  # each step once; the skipped one never
    arrived = {k: v[0].received_at for k, v in by_workflow.items()}
    # No step reached Nexthink before every step it depends on had ended (outcomes known).
    assert arrived["#free_up_disk_space"] > ended_at(flow_run, "clear")
    assert arrived["#restart_print_spooler"] > ended_at(flow_run, "clear")
    assert arrived["#reset_network_adapter"] > max(
        ended_at(flow_run, "disk"), ended_at(flow_run, "spooler")
    )
    # The two independent steps were in Nexthink's hands at the same time.
    assert arrived["#restart_print_spooler"] < ended_at(flow_run, "disk")
    assert arrived["#free_up_disk_space"] < ended_at(flow_run, "spooler")
    assert Run.objects.count() == 4


def test_exception_behaviours_on_failure_and_partial_success(
    celery_worker: WorkerProcess, celery_beat: BeatProcess, simulator: Any, people: Any
) -> None:
    admin, agent = people
    simulator.execution_seconds = 1.0
    simulator.faults.configure(fail_workflows=["#clear_teams_cache"])
    go_on = [{"type": "failure", "strategy": "continue"}]
    stop_partial = [{"type": "partial_success", "strategy": "stop"}]
    stops = make_flow(admin, "Stops on failure", step("clear"), step("disk", "clear"))
    goes_on = make_flow(
        admin,
        "Goes on after failure",
        step("clear", exception_behavior=go_on),
        step("spooler", "clear", run_on="failed"),
    )
    partial = make_flow(
        admin, "Partial goes on", step("disk"), step("network", "disk", run_on="succeeded")
    )
    strict = make_flow(
        admin,
        "Partial stops",
        step("spooler", exception_behavior=stop_partial),
        step("logs", "spooler"),
    )
    runs = [
        run_flow(agent, stops, OK),
        run_flow(agent, goes_on, OK),
        run_flow(agent, partial, OK, FAILING),
        run_flow(agent, strict, OK, FAILING),
    ]
    stopped, continued, partly, strictly = (wait_final(r, celery_worker, celery_beat) for r in runs)

    assert (stopped.status, states(stopped)) == (
        FlowRunStatus.STOPPED,
        {"clear": ("ended", "failure"), "disk": ("not_started", "")},
    )
    assert steps_of(stopped)["disk"].reason == (
        "Step 'clear' failed and its behaviour on failure is to stop the flow."
    )
    assert (continued.status, states(continued)) == (
        FlowRunStatus.PARTIAL,
        {"clear": ("ended", "failure"), "spooler": ("ended", "success")},
    )
    assert (partly.status, states(partly)) == (
        FlowRunStatus.PARTIAL,
        {"disk": ("ended", "partial_success"), "network": ("ended", "success")},
    )
    assert (strictly.status, states(strictly)) == (
        FlowRunStatus.STOPPED,
        {"spooler": ("ended", "partial_success"), "logs": ("not_started", "")},
    )
    by_workflow = received(simulator)
    # The stopped flows sent nothing after their stop; the others only to the targets chosen.
    assert "#free_up_disk_space" in by_workflow and len(by_workflow["#free_up_disk_space"]) == 1
    assert "#collect_diagnostics_logs" not in by_workflow
    assert [sent_names(r) for r in by_workflow["#reset_network_adapter"]] == [[OK]]
    spooler = sorted(sent_names(r) for r in by_workflow["#restart_print_spooler"])
    assert spooler == [[OK], [OK, FAILING]]  # after "clear" failed on OK; the strict flow's own


def test_worker_killed_mid_flow_keeps_its_place_and_sends_no_step_twice(
    celery_worker: WorkerProcess,
    celery_beat: BeatProcess,
    simulator: Any,
    people: Any,
    in_flight: list[str],
) -> None:
    admin, agent = people
    simulator.execution_seconds = 1.0
    flow = make_flow(admin, "Killed", step("clear"), step("disk", "clear"), step("spooler", "disk"))
    flow_run = run_flow(agent, flow, OK)
    # Once the first step has been sent, hold the next execute call inside "Nexthink".
    wait_until(
        lambda: Batch.objects.filter(state=BatchState.SUBMITTED).exists(),
        timeout=30,
        what="the first step to be sent",
    )
    simulator.faults.configure(latency=30, paths=EXECUTE_PATHS)
    wait_until(
        lambda: len(in_flight) == 1,
        timeout=60,
        what="the second step's request to be in flight",
        explain=celery_worker.log_tail,
    )
    celery_worker.kill_hard()  # mid-flow, mid-call
    simulator.faults.clear()  # the held request now runs at "Nexthink", answering a dead worker
    wait_until(
        lambda: len(simulator.state.executions) == 2, timeout=10, what="the held request to run"
    )
    celery_worker.start()
    # The dead worker's batch is given up as unknown (it may have run), then reconciled from
    # Nexthink's history by follow-up; the flow goes on from there.
    assert len(sweep(sending_timeout_seconds=0, grace_seconds=3600).unknown) == 1
    flow_run = wait_final(flow_run, celery_worker, celery_beat, timeout=120)

    assert flow_run.status == FlowRunStatus.SUCCEEDED
    assert Counter(r.workflow_id for r in simulator.state.executions) == Counter(
        {"#clear_teams_cache": 1, "#free_up_disk_space": 1, "#restart_print_spooler": 1}
    )
    disk = steps_of(flow_run)["disk"].run
    assert disk is not None and disk.batches.get().state == BatchState.RECONCILED
    # Advancing again, by hand or by the sweep, starts nothing more.
    assert flow_engine.advance(flow_run.pk).started == [] and flow_engine.sweep() == []
    assert Run.objects.count() == 3
