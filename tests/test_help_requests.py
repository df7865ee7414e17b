"""Escalation to the helpdesk: "Get help" on one's own self-service fix that did not work."""

from __future__ import annotations

import json
import re
import smtplib
import threading
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tests.celery_fixtures import wait_until
from workflows_app import tasks
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    FlowRun,
    FlowRunStatus,
    HelpRequest,
    Outcome,
    ParameterDefinition,
    Run,
    RunEvent,
    RunEventKind,
    RunStatus,
    Webhook,
    Workflow,
    WorkflowCuration,
)
from workflows_app.nexthink.models import Dependency
from workflows_app.roles import Role
from workflows_app.selectors.help_requests import help_request_page
from workflows_app.services import dispatch, escalation, flows, help_requests, notifications
from workflows_app.services.flow_runs import start_flow_run
from workflows_app.services.runs import create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind

pytestmark = pytest.mark.django_db

HELPDESK = "it-helpdesk@example.com"
COLLECTOR = "0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40"
EXECUTION = "66666666-7777-4888-9999-000000000000"
SECRET = "hunter2-never-shown"


@pytest.fixture
def helpdesk_mail(settings: Any) -> Any:
    settings.HELPDESK_EMAIL = HELPDESK
    settings.HELPDESK_CONTACT_TEXT = "Call IT on 555-0100."
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    return settings


@pytest.fixture
def teams() -> Workflow:
    now = timezone.now()
    workflow = Workflow.objects.create(
        nql_id="#clear_teams_cache",
        uuid="uuid-teams",
        name="Clear Teams cache",
        status=Workflow.Status.ACTIVE,
        dependency=Dependency.DEVICE,
        trigger_api=True,
        first_seen=now,
        last_seen=now,
    )
    WorkflowCuration.objects.create(workflow=workflow, self_service=True, title="Fix Teams")
    ParameterDefinition.objects.create(workflow=workflow, name="password", position=0, secret=True)
    return workflow


@pytest.fixture
def fix(employee: Any, teams: Workflow, enqueued: list[int]) -> Any:
    """A run of `user` (the employee by default) in the state a test gives it."""

    def make(
        status: RunStatus = RunStatus.FAILED,
        *,
        user: Any = None,
        source: Run.Source = Run.Source.SELF_SERVICE,
    ) -> Run:
        run = create_run(
            user=user or employee,
            workflow=teams,
            targets=[Wanted(TargetKind.DEVICE_COLLECTOR, COLLECTOR, 1)],
            params={"password": SECRET},
            reason="Self-service on LAPTOP-7",
            source=source,
            allow_duplicate=True,
        )
        run.targets.update(
            execution_uuid=EXECUTION,
            outcome=Outcome.FAILURE if status != RunStatus.SUCCEEDED else Outcome.SUCCESS,
            status="failure",
            status_details="Remote action failed",
            outcome_details="Teams cache is locked by another process",
        )
        Run.objects.filter(pk=run.pk).update(status=status)
        run.refresh_from_db()
        return run

    return make


@pytest.fixture
def published(monkeypatch: Any) -> list[tuple[int, str, dict[str, Any]]]:
    """Events published (once their transaction commits), recorded instead of queued."""
    sent: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        dispatch, "enqueue_notification", lambda run_id, event, d: sent.append((run_id, event, d))
    )
    return sent


def ask_url(run: Run) -> str:
    return f"/runs/{run.pk}/help/"


# --- what the helpdesk receives ------------------------------------------------------------------


