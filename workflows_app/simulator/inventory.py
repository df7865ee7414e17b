"""The simulated tenant's users and devices, and how external ids resolve against them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_NAMESPACE = uuid.UUID("0c8f5d2a-93b4-4a7e-8d61-7f2e9b3c5a40")
_SID_PREFIX = "S-1-5-21-1004336348-1177238915-682003330"

_FIRST = ("alice", "bruno", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jonas")
_LAST = ("martin", "schmidt", "rossi", "dubois", "keller")


def _uid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key}"))


@dataclass(frozen=True)
class SimUser:
    """An employee known to Nexthink."""

    upn: str
    sid: str
    uid: str
    display_name: str = ""


@dataclass(frozen=True)
class SimDevice:
    """A device with a Nexthink Collector; owner_upn is the employee who mainly uses it."""

    name: str
    uid: str
    collector_uid: str
    last_seen: datetime
    owner_upn: str | None = None


class Inventory:
    """Users and devices, indexed for the lookups execute and NQL need."""

    def __init__(self, users: Iterable[SimUser], devices: Iterable[SimDevice]) -> None:
        self.users = list(users)
        self.devices = list(devices)
        self._user_by_upn = {u.upn.lower(): u for u in self.users}
        self._user_by_sid = {u.sid: u for u in self.users}
        self._user_by_uid = {u.uid.lower(): u for u in self.users}
        self._devices_by_name: dict[str, list[SimDevice]] = defaultdict(list)
        self._devices_by_uid: dict[str, list[SimDevice]] = defaultdict(list)
        self._devices_by_collector: dict[str, list[SimDevice]] = defaultdict(list)
        self._devices_by_owner: dict[str, list[SimDevice]] = defaultdict(list)
        for d in self.devices:
            self._devices_by_name[d.name.lower()].append(d)
            self._devices_by_uid[d.uid.lower()].append(d)
            self._devices_by_collector[d.collector_uid.lower()].append(d)
            if d.owner_upn:
                self._devices_by_owner[d.owner_upn.lower()].append(d)

    def user_by_upn(self, upn: str) -> SimUser | None:
        """The user with this UPN (case-insensitive), or None."""
        return self._user_by_upn.get(upn.lower())

    def devices_of(self, upn: str) -> list[SimDevice]:
        """The user's devices, most recently seen first."""
        return sorted(
            self._devices_by_owner.get(upn.lower(), []), key=lambda d: d.last_seen, reverse=True
        )

    def resolve_device(
        self, name: str | None = None, uid: str | None = None, collector_uid: str | None = None
    ) -> SimDevice | None:
        """The most recently seen device matching every identifier given, or None."""
        candidates: list[list[SimDevice]] = []
        if name is not None:
            candidates.append(self._devices_by_name.get(name.lower(), []))
        if uid is not None:
            candidates.append(self._devices_by_uid.get(uid.lower(), []))
        if collector_uid is not None:
            candidates.append(self._devices_by_collector.get(collector_uid.lower(), []))
        if not candidates:
            return None
        matches = [d for d in candidates[0] if all(d in other for other in candidates[1:])]
        return max(matches, key=lambda d: d.last_seen, default=None)

    def resolve_user(
        self, upn: str | None = None, sid: str | None = None, uid: str | None = None
    ) -> SimUser | None:
        """The user matching every identifier given, or None."""
        found: list[SimUser | None] = []
        if upn is not None:
            found.append(self._user_by_upn.get(upn.lower()))
        if sid is not None:
            found.append(self._user_by_sid.get(sid))
        if uid is not None:
            found.append(self._user_by_uid.get(uid.lower()))
        if not found or found[0] is None or any(f is not found[0] for f in found):
            return None
        return found[0]


def _device(name: str, seen: datetime, owner: str | None, serial: str = "") -> SimDevice:
    key = f"{name}/{serial}"
    return SimDevice(
        name=name,
        uid=_uid("device", key),
        collector_uid=_uid("collector", key),
        last_seen=seen,
        owner_upn=owner,
    )


def _user(upn: str, rid: int, display_name: str) -> SimUser:
    return SimUser(
        upn=upn, sid=f"{_SID_PREFIX}-{rid}", uid=_uid("user", upn), display_name=display_name
    )


def default_inventory(now: datetime | None = None) -> Inventory:
    """The demo tenant: three named demo accounts plus 50 generated employees (deterministic).

    last_seen values are relative to ``now`` so the demo looks live; their order is fixed.
    """
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    users = [
        _user("employee@example.com", 1101, "Erin Employee"),
        _user("helpdesk@example.com", 1102, "Hal Helpdesk"),
        _user("admin@example.com", 1103, "Ada Admin"),
        _user("fail.test@example.com", 1104, "Fay Failtest"),
    ]
    devices = [
        _device("EMP-LT-0142", now - timedelta(minutes=12), "employee@example.com"),
        _device("EMP-DT-0077", now - timedelta(days=2, hours=3), "employee@example.com"),
        _device("EMP-VM-0003", now - timedelta(days=31), "employee@example.com"),
        _device("HD-LT-0001", now - timedelta(minutes=40), "helpdesk@example.com"),
        _device("ADM-LT-0001", now - timedelta(hours=5), "admin@example.com"),
        _device("FAIL-LT-0001", now - timedelta(hours=1), "fail.test@example.com"),
        # Two devices share a name, as happens after a re-image: the recent one wins.
        _device("SHARED-PC-01", now - timedelta(days=90), None, serial="old"),
        _device("SHARED-PC-01", now - timedelta(hours=2), None, serial="new"),
        _device("KIOSK-LOBBY-01", now - timedelta(minutes=3), None),
        # For the portal's tolerance of odd outcomes: "timed_out", and a status it does not know.
        _device("TIMEOUT-PC-01", now - timedelta(hours=6), None),
        _device("WEIRD-PC-01", now - timedelta(hours=7), None),
    ]
    for i in range(50):
        first, last = _FIRST[i % len(_FIRST)], _LAST[i // len(_FIRST) % len(_LAST)]
        upn = f"{first}.{last}@example.com"
        users.append(_user(upn, 2000 + i, f"{first.title()} {last.title()}"))
        kind = "DT" if i % 4 == 0 else "LT"
        devices.append(_device(f"NXT-{kind}-{1000 + i}", now - timedelta(hours=i + 1), upn))
        if i % 7 == 0:
            devices.append(_device(f"NXT-VM-{1000 + i}", now - timedelta(days=i + 3), upn))
    return Inventory(users, devices)
