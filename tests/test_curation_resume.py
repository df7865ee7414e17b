"""Curation of who may resume waiting executions, and the self-service settings admins edit."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.test_curation import document, entry, import_errors, make_workflow
from workflows_app.models import PortalSettings, WorkflowCuration
from workflows_app.services.curation import export_curation, import_curation
from workflows_app.services.portal_settings import helpdesk_url_problem

pytestmark = pytest.mark.django_db

LIST = "/console/curation/"
SETTINGS = "/console/curation/self-service-settings/"


def edit_data(**curation: Any) -> dict[str, Any]:
    return {
        "title": "",
        "description": "",
        "category": "",
        "confirmation_text": "",
        "parameters-TOTAL_FORMS": "0",
        "parameters-INITIAL_FORMS": "0",
        **curation,
    }


# --- resume_roles --------------------------------------------------------------------------------


def test_the_edit_form_saves_who_may_resume(client_for: Any, admin_user: Any) -> None:
    workflow = make_workflow("#reset_mfa")
    client = client_for(admin_user)
    url = reverse("curation:edit", args=[workflow.pk])
    page = client.get(url).content.decode()
    assert 'name="resume_roles" value="Admin"' in page
    assert 'name="resume_roles" value="Employee"' not in page  # never offered

    response = client.post(url, edit_data(resume_roles=["Admin"]))

    assert response.status_code == 302
    assert WorkflowCuration.objects.get(workflow=workflow).resume_roles == ["Admin"]
    listed = client.get(LIST).content.decode()
    assert "<td>Admin</td>" in listed


def test_the_edit_form_refuses_employees_as_resumers(client_for: Any, admin_user: Any) -> None:
    workflow = make_workflow("#reset_mfa")
    response = client_for(admin_user).post(
        reverse("curation:edit", args=[workflow.pk]), edit_data(resume_roles=["Employee"])
    )
    assert response.status_code == 400
    assert "Select a valid choice. Employee is not one of the available choices." in (
        response.content.decode()
    )
    assert not WorkflowCuration.objects.exists()


def test_resume_roles_go_through_export_and_import_unchanged(admin_user: Any) -> None:
    workflow = make_workflow("#reset_mfa")
    WorkflowCuration.objects.create(workflow=workflow, resume_roles=["Helpdesk", "Admin"])

    exported = export_curation()
    (item,) = exported["workflows"]
    assert item["resume_roles"] == ["Admin", "Helpdesk"]  # the fixed role order
    assert list(item)[-4:] == ["resume_roles", "requires_approval", "approver_role", "parameters"]

    WorkflowCuration.objects.filter(workflow=workflow).update(resume_roles=[])
    result = import_curation(exported, user=admin_user)
    assert result.changed == 1
    assert WorkflowCuration.objects.get(workflow=workflow).resume_roles == ["Admin", "Helpdesk"]
    assert import_curation(export_curation(), user=admin_user).unchanged == 1


def test_a_document_without_resume_roles_means_the_default_rule(admin_user: Any) -> None:
    workflow = make_workflow("#reset_mfa")
    import_curation(document(entry("#reset_mfa")), user=admin_user)
    assert WorkflowCuration.objects.get(workflow=workflow).resume_roles == []


@pytest.mark.parametrize(
    ("roles", "error"),
    [
        (
            ["Employee"],
            "workflows[0].resume_roles[0]: Employees cannot resume waiting executions; "
            "use Admin or Helpdesk.",
        ),
        (
            ["Manager"],
            "workflows[0].resume_roles[0]: Unknown role 'Manager'; use Admin or Helpdesk.",
        ),
        (["Admin", "Admin"], "workflows[0].resume_roles[1]: 'Admin' is listed twice."),
        ("Admin", "workflows[0].resume_roles: Input should be a valid list"),
    ],
)
def test_the_import_refuses_bad_resume_roles_with_their_path(roles: Any, error: str) -> None:
    make_workflow("#reset_mfa")
    errors = import_errors(document(entry("#reset_mfa", resume_roles=roles)))
    assert errors == [error]
    assert not WorkflowCuration.objects.exists()


# --- the helpdesk link ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["https://helpdesk.example.com/new?x=1", "http://intranet/help", "mailto:help@example.com"],
)
def test_admins_set_the_helpdesk_link(client_for: Any, admin_user: Any, value: str) -> None:
    client = client_for(admin_user)
    response = client.post(SETTINGS, {"helpdesk_url": f"  {value} "}, follow=True)
    assert response.redirect_chain == [(LIST, 302)]
    assert PortalSettings.load().helpdesk_url == value
    assert f'value="{value}"'.replace("&", "&amp;") in response.content.decode()


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "ftp://files.example.com/",
        "helpdesk.example.com",
        "mailto:",
        "mailto:not an address",
        "https://",
        "call 1234",
        "https://x.example.com/\x00",
    ],
)
def test_anything_but_http_or_mailto_is_refused(
    client_for: Any, admin_user: Any, value: str
) -> None:
    PortalSettings.objects.update_or_create(pk=1, defaults={"helpdesk_url": "https://old.example"})
    response = client_for(admin_user).post(SETTINGS, {"helpdesk_url": value})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="errorlist' in html and "Nothing was saved" in html
    assert PortalSettings.load().helpdesk_url == "https://old.example"
    assert helpdesk_url_problem(value) is not None


def test_an_empty_link_removes_it(client_for: Any, admin_user: Any) -> None:
    PortalSettings.objects.update_or_create(pk=1, defaults={"helpdesk_url": "https://old.example"})
    assert client_for(admin_user).post(SETTINGS, {"helpdesk_url": ""}).status_code == 302
    assert PortalSettings.load().helpdesk_url == ""


def test_only_admins_change_settings(
    client: Any, client_for: Any, employee: Any, helpdesk: Any, admin_user: Any
) -> None:
    assert client.post(SETTINGS, {"helpdesk_url": "https://x.example"}).status_code == 302
    assert (
        client_for(helpdesk).post(SETTINGS, {"helpdesk_url": "https://x.example"}).status_code
        == 403
    )
    assert (
        client_for(employee).post(SETTINGS, {"helpdesk_url": "https://x.example"}).status_code
        == 403
    )
    assert client_for(admin_user).get(SETTINGS).status_code == 405
    assert PortalSettings.load().helpdesk_url == ""
