"""Flows through the API: list (seed 004's sorting, paging and glob filter), read a flow or one
of its versions, create, edit and delete (admins), import a list all or nothing, run one, and
list or read the flow runs the caller may see."""

import re
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Body, Header, Query, Router, Status
from pydantic import ConfigDict, Field

from workflows_app import targets as targets_mod
from workflows_app.api.auth import audited, caller
from workflows_app.api.errors import ApiError, problem
from workflows_app.api.flow_output import (
    current_steps,
    flow_out,
    flow_run_out,
    flow_run_summary,
    summary,
)
from workflows_app.api.flow_schemas import (
    FlowImportOut,
    FlowOut,
    FlowPageOut,
    FlowRunIn,
    FlowRunOut,
    FlowRunPageOut,
)
from workflows_app.api.schemas import ErrorOut
from workflows_app.models import Flow, FlowRun, Run
from workflows_app.roles import Role, has_role
from workflows_app.selectors.flows import (
    MAX_PER_PAGE,
    NOT_A_FLOW_RUN_ID,
    SORT_FIELDS,
    flow_page,
    flow_run_filters,
    flow_run_page,
    latest_runs,
    one_flow,
    version_of,
    visible_flow_runs,
)
from workflows_app.services import flows as flow_service
from workflows_app.services import idempotency
from workflows_app.services.audit import client_address
from workflows_app.services.flow_rules import FlowIn, FlowStepIn
from workflows_app.services.flow_runs import FlowRunRefused, start_flow_run
from workflows_app.views.runs_follow import query_int

router = Router(tags=["flows"])
READ_ERRORS = {code: ErrorOut for code in (401, 403, 404, 422, 429)}
WRITE_ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 409, 422, 429)}
_INDEX = re.compile(r"\[(\d+)\]")


