"""The batch pipeline: a real worker process, Redis, PostgreSQL and the simulator; then the
claim, outcome and sweep rules of the submission service, called directly.

The simulator's record of execute requests is the ground truth: every target must reach it
exactly once, or (when the outcome cannot be known) at most once with the batch `unknown`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.celery_fixtures import RedisServer, WorkerProcess, restart_redis, wait_until
from workflows_app.models import Batch, BatchState, Outcome, Run, RunStatus, Target
from workflows_app.nexthink.errors import (
    BadRequest,
    Forbidden,
    InvalidResponse,
    OutcomeUnknown,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from workflows_app.nexthink.models import ExecutionResponse
from workflows_app.roles import Role
from workflows_app.services import dispatch, lifecycle, submission
from workflows_app.services.runs import create_run
from workflows_app.services.sweeper import sweep
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind, parse_text

EXECUTE_PATHS = ["/api/v1/workflows/execute", "/api/v2/workflows/execute"]


def devices(count: int, prefix: str = "PC") -> list[Wanted]:
    """Distinct device targets: even ones by Collector UUID, odd ones by name (so v2)."""
    out = []
    for i in range(count):
        if i % 2:
            out.append(Wanted(TargetKind.DEVICE_NAME, f"{prefix}-{i:06d}", i + 1))
        else:
            out.append(Wanted(TargetKind.DEVICE_COLLECTOR, str(uuid.uuid4()), i + 1))
    return out


def sent_keys(record: Any) -> list[tuple[str, str]]:
    """The (key, value) pairs of every target one execute request carried."""
    keys: list[tuple[str, str]] = []
    for item in [*record.devices, *record.users]:
        if isinstance(item, dict):
            keys.extend(item.items())
        else:
            keys.append(("v1", item))
    return keys


def wanted_keys(targets: Iterable[Wanted]) -> set[tuple[str, str]]:
    """The (key, value) pairs the targets are sent as in v2."""
    names = {TargetKind.DEVICE_COLLECTOR: "collectorUid", TargetKind.DEVICE_NAME: "name"}
    return {(names[t.kind], t.value) for t in targets}


def batches_of(run: Run) -> list[Batch]:
    return list(Batch.objects.filter(run=run).order_by("number"))


def all_final(*runs: Run) -> bool:
    return not Batch.objects.filter(
        run__in=runs, state__in=(BatchState.QUEUED, BatchState.SENDING)
    ).exists()


def describe(worker: WorkerProcess, *runs: Run) -> Callable[[], str]:
    """Explain a timeout: the batches' rows and the end of the worker's log."""

    def explain() -> str:
        rows = Batch.objects.filter(run__in=runs).values_list(
            "run_id", "number", "state", "attempts", "error_code"
        )
        return f"batches: {list(rows)}\n{worker.log_tail()}"

    return explain


@pytest.fixture
def helpdesk_agent(role_user: Callable[..., Any]) -> Any:
    return role_user("agent", Role.HELPDESK)


@pytest.fixture
def in_flight(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of requests the simulator has fully received and is about to answer (in order)."""
    seen: list[str] = []
    original = simulator.faults.latency

    def recording(path: str) -> float:
        if path in EXECUTE_PATHS:
            seen.append(path)
        return original(path)

    monkeypatch.setattr(simulator.faults, "latency", recording)
    return seen


def start_run(user: Any, workflow: Any, targets: list[Wanted]) -> Run:
    return create_run(
        user=user,
        workflow=workflow,
        targets=targets,
        params={},
        reason="pipeline test",
        source=Run.Source.HELPDESK,
    )


def test_25000_targets_reach_nexthink_once_each_in_three_batches(
    celery_worker: WorkerProcess, simulator: Any, helpdesk_agent: Any, sim_workflow: Any
) -> None:
    targets = devices(25_000)
    run = start_run(helpdesk_agent, sim_workflow("#clear_teams_cache"), targets)
    assert [b.target_count for b in batches_of(run)] == [10_000, 10_000, 5_000]

    wait_until(
        lambda: all_final(run),
        timeout=90,
        what="all three batches",
        explain=describe(celery_worker, run),
    )

    records = simulator.state.executions
    assert len(records) == 3
    sent = [key for record in records for key in sent_keys(record)]
    assert len(sent) == 25_000
    assert set(sent) == wanted_keys(targets)
    run.refresh_from_db()
    # Sent, every execution pending: the follow-up (beat) will learn how each one ended.
    assert (run.status, run.finished_at) == (RunStatus.IN_PROGRESS, None)
    assert run.outcome_counts == {"pending": 25_000}
    assert {b.request_uuid for b in batches_of(run)} == {r.request_uuid for r in records}
    stored = list(Target.objects.filter(run=run).values_list("execution_uuid", flat=True))
    assert set(stored) == {e for r in records for e in r.execution_uuids}
    assert len(set(stored)) == 25_000


