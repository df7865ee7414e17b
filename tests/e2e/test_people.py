"""People and roles in a real browser: an admin changes a person's role and finds it audited."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from workflows_app.models import AuditAction, AuditEvent
from workflows_app.roles import Role, user_role

pytestmark = pytest.mark.e2e


def test_an_admin_changes_a_persons_role_and_finds_it_in_the_audit_log(
    page, make_user, sign_in, shot, django_user_model
):
    make_user("admin", Role.ADMIN)
    jane = make_user("jdoe", Role.EMPLOYEE, email="jane.doe@example.com")
    sign_in("admin")

    page.get_by_role("link", name="People and roles").click()
    page.get_by_label("Username, name or email").fill("jane.doe")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_test_id("people-table")).to_contain_text("Employee")
    page.get_by_role("link", name="jdoe").click()
    expect(page.get_by_test_id("role")).to_have_text("Employee")
    shot("person")

    page.get_by_label("Role").select_option("Helpdesk")
    page.get_by_role("button", name="Change role").click()

    expect(page.get_by_role("status").first).to_contain_text(
        "jdoe changed from Employee to Helpdesk."
    )
    expect(page.get_by_test_id("role")).to_have_text("Helpdesk")
    expect(page.get_by_test_id("person-changes")).to_contain_text(
        "Role of jdoe changed from Employee to Helpdesk"
    )
    shot("changed")
    assert user_role(django_user_model.objects.get(pk=jane.pk)) is Role.HELPDESK

    page.goto("/console/audit/")
    page.get_by_label("What").select_option(AuditAction.ROLE_CHANGED.value)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=role.changed"))
    expect(page.get_by_test_id("audit-table")).to_contain_text("Role of jdoe changed")
    shot("audit")
    event = AuditEvent.objects.get(action=AuditAction.ROLE_CHANGED)
    assert event.actor_name == "admin" and event.ip_address == "127.0.0.1"
