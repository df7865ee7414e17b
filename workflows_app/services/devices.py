"""Finding the signed-in person's own identity and devices, for self-service runs.

The person is identified by their UPN; their devices come from an NQL query an admin saved in
Nexthink (cached briefly per person), and the devices an admin assigned them by hand stand in
when that query finds none or fails. README, "Saved NQL query for self-service device lookup",
tells admins what the query must be; a query that answers without the columns read here is
recorded as a problem the admin console shows (`device_query_problem`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.utils.dateparse import parse_datetime

from workflows_app.models import DeviceAssignment, PersonProfile, PortalSettings
from workflows_app.nexthink.errors import NexthinkError
from workflows_app.nexthink.models import NqlResponse
from workflows_app.nexthink_factory import get_client
from workflows_app.targets import UPN_PATTERN, UUID_PATTERN

logger = logging.getLogger(__name__)

DeviceSource = Literal["nql", "assigned"]
CACHE_PREFIX = "self-service:devices:v1"
NAME_FIELD = "device.name"
UID_FIELD = "device.uid"
COLLECTOR_FIELD = "device.collector.uid"
LAST_SEEN_FIELD = "device.last_seen"
# The columns the saved query must list, matched exactly (case and dots included): without a
# name or a Collector UUID no device can be targeted, and without last_seen the device offered
# first would be arbitrary. UID_FIELD is read when present, never required.
REQUIRED_FIELDS = (NAME_FIELD, COLLECTOR_FIELD, LAST_SEEN_FIELD)
# Where the last problem seen with the saved query is kept for the admin console: the shared
# cache, without expiry; each lookup that asks Nexthink records it again or clears it.
PROBLEM_KEY = "self-service:device-query-problem:v1"
_UPN = re.compile(UPN_PATTERN, re.ASCII)
_UUID = re.compile(UUID_PATTERN, re.ASCII)
_NAME_MAX = 255

# What an employee with no device found can do: the helpdesk (or an admin) assigns one to them on
# the People page, and it is offered from then on.
ASK_FOR_DEVICE = "ask the helpdesk to assign your device to you in the portal (People → your name)."
# Gentle notices, keyed by (what went wrong, whether assigned devices stand in).
NOTICES = {
    ("nql_failed", True): (
        "Nexthink could not be asked for your devices just now, so the portal shows the devices "
        "assigned to you instead."
    ),
    ("nql_failed", False): (
        "Nexthink could not be asked for your devices just now. Try again in a few minutes, or "
        f"{ASK_FOR_DEVICE}"
    ),
    ("no_upn", True): (
        "Your account has no UPN (nor email address), so Nexthink cannot find your devices; "
        "the portal shows the devices assigned to you instead."
    ),
    ("no_upn", False): (
        "Your account has no UPN (nor email address), so Nexthink cannot find your devices. Ask "
        "the helpdesk to add it, or to assign your device to you in the portal "
        "(People → your name)."
    ),
}


def user_upn(user: User | AnonymousUser) -> str | None:
    """The person's UPN as Nexthink knows it, or None when the account has no usable one.

    The UPN kept on their profile (the provider's claim for SSO accounts, an admin's entry for
    local ones); a local account without one falls back on its email address.
    """
    if not user.is_authenticated:
        return None
    stored = PersonProfile.objects.filter(user_id=user.pk).values_list("upn", flat=True).first()
    upn = (stored or getattr(user, "email", "") or "").strip()
    return upn if upn and _UPN.fullmatch(upn) else None


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """One device a person may run a self-service fix on, and where the portal learned of it."""

    name: str
    collector_uid: str
    uid: str
    last_seen: datetime | None
    source: DeviceSource
    # Its UID on the classic platform (an assigned device's), for remote actions; "" if none.
    classic_uid: str = ""

    @property
    def key(self) -> str:
        """What a form posts to pick this device: the Collector UUID when known, else the name."""
        if self.collector_uid:
            return self.collector_uid.lower()
        if self.uid:
            return f"uid:{self.uid.lower()}"
        return f"name:{self.name.casefold()}"

    @property
    def label(self) -> str:
        """How the device is shown to the person."""
        return self.name or self.collector_uid or self.uid


@dataclass(frozen=True)
class DeviceLookup:
    """The person's devices (most recently seen first) and a notice to show, if any."""

    devices: list[DeviceChoice] = field(default_factory=list)
    notice: str | None = None

    @property
    def preselected(self) -> DeviceChoice | None:
        """The device offered first: the most recently seen one."""
        return self.devices[0] if self.devices else None

    def find(self, key: str | None) -> DeviceChoice | None:
        """The device with this form key, or None when the key is not one of this person's."""
        if not key:
            return None
        wanted = key.strip().casefold()
        return next((device for device in self.devices if device.key == wanted), None)