class FlowPatchIn(FlowIn):
    """The parts of a flow to change; the rest stays as the current version has it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(None, min_length=1, max_length=200)  # type: ignore[assignment]
    self_service: bool | None = None  # type: ignore[assignment]
    requires_approval: bool | None = None  # type: ignore[assignment]
    approver_role: Literal["", "Helpdesk", "Admin"] | None = None  # type: ignore[assignment]
    steps: list[FlowStepIn] | None = Field(None, min_length=1, max_length=50)  # type: ignore[assignment]


@router.get("/flows", response={200: FlowPageOut, **READ_ERRORS}, url_name="flows")
def list_flows(
    request: HttpRequest,
    sort_field: str = Query("name", alias="sortField"),
    sort_direction: str = Query("asc", alias="sortDirection"),
    page: int = Query(0, ge=0, le=1_000_000),
    per_page: int = Query(100, alias="perPage", ge=1, le=MAX_PER_PAGE),
    filter_field: str | None = Query(None, alias="filterField"),
    filter: str | None = Query(None, max_length=200),
) -> FlowPageOut:
    """Flows, sorted by `sortField` (name, id, creationDate, lastUpdated), `perPage` a page
    from `page` 0; `filterField=name` with `filter` keeps names matching a glob (`clear*cache`)."""
    caller(request)
    found = []
    if sort_field not in SORT_FIELDS:
        found.append(problem("sortField", "one of: " + ", ".join(SORT_FIELDS)))
    if sort_direction not in ("asc", "desc"):
        found.append(problem("sortDirection", "asc or desc"))
    if filter_field not in (None, "", "name"):
        found.append(problem("filterField", "only name can be filtered"))
    if filter and "\x00" in filter:
        found.append(problem("filter", "must not contain NUL characters"))
    if found:
        raise ApiError(422, "validation_error", "The query has problems; see `errors`.", found)
    glob = (filter or "").strip() if filter_field == "name" else ""
    result = flow_page(
        sort_field=sort_field,
        descending=sort_direction == "desc",
        page=page,
        per_page=per_page,
        name_glob=glob,
    )
    latest = latest_runs(result.flows)
    steps = current_steps(result.flows)
    return FlowPageOut(
        items=[summary(request, f, latest.get(f.pk), len(steps[f.pk])) for f in result.flows],
        count=result.count,
        page=page,
        perPage=per_page,
        sortField=sort_field,
        sortDirection=sort_direction,
        filterField=filter_field or None,
        filter=filter or None,
    )


@router.get("/flows/{int:flow_id}", response={200: FlowOut, **READ_ERRORS}, url_name="flow")
def get_flow(request: HttpRequest, flow_id: int) -> FlowOut:
    """A flow as its current version defines it."""
    caller(request)
    flow = _flow(flow_id)
    return flow_out(request, flow, version_of(flow))


@router.get(
    "/flows/{int:flow_id}/versions/{int:number}",
    response={200: FlowOut, **READ_ERRORS},
    url_name="flow_version",
)
def get_flow_version(request: HttpRequest, flow_id: int, number: int) -> FlowOut:
    """One version of a flow, as it was saved (runs record the version they ran)."""
    caller(request)
    flow = _flow(flow_id)
    version = version_of(flow, number)
    if version is None:
        raise ApiError(404, "not_found", f"Flow {flow_id} has no version {number}.")
    return flow_out(request, flow, version)


@router.post("/flows", response={201: FlowOut, **WRITE_ERRORS}, url_name="flows")
@audited
def create_flow(request: HttpRequest, payload: FlowIn) -> Status[FlowOut]:
    """Create a flow from a flow input (admins): 201; 422 lists every problem with its path."""
    user = _admin(request)
    try:
        flow = flow_service.create_flow(
            user=user, data=payload.model_dump(), ip=client_address(request)
        )
    except flow_service.FlowInvalid as exc:
        raise _invalid(exc) from None
    return Status(201, flow_out(request, flow, version_of(flow)))


@router.patch("/flows/{int:flow_id}", response={200: FlowOut, **WRITE_ERRORS}, url_name="flow")
@audited
def patch_flow(request: HttpRequest, flow_id: int, payload: FlowPatchIn) -> FlowOut:
    """Change a flow (admins): a new version from the current one and the fields given."""
    user = _admin(request)
    flow = _flow(flow_id)
    current = version_of(flow)
    assert current is not None
    data: dict[str, Any] = {
        "name": flow.name,
        "self_service": flow.self_service,
        "requires_approval": flow.requires_approval,
        "approver_role": flow.approver_role,
        "steps": current.steps,
        **payload.model_dump(exclude_unset=True),
    }
    try:
        flow_service.update_flow(flow=flow, user=user, data=data, ip=client_address(request))
    except flow_service.FlowInvalid as exc:
        raise _invalid(exc) from None
    return flow_out(request, flow, version_of(flow))


@router.delete("/flows/{int:flow_id}", response={204: None, **WRITE_ERRORS}, url_name="flow")
@audited
def delete_flow(request: HttpRequest, flow_id: int) -> Status[None]:
    """Delete a flow (admins): nobody sees or runs it any more; its runs stay in the history."""
    user = _admin(request)
    flow_service.delete_flow(flow=_flow(flow_id), user=user, ip=client_address(request))
    return Status(204, None)


@router.post(
    "/flows/import", response={201: FlowImportOut, **WRITE_ERRORS}, url_name="flows_import"
)
@audited
def import_flows(request: HttpRequest, payload: Body[list[FlowIn]]) -> Status[FlowImportOut]:
    """Import a JSON array of flow inputs (admins), all or nothing: a flow whose name exists gets
    a new version. 422 lists every problem with its path (`1.steps.0.referrer`)."""
    user = _admin(request)
    try:
        saved = flow_service.import_flows(
            user=user, items=[f.model_dump() for f in payload], ip=client_address(request)
        )
    except flow_service.FlowInvalid as exc:
        raise _invalid(exc) from None
    return Status(201, FlowImportOut(items=[flow_out(request, f, version_of(f)) for f in saved]))


@router.post(
    "/flows/{int:flow_id}/runs", response={202: FlowRunOut, **WRITE_ERRORS}, url_name="flow_runs"
)
@audited
def run_flow(
    request: HttpRequest,
    flow_id: int,
    payload: FlowRunIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=255),
) -> Status[FlowRunOut]:
    """Run a flow's current version on targets: 202; the same `Idempotency-Key` and body return
    the first flow run, another body is 409."""
    user = caller(request)
    if idempotency_key is not None and not _usable_key(idempotency_key):
        message = "Idempotency-Key: 1 to 255 printable ASCII characters."
        raise ApiError(422, "validation_error", message, [problem("Idempotency-Key", message)])
    flow = _flow(flow_id)
    parsed = targets_mod.parse_items(payload.targets)
    if parsed.errors:
        found = [
            problem(
                "targets" if e.line is None else f"targets.{e.line - 1}",
                e.reason,
                None if e.line is None else e.line - 1,
            )
            for e in parsed.errors
        ]
        raise ApiError(422, "validation_error", "The targets have problems.", found)
    if "\x00" in payload.reason:
        raise ApiError(422, "validation_error", "reason: no NUL", [problem("reason", "NUL")])

    def create() -> FlowRun:
        try:
            return start_flow_run(
                user=user,
                flow=flow,
                targets=parsed.targets,
                reason=payload.reason,
                source=Run.Source.API,
                ip=client_address(request),
            )
        except FlowRunRefused as exc:
            status, code = (403, "forbidden") if exc.forbidden else (422, "not_runnable")
            found = [problem("flow", m) for m in exc.messages]
            raise ApiError(status, code, str(exc), found) from None

    if idempotency_key is None:
        flow_run, created = create(), True
    else:
        body = {"flow": flow.pk, **payload.model_dump()}
        try:
            flow_run, created = idempotency.create_once(
                user=user, key=idempotency_key, body=body, create=create
            )
        except idempotency.KeyConflict as exc:
            raise ApiError(409, "idempotency_conflict", str(exc)) from None
    return Status(202, flow_run_out(request, flow_run, created=created))


@router.get("/flow-runs", response={200: FlowRunPageOut, **READ_ERRORS}, url_name="flow_run_list")
def list_flow_runs(
    request: HttpRequest,
    flow: str | None = Query(None, max_length=200),
    status: str | None = Query(None, max_length=50),
    before: str | None = Query(None, max_length=50),
) -> FlowRunPageOut:
    """The flow runs the caller may see (as on the flow runs page), newest first, 50 a page:
    `flow` a flow's id or part of its name, `status` one of the flow run statuses, `before`
    the `next_before` of the previous page. A value it cannot use is ignored and named in
    `warnings`."""
    user = caller(request)
    filters, ignored = flow_run_filters(flow, status)
    start = query_int(before)
    if before is not None and start is None:
        ignored.append(NOT_A_FLOW_RUN_ID)
    page = flow_run_page(user, before=start, flow=filters.flow, status=filters.status)
    return FlowRunPageOut(
        items=[flow_run_summary(request, r) for r in page.flow_runs],
        next_before=page.next_before,
        warnings=ignored,
    )


@router.get(
    "/flow-runs/{int:flow_run_id}", response={200: FlowRunOut, **READ_ERRORS}, url_name="flow_run"
)
def get_flow_run(request: HttpRequest, flow_run_id: int) -> FlowRunOut:
    """A flow run: its status and each step's state, outcome and run."""
    rows = visible_flow_runs(caller(request))
    flow_run = rows.filter(pk=flow_run_id).first() if flow_run_id < 2**31 else None
    if flow_run is None:
        raise ApiError(404, "not_found", f"No flow run {flow_run_id} you may open.")
    return flow_run_out(request, flow_run)


# --- helpers -------------------------------------------------------------------------------


def _flow(flow_id: int) -> Flow:
    flow = one_flow(flow_id)
    if flow is None:
        raise ApiError(404, "not_found", f"No flow {flow_id}.")
    return flow


def _admin(request: HttpRequest) -> Any:
    user = caller(request)
    if not has_role(user, Role.ADMIN):
        raise ApiError(403, "forbidden", "Only admins change flows.")
    return user


def _invalid(exc: flow_service.FlowInvalid) -> ApiError:
    """Every problem as an error item, its path dotted like the schema's (`steps.0.referrer`)."""
    found = []
    for text in exc.errors:
        path, _, message = text.partition(": ")
        dotted = _INDEX.sub(r".\1", path).lstrip(".")
        index = next((int(n) for n in _INDEX.findall(path)), None)
        found.append(problem(dotted, message, index))
    return ApiError(422, "validation_error", str(exc), found)


def _usable_key(key: str) -> bool:
    return 0 < len(key) <= idempotency.MAX_KEY_LENGTH and key.isascii() and key.isprintable()
