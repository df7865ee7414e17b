"""The UPN a person is known by in Nexthink: stored on their profile, edited by admins for local
accounts, used by the self-service device lookup and user targets instead of the e-mail."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse

# make_workflow is a fixture: imported so that this module can use it.
from tests.test_self_service import NQL_PATH, make_workflow, run_url  # noqa: F401
from workflows_app.models import AuditAction, AuditEvent, PersonProfile, Run
from workflows_app.roles import Role
from workflows_app.services.devices import devices_for, user_upn

CORP_UPN = "erin.employee@corp.example"


def upn_url(person) -> str:
    return reverse("people:upn", args=[person.pk])


def test_the_stored_upn_comes_before_the_email(employee):
    assert user_upn(employee) == "employee@example.com"  # nothing stored: the email stands in
    PersonProfile.objects.create(user=employee, upn=CORP_UPN)
    assert user_upn(employee) == CORP_UPN
    assert user_upn(AnonymousUser()) is None


def test_the_device_lookup_asks_nexthink_with_the_stored_upn(
    employee, nexthink_settings, simulator
):
    PersonProfile.objects.create(user=employee, upn=CORP_UPN)
    devices_for(employee)
    sent = [r for r in simulator.state.requests if r.path == NQL_PATH][-1]
    assert sent.body["parameters"] == {"upn": CORP_UPN}


def test_a_user_fix_targets_the_stored_upn(
    employee,
    client_for,
    make_workflow,  # noqa: F811 - the fixture imported above
    nexthink_settings,
    simulator,
    enqueued,
):
    PersonProfile.objects.create(user=employee, upn=CORP_UPN)
    workflow = make_workflow(dependency="USER", title="Reset my MFA")
    response = client_for(employee).post(run_url(workflow), {"upn": "boss@example.com"})
    assert response.status_code == 302
    run = Run.objects.get()
    assert [(t.kind, t.value) for t in run.targets.all()] == [("user_upn", CORP_UPN)]


def test_an_admin_sets_a_local_accounts_upn_and_it_is_audited(client_for, admin_user, employee):
    client = client_for(admin_user)
    response = client.post(upn_url(employee), {"upn": f"  {CORP_UPN} "})
    assert response.status_code == 302
    assert user_upn(employee) == CORP_UPN
    event = AuditEvent.objects.get(action=AuditAction.UPN_CHANGED)
    assert (event.actor_id, event.object_id) == (admin_user.pk, str(employee.pk))
    assert event.details == {"person": "employee", "before": "", "after": CORP_UPN}
    page = client.get(reverse("people:detail", args=[employee.pk])).content.decode()
    assert f'data-testid="upn">{CORP_UPN}<' in page
    assert "UPN of employee changed from none to" in page  # in the recent changes
    # The same value again changes nothing; an empty one goes back to the email.
    client.post(upn_url(employee), {"upn": CORP_UPN})
    assert AuditEvent.objects.filter(action=AuditAction.UPN_CHANGED).count() == 1
    client.post(upn_url(employee), {"upn": ""})
    assert user_upn(employee) == "employee@example.com"


@pytest.mark.parametrize("value", ["not a upn", "x" * 300, "a@b\x00c"])
def test_a_upn_that_cannot_be_one_is_refused_with_400(client_for, admin_user, employee, value):
    response = client_for(admin_user).post(upn_url(employee), {"upn": value})
    assert response.status_code == 400
    assert "The UPN was not changed" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.UPN_CHANGED).exists()


def test_helpdesk_may_not_change_a_upn_and_get_is_405(client_for, helpdesk, admin_user, employee):
    assert client_for(helpdesk).post(upn_url(employee), {"upn": CORP_UPN}).status_code == 403
    assert client_for(admin_user).get(upn_url(employee)).status_code == 405
    assert not PersonProfile.objects.filter(upn=CORP_UPN).exists()


def test_an_sso_accounts_upn_is_not_edited_here(client_for, admin_user, make_user):
    person = make_user("frank@corp.example", Role.EMPLOYEE)
    PersonProfile.objects.create(user=person, upn="frank@corp.example", oidc_subject="sub-1")
    client = client_for(admin_user)
    page = client.get(reverse("people:detail", args=[person.pk])).content.decode()
    assert "from the company sign-in" in page and 'data-testid="upn-form"' not in page
    response = client.post(upn_url(person), {"upn": "someone.else@corp.example"})
    assert response.status_code == 400
    assert "change it in the identity provider" in response.content.decode()
    assert user_upn(person) == "frank@corp.example"
