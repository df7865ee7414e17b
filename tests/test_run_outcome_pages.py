"""The run page once outcomes are known: the outcome bar, batches being followed, the targets
table and its filter, re-running the failed targets, resumptions, and the employee's plain view."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.test_run_views import SECRET, add_param, make_run, make_workflow, uuids
from workflows_app import targets as targets_mod
from workflows_app.models import (
    Batch,
    BatchState,
    Outcome,
    PortalSettings,
    Resumption,
    Run,
    RunStatus,
    Target,
    Workflow,
    WorkflowCuration,
)
from workflows_app.roles import Role
from workflows_app.selectors.runs import (
    TARGET_FILTERS,
    fix_status,
    outcome_counts,
    rerun_prefill,
    target_page,
)
from workflows_app.services import lifecycle
from workflows_app.services.runs import create_run
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db

Spec = str | tuple[str, str, str, str]  # outcome, or (outcome, status, status_details, details)


def settle(run: Run, outcomes: Sequence[Spec], *, state: BatchState = BatchState.SUBMITTED) -> Run:
    """Give the targets these outcomes in position order, as follow-up would, and re-derive."""
    Batch.objects.filter(run=run).update(
        state=state,
        attempts=1,
        request_uuid="req-1" if state == BatchState.SUBMITTED else "",
        finished_at=timezone.now(),
    )
    for position, spec in enumerate(outcomes):
        outcome, status, status_details, details = (
            spec if isinstance(spec, tuple) else (spec, "", "", "")
        )
        sent = outcome not in ("", Outcome.NOT_SENT)
        Target.objects.filter(run=run, position=position).update(
            outcome=outcome,
            status=status,
            status_details=status_details,
            outcome_details=details,
            execution_uuid=f"00000000-0000-4000-9000-{position:012d}" if sent else "",
        )
    for batch_id in Batch.objects.filter(run=run).values_list("pk", flat=True):
        lifecycle.recount(batch_id)
    lifecycle.refresh_run_status(run.pk)
    run.refresh_from_db()
    return run


def count_in(html: str, key: str) -> int:
    """The number a progress table's cell shows (with or without a link to the filter)."""
    match = re.search(rf'data-count="{key}-targets">(?:<a [^>]*>)?(\d+)<', html)
    assert match, f"no count for {key}"
    return int(match.group(1))


@pytest.fixture
def workflow() -> Workflow:
    wf = make_workflow()
    add_param(wf, "mode", type="choice", choices=["quick", "full"], default="quick")
    add_param(wf, "ticket", label="Ticket", required=True, pattern=r"INC\d{7}")
    add_param(wf, "password", label="Admin password", secret=True)
    return wf


MIXED = [
    Outcome.SUCCESS,
    Outcome.SUCCESS,
    (Outcome.FAILURE, "failure", "Script exited with 1", ""),
    (Outcome.NOT_SENT, "", "", "The batch was not sent to Nexthink: refused"),
    Outcome.UNKNOWN,
    Outcome.WAITING,
    Outcome.RUNNING,
    Outcome.PENDING,
    "",
    "",
]


# --- the outcome bar -----------------------------------------------------------------------------
def test_progress_shows_targets_by_outcome_from_the_runs_counts(
    client_for, helpdesk, workflow, enqueued
):
    run = settle(make_run(helpdesk, workflow, count=10), MIXED)
    url = reverse("runs:progress", args=[run.pk])

    with CaptureQueriesContext(connection) as queries:
        html = client_for(helpdesk).get(url).content.decode()

    expected = {
        "succeeded": 2,
        "failed": 1,
        "not_sent": 1,
        "unknown": 1,
        "waiting": 1,
        "running": 2,  # pending and running
        "queued": 2,  # not sent yet
    }
    assert {key: count_in(html, key) for key in expected} == expected
    # Counts come from the run's row: the partial never reads or counts targets.
    assert not [q for q in queries if "workflows_app_target" in q["sql"]]
    assert 'data-testid="run-status">In progress<' in html
    assert f'href="/runs/{run.pk}/?outcome=failure#run-targets"' in html


