"""Starting a run from the helpdesk form: the form, its confirmation step, the confirmed start.

Each request asks the run rule (workflows_app.permissions) once; the confirmed start hands its
permit to the run service. The validated run waits for its confirmation in the session
(services.pending_runs).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from workflows_app import permissions
from workflows_app import targets as targets_mod
from workflows_app.forms.runs import KIND_LABELS, RunForm
from workflows_app.models import Run, RunStatus, Workflow
from workflows_app.permissions import RunPermit
from workflows_app.roles import Role, role_required
from workflows_app.selectors.runs import run_of_workflow
from workflows_app.services import approvals, pending_runs
from workflows_app.services.audit import client_address
from workflows_app.services.params import mask_params
from workflows_app.services.runs import RunRefused, batch_size, create_permitted_run
from workflows_app.views.catalogue import NEEDS
from workflows_app.views.http import AuthenticatedHttpRequest
from workflows_app.views.runs_rerun import pending_initial, prefill_initial

SAMPLE_SIZE = 10
EXPIRED = "This confirmation expired; please submit the form again."


@sensitive_post_parameters()  # secret parameter values never reach error reports
@require_http_methods(["GET", "POST"])
@role_required(Role.HELPDESK, Role.ADMIN)
def start(request: AuthenticatedHttpRequest, workflow_id: int) -> HttpResponse:
    """The run form (GET), or its check and the confirmation page (POST)."""
    workflow = _workflow(workflow_id)
    permit = _permit(request, workflow)
    if isinstance(permit, HttpResponse):
        return permit
    if request.method == "GET":
        # `?rerun=` / `?again=<run id>`: pre-filled with that run's failed / all targets.
        return _form_page(
            request, workflow, RunForm(workflow, initial=prefill_initial(request, workflow))
        )
    form = RunForm(workflow, request.POST, request.FILES)
    if form.is_valid():
        _check_again(request, workflow, form)
    if not form.is_valid():
        return _form_page(request, workflow, form, status=400)
    token = pending_runs.stash(
        request.session,
        workflow=workflow,
        targets=form.targets,
        duplicates=form.duplicates,
        params=form.params,
        reason=form.cleaned_data.get("reason", ""),
        again_of=form.cleaned_data.get("again"),
    )
    return render(request, "runs/confirm.html", _confirm_context(workflow, form, token))


@sensitive_post_parameters()
@require_POST
@role_required(Role.HELPDESK, Role.ADMIN)
def change(request: AuthenticatedHttpRequest, workflow_id: int) -> HttpResponse:
    """ "Change something" on the confirmation page: the form again, with what waited there."""
    workflow = _workflow(workflow_id)
    permit = _permit(request, workflow)
    if isinstance(permit, HttpResponse):
        return permit
    pending = pending_runs.take(request.session, request.POST.get("token", ""), workflow)
    if pending is None:
        return _expired(request, workflow)
    initial = pending_initial(request, workflow, pending, why="Nothing was started.")
    return _form_page(request, workflow, RunForm(workflow, initial=initial))


@sensitive_post_parameters()
@require_POST
@role_required(Role.HELPDESK, Role.ADMIN)
def confirm(request: AuthenticatedHttpRequest, workflow_id: int) -> HttpResponse:
    """Start the run the confirmation page describes; a second click finds the first run."""
    workflow = _workflow(workflow_id)
    permit = _permit(request, workflow)
    if isinstance(permit, HttpResponse):
        return permit
    token = request.POST.get("token", "")
    started = pending_runs.started_run_id(request.session, token)
    if started is not None:
        messages.info(request, "This run was already started; here it is.")
        return redirect("runs:detail", pk=started)
    pending = pending_runs.take(request.session, token, workflow)
    if pending is None:
        return _expired(request, workflow)
    # An explicit "Run again" of a run this person may still open: the guard steps aside.
    again_of = (
        run_of_workflow(request.user, pending.again_of, workflow)
        if pending.again_of is not None
        else None
    )
    try:
        run = create_permitted_run(
            permit,
            targets=pending.targets,
            params=pending.params,
            reason=pending.reason,
            duplicate_count=pending.duplicates,
            again_of=again_of,
            ip=client_address(request),
        )
    except RunRefused as exc:
        _refused_message(request, exc)
        initial = pending_initial(request, workflow, pending, why="")
        return _form_page(request, workflow, RunForm(workflow, initial=initial), status=400)
    pending_runs.remember_started(request.session, token, run.pk)
    count = run.target_count
    if run.status == RunStatus.AWAITING_APPROVAL:
        messages.info(
            request,
            f"Run {run.pk} waits for approval: nothing is sent to its {count:,} "
            f"target{'s' if count != 1 else ''} until someone else approves it.",
        )
    else:
        messages.success(
            request,
            f"Run {run.pk} started: {count:,} target{'s are' if count != 1 else ' is'} being sent.",
        )
    return redirect("runs:detail", pk=run.pk)


# --- helpers --------------------------------------------------------------------------------


def _workflow(workflow_id: int) -> Workflow:
    """Any workflow of the catalogue (404 if unknown); the run rule decides what it shows."""
    # The form, the checks and the stash all read the parameters: one query for them.
    workflows = Workflow.objects.select_related("curation").prefetch_related("parameters")
    return get_object_or_404(workflows, pk=workflow_id)


def _permit(request: AuthenticatedHttpRequest, workflow: Workflow) -> RunPermit | HttpResponse:
    """The run rule's permit for this person and workflow, or the page saying why not."""
    try:
        return permissions.permit(request.user, workflow, Run.Source.HELPDESK)
    except permissions.Refusal as exc:
        return _refused_page(request, workflow, exc)


