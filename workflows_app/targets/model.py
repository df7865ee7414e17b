"""Value types for parsed targets: what a target is, what went wrong on a line, the whole result."""

from dataclasses import dataclass
from enum import StrEnum

# The portal's own limit on one run (Nexthink's, per execute call, is the client's MAX_TARGETS).
MAX_TARGETS_PER_RUN = 100_000
# Beyond this many, listing more errors helps nobody; the rest are only counted.
MAX_ERRORS = 1_000
MAX_ERROR_TEXT = 100


class TargetKind(StrEnum):
    """How a target identifies a device or a user in Nexthink."""

    DEVICE_COLLECTOR = "device_collector"
    DEVICE_UID = "device_uid"
    DEVICE_NAME = "device_name"
    USER_SID = "user_sid"
    USER_UPN = "user_upn"
    USER_UID = "user_uid"
    # A device of the classic (on-premise) platform, for remote actions (targets/classic.py).
    DEVICE_CLASSIC_UID = "device_classic_uid"

    @property
    def is_user(self) -> bool:
        """Whether this kind names a user (otherwise it names a device)."""
        # A StrEnum member is its value; asking it directly skips Enum's slower .value lookup,
        # which counts when 100,000 targets are checked and split into batches.
        return self.startswith("user_")


@dataclass(frozen=True, slots=True)
class Target:
    """One device or user to run a workflow on, normalised, with the line it first appeared on."""

    kind: TargetKind
    value: str
    line: int

    @property
    def is_user(self) -> bool:
        """Whether this target is a user."""
        return self.kind.is_user

    @property
    def is_device(self) -> bool:
        """Whether this target is a device."""
        return not self.kind.is_user

    @property
    def key(self) -> tuple[TargetKind, str]:
        """The identity used to drop duplicates (device names compare case-insensitively)."""
        if self.kind is TargetKind.DEVICE_NAME:
            return (self.kind, self.value.casefold())
        return (self.kind, self.value)


def too_many_targets(count: int) -> str:
    """What a person reads when a run would have more than MAX_TARGETS_PER_RUN targets."""
    return (
        f"{count:,} targets given; at most {MAX_TARGETS_PER_RUN:,} can run at once. "
        "Split the list into several runs."
    )


@dataclass(frozen=True, slots=True)
class LineError:
    """Why one line (or, with line None, the whole input) could not be used."""

    line: int | None
    text: str
    reason: str

    def __post_init__(self) -> None:
        # Someone may paste a megabyte on one line; echo back only enough to find it.
        if len(self.text) > MAX_ERROR_TEXT:
            object.__setattr__(self, "text", self.text[: MAX_ERROR_TEXT - 1] + "…")


@dataclass(frozen=True, slots=True)
class ParsedTargets:
    """The outcome of reading a pasted list or an uploaded file of targets."""

    targets: list[Target]
    errors: list[LineError]
    duplicates: int
    total_lines: int
    errors_truncated: int = 0

    @property
    def ok(self) -> bool:
        """Whether the targets can be used as they are: no errors at all."""
        return not self.errors and not self.errors_truncated

    @property
    def error_count(self) -> int:
        """How many errors there were, including those left out of `errors`."""
        return len(self.errors) + self.errors_truncated
