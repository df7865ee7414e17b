"""The simulated tenant's workflow catalogue: what an IT team has configured in Nexthink."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

TriggerShape = Literal["flags", "list"]

DEPENDENCIES = ("USER", "DEVICE", "USER_AND_DEVICE", "NONE")
TRIGGER_METHODS = ("API", "MANUAL", "MANUAL_MULTIPLE", "SCHEDULER")
_FLAG_NAMES = {
    "API": "apiEnabled",
    "MANUAL": "manualEnabled",
    "MANUAL_MULTIPLE": "manualMultipleEnabled",
    "SCHEDULER": "schedulerEnabled",
}
_UUID_NAMESPACE = uuid.UUID("5a3e8c1e-6f0b-4d57-9a7c-2b1f0c9d4e11")


@dataclass(frozen=True)
class SimParameter:
    """A workflow input parameter (Nexthink ignores unknown ones; the simulator does too)."""

    name: str
    description: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimWorkflow:
    """One configured workflow, with what the API exposes and what only the simulator knows."""

    id: str
    name: str
    description: str
    dependency: str
    trigger_methods: frozenset[str]
    status: str = "ACTIVE"
    last_update_time: datetime = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    version_count: int = 1
    parameters: tuple[SimParameter, ...] = ()
    waits_for_event: bool = False
    uuid: str = field(default="")

    def __post_init__(self) -> None:
        if self.dependency not in DEPENDENCIES:
            raise ValueError(f"unknown dependency {self.dependency!r}")
        unknown = set(self.trigger_methods) - set(TRIGGER_METHODS)
        if unknown:
            raise ValueError(f"unknown trigger methods {sorted(unknown)}")
        if not self.uuid:
            object.__setattr__(self, "uuid", str(uuid.uuid5(_UUID_NAMESPACE, self.id)))

    @property
    def active(self) -> bool:
        """Whether Nexthink would run it."""
        return self.status == "ACTIVE"

    @property
    def api_enabled(self) -> bool:
        """Whether its API trigger is enabled."""
        return "API" in self.trigger_methods

    def to_payload(self, trigger_shape: TriggerShape = "flags") -> dict[str, Any]:
        """Serialise as the Workflows API answers it, triggerMethods in the requested shape."""
        methods: Any
        if trigger_shape == "list":
            methods = [m for m in TRIGGER_METHODS if m in self.trigger_methods]
        else:
            methods = {flag: m in self.trigger_methods for m, flag in _FLAG_NAMES.items()}
        return {
            "id": self.id,
            "uuid": self.uuid,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "lastUpdateTime": iso(self.last_update_time),
            "dependency": self.dependency,
            "triggerMethods": methods,
            "versions": [
                {
                    "versionNumber": n,
                    "isActive": self.active and n == self.version_count,
                    "lastUpdateTime": iso(
                        self.last_update_time - timedelta(days=30 * (self.version_count - n))
                    ),
                }
                for n in range(1, self.version_count + 1)
            ],
        }


def iso(moment: datetime) -> str:
    """Format a timestamp the way the simulator answers them: UTC, seconds, trailing Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2025, month, day, hour, 14, 27, tzinfo=UTC)


