"""The portal's key journeys, clicked through in a real headless browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from workflows_app.roles import Role

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("role", "home"),
    [
        (Role.EMPLOYEE, "/self-service/"),
        (Role.HELPDESK, "/workflows/"),
        (Role.ADMIN, "/console/"),
    ],
    ids=["employee", "helpdesk", "admin"],
)
def test_each_role_signs_in_and_lands_on_its_home(
    page, live_server, make_user, sign_in, shot, role, home
):
    username = role.value.lower()
    make_user(username, role)

    sign_in(username)

    expect(page).to_have_url(re.compile(re.escape(live_server.url + home) + r"$"))
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_test_id("whoami")).to_contain_text(role.value)
    shot("home")


# --- the run journeys -----------------------------------------------------------------------

RUN_URL = re.compile(r"/runs/\d+/$")
# The simulator holds each execute answer back 2 s (fixture slow_execute), so a run is still
# on its way when its page first shows; its executions then take 3 s in the simulator, and the
# follow-up asks NQL every half second: this is how long a run may take to end.
END_TIMEOUT_MS = 45_000


def sent_targets(simulator, nql_id: str) -> list[str]:
    """Every device or user the simulator received for this workflow, one entry per time sent."""
    sent: list[str] = []
    for record in simulator.state.executions:
        if record.workflow_id != nql_id:
            continue
        for item in [*record.devices, *record.users]:
            sent.extend(map(str, item.values()) if isinstance(item, dict) else [str(item)])
    return sent


class HtmxWatch:
    """Proves a page updated by itself: htmx requests were made and the document stayed the same."""

    def __init__(self, page) -> None:
        self.page = page
        self.requests: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request) -> None:
        if request.headers.get("hx-request") == "true":
            self.requests.append(request.url)

    def mark_document(self) -> None:
        """Tag the current document; a reload or a navigation would lose the tag."""
        self.page.evaluate("window.__e2eSameDocument = true")

    def assert_updated_in_place(self) -> None:
        assert self.page.evaluate("window.__e2eSameDocument === true"), "the page was reloaded"
        assert any("/progress/" in url for url in self.requests), self.requests


def watch_run_until_it_ends(page, shot, *, start: str, end: str) -> HtmxWatch:
    """On a run's page: see it still on its way, then ended as `end`, with no reload between."""
    watch = HtmxWatch(page)
    expect(page).to_have_url(RUN_URL)
    status = page.get_by_test_id("run-status")
    expect(status).to_have_text(re.compile(start))
    expect(page.get_by_test_id("run-progress")).to_have_attribute("data-polling", "true")
    watch.mark_document()
    shot("run-started")

    # Sent, then followed through NQL (beat) until Nexthink says how each execution ended.
    expect(status).to_have_text(end, timeout=END_TIMEOUT_MS)
    expect(page.get_by_test_id("run-progress")).to_have_attribute("data-polling", "false")
    shot("ended")
    watch.assert_updated_in_place()
    return watch


CONFIRMATION = "Teams closes for about a minute while its cache is cleared. Save your drafts."


def test_employee_fixes_their_device_in_one_click_and_watches_it_finish(
    page,
    make_user,
    sign_in,
    shot,
    simulator,
    synced_catalogue,
    celery_worker,
    celery_beat,
    slow_execute,
):
    from workflows_app.models import Workflow, WorkflowCuration

    WorkflowCuration.objects.create(
        workflow=Workflow.objects.get(nql_id="#clear_teams_cache"),
        self_service=True,
        category="Collaboration",
        description="When Teams is slow, shows no new messages or will not start.",
        confirmation_text=CONFIRMATION,
    )
    make_user("employee", Role.EMPLOYEE)  # employee@example.com: three devices in the simulator
    mine = {d.name: d for d in simulator.inventory.devices if d.owner_upn == "employee@example.com"}
    newest = mine["EMP-LT-0142"]  # seen 12 minutes ago; the others days and weeks ago

    sign_in("employee")
    expect(page).to_have_url(re.compile(r"/self-service/$"))
    expect(page.get_by_role("heading", name="Collaboration")).to_be_visible()
    card = page.get_by_test_id("fix-card").filter(has_text="Clear Teams cache")
    shot("home")

    card.get_by_role("link", name="Fix it").click()
    expect(card.get_by_test_id("confirmation-text")).to_have_text(CONFIRMATION)
    expect(card.get_by_role("radio")).to_have_count(3)
    expect(card.get_by_role("radio", name=newest.name)).to_be_checked()
    shot("confirm")

    card.get_by_role("button", name="Yes, run it").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Clear Teams cache")
    watch_run_until_it_ends(page, shot, start=r"^Running$", end="Fixed")
    # Plain words for employees: no request ids, no batch or target tables.
    expect(page.get_by_test_id("batches")).to_have_count(0)
    expect(page.get_by_test_id("targets")).to_have_count(0)

    sent = sent_targets(simulator, "#clear_teams_cache")
    assert len(sent) == 1, sent
    assert sent[0].lower() in {newest.name.lower(), newest.collector_uid, newest.uid}, sent