def test_a_fresh_run_is_all_queued(client_for, helpdesk, workflow, enqueued):
    run = make_run(helpdesk, workflow, count=4)
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert count_in(html, "queued") == 4 and count_in(html, "succeeded") == 0
    assert 'data-testid="run-status">Queued<' in html


@pytest.mark.parametrize(
    ("outcomes", "label"),
    [
        ([Outcome.SUCCESS] * 3, "Succeeded"),
        ([Outcome.SUCCESS, Outcome.FAILURE, Outcome.SUCCESS], "Partly failed"),
        ([Outcome.FAILURE, Outcome.NOT_SENT, Outcome.FAILURE], "Failed"),
        ([Outcome.SUCCESS, Outcome.WAITING, Outcome.SUCCESS], "Waiting for an event"),
        ([Outcome.UNKNOWN] * 3, "Outcome unknown"),
        ([Outcome.SUCCESS, Outcome.RUNNING, Outcome.SUCCESS], "In progress"),
    ],
)
def test_the_runs_status_is_shown(client_for, helpdesk, workflow, enqueued, outcomes, label):
    run = settle(make_run(helpdesk, workflow), outcomes)
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert f'data-testid="run-status">{label}<' in html


def test_a_final_run_still_followed_up_keeps_polling(client_for, helpdesk, workflow, enqueued):
    run = settle(make_run(helpdesk, workflow), [Outcome.UNKNOWN] * 3, state=BatchState.UNKNOWN)
    assert run.is_final
    Batch.objects.filter(run=run).update(next_check_at=timezone.now())
    client = client_for(helpdesk)
    url = reverse("runs:progress", args=[run.pk])

    response = client.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in response.content.decode()
    assert "HX-Trigger" not in response.headers

    Batch.objects.filter(run=run).update(next_check_at=None)
    response = client.get(url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' not in response.content.decode()
    assert "run-settled" in response.headers["HX-Trigger"]


def test_batches_show_reconciliation_and_follow_up(client_for, helpdesk, admin_user, workflow):
    run = settle(make_run(helpdesk, workflow), [Outcome.SUCCESS] * 3)
    next_check = timezone.now()
    Batch.objects.filter(run=run).update(
        state=BatchState.RECONCILED,
        checks=4,
        next_check_at=next_check,
        check_error="NQL query #portal_workflow_executions: 403 Forbidden (check its permission)",
        resent_at=timezone.now(),
        resent_by=admin_user,
        resend_note="checked in Nexthink",
    )
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert '<span class="badge reconciled">Reconciled</span>' in html
    assert "403 Forbidden (check its permission)" in html
    assert f"next check {timezone.localtime(next_check):%H:%M:%S}" in html
    assert "4 checks" in html
    assert "by admin" in html and "checked in Nexthink" in html


# --- the targets table ---------------------------------------------------------------------------
def test_targets_show_outcome_raw_status_and_details(client_for, helpdesk, workflow, enqueued):
    run = settle(
        make_run(helpdesk, workflow),
        [
            (Outcome.UNKNOWN, "frobnicating", "Nexthink said something new", ""),
            (Outcome.FAILURE, "failure", "Exit code 1", "Teams was not installed"),
            (Outcome.SUCCESS, "success", "", ""),
        ],
    )
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    rows = re.findall(r'<tr data-position="(\d)" data-outcome="(\w*)">(.*?)</tr>', html, re.S)
    by_position = {int(position): (outcome, row) for position, outcome, row in rows}
    outcome, row = by_position[0]
    assert outcome == "unknown" and "<code>frobnicating</code>" in row  # an unknown word, raw
    assert '<span class="badge unknown">Unknown</span>' in row
    assert "Nexthink said something new" in row
    outcome, row = by_position[1]
    assert '<span class="badge failure">Failed</span>' in row
    assert "Teams was not installed" in row  # the portal's details come first
    assert "00000000-0000-4000-9000-000000000001" in row


def test_targets_are_filtered_by_outcome_and_paged(client_for, helpdesk, workflow, enqueued):
    outcomes = [Outcome.FAILURE if i % 3 == 0 else Outcome.SUCCESS for i in range(400)]
    outcomes[1] = Outcome.NOT_SENT
    run = settle(make_run(helpdesk, workflow, count=400), outcomes)
    client = client_for(helpdesk)
    url = reverse("runs:detail", args=[run.pk])

    with CaptureQueriesContext(connection) as queries:
        first = client.get(url, {"outcome": "failure"}).content.decode()
    assert not [q for q in queries if "COUNT(" in q["sql"].upper()]
    positions = [int(p) for p in re.findall(r'data-position="(\d+)"', first)]
    assert positions == list(range(0, 300, 3))  # the first 100 of 134 failures
    assert set(re.findall(r'data-outcome="(\w*)"', first)) == {"failure"}
    assert f'href="{url}?outcome=failure&amp;after=297"' in first
    assert "1–298 · 134 failed of 400" in first

    second = client.get(url, {"outcome": "failure", "after": "297"}).content.decode()
    positions = [int(p) for p in re.findall(r'data-position="(\d+)"', second)]
    assert positions == list(range(300, 400, 3)) and "targets-next" not in second
    assert f'href="{url}?outcome=failure"' in second  # back to the first filtered page

    failed = client.get(url, {"outcome": "failed"}).content.decode()
    assert 'data-position="1"' in failed and 'data-position="2"' not in failed
    assert set(re.findall(r'data-outcome="(\w*)"', failed)) == {"failure", "not_sent"}


def test_an_unknown_outcome_filter_is_ignored_and_said_so(client_for, helpdesk, workflow):
    run = settle(make_run(helpdesk, workflow), [Outcome.SUCCESS] * 3)
    client = client_for(helpdesk)
    response = client.get(reverse("runs:detail", args=[run.pk]), {"outcome": "<b>broken</b>"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Unknown outcome &ldquo;&lt;b&gt;broken&lt;/b&gt;&rdquo; ignored" in html
    assert html.count("data-position=") == 3
    for value in ("\x00", "x" * 5000, "success\x00"):
        assert client.get(reverse("runs:detail", args=[run.pk]), {"outcome": value}).status_code
    assert set(TARGET_FILTERS) == {*Outcome.values, "failed"}


def test_the_filter_walks_a_big_run_quickly(helpdesk, workflow, enqueued):
    """Why no index on the outcome: the keyset walk over one run's (run, position) range is
    bounded by the run's 100,000 targets. Rare failures at the very end are still found."""
    run = make_run(helpdesk, workflow, count=20_000)
    Target.objects.filter(run=run, position__gte=19_990).update(outcome=Outcome.FAILURE)
    page = target_page(run, target_filter=TARGET_FILTERS["failure"])
    assert [t.position for t in page.targets] == list(range(19_990, 20_000))
    assert page.next_after is None


# --- re-running the failed targets ---------------------------------------------------------------
def test_rerun_is_offered_when_targets_failed_and_the_person_may_run_it(
    client_for, helpdesk, admin_user, workflow, enqueued
):
    run = settle(make_run(helpdesk, workflow), [Outcome.SUCCESS, Outcome.FAILURE, "not_sent"])
    link = f'href="/workflows/{workflow.pk}/run/?rerun={run.pk}"'
    for user in (helpdesk, admin_user):
        html = client_for(user).get(reverse("runs:detail", args=[run.pk])).content.decode()
        assert link in html and "Re-run on the 2 failed targets" in html
        assert "Secret parameters are not kept" in html

    WorkflowCuration.objects.create(workflow=workflow, allowed_roles=[Role.ADMIN.value])
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert link not in html  # this helpdesk agent may not run it any more
    assert (
        link in client_for(admin_user).get(reverse("runs:detail", args=[run.pk])).content.decode()
    )

    succeeded = settle(make_run(admin_user, workflow), [Outcome.SUCCESS] * 3)
    html = client_for(admin_user).get(reverse("runs:detail", args=[succeeded.pk])).content.decode()
    assert "?rerun=" not in html


def test_rerun_prefills_the_form_and_goes_through_the_confirmation(
    client_for, helpdesk, workflow, enqueued
):
    devices = [
        targets_mod.Target(TargetKind.DEVICE_COLLECTOR, uuids(1)[0], 1),
        targets_mod.Target(TargetKind.DEVICE_NAME, "3fa85f64-5717-4562-b3fc-2c963f66afa6", 2),
        targets_mod.Target(TargetKind.DEVICE_NAME, "PC-0042", 3),
        targets_mod.Target(TargetKind.DEVICE_UID, uuids(4)[3], 4),
    ]
    run = create_run(
        user=helpdesk,
        workflow=workflow,
        targets=devices,
        params={"ticket": "INC0000001", "mode": "full", "password": SECRET},
        reason="INC0000001 Teams broken",
        source=Run.Source.HELPDESK,
    )
    settle(run, [Outcome.SUCCESS, Outcome.FAILURE, Outcome.NOT_SENT, Outcome.FAILURE])
    client = client_for(helpdesk)

    response = client.get(reverse("runs:start", args=[workflow.pk]), {"rerun": run.pk})
    html = response.content.decode()
    assert response.status_code == 200
    textarea = re.search(r'<textarea name="targets_text"[^>]*>(.*?)</textarea>', html, re.S)
    assert textarea
    lines = textarea.group(1).strip().splitlines()
    assert lines == [
        "name:3fa85f64-5717-4562-b3fc-2c963f66afa6",  # a name shaped like a UUID stays a name
        "name:PC-0042",
        f"device-uid:{uuids(4)[3]}",
    ]
    assert 'value="INC0000001 Teams broken"' in html
    assert 'value="INC0000001"' in html and '<option value="full" selected>' in html
    assert SECRET not in html and "••••••" not in html
    assert "Secret parameters are never kept: type them again." in html
    assert f"Pre-filled from run {run.pk}: its 3 failed or not-sent targets" in html

    confirm = client.post(
        reverse("runs:start", args=[workflow.pk]),
        {
            "targets_text": "\n".join(lines),
            "reason": "INC0000001 Teams broken",
            "param_ticket": "INC0000001",
            "param_mode": "full",
            "param_password": SECRET,
        },
    )
    page = confirm.content.decode()
    assert confirm.status_code == 200 and 'data-testid="target-count">3<' in page
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token
    started = client.post(reverse("runs:confirm", args=[workflow.pk]), {"token": token.group(1)})
    rerun = Run.objects.exclude(pk=run.pk).get()
    assert started.status_code == 302 and started.url == reverse("runs:detail", args=[rerun.pk])
    assert list(rerun.targets.order_by("position").values_list("kind", "value")) == [
        (TargetKind.DEVICE_NAME, "3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        (TargetKind.DEVICE_NAME, "PC-0042"),
        (TargetKind.DEVICE_UID, uuids(4)[3]),
    ]


def test_rerun_of_an_unknown_or_unrelated_run_prefills_nothing(
    client_for, helpdesk, workflow, enqueued
):
    other = make_workflow("#other_workflow")
    theirs = settle(make_run(helpdesk, other), [Outcome.FAILURE] * 3)
    fine = settle(make_run(helpdesk, workflow), [Outcome.SUCCESS] * 3)
    client = client_for(helpdesk)
    url = reverse("runs:start", args=[workflow.pk])
    for value in ("999999", "abc", "", str(theirs.pk), "\x00"):
        response = client.get(url, {"rerun": value})
        html = response.content.decode()
        assert response.status_code == 200, value
        assert "Nothing was pre-filled" in html, value
        assert re.search(r'<textarea name="targets_text"[^>]*>\s*</textarea>', html), value
    html = client.get(url, {"rerun": fine.pk}).content.decode()
    assert f"Run {fine.pk} has no failed targets any more" in html


def test_rerun_prefill_is_limited_to_runs_the_person_may_open(
    make_user, helpdesk, employee, workflow, enqueued
):
    run = settle(make_run(helpdesk, workflow), [Outcome.FAILURE] * 3)
    assert rerun_prefill(helpdesk, run.pk, workflow) is not None
    assert rerun_prefill(employee, run.pk, workflow) is None
    prefill = rerun_prefill(make_user("other-helpdesk", Role.HELPDESK), run.pk, workflow)
    assert prefill is not None and prefill.target_count == 3


def test_a_target_line_reads_back_as_the_same_target():
    for kind, value in [
        (TargetKind.DEVICE_COLLECTOR, uuids(1)[0]),
        (TargetKind.DEVICE_UID, uuids(2)[1]),
        (TargetKind.DEVICE_NAME, "3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        (TargetKind.DEVICE_NAME, "PC-0042"),
        (TargetKind.USER_SID, "S-1-5-21-1004336348-1177238915-682003330-1001"),
        (TargetKind.USER_UPN, "jane.doe@example.com"),
        (TargetKind.USER_UID, uuids(3)[2]),
    ]:
        parsed = targets_mod.parse_text(targets_mod.to_line(kind, value))
        assert parsed.ok and [(t.kind, t.value) for t in parsed.targets] == [(kind, value)]


# --- resumptions ---------------------------------------------------------------------------------
def test_resumptions_are_shown_on_the_run_page(client_for, helpdesk, admin_user, workflow):
    run = settle(make_run(helpdesk, workflow), [Outcome.WAITING, Outcome.SUCCESS, Outcome.SUCCESS])
    target = Target.objects.get(run=run, position=0)
    Resumption.objects.create(
        run=run,
        target=target,
        execution_uuid=target.execution_uuid,
        requested_by=admin_user,
        source=Run.Source.HELPDESK,
        params={"approver": "jane", "pin": "••••••"},
        request_uuid="5e1f0c4a-0000-4000-8000-000000000001",
    )
    Resumption.objects.create(
        run=run,
        target=target,
        execution_uuid=target.execution_uuid,
        requested_by=helpdesk,
        source=Run.Source.CLI,
        error_code="NOT_WAITING",
        error_details="The execution is not waiting for an event.",
    )
    html = client_for(helpdesk).get(reverse("runs:detail", args=[run.pk])).content.decode()
    section = html[html.index('data-testid="resumptions"') :]
    assert "5e1f0c4a-0000-4000-8000-000000000001" in section and "Resumed" in section
    assert "<code>approver</code> = <code>jane</code>" in section and "••••••" in section
    assert "NOT_WAITING" in section and "not waiting for an event" in section
    assert "admin" in section and "Command line" in section


# --- what employees see --------------------------------------------------------------------------
@pytest.fixture
def fix() -> Workflow:
    wf = make_workflow("#clear_teams_cache_fix")
    WorkflowCuration.objects.create(workflow=wf, self_service=True, title="Fix Microsoft Teams")
    return wf


@pytest.mark.parametrize(
    ("outcome", "headline"),
    [
        (Outcome.SUCCESS, "Fixed"),
        (Outcome.WAITING, "Paused until IT continues it"),
        (Outcome.RUNNING, "Running"),
        (Outcome.PENDING, "Running"),
        (Outcome.UNKNOWN, "Not sure it worked"),
    ],
)
def test_employees_see_their_fix_in_plain_words(
    client_for, employee, fix, enqueued, outcome, headline
):
    run = settle(make_run(employee, fix, count=1, source=Run.Source.SELF_SERVICE), [outcome])
    html = client_for(employee).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert f'data-testid="run-status">{headline}<' in html
    assert '<h1 data-testid="fix-title">Fix Microsoft Teams</h1>' in html
    for hidden in ("req-1", "00000000-0000-4000-9000", 'data-testid="batches"', "data-position"):
        assert hidden not in html
    assert "Try again" not in html


def test_a_failed_fix_says_why_and_offers_to_try_again_and_the_helpdesk(
    client_for, employee, fix, enqueued
):
    run = settle(
        make_run(employee, fix, count=1, source=Run.Source.SELF_SERVICE),
        [(Outcome.FAILURE, "failure", "Teams is not installed on this device", "")],
    )
    client = client_for(employee)
    url = reverse("runs:detail", args=[run.pk])

    html = client.get(url).content.decode()
    assert 'data-testid="run-status">Did not work<' in html
    assert 'data-testid="fix-details">Teams is not installed on this device<' in html
    assert f'href="/self-service/{fix.pk}/"' in html and "Try again" in html
    assert "Contact the helpdesk" not in html  # no link set by admins

    settings = PortalSettings.load()
    settings.helpdesk_url = "https://help.example.com/new?topic=teams"
    settings.save()
    html = client.get(url).content.decode()
    assert 'href="https://help.example.com/new?topic=teams"' in html
    assert "Contact the helpdesk" in html

    settings.helpdesk_url = "javascript:alert(1)"
    settings.save()
    assert "Contact the helpdesk" not in client.get(url).content.decode()


def test_a_fix_without_a_curated_title_shows_the_workflows_name(client_for, employee, enqueued):
    wf = make_workflow("#plain", name="Plain workflow")
    WorkflowCuration.objects.create(workflow=wf, self_service=True)
    run = settle(make_run(employee, wf, count=1, source=Run.Source.SELF_SERVICE), [Outcome.SUCCESS])
    html = client_for(employee).get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert '<h1 data-testid="fix-title">Plain workflow</h1>' in html


def test_the_employees_page_polls_until_the_fix_settles(client_for, employee, fix, enqueued):
    run = make_run(employee, fix, count=1, source=Run.Source.SELF_SERVICE)
    client = client_for(employee)
    progress_url = reverse("runs:progress", args=[run.pk])
    html = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert f'hx-get="{progress_url}"' in html and 'hx-trigger="every 2s"' in html
    assert 'data-testid="run-status">Running<' in html

    settle(run, [Outcome.SUCCESS])
    response = client.get(progress_url, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'data-testid="run-status">Fixed<' in html and "hx-trigger" not in html
    assert 'data-testid="batches"' not in html
    assert "run-settled" in response.headers["HX-Trigger"]


def test_fix_status_words_every_run_status(employee, fix, enqueued):
    run = make_run(employee, fix, count=1, source=Run.Source.SELF_SERVICE)
    words = {}
    for status in RunStatus:
        Run.objects.filter(pk=run.pk).update(status=status)
        run.refresh_from_db()
        words[status] = fix_status(run).headline
    assert words == {
        RunStatus.QUEUED: "Running",
        RunStatus.IN_PROGRESS: "Running",
        RunStatus.WAITING: "Paused until IT continues it",
        RunStatus.SUCCEEDED: "Fixed",
        RunStatus.SENT: "Sent to your device",  # a remote action's; no workflow run ends so
        RunStatus.PARTIAL: "Did not work",
        RunStatus.FAILED: "Did not work",
        RunStatus.UNKNOWN: "Not sure it worked",
        RunStatus.AWAITING_APPROVAL: "Waiting for approval",
        RunStatus.REJECTED: "Not approved",
        RunStatus.EXPIRED: "Not approved in time",
    }


def test_outcome_counts_fill_in_targets_not_counted_yet(helpdesk, workflow, enqueued) -> None:
    run = make_run(helpdesk, workflow, count=5)
    assert outcome_counts(run) == {"": 5}
    run.outcome_counts = {"success": 2, "": 3, "failure": 0}
    assert outcome_counts(run) == {"success": 2, "": 3}