def test_asking_for_help_tells_the_helpdesk_everything_but_secrets(
    client_for: Any,
    employee: Any,
    fix: Any,
    helpdesk_mail: Any,
    published: list[Any],
    monkeypatch: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    employee.first_name, employee.last_name = "Erin", "Employee"
    employee.save()
    run = fix(RunStatus.FAILED)
    client = client_for(employee)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            ask_url(run), {"message": "Teams still shows a white window"}, HTTP_HX_REQUEST="true"
        )

    assert response.status_code == 200
    help_request = HelpRequest.objects.get(run=run)
    page = response.content.decode()
    assert f'data-testid="help-reference">HELP-{help_request.pk}<' in page
    assert "The IT helpdesk received your request with the details of this fix" in page
    assert "employee@example.com" in page
    # Published once, with what a helpdesk needs.
    assert [(r, e) for r, e, _ in published] == [(run.pk, "run.help_requested")]
    details = published[0][2]
    assert details == help_request.details
    assert details["reference"] == f"HELP-{help_request.pk}"
    assert details["message"] == "Teams still shows a white window"
    assert details["employee"] == {
        "name": "Erin Employee",
        "username": "employee",
        "email": "employee@example.com",
    }
    assert details["devices"] == [COLLECTOR]
    assert details["run"]["workflow"] == "Fix Teams"
    assert details["run"]["status"] == "failed"
    assert details["run"]["url"] == f"https://portal.example.com/runs/{run.pk}/"
    assert details["targets"][0]["outcome_details"] == "Teams cache is locked by another process"
    assert details["targets"][0]["status_details"] == "Remote action failed"
    assert details["targets"][0]["execution_id"] == EXECUTION
    assert SECRET not in json.dumps(details)

    # The escalation channel queues the helpdesk's mail; the task sends it, once.
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_help_email", queued.append)
    notifications.deliver(run.pk, "run.help_requested", details)
    assert queued == [help_request.pk]
    assert escalation.send_helpdesk_email(help_request.pk) == "sent"
    assert escalation.send_helpdesk_email(help_request.pk) == "already sent"

    [message] = mail.outbox
    assert message.to == [HELPDESK] and message.reply_to == ["employee@example.com"]
    assert f"[HELP-{help_request.pk}] Erin Employee needs help: Fix Teams" in message.subject
    for words in (
        "Erin Employee (username employee, e-mail employee@example.com)",
        "Teams still shows a white window",
        f"Device(s): {COLLECTOR}",
        "Reason: Self-service on LAPTOP-7",  # the device's name, which the UUID does not say
        "Status: Failed",
        "Teams cache is locked by another process",
        "Remote action failed",
        f"https://portal.example.com/runs/{run.pk}/",
    ):
        assert words in message.body
    assert SECRET not in message.body + message.subject
    assert re.search(r"Asked at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", message.body)
    help_request.refresh_from_db()
    assert help_request.email_sent_at is not None and help_request.email_attempts == 1

    # The run's history: timeline, audit log, the pages.
    event = RunEvent.objects.get(run=run, kind=RunEventKind.HELP_REQUESTED)
    assert event.actor == employee and f"HELP-{help_request.pk}" in event.message
    audit = AuditEvent.objects.get(action=AuditAction.HELP_REQUESTED)
    assert audit.actor == employee and audit.object_id == str(help_request.pk)
    fix_page = client.get(f"/runs/{run.pk}/").content.decode()
    assert f"(<strong>HELP-{help_request.pk}</strong>)" in fix_page
    assert 'data-testid="get-help"' not in fix_page


def test_a_helpdesk_the_mail_server_cannot_reach_now_is_tried_again_not_a_refused_one(
    employee: Any, fix: Any, helpdesk_mail: Any
) -> None:
    run = fix(RunStatus.FAILED)
    given = help_requests.request_help(run=run, user=employee, message="", run_url="/runs/1/")
    pk = given.help_request.pk

    helpdesk_mail.EMAIL_BACKEND = f"{__name__}.MailServerDown"
    down = tasks.help_email_task.apply(args=(pk,))  # eager: its retries run at once
    assert isinstance(down.result, escalation.MailUnavailable)
    row = HelpRequest.objects.get(pk=pk)
    assert row.email_attempts == 1 + escalation.MAIL_RETRIES
    assert "SMTPServerDisconnected" in row.email_error

    helpdesk_mail.EMAIL_BACKEND = f"{__name__}.MailboxRefused"
    assert tasks.help_email_task.apply(args=(pk,)).result == "refused"
    row = HelpRequest.objects.get(pk=pk)
    assert row.email_attempts == 2 + escalation.MAIL_RETRIES and row.email_sent_at is None
    assert "550" in row.email_error and not mail.outbox


