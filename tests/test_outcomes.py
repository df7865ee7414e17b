"""Outcomes: every execution followed through NQL until it ends, unknown batches reconciled.

The simulator's own record of each execution is the ground truth: a target's outcome in the
portal must be what the simulator's status (and outcome) of that execution map to. The first
tests run the real pipeline (worker and beat, the simulator over HTTP); the later ones call the
follow-up service directly, one check at a time, to look at each check's effect.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.celery_fixtures import BeatProcess, WorkerProcess, wait_until
from workflows_app.models import Batch, BatchState, Outcome, Run, RunStatus, Target
from workflows_app.roles import Role
from workflows_app.services import dispatch, follow_up, reconcile, submission
from workflows_app.services.executions import outcome_of
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

EXECUTE_PATHS = ["/api/v1/workflows/execute", "/api/v2/workflows/execute"]
NQL_PATHS = ["/api/v2/nql/execute", "/api/v1/nql/export", "/api/v1/nql/status"]
# Devices the simulator's inventory knows, each with its own fate there.
KNOWN = {
    "EMP-LT-0142": Outcome.SUCCESS,
    "KIOSK-LOBBY-01": Outcome.SUCCESS,
    "FAIL-LT-0001": Outcome.FAILURE,
    "TIMEOUT-PC-01": Outcome.FAILURE,  # "timed_out": a word the portal does not know
}


def names(*extra: str, unknown: int = 0) -> list[Wanted]:
    """Device targets by name: the given ones, then `unknown` names no tenant device has."""
    values = [*extra, *(f"NOWHERE-{uuid.uuid4().hex[:10]}" for _ in range(unknown))]
    return [Wanted(TargetKind.DEVICE_NAME, value, i + 1) for i, value in enumerate(values)]


def start(user: Any, workflow: Any, targets: list[Wanted]) -> Run:
    return create_run(
        user=user,
        workflow=workflow,
        targets=targets,
        params={},
        reason="outcomes test",
        source=Run.Source.HELPDESK,
    )


def assert_outcomes_are_the_simulators(run: Run, simulator: Any) -> None:
    """Every target has an execution, and its outcome and raw status are the simulator's."""
    rows = list(Target.objects.filter(run=run).values_list("execution_uuid", "outcome", "status"))
    assert len(rows) == run.target_count
    wrong = []
    for execution_uuid, outcome, status in rows:
        sim = simulator.state.target_executions[execution_uuid]
        expected = outcome_of(sim.status, sim.outcome or "")
        if (outcome, status) != (expected, sim.status):
            wrong.append((execution_uuid, outcome, status, expected, sim.status))
    assert wrong == []


def explain(worker: WorkerProcess, beat: BeatProcess, run: Run) -> Any:
    def text() -> str:
        batches = list(
            Batch.objects.filter(run=run).values_list(
                "number", "state", "outcome_counts", "checks", "check_error", "export_id"
            )
        )
        return f"batches: {batches}\n{worker.log_tail()}\n{beat.log_tail()}"

    return text


@pytest.fixture
def agent(role_user: Any) -> Any:
    return role_user("agent", Role.HELPDESK)


# --- the whole pipeline: worker, beat, simulator ------------------------------------------------


def test_12000_targets_end_with_the_simulators_outcomes_one_batch_through_the_export(
    celery_worker: WorkerProcess,
    celery_beat: BeatProcess,
    simulator: Any,
    agent: Any,
    sim_workflow: Any,
) -> None:
    targets = names(*KNOWN, unknown=12_000 - len(KNOWN))
    run = start(agent, sim_workflow("#clear_teams_cache"), targets)
    assert [b.target_count for b in run.batches.order_by("number")] == [10_000, 2_000]

    wait_until(
        lambda: Run.objects.get(pk=run.pk).is_final,
        timeout=120,
        what="every execution to end",
        explain=explain(celery_worker, celery_beat, run),
    )

    run.refresh_from_db()
    assert_outcomes_are_the_simulators(run, simulator)
    assert run.status == RunStatus.PARTIAL
    assert run.outcome_counts == {"success": 2, "failure": 12_000 - 2}
    assert run.finished_at is not None
    # More than 1,000 executions: read through the export API, never NQL execute.
    paths = Counter(r.path.split("/export")[0] for r in simulator.state.requests)
    assert paths["/api/v1/nql"] >= 2 and paths["/api/v2/nql/execute"] == 0
    assert not Batch.objects.filter(run=run, next_check_at__isnull=False).exists()


