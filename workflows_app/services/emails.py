"""The e-mail channel: who is mailed about a run's or flow run's event, one mail per person,
sent by a task.

The requester hears when their run or flow run ends (with its outcomes), is rejected or expires;
the approvers named by the event (`approver_ids`) when one waits for them. A run that is a flow's
step mails nobody when it ends: its flow run's end tells the requester about every step at once.
Each mail is written as an EmailNotice row (unique per run or flow run, event and person) before
a task sends it, so an event delivered twice mails nobody twice; the send task claims the row, so
a send delivered twice does not either. A failing mail server is tried again a few times, and
never touches the run.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.mail import BadHeaderError, EmailMessage
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from workflows_app import links
from workflows_app.models import (
    EmailNotice,
    EmailState,
    FlowRun,
    FlowRunStatus,
    FlowStepRun,
    NotificationPreference,
    Outcome,
    Run,
    RunEventKind,
    RunStatus,
)
from workflows_app.selectors.approvals import approval_of_flow_run, approval_of_run
from workflows_app.selectors.flows import step_summaries
from workflows_app.services import dispatch, timeline
from workflows_app.services.run_events import Event, FlowEvent

logger = logging.getLogger(__name__)

# The requester's own run: each event under their "my runs ended" choice.
REQUESTER_EVENTS = frozenset({Event.ENDED, Event.REJECTED, Event.EXPIRED})
REQUESTER_FLOW_EVENTS = frozenset({FlowEvent.ENDED, FlowEvent.REJECTED, FlowEvent.EXPIRED})
# How each ending reads in a subject: a failure must be obvious before the mail is opened.
ENDINGS = {
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.SENT: "was sent",
    RunStatus.PARTIAL: "partly failed",
    RunStatus.FAILED: "failed",
    RunStatus.UNKNOWN: "ended, outcome unknown",
}
FLOW_ENDINGS = {
    FlowRunStatus.SUCCEEDED: "succeeded",
    FlowRunStatus.PARTIAL: "partly failed",
    FlowRunStatus.FAILED: "failed",
    FlowRunStatus.STOPPED: "stopped",
}
# Refusals a second try cannot change: the server will not take this address or sender, or
# the address is not one a header can hold.
PERMANENT = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, BadHeaderError)
MAX_SUBJECT = EmailNotice._meta.get_field("subject").max_length or 255


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


def on_run_event(run_id: int, event: Event, details: Mapping[str, Any]) -> None:
    """Decide who is mailed about this event and queue one mail to each (a channel)."""
    run = Run.objects.select_related("created_by").filter(pk=run_id).first()
    if run is None:
        return
    if event in REQUESTER_EVENTS:
        if FlowStepRun.objects.filter(run_id=run_id).exists():
            return  # a flow's step: the flow run's end tells of every step in one mail
        people = _wanting([run.created_by], "runs_ended")
    elif event == Event.AWAITING_APPROVAL:
        people = _wanting(_approvers_named(details), "approvals_waiting")
    else:
        return
    if people:
        queue(event, people, compose(run, event, details), run=run)


def on_flow_run_event(flow_run_id: int, event: FlowEvent, details: Mapping[str, Any]) -> None:
    """Decide who is mailed about a flow run's event and queue one mail to each (a channel)."""
    flow_run = (
        FlowRun.objects.select_related("created_by", "flow_version").filter(pk=flow_run_id).first()
    )
    if flow_run is None:
        return
    if event in REQUESTER_FLOW_EVENTS:
        people = _wanting([flow_run.created_by], "runs_ended")
    elif event == FlowEvent.AWAITING_APPROVAL:
        people = _wanting(_approvers_named(details), "approvals_waiting")
    else:
        return
    if people:
        queue(event, people, compose_flow_run(flow_run, event, details), flow_run=flow_run)


def _approvers_named(details: Mapping[str, Any]) -> list[User]:
    """The active people an awaiting-approval event names (`approver_ids`)."""
    ids = [int(i) for i in details.get("approver_ids") or []]
    return list(get_user_model().objects.filter(pk__in=ids, is_active=True).order_by("pk"))


