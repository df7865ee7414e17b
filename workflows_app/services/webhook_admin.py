"""Registering, changing and removing outgoing webhooks: one rule set for the console and the
`add_webhook` command, every change audited, the secret stored encrypted and never shown again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from workflows_app.models import AuditAction, Webhook
from workflows_app.services import audit
from workflows_app.services.run_events import EVENT_NAMES
from workflows_app.services.secrets import encrypt_dict
from workflows_app.services.webhooks import SECRET_KEY_NAME

MAX_URL = Webhook._meta.get_field("url").max_length or 2000
MIN_SECRET, MAX_SECRET = 16, 500


class WebhookRefused(Exception):
    """A webhook that cannot be saved; `message` says what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive webhooks, or None when it can."""
    if len(url) > MAX_URL:
        return f"The URL is longer than {MAX_URL} characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return "This is not a valid URL."
    allowed = ("https", "http") if settings.WEBHOOKS_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        if parts.scheme == "http":
            return "Use an https:// URL (plain http is refused unless WEBHOOKS_ALLOW_HTTP is on)."
        return f"The URL must start with {' or '.join(f'{scheme}://' for scheme in allowed)}."
    if not parts.hostname:
        return "The URL has no host name."
    if parts.username is not None or parts.password is not None:
        return "Put no user name or password in the URL: receivers check the signature instead."
    if any(c.isspace() for c in url):
        return "The URL contains spaces."
    return None


def secret_problem(secret: str) -> str | None:
    """Why `secret` cannot sign deliveries, or None when it can (never quotes the secret)."""
    if len(secret) < MIN_SECRET:
        return f"The secret must have at least {MIN_SECRET} characters."
    if len(secret) > MAX_SECRET:
        return f"The secret must have at most {MAX_SECRET} characters."
    if secret != secret.strip() or "\x00" in secret:
        return "The secret must not begin or end with spaces or hold NUL characters."
    return None


def events_problem(events: Iterable[str]) -> str | None:
    unknown = sorted(set(events) - set(EVENT_NAMES))
    if unknown:
        return f"Unknown event(s): {', '.join(unknown)}. Known: {', '.join(EVENT_NAMES)}."
    return None


def _check(url: str, secret: str | None, events: Sequence[str]) -> None:
    problem = (
        url_problem(url)
        or (secret_problem(secret) if secret is not None else None)
        or events_problem(events)
    )
    if problem:
        raise WebhookRefused(problem)


def _described(hook: Webhook) -> dict[str, object]:
    """What the audit log keeps of a webhook (never its secret)."""
    return {
        "url": hook.url,
        "description": hook.description,
        "events": hook.events or "all",
        "enabled": hook.enabled,
    }


def create_webhook(
    *,
    url: str,
    secret: str,
    events: Sequence[str] = (),
    description: str = "",
    actor: AbstractBaseUser | None,
    ip: str | None = None,
) -> Webhook:
    """Register a webhook (every event when `events` is empty); refuses with WebhookRefused."""
    url = url.strip()
    _check(url, secret, events)
    with transaction.atomic():
        hook = Webhook.objects.create(
            url=url,
            secret=encrypt_dict({SECRET_KEY_NAME: secret}),
            events=sorted(set(events)),
            description=description.strip(),
            created_by_id=actor.pk if actor is not None else None,
        )
        audit.record(
            AuditAction.WEBHOOK_ADDED,
            actor=actor,
            summary=f"Webhook {hook.pk} added: {url}",
            obj=hook,
            details=_described(hook),
            ip=ip,
            actor_name="" if actor is not None else "command line",
        )
    return hook


def update_webhook(
    hook: Webhook,
    *,
    url: str,
    events: Sequence[str],
    description: str,
    secret: str | None,
    actor: AbstractBaseUser,
    ip: str | None = None,
) -> Webhook:
    """Change a webhook; `secret` None keeps the one it has."""
    url = url.strip()
    _check(url, secret, events)
    before = _described(hook)
    hook.url, hook.events, hook.description = url, sorted(set(events)), description.strip()
    if secret is not None:
        hook.secret = encrypt_dict({SECRET_KEY_NAME: secret})
    after = _described(hook)
    changed = sorted(k for k in after if after[k] != before[k])
    if secret is not None:
        changed.append("secret")
    with transaction.atomic():
        hook.save()
        if changed:
            audit.record(
                AuditAction.WEBHOOK_CHANGED,
                actor=actor,
                summary=f"Webhook {hook.pk} changed ({', '.join(changed)}): {url}",
                obj=hook,
                details={"changed": changed, "before": before, "after": after},
                ip=ip,
            )
    return hook


def set_enabled(
    hook: Webhook, *, enabled: bool, actor: AbstractBaseUser, ip: str | None = None
) -> Webhook:
    """Turn a webhook on or off (off: nothing more is sent to it, its log is kept)."""
    with transaction.atomic():
        changed = (
            Webhook.objects.filter(pk=hook.pk).exclude(enabled=enabled).update(enabled=enabled)
        )
        hook.enabled = enabled
        if changed:
            audit.record(
                AuditAction.WEBHOOK_CHANGED,
                actor=actor,
                summary=f"Webhook {hook.pk} {'enabled' if enabled else 'disabled'}: {hook.url}",
                obj=hook,
                details={"changed": ["enabled"], "enabled": enabled},
                ip=ip,
            )
    return hook


def remove_webhook(hook: Webhook, *, actor: AbstractBaseUser, ip: str | None = None) -> None:
    """Remove a webhook with its delivery log."""
    with transaction.atomic():
        audit.record(
            AuditAction.WEBHOOK_REMOVED,
            actor=actor,
            summary=f"Webhook {hook.pk} removed: {hook.url}",
            obj=hook,
            details=_described(hook),
            ip=ip,
        )
        hook.delete()