def test_a_batch_answered_500_after_it_ran_is_reconciled_to_the_simulators_outcomes(
    celery_worker: WorkerProcess,
    celery_beat: BeatProcess,
    simulator: Any,
    agent: Any,
    sim_workflow: Any,
) -> None:
    simulator.faults.configure(fail_after_accept_count=1, paths=EXECUTE_PATHS)
    run = start(agent, sim_workflow("#clear_teams_cache"), names(*KNOWN, unknown=2))

    wait_until(
        lambda: Run.objects.get(pk=run.pk).is_final,
        timeout=60,
        what="the unknown batch to be reconciled and its executions to end",
        explain=explain(celery_worker, celery_beat, run),
    )

    batch = run.batches.get()
    assert batch.state == BatchState.RECONCILED
    assert batch.error_code == "OUTCOME_UNKNOWN" and "HTTP 500" in batch.error_details
    assert "6 of 6 target(s) found" in batch.error_details
    assert [r.status for r in simulator.state.requests if r.path in EXECUTE_PATHS] == [500]
    assert len(simulator.state.executions) == 1  # Nexthink ran it once; nothing was re-sent
    run.refresh_from_db()
    assert_outcomes_are_the_simulators(run, simulator)
    assert run.outcome_counts == {"success": 2, "failure": 4}
    assert not reconcile.needs_decision(batch)


def test_targets_nexthink_never_saw_become_not_sent_and_only_an_admin_sends_them_again(
    celery_worker: WorkerProcess,
    celery_beat: BeatProcess,
    simulator: Any,
    agent: Any,
    role_user: Any,
    sim_workflow: Any,
) -> None:
    simulator.faults.configure(fail_next=[502], paths=EXECUTE_PATHS)  # it never got through
    run = start(agent, sim_workflow("#clear_teams_cache"), names("EMP-LT-0142", "KIOSK-LOBBY-01"))

    wait_until(
        lambda: reconcile.needs_decision(run.batches.get()),
        timeout=60,
        what="the grace period to pass and the batch to need a decision",
        explain=explain(celery_worker, celery_beat, run),
    )
    batch = run.batches.get()
    assert batch.outcome_counts == {"not_sent": 2}
    assert simulator.state.executions == []
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED

    admin = role_user("boss", Role.ADMIN)
    again = reconcile.resend_not_sent(batch, user=admin, note="checked in Nexthink: not run")
    with pytest.raises(reconcile.ResendRefused):
        reconcile.resend_not_sent(batch, user=admin, note="twice")
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
        timeout=60,
        what="the re-sent targets to run and succeed",
        explain=explain(celery_worker, celery_beat, run),
    )
    batch.refresh_from_db()
    assert (batch.resent_by, batch.resent_as_id, batch.resend_note) == (
        admin,
        again.pk,
        "checked in Nexthink: not run",
    )
    assert len(simulator.state.executions) == 1
    assert_outcomes_are_the_simulators(run, simulator)


# --- one check at a time (the service called directly, the simulator over HTTP) ---------------


@pytest.fixture
def sent_batch(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], nexthink_settings: Any, simulator: Any
) -> Any:
    """A batch sent to the simulator: one device that succeeds, one that fails, one paused in
    a state the portal does not know (so it is still followed after the others end)."""

    def send(*extra: str, unknown: int = 0) -> Batch:
        run = start(helpdesk, sim_workflow("#clear_teams_cache"), names(*extra, unknown=unknown))
        batch = run.batches.get()
        submission.send_batch(batch.pk, claim_id="task-1")
        return Batch.objects.get(pk=batch.pk)

    return send


def check(batch: Batch) -> follow_up.FollowUpResult:
    """One follow-up cycle as if this batch's check were due now."""
    Batch.objects.filter(pk=batch.pk).update(next_check_at=timezone.now() - timedelta(seconds=1))
    return follow_up.follow_up()


