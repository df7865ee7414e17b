"""GET /api/v1/workflows: the catalogue as the caller may see it (selectors/catalogue.py)."""

import base64
import binascii

from django.http import HttpRequest
from ninja import Query, Router

from workflows_app import permissions
from workflows_app.api.auth import caller
from workflows_app.api.errors import ApiError, problem
from workflows_app.api.schemas import (
    ErrorOut,
    ParameterOut,
    WorkflowOut,
    WorkflowPage,
    WorkflowQuery,
)
from workflows_app.forms.runs import choice_options
from workflows_app.models import Run, Workflow
from workflows_app.models.catalogue import TRIGGER_FIELDS
from workflows_app.selectors.catalogue import SORTS, visible_workflows

router = Router(tags=["workflows"])
ERRORS = {code: ErrorOut for code in (401, 403, 422, 429)}


@router.get("/workflows", response={200: WorkflowPage, **ERRORS}, url_name="workflows")
def list_workflows(request: HttpRequest, filters: Query[WorkflowQuery]) -> WorkflowPage:
    """The workflows the caller may see, filtered and sorted as on the catalogue; cursor pages."""
    if filters.sort not in SORTS:
        raise _invalid("sort", "one of " + ", ".join(SORTS))
    if filters.q is not None and "\x00" in filters.q:
        raise _invalid("q", "must not contain NUL characters")
    offset = _offset(filters.cursor)
    user = caller(request)
    rows = visible_workflows(
        user, dependency=filters.dependency, trigger=filters.trigger, q=filters.q, sort=filters.sort
    ).prefetch_related("parameters")
    page = list(rows[offset : offset + filters.size + 1])
    more = len(page) > filters.size
    items = [_workflow(user, w) for w in page[: filters.size]]
    return WorkflowPage(items=items, next_cursor=_cursor(offset + filters.size) if more else None)


def _workflow(user: object, workflow: Workflow) -> WorkflowOut:
    refused = permissions.refusal(user, workflow, Run.Source.API)  # type: ignore[arg-type]
    curation = workflow.curation_or_none
    return WorkflowOut(
        id=workflow.pk,
        kind=workflow.kind,
        nql_id=workflow.nql_id,
        uuid=workflow.uuid,
        name=workflow.name,
        title=curation.title if curation is not None else "",
        description=workflow.description,
        status=workflow.status,
        dependency=workflow.dependency,
        trigger_methods=[str(m) for m, field in TRIGGER_FIELDS.items() if getattr(workflow, field)],
        last_update_time=workflow.last_update_time,
        runnable=refused is None,
        not_runnable_reason=refused.message if refused is not None else None,
        parameters=[
            ParameterOut(
                name=d.name,
                label=d.label or d.name,
                type=d.type,
                required=d.required,
                default="" if d.secret else d.default,
                secret=d.secret,
                choices=[value for value, _ in choice_options(d.choices)],
            )
            for d in sorted(workflow.parameters.all(), key=lambda d: (d.position, d.pk))
        ],
    )


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    """The position an opaque cursor stands for; a cursor this API did not make is a 422."""
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    digits = text[1:]
    if not (text.startswith("o") and digits.isascii() and digits.isdigit() and len(digits) < 9):
        raise _invalid("cursor", "not a cursor of this list: use `next_cursor` as given")
    return int(digits)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", [problem(field, message)])
