"""The admin's curation pages: every workflow's curation state, its editor, export and import."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from workflows_app.forms.curation import (
    BLANK_ROWS,
    CurationImportForm,
    ParameterFormSet,
    SelfServiceSettingsForm,
    WorkflowCurationForm,
    parameter_initial,
)
from workflows_app.models import PortalSettings, Workflow, WorkflowCuration
from workflows_app.permissions import self_service_warnings
from workflows_app.roles import Role, role_required
from workflows_app.services.audit import client_address
from workflows_app.services.curation import (
    CurationImportError,
    dump_curation,
    export_curation,
    import_curation,
    save_curation,
)
from workflows_app.services.curation_rules import MAX_PARAMETERS
from workflows_app.services.portal_settings import set_helpdesk_url
from workflows_app.views.http import AuthenticatedHttpRequest, search_query

PREFIX = "parameters"


@require_safe
@role_required(Role.ADMIN)
def workflow_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every workflow, removed and inactive ones included, with what its curation says."""
    initial = {"helpdesk_url": PortalSettings.load().helpdesk_url}
    return _list_page(request, SelfServiceSettingsForm(initial=initial))


def _list_page(
    request: AuthenticatedHttpRequest, settings_form: SelfServiceSettingsForm, status: int = 200
) -> HttpResponse:
    """The list page, with the self-service settings form as given (bound when refused)."""
    # PostgreSQL text cannot hold NUL (a 500 in the filter), and no title contains one.
    q = search_query(request)
    workflows = (
        Workflow.objects.select_related("curation")
        .annotate(parameter_count=Count("parameters"))
        .order_by("name", "nql_id")
    )
    if q:
        workflows = workflows.filter(
            Q(name__icontains=q) | Q(nql_id__icontains=q) | Q(curation__title__icontains=q)
        )
    rows = [(workflow, workflow.curation_or_none) for workflow in workflows]
    context = {"rows": rows, "q": q, "settings_form": settings_form}
    return render(request, "curation/list.html", context, status=status)


@require_POST
@role_required(Role.ADMIN)
def self_service_settings(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Save the self-service settings (the helpdesk link); invalid input is shown back (400)."""
    form = SelfServiceSettingsForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was saved: correct the self-service settings below.")
        return _list_page(request, form, status=400)
    set_helpdesk_url(
        form.cleaned_data["helpdesk_url"], user=request.user, ip=client_address(request)
    )
    url = form.cleaned_data["helpdesk_url"]
    messages.success(
        request,
        f"Employees whose fix did not work are offered {url}."
        if url
        else "Employees are offered no helpdesk link.",
    )
    return redirect("curation:list")


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(Role.ADMIN)
def edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One workflow's curation and parameter definitions; invalid input is shown back (400)."""
    workflow = get_object_or_404(Workflow, pk=pk)
    curation = workflow.curation_or_none or WorkflowCuration(workflow=workflow)
    initial = parameter_initial(list(workflow.parameters.order_by("position", "id")))
    status = 200
    if request.method == "POST":
        form = WorkflowCurationForm(request.POST, instance=curation)
        formset = ParameterFormSet(request.POST, initial=initial, prefix=PREFIX)
        form_ok = form.is_valid()  # both validated, so every error shows at once
        if formset.is_valid() and form_ok:
            count = save_curation(
                workflow=workflow,
                values=form.values(),
                parameters=formset.specs(),
                user=request.user,
                ip=client_address(request),
            )
            messages.success(
                request, f"Curation of {workflow.name} saved ({count} parameter definition(s))."
            )
            if form.cleaned_data["self_service"]:
                for warning in self_service_warnings(workflow):
                    messages.warning(request, warning)
            return redirect("curation:edit", pk=workflow.pk)
        messages.error(request, "Nothing was saved: correct the fields marked below.")
        status = 400
    else:
        form = WorkflowCurationForm(instance=curation)
        formset = ParameterFormSet(initial=initial, prefix=PREFIX)
    context = {
        "workflow": workflow,
        "curation": curation if curation.pk else None,
        "form": form,
        "formset": formset,
        "blank_rows": BLANK_ROWS,
        "warnings": self_service_warnings(workflow) if curation.self_service else [],
    }
    return render(request, "curation/edit.html", context, status=status)


@require_safe
@role_required(Role.ADMIN)
def parameter_row(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """One more blank parameter row for the editor (htmx), numbered after the rows on the page."""
    get_object_or_404(Workflow, pk=pk)
    try:
        index = int(request.GET.get(f"{PREFIX}-TOTAL_FORMS", ""))
    except ValueError:
        index = -1
    if not 0 <= index < MAX_PARAMETERS + BLANK_ROWS:
        return HttpResponseBadRequest("The page is out of date: reload it and try again.")
    formset = ParameterFormSet(prefix=PREFIX)
    form = formset.form(
        prefix=formset.add_prefix(index), empty_permitted=True, use_required_attribute=False
    )
    formset.add_fields(form, None)  # the Delete box every row has
    context = {"form": form, "total_forms": index + 1, "prefix": PREFIX}
    return render(request, "curation/_parameter_row.html", context)


@require_safe
@role_required(Role.ADMIN)
def export(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Download the whole curation as one JSON document (it holds no secret values)."""
    document = export_curation()
    response = HttpResponse(dump_curation(document), content_type="application/json")
    filename = f"nexthink-portal-curation-{document['exported_at'][:10]}.json"
    response["Content-Disposition"] = content_disposition_header(True, filename) or "attachment"
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(Role.ADMIN)
def import_document(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Upload or paste a curation document: applied whole, or refused with every error (400)."""
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        form = CurationImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                result = import_curation(
                    form.document(),
                    user=request.user,
                    replace_all=form.cleaned_data["replace_all"],
                    ip=client_address(request),
                )
            except CurationImportError as exc:
                errors = exc.errors
            else:
                messages.success(request, result.summary())
                for warning in result.warnings:
                    messages.warning(request, warning)
                return redirect("curation:list")
        messages.error(
            request,
            f"Nothing was imported: the document has {len(errors)} problem(s), listed below."
            if errors
            else "Nothing was imported: correct the form below.",
        )
        status = 400
    else:
        form = CurationImportForm()
    return render(request, "curation/import.html", {"form": form, "errors": errors}, status=status)