def snapshot(batch: Batch) -> list[tuple[Any, ...]]:
    fields = ("execution_uuid", "outcome", "status", "status_details", "outcome_details")
    return list(Target.objects.filter(batch=batch).order_by("position").values_list(*fields))


@pytest.mark.django_db
def test_statuses_move_from_pending_to_final_and_unknown_words_stay_raw(
    sent_batch: Any, simulator: Any
) -> None:
    batch = sent_batch("EMP-LT-0142", "FAIL-LT-0001", "WEIRD-PC-01")
    assert batch.outcome_counts == {"pending": 3}

    simulator.state.advance()
    result = check(batch)

    assert result.checked == [batch.pk] and result.finished == []
    outcomes = dict(Target.objects.filter(batch=batch).values_list("value", "outcome"))
    assert outcomes == {
        "EMP-LT-0142": Outcome.SUCCESS,
        "FAIL-LT-0001": Outcome.FAILURE,
        "WEIRD-PC-01": Outcome.UNKNOWN,
    }
    weird = Target.objects.get(batch=batch, value="WEIRD-PC-01")
    assert (weird.status, weird.status_details) == ("paused_by_policy", "Paused by a policy")
    batch.refresh_from_db()
    assert batch.next_check_at is not None  # a word it does not know: asked again
    run = batch.run
    run.refresh_from_db()
    assert (run.status, run.is_final) == (RunStatus.PARTIAL, True)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"fail_next": [400]}, "Nexthink refused the request"),
        ({"fail_next": [403]}, "denied permission"),
        ({"rate_limit_count": 5, "rate_limit_retry_after": 40}, "rate limiting"),
        ({"fail_next": [503, 503, 503, 503, 503]}, "unavailable"),
    ],
)
def test_an_nql_error_changes_nothing_known_and_plans_the_check_again(
    sent_batch: Any, simulator: Any, settings: Any, fault: dict[str, Any], words: str
) -> None:
    settings.FOLLOW_UP_SECONDS = 10
    batch = sent_batch("EMP-LT-0142", "WEIRD-PC-01")
    simulator.state.advance()
    check(batch)
    known = snapshot(batch)
    assert {row[1] for row in known} == {Outcome.SUCCESS, Outcome.UNKNOWN}

    simulator.faults.configure(**fault, paths=NQL_PATHS)
    result = check(batch)

    assert words in result.problems[batch.pk]
    assert snapshot(batch) == known
    batch.refresh_from_db()
    assert words in batch.check_error
    wait = (batch.next_check_at - timezone.now()).total_seconds()
    if "rate_limit_retry_after" in fault:
        assert 35 < wait <= 40  # Nexthink's Retry-After, not the portal's own interval
    else:
        assert 0 < wait <= 10 * 30

    simulator.faults.clear()
    check(batch)
    batch.refresh_from_db()
    assert batch.check_error == "" and snapshot(batch) == known


@pytest.mark.django_db
def test_a_batch_over_1000_targets_is_read_through_an_export_that_survives_an_error(
    sent_batch: Any, simulator: Any
) -> None:
    simulator.configure(export_seconds=0)
    batch = sent_batch("EMP-LT-0142", unknown=1_000)
    simulator.state.advance()
    simulator.faults.configure(export_error_count=1, paths=NQL_PATHS)

    check(batch)  # starts an export
    batch.refresh_from_db()
    assert batch.export_id and batch.outcome_counts == {"pending": 1_001}
    result = check(batch)  # it ended in ERROR: nothing changes, noted for admins
    assert "export ended in error" in result.problems[batch.pk]
    batch.refresh_from_db()
    assert batch.export_id == "" and batch.outcome_counts == {"pending": 1_001}

    check(batch)  # a new export
    check(batch)  # completed: every row downloaded
    batch.refresh_from_db()
    assert batch.outcome_counts == {"success": 1, "failure": 1_000}
    assert batch.next_check_at is None and batch.check_error == ""
    assert_outcomes_are_the_simulators(batch.run, simulator)
    downloads = [r for r in simulator.state.requests if r.path.startswith("/_exports/")]
    assert downloads and all("Authorization" not in r.headers for r in downloads)


