"""Turning parsed targets into what an execute request needs: API version, lists, batches."""

from collections.abc import Sequence

from .classify import CANONICAL_PREFIX
from .model import MAX_PER_REQUEST, Target, TargetKind

_V1_KINDS = frozenset({TargetKind.DEVICE_COLLECTOR, TargetKind.USER_SID})
_V2_KEYS: dict[TargetKind, str] = {
    TargetKind.DEVICE_COLLECTOR: "collectorUid",
    TargetKind.DEVICE_UID: "uid",
    TargetKind.DEVICE_NAME: "name",
    TargetKind.USER_SID: "sid",
    TargetKind.USER_UPN: "upn",
    TargetKind.USER_UID: "uid",
}


def fits_v1(targets: Sequence[Target]) -> bool:
    """Whether the v1 execute call can take these targets (only Collector UUIDs and SIDs)."""
    return all(t.kind in _V1_KINDS for t in targets)


def to_v1_lists(targets: Sequence[Target]) -> tuple[list[str], list[str]]:
    """Split targets into v1 `devices` (Collector UUIDs) and `users` (SIDs) lists."""
    if not fits_v1(targets):
        raise ValueError("only Collector UUIDs and SIDs can be sent with the v1 API")
    devices = [t.value for t in targets if t.is_device]
    users = [t.value for t in targets if t.is_user]
    return devices, users


def to_v2_lists(targets: Sequence[Target]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Split targets into v2 `devices` ({collectorUid|uid|name}) and `users` ({sid|upn|uid})."""
    devices = [{_V2_KEYS[t.kind]: t.value} for t in targets if t.is_device]
    users = [{_V2_KEYS[t.kind]: t.value} for t in targets if t.is_user]
    return devices, users


def check_dependency(targets: Sequence[Target], dependency: str) -> list[str]:
    """Say why these targets do not suit a workflow's dependency; empty when they do."""
    devices = [t for t in targets if t.is_device]
    users = [t for t in targets if t.is_user]
    dep = str(dependency).upper()
    if dep == "NONE":
        if targets:
            return [f"This workflow takes no targets: remove the {_count(len(targets), 'target')}."]
        return []
    if dep not in ("DEVICE", "USER", "USER_AND_DEVICE"):
        return [f"This workflow's target type {dependency!r} is unknown to the portal."]
    messages: list[str] = []
    if dep == "DEVICE" and users:
        messages.append(
            f"This workflow runs on devices only: remove the {_count(len(users), 'user')} "
            f"(the first is on line {users[0].line})."
        )
    if dep == "USER" and devices:
        messages.append(
            f"This workflow runs on users only: remove the {_count(len(devices), 'device')} "
            f"(the first is on line {devices[0].line})."
        )
    if dep in ("DEVICE", "USER_AND_DEVICE") and not devices:
        messages.append("This workflow needs at least one device.")
    if dep in ("USER", "USER_AND_DEVICE") and not users:
        messages.append("This workflow needs at least one user.")
    return messages


def batches(targets: Sequence[Target], size: int = MAX_PER_REQUEST) -> list[list[Target]]:
    """Split targets, in order, into requests of at most `size` devices and `size` users each."""
    if not 1 <= size <= MAX_PER_REQUEST:
        raise ValueError(f"batch size must be between 1 and {MAX_PER_REQUEST:,}, not {size}")
    chunks: list[list[Target]] = []
    devices = users = 0
    for target in targets:
        # The n-th device goes to chunk n // size, and so does the n-th user: devices and users
        # share requests, so the number of requests is as small as the larger list allows.
        if target.is_device:
            index, devices = devices // size, devices + 1
        else:
            index, users = users // size, users + 1
        if index == len(chunks):
            chunks.append([])
        chunks[index].append(target)
    return chunks


def render_targets(targets: Sequence[Target]) -> str:
    """Write targets back as text, one `prefix:value` per line, that parses to the same targets."""
    return "".join(f"{CANONICAL_PREFIX[t.kind]}:{t.value}\n" for t in targets)


def _count(number: int, noun: str) -> str:
    """'1 user', '2 users'."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
