"""The helpdesk run form, its confirmation step, and the pages that follow a run."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workflows_app import permissions
from workflows_app.models import (
    Batch,
    BatchState,
    Outcome,
    ParameterDefinition,
    Run,
    RunStatus,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.selectors.runs import TARGET_COLUMNS, target_page
from workflows_app.services import lifecycle, pending_runs
from workflows_app.services.runs import create_run
from workflows_app.services.secrets import decrypt_dict
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db

SECRET = "hunter2-Sup3r-s3cret"
SID = "S-1-5-21-1004336348-1177238915-682003330-{}"


# --- rows --------------------------------------------------------------------------------------


def make_workflow(
    nql_id: str = "#clear_teams_cache", *, dependency: str = "DEVICE", **overrides: Any
) -> Workflow:
    now = timezone.now()
    fields: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "name": f"Workflow {nql_id}",
        "status": Workflow.Status.ACTIVE,
        "dependency": dependency,
        "trigger_api": True,
        "first_seen": now,
        "last_seen": now,
        **overrides,
    }
    return Workflow.objects.create(nql_id=nql_id, **fields)


def add_param(workflow: Workflow, name: str, **fields: Any) -> ParameterDefinition:
    position = workflow.parameters.count()
    return ParameterDefinition.objects.create(
        workflow=workflow, name=name, position=position, **fields
    )


@pytest.fixture
def workflow() -> Workflow:
    """A device workflow with one parameter of each kind, one of them secret."""
    wf = make_workflow()
    add_param(wf, "mode", type="choice", choices=["quick", "full"], default="quick")
    add_param(wf, "ticket", label="Ticket", required=True, pattern=r"INC\d{7}")
    add_param(wf, "restart", type="boolean", default="false")
    add_param(wf, "days", type="number", default="7")
    add_param(wf, "password", label="Admin password", secret=True)
    return wf


def uuids(count: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(count)]


def good_post(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reason": "INC0012345 Teams will not start",
        "targets_text": "\n".join(uuids(3)),
        "param_mode": "full",
        "param_ticket": "INC0012345",
        "param_restart": "true",
        "param_days": "3",
        "param_password": SECRET,
    }
    data.update(extra)
    return data


def start_url(wf: Workflow) -> str:
    return reverse("runs:start", args=[wf.pk])


def confirm_url(wf: Workflow) -> str:
    return reverse("runs:confirm", args=[wf.pk])


def token_of(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "no confirmation token on the page"
    return match.group(1)


def make_run(user: Any, wf: Workflow, count: int = 3, **extra: Any) -> Run:
    targets = [Wanted(TargetKind.DEVICE_COLLECTOR, u, i + 1) for i, u in enumerate(uuids(count))]
    needs_ticket = wf.parameters.filter(name="ticket").exists()
    fields: dict[str, Any] = {
        "params": {"ticket": "INC0000001"} if needs_ticket else {},
        "reason": "test",
        "source": Run.Source.HELPDESK,
        "allow_duplicate": True,
        **extra,
    }
    return create_run(user=user, workflow=wf, targets=targets, **fields)


@pytest.fixture
def memory_broker() -> Iterator[Any]:
    """Publish to kombu's in-memory transport, not to the shared Redis broker.

    Django's settings are read once by the Celery app, so the app's own conf is switched.
    """
    from portal.celery import app

    saved = app.conf.broker_url

    def reset_pools() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = "memory://"
    reset_pools()
    yield app
    reset_pools()
    app.conf.broker_url = saved


# --- the form ----------------------------------------------------------------------------------


def test_form_shows_the_workflow_its_needs_and_typed_fields(client_for, helpdesk, workflow):
    response = client_for(helpdesk).get(start_url(workflow))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Needs devices" in html
    assert 'name="targets_text"' in html and 'name="targets_file"' in html
    assert '<option value="quick" selected>' in html
    assert 'type="password"' in html and 'name="param_password"' in html
    assert 'name="param_days"' in html and 'type="number"' in html


def test_admin_may_open_the_form(client_for, admin_user, workflow):
    assert client_for(admin_user).get(start_url(workflow)).status_code == 200


def assert_refused(response: Any, *messages: str) -> str:
    html = response.content.decode()
    assert response.status_code == 400, html[:2000]
    for message in messages:
        assert message in html, f"{message!r} not in the page"
    assert not Run.objects.exists()
    assert not Batch.objects.exists()
    assert not Target.objects.exists()
    return html


def test_empty_targets_are_refused(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(targets_text="  \n\n"))
    assert_refused(response, "Enter at least one target")


def test_only_comments_count_as_empty(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(targets_text="# none\n"))
    assert_refused(response, "Enter at least one target")


def test_more_than_100000_targets_are_refused(client_for, helpdesk, workflow):
    upload = SimpleUploadedFile("many.txt", "\n".join(uuids(100_001)).encode())
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="", targets_file=upload)
    )
    assert_refused(response, "100,001 targets given; at most 100,000")


def test_text_and_file_together_over_the_limit_are_refused(client_for, helpdesk, workflow):
    ids = uuids(100_001)
    upload = SimpleUploadedFile("part.txt", "\n".join(ids[:60_000]).encode())
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="\n".join(ids[60_000:]), targets_file=upload)
    )
    assert_refused(response, "100,001 targets given")


def test_every_malformed_line_is_reported_with_its_number(client_for, helpdesk, workflow):
    text = "\n".join(
        [
            uuids(1)[0],
            "3fa85f64-5717-4562-b3fc-2c963f66afaZ",  # line 2: not hex
            "S-1-x",  # line 3
            "jane@doe@example.com",  # line 4
            "",
            "upn:not-an-upn",  # line 6
            "sid:S-1",  # line 7
        ]
    )
    response = client_for(helpdesk).post(start_url(workflow), good_post(targets_text=text))
    html = assert_refused(response)
    for number, raw, reason in [
        (2, "3fa85f64-5717-4562-b3fc-2c963f66afaZ", "not a valid UUID"),
        (3, "S-1-x", "not a valid SID"),
        (4, "jane@doe@example.com", "not a valid UPN"),
        (6, "upn:not-an-upn", "not a valid UPN"),
        (7, "sid:S-1", "not a valid SID"),
    ]:
        assert re.search(rf"Line {number}: &#x27;{re.escape(raw)}&#x27; — [^<]*{reason}", html), (
            f"line {number} not reported"
        )


def test_error_list_is_capped_at_200_lines(client_for, helpdesk, workflow):
    text = "\n".join(f"S-1-bad{i}" for i in range(250))
    response = client_for(helpdesk).post(start_url(workflow), good_post(targets_text=text))
    html = assert_refused(response, "Line 200: ", "…and 50 more lines with errors.")
    assert "Line 201: " not in html


def test_a_csv_with_a_wrong_column_is_refused(client_for, helpdesk, workflow):
    upload = SimpleUploadedFile("devices.csv", b"hostname,owner\nPC-1,jane\n")
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="", targets_file=upload)
    )
    assert_refused(response, "needs a first row naming them", "hostname")


def test_a_csv_with_an_unknown_column_among_known_ones_is_refused(client_for, helpdesk, workflow):
    upload = SimpleUploadedFile("devices.csv", b"device_name,colour\nPC-1,blue\n")
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="", targets_file=upload)
    )
    assert_refused(response, "Unknown column(s) &#x27;colour&#x27;")


def test_a_non_utf8_upload_is_refused(client_for, helpdesk, workflow):
    upload = SimpleUploadedFile("devices.txt", "PC-1\nCAFÉ-2\n".encode("latin-1"))
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="", targets_file=upload)
    )
    assert_refused(response, "Line 2: ", "not UTF-8 text", "save it as UTF-8")


def test_a_spreadsheet_upload_is_refused(client_for, helpdesk, workflow):
    upload = SimpleUploadedFile("devices.xlsx", b"PK\x03\x04rest")
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="", targets_file=upload)
    )
    assert_refused(response, "save the sheet as CSV UTF-8")


def test_users_on_a_device_workflow_are_refused(client_for, helpdesk, workflow):
    text = f"{uuids(1)[0]}\n{SID.format(1)}"
    response = client_for(helpdesk).post(start_url(workflow), good_post(targets_text=text))
    assert_refused(response, "runs on devices only", "line 2")


def test_a_missing_required_parameter_is_refused(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_ticket=""))
    html = assert_refused(response, "This field is required.")
    assert 'data-testid="errors-param_ticket"' in html


def test_a_value_failing_its_pattern_is_refused(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_ticket="INC12"))
    assert_refused(response, "Ticket does not have the expected format (INC\\d{7}).")


def test_an_unknown_choice_is_refused(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_mode="nuke"))
    assert_refused(response, "Select a valid choice. nuke is not one of the available choices.")


def test_a_number_parameter_must_be_a_number(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_days="soon"))
    assert_refused(response, "Enter a number.")


def test_errors_in_targets_and_parameters_are_reported_together(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="S-1-x", param_ticket="nope")
    )
    assert_refused(response, "Line 1: ", "does not have the expected format")


def test_a_rerendered_form_keeps_the_text_but_never_the_secret(client_for, helpdesk, workflow):
    text = f"{uuids(1)[0]}\nS-1-x"
    response = client_for(helpdesk).post(start_url(workflow), good_post(targets_text=text))
    html = assert_refused(response)
    assert uuids(1)[0] in html and "INC0012345 Teams will not start" in html
    assert SECRET not in html


def test_a_secret_value_is_never_quoted_in_a_parameter_error(client_for, helpdesk, workflow):
    add_param(workflow, "pin", label="PIN", type="number", secret=True)
    add_param(workflow, "vault", label="Vault", type="choice", choices=["a", "b"], secret=True)
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(param_pin="12ab-s3cret", param_vault="c-s3cret")
    )
    html = assert_refused(response, "PIN must be a number.", "Vault: pick one of the values")
    assert "s3cret" not in html
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_mode="c-open"))
    assert "c-open" in assert_refused(response)  # a value that is not secret may be quoted


def test_a_stored_pattern_too_slow_to_match_refuses_the_run_with_a_clear_message(
    client_for, helpdesk, workflow
):
    """A pattern saved before the nested-repetition rule cannot hold the server (66 s before)."""
    add_param(workflow, "code", label="Code", pattern=r"(a|aa)+")
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_code="a" * 60 + "!"))
    assert_refused(response, "Code could not be checked in time", "Ask an admin to simplify")


def test_unknown_parameters_are_refused_by_name(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(param_evil="x"))
    assert response.status_code == 400
    assert "Unknown parameter(s): evil" in response.content.decode()
    assert not Run.objects.exists()


def test_fields_that_are_not_parameters_are_ignored(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(start_url(workflow), good_post(evil="y"))
    assert response.status_code == 200
    assert "Run now" in response.content.decode()


# --- confirmation and start --------------------------------------------------------------------


def test_happy_path_form_confirm_run_page(client_for, helpdesk, workflow):
    client = client_for(helpdesk)
    text = "\n".join([*uuids(12), uuids(1)[0], "PC-0042"])
    response = client.post(start_url(workflow), good_post(targets_text=text))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="target-count">13<' in html
    assert "1 duplicate dropped" in html
    assert html.count("<td>Collector UUID</td>") == 10  # a sample of the first ten
    assert "PC-0042" not in html  # the 13th target is not in the sample
    assert 'data-testid="api-version">v2<' in html  # a device name needs v2
    assert 'data-testid="batch-count">1<' in html
    assert "••••••" in html and SECRET not in html
    assert not Run.objects.exists()  # nothing runs before "Run now"

    response = client.post(confirm_url(workflow), {"token": token_of(html)})
    run = Run.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("runs:detail", args=[run.pk])
    assert run.source == Run.Source.HELPDESK
    assert run.created_by == helpdesk
    assert run.target_count == 13 and run.duplicate_count == 1
    assert run.reason == "INC0012345 Teams will not start"
    assert run.params["password"] == "••••••"
    assert run.params["restart"] == "true" and run.params["days"] == "3"
    assert decrypt_dict(run.secret_params) == {"password": SECRET}
    assert list(run.targets.order_by("position").values_list("value", flat=True))[-1] == "PC-0042"
    assert run.batches.count() == 1

    page = client.get(response.url).content.decode()
    assert 'data-batch="1"' in page and "INC0012345 Teams will not start" in page
    assert SECRET not in page
    assert SECRET not in client.get(reverse("runs:list")).content.decode()


def test_a_run_queues_one_task_per_batch_on_commit(
    client_for, helpdesk, workflow, memory_broker, django_capture_on_commit_callbacks
):
    client = client_for(helpdesk)
    html = client.post(start_url(workflow), good_post()).content.decode()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(confirm_url(workflow), {"token": token_of(html)})
    assert len(callbacks) == 2  # the batch's message, and the run.created notification's
    with memory_broker.connection_for_write() as conn:
        queue = conn.SimpleQueue(memory_broker.conf.task_default_queue)
        messages = [queue.get(timeout=1) for _ in callbacks]
        sent = {m.headers["task"]: m.headers["argsrepr"] for m in messages}
        for message in messages:
            message.ack()
        queue.close()
    run = Run.objects.get()
    assert sent == {
        "workflows_app.tasks.submit_batch": f"({Batch.objects.get().pk},)",
        "workflows_app.tasks.notify_task": f"({run.pk}, 'run.created', {{}})",
    }


def test_more_than_10000_targets_make_several_batches(client_for, helpdesk, workflow):
    client = client_for(helpdesk)
    text = "\n".join(uuids(10_001))
    html = client.post(start_url(workflow), good_post(targets_text=text)).content.decode()
    assert 'data-testid="batch-count">2<' in html and 'data-testid="api-version">v1<' in html
    client.post(confirm_url(workflow), {"token": token_of(html)})
    run = Run.objects.get()
    assert list(run.batches.values_list("number", "target_count")) == [(1, 10_000), (2, 1)]
    assert Target.objects.filter(run=run).count() == 10_001


def test_text_and_file_are_merged_and_deduplicated(client_for, helpdesk, workflow):
    ids = uuids(5)
    upload = SimpleUploadedFile("more.csv", ("collector_uid\n" + "\n".join(ids[2:])).encode())
    response = client_for(helpdesk).post(
        start_url(workflow), good_post(targets_text="\n".join(ids[:3]), targets_file=upload)
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="target-count">5<' in html and "1 duplicate dropped" in html


def test_confirming_twice_starts_one_run(client_for, helpdesk, workflow):
    client = client_for(helpdesk)
    token = token_of(client.post(start_url(workflow), good_post()).content.decode())
    first = client.post(confirm_url(workflow), {"token": token})
    second = client.post(confirm_url(workflow), {"token": token})
    assert Run.objects.count() == 1
    assert second.status_code == 302 and second.url == first.url


def test_the_confirmed_start_asks_the_run_rule_once(client_for, helpdesk, workflow, monkeypatch):
    client = client_for(helpdesk)
    token = token_of(client.post(start_url(workflow), good_post()).content.decode())
    asked: list[tuple[Any, ...]] = []
    ask = permissions.permit
    monkeypatch.setattr(permissions, "permit", lambda *args: asked.append(args) or ask(*args))

    response = client.post(confirm_url(workflow), {"token": token})

    assert response.status_code == 302 and Run.objects.count() == 1
    assert [(user, wf, source) for user, wf, source in asked] == [
        (helpdesk, workflow, Run.Source.HELPDESK)
    ]


def test_an_unknown_confirmation_token_asks_to_submit_again(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(confirm_url(workflow), {"token": "no-such-token"})
    assert_refused(response, "This confirmation expired; please submit the form again")


def test_an_old_confirmation_has_expired(client_for, helpdesk, workflow, monkeypatch):
    client = client_for(helpdesk)
    token = token_of(client.post(start_url(workflow), good_post()).content.decode())
    now = pending_runs.time.time()
    monkeypatch.setattr(
        pending_runs.time, "time", lambda: now + pending_runs.CONFIRM_TTL_SECONDS + 1
    )
    response = client.post(confirm_url(workflow), {"token": token})
    assert_refused(response, "This confirmation expired")


def test_a_token_is_bound_to_its_workflow(client_for, helpdesk, workflow):
    other = make_workflow("#other")
    client = client_for(helpdesk)
    token = token_of(client.post(start_url(workflow), good_post()).content.decode())
    response = client.post(confirm_url(other), {"token": token})
    assert_refused(response, "This confirmation expired")


def test_a_refused_run_returns_to_the_form_with_the_reason(client_for, helpdesk, workflow):
    client = client_for(helpdesk)
    first = token_of(client.post(start_url(workflow), good_post()).content.decode())
    again = token_of(client.post(start_url(workflow), good_post()).content.decode())
    client.post(confirm_url(workflow), {"token": first})
    existing = Run.objects.get()
    response = client.post(confirm_url(workflow), {"token": again})
    html = response.content.decode()
    assert response.status_code == 400
    assert "was not started twice" in html
    assert f'href="/runs/{existing.pk}/"' in html
    assert 'data-testid="run-form"' in html
    assert Run.objects.count() == 1


# --- who may start a run -----------------------------------------------------------------------


def test_employee_may_not_open_the_form(client_for, employee, workflow):
    client = client_for(employee)
    assert client.get(start_url(workflow)).status_code == 403
    assert client.post(start_url(workflow), good_post()).status_code == 403
    assert client.post(confirm_url(workflow), {"token": "x"}).status_code == 403
    assert not Run.objects.exists()


def test_confirm_answers_only_post(client_for, helpdesk, workflow):
    assert client_for(helpdesk).get(confirm_url(workflow)).status_code == 405


def test_anonymous_users_are_sent_to_login(client, workflow, helpdesk):
    run = make_run(helpdesk, workflow)
    for url in [
        start_url(workflow),
        reverse("runs:list"),
        reverse("runs:detail", args=[run.pk]),
        reverse("runs:progress", args=[run.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/"), url
    response = client.post(confirm_url(workflow), {"token": "x"})
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_an_account_without_a_role_may_not_follow_runs(make_user, client_for, workflow, helpdesk):
    run = make_run(helpdesk, workflow)
    client = client_for(make_user("roleless", None))
    for url in [
        reverse("runs:list"),
        reverse("runs:detail", args=[run.pk]),
        reverse("runs:progress", args=[run.pk]),
    ]:
        assert client.get(url).status_code == 403, url


def test_secret_parameters_are_hidden_from_error_reports(client_for, helpdesk, workflow):
    """A crash report built from the run form's request must not carry its POST values."""
    from django.views.debug import SafeExceptionReporterFilter

    response = client_for(helpdesk).post(start_url(workflow), {"targets_text": ""})
    request = response.wsgi_request
    filtered = SafeExceptionReporterFilter().get_post_parameters(request)
    assert request.sensitive_post_parameters == "__ALL__"
    assert all(
        value == SafeExceptionReporterFilter.cleansed_substitute for value in filtered.values()
    )


