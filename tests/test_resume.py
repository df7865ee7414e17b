"""Resuming executions waiting for an event: the service and the command, against the simulator.

Each test sends a real run of a workflow that waits for an event (`#reset_mfa`) to the simulator
over HTTP; the simulator then holds the execution waiting, and the portal's target is marked
`waiting` as the follow-up records it (tests/test_follow_up.py covers how NQL tells it).
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from workflows_app.models import (
    Batch,
    Outcome,
    ParameterDefinition,
    Resumption,
    Run,
    RunStatus,
    Target,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.services import lifecycle, submission
from workflows_app.services.params import MASK
from workflows_app.services.resume import ResumeRefused, resume_execution
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db

TRIGGER_PATH = "/api/v1/workflows/workflows/"


def send_run(user: Any, workflow: Any, upns: list[str]) -> Run:
    """A helpdesk run of `workflow` on these users, sent to the simulator now (no broker)."""
    targets = [Wanted(TargetKind.USER_UPN, upn, i + 1) for i, upn in enumerate(upns)]
    run = create_run(
        user=user,
        workflow=workflow,
        targets=targets,
        params={},
        reason="INC0042",
        source=Run.Source.HELPDESK,
    )
    for batch in run.batches.all():
        submission.send_batch(batch.pk, claim_id=f"task-{batch.pk}")
    return run


def mark(target: Target, outcome: Outcome, status: str = "waiting_for_event") -> None:
    """Record an outcome as the follow-up would, with the run's counts and status."""
    Target.objects.filter(pk=target.pk).update(
        outcome=outcome, status=status, status_details="Waiting for event"
    )
    lifecycle.recount(target.batch_id)
    lifecycle.refresh_run_status(target.run_id)


@pytest.fixture
def waiting(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], nexthink_settings: Any, simulator: Any
) -> Target:
    """One execution of #reset_mfa waiting for an event, in the simulator and in the portal."""
    run = send_run(helpdesk, sim_workflow("#reset_mfa"), ["employee@example.com"])
    simulator.state.advance()  # done running: now waiting for its event upstream
    target = run.targets.get()
    assert simulator.state.find_execution(target.execution_uuid).status in (
        "waiting",
        "waiting_for_event",
    )
    mark(target, Outcome.WAITING)
    Batch.objects.filter(pk=target.batch_id).update(
        next_check_at=timezone.now() + timezone.timedelta(minutes=10), checks=7
    )
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING
    return target


def resume(user: Any, target: Target, params: dict[str, str] | None = None, **kw: Any) -> Any:
    return resume_execution(
        user=user,
        execution_uuid=target.execution_uuid,
        params=params or {},
        source=kw.pop("source", Run.Source.HELPDESK),
        **kw,
    )


def trigger_calls(simulator: Any) -> list[Any]:
    return [r for r in simulator.state.requests if r.path.endswith("/trigger")]


# --- what a resumption does ----------------------------------------------------------------------


def test_resuming_calls_nexthink_records_it_and_follows_the_execution_again(
    waiting: Target, helpdesk: Any, simulator: Any
) -> None:
    before = timezone.now()
    resumption = resume(helpdesk, waiting, {"Approved": "yes"})

    (call,) = trigger_calls(simulator)
    assert call.path == (
        f"/api/v1/workflows/workflows/{waiting.run.workflow_uuid}"
        f"/execution/{waiting.execution_uuid}/trigger"
    )
    assert call.body == {"parameters": {"Approved": "yes"}}
    upstream = simulator.state.find_execution(waiting.execution_uuid)
    assert upstream.triggered and upstream.trigger_params == {"Approved": "yes"}

    assert resumption.succeeded and uuid.UUID(resumption.request_uuid)
    assert (resumption.requested_by, resumption.source) == (helpdesk, Run.Source.HELPDESK)
    assert (resumption.run_id, resumption.target_id) == (waiting.run_id, waiting.pk)
    assert resumption.params == {"Approved": "yes"}
    waiting.refresh_from_db()
    assert waiting.outcome == Outcome.RUNNING
    assert "Resumed from the portal by helpdesk" in waiting.outcome_details
    batch = Batch.objects.get(pk=waiting.batch_id)
    assert batch.next_check_at is not None and before <= batch.next_check_at <= timezone.now()
    assert batch.checks == 0  # the backoff starts again: the execution moves now
    assert batch.outcome_counts == {"running": 1}
    run = Run.objects.get(pk=waiting.run_id)
    assert (run.status, run.outcome_counts) == (RunStatus.IN_PROGRESS, {"running": 1})


