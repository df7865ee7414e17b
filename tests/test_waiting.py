"""The waiting inbox (/runs/waiting/) and its resume form, against the simulator over HTTP."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from tests.test_resume import TRIGGER_PATH, mark, send_run, trigger_calls
from workflows_app.models import (
    Outcome,
    ParameterDefinition,
    Resumption,
    Run,
    Target,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.selectors.waiting import waiting_page
from workflows_app.services.params import MASK

pytestmark = pytest.mark.django_db

INBOX = "/runs/waiting/"


def resume_url(target: Target) -> str:
    return reverse("runs:resume", args=[target.execution_uuid])


@pytest.fixture
def waiting_run(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], nexthink_settings: Any, simulator: Any
) -> Run:
    """A run of #reset_mfa on two users, both executions waiting for their event."""
    workflow = sim_workflow("#reset_mfa")
    WorkflowCuration.objects.create(workflow=workflow, title="Approve MFA reset")
    run = send_run(helpdesk, workflow, ["employee@example.com", "admin@example.com"])
    simulator.state.advance()
    for target in run.targets.all():
        mark(target, Outcome.WAITING)
    return run


@pytest.fixture
def first(waiting_run: Run) -> Target:
    return waiting_run.targets.order_by("position").first()


# --- the inbox -----------------------------------------------------------------------------------