@dataclass(frozen=True)
class DeviceQueryProblem:
    """What the last lookup found wrong with the admin's saved device query."""

    query_id: str
    missing: tuple[str, ...]
    seen_at: datetime

    @property
    def message(self) -> str:
        """What the admin reads in the console: what is wrong and where to look."""
        return (
            f"The device lookup query {self.query_id} answers rows without the columns "
            f"{', '.join(self.missing)}: fix the saved query (see README)."
        )


class MissingColumns(Exception):
    """The saved query answered, but without columns the lookup reads: the query is wrong."""

    def __init__(self, problem: DeviceQueryProblem) -> None:
        self.problem = problem
        super().__init__(problem.message)


def device_query_problem() -> DeviceQueryProblem | None:
    """The problem last seen with the configured device query, or None when there is none.

    A problem recorded for another query id (the setting changed since) is not shown.
    """
    stored = cache.get(PROBLEM_KEY)
    if not isinstance(stored, dict):
        return None
    query_id = PortalSettings.load().device_query_id.strip()
    seen_at = _when(stored.get("seen_at"))
    missing = stored.get("missing")
    if stored.get("query_id") != query_id or seen_at is None or not isinstance(missing, list):
        return None
    return DeviceQueryProblem(query_id, tuple(str(m) for m in missing), seen_at)


NO_CLASSIC_DEVICE = (
    "No device of yours is known on the classic Nexthink platform, so this fix cannot run yet: "
    "ask the helpdesk to assign your device with its classic device UID."
)


def devices_for(user: User) -> DeviceLookup:
    """The person's devices: NQL's answer when it has one, else the devices an admin assigned."""
    settings = PortalSettings.load()
    limit = max(1, settings.max_devices_offered)
    upn = user_upn(user)
    problem: str | None = None
    found: list[DeviceChoice] = []
    if upn is None:
        problem = "no_upn"
    else:
        try:
            found = _nql_devices(user, upn, settings)
        except MissingColumns as exc:
            logger.error("%s", exc)
            _record_problem(exc.problem)
            problem = "nql_failed"
        except (NexthinkError, ValueError) as exc:
            # ValueError covers a query id Nexthink's pattern refuses (pydantic's ValidationError).
            logger.warning("Device lookup for user %s failed: %s", user.pk, exc)
            problem = "nql_failed"
    if found:
        return DeviceLookup(found[:limit])
    assigned = assigned_devices(user)
    notice = NOTICES[(problem, bool(assigned))] if problem else None
    return DeviceLookup(assigned[:limit], notice)


def classic_devices_for(user: User) -> DeviceLookup:
    """The person's devices a remote action can run on: those assigned with a classic UID.

    The classic platform answers no NQL API query, so only an admin's assignment (People page)
    says which classic device is this person's.
    """
    limit = max(1, PortalSettings.load().max_devices_offered)
    devices = [d for d in assigned_devices(user) if d.classic_uid]
    return DeviceLookup(devices[:limit], None if devices else NO_CLASSIC_DEVICE)


def assigned_devices(user: User) -> list[DeviceChoice]:
    """The devices an admin assigned to this person, newest assignment first."""
    rows = DeviceAssignment.objects.filter(user=user).order_by("-created_at", "-id")
    devices = [
        DeviceChoice(
            name=row.device_name,
            collector_uid=_uuid_or_blank(row.collector_uid),
            uid="",
            last_seen=None,
            source="assigned",
            classic_uid=row.classic_uid,
        )
        for row in rows
    ]
    return _unique(devices)