def test_secrets_reach_nexthink_but_never_the_worker_log_or_the_database(
    celery_worker: WorkerProcess, simulator: Any, helpdesk_agent: Any, sim_workflow: Any
) -> None:
    from workflows_app.models import ParameterDefinition

    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", secret=True)
    secret = "hunter2-" + uuid.uuid4().hex
    run = create_run(
        user=helpdesk_agent,
        workflow=workflow,
        targets=[Wanted(TargetKind.USER_UPN, "alice.martin@example.com", 1)],
        params={"Reason": secret},
        reason="INC-1",
        source=Run.Source.HELPDESK,
    )
    wait_until(
        lambda: all_final(run), timeout=30, what="the batch", explain=describe(celery_worker, run)
    )

    assert [r.params for r in simulator.state.executions] == [{"Reason": secret}]
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS  # sent; its outcome is followed up
    assert secret not in str(run.params) and run.secret_params == ""
    log = celery_worker.log_tail(lines=100_000)
    assert "submit_batch" in log  # the log holds this run's work, so its absence means something
    for value in (secret, simulator.client_secret, "sim."):  # simulator tokens start "sim."
        assert value not in log


def test_worker_killed_mid_batch_never_sends_it_twice(
    celery_worker: WorkerProcess,
    simulator: Any,
    in_flight: list[str],
    helpdesk_agent: Any,
    sim_workflow: Any,
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    simulator.faults.configure(latency=30, paths=EXECUTE_PATHS)
    wanted = [devices(5, f"K{n}") for n in range(3)]
    runs = [start_run(helpdesk_agent, workflow, targets) for targets in wanted]
    # Both pool processes are inside an execute call; the third message waits in Redis.
    wait_until(
        lambda: len(in_flight) == 2,
        timeout=20,
        what="two requests in flight",
        explain=describe(celery_worker, *runs),
    )
    stuck = set(Batch.objects.filter(state=BatchState.SENDING).values_list("pk", flat=True))
    assert len(stuck) == 2

    celery_worker.kill_hard()
    simulator.faults.clear()  # the held requests now run at "Nexthink", answering a dead worker
    wait_until(
        lambda: len(simulator.state.executions) == 2, timeout=10, what="the held requests to run"
    )
    celery_worker.start()

    others = Batch.objects.exclude(pk__in=stuck).filter(run__in=runs)
    wait_until(
        lambda: not others.exclude(state=BatchState.SUBMITTED).exists(),
        timeout=30,
        what="the batch that was never started",
        explain=describe(celery_worker, *runs),
    )
    # The killed worker's messages stay unacknowledged until the visibility timeout (hours,
    # so never redelivered here) and nothing recorded Nexthink's answers: both batches are
    # still `sending`. The sweeper gives up on batches sending longer than a task may run.
    assert set(Batch.objects.filter(pk__in=stuck).values_list("state", flat=True)) == {
        BatchState.SENDING
    }
    result = sweep(sending_timeout_seconds=0, grace_seconds=3600)
    assert set(result.unknown) == stuck and len(result.unknown) == 2

    for batch in Batch.objects.filter(pk__in=stuck):
        assert (batch.state, batch.error_code, batch.attempts) == (
            BatchState.UNKNOWN,
            "WORKER_LOST",
            1,
        )
    assert len(simulator.state.executions) == 3
    sent = Counter(k for r in simulator.state.executions for k in sent_keys(r))
    assert set(sent) == wanted_keys(t for targets in wanted for t in targets)
    assert set(sent.values()) == {1}
    for run in runs:
        run.refresh_from_db()
        stuck_run = Batch.objects.filter(run=run, pk__in=stuck).exists()
        if stuck_run:
            # Unknown, and being reconciled from Nexthink's history: not over yet.
            assert (run.status, run.outcome_counts) == (RunStatus.IN_PROGRESS, {"unknown": 5})
            assert run.finished_at is None
        else:
            assert (run.status, run.outcome_counts) == (RunStatus.IN_PROGRESS, {"pending": 5})


def test_message_redelivered_after_pool_process_dies_marks_batch_unknown(
    celery_worker: WorkerProcess,
    simulator: Any,
    in_flight: list[str],
    helpdesk_agent: Any,
    sim_workflow: Any,
) -> None:
    simulator.faults.configure(latency=30, paths=EXECUTE_PATHS)
    run = start_run(helpdesk_agent, sim_workflow("#clear_teams_cache"), devices(3))
    wait_until(
        lambda: len(in_flight) == 1,
        timeout=20,
        what="the request in flight",
        explain=describe(celery_worker, run),
    )
    batch = Batch.objects.get(run=run)
    assert batch.state == BatchState.SENDING
    # Kill the pool processes (one is mid-request); the main process lives and sees it lost.
    for pid in celery_worker.pool_pids():
        celery_worker.kill_pool_child(pid)

    # Acks late + reject on worker lost: the broker hands the same message (same task id) again.
    wait_until(
        lambda: Batch.objects.get(pk=batch.pk).state == BatchState.UNKNOWN,
        timeout=30,
        what="the redelivered message to give up",
        explain=describe(celery_worker, run),
    )
    batch.refresh_from_db()
    assert batch.error_code == "REDELIVERED"
    simulator.faults.clear()
    wait_until(
        lambda: len(simulator.state.executions) == 1, timeout=10, what="the held request to run"
    )
    assert len(in_flight) == 1  # never sent again
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS  # being reconciled
    assert run.secret_params == ""


def test_redis_restart_loses_messages_and_sweeper_resends_them(
    celery_worker: WorkerProcess,
    simulator: Any,
    in_flight: list[str],
    helpdesk_agent: Any,
    sim_workflow: Any,
    pipeline_redis: RedisServer,
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    simulator.faults.configure(latency=30, paths=EXECUTE_PATHS)
    wanted = [devices(4, f"R{n}") for n in range(3)]
    runs = [start_run(helpdesk_agent, workflow, targets) for targets in wanted]
    # Both pool processes are held inside an execute call; the third message waits in Redis.
    wait_until(
        lambda: len(in_flight) == 2,
        timeout=20,
        what="two requests in flight",
        explain=describe(celery_worker, *runs),
    )

    restart_redis(pipeline_redis)  # the third message, waiting in Redis, is gone
    simulator.faults.clear()  # release the two calls held in flight
    wait_until(
        lambda: Batch.objects.filter(run__in=runs, state=BatchState.SUBMITTED).count() == 2,
        timeout=30,
        what="the two batches in flight",
        explain=describe(celery_worker, *runs),
    )
    lost = Batch.objects.get(run__in=runs, state=BatchState.QUEUED)
    assert lost.attempts == 0

    result = sweep(grace_seconds=0)
    assert result.requeued == [lost.pk]
    wait_until(
        lambda: all_final(*runs),
        timeout=60,
        what="the re-sent batch",
        explain=describe(celery_worker, *runs),
    )

    assert Batch.objects.filter(run__in=runs, state=BatchState.SUBMITTED).count() == 3
    sent = Counter(k for r in simulator.state.executions for k in sent_keys(r))
    assert set(sent) == wanted_keys(t for targets in wanted for t in targets)
    assert set(sent.values()) == {1}


def test_5xx_storm_is_retried_with_backoff_then_submitted(
    celery_worker: WorkerProcess, simulator: Any, helpdesk_agent: Any, sim_workflow: Any
) -> None:
    """A tenant outage past the old limit (5 tries, then failed) is ridden out: sent once after."""
    simulator.faults.configure(error_rate=1.0, paths=EXECUTE_PATHS)
    run = start_run(helpdesk_agent, sim_workflow("#clear_teams_cache"), devices(3))
    fifth_refused = Batch.objects.filter(run=run, attempts__gte=5, state=BatchState.QUEUED)
    wait_until(
        fifth_refused.exists,
        timeout=30,
        what="a fifth refused try",
        explain=describe(celery_worker, run),
    )
    simulator.faults.clear()  # the tenant is back
    wait_until(
        lambda: all_final(run), timeout=20, what="the batch", explain=describe(celery_worker, run)
    )

    batch = Batch.objects.get(run=run)
    assert batch.state == BatchState.SUBMITTED
    assert batch.attempts >= 6
    assert len(simulator.state.executions) == 1
    statuses = [r.status for r in simulator.state.requests if r.path in EXECUTE_PATHS]
    assert statuses == [503] * (batch.attempts - 1) + [200]


def test_5xx_storm_fails_the_batch_after_the_last_attempt(
    celery_worker: WorkerProcess, simulator: Any, helpdesk_agent: Any, sim_workflow: Any
) -> None:
    # The worker's schedule (celery_fixtures: 0.1 min, base 0.5 s, at most 2 s).
    schedule = submission.unavailable_schedule(budget_seconds=6, base=0.5, ceiling=2)
    assert schedule == [0.5, 1, 2, 2, 2]
    simulator.faults.configure(error_rate=1.0, paths=EXECUTE_PATHS)
    run = start_run(helpdesk_agent, sim_workflow("#clear_teams_cache"), devices(3))
    wait_until(
        lambda: all_final(run),
        timeout=40,
        what="the batch to give up",
        explain=describe(celery_worker, run),
    )

    batch = Batch.objects.get(run=run)
    tries = len(schedule) + 1
    assert (batch.state, batch.error_code, batch.attempts) == (
        BatchState.FAILED,
        "UNAVAILABLE",
        tries,
    )
    assert f"Gave up after {tries} attempts over 0.1 minutes; nothing was sent." in (
        batch.error_details
    )
    assert simulator.state.executions == []
    times = [r.received_at for r in simulator.state.requests if r.path in EXECUTE_PATHS]
    assert len(times) == tries
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    # Jitter only lengthens a wait: each gap is at least its step of the schedule.
    assert all(gap >= least for gap, least in zip(gaps, schedule, strict=True)), gaps
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED


def test_the_production_retry_schedule_spans_the_configured_minutes(settings: Any) -> None:
    """Defaults: 15 minutes of tries, waits doubling from 2 s to at most 2 minutes."""
    settings.NEXTHINK_SUBMIT_RETRY_MINUTES = 15
    settings.NEXTHINK_SUBMIT_BACKOFF_BASE = 2
    settings.NEXTHINK_SUBMIT_BACKOFF_MAX = 120
    schedule = submission.retry_schedule()
    assert schedule == [2, 4, 8, 16, 32, 64] + [120] * 7
    assert sum(schedule[:-1]) < 15 * 60 <= sum(schedule)  # no more tries than the budget needs
    settings.NEXTHINK_SUBMIT_RETRY_MINUTES = 60
    assert len(submission.retry_schedule()) == 6 + 29  # 126 + 28 × 120 < 3,600 <= 126 + 29 × 120
    settings.NEXTHINK_SUBMIT_RETRY_MINUTES = 0
    assert submission.retry_schedule() == []  # a single try


def test_429_storm_waits_for_retry_after_and_submits_once(
    celery_worker: WorkerProcess, simulator: Any, helpdesk_agent: Any, sim_workflow: Any
) -> None:
    simulator.faults.configure(rate_limit_count=3, rate_limit_retry_after=1, paths=EXECUTE_PATHS)
    run = start_run(helpdesk_agent, sim_workflow("#clear_teams_cache"), devices(3))
    wait_until(
        lambda: all_final(run), timeout=30, what="the batch", explain=describe(celery_worker, run)
    )

    batch = Batch.objects.get(run=run)
    assert (batch.state, batch.attempts) == (BatchState.SUBMITTED, 4)
    assert len(simulator.state.executions) == 1
    times = [r.received_at for r in simulator.state.requests if r.path in EXECUTE_PATHS]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) == 3 and min(gaps) >= 0.95, gaps


def test_read_timeout_after_acceptance_marks_unknown_and_sends_once(
    celery_worker: WorkerProcess, simulator: Any, helpdesk_agent: Any, sim_workflow: Any
) -> None:
    simulator.faults.configure(timeout_after_accept_count=1, hang_seconds=15, paths=EXECUTE_PATHS)
    run = start_run(helpdesk_agent, sim_workflow("#clear_teams_cache"), devices(3))
    wait_until(
        lambda: all_final(run), timeout=30, what="the batch", explain=describe(celery_worker, run)
    )
    simulator.faults.clear()

    batch = Batch.objects.get(run=run)
    assert (batch.state, batch.error_code) == (BatchState.UNKNOWN, "OUTCOME_UNKNOWN")
    assert batch.attempts == 1
    assert len(simulator.state.executions) == 1
    run.refresh_from_db()
    assert (run.status, run.outcome_counts) == (RunStatus.IN_PROGRESS, {"unknown": 3})
    assert batch.next_check_at is not None  # reconciliation asks Nexthink's history


# --- the submission service called directly (no worker) -------------------------------------


class WorkerDied(BaseException):
    """Stands for the process being killed in the middle of the HTTP call."""


class FakeClient:
    """A Nexthink client that answers every execute call with one fixed outcome."""

    def __init__(self) -> None:
        self.outcome: Any = None
        self.calls: list[Any] = []

    def execute_v1(self, request: Any) -> Any:
        self.calls.append(request)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    execute_v2 = execute_v1

    def close(self) -> None:
        pass


@pytest.fixture
def fake_client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    client = FakeClient()
    monkeypatch.setattr(submission, "get_client", lambda: client)
    return client


@pytest.fixture
def requeued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float | None]]:
    """(batch id, countdown) of every new submit message, instead of publishing it."""
    sent: list[tuple[int, float | None]] = []

    def record(batch_id: int, countdown: float | None = None, **_: Any) -> None:
        sent.append((batch_id, countdown))

    monkeypatch.setattr(dispatch, "enqueue_batch", record)
    return sent


