"""What the JSON API takes and answers (pydantic, through django-ninja): the OpenAPI document's
components. Limits here are the form's: 100,000 targets, 500 characters of reason."""

from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from workflows_app.models import Run
from workflows_app.nexthink.models import Dependency, TriggerMethod
from workflows_app.selectors.catalogue import MAX_QUERY_LENGTH, SORTS
from workflows_app.services.params import MAX_VALUE_LENGTH
from workflows_app.targets import MAX_TARGETS_PER_RUN

ParamValue = StrictStr | StrictBool | StrictInt | StrictFloat


class ErrorItem(Schema):
    """One problem with the request: where (`field`, and `index` in a list) and what."""

    field: str
    index: int | None = None
    message: str


class ErrorOut(Schema):
    """Every error answer: a stable `code`, a sentence, and each problem when there are several."""

    code: str
    message: str
    errors: list[ErrorItem] = []


class ParameterOut(Schema):
    name: str
    label: str
    type: str
    required: bool
    default: str
    secret: bool
    choices: list[str]


class WorkflowOut(Schema):
    id: int
    kind: str = Field(description="workflow, or remote_action (classic; nql_id is its UID)")
    nql_id: str
    uuid: str
    name: str
    title: str
    description: str
    status: str
    dependency: str
    trigger_methods: list[str]
    last_update_time: datetime | None
    runnable: bool
    not_runnable_reason: str | None
    parameters: list[ParameterOut]


class WorkflowPage(Schema):
    items: list[WorkflowOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: none")


class WorkflowQuery(Schema):
    dependency: Dependency | None = None
    trigger: TriggerMethod | None = None
    q: str | None = Field(None, max_length=MAX_QUERY_LENGTH, description="Substring, or a glob")
    sort: str = Field("name", description="One of: " + ", ".join(SORTS))
    cursor: str | None = Field(None, max_length=40)
    size: int = Field(50, ge=1, le=200)


class RunIn(Schema):
    """A run to create: as the helpdesk form takes it, one target per item."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(
        max_length=256,
        description="A workflow's NQL id (#clear_cache), or a remote action's UID or name",
    )
    targets: list[StrictStr] = Field(max_length=MAX_TARGETS_PER_RUN)
    params: dict[str, ParamValue] = Field(default_factory=dict, max_length=200)
    reason: StrictStr = Field("", max_length=500)


class RunCreated(Schema):
    id: int
    url: str
    page_url: str
    status: str
    target_count: int
    duplicates: int
    created: bool = Field(description="False when an Idempotency-Key returned an earlier run")


class RunSummary(Schema):
    id: int
    url: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    requester: str
    role: str
    source: str = Field(description="One of: " + ", ".join(s.value for s in Run.Source))
    kind: str = Field(description="workflow, or remote_action (classic Act API)")
    workflow: str = Field(description="The workflow's NQL id, or the remote action's UID")
    workflow_name: str
    target_count: int
    outcome_counts: dict[str, int] = Field(description='By outcome; "" is not sent yet')
    reason: str


class RunPage(Schema):
    items: list[RunSummary]
    next_before: int | None = Field(description="Pass as `before` for the next page; null: none")
    warnings: list[str] = Field(description="Filters that were ignored, and why")


class EngineOut(Schema):
    """One Engine's answer to a remote action batch (classic Act API v2)."""

    databaseUid: str  # noqa: N815 (the Act API's spelling)
    code: str = Field(description="ok, timeout, engine_error, not_connected, excluded, ...")
    message: str


class BatchOut(Schema):
    number: int
    state: str
    target_count: int
    request_id: str
    error_code: str
    error_details: str
    outcome_counts: dict[str, int]
    engines: list[EngineOut] = Field(description="A remote action's Engines' answers; [] else")


class TargetOut(Schema):
    position: int
    kind: str
    value: str
    outcome: str = Field(description='"" before it is sent')
    status: str = Field(description="Nexthink's raw status")
    execution_id: str
    details: str


class ApprovalOut(Schema):
    """A run's (or flow run's) request for four-eyes approval."""

    state: str = Field(description="pending, approved, rejected or expired")
    approver_role: str = Field(description="The weakest role that may decide (admins always)")
    why: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str


class DecisionIn(Schema):
    """An approver's decision's comment (required to reject)."""

    model_config = ConfigDict(extra="forbid")

    comment: StrictStr = Field("", max_length=1000)


class RunDetail(RunSummary):
    approval: ApprovalOut | None = Field(
        None, description="Its request for approval, if it needed one"
    )
    params: dict[str, str] = Field(description="Secret values masked")
    batches: list[BatchOut]
    targets: list[TargetOut]
    next_after: int | None = Field(description="Pass as `after` for the next targets; null: none")


class ResumeIn(Schema):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, StrictStr] = Field(default_factory=dict)


class ResumeOut(Schema):
    id: int
    run: int
    execution_id: str
    request_uuid: str


MAX_PARAM_TEXT = MAX_VALUE_LENGTH