class MailServerDown(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class MailboxRefused(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise smtplib.SMTPDataError(550, b"Mailbox unavailable")


def test_the_escalation_channel_hears_the_help_event_and_nothing_else(monkeypatch: Any) -> None:
    assert escalation.HELP_REQUESTED == notifications.Event.HELP_REQUESTED
    assert escalation.on_run_event in notifications.channels()
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_help_email", queued.append)
    escalation.on_run_event(1, notifications.Event.ENDED, {})
    assert queued == []


# --- what the employee is offered -----------------------------------------------------------------


def test_get_help_is_offered_on_final_runs_in_words_that_fit_how_it_went(
    client_for: Any, employee: Any, fix: Any, helpdesk_mail: Any
) -> None:
    client = client_for(employee)
    failed, worked, running = fix(RunStatus.FAILED), fix(RunStatus.SUCCEEDED), fix(RunStatus.QUEUED)

    page = client.get(f"/runs/{failed.pk}/").content.decode()
    assert f'href="/runs/{failed.pk}/help/" data-testid="get-help">Get help</a>' in page
    page = client.get(f"/runs/{worked.pk}/").content.decode()
    assert 'data-testid="get-help">Still not fixed? Get help</a>' in page
    assert 'data-testid="get-help"' not in client.get(f"/runs/{running.pk}/").content.decode()
    home = client.get("/self-service/").content.decode()
    assert f'href="/runs/{failed.pk}/help/" data-testid="get-help">Get help</a>' in home
    form = client.get(ask_url(failed)).content.decode()
    assert 'data-testid="help-form"' in form and "contact you at <strong>employee@" in form


def test_without_a_helpdesk_channel_the_page_says_how_to_contact_it(
    client_for: Any, employee: Any, fix: Any, helpdesk_mail: Any
) -> None:
    helpdesk_mail.HELPDESK_EMAIL = ""
    run = fix(RunStatus.FAILED)
    client = client_for(employee)

    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'data-testid="get-help"' not in page
    assert "To get help: Call IT on 555-0100." in page
    assert "To get help: Call IT on 555-0100." in client.get("/self-service/").content.decode()
    response = client.post(ask_url(run), {"message": "hello"})
    assert response.status_code == 409 and b"Call IT on 555-0100." in response.content
    hook = Webhook.objects.create(
        url="https://tickets.example.com/hook",
        secret="not used",
        events=["run.ended"],
        created_by=employee,
    )
    assert 'data-testid="get-help"' not in client.get(f"/runs/{run.pk}/").content.decode()
    hook.events = ["run.ended", "run.help_requested"]  # a webhook alone is a channel
    hook.save()
    assert 'data-testid="get-help"' in client.get(f"/runs/{run.pk}/").content.decode()
    assert not HelpRequest.objects.exists()


def test_an_ended_self_service_flow_offers_help_about_its_step_that_did_not_work(
    client_for: Any,
    employee: Any,
    admin_user: Any,
    teams: Workflow,
    helpdesk_mail: Any,
    enqueued: Any,
) -> None:
    flow = flows.create_flow(
        user=admin_user,
        data={
            "name": "Teams",
            "self_service": True,
            "steps": [{"name": "clear", "referrer": teams.nql_id}],
        },
    )
    flow_run = start_flow_run(
        user=employee,
        flow=flow,
        targets=[Wanted(TargetKind.DEVICE_COLLECTOR, COLLECTOR, 1)],
        reason="Self-service",
        source=Run.Source.SELF_SERVICE,
    )
    step_run = flow_run.steps.get().run
    client = client_for(employee)
    page = f"/flows/runs/{flow_run.pk}/"
    assert 'data-testid="get-help"' not in client.get(page).content.decode()  # still running

    Run.objects.filter(pk=step_run.pk).update(status=RunStatus.FAILED)
    FlowRun.objects.filter(pk=flow_run.pk).update(status=FlowRunStatus.FAILED)
    html = client.get(page).content.decode()
    assert f'href="/runs/{step_run.pk}/help/" data-testid="get-help">Get help</a>' in html


# --- one request per run ------------------------------------------------------------------------


def test_asking_again_shows_the_request_already_made(
    client_for: Any, employee: Any, fix: Any, helpdesk_mail: Any, published: list[Any]
) -> None:
    run = fix(RunStatus.PARTIAL)
    client = client_for(employee)
    first = client.post(ask_url(run), {"message": "first"})
    assert first.status_code == 302 and first["Location"] == ask_url(run)
    again = client.post(ask_url(run), {"message": "second"})
    reference = HelpRequest.objects.get(run=run).reference
    assert again.status_code == 200 and reference.encode() in again.content
    assert HelpRequest.objects.get().message == "first"
    with pytest.raises(IntegrityError), transaction.atomic():
        HelpRequest.objects.create(run=run, requested_by=employee)


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_make_one(
    make_user: Any, teams: Workflow, helpdesk_mail: Any, published: list[Any], monkeypatch: Any
) -> None:
    from django.contrib.auth.models import Group

    Group.objects.get_or_create(name=Role.EMPLOYEE.value)
    user = make_user("employee", Role.EMPLOYEE)
    monkeypatch.setattr(dispatch, "enqueue_batch", lambda *a, **k: None)
    run = create_run(
        user=user,
        workflow=teams,
        targets=[Wanted(TargetKind.DEVICE_COLLECTOR, COLLECTOR, 1)],
        params={},
        reason="",
        source=Run.Source.SELF_SERVICE,
    )
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)
    run.refresh_from_db()
    original = help_requests.help_details
    inside = threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        # The first request holds its transaction until the second one waits for the run.
        inside.set()
        wait_until(_someone_waits_for_a_lock, timeout=10, what="the second request to wait")
        return original(*args, **kwargs)

    monkeypatch.setattr(help_requests, "help_details", held)
    outcomes: list[Any] = []

    def ask() -> None:
        try:
            outcomes.append(
                help_requests.request_help(run=run, user=user, message="", run_url="/r/")
            )
        except Exception as exc:  # recorded: the assertion below shows it
            outcomes.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=ask)
    first.start()
    assert inside.wait(timeout=10)
    second = threading.Thread(target=ask)
    second.start()
    first.join(timeout=20)
    second.join(timeout=20)

    assert HelpRequest.objects.count() == 1
    assert sorted(o.created for o in outcomes) == [False, True]
    assert {o.help_request.pk for o in outcomes} == {HelpRequest.objects.get().pk}


