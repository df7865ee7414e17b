"""The flow engine called directly: starting steps in order, exception behaviour, skipped steps,
the hook from a step's run becoming final, and advancing twice (or at once) starting nothing twice.

The whole pipeline (worker, beat, the simulator over HTTP) is in test_flow_pipeline.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.flow_support import (
    advances_at_once,
    catalogue,
    end_run,
    make_flow,
    run_flow,
    states,
    step,
    steps_of,
)
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    Batch,
    FlowRun,
    FlowRunStatus,
    Run,
    StepState,
    Target,
)
from workflows_app.roles import Role
from workflows_app.services import dispatch, flow_engine, lifecycle
from workflows_app.services.flow_runs import FlowRunRefused


@pytest.fixture(autouse=True)
def advances_asked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The flow runs the lifecycle hook asks to advance, recorded instead of sent: these tests
    advance flows themselves, and a message sent here could reach a worker another test left
    running on the session's queue, which would advance the flow under the test's feet."""
    asked: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_flow_advance", asked.append)
    return asked


@pytest.fixture
def admin(make_user: Any, sim_workflow: Any) -> Any:
    catalogue(sim_workflow)
    return make_user("boss", Role.ADMIN)


@pytest.fixture
def agent(make_user: Any) -> Any:
    return make_user("agent", Role.HELPDESK)


def sent_values(run: Run | None) -> list[str]:
    assert run is not None
    return list(Target.objects.filter(run=run).order_by("position").values_list("value", flat=True))


@pytest.mark.django_db
def test_steps_start_when_every_step_they_depend_on_has_ended(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    flow = make_flow(
        admin,
        "Diamond",
        step("clear"),
        step("disk", "clear"),
        step("spooler", "clear"),
        step("network", "disk", "spooler"),
    )
    flow_run = run_flow(agent, flow, "PC-1", "PC-2")
    assert states(flow_run) == {
        "clear": ("started", ""),
        "disk": ("pending", ""),
        "spooler": ("pending", ""),
        "network": ("pending", ""),
    }
    assert Batch.objects.count() == 1  # the first step's one batch, queued on commit
    end_run(steps_of(flow_run)["clear"].run)
    assert flow_engine.advance(flow_run.pk).started == ["disk", "spooler"]  # in parallel
    end_run(steps_of(flow_run)["disk"].run)
    assert flow_engine.advance(flow_run.pk).started == []  # network waits for spooler too
    end_run(steps_of(flow_run)["spooler"].run)
    assert flow_engine.advance(flow_run.pk).started == ["network"]
    end_run(steps_of(flow_run)["network"].run)
    assert flow_engine.advance(flow_run.pk).finished
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRunStatus.SUCCEEDED and flow_run.finished_at is not None
    assert Run.objects.count() == 4 and Batch.objects.count() == 4
    run = steps_of(flow_run)["network"].run
    assert run is not None and run.reason == f"Flow run {flow_run.pk}, step 'network': flow test"
    assert AuditEvent.objects.filter(action=AuditAction.FLOW_RUN_CREATED).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.RUN_CREATED).count() == 4