def test_secret_values_are_sent_but_stored_masked(
    waiting: Target, helpdesk: Any, simulator: Any
) -> None:
    workflow = waiting.run.workflow
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True)
    ParameterDefinition.objects.create(workflow=workflow, name="Ticket")

    resumption = resume(
        helpdesk,
        waiting,
        {"Pin": "4242", "Ticket": "INC1", "Token": "abc"},
        secret={"Token"},  # a free row marked secret on the form
    )

    upstream = simulator.state.find_execution(waiting.execution_uuid)
    assert upstream.trigger_params == {"Pin": "4242", "Ticket": "INC1", "Token": "abc"}
    stored = Resumption.objects.get(pk=resumption.pk)
    assert stored.params == {"Pin": MASK, "Ticket": "INC1", "Token": MASK}
    assert "4242" not in str(Resumption.objects.values_list("params", flat=True)[0])


def test_resuming_from_the_command_line_records_its_source(
    waiting: Target, admin_user: Any
) -> None:
    resumption = resume(admin_user, waiting, source=Run.Source.CLI)
    assert (resumption.source, resumption.requested_by) == (Run.Source.CLI, admin_user)


# --- refusals before any call -------------------------------------------------------------------


def test_an_execution_unknown_to_the_portal_is_refused_with_404(
    waiting: Target, helpdesk: Any, simulator: Any
) -> None:
    for given in (str(uuid.uuid4()), "not-a-uuid", "nul\x00", "x" * 5000, ""):
        with pytest.raises(ResumeRefused) as refused:
            resume_execution(
                user=helpdesk, execution_uuid=given, params={}, source=Run.Source.HELPDESK
            )
        assert refused.value.status == 404
        assert "The portal knows no execution" in refused.value.message
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


def test_the_execution_id_is_found_whatever_its_case(waiting: Target, helpdesk: Any) -> None:
    resumption = resume_execution(
        user=helpdesk,
        execution_uuid=f"  {waiting.execution_uuid.upper()} ",
        params={},
        source=Run.Source.HELPDESK,
    )
    assert resumption.succeeded


@pytest.mark.parametrize(
    ("resume_roles", "role", "allowed"),
    [
        ([], Role.HELPDESK, True),
        ([], Role.ADMIN, True),
        ([], Role.EMPLOYEE, False),
        (["Admin"], Role.HELPDESK, False),
        (["Admin"], Role.ADMIN, True),
        (["Helpdesk"], Role.HELPDESK, True),
        (["Helpdesk"], Role.ADMIN, True),  # admins may always resume
        (["Helpdesk"], None, False),
    ],
)
def test_who_may_resume_follows_the_curation(
    waiting: Target,
    make_user: Any,
    simulator: Any,
    resume_roles: list[str],
    role: Any,
    allowed: bool,
) -> None:
    WorkflowCuration.objects.update_or_create(
        workflow=waiting.run.workflow, defaults={"resume_roles": resume_roles}
    )
    person = make_user("person", role)
    if allowed:
        assert resume(person, waiting).succeeded
        return
    with pytest.raises(ResumeRefused) as refused:
        resume(person, waiting)
    assert refused.value.status == 403
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (Outcome.RUNNING, "running"),
        (Outcome.SUCCESS, "succeeded"),
        (Outcome.FAILURE, "failed"),
        (Outcome.UNKNOWN, "unknown"),
        (Outcome.PENDING, "pending"),
    ],
)
def test_an_execution_that_is_not_waiting_is_refused_without_calling(
    waiting: Target, helpdesk: Any, simulator: Any, outcome: Outcome, words: str
) -> None:
    mark(waiting, outcome, status="whatever")
    with pytest.raises(ResumeRefused) as refused:
        resume(helpdesk, waiting)
    assert refused.value.status == 400
    assert refused.value.message == (f"This execution is not waiting for an event (it is {words}).")
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"": "x"}, "Every parameter needs a name."),
        ({"  ": "x"}, "Every parameter needs a name."),
        ({"a\x00": "x"}, "no NUL"),
        ({"a": "x\x00"}, "no NUL"),
        ({"a" * 101: "x"}, "at most 100 characters"),
        ({"a": "x" * 4001}, "at most 4,000 characters"),
        ({f"p{i}": "x" for i in range(51)}, "At most 50 parameters"),
    ],
)
def test_parameters_that_cannot_be_sent_are_refused(
    waiting: Target, helpdesk: Any, simulator: Any, params: dict[str, str], message: str
) -> None:
    with pytest.raises(ResumeRefused) as refused:
        resume(helpdesk, waiting, params)
    assert refused.value.status == 400 and message in refused.value.message
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


# --- what Nexthink answers ------------------------------------------------------------------------


