"""Employees run curated remote actions on their own device: the one an admin assigned them
with a classic device UID (the classic platform answers no NQL device lookup)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from workflows_app.models import DeviceAssignment, Run, RunStatus, Target
from workflows_app.selectors.runs import fix_status
from workflows_app.services import people
from workflows_app.services.remote_actions import RemoteActionSpec, register

UID = "07844969-1889-4de3-9026-020af94be855"
MINE, THEIRS = "da2add909a144e8235453f88dc45172f", "4423e4c059b2c72ee9382e135888bef7"


@pytest.fixture
def action(db: Any) -> Any:
    spec = RemoteActionSpec(uid=UID, name="Restart Outlook", self_service=True)
    return register(spec, actor=None)[0]


@pytest.fixture
def assigned(employee: Any, helpdesk: Any) -> DeviceAssignment:
    return people.assign_device(
        person=employee, device_name="EMP-LT-1", classic_uid=MINE.upper(), by=helpdesk
    )


def test_an_employee_runs_a_remote_action_on_their_assigned_classic_device(
    action: Any, assigned: DeviceAssignment, employee: Any, client_for: Any, enqueued: list[int]
):
    assert assigned.classic_uid == MINE
    client = client_for(employee)
    home = client.get("/self-service/")
    assert b"Restart Outlook" in home.content
    confirm = client.get(reverse("self_service:confirm", args=[action.pk]))
    assert confirm.status_code == 200 and b"EMP-LT-1" in confirm.content
    response = client.post(
        reverse("self_service:run", args=[action.pk]), {"device": "name:emp-lt-1"}
    )
    run = Run.objects.get()
    assert response.status_code == 302 and run.kind == "remote_action"
    assert (run.source, run.role) == ("self_service", "Employee")
    assert list(Target.objects.filter(run=run).values_list("kind", "value")) == [
        ("device_classic_uid", MINE)
    ]


def test_another_persons_device_is_refused(
    action: Any, employee: Any, helpdesk: Any, client_for: Any, enqueued: list[int]
):
    people.assign_device(person=helpdesk, device_name="HD-1", classic_uid=THEIRS, by=helpdesk)
    response = client_for(employee).post(
        reverse("self_service:run", args=[action.pk]), {"device": "name:hd-1"}
    )
    assert response.status_code == 400 and not Run.objects.exists()


def test_without_a_classic_device_the_employee_is_told_to_ask_the_helpdesk(
    action: Any, employee: Any, helpdesk: Any, client_for: Any, enqueued: list[int]
):
    people.assign_device(person=employee, device_name="EMP-LT-2", by=helpdesk)  # no classic UID
    page = client_for(employee).get(reverse("self_service:confirm", args=[action.pk]))
    assert b"classic device UID" in page.content
    response = client_for(employee).post(
        reverse("self_service:run", args=[action.pk]), {"device": "name:emp-lt-2"}
    )
    assert response.status_code == 400 and not Run.objects.exists()


def test_a_bad_classic_uid_is_refused_when_assigning(employee: Any, helpdesk: Any):
    with pytest.raises(people.PeopleRefused, match="Not a classic device UID"):
        people.assign_device(
            person=employee, device_name="EMP-LT-3", classic_uid="EMP-LT-3", by=helpdesk
        )
    assert not DeviceAssignment.objects.exists()


def test_the_employee_reads_sent_or_not_sure_in_plain_words(
    action: Any, assigned: DeviceAssignment, employee: Any
):
    run = Run(kind="remote_action", status=RunStatus.SENT, workflow=action)
    assert fix_status(run).headline == "Sent to your device"
    run.status = RunStatus.PARTIAL
    assert fix_status(run).headline == "Not sure it worked"


def test_helpdesk_assigns_a_classic_device_uid_on_the_people_page(
    employee: Any, helpdesk: Any, client_for: Any
):
    url = reverse("people:assign", args=[employee.pk])
    refused = client_for(helpdesk).post(url, {"device_name": "EMP-LT-9", "classic_uid": "PC-9"})
    assert refused.status_code == 400 and b"Not a classic device UID" in refused.content
    done = client_for(helpdesk).post(url, {"device_name": "EMP-LT-9", "classic_uid": MINE})
    assert done.status_code == 302
    assert DeviceAssignment.objects.get(user=employee).classic_uid == MINE
    page = client_for(helpdesk).get(reverse("people:detail", args=[employee.pk]))
    assert MINE.encode() in page.content