@pytest.mark.django_db
def test_failure_stops_the_flow_by_default_and_the_rest_is_not_started(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    flow = make_flow(
        admin,
        "Stop",
        step("clear"),
        step("disk", "clear"),
        step("spooler"),
        step("network", "disk"),
    )
    flow_run = run_flow(agent, flow, "PC-1")
    assert flow_engine.advance(flow_run.pk).started == []
    end_run(steps_of(flow_run)["clear"].run, failing=("PC-1",))
    flow_engine.advance(flow_run.pk)
    assert states(flow_run)["disk"] == ("not_started", "")
    assert states(flow_run)["network"] == ("not_started", "")
    assert states(flow_run)["spooler"] == ("started", "")  # independent and already running
    reason = "Step 'clear' failed and its behaviour on failure is to stop the flow."
    assert steps_of(flow_run)["disk"].reason == reason
    assert steps_of(flow_run)["network"].reason == reason
    end_run(steps_of(flow_run)["spooler"].run)
    flow_engine.advance(flow_run.pk)
    flow_run.refresh_from_db()
    assert (flow_run.status, flow_run.stop_reason) == (FlowRunStatus.STOPPED, reason)


@pytest.mark.django_db
def test_continue_on_failure_runs_dependents_on_the_targets_chosen(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    go_on = [{"type": "failure", "strategy": "continue"}]
    flow = make_flow(
        admin,
        "Go on",
        step("clear", exception_behavior=go_on),
        step("disk", "clear", run_on="failed"),
        step("spooler", "clear", run_on="succeeded"),
        step("network", "spooler"),
        step("logs", "clear"),
    )
    flow_run = run_flow(agent, flow, "PC-1", "PC-2")
    end_run(steps_of(flow_run)["clear"].run, failing=("PC-1", "PC-2"))
    flow_engine.advance(flow_run.pk)
    found = steps_of(flow_run)
    assert sent_values(found["disk"].run) == ["PC-1", "PC-2"]
    assert sent_values(found["logs"].run) == ["PC-1", "PC-2"]
    assert (found["spooler"].state, found["spooler"].reason) == (
        StepState.NOT_STARTED,
        "No target succeeded in the steps it depends on, and it runs on those only.",
    )
    assert (found["network"].state, found["network"].reason) == (
        StepState.NOT_STARTED,
        "Step 'spooler', which it depends on, was not started.",
    )


@pytest.mark.django_db
def test_partial_success_continues_by_default_on_the_targets_that_succeeded(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    flow = make_flow(
        admin,
        "Partial",
        step("clear"),
        step("disk", "clear", run_on="succeeded"),
        step("spooler", "clear", run_on="failed"),
    )
    flow_run = run_flow(agent, flow, "PC-1", "PC-2", "PC-3")
    end_run(steps_of(flow_run)["clear"].run, failing=("PC-2",))
    flow_engine.advance(flow_run.pk)
    found = steps_of(flow_run)
    assert found["clear"].outcome == "partial_success"
    assert sent_values(found["disk"].run) == ["PC-1", "PC-3"]
    assert sent_values(found["spooler"].run) == ["PC-2"]


@pytest.mark.django_db
def test_partial_success_with_stop_ends_the_flow(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    stop = [{"type": "partial_success", "strategy": "stop"}]
    flow = make_flow(admin, "Strict", step("clear", exception_behavior=stop), step("disk", "clear"))
    flow_run = run_flow(agent, flow, "PC-1", "PC-2")
    end_run(steps_of(flow_run)["clear"].run, failing=("PC-2",))
    assert flow_engine.advance(flow_run.pk).finished
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRunStatus.STOPPED
    assert steps_of(flow_run)["disk"].reason == (
        "Step 'clear' partly failed and its behaviour on partial success is to stop the flow."
    )


@pytest.mark.django_db
def test_skipped_steps_count_as_ended_successfully(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    flow = make_flow(
        admin,
        "Skip",
        step("clear", is_skipped=True),
        step("disk", "clear", run_on="succeeded"),
    )
    flow_run = run_flow(agent, flow, "PC-1")
    assert states(flow_run) == {"clear": ("skipped", "success"), "disk": ("started", "")}
    assert sent_values(steps_of(flow_run)["disk"].run) == ["PC-1"]
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_a_step_that_cannot_be_sent_is_a_failure(
    admin: Any, agent: Any, enqueued: list[int], sim_workflow: Any
) -> None:
    flow = make_flow(admin, "Gone", step("clear"), step("disk", "clear"))
    flow_run = run_flow(agent, flow, "PC-1")
    from workflows_app.models import Workflow

    Workflow.objects.filter(nql_id="#free_up_disk_space").update(trigger_api=False)
    end_run(steps_of(flow_run)["clear"].run)
    flow_engine.advance(flow_run.pk)
    disk = steps_of(flow_run)["disk"]
    assert (disk.state, disk.outcome, disk.run) == (StepState.ENDED, "failure", None)
    assert disk.reason.startswith(
        "It could not be sent: 'Free up disk space' does not have its API"
    )
    flow_run.refresh_from_db()
    assert flow_run.status == FlowRunStatus.STOPPED


@pytest.mark.django_db
def test_a_run_becoming_final_asks_for_its_flow_to_advance(
    admin: Any,
    agent: Any,
    enqueued: list[int],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    asked: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_flow_advance", asked.append)
    flow_run = run_flow(agent, make_flow(admin, "Hook", step("clear"), step("disk", "clear")), "PC")
    with django_capture_on_commit_callbacks(execute=True):
        end_run(steps_of(flow_run)["clear"].run)
    assert asked == [flow_run.pk]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.refresh_run_status(steps_of(flow_run)["clear"].run.pk)  # type: ignore[union-attr]
    assert asked == [flow_run.pk]  # only when it becomes final


@pytest.mark.django_db
def test_a_lost_advance_message_is_made_up_by_the_sweep_and_nothing_starts_twice(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    flow_run = run_flow(agent, make_flow(admin, "Lost", step("clear"), step("disk", "clear")), "PC")
    end_run(steps_of(flow_run)["clear"].run)  # its message is lost
    assert flow_engine.sweep() == [flow_run.pk]
    assert flow_engine.sweep() == [] and flow_engine.advance(flow_run.pk).started == []
    assert Run.objects.count() == 2 and states(flow_run)["disk"] == ("started", "")


@pytest.mark.django_db(transaction=True)
def test_two_advances_at_once_start_each_step_once(
    admin: Any, agent: Any, enqueued: list[int]
) -> None:
    flow = make_flow(admin, "Race", step("clear"), step("disk", "clear"), step("spooler", "clear"))
    flow_run = run_flow(agent, flow, "PC-1")
    end_run(steps_of(flow_run)["clear"].run)
    started = [result.started for result in advances_at_once(flow_run)]
    assert sorted(started) == [[], [], [], ["disk", "spooler"]]
    assert Run.objects.count() == 3


@pytest.mark.django_db
def test_a_flow_run_is_refused_when_a_step_may_not_run_or_the_targets_do_not_suit(
    admin: Any, make_user: Any, enqueued: list[int]
) -> None:
    from workflows_app.models import Workflow, WorkflowCuration

    flow = make_flow(admin, "Refused", step("clear"), step("disk", "clear"))
    WorkflowCuration.objects.create(
        workflow=Workflow.objects.get(nql_id="#free_up_disk_space"), allowed_roles=["admin"]
    )
    with pytest.raises(FlowRunRefused) as refused:
        run_flow(make_user("agent", Role.HELPDESK), flow, "PC-1")
    assert refused.value.forbidden
    assert refused.value.messages == [
        "Step 'disk': Your role may not run 'Free up disk space'; ask an admin."
    ]
    from workflows_app.services.flow_runs import start_flow_run
    from workflows_app.targets import Target as Wanted
    from workflows_app.targets import TargetKind

    with pytest.raises(FlowRunRefused) as wrong:
        start_flow_run(
            user=admin,
            flow=flow,
            targets=[Wanted(TargetKind.USER_UPN, "a@example.com", 1)],
            reason="",
            source=Run.Source.HELPDESK,
        )
    assert wrong.value.messages[0].startswith("This workflow runs on devices only")
    assert not FlowRun.objects.exists()