def test_nexthink_saying_it_is_not_waiting_is_recorded_and_rechecked(
    waiting: Target, helpdesk: Any, simulator: Any
) -> None:
    simulator.state.trigger(waiting.execution_uuid, None)  # resumed in Nexthink meanwhile

    with pytest.raises(ResumeRefused) as refused:
        resume(helpdesk, waiting, {"Pin": "1"})

    assert refused.value.status == 400
    assert refused.value.message.startswith(
        "Nexthink says this execution is not waiting for an event any more (EXECUTION_NOT_WAITING"
    )
    recorded = Resumption.objects.get()
    assert (recorded.request_uuid, recorded.error_code) == ("", "EXECUTION_NOT_WAITING")
    assert "not waiting" in recorded.error_details and not recorded.succeeded
    assert refused.value.resumption is not None and refused.value.resumption.pk == recorded.pk
    waiting.refresh_from_db()
    assert waiting.outcome == Outcome.WAITING  # the follow-up will tell what it became
    assert Batch.objects.get(pk=waiting.batch_id).next_check_at <= timezone.now()


@pytest.mark.parametrize(
    ("status", "code", "message", "answer"),
    [
        (404, "SIMULATED_404", "Nexthink does not know this execution", 404),
        (403, "SIMULATED_403", "Nexthink refused permission to resume it", 403),
        (429, "RATE_LIMITED", "Nothing was resumed: try again in 1 s.", 429),
        (503, "UNAVAILABLE", "Nothing was resumed: try again later.", 503),
        (500, "OUTCOME_UNKNOWN", "The execution may have been resumed", 503),
    ],
)
def test_nexthink_errors_become_clear_messages_and_are_recorded(
    waiting: Target,
    helpdesk: Any,
    simulator: Any,
    status: int,
    code: str,
    message: str,
    answer: int,
) -> None:
    simulator.faults.configure(fail_next=[status], paths=[TRIGGER_PATH])

    with pytest.raises(ResumeRefused) as refused:
        resume(helpdesk, waiting, {"Approved": "yes"})

    assert message in refused.value.message
    assert refused.value.status == answer
    recorded = Resumption.objects.get()
    assert recorded.error_code.startswith(code) and not recorded.succeeded
    assert recorded.params == {"Approved": "yes"}
    waiting.refresh_from_db()
    assert waiting.outcome == Outcome.WAITING  # nothing is taken as resumed
    assert Run.objects.get(pk=waiting.run_id).status == RunStatus.WAITING


def test_a_refusal_then_a_success_are_both_in_the_history(
    waiting: Target, helpdesk: Any, simulator: Any
) -> None:
    simulator.faults.configure(fail_next=[503], paths=[TRIGGER_PATH])
    with pytest.raises(ResumeRefused):
        resume(helpdesk, waiting)
    assert resume(helpdesk, waiting).succeeded
    assert [r.succeeded for r in Resumption.objects.order_by("pk")] == [False, True]


def test_an_unconfigured_portal_is_a_clear_refusal(
    waiting: Target, helpdesk: Any, settings: Any
) -> None:
    settings.NEXTHINK_API_URL = None
    with pytest.raises(ResumeRefused) as refused:
        resume(helpdesk, waiting)
    assert refused.value.status == 503
    assert "not connected to Nexthink" in refused.value.message
    assert Resumption.objects.get().error_code == "NOT_CONFIGURED"


# --- the command ---------------------------------------------------------------------------------


def test_command_resumes_and_prints_nexthinks_request_id(
    waiting: Target, helpdesk: Any, simulator: Any
) -> None:
    out = io.StringIO()
    call_command(
        "resume_execution",
        waiting.execution_uuid,
        "--param",
        "Approved=yes",
        "--param",
        "Note=a=b",
        "--user",
        "helpdesk",
        stdout=out,
    )
    recorded = Resumption.objects.get()
    assert out.getvalue().strip() == recorded.request_uuid
    assert recorded.source == Run.Source.CLI
    upstream = simulator.state.find_execution(waiting.execution_uuid)
    assert upstream.trigger_params == {"Approved": "yes", "Note": "a=b"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "nobody"], "No user named 'nobody'"),
        (["--user", "employee"], "Not resumed: Employees cannot resume"),
        (["--user", "helpdesk", "--param", "novalue"], "write NAME=VALUE"),
        (["--user", "helpdesk", "--param", "=x"], "write NAME=VALUE"),
        (["--user", "helpdesk", "--param", "a=1", "--param", "a=2"], "given twice"),
    ],
)
def test_command_refusals_exit_non_zero_with_the_reason(
    waiting: Target, employee: Any, simulator: Any, argv: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as error:
        call_command("resume_execution", waiting.execution_uuid, *argv)
    assert message in str(error.value)
    assert error.value.returncode == 1
    assert trigger_calls(simulator) == []


def test_command_refuses_an_execution_that_is_not_waiting(waiting: Target, helpdesk: Any) -> None:
    mark(waiting, Outcome.SUCCESS, status="success")
    with pytest.raises(CommandError) as error:
        call_command("resume_execution", waiting.execution_uuid, "--user", "helpdesk")
    assert "This execution is not waiting for an event (it is succeeded)." in str(error.value)
    assert error.value.returncode == 1