def test_inbox_lists_waiting_executions_with_a_resume_form_each(
    client_for: Any, helpdesk: Any, waiting_run: Run
) -> None:
    still, done = waiting_run.targets.order_by("position")
    mark(done, Outcome.SUCCESS, status="success")

    response = client_for(helpdesk).get(INBOX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="waiting-item"') == 1
    assert "Approve MFA reset" in html and "employee@example.com" in html
    assert "admin@example.com" not in html  # its execution ended
    assert f'action="{resume_url(still)}"' in html
    # No curated parameters: three blank name/value rows and a way to add one more.
    assert html.count('data-testid="free-row"') == 3
    assert 'name="add_row"' in html
    assert f'href="/runs/{waiting_run.pk}/"' in html


def test_inbox_pages_newest_first_without_counting(
    helpdesk: Any, waiting_run: Run, django_assert_max_num_queries: Any
) -> None:
    first, second = waiting_run.targets.order_by("position")
    with django_assert_max_num_queries(4):
        page = waiting_page(helpdesk, size=1)
    assert [t.pk for t in page.targets] == [second.pk] and page.next_before == second.pk
    older = waiting_page(helpdesk, before=page.next_before, size=1)
    assert [t.pk for t in older.targets] == [first.pk] and older.next_before is None


def test_inbox_says_when_nothing_waits(client_for: Any, helpdesk: Any) -> None:
    html = client_for(helpdesk).get(INBOX).content.decode()
    assert 'data-testid="no-waiting"' in html


def test_inbox_shows_curated_parameters_as_typed_fields_secrets_as_passwords(
    client_for: Any, helpdesk: Any, first: Target
) -> None:
    workflow = first.run.workflow
    ParameterDefinition.objects.create(
        workflow=workflow, name="Decision", type="choice", choices=["approve", "deny"]
    )
    ParameterDefinition.objects.create(workflow=workflow, name="Pin", secret=True, position=1)

    html = client_for(helpdesk).get(INBOX).content.decode()

    assert 'name="param_Decision"' in html and '<option value="approve"' in html
    assert re.search(r'<input type="password" name="param_Pin"', html)
    assert 'data-testid="free-row"' not in html


def test_helpdesk_left_out_by_the_curation_sees_why_and_no_form(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    WorkflowCuration.objects.filter(workflow=first.run.workflow).update(resume_roles=["Admin"])
    client = client_for(helpdesk)

    html = client.get(INBOX).content.decode()
    assert 'data-testid="resume-refused"' in html and "may not resume" in html
    assert 'data-testid="resume-form"' not in html

    response = client.post(resume_url(first), {"rows": "3"})
    assert response.status_code == 403
    assert "may not resume" in response.content.decode()
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


def test_inbox_shows_recent_resumptions_with_secrets_masked(
    client_for: Any, helpdesk: Any, first: Target
) -> None:
    ParameterDefinition.objects.create(workflow=first.run.workflow, name="Pin", secret=True)
    client = client_for(helpdesk)
    assert client.post(resume_url(first), {"param_Pin": "4242"}).status_code == 302

    html = client.get(INBOX).content.decode()

    assert html.count('data-testid="resumption"') == 1
    assert f"<code>Pin</code>={MASK}" in html and "4242" not in html
    assert Resumption.objects.get().request_uuid in html


# --- resuming ------------------------------------------------------------------------------------


def test_resume_sends_the_rows_and_goes_back_to_the_inbox_naming_the_request(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    client = client_for(helpdesk)
    data = {
        "rows": "3",
        "name_0": "Approved",
        "value_0": "yes",
        "name_1": "Token",
        "value_1": "s3cret",
        "secret_1": "on",
    }

    response = client.post(resume_url(first), data, follow=True)

    assert response.redirect_chain == [(INBOX, 302)]
    resumption = Resumption.objects.get()
    html = response.content.decode()
    assert f"Nexthink&#x27;s request id is {resumption.request_uuid}" in html
    upstream = simulator.state.find_execution(first.execution_uuid)
    assert upstream.trigger_params == {"Approved": "yes", "Token": "s3cret"}
    assert resumption.params == {"Approved": "yes", "Token": MASK}
    assert resumption.source == Run.Source.HELPDESK
    first.refresh_from_db()
    assert first.outcome == Outcome.RUNNING
    assert html.count('data-testid="waiting-item"') == 1  # the other one still waits


def test_resume_with_no_parameter_sends_none(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    assert client_for(helpdesk).post(resume_url(first), {}).status_code == 302
    assert simulator.state.find_execution(first.execution_uuid).trigger_params in ({}, None)


def test_add_another_row_without_javascript_keeps_what_was_typed_but_secrets(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    data = {
        "rows": "3",
        "name_0": "Approved",
        "value_0": "yes",
        "name_1": "Token",
        "value_1": "s3cret",
        "secret_1": "on",
        "add_row": "1",
    }
    response = client_for(helpdesk).post(resume_url(first), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="free-row"') == 4
    assert 'name="rows" value="4"' in html
    assert 'value="yes"' in html and "s3cret" not in html
    assert trigger_calls(simulator) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name_0": "A", "value_0": "1", "name_1": "A", "value_1": "2"}, "is already row 1"),
        ({"value_0": "orphan"}, "Give the name the wait step expects."),
        ({"name_0": "A", "value_0": "nul\x00"}, "Null characters are not allowed."),
        ({"name_0": "x" * 101, "value_0": "1"}, "at most 100 characters"),
    ],
)
def test_bad_rows_are_shown_back_with_400_and_nothing_is_sent(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any, data: Any, message: str
) -> None:
    response = client_for(helpdesk).post(resume_url(first), {"rows": "3", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


def test_a_required_curated_parameter_must_be_given(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    ParameterDefinition.objects.create(workflow=first.run.workflow, name="Ticket", required=True)
    response = client_for(helpdesk).post(resume_url(first), {"param_Ticket": ""})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert trigger_calls(simulator) == []


def test_resuming_an_execution_that_no_longer_waits_says_so(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    mark(first, Outcome.SUCCESS, status="success")
    response = client_for(helpdesk).post(resume_url(first), {})
    assert response.status_code == 400
    assert "This execution is not waiting for an event (it is succeeded)." in (
        response.content.decode()
    )
    assert trigger_calls(simulator) == []


def test_nexthink_refusing_is_shown_on_the_form(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    simulator.state.trigger(first.execution_uuid, None)  # resumed in Nexthink meanwhile
    response = client_for(helpdesk).post(resume_url(first), {"name_0": "A", "value_0": "1"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nexthink says this execution is not waiting for an event any more" in html
    assert 'value="A"' in html  # the form again, as typed
    assert Resumption.objects.get().error_code == "EXECUTION_NOT_WAITING"


def test_nexthink_unavailable_is_a_try_again_later_not_a_crash(
    client_for: Any, helpdesk: Any, first: Target, simulator: Any
) -> None:
    simulator.faults.configure(fail_next=[503], paths=[TRIGGER_PATH])
    response = client_for(helpdesk).post(resume_url(first), {})
    assert response.status_code == 503
    assert "Nothing was resumed: try again later." in response.content.decode()


# --- refusals ------------------------------------------------------------------------------------


def test_inbox_and_resume_refuse_employees_and_anonymous_people(
    client: Any, client_for: Any, employee: Any, first: Target, simulator: Any
) -> None:
    anonymous = client.get(INBOX)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    assert client.post(resume_url(first), {}).status_code == 302
    signed_in = client_for(employee)
    assert signed_in.get(INBOX).status_code == 403
    assert signed_in.post(resume_url(first), {}).status_code == 403
    assert trigger_calls(simulator) == [] and not Resumption.objects.exists()


def test_wrong_methods_get_405(client_for: Any, helpdesk: Any, first: Target) -> None:
    client = client_for(helpdesk)
    assert client.post(INBOX).status_code == 405
    assert client.get(resume_url(first)).status_code == 405


def test_unknown_executions_are_404(client_for: Any, helpdesk: Any, first: Target) -> None:
    client = client_for(helpdesk)
    for given in ("00000000-0000-4000-8000-000000000000", "nope", "%00"):
        assert client.post(f"/runs/waiting/{given}/resume/", {}).status_code == 404, given


def test_nav_offers_the_inbox_to_helpdesk_and_admins_only(
    client_for: Any, employee: Any, helpdesk: Any, admin_user: Any
) -> None:
    link = 'data-testid="nav-waiting"'
    assert link in client_for(helpdesk).get("/runs/").content.decode()
    assert link in client_for(admin_user).get("/runs/").content.decode()
    assert link not in client_for(employee).get("/runs/").content.decode()


def test_admins_resume_whatever_the_curation_says(
    client_for: Any, make_user: Any, first: Target
) -> None:
    WorkflowCuration.objects.filter(workflow=first.run.workflow).update(resume_roles=["Helpdesk"])
    boss = make_user("boss", Role.ADMIN)
    assert client_for(boss).post(resume_url(first), {}).status_code == 302
    assert Resumption.objects.get().requested_by == boss