@pytest.fixture
def one_batch(helpdesk: Any, sim_workflow: Any, requeued: Any) -> Batch:
    run = start_run(helpdesk, sim_workflow("#clear_teams_cache"), devices(3))
    return Batch.objects.get(run=run)


def answer(count: int) -> ExecutionResponse:
    return ExecutionResponse(
        requestUuid=str(uuid.uuid4()), executionsUuids=[str(uuid.uuid4()) for _ in range(count)]
    )


@pytest.mark.django_db
def test_redelivered_claim_marks_unknown_without_sending_again(
    one_batch: Batch, fake_client: FakeClient
) -> None:
    fake_client.outcome = WorkerDied()
    with pytest.raises(WorkerDied):
        submission.send_batch(one_batch.pk, claim_id="task-1")
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.claim_id) == (BatchState.SENDING, "task-1")

    submission.send_batch(one_batch.pk, claim_id="task-1")  # the broker redelivers

    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.error_code) == (BatchState.UNKNOWN, "REDELIVERED")
    assert "reconcile" in one_batch.error_details.lower()
    assert len(fake_client.calls) == 1
    assert Run.objects.get().status == RunStatus.IN_PROGRESS  # being reconciled


@pytest.mark.django_db
def test_message_with_another_claim_leaves_a_sending_batch_alone(
    one_batch: Batch, fake_client: FakeClient
) -> None:
    fake_client.outcome = WorkerDied()
    with pytest.raises(WorkerDied):
        submission.send_batch(one_batch.pk, claim_id="task-1")
    submission.send_batch(one_batch.pk, claim_id="task-2")
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.claim_id, one_batch.attempts) == (
        BatchState.SENDING,
        "task-1",
        1,
    )
    assert len(fake_client.calls) == 1


