"""`manage.py run_workflow`: the same rules as the forms, from a file or stdin, with --wait."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.celery_fixtures import WorkerProcess
from workflows_app.models import Batch, BatchState, ParameterDefinition, Run, RunStatus
from workflows_app.roles import Role

COLLECTOR = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def run_command(*args: str, stdin: str | None = None) -> tuple[str, str]:
    """Call the command; returns (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    extra: dict[str, Any] = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command("run_workflow", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def refused(*args: str, stdin: str | None = None) -> tuple[CommandError, str]:
    """Call the command expecting a refusal; returns the error and what went to stderr."""
    err = io.StringIO()
    extra: dict[str, Any] = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    with pytest.raises(CommandError) as caught:
        call_command("run_workflow", *args, stdout=io.StringIO(), stderr=err, **extra)
    return caught.value, err.getvalue()


@pytest.fixture
def no_broker(enqueued: list[int]) -> None:
    """Keep runs created without a worker from publishing messages."""


def test_happy_path_waits_for_the_worker(
    celery_worker: WorkerProcess,
    simulator: Any,
    role_user: Any,
    sim_workflow: Any,
    tmp_path: Path,
    settings: Any,
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com/"
    role_user("agent", Role.HELPDESK)
    ParameterDefinition.objects.create(
        workflow=sim_workflow("#reset_network_adapter"), name="Reason", required=True
    )
    targets = tmp_path / "devices.csv"
    targets.write_text(f"device_name,collector_uid\nEMP-LT-0142,{COLLECTOR}\nLAB-PC-7,\n")

    out, _ = run_command(
        "#reset_network_adapter",
        "--targets",
        str(targets),
        "--user",
        "agent",
        "--param",
        "Reason=flaky wifi",
        "--reason",
        "INC0042",
        "--wait",
        "--timeout",
        "30",
        "--poll-interval",
        "0.2",
    )

    run = Run.objects.get()
    assert f"Run {run.pk} queued: 3 targets in 1 batch(es), API v2" in out
    assert f"https://portal.example.com/runs/{run.pk}/" in out
    assert "batch 1: submitted, 3 targets, request " in out
    assert (run.status, run.source, run.reason) == (RunStatus.IN_PROGRESS, "cli", "INC0042")
    (record,) = simulator.state.executions
    assert record.params == {"Reason": "flaky wifi"}
    assert {next(iter(d.values())) for d in record.devices} == {
        "EMP-LT-0142",
        COLLECTOR,
        "LAB-PC-7",
    }


def test_wait_exits_non_zero_when_a_batch_fails(
    celery_worker: WorkerProcess, simulator: Any, role_user: Any, sim_workflow: Any
) -> None:
    role_user("agent", Role.HELPDESK)
    sim_workflow("#clear_teams_cache")
    simulator.faults.configure(fail_next=[400], paths=["/api/v1/workflows/execute"])

    error, _ = refused(
        "#clear_teams_cache",
        "--targets",
        "-",
        "--user",
        "agent",
        "--wait",
        "--timeout",
        "30",
        "--poll-interval",
        "0.2",
        stdin=f"{COLLECTOR}\n",
    )

    assert error.returncode == 2
    assert "1 batch(es) failed or have an unknown outcome" in str(error)
    assert Batch.objects.get().state == BatchState.FAILED


@pytest.mark.django_db
def test_invalid_lines_are_listed_and_nothing_is_submitted(
    helpdesk: Any, sim_workflow: Any, no_broker: None
) -> None:
    sim_workflow("#clear_teams_cache")
    error, stderr = refused(
        "#clear_teams_cache",
        "--targets",
        "-",
        "--user",
        "helpdesk",
        stdin=f"{COLLECTOR}\nbad:thing\nS-1-5-oops\n",
    )
    assert error.returncode == 1
    assert "line 2: 'bad:thing' unknown prefix" in stderr
    assert "line 3:" in stderr
    assert "2 problem(s) in the targets; nothing was submitted" in str(error)
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_wrong_role_is_refused(employee: Any, sim_workflow: Any, no_broker: None) -> None:
    sim_workflow("#clear_teams_cache", self_service=True)
    error, _ = refused(
        "#clear_teams_cache", "--targets", "-", "--user", "employee", stdin=f"{COLLECTOR}\n"
    )
    assert error.returncode == 1
    assert "Refused: Employees run workflows from the self-service page" in str(error)
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_helpdesk_left_out_by_curation_is_refused(
    helpdesk: Any, sim_workflow: Any, no_broker: None
) -> None:
    sim_workflow("#clear_teams_cache", allowed_roles=["Admin"])
    error, _ = refused(
        "#clear_teams_cache", "--targets", "-", "--user", "helpdesk", stdin=f"{COLLECTOR}\n"
    )
    assert str(error).startswith("Refused:")
    assert not Run.objects.exists()


def refused_params(*pairs: str) -> tuple[CommandError, str]:
    """Run #unlock_ad_account on one SID as helpdesk with these --param options (it must fail)."""
    options = [item for pair in pairs for item in ("--param", pair)]
    args = ("#unlock_ad_account", "--targets", "-", "--user", "helpdesk", *options)
    return refused(*args, stdin="S-1-5-21-1-2-3\n")


@pytest.mark.django_db
def test_parameter_errors_are_printed(helpdesk: Any, sim_workflow: Any, no_broker: None) -> None:
    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", required=True)
    error, stderr = refused_params("Colour=red")
    assert "--param Reason: Reason is required." in stderr
    assert "--param Colour: Unknown parameter 'Colour'" in stderr
    assert error.returncode == 1 and not Run.objects.exists()


@pytest.mark.django_db
def test_parameter_errors_never_quote_a_secret_and_slow_patterns_time_out(
    helpdesk: Any, sim_workflow: Any, no_broker: None
) -> None:
    workflow = sim_workflow("#unlock_ad_account")
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", type="number", secret=True)
    ParameterDefinition.objects.create(workflow=workflow, name="Code", pattern=r"(a|aa)+")
    error, stderr = refused_params("Pin=12ab-s3cret", "Code=" + "a" * 60 + "!")
    assert "--param Pin: Pin must be a number.\n" in stderr
    assert "12ab-s3cret" not in stderr + str(error)
    assert "--param Code: Code could not be checked in time" in stderr
    assert error.returncode == 1 and not Run.objects.exists()


@pytest.mark.django_db
def test_malformed_param_option_is_refused(helpdesk: Any, sim_workflow: Any) -> None:
    sim_workflow("#unlock_ad_account")
    error, _ = refused(
        "#unlock_ad_account",
        "--targets",
        "-",
        "--user",
        "helpdesk",
        "--param",
        "Reason",
        stdin="S-1-5-21-1-2-3\n",
    )
    assert "write NAME=VALUE" in str(error)


@pytest.mark.django_db
def test_unknown_user_workflow_or_file_is_refused(helpdesk: Any, sim_workflow: Any) -> None:
    sim_workflow("#clear_teams_cache")
    assert "No user named 'ghost'" in str(
        refused("#clear_teams_cache", "--targets", "-", "--user", "ghost", stdin="x\n")[0]
    )
    assert "No workflow '#nope'" in str(
        refused("#nope", "--targets", "-", "--user", "helpdesk", stdin="x\n")[0]
    )
    assert "Cannot read /nonexistent/list.txt" in str(
        refused("#clear_teams_cache", "--targets", "/nonexistent/list.txt", "--user", "helpdesk")[0]
    )


@pytest.mark.django_db
def test_text_file_is_read_as_pasted_text_and_url_is_relative_without_base(
    helpdesk: Any, sim_workflow: Any, no_broker: None, tmp_path: Path, settings: Any
) -> None:
    settings.PORTAL_BASE_URL = ""
    sim_workflow("#clear_teams_cache")
    listing = tmp_path / "devices.lst"
    listing.write_text(f"# today's list\n{COLLECTOR}\n{COLLECTOR.upper()}\nPC-1\n")

    out, _ = run_command("#clear_teams_cache", "--targets", str(listing), "--user", "helpdesk")

    run = Run.objects.get()
    assert (run.target_count, run.duplicate_count, run.api_version) == (2, 1, "v2")
    assert "1 duplicate line(s) dropped" in out
    assert out.splitlines()[1] == f"/runs/{run.pk}/"
