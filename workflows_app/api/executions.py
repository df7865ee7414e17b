"""POST /api/v1/executions/<uuid>/resume: services/resume.py's rules, answered as JSON."""

from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables
from ninja import Router

from workflows_app.api.auth import audited, caller
from workflows_app.api.errors import ApiError, problem
from workflows_app.api.schemas import ErrorOut, ResumeIn, ResumeOut
from workflows_app.models import Run
from workflows_app.services.audit import client_address
from workflows_app.services.resume import ResumeRefused, parameter_problems, resume_execution

router = Router(tags=["executions"])
ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 409, 422, 429, 503)}
# The service's statuses, as the API's codes; its 400 (not waiting) is a conflict here.
CODES = {
    403: (403, "forbidden"),
    404: (404, "not_found"),
    400: (409, "not_waiting"),
    429: (429, "upstream_rate_limited"),
    503: (503, "unavailable"),
}


@router.post(
    "/executions/{execution_uuid}/resume",
    response={200: ResumeOut, **ERRORS},
    url_name="resume",
)
@audited
@sensitive_variables()  # parameter values stay out of error reports
def resume(request: HttpRequest, execution_uuid: str, payload: ResumeIn) -> ResumeOut:
    """Resume an execution waiting for an event, with `parameters` sent as given."""
    problems = parameter_problems(payload.parameters)
    if any("\x00" in f"{name}{value}" for name, value in payload.parameters.items()):
        problems.append("Names and values must not contain NUL characters.")
    if problems:
        found = [problem("parameters", message) for message in problems]
        raise ApiError(422, "validation_error", " ".join(problems), found)
    try:
        resumption = resume_execution(
            user=caller(request),
            execution_uuid=execution_uuid,
            params=payload.parameters,
            source=Run.Source.API,
            ip=client_address(request),
        )
    except ResumeRefused as exc:
        status, code = CODES.get(exc.status, (exc.status, "refused"))
        raise ApiError(status, code, exc.message) from None
    return ResumeOut(
        id=resumption.pk,
        run=resumption.run_id,
        execution_id=resumption.execution_uuid,
        request_uuid=resumption.request_uuid,
    )
