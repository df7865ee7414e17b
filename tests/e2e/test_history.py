"""The execution history in a real browser: an admin finds the runs that touched one device in a
date range, exports them, opens one run's timeline and runs it again."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from workflows_app.models import Run, RunEvent, RunEventKind
from workflows_app.roles import Role
from workflows_app.services.runs import create_run
from workflows_app.targets import Target, TargetKind

pytestmark = pytest.mark.e2e

DEVICE = "NXT-LT-1001"


def a_run(user, workflow, devices: list[str], reason: str, *, days_ago: int = 0) -> Run:
    """A run made the way the helpdesk form makes one, dated `days_ago` days back."""
    run = create_run(
        user=user,
        workflow=workflow,
        targets=[Target(TargetKind.DEVICE_NAME, d, i + 1) for i, d in enumerate(devices)],
        params={},
        reason=reason,
        source=Run.Source.HELPDESK,
        allow_duplicate=True,
    )
    if days_ago:
        Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return run


def test_an_admin_filters_history_by_device_and_dates_exports_it_and_runs_one_again(
    page, make_user, sign_in, shot, synced_catalogue, enqueued
):
    from workflows_app.models import Workflow

    workflow = Workflow.objects.get(nql_id="#restart_print_spooler")  # DEVICE, API trigger
    desk = make_user("desk", Role.HELPDESK)
    make_user("admin", Role.ADMIN)
    # Oldest first, as ids follow time.
    old = a_run(desk, workflow, [DEVICE], "INC0000001 long ago", days_ago=40)
    recent = a_run(desk, workflow, [DEVICE, "NXT-DT-1000"], "INC0004711 printer stuck", days_ago=2)
    a_run(desk, workflow, ["NXT-DT-1004"], "INC0004712 other device", days_ago=2)
    today = timezone.localdate()

    sign_in("admin")
    page.get_by_role("navigation").get_by_role("link", name="Runs").click()
    page.get_by_label("Target", exact=True).fill(DEVICE.lower())
    page.get_by_label("From", exact=True).fill((today - timedelta(days=10)).isoformat())
    page.get_by_label("To", exact=True).fill(today.isoformat())
    page.get_by_role("button", name="Filter").click()

    expect(page).to_have_url(re.compile(r"target=nxt-lt-1001"))
    rows = page.get_by_test_id("run-table").locator("tbody tr")
    expect(rows).to_have_count(1)  # the other device's run and the old one are left out
    expect(rows.first).to_have_attribute("data-run", str(recent.pk))
    expect(rows.first).to_contain_text("INC0004711 printer stuck")
    expect(page.get_by_test_id("history-summary")).to_contain_text("1 run matches")
    shot("filtered")

    with page.expect_download() as info:
        page.get_by_test_id("runs-export").click()
    download = info.value
    assert re.fullmatch(r"runs-nxt-lt-1001-from-.*\.csv", download.suggested_filename)
    text = open(download.path(), encoding="utf-8-sig").read()  # noqa: SIM115 - read once
    exported = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["run"]) for r in exported] == [recent.pk]
    assert exported[0]["reason"] == "INC0004711 printer stuck" and exported[0]["targets"] == "2"

    # Wider dates find the old run too.
    page.get_by_label("From", exact=True).fill("")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-run", str(old.pk))

    rows.first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/runs/{recent.pk}/$"))
    timeline = page.get_by_test_id("timeline")
    expect(timeline).to_contain_text("Created")
    expect(timeline).to_contain_text("desk")
    assert RunEvent.objects.filter(run=recent, kind=RunEventKind.CREATED).exists()
    shot("timeline")

    page.get_by_test_id("run-again").get_by_role("link", name="Run again").click()
    targets = page.get_by_label(re.compile(r"^Targets:?$"))
    expect(targets).to_have_value(re.compile(DEVICE))
    expect(targets).to_have_value(re.compile("NXT-DT-1000"))
    expect(page.get_by_label("Ticket reference or reason")).to_have_value(
        "INC0004711 printer stuck"
    )
    page.get_by_role("button", name="Check and continue").click()
    expect(page.get_by_test_id("target-count")).to_have_text("2")
    shot("confirm")
    page.get_by_role("button", name="Run now").click()

    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    again = Run.objects.exclude(pk__in=[recent.pk, old.pk]).order_by("-pk").first()
    assert again is not None and again.pk != recent.pk
    assert page.url.endswith(f"/runs/{again.pk}/")
    assert again.created_by.username == "admin" and again.reason == recent.reason
    assert sorted(again.targets.values_list("value", flat=True)) == sorted(
        recent.targets.values_list("value", flat=True)
    )
    assert enqueued, "the new run's batch was queued for sending"
    shot("again")