def _someone_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND a.datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


# --- refusals ----------------------------------------------------------------------------------


def test_only_the_requester_of_a_final_self_service_run_may_ask(
    client: Any,
    client_for: Any,
    make_user: Any,
    employee: Any,
    helpdesk: Any,
    fix: Any,
    helpdesk_mail: Any,
) -> None:
    run = fix(RunStatus.FAILED)
    other = make_user("other", Role.EMPLOYEE)
    own_helpdesk_run = fix(RunStatus.FAILED, user=helpdesk, source=Run.Source.HELPDESK)
    running = fix(RunStatus.IN_PROGRESS)

    assert client.post(ask_url(run)).status_code == 302  # anonymous: to the login page
    assert client_for(other).post(ask_url(run)).status_code == 404
    assert client_for(other).get(ask_url(run)).status_code == 404
    assert client_for(helpdesk).post(ask_url(run)).status_code == 404  # sees it, did not run it
    refused = client_for(helpdesk).post(ask_url(own_helpdesk_run))
    assert refused.status_code == 403 and b"Help requests are for self-service" in refused.content
    client = client_for(employee)
    early = client.post(ask_url(running), {"message": "hurry"})
    assert early.status_code == 409 and b"has not finished yet" in early.content
    too_long = client.post(ask_url(run), {"message": "x" * 2001})
    assert too_long.status_code == 422 and b"at most (it has 2001)" in too_long.content
    assert client.post(ask_url(run), {"message": "a\x00b"}).status_code == 422
    assert client.put(ask_url(run)).status_code == 405
    assert client.get("/help-requests/").status_code == 403
    assert not HelpRequest.objects.exists()


# --- the history ---------------------------------------------------------------------------------


