"""Re-running a workflow on a run's failed targets: the run form, pre-filled from that run.

The run page links to the ordinary run form with `?rerun=<run id>`; the form's GET asks
`rerun_initial` for its initial values. The targets are read from the database here (a run may
have 100,000 failed targets: never in a URL), as prefixed lines the form reads back as the same
targets; the person checks them and goes through the usual confirmation. Secret values were
never kept and are not pre-filled.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages

from workflows_app.forms.runs import PARAM_PREFIX
from workflows_app.models import Workflow
from workflows_app.selectors.runs import rerun_prefill
from workflows_app.services.params import MASK, secret_names, split_secrets
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_follow import query_int

RERUN_PARAMETER = "rerun"


def rerun_initial(request: AuthenticatedHttpRequest, workflow: Workflow) -> dict[str, Any] | None:
    """The run form's initial values from `?rerun=<run id>`, or None (with a message why)."""
    if RERUN_PARAMETER not in request.GET:
        return None
    run_id = query_int(request.GET.get(RERUN_PARAMETER))
    prefill = rerun_prefill(request.user, run_id, workflow) if run_id is not None else None
    if prefill is None:
        messages.warning(
            request,
            "Nothing was pre-filled: there is no run of this workflow with that number. "
            "Open the run and use its re-run button.",
        )
        return None
    if not prefill.target_count:
        messages.warning(
            request,
            f"Run {prefill.run.pk} has no failed targets any more: nothing was pre-filled.",
        )
        return None
    public, _ = split_secrets(workflow, prefill.params)
    initial: dict[str, Any] = {
        PARAM_PREFIX + name: value for name, value in public.items() if value != MASK
    }
    initial.update(reason=prefill.reason, targets_text=prefill.targets_text)
    count = prefill.target_count
    note = (
        f"Pre-filled from run {prefill.run.pk}: its {count:,} failed or not-sent "
        f"target{'s' if count != 1 else ''}, its parameters and its reason. Check them, then "
        "continue: nothing runs before you confirm."
    )
    if secret_names(workflow):
        note += " Secret parameters are never kept: type them again."
    messages.info(request, note)
    return initial