@pytest.mark.django_db
def test_message_for_a_final_batch_does_nothing(one_batch: Batch, fake_client: FakeClient) -> None:
    fake_client.outcome = answer(3)
    submission.send_batch(one_batch.pk, claim_id="task-1")
    submission.send_batch(one_batch.pk, claim_id="task-1")
    submission.send_batch(one_batch.pk, claim_id="task-2")
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.attempts) == (BatchState.SUBMITTED, 1)
    assert len(fake_client.calls) == 1


@pytest.mark.django_db
def test_message_before_the_next_attempt_is_due_does_nothing(
    one_batch: Batch, fake_client: FakeClient
) -> None:
    Batch.objects.filter(pk=one_batch.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=60)
    )
    submission.send_batch(one_batch.pk, claim_id="task-1")
    assert Batch.objects.get(pk=one_batch.pk).state == BatchState.QUEUED
    assert fake_client.calls == []


@pytest.mark.django_db
def test_execution_uuids_are_stored_in_the_order_sent(
    helpdesk: Any, sim_workflow: Any, requeued: Any, nexthink_settings: Any, simulator: Any
) -> None:
    # Users before devices in the list: Nexthink answers devices first, then users.
    targets = parse_text(
        "S-1-5-21-1004336348-1177238915-682003330-1101\n"
        "3fa85f64-5717-4562-b3fc-2c963f66afa6\n"
        "S-1-5-21-1004336348-1177238915-682003330-1102\n"
    ).targets
    run = start_run(helpdesk, sim_workflow("#repair_outlook_profile"), targets)
    submission.send_batch(run.batches.get().pk, claim_id="task-1")

    (record,) = simulator.state.executions
    assert record.devices == ["3fa85f64-5717-4562-b3fc-2c963f66afa6"]
    assert len(record.users) == 2
    for row in Target.objects.filter(run=run):
        execution = simulator.state.target_executions[row.execution_uuid]
        assert execution.target.given == row.value
    batch = run.batches.get()
    assert (batch.state, batch.request_uuid) == (BatchState.SUBMITTED, record.request_uuid)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_answering_the_execute_post_is_unknown_and_never_sent_again(
    helpdesk: Any,
    sim_workflow: Any,
    requeued: list[Any],
    nexthink_settings: Any,
    simulator: Any,
    django_capture_on_commit_callbacks: Any,
    status: int,
) -> None:
    """Nexthink may have created the executions before answering 500: it must not run twice."""
    simulator.faults.configure(fail_next=[status], paths=EXECUTE_PATHS)
    run = start_run(helpdesk, sim_workflow("#clear_teams_cache"), devices(3))
    batch = run.batches.get()
    with django_capture_on_commit_callbacks(execute=True):
        submission.send_batch(batch.pk, claim_id="task-1")
        submission.send_batch(batch.pk, claim_id="task-2")  # a duplicate message
        sweep(grace_seconds=0, sending_timeout_seconds=0)

    batch.refresh_from_db()
    assert (batch.state, batch.error_code) == (BatchState.UNKNOWN, "OUTCOME_UNKNOWN")
    assert f"HTTP {status}" in batch.error_details
    assert requeued == []
    assert [r.status for r in simulator.state.requests if r.path in EXECUTE_PATHS] == [status]
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS  # being reconciled
    assert batch.outcome_counts == {"unknown": 3} and batch.next_check_at is not None