def test_an_unknown_workflow_is_404(client_for, helpdesk):
    assert client_for(helpdesk).get(reverse("runs:start", args=[999_999])).status_code == 404


def test_helpdesk_left_out_by_curation_gets_403_with_a_message(client_for, helpdesk, workflow):
    WorkflowCuration.objects.create(workflow=workflow, allowed_roles=[Role.ADMIN.value])
    response = client_for(helpdesk).get(start_url(workflow))
    assert response.status_code == 403
    assert "may not run" in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "explanation"),
    [
        ({"trigger_api": False}, "does not have its API trigger enabled"),
        ({"status": Workflow.Status.INACTIVE}, "is inactive in Nexthink"),
        ({"removed_at": timezone.now()}, "no longer exists in Nexthink"),
        ({"dependency": "NONE"}, "takes no targets"),
    ],
)
def test_a_workflow_the_portal_cannot_run_is_explained_without_a_form(
    client_for, helpdesk, overrides, explanation
):
    wf = make_workflow(**overrides)
    client = client_for(helpdesk)
    response = client.get(start_url(wf))
    html = response.content.decode()
    assert response.status_code == 200
    assert explanation in html and 'data-testid="run-form"' not in html
    assert client.post(start_url(wf), good_post()).status_code == 400
    assert not Run.objects.exists()


