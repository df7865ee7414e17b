"""The helpdesk channel of help requests: an employee's "Get help", e-mailed to the helpdesk.

A help request (services/help_requests.py) is published as `run.help_requested` with everything
a helpdesk needs in its details. The webhook channel (services/webhooks.py) posts those details
to the webhooks subscribed to the event; this channel queues one e-mail to HELPDESK_EMAIL with
the same content in words. The mail goes out in a task of its own, tried again a few times while
the mail server is unavailable; an address the server refuses is recorded, never retried.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from workflows_app.models import HelpRequest
from workflows_app.selectors.webhooks import webhooks_wanting
from workflows_app.services import dispatch
from workflows_app.targets import TargetKind

logger = logging.getLogger(__name__)

# notifications.Event.HELP_REQUESTED: that module imports this one, so the value is named here.
HELP_REQUESTED = "run.help_requested"
EMAIL = "email"
WEBHOOK = "webhook"
MAIL_RETRIES = 4  # after 30 s, 1, 2 and 4 minutes (tasks.help_email_task)
MAIL_TIMEOUT_SECONDS = 10.0
MAX_ERROR = 1000


class MailUnavailable(Exception):
    """The mail server could not take the helpdesk's mail now; trying again later may work."""


def configured_channels() -> list[str]:
    """How a help request reaches the helpdesk here: "email" and/or "webhook" (none: empty)."""
    channels = []
    if settings.HELPDESK_EMAIL:
        channels.append(EMAIL)
    if webhooks_wanting(HELP_REQUESTED):
        channels.append(WEBHOOK)
    return channels


def channel_configured() -> bool:
    """Whether a help request can reach the helpdesk at all (else employees get the contact)."""
    return bool(configured_channels())


def contact_text() -> str:
    """How employees reach IT when the portal cannot send their request (the setting)."""
    return str(settings.HELPDESK_CONTACT_TEXT or "")


def on_run_event(run_id: int, event: str, details: Mapping[str, Any]) -> None:
    """The notification channel: queue the helpdesk's e-mail of a help request (only that)."""
    if event != HELP_REQUESTED or not settings.HELPDESK_EMAIL:
        return
    found = HelpRequest.objects.filter(run_id=run_id).values_list("pk", flat=True).first()
    if found is None:  # the run was removed meanwhile: nothing left to tell
        logger.warning("Help request of run %s not found; no e-mail sent", run_id)
        return
    dispatch.enqueue_help_email(found)


def send_helpdesk_email(help_request_id: int) -> str:
    """E-mail the helpdesk one help request, once; what happened, in a word.

    Raises MailUnavailable when the mail server could not take it now (the task retries);
    a refusal that will not change (a 5xx answer, refused recipients) is recorded, not raised.
    """
    to = settings.HELPDESK_EMAIL
    if not to:
        return "not configured"
    with transaction.atomic():
        # One sender at a time: a redelivered message finds the row locked, or the mail sent.
        # The lock is held while the mail server answers (each step times out).
        rows = HelpRequest.objects.select_for_update(skip_locked=True).filter(pk=help_request_id)
        help_request = rows.first()
        if help_request is None:
            return "skipped"  # removed with its run, or being sent by another worker
        if help_request.email_sent_at is not None:
            return "already sent"
        failure = _send(helpdesk_mail(help_request.details, to=to))
        help_request.email_attempts += 1
        help_request.email_error = (
            f"{type(failure).__name__}: {failure}"[:MAX_ERROR] if failure else ""
        )
        help_request.email_sent_at = None if failure else timezone.now()
        help_request.save(update_fields=["email_attempts", "email_error", "email_sent_at"])
    if failure is None:
        return "sent"
    if _temporary(failure):
        raise MailUnavailable(str(failure)) from failure
    logger.error("The helpdesk e-mail of %s was refused: %s", help_request.reference, failure)
    return "refused"


