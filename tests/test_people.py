"""People and roles: finding people, changing roles (admins), assigning devices (helpdesk too)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from workflows_app.models import AuditAction, AuditEvent, DeviceAssignment
from workflows_app.roles import Role, user_role
from workflows_app.selectors import people as people_selectors
from workflows_app.services import people
from workflows_app.services.devices import assigned_devices

pytestmark = pytest.mark.django_db

LIST = reverse("people:list")
COLLECTOR = "0C8F5D2A-93B4-4A7E-8D61-7F2E9B3C5A40"


def detail(person: User) -> str:
    return reverse("people:detail", args=[person.pk])


def role_url(person: User) -> str:
    return reverse("people:role", args=[person.pk])


def assign_url(person: User) -> str:
    return reverse("people:assign", args=[person.pk])


def unassign_url(person: User) -> str:
    return reverse("people:unassign", args=[person.pk])


def fresh_role(person: User) -> Role | None:
    return user_role(User.objects.get(pk=person.pk))


def listed(response: Any) -> list[str]:
    return [row.person.username for row in response.context["page"].rows]


# --- finding people -----------------------------------------------------------------------------


def test_find_people_by_part_of_their_username_name_or_email(client_for, helpdesk, make_user):
    jane = make_user("jdoe", Role.EMPLOYEE, email="jane.doe@corp.example")
    jane.first_name, jane.last_name = "Jane", "Doe"
    jane.save()
    make_user("zed", None, email="zed@other.example")
    client = client_for(helpdesk)

    assert listed(client.get(LIST, {"q": "JDO"})) == ["jdoe"]
    assert listed(client.get(LIST, {"q": "jane"})) == ["jdoe"]
    assert listed(client.get(LIST, {"q": "Jane Doe"})) == ["jdoe"]  # every word, any field
    assert listed(client.get(LIST, {"q": "corp.example"})) == ["jdoe"]
    assert listed(client.get(LIST, {"q": "nobody"})) == []


def test_the_list_shows_each_persons_role_and_last_sign_in_and_filters_by_role(
    client_for, admin_user, employee, helpdesk, make_user
):
    boss = make_user("boss", None)
    boss.is_superuser = True
    boss.save()
    both = make_user("both", Role.EMPLOYEE)
    both.groups.add(Group.objects.get_or_create(name="Helpdesk")[0])
    make_user("norole", None)
    client = client_for(admin_user)
    User.objects.filter(pk=employee.pk).update(last_login=timezone.now())

    response = client.get(LIST)
    roles = {row.person.username: row.role for row in response.context["page"].rows}
    assert roles == {
        "admin": Role.ADMIN,
        "boss": Role.ADMIN,
        "both": Role.HELPDESK,
        "employee": Role.EMPLOYEE,
        "helpdesk": Role.HELPDESK,
        "norole": None,
    }
    html = response.content.decode()
    assert "superuser" in html and "never" in html
    assert listed(client.get(LIST, {"role": "Admin"})) == ["admin", "boss"]
    assert listed(client.get(LIST, {"role": "Helpdesk"})) == ["both", "helpdesk"]
    assert listed(client.get(LIST, {"role": "Employee"})) == ["employee"]
    assert listed(client.get(LIST, {"role": "none"})) == ["norole"]
    ignored = client.get(LIST, {"role": "Overlord"})
    assert "Unknown role &#x27;Overlord&#x27;: ignored." in ignored.content.decode()
    assert len(listed(ignored)) == 6


def test_people_come_in_keyset_pages_by_username_without_count(
    client_for, admin_user, make_user, monkeypatch
):
    monkeypatch.setattr(people_selectors, "PAGE_SIZE", 4)
    for i in range(9):
        make_user(f"user{i:02d}", Role.EMPLOYEE)
    client = client_for(admin_user)

    seen: list[str] = []
    params = {"q": "user"}
    with CaptureQueriesContext(connection) as queries:
        while True:
            response = client.get(LIST, params)
            seen += listed(response)
            if not response.context["next_query"]:
                break
            params = dict(p.split("=") for p in response.context["next_query"].split("&"))
    assert seen == [f"user{i:02d}" for i in range(9)]
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_people_pages_refuse_employees_and_anonymous_people(employee):
    anonymous, signed_in = Client(), Client()
    signed_in.force_login(employee)
    for url in (LIST, detail(employee)):
        assert anonymous.get(url)["Location"].startswith(f"{reverse('login')}?next=")
        assert signed_in.get(url).status_code == 403
    for url in (role_url(employee), assign_url(employee), unassign_url(employee)):
        assert anonymous.post(url, {"role": "Admin"}).status_code == 302
        assert signed_in.post(url, {"role": "Admin", "device_name": "X"}).status_code == 403
    assert not DeviceAssignment.objects.exists()
    assert fresh_role(employee) is Role.EMPLOYEE


def test_unknown_people_are_404_and_wrong_methods_405(client_for, admin_user, employee):
    client = client_for(admin_user)
    assert client.get(reverse("people:detail", args=[999_999])).status_code == 404
    assert client.post(reverse("people:role", args=[999_999]), {"role": "Admin"}).status_code == 404
    assert client.post(reverse("people:assign", args=[999_999])).status_code == 404
    assert client.get(role_url(employee)).status_code == 405
    assert client.get(assign_url(employee)).status_code == 405
    assert client.get(unassign_url(employee)).status_code == 405
    assert client.post(detail(employee)).status_code == 405


# --- roles --------------------------------------------------------------------------------------


def test_an_admin_changes_a_role_and_it_is_audited_with_before_and_after(
    client_for, admin_user, employee
):
    client = client_for(admin_user)
    response = client.post(role_url(employee), {"role": "Helpdesk"}, REMOTE_ADDR="192.0.2.61")
    assert response.status_code == 302 and response["Location"] == detail(employee)
    assert fresh_role(employee) is Role.HELPDESK

    client.post(role_url(employee), {"role": "none"})
    assert fresh_role(employee) is None
    assert not employee.groups.filter(name__in=["Employee", "Helpdesk", "Admin"]).exists()

    first, second = AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED).order_by("id")
    assert first.summary == "Role of employee changed from Employee to Helpdesk"
    assert first.details == {"person": "employee", "before": "Employee", "after": "Helpdesk"}
    assert (first.actor_id, first.ip_address) == (admin_user.pk, "192.0.2.61")
    assert (first.object_type, first.object_id) == ("user", str(employee.pk))
    assert second.details["after"] is None
    page = client.get(detail(employee)).content.decode()
    assert "Role of employee changed from Helpdesk to No role" in page  # recent changes


def test_the_same_role_again_changes_and_audits_nothing(client_for, admin_user, employee):
    response = client_for(admin_user).post(role_url(employee), {"role": "Employee"}, follow=True)
    assert "employee already has the role Employee." in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED).exists()


def test_other_groups_are_kept_when_the_role_changes(admin_user, employee):
    other = Group.objects.create(name="Finance")
    employee.groups.add(other)
    people.set_role(person=employee, role=Role.ADMIN, by=admin_user)
    assert set(employee.groups.values_list("name", flat=True)) == {"Finance", "Admin"}


def test_helpdesk_may_not_change_roles(client_for, helpdesk, employee):
    response = client_for(helpdesk).post(role_url(employee), {"role": "Admin"})
    assert response.status_code == 403
    assert fresh_role(employee) is Role.EMPLOYEE
    assert not AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED).exists()
    page = client_for(helpdesk).get(detail(employee)).content.decode()
    assert 'data-testid="role-form"' not in page and 'data-testid="assign-form"' in page


@pytest.mark.parametrize("value", ["", "Root", "admin", "Admin\x00", "None"])
def test_a_role_that_is_not_offered_is_refused_with_400(client_for, admin_user, employee, value):
    response = client_for(admin_user).post(role_url(employee), {"role": value})
    assert response.status_code == 400
    assert "The role was not changed" in response.content.decode()
    assert fresh_role(employee) is Role.EMPLOYEE


def test_the_last_admin_cannot_remove_their_own_admin_role(client_for, admin_user):
    client = client_for(admin_user)
    response = client.post(role_url(admin_user), {"role": "Helpdesk"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "admin is the last admin of the portal: give someone else the Admin role first" in html
    assert fresh_role(admin_user) is Role.ADMIN
    assert not AuditEvent.objects.filter(action=AuditAction.ROLE_CHANGED).exists()


def test_with_another_admin_an_admin_may_step_down_and_lands_on_their_home(
    client_for, admin_user, make_user
):
    make_user("admin2", Role.ADMIN)
    response = client_for(admin_user).post(role_url(admin_user), {"role": "Employee"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert fresh_role(admin_user) is Role.EMPLOYEE


def test_an_inactive_admin_does_not_count_and_a_superuser_does(admin_user, make_user):
    dormant = make_user("dormant", Role.ADMIN)
    dormant.is_active = False
    dormant.save()
    with pytest.raises(people.PeopleRefused, match="last admin"):
        people.set_role(person=admin_user, role=None, by=admin_user)

    root = make_user("root", None)
    root.is_superuser = True
    root.save()
    people.set_role(person=admin_user, role=None, by=admin_user)
    assert fresh_role(admin_user) is None


def test_a_superusers_role_is_not_changed_here_and_the_page_says_why(
    client_for, admin_user, make_user
):
    root = make_user("root", Role.EMPLOYEE)
    root.is_superuser = True
    root.save()
    client = client_for(admin_user)
    page = client.get(detail(root)).content.decode()
    assert "superusers are admins whatever their role here" in page
    assert 'data-testid="role-form"' not in page

    response = client.post(role_url(root), {"role": "Helpdesk"})
    assert response.status_code == 400
    assert "root is a superuser, and superusers are admins whatever their role" in (
        response.content.decode()
    )
    assert set(root.groups.values_list("name", flat=True)) == {"Employee"}


# --- devices ------------------------------------------------------------------------------------


def test_helpdesk_assigns_a_device_that_self_service_then_offers(client_for, helpdesk, employee):
    client = client_for(helpdesk)
    response = client.post(
        assign_url(employee),
        {"device_name": " LT-0042 ", "collector_uid": COLLECTOR, "note": "INC42 loaner"},
        REMOTE_ADDR="192.0.2.70",
    )
    assert response.status_code == 302 and response["Location"] == detail(employee)
    assignment = DeviceAssignment.objects.get(user=employee)
    assert (assignment.device_name, assignment.collector_uid, assignment.note) == (
        "LT-0042",
        COLLECTOR.lower(),
        "INC42 loaner",
    )
    (device,) = assigned_devices(employee)
    assert (device.name, device.collector_uid, device.source) == (
        "LT-0042",
        COLLECTOR.lower(),
        "assigned",
    )
    event = AuditEvent.objects.get(action=AuditAction.DEVICE_ASSIGNED)
    assert event.summary == "Device LT-0042 assigned to employee"
    assert (event.actor_id, event.ip_address) == (helpdesk.pk, "192.0.2.70")
    assert event.details["collector_uid"] == COLLECTOR.lower()
    assert "LT-0042" in client.get(detail(employee)).content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"device_name": ""}, "Give the device&#x27;s name as Nexthink shows it."),
        ({"device_name": "LT\x01"}, "Not a usable device name: contains an invisible"),
        ({"device_name": "LT-1", "collector_uid": "not-a-uuid"}, "Not a Collector UUID: "),
        (
            {"device_name": "LT-1", "collector_uid": "0c8f5d2a93b44a7e8d617f2e9b3c5a40"},
            "the hyphens are missing",
        ),
        ({"device_name": "x" * 256}, "at most 255 characters"),
        ({"device_name": "LT-1", "note": "n" * 201}, "at most 200 characters"),
    ],
)
def test_a_device_that_cannot_be_one_is_refused_with_400_and_the_reason(
    client_for, admin_user, employee, data, message
):
    response = client_for(admin_user).post(assign_url(employee), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "No device was assigned" in html and message in html
    assert not DeviceAssignment.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.DEVICE_ASSIGNED).exists()


def test_the_same_device_twice_is_refused(client_for, admin_user, employee):
    client = client_for(admin_user)
    client.post(assign_url(employee), {"device_name": "LT-1"})
    response = client.post(assign_url(employee), {"device_name": "lt-1"})
    assert response.status_code == 400
    assert "LT-1 is already assigned to employee: remove it first" in response.content.decode()
    assert DeviceAssignment.objects.count() == 1


def test_removing_a_device_is_audited_and_only_the_persons_own_can_be_removed(
    client_for, helpdesk, employee, make_user
):
    other = make_user("other", Role.EMPLOYEE)
    mine = DeviceAssignment.objects.create(user=employee, device_name="LT-1")
    theirs = DeviceAssignment.objects.create(user=other, device_name="LT-2")
    client = client_for(helpdesk)

    response = client.post(unassign_url(employee), {"assignment": theirs.pk})
    assert response.status_code == 404
    assert "not assigned to this person" in response.content.decode()
    assert client.post(unassign_url(employee), {"assignment": "x"}).status_code == 400
    assert DeviceAssignment.objects.count() == 2

    response = client.post(unassign_url(employee), {"assignment": mine.pk})
    assert response.status_code == 302
    assert list(DeviceAssignment.objects.all()) == [theirs]
    event = AuditEvent.objects.get(action=AuditAction.DEVICE_UNASSIGNED)
    assert event.summary == "Device LT-1 no longer assigned to employee"
    assert event.actor_id == helpdesk.pk
