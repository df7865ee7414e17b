"""The run rule: what stops a workflow, who may run it from where, and what admins are warned of."""

from __future__ import annotations

import dataclasses
from itertools import product
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from workflows_app.models import ParameterDefinition, Run, Workflow, WorkflowCuration
from workflows_app.permissions import (
    Blocker,
    NotAllowed,
    NotRunnable,
    blockers,
    permit,
    refusal,
    runnable_in_nexthink,
    self_service_warnings,
    workflow_refusal,
)
from workflows_app.roles import Role

pytestmark = pytest.mark.django_db
FORM, OWN_DEVICE, CLI = Run.Source.HELPDESK, Run.Source.SELF_SERVICE, Run.Source.CLI


def make_workflow(nql_id: str = "#fix", **fields: Any) -> Workflow:
    now = timezone.now()
    values: dict[str, Any] = {
        "uuid": "00000000-0000-0000-0000-000000000000",
        "name": nql_id.strip("#").replace("_", " ").title(),
        "status": Workflow.Status.ACTIVE,
        "dependency": "DEVICE",
        "trigger_api": True,
        "first_seen": now,
        "last_seen": now,
        **fields,
    }
    return Workflow.objects.create(nql_id=nql_id, **values)


def test_the_queryset_form_keeps_exactly_the_workflows_without_a_blocker_from_nexthink() -> None:
    combos = list(
        product((None, timezone.now()), ("ACTIVE", "INACTIVE"), (True, False), ("DEVICE", "NONE"))
    )
    for index, (removed_at, status, trigger_api, dependency) in enumerate(combos):
        make_workflow(
            f"#w{index}",
            removed_at=removed_at,
            status=status,
            trigger_api=trigger_api,
            dependency=dependency,
        )
    kept = set(Workflow.objects.filter(runnable_in_nexthink()))
    for workflow in Workflow.objects.all():
        assert (workflow in kept) == (set(blockers(workflow)) <= {Blocker.NO_TARGETS}), workflow


def test_every_blocker_is_found_the_most_fundamental_first() -> None:
    gone = make_workflow(
        "#gone", removed_at=timezone.now(), status="INACTIVE", trigger_api=False, dependency="NONE"
    )
    assert blockers(gone) == (Blocker.REMOVED, Blocker.API_TRIGGER_OFF, Blocker.NO_TARGETS)
    assert blockers(make_workflow("#off", status="INACTIVE")) == (Blocker.INACTIVE,)
    assert blockers(make_workflow("#fine")) == ()


def test_a_workflow_without_targets_is_explained_to_each_audience_in_its_words() -> None:
    workflow = make_workflow("#onboard", dependency="NONE")
    staff = workflow_refusal(workflow, FORM)
    employees = workflow_refusal(workflow, OWN_DEVICE)
    assert staff is not None and employees is not None
    assert staff.message.startswith("'Onboard' takes no targets")
    assert employees.message.startswith("Not available here: this fix needs no device or user")
    assert staff.blockers == employees.blockers == (Blocker.NO_TARGETS,)


def test_a_required_parameter_without_default_stops_self_service_only() -> None:
    workflow = make_workflow()
    ParameterDefinition.objects.create(workflow=workflow, name="Reason", required=True)
    ParameterDefinition.objects.create(workflow=workflow, name="Mode", label="How", required=True)
    ParameterDefinition.objects.create(workflow=workflow, name="Kept", required=True, default="x")

    assert workflow_refusal(workflow, FORM) is None
    refused = workflow_refusal(workflow, OWN_DEVICE)
    assert refused is not None and refused.blockers == ()
    assert (
        refused.message
        == "Not available yet: an admin must give a default value to 'Reason', 'How'."
    )


def test_nobody_may_run_what_the_portal_cannot_start(make_user) -> None:
    admin = make_user("admin", Role.ADMIN)
    for workflow in (
        make_workflow("#removed", removed_at=timezone.now()),
        make_workflow("#inactive", status="INACTIVE"),
        make_workflow("#no_api", trigger_api=False),
        make_workflow("#none", dependency="NONE"),
    ):
        for source in (FORM, CLI):
            with pytest.raises(NotRunnable):
                permit(admin, workflow, source)


def test_without_a_role_nothing_may_be_run(make_user) -> None:
    workflow = make_workflow()
    for user in (make_user("nobody", None), AnonymousUser()):
        with pytest.raises(NotAllowed, match="You have no portal role"):
            permit(user, workflow, FORM)


def test_helpdesk_may_run_unless_the_curation_leaves_helpdesk_out(make_user) -> None:
    helpdesk = make_user("helpdesk", Role.HELPDESK)
    uncurated = make_workflow("#uncurated")
    named = make_workflow("#named")
    WorkflowCuration.objects.create(workflow=named, allowed_roles=["Helpdesk", "Admin"])
    left_out = make_workflow("#left_out")
    WorkflowCuration.objects.create(workflow=left_out, allowed_roles=["Admin"])

    assert permit(helpdesk, uncurated, FORM).role is Role.HELPDESK
    assert permit(helpdesk, named, CLI).source == CLI
    refused = refusal(helpdesk, left_out, FORM)
    assert isinstance(refused, NotAllowed)
    assert refused.message == "Your role may not run 'Left Out'; ask an admin."


def test_employees_run_self_service_fixes_from_the_self_service_page_only(make_user) -> None:
    employee = make_user("employee", Role.EMPLOYEE)
    offered = make_workflow("#offered")
    WorkflowCuration.objects.create(workflow=offered, self_service=True)
    not_offered = make_workflow("#not_offered")

    assert permit(employee, offered, OWN_DEVICE).user == employee
    with pytest.raises(NotAllowed, match="self-service page, on their own device"):
        permit(employee, offered, FORM)
    with pytest.raises(NotAllowed, match="'Not Offered' is not offered for self-service"):
        permit(employee, not_offered, OWN_DEVICE)


def test_a_permit_cannot_be_changed_once_granted(make_user) -> None:
    granted = permit(make_user("admin", Role.ADMIN), make_workflow(), FORM)
    with pytest.raises(dataclasses.FrozenInstanceError):
        granted.source = OWN_DEVICE  # type: ignore[misc]


def test_curation_warnings_name_every_blocker_in_one_sentence() -> None:
    workflow = make_workflow("#broken", status="INACTIVE", trigger_api=False, dependency="NONE")
    assert self_service_warnings(workflow) == [
        "'#broken' is offered for self-service, but employees will not see it while it is "
        "inactive in Nexthink and its API trigger is off and it takes no targets, which the "
        "portal cannot run."
    ]
    removed = make_workflow("#removed", removed_at=timezone.now(), status="INACTIVE")
    assert self_service_warnings(removed) == [
        "'#removed' is offered for self-service, but employees will not see it while it was "
        "removed from Nexthink."
    ]
    assert self_service_warnings(make_workflow("#fine")) == []