@pytest.mark.django_db
def test_503_answering_the_execute_post_is_queued_again_and_then_sent_once(
    helpdesk: Any,
    sim_workflow: Any,
    requeued: list[Any],
    nexthink_settings: Any,
    simulator: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A 503 says Nexthink did not take the request: it is sent again after a backoff."""
    simulator.faults.configure(fail_next=[503], paths=EXECUTE_PATHS)
    run = start_run(helpdesk, sim_workflow("#clear_teams_cache"), devices(3))
    batch = run.batches.get()
    with django_capture_on_commit_callbacks(execute=True):
        submission.send_batch(batch.pk, claim_id="task-1")
    batch.refresh_from_db()
    assert (batch.state, batch.error_code) == (BatchState.QUEUED, "UNAVAILABLE")
    assert [batch_id for batch_id, _ in requeued] == [batch.pk]

    Batch.objects.filter(pk=batch.pk).update(next_attempt_at=None)  # the backoff has passed
    submission.send_batch(batch.pk, claim_id="task-2")
    batch.refresh_from_db()
    assert (batch.state, batch.attempts) == (BatchState.SUBMITTED, 2)
    assert [r.status for r in simulator.state.requests if r.path in EXECUTE_PATHS] == [503, 200]
    assert len(simulator.state.executions) == 1


@pytest.mark.django_db
def test_fewer_execution_uuids_than_targets_keeps_those_that_match(
    one_batch: Batch, fake_client: FakeClient
) -> None:
    fake_client.outcome = answer(2)
    submission.send_batch(one_batch.pk, claim_id="task-1")
    one_batch.refresh_from_db()
    assert one_batch.state == BatchState.SUBMITTED
    assert "2 execution ids for 3 targets" in one_batch.error_details
    stored = list(Target.objects.order_by("position").values_list("execution_uuid", flat=True))
    assert stored[:2] == fake_client.outcome.executionsUuids and stored[2] == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "state", "code", "words"),
    [
        (
            BadRequest("INVALID_PARAMS", "MinFreeGB must be a number"),
            "failed",
            "INVALID_PARAMS",
            "MinFreeGB must be a number",
        ),
        (
            Forbidden("NO_API_TRIGGER", "API trigger disabled"),
            "failed",
            "NO_API_TRIGGER",
            "API trigger",
        ),
        (Unauthorized(), "failed", "UNAUTHORIZED", "credentials"),
        (OutcomeUnknown("no answer within 30 s"), "unknown", "OUTCOME_UNKNOWN", "may have run"),
        (InvalidResponse("garbled answer"), "unknown", "INVALID_RESPONSE", "garbled"),
    ],
)
def test_outcomes_that_must_not_be_retried(
    one_batch: Batch,
    fake_client: FakeClient,
    requeued: list[Any],
    error: Exception,
    state: str,
    code: str,
    words: str,
) -> None:
    fake_client.outcome = error
    submission.send_batch(one_batch.pk, claim_id="task-1")
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.error_code) == (state, code)
    assert words in one_batch.error_details
    assert one_batch.finished_at is not None and requeued == []


@pytest.mark.django_db
def test_rate_limited_batch_is_queued_again_after_retry_after(
    one_batch: Batch,
    fake_client: FakeClient,
    requeued: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    fake_client.outcome = RateLimited(retry_after=30)
    with django_capture_on_commit_callbacks(execute=True):
        submission.send_batch(one_batch.pk, claim_id="task-1")
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.error_code) == (BatchState.QUEUED, "RATE_LIMITED")
    wait = (one_batch.next_attempt_at - timezone.now()).total_seconds()
    assert 28 < wait <= 34
    ((batch_id, countdown),) = requeued
    assert batch_id == one_batch.pk and 30 <= countdown <= 31
    assert Run.objects.get().status == RunStatus.IN_PROGRESS


@pytest.mark.django_db
def test_unavailable_backs_off_then_fails_after_the_last_attempt(
    one_batch: Batch,
    fake_client: FakeClient,
    requeued: list[Any],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.NEXTHINK_SUBMIT_RETRY_MINUTES = 0.5  # waits 10, 20 s: then 30 s are covered
    settings.NEXTHINK_SUBMIT_BACKOFF_BASE = 10
    settings.NEXTHINK_SUBMIT_BACKOFF_MAX = 120
    fake_client.outcome = Unavailable("Nexthink answered HTTP 503", status=503)
    for attempt in (1, 2, 3):
        Batch.objects.filter(pk=one_batch.pk).update(next_attempt_at=None)
        with django_capture_on_commit_callbacks(execute=True):
            submission.send_batch(one_batch.pk, claim_id=f"task-{attempt}")
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.error_code, one_batch.attempts) == (
        BatchState.FAILED,
        "UNAVAILABLE",
        3,
    )
    assert "Gave up after 3 attempts over 0.5 minutes" in one_batch.error_details
    countdowns = [countdown for _, countdown in requeued]
    assert len(countdowns) == 2
    assert 10 <= countdowns[0] <= 11 and 20 <= countdowns[1] <= 22  # doubling, jittered upwards


@pytest.mark.django_db
def test_sweep_resends_lost_messages_and_gives_up_on_dead_workers(
    helpdesk: Any, sim_workflow: Any, requeued: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    workflow = sim_workflow("#clear_teams_cache")
    lost, fresh, waiting, dead, busy = (
        Batch.objects.get(run=start_run(helpdesk, workflow, devices(1, f"S{n}"))) for n in range(5)
    )
    now = timezone.now()
    old = now - timedelta(minutes=10)
    Batch.objects.filter(pk__in=[lost.pk, waiting.pk]).update(updated_at=old)
    Batch.objects.filter(pk=waiting.pk).update(next_attempt_at=now + timedelta(minutes=1))
    Batch.objects.filter(pk=dead.pk).update(state=BatchState.SENDING, claimed_at=old)
    Batch.objects.filter(pk=busy.pk).update(state=BatchState.SENDING, claimed_at=now)

    with django_capture_on_commit_callbacks(execute=True):
        result = sweep(grace_seconds=120, sending_timeout_seconds=360)

    assert (result.requeued, result.unknown) == ([lost.pk], [dead.pk])
    assert requeued == [(lost.pk, None)]
    dead.refresh_from_db()
    assert (dead.state, dead.error_code) == (BatchState.UNKNOWN, "WORKER_LOST")
    assert Run.objects.get(batches=dead).status == RunStatus.IN_PROGRESS  # reconciling
    states = dict(Batch.objects.values_list("pk", "state"))
    assert states[fresh.pk] == states[waiting.pk] == states[lost.pk] == BatchState.QUEUED
    assert states[busy.pk] == BatchState.SENDING
    # The lost batch was touched: the next sweep waits another grace period for it.
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(grace_seconds=120).requeued == []


@pytest.mark.django_db
def test_sweep_repairs_runs_whose_batches_are_all_final(
    helpdesk: Any, sim_workflow: Any, requeued: list[Any]
) -> None:
    # Runs left as a worker dying between a batch's outcome and its run's status would leave
    # them (possible before both were written in one transaction).
    workflow = sim_workflow("#clear_teams_cache")
    stale_done, stale_mixed, busy, done = (
        start_run(helpdesk, workflow, devices(1, f"P{n}")) for n in range(4)
    )
    Batch.objects.filter(run__in=[stale_done, done]).update(
        state=BatchState.SUBMITTED, attempts=1, finished_at=timezone.now()
    )
    Target.objects.filter(run__in=[stale_done, done]).update(outcome=Outcome.SUCCESS)
    Batch.objects.filter(run=stale_mixed).update(state=BatchState.UNKNOWN, attempts=1)
    Target.objects.filter(run=stale_mixed).update(outcome=Outcome.UNKNOWN)
    for batch_id in Batch.objects.values_list("pk", flat=True):
        lifecycle.recount(batch_id)
    Batch.objects.filter(run=busy).update(
        state=BatchState.SENDING, attempts=1, claimed_at=timezone.now()
    )
    # Secrets still stored (a stand-in for the ciphertext): none is erased until repaired.
    Run.objects.filter(pk__in=[stale_done.pk, stale_mixed.pk, busy.pk]).update(
        status=RunStatus.IN_PROGRESS, secret_params="ciphertext"
    )
    Run.objects.filter(pk=done.pk).update(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now(), secret_params=""
    )

    result = sweep(grace_seconds=120, sending_timeout_seconds=360)

    assert (result.requeued, result.unknown) == ([], [])
    assert result.repaired == [stale_done.pk, stale_mixed.pk]
    runs = {r.pk: r for r in Run.objects.all()}
    assert runs[stale_done.pk].status == RunStatus.SUCCEEDED
    assert runs[stale_mixed.pk].status == RunStatus.UNKNOWN
    for pk in (stale_done.pk, stale_mixed.pk):
        assert runs[pk].finished_at is not None and runs[pk].secret_params == ""
    assert runs[busy.pk].status == RunStatus.IN_PROGRESS and runs[busy.pk].secret_params != ""
    assert runs[done.pk].status == RunStatus.SUCCEEDED
    assert sweep(grace_seconds=120, sending_timeout_seconds=360).repaired == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outcome", ["answer", "unknown", "retry"])
def test_batch_outcome_and_run_status_commit_together(
    one_batch: Batch, fake_client: FakeClient, monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    fake_client.outcome = {
        "answer": answer(3),
        "unknown": OutcomeUnknown("no answer within 30 s"),
        "retry": Unavailable("Nexthink answered HTTP 503", status=503),
    }[outcome]
    real_refresh = lifecycle.refresh_run_status
    calls: list[int] = []

    def refresh_then_die(run_id: int) -> Any:
        calls.append(run_id)
        if len(calls) == 1:  # the claim's refresh
            return real_refresh(run_id)
        raise WorkerDied  # the process dies once the run's status is to be written

    monkeypatch.setattr(lifecycle, "refresh_run_status", refresh_then_die)
    with pytest.raises(WorkerDied):
        submission.send_batch(one_batch.pk, claim_id="task-1")

    # Nothing of the outcome was committed without the run's status: the batch is still
    # `sending` (the sweeper will give it up) and the run still in progress.
    one_batch.refresh_from_db()
    assert (one_batch.state, one_batch.claim_id) == (BatchState.SENDING, "task-1")
    assert Run.objects.get().status == RunStatus.IN_PROGRESS
    assert len(calls) == 2

    monkeypatch.setattr(lifecycle, "refresh_run_status", real_refresh)
    assert sweep(sending_timeout_seconds=0).unknown == [one_batch.pk]
    assert Run.objects.get().status == RunStatus.IN_PROGRESS  # reconciling