@pytest.mark.django_db
def test_executions_still_open_after_the_horizon_are_given_up_as_unknown(
    sent_batch: Any, simulator: Any, settings: Any
) -> None:
    batch = sent_batch("EMP-LT-0142", "WEIRD-PC-01")
    simulator.state.advance()
    check(batch)
    settings.FOLLOW_UP_HORIZON_HOURS = 1
    Batch.objects.filter(pk=batch.pk).update(finished_at=timezone.now() - timedelta(hours=2))

    result = check(batch)

    assert result.finished == [batch.pk]
    weird = Target.objects.get(batch=batch, value="WEIRD-PC-01")
    assert weird.outcome == Outcome.UNKNOWN and weird.status == "paused_by_policy"
    assert "No final status from Nexthink within 1 h" in weird.outcome_details
    batch.refresh_from_db()
    assert batch.next_check_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("shape", ["execution", "table"])
def test_prefixed_column_names_are_read_like_plain_ones(
    sent_batch: Any, simulator: Any, shape: str
) -> None:
    simulator.configure(nql_column_shape=shape)
    batch = sent_batch("EMP-LT-0142", "FAIL-LT-0001")
    simulator.state.advance()
    check(batch)
    batch.refresh_from_db()
    assert batch.outcome_counts == {"success": 1, "failure": 1}
    assert_outcomes_are_the_simulators(batch.run, simulator)


@pytest.mark.django_db
def test_beat_leases_each_due_batch_once_and_queues_one_check_for_each(
    helpdesk: Any,
    sim_workflow: Any,
    enqueued: list[int],
    nexthink_settings: Any,
    simulator: Any,
    monkeypatch: Any,
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_check", queued.append)
    workflow = sim_workflow("#clear_teams_cache")
    ids = []
    for devices in (["EMP-LT-0142"], ["FAIL-LT-0001"], ["EMP-LT-0142", "FAIL-LT-0001"]):
        batch = start(helpdesk, workflow, names(*devices)).batches.get()
        submission.send_batch(batch.pk, claim_id=f"task-{batch.pk}")
        ids.append(batch.pk)
    Batch.objects.filter(pk__in=ids).update(next_check_at=timezone.now() - timedelta(seconds=1))

    assert sorted(follow_up.fan_out()) == ids and sorted(queued) == ids
    assert follow_up.fan_out() == []  # leased: a second beat takes none of them

    simulator.state.advance()
    result = follow_up.check_leased(ids[0])
    assert result.checked == [ids[0]]
    assert Target.objects.get(batch_id=ids[0]).outcome == Outcome.SUCCESS
    # The other two checks' messages were lost: once their lease ends they are due again.
    later = timezone.now() + follow_up.LEASE + timedelta(seconds=1)
    assert set(ids[1:]) <= set(follow_up.fan_out(now=later))


def test_failed_checks_back_off_doubling(settings: Any) -> None:
    from workflows_app.services.checks import interval

    settings.FOLLOW_UP_SECONDS = 30
    assert [interval(n) for n in range(7)] == [30, 60, 120, 240, 480, 900, 900]


def test_checks_come_every_cycle_while_young_then_at_a_fifth_of_the_age(settings: Any) -> None:
    from workflows_app.services.checks import next_check

    settings.FOLLOW_UP_SECONDS = 30
    sent = timezone.now()
    batch = Batch(created_at=sent - timedelta(minutes=5), finished_at=sent)
    ages = [10, 150, 600, 3600, 5 * 3600]  # seconds since the batch was sent, not created
    waits = [next_check(batch, now=sent + timedelta(seconds=a)) for a in ages]
    assert waits == [30, 30, 120, 720, 900]


def test_a_running_export_is_asked_about_no_later_than_the_next_cycle(settings: Any) -> None:
    from workflows_app.services.checks import EXPORT_POLL_SECONDS, export_poll_seconds

    settings.FOLLOW_UP_SECONDS = 30
    assert export_poll_seconds() == EXPORT_POLL_SECONDS == 2.0
    settings.FOLLOW_UP_SECONDS = 0.5
    assert export_poll_seconds() == 0.5