def _nql_devices(user: User, upn: str, settings: PortalSettings) -> list[DeviceChoice]:
    """The devices the admin's NQL query finds for this UPN, cached for a few minutes."""
    query_id = settings.device_query_id.strip()
    parameter = settings.device_query_parameter.strip()
    if not query_id or not parameter:
        return []
    key = _cache_key(user, upn, settings)
    cached = cache.get(key)
    if isinstance(cached, list):
        return [_from_cached(item) for item in cached]
    with get_client() as client:
        response = client.nql_execute(query_id, {parameter: upn})
    missing = _missing_columns(response)
    if missing:
        raise MissingColumns(DeviceQueryProblem(query_id, missing, datetime.now(UTC)))
    if missing is not None:
        cache.delete(PROBLEM_KEY)  # the query answers as it should (again)
    devices = _unique(
        sorted(
            (d for d in (_from_row(row) for row in response.data) if d is not None),
            key=_recent_first,
        )
    )
    if settings.device_cache_seconds:
        cache.set(key, [_to_cached(d) for d in devices], timeout=settings.device_cache_seconds)
    return devices


def _missing_columns(response: NqlResponse) -> tuple[str, ...] | None:
    """The required columns the answer lacks; None when it cannot tell (no headers, no rows)."""
    if response.headers:
        present = set(response.headers)
    elif response.data:
        present = {column for row in response.data for column in row}
    else:
        return None
    return tuple(column for column in REQUIRED_FIELDS if column not in present)


def _record_problem(problem: DeviceQueryProblem) -> None:
    """Keep the problem where the admin console reads it, until a good answer clears it."""
    stored = {
        "query_id": problem.query_id,
        "missing": list(problem.missing),
        "seen_at": problem.seen_at.isoformat(),
    }
    cache.set(PROBLEM_KEY, stored, timeout=None)


def _cache_key(user: User, upn: str, settings: PortalSettings) -> str:
    """A key per person that changes when their UPN or the admin's query changes."""
    asked = f"{settings.device_query_id}\n{settings.device_query_parameter}\n{upn.casefold()}"
    return f"{CACHE_PREFIX}:{user.pk}:{hashlib.sha256(asked.encode()).hexdigest()[:16]}"


def _from_row(row: dict[str, Any]) -> DeviceChoice | None:
    """One NQL row as a device; rows naming no device are skipped."""
    name = _text(row.get(NAME_FIELD))[:_NAME_MAX]
    collector_uid = _uuid_or_blank(_text(row.get(COLLECTOR_FIELD)))
    uid = _uuid_or_blank(_text(row.get(UID_FIELD)))
    if not (name or collector_uid):
        return None
    return DeviceChoice(
        name=name,
        collector_uid=collector_uid,
        uid=uid,
        last_seen=_when(row.get(LAST_SEEN_FIELD)),
        source="nql",
    )


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _uuid_or_blank(value: str) -> str:
    """A UUID as given, or "" when the value is not one (never target a garbled id)."""
    value = value.strip()
    return value.lower() if _UUID.fullmatch(value) else ""


def _when(value: Any) -> datetime | None:
    """NQL's datetime as ISO text or as an object of parts; None when neither."""
    moment: datetime | None = None
    if isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
    elif isinstance(value, dict):
        try:
            moment = datetime(
                int(value["year"]),
                int(value["month"]),
                int(value["day"]),
                int(value.get("hour", 0)),
                int(value.get("minute", 0)),
                int(value.get("second", 0)),
            )
        except (KeyError, TypeError, ValueError):
            moment = None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _recent_first(device: DeviceChoice) -> tuple[bool, float]:
    """Sort key: most recently seen first, devices never seen last."""
    if device.last_seen is None:
        return (True, 0.0)
    return (False, -device.last_seen.timestamp())


def _unique(devices: list[DeviceChoice]) -> list[DeviceChoice]:
    """Drop repeats of the same device (same form key), keeping the first."""
    seen: set[str] = set()
    kept = []
    for device in devices:
        if device.key not in seen:
            seen.add(device.key)
            kept.append(device)
    return kept


def _to_cached(device: DeviceChoice) -> dict[str, str]:
    """A device as plain data, so cached entries survive a deploy that changes the class."""
    return {
        "name": device.name,
        "collector_uid": device.collector_uid,
        "uid": device.uid,
        "last_seen": device.last_seen.isoformat() if device.last_seen else "",
    }


def _from_cached(item: dict[str, str]) -> DeviceChoice:
    return DeviceChoice(
        name=item.get("name", ""),
        collector_uid=item.get("collector_uid", ""),
        uid=item.get("uid", ""),
        last_seen=_when(item.get("last_seen") or None),
        source="nql",
    )
