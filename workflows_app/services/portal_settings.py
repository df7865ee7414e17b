"""Self-service settings admins edit: the "contact the helpdesk" link offered to employees.

Every change to the admin-editable settings is audited with its values before and after
(`record_settings_change`, also called by the Django admin's settings page).

One rule for it, asked by the admin's form and by the page that shows the link: an http(s) URL
or a mailto: address. Anything else stored (by an older version, or the Django admin) is shown
as plain text, never as a link, so no `javascript:` URL ever reaches an employee's page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction

from workflows_app.models import AuditAction, PortalSettings
from workflows_app.services import audit

HELPDESK_URL_RULE = (
    "Give an http:// or https:// address, or mailto: followed by an email address "
    "(e.g. https://helpdesk.example.com/new or mailto:helpdesk@example.com)."
)
MAX_URL_LENGTH = PortalSettings._meta.get_field("helpdesk_url").max_length or 500
_EMAIL = EmailValidator()
# The settings an admin edits (this page, or Django's admin); none of them is a secret.
AUDITED_SETTINGS = (
    "helpdesk_url",
    "device_query_id",
    "device_query_parameter",
    "device_cache_seconds",
    "max_devices_offered",
    "duplicate_window_minutes",
)
# Blanks, control characters and what would end an HTML attribute: never in a link we render.
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\]")


def helpdesk_url_problem(value: str) -> str | None:
    """Why `value` cannot be the helpdesk link, or None (an empty value means no link)."""
    if not value:
        return None
    if len(value) > MAX_URL_LENGTH:
        return f"At most {MAX_URL_LENGTH} characters."
    if _UNSAFE.search(value):
        return HELPDESK_URL_RULE
    if value[:7].lower() == "mailto:":
        try:
            _EMAIL(value[7:].split("?", 1)[0])
        except ValidationError:
            return HELPDESK_URL_RULE
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return HELPDESK_URL_RULE
    # Any host, intranet names included (http://helpdesk/), but a host there must be.
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return HELPDESK_URL_RULE
    return None


@dataclass(frozen=True)
class HelpdeskContact:
    """The helpdesk contact as an employee's page shows it: a link, or text when not one."""

    value: str
    is_link: bool


def helpdesk_contact() -> HelpdeskContact | None:
    """The contact admins set, or None when they set none."""
    value = PortalSettings.load().helpdesk_url.strip()
    if not value:
        return None
    return HelpdeskContact(value=value, is_link=helpdesk_url_problem(value) is None)


def set_helpdesk_url(
    value: str, *, user: AbstractBaseUser | None = None, ip: str | None = None
) -> None:
    """Store the helpdesk link (callers validate first; the rule is checked again here)."""
    value = value.strip()
    problem = helpdesk_url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    PortalSettings.load()  # the row exists from here on
    with transaction.atomic():
        settings = PortalSettings.objects.select_for_update().get(pk=1)
        before = settings_values(settings)
        settings.helpdesk_url = value
        settings.save(update_fields=["helpdesk_url"])
        record_settings_change(before, settings, user=user, ip=ip)


def settings_values(settings: PortalSettings) -> dict[str, Any]:
    """The admin-editable settings as plain values (to compare before and after a change)."""
    return {name: getattr(settings, name) for name in AUDITED_SETTINGS}


def record_settings_change(
    before: dict[str, Any],
    settings: PortalSettings,
    *,
    user: AbstractBaseUser | AnonymousUser | None,
    ip: str | None = None,
) -> None:
    """Audit what changed in the settings (here, or through Django's admin); nothing if nothing."""
    after = settings_values(settings)
    changed = {
        name: {"before": before.get(name), "after": value}
        for name, value in after.items()
        if before.get(name) != value
    }
    if not changed:
        return
    words = ", ".join(
        f"{name} from {_shown(change['before'])} to {_shown(change['after'])}"
        for name, change in changed.items()
    )
    audit.record(
        AuditAction.SETTINGS_CHANGED,
        actor=user,
        summary=f"Portal settings changed: {words}",
        obj=settings,
        details=changed,
        ip=ip,
    )


def _shown(value: Any) -> str:
    return repr(value) if value not in ("", None) else "(empty)"