def test_the_history_finds_runs_with_a_help_request_and_the_helpdesk_lists_them(
    client_for: Any, employee: Any, helpdesk: Any, fix: Any, helpdesk_mail: Any
) -> None:
    helped, other = fix(RunStatus.FAILED), fix(RunStatus.FAILED)
    given = help_requests.request_help(
        run=helped, user=employee, message="please call", run_url="/r/"
    )
    reference = given.help_request.reference
    client = client_for(helpdesk)

    page = client.get("/runs/?mine=0&help=1").content.decode()
    assert f'data-run="{helped.pk}"' in page and f'data-run="{other.pk}"' not in page
    assert 'data-testid="help-marker"' in page
    everyone = client.get("/runs/?mine=0").content.decode()
    assert f'data-run="{other.pk}"' in everyone and everyone.count('data-testid="help-marker"') == 1
    assert b"help&#x27; must be 1 or 0" in client.get("/runs/?help=yes").content
    detail = client.get(f"/runs/{helped.pk}/").content.decode()
    assert "by employee at" in detail and f"({reference})" in detail
    listed = client.get("/help-requests/").content.decode()
    assert reference in listed and "please call" in listed
    assert f'href="/runs/{helped.pk}/"' in listed
    assert 'href="/runs/?mine=0&amp;help=1" data-testid="runs-with-help"' in listed
    ticked = client.get("/runs/?help=1&mine=1").content.decode()  # "only my runs" left ticked
    assert f'data-run="{helped.pk}"' in ticked and f'data-run="{other.pk}"' not in ticked
    mine = client_for(employee).get("/runs/?help=1").content.decode()
    assert f'data-run="{helped.pk}"' in mine and f'data-run="{other.pk}"' not in mine


# --- handling them -------------------------------------------------------------------------------


def test_helpdesk_marks_a_request_handled_and_the_list_shows_open_ones_first(
    client_for: Any, employee: Any, helpdesk: Any, fix: Any, helpdesk_mail: Any
) -> None:
    older, newer = (
        help_requests.request_help(
            run=fix(RunStatus.FAILED), user=employee, message="", run_url="/r/"
        ).help_request
        for _ in range(2)
    )
    client = client_for(helpdesk)
    answer = client.post(f"/help-requests/{newer.pk}/handled/", {"show": "open"})
    assert answer.status_code == 302 and answer.url == "/help-requests/?show=open"
    newer.refresh_from_db()
    assert newer.handled_by == helpdesk and newer.handled_at is not None
    again = client.post(f"/help-requests/{newer.pk}/handled/", follow=True).content.decode()
    assert f"{newer.reference} was already handled by helpdesk" in again
    audited = AuditEvent.objects.filter(action=AuditAction.HELP_HANDLED)
    assert [(e.actor_name, e.object_id) for e in audited] == [("helpdesk", str(newer.pk))]

    listed = re.findall(
        r'data-help-request="(\d+)"', client.get("/help-requests/").content.decode()
    )
    assert listed == [str(older.pk), str(newer.pk)]  # the open one first, though older
    for show, shown in (("open", [older]), ("handled", [newer])):
        page = client.get(f"/help-requests/?show={show}").content.decode()
        assert re.findall(r'data-help-request="(\d+)"', page) == [str(h.pk) for h in shown]
    handled = client.get("/help-requests/?show=handled").content.decode()
    assert "by helpdesk, " in handled and 'data-testid="mark-handled"' not in handled


def test_employees_may_not_mark_help_requests_handled(
    client_for: Any, employee: Any, helpdesk: Any, fix: Any, helpdesk_mail: Any
) -> None:
    given = help_requests.request_help(
        run=fix(RunStatus.FAILED), user=employee, message="", run_url="/r/"
    )
    url = f"/help-requests/{given.help_request.pk}/handled/"
    assert client_for(employee).post(url).status_code == 403
    assert client_for(helpdesk).get(url).status_code == 405
    assert client_for(helpdesk).post("/help-requests/999999/handled/").status_code == 404
    given.help_request.refresh_from_db()
    assert given.help_request.handled_at is None


def test_pages_of_all_help_requests_go_through_the_open_ones_then_the_handled_ones(
    employee: Any, helpdesk: Any, fix: Any, helpdesk_mail: Any
) -> None:
    made = [
        help_requests.request_help(
            run=fix(RunStatus.FAILED), user=employee, message="", run_url="/r/"
        ).help_request
        for _ in range(3)
    ]
    help_requests.mark_handled(made[1], user=helpdesk)
    seen, before = [], None
    while True:
        page = help_request_page(before=before, size=1)
        seen += [h.pk for h in page.requests]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [made[2].pk, made[0].pk, made[1].pk]
