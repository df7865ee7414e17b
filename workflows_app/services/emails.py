"""The e-mail channel: who is mailed about a run's event, one mail per person, sent by a task.

The requester hears when their run ends (with its outcomes), is rejected or expires; the
approvers named by the event (`approver_ids`) when a run waits for them. Each mail is written
as an EmailNotice row (unique per run, event and person) before a task sends it, so an event
delivered twice mails nobody twice; the send task claims the row, so a send delivered twice
does not either. A failing mail server is tried again a few times, and never touches the run.
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
    NotificationPreference,
    Outcome,
    Run,
    RunEventKind,
    RunStatus,
)
from workflows_app.selectors.approvals import approval_of_run
from workflows_app.services import dispatch, timeline
from workflows_app.services.run_events import Event

logger = logging.getLogger(__name__)

# The requester's own run: each event under their "my runs ended" choice.
REQUESTER_EVENTS = frozenset({Event.ENDED, Event.REJECTED, Event.EXPIRED})
# How each ending reads in a subject: a failure must be obvious before the mail is opened.
ENDINGS = {
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.SENT: "was sent",
    RunStatus.PARTIAL: "partly failed",
    RunStatus.FAILED: "failed",
    RunStatus.UNKNOWN: "ended, outcome unknown",
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
        people = _wanting([run.created_by], "runs_ended")
    elif event == Event.AWAITING_APPROVAL:
        ids = [int(i) for i in details.get("approver_ids") or []]
        approvers = get_user_model().objects.filter(pk__in=ids, is_active=True).order_by("pk")
        people = _wanting(approvers, "approvals_waiting")
    else:
        return
    if people:
        queue(run, event, people, compose(run, event, details))


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


def queue(run: Run, event: Event, people: list[User], mail: Mail) -> list[EmailNotice]:
    """Write one notice per person not yet mailed about this event; send each after commit."""
    created: list[EmailNotice] = []
    with transaction.atomic():
        for person in people:
            notice, made = EmailNotice.objects.get_or_create(
                run=run,
                event=event.value,
                recipient=person,
                defaults={"address": person.email, "subject": mail.subject, "body": mail.body},
            )
            if made:
                created.append(notice)
        if created:
            names = [n.recipient.get_username() for n in created]
            timeline.note(
                run.pk,
                RunEventKind.NOTIFIED,
                f"E-mail about {event.value} to {', '.join(names)}.",
                details={"event": event.value, "channel": "email", "recipients": names},
            )
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
        "comment": str(details.get("comment") or ""),
        "approver": _person_named(details.get("approver")),
        "preferences_url": links.absolute(reverse("account:notifications")),
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
    subject = " ".join(subject.split())[:MAX_SUBJECT]  # one line: a header holds no newline
    body = render_to_string(template, {**context, "subject": subject, "event": event.value})
    return Mail(subject=subject, body=body)


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
    logger.info(
        "E-mail %s about %s of run %s sent to %s", notice.pk, notice.event, notice.run_id, who
    )
    return None


def _failed(notice: EmailNotice, who: str, error: str) -> None:
    """Give up on a mail; the run's timeline says so (the run itself is untouched)."""
    logger.warning(
        "E-mail %s to %s given up after %s attempt(s): %s", notice.pk, who, notice.attempts, error
    )
    with transaction.atomic():
        EmailNotice.objects.filter(pk=notice.pk).update(state=EmailState.FAILED, error=error[:1000])
        timeline.note(
            notice.run_id,
            RunEventKind.NOTIFIED,
            f"E-mail about {notice.event} to {who} could not be sent: {error}",
            details={"event": notice.event, "channel": "email", "failed": who},
        )