def _send(message: EmailMessage) -> Exception | None:
    """Hand the mail to the mail server; the error when it did not take it."""
    try:
        with get_connection(timeout=MAIL_TIMEOUT_SECONDS) as connection:
            connection.send_messages([message])
    except (smtplib.SMTPException, OSError) as exc:
        return exc
    return None


def _temporary(exc: Exception) -> bool:
    """Whether a mail error may go away by itself: connections and 4xx answers, not 5xx."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return not 500 <= exc.smtp_code < 600
    return True


def helpdesk_mail(details: Mapping[str, Any], *, to: str) -> EmailMessage:
    """The helpdesk's e-mail of a help request's details; replies go to the employee."""
    employee = details.get("employee", {})
    run = details.get("run", {})
    subject = _one_line(
        f"[{details.get('reference', '')}] {employee.get('name', '')} needs help: "
        f"{run.get('workflow', '')} ({run.get('status_label', '')})"
    )
    reply_to = []
    address = str(employee.get("email") or "")
    try:
        validate_email(address)
        reply_to.append(address)
    except ValidationError:  # no usable address: the mail still names the employee
        pass
    return EmailMessage(
        subject=subject,
        body=mail_text(details),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=reply_to,
    )


def mail_text(details: Mapping[str, Any]) -> str:
    """The help request in plain words: who, what, where, how it ended, and the link."""
    employee = details.get("employee", {})
    run = details.get("run", {})
    lines = [
        f"{details.get('reference', '')}: an employee asks the helpdesk for help with a "
        "self-service fix.",
        "",
        f"Employee: {employee.get('name', '')} (username {employee.get('username', '')}, "
        f"e-mail {employee.get('email') or 'none'})",
        f"Asked at: {_when(details.get('requested_at'))}",
        "Their message:",
        _quoted(str(details.get("message") or "")) or "    (no message)",
        "",
        f"Fix: {run.get('workflow', '')} (Nexthink {run.get('workflow_name', '')}, "
        f"{run.get('workflow_nql_id', '')})",
        f"Status: {run.get('status_label', '')}",
        f"Started: {_when(run.get('created_at'))}; finished: {_when(run.get('finished_at'))}",
        f"Device(s): {', '.join(details.get('devices', [])) or 'none'}",
    ]
    if run.get("reason"):  # a fix's reads "Self-service on <device name>"
        lines.append(f"Reason: {run['reason']}")
    parameters = run.get("parameters") or {}
    if parameters:
        lines.append("Parameters: " + ", ".join(f"{k} = {v}" for k, v in parameters.items()))
    lines += ["", "What Nexthink said about each target:"]
    for target in details.get("targets", []):
        lines.append(
            f"- {_kind(target.get('kind', ''))} {target.get('value', '')}: "
            f"{target.get('outcome_label', '')}"
        )
        if target.get("status") or target.get("status_details"):
            lines.append(
                f"  Nexthink status: {target.get('status') or '—'}"
                + (f", {target['status_details']}" if target.get("status_details") else "")
            )
        if target.get("outcome_details"):
            lines.append(f"  Outcome details: {target['outcome_details']}")
        if target.get("execution_id"):
            lines.append(f"  Execution: {target['execution_id']}")
    shown, total = len(details.get("targets", [])), details.get("targets_total", 0)
    if total > shown:
        lines.append(f"… and {total - shown} more on the run's page.")
    lines += ["", f"The run in the portal: {run.get('url', '')}", ""]
    return "\n".join(lines)


def _when(iso: object) -> str:
    """An ISO time of the details as people read it, in UTC; "—" when there is none."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _kind(kind: str) -> str:
    try:
        return "User" if TargetKind(kind).is_user else "Device"
    except ValueError:
        return "Target"


def _quoted(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _one_line(text: str) -> str:
    """A header value: no line breaks (Django refuses them), blanks collapsed."""
    return " ".join(text.split())[:200]