def _wanting(people: Iterable[User], choice: str) -> list[User]:
    """Those of `people` with an address who did not turn this kind of mail off."""
    people = list(people)
    off = set(
        NotificationPreference.objects.filter(
            user_id__in=[p.pk for p in people], **{choice: False}
        ).values_list("user_id", flat=True)
    )
    wanting = []
    for person in people:
        if person.pk in off:
            continue
        if not person.email:
            logger.debug("No e-mail address for user %s: not mailed", person.get_username())
            continue
        wanting.append(person)
    return wanting


def queue(
    event: Event | FlowEvent,
    people: list[User],
    mail: Mail,
    *,
    run: Run | None = None,
    flow_run: FlowRun | None = None,
) -> list[EmailNotice]:
    """Write one notice per person not yet mailed about this event of the run (or flow run);
    send each after commit."""
    created: list[EmailNotice] = []
    with transaction.atomic():
        for person in people:
            notice, made = EmailNotice.objects.get_or_create(
                run=run,
                flow_run=flow_run,
                event=event.value,
                recipient=person,
                defaults={"address": person.email, "subject": mail.subject, "body": mail.body},
            )
            if made:
                created.append(notice)
        if created:
            names = [n.recipient.get_username() for n in created]
            said = f"E-mail about {event.value} to {', '.join(names)}."
            if run is not None:
                timeline.note(
                    run.pk,
                    RunEventKind.NOTIFIED,
                    said,
                    details={"event": event.value, "channel": "email", "recipients": names},
                )
            elif flow_run is not None:  # a flow run has no timeline of its own
                logger.info("Flow run %s: %s", flow_run.pk, said)
            for notice in created:
                dispatch.enqueue_email_on_commit(notice.pk)
    return created


def _approval_url(run: Run) -> str:
    """The decision page of the run's approval (the run's page if it has none)."""
    approval = approval_of_run(run)
    return links.approval_url(approval.pk) if approval is not None else links.run_url(run.pk)


def compose(run: Run, event: Event, details: Mapping[str, Any]) -> Mail:
    """The subject and plain-text body of the mail about this event (no secret: masked params)."""
    what = (
        f"{run.workflow_name} on {run.target_count:,} target{'s' if run.target_count != 1 else ''}"
    )
    context = {
        "run": run,
        "what": what,
        "run_url": links.run_url(run.pk),
        "approval_url": _approval_url(run),
        "outcomes": [
            (_outcome_label(k), n) for k, n in sorted((run.outcome_counts or {}).items()) if n
        ],
        "params": sorted((run.params or {}).items()),
        **_decision_context(details),
    }
    if event == Event.AWAITING_APPROVAL:
        subject = f"Approval needed: {what} for {run.created_by.get_username()} (run {run.pk})"
        template = "emails/awaiting_approval.txt"
    elif event == Event.REJECTED:
        subject = f"Run {run.pk} rejected: {what}"
        template = "emails/run_refused.txt"
    elif event == Event.EXPIRED:
        subject = f"Run {run.pk} not approved in time: {what}"
        template = "emails/run_refused.txt"
    else:
        ending = ENDINGS.get(RunStatus(run.status), "ended")
        subject = f"Run {run.pk} {ending}: {what}"
        template = "emails/run_ended.txt"
    return _mail(subject, template, context, event)


def _decision_context(details: Mapping[str, Any]) -> dict[str, str]:
    """What every mail may say of a decision (who, their comment) and where choices are made."""
    return {
        "comment": str(details.get("comment") or ""),
        "approver": _person_named(details.get("approver")),
        "preferences_url": links.absolute(reverse("account:notifications")),
    }


def _mail(
    subject: str, template: str, context: Mapping[str, Any], event: Event | FlowEvent
) -> Mail:
    subject = " ".join(subject.split())[:MAX_SUBJECT]  # one line: a header holds no newline
    body = render_to_string(template, {**context, "subject": subject, "event": event.value})
    return Mail(subject=subject, body=body)


