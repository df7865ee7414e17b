"""Four-eyes approval in a real browser: a large run waits, an admin approves it, it is sent."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.celery_fixtures import wait_until, worker_mails
from tests.e2e.test_journeys import DEVICE_NAMES, END_TIMEOUT_MS, RUN_URL, sent_targets
from workflows_app.roles import Role

pytestmark = pytest.mark.e2e


def test_run_above_the_threshold_waits_for_an_admin_then_is_sent(
    page,
    make_user,
    sign_in,
    shot,
    settings,
    simulator,
    synced_catalogue,
    celery_worker,
    celery_beat,
):
    from workflows_app.models import Workflow

    settings.APPROVAL_ABOVE_TARGETS = 2
    workflow = Workflow.objects.get(nql_id="#restart_print_spooler")
    make_user("helpdesk", Role.HELPDESK)
    make_user("admin", Role.ADMIN)
    targets = DEVICE_NAMES[:3]

    sign_in("helpdesk")
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.get_by_label(re.compile(r"^Targets:?$")).fill("\n".join(targets))
    page.get_by_label("Ticket reference or reason").fill("CHG-77 print servers")
    page.get_by_role("button", name="Check and continue").click()
    expect(page.get_by_test_id("approval-needed")).to_contain_text("3 targets, more than the 2")
    page.get_by_role("button", name="Ask for approval").click()
    expect(page).to_have_url(RUN_URL)
    run_url = page.url
    expect(page.get_by_test_id("run-status")).to_have_text("Awaiting approval")
    expect(page.get_by_test_id("approval")).to_contain_text("Awaiting approval by an admin until")
    shot("waiting")
    assert simulator.state.executions == []

    page.context.clear_cookies()
    sign_in("admin")
    expect(page.get_by_test_id("approvals-count")).to_have_text("1")
    page.get_by_test_id("nav-approvals").click()
    page.get_by_test_id("review").click()
    expect(page.get_by_test_id("request-targets")).to_contain_text(targets[0])
    page.get_by_label("Comment").fill("Change CHG-77 is approved")
    shot("decision")
    page.get_by_test_id("approve").click()

    expect(page).to_have_url(run_url)
    expect(page.get_by_test_id("approval")).to_contain_text("Change CHG-77 is approved")
    expect(page.get_by_test_id("run-status")).to_have_text("Succeeded", timeout=END_TIMEOUT_MS)
    shot("sent")
    page.reload()
    expect(
        page.get_by_test_id("timeline").locator("tr[data-event='approval.approved']")
    ).to_contain_text("admin")
    assert sorted(sent_targets(simulator, "#restart_print_spooler")) == sorted(targets)
    run_id = run_url.rstrip("/").rsplit("/", 1)[-1]

    def requesters_mail():  # the worker's outbox: the requester is told the run ended
        return [
            m
            for m in worker_mails()
            if m["To"] == "helpdesk@example.com" and f"Run {run_id} " in m["Subject"]
        ]

    mail = wait_until(requesters_mail, timeout=30, what="the requester's mail")[0]
    assert "succeeded" in mail["Subject"]
    assert f"/runs/{run_id}/" in mail.get_content()