def _expired(request: HttpRequest, workflow: Workflow) -> HttpResponse:
    messages.error(request, EXPIRED)
    return _form_page(request, workflow, RunForm(workflow), status=400)


def _refused_page(
    request: HttpRequest, workflow: Workflow, refused: permissions.Refusal
) -> HttpResponse:
    """Why the workflow cannot run (a page, 400 for a POST) or this person may not run it (403)."""
    if isinstance(refused, permissions.NotRunnable):
        status = 200 if request.method == "GET" else 400
        context = {"workflow": workflow, "reason": refused.message, "needs": _needs(workflow)}
        return render(request, "runs/not_runnable.html", context, status=status)
    context = {"workflow": workflow, "message": refused.message}
    return render(request, "runs/refused.html", context, status=403)


def _needs(workflow: Workflow) -> str:
    return NEEDS.get(workflow.dependency, str(workflow.dependency))


def _form_page(
    request: HttpRequest, workflow: Workflow, form: RunForm, status: int = 200
) -> HttpResponse:
    context = {"workflow": workflow, "form": form, "needs": _needs(workflow)}
    return render(request, "runs/start.html", context, status=status)


def _confirm_context(workflow: Workflow, form: RunForm, token: str) -> dict[str, Any]:
    """What the confirmation page shows: counts, a sample, masked parameters, batches."""
    chosen = form.targets
    return {
        "workflow": workflow,
        "needs": _needs(workflow),
        "token": token,
        "target_count": len(chosen),
        "duplicates": form.duplicates,
        "sample": [(KIND_LABELS[t.kind], t.value) for t in chosen[:SAMPLE_SIZE]],
        "params": _labelled(form, mask_params(workflow, form.params)),
        "reason": form.cleaned_data.get("reason", ""),
        "batch_count": len(targets_mod.batches(chosen, batch_size(workflow))),
        "batch_limit": f"{batch_size(workflow):,}",
        "api_version": (
            "classic Act API v2" if workflow.is_remote_action else targets_mod.api_version(chosen)
        ),
        "ttl_minutes": pending_runs.CONFIRM_TTL_SECONDS // 60,
        "again_of": form.cleaned_data.get("again"),
        "has_secrets": any(d.secret for d in form.param_definitions.values()),
        "approval_needed": approvals.requirement(workflow, len(chosen)),
    }


def _check_again(request: AuthenticatedHttpRequest, workflow: Workflow, form: RunForm) -> None:
    """Refuse a "Run again" of a run that is not one of this workflow this person may open."""
    run_id = form.cleaned_data.get("again")
    if run_id is not None and run_of_workflow(request.user, run_id, workflow) is None:
        form.add_error(
            None,
            f"Run {run_id} is not a run of {workflow.name} you may open, so it cannot be run "
            "again from here. Open the run and use its Run again button.",
        )


def _labelled(form: RunForm, values: dict[str, str]) -> list[tuple[str, str, str]]:
    """(label, Nexthink name, shown value) for each parameter, in the form's order."""
    labels = {d.name: d.label or d.name for d in form.param_definitions.values()}
    return [(labels.get(name, name), name, value) for name, value in values.items()]


def _refused_message(request: HttpRequest, exc: RunRefused) -> None:
    if exc.existing_run is not None:
        messages.error(
            request,
            format_html(
                '{} <a href="{}">Open run {}</a>.',
                exc.message,
                reverse("runs:detail", args=[exc.existing_run.pk]),
                exc.existing_run.pk,
            ),
        )
    else:
        messages.error(request, exc.message)