DEVICE_NAMES = ["NXT-DT-1000", "NXT-LT-1001", "NXT-LT-1002", "NXT-LT-1003", "NXT-DT-1004"]
BROKEN_UUID = "3fa85f64-5717-4562-b3fc-2c963f66af"  # cut short: 8-4-4-4-10 digits


def test_helpdesk_fixes_a_bad_target_line_runs_and_watches_progress(
    page,
    make_user,
    sign_in,
    shot,
    simulator,
    synced_catalogue,
    celery_worker,
    celery_beat,
    slow_execute,
):
    from workflows_app.models import Workflow

    workflow = Workflow.objects.get(nql_id="#restart_print_spooler")  # DEVICE, API trigger
    kiosk = next(d for d in simulator.inventory.devices if d.name == "KIOSK-LOBBY-01")
    make_user("helpdesk", Role.HELPDESK)

    sign_in("helpdesk")
    page.goto(f"/workflows/{workflow.pk}/run/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Restart print spooler")
    targets = page.get_by_label(re.compile(r"^Targets:?$"))
    targets.fill("\n".join([*DEVICE_NAMES, BROKEN_UUID]))
    page.get_by_label("Ticket reference or reason").fill("INC-4711 print queue stuck")
    shot("form")

    page.get_by_role("button", name="Check and continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was started.")
    line_errors = page.get_by_role("listitem").filter(has_text=re.compile(r"^Line \d+:"))
    expect(line_errors).to_have_count(1)  # the five names are fine
    expect(line_errors).to_contain_text(f"Line 6: '{BROKEN_UUID}'")
    expect(line_errors).to_contain_text("not a valid UUID")
    shot("error")

    fixed = [*DEVICE_NAMES, kiosk.collector_uid]
    targets.fill("\n".join(fixed))
    page.get_by_role("button", name="Check and continue").click()
    expect(page.get_by_test_id("target-count")).to_have_text("6")
    shot("confirm")

    # "Change something" goes back with everything typed, then on to the confirmation again.
    page.get_by_role("button", name="Change something").click()
    expect(page.get_by_label("Ticket reference or reason")).to_have_value(
        "INC-4711 print queue stuck"
    )
    expect(targets).to_have_value(re.compile(r"^(?:[a-z-]+:[^\n]+\n?){6}$"))
    page.get_by_role("button", name="Check and continue").click()
    expect(page.get_by_test_id("target-count")).to_have_text("6")

    page.get_by_role("button", name="Run now").click()
    watch_run_until_it_ends(page, shot, start=r"^(Queued|In progress)$", end="Succeeded")
    # The targets table follows too: every row gets its execution id and outcome, no reload.
    outcomes = page.get_by_test_id("outcome")
    expect(outcomes.filter(has_text="Succeeded")).to_have_count(len(fixed))
    for cell in page.get_by_test_id("execution-uuid").all():
        expect(cell).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    expect(page.get_by_test_id("rerun")).to_have_count(0)  # nothing failed
    shot("outcomes")
    page.reload()  # the timeline is read with the page
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("tr[data-event='created']")).to_contain_text("INC-4711")
    expect(timeline.locator("tr[data-event='batch.submitted']")).to_have_count(1)

    sent = sent_targets(simulator, "#restart_print_spooler")
    assert sorted(sent) == sorted(fixed), sent  # each target exactly once, the fixed line too
    assert len(simulator.state.executions) == 1