# --- following a run ---------------------------------------------------------------------------


@pytest.fixture
def self_service_workflow() -> Workflow:
    wf = make_workflow("#restart_teams")
    WorkflowCuration.objects.create(workflow=wf, self_service=True)
    return wf


def test_employees_see_only_their_own_runs(
    client_for, make_user, employee, helpdesk, self_service_workflow
):
    own = make_run(employee, self_service_workflow, source=Run.Source.SELF_SERVICE)
    other_employee = make_user("other", Role.EMPLOYEE)
    theirs = make_run(other_employee, self_service_workflow, source=Run.Source.SELF_SERVICE)
    by_helpdesk = make_run(helpdesk, self_service_workflow)
    client = client_for(employee)
    assert client.get(reverse("runs:detail", args=[own.pk])).status_code == 200
    for run in (theirs, by_helpdesk):
        assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 404
        assert client.get(reverse("runs:progress", args=[run.pk])).status_code == 404
    listed = client.get(reverse("runs:list")).content.decode()
    assert f'data-run="{own.pk}"' in listed
    assert f'data-run="{theirs.pk}"' not in listed and f'data-run="{by_helpdesk.pk}"' not in listed


def test_helpdesk_and_admins_see_every_run(
    client_for, employee, helpdesk, admin_user, self_service_workflow
):
    run = make_run(employee, self_service_workflow, source=Run.Source.SELF_SERVICE)
    for user in (helpdesk, admin_user):
        client = client_for(user)
        assert client.get(reverse("runs:detail", args=[run.pk])).status_code == 200
        everyone = client.get(reverse("runs:list"), {"mine": "0"}).content.decode()
        assert f'data-run="{run.pk}"' in everyone


