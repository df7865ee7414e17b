"""E-mail notifications: who is mailed about which run event, once, without secrets; their
choices page; and the lifecycle publishing run.submitted and run.ended once each."""

from __future__ import annotations

import smtplib
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from tests.notify_support import SECRET_PARAM
from workflows_app import tasks
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    Batch,
    EmailNotice,
    EmailState,
    NotificationPreference,
    Outcome,
    Run,
    RunEvent,
    RunEventKind,
    RunStatus,
    Target,
)
from workflows_app.roles import Role
from workflows_app.services import dispatch, lifecycle
from workflows_app.services.notifications import Event
from workflows_app.services.params import MASK

pytestmark = pytest.mark.django_db


class RefusingSmtp(BaseEmailBackend):
    """A mail server that is down: every send fails as a refused connection would."""

    def send_messages(self, email_messages: Any) -> int:
        raise smtplib.SMTPConnectError(421, "service not available")


def end_as(run: Run, status: RunStatus, counts: dict[str, int]) -> None:
    Run.objects.filter(pk=run.pk).update(status=status, outcome_counts=counts)


def test_the_requester_is_mailed_when_the_run_fails_with_outcomes_and_a_link(
    secret_run: Run, sends_at_once: Any, settings: Any
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    end_as(secret_run, RunStatus.FAILED, {"failure": 2})
    sends_at_once(secret_run.pk, Event.ENDED)

    (sent,) = mail.outbox
    assert sent.to == ["agent@example.com"]
    assert sent.subject.startswith(f"Run {secret_run.pk} failed: ")
    assert "on 2 targets" in sent.subject
    assert "Failed: 2" in sent.body
    assert f"https://portal.example.com/runs/{secret_run.pk}/" in sent.body
    assert "#unlock_ad_account" in sent.body
    assert SECRET_PARAM not in sent.body + sent.subject
    note = RunEvent.objects.get(run=secret_run, kind=RunEventKind.NOTIFIED)
    assert note.message == "E-mail about run.ended to agent." and "@" not in note.message


def test_a_partly_failed_run_says_so_in_the_subject(secret_run: Run, sends_at_once: Any) -> None:
    end_as(secret_run, RunStatus.PARTIAL, {"success": 1, "failure": 1})
    sends_at_once(secret_run.pk, Event.ENDED)
    (sent,) = mail.outbox
    assert f"Run {secret_run.pk} partly failed" in sent.subject
    assert "Succeeded: 1" in sent.body and "Failed: 1" in sent.body


def test_a_rejected_run_tells_the_requester_who_and_why(
    secret_run: Run, sends_at_once: Any, make_user: Any
) -> None:
    boss = make_user("boss", Role.ADMIN)
    sends_at_once(secret_run.pk, Event.REJECTED, approver=boss.pk, comment="Not on a Friday")
    (sent,) = mail.outbox
    assert "rejected" in sent.subject
    assert "boss rejected your run" in sent.body and "Comment: Not on a Friday" in sent.body


def test_approvers_named_by_the_event_are_mailed_unless_they_said_no(
    secret_run: Run, sends_at_once: Any, make_user: Any
) -> None:
    first = make_user("approver1", Role.ADMIN)
    second = make_user("approver2", Role.HELPDESK)
    declined = make_user("approver3", Role.ADMIN)
    no_address = make_user("approver4", Role.ADMIN)
    no_address.email = ""
    no_address.save()
    make_user("bystander", Role.ADMIN)  # may approve in general, but the event does not name them
    NotificationPreference.objects.create(user=declined, approvals_waiting=False)
    ids = [first.pk, second.pk, declined.pk, no_address.pk]

    sends_at_once(secret_run.pk, Event.AWAITING_APPROVAL, approver_ids=ids)

    mailed = sorted(m.to[0] for m in mail.outbox)
    assert mailed == ["approver1@example.com", "approver2@example.com"]
    body = mail.outbox[0].body
    assert "agent (Helpdesk) asks" in body and "Targets: 2" in body
    assert "INC0042 locked out" in body
    assert f"  Reason: {MASK}" in body and SECRET_PARAM not in body
    assert mail.outbox[0].subject.startswith("Approval needed: ")


def test_nobody_is_mailed_twice_when_the_event_or_the_send_is_delivered_again(
    secret_run: Run, sends_at_once: Any
) -> None:
    end_as(secret_run, RunStatus.SUCCEEDED, {"success": 2})
    sends_at_once(secret_run.pk, Event.ENDED)
    sends_at_once(secret_run.pk, Event.ENDED)
    (notice,) = EmailNotice.objects.all()
    tasks.send_email_task(notice.pk)
    assert len(mail.outbox) == 1
    assert RunEvent.objects.filter(run=secret_run, kind=RunEventKind.NOTIFIED).count() == 1


def test_a_requester_who_turned_them_off_gets_no_mail(secret_run: Run, sends_at_once: Any) -> None:
    NotificationPreference.objects.create(user=secret_run.created_by, runs_ended=False)
    end_as(secret_run, RunStatus.FAILED, {"failure": 2})
    sends_at_once(secret_run.pk, Event.ENDED)
    assert mail.outbox == [] and not EmailNotice.objects.exists()


def test_a_mail_server_that_is_down_is_tried_again_then_given_up_without_touching_the_run(
    secret_run: Run, sends_at_once: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "tests.test_emails.RefusingSmtp"
    settings.EMAIL_MAX_ATTEMPTS = 3
    end_as(secret_run, RunStatus.FAILED, {"failure": 2})
    sends_at_once(secret_run.pk, Event.ENDED)  # each retry is sent at once by the fixture

    notice = EmailNotice.objects.get()
    assert (notice.state, notice.attempts) == (EmailState.FAILED, 3)
    assert "SMTPConnectError" in notice.error
    run = Run.objects.get(pk=secret_run.pk)
    assert run.status == RunStatus.FAILED
    assert RunEvent.objects.filter(run=run, message__contains="could not be sent").exists()


# --- the lifecycle publishes run.submitted and run.ended once each -------------------------------


def test_submitted_and_ended_are_published_once_whatever_changes_after(
    secret_run: Run, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    published: list[tuple[int, str, dict[str, Any]]] = []
    monkeypatch.setattr(
        dispatch, "enqueue_notification", lambda *message: published.append(message)
    )
    batch = Batch.objects.get(run=secret_run)
    targets = list(Target.objects.filter(batch=batch).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.claim(batch.pk, "task-1")
        batch.refresh_from_db()
        executions = [(pk, f"exec-{pk}") for pk in targets]
        assert lifecycle.record_submitted(
            batch, "task-1", request_uuid="req-1", executions=executions
        )
    assert published == [(secret_run.pk, "run.submitted", {})]

    def outcomes(outcome: Outcome) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            Target.objects.filter(batch=batch).update(outcome=outcome)
            lifecycle.recount(batch.pk)
            lifecycle.refresh_run_status(secret_run.pk)

    outcomes(Outcome.FAILURE)
    assert published[1:] == [
        (secret_run.pk, "run.ended", {"status": "failed", "outcome_counts": {"failure": 2}})
    ]
    outcomes(Outcome.PENDING)  # open again (a late answer), then final with another status
    outcomes(Outcome.SUCCESS)
    assert Run.objects.get(pk=secret_run.pk).status == RunStatus.SUCCEEDED
    assert len(published) == 2


# --- the choices page -----------------------------------------------------------------------------


def test_people_turn_their_mails_off_and_on_and_it_is_audited(
    client_for: Any, employee: Any
) -> None:
    client = client_for(employee)
    page = client.get("/account/notifications/")
    assert page.status_code == 200 and b"employee@example.com" in page.content
    assert client.post("/account/notifications/", {"approvals_waiting": "on"}).status_code == 302
    choice = NotificationPreference.objects.get(user=employee)
    assert (choice.runs_ended, choice.approvals_waiting) == (False, True)
    (entry,) = AuditEvent.objects.filter(action=AuditAction.NOTIFICATIONS_CHANGED)
    assert entry.actor_id == employee.pk and "runs_ended off" in entry.summary
    client.post("/account/notifications/", {"approvals_waiting": "on"})  # nothing changed
    assert AuditEvent.objects.filter(action=AuditAction.NOTIFICATIONS_CHANGED).count() == 1


def test_only_approvers_are_offered_mails_about_approvals(
    client_for: Any, employee: Any, helpdesk: Any
) -> None:
    assert b"approvals_waiting" not in client_for(employee).get("/account/notifications/").content
    assert b"approvals_waiting" in client_for(helpdesk).get("/account/notifications/").content


def test_the_choices_page_refuses_strangers_and_other_methods(
    client: Any, client_for: Any, make_user: Any
) -> None:
    assert client.get("/account/notifications/").status_code == 302  # to sign in
    nobody = client_for(make_user("nobody", None))
    assert nobody.get("/account/notifications/").status_code == 403
    someone = make_user("someone", Role.EMPLOYEE)
    someone.email = ""
    someone.save()
    someone = client_for(someone)
    assert someone.put("/account/notifications/").status_code == 405
    page = someone.get("/account/notifications/")
    assert b'data-testid="no-email"' in page.content