def compose_flow_run(flow_run: FlowRun, event: FlowEvent, details: Mapping[str, Any]) -> Mail:
    """The mail about a flow run's event: its steps and their status, no parameter value."""
    name = flow_run.flow_version.name
    count = flow_run.target_count
    what = f"'{name}' on {count:,} target{'s' if count != 1 else ''}"
    approval = approval_of_flow_run(flow_run)
    flow_run_url = links.flow_run_url(flow_run.pk)
    context = {
        "flow_run": flow_run,
        "name": name,
        "what": what,
        "flow_run_url": flow_run_url,
        "approval_url": links.approval_url(approval.pk) if approval else flow_run_url,
        "why": approval.why if approval else "",
        "steps": [
            (s, links.run_url(s.run_id) if s.run_id is not None else "")
            for s in step_summaries(flow_run)
        ],
        **_decision_context(details),
    }
    pk, requester = flow_run.pk, flow_run.created_by.get_username()
    before_start = {
        FlowEvent.AWAITING_APPROVAL: (
            f"Approval needed: flow {what} for {requester} (flow run {pk})",
            "emails/flow_run_awaiting_approval.txt",
        ),
        FlowEvent.REJECTED: (f"Flow run {pk} rejected: {what}", "emails/flow_run_refused.txt"),
        FlowEvent.EXPIRED: (
            f"Flow run {pk} not approved in time: {what}",
            "emails/flow_run_refused.txt",
        ),
    }
    if event in before_start:
        subject, template = before_start[event]
        return _mail(subject, template, context, event)
    status = FlowRunStatus(details.get("status") or flow_run.status)
    context["status_label"] = status.label
    subject = f"Flow run {pk} {FLOW_ENDINGS.get(status, 'ended')}: {what}"
    return _mail(subject, "emails/flow_run_ended.txt", context, event)


def _person_named(value: object) -> str:
    """A person as an event names them: a username, or a user id looked up ("" for none)."""
    if isinstance(value, int) and not isinstance(value, bool):
        user = get_user_model().objects.filter(pk=value).first()
        return user.get_username() if user is not None else ""
    return str(value or "")


def _outcome_label(key: str) -> str:
    return str(Outcome(key).label) if key in Outcome.values else (key or "Not sent yet")


def send(notice_id: int) -> float | None:
    """Send one queued mail; the seconds to wait before trying again, or None when done."""
    claimed = EmailNotice.objects.filter(pk=notice_id, state=EmailState.QUEUED).update(
        state=EmailState.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return None  # sent, failed, or being sent by another delivery of this message
    notice = EmailNotice.objects.select_related("recipient").get(pk=notice_id)
    who = notice.recipient.get_username()
    message = EmailMessage(
        notice.subject, notice.body, from_email=settings.DEFAULT_FROM_EMAIL, to=[notice.address]
    )
    try:
        message.send()
    except PERMANENT as exc:
        _failed(notice, who, f"refused by the mail server: {exc}")
        return None
    except (smtplib.SMTPException, OSError) as exc:
        if notice.attempts >= settings.EMAIL_MAX_ATTEMPTS:
            _failed(notice, who, f"{type(exc).__name__}: {exc}")
            return None
        delay = settings.EMAIL_RETRY_SECONDS * 2 ** (notice.attempts - 1)
        logger.warning(
            "E-mail %s to %s not sent (attempt %s), trying again in %.0f s: %s",
            notice.pk,
            who,
            notice.attempts,
            delay,
            exc,
        )
        EmailNotice.objects.filter(pk=notice.pk).update(
            state=EmailState.QUEUED, error=f"{type(exc).__name__}: {exc}"[:1000]
        )
        return delay
    EmailNotice.objects.filter(pk=notice.pk).update(
        state=EmailState.SENT, sent_at=timezone.now(), error=""
    )
    logger.info("E-mail %s about %s of %s sent to %s", notice.pk, notice.event, _of(notice), who)
    return None


def _of(notice: EmailNotice) -> str:
    return f"run {notice.run_id}" if notice.run_id else f"flow run {notice.flow_run_id}"


def _failed(notice: EmailNotice, who: str, error: str) -> None:
    """Give up on a mail; the run's timeline says so (the run itself is untouched)."""
    logger.warning(
        "E-mail %s about %s of %s to %s given up after %s attempt(s): %s",
        notice.pk,
        notice.event,
        _of(notice),
        who,
        notice.attempts,
        error,
    )
    with transaction.atomic():
        EmailNotice.objects.filter(pk=notice.pk).update(state=EmailState.FAILED, error=error[:1000])
        if notice.run_id is None:
            return  # a flow run has no timeline: the log line above and the row say it
        timeline.note(
            notice.run_id,
            RunEventKind.NOTIFIED,
            f"E-mail about {notice.event} to {who} could not be sent: {error}",
            details={"event": notice.event, "channel": "email", "failed": who},
        )
