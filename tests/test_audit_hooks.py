"""What the audit log records of sign-ins, catalogue syncs, curation and settings changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.test_curation import document, entry, make_workflow, param
from workflows_app.models import AuditAction, AuditEvent, DeviceAssignment, PortalSettings
from workflows_app.services.catalogue_sync import sync_catalogue
from workflows_app.services.curation import CurationFields, import_curation, save_curation
from workflows_app.services.curation_rules import ParameterSpec
from workflows_app.services.portal_settings import set_helpdesk_url

pytestmark = pytest.mark.django_db

PASSWORD = "pw-12345-test"  # conftest's make_user


def events(action: AuditAction) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def row_text(event: AuditEvent) -> str:
    """Everything an entry holds, as one string (to prove what it does not hold)."""
    return " ".join(
        [event.actor_name, event.summary, json.dumps(event.details), str(event.ip_address)]
    )


# --- signing in and out -------------------------------------------------------------------------


def test_a_sign_in_is_audited_with_who_and_the_address(employee):
    client = Client(REMOTE_ADDR="203.0.113.9")
    response = client.post(reverse("login"), {"username": "employee", "password": PASSWORD})
    assert response.status_code == 302

    (event,) = events(AuditAction.SIGNED_IN)
    assert (event.actor_id, event.actor_name, event.ip_address) == (
        employee.pk,
        "employee",
        "203.0.113.9",
    )
    assert event.summary == "employee signed in"


def test_a_failed_sign_in_keeps_the_username_tried_and_never_the_password(employee):
    client = Client(REMOTE_ADDR="198.51.100.23")
    for username in ("employee", "nobody-by-that-name"):
        response = client.post(
            reverse("login"), {"username": username, "password": "Wr0ng-S3cret!"}
        )
        assert response.status_code == 200

    first, second = events(AuditAction.SIGN_IN_FAILED)
    assert (first.actor_id, first.actor_name, first.ip_address) == (
        None,
        "employee",
        "198.51.100.23",
    )
    assert first.details == {"username": "employee"}
    assert second.actor_name == "nobody-by-that-name"
    assert "Sign-in refused for 'nobody-by-that-name'" == second.summary
    for event in (first, second):
        assert "Wr0ng-S3cret!" not in row_text(event)
        assert "*****" not in row_text(event)  # not even Django's masked copy of it
    assert not events(AuditAction.SIGNED_IN)


def test_a_sign_out_is_audited_and_an_anonymous_one_is_not(employee):
    client = Client()
    client.post(reverse("logout"))
    assert not events(AuditAction.SIGNED_OUT)

    client.force_login(employee)
    client.post(reverse("logout"))
    (event,) = events(AuditAction.SIGNED_OUT)
    assert (event.actor_id, event.summary, event.ip_address) == (
        employee.pk,
        "employee signed out",
        "127.0.0.1",
    )


# --- catalogue sync -----------------------------------------------------------------------------


def test_a_scheduled_sync_is_audited_with_what_changed(nexthink_settings, simulator):
    sync_catalogue(trigger="schedule")
    simulator.catalogue.remove("#clear_teams_cache")
    again = sync_catalogue(trigger="schedule")

    first, second = events(AuditAction.CATALOGUE_SYNCED)
    count = len(simulator.catalogue.all()) + 1
    assert (first.actor_id, first.actor_name) == (None, "schedule")
    assert (
        first.summary
        == f"Catalogue sync (schedule): {count} added, 0 changed, 0 removed, 0 unchanged"
    )
    assert "#clear_teams_cache" in first.details["added"]
    assert first.details["status"] == "succeeded"
    assert second.details["removed"] == ["#clear_teams_cache"]
    assert second.details["added"] == [] and second.details["changed"] == []
    assert (second.object_type, second.object_id) == ("cataloguesync", str(again.pk))


def test_a_sync_an_admin_asked_for_names_them_and_a_failed_one_says_why(
    nexthink_settings, simulator, admin_user
):
    simulator.faults.configure(fail_next=[403])
    sync_catalogue(trigger="admin", requested_by=admin_user)

    (event,) = events(AuditAction.CATALOGUE_SYNCED)
    assert (event.actor_id, event.actor_name) == (admin_user.pk, "admin")
    assert event.summary.startswith("Catalogue sync (admin) failed: Listing ")
    assert event.details["status"] == "failed"


# --- curation -----------------------------------------------------------------------------------


def test_saving_a_curation_audits_which_fields_and_parameters_changed_never_values(admin_user):
    workflow = make_workflow("#reset_password")
    secret = ParameterSpec(name="Token", secret=True)
    save_curation(
        workflow=workflow,
        values=CurationFields(title="Reset", allowed_roles=["Helpdesk"]),
        parameters=[ParameterSpec(name="Mode", default="quick-default-value"), secret],
        user=admin_user,
        ip="192.0.2.1",
    )
    save_curation(
        workflow=workflow,
        values=CurationFields(title="Reset it", self_service=True, allowed_roles=["Employee"]),
        parameters=[ParameterSpec(name="Mode", label="How"), ParameterSpec(name="Ticket")],
        user=admin_user,
    )
    save_curation(  # the same again: nothing changed, nothing audited
        workflow=workflow,
        values=CurationFields(title="Reset it", self_service=True, allowed_roles=["Employee"]),
        parameters=[ParameterSpec(name="Mode", label="How"), ParameterSpec(name="Ticket")],
        user=admin_user,
    )

    first, second = events(AuditAction.CURATION_CHANGED)
    assert (first.actor_id, first.ip_address) == (admin_user.pk, "192.0.2.1")
    assert first.summary == (
        "Curation of #reset_password: title, allowed_roles changed; parameter(s) Mode, Token added"
    )
    assert first.details["allowed_roles"] == {"before": None, "after": ["Helpdesk"]}
    assert second.summary == (
        "Curation of #reset_password: self_service, title, allowed_roles changed; "
        "parameter(s) Ticket added; parameter(s) Token removed; parameter(s) Mode changed"
    )
    assert second.details["self_service"] == {"before": False, "after": True}
    assert second.details["allowed_roles"] == {"before": ["Helpdesk"], "after": ["Employee"]}
    assert (second.object_type, second.object_id) == ("workflow", str(workflow.pk))
    for event in (first, second):
        assert "quick-default-value" not in row_text(event)


def test_the_edit_page_audits_the_admins_address(client_for, admin_user):
    workflow = make_workflow("#free_disk")
    data = {
        "title": "Free up space",
        "description": "",
        "category": "",
        "confirmation_text": "",
        "parameters-TOTAL_FORMS": "0",
        "parameters-INITIAL_FORMS": "0",
        "parameters-MIN_NUM_FORMS": "0",
        "parameters-MAX_NUM_FORMS": "1000",
    }
    client = client_for(admin_user)
    response = client.post(
        reverse("curation:edit", args=[workflow.pk]), data, REMOTE_ADDR="192.0.2.44"
    )
    assert response.status_code == 302
    (event,) = events(AuditAction.CURATION_CHANGED)
    assert event.ip_address == "192.0.2.44" and event.summary.endswith(": title changed")


def test_an_import_is_audited_once_with_the_workflows_it_changed(admin_user):
    make_workflow("#one")
    make_workflow("#two")
    make_workflow("#three")
    import_curation(document(entry("#three", title="Three")), user=admin_user)
    doc = document(
        entry("#one", title="One", parameters=[param("Mode")]),
        entry("#two", self_service=True, title="Two"),
    )

    result = import_curation(doc, user=admin_user, replace_all=True, ip="192.0.2.5")
    import_curation(doc, user=admin_user)  # unchanged: not audited

    assert (result.changed, result.reset) == (2, 1)
    first, second = events(AuditAction.CURATION_IMPORTED)
    assert second.summary == result.summary()
    assert second.ip_address == "192.0.2.5"
    assert second.details["changed"] == 2 and second.details["reset"] == 1
    workflows = second.details["workflows"]
    assert set(workflows) == {"#one", "#two", "#three"}
    assert workflows["#one"]["parameters_added"] == ["Mode"]
    assert workflows["#two"]["self_service"] == {"before": None, "after": True}
    assert workflows["#three"]["reset"] is True
    assert len(events(AuditAction.CURATION_IMPORTED)) == 2
    assert not events(AuditAction.CURATION_CHANGED)  # an import is one entry, not one each


def test_an_import_from_the_command_line_names_no_person():
    make_workflow("#one")
    import_curation(document(entry("#one", title="One")), user=None)
    (event,) = events(AuditAction.CURATION_IMPORTED)
    assert (event.actor_id, event.actor_name) == (None, "import")


# --- settings -----------------------------------------------------------------------------------


def test_the_helpdesk_link_change_is_audited_with_before_and_after(client_for, admin_user):
    PortalSettings.objects.update_or_create(pk=1, defaults={"helpdesk_url": "https://old.example"})
    client = client_for(admin_user)
    url = reverse("curation:settings")
    response = client.post(
        url, {"helpdesk_url": "mailto:help@example.com"}, REMOTE_ADDR="192.0.2.8"
    )
    assert response.status_code == 302
    client.post(url, {"helpdesk_url": "mailto:help@example.com"})  # unchanged: not audited

    (event,) = events(AuditAction.SETTINGS_CHANGED)
    assert (event.actor_id, event.ip_address) == (admin_user.pk, "192.0.2.8")
    assert event.details == {
        "helpdesk_url": {"before": "https://old.example", "after": "mailto:help@example.com"}
    }
    assert event.summary == (
        "Portal settings changed: helpdesk_url from 'https://old.example' to "
        "'mailto:help@example.com'"
    )


def test_a_refused_helpdesk_link_is_not_audited(admin_user):
    with pytest.raises(ValueError):
        set_helpdesk_url("javascript:alert(1)", user=admin_user)
    assert not events(AuditAction.SETTINGS_CHANGED)


def admin_request(user: Any) -> Any:
    request = RequestFactory().post("/django-admin/", REMOTE_ADDR="192.0.2.77")
    request.user = user
    return request


def test_settings_changed_in_djangos_admin_are_audited(admin_user):
    settings = PortalSettings.load()
    model_admin = site._registry[PortalSettings]
    settings.device_query_id = "#my_devices"
    settings.device_cache_seconds = 60

    model_admin.save_model(admin_request(admin_user), settings, form=None, change=True)

    (event,) = events(AuditAction.SETTINGS_CHANGED)
    assert event.details == {
        "device_query_id": {"before": "#portal_user_devices", "after": "#my_devices"},
        "device_cache_seconds": {"before": 300, "after": 60},
    }
    assert (event.actor_id, event.ip_address) == (admin_user.pk, "192.0.2.77")


def test_devices_assigned_or_removed_in_djangos_admin_are_audited(admin_user, employee):
    model_admin = site._registry[DeviceAssignment]
    assignment = DeviceAssignment(user=employee, device_name="LT-1")
    request = admin_request(admin_user)

    model_admin.save_model(request, assignment, form=None, change=False)
    assignment.device_name = "LT-2"
    model_admin.save_model(request, assignment, form=None, change=True)
    model_admin.delete_model(request, assignment)

    kinds = list(
        AuditEvent.objects.filter(
            action__in=[AuditAction.DEVICE_ASSIGNED, AuditAction.DEVICE_UNASSIGNED]
        )
        .order_by("id")
        .values_list("action", "summary")
    )
    assert kinds == [
        (AuditAction.DEVICE_ASSIGNED, "Device LT-1 assigned to employee"),
        (AuditAction.DEVICE_UNASSIGNED, "Device LT-1 no longer assigned to employee"),
        (AuditAction.DEVICE_ASSIGNED, "Device LT-2 assigned to employee"),
        (AuditAction.DEVICE_UNASSIGNED, "Device LT-2 no longer assigned to employee"),
    ]