def default_workflows() -> list[SimWorkflow]:
    """The catalogue of a plausible mid-size IT team, covering every dependency and trigger."""
    api_manual = frozenset({"API", "MANUAL"})
    return [
        SimWorkflow(
            "#clear_teams_cache",
            "Clear Teams cache",
            "Closes Microsoft Teams, clears its local cache and restarts it.",
            "DEVICE",
            api_manual,
            last_update_time=_when(10, 2),
            version_count=3,
        ),
        SimWorkflow(
            "#free_up_disk_space",
            "Free up disk space",
            "Empties temp folders, the recycle bin and old Windows Update files.",
            "DEVICE",
            frozenset({"API", "MANUAL", "SCHEDULER"}),
            last_update_time=_when(9, 18),
            version_count=2,
            parameters=(SimParameter("MinFreeGB", "Stop once this many GB are free"),),
        ),
        SimWorkflow(
            "#restart_print_spooler",
            "Restart print spooler",
            "Restarts the Windows print spooler service and clears stuck jobs.",
            "DEVICE",
            api_manual,
            last_update_time=_when(6, 11),
        ),
        SimWorkflow(
            "#reset_network_adapter",
            "Reset network adapter",
            "Disables and re-enables the active network adapter, renews DHCP.",
            "DEVICE",
            api_manual,
            last_update_time=_when(7, 23),
            version_count=2,
        ),
        SimWorkflow(
            "#repair_outlook_profile",
            "Repair Outlook profile",
            "Recreates the user's Outlook profile on their device.",
            "USER_AND_DEVICE",
            api_manual,
            last_update_time=_when(8, 5),
            version_count=4,
        ),
        SimWorkflow(
            "#unlock_ad_account",
            "Unlock AD account",
            "Unlocks the user's Active Directory account and logs the reason.",
            "USER",
            frozenset({"API"}),
            last_update_time=_when(10, 29),
            parameters=(SimParameter("Reason", "Why the account is unlocked"),),
        ),
        SimWorkflow(
            "#reset_mfa",
            "Reset MFA",
            "Resets the user's MFA methods once the service desk approves.",
            "USER",
            frozenset({"API", "MANUAL"}),
            last_update_time=_when(11, 3),
            version_count=2,
            waits_for_event=True,
        ),
        SimWorkflow(
            "#collect_diagnostics_logs",
            "Collect diagnostics logs",
            "Collects event logs and Nexthink Collector logs and uploads them.",
            "DEVICE",
            api_manual,
            last_update_time=_when(5, 14),
            parameters=(
                SimParameter("LogLevel", "How much to collect", ("Basic", "Detailed", "Verbose")),
            ),
        ),
        SimWorkflow(
            "#install_pending_windows_updates",
            "Install pending Windows updates",
            "Installs approved Windows updates outside business hours.",
            "DEVICE",
            frozenset({"SCHEDULER"}),
            last_update_time=_when(4, 30),
        ),
        SimWorkflow(
            "#onboard_new_joiner",
            "Onboard new joiner",
            "Creates accounts and licences for a new joiner after HR approval.",
            "NONE",
            frozenset({"API"}),
            last_update_time=_when(10, 20),
            version_count=5,
            parameters=(SimParameter("EmployeeId"), SimParameter("StartDate")),
            waits_for_event=True,
        ),
        SimWorkflow(
            "#monthly_license_audit",
            "Monthly license audit",
            "Reports unused Microsoft 365 and Adobe licences to IT asset management.",
            "NONE",
            frozenset({"SCHEDULER"}),
            last_update_time=_when(3, 3),
        ),
        SimWorkflow(
            "#disable_usb_storage",
            "Disable USB storage",
            "Blocks USB mass-storage devices (paused pending security review).",
            "DEVICE",
            api_manual,
            status="INACTIVE",
            last_update_time=_when(2, 17),
        ),
        SimWorkflow(
            "#clear_browser_cache",
            "Clear browser cache",
            "Clears Edge and Chrome caches for the signed-in user.",
            "USER_AND_DEVICE",
            frozenset({"API", "MANUAL_MULTIPLE"}),
            last_update_time=_when(9, 9),
        ),
        SimWorkflow(
            "#flush_dns_cache",
            "Flush DNS cache",
            "Flushes the DNS resolver cache.",
            "DEVICE",
            frozenset({"API", "MANUAL_MULTIPLE"}),
            last_update_time=_when(8, 28),
        ),
        SimWorkflow(
            "#legacy_vpn_fix",
            "Legacy VPN fix",
            "Reinstalls the old VPN client profile (replaced by the new VPN).",
            "DEVICE",
            frozenset({"API", "MANUAL"}),
            status="INACTIVE",
            last_update_time=_when(1, 12),
            version_count=2,
        ),
        SimWorkflow(
            "#renew_user_certificate",
            "Renew user certificate",
            "Requests a new Wi-Fi / VPN user certificate from the PKI.",
            "USER_AND_DEVICE",
            frozenset({"MANUAL", "SCHEDULER"}),
            last_update_time=_when(6, 2),
        ),
        SimWorkflow(
            "#notify_password_expiry",
            "Notify password expiry",
            "Shows a campaign to users whose password expires within 7 days.",
            "USER",
            frozenset({"SCHEDULER", "MANUAL_MULTIPLE"}),
            last_update_time=_when(7, 7),
        ),
        SimWorkflow(
            "#offboard_leaver",
            "Offboard leaver",
            "Disables accounts of a leaver (replaced by the HR-driven process).",
            "NONE",
            frozenset({"API", "MANUAL"}),
            status="INACTIVE",
            last_update_time=_when(2, 2),
        ),
    ]


class Catalogue:
    """The workflows currently configured; tests remove or replace some, reset() undoes it."""

    def __init__(self, workflows: Iterable[SimWorkflow] | None = None) -> None:
        self._initial = list(default_workflows() if workflows is None else workflows)
        ids = [w.id for w in self._initial]
        if len(ids) != len(set(ids)):
            raise ValueError("workflow ids must be unique")
        self._lock = threading.Lock()
        self._current = {w.id: w for w in self._initial}

    def all(self) -> list[SimWorkflow]:
        """Every workflow configured now, in catalogue order."""
        with self._lock:
            return list(self._current.values())

    def get(self, nql_id: str) -> SimWorkflow | None:
        """The workflow with this NQL id, or None."""
        with self._lock:
            return self._current.get(nql_id)

    def by_uuid(self, workflow_uuid: str) -> SimWorkflow | None:
        """The workflow with this UUID (case-insensitive), or None."""
        wanted = workflow_uuid.lower()
        return next((w for w in self.all() if w.uuid == wanted), None)

    def filter(
        self, dependency: str, trigger_method: str, only_active: bool = False
    ) -> list[SimWorkflow]:
        """Exactly the workflows with this dependency whose triggers include this method."""
        return [
            w
            for w in self.all()
            if w.dependency == dependency
            and trigger_method in w.trigger_methods
            and (w.active or not only_active)
        ]

    def put(self, workflow: SimWorkflow) -> None:
        """Add a workflow or replace the one with the same id (e.g. to deactivate it)."""
        with self._lock:
            self._current[workflow.id] = workflow

    def remove(self, nql_id: str) -> bool:
        """Remove a workflow, as if an admin deleted it; False when it is not configured."""
        with self._lock:
            return self._current.pop(nql_id, None) is not None

    def restore(self, nql_id: str) -> bool:
        """Bring back a workflow of the initial catalogue as it was; False when unknown."""
        original = next((w for w in self._initial if w.id == nql_id), None)
        if original is None:
            return False
        with self._lock:
            self._current[nql_id] = original
            self._current = {
                w.id: self._current[w.id]
                for w in [*self._initial, *self._current.values()]
                if w.id in self._current
            }
        return True

    def reset(self) -> None:
        """Go back to the initial catalogue."""
        with self._lock:
            self._current = {w.id: w for w in self._initial}

    def removed(self) -> list[str]:
        """Ids of initial workflows that are no longer configured."""
        with self._lock:
            return [w.id for w in self._initial if w.id not in self._current]
