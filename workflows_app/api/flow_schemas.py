"""What the flows API takes and answers (seed 003's model, seed 004's list conventions)."""

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictStr

from workflows_app.api.schemas import ApprovalOut
from workflows_app.models import FlowRunStatus
from workflows_app.targets import MAX_TARGETS_PER_RUN


class ExceptionBehaviorOut(Schema):
    type: Literal["failure", "partial_success"]
    strategy: Literal["stop", "continue"]


class FlowStepOut(Schema):
    id: str
    referrer: str = Field(description="The workflow's NQL id")
    name: str
    type: Literal["Integration"]
    params: dict[str, str]
    depends_on: list[str]
    is_skipped: bool
    exception_behavior: list[ExceptionBehaviorOut]
    run_on: Literal["all", "succeeded", "failed"] = Field(
        description="All the flow's targets, or those that succeeded / failed in its dependencies"
    )


class LatestRunOut(Schema):
    id: int
    url: str
    started_at: datetime
    started_by: str
    status: str


class FlowSummaryOut(Schema):
    id: int
    name: str
    steps_count: int
    created_by: str
    creation_date: datetime
    modified_by: str | None
    modification_date: datetime
    latest_run: LatestRunOut | None
    self_service: bool = Field(description="Offered to employees as one fix")
    version_number: int = Field(description="The current version (every edit makes one)")


class FlowOut(FlowSummaryOut):
    version: Literal["2.0"]
    type: Literal["IntegrationFlow"]
    steps: list[FlowStepOut]


class FlowPageOut(Schema):
    items: list[FlowSummaryOut]
    count: int = Field(description="How many flows match in all")
    page: int
    perPage: int
    sortField: str
    sortDirection: str
    filterField: str | None
    filter: str | None


class FlowImportOut(Schema):
    items: list[FlowOut]


class FlowRunIn(Schema):
    """A flow run to start: the targets (one per item, as pasted lines) and a reason."""

    model_config = ConfigDict(extra="forbid")

    targets: list[StrictStr] = Field(max_length=MAX_TARGETS_PER_RUN)
    reason: StrictStr = Field("", max_length=500)


class FlowRunStepOut(Schema):
    id: str
    state: str
    outcome: str = Field(description='success, partial_success, failure; "" while not ended')
    reason: str = Field(description="Why it did not start (or could not be sent)")
    run: int | None
    run_url: str | None


class FlowRunSummaryOut(Schema):
    id: int
    url: str
    page_url: str
    flow: int
    flow_name: str = Field(description="The flow's name in the version it ran")
    version_number: int
    status: str = Field(description="One of: " + ", ".join(s.value for s in FlowRunStatus))
    stop_reason: str
    target_count: int
    created_at: datetime
    finished_at: datetime | None
    requester: str
    reason: str


class FlowRunPageOut(Schema):
    items: list[FlowRunSummaryOut]
    next_before: int | None = Field(description="Pass as `before` for the next page; null: none")
    warnings: list[str] = Field(description="Filters that were ignored, and why")


class FlowRunOut(FlowRunSummaryOut):
    approval: ApprovalOut | None = Field(
        None, description="Its request for approval, if it needed one"
    )
    steps: list[FlowRunStepOut]
    created: bool = Field(True, description="False when an Idempotency-Key returned it again")


# Flow inputs are read by services.flow_rules (its schema there) so every error has its path.
FlowBody = dict[str, Any]
