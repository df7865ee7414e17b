"""Flows in the curation JSON: exported beside the workflows, imported with them all or nothing
(a flow's parameters are checked against the definitions the same document sets)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.flow_support import catalogue, make_flow, step
from workflows_app.models import Flow, FlowVersion, ParameterDefinition, WorkflowCuration
from workflows_app.roles import Role
from workflows_app.services.curation import export_curation, import_curation
from workflows_app.services.curation_document import CurationImportError

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user: Any, sim_workflow: Any) -> Any:
    catalogue(sim_workflow)
    return make_user("boss", Role.ADMIN)


def test_a_portal_without_flows_exports_what_it_always_did(admin: Any) -> None:
    assert "flows" not in export_curation()


def test_flows_travel_in_the_curation_document(admin: Any) -> None:
    make_flow(admin, "Fix", step("clear"), step("disk", "clear"))
    document = export_curation()
    assert [f["name"] for f in document["flows"]] == ["Fix"]
    assert [s["id"] for s in document["flows"][0]["steps"]] == ["clear", "disk"]
    Flow.objects.all().delete()
    import_curation(document, user=admin)
    flow = Flow.objects.get()
    assert (flow.name, flow.version, [s["id"] for s in flow.current.steps]) == (
        "Fix",
        1,
        ["clear", "disk"],
    )


def test_a_flow_is_checked_against_the_parameters_the_same_document_defines(admin: Any) -> None:
    document = {
        "format": "nexthink-portal-curation",
        "version": 1,
        "workflows": [
            {
                "nql_id": "#collect_diagnostics_logs",
                "parameters": [{"name": "LogLevel", "type": "choice", "choices": ["Basic"]}],
            }
        ],
        "flows": [
            {"name": "Logs", "steps": [step("logs", params={"LogLevel": "Basic"})]},
        ],
    }
    import_curation(document, user=admin)
    assert Flow.objects.get().current.steps[0]["params"] == {"LogLevel": "Basic"}


def test_a_bad_flow_applies_nothing_of_the_document(admin: Any) -> None:
    document = {
        "format": "nexthink-portal-curation",
        "version": 1,
        "workflows": [{"nql_id": "#clear_teams_cache", "self_service": True, "title": "Teams"}],
        "flows": [
            {"name": "Good", "steps": [step("clear")]},
            {"name": "Bad", "steps": [step("clear", "clear")]},
        ],
    }
    with pytest.raises(CurationImportError) as refused:
        import_curation(document, user=admin)
    assert refused.value.errors == [
        "flows[1].steps[0].depends_on[0]: a step cannot depend on itself."
    ]
    assert not Flow.objects.exists() and not FlowVersion.objects.exists()
    assert not WorkflowCuration.objects.exists() and not ParameterDefinition.objects.exists()
