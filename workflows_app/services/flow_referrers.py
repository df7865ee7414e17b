"""What a flow step's `referrer` names: the one place a referrer is resolved.

A referrer is a workflow's NQL id (`#clear_teams_cache`, the `#` optional) or a registered
classic remote action's UID (8-4-4-4-12 hexadecimal, any case). Validation, the engine and the
pages all ask `resolve`; a step of a remote action runs through the same run service, which
sends it to the classic Act API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from workflows_app.models import ParameterDefinition, Workflow
from workflows_app.nexthink.models import UUID_PATTERN

_REMOTE_ACTION_UID = re.compile(UUID_PATTERN, re.ASCII)


@dataclass(frozen=True)
class Referrer:
    """A runnable a step may name: how it is shown, what it targets, the parameters it takes."""

    key: str  # the referrer as stored in a step (normalised)
    kind: str  # RunnableKind: "workflow" or "remote_action"
    name: str
    dependency: str  # DEVICE, USER, USER_AND_DEVICE or NONE
    parameters: list[ParameterDefinition] = field(default_factory=list)
    workflow: Workflow | None = None


def normalise(referrer: str) -> str:
    """The referrer as steps store it: a remote action's UID in lower case, else a workflow NQL
    id always with its `#`."""
    text = referrer.strip()
    if _REMOTE_ACTION_UID.fullmatch(text):
        return text.lower()
    return "#" + text.lstrip("#") if text else ""


def resolve(referrers: Iterable[str]) -> dict[str, Referrer]:
    """The runnables these referrers name, keyed by normalised referrer; unknown ones are left
    out. Removed workflows are left out too: a new flow version may not name them."""
    wanted = {normalise(r) for r in referrers if normalise(r) and "\x00" not in r}
    found: dict[str, Referrer] = {}
    workflows = (
        Workflow.objects.filter(nql_id__in=wanted, removed_at__isnull=True)
        .select_related("curation")
        .prefetch_related("parameters")
    )
    for workflow in workflows:
        found[workflow.nql_id] = Referrer(
            key=workflow.nql_id,
            kind=str(workflow.kind),
            name=workflow.name,
            dependency=str(workflow.dependency).upper(),
            parameters=sorted(workflow.parameters.all(), key=lambda p: (p.position, p.pk)),
            workflow=workflow,
        )
    return found


def choices() -> list[tuple[str, str]]:
    """Every referrer an admin may choose in the flow editor: (referrer, label)."""
    return [
        (nql_id, f"{name} ({nql_id})")  # remote actions among them, by UID
        for nql_id, name in Workflow.objects.filter(removed_at__isnull=True)
        .exclude(dependency="NONE")
        .order_by("name")
        .values_list("nql_id", "name")
    ]
