"""Runs through the API: create one (the form's rules), list them (the history's filters), read
one with its batches and targets. Each reuses the portal's one home for its rule."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from ninja import Header, Router, Status

from workflows_app import permissions
from workflows_app import targets as targets_mod
from workflows_app.api.approvals import approval_out
from workflows_app.api.auth import audited, caller
from workflows_app.api.errors import ApiError, problem
from workflows_app.api.schemas import (
    BatchOut,
    EngineOut,
    ErrorOut,
    RunCreated,
    RunDetail,
    RunIn,
    RunPage,
    RunSummary,
    TargetOut,
)
from workflows_app.forms.runs import as_text
from workflows_app.models import Run, Workflow
from workflows_app.selectors.approvals import approval_of_run
from workflows_app.selectors.history import history_page, parse_filters
from workflows_app.selectors.runs import details_of, one_run, outcome_counts, target_page
from workflows_app.services import idempotency
from workflows_app.services.audit import client_address
from workflows_app.services.params import validate_params
from workflows_app.services.remote_actions import find_remote_action
from workflows_app.services.runs import RunRefused, create_permitted_run
from workflows_app.views.runs_follow import query_int

router = Router(tags=["runs"])
READ_ERRORS = {code: ErrorOut for code in (401, 403, 404, 422, 429)}
CREATE_ERRORS = {code: ErrorOut for code in (400, 401, 403, 409, 422, 429)}
MAX_TARGET_PAGE = 1_000


@router.post("/runs", response={202: RunCreated, **CREATE_ERRORS}, url_name="runs")
@audited
@sensitive_variables()  # parameter values (secrets) stay out of error reports
def create_run(
    request: HttpRequest,
    payload: RunIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
) -> Status[RunCreated]:
    """Start a run: 202 with its id and URL; 422 lists every problem (targets by index)."""
    user = caller(request)
    if idempotency_key is not None and not _usable_key(idempotency_key):
        raise ApiError(
            422,
            "validation_error",
            "Idempotency-Key: 1 to 255 printable ASCII characters.",
            [problem("Idempotency-Key", "1 to 255 printable ASCII characters")],
        )
    workflow = _workflow(payload.workflow)
    try:
        permit = permissions.permit(user, workflow, Run.Source.API)
    except permissions.NotAllowed as exc:
        raise ApiError(403, "forbidden", exc.message) from None
    except permissions.Refusal as exc:
        raise ApiError(
            422, "not_runnable", exc.message, [problem("workflow", exc.message)]
        ) from None
    parsed, params = _checked(workflow, payload)

    def create() -> Run:
        try:
            return create_permitted_run(
                permit,
                targets=parsed.targets,
                params=params,
                reason=payload.reason,
                duplicate_count=parsed.duplicates,
                ip=client_address(request),
            )
        except RunRefused as exc:
            if exc.existing_run is not None:
                message = f"{exc.message} (run {exc.existing_run.pk}); send an Idempotency-Key."
                raise ApiError(409, "duplicate_run", message) from None
            raise ApiError(422, "validation_error", exc.message) from None

    if idempotency_key is None:
        run, created = create(), True
    else:
        try:
            run, created = idempotency.create_once(
                user=user, key=idempotency_key, body=payload.model_dump(), create=create
            )
        except idempotency.KeyConflict as exc:
            raise ApiError(409, "idempotency_conflict", str(exc)) from None
    return Status(
        202,
        RunCreated(
            id=run.pk,
            url=request.build_absolute_uri(reverse("api:run", args=[run.pk])),
            page_url=request.build_absolute_uri(reverse("runs:detail", args=[run.pk])),
            status=run.status,
            target_count=run.target_count,
            duplicates=run.duplicate_count,
            created=created,
        ),
    )


@router.get("/runs", response={200: RunPage, **READ_ERRORS}, url_name="runs")
def list_runs(
    request: HttpRequest,
    workflow: str | None = None,
    kind: str | None = None,
    requester: str | None = None,
    role: str | None = None,
    source: str | None = None,
    status: str | None = None,
    outcome: str | None = None,
    target: str | None = None,
    reason: str | None = None,
    since: str | None = None,
    until: str | None = None,
    mine: str | None = None,
    help: str | None = None,  # 1: only runs an employee asked the helpdesk's help with
    before: str | None = None,
) -> RunPage:
    """The runs the caller may review, newest first, 50 a page: the history page's filters.

    A filter it cannot use is ignored and named in `warnings`, as on the page.
    """
    user = caller(request)
    filters, ignored = parse_filters(request.GET, user)
    start = query_int(before)
    if before is not None and start is None:
        ignored.append("'before' is not a run id: showing the newest.")
    page = history_page(user, filters, before=start)
    return RunPage(
        items=[_summary(request, run) for run in page.runs],
        next_before=page.next_before,
        warnings=ignored,
    )


@router.get("/runs/{int:run_id}", response={200: RunDetail, **READ_ERRORS}, url_name="run")
def get_run(
    request: HttpRequest, run_id: int, after: int | None = None, size: int = 100
) -> RunDetail:
    """One run: status, batches, and a page of its targets with outcome and execution id."""
    if not 1 <= size <= MAX_TARGET_PAGE or (after is not None and not 0 <= after < 2**31):
        message = f"size is 1 to {MAX_TARGET_PAGE}; after a position from a previous page"
        raise ApiError(422, "validation_error", message, [problem("size", message)])
    run = one_run(caller(request), run_id) if run_id < 2**31 else None
    if run is None:
        raise ApiError(404, "not_found", f"No run {run_id} you may open.")
    page = target_page(run, after=after, size=size)
    approval = approval_of_run(run)
    return RunDetail(
        **_summary(request, run).model_dump(),
        approval=approval_out(approval) if approval is not None else None,
        params={str(k): str(v) for k, v in (run.params or {}).items()},
        batches=[
            BatchOut(
                number=b.number,
                state=b.state,
                target_count=b.target_count,
                request_id=b.request_uuid,
                error_code=b.error_code,
                error_details=b.error_details,
                outcome_counts={str(k): int(v) for k, v in (b.outcome_counts or {}).items()},
                engines=[
                    EngineOut(
                        databaseUid=str(e.get("databaseUid", "")),
                        code=str(e.get("code", "")),
                        message=str(e.get("message", "")),
                    )
                    for e in b.engine_results or []
                ],
            )
            for b in run.batches.order_by("number")
        ],
        targets=[
            TargetOut(
                position=t.position,
                kind=t.kind,
                value=t.value,
                outcome=t.outcome,
                status=t.status,
                execution_id=t.execution_uuid,
                details=details_of(t),
            )
            for t in page.targets
        ],
        next_after=page.next_after,
    )


def run_url(request: HttpRequest, run_id: int) -> str:
    """The absolute API URL of one run (also a flow step's run, api/flow_output.py)."""
    return request.build_absolute_uri(reverse("api:run", args=[run_id]))


def _summary(request: HttpRequest, run: Run) -> RunSummary:
    return RunSummary(
        id=run.pk,
        url=run_url(request, run.pk),
        status=run.status,
        created_at=run.created_at,
        finished_at=run.finished_at,
        requester=run.created_by.get_username(),
        role=run.role,
        source=run.source,
        kind=run.kind,
        workflow=run.workflow_nql_id,
        workflow_name=run.workflow_name,
        target_count=run.target_count,
        outcome_counts=outcome_counts(run),
        reason=run.reason,
    )


def _usable_key(key: str) -> bool:
    return 0 < len(key) <= idempotency.MAX_KEY_LENGTH and key.isascii() and key.isprintable()


def _workflow(nql_id: str) -> Workflow:
    """Any workflow of the catalogue by NQL id (with or without '#'), or a registered remote
    action by UID or name; the run rule decides."""
    wanted = "#" + nql_id.strip().lstrip("#")
    if "\x00" in wanted:
        raise ApiError(
            422, "validation_error", "Unknown workflow.", [problem("workflow", "unknown")]
        )
    found = Workflow.objects.select_related("curation").filter(nql_id=wanted).first()
    if found is None and not nql_id.strip().startswith("#"):
        found = find_remote_action(nql_id)
    if found is None:
        message = f"No workflow {wanted[:100]!r} in the catalogue."
        raise ApiError(422, "validation_error", message, [problem("workflow", message)])
    return found


@sensitive_variables()
def _checked(
    workflow: Workflow, payload: RunIn
) -> tuple[targets_mod.ParsedTargets, dict[str, str]]:
    """The targets and parameters, or one 422 listing every problem of both."""
    found: list[dict[str, Any]] = []
    parsed = targets_mod.parse_items(payload.targets, classic=workflow.is_remote_action)
    for error in parsed.errors:
        index = error.line - 1 if error.line is not None else None
        found.append(
            problem("targets" if index is None else f"targets.{index}", error.reason, index)
        )
    if parsed.errors_truncated:
        found.append(problem("targets", f"…and {parsed.errors_truncated:,} more errors"))
    if not parsed.errors:
        for message in targets_mod.check_dependency(
            parsed.targets, str(workflow.dependency).upper()
        ):
            found.append(problem("targets", message))
    submitted = {name: _text(value) for name, value in payload.params.items()}
    for name, value in submitted.items():
        if "\x00" in name or "\x00" in value:
            found.append(problem(f"params.{name.replace(chr(0), '')}", "must not contain NUL"))
    clean, errors = validate_params(workflow, submitted)
    found += [problem(f"params.{name}", message) for name, message in errors.items()]
    if "\x00" in payload.reason:
        found.append(problem("reason", "must not contain NUL characters"))
    if found:
        message = f"The run was not created: {len(found)} problem(s); see `errors`."
        raise ApiError(422, "validation_error", message, found)
    return parsed, clean


def _text(value: object) -> str:
    """A JSON parameter value as the text Nexthink takes (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return as_text(value)
