""" "Run again" from a run's page (all its targets, its parameters and reason, through the usual
confirmation, past the double-click guard), and "Change something" on the confirmation page
bringing back what was typed. Secret values are never put back into a page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.test_run_views import (
    SECRET,
    confirm_url,
    good_post,
    make_workflow,
    start_url,
    token_of,
    uuids,
)
from tests.test_run_views import workflow as workflow  # noqa: F401  (the fixture)
from workflows_app import permissions
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    Outcome,
    Run,
    RunEvent,
    RunEventKind,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.services.runs import RunRefused, create_permitted_run, create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db

REASON = "INC0012345 Teams will not start"


def textarea_lines(html: str) -> list[str]:
    match = re.search(r'<textarea name="targets_text"[^>]*>(.*?)</textarea>', html, re.S)
    assert match, "no targets box on the page"
    return match.group(1).strip().splitlines()


def again_value(html: str) -> str:
    match = re.search(r'<input type="hidden" name="again"(?: value="([^"]*)")?', html)
    assert match, "no hidden again field"
    return match.group(1) or ""


def first_run(user: Any, workflow: Workflow) -> Run:
    """A run as the helpdesk form makes it, secret included, the guard active (no duplicates
    allowed)."""
    targets = [
        Wanted(TargetKind.DEVICE_COLLECTOR, uuids(1)[0], 1),
        Wanted(TargetKind.DEVICE_NAME, "3fa85f64-5717-4562-b3fc-2c963f66afa6", 2),
        Wanted(TargetKind.DEVICE_NAME, "PC-0042", 3),
    ]
    return create_run(
        user=user,
        workflow=workflow,
        targets=targets,
        params={"ticket": "INC0012345", "mode": "full", "restart": "true", "password": SECRET},
        reason=REASON,
        source=Run.Source.HELPDESK,
    )


def other_workflows_run(user: Any) -> Run:
    return create_run(
        user=user,
        workflow=make_workflow("#other_workflow"),
        targets=[Wanted(TargetKind.DEVICE_NAME, "PC-1", 1)],
        params={},
        reason="",
        source=Run.Source.HELPDESK,
    )


def again_url(run: Run) -> str:
    return f"{start_url(run.workflow)}?again={run.pk}"


# --- the button ----------------------------------------------------------------------------------
def test_run_again_is_offered_only_to_people_who_may_run_the_workflow(
    client_for, helpdesk, admin_user, workflow, enqueued
):
    run = first_run(helpdesk, workflow)
    link = f'href="/workflows/{workflow.pk}/run/?again={run.pk}"'
    detail = reverse("runs:detail", args=[run.pk])
    for user in (helpdesk, admin_user):
        html = client_for(user).get(detail).content.decode()
        assert link in html and "all 3 targets" in html

    WorkflowCuration.objects.create(workflow=workflow, allowed_roles=[Role.ADMIN.value])
    assert link not in client_for(helpdesk).get(detail).content.decode()
    assert link in client_for(admin_user).get(detail).content.decode()

    Workflow.objects.filter(pk=workflow.pk).update(status=Workflow.Status.INACTIVE)
    assert link not in client_for(admin_user).get(detail).content.decode()


def test_employees_may_not_run_again(client_for, employee, helpdesk, workflow, enqueued):
    run = first_run(helpdesk, workflow)
    client = client_for(employee)

    assert client.get(again_url(run)).status_code == 403
    posted = client.post(start_url(workflow), good_post(again=run.pk))
    assert posted.status_code == 403
    assert client.post(reverse("runs:change", args=[workflow.pk]), {"token": "x"}).status_code == (
        403
    )
    assert Run.objects.count() == 1


def test_a_workflow_no_longer_runnable_cannot_be_run_again(
    client_for, admin_user, helpdesk, workflow, enqueued
):
    run = first_run(helpdesk, workflow)
    Workflow.objects.filter(pk=workflow.pk).update(trigger_api=False)
    client = client_for(admin_user)

    page = client.get(again_url(run))
    assert page.status_code == 200 and 'data-testid="not-runnable"' in page.content.decode()
    assert 'name="targets_text"' not in page.content.decode()
    posted = client.post(start_url(workflow), good_post(again=run.pk))
    assert posted.status_code == 400
    assert Run.objects.count() == 1


# --- the pre-filled form -------------------------------------------------------------------------
def test_run_again_prefills_every_target_the_parameters_and_reason_but_no_secret(
    client_for, helpdesk, admin_user, workflow, enqueued
):
    run = first_run(helpdesk, workflow)

    response = client_for(admin_user).get(again_url(run))

    html = response.content.decode()
    assert response.status_code == 200
    assert textarea_lines(html) == [
        f"collector:{uuids(1)[0]}",
        "name:3fa85f64-5717-4562-b3fc-2c963f66afa6",  # a name shaped like a UUID stays a name
        "name:PC-0042",
    ]
    assert f'value="{REASON}"' in html
    assert 'value="INC0012345"' in html and '<option value="full" selected>' in html
    assert '<option value="true" selected>' in html
    assert SECRET not in html and "••••••" not in html
    assert "Secret parameters are never kept: type them again." in html
    assert f"Pre-filled from run {run.pk}: all its 3 targets" in html
    assert again_value(html) == str(run.pk)


@pytest.mark.parametrize("value", ["999999", "abc", "", "-3", "\x00"])
def test_run_again_of_an_unknown_run_prefills_nothing_and_says_so(
    client_for, helpdesk, workflow, value
):
    response = client_for(helpdesk).get(start_url(workflow), {"again": value})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was pre-filled" in html and "Run again button" in html
    assert textarea_lines(html) == [] and again_value(html) == ""


def test_run_again_of_another_workflows_run_prefills_nothing(
    client_for, helpdesk, workflow, enqueued
):
    theirs = other_workflows_run(helpdesk)
    html = client_for(helpdesk).get(start_url(workflow), {"again": theirs.pk}).content.decode()
    assert "Nothing was pre-filled" in html and textarea_lines(html) == []


# --- through the confirmation, past the guard ----------------------------------------------------
def submit_prefilled(client: Any, run: Run, **extra: Any) -> Any:
    """The pre-filled form sent as the person would: what it shows, plus the secret typed."""
    html = client.get(again_url(run)).content.decode()
    data = good_post(
        targets_text="\n".join(textarea_lines(html)), again=again_value(html), reason=REASON
    )
    data.update(extra)
    return client.post(start_url(run.workflow), data)


def test_run_again_starts_a_new_run_even_within_the_double_click_window(
    client_for, helpdesk, workflow, enqueued
):
    run = first_run(helpdesk, workflow)
    client = client_for(helpdesk)

    confirm = submit_prefilled(client, run, param_restart="true", param_days="7")
    page = confirm.content.decode()
    assert confirm.status_code == 200 and 'data-testid="target-count">3<' in page
    assert f'data-testid="again-of"><a href="/runs/{run.pk}/">Run {run.pk}</a>' in page
    assert SECRET not in page
    started = client.post(confirm_url(workflow), {"token": token_of(page)})

    again = Run.objects.exclude(pk=run.pk).get()
    assert started.status_code == 302 and started.url == reverse("runs:detail", args=[again.pk])
    assert again.target_fingerprint == run.target_fingerprint  # the very same run, on purpose
    assert list(again.targets.order_by("position").values_list("kind", "value")) == list(
        run.targets.order_by("position").values_list("kind", "value")
    )
    assert (again.reason, again.params["ticket"], again.params["mode"]) == (
        REASON,
        "INC0012345",
        "full",
    )
    created = RunEvent.objects.get(run=again, kind=RunEventKind.CREATED)
    assert f"running run {run.pk} again" in created.message
    assert created.details["again_of"] == run.pk and created.actor == helpdesk
    audited = AuditEvent.objects.get(action=AuditAction.RUN_CREATED, object_id=str(again.pk))
    assert audited.details["again_of"] == run.pk
    assert f"running run {run.pk} again" in audited.summary


def test_a_rerun_on_the_failed_targets_is_not_blocked_by_the_guard_either(
    client_for, helpdesk, workflow, enqueued
):
    run = first_run(helpdesk, workflow)
    Target.objects.filter(run=run).update(outcome=Outcome.FAILURE)  # every target failed
    client = client_for(helpdesk)

    html = client.get(f"{start_url(workflow)}?rerun={run.pk}").content.decode()
    assert again_value(html) == str(run.pk)
    data = good_post(targets_text="\n".join(textarea_lines(html)), again=str(run.pk), reason=REASON)
    confirm = client.post(start_url(workflow), {**data, "param_restart": "true", "param_days": "7"})
    started = client.post(confirm_url(workflow), {"token": token_of(confirm.content.decode())})

    assert started.status_code == 302
    rerun = Run.objects.exclude(pk=run.pk).get()
    assert rerun.target_fingerprint == run.target_fingerprint and rerun.target_count == 3


def test_the_guard_still_refuses_a_plain_double_submit(client_for, helpdesk, workflow, enqueued):
    client = client_for(helpdesk)
    tokens = [token_of(client.post(start_url(workflow), good_post()).content.decode())]
    tokens.append(token_of(client.post(start_url(workflow), good_post()).content.decode()))

    first = client.post(confirm_url(workflow), {"token": tokens[0]})
    second = client.post(confirm_url(workflow), {"token": tokens[1]})

    assert first.status_code == 302
    html = second.content.decode()
    assert second.status_code == 400 and "You asked for the same run" in html
    assert Run.objects.count() == 1
    # What was typed is back in the form (the secret excepted), ready to change.
    assert textarea_lines(html) == [f"collector:{u}" for u in uuids(3)]
    assert f'value="{REASON}"' in html and SECRET not in html


def test_an_again_field_naming_a_run_not_of_this_workflow_is_refused(
    client_for, helpdesk, workflow, enqueued
):
    theirs = other_workflows_run(helpdesk)
    client = client_for(helpdesk)
    for value, message in [
        (theirs.pk, f"Run {theirs.pk} is not a run of {workflow.name} you may open"),
        (999_999, "Run 999999 is not a run of"),
        ("abc", "Run again: Enter a whole number."),
    ]:
        response = client.post(start_url(workflow), good_post(again=value))
        html = response.content.decode()
        assert response.status_code == 400, value
        assert message in html, value
    assert Run.objects.count() == 1


def test_the_service_refuses_to_run_again_a_run_of_another_workflow(helpdesk, workflow, enqueued):
    theirs = other_workflows_run(helpdesk)
    granted = permissions.permit(helpdesk, workflow, Run.Source.HELPDESK)
    with pytest.raises(RunRefused, match="is not a run of"):
        create_permitted_run(
            granted,
            targets=[Wanted(TargetKind.DEVICE_NAME, "PC-1", 1)],
            params={"ticket": "INC0012345"},
            reason="",
            again_of=theirs,
        )


# --- "Change something" --------------------------------------------------------------------------
def test_change_something_brings_back_targets_parameters_and_reason_but_not_secrets(
    client_for, helpdesk, workflow
):
    client = client_for(helpdesk)
    upload = SimpleUploadedFile("many.txt", "\n".join(uuids(5_000)[3:]).encode())
    confirm = client.post(start_url(workflow), good_post(targets_file=upload))
    page = confirm.content.decode()
    assert 'data-testid="target-count">5,000<' in page
    # A form posting the token: the 5,000 targets wait in the session, not in a URL.
    change = re.search(
        r'<form method="post" action="([^"]+)">((?:(?!</form>).)*)data-testid="change-something"',
        page,
        re.S,
    )
    assert change and change.group(1) == reverse("runs:change", args=[workflow.pk])
    assert 'name="token"' in change.group(2) and "targets_text" not in change.group(2)
    assert "secret parameters have to be typed again" in page

    back = client.post(change.group(1), {"token": token_of(page)})

    html = back.content.decode()
    assert back.status_code == 200
    assert textarea_lines(html) == [f"collector:{u}" for u in uuids(5_000)]
    assert f'value="{REASON}"' in html
    assert 'value="INC0012345"' in html and '<option value="full" selected>' in html
    assert '<option value="true" selected>' in html and 'value="3"' in html
    assert SECRET not in html
    assert "The targets, parameters and reason are back in the form." in html
    assert "type them again" in html
    # The confirmation it came from is gone: it cannot start the old run any more.
    stale = client.post(confirm_url(workflow), {"token": token_of(page)})
    assert stale.status_code == 400 and Run.objects.count() == 0


def test_change_something_keeps_the_run_again(client_for, helpdesk, workflow, enqueued):
    run = first_run(helpdesk, workflow)
    client = client_for(helpdesk)
    page = submit_prefilled(client, run).content.decode()

    back = client.post(reverse("runs:change", args=[workflow.pk]), {"token": token_of(page)})

    assert again_value(back.content.decode()) == str(run.pk)


def test_change_something_with_an_unknown_token_says_so(client_for, helpdesk, workflow):
    response = client_for(helpdesk).post(
        reverse("runs:change", args=[workflow.pk]), {"token": "nope"}
    )
    assert response.status_code == 400 and "This confirmation expired" in response.content.decode()
    assert client_for(helpdesk).get(reverse("runs:change", args=[workflow.pk])).status_code == 405
