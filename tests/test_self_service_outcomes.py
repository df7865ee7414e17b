"""What an employee reads about their recent fixes: plain words, what to do when one failed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from workflows_app.models import Outcome, PortalSettings, Run, RunStatus, Target, WorkflowCuration
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db

HOME = "/self-service/"
RECENT = "/self-service/recent/"
COLLECTOR = "0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40"
REQUEST_UUID = "11111111-2222-4333-8444-555555555555"
EXECUTION_UUID = "66666666-7777-4888-9999-000000000000"


@pytest.fixture
def teams(sim_workflow: Any) -> Any:
    workflow = sim_workflow("#clear_teams_cache", self_service=True)
    WorkflowCuration.objects.filter(workflow=workflow).update(title="Fix Microsoft Teams")
    return workflow


@pytest.fixture
def fix(employee: Any, teams: Any, enqueued: list[int]) -> Any:
    """A self-service run of the employee on their device, in the state a test gives it."""

    def make(status: RunStatus, outcome: str = "", **target: str) -> Run:
        run = create_run(
            user=employee,
            workflow=teams,
            targets=[Wanted(TargetKind.DEVICE_COLLECTOR, COLLECTOR, 1)],
            params={},
            reason="",
            source=Run.Source.SELF_SERVICE,
            allow_duplicate=True,
        )
        run.batches.update(request_uuid=REQUEST_UUID)
        run.targets.update(execution_uuid=EXECUTION_UUID, outcome=outcome, **target)
        Run.objects.filter(pk=run.pk).update(status=status)
        return run

    return make


def status_text(html: str) -> list[str]:
    """The text of each fix's status, tags removed, blanks collapsed."""
    found = re.findall(r'data-testid="fix-status">(.*?)</span>\s*(?:<br>|\n)', html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", text).split()) for text in found]


@pytest.mark.parametrize(
    ("status", "outcome", "target", "words"),
    [
        (RunStatus.SUCCEEDED, Outcome.SUCCESS, {}, "Fixed"),
        (
            RunStatus.FAILED,
            Outcome.FAILURE,
            {"outcome_details": "Teams cache is locked by another process"},
            "Did not work: Teams cache is locked by another process",
        ),
        (
            RunStatus.FAILED,
            Outcome.FAILURE,
            {"status_details": "Remote action failed"},
            "Did not work: Remote action failed",
        ),
        (
            RunStatus.FAILED,
            Outcome.NOT_SENT,
            {"outcome_details": "The batch was not sent to Nexthink: HTTP 403"},
            "Did not work: it could not be started.",
        ),
        (RunStatus.UNKNOWN, Outcome.UNKNOWN, {}, "We could not tell whether it worked"),
        (RunStatus.WAITING, Outcome.WAITING, {}, "Paused until IT continues it"),
        (RunStatus.AWAITING_APPROVAL, "", {}, "Waiting for approval"),
        (RunStatus.IN_PROGRESS, Outcome.RUNNING, {}, "Running"),
        (RunStatus.QUEUED, "", {}, "Running"),
    ],
)
def test_each_fix_says_how_it_went_in_plain_words(
    client_for: Any, employee: Any, fix: Any, status: Any, outcome: Any, target: Any, words: str
) -> None:
    fix(status, outcome, **target)
    html = client_for(employee).get(HOME).content.decode()
    assert status_text(html) == [words]
    assert "Fix Microsoft Teams" in html
    # No request or execution ids, no batches, on the employee's page.
    assert REQUEST_UUID not in html and EXECUTION_UUID not in html
    assert "batch" not in html.lower()


def test_a_failed_fix_offers_to_try_again_and_to_contact_the_helpdesk(
    client_for: Any, employee: Any, fix: Any, teams: Any
) -> None:
    PortalSettings.objects.update_or_create(
        pk=1, defaults={"helpdesk_url": "https://helpdesk.example.com/new"}
    )
    fix(RunStatus.SUCCEEDED, Outcome.SUCCESS)
    fix(RunStatus.FAILED, Outcome.FAILURE, outcome_details="exit 1")

    html = client_for(employee).get(HOME).content.decode()

    assert html.count('data-testid="try-again"') == 1
    assert f'href="/self-service/{teams.pk}/" data-testid="try-again">Try again</a>' in html
    assert (
        '<a href="https://helpdesk.example.com/new" data-testid="contact-helpdesk" '
        'rel="noopener">Contact the helpdesk</a>'
    ) in html


def test_no_helpdesk_link_unless_admins_set_one(client_for: Any, employee: Any, fix: Any) -> None:
    fix(RunStatus.FAILED, Outcome.FAILURE)
    html = client_for(employee).get(HOME).content.decode()
    assert 'data-testid="try-again"' in html
    assert 'data-testid="contact-helpdesk"' not in html


def test_a_helpdesk_contact_that_is_not_a_link_is_shown_as_text(
    client_for: Any, employee: Any, fix: Any
) -> None:
    PortalSettings.objects.update_or_create(pk=1, defaults={"helpdesk_url": "javascript:alert(1)"})
    fix(RunStatus.UNKNOWN, Outcome.UNKNOWN)
    html = client_for(employee).get(HOME).content.decode()
    assert 'href="javascript' not in html
    assert (
        '<span data-testid="contact-helpdesk">Contact the helpdesk: javascript:alert(1)</span>'
        in (html)
    )


def test_try_again_is_not_offered_once_the_fix_is_withdrawn(
    client_for: Any, employee: Any, fix: Any, teams: Any
) -> None:
    fix(RunStatus.FAILED, Outcome.FAILURE)
    WorkflowCuration.objects.filter(workflow=teams).update(self_service=False)
    html = client_for(employee).get(HOME).content.decode()
    assert "Did not work" in html and 'data-testid="try-again"' not in html


def test_the_recent_fixes_refresh_themselves_until_every_one_is_final(
    client_for: Any, employee: Any, fix: Any
) -> None:
    client = client_for(employee)
    running = fix(RunStatus.IN_PROGRESS, Outcome.RUNNING)

    page = client.get(HOME).content.decode()
    assert 'data-polling="true"' in page
    assert f'hx-get="{RECENT}" hx-trigger="every 3s" hx-swap="outerHTML"' in page

    partial = client.get(RECENT, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    html = partial.content.decode()
    assert "<html" not in html and 'id="recent-fixes-area"' in html
    assert 'hx-trigger="every 3s"' in html and status_text(html) == ["Running"]

    Run.objects.filter(pk=running.pk).update(status=RunStatus.SUCCEEDED)
    Target.objects.filter(run=running).update(outcome=Outcome.SUCCESS)
    html = client.get(RECENT, headers={"HX-Request": "true"}).content.decode()
    assert status_text(html) == ["Fixed"]
    assert 'data-polling="false"' in html and "hx-trigger" not in html  # polling stops


def test_recent_fixes_are_the_persons_own(
    client_for: Any, helpdesk: Any, employee: Any, fix: Any
) -> None:
    fix(RunStatus.FAILED, Outcome.FAILURE)
    html = client_for(helpdesk).get(RECENT).content.decode()
    assert "You have not run any fix yet." in html


def test_fix_paused_for_it_never_reads_like_one_waiting_for_approval(
    client_for: Any, employee: Any, fix: Any
) -> None:
    paused = fix(RunStatus.WAITING, Outcome.WAITING)
    page = client_for(employee).get(reverse("runs:detail", args=[paused.pk])).content.decode()
    assert 'data-testid="run-status">Paused until IT continues it<' in page
    assert "Waiting for approval" not in page and "approves it" not in page
