"""Outgoing webhooks: run events POSTed to a real receiver on loopback, signed, retried, logged;
registered from the console (admins only) or the command line; the secret shown nowhere."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.notify_support import SECRET_PARAM, Receiver, verify
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    DeliveryState,
    Run,
    RunStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from workflows_app.roles import Role
from workflows_app.services import dispatch, webhooks
from workflows_app.services.notifications import Event
from workflows_app.services.params import MASK
from workflows_app.services.webhook_admin import create_webhook

pytestmark = pytest.mark.django_db

SECRET = "whsec-" + "k3y" * 8


def hook_for(receiver: Receiver, **fields: Any) -> Webhook:
    return create_webhook(url=receiver.url, secret=SECRET, actor=None, **fields)


def test_a_run_event_reaches_the_receiver_signed_with_the_run_and_the_details(
    receiver: Receiver, secret_run: Run, sends_at_once: Any, settings: Any
) -> None:
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    hook_for(receiver)
    Run.objects.filter(pk=secret_run.pk).update(
        status=RunStatus.PARTIAL, outcome_counts={"success": 1, "failure": 1}
    )
    sends_at_once(secret_run.pk, Event.HELP_REQUESTED, help_request_id=7, message="Still broken")

    (got,) = receiver.wait_for(1)
    assert verify(SECRET, got.headers, got.body)
    assert not verify("another-secret-of-16", got.headers, got.body)
    stamp = int(got.headers["X-Portal-Signature"].split(",")[0].removeprefix("t="))
    assert abs(time.time() - stamp) < 60
    body = json.loads(got.body)
    assert got.headers["X-Portal-Event"] == body["event"] == "run.help_requested"
    assert got.headers["X-Portal-Delivery"] == body["id"]
    assert got.headers["Content-Type"] == "application/json"
    assert body["details"] == {"help_request_id": 7, "message": "Still broken"}
    run = body["run"]
    assert run["id"] == secret_run.pk and run["url"].endswith(f"/runs/{secret_run.pk}/")
    assert run["workflow"]["nql_id"] == "#unlock_ad_account"
    assert (run["requester"], run["role"], run["source"]) == ("agent", "Helpdesk", "helpdesk")
    assert (run["status"], run["target_count"]) == ("partial", 2)
    assert run["outcome_counts"] == {"success": 1, "failure": 1}
    assert run["params"] == {"Reason": MASK} and run["reason"] == "INC0042 locked out"
    assert SECRET_PARAM.encode() not in got.body and SECRET.encode() not in got.body
    assert WebhookDelivery.objects.get().state == DeliveryState.DELIVERED


def test_a_failing_receiver_is_tried_again_and_the_log_shows_both_answers(
    receiver: Receiver,
    secret_run: Run,
    sends_at_once: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    client_for: Any,
    admin_user: Any,
) -> None:
    settings.WEBHOOK_RETRY_SECONDS = 0  # the retry is due at once; the fixture sends it at once
    receiver.statuses = [500]
    hook = hook_for(receiver, events=["run.ended"])
    with caplog.at_level(logging.DEBUG):
        sends_at_once(secret_run.pk, Event.ENDED)

    first, second = receiver.wait_for(2)
    assert first.body == second.body  # the same delivery: same id, same bytes, signed again
    assert verify(SECRET, second.headers, second.body)
    attempts = WebhookAttempt.objects.order_by("number")
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]
    assert "receiver broke" in attempts[0].response_excerpt and "500" in attempts[0].error
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 2)
    assert "attempt 1 failed" in caplog.text and SECRET not in caplog.text

    client = client_for(admin_user)
    log = client.get(f"/console/webhooks/{hook.pk}/").content.decode()
    assert "receiver broke" in log and ">500<" in log and ">200<" in log
    for page in (
        log,
        *(client.get(u).content.decode() for u in ("/console/webhooks/", "/console/audit/")),
    ):
        assert SECRET not in page and receiver.url in page


def test_each_webhook_gets_the_events_it_chose_once_and_nothing_when_disabled(
    receiver: Receiver, secret_run: Run, sends_at_once: Any
) -> None:
    hook_for(receiver, events=["run.submitted"])
    off = hook_for(receiver, events=[])
    off.enabled = False
    off.save()
    sends_at_once(secret_run.pk, Event.SUBMITTED)
    sends_at_once(secret_run.pk, Event.SUBMITTED)  # the same message delivered again
    sends_at_once(secret_run.pk, Event.ENDED)
    assert [json.loads(r.body)["event"] for r in receiver.received] == ["run.submitted"]


def test_a_refusing_receiver_is_not_tried_again(
    receiver: Receiver, secret_run: Run, sends_at_once: Any
) -> None:
    receiver.statuses = [410]
    hook_for(receiver)
    sends_at_once(secret_run.pk, Event.ENDED)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 1)
    assert len(receiver.received) == 1


def test_a_delivery_whose_worker_died_mid_call_is_claimed_again_once_the_call_must_be_over(
    receiver: Receiver, secret_run: Run, sends_at_once: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(dispatch, "enqueue_webhook_delivery", lambda d, **_: queued.append(d))
    hook_for(receiver)
    sends_at_once(secret_run.pk, Event.ENDED)
    (delivery,) = WebhookDelivery.objects.filter(pk__in=queued)
    claimed_at = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        state=DeliveryState.SENDING, attempts=1, claimed_at=claimed_at
    )
    WebhookAttempt.objects.create(delivery=delivery, number=1)  # its worker died in the POST

    wait = webhooks.attempt(delivery.pk)  # the message, redelivered at once: not yet
    assert wait is not None and 10 < wait <= 21 and receiver.received == []
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        claimed_at=claimed_at - timedelta(seconds=wait)
    )
    assert webhooks.attempt(delivery.pk) is None
    assert len(receiver.wait_for(1)) == 1
    rows = list(WebhookAttempt.objects.order_by("number").values_list("number", "status_code"))
    assert rows == [(1, None), (2, 200)]
    assert "worker stopped" in WebhookAttempt.objects.get(number=1).error
    assert webhooks.attempt(delivery.pk) is None and len(receiver.received) == 1


# --- the command line -------------------------------------------------------------------------


def test_add_webhook_reads_the_secret_from_a_file_and_stores_it_encrypted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: Any
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    call_command(
        "add_webhook",
        "https://tickets.example.com/hooks/portal",
        "--secret-file",
        str(secret_file),
        "--events",
        "run.ended,run.help_requested",
        "--description",
        "ServiceNow",
    )
    hook = Webhook.objects.get()
    assert hook.events == ["run.ended", "run.help_requested"] and hook.description == "ServiceNow"
    assert SECRET not in hook.secret
    entry = AuditEvent.objects.get(action=AuditAction.WEBHOOK_ADDED)
    assert SECRET not in json.dumps(entry.details) + entry.summary
    assert f"Webhook {hook.pk} added" in capsys.readouterr().out

    with pytest.raises(CommandError, match="Unknown event"):
        call_command(
            "add_webhook",
            "https://x.example.com/",
            "--secret-file",
            str(secret_file),
            "--events",
            "run.exploded",
        )
    settings.WEBHOOKS_ALLOW_HTTP = False
    with pytest.raises(CommandError, match="https"):
        call_command("add_webhook", "http://x.example.com/", "--secret-file", str(secret_file))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("add_webhook", "https://x.example.com/", "--secret-file", str(tmp_path / "no"))
    assert Webhook.objects.count() == 1


# --- the console ------------------------------------------------------------------------------


def test_an_admin_adds_changes_tests_disables_and_removes_a_webhook(
    receiver: Receiver,
    client_for: Any,
    admin_user: Any,
    sends_at_once: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = client_for(admin_user)
    added = client.post(
        "/console/webhooks/",
        {"url": receiver.url, "secret": SECRET, "description": "Tickets", "events": ["run.ended"]},
    )
    hook = Webhook.objects.get()
    assert added.status_code == 302 and added["Location"] == f"/console/webhooks/{hook.pk}/"
    page = client.get(added["Location"]).content.decode()
    assert "not shown again" in page and SECRET not in page

    changed = client.post(
        f"/console/webhooks/{hook.pk}/", {"url": receiver.url, "secret": "", "description": "T2"}
    )
    assert changed.status_code == 302
    hook.refresh_from_db()
    assert (hook.description, hook.events) == ("T2", [])  # no event ticked: every event
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/console/webhooks/{hook.pk}/test/").status_code == 302
    (got,) = receiver.wait_for(1)
    assert json.loads(got.body)["event"] == "webhook.test"
    assert verify(SECRET, got.headers, got.body)  # an edit with no secret kept the old one

    client.post(f"/console/webhooks/{hook.pk}/toggle/")
    hook.refresh_from_db()
    assert not hook.enabled
    assert client.post(f"/console/webhooks/{hook.pk}/remove/").status_code == 302
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        AuditAction.WEBHOOK_ADDED,
        AuditAction.WEBHOOK_CHANGED,
        AuditAction.WEBHOOK_REMOVED,
    } <= actions


def test_bad_webhooks_are_refused_with_the_reason(
    client_for: Any, admin_user: Any, settings: Any
) -> None:
    client = client_for(admin_user)
    for url, reason in [
        ("ftp://files.example.com/", "must start with https"),
        ("https://user:pw@tickets.example.com/", "no user name or password"),
        ("https://tickets.example.com:99999/", "not a valid URL"),
    ]:
        refused = client.post("/console/webhooks/", {"url": url, "secret": SECRET})
        assert refused.status_code == 400 and reason in refused.content.decode()
    short = client.post("/console/webhooks/", {"url": "https://t.example.com/", "secret": "short"})
    assert short.status_code == 400 and "at least 16" in short.content.decode()
    settings.WEBHOOKS_ALLOW_HTTP = False
    plain = client.post("/console/webhooks/", {"url": "http://t.example.com/", "secret": SECRET})
    assert plain.status_code == 400 and "WEBHOOKS_ALLOW_HTTP" in plain.content.decode()
    assert not Webhook.objects.exists()


def test_with_plain_http_allowed_the_form_does_not_say_https_only(
    client_for: Any, admin_user: Any, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_HTTP = True
    client = client_for(admin_user)
    assert "http:// too" in client.get("/console/webhooks/").content.decode()
    refused = client.post("/console/webhooks/", {"url": "ftp://f.example.com/", "secret": SECRET})
    assert "must start with https:// or http://." in refused.content.decode()


def test_only_admins_reach_the_webhook_pages(
    client: Any, client_for: Any, make_user: Any, admin_user: Any
) -> None:
    hook = create_webhook(url="https://t.example.com/", secret=SECRET, actor=None)
    pages = ["/console/webhooks/", f"/console/webhooks/{hook.pk}/"]
    actions = [f"/console/webhooks/{hook.pk}/{a}/" for a in ("toggle", "remove", "test")]
    assert client.get(pages[0]).status_code == 302  # to sign in
    for role in (Role.EMPLOYEE, Role.HELPDESK):
        other = client_for(make_user(f"{role.value.lower()}-x", role))
        assert {other.get(url).status_code for url in pages} == {403}
        assert {other.post(url).status_code for url in [*pages, *actions]} == {403}
    admin = client_for(admin_user)
    assert {admin.get(url).status_code for url in actions} == {405}
    assert admin.get("/console/webhooks/999999/").status_code == 404
    assert admin.post("/console/webhooks/999999/test/").status_code == 404
    hook.refresh_from_db()
    assert hook.enabled and not WebhookDelivery.objects.exists()
