"""Flow pages: the admins' editor (add a step, save, every problem on its step), the graph, the
run form, the live flow run page, export and import. Who may use each URL is swept in
test_no_server_errors.py; here the refusals that matter most are asserted by hand."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.urls import reverse

from tests.flow_support import catalogue, make_flow, run_flow, step
from workflows_app.models import (
    AuditAction,
    AuditEvent,
    Flow,
    FlowRun,
    FlowRunStatus,
    FlowVersion,
    ParameterDefinition,
    Workflow,
)
from workflows_app.roles import Role
from workflows_app.services import flows, pending_runs
from workflows_app.views import flow_runs as flow_run_views

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user: Any, sim_workflow: Any) -> Any:
    catalogue(sim_workflow)
    return make_user("boss", Role.ADMIN)


def token_of(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "no confirmation token on the page"
    return match.group(1)


def editor_post(name: str, *rows: dict[str, str], action: str = "save") -> dict[str, str]:
    data = {"name": name, "rows": str(len(rows)), "action": action}
    for i, row in enumerate(rows):
        data.update({f"step-{i}-{k}": v for k, v in row.items()})
    return data


def test_an_admin_composes_a_flow_step_by_step(client_for: Any, admin: Any) -> None:
    client = client_for(admin)
    page = client.get(reverse("flows:new"))
    assert page.status_code == 200 and b'name="step-0-referrer"' in page.content
    first = {"id": "clear", "referrer": "#clear_teams_cache"}
    added = client.post(reverse("flows:new"), editor_post("Teams", first, action="add"))
    assert added.status_code == 200 and b'name="step-1-referrer"' in added.content
    assert not Flow.objects.exists()
    second = {
        "id": "logs",
        "referrer": "#collect_diagnostics_logs",
        "depends_on": "clear",
        "on_failure": "continue",
        "run_on": "failed",
    }
    saved = client.post(reverse("flows:new"), editor_post("Teams", first, second, {"id": ""}))
    flow = Flow.objects.get()
    assert saved.status_code == 302 and saved["Location"] == reverse("flows:detail", args=[flow.pk])
    steps = flow.current.steps
    assert [(s["id"], s["depends_on"], s["run_on"]) for s in steps] == [
        ("clear", [], "all"),
        ("logs", ["clear"], "failed"),
    ]
    assert steps[1]["exception_behavior"][0] == {"type": "failure", "strategy": "continue"}
    detail = client.get(reverse("flows:detail", args=[flow.pk])).content.decode()
    assert 'data-testid="flow-graph"' in detail and 'data-step-node="logs"' in detail
    assert "run-on-failed" in detail  # the edge into "logs" says it runs on failed targets


def test_the_editor_shows_every_problem_on_its_step_and_saves_nothing(
    client_for: Any, admin: Any
) -> None:
    flow = make_flow(admin, "Fix", step("clear"))
    answer = client_for(admin).post(
        reverse("flows:edit", args=[flow.pk]),
        editor_post(
            "Fix",
            {"id": "clear", "referrer": "#clear_teams_cache", "depends_on": "later"},
            {"id": "later", "referrer": "#free_up_disk_space", "depends_on": "clear"},
        ),
    )
    assert answer.status_code == 400
    html = answer.content.decode()
    assert 'data-testid="step-errors-0"' in html
    assert "a cycle: clear → later → clear" in html
    assert FlowVersion.objects.filter(flow=flow).count() == 1


def test_helpdesk_cannot_edit_and_nothing_is_written(client_for: Any, admin: Any, helpdesk: Any):
    flow = make_flow(admin, "Fix", step("clear"))
    client = client_for(helpdesk)
    assert client.get(reverse("flows:edit", args=[flow.pk])).status_code == 403
    assert client.post(reverse("flows:delete", args=[flow.pk])).status_code == 403
    assert client.post(reverse("flows:import"), {"text": "[]"}).status_code == 403
    assert client.get(reverse("flows:delete", args=[flow.pk])).status_code == 405
    flow.refresh_from_db()
    assert flow.deleted_at is None and flow.version == 1


def test_helpdesk_runs_a_flow_and_follows_it_live(
    client_for: Any, admin: Any, helpdesk: Any, enqueued: list[int]
) -> None:
    flow = make_flow(admin, "Fix", step("clear"), step("disk", "clear"))
    client = client_for(helpdesk)
    refused = client.post(reverse("flows:start", args=[flow.pk]), {"targets_text": "a b"})
    assert refused.status_code == 400 and b"Line 1" in refused.content
    asked = client.post(
        reverse("flows:start", args=[flow.pk]),
        {"targets_text": "PC-1\nPC-2", "reason": "INC0012345"},
    )
    assert asked.status_code == 200 and not FlowRun.objects.exists()
    confirm = reverse("flows:confirm", args=[flow.pk])
    started = client.post(confirm, {"token": token_of(asked.content.decode())})
    flow_run = FlowRun.objects.get()
    assert started.status_code == 302
    assert started["Location"] == reverse("flows:run", args=[flow_run.pk])
    page = client.get(started["Location"]).content.decode()
    clear_run = flow_run.steps.get(step_id="clear").run_id
    assert f'href="{reverse("runs:detail", args=[clear_run])}"' in page
    assert 'data-polling="true"' in page and 'data-state="pending"' in page
    assert AuditEvent.objects.filter(action=AuditAction.FLOW_RUN_CREATED).count() == 1
    FlowRun.objects.filter(pk=flow_run.pk).update(status="stopped")
    last = client.get(
        reverse("flows:run_progress", args=[flow_run.pk]), headers={"HX-Request": "true"}
    )
    assert last.status_code == 286  # htmx: stop polling
    assert b'data-polling="false"' in last.content


def test_export_then_import_round_trips_and_a_bad_import_applies_nothing(
    client_for: Any, admin: Any
) -> None:
    make_flow(admin, "Fix", step("clear"), step("disk", "clear", run_on="succeeded"))
    client = client_for(admin)
    exported = client.get(reverse("flows:export"))
    document = json.loads(exported.content)
    assert document["format"] == "nexthink-portal-flows"
    assert [s["id"] for s in document["flows"][0]["steps"]] == ["clear", "disk"]
    broken = {
        **document,
        "flows": [*document["flows"], {"name": "X", "steps": [{"referrer": "#no"}]}],
    }
    refused = client.post(reverse("flows:import"), {"text": json.dumps(broken)})
    assert refused.status_code == 400
    assert "flows[1].steps[0].referrer: no workflow &#x27;#no&#x27; in the catalogue." in (
        refused.content.decode()
    )
    assert FlowVersion.objects.count() == 1
    imported = client.post(reverse("flows:import"), {"text": json.dumps(document)})
    assert imported.status_code == 302
    flow = Flow.objects.get()
    assert flow.version == 2 and flow.current.steps == document["flows"][0]["steps"]


def test_an_employee_runs_a_flow_offered_for_self_service_on_their_own_device(
    client_for: Any,
    admin: Any,
    employee: Any,
    nexthink_settings: Any,
    simulator: Any,
    enqueued: Any,
) -> None:
    hidden = make_flow(admin, "Hidden", step("clear"))
    offered = flows.create_flow(
        user=admin,
        data={
            "name": "Teams and disk",
            "self_service": True,
            "steps": [step("clear"), step("disk", "clear")],
        },
    )
    client = client_for(employee)
    home = client.get(reverse("self_service:home")).content.decode()
    assert reverse("flows:fix", args=[offered.pk]) in home and "Hidden" not in home
    assert client.get(reverse("flows:fix", args=[hidden.pk])).status_code == 404
    assert client.get(reverse("flows:start", args=[offered.pk])).status_code == 403
    own = simulator.inventory.devices_of("employee@example.com")[0]
    other = simulator.inventory.devices_of("helpdesk@example.com")[0]
    page = client.get(reverse("flows:fix", args=[offered.pk])).content.decode()
    assert own.name in page
    refused = client.post(reverse("flows:fix", args=[offered.pk]), {"device": other.collector_uid})
    assert refused.status_code == 400 and not FlowRun.objects.exists()
    started = client.post(reverse("flows:fix", args=[offered.pk]), {"device": own.collector_uid})
    flow_run = FlowRun.objects.get()
    assert started.status_code == 302 and flow_run.source == "self_service"
    run = flow_run.steps.get(step_id="clear").run
    # The workflow itself is not curated for self-service: the admin offered the flow as a whole.
    assert run is not None and run.source == "self_service" and run.created_by == employee
    assert list(run.targets.values_list("value", flat=True)) == [own.collector_uid.lower()]
    assert client.get(reverse("flows:run", args=[flow_run.pk])).status_code == 200


def test_flow_runs_are_in_their_history_and_csv_each_person_seeing_theirs(
    client_for: Any, admin: Any, helpdesk: Any, employee: Any, enqueued: Any
) -> None:
    flow = make_flow(admin, "Fix", step("clear"), step("disk", "clear"))
    mine = run_flow(helpdesk, flow, "PC-1")
    theirs = run_flow(admin, flow, "PC-2")
    listed = client_for(helpdesk).get(reverse("flows:runs")).content.decode()
    assert f'data-flow-run="{mine.pk}"' in listed and f'data-flow-run="{theirs.pk}"' in listed
    csv = b"".join(client_for(helpdesk).get(reverse("flows:runs_export")).streaming_content)
    lines = csv.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("flow_run,started_at,flow,version,requester")
    assert len(lines) == 3 and lines[1].startswith(f"{theirs.pk},")
    clear_run = mine.steps.get(step_id="clear").run_id
    assert f"clear=started (run {clear_run}); disk=pending" in lines[2]
    client = client_for(employee)
    assert 'data-flow-run="' not in client.get(reverse("flows:runs")).content.decode()
    assert client.get(reverse("flows:run", args=[mine.pk])).status_code == 404
    run_page = client_for(helpdesk).get(reverse("runs:detail", args=[clear_run])).content.decode()
    assert f'href="{reverse("flows:run", args=[mine.pk])}"' in run_page


def test_the_flow_run_form_confirms_first_and_change_something_keeps_the_input(
    client_for: Any, admin: Any, helpdesk: Any, enqueued: list[int]
) -> None:
    clear = Workflow.objects.get(nql_id="#clear_teams_cache")
    ParameterDefinition.objects.create(workflow=clear, name="note")
    flow = make_flow(admin, "Fix", step("clear", params={"note": "hunter2"}), step("disk", "clear"))
    # Made secret after the flow stored it: the confirmation still never shows the value.
    ParameterDefinition.objects.filter(workflow=clear).update(secret=True)
    client = client_for(helpdesk)
    typed = {"targets_text": "PC-1\nPC-2\npc-1", "reason": "INC0012345"}
    asked = client.post(reverse("flows:start", args=[flow.pk]), typed)
    page = asked.content.decode()
    assert asked.status_code == 200 and not FlowRun.objects.exists()
    assert 'data-testid="target-count">2<' in page and 'data-testid="duplicates">(1 dup' in page
    assert "<code>PC-2</code>" in page and "INC0012345" in page
    assert 'data-step="disk"' in page and "note=<code>••••••</code>" in page
    assert "hunter2" not in page

    back = client.post(reverse("flows:change", args=[flow.pk]), {"token": token_of(page)})
    form = back.content.decode()
    assert back.status_code == 200 and "Nothing was started." in form
    assert ">name:PC-1\nname:PC-2</textarea>" in form and 'value="INC0012345"' in form
    # That confirmation is gone: going back cannot also start it.
    gone = client.post(reverse("flows:confirm", args=[flow.pk]), {"token": token_of(page)})
    assert gone.status_code == 400 and b"This confirmation expired" in gone.content
    assert not FlowRun.objects.exists()


def test_a_double_click_on_run_now_starts_the_flow_once(
    client_for: Any, admin: Any, helpdesk: Any, enqueued: list[int]
) -> None:
    flow = make_flow(admin, "Fix", step("clear"))
    client = client_for(helpdesk)
    asked = client.post(reverse("flows:start", args=[flow.pk]), {"targets_text": "PC-1"})
    token = token_of(asked.content.decode())
    waiting = client.session[pending_runs.PENDING_KEY]
    confirm = reverse("flows:confirm", args=[flow.pk])
    first = client.post(confirm, {"token": token})
    second = client.post(confirm, {"token": token})
    flow_run = FlowRun.objects.get()
    assert first["Location"] == second["Location"] == reverse("flows:run", args=[flow_run.pk])
    # Two clicks sent at once each read the session before either saved it: put it back so.
    session = client.session
    session[pending_runs.PENDING_KEY] = waiting
    del session[pending_runs.FLOW_DONE_KEY]
    session.save()
    raced = client.post(confirm, {"token": token})
    assert raced["Location"] == first["Location"] and FlowRun.objects.count() == 1


def test_confirming_a_flow_changed_meanwhile_or_another_flow_starts_nothing(
    client_for: Any, admin: Any, helpdesk: Any, employee: Any, enqueued: list[int]
) -> None:
    flow = make_flow(admin, "Fix", step("clear"))
    other = make_flow(admin, "Other", step("disk"))
    client = client_for(helpdesk)
    asked = client.post(reverse("flows:start", args=[flow.pk]), {"targets_text": "PC-1"})
    token = token_of(asked.content.decode())
    wrong = client.post(reverse("flows:confirm", args=[other.pk]), {"token": token})
    assert wrong.status_code == 400 and b"This confirmation expired" in wrong.content
    asked = client.post(reverse("flows:start", args=[flow.pk]), {"targets_text": "PC-1"})
    flows.update_flow(user=admin, flow=flow, data={"name": "Fix", "steps": [step("disk")]})
    changed = client.post(
        reverse("flows:confirm", args=[flow.pk]), {"token": token_of(asked.content.decode())}
    )
    assert changed.status_code == 409 and b"version 2 now" in changed.content
    assert b">name:PC-1</textarea>" in changed.content
    for name in ("flows:confirm", "flows:change"):
        url = reverse(name, args=[flow.pk])
        assert client_for(employee).post(url, {"token": token}).status_code == 403
        assert client_for(helpdesk).get(url).status_code == 405
    assert not FlowRun.objects.exists()


def test_flow_runs_filter_by_flow_and_status_through_pages_and_export(
    client_for: Any,
    admin: Any,
    helpdesk: Any,
    employee: Any,
    enqueued: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fix = make_flow(admin, "Fix Teams", step("clear"))
    disk = make_flow(admin, "Free disk", step("disk"))
    old, waiting, newer, other = (run_flow(helpdesk, f, "PC-1") for f in (fix, fix, fix, disk))
    FlowRun.objects.filter(pk=waiting.pk).update(status=FlowRunStatus.AWAITING_APPROVAL)
    monkeypatch.setattr(flow_run_views, "HISTORY_SIZE", 1)
    client = client_for(helpdesk)
    shown = lambda html: re.findall(r'data-flow-run="(\d+)"', html)  # noqa: E731

    first = client.get(reverse("flows:runs"), {"flow": "teams", "status": "in_progress"})
    html = first.content.decode()
    assert shown(html) == [str(newer.pk)]
    assert '<option value="awaiting_approval">Awaiting approval</option>' in html
    older = re.search(r'href="\?([^"]+)" data-testid="older"', html)
    assert older and "flow=teams" in older.group(1) and "status=in_progress" in older.group(1)
    second = client.get(reverse("flows:runs") + "?" + older.group(1).replace("&amp;", "&"))
    assert shown(second.content.decode()) == [str(old.pk)]  # the awaiting one is left out
    by_id = client.get(reverse("flows:runs"), {"flow": str(disk.pk)}).content.decode()
    assert shown(by_id) == [str(other.pk)]
    held = client.get(reverse("flows:runs"), {"status": "awaiting_approval"}).content.decode()
    assert shown(held) == [str(waiting.pk)]

    exported = client.get(reverse("flows:runs_export"), {"flow": "teams", "status": "in_progress"})
    lines = b"".join(exported.streaming_content).decode("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [str(newer.pk), str(old.pk)]

    odd = client.get(reverse("flows:runs"), {"status": "green", "before": "x"})
    assert odd.status_code == 200 and "Unknown status &#x27;green&#x27;" in odd.content.decode()
    assert "is not a flow run id" in odd.content.decode()
    refused = client.get(reverse("flows:runs_export"), {"status": "green"})
    assert refused.status_code == 400 and b"Nothing was exported: Unknown status" in refused.content
    mine = client_for(employee).get(reverse("flows:runs"), {"flow": "teams"}).content.decode()
    assert shown(mine) == []  # filters never widen an employee's own list