def test_an_unknown_run_is_404(client_for, helpdesk):
    client = client_for(helpdesk)
    assert client.get(reverse("runs:detail", args=[999_999])).status_code == 404
    assert client.get(reverse("runs:progress", args=[999_999])).status_code == 404


def test_run_pages_answer_only_get(client_for, helpdesk, workflow):
    run = make_run(helpdesk, workflow)
    client = client_for(helpdesk)
    assert client.post(reverse("runs:detail", args=[run.pk])).status_code == 405
    assert client.post(reverse("runs:progress", args=[run.pk])).status_code == 405
    assert client.post(reverse("runs:list")).status_code == 405


def test_progress_polls_while_in_flight_and_stops_once_final(client_for, helpdesk, workflow):
    run = make_run(helpdesk, workflow)
    client = client_for(helpdesk)
    progress_url = reverse("runs:progress", args=[run.pk])
    for url in (reverse("runs:detail", args=[run.pk]), progress_url):
        response = client.get(url, headers={"HX-Request": "true"})
        html = response.content.decode()
        assert 'hx-trigger="every 2s"' in html and f'hx-get="{progress_url}"' in html
        assert 'hx-swap="outerHTML"' in html
        assert "HX-Trigger" not in response.headers

    # Sent, and every execution ended: the run is final and nothing is checked any more.
    Batch.objects.filter(run=run).update(
        state=BatchState.SUBMITTED, request_uuid="req-1", attempts=1, finished_at=timezone.now()
    )
    Target.objects.filter(run=run).update(outcome=Outcome.SUCCESS, status="success")
    for batch_id in Batch.objects.filter(run=run).values_list("pk", flat=True):
        lifecycle.recount(batch_id)
    lifecycle.refresh_run_status(run.pk)
    response = client.get(progress_url, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "hx-trigger" not in html and 'id="run-progress"' in html
    assert 'data-testid="run-status">Succeeded<' in html
    assert 'data-count="succeeded-targets">' in html and "req-1" in html
    # The last poll asks the page to reload its targets (now with their outcomes).
    assert "run-settled" in json.loads(response.headers["HX-Trigger"])
    assert "hx-trigger" not in client.get(reverse("runs:detail", args=[run.pk])).content.decode()


def test_batch_errors_are_shown(client_for, helpdesk, workflow):
    run = make_run(helpdesk, workflow)
    Batch.objects.filter(run=run).update(
        state=BatchState.FAILED, error_code="WORKFLOW_INACTIVE", error_details="It is off."
    )
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "WORKFLOW_INACTIVE" in html and "It is off." in html


def test_targets_are_paged_by_position_without_counting(
    client_for, helpdesk, workflow, django_assert_max_num_queries
):
    run = make_run(helpdesk, workflow, count=250)
    client = client_for(helpdesk)
    url = reverse("runs:detail", args=[run.pk])

    with CaptureQueriesContext(connection) as queries:
        first = client.get(url).content.decode()
    assert not [q for q in queries if "COUNT(" in q["sql"].upper()]
    assert first.count("data-position=") == 100
    assert 'data-position="0"' in first and 'data-position="99"' in first
    assert f'href="{url}?after=99"' in first
    assert "1–100 of 250" in first

    second = client.get(url, {"after": 99}).content.decode()
    assert second.count("data-position=") == 100
    assert 'data-position="100"' in second and 'data-position="199"' in second
    assert f'href="{url}?after=199"' in second

    last = client.get(url, {"after": 199}).content.decode()
    assert last.count("data-position=") == 50 and "?after=" not in last

    # Nonsense is the first page, not an error.
    assert client.get(url, {"after": "abc"}).status_code == 200


def test_run_list_is_keyset_paged_and_filtered(client_for, helpdesk, workflow):
    other = make_workflow("#other_workflow")
    runs = [make_run(helpdesk, workflow) for _ in range(52)]
    odd = make_run(helpdesk, other)
    Run.objects.filter(pk=runs[0].pk).update(status=RunStatus.FAILED)
    client = client_for(helpdesk)
    url = reverse("runs:list")

    with CaptureQueriesContext(connection) as queries:
        first = client.get(url).content.decode()
    assert not [q for q in queries if "COUNT(" in q["sql"].upper()]
    assert first.count("data-run=") == 50
    assert f'data-run="{odd.pk}"' in first and f'data-run="{runs[0].pk}"' not in first
    older = re.search(r'href="(/runs/\?[^"]*before=\d+)"', first)
    assert older
    second = client.get(html.unescape(older.group(1))).content.decode()
    assert second.count("data-run=") == 3 and "runs-older" not in second

    by_status = client.get(url, {"status": "failed"}).content.decode()
    assert by_status.count("data-run=") == 1 and f'data-run="{runs[0].pk}"' in by_status
    by_workflow = client.get(url, {"workflow": "#other_workflow"}).content.decode()
    assert by_workflow.count("data-run=") == 1 and f'data-run="{odd.pk}"' in by_workflow
    assert client.get(url, {"status": "bogus", "before": "x"}).status_code == 200


# --- selectors behind the pages -----------------------------------------------------------------


def test_target_page_reads_only_the_columns_it_shows(helpdesk, workflow) -> None:
    run = make_run(helpdesk, workflow, count=5)

    page = target_page(run, after=1, size=2)

    assert [t.position for t in page.targets] == [2, 3]
    assert (page.first_shown, page.last_shown, page.next_after) == (3, 4, 3)
    loaded = {f.attname for f in Target._meta.concrete_fields} - page.targets[
        0
    ].get_deferred_fields()
    assert loaded == {"id", *TARGET_COLUMNS}
    assert target_page(run, after=4).targets == [] and target_page(run, after=4).first_shown == 0
