"""Remote action runs through the pipeline to the simulator's classic Act API, over HTTP.

The simulator's record of accepted runs (`simulator.classic.runs`) and of requests is the
ground truth: every device reaches it exactly once, or (when the outcome cannot be known) at
most once with the batch `unknown` and never sent again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.celery_fixtures import WorkerProcess, wait_until
from workflows_app.models import Batch, BatchState, Outcome, Run, RunStatus, Target
from workflows_app.roles import Role
from workflows_app.services import remote_actions, submission
from workflows_app.services.remote_actions import RemoteActionSpec
from workflows_app.services.runs import RunRefused, create_run
from workflows_app.services.sweeper import sweep
from workflows_app.simulator.classic import RUN_PATH
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

RESTART_OUTLOOK = "07844969-1889-4de3-9026-020af94be855"
EMEA, AMER = "86acc8511251ec444d3a75bac33a23c7", "a4690014774dcc32b919c27d616166f7"


def device_uids(count: int, start: int = 0) -> list[Wanted]:
    """Distinct classic device UIDs (32 hexadecimal digits)."""
    return [
        Wanted(TargetKind.DEVICE_CLASSIC_UID, f"{i:032x}", i + 1 - start)
        for i in range(start, start + count)
    ]


def register(**overrides: Any) -> Any:
    spec = RemoteActionSpec(
        uid=RESTART_OUTLOOK, name="Restart Outlook", params=("Force",), **overrides
    )
    return remote_actions.register(spec, actor=None)[0]


class Pipeline:
    """Runs started and their batches sent in this process, as a worker would (in order)."""

    def __init__(self, enqueued: list[int], on_commit: Any) -> None:
        self.enqueued = enqueued
        self.on_commit = on_commit
        self.sent = 0

    def start(
        self, user: Any, action: Any, targets: list[Wanted], params: dict[str, str] | None = None
    ) -> Run:
        with self.on_commit(execute=True):
            return create_run(
                user=user,
                workflow=action,
                targets=targets,
                params=params or {},
                reason="INC0042",
                source=Run.Source.HELPDESK,
            )

    def send_all(self) -> None:
        while self.sent < len(self.enqueued):
            with self.on_commit(execute=True):
                submission.send_batch(self.enqueued[self.sent], claim_id=f"claim-{self.sent}")
            self.sent += 1


@pytest.fixture
def pipeline(enqueued: list[int], django_capture_on_commit_callbacks: Any) -> Pipeline:
    return Pipeline(enqueued, django_capture_on_commit_callbacks)


def run_requests(simulator: Any) -> list[Any]:
    return simulator.state.requests_matching(RUN_PATH)["requests"]


@pytest.fixture
def agent(role_user: Any) -> Any:
    return role_user("agent", Role.HELPDESK)


def test_2500_devices_go_in_three_batches_once_each_with_engine_codes_recorded(
    celery_worker: WorkerProcess, simulator: Any, agent: Any
) -> None:
    simulator.classic.configure({"engine_answers": {AMER: "not_connected"}})
    action = register()
    targets = device_uids(2_500)
    run = create_run(
        user=agent,
        workflow=action,
        targets=targets,
        params={"Force": "yes"},
        reason="INC0042",
        source=Run.Source.HELPDESK,
    )
    assert [b.target_count for b in Batch.objects.filter(run=run)] == [1_000, 1_000, 500]

    wait_until(
        lambda: (
            not Batch.objects.filter(
                run=run, state__in=(BatchState.QUEUED, BatchState.SENDING)
            ).exists()
        ),
        timeout=60,
        what="the three batches",
        explain=celery_worker.log_tail,
    )

    accepted = simulator.classic.runs
    sent = Counter(uid for r in accepted for uid in r.device_uids)
    assert len(accepted) == 3 and set(sent.values()) == {1}
    assert set(sent) == {t.value for t in targets}
    assert {r.params["Force"] for r in accepted} == {"yes"}
    batches = list(Batch.objects.filter(run=run).order_by("number"))
    assert {b.request_uuid for b in batches} == {r.request_uid for r in accepted}
    for batch in batches:
        assert batch.state == BatchState.SUBMITTED
        codes = {e["databaseUid"]: e["code"] for e in batch.engine_results}
        assert codes == {EMEA: "ok", AMER: "not_connected"}
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIAL and run.kind == "remote_action"
    assert run.outcome_counts == {Outcome.UNKNOWN: 2_500}
    details = Target.objects.filter(run=run).values_list("outcome_details", flat=True).first()
    assert f"Engine {AMER}: not_connected" in (details or "")


def test_every_engine_ok_makes_the_run_sent(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    run = pipeline.start(agent, register(), device_uids(3))
    pipeline.send_all()
    run.refresh_from_db()
    assert run.status == RunStatus.SENT and run.finished_at is not None
    assert run.outcome_counts == {Outcome.SENT: 3}
    assert run.secret_params == ""


def test_no_engine_ok_fails_the_run_naming_each_engine(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    simulator.classic.configure({"engine_answers": {EMEA: "engine_error", AMER: "no_permission"}})
    run = pipeline.start(agent, register(), device_uids(2))
    pipeline.send_all()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    target = Target.objects.filter(run=run).first()
    assert target is not None and target.outcome == Outcome.FAILURE
    assert "engine_error" in target.outcome_details and "no_permission" in target.outcome_details


def test_too_many_devices_splits_the_batch_until_the_web_interface_takes_it(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    simulator.classic.configure({"max_devices": 300})
    targets = device_uids(1_000)
    run = pipeline.start(agent, register(), targets)
    pipeline.send_all()

    batches = list(Batch.objects.filter(run=run).order_by("number"))
    assert sorted(b.target_count for b in batches) == [250, 250, 250, 250]
    assert {b.state for b in batches} == {BatchState.SUBMITTED}
    sent = Counter(uid for r in simulator.classic.runs for uid in r.device_uids)
    assert len(simulator.classic.runs) == 4 and set(sent.values()) == {1}
    assert set(sent) == {t.value for t in targets}
    refused = [r for r in run_requests(simulator) if r["status"] == 400]
    assert len(refused) == 3  # 1,000 then twice 500: nothing ran, so each could go again
    run.refresh_from_db()
    assert run.status == RunStatus.SENT and run.target_count == 1_000
    assert sum(run.outcome_counts.values()) == 1_000


def test_a_single_device_the_web_interface_finds_too_many_fails(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    simulator.classic.configure({"next_errors": ["TOO_MANY_DEVICES"]})
    run = pipeline.start(agent, register(), device_uids(1))
    pipeline.send_all()
    batch = Batch.objects.get(run=run)
    assert (batch.state, batch.error_code) == (BatchState.FAILED, "TOO_MANY_DEVICES")


def test_read_timeout_ends_unknown_and_is_never_sent_again(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    nexthink_settings.NEXTHINK_CLASSIC_TIMEOUT_SECONDS = 1
    nexthink_settings.NEXTHINK_CLASSIC_READ_MARGIN = 0.5
    simulator.classic.configure({"delay_seconds": 4})
    run = pipeline.start(agent, register(), device_uids(5))
    pipeline.send_all()

    batch = Batch.objects.get(run=run)
    assert (batch.state, batch.error_code) == (BatchState.UNKNOWN, "OUTCOME_UNKNOWN")
    assert "may have been triggered" in batch.error_details
    assert len(simulator.classic.runs) == 1  # it did reach the web interface
    # Another message for the batch, and the sweeper: neither sends it again.
    submission.send_batch(batch.pk, claim_id="a-late-duplicate")
    sweep()
    assert len(run_requests(simulator)) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.UNKNOWN
    assert run.outcome_counts == {Outcome.UNKNOWN: 5}


def test_internal_error_is_unknown_and_never_sent_again(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    simulator.classic.configure({"next_errors": ["INTERNAL_ERROR"]})
    run = pipeline.start(agent, register(), device_uids(2))
    pipeline.send_all()
    batch = Batch.objects.get(run=run)
    assert (batch.state, batch.error_code) == (BatchState.UNKNOWN, "OUTCOME_UNKNOWN")
    submission.send_batch(batch.pk, claim_id="again")
    assert len(run_requests(simulator)) == 1


def test_wrong_credentials_fail_clearly_and_send_nothing_again(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    nexthink_settings.NEXTHINK_CLASSIC_PASSWORD = "not-the-password"
    run = pipeline.start(agent, register(), device_uids(2))
    pipeline.send_all()
    batch = Batch.objects.get(run=run)
    assert (batch.state, batch.error_code) == (BatchState.FAILED, "UNAUTHORIZED")
    assert "user name or password" in batch.error_details
    assert "NEXTHINK_CLASSIC_PASSWORD" in batch.error_details
    assert "not-the-password" not in batch.error_details
    assert simulator.classic.runs == []
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.outcome_counts == {Outcome.NOT_SENT: 2}


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("INVALID_REQUEST_JSON", BatchState.FAILED),
        ("INVALID_REQUEST_CONTENT", BatchState.FAILED),
        ("CONTENT_TYPE", BatchState.FAILED),
        ("ENCODING", BatchState.FAILED),
        ("NO_REMOTE_ACTION_UID", BatchState.FAILED),
        ("NO_DEVICES", BatchState.FAILED),
        ("INVALID_ACTION_UID", BatchState.FAILED),
        ("INVALID_DEVICE_UID", BatchState.FAILED),
        ("UNKNOWN_OR_DISABLED_REMOTE_ACTION", BatchState.FAILED),
        ("NO_MANUAL_EXECUTION", BatchState.FAILED),
        ("NO_PERMISSION", BatchState.FAILED),
        ("NO_ENGINES_TO_TARGET", BatchState.FAILED),
        ("INTERNAL_ERROR", BatchState.UNKNOWN),
    ],
)
def test_each_documented_refusal_ends_the_batch_with_its_code(
    code: str,
    state: BatchState,
    simulator: Any,
    agent: Any,
    pipeline: Pipeline,
    nexthink_settings: Any,
) -> None:
    simulator.classic.configure({"next_errors": [code]})
    run = pipeline.start(agent, register(), device_uids(2))
    pipeline.send_all()
    batch = Batch.objects.get(run=run)
    assert batch.state == state
    assert code == batch.error_code or code in batch.error_details
    assert len(run_requests(simulator)) == 1


def test_unknown_parameter_names_are_refused_before_sending(
    simulator: Any, agent: Any, pipeline: Pipeline, nexthink_settings: Any
) -> None:
    action = register()
    with pytest.raises(RunRefused, match="Unknown parameter 'Forcee'"):
        pipeline.start(agent, action, device_uids(1), {"Forcee": "yes"})
    assert not Run.objects.exists() and pipeline.enqueued == []
    assert run_requests(simulator) == []


def test_a_workflow_target_cannot_be_sent_to_a_remote_action(
    agent: Any, pipeline: Pipeline
) -> None:
    action = register()
    wrong = [Wanted(TargetKind.DEVICE_NAME, "LAPTOP-1", 1)]
    with pytest.raises(RunRefused, match="classic device UIDs only"):
        pipeline.start(agent, action, wrong)
    assert not Run.objects.exists()


def test_no_remote_action_runs_when_only_the_cloud_is_configured(
    agent: Any, pipeline: Pipeline, settings: Any
) -> None:
    action = register()
    settings.NEXTHINK_PLATFORMS = "cloud"
    with pytest.raises(RunRefused, match="NEXTHINK_PLATFORMS"):
        pipeline.start(agent, action, device_uids(1))


def test_run_workflow_waits_and_prints_each_engine(
    celery_worker: WorkerProcess, simulator: Any, agent: Any
) -> None:
    import io

    from django.core.management import call_command

    simulator.classic.configure({"engine_answers": {AMER: "engine_error"}})
    register()
    out = io.StringIO()
    call_command(
        "run_workflow", "Restart Outlook", "--targets", "-", "--user", "agent", "--wait",
        "--timeout", "30", "--poll-interval", "0.2",
        stdin=io.StringIO("\n".join(t.value for t in device_uids(3))), stdout=out,
    )  # fmt: skip
    printed = out.getvalue()
    assert f"Run {Run.objects.get().pk}: Partly failed" in printed
    assert f"Engines: {EMEA} ok, {AMER} engine_error" in printed
