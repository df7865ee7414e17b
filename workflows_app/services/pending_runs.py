"""A run (or flow run) waiting for its confirmation, kept in the person's session.

The confirmation page must not send up to 100,000 lines back through the browser, so the
validated targets and parameters wait in the session (database-backed) under a random token the
page carries in a hidden field. Secret values wait there encrypted. Once confirmed, the token
remembers the run (or flow run) it started, so a second click on "Run now" finds it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.backends.base import SessionBase

from workflows_app import targets as targets_mod
from workflows_app.models import Flow, Workflow
from workflows_app.services.params import split_secrets
from workflows_app.services.secrets import SecretsUnreadable, decrypt_dict, encrypt_dict

PENDING_KEY = "runs:pending"
DONE_KEY = "runs:done"
FLOW_DONE_KEY = "flows:done"
CONFIRM_TTL_SECONDS = 30 * 60
# Each pending confirmation may hold 100,000 targets: keep few, so the session row stays small.
MAX_PENDING = 3
MAX_DONE = 20


@dataclass(frozen=True)
class PendingRun:
    """What the person asked for, as the form validated it, secrets decrypted."""

    targets: list[targets_mod.Target]
    params: dict[str, str]
    reason: str
    duplicates: int
    # The run this one runs again ("Run again" on its page), as the form said; None otherwise.
    again_of: int | None = None


@dataclass(frozen=True)
class PendingFlowRun:
    """A flow run as the form validated it, and the flow version its confirmation showed."""

    targets: list[targets_mod.Target]
    reason: str
    duplicates: int
    version: int


def stash(
    session: SessionBase,
    *,
    workflow: Workflow,
    targets: Sequence[targets_mod.Target],
    duplicates: int,
    params: Mapping[str, str],
    reason: str,
    again_of: int | None = None,
) -> str:
    """Keep a validated run in the session under a new token; returns the token."""
    public, hidden = split_secrets(workflow, params)
    entry = {"workflow_id": workflow.pk, "params": public, "secrets": encrypt_dict(hidden)}
    return _keep(session, targets, duplicates, reason, {**entry, "again_of": again_of})


def take(session: SessionBase, token: str, workflow: Workflow) -> PendingRun | None:
    """Take the run of this token out of the session; None if unknown, expired or not this one."""
    stashed = _take(session, token, "workflow_id", workflow.pk)
    if stashed is None:
        return None
    try:
        hidden = decrypt_dict(stashed.get("secrets", ""))
    except SecretsUnreadable:
        return None
    return PendingRun(
        targets=targets_mod.from_session_text(stashed["targets"]),
        params={**stashed["params"], **hidden},
        reason=stashed["reason"],
        duplicates=stashed["duplicates"],
        again_of=stashed.get("again_of"),
    )


def remember_started(session: SessionBase, token: str, run_id: int) -> None:
    """Note which run a token started, so a second click on "Run now" finds it."""
    _remember(session, DONE_KEY, token, run_id)


def started_run_id(session: SessionBase, token: str) -> int | None:
    """The run this token already started, or None."""
    done: dict[str, int] = session.get(DONE_KEY, {})
    return done.get(token)


def stash_flow_run(
    session: SessionBase,
    *,
    flow: Flow,
    version: int,
    targets: Sequence[targets_mod.Target],
    duplicates: int,
    reason: str,
) -> str:
    """Keep a validated flow run in the session under a new token; returns the token."""
    return _keep(session, targets, duplicates, reason, {"flow_id": flow.pk, "version": version})


def take_flow_run(session: SessionBase, token: str, flow: Flow) -> PendingFlowRun | None:
    """Take the flow run of this token out of the session; None if unknown, expired or another's."""
    stashed = _take(session, token, "flow_id", flow.pk)
    if stashed is None:
        return None
    return PendingFlowRun(
        targets=targets_mod.from_session_text(stashed["targets"]),
        reason=stashed["reason"],
        duplicates=stashed["duplicates"],
        version=stashed["version"],
    )


def remember_flow_run(session: SessionBase, token: str, flow_run_id: int) -> None:
    """Note which flow run a token started, so a second click on "Run now" finds it."""
    _remember(session, FLOW_DONE_KEY, token, flow_run_id)


def started_flow_run_id(session: SessionBase, token: str) -> int | None:
    """The flow run this token already started, or None."""
    done: dict[str, int] = session.get(FLOW_DONE_KEY, {})
    return done.get(token)


def _keep(
    session: SessionBase,
    targets: Sequence[targets_mod.Target],
    duplicates: int,
    reason: str,
    entry: dict[str, Any],
) -> str:
    """Keep what was asked for under a new token, dropping expired entries and the oldest past
    MAX_PENDING; `entry` says whose it is (a workflow's or a flow's) and what else it holds."""
    token = secrets.token_urlsafe(24)
    now = time.time()
    pending: dict[str, dict[str, Any]] = {
        key: value
        for key, value in session.get(PENDING_KEY, {}).items()
        if now - value.get("created", 0) < CONFIRM_TTL_SECONDS
    }
    while len(pending) >= MAX_PENDING:
        oldest = min(pending, key=lambda key: pending[key]["created"])
        del pending[oldest]
    pending[token] = {
        **entry,
        "targets": targets_mod.to_session_text(targets),
        "duplicates": duplicates,
        "reason": reason,
        "created": now,
    }
    session[PENDING_KEY] = pending
    return token


def _take(session: SessionBase, token: str, owner: str, owner_id: int) -> dict[str, Any] | None:
    """Pop the token's entry if it is `owner`'s (a workflow's or a flow's) and still fresh."""
    pending: dict[str, dict[str, Any]] = session.get(PENDING_KEY, {})
    stashed = pending.pop(token, None) if token else None
    if stashed is None:
        return None
    session[PENDING_KEY] = pending
    if stashed.get(owner) != owner_id:
        return None
    if time.time() - stashed.get("created", 0) >= CONFIRM_TTL_SECONDS:
        return None
    return stashed


def _remember(session: SessionBase, key: str, token: str, made_id: int) -> None:
    done: dict[str, int] = session.get(key, {})
    done[token] = made_id
    session[key] = dict(list(done.items())[-MAX_DONE:])
