"""The flows API: sorting, paging and the glob filter, versions, admins' edits (refusals for the
rest), import all or nothing with every error's path, and runs with an Idempotency-Key. Every
answer is checked against the served OpenAPI document (tests/api_support.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group

from tests.api_support import OPENAPI_URL, ApiClient
from tests.flow_support import catalogue, make_flow, run_flow, step
from workflows_app.models import Flow, FlowRun, FlowRunStatus, FlowVersion, Run
from workflows_app.roles import Role
from workflows_app.selectors import flows as flow_selectors
from workflows_app.services import api_tokens

pytestmark = pytest.mark.django_db
FLOWS = "/api/v1/flows"


@pytest.fixture
def admin_api(make_user: Any, sim_workflow: Any) -> ApiClient:
    catalogue(sim_workflow)
    return ApiClient(api_tokens.create_token(user=make_user("boss", Role.ADMIN), name="x").secret)


@pytest.fixture
def helpdesk_api(make_user: Any) -> ApiClient:
    return ApiClient(
        api_tokens.create_token(user=make_user("agent", Role.HELPDESK), name="y").secret
    )


def body(response: Any) -> Any:
    return json.loads(response.content)


def flow_input(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "steps": list(steps) or [step("clear")]}


def test_flows_are_in_the_openapi_document(client: Any) -> None:
    paths = json.loads(client.get(OPENAPI_URL).content)["paths"]
    assert set(paths["/api/v1/flows"]) == {"get", "post"}
    assert set(paths["/api/v1/flows/{flow_id}"]) == {"get", "patch", "delete"}
    assert "get" in paths["/api/v1/flows/{flow_id}/versions/{number}"]
    assert "post" in paths["/api/v1/flows/import"]
    assert "post" in paths["/api/v1/flows/{flow_id}/runs"]
    assert set(paths["/api/v1/flow-runs"]) == {"get"}
    names = {p["name"] for p in paths["/api/v1/flow-runs"]["get"]["parameters"]}
    assert names == {"flow", "status", "before"}


def test_list_sorts_pages_and_filters_names_with_a_glob(
    admin_api: ApiClient, helpdesk_api: ApiClient
) -> None:
    for name in ("Clear Teams cache", "Reset network", "clear outlook CACHE", "Fix disk"):
        assert admin_api.post(FLOWS, flow_input(name)).status_code == 201
    names = lambda r: [f["name"] for f in body(r)["items"]]  # noqa: E731
    assert names(helpdesk_api.get(FLOWS)) == [  # by name, whatever the case
        "clear outlook CACHE",
        "Clear Teams cache",
        "Fix disk",
        "Reset network",
    ]
    page = helpdesk_api.get(FLOWS, sortField="id", sortDirection="desc", perPage=2, page=1)
    assert names(page) == ["Reset network", "Clear Teams cache"]
    assert (body(page)["count"], body(page)["page"], body(page)["perPage"]) == (4, 1, 2)
    found = helpdesk_api.get(FLOWS, filterField="name", filter="clear*cache")
    assert names(found) == ["clear outlook CACHE", "Clear Teams cache"]
    assert body(found)["count"] == 2 and body(found)["items"][0]["steps_count"] == 1
    assert names(helpdesk_api.get(FLOWS, sortField="lastUpdated", sortDirection="desc"))[0] == (
        "Fix disk"
    )
    refused = helpdesk_api.get(FLOWS, sortField="colour", sortDirection="up", perPage=1001)
    assert refused.status_code == 422
    fields = sorted(e["field"] for e in body(refused)["errors"])
    assert fields == ["perPage"]  # the schema's limit first; then the values it cannot use
    refused = helpdesk_api.get(FLOWS, sortField="colour", sortDirection="up", filterField="id")
    assert sorted(e["field"] for e in body(refused)["errors"]) == [
        "filterField",
        "sortDirection",
        "sortField",
    ]


def test_every_edit_is_a_version_and_old_versions_stay_readable(
    admin_api: ApiClient, helpdesk_api: ApiClient
) -> None:
    created = admin_api.post(FLOWS, flow_input("Fix", step("clear")))
    flow_id = body(created)["id"]
    assert body(created)["version"] == "2.0" and body(created)["type"] == "IntegrationFlow"
    changed = admin_api.call(
        "patch", f"{FLOWS}/{flow_id}", {"steps": [step("clear"), step("disk", "clear")]}
    )
    assert changed.status_code == 200
    assert (body(changed)["name"], body(changed)["version_number"]) == ("Fix", 2)
    assert [s["id"] for s in body(helpdesk_api.get(f"{FLOWS}/{flow_id}"))["steps"]] == [
        "clear",
        "disk",
    ]
    old = helpdesk_api.get(f"{FLOWS}/{flow_id}/versions/1")
    assert [s["id"] for s in body(old)["steps"]] == ["clear"]
    assert body(old)["steps"][0]["exception_behavior"] == [
        {"type": "failure", "strategy": "stop"},
        {"type": "partial_success", "strategy": "continue"},
    ]
    assert helpdesk_api.get(f"{FLOWS}/{flow_id}/versions/3").status_code == 404
    assert helpdesk_api.get(f"{FLOWS}/999999").status_code == 404


def test_only_admins_change_flows(admin_api: ApiClient, helpdesk_api: ApiClient) -> None:
    flow_id = body(admin_api.post(FLOWS, flow_input("Fix")))["id"]
    assert helpdesk_api.post(FLOWS, flow_input("Mine")).status_code == 403
    assert helpdesk_api.call("patch", f"{FLOWS}/{flow_id}", {"name": "X"}).status_code == 403
    assert helpdesk_api.call("delete", f"{FLOWS}/{flow_id}").status_code == 403
    assert helpdesk_api.post(f"{FLOWS}/import", [flow_input("Y")]).status_code == 403
    assert ApiClient(None).get(FLOWS).status_code == 401
    assert ApiClient("nxp_nonsense").post(FLOWS, flow_input("Z")).status_code == 401
    assert admin_api.call("delete", f"{FLOWS}/{flow_id}").status_code == 204
    assert helpdesk_api.get(f"{FLOWS}/{flow_id}").status_code == 404
    assert Flow.objects.get().deleted_at is not None and Flow.objects.count() == 1


def test_an_invalid_flow_is_refused_with_every_problem_and_its_path(admin_api: ApiClient) -> None:
    answer = admin_api.post(
        FLOWS,
        flow_input(
            "Loop",
            step("clear", "disk"),
            step("disk", "clear", "nowhere"),
            {"name": "x", "referrer": "#nope"},
        ),
    )
    assert answer.status_code == 422
    assert [(e["field"], e["message"]) for e in body(answer)["errors"]] == [
        ("steps.1.depends_on.1", "no step 'nowhere' in this flow."),
        ("steps.2.referrer", "no workflow '#nope' in the catalogue."),
        (
            "steps.0.depends_on",
            "a cycle: clear → disk → clear (each waits for the next to end, so none could ever "
            "start).",
        ),
    ]
    schema = admin_api.post(FLOWS, {"name": "S", "steps": [{"referrer": 1, "colour": "red"}]})
    assert schema.status_code == 422
    assert {e["field"] for e in body(schema)["errors"]} == {
        "steps.0.referrer",
        "steps.0.colour",
    }
    assert not Flow.objects.exists()


def test_import_is_all_or_nothing_and_names_every_error(admin_api: ApiClient) -> None:
    admin_api.post(FLOWS, flow_input("Existing"))
    bad = [
        flow_input("New one"),
        flow_input("Existing", step("clear"), step("disk", "clear")),
        flow_input("Broken", {"name": "a", "referrer": "#nope"}),
        flow_input("new ONE"),
    ]
    answer = admin_api.post(f"{FLOWS}/import", bad)
    assert answer.status_code == 422
    assert [(e["field"], e["index"]) for e in body(answer)["errors"]] == [
        ("2.steps.0.referrer", 2),
        ("3.name", 3),
    ]
    assert list(Flow.objects.values_list("name", flat=True)) == ["Existing"]
    assert FlowVersion.objects.count() == 1
    good = admin_api.post(f"{FLOWS}/import", bad[:2])
    assert good.status_code == 201
    assert [(f["name"], f["version_number"]) for f in body(good)["items"]] == [
        ("New one", 1),
        ("Existing", 2),
    ]


def test_a_flow_run_with_an_idempotency_key_is_created_once(
    admin_api: ApiClient, helpdesk_api: ApiClient
) -> None:
    flow_id = body(admin_api.post(FLOWS, flow_input("Fix", step("clear"), step("disk", "clear"))))[
        "id"
    ]
    runs = f"{FLOWS}/{flow_id}/runs"
    wanted = {"targets": ["PC-1", "name:PC-2"], "reason": "INC0012345"}
    key = {"Idempotency-Key": "INC0012345-fix"}
    first = helpdesk_api.post(runs, wanted, headers=key)
    assert first.status_code == 202
    made = body(first)
    assert made["created"] and made["target_count"] == 2 and made["status"] == "in_progress"
    assert [(s["id"], s["state"]) for s in made["steps"]] == [
        ("clear", "started"),
        ("disk", "pending"),
    ]
    again = helpdesk_api.post(runs, wanted, headers=key)
    assert (again.status_code, body(again)["id"], body(again)["created"]) == (
        202,
        made["id"],
        False,
    )
    other = helpdesk_api.post(runs, {**wanted, "reason": "another"}, headers=key)
    assert other.status_code == 409 and body(other)["code"] == "idempotency_conflict"
    assert FlowRun.objects.count() == 1 and Run.objects.count() == 1
    assert helpdesk_api.post(runs, wanted).status_code == 202  # no key: a second flow run
    assert FlowRun.objects.count() == 2
    read = helpdesk_api.get(f"/api/v1/flow-runs/{made['id']}")
    assert (
        body(read)["steps"][0]["run"]
        == FlowRun.objects.get(pk=made["id"]).steps.get(step_id="clear").run_id
    )
    bad = helpdesk_api.post(runs, {"targets": ["a b c"], "reason": ""})
    assert bad.status_code == 422 and body(bad)["errors"][0]["field"] == "targets.0"
    users = helpdesk_api.post(runs, {"targets": ["upn:jane@example.com"], "reason": ""})
    assert users.status_code == 422 and body(users)["code"] == "not_runnable"
    listed = body(helpdesk_api.get(FLOWS))["items"][0]["latest_run"]
    assert listed["started_by"] == "agent" and listed["status"] == "in_progress"


FLOW_RUNS = "/api/v1/flow-runs"


def test_flow_runs_are_listed_newest_first_scoped_as_on_the_page_and_filtered(
    make_user: Any, sim_workflow: Any
) -> None:
    catalogue(sim_workflow)
    admin = make_user("boss", Role.ADMIN)
    fix = make_flow(admin, "Fix Teams", step("clear"))
    disk = make_flow(admin, "Free disk", step("disk"))
    agent, jane, john = (
        make_user("agent", Role.HELPDESK),
        make_user("jane", Role.EMPLOYEE),
        make_user("john", Role.EMPLOYEE),
    )
    by_agent = run_flow(agent, fix, "PC-1")
    by_jane = run_flow(agent, disk, "PC-2")
    by_john = run_flow(agent, fix, "PC-3")
    # As if each had run a self-service flow (the employees' way in) on their device.
    FlowRun.objects.filter(pk=by_jane.pk).update(created_by=jane)
    FlowRun.objects.filter(pk=by_john.pk).update(created_by=john)
    FlowRun.objects.filter(pk=by_agent.pk).update(status=FlowRunStatus.SUCCEEDED)
    boss = ApiClient(api_tokens.create_token(user=admin, name="t").secret)
    helpdesk = ApiClient(api_tokens.create_token(user=agent, name="t").secret)
    ids = lambda r: [f["id"] for f in body(r)["items"]]  # noqa: E731

    assert ids(boss.get(FLOW_RUNS)) == [by_john.pk, by_jane.pk, by_agent.pk]
    assert ids(helpdesk.get(FLOW_RUNS)) == ids(boss.get(FLOW_RUNS))
    first = body(boss.get(FLOW_RUNS))["items"][1]
    assert (first["flow"], first["flow_name"], first["requester"]) == (disk.pk, "Free disk", "jane")
    assert first["url"].endswith(f"/api/v1/flow-runs/{by_jane.pk}")
    assert first["page_url"].endswith(f"/flows/runs/{by_jane.pk}/")
    assert ids(boss.get(FLOW_RUNS, flow="teams")) == [by_john.pk, by_agent.pk]
    assert ids(boss.get(FLOW_RUNS, flow=str(disk.pk))) == [by_jane.pk]
    assert ids(boss.get(FLOW_RUNS, status="succeeded")) == [by_agent.pk]
    assert ids(boss.get(FLOW_RUNS, flow="fix", status="in_progress")) == [by_john.pk]
    odd = body(boss.get(FLOW_RUNS, status="green", before="x", flow="²"))
    assert odd["items"] == [] and len(odd["warnings"]) == 2
    assert body(boss.get(FLOW_RUNS, status="green"))["next_before"] is None

    # The page's selector scopes the list: an employee sees their own flow runs only...
    own = flow_selectors.flow_run_page(jane)
    assert [f.pk for f in own.flow_runs] == [by_jane.pk]
    assert flow_selectors.flow_run_page(jane, flow=str(fix.pk)).flow_runs == []
    # ...and an employee holds no token: one whose owner became an employee is refused.
    agent.groups.clear()
    agent.groups.add(Group.objects.get_or_create(name=Role.EMPLOYEE.value)[0])
    refused = helpdesk.get(FLOW_RUNS)
    assert refused.status_code == 403 and "items" not in body(refused)


def test_flow_runs_are_paged_by_id_with_next_before(
    make_user: Any, sim_workflow: Any, monkeypatch: Any
) -> None:
    catalogue(sim_workflow)
    admin = make_user("boss", Role.ADMIN)
    flow = make_flow(admin, "Fix", step("clear"))
    made = [run_flow(admin, flow, f"PC-{n}").pk for n in range(5)]
    monkeypatch.setattr(flow_selectors, "FLOW_RUN_PAGE_SIZE", 2)
    api = ApiClient(api_tokens.create_token(user=admin, name="t").secret)

    seen: list[int] = []
    before: int | None = None
    while True:
        page = body(api.get(FLOW_RUNS, **({"before": before} if before else {})))
        seen += [f["id"] for f in page["items"]]
        assert len(page["items"]) <= 2
        before = page["next_before"]
        if before is None:
            break
        assert before == seen[-1]
    assert seen == sorted(made, reverse=True)


def test_flow_runs_need_a_token_and_are_only_read(make_user: Any) -> None:
    assert ApiClient().get(FLOW_RUNS).status_code == 401
    user = make_user("agent", Role.HELPDESK)
    api = ApiClient(api_tokens.create_token(user=user, name="t").secret)
    answer = api.client.post(
        FLOW_RUNS,
        "{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert answer.status_code == 405
