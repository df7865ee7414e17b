"""A remote action of the classic platform, end to end in a real browser: an admin registers it,
a helpdesk agent runs it on classic device UIDs and reads each Engine's answer."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from workflows_app.roles import Role

pytestmark = pytest.mark.e2e

UID = "07844969-1889-4de3-9026-020af94be855"  # known to the simulator's web interface
EMEA, AMER = "86acc8511251ec444d3a75bac33a23c7", "a4690014774dcc32b919c27d616166f7"
DEVICES = ["da2add909a144e8235453f88dc45172f", "4423e4c059b2c72ee9382e135888bef7"]


def test_admin_registers_a_remote_action_and_helpdesk_runs_it_and_reads_the_engines(
    page, make_user, sign_in, shot, simulator, nexthink_settings, celery_worker
):
    simulator.classic.configure({"engine_answers": {AMER: "not_connected"}})
    make_user("admin", Role.ADMIN)
    make_user("helpdesk", Role.HELPDESK)

    # The admin registers it from the curation pages.
    sign_in("admin")
    page.goto("/console/curation/")
    page.get_by_test_id("register-remote-action-link").click()
    form = page.get_by_test_id("register-remote-action")
    form.get_by_label("Remote action UID").fill(UID)
    form.get_by_label("Name").fill("Restart Outlook")
    form.get_by_label("Parameters").fill("Force")
    shot("register")
    form.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Remote action Restart Outlook registered.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    # A helpdesk agent finds it in the catalogue, labelled, and runs it.
    sign_in("helpdesk")
    page.goto("/workflows/")
    row = page.locator(f"tr[data-nql-id='{UID}']")
    expect(row.get_by_test_id("kind-remote-action")).to_have_text("Remote action (classic)")
    shot("catalogue")
    row.get_by_role("link", name="Run").click()
    expect(page.get_by_test_id("kind")).to_have_text("Remote action (classic)")
    page.get_by_label(re.compile(r"^Targets:?$")).fill("\n".join([DEVICES[0], "LAPTOP-42"]))
    page.get_by_label("Force").fill("yes")
    page.get_by_label("Ticket reference or reason").fill("INC-5150 Outlook frozen")
    page.get_by_role("button", name="Check and continue").click()
    errors = page.get_by_role("listitem").filter(has_text=re.compile(r"^Line \d+:"))
    expect(errors).to_have_count(1)
    expect(errors).to_contain_text("Line 2: 'LAPTOP-42'")
    expect(errors).to_contain_text("no lookup is configured")
    shot("refused-name")

    page.get_by_label(re.compile(r"^Targets:?$")).fill("\n".join(f"uid:{d}" for d in DEVICES))
    page.get_by_role("button", name="Check and continue").click()
    expect(page.get_by_test_id("target-count")).to_have_text("2")
    expect(page.get_by_test_id("api-version")).to_have_text("classic Act API v2")
    page.get_by_role("button", name="Run now").click()

    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    expect(page.get_by_test_id("run-status")).to_have_text("Partly failed", timeout=30_000)
    answers = page.get_by_test_id("engine-answers")
    expect(answers.locator(f"tr[data-engine='{EMEA}']")).to_contain_text("ok")
    not_connected = answers.locator(f"tr[data-engine='{AMER}']")
    expect(not_connected).to_contain_text("not_connected")
    expect(not_connected).to_contain_text("could not reach the Engine")
    expect(page.get_by_test_id("run-kind")).to_have_text("Remote action (classic)")
    shot("engines")

    (received,) = simulator.classic.runs
    assert sorted(received.device_uids) == sorted(DEVICES)
    assert received.params == {"Force": "yes"}
