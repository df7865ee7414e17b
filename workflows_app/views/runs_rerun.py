"""The run form pre-filled from an earlier run: its failed targets, all of them, or what was
typed before the confirmation page.

The run page links to the ordinary run form with `?rerun=<run id>` (re-run on the failed
targets) or `?again=<run id>` (run again on all of them); the form's GET asks `prefill_initial`
for its initial values. The targets are read from the database (a run may have 100,000: never in
a URL), as prefixed lines the form reads back as the same targets; the person checks them and
goes through the usual confirmation. "Change something" on the confirmation page brings back
what waited there (`pending_initial`). Secret values are never pre-filled: they were never kept,
and are not echoed back into a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from workflows_app import targets as targets_mod
from workflows_app.forms.runs import PARAM_PREFIX
from workflows_app.models import Workflow
from workflows_app.selectors.runs import FAILED_OUTCOMES, RerunPrefill, run_prefill
from workflows_app.services.params import MASK, secret_names, split_secrets
from workflows_app.services.pending_runs import PendingRun
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import query_int

RERUN_PARAMETER = "rerun"
AGAIN_PARAMETER = "again"
TYPE_SECRETS_AGAIN = " Secret parameters are never kept: type them again."


def prefill_initial(request: AuthenticatedHttpRequest, workflow: Workflow) -> dict[str, Any] | None:
    """The run form's initial values from `?again=` or `?rerun=<run id>`, or None (with a
    message why)."""
    again = AGAIN_PARAMETER in request.GET
    name = AGAIN_PARAMETER if again else RERUN_PARAMETER
    if name not in request.GET:
        return None
    run_id = query_int(request.GET.get(name))
    outcomes = None if again else FAILED_OUTCOMES
    prefill = (
        run_prefill(request.user, run_id, workflow, outcomes=outcomes)
        if run_id is not None
        else None
    )
    if prefill is None:
        button = "Run again" if again else "re-run"
        messages.warning(
            request,
            "Nothing was pre-filled: there is no run of this workflow with that number. "
            f"Open the run and use its {button} button.",
        )
        return None
    if not again and not prefill.target_count:
        messages.warning(
            request,
            f"Run {prefill.run.pk} has no failed targets any more: nothing was pre-filled.",
        )
        return None
    messages.info(request, _prefilled_note(workflow, prefill, again=again))
    return form_initial(
        workflow,
        params=prefill.params,
        reason=prefill.reason,
        targets_text=prefill.targets_text,
        # Both are explicit: the double-click guard steps aside for either.
        again=prefill.run.pk,
    )


def pending_initial(
    request: HttpRequest, workflow: Workflow, pending: PendingRun, *, why: str
) -> dict[str, Any]:
    """The run form's initial values from a run that waited for its confirmation, and a
    message saying they are back (`why` starts it)."""
    note = f"{why} The targets, parameters and reason are back in the form.".lstrip()
    if secret_names(workflow):
        note += TYPE_SECRETS_AGAIN
    messages.info(request, note)
    return form_initial(
        workflow,
        params=pending.params,
        reason=pending.reason,
        targets_text="\n".join(targets_mod.to_line(t.kind, t.value) for t in pending.targets),
        again=pending.again_of,
    )


def form_initial(
    workflow: Workflow,
    *,
    params: Mapping[str, str],
    reason: str,
    targets_text: str,
    again: int | None = None,
) -> dict[str, Any]:
    """The run form's initial values: targets as lines, the reason, and the parameters that
    are not secret (a secret value is never put back into a page)."""
    public, _ = split_secrets(workflow, dict(params))
    initial: dict[str, Any] = {
        PARAM_PREFIX + name: value for name, value in public.items() if value != MASK
    }
    initial.update(reason=reason, targets_text=targets_text, again=again)
    return initial


def _prefilled_note(workflow: Workflow, prefill: RerunPrefill, *, again: bool) -> str:
    count = prefill.target_count
    plural = "s" if count != 1 else ""
    which = (
        f"all its {count:,} target{plural}"
        if again
        else (f"its {count:,} failed or not-sent target{plural}")
    )
    note = (
        f"Pre-filled from run {prefill.run.pk}: {which}, its parameters and its reason. Check "
        "them, then continue: nothing runs before you confirm."
    )
    note += " It runs even if the same run was started a moment ago."
    if secret_names(workflow):
        note += TYPE_SECRETS_AGAIN
    return note
